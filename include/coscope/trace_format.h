/*
 * coscope/trace_format.h - the byte layout of coscope's shared-memory
 * segment and of its trace files.  This header is the format; docs/format.md
 * describes the same bytes in prose.  It depends on nothing but <stdint.h>.
 *
 * Who includes it: libtrace (writer and reader), the runtime (for the
 * wait-reason and task-state enums), the agent (warning kinds) and the CLI.
 *
 * Rules every structure here follows (after LTTng-UST's shm layout and
 * SQLite's file format):
 *   - offsets and sizes, never pointers; every offset is relative to the
 *     start of the segment (or of the chunk payload, in files);
 *   - fixed-width fields in the writer's native byte order, announced by the
 *     endianness marker; a reader on the other byte order refuses the input;
 *   - reserved fields are written as zero and ignored by readers, so a minor
 *     version can give them a meaning;
 *   - a reader refuses an unknown major version and accepts any minor one;
 *   - _Static_assert pins every offset and size below.
 *
 * ---------------------------------------------------------------------------
 * Segment /dev/shm/coscope.<pid>
 *
 *   +--------------------+ 0
 *   | cs_seg_header      |   1024 bytes; regions[] locates the rest
 *   +--------------------+ regions[CS_REGION_STRINGS].offset
 *   | string table       |   append-only entries {u32 len+1; bytes; NUL; pad}
 *   +--------------------+ regions[CS_REGION_STACKS].offset
 *   | stack table        |   append-only entries {u32 n; u32 0; u64 ip[n]}
 *   +--------------------+ regions[CS_REGION_TASKS].offset
 *   | task table         |   task_slots x cs_task_slot (128 bytes)
 *   +--------------------+ modules.offset (minor 1; absent if size 0)
 *   | module table       |   cs_module_table (64) + capacity x cs_module
 *   +--------------------+ regions[CS_REGION_RINGS].offset
 *   | ring 0             |   cs_ring_header (64 bytes) + ring_slots x 32
 *   | ring 1 ...         |   each ring is CS_RING_STRIDE(ring_slots) bytes
 *   +--------------------+ segment_size
 *
 * Every region offset is a multiple of 64.  Sizes are multiples of 64 too.
 *
 * cs_seg_header (1024 bytes)
 *   OFFSET SIZE DESCRIPTION
 *        0    8 magic "COSCOPES" (segment) or "COSCOPEF" (trace file)
 *        8    4 endianness marker 0x01020304, written natively
 *       12    2 major version (CS_FORMAT_MAJOR)
 *       14    2 minor version (CS_FORMAT_MINOR)
 *       16    4 header size (1024)
 *       20    1 word size of the writer (sizeof(void *))
 *       21    1 clock: CS_CLOCK_TSC or CS_CLOCK_MONOTONIC
 *       22    2 record size (32)
 *       24    4 pid of the writer
 *       28    4 flags (CS_SEG_F_*)
 *       32    8 process start time: field 22 of /proc/PID/stat (clock ticks
 *               since boot); with pid it names one process for ever
 *       40    8 segment size in bytes (0 in trace files)
 *       48    8 tsc anchor: clock value (ticks) at calibration
 *       56    8 ns anchor: CLOCK_MONOTONIC ns at the same instant
 *       64    8 ns multiplier: nanoseconds per tick as 32.32 fixed point;
 *               ns = ns_anchor + ((ticks - tsc_anchor) * mult >> 32).
 *               For CS_CLOCK_MONOTONIC ticks are ns and mult is 1 << 32.
 *       72    8 tick rate, ticks per second (informational)
 *       80    8 CLOCK_REALTIME ns at the ns anchor (for wall-clock display)
 *       88    4 ring count
 *       92    4 slots per ring (a power of two)
 *       96    4 task slot count
 *      100    4 task slot size (128)
 *      104    4 ring header size (64)
 *      108    4 build id length (0..32)
 *      112   32 build id of the executable (GNU build-id note bytes)
 *      144   64 regions[4]: {u64 offset; u64 size} for rings, tasks,
 *               strings, stacks (CS_REGION_*)
 *      208   16 modules: {u64 offset; u64 size} of the module table
 *               (minor 1; offset and size 0: no table, e.g. minor 0)
 *      224   32 reserved
 *      256    8 strings used: bytes of the string table reserved so far
 *      264    8 stacks used: bytes of the stack table reserved so far
 *      272    8 task high-water mark: slots ever handed out (index + 1)
 *      280    8 tasks dropped: task slots refused because the table was full
 *      288    8 strings dropped: strings refused because the table was full
 *      296    8 stacks dropped: stacks refused because the table was full
 *      304    8 warnings: warning records emitted so far
 *      312    8 rings dropped: threads refused a ring because all were taken
 *      320  192 reserved
 *      512  512 executable path, NUL-terminated (truncated if longer)
 *
 * Bytes 256..319 change while the process runs (written with atomic stores);
 * everything else is written once before the segment is made visible.
 *
 * ---------------------------------------------------------------------------
 * Event ring (one per thread that emits events)
 *
 * cs_ring_header (64 bytes)
 *   OFFSET SIZE DESCRIPTION
 *        0    8 head: records ever claimed by the writer (the next index)
 *        8    4 tid of the writer thread (0: never used)
 *       12    4 state: CS_RING_FREE, CS_RING_ACTIVE or CS_RING_RELEASED
 *       16    4 slot count (a power of two, equal to the header's)
 *       20    4 reserved
 *       24    8 step start: clock value when the current step began, 0 idle
 *       32    8 step task: id of the task running now, 0 if none
 *       40    8 loop iterations so far
 *       48   16 reserved
 *
 * The record with index i (0-based, i < head) lives in slot i & (slots - 1)
 * and carries seq == i + 1.  Single writer, overwrite-oldest.  Writer:
 *   head = i + 1 (relaxed store); release fence; payload words (relaxed
 *   atomic stores); seq = i + 1 (release store).
 * Reader, for index i:
 *   s = seq (acquire); copy payload; acquire fence; h = head (relaxed).
 *   s == i + 1 and h <= i + slots  -> the copy is record i, untorn;
 *   s >  i + 1 or  h >  i + slots  -> overwritten: counted as lost;
 *   s <  i + 1                     -> still being written: retry later.
 * Hence records received + records lost == head, exactly.  A ring that is
 * released and later reused keeps its head, so cursors stay valid.
 *
 * cs_record (32 bytes)
 *   OFFSET SIZE DESCRIPTION
 *        0    8 seq: index + 1 within its ring (0: slot never written)
 *        8    8 ts: clock value (see header calibration) when it happened
 *       16    8 task id (or the type's subject, see cs_event_type)
 *       24    4 info: type (bits 0-7) | reason (bits 8-15) | flags (16-31)
 *       28    4 arg (see cs_event_type)
 *
 * ---------------------------------------------------------------------------
 * Task slot (128 bytes; a per-slot seqlock guards it)
 *   OFFSET SIZE DESCRIPTION
 *        0    8 lock: seqlock counter, odd while the writer updates the slot
 *        8    8 task id (0: free slot)
 *       16    4 generation: incremented each time the slot is freed
 *       20    4 name (string id)
 *       24    1 state (CS_TASK_*)
 *       25    1 wait reason (CS_WAIT_*)
 *       26    2 flags (CS_TASKF_*)
 *       28    4 creation site (string id, "file:line")
 *       32    8 wait target: task id, lock/event/semaphore/queue id, fd, or
 *               deadline (CLOCK_MONOTONIC ns) depending on the wait reason
 *       40    8 wait aux: holder task id for locks, else 0
 *       48    8 awaiter: id of the task awaiting this one (0 if none)
 *       56    8 created: clock value at creation
 *       64    8 last run: clock value when the task last started a step
 *       72    8 steps run so far
 *       80    8 total run time, clock ticks
 *       88    8 saved sp of a parked task (0 if running or unknown)
 *       96    8 saved fp of a parked task
 *      104    8 saved ip (resume address) of a parked task
 *      112    4 ring index of the loop thread that owns the task
 *      116    4 reserved
 *      120    8 parent: id of the task that created this one (0: none)
 *
 * Writer: lock += 1 (now odd); release fence; field stores; lock += 1
 * (release).  Reader: l1 = lock (acquire), retry while odd; copy; acquire
 * fence; l2 = lock; l1 == l2 -> consistent copy, else retry (bounded).
 *
 * ---------------------------------------------------------------------------
 * String table: id = offset of the entry within the region; id 0 means "no
 * string" (the first 8 bytes are reserved).  Entry: u32 size = string
 * length + 1 (written last, with release: 0 means "not yet committed"),
 * then the bytes, a NUL, padding to a multiple of 4.  length <=
 * CS_STRING_MAX.  Ids are multiples of 4.
 *
 * Stack table: id = offset of the entry within the region, id 0 is "no
 * stack" (first 8 bytes reserved).  Entry: u32 n (written last, with
 * release; 0 = not committed), u32 zero, then n u64 instruction pointers,
 * innermost first.  n <= CS_STACK_MAX.  Ids are multiples of 8.
 *
 * ---------------------------------------------------------------------------
 * Module table (minor 1): every object loaded in the writer (executable,
 * shared libraries, vdso), from dl_iterate_phdr, so that stack addresses
 * can be named after the process has exited.  Append-only: an object
 * dlopen'ed later is added when the writer refreshes the table (at start,
 * when a ring is acquired, every streaming-recorder round, at exit); an
 * object unloaded stays listed.  Where entries overlap (a range reused
 * after dlclose) the later entry wins.
 *
 * cs_module_table (64 bytes, at modules.offset)
 *   OFFSET SIZE DESCRIPTION
 *        0    4 count: entries committed (store-release after the entry)
 *        4    4 capacity: entries the region holds
 *        8    4 entry size (512)
 *       12    4 reserved
 *       16    8 dropped: objects not listed because the table was full
 *       24   40 reserved
 * then capacity x cs_module; 64 + capacity * 512 <= modules.size.
 *
 * cs_module (512 bytes)
 *   OFFSET SIZE DESCRIPTION
 *        0    8 base: load bias (dlpi_addr); runtime address = ELF
 *               virtual address + base
 *        8    8 start: lowest runtime address of its PT_LOAD segments
 *       16    8 end: one past the highest (start <= end)
 *       24    4 build id length (0..32)
 *       28    2 path length in bytes, without the NUL (< 448)
 *       30    2 flags (CS_MODF_*)
 *       32   32 GNU build id
 *       64  448 path, NUL-terminated (the executable's from
 *               /proc/self/exe; truncated: CS_MODF_PATH_CUT)
 *
 * ---------------------------------------------------------------------------
 * Trace file
 *
 *   cs_seg_header with magic "COSCOPEF", segment_size 0 and regions zeroed
 *   then chunks, each a cs_chunk_header followed by `length` payload bytes:
 *
 * cs_chunk_header (32 bytes)
 *   OFFSET SIZE DESCRIPTION
 *        0    4 magic "CSCK"
 *        4    2 kind (CS_CHUNK_*)
 *        6    2 ring index (records chunks), else 0
 *        8    4 payload length in bytes (<= CS_CHUNK_MAX)
 *       12    4 count: records, or task slots, in the payload
 *       16    8 base: for strings/stacks, the table offset of the payload's
 *               first byte; else 0
 *       24    4 CRC-32 (IEEE, as zlib) of the payload
 *       28    4 CRC-32 of bytes 0..27 of this header
 *
 *   CS_CHUNK_STRINGS / CS_CHUNK_STACKS: a contiguous piece of the table;
 *     pieces of one table appear in order without gaps, so ids keep their
 *     segment meaning.
 *   CS_CHUNK_TASKS: count task slots (128 bytes each), copied consistently.
 *   CS_CHUNK_RECORDS: count records of ring `ring`, seq increasing; a gap
 *     in seq (within or between chunks of a ring) is the number of records
 *     lost before the next one, so received + lost == last seq.
 *   CS_CHUNK_MODULES (minor 1): count cs_module entries (512 bytes each);
 *     base is the index of the first; pieces appear in order without
 *     gaps.  A file without them has no module table (readers older than
 *     minor 1 skip the kind).
 *   CS_CHUNK_WINDOW: empty; base is ring `ring`'s head when a recording
 *     of a running process began: its records up to that seq were in the
 *     rings before (readers that do not know the kind skip it).
 *   CS_CHUNK_END: empty; written last by a writer that finished cleanly.
 *
 * A file cut anywhere is readable up to its last whole chunk.
 */
