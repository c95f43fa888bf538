/*
 * fuzz_file.c - the trace-file reader on the raw input: the chunk CRCs
 * reject nearly every mutation, so this one mostly exercises the header
 * checks and the scan's refusals (fuzz_file_crc.c gets past them).
 */
#include <unistd.h>

#include "fz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_spit("file", data, size);
    cs_trace *t;
    if (cs_trace_open_file(path, &t) == 0) {
        fz_walk(t);
        cs_trace_close(t);
    }
    unlink(path);
    return 0;
}
