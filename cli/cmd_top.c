/*
 * cmd_top.c - `coscope top PID`: a live view of a process's tasks,
 * refreshed every second: each task's share of the CPU and steps per
 * second since the last refresh, how long it has waited, what on; each
 * loop's busy %, events per second, warnings.
 *
 * On a terminal it is a full-screen ncurses view with keys to sort, filter
 * by name, show one task's stack and quit; otherwise (a pipe, a file) it
 * prints one plain-text snapshot per refresh, like `top -b`.
 *
 * Rates are differences between two snapshots of the task table.  Loop
 * busy % comes from the loop-iteration records read since the last
 * refresh: 100% minus the time spent in epoll_wait over the interval.
 */
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cmd_top_usage[] =
    "usage: coscope top <pid> [--interval <seconds>] [--sort <key>]\n"
    "                   [--filter <text>] [--iterations <n>]\n"
    "\n"
    "A live view of a process's tasks, refreshed every interval: CPU share\n"
    "and steps per second since the last refresh, run time, how long each\n"
    "task has waited and on what; each loop's busy %, events per second,\n"
    "warnings.  Ends when the process exits or on q / Ctrl-C.\n"
    "\n"
    "Keys: r, s, w, n, i sort by run (CPU), steps, wait, name or id;\n"
    "/ filters by name (empty: all); up/down select a task; enter shows\n"
    "or hides its stack; q quits.  Not on a terminal, one plain-text\n"
    "snapshot is printed per refresh.\n"
    "\n"
    "    -d, --interval SECONDS  refresh period (default 1)\n"
    "    -o, --sort KEY          run (default), steps, wait, name or id\n"
    "    -F, --filter TEXT       only tasks whose name contains TEXT\n"
    "    -n, --iterations N      stop after N refreshes\n"
    "    -h, --help              show this help\n";

enum top_sort { SORT_RUN, SORT_STEPS, SORT_WAIT, SORT_NAME, SORT_ID };

/* What a task had at the previous refresh. */
struct top_prev {
    uint64_t id;     /* 0: empty */
    uint64_t run_ns; /* run time, the step in progress included */
    uint64_t steps;
};

/* One displayed task. */
struct top_row {
    long idx;       /* into ts.v */
    double cpu;     /* % of one CPU since the last refresh */
    double steps_s; /* steps per second since the last refresh */
    uint64_t wait;  /* ns since its last step began, when not running */
};

struct top {
    struct cli_taskset ts;
    double interval; /* seconds */
    enum top_sort sort;
    char filter[64];          /* name substring, "" for all */
    long iterations;          /* refreshes left, < 0 unlimited */
    struct top_prev *prev;    /* each task's counters at the last refresh */
    struct cli_idmap prev_ix; /* task id -> index in prev */
    uint64_t prev_now;        /* ns; 0 before the first refresh */
    uint32_t rings;
    uint64_t *cursor;      /* per ring */
    uint64_t *poll;        /* per ring: poll ticks since last refresh */
    uint64_t *iters;       /* per ring: iterations since last refresh */
    uint64_t events, lost; /* since the last refresh */
    uint64_t rings_t0;     /* ns: when the rings were last read */
    double rings_dt;       /* ns the last ring sample covers */
    uint64_t warnings, warnings_new;
    struct top_row *rows;
    size_t nrows, rows_cap;
    uint64_t selected; /* task id under the cursor */
    int show_stack;    /* the selected task's stack is shown */
    cs_trace_event ev[1024];
};


/* ---- sampling ----------------------------------------------------------- */

/* Run time of task t in ns, counting the step it is running now. */
static uint64_t run_ns(struct top *p, const cs_trace_task *t)
{
    uint64_t ns = cs_trace_ticks_ns(p->ts.t, t->run_ticks);
    cs_trace_ring ring;
    if (t->state == CS_TASK_RUNNING &&
        cs_trace_ring_get(p->ts.t, t->ring, &ring) == 0 &&
        ring.step_task == t->id && ring.step_start != 0) {
        uint64_t start = cs_trace_ns(p->ts.t, ring.step_start);
        if (p->ts.now > start)
            ns += p->ts.now - start;
    }
    return ns;
}

