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
 * 4. Callbacks never run from inside the call that schedules them. */
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
};

/* Timers live in a binary min-heap keyed by (due, seq): O(log n) start/stop,
 * no allocation, equal deadlines fire in start order. */
struct ims_timer {
    uint64_t due_ms;
    uint64_t seq;
    size_t heap_idx; /* SIZE_MAX when not armed */
    ims_timer_cb cb;
    void *data;
};

/* Creates a loop able to hold `max_timers` armed timers (a cap, not a
 * preallocation hint: ims_timer_start returns IMS_ELIMIT past it).
 * Returns 0, IMS_ENOMEM or IMS_EIO. */
int ims_loop_new(size_t max_timers, struct ims_loop **out);
/* Frees the loop; pending posts get their drop callback.  Must not run. */
void ims_loop_free(struct ims_loop *loop);
/* Runs until ims_loop_stop(). Returns 0 or IMS_EIO. */
int ims_loop_run(struct ims_loop *loop);
/* Thread-safe: asks the loop to return from ims_loop_run() soon. */
void ims_loop_stop(struct ims_loop *loop);
/* Monotonic milliseconds, cached at each loop turn. */
uint64_t ims_loop_now(const struct ims_loop *loop);
/* Refreshes the cached time (after a long callback). */
void ims_loop_update_time(struct ims_loop *loop);
/* Opaque per-loop user pointer (the worker that owns it). */
void ims_loop_set_data(struct ims_loop *loop, void *data);
void *ims_loop_data(const struct ims_loop *loop);

/* io: fd must be non-blocking. start adds, set changes interest, stop removes.
 * 0 or IMS_EIO. Stopping an io that is not started is a no-op. */
void ims_io_init(struct ims_io *io, int fd, ims_io_cb cb, void *data);
int ims_io_start(struct ims_loop *loop, struct ims_io *io, unsigned events);
int ims_io_set(struct ims_loop *loop, struct ims_io *io, unsigned events);
void ims_io_stop(struct ims_loop *loop, struct ims_io *io);

void ims_timer_init(struct ims_timer *t, ims_timer_cb cb, void *data);
/* (Re)arms t to fire once after ms milliseconds. 0 or IMS_ELIMIT. */
int ims_timer_start(struct ims_loop *loop, struct ims_timer *t, uint64_t ms);
void ims_timer_stop(struct ims_loop *loop, struct ims_timer *t);
static inline bool ims_timer_armed(const struct ims_timer *t)
{
    return t->heap_idx != SIZE_MAX;
}

/* Thread-safe hand-off into the loop (a locked queue plus an eventfd).
 * 0, or IMS_ENOMEM (then fn and drop are never called). */
int ims_loop_post(struct ims_loop *loop, ims_post_fn fn, void *arg, void (*drop)(void *arg));

#endif
