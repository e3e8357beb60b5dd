/* test_cache.c - store/store_cache.h: the table itself (bounds, tags,
 * epochs), and the identity cache in front of the database: hits, and
 * never an entry older than a change another connection (imscloudctl)
 * committed or a change that was rolled back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/digest.h"
#include "store/exec.h"
#include "store/store_cache.h"
#include "store/store_int.h"
#include "store_tests.h"

static const uint8_t K1[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t OPC1[16] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };

static void stats(struct store_cache *c, struct ims_store_cache_stats *s)
{
    store_cache_stats(c, s);
}

/* ------------------------------------------------------- the table */

static void test_table(void **state)
{
    (void)state;
    struct store_cache *c;
    struct ims_store_cache_stats s;
    char v[16];
    size_t n;
    assert_int_equal(store_cache_new(0, &c), IMS_EINVAL);
    assert_int_equal(store_cache_new(8, &c), 0);
    uint64_t e = store_cache_epoch(c);
    assert_int_equal(store_cache_put(c, 7, e, "k1", 2, "value", 5), 0);
    assert_true(store_cache_get(c, 7, "k1", 2, v, sizeof(v), &n));
    assert_int_equal(n, 5);
    assert_memory_equal(v, "value", 5);
    /* another gen, another key, too small a buffer: misses */
    assert_false(store_cache_get(c, 8, "k1", 2, v, sizeof(v), &n));
    assert_false(store_cache_get(c, 7, "k2", 2, v, sizeof(v), &n));
    assert_false(store_cache_get(c, 7, "k1", 2, v, 4, &n));
    /* a put replaces the key's entry */
    assert_int_equal(store_cache_put(c, 8, e, "k1", 2, "v2", 2), 0);
    assert_true(store_cache_get(c, 8, "k1", 2, v, sizeof(v), &n));
    assert_memory_equal(v, "v2", 2);
    assert_false(store_cache_get(c, 7, "k1", 2, v, sizeof(v), &n));
    /* forget: nothing read before is usable, nor kept when put late */
    store_cache_forget(c);
    assert_false(store_cache_get(c, 8, "k1", 2, v, sizeof(v), &n));
    assert_int_equal(store_cache_put(c, 8, e, "k3", 2, "x", 1), 0);
    assert_false(store_cache_get(c, 8, "k3", 2, v, sizeof(v), &n));
    /* bounded: 1000 keys into 8 entries */
    e = store_cache_epoch(c);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(store_cache_put(c, 1, e, k, (size_t)kl, &i, sizeof(i)), 0);
    }
    stats(c, &s);
    assert_int_equal(s.capacity, 8);
    assert_true(s.entries <= 8);
    assert_true(s.evictions >= 1000 - 8);
    /* the last one put is there: a full set drops its least recently used */
    int got = -1;
    assert_true(store_cache_get(c, 1, "key999", 6, &got, sizeof(got), &n));
    assert_int_equal(got, 999);
    store_cache_free(c);
}

/* ------------------------------------------ in front of the database */

struct cfix {
    struct tfix *f;
    struct store_cache *c;
    struct ims_store *other; /* another connection, as imscloudctl's */
};

static void cfix_open(struct cfix *x, void **state)
{
    x->f = *state;
    const char *ai[] = { "sip:alice@ims.test", NULL };
    provision(x->f->st, "alice", "alice@ims.test", K1, OPC1, "pw-one", ai);
    assert_int_equal(store_cache_new(64, &x->c), 0);
    st_use_cache(x->f->st, x->c);
    assert_int_equal(ims_store_open(x->f->url, x->f->repo, &x->other), 0);
}

static void cfix_close(struct cfix *x)
{
    ims_store_close(x->other);
    st_use_cache(x->f->st, NULL);
    store_cache_free(x->c);
}

static void ha1_of(const char *pw, char out[IMS_DIGEST_HEX_MAX + 1])
{
    assert_int_equal(ims_digest_ha1(IMS_DIGEST_MD5, S("alice@ims.test"), S("ims.test"), S(pw), out),
                     0);
}

