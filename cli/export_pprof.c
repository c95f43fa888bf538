/*
 * export_pprof.c - `coscope export FILE --format pprof`: where a trace's
 * loop time went, as a gzipped profile.proto that `go tool pprof`,
 * Pyroscope and Parca read.
 *
 * The profile (field numbers from google/pprof's proto/profile.proto):
 *   - sample types steps/count, cpu/nanoseconds (the default) and
 *     warnings/count; "cpu" is the time a task's steps held the loop
 *     thread, which includes time blocked in a call on that thread (the
 *     very thing a blocking-call bug costs);
 *   - one sample per task with the steps no warning explains, its stack
 *     the synthetic frame "[task NAME]" (at the task's creation site) with
 *     its parent tasks' frames outside it;
 *   - one sample per warning with a stack (a blocking call, a sampled slow
 *     step): the program's frames (function, file, line) inside the
 *     task's frames, carrying the time of the step it happened in, which
 *     the task's own sample then leaves out; labels task, task_id and
 *     warning.
 * The short yields of a batch are counted as steps without time (the
 * trace records the batch's span, not each task's share).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "export.h"
#include "proto.h"

/* profile.proto field numbers */
enum {
    P_SAMPLE_TYPE = 1,
    P_SAMPLE = 2,
    P_LOCATION = 4,
    P_FUNCTION = 5,
    P_STRING_TABLE = 6,
    P_TIME_NANOS = 9,
    P_DURATION_NANOS = 10,
    P_PERIOD_TYPE = 11,
    P_PERIOD = 12,
    P_COMMENT = 13,
    P_DEFAULT_SAMPLE_TYPE = 14,
    VT_TYPE = 1,
    VT_UNIT = 2,
    S_LOCATION_ID = 1,
    S_VALUE = 2,
    S_LABEL = 3,
    L_KEY = 1,
    L_STR = 2,
    L_NUM = 3,
    LOC_ID = 1,
    LOC_ADDRESS = 3,
    LOC_LINE = 4,
    LINE_FUNCTION_ID = 1,
    LINE_LINE = 2,
    F_ID = 1,
    F_NAME = 2,
    F_SYSTEM_NAME = 3,
    F_FILENAME = 4,
};

#define NVALUES 3     /* steps, cpu, warnings */
#define TASK_DEPTH 16 /* parent frames followed at most */

/* A string, function or location key -> its index or id. */
struct dict {
    struct entry {
        char *s;       /* owned, for strings; NULL for numeric keys */
        uint64_t a, b; /* numeric key */
        uint64_t id;   /* 0: empty */
    } * v;
    size_t cap, n;
};

struct pprof {
    struct cli_timeline *tl;
    struct cli_pb out, loc, fn, str;
    struct dict strings, funcs, locs;
    uint64_t next_string; /* index of the next string */
};

static uint64_t hash(const char *s, uint64_t a, uint64_t b)
{
    uint64_t h = 1469598103934665603ull ^ a * 0x9e3779b97f4a7c15ull ^ b;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ h >> 29;
}

/* The entry for key (s or a, b); a new one has id 0. */
static struct entry *lookup(struct dict *d, const char *s, uint64_t a,
                            uint64_t b)
{
    if (d->n * 2 >= d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 1024;
        struct entry *g = calloc(cap, sizeof *g);
        if (g == NULL)
            return NULL;
        for (size_t i = 0; i < d->cap; i++) {
            struct entry *e = &d->v[i];
            if (e->id == 0)
                continue;
            size_t j = hash(e->s, e->a, e->b) & (cap - 1);
            while (g[j].id != 0)
                j = (j + 1) & (cap - 1);
            g[j] = *e;
        }
        free(d->v);
        d->v = g;
        d->cap = cap;
    }
    size_t j = hash(s, a, b) & (d->cap - 1);
    for (;; j = (j + 1) & (d->cap - 1)) {
        struct entry *e = &d->v[j];
        if (e->id == 0)
            return e;
        if (e->a == a && e->b == b &&
            (s ? e->s && strcmp(e->s, s) == 0 : e->s == NULL))
            return e;
    }
}

static void dict_free(struct dict *d)
{
    for (size_t i = 0; i < d->cap; i++)
        free(d->v[i].s);
    free(d->v);
}

