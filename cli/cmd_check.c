/*
 * cmd_check.c - `coscope check [options] -- CMD [ARGS]`: the CI gate.
 *
 * Runs the command with COSCOPE_REPORT_DIR set to a fresh temporary
 * directory (and the interposer preloaded, as `run` does); every coscope
 * process it starts, children included, appends each of its agent's
 * reports there as one JSON line (agent/report.c).  Once the command has
 * exited the files are read - as hostile input: bounded lines, malformed
 * ones skipped with a warning - suppressions applied, and the reports
 * printed as text, JSON, JUnit XML or SARIF 2.1.0.  Each agent also says
 * hello (DIR/<pid>.agent: on or off, interposer reached or not), so that
 * check never passes what it could not see.  Exit 1 if a report of a
 * failing class remains, else 3 if something was not watched (unless
 * --allow-untraced), else the command's own status.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

const char cmd_check_usage[] =
    "usage: coscope check [--fail-on <classes>] [--format text|json|junit|"
    "sarif]\n"
    "                     [-o <file>] [--suppress <file>] [--no-preload] "
    "[--allow-untraced]\n"
    "                     -- <command> [<args>]\n"
    "\n"
    "Runs a command (a test binary, ctest, a script: child processes are\n"
    "followed) with the agent reporting into a temporary directory, then\n"
    "prints every report of every coscope process it started, with its\n"
    "stack.  Exit status 1 if any report of a failing class occurred; else\n"
    "3 if check could not watch everything: the command started no coscope\n"
    "process, or one ran without its agent (COSCOPE_REPORT=off) or out of\n"
    "the interposer's reach (a static executable); else the command's own\n"
    "(128 + the signal if it was killed); 2 on bad input.\n"
    "\n"
    "    --fail-on CLASSES  comma list of the classes that fail the check\n"
    "                       (default all): never-awaited, unretrieved (or\n"
    "                       exception), pending, blocking, deadlock, crash,\n"
    "                       slow\n"
    "    --format FORMAT    text (default), json, junit or sarif (2.1.0);\n"
    "                       on stdout, the command's own stdout then goes\n"
    "                       to stderr\n"
    "    -o, --output FILE  write the reports there instead of stdout\n"
    "    --suppress FILE    drop reports: lines 'class:function' ('*' for\n"
    "                       any class; function may use * and ? wildcards)\n"
    "                       match a report if any frame is that function;\n"
    "                       '#' starts a comment\n"
    "    --no-preload       do not preload libcoscope-preload.so (blocking\n"
    "                       calls are then not looked for)\n"
    "    --allow-untraced   a command that runs no coscope process, or not\n"
    "                       all of it watched, is no failure (still said)\n"
    "    -h, --help         show this help\n";

/* Names the first CHECK_SEEN_SHOWN of n processes (fmt: their pid and
 * executable), then counts the rest. */
static void say_procs(const char *how, struct check_note *v, size_t n,
                      const char *fmt, const char *rest)
{
    for (size_t i = 0; i < n && i < CHECK_SEEN_SHOWN; i++) {
        fprintf(stderr, "coscope: %scheck: ", how);
        fprintf(stderr, fmt, v[i].pid, cli_sanitize(v[i].exe));
        fputc('\n', stderr);
    }
    if (n > CHECK_SEEN_SHOWN)
        fprintf(stderr, "coscope: %scheck: and %zu more processes %s\n", how,
                n - CHECK_SEEN_SHOWN, rest);
}

/* Says on stderr what check could not see; true if that was anything. */
static int say_unseen(struct check_seen *sn, int preload, int allowed)
{
    const char *how = allowed ? "warning: " : "";
    if (sn->procs == 0) {
        fprintf(stderr,
                "coscope: %scheck: the command started no coscope "
                "process: nothing was checked (--allow-untraced if "
                "that is expected)\n",
                how);
        return 1;
    }
    say_procs(how, sn->off, sn->no_agent,
              "process %ld ('%s') ran without its agent (COSCOPE_REPORT=off): "
              "its bugs were not looked for",
              "without their agent");
    if (!preload)
        return sn->no_agent > 0; /* --no-preload: the user chose so */
    say_procs(how, sn->bare, sn->no_preload,
              "the interposer did not reach process %ld ('%s'; a static "
              "executable?): its blocking calls were not looked for",
              "the interposer did not reach");
    return sn->no_agent > 0 || sn->no_preload > 0;
}

/* ---- the command -------------------------------------------------------- */

enum { FMT_TEXT, FMT_JSON, FMT_JUNIT, FMT_SARIF };

