/*
 * cmd_view.c - `coscope view FILE [--port N] [--html OUT.html]`: the web
 * timeline viewer (viewer/) on a trace file.
 *
 * The file is read here, through the same timeline as `coscope export`
 * (timeline.c), and handed to the page as the viewer's data (below): a
 * corrupt file is refused before any server starts.  Then either
 *   - a small HTTP server on 127.0.0.1 serves the viewer's files and the
 *     data (/trace.bin), one connection at a time, until Ctrl-C; requests
 *     that do not name this host are refused (DNS rebinding), nothing but
 *     the viewer's own files is served; or
 *   - --html writes one self-contained page: the viewer's ES modules
 *     joined into one inline module (each file's imports first, `import`
 *     lines dropped, `export` keywords removed), its CSS inline, and the
 *     data as base64 in a <script type="application/octet-stream">.
 *
 * The viewer's data (version 1), little-endian:
 *   OFFSET SIZE DESCRIPTION
 *        0    8 magic "CSVIEW01"
 *        8    4 length of the JSON description that follows
 *       12    4 reserved (0)
 *       16    n JSON: meta, loops, tasks, warnings, stacks, and "arrays":
 *              {name: {offset, type, length}} locating each typed array
 *     16+n    . zero padding to a multiple of 8, then the arrays, each at
 *              a multiple of 8: steps (sorted by task, then start) as
 *              step_start/step_end (f64 ns since the first event),
 *              step_target (f64), step_aux (u32), step_task (u32),
 *              step_reason (u8), step_flags (u8: 1 = target known, 2 = in a
 *              yield batch, cli/timeline.h); loop
 *              idle as idle_start/idle_end (f64), sorted by loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "timeline.h"

const char cmd_view_usage[] =
    "usage: coscope view <file> [--port <n>] [--html <out.html>]\n"
    "                    [--from <s>] [--max-steps <n>] [--partial]\n"
    "\n"
    "Opens a trace file in the web timeline: one lane per task grouped by\n"
    "loop, steps coloured by why they stopped, loop idle time, warnings\n"
    "with their stacks.  Serves the viewer on 127.0.0.1 (a free port\n"
    "unless --port) and prints its URL, until Ctrl-C; or, with --html,\n"
    "writes one self-contained page that works offline.\n"
    "\n"
    "    -p, --port N     listen on port N of 127.0.0.1 (default: any free)\n"
    "    --html F         write the viewer and the trace into the page F\n"
    "    --from S         show the steps from S seconds after the first\n"
    "                     event on (default 0)\n"
    "    --max-steps N    hand the browser at most N steps (default\n"
    "                     8000000); a longer trace is shown in part, with\n"
    "                     a note saying which\n"
    "    --partial        read a file that is cut or damaged up to the\n"
    "                     damage instead of refusing it\n"
    "    -h, --help       show this help\n"
    "\n"
    "The viewer's files are looked for in $COSCOPE_VIEWER_DIR, then next to\n"
    "the installed coscope (../share/coscope/viewer).\n";

#ifndef COSCOPE_VIEWER_INSTALL_DIR
#define COSCOPE_VIEWER_INSTALL_DIR ""
#endif
#ifndef COSCOPE_VIEWER_SOURCE_DIR
#define COSCOPE_VIEWER_SOURCE_DIR ""
#endif

/* ---- the viewer's data ---------------------------------------------------
 */

struct array {
    const char *name, *type;
    size_t elem, count;
};

