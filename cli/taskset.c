/*
 * taskset.c - a snapshot of a live process's tasks (cli.h: struct
 * cli_taskset), shared by `tasks` and `top`: reading the task table, the
 * await graph and its cycles, what each task waits on in words, and the
 * stacks of parked tasks.
 *
 * The await graph has one edge per waiting task: to the task it awaits
 * (CS_WAIT_TASK) or to the holder of the lock it wants (CS_WAIT_LOCK).  A
 * task waits on one thing at a time, so each node has at most one outgoing
 * edge and a cycle is found by walking each chain once (white/grey/black
 * marking).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- lookups ------------------------------------------------------------ */

long cli_ts_find(const struct cli_taskset *x, uint64_t id)
{
    return id == 0 ? -1 : cli_idmap_get(&x->by_id, id);
}

static int index_tasks(struct cli_taskset *x)
{
    cli_idmap_clear(&x->by_id);
    if (cli_idmap_reserve(&x->by_id, x->n) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < x->n; i++)
        if (cli_idmap_get(&x->by_id, x->v[i].t.id) < 0 &&
            cli_idmap_put(&x->by_id, x->v[i].t.id, (long)i) != 0)
            return -ENOMEM;
    return 0;
}

/* The text of string id ("" if none); cached, so each id is read once. */
const char *cli_ts_str(struct cli_taskset *x, uint32_t id)
{
    if (id == 0)
        return "";
    long k = cli_idmap_get(&x->str_ix, id);
    if (k >= 0)
        return x->strs[k];
    if (x->strs_n == x->strs_cap) {
        size_t cap = x->strs_cap ? 2 * x->strs_cap : 64;
        char **v = realloc(x->strs, cap * sizeof *v);
        if (v == NULL)
            return "";
        x->strs = v;
        x->strs_cap = cap;
    }
    char buf[CS_STRING_MAX + 1];
    int r = cs_trace_string(x->t, id, buf, sizeof buf);
    char *s = strdup(r >= 0 ? cli_sanitize(buf) : r == -ENOENT ? "" : "?");
    if (s == NULL)
        return "";
    if (cli_idmap_put(&x->str_ix, id, (long)x->strs_n) != 0) {
        free(s);
        return "";
    }
    x->strs[x->strs_n++] = s;
    return s;
}

const char *cli_ts_site(struct cli_taskset *x, uint32_t id)
{
    const char *s = cli_ts_str(x, id);
    if (strncmp(s, "@0x", 3) != 0)
        return s;
    if (!x->site_sym_tried) {
        x->site_sym_tried = 1;
        x->site_sym = cli_symbols_for_trace(x->t);
    }
    /* named once, in the cache: the entry is ours to rewrite */
    char buf[CS_STRING_MAX + 1];
    snprintf(buf, sizeof buf, "%s", s);
    cli_site_name(x->site_sym, buf, sizeof buf);
    long k = cli_idmap_get(&x->str_ix, id);
    char *named = strdup(buf);
    if (named == NULL)
        return s;
    free(x->strs[k]);
    x->strs[k] = named;
    return named;
}

static int cmp_id(const void *a, const void *b)
{
    const struct cli_task *x = a, *y = b;
    return (x->t.id > y->t.id) - (x->t.id < y->t.id);
}

/* ---- reading ------------------------------------------------------------ */

int cli_ts_read(struct cli_taskset *x)
{
    size_t cap = 0;
    uint32_t iter = 0;
    cs_trace_task task;
    int r;
    while ((r = cs_trace_task_next(x->t, &iter, &task)) == 1) {
        if (x->n == cap) {
            cap = cap ? 2 * cap : 256;
            struct cli_task *g = realloc(x->v, cap * sizeof *g);
            if (g == NULL)
                return cli_error("out of memory");
            x->v = g;
        }
        memset(&x->v[x->n], 0, sizeof x->v[0]);
        x->v[x->n++].t = task;
    }
    if (r < 0)
        return cli_error("cannot read the task table of process %d: %s (%s)",
                         x->pid, cli_trace_strerror(r), cli_trace_detail());
    x->now = cli_now_ns();
    if (x->n > 1)
        qsort(x->v, x->n, sizeof *x->v, cmp_id);
    if (index_tasks(x) != 0)
        return cli_error("out of memory");
    return CLI_OK;
}

/* Index of the task that r waits on, or -1. */
static long wait_edge(const struct cli_taskset *x, const struct cli_task *r)
{
    if (r->t.state != CS_TASK_WAITING)
        return -1;
    if (r->t.wait == CS_WAIT_TASK)
        return cli_ts_find(x, r->t.wait_target);
    if (r->t.wait == CS_WAIT_LOCK)
        return cli_ts_find(x, r->t.wait_aux);
    return -1;
}

