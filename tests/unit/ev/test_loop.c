/* test_loop.c - the event loop: timers, io dispatch, stop, posts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "ev/loop.h"

/* ---- timers ---- */

struct order_ctx {
    int fired[64];
    size_t n;
    size_t stop_after;
};

struct tagged_timer {
    struct ims_timer t;
    int tag;
    struct order_ctx *ctx;
};

static void order_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct tagged_timer *tt = t->data;
    tt->ctx->fired[tt->ctx->n++] = tt->tag;
    if (tt->ctx->n == tt->ctx->stop_after)
        ims_loop_stop(loop);
}

static void test_timer_order_equal_deadlines(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(16, &loop), 0);
    struct order_ctx ctx = { .stop_after = 6 };
    struct tagged_timer tt[6];
    /* equal deadlines fire in start order; shorter ones first */
    const uint64_t ms[6] = { 20, 20, 5, 20, 0, 0 };
    for (int i = 0; i < 6; i++) {
        tt[i].tag = i;
        tt[i].ctx = &ctx;
        ims_timer_init(&tt[i].t, order_cb, &tt[i]);
        assert_false(ims_timer_armed(&tt[i].t));
        assert_int_equal(ims_timer_start(loop, &tt[i].t, ms[i]), 0);
        assert_true(ims_timer_armed(&tt[i].t));
    }
    /* callback rule: nothing ran inside ims_timer_start */
    assert_int_equal(ctx.n, 0);
    assert_int_equal(ims_loop_run(loop), 0);
    const int want[6] = { 4, 5, 2, 0, 1, 3 };
    assert_int_equal(ctx.n, 6);
    assert_memory_equal(ctx.fired, want, sizeof(want));
    for (int i = 0; i < 6; i++)
        assert_false(ims_timer_armed(&tt[i].t));
    ims_loop_free(loop);
}

static void test_timer_rearm_and_stop(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(16, &loop), 0);
    struct order_ctx ctx = { .stop_after = 2 };
    struct tagged_timer tt[3];
    for (int i = 0; i < 3; i++) {
        tt[i].tag = i;
        tt[i].ctx = &ctx;
        ims_timer_init(&tt[i].t, order_cb, &tt[i]);
        assert_int_equal(ims_timer_start(loop, &tt[i].t, 5), 0);
    }
    ims_timer_stop(loop, &tt[1].t);
    ims_timer_stop(loop, &tt[1].t); /* twice is a no-op */
    assert_false(ims_timer_armed(&tt[1].t));
    assert_int_equal(ims_timer_start(loop, &tt[0].t, 15), 0); /* re-arm moves it */
    assert_int_equal(ims_loop_run(loop), 0);
    const int want[2] = { 2, 0 };
    assert_int_equal(ctx.n, 2);
    assert_memory_equal(ctx.fired, want, sizeof(want));
    ims_loop_free(loop);
}

struct rearm_ctx {
    struct ims_timer t;
    int count;
    uint64_t first_now;
};

/* A 0 ms timer re-armed from its own callback fires once per turn, not in a
 * tight loop inside one turn. */
static void rearm_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct rearm_ctx *c = t->data;
    if (++c->count == 5) {
        ims_loop_stop(loop);
        return;
    }
    assert_int_equal(ims_timer_start(loop, t, 0), 0);
    assert_true(ims_timer_armed(t));
}

static void test_timer_rearm_self(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    struct rearm_ctx c = { .count = 0 };
    ims_timer_init(&c.t, rearm_cb, &c);
    assert_int_equal(ims_timer_start(loop, &c.t, 0), 0);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(c.count, 5);
    ims_loop_free(loop);
}

static void stop_cb(struct ims_loop *loop, struct ims_timer *t)
{
    int *n = t->data;
    (*n)++;
    ims_loop_stop(loop);
}

static void test_stop_restart(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    int n = 0;
    struct ims_timer t;
    ims_timer_init(&t, stop_cb, &n);
    for (int round = 1; round <= 3; round++) {
        assert_int_equal(ims_timer_start(loop, &t, 1), 0);
        assert_int_equal(ims_loop_run(loop), 0);
        assert_int_equal(n, round);
    }
    /* a stop requested while not running makes the next run return at once */
    assert_int_equal(ims_timer_start(loop, &t, 10000), 0);
    ims_loop_stop(loop);
    uint64_t t0 = ims_loop_now(loop);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_true(ims_loop_now(loop) - t0 < 5000);
    assert_int_equal(n, 3);
    ims_timer_stop(loop, &t);
    ims_loop_free(loop);
}

