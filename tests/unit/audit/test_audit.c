/* test_audit.c - the CADF audit trail: events, the canonical HMAC, the
 * chain across restarts, crash-truncated lines, tampering, key rotation
 * and queue overflow (src/audit/audit.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit/audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/keyrepo.h"
#include "cscf/cscf_audit.h"
#include "cscf/cscf_int.h"
#include "sip/msg.h"

struct fix {
    char root[256];
    char keys[300];
    char file[300];
    char copy[300];
    struct ims_keyrepo *repo;
};

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[600];
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->root, sizeof(f->root), "%s/ims-audit-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->root));
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->root);
    snprintf(f->file, sizeof(f->file), "%s/audit.jsonl", f->root);
    snprintf(f->copy, sizeof(f->copy), "%s/copy.jsonl", f->root);
    assert_int_equal(ims_keyrepo_create(f->keys, NULL, 0), 0);
    assert_int_equal(ims_keyrepo_open(f->keys, &f->repo, NULL, 0), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    ims_keyrepo_free(f->repo);
    rmtree(f->root);
    free(f);
    return 0;
}

static struct ims_audit *open_trail(struct fix *f, unsigned queue)
{
    struct ims_audit_cfg c = { .file = f->file, .keys_dir = f->keys,
                               .key_id = IMS_AUDIT_KEY_PRIMARY, .queue_max = queue };
    struct ims_audit *a = NULL;
    char err[256] = "";
    int rc = ims_audit_open(&c, &a, err, sizeof(err));
    if (rc)
        print_error("open: %s\n", err);
    assert_int_equal(rc, 0);
    return a;
}

static void event(struct ims_audit *a, const char *who, bool ok)
{
    struct ims_audit_event ev = {
        .action = "authenticate",
        .outcome = ok ? "success" : "failure",
        .initiator_type = "service/security/account/user",
        .initiator_id = ims_str_cstr(who),
        .initiator_addr = IMS_S("192.0.2.7"),
        .target_type = "service/ims/registrar",
        .target_id = IMS_S("sip:alice@ims.test"),
        .observer = "scscf",
        .reason_type = "SIP",
        .reason_code = ok ? IMS_S("200") : IMS_S("401"),
    };
    assert_int_equal(ims_audit_submit(a, &ev), 0);
}

static void write_events(struct fix *f, int n)
{
    struct ims_audit *a = open_trail(f, 0);
    for (int i = 0; i < n; i++)
        event(a, i % 2 ? "bob@ims.test" : "alice@ims.test", i % 3 != 0);
    assert_int_equal(ims_audit_close(a), 0);
}

/* The file's lines (without '\n'), at most 64. */
static size_t read_lines(const char *path, char lines[][IMS_AUDIT_LINE_MAX], size_t cap)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = 0;
    while (n < cap && fgets(lines[n], IMS_AUDIT_LINE_MAX, fp)) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    fclose(fp);
    return n;
}

static void write_lines(const char *path, char lines[][IMS_AUDIT_LINE_MAX], size_t n, bool nl_last)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%s%s", lines[i], i + 1 < n || nl_last ? "\n" : "");
    fclose(fp);
}

static char (*alloc_lines(void))[IMS_AUDIT_LINE_MAX]
{
    char(*l)[IMS_AUDIT_LINE_MAX] = calloc(64, IMS_AUDIT_LINE_MAX);
    assert_non_null(l);
    return l;
}

static int verify(struct fix *f, const char *path, struct ims_audit_verify_res *res)
{
    return ims_audit_verify_file(path, f->repo, res);
}

/* ------------------------------------------------------------ tests */

