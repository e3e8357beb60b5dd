/* audit.c - CADF events, sealing, and the writer thread (see audit.h). */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "crypto/digest.h"
#include "crypto/keyrepo.h"
#include "crypto/mac.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define BATCH_MAX 256
#define OUT_MAX (8 * IMS_AUDIT_LINE_MAX) /* bytes per write(2) */
#define QUEUE_DEFAULT 4096

/* ------------------------------------------------------------ events */

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void ims_audit_sha256_hex(const void *p, size_t n, char out[IMS_AUDIT_HEX])
{
    uint8_t md[IMS_SHA256_LEN];
    if (ims_sha256(p, n, md) != 0) /* never seen: a chain that cannot verify */
        memset(md, 0, sizeof(md));
    hex(md, sizeof(md), out);
}

/* RFC 4122 §4.4: a random UUID.  The bytes come from RAND_bytes in blocks
 * of 32 UUIDs per thread: one DRBG call (and its lock) per event was a
 * visible share of libcrypto's time at a few thousand events/s.  (A forked
 * child would repeat its parent's pool; imscloud does not fork.) */
static int uuid4(char out[37])
{
    static _Thread_local uint8_t pool[32 * 16];
    static _Thread_local size_t left;
    if (left < 16) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            return IMS_EBACKEND;
        left = sizeof(pool);
    }
    uint8_t *b = pool + sizeof(pool) - left;
    left -= 16;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    char h[33];
    hex(b, 16, h);
    static const uint8_t from[] = { 0, 8, 12, 16, 20, 32 };
    size_t o = 0;
    for (size_t i = 0; i + 1 < sizeof(from); i++) {
        memcpy(out + o, h + from[i], (size_t)(from[i + 1] - from[i]));
        o += (size_t)(from[i + 1] - from[i]);
        out[o++] = '-';
    }
    out[36] = '\0';
    return 0;
}

/* ISO 8601 UTC with microseconds, as pycadf writes eventTime.  The
 * seconds part is formatted once a second per thread. */
static void now_iso(char out[40])
{
    static _Thread_local time_t last = (time_t)-1;
    static _Thread_local char secs[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            secs[0] = '\0';
        last = ts.tv_sec;
    }
    size_t n = strlen(secs);
    memcpy(out, secs, n);
    out[n++] = '.';
    long us = ts.tv_nsec / 1000;
    for (int i = 5; i >= 0; i--, us /= 10)
        out[n + (size_t)i] = (char)('0' + us % 10);
    memcpy(out + n + 6, "+00:00", sizeof("+00:00"));
}

/* The JSON text of an event is written directly, byte for byte what
 * jansson's json_dumpb(JSON_COMPACT | JSON_SORT_KEYS) wrote for the object
 * this module built before (t_jansson_identical checks it): no objects, no
 * sorting, one allocation.  Members are written in strcmp order of their
 * keys; a comma goes before every member that does not open its object. */
struct jw {
    char *p;
    size_t len, cap;
    bool full; /* something did not fit: the event is too long */
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (w->full || n > w->cap - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

/* A JSON string of s: cut to IMS_AUDIT_FIELD_MAX, bytes outside printable
 * ASCII replaced by '?' (SIP hands us arbitrary bytes; JSON wants UTF-8,
 * and a log line must not carry control characters).  What is left needs
 * escaping only for '"' and '\' (RFC 8259 §7; jansson escapes '/' only
 * when asked to). */
static void jw_str(struct jw *w, ims_str s)
{
    size_t n = s.len < IMS_AUDIT_FIELD_MAX ? s.len : IMS_AUDIT_FIELD_MAX;
    /* worst case every byte escaped, plus the quotes */
    if (w->full || 2 * n + 2 > w->cap - w->len) {
        w->full = true;
        return;
    }
    char *o = w->p + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c >= 0x7f)
            c = '?';
        else if (c == '"' || c == '\\')
            *o++ = '\\';
        *o++ = (char)c;
    }
    *o++ = '"';
    w->len = (size_t)(o - w->p);
}

