/*
 * export_perfetto.c - `coscope export FILE --format perfetto`: a trace
 * file as Perfetto's native protobuf trace (a stream of TracePacket, the
 * format ui.perfetto.dev and trace_processor read), so that no JSON
 * conversion stands between a recording and Perfetto's SQL.
 *
 * What is written (field numbers from google/perfetto's
 * protos/perfetto/trace/; the subset we use is tests/fleet/
 * perfetto_subset.proto, which the tests decode our output with):
 *   - TrackDescriptor packets: the process; one thread track per ring
 *     that ran a loop ("loop N"; a trace file keeps no thread ids, so the
 *     tid is made up); under each one track per task it ran ("NAME (task
 *     ID)"), and two counter tracks;
 *   - TrackEvent slices (SLICE_BEGIN/SLICE_END) for every step, named by
 *     the task, with debug annotations "reason" (why it stopped) and
 *     "waited_on"; the loop's time in epoll_wait as "epoll_wait" slices
 *     on its thread track; a yield batch as one "yields" slice per task;
 *   - flows: from the last step of an awaited task to the step of its
 *     awaiter that resumed, and from a lock holder's step that released
 *     the lock (its last step before the waiter resumed) to the waiter;
 *   - counters per loop: "ready tasks" (the steps each iteration ran:
 *     the tasks ready at its start and those they woke; 0 while polling)
 *     and "loop lag" (ns from one poll's end to the next poll's start:
 *     how long a new event waited at worst to be noticed);
 *   - warnings as instant events with their stack (InlineCallstack, and
 *     a "stack" annotation for viewers that predate it);
 *   - names interned: event names and annotation names are sent once, as
 *     InternedData, and referred to by iid (the sequence starts with
 *     SEQ_INCREMENTAL_STATE_CLEARED).
 * Timestamps are the writer's CLOCK_MONOTONIC ns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "proto.h"

/* Field numbers (perfetto/trace/...). */
enum {
    TRACE_PACKET = 1,
    /* TracePacket */
    TP_TIMESTAMP = 8,
    TP_SEQUENCE_ID = 10,
    TP_TRACK_EVENT = 11,
    TP_INTERNED_DATA = 12,
    TP_SEQUENCE_FLAGS = 13,
    TP_TRACK_DESCRIPTOR = 60,
    SEQ_INCREMENTAL_STATE_CLEARED = 1,
    SEQ_NEEDS_INCREMENTAL_STATE = 2,
    /* TrackDescriptor */
    TD_UUID = 1,
    TD_NAME = 2,
    TD_PROCESS = 3,
    TD_THREAD = 4,
    TD_PARENT_UUID = 5,
    TD_COUNTER = 8,
    PD_PID = 1,
    PD_PROCESS_NAME = 6, /* ProcessDescriptor */
    THD_PID = 1,
    THD_TID = 2,
    THD_THREAD_NAME = 5, /* ThreadDescriptor */
    CD_UNIT = 3,
    CD_UNIT_NAME = 6, /* CounterDescriptor */
    UNIT_COUNT = 2,
    UNIT_TIME_NS = 1,
    /* TrackEvent */
    TE_DEBUG_ANNOTATIONS = 4,
    TE_TYPE = 9,
    TE_NAME_IID = 10,
    TE_TRACK_UUID = 11,
    TE_COUNTER_VALUE = 30,
    TE_FLOW_IDS = 47,
    TE_TERMINATING_FLOW_IDS = 48,
    TE_CALLSTACK = 55,
    TYPE_SLICE_BEGIN = 1,
    TYPE_SLICE_END = 2,
    TYPE_INSTANT = 3,
    TYPE_COUNTER = 4,
    CS_FRAMES = 1,
    FR_FUNCTION_NAME = 1,
    FR_SOURCE_FILE = 2,
    FR_LINE_NUMBER = 3, /* InlineCallstack, its Frame */
    /* DebugAnnotation */
    DA_NAME_IID = 1,
    DA_UINT_VALUE = 3,
    DA_STRING_VALUE = 6,
    /* InternedData, EventName, DebugAnnotationName */
    ID_EVENT_NAMES = 2,
    ID_DEBUG_ANNOTATION_NAMES = 3,
    IN_IID = 1,
    IN_NAME = 2,
};

