/* timer.c - one-shot timers in a binary min-heap keyed by (due, seq).
 *
 * After libuv's src/timer.c: the sequence number breaks ties so that timers
 * with equal deadlines fire in the order they were started, which SIP timers
 * armed in the same turn rely on.  Start and stop are O(log n) and never
 * allocate: the heap array is sized to the loop's max_timers at creation. */
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

static bool timer_less(const struct ims_timer *a, const struct ims_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct ims_loop *loop, size_t i, struct ims_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void sift_up(struct ims_loop *loop, size_t i)
{
    struct ims_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void sift_down(struct ims_loop *loop, size_t i)
{
    struct ims_timer *t = loop->heap[i];
    size_t n = loop->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ims_timer *best = t;
        if (l < n && timer_less(loop->heap[l], best)) {
            m = l;
            best = loop->heap[l];
        }
        if (r < n && timer_less(loop->heap[r], best))
            m = r;
        if (m == i)
            break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

static void heap_remove(struct ims_loop *loop, struct ims_timer *t)
{
    size_t i = t->heap_idx;
    struct ims_timer *last = loop->heap[--loop->nheap];
    t->heap_idx = SIZE_MAX;
    if (last == t)
        return;
    heap_set(loop, i, last);
    sift_down(loop, i);
    sift_up(loop, last->heap_idx);
}

void ims_timer_init(struct ims_timer *t, ims_timer_cb cb, void *data)
{
    t->due_ms = 0;
    t->seq = 0;
    t->heap_idx = SIZE_MAX;
    t->cb = cb;
    t->data = data;
}

int ims_timer_start(struct ims_loop *loop, struct ims_timer *t, uint64_t ms)
{
    if (ims_timer_armed(t))
        heap_remove(loop, t);
    if (loop->nheap >= loop->max_timers)
        return IMS_ELIMIT;
    /* Saturate instead of wrapping for "forever" timeouts. */
    t->due_ms = ms > UINT64_MAX - loop->now_ms ? UINT64_MAX : loop->now_ms + ms;
    t->seq = ++loop->timer_seq;
    loop->heap[loop->nheap] = t;
    t->heap_idx = loop->nheap++;
    sift_up(loop, t->heap_idx);
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
    uint64_t due = loop->heap[0]->due_ms;
    if (due <= loop->now_ms)
        return 0;
    uint64_t d = due - loop->now_ms;
    return d > INT_MAX ? INT_MAX : (int)d;
}

int ims_ev_run_timers(struct ims_loop *loop)
{
    /* Timers armed by the callbacks below get a larger seq: they wait for the
     * next turn even when due now, so a callback re-arming itself with 0 ms
     * cannot starve I/O (libuv does the same with its start_id). */
    uint64_t seq_limit = loop->timer_seq;
    while (loop->nheap > 0) {
        struct ims_timer *t = loop->heap[0];
        if (t->due_ms > loop->now_ms || t->seq > seq_limit)
            break;
        heap_remove(loop, t);
        t->cb(loop, t);
    }
    return ims_ev_next_timeout(loop);
}
