/*
 * check_write.c - `coscope check`'s reports as text (for people) and as
 * one JSON document (for scripts); the culprit frame and the JSON frames
 * are JUnit's and SARIF's too.
 */
#include <string.h>

#include "check.h"

/* The frame to blame: the innermost one with a source file that is not
 * the interposer or the C library (relative paths like ../sysdeps). */
const struct check_frame *check_culprit(const struct check_report *r)
{
    for (int k = 0; k < r->nframes; k++) {
        const char *file = r->frames[k].file;
        size_t n = strlen(file);
        if (file[0] == '\0' || r->frames[k].line <= 0 ||
            r->frames[k].library || strncmp(file, "../", 3) == 0 ||
            (n >= 11 && strcmp(file + n - 11, "interpose.c") == 0))
            continue;
        return &r->frames[k];
    }
    for (int k = 0; k < r->nframes; k++)
        if (r->frames[k].file[0] != '\0' && r->frames[k].line > 0)
            return &r->frames[k];
    return NULL;
}

static void text_frame(FILE *f, int k, const struct check_frame *fr,
                       const char *indent)
{
    if (fr->ip[0] == '\0' && fr->func[0]) /* a Python frame: no address */
        fprintf(f, "%s#%-2d %s", indent, k, fr->func);
    else {
        fprintf(f, "%s#%-2d %s", indent, k, fr->ip[0] ? fr->ip : "?");
        if (fr->func[0])
            fprintf(f, " in %s%s", fr->func, fr->inlined ? " [inlined]" : "");
    }
    if (fr->file[0])
        fprintf(f, " (%s:%ld)", fr->file, fr->line);
    fputc('\n', f);
}

void check_out_text(FILE *f, const struct check_reports *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        const struct check_report *r = &rs->v[i];
        fprintf(f, "coscope: %s\n", r->headline);
        fprintf(f, "  %s in process %ld",
                cs_trace_report_name((unsigned)r->cls), r->pid);
        if (r->task[0])
            fprintf(f, ", task '%s'", r->task);
        fputs(r->failing ? "\n" : " (not failing)\n", f);
        for (int k = 0; k < r->nframes; k++)
            text_frame(f, k, &r->frames[k], "    ");
        if (r->nframes == 0)
            fputs("    (no stack)\n", f);
    }
}

/* s as a JSON string, or null if it is empty. */
static void json_str_or_null(FILE *f, const char *s)
{
    if (s[0])
        cli_json_str(f, s);
    else
        fputs("null", f);
}

void check_json_frames(FILE *f, const struct check_report *r)
{
    fputc('[', f);
    for (int k = 0; k < r->nframes; k++) {
        const struct check_frame *fr = &r->frames[k];
        fprintf(f, "%s{\"ip\":", k ? "," : "");
        cli_json_str(f, fr->ip);
        fputs(",\"function\":", f);
        json_str_or_null(f, fr->func);
        fputs(",\"file\":", f);
        json_str_or_null(f, fr->file);
        fprintf(f, ",\"line\":%ld%s}", fr->line,
                fr->inlined ? ",\"inlined\":true" : "");
    }
    fputc(']', f);
}

void check_out_json(FILE *f, const struct check_reports *rs, char **cmd,
                    int cmd_status, size_t failing)
{
    fputs("{\"command\":[", f);
    for (int i = 0; cmd[i]; i++) {
        fputs(i ? "," : "", f);
        cli_json_str(f, cmd[i]);
    }
    fprintf(f,
            "],\"exit_status\":%d,\"failing\":%zu,\"suppressed\":%zu,"
            "\"reports\":[",
            cmd_status, failing, rs->suppressed);
    for (size_t i = 0; i < rs->n; i++) {
        const struct check_report *r = &rs->v[i];
        fprintf(f, "%s\n{\"class\":\"%s\",\"failing\":%s,\"headline\":",
                i ? "," : "", cs_trace_report_name((unsigned)r->cls),
                r->failing ? "true" : "false");
        cli_json_str(f, r->headline);
        fputs(",\"task\":", f);
        json_str_or_null(f, r->task);
        fprintf(f, ",\"pid\":%ld,\"frames\":", r->pid);
        check_json_frames(f, r);
        fputc('}', f);
    }
    fputs("]}\n", f);
}