#define SEQ 1 /* our one packet sequence */
#define UUID_PROCESS 1ull
#define UUID_LOOP(r) (0x100ull + (r))
#define UUID_READY(r) (0x10000ull + (r))
#define UUID_LAG(r) (0x20000ull + (r))
#define UUID_TASK(id) ((1ull << 40) + (id))

/* Interned names, by text. */
struct names {
    char **v; /* v[iid - 1] */
    size_t n, cap;
    uint64_t *slot; /* open addressing on the text: iid, 0 empty */
    size_t slots;
};

struct pf {
    struct cli_timeline *tl;
    FILE *f;
    struct cli_pb pkt, out;
    struct names ev, ann; /* event names, annotation names */
    int err;
    uint64_t flow;      /* last flow id */
    uint64_t *flow_out; /* per step: flow starting at it, 0 none */
    uint64_t *flow_in;  /* per step: flow ending at it */
};

static uint64_t hs(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The iid of s; *fresh says it was just made (to be sent). 0: no memory. */
static uint64_t intern(struct names *t, const char *s, int *fresh)
{
    *fresh = 0;
    if (t->n * 2 >= t->slots) {
        size_t slots = t->slots ? 2 * t->slots : 256;
        uint64_t *g = calloc(slots, sizeof *g);
        if (g == NULL)
            return 0;
        for (size_t i = 0; i < t->n; i++) {
            size_t j = hs(t->v[i]) & (slots - 1);
            while (g[j])
                j = (j + 1) & (slots - 1);
            g[j] = i + 1;
        }
        free(t->slot);
        t->slot = g;
        t->slots = slots;
    }
    size_t j = hs(s) & (t->slots - 1);
    for (; t->slot[j]; j = (j + 1) & (t->slots - 1))
        if (strcmp(t->v[t->slot[j] - 1], s) == 0)
            return t->slot[j];
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **g = realloc(t->v, cap * sizeof *g);
        if (g == NULL)
            return 0;
        t->v = g;
        t->cap = cap;
    }
    if ((t->v[t->n] = strdup(s)) == NULL)
        return 0;
    t->slot[j] = ++t->n;
    *fresh = 1;
    return t->n;
}

static void names_free(struct names *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    free(t->slot);
}

/* Ends the packet being built: appends it to the stream as Trace.packet
 * and writes the stream out when it has grown. */
static void packet_done(struct pf *p)
{
    cli_pb_bytes(&p->out, TRACE_PACKET, p->pkt.buf, p->pkt.len);
    cli_pb_clear(&p->pkt);
    if (p->pkt.oom || p->out.oom)
        p->err = -ENOMEM;
    if (p->err == 0 && p->out.len >= (1u << 20)) {
        if (fwrite(p->out.buf, 1, p->out.len, p->f) != p->out.len)
            p->err = -EIO;
        cli_pb_clear(&p->out);
    }
}

/* Starts a packet at ts on our sequence. */
static void packet(struct pf *p, uint64_t ts, unsigned flags)
{
    if (ts)
        cli_pb_varint(&p->pkt, TP_TIMESTAMP, ts);
    cli_pb_varint(&p->pkt, TP_SEQUENCE_ID, SEQ);
    cli_pb_varint(&p->pkt, TP_SEQUENCE_FLAGS, flags);
}

/* Interns an event name (and an annotation name) for the packet being
 * built, adding InternedData for the new ones; returns their iids. */
static uint64_t names_for(struct pf *p, const char *event, const char *ann,
                          uint64_t *ann_iid)
{
    int fe = 0, fa = 0;
    uint64_t e = event ? intern(&p->ev, event, &fe) : 0;
    uint64_t a = ann ? intern(&p->ann, ann, &fa) : 0;
    if ((event && e == 0) || (ann && a == 0))
        p->err = -ENOMEM;
    if (fe || fa) {
        size_t m = cli_pb_begin(&p->pkt, TP_INTERNED_DATA);
        if (fe) {
            size_t k = cli_pb_begin(&p->pkt, ID_EVENT_NAMES);
            cli_pb_varint(&p->pkt, IN_IID, e);
            cli_pb_str(&p->pkt, IN_NAME, event);
            cli_pb_end(&p->pkt, k);
        }
        if (fa) {
            size_t k = cli_pb_begin(&p->pkt, ID_DEBUG_ANNOTATION_NAMES);
            cli_pb_varint(&p->pkt, IN_IID, a);
            cli_pb_str(&p->pkt, IN_NAME, ann);
            cli_pb_end(&p->pkt, k);
        }
        cli_pb_end(&p->pkt, m);
    }
    if (ann_iid)
        *ann_iid = a;
    return e;
}

