/* timer.c - one-shot timers in a 4-ary min-heap keyed by (due, seq).
 *
 * After libuv's src/timer.c: the sequence number breaks ties so that timers
 * with equal deadlines fire in the order they were started, which SIP timers
 * armed in the same turn rely on.  Start and stop are O(log n) and never
 * allocate: the heap array is sized to the loop's max_timers at creation.
 *
 * Why 4-ary with the keys inline: a loop holds up to ~1M armed timers (Timer
 * J/L run 32 s), so a binary heap of pointers took ~20 levels with a cache
 * miss on the timer behind every compared pointer.  Four children share one
 * or two cache lines of 24-byte entries and halve the levels; only moved
 * timers are touched, to update their heap_idx. */
#include <limits.h>
#include <time.h>

#include "base/err.h"
#include "ev/ev_int.h"

uint64_t ims_ev_clock_ms(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define HEAP_D 4 /* children per node */

static bool ent_less(const struct ev_heap_ent *a, const struct ev_heap_ent *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct ims_loop *loop, size_t i, const struct ev_heap_ent *e)
{
    loop->heap[i] = *e;
    e->t->heap_idx = i;
}

/* Moves the entry at i towards the root; a hole walks up instead of swaps. */
static void sift_up(struct ims_loop *loop, size_t i)
{
    struct ev_heap_ent e = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_D;
        if (!ent_less(&e, &loop->heap[parent]))
            break;
        heap_set(loop, i, &loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, &e);
}

static void sift_down(struct ims_loop *loop, size_t i)
{
    struct ev_heap_ent e = loop->heap[i];
    size_t n = loop->nheap;
    for (;;) {
        size_t first = HEAP_D * i + 1;
        if (first >= n)
            break;
        size_t last = first + HEAP_D < n ? first + HEAP_D : n;
        size_t m = first;
        for (size_t c = first + 1; c < last; c++)
            if (ent_less(&loop->heap[c], &loop->heap[m]))
                m = c;
        if (!ent_less(&loop->heap[m], &e))
            break;
        heap_set(loop, i, &loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, &e);
}

/* Restores the heap after the key at i changed, whichever way it moved. */
static void heap_fix(struct ims_loop *loop, size_t i)
{
    if (i > 0 && ent_less(&loop->heap[i], &loop->heap[(i - 1) / HEAP_D]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

static void heap_remove(struct ims_loop *loop, struct ims_timer *t)
{
    size_t i = t->heap_idx;
    size_t last = --loop->nheap;
    t->heap_idx = SIZE_MAX;
    if (i == last)
        return;
    /* the last entry fills the hole */
    heap_set(loop, i, &loop->heap[last]);
    heap_fix(loop, i);
}

void ims_timer_init(struct ims_timer *t, ims_timer_cb cb, void *data)
{
    t->due_ms = 0;
    t->seq = 0;
    t->heap_idx = SIZE_MAX;
    t->cb = cb;
    t->data = data;
    t->drop = NULL;
}

int ims_timer_start(struct ims_loop *loop, struct ims_timer *t, uint64_t ms)
{
    bool armed = ims_timer_armed(t);
    if (!armed && loop->nheap >= loop->max_timers)
        return IMS_ELIMIT;
    /* Saturate instead of wrapping for "forever" timeouts. */
    t->due_ms = ms > UINT64_MAX - loop->now_ms ? UINT64_MAX : loop->now_ms + ms;
    t->seq = ++loop->timer_seq;
    struct ev_heap_ent e = { t->due_ms, t->seq, t };
    if (armed) {
        /* re-arm in place: one sift instead of a remove and an insert */
        size_t i = t->heap_idx;
        loop->heap[i] = e;
        heap_fix(loop, i);
        return 0;
    }
    size_t i = loop->nheap++;
    heap_set(loop, i, &e);
    sift_up(loop, i);
    return 0;
}

void ims_timer_stop(struct ims_loop *loop, struct ims_timer *t)
{
    if (ims_timer_armed(t))
        heap_remove(loop, t);
}

int ims_ev_next_timeout(const struct ims_loop *loop)
{
    if (loop->nheap == 0)
        return -1;
    uint64_t due = loop->heap[0].due_ms;
    if (due <= loop->now_ms)
        return 0;
    uint64_t d = due - loop->now_ms;
    return d > INT_MAX ? INT_MAX : (int)d;
}

void ims_ev_run_timers(struct ims_loop *loop)
{
    /* Timers armed by the callbacks below get a larger seq: they wait for the
     * next turn even when due now, so a callback re-arming itself with 0 ms
     * cannot starve I/O (libuv does the same with its start_id). */
    uint64_t seq_limit = loop->timer_seq;
    while (loop->nheap > 0) {
        const struct ev_heap_ent *top = &loop->heap[0];
        if (top->due_ms > loop->now_ms || top->seq > seq_limit)
            break;
        struct ims_timer *t = top->t;
        heap_remove(loop, t);
        t->cb(loop, t);
    }
}
