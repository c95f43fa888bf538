/*
 * test_trace_ring.c - the lock-free protocols under load: exact loss
 * accounting when the writer overwrites what the reader has not read
 * (received + lost == written, always), untorn records with a writer in
 * another process, and untorn task slots with a writer in another thread.
 */
#include "tl.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int teardown(void **state)
{
    (void)state;
    cs__tr_stop();
    return 0;
}

/* Payload derived from the seq, so a torn record is detectable. */
static void emit_n(cs__tr_ring *r, uint64_t from, uint64_t n)
{
    for (uint64_t s = from + 1; s <= from + n; s++)
        cs__tr_emit(r, s * 3, s * 7, CS_REC_INFO(CS_EV_USER, s & 0xff, 0),
                    (uint32_t)(s * 11));
}

static void check_payload(const cs_trace_event *ev, size_t n, uint64_t *prev)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t s = ev[i].seq;
        if (s <= *prev || ev[i].ts != s * 3 || ev[i].task_id != s * 7 ||
            ev[i].reason != (s & 0xff) || ev[i].arg != (uint32_t)(s * 11))
            fail_msg("record %llu torn or out of order (prev %llu)",
                     (unsigned long long)s, (unsigned long long)*prev);
        *prev = s;
    }
}

static void test_trace_ring_overwrite_counts_exact_losses(void **state)
{
    (void)state;
    tl_start(4, 1); /* 128 slots */
    cs__tr_ring *r = cs__tr_ring_acquire();
    emit_n(r, 0, 1000);
    cs_trace *t = tl_open_self();
    uint64_t cursor = 0, lost = 0, prev = 0;
    size_t n;
    cs_trace_event *ev = tl_read_all(t, 0, &cursor, &n, &lost);
    assert_int_equal(n, 128);
    assert_int_equal(lost, 1000 - 128);
    assert_int_equal(ev[0].seq, 1000 - 128 + 1);
    check_payload(ev, n, &prev);
    free(ev);
    emit_n(r, 1000, 50);
    ev = tl_read_all(t, 0, &cursor, &n, &lost);
    assert_int_equal(n, 50);
    assert_int_equal(lost, 1000 - 128);
    assert_int_equal(cursor, 1050);
    check_payload(ev, n, &prev);
    free(ev);
    cs_trace_close(t);
}

static void test_trace_ring_interleaved_batches_account_exactly(void **state)
{
    (void)state;
    tl_start(4, 1);
    cs__tr_ring *r = cs__tr_ring_acquire();
    cs_trace *t = tl_open_self();
    uint64_t written = 0, received = 0, lost = 0, cursor = 0, prev = 0;
    cs_trace_event ev[200];
    srand(42);
    for (int round = 0; round < 3000; round++) {
        uint64_t k = (uint64_t)(rand() % 300);
        emit_n(r, written, k);
        written += k;
        size_t cap = 1 + (size_t)(rand() % 200), n;
        assert_code(cs_trace_read(t, 0, &cursor, ev, cap, &n, &lost), 0);
        assert_true(n <= cap);
        check_payload(ev, n, &prev);
        received += n;
        assert_int_equal(received + lost, cursor);
    }
    size_t n;
    cs_trace_event *rest = tl_read_all(t, 0, &cursor, &n, &lost);
    check_payload(rest, n, &prev);
    received += n;
    free(rest);
    assert_int_equal(received + lost, written);
    assert_true(lost > 0 && received > 0);
    cs_trace_close(t);
}

/* Two processes: the child writes `total` records as fast as it can while
 * the parent reads; at the end received + lost must equal total exactly. */
static void two_process_run(uint32_t ring_kb, uint64_t total)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        tl_start(ring_kb, 1);
        cs__tr_ring *r = cs__tr_ring_acquire();
        if (write(p[1], "s", 1) != 1) /* segment ready */
            _exit(2);
        emit_n(r, 0, total);
        if (write(p[1], "d", 1) != 1) /* done */
            _exit(2);
        pause();
        _exit(0);
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_pid(pid, &t), 0);
    uint64_t cursor = 0, lost = 0, prev = 0, received = 0;
    cs_trace_event *ev = malloc(4096 * sizeof *ev);
    int done = 0;
    while (!done) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        done = poll(&pfd, 1, 0) == 1; /* read once more after "done" */
        size_t n;
        assert_code(cs_trace_read(t, 0, &cursor, ev, 4096, &n, &lost), 0);
        check_payload(ev, n, &prev);
        received += n;
    }
    for (;;) {
        size_t n;
        assert_code(cs_trace_read(t, 0, &cursor, ev, 4096, &n, &lost), 0);
        check_payload(ev, n, &prev);
        received += n;
        if (n == 0)
            break;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(p[0]);
    assert_int_equal(received + lost, total);
    assert_int_equal(cursor, total);
    assert_true(received >= (uint64_t)ring_kb * 1024 / 32);
    free(ev);
    cs_trace_close(t);
    cs_trace_clean_pid(pid);
}

