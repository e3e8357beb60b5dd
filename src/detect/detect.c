/* detect.c - the detectors of detect.h: per-source state in a fixed,
 * sharded table, fingerprints, and what a detection does (audit event,
 * metrics, dynamic deny group). */
#include "detect/detect.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acl/acl.h"
#include "audit/audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "net/transport.h"
#include "base/log.h"
#include "base/str.h"
#include "metrics/metrics.h"
#include "sip/msg.h"

#define DETECT_SHARDS 64
#define DETECT_QUIET_MIN_MS 60000u /* at least a minute between events of one kind per source */

struct src_key {
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
    uint8_t v6;
};

struct src_ent {
    uint64_t last_ms; /* 0: free */
    struct src_key k;
    uint64_t sweep_start_ms, bad_start_ms;
    uint64_t quiet_until_ms[IMS_DETECT_NKINDS];
    uint32_t nbad;
    uint16_t nusers;
    uint32_t users[IMS_DETECT_MAX_USERS]; /* FNV-1a of the user parts seen this window */
};

struct shard {
    pthread_mutex_t lock;
    struct src_ent *ent; /* per_shard entries of the detector's one array */
};

struct prefix {
    struct src_key k;
    unsigned bits;
};

struct ims_detect {
    struct ims_detect_cfg cfg;
    char fp[IMS_DETECT_MAX_FP][IMS_DETECT_FP_LEN];
    size_t nfp;
    struct prefix exempt[IMS_DETECT_MAX_EXEMPT];
    size_t nexempt;
    size_t per_shard;
    struct src_ent *all;
    struct shard shard[DETECT_SHARDS];
    atomic_ullong count[IMS_DETECT_NKINDS];
};

static const char *const kind_name[IMS_DETECT_NKINDS] = { "scanner", "sweep", "malformed" };

/* ------------------------------------------------------------ config */

static int parse_fps(struct ims_detect *d, const char *list, char *err, size_t errsz)
{
    const char *p = list, *end = list + strlen(list);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        ims_str item = ims_str_trim(ims_str_make(p, (size_t)((comma ? comma : end) - p)));
        p = comma ? comma + 1 : end;
        if (item.len == 0)
            continue;
        if (d->nfp == IMS_DETECT_MAX_FP || item.len >= IMS_DETECT_FP_LEN) {
            snprintf(err, errsz, "[detect] fingerprints: at most %d entries of %d bytes",
                     IMS_DETECT_MAX_FP, IMS_DETECT_FP_LEN - 1);
            return IMS_EINVAL;
        }
        memcpy(d->fp[d->nfp], item.p, item.len);
        d->fp[d->nfp++][item.len] = '\0';
    }
    return 0;
}

static int parse_prefix(ims_str s, struct prefix *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (s.len >= sizeof(buf))
        return IMS_EINVAL;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    char *slash = strchr(buf, '/');
    unsigned long bits = 0;
    if (slash) {
        *slash = '\0';
        ims_str b = ims_str_cstr(slash + 1);
        uint64_t v;
        if (ims_str_to_u64(b, 128, &v) != 0)
            return IMS_EINVAL;
        bits = (unsigned long)v;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->k.ip) == 1) {
        out->bits = slash ? (unsigned)bits : 32;
        return out->bits <= 32 ? 0 : IMS_EINVAL;
    }
    if (inet_pton(AF_INET6, buf, out->k.ip) == 1) {
        out->k.v6 = 1;
        out->bits = slash ? (unsigned)bits : 128;
        return 0;
    }
    return IMS_EINVAL;
}

static int parse_exempt(struct ims_detect *d, const char *list, char *err, size_t errsz)
{
    const char *p = list, *end = list + strlen(list);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        ims_str item = ims_str_trim(ims_str_make(p, (size_t)((comma ? comma : end) - p)));
        p = comma ? comma + 1 : end;
        if (item.len == 0)
            continue;
        if (d->nexempt == IMS_DETECT_MAX_EXEMPT ||
            parse_prefix(item, &d->exempt[d->nexempt]) != 0) {
            snprintf(err, errsz, "[detect] exempt: bad or too many prefixes at '%.*s' (max %d)",
                     IMS_SF(item), IMS_DETECT_MAX_EXEMPT);
            return IMS_EINVAL;
        }
        d->nexempt++;
    }
    return 0;
}

