/*
 * cmd_watch.c - `coscope watch PID [--format text|json]`: follows the
 * event rings of a live process, like `tail -f`, until the process exits
 * or the user presses Ctrl-C.
 *
 * Each ring is read from a cursor with cs_trace_read, which counts what
 * the writer overwrote before we got to it; that count is reported as it
 * grows, so events printed + events reported lost == events written.
 * Rings are read one after the other, so events of different loops are
 * not merged by time.  Between passes the command sleeps 20 ms when there
 * was nothing to read.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

const char cmd_watch_usage[] =
    "usage: coscope watch <pid> [--format text|json] [--all] [--iterations]\n"
    "\n"
    "Prints the events of a running coscope process as they happen (task\n"
    "created, each step and what it waits on next, done/raised/cancelled,\n"
    "warnings with their stacks, cancellations) until the process exits or\n"
    "Ctrl-C is pressed; both end with exit status 0.  When coscope falls\n"
    "behind and the process overwrites events before they are read, it says\n"
    "how many were lost.\n"
    "\n"
    "    -f, --format FMT  text (default) or json: one JSON object a line\n"
    "    -a, --all         start with the events still in the rings, not\n"
    "                      only new ones\n"
    "    -i, --iterations  also print one line per loop iteration\n"
    "    -h, --help        show this help\n";

#define BATCH 1024
#define NAMES_CAP 65536 /* names kept; past it, forgotten and read again */

struct pending_wait {
    int valid;
    unsigned reason;
    uint64_t target;
};

struct watch {
    cs_trace *t;
    int pid;
    int json, all, iterations;
    uint32_t rings;
    uint64_t *cursor;          /* per ring: last seq consumed or lost */
    uint64_t *lost;            /* per ring: lost so far */
    struct pending_wait *wait; /* per ring: CS_EV_WAIT before its step */
    struct cli_idmap names;    /* task id -> its name's string id */
    uint64_t wall_minus_mono;  /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
    int names_fresh;           /* the task table was re-read this pass */
    struct cli_symbols *sym;   /* for warning stacks, opened lazily */
    int sym_tried;
    cs_trace_event ev[BATCH];
};


/* ---- names -------------------------------------------------------------- */

static void name_put(struct watch *w, uint64_t id, uint32_t name)
{
    if (w->names.n >= NAMES_CAP) /* ids of tasks long gone, mostly */
        cli_idmap_clear(&w->names);
    cli_idmap_put(&w->names, id, name); /* out of memory: unnamed */
}

/* Re-reads the task table's names (when an event names a task we do not
 * know yet). */
static void names_refresh(struct watch *w)
{
    uint32_t iter = 0;
    cs_trace_task task;
    while (cs_trace_task_next(w->t, &iter, &task) == 1)
        name_put(w, task.id, task.name);
}

static const char *task_name(struct watch *w, uint64_t id, char *buf,
                             size_t cap)
{
    long name = cli_idmap_get(&w->names, id);
    if (name < 0) {
        if (!w->names_fresh) { /* at most once a pass: it reads every slot */
            names_refresh(w);
            w->names_fresh = 1;
        }
        if ((name = cli_idmap_get(&w->names, id)) < 0)
            name_put(w, id, 0);
    }
    buf[0] = '\0';
    if (name > 0)
        cs_trace_string(w->t, (uint32_t)name, buf, cap);
    return cli_sanitize(buf);
}

/* ---- printing ----------------------------------------------------------- */

static void clock_text(struct watch *w, uint64_t ts, char *buf, size_t cap)
{
    uint64_t wall = cs_trace_ns(w->t, ts) + w->wall_minus_mono;
    time_t s = (time_t)(wall / 1000000000u);
    struct tm tm;
    localtime_r(&s, &tm);
    snprintf(buf, cap, "%02d:%02d:%02d.%06u", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(wall % 1000000000u / 1000u));
}

static void wait_words(unsigned reason, uint64_t target, char *buf, size_t cap)
{
    unsigned long long tg = (unsigned long long)target;
    switch (reason) {
    case CS_WAIT_SLEEP:
        snprintf(buf, cap, "sleep");
        break;
    case CS_WAIT_TASK:
    case CS_WAIT_LOCK:
    case CS_WAIT_EVENT:
    case CS_WAIT_SEMAPHORE:
        snprintf(buf, cap, "%s %llu", cs_trace_wait_name(reason), tg);
        break;
    case CS_WAIT_QUEUE_PUT:
    case CS_WAIT_QUEUE_GET:
        snprintf(buf, cap, "queue %llu (%s)", tg,
                 reason == CS_WAIT_QUEUE_PUT ? "full" : "empty");
        break;
    case CS_WAIT_FD_READ:
    case CS_WAIT_FD_WRITE:
        snprintf(buf, cap, "fd %lld (%s)", (long long)target,
                 reason == CS_WAIT_FD_READ ? "read" : "write");
        break;
    default:
        snprintf(buf, cap, "%s", cs_trace_wait_name(reason));
    }
}

