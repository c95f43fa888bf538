/*
 * cmd_export.c - `coscope export FILE --format chrome -o OUT.json`: a trace
 * file as Chrome Trace Event Format JSON, which Perfetto UI and
 * chrome://tracing load.
 *
 * The mapping (Trace Event Format, "JSON Object Format"):
 *   - the traced process is pid; each task is a thread (tid = task id)
 *     named by "thread_name" metadata, ordered by loop with
 *     "thread_sort_index";
 *   - each step is a complete event ("X") on its task, named by the task,
 *     with args {reason, waited_on};
 *   - each loop has its own track (tid CLI_TL_LOOP_TID + loop number)
 *     whose "X" slices are the time the loop sat idle in epoll_wait;
 *   - each warning is a thread-scoped instant event ("i", s "t") on its
 *     task (or its loop's track) with args {kind, task, stack}.
 * Timestamps are microseconds since the first event, with ns precision.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "export.h"
#include "timeline.h"

const char cmd_export_usage[] =
    "usage: coscope export <file> [--format chrome|pprof|perfetto] "
    "[-o <out>] [--partial]\n"
    "\n"
    "Writes a trace file as Chrome Trace Event Format JSON, for Perfetto UI\n"
    "(ui.perfetto.dev, 'Open trace file') or chrome://tracing: tasks as\n"
    "tracks grouped by loop, steps as slices with why they stopped (a run\n"
    "of short yields counted as a batch: one slice per task over the batch,\n"
    "args.batched), loop idle time on one track per loop, warnings as\n"
    "instant events with their stacks.\n"
    "\n"
    "    --format F       chrome (the default, JSON as above), pprof (a\n"
    "                     gzipped profile.proto of where loop time went:\n"
    "                     steps by task, warnings with their stacks; for go\n"
    "                     tool pprof, Pyroscope, Parca) or perfetto (a\n"
    "                     native Perfetto protobuf trace: tracks per task\n"
    "                     and loop, flows, counters; see docs/fleet.md)\n"
    "    -o, --output F   write to F instead of standard output\n"
    "    --partial        read a file that is cut or damaged up to the\n"
    "                     damage instead of refusing it\n"
    "    -h, --help       show this help\n";

/* tid of loop N's track: far above task ids, within 32 bits. */
#define CLI_TL_LOOP_TID 2000000000u

static void us(FILE *f, const struct cli_timeline *tl, uint64_t ns)
{
    uint64_t d = ns > tl->first_ns ? ns - tl->first_ns : 0;
    fprintf(f, "%llu.%03llu", (unsigned long long)(d / 1000),
            (unsigned long long)(d % 1000));
}

static void meta(FILE *f, unsigned pid, const char *what, uint64_t tid,
                 const char *key, const char *name, long long sort)
{
    fprintf(f,
            ",\n{\"ph\":\"M\",\"pid\":%u,\"tid\":%llu,\"name\":\"%s\","
            "\"args\":{\"%s\":",
            pid, (unsigned long long)tid, what, key);
    if (name)
        cli_json_str(f, name);
    else
        fprintf(f, "%lld", sort);
    fputs("}}", f);
}

static void write_tracks(struct cli_timeline *tl, FILE *f, unsigned pid)
{
    char n[512], label[640];
    snprintf(n, sizeof n, "%s", tl->info.exe_path);
    snprintf(label, sizeof label, "%s (pid %u)", cli_sanitize(n), pid);
    fprintf(f,
            "{\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"name\":\"process_name\","
            "\"args\":{\"name\":",
            pid);
    cli_json_str(f, label);
    fputs("}}", f);
    for (uint32_t r = 0; r < tl->info.ring_count; r++) {
        snprintf(label, sizeof label, "loop %u (idle)", r);
        meta(f, pid, "thread_name", CLI_TL_LOOP_TID + r, "name", label, 0);
        meta(f, pid, "thread_sort_index", CLI_TL_LOOP_TID + r, "sort_index",
             NULL, (long long)r * 1000000);
    }
    for (size_t k = 0; k < tl->ntasks; k++) {
        struct cli_tl_task *t = &tl->tasks[k];
        snprintf(label, sizeof label, "%s (task %llu)",
                 cli_tl_task_name(tl, (long)k, n, sizeof n),
                 (unsigned long long)t->id);
        meta(f, pid, "thread_name", t->id, "name", label, 0);
        long long ring = t->ring == UINT32_MAX ? tl->info.ring_count : t->ring;
        meta(f, pid, "thread_sort_index", t->id, "sort_index", NULL,
             ring * 1000000 + 1 + (long long)k);
    }
}

static void write_steps(struct cli_timeline *tl, FILE *f, unsigned pid)
{
    char n[256], w[512];
    long cached = -1;
    for (size_t i = 0; i < tl->nsteps; i++) {
        const struct cli_tl_step *s = &tl->steps[i];
        if ((long)s->task != cached) {
            cached = (long)s->task;
            cli_tl_task_name(tl, cached, n, sizeof n);
        }
        fprintf(f,
                ",\n{\"ph\":\"X\",\"cat\":\"step\",\"pid\":%u,\"tid\":%llu,"
                "\"name\":",
                pid, (unsigned long long)tl->tasks[s->task].id);
        cli_json_str(f, n);
        fputs(",\"ts\":", f);
        us(f, tl, s->start);
        fprintf(f, ",\"dur\":%llu.%03llu,\"args\":{\"reason\":\"%s\"",
                (unsigned long long)((s->end - s->start) / 1000),
                (unsigned long long)((s->end - s->start) % 1000),
                cs_trace_wait_name(s->reason));
        if (s->batched)
            fputs(",\"batched\":true", f);
        cli_tl_wait_text(tl, s, w, sizeof w);
        if (w[0]) {
            fputs(",\"waited_on\":", f);
            cli_json_str(f, w);
        }
        fputs("}}", f);
    }
}

