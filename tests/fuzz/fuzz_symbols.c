/*
 * fuzz_symbols.c - the module table of a trace file (CRCs repaired) and
 * the CLI's symbol lookup over it (cli/symbols.c): every module's file is
 * opened by its recorded path only if its build id matches, then each
 * module's edges and every stack IP are named.
 */
#include "cli.h"
#include "fz.h"

static void name(struct cli_symbols *s, uint64_t ip, int is_return)
{
    struct cli_frame f;
    char buf[512];
    cli_symbolize(s, ip, is_return, &f);
    cli_frame_name(&f, buf, sizeof buf);
    cli_frame_name(&f, buf, 8);
}

static void lookups(cs_trace *t, struct cli_symbols *s)
{
    cs_trace_module m;
    uint32_t it = 0;
    while (cs_trace_module_next(t, &it, &m) == 1) {
        name(s, m.start, 0);
        name(s, m.end - 1, 1);
        name(s, m.start + (m.end - m.start) / 2, 1);
        name(s, m.base, 0);
    }
    cs_trace_event ev[64];
    size_t n;
    uint64_t cursor = 0, lost = 0, ips[32];
    if (cs_trace_read(t, 0, &cursor, ev, 64, &n, &lost) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        int depth = cs_trace_stack(t, ev[i].arg, ips, 32);
        for (int k = 0; k < depth && k < 32; k++)
            name(s, ips[k], k > 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_trace *t = fz_open("symbols", data, size, fz_fix_crcs, 0);
    if (t != NULL) {
        struct cli_symbols *s = cli_symbols_open_trace(t);
        lookups(t, s);
        cli_symbols_close(s);
        cs_trace_close(t);
    }
    return 0;
}
