/* holder.c - a replaceable policy with reference counts (holder.h). */
#include "policy/holder.h"

#include <pthread.h>
#include <stdatomic.h>

#include "base/alloc.h"
#include "base/err.h"
#include "policy/policy.h"

struct ims_policy_ref {
    atomic_uint refs; /* the holder's while current, plus one per taker */
    struct ims_policy *pol;
};

struct ims_policy_holder {
    pthread_mutex_t mu; /* guards cur (the pointer), not the policy */
    struct ims_policy_ref *cur;
};

int ims_policy_holder_new(struct ims_policy_holder **out)
{
    struct ims_policy_holder *h = ims_calloc(1, sizeof(*h));
    if (!h)
        return IMS_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return 0;
}

void ims_policy_ref_put(struct ims_policy_ref *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        ims_policy_free(r->pol);
        ims_free(r);
    }
}

void ims_policy_holder_free(struct ims_policy_holder *h)
{
    if (!h)
        return;
    ims_policy_ref_put(h->cur);
    pthread_mutex_destroy(&h->mu);
    ims_free(h);
}

int ims_policy_holder_load(struct ims_policy_holder *h, const char *path, size_t *nrules,
                           char *err, size_t errsz)
{
    struct ims_policy_ref *r = ims_calloc(1, sizeof(*r));
    if (!r)
        return IMS_ENOMEM;
    int rc = ims_policy_load_file(path, &r->pol, err, errsz);
    if (rc) {
        ims_free(r);
        return rc; /* the current policy stays */
    }
    atomic_init(&r->refs, 1);
    if (nrules)
        *nrules = ims_policy_rule_count(r->pol);
    pthread_mutex_lock(&h->mu);
    struct ims_policy_ref *old = h->cur;
    h->cur = r;
    pthread_mutex_unlock(&h->mu);
    ims_policy_ref_put(old); /* freed now, or by its last taker */
    return 0;
}

struct ims_policy_ref *ims_policy_holder_get(struct ims_policy_holder *h)
{
    pthread_mutex_lock(&h->mu);
    struct ims_policy_ref *r = h->cur;
    if (r) /* under the lock: a reload cannot drop the holder's count meanwhile */
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&h->mu);
    return r;
}

const struct ims_policy *ims_policy_ref_policy(const struct ims_policy_ref *r)
{
    return r->pol;
}
