/*
 * timeline.c - a trace file turned into the timeline that `coscope export`
 * and `coscope view` show: tasks (lanes, grouped by loop thread), steps
 * (when each ran and why it stopped), loop idle time, and warnings with
 * their stacks.  Both commands read files through here, so the Chrome JSON
 * and the viewer's data always say the same thing.
 *
 * One pass over every ring (libtrace's cs_trace_read).  A step record's ts
 * is its end and its arg how long it ran; the wait record just before it in
 * the same ring says what it waited on next.  A loop-iteration record's arg
 * is the time spent in epoll_wait, ending at its ts: that is loop idle.
 * Task names and creation sites come from the task-created/-name records
 * and from the task snapshot at the end of the file.  Times are kept in
 * CLOCK_MONOTONIC ns of the writer and shown relative to the first event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "timeline.h"

/* Rebuilds the id -> index map of tl->tasks (after they were sorted). */
static int map_rebuild(struct cli_timeline *tl)
{
    cli_idmap_clear(&tl->map);
    for (size_t i = 0; i < tl->ntasks; i++)
        if (cli_idmap_get(&tl->map, tl->tasks[i].id) < 0 &&
            cli_idmap_put(&tl->map, tl->tasks[i].id, (long)i) != 0)
            return -ENOMEM;
    return 0;
}

long cli_tl_task_index(const struct cli_timeline *tl, uint64_t id)
{
    return cli_idmap_get(&tl->map, id);
}

/* Index of task id in tl->tasks, adding it when add is set; -1 if absent
 * or out of memory. */
static long task_index(struct cli_timeline *tl, uint64_t id, int add)
{
    long k = cli_idmap_get(&tl->map, id);
    if (k >= 0 || !add)
        return k;
    if (tl->ntasks == tl->tasks_cap) {
        size_t cap = tl->tasks_cap ? tl->tasks_cap * 2 : 256;
        struct cli_tl_task *v = realloc(tl->tasks, cap * sizeof *v);
        if (v == NULL)
            return -1;
        tl->tasks = v;
        tl->tasks_cap = cap;
    }
    if (cli_idmap_put(&tl->map, id, (long)tl->ntasks) != 0)
        return -1;
    struct cli_tl_task *t = &tl->tasks[tl->ntasks];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->ring = UINT32_MAX;
    return (long)tl->ntasks++;
}

/* Appends one element of size bytes to a growing array; NULL when out
 * of memory. */
static void *grow(void **v, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        void *p = realloc(*v, c * size);
        if (p == NULL)
            return NULL;
        *v = p;
        *cap = c;
    }
    return (char *)*v + (*n)++ * size;
}

static void seen(struct cli_timeline *tl, uint64_t ns)
{
    if (tl->first_ns == 0 || ns < tl->first_ns)
        tl->first_ns = ns;
    if (ns > tl->last_ns)
        tl->last_ns = ns;
}

/* The pending wait record of the ring being read. */
struct pending_wait {
    int set;
    unsigned reason;
    uint64_t target;
    uint32_t aux;
    /* the last CS_EV_BATCH of the ring: its yields records follow it */
    uint64_t batch_ts, batch_start, batch_end; /* ts raw, span in ns */
};

/* A step of task k was recorded in ring: its first such ring is its
 * loop's lane (a ring from a creation record only stands in until then). */
static void ran_on(struct cli_tl_task *k, uint32_t ring)
{
    if (!k->ring_from_step)
        k->ring = ring;
    k->ring_from_step = 1;
}

static int take_step(struct cli_timeline *tl, const cs_trace_event *e,
                     struct pending_wait *w)
{
    long k = task_index(tl, e->task_id, 1);
    struct cli_tl_step *s =
        grow((void **)&tl->steps, &tl->nsteps, &tl->steps_cap, sizeof *s);
    if (k < 0 || s == NULL)
        return -ENOMEM;
    uint64_t end = cs_trace_ns(tl->t, e->ts);
    uint64_t dur = cs_trace_ticks_ns(tl->t, cs_trace_event_ticks(e));
    memset(s, 0, sizeof *s);
    s->end = end;
    s->start = dur < end ? end - dur : 0;
    s->task = (uint32_t)k;
    s->reason = e->reason;
    s->batched = (e->flags & CS_RECF_BATCHED) != 0;
    if (w->set && w->reason == e->reason) {
        s->target = w->target;
        s->aux = w->aux;
        s->has_target = 1;
    }
    w->set = 0;
    ran_on(&tl->tasks[k], e->ring);
    seen(tl, s->start);
    seen(tl, end);
    return 0;
}