struct many_ctx {
    size_t fired, total;
    uint64_t last_due;
    bool order_ok;
};

struct many_timer {
    struct ims_timer t;
    struct many_ctx *ctx;
};

static void many_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct many_timer *m = t->data;
    if (t->due_ms < m->ctx->last_due)
        m->ctx->order_ok = false;
    m->ctx->last_due = t->due_ms;
    if (++m->ctx->fired == m->ctx->total)
        ims_loop_stop(loop);
}

static void test_many_timers(void **state)
{
    enum { N = 20000 };
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(N, &loop), 0);
    struct many_timer *mt = ims_calloc(N, sizeof(*mt));
    assert_non_null(mt);
    struct many_ctx ctx = { .order_ok = true };
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        mt[i].ctx = &ctx;
        ims_timer_init(&mt[i].t, many_cb, &mt[i]);
        x = x * 1103515245u + 12345u;
        assert_int_equal(ims_timer_start(loop, &mt[i].t, (x >> 16) % 60), 0);
    }
    /* stop every third: the heap must stay consistent */
    size_t stopped = 0;
    for (size_t i = 0; i < N; i += 3) {
        ims_timer_stop(loop, &mt[i].t);
        stopped++;
    }
    ctx.total = N - stopped;
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(ctx.fired, ctx.total);
    assert_true(ctx.order_ok);
    for (size_t i = 0; i < N; i++)
        assert_false(ims_timer_armed(&mt[i].t));
    ims_free(mt);
    ims_loop_free(loop);
}

/* The 4-ary heap against its specification: after random starts, re-arms
 * and stops (holes opened at every depth, many equal deadlines), timers fire
 * in strictly increasing (due, seq), each armed one exactly once. */
struct model_ctx {
    size_t fired, total;
    uint64_t last_due, last_seq;
    bool order_ok;
};

static void model_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct model_ctx *c = t->data;
    if (c->fired > 0 &&
        (t->due_ms < c->last_due || (t->due_ms == c->last_due && t->seq <= c->last_seq)))
        c->order_ok = false;
    c->last_due = t->due_ms;
    c->last_seq = t->seq;
    if (++c->fired == c->total)
        ims_loop_stop(loop);
}

static void test_timer_heap_model(void **state)
{
    enum { N = 3000, OPS = 20000 };
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(N, &loop), 0);
    struct ims_timer *t = ims_calloc(N, sizeof(*t));
    assert_non_null(t);
    struct model_ctx ctx = { .order_ok = true };
    for (size_t i = 0; i < N; i++)
        ims_timer_init(&t[i], model_cb, &ctx);
    uint32_t x = 777;
    for (size_t op = 0; op < OPS; op++) {
        x = x * 1103515245u + 12345u;
        struct ims_timer *tm = &t[(x >> 8) % N];
        if ((x >> 28) < 3)
            ims_timer_stop(loop, tm);
        else
            assert_int_equal(ims_timer_start(loop, tm, (x >> 4) % 4), 0); /* 0-3 ms */
    }
    for (size_t i = 0; i < N; i++)
        ctx.total += ims_timer_armed(&t[i]);
    assert_true(ctx.total > 0);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(ctx.fired, ctx.total);
    assert_true(ctx.order_ok);
    for (size_t i = 0; i < N; i++)
        assert_false(ims_timer_armed(&t[i]));
    ims_free(t);
    ims_loop_free(loop);
}

static void nop_timer_cb(struct ims_loop *loop, struct ims_timer *t)
{
}

static void test_timer_cap(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(3, &loop), 0);
    struct ims_timer t[4];
    for (int i = 0; i < 4; i++)
        ims_timer_init(&t[i], nop_timer_cb, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ims_timer_start(loop, &t[i], 100), 0);
    assert_int_equal(ims_timer_start(loop, &t[3], 100), IMS_ELIMIT);
    assert_false(ims_timer_armed(&t[3]));
    /* re-arming an armed timer at the cap is fine */
    assert_int_equal(ims_timer_start(loop, &t[1], 50), 0);
    ims_timer_stop(loop, &t[0]);
    assert_int_equal(ims_timer_start(loop, &t[3], 100), 0);
    for (int i = 0; i < 4; i++)
        ims_timer_stop(loop, &t[i]);
    ims_loop_free(loop);
}

/* ---- io ---- */

