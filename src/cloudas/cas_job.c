/* cas_job.c - one command of one user, from the delegation to the answer:
 *   token (Keystone, application credential; cached per worker)
 *   -> policy (cloud:* rule, target.project_id = the token's project)
 *   -> OpenStack calls (endpoints from the token's catalog, src/http)
 *   -> result MESSAGEs (cas_send), and for create, progress until ACTIVE.
 * Every step is a callback on the worker's loop; nothing blocks.  A job is
 * freed when its last MESSAGE is sent (or at shutdown, silently). */
#define _GNU_SOURCE /* strptime, timegm */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cloudas/cas_int.h"
#include "http/http.h"
#include "policy/policy.h"

#define NOVA_VERSION "OpenStack-API-Version: compute 2.37" /* "networks": "none" */
#define TOKEN_SLACK_S 60 /* renew a cached token this long before it expires */

struct cas_job;
typedef void (*job_rsp_fn)(struct cas_job *j, const struct ims_http_rsp *rsp);
typedef void (*job_fn)(struct cas_job *j);

struct cas_job {
    struct cas_job *prev, *next;
    struct cas_worker *w;
    struct cas_cmd cmd;
    char impu[CAS_IMPU_MAX];
    char call_id[CAS_CALLID_MAX]; /* of the command: the results carry it */
    uint32_t cseq;                /* of the last result sent */
    struct cas_ident *id;       /* one use counted while set */
    struct cas_sub *sub;        /* a subscription's poll: results go there, not by MESSAGE */
    char *bearer;               /* the request's own token (a secret), or NULL */
    struct ims_http_req *http;  /* in flight */
    const char *service;        /* for errors: "Keystone", "Nova", "Neutron", "Glance" */
    job_rsp_fn on_rsp;
    struct ims_timer timer;
    job_fn on_timer;
    char server_id[CAS_NAME_MAX], server_name[CAS_NAME_MAX], status[32];
    char flavor_id[CAS_NAME_MAX], image_id[CAS_NAME_MAX];
    unsigned delay_ms;
    uint64_t deadline_ms;
};

/* ---------------------------------------------------------------- idents */

static void ident_free(struct cas_ident *id)
{
    if (id->token) {
        ims_wipe(id->token, strlen(id->token));
        ims_free(id->token);
    }
    ims_free(id);
}

static void ident_unlink(struct cas_worker *w, struct cas_ident *id)
{
    for (struct cas_ident **pp = &w->idents; *pp; pp = &(*pp)->next)
        if (*pp == id) {
            *pp = id->next;
            break;
        }
    id->stale = true;
    if (id->users == 0)
        ident_free(id);
}

static void ident_put(struct cas_ident *id)
{
    if (--id->users == 0 && id->stale)
        ident_free(id);
}

void cas_ident_free_all(struct cas_worker *w)
{
    while (w->idents)
        ident_unlink(w, w->idents);
}

static struct cas_ident *ident_find(struct cas_worker *w, const char *impu)
{
    int64_t now = (int64_t)time(NULL);
    for (struct cas_ident *id = w->idents; id; id = id->next)
        if (strcmp(id->impu, impu) == 0) {
            if (id->expires - TOKEN_SLACK_S > now)
                return id;
            ident_unlink(w, id);
            return NULL;
        }
    return NULL;
}

/* ---------------------------------------------------------------- jobs */

static void job_free(struct cas_job *j)
{
    struct cas_worker *w = j->w;
    if (j->http)
        ims_http_cancel(w->http, j->http);
    ims_timer_stop(w->loop, &j->timer);
    if (j->id)
        ident_put(j->id);
    if (j->bearer) {
        ims_wipe(j->bearer, strlen(j->bearer));
        ims_free(j->bearer);
    }
    if (j->prev)
        j->prev->next = j->next;
    else
        w->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    w->njobs--;
    ims_free(j);
}

void cas_job_free_all(struct cas_worker *w)
{
    while (w->jobs)
        job_free(w->jobs);
}

/* The length of the valid UTF-8 sequence at s (RFC 3629 §4), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Makes the result text one line of valid UTF-8.  The text part is one line
 * (docs/cloud-as.md) and cas_send's multipart boundary is fixed: a CR LF
 * from an OpenStack answer (a fault message, a name) could end the part and
 * forge the next one, so control bytes become spaces.  A truncating
 * snprintf (here or of a name copied earlier) can cut a character: its
 * bytes become '?', since the part says charset=utf-8 and jansson takes no
 * invalid UTF-8 (json_string would fail and the document lose its text).
 * The JSON document keeps its values as they came, escaped. */
static void text_line(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        if (n == 1 && (*p < 0x20 || *p == 0x7f))
            *p = ' ';
        p += n;
    }
}

