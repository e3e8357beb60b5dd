/* kam_seed - provisions the stores of the Kamailio IMS interop test
 * (tests/e2e/kamailio-ims, docs/interop-kamailio.md).
 *
 *   kam_seed hss STORE_URL KEYS_DIR
 *       Creates the key repository if missing, then the subscribers of realm
 *       ims.bench through the store API (src/store/store.h):
 *         alice@ims.bench  Digest only (password KAM_ALICE_PW), sip:alice@ims.bench
 *         bob@ims.bench    AKAv1-MD5 only: K and OPc = OPc(K, OP) of TS 35.208
 *                          test set 1, AMF 8000, sip:bob@ims.bench
 *         carol@ims.bench  Digest only (password KAM_CAROL_PW), sip:carol@ims.bench:
 *                          the callee of the INVITE test
 *       sipp computes AKA responses from OP (its aka_OP), so the OPc stored here
 *       is derived from the same OP with ims_milenage_opc().
 *   kam_seed sql DB_FILE SQL_FILE...
 *       Runs the SQL files, in order, on the SQLite database DB_FILE (created if
 *       missing): the I-CSCF's tables for Kamailio's db_sqlite, without needing
 *       the sqlite3 shell.
 *
 * Exit 0, or 1 with a message on stderr. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/str.h"
#include "crypto/keyrepo.h"
#include "crypto/milenage.h"
#include "store/store.h"

#define REALM "ims.bench"
#define KAM_ALICE_PW "alice-secret"
#define KAM_CAROL_PW "carol-secret"

/* TS 35.208 test set 1 K and OP (test data only); the harness passes the same
 * values to sipp as aka_K / aka_OP. */
static const uint8_t kam_k[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                   0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t kam_op[16] = { 0xcd, 0xc2, 0x02, 0xd5, 0x12, 0x3e, 0x20, 0xf6,
                                    0x2b, 0x6d, 0x67, 0x6a, 0xc7, 0x2c, 0xb3, 0x18 };
static const uint8_t kam_amf[2] = { 0x80, 0x00 };

static struct ims_store *st;

static void must(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "kam_seed: %s: %s (%s)\n", what, ims_strerror(rc),
                st ? ims_store_errmsg(st) : "");
        exit(1);
    }
}

/* One subscription with one IMPI and one IMPU, linked.  password NULL: AKA. */
static void subscriber(const char *user, unsigned schemes, const char *password)
{
    char impi[IMS_STORE_ID_MAX], impu[IMS_STORE_ID_MAX];
    snprintf(impi, sizeof(impi), "%s@" REALM, user);
    snprintf(impu, sizeof(impu), "sip:%s@" REALM, user);

    struct ims_sub_rec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", user);
    must(ims_store_sub_add(st, &s), "sub add");
    must(ims_store_impi_add(st, ims_str_cstr(user), ims_str_cstr(impi), IMS_S(REALM), schemes),
         impi);
    if (password) {
        must(ims_store_impi_set_password(st, ims_str_cstr(impi), ims_str_cstr(password), false),
             "password");
    } else {
        uint8_t opc[16];
        must(ims_milenage_opc(kam_k, kam_op, opc), "opc");
        must(ims_store_impi_set_aka(st, ims_str_cstr(impi), kam_k, opc, kam_amf), "aka");
    }

    struct ims_impu_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.identity, sizeof(r.identity), "%s", impu);
    snprintf(r.subscription, sizeof(r.subscription), "%s", user);
    must(ims_store_impu_add(st, &r), impu);
    must(ims_store_link(st, ims_str_cstr(impi), ims_str_cstr(impu)), "link");
}

static int cmd_hss(const char *url, const char *keys)
{
    char err[IMS_KEYREPO_ERRLEN];
    struct ims_keyrepo *repo = NULL;
    int rc = ims_keyrepo_open(keys, &repo, err, sizeof(err));
    if (rc == IMS_ENOENT) {
        rc = ims_keyrepo_create(keys, err, sizeof(err));
        if (rc == 0)
            rc = ims_keyrepo_open(keys, &repo, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "kam_seed: keys %s: %s\n", keys, err);
        return 1;
    }
    must(ims_store_open(url, repo, &st), "open");
    subscriber("alice", IMS_AUTH_DIGEST_MD5, KAM_ALICE_PW);
    subscriber("bob", IMS_AUTH_AKAV1_MD5, NULL);
    subscriber("carol", IMS_AUTH_DIGEST_MD5, KAM_CAROL_PW);
    ims_store_close(st);
    ims_keyrepo_free(repo);
    printf("kam_seed: 3 subscriptions in realm " REALM "\n");
    return 0;
}

static int cmd_sql(const char *db_path, char **files, int n)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(db_path, &db) != SQLITE_OK) {
        fprintf(stderr, "kam_seed: %s: %s\n", db_path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) {
            perror(files[i]);
            sqlite3_close(db);
            return 1;
        }
        static char sql[1 << 20];
        size_t len = fread(sql, 1, sizeof(sql) - 1, f);
        int big = !feof(f);
        fclose(f);
        if (big) {
            fprintf(stderr, "kam_seed: %s: larger than %zu bytes\n", files[i], sizeof(sql) - 1);
            sqlite3_close(db);
            return 1;
        }
        sql[len] = '\0';
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            fprintf(stderr, "kam_seed: %s: %s\n", files[i], msg ? msg : "error");
            sqlite3_free(msg);
            sqlite3_close(db);
            return 1;
        }
    }
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "hss") == 0)
        return cmd_hss(argv[2], argv[3]);
    if (argc >= 4 && strcmp(argv[1], "sql") == 0)
        return cmd_sql(argv[2], argv + 3, argc - 3);
    fprintf(stderr, "usage: kam_seed hss STORE_URL KEYS_DIR\n"
                    "       kam_seed sql DB_FILE SQL_FILE...\n");
    return 2;
}
