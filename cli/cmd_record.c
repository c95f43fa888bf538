/*
 * cmd_record.c - `coscope record (PID | -- CMD...) -o FILE [--duration S]`:
 * a trace file of what a process does.
 *
 * A running process is recorded from the outside (cs_trace_rec_*): every
 * 20 ms the new strings, stacks and ring records are appended, starting
 * with what is still in the rings; records the process overwrote before
 * we read them are counted as lost in the file.  It stops after S seconds,
 * on Ctrl-C, or when the process exits.  A command is started with
 * COSCOPE_RECORD=FILE so that its own recorder writes the file from its
 * first event to its exit (no attach race); --duration then interrupts it
 * (SIGINT) after S seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cmd_record_usage[] =
    "usage: coscope record <pid> -o <file> [--duration <seconds>]\n"
    "   or: coscope record -o <file> [--duration <seconds>] [--no-preload]\n"
    "                      -- <command> [<args>]\n"
    "\n"
    "Writes a trace file (read it with 'coscope report').  A running\n"
    "process is recorded from the outside, from the events still in its\n"
    "rings until it exits, Ctrl-C, or the duration ends; events it\n"
    "overwrote before coscope read them are counted as lost.  A command is\n"
    "run with COSCOPE_RECORD=<file> and the interposer preloaded (as\n"
    "'coscope run' does, so blocking calls are in the trace) and records\n"
    "itself from start to exit; --duration interrupts it (SIGINT) after\n"
    "that many seconds.  The file is checked before the command starts.\n"
    "\n"
    "    -o, --output FILE       the trace file (created 0600, replaced)\n"
    "    -d, --duration SECONDS  stop after this long\n"
    "    --no-preload            a command: without the interposer\n"
    "    -h, --help              show this help\n";


static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL); /* returns early on a signal */
}

static int record_pid(int pid, const char *path, double duration)
{
    cs_trace *t;
    cs_trace_rec *rec;
    if (cli_open_pid(pid, &t) != CLI_OK)
        return CLI_ERROR;
    int err = cs_trace_rec_start(t, path, &rec);
    if (err != 0) {
        cs_trace_close(t);
        return cli_error("cannot write '%s': %s", path,
                         cli_trace_strerror(err));
    }
    cli_test_point("recording");
    uint64_t start = cli_now_ns(), until = UINT64_MAX;
    if (duration > 0)
        until = start + (uint64_t)(duration * 1e9);
    const char *why = "interrupted";
    while (err == 0) {
        err = cs_trace_rec_poll(rec);
        if (err != 0 || cli_stop_requested)
            break;
        if (cli_now_ns() >= until) {
            why = "duration reached";
            break;
        }
        if (cs_trace_stale(t) != 0) {
            why = "process exited";
            break;
        }
        nap_ms(20);
    }
    int fin = cs_trace_rec_finish(rec);
    cs_trace_close(t);
    if (err == 0)
        err = fin;
    if (err != 0)
        return cli_error("cannot record process %d into '%s': %s", pid, path,
                         cli_trace_strerror(err));
    char d[32];
    fprintf(stderr, "coscope: recorded process %d for %s into '%s' (%s)\n",
            pid, cli_fmt_duration(cli_now_ns() - start, d, sizeof d), path,
            why);
    return CLI_OK;
}

/* Waits for the child, interrupting it with SIGINT once the duration (if
 * any) has passed; polls because waitpid has no timeout. */
static int wait_timed(pid_t child, double duration, int *status)
{
    uint64_t until = duration > 0 ? cli_now_ns() + (uint64_t)(duration * 1e9)
                                  : UINT64_MAX;
    int sent = 0;
    for (;;) {
        pid_t r = waitpid(child, status, WNOHANG);
        if (r == child)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (!sent && cli_now_ns() >= until) {
            kill(child, SIGINT);
            sent = 1;
        }
        nap_ms(10);
    }
}

