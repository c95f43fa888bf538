/*
 * watchdog.c - "Executing task 'T' took X seconds" (asyncio's slow-callback
 * warning, with a stack): a thread that watches every loop's current step
 * and, when one has run past COSCOPE_SLOW_MS, samples the loop thread's
 * stack through a signal (sample.c) while the step still runs; when the
 * step ends it reports the step's duration with that stack.  It sees
 * CPU-bound loops and blocking calls nobody interposed.
 *
 * Where steps come from is a step source: a function listing each loop
 * thread's current step (thread id, start time, task id).  The runtime's
 * trace segment has these words (ring header: tid, step_start, step_task);
 * until the agent reads them there is no source and no watchdog thread.
 * A slow step's duration is measured by the watchdog's polls: to within
 * one period (a quarter of the threshold, at most 10 ms).
 */
#include "agent.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CS__WATCH_MAX 64 /* loop threads watched */

/* What the watchdog knows of one loop thread. */
struct cs__ag_watched {
    pid_t tid;         /* 0: unused entry */
    int64_t start_ns;  /* start of the step being watched, 0 none */
    int64_t src_start; /* the source's start_ns and seq for that step: */
    uint64_t src_seq;  /* either moves when it ends */
    uint64_t task_id;  /* its task */
    bool sampled;      /* sample holds this step's stack */
    bool wake;         /* a warning posted to the loop may wait for it:
                           look again and wake it (a signal can arrive
                           just before it goes to sleep) */
    cs__ag_sample sample;
};

static struct {
    cs__ag_step_source *src;
    void *arg;
    pthread_t th;
    pid_t pid; /* the process the thread runs in (fork) */
    bool running;
    int stop; /* atomic */
    /* the watchdog's naps end early when stop is set: they can last a
     * whole threshold (COSCOPE_SLOW_MS), too long to hold up an exit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool cv_ready;
    struct cs__ag_watched w[CS__WATCH_MAX];
} cs__ag_wd;

struct cs__ag_slow {
    const struct cs__ag_watched *w;
    int64_t took_ns;
};

static void cs__ag_slow_report(void *arg)
{
    struct cs__ag_slow *s = arg;
    cs__ag_bt bt = s->w->sample.bt;

    if (!cs__ag_report_begin(CS_WARN_SLOW_STEP,
                             "Executing task '%s' took %.3f seconds",
                             s->w->sample.task, (double)s->took_ns / 1e9))
        return;
    cs__ag_report_line(
        "task id %llu; one step held its loop (thread %d) past "
        "the %.0f ms threshold (COSCOPE_SLOW_MS); sampled while "
        "it ran:",
        (unsigned long long)s->w->task_id, (int)s->w->tid,
        (double)cs__ag_cfg.slow_ns / 1e6);
    cs__ag_bt_trim_self(&bt);
    cs__ag_report_stack(&bt);
    cs__ag_report_end();
}

/* A sample taken inside one of resume.c's calls: the stack starts at the
 * call (usleep, poll, ...) as it would with libc's, not in our helpers
 * and the system call below it. */
static void cs__ag_sample_trim_call(cs__ag_sample *s)
{
    cs__ag_bt *bt = &s->bt;

    for (int i = 1; s->call_ret && i < bt->n; i++) {
        if (bt->ip[i] != s->call_ret)
            continue;
        memmove(bt->ip, bt->ip + i - 1,
                (size_t)(bt->n - i + 1) * sizeof(bt->ip[0]));
        bt->n -= i - 1;
        bt->exact0 = false; /* a return address now */
        break;
    }
}

/* The slow step as a warning in the trace, in its loop's ring: posted
 * there from this thread (cs_agent_trace_warning_to), and the loop woken
 * by a sample signal nobody asked for if it may be asleep in its poller,
 * so that coscope metrics/report see it without waiting for the loop's
 * next event.  Not at exit (wake false): the loop has ended or is the
 * caller, and the warning is written at once. */
static void cs__ag_slow_trace(struct cs__ag_watched *w, bool wake)
{
    cs__ag_bt bt = w->sample.bt;
    uint64_t id = w->task_id ? w->task_id : w->sample.task_id;

    cs__ag_bt_trim_self(&bt);
    int r = cs_agent_trace_warning_to(w->tid, CS_WARN_SLOW_STEP, id, bt.ip,
                                      (size_t)bt.n);
    if (r >= 0 && wake) /* posted: look until it is written */
        w->wake = true;
    if (r == 1 && wake)
        cs__ag_sample_wake(w->tid);
}

static struct cs__ag_watched *cs__ag_watched_for(pid_t tid)
{
    struct cs__ag_watched *free_w = NULL;