#ifndef COSCOPE_TRACE_FORMAT_H
#define COSCOPE_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define CS_FORMAT_MAJOR 1
/* minor 4: lifetime batches (CS_EV_BATCH); 5: compact records
 * (CS_EV_TASK_NEW, CS_EV_LIFE) */
#define CS_FORMAT_MINOR 5

#define CS_SEG_MAGIC "COSCOPES"  /* 8 bytes, no NUL */
#define CS_FILE_MAGIC "COSCOPEF" /* 8 bytes, no NUL */
#define CS_MAGIC_LEN 8
#define CS_ENDIAN_MARK 0x01020304u
#define CS_CHUNK_MAGIC 0x4b435343u /* "CSCK" read as little-endian u32 */

/* Name of the segment: "/dev/shm/coscope.<pid>" (shm_open name without
 * the directory). */
#define CS_SEG_DIR "/dev/shm"
#define CS_SEG_PREFIX "coscope."

/* Limits a reader enforces (and a writer respects). */
#define CS_RING_MAX 256 /* rings per segment */
#define CS_RING_SLOTS_MIN 64
#define CS_RING_SLOTS_MAX (1u << 25) /* 1 GiB of records */
#define CS_TASK_SLOTS_MAX (1u << 22)
#define CS_STRING_MAX 4096       /* bytes in one string */
#define CS_STACK_MAX 256         /* frames in one stack */
#define CS_TABLE_MAX (64u << 20) /* bytes in the string or stack table */
#define CS_CHUNK_MAX (16u << 20) /* payload bytes in one file chunk */
#define CS_EXE_PATH_MAX 512
#define CS_BUILD_ID_MAX 32
#define CS_MODULE_PATH_MAX 448 /* bytes of a module path, with its NUL */
#define CS_MODULES_MAX 4096    /* entries in a module table */
#define CS_MODULES_DEFAULT 256 /* entries a writer makes room for */

