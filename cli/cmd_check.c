/*
 * cmd_check.c - `coscope check [options] -- CMD [ARGS]`: the CI gate.
 *
 * Runs the command with COSCOPE_REPORT_DIR set to a fresh temporary
 * directory (and the interposer preloaded, as `run` does); every coscope
 * process it starts, children included, appends each of its agent's
 * reports there as one JSON line (agent/report.c).  Once the command has
 * exited the files are read - as hostile input: bounded lines, malformed
 * ones skipped with a warning - suppressions applied, and the reports
 * printed as text, JSON, JUnit XML or SARIF 2.1.0.  Each agent also says
 * hello (DIR/<pid>.agent: on or off, interposer reached or not), so that
 * check never passes what it could not see.  Exit 1 if a report of a
 * failing class remains, else 3 if something was not watched (unless
 * --allow-untraced), else the command's own status.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cmd_check_usage[] =
    "usage: coscope check [--fail-on <classes>] [--format text|json|junit|"
    "sarif]\n"
    "                     [-o <file>] [--suppress <file>] [--no-preload] "
    "[--allow-untraced]\n"
    "                     -- <command> [<args>]\n"
    "\n"
    "Runs a command (a test binary, ctest, a script: child processes are\n"
    "followed) with the agent reporting into a temporary directory, then\n"
    "prints every report of every coscope process it started, with its\n"
    "stack.  Exit status 1 if any report of a failing class occurred; else\n"
    "3 if check could not watch everything: the command started no coscope\n"
    "process, or one ran without its agent (COSCOPE_REPORT=off) or out of\n"
    "the interposer's reach (a static executable); else the command's own\n"
    "(128 + the signal if it was killed); 2 on bad input.\n"
    "\n"
    "    --fail-on CLASSES  comma list of the classes that fail the check\n"
    "                       (default all): never-awaited, unretrieved (or\n"
    "                       exception), pending, blocking, deadlock, crash,\n"
    "                       slow\n"
    "    --format FORMAT    text (default), json, junit or sarif (2.1.0);\n"
    "                       on stdout, the command's own stdout then goes\n"
    "                       to stderr\n"
    "    -o, --output FILE  write the reports there instead of stdout\n"
    "    --suppress FILE    drop reports: lines 'class:function' ('*' for\n"
    "                       any class; function may use * and ? wildcards)\n"
    "                       match a report if any frame is that function;\n"
    "                       '#' starts a comment\n"
    "    --no-preload       do not preload libcoscope-preload.so (blocking\n"
    "                       calls are then not looked for)\n"
    "    --allow-untraced   a command that runs no coscope process, or not\n"
    "                       all of it watched, is no failure (still said)\n"
    "    -h, --help         show this help\n";

#define MAX_FRAMES 64
#define MAX_LINE 65536
#define MAX_REPORTS 10000
#define MAX_SUPPRESS 1000

struct frame {
    char ip[24];
    char func[128];
    char file[256];
    long line;
    int inlined; /* an inlined call at ip */
    int library; /* a library's frame (asyncio's, the standard library's) */
};

struct report {
    int cls; /* CS_WARN_* (CS_REPORT_CLASS_MAP) */
    char headline[512];
    char task[128];
    long pid;
    int nframes;
    struct frame frames[MAX_FRAMES];
    int failing;
};

struct suppression {
    int cls; /* CS_WARN_*, or -1: any */
    char func[128];
};

/* ---- a small JSON reader for the agent's lines ------------------------- */

struct jp {
    const char *s;
    int depth;
};

static void ws(struct jp *p)
{
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\r' || *p->s == '\n')
        p->s++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string into out (truncated to cap, sanitised); -1 if malformed. */
static int jstr(struct jp *p, char *out, size_t cap)
{
    size_t n = 0;
    ws(p);
    if (*p->s != '"')
        return -1;
    p->s++;
    while (*p->s != '"') {
        unsigned c = (unsigned char)*p->s;
        char enc[4];
        size_t k = 1;
        if (c == '\0' || c < 0x20)
            return -1;
        if (c == '\\') {
            p->s++;
            switch (*p->s) {
            case '"':
                enc[0] = '"';
                break;
            case '\\':
                enc[0] = '\\';
                break;
            case '/':
                enc[0] = '/';
                break;
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                enc[0] = '?';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = hexval(p->s[i]);
                    if (h < 0)
                        return -1;
                    v = v * 16 + (unsigned)h;
                }
                p->s += 4;
                if (v < 0x20 || v == 0x7f || (v >= 0xd800 && v < 0xe000))
                    enc[0] = '?';
                else if (v < 0x80)
                    enc[0] = (char)v;
                else if (v < 0x800) {
                    enc[0] = (char)(0xc0 | (v >> 6));
                    enc[1] = (char)(0x80 | (v & 0x3f));
                    k = 2;
                } else {
                    enc[0] = (char)(0xe0 | (v >> 12));
                    enc[1] = (char)(0x80 | ((v >> 6) & 0x3f));
                    enc[2] = (char)(0x80 | (v & 0x3f));
                    k = 3;
                }
                break;
            }
            default:
                return -1;
            }
        } else {
            enc[0] = (char)c;
        }
        p->s++;
        if (n + k < cap) {
            memcpy(out + n, enc, k);
            n += k;
        }
    }
    p->s++;
    if (cap > 0) {
        out[n < cap ? n : cap - 1] = '\0';
        cli_sanitize(out);
    }
    return 0;
}

