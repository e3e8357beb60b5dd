/* audit_verify.c - recomputes an audit trail's chain and HMACs (audit.h,
 * docs/audit.md "Verify").  Streams the file: memory is bounded by one
 * window of two lines, whatever the file's size. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit/audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "crypto/keyrepo.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define HMAC_SUFFIX_LEN (sizeof(",\"hmac\":\"\"}") - 1 + 64)
#define WIN (2 * IMS_AUDIT_LINE_MAX + 2)

struct vkey {
    unsigned id;
    uint8_t k[32];
};

struct verifier {
    const struct ims_keyrepo *repo;
    struct ims_audit_verify_res *res;
    struct vkey keys[64];
    size_t nkeys;
    char expect[IMS_AUDIT_HEX]; /* prev_hash the next line must carry */
    char prev_line_hash[IMS_AUDIT_HEX];
    /* a line that is not JSON, excused only by a chain-restart right after it */
    size_t suspect;
    char suspect_why[200];
    char suspect_hash[IMS_AUDIT_HEX], suspect_before[IMS_AUDIT_HEX];
};

static int bad(struct verifier *v, size_t line, const char *why)
{
    v->res->bad_line = line;
    snprintf(v->res->why, sizeof(v->res->why), "line %zu: %s", line, why);
    return IMS_EPROTO;
}

static const uint8_t *key_for(struct verifier *v, unsigned id)
{
    for (size_t i = 0; i < v->nkeys; i++)
        if (v->keys[i].id == id)
            return v->keys[i].k;
    if (v->nkeys == 64 || ims_audit_derive_key(v->repo, id, v->keys[v->nkeys].k) != 0)
        return NULL;
    v->keys[v->nkeys].id = id;
    /* the summary lists them ascending */
    size_t j = v->res->nkeys;
    while (j > 0 && v->res->keys[j - 1] > id) {
        v->res->keys[j] = v->res->keys[j - 1];
        j--;
    }
    v->res->keys[j] = id;
    v->res->nkeys++;
    return v->keys[v->nkeys++].k;
}

