/*
 * cmd_tasks.c - `coscope tasks PID [--format table|json|tree] [--stacks]`:
 * an all-tasks dump of a live process, read from its segment's task table
 * without stopping it (each slot is copied under its seqlock).
 * The snapshot, the await graph and the stacks come from taskset.c; this
 * file prints them.  A cycle in the await graph is a deadlock: printed in
 * every format, and the exit status is 1.
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
    "                     [--runtime-frames]\n"
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
    "                      rights of ptrace: same user, or CAP_SYS_PTRACE),\n"
    "                      without coscope's own frames at either end\n"
    "    --runtime-frames  with --stacks: show those too (cs__ag_wait,\n"
    "                      cs__task_entry, cs__trampoline...)\n"
    "    -h, --help        show this help\n"
    "\n"
    "Exit status: 0, or 1 if the tasks wait on each other in a cycle (a\n"
    "deadlock, printed in every format), or 2 on bad input.\n";

enum tasks_format { FMT_TABLE, FMT_JSON, FMT_TREE };

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

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int runtime_frames; /* --runtime-frames: show coscope's own */

static int is_runtime(const struct cli_frame *f)
{
    return strncmp(f->func, "cs_", 3) == 0; /* cs_* and cs__* */
}

/* The frames shown of r's stack, [*lo, *hi): without the runtime's own at
 * either end (the suspension, cs__ag_wait and the API call that led to it;
 * the task's entry and trampoline), unless --runtime-frames, or when all
 * are the runtime's. */
static void shown(const struct cli_task *r, int *lo, int *hi)
{
    *lo = 0;
    *hi = r->depth;
    if (runtime_frames)
        return;
    while (*lo < *hi && is_runtime(&r->frames[*lo]))
        ++*lo;
    if (*lo == *hi) {
        *lo = 0;
        return;
    }
    while (*hi - 1 > *lo && is_runtime(&r->frames[*hi - 1]))
        --*hi;
}

static void print_frames(const struct cli_task *r, const char *indent)
{
    int lo, hi;
    if (r->depth <= 0) {
        printf("%s(no stack: %s)\n", indent,
               r->stack_note ? r->stack_note : "unknown");
        return;
    }
    shown(r, &lo, &hi);
    for (int k = lo; k < hi; k++) {
        const struct cli_frame *f = &r->frames[k];
        if (f->ip == 0 && f->file[0]) { /* an asyncio await chain */
            printf("%s#%-2d %s:%d in %s\n", indent, k - lo, f->file, f->line,
                   f->func);
            continue;
        }
        printf("%s#%-2d 0x%012llx %s%s", indent, k - lo,
               (unsigned long long)f->ip, f->func[0] ? f->func : "??",
               f->inlined ? " [inlined]" : "");
        if (f->file[0])
            printf(" (%s:%d)", base_name(f->file), f->line);
        else if (f->module[0])
            printf(" (%s)", f->module);
        putchar('\n');
    }
}

/* ---- output ------------------------------------------------------------- */

static void print_cycles(struct cli_taskset *x)
{
    char ref[160], w[256];
    const char *red = cli_sgr("\033[1;31m"), *off = cli_sgr("\033[0m");
    for (size_t c = 0; c < x->ncycles; c++) {
        printf("%sdeadlock:%s", red, off);
        for (long *k = x->cycles[c]; *k >= 0; k++) {
            cli_ts_ref(x, x->v[*k].t.id, ref, sizeof ref);
            cli_ts_wait_text(x, &x->v[*k], w, sizeof w);
            printf(" %s waits on %s%s", ref, w, k[1] >= 0 ? "," : "\n");
        }
    }
}