static void write_meta(struct cli_timeline *tl, FILE *j)
{
    char buf[CS_EXE_PATH_MAX];
    fputs("{\"format\":\"coscope-view\",\"version\":1,\"meta\":{\"source\":",
          j);
    cli_json_str(j, tl->path);
    snprintf(buf, sizeof buf, "%s", tl->info.exe_path);
    fprintf(j, ",\"pid\":%d,\"exe\":", tl->info.pid);
    cli_json_str(j, cli_sanitize(buf));
    fprintf(j,
            ",\"complete\":%s,\"events\":%llu,\"lost\":%llu,"
            "\"first_ns\":%llu,\"duration_ns\":%llu,\"clock\":\"%s\","
            "\"symbolised\":%s,\"kind\":\"%s\"},\n",
            tl->info.complete ? "true" : "false",
            (unsigned long long)tl->events, (unsigned long long)tl->lost,
            (unsigned long long)tl->first_ns,
            (unsigned long long)(tl->last_ns - tl->first_ns),
            tl->info.clock == CS_CLOCK_TSC ? "tsc" : "monotonic",
            tl->sym ? "true" : "false",
            tl->info.flags & CS_SEG_F_CRASH    ? "crash dump"
            : tl->info.flags & CS_SEG_F_FLIGHT ? "flight recorder dump"
                                               : "recording");
    if (tl->windowed)
        fprintf(j,
                "\"window\":{\"from_ns\":%llu,\"to_ns\":%llu,"
                "\"steps_total\":%zu,\"steps_shown\":%zu},\n",
                (unsigned long long)(tl->window_from - tl->first_ns),
                (unsigned long long)(tl->window_to - tl->first_ns),
                tl->steps_total, tl->nsteps);
    fputs("\"loops\":[", j);
    size_t d = 0;
    for (uint32_t r = 0; r < tl->info.ring_count; r++) {
        cs_trace_ring ring = {0};
        cs_trace_ring_get(tl->t, r, &ring);
        size_t first = d;
        while (d < tl->nidle && tl->idle[d].ring == r)
            d++;
        fprintf(j,
                "%s{\"loop\":%u,\"tid\":%u,\"idle_first\":%zu,"
                "\"idle_count\":%zu}",
                r ? "," : "", r, ring.tid, first, d - first);
    }
    fputs("],\n", j);
}

