/*
 * report.c - the agent's one output channel: a headline, detail lines and
 * symbolised stacks on stderr, under one lock so that reports from several
 * loop threads do not interleave.  Frames look like gdb's:
 *
 *     #1  0x000055d0c1a2b3c4 in fetch_page+0x1c (buggy.c:42)
 *
 * (module+offset when the object has no symbol for the address).
 * COSCOPE_STRICT=1 makes the end of the first report abort the process.
 * COSCOPE_REPORT_DIR=DIR also appends each report to DIR/<pid>.jsonl as one
 * JSON object a line (class, headline, task, pid, frames), one write(2)
 * with O_APPEND per report, for `coscope check`.
 */
#include "agent.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t cs__ag_report_mu = PTHREAD_MUTEX_INITIALIZER;

/* Writes to stderr, unless COSCOPE_REPORT_STDERR=off (coscope check, which
 * renders every report itself from COSCOPE_REPORT_DIR: once, not twice). */
static void cs__ag_say(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void cs__ag_say(const char *fmt, ...)
{
    va_list ap;

    if (cs__ag_cfg.quiet)
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}
static __thread bool cs__ag_raw; /* reporting on a task's stack: no libdw */

struct cs__ag_offstack {
    void (*fn)(void *);
    void *arg;
};

static void *cs__ag_offstack_main(void *p)
{
    struct cs__ag_offstack *o = p;
    o->fn(o->arg);
    return NULL;
}

static bool cs__ag_frame_is_ours(const cs__ag_bt *bt, int i);

static unsigned cs__ag_made[CS_WARN_COUNT], cs__ag_left_out[CS_WARN_COUNT];

static void cs__ag_say_left_out(void)
{
#define CS__SAY(kind, value, name, trace_name, reported)                      \
    if (__atomic_load_n(&cs__ag_left_out[value], __ATOMIC_RELAXED))           \
        fprintf(stderr,                                                       \
                "coscope: %u more '%s' reports were left out "                \
                "(after the first %d)\n",                                     \
                cs__ag_left_out[value], name, CS__REPORTS_MAX);
    CS_REPORT_CLASS_MAP(CS__SAY)
#undef CS__SAY
}

/* True while class cls is under its report budget. */
static bool cs__ag_budget(unsigned cls)
{
    static int said;
    unsigned k = cls < CS_WARN_COUNT ? cls : 0;

    if (__atomic_add_fetch(&cs__ag_made[k], 1, __ATOMIC_RELAXED) <=
        CS__REPORTS_MAX)
        return true;
    __atomic_add_fetch(&cs__ag_left_out[k], 1, __ATOMIC_RELAXED);
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        atexit(cs__ag_say_left_out);
    return false;
}

void cs__ag_report_trace(unsigned cls, uint64_t task_id, const cs__ag_bt *bt)
{
    cs__ag_bt own;

    if (!cs__ag_reporting(cls))
        return;
    if (bt) { /* the stack as the report prints it: without our frames */
        own = *bt;
        cs__ag_bt_trim_self(&own);
    }
    cs_agent_trace_warning((int)cls, task_id, bt ? own.ip : NULL,
                           bt ? (size_t)own.n : 0);
}

/* The agent's own waits (the join below) are no blocking calls of the
 * program's: cs_agent_blocking_report ignores calls made while this is
 * set on the thread. */
static __thread int cs__ag_in_agent;

bool cs__ag_agent_busy(void)
{
    return cs__ag_in_agent != 0;
}

bool cs__ag_offstack(void (*fn)(void *), void *arg)
{
    struct cs__ag_offstack o = {fn, arg};
    pthread_t th;

    if (cs__tr_thread_start(&th, NULL, cs__ag_offstack_main, &o) != 0)
        return false;
    cs__ag_in_agent++;
    pthread_join(th, NULL);
    cs__ag_in_agent--;
    return true;
}

void cs__ag_report_offstack(unsigned cls, void (*fn)(void *), void *arg)
{
    if (!cs__ag_reporting(cls) || !cs__ag_budget(cls))
        return;
    if (cs__ag_offstack(fn, arg))
        return;
    cs__ag_raw = true; /* no thread: report here, without the symboliser */
    fn(arg);
    cs__ag_raw = false;
}

/* cs__ag_report_ours, off the task's stack. */
struct cs__ag_ours {
    uintptr_t ip;
    bool ours;
};

static void cs__ag_ours_main(void *p)
{
    struct cs__ag_ours *o = p;
    cs__ag_bt bt = {.n = 1, .ip = {o->ip}};

    pthread_mutex_lock(
        &cs__ag_report_mu); /* the symboliser is not reentrant */
    o->ours = cs__ag_frame_is_ours(&bt, 1);
    cs__ag_sym_release();
    pthread_mutex_unlock(&cs__ag_report_mu);
}

bool cs__ag_report_ours(uintptr_t ret)
{
    struct cs__ag_ours o = {ret, false};

    if (!cs__ag_bt_self_is_main())
        return false; /* libcoscope.so: the interposer knows it by range */
    cs__ag_offstack(cs__ag_ours_main, &o);
    return o.ours;
}

/* Names ip with what dladdr knows (exported symbols, the object), which
 * needs little stack. */
static void cs__ag_sym_raw(uintptr_t ip, cs__ag_sym *s)
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


/* ---- COSCOPE_REPORT_DIR: the report as one JSON line ------------------- */

#define CS__JS_FRAMES 64
/* The report being written (under the report lock, or in the crash
 * handler, which runs once). */
static struct {
    bool on;
    unsigned cls;
    char head[512];
    char task[128];
    bool has_task;
    bool stacked; /* the first stack is kept; later ones are text only */
    int nf;
    struct {
        uintptr_t ip;
        char func[128];
        char file[256];
        int line;
        bool inlined; /* an inlined call at ip */
    } f[CS__JS_FRAMES];
} cs__ag_js;
static char cs__ag_js_line[65536];

static void cs__ag_js_task_from(const char *text)
{
    const char *p = cs__ag_js.has_task ? NULL : strstr(text, "task '");
    const char *q;
    size_t n;

    if (!p)
        return;
    p += 6;
    q = strchr(p, '\'');
    if (!q)
        return;
    n = (size_t)(q - p) < sizeof(cs__ag_js.task) - 1
            ? (size_t)(q - p)
            : sizeof(cs__ag_js.task) - 1;
    memcpy(cs__ag_js.task, p, n);
    cs__ag_js.task[n] = 0;
    cs__ag_js.has_task = true;
}

static void cs__ag_js_start(unsigned cls, const char *head, size_t n)
{
    const char *dir = getenv("COSCOPE_REPORT_DIR");

    cs__ag_js.on = dir && *dir;
    if (!cs__ag_js.on)
        return;
    cs__ag_js.cls = cls;
    if (n > sizeof(cs__ag_js.head) - 1)
        n = sizeof(cs__ag_js.head) - 1;
    memcpy(cs__ag_js.head, head, n);
    cs__ag_js.head[n] = 0;
    cs__ag_js.has_task = false;
    cs__ag_js.stacked = false;
    cs__ag_js.nf = 0;
    cs__ag_js_task_from(cs__ag_js.head);
}

/* Appends s as a JSON string to cs__ag_js_line at *n (truncating safely). */
static void cs__ag_js_str(size_t *n, const char *s)
{
    size_t cap = sizeof(cs__ag_js_line) - 64;

    if (*n < cap)
        cs__ag_js_line[(*n)++] = '"';
    for (; s && *s && *n < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            cs__ag_js_line[(*n)++] = '\\';
            cs__ag_js_line[(*n)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *n += (size_t)snprintf(cs__ag_js_line + *n, 8, "\\u%04x", c);
        } else {
            cs__ag_js_line[(*n)++] = (char)c;
        }
    }
    cs__ag_js_line[(*n)++] = '"';
}

static void cs__ag_js_put(size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cs__ag_js_put(size_t *n, const char *fmt, ...)
{
    va_list ap;
    size_t cap = sizeof(cs__ag_js_line) - 16;
    int k;

    if (*n >= cap)
        return;
    va_start(ap, fmt);
    k = vsnprintf(cs__ag_js_line + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0)
        *n += (size_t)k < cap - *n ? (size_t)k : cap - *n - 1;
}

static void cs__ag_js_finish(void)
{
    const char *dir = getenv("COSCOPE_REPORT_DIR");
    char path[4096];
    size_t n = 0;
    int fd;

    if (!cs__ag_js.on || !dir || !*dir)
        return;
    cs__ag_js.on = false;
    cs__ag_js_put(&n, "{\"class\":\"%s\",\"headline\":",
                  cs_trace_report_name(cs__ag_js.cls));
    cs__ag_js_str(&n, cs__ag_js.head);
    cs__ag_js_put(&n, ",\"task\":");
    if (cs__ag_js.has_task)
        cs__ag_js_str(&n, cs__ag_js.task);
    else
        cs__ag_js_put(&n, "null");
    cs__ag_js_put(&n, ",\"pid\":%ld,\"frames\":[", (long)getpid());
    for (int i = 0; i < cs__ag_js.nf; i++) {
        if (n > sizeof(cs__ag_js_line) - 1200)
            break; /* keep the line whole: frames are bounded */
        cs__ag_js_put(&n, "%s{\"ip\":\"0x%lx\",\"function\":", i ? "," : "",
                      (unsigned long)cs__ag_js.f[i].ip);
        if (cs__ag_js.f[i].func[0])
            cs__ag_js_str(&n, cs__ag_js.f[i].func);
        else
            cs__ag_js_put(&n, "null");
        cs__ag_js_put(&n, ",\"file\":");
        if (cs__ag_js.f[i].file[0])
            cs__ag_js_str(&n, cs__ag_js.f[i].file);
        else
            cs__ag_js_put(&n, "null");
        cs__ag_js_put(&n, ",\"line\":%d%s}", cs__ag_js.f[i].line,
                      cs__ag_js.f[i].inlined ? ",\"inlined\":true" : "");
    }
    cs__ag_js_put(&n, "]}\n");
    snprintf(path, sizeof(path), "%s/%ld.jsonl", dir, (long)getpid());
    /* Only our own regular file: in a shared directory another user may
     * have put a symlink, a FIFO or a 0666 file there to receive it
     * (docs/reliability.md).  open and fstat: async-signal-safe. */
    fd = open(path,
              O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                  O_CLOEXEC,
              0600);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid()) {
        close(fd);
        return;
    }
    (void)!write(fd, cs__ag_js_line, n);
    close(fd);
}

void cs__ag_report_dir_hello(bool agent_on, bool interposer)
{
    const char *dir = getenv("COSCOPE_REPORT_DIR");
    char path[4096], exe[1024];
    ssize_t k;
    size_t n = 0;
    int fd;

    if (!dir || !*dir)
        return;
    k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[k > 0 ? k : 0] = 0;
    /* the constructor's time: no report is being written yet */
    cs__ag_js_put(&n, "{\"pid\":%ld,\"exe\":", (long)getpid());
    cs__ag_js_str(&n, exe);
    cs__ag_js_put(&n, ",\"agent\":%s,\"interposer\":%s}\n",
                  agent_on ? "true" : "false", interposer ? "true" : "false");
    snprintf(path, sizeof(path), "%s/%ld.agent", dir, (long)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0)
        return;
    (void)!write(fd, cs__ag_js_line, n);
    close(fd);
}

void cs__ag_report_json_begin(unsigned cls, const char *headline, size_t n)
{
    cs__ag_js_start(cls, headline, n);
}

void cs__ag_report_json_end(void)
{
    cs__ag_js_finish();
}

static void cs__ag_vline(const char *prefix, const char *fmt, va_list ap,
                         unsigned head_cls)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s", prefix);

    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    cs__ag_say("%s\n", buf);
    if (head_cls)
        cs__ag_js_start(head_cls, buf + n, strlen(buf + n));
    else if (cs__ag_js.on)
        cs__ag_js_task_from(buf + n);
}

