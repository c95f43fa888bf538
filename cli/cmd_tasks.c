/*
 * cmd_tasks.c - `coscope tasks PID [--format table|json|tree] [--stacks]`:
 * an all-tasks dump of a live process, read from its segment's task table
 * without stopping it (each slot is copied under its seqlock).
 *
 * The await graph has one edge per waiting task: to the task it awaits
 * (CS_WAIT_TASK) or to the holder of the lock it wants (CS_WAIT_LOCK).  A
 * task waits on one thing at a time, so each node has at most one outgoing
 * edge and a cycle is found by walking each chain once (white/grey/black
 * marking).  A cycle is a deadlock: printed, and the exit status is 1.
 * The tree is drawn like `python -m asyncio pstree`: a task that nobody
 * waits on is a root, and under each task is what it waits on.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cmd_tasks_usage[] =
    "usage: coscope tasks <pid> [--format table|json|tree] [--stacks]\n"
    "\n"
    "Dumps every task of a running coscope process without stopping it: id,\n"
    "name, state, what it waits on (task, lock and holder, queue, event, fd,\n"
    "timer with the time left, worker thread), age, steps, run time and\n"
    "where it was created.\n"
    "\n"
    "    -f, --format FMT  table (default), json, or tree: the await tree,\n"
    "                      a task above what it waits on\n"
    "    -s, --stacks      add each parked task's stack, unwound from its\n"
    "                      saved registers with process_vm_readv (needs the\n"
    "                      rights of ptrace: same user, or CAP_SYS_PTRACE)\n"
    "    -h, --help        show this help\n"
    "\n"
    "Exit status: 0, or 1 if the tasks wait on each other in a cycle (a\n"
    "deadlock, printed in every format), or 2 on bad input.\n";

enum tasks_format { FMT_TABLE, FMT_JSON, FMT_TREE };

/* One task and what we learned about it. */
struct row {
    cs_trace_task t;           /* the slot copy */
    long target;               /* index of the task it waits on, -1 none */
    int indeg;                 /* tasks waiting on this one */
    int mark;                  /* cycle search: 0 new, 1 on path, 2 done */
    int printed;               /* tree: already drawn */
    int depth;                 /* stack frames, or a negative errno */
    struct cli_frame *frames;  /* depth frames when depth > 0 */
    const char *stack_note;    /* why there is no stack */
};

/* A string id and its text (the process interns names and sites). */
struct str_entry {
    uint32_t id;
    char *s;
};

struct tasks {
    cs_trace *t;
    int pid;
    enum tasks_format format;
    int stacks;
    uint64_t now;             /* CLOCK_MONOTONIC ns when we read */
    struct row *v;            /* tasks, by id */
    size_t n;
    long *by_id;              /* open addressing: id -> index, -1 empty */
    size_t by_id_cap;
    struct str_entry *strs;   /* open addressing on id */
    size_t strs_cap, strs_n;
    long **cycles;            /* each: indices, -1 terminated */
    size_t ncycles;
};

/* ---- lookups ---------------------------------------------------------------- */

static size_t hash64(uint64_t v, size_t cap)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (size_t)v & (cap - 1);
}

static long find_task(const struct tasks *x, uint64_t id)
{
    if (id == 0 || x->by_id_cap == 0)
        return -1;
    for (size_t h = hash64(id, x->by_id_cap);; h = (h + 1) & (x->by_id_cap - 1))
        if (x->by_id[h] < 0 || x->v[x->by_id[h]].t.id == id)
            return x->by_id[h];
}

static int index_tasks(struct tasks *x)
{
    x->by_id_cap = 16;
    while (x->by_id_cap < 2 * x->n + 2)
        x->by_id_cap *= 2;
    x->by_id = malloc(x->by_id_cap * sizeof *x->by_id);
    if (x->by_id == NULL)
        return -ENOMEM;
    memset(x->by_id, 0xff, x->by_id_cap * sizeof *x->by_id);
    for (size_t i = 0; i < x->n; i++) {
        size_t h = hash64(x->v[i].t.id, x->by_id_cap);
        while (x->by_id[h] >= 0)
            h = (h + 1) & (x->by_id_cap - 1);
        x->by_id[h] = (long)i;
    }
    return 0;
}

