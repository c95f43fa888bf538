/*
 * cmd_run.c - `coscope run [--preload|--no-preload] -- CMD [ARGS]`: runs a
 * command with the agent's interposer (libcoscope-preload.so) preloaded, so
 * that blocking calls are reported too.  The agent in the program writes
 * its reports to the program's stderr as they happen; coscope only starts
 * and waits.  The exit status is the command's (128 + signal if killed).
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

const char cmd_run_usage[] =
    "usage: coscope run [--preload | --no-preload] -- <command> [<args>]\n"
    "\n"
    "Runs a command with the agent's interposer, libcoscope-preload.so, in\n"
    "LD_PRELOAD, so that blocking calls in tasks are reported as well as\n"
    "the rest (see docs/agent.md).  Reports appear on the command's stderr\n"
    "as they happen.  The exit status is the command's (128 + the signal\n"
    "if it was killed); 2 if it cannot be run.\n"
    "\n"
    "    --preload      preload the interposer (default; an error if it is\n"
    "                   not found)\n"
    "    --no-preload   do not: only the reports of libcoscope itself\n"
    "    -h, --help     show this help\n"
    "\n"
    "The interposer is $COSCOPE_PRELOAD if set, else the one installed next\n"
    "to coscope, else the build tree's.\n";

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"preload", no_argument, NULL, 'p'},
        {"no-preload", no_argument, NULL, 'n'},
        CLI_OPTS_END,
    };
    int c, preload = 1;
    struct cli_setup s;
    const char *lib;
    while ((c = cli_getopt(argc, argv, "+h", opts)) > 0)
        preload = c == 'p'; /* --preload, --no-preload */
    if (c < 0)
        return cli_getopt_status(c);
    if (cli_setup(argc, argv, &s) != CLI_OK ||
        cli_preload_lib("run", preload, &lib) != CLI_OK)
        return CLI_ERROR;
    int status = 0;
    fflush(stdout);
    if (cli_spawn_wait("run", s.args, lib, NULL, 0, &status) != CLI_OK)
        return CLI_ERROR;
    return cli_shell_status(status);
}