static int take_event(struct cli_timeline *tl, const cs_trace_event *e,
                      struct pending_wait *w)
{
    long k;
    tl->events++;
    if (e->type != CS_EV_STEP && e->type != CS_EV_LOOP_ITER)
        seen(tl, cs_trace_ns(tl->t, e->ts));
    switch (e->type) {
    case CS_EV_TASK_CREATED:
    case CS_EV_TASK_NAME:
        if ((k = task_index(tl, e->task_id, 1)) < 0)
            return -ENOMEM;
        if (e->type == CS_EV_TASK_NAME)
            tl->tasks[k].name = e->arg;
        else
            tl->tasks[k].site = e->arg;
        if (tl->tasks[k].ring == UINT32_MAX)
            tl->tasks[k].ring = e->ring;
        break;
    case CS_EV_WAIT:
        w->set = 1;
        w->reason = e->reason;
        w->target = e->task_id;
        w->aux = e->arg;
        break;
    case CS_EV_STEP:
        return take_step(tl, e, w);
    case CS_EV_BATCH: {
        uint64_t end = cs_trace_ns(tl->t, e->ts);
        uint64_t dur = cs_trace_ticks_ns(tl->t, cs_trace_event_ticks(e));
        w->batch_ts = e->ts;
        w->batch_end = end;
        w->batch_start = dur < end ? end - dur : 0;
        seen(tl, w->batch_start);
        break;
    }
    case CS_EV_YIELDS: {
        /* one slice over the batch's span, on this task's lane */
        if (w->batch_ts != e->ts || w->batch_end == 0)
            break; /* its batch record was lost */
        long t = task_index(tl, e->task_id, 1);
        struct cli_tl_step *s =
            grow((void **)&tl->steps, &tl->nsteps, &tl->steps_cap, sizeof *s);
        if (t < 0 || s == NULL)
            return -ENOMEM;
        *s = (struct cli_tl_step){.start = w->batch_start,
                                  .end = w->batch_end,
                                  .target = e->arg,
                                  .task = (uint32_t)t,
                                  .reason = CS_WAIT_YIELD,
                                  .batched = 1};
        ran_on(&tl->tasks[t], e->ring);
        break;
    }
    case CS_EV_LOOP_ITER: {
        uint64_t end = cs_trace_ns(tl->t, e->ts);
        uint64_t dur = cs_trace_ticks_ns(tl->t, cs_trace_event_ticks(e));
        seen(tl, end);
        if (dur == 0)
            break;
        struct cli_tl_idle *d =
            grow((void **)&tl->idle, &tl->nidle, &tl->idle_cap, sizeof *d);
        if (d == NULL)
            return -ENOMEM;
        *d = (struct cli_tl_idle){dur < end ? end - dur : 0, end, e->ring};
        seen(tl, d->start);
        break;
    }
    case CS_EV_WARNING: {
        struct cli_tl_warning *x = grow((void **)&tl->warnings, &tl->nwarnings,
                                        &tl->warnings_cap, sizeof *x);
        if (x == NULL)
            return -ENOMEM;
        *x = (struct cli_tl_warning){cs_trace_ns(tl->t, e->ts),
                                     e->task_id,
                                     -1,
                                     e->reason,
                                     e->arg | (e->flags & CS_RECF_PYSTACK
                                                   ? CLI_TL_PYSTACK
                                                   : 0u),
                                     e->ring};
        if (e->task_id != 0 && task_index(tl, e->task_id, 1) < 0)
            return -ENOMEM;
        break;
    }
    default:
        break;
    }
    return 0;
}

static int read_rings(struct cli_timeline *tl)
{
    size_t cap = 4096;
    cs_trace_event *ev = malloc(cap * sizeof *ev);
    if (ev == NULL)
        return -ENOMEM;
    int err = 0;
    for (uint32_t r = 0; r < tl->info.ring_count && err == 0; r++) {
        uint64_t cursor = 0;
        struct pending_wait w = {0};
        for (;;) {
            size_t n = 0;
            uint64_t lost = 0;
            err = cs_trace_read(tl->t, r, &cursor, ev, cap, &n, &lost);
            tl->lost += lost;
            for (size_t i = 0; i < n && err == 0; i++)
                err = take_event(tl, &ev[i], &w);
            if (err != 0 || n == 0)
                break;
        }
    }
    free(ev);
    return err;
}

