/*
 * symbols.c - naming the instruction pointers of another process: function,
 * source file and line, module.  Two sources of modules:
 *
 *   - a running process: libdw's dwfl reads /proc/PID/maps and the mapped
 *     ELF files (and their separate debug info when installed); it does
 *     not attach to the process;
 *   - a trace's module table (format 1.1), for a process that has exited:
 *     each module's file is opened by the path it had and reported to dwfl
 *     at the load bias it had, but only if its GNU build id is still the
 *     recorded one.  A module whose file is gone, changed (another build
 *     id) or unverifiable (no build id) is named "file+0xoffset" with the
 *     address in that file, never with a symbol that may be wrong.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "cli.h"
#include "symname.h"

/* A module of a trace's module table. */
struct cli_module {
    uint64_t base, start, end; /* load bias; runtime range [start, end) */
    char name[128];            /* basename of its path, sanitised */
    Dwfl_Module *dwfl;         /* its verified file, NULL: offsets only */
};

struct cli_symbols {
    Dwfl *dwfl;
    struct cli_module *mods; /* from a trace; NULL for a live process */
    size_t nmods;
};

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* For files reported by hand (dwfl_report_elf consumes our fd, so find_elf
 * is never asked); debug info is still looked up by build id. */
static const Dwfl_Callbacks file_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
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

/* Names come from the target's files: shown, never obeyed.  Cut to cap. */
static void copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    cli_sanitize(dst);
}

/* Opens path if it is a regular file whose GNU build id is id[0..len);
 * returns the fd or -1.  The path comes from the trace: O_NONBLOCK so a
 * FIFO put there cannot stall us, and only regular files are read. */