static int jnum(struct jp *p, long *v)
{
    char *end;
    ws(p);
    errno = 0;
    /* JSON numbers only: strtod also takes "nan", "inf" and hex, and a
     * NaN passes any range check (found by tests/fuzz/fuzz_check). */
    if (*p->s != '-' && (*p->s < '0' || *p->s > '9'))
        return -1;
    double d = strtod(p->s, &end);
    if (end == p->s || errno != 0 || !(d >= -1e15 && d <= 1e15))
        return -1;
    p->s = end;
    *v = (long)d;
    return 0;
}

static int jlit(struct jp *p, const char *lit)
{
    size_t n = strlen(lit);
    ws(p);
    if (strncmp(p->s, lit, n) != 0)
        return -1;
    p->s += n;
    return 0;
}

static int jskip(struct jp *p);

static int jskip_seq(struct jp *p, char close, int keyed)
{
    p->s++;
    ws(p);
    if (*p->s == close) {
        p->s++;
        return 0;
    }
    for (;;) {
        char tmp[8];
        if (keyed) {
            if (jstr(p, tmp, sizeof tmp) != 0)
                return -1;
            ws(p);
            if (*p->s++ != ':')
                return -1;
        }
        if (jskip(p) != 0)
            return -1;
        ws(p);
        if (*p->s == ',') {
            p->s++;
            continue;
        }
        if (*p->s++ != close)
            return -1;
        return 0;
    }
}

static int jskip(struct jp *p)
{
    char tmp[8];
    long v;
    int r;
    ws(p);
    if (++p->depth > 32)
        return -1;
    switch (*p->s) {
    case '"':
        r = jstr(p, tmp, sizeof tmp);
        break;
    case '{':
        r = jskip_seq(p, '}', 1);
        break;
    case '[':
        r = jskip_seq(p, ']', 0);
        break;
    case 't':
        r = jlit(p, "true");
        break;
    case 'f':
        r = jlit(p, "false");
        break;
    case 'n':
        r = jlit(p, "null");
        break;
    default:
        r = jnum(p, &v);
        break;
    }
    p->depth--;
    return r;
}

/* A string or null (-> ""). */
static int jstr_or_null(struct jp *p, char *out, size_t cap)
{
    ws(p);
    if (*p->s == 'n') {
        out[0] = '\0';
        return jlit(p, "null");
    }
    return jstr(p, out, cap);
}

/* Calls field(p, key, ctx) for each key of an object. */
static int jobject(struct jp *p,
                   int (*field)(struct jp *, const char *, void *), void *ctx)
{
    ws(p);
    if (*p->s != '{')
        return -1;
    p->s++;
    ws(p);
    if (*p->s == '}') {
        p->s++;
        return 0;
    }
    for (;;) {
        char key[32];
        if (jstr(p, key, sizeof key) != 0)
            return -1;
        ws(p);
        if (*p->s++ != ':')
            return -1;
        if (field(p, key, ctx) != 0)
            return -1;
        ws(p);
        if (*p->s == ',') {
            p->s++;
            continue;
        }
        if (*p->s++ != '}')
            return -1;
        return 0;
    }
}

static int jbool(struct jp *p, int *v);

static int frame_field(struct jp *p, const char *key, void *ctx)
{
    struct frame *f = ctx;
    if (strcmp(key, "ip") == 0)
        return jstr_or_null(p, f->ip, sizeof f->ip);
    if (strcmp(key, "function") == 0)
        return jstr_or_null(p, f->func, sizeof f->func);
    if (strcmp(key, "file") == 0)
        return jstr_or_null(p, f->file, sizeof f->file);
    if (strcmp(key, "line") == 0)
        return jnum(p, &f->line);
    if (strcmp(key, "inlined") == 0)
        return jbool(p, &f->inlined);
    if (strcmp(key, "library") == 0)
        return jbool(p, &f->library);
    return jskip(p);
}