/* ["," ] "key": - the comma unless the member opens its object or array */
static void jw_key(struct jw *w, const char *key)
{
    if (w->len && w->p[w->len - 1] != '{' && w->p[w->len - 1] != '[')
        JW_LIT(w, ",");
    JW_LIT(w, "\"");
    jw_raw(w, key, strlen(key));
    JW_LIT(w, "\":");
}

/* "key":"s", left out when s is empty (as the jansson builder did) */
static void jw_member(struct jw *w, const char *key, ims_str s)
{
    if (!s.len)
        return;
    jw_key(w, key);
    jw_str(w, s);
}

static void jw_member_c(struct jw *w, const char *key, const char *s)
{
    jw_member(w, key, ims_str_cstr(s));
}

/* A CADF resource: {[host {address}], id, [name], typeURI}. */
static void jw_resource(struct jw *w, const char *key, const char *type, ims_str id, ims_str name,
                        ims_str addr)
{
    jw_key(w, key);
    JW_LIT(w, "{");
    if (addr.len) {
        jw_key(w, "host");
        JW_LIT(w, "{");
        jw_member(w, "address", addr);
        JW_LIT(w, "}");
    }
    jw_member(w, "id", id.len ? id : IMS_S("unknown"));
    jw_member(w, "name", name);
    jw_member_c(w, "typeURI", type ? type : "unknown");
    JW_LIT(w, "}");
}

/* This host's name, read once: the observer of every event. */
static char g_host[64] = "localhost";
static pthread_once_t g_host_once = PTHREAD_ONCE_INIT;

static void read_host(void)
{
    char h[64] = "";
    if (gethostname(h, sizeof(h) - 1) == 0 && h[0]) {
        h[sizeof(h) - 1] = '\0';
        memcpy(g_host, h, sizeof(h));
    }
}

static void jw_observer(struct jw *w, const char *role)
{
    char type[64], id[128];
    role = role ? role : "imscloud";
    pthread_once(&g_host_once, read_host);
    /* a role name is short: too long a one would leave "" (never cut) */
    IMS_STR_JOIN(type, sizeof(type), IMS_S("service/ims/"), ims_str_cstr(role));
    IMS_STR_JOIN(id, sizeof(id), IMS_S("imscloud:"), ims_str_cstr(g_host), IMS_S(":"),
                 ims_str_cstr(role));
    jw_resource(w, "observer", type, ims_str_cstr(id), ims_str_cstr(role), IMS_STR_NULL);
}

/* A built event: the body of its line without "key_id" and "prev_hash",
 * which the writer puts at cut_key and cut_prev (where the sorted keys
 * place them), each as ,"name":"value".  One allocation; the queue owns
 * it until the writer frees it. */
struct audit_rec {
    uint32_t len, cut_key, cut_prev;
    char body[];
};

/* Renders ev into w; extra is a raw JSON object appended to the
 * attachments (the chain-restart record), or empty.  Returns the cuts. */
static int render(const struct ims_audit_event *ev, ims_str extra, struct jw *w,
                  uint32_t *cut_key, uint32_t *cut_prev)
{
    char id[37], t[40];
    if (!ev->action)
        return IMS_EINVAL;
    if (uuid4(id) != 0)
        return IMS_EBACKEND;
    now_iso(t);
    JW_LIT(w, "{");
    jw_member_c(w, "action", ev->action);
    if (ev->detail.len) {
        /* CADF attachment: {content, name, typeURI} */
        jw_key(w, "attachments");
        JW_LIT(w, "[{");
        jw_member(w, "content", ev->detail);
        JW_LIT(w, ",\"name\":\"detail\",\"typeURI\":\"text/plain\"}");
        if (extra.len) {
            JW_LIT(w, ",");
            jw_raw(w, extra.p, extra.len);
        }
        JW_LIT(w, "]");
    }
    jw_member_c(w, "eventTime", t);
    jw_member_c(w, "eventType", ev->event_type ? ev->event_type : "activity");
    jw_member_c(w, "id", id);
    jw_resource(w, "initiator", ev->initiator_type, ev->initiator_id, ev->initiator_name,
                ev->initiator_addr);
    *cut_key = (uint32_t)w->len; /* "key_id" */
    jw_observer(w, ev->observer);
    jw_member_c(w, "outcome", ev->outcome ? ev->outcome : "unknown");
    *cut_prev = (uint32_t)w->len; /* "prev_hash" */
    if (ev->reason_type) {
        jw_key(w, "reason");
        JW_LIT(w, "{");
        jw_member(w, "reasonCode", ev->reason_code);
        jw_member_c(w, "reasonType", ev->reason_type);
        JW_LIT(w, "}");
    }
    jw_resource(w, "target", ev->target_type, ev->target_id, ev->target_name, IMS_STR_NULL);
    jw_member_c(w, "typeURI", IMS_AUDIT_TYPEURI);
    JW_LIT(w, "}");
    return w->full ? IMS_ELIMIT : 0;
}

