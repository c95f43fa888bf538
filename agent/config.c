/*
 * config.c - the agent's configuration, from the environment only
 * (docs/agent.md):
 *
 *   COSCOPE_REPORT   off, all (default), or a comma list of classes:
 *                    never-awaited unretrieved pending blocking deadlock crash
 *                    slow (CS_REPORT_CLASS_MAP; "exception" is an older
 *                    spelling of unretrieved)
 *   COSCOPE_STRICT   1: abort after the first report (for tests)
 *   COSCOPE_SLOW_MS  slow-step threshold, default 100 (asyncio's)
 *   COSCOPE_ALLOW    a file of function names that may block, one a line
 *                    (# starts a comment), like blockbuster's can_block_in
 *   COSCOPE_REPORT_STDERR  off: reports only into COSCOPE_REPORT_DIR
 *                    (coscope check sets it: it prints them itself)
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static unsigned cs__ag_parse_reports(const char *v)
{
    unsigned bits = 0;
    char buf[256], *save = NULL;

    if (!v || !*v || strcmp(v, "all") == 0 || strcmp(v, "on") == 0)
        return CS_REPORT_ALL;
    if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
        return 0;
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *w = strtok_r(buf, ", ", &save); w;
         w = strtok_r(NULL, ", ", &save)) {
        int kind = cs_trace_report_class(w); /* "exception" too */
        if (kind >= 0)
            bits |= CS_REPORT_BIT(kind);
        else
            fprintf(stderr,
                    "coscope: unknown report class '%s' in "
                    "COSCOPE_REPORT\n",
                    w);
    }
    return bits;
}

static void cs__ag_load_allow(const char *path)
{
    char line[512];
    FILE *f = fopen(path, "re");

    if (!f) {
        fprintf(stderr, "coscope: cannot open '%s' (COSCOPE_ALLOW)\n", path);
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        char *s = line + strspn(line, " \t");
        s[strcspn(s, " \t\r\n#")] = '\0';
        if (!*s)
            continue;
        char **a =
            realloc(cs__ag_cfg.allow, (cs__ag_cfg.nallow + 1) * sizeof(*a));
        if (!a || !(a[cs__ag_cfg.nallow] = strdup(s))) {
            if (a)
                cs__ag_cfg.allow = a;
            break;
        }
        cs__ag_cfg.allow = a;
        cs__ag_cfg.nallow++;
    }
    fclose(f);
}

void cs__ag_cfg_load(void)
{
    const char *v;

    cs__ag_cfg.reports = cs__ag_parse_reports(getenv("COSCOPE_REPORT"));
    v = getenv("COSCOPE_STRICT");
    cs__ag_cfg.strict = v && *v && strcmp(v, "0") != 0;
    v = getenv("COSCOPE_REPORT_STDERR");
    cs__ag_cfg.quiet = v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0);
    v = getenv("COSCOPE_SLOW_MS");
    if (v && *v) {
        char *end;
        double ms = strtod(v, &end);
        if (*end == '\0' && ms > 0)
            cs__ag_cfg.slow_ns = (int64_t)(ms * 1e6);
    }
    v = getenv("COSCOPE_ALLOW");
    if (v && *v && cs__ag_cfg.reports)
        cs__ag_load_allow(v);
}

bool cs__ag_cfg_allowed(const char *func, const char *site)
{
    for (size_t i = 0; i < cs__ag_cfg.nallow; i++) {
        const char *a = cs__ag_cfg.allow[i];
        if ((func && strcmp(a, func) == 0) || (site && strcmp(a, site) == 0))
            return true;
    }
    return false;
}
