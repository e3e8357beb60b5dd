/* registrar.c - binding rules and the location store (registrar.h). */
#include "cscf/registrar.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cscf/reg_persist.h"
#include "cscf/table.h"
#include "sip/msg.h"

/* What the table keeps per key: an alias (data: the key of the registration
 * it belongs to) or a registration, each in one exact-size allocation: a
 * small header and the strings actually used, serialised.  struct ims_reg
 * with its fixed arrays is ~40 KiB and a contact ~2 KiB; a one-contact
 * registration packed is a few hundred bytes (bench/ims: the memory per
 * registered user).  Registration data, every string NUL-terminated:
 *   impi, service_route,
 *   nimpu x { barred ('0' or '1'), impu },
 *   ncontacts x { struct rec_fixed (unaligned: memcpy), uri, path, call_id,
 *                 instance }
 * Only pack() makes one (and restore_one(), from a record read back from
 * disk that packed_ok() checked first), so the readers trust its shape.
 * Every change of a registration is also queued for the disk when a
 * writer is attached (ims_loc_persist, reg_persist.h). */
struct loc_rec {
    struct ims_profile *profile; /* a reference, or NULL */
    int64_t registered_at;
    /* no contact expires before this (pack and drop_expired set it; 0:
     * unknown, a record restored from disk),
     * so the sweep skips the record without reading its contacts: with
     * 100 000 registrations it read every one each second, 6 % of a core
     * in an idle server */
    int64_t next_expiry;
    uint32_t len;                /* bytes in data */
    uint16_t nimpu, ncontacts;
    bool alias;
    char data[];
};

struct rec_fixed {
    int64_t expires;
    uint32_t cseq;
    uint32_t q;
    uint32_t reg_id; /* added in record format 2 (REG_PACKED_FORMAT) */
    uint32_t spare;  /* 0 */
};

/* Format 1 (before RFC 5626 flows) had no reg_id: restore_one() widens it. */
struct rec_fixed_v1 {
    int64_t expires;
    uint32_t cseq;
    uint32_t q;
};

struct ims_loc {
    struct cscf_table *t;
    struct reg_persist *persist; /* write-behind to disk (reg_persist.h), or NULL */
};

static void rec_free(void *v)
{
    struct loc_rec *r = v;
    if (!r)
        return;
    ims_profile_unref(r->profile);
    ims_free(r);
}

void ims_reg_clear(struct ims_reg *r)
{
    ims_profile_unref(r->profile);
    r->profile = NULL;
    r->ncontacts = 0;
    r->nimpu = 0;
    r->impu[0] = r->impi[0] = r->service_route[0] = '\0';
    r->registered_at = 0;
}

static void cpy(char *dst, size_t cap, ims_str s)
{
    ims_str_copy(s, dst, cap);
}

/* ------------------------------------------------------------ rules */

size_t ims_reg_expire_contacts(struct ims_reg *r, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < r->ncontacts; i++) {
        if (r->contacts[i].expires <= now)
            continue;
        if (k != i)
            r->contacts[k] = r->contacts[i];
        k++;
    }
    r->ncontacts = k;
    return k;
}

/* The contacts are kept in the order they were last registered (or
 * refreshed), oldest first, so a terminating request can prefer the newest
 * of equal ones (ims_reg_contact_pick) without a field of its own: the
 * packed and persisted records keep the array order. */
static void contact_remove(struct ims_reg *r, size_t k)
{
    memmove(&r->contacts[k], &r->contacts[k + 1],
            (r->ncontacts - k - 1) * sizeof(r->contacts[0]));
    r->ncontacts--;
}

static void contact_to_end(struct ims_reg *r, size_t k)
{
    if (k + 1 >= r->ncontacts)
        return;
    struct ims_reg_contact c = r->contacts[k];
    contact_remove(r, k);
    r->contacts[r->ncontacts++] = c;
}

const struct ims_reg_contact *ims_reg_contact_pick_next(const struct ims_reg *r,
                                                        ims_reg_skip_fn skip, void *ctx)
{
    const struct ims_reg_contact *best = NULL;
    for (size_t i = 0; i < r->ncontacts; i++) {
        const struct ims_reg_contact *c = &r->contacts[i];
        if (skip && skip(c, ctx))
            continue;
        if (!best || c->q > best->q || (c->q == best->q && c->expires >= best->expires))
            best = c;
    }
    return best;
}

const struct ims_reg_contact *ims_reg_contact_pick(const struct ims_reg *r)
{
    return ims_reg_contact_pick_next(r, NULL, NULL);
}

const struct ims_reg_contact *ims_reg_flow_pick(const struct ims_reg *r, const char *instance,
                                                const uint32_t *skip, size_t nskip)
{
    const struct ims_reg_contact *best = NULL;
    for (size_t i = 0; i < r->ncontacts; i++) {
        const struct ims_reg_contact *c = &r->contacts[i];
        if (!c->reg_id || !instance[0] || strcmp(c->instance, instance) != 0)
            continue;
        bool skipped = false;
        for (size_t k = 0; k < nskip && !skipped; k++)
            skipped = skip[k] == c->reg_id;
        if (skipped)
            continue;
        if (!best || c->q > best->q || (c->q == best->q && c->expires >= best->expires))
            best = c;
    }
    return best;
}

