/*
 * check.h - private to `coscope check` (cmd_check.c and its parts): the
 * reports the agents wrote, read back (check_read.c), and written out as
 * text or JSON (check_write.c), JUnit XML (check_junit.c) or SARIF
 * (check_sarif.c).  Report classes are the format's CS_WARN_* kinds
 * (CS_REPORT_CLASS_MAP).
 */
#ifndef CS_CLI_CHECK_H
#define CS_CLI_CHECK_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"

#define CHECK_MAX_FRAMES 64     /* frames kept per report */
#define CHECK_MAX_LINE 65536    /* longest report line read */
#define CHECK_MAX_REPORTS 10000 /* reports kept; the rest are counted */
#define CHECK_MAX_SUPPRESS 1000 /* lines of a suppression file */
#define CHECK_SEEN_SHOWN 3 /* processes named per kind; the rest counted */

/* One frame of a report's stack, as the agent wrote it. */
struct check_frame {
    char ip[24];    /* "0x...", "" for a Python frame */
    char func[128]; /* function name, "" if unknown */
    char file[256]; /* source file, "" if unknown */
    long line;      /* source line, 0 if unknown */
    int inlined;    /* an inlined call at ip */
    int library;    /* a library's frame (asyncio's, the standard library's) */
};

/* One report: a JSON line of DIR/<pid>.jsonl. */
struct check_report {
    int cls;            /* CS_WARN_* (CS_REPORT_CLASS_MAP) */
    char headline[512]; /* asyncio's wording */
    char task[128];     /* the task's name, "" if none */
    long pid;           /* the process that made it */
    int nframes;        /* frames kept */
    struct check_frame frames[CHECK_MAX_FRAMES];
    int failing; /* of a --fail-on class (check_apply) */
};

/* One line of a --suppress file: class:function. */
struct check_suppression {
    int cls;        /* CS_WARN_*, or -1: any */
    char func[128]; /* fnmatch pattern for a frame's function */
};

/* Every report read. */
struct check_reports {
    struct check_report *v;
    size_t n, cap;
    size_t dropped;    /* past CHECK_MAX_REPORTS */
    size_t suppressed; /* dropped by check_apply */
};

/* One agent's hello: DIR/<pid>.agent. */
struct check_note {
    long pid;
    char exe[256];
    int agent, interposer; /* -1: not said */
};

/* What check could see of the processes the command ran. */
struct check_seen {
    size_t procs;      /* coscope processes that said hello */
    size_t no_agent;   /* of those: COSCOPE_REPORT=off */
    size_t no_preload; /* ...and the interposer missed */
    struct check_note off[CHECK_SEEN_SHOWN], bare[CHECK_SEEN_SHOWN];
};

/* What the JUnit document says of the run as a whole. */
struct check_run {
    char **cmd;     /* the command, NULL-terminated */
    int status;     /* its exit status, as a shell says it */
    time_t started; /* when it started */
    double secs;    /* how long it ran */
};

/* ---- check_read.c ------------------------------------------------------- */

/* Reads every DIR/<pid>.jsonl (reports) and DIR/<pid>.agent (notes), as
 * hostile input: bad lines and files are skipped with a warning. */
void check_collect(const char *dir, struct check_reports *rs,
                   struct check_seen *sn);
/* Removes dir and the files in it. */
void check_remove_dir(const char *dir);
/* Reads a --suppress file into *out (*count entries; free it).  CLI_OK,
 * or CLI_ERROR printed. */
int check_load_suppressions(const char *path, struct check_suppression **out,
                            size_t *count);
/* Drops the reports a suppression matches (counted in rs->suppressed),
 * marks the rest failing if their class is in fail_mask
 * (CS_REPORT_BIT); returns how many fail. */
size_t check_apply(struct check_reports *rs,
                   const struct check_suppression *supp, size_t nsupp,
                   unsigned fail_mask);

/* ---- check_write.c ------------------------------------------------------ */

/* The frame to blame (the innermost one in the program's own code), or
 * NULL. */
const struct check_frame *check_culprit(const struct check_report *r);
/* A report's frames as a JSON array. */
void check_json_frames(FILE *f, const struct check_report *r);
void check_out_text(FILE *f, const struct check_reports *rs);
void check_out_json(FILE *f, const struct check_reports *rs, char **cmd,
                    int cmd_status, size_t failing);

/* ---- check_junit.c, check_sarif.c --------------------------------------- */

void check_out_junit(FILE *f, const struct check_reports *rs, size_t failing,
                     const struct check_run *run);
void check_out_sarif(FILE *f, const struct check_reports *rs);

#endif /* CS_CLI_CHECK_H */
