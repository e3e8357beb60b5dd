/* fake_tp_net.c - see fake_tp_net.h. */
#include "fake_tp_net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "ev/ev_int.h"

void fake_tp_clock_advance(struct ims_loop *loop, uint64_t ms)
{
    uint64_t target = loop->now_ms + ms;
    for (;;) {
        int next = ims_ev_next_timeout(loop);
        if (next < 0 || loop->now_ms + (uint64_t)next > target)
            break;
        loop->now_ms += (uint64_t)next;
        ims_ev_run_timers(loop);
    }
    loop->now_ms = target;
}

uint64_t fake_tp_clock_now(const struct ims_loop *loop)
{
    return loop->now_ms;
}

void fake_tp_run_posts(struct ims_loop *loop)
{
    for (int round = 0; round < 16; round++) {
        pthread_mutex_lock(&loop->post_lock);
        struct ev_post *p = loop->post_head;
        loop->post_head = loop->post_tail = NULL;
        pthread_mutex_unlock(&loop->post_lock);
        if (!p)
            break;
        while (p) {
            struct ev_post *next = p->next;
            p->fn(loop, p->arg);
            ims_free(p);
            p = next;
        }
    }
}

void fake_tp_init(struct fake_tp *f, struct ims_loop *loop)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
}

void fake_tp_clear(struct fake_tp *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->msgs[i].buf);
    f->n = 0;
}

void fake_tp_free(struct fake_tp *f)
{
    fake_tp_clear(f);
}

int fake_tp_send(void *ctx, const struct sip_dest *d, const char *buf, size_t len)
{
    struct fake_tp *f = ctx;
    if (f->fail_next > 0) {
        f->fail_next--;
        return f->fail_rc ? f->fail_rc : IMS_EIO;
    }
    if (f->n == FAKE_TP_MAX)
        return IMS_ELIMIT;
    struct fake_tp_msg *m = &f->msgs[f->n++];
    m->proto = d->proto;
    m->dst = d->addr;
    m->conn_id = d->conn_id;
    m->src = d->src;
    m->buf = malloc(len + 1);
    memcpy(m->buf, buf, len);
    m->buf[len] = '\0';
    m->len = len;
    m->at_ms = f->loop ? f->loop->now_ms : 0;
    return 0;
}

int fake_tp_local(void *ctx, enum sip_proto proto, int family, struct ims_addr *out)
{
    struct fake_tp *f = ctx;
    if (proto < 0 || proto > 3 || !f->has_local[proto] ||
        ims_addr_family(&f->local[proto]) != family)
        return IMS_ENOENT;
    *out = f->local[proto];
    return 0;
}

void fake_tp_set_local(struct fake_tp *f, enum sip_proto proto, const char *addr)
{
    ims_addr_parse(ims_str_cstr(addr), 5060, &f->local[proto]);
    f->has_local[proto] = true;
}

const struct fake_tp_msg *fake_tp_get(const struct fake_tp *f, size_t i)
{
    return i < f->n ? &f->msgs[i] : NULL;
}

const struct fake_tp_msg *fake_tp_last(const struct fake_tp *f)
{
    return f->n ? &f->msgs[f->n - 1] : NULL;
}

size_t fake_tp_count(const struct fake_tp *f, const char *prefix)
{
    size_t c = 0, n = strlen(prefix);
    for (size_t i = 0; i < f->n; i++)
        if (f->msgs[i].len >= n && memcmp(f->msgs[i].buf, prefix, n) == 0)
            c++;
    return c;
}

const struct fake_tp_msg *fake_tp_find(const struct fake_tp *f, size_t from, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = from; i < f->n; i++)
        if (f->msgs[i].len >= n && memcmp(f->msgs[i].buf, prefix, n) == 0)
            return &f->msgs[i];
    return NULL;
}

const char *fake_tp_dst(const struct fake_tp_msg *m)
{
    static char buf[IMS_ADDR_STRLEN];
    return ims_addr_str(&m->dst, buf, sizeof(buf));
}

struct sip_tp_rx fake_tp_rx(const char *buf, enum sip_proto proto, const char *src,
                            const char *local)
{
    struct sip_tp_rx rx;
    memset(&rx, 0, sizeof(rx));
    rx.buf = buf;
    rx.len = strlen(buf);
    rx.proto = proto;
    ims_addr_parse(ims_str_cstr(src), 5060, &rx.src);
    ims_addr_parse(ims_str_cstr(local), 5060, &rx.local);
    rx.conn_id = proto == SIP_PROTO_UDP ? 0 : 77;
    return rx;
}