/* The text of string id ("" if none); cached, so each id is read once. */
static const char *str(struct tasks *x, uint32_t id)
{
    if (id == 0)
        return "";
    if (x->strs_n * 2 >= x->strs_cap) {
        size_t cap = x->strs_cap ? 2 * x->strs_cap : 64;
        struct str_entry *g = calloc(cap, sizeof *g);
        if (g == NULL)
            return "";
        for (size_t i = 0; i < x->strs_cap; i++) {
            if (x->strs[i].id == 0)
                continue;
            size_t h = hash64(x->strs[i].id, cap);
            while (g[h].id != 0)
                h = (h + 1) & (cap - 1);
            g[h] = x->strs[i];
        }
        free(x->strs);
        x->strs = g;
        x->strs_cap = cap;
    }
    size_t h = hash64(id, x->strs_cap);
    while (x->strs[h].id != 0 && x->strs[h].id != id)
        h = (h + 1) & (x->strs_cap - 1);
    if (x->strs[h].id == id)
        return x->strs[h].s;
    char buf[CS_STRING_MAX + 1];
    int r = cs_trace_string(x->t, id, buf, sizeof buf);
    char *s = strdup(r >= 0 ? cli_sanitize(buf) : r == -ENOENT ? "" : "?");
    if (s == NULL)
        return "";
    x->strs[h].id = id;
    x->strs[h].s = s;
    x->strs_n++;
    return s;
}

static int cmp_id(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return (x->t.id > y->t.id) - (x->t.id < y->t.id);
}

/* ---- reading ------------------------------------------------------------------ */

static int read_tasks(struct tasks *x)
{
    size_t cap = 0;
    uint32_t iter = 0;
    cs_trace_task task;
    int r;
    while ((r = cs_trace_task_next(x->t, &iter, &task)) == 1) {
        if (x->n == cap) {
            cap = cap ? 2 * cap : 256;
            struct row *g = realloc(x->v, cap * sizeof *g);
            if (g == NULL)
                return cli_error("out of memory");
            x->v = g;
        }
        memset(&x->v[x->n], 0, sizeof x->v[0]);
        x->v[x->n++].t = task;
    }
    if (r < 0)
        return cli_error("cannot read the task table of process %d: %s (%s)",
                         x->pid, cs_trace_strerror(r),
                         cs_trace_error_detail());
    x->now = cli_now_ns();
    if (x->n > 1)
        qsort(x->v, x->n, sizeof *x->v, cmp_id);
    if (index_tasks(x) != 0)
        return cli_error("out of memory");
    return CLI_OK;
}

/* Index of the task that r waits on, or -1. */
static long wait_edge(const struct tasks *x, const struct row *r)
{
    if (r->t.state != CS_TASK_WAITING)
        return -1;
    if (r->t.wait == CS_WAIT_TASK)
        return find_task(x, r->t.wait_target);
    if (r->t.wait == CS_WAIT_LOCK)
        return find_task(x, r->t.wait_aux);
    return -1;
}

