/*
 * map_guard.c - a reader of a mapped segment survives the file shrinking
 * under it.
 *
 * The segment's writer (or anyone who can write the file: its owner) may
 * ftruncate it while we read; touching a page past the new end of the file
 * raises SIGBUS, which would kill the reader (root's `coscope watch`,
 * say).  After Wayland's wl_shm pools (wayland-shm.c, sigbus_handler): the
 * reader registers each mapping here; on a SIGBUS inside one, the handler
 * maps anonymous zero pages over it from the faulting page to its end (all
 * of that lies past the end of the file) and returns, so the access
 * completes, reading zeros, which every reader path treats as "nothing
 * committed".  The guard records the hit and the reader reports the
 * segment corrupt from then on.  A fault anywhere else goes to whoever
 * handled SIGBUS before us.
 *
 * The handler is (re)installed by every registration and stays.  It is
 * async-signal-safe: it reads the table with atomic loads and calls only
 * mmap (a plain system call on Linux, as in Wayland; not in POSIX's list).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define GUARD_MAX 256

/* One registered mapping; start == 0: free.  Written by cs__tr_map_guard_add
 * and _remove, read by the handler. */
static struct guard {
    uintptr_t start; /* first byte of the mapping */
    uintptr_t end;   /* one past its last page */
    int hit;         /* set by the handler: part of it is zeros now */
} guards[GUARD_MAX];

static struct sigaction old_bus; /* handed the faults that are not ours */
static uintptr_t page_size;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < GUARD_MAX; i++) {
        uintptr_t s = __atomic_load_n(&guards[i].start, __ATOMIC_ACQUIRE);
        uintptr_t e = __atomic_load_n(&guards[i].end, __ATOMIC_RELAXED);
        if (s == 0 || a < s || a >= e)
            continue;
        uintptr_t from = a & ~(page_size - 1);
        if (mmap((void *)from, e - from, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                 0) != MAP_FAILED) {
            __atomic_store_n(&guards[i].hit, 1, __ATOMIC_RELEASE);
            return; /* the faulting load is retried and reads 0 */
        }
        break;
    }
    /* A handler installed after ours that hands its faults back to us
     * would loop: the second time round, die of the fault instead. */
    static int chaining;
    if (__atomic_exchange_n(&chaining, 1, __ATOMIC_ACQ_REL)) {
        signal(SIGBUS, SIG_DFL);
        return;
    }
    cs__tr_signal_chain(&old_bus, sig, si, uc);
    __atomic_store_n(&chaining, 0, __ATOMIC_RELEASE);
}

/* Puts the handler in place unless it is there: a program (or a test
 * harness like cmocka's) may have set its own SIGBUS handler since the
 * last registration; ours then hands that one what is not ours. */
static int install(void)
{
    struct sigaction sa, cur;
    int err = 0;
    pthread_mutex_lock(&install_lock);
    if (page_size == 0)
        page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (sigaction(SIGBUS, NULL, &cur) != 0) {
        err = -errno;
    } else if (!(cur.sa_flags & SA_SIGINFO) ||
               cur.sa_sigaction != bus_handler) {
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = bus_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        old_bus = cur;
        if (sigaction(SIGBUS, &sa, NULL) != 0)
            err = -errno;
    }
    pthread_mutex_unlock(&install_lock);
    return err;
}

int cs__tr_map_guard_add(const void *base, size_t size)
{
    int err = install();
    if (err)
        return err;
    uintptr_t s = (uintptr_t)base;
    uintptr_t e = s + ((size + page_size - 1) & ~(page_size - 1));
    for (int i = 0; i < GUARD_MAX; i++) {
        uintptr_t free_ = 0;
        if (__atomic_load_n(&guards[i].start, __ATOMIC_RELAXED) != 0)
            continue;
        /* Claim with a placeholder so that the handler never sees a start
         * with another mapping's end. */
        if (!__atomic_compare_exchange_n(&guards[i].start, &free_, 1, 0,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&guards[i].end, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&guards[i].hit, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&guards[i].end, e, __ATOMIC_RELAXED);
        __atomic_store_n(&guards[i].start, s, __ATOMIC_RELEASE);
        return i;
    }
    return -ENOSPC;
}

int cs__tr_map_guard_hit(int slot)
{
    return slot >= 0 && slot < GUARD_MAX &&
           __atomic_load_n(&guards[slot].hit, __ATOMIC_ACQUIRE);
}

void cs__tr_map_guard_remove(int slot)
{
    if (slot < 0 || slot >= GUARD_MAX)
        return;
    __atomic_store_n(&guards[slot].end, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&guards[slot].start, 0, __ATOMIC_RELEASE);
}
