/* dereg.c - the deregistrations the S-CSCF tells the HSS of on its own, and
 * their retries.
 *
 * When a registration ends without a REGISTER from the UE (an expiry:
 * TIMEOUT_DEREGISTRATION; a registration the HSS took and this S-CSCF then
 * refused: USER_DEREGISTRATION; an AS failure whose iFC ends the session:
 * ADMINISTRATIVE_DEREGISTRATION, thirdparty.c), nobody waits for the SAA.
 * If that SAR is lost (HSS unreachable, busy, no answer in time), the HSS
 * keeps the user as registered here (TS 29.228 §6.1.2): LIR and Sh report a
 * registration this S-CSCF no longer has, and an unregistered user's
 * services never run.  So an unavailable answer, or a send that failed at
 * once (no connection to the HSS, the Cx pool full), is retried from the
 * worker's sweep: DEREG_FIRST_MS later, the delay doubling up to
 * DEREG_MAX_MS, DEREG_TRIES attempts in all (about 25 minutes of outage).
 *
 * A retry is dropped when the identity is registered here again by then
 * (any identity of its implicit set: ims_loc_get): that registration's SAR
 * told the HSS since, and a late deregistration would take the whole set
 * back there.  One sent while a new REGISTER of the user is between its SAR
 * and its binding can still overtake it; that window is the SAR's own time.
 *
 * Registrations that lapsed while the process was down (reg_persist.h:
 * found at load) owe the HSS a TIMEOUT_DEREGISTRATION too: worker 0 sends
 * them, DEREG_LAPSED_PER_SWEEP a second (not a burst at the HSS after a
 * long outage), each then retried like the others.
 *
 * Every record is the worker's (its list), in flight or waiting, so the
 * Cx client forgetting calls at shutdown (ims_cx_free) leaks nothing:
 * cscf_dereg_fini frees them all.  Past DEREG_MAX records on a worker a
 * new one is sent once and not retried. */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cscf/cscf_int.h"
#include "cscf/registrar.h"
#include "ev/loop.h"

#define DEREG_FIRST_MS 1000u
#define DEREG_MAX_MS 60000u
#define DEREG_TRIES 30
#define DEREG_MAX 4096u
#define DEREG_LAPSED_PER_SWEEP 200u

struct cscf_dereg {
    struct cscf_dereg *next, **pprev; /* the worker's list */
    struct cscf_worker *w;
    uint64_t due_ms;   /* loop clock; meaningful while waiting */
    unsigned delay_ms; /* the next wait */
    int sat;
    int tries;         /* SARs sent */
    int max_tries;     /* DEREG_TRIES, or 1 past DEREG_MAX records */
    bool in_flight;
    char *impi;        /* into the same allocation */
    char impu[];
};

static void drop(struct cscf_dereg *d)
{
    *d->pprev = d->next;
    if (d->next)
        d->next->pprev = d->pprev;
    d->w->nderegs--;
    ims_free(d);
}

/* After an attempt the HSS did not take (no answer, busy, or not sent at
 * all: no connection to it, the Cx pool full): wait, or give up. */
static void retry_later(struct cscf_dereg *d, int rc, uint32_t result)
{
    if (d->tries >= d->max_tries) {
        LOG_E("scscf",
              "event=deregistration_given_up impu=%s impi=%s sat=%d tries=%d rc=%s result=%u "
              "note=\"the HSS still holds this user as registered here\"",
              d->impu, d->impi, d->sat, d->tries, ims_strerror(rc), result);
        drop(d);
        return;
    }
    d->due_ms = ims_loop_now(d->w->loop) + d->delay_ms;
    LOG_W("scscf", "event=deregistration_retry impu=%s sat=%d tries=%d in_ms=%u rc=%s result=%u",
          d->impu, d->sat, d->tries, d->delay_ms, ims_strerror(rc), result);
    d->delay_ms = d->delay_ms * 2 > DEREG_MAX_MS ? DEREG_MAX_MS : d->delay_ms * 2;
}

static void on_answer(int rc, const struct dia_ans *ans, void *ud)
{
    struct cscf_dereg *d = ud;
    enum ims_cx_outcome o = ims_cx_outcome(rc, ans);
    d->in_flight = false;
    if (o != IMS_CX_UNAVAILABLE) { /* told, or refused for good: nothing to retry */
        LOG_I("scscf", "event=deregistration_answer impu=%s sat=%d tries=%d outcome=%d rc=%s",
              d->impu, d->sat, d->tries, (int)o, ims_strerror(rc));
        drop(d);
        return;
    }
    retry_later(d, rc, ans ? dia_ans_code(ans, NULL) : 0);
}