static void print_warning_stack(struct watch *w, uint32_t stack)
{
    uint64_t ips[CS_STACK_MAX];
    int n = stack ? cs_trace_stack(w->t, stack, ips, CS_STACK_MAX) : 0;
    if (n <= 0)
        return;
    if (!w->sym_tried) {
        /* The maps while the process runs, else its module table. */
        w->sym = cli_symbols_for_trace(w->t);
        w->sym_tried = 1;
    }
    struct cli_frame f[2 * CS_STACK_MAX];
    n = cli_symbolize_stack(w->sym, ips, n < CS_STACK_MAX ? n : CS_STACK_MAX,
                            f, 2 * CS_STACK_MAX);
    for (int k = 0; k < n; k++) {
        char text[512];
        printf("        #%-2d %s\n", k,
               cli_frame_text(&f[k], text, sizeof text));
    }
}

/* The text for one event after the time and task ("ran 1.2ms, ..."). */
static void event_text(struct watch *w, const cs_trace_event *e,
                       const struct pending_wait *pw, char *buf, size_t cap)
{
    char d[32], s[256] = "";
    /* the duration a step, batch or loop iteration record holds */
    cli_fmt_duration(cs_trace_ticks_ns(w->t, cs_trace_event_ticks(e)), d,
                     sizeof d);
    switch (e->type) {
    case CS_EV_TASK_CREATED:
        cs_trace_string(w->t, e->arg, s, sizeof s);
        if (strncmp(s, "@0x", 3) == 0) { /* a plain cs_spawn's caller */
            if (!w->sym_tried) {
                w->sym = cli_symbols_for_trace(w->t);
                w->sym_tried = 1;
            }
            cli_site_name(w->sym, s, sizeof s);
        }
        snprintf(buf, cap, "created%s%s", s[0] ? " at " : "", s);
        break;
    case CS_EV_TASK_NAME:
        cs_trace_string(w->t, e->arg, s, sizeof s);
        snprintf(buf, cap, "named '%s'", s);
        break;
    case CS_EV_STEP:
        if (e->flags & CS_RECF_BATCHED) /* its share of the batch */
            snprintf(d + strlen(d), sizeof d - strlen(d), " (estimated)");
        if (e->reason == CS_WAIT_YIELD)
            snprintf(buf, cap, "ran %s, yielded", d);
        else if (e->reason >= CS_STOP_DONE)
            snprintf(buf, cap, "ran %s, %s", d, cs_trace_wait_name(e->reason));
        else {
            if (pw && pw->valid)
                wait_words(e->reason, pw->target, s, sizeof s);
            else /* the target is in a CS_EV_WAIT we did not see */
                snprintf(s, sizeof s, "%s", cs_trace_wait_name(e->reason));
            snprintf(buf, cap, "ran %s, waits on %s", d, s);
        }
        break;
    case CS_EV_BATCH:
        snprintf(buf, cap, "batch of %llu short steps in %s",
                 (unsigned long long)e->task_id, d);
        break;
    case CS_EV_YIELDS:
        snprintf(buf, cap, "%u of them, each ended by a yield", e->arg);
        break;
    case CS_EV_TASK_DONE:
        snprintf(buf, cap, "done");
        break;
    case CS_EV_TASK_RAISED:
        snprintf(buf, cap, "raised error %d", (int)e->arg);
        break;
    case CS_EV_TASK_CANCELLED:
        snprintf(buf, cap, "cancelled");
        break;
    case CS_EV_CANCEL:
        snprintf(buf, cap, "cancel requested");
        break;
    case CS_EV_CORO_CREATED:
        cs_trace_string(w->t, e->arg, s, sizeof s);
        snprintf(buf, cap, "coroutine created%s%s", s[0] ? " at " : "", s);
        break;
    case CS_EV_CORO_DROPPED:
        snprintf(buf, cap, "coroutine dropped%s",
                 e->reason ? " without running (never awaited)" : "");
        break;
    case CS_EV_WARNING:
        snprintf(buf, cap, "warning: %s", cs_trace_warning_name(e->reason));
        break;
    case CS_EV_LOOP_ITER:
        snprintf(buf, cap, "loop iteration %llu, polled %s",
                 (unsigned long long)e->task_id, d);
        break;
    case CS_EV_USER:
        cs_trace_string(w->t, e->arg, s, sizeof s);
        snprintf(buf, cap, "user: %s", s);
        break;
    default:
        snprintf(buf, cap, "event type %u", e->type);
    }
    cli_sanitize(buf); /* strings from the process */
}