struct io_ctx {
    struct ims_io io[2];
    int fds[2][2];
    int calls[2];
};

static void io_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct io_ctx *c = io->data;
    int i = io == &c->io[0] ? 0 : 1;
    c->calls[i]++;
    assert_true(events & IMS_IO_READ);
    /* the first one to run stops and closes the other, whose event is
     * pending in the same batch: it must not be called */
    int other = 1 - i;
    ims_io_stop(loop, &c->io[other]);
    ims_io_stop(loop, io);
    ims_loop_stop(loop);
}

static void test_io_stop_other_in_batch(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    struct io_ctx c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(c.fds[i]), 0);
        ims_io_init(&c.io[i], c.fds[i][0], io_cb, &c);
        assert_int_equal(ims_io_start(loop, &c.io[i], IMS_IO_READ), 0);
        assert_int_equal(write(c.fds[i][1], "x", 1), 1);
    }
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(c.calls[0] + c.calls[1], 1);
    for (int i = 0; i < 2; i++) {
        assert_false(c.io[i].active);
        close(c.fds[i][0]);
        close(c.fds[i][1]);
    }
    ims_loop_free(loop);
}

struct wr_ctx {
    struct ims_io io;
    int writes;
};

static void wr_cb(struct ims_loop *loop, struct ims_io *io, unsigned events)
{
    struct wr_ctx *c = io->data;
    assert_int_equal(events, IMS_IO_WRITE);
    if (++c->writes == 3) {
        ims_io_stop(loop, io);
        ims_loop_stop(loop);
    }
}

static void test_io_write_interest(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct wr_ctx c = { .writes = 0 };
    ims_io_init(&c.io, fds[1], wr_cb, &c);
    assert_int_equal(ims_io_start(loop, &c.io, 0), 0);
    assert_int_equal(ims_io_set(loop, &c.io, IMS_IO_WRITE), 0);
    assert_int_equal(c.io.events, IMS_IO_WRITE);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(c.writes, 3);
    ims_io_stop(loop, &c.io); /* not started: no-op */
    close(fds[0]);
    close(fds[1]);
    ims_loop_free(loop);
}

/* ---- posts ---- */

enum { POST_THREADS = 4, POST_EACH = 2000 };

struct post_ctx {
    struct ims_loop *loop;
    unsigned char seen[POST_THREADS * POST_EACH];
    size_t count;
    size_t dup;
};

struct post_arg {
    struct post_ctx *ctx;
    size_t idx;
};

static void post_fn(struct ims_loop *loop, void *arg)
{
    struct post_arg *a = arg;
    if (a->ctx->seen[a->idx]++)
        a->ctx->dup++;
    if (++a->ctx->count == POST_THREADS * POST_EACH)
        ims_loop_stop(loop);
    ims_free(a);
}

struct thread_arg {
    struct post_ctx *ctx;
    size_t base;
    int failures;
};

static void *post_thread(void *p)
{
    struct thread_arg *ta = p;
    for (size_t i = 0; i < POST_EACH; i++) {
        struct post_arg *a = ims_alloc(sizeof(*a));
        if (!a) {
            ta->failures++;
            continue;
        }
        a->ctx = ta->ctx;
        a->idx = ta->base + i;
        if (ims_loop_post(ta->ctx->loop, post_fn, a, ims_free) != 0) {
            ims_free(a);
            ta->failures++;
        }
    }
    return NULL;
}

static void watchdog_cb(struct ims_loop *loop, struct ims_timer *t)
{
    ims_loop_stop(loop);
}

static void test_post_from_threads(void **state)
{
    static struct post_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(ims_loop_new(4, &ctx.loop), 0);
    struct ims_timer wd;
    ims_timer_init(&wd, watchdog_cb, NULL);
    assert_int_equal(ims_timer_start(ctx.loop, &wd, 20000), 0);
    pthread_t th[POST_THREADS];
    struct thread_arg ta[POST_THREADS];
    for (int i = 0; i < POST_THREADS; i++) {
        ta[i] = (struct thread_arg){ &ctx, (size_t)i * POST_EACH, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, post_thread, &ta[i]), 0);
    }
    assert_int_equal(ims_loop_run(ctx.loop), 0);
    for (int i = 0; i < POST_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ta[i].failures, 0);
    }
    assert_int_equal(ctx.count, POST_THREADS * POST_EACH);
    assert_int_equal(ctx.dup, 0);
    for (size_t i = 0; i < POST_THREADS * POST_EACH; i++)
        assert_int_equal(ctx.seen[i], 1);
    ims_timer_stop(ctx.loop, &wd);
    ims_loop_free(ctx.loop);
}

