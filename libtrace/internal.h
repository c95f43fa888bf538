/*
 * internal.h - private to libtrace.  Nothing outside libtrace/ includes it.
 *
 * Files: segment.c (segment lifecycle, rings), tables.c (task slots,
 * strings, stacks), modules.c (module table), clock.c (trace clock),
 * ring_read.c (the lock-free ring reading protocol, shared by the reader,
 * the recorder and the dump),
 * file_write.c (trace file chunks, flight recorder), recorder.c (streaming
 * recorder thread), reader.c / reader_file.c (the public reader API),
 * reader_record.c (recording a live segment from another process),
 * names.c (enum names, error strings), crc32.c.
 */
#ifndef CS_LIBTRACE_INTERNAL_H
#define CS_LIBTRACE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "coscope/trace.h"
#include "coscope/trace_format.h"
#include "writer.h"

#define CS__ALIGN(x, a) (((x) + ((a)-1)) & ~(uint64_t)((a)-1))

/* ---- crc32.c -------------------------------------------------------------- */
/* CRC-32 of n bytes continuing from crc (start with 0).  Signal-safe. */
uint32_t cs__tr_crc32(uint32_t crc, const void *data, size_t n);

/* ---- clock.c -------------------------------------------------------------- */
typedef struct cs__tr_clock_cal {
    int tsc;                  /* 1 if the TSC is the trace clock */
    uint64_t tsc_anchor;      /* clock value at the anchor */
    uint64_t ns_anchor;       /* CLOCK_MONOTONIC ns at the anchor */
    uint64_t realtime_anchor; /* CLOCK_REALTIME ns at the anchor */
    uint64_t ns_mult;         /* ns per tick, 32.32 */
    uint64_t tick_hz;         /* ticks per second */
} cs__tr_clock_cal;
/* Picks the clock (TSC when invariant, unless force_monotonic) and
 * calibrates it against CLOCK_MONOTONIC (takes a few milliseconds). */
void cs__tr_clock_calibrate(cs__tr_clock_cal *cal, int force_monotonic);
/* ticks -> ns with a 32.32 multiplier, without overflow for any input
 * that fits the result. */
uint64_t cs__tr_ticks_scale(uint64_t ticks, uint64_t mult);

/* ---- ring_read.c ---------------------------------------------------------- */
/*
 * Copies records with index >= *cursor out of one ring, in order, up to cap
 * of them, following the protocol in trace_format.h.  Overwritten records
 * are added to *lost; *cursor advances past everything received or lost.
 * Stops early at a record still being written.  nslots must be the trusted
 * slot count (power of two).  Returns the number copied.  Works on hostile
 * memory: only slot[0..nslots) and hdr are touched.
 */
size_t cs__tr_ring_read(const cs_ring_header *hdr, const cs_record *slot,
                        uint64_t nslots, uint64_t *cursor, cs_record *out,
                        size_t cap, uint64_t *lost);
/* Consistent copy of a task slot (seqlock), bounded retries.  Returns 0, or
 * -EAGAIN if the slot kept changing. */
int cs__tr_task_read(const cs_task_slot *s, cs_task_slot *out);

/* ---- tables.c ------------------------------------------------------------- */
/* Size of the string table entry at off (0 if not committed or invalid).
 * Used to find the committed prefix of a table. */
uint64_t cs__tr_string_entry_size(const uint8_t *table, uint64_t size,
                                  uint64_t off);
uint64_t cs__tr_stack_entry_size(const uint8_t *table, uint64_t size,
                                 uint64_t off);
/* The end of the whole entries of table kind (CS_CHUNK_STRINGS or
 * CS_CHUNK_STACKS) from done (or the first entry) up to used, at most
 * size: what a recording may copy of a table being appended to. */
uint64_t cs__tr_table_committed(unsigned kind, const uint8_t *table,
                                uint64_t size, uint64_t used, uint64_t done);
/* Resets the allocators when a segment is created (size in slots). */
int cs__tr_tables_init(uint32_t task_slots, uint64_t strings_size);
void cs__tr_tables_fini(void);

