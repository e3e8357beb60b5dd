/*
 * e2e_sip.h - tiny raw-SIP-over-UDP helpers for the e2e tools (protos_send,
 * sip_send). Test code only: it builds and reads just enough SIP to send a
 * prepared datagram, recognise a response's status code and Call-ID, and ask
 * the server "are you alive?" with an OPTIONS.
 *
 * Ownership: every buffer is caller-owned; nothing here allocates except
 * e2e_read_file() (caller frees) and struct e2e_text (e2e_text_free()).
 */
#ifndef IMS_E2E_SIP_H
#define IMS_E2E_SIP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP). */
#define E2E_MAX_DGRAM 65507
/* Room for e2e_ip(): an IPv6 address in brackets. */
#define E2E_HOST_MAX (INET6_ADDRSTRLEN + 2)

/* A growable byte string (test code: abort on OOM is fine). */
struct e2e_text {
    char *p;
    size_t len, cap;
};

void e2e_text_free(struct e2e_text *t);
void e2e_text_add(struct e2e_text *t, const void *p, size_t len);
void e2e_text_adds(struct e2e_text *t, const char *s);

/* One placeholder substitution: every "<name>" in the input becomes value. */
struct e2e_subst {
    const char *name; /* with the angle brackets, e.g. "<Call-ID>" */
    const char *value;
};

/*
 * Replaces every placeholder of subs[0..n) in in[0..len) and appends the
 * result to out. Unknown "<...>" text is copied unchanged (PROTOS fuzz data).
 * If content_length is set, "<Content-Length>" is replaced last by the length
 * of the body (bytes after the first CRLFCRLF of the substituted message, 0
 * if there is none).
 */
void e2e_substitute(struct e2e_text *out, const char *in, size_t len, const struct e2e_subst *subs,
                    size_t n, int content_length);

/* Reads a whole file; returns NULL (errno set) on failure. Caller frees. */
char *e2e_read_file(const char *path, size_t *len_out);

/* A UDP socket bound to ip:port (port 0: any) of ip's family; the bound
 * address goes to *bound. */
int e2e_udp_open(const char *ip, uint16_t port, struct sockaddr_storage *bound);

/* An IPv4 (dotted) or IPv6 (no brackets) address and a port; 0 or -1. */
int e2e_addr(const char *ip, uint16_t port, struct sockaddr_storage *out);

/* The loopback address of a's family ("127.0.0.1" or "::1"): the tools'
 * default local address. */
const char *e2e_loopback_of(const struct sockaddr_storage *a);

/* Its port, and whether two addresses are the same address and port. */
uint16_t e2e_port(const struct sockaddr_storage *a);
int e2e_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* Sends one datagram; 0, or -1 with a message on stderr. */
int e2e_send(int fd, const struct sockaddr_storage *to, const void *p, size_t len);

/*
 * Waits up to timeout_ms for one datagram on fd; returns its length, 0 on
 * timeout, -1 on error. buf must hold E2E_MAX_DGRAM + 1 bytes; it is
 * NUL-terminated (datagrams with NUL bytes are only read as far as the NUL by
 * the helpers below, which is fine for responses).
 */
long e2e_recv(int fd, char *buf, int timeout_ms, struct sockaddr_storage *from);

/* Status code of a response ("SIP/2.0 NNN ..."), or 0 if buf is no response. */
int e2e_status(const char *buf, size_t len);

/*
 * Copies the value of the first header named name (or its compact form,
 * e.g. "Call-ID" / "i") into out (NUL-terminated, cut to outsz - 1); 0 if
 * found, -1 if not.
 */
int e2e_header(const char *buf, size_t len, const char *name, const char *compact, char *out,
               size_t outsz);

/* Milliseconds on a monotonic clock. */
int64_t e2e_now_ms(void);

/*
 * Liveness probe: sends "OPTIONS sip:ip:port" from fd (bound at local) and
 * waits for a 200 whose Call-ID is ours, timeout_ms per try, up to tries
 * sends (a retransmission reuses the branch). Every other datagram that
 * arrives meanwhile is handed to other(status, buf, len, arg) if set.
 * Returns 0 on a 200, 1 if only other final responses came, -1 on no answer.
 */
int e2e_options_probe(int fd, const struct sockaddr_storage *server,
                      const struct sockaddr_storage *local, const char *tag, int timeout_ms,
                      int tries, void (*other)(int status, const char *buf, size_t len, void *arg),
                      void *arg);

/* The address as a SIP URI's host: "a.b.c.d", or "[v6]" (RFC 3261 §19.1.1);
 * in a static buffer (one at a time). */
const char *e2e_ip(const struct sockaddr_storage *a);

#endif