static void print_table(struct cli_taskset *x)
{
    char w[256], age[32], run[32];
    int namew = 4, waitw = 8;
    for (size_t i = 0; i < x->n; i++) {
        int l = (int)strlen(cli_ts_str(x, x->v[i].t.name));
        namew = l > namew ? (l < 32 ? l : 32) : namew;
        cli_ts_wait_text(x, &x->v[i], w, sizeof w);
        l = (int)strlen(w);
        waitw = l > waitw ? (l < 48 ? l : 48) : waitw;
    }
    const char *b = cli_sgr("\033[1m"), *off = cli_sgr("\033[0m");
    printf("%s%6s  %-*s  %-9s  %-*s  %8s  %7s  %8s  %s%s\n", b, "ID", namew,
           "NAME", "STATE", waitw, "WAITS ON", "AGE", "STEPS", "RUN", "SITE",
           off);
    for (size_t i = 0; i < x->n; i++) {
        struct cli_task *r = &x->v[i];
        const char *sc = state_color(r->t.state);
        cli_ts_wait_text(x, r, w, sizeof w);
        printf("%6llu  %-*.*s  %s%-9s%s  %-*.*s  %8s  %7llu  %8s  %s\n",
               (unsigned long long)r->t.id, namew, 32,
               cli_ts_str(x, r->t.name), sc, cs_trace_state_name(r->t.state),
               sc[0] ? off : "", waitw, 48, w,
               cli_fmt_duration(cli_ts_age(x, r), age, sizeof age),
               (unsigned long long)r->t.steps,
               cli_fmt_duration(cs_trace_ticks_ns(x->t, r->t.run_ticks), run,
                                sizeof run),
               r->t.site ? cli_ts_site(x, r->t.site) : "-");
        if (x->stacks)
            print_frames(r, "          ");
    }
    print_cycles(x);
}

/* One tree node: "task 2 'fetch': waiting on fd 7 (read)". */
static void print_node(struct cli_taskset *x, struct cli_task *r,
                       const char *prefix, const char *branch,
                       const char *below, int again)
{
    char ref[160], w[256];
    cli_ts_ref(x, r->t.id, ref, sizeof ref);
    cli_ts_wait_text(x, r, w, sizeof w);
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

#define TREE_FOLD 10 /* awaited tasks drawn under one task; the rest counted */
#define TREE_DEPTH 64 /* levels drawn */

/* Draws task k and, below it, what it waits on: every task it awaits (a
 * gather's, folded past TREE_FOLD as asyncio's pstree folds), or the
 * holder of the lock it wants. */
static void print_subtree(struct cli_taskset *x, long k, const char *prefix,
                          const char *branch, const char *below, int depth)
{
    struct cli_task *r = &x->v[k];
    int again = r->printed;
    print_node(x, r, prefix, branch, below, again);
    r->printed = 1;
    if (again)
        return;
    long kids[TREE_FOLD];
    int n = 0, total = 0;
    if (r->nawaited > 0) {
        for (long c = r->awaited_head; c >= 0; c = x->v[c].awaited_next)
            if (total++ < TREE_FOLD)
                kids[n++] = c;
    } else if (r->target >= 0) {
        kids[n++] = r->target;
        total = 1;
    }
    if (n == 0)
        return;
    char sub[512];
    snprintf(sub, sizeof sub, "%s%s", prefix, below);
    if (depth >= TREE_DEPTH) {
        printf("%s└── ... (deeper levels not shown)\n", sub);
        return;
    }
    for (int i = 0; i < n; i++) {
        int last = i == n - 1 && total <= n;
        print_subtree(x, kids[i], sub, last ? "└── " : "├── ",
                      last ? "    " : "│   ", depth + 1);
    }
    if (total > n)
        printf("%s└── ... and %d more awaited tasks\n", sub, total - n);
}

static void print_tree(struct cli_taskset *x)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->v[i].indeg == 0)
            print_subtree(x, (long)i, "", "", "", 0);
    for (size_t c = 0; c < x->ncycles; c++)
        if (!x->v[x->cycles[c][0]].printed)
            print_subtree(x, x->cycles[c][0], "", "", "", 0);
    print_cycles(x);
}

static void json_wait(struct cli_taskset *x, const struct cli_task *r)
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
        if (r->nawaited > 0) { /* every task it awaits (a gather's) */
            printf(",\"tasks\":[");
            for (long c = r->awaited_head; c >= 0; c = x->v[c].awaited_next)
                printf("%s%llu", c == r->awaited_head ? "" : ",",
                       (unsigned long long)x->v[c].t.id);
            putchar(']');
        }
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

/* A string, or null when there is none (never ""). */
static void json_str_or_null(const char *v)
{
    if (v && v[0])
        cli_json_str(stdout, v);
    else
        printf("null");
}

