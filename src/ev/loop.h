/* loop.h - one epoll event loop per worker thread, with a timer heap and a
 * thread-safe post queue.
 *
 * Lifetime rules:
 * 1. A loop is owned by the thread that runs ims_loop_run(); every ims_io and
 *    ims_timer registered on it is touched only from that thread.
 * 2. ims_io and ims_timer are embedded in their owner's struct; the loop
 *    borrows them while they are started and forgets them when stopped.
 * 3. ims_loop_post() is the one call that is safe from any thread: the
 *    function runs later on the loop's thread, exactly once, unless the loop
 *    is destroyed first (then `drop` is called, if given, to free arg).
 * 4. Callbacks never run from inside the call that schedules them.
 * 5. ims_loop_defer() is for the loop's own thread only: fn runs on this
 *    thread later in the same turn, without a syscall (rule 4 holds). */
#ifndef IMS_EV_LOOP_H
#define IMS_EV_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ims_loop;
struct ims_io;
struct ims_timer;

enum { IMS_IO_READ = 1, IMS_IO_WRITE = 2 };

typedef void (*ims_io_cb)(struct ims_loop *loop, struct ims_io *io, unsigned events);
typedef void (*ims_timer_cb)(struct ims_loop *loop, struct ims_timer *t);
typedef void (*ims_post_fn)(struct ims_loop *loop, void *arg);

struct ims_io {
    int fd;
    unsigned events; /* IMS_IO_READ|IMS_IO_WRITE currently asked for */
    ims_io_cb cb;
    void *data;
    bool active;     /* registered with the loop (between start and stop) */
};

/* Timers live in a 4-ary min-heap keyed by (due, seq): O(log n) start/stop,
 * no allocation, equal deadlines fire in start order. */
struct ims_timer {
    uint64_t due_ms;
    uint64_t seq;
    size_t heap_idx; /* SIZE_MAX when not armed */
    ims_timer_cb cb;
    void *data;
    void (*drop)(struct ims_timer *t); /* ims_timer_on_drop; NULL: none */
};

/* Creates a loop able to hold `max_timers` armed timers (a cap, not a
 * preallocation hint: ims_timer_start returns IMS_ELIMIT past it).
 * Returns 0, IMS_ENOMEM or IMS_EIO. */
int ims_loop_new(size_t max_timers, struct ims_loop **out);
/* Frees the loop; pending posts and deferred calls get their drop
 * callback (not their fn), and so do armed timers that have one
 * (ims_timer_on_drop); other armed timers are simply forgotten.  Must not
 * be running; every io must be stopped first.  NULL is a no-op. */
void ims_loop_free(struct ims_loop *loop);
/* Runs until ims_loop_stop(): each turn runs the due timers, waits for I/O
 * (epoll_wait) until the next timer, then dispatches the events.  A stop
 * requested before the call (or while not running) makes it return at once;
 * the request is consumed, so the loop can be run again.
 * Returns 0 or IMS_EIO (epoll_wait failed). */
int ims_loop_run(struct ims_loop *loop);
/* Thread-safe: asks the loop to return from ims_loop_run() soon (after the
 * callback that is running, if any). */
void ims_loop_stop(struct ims_loop *loop);
/* Monotonic milliseconds, cached at each loop turn. */
uint64_t ims_loop_now(const struct ims_loop *loop);
/* Refreshes the cached time (after a long callback). */
void ims_loop_update_time(struct ims_loop *loop);
/* Opaque per-loop user pointer (the worker that owns it). */
void ims_loop_set_data(struct ims_loop *loop, void *data);
void *ims_loop_data(const struct ims_loop *loop);

/* io: fd must be non-blocking. start adds, set changes interest, stop removes.
 * 0 or IMS_EIO. Stopping an io that is not started is a no-op; start on a
 * started io and set on a stopped one behave like set and start.  Events are
 * level-triggered; a hang-up or error is reported as whichever of READ/WRITE
 * the io asked for.  After ims_io_stop() returns, the callback is not called
 * again for this io, even for events already fetched in the current turn, so
 * a callback may stop and free any io (close the fd after stopping it). */
void ims_io_init(struct ims_io *io, int fd, ims_io_cb cb, void *data);
int ims_io_start(struct ims_loop *loop, struct ims_io *io, unsigned events);
int ims_io_set(struct ims_loop *loop, struct ims_io *io, unsigned events);
void ims_io_stop(struct ims_loop *loop, struct ims_io *io);

void ims_timer_init(struct ims_timer *t, ims_timer_cb cb, void *data);
/* For a timer that owns something to release when it never fires: if t is
 * still armed when its loop is freed, drop(t) runs then (disarmed).  A drop
 * must not free another timer that has a drop.  Set after ims_timer_init
 * (which clears it). */
static inline void ims_timer_on_drop(struct ims_timer *t, void (*drop)(struct ims_timer *t))
{
    t->drop = drop;
}
/* (Re)arms t to fire once after ms milliseconds, counted from the cached
 * ims_loop_now().  A timer fires at the earliest on the next turn, even with
 * ms == 0 (a callback re-arming itself cannot starve I/O); timers with equal
 * deadlines fire in start order.  The timer is disarmed before its callback
 * runs, so the callback may re-arm or free it.
 * 0, or IMS_ELIMIT (max_timers armed; t is then left disarmed). */
int ims_timer_start(struct ims_loop *loop, struct ims_timer *t, uint64_t ms);
void ims_timer_stop(struct ims_loop *loop, struct ims_timer *t);
static inline bool ims_timer_armed(const struct ims_timer *t)
{
    return t->heap_idx != SIZE_MAX;
}

/* Thread-safe hand-off into the loop (a locked queue plus an eventfd,
 * written only by the post that finds the queue empty).
 * fn(loop, arg) runs on the loop's thread, in posting order, after this call
 * returns (also when called from the loop's own thread).  One allocation.
 * 0, or IMS_ENOMEM (then fn and drop are never called). */
int ims_loop_post(struct ims_loop *loop, ims_post_fn fn, void *arg, void (*drop)(void *arg));

/* A deferred call, embedded in its owner's struct (no allocation). */
struct ims_deferred {
    struct ims_deferred *next;
    uint64_t round; /* the loop's defer round it was queued in */
    ims_post_fn fn;
    void (*drop)(void *arg);
    void *arg;
};

/* Same-thread hand-off: fn(loop, arg) runs on the loop's thread after the
 * callback that deferred it returns, before the loop waits again (calls
 * deferred by deferred calls run in the next turn, which then does not
 * sleep), in deferral order.  No lock, no eventfd, no allocation: the way
 * to complete work "later" that is already done on this thread.  d is
 * borrowed until fn or drop starts; drop runs instead of fn if the loop is
 * freed first.  Only from the loop's own thread (or before it runs). */
void ims_loop_defer(struct ims_loop *loop, struct ims_deferred *d, ims_post_fn fn, void *arg,
                    void (*drop)(void *arg));
/* Withdraws d if it is still deferred (neither fn nor drop will run); a
 * no-op otherwise.  O(deferred).  Loop thread only. */
void ims_loop_defer_cancel(struct ims_loop *loop, struct ims_deferred *d);

#endif
