/*
 * metrics.c - the metrics of every coscope process on the host, in
 * Prometheus' text exposition format 0.0.4 or in OpenMetrics 1.0 text.
 *
 * What is read where:
 *   - task counts by state and wait reason: the task table, at each scrape;
 *   - steps, the step-duration histogram, the loops' epoll wait time and
 *     warnings by kind: the event rings, read from a cursor kept per ring
 *     since the first scrape that saw the process (its first scrape reads
 *     what the rings still hold), so these counters only grow;
 *   - events written, loop iterations, drops: the segment's own counters;
 *   - events lost: records overwritten before the exporter read them.
 * Names follow Prometheus' rules: a coscope_ prefix, base units (seconds),
 * _total on counters; every sample carries pid and command labels.
 *
 * Segments are opened as `coscope ps` opens them (cs_trace_open_segment,
 * then cs_trace_stale) and kept open between scrapes; a stale one (its
 * process gone, or its pid reused) is closed and forgotten.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "metrics.h"

/* Step-duration buckets, seconds: 0.1 is asyncio's slow-callback
 * threshold, so "steps over 100 ms" is count - bucket{le="0.1"}. */
static const double bucket_le[] = {1e-6, 1e-5, 1e-4, 1e-3, 0.005, 0.01, 0.025,
                                   0.05, 0.1,  0.25, 1,    2.5,   10};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

/* One loop (ring) of a process. */
struct mloop {
    uint64_t cursor;     /* seq of the last record consumed or lost */
    uint64_t wait_ticks; /* epoll_wait time of the iterations read */
    uint64_t last_ts;    /* clock value of the newest record read */
    uint64_t first_ns;   /* ns of the first record read, 0 none */
    double wait_s;       /* exported wait total: never decreases */
    uint64_t prev_ns;    /* when wait_s was last computed, 0 never */
    double busy;         /* busy fraction since the previous scrape */
    double running_s;    /* the current step's age, 0 when idle */
    cs_trace_ring ring;  /* header as of this scrape */
};

/* One process, remembered from scrape to scrape. */
struct mproc {
    int pid;
    int seen;    /* listed in /dev/shm at this scrape */
    cs_trace *t; /* its segment, open */
    cs_trace_info info;
    char labels[192];    /* pid="..",command=".." */
    struct mloop *loops; /* info.ring_count of them */
    uint64_t steps_timed, yield_steps;
    uint64_t
        hist[NBUCKETS]; /* non-cumulative: bucket i holds le[i-1]..le[i] */
    uint64_t hist_inf;  /* beyond the last bound */
    double sum_s;
    uint64_t warn[CS_WARN_COUNT + 1]; /* last: kinds this version lacks */
    uint64_t lost, written;
    uint64_t tasks[CS_TASK_STATE_COUNT];
    uint64_t waiting[CS_WAIT_COUNT];
};

struct cli_metrics {
    struct mproc **v; /* processes, by pid */
    size_t n, cap;
    cs_trace_event *ev; /* read buffer */
    size_t evcap;
    unsigned stale, unreadable; /* segments left out at the last scrape */
    double scrape_s;            /* time the last collection took */
};

const char *cli_metrics_content_type(enum cli_metrics_format fmt)
{
    return fmt == CLI_METRICS_OPENMETRICS
               ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
               : "text/plain; version=0.0.4; charset=utf-8";
}