/* An annotation name's iid, interning it (InternedData) if new. */
static uint64_t ann_name(struct pf *p, const char *name)
{
    uint64_t a;
    names_for(p, NULL, name, &a);
    return a;
}

static void annotation_str(struct pf *p, uint64_t iid, const char *v)
{
    size_t m = cli_pb_begin(&p->pkt, TE_DEBUG_ANNOTATIONS);
    cli_pb_varint(&p->pkt, DA_NAME_IID, iid);
    cli_pb_str(&p->pkt, DA_STRING_VALUE, v);
    cli_pb_end(&p->pkt, m);
}

/* ---- tracks --------------------------------------------------------------
 */

static void track(struct pf *p, uint64_t uuid, uint64_t parent,
                  const char *name)
{
    packet(p, 0, 0);
    size_t m = cli_pb_begin(&p->pkt, TP_TRACK_DESCRIPTOR);
    cli_pb_varint(&p->pkt, TD_UUID, uuid);
    if (parent)
        cli_pb_varint(&p->pkt, TD_PARENT_UUID, parent);
    if (name)
        cli_pb_str(&p->pkt, TD_NAME, name);
    cli_pb_end(&p->pkt, m);
    packet_done(p);
}

/* A ring that recorded something: a loop thread (the segment has room
 * for more rings than a program uses). */
static int ring_used(struct cli_timeline *tl, uint32_t r)
{
    cs_trace_ring ring;
    if (cs_trace_ring_get(tl->t, r, &ring) == 0 && ring.head > 0)
        return 1;
    for (size_t k = 0; k < tl->ntasks; k++)
        if (tl->tasks[k].ring == r)
            return 1;
    return 0;
}

static void write_tracks(struct pf *p)
{
    struct cli_timeline *tl = p->tl;
    char exe[CS_EXE_PATH_MAX], label[640];
    const char *slash = strrchr(tl->info.exe_path, '/');
    snprintf(exe, sizeof exe, "%s", slash ? slash + 1 : tl->info.exe_path);
    cli_sanitize(exe);
    packet(p, 0, SEQ_INCREMENTAL_STATE_CLEARED);
    size_t m = cli_pb_begin(&p->pkt, TP_TRACK_DESCRIPTOR);
    cli_pb_varint(&p->pkt, TD_UUID, UUID_PROCESS);
    size_t d = cli_pb_begin(&p->pkt, TD_PROCESS);
    cli_pb_varint(&p->pkt, PD_PID, (uint64_t)tl->info.pid);
    cli_pb_str(&p->pkt, PD_PROCESS_NAME, exe);
    cli_pb_end(&p->pkt, d);
    cli_pb_end(&p->pkt, m);
    packet_done(p);
    for (uint32_t r = 0; r < tl->info.ring_count; r++) {
        cs_trace_ring ring;
        if (!ring_used(tl, r))
            continue;
        /* a trace file keeps no ring's thread id: a made-up one, unique
         * in the process, keeps each loop a thread track of its own */
        uint64_t tid = cs_trace_ring_get(tl->t, r, &ring) == 0 && ring.tid
                           ? ring.tid
                           : (uint64_t)tl->info.pid * 1000 + r;
        snprintf(label, sizeof label, "loop %u", r);
        packet(p, 0, 0);
        m = cli_pb_begin(&p->pkt, TP_TRACK_DESCRIPTOR);
        cli_pb_varint(&p->pkt, TD_UUID, UUID_LOOP(r));
        cli_pb_varint(&p->pkt, TD_PARENT_UUID, UUID_PROCESS);
        d = cli_pb_begin(&p->pkt, TD_THREAD);
        cli_pb_varint(&p->pkt, THD_PID, (uint64_t)tl->info.pid);
        cli_pb_varint(&p->pkt, THD_TID, tid);
        cli_pb_str(&p->pkt, THD_THREAD_NAME, label);
        cli_pb_end(&p->pkt, d);
        cli_pb_end(&p->pkt, m);
        packet_done(p);
        static const struct {
            const char *name, *unit;
            int kind;
        } ctr[2] = {{"ready tasks", "tasks", UNIT_COUNT},
                    {"loop lag", NULL, UNIT_TIME_NS}};
        for (int c = 0; c < 2; c++) {
            snprintf(label, sizeof label, "loop %u %s", r, ctr[c].name);
            packet(p, 0, 0);
            m = cli_pb_begin(&p->pkt, TP_TRACK_DESCRIPTOR);
            cli_pb_varint(&p->pkt, TD_UUID, c ? UUID_LAG(r) : UUID_READY(r));
            cli_pb_varint(&p->pkt, TD_PARENT_UUID, UUID_LOOP(r));
            cli_pb_str(&p->pkt, TD_NAME, label);
            d = cli_pb_begin(&p->pkt, TD_COUNTER);
            cli_pb_varint(&p->pkt, CD_UNIT, (uint64_t)ctr[c].kind);
            if (ctr[c].unit)
                cli_pb_str(&p->pkt, CD_UNIT_NAME, ctr[c].unit);
            cli_pb_end(&p->pkt, d);
            cli_pb_end(&p->pkt, m);
            packet_done(p);
        }
    }
    for (size_t k = 0; k < tl->ntasks; k++) {
        char n[256];
        const struct cli_tl_task *t = &tl->tasks[k];
        snprintf(label, sizeof label, "%s (task %llu)",
                 cli_tl_task_name(tl, (long)k, n, sizeof n),
                 (unsigned long long)t->id);
        track(p, UUID_TASK(t->id),
              t->ring < tl->info.ring_count ? UUID_LOOP(t->ring)
                                            : UUID_PROCESS,
              label);
    }
}

