/*
 * names.c - error strings, the corruption report, enum names, and the
 * liveness checks on a segment's writer (pid + start time, as /proc says).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static _Thread_local char detail[160];

void cs__tr_set_detail(int line, const char *what)
{
    if (line == 0)
        snprintf(detail, sizeof detail, "%s", what);
    else
        snprintf(detail, sizeof detail, "%s (libtrace line %d)", what, line);
}

int cs__tr_corrupt(cs_trace *t, int line, const char *what)
{
    if (t != NULL && t->corrupt_line == 0) {
        t->corrupt_line = line;
        snprintf(t->corrupt_what, sizeof t->corrupt_what, "%s", what);
    }
    cs__tr_set_detail(line, what);
    return CS_TRACE_ECORRUPT;
}

const char *cs_trace_error_detail(void)
{
    return detail;
}

const char *cs_trace_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case CS_TRACE_ECORRUPT:
        return "data is corrupt";
    case CS_TRACE_EVERSION:
        return "unsupported format version";
    default:
        return code < 0 ? strerror(-code) : "unknown error";
    }
}

#define NAME(table, v)                                                        \
    ((v) < sizeof(table) / sizeof((table)[0]) && (table)[v] ? (table)[v] : "?")

const char *cs_trace_event_name(unsigned type)
{
    static const char *const names[] = {
        [CS_EV_NONE] = "none",
        [CS_EV_TASK_CREATED] = "task-created",
        [CS_EV_TASK_NAME] = "task-name",
        [CS_EV_STEP] = "step",
        [CS_EV_TASK_DONE] = "task-done",
        [CS_EV_TASK_RAISED] = "task-raised",
        [CS_EV_TASK_CANCELLED] = "task-cancelled",
        [CS_EV_CORO_CREATED] = "coro-created",
        [CS_EV_CORO_DROPPED] = "coro-dropped",
        [CS_EV_WARNING] = "warning",
        [CS_EV_LOOP_ITER] = "loop-iteration",
        [CS_EV_WAIT] = "wait",
        [CS_EV_CANCEL] = "cancel",
        [CS_EV_USER] = "user",
        [CS_EV_BATCH] = "batch",
        [CS_EV_YIELDS] = "yields",
    };
    return NAME(names, type);
}

const char *cs_trace_wait_name(unsigned reason)
{
    static const char *const names[] = {
        [CS_WAIT_NONE] = "none",           [CS_WAIT_SLEEP] = "sleep",
        [CS_WAIT_TASK] = "task",           [CS_WAIT_LOCK] = "lock",
        [CS_WAIT_EVENT] = "event",         [CS_WAIT_SEMAPHORE] = "semaphore",
        [CS_WAIT_QUEUE_PUT] = "queue-put", [CS_WAIT_QUEUE_GET] = "queue-get",
        [CS_WAIT_FD_READ] = "fd-read",     [CS_WAIT_FD_WRITE] = "fd-write",
        [CS_WAIT_THREAD] = "thread",       [CS_WAIT_YIELD] = "yield",
        [CS_WAIT_FUTURE] = "future",       [CS_STOP_DONE] = "done",
        [CS_STOP_RAISED] = "raised",       [CS_STOP_CANCELLED] = "cancelled",
    };
    return NAME(names, reason);
}

const char *cs_trace_state_name(unsigned state)
{
    static const char *const names[] = {
        [CS_TASK_FREE] = "free",           [CS_TASK_READY] = "ready",
        [CS_TASK_RUNNING] = "running",     [CS_TASK_WAITING] = "waiting",
        [CS_TASK_DONE] = "done",           [CS_TASK_RAISED] = "raised",
        [CS_TASK_CANCELLED] = "cancelled",
    };
    return NAME(names, state);
}

const char *cs_trace_warning_name(unsigned kind)
{
    static const char *const names[] = {[CS_WARN_NONE] = "none",
#define TRACE_NAME(k, value, name, trace_name, reported) [value] = trace_name,
                                        CS_REPORT_CLASS_MAP(TRACE_NAME)
#undef TRACE_NAME
    };
    return NAME(names, kind);
}

const char *cs_trace_report_name(unsigned kind)
{
    static const char *const names[] = {
#define CLASS_NAME(k, value, name, trace_name, reported) [value] = name,
        CS_REPORT_CLASS_MAP(CLASS_NAME)
#undef CLASS_NAME
    };
    return NAME(names, kind);
}

int cs_trace_report_class(const char *s)
{
#define CLASS_MATCH(k, value, name, trace_name, reported)                     \
    if ((reported) && (strcmp(s, name) == 0 || strcmp(s, trace_name) == 0))   \
        return (value);
    CS_REPORT_CLASS_MAP(CLASS_MATCH)
#undef CLASS_MATCH
    return -1;
}

/* /proc/PID/<file> into buf, NUL-terminated; 0, or -ESRCH if pid is
 * gone. */
static int proc_read(int pid, const char *file, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    return 0;
}

int cs__tr_pid_uids(int pid, unsigned *euid, unsigned *fsuid)
{
    char buf[4096];
    int err = proc_read(pid, "status", buf, sizeof buf);
    if (err)
        return err;
    const char *u = strstr(buf, "\nUid:");
    unsigned ruid;
    if (u == NULL || sscanf(u + 5, "%u %u %*u %u", &ruid, euid, fsuid) != 3)
        return CS_TRACE_ECORRUPT;
    return 0;
}

int cs_trace_pid_start_time(int pid, uint64_t *out)
{
    char buf[1024];
    if (pid <= 0)
        return -EINVAL;
    int err = proc_read(pid, "stat", buf, sizeof buf);
    if (err)
        return err;
    /* Field 2 is "(comm)" and comm may hold anything: skip to the last
     * ')', which is followed by field 3. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return CS_TRACE_ECORRUPT;
    /* A zombie (or a dying task) has exited: it has no live memory and
     * no segment writer any more, whatever its start time says. */
    if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
        return -ESRCH;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL)
            return CS_TRACE_ECORRUPT;
    }
    char *end;
    *out = strtoull(p + 1, &end, 10);
    return end == p + 1 ? CS_TRACE_ECORRUPT : 0;
}

int cs_trace_stale(cs_trace *t)
{
    if (t->is_file)
        return -EINVAL;
    uint64_t st;
    int err = cs_trace_pid_start_time((int)t->hdr.pid, &st);
    if (err == -ESRCH)
        return 1;
    if (err)
        return err;
    /* (A zombie gave -ESRCH above: it is gone for our purposes too.) */
    return st != t->hdr.start_time;
}

int cs_trace_clean_pid(int pid)
{
    char path[64];
    cs_trace *t;
    if (pid <= 0)
        return -EINVAL;
    snprintf(path, sizeof path, "%s/%s%d", CS_SEG_DIR, CS_SEG_PREFIX, pid);
    int err = cs_trace_open_segment(path, &t);
    int stale;
    if (err == 0) {
        stale = cs_trace_stale(t);
        cs_trace_close(t);
    } else if (err == -ENOENT || err == -EACCES || err == -ELOOP) {
        return err;
    } else { /* unreadable or corrupt: remove it only if pid is gone */
        uint64_t st;
        stale = cs_trace_pid_start_time(pid, &st) == -ESRCH;
    }
    if (stale != 1)
        return stale < 0 ? stale : 0;
    return unlink(path) == 0 ? 1 : -errno;
}
