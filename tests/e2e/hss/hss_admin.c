/* hss_admin - the HSS-initiated procedures over real Diameter: this
 * process runs the HSS (ims_hss_start, its own freeDiameter), cx_client in
 * another process plays the S-CSCF (SAR REGISTRATION, then it answers
 * PPR and RTR).  Checks the admin API results and a clean stop.
 *
 *   hss_admin TOOLS_DIR        (hss_seed and cx_client live there)
 * Exit 0 = pass. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "hss/hss.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool done_flag;
static int done_rc;
static uint32_t done_result;
static int failures;

static void on_done(int rc, uint32_t result, void *arg)
{
    pthread_mutex_lock(&mu);
    done_flag = true;
    done_rc = rc;
    done_result = result;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static bool wait_done(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&mu);
    while (!done_flag)
        if (pthread_cond_timedwait(&cv, &mu, &ts))
            break;
    bool ok = done_flag;
    done_flag = false;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void check(bool ok, const char *what)
{
    printf("%s %s (rc=%s result=%u)\n", ok ? "ok  " : "FAIL", what, ims_strerror(done_rc),
           done_result);
    fflush(stdout);
    if (!ok)
        failures++;
}

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

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(int argc, char **argv)
{
    char dir[256], cmd[2048], url[400], keys[300], run[300], crun[300], line[512];
    if (argc != 2) {
        fprintf(stderr, "usage: hss_admin TOOLS_DIR\n");
        return 2;
    }
    ims_log_set_level(IMS_LOG_NOTICE);
    signal(SIGPIPE, SIG_IGN); /* freeDiameter writes to peers that hung up */
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/ims-hss-admin-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(url, sizeof(url), "sqlite:%s/hss.db", dir);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(run, sizeof(run), "%s/run", dir);
    snprintf(crun, sizeof(crun), "%s/client", dir);
    snprintf(cmd, sizeof(cmd), "%s/hss_seed %s %s", argv[1], url, keys);
    if (system(cmd) != 0) {
        fprintf(stderr, "hss_admin: seeding failed\n");
        return 1;
    }
    unsigned port = free_port();
    struct ims_hss_cfg cfg = {
        .mode = IMS_HSS_MODE_HSS,
        .store_url = url,
        .keys_dir = keys,
        .store_threads = 2,
        .store_queue = 64,
        .policy = { .realm = "ims.test" },
        .dia = { .identity = "hss.ims.test", .realm = "ims.test", .listen = "127.0.0.1",
                 .port = port, .run_dir = run, .allow_hosts = "scscf*.ims.test",
                 .app_threads = 2, .tc_timer = 2, .max_pending = 64,
                 .request_timeout_ms = 5000, .apps = IMS_DIA_APP_CX | IMS_DIA_APP_SH,
                 .log_level = IMS_LOG_NOTICE },
    };
    struct ims_hss *h = NULL;
    char err[256];
    if (ims_hss_start(&cfg, &h, err, sizeof(err)) != 0) {
        fprintf(stderr, "hss_admin: %s\n", err);
        return 1;
    }

    /* nobody registered yet: nothing to send */
    if (ims_hss_admin_push_profile(h, "sip:alice@ims.test", on_done, NULL) != 0)
        failures++;
    check(wait_done() && done_rc == IMS_ENOENT, "PPR for an identity without S-CSCF: ENOENT");

    snprintf(cmd, sizeof(cmd),
             "%s/cx_client -i scscf.ims.test -H hss.ims.test -p %u -d %s -w 30 scscf 2>&1",
             argv[1], port, crun);
    FILE *cl = popen(cmd, "r");
    bool registered = false;
    while (cl && !registered && fgets(line, sizeof(line), cl)) {
        fputs(line, stdout);
        registered = strncmp(line, "registered", 10) == 0;
    }
    check(registered, "the S-CSCF registered alice");

    if (registered) {
        if (ims_hss_admin_push_profile(h, "sip:alice@ims.test", on_done, NULL) != 0)
            failures++;
        check(wait_done() && done_rc == 0 && done_result == 2001, "PPR answered 2001");
        if (ims_hss_admin_deregister(h, "tel:+15550001", CX_REASON_PERMANENT_TERMINATION,
                                     "subscription ended", on_done, NULL) != 0)
            failures++;
        check(wait_done() && done_rc == 0 && done_result == 2001, "RTR answered 2001");
        if (ims_hss_admin_push_profile(h, "sip:alice@ims.test", on_done, NULL) != 0)
            failures++;
        check(wait_done() && done_rc == IMS_ENOENT, "after RTR the S-CSCF name is gone");
    }
    while (cl && fgets(line, sizeof(line), cl))
        fputs(line, stdout);
    int st = cl ? pclose(cl) : -1;
    check(st == 0, "the S-CSCF client saw PPR and RTR and exited 0");

    size_t leaked = ims_hss_stop(h);
    check(leaked == 0, "HSS stopped without unanswered requests");
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    printf("hss_admin: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
