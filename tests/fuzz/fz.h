/*
 * fz.h - what the harnesses in tests/fuzz share (private to tests/fuzz).
 *
 * Each harness defines LLVMFuzzerTestOneInput.  Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary; built with replay.c instead
 * (the normal and ASan builds) it runs every input file named on its
 * command line or found in the directories named there, once.
 */
#ifndef FZ_H
#define FZ_H

#include <stddef.h>
#include <stdint.h>

#include "coscope/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to this process's scratch file `tag` in /dev/shm (mode
 * 0600, a regular file as a segment must be) and returns its path. */
const char *fz_spit(const char *tag, const uint8_t *data, size_t size);
/* Opens the input as a trace file (segment 0) or a segment (1), after
 * fix (if not NULL) has repaired a copy of it: written to fz_spit's file,
 * opened, and the file removed.  NULL if the reader refused it. */
cs_trace *fz_open(const char *tag, const uint8_t *data, size_t size,
                  void (*fix)(uint8_t *, size_t), int segment);
/* Reads everything a verb would read from t: header, every ring's events,
 * every task, module and string and stack they name.  Aborts if the reader
 * hands back something it promised not to (a bad module entry). */
void fz_walk(cs_trace *t);
/* Recomputes every chunk's payload and header CRC in place (trace files),
 * so that mutations reach the chunk parsers instead of the CRC check. */
void fz_fix_crcs(uint8_t *data, size_t size);
/* Makes one chunk (chosen by r) up to 7 bytes longer or shorter, moving
 * the rest of the file with it; returns the new size (<= max). */
size_t fz_resize_chunk(uint8_t *data, size_t size, size_t max, unsigned r);
/* Sets a segment's recorded size to the input's, which open checks
 * first, for the same reason. */
void fz_fix_segment_size(uint8_t *data, size_t size);

#endif
