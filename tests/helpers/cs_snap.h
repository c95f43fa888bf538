/*
 * cs_snap.h - reading a trace's task table in the tests of the runtime's
 * trace (test_trace_runtime.c, test_trace_process.c): a snapshot of every
 * live task with its name, and lookups that fail the test when a task is
 * missing.  Through the reader API (coscope/trace.h) only.
 */
#ifndef CS_TEST_SNAP_H
#define CS_TEST_SNAP_H

#include "cs_test.h"

#include <coscope/trace.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SEEN 64

typedef struct seen_task {
    char name[64];
    cs_trace_task t;
} seen_task;

typedef struct snapshot {
    int rc; /* first reader error, 0 if none */
    size_t n;
    seen_task task[MAX_SEEN];
} snapshot;

/* Copies every live task of trace tr into *s. */
static inline void snap_tasks(cs_trace *tr, snapshot *s)
{
    uint32_t iter = 0;
    cs_trace_task t;
    int rc;

    s->n = 0;
    while ((rc = cs_trace_task_next(tr, &iter, &t)) == 1) {
        if (s->n == MAX_SEEN)
            break;
        s->task[s->n].t = t;
        if (cs_trace_string(tr, t.name, s->task[s->n].name,
                            sizeof s->task[s->n].name) < 0)
            strcpy(s->task[s->n].name, "?");
        s->n++;
    }
    if (rc < 0 && !s->rc)
        s->rc = rc;
}

static inline const cs_trace_task *find(const snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->task[i].name, name) == 0)
            return &s->task[i].t;
    return NULL;
}

static inline const cs_trace_task *must_find(const snapshot *s,
                                             const char *name)
{
    const cs_trace_task *t = find(s, name);
    if (!t)
        fail_msg("task '%s' not in the task table (%zu tasks)", name, s->n);
    return t;
}

static inline void assert_parked(const cs_trace_task *t)
{
    assert_true(t->flags & CS_TASKF_REGS_VALID);
    assert_true(t->sp != 0);
    assert_true(t->ip != 0);
}

/* Makes a new empty file from tmpl (mkstemp's "...XXXXXX"), whose name
 * tmpl then holds; the caller removes it. */
static inline void snap_tmp_file(char *tmpl)
{
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    close(fd);
}

/* What snap_count_events() adds up: a count for one event. */
typedef int snap_count_fn(const cs_trace_event *e, const void *arg);

/* Reads every ring of tr from its start: the sum of count(e, arg) over
 * its events; the events each ring's last read said were lost add up in
 * *lost (when not NULL). */
static inline int snap_count_events(cs_trace *tr, snap_count_fn *count,
                                    const void *arg, uint64_t *lost_out)
{
    static cs_trace_event ev[4096];
    cs_trace_info info;
    int sum = 0;
    assert_rc(cs_trace_info_get(tr, &info), 0);
    for (uint32_t r = 0; r < info.ring_count; r++) {
        uint64_t cursor = 0, lost = 0;
        size_t k;
        do {
            assert_rc(cs_trace_read(tr, r, &cursor, ev, 4096, &k, &lost), 0);
            for (size_t i = 0; i < k; i++)
                sum += count(&ev[i], arg);
        } while (k > 0);
        if (lost_out)
            *lost_out += lost;
    }
    return sum;
}

#endif