/* Who an event is about: "task 5 'fetch'", "coroutine 7", "" (loop). */
static void subject_text(struct watch *w, const cs_trace_event *e, char *buf,
                         size_t cap)
{
    char n[256];
    if (e->type == CS_EV_LOOP_ITER) {
        snprintf(buf, cap, "loop %u", e->ring);
    } else if (e->type == CS_EV_CORO_CREATED ||
               e->type == CS_EV_CORO_DROPPED) {
        snprintf(buf, cap, "coroutine %llu", (unsigned long long)e->task_id);
    } else if (e->task_id == 0) {
        snprintf(buf, cap, "loop %u", e->ring);
    } else {
        task_name(w, e->task_id, n, sizeof n);
        snprintf(buf, cap, "task %llu '%s'", (unsigned long long)e->task_id,
                 n);
    }
}

static void print_json_event(struct watch *w, const cs_trace_event *e,
                             const struct pending_wait *pw)
{
    char n[256], text[512];
    printf("{\"type\":");
    cli_json_str(stdout, cs_trace_event_name(e->type));
    printf(",\"ring\":%u,\"seq\":%llu,\"ts_ns\":%llu", e->ring,
           (unsigned long long)e->seq,
           (unsigned long long)cs_trace_ns(w->t, e->ts));
    if (e->type != CS_EV_LOOP_ITER && e->type != CS_EV_CORO_CREATED &&
        e->type != CS_EV_CORO_DROPPED && e->task_id != 0) {
        printf(",\"task\":%llu,\"name\":", (unsigned long long)e->task_id);
        cli_json_str(stdout, task_name(w, e->task_id, n, sizeof n));
    } else {
        printf(",\"subject\":%llu", (unsigned long long)e->task_id);
    }
    if (e->type == CS_EV_STEP) {
        printf(",\"reason\":");
        cli_json_str(stdout, cs_trace_wait_name(e->reason));
        printf(",\"ran_ns\":%llu",
               (unsigned long long)cs_trace_ticks_ns(w->t,
                                                     cs_trace_event_ticks(e)));
        if (pw && pw->valid)
            printf(",\"wait_target\":%llu", (unsigned long long)pw->target);
    } else if (e->type == CS_EV_WARNING) {
        printf(",\"warning\":");
        cli_json_str(stdout, cs_trace_warning_name(e->reason));
    }
    event_text(w, e, pw, text, sizeof text);
    printf(",\"text\":");
    cli_json_str(stdout, text);
    printf("}\n");
}

static void print_event(struct watch *w, const cs_trace_event *e)
{
    struct pending_wait *pw = &w->wait[e->ring];
    char clk[32], who[320], text[512];
    if (e->type == CS_EV_WAIT) { /* qualifies the next step of this ring */
        pw->valid = 1;
        pw->reason = e->reason;
        pw->target = e->task_id;
        return;
    }
    if (e->type == CS_EV_TASK_NAME)
        name_put(w, e->task_id, e->arg);
    if (e->type == CS_EV_LOOP_ITER && !w->iterations)
        return;
    int use_wait = e->type == CS_EV_STEP && pw->valid &&
                   pw->reason == e->reason;
    if (w->json) {
        print_json_event(w, e, use_wait ? pw : NULL);
    } else {
        clock_text(w, e->ts, clk, sizeof clk);
        subject_text(w, e, who, sizeof who);
        event_text(w, e, use_wait ? pw : NULL, text, sizeof text);
        const char *c = e->type == CS_EV_WARNING ? cli_sgr("\033[1;31m") : "";
        printf("%s%s  %s  %s%s\n", c, clk, who, text,
               c[0] ? cli_sgr("\033[0m") : "");
        if (e->type == CS_EV_WARNING)
            print_warning_stack(w, e->arg);
    }
    if (e->type == CS_EV_STEP)
        pw->valid = 0;
}

static void print_lost(struct watch *w, uint32_t ring, uint64_t n)
{
    if (w->json)
        printf("{\"type\":\"lost\",\"ring\":%u,\"count\":%llu}\n", ring,
               (unsigned long long)n);
    else
        printf("lost %llu events of loop %u: coscope fell behind and the "
               "process overwrote them\n",
               (unsigned long long)n, ring);
}

/* ---- following ---------------------------------------------------------- */