static void write_idle(struct cli_timeline *tl, FILE *f, unsigned pid)
{
    for (size_t i = 0; i < tl->nidle; i++) {
        const struct cli_tl_idle *d = &tl->idle[i];
        fprintf(f,
                ",\n{\"ph\":\"X\",\"cat\":\"loop\",\"name\":\"idle\","
                "\"pid\":%u,\"tid\":%u,\"ts\":",
                pid, CLI_TL_LOOP_TID + d->ring);
        us(f, tl, d->start);
        fprintf(f, ",\"dur\":%llu.%03llu,\"args\":{\"in\":\"epoll_wait\"}}",
                (unsigned long long)((d->end - d->start) / 1000),
                (unsigned long long)((d->end - d->start) % 1000));
    }
}

static int write_warnings(struct cli_timeline *tl, FILE *f, unsigned pid)
{
    for (size_t i = 0; i < tl->nwarnings; i++) {
        const struct cli_tl_warning *x = &tl->warnings[i];
        uint64_t tid = x->task_index >= 0 ? x->task
                                          : CLI_TL_LOOP_TID + x->ring;
        fprintf(f,
                ",\n{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"warning\","
                "\"name\":\"warning: %s\",\"pid\":%u,\"tid\":%llu,\"ts\":",
                cs_trace_warning_name(x->kind), pid, (unsigned long long)tid);
        us(f, tl, x->ns);
        fprintf(f, ",\"args\":{\"kind\":\"%s\",\"task\":%llu,\"stack\":[",
                cs_trace_warning_name(x->kind), (unsigned long long)x->task);
        char **frames;
        int d = cli_tl_stack(tl, x->stack, &frames);
        if (d < 0)
            return d;
        for (int k = 0; k < d; k++) {
            if (k)
                fputc(',', f);
            cli_json_str(f, frames[k]);
        }
        cli_tl_stack_free(frames, d);
        fputs("]}}", f);
    }
    return 0;
}

int cli_tl_write_chrome(struct cli_timeline *tl, FILE *f)
{
    unsigned pid = (unsigned)tl->info.pid;
    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"source\":", f);
    cli_json_str(f, tl->path);
    fprintf(f,
            ",\"events\":%llu,\"lost\":%llu,\"complete\":%s},\n"
            "\"traceEvents\":[\n",
            (unsigned long long)tl->events, (unsigned long long)tl->lost,
            tl->info.complete ? "true" : "false");
    write_tracks(tl, f, pid);
    write_steps(tl, f, pid);
    write_idle(tl, f, pid);
    int err = write_warnings(tl, f, pid);
    fputs("\n]}\n", f);
    return err;
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"partial", no_argument, NULL, 'p'},
        CLI_OPTS_END,
    };
    const char *out = NULL, *format = "chrome";
    int c, partial = 0;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "o:h", opts)) > 0) {
        if (c == 'f')
            format = optarg;
        else if (c == 'o')
            out = optarg;
        else
            partial = 1; /* --partial */
    }
    if (c < 0)
        return cli_getopt_status(c);
    int (*write)(struct cli_timeline *, FILE *) =
        strcmp(format, "chrome") == 0     ? cli_tl_write_chrome
        : strcmp(format, "pprof") == 0    ? cli_tl_write_pprof
        : strcmp(format, "perfetto") == 0 ? cli_tl_write_perfetto
                                          : NULL;
    if (write == NULL)
        return cli_error("export: unknown format '%s' (formats: chrome, "
                         "pprof, perfetto)",
                         format);
    if (write != cli_tl_write_chrome && (out == NULL || !strcmp(out, "-")) &&
        isatty(STDOUT_FILENO))
        return cli_error("export: refusing to write binary %s data to a "
                         "terminal (use -o FILE)",
                         format);
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    struct cli_timeline *tl;
    if (cli_tl_load(s.file, partial, &tl) != CLI_OK)
        return CLI_ERROR;
    FILE *f = stdout;
    if (out != NULL && strcmp(out, "-") != 0 &&
        (f = fopen(out, "w")) == NULL) {
        int e = errno;
        cli_tl_free(tl);
        return cli_error("cannot create '%s': %s", out, cli_strerror(e));
    }
    int err = write(tl, f);
    cli_tl_free(tl);
    /* a failed write to stdout is reported once, by run_command() */
    if (f == stdout)
        return err && !ferror(stdout)
                   ? cli_error("cannot write to standard output: %s",
                               cli_strerror(err < 0 ? -err : ENOMEM))
                   : CLI_OK;
    if (ferror(f) | (fclose(f) != 0) || err != 0) {
        remove(out);
        return cli_error("cannot write '%s': %s", out,
                         cli_strerror(err < 0 ? -err
                                      : err   ? ENOMEM
                                              : errno));
    }
    return CLI_OK;
}