/* Sends one result: the human line and {"ok":..,"command":..,...data}. */
static void job_send(struct cas_job *j, bool ok, json_t *data, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_send(struct cas_job *j, bool ok, json_t *data, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    text_line(text);
    json_t *doc = data ? data : json_object();
    json_object_set_new(doc, "ok", json_boolean(ok));
    json_object_set_new(doc, "command", json_string(cas_verb_name(j->cmd.verb)));
    json_object_set_new(doc, "text", json_string(text));
    if (!json_object_get(doc, "final")) /* only create's progress says false */
        json_object_set_new(doc, "final", json_true());
    char *js = json_dumps(doc, JSON_COMPACT);
    cas_send(j->w, j->impu, j->call_id, ++j->cseq, text, js ? js : "{\"ok\":false}");
    cas_json_free(js);
    json_decref(doc);
}

/* An error result ends the job. */
static void job_error(struct cas_job *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_error(struct cas_job *j, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    LOG_I("cloudas", "event=command_failed impu=%s command=\"%s\" code=%d why=\"%s\"", j->impu,
          cas_verb_name(j->cmd.verb), code, msg);
    if (j->sub) {
        struct cas_sub *sub = j->sub;
        j->sub = NULL;
        job_free(j);
        cas_sub_failed(sub, code, msg);
        return;
    }
    json_t *d = json_pack("{s:{s:i,s:s}}", "error", "code", code, "message", msg);
    job_send(j, false, d, "error %d: %s", code, msg);
    job_free(j);
}

static void job_later(struct cas_job *j, unsigned ms, job_fn fn)
{
    j->on_timer = fn;
    if (ims_timer_start(j->w->loop, &j->timer, ms) != 0)
        job_error(j, 503, "the cloud AS is overloaded (no timer)");
}

static void timer_cb(struct ims_loop *loop, struct ims_timer *t)
{
    struct cas_job *j = t->data;
    j->on_timer(j);
}

/* The message of an OpenStack error body: the first "message" found in
 * {"error":{...}}, {"itemNotFound":{...}}, {"NeutronError":{...}}, ... */
static void os_message(const struct ims_http_rsp *rsp, char *out, size_t cap)
{
    snprintf(out, cap, "HTTP %ld", rsp->status);
    json_t *o = json_loadb(rsp->body, rsp->len, 0, NULL);
    const char *k;
    json_t *v;
    if (json_is_object(o))
        json_object_foreach(o, k, v)
        {
            json_t *m = json_is_object(v) ? json_object_get(v, "message") : NULL;
            if (json_is_string(m)) {
                snprintf(out, cap, "%s", json_string_value(m));
                break;
            }
        }
    json_decref(o);
}

static void http_cb(void *arg, int rc, const struct ims_http_rsp *rsp, const char *err)
{
    struct cas_job *j = arg;
    j->http = NULL;
    if (rc) {
        /* never a hang: the HTTP timeout ends every call ([as] http_timeout_ms) */
        job_error(j, rc == IMS_ETIMEDOUT ? 504 : 503, "%s unavailable (%s)", j->service,
                  err ? err : ims_strerror(rc));
        return;
    }
    if (rsp->status >= 400) {
        char m[512];
        os_message(rsp, m, sizeof(m));
        if (rsp->status == 401 && j->id) /* token revoked meanwhile: get a new one next time */
            ident_unlink(j->w, j->id);
        /* past 599 no HTTP status means anything (RFC 9110 §15): a bad gateway */
        job_error(j, rsp->status < 600 ? (int)rsp->status : 502, "%s: %s", j->service, m);
        return;
    }
    j->on_rsp(j, rsp);
}

/* Sends a request for the job; on_rsp gets 2xx/3xx answers, the rest ends
 * the job with an error MESSAGE. */
static void job_http(struct cas_job *j, const char *service, const char *method, const char *url,
                     json_t *body, job_rsp_fn on_rsp)
{
    char tok[4096], *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    const char *hdrs[] = { tok, "Content-Type: application/json", "Accept: application/json",
                           NOVA_VERSION, NULL };
    snprintf(tok, sizeof(tok), "X-Auth-Token: %s", j->id && j->id->token ? j->id->token : "");
    struct ims_http_opts o = {
        .method = method,
        .url = url,
        .headers = hdrs,
        .body = js,
        .body_len = js ? strlen(js) : 0,
        .timeout_ms = j->w->as->http_timeout_ms,
    };
    j->service = service;
    j->on_rsp = on_rsp;
    int rc = ims_http_send(j->w->http, &o, http_cb, j, &j->http);
    ims_wipe(tok, sizeof(tok));
    cas_json_free(js);
    if (rc)
        job_error(j, 503, "%s: cannot send the request (%s)", service, ims_strerror(rc));
}

static json_t *rsp_json(const struct ims_http_rsp *rsp)
{
    return json_loadb(rsp->body, rsp->len, 0, NULL);
}

/* The list named key in an answer (*o owns it), or NULL after ending the
 * job with 502: a body without it is no answer to the request, and must
 * not read as an empty list ("0 rules", "no flavor", a free name). */
static json_t *answer_list(struct cas_job *j, const struct ims_http_rsp *rsp, const char *key,
                           json_t **o)
{
    *o = rsp_json(rsp);
    json_t *arr = json_object_get(*o, key);
    if (json_is_array(arr))
        return arr;
    json_decref(*o);
    *o = NULL;
    job_error(j, 502, "%s: unexpected answer (no %s list)", j->service, key);
    return NULL;
}

/* ---------------------------------------------------------------- servers */

static json_t *server_summary(json_t *s)
{
    json_t *o = json_object();
    static const char *const keys[] = { "id", "name", "status", "created" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(s, keys[i]);
        if (json_is_string(v))
            json_object_set(o, keys[i], v);
    }
    json_t *f = json_object_get(s, "fault");
    json_t *fm = json_is_object(f) ? json_object_get(f, "message") : NULL;
    if (json_is_string(fm))
        json_object_set(o, "fault", fm);
    return o;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_is_object(o) ? json_object_get(o, k) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}

/* An id from an answer that the next request puts in its URL (a server's,
 * a project's): UUIDs and hex in practice.  Anything that could change the
 * path or the query ('/', '?', '%', "..", a space, CR LF) is refused. */
static bool id_ok(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~");
    return n > 0 && s[n] == '\0' && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static void on_list(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "servers", &o);
    if (!arr)
        return;
    if (j->sub) {
        struct cas_sub *sub = j->sub;
        j->sub = NULL;
        job_free(j);
        cas_sub_polled(sub, arr);
        json_decref(o);
        return;
    }
    char text[1500] = "";
    size_t k = 0, i, total = json_array_size(arr);
    json_t *s, *list = json_array();
    json_array_foreach(arr, i, s)
    {
        if (i == CAS_LIST_MAX) /* one MESSAGE stays small (UDP) */
            break;
        json_array_append_new(list, server_summary(s));
        int n = snprintf(text + k, sizeof(text) - k, "%s%s (%s)", i ? ", " : "",
                         jstr(s, "name"), jstr(s, "status"));
        if (n > 0 && (size_t)n < sizeof(text) - k)
            k += (size_t)n;
        else
            text[k] = '\0'; /* no half item, nor half a UTF-8 character */
    }
    json_decref(o);
    json_t *d = json_pack("{s:o,s:I}", "servers", list, "total", (json_int_t)total);
    if (total > CAS_LIST_MAX)
        job_send(j, true, d, "%zu servers, the first %d: %s", total, CAS_LIST_MAX, text);
    else
        job_send(j, true, d, "%zu server%s%s%s", total, total == 1 ? "" : "s", total ? ": " : "",
                 text);
    job_free(j);
}

/* For name-based commands: the one server of the project whose name or id
 * is cmd.name (Nova scopes the list by the token's project). */
static json_t *find_server(struct cas_job *j, json_t *arr, int *matches)
{
    json_t *s, *hit = NULL;
    size_t i;
    *matches = 0;
    json_array_foreach(arr, i, s)
    {
        if (strcmp(jstr(s, "id"), j->cmd.name) == 0) {
            *matches = 1;
            return s;
        }
        if (strcmp(jstr(s, "name"), j->cmd.name) == 0) {
            hit = s;
            (*matches)++;
        }
    }
    return hit;
}

static void do_action(struct cas_job *j);

static void on_servers_for_name(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "servers", &o);
    if (!arr)
        return;
    int n;
    json_t *s = find_server(j, arr, &n);
    if (n > 1) {
        json_decref(o);
        job_error(j, 409, "%d servers are named '%s'; use the id", n, j->cmd.name);
        return;
    }
    if (!s) {
        json_decref(o);
        job_error(j, 404, "no server '%s' in your project", j->cmd.name);
        return;
    }
    if (!id_ok(jstr(s, "id")) || strlen(jstr(s, "id")) >= sizeof(j->server_id)) {
        json_decref(o);
        job_error(j, 502, "Nova: the server '%s' has no usable id", j->cmd.name);
        return;
    }
    snprintf(j->server_id, sizeof(j->server_id), "%s", jstr(s, "id"));
    snprintf(j->server_name, sizeof(j->server_name), "%s", jstr(s, "name"));
    snprintf(j->status, sizeof(j->status), "%s", jstr(s, "status"));
    if (j->cmd.verb == CAS_SHOW) {
        json_t *sum = server_summary(s);
        json_t *fl = json_object_get(s, "flavor");
        if (json_is_object(fl))
            json_object_set(sum, "flavor", fl);
        job_send(j, true, json_pack("{s:o}", "server", sum), "%s (%s): %s", j->server_name,
                 j->server_id, j->status);
        json_decref(o);
        job_free(j);
        return;
    }
    json_decref(o);
    do_action(j);
}

static void on_action_done(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    static const char *const past[] = { [CAS_START] = "starting", [CAS_STOP] = "stopping",
                                        [CAS_DELETE] = "deleting" };
    json_t *d = json_pack("{s:{s:s,s:s}}", "server", "id", j->server_id, "name", j->server_name);
    job_send(j, true, d, "%s %s (%s)", past[j->cmd.verb], j->server_name, j->server_id);
    job_free(j);
}

static void do_action(struct cas_job *j)
{
    char url[CAS_URL_MAX + 128];
    if (j->cmd.verb == CAS_DELETE) {
        snprintf(url, sizeof(url), "%s/servers/%s", j->id->compute, j->server_id);
        job_http(j, "Nova", "DELETE", url, NULL, on_action_done);
        return;
    }
    snprintf(url, sizeof(url), "%s/servers/%s/action", j->id->compute, j->server_id);
    json_t *b = json_pack("{s:n}", j->cmd.verb == CAS_START ? "os-start" : "os-stop");
    job_http(j, "Nova", "POST", url, b, on_action_done);
}

/* ---- create: name free? -> flavor -> image -> POST -> poll until ACTIVE ---- */

static void poll_server(struct cas_job *j);

static void on_poll(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o = rsp_json(rsp), *s = json_object_get(o, "server");
    const char *st = jstr(s, "status");
    bool changed = strcmp(st, j->status) != 0;
    snprintf(j->status, sizeof(j->status), "%s", st);
    bool done = strcmp(st, "ACTIVE") == 0 || strcmp(st, "ERROR") == 0;
    if (strcmp(st, "ERROR") == 0) {
        json_t *d = json_pack("{s:o}", "server", server_summary(s));
        const char *fault = jstr(json_object_get(s, "fault"), "message");
        job_send(j, false, d, "%s (%s) failed: ERROR%s%s", j->server_name, j->server_id,
                 *fault ? ": " : "", fault);
    } else if (changed || done) {
        json_t *d = json_pack("{s:o,s:b}", "server", server_summary(s), "final", done);
        job_send(j, true, d, "%s (%s): %s", j->server_name, j->server_id, st);
    }
    json_decref(o);
    if (done) {
        job_free(j);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (now >= j->deadline_ms) {
        job_send(j, true, json_pack("{s:{s:s,s:s},s:b}", "server", "id", j->server_id, "status",
                                    j->status, "final", 1),
                 "%s (%s) is still %s after %u s; ask with 'show %s'", j->server_name,
                 j->server_id, j->status, j->w->as->build_timeout_s, j->server_name);
        job_free(j);
        return;
    }
    /* back-off: poll_ms doubling up to poll_max_ms */
    unsigned delay = j->delay_ms;
    j->delay_ms = delay * 2 > j->w->as->poll_max_ms ? j->w->as->poll_max_ms : delay * 2;
    job_later(j, delay, poll_server); /* last: on failure it frees j */
}

static void poll_server(struct cas_job *j)
{
    char url[CAS_URL_MAX + 128];
    snprintf(url, sizeof(url), "%s/servers/%s", j->id->compute, j->server_id);
    job_http(j, "Nova", "GET", url, NULL, on_poll);
}

static void on_created(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o = rsp_json(rsp), *s = json_object_get(o, "server");
    const char *sid = jstr(s, "id");
    if (id_ok(sid) && strlen(sid) < sizeof(j->server_id))
        snprintf(j->server_id, sizeof(j->server_id), "%s", sid);
    json_decref(o);
    if (!j->server_id[0]) {
        job_error(j, 502, "Nova: no usable server id in the create answer");
        return;
    }
    snprintf(j->server_name, sizeof(j->server_name), "%s", j->cmd.name);
    snprintf(j->status, sizeof(j->status), "BUILD");
    job_send(j, true,
             json_pack("{s:{s:s,s:s,s:s},s:b}", "server", "id", j->server_id, "name",
                       j->server_name, "status", "BUILD", "final", 0),
             "creating %s (%s): BUILD", j->server_name, j->server_id);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    j->deadline_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
                     (uint64_t)j->w->as->build_timeout_s * 1000u;
    j->delay_ms = j->w->as->poll_ms;
    job_later(j, j->delay_ms, poll_server);
}

static void do_create(struct cas_job *j)
{
    char url[CAS_URL_MAX + 32];
    snprintf(url, sizeof(url), "%s/servers", j->id->compute);
    json_t *b = json_pack("{s:{s:s,s:s,s:s,s:s}}", "server", "name", j->cmd.name, "imageRef",
                          j->image_id, "flavorRef", j->flavor_id, "networks", "none");
    job_http(j, "Nova", "POST", url, b, on_created);
}

static void on_images(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "images", &o), *im;
    size_t i;
    if (!arr)
        return;
    json_array_foreach(arr, i, im)
    {
        if (strcmp(jstr(im, "status"), "active") != 0)
            continue;
        if (!j->cmd.image[0] || strcmp(jstr(im, "id"), j->cmd.image) == 0 ||
            strcmp(jstr(im, "name"), j->cmd.image) == 0) {
            snprintf(j->image_id, sizeof(j->image_id), "%s", jstr(im, "id"));
            break;
        }
    }
    json_decref(o);
    if (!j->image_id[0]) {
        if (j->cmd.image[0])
            job_error(j, 404, "no active image '%s'", j->cmd.image);
        else
            job_error(j, 404, "no active image to boot from");
        return;
    }
    do_create(j);
}

static void on_flavors(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "flavors", &o), *f;
    size_t i;
    if (!arr)
        return;
    json_int_t best_ram = -1;
    json_array_foreach(arr, i, f)
    {
        if (j->cmd.flavor[0]) {
            if (strcmp(jstr(f, "id"), j->cmd.flavor) == 0 ||
                strcmp(jstr(f, "name"), j->cmd.flavor) == 0) {
                snprintf(j->flavor_id, sizeof(j->flavor_id), "%s", jstr(f, "id"));
                break;
            }
            continue;
        }
        json_int_t ram = json_integer_value(json_object_get(f, "ram"));
        if (best_ram < 0 || ram < best_ram) { /* no flavor given: the smallest */
            best_ram = ram;
            snprintf(j->flavor_id, sizeof(j->flavor_id), "%s", jstr(f, "id"));
        }
    }
    json_decref(o);
    if (!j->flavor_id[0]) {
        job_error(j, 404, "no flavor '%s'", j->cmd.flavor[0] ? j->cmd.flavor : "at all");
        return;
    }
    if (!j->id->image[0]) {
        job_error(j, 503, "your token's catalog has no image service");
        return;
    }
    char url[CAS_URL_MAX + 64];
    snprintf(url, sizeof(url), "%s/v2/images?status=active&limit=100", j->id->image);
    job_http(j, "Glance", "GET", url, NULL, on_images);
}

