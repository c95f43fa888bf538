/*
 * agent.h - private to agent/: what the detectors share.
 *
 * The agent lives inside libcoscope but sees the runtime only through
 * coscope.h and coscope/agent.h.  Each detector (detect_*.c) turns one
 * runtime hook into a report; report.c writes reports (headline, details,
 * a symbolised stack) to stderr; backtrace.c captures raw return
 * addresses cheaply, symbols.c names them only when a report is written.
 */
#ifndef CS_AGENT_PRIVATE_H
#define CS_AGENT_PRIVATE_H

#include <coscope.h>
#include <coscope/agent.h>
#include <coscope/trace.h>

#include "writer.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

/* libtrace's codes are the runtime's: one value, whichever header a
 * caller reads (libtrace may not include coscope.h, so they are tied here,
 * where both are seen). */
_Static_assert(CS_ECORRUPT == CS_TRACE_ECORRUPT, "CS_ECORRUPT");
_Static_assert(CS_EVERSION == CS_TRACE_EVERSION, "CS_EVERSION");

#define CS__BT_MAX 32 /* frames kept per stack */

/* A captured stack: raw instruction pointers, innermost first. */
typedef struct cs__ag_bt {
    int n;       /* frames in ip[] */
    bool exact0; /* ip[0] is a faulting pc, not a return address */
    uintptr_t ip[CS__BT_MAX]; /* innermost first */
} cs__ag_bt;

/* ---- config.c: environment ------------------------------------------- */

struct cs__ag_cfg {
    unsigned reports; /* report classes on, as CS_REPORT_BIT(CS_WARN_*)
                          (coscope/trace_format.h); 0 when
                          COSCOPE_REPORT=off */
    bool strict;      /* COSCOPE_STRICT=1: abort after the first report */
    bool quiet;       /* COSCOPE_REPORT_STDERR=off: reports only in
                          COSCOPE_REPORT_DIR (coscope check prints them) */
    int64_t slow_ns;  /* COSCOPE_SLOW_MS, default 100 ms */
    char **allow;     /* COSCOPE_ALLOW file: function names, or NULL */
    size_t nallow;
};
extern struct cs__ag_cfg cs__ag_cfg;
/* True if reports of class kind (CS_WARN_*) are on. */
#define cs__ag_reporting(kind)                                                \
    ((cs__ag_cfg.reports & CS_REPORT_BIT(kind)) != 0)

/* Reads the environment once; called by the agent's constructor. */
void cs__ag_cfg_load(void);
/* True if a frame named func (file:line at site, may be NULL) is allowed
 * to block by the COSCOPE_ALLOW file. */
bool cs__ag_cfg_allowed(const char *func, const char *site);

/* ---- backtrace.c ------------------------------------------------------- */

/* The calling thread's stack, skipping `skip` innermost frames. */
void cs__ag_bt_here(cs__ag_bt *bt, int skip);
/* The stack of a parked task from its saved registers, by its frame
 * pointer chain; every read is checked, so a broken chain only ends it. */
void cs__ag_bt_parked(cs__ag_bt *bt, uintptr_t sp, uintptr_t fp, uintptr_t ip);
/* The stack interrupted by a signal (uc: the handler's ucontext).
 * Async-signal-safe. */
void cs__ag_bt_signal(cs__ag_bt *bt, void *uc);
/* Drops the frames above the first one equal to ip (a caller's return
 * address); keeps bt unchanged if ip is not found. */
void cs__ag_bt_from(cs__ag_bt *bt, uintptr_t ip);

/* Drops the innermost frames that are in libcoscope itself (the hook and
 * the runtime calls that led to it), so a stack starts in user code. */
void cs__ag_bt_trim_self(cs__ag_bt *bt);
/* True if the agent is in the main program (a static link), where
 * cs__ag_bt_trim_self cannot tell our frames by object and the report
 * drops them by name instead. */
bool cs__ag_bt_self_is_main(void);

/* ---- sample.c: another thread's stack, through a signal --------------- */