struct cli_metrics *cli_metrics_new(void)
{
    struct cli_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->evcap = 4096;
    if ((m->ev = malloc(m->evcap * sizeof *m->ev)) == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

static void proc_free(struct mproc *p)
{
    if (p == NULL)
        return;
    cs_trace_close(p->t);
    free(p->loops);
    free(p);
}

void cli_metrics_free(struct cli_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        proc_free(m->v[i]);
    free(m->v);
    free(m->ev);
    free(m);
}

/* Appends s to buf as a label value: backslash, quote and newline
 * escaped, as the text format asks. */
static void label_escape(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            buf[n++] = '\\';
            buf[n++] = *s == '\n' ? 'n' : *s;
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
}

static struct mproc *proc_open(const char *path, int pid, int *status)
{
    cs_trace *t = NULL;
    int err = cs_trace_open_segment(path, &t);
    if (err != 0) {
        *status = err == -ENOENT ? 0 : -1; /* gone meanwhile: not counted */
        return NULL;
    }
    if (cs_trace_stale(t) != 0) {
        cs_trace_close(t);
        *status = 1;
        return NULL;
    }
    struct mproc *p = calloc(1, sizeof *p);
    if (p != NULL) {
        cs_trace_info_get(t, &p->info);
        p->loops = calloc(p->info.ring_count ? p->info.ring_count : 1,
                          sizeof *p->loops);
    }
    if (p == NULL || p->loops == NULL || p->info.pid != pid) {
        *status = p == NULL || p->loops == NULL ? -ENOMEM : -1;
        cs_trace_close(t);
        if (p)
            free(p->loops);
        free(p);
        return NULL;
    }
    p->t = t;
    p->pid = pid;
    char cmd[CS_EXE_PATH_MAX];
    const char *slash = strrchr(p->info.exe_path, '/');
    snprintf(cmd, sizeof cmd, "%s", slash ? slash + 1 : p->info.exe_path);
    cli_sanitize(cmd);
    snprintf(p->labels, sizeof p->labels, "pid=\"%d\",command=\"", pid);
    label_escape(p->labels, sizeof p->labels - 1, cmd);
    strcat(p->labels, "\"");
    return p;
}

static void observe(struct mproc *p, double s)
{
    size_t i = 0;
    while (i < NBUCKETS && s > bucket_le[i])
        i++;
    if (i == NBUCKETS)
        p->hist_inf++;
    else
        p->hist[i]++;
    p->sum_s += s;
}

static void take(struct mproc *p, struct mloop *l, const cs_trace_event *e)
{
    if (e->ts > l->last_ts)
        l->last_ts = e->ts;
    if (l->first_ns == 0)
        l->first_ns = cs_trace_ns(p->t, e->ts);
    switch (e->type) {
    case CS_EV_STEP:
        p->steps_timed++;
        observe(p, (double)cs_trace_ticks_ns(p->t, cs_trace_event_ticks(e)) /
                       1e9);
        break;
    case CS_EV_YIELDS: /* steps of a yield batch, each under the batch
                          threshold: counted, not timed one by one */
        p->yield_steps += e->arg;
        break;
    case CS_EV_LOOP_ITER:
        l->wait_ticks += cs_trace_event_ticks(e);
        break;
    case CS_EV_WARNING:
        p->warn[e->reason < CS_WARN_COUNT ? e->reason : CS_WARN_COUNT]++;
        break;
    default:
        break;
    }
}

/* Reads loop r's new records and updates its wait time and busy
 * fraction as of now_ns. */
static int read_loop(struct cli_metrics *m, struct mproc *p, uint32_t r,
                     uint64_t now_ns)
{
    struct mloop *l = &p->loops[r];
    if (cs_trace_ring_get(p->t, r, &l->ring) != 0)
        return 0;
    p->written += l->ring.head;
    for (;;) {
        size_t n = 0;
        uint64_t lost = 0;
        int err =
            cs_trace_read(p->t, r, &l->cursor, m->ev, m->evcap, &n, &lost);
        p->lost += lost;
        if (err != 0)
            return err;
        for (size_t i = 0; i < n; i++)
            take(p, l, &m->ev[i]);
        if (n < m->evcap)
            break;
    }
    /* A loop with no step running is in epoll_wait (or about to be): its
     * wait so far counts now, and the iteration record that ends it later
     * must not count it twice, hence the maximum below. */
    double wait = (double)cs_trace_ticks_ns(p->t, l->wait_ticks) / 1e9;
    uint64_t last_ns = l->last_ts ? cs_trace_ns(p->t, l->last_ts) : 0;
    int active = l->ring.state == CS_RING_ACTIVE;
    if (active && l->ring.step_start == 0 && last_ns && now_ns > last_ns)
        wait += (double)(now_ns - last_ns) / 1e9;
    l->running_s = 0;
    if (active && l->ring.step_start != 0 && l->ring.switches == 0) {
        uint64_t s = cs_trace_ns(p->t, l->ring.step_start);
        l->running_s = now_ns > s ? (double)(now_ns - s) / 1e9 : 0;
    }
    if (wait < l->wait_s)
        wait = l->wait_s;
    uint64_t from = l->prev_ns ? l->prev_ns : l->first_ns;
    double span = from && now_ns > from ? (double)(now_ns - from) / 1e9 : 0;
    double waited = wait - (l->prev_ns ? l->wait_s : 0);
    l->busy = !active || span <= 0 ? 0 : 1 - waited / span;
    l->busy = l->busy < 0 ? 0 : l->busy > 1 ? 1 : l->busy;
    l->wait_s = wait;
    l->prev_ns = now_ns;
    return 0;
}

static int proc_update(struct cli_metrics *m, struct mproc *p)
{
    cs_trace_task task;
    uint32_t iter = 0;
    int r;
    uint64_t now_ns = cli_now_ns();
    p->written = 0;
    for (uint32_t i = 0; i < p->info.ring_count; i++)
        if ((r = read_loop(m, p, i, now_ns)) != 0)
            return r;
    memset(p->tasks, 0, sizeof p->tasks);
    memset(p->waiting, 0, sizeof p->waiting);
    while ((r = cs_trace_task_next(p->t, &iter, &task)) == 1) {
        if (task.state < CS_TASK_STATE_COUNT)
            p->tasks[task.state]++;
        if (task.state == CS_TASK_WAITING && task.wait < CS_WAIT_COUNT)
            p->waiting[task.wait]++;
    }
    cs_trace_info_get(p->t, &p->info); /* its live counters */
    return r;
}

static struct mproc *find(struct cli_metrics *m, int pid, size_t *at)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->v[mid]->pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return lo < m->n && m->v[lo]->pid == pid ? m->v[lo] : NULL;
}

/* Keeps, opens or drops the segment of pid. */
static int visit(struct cli_metrics *m, int pid, const char *path)
{
    size_t at;
    struct mproc *p = find(m, pid, &at);
    if (p != NULL && cs_trace_stale(p->t) == 0) {
        p->seen = 1;
        return 0;
    }
    if (p != NULL) { /* its process is gone: a new one may use the pid */
        proc_free(p);
        memmove(&m->v[at], &m->v[at + 1], (m->n - at - 1) * sizeof *m->v);
        m->n--;
    }
    int status = 0;
    if ((p = proc_open(path, pid, &status)) == NULL) {
        if (status == -ENOMEM)
            return -ENOMEM;
        m->stale += status == 1;
        m->unreadable += status < 0;
        return 0;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        struct mproc **g = realloc(m->v, cap * sizeof *g);
        if (g == NULL) {
            proc_free(p);
            return -ENOMEM;
        }
        m->v = g;
        m->cap = cap;
    }
    memmove(&m->v[at + 1], &m->v[at], (m->n - at) * sizeof *m->v);
    m->v[at] = p;
    m->n++;
    p->seen = 1;
    return 0;
}

static int collect(struct cli_metrics *m)
{
    DIR *d = opendir(CS_SEG_DIR);
    if (d == NULL)
        return -errno;
    m->stale = m->unreadable = 0;
    for (size_t i = 0; i < m->n; i++)
        m->v[i]->seen = 0;
    struct dirent *e;
    int err = 0;
    while (err == 0 && (e = readdir(d)) != NULL) {
        int pid = cli_segment_pid(e->d_name);
        char path[300];
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", CS_SEG_DIR, e->d_name);
        err = visit(m, pid, path);
    }
    closedir(d);
    size_t kept = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct mproc *p = m->v[i];
        /* a segment that cannot be read any more is left out, not fatal */
        if (p->seen && (err != 0 || proc_update(m, p) == 0)) {
            m->v[kept++] = p;
            continue;
        }
        if (p->seen)
            m->unreadable++;
        proc_free(p);
    }
    m->n = kept;
    return err;
}

