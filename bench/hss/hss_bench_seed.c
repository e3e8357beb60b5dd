/* hss_bench_seed - provisions (and checks) the synthetic subscribers of the
 * HSS benchmark and crash test (hss_bench.h) through the store API.
 *
 *   hss_bench_seed seed  [-b BATCH] [-f FIRST] [-a] [-s SCSCF_URI] [-n] STORE_URL KEYS_DIR N
 *   hss_bench_seed check [-q] STORE_URL KEYS_DIR N
 *
 * seed: creates the key repository if missing, then subscribers FIRST ..
 * FIRST+N-1 (FIRST = 0: also the service profile "bench" with one iFC and
 * the S-CSCF).  The bulk path is ims_store_import(): the records are
 * written as export text, BATCH subscribers (default 20000) per import, so
 * each batch is one transaction (one fsync instead of ~6 per subscriber
 * with the one-call-per-record API).  -a assigns S-CSCF HB_SCSCF to every
 * subscription, as after an earlier registration: a MAR naming that
 * S-CSCF then rewrites the same name, which SQLite does without dirtying
 * a page (no WAL frame, no fsync), so only AKA's SQN is a real write.
 * -s names another S-CSCF than HB_SCSCF (bench/ims: the one imscloud under
 * test listens as); -n gives profile "bench" no iFC (bench/ims: calls go
 * straight to the callee, no AS).  A second thread builds the next
 * batch (HA1s, AES-GCM ciphertexts of K, OPc and the three HA1s under the
 * repository's primary key, with the store's associated data) while the
 * import of the previous one runs, so both cores work.
 *
 * check: counts the subscriptions, IMPIs and IMPUs in the store (listing
 * them all), and for every i < N checks that IMPI and IMPU exist and are
 * associated and that K/OPc decrypt to hb_keys(i).  Prints
 *   subs=S impis=I impus=U checked=N bad=B
 * and, unless -q, one line "sqn <i> <SQN_HE>" per subscriber i < N.
 * Exit 0 when B = 0, 1 otherwise (or on any error), 2 on usage. */
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/digest.h"
#include "crypto/encode.h"
#include "crypto/keyrepo.h"
#include "hss/userdata.h"
#include "store/store.h"

#include "hss_bench.h"

#define S(x) ims_str_cstr(x)
#define BATCH_MAX 200000
/* one subscriber's records as export text: four lines, five ciphertexts */
#define PER_SUB_MAX 2048

static struct ims_keyrepo *repo;
static bool assigned;
static const char *scscf = HB_SCSCF;
static bool no_ifc;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* " key=<ciphertext of pt, bound to impi:<impi>:<field>>" (the AD the store uses) */
static int add_secret(struct ims_buf *b, const char *key, const char *impi, const char *field,
                      const void *pt, size_t n)
{
    char ad[HB_ID_MAX + 32];
    snprintf(ad, sizeof(ad), "impi:%s:%s", impi, field);
    int rc = ims_buf_printf(b, " %s=", key);
    if (rc == 0)
        rc = ims_keyrepo_encrypt(repo, S(ad), pt, n, b);
    return rc;
}

static int add_subscriber(struct ims_buf *b, uint32_t i)
{
    char sub[HB_ID_MAX], impi[HB_ID_MAX], impu[HB_ID_MAX], pw[HB_ID_MAX];
    char ha1[IMS_DIGEST_NALG][IMS_DIGEST_HEX_MAX + 1];
    uint8_t k[16], opc[16];
    static const char *const ha1_key[IMS_DIGEST_NALG] = { "ha1_md5", "ha1_sha256",
                                                          "ha1_sha512_256" };
    static const char *const ha1_field[IMS_DIGEST_NALG] = { "ha1-md5", "ha1-sha256",
                                                            "ha1-sha512-256" };
    hb_sub(i, sub);
    hb_impi(i, impi);
    hb_impu(i, impu);
    hb_password(i, pw);
    hb_keys(i, k, opc);
    int rc = ims_buf_printf(b,
                            "sub %s scscf=%s ccf1=aaa://ccf.ims.bench ccf2= ecf1= ecf2= "
                            "keystone_user= keystone_project= caps_mandatory=1 caps_optional=\n"
                            "impi %s sub=%s realm=" HB_REALM " schemes=%u amf=32768 sqn=0",
                            sub, assigned ? scscf : "", impi, sub, IMS_AUTH_ALL);
    if (rc == 0)
        rc = add_secret(b, "k", impi, "k", k, sizeof(k));
    if (rc == 0)
        rc = add_secret(b, "opc", impi, "opc", opc, sizeof(opc));
    for (int a = 0; rc == 0 && a < IMS_DIGEST_NALG; a++) {
        rc = ims_digest_ha1((enum ims_digest_alg)a, S(impi), S(HB_REALM), S(pw), ha1[a]);
        if (rc == 0)
            rc = add_secret(b, ha1_key[a], impi, ha1_field[a], ha1[a], strlen(ha1[a]));
    }
    if (rc == 0)
        rc = ims_buf_printf(b,
                            " password=\n"
                            "impu %s sub=%s irs=1 profile=" HB_PROFILE " barred=0 type=0 state=0\n"
                            "link %s %s\n",
                            impu, sub, impi, impu);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(opc, sizeof(opc));
    OPENSSL_cleanse(ha1, sizeof(ha1));
    return rc;
}

