/* test_keyrepo.c - key repository and AES-256-GCM secrets at rest. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/encode.h"
#include "crypto/keyrepo.h"
#include "tests.h"

#define S(x) ims_str_cstr(x)

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

struct fix {
    char root[256]; /* mkdtemp */
    char dir[300];  /* root/keys */
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/ims-keyrepo-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/keys", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    rmtree(f->dir);
    rmtree(f->root);
    free(f);
    return 0;
}

static struct ims_keyrepo *open_ok(const char *dir)
{
    struct ims_keyrepo *r = NULL;
    char err[IMS_KEYREPO_ERRLEN] = "";
    int rc = ims_keyrepo_open(dir, &r, err, sizeof(err));
    if (rc)
        fail_msg("open %s: %s %s", dir, ims_strerror(rc), err);
    return r;
}

static void enc(struct ims_keyrepo *r, const char *ad, const char *pt, struct ims_buf *out)
{
    ims_buf_init(out, 4096);
    assert_int_equal(ims_keyrepo_encrypt(r, S(ad), pt, strlen(pt), out), 0);
}

static int dec(struct ims_keyrepo *r, const char *ad, ims_str ct, char *pt, size_t cap)
{
    size_t n = 0;
    int rc = ims_keyrepo_decrypt(r, S(ad), ct, pt, cap - 1, &n);
    pt[rc ? 0 : n] = '\0';
    return rc;
}

static void test_create_and_round_trip(void **state)
{
    struct fix *f = *state;
    char err[IMS_KEYREPO_ERRLEN], path[400], pt[128];
    struct stat st;
    assert_int_equal(ims_keyrepo_create(f->dir, err, sizeof(err)), 0);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/0", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 45); /* 44 base64 characters and a newline */
    /* a second create refuses to touch existing keys */
    assert_int_equal(ims_keyrepo_create(f->dir, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "already holds keys"));

    struct ims_keyrepo *r = open_ok(f->dir);
    unsigned ids[4];
    assert_int_equal(ims_keyrepo_ids(r, ids, 4), 1);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ims_keyrepo_primary(r), 0);

    struct ims_buf ct;
    enc(r, "impi:alice@ims.test:k", "secret-k-value", &ct);
    assert_true(ct.len > 5 && memcmp(ct.p, "v1:0:", 5) == 0);
    assert_null(strstr(ct.p, "secret"));
    assert_int_equal(dec(r, "impi:alice@ims.test:k", ims_buf_str(&ct), pt, sizeof(pt)), 0);
    assert_string_equal(pt, "secret-k-value");
    unsigned id;
    assert_int_equal(ims_keyrepo_ct_keyid(ims_buf_str(&ct), &id), 0);
    assert_int_equal(id, 0);

    /* the same plaintext twice gives different ciphertexts (random nonce) */
    struct ims_buf ct2;
    enc(r, "impi:alice@ims.test:k", "secret-k-value", &ct2);
    assert_false(ims_str_eq(ims_buf_str(&ct), ims_buf_str(&ct2)));

    /* binary and empty plaintexts */
    uint8_t bin[16] = { 0, 1, 2, 0, 255 }, back[16];
    size_t n;
    ims_buf_reset(&ct2);
    assert_int_equal(ims_keyrepo_encrypt(r, S("x"), bin, 16, &ct2), 0);
    assert_int_equal(ims_keyrepo_decrypt(r, S("x"), ims_buf_str(&ct2), back, 16, &n), 0);
    assert_int_equal(n, 16);
    assert_memory_equal(bin, back, 16);
    ims_buf_reset(&ct2);
    assert_int_equal(ims_keyrepo_encrypt(r, S("x"), "", 0, &ct2), 0);
    assert_int_equal(ims_keyrepo_decrypt(r, S("x"), ims_buf_str(&ct2), back, 16, &n), 0);
    assert_int_equal(n, 0);

    /* too small an output buffer: ELIMIT and the buffer is wiped */
    memset(back, 0x77, sizeof(back));
    assert_int_equal(ims_keyrepo_decrypt(r, S("impi:alice@ims.test:k"), ims_buf_str(&ct), back,
                                         8, &n),
                     IMS_ELIMIT);
    for (int i = 0; i < 8; i++)
        assert_int_equal(back[i], 0);

    ims_buf_free(&ct);
    ims_buf_free(&ct2);
    ims_keyrepo_free(r);
}