/* Clock of the ts fields. */
enum cs_clock_kind {
    CS_CLOCK_TSC = 1,       /* invariant TSC (or arm64 CNTVCT), calibrated */
    CS_CLOCK_MONOTONIC = 2, /* CLOCK_MONOTONIC nanoseconds */
};

/* Header flags. */
#define CS_SEG_F_READY 0x1u  /* set last when the segment is initialised */
#define CS_SEG_F_FLIGHT 0x2u /* trace file dumped by the flight recorder */
#define CS_SEG_F_CRASH 0x4u  /* ... from a crash signal handler */

/* Module flags (cs_module.flags). */
#define CS_MODF_EXE 0x1u      /* the main executable */
#define CS_MODF_PATH_CUT 0x2u /* path truncated: do not open it */

/* Regions located by cs_seg_header.regions[]. */
enum cs_region {
    CS_REGION_RINGS = 0,
    CS_REGION_TASKS = 1,
    CS_REGION_STRINGS = 2,
    CS_REGION_STACKS = 3,
    CS_REGION_COUNT = 4,
};

/* Why a task is not running.  Shared by the runtime, the trace and the CLI;
 * the wait target in the task slot is interpreted per reason. */
enum cs_wait_reason {
    CS_WAIT_NONE = 0,      /* not waiting (ready, running or finished) */
    CS_WAIT_SLEEP = 1,     /* timer: target = deadline, CLOCK_MONOTONIC ns */
    CS_WAIT_TASK = 2,      /* awaiting another task: target = its id */
    CS_WAIT_LOCK = 3,      /* target = lock id, aux = holder task id */
    CS_WAIT_EVENT = 4,     /* target = event id */
    CS_WAIT_SEMAPHORE = 5, /* target = semaphore id */
    CS_WAIT_QUEUE_PUT = 6, /* queue full: target = queue id */
    CS_WAIT_QUEUE_GET = 7, /* queue empty: target = queue id */
    CS_WAIT_FD_READ = 8,   /* target = fd; aux = deadline or 0 */
    CS_WAIT_FD_WRITE = 9,  /* target = fd; aux = deadline or 0 */
    CS_WAIT_THREAD = 10,   /* to_thread call in a worker */
    CS_WAIT_YIELD = 11,    /* yielded, ready to run again */
    CS_WAIT_FUTURE = 12,   /* (minor 3) an asyncio future; target 0 */
    CS_WAIT_COUNT = 13,
};

