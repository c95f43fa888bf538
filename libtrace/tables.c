/*
 * tables.c - the writer side of the task table, the string table and the
 * stack table.
 *
 * Task slots: a lock-free stack of free slot indices (Treiber, with a
 * 32-bit tag against ABA) kept in process memory, plus a high-water mark;
 * in front of it, each loop's private cache of the slots it freed
 * (cs__tr_slots), so a short-lived task costs no atomic operation.
 * A slot's fields are written only by the task's owner thread under the
 * slot's seqlock (writer.h).
 *
 * Tables: both are append-only.  Space is reserved with an atomic add on
 * the header's *_used counter; the entry's first word is stored last, with
 * release, and a reader treats 0 there as "not yet committed".  Strings are
 * interned through a hash of ids (process memory, under a mutex); stacks
 * are not deduplicated, which keeps cs__tr_stack_put lock-free and
 * async-signal-safe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint32_t *free_next; /* per slot: ref of the next free slot */
static uint64_t free_head;  /* tag << 32 | ref of the first free slot */
static uint32_t task_hwm;   /* slots handed out from the fresh area */

static pthread_mutex_t str_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *str_hash; /* open addressing, string ids, 0 empty */
static uint32_t str_mask;  /* buckets - 1 */
static uint32_t str_count; /* ids in str_hash */

int cs__tr_tables_init(uint32_t task_slots, uint64_t strings_size)
{
    uint64_t buckets = 64;
    while (buckets < strings_size / 4 && buckets < (1u << 20))
        buckets *= 2;
    free_next = calloc(task_slots, sizeof *free_next);
    str_hash = calloc(buckets, sizeof *str_hash);
    if (free_next == NULL || str_hash == NULL) {
        cs__tr_tables_fini();
        return -ENOMEM;
    }
    free_head = 0;
    task_hwm = 0;
    str_mask = (uint32_t)buckets - 1;
    str_count = 0;
    pthread_mutex_init(&str_lock, NULL); /* also resets it after fork */
    return 0;
}

void cs__tr_tables_fini(void)
{
    free(free_next);
    free(str_hash);
    free_next = NULL;
    str_hash = NULL;
}

/* ---- task slots ----------------------------------------------------------- */

static uint32_t free_pop(void)
{
    uint64_t old = __atomic_load_n(&free_head, __ATOMIC_ACQUIRE), new;
    do {
        uint32_t ref = (uint32_t)old;
        if (ref == 0)
            return 0;
        uint32_t next = __atomic_load_n(&free_next[ref - 1], __ATOMIC_RELAXED);
        new = (((old >> 32) + 1) << 32) | next;
    } while (!__atomic_compare_exchange_n(&free_head, &old, new, 1,
                                          __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE));
    return (uint32_t)old;
}