static void on_servers_for_create(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "servers", &o);
    int n = 0;
    if (!arr)
        return;
    find_server(j, arr, &n);
    json_decref(o);
    if (n) { /* the other commands name servers: names stay unique per project */
        job_error(j, 409, "a server named '%s' already exists", j->cmd.name);
        return;
    }
    char url[CAS_URL_MAX + 32];
    snprintf(url, sizeof(url), "%s/flavors/detail", j->id->compute);
    job_http(j, "Nova", "GET", url, NULL, on_flavors);
}

/* ---------------------------------------------------------------- quota */

static void on_limits(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o = rsp_json(rsp);
    json_t *abs = json_object_get(json_object_get(o, "limits"), "absolute");
    if (!json_is_object(abs)) {
        json_decref(o);
        job_error(j, 502, "Nova: unexpected answer to the limits request");
        return;
    }
#define LIM(k) (long long)json_integer_value(json_object_get(abs, k))
    json_t *d = json_pack("{s:O}", "quota", abs);
    job_send(j, true, d, "instances %lld/%lld, cores %lld/%lld, RAM %lld/%lld MB",
             LIM("totalInstancesUsed"), LIM("maxTotalInstances"), LIM("totalCoresUsed"),
             LIM("maxTotalCores"), LIM("totalRAMUsed"), LIM("maxTotalRAMSize"));
#undef LIM
    json_decref(o);
    job_free(j);
}

