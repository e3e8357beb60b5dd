/* ev_int.h - private to src/ev: the loop struct shared by loop.c and timer.c. */
#ifndef IMS_EV_INT_H
#define IMS_EV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "ev/loop.h"

/* Events fetched per epoll_wait().  A larger batch saves syscalls under load,
 * but ims_io_stop() scans the batch (see below), so keep it modest. */
#define EV_BATCH 64

struct ev_post {
    struct ev_post *next;
    ims_post_fn fn;
    void (*drop)(void *arg);
    void *arg;
};

/* One timer heap slot: the timer's (due, seq) key and the timer. */
struct ev_heap_ent {
    uint64_t due_ms;
    uint64_t seq;
    struct ims_timer *t;
};

struct ims_loop {
    int epfd;
    int evfd;            /* wakes the loop for posts and stop() */
    struct ims_io wake;  /* evfd's registration */
    uint64_t now_ms;     /* cached monotonic time, refreshed each turn */
    atomic_bool stop;
    void *data;

    /* Timer heap (timer.c): 4-ary, heap[0] is the earliest (due, seq).  The
     * keys are copied into the entries so that sifting compares without
     * touching the timers themselves.  The array is sized max_timers at
     * creation so that arming a timer never allocates. */
    struct ev_heap_ent *heap;
    size_t nheap;
    size_t max_timers;
    uint64_t timer_seq;

    /* The batch being dispatched: ims_io_stop() clears entries of the io it
     * stops so that a callback may stop (and free) another io whose event is
     * still pending in this batch.  O(batch) per stop. */
    struct epoll_event batch[EV_BATCH];
    int nbatch;
    int batch_pos;

    /* ims_loop_defer(): loop thread only, so no lock */
    struct ims_deferred *defer_head, *defer_tail;
    uint64_t defer_round;

    pthread_mutex_t post_lock; /* guards post_head/post_tail */
    struct ev_post *post_head, *post_tail;
};

uint64_t ims_ev_clock_ms(void);
/* Runs timers due at loop->now_ms that were armed before this call (the
 * loop takes its sleep from ims_ev_next_timeout after its deferred calls,
 * which may arm more). */
void ims_ev_run_timers(struct ims_loop *loop);
/* Milliseconds until the earliest timer, -1 if none (0 if overdue). */
int ims_ev_next_timeout(const struct ims_loop *loop);

#endif