static int rec_build(const struct ims_audit_event *ev, ims_str extra, struct audit_rec **out)
{
    char buf[IMS_AUDIT_LINE_MAX];
    struct jw w = { .p = buf, .cap = sizeof(buf) };
    uint32_t ck = 0, cp = 0;
    int rc = render(ev, extra, &w, &ck, &cp);
    if (rc)
        return rc;
    struct audit_rec *r = ims_alloc(sizeof(*r) + w.len);
    if (!r)
        return IMS_ENOMEM;
    r->len = (uint32_t)w.len;
    r->cut_key = ck;
    r->cut_prev = cp;
    memcpy(r->body, buf, w.len);
    *out = r;
    return 0;
}

int ims_audit_build(const struct ims_audit_event *ev, json_t **out)
{
    struct audit_rec *r = NULL;
    int rc = rec_build(ev, IMS_STR_NULL, &r);
    if (rc)
        return rc;
    *out = json_loadb(r->body, r->len, 0, NULL);
    ims_free(r);
    return *out ? 0 : IMS_ENOMEM;
}

int ims_audit_derive_key(const struct ims_keyrepo *r, unsigned id, uint8_t key[32])
{
    return ims_keyrepo_derive(r, id, IMS_S(IMS_AUDIT_LABEL), key, 32);
}

/* The writer's crypto, set up once: HMAC under the current key (crypto/mac:
 * keyed once per key) and SHA-256 for the chain, fetched once rather than
 * on every line (OpenSSL 3). */
struct sealer {
    struct ims_mac *hmac; /* NULL until the first key */
    EVP_MD *sha;
    EVP_MD_CTX *md;
    unsigned key_id;
    uint64_t key_gen; /* the ims_audit key generation the hmac holds */
};

static void sealer_free(struct sealer *s)
{
    ims_mac_free(s->hmac);
    EVP_MD_CTX_free(s->md);
    EVP_MD_free(s->sha);
    memset(s, 0, sizeof(*s));
}

static int sealer_init(struct sealer *s)
{
    memset(s, 0, sizeof(*s));
    s->sha = EVP_MD_fetch(NULL, "SHA256", NULL);
    s->md = EVP_MD_CTX_new();
    if (!s->sha || !s->md) {
        sealer_free(s);
        return IMS_EBACKEND;
    }
    return 0;
}

static int sealer_key(struct sealer *s, unsigned key_id, const uint8_t key[32])
{
    struct ims_mac *m;
    int rc = ims_mac_new(key, 32, &m);
    if (rc)
        return rc; /* the old key stays */
    ims_mac_free(s->hmac);
    s->hmac = m;
    s->key_id = key_id;
    return 0;
}

static int sealer_hmac(struct sealer *s, const char *p, size_t n, uint8_t mac[32])
{
    return s->hmac ? ims_mac_sha256(s->hmac, p, n, mac) : IMS_EBACKEND;
}

static int sealer_sha(struct sealer *s, const char *p, size_t n, char out[IMS_AUDIT_HEX])
{
    uint8_t md[32];
    unsigned len = 0;
    if (EVP_DigestInit_ex(s->md, s->sha, NULL) != 1 || EVP_DigestUpdate(s->md, p, n) != 1 ||
        EVP_DigestFinal_ex(s->md, md, &len) != 1 || len != 32)
        return IMS_EBACKEND;
    hex(md, 32, out);
    return 0;
}

/* Seals r after prev_hex into out[0..cap): body with key_id and prev_hash
 * spliced in, its HMAC appended as the last member (audit.h).  Returns the
 * line's length (no '\n'), or 0 when it does not fit or the HMAC fails. */