static int report_field(struct jp *p, const char *key, void *ctx)
{
    struct report *r = ctx;
    if (strcmp(key, "class") == 0) {
        char name[32];
        if (jstr(p, name, sizeof name) != 0)
            return -1;
        r->cls = cs_trace_report_class(name);
        return r->cls < 0 || strcmp(name, "exception") == 0 ? -1 : 0;
    }
    if (strcmp(key, "headline") == 0)
        return jstr(p, r->headline, sizeof r->headline);
    if (strcmp(key, "task") == 0)
        return jstr_or_null(p, r->task, sizeof r->task);
    if (strcmp(key, "pid") == 0)
        return jnum(p, &r->pid);
    if (strcmp(key, "frames") == 0) {
        ws(p);
        if (*p->s != '[')
            return -1;
        p->s++;
        ws(p);
        if (*p->s == ']') {
            p->s++;
            return 0;
        }
        for (;;) {
            struct frame f;
            memset(&f, 0, sizeof f);
            if (jobject(p, frame_field, &f) != 0)
                return -1;
            if (r->nframes < MAX_FRAMES)
                r->frames[r->nframes++] = f;
            ws(p);
            if (*p->s == ',') {
                p->s++;
                continue;
            }
            if (*p->s++ != ']')
                return -1;
            return 0;
        }
    }
    return jskip(p);
}

static int parse_report(const char *line, struct report *r)
{
    struct jp p = {line, 0};
    memset(r, 0, sizeof *r);
    r->cls = -1;
    if (jobject(&p, report_field, r) != 0)
        return -1;
    ws(&p);
    if (*p.s != '\0' || r->cls < 0 || r->headline[0] == '\0')
        return -1;
    return 0;
}

/* ---- collecting --------------------------------------------------------- */

struct reports {
    struct report *v;
    size_t n, cap;
    size_t dropped; /* past MAX_REPORTS */
    size_t suppressed;
};

