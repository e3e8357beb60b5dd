/* imscloud - the server: runs every role configured in one process. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "acl/neutron.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "core/server.h"
#include "net/transport.h"
#include "policy/policy.h"

#define DEFAULT_CONFIG "etc/imscloud.conf"

static void usage(FILE *f)
{
    fprintf(f, "usage: imscloud [-c FILE] [--check-config | --dump-config] | --config-doc | "
               "--version\n"
               "  -c, --config FILE  configuration (default " DEFAULT_CONFIG ")\n"
               "  --check-config     validate the configuration and exit (2 on error)\n"
               "  --dump-config      print the effective configuration and exit\n"
               "  --config-doc       print the reference of every key (Markdown)\n");
}

/* Security groups (src/acl): the holder every listener consults, filled
 * from [security] rules_file before any socket opens. */
static int acl_start(const struct ims_cfg *cfg, bool serving, struct ims_acl_holder **out,
                     char *err, size_t errsz)
{
    int rc = ims_acl_holder_new(out);
    if (rc) {
        snprintf(err, errsz, "out of memory");
        return rc;
    }
    ims_acl_holder_set_dia_default_deny(*out, cfg->sec_dia_default_deny);
    if (!cfg->sec_rules_file) {
        if (serving && !cfg->sec_neutron_group) /* else src/acl/neutron.c: default deny */
            LOG_W("acl", "event=acl_open why=\"no [security] rules_file: every listener accepts "
                         "any source\"");
        return 0;
    }
    return ims_acl_holder_load(*out, cfg->sec_rules_file, err, errsz);
}

/* SIGHUP: the rules file again; a bad file keeps the rules in force.
 * Registrations, calls and established connections are untouched (new
 * rules apply to new datagrams and connections only). */
static void acl_reload(const struct ims_cfg *cfg, struct ims_acl_holder *acl,
                       struct ims_acl_neutron *neutron)
{
    char err[512];
    if (neutron) { /* the group now, and the file for the union */
        ims_acl_neutron_refresh(neutron, true);
        return;
    }
    if (!cfg->sec_rules_file) {
        LOG_N("core", "event=sighup action=none why=\"no [security] rules_file\"");
        return;
    }
    if (ims_acl_holder_load(acl, cfg->sec_rules_file, err, sizeof(err)) != 0)
        LOG_E("acl", "event=acl_reload_failed action=kept_previous why=\"%s\"", err);
}

/* SIGHUP: the SIP TLS certificates again (docs/security.md "TLS"): new
 * handshakes use the new files, established connections keep theirs; a
 * bad file keeps the old ones. */
static void tls_reload(const struct ims_cfg *cfg, struct ims_server *srv)
{
    char err[512];
    if (!(cfg->roles & IMS_ROLES_SIP) || (!cfg->tls_cert && !cfg->tls_client_cert))
        return;
    if (ims_server_reload_tls(srv, err, sizeof(err)) != 0)
        LOG_E("net", "event=tls_reload_failed action=kept_previous why=\"%s\"", err);
    else
        LOG_N("net", "event=tls_reloaded cert=%s",
              cfg->tls_cert ? cfg->tls_cert : cfg->tls_client_cert);
}

/* --check-config: the policy files load and compile (policy follow-up);
 * errors name file:line as the loader does.  0 or the first error. */
static int policy_check(const struct ims_cfg *cfg, char *err, size_t errsz)
{
    const char *const files[][2] = { { "[scscf] policy_file", cfg->scscf_policy_file },
                                     { "[ut] policy_file", cfg->ut_policy_file },
                                     { "[as] policy_file", cfg->as_policy_file } };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct ims_policy *pol = NULL;
        char perr[384] = "";
        if (!files[i][1])
            continue;
        int rc = ims_policy_load_file(files[i][1], &pol, perr, sizeof(perr));
        ims_policy_free(pol);
        if (rc) {
            snprintf(err, errsz, "%s: %s", files[i][0], perr);
            return rc;
        }
    }
    return 0;
}

/* SIGHUP: the policy files again ([scscf], [ut]); a bad file keeps the
 * old policy (src/policy/holder.h). */
