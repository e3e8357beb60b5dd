/* http.h - a small asynchronous HTTP client on an imscloud event loop:
 * libcurl's multi-socket API with the loop's ios and one loop timer (curl's
 * docs/examples/ephiperfifo.c shape), never curl_easy_perform.  For JSON
 * APIs (OpenStack: Keystone, Nova, Neutron) called by the loop's owner.
 * See docs/internals/cloudas.md.
 *
 * Objects:
 *   struct ims_http      one per event loop; used only from its thread.
 *   struct ims_http_req  one request in flight (opaque; cancel it with
 *                        ims_http_cancel before its callback ran).
 *
 * Lifetime rules:
 * 1. The loop outlives the client; ims_http_free() runs on the loop's
 *    thread and cancels every request still in flight: their callbacks
 *    never run (their owners free their own state).
 * 2. ims_http_send follows the callback rule: on an error return the
 *    callback never runs; on 0 it runs exactly once, from the loop, never
 *    from inside the call, unless the request is cancelled first.
 * 3. The response passed to the callback (status, headers, body) is
 *    borrowed for the callback only.
 * 4. Header and body strings given to ims_http_send are copied.
 * 5. Every request has a whole-request timeout (opts.timeout_ms); a
 *    server that does not answer ends as rc IMS_ETIMEDOUT, a refused
 *    or broken connection as IMS_EBACKEND, never a hang. */
#ifndef IMS_HTTP_HTTP_H
#define IMS_HTTP_HTTP_H

#include <stddef.h>

struct ims_loop;
struct ims_http;
struct ims_http_req;

struct ims_http_rsp {
    long status;         /* HTTP status; 0 when rc != 0 */
    const char *body;    /* NUL-terminated (the NUL not counted in len) */
    size_t len;
    /* The value of the response header named by ims_http_opts.want_header
     * (e.g. "X-Subject-Token"), NUL-terminated, or NULL. */
    const char *header;
};

/* rc: 0 (a response came, whatever its status), IMS_ETIMEDOUT, IMS_EBACKEND
 * (connect/transfer error; err names it), IMS_ELIMIT (body above max_body),
 * IMS_ENOMEM. */
typedef void (*ims_http_cb)(void *arg, int rc, const struct ims_http_rsp *rsp, const char *err);

struct ims_http_opts {
    const char *method;      /* "GET", "POST", "DELETE", "PUT" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;        /* NULL: no body */
    size_t body_len;
    const char *want_header; /* see ims_http_rsp.header; NULL: none */
    unsigned timeout_ms;     /* whole request; 0: 5000 */
    size_t max_body;         /* 0: 1 MiB */
};

/* 0, IMS_ENOMEM, IMS_EIO, IMS_EBACKEND (libcurl init failed). */
int ims_http_new(struct ims_loop *loop, struct ims_http **out);
/* See rule 1.  NULL is a no-op. */
void ims_http_free(struct ims_http *h);

/* Starts a request.  *out (may be NULL) names it for ims_http_cancel.
 * 0, IMS_EINVAL (no method/url), IMS_ENOMEM, IMS_EBACKEND. */
int ims_http_send(struct ims_http *h, const struct ims_http_opts *o, ims_http_cb cb, void *arg,
                  struct ims_http_req **out);
/* Aborts a request whose callback has not run yet: it never runs. */
void ims_http_cancel(struct ims_http *h, struct ims_http_req *r);

#endif