bool cs__ag_report_begin(unsigned cls, const char *fmt, ...)
{
    va_list ap;

    if (!cs__ag_reporting(cls))
        return false;
    pthread_mutex_lock(&cs__ag_report_mu);
    va_start(ap, fmt);
    cs__ag_vline("coscope: ", fmt, ap, cls);
    va_end(ap);
    return true;
}

void cs__ag_report_line(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cs__ag_vline("  ", fmt, ap, 0);
    va_end(ap);
}

static const char *cs__ag_basename(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path;
}

/* True if ip is in a function of coscope itself (cs_*, cs__*): how our
 * frames are told from the program's in a static link, where they share
 * one object. */
static bool cs__ag_frame_is_ours(const cs__ag_bt *bt, int i)
{
    cs__ag_sym s;

    cs__ag_sym_lookup(bt->ip[i], i > 0 || !bt->exact0, &s);
    return s.func && strncmp(s.func, "cs_", 3) == 0;
}

/* In a static link, cs__ag_bt_trim_self cannot tell our frames by object:
 * drop them here by name (the hook and runtime calls innermost, the task's
 * entry and trampoline outermost), keeping all if all are ours. */
#define CS__AG_TRIM_INNER 3
static void cs__ag_trim_by_name(cs__ag_bt *bt)
{
    int lo = 0, hi = bt->n;

    if (cs__ag_raw || !cs__ag_bt_self_is_main())
        return;
    while (lo < hi && cs__ag_frame_is_ours(bt, lo))
        lo++;
    if (lo == hi)
        return;
    /* A sample taken inside a call the program made to us (cs_now_ns in
     * clock_gettime in the vDSO): the few frames inside ours are ours
     * too, unless our run is the outermost one (the task's entry calling
     * the program's function, which is then innermost). */
    if (lo == 0) {
        int f = 1, g;
        while (f < hi && f <= CS__AG_TRIM_INNER &&
               !cs__ag_frame_is_ours(bt, f))
            f++;
        for (g = f; g < hi && cs__ag_frame_is_ours(bt, g); g++)
            ;
        if (f <= CS__AG_TRIM_INNER && f < g && g < hi)
            lo = g;
    }
    while (hi - 1 > lo && cs__ag_frame_is_ours(bt, hi - 1))
        hi--;
    memmove(bt->ip, bt->ip + lo, (size_t)(hi - lo) * sizeof(bt->ip[0]));
    bt->n = hi - lo;
    bt->exact0 &= lo == 0;
}