/* The task snapshot at the end of the file fills names, sites, parents
 * and the loop of tasks that never ran while recorded. */
static int read_tasks(struct cli_timeline *tl)
{
    uint32_t iter = 0;
    cs_trace_task t;
    int r;
    while ((r = cs_trace_task_next(tl->t, &iter, &t)) == 1) {
        long k = task_index(tl, t.id, 1);
        if (k < 0)
            return -ENOMEM;
        struct cli_tl_task *x = &tl->tasks[k];
        if (x->name == 0)
            x->name = t.name;
        if (x->site == 0)
            x->site = t.site;
        x->parent = t.parent;
        x->state = t.state;
        x->in_snapshot = 1;
        if (!x->ring_from_step)
            x->ring = t.ring;
    }
    return r;
}

static int cmp_task_order(const void *a, const void *b)
{
    const struct cli_tl_task *x = a, *y = b;
    if (x->ring != y->ring)
        return x->ring < y->ring ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_step(const void *a, const void *b)
{
    const struct cli_tl_step *x = a, *y = b;
    if (x->task != y->task)
        return x->task < y->task ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_idle(const void *a, const void *b)
{
    const struct cli_tl_idle *x = a, *y = b;
    if (x->ring != y->ring)
        return x->ring < y->ring ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_warning(const void *a, const void *b)
{
    const struct cli_tl_warning *x = a, *y = b;
    return x->ns < y->ns ? -1 : x->ns > y->ns;
}

/* Orders tasks by loop then id, renumbers steps and warnings, and sorts
 * steps by task then start, so each task's steps are one slice. */
static int arrange(struct cli_timeline *tl)
{
    uint32_t *old_to_new = malloc((tl->ntasks + 1) * sizeof *old_to_new);
    if (old_to_new == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < tl->ntasks; i++)
        tl->tasks[i].old = (uint32_t)i;
    if (tl->ntasks > 1)
        qsort(tl->tasks, tl->ntasks, sizeof *tl->tasks, cmp_task_order);
    for (size_t i = 0; i < tl->ntasks; i++)
        old_to_new[tl->tasks[i].old] = (uint32_t)i;
    for (size_t i = 0; i < tl->nsteps; i++)
        tl->steps[i].task = old_to_new[tl->steps[i].task];
    free(old_to_new);
    /* the id map points at old indices */
    if (map_rebuild(tl) != 0)
        return -ENOMEM;
    /* (qsort must not be handed NULL, even for no elements) */
    if (tl->nsteps > 1)
        qsort(tl->steps, tl->nsteps, sizeof *tl->steps, cmp_step);
    if (tl->nidle > 1)
        qsort(tl->idle, tl->nidle, sizeof *tl->idle, cmp_idle);
    if (tl->nwarnings > 1)
        qsort(tl->warnings, tl->nwarnings, sizeof *tl->warnings, cmp_warning);
    for (size_t i = 0; i < tl->nsteps; i++) {
        struct cli_tl_task *k = &tl->tasks[tl->steps[i].task];
        if (k->nsteps++ == 0)
            k->first = (uint32_t)i;
    }
    for (size_t i = 0; i < tl->nwarnings; i++)
        tl->warnings[i].task_index =
            tl->warnings[i].task ? task_index(tl, tl->warnings[i].task, 0)
                                 : -1;
    return 0;
}

int cli_tl_load(const char *path, int partial, struct cli_timeline **out)
{
    *out = NULL;
    struct cli_timeline *tl = calloc(1, sizeof *tl);
    if (tl == NULL)
        return cli_error("out of memory");
    tl->path = path;
    if (cli_open_trace_file(path, partial, &tl->t, &tl->info) != CLI_OK) {
        cli_tl_free(tl);
        return CLI_ERROR;
    }
    int err = read_rings(tl);
    if (err == 0)
        err = read_tasks(tl);
    if (err == 0)
        err = arrange(tl);
    if (err != 0) {
        cli_trace_file_error(path, err);
        cli_tl_free(tl);
        return CLI_ERROR;
    }
    *out = tl;
    return CLI_OK;
}

const char *cli_tl_str(struct cli_timeline *tl, uint32_t id, char *buf,
                       size_t cap)
{
    buf[0] = '\0';
    if (id != 0 && cs_trace_string(tl->t, id, buf, cap) < 0)
        buf[0] = '\0';
    return cli_sanitize(buf);
}

const char *cli_tl_site(struct cli_timeline *tl, uint32_t id, char *buf,
                        size_t cap)
{
    cli_tl_str(tl, id, buf, cap);
    if (strncmp(buf, "@0x", 3) != 0)
        return buf;
    if (!tl->sym_tried) {
        tl->sym_tried = 1;
        tl->sym = cli_symbols_for_trace(tl->t);
    }
    return cli_site_name(tl->sym, buf, cap);
}

const char *cli_tl_task_name(struct cli_timeline *tl, long k, char *buf,
                             size_t cap)
{
    if (k < 0 || (size_t)k >= tl->ntasks)
        return snprintf(buf, cap, "?"), buf;
    cli_tl_str(tl, tl->tasks[k].name, buf, cap);
    if (buf[0] == '\0')
        snprintf(buf, cap, "task %llu", (unsigned long long)tl->tasks[k].id);
    return buf;
}

void cli_tl_wait_text(struct cli_timeline *tl, const struct cli_tl_step *s,
                      char *buf, size_t cap)
{
    char n[128];
    long k;
    buf[0] = '\0';
    if (s->batched && s->reason == CS_WAIT_YIELD) {
        snprintf(buf, cap,
                 "%llu yields in a batch (the span is the batch's, "
                 "shared with the tasks that ran in it)",
                 (unsigned long long)s->target);
        return;
    }
    if (!s->has_target)
        return;
    switch (s->reason) {
    case CS_WAIT_SLEEP:
        snprintf(buf, cap, "timer, deadline at %+.6fs",
                 ((double)s->target - (double)tl->first_ns) / 1e9);
        break;
    case CS_WAIT_TASK:
        k = task_index(tl, s->target, 0);
        snprintf(buf, cap, "task %llu '%s'", (unsigned long long)s->target,
                 k >= 0 ? cli_tl_task_name(tl, k, n, sizeof n) : "?");
        break;
    case CS_WAIT_LOCK:
        snprintf(buf, cap, "lock %llu", (unsigned long long)s->target);
        if (s->aux != 0) {
            size_t l = strlen(buf);
            k = task_index(tl, s->aux, 0);
            snprintf(buf + l, cap - l, " held by task %u '%s'", s->aux,
                     k >= 0 ? cli_tl_task_name(tl, k, n, sizeof n) : "?");
        }
        break;
    case CS_WAIT_EVENT:
    case CS_WAIT_SEMAPHORE:
    case CS_WAIT_QUEUE_PUT:
    case CS_WAIT_QUEUE_GET:
        snprintf(buf, cap, "%s %llu", cs_trace_wait_name(s->reason),
                 (unsigned long long)s->target);
        break;
    case CS_WAIT_FD_READ:
    case CS_WAIT_FD_WRITE:
        snprintf(buf, cap, "fd %lld (%s)", (long long)s->target,
                 s->reason == CS_WAIT_FD_READ ? "read" : "write");
        break;
    default:
        break;
    }
}

int cli_py_stack_lines(cs_trace *t, uint32_t id,
                       void (*fn)(void *arg, int k, const char *line),
                       void *arg)
{
    char text[CS_STRING_MAX + 1];
    if (cs_trace_string(t, id, text, sizeof text) < 0)
        return -1;
    char *save = NULL, *ln = strtok_r(text, "\n", &save);
    int k = 0;
    if (ln)
        fn(arg, -1, cli_sanitize(ln));
    for (; (ln = strtok_r(NULL, "\n", &save)) != NULL; k++)
        fn(arg, k, cli_sanitize(ln));
    return k;
}

struct py_frames {
    char **v; /* CS_STACK_MAX slots */
    int n;    /* frames kept */
    int err;  /* -ENOMEM once a strdup failed */
};

static void py_frame(void *arg, int k, const char *ln)
{
    struct py_frames *p = arg;
    if (k < 0 || p->err || p->n >= CS_STACK_MAX)
        return; /* the headline is the warning's, not a frame */
    char line[CS_STRING_MAX + 16];
    snprintf(line, sizeof line, "#%-2d %s", k, ln);
    if ((p->v[p->n] = strdup(line)) == NULL)
        p->err = -ENOMEM;
    else
        p->n++;
}

/* A Python stack: the string's lines after its first (the headline). */
static int py_stack(struct cli_timeline *tl, uint32_t id, char ***frames)
{
    struct py_frames p = {calloc(CS_STACK_MAX, sizeof(char *)), 0, 0};
    if (p.v == NULL)
        return -ENOMEM;
    if (cli_py_stack_lines(tl->t, id, py_frame, &p) < 0) {
        free(p.v);
        return 0;
    }
    if (p.err) {
        cli_tl_stack_free(p.v, p.n);
        return p.err;
    }
    *frames = p.v;
    return p.n;
}

int cli_tl_stack(struct cli_timeline *tl, uint32_t id, char ***frames)
{
    *frames = NULL;
    if (id == 0)
        return 0;
    if (id & CLI_TL_PYSTACK)
        return py_stack(tl, id & ~CLI_TL_PYSTACK, frames);
    if (!tl->sym_tried) {
        tl->sym_tried = 1;
        tl->sym = cli_symbols_for_trace(tl->t);
    }
    uint64_t ips[CS_STACK_MAX];
    int d = cs_trace_stack(tl->t, id, ips, CS_STACK_MAX);
    if (d <= 0)
        return 0;
    if (d > CS_STACK_MAX)
        d = CS_STACK_MAX;
    struct cli_frame f[2 * CS_STACK_MAX];
    d = cli_symbolize_stack(tl->sym, ips, d, f, 2 * CS_STACK_MAX);
    char **v = calloc((size_t)d, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    for (int k = 0; k < d; k++) {
        char line[512];
        v[k] = strdup(cli_frame_text(&f[k], line, sizeof line));
        if (v[k] == NULL) {
            cli_tl_stack_free(v, k);
            return -ENOMEM;
        }
    }
    *frames = v;
    return d;
}

void cli_tl_stack_free(char **frames, int n)
{
    for (int k = 0; k < n; k++)
        free(frames[k]);
    free(frames);
}

void cli_tl_free(struct cli_timeline *tl)
{
    if (tl == NULL)
        return;
    cs_trace_close(tl->t);
    cli_symbols_close(tl->sym);
    free(tl->tasks);
    cli_idmap_release(&tl->map);
    free(tl->steps);
    free(tl->idle);
    free(tl->warnings);
    free(tl);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The end of the window from `from` that holds at most max steps: the
 * start of the (max+1)-th step starting at or after from, or UINT64_MAX. */
static int window_end(struct cli_timeline *tl, uint64_t from, size_t max,
                      uint64_t *to)
{
    uint64_t *v = malloc((tl->nsteps + 1) * sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < tl->nsteps; i++)
        if (tl->steps[i].start >= from)
            v[n++] = tl->steps[i].start;
    *to = UINT64_MAX;
    if (n > max) {
        qsort(v, n, sizeof *v, cmp_u64);
        *to = v[max]; /* steps starting with it are left out too */
    }
    free(v);
    return 0;
}

int cli_tl_window(struct cli_timeline *tl, uint64_t from_rel, size_t max)
{
    uint64_t from = tl->first_ns + from_rel, to;
    tl->steps_total = tl->nsteps;
    if (from_rel == 0 && tl->nsteps <= max)
        return 0;
    int err = window_end(tl, from, max, &to);
    if (err != 0)
        return err;
    size_t n = 0;
    for (size_t k = 0; k < tl->ntasks; k++)
        tl->tasks[k].nsteps = 0;
    for (size_t i = 0; i < tl->nsteps; i++) {
        struct cli_tl_step *s = &tl->steps[i];
        if (s->start < from || s->start >= to)
            continue;
        struct cli_tl_task *k = &tl->tasks[s->task];
        if (k->nsteps++ == 0)
            k->first = (uint32_t)n;
        tl->steps[n++] = *s;
    }
    tl->nsteps = n;
    n = 0;
    for (size_t i = 0; i < tl->nidle; i++)
        if (tl->idle[i].end > from && tl->idle[i].start < to)
            tl->idle[n++] = tl->idle[i];
    tl->nidle = n;
    n = 0;
    for (size_t i = 0; i < tl->nwarnings; i++)
        if (tl->warnings[i].ns >= from && tl->warnings[i].ns < to)
            tl->warnings[n++] = tl->warnings[i];
    tl->nwarnings = n;
    tl->window_from = from;
    tl->window_to = to == UINT64_MAX ? tl->last_ns : to;
    tl->windowed = 1;
    return 0;
}

long cli_tl_last_step(const struct cli_timeline *tl, long k, uint64_t ns,
                      int by_end)
{
    const struct cli_tl_task *t = &tl->tasks[k];
    long best = -1;
    for (long lo = t->first, hi = (long)t->first + t->nsteps; lo < hi;) {
        long mid = (lo + hi) / 2;
        const struct cli_tl_step *st = &tl->steps[mid];
        if ((by_end ? st->end : st->start) <= ns) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return best;
}
