/* loop.c - the epoll event loop: io watchers, the turn structure, posts.
 *
 * One turn: run due timers, wait in epoll_wait() until the next timer or an
 * event, refresh the cached clock, dispatch the batch.  Posts and stop() wake
 * the loop through one eventfd (as open5gs' ogs_pollset_notify does), whose
 * callback runs the posts queued so far.
 *
 * Costs: ims_io_stop() scans the current batch (<= EV_BATCH entries) so that
 * a callback may stop another io whose event is pending; each post costs one
 * allocation, and one eventfd write when it finds the queue empty. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "ev/ev_int.h"

static void run_posts(struct ims_loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    struct ev_post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    /* Posts queued by these callbacks wait for the next wake-up: each runs
     * after the call that queued it has returned. */
    while (p) {
        struct ev_post *next = p->next;
        p->fn(loop, p->arg);
        ims_free(p);
        p = next;
    }
}

/* The calls deferred so far; those they defer wait for the next turn. */
static void run_deferred(struct ims_loop *loop)
{
    /* Popped one by one from the live list (so a call may cancel a later
     * one); the round stamp stops at those queued meanwhile. */
    uint64_t round = loop->defer_round++;
    struct ims_deferred *d;
    while ((d = loop->defer_head) && d->round <= round) {
        loop->defer_head = d->next;
        if (!loop->defer_head)
            loop->defer_tail = NULL;
        d->next = NULL;
        d->fn(loop, d->arg);
    }
}

static void wake_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    uint64_t v;
    /* One read takes the whole counter (no EFD_SEMAPHORE); non-blocking:
     * EAGAIN means another wake-up already drained it. */
    ssize_t n = read(loop->evfd, &v, sizeof(v));
    (void)n;
    run_posts(loop);
}

static void wake(struct ims_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is near overflow, i.e. already readable. */
    ssize_t n = write(loop->evfd, &one, sizeof(one));
    (void)n;
}

int ims_loop_new(size_t max_timers, struct ims_loop **out)
{
    int rc = IMS_ENOMEM;
    struct ims_loop *loop = ims_calloc(1, sizeof(*loop));
    if (!loop)
        return IMS_ENOMEM;
    loop->max_timers = max_timers;
    loop->heap = ims_calloc(max_timers ? max_timers : 1, sizeof(*loop->heap));
    if (!loop->heap)
        goto out_free_loop;
    rc = IMS_EIO;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        LOG_E("ev", "event=epoll_create_failed errno=%d", errno);
        goto out_free_heap;
    }
    loop->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->evfd < 0) {
        LOG_E("ev", "event=eventfd_failed errno=%d", errno);
        goto out_close_ep;
    }
    if (pthread_mutex_init(&loop->post_lock, NULL) != 0)
        goto out_close_ev;
    atomic_init(&loop->stop, false);
    loop->now_ms = ims_ev_clock_ms();
    ims_io_init(&loop->wake, loop->evfd, wake_cb, NULL);
    if (ims_io_start(loop, &loop->wake, IMS_IO_READ) != 0)
        goto out_destroy_lock;
    *out = loop;
    return 0;

out_destroy_lock:
    pthread_mutex_destroy(&loop->post_lock);
out_close_ev:
    close(loop->evfd);
out_close_ep:
    close(loop->epfd);
out_free_heap:
    ims_free(loop->heap);
out_free_loop:
    ims_free(loop);
    return rc;
}

void ims_loop_free(struct ims_loop *loop)
{
    if (!loop)
        return;
    ims_io_stop(loop, &loop->wake);
    struct ims_deferred *d = loop->defer_head;
    loop->defer_head = loop->defer_tail = NULL;
    while (d) {
        struct ims_deferred *next = d->next;
        if (d->drop)
            d->drop(d->arg);
        d = next;
    }
    /* No thread may post any more (rule 3 of loop.h is about posts that
     * raced with shutdown): whatever is queued is dropped, not run. */
    pthread_mutex_lock(&loop->post_lock);
    struct ev_post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    while (p) {
        struct ev_post *next = p->next;
        if (p->drop)
            p->drop(p->arg);
        ims_free(p);
        p = next;
    }
    /* every armed timer is disarmed before any drop runs (a drop may free
     * timers without one); those with a drop are kept at the heap's head */
    size_t ndrop = 0;
    for (size_t i = 0; i < loop->nheap; i++) {
        struct ims_timer *t = loop->heap[i].t;
        t->heap_idx = SIZE_MAX;
        if (t->drop)
            loop->heap[ndrop++].t = t;
    }
    loop->nheap = 0;
    for (size_t i = 0; i < ndrop; i++)
        loop->heap[i].t->drop(loop->heap[i].t);
    close(loop->evfd);
    close(loop->epfd);
    pthread_mutex_destroy(&loop->post_lock);
    ims_free(loop->heap);
    ims_free(loop);
}

static unsigned to_ims_events(uint32_t e, unsigned asked)
{
    unsigned ev = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        ev |= IMS_IO_READ;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        ev |= IMS_IO_WRITE;
    return ev & asked;
}

