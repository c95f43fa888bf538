/*
 * fuzz_file_crc.c - the trace-file reader after every chunk's CRCs are
 * recomputed, so that mutated lengths, counts, bases and table bytes reach
 * the chunk parsers and the string and stack lookups.  Under libFuzzer a
 * custom mutator also resizes whole chunks (a table piece a few bytes
 * longer or shorter, the chunks after it still in place): a table whose
 * length is not a multiple of its entry alignment is what the reads past
 * the end of the string and stack tables needed, and byte-level
 * mutations alone almost never make one.
 */

#include "fz.h"

#ifdef CS_FUZZING
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max,
                               unsigned seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max,
                               unsigned seed)
{
    if (seed % 4 != 0)
        size = LLVMFuzzerMutate(data, size, max);
    else
        size = fz_resize_chunk(data, size, max, seed / 4);
    fz_fix_crcs(data, size);
    return size;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_trace *t = fz_open("file_crc", data, size, fz_fix_crcs, 0);
    if (t != NULL) {
        fz_walk(t);
        cs_trace_close(t);
    }
    return 0;
}
