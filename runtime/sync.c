/*
 * sync.c - locks, events, semaphores and queues for tasks of one loop.
 *
 * Waiters queue FIFO on the object's list through their wait.node, so
 * cancellation and timeouts unlink them with the wait's cancel function,
 * cs__park_cancel.
 * Locks and semaphores hand ownership to the first waiter on release, so
 * a task that arrives later cannot barge past one that was woken but has
 * not run yet.  Queues follow asyncio.Queue (see cs_queue_put).
 */
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>

/* Each starts with a cs__obj (its trace id, see internal.h). */
struct cs_lock {
    cs__obj obj;
    cs_task *holder;  /* owning task, NULL when free */
    cs__link waiters; /* tasks in cs_lock_acquire, FIFO */
};

struct cs_event {
    cs__obj obj;
    bool set;         /* the flag */
    cs__link waiters; /* tasks in cs_event_wait */
};

struct cs_semaphore {
    cs__obj obj;
    unsigned value;   /* permits available */
    cs__link waiters; /* tasks in cs_semaphore_acquire, FIFO */
};

struct cs_queue {
    cs__obj obj;
    size_t cap;       /* capacity (>= 1) */
    size_t head, len; /* ring position and fill */
    cs__link getters; /* tasks waiting in cs_queue_get for an item */
    cs__link putters; /* tasks waiting in cs_queue_put for room */
    void **items;     /* ring of cap items */
};

static cs_task *cs__self_or_null(void)
{
    return cs_current_task();
}

/* The calling task, for a call on obj: 0 and *self, or CS_EINVAL (no
 * object) or CS_ENOLOOP (not called from a task). */
static int cs__sync_caller(const void *obj, cs_task **self)
{
    *self = cs__self_or_null();
    return !obj ? CS_EINVAL : !*self ? CS_ENOLOOP : 0;
}

/* A parked task leaves its object's list without being handed anything. */
static void cs__park_cancel(cs_task *t)
{
    cs__list_del(&t->wait.node);
}

/* Parks self on list until woken; returns what the waker passed. */
static int cs__park(cs_task *self, cs__link *list, enum cs_wait_reason why,
                    void *obj)
{
    int r = cs__cancel_check(self);
    if (r)
        return r;
    cs__list_push(list, &self->wait.node);
    return cs__wait(self, why, obj, cs__park_cancel, -1);
}

/* Wakes the first waiter of list with 0, or returns NULL if none. */
static cs_task *cs__unpark(cs__link *list)
{
    cs_task *t;

    if (cs__list_empty(list))
        return NULL;
    t = cs__waiter_of(list->next);
    cs__list_del(&t->wait.node);
    cs__wake(t, 0);
    return t;
}

/* A zeroed object of size bytes with its trace id and an empty list of
 * waiters at waiters_off (lock, event, semaphore), or NULL. */
static void *cs__sync_new(size_t size, size_t waiters_off)
{
    char *o = calloc(1, size);
    if (o) {
        ((cs__obj *)o)->id = cs__obj_id_next();
        cs__list_init((cs__link *)(o + waiters_off));
    }
    return o;
}
#define CS__SYNC_NEW(type) cs__sync_new(sizeof(type), offsetof(type, waiters))

/* ---- lock --------------------------------------------------------------- */

CS_EXTERN cs_lock *cs_lock_new(void)
{
    return CS__SYNC_NEW(cs_lock);
}

CS_EXTERN void cs_lock_free(cs_lock *l)
{
    free(l);
}

CS_EXTERN int cs_lock_try_acquire(cs_lock *l)
{
    cs_task *self;
    int r = cs__sync_caller(l, &self);

    if (r == 0 && l->holder)
        return CS_EBUSY;
    if (r == 0)
        l->holder = self;
    return r;
}

CS_EXTERN int cs_lock_acquire(cs_lock *l)
{
    cs_task *self = cs__self_or_null();
    int r = cs_lock_try_acquire(l);

    if (r != CS_EBUSY)
        return r;
    if (l->holder == self)
        return CS_EDEADLK;
    /* on success the releaser has already made us the holder */
    return cs__park(self, &l->waiters, CS_WAIT_LOCK, l);
}

