/*
 * recorder.c - the streaming recorder (COSCOPE_RECORD=path): a background
 * thread that drains every ring into a trace file every few milliseconds,
 * with bounded memory (one 64 KiB staging buffer and a cursor per ring).
 *
 * It is a reader like any other: events it could not drain before they
 * were overwritten show up as gaps in seq, so the file's loss counts are
 * exact.  Each round writes the newly committed part of the string and
 * stack tables first, then the records; at stop it adds a snapshot of the
 * live tasks and an END chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define REC_BUF (64 * 1024)
#define REC_PERIOD_NS (20 * 1000 * 1000)

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop; /* set by cs__tr_recorder_stop, under lock */
    int fd;
    int err;           /* first write error; the recorder then idles */
    uint64_t *cursor;  /* per ring */
    uint64_t str_done; /* string table bytes written */
    uint64_t stk_done; /* stack table bytes written */
    uint32_t mod_done; /* module entries written */
    uint8_t *buf;
} rec;

/* Writes the table bytes committed since *done. */
static int flush_table(unsigned kind, const uint8_t *table, uint64_t size,
                       uint64_t used, uint64_t *done)
{
    uint64_t off = cs__tr_table_committed(kind, table, size, used, *done);
    int err =
        cs__tr_fw_table(rec.fd, kind, table, *done, off, rec.buf, REC_BUF);
    if (!err)
        *done = off;
    return err;
}

static int drain(void)
{
    cs__tr_seg *g = &cs__tr_seg_g;
    cs_seg_header *h = g->hdr;
    int err = flush_table(CS_CHUNK_STRINGS, g->strings, g->strings_size,
                          __atomic_load_n(&h->strings_used, __ATOMIC_ACQUIRE),
                          &rec.str_done);
    if (!err)
        err = flush_table(CS_CHUNK_STACKS, g->stacks, g->stacks_size,
                          __atomic_load_n(&h->stacks_used, __ATOMIC_ACQUIRE),
                          &rec.stk_done);
    /* Objects dlopen'ed since the last round (one callback if none), so
     * that stacks through them can be named later. */
    cs__tr_modules_refresh(0);
    uint32_t mods = cs__tr_modules_count();
    if (!err && mods > rec.mod_done) {
        err = cs__tr_fw_modules(rec.fd, (const cs_module *)(g->modules + 1),
                                rec.mod_done, mods, rec.buf, REC_BUF);
        if (!err)
            rec.mod_done = mods;
    }
    for (uint32_t i = 0; !err && i < h->ring_count; i++) {
        const cs_ring_header *rh =
            (const cs_ring_header *)(g->rings + i * g->ring_stride);
        err = cs__tr_fw_ring(rec.fd, i, rh, (const cs_record *)(rh + 1),
                             h->ring_slots, &rec.cursor[i], rec.buf, REC_BUF);
    }
    return err;
}

static void *recorder_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rec.lock);
    while (!rec.stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += REC_PERIOD_NS;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&rec.wake, &rec.lock, &until);
        if (!rec.stop && rec.err == 0)
            rec.err = drain();
    }
    pthread_mutex_unlock(&rec.lock);
    return NULL;
}

int cs__tr_recorder_start(const char *path)
{
    memset(&rec, 0, sizeof rec);
    rec.fd = cs__tr_file_create(path);
    if (rec.fd < 0)
        return rec.fd;
    rec.cursor = calloc(cs__tr_seg_g.hdr->ring_count, sizeof *rec.cursor);
    rec.buf = malloc(REC_BUF);
    int err = rec.cursor && rec.buf ? 0 : -ENOMEM;
    if (!err)
        err = cs__tr_fw_header(rec.fd, cs__tr_seg_g.hdr, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rec.wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&rec.lock, NULL);
    if (!err)
        err = -cs__tr_thread_start(&rec.thread, NULL, recorder_main, NULL);
    if (err) {
        close(rec.fd);
        free(rec.cursor);
        free(rec.buf);
        return err;
    }
    return 0;
}

void cs__tr_recorder_stop(void)
{
    pthread_mutex_lock(&rec.lock);
    rec.stop = 1;
    pthread_cond_signal(&rec.wake);
    pthread_mutex_unlock(&rec.lock);
    pthread_join(rec.thread, NULL);
    if (rec.err == 0)
        rec.err = drain();
    uint64_t hwm =
        __atomic_load_n(&cs__tr_seg_g.hdr->tasks_hwm, __ATOMIC_ACQUIRE);
    if (hwm > cs__tr_seg_g.hdr->task_slots)
        hwm = cs__tr_seg_g.hdr->task_slots;
    if (rec.err == 0)
        rec.err =
            cs__tr_fw_tasks(rec.fd, cs__tr_g.tasks, hwm, rec.buf, REC_BUF);
    if (rec.err == 0)
        cs__tr_fw_chunk(rec.fd, CS_CHUNK_END, 0, 0, 0, rec.buf, 0);
    close(rec.fd);
    free(rec.cursor);
    free(rec.buf);
    pthread_cond_destroy(&rec.wake);
    pthread_mutex_destroy(&rec.lock);
}
