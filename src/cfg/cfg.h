/* cfg.h - imscloud's configuration: one INI file, parsed once into a
 * struct ims_cfg and fully validated before any socket opens.
 *
 * One table (cfg.c) defines every key: section, name, type, default, range
 * and doc.  The parser, --dump-config and the reference in docs/config.md
 * (imscloud --config-doc) all come from it.
 *
 * File syntax: "[section]", "key = value", full-line comments starting with
 * '#' or ';', and inline comments that start with whitespace then '#' or ';'
 * (so "sip:a;transport=tcp" keeps its ';').  Keys marked repeatable may
 * appear several times; any other duplicate is an error.  Errors read
 * "FILE:LINE: key: why". */
#ifndef IMS_CFG_CFG_H
#define IMS_CFG_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net/transport.h"

#define IMS_CFG_MAX_LISTEN 32
#define IMS_CFG_MAX_ROUTES 64
#define IMS_CFG_MAX_SLF 64       /* [hss] slf_route */
#define IMS_CFG_MAX_DIA_PEERS 16 /* [diameter] peer */
#define IMS_CFG_MAX_PORTS 8      /* [pcscf]/[icscf]/[scscf] ports */
#define IMS_CFG_MAX_SCSCF 32     /* [icscf] scscf */
#define IMS_CFG_MAX_CAPS 16      /* capabilities per [icscf] scscf */

/* [core] roles: which parts of the IMS core this process runs. */
enum {
    IMS_ROLE_PCSCF = 1u << 0,
    IMS_ROLE_ICSCF = 1u << 1,
    IMS_ROLE_SCSCF = 1u << 2,
    IMS_ROLE_HSS = 1u << 3,
    IMS_ROLE_AS = 1u << 4,
};
#define IMS_ROLES_SIP (IMS_ROLE_PCSCF | IMS_ROLE_ICSCF | IMS_ROLE_SCSCF | IMS_ROLE_AS)

struct ims_cfg_listen {
    enum sip_proto proto;
    struct ims_addr addr;
};

struct ims_cfg_route {
    char *domain;   /* "*" for the default route */
    char *next_hop; /* a SIP URI */
};

/* [hss] slf_route: identities matching pattern live in HSS hss. */
struct ims_cfg_slf {
    char *pattern;
    char *hss;
};

/* [pcscf]/[icscf]/[scscf] ports: the local SIP ports a CSCF role serves. */
struct ims_cfg_ports {
    uint16_t port[IMS_CFG_MAX_PORTS];
    size_t n;
};

/* [icscf] scscf: an S-CSCF the I-CSCF may select, with its capabilities
 * (TS 29.228 §6.7: matched against the UAA's Server-Capabilities). */
struct ims_cfg_scscf {
    char *uri;
    uint32_t caps[IMS_CFG_MAX_CAPS];
    size_t ncaps;
};

/* [diameter] peer: a Diameter peer we connect to (and always accept). */
struct ims_cfg_dia_peer {
    char *id;
    char *addr;
    unsigned port; /* 0 = default */
    bool tls;
};

struct ims_cfg {
    char *path;

    /* [core] */
    unsigned workers; /* resolved: never 0 after ims_cfg_load */
    int log_level;    /* enum ims_log_level */
    unsigned roles;   /* IMS_ROLE_* bits */
    char *state_dir;  /* databases, keys, generated files */

    /* [sip] */
    struct ims_cfg_listen listen[IMS_CFG_MAX_LISTEN];
    size_t nlisten;
    char *tls_cert, *tls_key, *tls_ca, *tls_ciphers;
    bool tls_verify_client, tls_verify_server;
    bool local_delivery; /* UDP between our own listeners in-process */
    bool udp_spread;     /* UDP requests spread over workers by Call-ID */
    unsigned max_message;
    unsigned max_connections, max_connections_per_source;
    unsigned idle_timeout; /* seconds */
    char *dns_servers;     /* "127.0.0.1:53,..." or NULL for resolv.conf */
    char *server_name;     /* our host name for Via/Record-Route, or NULL */

    /* [proxy] */
    bool record_route;
    struct ims_cfg_route routes[IMS_CFG_MAX_ROUTES];
    size_t nroutes;
    unsigned max_transactions;
    unsigned t1_ms, t2_ms, t4_ms;

