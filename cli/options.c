/*
 * options.c - what every command does the same way, after git's
 * parse-options and RUN_SETUP: options through getopt_long with -h/--help
 * answered from the command's usage and a bad flag refused in one form;
 * then the set-up its entry in the command table (main.c) asks for: the
 * operands it takes (none, a process id whose segment is opened, a trace
 * file, '-- <command>') and catching Ctrl-C for a command that runs until
 * stopped.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts)
{
    opterr = 0;
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == -1)
        return 0;
    if (c == 'h') {
        const struct cli_command *cmd = cli_command_find(argv[0]);
        if (cmd != NULL)
            fputs(cmd->usage, stdout);
        return CLI_HELP;
    }
    if (c == '?' || c == ':') {
        cli_bad_option(argv[0], argv, optind, optopt);
        return -CLI_ERROR;
    }
    return c;
}

int cli_getopt_status(int c)
{
    return c == CLI_HELP ? CLI_OK : CLI_ERROR;
}

/* The operands the command's flags say it takes. */
static int operands(const char *name, unsigned flags, int argc, char **argv,
                    struct cli_setup *s)
{
    const char *what = flags & CLI_ARG_PID ? "process id" : "trace file";
    if (flags & CLI_ARG_OWN)
        return CLI_OK;
    if (flags & CLI_ARG_COMMAND)
        return cli_need_command(name, argc, argv, optind);
    if ((flags & (CLI_ARG_PID | CLI_ARG_FILE)) && optind >= argc)
        return cli_error("%s: missing %s (see 'coscope help %s')", name, what,
                         name);
    int first = optind + ((flags & (CLI_ARG_PID | CLI_ARG_FILE)) != 0);
    if (first < argc)
        return cli_error("%s: unexpected argument '%s' (see 'coscope help "
                         "%s')",
                         name, argv[first], name);
    if (flags & CLI_ARG_FILE)
        s->file = argv[optind];
    if ((flags & CLI_ARG_PID) &&
        cli_parse_pid(argv[optind], &s->pid) != CLI_OK)
        return CLI_ERROR;
    return CLI_OK;
}

int cli_setup(int argc, char **argv, struct cli_setup *s)
{
    const struct cli_command *cmd = cli_command_find(argv[0]);
    memset(s, 0, sizeof *s);
    s->args = argv + optind;
    if (cmd == NULL)
        return CLI_OK;
    if (operands(cmd->name, cmd->flags, argc, argv, s) != CLI_OK)
        return CLI_ERROR;
    if ((cmd->flags & CLI_ARG_PID) && cli_open_pid(s->pid, &s->t) != CLI_OK)
        return CLI_ERROR;
    if (cmd->flags & CLI_RUN_UNTIL_STOP)
        cli_catch_stop();
    return CLI_OK;
}

int cli_preload_lib(const char *cmd, int preload, const char **lib)
{
    *lib = NULL;
    if (preload && (*lib = cli_preload_path()) == NULL)
        return cli_error("%s: cannot find libcoscope-preload.so (set "
                         "COSCOPE_PRELOAD, or use --no-preload)",
                         cmd);
    return CLI_OK;
}