/* Fills target/indeg and finds every cycle. */
/* Every task a task waiting on tasks awaits: the slots whose awaiter it
 * is (cs_gather names all of its tasks, though it awaits them one at a
 * time), in id order; each is below it in the tree. */
static void awaited_lists(struct cli_taskset *x)
{
    for (size_t i = 0; i < x->n; i++)
        x->v[i].awaited_head = x->v[i].awaited_next = -1;
    for (size_t i = x->n; i-- > 0;) {
        struct cli_task *r = &x->v[i];
        long a = r->t.awaiter ? cli_ts_find(x, r->t.awaiter) : -1;
        if (a < 0 || a == (long)i || x->v[a].t.state != CS_TASK_WAITING ||
            x->v[a].t.wait != CS_WAIT_TASK)
            continue;
        r->awaited_next = x->v[a].awaited_head;
        x->v[a].awaited_head = (long)i;
        x->v[a].nawaited++;
        if (x->v[a].target != (long)i)
            r->indeg++;
    }
}

int cli_ts_graph(struct cli_taskset *x)
{
    for (size_t i = 0; i < x->n; i++) {
        x->v[i].target = wait_edge(x, &x->v[i]);
        if (x->v[i].target >= 0)
            x->v[x->v[i].target].indeg++;
    }
    awaited_lists(x);
    for (size_t i = 0; i < x->n; i++) {
        long j = (long)i;
        while (j >= 0 && x->v[j].mark == 0) {
            x->v[j].mark = 1;
            j = x->v[j].target;
        }
        if (j >= 0 && x->v[j].mark == 1) { /* back on this path: a cycle */
            size_t len = 1;
            for (long k = x->v[j].target; k != j; k = x->v[k].target)
                len++;
            long *c = malloc((len + 1) * sizeof *c);
            long **g = realloc(x->cycles, (x->ncycles + 1) * sizeof *g);
            if (c == NULL || g == NULL) {
                free(c);
                free(g);
                return cli_error("out of memory");
            }
            x->cycles = g;
            size_t m = 0;
            for (long k = j; m < len; k = x->v[k].target)
                c[m++] = k;
            c[m] = -1;
            x->cycles[x->ncycles++] = c;
        }
        for (j = (long)i; j >= 0 && x->v[j].mark == 1; j = x->v[j].target)
            x->v[j].mark = 2;
    }
    return CLI_OK;
}

/* ---- describing --------------------------------------------------------- */

void cli_ts_ref(struct cli_taskset *x, uint64_t id, char *buf, size_t cap)
{
    long k = cli_ts_find(x, id);
    if (k >= 0)
        snprintf(buf, cap, "task %llu '%s'", (unsigned long long)id,
                 cli_ts_str(x, x->v[k].t.name));
    else
        snprintf(buf, cap, "task %llu (gone)", (unsigned long long)id);
}

/* Time left until a CLOCK_MONOTONIC deadline, as ", 1.20s left". */
static void time_left(const struct cli_taskset *x, uint64_t deadline,
                      char *buf, size_t cap)
{
    char d[32];
    if (deadline == 0)
        buf[0] = '\0';
    else if (deadline <= x->now)
        snprintf(buf, cap, ", due");
    else
        snprintf(buf, cap, ", %s left",
                 cli_fmt_duration(deadline - x->now, d, sizeof d));
}

/* What the running task r is doing: on the CPU, or blocking its loop's
 * thread in a system call, and for how long its step has lasted. */
static void running_text(struct cli_taskset *x, const struct cli_task *r,
                         char *buf, size_t cap)
{
    cs_trace_ring ring;
    char d[32] = "", sc[48];
    if (cs_trace_ring_get(x->t, r->t.ring, &ring) != 0) {
        snprintf(buf, cap, "running");
        return;
    }
    if (ring.step_task == r->t.id && ring.step_start != 0) {
        uint64_t start = cs_trace_ns(x->t, ring.step_start);
        cli_fmt_duration(x->now > start ? x->now - start : 0, d, sizeof d);
    }
    int st = ring.tid ? cli_thread_state(x->pid, (int)ring.tid, sc, sizeof sc)
                      : 0;
    if (st != 0 && st != 'R')
        snprintf(buf, cap, "blocking the loop%s%s%s%s", sc[0] ? " in " : "",
                 sc, d[0] ? " for " : "", d);
    else
        snprintf(buf, cap, "on cpu%s%s", d[0] ? " for " : "", d);
}

