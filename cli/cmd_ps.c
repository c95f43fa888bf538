/*
 * cmd_ps.c - `coscope ps [--clean]`: every coscope segment in /dev/shm, one
 * line each, with what its header and task table say; segments whose
 * process is gone (or whose pid now names another process) are marked
 * stale and, with --clean, removed (cs_trace_clean_pid re-checks first).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char cmd_ps_usage[] =
    "usage: coscope ps [--clean]\n"
    "\n"
    "Lists the processes that have a coscope segment (/dev/shm/coscope.PID):\n"
    "pid, event loops (rings in use), live tasks, warnings so far, trace\n"
    "records per second since it started and the tracing overhead that\n"
    "makes (about 12 ns of CPU per record), status, command.  Status is 'live', 'stale (exited)' or 'stale (pid reused)'\n"
    "for a segment whose process is gone, 'other user (uid N)' for a\n"
    "segment coscope may not read, 'corrupt' or 'starting'.\n"
    "\n"
    "    --clean     remove stale segments (their processes are gone)\n"
    "    -h, --help  show this help\n";

/* What one segment shows. */
struct ps_row {
    int pid;
    int readable;                  /* opened and validated */
    char status[48];               /* "live", "stale (exited)"... */
    int stale;                     /* 1: its process is gone */
    uint32_t loops;                /* rings in use */
    uint64_t tasks;                /* live task slots */
    uint64_t warnings;             /* warning records so far */
    double events_s;               /* records per second since it started */
    char command[CS_EXE_PATH_MAX]; /* /proc/PID/cmdline, or the exe path */
};

/* Seconds since the process started (start time: clock ticks after boot),
 * or 0 if unknown. */
static double age_s(uint64_t start_time)
{
    double up = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (f == NULL)
        return 0;
    int ok = fscanf(f, "%lf", &up) == 1;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    double started = hz > 0 ? (double)start_time / (double)hz : up;
    return ok && up > started ? up - started : 0;
}

static void row_fill_open(struct ps_row *r, cs_trace *t)
{
    cs_trace_info info;
    cs_trace_task task;
    uint32_t iter = 0;
    cs_trace_info_get(t, &info);
    uint64_t records = 0;
    for (uint32_t i = 0; i < info.ring_count; i++) {
        cs_trace_ring ring;
        if (cs_trace_ring_get(t, i, &ring) != 0)
            continue;
        records += ring.head;
        if (ring.state == CS_RING_ACTIVE)
            r->loops++;
    }
    double age = age_s(info.start_time);
    r->events_s = age > 0 ? (double)records / age : 0;
    while (cs_trace_task_next(t, &iter, &task) == 1)
        r->tasks++;
    r->warnings = info.warnings;
    r->readable = 1;
    int stale = cs_trace_stale(t);
    uint64_t st;
    if (stale == 1) {
        r->stale = 1;
        snprintf(r->status, sizeof r->status, "%s",
                 cs_trace_pid_start_time(r->pid, &st) == -ESRCH
                     ? "stale (exited)"
                     : "stale (pid reused)");
    } else {
        snprintf(r->status, sizeof r->status, "live");
    }
    if (!r->stale)
        cli_proc_cmdline(r->pid, r->command, sizeof r->command);
    if (r->command[0] == '\0')
        snprintf(r->command, sizeof r->command, "%s", info.exe_path);
    cli_sanitize(r->command);
}

/* Fills r from the segment at path; 0, or -ENOENT if it went away
 * meanwhile (its process just exited and removed it). */