/* ---------------------------------------------------------------- secgroups */

static void on_rules(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "security_group_rules", &o), *r;
    if (!arr)
        return;
    json_t *list = json_array();
    char text[1500] = "";
    size_t k = 0, i;
    json_array_foreach(arr, i, r)
    {
        if (strcmp(jstr(r, "direction"), "ingress") != 0)
            continue;
        if (json_array_size(list) == CAS_LIST_MAX) /* one MESSAGE stays small */
            break;
        json_t *mn = json_object_get(r, "port_range_min"), *mx = json_object_get(r, "port_range_max");
        json_array_append_new(list, json_pack("{s:s,s:s,s:O?,s:O?,s:s}", "id", jstr(r, "id"),
                                              "protocol", jstr(r, "protocol"), "port_min", mn,
                                              "port_max", mx, "cidr", jstr(r, "remote_ip_prefix")));
        int n = snprintf(text + k, sizeof(text) - k, "%s%s %s %lld-%lld %s",
                         json_array_size(list) > 1 ? ", " : "", jstr(r, "id"),
                         *jstr(r, "protocol") ? jstr(r, "protocol") : "any",
                         (long long)json_integer_value(mn), (long long)json_integer_value(mx),
                         *jstr(r, "remote_ip_prefix") ? jstr(r, "remote_ip_prefix") : "(group)");
        if (n > 0 && (size_t)n < sizeof(text) - k)
            k += (size_t)n;
        else
            text[k] = '\0'; /* no half item, nor half a UTF-8 character */
    }
    size_t count = json_array_size(list);
    json_decref(o);
    job_send(j, true, json_pack("{s:o}", "rules", list), "%zu ingress rule%s%s%s", count,
             count == 1 ? "" : "s", count ? ": " : "", text);
    job_free(j);
}