/* One printed frame (and, for the first stack of a report, one JSON
 * frame): "#k  0x... in func+0xoff (file:line)"; an inlined call has no
 * offset and says "[inlined]". */
static void cs__ag_frame_out(int k, uintptr_t ip, const char *func,
                             uintptr_t off, const char *mod, uintptr_t modoff,
                             const char *file, int line, bool inlined)
{
    char where[320] = "";

    if (func && inlined)
        snprintf(where, sizeof(where), " in %s [inlined]", func);
    else if (func)
        snprintf(where, sizeof(where), " in %s+0x%lx", func,
                 (unsigned long)off);
    else if (mod)
        snprintf(where, sizeof(where), " in %s+0x%lx", cs__ag_basename(mod),
                 (unsigned long)modoff);
    if (file)
        snprintf(where + strlen(where), sizeof(where) - strlen(where),
                 " (%s:%d)", cs__ag_basename(file), line);
    cs__ag_say("    #%-2d 0x%016lx%s\n", k, (unsigned long)ip, where);
    if (cs__ag_js.on && !cs__ag_js.stacked && cs__ag_js.nf < CS__JS_FRAMES) {
        int j = cs__ag_js.nf++;
        cs__ag_js.f[j].ip = ip;
        cs__ag_js.f[j].inlined = inlined;
        snprintf(cs__ag_js.f[j].func, sizeof(cs__ag_js.f[j].func), "%s",
                 func ? func : "");
        snprintf(cs__ag_js.f[j].file, sizeof(cs__ag_js.f[j].file), "%s",
                 file ? file : "");
        cs__ag_js.f[j].line = file ? line : 0;
    }
}