/* One attempt: 0 (in flight), or ims_cx_send's error. */
static int attempt(struct cscf_dereg *d)
{
    struct cx_sar q;
    ims_cx_sar_init(&q, ims_str_cstr(d->impi), ims_str_cstr(d->impu), ims_str_cstr(d->w->g->s_uri),
                    d->sat);
    d->tries++;
    int rc = ims_cx_send(d->w->scx, DIA_CMD_SAR, &q, on_answer, d);
    d->in_flight = rc == 0;
    return rc;
}

/* What a send that failed at once leaves: IMS_EBACKEND (Diameter refused:
 * no connection to the HSS) and IMS_ELIMIT (the Cx pool full) pass; the
 * rest (a stopping transport, no memory) end the record. */
static bool send_retryable(int rc)
{
    return rc == IMS_EBACKEND || rc == IMS_ELIMIT;
}

int cscf_dereg_send(struct cscf_worker *w, const char *impu, const char *impi, int sat)
{
    size_t lu = strlen(impu) + 1, li = strlen(impi) + 1;
    struct cscf_dereg *d = ims_alloc(sizeof(*d) + lu + li);
    if (!d)
        return IMS_ENOMEM;
    memset(d, 0, sizeof(*d));
    memcpy(d->impu, impu, lu);
    d->impi = d->impu + lu;
    memcpy(d->impi, impi, li);
    d->w = w;
    d->sat = sat;
    d->delay_ms = DEREG_FIRST_MS;
    /* an outage of this size: the first SAR only (kept while in flight) */
    d->max_tries = w->nderegs < DEREG_MAX ? DEREG_TRIES : 1;
    int rc = attempt(d);
    if (rc && !send_retryable(rc)) {
        ims_free(d);
        return rc;
    }
    d->next = w->dereg;
    d->pprev = &w->dereg;
    if (w->dereg)
        w->dereg->pprev = &d->next;
    w->dereg = d;
    w->nderegs++;
    if (rc)
        retry_later(d, rc, 0);
    return 0;
}

/* True when impu (or another identity of its set) is registered here: its
 * SAR told the HSS since, and ours must not take that back. */
static bool registered_here(struct cscf_worker *w, const char *impu, int64_t now_s)
{
    if (ims_loc_get(w->g->loc, ims_str_cstr(impu), now_s, w->reg_a) != 0)
        return false;
    ims_reg_clear(w->reg_a);
    return true;
}

/* Worker 0: the next of the registrations that lapsed while we were down
 * (g->lapsed, "impu\0impi\0" each), unless registered again since. */
static void send_lapsed(struct cscf_worker *w, int64_t now_s)
{
    struct ims_cscf *g = w->g;
    for (unsigned n = 0; n < DEREG_LAPSED_PER_SWEEP && g->lapsed_sent < g->lapsed.len &&
                         w->nderegs < DEREG_MAX;
         n++) {
        const char *impu = g->lapsed.p + g->lapsed_sent;
        const char *impi = impu + strlen(impu) + 1;
        g->lapsed_sent = (size_t)(impi + strlen(impi) + 1 - g->lapsed.p);
        if (registered_here(w, impu, now_s))
            continue;
        int rc = cscf_dereg_send(w, impu, impi, CX_SAT_TIMEOUT_DEREGISTRATION);
        LOG_I("scscf", "event=registration_lapsed_while_down impu=%s impi=%s sar=%s", impu, impi,
              rc ? ims_strerror(rc) : "sent");
    }
    if (g->lapsed.p && g->lapsed_sent >= g->lapsed.len)
        ims_buf_free(&g->lapsed);
}

void cscf_dereg_sweep(struct cscf_worker *w, int64_t now_s)
{
    if (w->idx == 0 && w->g->lapsed.p)
        send_lapsed(w, now_s);
    uint64_t now = ims_loop_now(w->loop);
    struct cscf_dereg *next;
    for (struct cscf_dereg *d = w->dereg; d; d = next) {
        next = d->next;
        if (d->in_flight || d->due_ms > now)
            continue;
        if (registered_here(w, d->impu, now_s)) {
            LOG_I("scscf", "event=deregistration_dropped impu=%s reason=registered_again",
                  d->impu);
            drop(d);
            continue;
        }
        int rc = attempt(d);
        if (rc && send_retryable(rc))
            retry_later(d, rc, 0);
        else if (rc)
            drop(d);
    }
}

void cscf_dereg_fini(struct cscf_worker *w)
{
    while (w->dereg)
        drop(w->dereg);
}