/* The HA1 the Cx path reads (through the cache when it holds the row). */
static void cx_ha1(struct cfix *x, char out[IMS_DIGEST_HEX_MAX + 1])
{
    struct ims_auth_data ad;
    OK(x->f->st, ims_store_auth_get_fields(x->f->st, S("alice@ims.test"),
                                           IMS_AUTH_F_HA1(IMS_DIGEST_MD5) | IMS_AUTH_F_NO_SQN,
                                           &ad));
    assert_true(ad.has_ha1[IMS_DIGEST_MD5]);
    assert_int_equal(ad.sqn, 0); /* never from the cache, never asked */
    memcpy(out, ad.ha1[IMS_DIGEST_MD5], IMS_DIGEST_HEX_MAX + 1);
    ims_auth_data_clear(&ad);
}

static enum ims_assoc assoc(struct cfix *x)
{
    enum ims_assoc a = IMS_ASSOC_NO_IMPI;
    OK(x->f->st, ims_store_assoc_check(x->f->st, S("alice@ims.test"), S("sip:alice@ims.test"), &a));
    return a;
}

static void test_hits(void **state)
{
    struct cfix x;
    struct ims_store_cache_stats s;
    char got[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    cfix_open(&x, state);
    ha1_of("pw-one", want);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(assoc(&x), IMS_ASSOC_OK);
        cx_ha1(&x, got);
        assert_string_equal(got, want);
    }
    stats(x.c, &s);
    assert_int_equal(s.misses, 2); /* the first of each */
    assert_int_equal(s.hits, 4);
    /* an answer other than OK is not kept: junk identities would push
     * real entries out */
    enum ims_assoc a;
    for (int i = 0; i < 2; i++) {
        OK(x.f->st, ims_store_assoc_check(x.f->st, S("nobody@ims.test"), S("sip:alice@ims.test"),
                                          &a));
        assert_int_equal(a, IMS_ASSOC_NO_IMPI);
    }
    stats(x.c, &s);
    assert_int_equal(s.puts, 2);
    /* a caller that wants SQN reads the row */
    struct ims_auth_data ad;
    OK(x.f->st, ims_store_auth_get(x.f->st, S("alice@ims.test"), &ad));
    ims_auth_data_clear(&ad);
    stats(x.c, &s);
    assert_int_equal(s.hits, 4);
    cfix_close(&x);
}

static int next_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    (void)ctx;
    *next = cur + 32;
    return 0;
}