static void on_rule_added(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o = rsp_json(rsp);
    const char *id = jstr(json_object_get(o, "security_group_rule"), "id");
    json_t *d = json_pack("{s:{s:s}}", "rule", "id", id);
    job_send(j, true, d, "rule %s added: %s %u-%u from %s", id, j->cmd.proto, j->cmd.port_min,
             j->cmd.port_max, j->cmd.cidr);
    json_decref(o);
    job_free(j);
}

static void on_default_group(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    json_t *o, *arr = answer_list(j, rsp, "security_groups", &o);
    if (!arr)
        return;
    const char *sg = jstr(json_array_get(arr, 0), "id");
    if (!*sg) {
        json_decref(o);
        job_error(j, 404, "your project has no 'default' security group");
        return;
    }
    char url[CAS_URL_MAX + 64];
    snprintf(url, sizeof(url), "%s/v2.0/security-group-rules", j->id->network);
    json_t *b = json_pack("{s:{s:s,s:s,s:s,s:s,s:i,s:i,s:s}}", "security_group_rule",
                          "security_group_id", sg, "direction", "ingress", "ethertype",
                          strchr(j->cmd.cidr, ':') ? "IPv6" : "IPv4", "protocol", j->cmd.proto,
                          "port_range_min", (int)j->cmd.port_min, "port_range_max",
                          (int)j->cmd.port_max, "remote_ip_prefix", j->cmd.cidr);
    if (strcmp(j->cmd.proto, "icmp") == 0) { /* ICMP has types, not ports */
        json_t *r = json_object_get(b, "security_group_rule");
        json_object_del(r, "port_range_min");
        json_object_del(r, "port_range_max");
    }
    json_decref(o);
    job_http(j, "Neutron", "POST", url, b, on_rule_added);
}