/* Why a step ended: a wait reason, or one of these (step record reason). */
enum cs_stop_reason {
    CS_STOP_DONE = 16,      /* returned */
    CS_STOP_RAISED = 17,    /* raised an error */
    CS_STOP_CANCELLED = 18, /* finished because it was cancelled */
};

/* Task states (task slot). */
enum cs_task_state {
    CS_TASK_FREE = 0,      /* slot unused */
    CS_TASK_READY = 1,     /* in the ready queue */
    CS_TASK_RUNNING = 2,   /* on a loop thread now */
    CS_TASK_WAITING = 3,   /* suspended; wait reason says on what */
    CS_TASK_DONE = 4,      /* returned, not yet released */
    CS_TASK_RAISED = 5,    /* raised, not yet released */
    CS_TASK_CANCELLED = 6, /* cancelled, not yet released */
    CS_TASK_STATE_COUNT = 7,
};

/* Task slot flags. */
#define CS_TASKF_CANCEL_REQUESTED 0x1u /* cs_cancel() was called on it */
#define CS_TASKF_DETACHED 0x2u         /* nobody holds its handle */
#define CS_TASKF_REGS_VALID 0x4u       /* sp/fp/ip describe the parked task */
/* (minor 3) an asyncio task (python/): sp, fp and ip hold its await chain
 * as up to 6 u32 string ids ("file:line in function"), innermost first,
 * 0 after the last; reserved0 is the chain's full depth */
#define CS_TASKF_PYTHON 0x8u
#define CS_PY_CHAIN_MAX 6

/*
 * Report classes: what the agent reports, and the kinds of CS_EV_WARNING
 * records (their reason byte).  This one list generates the CS_WARN_*
 * enum, the names (cs_trace_warning_name, cs_trace_report_name,
 * cs_trace_report_class), the agent's class bits and the classes
 * `coscope check` knows, in the order listed here (its SARIF rules).
 *
 *   XX(KIND, value, name, trace_name, reported)
 *   value       CS_WARN_<KIND>; on disk: never renumbered
 *   name        the class's one name: COSCOPE_REPORT, check --fail-on and
 *               suppressions, the reports' JSON "class", SARIF rule ids
 *   trace_name  what trace readers print (watch, report, view, export,
 *               metrics' kind label) since format 1.0; where it differs
 *               from name it is an older spelling, accepted on input too
 *   reported    1: the agent reports the class; 0: only the runtime
 *               writes it, into the trace
 *
 *   NEVER_AWAITED   a coroutine dropped without running
 *   EXCEPTION       a task's error was never retrieved
 *   PENDING         a task still pending when the loop ended
 *   BLOCKING        a blocking call on the loop thread
 *   DEADLOCK        a wait-for cycle, or every task stuck
 *   CRASH           a fatal signal
 *   SLOW_STEP       a step ran longer than the threshold
 *   STACK_OVERFLOW  a task overran its stack
 */
#define CS_REPORT_CLASS_MAP(XX)                                               \
    XX(NEVER_AWAITED, 3, "never-awaited", "never-awaited", 1)                 \
    XX(EXCEPTION, 4, "unretrieved", "exception", 1)                           \
    XX(PENDING, 5, "pending", "pending", 1)                                   \
    XX(BLOCKING, 2, "blocking", "blocking", 1)                                \
    XX(DEADLOCK, 6, "deadlock", "deadlock", 1)                                \
    XX(CRASH, 7, "crash", "crash", 1)                                         \
    XX(SLOW_STEP, 1, "slow", "slow", 1)                                       \
    XX(STACK_OVERFLOW, 8, "stack-overflow", "stack-overflow", 0)