/* Remembers every task's counters for the next refresh. */
static int remember(struct top *p)
{
    struct top_prev *v = realloc(p->prev, (p->ts.n + 1) * sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    p->prev = v;
    cli_idmap_clear(&p->prev_ix);
    for (size_t i = 0; i < p->ts.n; i++) {
        const cs_trace_task *t = &p->ts.v[i].t;
        p->prev[i] = (struct top_prev){t->id, run_ns(p, t), t->steps};
        if (cli_idmap_put(&p->prev_ix, t->id, (long)i) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Reads the loop-iteration records and counts events since last time. */
static int sample_rings(struct top *p)
{
    uint64_t now = cli_now_ns();
    p->rings_dt = now > p->rings_t0 ? (double)(now - p->rings_t0) : 1.0;
    p->rings_t0 = now;
    p->events = p->lost = 0;
    for (uint32_t r = 0; r < p->rings; r++) {
        p->poll[r] = p->iters[r] = 0;
        for (;;) {
            size_t n = 0;
            uint64_t lost = 0;
            int err = cs_trace_read(p->ts.t, r, &p->cursor[r], p->ev,
                                    sizeof p->ev / sizeof p->ev[0], &n, &lost);
            if (err != 0)
                return err;
            p->events += n + lost;
            p->lost += lost;
            for (size_t i = 0; i < n; i++)
                if (p->ev[i].type == CS_EV_LOOP_ITER) {
                    p->iters[r]++;
                    p->poll[r] += cs_trace_event_ticks(&p->ev[i]);
                }
            if (n == 0)
                break;
        }
    }
    return 0;
}

static int row_cmp_key;
static const struct top *row_cmp_top;

static int row_cmp(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    const struct top *p = row_cmp_top;
    const cs_trace_task *tx = &p->ts.v[x->idx].t, *ty = &p->ts.v[y->idx].t;
    int c = 0;
    switch (row_cmp_key) {
    case SORT_RUN:
        c = (x->cpu < y->cpu) - (x->cpu > y->cpu);
        if (c == 0)
            c = (tx->run_ticks < ty->run_ticks) -
                (tx->run_ticks > ty->run_ticks);
        break;
    case SORT_STEPS:
        c = (x->steps_s < y->steps_s) - (x->steps_s > y->steps_s);
        if (c == 0)
            c = (tx->steps < ty->steps) - (tx->steps > ty->steps);
        break;
    case SORT_WAIT:
        c = (x->wait < y->wait) - (x->wait > y->wait);
        break;
    case SORT_NAME:
        c = strcmp(cli_ts_str((struct cli_taskset *)&p->ts, tx->name),
                   cli_ts_str((struct cli_taskset *)&p->ts, ty->name));
        break;
    default:
        break;
    }
    return c ? c : (tx->id > ty->id) - (tx->id < ty->id);
}

/* Takes a new snapshot and computes the rows; CLI_ERROR if it failed. */
static int sample(struct top *p)
{
    cli_ts_clear(&p->ts);
    if (cli_ts_read(&p->ts) != CLI_OK)
        return CLI_ERROR;
    int err = sample_rings(p);
    if (err != 0)
        return cli_error("cannot read the events of process %d: %s", p->ts.pid,
                         cli_trace_strerror(err));
    cs_trace_info info;
    cs_trace_info_get(p->ts.t, &info);
    p->warnings_new = p->prev_now ? info.warnings - p->warnings : 0;
    p->warnings = info.warnings;
    if (p->rows_cap < p->ts.n + 1) {
        free(p->rows);
        p->rows_cap = p->ts.n + 1;
        p->rows = malloc(p->rows_cap * sizeof *p->rows);
        if (p->rows == NULL)
            return cli_error("out of memory");
    }
    double dt = p->prev_now ? (double)(p->ts.now - p->prev_now) : 0;
    p->nrows = 0;
    for (size_t i = 0; i < p->ts.n; i++) {
        const cs_trace_task *t = &p->ts.v[i].t;
        if (p->filter[0] &&
            strstr(cli_ts_str(&p->ts, t->name), p->filter) == NULL)
            continue;
        struct top_row *row = &p->rows[p->nrows++];
        memset(row, 0, sizeof *row);
        row->idx = (long)i;
        long k = cli_idmap_get(&p->prev_ix, t->id);
        const struct top_prev *e = k >= 0 ? &p->prev[k] : NULL;
        if (dt > 0 && e != NULL && e->id == t->id) {
            uint64_t run = run_ns(p, t);
            run = run > e->run_ns ? run - e->run_ns : 0;
            row->cpu = 100.0 * (double)run / dt;
            row->steps_s = (double)(t->steps - e->steps) * 1e9 / dt;
        }
        uint64_t last = cs_trace_ns(p->ts.t, t->last_run);
        if (t->state != CS_TASK_RUNNING && t->last_run && p->ts.now > last)
            row->wait = p->ts.now - last;
    }
    row_cmp_key = p->sort;
    row_cmp_top = p;
    if (p->nrows > 1)
        qsort(p->rows, p->nrows, sizeof *p->rows, row_cmp);
    p->prev_now = p->ts.now;
    if (remember(p) != 0)
        return cli_error("out of memory");
    return CLI_OK;
}

/* ---- the lines shown ---------------------------------------------------- */

static const char *sort_name(enum top_sort s)
{
    static const char *names[] = {"run", "steps", "wait", "name", "id"};
    return names[s];
}

/* The summary lines: process, tasks by state, loops, events, warnings. */
static int summary(struct top *p, char lines[3][512])
{
    char cmd[256], d[32];
    uint64_t by_state[CS_TASK_STATE_COUNT + 1] = {0};
    for (size_t i = 0; i < p->ts.n; i++) {
        unsigned s = p->ts.v[i].t.state;
        by_state[s < CS_TASK_STATE_COUNT ? s : CS_TASK_STATE_COUNT]++;
    }
    cli_sanitize(cli_proc_cmdline(p->ts.pid, cmd, sizeof cmd));
    snprintf(lines[0], 512,
             "coscope top - process %d '%.200s' - %zu tasks: %llu running, "
             "%llu ready, %llu waiting",
             p->ts.pid, cmd, p->ts.n,
             (unsigned long long)by_state[CS_TASK_RUNNING],
             (unsigned long long)by_state[CS_TASK_READY],
             (unsigned long long)by_state[CS_TASK_WAITING]);
    size_t n = 0;
    double dt = p->rings_dt;
    for (uint32_t r = 0; r < p->rings && n < 400; r++) {
        cs_trace_ring ring;
        if (cs_trace_ring_get(p->ts.t, r, &ring) != 0 ||
            ring.state != CS_RING_ACTIVE)
            continue;
        /* No iteration ended: one step ran throughout, or the loop
         * waited in epoll_wait throughout. */
        double poll = (double)cs_trace_ticks_ns(p->ts.t, p->poll[r]);
        double busy = p->iters[r]       ? 100.0 * (1.0 - poll / dt)
                      : ring.step_start ? 100.0
                                        : 0.0;
        if (busy < 0)
            busy = 0;
        n += (size_t)snprintf(lines[1] + n, 512 - n,
                              "%sloop %u: busy %.0f%%, %llu iterations",
                              n ? "; " : "", r, busy,
                              (unsigned long long)p->iters[r]);
    }
    if (n == 0)
        snprintf(lines[1], 512, "no loop running");
    snprintf(lines[2], 512,
             "events: %.0f/s%s - warnings: %llu (+%llu) - refresh %s - "
             "sort: %s%s%s%s",
             (double)p->events * 1e9 / p->rings_dt,
             p->lost ? " (some lost)" : "", (unsigned long long)p->warnings,
             (unsigned long long)p->warnings_new,
             cli_fmt_duration((uint64_t)(p->interval * 1e9), d, sizeof d),
             sort_name(p->sort), p->filter[0] ? " - filter: '" : "", p->filter,
             p->filter[0] ? "'" : "");
    return 3;
}

static const char top_header[] =
    "     ID  NAME                  STATE     CPU%  STEPS/S       RUN"
    "     WAITED  WAITS ON";

static void row_line(struct top *p, const struct top_row *row, char *buf,
                     size_t cap)
{
    struct cli_task *r = &p->ts.v[row->idx];
    char run[32], waited[32], w[256];
    cli_ts_wait_text(&p->ts, r, w, sizeof w);
    if (row->wait)
        cli_fmt_duration(row->wait, waited, sizeof waited);
    else
        snprintf(waited, sizeof waited, "-");
    snprintf(buf, cap, "%7llu  %-20.20s  %-8s %5.1f  %7.1f  %8s  %9s  %s",
             (unsigned long long)r->t.id, cli_ts_str(&p->ts, r->t.name),
             cs_trace_state_name(r->t.state), row->cpu, row->steps_s,
             cli_fmt_duration(run_ns(p, &r->t), run, sizeof run), waited, w);
}

/* ---- plain text --------------------------------------------------------- */

static int run_text(struct top *p)
{
    char lines[3][512], buf[512];
    for (;;) {
        if (sample(p) != CLI_OK)
            return CLI_ERROR;
        int n = summary(p, lines);
        for (int i = 0; i < n; i++)
            puts(lines[i]);
        puts(top_header);
        for (size_t i = 0; i < p->nrows; i++) {
            row_line(p, &p->rows[i], buf, sizeof buf);
            puts(buf);
        }
        putchar('\n');
        if (fflush(stdout) != 0)
            return CLI_OK; /* the reader went away */
        if (p->iterations > 0 && --p->iterations == 0)
            return CLI_OK;
        for (double t = 0; t < p->interval && !cli_stop_requested; t += 0.05) {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
        if (cli_stop_requested)
            return CLI_OK;
        if (cs_trace_stale(p->ts.t) != 0) {
            fprintf(stderr, "coscope: process %d exited\n", p->ts.pid);
            return CLI_OK;
        }
    }
}

/* ---- full screen -------------------------------------------------------- */

static long selected_row(struct top *p)
{
    for (size_t i = 0; i < p->nrows; i++)
        if (p->ts.v[p->rows[i].idx].t.id == p->selected)
            return (long)i;
    return -1;
}

static void draw_stack(struct top *p, long sel, int y0, int rows, int cols)
{
    struct cli_task *r = &p->ts.v[p->rows[sel].idx];
    char buf[512];
    if (r->depth == 0 && r->stack_note == NULL &&
        cli_ts_stack_one(&p->ts, (size_t)p->rows[sel].idx) != CLI_OK)
        r->stack_note = "cannot read its memory (same user or "
                        "CAP_SYS_PTRACE needed)";
    snprintf(buf, sizeof buf,
             "stack of task %llu '%s':", (unsigned long long)r->t.id,
             cli_ts_str(&p->ts, r->t.name));
    attron(A_BOLD);
    mvaddnstr(y0, 0, buf, cols);
    attroff(A_BOLD);
    if (r->depth <= 0) {
        snprintf(buf, sizeof buf, "  (no stack: %s)",
                 r->stack_note ? r->stack_note : "unknown");
        mvaddnstr(y0 + 1, 0, buf, cols);
        return;
    }
    for (int k = 0; k < r->depth && k < rows - 1; k++) {
        const struct cli_frame *f = &r->frames[k];
        const char *file = strrchr(f->file, '/');
        int l = snprintf(buf, sizeof buf, "  #%-2d 0x%012llx %s", k,
                         (unsigned long long)f->ip,
                         f->func[0] ? f->func : "??");
        if (f->file[0] && l > 0 && (size_t)l < sizeof buf)
            snprintf(buf + l, sizeof buf - (size_t)l, " (%s:%d)",
                     file ? file + 1 : f->file, f->line);
        mvaddnstr(y0 + 1 + k, 0, buf, cols);
    }
}

static void draw(struct top *p, const char *message)
{
    char lines[3][512], buf[512];
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    int n = summary(p, lines);
    for (int i = 0; i < n && i < rows; i++)
        mvaddnstr(i, 0, lines[i], cols);
    attron(A_REVERSE);
    mvhline(n, 0, ' ', cols);
    mvaddnstr(n, 0, top_header, cols);
    attroff(A_REVERSE);
    long sel = selected_row(p);
    if (sel < 0 && p->nrows > 0) {
        sel = 0;
        p->selected = p->ts.v[p->rows[0].idx].t.id;
    }
    int stack_rows = p->show_stack && sel >= 0 ? rows / 3 : 0;
    int avail = rows - n - 2 - stack_rows;
    long first = sel >= avail ? sel - avail + 1 : 0;
    for (long i = first; i < (long)p->nrows && i - first < avail; i++) {
        row_line(p, &p->rows[i], buf, sizeof buf);
        if (i == sel)
            attron(A_BOLD | A_UNDERLINE);
        mvaddnstr(n + 1 + (int)(i - first), 0, buf, cols);
        if (i == sel)
            attroff(A_BOLD | A_UNDERLINE);
    }
    if (stack_rows > 0)
        draw_stack(p, sel, rows - 1 - stack_rows, stack_rows, cols);
    attron(A_REVERSE);
    mvhline(rows - 1, 0, ' ', cols);
    mvaddnstr(rows - 1, 0,
              message ? message
                      : "q quit  r/s/w/n/i sort  / filter  up/down select  "
                        "enter stack",
              cols);
    attroff(A_REVERSE);
    refresh();
}

/* Reads the filter text on the bottom line. */
static void ask_filter(struct top *p)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    (void)cols;
    move(rows - 1, 0);
    clrtoeol();
    addstr("filter by name: ");
    echo();
    curs_set(1);
    timeout(-1);
    char buf[sizeof p->filter];
    if (getnstr(buf, sizeof buf - 1) == OK)
        snprintf(p->filter, sizeof p->filter, "%s", buf);
    noecho();
    curs_set(0);
}

/* Handles one key; 1 to quit. */
static int key(struct top *p, int c)
{
    long sel = selected_row(p);
    switch (c) {
    case 'q':
    case 'Q':
        return 1;
    case 'r':
        p->sort = SORT_RUN;
        break;
    case 's':
        p->sort = SORT_STEPS;
        break;
    case 'w':
        p->sort = SORT_WAIT;
        break;
    case 'n':
        p->sort = SORT_NAME;
        break;
    case 'i':
        p->sort = SORT_ID;
        break;
    case '/':
        ask_filter(p);
        break;
    case KEY_UP:
    case 'k':
        if (sel > 0)
            p->selected = p->ts.v[p->rows[sel - 1].idx].t.id;
        return 0;
    case KEY_DOWN:
    case 'j':
        if (sel >= 0 && sel + 1 < (long)p->nrows)
            p->selected = p->ts.v[p->rows[sel + 1].idx].t.id;
        return 0;
    case '\n':
    case '\r':
    case KEY_ENTER:
        p->show_stack = !p->show_stack;
        return 0;
    default:
        return 0;
    }
    return 0;
}

static int run_screen(struct top *p)
{
    setlocale(LC_ALL, "");
    if (initscr() == NULL)
        return cli_error("cannot start the terminal view");
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    int rc = CLI_OK, exited = 0;
    uint64_t next = 0;
    while (!cli_stop_requested) {
        if (cli_now_ns() >= next) {
            if (cs_trace_stale(p->ts.t) != 0) {
                exited = 1;
                break;
            }
            if (sample(p) != CLI_OK) {
                rc = CLI_ERROR;
                break;
            }
            next = cli_now_ns() + (uint64_t)(p->interval * 1e9);
            if (p->iterations > 0 && --p->iterations == 0)
                break;
        }
        draw(p, NULL);
        uint64_t now = cli_now_ns();
        timeout(next > now ? (int)((next - now) / 1000000) + 1 : 0);
        int c = getch();
        if (c == ERR)
            continue;
        if (c == '/' || c == 'r' || c == 's' || c == 'w' || c == 'n' ||
            c == 'i')
            next = 0; /* re-sample with the new order or filter */
        if (key(p, c))
            break;
    }
    endwin();
    if (exited)
        fprintf(stderr, "coscope: process %d exited\n", p->ts.pid);
    return rc;
}

/* ---- the command -------------------------------------------------------- */

static int parse_args(struct top *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"interval", required_argument, NULL, 'd'},
        {"sort", required_argument, NULL, 'o'},
        {"filter", required_argument, NULL, 'F'},
        {"iterations", required_argument, NULL, 'n'},
        CLI_OPTS_END,
    };
    static const char *sorts[] = {"run", "steps", "wait", "name", "id"};
    int c;
    char *end;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "d:o:F:n:h", opts)) > 0) {
        switch (c) {
        case 'd':
            p->interval = strtod(optarg, &end);
            if (*end != '\0' || end == optarg || !(p->interval >= 0.05) ||
                p->interval > 3600)
                return cli_error("top: '%s' is not an interval in seconds "
                                 "(0.05 to 3600)",
                                 optarg);
            break;
        case 'o': {
            size_t k = 0;
            while (k < 5 && strcmp(sorts[k], optarg) != 0)
                k++;
            if (k == 5)
                return cli_error("top: unknown sort key '%s' (run, steps, "
                                 "wait, name or id)",
                                 optarg);
            p->sort = (enum top_sort)k;
            break;
        }
        case 'F':
            snprintf(p->filter, sizeof p->filter, "%s", optarg);
            break;
        case 'n':
            p->iterations = strtol(optarg, &end, 10);
            if (*end != '\0' || end == optarg || p->iterations <= 0)
                return cli_error("top: '%s' is not a number of refreshes",
                                 optarg);
            break;
        }
    }
    if (c < 0)
        return c; /* CLI_HELP, or -CLI_ERROR */
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    p->ts.pid = s.pid;
    p->ts.t = s.t;
    return CLI_OK;
}