/* Changes committed by another connection are seen at once. */
static void test_other_writer(void **state)
{
    struct cfix x;
    char got[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    struct ims_auth_data ad;
    uint64_t sqn = 0;
    cfix_open(&x, state);
    cx_ha1(&x, got);
    assert_int_equal(assoc(&x), IMS_ASSOC_OK);

    OK(x.other, ims_store_impi_set_password(x.other, S("alice@ims.test"), S("pw-two"), false));
    ha1_of("pw-two", want);
    cx_ha1(&x, got);
    assert_string_equal(got, want);

    /* SQN: by the cached row id, and read back from the database */
    OK(x.f->st, ims_store_sqn_update(x.f->st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    OK(x.f->st, ims_store_sqn_update(x.f->st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    assert_int_equal(sqn, 64);
    OK(x.other, ims_store_auth_get(x.other, S("alice@ims.test"), &ad));
    assert_int_equal(ad.sqn, 64);
    ims_auth_data_clear(&ad);

    OK(x.other, ims_store_unlink(x.other, S("alice@ims.test"), S("sip:alice@ims.test")));
    assert_int_equal(assoc(&x), IMS_ASSOC_MISMATCH);
    OK(x.other, ims_store_link(x.other, S("alice@ims.test"), S("sip:alice@ims.test")));
    assert_int_equal(assoc(&x), IMS_ASSOC_OK);

    /* deleted, then made again under another row id: SQN follows the new row */
    OK(x.other, ims_store_impi_del(x.other, S("alice@ims.test")));
    assert_int_equal(ims_store_auth_get_fields(x.f->st, S("alice@ims.test"),
                                               IMS_AUTH_F_AKA | IMS_AUTH_F_NO_SQN, &ad),
                     IMS_ENOENT);
    assert_int_equal(ims_store_sqn_update(x.f->st, S("alice@ims.test"), next_sqn, NULL, &sqn),
                     IMS_ENOENT);
    OK(x.other, ims_store_impi_add(x.other, S("alice"), S("alice@ims.test"), S("ims.test"),
                                   IMS_AUTH_ALL));
    OK(x.f->st, ims_store_sqn_update(x.f->st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    assert_int_equal(sqn, 32);
    cfix_close(&x);
}

static void gen_now(struct tfix *f, char *v, size_t cap)
{
    tfix_sql_value(f, "SELECT gen FROM cache_generation", v, cap);
}

/* A change read inside a transaction that rolls back is never used, even
 * once another change brings the counter to the value it had. */
static void test_rollback(void **state)
{
    struct cfix x;
    char got[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    char g_in[32], g_after[32];
    uint64_t gen, epoch;
    cfix_open(&x, state);
    ha1_of("pw-one", want);
    cx_ha1(&x, got);

    OK(x.f->st, st_begin(x.f->st));
    OK(x.f->st, ims_store_impi_set_password(x.f->st, S("alice@ims.test"), S("pw-undone"), false));
    cx_ha1(&x, got); /* read (and put) under the transaction's counter */
    assert_true(st_cache_tag(x.f->st, &gen, &epoch));
    snprintf(g_in, sizeof(g_in), "%llu", (unsigned long long)gen);
    st_rollback(x.f->st);

    /* one change elsewhere: the counter is where the undone one had it */
    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    strcpy(s.name, "zed");
    OK(x.other, ims_store_sub_add(x.other, &s));
    gen_now(x.f, g_after, sizeof(g_after));
    assert_string_equal(g_after, g_in);

    cx_ha1(&x, got);
    assert_string_equal(got, want);
    cfix_close(&x);
}

/* Inside one request (one transaction, as store/exec.c runs them): the
 * request's own change to a cached row is read back at once, while its SQN
 * writes keep the cache in use. */
static void test_request_own_write(void **state)
{
    struct cfix x;
    struct ims_store_cache_stats before, after;
    char got[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    uint64_t sqn;
    cfix_open(&x, state);
    cx_ha1(&x, got); /* cached */

    st_req_begin(x.f->st);
    cx_ha1(&x, got);
    OK(x.f->st, ims_store_sqn_update(x.f->st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    stats(x.c, &before);
    cx_ha1(&x, got);
    stats(x.c, &after);
    assert_int_equal(after.hits, before.hits + 1); /* the SQN write moved nothing */
    OK(x.f->st, ims_store_impi_set_password(x.f->st, S("alice@ims.test"), S("pw-mine"), false));
    cx_ha1(&x, got);
    ha1_of("pw-mine", want);
    assert_string_equal(got, want);
    OK(x.f->st, st_req_end(x.f->st));

    cx_ha1(&x, got);
    assert_string_equal(got, want);
    cfix_close(&x);
}

static int refuse_sqn(uint64_t cur, uint64_t *next, void *ctx)
{
    (void)cur;
    (void)next;
    (void)ctx;
    return IMS_EPROTO;
}

/* A rollback that undid nothing the cache holds keeps it: a refused SQN
 * update (a bad resync) must not empty the cache for everyone. */
static void test_rollback_without_write(void **state)
{
    struct cfix x;
    struct ims_store_cache_stats before, after;
    char got[IMS_DIGEST_HEX_MAX + 1];
    uint64_t sqn;
    cfix_open(&x, state);
    cx_ha1(&x, got);
    assert_int_equal(ims_store_sqn_update(x.f->st, S("alice@ims.test"), refuse_sqn, NULL, &sqn),
                     IMS_EPROTO);
    OK(x.f->st, st_begin(x.f->st));
    OK(x.f->st, ims_store_sqn_update(x.f->st, S("alice@ims.test"), next_sqn, NULL, &sqn));
    st_rollback(x.f->st);
    stats(x.c, &before);
    cx_ha1(&x, got);
    stats(x.c, &after);
    assert_int_equal(after.hits, before.hits + 1);
    cfix_close(&x);
}

/* alice's IMPU as the Cx path reads it, and whether the cache held it */
static bool impu_row(struct cfix *x, struct ims_impu_rec *rec)
{
    struct ims_store_cache_stats before, after;
    stats(x->c, &before);
    OK(x->f->st, ims_store_impu_get(x->f->st, S("sip:alice@ims.test"), rec));
    stats(x->c, &after);
    return after.hits == before.hits + 1;
}

/* An IMPU row comes from the cache, but its registration state and
 * S-CSCF name are read each time, whoever wrote them; a provisioning
 * change by another connection is seen at once. */
static void test_impu_row(void **state)
{
    struct cfix x;
    struct ims_impu_rec rec;
    cfix_open(&x, state);
    assert_false(impu_row(&x, &rec));
    assert_true(impu_row(&x, &rec));
    assert_string_equal(rec.identity, "sip:alice@ims.test");
    assert_string_equal(rec.subscription, "alice");
    assert_int_equal(rec.reg_state, IMS_REG_NOT_REGISTERED);
    assert_string_equal(rec.scscf_name, "");

    /* the Cx path's own writes, and another connection's */
    OK(x.f->st, ims_store_scscf_name_set_lazy(x.f->st, S("sip:alice@ims.test"), S("sip:s1")));
    assert_true(impu_row(&x, &rec));
    assert_string_equal(rec.scscf_name, "sip:s1");
    OK(x.other, ims_store_reg_set(x.other, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                  IMS_SCSCF_SET, S("sip:s2"), NULL));
    assert_true(impu_row(&x, &rec));
    assert_int_equal(rec.reg_state, IMS_REG_REGISTERED);
    assert_string_equal(rec.scscf_name, "sip:s2");
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_NOT_REGISTERED,
                                  IMS_SCSCF_CLEAR, IMS_STR_NULL, NULL));
    assert_true(impu_row(&x, &rec));
    assert_int_equal(rec.reg_state, IMS_REG_NOT_REGISTERED);
    assert_string_equal(rec.scscf_name, "");

    /* the subscription, the set and "in use" by the cached row's ids */
    bool any = true;
    OK(x.f->st, ims_store_sub_in_use(x.f->st, S("sip:alice@ims.test"), &any));
    assert_false(any);
    OK(x.other, ims_store_reg_set(x.other, S("sip:alice@ims.test"), IMS_REG_UNREGISTERED,
                                  IMS_SCSCF_KEEP, IMS_STR_NULL, NULL));
    OK(x.f->st, ims_store_sub_in_use(x.f->st, S("sip:alice@ims.test"), &any));
    assert_true(any);
    struct ims_impu_rec add2 = { .identity = "sip:alice2@ims.test", .subscription = "alice",
                                 .irs = 1 };
    OK(x.other, ims_store_impu_add(x.other, &add2));
    assert_false(impu_row(&x, &rec)); /* the change moved the generation */
    struct ims_impu_rec set[4];
    size_t n = 0;
    struct ims_store_cache_stats before, after;
    stats(x.c, &before);
    OK(x.f->st, ims_store_impus_of_irs(x.f->st, S("sip:alice@ims.test"), set, 4, &n));
    struct ims_sub_rec sub;
    OK(x.f->st, ims_store_sub_of_impu_nocaps(x.f->st, S("sip:alice@ims.test"), &sub));
    stats(x.c, &after);
    assert_int_equal(after.hits, before.hits + 2);
    assert_int_equal(n, 2);
    assert_string_equal(set[0].identity, "sip:alice2@ims.test");
    assert_string_equal(set[1].identity, "sip:alice@ims.test");
    assert_int_equal(set[1].reg_state, IMS_REG_UNREGISTERED);
    assert_string_equal(sub.name, "alice");

    /* provisioned columns changed by another connection (imscloudctl) */
    OK(x.other, ims_store_impu_bar(x.other, S("sip:alice@ims.test"), true));
    assert_false(impu_row(&x, &rec));
    assert_true(rec.barred);
    OK(x.other, ims_store_profile_put(x.other, S("p9"), S("")));
    OK(x.other, ims_store_impu_set_profile(x.other, S("sip:alice@ims.test"), S("p9")));
    assert_false(impu_row(&x, &rec));
    assert_string_equal(rec.profile, "p9");
    assert_true(impu_row(&x, &rec));
    assert_string_equal(rec.profile, "p9");

    /* deleted, then made again under another row id and set */
    OK(x.other, ims_store_impu_del(x.other, S("sip:alice@ims.test")));
    assert_int_equal(ims_store_impu_get(x.f->st, S("sip:alice@ims.test"), &rec), IMS_ENOENT);
    struct ims_impu_rec add = { .identity = "sip:alice@ims.test", .subscription = "alice",
                                .irs = 2 };
    OK(x.other, ims_store_impu_add(x.other, &add));
    assert_false(impu_row(&x, &rec));
    assert_int_equal(rec.irs, 2);
    assert_false(rec.barred);
    assert_string_equal(rec.profile, "");
    cfix_close(&x);
}

/* alice's IMPU (another connection's view): state and S-CSCF name */
static void other_state(struct cfix *x, const char *impu, enum ims_reg_state want,
                        const char *scscf)
{
    struct ims_impu_rec rec;
    OK(x->other, ims_store_impu_get(x->other, ims_str_cstr(impu), &rec));
    assert_int_equal(rec.reg_state, want);
    assert_string_equal(rec.scscf_name, scscf);
}

/* Another connection (imscloudctl) moves alice to implicit set irs. */
static void move_alice(struct cfix *x, unsigned irs)
{
    struct ims_impu_rec rec;
    OK(x->other, ims_store_impu_get(x->other, S("sip:alice@ims.test"), &rec));
    rec.irs = irs;
    OK(x->other, ims_store_impu_update(x->other, &rec));
}

/* The Cx path's writes (registration state of the implicit set, the
 * S-CSCF name) key their UPDATEs by the cached row's subscription id and
 * set when writers are serialised (SQLite: the row was read under the
 * generation read inside the write transaction), by the identity
 * otherwise (PostgreSQL).  Either way they reach exactly the IMPU's set
 * as it is now, also after another connection moved it to another set. */
static void test_impu_row_writes(void **state)
{
    struct cfix x;
    struct ims_impu_rec rec;
    struct ims_store_cache_stats before, after;
    size_t changed = 99;
    cfix_open(&x, state);
    bool by_id = x.f->st->drv->serial_writes;
    struct ims_impu_rec a2 = { .identity = "sip:alice2@ims.test", .subscription = "alice",
                               .irs = 1 };
    struct ims_impu_rec a3 = { .identity = "sip:alice3@ims.test", .subscription = "alice",
                               .irs = 2 };
    OK(x.other, ims_store_impu_add(x.other, &a2));
    OK(x.other, ims_store_impu_add(x.other, &a3));
    assert_false(impu_row(&x, &rec)); /* now cached */

    stats(x.c, &before);
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                  IMS_SCSCF_SET, S("sip:s1"), &changed));
    stats(x.c, &after);
    assert_int_equal(after.hits, before.hits + (by_id ? 1 : 0));
    assert_int_equal(changed, 2); /* alice and alice2: the set */
    other_state(&x, "sip:alice@ims.test", IMS_REG_REGISTERED, "sip:s1");
    other_state(&x, "sip:alice2@ims.test", IMS_REG_REGISTERED, "sip:s1");
    other_state(&x, "sip:alice3@ims.test", IMS_REG_NOT_REGISTERED, "sip:s1");
    /* already in that state: nothing changed, and no "no IMPU" */
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                  IMS_SCSCF_KEEP, IMS_STR_NULL, &changed));
    assert_int_equal(changed, 0);

    stats(x.c, &before);
    OK(x.f->st, ims_store_scscf_name_set_lazy(x.f->st, S("sip:alice@ims.test"), S("sip:s2")));
    stats(x.c, &after);
    assert_int_equal(after.hits, before.hits + (by_id ? 1 : 0));
    other_state(&x, "sip:alice3@ims.test", IMS_REG_NOT_REGISTERED, "sip:s2");

    /* another connection moves alice to set 2: the cached row (set 1) is
     * stale, and the next write reaches set 2, never alice2 */
    move_alice(&x, 2);
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_UNREGISTERED,
                                  IMS_SCSCF_CLEAR, IMS_STR_NULL, &changed));
    assert_int_equal(changed, 2); /* alice and alice3 */
    other_state(&x, "sip:alice@ims.test", IMS_REG_UNREGISTERED, "");
    other_state(&x, "sip:alice3@ims.test", IMS_REG_UNREGISTERED, "");
    other_state(&x, "sip:alice2@ims.test", IMS_REG_REGISTERED, "");

    /* the same inside one request (st_req_begin: a read transaction, then
     * the write's): the row read and cached under the generation of the
     * read, another connection moving alice back to set 1 before the
     * write; the write must see the move, never key set 2 */
    st_req_begin(x.f->st);
    OK(x.f->st, ims_store_impu_get(x.f->st, S("sip:alice@ims.test"), &rec));
    assert_int_equal(rec.irs, 2);
    move_alice(&x, 1);
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_NOT_REGISTERED,
                                  IMS_SCSCF_KEEP, IMS_STR_NULL, &changed));
    OK(x.f->st, st_req_end(x.f->st));
    assert_int_equal(changed, 2); /* alice and alice2 */
    other_state(&x, "sip:alice@ims.test", IMS_REG_NOT_REGISTERED, "");
    other_state(&x, "sip:alice2@ims.test", IMS_REG_NOT_REGISTERED, "");
    other_state(&x, "sip:alice3@ims.test", IMS_REG_UNREGISTERED, "");
    /* and without a change in between, the write inside a request keys
     * by the row the request read: no second look-up of the identity */
    st_req_begin(x.f->st);
    OK(x.f->st, ims_store_impu_get(x.f->st, S("sip:alice@ims.test"), &rec));
    stats(x.c, &before);
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_UNREGISTERED,
                                  IMS_SCSCF_KEEP, IMS_STR_NULL, &changed));
    stats(x.c, &after);
    OK(x.f->st, st_req_end(x.f->st));
    assert_int_equal(after.hits, before.hits + (by_id ? 1 : 0));
    assert_int_equal(changed, 2);
    other_state(&x, "sip:alice2@ims.test", IMS_REG_UNREGISTERED, "");

    /* an IMPU that is gone is refused, cached or not: its row is cached
     * first (the first read may miss after the writes above; the second
     * then hits) */
    assert_true(impu_row(&x, &rec) || impu_row(&x, &rec));
    OK(x.other, ims_store_impu_del(x.other, S("sip:alice@ims.test")));
    assert_int_equal(ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                       IMS_SCSCF_KEEP, IMS_STR_NULL, NULL),
                     IMS_ENOENT);
    assert_int_equal(
        ims_store_scscf_name_set_lazy(x.f->st, S("sip:alice@ims.test"), S("sip:s3")),
        IMS_ENOENT);
    cfix_close(&x);
}