static void read_file(const char *dir, const char *name, struct reports *rs,
                      char *line)
{
    char path[4096 + 512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        cli_warn("check: skipping '%s': not a regular file", name);
        return;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return;
    }
    long lineno = 0;
    while (fgets(line, MAX_LINE, f) != NULL) {
        size_t len = strlen(line);
        lineno++;
        if (len > 0 && line[len - 1] == '\n') {
            line[len - 1] = '\0';
        } else if (!feof(f)) { /* too long: skip the rest of it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            cli_warn("check: skipping line %ld of '%s': longer than %d "
                     "bytes",
                     lineno, name, MAX_LINE);
            continue;
        }
        if (line[0] == '\0')
            continue;
        if (rs->n >= MAX_REPORTS) {
            rs->dropped++;
            continue;
        }
        if (rs->n == rs->cap) {
            size_t cap = rs->cap ? rs->cap * 2 : 16;
            struct report *v = realloc(rs->v, cap * sizeof *v);
            if (v == NULL) {
                rs->dropped++;
                continue;
            }
            rs->v = v;
            rs->cap = cap;
        }
        if (parse_report(line, &rs->v[rs->n]) != 0) {
            cli_warn("check: skipping line %ld of '%s': not a coscope report",
                     lineno, name);
            continue;
        }
        rs->n++;
    }
    fclose(f);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    long x = atol((*a)->d_name), y = atol((*b)->d_name);
    return x < y ? -1 : x > y;
}

static int skip_dots(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* ---- what check could see: the agents' DIR/<pid>.agent notes ---------- */

#define SEEN_SHOWN 3 /* processes named per kind; the rest are counted */

struct note {
    long pid;
    char exe[256];
    int agent, interposer; /* -1: not said */
};

struct seen {
    size_t procs;      /* coscope processes that said hello */
    size_t no_agent;   /* of those: COSCOPE_REPORT=off */
    size_t no_preload; /* ...and the interposer missed */
    struct note off[SEEN_SHOWN], bare[SEEN_SHOWN];
};

static int jbool(struct jp *p, int *v)
{
    ws(p);
    if (jlit(p, "true") == 0)
        return *v = 1, 0;
    if (jlit(p, "false") == 0)
        return *v = 0, 0;
    return -1;
}

static int note_field(struct jp *p, const char *key, void *ctx)
{
    struct note *n = ctx;
    if (strcmp(key, "pid") == 0)
        return jnum(p, &n->pid);
    if (strcmp(key, "exe") == 0)
        return jstr_or_null(p, n->exe, sizeof n->exe);
    if (strcmp(key, "agent") == 0)
        return jbool(p, &n->agent);
    if (strcmp(key, "interposer") == 0)
        return jbool(p, &n->interposer);
    return jskip(p);
}

/* One note: "{"pid":N,"exe":"...","agent":B,"interposer":B}", written by
 * the agent's constructor (agent/report.c); hostile input like the rest. */
static void read_note(const char *dir, const char *name, struct seen *sn,
                      char *line)
{
    char path[4096 + 512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    ssize_t k = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        k = read(fd, line, MAX_LINE - 1);
    if (fd >= 0)
        close(fd);
    struct note n = {.agent = -1, .interposer = -1};
    if (k > 0) {
        line[k] = '\0';
        struct jp p = {line, 0};
        if (jobject(&p, note_field, &n) != 0)
            n.agent = -1;
    }
    if (n.agent < 0 || n.interposer < 0) {
        cli_warn("check: skipping '%s': not a coscope agent note", name);
        return;
    }
    sn->procs++;
    if (!n.agent && sn->no_agent++ < SEEN_SHOWN)
        sn->off[sn->no_agent - 1] = n;
    else if (n.agent && !n.interposer && sn->no_preload++ < SEEN_SHOWN)
        sn->bare[sn->no_preload - 1] = n;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void collect(const char *dir, struct reports *rs, struct seen *sn)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dots, by_name);
    if (n < 0) {
        cli_warn("check: cannot read '%s': %s", dir, cli_strerror(errno));
        return;
    }
    char *line = malloc(MAX_LINE);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (line == NULL)
            ;
        else if (has_suffix(name, ".agent"))
            read_note(dir, name, sn, line);
        else if (has_suffix(name, ".jsonl"))
            read_file(dir, name, rs, line);
        else
            cli_warn("check: skipping '%s': not a coscope report file", name);
        free(names[i]);
    }
    free(names);
    free(line);
}

/* Says on stderr what check could not see; true if that was anything. */
static int say_unseen(struct seen *sn, int preload, int allowed)
{
    const char *how = allowed ? "warning: " : "";
    int bad = 0;
    if (sn->procs == 0) {
        fprintf(stderr,
                "coscope: %scheck: the command started no coscope "
                "process: nothing was checked (--allow-untraced if "
                "that is expected)\n",
                how);
        return 1;
    }
    for (size_t i = 0; i < sn->no_agent && i < SEEN_SHOWN; i++)
        fprintf(stderr,
                "coscope: %scheck: process %ld ('%s') ran without "
                "its agent (COSCOPE_REPORT=off): its bugs were not "
                "looked for\n",
                how, sn->off[i].pid, cli_sanitize(sn->off[i].exe));
    if (sn->no_agent > SEEN_SHOWN)
        fprintf(stderr,
                "coscope: %scheck: and %zu more processes without "
                "their agent\n",
                how, sn->no_agent - SEEN_SHOWN);
    bad |= sn->no_agent > 0;
    if (!preload)
        return bad; /* --no-preload: the user chose to go without */
    for (size_t i = 0; i < sn->no_preload && i < SEEN_SHOWN; i++)
        fprintf(stderr,
                "coscope: %scheck: the interposer did not reach "
                "process %ld ('%s'; a static executable?): its "
                "blocking calls were not looked for\n",
                how, sn->bare[i].pid, cli_sanitize(sn->bare[i].exe));
    if (sn->no_preload > SEEN_SHOWN)
        fprintf(stderr,
                "coscope: %scheck: and %zu more processes the "
                "interposer did not reach\n",
                how, sn->no_preload - SEEN_SHOWN);
    return bad | (sn->no_preload > 0);
}

static void remove_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dots, NULL);
    for (int i = 0; i < n; i++) {
        char path[4096 + 512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        unlink(path);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    rmdir(dir);
}

/* ---- suppressions ------------------------------------------------------- */

static int load_suppressions(const char *path, struct suppression **out,
                             size_t *count)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return cli_error("check: cannot read suppressions '%s': %s", path,
                         cli_strerror(errno));
    struct suppression *v = calloc(MAX_SUPPRESS, sizeof *v);
    size_t n = 0;
    char line[512];
    long lineno = 0;
    int rc = CLI_OK;
    if (v == NULL) {
        fclose(f);
        return cli_error("check: out of memory");
    }
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        line[strcspn(line, "#\r\n")] = '\0';
        char *s = line, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (*s == '\0')
            continue;
        char *colon = strchr(s, ':');
        if (colon == NULL || colon[1] == '\0') {
            rc = cli_error("check: '%s' line %ld: want 'class:function'", path,
                           lineno);
            break;
        }
        *colon = '\0';
        int cls = strcmp(s, "*") == 0 ? -1 : cs_trace_report_class(s);
        if (cls < 0 && strcmp(s, "*") != 0) {
            rc = cli_error("check: '%s' line %ld: unknown class '%s'", path,
                           lineno, cli_sanitize(s));
            break;
        }
        if (n == MAX_SUPPRESS) {
            rc = cli_error("check: '%s': more than %d suppressions", path,
                           MAX_SUPPRESS);
            break;
        }
        v[n].cls = cls;
        snprintf(v[n].func, sizeof v[n].func, "%s", colon + 1);
        n++;
    }
    if (rc == CLI_OK && ferror(f))
        rc = cli_error("check: cannot read suppressions '%s': %s", path,
                       cli_strerror(errno));
    fclose(f);
    if (rc != CLI_OK) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return CLI_OK;
}

