/*
 * backtrace.c - raw stacks, captured cheaply; symbols.c names them later.
 *
 * Three sources: the calling thread (libunwind's unw_backtrace, which
 * follows DWARF CFI and so needs no frame pointers), a signal's interrupted
 * context (unw_init_local2 with UNW_INIT_SIGNAL_FRAME), and a parked task,
 * which is not running and so cannot be unwound locally: its saved frame
 * pointer chain is walked instead (the runtime and our examples build with
 * -fno-omit-frame-pointer, and the switch leaves rbp/x29 = 0 at the root of
 * every task stack).  Each word of that chain is read with
 * process_vm_readv on ourselves, which fails with EFAULT instead of
 * faulting, so a chain broken by code without frame pointers just ends.
 */
#define UNW_LOCAL_ONLY
#include "agent.h"

#include <dlfcn.h>
#include <libunwind.h>
#include <link.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void cs__ag_bt_here(cs__ag_bt *bt, int skip)
{
    void *ips[CS__BT_MAX + 8];
    int n = unw_backtrace(ips, CS__BT_MAX + 8);

    skip++; /* this function */
    bt->n = 0;
    bt->exact0 = false;
    for (int i = skip; i < n && bt->n < CS__BT_MAX; i++)
        bt->ip[bt->n++] = (uintptr_t)ips[i];
}

void cs__ag_bt_from(cs__ag_bt *bt, uintptr_t ip)
{
    for (int i = 0; i < bt->n; i++) {
        if (bt->ip[i] != ip)
            continue;
        memmove(bt->ip, bt->ip + i, (size_t)(bt->n - i) * sizeof(bt->ip[0]));
        bt->n -= i;
        bt->exact0 &= i == 0;
        return;
    }
}

/* Reads two words at addr without faulting; false if unreadable. */
static bool cs__ag_read2(uintptr_t addr, uintptr_t out[2])
{
    struct iovec local = {out, 2 * sizeof(uintptr_t)};
    struct iovec remote = {(void *)addr, 2 * sizeof(uintptr_t)};

    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) ==
           (ssize_t)(2 * sizeof(uintptr_t));
}

void cs__ag_bt_parked(cs__ag_bt *bt, uintptr_t sp, uintptr_t fp, uintptr_t ip)
{
    /* A frame record is {saved fp, return address} on x86-64 and
     * aarch64 alike; records only move up the stack. */
    const uintptr_t limit = sp + ((uintptr_t)1 << 30);

    bt->n = 0;
    bt->exact0 = false;
    if (!ip)
        return;
    bt->ip[bt->n++] = ip;
    while (bt->n < CS__BT_MAX && fp >= sp && fp < limit &&
           (fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t rec[2];
        if (!cs__ag_read2(fp, rec) || rec[1] == 0)
            break;
        bt->ip[bt->n++] = rec[1];
        if (rec[0] <= fp)
            break;
        sp = fp;
        fp = rec[0];
    }
}

void cs__ag_bt_signal(cs__ag_bt *bt, void *uc)
{
    unw_cursor_t cur;

    bt->n = 0;
    bt->exact0 = true;
    if (unw_init_local2(&cur, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) < 0)
        return;
    do {
        unw_word_t ip;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        bt->ip[bt->n++] = ip;
    } while (bt->n < CS__BT_MAX && unw_step(&cur) > 0);
}

/* The load address of the object holding the agent, or 0 when that is the
 * main program (a static link), where "ours" cannot be told from the
 * user's code by object. */
static int cs__ag_main_base_cb(struct dl_phdr_info *info, size_t size,
                               void *data)
{
    (void)size;
    *(uintptr_t *)data = info->dlpi_addr;
    return 1; /* the first object is the main program */
}

static uintptr_t cs__ag_self_base(void)
{
    static uintptr_t base = 1;
    Dl_info di;
    uintptr_t main_base = 0;

    if (base != 1)
        return base;
    base = 0;
    dl_iterate_phdr(cs__ag_main_base_cb, &main_base);
    if (dladdr((void *)cs__ag_self_base, &di) && di.dli_fbase &&
        (uintptr_t)di.dli_fbase != main_base)
        base = (uintptr_t)di.dli_fbase;
    return base;
}

bool cs__ag_bt_self_is_main(void)
{
    return cs__ag_self_base() == 0;
}

static bool cs__ag_is_self(uintptr_t self, uintptr_t ip)
{
    Dl_info di;
    return dladdr((void *)ip, &di) && (uintptr_t)di.dli_fbase == self;
}

void cs__ag_bt_trim_self(cs__ag_bt *bt)
{
    uintptr_t self = cs__ag_self_base();
    int i = 0;

    if (!self)
        return;
    while (i < bt->n && cs__ag_is_self(self, bt->ip[i]))
        i++;
    if (i == bt->n)
        return; /* all ours: keep them rather than show nothing */
    memmove(bt->ip, bt->ip + i, (size_t)(bt->n - i) * sizeof(bt->ip[0]));
    bt->n -= i;
    bt->exact0 &= i == 0;
    /* and the task's root (task entry, trampoline) at the other end */
    while (bt->n > 1 && cs__ag_is_self(self, bt->ip[bt->n - 1]))
        bt->n--;
}
