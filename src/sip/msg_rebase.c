/* msg_rebase.c - moving a parse onto a copy of the bytes it was made from,
 * so it outlives the receive buffer without a second parse. */
#include <stdint.h>

#include "sip/msg.h"

struct span {
    uintptr_t from, end; /* the parsed bytes, [from, end] (an empty slice may sit at end) */
    const char *to;
};

/* Only slices into the parsed bytes move: a NULL or static one stays. */
static void move_str(const struct span *sp, ims_str *s)
{
    uintptr_t p = (uintptr_t)s->p;
    if (s->p && p >= sp->from && p <= sp->end)
        s->p = sp->to + (p - sp->from);
}

static void move_uri(const struct span *sp, struct sip_uri *u)
{
    ims_str *f[] = { &u->raw,  &u->scheme_name, &u->user,      &u->password,
                     &u->host, &u->params,      &u->headers,   &u->transport,
                     &u->maddr, &u->user_param, &u->method,    &u->ttl };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        move_str(sp, f[i]);
}

static void move_nameaddr(const struct span *sp, struct sip_nameaddr *na)
{
    move_str(sp, &na->display);
    move_uri(sp, &na->uri);
    move_str(sp, &na->params);
    move_str(sp, &na->tag);
}

static void move_via(const struct span *sp, struct sip_via *v)
{
    ims_str *f[] = { &v->raw,  &v->proto_name, &v->proto_version, &v->transport, &v->host,
                     &v->params, &v->branch,   &v->received,      &v->maddr,     &v->ttl };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        move_str(sp, f[i]);
}

void ims_sip_msg_rebase(struct sip_msg *m, const char *copy)
{
    struct span sp = { (uintptr_t)m->buf, (uintptr_t)m->buf + m->len, copy };
    m->buf = copy;
    ims_str *f[] = { &m->start_line, &m->method_name, &m->ruri_raw, &m->reason,
                     &m->version,    &m->call_id,     &m->cseq.method_name, &m->body };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        move_str(&sp, f[i]);
    move_uri(&sp, &m->ruri);
    move_via(&sp, &m->via1);
    move_nameaddr(&sp, &m->from);
    move_nameaddr(&sp, &m->to);
    for (size_t i = 0; i < m->nhdrs; i++) {
        move_str(&sp, &m->hdrs[i].name);
        move_str(&sp, &m->hdrs[i].value);
    }
}