static int suppressed(const struct report *r, const struct suppression *s,
                      size_t ns)
{
    for (size_t i = 0; i < ns; i++) {
        if (s[i].cls >= 0 && s[i].cls != r->cls)
            continue;
        for (int k = 0; k < r->nframes; k++)
            if (r->frames[k].func[0] != '\0' &&
                fnmatch(s[i].func, r->frames[k].func, 0) == 0)
                return 1;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------- */

/* The frame to blame: the innermost one with a source file that is not
 * the interposer or the C library (relative paths like ../sysdeps). */
static const struct frame *culprit(const struct report *r)
{
    for (int k = 0; k < r->nframes; k++) {
        const char *file = r->frames[k].file;
        size_t n = strlen(file);
        if (file[0] == '\0' || r->frames[k].line <= 0 ||
            r->frames[k].library || strncmp(file, "../", 3) == 0 ||
            (n >= 11 && strcmp(file + n - 11, "interpose.c") == 0))
            continue;
        return &r->frames[k];
    }
    for (int k = 0; k < r->nframes; k++)
        if (r->frames[k].file[0] != '\0' && r->frames[k].line > 0)
            return &r->frames[k];
    return NULL;
}

static void text_frame(FILE *f, int k, const struct frame *fr,
                       const char *indent)
{
    if (fr->ip[0] == '\0' && fr->func[0]) /* a Python frame: no address */
        fprintf(f, "%s#%-2d %s", indent, k, fr->func);
    else {
        fprintf(f, "%s#%-2d %s", indent, k, fr->ip[0] ? fr->ip : "?");
        if (fr->func[0])
            fprintf(f, " in %s%s", fr->func, fr->inlined ? " [inlined]" : "");
    }
    if (fr->file[0])
        fprintf(f, " (%s:%ld)", fr->file, fr->line);
    fputc('\n', f);
}

static void out_text(FILE *f, const struct reports *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        const struct report *r = &rs->v[i];
        fprintf(f, "coscope: %s\n", r->headline);
        fprintf(f, "  %s in process %ld",
                cs_trace_report_name((unsigned)r->cls), r->pid);
        if (r->task[0])
            fprintf(f, ", task '%s'", r->task);
        fputs(r->failing ? "\n" : " (not failing)\n", f);
        for (int k = 0; k < r->nframes; k++)
            text_frame(f, k, &r->frames[k], "    ");
        if (r->nframes == 0)
            fputs("    (no stack)\n", f);
    }
}

static void json_frames(FILE *f, const struct report *r)
{
    fputc('[', f);
    for (int k = 0; k < r->nframes; k++) {
        const struct frame *fr = &r->frames[k];
        fprintf(f, "%s{\"ip\":", k ? "," : "");
        cli_json_str(f, fr->ip);
        fputs(",\"function\":", f);
        if (fr->func[0])
            cli_json_str(f, fr->func);
        else
            fputs("null", f);
        fputs(",\"file\":", f);
        if (fr->file[0])
            cli_json_str(f, fr->file);
        else
            fputs("null", f);
        fprintf(f, ",\"line\":%ld%s}", fr->line,
                fr->inlined ? ",\"inlined\":true" : "");
    }
    fputc(']', f);
}

static void out_json(FILE *f, const struct reports *rs, char **cmd,
                     int cmd_status, size_t failing)
{
    fputs("{\"command\":[", f);
    for (int i = 0; cmd[i]; i++) {
        fputs(i ? "," : "", f);
        cli_json_str(f, cmd[i]);
    }
    fprintf(f,
            "],\"exit_status\":%d,\"failing\":%zu,\"suppressed\":%zu,"
            "\"reports\":[",
            cmd_status, failing, rs->suppressed);
    for (size_t i = 0; i < rs->n; i++) {
        const struct report *r = &rs->v[i];
        fprintf(f, "%s\n{\"class\":\"%s\",\"failing\":%s,\"headline\":",
                i ? "," : "", cs_trace_report_name((unsigned)r->cls),
                r->failing ? "true" : "false");
        cli_json_str(f, r->headline);
        fputs(",\"task\":", f);
        if (r->task[0])
            cli_json_str(f, r->task);
        else
            fputs("null", f);
        fprintf(f, ",\"pid\":%ld,\"frames\":", r->pid);
        json_frames(f, r);
        fputc('}', f);
    }
    fputs("]}\n", f);
}

static void xml_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* What the JUnit document says of the run as a whole. */
struct run_info {
    char **cmd;
    int status;
    time_t started;
    double secs;
};

static void xml_property(FILE *f, const char *name, const char *value)
{
    fprintf(f, "<property name=\"%s\" value=\"", name);
    xml_str(f, value);
    fputs("\"/>\n", f);
}

/* JUnit XML that validates against both de-facto schemas: Jenkins'
 * (junit-4.xsd of dtkit, xunit-plugin's ancestor) and Apache Ant's
 * (Windy Road's JUnit.xsd).  Ant's is the stricter one: it wants the
 * testsuite's package, id, timestamp (no zone), hostname and time, every
 * testcase's classname and time, properties, system-out and system-err,
 * and allows no other attribute (no file/line on a testcase: the culprit
 * frame's file:line ends the failure message and is in its stack text);
 * Jenkins' wants at least one property. */
static void out_junit(FILE *f, const struct reports *rs, size_t failing,
                      const struct run_info *run)
{
    char stamp[32] = "1970-01-01T00:00:00", host[256] = "localhost";
    char cmd[1024] = "", status[16];
    struct tm tm;
    size_t n = 0;
    if (gmtime_r(&run->started, &tm) != NULL)
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    cli_sanitize(host);
    for (int i = 0; run->cmd[i] && n + 1 < sizeof cmd; i++)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s%s", i ? " " : "",
                              run->cmd[i]);
    cli_sanitize(cmd);
    snprintf(status, sizeof status, "%d", run->status);

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n", f);
    fputs("<testsuite name=\"coscope check\" package=\"coscope\" id=\"0\" "
          "timestamp=\"",
          f);
    fputs(stamp, f);
    fputs("\" hostname=\"", f);
    xml_str(f, host);
    fprintf(f,
            "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
            "time=\"%.3f\">\n<properties>\n",
            failing ? failing : 1, failing, run->secs);
    xml_property(f, "command", cmd);
    xml_property(f, "exit_status", status);
    fputs("</properties>\n", f);
    if (failing == 0)
        fputs("<testcase classname=\"coscope\" name=\"no failing "
              "reports\" time=\"0\"/>\n",
              f);
    for (size_t i = 0; i < rs->n; i++) {
        const struct report *r = &rs->v[i];
        const struct frame *c = culprit(r);
        char where[400] = "";
        if (!r->failing)
            continue;
        if (c != NULL)
            snprintf(where, sizeof where, " at %s:%ld", c->file, c->line);
        fprintf(f, "<testcase classname=\"coscope.%s\" name=\"",
                cs_trace_report_name((unsigned)r->cls));
        xml_str(f, r->headline);
        fputs("\" time=\"0\">\n<failure type=\"", f);
        fputs(cs_trace_report_name((unsigned)r->cls), f);
        fputs("\" message=\"", f);
        xml_str(f, r->headline);
        xml_str(f, where);
        fputs("\">", f);
        char head[64];
        snprintf(head, sizeof head, "process %ld\n", r->pid);
        xml_str(f, head);
        for (int k = 0; k < r->nframes; k++) {
            char line[600];
            const struct frame *fr = &r->frames[k];
            snprintf(line, sizeof line, "#%d %s%s%s", k, fr->ip,
                     fr->func[0] ? " in " : "", fr->func);
            xml_str(f, line);
            if (fr->file[0]) {
                snprintf(line, sizeof line, " (%s:%ld)", fr->file, fr->line);
                xml_str(f, line);
            }
            fputc('\n', f);
        }
        fputs("</failure>\n</testcase>\n", f);
    }
    fputs("<system-out/>\n<system-err/>\n</testsuite>\n</testsuites>\n", f);
}