int ims_loop_run(struct ims_loop *loop)
{
    loop->now_ms = ims_ev_clock_ms();
    /* The stop flag is consumed here, so the loop can be run again. */
    while (!atomic_exchange(&loop->stop, false)) {
        ims_ev_run_timers(loop);
        run_deferred(loop);
        if (atomic_load(&loop->stop))
            continue;
        /* after the deferred calls: a timer they armed bounds the sleep (a
         * Cx batch's 1 ms waited for the next packet or the 1 s sweep) */
        int timeout = loop->defer_head ? 0 /* deferred by deferred calls: do not sleep */
                                       : ims_ev_next_timeout(loop);
        int n = epoll_wait(loop->epfd, loop->batch, EV_BATCH, timeout);
        loop->now_ms = ims_ev_clock_ms();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            LOG_E("ev", "event=epoll_wait_failed errno=%d", errno);
            return IMS_EIO;
        }
        loop->nbatch = n;
        for (loop->batch_pos = 0; loop->batch_pos < n; loop->batch_pos++) {
            struct epoll_event *e = &loop->batch[loop->batch_pos];
            struct ims_io *io = e->data.ptr;
            if (!io) /* stopped by an earlier callback of this batch */
                continue;
            unsigned ev = to_ims_events(e->events, io->events);
            if (ev)
                io->cb(loop, io, ev);
        }
        loop->nbatch = 0;
        loop->batch_pos = 0;
        run_deferred(loop);
    }
    return 0;
}

void ims_loop_stop(struct ims_loop *loop)
{
    atomic_store(&loop->stop, true);
    wake(loop);
}

uint64_t ims_loop_now(const struct ims_loop *loop)
{
    return loop->now_ms;
}

void ims_loop_update_time(struct ims_loop *loop)
{
    loop->now_ms = ims_ev_clock_ms();
}

void ims_loop_set_data(struct ims_loop *loop, void *data)
{
    loop->data = data;
}

void *ims_loop_data(const struct ims_loop *loop)
{
    return loop->data;
}

/* ---- io ---- */

void ims_io_init(struct ims_io *io, int fd, ims_io_cb cb, void *data)
{
    io->fd = fd;
    io->events = 0;
    io->cb = cb;
    io->data = data;
    io->active = false;
}

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & IMS_IO_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & IMS_IO_WRITE)
        e |= EPOLLOUT;
    return e;
}

static int io_ctl(struct ims_loop *loop, struct ims_io *io, int op, unsigned events)
{
    struct epoll_event e;
    memset(&e, 0, sizeof(e));
    e.events = to_epoll(events);
    e.data.ptr = io;
    if (epoll_ctl(loop->epfd, op, io->fd, &e) != 0) {
        LOG_W("ev", "event=epoll_ctl_failed op=%d fd=%d errno=%d", op, io->fd, errno);
        return IMS_EIO;
    }
    io->events = events;
    return 0;
}

int ims_io_start(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    if (io->active)
        return ims_io_set(loop, io, events);
    int rc = io_ctl(loop, io, EPOLL_CTL_ADD, events);
    if (rc == 0)
        io->active = true;
    return rc;
}

int ims_io_set(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    if (!io->active)
        return ims_io_start(loop, io, events);
    if (io->events == events)
        return 0;
    return io_ctl(loop, io, EPOLL_CTL_MOD, events);
}

void ims_io_stop(struct ims_loop *loop, struct ims_io *io)
{
    if (!io->active)
        return;
    /* If the owner closed the fd before stopping, the kernel already dropped
     * the registration: errors are ignored.  (Stop before close: a reused fd
     * number would otherwise lose someone else's registration.) */
    struct epoll_event e;
    memset(&e, 0, sizeof(e));
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, &e);
    io->active = false;
    io->events = 0;
    for (int i = loop->batch_pos + 1; i < loop->nbatch; i++) {
        if (loop->batch[i].data.ptr == io)
            loop->batch[i].data.ptr = NULL;
    }
}

/* ---- posts ---- */

void ims_loop_defer_cancel(struct ims_loop *loop, struct ims_deferred *d)
{
    struct ims_deferred *prev = NULL;
    for (struct ims_deferred *x = loop->defer_head; x; prev = x, x = x->next) {
        if (x != d)
            continue;
        if (prev)
            prev->next = x->next;
        else
            loop->defer_head = x->next;
        if (loop->defer_tail == x)
            loop->defer_tail = prev;
        x->next = NULL;
        return;
    }
}

void ims_loop_defer(struct ims_loop *loop, struct ims_deferred *d, ims_post_fn fn, void *arg,
                    void (*drop)(void *arg))
{
    d->next = NULL;
    d->round = loop->defer_round;
    d->fn = fn;
    d->drop = drop;
    d->arg = arg;
    if (loop->defer_tail)
        loop->defer_tail->next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
}

int ims_loop_post(struct ims_loop *loop, ims_post_fn fn, void *arg, void (*drop)(void *arg))
{
    struct ev_post *p = ims_alloc(sizeof(*p));
    if (!p)
        return IMS_ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->drop = drop;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    bool first = !loop->post_head;
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    pthread_mutex_unlock(&loop->post_lock);
    /* Only the post that finds the queue empty wakes the loop: run_posts()
     * takes the whole queue after wake_cb() drained the eventfd, so a post
     * that finds it non-empty is taken by the wake-up already on its way. */
    if (first)
        wake(loop);
    return 0;
}