static int parse_fail_on(const char *v, unsigned *mask)
{
    char buf[256], *save = NULL;
    if (strlen(v) >= sizeof buf)
        return cli_error("check: --fail-on list too long");
    snprintf(buf, sizeof buf, "%s", v);
    *mask = 0;
    for (char *w = strtok_r(buf, ",", &save); w;
         w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "all") == 0) {
            *mask = CS_REPORT_ALL;
            continue;
        }
        int k = cs_trace_report_class(w);
        if (k < 0)
            return cli_error("check: unknown report class '%s' in --fail-on "
                             "(see 'coscope help check')",
                             cli_sanitize(w));
        *mask |= CS_REPORT_BIT(k);
    }
    return CLI_OK;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"fail-on", required_argument, NULL, 'F'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"suppress", required_argument, NULL, 's'},
        {"preload", no_argument, NULL, 'p'},
        {"no-preload", no_argument, NULL, 'n'},
        {"allow-untraced", no_argument, NULL, 'u'},
        CLI_OPTS_END,
    };
    unsigned fail_mask = CS_REPORT_ALL;
    int c, fmt = FMT_TEXT, preload = 1, allow_untraced = 0;
    const char *out_path = NULL, *supp_path = NULL, *lib;
    struct cli_setup set;
    while ((c = cli_getopt(argc, argv, "+o:h", opts)) > 0) {
        switch (c) {
        case 'F':
            if (parse_fail_on(optarg, &fail_mask) != CLI_OK)
                return CLI_ERROR;
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0)
                fmt = FMT_TEXT;
            else if (strcmp(optarg, "json") == 0)
                fmt = FMT_JSON;
            else if (strcmp(optarg, "junit") == 0)
                fmt = FMT_JUNIT;
            else if (strcmp(optarg, "sarif") == 0)
                fmt = FMT_SARIF;
            else
                return cli_error("check: unknown format '%s' (text, json, "
                                 "junit or sarif)",
                                 cli_sanitize(optarg));
            break;
        case 'o':
            out_path = optarg;
            break;
        case 's':
            supp_path = optarg;
            break;
        case 'p':
            preload = 1;
            break;
        case 'n':
            preload = 0;
            break;
        case 'u':
            allow_untraced = 1;
            break;
        }
    }
    if (c < 0)
        return cli_getopt_status(c);
    if (cli_setup(argc, argv, &set) != CLI_OK)
        return CLI_ERROR;
    char **cmd = set.args;

    struct check_suppression *supp = NULL;
    size_t nsupp = 0;
    if (supp_path != NULL &&
        check_load_suppressions(supp_path, &supp, &nsupp) != CLI_OK)
        return CLI_ERROR;
    if (cli_preload_lib("check", preload, &lib) != CLI_OK) {
        free(supp);
        return CLI_ERROR;
    }
    /* the output file is opened first: a bad path costs no run */
    FILE *out = stdout;
    if (out_path != NULL && (out = fopen(out_path, "we")) == NULL) {
        free(supp);
        return cli_error("check: cannot write '%s': %s", out_path,
                         cli_strerror(errno));
    }

    char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/coscope-check.XXXXXX",
             tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        int e = errno;
        free(supp);
        if (out != stdout)
            fclose(out);
        return cli_error("check: cannot create a temporary directory: %s",
                         cli_strerror(e));
    }

    int status = 0;
    time_t started = time(NULL);
    uint64_t t0 = cli_now_ns();
    fflush(stdout);
    /* a document on stdout must not be mixed with the command's output */
    int out_to_err = out == stdout && fmt != FMT_TEXT;
    if (cli_spawn_wait("check", cmd, lib, dir, out_to_err, &status) !=
        CLI_OK) {
        check_remove_dir(dir);
        free(supp);
        if (out != stdout) {
            fclose(out);
            unlink(out_path);
        }
        return CLI_ERROR;
    }
    int cmd_status = cli_shell_status(status);
    struct check_run run = {cmd, cmd_status, started,
                            (double)(cli_now_ns() - t0) / 1e9};

    struct check_reports rs = {0};
    struct check_seen sn = {0};
    check_collect(dir, &rs, &sn);
    check_remove_dir(dir);
    if (rs.dropped)
        cli_warn("check: %zu reports past the first %d were left out",
                 rs.dropped, CHECK_MAX_REPORTS);

    size_t failing = check_apply(&rs, supp, nsupp, fail_mask);
    free(supp);

    switch (fmt) {
    case FMT_TEXT:
        check_out_text(out, &rs);
        break;
    case FMT_JSON:
        check_out_json(out, &rs, cmd, cmd_status, failing);
        break;
    case FMT_JUNIT:
        check_out_junit(out, &rs, failing, &run);
        break;
    default:
        check_out_sarif(out, &rs);
        break;
    }
    free(rs.v);
    if (out != stdout) {
        int bad = ferror(out);
        if (fclose(out) != 0 || bad)
            return cli_error("check: cannot write '%s': %s", out_path,
                             cli_strerror(errno));
    }
    fprintf(stderr,
            "coscope: check: %zu report%s (%zu failing, %zu suppressed); "
            "'%s' exited with status %d\n",
            rs.n, rs.n == 1 ? "" : "s", failing, rs.suppressed, cmd[0],
            cmd_status);
    int unseen = say_unseen(&sn, preload, allow_untraced);
    if (failing > 0)
        return CLI_FINDINGS;
    return unseen && !allow_untraced ? CLI_UNTRACED : cmd_status;
}
