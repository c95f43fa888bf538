/*
 * fuzz_segment.c - the live-segment reader (mmap, at(), the ring protocol,
 * the seqlock task reads, the module table) on a file with the segment's
 * mode; its recorded size is set to the input's, which open checks first.
 */

#include "fz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_trace *t = fz_open("segment", data, size, fz_fix_segment_size, 1);
    if (t != NULL) {
        fz_walk(t);
        cs_trace_close(t);
    }
    return 0;
}
