/* imscloudctl - imscloud's admin CLI.
 *
 *   imscloudctl ping [-t udp|tcp] [-w SECONDS] sip:HOST[:PORT]
 *       sends OPTIONS and prints the response status and round-trip time;
 *       exit 0 on a 2xx, 1 on another final response, 3 on no answer.
 *   imscloudctl check-config FILE
 *       validates a configuration file (exit 2 with FILE:LINE: key: why).
 *   imscloudctl [-c FILE] [--json] user|sub|impi|impu|profile|scscf|export|
 *               import|keys|status ...
 *       HSS administration (ctl.h, docs/admin.md): exit 0 ok, 1 failed,
 *       2 bad usage or input. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cmd/ctl.h"
#include "net/transport.h"
#include "sip/build.h"
#include "sip/msg.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int usage(void)
{
    fprintf(stderr, "usage: imscloudctl ping [-t udp|tcp] [-w SECONDS] sip:HOST[:PORT]\n"
                    "       imscloudctl check-config FILE\n");
    ctl_usage(stderr);
    return 2;
}

static int cmd_check_config(int argc, char **argv)
{
    if (argc != 2)
        return usage();
    char err[512];
    struct ims_cfg *cfg;
    if (ims_cfg_load(argv[1], &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("%s: ok\n", argv[1]);
    ims_cfg_free(cfg);
    return 0;
}

/* Waits for a whole response on fd until deadline; 0 with *status, or an IMS_E* code. */
static int read_response(int fd, bool stream, uint64_t deadline, int *status)
{
    char buf[65536];
    size_t have = 0;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return IMS_ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return IMS_ETIMEDOUT;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n <= 0)
            return IMS_EIO;
        have = stream ? have + (size_t)n : (size_t)n;
        struct sip_hdr hdrs[SIP_MAX_HEADERS_DEFAULT];
        struct sip_msg msg;
        int rc = ims_sip_parse(buf, have, stream, &msg, hdrs, SIP_MAX_HEADERS_DEFAULT);
        if (rc == IMS_EAGAIN && have < sizeof(buf))
            continue;
        if (rc < 0 || msg.kind != SIP_MSG_RESPONSE) {
            if (!stream)
                continue; /* ignore junk datagrams */
            return IMS_EPROTO;
        }
        if (msg.status < 200) { /* provisional: keep waiting */
            if (stream) {
                memmove(buf, buf + rc, have - (size_t)rc);
                have -= (size_t)rc;
            }
            continue;
        }
        *status = msg.status;
        return 0;
    }
}

static int cmd_ping(int argc, char **argv)
{
    enum sip_proto proto = SIP_PROTO_UDP;
    unsigned wait_s = 5;
    int o;
    optind = 1;
    while ((o = getopt(argc, argv, "t:w:")) != -1) {
        if (o == 't') {
            if (ims_proto_parse(ims_str_cstr(optarg), &proto) != 0 || proto == SIP_PROTO_TLS)
                return usage();
        } else if (o == 'w') {
            uint64_t v;
            if (ims_str_to_u64(ims_str_cstr(optarg), 3600, &v) != 0 || v == 0)
                return usage();
            wait_s = (unsigned)v;
        } else {
            return usage();
        }
    }
    if (optind + 1 != argc)
        return usage();
    const char *target = argv[optind];
    struct sip_uri uri;
    if (ims_sip_parse_uri(ims_str_cstr(target), &uri) != 0 ||
        (uri.scheme != SIP_URI_SIP && uri.scheme != SIP_URI_SIPS)) {
        fprintf(stderr, "imscloudctl: '%s' is not a sip: URI\n", target);
        return 2;
    }
    struct ims_addr dst;
    if (ims_addr_parse(uri.host, uri.port ? uri.port : 5060, &dst) != 0) {
        fprintf(stderr, "imscloudctl: '%.*s' is not a numeric address\n", IMS_SF(uri.host));
        return 2;
    }
    bool stream = proto == SIP_PROTO_TCP;
    int fd = socket(dst.ss.ss_family, stream ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst.ss, dst.len) != 0) {
        fprintf(stderr, "imscloudctl: cannot reach %s: %s\n", target, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 3;
    }
    struct ims_addr local = { .len = sizeof(local.ss) };
    getsockname(fd, (struct sockaddr *)&local.ss, &local.len);
    char lhost[64], via[160], from[160], callid[64], ruri[256];
    ims_addr_str(&local, lhost, sizeof(lhost));
    unsigned long r = (unsigned long)now_ms() ^ ((unsigned long)getpid() << 16);
    snprintf(via, sizeof(via), "SIP/2.0/%s %s;rport;branch=z9hG4bK-ctl-%lx",
             ims_proto_name(proto), lhost, r);
    snprintf(from, sizeof(from), "<sip:imscloudctl@%s>;tag=%lx", lhost, r);
    snprintf(callid, sizeof(callid), "%lx@imscloudctl", r);
    snprintf(ruri, sizeof(ruri), "%s", target);
    struct sip_req_spec spec = {
        .method = SIP_M_OPTIONS,
        .ruri = ims_str_cstr(ruri),
        .via = ims_str_cstr(via),
        .from = ims_str_cstr(from),
        .to = ims_str_cstr(ruri),
        .call_id = ims_str_cstr(callid),
        .cseq = 1,
        .max_forwards = 70,
        .extra_headers = IMS_S("Accept: application/sdp\r\nUser-Agent: imscloudctl\r\n"),
    };
    struct ims_buf out;
    ims_buf_init(&out, 4096);
    int rc = ims_sip_build_request(&out, &spec);
    if (rc) {
        fprintf(stderr, "imscloudctl: cannot build OPTIONS: %s\n", ims_strerror(rc));
        close(fd);
        return 2;
    }
    uint64_t t0 = now_ms(), deadline = t0 + wait_s * 1000u;
    int status = 0;
    rc = IMS_ETIMEDOUT;
    /* UDP: retransmit like Timer E (500 ms doubling, RFC 3261 §17.1.2.2) */
    for (unsigned interval = 500; now_ms() < deadline; interval = interval < 4000 ? interval * 2 : 4000) {
        if (send(fd, out.p, out.len, 0) < 0) {
            rc = IMS_EIO;
            break;
        }
        uint64_t until = stream ? deadline : now_ms() + interval;
        rc = read_response(fd, stream, until < deadline ? until : deadline, &status);
        if (rc != IMS_ETIMEDOUT || stream)
            break;
    }
    ims_buf_free(&out);
    close(fd);
    if (rc) {
        printf("%s: no answer (%s)\n", target, ims_strerror(rc));
        return 3;
    }
    printf("%s: %d in %llu ms\n", target, status, (unsigned long long)(now_ms() - t0));
    return status >= 200 && status < 300 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "ping") == 0)
        return cmd_ping(argc - 1, argv + 1);
    if (strcmp(argv[1], "check-config") == 0)
        return cmd_check_config(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        printf("usage: imscloudctl ping [-t udp|tcp] [-w SECONDS] sip:HOST[:PORT]\n"
               "       imscloudctl check-config FILE\n");
        ctl_usage(stdout);
        return 0;
    }
    /* the library's log lines (store migrations, keyrepo errors that the
     * command explains itself) are not for operators: -v shows them */
    ims_log_level = -1;
    return ctl_run(argc - 1, argv + 1, stdout, stderr);
}
