/* ctl_e2e - imscloudctl against a running `imscloud` (roles = hss) over
 * the admin socket, with this process playing the S-CSCF on real Diameter
 * (the in-process twin of tests/e2e/hss/cx_client: MAR/SAR out, RTR/PPR
 * in, answered 2001).
 *
 *   ctl_e2e IMSCLOUD IMSCLOUDCTL
 *
 * Scenario (each check printed; exit 0 = all passed):
 *   user add -> MAR (Digest HA1 matches the password) and SAR succeed;
 *   profile put / ifc-add -> PPR; impu bar -> RTR for the implicit set;
 *   keys rotate --no-reencrypt -> MAR works, keys remove <old> refused,
 *   keys reencrypt -> MAR works, keys remove <old> succeeds, keys rotate
 *   (with re-encryption) while running -> MAR works;
 *   a bad JSON import (error at the last record) and a conflicting one
 *   change nothing (export before == after); a good one -> AKA MAR works;
 *   no server running: a change still succeeds (exit 0) with a warning;
 *   after an HSS restart, RTR still reaches the S-CSCF without a new
 *   MAR/SAR (the peer is persisted, migration 002);
 *   SIGTERM -> exit 0, clean log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/aka.h"
#include "crypto/digest.h"
#include "dia/dia.h"
#include "ev/loop.h"

#define S(x) ims_str_cstr(x)
#define REALM "ims.test"
#define SCSCF_NAME "sip:scscf.ims.test:6060"
#define ALICE "alice@ims.test"
#define ALICE_SIP "sip:alice@ims.test"
#define ALICE_TEL "tel:+15550001"
#define ALICE_PW "alice-pw-1"

static const char *imscloud_bin, *ctl_bin;
static char dir[256], conf[320];
static pid_t server_pid;
static int failures;
static unsigned hss_port;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok)
        failures++;
}

/* ------------------------------------------------------------ helpers */