/* ---- rendering ------------------------------------------------------------
 */

struct out {
    FILE *f;
    int om; /* OpenMetrics */
};

/* # HELP and # TYPE of a family; OpenMetrics names a counter's family
 * without the _total its samples carry. */
static void family(struct out *o, const char *name, const char *type,
                   const char *help)
{
    int n = (int)strlen(name);
    if (o->om && strcmp(type, "counter") == 0 && n > 6 &&
        strcmp(name + n - 6, "_total") == 0)
        n -= 6;
    fprintf(o->f, "# HELP %.*s %s\n# TYPE %.*s %s\n", n, name, help, n, name,
            type);
}

static void sample_u(struct out *o, const char *name, const struct mproc *p,
                     const char *extra, uint64_t v)
{
    fprintf(o->f, "%s{%s%s%s} %llu\n", name, p->labels, extra ? "," : "",
            extra ? extra : "", (unsigned long long)v);
}

/* sample_u with one more label, key="value". */
static void sample_kv(struct out *o, const char *name, const struct mproc *p,
                      const char *key, const char *value, uint64_t v)
{
    char l[96];
    snprintf(l, sizeof l, "%s=\"%s\"", key, value);
    sample_u(o, name, p, l, v);
}

static void sample_d(struct out *o, const char *name, const struct mproc *p,
                     const char *extra, double v)
{
    fprintf(o->f, "%s{%s%s%s} %.15g\n", name, p->labels, extra ? "," : "",
            extra ? extra : "", v);
}