/* What r waits on, in words ("lock 3 held by task 4 'holder'"). */
void cli_ts_wait_text(struct cli_taskset *x, const struct cli_task *r,
                      char *buf, size_t cap)
{
    const cs_trace_task *t = &r->t;
    char a[160], b[48];
    unsigned long long tg = (unsigned long long)t->wait_target;
    if (t->state == CS_TASK_RUNNING) {
        running_text(x, r, buf, cap);
        return;
    }
    if (t->state != CS_TASK_WAITING && t->wait != CS_WAIT_YIELD) {
        snprintf(buf, cap, "-");
        return;
    }
    switch (t->wait) {
    case CS_WAIT_SLEEP:
        time_left(x, t->wait_target, b, sizeof b);
        snprintf(buf, cap, "timer (sleep)%s", b);
        break;
    case CS_WAIT_TASK:
        cli_ts_ref(x, t->wait_target, a, sizeof a);
        if (r->nawaited > 1) /* a gather: the one it waits for now first */
            snprintf(buf, cap, "%s and %d more (gather)", a, r->nawaited - 1);
        else
            snprintf(buf, cap, "%s", a);
        break;
    case CS_WAIT_LOCK:
        if (t->wait_aux) {
            cli_ts_ref(x, t->wait_aux, a, sizeof a);
            snprintf(buf, cap, "lock %llu held by %s", tg, a);
        } else {
            snprintf(buf, cap, "lock %llu", tg);
        }
        break;
    case CS_WAIT_EVENT:
        snprintf(buf, cap, "event %llu", tg);
        break;
    case CS_WAIT_SEMAPHORE:
        snprintf(buf, cap, "semaphore %llu", tg);
        break;
    case CS_WAIT_QUEUE_PUT:
        snprintf(buf, cap, "queue %llu (full)", tg);
        break;
    case CS_WAIT_QUEUE_GET:
        snprintf(buf, cap, "queue %llu (empty)", tg);
        break;
    case CS_WAIT_FD_READ:
    case CS_WAIT_FD_WRITE:
        time_left(x, t->wait_aux, b, sizeof b);
        snprintf(buf, cap, "fd %lld (%s)%s", (long long)t->wait_target,
                 t->wait == CS_WAIT_FD_READ ? "read" : "write", b);
        break;
    case CS_WAIT_THREAD:
        snprintf(buf, cap, "worker thread");
        break;
    case CS_WAIT_YIELD:
        snprintf(buf, cap, "yielded");
        break;
    case CS_WAIT_FUTURE:
        snprintf(buf, cap, "future");
        break;
    default:
        snprintf(buf, cap, "%s (%u)", cs_trace_wait_name(t->wait), t->wait);
    }
}

uint64_t cli_ts_age(const struct cli_taskset *x, const struct cli_task *r)
{
    uint64_t c = cs_trace_ns(x->t, r->t.created);
    return x->now > c ? x->now - c : 0;
}

/* ---- stacks ----------------------------------------------------------------
 */

/* "file:line in function" -> frame; 0 if the text is not one. */
static int py_frame(const char *s, struct cli_frame *f)
{
    for (const char *in = strstr(s, " in "); in; in = strstr(in + 1, " in ")) {
        const char *d = in;
        while (d > s && d[-1] >= '0' && d[-1] <= '9')
            d--;
        if (d == in || d == s || d[-1] != ':')
            continue;
        size_t fl = (size_t)(d - 1 - s);
        snprintf(f->file, sizeof f->file, "%.*s", (int)fl, s);
        f->line = atoi(d);
        snprintf(f->func, sizeof f->func, "%s", in + 4);
        return 1;
    }
    return 0;
}

/* An asyncio task's await chain, as the bridge (python/) published it
 * when the task last suspended: string ids in sp/fp/ip, innermost first;
 * nothing of the process is read but the segment. */
static int py_chain_of(struct cli_taskset *x, struct cli_task *r)
{
    uint64_t w[3] = {r->t.sp, r->t.fp, r->t.ip};
    struct cli_frame fr[CS_PY_CHAIN_MAX];
    int d = 0;
    if (r->t.state == CS_TASK_RUNNING) {
        r->stack_note = "running: its await chain is published when it "
                        "suspends";
        return 0;
    }
    for (int k = 0; k < CS_PY_CHAIN_MAX; k++) {
        uint32_t id = (uint32_t)(w[k / 2] >> (32 * (k % 2)));
        if (id == 0)
            break;
        memset(&fr[d], 0, sizeof fr[d]);
        if (py_frame(cli_ts_str(x, id), &fr[d]))
            d++;
    }
    if (d == 0) {
        r->stack_note = "no await chain published";
        return 0;
    }
    free(r->frames);
    r->frames = calloc((size_t)d, sizeof *r->frames);
    if (r->frames == NULL)
        return -ENOMEM;
    memcpy(r->frames, fr, (size_t)d * sizeof *fr);
    r->depth = d;
    return 0;
}