/* Index of s in the string table; -1 when out of memory. */
static int64_t string_id(struct pprof *p, const char *s)
{
    if (s[0] == '\0')
        return 0;
    struct entry *e = lookup(&p->strings, s, 0, 0);
    if (e == NULL || (e->id == 0 && (e->s = strdup(s)) == NULL))
        return -1;
    if (e->id == 0) {
        e->id = p->next_string++;
        p->strings.n++;
        cli_pb_str(&p->str, P_STRING_TABLE, s);
    }
    return (int64_t)e->id;
}

static uint64_t function_id(struct pprof *p, const char *name,
                            const char *file)
{
    int64_t n = string_id(p, name), f = string_id(p, file);
    if (n < 0 || f < 0)
        return 0;
    struct entry *e = lookup(&p->funcs, NULL, (uint64_t)n, (uint64_t)f);
    if (e == NULL)
        return 0;
    if (e->id == 0) {
        e->a = (uint64_t)n;
        e->b = (uint64_t)f;
        e->id = ++p->funcs.n;
        size_t m = cli_pb_begin(&p->fn, P_FUNCTION);
        cli_pb_varint(&p->fn, F_ID, e->id);
        cli_pb_varint(&p->fn, F_NAME, (uint64_t)n);
        cli_pb_varint(&p->fn, F_SYSTEM_NAME, (uint64_t)n);
        cli_pb_varint(&p->fn, F_FILENAME, (uint64_t)f);
        cli_pb_end(&p->fn, m);
    }
    return e->id;
}

/* A location: kind 0 for an address, 1 for a task's frame (key = task
 * index). */
static uint64_t location_id(struct pprof *p, uint64_t kind, uint64_t key,
                            uint64_t address, const char *func,
                            const char *file, int line)
{
    struct entry *e = lookup(&p->locs, NULL, kind, key);
    if (e == NULL)
        return 0;
    if (e->id != 0)
        return e->id;
    uint64_t f = function_id(p, func, file);
    if (f == 0)
        return 0;
    e->a = kind;
    e->b = key;
    e->id = ++p->locs.n;
    size_t m = cli_pb_begin(&p->loc, P_LOCATION);
    cli_pb_varint(&p->loc, LOC_ID, e->id);
    if (address)
        cli_pb_varint(&p->loc, LOC_ADDRESS, address);
    size_t l = cli_pb_begin(&p->loc, LOC_LINE);
    cli_pb_varint(&p->loc, LINE_FUNCTION_ID, f);
    if (line > 0)
        cli_pb_varint(&p->loc, LINE_LINE, (uint64_t)line);
    cli_pb_end(&p->loc, l);
    cli_pb_end(&p->loc, m);
    return e->id;
}

static long task_of(struct pprof *p, uint64_t id)
{
    return cli_tl_task_index(p->tl, id);
}

/* The frame of task k: "[task NAME]" at its creation site. */
static uint64_t task_location(struct pprof *p, long k)
{
    char name[256], fn[300], site[512];
    cli_tl_task_name(p->tl, k, name, sizeof name);
    snprintf(fn, sizeof fn, "[task %s]", name);
    cli_tl_str(p->tl, p->tl->tasks[k].site, site, sizeof site);
    char *colon = strrchr(site, ':');
    int line = 0;
    if (colon && colon[1] >= '0' && colon[1] <= '9') {
        line = atoi(colon + 1);
        *colon = '\0';
    }
    return location_id(p, 1, (uint64_t)k, 0, fn, site, line);
}

/* Appends task k's frame and its ancestors' to locs; returns the count. */
static int task_frames(struct pprof *p, long k, uint64_t *locs, int cap)
{
    int n = 0;
    while (k >= 0 && n < cap && n < TASK_DEPTH) {
        if ((locs[n] = task_location(p, k)) == 0)
            return -1;
        n++;
        uint64_t parent = p->tl->tasks[k].parent;
        k = parent ? task_of(p, parent) : -1;
    }
    return n;
}

