/*
 * unwind.c - unwinding a parked task of another process without stopping
 * it or attaching to it (the way py-spy reads a live interpreter).
 *
 * libunwind's remote interface does the DWARF work.  We give it our own
 * accessors (DESIGN.md, "Reading another process"):
 *   - access_mem reads the target's memory with process_vm_readv through a
 *     small page cache (a task's parked stack does not change while it is
 *     parked; the caller checks the task's slot again afterwards);
 *   - access_reg answers from the registers the runtime saved in the task
 *     slot (sp, fp and ip, a real return address just after the call into
 *     the context switch);
 *   - find_proc_info and friends are libunwind-ptrace's _UPT_* functions,
 *     which only read /proc/PID/maps and the mapped ELF files: _UPT_create
 *     records the pid and never calls ptrace.
 * libunwind calls access_mem with _UPT's argument from inside
 * _UPT_find_proc_info, so the accessors find their state through `cur`
 * rather than through their argument (the CLI is single-threaded).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cli.h"

#if defined(__x86_64__)
#include <libunwind-ptrace.h>

#define PAGE 4096u
#define CACHE_PAGES 64u

struct cache_page {
    uint64_t addr; /* page address, 0: empty */
    int ok;        /* 1: data holds the page; 0: it could not be read */
    uint8_t data[PAGE];
};

struct cli_unwinder {
    int pid;
    void *upt; /* _UPT_create(pid) */
    unw_addr_space_t as;
    unw_accessors_t acc;
    uint64_t sp, fp, ip;      /* registers of the frame being unwound */
    int err;                  /* first fatal read error, negative errno */
    struct cache_page *cache; /* CACHE_PAGES entries */
};

static struct cli_unwinder *cur;

/* Copies the page holding addr into the cache; NULL if unreadable. */
static const uint8_t *page_get(struct cli_unwinder *u, uint64_t addr)
{
    uint64_t pa = addr & ~(uint64_t)(PAGE - 1);
    struct cache_page *p = &u->cache[(pa / PAGE) % CACHE_PAGES];
    if (p->addr == pa && pa != 0)
        return p->ok ? p->data : NULL;
    struct iovec local = {p->data, PAGE};
    struct iovec remote = {(void *)(uintptr_t)pa, PAGE};
    ssize_t n = process_vm_readv(u->pid, &local, 1, &remote, 1, 0);
    p->addr = pa;
    p->ok = n == (ssize_t)PAGE;
    if (n < 0 && (errno == EPERM || errno == ESRCH || errno == EACCES) &&
        u->err == 0)
        u->err = -errno;
    return p->ok ? p->data : NULL;
}

/* Reads len bytes at addr (may span two pages); 0 or -1. */
static int mem_read(struct cli_unwinder *u, uint64_t addr, void *buf,
                    size_t len)
{
    uint8_t *out = buf;
    while (len > 0) {
        const uint8_t *pg = page_get(u, addr);
        if (pg == NULL)
            return -1;
        size_t off = (size_t)(addr % PAGE);
        size_t k = PAGE - off < len ? PAGE - off : len;
        memcpy(out, pg + off, k);
        out += k;
        addr += k;
        len -= k;
    }
    return 0;
}

static int acc_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val,
                   int write, void *arg)
{
    (void)as;
    (void)arg;
    if (write || cur == NULL)
        return -UNW_EINVAL;
    return mem_read(cur, addr, val, sizeof *val) == 0 ? 0 : -UNW_EINVAL;
}

static int acc_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val,
                   int write, void *arg)
{
    (void)as;
    (void)arg;
    if (write || cur == NULL)
        return -UNW_EREADONLYREG;
    switch (reg) {
    case UNW_X86_64_RIP:
        *val = cur->ip;
        return 0;
    case UNW_X86_64_RSP:
        *val = cur->sp;
        return 0;
    case UNW_X86_64_RBP:
        *val = cur->fp;
        return 0;
    default: /* not saved in the slot; CFI of real frames never needs them */
        *val = 0;
        return 0;
    }
}