static int open_verified(const char *path, const uint8_t *id, uint32_t len)
{
    if (len == 0 || path[0] != '/')
        return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    Elf *elf = ok ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
    const void *bid = NULL;
    ssize_t n = elf ? dwelf_elf_gnu_build_id(elf, &bid) : -1;
    ok = ok && n == (ssize_t)len && memcmp(bid, id, len) == 0;
    if (elf)
        elf_end(elf);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The later of two overlapping modules wins (an address range reused after
 * dlclose), so modules are reported from the last one back. */
static int overlaps_reported(const struct cli_symbols *s, size_t i)
{
    for (size_t k = i + 1; k < s->nmods; k++)
        if (s->mods[k].dwfl != NULL && s->mods[k].start < s->mods[i].end &&
            s->mods[i].start < s->mods[k].end)
            return 1;
    return 0;
}

static void report_module(struct cli_symbols *s, size_t i,
                          const cs_trace_module *tm)
{
    struct cli_module *m = &s->mods[i];
    if (tm->flags & CS_MODF_PATH_CUT || overlaps_reported(s, i))
        return;
    int fd = open_verified(tm->path, tm->build_id, tm->build_id_len);
    if (fd < 0)
        return;
    /* add_p_vaddr: base is the load bias, as dl_iterate_phdr gave it. */
    m->dwfl = dwfl_report_elf(s->dwfl, m->name, tm->path, fd, m->base, true);
    if (m->dwfl == NULL)
        close(fd);
}

struct cli_symbols *cli_symbols_open_trace(cs_trace *t)
{
    cs_trace_module tm;
    uint32_t it = 0;
    size_t cap = 0;
    int r;
    struct cli_symbols *s = calloc(1, sizeof *s);
    cs_trace_module *all = NULL;
    if (s == NULL)
        return NULL;
    while ((r = cs_trace_module_next(t, &it, &tm)) == 1) {
        if (s->nmods == cap) {
            cap = cap ? cap * 2 : 32;
            void *p = realloc(s->mods, cap * sizeof *s->mods);
            void *q = realloc(all, cap * sizeof *all);
            if (p != NULL)
                s->mods = p;
            if (q != NULL)
                all = q;
            if (p == NULL || q == NULL)
                break;
        }
        struct cli_module *m = &s->mods[s->nmods];
        memset(m, 0, sizeof *m);
        m->base = tm.base;
        m->start = tm.start;
        m->end = tm.end;
        const char *slash = strrchr(tm.path, '/');
        copy(m->name, sizeof m->name, slash ? slash + 1 : tm.path);
        all[s->nmods++] = tm;
    }
    s->dwfl = s->nmods > 0 ? dwfl_begin(&file_callbacks) : NULL;
    if (s->dwfl == NULL) { /* no table (an older writer), or no memory */
        free(all);
        cli_symbols_close(s);
        return NULL;
    }
    elf_version(EV_CURRENT);
    dwfl_report_begin(s->dwfl);
    for (size_t i = s->nmods; i-- > 0;)
        report_module(s, i, &all[i]);
    dwfl_report_end(s->dwfl, NULL, NULL);
    free(all);
    return s;
}

struct cli_symbols *cli_symbols_for_trace(cs_trace *t)
{
    cs_trace_info info;
    uint64_t st;
    if (cs_trace_info_get(t, &info) != 0)
        return NULL;
    int alive = cs_trace_pid_start_time(info.pid, &st) == 0 &&
                st == info.start_time;
    struct cli_symbols *s = NULL;
    /* A running writer's maps are complete (objects dlopen'ed since the
     * table's last refresh); a file's table names what it recorded. */
    if (!info.is_file && alive)
        s = cli_symbols_open(info.pid);
    if (s == NULL)
        s = cli_symbols_open_trace(t);
    if (s == NULL && info.is_file && alive)
        s = cli_symbols_open(info.pid); /* a file from before format 1.1 */
    return s;
}

/* The trace module holding a (the last one listed wins), or NULL. */
static const struct cli_module *trace_module(const struct cli_symbols *s,
                                             uint64_t a)
{
    for (size_t i = s->nmods; i-- > 0;)
        if (a >= s->mods[i].start && a < s->mods[i].end)
            return &s->mods[i];
    return NULL;
}

/* The module of ip (a the address looked up), its name and offset into f;
 * NULL if none has symbols. */
static Dwfl_Module *module_of(struct cli_symbols *s, uint64_t ip, Dwarf_Addr a,
                              struct cli_frame *f)
{
    Dwfl_Module *m;
    if (s->mods != NULL) {
        const struct cli_module *cm = trace_module(s, a);
        if (cm == NULL)
            return NULL;
        snprintf(f->module, sizeof f->module, "%s", cm->name);
        f->mod_offset = ip - cm->base;
        f->in_module = 1;
        return cm->dwfl;
    }
    m = dwfl_addrmodule(s->dwfl, a);
    const char *mod =
        m ? dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
          : NULL;
    if (mod != NULL) {
        const char *slash = strrchr(mod, '/');
        copy(f->module, sizeof f->module, slash ? slash + 1 : mod);
    }
    return m;
}

int cli_symbolize_all(struct cli_symbols *s, uint64_t ip, int is_return,
                      struct cli_frame *out, int cap)
{
    if (cap <= 0)
        return 0;
    memset(&out[0], 0, sizeof out[0]);
    out[0].ip = ip;
    if (s == NULL)
        return 1;
    /* a return address may be the first byte after the caller's function:
     * the module is found at the call instruction (symname.c looks the
     * name and line up there too) */
    Dwarf_Addr a = is_return && ip > 0 ? ip - 1 : ip;
    struct cli_frame outer = out[0];
    Dwfl_Module *m = module_of(s, ip, a, &outer);
    if (m == NULL) {
        out[0] = outer;
        return 1;
    }
    cs_symname n;
    cs__ag_symname(m, ip, is_return, &n); /* the agent's symboliser too */
    int k = 0;
    for (int j = 0; j < n.ninline && k < cap - 1; j++, k++) {
        out[k] = outer;
        out[k].inlined = 1;
        copy(out[k].func, sizeof out[k].func, n.inl[j].func);
        copy(out[k].file, sizeof out[k].file, n.inl[j].file);
        out[k].line = n.inl[j].file ? n.inl[j].line : 0;
    }
    out[k] = outer;
    copy(out[k].func, sizeof out[k].func, n.func);
    out[k].offset = n.offset;
    copy(out[k].file, sizeof out[k].file, n.file);
    out[k].line = n.file ? n.line : 0;
    return k + 1;
}

void cli_symbolize(struct cli_symbols *s, uint64_t ip, int is_return,
                   struct cli_frame *f)
{
    struct cli_frame all[CS_SYMNAME_INLINE_MAX + 1];
    int n =
        cli_symbolize_all(s, ip, is_return, all, CS_SYMNAME_INLINE_MAX + 1);
    *f = all[n - 1]; /* the out-of-line function */
}

int cli_symbolize_call(struct cli_symbols *s, const uint64_t *ips, int n,
                       struct cli_frame *out, int cap, char *call,
                       size_t callcap)
{
    int k = 0;
    if (call != NULL && callcap > 0)
        call[0] = '\0';
    for (int i = 0; i < n && k < cap; i++) {
        int got = cli_symbolize_all(s, ips[i], 1, out + k, cap - k);
        /* a blocking call's warning starts in the interposer's wrapper:
         * it names the call; the stack, as the agent shows it, does not */
        if (k == 0 &&
            strcmp(out[got - 1].module, "libcoscope-preload.so") == 0) {
            if (call != NULL && callcap > 0 && out[got - 1].func[0])
                snprintf(call, callcap, "%s", out[got - 1].func);
            continue;
        }
        k += got;
    }
    return k;
}

int cli_symbolize_stack(struct cli_symbols *s, const uint64_t *ips, int n,
                        struct cli_frame *out, int cap)
{
    return cli_symbolize_call(s, ips, n, out, cap, NULL, 0);
}

char *cli_frame_text(const struct cli_frame *f, char *buf, size_t cap)
{
    char fn[256];
    int n = snprintf(buf, cap, "0x%012llx %s%s", (unsigned long long)f->ip,
                     cli_frame_name(f, fn, sizeof fn),
                     f->inlined ? " [inlined]" : "");
    if (f->file[0] && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " (%s:%d)", f->file, f->line);
    return buf;
}

char *cli_site_name(struct cli_symbols *s, char *site, size_t cap)
{
    char *end;
    if (strncmp(site, "@0x", 3) != 0)
        return site;
    unsigned long long ip = strtoull(site + 3, &end, 16);
    if (*end != '\0' || ip == 0 || s == NULL)
        return site;
    /* a return address into the spawning code: the call's line */
    struct cli_frame f;
    cli_symbolize(s, ip, 1, &f);
    char fn[256];
    if (f.file[0])
        snprintf(site, cap, "%s:%d", f.file, f.line);
    else if (f.func[0] || f.in_module)
        snprintf(site, cap, "%s", cli_frame_name(&f, fn, sizeof fn));
    return site;
}

void cli_symbols_close(struct cli_symbols *s)
{
    if (s == NULL)
        return;
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s->mods);
    free(s);
}

const char *cli_frame_name(const struct cli_frame *f, char *buf, size_t cap)
{
    if (f->func[0])
        snprintf(buf, cap, "%s", f->func);
    else if (f->in_module)
        snprintf(buf, cap, "%s+0x%llx", f->module,
                 (unsigned long long)f->mod_offset);
    else
        snprintf(buf, cap, "??");
    return buf;
}
