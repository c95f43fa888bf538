/*
 * check_sarif.c - `coscope check --format sarif`: SARIF 2.1.0, one rule a
 * report class (CS_REPORT_CLASS_MAP's order), one result a report, located
 * at its culprit frame.
 */
#include <string.h>

#include "check.h"

/* Where class kind stands among the rules out_sarif lists. */
static int sarif_rule_index(int kind)
{
    int i = 0;
#define RULE_INDEX(k, value, name, trace_name, reported)                      \
    if ((value) == kind)                                                      \
        return i;                                                             \
    i += (reported);
    CS_REPORT_CLASS_MAP(RULE_INDEX)
#undef RULE_INDEX
    return -1;
}

/* A file path as a URI reference: absolute paths as file:// URIs. */
static void sarif_uri(FILE *f, const char *path)
{
    static const char keep[] = "/-._~";
    char buf[1024];
    size_t n = 0;
    if (path[0] == '/')
        n = (size_t)snprintf(buf, sizeof buf, "file://");
    for (const unsigned char *s = (const unsigned char *)path;
         *s && n + 4 < sizeof buf; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
            (*s >= '0' && *s <= '9') || (*s && strchr(keep, *s)))
            buf[n++] = (char)*s;
        else
            n += (size_t)snprintf(buf + n, 4, "%%%02X", *s);
    }
    buf[n] = '\0';
    cli_json_str(f, buf);
}

void check_out_sarif(FILE *f, const struct check_reports *rs)
{
    fprintf(f,
            "{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0."
            "json\",\"version\":\"2.1.0\",\"runs\":[{\"tool\":{"
            "\"driver\":{\"name\":\"coscope\",\"version\":\"%s\","
            "\"informationUri\":\"https://github.com/coscope/coscope\","
            "\"rules\":[",
            COSCOPE_VERSION);
    const char *sep = "";
#define RULE(kind, value, name, trace_name, reported)                         \
    if (reported) {                                                           \
        fprintf(f,                                                            \
                "%s{\"id\":\"%s\",\"shortDescription\":{\"text\":"            \
                "\"coscope agent report: %s\"}}",                             \
                sep, name, name);                                             \
        sep = ",";                                                            \
    }
    CS_REPORT_CLASS_MAP(RULE)
#undef RULE
    fputs("]}},\"results\":[", f);
    for (size_t i = 0; i < rs->n; i++) {
        const struct check_report *r = &rs->v[i];
        const struct check_frame *c = check_culprit(r);
        fprintf(f,
                "%s\n{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"%s\","
                "\"message\":{\"text\":",
                i ? "," : "", cs_trace_report_name((unsigned)r->cls),
                sarif_rule_index(r->cls), r->failing ? "error" : "warning");
        cli_json_str(f, r->headline);
        fputs("}", f);
        if (c != NULL) {
            fputs(",\"locations\":[{\"physicalLocation\":{"
                  "\"artifactLocation\":{\"uri\":",
                  f);
            sarif_uri(f, c->file);
            fprintf(f, "},\"region\":{\"startLine\":%ld}}", c->line);
            if (c->func[0]) {
                fputs(",\"logicalLocations\":[{\"name\":", f);
                cli_json_str(f, c->func);
                fputs(",\"kind\":\"function\"}]", f);
            }
            fputs("}]", f);
        }
        fprintf(f, ",\"properties\":{\"pid\":%ld", r->pid);
        if (r->task[0]) {
            fputs(",\"task\":", f);
            cli_json_str(f, r->task);
        }
        fputs(",\"frames\":", f);
        check_json_frames(f, r);
        fputs("}}", f);
    }
    fputs("]}]}\n", f);
}