static void t_build(void **state)
{
    (void)state;
    struct ims_audit_event ev = {
        .action = "authenticate",
        .outcome = "failure",
        .initiator_type = "service/security/account/user",
        .initiator_id = IMS_S("alice@ims.test"),
        .initiator_addr = IMS_S("192.0.2.7"),
        .target_type = "service/ims/registrar",
        .target_id = IMS_S("sip:alice@ims.test"),
        .observer = "scscf",
        .reason_type = "SIP",
        .reason_code = IMS_S("401"),
        .detail = IMS_S("bad\x01" "bytes\xff"),
    };
    json_t *o = NULL;
    assert_int_equal(ims_audit_build(&ev, &o), 0);
    assert_string_equal(json_string_value(json_object_get(o, "typeURI")), IMS_AUDIT_TYPEURI);
    assert_string_equal(json_string_value(json_object_get(o, "eventType")), "activity");
    assert_string_equal(json_string_value(json_object_get(o, "action")), "authenticate");
    assert_string_equal(json_string_value(json_object_get(o, "outcome")), "failure");
    const char *id = json_string_value(json_object_get(o, "id"));
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4'); /* version 4 */
    assert_non_null(strchr("89ab", id[19]));
    const char *t = json_string_value(json_object_get(o, "eventTime"));
    assert_int_equal(strlen(t), strlen("2026-11-28T00:48:03.123456+00:00"));
    assert_string_equal(t + 26, "+00:00");
    json_t *ini = json_object_get(o, "initiator");
    assert_string_equal(json_string_value(json_object_get(ini, "id")), "alice@ims.test");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ini, "host"), "address")), "192.0.2.7");
    json_t *obs = json_object_get(o, "observer");
    assert_string_equal(json_string_value(json_object_get(obs, "typeURI")), "service/ims/scscf");
    json_t *r = json_object_get(o, "reason");
    assert_string_equal(json_string_value(json_object_get(r, "reasonType")), "SIP");
    assert_string_equal(json_string_value(json_object_get(r, "reasonCode")), "401");
    json_t *att = json_array_get(json_object_get(o, "attachments"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "content")), "bad?bytes?");
    json_decref(o);
    struct ims_audit_event none = { .outcome = "success" };
    assert_int_equal(ims_audit_build(&none, &o), IMS_EINVAL);
}

/* The HMAC covers the line with its last member cut out, recomputable
 * from the bytes alone. */
static void t_canonical_hmac(void **state)
{
    struct fix *f = *state;
    write_events(f, 1);
    char(*l)[IMS_AUDIT_LINE_MAX] = alloc_lines();
    assert_int_equal(read_lines(f->file, l, 64), 1);
    const char *suffix = strstr(l[0], ",\"hmac\":\"");
    assert_non_null(suffix);
    assert_int_equal(strlen(suffix), strlen(",\"hmac\":\"\"}") + 64);
    char body[IMS_AUDIT_LINE_MAX];
    size_t blen = (size_t)(suffix - l[0]);
    memcpy(body, l[0], blen);
    body[blen] = '}';
    uint8_t key[32], mac[32];
    unsigned maclen;
    assert_int_equal(ims_audit_derive_key(f->repo, 0, key), 0);
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)body, blen + 1, mac, &maclen);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    assert_memory_equal(suffix + 9, hex, 64);
    /* the body is sorted and compact: re-serialising it gives the same bytes */
    json_t *o = json_loadb(body, blen + 1, 0, NULL);
    assert_non_null(o);
    char *again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_int_equal(strlen(again), blen + 1);
    assert_memory_equal(again, body, blen + 1);
    assert_string_equal(json_string_value(json_object_get(o, "key_id")), "k0");
    assert_string_equal(json_string_value(json_object_get(o, "prev_hash")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    free(again);
    json_decref(o);
    /* a different label gives a different key: the repository key is not used as is */
    uint8_t other[32];
    assert_int_equal(ims_keyrepo_derive(f->repo, 0, IMS_S("other"), other, 32), 0);
    assert_memory_not_equal(other, key, 32);
    free(l);
}

static void t_chain_across_restart(void **state)
{
    struct fix *f = *state;
    write_events(f, 3);
    write_events(f, 2);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.lines, 5);
    assert_int_equal(res.restarts, 0);
    char(*l)[IMS_AUDIT_LINE_MAX] = alloc_lines();
    assert_int_equal(read_lines(f->file, l, 64), 5);
    char h[IMS_AUDIT_HEX], want[100];
    ims_audit_sha256_hex(l[2], strlen(l[2]), h);
    snprintf(want, sizeof(want), "\"prev_hash\":\"%s\"", h);
    assert_non_null(strstr(l[3], want)); /* line 4 chains to line 3 across the reopen */
    free(l);
}