/* The profile (one iFC: INVITE to an AS) and the S-CSCF, once. */
static int add_globals(struct ims_buf *b)
{
    struct ims_buf ifc;
    struct ims_spt spt = { IMS_SPT_METHOD, false, 0, IMS_S("INVITE"), IMS_STR_NULL };
    struct ims_ifc f = { 0, true, &spt, 1, IMS_S("sip:as.ims.bench:5070"), 0, IMS_STR_NULL, -1 };
    ims_buf_init(&ifc, 65536);
    int rc = ims_ud_ifc(&ifc, &f, no_ifc ? 0 : 1);
    char *b64 = rc == 0 ? malloc(IMS_B64_LEN(ifc.len) + 1) : NULL;
    if (rc == 0 && !b64)
        rc = IMS_ENOMEM;
    if (rc == 0) {
        ims_b64_encode(ifc.p, ifc.len, b64);
        rc = ims_buf_printf(b, "profile " HB_PROFILE " xml=%s\nscscf %s caps=1\n", b64, scscf);
    }
    free(b64);
    ims_buf_free(&ifc);
    return rc;
}

/* ------------------------------------------------------------ seed */

/* Two batch buffers: the builder fills one while the importer imports the other. */
struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ims_buf buf[2];
    bool full[2];
    bool done; /* builder finished (or failed: rc) */
    int rc;
    uint32_t first, n, batch;
};

static void *builder(void *arg)
{
    struct pipeline *p = arg;
    int rc = 0;
    unsigned slot = 0;
    for (uint32_t at = 0; rc == 0 && at < p->n; at += p->batch, slot ^= 1) {
        pthread_mutex_lock(&p->mu);
        while (p->full[slot] && p->rc == 0)
            pthread_cond_wait(&p->cv, &p->mu);
        rc = p->rc;
        pthread_mutex_unlock(&p->mu);
        if (rc)
            break;
        struct ims_buf *b = &p->buf[slot];
        ims_buf_reset(b);
        rc = ims_buf_add_cstr(b, "imscloud-hss-export v1\n");
        if (rc == 0 && at == 0 && p->first == 0)
            rc = add_globals(b);
        uint32_t end = at + p->batch < p->n ? at + p->batch : p->n;
        for (uint32_t i = at; rc == 0 && i < end; i++)
            rc = add_subscriber(b, p->first + i);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, "end\n");
        pthread_mutex_lock(&p->mu);
        if (rc)
            p->rc = rc;
        else
            p->full[slot] = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int seed(struct ims_store *st, uint32_t first, uint32_t n, uint32_t batch)
{
    struct pipeline p = { .first = first, .n = n, .batch = batch };
    pthread_t th;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    for (int i = 0; i < 2; i++)
        ims_buf_init(&p.buf[i], (size_t)batch * PER_SUB_MAX + 65536);
    if (pthread_create(&th, NULL, builder, &p) != 0) {
        fprintf(stderr, "hss_bench_seed: cannot start a thread\n");
        return IMS_EIO;
    }
    double t0 = now_s();
    uint32_t imported = 0;
    unsigned slot = 0;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&p.mu);
        while (!p.full[slot] && !p.done && p.rc == 0)
            pthread_cond_wait(&p.cv, &p.mu);
        bool have = p.full[slot];
        rc = p.rc;
        pthread_mutex_unlock(&p.mu);
        if (!have || rc)
            break;
        size_t count = 0;
        rc = ims_store_import(st, ims_buf_str(&p.buf[slot]), &count);
        if (rc)
            fprintf(stderr, "hss_bench_seed: import: %s (%s)\n", ims_strerror(rc),
                    ims_store_errmsg(st));
        pthread_mutex_lock(&p.mu);
        p.full[slot] = false;
        if (rc)
            p.rc = rc;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        if (rc)
            break;
        uint32_t left = n - imported;
        imported += left < batch ? left : batch;
        slot ^= 1;
        double dt = now_s() - t0;
        fprintf(stderr, "hss_bench_seed: %u/%u subscribers (%.0f/s)\n", imported, n,
                dt > 0 ? imported / dt : 0.0);
    }
    pthread_join(th, NULL);
    if (rc == 0)
        rc = p.rc;
    for (int i = 0; i < 2; i++) {
        /* the text holds only ciphertexts, but wipe it anyway */
        if (p.buf[i].p)
            OPENSSL_cleanse(p.buf[i].p, p.buf[i].len);
        ims_buf_free(&p.buf[i]);
    }
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    if (rc == 0 && imported != n)
        rc = IMS_EINVAL;
    if (rc == 0)
        printf("hss_bench_seed: %u subscribers (u%07u..u%07u) in %.1f s\n", n, first,
               first + n - 1, now_s() - t0);
    return rc;
}

