/*
 * coscope/trace.h - reading coscope traces: the live shared-memory segment
 * of a running process (/dev/shm/coscope.<pid>) or a trace file.
 *
 * Every byte read is treated as hostile: the writer may be running,
 * killed mid-write, or not coscope at all.  Offsets, lengths and counts are
 * checked against the input size before use; a bad input gives
 * CS_TRACE_ECORRUPT (with cs_trace_error_detail() saying what and where),
 * never an out-of-bounds read.  One limit: a live segment is mapped, so if
 * another process of the same user truncates it while it is mapped, reads
 * fault (SIGBUS); trace files are read with pread() and have no such limit.
 *
 * The reader never locks and never writes to the segment.  A cs_trace is
 * not thread-safe: use one per thread.
 *
 * Errors are 0 or negative: a negated errno (-ENOENT, -EACCES, -ESRCH,
 * -ENOMEM, -EINVAL, -EAGAIN, -EPERM) or one of the codes below.
 *
 * Depends on nothing of coscope's but coscope/trace_format.h and
 * coscope/export.h.
 */
#ifndef COSCOPE_TRACE_H
#define COSCOPE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "coscope/trace_format.h"

#include "coscope/export.h" /* CS_EXTERN */

#ifdef __cplusplus
extern "C" {
#endif


/* Same values as CS_ECORRUPT and CS_EVERSION in coscope.h (a
 * _Static_assert in agent/agent.h, which sees both, ties them). */
#define CS_TRACE_ECORRUPT (-4004) /* input is corrupt or not a trace */
#define CS_TRACE_EVERSION (-4005) /* unsupported major version or byte order */

typedef struct cs_trace cs_trace;

/* What the header says, validated. */
typedef struct cs_trace_info {
    int is_file;         /* 1 for trace files */
    int pid;             /* writer process */
    uint64_t start_time; /* /proc/PID/stat field 22 of the writer */
    unsigned version_major, version_minor;
    unsigned clock;                 /* CS_CLOCK_TSC or CS_CLOCK_MONOTONIC */
    uint32_t flags;                 /* CS_SEG_F_* */
    uint64_t tick_hz;               /* ticks per second */
    uint64_t realtime_anchor;       /* wall clock (ns) at tsc_anchor */
    uint32_t ring_count;            /* rings (iterate 0..ring_count-1) */
    uint32_t ring_slots;            /* records per ring */
    uint32_t task_slots;            /* task table size (file: slots saved) */
    char exe_path[CS_EXE_PATH_MAX]; /* NUL-terminated */
    uint8_t build_id[CS_BUILD_ID_MAX];
    uint32_t build_id_len;
    /* live counters (read at the time of the call) */
    uint64_t tasks_hwm, tasks_dropped, strings_dropped, stacks_dropped;
    uint64_t warnings, rings_dropped;
    /* trace files only */
    int complete;         /* an END chunk was reached */
    uint64_t valid_bytes; /* bytes up to the last whole chunk */
} cs_trace_info;

/* One ring's header (live), or what a file knows of it. */
typedef struct cs_trace_ring {
    uint32_t tid;        /* writer thread */
    uint32_t state;      /* CS_RING_* */
    uint64_t head;       /* records written so far (file: last seq) */
    uint64_t step_start; /* clock value the current step began, 0 idle */
    uint64_t step_task;  /* task running now */
    uint64_t iterations; /* loop iterations */
    uint64_t switches;   /* untimed switches since step_start (yield
                            batches): 0, the running step began at
                            step_start; more, later */
    uint64_t window_seq; /* file of `coscope record PID`: its records up
                            to this seq were in the rings before the
                            recording began; 0 none (live: 0) */
} cs_trace_ring;

/* One event. */
typedef struct cs_trace_event {
    uint64_t seq;     /* 1-based sequence number within its ring */
    uint64_t ts;      /* clock value; cs_trace_ns() converts */
    uint64_t task_id; /* subject (see enum cs_event_type) */
    uint32_t arg;     /* see enum cs_event_type */
    uint8_t type;     /* enum cs_event_type (may be unknown: newer writer) */
    uint8_t reason;   /* wait reason, stop reason or warning kind */
    uint16_t flags;   /* CS_RECF_* */
    uint32_t ring;    /* ring it came from */
} cs_trace_event;

/* One task (a consistent copy of its slot). */
typedef struct cs_trace_task {
    uint32_t slot;        /* slot index */
    uint32_t gen;         /* slot generation */
    uint64_t id;          /* task id */
    uint32_t name, site;  /* string ids (cs_trace_string) */
    uint8_t state;        /* enum cs_task_state */
    uint8_t wait;         /* enum cs_wait_reason */
    uint16_t flags;       /* CS_TASKF_* */
    uint64_t wait_target; /* per wait reason, see trace_format.h */
    uint64_t wait_aux;
    uint64_t awaiter; /* task awaiting this one, 0 none */
    uint64_t parent;  /* creating task, 0 none */
    uint64_t created; /* clock values */
    uint64_t last_run;
    uint64_t steps;
    uint64_t run_ticks;  /* total run time in ticks */
    uint64_t sp, fp, ip; /* saved registers when CS_TASKF_REGS_VALID */
    uint32_t ring;       /* owning loop's ring */
} cs_trace_task;

/* One object loaded in the writer (module table, format minor 1). */
typedef struct cs_trace_module {
    uint64_t base;         /* load bias: runtime address = ELF vaddr + base */
    uint64_t start, end;   /* runtime range of its PT_LOAD segments */
    uint32_t flags;        /* CS_MODF_* */
    uint32_t build_id_len; /* 0 if it has no GNU build id */
    uint8_t build_id[CS_BUILD_ID_MAX];
    char path[CS_MODULE_PATH_MAX]; /* NUL-terminated; as the writer saw it */
} cs_trace_module;

/* Opens the live segment of process pid.  -ENOENT if it has none, -EACCES
 * if it belongs to another user or is not mode 0600, -EPERM if its owner is
 * neither the process's user nor root (planted: the detail names both
 * uids), -EINVAL if it is not a regular file, -EAGAIN if it is still
 * being initialised, CS_TRACE_ECORRUPT / CS_TRACE_EVERSION if invalid.
 * A segment that shrinks while open reads as CS_TRACE_ECORRUPT from then
 * on; it never raises SIGBUS. */
CS_EXTERN int cs_trace_open_pid(int pid, cs_trace **out);
/* Opens a segment by path (same checks; the pid comes from its header). */
CS_EXTERN int cs_trace_open_segment(const char *path, cs_trace **out);
/* Opens a trace file.  A truncated file opens and reads up to its last
 * whole chunk (cs_trace_info: complete == 0). */
CS_EXTERN int cs_trace_open_file(const char *path, cs_trace **out);
/* Releases t (NULL is fine). */
CS_EXTERN void cs_trace_close(cs_trace *t);

/* Copies the header information into *info. */
CS_EXTERN int cs_trace_info_get(cs_trace *t, cs_trace_info *info);
/* Ring r's header; -EINVAL if r >= ring_count. */
CS_EXTERN int cs_trace_ring_get(cs_trace *t, uint32_t r, cs_trace_ring *out);

/* Clock value -> CLOCK_MONOTONIC ns of the writer's machine. */
CS_EXTERN uint64_t cs_trace_ns(const cs_trace *t, uint64_t ts);
/* Tick duration -> ns. */
CS_EXTERN uint64_t cs_trace_ticks_ns(const cs_trace *t, uint64_t ticks);
/* The duration an event's arg holds (CS_EV_STEP, CS_EV_LOOP_ITER), ticks. */
CS_EXTERN uint64_t cs_trace_event_ticks(const cs_trace_event *ev);

/*
 * Reads ring r's events after *cursor (the seq of the last event consumed
 * or lost; start with 0) into ev[0..cap).  Sets *n to the events copied and
 * adds to *lost the events overwritten before they could be read, and
 * advances *cursor, so that over any sequence of calls records received +
 * lost == the ring's head at the last call.  A compact record (format
 * minor 5) comes out as the events it stands for, which share its seq
 * (count a record per new seq); it is never split: with room in ev for
 * fewer of its events (at most CS_EV_EXPAND_MAX) the read stops before
 * it.  Returns 0 or a negative code.
 */
CS_EXTERN int cs_trace_read(cs_trace *t, uint32_t r, uint64_t *cursor,
                            cs_trace_event *ev, size_t cap, size_t *n,
                            uint64_t *lost);

/*
 * Iterates tasks: *iter starts at 0.  Returns 1 with the next live task in
 * *out, 0 at the end, or a negative code.  A slot that changes on every one
 * of a bounded number of retries is skipped (cs_trace_tasks_skipped).
 */
CS_EXTERN int cs_trace_task_next(cs_trace *t, uint32_t *iter,
                                 cs_trace_task *out);
CS_EXTERN uint64_t cs_trace_tasks_skipped(const cs_trace *t);

/* Copies string id into buf (always NUL-terminated, truncated to cap - 1).
 * Returns its full length, or CS_TRACE_ECORRUPT / -ENOENT (id 0 or not yet
 * written) / -EINVAL. */
CS_EXTERN int cs_trace_string(cs_trace *t, uint32_t id, char *buf, size_t cap);
/* Copies up to cap IPs of stack id into ips; returns the stack's depth or
 * a negative code. */
CS_EXTERN int cs_trace_stack(cs_trace *t, uint32_t id, uint64_t *ips,
                             size_t cap);

/*
 * Iterates the writer's loaded objects: *iter starts at 0.  Returns 1 with
 * the next one in *out, 0 at the end (at once for a trace without a module
 * table: written before format 1.1), or a negative code (a damaged entry
 * of a live segment).  Later entries win where ranges overlap.
 */
CS_EXTERN int cs_trace_module_next(cs_trace *t, uint32_t *iter,
                                   cs_trace_module *out);

/*
 * Is the writer gone?  1 when the segment's pid is not running or runs
 * another process (start time differs), 0 when it is alive, negative on
 * error; trace files give -EINVAL.
 */
CS_EXTERN int cs_trace_stale(cs_trace *t);
/* Start time (/proc/PID/stat field 22) of pid into *out; -ESRCH if there
 * is no such process or it has exited (a zombie). */
CS_EXTERN int cs_trace_pid_start_time(int pid, uint64_t *out);
/* Removes /dev/shm/coscope.<pid> if its writer is gone; returns 1 if
 * removed, 0 if the writer is alive, or a negative code. */
CS_EXTERN int cs_trace_clean_pid(int pid);

/*
 * Recording a live segment into a trace file from another process.
 * cs_trace_rec_start creates path (a new file, 0600, renamed over
 * whatever was there, which is never opened: see docs/reliability.md) and writes
 * the header; each cs_trace_rec_poll appends what was written since the
 * last call (new strings and stacks, every ring's records; records the
 * process overwrote first appear as seq gaps, so losses stay exact);
 * cs_trace_rec_finish does a last poll, adds the live tasks and the END
 * chunk, closes the file and frees rec.  t must stay open until then.
 * All return 0 or a negative code.
 */
typedef struct cs_trace_rec cs_trace_rec;
CS_EXTERN int cs_trace_rec_start(cs_trace *t, const char *path,
                                 cs_trace_rec **out);
CS_EXTERN int cs_trace_rec_poll(cs_trace_rec *rec);
CS_EXTERN int cs_trace_rec_finish(cs_trace_rec *rec);

/* Text for a code returned by this library (or any negative errno). */
CS_EXTERN const char *cs_trace_strerror(int code);
/* Details of the calling thread's last failure ("ring 2: head beyond ...
 * (reader.c:123)"), or "". */
CS_EXTERN const char *cs_trace_error_detail(void);

/* Names of enum values; "?" for values this version does not know. */
CS_EXTERN const char *cs_trace_event_name(unsigned type);
CS_EXTERN const char *cs_trace_wait_name(unsigned reason);
CS_EXTERN const char *cs_trace_state_name(unsigned state);
CS_EXTERN const char *cs_trace_warning_name(unsigned kind);
/* A report class's name (CS_REPORT_CLASS_MAP: "unretrieved" where the
 * trace name is "exception"); "?" for kinds this version does not know. */
CS_EXTERN const char *cs_trace_report_name(unsigned kind);
/* The CS_WARN_* kind of a class the agent reports, by its name or its
 * older spelling ("exception"); -1 if s names none. */
CS_EXTERN int cs_trace_report_class(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* COSCOPE_TRACE_H */
