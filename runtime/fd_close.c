/*
 * fd_close.c - fds closed behind the runtime's back: close(), dup2(),
 * dup3() and close_range() as the program calls them.
 *
 * epoll registers a file, not a number.  A program that closes an fd with
 * plain close() and gets the number back from socket(), accept(), pipe()
 * or open() has a new file under an old number: the kernel dropped the
 * old file's registration, and nothing registered the new one, so a task
 * that waits on it is never woken; worse, the new file may be blocking,
 * and a read on it would block the whole loop.
 *
 * The runtime therefore defines these four functions itself (in
 * libcoscope.so they interpose libc's for the whole process; in
 * libcoscope.a they are the program's own, linked with io.o).  Each makes
 * the system call, then bumps a per-fd generation word in a process-wide
 * table when the number was registered with a loop.  A loop stores the
 * generation it registered under (cs__fd.gen; the high half of its poller
 * token, CS__TOKEN_FD) and compares it before trusting its registration
 * (io.c): a changed word means a new file, which is registered afresh,
 * made non-blocking, and whose old waiters are woken with CS_EBADF; an
 * event carrying an old generation comes from the old file and is
 * dropped.  A count of such closes lets each loop sweep its waiters
 * before it sleeps, so a task parked on a file another task closed is
 * woken too (as cs_close would have done).
 *
 * Generation words: bit 0 set while some loop holds a registration; a
 * close of such an fd adds one (clearing the bit, a new even value).
 * The wrappers are async-signal-safe: a system call and two atomic adds.
 * Closes that do not go through these symbols (a raw syscall(SYS_close),
 * libc's internal closes in fclose/closedir, another library's calls
 * when the program links libcoscope.a without exporting them) are not
 * seen; cs_close() and cs_forget_fd() remain the explicit, cheapest way.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* close_range(2)'s flag that marks fds close-on-exec instead of closing
 * them (linux/close_range.h, not in every libc's headers) */
#define CLOSE_RANGE_CLOEXEC_FLAG (1U << 2)

uint32_t *cs__fd_gen;        /* CS__FD_GEN_MAX words, or NULL */
uint32_t cs__fd_closes;      /* registered fds closed, ever */
static int cs__fd_high = -1; /* highest fd ever registered */
static pthread_once_t cs__fd_once = PTHREAD_ONCE_INIT;

static void cs__fd_gen_map(void)
{
    void *p = mmap(NULL, CS__FD_GEN_MAX * sizeof(uint32_t),
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p != MAP_FAILED)
        __atomic_store_n(&cs__fd_gen, (uint32_t *)p, __ATOMIC_RELEASE);
}

uint32_t cs__fd_gen_register(int fd)
{
    uint32_t *g;

    pthread_once(&cs__fd_once, cs__fd_gen_map);
    g = __atomic_load_n(&cs__fd_gen, __ATOMIC_ACQUIRE);
    if (!g || fd < 0 || fd >= CS__FD_GEN_MAX)
        return 0;
    for (int h = __atomic_load_n(&cs__fd_high, __ATOMIC_RELAXED); fd > h;)
        if (__atomic_compare_exchange_n(&cs__fd_high, &h, fd, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            break;
    return __atomic_or_fetch(&g[fd], 1, __ATOMIC_RELAXED);
}

/* fd's number now names another file (or none).  Async-signal-safe. */
static void cs__fd_gone(int fd)
{
    uint32_t *g = __atomic_load_n(&cs__fd_gen, __ATOMIC_ACQUIRE);
    uint32_t v;

    if (!g || fd < 0 || fd >= CS__FD_GEN_MAX)
        return;
    v = __atomic_load_n(&g[fd], __ATOMIC_RELAXED);
    while ((v & 1) &&
           !__atomic_compare_exchange_n(&g[fd], &v, v + 1, false,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    if (v & 1)
        __atomic_add_fetch(&cs__fd_closes, 1, __ATOMIC_RELEASE);
}

/* Wakes a task waiting on f's old file with CS_EBADF, as cs_forget_fd. */
static void cs__fd_drop_waiters(cs__fd *f)
{
    for (int pass = 0; pass < 2; pass++) {
        cs_task *t = pass ? f->writer : f->reader;
        if (t) {
            cs__fd_unlink(t);
            cs__wake(t, CS_EBADF);
        }
    }
}

void cs__fd_renew(cs__fd *f)
{
    cs__fd_drop_waiters(f);
    memset(f, 0, sizeof(*f));
}

void cs__fd_sweep(cs__loop *loop)
{
    int high = __atomic_load_n(&cs__fd_high, __ATOMIC_RELAXED);

    loop->fd_closes_seen = __atomic_load_n(&cs__fd_closes, __ATOMIC_ACQUIRE);
    for (int fd = 0; fd < loop->nfds && fd <= high; fd++) {
        cs__fd *f = &loop->fds[fd];
        if (f->registered && (f->reader || f->writer) &&
            !cs__fd_current(fd, f))
            cs__fd_renew(f);
    }
}

/* ---- the program's calls ------------------------------------------------- */

CS_EXTERN int close(int fd)
{
    int r = (int)syscall(SYS_close, fd);

    /* EINTR and EIO still close the fd on Linux; only EBADF did not */
    if (r == 0 || errno != EBADF) {
        int e = errno;
        cs__fd_gone(fd);
        errno = e;
    }
    return r;
}

CS_EXTERN int dup3(int old, int new, int flags)
{
    int r = (int)syscall(SYS_dup3, old, new, flags);

    if (r >= 0)
        cs__fd_gone(new);
    return r;
}

CS_EXTERN int dup2(int old, int new)
{
    if (old == new) /* no file changes; dup3 would refuse it */
        return fcntl(old, F_GETFD) < 0 ? -1 : new;
    return dup3(old, new, 0);
}

CS_EXTERN int close_range(unsigned first, unsigned last, int flags)
{
    int r = (int)syscall(SYS_close_range, first, last, flags);
    int high = __atomic_load_n(&cs__fd_high, __ATOMIC_RELAXED);

    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC_FLAG))
        for (long fd = first; fd <= (long)last && fd <= high; fd++)
            cs__fd_gone((int)fd);
    return r;
}