CS_EXTERN void cs_lock_release(cs_lock *l)
{
    cs_task *next;

    if (!l || !l->holder)
        return;
    next = cs__unpark(&l->waiters);
    l->holder = next;
}

/* The holder of l, for the deadlock detector and the task dump. */
cs_task *cs__lock_holder(const cs_lock *l)
{
    return l ? l->holder : NULL;
}

/* ---- event -------------------------------------------------------------- */

CS_EXTERN cs_event *cs_event_new(void)
{
    return CS__SYNC_NEW(cs_event);
}

CS_EXTERN void cs_event_free(cs_event *e)
{
    free(e);
}

CS_EXTERN void cs_event_set(cs_event *e)
{
    if (!e || e->set)
        return;
    e->set = true;
    while (cs__unpark(&e->waiters))
        ;
}

CS_EXTERN void cs_event_clear(cs_event *e)
{
    if (e)
        e->set = false;
}

CS_EXTERN int cs_event_is_set(const cs_event *e)
{
    return e && e->set;
}

CS_EXTERN int cs_event_wait(cs_event *e)
{
    cs_task *self;
    int r = cs__sync_caller(e, &self);

    if (r != 0)
        return r;
    if (e->set)
        return 0;
    return cs__park(self, &e->waiters, CS_WAIT_EVENT, e);
}

/* ---- semaphore ---------------------------------------------------------- */

CS_EXTERN cs_semaphore *cs_semaphore_new(unsigned value)
{
    cs_semaphore *s = CS__SYNC_NEW(cs_semaphore);
    if (s)
        s->value = value;
    return s;
}

CS_EXTERN int cs_semaphore_acquire(cs_semaphore *s)
{
    cs_task *self;
    int r = cs__sync_caller(s, &self);

    if (r != 0)
        return r;
    if (s->value > 0 && cs__list_empty(&s->waiters)) {
        s->value--;
        return 0;
    }
    return cs__park(self, &s->waiters, CS_WAIT_SEMAPHORE, s);
}

CS_EXTERN void cs_semaphore_release(cs_semaphore *s)
{
    if (s && !cs__unpark(&s->waiters)) /* else the permit went to a waiter */
        s->value++;
}

CS_EXTERN void cs_semaphore_free(cs_semaphore *s)
{
    free(s);
}

/* ---- queue -------------------------------------------------------------- */

CS_EXTERN cs_queue *cs_queue_new(size_t capacity)
{
    cs_queue *q;

    if (capacity == 0)
        return NULL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->items = calloc(capacity, sizeof(void *));
    if (!q->items) {
        free(q);
        return NULL;
    }
    q->obj.id = cs__obj_id_next();
    q->cap = capacity;
    cs__list_init(&q->getters);
    cs__list_init(&q->putters);
    return q;
}

CS_EXTERN void cs_queue_free(cs_queue *q)
{
    if (q)
        free(q->items);
    free(q);
}

CS_EXTERN size_t cs_queue_size(const cs_queue *q)
{
    return q ? q->len : 0;
}

static void cs__queue_push(cs_queue *q, void *item)
{
    q->items[(q->head + q->len) % q->cap] = item;
    q->len++;
}

/* put and get follow asyncio.Queue exactly: a woken waiter re-checks the
 * queue rather than being handed an item, so the interleaving of producers
 * and consumers is the one asyncio users expect. */
CS_EXTERN int cs_queue_put(cs_queue *q, void *item)
{
    cs_task *self;
    int r = cs__sync_caller(q, &self);

    if (r != 0)
        return r;
    while (q->len == q->cap) {
        r = cs__park(self, &q->putters, CS_WAIT_QUEUE_PUT, q);
        if (r)
            return r;
    }
    cs__queue_push(q, item);
    cs__unpark(&q->getters);
    return 0;
}

CS_EXTERN int cs_queue_get(cs_queue *q, void **item)
{
    cs_task *self;
    void *v;
    int r = cs__sync_caller(q, &self);

    if (r != 0)
        return r;
    while (q->len == 0) {
        r = cs__park(self, &q->getters, CS_WAIT_QUEUE_GET, q);
        if (r)
            return r;
    }
    v = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    cs__unpark(&q->putters);
    if (item)
        *item = v;
    return 0;
}