static void write_tasks(struct cli_timeline *tl, FILE *j)
{
    char n[512];
    fputs("\"tasks\":[", j);
    for (size_t k = 0; k < tl->ntasks; k++) {
        const struct cli_tl_task *t = &tl->tasks[k];
        fprintf(j, "%s\n{\"id\":%llu,\"name\":", k ? "," : "",
                (unsigned long long)t->id);
        cli_json_str(j, cli_tl_str(tl, t->name, n, sizeof n));
        fputs(",\"site\":", j);
        cli_json_str(j, cli_tl_site(tl, t->site, n, sizeof n));
        fprintf(j,
                ",\"loop\":%d,\"parent\":%llu,\"first\":%u,\"count\":%u,"
                "\"state\":",
                t->ring == UINT32_MAX ? -1 : (int)t->ring,
                (unsigned long long)t->parent, t->first, t->nsteps);
        if (t->in_snapshot)
            fprintf(j, "\"%s\"}", cs_trace_state_name(t->state));
        else
            fputs("null}", j);
    }
    fputs("],\n", j);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int write_warnings(struct cli_timeline *tl, FILE *j)
{
    uint32_t *ids = malloc((tl->nwarnings + 1) * sizeof *ids);
    if (ids == NULL)
        return -ENOMEM;
    fputs("\"warnings\":[", j);
    for (size_t i = 0; i < tl->nwarnings; i++) {
        const struct cli_tl_warning *x = &tl->warnings[i];
        fprintf(j,
                "%s\n{\"t\":%llu,\"task\":%ld,\"task_id\":%llu,"
                "\"loop\":%u,\"kind\":\"%s\",\"stack\":%u}",
                i ? "," : "", (unsigned long long)(x->ns - tl->first_ns),
                x->task_index, (unsigned long long)x->task, x->ring,
                cs_trace_warning_name(x->kind), x->stack);
        ids[i] = x->stack;
    }
    fputs("],\n\"stacks\":{", j);
    qsort(ids, tl->nwarnings, sizeof *ids, cmp_u32);
    int err = 0, first = 1;
    for (size_t i = 0; i < tl->nwarnings && err == 0; i++) {
        if (ids[i] == 0 || (i > 0 && ids[i] == ids[i - 1]))
            continue;
        char **frames;
        int d = cli_tl_stack(tl, ids[i], &frames);
        if (d < 0) {
            err = d;
            break;
        }
        fprintf(j, "%s\n\"%u\":[", first ? "" : ",", ids[i]);
        first = 0;
        for (int k = 0; k < d; k++) {
            if (k)
                fputc(',', j);
            cli_json_str(j, frames[k]);
        }
        fputc(']', j);
        cli_tl_stack_free(frames, d);
    }
    fputs("},\n", j);
    free(ids);
    return err;
}

static const struct array arrays[] = {
    {"step_start", "f64", 8, 0},  {"step_end", "f64", 8, 0},
    {"step_target", "f64", 8, 0}, {"step_aux", "u32", 4, 0},
    {"step_task", "u32", 4, 0},   {"step_reason", "u8", 1, 0},
    {"step_flags", "u8", 1, 0},   {"idle_start", "f64", 8, 1},
    {"idle_end", "f64", 8, 1},
};
#define NARRAYS (sizeof arrays / sizeof arrays[0])

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Element i of array a, stored at p. */
static void array_elem(struct cli_timeline *tl, size_t a, size_t i, void *p)
{
    const struct cli_tl_step *s = a < 7 ? &tl->steps[i] : NULL;
    const struct cli_tl_idle *d = a >= 7 ? &tl->idle[i] : NULL;
    double f = 0;
    uint32_t u = 0;
    uint8_t b = 0;
    switch (a) {
    case 0:
        f = (double)(s->start - tl->first_ns);
        break;
    case 1:
        f = (double)(s->end - tl->first_ns);
        break;
    case 2:
        f = (double)s->target;
        break;
    case 3:
        u = s->aux;
        break;
    case 4:
        u = s->task;
        break;
    case 5:
        b = s->reason;
        break;
    case 6:
        b = (uint8_t)(s->has_target | s->batched << 1);
        break;
    case 7:
        f = (double)(d->start - tl->first_ns);
        break;
    default:
        f = (double)(d->end - tl->first_ns);
        break;
    }
    if (arrays[a].elem == 8)
        memcpy(p, &f, 8);
    else if (arrays[a].elem == 4)
        memcpy(p, &u, 4);
    else
        memcpy(p, &b, 1);
}

int cli_tl_write_view(struct cli_timeline *tl, FILE *f)
{
    char *json = NULL;
    size_t jlen = 0;
    FILE *j = open_memstream(&json, &jlen);
    if (j == NULL)
        return -ENOMEM;
    write_meta(tl, j);
    write_tasks(tl, j);
    int err = write_warnings(tl, j);
    size_t off = 0, at[NARRAYS];
    for (size_t a = 0; a < NARRAYS; a++) {
        at[a] = off;
        off = pad8(off + arrays[a].elem *
                             (arrays[a].count ? tl->nidle : tl->nsteps));
    }
    /* Offsets are from the start of the data: 16 + the padded JSON. */
    fputs("\"arrays\":{", j);
    long base_mark = ftell(j);
    fclose(j);
    /* The JSON's own length moves the arrays: iterate to a fixed point. */
    size_t base = 0;
    char *tail = NULL;
    size_t tlen = 0;
    for (int round = 0; round < 4; round++) {
        free(tail);
        FILE *m = open_memstream(&tail, &tlen);
        if (m == NULL)
            return free(json), -ENOMEM;
        for (size_t a = 0; a < NARRAYS; a++)
            fprintf(m,
                    "%s\"%s\":{\"offset\":%zu,\"type\":\"%s\","
                    "\"length\":%zu}",
                    a ? "," : "", arrays[a].name, base + at[a], arrays[a].type,
                    arrays[a].count ? tl->nidle : tl->nsteps);
        fputs("}}\n", m);
        fclose(m);
        size_t nb = pad8(16 + (size_t)base_mark + tlen);
        if (nb == base)
            break;
        base = nb;
    }
    uint32_t hdr[4] = {0, 0, (uint32_t)((size_t)base_mark + tlen), 0};
    memcpy(hdr, "CSVIEW01", 8);
    fwrite(hdr, 1, 16, f);
    fwrite(json, 1, (size_t)base_mark, f);
    fwrite(tail, 1, tlen, f);
    static const char zero[8];
    fwrite(zero, 1, base - (16 + (size_t)base_mark + tlen), f);
    size_t pos = 0;
    for (size_t a = 0; a < NARRAYS; a++) {
        size_t n = arrays[a].count ? tl->nidle : tl->nsteps;
        fwrite(zero, 1, at[a] - pos, f);
        for (size_t i = 0; i < n; i++) {
            unsigned char v[8];
            array_elem(tl, a, i, v);
            fwrite(v, 1, arrays[a].elem, f);
        }
        pos = at[a] + arrays[a].elem * n;
    }
    free(json);
    free(tail);
    return err;
}

/* ---- the viewer's files --------------------------------------------------
 */

static int has_index(const char *dir)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/index.html", dir);
    return dir[0] != '\0' && access(p, R_OK) == 0;
}

