/* ifc.c - initial filter criteria evaluation (ifc.h; TS 29.228 Annex B.2.2
 * and Annex C).
 *
 * Each SPT is evaluated once per call, then combined by its groups (CNF or
 * DNF).  Regular expressions are POSIX extended and case-sensitive (a
 * Request-URI's user part and a header's content are; the operator's
 * pattern decides otherwise); only header names compare case-insensitively
 * (RFC 3261 §7.3.1).
 *
 * Compiled patterns are cached per thread (RE_CACHE slots, least recently
 * used goes), keyed by the pattern's address in its profile and checked
 * against a copy of its text, since a freed profile's address may come back
 * with another pattern.  A worker evaluating the same few profiles compiles
 * each pattern once; the cache is freed when its thread ends (a pthread key
 * destructor).  Without memory for it, a pattern is compiled per use. */
#include "cscf/ifc.h"

#include <pthread.h>
#include <regex.h>
#include <string.h>

#include "base/alloc.h"

#define IFC_SUBJECT_STACK 1024 /* subjects longer than this are copied to the heap */
#define RE_CACHE 32

/* ------------------------------------------------------------ regex cache */

struct re_slot {
    const char *key; /* the pattern's address in its profile */
    char *pat;       /* our copy of its text; NULL: the slot is free */
    regex_t re;
    bool ok; /* compiled (a pattern that does not compile is cached too) */
    unsigned long used;
};

struct re_cache {
    struct re_slot s[RE_CACHE];
    unsigned long tick;
};

static pthread_key_t re_key;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static bool re_key_ok;
/* the same pointer as the key's value: thread-local storage is what leak
 * checkers scan, pthread-specific data may not be */
static _Thread_local struct re_cache *re_tls;

static void slot_clear(struct re_slot *sl)
{
    if (sl->pat && sl->ok)
        regfree(&sl->re);
    ims_free(sl->pat);
    memset(sl, 0, sizeof(*sl));
}

static void re_cache_free(void *v)
{
    struct re_cache *c = v;
    for (size_t i = 0; c && i < RE_CACHE; i++)
        slot_clear(&c->s[i]);
    ims_free(c);
    re_tls = NULL;
}

static void re_key_make(void)
{
    re_key_ok = pthread_key_create(&re_key, re_cache_free) == 0;
}

/* This thread's cache, or NULL (no memory, no key). */
static struct re_cache *re_cache_get(void)
{
    if (re_tls)
        return re_tls;
    pthread_once(&re_once, re_key_make);
    if (!re_key_ok)
        return NULL;
    struct re_cache *c = ims_calloc(1, sizeof(*c));
    if (c && pthread_setspecific(re_key, c) != 0) {
        ims_free(c);
        c = NULL;
    }
    re_tls = c;
    return c;
}

/* The compiled pattern from the cache (compiled now on a miss), or NULL
 * when it does not compile or the cache cannot hold it (*tmp is then used:
 * the caller frees it when *tmp_ok). */
static const regex_t *re_get(const char *pattern, regex_t *tmp, bool *tmp_ok)
{
    *tmp_ok = false;
    struct re_cache *c = re_cache_get();
    struct re_slot *victim = NULL;
    for (size_t i = 0; c && i < RE_CACHE; i++) {
        struct re_slot *sl = &c->s[i];
        if (sl->pat && sl->key == pattern && strcmp(sl->pat, pattern) == 0) {
            sl->used = ++c->tick;
            return sl->ok ? &sl->re : NULL;
        }
        if (!victim || !sl->pat || (victim->pat && sl->used < victim->used))
            victim = sl;
    }
    char *copy = c ? ims_strndup(pattern, strlen(pattern)) : NULL;
    if (!copy) {
        *tmp_ok = regcomp(tmp, pattern, REG_EXTENDED | REG_NOSUB) == 0;
        return *tmp_ok ? tmp : NULL;
    }
    slot_clear(victim);
    victim->key = pattern;
    victim->pat = copy;
    victim->ok = regcomp(&victim->re, pattern, REG_EXTENDED | REG_NOSUB) == 0;
    victim->used = ++c->tick;
    return victim->ok ? &victim->re : NULL;
}

/* ------------------------------------------------------------ regex */