    /* [hss] */
    int hss_mode;            /* 0 hss, 1 slf */
    char *hss_store;         /* store URL; NULL = sqlite:<state_dir>/hss.db */
    char *hss_keys_dir;      /* NULL = <state_dir>/keys */
    unsigned hss_store_threads, hss_store_queue, hss_cache_entries, hss_batch_window_ms;
    unsigned hss_flush_ms;
    bool hss_cache_preload; /* fill the identity cache at start */
    bool hss_diameter_inline; /* Cx over Diameter answered on freeDiameter's thread */
    char *hss_visited_networks;
    char *hss_default_scscf;
    struct ims_cfg_slf hss_slf[IMS_CFG_MAX_SLF];
    size_t nhss_slf;
    /* Keystone as the source of subscribers' secrets (src/hss/ks_creds.c) */
    bool hss_ks_credentials;
    unsigned hss_ks_credentials_ttl;
    char *hss_ks_user_domain_id;

    /* [diameter] */
    char *dia_fd_conf;
    char *dia_identity, *dia_realm, *dia_listen;
    unsigned dia_port, dia_tls_port;
    char *dia_tls_cert, *dia_tls_key, *dia_tls_ca, *dia_tls_dh;
    bool dia_tls_required;
    char *dia_allow_hosts, *dia_allow_realms;
    struct ims_cfg_dia_peer dia_peers[IMS_CFG_MAX_DIA_PEERS];
    size_t ndia_peers;
    unsigned dia_app_threads, dia_tc_timer, dia_tw_timer;
    unsigned dia_max_pending, dia_request_timeout_ms;

    /* [pcscf] (src/cscf) */
    struct ims_cfg_ports pcscf_ports; /* none: the role is inactive */
    char *pcscf_uri;                  /* NULL: sip:<first listener>:<first port> */
    char *pcscf_icscf;
    char *pcscf_visited_network_id;   /* NULL: [diameter] realm */
    unsigned pcscf_max_ues;
    bool pcscf_sec_agree;             /* RFC 3329 with TLS as the mechanism */
    unsigned pcscf_flow_timer;        /* RFC 5626 Flow-Timer seconds; 0: none */

    /* [icscf] */
    struct ims_cfg_ports icscf_ports;
    struct ims_cfg_scscf icscf_scscf[IMS_CFG_MAX_SCSCF];
    size_t nicscf_scscf;
    unsigned icscf_hss_timeout_ms, icscf_retry_after, icscf_hss_error_status;
    unsigned icscf_max_pending;
    unsigned icscf_scscf_timeout_ms;  /* no answer from an S-CSCF: try the next */

    /* [scscf] */
    struct ims_cfg_ports scscf_ports;
    char *scscf_uri;                  /* NULL: sip:<first listener>:<first port> */
    char *scscf_realm;                /* NULL: [diameter] realm */
    char *scscf_digest_algorithms;
    unsigned scscf_nonce_ttl, scscf_auth_max_failures;
    unsigned scscf_default_expires, scscf_min_expires, scscf_max_expires;
    unsigned scscf_max_contacts, scscf_max_registrations;
    unsigned scscf_hss_timeout_ms, scscf_retry_after, scscf_max_pending;
    char *scscf_icscf;                /* NULL: this process's I-CSCF, else by DNS */
    char *scscf_home_domains;         /* NULL: [diameter] realm */
    unsigned scscf_as_timeout_ms;     /* no answer from an AS: iFC default handling */
    unsigned scscf_contact_ring_s;    /* a device rung this long: the next one (0: off) */
    unsigned scscf_reg_event_expires; /* reg-event subscriptions (RFC 3680) */
    char *scscf_policy_file;          /* oslo.policy file (src/policy); NULL: no policy */
    char *scscf_local_roles;          /* roles of Digest/AKA users for the policy */
    char *scscf_bearer_scope;         /* RFC 8898 scope in the Bearer challenge */
    bool scscf_persist;               /* registrations in <state_dir>/scscf-reg.db */

    /* [keystone] (src/keystone; no url: not used) */
    char *ks_url;
    char *ks_user, *ks_password, *ks_password_file, *ks_user_domain;
    char *ks_project, *ks_project_domain;
    char *ks_app_cred_id, *ks_app_cred_secret, *ks_app_cred_secret_file;
    char *ks_ca_file;
    unsigned ks_cache_ttl, ks_negative_ttl, ks_timeout_ms, ks_max_pending, ks_cache_size;

