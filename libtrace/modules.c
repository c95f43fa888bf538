/*
 * modules.c - the writer side of the module table (trace_format.h): every
 * object loaded in this process, from dl_iterate_phdr, with its load bias,
 * the address range of its PT_LOAD segments, its GNU build id and its path.
 * Readers use it to name stack addresses after the process has exited.
 *
 * The table lives in the segment, so the flight recorder, which may run in
 * a signal handler, only copies bytes.  Filling it walks the loader's list,
 * which takes the loader's lock: cs__tr_modules_refresh must never run
 * in a signal handler.  A refresh costs one callback when nothing was
 * loaded or unloaded since the last one (the loader's adds/subs counters).
 */
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"

static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long seen_adds, seen_subs; /* at the last walk */
static int walked;                              /* seen_* are valid */

struct walk {
    cs_module_table *tab; /* in the segment */
    cs_module *ent;       /* its entries */
    int index;            /* objects seen so far; 0 is the executable */
    int force;            /* walk even if the counters did not move */
};

int cs__tr_note_build_id(const struct dl_phdr_info *info, uint8_t *out,
                         uint32_t *len)
{
    *len = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *n;
            const uint8_t *desc = name + CS__ALIGN(n->n_namesz, 4);
            const uint8_t *next = desc + CS__ALIGN(n->n_descsz, 4);
            if (next > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0) {
                uint32_t k = n->n_descsz > CS_BUILD_ID_MAX ? CS_BUILD_ID_MAX
                                                           : n->n_descsz;
                memcpy(out, desc, k);
                *len = k;
                return 1;
            }
            p = next;
        }
    }
    return 0;
}

/* Already listed: the same range and path (dlclose and dlopen again). */
static int listed(const struct walk *w, uint32_t count, const cs_module *m)
{
    for (uint32_t i = 0; i < count; i++) {
        const cs_module *e = &w->ent[i];
        if (e->base == m->base && e->start == m->start && e->end == m->end &&
            strcmp(e->path, m->path) == 0)
            return 1;
    }
    return 0;
}

static void describe(const struct dl_phdr_info *info, int is_exe, cs_module *m)
{
    memset(m, 0, sizeof *m);
    m->base = info->dlpi_addr;
    m->start = UINT64_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (lo < m->start)
            m->start = lo;
        if (lo + ph->p_memsz > m->end)
            m->end = lo + ph->p_memsz;
    }
    cs__tr_note_build_id(info, m->build_id, &m->build_id_len);
    /* The executable's dlpi_name is "": its path is the header's. */
    const char *path = is_exe ? cs__tr_seg_g.hdr->exe_path : info->dlpi_name;
    size_t len = path ? strnlen(path, CS_MODULE_PATH_MAX) : 0;
    if (len == CS_MODULE_PATH_MAX) {
        len = CS_MODULE_PATH_MAX - 1;
        m->flags |= CS_MODF_PATH_CUT;
    }
    if (len > 0)
        memcpy(m->path, path, len);
    m->path[len] = '\0';
    m->path_len = (uint16_t)len;
    if (is_exe)
        m->flags |= CS_MODF_EXE;
}

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct walk *w = arg;
    int is_exe = w->index++ == 0;
    if (is_exe && size >= offsetof(struct dl_phdr_info, dlpi_subs) +
                              sizeof info->dlpi_subs) {
        if (walked && !w->force && info->dlpi_adds == seen_adds &&
            info->dlpi_subs == seen_subs)
            return 1; /* nothing loaded or unloaded since the last walk */
        seen_adds = info->dlpi_adds;
        seen_subs = info->dlpi_subs;
        walked = 1;
    }
    cs_module m;
    describe(info, is_exe, &m);
    if (m.start >= m.end) /* no PT_LOAD: nothing to name */
        return 0;
    cs_module_table *tab = w->tab;
    uint32_t count = __atomic_load_n(&tab->count, __ATOMIC_RELAXED);
    if (listed(w, count, &m))
        return 0;
    if (count >= tab->capacity) {
        __atomic_fetch_add(&tab->dropped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    w->ent[count] = m;
    /* Readers take entries below count only: publish after the bytes. */
    __atomic_store_n(&tab->count, count + 1, __ATOMIC_RELEASE);
    return 0;
}

void cs__tr_modules_refresh(int force)
{
    pthread_mutex_lock(&mod_lock);
    if (cs__tr_seg_g.base != NULL && cs__tr_seg_g.modules != NULL) {
        struct walk w = {
            .tab = cs__tr_seg_g.modules,
            .ent = (cs_module *)(cs__tr_seg_g.modules + 1),
            .force = force,
        };
        dl_iterate_phdr(module_cb, &w);
    }
    pthread_mutex_unlock(&mod_lock);
}

void cs__tr_modules_reset(void)
{
    /* After fork the lock may be held by a thread that no longer exists. */
    pthread_mutex_init(&mod_lock, NULL);
    walked = 0;
}