/* ---- flows -------------------------------------------------------------- */

/* Links each resumed step to the step that let it run: the end of a task
 * it awaited, or the lock holder's step that released the lock. */
static int find_flows(struct pf *p)
{
    struct cli_timeline *tl = p->tl;
    p->flow_out = calloc(tl->nsteps + 1, sizeof *p->flow_out);
    p->flow_in = calloc(tl->nsteps + 1, sizeof *p->flow_in);
    if (p->flow_out == NULL || p->flow_in == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < tl->ntasks; k++) {
        const struct cli_tl_task *t = &tl->tasks[k];
        for (uint32_t i = t->first; i + 1 < t->first + t->nsteps; i++) {
            const struct cli_tl_step *s = &tl->steps[i];
            uint64_t from_id = s->reason == CS_WAIT_TASK   ? s->target
                               : s->reason == CS_WAIT_LOCK ? s->aux
                                                           : 0;
            if (!s->has_target || from_id == 0)
                continue;
            long from = cli_tl_task_index(tl, from_id);
            if (from < 0)
                continue;
            long src = cli_tl_last_step(tl, from, tl->steps[i + 1].start, 1);
            /* a slice starts one flow (and may end one) */
            if (src < 0 || p->flow_out[src] || p->flow_in[i + 1] ||
                tl->steps[src].end < s->end)
                continue;
            p->flow_out[src] = p->flow_in[i + 1] = ++p->flow;
        }
    }
    return 0;
}

/* ---- events ------------------------------------------------------------- */

static void event(struct pf *p, uint64_t ts, uint64_t track, unsigned type,
                  uint64_t name_iid)
{
    cli_pb_varint(&p->pkt, TE_TYPE, type);
    cli_pb_varint(&p->pkt, TE_TRACK_UUID, track);
    if (name_iid)
        cli_pb_varint(&p->pkt, TE_NAME_IID, name_iid);
    (void)ts;
}

static void slice_end(struct pf *p, uint64_t ts, uint64_t track)
{
    packet(p, ts, SEQ_NEEDS_INCREMENTAL_STATE);
    size_t m = cli_pb_begin(&p->pkt, TP_TRACK_EVENT);
    event(p, ts, track, TYPE_SLICE_END, 0);
    cli_pb_end(&p->pkt, m);
    packet_done(p);
}