/* The preload puts what the Cx path would: each IMPI's row and its OK
 * links, nothing else, at most max, under the tag rule 1 asks for. */
static void test_preload(void **state)
{
    struct cfix x;
    struct ims_store_cache_stats s;
    char got[IMS_DIGEST_HEX_MAX + 1], want[IMS_DIGEST_HEX_MAX + 1];
    size_t n = 0;
    cfix_open(&x, state);
    const char *bi[] = { "sip:bob@ims.test", "tel:+15550100", NULL };
    provision(x.f->st, "bob", "bob@ims.test", K1, OPC1, "pw-bob", bi);
    OK(x.f->st, st_cache_preload(x.f->st, 64, &n));
    assert_int_equal(n, 2 + 3); /* alice, bob; alice's link and bob's two */
    ha1_of("pw-one", want);
    assert_int_equal(assoc(&x), IMS_ASSOC_OK);
    cx_ha1(&x, got);
    assert_string_equal(got, want);
    enum ims_assoc a;
    OK(x.f->st, ims_store_assoc_check(x.f->st, S("bob@ims.test"), S("tel:+15550100"), &a));
    assert_int_equal(a, IMS_ASSOC_OK);
    stats(x.c, &s);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.hits, 3);
    /* a pair that is not OK was not put: the database answers */
    OK(x.f->st, ims_store_assoc_check(x.f->st, S("bob@ims.test"), S("sip:alice@ims.test"), &a));
    assert_int_equal(a, IMS_ASSOC_MISMATCH);
    stats(x.c, &s);
    assert_int_equal(s.misses, 1);
    /* a change by another writer after the preload: its entries go unused */
    OK(x.other, ims_store_unlink(x.other, S("bob@ims.test"), S("tel:+15550100")));
    OK(x.f->st, ims_store_assoc_check(x.f->st, S("bob@ims.test"), S("tel:+15550100"), &a));
    assert_int_equal(a, IMS_ASSOC_MISMATCH);
    cfix_close(&x);

    /* at most max: half of it for rows, half for links */
    struct store_cache *c = NULL;
    assert_int_equal(store_cache_new(64, &c), 0);
    st_use_cache(x.f->st, c);
    OK(x.f->st, st_cache_preload(x.f->st, 2, &n));
    assert_int_equal(n, 2);
    stats(c, &s);
    assert_int_equal(s.puts, 2);
    st_use_cache(x.f->st, NULL);
    store_cache_free(c);
    /* no cache: nothing to do */
    OK(x.f->st, st_cache_preload(x.f->st, 64, &n));
    assert_int_equal(n, 0);
}