/* One post at a time, each only after the loop ran the one before: every
 * post finds the queue empty and must wake a loop that has gone back to
 * sleep (the eventfd is written only on that transition).  A lost wake-up
 * leaves the loop asleep until the watchdog, and the count short. */
enum { PINGPONG_ROUNDS = 3000 };

struct pingpong {
    struct ims_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ran; /* posts run so far (under mu) */
};

static void pingpong_fn(struct ims_loop *loop, void *arg)
{
    struct pingpong *pp = arg;
    pthread_mutex_lock(&pp->mu);
    int n = ++pp->ran;
    pthread_cond_signal(&pp->cv);
    pthread_mutex_unlock(&pp->mu);
    if (n == PINGPONG_ROUNDS)
        ims_loop_stop(loop);
}

static void *pingpong_thread(void *p)
{
    struct pingpong *pp = p;
    for (int i = 0; i < PINGPONG_ROUNDS; i++) {
        if (ims_loop_post(pp->loop, pingpong_fn, pp, NULL) != 0)
            break;
        pthread_mutex_lock(&pp->mu);
        while (pp->ran <= i)
            pthread_cond_wait(&pp->cv, &pp->mu);
        pthread_mutex_unlock(&pp->mu);
        if (i % 64 == 0)
            usleep(200); /* now and then, let the loop sleep in epoll_wait */
    }
    return NULL;
}

static void test_post_wakes_sleeping_loop(void **state)
{
    struct pingpong pp = { 0 };
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    assert_int_equal(ims_loop_new(4, &pp.loop), 0);
    struct ims_timer wd;
    ims_timer_init(&wd, watchdog_cb, NULL);
    assert_int_equal(ims_timer_start(pp.loop, &wd, 20000), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pingpong_thread, &pp), 0);
    assert_int_equal(ims_loop_run(pp.loop), 0);
    pthread_mutex_lock(&pp.mu);
    int ran = pp.ran;
    if (ran < PINGPONG_ROUNDS) { /* the watchdog stopped it: free the poster */
        pp.ran = PINGPONG_ROUNDS + 1;
        pthread_cond_broadcast(&pp.cv);
    }
    pthread_mutex_unlock(&pp.mu);
    pthread_join(th, NULL);
    assert_int_equal(ran, PINGPONG_ROUNDS);
    ims_timer_stop(pp.loop, &wd);
    ims_loop_free(pp.loop);
    pthread_cond_destroy(&pp.cv);
    pthread_mutex_destroy(&pp.mu);
}

struct count_ctx {
    int fn_calls, drop_calls;
};

static void count_fn(struct ims_loop *loop, void *arg)
{
    ((struct count_ctx *)arg)->fn_calls++;
}

static void count_drop(void *arg)
{
    ((struct count_ctx *)arg)->drop_calls++;
}

static void test_free_with_pending_posts(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    struct count_ctx c = { 0, 0 };
    for (int i = 0; i < 10; i++)
        assert_int_equal(ims_loop_post(loop, count_fn, &c, count_drop), 0);
    assert_int_equal(ims_loop_post(loop, count_fn, &c, NULL), 0); /* no drop: fine */
    assert_int_equal(c.fn_calls, 0);
    ims_loop_free(loop);
    assert_int_equal(c.fn_calls, 0);
    assert_int_equal(c.drop_calls, 10);
}

/* Armed timers with a drop get it at free, with the timer disarmed, even
 * when the drop frees the memory of a timer without one; timers that fired
 * or were stopped do not, nor do timers without a drop. */
struct owned_timer {
    struct ims_timer t;
    struct ims_timer *plain; /* freed by the drop: a timer without one */
    int *drops;
};

static void owned_fire(struct ims_loop *loop, struct ims_timer *t)
{
    (void)loop;
    (void)t;
    fail_msg("a timer of a loop that never ran fired");
}

static void owned_drop(struct ims_timer *t)
{
    struct owned_timer *o = (struct owned_timer *)t;
    assert_false(ims_timer_armed(t));
    (*o->drops)++;
    free(o->plain);
    free(o);
}