enum cs_warning_kind {
    CS_WARN_NONE = 0,
#define CS__WARN_ENUM(kind, value, name, trace_name, reported)                \
    CS_WARN_##kind = (value),
    CS_REPORT_CLASS_MAP(CS__WARN_ENUM)
#undef CS__WARN_ENUM
        CS_WARN_COUNT = 9, /* one past the largest value */
};
/* A class as one bit of a set (the agent's COSCOPE_REPORT, check's
 * --fail-on): 1 << CS_WARN_<KIND>. */
#define CS_REPORT_BIT(kind) (1u << (kind))
/* Every class the agent reports. */
#define CS__REPORT_BIT_IF(kind, value, name, trace_name, reported)            \
    | ((reported) ? CS_REPORT_BIT(value) : 0u)
#define CS_REPORT_ALL (0u CS_REPORT_CLASS_MAP(CS__REPORT_BIT_IF))

/*
 * Event types (type byte of a record).  For each: what task_id, reason and
 * arg hold.  "ticks" durations in arg are clock ticks, saturated at
 * 0xffffffff unless CS_RECF_ARG_SHIFT16 is set, in which case arg is the
 * duration >> 16.
 */
enum cs_event_type {
    CS_EV_NONE = 0,
    CS_EV_TASK_CREATED = 1,   /* task; reason 0; arg = site string id */
    CS_EV_TASK_NAME = 2,      /* task; reason 0; arg = name string id */
    CS_EV_STEP = 3,           /* task ran and stopped at ts; reason = wait
                                 reason or CS_STOP_*; arg = ticks it ran */
    CS_EV_TASK_DONE = 4,      /* task returned; arg 0 */
    CS_EV_TASK_RAISED = 5,    /* task raised; arg = error code (int32) */
    CS_EV_TASK_CANCELLED = 6, /* task finished cancelled */
    CS_EV_CORO_CREATED = 7,   /* task_id = coroutine id; arg = site id */
    CS_EV_CORO_DROPPED = 8,   /* task_id = coroutine id; reason 1 if it
                                 never ran (never awaited) */
    CS_EV_WARNING = 9,        /* task (0: none); reason = CS_WARN_*;
                                 arg = stack id (0: none) */
    CS_EV_LOOP_ITER = 10,     /* task_id = iteration number; reason = 0;
                                 arg = ticks spent in epoll_wait */
    CS_EV_WAIT = 11,          /* task_id = wait target (CS_WAIT_TASK: the
                                 awaited task, lock id, fd...); reason = wait
                                 reason; qualifies the next CS_EV_STEP of
                                 this ring; arg = wait aux low 32 bits */
    CS_EV_CANCEL = 12,        /* task was asked to cancel; arg 0 */
    CS_EV_USER = 13,          /* free for applications; arg = string id */
    CS_EV_BATCH = 14,         /* a batch of short steps ended at ts (minor
                                 2): task_id = steps in it; arg = ticks
                                 from its first step's start to ts; the
                                 CS_EV_YIELDS records that follow say whose,
                                 or (minor 4, a lifetime batch) the
                                 CS_EV_STEP records flagged CS_RECF_BATCHED
                                 that follow at the same ts, each with its
                                 CS_EV_WAIT before or its end record after */
    CS_EV_YIELDS = 15,        /* task ran arg steps of the batch just
                                 announced, each ended by a yield; reason =
                                 CS_WAIT_YIELD */
    CS_EV_TYPE_COUNT = 16,    /* types of the events a reader returns */
    /* (minor 5) compact records: libtrace's reader never returns them,
     * it returns the events each stands for, in this order, all with the
     * record's seq and ts (a reader of the raw ring must do the same) */
    CS_EV_TASK_NEW = 16, /* task; arg = site string id; reason | flags << 8
                            = name string id >> 2: CS_EV_TASK_CREATED
                            (arg site) then CS_EV_TASK_NAME (arg name) */
    CS_EV_LIFE = 17,     /* in a lifetime batch, after its CS_EV_BATCH: an
                            await of task by task - d, d = reason | (flags
                            >> 1) << 8 (1 <= d < 2^23), and task's one
                            step, ended by its return; arg = each step's
                            share, ticks (CS_RECF_ARG_SHIFT16 in flags bit
                            0).  Stands for CS_EV_WAIT (task, CS_WAIT_TASK),
                            CS_EV_STEP (task - d, CS_WAIT_TASK, batched),
                            CS_EV_STEP (task, CS_STOP_DONE, batched),
                            CS_EV_TASK_DONE (task) */
};
/* Events one record stands for, at most (CS_EV_LIFE). */
#define CS_EV_EXPAND_MAX 4

/* Record flags (bits 16-31 of info, stored as a 16-bit value). */
#define CS_RECF_ARG_SHIFT16 0x1u /* arg holds a duration >> 16 */
/* CS_EV_STEP: the step began inside the batch that ends with the previous
 * CS_EV_BATCH (same ts): arg is its share of that batch, an estimate; a
 * lifetime batch (minor 4) has one such step record per step */
