/*
 * common.c - what several commands share: error messages in git's form
 * ("coscope: cannot read '/dev/shm/coscope.42': ..."), opening a process's
 * segment with one clear line per way it can fail, durations, JSON
 * strings, colour, and the test synchronisation point.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* One line on stderr, "coscope: <prefix><message>", after what stdout
 * holds so far. */
static void say(const char *prefix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "coscope: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("", fmt, ap);
    va_end(ap);
    return CLI_ERROR;
}

/* msg with its first letter lowercase ("No such file" -> "no such
 * file"), unless it starts with a word in capitals ("I/O error" stays). */
static const char *lowercase_first(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg);
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

const char *cli_strerror(int e)
{
    static char buf[128];
    return lowercase_first(strerror(e), buf, sizeof buf);
}

const char *cli_trace_strerror(int err)
{
    static char buf[128];
    return lowercase_first(cs_trace_strerror(err), buf, sizeof buf);
}

int cli_debug;

const char *cli_trace_detail(void)
{
    static char buf[192];
    snprintf(buf, sizeof buf, "%s", cs_trace_error_detail());
    char *at = strstr(buf, " (libtrace line ");
    if (at != NULL && !cli_debug) /* where in libtrace: for --debug only */
        *at = '\0';
    return buf;
}

int cli_trace_file_error(const char *path, int err)
{
    if (err == CS_TRACE_ECORRUPT)
        return cli_error("'%s' is not a valid coscope trace file: %s", path,
                         cli_trace_detail());
    if (err == CS_TRACE_EVERSION)
        return cli_error("'%s' has an unsupported format: %s", path,
                         cli_trace_detail());
    if (err == -ENOMEM)
        return cli_error("out of memory reading '%s'", path);
    if (err == -EISDIR)
        return cli_error("cannot read '%s': is a directory", path);
    return cli_error("cannot read '%s': %s", path, cli_trace_strerror(err));
}

int cli_open_trace_file(const char *path, int partial, cs_trace **out,
                        cs_trace_info *info)
{
    struct stat st;
    *out = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_trace_file_error(path, -EISDIR);
    cs_trace *t = NULL;
    int err = cs_trace_open_file(path, &t);
    if (err == 0)
        err = cs_trace_info_get(t, info);
    if (err != 0) {
        cs_trace_close(t);
        return cli_trace_file_error(path, err);
    }
    if (stat(path, &st) == 0 && info->valid_bytes < (uint64_t)st.st_size &&
        !partial) {
        cs_trace_close(t);
        return cli_error("'%s' is truncated or damaged after byte %llu of "
                         "%llu (use --partial to read the part before)",
                         path, (unsigned long long)info->valid_bytes,
                         (unsigned long long)st.st_size);
    }
    *out = t;
    return CLI_OK;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("warning: ", fmt, ap);
    va_end(ap);
}

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_need_command(const char *cmd, int argc, char **argv, int optind)
{
    if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
        return cli_error("%s: put '--' before the command (coscope %s -- "
                         "%s ...)",
                         cmd, cmd, argv[optind]);
    if (optind >= argc)
        return cli_error("%s: missing '-- <command>' (see 'coscope help %s')",
                         cmd, cmd);
    return CLI_OK;
}

int cli_bad_option(const char *cmd, char **argv, int optind, int optopt)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (optopt != 0 && optopt != '?' && arg[0] == '-' && arg[1] != '-')
        return cli_error("%s: unknown or incomplete option '-%c' (see "
                         "'coscope help %s')",
                         cmd, optopt, cmd);
    return cli_error("%s: unknown or incomplete option '%s' (see 'coscope "
                     "help %s')",
                     cmd, arg, cmd);
}

int cli_parse_pid(const char *s, int *pid)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v <= 0 ||
        v > INT_MAX)
        return cli_error("'%s' is not a process id", s);
    *pid = (int)v;
    return CLI_OK;
}

char *cli_proc_cmdline(int pid, char *buf, size_t cap)
{
    char path[64];
    buf[0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0) {
        buf[0] = '\0';
        return buf;
    }
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0' || buf[i] == '\n')
            buf[i] = ' ';
    buf[n] = '\0';
    return buf;
}

