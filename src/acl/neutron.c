/* neutron.c - a Neutron security group as the source of the listeners'
 * rules (neutron.h, docs/security-groups.md "Neutron as the source").
 *
 * Why a blocking thread and not an ims_ks client on a loop: the Keystone
 * client (src/keystone) keeps its service token and catalog to itself and
 * has no call for another service's API.  One GET every few seconds needs
 * neither an event loop nor a connection pool; a thread with libcurl's easy
 * interface, each request bounded by [keystone] timeout_ms, keeps the SIP
 * workers out of it just as well, and its one shared object is the holder,
 * whose swap is made for exactly this. */
#define _GNU_SOURCE /* strptime */
#include "acl/neutron.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "acl/acl.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/thread.h"
#include "cfg/cfg.h"
#include "keystone/keystone.h"

#define NEUTRON_MAX_BODY (4u << 20)  /* as a rules file (IMS_ACL_MAX_RULES rules fit) */
#define TOKEN_MARGIN_S 60            /* renew the service token this long before expiry */

enum src_state { ST_START, ST_OK, ST_DOWN, ST_REFUSED };

struct ims_acl_neutron {
    struct ims_acl_holder *holder; /* borrowed */
    /* options (copies; secrets wiped on free) */
    char *ks_url, *user, *password, *user_domain, *project, *project_domain;
    char *ac_id, *ac_secret, *ca_file, *group, *rules_file;
    unsigned refresh_s, timeout_ms;
    /* thread-only state */
    CURL *curl;
    char *token;            /* service token (wiped) */
    int64_t token_expires;  /* Unix s */
    char *neutron_url;      /* from the token's catalog */
    char *file_text;        /* the rules file as last read good; NULL: no file */
    size_t file_len;
    char *applied;          /* canonical dump of the set in force from here */
    char *good_body;        /* the group's last good read, and its id */
    size_t good_len;
    char *good_id;
    bool file_dirty;        /* a new file text (SIGHUP) not yet in force */
    enum src_state state;
    char last_why[512];
    /* shared with the controlling thread, under mu */
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kick, reread_file, first_done;
};

/* ------------------------------------------------------------ helpers */

static void wipe_free(char *s)
{
    if (s) {
        ims_wipe(s, strlen(s));
        ims_free(s);
    }
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = ims_strndup(s, strlen(s));
    return *out ? 0 : IMS_ENOMEM;
}

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

/* Keystone's expires_at, "2026-11-28T02:33:12.000000Z", as Unix seconds. */
static int64_t parse_expiry(const char *s)
{
    struct tm tm = { 0 };
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ------------------------------------------------------------ pure parts */

/* u's length without its trailing '/'s. */
static size_t url_len(const char *u)
{
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        n--;
    return n;
}

int ims_acl_neutron_catalog_url(const char *body, size_t len, const char *type, char *out,
                                size_t outsz)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *cat = json_object_get(json_object_get(root, "token"), "catalog");
    if (!json_is_array(cat)) {
        json_decref(root);
        return IMS_EPROTO;
    }
    const char *url = NULL;
    int best = 0; /* 3 public, 2 internal, 1 any */
    size_t i, j;
    json_t *svc, *ep;
    json_array_foreach(cat, i, svc) {
        const char *t = jstr(svc, "type");
        if (!t || strcmp(t, type) != 0)
            continue;
        json_array_foreach(json_object_get(svc, "endpoints"), j, ep) {
            const char *iface = jstr(ep, "interface"), *u = jstr(ep, "url");
            int rank = !iface ? 1 : !strcmp(iface, "public") ? 3 : !strcmp(iface, "internal") ? 2 : 1;
            if (u && url_len(u) > 0 && rank > best) { /* "" or "/" is no URL (fuzz_acl) */
                best = rank;
                url = u;
            }
        }
    }
    int rc = IMS_ENOENT;
    if (url) {
        size_t n = url_len(url);
        rc = n < outsz ? 0 : IMS_ELIMIT;
        if (rc == 0) {
            memcpy(out, url, n);
            out[n] = '\0';
        }
    }
    json_decref(root);
    return rc;
}