static void expect_bad(struct fix *f, size_t line, const char *why)
{
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->copy, &res), IMS_EPROTO);
    if (res.bad_line != line || !strstr(res.why, why))
        print_error("got '%s'\n", res.why);
    assert_int_equal(res.bad_line, line);
    assert_non_null(strstr(res.why, why));
}

static void t_tamper(void **state)
{
    struct fix *f = *state;
    write_events(f, 6);
    char(*l)[IMS_AUDIT_LINE_MAX] = alloc_lines();
    assert_int_equal(read_lines(f->file, l, 64), 6);
    char(*m)[IMS_AUDIT_LINE_MAX] = alloc_lines();

    /* edited: failure -> success on line 4 */
    memcpy(m, l, 6 * IMS_AUDIT_LINE_MAX);
    char *p = strstr(m[3], "\"outcome\":\"");
    assert_non_null(p);
    p[11] = p[11] == 's' ? 'f' : 's';
    write_lines(f->copy, m, 6, true);
    expect_bad(f, 4, "hmac mismatch (edited)");

    /* removed: line 3 */
    memcpy(m, l, 2 * IMS_AUDIT_LINE_MAX);
    memcpy(m[2], l[3], 3 * IMS_AUDIT_LINE_MAX);
    write_lines(f->copy, m, 5, true);
    expect_bad(f, 3, "previous-hash mismatch");

    /* reordered: lines 2 and 3 swapped */
    memcpy(m, l, 6 * IMS_AUDIT_LINE_MAX);
    memcpy(m[1], l[2], IMS_AUDIT_LINE_MAX);
    memcpy(m[2], l[1], IMS_AUDIT_LINE_MAX);
    write_lines(f->copy, m, 6, true);
    expect_bad(f, 2, "previous-hash mismatch");

    /* not JSON */
    memcpy(m, l, 6 * IMS_AUDIT_LINE_MAX);
    snprintf(m[4], IMS_AUDIT_LINE_MAX, "hello");
    write_lines(f->copy, m, 6, true);
    expect_bad(f, 5, "not JSON");

    /* the last line cut short, no restart after it */
    memcpy(m, l, 6 * IMS_AUDIT_LINE_MAX);
    m[5][40] = '\0';
    write_lines(f->copy, m, 6, false);
    expect_bad(f, 6, "truncated");

    /* the hmac member stripped */
    memcpy(m, l, 6 * IMS_AUDIT_LINE_MAX);
    p = strstr(m[0], ",\"hmac\":");
    snprintf(p, 2, "}");
    write_lines(f->copy, m, 6, true);
    expect_bad(f, 1, "no hmac");
    free(m);
    free(l);
}

/* A crash mid-write: the reopened trail terminates the cut line and
 * records a chain-restart event bound to it; verify accepts that. */
static void t_truncated_line(void **state)
{
    struct fix *f = *state;
    write_events(f, 4);
    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(truncate(f->file, st.st_size - 30), 0);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), IMS_EPROTO);
    assert_int_equal(res.bad_line, 4);

    write_events(f, 2); /* the restart */
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.lines, 7); /* 3 + cut + restart + 2 */
    assert_int_equal(res.restarts, 1);
    char(*l)[IMS_AUDIT_LINE_MAX] = alloc_lines();
    assert_int_equal(read_lines(f->file, l, 64), 7);
    assert_non_null(strstr(l[4], "\"reasonCode\":\"chain-restart\""));
    assert_non_null(strstr(l[4], "\"truncated_line\":4"));
    assert_non_null(strstr(l[4], "\"eventType\":\"control\""));

    /* the restart cannot excuse a line a forger cut in the middle */
    l[1][20] = '\0';
    write_lines(f->copy, l, 7, true);
    expect_bad(f, 2, "not JSON");
    free(l);
}