    /* [as] (src/cloudas; no ports: inactive) */
    struct ims_cfg_ports as_ports;
    char *as_service_uri, *as_icscf, *as_keystone_url, *as_delegations, *as_policy_file;
    unsigned as_poll_ms, as_poll_max_ms, as_build_timeout, as_http_timeout_ms, as_max_jobs;

    /* [security] (src/acl, docs/security-groups.md) */
    char *sec_rules_file;       /* NULL: every listener open */
    bool sec_dia_default_deny;  /* Diameter only from peers unless a rule names its port */
    char *sec_neutron_group;    /* NULL: no Neutron source (src/acl/neutron.c) */
    unsigned sec_neutron_refresh; /* seconds between reads of the group */

    /* [audit] (src/audit, docs/audit.md) */
    bool audit_enabled, audit_syslog;
    char *audit_file;           /* NULL: <state_dir>/audit.jsonl */
    char *audit_keys_dir;       /* NULL: [hss] keys_dir, else <state_dir>/keys */
    char *audit_key_id;         /* "primary" or a key number */
    unsigned audit_queue;
    unsigned audit_sync_ms;

    /* [detect] (src/detect, docs/security.md) */
    bool det_enabled;
    char *det_fingerprints;     /* NULL: the built-in list */
    char *det_exempt;           /* NULL: none */
    unsigned det_sweep_users, det_sweep_window, det_malformed_max, det_malformed_window;
    unsigned det_block, det_max_sources;

    /* [metrics] (src/metrics, docs/security.md) */
    char *metrics_listen;       /* NULL: no endpoint */
    /* [ut] (src/ut, docs/ut.md) */
    char *ut_listen;            /* NULL: no Ut interface */
    char *ut_tls_cert, *ut_tls_key; /* both set: HTTPS */
    char *ut_policy_file;       /* NULL: owners only */

    /* [sip] TLS hardening (src/net/tls.c, docs/security.md) */
    char *tls_client_cert, *tls_client_key; /* NULL: outgoing TLS presents tls_cert */
    char *tls_ciphersuites;     /* TLS 1.3 suites; NULL: OpenSSL's (all AEAD) */

    /* [privacy] (src/cscf/privacy.c, docs/privacy.md) */
    bool privacy_enabled;       /* RFC 3323/3325 at the trust-domain boundary */
    char *privacy_trusted;      /* peers inside the trust domain besides our own roles */
    /* [lockout] (src/cscf/lockout.c, docs/security.md) */
    unsigned lockout_impi_failures, lockout_source_failures; /* 0: off */
    unsigned lockout_window, lockout_time, lockout_max_time;    /* seconds */
    unsigned lockout_max_entries;

    /* [limits] (src/proxy/ratelimit.c, docs/security.md) */
    unsigned lim_source_rate, lim_source_burst; /* per source address; 0: off */
    struct ims_cfg_ports lim_ports;             /* listeners limited; none: all */
    char *lim_exempt;                           /* addresses never limited */
    unsigned lim_impi_rate, lim_impi_burst;     /* REGISTERs per IMPI (S-CSCF); 0: off */
    unsigned lim_overload_target_ms;            /* 0: no overload control */
    unsigned lim_overload_min_rate, lim_overload_max_rate; /* per worker, requests/s */
    unsigned lim_retry_after;
};

/* Loads and validates `path`.  On error returns IMS_EINVAL (or IMS_ENOMEM)
 * and writes "FILE:LINE: key: why" into err.  On success *out is owned by
 * the caller: release with ims_cfg_free(). */
int ims_cfg_load(const char *path, struct ims_cfg **out, char *err, size_t errsz);
/* Same, from a string (tests); `name` is used in error messages. */
int ims_cfg_load_string(const char *name, const char *text, struct ims_cfg **out, char *err,
                        size_t errsz);
void ims_cfg_free(struct ims_cfg *cfg);
/* Writes the effective configuration as INI (secrets redacted). */
void ims_cfg_dump(const struct ims_cfg *cfg, FILE *f);
/* Writes the reference of every key as Markdown. */
void ims_cfg_doc(FILE *f);

#endif