/* Reads every ring once; returns events seen (or lost), or -1 on error. */
static long drain(struct watch *w)
{
    long seen = 0;
    w->names_fresh = 0;
    for (uint32_t r = 0; r < w->rings; r++) {
        for (;;) {
            size_t n = 0;
            uint64_t lost = 0;
            int err =
                cs_trace_read(w->t, r, &w->cursor[r], w->ev, BATCH, &n, &lost);
            if (err != 0) {
                cli_error("cannot read the events of process %d: %s (%s)",
                          w->pid, cli_trace_strerror(err), cli_trace_detail());
                return -1;
            }
            if (lost > 0) {
                w->lost[r] += lost;
                print_lost(w, r, lost);
                w->wait[r].valid = 0;
            }
            for (size_t i = 0; i < n; i++) {
                const cs_trace_event *e = &w->ev[i];
                /* a task's name follows its creation: one line for both
                 * ("created at ...", under its name), not a "named" line
                 * after every "created" */
                int named_next = i + 1 < n && e->type == CS_EV_TASK_CREATED &&
                                 w->ev[i + 1].type == CS_EV_TASK_NAME &&
                                 w->ev[i + 1].task_id == e->task_id;
                if (named_next && !w->json) {
                    name_put(w, e->task_id, w->ev[i + 1].arg);
                    print_event(w, e);
                    i++;
                    continue;
                }
                print_event(w, e);
            }
            seen += (long)(n + lost);
            if (n < BATCH)
                break;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        return -2;
    return seen;
}

static int follow(struct watch *w)
{
    char cmd[256];
    cli_sanitize(cli_proc_cmdline(w->pid, cmd, sizeof cmd));
    fprintf(stderr,
            "coscope: watching process %d ('%s'); press Ctrl-C to "
            "stop\n",
            w->pid, cmd);
    for (;;) {
        long seen = drain(w);
        if (seen == -2)
            return CLI_OK; /* stdout closed (a pager quit) */
        if (seen < 0)
            return CLI_ERROR;
        if (cli_stop_requested)
            return CLI_OK;
        if (seen > 0)
            continue;
        if (cs_trace_stale(w->t) != 0) {
            if (drain(w) == -1) /* what it wrote before exiting */
                return CLI_ERROR;
            if (w->json)
                printf("{\"type\":\"exited\",\"pid\":%d}\n", w->pid);
            fprintf(stderr, "coscope: process %d exited\n", w->pid);
            return CLI_OK;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL); /* returns early on Ctrl-C */
    }
}

static int parse_args(struct watch *w, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"all", no_argument, NULL, 'a'},
        {"iterations", no_argument, NULL, 'i'},
        CLI_OPTS_END,
    };
    int c;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "f:aih", opts)) > 0) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "json") == 0)
                w->json = 1;
            else if (strcmp(optarg, "text") != 0)
                return cli_error("watch: unknown format '%s' (text or json)",
                                 optarg);
            break;
        case 'a':
            w->all = 1;
            break;
        case 'i':
            w->iterations = 1;
            break;
        }
    }
    if (c < 0)
        return c; /* CLI_HELP, or -CLI_ERROR */
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    w->pid = s.pid;
    w->t = s.t;
    return CLI_OK;
}

static int watch_init(struct watch *w)
{
    cs_trace_info info;
    struct timespec rt, mono;
    cs_trace_info_get(w->t, &info);
    w->rings = info.ring_count;
    w->cursor = calloc(w->rings + 1, sizeof *w->cursor);
    w->lost = calloc(w->rings + 1, sizeof *w->lost);
    w->wait = calloc(w->rings + 1, sizeof *w->wait);
    if (w->cursor == NULL || w->lost == NULL || w->wait == NULL)
        return cli_error("out of memory");
    for (uint32_t r = 0; r < w->rings && !w->all; r++) {
        cs_trace_ring ring;
        if (cs_trace_ring_get(w->t, r, &ring) == 0)
            w->cursor[r] = ring.head;
    }
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    w->wall_minus_mono =
        ((uint64_t)rt.tv_sec - (uint64_t)mono.tv_sec) * 1000000000u +
        (uint64_t)rt.tv_nsec - (uint64_t)mono.tv_nsec;
    names_refresh(w);
    return CLI_OK;
}

int cmd_watch(int argc, char **argv)
{
    struct watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return cli_error("out of memory");
    int rc = parse_args(w, argc, argv);
    if (rc < 0)
        rc = cli_getopt_status(rc);
    else if (rc == CLI_OK && (rc = watch_init(w)) == CLI_OK)
        rc = follow(w);
    cli_symbols_close(w->sym);
    cs_trace_close(w->t);
    free(w->cursor);
    free(w->lost);
    free(w->wait);
    cli_idmap_release(&w->names);
    free(w);
    return rc;
}
