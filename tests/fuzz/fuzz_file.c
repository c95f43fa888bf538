/*
 * fuzz_file.c - the trace-file reader on the raw input: the chunk CRCs
 * reject nearly every mutation, so this one mostly exercises the header
 * checks and the scan's refusals (fuzz_file_crc.c gets past them).
 */

#include "fz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_trace *t = fz_open("file", data, size, NULL, 0);
    if (t != NULL) {
        fz_walk(t);
        cs_trace_close(t);
    }
    return 0;
}
