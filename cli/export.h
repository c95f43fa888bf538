/*
 * export.h - the binary formats of `coscope export` (cmd_export.c): a
 * trace file's timeline (timeline.h) as a gzipped pprof profile
 * (export_pprof.c) or as a Perfetto protobuf trace (export_perfetto.c).
 * Private to cli/.
 */
#ifndef CS_CLI_EXPORT_H
#define CS_CLI_EXPORT_H

#include <stdio.h>

#include "timeline.h"

/* Each writes tl to f; 0, or a negative errno (-ENOMEM, -EIO). */
int cli_tl_write_pprof(struct cli_timeline *tl, FILE *f);
int cli_tl_write_perfetto(struct cli_timeline *tl, FILE *f);

/* Symbolised frames of stack id, innermost first, without coscope's own
 * frames at either end (an interposer's wrapper, the task's entry).  Returns the depth kept (0: no
 * stack) into fr[0..cap); the symbols are opened once per timeline. */
int cli_export_frames(struct cli_timeline *tl, uint32_t id,
                      struct cli_frame *fr, int cap);

#endif /* CS_CLI_EXPORT_H */