static void render_tasks(struct cli_metrics *m, struct out *o)
{
    char l[64];
    family(o, "coscope_tasks", "gauge", "Live tasks by state.");
    for (size_t i = 0; i < m->n; i++)
        for (unsigned s = CS_TASK_READY; s < CS_TASK_STATE_COUNT; s++) {
            snprintf(l, sizeof l, "state=\"%s\"", cs_trace_state_name(s));
            sample_u(o, "coscope_tasks", m->v[i], l, m->v[i]->tasks[s]);
        }
    family(o, "coscope_tasks_waiting", "gauge",
           "Waiting tasks by what they wait for.");
    for (size_t i = 0; i < m->n; i++)
        for (unsigned w = CS_WAIT_SLEEP; w < CS_WAIT_COUNT; w++) {
            snprintf(l, sizeof l, "reason=\"%s\"", cs_trace_wait_name(w));
            sample_u(o, "coscope_tasks_waiting", m->v[i], l,
                     m->v[i]->waiting[w]);
        }
}

static void render_steps(struct cli_metrics *m, struct out *o)
{
    family(o, "coscope_steps_total", "counter",
           "Task steps run (a step: from a task's resumption to its next "
           "suspension).");
    for (size_t i = 0; i < m->n; i++)
        sample_u(o, "coscope_steps_total", m->v[i], NULL,
                 m->v[i]->steps_timed + m->v[i]->yield_steps);
    family(o, "coscope_step_duration_seconds", "histogram",
           "Duration of the timed steps (the short yields of a batch are "
           "counted in coscope_steps_total only).");
    for (size_t i = 0; i < m->n; i++) {
        const struct mproc *p = m->v[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            char le[32];
            snprintf(le, sizeof le, "%g", bucket_le[b]);
            cum += p->hist[b];
            sample_kv(o, "coscope_step_duration_seconds_bucket", p, "le", le,
                      cum);
        }
        sample_u(o, "coscope_step_duration_seconds_bucket", p, "le=\"+Inf\"",
                 cum + p->hist_inf);
        sample_d(o, "coscope_step_duration_seconds_sum", p, NULL, p->sum_s);
        sample_u(o, "coscope_step_duration_seconds_count", p, NULL,
                 p->steps_timed);
    }
}

static void render_loops(struct cli_metrics *m, struct out *o)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"coscope_loop_iterations_total", "counter", "Event loop iterations."},
        {"coscope_loop_poll_wait_seconds_total", "counter",
         "Time the loop spent waiting in epoll_wait."},
        {"coscope_loop_busy_ratio", "gauge",
         "Fraction of the time since the previous scrape the loop was not "
         "waiting in epoll_wait."},
        {"coscope_loop_step_running_seconds", "gauge",
         "How long the step running now has held the loop (0 when idle)."},
    };
    char l[32];
    for (size_t k = 0; k < sizeof fam / sizeof fam[0]; k++) {
        family(o, fam[k].name, fam[k].type, fam[k].help);
        for (size_t i = 0; i < m->n; i++)
            for (uint32_t r = 0; r < m->v[i]->info.ring_count; r++) {
                const struct mloop *lp = &m->v[i]->loops[r];
                if (lp->ring.state == CS_RING_FREE)
                    continue;
                snprintf(l, sizeof l, "loop=\"%u\"", r);
                if (k == 0)
                    sample_u(o, fam[k].name, m->v[i], l, lp->ring.iterations);
                else
                    sample_d(o, fam[k].name, m->v[i], l,
                             k == 1   ? lp->wait_s
                             : k == 2 ? lp->busy
                                      : lp->running_s);
            }
    }
}