/* ---- segment.c ------------------------------------------------------------ */
/* The writer's view of its own segment. */
typedef struct cs__tr_seg {
    uint8_t *base;      /* mapping, NULL when off */
    size_t size;        /* mapping size */
    cs_seg_header *hdr; /* == base */
    uint8_t *strings;   /* string table */
    uint64_t strings_size;
    uint8_t *stacks; /* stack table */
    uint64_t stacks_size;
    cs_module_table *modules; /* module table, NULL when none */
    uint8_t *rings;           /* first ring */
    uint64_t ring_stride;
    char path[4096]; /* /dev/shm/coscope.<pid>, or cfg->dir's */
} cs__tr_seg;
extern cs__tr_seg cs__tr_seg_g;

/* ---- modules.c ------------------------------------------------------------ */
struct dl_phdr_info;
/* Copies the GNU build id of a loaded object (at most CS_BUILD_ID_MAX
 * bytes) into out; returns 1 if it has one. */
int cs__tr_note_build_id(const struct dl_phdr_info *info, uint8_t *out,
                         uint32_t *len);
/* Forgets the last walk (a forked child's next segment walks afresh). */
void cs__tr_modules_reset(void);
/* Checks one module entry read from hostile input: 1 if usable. */
int cs__tr_module_ok(const cs_module *m);

/* ---- file_write.c --------------------------------------------------------- */
/*
 * Creates the trace file path for writing so that no one else's file ever
 * receives it.  No file there: a new one (O_CREAT|O_EXCL|O_NOFOLLOW, mode
 * 0600).  A regular file there (maybe another user's, pre-created 0666, or
 * a hard link): a new file under a temporary name in path's directory,
 * renamed over it at once; the old one is replaced, never opened.  A
 * device or FIFO (/dev/null): opened as it is if it is ours or root's,
 * else -EPERM.  A symbolic link: -ELOOP.  Returns the fd or -errno.
 * Async-signal-safe.
 */
int cs__tr_file_create(const char *path);
/* write() all of it, retrying on EINTR; 0 or -errno.  Signal-safe. */
int cs__tr_write_all(int fd, const void *p, size_t n);
/* Writes a trace file header made from the live segment header. */
int cs__tr_fw_header(int fd, const cs_seg_header *live, uint32_t flags);
/* Writes one chunk. */
int cs__tr_fw_chunk(int fd, unsigned kind, unsigned ring, uint64_t base,
                    uint32_t count, const void *payload, uint32_t len);
/* Writes table bytes [from, to) as chunks through buf. */
int cs__tr_fw_table(int fd, unsigned kind, const uint8_t *table, uint64_t from,
                    uint64_t to, uint8_t *buf, size_t cap);
/* Writes consistent copies of the used task slots as chunks through buf. */
int cs__tr_fw_tasks(int fd, const cs_task_slot *tasks, uint64_t n,
                    uint8_t *buf, size_t cap);
/* Writes module entries [from, to) of ent as chunks through buf. */
int cs__tr_fw_modules(int fd, const cs_module *ent, uint32_t from, uint32_t to,
                      uint8_t *buf, size_t cap);
/* Entries committed in this process's module table (0: none). */
uint32_t cs__tr_modules_count(void);
/* Drains one ring from *cursor into record chunks through buf. */
int cs__tr_fw_ring(int fd, uint32_t index, const cs_ring_header *hdr,
                   const cs_record *slot, uint64_t nslots, uint64_t *cursor,
                   uint8_t *buf, size_t cap);

/* ---- recorder.c ----------------------------------------------------------- */
/* Starts the COSCOPE_RECORD thread writing to path. */
int cs__tr_recorder_start(const char *path);
/* Final drain, END chunk, close; joins the thread. */
void cs__tr_recorder_stop(void);

/* ---- reader ---------------------------------------------------------------- */

/* One records chunk of a trace file. */
typedef struct cs__tr_chunk_ref {
    uint64_t offset;    /* of the chunk header in the file */
    uint64_t first_seq; /* seq of its first record */
    uint64_t last_seq;  /* seq of its last record */
    uint32_t count;     /* records */
    uint32_t ring;      /* ring index */
} cs__tr_chunk_ref;