#define CS__SAMPLE_SIG (SIGRTMIN + 3)

/* A sampled stack, and the task that was running on that thread. */
typedef struct cs__ag_sample {
    cs__ag_bt bt;       /* from the interrupted context, innermost first */
    uint64_t task_id;   /* 0 if no task was running */
    char task[64];      /* its name */
    uintptr_t call_ret; /* in a call of resume.c: its return address into
                           the program (0: none); the frames inside it
                           are ours and left out */
} cs__ag_sample;

/* Interrupts thread tid of this process with CS__SAMPLE_SIG and takes its
 * stack.  0, or -ETIMEDOUT (no answer in timeout_ms), or -errno (no such
 * thread).  One sample at a time; the handler is installed on first use.
 * Not from a signal handler. */
int cs__ag_sample_thread(pid_t tid, cs__ag_sample *out, int timeout_ms);
/* An interposer attached itself to this agent (agent.c): the program's
 * sleeps and waits that resume.c defines in an executable carrying the
 * agent then report their blocking calls themselves. */
extern bool cs__ag_preload_on;
/* Sends thread tid the sample signal with no request: it interrupts its
 * poller (epoll_wait returns, the loop ends its iteration), nothing else. */
void cs__ag_sample_wake(pid_t tid);
/* Sample signals this thread has received, ever: how a call that failed
 * with EINTR tells our signal from the program's (resume.c). */
unsigned cs__ag_sample_signals(void);
/* The return address of the resume.c call running on this thread (0:
 * none), for the sample handler. */
extern __thread uintptr_t cs__ag_resume_ret
    __attribute__((tls_model("initial-exec")));

/* ---- watchdog.c: slow steps ---------------------------------------------- */

/* One loop thread's current step. */
typedef struct cs__ag_step {
    pid_t tid;        /* the loop's thread */
    int64_t start_ns; /* CLOCK_MONOTONIC start of the running step, 0 idle */
    uint64_t task_id; /* the task running it (0: unknown) */
    uint64_t seq;     /* untimed switches since start_ns (yield batches):
                         0, the step began at start_ns; more, at a later
                         switch whose time is not known */
} cs__ag_step;

/* Lists up to cap loop threads' steps into out; returns how many. */
typedef size_t cs__ag_step_source(cs__ag_step *out, size_t cap, void *arg);

/* Starts the watchdog thread over src (once; no-op if the slow class is
 * off).  0 or CS_ENOMEM. */
int cs__ag_watchdog_start(cs__ag_step_source *src, void *arg);
/* Stops and joins it (tests). */
void cs__ag_watchdog_stop(void);
/* atexit: stops the thread and reports a sampled slow step it would
 * otherwise not have seen end. */
void cs__ag_watchdog_exit(void);
/* Starts the watchdog over the runtime's trace segment, if libcoscope has
 * libtrace's reader (watch_trace.c); once. */
void cs__ag_watch_trace_start(void);

/* ---- symbols.c --------------------------------------------------------- */

/* One frame's names; strings live until the next cs__ag_sym_lookup. */
typedef struct cs__ag_sym {
    const char *func;   /* function, or NULL */
    uintptr_t offset;   /* ip - function start */
    const char *module; /* file of the object, or NULL */
    uintptr_t modoff;   /* ip - module load address */
    const char *file;   /* source file (debug info), or NULL */
    int line;
    int ninline; /* inlined calls at ip, innermost first */
    struct {
        const char *func, *file;
        int line;
    } inl[8]; /* CS_SYMNAME_INLINE_MAX, symname.h */
} cs__ag_sym;

/* Names ip; is_return says ip is a return address (looked up at ip - 1).
 * Not async-signal-safe.  Serialised by the report lock. */
void cs__ag_sym_lookup(uintptr_t ip, bool is_return, cs__ag_sym *s);
/* Closes the session (and its files) until the next lookup. */
void cs__ag_sym_release(void);

/* ---- report.c ---------------------------------------------------------- */

#define CS__REPORTS_MAX 20 /* reports per class; later ones are counted */

