/* test_sqn_gen.c - SQNs committed without a flush (store_int.h, "SQNs
 * committed without a flush"): the generation a process takes at start,
 * the SEQ skip of a row last written under an earlier one, the bound on
 * what a power cut can lose, and the power cut itself, played by copying
 * the database files as they are right after a flush (what the disk holds)
 * and opening the copy as the next start would.
 * SQLite only, except the generation an executor takes (both backends). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/aka.h"
#include "store/exec.h"
#include "store/store_cache.h"
#include "store/store_int.h"
#include "store/store_sqnblk.h"
#include "store_tests.h"
#include "vfs_shim.h"

static const uint8_t K[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t OPC[16] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const char ALICE[] = "alice@ims.test";

static int next_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    return ims_aka_sqn_next(cur, next);
}

/* 1000 SEQs at once: the lazy budget in a few calls */
static int jump_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    *next = ims_aka_sqn_make(ims_aka_sqn_seq(cur) + 1000, ims_aka_sqn_ind(cur));
    return 0;
}

/* SEQ 10 back, as a re-synchronisation may set it */
static int back_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    *next = ims_aka_sqn_make(ims_aka_sqn_seq(cur) - 10, ims_aka_sqn_ind(cur));
    return 0;
}

static uint64_t seq_of(uint64_t sqn)
{
    return ims_aka_sqn_seq(sqn);
}

static uint64_t update(struct ims_store *st, ims_store_sqn_fn fn)
{
    uint64_t sqn = 0;
    OK(st, ims_store_sqn_update(st, S(ALICE), fn, NULL, &sqn));
    return sqn;
}

/* The generation a connection of the next start would get. */
static uint64_t start_generation(struct ims_store *st)
{
    uint64_t gen = 0;
    OK(st, st_sqn_generation_start(st, &gen));
    st_set_sqn_generation(st, gen);
    return gen;
}

static long long row_gen(struct tfix *f)
{
    char v[32];
    tfix_sql_value(f, "SELECT q.sqn_gen FROM impi_sqn q JOIN impi i ON i.id = q.impi_id "
                      "WHERE i.identity = 'alice@ims.test'", v,
                   sizeof(v));
    return atoll(v);
}

static void test_generation_skip(void **state)
{
    struct tfix *f = *state;
    if (test_pg)
        skip();
    struct ims_store *st = shim_open_alice(f, K, OPC); /* alice's row: generation 0 */
    /* no generation (imscloudctl, a store alone): flushed, no skip.  The
     * first frame of a new WAL syncs its header (SQLite's own rule). */
    update(st, next_sqn);
    syncs_reset();
    uint64_t s1 = update(st, next_sqn);
    assert_int_equal(seq_of(s1), 2);
    assert_int_equal(syncs(), 1);

    /* a start: a flushed commit; the row, written under 0, skips once */
    syncs_reset();
    assert_int_equal(start_generation(st), 1);
    assert_true(syncs() >= 1);
    syncs_reset();
    uint64_t s2 = update(st, next_sqn);
    assert_int_equal(seq_of(s2), seq_of(s1) + SQN_GEN_SKIP + 1);
    assert_int_equal(ims_aka_sqn_ind(s2), ims_aka_sqn_ind(s1) + 1);
    uint64_t s3 = update(st, next_sqn);
    assert_int_equal(seq_of(s3), seq_of(s2) + 1);
    assert_int_equal(syncs(), 0); /* both left unflushed */
    assert_int_equal(row_gen(f), 1);

    /* two starts later: one skip per start */
    start_generation(st);
    assert_int_equal(start_generation(st), 3);
    uint64_t s4 = update(st, next_sqn);
    assert_int_equal(seq_of(s4), seq_of(s3) + 2 * SQN_GEN_SKIP + 1);
    assert_int_equal(row_gen(f), 3);

    /* a connection without a generation keeps the row's and flushes */
    struct ims_store *plain = NULL;
    assert_int_equal(ims_store_open(f->url, f->repo, &plain), 0);
    syncs_reset();
    uint64_t s5 = update(plain, next_sqn);
    assert_int_equal(seq_of(s5), seq_of(s4) + 1);
    assert_int_equal(syncs(), 1);
    assert_int_equal(row_gen(f), 3);

    /* a row a later start wrote (two processes on one file): flushed, no
     * skip, the later generation kept */
    st_set_sqn_generation(plain, 2);
    syncs_reset();
    uint64_t s6 = update(plain, next_sqn);
    assert_int_equal(seq_of(s6), seq_of(s5) + 1);
    assert_int_equal(syncs(), 1);
    assert_int_equal(row_gen(f), 3);
    ims_store_close(plain);
    ims_store_close(st);
    shim_remove();
}

