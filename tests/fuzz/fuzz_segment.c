/*
 * fuzz_segment.c - the live-segment reader (mmap, at(), the ring protocol,
 * the seqlock task reads, the module table) on a file with the segment's
 * mode; its recorded size is set to the input's, which open checks first.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    fz_fix_segment_size(copy, size);
    const char *path = fz_spit("segment", copy, size);
    free(copy);
    cs_trace *t;
    if (cs_trace_open_segment(path, &t) == 0) {
        fz_walk(t);
        cs_trace_close(t);
    }
    unlink(path);
    return 0;
}
