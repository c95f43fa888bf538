/*
 * fuzz_check.c - `coscope check`'s inputs: the agent's report lines (one
 * JSON object per line, as DIR/<pid>.jsonl) and a suppression file.  The
 * input is the report file, then a NUL byte, then the suppression file.
 * Both are parsed as cmd_check does, the suppressions applied, and the
 * result written in every output format (to /dev/null).
 *
 * It calls check's own parts (cli/check.h), as cmd_check does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fz.h"

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

    struct check_reports rs = {0};
    struct check_seen sn = {0};
    check_collect(dir, &rs, &sn);
    struct check_suppression *supp = NULL;
    size_t nsupp = 0;
    if (check_load_suppressions(spath, &supp, &nsupp) != CLI_OK)
        nsupp = 0;
    size_t failing =
        check_apply(&rs, supp, nsupp,
                    CS_REPORT_ALL & ~CS_REPORT_BIT(CS_WARN_SLOW_STEP));
    free(supp);
    char *cmd[] = {"fuzz", "arg", NULL};
    struct check_run run = {cmd, 1, 0, 0.5};
    check_out_text(sink, &rs);
    check_out_json(sink, &rs, cmd, 1, failing);
    check_out_junit(sink, &rs, failing, &run);
    check_out_sarif(sink, &rs);
    fflush(sink);
    free(rs.v);
    unlink(rpath);
    unlink(spath);
    return 0;
}
