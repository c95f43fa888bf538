/*
 * cmd_report.c - `coscope report FILE`: a summary of a trace file (from
 * `coscope record`, COSCOPE_RECORD or the flight recorder): events and
 * losses, tasks, loop busy %, warnings with their stacks, slowest steps.
 *
 * One pass over every ring's records.  Loop busy % comes from the
 * loop-iteration records: 100% minus the time spent in epoll_wait over the
 * time between the first and the last iteration.  Warning stacks are
 * symbolised from the file's module table (the files of the objects the
 * writer had loaded, if their build ids still match, else "lib+0xoffset"),
 * or, for files older than the table, from the writer's mappings if it
 * still runs.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "timeline.h"

const char cmd_report_usage[] =
    "usage: coscope report [--partial] <file>\n"
    "\n"
    "Summarises a trace file: events recorded and lost, tasks, each loop's\n"
    "busy %, warnings with their stacks (and how long a blocking call held\n"
    "the loop), the slowest steps (timed ones: a step begun in a yield\n"
    "batch has only an estimated duration).  A file cut or damaged before\n"
    "its end is refused (exit 2, with the byte offset) unless --partial.\n"
    "\n"
    "    --partial   read a file that is cut or damaged up to the last\n"
    "                whole chunk\n"
    "    -h, --help  show this help\n";

#define TOP_STEPS 10
#define TOP_WARNINGS 20

struct step {
    uint64_t ns; /* how long it ran */
    uint64_t task;
    unsigned reason; /* what it waited on next */
};

struct warning {
    uint64_t task;
    unsigned kind;
    uint32_t stack;
    uint32_t ring;    /* where it was recorded */
    int open;         /* its task's step has not ended yet in the file */
    uint64_t step_ns; /* that step's duration, once it ended (0: unknown) */
    int before;       /* from before the recording (record PID) */
};

struct loop {
    uint64_t iterations;
    uint64_t poll_ticks;
    uint64_t first_ts, last_ts;
};

struct report {
    cs_trace *t;
    cs_trace_info info;
    uint64_t events, lost, first_ts, last_ts;
    /* `record PID`: what the rings held before the recording began */
    uint64_t *window; /* per ring: last seq from before, or 0 */
    int has_window;
    uint64_t before, before_first, before_last, window_first; /* events,
                                                     clock values */
    uint64_t by_type[CS_EV_TYPE_COUNT + 1];
    uint64_t warn_kinds[CS_WARN_COUNT + 1];
    struct step top[TOP_STEPS];
    int ntop;
    struct warning warnings[TOP_WARNINGS];
    int nwarnings;
    struct loop *loops;
    struct cli_idmap names; /* task id -> its name's string id */
    cs_trace_event ev[1024];
};

static void name_put(struct report *r, uint64_t id, uint32_t name)
{
    cli_idmap_put(&r->names, id, name); /* out of memory: unnamed */
}

static const char *name_of(struct report *r, uint64_t id, char *buf,
                           size_t cap)
{
    long name = cli_idmap_get(&r->names, id);
    buf[0] = '\0';
    if (name > 0)
        cs_trace_string(r->t, (uint32_t)name, buf, cap);
    return cli_sanitize(buf);
}

static void keep_step(struct report *r, const cs_trace_event *e)
{
    uint64_t ns = cs_trace_ticks_ns(r->t, cs_trace_event_ticks(e));
    int i = r->ntop < TOP_STEPS ? r->ntop++ : TOP_STEPS - 1;
    if (i == TOP_STEPS - 1 && r->ntop == TOP_STEPS && r->top[i].ns >= ns)
        return;
    while (i > 0 && r->top[i - 1].ns < ns) {
        r->top[i] = r->top[i - 1];
        i--;
    }
    r->top[i] = (struct step){ns, e->task_id, e->reason};
}