static void on_rule_deleted(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    job_send(j, true, json_pack("{s:{s:s}}", "rule", "id", j->cmd.name), "rule %s deleted",
             j->cmd.name);
    job_free(j);
}

/* ---------------------------------------------------------------- dispatch */

static void job_run(struct cas_job *j)
{
    struct cas_ident *id = j->id;
    char url[CAS_URL_MAX + 256];
    bool nova = j->cmd.verb <= CAS_DELETE || j->cmd.verb == CAS_QUOTA;
    if (nova && !id->compute[0]) {
        job_error(j, 503, "your token's catalog has no compute service");
        return;
    }
    if (!nova && !id->network[0]) {
        job_error(j, 503, "your token's catalog has no network service");
        return;
    }
    switch (j->cmd.verb) {
    case CAS_LIST:
        snprintf(url, sizeof(url), "%s/servers/detail", id->compute);
        job_http(j, "Nova", "GET", url, NULL, on_list);
        break;
    case CAS_SHOW:
    case CAS_START:
    case CAS_STOP:
    case CAS_DELETE:
        snprintf(url, sizeof(url), "%s/servers/detail", id->compute);
        job_http(j, "Nova", "GET", url, NULL, on_servers_for_name);
        break;
    case CAS_CREATE:
        snprintf(url, sizeof(url), "%s/servers/detail", id->compute);
        job_http(j, "Nova", "GET", url, NULL, on_servers_for_create);
        break;
    case CAS_QUOTA:
        snprintf(url, sizeof(url), "%s/limits", id->compute);
        job_http(j, "Nova", "GET", url, NULL, on_limits);
        break;
    case CAS_SG_LIST:
        snprintf(url, sizeof(url), "%s/v2.0/security-group-rules?project_id=%s", id->network,
                 id->project_id);
        job_http(j, "Neutron", "GET", url, NULL, on_rules);
        break;
    case CAS_SG_ADD:
        snprintf(url, sizeof(url), "%s/v2.0/security-groups?name=default&project_id=%s",
                 id->network, id->project_id);
        job_http(j, "Neutron", "GET", url, NULL, on_default_group);
        break;
    case CAS_SG_DELETE:
        snprintf(url, sizeof(url), "%s/v2.0/security-group-rules/%s", id->network, j->cmd.name);
        job_http(j, "Neutron", "DELETE", url, NULL, on_rule_deleted);
        break;
    case CAS_HELP:
        break;
    }
}

/* The policy decides before any OpenStack call (docs/policy.md: cloud:*
 * rules compare the token's project with target.project_id). */
static void job_authorized(struct cas_job *j)
{
    struct cas_ident *id = j->id;
    const char *roles[CAS_ROLES_MAX];
    for (size_t i = 0; i < id->nroles; i++)
        roles[i] = id->roles[i];
    const char *methods[1] = { id->method };
    struct ims_policy_creds cr = {
        .user_id = id->user_id,
        .project_id = id->project_id,
        .project_domain_id = id->domain_id[0] ? id->domain_id : NULL,
        .roles = roles,
        .n_roles = id->nroles,
        .methods = methods,
        .n_methods = id->method[0] ? 1 : 0,
    };
    struct ims_policy_kv kv = { "target.project_id", id->project_id };
    struct ims_policy_target tg = { &kv, 1 };
    const char *rule = cas_verb_rule(j->cmd.verb);
    struct ims_policy_reason why;
    if (!ims_policy_enforce(j->w->as->policy, rule, &cr, &tg, &why)) {
        LOG_N("cloudas", "event=policy_denied impu=%s rule=%s project=%s", j->impu, rule,
              id->project_id);
        job_error(j, 403, "forbidden by policy rule %s", rule);
        return;
    }
    job_run(j);
}

/* ---------------------------------------------------------------- Keystone */

/* A catalog URL the requests may start with: http(s), printable ASCII and
 * no space (what follows a space or CR LF would be more of the request).
 * Another is as good as none: "your token's catalog has no ... service". */