/* The executor makes one cache for its connections, and none with 0. */
static void test_exec_cache(void **state)
{
    struct tfix *f = *state;
    struct ims_store_exec *x;
    struct ims_store_cache_stats s;
    const char *ai[] = { "sip:alice@ims.test", NULL };
    provision(f->st, "alice", "alice@ims.test", K1, OPC1, "pw-one", ai);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 100, &x), 0);
    ims_store_exec_cache_stats(x, &s);
    assert_int_equal(s.capacity, 128);
    /* the preload runs on the inline connection: SQLite files only */
    size_t n = 99;
    assert_int_equal(ims_store_exec_preload(x, 100, &n), 0);
    assert_int_equal(n, test_pg ? 0 : 2);
    ims_store_exec_cache_stats(x, &s);
    assert_int_equal(s.entries, n);
    ims_store_exec_free(x);
    assert_int_equal(ims_store_exec_new(f->url, f->repo, 1, 8, 0, &x), 0);
    ims_store_exec_cache_stats(x, &s);
    assert_int_equal(s.capacity, 0);
    ims_store_exec_free(x);
}

/* ---- memos (ims_store_memo_get/put) ---- */

/* The memo of (alice's IMPI, IMPU) under kind 'U': true and its bytes in
 * got when found; else *m is what a put needs. */