int cli_segment_pid(const char *name)
{
    size_t n = strlen(CS_SEG_PREFIX);
    if (strncmp(name, CS_SEG_PREFIX, n) != 0 || name[n] < '1' || name[n] > '9')
        return 0;
    long v = 0;
    for (const char *p = name + n; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return (int)v;
}

static const char *seg_path(int pid, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s%d", CS_SEG_DIR, CS_SEG_PREFIX, pid);
    return buf;
}

/* The message for a segment we may not read. */
static int access_error(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && st.st_uid != geteuid())
        return cli_error("cannot read '%s': it belongs to another user (uid "
                         "%u); run coscope as that user or as root",
                         path, (unsigned)st.st_uid);
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        return cli_error("refusing '%s': mode %03o, a coscope segment is "
                         "0600",
                         path, (unsigned)(st.st_mode & 0777));
    return cli_error("cannot read '%s': permission denied", path);
}

/* The message for a segment whose writer is gone or whose pid was reused. */
static int stale_error(int pid, const char *path)
{
    uint64_t st;
    if (cs_trace_pid_start_time(pid, &st) == -ESRCH)
        return cli_error("process %d has exited; '%s' is stale (remove it "
                         "with 'coscope ps --clean')",
                         pid, path);
    return cli_error("'%s' is stale: pid %d now belongs to another process "
                     "(remove it with 'coscope ps --clean')",
                     path, pid);
}

int cli_open_pid(int pid, cs_trace **out)
{
    char path[64], cmd[256];
    uint64_t st;
    seg_path(pid, path, sizeof path);
    int err = cs_trace_open_pid(pid, out);
    if (err == 0) {
        int stale = cs_trace_stale(*out);
        if (stale == 0)
            return CLI_OK;
        cs_trace_close(*out);
        *out = NULL;
        if (stale == 1)
            return stale_error(pid, path);
        return cli_error("cannot check that process %d is alive: %s", pid,
                         cli_trace_strerror(stale));
    }
    switch (err) {
    case -ENOENT:
        if (cs_trace_pid_start_time(pid, &st) == -ESRCH)
            return cli_error("no process with pid %d", pid);
        cli_sanitize(cli_proc_cmdline(pid, cmd, sizeof cmd));
        return cli_error("process %d ('%s') is not a coscope process: it has "
                         "no '%s'",
                         pid, cmd, path);
    case -EACCES:
        return access_error(path);
    case -EPERM: /* planted: not made by the process's user */
        return cli_error("refusing '%s': %s", path, cs_trace_error_detail());
    case -EAGAIN:
        return cli_error("'%s' is still being initialised; try again", path);
    case -ELOOP:
        return cli_error("refusing '%s': it is a symbolic link", path);
    case -EINVAL:
        return cli_error("refusing '%s': not a regular file", path);
    case CS_TRACE_ECORRUPT:
        return cli_error("'%s' is not a valid coscope segment: %s", path,
                         cs_trace_error_detail());
    case CS_TRACE_EVERSION:
        return cli_error("'%s' has an unsupported format: %s", path,
                         cs_trace_error_detail());
    default:
        return cli_error("cannot open '%s': %s", path,
                         cli_trace_strerror(err));
    }
}

int cli_check_alive(cs_trace *t, int pid)
{
    if (cs_trace_stale(t) == 0)
        return CLI_OK;
    return cli_error("process %d exited while it was being read", pid);
}

int cli_memory_error(int pid, int err)
{
    if (err == -EPERM || err == -EACCES)
        return cli_error("cannot read the memory of process %d: permission "
                         "denied (coscope must run as the same user as the "
                         "process, or with CAP_SYS_PTRACE; "
                         "kernel.yama.ptrace_scope may also forbid it)",
                         pid);
    if (err == -ESRCH)
        return cli_error("process %d exited while it was being read", pid);
    if (err == -ENOSYS)
        return cli_error("--stacks is not supported on this architecture");
    return cli_error("cannot read the memory of process %d: %s", pid,
                     cli_strerror(-err));
}