/* Fills target/indeg and finds every cycle. */
static int build_graph(struct tasks *x)
{
    for (size_t i = 0; i < x->n; i++) {
        x->v[i].target = wait_edge(x, &x->v[i]);
        if (x->v[i].target >= 0)
            x->v[x->v[i].target].indeg++;
    }
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

/* ---- describing ------------------------------------------------------------- */

static void task_ref(struct tasks *x, uint64_t id, char *buf, size_t cap)
{
    long k = find_task(x, id);
    if (k >= 0)
        snprintf(buf, cap, "task %llu '%s'", (unsigned long long)id,
                 str(x, x->v[k].t.name));
    else
        snprintf(buf, cap, "task %llu (gone)", (unsigned long long)id);
}

/* Time left until a CLOCK_MONOTONIC deadline, as ", 1.20s left". */
static void time_left(const struct tasks *x, uint64_t deadline, char *buf,
                      size_t cap)
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
static void running_text(struct tasks *x, const struct row *r, char *buf,
                         size_t cap)
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
static void wait_text(struct tasks *x, const struct row *r, char *buf,
                      size_t cap)
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
        task_ref(x, t->wait_target, a, sizeof a);
        snprintf(buf, cap, "%s", a);
        break;
    case CS_WAIT_LOCK:
        if (t->wait_aux) {
            task_ref(x, t->wait_aux, a, sizeof a);
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
    default:
        snprintf(buf, cap, "%s (%u)", cs_trace_wait_name(t->wait), t->wait);
    }
}

static uint64_t age_ns(const struct tasks *x, const struct row *r)
{
    uint64_t c = cs_trace_ns(x->t, r->t.created);
    return x->now > c ? x->now - c : 0;
}

static const char *state_color(unsigned state)
{
    switch (state) {
    case CS_TASK_RUNNING:
        return cli_sgr("\033[32m");
    case CS_TASK_WAITING:
        return cli_sgr("\033[33m");
    case CS_TASK_READY:
        return cli_sgr("\033[36m");
    case CS_TASK_RAISED:
    case CS_TASK_CANCELLED:
        return cli_sgr("\033[31m");
    default:
        return "";
    }
}

/* ---- stacks ---------------------------------------------------------------- */