static int check_cfg(const struct ims_detect_cfg *c, char *err, size_t errsz)
{
    if (c->sweep_users >= IMS_DETECT_MAX_USERS) {
        snprintf(err, errsz, "[detect] sweep_users: at most %d", IMS_DETECT_MAX_USERS - 1);
        return IMS_EINVAL;
    }
    if ((c->sweep_users && !c->sweep_window_s) || (c->malformed_max && !c->malformed_window_s)) {
        snprintf(err, errsz, "[detect] a detector needs a window of at least 1 s");
        return IMS_EINVAL;
    }
    return 0;
}

int ims_detect_new(const struct ims_detect_cfg *cfg, struct ims_detect **out, char *err,
                   size_t errsz)
{
    int rc = check_cfg(cfg, err, errsz);
    if (rc)
        return rc;
    struct ims_detect *d = ims_calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errsz, "out of memory");
        return IMS_ENOMEM;
    }
    d->cfg = *cfg;
    d->cfg.fingerprints = d->cfg.exempt = NULL; /* parsed below; not kept */
    rc = parse_fps(d, cfg->fingerprints ? cfg->fingerprints : IMS_DETECT_DEFAULT_FP, err, errsz);
    if (!rc && cfg->exempt)
        rc = parse_exempt(d, cfg->exempt, err, errsz);
    if (rc) {
        ims_free(d);
        return rc;
    }
    unsigned max = cfg->max_sources < DETECT_SHARDS ? DETECT_SHARDS : cfg->max_sources;
    d->per_shard = max / DETECT_SHARDS;
    d->all = ims_calloc((size_t)DETECT_SHARDS * d->per_shard, sizeof(*d->all));
    if (!d->all) {
        ims_free(d);
        snprintf(err, errsz, "out of memory");
        return IMS_ENOMEM;
    }
    for (size_t i = 0; i < DETECT_SHARDS; i++) {
        pthread_mutex_init(&d->shard[i].lock, NULL);
        d->shard[i].ent = d->all + i * d->per_shard;
    }
    *out = d;
    return 0;
}

void ims_detect_free(struct ims_detect *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < DETECT_SHARDS; i++)
        pthread_mutex_destroy(&d->shard[i].lock);
    ims_free(d->all);
    ims_free(d);
}

/* ------------------------------------------------------------ per source */

static int key_of(const struct sockaddr *src, struct src_key *k)
{
    memset(k, 0, sizeof(*k));
    return ims_sockaddr_ip_key(src, k->ip, &k->v6);
}

