/*
 * symbols.c - naming the instruction pointers of another process: function,
 * source file and line, module.  libdw's dwfl reads /proc/PID/maps and the
 * mapped ELF files (and their separate debug info when installed); it does
 * not attach to the process.
 */
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "cli.h"

struct cli_symbols {
    Dwfl *dwfl;
};

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

struct cli_symbols *cli_symbols_open(int pid)
{
    struct cli_symbols *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->dwfl = dwfl_begin(&callbacks);
    if (s->dwfl == NULL) {
        free(s);
        return NULL;
    }
    dwfl_report_begin(s->dwfl);
    int r = dwfl_linux_proc_report(s->dwfl, pid);
    dwfl_report_end(s->dwfl, NULL, NULL);
    if (r != 0) {
        cli_symbols_close(s);
        return NULL;
    }
    return s;
}

/* Names come from the target's files: shown, never obeyed. */
static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
    cli_sanitize(dst);
}

void cli_symbolize(struct cli_symbols *s, uint64_t ip, int is_return,
                   struct cli_frame *f)
{
    memset(f, 0, sizeof *f);
    f->ip = ip;
    if (s == NULL)
        return;
    /* A return address may be the first byte after the caller's function:
     * look up the call instruction instead. */
    Dwarf_Addr a = is_return && ip > 0 ? ip - 1 : ip;
    Dwfl_Module *m = dwfl_addrmodule(s->dwfl, a);
    if (m == NULL)
        return;
    const char *mod =
        dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (mod != NULL) {
        const char *slash = strrchr(mod, '/');
        copy(f->module, sizeof f->module, slash ? slash + 1 : mod);
    }
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name =
        dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL);
    copy(f->func, sizeof f->func, name);
    f->offset = off + (a != ip);
    Dwfl_Line *line = dwfl_module_getsrc(m, a);
    if (line != NULL) {
        int ln = 0;
        const char *file = dwfl_lineinfo(line, NULL, &ln, NULL, NULL, NULL);
        copy(f->file, sizeof f->file, file);
        f->line = ln;
    }
}

void cli_symbols_close(struct cli_symbols *s)
{
    if (s == NULL)
        return;
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s);
}