/* The group object of a show body or of a list body (exactly one). */
static int pick_group(const char *group, json_t *root, json_t **grp, char *err, size_t errsz)
{
    json_t *one = json_object_get(root, "security_group");
    json_t *list = json_object_get(root, "security_groups");
    if (json_is_object(one)) {
        *grp = one;
        return 0;
    }
    if (!json_is_array(list)) {
        snprintf(err, errsz, "neutron group %s: not a security group body", group);
        return IMS_EINVAL;
    }
    if (json_array_size(list) == 0) {
        snprintf(err, errsz, "neutron group %s: no such security group", group);
        return IMS_ENOENT;
    }
    if (json_array_size(list) > 1) {
        snprintf(err, errsz, "neutron group %s: %zu groups have this name; name it by id", group,
                 json_array_size(list));
        return IMS_EINVAL;
    }
    *grp = json_array_get(list, 0);
    if (!json_is_object(*grp)) {
        snprintf(err, errsz, "neutron group %s: not a security group body", group);
        return IMS_EINVAL;
    }
    return 0;
}

/* Adds the Neutron id of the rule an ims_acl_parse() error names ("rule 3:
 * ..."), so that the operator can `openstack security group rule delete` it. */
static void name_rule(const json_t *rules, size_t name_len, char *err, size_t errsz)
{
    const char *p = strlen(err) > name_len ? strstr(err + name_len, "rule ") : NULL;
    size_t used = strlen(err);
    char *end = NULL;
    if (!p || p[5] < '0' || p[5] > '9')
        return;
    unsigned long idx = strtoul(p + 5, &end, 10);
    if (*end != ':')
        return;
    const char *id = jstr(json_array_get(rules, (size_t)idx), "id");
    if (id && used < errsz)
        snprintf(err + used, errsz - used, " (rule id %s)", id);
}

/* Compiles {"security_group_rules": rules}. */
static int compile(const char *name, json_t *rules, struct ims_acl **out, char *err,
                   size_t errsz)
{
    json_t *wrap = json_pack("{sO}", "security_group_rules", rules);
    char *text = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
    json_decref(wrap);
    if (!text)
        return IMS_ENOMEM;
    int rc = ims_acl_parse(name, text, strlen(text), out, err, errsz);
    free(text); /* jansson's allocator */
    return rc;
}

/* The rules array of a rules-file text (either API shape). */
static json_t *file_rules(json_t *root)
{
    json_t *r = json_object_get(root, "security_group_rules");
    if (!r)
        r = json_object_get(json_object_get(root, "security_group"), "security_group_rules");
    return json_is_array(r) ? r : NULL;
}

int ims_acl_neutron_build(const char *group, const char *body, size_t len, const char *extra,
                          size_t extra_len, struct ims_acl **out, char **group_id, char *err,
                          size_t errsz)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je), *grp = NULL, *xroot = NULL, *all = NULL;
    char name[300];
    snprintf(name, sizeof(name), "neutron group %s", group);
    int rc = IMS_EINVAL;
    if (!root) {
        snprintf(err, errsz, "%s: json: %s", name, je.text);
        goto out;
    }
    if ((rc = pick_group(group, root, &grp, err, errsz)) != 0)
        goto out;
    json_t *rules = json_object_get(grp, "security_group_rules");
    if (!json_is_array(rules)) {
        snprintf(err, errsz, "%s: no security_group_rules", name);
        rc = IMS_EINVAL;
        goto out;
    }
    /* the group alone first: its errors then count its own rules */
    struct ims_acl *acl = NULL;
    if ((rc = compile(name, rules, &acl, err, errsz)) != 0) {
        name_rule(rules, strlen(name), err, errsz);
        goto out;
    }
    if (extra) {
        ims_acl_free(acl);
        acl = NULL;
        xroot = json_loadb(extra, extra_len, 0, &je);
        all = json_array();
        rc = IMS_EINVAL;
        if (!file_rules(xroot)) {
            snprintf(err, errsz, "%s: the rules file's text is not a rules body", name);
            goto out;
        }
        rc = IMS_ENOMEM;
        if (!all || json_array_extend(all, file_rules(xroot)) || json_array_extend(all, rules))
            goto out;
        if ((rc = compile(name, all, &acl, err, errsz)) != 0)
            goto out;
    }
    if (group_id) {
        const char *id = jstr(grp, "id");
        *group_id = ims_strndup(id ? id : "?", id ? strlen(id) : 1);
        if (!*group_id) {
            ims_acl_free(acl);
            rc = IMS_ENOMEM;
            goto out;
        }
    }
    *out = acl;
    rc = 0;