static bool memo(struct cfix *x, struct ims_store_memo *m, char got[64])
{
    struct ims_buf b;
    ims_buf_init(&b, IMS_STORE_MEMO_MAX);
    bool hit = ims_store_memo_get(x->f->st, 'U', S("alice@ims.test"), S("sip:alice@ims.test"), &b,
                                  m);
    snprintf(got, 64, "%s", hit ? b.p : "");
    ims_buf_free(&b);
    return hit;
}

static void memo_put(struct cfix *x, const struct ims_store_memo *m, const char *v)
{
    ims_store_memo_put(x->f->st, m, 'U', S("alice@ims.test"), S("sip:alice@ims.test"), v,
                       strlen(v) + 1);
}

/* A memo is found until any provisioned data it may be built from changes,
 * by another connection as by imscloudctl (migrations 005, 007); what the Cx
 * path writes (registration state, S-CSCF name) leaves it. */
static void test_memo(void **state)
{
    struct cfix x;
    struct ims_store_memo m;
    char got[64];
    cfix_open(&x, state);
    OK(x.other, ims_store_profile_put(x.other, S("p1"), S("<InitialFilterCriteria/>")));

    assert_false(memo(&x, &m, got));
    assert_true(m.usable);
    memo_put(&x, &m, "v1");
    assert_true(memo(&x, &m, got));
    assert_string_equal(got, "v1");
    /* another key, another kind: not found */
    struct ims_buf b;
    ims_buf_init(&b, 64);
    assert_false(ims_store_memo_get(x.f->st, 'V', S("alice@ims.test"), S("sip:alice@ims.test"),
                                    &b, &m));
    assert_false(ims_store_memo_get(x.f->st, 'U', IMS_STR_NULL, S("sip:alice@ims.test"), &b, &m));
    /* the store's own kinds and bad identities are refused */
    assert_false(ims_store_memo_get(x.f->st, 'A', S("alice@ims.test"), S("sip:alice@ims.test"),
                                    &b, &m));
    assert_false(m.usable);
    assert_false(ims_store_memo_get(x.f->st, 'U', S("bad id"), S("sip:alice@ims.test"), &b, &m));
    assert_false(m.usable);
    ims_buf_free(&b);

    /* the Cx path's own writes keep it */
    OK(x.f->st, ims_store_reg_set(x.f->st, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                  IMS_SCSCF_SET, S("sip:scscf1.ims.test"), NULL));
    OK(x.f->st, ims_store_scscf_name_set_lazy(x.f->st, S("sip:alice@ims.test"),
                                              S("sip:scscf2.ims.test")));
    assert_true(memo(&x, &m, got));

    /* each provisioning change hides it; a new put under the new generation
     * is found again */
    struct ims_sub_rec sub;
    OK(x.other, ims_store_sub_get(x.other, S("alice"), &sub));
    snprintf(sub.roles, sizeof(sub.roles), "member");
    OK(x.other, ims_store_sub_update(x.other, &sub));
    assert_false(memo(&x, &m, got)); /* roles */
    memo_put(&x, &m, "v2");
    assert_true(memo(&x, &m, got));
    assert_string_equal(got, "v2");
    OK(x.other, ims_store_impu_set_profile(x.other, S("sip:alice@ims.test"), S("p1")));
    assert_false(memo(&x, &m, got)); /* the IMPU's profile */
    memo_put(&x, &m, "v3");
    OK(x.other, ims_store_profile_put(x.other, S("p1"), S("<InitialFilterCriteria></>")));
    assert_false(memo(&x, &m, got)); /* the profile's XML */
    memo_put(&x, &m, "v4");
    OK(x.other, ims_store_impu_bar(x.other, S("sip:alice@ims.test"), true));
    assert_false(memo(&x, &m, got)); /* barring */
    memo_put(&x, &m, "v5");
    assert_true(memo(&x, &m, got));
    assert_string_equal(got, "v5");

    /* longer than IMS_STORE_MEMO_MAX: not kept */
    OK(x.other, ims_store_impu_bar(x.other, S("sip:alice@ims.test"), false));
    assert_false(memo(&x, &m, got));
    char *big = malloc(IMS_STORE_MEMO_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', IMS_STORE_MEMO_MAX + 1);
    big[IMS_STORE_MEMO_MAX + 1] = '\0';
    memo_put(&x, &m, big);
    free(big);
    assert_false(memo(&x, &m, got));
    cfix_close(&x);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tfix_setup, tfix_teardown)
const struct CMUnitTest cache_tests[] = {
    cmocka_unit_test(test_table),
    T(test_hits),
    T(test_other_writer),
    T(test_rollback),
    T(test_request_own_write),
    T(test_rollback_without_write),
    T(test_impu_row),
    T(test_impu_row_writes),
    T(test_preload),
    T(test_exec_cache),
    T(test_memo),
};
const size_t cache_ntests = sizeof(cache_tests) / sizeof(cache_tests[0]);