#define CS_RECF_BATCHED 0x2u
/* (minor 3) CS_EV_WARNING: arg is a string id, a Python stack, one frame
 * a line ("file:line in function"), innermost first */
#define CS_RECF_PYSTACK 0x4u

#define CS_REC_INFO(type, reason, flags)                                      \
    ((uint32_t)(type) | ((uint32_t)(reason) << 8) | ((uint32_t)(flags) << 16))
#define CS_REC_TYPE(info) ((uint32_t)(info)&0xffu)
#define CS_REC_REASON(info) (((uint32_t)(info) >> 8) & 0xffu)
#define CS_REC_FLAGS(info) ((uint32_t)(info) >> 16)

/* Ring states. */
enum cs_ring_state {
    CS_RING_FREE = 0,
    CS_RING_ACTIVE = 1,
    CS_RING_RELEASED = 2,
};

/* Chunk kinds (trace files). */
enum cs_chunk_kind {
    CS_CHUNK_RECORDS = 1,
    CS_CHUNK_STRINGS = 2,
    CS_CHUNK_STACKS = 3,
    CS_CHUNK_TASKS = 4,
    CS_CHUNK_END = 5,
    CS_CHUNK_MODULES = 6, /* minor 1 */
    CS_CHUNK_WINDOW = 7,  /* `coscope record PID`: ring's head at start */
};

/* ---- structures --------------------------------------------------------- */

/* One region of the segment. */
typedef struct cs_region_ref {
    uint64_t offset; /* from the start of the segment, multiple of 64 */
    uint64_t size;   /* bytes */
} cs_region_ref;

typedef struct cs_seg_header {
    char magic[8];                     /* CS_SEG_MAGIC or CS_FILE_MAGIC */
    uint32_t endian;                   /* CS_ENDIAN_MARK */
    uint16_t version_major;            /* CS_FORMAT_MAJOR */
    uint16_t version_minor;            /* CS_FORMAT_MINOR */
    uint32_t header_size;              /* sizeof(cs_seg_header) */
    uint8_t word_size;                 /* sizeof(void *) of the writer */
    uint8_t clock;                     /* enum cs_clock_kind */
    uint16_t record_size;              /* sizeof(cs_record) */
    uint32_t pid;                      /* writer process */
    uint32_t flags;                    /* CS_SEG_F_* */
    uint64_t start_time;               /* /proc/PID/stat field 22 */
    uint64_t segment_size;             /* bytes mapped (0 in files) */
    uint64_t tsc_anchor;               /* clock value at calibration */
    uint64_t ns_anchor;                /* CLOCK_MONOTONIC ns at tsc_anchor */
    uint64_t ns_mult;                  /* ns per tick, 32.32 fixed point */
    uint64_t tick_hz;                  /* ticks per second */
    uint64_t realtime_anchor;          /* CLOCK_REALTIME ns at tsc_anchor */
    uint32_t ring_count;               /* rings in the rings region */
    uint32_t ring_slots;               /* records per ring, power of two */
    uint32_t task_slots;               /* slots in the task table */
    uint32_t task_slot_size;           /* sizeof(cs_task_slot) */
    uint32_t ring_header_size;         /* sizeof(cs_ring_header) */
    uint32_t build_id_len;             /* bytes of build_id used */
    uint8_t build_id[CS_BUILD_ID_MAX]; /* GNU build-id of the executable */
    cs_region_ref regions[CS_REGION_COUNT]; /* by enum cs_region */
    cs_region_ref modules; /* module table; zero: none (minor 0) */
    uint8_t reserved0[32];
    /* live counters: atomically updated while the process runs */
    uint64_t strings_used;    /* string table bytes reserved */
    uint64_t stacks_used;     /* stack table bytes reserved */
    uint64_t tasks_hwm;       /* task slots ever handed out */
    uint64_t tasks_dropped;   /* tasks not given a slot (table full) */
    uint64_t strings_dropped; /* strings not stored (table full) */
    uint64_t stacks_dropped;  /* stacks not stored (table full) */
    uint64_t warnings;        /* warning records emitted */
    uint64_t rings_dropped;   /* threads refused a ring */
    uint8_t reserved1[192];
    char exe_path[CS_EXE_PATH_MAX]; /* NUL-terminated */
} cs_seg_header;

typedef struct cs_ring_header {
    uint64_t head;  /* records ever claimed; written by the owner only */
    uint32_t tid;   /* owner thread id */
    uint32_t state; /* enum cs_ring_state */
    uint32_t slots; /* record slots, power of two */
    uint32_t reserved0;
    uint64_t step_start; /* clock value the current step began at, 0 idle */
    uint64_t step_task;  /* task running now, 0 none */
    uint64_t iterations; /* loop iterations */
    uint64_t switches;   /* (minor 2) batched switches since step_start was
                            written: 0, the running step began at
                            step_start; more, at a later, untimed, switch */
    uint64_t reserved1;
} cs_ring_header;

typedef struct cs_record {
    uint64_t seq;     /* index + 1 within the ring; 0 never written */
    uint64_t ts;      /* clock value */
    uint64_t task_id; /* subject, see enum cs_event_type */
    uint32_t info;    /* CS_REC_INFO(type, reason, flags) */
    uint32_t arg;     /* see enum cs_event_type */
} cs_record;

