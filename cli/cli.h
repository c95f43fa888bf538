/*
 * cli.h - private to the coscope command (cli/).  Nothing else includes it.
 *
 * Layout, after git's builtin/: main.c holds the sorted command table and
 * runs the shared setup and the final stdout check; each subcommand is
 * cli/cmd_<name>.c exporting cmd_<name>() and its usage text; common.c has
 * what several commands share (opening a process's segment with one error
 * message per failure, colour, durations, JSON strings); unwind.c and
 * symbols.c read another process's stacks without stopping it.
 *
 * Exit codes (documented once, in docs/cli.md and coscope(1)):
 *   0  success
 *   1  findings: the command worked and found a problem (a deadlock)
 *   2  usage or input error: bad flag, bad pid, unreadable or corrupt input
 *   3  check only: the command ran no coscope process, or one without its
 *      agent or out of the interposer's reach (--allow-untraced)
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "coscope/trace.h"

#define CLI_OK 0
#define CLI_FINDINGS 1
#define CLI_ERROR 2
#define CLI_UNTRACED 3 /* check: what ran could not be (fully) watched */
/* Not an exit code: cli_getopt answered --help (the command returns
 * CLI_OK). */
#define CLI_HELP (-1)

/* The shared set-up a command's table entry asks for (options.c):
 * what operands follow its options, and what is done once they are
 * read. */
#define CLI_ARG_NONE 0x0u        /* no operand */
#define CLI_ARG_PID 0x1u         /* one process id; its segment is opened */
#define CLI_ARG_FILE 0x2u        /* one trace file */
#define CLI_ARG_COMMAND 0x4u     /* '-- <command> [<args>]' */
#define CLI_ARG_OWN 0x8u         /* the command reads its operands itself */
#define CLI_RUN_UNTIL_STOP 0x10u /* runs until Ctrl-C: cli_catch_stop() */

/* One subcommand: the table in main.c is sorted by name. */
struct cli_command {
    const char *name;                 /* as typed: "tasks" */
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *usage;                /* full help, from the command's file */
    const char *summary;              /* one line for `coscope --help` */
    unsigned flags;                   /* CLI_ARG_* | CLI_RUN_*: set-up */
};
extern const struct cli_command cli_commands[];
extern const size_t cli_command_count;
const struct cli_command *cli_command_find(const char *name);
/* The overview printed by `coscope --help` and `coscope help`. */
void cli_main_usage(FILE *f);