static void write_steps(struct pf *p)
{
    struct cli_timeline *tl = p->tl;
    char name[256], wait[512];
    for (size_t k = 0; k < tl->ntasks && p->err == 0; k++) {
        const struct cli_tl_task *t = &tl->tasks[k];
        uint64_t track = UUID_TASK(t->id), prev_end = 0;
        cli_tl_task_name(tl, (long)k, name, sizeof name);
        for (uint32_t i = t->first; i < t->first + t->nsteps; i++) {
            const struct cli_tl_step *s = &tl->steps[i];
            int yields = s->batched && s->reason == CS_WAIT_YIELD;
            /* a batch's slice spans the batch: keep a track's slices
             * apart so that they nest as Perfetto wants */
            uint64_t start = s->start < prev_end ? prev_end : s->start;
            if (s->end <= start && s->end != s->start)
                continue;
            prev_end = s->end;
            packet(p, start, SEQ_NEEDS_INCREMENTAL_STATE);
            uint64_t ev = names_for(p, yields ? "yields" : name, NULL, NULL);
            uint64_t reason = ann_name(p, "reason");
            uint64_t waited = ann_name(p, "waited_on");
            size_t m = cli_pb_begin(&p->pkt, TP_TRACK_EVENT);
            event(p, start, track, TYPE_SLICE_BEGIN, ev);
            annotation_str(p, reason, cs_trace_wait_name(s->reason));
            cli_tl_wait_text(tl, s, wait, sizeof wait);
            if (wait[0] && !yields)
                annotation_str(p, waited, wait);
            if (p->flow_out[i])
                cli_pb_fixed64(&p->pkt, TE_FLOW_IDS, p->flow_out[i]);
            if (p->flow_in[i])
                cli_pb_fixed64(&p->pkt, TE_TERMINATING_FLOW_IDS,
                               p->flow_in[i]);
            cli_pb_end(&p->pkt, m);
            packet_done(p);
            slice_end(p, s->end, track);
        }
    }
}

static void write_idle(struct pf *p)
{
    for (size_t i = 0; i < p->tl->nidle && p->err == 0; i++) {
        const struct cli_tl_idle *d = &p->tl->idle[i];
        packet(p, d->start, SEQ_NEEDS_INCREMENTAL_STATE);
        uint64_t ev = names_for(p, "epoll_wait", NULL, NULL);
        size_t m = cli_pb_begin(&p->pkt, TP_TRACK_EVENT);
        event(p, d->start, UUID_LOOP(d->ring), TYPE_SLICE_BEGIN, ev);
        cli_pb_end(&p->pkt, m);
        packet_done(p);
        slice_end(p, d->end, UUID_LOOP(d->ring));
    }
}

static void counter(struct pf *p, uint64_t ts, uint64_t track, int64_t v)
{
    packet(p, ts, SEQ_NEEDS_INCREMENTAL_STATE);
    size_t m = cli_pb_begin(&p->pkt, TP_TRACK_EVENT);
    event(p, ts, track, TYPE_COUNTER, 0);
    cli_pb_varint(&p->pkt, TE_COUNTER_VALUE, (uint64_t)v);
    cli_pb_end(&p->pkt, m);
    packet_done(p);
}

/* Reads each ring's steps and iterations again.  An iteration's count is
 * the steps it ran between two polls: the tasks ready when it began and
 * those they made ready (the loop runs both before it polls), so the most
 * the ready queue held in it.  An iteration that skipped the poll is
 * stamped with the last poll's end: it is placed at its last step's end
 * instead, and so is the first, stamped before any poll. */
