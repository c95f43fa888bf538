/*
 * cmd_help.c - `coscope help [COMMAND]`: the overview, or one command's
 * usage (the same text as `coscope COMMAND --help`).
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

const char cmd_help_usage[] =
    "usage: coscope help [<command>]\n"
    "\n"
    "Shows the list of commands, or the options of one command.\n";

int cmd_help(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_OPTS_END,
    };
    int c = cli_getopt(argc, argv, "h", opts);
    if (c != 0)
        return cli_getopt_status(c);
    if (optind >= argc) {
        cli_main_usage(stdout);
        return CLI_OK;
    }
    if (optind + 1 < argc)
        return cli_error("help: too many arguments (see 'coscope help "
                         "help')");
    const struct cli_command *cmd = cli_command_find(argv[optind]);
    if (cmd == NULL)
        return cli_error("'%s' is not a coscope command (see 'coscope "
                         "--help')",
                         argv[optind]);
    fputs(cmd->usage, stdout);
    return CLI_OK;
}
