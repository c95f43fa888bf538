/*
 * check_junit.c - `coscope check --format junit`: one testsuite, a
 * testcase per failing report (or one passing testcase when none fails).
 */
#include <time.h>
#include <unistd.h>

#include "check.h"

static void xml_str(FILE *f, const char *s)
{
    static const char *const esc[256] = {
        ['&'] = "&amp;",  ['<'] = "&lt;",    ['>'] = "&gt;",
        ['"'] = "&quot;", ['\''] = "&apos;",
    };
    for (; *s; s++) {
        const char *e = esc[(unsigned char)*s];
        if (e != NULL)
            fputs(e, f);
        else
            fputc(*s, f);
    }
}

static void xml_property(FILE *f, const char *name, const char *value)
{
    fprintf(f, "<property name=\"%s\" value=\"", name);
    xml_str(f, value);
    fputs("\"/>\n", f);
}

/* JUnit XML that validates against both de-facto schemas: Jenkins'
 * (junit-4.xsd of dtkit, xunit-plugin's ancestor) and Apache Ant's
 * (Windy Road's JUnit.xsd).  Ant's is the stricter one: it wants the
 * testsuite's package, id, timestamp (no zone), hostname and time, every
 * testcase's classname and time, properties, system-out and system-err,
 * and allows no other attribute (no file/line on a testcase: the culprit
 * frame's file:line ends the failure message and is in its stack text);
 * Jenkins' wants at least one property. */
void check_out_junit(FILE *f, const struct check_reports *rs, size_t failing,
                     const struct check_run *run)
{
    char stamp[32] = "1970-01-01T00:00:00", host[256] = "localhost";
    char cmd[1024] = "", status[16];
    struct tm tm;
    size_t n = 0;
    if (gmtime_r(&run->started, &tm) != NULL)
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    cli_sanitize(host);
    for (int i = 0; run->cmd[i] && n + 1 < sizeof cmd; i++)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s%s", i ? " " : "",
                              run->cmd[i]);
    cli_sanitize(cmd);
    snprintf(status, sizeof status, "%d", run->status);

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n", f);
    fputs("<testsuite name=\"coscope check\" package=\"coscope\" id=\"0\" "
          "timestamp=\"",
          f);
    fputs(stamp, f);
    fputs("\" hostname=\"", f);
    xml_str(f, host);
    fprintf(f,
            "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
            "time=\"%.3f\">\n<properties>\n",
            failing ? failing : 1, failing, run->secs);
    xml_property(f, "command", cmd);
    xml_property(f, "exit_status", status);
    fputs("</properties>\n", f);
    if (failing == 0)
        fputs("<testcase classname=\"coscope\" name=\"no failing "
              "reports\" time=\"0\"/>\n",
              f);
    for (size_t i = 0; i < rs->n; i++) {
        const struct check_report *r = &rs->v[i];
        const struct check_frame *c = check_culprit(r);
        char where[400] = "";
        if (!r->failing)
            continue;
        if (c != NULL)
            snprintf(where, sizeof where, " at %s:%ld", c->file, c->line);
        fprintf(f, "<testcase classname=\"coscope.%s\" name=\"",
                cs_trace_report_name((unsigned)r->cls));
        xml_str(f, r->headline);
        fputs("\" time=\"0\">\n<failure type=\"", f);
        fputs(cs_trace_report_name((unsigned)r->cls), f);
        fputs("\" message=\"", f);
        xml_str(f, r->headline);
        xml_str(f, where);
        fputs("\">", f);
        char head[64];
        snprintf(head, sizeof head, "process %ld\n", r->pid);
        xml_str(f, head);
        for (int k = 0; k < r->nframes; k++) {
            char line[600];
            const struct check_frame *fr = &r->frames[k];
            snprintf(line, sizeof line, "#%d %s%s%s", k, fr->ip,
                     fr->func[0] ? " in " : "", fr->func);
            xml_str(f, line);
            if (fr->file[0]) {
                snprintf(line, sizeof line, " (%s:%ld)", fr->file, fr->line);
                xml_str(f, line);
            }
            fputc('\n', f);
        }
        fputs("</failure>\n</testcase>\n", f);
    }
    fputs("<system-out/>\n<system-err/>\n</testsuite>\n</testsuites>\n", f);
}