static void test_tamper_detection(void **state)
{
    struct fix *f = *state;
    char err[IMS_KEYREPO_ERRLEN], pt[128];
    assert_int_equal(ims_keyrepo_create(f->dir, err, sizeof(err)), 0);
    struct ims_keyrepo *r = open_ok(f->dir);
    struct ims_buf ct;
    enc(r, "impi:alice@ims.test:opc", "0123456789abcdef", &ct);
    char *c = ct.p;

    /* any changed character of the body */
    for (size_t i = 5; i < ct.len; i++) {
        char save = c[i];
        c[i] = (char)(save == 'A' ? 'B' : 'A');
        int rc = dec(r, "impi:alice@ims.test:opc", ims_buf_str(&ct), pt, sizeof(pt));
        assert_true(rc == IMS_EPROTO);
        assert_string_equal(pt, "");
        c[i] = save;
    }
    /* the associated data: another row or another field */
    assert_int_equal(dec(r, "impi:bob@ims.test:opc", ims_buf_str(&ct), pt, sizeof(pt)),
                     IMS_EPROTO);
    assert_int_equal(dec(r, "impi:alice@ims.test:k", ims_buf_str(&ct), pt, sizeof(pt)),
                     IMS_EPROTO);
    assert_int_equal(dec(r, "", ims_buf_str(&ct), pt, sizeof(pt)), IMS_EPROTO);
    /* truncated or extended */
    assert_int_equal(dec(r, "impi:alice@ims.test:opc", ims_str_make(ct.p, ct.len - 4), pt,
                         sizeof(pt)),
                     IMS_EPROTO);
    /* malformed headers */
    const char *bad[] = { "", "v1", "v1:", "v1:0", "v1:0:", "v2:0:AAAA", "v1:x:AAAA",
                          "v1:00:AAAA", "v1:-1:AAAA", "v1:0:AAA", "v1:0:AAAA", "V1:0:AAAA",
                          "v1:1234567:AAAA" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dec(r, "a", S(bad[i]), pt, sizeof(pt)), IMS_EPROTO);
    /* an unknown key id */
    assert_int_equal(dec(r, "a", S("v1:7:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), pt,
                         sizeof(pt)),
                     IMS_ENOENT);
    ims_buf_free(&ct);
    ims_keyrepo_free(r);
}

static void test_rotation(void **state)
{
    struct fix *f = *state;
    char err[IMS_KEYREPO_ERRLEN], pt[128];
    unsigned id, ids[8];
    bool changed;
    assert_int_equal(ims_keyrepo_create(f->dir, err, sizeof(err)), 0);
    struct ims_keyrepo *r = open_ok(f->dir);
    struct ims_buf old, fresh, re;
    enc(r, "ad", "old secret", &old);

    assert_int_equal(ims_keyrepo_rotate(r, &id, err, sizeof(err)), 0);
    assert_int_equal(id, 1);
    assert_int_equal(ims_keyrepo_primary(r), 1);
    enc(r, "ad", "new secret", &fresh);
    assert_true(memcmp(fresh.p, "v1:1:", 5) == 0);
    /* both decrypt */
    assert_int_equal(dec(r, "ad", ims_buf_str(&old), pt, sizeof(pt)), 0);
    assert_string_equal(pt, "old secret");
    assert_int_equal(dec(r, "ad", ims_buf_str(&fresh), pt, sizeof(pt)), 0);

    /* the primary cannot be removed */
    assert_int_equal(ims_keyrepo_remove(r, 1, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "primary"));
    assert_int_equal(ims_keyrepo_remove(r, 5, err, sizeof(err)), IMS_ENOENT);

    /* re-encrypt: old -> primary, fresh untouched */
    ims_buf_init(&re, 4096);
    assert_int_equal(ims_keyrepo_reencrypt(r, S("ad"), ims_buf_str(&fresh), &re, &changed), 0);
    assert_false(changed);
    assert_int_equal(re.len, 0);
    assert_int_equal(ims_keyrepo_reencrypt(r, S("ad"), ims_buf_str(&old), &re, &changed), 0);
    assert_true(changed);
    assert_true(memcmp(re.p, "v1:1:", 5) == 0);
    assert_int_equal(dec(r, "ad", ims_buf_str(&re), pt, sizeof(pt)), 0);
    assert_string_equal(pt, "old secret");

    /* a ciphertext relabelled with the other key id fails (the id is AAD) */
    char swapped[256];
    snprintf(swapped, sizeof(swapped), "v1:0:%s", re.p + 5);
    assert_int_equal(dec(r, "ad", S(swapped), pt, sizeof(pt)), IMS_EPROTO);

    /* remove key 0: data still under it no longer decrypts */
    assert_int_equal(ims_keyrepo_remove(r, 0, err, sizeof(err)), 0);
    assert_int_equal(dec(r, "ad", ims_buf_str(&old), pt, sizeof(pt)), IMS_ENOENT);
    assert_int_equal(dec(r, "ad", ims_buf_str(&re), pt, sizeof(pt)), 0);
    ims_keyrepo_free(r);

    /* a new process sees key 1 only */
    r = open_ok(f->dir);
    assert_int_equal(ims_keyrepo_ids(r, ids, 8), 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(dec(r, "ad", ims_buf_str(&fresh), pt, sizeof(pt)), 0);
    assert_string_equal(pt, "new secret");
    /* rotate twice more; ids keep growing */
    assert_int_equal(ims_keyrepo_rotate(r, &id, err, sizeof(err)), 0);
    assert_int_equal(ims_keyrepo_rotate(r, &id, err, sizeof(err)), 0);
    assert_int_equal(id, 3);
    assert_int_equal(ims_keyrepo_ids(r, ids, 8), 3);
    assert_true(ids[0] == 1 && ids[1] == 2 && ids[2] == 3);
    ims_keyrepo_free(r);
    ims_buf_free(&old);
    ims_buf_free(&fresh);
    ims_buf_free(&re);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_permissions_refused(void **state)
{
    struct fix *f = *state;
    char err[IMS_KEYREPO_ERRLEN], path[400];
    struct ims_keyrepo *r = NULL;
    assert_int_equal(ims_keyrepo_create(f->dir, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/0", f->dir);

    /* world-readable key file: refused, with the path and the fix in the text */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(ims_keyrepo_open(f->dir, &r, err, sizeof(err)), IMS_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "group or others"));
    assert_non_null(strstr(err, "0644"));
    /* group-readable too */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(ims_keyrepo_open(f->dir, &r, err, sizeof(err)), IMS_EINVAL);
    /* read-only for the owner is fine */
    assert_int_equal(chmod(path, 0400), 0);
    r = open_ok(f->dir);
    ims_keyrepo_free(r);
    assert_int_equal(chmod(path, 0600), 0);

    /* a world-writable directory is refused */
    assert_int_equal(chmod(f->dir, 0777), 0);
    assert_int_equal(ims_keyrepo_open(f->dir, &r, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "writable by group or others"));
    assert_int_equal(chmod(f->dir, 0700), 0);

    /* a key file that is not 32 bytes of base64 */
    snprintf(path, sizeof(path), "%s/1", f->dir);
    write_file(path, "c2hvcnQ=\n", 0600);
    assert_int_equal(ims_keyrepo_open(f->dir, &r, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "32 bytes"));
    /* Keystone's url-safe alphabet is accepted */
    write_file(path, "_-________________________________________w=\n", 0600);
    r = open_ok(f->dir);
    assert_int_equal(ims_keyrepo_primary(r), 1);
    ims_keyrepo_free(r);
    unlink(path);

    /* unrelated names are ignored */
    snprintf(path, sizeof(path), "%s/README", f->dir);
    write_file(path, "not a key", 0644);
    snprintf(path, sizeof(path), "%s/01", f->dir);
    write_file(path, "not a key", 0644);
    r = open_ok(f->dir);
    ims_keyrepo_free(r);

    /* no keys, no directory */
    snprintf(path, sizeof(path), "%s/0", f->dir);
    unlink(path);
    assert_int_equal(ims_keyrepo_open(f->dir, &r, err, sizeof(err)), IMS_ENOENT);
    assert_non_null(strstr(err, "no key"));
    snprintf(path, sizeof(path), "%s/nonexistent", f->root);
    assert_int_equal(ims_keyrepo_open(path, &r, err, sizeof(err)), IMS_ENOENT);
}

/* Every allocation of open, encrypt, decrypt and re-encrypt fails in turn:
 * each returns IMS_ENOMEM cleanly (ASan/LSan check for leaks). */
static void test_alloc_failures(void **state)
{
    struct fix *f = *state;
    char err[IMS_KEYREPO_ERRLEN];
    unsigned id;
    assert_int_equal(ims_keyrepo_create(f->dir, err, sizeof(err)), 0);
    struct ims_keyrepo *r0 = open_ok(f->dir);
    struct ims_buf old;
    enc(r0, "ad", "old secret", &old);
    assert_int_equal(ims_keyrepo_rotate(r0, &id, err, sizeof(err)), 0);
    ims_keyrepo_free(r0);

    int done = 0;
    for (unsigned long n = 1; !done && n < 1000; n++) {
        struct ims_keyrepo *r = NULL;
        struct ims_buf ct, re;
        char pt[64];
        size_t len;
        bool changed;
        ims_buf_init(&ct, 4096);
        ims_buf_init(&re, 4096);
        ims_alloc_fail_at(n, 0);
        int rc = ims_keyrepo_open(f->dir, &r, NULL, 0);
        if (rc == 0)
            rc = ims_keyrepo_encrypt(r, S("ad"), "x", 1, &ct);
        if (rc == 0)
            rc = ims_keyrepo_decrypt(r, S("ad"), ims_buf_str(&ct), pt, sizeof(pt), &len);
        if (rc == 0)
            rc = ims_keyrepo_reencrypt(r, S("ad"), ims_buf_str(&old), &re, &changed);
        ims_alloc_fail_at(0, 0);
        if (rc == 0)
            done = 1;
        else
            assert_int_equal(rc, IMS_ENOMEM);
        ims_keyrepo_free(r);
        ims_buf_free(&ct);
        ims_buf_free(&re);
    }
    assert_true(done);
    ims_buf_free(&old);
}

const struct CMUnitTest keyrepo_tests[] = {
    cmocka_unit_test_setup_teardown(test_create_and_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tamper_detection, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_permissions_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
};
const size_t keyrepo_ntests = sizeof(keyrepo_tests) / sizeof(keyrepo_tests[0]);