/* Unwinds task r; 0, or a negative errno when the process's memory cannot
 * be read at all (the caller reports it). */
static int stack_of(struct cli_taskset *x, struct cli_unwinder *u,
                    struct cli_symbols *sym, struct cli_task *r)
{
    uint64_t ips[CLI_STACK_MAX];
    if (r->t.flags & CS_TASKF_PYTHON)
        return py_chain_of(x, r);
    if (r->t.state == CS_TASK_RUNNING) {
        r->stack_note = "running: its registers are live, not saved";
        return 0;
    }
    if (!(r->t.flags & CS_TASKF_REGS_VALID) || r->t.sp == 0) {
        r->stack_note = "no saved registers";
        return 0;
    }
    int d = cli_unwind(u, r->t.sp, r->t.fp, r->t.ip, ips, CLI_STACK_MAX);
    if (d == -EPERM || d == -EACCES || d == -ESRCH)
        return d;
    if (d <= 0) {
        r->stack_note = "cannot unwind";
        return 0;
    }
    /* A task that ran meanwhile has a different stack now. */
    uint32_t it = r->t.slot;
    cs_trace_task again;
    if (cs_trace_task_next(x->t, &it, &again) != 1 ||
        again.slot != r->t.slot || again.steps != r->t.steps ||
        again.sp != r->t.sp) {
        r->stack_note = "it ran while being read";
        return 0;
    }
    /* every frame a return address but the resume address, which is
     * exact; inlined calls as frames of their own (symname.c) */
    struct cli_frame f[2 * CLI_STACK_MAX];
    int n = 0;
    for (int k = 0; k < d && n < 2 * CLI_STACK_MAX; k++)
        n += cli_symbolize_all(sym, ips[k], k > 0, f + n,
                               2 * CLI_STACK_MAX - n);
    free(r->frames);
    r->frames = calloc((size_t)n, sizeof *r->frames);
    if (r->frames == NULL)
        return -ENOMEM;
    memcpy(r->frames, f, (size_t)n * sizeof *f);
    r->depth = n;
    return 0;
}

/* Unwinds tasks [from, to); CLI_ERROR (printed unless quiet) on failure. */
static int stacks_of(struct cli_taskset *x, size_t from, size_t to, int quiet)
{
    int err = 0;
    struct cli_unwinder *u = cli_unwind_open(x->pid, &err);
    if (u == NULL)
        return quiet ? CLI_ERROR : cli_memory_error(x->pid, err);
    struct cli_symbols *sym = cli_symbols_open(x->pid);
    cli_test_point("stacks");
    for (size_t i = from; i < to && err == 0; i++)
        err = stack_of(x, u, sym, &x->v[i]);
    cli_symbols_close(sym);
    cli_unwind_close(u);
    if (err == -ENOMEM)
        return quiet ? CLI_ERROR : cli_error("out of memory");
    if (err != 0)
        return quiet ? CLI_ERROR : cli_memory_error(x->pid, err);
    return CLI_OK;
}

int cli_ts_stacks(struct cli_taskset *x)
{
    x->stacks = 1;
    return stacks_of(x, 0, x->n, 0);
}

int cli_ts_stack_one(struct cli_taskset *x, size_t i)
{
    return stacks_of(x, i, i + 1, 1);
}

void cli_ts_clear(struct cli_taskset *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i].frames);
    for (size_t c = 0; c < x->ncycles; c++)
        free(x->cycles[c]);
    free(x->cycles);
    cli_idmap_release(&x->by_id);
    free(x->v);
    x->v = NULL;
    x->n = 0;
    x->cycles = NULL;
    x->ncycles = 0;
    x->stacks = 0;
}

void cli_ts_release(struct cli_taskset *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i].frames);
    for (size_t i = 0; i < x->strs_n; i++)
        free(x->strs[i]);
    for (size_t c = 0; c < x->ncycles; c++)
        free(x->cycles[c]);
    free(x->cycles);
    cli_symbols_close(x->site_sym);
    free(x->strs);
    cli_idmap_release(&x->str_ix);
    cli_idmap_release(&x->by_id);
    free(x->v);
    cs_trace_close(x->t);
    memset(x, 0, sizeof *x);
}