static void test_trace_ring_two_processes_small_ring(void **state)
{
    (void)state;
    two_process_run(4, 2000000);
}

static void test_trace_ring_two_processes_large_ring(void **state)
{
    (void)state;
    two_process_run(256, 3000000);
}

/* ---- task slot seqlock ---------------------------------------------------- */

static int stop_writer;
static uint64_t writer_cycles; /* alloc/update/free cycles done */

/* Allocates, updates and frees one task over and over; every field of a
 * consistent copy is a function of the id. */
static void *slot_writer(void *arg)
{
    (void)arg;
    for (uint64_t k = 1; !__atomic_load_n(&stop_writer, __ATOMIC_RELAXED);
         k++) {
        uint32_t ref = cs__tr_task_alloc(k, (uint32_t)(k * 3),
                                         (uint32_t)(k * 5), k * 7, 0, k);
        for (int step = 0; step < 4; step++) {
            /* The task "runs" between updates, as a real one does; a writer
             * updating back to back would starve the seqlock reader. */
            for (volatile int spin = 0; spin < 100; spin++)
                ;
            cs__tr_task_running(ref, k * 13);
            cs__tr_task_stopped(ref, CS_TASK_WAITING, CS_WAIT_TASK, k * 17,
                                k * 19, 0, k);
            cs__tr_task_park(ref, k * 23, k * 29, k * 31);
        }
        cs__tr_task_free(ref);
        __atomic_store_n(&writer_cycles, k, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_trace_ring_task_slots_never_torn(void **state)
{
    (void)state;
    tl_start(4, 1);
    cs_trace *t = tl_open_self();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slot_writer, NULL), 0);
    uint64_t seen = 0;
    /* Both sides must have done real work concurrently, and the reader
     * must have seen slots: on a loaded machine the writer can win every
     * race for a while, so read on until one consistent copy came (ctest's
     * timeout bounds a reader that never gets one). */
    for (int round = 0;
         round < 100000 || seen == 0 ||
         __atomic_load_n(&writer_cycles, __ATOMIC_RELAXED) < 20000;
         round++) {
        cs_trace_task task;
        uint32_t it = 0;
        while (cs_trace_task_next(t, &it, &task) == 1) {
            uint64_t k = task.id;
            seen++;
            assert_int_equal(task.name, (uint32_t)(k * 3));
            assert_int_equal(task.site, (uint32_t)(k * 5));
            assert_int_equal(task.parent, k * 7);
            assert_int_equal(task.created, k);
            assert_int_equal(task.run_ticks, task.steps * k);
            if (task.state == CS_TASK_WAITING) {
                assert_true(task.steps > 0);
                assert_int_equal(task.wait, CS_WAIT_TASK);
                assert_int_equal(task.wait_target, k * 17);
                assert_int_equal(task.wait_aux, k * 19);
                assert_int_equal(task.last_run, k * 13);
            } else if (task.state == CS_TASK_RUNNING) {
                assert_int_equal(task.wait, CS_WAIT_NONE);
                assert_int_equal(task.last_run, k * 13);
                assert_false(task.flags & CS_TASKF_REGS_VALID);
            } else {
                assert_int_equal(task.state, CS_TASK_READY);
                assert_int_equal(task.steps, 0);
            }
            if (task.flags & CS_TASKF_REGS_VALID) {
                assert_int_equal(task.sp, k * 23);
                assert_int_equal(task.fp, k * 29);
                assert_int_equal(task.ip, k * 31);
            }
        }
    }
    __atomic_store_n(&stop_writer, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    assert_true(seen > 0);
    cs_trace_close(t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_trace_ring_overwrite_counts_exact_losses,
                              teardown),
    cmocka_unit_test_teardown(
        test_trace_ring_interleaved_batches_account_exactly, teardown),
    cmocka_unit_test_teardown(test_trace_ring_two_processes_small_ring,
                              teardown),
    cmocka_unit_test_teardown(test_trace_ring_two_processes_large_ring,
                              teardown),
    cmocka_unit_test_teardown(test_trace_ring_task_slots_never_torn, teardown),
};

TL_MAIN("libtrace_ring", tests)