static void free_push(uint32_t ref)
{
    uint64_t old = __atomic_load_n(&free_head, __ATOMIC_RELAXED), new;
    do {
        __atomic_store_n(&free_next[ref - 1], (uint32_t)old, __ATOMIC_RELAXED);
        new = (((old >> 32) + 1) << 32) | ref;
    } while (!__atomic_compare_exchange_n(&free_head, &old, new, 1,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* A never-used slot from the fresh area, or 0 when the table is full. */
static uint32_t fresh_slot(void)
{
    uint32_t i = __atomic_load_n(&task_hwm, __ATOMIC_RELAXED);
    do {
        if (i >= cs__tr_g.task_slots)
            return 0;
    } while (!__atomic_compare_exchange_n(&task_hwm, &i, i + 1, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    uint64_t *hwm = &cs__tr_seg_g.hdr->tasks_hwm;
    uint64_t seen = __atomic_load_n(hwm, __ATOMIC_RELAXED);
    while (seen < (uint64_t)i + 1 &&
           !__atomic_compare_exchange_n(hwm, &seen, (uint64_t)i + 1, 1,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    return i + 1;
}

uint32_t cs__tr_task_alloc(uint64_t id, uint32_t name, uint32_t site,
                           uint64_t parent, uint32_t ring, uint64_t now)
{
    uint32_t ref;
    if (cs__tr_g.tasks == NULL)
        return 0;
    ref = free_pop();
    if (ref == 0)
        ref = fresh_slot();
    if (ref == 0) {
        __atomic_fetch_add(&cs__tr_seg_g.hdr->tasks_dropped, 1,
                           __ATOMIC_RELAXED);
        return 0;
    }
    cs_task_slot *s = cs__tr_task_begin(ref);
    if (s == NULL)
        return 0;
    cs__tr_slot_fill(s, id, name, site, parent, ring, now);
    cs__tr_task_end(s);
    return ref;
}

void cs__tr_task_free(uint32_t ref)
{
    cs_task_slot *s = cs__tr_task_begin(ref);
    if (s == NULL)
        return;
    cs__tr_slot_clear(s);
    cs__tr_task_end(s);
    free_push(ref);
}

void cs__tr_slots_flush(cs__tr_slots *c)
{
    if (c != NULL && c->epoch == cs__tr_g.epoch && cs__tr_g.tasks != NULL)
        while (c->n > 0)
            free_push(c->ref[--c->n] & ~CS__TRACE_SLOT_CLEAN);
    if (c != NULL)
        c->n = 0;
}

/* ---- append-only tables --------------------------------------------------- */

/* Reserves size bytes in a table; returns the offset or 0 when full. */
static uint64_t reserve(uint64_t *used, uint64_t cap, uint64_t size,
                        uint64_t *dropped)
{
    uint64_t off = __atomic_fetch_add(used, size, __ATOMIC_RELAXED);
    if (off > cap || cap - off < size || off > UINT32_MAX - size) {
        __atomic_fetch_add(dropped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    return off;
}

/* The size of the entry at off of a table whose entries are aligned to
 * align bytes: a u32 count in [1, max] first, then align - 4 bytes, then
 * count items of each bytes; 0 if it does not fit in size. */
static uint64_t entry_size(const uint8_t *table, uint64_t size, uint64_t off,
                           unsigned align, uint32_t max, unsigned each)
{
    if (off % align != 0 || off >= size || size - off < align)
        return 0;
    uint32_t n =
        __atomic_load_n((const uint32_t *)(table + off), __ATOMIC_ACQUIRE);
    if (n == 0 || n > max)
        return 0;
    uint64_t sz = CS__ALIGN(align + (uint64_t)each * n, align);
    return sz <= size - off ? sz : 0;
}

uint64_t cs__tr_string_entry_size(const uint8_t *table, uint64_t size,
                                  uint64_t off)
{
    return entry_size(table, size, off, 4, CS_STRING_MAX + 1, 1);
}

uint64_t cs__tr_stack_entry_size(const uint8_t *table, uint64_t size,
                                 uint64_t off)
{
    return entry_size(table, size, off, 8, CS_STACK_MAX, 8);
}

uint64_t cs__tr_table_committed(unsigned kind, const uint8_t *table,
                                uint64_t size, uint64_t used, uint64_t done)
{
    uint64_t end = used < size ? used : size;
    uint64_t pos = done < CS_TABLE_FIRST ? CS_TABLE_FIRST : done;
    while (pos < end) {
        uint64_t sz = kind == CS_CHUNK_STRINGS
                          ? cs__tr_string_entry_size(table, end, pos)
                          : cs__tr_stack_entry_size(table, end, pos);
        if (sz == 0)
            break;
        pos += sz;
    }
    return pos > end ? end : pos;
}

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int string_equals(uint32_t id, const char *s, size_t n)
{
    const uint8_t *e = cs__tr_seg_g.strings + id;
    uint32_t w;
    memcpy(&w, e, 4);
    return w == n + 1 && memcmp(e + 4, s, n) == 0;
}

uint32_t cs__tr_intern_n(const char *s, size_t n)
{
    if (cs__tr_seg_g.base == NULL || s == NULL)
        return 0;
    if (n > CS_STRING_MAX)
        n = CS_STRING_MAX;
    uint32_t h = fnv1a(s, n), id = 0, b;
    pthread_mutex_lock(&str_lock);
    for (b = h & str_mask; str_hash[b] != 0; b = (b + 1) & str_mask)
        if (string_equals(str_hash[b], s, n)) {
            id = str_hash[b];
            goto out;
        }
    uint64_t off = reserve(&cs__tr_seg_g.hdr->strings_used,
                           cs__tr_seg_g.strings_size, CS__ALIGN(4 + n + 1, 4),
                           &cs__tr_seg_g.hdr->strings_dropped);
    if (off == 0)
        goto out;
    uint8_t *e = cs__tr_seg_g.strings + off;
    memcpy(e + 4, s, n);
    e[4 + n] = '\0';
    __atomic_store_n((uint32_t *)e, (uint32_t)n + 1, __ATOMIC_RELEASE);
    id = (uint32_t)off;
    if (str_count < str_mask / 2) { /* past half full: no more dedup */
        str_hash[b] = id;
        str_count++;
    }
out:
    pthread_mutex_unlock(&str_lock);
    return id;
}

uint32_t cs__tr_intern(const char *s)
{
    return s == NULL ? 0 : cs__tr_intern_n(s, strnlen(s, CS_STRING_MAX));
}

uint32_t cs__tr_stack_put(const uint64_t *ips, size_t n)
{
    if (cs__tr_seg_g.base == NULL || n == 0)
        return 0;
    if (n > CS_STACK_MAX)
        n = CS_STACK_MAX;
    uint64_t off = reserve(&cs__tr_seg_g.hdr->stacks_used,
                           cs__tr_seg_g.stacks_size, 8 + 8 * (uint64_t)n,
                           &cs__tr_seg_g.hdr->stacks_dropped);
    if (off == 0)
        return 0;
    uint8_t *e = cs__tr_seg_g.stacks + off;
    memcpy(e + 8, ips, 8 * n);
    __atomic_store_n((uint32_t *)e, (uint32_t)n, __ATOMIC_RELEASE);
    return (uint32_t)off;
}