static bool url_ok(const char *u, size_t n)
{
    if (!(n > 7 && strncmp(u, "http://", 7) == 0) && !(n > 8 && strncmp(u, "https://", 8) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if (u[i] <= 0x20 || u[i] >= 0x7f)
            return false;
    return true;
}

static void copy_endpoint(json_t *catalog, const char *type, char *out, size_t cap)
{
    size_t i, k;
    json_t *svc, *ep;
    json_array_foreach(catalog, i, svc)
    {
        if (strcmp(jstr(svc, "type"), type) != 0)
            continue;
        json_array_foreach(json_object_get(svc, "endpoints"), k, ep)
        {
            if (strcmp(jstr(ep, "interface"), "public") != 0)
                continue;
            const char *u = jstr(ep, "url");
            size_t n = strlen(u);
            while (n && u[n - 1] == '/')
                n--;
            if (n < cap && url_ok(u, n)) {
                memcpy(out, u, n);
                out[n] = '\0';
            }
            return;
        }
    }
}

/* POST /v3/auth/tokens's body -> the ident (token set by the caller). */
static int parse_token(json_t *o, struct cas_ident *id)
{
    json_t *t = json_object_get(o, "token");
    json_t *proj = json_object_get(t, "project");
    if (!json_is_object(proj))
        return IMS_EPROTO; /* an application credential's token is project-scoped */
    snprintf(id->user_id, sizeof(id->user_id), "%s", jstr(json_object_get(t, "user"), "id"));
    if (!id_ok(jstr(proj, "id")) || strlen(jstr(proj, "id")) >= sizeof(id->project_id))
        return IMS_EPROTO; /* it goes into Neutron's query strings, whole */
    snprintf(id->project_id, sizeof(id->project_id), "%s", jstr(proj, "id"));
    snprintf(id->domain_id, sizeof(id->domain_id), "%s",
             jstr(json_object_get(proj, "domain"), "id"));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(t, "roles"), i, r)
    {
        if (id->nroles == CAS_ROLES_MAX)
            break;
        snprintf(id->roles[id->nroles++], sizeof(id->roles[0]), "%s", jstr(r, "name"));
    }
    snprintf(id->method, sizeof(id->method), "%s",
             json_string_value(json_array_get(json_object_get(t, "methods"), 0))
                 ? json_string_value(json_array_get(json_object_get(t, "methods"), 0))
                 : "");
    json_t *cat = json_object_get(t, "catalog");
    copy_endpoint(cat, "compute", id->compute, sizeof(id->compute));
    copy_endpoint(cat, "network", id->network, sizeof(id->network));
    copy_endpoint(cat, "image", id->image, sizeof(id->image));
    struct tm tm = { 0 };
    const char *exp = jstr(t, "expires_at");
    if (!id->project_id[0] || !strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm))
        return IMS_EPROTO;
    id->expires = (int64_t)timegm(&tm);
    return 0;
}

static void on_token(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    if (rsp->status != 201 || !rsp->header) {
        job_error(j, 502, "Keystone: unexpected answer %ld to the delegation", rsp->status);
        return;
    }
    struct cas_ident *id = ims_calloc(1, sizeof(*id));
    json_t *o = rsp_json(rsp);
    int rc = id ? parse_token(o, id) : IMS_ENOMEM;
    json_decref(o);
    size_t tl = strlen(rsp->header);
    if (rc == 0 && !(id->token = ims_alloc(tl + 1)))
        rc = IMS_ENOMEM;
    if (rc) {
        if (id)
            ident_free(id);
        job_error(j, 502, "Keystone: cannot use the delegation's token (%s)", ims_strerror(rc));
        return;
    }
    memcpy(id->token, rsp->header, tl + 1);
    snprintf(id->impu, sizeof(id->impu), "%s", j->impu);
    struct cas_ident *old = ident_find(j->w, j->impu);
    if (old)
        ident_unlink(j->w, old);
    id->next = j->w->idents;
    j->w->idents = id;
    id->users++;
    j->id = id;
    LOG_I("cloudas", "event=delegation_token impu=%s user=%s project=%s roles=%zu", j->impu,
          id->user_id, id->project_id, id->nroles);
    job_authorized(j);
}

/* The user's own token (RFC 8898 Bearer, forwarded by the S-CSCF on ISC):
 * Keystone validates it (a token may validate itself: Keystone's
 * identity:validate_token allows the token's subject), with its catalog.
 * It must be the served user's: Keystone user name = the IMPU's user part
 * in the service's domain (docs/keystone.md's IMPI convention).  Used for
 * this command only, never cached under the IMPU. */
static void on_bearer(struct cas_job *j, const struct ims_http_rsp *rsp)
{
    struct cas_ident *id = ims_calloc(1, sizeof(*id));
    json_t *o = rsp_json(rsp);
    int rc = id ? parse_token(o, id) : IMS_ENOMEM;
    char want[CAS_IMPU_MAX];
    snprintf(want, sizeof(want), "sip:%s@%.*s",
             jstr(json_object_get(json_object_get(o, "token"), "user"), "name"),
             IMS_SF(j->w->as->service_host));
    json_decref(o);
    if (rc == 0 && strcmp(want, j->impu) != 0) {
        ident_free(id);
        LOG_N("cloudas", "event=bearer_other_user impu=%s", j->impu);
        job_error(j, 403, "the Bearer token is not %s's", j->impu);
        return;
    }
    if (rc) {
        if (id)
            ident_free(id);
        job_error(j, rc == IMS_EPROTO ? 403 : 502,
                  "Keystone: the Bearer token has no project scope (%s)", ims_strerror(rc));
        return;
    }
    id->token = j->bearer; /* the ident owns it now */
    j->bearer = NULL;
    snprintf(id->impu, sizeof(id->impu), "%s", j->impu);
    id->users = 1;
    id->stale = true; /* not in the cache: freed with the job */
    j->id = id;
    LOG_I("cloudas", "event=bearer_token impu=%s user=%s project=%s", j->impu, id->user_id,
          id->project_id);
    job_authorized(j);
}