static void render_warnings(struct cli_metrics *m, struct out *o)
{
    family(o, "coscope_warnings_total", "counter",
           "Warnings the agent reported, by kind (kind \"unknown\": "
           "overwritten before they were read, or newer kinds).");
    for (size_t i = 0; i < m->n; i++) {
        const struct mproc *p = m->v[i];
        uint64_t known = 0;
        for (unsigned k = CS_WARN_SLOW_STEP; k < CS_WARN_COUNT; k++) {
            sample_kv(o, "coscope_warnings_total", p, "kind",
                      cs_trace_warning_name(k), p->warn[k]);
            known += p->warn[k];
        }
        /* the header's total is exact; what the rings no longer hold, or
         * a kind this version does not know, is "unknown" */
        uint64_t unknown = p->info.warnings > known ? p->info.warnings - known
                                                    : p->warn[CS_WARN_COUNT];
        sample_u(o, "coscope_warnings_total", p, "kind=\"unknown\"", unknown);
    }
}

static void render_trace(struct cli_metrics *m, struct out *o)
{
    family(o, "coscope_events_written_total", "counter",
           "Trace records the process wrote.");
    for (size_t i = 0; i < m->n; i++)
        sample_u(o, "coscope_events_written_total", m->v[i], NULL,
                 m->v[i]->written);
    family(o, "coscope_events_lost_total", "counter",
           "Trace records overwritten before this exporter read them.");
    for (size_t i = 0; i < m->n; i++)
        sample_u(o, "coscope_events_lost_total", m->v[i], NULL, m->v[i]->lost);
    family(o, "coscope_dropped_total", "counter",
           "Entries the process could not store: its tables were full.");
    for (size_t i = 0; i < m->n; i++) {
        const cs_trace_info *f = &m->v[i]->info;
        sample_u(o, "coscope_dropped_total", m->v[i], "table=\"tasks\"",
                 f->tasks_dropped);
        sample_u(o, "coscope_dropped_total", m->v[i], "table=\"strings\"",
                 f->strings_dropped);
        sample_u(o, "coscope_dropped_total", m->v[i], "table=\"stacks\"",
                 f->stacks_dropped);
        sample_u(o, "coscope_dropped_total", m->v[i], "table=\"rings\"",
                 f->rings_dropped);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    family(o, "coscope_segment_age_seconds", "gauge",
           "Time since the process created its trace segment.");
    for (size_t i = 0; i < m->n; i++) {
        double at = (double)m->v[i]->info.realtime_anchor / 1e9;
        sample_d(o, "coscope_segment_age_seconds", m->v[i], NULL,
                 now > at ? now - at : 0);
    }
}

static void render_exporter(struct cli_metrics *m, struct out *o)
{
    family(o, "coscope_exporter_segments", "gauge",
           "Segments in /dev/shm at this scrape, by status (only live ones "
           "have metrics).");
    fprintf(o->f,
            "coscope_exporter_segments{status=\"live\"} %zu\n"
            "coscope_exporter_segments{status=\"stale\"} %u\n"
            "coscope_exporter_segments{status=\"unreadable\"} %u\n",
            m->n, m->stale, m->unreadable);
    family(o, "coscope_exporter_scrape_duration_seconds", "gauge",
           "Time this scrape took to read every segment.");
    fprintf(o->f, "coscope_exporter_scrape_duration_seconds %.9g\n",
            m->scrape_s);
}

int cli_metrics_scrape(struct cli_metrics *m, enum cli_metrics_format fmt,
                       char **out, size_t *len)
{
    uint64_t t0 = cli_now_ns();
    int err = collect(m);
    if (err != 0)
        return err;
    m->scrape_s = (double)(cli_now_ns() - t0) / 1e9;
    struct out o = {open_memstream(out, len), fmt == CLI_METRICS_OPENMETRICS};
    if (o.f == NULL)
        return -ENOMEM;
    render_tasks(m, &o);
    render_steps(m, &o);
    render_loops(m, &o);
    render_warnings(m, &o);
    render_trace(m, &o);
    render_exporter(m, &o);
    if (o.om)
        fputs("# EOF\n", o.f);
    if (ferror(o.f) | (fclose(o.f) != 0)) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}
