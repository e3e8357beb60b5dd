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

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/keyrepo.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define BATCH_MAX 64
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
    uint8_t md[32];
    unsigned mdlen = 0;
    EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
    hex(md, 32, out);
}

/* RFC 4122 §4.4: a random UUID. */
static int uuid4(char out[37])
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return IMS_EBACKEND;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    char h[33];
    hex(b, 16, h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    return 0;
}

/* ISO 8601 UTC with microseconds, as pycadf writes eventTime. */
static void now_iso(char out[40])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06ld+00:00", ts.tv_nsec / 1000);
}

/* A JSON string of s: cut to IMS_AUDIT_FIELD_MAX, bytes outside printable
 * ASCII replaced by '?' (SIP hands us arbitrary bytes; jansson wants UTF-8,
 * and a log line must not carry control characters). */
static json_t *jstr(ims_str s)
{
    char b[IMS_AUDIT_FIELD_MAX];
    size_t n = s.len < sizeof(b) ? s.len : sizeof(b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        b[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    return json_stringn(b, n);
}

/* Sets key to s unless s is empty; 0 or IMS_ENOMEM. */
static int put(json_t *o, const char *key, ims_str s)
{
    if (!s.len)
        return 0;
    return json_object_set_new(o, key, jstr(s)) == 0 ? 0 : IMS_ENOMEM;
}

static int put_c(json_t *o, const char *key, const char *s)
{
    return put(o, key, ims_str_cstr(s));
}

/* A CADF resource: {typeURI, id, name[, host {address}]}. */
static json_t *resource(const char *type, ims_str id, ims_str name, ims_str addr)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = put_c(o, "typeURI", type ? type : "unknown");
    rc = rc ? rc : put(o, "id", id.len ? id : IMS_S("unknown"));
    rc = rc ? rc : put(o, "name", name);
    if (rc == 0 && addr.len) {
        json_t *h = json_object();
        rc = h && put(h, "address", addr) == 0 ? json_object_set_new(o, "host", h) : IMS_ENOMEM;
        if (!h)
            rc = IMS_ENOMEM;
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *observer(const char *role)
{
    char type[64], id[128], host[64] = "localhost";
    role = role ? role : "imscloud";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(type, sizeof(type), "service/ims/%s", role);
    snprintf(id, sizeof(id), "imscloud:%s:%s", host, role);
    return resource(type, ims_str_cstr(id), ims_str_cstr(role), IMS_STR_NULL);
}

static int set_obj(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0 ? 0 : IMS_ENOMEM;
}

int ims_audit_build(const struct ims_audit_event *ev, json_t **out)
{
    char id[37], t[40];
    if (!ev->action)
        return IMS_EINVAL;
    if (uuid4(id) != 0)
        return IMS_EBACKEND;
    now_iso(t);
    json_t *o = json_object();
    if (!o)
        return IMS_ENOMEM;
    int rc = put_c(o, "typeURI", IMS_AUDIT_TYPEURI);
    rc = rc ? rc : put_c(o, "id", id);
    rc = rc ? rc : put_c(o, "eventType", ev->event_type ? ev->event_type : "activity");
    rc = rc ? rc : put_c(o, "eventTime", t);
    rc = rc ? rc : put_c(o, "action", ev->action);
    rc = rc ? rc : put_c(o, "outcome", ev->outcome ? ev->outcome : "unknown");
    rc = rc ? rc : set_obj(o, "initiator", resource(ev->initiator_type, ev->initiator_id,
                                                    ev->initiator_name, ev->initiator_addr));
    rc = rc ? rc : set_obj(o, "target", resource(ev->target_type, ev->target_id,
                                                 ev->target_name, IMS_STR_NULL));
    rc = rc ? rc : set_obj(o, "observer", observer(ev->observer));
    if (rc == 0 && ev->reason_type) {
        json_t *r = json_object();
        rc = r ? put_c(r, "reasonType", ev->reason_type) : IMS_ENOMEM;
        rc = rc ? rc : put(r, "reasonCode", ev->reason_code);
        rc = rc ? (json_decref(r), rc) : set_obj(o, "reason", r);
    }
    if (rc == 0 && ev->detail.len) {
        /* CADF attachment: {typeURI, name, content} */
        json_t *a = json_pack("[{s:s, s:s, s:o}]", "typeURI", "text/plain", "name", "detail",
                              "content", jstr(ev->detail));
        rc = set_obj(o, "attachments", a);
    }
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

int ims_audit_derive_key(const struct ims_keyrepo *r, unsigned id, uint8_t key[32])
{
    return ims_keyrepo_derive(r, id, IMS_S(IMS_AUDIT_LABEL), key, 32);
}

int ims_audit_seal(json_t *ev, unsigned key_id, const uint8_t key[32], const char *prev_hex,
                   struct ims_buf *out)
{
    char kid[16], mac_hex[IMS_AUDIT_HEX];
    uint8_t mac[32];
    unsigned maclen = 0;
    snprintf(kid, sizeof(kid), "k%u", key_id);
    if (json_object_set_new(ev, "key_id", json_string(kid)) != 0 ||
        json_object_set_new(ev, "prev_hash", json_string(prev_hex)) != 0)
        return IMS_ENOMEM;
    /* the body: compact, sorted keys; the hmac member goes after it.
     * json_dumpb: no allocation by jansson's (replaceable) allocator */
    char *body = ims_alloc(IMS_AUDIT_LINE_MAX);
    if (!body)
        return IMS_ENOMEM;
    size_t n = json_dumpb(ev, body, IMS_AUDIT_LINE_MAX, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = 0;
    if (n + 80 > IMS_AUDIT_LINE_MAX)
        rc = n ? IMS_ELIMIT : IMS_ENOMEM;
    else if (n < 2 || body[n - 1] != '}')
        rc = IMS_EINVAL;
    else if (!HMAC(EVP_sha256(), key, 32, (const unsigned char *)body, n, mac, &maclen))
        rc = IMS_EBACKEND;
    if (rc == 0) {
        hex(mac, sizeof(mac), mac_hex);
        rc = ims_buf_add(out, body, n - 1);
        rc = rc ? rc : ims_buf_printf(out, ",\"hmac\":\"%s\"}", mac_hex);
    }
    ims_free(body);
    return rc;
}

/* ------------------------------------------------------------ writer */

struct ims_audit {
    char *file;
    char *keys_dir;
    bool syslog;
    int want_key;            /* cfg key_id */
    int fd;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;      /* everything below */
    pthread_cond_t work, done;
    json_t **q;              /* ring of built events */
    size_t qcap, qhead, qlen;
    uint64_t queued, written; /* for flush: written counts drops at the writer too */
    bool stop;
    size_t dropped;
    unsigned key_id;
    uint8_t key[32];

    char prev[IMS_AUDIT_HEX]; /* writer thread only (and open before it starts) */
    bool write_failed;
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

/* Seals ev with the current key and appends it; on success the chain
 * moves on.  Writer thread (or open, before the thread starts). */
static int append(struct ims_audit *a, json_t *ev, unsigned key_id, const uint8_t key[32])
{
    struct ims_buf line;
    ims_buf_init(&line, IMS_AUDIT_LINE_MAX);
    int rc = ims_audit_seal(ev, key_id, key, a->prev, &line);
    if (rc == 0) {
        char h[IMS_AUDIT_HEX];
        ims_audit_sha256_hex(line.p, line.len, h);
        rc = ims_buf_add(&line, "\n", 1);
        off_t end = rc ? -1 : lseek(a->fd, 0, SEEK_END);
        rc = rc ? rc : write_all(a->fd, line.p, line.len);
        if (rc && end >= 0 && ftruncate(a->fd, end) != 0) /* no half line left behind */
            LOG_E("audit", "event=truncate_failed file=%s errno=%d", a->file, errno);
        if (rc == 0) {
            memcpy(a->prev, h, sizeof(h));
            if (a->syslog)
                syslog(LOG_AUTHPRIV | LOG_NOTICE, "%.*s", (int)(line.len - 1), line.p);
        }
    }
    if (rc && !a->write_failed) {
        a->write_failed = true; /* once: a full disk would flood the log */
        LOG_E("audit", "event=append_failed file=%s err=%s errno=%d", a->file, ims_strerror(rc),
              errno);
    } else if (rc == 0) {
        a->write_failed = false;
    }
    ims_buf_free(&line);
    return rc;
}

static void *writer_main(void *arg)
{
    struct ims_audit *a = arg;
    json_t *batch[BATCH_MAX];
    uint8_t key[32];
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->qlen && !a->stop)
            pthread_cond_wait(&a->work, &a->mu);
        if (!a->qlen && a->stop)
            break;
        size_t n = 0;
        while (a->qlen && n < BATCH_MAX) {
            batch[n++] = a->q[a->qhead];
            a->qhead = (a->qhead + 1) % a->qcap;
            a->qlen--;
        }
        unsigned key_id = a->key_id;
        memcpy(key, a->key, sizeof(key));
        pthread_mutex_unlock(&a->mu);
        /* the disk work happens without the lock: emitters never wait on it */
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            failed += append(a, batch[i], key_id, key) != 0;
            json_decref(batch[i]);
        }
        fdatasync(a->fd);
        pthread_mutex_lock(&a->mu);
        a->written += n;
        a->dropped += failed; /* lost like an overflow: the chain skips them */
        pthread_cond_broadcast(&a->done);
    }
    pthread_mutex_unlock(&a->mu);
    OPENSSL_cleanse(key, sizeof(key));
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
    char th[IMS_AUDIT_HEX], bh[IMS_AUDIT_HEX], detail[128];
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
    json_t *o = NULL;
    int rc = ims_audit_build(&ev, &o);
    if (rc)
        return rc;
    json_t *c = json_pack("{s:I, s:s, s:s}", "truncated_line", (json_int_t)lineno,
                          "truncated_sha256", th, "previous_sha256", bh);
    json_t *att = json_pack("{s:s, s:s, s:o}", "typeURI", "imscloud/chain-restart", "name",
                            "chain-restart", "content", c);
    json_t *arr = json_object_get(o, "attachments");
    if (!att || !arr || json_array_append_new(arr, att) != 0) {
        json_decref(o);
        return IMS_ENOMEM;
    }
    memcpy(a->prev, th, sizeof(th)); /* the restart event chains to the cut line */
    rc = append(a, o, a->key_id, a->key);
    json_decref(o);
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
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->work, NULL);
    pthread_cond_init(&a->done, NULL);
    a->file = ims_strndup(cfg->file, strlen(cfg->file));
    a->keys_dir = ims_strndup(cfg->keys_dir, strlen(cfg->keys_dir));
    a->q = ims_calloc(a->qcap, sizeof(*a->q));
    int rc = a->file && a->keys_dir && a->q ? 0 : IMS_ENOMEM;
    if (rc == 0)
        rc = load_key(a->keys_dir, a->want_key, cfg->create_keys, &a->key_id, a->key, err,
                      errsz);
    if (rc == 0)
        rc = open_file(a, err, errsz);
    if (rc == 0 && pthread_create(&a->thread, NULL, writer_main, a) != 0)
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
        json_decref(a->q[(a->qhead + i) % a->qcap]);
    size_t dropped = a->dropped;
    if (dropped)
        LOG_W("audit", "event=closed file=%s dropped=%zu", a->file, dropped);
    if (a->fd >= 0)
        close(a->fd); /* releases the flock */
    if (a->syslog && a->started)
        closelog();
    OPENSSL_cleanse(a->key, sizeof(a->key));
    pthread_cond_destroy(&a->done);
    pthread_cond_destroy(&a->work);
    pthread_mutex_destroy(&a->mu);
    ims_free(a->q);
    ims_free(a->file);
    ims_free(a->keys_dir);
    ims_free(a);
    return dropped;
}

int ims_audit_submit(struct ims_audit *a, const struct ims_audit_event *ev)
{
    json_t *o = NULL;
    int rc = ims_audit_build(ev, &o);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->mu);
    if (a->qlen == a->qcap) {
        if (a->dropped++ == 0) /* once; the total is logged at close */
            LOG_W("audit", "event=queue_full file=%s action=dropping", a->file);
        rc = IMS_ELIMIT;
    } else {
        a->q[(a->qhead + a->qlen) % a->qcap] = o;
        a->qlen++;
        a->queued++;
        o = NULL;
        pthread_cond_signal(&a->work);
    }
    pthread_mutex_unlock(&a->mu);
    json_decref(o);
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
    pthread_mutex_unlock(&a->mu);
    OPENSSL_cleanse(key, sizeof(key));
    LOG_N("audit", "event=rekeyed key=k%u", id);
    return 0;
}

void ims_audit_flush(struct ims_audit *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t target = a->queued;
    while (a->written < target && a->started)
        pthread_cond_wait(&a->done, &a->mu);
    pthread_mutex_unlock(&a->mu);
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