static int row_fill(struct ps_row *r, const char *path)
{
    cs_trace *t = NULL;
    struct stat st;
    uint64_t start;
    int err = cs_trace_open_pid(r->pid, &t);
    if (err == 0) {
        row_fill_open(r, t);
        cs_trace_close(t);
        return 0;
    }
    if (err == -ENOENT)
        return err;
    if (cs_trace_pid_start_time(r->pid, &start) == -ESRCH)
        r->stale = 1;
    cli_sanitize(cli_proc_cmdline(r->pid, r->command, sizeof r->command));
    if (err == -EPERM && stat(path, &st) == 0)
        snprintf(r->status, sizeof r->status, "planted (uid %u)",
                 (unsigned)st.st_uid);
    else if (err == -EACCES && stat(path, &st) == 0 && st.st_uid != geteuid())
        snprintf(r->status, sizeof r->status, "other user (uid %u)",
                 (unsigned)st.st_uid);
    else if (err == -EAGAIN)
        snprintf(r->status, sizeof r->status, "starting");
    else if (err == CS_TRACE_ECORRUPT || err == CS_TRACE_EVERSION)
        snprintf(r->status, sizeof r->status, "%s",
                 err == CS_TRACE_EVERSION ? "unsupported version" : "corrupt");
    else if (err == -EINVAL || err == -ELOOP)
        snprintf(r->status, sizeof r->status, "%s",
                 err == -ELOOP ? "symbolic link" : "not a regular file");
    else
        snprintf(r->status, sizeof r->status, "unreadable: %s",
                 cli_trace_strerror(err));
    if (r->stale) {
        size_t n = strlen(r->status);
        snprintf(r->status + n, sizeof r->status - n, ", stale");
    }
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    const struct ps_row *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Collects one row per segment into *rows; CLI_ERROR if /dev/shm cannot
 * be listed. */
static int collect(struct ps_row **rows, size_t *n)
{
    DIR *d = opendir(CS_SEG_DIR);
    size_t cap = 0;
    *rows = NULL;
    *n = 0;
    if (d == NULL)
        return cli_error("cannot list '%s': %s", CS_SEG_DIR,
                         cli_strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = cli_segment_pid(e->d_name);
        if (pid <= 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            struct ps_row *g = realloc(*rows, cap * sizeof **rows);
            if (g == NULL) {
                closedir(d);
                return cli_error("out of memory");
            }
            *rows = g;
        }
        struct ps_row *r = &(*rows)[(*n)++];
        char path[300];
        memset(r, 0, sizeof *r);
        r->pid = pid;
        snprintf(path, sizeof path, "%s/%s", CS_SEG_DIR, e->d_name);
        if (row_fill(r, path) == -ENOENT)
            (*n)--; /* gone between readdir and open */
    }
    closedir(d);
    if (*n > 1)
        qsort(*rows, *n, sizeof **rows, row_cmp);
    return CLI_OK;
}

static void print_rows(const struct ps_row *rows, size_t n)
{
    const char *b = cli_sgr("\033[1m"), *off = cli_sgr("\033[0m");
    /* STATUS as wide as its longest entry: COMMAND stays one column
     * whatever the status says ("unreadable: permission denied") */
    int sw = 18;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(rows[i].status);
        sw = l > sw ? l : sw;
    }
    printf("%s%7s %5s %7s %8s %8s %8s  %-*s %s%s\n", b, "PID", "LOOPS",
           "TASKS", "WARNINGS", "EVENTS/S", "OVERHEAD", sw, "STATUS",
           "COMMAND", off);
    for (size_t i = 0; i < n; i++) {
        const struct ps_row *r = &rows[i];
        const char *c = r->stale       ? cli_sgr("\033[2m")
                        : !r->readable ? cli_sgr("\033[33m")
                                       : "";
        char ev[32], ov[32];
        if (r->readable && !r->stale) {
            snprintf(ev, sizeof ev, "%.0f", r->events_s);
            /* about 12 ns per record (bench: coscope_bench_emit) */
            snprintf(ov, sizeof ov, "%.2f%%", r->events_s * 12e-9 * 100);
        } else {
            snprintf(ev, sizeof ev, "-");
            snprintf(ov, sizeof ov, "-");
        }
        if (r->readable)
            printf("%s%7d %5u %7llu %8llu %8s %8s  %-*s %s%s\n", c, r->pid,
                   r->loops, (unsigned long long)r->tasks,
                   (unsigned long long)r->warnings, ev, ov, sw, r->status,
                   r->command, c[0] ? off : "");
        else
            printf("%s%7d %5s %7s %8s %8s %8s  %-*s %s%s\n", c, r->pid, "-",
                   "-", "-", "-", "-", sw, r->status, r->command,
                   c[0] ? off : "");
    }
}

int cmd_ps(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clean", no_argument, NULL, 'c'},
        CLI_OPTS_END,
    };
    int clean = 0, c;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "h", opts)) > 0)
        clean = 1; /* --clean */
    if (c < 0)
        return cli_getopt_status(c);
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    struct ps_row *rows;
    size_t n;
    if (collect(&rows, &n) != CLI_OK)
        return CLI_ERROR;
    int rc = CLI_OK;
    if (clean) {
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            int r = rows[i].stale ? cs_trace_clean_pid(rows[i].pid) : 0;
            if (r == 1) {
                printf("removed %s/%s%d (%s)\n", CS_SEG_DIR, CS_SEG_PREFIX,
                       rows[i].pid, rows[i].status);
                continue;
            }
            if (r < 0) {
                cli_error("cannot remove '%s/%s%d': %s", CS_SEG_DIR,
                          CS_SEG_PREFIX, rows[i].pid, cli_trace_strerror(r));
                rc = CLI_ERROR;
            }
            rows[kept++] = rows[i];
        }
        n = kept;
    }
    print_rows(rows, n);
    free(rows);
    return rc;
}
