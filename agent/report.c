/*
 * report.c - the agent's one output channel: a headline, detail lines and
 * symbolised stacks on stderr, under one lock so that reports from several
 * loop threads do not interleave.  Frames look like gdb's:
 *
 *     #1  0x000055d0c1a2b3c4 in fetch_page+0x1c (buggy.c:42)
 *
 * (module+offset when the object has no symbol for the address).
 * COSCOPE_STRICT=1 makes the end of the first report abort the process.
 */
#include "agent.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t cs__report_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread bool cs__raw; /* reporting on a task's stack: no libdw */

struct cs__offstack {
    void (*fn)(void *);
    void *arg;
};

/* Starts a thread of ours with every asynchronous signal blocked, so that
 * the program's SIGINT/SIGTERM (maybe blocked in its own threads and read
 * from a signalfd) is never delivered to it; faults stay deliverable so a
 * crash in it is still reported (libuv's threadpool does the same). */
int cs__thread_start(pthread_t *th, const pthread_attr_t *at, void *(*fn)(void *),
                  void *arg)
{
    sigset_t all, old;
    int r;

    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(th, at, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static void *cs__offstack_main(void *p)
{
    struct cs__offstack *o = p;
    o->fn(o->arg);
    return NULL;
}

static unsigned cs__made[8], cs__left_out[8]; /* per class bit */

static int cs__class_index(unsigned cls)
{
    return __builtin_ctz(cls) & 7;
}

static void cs__say_left_out(void)
{
    static const char *names[] = {"never-awaited", "unretrieved", "pending",
                                  "blocking", "deadlock", "crash", "slow"};

    for (int k = 0; k < 7; k++)
        if (__atomic_load_n(&cs__left_out[k], __ATOMIC_RELAXED))
            fprintf(stderr, "coscope: %u more '%s' reports were left out "
                            "(after the first %d)\n",
                    cs__left_out[k], names[k], CS__REPORTS_MAX);
}

/* True while class cls is under its report budget. */
static bool cs__budget(unsigned cls)
{
    static int said;
    int k = cs__class_index(cls);

    if (__atomic_add_fetch(&cs__made[k], 1, __ATOMIC_RELAXED) <=
        CS__REPORTS_MAX)
        return true;
    __atomic_add_fetch(&cs__left_out[k], 1, __ATOMIC_RELAXED);
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        atexit(cs__say_left_out);
    return false;
}

void cs__report_trace(unsigned cls, uint64_t task_id, const cs__bt *bt)
{
    /* CS_WARN_* of coscope/trace_format.h, by class bit */
    static const int kinds[] = {3 /* never awaited */, 4 /* exception */,
                                5 /* pending */,       2 /* blocking */,
                                6 /* deadlock */,      7 /* crash */,
                                1 /* slow step */};

    cs__bt own;

    if (!(cs__cfg.reports & cls))
        return;
    if (bt) { /* the stack as the report prints it: without our frames */
        own = *bt;
        cs__bt_trim_self(&own);
    }
    cs_agent_trace_warning(kinds[cs__class_index(cls)], task_id,
                           bt ? own.ip : NULL, bt ? (size_t)own.n : 0);
}

void cs__report_offstack(unsigned cls, void (*fn)(void *), void *arg)
{
    struct cs__offstack o = {fn, arg};
    pthread_t th;

    if (!(cs__cfg.reports & cls) || !cs__budget(cls))
        return;

    if (cs__thread_start(&th, NULL, cs__offstack_main, &o) == 0) {
        pthread_join(th, NULL);
        return;
    }
    cs__raw = true; /* no thread: report here, without the symboliser */
    fn(arg);
    cs__raw = false;
}

/* Names ip with what dladdr knows (exported symbols, the object), which
 * needs little stack. */
static void cs__sym_raw(uintptr_t ip, cs__sym *s)
{
    Dl_info di;

    memset(s, 0, sizeof(*s));
    if (!dladdr((void *)ip, &di))
        return;
    s->module = di.dli_fname;
    s->modoff = ip - (uintptr_t)di.dli_fbase;
    if (di.dli_sname) {
        s->func = di.dli_sname;
        s->offset = ip - (uintptr_t)di.dli_saddr;
    }
}

static void cs__vline(const char *prefix, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s", prefix);

    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", buf);
}

bool cs__report_begin(unsigned cls, const char *fmt, ...)
{
    va_list ap;

    if (!(cs__cfg.reports & cls))
        return false;
    pthread_mutex_lock(&cs__report_mu);
    va_start(ap, fmt);
    cs__vline("coscope: ", fmt, ap);
    va_end(ap);
    return true;
}

void cs__report_line(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cs__vline("  ", fmt, ap);
    va_end(ap);
}

static const char *cs__basename(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path;
}

void cs__report_stack(const cs__bt *bt)
{
    for (int i = 0; i < bt->n; i++) {
        cs__sym s;
        char where[320] = "";
        int same = 0;

        while (i > 0 && i + same < bt->n && bt->ip[i + same] == bt->ip[i - 1])
            same++;
        if (same > 1) { /* deep recursion: one line for the run */
            fprintf(stderr, "    ... the frame above %d more times\n", same);
            i += same - 1;
            continue;
        }

        if (cs__raw)
            cs__sym_raw(bt->ip[i], &s);
        else
            cs__sym_lookup(bt->ip[i], i > 0 || !bt->exact0, &s);
        if (s.func)
            snprintf(where, sizeof(where), " in %s+0x%lx", s.func,
                     (unsigned long)s.offset);
        else if (s.module)
            snprintf(where, sizeof(where), " in %s+0x%lx",
                     cs__basename(s.module), (unsigned long)s.modoff);
        if (s.file)
            snprintf(where + strlen(where), sizeof(where) - strlen(where),
                     " (%s:%d)", cs__basename(s.file), s.line);
        fprintf(stderr, "    #%-2d 0x%016lx%s\n", i, (unsigned long)bt->ip[i],
                where);
    }
    if (bt->n == 0)
        fprintf(stderr, "    (no stack)\n");
}

void cs__report_end(void)
{
    cs__sym_release();
    fflush(stderr);
    pthread_mutex_unlock(&cs__report_mu);
    if (cs__cfg.strict) {
        fprintf(stderr, "  COSCOPE_STRICT=1: aborting at the first report\n");
        abort();
    }
}

bool cs__report_allowed(const cs__bt *bt)
{
    bool allowed = false;

    if (cs__cfg.nallow == 0 || cs__raw)
        return false;
    pthread_mutex_lock(&cs__report_mu); /* the symboliser is not reentrant */
    for (int i = 0; i < bt->n && !allowed; i++) {
        cs__sym s;
        char site[320] = "";
        cs__sym_lookup(bt->ip[i], i > 0, &s);
        if (s.file)
            snprintf(site, sizeof(site), "%s:%d", cs__basename(s.file),
                     s.line);
        allowed = cs__cfg_allowed(s.func, s.file ? site : NULL);
    }
    cs__sym_release();
    pthread_mutex_unlock(&cs__report_mu);
    return allowed;
}

const char *cs__task_label(const cs_agent_task_info *i, char *buf,
                           size_t cap)
{
    snprintf(buf, cap, "task '%s' (id %llu)", i->name ? i->name : "?",
             (unsigned long long)i->id);
    return buf;
}

const char *cs__wait_text(const cs_agent_task_info *i, char *buf,
                          size_t cap)
{
    cs_agent_task_info h;
    char who[160] = "no task";

    if (i->holder && cs_agent_task_get(i->holder, &h) == 0)
        cs__task_label(&h, who, sizeof(who));
    switch (i->wait_reason) {
    case 1:
        if (i->deadline_ns >= 0)
            snprintf(buf, cap, "sleeps (%.3f s left)",
                     (double)(i->deadline_ns - cs_now_ns()) / 1e9);
        else
            snprintf(buf, cap, "sleeps");
        break;
    case 2: snprintf(buf, cap, "awaits %s", who); break;
    case 3:
        snprintf(buf, cap, "waits for lock %p held by %s", i->wait_obj, who);
        break;
    case 4: snprintf(buf, cap, "waits for event %p", i->wait_obj); break;
    case 5: snprintf(buf, cap, "waits for semaphore %p", i->wait_obj); break;
    case 6:
        snprintf(buf, cap, "waits to put into full queue %p", i->wait_obj);
        break;
    case 7:
        snprintf(buf, cap, "waits to get from empty queue %p", i->wait_obj);
        break;
    case 8: snprintf(buf, cap, "waits for fd %d to be readable", i->wait_fd); break;
    case 9: snprintf(buf, cap, "waits for fd %d to be writable", i->wait_fd); break;
    case 10: snprintf(buf, cap, "waits for a cs_to_thread call"); break;
    default:
        snprintf(buf, cap, "%s", i->state == CS_AGENT_READY ? "is ready to run"
                                                            : "is not waiting");
    }
    return buf;
}