/* Where class kind stands among the rules out_sarif lists. */
static int sarif_rule_index(int kind)
{
    int i = 0;
#define RULE_INDEX(k, value, name, trace_name, reported)                      \
    if ((value) == kind)                                                      \
        return i;                                                             \
    i += (reported);
    CS_REPORT_CLASS_MAP(RULE_INDEX)
#undef RULE_INDEX
    return -1;
}

/* A file path as a URI reference: absolute paths as file:// URIs. */
static void sarif_uri(FILE *f, const char *path)
{
    static const char keep[] = "/-._~";
    char buf[1024];
    size_t n = 0;
    if (path[0] == '/')
        n = (size_t)snprintf(buf, sizeof buf, "file://");
    for (const unsigned char *s = (const unsigned char *)path;
         *s && n + 4 < sizeof buf; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
            (*s >= '0' && *s <= '9') || (*s && strchr(keep, *s)))
            buf[n++] = (char)*s;
        else
            n += (size_t)snprintf(buf + n, 4, "%%%02X", *s);
    }
    buf[n] = '\0';
    cli_json_str(f, buf);
}

static void out_sarif(FILE *f, const struct reports *rs)
{
    fprintf(f,
            "{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0."
            "json\",\"version\":\"2.1.0\",\"runs\":[{\"tool\":{"
            "\"driver\":{\"name\":\"coscope\",\"version\":\"%s\","
            "\"informationUri\":\"https://github.com/coscope/coscope\","
            "\"rules\":[",
            COSCOPE_VERSION);
    const char *sep = "";
#define RULE(kind, value, name, trace_name, reported)                         \
    if (reported) {                                                           \
        fprintf(f,                                                            \
                "%s{\"id\":\"%s\",\"shortDescription\":{\"text\":"            \
                "\"coscope agent report: %s\"}}",                             \
                sep, name, name);                                             \
        sep = ",";                                                            \
    }
    CS_REPORT_CLASS_MAP(RULE)
#undef RULE
    fputs("]}},\"results\":[", f);
    for (size_t i = 0; i < rs->n; i++) {
        const struct report *r = &rs->v[i];
        const struct frame *c = culprit(r);
        fprintf(f,
                "%s\n{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"%s\","
                "\"message\":{\"text\":",
                i ? "," : "", cs_trace_report_name((unsigned)r->cls),
                sarif_rule_index(r->cls), r->failing ? "error" : "warning");
        cli_json_str(f, r->headline);
        fputs("}", f);
        if (c != NULL) {
            fputs(",\"locations\":[{\"physicalLocation\":{"
                  "\"artifactLocation\":{\"uri\":",
                  f);
            sarif_uri(f, c->file);
            fprintf(f, "},\"region\":{\"startLine\":%ld}}", c->line);
            if (c->func[0]) {
                fputs(",\"logicalLocations\":[{\"name\":", f);
                cli_json_str(f, c->func);
                fputs(",\"kind\":\"function\"}]", f);
            }
            fputs("}]", f);
        }
        fprintf(f, ",\"properties\":{\"pid\":%ld", r->pid);
        if (r->task[0]) {
            fputs(",\"task\":", f);
            cli_json_str(f, r->task);
        }
        fputs(",\"frames\":", f);
        json_frames(f, r);
        fputs("}}", f);
    }
    fputs("]}]}\n", f);
}