static void json_stack(const struct cli_task *r)
{
    if (r->depth <= 0) {
        printf(",\"stack\":null,\"stack_note\":");
        cli_json_str(stdout, r->stack_note ? r->stack_note : "unknown");
        return;
    }
    int lo, hi;
    shown(r, &lo, &hi);
    printf(",\"stack\":[");
    for (int k = lo; k < hi; k++) {
        const struct cli_frame *f = &r->frames[k];
        printf("%s{\"ip\":\"0x%llx\",\"function\":", k > lo ? "," : "",
               (unsigned long long)f->ip);
        json_str_or_null(f->func);
        printf(",\"file\":");
        json_str_or_null(f->file);
        printf(",\"line\":");
        if (f->file[0])
            printf("%d", f->line);
        else
            printf("null");
        printf(",\"module\":");
        json_str_or_null(f->module);
        printf(",\"inlined\":%s}", f->inlined ? "true" : "false");
    }
    printf("],\"runtime_frames_hidden\":%d", r->depth - (hi - lo));
}

static void print_json(struct cli_taskset *x)
{
    char cmd[512], w[256];
    printf("{\"pid\":%d,\"command\":", x->pid);
    cli_json_str(stdout,
                 cli_sanitize(cli_proc_cmdline(x->pid, cmd, sizeof cmd)));
    printf(",\"tasks\":[");
    for (size_t i = 0; i < x->n; i++) {
        struct cli_task *r = &x->v[i];
        const cs_trace_task *t = &r->t;
        printf("%s\n{\"id\":%llu,\"name\":", i ? "," : "",
               (unsigned long long)t->id);
        cli_json_str(stdout, cli_ts_str(x, t->name));
        printf(",\"state\":");
        cli_json_str(stdout, cs_trace_state_name(t->state));
        printf(",\"waits_on\":");
        json_wait(x, r);
        cli_ts_wait_text(x, r, w, sizeof w);
        printf(",\"waits_on_text\":");
        cli_json_str(stdout, w);
        printf(",\"age_ns\":%llu,\"steps\":%llu,\"run_ns\":%llu,\"site\":",
               (unsigned long long)cli_ts_age(x, r),
               (unsigned long long)t->steps,
               (unsigned long long)cs_trace_ticks_ns(x->t, t->run_ticks));
        if (t->site) /* null, not "", when there is none */
            cli_json_str(stdout, cli_ts_site(x, t->site));
        else
            printf("null");
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

/* ---- the command -----------------------------------------------------------
 */

static int parse_args(struct cli_taskset *x, enum tasks_format *format,
                      int *stacks, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"stacks", no_argument, NULL, 's'},
        {"runtime-frames", no_argument, NULL, 'R'},
        CLI_OPTS_END,
    };
    int c;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "f:sh", opts)) > 0) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "table") == 0)
                *format = FMT_TABLE;
            else if (strcmp(optarg, "json") == 0)
                *format = FMT_JSON;
            else if (strcmp(optarg, "tree") == 0)
                *format = FMT_TREE;
            else
                return cli_error("tasks: unknown format '%s' (table, json or "
                                 "tree)",
                                 optarg);
            break;
        case 's':
            *stacks = 1;
            break;
        case 'R':
            runtime_frames = 1;
            break;
        }
    }
    if (c < 0)
        return c; /* CLI_HELP, or -CLI_ERROR */
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    x->pid = s.pid;
    x->t = s.t;
    return CLI_OK;
}

int cmd_tasks(int argc, char **argv)
{
    struct cli_taskset x;
    enum tasks_format format = FMT_TABLE;
    int stacks = 0;
    memset(&x, 0, sizeof x);
    int rc = parse_args(&x, &format, &stacks, argc, argv);
    if (rc != CLI_OK)
        return rc < 0 ? cli_getopt_status(rc) : rc;
    cli_test_point("opened");
    rc = cli_ts_read(&x);
    if (rc == CLI_OK && stacks)
        rc = cli_ts_stacks(&x);
    if (rc == CLI_OK)
        rc = cli_check_alive(x.t, x.pid);
    if (rc == CLI_OK)
        rc = cli_ts_graph(&x);
    if (rc == CLI_OK) {
        if (format == FMT_JSON)
            print_json(&x);
        else if (format == FMT_TREE)
            print_tree(&x);
        else
            print_table(&x);
        if (x.ncycles > 0)
            rc = CLI_FINDINGS;
    }
    cli_ts_release(&x);
    return rc;
}