struct cs_trace {
    int is_file;       /* trace file (1) or live segment (0) */
    cs_seg_header hdr; /* validated copy of the header */
    /* live segment */
    const uint8_t *map; /* read-only mapping */
    uint64_t map_size;
    uint64_t rings_off, ring_stride;
    uint64_t tasks_off;
    uint64_t strings_off, strings_size;
    uint64_t stacks_off, stacks_size;
    uint64_t modules_off; /* module table header, 0: none */
    uint32_t modules_cap; /* its capacity, checked against the region */
    int modules_bad;      /* its header does not fit its region */
    /* trace file: tables copied into memory, records indexed */
    int fd;
    uint8_t *strings; /* file: string table bytes */
    uint64_t strings_len;
    uint8_t *stacks; /* file: stack table bytes */
    uint64_t stacks_len;
    cs_task_slot *tasks; /* file: task snapshot */
    uint32_t ntasks;
    cs_module *modules; /* file: module table entries, checked */
    uint32_t nmodules;
    cs__tr_chunk_ref *chunks; /* file: records chunks in file order */
    size_t nchunks, chunks_cap;
    uint8_t *scratch; /* file: one chunk payload */
    size_t scratch_cap;
    int complete;                     /* file: END chunk reached */
    uint64_t window_seq[CS_RING_MAX]; /* file: CS_CHUNK_WINDOW per ring */
    uint64_t valid_bytes; /* file: bytes up to the last whole chunk */
    /* diagnostics */
    int corrupt_line;       /* line of the first corruption seen */
    char corrupt_what[96];  /* what it was */
    uint64_t tasks_skipped; /* slots that never read consistently */
    unsigned owner;         /* live segment: the file's owner (uid) */
    int guard;              /* live segment: its map_guard.c slot */
};

/* ---- map_guard.c ---------------------------------------------------------- */
/* Registers a read-only mapping of a segment so that a SIGBUS in it (the
 * file shrank) reads zeros instead of killing us; returns the slot (>= 0)
 * or a negative code. */
int cs__tr_map_guard_add(const void *base, size_t size);
/* 1 once a SIGBUS was absorbed in the slot's mapping. */
int cs__tr_map_guard_hit(int slot);
/* Forgets the slot; call before unmapping. */
void cs__tr_map_guard_remove(int slot);

/* Records a corruption (first one wins) and returns CS_TRACE_ECORRUPT. */
int cs__tr_corrupt(cs_trace *t, int line, const char *what);
#define CS__CORRUPT(t, what) cs__tr_corrupt((t), __LINE__, (what))
/* Sets the calling thread's error detail (cs_trace_error_detail). */
void cs__tr_set_detail(int line, const char *what);

/* The effective and file-system uids of pid (/proc/PID/status "Uid:");
 * -ESRCH if it is gone (names.c). */
int cs__tr_pid_uids(int pid, unsigned *euid, unsigned *fsuid);
/* Validates a header copy against the input size; 0 or a negative code. */
int cs__tr_header_check(cs_trace *t, const cs_seg_header *h, uint64_t size,
                        int is_file);
int cs__tr_file_open(const char *path, cs_trace **out);
int cs__tr_file_read(cs_trace *t, uint32_t ring, uint64_t *cursor,
                     cs_trace_event *ev, size_t cap, size_t *n,
                     uint64_t *lost);
void cs__tr_file_close(cs_trace *t);
/* Committed entries of a live segment's module table, clamped. */
uint32_t cs__tr_live_modules_count(cs_trace *t);
/* Converts a record into the public event form. */
void cs__tr_event_from_record(const cs_record *r, uint32_t ring,
                              cs_trace_event *ev);
/* The events record r stands for (one, or a compact record's, minor 5)
 * into ev[0..room): how many, 0 if they do not fit (nothing written). */
size_t cs__tr_event_expand(const cs_record *r, uint32_t ring,
                           cs_trace_event *ev, size_t room);
/* Resolves a string / stack id in a table of len bytes (hostile). */
int cs__tr_string_copy(const uint8_t *table, uint64_t len, uint32_t id,
                       char *buf, size_t cap);
int cs__tr_stack_copy(const uint8_t *table, uint64_t len, uint32_t id,
                      uint64_t *ips, size_t cap);

#endif /* CS_LIBTRACE_INTERNAL_H */