/* ---- the command -------------------------------------------------------- */

enum { FMT_TEXT, FMT_JSON, FMT_JUNIT, FMT_SARIF };

static int parse_fail_on(const char *v, unsigned *mask)
{
    char buf[256], *save = NULL;
    if (strlen(v) >= sizeof buf)
        return cli_error("check: --fail-on list too long");
    snprintf(buf, sizeof buf, "%s", v);
    *mask = 0;
    for (char *w = strtok_r(buf, ",", &save); w;
         w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "all") == 0) {
            *mask = CS_REPORT_ALL;
            continue;
        }
        int k = cs_trace_report_class(w);
        if (k < 0)
            return cli_error("check: unknown report class '%s' in --fail-on "
                             "(see 'coscope help check')",
                             cli_sanitize(w));
        *mask |= CS_REPORT_BIT(k);
    }
    return CLI_OK;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"fail-on", required_argument, NULL, 'F'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"suppress", required_argument, NULL, 's'},
        {"preload", no_argument, NULL, 'p'},
        {"no-preload", no_argument, NULL, 'n'},
        {"allow-untraced", no_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned fail_mask = CS_REPORT_ALL;
    int c, fmt = FMT_TEXT, preload = 1, allow_untraced = 0;
    const char *out_path = NULL, *supp_path = NULL;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            return fputs(cmd_check_usage, stdout), CLI_OK;
        case 'F':
            if (parse_fail_on(optarg, &fail_mask) != CLI_OK)
                return CLI_ERROR;
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0)
                fmt = FMT_TEXT;
            else if (strcmp(optarg, "json") == 0)
                fmt = FMT_JSON;
            else if (strcmp(optarg, "junit") == 0)
                fmt = FMT_JUNIT;
            else if (strcmp(optarg, "sarif") == 0)
                fmt = FMT_SARIF;
            else
                return cli_error("check: unknown format '%s' (text, json, "
                                 "junit or sarif)",
                                 cli_sanitize(optarg));
            break;
        case 'o':
            out_path = optarg;
            break;
        case 's':
            supp_path = optarg;
            break;
        case 'p':
            preload = 1;
            break;
        case 'n':
            preload = 0;
            break;
        case 'u':
            allow_untraced = 1;
            break;
        default:
            return cli_bad_option("check", argv, optind, optopt);
        }
    }
    if (cli_need_command("check", argc, argv, optind) != CLI_OK)
        return CLI_ERROR;

    struct suppression *supp = NULL;
    size_t nsupp = 0;
    if (supp_path != NULL &&
        load_suppressions(supp_path, &supp, &nsupp) != CLI_OK)
        return CLI_ERROR;
    const char *lib = NULL;
    if (preload && (lib = cli_preload_path()) == NULL) {
        free(supp);
        return cli_error("check: cannot find libcoscope-preload.so (set "
                         "COSCOPE_PRELOAD, or use --no-preload)");
    }
    /* the output file is opened first: a bad path costs no run */
    FILE *out = stdout;
    if (out_path != NULL && (out = fopen(out_path, "we")) == NULL) {
        free(supp);
        return cli_error("check: cannot write '%s': %s", out_path,
                         cli_strerror(errno));
    }

    char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/coscope-check.XXXXXX",
             tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        int e = errno;
        free(supp);
        if (out != stdout)
            fclose(out);
        return cli_error("check: cannot create a temporary directory: %s",
                         cli_strerror(e));
    }

    int status = 0;
    time_t started = time(NULL);
    uint64_t t0 = cli_now_ns();
    fflush(stdout);
    /* a document on stdout must not be mixed with the command's output */
    int out_to_err = out == stdout && fmt != FMT_TEXT;
    if (cli_spawn_wait("check", argv + optind, lib, dir, out_to_err,
                       &status) != CLI_OK) {
        remove_dir(dir);
        free(supp);
        if (out != stdout) {
            fclose(out);
            unlink(out_path);
        }
        return CLI_ERROR;
    }
    int cmd_status = cli_shell_status(status);
    struct run_info run = {argv + optind, cmd_status, started,
                           (double)(cli_now_ns() - t0) / 1e9};

    struct reports rs = {0};
    struct seen sn = {0};
    collect(dir, &rs, &sn);
    remove_dir(dir);
    if (rs.dropped)
        cli_warn("check: %zu reports past the first %d were left out",
                 rs.dropped, MAX_REPORTS);

    size_t kept = 0, failing = 0;
    for (size_t i = 0; i < rs.n; i++) {
        if (suppressed(&rs.v[i], supp, nsupp)) {
            rs.suppressed++;
            continue;
        }
        rs.v[kept] = rs.v[i];
        rs.v[kept].failing = (fail_mask >> rs.v[kept].cls) & 1;
        failing += (size_t)rs.v[kept].failing;
        kept++;
    }
    rs.n = kept;
    free(supp);

    switch (fmt) {
    case FMT_TEXT:
        out_text(out, &rs);
        break;
    case FMT_JSON:
        out_json(out, &rs, argv + optind, cmd_status, failing);
        break;
    case FMT_JUNIT:
        out_junit(out, &rs, failing, &run);
        break;
    default:
        out_sarif(out, &rs);
        break;
    }
    free(rs.v);
    if (out != stdout) {
        int bad = ferror(out);
        if (fclose(out) != 0 || bad)
            return cli_error("check: cannot write '%s': %s", out_path,
                             cli_strerror(errno));
    }
    fprintf(stderr,
            "coscope: check: %zu report%s (%zu failing, %zu suppressed); "
            "'%s' exited with status %d\n",
            kept, kept == 1 ? "" : "s", failing, rs.suppressed, argv[optind],
            cmd_status);
    int unseen = say_unseen(&sn, preload, allow_untraced);
    if (failing > 0)
        return CLI_FINDINGS;
    return unseen && !allow_untraced ? CLI_UNTRACED : cmd_status;
}