typedef struct cs_task_slot {
    uint64_t lock;        /* seqlock: odd while being written */
    uint64_t id;          /* task id, 0 when free */
    uint32_t gen;         /* generation, bumped on free */
    uint32_t name;        /* string id */
    uint8_t state;        /* enum cs_task_state */
    uint8_t wait;         /* enum cs_wait_reason */
    uint16_t flags;       /* CS_TASKF_* */
    uint32_t site;        /* creation site string id */
    uint64_t wait_target; /* per wait reason */
    uint64_t wait_aux;    /* lock holder, fd deadline */
    uint64_t awaiter;     /* task awaiting this one */
    uint64_t created;     /* clock value */
    uint64_t last_run;    /* clock value of the last step start */
    uint64_t steps;       /* steps run */
    uint64_t run_ticks;   /* total run time */
    uint64_t sp;          /* parked: saved stack pointer */
    uint64_t fp;          /* parked: saved frame pointer */
    uint64_t ip;          /* parked: resume address */
    uint32_t ring;        /* owning loop's ring index */
    uint32_t reserved0;
    uint64_t parent; /* creating task id */
} cs_task_slot;

typedef struct cs_chunk_header {
    uint32_t magic;      /* CS_CHUNK_MAGIC */
    uint16_t kind;       /* enum cs_chunk_kind */
    uint16_t ring;       /* ring index for records */
    uint32_t length;     /* payload bytes */
    uint32_t count;      /* records or task slots */
    uint64_t base;       /* table offset (strings/stacks), else 0 */
    uint32_t crc;        /* CRC-32 of the payload */
    uint32_t header_crc; /* CRC-32 of bytes 0..27 */
} cs_chunk_header;

/* Head of the module table region. */
typedef struct cs_module_table {
    uint32_t count;      /* entries committed; store-release, last */
    uint32_t capacity;   /* entries the region holds */
    uint32_t entry_size; /* sizeof(cs_module) */
    uint32_t reserved0;
    uint64_t dropped; /* objects left out: table full */
    uint64_t reserved1[5];
} cs_module_table;

/* One loaded object. */
typedef struct cs_module {
    uint64_t base;         /* load bias: runtime = ELF vaddr + base */
    uint64_t start;        /* lowest runtime address of its PT_LOADs */
    uint64_t end;          /* one past the highest */
    uint32_t build_id_len; /* bytes of build_id used */
    uint16_t path_len;     /* strlen(path) */
    uint16_t flags;        /* CS_MODF_* */
    uint8_t build_id[CS_BUILD_ID_MAX]; /* GNU build-id note bytes */
    char path[CS_MODULE_PATH_MAX];     /* NUL-terminated */
} cs_module;

/* Byte size of one ring (header and slots), a multiple of 64. */
#define CS_RING_STRIDE(slots)                                                 \
    ((uint64_t)sizeof(cs_ring_header) + (uint64_t)(slots) * sizeof(cs_record))
/* First reserved bytes of the string and stack tables (id 0 = none). */
#define CS_TABLE_FIRST 8u

/* ---- layout checks ------------------------------------------------------ */

