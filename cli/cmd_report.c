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

#include "cli.h"
#include "timeline.h"

const char cmd_report_usage[] =
    "usage: coscope report <file>\n"
    "\n"
    "Summarises a trace file: events recorded and lost, tasks, each loop's\n"
    "busy %, warnings with their stacks, the slowest steps (timed ones: a\n"
    "step begun in a yield batch has only an estimated duration).\n"
    "\n"
    "    -h, --help  show this help\n";

#define TOP_STEPS 10
#define TOP_WARNINGS 20
#define NAMES 8192

struct step {
    uint64_t ns; /* how long it ran */
    uint64_t task;
    unsigned reason; /* what it waited on next */
};

struct warning {
    uint64_t task;
    unsigned kind;
    uint32_t stack;
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
    uint64_t by_type[CS_EV_TYPE_COUNT + 1];
    uint64_t warn_kinds[CS_WARN_COUNT + 1];
    struct step top[TOP_STEPS];
    int ntop;
    struct warning warnings[TOP_WARNINGS];
    int nwarnings;
    struct loop *loops;
    struct {
        uint64_t id;
        uint32_t name;
    } names[NAMES];
    cs_trace_event ev[1024];
};

static void name_put(struct report *r, uint64_t id, uint32_t name)
{
    size_t h = (size_t)(id * 0x9e3779b97f4a7c15ull >> 50) % NAMES;
    r->names[h].id = id;
    r->names[h].name = name;
}

static const char *name_of(struct report *r, uint64_t id, char *buf,
                           size_t cap)
{
    size_t h = (size_t)(id * 0x9e3779b97f4a7c15ull >> 50) % NAMES;
    buf[0] = '\0';
    if (r->names[h].id == id && r->names[h].name != 0)
        cs_trace_string(r->t, r->names[h].name, buf, cap);
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
        break;
    case CS_EV_WARNING:
        r->warn_kinds[e->reason < CS_WARN_COUNT ? e->reason : CS_WARN_COUNT]++;
        if (r->nwarnings < TOP_WARNINGS)
            r->warnings[r->nwarnings++] =
                (struct warning){e->task_id, e->reason,
                                 e->arg | (e->flags & CS_RECF_PYSTACK
                                               ? CLI_TL_PYSTACK : 0u)};
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
        if (w->task)
            printf(": task %llu '%s'", (unsigned long long)w->task,
                   name_of(r, w->task, n, sizeof n));
        putchar('\n');
        if (w->stack & CLI_TL_PYSTACK) { /* headline, then a frame a line */
            char text[CS_STRING_MAX + 1];
            char *save = NULL, *ln;
            if (cs_trace_string(r->t, w->stack & ~CLI_TL_PYSTACK, text,
                                sizeof text) < 0)
                continue;
            ln = strtok_r(text, "\n", &save);
            if (ln)
                printf("      %s\n", cli_sanitize(ln));
            for (int k = 0; (ln = strtok_r(NULL, "\n", &save)) != NULL; k++)
                printf("      #%-2d %s\n", k, cli_sanitize(ln));
            continue;
        }
        uint64_t ips[CS_STACK_MAX];
        int d =
            w->stack ? cs_trace_stack(r->t, w->stack, ips, CS_STACK_MAX) : 0;
        for (int k = 0; k < d && k < CS_STACK_MAX; k++) {
            struct cli_frame f;
            char fn[256];
            cli_symbolize(sym, ips[k], k > 0, &f);
            printf("      #%-2d 0x%012llx %s", k, (unsigned long long)ips[k],
                   cli_frame_name(&f, fn, sizeof fn));
            if (f.file[0])
                printf(" (%s:%d)", f.file, f.line);
            putchar('\n');
        }
    }
    if (r->by_type[CS_EV_WARNING] > (uint64_t)r->nwarnings)
        printf("  ... and %llu more\n",
               (unsigned long long)(r->by_type[CS_EV_WARNING] -
                                    (uint64_t)r->nwarnings));
    cli_symbols_close(sym);
}

static void print_report(struct report *r, const char *path)
{
    char d[32], n[256];
    printf("trace '%s': process %d ('%s'), %s of events, %s\n", path,
           r->info.pid, cli_sanitize(r->info.exe_path),
           cli_fmt_duration(cs_trace_ticks_ns(r->t, r->last_ts - r->first_ts),
                            d, sizeof d),
           r->info.complete ? "complete" : "truncated (no end marker)");
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return fputs(cmd_report_usage, stdout), CLI_OK;
        return cli_bad_option("report", argv, optind, optopt);
    }
    if (optind >= argc)
        return cli_error("report: missing trace file (see 'coscope help "
                         "report')");
    if (optind + 1 < argc)
        return cli_error("report: unexpected argument '%s'", argv[optind + 1]);
    const char *path = argv[optind];
    struct report *r = calloc(1, sizeof *r);
    if (r == NULL)
        return cli_error("out of memory");
    int err = cs_trace_open_file(path, &r->t);
    if (err == 0) {
        cs_trace_info_get(r->t, &r->info);
        r->loops = calloc(r->info.ring_count + 1, sizeof *r->loops);
        err = r->loops ? read_all(r) : -ENOMEM;
    }
    int rc = CLI_OK;
    if (err == CS_TRACE_ECORRUPT)
        rc = cli_error("'%s' is not a valid coscope trace file: %s", path,
                       cs_trace_error_detail());
    else if (err == CS_TRACE_EVERSION)
        rc = cli_error("'%s' has an unsupported format: %s", path,
                       cs_trace_error_detail());
    else if (err != 0)
        rc = cli_error("cannot read '%s': %s", path, cs_trace_strerror(err));
    else
        print_report(r, path);
    cs_trace_close(r->t);
    free(r->loops);
    free(r);
    return rc;
}