static void write_counters(struct pf *p)
{
    struct cli_timeline *tl = p->tl;
    cs_trace_event ev[1024];
    for (uint32_t r = 0; r < tl->info.ring_count && p->err == 0; r++) {
        uint64_t cursor = 0, lost, ready = 0, run_from = 0, last = 0;
        size_t n;
        do {
            n = 0;
            lost = 0;
            if (cs_trace_read(tl->t, r, &cursor, ev, 1024, &n, &lost) != 0)
                break;
            for (size_t i = 0; i < n && p->err == 0; i++) {
                uint64_t ns = cs_trace_ns(tl->t, ev[i].ts);
                uint64_t ticks =
                    cs_trace_ticks_ns(tl->t, cs_trace_event_ticks(&ev[i]));
                if (ev[i].type == CS_EV_STEP || ev[i].type == CS_EV_YIELDS) {
                    ready += ev[i].type == CS_EV_STEP ? 1 : ev[i].arg;
                    if (run_from == 0 && ev[i].type == CS_EV_STEP)
                        run_from = ticks < ns ? ns - ticks : ns;
                    last = ns > last ? ns : last;
                }
                if (ev[i].type != CS_EV_LOOP_ITER)
                    continue;
                uint64_t end = ns, poll = ticks < end ? end - ticks : end;
                if (ticks == 0 && end < last)
                    end = poll = last;
                if (run_from && run_from <= poll && ready > 0) {
                    counter(p, run_from, UUID_READY(r), (int64_t)ready);
                    counter(p, poll, UUID_READY(r), 0);
                    counter(p, poll, UUID_LAG(r), (int64_t)(poll - run_from));
                }
                ready = 0;
                run_from = end;
            }
        } while (n > 0 && p->err == 0);
    }
}

static void write_warnings(struct pf *p)
{
    struct cli_timeline *tl = p->tl;
    for (size_t i = 0; i < tl->nwarnings && p->err == 0; i++) {
        const struct cli_tl_warning *w = &tl->warnings[i];
        char name[64], stack[4096] = "";
        struct cli_frame fr[CLI_STACK_MAX];
        int d = cli_export_frames(tl, w->stack, fr, CLI_STACK_MAX);
        snprintf(name, sizeof name, "warning: %s",
                 cs_trace_warning_name(w->kind));
        uint64_t track = w->task_index >= 0
                             ? UUID_TASK(tl->tasks[w->task_index].id)
                             : UUID_LOOP(w->ring);
        packet(p, w->ns, SEQ_NEEDS_INCREMENTAL_STATE);
        uint64_t ev = names_for(p, name, NULL, NULL);
        uint64_t kind = ann_name(p, "kind"), st = ann_name(p, "stack");
        size_t m = cli_pb_begin(&p->pkt, TP_TRACK_EVENT);
        event(p, w->ns, track, TYPE_INSTANT, ev);
        annotation_str(p, kind, cs_trace_warning_name(w->kind));
        size_t c = d > 0 ? cli_pb_begin(&p->pkt, TE_CALLSTACK) : 0;
        for (int k = 0; k < d; k++) {
            char fn[160];
            size_t used = strlen(stack);
            cli_frame_name(&fr[k], fn, sizeof fn);
            size_t f = cli_pb_begin(&p->pkt, CS_FRAMES);
            cli_pb_str(&p->pkt, FR_FUNCTION_NAME, fn);
            if (fr[k].file[0])
                cli_pb_str(&p->pkt, FR_SOURCE_FILE, fr[k].file);
            if (fr[k].line > 0)
                cli_pb_varint(&p->pkt, FR_LINE_NUMBER, (uint64_t)fr[k].line);
            cli_pb_end(&p->pkt, f);
            snprintf(stack + used, sizeof stack - used, "%s%s", k ? "\n" : "",
                     fn);
        }
        if (d > 0) {
            cli_pb_end(&p->pkt, c);
            annotation_str(p, st, stack);
        }
        cli_pb_end(&p->pkt, m);
        packet_done(p);
    }
}

int cli_tl_write_perfetto(struct cli_timeline *tl, FILE *f)
{
    struct pf p;
    memset(&p, 0, sizeof p);
    p.tl = tl;
    p.f = f;
    p.err = find_flows(&p);
    if (p.err == 0)
        write_tracks(&p);
    if (p.err == 0)
        write_steps(&p);
    if (p.err == 0)
        write_idle(&p);
    if (p.err == 0)
        write_counters(&p);
    if (p.err == 0)
        write_warnings(&p);
    if (p.err == 0 && p.out.len > 0 &&
        fwrite(p.out.buf, 1, p.out.len, f) != p.out.len)
        p.err = -EIO;
    cli_pb_release(&p.pkt);
    cli_pb_release(&p.out);
    names_free(&p.ev);
    names_free(&p.ann);
    free(p.flow_out);
    free(p.flow_in);
    return p.err;
}