static uint32_t fnv(const void *p, size_t n, uint32_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static bool in_prefix(const struct prefix *pf, const struct src_key *k)
{
    if (pf->k.v6 != k->v6)
        return false;
    unsigned full = pf->bits / 8, rest = pf->bits % 8;
    if (memcmp(pf->k.ip, k->ip, full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (pf->k.ip[full] & mask) == (k->ip[full] & mask);
}

static bool exempt(const struct ims_detect *d, const struct src_key *k)
{
    for (size_t i = 0; i < d->nexempt; i++)
        if (in_prefix(&d->exempt[i], k))
            return true;
    return false;
}

/* The entry of k, locked (*sh set; unlock it), found or taken over: a free
 * entry, else the least recently seen of the shard.  O(per_shard). */
static struct src_ent *entry_lock(struct ims_detect *d, const struct src_key *k, uint64_t now,
                                  struct shard **sh)
{
    struct shard *s = &d->shard[fnv(k, sizeof(*k), 2166136261u) % DETECT_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct src_ent *lru = &s->ent[0];
    for (size_t i = 0; i < d->per_shard; i++) {
        struct src_ent *e = &s->ent[i];
        if (e->last_ms && memcmp(&e->k, k, sizeof(*k)) == 0) {
            e->last_ms = now;
            *sh = s;
            return e;
        }
        if (e->last_ms < lru->last_ms)
            lru = e;
    }
    memset(lru, 0, sizeof(*lru));
    lru->k = *k;
    lru->last_ms = now ? now : 1;
    *sh = s;
    return lru;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool ci_contains(ims_str hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= hay.len; i++) {
        size_t j = 0;
        while (j < n && lower(hay.p[i + j]) == lower(needle[j]))
            j++;
        if (j == n)
            return true;
    }
    return false;
}

static const char *fingerprint(const struct ims_detect *d, const struct sip_msg *m)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_USER_AGENT);
    for (; h; h = ims_sip_hdr_next(m, h))
        for (size_t i = 0; i < d->nfp; i++)
            if (ci_contains(h->value, d->fp[i]))
                return d->fp[i];
    return NULL;
}

/* The user a request probes: REGISTER names it in To, the others in the
 * Request-URI (To when the R-URI has none). */
static ims_str probed_user(const struct sip_msg *m)
{
    if (m->method != SIP_M_REGISTER && m->ruri.user.len)
        return m->ruri.user;
    return m->to.uri.user;
}

static bool sweep_method(enum sip_method mt)
{
    return mt == SIP_M_REGISTER || mt == SIP_M_OPTIONS || mt == SIP_M_INVITE ||
           mt == SIP_M_SUBSCRIBE || mt == SIP_M_MESSAGE;
}

/* Adds the user to e's window; true when the window now holds more than
 * sweep_users distinct users.  Shard lock held. */
static bool sweep_note(const struct ims_detect *d, struct src_ent *e, ims_str user, uint64_t now)
{
    if (now - e->sweep_start_ms >= (uint64_t)d->cfg.sweep_window_s * 1000u || !e->sweep_start_ms) {
        e->sweep_start_ms = now;
        e->nusers = 0;
    }
    uint32_t h = fnv(user.p, user.len, 2166136261u);
    for (size_t i = 0; i < e->nusers; i++)
        if (e->users[i] == h)
            return false;
    if (e->nusers < d->cfg.sweep_users) {
        e->users[e->nusers++] = h;
        return false;
    }
    return true;
}

/* A detection of kind k for e, unless e is quiet for k.  Shard lock held. */
static bool arm(const struct ims_detect *d, struct src_ent *e, enum ims_detect_kind k,
                uint64_t now)
{
    if (now < e->quiet_until_ms[k])
        return false;
    uint64_t quiet = (uint64_t)d->cfg.block_s * 1000u;
    e->quiet_until_ms[k] = now + (quiet > DETECT_QUIET_MIN_MS ? quiet : DETECT_QUIET_MIN_MS);
    return true;
}

/* ------------------------------------------------------------ detection */

static void on_detect(struct ims_detect *d, enum ims_detect_kind k, const struct sockaddr *src,
                      const char *detail)
{
    atomic_fetch_add(&d->count[k], 1);
    ims_metrics_inc(IMS_M_DETECTIONS);
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = src->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)src)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)src)->sin6_addr;
    inet_ntop(src->sa_family, a, ip, sizeof(ip));
    bool blocked = d->cfg.block_s && ims_acl_deny_dynamic(src, d->cfg.block_s * 1000u) == 0;
    if (blocked)
        ims_metrics_inc(IMS_M_DETECT_BLOCKS);
    LOG_W("detect", "event=attack_detected kind=%s src=%s detail=\"%s\" blocked_s=%u", kind_name[k],
          ip, detail, blocked ? d->cfg.block_s : 0);
    char text[160];
    snprintf(text, sizeof(text), "%s; %s", detail,
             blocked ? "source put in the dynamic deny group" : "source not blocked");
    /* CADF (DSP0262): a "monitor" event; the attack kind is the reason
     * code, the source the initiator (docs/security.md "Detection events"). */
    struct ims_audit_event ev = {
        .event_type = "monitor",
        .action = "monitor",
        .outcome = "success",
        .initiator_type = "network/node/host",
        .initiator_id = ims_str_cstr(ip),
        .initiator_addr = ims_str_cstr(ip),
        .target_type = "service/ims/edge",
        .target_name = IMS_S("imscloud"),
        .observer = "detect",
        .reason_type = "imscloud/detect",
        .reason_code = ims_str_cstr(kind_name[k]),
        .detail = ims_str_cstr(text),
    };
    ims_audit_emit(&ev);
}

