/*
 * cmd_help.c - `coscope help [COMMAND]`: the overview, or one command's
 * usage (the same text as `coscope COMMAND --help`).
 */
#include <string.h>

#include "cli.h"

const char cmd_help_usage[] =
    "usage: coscope help [<command>]\n"
    "\n"
    "Shows the list of commands, or the options of one command.\n";

int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        cli_main_usage(stdout);
        return CLI_OK;
    }
    if (argc > 2)
        return cli_error("help: too many arguments (see 'coscope help "
                         "help')");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cmd_help_usage, stdout);
        return CLI_OK;
    }
    if (argv[1][0] == '-')
        return cli_error("help: unknown option '%s' (see 'coscope help "
                         "help')",
                         argv[1]);
    const struct cli_command *c = cli_command_find(argv[1]);
    if (c == NULL)
        return cli_error("'%s' is not a coscope command (see 'coscope "
                         "--help')",
                         argv[1]);
    fputs(c->usage, stdout);
    return CLI_OK;
}