/* Unwinds every parked task; CLI_ERROR when memory cannot be read at all. */
static int read_stacks(struct tasks *x)
{
    int err = 0;
    struct cli_unwinder *u = cli_unwind_open(x->pid, &err);
    if (u == NULL)
        return cli_memory_error(x->pid, err);
    struct cli_symbols *sym = cli_symbols_open(x->pid);
    cli_test_point("stacks");
    int rc = CLI_OK;
    for (size_t i = 0; i < x->n && rc == CLI_OK; i++) {
        struct row *r = &x->v[i];
        uint64_t ips[CLI_STACK_MAX];
        if (r->t.state == CS_TASK_RUNNING) {
            r->stack_note = "running: its registers are live, not saved";
            continue;
        }
        if (!(r->t.flags & CS_TASKF_REGS_VALID) || r->t.sp == 0) {
            r->stack_note = "no saved registers";
            continue;
        }
        int d = cli_unwind(u, r->t.sp, r->t.fp, r->t.ip, ips, CLI_STACK_MAX);
        if (d == -EPERM || d == -EACCES || d == -ESRCH) {
            rc = cli_memory_error(x->pid, d);
            break;
        }
        if (d <= 0) {
            r->stack_note = "cannot unwind";
            continue;
        }
        /* A task that ran meanwhile has a different stack now. */
        uint32_t it = r->t.slot;
        cs_trace_task again;
        if (cs_trace_task_next(x->t, &it, &again) != 1 ||
            again.slot != r->t.slot || again.steps != r->t.steps ||
            again.sp != r->t.sp) {
            r->stack_note = "it ran while being read";
            continue;
        }
        r->frames = calloc((size_t)d, sizeof *r->frames);
        if (r->frames == NULL) {
            rc = cli_error("out of memory");
            break;
        }
        r->depth = d;
        for (int k = 0; k < d; k++)
            cli_symbolize(sym, ips[k], k > 0, &r->frames[k]);
    }
    cli_symbols_close(sym);
    cli_unwind_close(u);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void print_frames(const struct row *r, const char *indent)
{
    if (r->depth <= 0) {
        printf("%s(no stack: %s)\n", indent,
               r->stack_note ? r->stack_note : "unknown");
        return;
    }
    for (int k = 0; k < r->depth; k++) {
        const struct cli_frame *f = &r->frames[k];
        printf("%s#%-2d 0x%012llx %s", indent, k, (unsigned long long)f->ip,
               f->func[0] ? f->func : "??");
        if (f->file[0])
            printf(" (%s:%d)", base_name(f->file), f->line);
        else if (f->module[0])
            printf(" (%s)", f->module);
        putchar('\n');
    }
}

/* ---- output ------------------------------------------------------------------ */

static void print_cycles(struct tasks *x)
{
    char ref[160], w[256];
    const char *red = cli_sgr("\033[1;31m"), *off = cli_sgr("\033[0m");
    for (size_t c = 0; c < x->ncycles; c++) {
        printf("%sdeadlock:%s", red, off);
        for (long *k = x->cycles[c]; *k >= 0; k++) {
            task_ref(x, x->v[*k].t.id, ref, sizeof ref);
            wait_text(x, &x->v[*k], w, sizeof w);
            printf(" %s waits on %s%s", ref, w, k[1] >= 0 ? "," : "\n");
        }
    }
}

static void print_table(struct tasks *x)
{
    char w[256], age[32], run[32];
    int namew = 4, waitw = 8;
    for (size_t i = 0; i < x->n; i++) {
        int l = (int)strlen(str(x, x->v[i].t.name));
        namew = l > namew ? (l < 32 ? l : 32) : namew;
        wait_text(x, &x->v[i], w, sizeof w);
        l = (int)strlen(w);
        waitw = l > waitw ? (l < 48 ? l : 48) : waitw;
    }
    const char *b = cli_sgr("\033[1m"), *off = cli_sgr("\033[0m");
    printf("%s%6s  %-*s  %-9s  %-*s  %8s  %7s  %8s  %s%s\n", b, "ID", namew,
           "NAME", "STATE", waitw, "WAITS ON", "AGE", "STEPS", "RUN", "SITE",
           off);
    for (size_t i = 0; i < x->n; i++) {
        struct row *r = &x->v[i];
        const char *sc = state_color(r->t.state);
        wait_text(x, r, w, sizeof w);
        printf("%6llu  %-*.*s  %s%-9s%s  %-*.*s  %8s  %7llu  %8s  %s\n",
               (unsigned long long)r->t.id, namew, 32, str(x, r->t.name), sc,
               cs_trace_state_name(r->t.state), sc[0] ? off : "", waitw, 48,
               w, cli_fmt_duration(age_ns(x, r), age, sizeof age),
               (unsigned long long)r->t.steps,
               cli_fmt_duration(cs_trace_ticks_ns(x->t, r->t.run_ticks), run,
                                sizeof run),
               r->t.site ? str(x, r->t.site) : "-");
        if (x->stacks)
            print_frames(r, "          ");
    }
    print_cycles(x);
}

/* One tree node: "task 2 'fetch': waiting on fd 7 (read)". */
static void print_node(struct tasks *x, struct row *r, const char *prefix,
                       const char *branch, const char *below, int again)
{
    char ref[160], w[256];
    task_ref(x, r->t.id, ref, sizeof ref);
    wait_text(x, r, w, sizeof w);
    printf("%s%s%s: %s", prefix, branch, ref, cs_trace_state_name(r->t.state));
    if (again)
        printf(" (shown above)\n");
    else if (r->t.state == CS_TASK_WAITING)
        printf(" on %s\n", w);
    else if (strcmp(w, "-") != 0)
        printf(", %s\n", w);
    else
        putchar('\n');
    if (x->stacks && !again) {
        char ind[512];
        snprintf(ind, sizeof ind, "%s%s    ", prefix, below);
        print_frames(r, ind);
    }
}

/* Draws the chain from root: each task above what it waits on. */
static void print_chain(struct tasks *x, long root)
{
    char prefix[256] = "";
    size_t plen = 0;
    long k = root;
    int first = 1;
    while (k >= 0) {
        struct row *r = &x->v[k];
        int again = r->printed;
        print_node(x, r, prefix, first ? "" : "└── ", first ? "" : "    ",
                   again);
        r->printed = 1;
        if (again)
            break;
        if (!first && plen + 4 < sizeof prefix - 1) {
            memcpy(prefix + plen, "    ", 5);
            plen += 4;
        }
        first = 0;
        k = r->target;
    }
}

static void print_tree(struct tasks *x)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->v[i].indeg == 0)
            print_chain(x, (long)i);
    for (size_t c = 0; c < x->ncycles; c++)
        if (!x->v[x->cycles[c][0]].printed)
            print_chain(x, x->cycles[c][0]);
    print_cycles(x);
}