static void test_free_drops_armed_timers(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(16, &loop), 0);
    int drops = 0;
    for (int i = 0; i < 5; i++) {
        struct owned_timer *o = calloc(1, sizeof(*o));
        o->drops = &drops;
        o->plain = calloc(1, sizeof(*o->plain));
        ims_timer_init(&o->t, owned_fire, NULL);
        ims_timer_on_drop(&o->t, owned_drop);
        ims_timer_init(o->plain, owned_fire, NULL);
        assert_int_equal(ims_timer_start(loop, o->plain, 1000 + i), 0);
        assert_int_equal(ims_timer_start(loop, &o->t, 2000 - i), 0);
    }
    /* stopped: no drop */
    struct owned_timer stopped = { .drops = &drops };
    ims_timer_init(&stopped.t, owned_fire, NULL);
    ims_timer_on_drop(&stopped.t, owned_drop);
    assert_int_equal(ims_timer_start(loop, &stopped.t, 10), 0);
    ims_timer_stop(loop, &stopped.t);
    ims_loop_free(loop);
    assert_int_equal(drops, 5);
}

static void self_post_fn(struct ims_loop *loop, void *arg)
{
    struct count_ctx *c = arg;
    c->fn_calls++;
    if (c->fn_calls == 1) {
        /* posting from the loop thread: runs later, not inside this call */
        assert_int_equal(ims_loop_post(loop, self_post_fn, c, NULL), 0);
        assert_int_equal(c->fn_calls, 1);
    } else {
        ims_loop_stop(loop);
    }
}

static void test_post_from_loop_thread(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    struct count_ctx c = { 0, 0 };
    assert_int_equal(ims_loop_post(loop, self_post_fn, &c, NULL), 0);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(c.fn_calls, 2);
    ims_loop_free(loop);
}

/* ims_loop_defer: runs after the deferring callback returned, in order;
 * a chain of deferrals runs turn after turn without the loop sleeping (a
 * 10 s timer is the only other event); pending ones get drop at free. */
struct defer_ctx {
    struct ims_deferred d[8];
    int order[8], n, chain;
    bool inside;
    int cancelled_ran;
};

static void defer_cancelled(struct ims_loop *loop, void *arg)
{
    ((struct defer_ctx *)arg)->cancelled_ran++;
}

/* runs before d[5] in the same round and withdraws it */
static void defer_canceller(struct ims_loop *loop, void *arg)
{
    struct defer_ctx *c = arg;
    ims_loop_defer_cancel(loop, &c->d[5]);
}

static void defer_fn(struct ims_loop *loop, void *arg);

static void defer_record(struct defer_ctx *c, int i)
{
    assert_false(c->inside);
    c->order[c->n++] = i;
}

static void defer_a(struct ims_loop *loop, void *arg)
{
    defer_record(arg, 0);
}

static void defer_b(struct ims_loop *loop, void *arg)
{
    defer_record(arg, 1);
}

static void defer_fn(struct ims_loop *loop, void *arg)
{
    struct defer_ctx *c = arg;
    if (++c->chain < 100) {
        ims_loop_defer(loop, &c->d[2], defer_fn, c, NULL);
        return;
    }
    ims_loop_stop(loop);
}

static void defer_start(struct ims_loop *loop, struct ims_timer *t)
{
    struct defer_ctx *c = t->data;
    c->inside = true;
    ims_loop_defer(loop, &c->d[0], defer_a, c, NULL);
    ims_loop_defer(loop, &c->d[1], defer_b, c, NULL);
    ims_loop_defer(loop, &c->d[4], defer_canceller, c, NULL);
    ims_loop_defer(loop, &c->d[5], defer_cancelled, c, NULL);
    ims_loop_defer(loop, &c->d[6], defer_cancelled, c, NULL);
    ims_loop_defer_cancel(loop, &c->d[6]);
    ims_loop_defer(loop, &c->d[2], defer_fn, c, NULL);
    c->inside = false;
}

static void never_cb(struct ims_loop *loop, struct ims_timer *t)
{
    fail_msg("the loop slept while calls were deferred");
}

static void test_defer(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    struct defer_ctx c;
    memset(&c, 0, sizeof(c));
    struct ims_timer start, never;
    ims_timer_init(&start, defer_start, &c);
    ims_timer_init(&never, never_cb, NULL);
    assert_int_equal(ims_timer_start(loop, &start, 0), 0);
    assert_int_equal(ims_timer_start(loop, &never, 10000), 0);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.order[0], 0);
    assert_int_equal(c.order[1], 1);
    assert_int_equal(c.chain, 100);
    assert_int_equal(c.cancelled_ran, 0);
    ims_timer_stop(loop, &never);
    /* pending at free: drop, not fn */
    struct count_ctx cc = { 0, 0 };
    ims_loop_defer(loop, &c.d[3], count_fn, &cc, count_drop);
    ims_loop_free(loop);
    assert_int_equal(cc.fn_calls, 0);
    assert_int_equal(cc.drop_calls, 1);
}