out:
    json_decref(all);
    json_decref(xroot);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------ HTTP */

struct resp {
    long status;
    char *body;
    size_t len, cap;
    bool too_big;
    char *subject_token; /* X-Subject-Token (wiped) */
};

static void resp_free(struct resp *r)
{
    ims_free(r->body);
    wipe_free(r->subject_token);
    memset(r, 0, sizeof(*r));
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;
    size_t n = size * nmemb;
    if (r->len + n + 1 > NEUTRON_MAX_BODY) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 8192;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = ims_realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;
    size_t n = size * nmemb;
    static const char name[] = "x-subject-token:";
    if (n > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0 && !r->subject_token) {
        const char *v = p + sizeof(name) - 1, *end = p + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        r->subject_token = ims_strndup(v, (size_t)(end - v));
    }
    return n;
}

/* One request (GET, or POST of a JSON body); 0 when an HTTP answer came
 * (any status), else IMS_EBACKEND with err saying why. */
static int http(struct ims_acl_neutron *n, const char *url, const char *post, const char *token,
                struct resp *r, char *err, size_t errsz)
{
    CURL *c = n->curl;
    struct curl_slist *hdrs = NULL, *h;
    char tokhdr[8192];
    curl_easy_reset(c);
    memset(r, 0, sizeof(*r));
    h = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = h ? h : hdrs;
    if (post && (h = curl_slist_append(hdrs, "Content-Type: application/json")))
        hdrs = h;
    if (token) {
        snprintf(tokhdr, sizeof(tokhdr), "X-Auth-Token: %s", token);
        if ((h = curl_slist_append(hdrs, tokhdr)))
            hdrs = h;
        ims_wipe(tokhdr, sizeof(tokhdr));
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)n->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (n->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, n->ca_file);
    if (post)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    if (cc == CURLE_OK)
        return 0;
    snprintf(err, errsz, "%s: %s", url,
             r->too_big ? "answer over 4 MiB" : curl_easy_strerror(cc));
    return IMS_EBACKEND;
}

/* ------------------------------------------------------------ Keystone */

static char *auth_body(const struct ims_acl_neutron *n)
{
    json_t *id, *scope = NULL;
    if (n->ac_id) {
        id = json_pack("{s[s]s{ssss}}", "methods", "application_credential",
                       "application_credential", "id", n->ac_id, "secret", n->ac_secret);
    } else {
        id = json_pack("{s[s]s{s{sss{ss}ss}}}", "methods", "password", "password", "user", "name",
                       n->user, "domain", "name", n->user_domain, "password", n->password);
        scope = n->project ? json_pack("{s{sss{ss}}}", "project", "name", n->project, "domain",
                                       "name", n->project_domain)
                           : json_pack("{s{sb}}", "system", "all", 1);
    }
    json_t *auth = json_pack("{s{soso*}}", "auth", "identity", id, "scope", scope);
    char *text = auth ? json_dumps(auth, JSON_COMPACT) : NULL;
    json_decref(auth);
    return text; /* jansson's: the caller wipes and free()s it */
}