static void account(struct report *r, const cs_trace_event *e)
{
    r->events++;
    if (r->has_window && e->seq <= r->window[e->ring]) {
        /* from before the recording: counted apart, its names kept, its
         * warnings listed as such; the rest of the summary is the window */
        r->before++;
        if (r->before_first == 0 || e->ts < r->before_first)
            r->before_first = e->ts;
        if (r->before_last < e->ts)
            r->before_last = e->ts;
        if (e->type == CS_EV_TASK_NAME)
            name_put(r, e->task_id, e->arg);
        if (e->type == CS_EV_WARNING) { /* counted, and marked as such */
            r->by_type[CS_EV_WARNING]++;
            r->warn_kinds[e->reason < CS_WARN_COUNT ? e->reason
                                                    : CS_WARN_COUNT]++;
            if (r->nwarnings < TOP_WARNINGS)
                r->warnings[r->nwarnings++] =
                    (struct warning){e->task_id,
                                     e->reason,
                                     e->arg | (e->flags & CS_RECF_PYSTACK
                                                   ? CLI_TL_PYSTACK
                                                   : 0u),
                                     e->ring,
                                     0,
                                     0,
                                     1};
        }
        return;
    }
    if (r->window_first == 0 || e->ts < r->window_first)
        r->window_first = e->ts;
    if (r->first_ts == 0 || e->ts < r->first_ts)
        r->first_ts = e->ts;
    if (e->ts > r->last_ts)
        r->last_ts = e->ts;
    r->by_type[e->type < CS_EV_TYPE_COUNT ? e->type : CS_EV_TYPE_COUNT]++;
    switch (e->type) {
    case CS_EV_TASK_NAME:
        name_put(r, e->task_id, e->arg);
        break;
    case CS_EV_STEP: /* a batched one's time is an estimate: not ranked */
        if (!(e->flags & CS_RECF_BATCHED))
            keep_step(r, e);
        /* the step a warning was made in (a blocking call's) ends here */
        for (int i = 0; i < r->nwarnings; i++) {
            struct warning *w = &r->warnings[i];
            if (w->open && w->ring == e->ring && w->task == e->task_id) {
                w->open = 0;
                w->step_ns = cs_trace_ticks_ns(r->t, cs_trace_event_ticks(e));
            }
        }
        break;
    case CS_EV_WARNING:
        r->warn_kinds[e->reason < CS_WARN_COUNT ? e->reason : CS_WARN_COUNT]++;
        if (r->nwarnings < TOP_WARNINGS)
            r->warnings[r->nwarnings++] = (struct warning){
                e->task_id,
                e->reason,
                e->arg | (e->flags & CS_RECF_PYSTACK ? CLI_TL_PYSTACK : 0u),
                e->ring,
                e->task_id != 0,
                0,
                0};
        break;
    case CS_EV_LOOP_ITER: {
        struct loop *l = &r->loops[e->ring];
        if (l->iterations++ == 0)
            l->first_ts = e->ts;
        l->last_ts = e->ts;
        l->poll_ticks += cs_trace_event_ticks(e);
        break;
    }
    default:
        break;
    }
}

static int read_all(struct report *r)
{
    uint32_t iter = 0;
    cs_trace_task task;
    while (cs_trace_task_next(r->t, &iter, &task) == 1)
        name_put(r, task.id, task.name);
    for (uint32_t ring = 0; ring < r->info.ring_count; ring++) {
        cs_trace_ring rh;
        if (cs_trace_ring_get(r->t, ring, &rh) == 0 && rh.window_seq) {
            r->window[ring] = rh.window_seq;
            r->has_window = 1;
        }
    }
    for (uint32_t ring = 0; ring < r->info.ring_count; ring++) {
        uint64_t cursor = 0;
        for (;;) {
            size_t n = 0;
            uint64_t lost = 0;
            int err = cs_trace_read(r->t, ring, &cursor, r->ev,
                                    sizeof r->ev / sizeof r->ev[0], &n, &lost);
            if (err != 0)
                return err;
            r->lost += lost;
            for (size_t i = 0; i < n; i++)
                account(r, &r->ev[i]);
            if (n == 0)
                break;
        }
    }
    return 0;
}

