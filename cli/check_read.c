/*
 * check_read.c - `coscope check`'s input: the reports every agent appended
 * to DIR/<pid>.jsonl (one JSON object a line, agent/report.c), the
 * agents' DIR/<pid>.agent notes, and --suppress files.  All of it is
 * hostile input: lines are bounded, malformed ones skipped with a
 * warning, strings sanitised.  The JSON reader is small and strict: it
 * knows the fields check wants and skips the rest (nested at most 32
 * deep).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

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

/* Walks an object (open '{') or an array ('['), calling item(p, key,
 * ctx) at each member's value (key "" in an array). */
static int jseq(struct jp *p, char open,
                int (*item)(struct jp *, const char *, void *), void *ctx)
{
    char close = open == '{' ? '}' : ']';
    ws(p);
    if (*p->s != open)
        return -1;
    p->s++;
    ws(p);
    if (*p->s == close) {
        p->s++;
        return 0;
    }
    for (;;) {
        char key[32] = "";
        if (open == '{') {
            if (jstr(p, key, sizeof key) != 0)
                return -1;
            ws(p);
            if (*p->s++ != ':')
                return -1;
        }
        if (item(p, key, ctx) != 0)
            return -1;
        ws(p);
        if (*p->s == ',') {
            p->s++;
            continue;
        }
        return *p->s++ == close ? 0 : -1;
    }
}

static int jskip(struct jp *p);

static int jskip_item(struct jp *p, const char *key, void *ctx)
{
    (void)key, (void)ctx;
    return jskip(p);
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
    case '[':
        r = jseq(p, *p->s, jskip_item, NULL);
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
    return jseq(p, '{', field, ctx);
}

static int jbool(struct jp *p, int *v)
{
    ws(p);
    if (jlit(p, "true") == 0)
        return *v = 1, 0;
    if (jlit(p, "false") == 0)
        return *v = 0, 0;
    return -1;
}

static int frame_field(struct jp *p, const char *key, void *ctx)
{
    struct check_frame *f = ctx;
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

/* One frame of a report's "frames": kept while there is room. */
static int frame_item(struct jp *p, const char *key, void *ctx)
{
    struct check_report *r = ctx;
    struct check_frame f;
    (void)key;
    memset(&f, 0, sizeof f);
    if (jobject(p, frame_field, &f) != 0)
        return -1;
    if (r->nframes < CHECK_MAX_FRAMES)
        r->frames[r->nframes++] = f;
    return 0;
}

static int report_field(struct jp *p, const char *key, void *ctx)
{
    struct check_report *r = ctx;
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
    if (strcmp(key, "frames") == 0)
        return jseq(p, '[', frame_item, r);
    return jskip(p);
}

static int parse_report(const char *line, struct check_report *r)
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

/* DIR/name opened for reading if it is a regular file (no link, no
 * FIFO that would block), else -1. */
static int open_regular(const char *dir, const char *name)
{
    char path[4096 + 512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void read_file(const char *dir, const char *name,
                      struct check_reports *rs, char *line)
{
    int fd = open_regular(dir, name);
    if (fd < 0) {
        cli_warn("check: skipping '%s': not a regular file", name);
        return;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return;
    }
    long lineno = 0;
    while (fgets(line, CHECK_MAX_LINE, f) != NULL) {
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
                     lineno, name, CHECK_MAX_LINE);
            continue;
        }
        if (line[0] == '\0')
            continue;
        if (rs->n >= CHECK_MAX_REPORTS) {
            rs->dropped++;
            continue;
        }
        if (rs->n == rs->cap) {
            size_t cap = rs->cap ? rs->cap * 2 : 16;
            struct check_report *v = realloc(rs->v, cap * sizeof *v);
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

static int note_field(struct jp *p, const char *key, void *ctx)
{
    struct check_note *n = ctx;
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
static void read_note(const char *dir, const char *name, struct check_seen *sn,
                      char *line)
{
    int fd = open_regular(dir, name);
    ssize_t k = -1;
    if (fd >= 0) {
        k = read(fd, line, CHECK_MAX_LINE - 1);
        close(fd);
    }
    struct check_note n = {.agent = -1, .interposer = -1};
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
    if (!n.agent && sn->no_agent++ < CHECK_SEEN_SHOWN)
        sn->off[sn->no_agent - 1] = n;
    else if (n.agent && !n.interposer && sn->no_preload++ < CHECK_SEEN_SHOWN)
        sn->bare[sn->no_preload - 1] = n;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void check_collect(const char *dir, struct check_reports *rs,
                   struct check_seen *sn)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dots, by_name);
    if (n < 0) {
        cli_warn("check: cannot read '%s': %s", dir, cli_strerror(errno));
        return;
    }
    char *line = malloc(CHECK_MAX_LINE);
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

void check_remove_dir(const char *dir)
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

int check_load_suppressions(const char *path, struct check_suppression **out,
                            size_t *count)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return cli_error("check: cannot read suppressions '%s': %s", path,
                         cli_strerror(errno));
    struct check_suppression *v = calloc(CHECK_MAX_SUPPRESS, sizeof *v);
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
        if (n == CHECK_MAX_SUPPRESS) {
            rc = cli_error("check: '%s': more than %d suppressions", path,
                           CHECK_MAX_SUPPRESS);
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

static int check_suppressed(const struct check_report *r,
                            const struct check_suppression *s, size_t ns)
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


size_t check_apply(struct check_reports *rs,
                   const struct check_suppression *supp, size_t nsupp,
                   unsigned fail_mask)
{
    size_t kept = 0, failing = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (check_suppressed(&rs->v[i], supp, nsupp)) {
            rs->suppressed++;
            continue;
        }
        rs->v[kept] = rs->v[i];
        rs->v[kept].failing = (fail_mask >> rs->v[kept].cls) & 1;
        failing += (size_t)rs->v[kept].failing;
        kept++;
    }
    rs->n = kept;
    return failing;
}