static void test_lazy_budget(void **state)
{
    struct tfix *f = *state;
    if (test_pg)
        skip();
    _Static_assert(SQN_LAZY_MAX / 1000 == 4, "four jumps of 1000 fit, the fifth does not");
    struct ims_store *st = shim_open_alice(f, K, OPC);
    struct ims_store *flusher = NULL;
    assert_int_equal(ims_store_open(f->url, f->repo, &flusher), 0);
    start_generation(st);
    update(st, next_sqn); /* the skip: within the budget, one step */
    OK(flusher, st_flush(flusher, false));
    syncs_reset();
    for (int i = 0; i < 4; i++)
        update(st, jump_sqn);
    assert_int_equal(syncs(), 0);
    uint64_t over = update(st, jump_sqn); /* 5000 steps unflushed: this one flushes */
    assert_int_equal(syncs(), 1);
    /* that flush covered the four before it: four more go unflushed */
    for (int i = 0; i < 4; i++)
        update(st, jump_sqn);
    assert_int_equal(syncs(), 1);
    /* so does another connection's flush (store/exec.c's flusher) */
    OK(flusher, st_flush(flusher, false));
    syncs_reset();
    for (int i = 0; i < 4; i++)
        update(st, jump_sqn);
    assert_int_equal(syncs(), 0);
    /* a write that moves SEQ back is flushed */
    uint64_t before = update(st, next_sqn);
    syncs_reset();
    uint64_t back = update(st, back_sqn);
    assert_int_equal(seq_of(back), seq_of(before) - 10);
    assert_int_equal(syncs(), 1);
    assert_true(seq_of(over) > 0);
    ims_store_close(flusher);
    ims_store_close(st);
    shim_remove();
}

/* ---- the power cut ---- */

static void copy_file(const char *from, const char *to)
{
    if (!test_copy_file(from, to)) /* no WAL yet: nothing to copy */
        unlink(to);
}

/* What the disk holds now (called right after a flush, with nothing
 * committed since): the database and its WAL, into url_out's file.  The
 * -shm index is rebuilt from the WAL when the copy is opened. */
static void disk_image(const struct tfix *f, const char *url, const char *name, char *url_out,
                       size_t cap)
{
    char from[700], to[700];
    snprintf(url_out, cap, "sqlite:%s/%s", f->dir, name);
    const char *src = url + strlen("sqlite:");
    const char *dst = url_out + strlen("sqlite:");
    copy_file(src, dst);
    snprintf(from, sizeof(from), "%s-wal", src);
    snprintf(to, sizeof(to), "%s-wal", dst);
    copy_file(from, to);
    snprintf(to, sizeof(to), "%s-shm", dst);
    unlink(to);
}

/* Vectors handed out, then lost with the power: the next start hands out
 * none of them again, also when what was lost was itself the first
 * vector of a start (its skip) and the power goes twice. */
static void test_power_cut(void **state)
{
    struct tfix *f = *state;
    char disk1[700], disk2[700];
    if (test_pg)
        skip();
    struct ims_store *st = shim_open_alice(f, K, OPC);
    start_generation(st);
    update(st, next_sqn);
    OK(st, st_flush(st, false));
    disk_image(f, f->url, "disk1.db", disk1, sizeof(disk1));
    syncs_reset();
    uint64_t lost1 = 0;
    for (int i = 0; i < 50; i++)
        lost1 = update(st, next_sqn);
    assert_int_equal(syncs(), 0); /* all 50 handed out unflushed */
    ims_store_close(st);

    /* power back: the disk as of the flush; the next start */
    assert_int_equal(ims_store_open(disk1, f->repo, &st), 0);
    start_generation(st); /* flushed: the disk holds it */
    disk_image(f, disk1, "disk2.db", disk2, sizeof(disk2));
    syncs_reset();
    uint64_t first = update(st, next_sqn);
    assert_true(seq_of(first) > seq_of(lost1));
    uint64_t lost2 = first;
    for (int i = 0; i < 4; i++) /* the most the budget lets go unflushed */
        lost2 = update(st, jump_sqn);
    assert_int_equal(syncs(), 0);
    ims_store_close(st);

    /* the power goes again, before anything of this start was flushed */
    assert_int_equal(ims_store_open(disk2, f->repo, &st), 0);
    start_generation(st);
    uint64_t again = update(st, next_sqn);
    assert_true(seq_of(again) > seq_of(lost2));
    assert_true(seq_of(again) > seq_of(lost1));
    /* the USIM accepts the jump: at most Δ past the last SEQ it could know */
    assert_true(seq_of(again) - seq_of(lost1) <= IMS_AKA_DELTA);
    ims_store_close(st);
    shim_remove();
}

/* ---- SQN blocks (store_sqnblk.h) ---- */

static long long row_seq(struct tfix *f)
{
    char v[32];
    tfix_sql_value(f, "SELECT q.sqn FROM impi_sqn q JOIN impi i ON i.id = q.impi_id "
                      "WHERE i.identity = 'alice@ims.test'", v,
                   sizeof(v));
    return (long long)ims_aka_sqn_seq((uint64_t)atoll(v));
}

/* As an AKA MAR does it: the sealed read (which finds the row id), then
 * the SQN. */