static void t_rotation(void **state)
{
    struct fix *f = *state;
    struct ims_audit *a = open_trail(f, 0);
    event(a, "alice@ims.test", true);
    unsigned id;
    assert_int_equal(ims_keyrepo_rotate(f->repo, &id, NULL, 0), 0);
    assert_int_equal(id, 1);
    ims_audit_flush(a);
    assert_int_equal(ims_audit_rekey(a), 0);
    event(a, "alice@ims.test", false);
    assert_int_equal(ims_audit_close(a), 0);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.nkeys, 2);
    assert_int_equal(res.keys[0], 0);
    assert_int_equal(res.keys[1], 1);
    /* a removed key: its lines can no longer be verified, and verify says so */
    assert_int_equal(ims_keyrepo_remove(f->repo, 0, NULL, 0), 0);
    assert_int_equal(verify(f, f->file, &res), IMS_EPROTO);
    assert_int_equal(res.bad_line, 1);
    assert_non_null(strstr(res.why, "key k0 is not in the key repository"));
}

/* A full queue drops events (counted); what is written still chains. */
static void t_overflow(void **state)
{
    struct fix *f = *state;
    struct ims_audit *a = open_trail(f, 16);
    size_t dropped = 0;
    struct ims_audit_event ev = { .action = "monitor", .outcome = "success" };
    for (int i = 0; i < 2000; i++)
        dropped += ims_audit_submit(a, &ev) == IMS_ELIMIT;
    assert_int_equal(ims_audit_close(a), dropped);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.lines, 2000 - dropped);
}

/* One writer: a second open of the same file is refused. */
static void t_locked(void **state)
{
    struct fix *f = *state;
    struct ims_audit *a = open_trail(f, 0);
    struct ims_audit_cfg c = { .file = f->file, .keys_dir = f->keys,
                               .key_id = IMS_AUDIT_KEY_PRIMARY };
    struct ims_audit *b = NULL;
    char err[256];
    assert_int_equal(ims_audit_open(&c, &b, err, sizeof(err)), IMS_EAGAIN);
    c.key_id = 7; /* no such key */
    ims_audit_close(a);
    assert_int_equal(ims_audit_open(&c, &b, err, sizeof(err)), IMS_ENOENT);
}

/* The S-CSCF's emitter: the default trail gets the event, and the
 * initiator's address is the bottom (UE) Via's received=, else its host. */
static void t_scscf_emitter(void **state)
{
    struct fix *f = *state;
    static const char reg[] =
        "REGISTER sip:ims.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:6062;branch=z9hG4bK-i\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:6060;branch=z9hG4bK-p,"
        " SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-ue;received=198.51.100.4;rport=4000\r\n"
        "From: <sip:alice@ims.test>;tag=1\r\n"
        "To: <sip:alice@ims.test>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Content-Length: 0\r\n\r\n";
    static const char reg2[] =
        "REGISTER sip:ims.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP [2001:db8::7]:5060;branch=z9hG4bK-ue\r\n"
        "From: <sip:bob@ims.test>;tag=1\r\n"
        "To: <sip:bob@ims.test>\r\n"
        "Call-ID: c2\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Content-Length: 0\r\n\r\n";
    struct sip_msg m, m2;
    struct sip_hdr h[32], h2[32];
    assert_true(ims_sip_parse(reg, sizeof(reg) - 1, false, &m, h, 32) > 0);
    assert_true(ims_sip_parse(reg2, sizeof(reg2) - 1, false, &m2, h2, 32) > 0);
    ims_audit_emit(&(struct ims_audit_event){ .action = "read" }); /* no trail: nothing */
    struct ims_audit *a = open_trail(f, 0);
    ims_audit_set_default(a);
    /* the address the S-CSCF works out once per transaction (scscf.c) */
    char src[64], src2[64];
    assert_int_equal(cscf_ue_source(&m, src, sizeof(src)), 0);
    assert_int_equal(cscf_ue_source(&m2, src2, sizeof(src2)), 0);
    cscf_audit_auth(src, "alice@ims.test", "sip:alice@ims.test", IMS_AUTH_WRONG);
    cscf_audit_auth(src, "alice@ims.test", "sip:alice@ims.test", IMS_AUTH_STALE); /* no event */
    cscf_audit_reg(src2, "bob@ims.test", "sip:bob@ims.test", true);
    cscf_audit_reg("", "carol@ims.test", "sip:carol@ims.test", false); /* no address */
    ims_audit_set_default(NULL);
    assert_int_equal(ims_audit_close(a), 0);
    char(*l)[IMS_AUDIT_LINE_MAX] = alloc_lines();
    assert_int_equal(read_lines(f->file, l, 64), 3);
    assert_non_null(strstr(l[0], "\"host\":{\"address\":\"198.51.100.4\"}"));
    assert_non_null(strstr(l[0], "\"outcome\":\"failure\""));
    assert_non_null(strstr(l[0], "\"reasonCode\":\"401\""));
    assert_non_null(strstr(l[1], "\"host\":{\"address\":\"2001:db8::7\"}"));
    assert_non_null(strstr(l[1], "\"action\":\"delete\""));
    assert_non_null(strstr(l[2], "\"action\":\"create\""));
    assert_null(strstr(l[2], "\"host\"")); /* no address: no host member */
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    free(l);
}

