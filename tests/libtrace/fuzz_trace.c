/*
 * fuzz_trace.c - a libFuzzer-style target for the reader: the input is
 * written out once as a trace file and once as a segment (mode 0600), and
 * both are opened and walked completely (header, every ring, every task,
 * every module, every string and stack an event or task names).  Built
 * with a plain driver (fuzz_driver.c) for ctest; link with
 * -fsanitize=fuzzer and drop the driver to fuzz for real.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coscope/trace.h"
#include "tl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(cs_trace *t)
{
    cs_trace_info info;
    if (cs_trace_info_get(t, &info) != 0)
        abort();
    char s[64];
    uint64_t ips[16];
    for (uint32_t r = 0; r < info.ring_count; r++) {
        cs_trace_ring ring;
        cs_trace_ring_get(t, r, &ring);
        uint64_t cursor = 0, lost = 0;
        cs_trace_event ev[128];
        size_t n;
        for (int rounds = 0; rounds < 64; rounds++) {
            if (cs_trace_read(t, r, &cursor, ev, 128, &n, &lost) != 0 || n == 0)
                break;
            for (size_t i = 0; i < n; i++) {
                cs_trace_string(t, ev[i].arg, s, sizeof s);
                cs_trace_stack(t, ev[i].arg, ips, 16);
                (void)cs_trace_event_name(ev[i].type);
                (void)cs_trace_wait_name(ev[i].reason);
                (void)cs_trace_ns(t, ev[i].ts);
            }
        }
    }
    cs_trace_module mod;
    uint32_t mi = 0;
    while (cs_trace_module_next(t, &mi, &mod) == 1)
        if (strlen(mod.path) >= sizeof mod.path ||
            mod.build_id_len > CS_BUILD_ID_MAX || mod.start > mod.end)
            abort(); /* the reader let a bad entry through */
    cs_trace_task task;
    uint32_t it = 0;
    while (cs_trace_task_next(t, &it, &task) == 1) {
        cs_trace_string(t, task.name, s, sizeof s);
        cs_trace_string(t, task.site, s, sizeof s);
        (void)cs_trace_state_name(task.state);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char file[64], seg[64];
    if (file[0] == '\0') {
        snprintf(file, sizeof file, "/tmp/coscope-fuzz.%d.cst", (int)getpid());
        snprintf(seg, sizeof seg, "/tmp/coscope-fuzz.%d.seg", (int)getpid());
    }
    cs_trace *t;
    tl_spit(file, data, size);
    if (cs_trace_open_file(file, &t) == 0) {
        walk(t);
        cs_trace_close(t);
    }
    tl_spit(seg, data, size);
    if (cs_trace_open_segment(seg, &t) == 0) {
        walk(t);
        cs_trace_close(t);
    }
    unlink(file);
    unlink(seg);
    return 0;
}