void cs__ag_report_stack(const cs__ag_bt *stack)
{
    cs__ag_bt own = *stack, *bt = &own;
    int k = 0;

    cs__ag_trim_by_name(bt);
    for (int i = 0; i < bt->n; i++) {
        cs__ag_sym s;
        int same = 0;

        while (i > 0 && i + same < bt->n && bt->ip[i + same] == bt->ip[i - 1])
            same++;
        if (same > 1) { /* deep recursion: one line for the run */
            cs__ag_say("    ... the frame above %d more times\n", same);
            i += same - 1;
            continue;
        }

        if (cs__ag_raw)
            cs__ag_sym_raw(bt->ip[i], &s);
        else
            cs__ag_sym_lookup(bt->ip[i], i > 0 || !bt->exact0, &s);
        /* inlined calls first, innermost first, at the same address */
        for (int j = 0; j < s.ninline; j++)
            cs__ag_frame_out(k++, bt->ip[i], s.inl[j].func, 0, NULL, 0,
                             s.inl[j].file, s.inl[j].line, true);
        cs__ag_frame_out(k++, bt->ip[i], s.func, s.offset, s.module, s.modoff,
                         s.file, s.line, false);
    }
    cs__ag_js.stacked = true;
    if (bt->n == 0)
        cs__ag_say("    (no stack)\n");
}