/* A timer armed by a deferred call bounds the loop's next sleep: the
 * deferred call runs after the turn's timers computed their timeout, and
 * the loop used to sleep on that (here until the 10 s timer; with the
 * CSCFs, a Cx batch's 1 ms timer waited for the next packet). */
struct defer_timer_ctx {
    struct ims_deferred d;
    struct ims_timer soon;
    uint64_t armed_at, fired_at;
};

static void soon_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct defer_timer_ctx *c = t->data;
    c->fired_at = ims_loop_now(loop);
    ims_loop_stop(loop);
}

static void arm_soon(struct ims_loop *loop, void *arg)
{
    struct defer_timer_ctx *c = arg;
    c->armed_at = ims_loop_now(loop);
    assert_int_equal(ims_timer_start(loop, &c->soon, 5), 0);
}

static void defer_arm_start(struct ims_loop *loop, struct ims_timer *t)
{
    struct defer_timer_ctx *c = t->data;
    ims_loop_defer(loop, &c->d, arm_soon, c, NULL);
}

static void late_cb(struct ims_loop *loop, struct ims_timer *t)
{
    fail_msg("the loop slept past a timer a deferred call armed");
}

static void test_defer_arms_timer(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    struct defer_timer_ctx c;
    memset(&c, 0, sizeof(c));
    struct ims_timer start, late;
    ims_timer_init(&c.soon, soon_cb, &c);
    ims_timer_init(&start, defer_arm_start, &c);
    ims_timer_init(&late, late_cb, NULL);
    assert_int_equal(ims_timer_start(loop, &late, 10000), 0);
    assert_int_equal(ims_timer_start(loop, &start, 0), 0);
    assert_int_equal(ims_loop_run(loop), 0);
    assert_true(c.fired_at >= c.armed_at + 5);
    ims_timer_stop(loop, &late);
    ims_loop_free(loop);
}

static void test_alloc_failures(void **state)
{
    for (unsigned long n = 1;; n++) {
        struct ims_loop *loop = NULL;
        ims_alloc_fail_at(n, 0);
        int rc = ims_loop_new(8, &loop);
        ims_alloc_fail_at(0, 0);
        if (rc == 0) {
            ims_loop_free(loop);
            assert_true(n > 1);
            break;
        }
        assert_int_equal(rc, IMS_ENOMEM);
        assert_true(n < 10);
    }
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(8, &loop), 0);
    struct count_ctx c = { 0, 0 };
    ims_alloc_fail_at(1, 0);
    assert_int_equal(ims_loop_post(loop, count_fn, &c, count_drop), IMS_ENOMEM);
    ims_alloc_fail_at(0, 0);
    ims_loop_free(loop);
    assert_int_equal(c.fn_calls, 0);
    assert_int_equal(c.drop_calls, 0);
}

static void test_time(void **state)
{
    struct ims_loop *loop;
    assert_int_equal(ims_loop_new(4, &loop), 0);
    ims_loop_set_data(loop, &loop);
    assert_ptr_equal(ims_loop_data(loop), &loop);
    uint64_t a = ims_loop_now(loop);
    usleep(20000);
    assert_int_equal(ims_loop_now(loop), a); /* cached */
    ims_loop_update_time(loop);
    assert_true(ims_loop_now(loop) >= a + 15);
    ims_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order_equal_deadlines),
        cmocka_unit_test(test_timer_rearm_and_stop),
        cmocka_unit_test(test_timer_rearm_self),
        cmocka_unit_test(test_stop_restart),
        cmocka_unit_test(test_many_timers),
        cmocka_unit_test(test_timer_heap_model),
        cmocka_unit_test(test_timer_cap),
        cmocka_unit_test(test_io_stop_other_in_batch),
        cmocka_unit_test(test_io_write_interest),
        cmocka_unit_test(test_post_from_threads),
        cmocka_unit_test(test_post_wakes_sleeping_loop),
        cmocka_unit_test(test_free_with_pending_posts),
        cmocka_unit_test(test_free_drops_armed_timers),
        cmocka_unit_test(test_post_from_loop_thread),
        cmocka_unit_test(test_defer),
        cmocka_unit_test(test_defer_arms_timer),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