/* ---- subcommands -------------------------------------------------------- */
int cmd_check(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_view(int argc, char **argv);
int cmd_watch(int argc, char **argv);
extern const char cmd_check_usage[];
extern const char cmd_export_usage[];
extern const char cmd_help_usage[];
extern const char cmd_metrics_usage[];
extern const char cmd_ps_usage[];
extern const char cmd_record_usage[];
extern const char cmd_report_usage[];
extern const char cmd_run_usage[];
extern const char cmd_tasks_usage[];
extern const char cmd_top_usage[];
extern const char cmd_view_usage[];
extern const char cmd_watch_usage[];

/* ---- options.c: the options and set-up every command shares ------------ */

struct option;
/* getopt_long for command argv[0]: the next option (> 0), 0 after the
 * last; CLI_HELP once -h/--help printed the command's usage; -CLI_ERROR
 * once an unknown or incomplete option was refused.  shortopts and
 * longopts include 'h'/"help" ("+" first: stop at the first operand). */
int cli_getopt(int argc, char **argv, const char *shortopts,
               const struct option *longopts);
/* The end of every command's longopts: --help (-h), then the terminator
 * (the command file includes <getopt.h>). */
#define CLI_OPTS_END                                                          \
    {"help", no_argument, NULL, 'h'},                                         \
    {                                                                         \
        NULL, 0, NULL, 0                                                      \
    }
/* What a command returns when cli_getopt returned c < 0. */
int cli_getopt_status(int c);

/* What the shared set-up found and did (cli_setup). */
struct cli_setup {
    char **args;      /* the operands: argv + optind */
    int pid;          /* CLI_ARG_PID: the process */
    cs_trace *t;      /* CLI_ARG_PID: its segment, open; the command's to
                         close */
    const char *file; /* CLI_ARG_FILE: the trace file */
};
/* After the options: reads the operands command argv[0]'s table entry
 * says it takes (one line on stderr for a missing, extra or bad one),
 * opens a process's segment, catches Ctrl-C; CLI_OK or CLI_ERROR. */
int cli_setup(int argc, char **argv, struct cli_setup *s);
/* libcoscope-preload.so into *lib if preload (NULL if not); CLI_ERROR
 * (said, for cmd) when it cannot be found. */
int cli_preload_lib(const char *cmd, int preload, const char **lib);

/* ---- common.c ----------------------------------------------------------- */
/* Reads an HTTP request head from socket fd into buf (NUL-terminated), up
 * to its blank line: its length, or -1 (closed, too long, or nothing for
 * timeout_ms, if timeout_ms >= 0). */
int cli_http_read_head(int fd, char *buf, size_t cap, int timeout_ms);

/* Prints "coscope: <message>" on stderr and returns CLI_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* strerror(e) as our messages use it: lowercase ("no such file or
 * directory"); a static buffer. */
const char *cli_strerror(int e);
/* cs_trace_strerror(err), lowercase likewise. */
const char *cli_trace_strerror(int err);
/* Set by `coscope --debug CMD`: error details keep where in libtrace a
 * corruption was found. */
extern int cli_debug;
/* cs_trace_error_detail() without "(libtrace line N)" unless cli_debug. */
const char *cli_trace_detail(void);
/* The one message for a trace file libtrace refused (err: its code, or
 * -EISDIR, -ENOMEM); returns CLI_ERROR. */
int cli_trace_file_error(const char *path, int err);
/* Opens trace file path for every reader of files (report, export,
 * view): a file cut or damaged before its end is refused with the byte
 * offset of the last whole chunk unless partial.  CLI_OK, or CLI_ERROR
 * printed. */
int cli_open_trace_file(const char *path, int partial, cs_trace **out,
                        cs_trace_info *info);
/* Prints "coscope: warning: <message>" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The standard answer to a flag getopt refused (argv[optind - 1]). */
int cli_bad_option(const char *cmd, char **argv, int optind, int optopt);
/* For commands that run `-- CMD ARGS` (run, check): CLI_OK if argv[optind]
 * is a command that followed "--", else the error (one line, exit 2). */
int cli_need_command(const char *cmd, int argc, char **argv, int optind);
/* Set by SIGINT or SIGTERM once cli_catch_stop() ran: the commands that
 * run until stopped (record, top, watch, view) check it and finish
 * cleanly.  No SA_RESTART, so a blocking call returns EINTR. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_stop(void);

/* Parses a process id ("4242"); prints the error and returns CLI_ERROR
 * when s is not one. */
int cli_parse_pid(const char *s, int *pid);
/* The pid a /dev/shm entry name is the segment of ("coscope.42" -> 42),
 * or 0 for a name that is not a segment's. */
int cli_segment_pid(const char *name);
/*
 * Opens the live segment of pid and checks that its writer still runs.
 * On failure prints one line saying why (no such process, not traced,
 * another user's, stale, corrupt...) and returns CLI_ERROR.
 */
int cli_open_pid(int pid, cs_trace **out);
/* After reading: CLI_ERROR with a message if the process exited (or its
 * pid was reused) meanwhile, else CLI_OK. */
int cli_check_alive(cs_trace *t, int pid);
/* The command line of pid, arguments joined by spaces, or "" if it cannot
 * be read.  Returns buf. */
char *cli_proc_cmdline(int pid, char *buf, size_t cap);
/* State letter of thread tid of pid ('R' running, 'S' sleeping, 'D'...),
 * or 0 if unknown; when not running, the system call it is in goes to
 * syscall ("nanosleep"), or "" if that cannot be read. */
int cli_thread_state(int pid, int tid, char *syscall, size_t cap);
/* CLOCK_MONOTONIC now, ns. */
uint64_t cli_now_ns(void);
/* A duration for people: "850ns", "12.3us", "4.56ms", "1.23s", "2m05s",
 * "3h02m".  Returns buf. */
char *cli_fmt_duration(uint64_t ns, char *buf, size_t cap);
/* Replaces, in place, every control character and every byte that is not
 * part of valid UTF-8 with '?': text from another process is shown, never
 * obeyed by the terminal.  Returns s. */
char *cli_sanitize(char *s);
/* Writes s as a JSON string literal (quotes included). */
void cli_json_str(FILE *f, const char *s);

/* Colour on stdout: only on a terminal, and never with NO_COLOR set. */
int cli_color(void);
/* SGR sequences, or "" when colour is off. */
const char *cli_sgr(const char *code);

/*
 * Test synchronisation (COSCOPE_TEST_SYNC="<wfd>,<rfd>"): at the named
 * point, writes the point's name and a newline to wfd, then blocks until a
 * byte can be read from rfd.  Lets tests change the world (kill the target)
 * at a known moment without sleeping.  Does nothing when unset.
 */
void cli_test_point(const char *name);

/* ---- idmap.c: id -> value ------------------------------------------------ */

/* Maps 64-bit ids (any, 0 included) to values >= 0.  Zero it to start;
 * cli_idmap_release() frees it. */
struct cli_idmap {
    struct cli_idmap_slot {
        uint64_t id;
        long value; /* < 0: an empty slot */
    } * slot;       /* cap slots, open addressing */
    size_t cap;     /* a power of two, or 0 */
    size_t n;       /* ids held */
};
/* Makes room for n ids; 0 or -ENOMEM. */
int cli_idmap_reserve(struct cli_idmap *m, size_t n);
/* The value of id, or -1. */
long cli_idmap_get(const struct cli_idmap *m, uint64_t id);
/* Sets id's value (>= 0), replacing what it had; 0, -ENOMEM or -EINVAL. */
int cli_idmap_put(struct cli_idmap *m, uint64_t id, long value);
/* Forgets every id, keeps the memory. */
void cli_idmap_clear(struct cli_idmap *m);
void cli_idmap_release(struct cli_idmap *m);

/* ---- spawn.c: a command under the agent (run, check) ------------------ */

/* libcoscope-preload.so: $COSCOPE_PRELOAD, else the installed one next to
 * this binary (../<libdir>), else the build tree's, else the install
 * libdir's; NULL if none exists. */
const char *cli_preload_path(void);
/* The asyncio bridge's directory (coscope package + sitecustomize):
 * $COSCOPE_PYTHONPATH, else installed next to this binary, else the build
 * tree's, else the install libdir's; NULL if none exists. */
const char *cli_python_path(void);
/* Runs argv with preload (if not NULL) appended to LD_PRELOAD, the
 * asyncio bridge first on PYTHONPATH (cli_python_path), and
 * COSCOPE_REPORT_DIR=report_dir (if not NULL), its stdout on our stderr
 * if out_to_err (a document on our stdout stays whole), waits (ignoring
 * SIGINT/SIGQUIT meanwhile, like system()) and stores its wait status.
 * CLI_ERROR (printed, prefixed with cmd) when it cannot be run. */
int cli_spawn_wait(const char *cmd, char **argv, const char *preload,
                   const char *report_dir, int out_to_err, int *status);
/* In a child about to exec: appends preload (if not NULL) to LD_PRELOAD,
 * after what is there (the ASan runtime must lead). */
void cli_preload_setenv(const char *preload);
/* Before a command that will write path is started: CLI_OK if path can
 * be created (an old file is removed), else the error, printed. */
int cli_output_check(const char *path);
/* A wait status as a shell reports it: the exit code, or 128 + signal. */
int cli_shell_status(int status);

/* ---- taskset.c: a snapshot of a process's tasks (tasks, top) ------------ */

/* One task and what we learned about it. */
struct cli_task {
    cs_trace_task t;          /* the slot copy */
    long target;              /* index of the task it waits on, -1 none */
    long awaited_head;        /* waiting on tasks: the first of all it
                                 awaits (a gather: every one), -1 none */
    long awaited_next;        /* next in its awaiter's list, -1 end */
    int nawaited;             /* length of the awaited_head list */
    int indeg;                /* tasks waiting on this one */
    int mark;                 /* cycle search: 0 new, 1 on path, 2 done */
    int printed;              /* tree: already drawn */
    int depth;                /* stack frames, or a negative errno */
    struct cli_frame *frames; /* depth frames when depth > 0 */
    const char *stack_note;   /* why there is no stack */
};

/* The tasks of one process, sorted by id.  Zero it, set t and pid, then
 * cli_ts_read(); cli_ts_release() frees everything, t included. */
struct cli_taskset {
    cs_trace *t; /* the open segment */
    int pid;
    int stacks;         /* 1 once cli_ts_stacks() ran */
    uint64_t now;       /* CLOCK_MONOTONIC ns when read */
    struct cli_task *v; /* tasks, by id */
    size_t n;
    struct cli_idmap by_id; /* id -> index in v */
    char **strs;            /* texts of string ids read (sanitised copies) */
    size_t strs_n, strs_cap;
    struct cli_idmap str_ix; /* string id -> index in strs */
    long **cycles;           /* each: indices, -1 terminated */
    size_t ncycles;
    struct cli_symbols *site_sym; /* for "@0x.." sites, opened lazily */
    int site_sym_tried;
};

/* Reads the task table; prints the error and returns CLI_ERROR on one. */
int cli_ts_read(struct cli_taskset *x);
/* Index of task id, or -1. */
long cli_ts_find(const struct cli_taskset *x, uint64_t id);
/* The text of string id, "" if none ("?" if unreadable); cached. */
const char *cli_ts_str(struct cli_taskset *x, uint32_t id);
/* The creation site of string id, named (cli_site_name); "" if none. */
const char *cli_ts_site(struct cli_taskset *x, uint32_t id);
/* Fills target/indeg and the list of cycles (deadlocks). */
int cli_ts_graph(struct cli_taskset *x);
/* "task 4 'holder'" (or "task 4 (gone)"). */
void cli_ts_ref(struct cli_taskset *x, uint64_t id, char *buf, size_t cap);
/* What r waits on, in words: "lock 3 held by task 4 'holder'". */
void cli_ts_wait_text(struct cli_taskset *x, const struct cli_task *r,
                      char *buf, size_t cap);
/* Time since r was created, ns. */
uint64_t cli_ts_age(const struct cli_taskset *x, const struct cli_task *r);
/* Unwinds every parked task; CLI_ERROR (printed) when the process's
 * memory cannot be read at all. */
int cli_ts_stacks(struct cli_taskset *x);
/* Unwinds task x->v[i] only; CLI_ERROR (not printed) on failure. */
int cli_ts_stack_one(struct cli_taskset *x, size_t i);
/* Forgets the tasks (to read them again), keeps t and the strings. */
void cli_ts_clear(struct cli_taskset *x);
void cli_ts_release(struct cli_taskset *x);

/* ---- unwind.c / symbols.c: stacks of another process -------------------- */

#define CLI_STACK_MAX 64

/* One frame, symbolised. */
struct cli_frame {
    uint64_t ip;         /* instruction pointer (return address but for #0) */
    char func[128];      /* function name, "" if unknown */
    uint64_t offset;     /* ip - function start */
    char file[256];      /* source file, "" if unknown */
    int line;            /* source line, 0 if unknown */
    char module[128];    /* basename of the ELF file, "" if unknown */
    uint64_t mod_offset; /* ip - the module's load bias, if in_module */
    int in_module;       /* a trace's module table placed ip in module */
    int inlined;         /* an inlined call at ip (no offset of its own) */
};

struct cli_unwinder;
/* Prepares to unwind tasks of pid; NULL with *err set (negative errno or
 * -ENOSYS for an unsupported architecture). */
struct cli_unwinder *cli_unwind_open(int pid, int *err);
/* Unwinds from saved registers into ips[0..cap); returns the depth (>= 1)
 * or a negative errno (-EPERM, -ESRCH...). */
int cli_unwind(struct cli_unwinder *u, uint64_t sp, uint64_t fp, uint64_t ip,
               uint64_t *ips, int cap);
void cli_unwind_close(struct cli_unwinder *u);

struct cli_symbols;
/* Reads the modules mapped in pid (/proc/PID/maps); NULL on failure. */
struct cli_symbols *cli_symbols_open(int pid);
/* Reads a trace's module table (format 1.1) and every module file whose
 * build id still matches; NULL if the trace has no table. */
struct cli_symbols *cli_symbols_open_trace(cs_trace *t);
/* The symbols for a trace's stacks: the writer's maps while it runs (live
 * segments), else the trace's module table, else (files written before the
 * table existed) the maps of a writer still running; NULL if none. */
struct cli_symbols *cli_symbols_for_trace(cs_trace *t);
/* Fills *f for ip; is_return says ip is a return address (look up ip - 1). */
void cli_symbolize(struct cli_symbols *s, uint64_t ip, int is_return,
                   struct cli_frame *f);
/* Like cli_symbolize, with the inlined calls at ip first (innermost
 * first, inlined set): up to cap frames, at least one; returns how many. */
int cli_symbolize_all(struct cli_symbols *s, uint64_t ip, int is_return,
                      struct cli_frame *out, int cap);
/* A warning's stack as the agent captured it: every frame, the first
 * included, is a return address (looked up at ip - 1, so each names its
 * calling line); inlined calls expanded.  Up to cap frames; how many. */
int cli_symbolize_stack(struct cli_symbols *s, const uint64_t *ips, int n,
                        struct cli_frame *out, int cap);
/* Like cli_symbolize_stack, and the blocking function the warning is
 * about into call ("" if none): the interposer's wrapper frame on top of
 * a blocking-call warning's stack, which is left out of the frames. */
int cli_symbolize_call(struct cli_symbols *s, const uint64_t *ips, int n,
                       struct cli_frame *out, int cap, char *call,
                       size_t callcap);
/* One frame as every tool prints it: "0x... func [inlined] (file:line)".
 * Returns buf. */
char *cli_frame_text(const struct cli_frame *f, char *buf, size_t cap);
/* A creation site as the runtime interned it: "file:line", or "@0x<ip>",
 * the return address into code that spawned a task without a file:line
 * (plain cs_spawn), rewritten in place (cap bytes) as the call's
 * "file:line" (or "func", "module+0x.."; left as is if s is NULL).
 * Returns site. */
char *cli_site_name(struct cli_symbols *s, char *site, size_t cap);
void cli_symbols_close(struct cli_symbols *s);
/* A frame's name: "func", else "module+0xoffset" (address in the file),
 * else "??".  Returns buf. */
const char *cli_frame_name(const struct cli_frame *f, char *buf, size_t cap);

/* The message for an error reading another process's memory. */
int cli_memory_error(int pid, int err);

#endif /* CS_CLI_H */
