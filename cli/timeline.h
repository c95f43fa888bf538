/*
 * timeline.h - a trace file as a timeline (cli/timeline.c), shared by
 * `coscope export` (cmd_export.c) and `coscope view` (cmd_view.c), and the
 * two ways of writing it out: Chrome Trace Event JSON and the viewer's
 * binary data.  Private to cli/.
 *
 * Times are CLOCK_MONOTONIC ns of the writer; first_ns is the earliest
 * event, and both outputs show times relative to it.
 */
#ifndef CS_CLI_TIMELINE_H
#define CS_CLI_TIMELINE_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"

/* One task: a lane of the timeline. */
struct cli_tl_task {
    uint64_t id;         /* task id */
    uint64_t parent;     /* creating task id (from the snapshot), 0 unknown */
    uint32_t name;       /* string id, 0 unknown */
    uint32_t site;       /* creation site string id, 0 unknown */
    uint32_t ring;       /* loop (ring) that ran it; UINT32_MAX unknown */
    uint32_t first;      /* index of its first step in steps[] */
    uint32_t nsteps;     /* its steps: steps[first .. first + nsteps) */
    uint32_t old;        /* index before sorting (timeline.c only) */
    uint8_t state;       /* CS_TASK_* in the end snapshot, if in_snapshot */
    uint8_t in_snapshot; /* the file's task snapshot lists it */
    uint8_t ring_from_step; /* ring was taken from a step record */
};

/* One step: the task ran from start to end, then stopped for reason. */
struct cli_tl_step {
    uint64_t start, end; /* ns */
    uint64_t target;     /* wait target (task id, lock id, fd, deadline) */
    uint32_t task;       /* index in tasks[] */
    uint32_t aux;        /* wait aux, low 32 bits (lock holder) */
    uint8_t reason;      /* CS_WAIT_* or CS_STOP_* */
    uint8_t has_target;  /* a wait record gave target and aux */
    uint8_t batched;     /* 1: part of a yield batch (CS_EV_BATCH): a
                            yields slice has target = its steps and the
                            batch's span; a step begun in one has its
                            share of the batch's time, an estimate */
};

/* Time a loop spent waiting in epoll_wait. */
struct cli_tl_idle {
    uint64_t start, end; /* ns */
    uint32_t ring;       /* loop */
};

/* A warning record. */
struct cli_tl_warning {
    uint64_t ns;     /* when */
    uint64_t task;   /* task id, 0 none */
    long task_index; /* index in tasks[], -1 none */
    unsigned kind;   /* CS_WARN_* */
    uint32_t stack;  /* stack id, 0 none; | CLI_TL_PYSTACK: string id */
    uint32_t ring;   /* loop that reported it */
};
/* In a warning's stack: the id is a string's, a Python stack written as
 * text (CS_RECF_PYSTACK); table ids stay below 2^26 (CS_TABLE_MAX). */
#define CLI_TL_PYSTACK 0x80000000u

struct cli_timeline {
    const char *path;           /* as given */
    cs_trace *t;                /* the open file */
    cs_trace_info info;         /* its header */
    uint64_t events, lost;      /* records read; records lost in gaps */
    uint64_t first_ns, last_ns; /* span of all events */
    struct cli_tl_task *tasks;  /* sorted by ring, then id */
    size_t ntasks, tasks_cap;
    struct cli_idmap map;      /* task id -> index in tasks */
    struct cli_tl_step *steps; /* sorted by task, then start */
    size_t nsteps, steps_cap;
    struct cli_tl_idle *idle; /* sorted by ring, then start */
    size_t nidle, idle_cap;
    struct cli_tl_warning *warnings; /* sorted by time */
    size_t nwarnings, warnings_cap;
    struct cli_symbols *sym; /* cli_symbols_for_trace, opened lazily */
    int sym_tried;
    /* after cli_tl_window: what part is kept */
    int windowed;                    /* 1 if steps were left out */
    size_t steps_total;              /* steps in the file */
    uint64_t window_from, window_to; /* ns kept: [from, to) */
};

/*
 * Reads the trace file at path.  A file whose last chunk is cut or damaged
 * is refused unless partial is set (then the whole chunks before are
 * read).  On failure prints one line and returns CLI_ERROR.
 */
int cli_tl_load(const char *path, int partial, struct cli_timeline **out);
void cli_tl_free(struct cli_timeline *tl);
/* Index in tl->tasks of task id, or -1. */
long cli_tl_task_index(const struct cli_timeline *tl, uint64_t id);
/* Keeps only the steps that start in a window from from_rel ns after the
 * first event and at most max of them (the loop idle time and warnings of
 * that window too), so that a browser is never handed more than it can
 * hold.  Returns 0 or -ENOMEM. */
int cli_tl_window(struct cli_timeline *tl, uint64_t from_rel, size_t max);
/* String id's text, sanitised, "" if none.  Returns buf. */
const char *cli_tl_str(struct cli_timeline *tl, uint32_t id, char *buf,
                       size_t cap);
/* The creation site of string id, named (cli_site_name) into buf. */
const char *cli_tl_site(struct cli_timeline *tl, uint32_t id, char *buf,
                        size_t cap);
/* Task k's name, or "task N" when it has none.  Returns buf. */
const char *cli_tl_task_name(struct cli_timeline *tl, long k, char *buf,
                             size_t cap);
/* What step s waited on after it stopped, in words ("task 3 'fetch'",
 * "lock 5 held by task 2 'holder'", "fd 7 (read)"), "" if unknown. */
void cli_tl_wait_text(struct cli_timeline *tl, const struct cli_tl_step *s,
                      char *buf, size_t cap);
/* Stack id as frames of text ("0x... func (file:line)", or "0x...
 * lib.so+0x1f0" for a module whose file is gone or changed, symbolised
 * through the file's module table); returns the depth (0 none) or
 * -ENOMEM. */
/* The last step of task k (an index in tl->tasks) that started (or, if
 * by_end, ended) at or before ns, or -1: a binary search of its steps,
 * which are sorted by start and do not overlap. */
long cli_tl_last_step(const struct cli_timeline *tl, long k, uint64_t ns,
                      int by_end);
int cli_tl_stack(struct cli_timeline *tl, uint32_t id, char ***frames);
/* Splits Python stack string id of t (a headline, then a frame a line):
 * fn(arg, -1, headline), then fn(arg, k, frame) for k = 0, 1, ...; lines
 * sanitized for a terminal.  The frame count, or -1 if id is no string. */
int cli_py_stack_lines(cs_trace *t, uint32_t id,
                       void (*fn)(void *arg, int k, const char *line),
                       void *arg);
void cli_tl_stack_free(char **frames, int n);

/* Chrome Trace Event Format JSON (cmd_export.c). */
int cli_tl_write_chrome(struct cli_timeline *tl, FILE *f);
/* The viewer's data: a JSON description and typed arrays (cmd_view.c). */
int cli_tl_write_view(struct cli_timeline *tl, FILE *f);

/* ---- view_serve.c: handing the viewer and its data to a browser ----------
 */

/* Writes one self-contained page to out: the viewer's files in dir with
 * data (from cli_tl_write_view) inline.  Prints errors; CLI_OK or
 * CLI_ERROR. */
int cli_view_html(const char *dir, const char *data, size_t len,
                  const char *out);
/* Serves the viewer in dir and data on 127.0.0.1:port (0: any free port),
 * printing the URL, until SIGINT or SIGTERM (CLI_OK).  label names the
 * trace in messages. */
int cli_view_serve(const char *dir, const char *data, size_t len, int port,
                   const char *label);

#endif /* CS_CLI_TIMELINE_H */