static void sample(struct pprof *p, const uint64_t *locs, int nlocs,
                   const int64_t *values, long task, const char *warning)
{
    struct cli_pb *b = &p->out;
    size_t m = cli_pb_begin(b, P_SAMPLE);
    for (int i = 0; i < nlocs; i++)
        cli_pb_varint(b, S_LOCATION_ID, locs[i]);
    for (int i = 0; i < NVALUES; i++)
        cli_pb_varint(b, S_VALUE, (uint64_t)values[i]);
    if (task >= 0) {
        char name[256];
        size_t l = cli_pb_begin(b, S_LABEL);
        cli_pb_varint(b, L_KEY, (uint64_t)string_id(p, "task"));
        cli_pb_varint(b, L_STR,
                      (uint64_t)string_id(p,
                                          cli_tl_task_name(p->tl, task, name,
                                                           sizeof name)));
        cli_pb_end(b, l);
        l = cli_pb_begin(b, S_LABEL);
        cli_pb_varint(b, L_KEY, (uint64_t)string_id(p, "task_id"));
        cli_pb_varint(b, L_NUM, p->tl->tasks[task].id);
        cli_pb_end(b, l);
    }
    if (warning) {
        size_t l = cli_pb_begin(b, S_LABEL);
        cli_pb_varint(b, L_KEY, (uint64_t)string_id(p, "warning"));
        cli_pb_varint(b, L_STR, (uint64_t)string_id(p, warning));
        cli_pb_end(b, l);
    }
    cli_pb_end(b, m);
}

/* The step of task k that was running at ns, or -1. */
static long step_at(struct cli_timeline *tl, long k, uint64_t ns)
{
    long best = cli_tl_last_step(tl, k, ns, 0);
    return best >= 0 && tl->steps[best].end >= ns ? best : -1;
}

static int is_yields(const struct cli_tl_step *s)
{
    return s->batched && s->reason == CS_WAIT_YIELD;
}

/* One sample per warning; the steps they explain are marked in used. */
static void warning_samples(struct pprof *p, uint8_t *used)
{
    struct cli_tl_warning *w;
    for (size_t i = 0; i < p->tl->nwarnings; i++) {
        w = &p->tl->warnings[i];
        struct cli_frame fr[CLI_STACK_MAX];
        uint64_t locs[CLI_STACK_MAX + TASK_DEPTH];
        int n = cli_export_frames(p->tl, w->stack, fr, CLI_STACK_MAX), nl = 0;
        for (int j = 0; j < n; j++) {
            char name[160];
            cli_frame_name(&fr[j], name, sizeof name);
            uint64_t id = location_id(p, 0, fr[j].ip, fr[j].ip, name,
                                      fr[j].file, fr[j].line);
            if (id != 0)
                locs[nl++] = id;
        }
        long k = w->task ? task_of(p, w->task) : -1;
        int64_t v[NVALUES] = {0, 0, 1};
        long s = k >= 0 ? step_at(p->tl, k, w->ns) : -1;
        if (s >= 0 && !used[s] && !is_yields(&p->tl->steps[s])) {
            used[s] = 1;
            v[0] = 1;
            v[1] = (int64_t)(p->tl->steps[s].end - p->tl->steps[s].start);
        }
        int t = k >= 0 ? task_frames(p, k, locs + nl, TASK_DEPTH) : 0;
        sample(p, locs, nl + (t > 0 ? t : 0), v, k,
               cs_trace_warning_name(w->kind));
    }
}

static void task_samples(struct pprof *p, const uint8_t *used)
{
    for (size_t k = 0; k < p->tl->ntasks; k++) {
        const struct cli_tl_task *t = &p->tl->tasks[k];
        int64_t v[NVALUES] = {0, 0, 0};
        for (uint32_t i = t->first; i < t->first + t->nsteps; i++) {
            const struct cli_tl_step *s = &p->tl->steps[i];
            if (used[i])
                continue;
            if (is_yields(s)) {
                v[0] += (int64_t)s->target; /* steps, no time */
                continue;
            }
            v[0]++;
            v[1] += (int64_t)(s->end - s->start);
        }
        if (v[0] == 0)
            continue;
        uint64_t locs[TASK_DEPTH];
        int n = task_frames(p, (long)k, locs, TASK_DEPTH);
        if (n > 0)
            sample(p, locs, n, v, (long)k, NULL);
    }
}

static void value_type(struct pprof *p, unsigned field, const char *type,
                       const char *unit)
{
    int64_t t = string_id(p, type), u = string_id(p, unit);
    size_t m = cli_pb_begin(&p->out, field);
    cli_pb_varint(&p->out, VT_TYPE, (uint64_t)t);
    cli_pb_varint(&p->out, VT_UNIT, (uint64_t)u);
    cli_pb_end(&p->out, m);
}