static void bearer_begin(struct cas_job *j)
{
    char url[CAS_URL_MAX + 32], auth[4096], subj[4096];
    snprintf(url, sizeof(url), "%s/auth/tokens", j->w->as->keystone);
    snprintf(auth, sizeof(auth), "X-Auth-Token: %s", j->bearer);
    snprintf(subj, sizeof(subj), "X-Subject-Token: %s", j->bearer);
    const char *hdrs[] = { auth, subj, "Accept: application/json", NULL };
    struct ims_http_opts o = { .method = "GET", .url = url, .headers = hdrs,
                               .timeout_ms = j->w->as->http_timeout_ms };
    j->service = "Keystone";
    j->on_rsp = on_bearer;
    int rc = ims_http_send(j->w->http, &o, http_cb, j, &j->http);
    ims_wipe(auth, sizeof(auth));
    ims_wipe(subj, sizeof(subj));
    if (rc)
        job_error(j, 503, "Keystone: cannot send the request (%s)", ims_strerror(rc));
}

static const struct cas_deleg *deleg_find(const struct ims_cloudas *as, const char *impu)
{
    for (size_t i = 0; i < as->ndelegs; i++)
        if (strcmp(as->delegs[i].impu, impu) == 0)
            return &as->delegs[i];
    return NULL;
}

static void job_begin(struct cas_job *j)
{
    if (j->cmd.verb == CAS_HELP) {
        job_send(j, true, json_pack("{s:s}", "help", cas_help_text()), "%s", cas_help_text());
        job_free(j);
        return;
    }
    if (j->bearer) {
        bearer_begin(j);
        return;
    }
    struct cas_ident *id = ident_find(j->w, j->impu);
    if (id) {
        id->users++;
        j->id = id;
        job_authorized(j);
        return;
    }
    const struct cas_deleg *d = deleg_find(j->w->as, j->impu);
    if (!d) {
        job_error(j, 403, "%s has delegated no Keystone identity to the cloud service", j->impu);
        return;
    }
    /* Keystone v3 application credential authentication: a token scoped
     * to the credential's project, with the catalog (the AS never holds
     * an admin token for a user's action) */
    json_t *b = json_pack("{s:{s:{s:[s],s:{s:s,s:s}}}}", "auth", "identity", "methods",
                          "application_credential", "application_credential", "id", d->ac_id,
                          "secret", d->ac_secret);
    char *js = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char url[CAS_URL_MAX + 32];
    snprintf(url, sizeof(url), "%s/auth/tokens", j->w->as->keystone);
    const char *hdrs[] = { "Content-Type: application/json", NULL };
    struct ims_http_opts o = { .method = "POST", .url = url, .headers = hdrs, .body = js,
                               .body_len = js ? strlen(js) : 0,
                               .want_header = "X-Subject-Token",
                               .timeout_ms = j->w->as->http_timeout_ms };
    j->service = "Keystone";
    j->on_rsp = on_token;
    int rc = js ? ims_http_send(j->w->http, &o, http_cb, j, &j->http) : IMS_ENOMEM;
    if (js) {
        ims_wipe(js, strlen(js));
        cas_json_free(js);
    }
    if (rc)
        job_error(j, 503, "Keystone: cannot send the request (%s)", ims_strerror(rc));
}

void cas_job_cancel(struct cas_job *j)
{
    if (j)
        job_free(j);
}

int cas_job_poll(struct cas_worker *w, const char *impu, struct cas_sub *sub,
                 struct cas_job **out)
{
    struct cas_cmd cmd = { .verb = CAS_LIST };
    int rc = cas_job_start(w, impu, ims_str_cstr(NULL), ims_str_cstr(NULL), &cmd);
    if (rc == 0) {
        w->jobs->sub = sub; /* cas_job_start put it first */
        *out = w->jobs;
    }
    return rc;
}

int cas_job_start(struct cas_worker *w, const char *impu, ims_str call_id, ims_str bearer,
                  const struct cas_cmd *cmd)
{
    if (w->njobs >= w->as->max_jobs)
        return IMS_ELIMIT;
    struct cas_job *j = ims_calloc(1, sizeof(*j));
    if (!j)
        return IMS_ENOMEM;
    j->w = w;
    j->cmd = *cmd;
    snprintf(j->impu, sizeof(j->impu), "%s", impu);
    ims_str_copy(call_id, j->call_id, sizeof(j->call_id));
    if (bearer.len && bearer.len < 4000) { /* Fernet tokens are ~200 bytes */
        if (!(j->bearer = ims_alloc(bearer.len + 1))) {
            job_free(j);
            return IMS_ENOMEM;
        }
        memcpy(j->bearer, bearer.p, bearer.len);
        j->bearer[bearer.len] = '\0';
    }
    ims_timer_init(&j->timer, timer_cb, j);
    j->next = w->jobs;
    if (w->jobs)
        w->jobs->prev = j;
    w->jobs = j;
    w->njobs++;
    /* begin on the next loop turn, after the 200 to the MESSAGE went out */
    j->on_timer = job_begin;
    if (ims_timer_start(w->loop, &j->timer, 0) != 0) {
        job_free(j);
        return IMS_ELIMIT;
    }
    if (call_id.len) /* not a subscription's poll */
        LOG_I("cloudas", "event=command impu=%s command=\"%s\" name=%s auth=%s", impu,
              cas_verb_name(cmd->verb), cmd->name, j->bearer ? "bearer" : "delegation");
    return 0;
}
