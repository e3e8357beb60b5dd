/* cx_client.h - Cx requests from the I-CSCF and S-CSCF (UAR, MAR, SAR,
 * LIR; TS 29.228/29.229) with one API over two transports:
 *
 *   in-process  when this process also runs the hss role: the request goes
 *               straight to the HSS's handler on its store threads
 *               (ims_hss_local, hss.h) and completes on the caller's loop;
 *   Diameter    otherwise: freeDiameter (dia.h) started by this module as
 *               a client whose peer is the HSS ([diameter] peer); the
 *               answer, decoded on freeDiameter's thread, is copied and
 *               posted to the caller's loop.
 * Both use the same structs (dia/msgs.h) and the caller cannot tell them
 * apart, except by speed.
 *
 * Objects:
 * - struct ims_cx_transport: one per process (freeDiameter is a singleton).
 * - struct ims_cx: one per worker loop and role; a fixed pool of calls
 *   (max_pending) with a deadline each (timeout_ms), so a SIP request never
 *   waits for the HSS longer than that, whatever Diameter does.
 *
 * Lifetime rules:
 * 1. A call completes exactly once, on the ims_cx's loop: with the answer,
 *    or IMS_ETIMEDOUT at its deadline (a late answer is then dropped).  If
 *    ims_cx_send() fails the callback never runs (callback rule).
 * 2. The request's slices are copied by ims_cx_send(); the answer is
 *    borrowed for the callback (copy what outlives it; it may hold secrets:
 *    XRES, CK, IK, HA1 - the copy here is wiped when freed).
 * 3. Shutdown: stop the loops, ims_cx_transport_stop() (no freeDiameter
 *    callback after it), stop the HSS role (its store threads post their
 *    last completions to the stopped loops), free the loops (pending posts
 *    are dropped and their memory freed), then ims_cx_free() each client
 *    and ims_cx_transport_free(). */
#ifndef IMS_CSCF_CX_CLIENT_H
#define IMS_CSCF_CX_CLIENT_H

#include <stddef.h>

#include "dia/dia.h"
#include "dia/msgs.h"

struct ims_hss;
struct ims_loop;
struct ims_cx_transport;
struct ims_cx;

/* Test seam (unit tests of the roles, no HSS): answers every request at
 * once; 0 with *ans filled (its slices must stay valid until the callback
 * ran: the next loop turn), or IMS_ETIMEDOUT for "never answers" (the
 * call's deadline ends it).  Delivered on the next loop turn like the real
 * transports. */
typedef int (*ims_cx_fake_fn)(void *ctx, unsigned cmd, const void *req, struct dia_ans *ans);

struct ims_cx_transport_cfg {
    ims_cx_fake_fn fake;           /* tests only: takes precedence */
    void *fake_ctx;
    struct ims_hss *hss;           /* non-NULL: in-process */
    const struct ims_dia_cfg *dia; /* else: started as a Diameter client (port 0) */
    const char *dest_realm;        /* Destination-Realm of every request */
    const char *dest_host;         /* Destination-Host, or NULL (route by realm) */
};

/* 0, or an IMS_E* error with err filled (ims_dia_start's). */
int ims_cx_transport_start(const struct ims_cx_transport_cfg *cfg,
                           struct ims_cx_transport **out, char *err, size_t errsz);
/* Diameter: stops freeDiameter (no callback after this returns).  In-process:
 * nothing (the HSS role is stopped by its owner).  NULL is a no-op. */
void ims_cx_transport_stop(struct ims_cx_transport *t);
/* Frees what is left (requests freeDiameter never completed).  NULL is a
 * no-op. */
void ims_cx_transport_free(struct ims_cx_transport *t);
/* True when requests go to an HSS in this process. */
bool ims_cx_transport_local(const struct ims_cx_transport *t);

/* A client on loop (which must allow max_pending more armed timers).
 * 0, IMS_EINVAL, IMS_ENOMEM. */
int ims_cx_new(struct ims_cx_transport *t, struct ims_loop *loop, size_t max_pending,
               unsigned timeout_ms, struct ims_cx **out);