int cmd_top(int argc, char **argv)
{
    struct top *p = calloc(1, sizeof *p);
    if (p == NULL)
        return cli_error("out of memory");
    p->interval = 1.0;
    p->iterations = -1;
    int rc = parse_args(p, argc, argv);
    int parsed = rc == CLI_OK; /* not --help, not a bad option */
    if (rc < 0)
        rc = cli_getopt_status(rc);
    if (parsed) {
        cs_trace_info info;
        cs_trace_info_get(p->ts.t, &info);
        p->rings = info.ring_count;
        p->cursor = calloc(p->rings + 1, sizeof *p->cursor);
        p->poll = calloc(p->rings + 1, sizeof *p->poll);
        p->iters = calloc(p->rings + 1, sizeof *p->iters);
        if (!p->cursor || !p->poll || !p->iters)
            rc = cli_error("out of memory");
        for (uint32_t r = 0; rc == CLI_OK && r < p->rings; r++) {
            cs_trace_ring ring;
            if (cs_trace_ring_get(p->ts.t, r, &ring) == 0)
                p->cursor[r] = ring.head;
        }
        p->rings_t0 = cli_now_ns();
    }
    if (parsed && rc == CLI_OK) {
        rc = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO) ? run_screen(p)
                                                           : run_text(p);
    }
    cli_ts_release(&p->ts);
    free(p->prev);
    cli_idmap_release(&p->prev_ix);
    free(p->rows);
    free(p->cursor);
    free(p->poll);
    free(p->iters);
    free(p);
    return rc;
}