static void print_tasks(struct report *r)
{
    uint64_t states[CS_TASK_STATE_COUNT + 1] = {0}, total = 0;
    uint32_t iter = 0;
    cs_trace_task task;
    while (cs_trace_task_next(r->t, &iter, &task) == 1) {
        states[task.state < CS_TASK_STATE_COUNT ? task.state
                                                : CS_TASK_STATE_COUNT]++;
        total++;
    }
    printf("tasks: %llu at the end", (unsigned long long)total);
    const char *sep = " (";
    for (unsigned s = 0; s <= CS_TASK_STATE_COUNT; s++) {
        if (states[s] == 0)
            continue;
        printf("%s%s %llu", sep, cs_trace_state_name(s),
               (unsigned long long)states[s]);
        sep = ", ";
    }
    printf("%s; while recorded: %llu created, %llu done, %llu raised, %llu "
           "cancelled\n",
           total ? ")" : "",
           (unsigned long long)r->by_type[CS_EV_TASK_CREATED],
           (unsigned long long)r->by_type[CS_EV_TASK_DONE],
           (unsigned long long)r->by_type[CS_EV_TASK_RAISED],
           (unsigned long long)r->by_type[CS_EV_TASK_CANCELLED]);
}

static void print_loops(struct report *r)
{
    for (uint32_t i = 0; i < r->info.ring_count; i++) {
        struct loop *l = &r->loops[i];
        if (l->iterations == 0)
            continue;
        printf("loop %u: %llu iterations", i,
               (unsigned long long)l->iterations);
        uint64_t span = cs_trace_ticks_ns(r->t, l->last_ts - l->first_ts);
        uint64_t poll = cs_trace_ticks_ns(r->t, l->poll_ticks);
        if (l->iterations > 1 && span > 0)
            printf(", busy %.1f%%",
                   poll >= span
                       ? 0.0
                       : 100.0 * (double)(span - poll) / (double)span);
        putchar('\n');
    }
}

static void print_py_line(void *arg, int k, const char *line)
{
    (void)arg;
    if (k < 0)
        printf("      %s\n", line);
    else
        printf("      #%-2d %s\n", k, line);
}

static void print_warnings(struct report *r)
{
    char n[256];
    if (r->nwarnings == 0)
        return;
    struct cli_symbols *sym = cli_symbols_for_trace(r->t);
    printf("warnings:\n");
    for (int i = 0; i < r->nwarnings; i++) {
        struct warning *w = &r->warnings[i];
        printf("  %s", cs_trace_warning_name(w->kind));
        uint64_t ips[CS_STACK_MAX];
        struct cli_frame f[2 * CS_STACK_MAX];
        char call[128];
        int py = (w->stack & CLI_TL_PYSTACK) != 0;
        int d = w->stack && !py
                    ? cs_trace_stack(r->t, w->stack, ips, CS_STACK_MAX)
                    : 0;
        call[0] = '\0';
        if (!py)
            d = cli_symbolize_call(sym, ips,
                                   d < CS_STACK_MAX ? d : CS_STACK_MAX, f,
                                   2 * CS_STACK_MAX, call, sizeof call);
        if (w->task)
            printf(": task %llu '%s'", (unsigned long long)w->task,
                   name_of(r, w->task, n, sizeof n));
        if (call[0]) /* the blocking function, as the agent names it */
            printf(": %s()", call);
        if (w->before)
            printf(" (before the recording)");
        if (w->step_ns) {
            char dur[32];
            printf("%s %s", call[0] ? "" : ",",
                   w->kind == CS_WARN_BLOCKING ? "held the loop for"
                                               : "in a step of");
            printf(" %s", cli_fmt_duration(w->step_ns, dur, sizeof dur));
        }
        putchar('\n');
        if (py) { /* headline, then a frame a line */
            cli_py_stack_lines(r->t, w->stack & ~CLI_TL_PYSTACK, print_py_line,
                               NULL);
            continue;
        }
        for (int k = 0; k < d; k++) {
            char text[512];
            printf("      #%-2d %s\n", k,
                   cli_frame_text(&f[k], text, sizeof text));
        }
    }
    if (r->by_type[CS_EV_WARNING] > (uint64_t)r->nwarnings)
        printf("  ... and %llu more\n",
               (unsigned long long)(r->by_type[CS_EV_WARNING] -
                                    (uint64_t)r->nwarnings));
    cli_symbols_close(sym);
}