/* With the loop stopped or freed: forgets the calls in flight (no callback
 * runs).  NULL is a no-op. */
void ims_cx_free(struct ims_cx *c);

/* rc: 0 (ans is the answer: check its Result-Code / Experimental-Result),
 * IMS_ETIMEDOUT (no answer in time), IMS_EPROTO (an answer we could not
 * decode), IMS_EBACKEND (the HSS failed: store error in-process). */
typedef void (*ims_cx_fn)(int rc, const struct dia_ans *ans, void *ud);

/* Sends cmd (DIA_CMD_UAR, _MAR, _SAR or _LIR) with req (struct cx_uar,
 * cx_mar, cx_sar or cx_lir); an empty dest_realm/dest_host is filled from
 * the transport's configuration.
 * 0, IMS_ELIMIT (max_pending calls in flight, or no loop timer for the
 * deadline), IMS_EINVAL (cmd, or the transport is stopping), IMS_ENOMEM,
 * IMS_EBACKEND (Diameter refused). */
int ims_cx_send(struct ims_cx *c, unsigned cmd, const void *req, ims_cx_fn cb, void *ud);

/* A SAR for one IMPU with User-Data-Already-Available 0 (the S-CSCF always
 * takes a fresh profile, TS 29.228 §6.1.2); an empty impi sends no
 * User-Name (an unregistered user's SAR names none).  The slices stay the
 * caller's. */
void ims_cx_sar_init(struct cx_sar *q, ims_str impi, ims_str impu, ims_str server_name,
                     int32_t sat);

/* ---- HSS-initiated requests to the S-CSCF (RTR, PPR: TS 29.228 §6.1.3,
 * §6.1.4) ----
 *
 * fn gets every RTR/PPR the HSS sends us: over Diameter on freeDiameter's
 * thread, in-process on the HSS's loop (hss.h: ims_hss_set_local_scscf,
 * matched by server_name, the Server-Name our SARs give).  It must not
 * block (a store update under a shard lock is fine; SIP work is posted to a
 * worker loop); req (struct cx_rtr or struct cx_ppr) is borrowed for the
 * call; the return value is the answer's Result-Code (RTA/PPA).  Until fn
 * is set, RTR/PPR are answered DIAMETER_UNABLE_TO_COMPLY (Diameter) or not
 * handed over (in-process: the HSS reports the S-CSCF unknown).  After
 * ims_cx_transport_stop() fn is not called again. */
typedef uint32_t (*ims_cx_serve_fn)(void *ctx, unsigned cmd, const void *req);
void ims_cx_transport_serve(struct ims_cx_transport *t, const char *server_name,
                            ims_cx_serve_fn fn, void *ctx);
/* Hands an RTR/PPR to that handler as the transports do (and as tests do):
 * its Result-Code, or DIA_UNABLE_TO_COMPLY when there is none. */
uint32_t ims_cx_transport_hss_request(struct ims_cx_transport *t, unsigned cmd, const void *req);

/* Calls in flight (for stats and tests). */
size_t ims_cx_pending(const struct ims_cx *c);

/* The Diameter outcome of an answer as one of these, for the roles' SIP
 * mapping. */
enum ims_cx_outcome {
    IMS_CX_OK = 0,         /* 2001 or an experimental 2xxx */
    IMS_CX_USER_UNKNOWN,   /* 5001 */
    IMS_CX_IDENTITIES_DONT_MATCH, /* 5002 */
    IMS_CX_NOT_REGISTERED, /* experimental 5003 (IDENTITY_NOT_REGISTERED) */
    IMS_CX_ROAMING_NOT_ALLOWED,   /* 5004 experimental */
    IMS_CX_AUTH_REJECTED,  /* Result-Code 5003 (AUTHORIZATION_REJECTED) */
    IMS_CX_SCHEME_UNSUPPORTED,    /* 5006 */
    IMS_CX_REFUSED,        /* any other permanent failure (5xxx) */
    IMS_CX_UNAVAILABLE,    /* busy, unable to deliver/comply, 3xxx, 4xxx, no answer */
};
enum ims_cx_outcome ims_cx_outcome(int rc, const struct dia_ans *ans);

#endif
