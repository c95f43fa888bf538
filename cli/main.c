/*
 * main.c - the `coscope` command: global options, the command table and
 * dispatch, after git's git.c.  Shared setup runs here once; so does the
 * check that everything written to stdout reached it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef COSCOPE_VERSION
#define COSCOPE_VERSION "unknown"
#endif

/* Sorted by name. */
/* Sorted by name.  The flags are the shared set-up each command gets
 * (options.c).  view catches Ctrl-C itself, once its file is loaded: an
 * early Ctrl-C stops a long load. */
const struct cli_command cli_commands[] = {
    {"check", cmd_check, cmd_check_usage,
     "run a command, fail on the agent's reports (CI)", CLI_ARG_COMMAND},
    {"export", cmd_export, cmd_export_usage,
     "write a trace file as Chrome JSON, pprof or Perfetto", CLI_ARG_FILE},
    {"help", cmd_help, cmd_help_usage, "show help for coscope or a command",
     CLI_ARG_OWN},
    {"metrics", cmd_metrics, cmd_metrics_usage,
     "serve every coscope process's metrics to Prometheus",
     CLI_ARG_NONE | CLI_RUN_UNTIL_STOP},
    {"ps", cmd_ps, cmd_ps_usage, "list processes with a coscope segment",
     CLI_ARG_NONE},
    {"record", cmd_record, cmd_record_usage,
     "write a trace file of a process or a command",
     CLI_ARG_OWN | CLI_RUN_UNTIL_STOP},
    {"report", cmd_report, cmd_report_usage, "summarise a trace file",
     CLI_ARG_FILE},
    {"run", cmd_run, cmd_run_usage,
     "run a command with the agent's reports on", CLI_ARG_COMMAND},
    {"tasks", cmd_tasks, cmd_tasks_usage,
     "dump every task of a process: state, wait, stack", CLI_ARG_PID},
    {"top", cmd_top, cmd_top_usage, "a live view of a process's tasks",
     CLI_ARG_PID | CLI_RUN_UNTIL_STOP},
    {"view", cmd_view, cmd_view_usage,
     "open a trace file in the web timeline viewer", CLI_ARG_FILE},
    {"watch", cmd_watch, cmd_watch_usage, "stream a process's events live",
     CLI_ARG_PID | CLI_RUN_UNTIL_STOP},
};
const size_t cli_command_count = sizeof cli_commands / sizeof cli_commands[0];

const struct cli_command *cli_command_find(const char *name)
{
    for (size_t i = 0; i < cli_command_count; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    return NULL;
}

void cli_main_usage(FILE *f)
{
    fprintf(f, "usage: coscope [--version] [--help] [--debug] <command> "
               "[<args>]\n"
               "\n"
               "Look inside running coscope programs without stopping them.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < cli_command_count; i++)
        fprintf(f, "   %-8s %s\n", cli_commands[i].name,
                cli_commands[i].summary);
    fprintf(f, "\n"
               "Exit status: 0 success, 1 findings (a deadlock), 2 usage or "
               "input error.\n"
               "See 'coscope help <command>' for one command's options.\n");
}

/* Runs the command, then makes sure its output was written. */
static int run_command(const struct cli_command *c, int argc, char **argv)
{
    int rc = c->fn(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        if (e == EPIPE)
            return rc;
        cli_error("cannot write to standard output: %s", cli_strerror(e));
        return CLI_ERROR;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_error("no command given (see 'coscope --help')");
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        cli_main_usage(stdout);
        return fflush(stdout) == 0 ? CLI_OK : CLI_ERROR;
    }
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
        printf("coscope %s\n", COSCOPE_VERSION);
        return fflush(stdout) == 0 ? CLI_OK : CLI_ERROR;
    }
    if (strcmp(arg, "--debug") == 0 && argc > 2) {
        cli_debug = 1; /* error details say where libtrace found it */
        argv++;
        argc--;
        arg = argv[1];
    }
    if (arg[0] == '-')
        return cli_error("unknown option '%s' (see 'coscope --help')", arg);
    const struct cli_command *c = cli_command_find(arg);
    if (c == NULL)
        return cli_error("'%s' is not a coscope command (see 'coscope "
                         "--help')",
                         arg);
    return run_command(c, argc - 1, argv + 1);
}