    for (int k = 0; k < CS__WATCH_MAX; k++) {
        if (cs__ag_wd.w[k].tid == tid)
            return &cs__ag_wd.w[k];
        if (!cs__ag_wd.w[k].tid && !free_w)
            free_w = &cs__ag_wd.w[k];
    }
    if (free_w) {
        memset(free_w, 0, sizeof(*free_w));
        free_w->tid = tid;
    }
    return free_w;
}

/* One step of one loop thread, as seen at `now`. */
static void cs__ag_watch_step(const cs__ag_step *st, int64_t now)
{
    struct cs__ag_watched *w = cs__ag_watched_for(st->tid);

    if (!w)
        return;
    if (w->wake) { /* a posted warning: still waiting in a sleeping loop? */
        int r = cs_agent_trace_warning_to(st->tid, 0, 0, NULL, 0);
        w->wake = r != 0;
        if (r == 1)
            cs__ag_sample_wake(st->tid);
    }
    if (w->start_ns &&
        (w->src_start != st->start_ns || w->src_seq != st->seq)) { /* ended */
        if (w->sampled) {
            struct cs__ag_slow s = {w, now - w->start_ns};
            cs__ag_slow_trace(w, true);
            cs__ag_report_offstack(CS_WARN_SLOW_STEP, cs__ag_slow_report, &s);
        }
        w->start_ns = 0;
        w->sampled = false;
    }
    if (!st->start_ns)
        return;
    if (!w->start_ns) {
        /* begun at an untimed switch (a yield batch): when is not known,
         * so from now, which can only make it look shorter */
        w->start_ns = st->seq ? now : st->start_ns;
        w->src_start = st->start_ns;
        w->src_seq = st->seq;
        w->task_id = st->task_id;
    }
    if (!w->sampled && now - w->start_ns >= cs__ag_cfg.slow_ns &&
        cs__ag_sample_thread(st->tid, &w->sample, 100) == 0 &&
        (w->sample.task_id == st->task_id || !st->task_id)) {
        w->sampled = true;
        cs__ag_sample_trim_call(&w->sample);
    }
}

/*
 * When to look next.  A step that has not been sampled yet cannot cross
 * the threshold before its start + slow_ns, nor can one that starts after
 * this look before now + slow_ns: sleep until the earliest of those.  Only
 * while a sampled (slow) step still runs, or while there is nothing to
 * read yet, poll every period, to time its end to within one period.  So
 * an idle or busy-but-healthy loop costs one wake-up per threshold (10 a
 * second by default), not one per period: on a VM each wake-up is tens of
 * microseconds of CPU.
 */
static int64_t cs__ag_next_look(const cs__ag_step *steps, size_t n,
                                int64_t now, int64_t period)
{
    int64_t next = now + cs__ag_cfg.slow_ns;

    if (n == 0)
        return now + period;
    for (size_t k = 0; k < n; k++) {
        const struct cs__ag_watched *w = cs__ag_watched_for(steps[k].tid);
        /* sampled: time its end; begun in a yield batch (seq): look
         * again soon, its start is only known to within a look */
        if (!w || w->sampled || w->wake || steps[k].seq)
            return now + period;
        if (w->start_ns && w->start_ns + cs__ag_cfg.slow_ns < next)
            next = w->start_ns + cs__ag_cfg.slow_ns;
    }
    return next - now < period / 10 ? now + period / 10 : next;
}

static void *cs__ag_watchdog_main(void *arg)
{
    cs__ag_step steps[CS__WATCH_MAX];
    int64_t period = cs__ag_cfg.slow_ns / 4 < 10000000 ? cs__ag_cfg.slow_ns / 4
                                                       : 10000000;

    (void)arg;
    if (period < 1000000)
        period = 1000000;
    while (!__atomic_load_n(&cs__ag_wd.stop, __ATOMIC_ACQUIRE)) {
        size_t n = cs__ag_wd.src(steps, CS__WATCH_MAX, cs__ag_wd.arg);
        int64_t now = cs_now_ns();
        for (size_t k = 0; k < n; k++)
            cs__ag_watch_step(&steps[k], now);
        int64_t until = cs__ag_next_look(steps, n, now, period);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* the cv's clock */
        until += (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - now;
        ts.tv_sec = until / 1000000000;
        ts.tv_nsec = until % 1000000000;
        pthread_mutex_lock(&cs__ag_wd.mu);
        while (!__atomic_load_n(&cs__ag_wd.stop, __ATOMIC_ACQUIRE) &&
               pthread_cond_timedwait(&cs__ag_wd.cv, &cs__ag_wd.mu, &ts) == 0)
            ;
        pthread_mutex_unlock(&cs__ag_wd.mu);
    }
    return NULL;
}

int cs__ag_watchdog_start(cs__ag_step_source *src, void *arg)
{
    if (cs__ag_wd.running || !src || !cs__ag_reporting(CS_WARN_SLOW_STEP))
        return 0;
    cs__ag_wd.src = src;
    cs__ag_wd.arg = arg;
    __atomic_store_n(&cs__ag_wd.stop, 0, __ATOMIC_RELEASE);
    if (!cs__ag_wd.cv_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cs__ag_wd.cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&cs__ag_wd.mu, NULL);
        cs__ag_wd.cv_ready = true;
    }
    if (cs__tr_thread_start(&cs__ag_wd.th, NULL, cs__ag_watchdog_main, NULL) !=
        0)
        return CS_ENOMEM;
    /* what top -H, gdb and bench/agent_cost.sh show for it */
    pthread_setname_np(cs__ag_wd.th, "coscope-watch");
    cs__ag_wd.running = true;
    cs__ag_wd.pid = getpid();
    static int registered;
    if (!registered++)
        atexit(cs__ag_watchdog_exit);
    return 0;
}

/* Ends the thread; false if there is none here (a forked child has the
 * parent's state but not its thread). */
static bool cs__ag_watchdog_join(void)
{
    if (!cs__ag_wd.running || cs__ag_wd.pid != getpid())
        return false;
    pthread_mutex_lock(&cs__ag_wd.mu);
    __atomic_store_n(&cs__ag_wd.stop, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&cs__ag_wd.cv);
    pthread_mutex_unlock(&cs__ag_wd.mu);
    pthread_join(cs__ag_wd.th, NULL);
    cs__ag_wd.running = false;
    return true;
}

void cs__ag_watchdog_stop(void)
{
    if (cs__ag_watchdog_join())
        memset(cs__ag_wd.w, 0, sizeof(cs__ag_wd.w));
}

/* At exit the watchdog will not look again: a slow step it has sampled,
 * which ended since its last look (or still runs, if a task called exit),
 * is reported now instead of lost with the process. */
void cs__ag_watchdog_exit(void)
{
    if (!cs__ag_watchdog_join())
        return;
    int64_t now = cs_now_ns();
    for (int k = 0; k < CS__WATCH_MAX; k++) {
        struct cs__ag_watched *w = &cs__ag_wd.w[k];
        if (w->tid && w->start_ns && w->sampled) {
            struct cs__ag_slow s = {w, now - w->start_ns};
            cs__ag_slow_trace(w, false);
            cs__ag_report_offstack(CS_WARN_SLOW_STEP, cs__ag_slow_report, &s);
        }
    }
    memset(cs__ag_wd.w, 0, sizeof(cs__ag_wd.w));
}
