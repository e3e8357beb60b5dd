/* fake_tp_net.h - test helpers for the transaction and proxy tests: a fake
 * clock that drives a real ims_loop's timer heap without sleeping, a loop
 * turn's run of what was posted to it, and a recording fake transport.
 *
 * The clock and the posts reach into src/ev's private loop struct
 * (ev_int.h): tests may do that; nothing in src/ may. */
#ifndef IMS_TEST_FAKE_TP_NET_H
#define IMS_TEST_FAKE_TP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/transport.h"
#include "sip/txn.h"

struct ims_loop;

/* Moves the loop's clock forward by ms, firing every timer that falls due,
 * in deadline order, each at its own time (zero-delay timers armed by
 * callbacks fire too). */
void fake_tp_clock_advance(struct ims_loop *loop, uint64_t ms);
uint64_t fake_tp_clock_now(const struct ims_loop *loop);
/* Runs what was posted to the loop (ims_loop_post: Cx answers, deferred
 * work) as a loop turn would, again while those posts post more (16 rounds
 * at most), on the calling thread. */
void fake_tp_run_posts(struct ims_loop *loop);

#define FAKE_TP_MAX 256

struct fake_tp_msg {
    enum sip_proto proto;
    struct ims_addr dst;
    uint64_t conn_id;
    struct sip_tp_src src; /* sip_dest.src */
    char *buf; /* NUL-terminated copy */
    size_t len;
    uint64_t at_ms;
};

struct fake_tp {
    struct ims_loop *loop;
    struct fake_tp_msg msgs[FAKE_TP_MAX];
    size_t n;
    int fail_next; /* number of next sends that fail with fail_rc */
    int fail_rc;
    /* what local() answers: one address per proto */
    struct ims_addr local[4];
    bool has_local[4];
};

void fake_tp_init(struct fake_tp *f, struct ims_loop *loop);
void fake_tp_clear(struct fake_tp *f);
void fake_tp_free(struct fake_tp *f);
/* proxy_io-compatible functions (ctx = fake_tp); fake_tp_send is a
 * sip_txn_send_fn too. */
int fake_tp_send(void *ctx, const struct sip_dest *d, const char *buf, size_t len);
int fake_tp_local(void *ctx, enum sip_proto proto, int family, struct ims_addr *out);
void fake_tp_set_local(struct fake_tp *f, enum sip_proto proto, const char *addr);

/* The i-th message sent (NULL if none), the last one, how many start with
 * prefix ("SIP/2.0 200", "INVITE "). */
const struct fake_tp_msg *fake_tp_get(const struct fake_tp *f, size_t i);
const struct fake_tp_msg *fake_tp_last(const struct fake_tp *f);
size_t fake_tp_count(const struct fake_tp *f, const char *prefix);
/* First message at index >= from starting with prefix, or NULL. */
const struct fake_tp_msg *fake_tp_find(const struct fake_tp *f, size_t from, const char *prefix);
/* "1.2.3.4:5" form of a message's destination (static buffer). */
const char *fake_tp_dst(const struct fake_tp_msg *m);

/* Builds a struct sip_tp_rx for bytes from src to local over proto. */
struct sip_tp_rx fake_tp_rx(const char *buf, enum sip_proto proto, const char *src,
                            const char *local);

#endif
