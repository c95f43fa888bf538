/*
 * fuzz_check.c - `coscope check`'s inputs: the agent's report lines (one
 * JSON object per line, as DIR/<pid>.jsonl) and a suppression file.  The
 * input is the report file, then a NUL byte, then the suppression file.
 * Both are parsed as cmd_check does, the suppressions applied, and the
 * result written in every output format (to /dev/null).
 *
 * cmd_check.c is included so that its static parsers are reached without
 * exporting them from the CLI.
 */
#include "cmd_check.c" /* cli/, an include directory of the harness */

#include "fz.h"

/* spawn.c's part: the harness runs no command. */
const char *cli_preload_path(void)
{
    return NULL;
}

int cli_spawn_wait(const char *cmd, char **argv, const char *preload,
                   const char *report_dir, int out_to_err, int *status)
{
    (void)cmd, (void)argv, (void)preload, (void)report_dir, (void)out_to_err;
    *status = 0;
    return CLI_ERROR;
}

int cli_shell_status(int status)
{
    return status;
}

static char dir[64];

static void rm_dir(void)
{
    rmdir(dir);
}

static void spit(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "we");
    if (f == NULL || fwrite(p, 1, n, f) != n) {
        perror(path);
        abort();
    }
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/dev/shm/coscope-fuzz-check.%d",
                 (int)getpid());
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            abort();
        atexit(rm_dir);
        sink = fopen("/dev/null", "we");
        stderr = sink; /* the CLI's warnings; sanitizers write to fd 2 */
    }
    const uint8_t *nul = memchr(data, '\0', size);
    size_t nrep = nul ? (size_t)(nul - data) : size;
    char rpath[128], spath[128];
    snprintf(rpath, sizeof rpath, "%s/1.jsonl", dir);
    snprintf(spath, sizeof spath, "%s.supp", dir);
    spit(rpath, data, nrep);
    spit(spath, nul ? nul + 1 : data, nul ? size - nrep - 1 : 0);

    struct reports rs = {0};
    struct seen sn = {0};
    collect(dir, &rs, &sn);
    struct suppression *supp = NULL;
    size_t nsupp = 0;
    if (load_suppressions(spath, &supp, &nsupp) != CLI_OK)
        nsupp = 0;
    size_t kept = 0, failing = 0;
    for (size_t i = 0; i < rs.n; i++) {
        if (suppressed(&rs.v[i], supp, nsupp)) {
            rs.suppressed++;
            continue;
        }
        rs.v[kept] = rs.v[i];
        rs.v[kept].failing = rs.v[kept].cls != CS_WARN_SLOW_STEP;
        failing += (size_t)rs.v[kept].failing;
        kept++;
    }
    rs.n = kept;
    free(supp);
    char *cmd[] = {"fuzz", "arg", NULL};
    struct run_info run = {cmd, 1, 0, 0.5};
    out_text(sink, &rs);
    out_json(sink, &rs, cmd, 1, failing);
    out_junit(sink, &rs, failing, &run);
    out_sarif(sink, &rs);
    fflush(sink);
    free(rs.v);
    unlink(rpath);
    unlink(spath);
    return 0;
}