static bool is_hex64(const char *p)
{
    for (int i = 0; i < 64; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* The hmac member must be the line's last: ,"hmac":"<64 hex>"} */
static bool split_hmac(ims_str line, const char **mac)
{
    if (line.len < HMAC_SUFFIX_LEN + 2)
        return false;
    const char *s = line.p + line.len - HMAC_SUFFIX_LEN;
    if (memcmp(s, ",\"hmac\":\"", 9) != 0 || memcmp(s + 9 + 64, "\"}", 2) != 0 ||
        !is_hex64(s + 9))
        return false;
    *mac = s + 9;
    return true;
}

static bool hmac_ok(const uint8_t key[32], ims_str line, const char *mac_hex)
{
    /* body = the line without its hmac member: ...,"x":y} */
    size_t blen = line.len - HMAC_SUFFIX_LEN;
    uint8_t mac[32] = { 0 };
    unsigned maclen = 0;
    char *body = ims_alloc(blen + 1);
    if (!body)
        return false;
    memcpy(body, line.p, blen);
    body[blen] = '}';
    bool ok = HMAC(EVP_sha256(), key, 32, (const unsigned char *)body, blen + 1, mac, &maclen);
    ims_free(body);
    static const char d[] = "0123456789abcdef";
    char want[64];
    for (int i = 0; i < 32; i++) {
        want[2 * i] = d[mac[i] >> 4];
        want[2 * i + 1] = d[mac[i] & 15];
    }
    return ok && CRYPTO_memcmp(want, mac_hex, sizeof(want)) == 0; /* constant time */
}

/* A chain-restart event excusing the suspect line: it names that line and
 * binds it and the line before it. */
static bool excuses(const struct verifier *v, json_t *o, const char *prev)
{
    const char *code = json_string_value(json_object_get(json_object_get(o, "reason"),
                                                         "reasonCode"));
    if (!code || strcmp(code, "chain-restart") != 0 || strcmp(prev, v->suspect_hash) != 0)
        return false;
    size_t i;
    json_t *att;
    json_array_foreach(json_object_get(o, "attachments"), i, att)
    {
        json_t *c = json_object_get(att, "content");
        const char *ph = json_string_value(json_object_get(c, "previous_sha256"));
        if (json_is_object(c) &&
            (size_t)json_integer_value(json_object_get(c, "truncated_line")) == v->suspect &&
            ph && strcmp(ph, v->suspect_before) == 0)
            return true;
    }
    return false;
}

static int check_line(struct verifier *v, size_t no, ims_str line)
{
    char h[IMS_AUDIT_HEX], why[200];
    ims_audit_sha256_hex(line.p, line.len, h);
    json_error_t je;
    json_t *o = line.len ? json_loadb(line.p, line.len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        if (v->suspect) /* two in a row: the first was not a crash's */
            return bad(v, v->suspect, v->suspect_why);
        /* not yet a failure: a chain-restart on the next line may excuse it */
        v->suspect = no;
        snprintf(v->suspect_why, sizeof(v->suspect_why), "not JSON%s",
                 line.len ? "" : " (empty line)");
        memcpy(v->suspect_hash, h, sizeof(h));
        memcpy(v->suspect_before, v->prev_line_hash, sizeof(h));
        memcpy(v->prev_line_hash, h, sizeof(h));
        return 0;
    }
    int rc = 0;
    const char *kid = json_string_value(json_object_get(o, "key_id"));
    const char *prev = json_string_value(json_object_get(o, "prev_hash"));
    const char *mac = NULL;
    uint64_t id = 0;
    const uint8_t *key = NULL;
    if (!kid || kid[0] != 'k' || ims_str_to_u64(ims_str_cstr(kid + 1), IMS_KEYREPO_MAX_ID, &id))
        rc = bad(v, no, "no key_id");
    else if (!prev || strlen(prev) != 64)
        rc = bad(v, no, "no prev_hash");
    else if (!split_hmac(line, &mac))
        rc = bad(v, no, "no hmac as the last member (edited)");
    else if (!(key = key_for(v, (unsigned)id))) {
        snprintf(why, sizeof(why), "key %s is not in the key repository (removed?)", kid);
        rc = bad(v, no, why);
    } else if (!hmac_ok(key, line, mac))
        rc = bad(v, no, "hmac mismatch (edited)");
    else if (v->suspect && !excuses(v, o, prev))
        rc = bad(v, v->suspect, v->suspect_why);
    else if (v->suspect)
        v->res->restarts++;
    else if (strcmp(prev, v->expect) != 0)
        rc = bad(v, no, "previous-hash mismatch (a line before it was removed or reordered)");
    if (rc == 0) {
        const char *t = json_string_value(json_object_get(o, "eventTime"));
        if (t && !v->res->first_time[0])
            snprintf(v->res->first_time, sizeof(v->res->first_time), "%s", t);
        if (t)
            snprintf(v->res->last_time, sizeof(v->res->last_time), "%s", t);
        v->suspect = 0;
        memcpy(v->expect, h, sizeof(h));
        memcpy(v->prev_line_hash, h, sizeof(h));
    }
    json_decref(o);
    return rc;
}

int ims_audit_verify_file(const char *path, const struct ims_keyrepo *r,
                          struct ims_audit_verify_res *res)
{
    memset(res, 0, sizeof(*res));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(res->why, sizeof(res->why), "%s: %s", path, strerror(errno));
        return errno == ENOENT ? IMS_ENOENT : IMS_EIO;
    }
    struct verifier *v = ims_calloc(1, sizeof(*v));
    char *buf = ims_alloc(WIN);
    int rc = v && buf ? 0 : IMS_ENOMEM;
    if (rc == 0) {
        v->repo = r;
        v->res = res;
        memcpy(v->expect, ZERO_HASH, sizeof(v->expect));
        memcpy(v->prev_line_hash, ZERO_HASH, sizeof(v->prev_line_hash));
    }
    size_t have = 0;
    bool eof = false;
    while (rc == 0 && !(eof && have == 0)) {
        if (!eof && have < WIN) {
            ssize_t n = read(fd, buf + have, WIN - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(res->why, sizeof(res->why), "%s: %s", path, strerror(errno));
                rc = IMS_EIO;
                break;
            }
            eof = n == 0;
            have += (size_t)n;
            continue;
        }
        char *nl = memchr(buf, '\n', have);
        size_t len = nl ? (size_t)(nl - buf) : have;
        res->lines++;
        if (!nl && !eof) {
            rc = bad(v, res->lines, "longer than any audit line (not ours)");
            break;
        }
        if (!nl) { /* the last line has no '\n': a crash mid-write, or cut */
            rc = check_line(v, res->lines, ims_str_make(buf, len));
            if (rc == 0 && v->suspect == res->lines)
                rc = bad(v, res->lines, "not JSON (truncated: no newline at the end of the file)");
            else if (rc == 0)
                rc = bad(v, res->lines, "no newline at the end of the file (truncated)");
            break;
        }
        rc = check_line(v, res->lines, ims_str_make(buf, len));
        memmove(buf, buf + len + 1, have - len - 1);
        have -= len + 1;
    }
    if (rc == 0 && v->suspect)
        rc = bad(v, v->suspect, v->suspect_why);
    if (v)
        ims_wipe(v->keys, sizeof(v->keys));
    ims_free(v);
    ims_free(buf);
    close(fd);
    return rc;
}