static uint64_t take(struct ims_store *st)
{
    struct ims_aka_sealed sealed;
    uint64_t sqn = 0;
    OK(st, ims_store_aka_get_sealed(st, S(ALICE), &sealed));
    OK(st, ims_store_sqn_take(st, S(ALICE), next_sqn, NULL, &sqn));
    return sqn;
}

/* A take writes the row SQN_BLOCK_STEPS past what it hands out; the next
 * ones come from that block without a write while the row still holds its
 * end; a row anyone else wrote is never taken from; a start after a crash
 * hands out nothing of a block again. */
static void test_sqn_blocks(void **state)
{
    struct tfix *f = *state;
    struct store_cache *cache = NULL;
    struct store_sqnblk *blocks = NULL;
    if (test_pg)
        skip();
    struct ims_store *st = shim_open_alice(f, K, OPC);
    assert_int_equal(store_cache_new(64, &cache), 0);
    assert_int_equal(store_sqnblk_new(64, &blocks), 0);
    st_use_cache(st, cache);
    st_use_sqnblk(st, blocks);

    /* without a generation (a store alone, imscloudctl): every SQN written */
    uint64_t s0 = take(st);
    assert_int_equal(row_seq(f), seq_of(s0));

    start_generation(st);
    uint64_t s1 = take(st); /* the skip, then a block reserved past s1 */
    assert_int_equal(seq_of(s1), seq_of(s0) + SQN_GEN_SKIP + 1);
    long long end = row_seq(f);
    assert_int_equal(end, seq_of(s1) + SQN_BLOCK_STEPS);
    uint64_t prev = s1;
    syncs_reset();
    for (int i = 0; i < SQN_BLOCK_STEPS; i++) { /* from the block: nothing written */
        uint64_t s = take(st);
        assert_int_equal(seq_of(s), seq_of(prev) + 1);
        assert_int_equal(ims_aka_sqn_ind(s), (ims_aka_sqn_ind(prev) + 1) % 32);
        assert_int_equal(row_seq(f), end);
        prev = s;
    }
    assert_int_equal(seq_of(prev), end);
    assert_int_equal(syncs(), 0);
    uint64_t s2 = take(st); /* past the block: the next one, reserved */
    assert_int_equal(seq_of(s2), end + 1);
    assert_int_equal(row_seq(f), end + 1 + SQN_BLOCK_STEPS);

    /* another connection (another process, imscloudctl) writes the row:
     * this one's block is not used, it goes on from that write */
    struct ims_store *other = NULL;
    assert_int_equal(ims_store_open(f->url, f->repo, &other), 0);
    uint64_t o = update(other, next_sqn);
    assert_int_equal(seq_of(o), end + 2 + SQN_BLOCK_STEPS);
    uint64_t s3 = take(st);
    assert_int_equal(seq_of(s3), seq_of(o) + 1);
    ims_store_close(other);

    /* a write without a block (a re-synchronisation) ends the block */
    uint64_t back = update(st, back_sqn);
    uint64_t s4 = take(st);
    assert_int_equal(seq_of(s4), seq_of(back) + 1);
    prev = take(st); /* from the new block */
    assert_int_equal(row_seq(f), seq_of(s4) + SQN_BLOCK_STEPS);

    /* a crash (the blocks table gone with the process), the next start:
     * past the whole block, not just past what was handed out */
    store_sqnblk_free(blocks);
    assert_int_equal(store_sqnblk_new(64, &blocks), 0);
    st_use_sqnblk(st, blocks);
    start_generation(st);
    uint64_t s5 = take(st);
    assert_int_equal(seq_of(s5), seq_of(s4) + SQN_BLOCK_STEPS + SQN_GEN_SKIP + 1);
    assert_true(seq_of(s5) > seq_of(prev));

    ims_store_close(st);
    store_sqnblk_free(blocks);
    store_cache_free(cache);
    shim_remove();
}

/* ---- the executor takes the generation (a SQLite file only) ---- */

static long long generation(struct tfix *f)
{
    char v[32];
    tfix_sql_value(f, "SELECT gen FROM sqn_generation", v, sizeof(v));
    return atoll(v);
}

static void test_exec_takes_generation(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x = NULL;
    assert_int_equal(generation(f), 0);
    for (long long i = 1; i <= 2; i++) {
        assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 0, &x), 0);
        /* PostgreSQL commits are durable at COMMIT: no generation there */
        assert_int_equal(generation(f), test_pg ? 0 : i);
        ims_store_exec_free(x);
    }
}

const struct CMUnitTest sqn_gen_tests[] = {
    cmocka_unit_test_setup_teardown(test_generation_skip, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_lazy_budget, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_power_cut, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_sqn_blocks, tfix_setup, tfix_teardown),
    cmocka_unit_test_setup_teardown(test_exec_takes_generation, tfix_setup, tfix_teardown),
};
const size_t sqn_gen_ntests = sizeof(sqn_gen_tests) / sizeof(sqn_gen_tests[0]);