/* Report classes are CS_WARN_* kinds (CS_REPORT_CLASS_MAP), cls below.
 *
 * Runs fn(arg), which writes one report of class cls, on a thread of its
 * own and waits for it: reports are written off the task's stack, which is
 * small (64 KiB by default) while naming frames (libdw) needs far more.
 * Hooks gather what fn needs first; the task they run in stays blocked, so
 * its objects stay valid.  Past CS__REPORTS_MAX reports of the class, fn
 * is not run; the number left out is said once, at exit. */
void cs__ag_report_offstack(unsigned cls, void (*fn)(void *), void *arg);
/* Runs fn(arg) on a thread of its own and waits for it; false if no
 * thread could be started (fn did not run). */
bool cs__ag_offstack(void (*fn)(void *), void *arg);
/* True while this thread waits inside the agent (cs__ag_offstack). */
bool cs__ag_agent_busy(void);
/* True if return address ret is in coscope's own code, in a static link
 * (by name; off the stack): there the interposer cannot tell by range. */
bool cs__ag_report_ours(uintptr_t ret);
/* cs__tr_thread_start (pthread_create, asynchronous signals blocked) is
 * libtrace's, merged into libcoscope with the agent: writer.h. */
/* Records the report of class cls about task_id, with bt (or NULL), as a
 * warning event in the trace; on the loop's thread, before reporting. */
void cs__ag_report_trace(unsigned cls, uint64_t task_id, const cs__ag_bt *bt);

/* A report is begin, any number of lines and stacks, end; the report lock
 * is held in between so reports from several threads do not interleave.
 * begin returns false (and takes no lock) if class is off. */
bool cs__ag_report_begin(unsigned cls, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cs__ag_report_line(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Writes bt symbolised, one frame a line, indented. */
void cs__ag_report_stack(const cs__ag_bt *bt);
/* Ends the report; aborts under COSCOPE_STRICT. */
void cs__ag_report_end(void);
/* COSCOPE_REPORT_DIR for a report written without begin/end (the crash
 * handler): begin with its headline (no "coscope: "), cs__ag_report_stack,
 * then end, which appends the JSON line. */
void cs__ag_report_json_begin(unsigned cls, const char *headline, size_t n);
void cs__ag_report_json_end(void);
/* COSCOPE_REPORT_DIR (set by coscope check): writes DIR/<pid>.agent, one
 * JSON line saying this process runs coscope, whether its agent is on
 * and whether the interposer reached it, so that check can tell what it
 * could not see.  From the agent's constructor. */
void cs__ag_report_dir_hello(bool agent_on, bool interposer);
/* True if any frame of bt is a function of the allow list. */
bool cs__ag_report_allowed(const cs__ag_bt *bt);
/* "task 'NAME' (id N)" into buf. */
const char *cs__ag_task_label(const cs_agent_task_info *i, char *buf,
                              size_t cap);
/* What the task waits for, in words ("waits for lock 0x.. held by task
 * 'w' (id 3)"), into buf. */
const char *cs__ag_wait_text(const cs_agent_task_info *i, char *buf,
                             size_t cap);

/* ---- detectors --------------------------------------------------------- */

void cs__ag_coro_created(cs_coro *c, const char *name, const char *file,
                         int line);
void cs__ag_coro_started(cs_coro *c);
void cs__ag_coro_unstarted(cs_coro *c, int leaked);
void cs__ag_task_raised(cs_task *t, int code, const char *msg);
void cs__ag_task_unretrieved(cs_task *t);
void cs__ag_task_pending_at_exit(cs_task *t);
void cs__ag_task_blocking(cs_task *t);
void cs__ag_loop_stuck(void);
/* detect_blocking.c: the interposer's entry (blocking.h) */
CS_EXTERN void cs_agent_blocking_report(const char *call, int64_t took_ns,
                                        const void *caller);
/* detect_crash.c: the fatal_signal hook */
void cs__ag_crash_report(int sig, siginfo_t *si, void *uc);

#endif