/* RFC 3261 §10.3 step 6, RFC 5627, RFC 5626 §6: the stored contact this
 * binding names: same +sip.instance and same reg-id (0 for none: an
 * instance's outbound flows and its plain binding are distinct bindings)
 * when both have an instance, else equal URIs (§19.1.4).  -1 if none. */
static long find_contact(const struct ims_reg *r, const struct ims_reg_binding *b)
{
    struct sip_uri bu;
    bool bu_ok = ims_sip_parse_uri(b->uri, &bu) == 0;
    for (size_t i = 0; i < r->ncontacts; i++) {
        const struct ims_reg_contact *c = &r->contacts[i];
        if (b->instance.len && c->instance[0]) {
            if (b->reg_id == c->reg_id && ims_str_eq(b->instance, ims_str_cstr(c->instance)))
                return (long)i;
            continue;
        }
        struct sip_uri cu;
        if (bu_ok && ims_sip_parse_uri(ims_str_cstr(c->uri), &cu) == 0) {
            if (ims_sip_uri_equal(&bu, &cu))
                return (long)i;
        } else if (ims_str_eq(b->uri, ims_str_cstr(c->uri))) {
            return (long)i;
        }
    }
    return -1;
}

static long binding_expires(const struct ims_reg_binding *b, const struct ims_reg_req *rq,
                            const struct ims_reg_policy *pol)
{
    if (b->expires >= 0)
        return b->expires;
    if (rq->hdr_expires >= 0)
        return rq->hdr_expires;
    return pol->default_expires;
}

int ims_reg_apply(struct ims_reg *r, const struct ims_reg_req *rq, const struct ims_reg_policy *pol,
                  int64_t now, unsigned *min_out)
{
    ims_reg_expire_contacts(r, now);
    if (rq->star) {
        /* §10.2.2: "*" only alone and with Expires: 0 */
        if (rq->n || rq->hdr_expires != 0)
            return 400;
        for (size_t i = 0; i < r->ncontacts; i++)
            if (ims_str_eq(rq->call_id, ims_str_cstr(r->contacts[i].call_id)) &&
                rq->cseq <= r->contacts[i].cseq)
                return 500;
        r->ncontacts = 0;
        return 0;
    }
    /* §10.3 step 7 checks first, so that a refused request changes nothing */
    for (size_t i = 0; i < rq->n; i++) {
        long e = binding_expires(&rq->b[i], rq, pol);
        if (e > 0 && (unsigned long)e < pol->min_expires) {
            if (min_out)
                *min_out = pol->min_expires;
            return 423;
        }
        long k = find_contact(r, &rq->b[i]);
        if (k >= 0 && ims_str_eq(rq->call_id, ims_str_cstr(r->contacts[k].call_id)) &&
            rq->cseq <= r->contacts[k].cseq)
            return 500;
    }
    unsigned maxc = pol->max_contacts && pol->max_contacts <= IMS_REG_MAX_CONTACTS
                        ? pol->max_contacts
                        : IMS_REG_MAX_CONTACTS;
    for (size_t i = 0; i < rq->n; i++) {
        const struct ims_reg_binding *b = &rq->b[i];
        long e = binding_expires(b, rq, pol);
        if ((unsigned long)e > pol->max_expires)
            e = pol->max_expires;
        long k = find_contact(r, b);
        if (e == 0) {
            if (k >= 0)
                contact_remove(r, (size_t)k);
            continue;
        }
        if (k < 0) {
            if (r->ncontacts < maxc) {
                k = (long)r->ncontacts++;
            } else {
                /* full: the binding expiring first makes room */
                k = 0;
                for (size_t j = 1; j < r->ncontacts; j++)
                    if (r->contacts[j].expires < r->contacts[k].expires)
                        k = (long)j;
                LOG_I("scscf", "event=contact_replaced impu=%s old=\"%s\"", r->impu,
                      r->contacts[k].uri);
            }
            memset(&r->contacts[k], 0, sizeof(r->contacts[k]));
        }
        struct ims_reg_contact *c = &r->contacts[k];
        cpy(c->uri, sizeof(c->uri), b->uri);
        cpy(c->path, sizeof(c->path), rq->path);
        cpy(c->call_id, sizeof(c->call_id), rq->call_id);
        cpy(c->instance, sizeof(c->instance), b->instance);
        c->reg_id = b->instance.len ? b->reg_id : 0;
        c->cseq = rq->cseq;
        c->q = b->q;
        c->expires = now + e;
        contact_to_end(r, (size_t)k);
    }
    return 0;
}

/* ------------------------------------------------------------ packing */

/* The string at p and the position after its NUL. */
static const char *skip_str(const char *p)
{
    return p + strlen(p) + 1;
}