/* Finds the directory of the viewer's files into dir; CLI_ERROR if none. */
static int viewer_dir(char *dir, size_t cap)
{
    const char *env = getenv("COSCOPE_VIEWER_DIR");
    if (env && env[0]) {
        snprintf(dir, cap, "%s", env);
        if (has_index(dir))
            return CLI_OK;
        return cli_error("view: no viewer in '%s' (COSCOPE_VIEWER_DIR): it "
                         "has no index.html",
                         env);
    }
    char exe[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(dir, cap, "%s/../share/coscope/viewer", exe);
        if (has_index(dir))
            return CLI_OK;
    }
    snprintf(dir, cap, "%s", COSCOPE_VIEWER_SOURCE_DIR);
    if (has_index(dir))
        return CLI_OK;
    snprintf(dir, cap, "%s", COSCOPE_VIEWER_INSTALL_DIR);
    if (has_index(dir))
        return CLI_OK;
    return cli_error("view: cannot find the viewer's files (index.html); set "
                     "COSCOPE_VIEWER_DIR to the viewer/ directory");
}

/* ---- the command ---------------------------------------------------------
 */

/* A non-negative decimal number up to max; CLI_ERROR (not printed) if s
 * is not one. */
static int parse_number(const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno || !(v >= 0 && v <= max))
        return CLI_ERROR;
    *out = v;
    return CLI_OK;
}

static int parse_port(const char *s, int *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno || v > 65535)
        return cli_error("view: '%s' is not a port number (0-65535)", s);
    *port = (int)v;
    return CLI_OK;
}

int cmd_view(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"html", required_argument, NULL, 'H'},
        {"partial", no_argument, NULL, 'P'},
        {"from", required_argument, NULL, 'f'},
        {"max-steps", required_argument, NULL, 'm'},
        CLI_OPTS_END,
    };
    const char *html = NULL;
    int c, port = 0, partial = 0;
    double from = 0, steps = 0;
    size_t max_steps = 8000000;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "p:h", opts)) > 0) {
        if (c == 'p' && parse_port(optarg, &port) != CLI_OK)
            return CLI_ERROR;
        else if (c == 'H')
            html = optarg;
        else if (c == 'P')
            partial = 1;
        else if (c == 'f' && parse_number(optarg, 1e6, &from) != CLI_OK)
            return cli_error("view: '%s' is not a number of seconds", optarg);
        else if (c == 'm' &&
                 (parse_number(optarg, 1e12, &steps) != CLI_OK || steps < 1))
            return cli_error("view: '%s' is not a number of steps", optarg);
        else if (c == 'm')
            max_steps = (size_t)steps;
    }
    if (c < 0)
        return cli_getopt_status(c);
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    struct cli_timeline *tl;
    char dir[PATH_MAX];
    if (cli_tl_load(s.file, partial, &tl) != CLI_OK)
        return CLI_ERROR;
    if (viewer_dir(dir, sizeof dir) != CLI_OK) {
        cli_tl_free(tl);
        return CLI_ERROR;
    }
    char *data = NULL;
    size_t len = 0;
    int err = cli_tl_window(tl, (uint64_t)(from * 1e9), max_steps);
    if (err == 0 && tl->windowed)
        cli_warn("view: showing %zu of the %zu steps of '%s', from %.6fs "
                 "to %.6fs (see --from and --max-steps)",
                 tl->nsteps, tl->steps_total, s.file,
                 (double)(tl->window_from - tl->first_ns) / 1e9,
                 (double)(tl->window_to - tl->first_ns) / 1e9);
    FILE *m = err == 0 ? open_memstream(&data, &len) : NULL;
    if (err == 0)
        err = m ? cli_tl_write_view(tl, m) : -ENOMEM;
    if (m && fclose(m) != 0)
        err = -ENOMEM;
    cli_tl_free(tl);
    int rc;
    if (err != 0)
        rc = cli_error("out of memory");
    else if (html)
        rc = cli_view_html(dir, data, len, html);
    else
        rc = cli_view_serve(dir, data, len, port, s.file);
    free(data);
    return rc;
}