/* Searches pattern in s (POSIX extended, unanchored unless the pattern is).
 * Folded line breaks (CRLF + WS, RFC 3261 §7.3.1) become their WS.  A pattern
 * that does not compile, a subject with a NUL, or no memory: no match. */
static bool re_search(const char *pattern, ims_str s)
{
    if (!pattern || memchr(s.p ? s.p : "", '\0', s.len))
        return false;
    char stack[IFC_SUBJECT_STACK];
    char *subj = s.len < sizeof(stack) ? stack : ims_alloc(s.len + 1);
    if (!subj)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] != '\r' && s.p[i] != '\n')
            subj[k++] = s.p[i];
    subj[k] = '\0';
    regex_t tmp;
    bool tmp_ok;
    const regex_t *re = re_get(pattern, &tmp, &tmp_ok);
    bool hit = re && regexec(re, subj, 0, NULL, 0) == 0;
    if (tmp_ok)
        regfree(&tmp);
    if (subj != stack)
        ims_free(subj);
    return hit;
}

/* ------------------------------------------------------------ SPTs */

/* Method, with the RegistrationType extension for REGISTER (Annex B.2.2:
 * absent = every kind of registration). */
static bool spt_method(const struct ims_prof_spt *s, const struct sip_msg *m,
                       const struct ims_ifc_ctx *c)
{
    if (!ims_str_eq(m->method_name, ims_str_cstr(s->value)))
        return false;
    if (m->method == SIP_M_REGISTER && s->reg_types)
        return (s->reg_types & c->reg_type) != 0;
    return true;
}

/* One header value (a whole line), or any element of it when it is a comma
 * list, so that an anchored pattern matches the second of "a, b" too. */
static bool hdr_value_matches(const char *pattern, ims_str v)
{
    if (re_search(pattern, v))
        return true;
    struct ims_cur cur = ims_cur_of(v);
    ims_str e;
    size_t n = 0;
    bool hit = false;
    while (!hit && ims_sip_list_next(&cur, &e) == 0) {
        n++;
        if (ims_cur_eof(&cur) && n == 1)
            break; /* a single element: the whole line was already tried */
        hit = re_search(pattern, e);
    }
    return hit;
}

/* SIPHeader: present (any line of that name, compact form too); with
 * Content, a line or value matches it. */
static bool spt_header(const struct ims_prof_spt *s, const struct sip_msg *m)
{
    ims_str name = ims_str_cstr(s->value);
    enum sip_hdr_id id = ims_sip_hdr_id(name);
    const struct sip_hdr *h =
        id == SIP_H_OTHER ? ims_sip_hdr_by_name(m, name) : ims_sip_hdr_first(m, id);
    for (; h; h = id == SIP_H_OTHER ? ims_sip_hdr_next_same(m, h) : ims_sip_hdr_next(m, h)) {
        if (!s->content || hdr_value_matches(s->content, h->value))
            return true;
    }
    return false;
}

/* Is the body SDP (Content-Type application/sdp, parameters ignored)? */
static bool body_is_sdp(const struct sip_msg *m)
{
    const struct sip_hdr *h = ims_sip_hdr_first(m, SIP_H_CONTENT_TYPE);
    if (!h || !m->body.len)
        return false;
    struct ims_cur c = ims_cur_of(h->value);
    ims_str type;
    ims_cur_until(&c, ";", &type);
    return ims_str_caseeq_lit(ims_str_trim(type), "application/sdp");
}

/* SessionDescription: an SDP line "<Line>=<value>" (RFC 4566 §5) whose type
 * equals Line and whose value matches Content (any value when absent). */
static bool spt_sdp(const struct ims_prof_spt *s, const struct sip_msg *m)
{
    if (!body_is_sdp(m))
        return false;
    ims_str want = ims_str_cstr(s->value);
    struct ims_cur c = ims_cur_of(m->body);
    while (!ims_cur_eof(&c)) {
        ims_str line;
        ims_cur_until(&c, "\n", &line);
        ims_cur_char(&c, '\n');
        long eq = ims_str_chr(line, '=');
        if (eq < 0)
            continue;
        ims_str type = ims_str_trim(ims_str_make(line.p, (size_t)eq));
        if (!ims_str_eq(type, want))
            continue;
        ims_str val = ims_str_trim(ims_str_make(line.p + eq + 1, line.len - (size_t)eq - 1));
        if (!s->content || re_search(s->content, val))
            return true;
    }
    return false;
}

