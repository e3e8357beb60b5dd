/*
 * sip_send - sends hand-written (mostly malformed) SIP datagrams to a server
 * and checks the status code of its answer, then checks that it still answers
 * an OPTIONS with 200.
 *
 *   sip_send [--host IP] [--port N] [--local IP] [--timeout-ms T] FILE...
 *
 * IP is IPv4 or IPv6 (no brackets); --local defaults to the loopback address
 * of --host's family.
 *
 * The expectation is the start of each file's name:
 *   400-what.sip           the server must answer with a 400 (first final response)
 *   400-or-none-what.sip   a 400 or no answer (RFC 4475's "ideally 400" cases, e.g. a
 *                          missing Call-ID, which Kamailio drops); any other final
 *                          response fails
 *   any-what.sip           no expectation (garbage that need not be answered): only
 *                          the liveness probe that follows counts
 * "*.sip" files are text: bare LF line ends become CRLF, and the placeholders
 * <From-Address> <Local-Port> <Host> <Port> <Call-ID> <Branch-ID> and
 * <Content-Length> (body length) are filled, so Via points back at us.
 * Any other file is sent byte for byte.
 *
 * Every answer must come from the address and port the file was sent to (RFC
 * 3581 §4: a symmetric NAT drops anything else).
 * Exit 0 if every expectation held and the server answered OPTIONS after each
 * file; 1 otherwise. The last line reads "N passed, M failed".
 */
#include "e2e_sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: sip_send [--host IP] [--port N] [--local IP] [--timeout-ms T] FILE...\n");
    exit(2);
}

/* LF -> CRLF (a lone LF only). */
static void crlf(struct e2e_text *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            e2e_text_add(out, "\r", 1);
        e2e_text_add(out, p + i, 1);
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *lip_arg = NULL;
    unsigned port = 5060;
    int timeout_ms = 2000, first_file = argc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc) {
            host = argv[++i];
        } else if (!strcmp(argv[i], "--local") && i + 1 < argc) {
            lip_arg = argv[++i];
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
            timeout_ms = (int)strtol(argv[++i], NULL, 10);
        } else if (argv[i][0] == '-') {
            usage();
        } else {
            first_file = i;
            break;
        }
    }
    if (first_file >= argc || port == 0 || port > 65535 || timeout_ms <= 0)
        usage();

    struct sockaddr_storage server, local;
    if (e2e_addr(host, (uint16_t)port, &server) < 0)
        return 2;
    if (!lip_arg)
        lip_arg = e2e_loopback_of(&server);
    int fd = e2e_udp_open(lip_arg, 0, &local);
    if (fd < 0)
        return 2;

    /* the SIP forms (an IPv6 address in brackets) for the placeholders */
    char lip[E2E_HOST_MAX], shost[E2E_HOST_MAX], lport[8], sport[8];
    snprintf(lip, sizeof(lip), "%s", e2e_ip(&local));
    snprintf(shost, sizeof(shost), "%s", e2e_ip(&server));
    snprintf(lport, sizeof(lport), "%u", e2e_port(&local));
    snprintf(sport, sizeof(sport), "%u", port);

    static char buf[E2E_MAX_DGRAM + 1];
    long passed = 0, failed = 0;

    for (int i = first_file; i < argc; i++) {
        const char *path = argv[i];
        char namebuf[4096];
        snprintf(namebuf, sizeof(namebuf), "%s", path);
        const char *name = basename(namebuf);
        int expect = 0, or_none = 0; /* expect 0: any */
        if (strncmp(name, "any-", 4) != 0) {
            char *e;
            long v = strtol(name, &e, 10);
            if (*e != '-' || v < 100 || v > 699) {
                fprintf(stderr, "%s: name must start with NNN-, NNN-or-none- or any-\n", name);
                return 2;
            }
            expect = (int)v;
            or_none = strncmp(e, "-or-none-", 9) == 0;
        }

        size_t flen;
        char *file = e2e_read_file(path, &flen);
        if (!file) {
            fprintf(stderr, "%s: %s\n", path, strerror(errno));
            return 2;
        }
        struct e2e_text msg = {0};
        if (ends_with(name, ".sip")) {
            char callid[64 + E2E_HOST_MAX], branch[64];
            snprintf(callid, sizeof(callid), "bad-%d-%ld@%s", i, (long)getpid(), lip);
            snprintf(branch, sizeof(branch), "z9hG4bK-bad-%d-%ld", i, (long)getpid());
            struct e2e_subst subs[] = {
                {"<From-Address>", lip}, {"<Local-Port>", lport}, {"<Host>", shost},
                {"<Port>", sport},       {"<Call-ID>", callid},   {"<Branch-ID>", branch},
            };
            struct e2e_text t = {0};
            crlf(&t, file, flen);
            e2e_substitute(&msg, t.p, t.len, subs, sizeof(subs) / sizeof(subs[0]), 1);
            e2e_text_free(&t);
        } else {
            e2e_text_add(&msg, file, flen);
        }
        free(file);

        /* Drop anything left over from the previous file. */
        struct sockaddr_storage from;
        while (e2e_recv(fd, buf, 0, &from) > 0)
            ;
        if (e2e_send(fd, &server, msg.p, msg.len > E2E_MAX_DGRAM ? E2E_MAX_DGRAM : msg.len) < 0)
            return 2;
        e2e_text_free(&msg);

        /* First final response within the timeout (provisional ones are skipped),
         * from the address and port the request went to (RFC 3581 §4). */
        int got = 0, elsewhere = 0;
        int64_t end = e2e_now_ms() + (expect ? timeout_ms : timeout_ms / 4);
        for (;;) {
            int left = (int)(end - e2e_now_ms());
            if (left <= 0)
                break;
            long n = e2e_recv(fd, buf, left, &from);
            if (n <= 0)
                break;
            int st = e2e_status(buf, (size_t)n);
            if (st >= 200) {
                got = st;
                elsewhere = !e2e_same_addr(&from, &server);
                break;
            }
        }

        int ok = (expect == 0 || got == expect || (or_none && got == 0)) && !elsewhere;
        if (expect)
            printf("%s: expected %d%s, got %s%d\n", name, expect, or_none ? " or no answer" : "",
                   got ? "" : "no answer ", got);
        else
            printf("%s: answered %d (any answer accepted)\n", name, got);
        if (elsewhere)
            printf("%s: answered from %s:%u, not from the address it was sent to\n", name,
                   e2e_ip(&from), e2e_port(&from));

        char tag[32];
        snprintf(tag, sizeof(tag), "%d-%ld", i, (long)getpid());
        int pr = e2e_options_probe(fd, &server, &local, tag, timeout_ms, 3, NULL, NULL);
        if (pr != 0) {
            printf("%s: the server did not answer OPTIONS with 200 afterwards\n", name);
            ok = 0;
        }
        if (ok) {
            passed++;
        } else {
            printf("FAIL: %s\n", name);
            failed++;
        }
        fflush(stdout);
    }
    close(fd);
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}