static int record_command(char **argv, const char *path, double duration,
                          const char *preload)
{
    struct stat st;
    if (cli_output_check(path) != CLI_OK)
        return CLI_ERROR;
    pid_t child = fork();
    if (child < 0)
        return cli_error("cannot start '%s': %s", argv[0],
                         cli_strerror(errno));
    if (child == 0) {
        cli_preload_setenv(preload); /* blocking calls, as `run` has them */
        setenv("COSCOPE_RECORD", path, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "coscope: cannot run '%s': %s\n", argv[0],
                cli_strerror(errno));
        _exit(127);
    }
    int status = 0, err = wait_timed(child, duration, &status);
    if (err != 0)
        return cli_error("cannot wait for '%s': %s", argv[0],
                         cli_strerror(-err));
    if (stat(path, &st) != 0)
        return WIFEXITED(status) && WEXITSTATUS(status) == 127
                   ? CLI_ERROR
                   : cli_error("'%s' wrote no trace to '%s' (is it a coscope "
                               "program? is tracing off?)",
                               argv[0], path);
    if (WIFEXITED(status))
        fprintf(stderr, "coscope: recorded '%s' into '%s' (exit status %d)\n",
                argv[0], path, WEXITSTATUS(status));
    else
        fprintf(stderr,
                "coscope: recorded '%s' into '%s' (killed by signal %d)\n",
                argv[0], path, WTERMSIG(status));
    return CLI_OK;
}

/* One option; CLI_ERROR on a bad one. */
static int record_option(int c, const char **path, double *duration,
                         int *preload)
{
    char *end;
    switch (c) {
    case 'p':
        *preload = 1;
        return CLI_OK;
    case 'n':
        *preload = 0;
        return CLI_OK;
    case 'o':
        *path = optarg;
        return CLI_OK;
    default: /* 'd' */
        *duration = strtod(optarg, &end);
        if (*end != '\0' || end == optarg || !(*duration > 0) ||
            *duration > 1e7)
            return cli_error("record: '%s' is not a duration in seconds",
                             optarg);
        return CLI_OK;
    }
}

int cmd_record(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"duration", required_argument, NULL, 'd'},
        {"preload", no_argument, NULL, 'p'},
        {"no-preload", no_argument, NULL, 'n'},
        CLI_OPTS_END,
    };
    const char *path = NULL, *pid_arg = NULL;
    double duration = 0;
    int c, pid, is_command = 0, preload = 1;
    struct cli_setup s;
    /* "+": stop at the first non-option (the pid, or "--" before a
     * command whose own options must be left alone), then go on after a
     * pid. */
    for (;;) {
        while ((c = cli_getopt(argc, argv, "+o:d:h", opts)) > 0)
            if (record_option(c, &path, &duration, &preload) != CLI_OK)
                return CLI_ERROR;
        if (c < 0)
            return cli_getopt_status(c);
        is_command = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
        if (is_command || optind >= argc || pid_arg != NULL)
            break;
        pid_arg = argv[optind++];
    }
    if (is_command && pid_arg != NULL)
        return cli_error("record: give a process id or '-- <command>', not "
                         "both");
    if (!is_command && optind < argc)
        return cli_error("record: unexpected argument '%s' (see 'coscope "
                         "help record')",
                         argv[optind]);
    if (pid_arg == NULL && (!is_command || optind >= argc))
        return cli_error("record: missing process id or '-- <command>' (see "
                         "'coscope help record')");
    if (path == NULL)
        return cli_error("record: missing '-o <file>'");
    if (cli_setup(argc, argv, &s) != CLI_OK) /* catches Ctrl-C */
        return CLI_ERROR;
    if (is_command) {
        const char *lib;
        if (cli_preload_lib("record", preload, &lib) != CLI_OK)
            return CLI_ERROR;
        return record_command(s.args, path, duration, lib);
    }
    if (cli_parse_pid(pid_arg, &pid) != CLI_OK)
        return CLI_ERROR;
    return record_pid(pid, path, duration);
}
