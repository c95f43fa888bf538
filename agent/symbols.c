/*
 * symbols.c - names for raw addresses, through elfutils: libdwfl maps an
 * address to its module (from /proc/self/maps, dwfl_linux_proc_report);
 * symname.c, the symboliser the coscope command uses too, names it there:
 * function+offset from the ELF symbol tables, file:line and inlined calls
 * from DWARF when the object or a separate debug file has it.  The Dwfl
 * session is made at the first report; an address in no known module (a
 * library dlopen'ed since) makes it report the process's modules again.
 */
#include "agent.h"
#include "symname.h"

#include <elfutils/libdwfl.h>
#include <string.h>
#include <unistd.h>

/* Separate debug files from the build-id tree (/usr/lib/debug/.build-id,
 * where Debian's -dbg and dbgsym packages put them), never through
 * debuginfod: dwfl_standard_find_debuginfo starts a debuginfod client
 * for any file without one, which initialises libcurl and OpenSSL inside
 * the program, on the report's thread; OpenSSL's atexit cleanup then runs
 * before the watchdog's (registered earlier), and a report still being
 * written when the program exits crashed it in libcrypto. */
static const Dwfl_Callbacks cs__ag_dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
};
static Dwfl *cs__ag_dwfl;

static int cs__ag_dwfl_report(void)
{
    if (!cs__ag_dwfl && !(cs__ag_dwfl = dwfl_begin(&cs__ag_dwfl_callbacks)))
        return -1;
    dwfl_report_begin(cs__ag_dwfl);
    if (dwfl_linux_proc_report(cs__ag_dwfl, getpid()) != 0) {
        dwfl_report_end(cs__ag_dwfl, NULL, NULL);
        return -1;
    }
    return dwfl_report_end(cs__ag_dwfl, NULL, NULL);
}

void cs__ag_sym_release(void)
{
    if (cs__ag_dwfl)
        dwfl_end(cs__ag_dwfl);
    cs__ag_dwfl = NULL;
}

static Dwfl_Module *cs__ag_module(Dwarf_Addr a)
{
    static bool fresh;
    Dwfl_Module *m = NULL;

    if (!cs__ag_dwfl) {
        if (cs__ag_dwfl_report() != 0)
            return NULL;
        fresh = true;
    }
    m = dwfl_addrmodule(cs__ag_dwfl, a);
    if (!m && !fresh && cs__ag_dwfl_report() == 0) { /* maps changed? */
        fresh = true;
        m = dwfl_addrmodule(cs__ag_dwfl, a);
    }
    if (m)
        fresh = false;
    return m;
}

void cs__ag_sym_lookup(uintptr_t ip, bool is_return, cs__ag_sym *s)
{
    Dwarf_Addr a = is_return && ip ? ip - 1 : ip, base = 0;
    Dwfl_Module *m;
    cs_symname n;

    memset(s, 0, sizeof(*s));
    if (!ip || !(m = cs__ag_module(a)))
        return;
    s->module = dwfl_module_info(m, NULL, &base, NULL, NULL, NULL, NULL, NULL);
    s->modoff = ip - base;
    cs__ag_symname(m, ip, is_return, &n); /* the one symboliser: symname.h */
    s->func = n.func;
    s->offset = n.offset;
    s->file = n.file;
    s->line = n.line;
    s->ninline = n.ninline;
    _Static_assert(sizeof(s->inl) == sizeof(n.inl), "cs__ag_sym.inl");
    memcpy(s->inl, n.inl, sizeof(s->inl));
}