static size_t contact_packed_len(const char *c)
{
    const char *p = c + sizeof(struct rec_fixed);
    for (int i = 0; i < 4; i++)
        p = skip_str(p);
    return (size_t)(p - c);
}

static int64_t contact_packed_expires(const char *c)
{
    struct rec_fixed f;
    memcpy(&f, c, sizeof(f));
    return f.expires;
}

/* The first packed IMPU (barred flag first) and the first packed contact. */
static const char *rec_impus(const struct loc_rec *rec)
{
    return skip_str(skip_str(rec->data));
}

static const char *rec_contacts(const struct loc_rec *rec)
{
    const char *p = rec_impus(rec);
    for (size_t i = 0; i < rec->nimpu; i++)
        p = skip_str(p + 1);
    return p;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(p, s, n);
    return p + n;
}

static struct loc_rec *rec_alloc(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct loc_rec *rec = ims_calloc(1, sizeof(*rec) + len);
    if (rec)
        rec->len = (uint32_t)len;
    return rec;
}

/* rec -> view (the registration r->impu names). */
static void unpack(const struct loc_rec *rec, struct ims_reg *r)
{
    const char *p = rec->data;
    ims_cstr_copy(p, r->impi, sizeof(r->impi));
    p = skip_str(p);
    ims_cstr_copy(p, r->service_route, sizeof(r->service_route));
    p = skip_str(p);
    r->nimpu = 0;
    for (size_t i = 0; i < rec->nimpu; i++, p = skip_str(p + 1)) {
        if (i >= IMS_REG_MAX_IMPUS)
            continue;
        r->barred[i] = p[0] == '1';
        ims_cstr_copy(p + 1, r->impus[i], sizeof(r->impus[i]));
        r->nimpu++;
    }
    r->ncontacts = 0;
    for (size_t i = 0; i < rec->ncontacts && i < IMS_REG_MAX_CONTACTS; i++) {
        struct ims_reg_contact *c = &r->contacts[i];
        struct rec_fixed f;
        memcpy(&f, p, sizeof(f));
        c->expires = f.expires;
        c->cseq = f.cseq;
        c->q = f.q;
        c->reg_id = f.reg_id;
        p += sizeof(f);
        ims_cstr_copy(p, c->uri, sizeof(c->uri));
        p = skip_str(p);
        ims_cstr_copy(p, c->path, sizeof(c->path));
        p = skip_str(p);
        ims_cstr_copy(p, c->call_id, sizeof(c->call_id));
        p = skip_str(p);
        ims_cstr_copy(p, c->instance, sizeof(c->instance));
        p = skip_str(p);
        r->ncontacts++;
    }
    ims_profile_unref(r->profile);
    r->profile = ims_profile_ref(rec->profile);
    r->registered_at = rec->registered_at;
}

/* view -> a new rec of exactly the size it needs.  NULL on allocation
 * failure. */
static struct loc_rec *pack(const struct ims_reg *r)
{
    size_t nimpu = r->nimpu < IMS_REG_MAX_IMPUS ? r->nimpu : IMS_REG_MAX_IMPUS;
    size_t nc = r->ncontacts < IMS_REG_MAX_CONTACTS ? r->ncontacts : IMS_REG_MAX_CONTACTS;
    size_t len = strlen(r->impi) + 1 + strlen(r->service_route) + 1;
    for (size_t i = 0; i < nimpu; i++)
        len += 1 + strlen(r->impus[i]) + 1;
    for (size_t i = 0; i < nc; i++) {
        const struct ims_reg_contact *c = &r->contacts[i];
        len += sizeof(struct rec_fixed) + strlen(c->uri) + 1 + strlen(c->path) + 1 +
               strlen(c->call_id) + 1 + strlen(c->instance) + 1;
    }
    struct loc_rec *rec = rec_alloc(len);
    if (!rec)
        return NULL;
    char *p = put_str(rec->data, r->impi);
    p = put_str(p, r->service_route);
    for (size_t i = 0; i < nimpu; i++) {
        *p++ = r->barred[i] ? '1' : '0';
        p = put_str(p, r->impus[i]);
    }
    for (size_t i = 0; i < nc; i++) {
        const struct ims_reg_contact *c = &r->contacts[i];
        struct rec_fixed f = { .expires = c->expires, .cseq = c->cseq, .q = c->q,
                               .reg_id = c->reg_id };
        memcpy(p, &f, sizeof(f));
        p += sizeof(f);
        p = put_str(p, c->uri);
        p = put_str(p, c->path);
        p = put_str(p, c->call_id);
        p = put_str(p, c->instance);
    }
    rec->nimpu = (uint16_t)nimpu;
    rec->ncontacts = (uint16_t)nc;
    rec->profile = ims_profile_ref(r->profile);
    rec->registered_at = r->registered_at;
    /* known now: the expiry sweep need not visit the record to learn it */
    rec->next_expiry = INT64_MAX;
    for (size_t i = 0; i < nc; i++)
        if (r->contacts[i].expires < rec->next_expiry)
            rec->next_expiry = r->contacts[i].expires;
    return rec;
}