void cs__ag_report_end(void)
{
    cs__ag_js_finish();
    cs__ag_sym_release();
    fflush(stderr);
    pthread_mutex_unlock(&cs__ag_report_mu);
    if (cs__ag_cfg.strict) {
        fprintf(stderr, "  COSCOPE_STRICT=1: aborting at the first report\n");
        abort();
    }
}

bool cs__ag_report_allowed(const cs__ag_bt *bt)
{
    bool allowed = false;

    if (cs__ag_cfg.nallow == 0 || cs__ag_raw)
        return false;
    pthread_mutex_lock(
        &cs__ag_report_mu); /* the symboliser is not reentrant */
    for (int i = 0; i < bt->n && !allowed; i++) {
        cs__ag_sym s;
        char site[320] = "";
        cs__ag_sym_lookup(bt->ip[i], i > 0 || !bt->exact0, &s);
        for (int j = 0; j < s.ninline && !allowed; j++) { /* inlined too */
            if (s.inl[j].file)
                snprintf(site, sizeof(site), "%s:%d",
                         cs__ag_basename(s.inl[j].file), s.inl[j].line);
            allowed =
                cs__ag_cfg_allowed(s.inl[j].func, s.inl[j].file ? site : NULL);
        }
        if (s.file)
            snprintf(site, sizeof(site), "%s:%d", cs__ag_basename(s.file),
                     s.line);
        allowed = allowed || cs__ag_cfg_allowed(s.func, s.file ? site : NULL);
    }
    cs__ag_sym_release();
    pthread_mutex_unlock(&cs__ag_report_mu);
    return allowed;
}

const char *cs__ag_task_label(const cs_agent_task_info *i, char *buf,
                              size_t cap)
{
    snprintf(buf, cap, "task '%s' (id %llu)", i->name ? i->name : "?",
             (unsigned long long)i->id);
    return buf;
}

const char *cs__ag_wait_text(const cs_agent_task_info *i, char *buf,
                             size_t cap)
{
    cs_agent_task_info h;
    char who[160] = "no task";

    if (i->holder && cs_agent_task_get(i->holder, &h) == 0)
        cs__ag_task_label(&h, who, sizeof(who));
    /* A sentence per wait reason (CS_WAIT_*), by what it names: the
     * awaited or holding task, the object waited on, or the fd. */
    static const struct {
        const char *fmt;
        char arg; /* 't' task, 'o' object, 'l' object and task, 'f' fd */
    } said[] = {
        [2] = {"awaits %s", 't'},
        [3] = {"waits for lock %p held by %s", 'l'},
        [4] = {"waits for event %p", 'o'},
        [5] = {"waits for semaphore %p", 'o'},
        [6] = {"waits to put into full queue %p", 'o'},
        [7] = {"waits to get from empty queue %p", 'o'},
        [8] = {"waits for fd %d to be readable", 'f'},
        [9] = {"waits for fd %d to be writable", 'f'},
        [10] = {"waits for a cs_to_thread call", 0},
    };
    unsigned r = (unsigned)i->wait_reason;
    const char *fmt = r < sizeof said / sizeof said[0] ? said[r].fmt : NULL;
    if (r == 1 && i->deadline_ns >= 0)
        snprintf(buf, cap, "sleeps (%.3f s left)",
                 (double)(i->deadline_ns - cs_now_ns()) / 1e9);
    else if (r == 1)
        snprintf(buf, cap, "sleeps");
    else if (fmt == NULL)
        snprintf(buf, cap, "%s",
                 i->state == CS_AGENT_READY ? "is ready to run"
                                            : "is not waiting");
    else if (said[r].arg == 't')
        snprintf(buf, cap, fmt, who);
    else if (said[r].arg == 'l')
        snprintf(buf, cap, fmt, i->wait_obj, who);
    else if (said[r].arg == 'o')
        snprintf(buf, cap, fmt, i->wait_obj);
    else if (said[r].arg == 'f')
        snprintf(buf, cap, fmt, i->wait_fd);
    else
        snprintf(buf, cap, "%s", fmt);
    return buf;
}