/* Names of the system calls a blocked loop thread is most often in. */
static const char *syscall_name(long nr)
{
#if defined(__x86_64__)
    static const struct {
        long nr;
        const char *name;
    } names[] = {
        {0, "read"},          {1, "write"},
        {7, "poll"},          {23, "select"},
        {35, "nanosleep"},    {42, "connect"},
        {43, "accept"},       {44, "sendto"},
        {45, "recvfrom"},     {46, "sendmsg"},
        {47, "recvmsg"},      {61, "wait4"},
        {72, "fcntl"},        {74, "fsync"},
        {202, "futex"},       {230, "clock_nanosleep"},
        {232, "epoll_wait"},  {257, "openat"},
        {270, "pselect6"},    {271, "ppoll"},
        {281, "epoll_pwait"}, {288, "accept4"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].nr == nr)
            return names[i].name;
#else
    (void)nr;
#endif
    return NULL;
}

int cli_thread_state(int pid, int tid, char *syscall, size_t cap)
{
    char path[96], buf[512];
    syscall[0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ')
        return 0;
    int state = (unsigned char)p[2];
    if (state == 'R')
        return state;
    /* Which system call (needs ptrace rights; silently absent without). */
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            char *end;
            long nr = strtol(buf, &end, 10);
            const char *name = end != buf ? syscall_name(nr) : NULL;
            if (name)
                snprintf(syscall, cap, "%s", name);
            else if (end != buf && nr >= 0)
                snprintf(syscall, cap, "system call %ld", nr);
        }
    }
    return state;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

char *cli_fmt_duration(uint64_t ns, char *buf, size_t cap)
{
    if (ns < 1000)
        snprintf(buf, cap, "%uns", (unsigned)ns);
    else if (ns < 1000000)
        snprintf(buf, cap, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2fms", (double)ns / 1e6);
    else if (ns < 60 * 1000000000ull)
        snprintf(buf, cap, "%.2fs", (double)ns / 1e9);
    else if (ns < 3600 * 1000000000ull)
        snprintf(buf, cap, "%um%02us", (unsigned)(ns / 60000000000ull),
                 (unsigned)(ns / 1000000000ull % 60));
    else
        snprintf(buf, cap, "%lluh%02um",
                 (unsigned long long)(ns / 3600000000000ull),
                 (unsigned)(ns / 60000000000ull % 60));
    return buf;
}

/* Length of the valid UTF-8 sequence at s, or 0.  Strict (RFC 3629):
 * no overlong forms, no surrogates, nothing past U+10FFFF; and not
 * U+FFFE/U+FFFF, which XML forbids (check's JUnit output). */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] >= 0xf0 && s[0] <= 0xf4   ? 4
            : s[0] >= 0xe0 && s[0] <= 0xef ? 3
            : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                                           : 0;
    uint32_t cp = n == 4 ? s[0] & 0x07u : n == 3 ? s[0] & 0x0fu : s[0] & 0x1fu;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 &&
         (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) || cp >= 0xfffe)) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

char *cli_sanitize(char *str)
{
    unsigned char *s = (unsigned char *)str;
    while (*s) {
        int n = *s < 0x80 ? 1 : utf8_len(s);
        if (n == 0 || *s < 0x20 || *s == 0x7f) {
            *s++ = '?';
            continue;
        }
        s += n;
    }
    return str;
}

void cli_json_str(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        int n;
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
            fputc(*s++, f);
        } else if (*s < 0x20 || *s == 0x7f) {
            fprintf(f, "\\u%04x", *s++);
        } else if (*s < 0x80) {
            fputc(*s++, f);
        } else if ((n = utf8_len(s)) > 0) {
            fwrite(s, 1, (size_t)n, f);
            s += n;
        } else { /* not UTF-8: keep the byte as a code point */
            fprintf(f, "\\u%04x", *s++);
        }
    }
    fputc('"', f);
}

int cli_color(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *nc = getenv("NO_COLOR");
        const char *term = getenv("TERM");
        cached = isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0') &&
                 !(term != NULL && strcmp(term, "dumb") == 0);
    }
    return cached;
}

const char *cli_sgr(const char *code)
{
    return cli_color() ? code : "";
}

void cli_test_point(const char *name)
{
    const char *spec = getenv("COSCOPE_TEST_SYNC");
    int wfd, rfd;
    char c;
    if (spec == NULL || sscanf(spec, "%d,%d", &wfd, &rfd) != 2)
        return;
    if (write(wfd, name, strlen(name)) < 0 || write(wfd, "\n", 1) < 0)
        return;
    while (read(rfd, &c, 1) < 0 && errno == EINTR)
        ;
}

int cli_http_read_head(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t got = 0;
    while (got + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (timeout_ms >= 0 && poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (int)got;
    }
    return -1;
}