static bool spt_eval(const struct ims_prof_spt *s, const struct sip_msg *m,
                     const struct ims_ifc_ctx *c)
{
    bool v = false;
    switch (s->kind) {
    case IMS_SPTK_METHOD: v = spt_method(s, m, c); break;
    case IMS_SPTK_REQUEST_URI: v = re_search(s->value, m->ruri_raw); break;
    case IMS_SPTK_SIP_HEADER: v = spt_header(s, m); break;
    case IMS_SPTK_SESSION_CASE: v = s->session_case == c->session_case; break;
    case IMS_SPTK_SESSION_DESCRIPTION: v = spt_sdp(s, m); break;
    }
    return s->negated ? !v : v;
}

/* ------------------------------------------------------------ groups */

/* SPT k's groups (a document without Group elements: group 0). */
static size_t spt_groups(const struct ims_prof_spt *s, const uint32_t **g)
{
    static const uint32_t zero = 0;
    if (s->ngroups == 0) {
        *g = &zero;
        return 1;
    }
    *g = s->groups;
    return s->ngroups;
}

static bool in_group(const struct ims_prof_spt *s, uint32_t grp)
{
    const uint32_t *g;
    size_t n = spt_groups(s, &g);
    for (size_t i = 0; i < n; i++)
        if (g[i] == grp)
            return true;
    return false;
}

/* Was group grp already combined (it appears in an earlier SPT)? */
static bool group_seen(const struct ims_prof_ifc *f, size_t upto, uint32_t grp)
{
    for (size_t k = 0; k < upto; k++)
        if (in_group(&f->spts[k], grp))
            return true;
    return false;
}

/* One group: CNF ORs its SPTs, DNF ANDs them. */
static bool group_value(const struct ims_prof_ifc *f, const bool *v, uint32_t grp)
{
    for (size_t k = 0; k < f->nspt; k++) {
        if (!in_group(&f->spts[k], grp))
            continue;
        if (f->cnf && v[k])
            return true;
        if (!f->cnf && !v[k])
            return false;
    }
    return !f->cnf;
}

/* Annex C: CNF = AND of groups, DNF = OR of groups. */
static bool trigger_matches(const struct ims_prof_ifc *f, const struct sip_msg *m,
                            const struct ims_ifc_ctx *c)
{
    bool v[IMS_PROFILE_MAX_SPT];
    size_t n = f->nspt < IMS_PROFILE_MAX_SPT ? f->nspt : IMS_PROFILE_MAX_SPT;
    if (n == 0)
        return true; /* a TriggerPoint without SPTs sets no condition */
    for (size_t k = 0; k < n; k++)
        v[k] = spt_eval(&f->spts[k], m, c);
    for (size_t k = 0; k < n; k++) {
        const uint32_t *g;
        size_t ng = spt_groups(&f->spts[k], &g);
        for (size_t i = 0; i < ng; i++) {
            if (group_seen(f, k, g[i]))
                continue;
            bool gv = group_value(f, v, g[i]);
            if (f->cnf && !gv)
                return false;
            if (!f->cnf && gv)
                return true;
        }
    }
    return f->cnf;
}

/* ------------------------------------------------------------ API */

bool ims_ifc_match(const struct ims_prof_ifc *f, const struct sip_msg *m,
                   const struct ims_ifc_ctx *c)
{
    /* TS 29.228 Annex B.2.2: ProfilePartIndicator 0 REGISTERED, 1 UNREGISTERED */
    if (f->profile_part >= 0 && f->profile_part != (c->registered ? 0 : 1))
        return false;
    if (!f->has_trigger)
        return true;
    return trigger_matches(f, m, c);
}

int ims_ifc_next(const struct ims_service_profile *sp, size_t from, const struct sip_msg *m,
                 const struct ims_ifc_ctx *c)
{
    for (size_t i = from; sp && i < sp->nifc; i++)
        if (ims_ifc_match(&sp->ifcs[i], m, c))
            return (int)i;
    return -1;
}