/* A service token and the network endpoint of its catalog. */
static int authenticate(struct ims_acl_neutron *n, char *err, size_t errsz)
{
    char url[1024], nurl[1024];
    snprintf(url, sizeof(url), "%s/auth/tokens", n->ks_url);
    char *body = auth_body(n);
    if (!body)
        return IMS_ENOMEM;
    struct resp r;
    int rc = http(n, url, body, NULL, &r, err, errsz);
    ims_wipe(body, strlen(body));
    free(body);
    if (rc == 0 && (r.status != 201 || !r.subject_token)) {
        snprintf(err, errsz, "keystone %.300s: status %ld%s", url, r.status,
                 r.status == 401 ? " (service account refused)" : "");
        rc = IMS_EBACKEND;
    }
    if (rc == 0) {
        rc = ims_acl_neutron_catalog_url(r.body ? r.body : "", r.len, "network", nurl,
                                         sizeof(nurl));
        if (rc)
            snprintf(err, errsz, "keystone: no network endpoint in the service token's catalog");
    }
    if (rc == 0) {
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        int64_t exp = parse_expiry(jstr(json_object_get(root, "token"), "expires_at"));
        json_decref(root);
        char *nu = ims_strndup(nurl, strlen(nurl));
        if (!nu) {
            rc = IMS_ENOMEM;
        } else {
            wipe_free(n->token);
            ims_free(n->neutron_url);
            n->token = r.subject_token;
            r.subject_token = NULL;
            n->neutron_url = nu;
            n->token_expires = exp ? exp : now_s() + 300;
        }
    }
    resp_free(&r);
    return rc;
}

/* ------------------------------------------------------------ one read */