static size_t seal(struct sealer *s, const struct audit_rec *r, const char *prev_hex, char *out,
                   size_t cap)
{
    char kid[32];
    int kn = snprintf(kid, sizeof(kid), ",\"key_id\":\"k%u\"", s->key_id);
    size_t n = r->len + (size_t)kn + sizeof(",\"prev_hash\":\"\"") - 1 + 64;
    if (n + 80 > IMS_AUDIT_LINE_MAX || n + sizeof(",\"hmac\":\"\"}") - 1 + 64 > cap)
        return 0;
    struct jw w = { .p = out, .cap = cap };
    jw_raw(&w, r->body, r->cut_key);
    jw_raw(&w, kid, (size_t)kn);
    jw_raw(&w, r->body + r->cut_key, r->cut_prev - r->cut_key);
    JW_LIT(&w, ",\"prev_hash\":\"");
    jw_raw(&w, prev_hex, 64);
    JW_LIT(&w, "\"");
    jw_raw(&w, r->body + r->cut_prev, r->len - r->cut_prev);
    uint8_t mac[32];
    char mac_hex[IMS_AUDIT_HEX];
    if (w.full || sealer_hmac(s, w.p, w.len, mac) != 0)
        return 0;
    hex(mac, 32, mac_hex);
    ims_wipe(mac, sizeof(mac));
    w.len--; /* the body's closing '}' */
    JW_LIT(&w, ",\"hmac\":\"");
    jw_raw(&w, mac_hex, 64);
    JW_LIT(&w, "\"}");
    return w.full ? 0 : w.len;
}

/* ------------------------------------------------------------ writer */

struct ims_audit {
    char *file;
    char *keys_dir;
    bool syslog;
    unsigned sync_ms;        /* cfg sync_ms: the linger after each fdatasync */
    int want_key;            /* cfg key_id */
    int fd;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;      /* everything below up to prev */
    pthread_cond_t work, done; /* work: CLOCK_MONOTONIC (the linger) */
    struct audit_rec **q;    /* ring of built events */
    size_t qcap, qhead, qlen;
    uint64_t queued, written; /* for flush: written counts drops at the writer too */
    uint64_t syncs;          /* fdatasyncs of the file */
    bool stop;
    bool idle;               /* the writer sleeps until signalled: the next event does */
    unsigned flushing;       /* ims_audit_flush() callers: the writer must not linger */
    size_t dropped;
    unsigned key_id;
    uint8_t key[32];
    uint64_t key_gen;        /* bumped by rekey: the sealer re-keys */

    /* writer thread only (and open, before it starts) */
    char prev[IMS_AUDIT_HEX];
    bool write_failed;
    struct sealer seal;
    uint64_t seal_gen;       /* the key_gen seal holds */
    char *out;               /* OUT_MAX bytes: the lines of one write(2) */
};