#define CS__FMT_AT(type, field, off)                                          \
    _Static_assert(offsetof(type, field) == (off), #type "." #field)

CS__FMT_AT(cs_seg_header, magic, 0);
CS__FMT_AT(cs_seg_header, endian, 8);
CS__FMT_AT(cs_seg_header, version_major, 12);
CS__FMT_AT(cs_seg_header, version_minor, 14);
CS__FMT_AT(cs_seg_header, header_size, 16);
CS__FMT_AT(cs_seg_header, word_size, 20);
CS__FMT_AT(cs_seg_header, clock, 21);
CS__FMT_AT(cs_seg_header, record_size, 22);
CS__FMT_AT(cs_seg_header, pid, 24);
CS__FMT_AT(cs_seg_header, flags, 28);
CS__FMT_AT(cs_seg_header, start_time, 32);
CS__FMT_AT(cs_seg_header, segment_size, 40);
CS__FMT_AT(cs_seg_header, tsc_anchor, 48);
CS__FMT_AT(cs_seg_header, ns_anchor, 56);
CS__FMT_AT(cs_seg_header, ns_mult, 64);
CS__FMT_AT(cs_seg_header, tick_hz, 72);
CS__FMT_AT(cs_seg_header, realtime_anchor, 80);
CS__FMT_AT(cs_seg_header, ring_count, 88);
CS__FMT_AT(cs_seg_header, ring_slots, 92);
CS__FMT_AT(cs_seg_header, task_slots, 96);
CS__FMT_AT(cs_seg_header, task_slot_size, 100);
CS__FMT_AT(cs_seg_header, ring_header_size, 104);
CS__FMT_AT(cs_seg_header, build_id_len, 108);
CS__FMT_AT(cs_seg_header, build_id, 112);
CS__FMT_AT(cs_seg_header, regions, 144);
CS__FMT_AT(cs_seg_header, modules, 208);
CS__FMT_AT(cs_seg_header, reserved0, 224);
CS__FMT_AT(cs_seg_header, strings_used, 256);
CS__FMT_AT(cs_seg_header, stacks_used, 264);
CS__FMT_AT(cs_seg_header, tasks_hwm, 272);
CS__FMT_AT(cs_seg_header, tasks_dropped, 280);
CS__FMT_AT(cs_seg_header, strings_dropped, 288);
CS__FMT_AT(cs_seg_header, stacks_dropped, 296);
CS__FMT_AT(cs_seg_header, warnings, 304);
CS__FMT_AT(cs_seg_header, rings_dropped, 312);
CS__FMT_AT(cs_seg_header, reserved1, 320);
CS__FMT_AT(cs_seg_header, exe_path, 512);
_Static_assert(sizeof(cs_seg_header) == 1024, "cs_seg_header size");
_Static_assert(sizeof(cs_region_ref) == 16, "cs_region_ref size");

CS__FMT_AT(cs_ring_header, head, 0);
CS__FMT_AT(cs_ring_header, tid, 8);
CS__FMT_AT(cs_ring_header, state, 12);
CS__FMT_AT(cs_ring_header, slots, 16);
CS__FMT_AT(cs_ring_header, step_start, 24);
CS__FMT_AT(cs_ring_header, step_task, 32);
CS__FMT_AT(cs_ring_header, iterations, 40);
CS__FMT_AT(cs_ring_header, switches, 48);
CS__FMT_AT(cs_ring_header, reserved1, 56);
_Static_assert(sizeof(cs_ring_header) == 64, "cs_ring_header size");

CS__FMT_AT(cs_record, seq, 0);
CS__FMT_AT(cs_record, ts, 8);
CS__FMT_AT(cs_record, task_id, 16);
CS__FMT_AT(cs_record, info, 24);
CS__FMT_AT(cs_record, arg, 28);
_Static_assert(sizeof(cs_record) == 32, "cs_record size");

CS__FMT_AT(cs_task_slot, lock, 0);
CS__FMT_AT(cs_task_slot, id, 8);
CS__FMT_AT(cs_task_slot, gen, 16);
CS__FMT_AT(cs_task_slot, name, 20);
CS__FMT_AT(cs_task_slot, state, 24);
CS__FMT_AT(cs_task_slot, wait, 25);
CS__FMT_AT(cs_task_slot, flags, 26);
CS__FMT_AT(cs_task_slot, site, 28);
CS__FMT_AT(cs_task_slot, wait_target, 32);
CS__FMT_AT(cs_task_slot, wait_aux, 40);
CS__FMT_AT(cs_task_slot, awaiter, 48);
CS__FMT_AT(cs_task_slot, created, 56);
CS__FMT_AT(cs_task_slot, last_run, 64);
CS__FMT_AT(cs_task_slot, steps, 72);
CS__FMT_AT(cs_task_slot, run_ticks, 80);
CS__FMT_AT(cs_task_slot, sp, 88);
CS__FMT_AT(cs_task_slot, fp, 96);
CS__FMT_AT(cs_task_slot, ip, 104);
CS__FMT_AT(cs_task_slot, ring, 112);
CS__FMT_AT(cs_task_slot, reserved0, 116);
CS__FMT_AT(cs_task_slot, parent, 120);
_Static_assert(sizeof(cs_task_slot) == 128, "cs_task_slot size");

CS__FMT_AT(cs_chunk_header, magic, 0);
CS__FMT_AT(cs_chunk_header, kind, 4);
CS__FMT_AT(cs_chunk_header, ring, 6);
CS__FMT_AT(cs_chunk_header, length, 8);
CS__FMT_AT(cs_chunk_header, count, 12);
CS__FMT_AT(cs_chunk_header, base, 16);
CS__FMT_AT(cs_chunk_header, crc, 24);
CS__FMT_AT(cs_chunk_header, header_crc, 28);
_Static_assert(sizeof(cs_chunk_header) == 32, "cs_chunk_header size");

CS__FMT_AT(cs_module_table, count, 0);
CS__FMT_AT(cs_module_table, capacity, 4);
CS__FMT_AT(cs_module_table, entry_size, 8);
CS__FMT_AT(cs_module_table, dropped, 16);
CS__FMT_AT(cs_module_table, reserved1, 24);
_Static_assert(sizeof(cs_module_table) == 64, "cs_module_table size");

CS__FMT_AT(cs_module, base, 0);
CS__FMT_AT(cs_module, start, 8);
CS__FMT_AT(cs_module, end, 16);
CS__FMT_AT(cs_module, build_id_len, 24);
CS__FMT_AT(cs_module, path_len, 28);
CS__FMT_AT(cs_module, flags, 30);
CS__FMT_AT(cs_module, build_id, 32);
CS__FMT_AT(cs_module, path, 64);
_Static_assert(sizeof(cs_module) == 512, "cs_module size");

_Static_assert(CS_RING_STRIDE(CS_RING_SLOTS_MIN) % 64 == 0, "ring stride");

#undef CS__FMT_AT

#endif /* COSCOPE_TRACE_FORMAT_H */