/* Allocation failures anywhere in open, submit and close: a clean error
 * and no leak (ASan), and what was written still verifies. */
static void t_alloc_failures(void **state)
{
    struct fix *f = *state;
    struct ims_audit_cfg c = { .file = f->file, .keys_dir = f->keys,
                               .key_id = IMS_AUDIT_KEY_PRIMARY };
    struct ims_audit_event ev = { .action = "update", .outcome = "success",
                                  .target_id = IMS_S("t"), .detail = IMS_S("d") };
    json_set_alloc_funcs(ims_alloc, ims_free);
    int done = 0;
    for (unsigned long n = 1; n < 400 && done < 3; n++) {
        struct ims_audit *a = NULL;
        char err[256];
        ims_alloc_fail_at(n, 0);
        int rc = ims_audit_open(&c, &a, err, sizeof(err));
        if (rc == 0) {
            int src = ims_audit_submit(a, &ev);
            assert_true(src == 0 || src == IMS_ENOMEM);
            size_t lost = ims_audit_close(a);
            done += src == 0 && lost == 0;
        } else {
            assert_int_equal(rc, IMS_ENOMEM);
        }
        ims_alloc_fail_at(0, 0);
    }
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(done, 3);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
}

/* ---------------------------------------- the JSON text, byte for byte */

/* The reference: the CADF object as the jansson builder made it before the
 * trail wrote its JSON directly (same sanitising, same members left out). */