/* An alias entry naming key.  NULL on allocation failure. */
static struct loc_rec *pack_alias(const char *key)
{
    struct loc_rec *rec = rec_alloc(strlen(key) + 1);
    if (!rec)
        return NULL;
    rec->alias = true;
    put_str(rec->data, key);
    return rec;
}

/* ---- write-behind (reg_persist.h): called with the key's shard locked,
 * so the queue holds the changes of one key in the order they happened */

static int64_t rec_latest_expiry(const struct loc_rec *rec)
{
    int64_t latest = 0;
    const char *p = rec_contacts(rec);
    for (size_t i = 0; i < rec->ncontacts; i++, p += contact_packed_len(p))
        if (contact_packed_expires(p) > latest)
            latest = contact_packed_expires(p);
    return latest;
}

static void rec_view(const char *key, const struct loc_rec *rec, struct reg_packed *out)
{
    *out = (struct reg_packed){ .key = key, .data = rec->data, .len = rec->len,
                                .nimpu = rec->nimpu, .ncontacts = rec->ncontacts,
                                .registered_at = rec->registered_at,
                                .expires = rec_latest_expiry(rec), .profile = rec->profile };
}

static void persist_put(struct ims_loc *l, const char *key, const struct loc_rec *rec)
{
    if (!l->persist)
        return;
    struct reg_packed v;
    rec_view(key, rec, &v);
    reg_persist_put(l->persist, &v);
}

static void persist_del(struct ims_loc *l, const char *key)
{
    if (l->persist)
        reg_persist_del(l->persist, key);
}

/* rec without its contacts that expired by now: a new, smaller record (the
 * profile reference moves to it), rec itself when none expired, or NULL
 * when none is left or the allocation failed (*none_left tells which). */
static struct loc_rec *drop_expired(struct loc_rec *rec, int64_t now, bool *none_left)
{
    const char *first = rec_contacts(rec), *p = first;
    size_t keep = 0, keep_len = 0;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < rec->ncontacts; i++) {
        size_t n = contact_packed_len(p);
        int64_t e = contact_packed_expires(p);
        if (e > now) {
            keep++;
            keep_len += n;
            if (e < next)
                next = e;
        }
        p += n;
    }
    *none_left = keep == 0;
    if (keep == rec->ncontacts) {
        rec->next_expiry = next;
        return rec;
    }
    if (keep == 0)
        return NULL;
    size_t head = (size_t)(first - rec->data);
    struct loc_rec *n = rec_alloc(head + keep_len);
    if (!n)
        return NULL;
    memcpy(n->data, rec->data, head);
    char *out = n->data + head;
    p = first;
    for (size_t i = 0; i < rec->ncontacts; i++) {
        size_t cl = contact_packed_len(p);
        if (contact_packed_expires(p) > now) {
            memcpy(out, p, cl);
            out += cl;
        }
        p += cl;
    }
    n->nimpu = rec->nimpu;
    n->ncontacts = (uint16_t)keep;
    n->registered_at = rec->registered_at;
    n->next_expiry = next;
    n->profile = rec->profile;
    rec->profile = NULL;
    return n;
}

/* ------------------------------------------------------------ store */

/* The sweep's due time: its first contact's expiry (pack and drop_expired
 * set it); an alias never. */
static int64_t rec_due(const void *v, void *ctx)
{
    (void)ctx;
    const struct loc_rec *rec = v;
    return rec->alias ? INT64_MAX : rec->next_expiry;
}