static void policy_reload(struct ims_server *srv)
{
    char err[512];
    int rc = ims_server_reload_policy(srv, err, sizeof(err));
    if (rc && rc != IMS_ENOENT)
        LOG_E("core", "event=policy_reload_failed action=kept_previous why=\"%s\"", err);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check-config", no_argument, NULL, 'k' },
        { "dump-config", no_argument, NULL, 'd' },  { "config-doc", no_argument, NULL, 'D' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = DEFAULT_CONFIG;
    bool check = false, dump = false;
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'k': check = true; break;
        case 'd': dump = true; break;
        case 'D': ims_cfg_doc(stdout); return 0;
        case 'V': puts("imscloud 0.1.0"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    char err[512];
    struct ims_cfg *cfg = NULL;
    if (ims_cfg_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "imscloud: %s\n", err);
        return 2;
    }
    struct ims_acl_holder *acl = NULL;
    if (acl_start(cfg, !check && !dump, &acl, err, sizeof(err)) != 0) {
        fprintf(stderr, "imscloud: %s\n", err);
        ims_acl_holder_free(acl);
        ims_cfg_free(cfg);
        return 2;
    }
    if (check && policy_check(cfg, err, sizeof(err)) != 0) { /* policy follow-up */
        fprintf(stderr, "imscloud: %s\n", err);
        ims_acl_holder_free(acl);
        ims_cfg_free(cfg);
        return 2;
    }
    if (check) {
        ims_acl_holder_free(acl);
        printf("%s: ok\n", path);
        ims_cfg_free(cfg);
        return 0;
    }
    if (dump) {
        ims_acl_holder_free(acl);
        ims_cfg_dump(cfg, stdout);
        ims_cfg_free(cfg);
        return 0;
    }
    ims_log_set_level((enum ims_log_level)cfg->log_level);
    ims_alloc_tune_server(); /* before any thread: arenas are made with it */

    /* Block the signals we handle before any thread exists, so that only the
     * main thread's sigwait() sees them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    ims_acl_install(acl); /* before any listener opens */
    struct ims_server *srv = NULL;
    int rc = ims_server_new(cfg, &srv, err, sizeof(err));
    if (rc) {
        LOG_E("core", "event=start_failed config=%s why=\"%s\"", path, err);
        fprintf(stderr, "imscloud: %s\n", err);
        ims_acl_install(NULL);
        ims_acl_holder_free(acl);
        ims_cfg_free(cfg);
        return 1;
    }
    /* one line per socket, in the config's own spelling (udp:127.0.0.1:5060) */
    static const char *const proto_lc[] = { [SIP_PROTO_UDP] = "udp", [SIP_PROTO_TCP] = "tcp",
                                            [SIP_PROTO_TLS] = "tls" };
    for (size_t i = 0; (cfg->roles & IMS_ROLES_SIP) && i < cfg->nlisten; i++) {
        char a[80];
        printf("listening proto=%s addr=%s\n", proto_lc[cfg->listen[i].proto],
               ims_addr_str(&cfg->listen[i].addr, a, sizeof(a)));
    }
    if (cfg->roles & IMS_ROLE_HSS) {
        bool v6 = strchr(cfg->dia_listen, ':') != NULL;
        printf("listening proto=diameter addr=%s%s%s:%u\n", v6 ? "[" : "", cfg->dia_listen,
               v6 ? "]" : "", cfg->dia_port);
        if (cfg->dia_tls_port)
            printf("listening proto=diameter-tls addr=%s%s%s:%u\n", v6 ? "[" : "",
                   cfg->dia_listen, v6 ? "]" : "", cfg->dia_tls_port);
    }
    fflush(stdout);
    /* the group's rules before the workers read a socket (neutron.h) */
    struct ims_acl_neutron *neutron = NULL;
    if (ims_acl_neutron_start(cfg, acl, &neutron, err, sizeof(err)) != 0) {
        LOG_E("core", "event=start_failed config=%s why=\"%s\"", path, err);
        fprintf(stderr, "imscloud: %s\n", err);
        ims_server_free(srv);
        ims_acl_install(NULL);
        ims_acl_holder_free(acl);
        ims_cfg_free(cfg);
        return 1;
    }
    if (ims_server_start(srv) != 0) {
        ims_acl_neutron_stop(neutron);
        ims_server_free(srv);
        ims_acl_install(NULL);
        ims_acl_holder_free(acl);
        ims_cfg_free(cfg);
        return 1;
    }
    LOG_N("core", "event=started sip_workers=%u config=%s",
          (cfg->roles & IMS_ROLES_SIP) ? cfg->workers : 0, path);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            acl_reload(cfg, acl, neutron);
            tls_reload(cfg, srv);
            policy_reload(srv); /* policy follow-up */
            continue;
        }
        LOG_N("core", "event=stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
        break;
    }
    size_t leaked = ims_server_free(srv);
    ims_acl_neutron_stop(neutron);
    ims_acl_install(NULL); /* every listener is closed */
    ims_acl_holder_free(acl);
    ims_cfg_free(cfg);
    if (leaked) {
        LOG_E("core", "event=leak objects=%zu", leaked);
        return 1;
    }
    LOG_N("core", "event=stopped");
    return 0;
}