static int build(struct pprof *p)
{
    struct cli_timeline *tl = p->tl;
    cli_pb_str(&p->str, P_STRING_TABLE, ""); /* index 0 is "" */
    p->next_string = 1;
    uint8_t *used = calloc(tl->nsteps + 1, 1);
    if (used == NULL) {
        free(used);
        return -ENOMEM;
    }
    value_type(p, P_SAMPLE_TYPE, "steps", "count");
    value_type(p, P_SAMPLE_TYPE, "cpu", "nanoseconds");
    value_type(p, P_SAMPLE_TYPE, "warnings", "count");
    value_type(p, P_PERIOD_TYPE, "cpu", "nanoseconds");
    cli_pb_varint(&p->out, P_PERIOD, 1);
    cli_pb_varint(&p->out, P_DEFAULT_SAMPLE_TYPE,
                  (uint64_t)string_id(p, "cpu"));
    cli_pb_varint(&p->out, P_TIME_NANOS, tl->info.realtime_anchor);
    cli_pb_varint(&p->out, P_DURATION_NANOS, tl->last_ns - tl->first_ns);
    char c[700], exe[CS_EXE_PATH_MAX];
    snprintf(exe, sizeof exe, "%s", tl->info.exe_path);
    snprintf(c, sizeof c, "coscope trace of %s (pid %d)", cli_sanitize(exe),
             tl->info.pid);
    cli_pb_varint(&p->out, P_COMMENT, (uint64_t)string_id(p, c));
    warning_samples(p, used);
    task_samples(p, used);
    free(used);
    int oom = p->out.oom | p->loc.oom | p->fn.oom | p->str.oom;
    return oom ? -ENOMEM : 0;
}

/* gzip (RFC 1952) of the three parts, in one deflate stream. */
static int gzip_to(FILE *f, struct cli_pb **parts, int n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    unsigned char buf[65536];
    int err = 0;
    for (int i = 0; i < n && err == 0; i++) {
        z.next_in = parts[i]->buf;
        z.avail_in = (uInt)parts[i]->len;
        int flush = i == n - 1 ? Z_FINISH : Z_NO_FLUSH, r;
        do {
            z.next_out = buf;
            z.avail_out = sizeof buf;
            r = deflate(&z, flush);
            size_t got = sizeof buf - z.avail_out;
            if (r == Z_STREAM_ERROR || fwrite(buf, 1, got, f) != got)
                err = -EIO;
        } while (err == 0 &&
                 (z.avail_in > 0 || (flush == Z_FINISH && r != Z_STREAM_END)));
    }
    deflateEnd(&z);
    return err;
}

int cli_tl_write_pprof(struct cli_timeline *tl, FILE *f)
{
    struct pprof p;
    memset(&p, 0, sizeof p);
    p.tl = tl;
    int err = build(&p);
    struct cli_pb *parts[] = {&p.out, &p.loc, &p.fn, &p.str};
    if (err == 0)
        err = gzip_to(f, parts, 4);
    for (int i = 0; i < 4; i++)
        cli_pb_release(parts[i]);
    dict_free(&p.strings);
    dict_free(&p.funcs);
    dict_free(&p.locs);
    return err;
}

/* ---- frames shared with export_perfetto.c -------------------------------- */

/* coscope's own code: the runtime and agent (cs_ names, libcoscope*). */
static int ours(const struct cli_frame *f)
{
    return strncmp(f->func, "cs_", 3) == 0 ||
           strncmp(f->module, "libcoscope", 10) == 0;
}

int cli_export_frames(struct cli_timeline *tl, uint32_t id,
                      struct cli_frame *fr, int cap)
{
    uint64_t ips[CS_STACK_MAX];
    if (id == 0)
        return 0;
    if (!tl->sym_tried) {
        tl->sym_tried = 1;
        tl->sym = cli_symbols_for_trace(tl->t);
    }
    int d = cs_trace_stack(tl->t, id, ips, CS_STACK_MAX);
    if (d <= 0)
        return 0;
    if (d > cap)
        d = cap;
    for (int k = 0; k < d; k++)
        cli_symbolize(tl->sym, ips[k], k > 0, &fr[k]);
    /* coscope's frames at either end: the interposer's wrapper inside,
     * the task's entry outside (what the agent leaves out of reports) */
    int begin = 0, end = d;
    while (begin < end && ours(&fr[begin]))
        begin++;
    while (end > begin && ours(&fr[end - 1]))
        end--;
    if (begin == end) { /* all ours: keep them */
        begin = 0;
        end = d;
    }
    memmove(fr, fr + begin, (size_t)(end - begin) * sizeof *fr);
    return end - begin;
}