static int fail(int rc, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int rc, char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Picks the key (cfg key_id or the primary) and derives its HMAC key. */
static int load_key(const char *dir, int want, bool create, unsigned *id, uint8_t key[32],
                    char *err, size_t errsz)
{
    struct ims_keyrepo *r = NULL;
    char kerr[IMS_KEYREPO_ERRLEN] = "";
    int rc = ims_keyrepo_open(dir, &r, kerr, sizeof(kerr));
    if (rc == IMS_ENOENT && create) {
        /* another process may create it at the same moment: open again */
        rc = ims_keyrepo_create(dir, kerr, sizeof(kerr));
        if (rc == 0)
            LOG_N("audit", "event=keyrepo_created dir=%s", dir);
        rc = ims_keyrepo_open(dir, &r, kerr, sizeof(kerr));
    }
    if (rc)
        return fail(rc, err, errsz, "audit keys %s: %s", dir, kerr);
    *id = want == IMS_AUDIT_KEY_PRIMARY ? ims_keyrepo_primary(r) : (unsigned)want;
    rc = ims_audit_derive_key(r, *id, key);
    ims_keyrepo_free(r);
    if (rc == IMS_ENOENT)
        return fail(rc, err, errsz, "audit keys %s: no key %s", dir,
                    want == IMS_AUDIT_KEY_PRIMARY ? "(primary)" : "key_id");
    if (rc)
        return fail(rc, err, errsz, "audit keys %s: cannot derive the HMAC key", dir);
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return IMS_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends out[0..n) (whole lines); on failure cuts the file back, so no
 * half line is left behind. */
static int write_out(struct ims_audit *a, size_t n)
{
    off_t end = lseek(a->fd, 0, SEEK_END);
    int rc = end < 0 ? IMS_EIO : write_all(a->fd, a->out, n);
    if (rc && end >= 0 && ftruncate(a->fd, end) != 0)
        LOG_E("audit", "event=truncate_failed file=%s errno=%d", a->file, errno);
    return rc;
}

static void to_syslog(const char *p, size_t n)
{
    for (const char *end = p + n, *nl; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        syslog(LOG_AUTHPRIV | LOG_NOTICE, "%.*s", (int)(nl - p), p);
    }
}

/* Logs the first of a run of failures (a full disk would flood the log). */
static void report(struct ims_audit *a, int rc)
{
    if (rc && !a->write_failed) {
        a->write_failed = true;
        LOG_E("audit", "event=append_failed file=%s err=%s errno=%d", a->file, ims_strerror(rc),
              errno);
    } else if (rc == 0) {
        a->write_failed = false;
    }
}

/* Seals recs[0..n) in order and appends them, as many lines per write(2)
 * as fit in out; the chain moves on over the lines written.  Returns how
 * many were lost (not sealable, or their write failed).  Writer thread
 * (or open, before the thread starts). */
static size_t append(struct ims_audit *a, struct audit_rec *const *recs, size_t n)
{
    size_t lost = 0, i = 0;
    while (i < n) {
        char chunk_prev[IMS_AUDIT_HEX];
        memcpy(chunk_prev, a->prev, sizeof(chunk_prev));
        size_t len = 0, lines = 0;
        int rc = 0;
        for (; i < n && OUT_MAX - len > IMS_AUDIT_LINE_MAX; i++) {
            char h[IMS_AUDIT_HEX];
            size_t l = seal(&a->seal, recs[i], a->prev, a->out + len, IMS_AUDIT_LINE_MAX);
            if (l == 0 || sealer_sha(&a->seal, a->out + len, l, h) != 0) {
                rc = rc ? rc : l ? IMS_EBACKEND : IMS_ELIMIT;
                lost++;
                continue;
            }
            memcpy(a->prev, h, sizeof(h));
            a->out[len + l] = '\n';
            len += l + 1;
            lines++;
        }
        int wrc = len ? write_out(a, len) : 0;
        if (wrc) {
            memcpy(a->prev, chunk_prev, sizeof(chunk_prev)); /* nothing of it was written */
            lost += lines;
            rc = wrc;
        } else if (a->syslog) {
            to_syslog(a->out, len);
        }
        report(a, rc);
    }
    return lost;
}

/* After each fdatasync, let events gather for sync_ms: under load the
 * writer then wakes (and syncs the file) at most 1000/sync_ms times a
 * second instead of once or twice per event, however many batches a
 * wake-up writes.  Emitters do not signal a lingering writer; flush and
 * close do.  Called with mu held. */
static void linger(struct ims_audit *a)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(a->sync_ms / 1000);
    t.tv_nsec += (long)(a->sync_ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&a->work, &a->mu, &t);
}

static void *writer_main(void *arg)
{
    struct ims_audit *a = arg;
    struct audit_rec *batch[BATCH_MAX];
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->qlen && !a->stop) {
            a->idle = true;
            pthread_cond_wait(&a->work, &a->mu);
        }
        a->idle = false;
        if (!a->qlen && a->stop)
            break;
        /* everything queued, BATCH_MAX lines at a time, then one sync */
        uint64_t taken = 0;
        size_t lost = 0;
        while (a->qlen) {
            size_t n = 0;
            while (a->qlen && n < BATCH_MAX) {
                batch[n++] = a->q[a->qhead];
                a->qhead = (a->qhead + 1) % a->qcap;
                a->qlen--;
            }
            int krc = 0;
            if (a->seal_gen != a->key_gen) { /* rekeyed */
                krc = sealer_key(&a->seal, a->key_id, a->key);
                a->seal_gen = krc ? a->seal_gen : a->key_gen;
            }
            pthread_mutex_unlock(&a->mu);
            /* the disk work happens without the lock: emitters never wait on it */
            lost += krc ? n : append(a, batch, n);
            if (krc)
                report(a, krc);
            for (size_t i = 0; i < n; i++)
                ims_free(batch[i]);
            taken += n;
            pthread_mutex_lock(&a->mu);
        }
        pthread_mutex_unlock(&a->mu);
        fdatasync(a->fd);
        pthread_mutex_lock(&a->mu);
        a->written += taken; /* on disk: what ims_audit_flush waits for */
        a->syncs++;
        a->dropped += lost;  /* lost like an overflow: the chain skips them */
        pthread_cond_broadcast(&a->done);
        if (!a->stop && !a->flushing)
            linger(a);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Reads the end of the file: *last = the last line (without '\n'),
 * *ends_nl whether the file ends with '\n', *before = the line before the
 * last (for a truncated one).  Slices point into tail (caller frees). */
struct tail {
    char *buf;
    size_t len;
    bool whole;      /* buf starts at the file's start */
    ims_str last, before;
    bool ends_nl, last_found, before_found;
};

static void split_tail(struct tail *t)
{
    size_t end = t->len;
    t->ends_nl = end && t->buf[end - 1] == '\n';
    if (t->ends_nl)
        end--;
    size_t s = end;
    while (s > 0 && t->buf[s - 1] != '\n')
        s--;
    t->last_found = s > 0 || t->whole;
    t->last = ims_str_make(t->buf + s, end - s);
    if (!t->last_found || s == 0)
        return;
    size_t e2 = s - 1, s2 = e2;
    while (s2 > 0 && t->buf[s2 - 1] != '\n')
        s2--;
    t->before_found = s2 > 0 || t->whole;
    t->before = ims_str_make(t->buf + s2, e2 - s2);
}

static int read_tail(int fd, off_t size, struct tail *t)
{
    size_t want = 2 * IMS_AUDIT_LINE_MAX + 2;
    off_t from = size > (off_t)want ? size - (off_t)want : 0;
    t->len = (size_t)(size - from);
    t->whole = from == 0;
    t->buf = ims_alloc(t->len ? t->len : 1);
    if (!t->buf)
        return IMS_ENOMEM;
    ssize_t r = pread(fd, t->buf, t->len, from);
    if (r < 0 || (size_t)r != t->len)
        return IMS_EIO;
    split_tail(t);
    return 0;
}

/* The 1-based number of the last line (counting a final line without its
 * '\n').  O(file size): only after a crash. */
static size_t count_lines(int fd, bool ends_nl)
{
    char b[65536];
    size_t nl = 0;
    off_t off = 0;
    ssize_t r;
    while ((r = pread(fd, b, sizeof(b), off)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            nl += b[i] == '\n';
        off += r;
    }
    return ends_nl ? nl : nl + 1;
}

/* The last line was cut short (no '\n'): terminate it and record a
 * chain-restart event bound to it and to the line before it. */
static int restart_chain(struct ims_audit *a, const struct tail *t, size_t lineno)
{
    char th[IMS_AUDIT_HEX], bh[IMS_AUDIT_HEX], detail[128], extra[400];
    ims_audit_sha256_hex(t->last.p, t->last.len, th);
    if (t->before_found && t->before.len)
        ims_audit_sha256_hex(t->before.p, t->before.len, bh);
    else
        memcpy(bh, ZERO_HASH, sizeof(bh));
    LOG_W("audit", "event=truncated_line file=%s line=%zu bytes=%zu action=chain_restart",
          a->file, lineno, t->last.len);
    if (write_all(a->fd, "\n", 1) != 0)
        return IMS_EIO;
    snprintf(detail, sizeof(detail), "line %zu was cut short (crash mid-write?)", lineno);
    struct ims_audit_event ev = {
        .event_type = "control",
        .action = "update",
        .outcome = "success",
        .initiator_type = "service/ims/audit",
        .initiator_id = IMS_S("imscloud"),
        .target_type = "data/audit/log",
        .target_id = ims_str_cstr(a->file),
        .observer = "audit",
        .reason_type = "imscloud",
        .reason_code = IMS_S("chain-restart"),
        .detail = ims_str_cstr(detail),
    };
    /* the second attachment, keys sorted (the verifier reads it back) */
    int n = snprintf(extra, sizeof(extra),
                     "{\"content\":{\"previous_sha256\":\"%s\",\"truncated_line\":%zu,"
                     "\"truncated_sha256\":\"%s\"},\"name\":\"chain-restart\","
                     "\"typeURI\":\"imscloud/chain-restart\"}",
                     bh, lineno, th);
    struct audit_rec *r = NULL;
    int rc = rec_build(&ev, ims_str_make(extra, (size_t)n), &r);
    if (rc)
        return rc;
    memcpy(a->prev, th, sizeof(th)); /* the restart event chains to the cut line */
    rc = append(a, &r, 1) ? IMS_EIO : 0;
    ims_free(r);
    return rc;
}

/* Opens the file, locks it and finds where the chain continues. */
static int open_file(struct ims_audit *a, char *err, size_t errsz)
{
    a->fd = open(a->file, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (a->fd < 0)
        return fail(IMS_EIO, err, errsz, "audit file %s: %s", a->file, strerror(errno));
    if (flock(a->fd, LOCK_EX | LOCK_NB) != 0)
        return fail(errno == EWOULDBLOCK ? IMS_EAGAIN : IMS_EIO, err, errsz,
                    "audit file %s: %s", a->file,
                    errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
    struct stat st;
    if (fstat(a->fd, &st) != 0)
        return fail(IMS_EIO, err, errsz, "audit file %s: %s", a->file, strerror(errno));
    memcpy(a->prev, ZERO_HASH, sizeof(a->prev));
    if (st.st_size == 0)
        return 0;
    struct tail t = { 0 };
    int rc = read_tail(a->fd, st.st_size, &t);
    if (rc == 0 && !t.ends_nl) {
        rc = restart_chain(a, &t, count_lines(a->fd, false));
    } else if (rc == 0 && t.last_found) {
        ims_audit_sha256_hex(t.last.p, t.last.len, a->prev);
    } else if (rc == 0) {
        /* a last line longer than any of ours: not our file's tail; the
         * verifier will name it */
        LOG_W("audit", "event=unreadable_tail file=%s", a->file);
    }
    ims_free(t.buf);
    if (rc)
        return fail(rc, err, errsz, "audit file %s: cannot read its end (%s)", a->file,
                    ims_strerror(rc));
    return 0;
}

int ims_audit_open(const struct ims_audit_cfg *cfg, struct ims_audit **out, char *err,
                   size_t errsz)
{
    struct ims_audit *a = ims_calloc(1, sizeof(*a));
    if (!a)
        return IMS_ENOMEM;
    a->fd = -1;
    a->syslog = cfg->syslog;
    a->want_key = cfg->key_id;
    a->qcap = cfg->queue_max ? cfg->queue_max : QUEUE_DEFAULT;
    a->sync_ms = cfg->sync_ms ? cfg->sync_ms : IMS_AUDIT_SYNC_MS_DEFAULT;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&a->done, NULL);
    a->file = ims_strndup(cfg->file, strlen(cfg->file));
    a->keys_dir = ims_strndup(cfg->keys_dir, strlen(cfg->keys_dir));
    a->q = ims_calloc(a->qcap, sizeof(*a->q));
    a->out = ims_alloc(OUT_MAX);
    int rc = a->file && a->keys_dir && a->q && a->out ? 0 : IMS_ENOMEM;
    if (rc == 0)
        rc = load_key(a->keys_dir, a->want_key, cfg->create_keys, &a->key_id, a->key, err,
                      errsz);
    if (rc == 0) {
        rc = sealer_init(&a->seal);
        if (rc == 0)
            rc = sealer_key(&a->seal, a->key_id, a->key); /* IMS_ENOMEM or IMS_EBACKEND */
        if (rc)
            rc = fail(rc, err, errsz, "audit: cannot set up HMAC-SHA-256");
    }
    if (rc == 0)
        rc = open_file(a, err, errsz);
    if (rc == 0 && ims_thread_start(&a->thread, "ims-audit", writer_main, a) != 0)
        rc = fail(IMS_EIO, err, errsz, "audit: cannot start the writer thread");
    if (rc) {
        ims_audit_close(a);
        return rc;
    }
    a->started = true;
    if (a->syslog)
        openlog("imscloud-audit", LOG_PID, LOG_AUTHPRIV);
    LOG_N("audit", "event=opened file=%s key=k%u syslog=%s", a->file, a->key_id,
          a->syslog ? "yes" : "no");
    *out = a;
    return 0;
}

size_t ims_audit_close(struct ims_audit *a)
{
    if (!a)
        return 0;
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->work);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    for (size_t i = 0; a->q && i < a->qlen; i++) /* only when the thread never ran */
        ims_free(a->q[(a->qhead + i) % a->qcap]);
    size_t dropped = a->dropped;
    if (dropped)
        LOG_W("audit", "event=closed file=%s dropped=%zu", a->file, dropped);
    if (a->fd >= 0)
        close(a->fd); /* releases the flock */
    if (a->syslog && a->started)
        closelog();
    ims_wipe(a->key, sizeof(a->key));
    sealer_free(&a->seal);
    pthread_cond_destroy(&a->done);
    pthread_cond_destroy(&a->work);
    pthread_mutex_destroy(&a->mu);
    ims_free(a->out);
    ims_free(a->q);
    ims_free(a->file);
    ims_free(a->keys_dir);
    ims_free(a);
    return dropped;
}

int ims_audit_submit(struct ims_audit *a, const struct ims_audit_event *ev)
{
    struct audit_rec *r = NULL;
    int rc = rec_build(ev, IMS_STR_NULL, &r);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->mu);
    if (a->qlen == a->qcap) {
        if (a->dropped++ == 0) /* once; the total is logged at close */
            LOG_W("audit", "event=queue_full file=%s action=dropping", a->file);
        rc = IMS_ELIMIT;
    } else {
        a->q[(a->qhead + a->qlen) % a->qcap] = r;
        a->qlen++;
        a->queued++;
        r = NULL;
        if (a->idle) { /* one wake-up per batch, not per event */
            a->idle = false;
            pthread_cond_signal(&a->work);
        }
    }
    pthread_mutex_unlock(&a->mu);
    ims_free(r);
    return rc;
}

int ims_audit_rekey(struct ims_audit *a)
{
    uint8_t key[32];
    unsigned id;
    char err[256];
    int rc = load_key(a->keys_dir, a->want_key, false, &id, key, err, sizeof(err));
    if (rc) {
        LOG_E("audit", "event=rekey_failed why=\"%s\"", err);
        return rc;
    }
    pthread_mutex_lock(&a->mu);
    memcpy(a->key, key, sizeof(key));
    a->key_id = id;
    a->key_gen++;
    pthread_mutex_unlock(&a->mu);
    ims_wipe(key, sizeof(key));
    LOG_N("audit", "event=rekeyed key=k%u", id);
    return 0;
}

void ims_audit_flush(struct ims_audit *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t target = a->queued;
    a->flushing++;
    pthread_cond_signal(&a->work); /* also ends a linger */
    while (a->written < target && a->started)
        pthread_cond_wait(&a->done, &a->mu);
    a->flushing--;
    pthread_mutex_unlock(&a->mu);
}

uint64_t ims_audit_syncs(struct ims_audit *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t n = a->syncs;
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* ------------------------------------------------------------ default */

static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ims_audit *g_audit;

void ims_audit_set_default(struct ims_audit *a)
{
    pthread_rwlock_wrlock(&g_lock);
    g_audit = a;
    pthread_rwlock_unlock(&g_lock);
}

void ims_audit_emit(const struct ims_audit_event *ev)
{
    pthread_rwlock_rdlock(&g_lock);
    if (g_audit) {
        int rc = ims_audit_submit(g_audit, ev);
        if (rc && rc != IMS_ELIMIT)
            LOG_W("audit", "event=emit_failed action=%s err=%s", ev->action, ims_strerror(rc));
    }
    pthread_rwlock_unlock(&g_lock);
}

void ims_audit_rekey_default(void)
{
    pthread_rwlock_rdlock(&g_lock);
    if (g_audit)
        ims_audit_rekey(g_audit);
    pthread_rwlock_unlock(&g_lock);
}