int ims_detect_check_request(struct ims_detect *d, const struct sip_msg *m,
                             const struct sockaddr *src, uint64_t now_ms)
{
    struct src_key k;
    if (key_of(src, &k) || exempt(d, &k))
        return -1;
    const char *fp = fingerprint(d, m);
    ims_str user = probed_user(m);
    bool sweeping = d->cfg.sweep_users && sweep_method(m->method) && m->to.tag.len == 0 &&
                    user.len;
    if (!fp && !sweeping)
        return -1; /* nothing to note: no state taken */
    struct shard *s;
    struct src_ent *e = entry_lock(d, &k, now_ms, &s);
    int kind = -1;
    if (fp && arm(d, e, IMS_DETECT_SCANNER, now_ms))
        kind = IMS_DETECT_SCANNER;
    else if (!fp && sweep_note(d, e, user, now_ms) && arm(d, e, IMS_DETECT_SWEEP, now_ms))
        kind = IMS_DETECT_SWEEP;
    unsigned nusers = e->nusers;
    pthread_mutex_unlock(&s->lock);
    if (kind < 0)
        return -1;
    char detail[128];
    if (kind == IMS_DETECT_SCANNER)
        snprintf(detail, sizeof(detail), "user-agent matches '%s'", fp);
    else
        snprintf(detail, sizeof(detail), "more than %u distinct users in %u s (method %.*s)",
                 nusers, d->cfg.sweep_window_s, IMS_SF(m->method_name));
    on_detect(d, (enum ims_detect_kind)kind, src, detail);
    return kind;
}

int ims_detect_check_malformed(struct ims_detect *d, const struct sockaddr *src, uint64_t now_ms)
{
    struct src_key k;
    if (!d->cfg.malformed_max || key_of(src, &k) || exempt(d, &k))
        return -1;
    struct shard *s;
    struct src_ent *e = entry_lock(d, &k, now_ms, &s);
    if (!e->bad_start_ms ||
        now_ms - e->bad_start_ms >= (uint64_t)d->cfg.malformed_window_s * 1000u) {
        e->bad_start_ms = now_ms;
        e->nbad = 0;
    }
    bool hit = ++e->nbad > d->cfg.malformed_max && arm(d, e, IMS_DETECT_MALFORMED, now_ms);
    pthread_mutex_unlock(&s->lock);
    if (!hit)
        return -1;
    char detail[96];
    snprintf(detail, sizeof(detail), "more than %u malformed messages in %u s",
             d->cfg.malformed_max, d->cfg.malformed_window_s);
    on_detect(d, IMS_DETECT_MALFORMED, src, detail);
    return IMS_DETECT_MALFORMED;
}

size_t ims_detect_sources(struct ims_detect *d)
{
    size_t n = 0;
    for (size_t j = 0; j < DETECT_SHARDS; j++) {
        pthread_mutex_lock(&d->shard[j].lock);
        for (size_t i = 0; i < d->per_shard; i++)
            n += d->shard[j].ent[i].last_ms != 0;
        pthread_mutex_unlock(&d->shard[j].lock);
    }
    return n;
}

uint64_t ims_detect_count(struct ims_detect *d, enum ims_detect_kind k)
{
    return k < IMS_DETECT_NKINDS ? atomic_load(&d->count[k]) : 0;
}

/* ------------------------------------------------------------ process */

static _Atomic(struct ims_detect *) installed;

void ims_detect_install(struct ims_detect *d)
{
    atomic_store_explicit(&installed, d, memory_order_release);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1;
}

bool ims_detect_request(const struct sip_msg *m, const struct sockaddr *src)
{
    struct ims_detect *d = atomic_load_explicit(&installed, memory_order_acquire);
    return d && ims_detect_check_request(d, m, src, mono_ms()) >= 0 && d->cfg.block_s;
}

void ims_detect_malformed(const struct sockaddr *src)
{
    struct ims_detect *d = atomic_load_explicit(&installed, memory_order_acquire);
    if (d)
        (void)ims_detect_check_malformed(d, src, mono_ms());
}