static void json_wait(struct tasks *x, const struct row *r)
{
    const cs_trace_task *t = &r->t;
    unsigned long long tg = (unsigned long long)t->wait_target;
    if (t->state != CS_TASK_WAITING && t->wait != CS_WAIT_YIELD) {
        printf("null");
        return;
    }
    printf("{\"reason\":");
    cli_json_str(stdout, cs_trace_wait_name(t->wait));
    switch (t->wait) {
    case CS_WAIT_SLEEP:
        printf(",\"deadline_ns\":%llu,\"remaining_ns\":%llu", tg,
               t->wait_target > x->now
                   ? (unsigned long long)(t->wait_target - x->now)
                   : 0ull);
        break;
    case CS_WAIT_TASK:
        printf(",\"task\":%llu", tg);
        break;
    case CS_WAIT_LOCK:
        printf(",\"lock\":%llu,\"holder\":%llu", tg,
               (unsigned long long)t->wait_aux);
        break;
    case CS_WAIT_EVENT:
        printf(",\"event\":%llu", tg);
        break;
    case CS_WAIT_SEMAPHORE:
        printf(",\"semaphore\":%llu", tg);
        break;
    case CS_WAIT_QUEUE_PUT:
    case CS_WAIT_QUEUE_GET:
        printf(",\"queue\":%llu", tg);
        break;
    case CS_WAIT_FD_READ:
    case CS_WAIT_FD_WRITE:
        printf(",\"fd\":%lld", (long long)t->wait_target);
        if (t->wait_aux)
            printf(",\"deadline_ns\":%llu,\"remaining_ns\":%llu",
                   (unsigned long long)t->wait_aux,
                   t->wait_aux > x->now
                       ? (unsigned long long)(t->wait_aux - x->now)
                       : 0ull);
        break;
    default:
        break;
    }
    putchar('}');
}

static void json_stack(const struct row *r)
{
    if (r->depth <= 0) {
        printf(",\"stack\":null,\"stack_note\":");
        cli_json_str(stdout, r->stack_note ? r->stack_note : "unknown");
        return;
    }
    printf(",\"stack\":[");
    for (int k = 0; k < r->depth; k++) {
        const struct cli_frame *f = &r->frames[k];
        printf("%s{\"ip\":\"0x%llx\",\"function\":", k ? "," : "",
               (unsigned long long)f->ip);
        cli_json_str(stdout, f->func);
        printf(",\"file\":");
        cli_json_str(stdout, f->file);
        printf(",\"line\":%d,\"module\":", f->line);
        cli_json_str(stdout, f->module);
        putchar('}');
    }
    putchar(']');
}

