/* net_test.h - shared harness for the src/net tests: worker threads running
 * a loop and a transport, a log of received messages, blocking clients. */
#ifndef IMS_TEST_NET_TEST_H
#define IMS_TEST_NET_TEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ev/loop.h"
#include "net/transport.h"

struct rx_rec {
    unsigned worker;
    enum sip_proto proto;
    struct ims_addr src, local;
    uint64_t conn_id;
    bool has_cn;
    char cn[65];
    int32_t queue_ms; /* sip_tp_rx.queue_ms */
    bool from_self;   /* sip_tp_rx.from_self */
    size_t len;
    char *data; /* malloc'd copy */
};

struct rxlog {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rx_rec *recs;
    size_t n, cap;
};

void rxlog_init(struct rxlog *l);
void rxlog_free(struct rxlog *l);
void rxlog_clear(struct rxlog *l);
/* Waits until at least n records arrived; false after ms. */
bool rxlog_wait(struct rxlog *l, size_t n, int ms);
size_t rxlog_count(struct rxlog *l);
/* Copy of record i (data still owned by the log). */
struct rx_rec rxlog_get(struct rxlog *l, size_t i);

struct worker {
    unsigned idx;
    struct ims_loop *loop;
    struct sip_tp *tp;
    pthread_t th;
    bool running;
    struct rxlog *log;
    bool echo; /* send every received message back to its source */
};

/* Creates the loop and the transport, starts the thread.  Returns the
 * ims_sip_tp_new() result (the loop is freed again on error). */
int worker_start(struct worker *w, unsigned idx, struct sip_tp_shared *sh,
                 const struct sip_tp_cfg *cfg, struct rxlog *log, char *err, size_t errsz);
/* Stops every loop, joins, frees the transports, then the loops. */
void workers_stop(struct worker *ws, size_t n);
/* Runs fn(w, arg) on w's loop thread and waits for it. */
void worker_call(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg);
/* Blocks w's loop thread (in a posted call) until worker_release(); returns
 * once it is blocked.  Free with worker_hold_free() after the loop ran on. */
struct hold;
struct hold *worker_hold(struct worker *w);
void worker_release(struct hold *h);
void worker_hold_free(struct hold *h);
int w_send(struct worker *w, enum sip_proto proto, const struct ims_addr *dst, uint64_t conn_id,
           const char *buf, size_t len);
/* A UDP send from our listener on src_port (sip_tp_src.port). */
int w_send_udp_from(struct worker *w, const struct ims_addr *dst, uint16_t src_port,
                    const char *buf, size_t len);
void w_stats(struct worker *w, struct sip_tp_stats *out);
int w_local(struct worker *w, enum sip_proto proto, int family, struct ims_addr *out);
bool w_conn_open(struct worker *w, enum sip_proto proto, const struct ims_addr *peer);
/* Polls w_stats until pred holds or ms pass. */
bool w_wait_stat(struct worker *w, size_t offset, uint64_t want, int ms);
#define STAT_OFF(field) offsetof(struct sip_tp_stats, field)

/* Blocking clients with a receive timeout. */
int tcp_client(const struct ims_addr *a);
bool send_all(int fd, const void *buf, size_t len);
bool recv_exact(int fd, void *buf, size_t len);
bool recv_eof(int fd); /* peer closed (EOF or reset) before the timeout */
bool ipv6_ok(void);
/* A SIP message with a body of body_len bytes; returns its length. */
size_t mk_msg(char *out, size_t outsz, int seq, size_t body_len);
void sleep_ms(int ms);

/* Test groups (each returns the number of failures). */
int run_addr_tests(void);
int run_transport_tests(void);
int run_tls_tests(void);
int run_resolve_tests(void);
int run_stun_tests(void);

#endif
