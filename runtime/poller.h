/*
 * poller.h - the poller's interface (poll_epoll.c is the only file that knows
 * epoll, as ae_epoll.c in Redis) and the loop's dispatch of what it
 * returns.  Private to the runtime.
 *
 * A registration is an fd, a 64-bit token that comes back with its events
 * and a mask of CS_READABLE/CS_WRITABLE, optionally CS__POLL_EDGE; a wait
 * returns (token, mask) pairs.  The loop (loop.c) dispatches each by its
 * token: an fd's readiness to io.c's waiters (cs__io_ready), the thread
 * pool's wake-up to its collector.
 */
#ifndef CS_RUNTIME_POLLER_H
#define CS_RUNTIME_POLLER_H

#include "internal.h"

#define CS__POLL_MAX 256    /* events taken per cs__poll_wait */
#define CS__POLL_EDGE 0x100 /* cs__poll_add: edge- not level-triggered */
/* Tokens the loop registers: an fd's I/O, with the generation it was
 * registered under (fd_close.c) in the high half, or the thread pool's
 * wake-up (no fd number is 2^32 - 1). */
#define CS__TOKEN_FD(fd, gen) ((uint64_t)(gen) << 32 | (uint32_t)(fd))
#define CS__TOKEN_JOBS UINT64_MAX
typedef struct cs__poll_event {
    uint64_t token; /* as given to cs__poll_add */
    unsigned mask;  /* CS_READABLE|CS_WRITABLE: what is ready */
} cs__poll_event;
int cs__poll_init(cs__loop *loop);
void cs__poll_close(cs__loop *loop);
/* Watches fd for mask (CS_READABLE|CS_WRITABLE|CS__POLL_EDGE), replacing
 * any registration of the number; 0 or a negative code. */
int cs__poll_add(cs__loop *loop, int fd, uint64_t token, unsigned mask);
void cs__poll_del(cs__loop *loop, int fd);
int cs__poll_wait(cs__loop *loop, int64_t timeout_ns, cs__poll_event *out,
                  int max);

/* io.c's part of the loop's poll phase, inline for the hot path: the
 * poller says fd, registered under gen, is ready for mask; the edge
 * goes to its waiters.  An edge registered under another generation comes
 * from a file the number no longer names (one kept open elsewhere after
 * the program closed this fd): dropped. */
static inline void cs__io_ready(cs__loop *loop, int fd, uint32_t gen,
                                unsigned mask)
{
    cs__fd *f = cs__fd_get(loop, fd);

    if (!f || gen != f->gen)
        return;
    if (mask & CS_READABLE)
        f->readable = true;
    if (mask & CS_WRITABLE)
        f->writable = true;
    for (int pass = 0; pass < 2; pass++) {
        cs_task *t = pass ? f->writer : f->reader;
        int got;
        if (!t || !(got = (int)mask & t->wait.events))
            continue;
        cs__fd_unlink(t);
        cs__wake(t, got);
    }
}

#endif