static unsigned free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        exit(1);
    close(fd);
    return ntohs(a.sin_port);
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0) {
        fprintf(stderr, "ctl_e2e: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* Output of the last imscloudctl run. */
static char ctl_out[1 << 16], ctl_err[1 << 16];

/* Runs imscloudctl -c CONF ARGS (a shell word list); returns its exit code. */
static int ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ctl(const char *fmt, ...)
{
    char args[2048], cmd[4096], o[300], e[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(o, sizeof(o), "%s/ctl.out", dir);
    snprintf(e, sizeof(e), "%s/ctl.err", dir);
    snprintf(cmd, sizeof(cmd), "%s -c %s %s >%s 2>%s", ctl_bin, conf, args, o, e);
    int st = system(cmd);
    slurp(o, ctl_out, sizeof(ctl_out));
    slurp(e, ctl_err, sizeof(ctl_err));
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    printf("     $ imscloudctl %s -> %d\n", args, rc);
    if (rc || strstr(ctl_err, "warning"))
        printf("%s", ctl_err);
    fflush(stdout);
    return rc;
}

static void start_server(void)
{
    char log[300];
    snprintf(log, sizeof(log), "%s/server.log", dir);
    server_pid = fork();
    if (server_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(imscloud_bin, imscloud_bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    /* ready when the admin socket answers */
    for (int i = 0; i < 300; i++) {
        if (ctl("status") == 0)
            return;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = 0;
            break;
        }
        usleep(100000);
    }
    check(false, "imscloud started (see %s)", log);
    exit(1);
}

/* SIGTERM; true when it exits 0. */
static bool stop_server(void)
{
    int st = 0;
    if (server_pid <= 0)
        return false;
    kill(server_pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(server_pid, &st, WNOHANG) == server_pid) {
            server_pid = 0;
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        usleep(100000);
    }
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
    return false;
}

/* ------------------------------------------- the S-CSCF (Diameter client) */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool answered;
static struct {
    int rc;
    uint32_t result, exp;
    bool has_result;
    size_t n_item;
    char scheme[64], ha1[130];
    uint8_t authenticate[32], authorization[16];
    size_t authenticate_len, authorization_len;
    bool has_user_data;
} got;
static unsigned n_rtr, n_ppr;
static char last_rtr_impi[256], last_ppr_impi[256];
static size_t last_rtr_impus;

static void on_answer(struct ims_loop *loop, int rc, const struct dia_ans *a, void *arg)
{
    pthread_mutex_lock(&mu);
    memset(&got, 0, sizeof(got));
    got.rc = rc;
    if (rc == 0 && a) {
        got.has_result = DIA_HAS(a, DIA_ANS_RESULT);
        got.result = a->result_code;
        got.exp = DIA_HAS(a, DIA_ANS_EXP) ? a->exp.code : 0;
        got.n_item = a->n_item;
        got.has_user_data = DIA_HAS(a, DIA_ANS_USER_DATA) && a->user_data.len > 0;
        if (a->n_item) {
            const struct cx_auth_item *it = &a->items[0];
            ims_str_copy(it->scheme, got.scheme, sizeof(got.scheme));
            ims_str_copy(it->digest.ha1, got.ha1, sizeof(got.ha1));
            if (it->authenticate.len && it->authenticate.len <= sizeof(got.authenticate)) {
                memcpy(got.authenticate, it->authenticate.p, it->authenticate.len);
                got.authenticate_len = it->authenticate.len;
            }
            if (it->authorization.len && it->authorization.len <= sizeof(got.authorization)) {
                memcpy(got.authorization, it->authorization.p, it->authorization.len);
                got.authorization_len = it->authorization.len;
            }
        }
    }
    answered = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int call(unsigned cmd, const void *req)
{
    pthread_mutex_lock(&mu);
    answered = false;
    pthread_mutex_unlock(&mu);
    int rc = ims_dia_send(cmd, req, on_answer, NULL);
    if (rc)
        return rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 15;
    pthread_mutex_lock(&mu);
    while (!answered && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &ts) ? IMS_ETIMEDOUT : 0;
    pthread_mutex_unlock(&mu);
    return rc ? rc : got.rc;
}

static bool mar(const char *impi, const char *impu, const char *scheme)
{
    struct cx_mar r;
    memset(&r, 0, sizeof(r));
    r.dest_realm = S(REALM);
    r.present |= 1u << DIA_REQ_DEST_REALM;
    r.impi = S(impi);
    r.impu = S(impu);
    r.server_name = S(SCSCF_NAME);
    r.n_items = 1;
    r.item.scheme = S(scheme);
    r.item.present = 1u << CX_ITEM_SCHEME;
    r.present |= 1u << CX_MAR_IMPI | 1u << CX_MAR_IMPU | 1u << CX_MAR_SERVER |
                 1u << CX_MAR_NITEMS | 1u << CX_MAR_ITEM;
    return call(DIA_CMD_MAR, &r) == 0 && got.has_result && got.result == DIA_SUCCESS &&
           got.n_item == 1;
}

/* MAR Digest-MD5 for alice whose HA1 must be MD5(impi:realm:password). */
static bool mar_alice(void)
{
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    ims_digest_ha1(IMS_DIGEST_MD5, S(ALICE), S(REALM), S(ALICE_PW), ha1);
    return mar(ALICE, ALICE_SIP, "Digest-MD5") && strcmp(got.ha1, ha1) == 0;
}

static bool sar(const char *impi, const char *impu, int sat)
{
    struct cx_sar r;
    memset(&r, 0, sizeof(r));
    r.dest_realm = S(REALM);
    r.present |= 1u << DIA_REQ_DEST_REALM;
    r.impi = S(impi);
    r.impu[0] = S(impu);
    r.n_impu = 1;
    r.server_name = S(SCSCF_NAME);
    r.sat = sat;
    r.uda = 0;
    r.present |= 1u << CX_SAR_IMPI | 1u << CX_SAR_IMPU | 1u << CX_SAR_SERVER |
                 1u << CX_SAR_TYPE | 1u << CX_SAR_UDA;
    return call(DIA_CMD_SAR, &r) == 0 && got.has_result && got.result == DIA_SUCCESS;
}

static void on_hss_request(struct ims_dia_req *req, void *arg)
{
    struct dia_ans a;
    memset(&a, 0, sizeof(a));
    pthread_mutex_lock(&mu);
    if (req->cmd == DIA_CMD_RTR) {
        n_rtr++;
        ims_str_copy(req->u.rtr.impi, last_rtr_impi, sizeof(last_rtr_impi));
        last_rtr_impus = req->u.rtr.n_impu;
    } else if (req->cmd == DIA_CMD_PPR) {
        if (DIA_HAS(&req->u.ppr, CX_PPR_DATA) &&
            memmem(req->u.ppr.user_data.p, req->u.ppr.user_data.len, "<IMSSubscription>", 17))
            n_ppr++;
        ims_str_copy(req->u.ppr.impi, last_ppr_impi, sizeof(last_ppr_impi));
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    dia_ans_result(&a, DIA_SUCCESS);
    ims_dia_answer(req, &a);
}

/* Waits (5 s) until *counter exceeds before. */
static bool wait_count(unsigned *counter, unsigned before)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&mu);
    while (*counter <= before)
        if (pthread_cond_timedwait(&cv, &mu, &ts))
            break;
    bool ok = *counter > before;
    pthread_mutex_unlock(&mu);
    return ok;
}

static unsigned count(const unsigned *counter)
{
    pthread_mutex_lock(&mu);
    unsigned v = *counter;
    pthread_mutex_unlock(&mu);
    return v;
}

static bool wait_open(void)
{
    for (int i = 0; i < 300; i++) {
        if (ims_dia_peer_open("hss.ims.test"))
            return true;
        usleep(100000);
    }
    return false;
}

static void *loop_thread(void *arg)
{
    ims_loop_run(arg);
    return NULL;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* ------------------------------------------------------------- scenario */

static void scenario(void)
{
    char path[400], before[1 << 16], after[1 << 16];

    /* the newcomer's one command */
    check(ctl("user add " ALICE " --password " ALICE_PW " --impu " ALICE_SIP " --impu "
              ALICE_TEL) == 0 &&
              strstr(ctl_out, "created IMPI " ALICE) && strstr(ctl_out, "created IMPU " ALICE_TEL),
          "user add creates subscription, IMPI, IMPUs, links and says so");
    check(ctl("user add " ALICE " --password x") == 1 && strstr(ctl_err, "already exists"),
          "user add of an existing user: exit 1, says it exists");
    check(ctl("user add bob@ims.test --k 0011") == 2 && strstr(ctl_err, "--k: must be 32 hex"),
          "user add with a bad --k: exit 2 naming --k");
    check(mar_alice(), "MAR Digest-MD5 for the new user: HA1 = MD5(impi:realm:password)");
    check(sar(ALICE, ALICE_SIP, CX_SAT_REGISTRATION) && got.has_user_data,
          "SAR REGISTRATION for the new user: User-Data");

    /* profile change -> PPR */
    snprintf(path, sizeof(path), "%s/ifc.xml", dir);
    spit(path, "<InitialFilterCriteria><Priority>0</Priority><TriggerPoint>"
               "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated>"
               "<Group>0</Group><Method>MESSAGE</Method></SPT></TriggerPoint>"
               "<ApplicationServer><ServerName>sip:as.ims.test</ServerName>"
               "<DefaultHandling>0</DefaultHandling></ApplicationServer>"
               "</InitialFilterCriteria>");
    unsigned p0 = count(&n_ppr);
    check(ctl("profile put default %s", path) == 0 && strstr(ctl_out, "PPR sent"),
          "profile put of the user's profile: PPR sent");
    check(wait_count(&n_ppr, p0) && strcmp(last_ppr_impi, ALICE) == 0,
          "the S-CSCF received a PPR with User-Data for %s", ALICE);
    p0 = count(&n_ppr);
    check(ctl("profile ifc-add default --priority 5 --method INVITE --session-case 0 --as "
              "sip:as2.ims.test --default-handling 0") == 0,
          "profile ifc-add");
    check(wait_count(&n_ppr, p0), "ifc-add: PPR received");
    check(ctl("profile ifc-add default --priority 5 --as sip:x.ims.test") == 1 &&
              strstr(ctl_err, "priority 5"),
          "ifc-add with a priority in use: exit 1");
    check(ctl("profile ifc-add default --priority 6 --as sip:x --session-case 9") == 2 &&
              strstr(ctl_err, "--session-case"),
          "ifc-add with a bad session case: exit 2 naming --session-case");

    /* barring -> RTR for the implicit set */
    unsigned r0 = count(&n_rtr);
    check(ctl("impu bar " ALICE_TEL) == 0 && strstr(ctl_out, "RTR sent"),
          "impu bar of a registered identity: RTR sent");
    check(wait_count(&n_rtr, r0) && strcmp(last_rtr_impi, ALICE) == 0 && last_rtr_impus == 2,
          "the S-CSCF received an RTR for %s with both identities of the set", ALICE);
    check(ctl("impu unbar " ALICE_TEL) == 0 && strstr(ctl_out, "no PPR needed"),
          "impu unbar after the RTR: not registered, nothing sent");

    /* keys, online */
    check(sar(ALICE, ALICE_SIP, CX_SAT_REGISTRATION), "SAR REGISTRATION again");
    check(ctl("keys rotate --no-reencrypt") == 0 && strstr(ctl_out, "reloaded its keys (primary 1)"),
          "keys rotate --no-reencrypt: key 1, the server reloaded");
    check(mar_alice(), "MAR after the rotation (secrets still under key 0)");
    check(ctl("keys remove 0") == 1 && strstr(ctl_err, "still encrypts"),
          "keys remove 0 while secrets use it: refused (exit 1)");
    check(ctl("keys reencrypt") == 0 && strstr(ctl_out, "re-encrypted"), "keys reencrypt");
    check(mar_alice(), "MAR after re-encryption under key 1");
    check(ctl("keys remove 0") == 0, "keys remove 0 after re-encryption");
    check(mar_alice(), "MAR after key 0 is gone");
    check(ctl("keys rotate") == 0 && strstr(ctl_out, "re-encrypted"),
          "keys rotate (with re-encryption) while the server runs");
    check(mar_alice(), "MAR after the second rotation");
    check(ctl("--json keys list") == 0 && strstr(ctl_out, "\"primary\":2"), "keys list --json");

    /* import: validated whole, applied atomically */
    check(ctl("export --json") == 0, "export --json");
    snprintf(before, sizeof(before), "%s", ctl_out);
    check(strstr(before, ALICE) && !strstr(before, ALICE_PW) && !strstr(before, "v1:"),
          "the export lists the user without any secret");
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    spit(path, "{\"version\":1,\"subscribers\":["
               "{\"name\":\"carol\",\"impis\":[{\"identity\":\"carol@ims.test\",\"password\":\"c\"}],"
               "\"impus\":[{\"identity\":\"sip:carol@ims.test\"}]},"
               "{\"name\":\"dave\",\"impis\":[{\"identity\":\"dave@ims.test\",\"k\":\"00\","
               "\"opc\":\"cd63cb71954a9f4e48a5994e37a02baf\"}],"
               "\"impus\":[{\"identity\":\"sip:dave@ims.test\"}]}]}");
    check(ctl("import --json %s", path) == 2 &&
              strstr(ctl_err, "subscribers[1].impis[0].k: must be 32 hex digits"),
          "import with a bad last record: exit 2 naming subscribers[1].impis[0].k");
    snprintf(path, sizeof(path), "%s/dup.json", dir);
    spit(path, "{\"version\":1,\"subscribers\":["
               "{\"name\":\"carol\",\"impis\":[{\"identity\":\"carol@ims.test\",\"password\":\"c\"}],"
               "\"impus\":[{\"identity\":\"sip:carol@ims.test\"}]},"
               "{\"name\":\"alice2\",\"impus\":[{\"identity\":\"" ALICE_SIP "\"}]}]}");
    check(ctl("import --json %s", path) == 1 && strstr(ctl_err, "already exists"),
          "import whose last record exists in the store: exit 1");
    check(ctl("export --json") == 0, "export --json again");
    snprintf(after, sizeof(after), "%s", ctl_out);
    check(strcmp(before, after) == 0, "failed imports changed nothing (exports are equal)");
    snprintf(path, sizeof(path), "%s/good.json", dir);
    spit(path, "{\"version\":1,\"subscribers\":[{\"name\":\"bob\",\"impis\":[{\"identity\":"
               "\"bob@ims.test\",\"k\":\"465b5ce8b199b49faa5f0a2ee238a6bc\",\"opc\":"
               "\"cd63cb71954a9f4e48a5994e37a02baf\"}],\"impus\":[{\"identity\":"
               "\"sip:bob@ims.test\",\"profile\":\"default\"}]}]}");
    check(ctl("import --json %s", path) == 0, "import of a valid document");
    static const uint8_t k[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                   0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
    static const uint8_t opc[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                     0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };
    uint8_t res[8], ck[16], ik[16], amf[2];
    uint64_t sqn;
    bool aka = mar("bob@ims.test", "sip:bob@ims.test", "Digest-AKAv1-MD5") &&
               got.authenticate_len == 32 && got.authorization_len == 8 &&
               ims_aka_ue_check(k, opc, got.authenticate, got.authenticate + 16, &sqn, amf, res,
                                ck, ik) == 0 &&
               memcmp(res, got.authorization, 8) == 0;
    check(aka, "MAR AKA for the imported user: AUTN verifies, XRES matches the USIM");

    /* no server: the change stands, a warning says nothing was sent */
    check(stop_server(), "SIGTERM: imscloud exits 0");
    check(ctl("impu bar " ALICE_SIP) == 0 && strstr(ctl_err, "no imscloud is running") &&
              strstr(ctl_err, "no RTR was sent"),
          "impu bar with no server: exit 0, warning that no RTR was sent");
    check(ctl("impu show " ALICE_SIP) == 0 && strstr(ctl_out, "barred: yes"),
          "the barring is stored");
    check(ctl("impu unbar " ALICE_SIP) == 0, "impu unbar with no server");

    /* restart: the S-CSCF's Diameter host comes from the store */
    start_server();
    check(wait_open(), "the S-CSCF reconnects to the restarted HSS");
    check(ctl("scscf list") == 0 && strstr(ctl_out, "scscf.ims.test"),
          "scscf list shows the persisted Diameter host");
    r0 = count(&n_rtr);
    check(ctl("impu bar " ALICE_SIP) == 0 && strstr(ctl_out, "RTR sent"),
          "impu bar after an HSS restart, before any MAR/SAR: RTR sent");
    check(wait_count(&n_rtr, r0), "the S-CSCF received it (persisted peer)");
    r0 = count(&n_rtr);
    check(ctl("sub delete bob") == 0 && count(&n_rtr) == r0, "sub delete of an unregistered user: "
                                                              "no RTR");
}

int main(int argc, char **argv)
{
    char text[2048], run[300], log[300], logtext[1 << 16];
    if (argc != 3) {
        fprintf(stderr, "usage: ctl_e2e IMSCLOUD IMSCLOUDCTL\n");
        return 2;
    }
    imscloud_bin = argv[1];
    ctl_bin = argv[2];
    ims_log_set_level(IMS_LOG_WARN);
    signal(SIGPIPE, SIG_IGN); /* freeDiameter writes to peers that hung up */
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/ims-ctl-e2e-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    hss_port = free_port();
    snprintf(conf, sizeof(conf), "%s/imscloud.conf", dir);
    snprintf(text, sizeof(text),
             "[core]\nroles = hss\nstate_dir = %s/var\nlog_level = info\n\n"
             "[hss]\nstore_threads = 2\n\n"
             "[diameter]\nidentity = hss.ims.test\nrealm = " REALM "\nlisten = 127.0.0.1\n"
             "port = %u\nallow_hosts = scscf*.ims.test\ntc_timer = 2\n"
             "request_timeout_ms = 5000\n",
             dir, hss_port);
    spit(conf, text);
    start_server();

    struct ims_loop *loop = NULL;
    pthread_t lt;
    snprintf(run, sizeof(run), "%s/client", dir);
    struct ims_dia_peer peer = { "hss.ims.test", "127.0.0.1", hss_port, false };
    struct ims_dia_cfg cfg = {
        .identity = "scscf.ims.test", .realm = REALM, .run_dir = run, .peers = &peer,
        .npeers = 1, .max_pending = 16, .request_timeout_ms = 10000,
        .apps = IMS_DIA_APP_CX | IMS_DIA_APP_SH, .tc_timer = 1, .scscf_side = true,
        .log_level = IMS_LOG_WARN,
    };
    char err[256];
    if (ims_loop_new(64, &loop) || pthread_create(&lt, NULL, loop_thread, loop) ||
        ims_dia_start(&cfg, loop, on_hss_request, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "ctl_e2e: S-CSCF side: %s\n", err);
        stop_server();
        return 1;
    }
    check(wait_open(), "the S-CSCF's Diameter connection to the HSS opens");
    if (failures == 0)
        scenario();
    check(stop_server(), "SIGTERM: imscloud exits 0");
    snprintf(log, sizeof(log), "%s/server.log", dir);
    slurp(log, logtext, sizeof(logtext));
    check(!strstr(logtext, "AddressSanitizer") && !strstr(logtext, "LeakSanitizer") &&
              !strstr(logtext, "runtime error:"),
          "no sanitizer report in the server log");
    ims_dia_drain(2000);
    ims_dia_stop();
    ims_loop_stop(loop);
    pthread_join(lt, NULL);
    ims_loop_free(loop);
    ims_dia_release();
    printf("ctl_e2e: %d failure(s)\n", failures);
    if (failures) {
        /* keep the state for a look; the log is the most useful part */
        printf("ctl_e2e: state kept in %s\n", dir);
        const char *tail = strlen(logtext) > 4000 ? logtext + strlen(logtext) - 4000 : logtext;
        printf("---- server.log (tail) ----\n%s\n", tail);
        return 1;
    }
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}