/* ------------------------------------------------------------ check */

static int count_sub(void *ctx, const struct ims_sub_rec *r)
{
    (*(uint64_t *)ctx)++;
    return 0;
}
static int count_impi(void *ctx, const struct ims_impi_rec *r)
{
    (*(uint64_t *)ctx)++;
    return 0;
}
static int count_impu(void *ctx, const struct ims_impu_rec *r)
{
    (*(uint64_t *)ctx)++;
    return 0;
}

static int check(struct ims_store *st, uint32_t n, bool quiet)
{
    uint64_t subs = 0, impis = 0, impus = 0, bad = 0;
    int rc = ims_store_sub_list(st, count_sub, &subs);
    if (rc == 0)
        rc = ims_store_impi_list(st, IMS_STR_NULL, count_impi, &impis);
    if (rc == 0)
        rc = ims_store_impu_list(st, IMS_STR_NULL, count_impu, &impus);
    if (rc) {
        fprintf(stderr, "hss_bench_seed: list: %s (%s)\n", ims_strerror(rc), ims_store_errmsg(st));
        return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        char impi[HB_ID_MAX], impu[HB_ID_MAX];
        uint8_t k[16], opc[16];
        enum ims_assoc as = IMS_ASSOC_NO_IMPI;
        struct ims_auth_data ad;
        hb_impi(i, impi);
        hb_impu(i, impu);
        hb_keys(i, k, opc);
        rc = ims_store_assoc_check(st, S(impi), S(impu), &as);
        if (rc == 0 && as == IMS_ASSOC_OK)
            rc = ims_store_auth_get(st, S(impi), &ad);
        if (rc || as != IMS_ASSOC_OK) {
            fprintf(stderr, "hss_bench_seed: subscriber %u: %s assoc=%d\n", i, ims_strerror(rc),
                    (int)as);
            bad++;
            continue;
        }
        if (!ad.has_aka || memcmp(ad.k, k, 16) != 0 || memcmp(ad.opc, opc, 16) != 0) {
            fprintf(stderr, "hss_bench_seed: subscriber %u: K/OPc differ\n", i);
            bad++;
        } else if (!quiet) {
            printf("sqn %u %llu\n", i, (unsigned long long)ad.sqn);
        }
        ims_auth_data_clear(&ad);
        OPENSSL_cleanse(k, sizeof(k));
        OPENSSL_cleanse(opc, sizeof(opc));
    }
    printf("subs=%llu impis=%llu impus=%llu checked=%u bad=%llu\n", (unsigned long long)subs,
           (unsigned long long)impis, (unsigned long long)impus, n, (unsigned long long)bad);
    return bad ? IMS_EINVAL : 0;
}

/* ------------------------------------------------------------ main */

static int usage(void)
{
    fprintf(stderr, "usage: hss_bench_seed seed [-b BATCH] [-f FIRST] [-a] [-s SCSCF_URI] [-n] "
                    "STORE_URL KEYS_DIR N\n"
                    "       hss_bench_seed check [-q] STORE_URL KEYS_DIR N\n");
    return 2;
}

int main(int argc, char **argv)
{
    char err[IMS_KEYREPO_ERRLEN];
    uint32_t batch = 20000, first = 0;
    bool quiet = false;
    int o;
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    bool is_seed = strcmp(cmd, "seed") == 0;
    if (!is_seed && strcmp(cmd, "check") != 0)
        return usage();
    optind = 2;
    while ((o = getopt(argc, argv, "ab:f:nqs:")) != -1) {
        switch (o) {
        case 'a': assigned = true; break;
        case 'b': batch = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'f': first = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': no_ifc = true; break;
        case 's': scscf = optarg; break;
        case 'q': quiet = true; break;
        default: return usage();
        }
    }
    if (optind + 3 != argc || batch == 0 || batch > BATCH_MAX)
        return usage();
    const char *url = argv[optind], *keys = argv[optind + 1];
    char *end = NULL;
    unsigned long n = strtoul(argv[optind + 2], &end, 10);
    if (!end || *end || n == 0 || n > 10000000 || first > 10000000 - n)
        return usage();

    int rc = ims_keyrepo_open(keys, &repo, err, sizeof(err));
    if (rc == IMS_ENOENT && is_seed) {
        rc = ims_keyrepo_create(keys, err, sizeof(err));
        if (rc == 0)
            rc = ims_keyrepo_open(keys, &repo, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "hss_bench_seed: keys %s: %s\n", keys, err);
        return 1;
    }
    struct ims_store *st = NULL;
    rc = ims_store_open(url, repo, &st);
    if (rc) {
        fprintf(stderr, "hss_bench_seed: cannot open the store: %s\n", ims_strerror(rc));
        ims_keyrepo_free(repo);
        return 1;
    }
    if (is_seed)
        rc = seed(st, first, (uint32_t)n, batch);
    else
        rc = check(st, (uint32_t)n, quiet);
    ims_store_close(st);
    ims_keyrepo_free(repo);
    return rc ? 1 : 0;
}