static bool looks_like_id(const char *s)
{
    /* Neutron ids are UUIDs: 36 characters, hex digits and 4 dashes */
    if (strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

/* GET the group; retries once with a new token on 401.  0 with r filled
 * (status 200), IMS_ENOENT (404: no such group), IMS_EBACKEND. */
static int fetch_group(struct ims_acl_neutron *n, struct resp *r, char *err, size_t errsz)
{
    for (int attempt = 0;; attempt++) {
        int rc = 0;
        if (!n->token || now_s() + TOKEN_MARGIN_S >= n->token_expires)
            rc = authenticate(n, err, errsz);
        if (rc)
            return rc;
        char url[2048];
        if (looks_like_id(n->group)) {
            snprintf(url, sizeof(url), "%s/v2.0/security-groups/%s", n->neutron_url, n->group);
        } else {
            char *esc = curl_easy_escape(n->curl, n->group, 0);
            if (!esc)
                return IMS_ENOMEM;
            snprintf(url, sizeof(url), "%s/v2.0/security-groups?name=%s", n->neutron_url, esc);
            curl_free(esc);
        }
        if ((rc = http(n, url, NULL, n->token, r, err, errsz)) != 0) {
            resp_free(r);
            return rc;
        }
        if (r->status == 200)
            return 0;
        long st = r->status;
        resp_free(r);
        if (st == 401 && attempt == 0) { /* token revoked or expired early */
            wipe_free(n->token);
            n->token = NULL;
            continue;
        }
        snprintf(err, errsz, "neutron %.300s: status %ld", url, st);
        if (st == 404) {
            snprintf(err, errsz, "neutron group %s: no such security group", n->group);
            return IMS_ENOENT;
        }
        return IMS_EBACKEND;
    }
}

static void set_state(struct ims_acl_neutron *n, enum src_state st, const char *why)
{
    /* an outage is one event however its symptoms vary; another refused
     * rule is news for the operator */
    bool changed = st != n->state || (st == ST_REFUSED && strcmp(why, n->last_why) != 0);
    enum src_state old = n->state;
    n->state = st;
    snprintf(n->last_why, sizeof(n->last_why), "%s", why ? why : "");
    if (!changed)
        return;
    /* what stays in force: the last good read, else the start set */
    const char *kept = n->applied ? "kept_previous" : n->rules_file ? "file_only" : "deny_all";
    if (st == ST_DOWN)
        LOG_W("acl", "event=neutron_unavailable group=%s action=%s why=\"%s\"", n->group, kept,
              why);
    else if (st == ST_REFUSED)
        LOG_E("acl", "event=neutron_refused group=%s action=%s why=\"%s\"", n->group, kept, why);
    else if (st == ST_OK && old == ST_DOWN)
        LOG_N("acl", "event=neutron_available group=%s", n->group);
    else if (st == ST_OK && old == ST_REFUSED)
        LOG_N("acl", "event=neutron_accepted group=%s", n->group);
}

/* Publishes acl unless it is the set already in force. */
static void publish(struct ims_acl_neutron *n, struct ims_acl *acl, const char *body, size_t len,
                    const char *group_id)
{
    /* the rules' canonical form, the file's included, says whether anything
     * changed (not the whole group: its revision_number moves with every edit) */
    json_t *root = json_loadb(body, len, 0, NULL), *grp = NULL;
    char e[8];
    json_t *rules = pick_group(n->group, root, &grp, e, sizeof(e)) == 0
                        ? json_object_get(grp, "security_group_rules")
                        : NULL;
    char *canon = rules ? json_dumps(rules, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    size_t canon_len = canon ? strlen(canon) : 0;
    bool same = canon && n->applied && strlen(n->applied) == canon_len + n->file_len &&
                memcmp(n->applied, canon, canon_len) == 0 &&
                (!n->file_len || memcmp(n->applied + canon_len, n->file_text, n->file_len) == 0);
    n->file_dirty = false;
    if (same) {
        ims_acl_free(acl);
        free(canon);
        return;
    }
    size_t nrules = ims_acl_rules(acl), active = ims_acl_active_rules(acl);
    ims_acl_holder_swap(n->holder, acl);
    LOG_N("acl", "event=neutron_loaded group=%s id=%s rules=%zu ingress_active=%zu file=%s",
          n->group, group_id, nrules, active, n->rules_file ? n->rules_file : "-");
    ims_free(n->applied);
    n->applied = NULL;
    if (canon && (n->applied = ims_alloc(canon_len + n->file_len + 1))) {
        memcpy(n->applied, canon, canon_len);
        if (n->file_len)
            memcpy(n->applied + canon_len, n->file_text, n->file_len);
        n->applied[canon_len + n->file_len] = '\0';
    }
    free(canon);
}

/* A new rules file (SIGHUP) while the group cannot be read: the union with
 * the group's last good read, or the file alone before any read. */
static void apply_file_change(struct ims_acl_neutron *n)
{
    if (!n->file_dirty)
        return;
    char err[512];
    struct ims_acl *acl = NULL;
    if (n->good_body) {
        if (ims_acl_neutron_build(n->group, n->good_body, n->good_len, n->file_text, n->file_len,
                                  &acl, NULL, err, sizeof(err)) == 0)
            publish(n, acl, n->good_body, n->good_len, n->good_id);
        else
            LOG_E("acl", "event=acl_reload_failed action=kept_previous why=\"%s\"", err);
    } else if (ims_acl_parse(n->rules_file, n->file_text, n->file_len, &acl, err,
                             sizeof(err)) == 0) {
        ims_acl_holder_swap(n->holder, acl);
        LOG_N("acl", "event=acl_loaded file=%s group=%s why=\"the group is not read yet\"",
              n->rules_file, n->group);
    }
    n->file_dirty = false;
}

static void read_group(struct ims_acl_neutron *n)
{
    char err[512] = "";
    struct resp r;
    int rc = fetch_group(n, &r, err, sizeof(err));
    if (rc == IMS_EBACKEND || rc == IMS_ENOMEM) {
        set_state(n, ST_DOWN, err);
        apply_file_change(n);
        return;
    }
    if (rc) { /* a deleted group is the operator's to fix; an empty set is not implied */
        set_state(n, ST_REFUSED, err);
        apply_file_change(n);
        return;
    }
    struct ims_acl *acl = NULL;
    char *gid = NULL;
    rc = ims_acl_neutron_build(n->group, r.body ? r.body : "", r.len, n->file_text, n->file_len,
                               &acl, &gid, err, sizeof(err));
    if (rc == 0) {
        set_state(n, ST_OK, NULL);
        publish(n, acl, r.body, r.len, gid);
        ims_free(n->good_body); /* kept for a file change during an outage */
        ims_free(n->good_id);
        n->good_body = r.body;
        n->good_len = r.len;
        n->good_id = gid;
        r.body = NULL;
        gid = NULL;
    } else {
        set_state(n, rc == IMS_ENOMEM ? ST_DOWN : ST_REFUSED, err);
        apply_file_change(n);
    }
    ims_free(gid);
    resp_free(&r);
}

/* ------------------------------------------------------------ the file */

/* Reads and checks the rules file; a bad file keeps the previous text. */
static int read_file(struct ims_acl_neutron *n, char *err, size_t errsz)
{
    struct ims_acl *acl = NULL;
    int rc = ims_acl_load(n->rules_file, &acl, err, errsz); /* the errors name rule and field */
    ims_acl_free(acl);
    if (rc)
        return rc;
    json_t *root = json_load_file(n->rules_file, 0, NULL);
    json_t *rules = file_rules(root);
    json_t *wrap = rules ? json_pack("{sO}", "security_group_rules", rules) : NULL;
    char *text = wrap ? json_dumps(wrap, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(wrap);
    json_decref(root);
    if (!text) {
        snprintf(err, errsz, "%s: changed while being read", n->rules_file);
        return IMS_EINVAL;
    }
    char *copy = ims_strndup(text, strlen(text));
    free(text);
    if (!copy)
        return IMS_ENOMEM;
    ims_free(n->file_text);
    n->file_text = copy;
    n->file_len = strlen(copy);
    return 0;
}

/* ------------------------------------------------------------ thread */

static void *run(void *arg)
{
    struct ims_acl_neutron *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stop) {
        bool reread = n->reread_file;
        n->reread_file = false;
        n->kick = false;
        pthread_mutex_unlock(&n->mu);

        char err[512];
        if (reread && n->rules_file) {
            if (read_file(n, err, sizeof(err)) != 0)
                LOG_E("acl", "event=acl_reload_failed action=kept_previous why=\"%s\"", err);
            else
                n->file_dirty = true;
        }
        read_group(n);

        pthread_mutex_lock(&n->mu);
        n->first_done = true;
        pthread_cond_broadcast(&n->cv);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += n->refresh_s;
        while (!n->stop && !n->kick)
            if (pthread_cond_timedwait(&n->cv, &n->mu, &until) != 0)
                break; /* the refresh period is over */
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static void neutron_free(struct ims_acl_neutron *n)
{
    if (!n)
        return;
    if (n->curl)
        curl_easy_cleanup(n->curl);
    wipe_free(n->password);
    wipe_free(n->ac_secret);
    wipe_free(n->token);
    char *plain[] = { n->ks_url,     n->user,        n->user_domain, n->project,
                      n->project_domain, n->ac_id, n->ca_file,     n->group,
                      n->rules_file, n->neutron_url, n->file_text, n->applied,
                      n->good_body,  n->good_id };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        ims_free(plain[i]);
    ims_free(n);
}

/* Copies the [keystone] and [security] options the thread needs. */
static int copy_opts(struct ims_acl_neutron *n, const struct ims_cfg *cfg, char *err,
                     size_t errsz)
{
    struct ims_ks_opts o;
    char *secret = NULL;
    int rc = ims_ks_opts_from_cfg(cfg, &o, &secret, err, errsz);
    if (rc == IMS_ENOENT)
        snprintf(err, errsz, "[security] neutron_group needs [keystone] url");
    const char *src[] = { o.url,     o.user,           o.password,    o.user_domain,
                          o.project, o.project_domain, o.app_cred_id, o.app_cred_secret,
                          o.ca_file, cfg->sec_neutron_group, cfg->sec_rules_file };
    char **dst[] = { &n->ks_url,  &n->user,           &n->password, &n->user_domain,
                     &n->project, &n->project_domain, &n->ac_id,    &n->ac_secret,
                     &n->ca_file, &n->group,          &n->rules_file };
    for (size_t i = 0; rc == 0 && i < sizeof(src) / sizeof(src[0]); i++)
        rc = dup_opt(src[i], dst[i]);
    wipe_free(secret);
    if (rc == IMS_ENOMEM)
        snprintf(err, errsz, "out of memory");
    size_t ulen = n->ks_url ? strlen(n->ks_url) : 0;
    while (ulen > 0 && n->ks_url[ulen - 1] == '/')
        n->ks_url[--ulen] = '\0';
    n->refresh_s = cfg->sec_neutron_refresh ? cfg->sec_neutron_refresh : 30;
    n->timeout_ms = o.timeout_ms ? o.timeout_ms : 2000;
    return rc;
}

/* Default deny until Neutron is read, when no file gives a start set. */
static int publish_deny_all(struct ims_acl_holder *h)
{
    static const char empty[] = "{\"security_group_rules\": []}";
    struct ims_acl *acl = NULL;
    char err[64];
    int rc = ims_acl_parse("neutron", empty, sizeof(empty) - 1, &acl, err, sizeof(err));
    if (rc == 0)
        ims_acl_holder_swap(h, acl);
    return rc;
}

static int init_sync(struct ims_acl_neutron *n)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return IMS_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return IMS_ENOMEM;
    pthread_mutex_init(&n->mu, NULL);
    return 0;
}

/* Waits for the first read: auth, a possible re-auth and the GET. */
static void wait_first(struct ims_acl_neutron *n)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(3u * n->timeout_ms / 1000u + 2u);
    pthread_mutex_lock(&n->mu);
    while (!n->first_done)
        if (pthread_cond_timedwait(&n->cv, &n->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&n->mu);
}

int ims_acl_neutron_start(const struct ims_cfg *cfg, struct ims_acl_holder *h,
                          struct ims_acl_neutron **out, char *err, size_t errsz)
{
    *out = NULL;
    if (!cfg->sec_neutron_group)
        return 0;
    struct ims_acl_neutron *n = ims_calloc(1, sizeof(*n));
    if (!n)
        return IMS_ENOMEM;
    n->holder = h;
    int rc = copy_opts(n, cfg, err, errsz);
    if (rc == 0 && n->rules_file)
        rc = read_file(n, err, errsz);
    if (rc == 0 && !n->rules_file)
        rc = publish_deny_all(h);
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errsz, "libcurl: global init failed");
        rc = IMS_EBACKEND;
    }
    if (rc == 0 && !(n->curl = curl_easy_init())) {
        snprintf(err, errsz, "libcurl: no easy handle");
        curl_global_cleanup();
        rc = IMS_EBACKEND;
    }
    if (rc == 0 && (rc = init_sync(n)) != 0) {
        snprintf(err, errsz, "neutron: out of memory");
        curl_global_cleanup();
    }
    if (rc == 0 && ims_thread_start(&n->thr, "ims-neutron", run, n) != 0) {
        snprintf(err, errsz, "neutron: cannot start the thread");
        pthread_cond_destroy(&n->cv);
        pthread_mutex_destroy(&n->mu);
        curl_global_cleanup();
        rc = IMS_EBACKEND;
    }
    if (rc) {
        neutron_free(n);
        return rc;
    }
    LOG_N("acl", "event=neutron_source group=%s refresh_s=%u file=%s", n->group, n->refresh_s,
          n->rules_file ? n->rules_file : "-");
    wait_first(n);
    *out = n;
    return 0;
}

void ims_acl_neutron_refresh(struct ims_acl_neutron *n, bool reread_file)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->kick = true;
    n->reread_file = n->reread_file || reread_file;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

void ims_acl_neutron_stop(struct ims_acl_neutron *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thr, NULL);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    neutron_free(n);
    curl_global_cleanup();
}