static json_t *ref_str(ims_str s)
{
    char b[IMS_AUDIT_FIELD_MAX];
    size_t n = s.len < sizeof(b) ? s.len : sizeof(b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        b[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    return json_stringn(b, n);
}

static void ref_put(json_t *o, const char *key, ims_str s)
{
    if (s.len)
        json_object_set_new(o, key, ref_str(s));
}

static json_t *ref_resource(const char *type, ims_str id, ims_str name, ims_str addr)
{
    json_t *o = json_object();
    ref_put(o, "typeURI", ims_str_cstr(type ? type : "unknown"));
    ref_put(o, "id", id.len ? id : IMS_S("unknown"));
    ref_put(o, "name", name);
    if (addr.len) {
        json_t *h = json_object();
        ref_put(h, "address", addr);
        json_object_set_new(o, "host", h);
    }
    return o;
}

static json_t *ref_build(const struct ims_audit_event *ev, json_t *line)
{
    json_t *o = json_object();
    char host[64] = "localhost", type[64], id[128];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    const char *role = ev->observer ? ev->observer : "imscloud";
    ref_put(o, "typeURI", IMS_S(IMS_AUDIT_TYPEURI));
    ref_put(o, "eventType", ims_str_cstr(ev->event_type ? ev->event_type : "activity"));
    ref_put(o, "action", ims_str_cstr(ev->action));
    ref_put(o, "outcome", ims_str_cstr(ev->outcome ? ev->outcome : "unknown"));
    json_object_set_new(o, "initiator", ref_resource(ev->initiator_type, ev->initiator_id,
                                                     ev->initiator_name, ev->initiator_addr));
    json_object_set_new(o, "target", ref_resource(ev->target_type, ev->target_id,
                                                  ev->target_name, IMS_STR_NULL));
    snprintf(type, sizeof(type), "service/ims/%s", role);
    snprintf(id, sizeof(id), "imscloud:%s:%s", host, role);
    json_object_set_new(o, "observer", ref_resource(type, ims_str_cstr(id), ims_str_cstr(role),
                                                    IMS_STR_NULL));
    if (ev->reason_type) {
        json_t *r = json_object();
        ref_put(r, "reasonType", ims_str_cstr(ev->reason_type));
        ref_put(r, "reasonCode", ev->reason_code);
        json_object_set_new(o, "reason", r);
    }
    if (ev->detail.len)
        json_object_set_new(o, "attachments",
                            json_pack("[{s:s, s:s, s:o}]", "typeURI", "text/plain", "name",
                                      "detail", "content", ref_str(ev->detail)));
    /* what differs from event to event, taken from the line */
    static const char *const from_line[] = { "id", "eventTime", "key_id", "prev_hash" };
    for (size_t i = 0; i < 4; i++)
        json_object_set(o, from_line[i], json_object_get(line, from_line[i]));
    return o;
}

/* Hostile strings: quotes, backslashes, control bytes, DEL, bytes that
 * are not UTF-8, '/' and fields longer than IMS_AUDIT_FIELD_MAX with an
 * escape right at the cut. */
static void t_jansson_identical(void **state)
{
    struct fix *f = *state;
    char longq[600], longb[300];
    for (size_t i = 0; i < sizeof(longq); i++)
        longq[i] = i % 3 ? '"' : 'x';
    memset(longb, '\\', sizeof(longb));
    static const char nasty[] = "a\"b\\c\x01\n\r\t\x7f\xff\xc3\xa9/</script>\\u0000\"}";
    struct ims_audit_event evs[] = {
        { .action = "authenticate",
          .outcome = "failure",
          .initiator_type = "service/security/account/user",
          .initiator_id = IMS_S(nasty),
          .initiator_name = ims_str_make(longq, sizeof(longq)),
          .initiator_addr = IMS_S("\"1.2.3.4\\"),
          .target_type = "x\"y",
          .target_id = ims_str_make(longb, sizeof(longb)),
          .target_name = ims_str_make("\0zero", 5),
          .observer = "s\"cscf",
          .reason_type = "SIP\\",
          .reason_code = IMS_S("40\"1"),
          .detail = ims_str_make(longq, 257) },
        /* the smallest event; empty members are left out */
        { .action = "read", .event_type = "", .outcome = "", .initiator_type = "",
          .target_type = "", .observer = "", .reason_type = "" },
        { .action = "", .outcome = "success", .detail = IMS_S("\x80") },
    };
    const size_t n = sizeof(evs) / sizeof(evs[0]);
    struct ims_audit *a = open_trail(f, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ims_audit_submit(a, &evs[i]), 0);
    assert_int_equal(ims_audit_close(a), 0);
    char(*l)[IMS_AUDIT_LINE_MAX] = alloc_lines();
    assert_int_equal(read_lines(f->file, l, 64), n);
    for (size_t i = 0; i < n; i++) {
        /* the body: the line without its hmac member */
        char *suffix = strstr(l[i], ",\"hmac\":\"");
        assert_non_null(suffix);
        size_t blen = (size_t)(suffix - l[i]);
        suffix[0] = '}';
        suffix[1] = '\0';
        json_error_t e;
        json_t *line = json_loads(l[i], 0, &e);
        if (!line)
            print_error("line %zu: %s\n", i + 1, e.text);
        assert_non_null(line);
        json_t *ref = ref_build(&evs[i], line);
        char *want = json_dumps(ref, JSON_COMPACT | JSON_SORT_KEYS);
        if (strcmp(want, l[i]) != 0)
            print_error("event %zu\nwant %s\ngot  %s\n", i, want, l[i]);
        assert_int_equal(strlen(want), blen + 1);
        assert_string_equal(want, l[i]);
        free(want);
        json_decref(ref);
        json_decref(line);
    }
    free(l);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.lines, n);
}

/* What a parser reads back is what was given, sanitised and cut. */
static void t_hostile_parse_back(void **state)
{
    (void)state;
    char big[400];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7 + 1); /* every byte value, quotes and backslashes among them */
    struct ims_audit_event ev = { .action = "update", .initiator_id = ims_str_make(big, 300),
                                  .detail = IMS_S("q\"b\\s/e\x1f") };
    json_t *o = NULL;
    assert_int_equal(ims_audit_build(&ev, &o), 0);
    const char *id = json_string_value(json_object_get(json_object_get(o, "initiator"), "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), IMS_AUDIT_FIELD_MAX);
    for (size_t i = 0; i < IMS_AUDIT_FIELD_MAX; i++) {
        unsigned char c = (unsigned char)big[i];
        assert_int_equal(id[i], c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
    json_t *att = json_array_get(json_object_get(o, "attachments"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "content")), "q\"b\\s/e?");
    json_decref(o);
}

/* A busy emitter: many events from several threads land in order per
 * thread, and the chain holds (batched writes, lingering writer). */
struct burst {
    struct ims_audit *a;
    int id;
};

static void *burst_main(void *arg)
{
    struct burst *b = arg;
    char who[32];
    for (int i = 0; i < 500; i++) {
        snprintf(who, sizeof(who), "t%d-%04d", b->id, i);
        struct ims_audit_event ev = { .action = "create", .initiator_id = ims_str_cstr(who) };
        if (ims_audit_submit(b->a, &ev) != 0)
            return (void *)1;
    }
    return NULL;
}

static void t_burst(void **state)
{
    struct fix *f = *state;
    struct ims_audit *a = open_trail(f, 4096);
    pthread_t th[4];
    struct burst b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (struct burst){ a, i };
        assert_int_equal(pthread_create(&th[i], NULL, burst_main, &b[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    ims_audit_flush(a); /* flush does not wait out the linger */
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.lines, 2000);
    assert_int_equal(ims_audit_close(a), 0);
    /* per thread, in order */
    FILE *fp = fopen(f->file, "r");
    assert_non_null(fp);
    char *line = malloc(IMS_AUDIT_LINE_MAX);
    int next[4] = { 0 };
    while (fgets(line, IMS_AUDIT_LINE_MAX, fp)) {
        char *p = strstr(line, "\"id\":\"t");
        assert_non_null(p);
        int t = p[7] - '0', k = atoi(p + 9);
        assert_int_equal(k, next[t]);
        next[t]++;
    }
    fclose(fp);
    free(line);
    for (int i = 0; i < 4; i++)
        assert_int_equal(next[i], 500);
}

/* Events every ms for a second: the writer syncs at most once per
 * sync_ms (here 250), however many events come, and each is written in
 * order; a flush then syncs at once. */
static void t_sync_interval(void **state)
{
    struct fix *f = *state;
    struct ims_audit_cfg c = { .file = f->file, .keys_dir = f->keys,
                               .key_id = IMS_AUDIT_KEY_PRIMARY, .sync_ms = 250 };
    struct ims_audit *a = NULL;
    char err[256] = "";
    assert_int_equal(ims_audit_open(&c, &a, err, sizeof(err)), 0);
    uint64_t s0 = ims_audit_syncs(a);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= 1000)
            break;
        char who[32];
        snprintf(who, sizeof(who), "s-%05d", n++);
        event(a, who, true);
        usleep(1000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long elapsed = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    uint64_t during = ims_audit_syncs(a) - s0;
    /* the first event is written at once, then one sync per 250 ms */
    long long bound = elapsed / 250 + 2;
    print_message("sync_ms 250: %llu syncs over %lld ms and %d events (bound %lld)\n",
                  (unsigned long long)during, elapsed, n, bound);
    assert_true(during >= 1);
    assert_true((long long)during <= bound);
    ims_audit_flush(a);
    struct ims_audit_verify_res res;
    assert_int_equal(verify(f, f->file, &res), 0);
    assert_int_equal(res.lines, (size_t)n);
    assert_int_equal(ims_audit_close(a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_build, setup, teardown),
        cmocka_unit_test_setup_teardown(t_canonical_hmac, setup, teardown),
        cmocka_unit_test_setup_teardown(t_chain_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(t_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(t_truncated_line, setup, teardown),
        cmocka_unit_test_setup_teardown(t_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(t_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(t_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(t_scscf_emitter, setup, teardown),
        cmocka_unit_test_setup_teardown(t_alloc_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(t_jansson_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(t_hostile_parse_back, setup, teardown),
        cmocka_unit_test_setup_teardown(t_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(t_sync_interval, setup, teardown),
    };
    ims_log_set_level(IMS_LOG_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