static void print_json(struct tasks *x)
{
    char cmd[512], w[256];
    printf("{\"pid\":%d,\"command\":", x->pid);
    cli_json_str(stdout,
                 cli_sanitize(cli_proc_cmdline(x->pid, cmd, sizeof cmd)));
    printf(",\"tasks\":[");
    for (size_t i = 0; i < x->n; i++) {
        struct row *r = &x->v[i];
        const cs_trace_task *t = &r->t;
        printf("%s\n{\"id\":%llu,\"name\":", i ? "," : "",
               (unsigned long long)t->id);
        cli_json_str(stdout, str(x, t->name));
        printf(",\"state\":");
        cli_json_str(stdout, cs_trace_state_name(t->state));
        printf(",\"waits_on\":");
        json_wait(x, r);
        wait_text(x, r, w, sizeof w);
        printf(",\"waits_on_text\":");
        cli_json_str(stdout, w);
        printf(",\"age_ns\":%llu,\"steps\":%llu,\"run_ns\":%llu,\"site\":",
               (unsigned long long)age_ns(x, r),
               (unsigned long long)t->steps,
               (unsigned long long)cs_trace_ticks_ns(x->t, t->run_ticks));
        cli_json_str(stdout, str(x, t->site));
        printf(",\"parent\":%llu,\"awaiter\":%llu,\"cancel_requested\":%s",
               (unsigned long long)t->parent, (unsigned long long)t->awaiter,
               t->flags & CS_TASKF_CANCEL_REQUESTED ? "true" : "false");
        if (x->stacks)
            json_stack(r);
        putchar('}');
    }
    printf("\n],\"deadlocks\":[");
    for (size_t c = 0; c < x->ncycles; c++) {
        printf("%s[", c ? "," : "");
        for (long *k = x->cycles[c]; *k >= 0; k++)
            printf("%s%llu", k == x->cycles[c] ? "" : ",",
                   (unsigned long long)x->v[*k].t.id);
        putchar(']');
    }
    printf("]}\n");
}

/* ---- the command ----------------------------------------------------------- */

static void tasks_release(struct tasks *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i].frames);
    for (size_t i = 0; i < x->strs_cap; i++)
        free(x->strs[i].s);
    for (size_t c = 0; c < x->ncycles; c++)
        free(x->cycles[c]);
    free(x->cycles);
    free(x->strs);
    free(x->by_id);
    free(x->v);
    cs_trace_close(x->t);
}

static int parse_args(struct tasks *x, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"stacks", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "table") == 0)
                x->format = FMT_TABLE;
            else if (strcmp(optarg, "json") == 0)
                x->format = FMT_JSON;
            else if (strcmp(optarg, "tree") == 0)
                x->format = FMT_TREE;
            else
                return cli_error("tasks: unknown format '%s' (table, json or "
                                 "tree)",
                                 optarg);
            break;
        case 's':
            x->stacks = 1;
            break;
        case 'h':
            fputs(cmd_tasks_usage, stdout);
            return -1;
        default:
            return cli_bad_option("tasks", argv, optind, optopt);
        }
    }
    if (optind >= argc)
        return cli_error("tasks: missing process id (see 'coscope help "
                         "tasks')");
    if (optind + 1 < argc)
        return cli_error("tasks: unexpected argument '%s' (see 'coscope help "
                         "tasks')",
                         argv[optind + 1]);
    return cli_parse_pid(argv[optind], &x->pid);
}

int cmd_tasks(int argc, char **argv)
{
    struct tasks x;
    memset(&x, 0, sizeof x);
    int rc = parse_args(&x, argc, argv);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_open_pid(x.pid, &x.t) != CLI_OK)
        return CLI_ERROR;
    cli_test_point("opened");
    rc = read_tasks(&x);
    if (rc == CLI_OK && x.stacks)
        rc = read_stacks(&x);
    if (rc == CLI_OK)
        rc = cli_check_alive(x.t, x.pid);
    if (rc == CLI_OK)
        rc = build_graph(&x);
    if (rc == CLI_OK) {
        if (x.format == FMT_JSON)
            print_json(&x);
        else if (x.format == FMT_TREE)
            print_tree(&x);
        else
            print_table(&x);
        if (x.ncycles > 0)
            rc = CLI_FINDINGS;
    }
    tasks_release(&x);
    return rc;
}