int ims_loc_new(size_t max_entries, unsigned nshards, struct ims_loc **out)
{
    struct ims_loc *l = ims_calloc(1, sizeof(*l));
    if (!l)
        return IMS_ENOMEM;
    int rc = cscf_table_new(nshards, max_entries, rec_free, &l->t);
    if (rc == 0 && (rc = cscf_table_set_due(l->t, rec_due, NULL)) != 0)
        cscf_table_free(l->t);
    if (rc) {
        ims_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void ims_loc_free(struct ims_loc *l)
{
    if (!l)
        return;
    reg_persist_close(l->persist); /* drains the queue before the table goes */
    cscf_table_free(l->t);
    ims_free(l);
}

size_t ims_loc_count(const struct ims_loc *l)
{
    return cscf_table_count(l->t);
}

struct get_ctx {
    struct ims_reg *out;
    char alias[IMS_REG_ID_MAX];
    bool found;
};

static int get_fn(void **val, bool room, void *ctx)
{
    struct get_ctx *g = ctx;
    struct loc_rec *rec = *val;
    if (!rec)
        return IMS_ENOENT;
    if (rec->alias) {
        ims_cstr_copy(rec->data, g->alias, sizeof(g->alias));
        return 0;
    }
    unpack(rec, g->out);
    g->found = true;
    return 0;
}

/* Finds the key impu belongs to and copies its registration. */
static int lookup(struct ims_loc *l, ims_str impu, struct ims_reg *out)
{
    struct get_ctx g = { .out = out };
    int rc = cscf_table_with(l->t, impu, get_fn, &g);
    if (rc)
        return rc;
    if (g.found) {
        ims_str_copy(impu, out->impu, sizeof(out->impu));
        return 0;
    }
    /* an alias: one more hop (an alias never names another alias) */
    char key[IMS_REG_ID_MAX];
    ims_cstr_copy(g.alias, key, sizeof(key));
    g.alias[0] = '\0';
    rc = cscf_table_with(l->t, ims_str_cstr(key), get_fn, &g);
    if (rc)
        return rc;
    if (!g.found)
        return IMS_ENOENT; /* a stale alias (its registration just went) */
    ims_cstr_copy(key, out->impu, sizeof(out->impu));
    return 0;
}

struct prof_ctx {
    struct ims_profile *p;
    char alias[IMS_REG_ID_MAX];
};

static int prof_fn(void **val, bool room, void *ctx)
{
    struct prof_ctx *c = ctx;
    struct loc_rec *rec = *val;
    if (!rec)
        return IMS_ENOENT;
    if (rec->alias)
        ims_cstr_copy(rec->data, c->alias, sizeof(c->alias));
    else
        c->p = ims_profile_ref(rec->profile); /* under the shard's lock */
    return 0;
}

struct ims_profile *ims_loc_profile(struct ims_loc *l, ims_str impu)
{
    struct prof_ctx c = { .p = NULL };
    c.alias[0] = '\0';
    if (cscf_table_with(l->t, impu, prof_fn, &c) != 0)
        return NULL;
    if (c.alias[0]) { /* one more hop: an alias never names another alias */
        char key[IMS_REG_ID_MAX];
        ims_cstr_copy(c.alias, key, sizeof(key));
        c.alias[0] = '\0';
        if (cscf_table_with(l->t, ims_str_cstr(key), prof_fn, &c) != 0)
            return NULL;
    }
    return c.p;
}

int ims_loc_get(struct ims_loc *l, ims_str impu, int64_t now, struct ims_reg *out)
{
    out->profile = NULL;
    ims_reg_clear(out);
    int rc = lookup(l, impu, out);
    if (rc == 0 && ims_reg_expire_contacts(out, now) == 0)
        rc = IMS_ENOENT;
    if (rc)
        ims_reg_clear(out);
    return rc;
}

/* ---- update ---- */

struct upd_ctx {
    struct ims_loc *l;
    struct ims_reg *r;
    int64_t now;
    ims_loc_update_fn fn;
    void *fn_ctx;
    /* the set before and after, for the aliases */
    size_t nold;
    char (*old)[IMS_REG_ID_MAX];
    bool is_alias;        /* the key turned out to be an alias: retry with alias_of */
    char alias_of[IMS_REG_ID_MAX];
    bool removed;
    bool queued_new;      /* a new key's record was queued for the disk */
};

static int upd_fn(void **val, bool room, void *ctx)
{
    struct upd_ctx *u = ctx;
    struct loc_rec *rec = *val;
    if (rec && rec->alias) {
        u->is_alias = true;
        ims_cstr_copy(rec->data, u->alias_of, sizeof(u->alias_of));
        return 0;
    }
    char key[IMS_REG_ID_MAX];
    ims_cstr_copy(u->r->impu, key, sizeof(key));
    u->r->profile = NULL;
    ims_reg_clear(u->r);
    ims_cstr_copy(key, u->r->impu, sizeof(u->r->impu));
    if (rec) {
        unpack(rec, u->r);
        const char *p = rec_impus(rec);
        for (size_t i = 0; i < rec->nimpu && i < IMS_REG_MAX_IMPUS; i++, p = skip_str(p + 1))
            ims_cstr_copy(p + 1, u->old[u->nold++], IMS_REG_ID_MAX);
    }
    ims_reg_expire_contacts(u->r, u->now);
    int rc = u->fn(u->r, u->fn_ctx);
    if (rc)
        return rc;
    if (u->r->ncontacts == 0) {
        *val = NULL;
        if (rec)
            persist_del(u->l, key);
        rec_free(rec);
        u->removed = true;
        return 0;
    }
    if (!rec && !room)
        return IMS_ELIMIT;
    struct loc_rec *n = pack(u->r);
    if (!n)
        return IMS_ENOMEM;
    persist_put(u->l, key, n);
    u->queued_new = !rec;
    rec_free(rec);
    *val = n;
    return 0;
}

struct alias_ctx {
    const char *key;
    bool set; /* true: make it an alias of key; false: remove it if it is one of key */
};

static int alias_fn(void **val, bool room, void *ctx)
{
    struct alias_ctx *a = ctx;
    struct loc_rec *rec = *val;
    if (a->set) {
        if (rec && !rec->alias)
            return 0; /* registered on its own (should not happen in one set): leave it */
        if (rec && strcmp(rec->data, a->key) == 0)
            return 0;
        if (!room)
            return IMS_ELIMIT;
        struct loc_rec *n = pack_alias(a->key);
        if (!n)
            return IMS_ENOMEM;
        rec_free(rec);
        *val = n;
        return 0;
    }
    if (rec && rec->alias && strcmp(rec->data, a->key) == 0) {
        rec_free(rec);
        *val = NULL;
    }
    return 0;
}

int ims_loc_update(struct ims_loc *l, ims_str impu, int64_t now, struct ims_reg *scratch,
                   ims_loc_update_fn fn, void *ctx)
{
    if (impu.len == 0 || impu.len >= IMS_REG_ID_MAX)
        return IMS_EINVAL;
    char(*old)[IMS_REG_ID_MAX] = ims_alloc((size_t)IMS_REG_MAX_IMPUS * IMS_REG_ID_MAX); /* to nold */
    if (!old)
        return IMS_ENOMEM;
    struct upd_ctx u = { .l = l, .r = scratch, .now = now, .fn = fn, .fn_ctx = ctx, .old = old };
    scratch->profile = NULL;
    ims_reg_clear(scratch);
    ims_str_copy(impu, scratch->impu, sizeof(scratch->impu));
    int rc = cscf_table_with(l->t, impu, upd_fn, &u);
    if (rc == 0 && u.is_alias) {
        /* impu is an alias: update the registration it belongs to */
        u.is_alias = false;
        ims_cstr_copy(u.alias_of, scratch->impu, sizeof(scratch->impu));
        rc = cscf_table_with(l->t, ims_str_cstr(u.alias_of), upd_fn, &u);
        if (rc == 0 && u.is_alias)
            rc = IMS_EPROTO; /* an alias of an alias: never made */
    }
    if (rc == IMS_ENOMEM && u.queued_new && l->persist)
        reg_persist_resync(l->persist); /* queued, but the table had no memory for the entry */
    if (rc == 0) {
        /* the aliases: new members of the set point at the key, members
         * that left (or all, when the registration went) are removed */
        struct alias_ctx a = { .key = scratch->impu };
        size_t nnew = u.removed ? 0 : scratch->nimpu;
        for (size_t i = 0; i < nnew; i++) {
            if (strcmp(scratch->impus[i], scratch->impu) == 0)
                continue;
            a.set = true;
            int arc = cscf_table_with(l->t, ims_str_cstr(scratch->impus[i]), alias_fn, &a);
            if (arc)
                LOG_W("scscf", "event=alias_failed impu=%s alias=%s err=%s", scratch->impu,
                      scratch->impus[i], ims_strerror(arc));
        }
        for (size_t i = 0; i < u.nold; i++) {
            if (strcmp(old[i], scratch->impu) == 0)
                continue;
            bool still = false;
            for (size_t k = 0; k < nnew && !still; k++)
                still = strcmp(scratch->impus[k], old[i]) == 0;
            if (still)
                continue;
            a.set = false;
            cscf_table_with(l->t, ims_str_cstr(old[i]), alias_fn, &a);
        }
    }
    ims_reg_clear(scratch);
    ims_free(old);
    return rc;
}

static int always_remove(struct ims_reg *r, void *ctx)
{
    r->ncontacts = 0;
    return 0;
}

int ims_loc_remove(struct ims_loc *l, ims_str impu)
{
    struct ims_reg *scratch = ims_calloc(1, sizeof(*scratch));
    if (!scratch)
        return IMS_ENOMEM;
    struct ims_reg *probe = ims_calloc(1, sizeof(*probe));
    if (!probe) {
        ims_free(scratch);
        return IMS_ENOMEM;
    }
    int rc = lookup(l, impu, probe);
    ims_reg_clear(probe);
    ims_free(probe);
    if (rc == 0)
        rc = ims_loc_update(l, impu, 0, scratch, always_remove, NULL);
    ims_free(scratch);
    return rc;
}

/* ---- expiry ---- */

#define EXPIRE_BATCH 256

struct gone_item {
    char impu[IMS_REG_ID_MAX];
    struct loc_rec *rec; /* taken out of the table */
};

struct exp_ctx {
    struct ims_loc *l;
    int64_t now;
    struct gone_item *items;
    size_t n;
};

static void exp_visit(ims_str key, void **val, void *ctx)
{
    struct exp_ctx *x = ctx;
    struct loc_rec *rec = *val;
    if (!rec || rec->alias || rec->next_expiry > x->now)
        return;
    bool none_left = false;
    struct loc_rec *n = drop_expired(rec, x->now, &none_left);
    if (!none_left) {
        if (n && n != rec) {
            rec_free(rec);
            *val = n;
        }
        /* n == NULL: no memory for the smaller copy; get() filters, the
         * next sweep tries again */
        return;
    }
    if (x->n == EXPIRE_BATCH)
        return;
    struct gone_item *g = &x->items[x->n++];
    ims_str_copy(key, g->impu, sizeof(g->impu));
    g->rec = rec;
    *val = NULL;
    persist_del(x->l, g->impu);
}

size_t ims_loc_expire(struct ims_loc *l, unsigned first, unsigned step, int64_t now,
                      void (*gone)(const char *impu, const char *impi, void *ctx), void *ctx)
{
    struct gone_item *items = ims_calloc(EXPIRE_BATCH, sizeof(*items));
    if (!items)
        return 0; /* the next sweep tries again */
    struct exp_ctx x = { .l = l, .now = now, .items = items };
    cscf_table_sweep_due(l->t, first, step, now, exp_visit, &x);
    for (size_t i = 0; i < x.n; i++) {
        struct gone_item *g = &items[i];
        struct alias_ctx a = { .key = g->impu, .set = false };
        const char *p = rec_impus(g->rec);
        for (size_t k = 0; k < g->rec->nimpu; k++, p = skip_str(p + 1))
            if (strcmp(p + 1, g->impu) != 0)
                cscf_table_with(l->t, ims_str_cstr(p + 1), alias_fn, &a);
        if (gone)
            gone(g->impu, g->rec->data, ctx); /* data starts with the IMPI */
        rec_free(g->rec);
    }
    ims_free(items);
    return x.n;
}

/* ------------------------------------------------------------ persistence */

/* The packed data of a record read back from disk has the shape pack()
 * gives it: nimpu x (flag, string) and ncontacts x (fixed part, 4 strings)
 * after two strings, exactly len bytes.  The readers above trust that
 * shape, so a record from outside the process is checked first. */
static bool str_in(const char **p, const char *end)
{
    const char *z = memchr(*p, '\0', (size_t)(end - *p));
    if (!z || z - *p >= IMS_REG_PATH_MAX)
        return false;
    *p = z + 1;
    return true;
}

static bool packed_ok(const struct reg_packed *v, size_t fixed_len)
{
    const char *p = v->data, *end = v->data + v->len;
    /* the store never holds a registration without a contact or without
     * its set of IMPUs (the one it registered with at least): a row that
     * says so is not one of ours (found by fuzz_reg_load) */
    if (v->ncontacts == 0 || v->nimpu == 0 || v->nimpu > IMS_REG_MAX_IMPUS ||
        v->ncontacts > IMS_REG_MAX_CONTACTS || !str_in(&p, end) || !str_in(&p, end))
        return false;
    for (size_t i = 0; i < v->nimpu; i++) {
        if (p == end || (p[0] != '0' && p[0] != '1'))
            return false;
        p++;
        if (!str_in(&p, end))
            return false;
    }
    for (size_t i = 0; i < v->ncontacts; i++) {
        if ((size_t)(end - p) < fixed_len)
            return false;
        p += fixed_len;
        for (int k = 0; k < 4; k++)
            if (!str_in(&p, end))
                return false;
    }
    return p == end;
}

static int put_fn(void **val, bool room, void *ctx)
{
    if (!*val && !room)
        return IMS_ELIMIT;
    rec_free(*val);
    *val = ctx;
    return 0;
}

struct restore_ctx {
    struct ims_loc *l;
    int64_t now;
    struct ims_buf *lapsed; /* "impu\0impi\0" of each lapsed one, or NULL */
};

/* A format 1 record (checked by packed_ok) widened to the current
 * format: each contact's fixed part gains reg_id 0.  NULL on allocation
 * failure. */
static struct loc_rec *rec_from_v1(const struct reg_packed *v)
{
    size_t grow = sizeof(struct rec_fixed) - sizeof(struct rec_fixed_v1);
    struct loc_rec *rec = rec_alloc(v->len + v->ncontacts * grow);
    if (!rec)
        return NULL;
    const char *p = v->data;
    p = skip_str(skip_str(p));
    for (size_t i = 0; i < v->nimpu; i++)
        p = skip_str(p + 1);
    size_t head = (size_t)(p - v->data);
    memcpy(rec->data, v->data, head);
    char *out = rec->data + head;
    for (size_t i = 0; i < v->ncontacts; i++) {
        struct rec_fixed_v1 old;
        memcpy(&old, p, sizeof(old));
        p += sizeof(old);
        struct rec_fixed f = { .expires = old.expires, .cseq = old.cseq, .q = old.q };
        memcpy(out, &f, sizeof(f));
        out += sizeof(f);
        const char *strs = p;
        for (int k = 0; k < 4; k++)
            p = skip_str(p);
        memcpy(out, strs, (size_t)(p - strs));
        out += p - strs;
    }
    return rec;
}

/* One registration from disk into the table, with its aliases.  0,
 * IMS_EPROTO (a bad record), IMS_ENOENT (every contact expired),
 * IMS_ELIMIT, IMS_ENOMEM. */
static int restore_one(const struct reg_packed *v, void *ctx)
{
    struct restore_ctx *x = ctx;
    bool v1 = v->format == 1;
    if (!v->key[0] || strlen(v->key) >= IMS_REG_ID_MAX ||
        !packed_ok(v, v1 ? sizeof(struct rec_fixed_v1) : sizeof(struct rec_fixed)))
        return IMS_EPROTO;
    if (v->expires <= x->now) { /* lapsed while we were down; the impi comes first */
        if (x->lapsed && (ims_buf_add(x->lapsed, v->key, strlen(v->key) + 1) != 0 ||
                          ims_buf_add(x->lapsed, v->data, strlen(v->data) + 1) != 0)) {
            /* the buffer is gone with the failed add (base/buf.h): none is told */
            LOG_W("scscf", "event=registrations_lapsed_untold why=\"too many, or no memory\"");
            x->lapsed = NULL;
        }
        return IMS_ENOENT;
    }
    struct loc_rec *rec = v1 ? rec_from_v1(v) : rec_alloc(v->len);
    if (!rec)
        return IMS_ENOMEM;
    if (!v1)
        memcpy(rec->data, v->data, v->len);
    rec->nimpu = v->nimpu;
    rec->ncontacts = v->ncontacts;
    rec->registered_at = v->registered_at;
    rec->profile = ims_profile_ref(v->profile);
    bool none_left = false;
    struct loc_rec *n = drop_expired(rec, x->now, &none_left);
    if (n != rec)
        rec_free(rec);
    if (!n)
        return none_left ? IMS_ENOENT : IMS_ENOMEM;
    int rc = cscf_table_with(x->l->t, ims_str_cstr(v->key), put_fn, n);
    if (rc == IMS_ELIMIT)
        rec_free(n); /* put_fn refused it: still ours */
    if (rc)
        return rc;
    /* its aliases (the set's other identities), as ims_loc_update makes them */
    struct alias_ctx a = { .key = v->key, .set = true };
    const char *p = rec_impus(n), *stop = v->key;
    for (size_t k = 0; k < v->nimpu; k++, p = skip_str(p + 1)) {
        if (strcmp(p + 1, stop) == 0)
            continue;
        int arc = cscf_table_with(x->l->t, ims_str_cstr(p + 1), alias_fn, &a);
        if (arc)
            LOG_W("scscf", "event=alias_failed impu=%s alias=%s err=%s", v->key, p + 1,
                  ims_strerror(arc));
    }
    return 0;
}

/* ---- resync: the writer rewrites the file from the table, one shard at
 * a time (copied under the shard's lock, written after it is released) */

struct snap_item {
    struct snap_item *next;
    char key[IMS_REG_ID_MAX];
    struct loc_rec *rec;   /* a copy, with its own profile reference */
};

struct snap_ctx {
    struct snap_item *head;
    bool failed;           /* a copy failed: the writer must try again */
};

static void snap_visit(ims_str key, void **val, void *ctx)
{
    struct snap_ctx *s = ctx;
    const struct loc_rec *rec = *val;
    if (!rec || rec->alias || s->failed)
        return;
    struct snap_item *it = ims_calloc(1, sizeof(*it));
    struct loc_rec *c = it ? rec_alloc(rec->len) : NULL;
    if (!c) {
        ims_free(it);
        s->failed = true;
        return;
    }
    memcpy(c, rec, sizeof(*c) + rec->len);
    c->profile = ims_profile_ref(rec->profile);
    ims_str_copy(key, it->key, sizeof(it->key));
    it->rec = c;
    it->next = s->head;
    s->head = it;
}

static void snapshot(reg_persist_emit_fn emit, struct reg_persist *p, void *ctx)
{
    struct ims_loc *l = ctx;
    unsigned n = cscf_table_shards(l->t);
    bool failed = false;
    for (unsigned i = 0; i < n; i++) {
        struct snap_ctx s = { 0 };
        cscf_table_sweep(l->t, i, n, snap_visit, &s);
        failed |= s.failed;
        while (s.head) {
            struct snap_item *it = s.head;
            s.head = it->next;
            struct reg_packed v;
            rec_view(it->key, it->rec, &v);
            emit(p, &v);
            rec_free(it->rec);
            ims_free(it);
        }
    }
    if (failed)
        reg_persist_resync(p); /* out of memory: the next batch tries again */
}

int ims_loc_persist(struct ims_loc *l, const char *path, int64_t now, struct ims_buf *lapsed,
                    char *err, size_t errsz)
{
    struct reg_persist *p = NULL;
    int rc = reg_persist_open(path, &p, err, errsz);
    if (rc)
        return rc;
    struct restore_ctx x = { .l = l, .now = now, .lapsed = lapsed };
    size_t loaded = 0, dropped = 0;
    rc = reg_persist_load(p, now, restore_one, &x, &loaded, &dropped);
    if (rc == 0)
        rc = reg_persist_start(p, snapshot, l);
    if (rc) {
        snprintf(err, errsz, "scscf: cannot load the registrations from %s: %s", path,
                 ims_strerror(rc));
        reg_persist_close(p);
        return rc;
    }
    l->persist = p;
    LOG_N("scscf", "event=registrations_restored path=%s n=%zu dropped=%zu entries=%zu", path,
          loaded, dropped, ims_loc_count(l));
    return 0;
}

struct reg_persist *ims_loc_persister(struct ims_loc *l)
{
    return l->persist;
}
