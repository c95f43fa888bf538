/*
 * fuzz_trace.c - a libFuzzer-style target for the reader: the input is
 * written out once as a trace file and once as a segment (mode 0600), and
 * both are opened and walked completely (header, every ring, every task,
 * every module, every string and stack an event or task names: fz_walk).
 * Built with a plain mutating driver (fuzz_driver.c) for ctest; the
 * libFuzzer harnesses are in tests/fuzz/.
 */

#include "fz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_trace *t;
    if ((t = fz_open("driver", data, size, NULL, 0)) != NULL) {
        fz_walk(t);
        cs_trace_close(t);
    }
    if ((t = fz_open("driver", data, size, NULL, 1)) != NULL) {
        fz_walk(t);
        cs_trace_close(t);
    }
    return 0;
}
