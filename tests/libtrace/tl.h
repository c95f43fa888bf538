/*
 * tl.h - helpers shared by the libtrace tests (private to tests/libtrace).
 *
 * The tests use libtrace's writer (libtrace/writer.h) to make real segments
 * and trace files, and the public reader (coscope/trace.h) to read them
 * back: every test goes through the same bytes a user's reader would see.
 */
#ifndef TL_H
#define TL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coscope/trace.h"
#include "writer.h"

/* Small, test-friendly sizes (ring_kb per ring), no recording: a config
 * to adjust before cs__tr_start_with, or tl_start's own. */
void tl_config(cs__tr_config *cfg, uint32_t ring_kb, uint32_t rings);
/* Starts tracing with small, test-friendly sizes (ring_kb per ring). */
void tl_start(uint32_t ring_kb, uint32_t rings);
/* Opens this process's live segment, failing the test on error. */
cs_trace *tl_open_self(void);
/* Reads every event of ring r after *cursor into a malloc'd array. */
cs_trace_event *tl_read_all(cs_trace *t, uint32_t r, uint64_t *cursor,
                            size_t *n, uint64_t *lost);
/* A fresh private directory under /tmp; tl_path() names a file in it. */
const char *tl_tmpdir(void);
const char *tl_path(const char *name);
/* Whole-file helpers (fail the test on error). */
uint8_t *tl_slurp(const char *path, size_t *len);
void tl_spit(const char *path, const void *data, size_t len);
/* Fails unless the code is as expected, naming both. */
#define assert_code(rc, want)                                                 \
    do {                                                                      \
        int tl__r = (int)(rc), tl__w = (int)(want);                           \
        if (tl__r != tl__w)                                                   \
            fail_msg("%s: got %d (%s), want %d (%s) [%s]", #rc, tl__r,        \
                     cs_trace_strerror(tl__r), tl__w,                         \
                     cs_trace_strerror(tl__w), cs_trace_error_detail());      \
    } while (0)

/* Shared main: runs the table, or only tests whose names match argv[1]. */
#define TL_MAIN(name, table)                                                  \
    int main(int argc, char **argv)                                           \
    {                                                                         \
        if (argc > 1)                                                         \
            cmocka_set_test_filter(argv[1]);                                  \
        return cmocka_run_group_tests_name(name, table, NULL, NULL);          \
    }

#endif
