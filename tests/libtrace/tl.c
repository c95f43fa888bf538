/*
 * tl.c - see tl.h.
 */
#include "tl.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tl_config(cs__tr_config *cfg, uint32_t ring_kb, uint32_t rings)
{
    cs__tr_config_env(cfg);
    cfg->enabled = 1;
    cfg->ring_kb = ring_kb;
    cfg->rings = rings;
    cfg->task_slots = 256;
    cfg->strings_kb = 16;
    cfg->stacks_kb = 16;
    cfg->record = NULL;
    cfg->flight = NULL;
}

void tl_start(uint32_t ring_kb, uint32_t rings)
{
    cs__tr_config cfg;
    tl_config(&cfg, ring_kb, rings);
    int rc = cs__tr_start_with(&cfg);
    if (rc != 0)
        fail_msg("cs__tr_start_with: %d", rc);
}

cs_trace *tl_open_self(void)
{
    cs_trace *t = NULL;
    assert_code(cs_trace_open_pid((int)getpid(), &t), 0);
    assert_non_null(t);
    return t;
}

cs_trace_event *tl_read_all(cs_trace *t, uint32_t r, uint64_t *cursor,
                            size_t *n, uint64_t *lost)
{
    size_t cap = 1024, got;
    /* Zeroed, so that tests may compare events (padding too) as bytes. */
    cs_trace_event *ev = calloc(cap, sizeof *ev);
    assert_non_null(ev);
    *n = 0;
    for (;;) {
        if (cap - *n < 256) {
            cap *= 2;
            ev = realloc(ev, cap * sizeof *ev);
            assert_non_null(ev);
            memset(ev + cap / 2, 0, cap / 2 * sizeof *ev);
        }
        assert_code(cs_trace_read(t, r, cursor, ev + *n, cap - *n, &got, lost),
                    0);
        *n += got;
        if (got == 0)
            return ev;
    }
}

static char dir[64];
static char path[160];
static pid_t dir_owner; /* forked children must not remove it at exit */

static void rm_dir(void)
{
    char cmd[128];
    if (getpid() != dir_owner)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "tl: cannot remove %s\n", dir);
}

const char *tl_tmpdir(void)
{
    if (dir[0] == '\0') {
        strcpy(dir, "/tmp/coscope-tl.XXXXXX");
        if (mkdtemp(dir) == NULL)
            fail_msg("mkdtemp failed");
        dir_owner = getpid();
        atexit(rm_dir);
    }
    return dir;
}

const char *tl_path(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", tl_tmpdir(), name);
    return path;
}

uint8_t *tl_slurp(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

void tl_spit(const char *p, const void *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0600), 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}