static void print_report(struct report *r, const char *path, uint64_t size)
{
    char d[32], n[256], state[128];
    if (r->info.valid_bytes < size) /* --partial */
        snprintf(state, sizeof state,
                 "cut or damaged after byte %llu of "
                 "%llu (read up to it: --partial)",
                 (unsigned long long)r->info.valid_bytes,
                 (unsigned long long)size);
    else
        snprintf(state, sizeof state, "%s",
                 r->info.complete ? "complete" : "truncated (no end marker)");
    if (r->has_window && r->before > 0) {
        /* `record PID`: the recording, then what the rings held before */
        char b[32], w[64] = "no events";
        if (r->window_first)
            snprintf(w, sizeof w, "%s of events",
                     cli_fmt_duration(
                         cs_trace_ticks_ns(r->t, r->last_ts - r->window_first),
                         d, sizeof d));
        printf("trace '%s': process %d ('%s'), %s while recorded (before "
               "it, the rings still held %llu events over %s), %s\n",
               path, r->info.pid, cli_sanitize(r->info.exe_path), w,
               (unsigned long long)r->before,
               cli_fmt_duration(cs_trace_ticks_ns(r->t, r->before_last -
                                                            r->before_first),
                                b, sizeof b),
               state);
    } else {
        printf("trace '%s': process %d ('%s'), %s of events, %s\n", path,
               r->info.pid, cli_sanitize(r->info.exe_path),
               cli_fmt_duration(cs_trace_ticks_ns(r->t,
                                                  r->last_ts - r->first_ts),
                                d, sizeof d),
               state);
    }
    printf("events: %llu recorded, %llu lost\n", (unsigned long long)r->events,
           (unsigned long long)r->lost);
    print_tasks(r);
    print_loops(r);
    printf("warnings: %llu", (unsigned long long)r->by_type[CS_EV_WARNING]);
    const char *sep = " (";
    for (unsigned k = 0; k <= CS_WARN_COUNT; k++) {
        if (r->warn_kinds[k] == 0)
            continue;
        printf("%s%s %llu", sep, cs_trace_warning_name(k),
               (unsigned long long)r->warn_kinds[k]);
        sep = ", ";
    }
    printf("%s\n", sep[0] == ',' ? ")" : "");
    if (r->ntop > 0)
        printf("slowest steps:\n");
    for (int i = 0; i < r->ntop; i++)
        printf("  %10s  task %llu '%s', then %s\n",
               cli_fmt_duration(r->top[i].ns, d, sizeof d),
               (unsigned long long)r->top[i].task,
               name_of(r, r->top[i].task, n, sizeof n),
               cs_trace_wait_name(r->top[i].reason));
    print_warnings(r);
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partial", no_argument, NULL, 'p'},
        CLI_OPTS_END,
    };
    int c, partial = 0;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "h", opts)) > 0)
        partial = 1; /* --partial */
    if (c < 0)
        return cli_getopt_status(c);
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    const char *path = s.file;
    struct report *r = calloc(1, sizeof *r);
    if (r == NULL)
        return cli_error("out of memory");
    /* one behaviour for every reader of a damaged file: refused, with
     * the byte offset, unless --partial (then what was decoded counts) */
    if (cli_open_trace_file(path, partial, &r->t, &r->info) != CLI_OK) {
        free(r);
        return CLI_ERROR;
    }
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    r->loops = calloc(r->info.ring_count + 1, sizeof *r->loops);
    r->window = calloc(r->info.ring_count + 1, sizeof *r->window);
    int err = r->loops && r->window ? read_all(r) : -ENOMEM;
    int rc = CLI_OK;
    if (err != 0)
        rc = cli_trace_file_error(path, err);
    else
        print_report(r, path, size);
    cs_trace_close(r->t);
    free(r->loops);
    free(r->window);
    cli_idmap_release(&r->names);
    free(r);
    return rc;
}