static int acc_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val,
                     int write, void *arg)
{
    (void)as;
    (void)reg;
    (void)val;
    (void)write;
    (void)arg;
    return -UNW_EBADREG;
}

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip,
                              unw_proc_info_t *pi, int need, void *arg)
{
    (void)arg;
    return _UPT_find_proc_info(as, ip, pi, need, cur->upt);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi,
                                void *arg)
{
    (void)arg;
    _UPT_put_unwind_info(as, pi, cur->upt);
}

static int acc_dyn_info(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    (void)as;
    (void)addr;
    (void)arg;
    return -UNW_ENOINFO;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as;
    (void)c;
    (void)arg;
    return -UNW_EINVAL;
}

static int acc_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf,
                         size_t len, unw_word_t *off, void *arg)
{
    (void)as;
    (void)addr;
    (void)buf;
    (void)len;
    (void)off;
    (void)arg;
    return -UNW_ENOINFO; /* symbols.c names frames */
}

struct cli_unwinder *cli_unwind_open(int pid, int *err)
{
    struct cli_unwinder *u = calloc(1, sizeof *u);
    *err = -ENOMEM;
    if (u == NULL)
        return NULL;
    u->pid = pid;
    u->cache = calloc(CACHE_PAGES, sizeof *u->cache);
    u->upt = _UPT_create(pid);
    u->acc = _UPT_accessors;
    u->acc.access_mem = acc_mem;
    u->acc.access_reg = acc_reg;
    u->acc.access_fpreg = acc_fpreg;
    u->acc.find_proc_info = acc_find_proc_info;
    u->acc.put_unwind_info = acc_put_unwind_info;
    u->acc.get_dyn_info_list_addr = acc_dyn_info;
    u->acc.resume = acc_resume;
    u->acc.get_proc_name = acc_proc_name;
    u->as = u->cache && u->upt ? unw_create_addr_space(&u->acc, 0) : NULL;
    if (u->as == NULL) {
        cli_unwind_close(u);
        return NULL;
    }
    unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
    *err = 0; /* permission problems show at the first read */
    return u;
}

int cli_unwind(struct cli_unwinder *u, uint64_t sp, uint64_t fp, uint64_t ip,
               uint64_t *ips, int cap)
{
    unw_cursor_t c;
    int n = 0;
    /* Pages of a stack may change between tasks: drop them (text and
     * unwind tables are re-read cheaply). */
    for (unsigned i = 0; i < CACHE_PAGES; i++)
        u->cache[i].addr = 0;
    u->sp = sp;
    u->fp = fp;
    u->ip = ip;
    u->err = 0;
    /* The word at sp is mapped: if it cannot be read, nothing can. */
    uint64_t probe;
    if (mem_read(u, sp, &probe, sizeof probe) != 0)
        return u->err ? u->err : -EFAULT;
    cur = u;
    if (unw_init_remote(&c, u->as, u->upt) < 0) {
        cur = NULL;
        return u->err ? u->err : -EINVAL;
    }
    ips[n++] = ip;
    while (n < cap) {
        int r = unw_step(&c);
        if (r <= 0)
            break;
        unw_word_t pc;
        if (unw_get_reg(&c, UNW_REG_IP, &pc) < 0 || pc == 0)
            break;
        ips[n++] = pc;
    }
    cur = NULL;
    if (u->err != 0 && n <= 1)
        return u->err;
    return n;
}

void cli_unwind_close(struct cli_unwinder *u)
{
    if (u == NULL)
        return;
    if (u->as)
        unw_destroy_addr_space(u->as);
    if (u->upt)
        _UPT_destroy(u->upt);
    free(u->cache);
    free(u);
}

#else /* no remote unwinder for this architecture yet */

struct cli_unwinder {
    int unused;
};

struct cli_unwinder *cli_unwind_open(int pid, int *err)
{
    (void)pid;
    *err = -ENOSYS;
    return NULL;
}

int cli_unwind(struct cli_unwinder *u, uint64_t sp, uint64_t fp, uint64_t ip,
               uint64_t *ips, int cap)
{
    (void)u, (void)sp, (void)fp, (void)ip, (void)ips, (void)cap;
    return -ENOSYS;
}

void cli_unwind_close(struct cli_unwinder *u)
{
    (void)u;
}

#endif
