/* cfg.c - table-driven INI configuration (see cfg.h). */
#include "cfg/cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "cscf/privacy.h"

/* K_NAME: a K_STR that is a host or realm name (letters, digits, '-', '.',
 * '_'); K_SCOPE: a K_STR that is an RFC 6749 §3.3 scope-token; K_URL: an
 * http(s) URL of printable ASCII without space, '"', '\\', '<', '>'.  They
 * go into SIP, Diameter and HTTP as they are, some inside quoted-strings. */
enum key_type { K_UINT, K_BOOL, K_STR, K_NAME, K_SCOPE, K_URL, K_FILE, K_LOGLEVEL, K_LISTEN, K_ROUTE,
                K_ROLES, K_HSSMODE, K_SLF, K_DIAPEER, K_PORTS, K_SCSCF };

struct key {
    const char *section;
    const char *name;
    enum key_type type;
    const char *def; /* default as text; NULL = unset */
    unsigned min, max;
    size_t off;      /* offset in struct ims_cfg */
    bool secret;     /* redacted in dumps */
    const char *doc;
};

#define OFF(f) offsetof(struct ims_cfg, f)

/* The one definition of every configuration key. */
static const struct key keys[] = {
    { "core", "workers", K_UINT, "0", 0, 64, OFF(workers), false,
      "Worker threads, each with its own event loop and sockets; 0 = one per core." },
    { "core", "log_level", K_LOGLEVEL, "notice", 0, 0, OFF(log_level), false,
      "err, warn, notice, info or debug." },
    { "core", "roles", K_ROLES, "pcscf,icscf,scscf,hss,as", 0, 0, OFF(roles), false,
      "Comma list of the roles this process runs: pcscf, icscf, scscf, hss, as. The SIP proxy "
      "runs when any SIP role (pcscf, icscf, scscf, as) is listed; hss runs the HSS "
      "([hss], [diameter])." },
    { "core", "state_dir", K_STR, "var", 0, 0, OFF(state_dir), false,
      "Directory for state: the default HSS database (hss.db), key repository (keys/) and "
      "generated files (run/). Created if missing." },

    { "sip", "listen", K_LISTEN, NULL, 0, 0, OFF(listen), false,
      "Repeatable. proto:address:port, proto one of udp, tcp, tls; IPv6 in brackets. "
      "Default: udp:127.0.0.1:5060 and tcp:127.0.0.1:5060. A UDP response leaves from the "
      "address and port its request was sent to, behind 0.0.0.0 or [::] too (RFC 3581)." },
    { "sip", "tls_cert", K_FILE, NULL, 0, 0, OFF(tls_cert), false,
      "PEM certificate chain for TLS listeners (required with a tls listener)." },
    { "sip", "tls_key", K_FILE, NULL, 0, 0, OFF(tls_key), true,
      "PEM private key for tls_cert." },
    { "sip", "tls_ca", K_FILE, NULL, 0, 0, OFF(tls_ca), false,
      "PEM CA bundle to verify client certificates and servers we connect to." },
    { "sip", "tls_ciphers", K_STR, NULL, 0, 0, OFF(tls_ciphers), false,
      "OpenSSL cipher list for TLS 1.2; empty = a built-in modern list (ECDHE with AES-GCM "
      "or ChaCha20). TLS 1.0/1.1 are never offered." },
    { "sip", "tls_verify_client", K_BOOL, "no", 0, 0, OFF(tls_verify_client), false,
      "Require and verify client certificates against tls_ca (mutual TLS)." },
    { "sip", "tls_verify_server", K_BOOL, "no", 0, 0, OFF(tls_verify_server), false,
      "Verify the certificates of TLS servers we connect to against tls_ca." },
    { "sip", "tls_client_cert", K_FILE, NULL, 0, 0, OFF(tls_client_cert), false,
      "PEM certificate (chain) outgoing TLS connections present (mutual TLS between roles). "
      "Unset: tls_cert, when set. Reloaded on SIGHUP with tls_cert." },
    { "sip", "tls_client_key", K_FILE, NULL, 0, 0, OFF(tls_client_key), true,
      "PEM private key for tls_client_cert." },
    { "sip", "tls_ciphersuites", K_STR, NULL, 0, 0, OFF(tls_ciphersuites), false,
      "TLS 1.3 cipher suites (OpenSSL syntax). Unset: OpenSSL's defaults (all AEAD). TLS 1.0 "
      "and 1.1 are never offered nor accepted." },
    { "sip", "max_message", K_UINT, "65535", 1024, 1048576, OFF(max_message), false,
      "Largest SIP message accepted, in bytes (larger: dropped, or the connection closed)." },
    { "sip", "local_delivery", K_BOOL, "yes", 0, 0, OFF(local_delivery), false,
      "UDP messages between this process's own listeners (the roles of one process talking "
      "to each other) are handed over in-process, on the worker that sent them, instead of "
      "through the kernel: same source address, listener and security groups; their SIP "
      "transactions are timed as on a reliable transport (no retransmissions, no 32 s "
      "wait after the answer). \"no\": every hop is a real datagram (to watch it with "
      "tcpdump)." },
    { "sip", "udp_spread", K_BOOL, "yes", 0, 0, OFF(udp_spread), false,
      "A UDP request is processed by the worker its Call-ID hashes to, not by the one the "
      "kernel picked: the kernel picks by flow, so one busy peer (a P-CSCF in front of this "
      "I-CSCF, a UAC sending every call from one socket) would load one worker only. The "
      "same Call-ID always reaches the same worker (retransmissions, a dialog's requests). "
      "A REGISTER straight from its UE (one Via) is not handed over: a UE is a flow of its "
      "own, which the kernel spreads already, and a REGISTER starts no dialog; a hand-off "
      "costs a copy and often a wake-up of the other worker (about 5% of the CPU of a full "
      "IMS registration)." },
    { "sip", "max_connections", K_UINT, "4096", 1, 1000000, OFF(max_connections), false,
      "TCP/TLS connections per worker." },
    { "sip", "max_connections_per_source", K_UINT, "64", 1, 1000000,
      OFF(max_connections_per_source), false, "TCP/TLS connections per source IP and worker." },
    { "sip", "idle_timeout", K_UINT, "600", 1, 86400, OFF(idle_timeout), false,
      "Seconds a TCP/TLS connection may stay silent before it is closed." },
    { "sip", "dns_servers", K_STR, NULL, 0, 0, OFF(dns_servers), false,
      "Comma-separated DNS servers (host:port) for RFC 3263 lookups; default /etc/resolv.conf." },
    { "sip", "server_name", K_STR, NULL, 0, 0, OFF(server_name), false,
      "Host name that also means 'this server' in Request-URIs and Route headers, and "
      "that this server writes in its Via, Record-Route and Path instead of its listening "
      "address: peers (and the other roles, on other hosts) reach it by resolving the name "
      "(RFC 3263), stateless forwards (ACK for 2xx) included." },

    { "proxy", "record_route", K_BOOL, "yes", 0, 0, OFF(record_route), false,
      "Insert Record-Route so that in-dialog requests traverse this proxy." },
    { "proxy", "route", K_ROUTE, NULL, 0, 0, OFF(routes), false,
      "Repeatable. '<domain|*> <next-hop SIP URI>': static next hop for a Request-URI domain; "
      "'*' is the default." },
    { "proxy", "max_transactions", K_UINT, "262144", 16, 16777216, OFF(max_transactions), false,
      "Transaction pool size per worker; when full, new requests get 503. Over UDP a call "
      "keeps about 70 transaction-seconds of state (RFC 3261 timers J and L are 64*T1), so "
      "size it at 70 x the calls per second one worker carries. Slots are touched only as "
      "they are used." },
    { "proxy", "t1_ms", K_UINT, "500", 10, 60000, OFF(t1_ms), false,
      "RFC 3261 T1 (RTT estimate), milliseconds." },
    { "proxy", "t2_ms", K_UINT, "4000", 10, 600000, OFF(t2_ms), false,
      "RFC 3261 T2 (maximum retransmit interval), milliseconds." },
    { "proxy", "t4_ms", K_UINT, "5000", 10, 600000, OFF(t4_ms), false,
      "RFC 3261 T4 (maximum duration a message remains in the network), milliseconds." },

    { "hss", "mode", K_HSSMODE, "hss", 0, 0, OFF(hss_mode), false,
      "hss: serve Cx/Sh from the store. slf: answer every Cx/Sh request with "
      "DIAMETER_REDIRECT_INDICATION naming the HSS of the user (slf_route)." },
    { "hss", "store", K_STR, NULL, 0, 0, OFF(hss_store), true,
      "Subscriber store URL: sqlite:PATH, postgresql://... or pg:CONNINFO. Default "
      "sqlite:<state_dir>/hss.db." },
    { "hss", "keys_dir", K_STR, NULL, 0, 0, OFF(hss_keys_dir), false,
      "Key repository that encrypts K, OPc and HA1s at rest (created on first start). Default "
      "<state_dir>/keys." },
    { "hss", "diameter_inline", K_BOOL, "no", 0, 0, OFF(hss_diameter_inline), false,
      "Run the store work of Cx requests that arrive over Diameter (UAR, LIR, SAR, Digest MAR) "
      "on freeDiameter's dispatch thread instead of handing it to a store thread (SQLite only). "
      "In-process Cx always runs on the calling worker. Measured with bench/hss: \"no\" (the store "
      "threads, whose group commit shares transactions between requests) answered more MAR/s." },
    { "hss", "store_threads", K_UINT, "0", 0, 64, OFF(hss_store_threads), false,
      "Store threads (one database connection each). 0: 1 for SQLite (one writer at a time; "
      "a second connection's commits empty the first one's page cache: bench/hss measured one "
      "thread faster in every scenario but SAR re-registration), 2 for PostgreSQL. Set 1 for "
      "sqlite::memory: (each connection would have a database of its own)." },
    { "hss", "store_queue", K_UINT, "4096", 1, 1000000, OFF(hss_store_queue), false,
      "Store jobs that may wait; when full, requests get DIAMETER_TOO_BUSY." },
    { "hss", "batch_window_ms", K_UINT, "1", 0, 100, OFF(hss_batch_window_ms), false,
      "In-process Cx (CSCF roles in this process): the Cx requests a worker makes within this "
      "many milliseconds run in one store transaction (at most 32), so they share its BEGIN, "
      "COMMIT and file locks; each waits at most this long for it. 0: only the requests of one "
      "event-loop turn share one. Measured: 1 ms cut the server CPU per registration by ~6% "
      "(docs/internals/hss-store.md)." },
    { "hss", "flush_ms", K_UINT, "50", 1, 1000, OFF(hss_flush_ms), false,
      "SQLite store: what the HSS commits without waiting for the disk (the registration state "
      "a SAR writes, the Server-Name a MAR writes, AKA SQNs within their generation) is "
      "fdatasynced by a background thread at most this often, so a power cut loses at most the "
      "last flush_ms of it (a crash of the process loses none of it; every other write is on "
      "disk before its answer). Each fdatasync is a disk cache flush: fewer under load cost less "
      "CPU (docs/internals/hss-store.md)." },
    { "hss", "cache_entries", K_UINT, "262144", 0, 16777216, OFF(hss_cache_entries), false,
      "Entries of the in-memory cache of identity data the Cx path reads on every request "
      "(IMPI/IMPU links, IMPI rows with their secrets still encrypted, IMPU rows without their "
      "registration state), shared by the store connections; an IMPI row takes about 0.6 KiB, "
      "a link 0.1 KiB, an IMPU row 0.15 KiB: three entries per subscriber, and a fourth once "
      "it registered (the User-Data its SAR built, ~0.5 KiB); size it for them, or each "
      "registration pushes another subscriber's entries out and the store is read again "
      "(100 000 subscribers: ~70 MiB, ~120 MiB registered). It stays coherent with any writer, "
      "imscloudctl included, through a change counter in the database. 0: no cache." },
    { "hss", "cache_preload", K_BOOL, "yes", 0, 0, OFF(hss_cache_preload), false,
      "At start, before answering, fill the identity cache with the IMPI rows and IMPI/IMPU "
      "links of the store (at most cache_entries; SQLite), so that the registrations that "
      "follow a restart do not all miss it at once (100 000 subscribers: 200 000 entries in "
      "0.2 s on the bench machine)." },
    { "hss", "visited_networks", K_STR, NULL, 0, 0, OFF(hss_visited_networks), false,
      "Comma list of Visited-Network-Identifier globs users may register from besides the "
      "home realm ([diameter] realm); others get DIAMETER_ERROR_ROAMING_NOT_ALLOWED. '*' = any." },
    { "hss", "default_scscf", K_STR, NULL, 0, 0, OFF(hss_default_scscf), false,
      "S-CSCF SIP URI returned in UAA/LIA when none is assigned; without it the HSS returns "
      "Server-Capabilities (and the S-CSCFs of the store that satisfy them)." },
    { "hss", "slf_route", K_SLF, NULL, 0, 0, OFF(hss_slf), false,
      "Repeatable, slf mode. '<identity glob> <HSS Diameter identity>', e.g. "
      "'sip:*@a.example hss-a.example'; first match wins; no match gives "
      "DIAMETER_ERROR_USER_UNKNOWN." },
    { "hss", "keystone_credentials", K_BOOL, "no", 0, 0, OFF(hss_ks_credentials), false,
      "With [keystone] url: an IMPI <name>@<realm> the store does not hold is looked up as the "
      "Keystone user <name> (keystone_user_domain_id) and its credential of type ims-digest; "
      "found, the subscription is created in the store without secrets (docs/keystone.md)." },
    { "hss", "keystone_credentials_ttl", K_UINT, "30", 0, 86400, OFF(hss_ks_credentials_ttl),
      false,
      "Seconds the HSS keeps (in memory only) the HA1s fetched from Keystone, or that a user has "
      "none; 0: a Keystone request for every MAR. A deleted credential stops working after it." },
    { "hss", "keystone_user_domain_id", K_STR, "default", 0, 0, OFF(hss_ks_user_domain_id),
      false, "Keystone domain id the IMS users of keystone_credentials live in." },

    { "diameter", "fd_conf", K_FILE, NULL, 0, 0, OFF(dia_fd_conf), false,
      "An operator's freeDiameter configuration file, used as is (the keys below, except the "
      "allow lists and timeouts, are then ignored)." },
    { "diameter", "identity", K_NAME, "hss.ims.local", 0, 0, OFF(dia_identity), false,
      "Our Diameter identity (an FQDN; with TLS it must match the certificate)." },
    { "diameter", "realm", K_NAME, "ims.local", 0, 0, OFF(dia_realm), false,
      "Our Diameter realm; also the home network for Visited-Network-Identifier." },
    { "diameter", "listen", K_STR, "127.0.0.1", 0, 0, OFF(dia_listen), false,
      "Address the Diameter listeners bind to." },
    { "diameter", "port", K_UINT, "3868", 0, 65535, OFF(dia_port), false,
      "TCP port for Diameter; 0 = none." },
    { "diameter", "tls_port", K_UINT, "0", 0, 65535, OFF(dia_tls_port), false,
      "TCP port for Diameter over TLS (TLS from the first byte, RFC 6733 §13); 0 = none." },
    { "diameter", "tls_cert", K_FILE, NULL, 0, 0, OFF(dia_tls_cert), false,
      "PEM certificate for Diameter TLS (freeDiameter/GnuTLS); its name must match identity." },
    { "diameter", "tls_key", K_FILE, NULL, 0, 0, OFF(dia_tls_key), true,
      "PEM private key for tls_cert." },
    { "diameter", "tls_ca", K_FILE, NULL, 0, 0, OFF(dia_tls_ca), false,
      "PEM CA bundle that peers' certificates must chain to (mutual TLS)." },
    { "diameter", "tls_dh", K_FILE, NULL, 0, 0, OFF(dia_tls_dh), false,
      "PEM DH parameters for TLS (saves generating them at start-up)." },
    { "diameter", "tls_required", K_BOOL, "no", 0, 0, OFF(dia_tls_required), false,
      "Refuse peers that did not connect over TLS." },
    { "diameter", "allow_hosts", K_STR, "*", 0, 0, OFF(dia_allow_hosts), false,
      "Comma list of Origin-Host globs accepted in a CER; others get DIAMETER_UNKNOWN_PEER. "
      "Configured peers are always accepted." },
    { "diameter", "allow_realms", K_STR, NULL, 0, 0, OFF(dia_allow_realms), false,
      "Comma list of Origin-Realm globs accepted in a CER; default: our realm only." },
    { "diameter", "peer", K_DIAPEER, NULL, 0, 0, OFF(dia_peers), false,
      "Repeatable. '<diameter-id> <ip>[:port] [tls]': a peer we connect to." },
    { "diameter", "app_threads", K_UINT, "0", 0, 64, OFF(dia_app_threads), false,
      "freeDiameter threads that decode requests (AppServThreads). 0: 1 for an HSS that hands "
      "Cx to its store threads ([hss] diameter_inline = no: decoding and queueing is all those "
      "threads do, and each one more is a wake-up per request; bench/hss measured 72-73 us of "
      "server CPU per AKA MAR with 1 against 77-78 with 4), else 4." },
    { "diameter", "tc_timer", K_UINT, "30", 1, 3600, OFF(dia_tc_timer), false,
      "Seconds between reconnection attempts to a peer (Tc)." },
    { "diameter", "tw_timer", K_UINT, "30", 6, 3600, OFF(dia_tw_timer), false,
      "Seconds of silence before a watchdog (Tw, RFC 3539)." },
    { "diameter", "max_pending", K_UINT, "4096", 1, 1000000, OFF(dia_max_pending), false,
      "Requests handled at once; beyond it DIAMETER_TOO_BUSY." },
    { "diameter", "request_timeout_ms", K_UINT, "10000", 100, 600000,
      OFF(dia_request_timeout_ms), false, "How long we wait for answers to RTR/PPR." },

    /* CSCF roles (src/cscf, docs/internals/cscf.md).  A role serves the
     * listener ports in its section; without ports it is inactive. */
    { "pcscf", "ports", K_PORTS, NULL, 0, 0, OFF(pcscf_ports), false,
      "Comma list of [sip] listen ports whose requests the P-CSCF (UE-facing) handles, e.g. "
      "5060. Empty: the P-CSCF is not active (the static router serves the port)." },
    { "pcscf", "uri", K_STR, NULL, 0, 0, OFF(pcscf_uri), false,
      "The P-CSCF's own SIP URI, put in Path (sip:host:port). Default: sip:<address of the "
      "first listener on the first port>:<port>." },
    { "pcscf", "icscf", K_STR, NULL, 0, 0, OFF(pcscf_icscf), false,
      "SIP URI of the I-CSCF (the home network's entry) that REGISTERs are sent to, e.g. "
      "sip:127.0.0.1:5070. Required when the P-CSCF is active." },
    { "pcscf", "visited_network_id", K_STR, NULL, 0, 0, OFF(pcscf_visited_network_id), false,
      "P-Visited-Network-ID added to REGISTERs (RFC 7315). Default: [diameter] realm." },
    { "pcscf", "max_ues", K_UINT, "100000", 1, 10000000, OFF(pcscf_max_ues), false,
      "UE flows (source address, port, transport) registered through the P-CSCF at once; "
      "a REGISTER from a new flow beyond it gets 503." },
    { "pcscf", "sec_agree", K_BOOL, "yes", 0, 0, OFF(pcscf_sec_agree), false,
      "RFC 3329 security agreement with TLS as the mechanism: a REGISTER with "
      "'Security-Client: tls' gets the P-CSCF's Security-Server in the 401, and later requests "
      "must echo it in Security-Verify (else 494)." },
    { "pcscf", "flow_timer", K_UINT, "0", 0, 86400, OFF(pcscf_flow_timer), false,
      "Seconds put in Flow-Timer on the 200 of an RFC 5626 outbound registration: how often "
      "the UE should send its keep-alive (CRLF on TCP/TLS, STUN on UDP). Keep it below the "
      "NAT's and [sip] idle_timeout's. 0: no Flow-Timer (UEs default to 95-120 s on TCP/TLS, "
      "24-29 s on UDP)." },

    { "icscf", "ports", K_PORTS, NULL, 0, 0, OFF(icscf_ports), false,
      "Comma list of [sip] listen ports whose requests the I-CSCF handles (the home network "
      "entry). Empty: not active." },
    { "icscf", "scscf", K_SCSCF, NULL, 0, 0, OFF(icscf_scscf), false,
      "Repeatable. '<S-CSCF SIP URI> [capability,...]': an S-CSCF the I-CSCF may select when "
      "the HSS answers with Server-Capabilities (every mandatory capability must be listed; "
      "more optional ones rank higher)." },
    { "icscf", "hss_timeout_ms", K_UINT, "3000", 100, 60000, OFF(icscf_hss_timeout_ms), false,
      "Longest wait for a UAA/LIA; then the request is answered with hss_error_status." },
    { "icscf", "retry_after", K_UINT, "30", 0, 86400, OFF(icscf_retry_after), false,
      "Retry-After seconds on a 503 when the HSS cannot answer (0: no Retry-After)." },
    { "icscf", "hss_error_status", K_UINT, "503", 480, 503, OFF(icscf_hss_error_status), false,
      "Status when the HSS is unreachable, slow or answers DIAMETER_UNABLE_TO_COMPLY: 503 "
      "(with Retry-After) or 480 (TS 24.229 §5.3.1.2)." },
    { "icscf", "max_pending", K_UINT, "1024", 1, 65536, OFF(icscf_max_pending), false,
      "Cx requests in flight per worker; beyond it requests get 503." },
    { "icscf", "scscf_timeout_ms", K_UINT, "4000", 100, 32000, OFF(icscf_scscf_timeout_ms),
      false, "How long the I-CSCF waits for an S-CSCF's first response before it tries the "
      "next S-CSCF (TS 24.229 §5.3.1.3: no answer counts as failure)." },

    { "scscf", "ports", K_PORTS, NULL, 0, 0, OFF(scscf_ports), false,
      "Comma list of [sip] listen ports whose requests the S-CSCF (registrar) handles. Empty: "
      "not active." },
    { "scscf", "uri", K_STR, NULL, 0, 0, OFF(scscf_uri), false,
      "The S-CSCF's SIP URI: its Server-Name on Cx (what the HSS hands the I-CSCF) and the "
      "base of Service-Route. Default: sip:<first listener address>:<first port>." },
    { "scscf", "realm", K_NAME, NULL, 0, 0, OFF(scscf_realm), false,
      "Realm of AKA challenges (Digest ones use the realm of the HSS's HA1). Default: "
      "[diameter] realm." },
    { "scscf", "digest_algorithms", K_STR, "SHA-256,MD5", 0, 0, OFF(scscf_digest_algorithms),
      false, "Digest algorithms offered, most preferred first (RFC 7616 §3.7: one challenge "
      "per algorithm the user has credentials for): MD5, SHA-256, SHA-512-256. A REGISTER "
      "whose Authorization names an algorithm gets that one only." },
    { "scscf", "nonce_ttl", K_UINT, "60", 1, 3600, OFF(scscf_nonce_ttl), false,
      "Seconds a challenge's nonce is valid; later it is answered with stale=true." },
    { "scscf", "auth_max_failures", K_UINT, "3", 1, 100, OFF(scscf_auth_max_failures), false,
      "Wrong credentials in a row (per private identity) answered with a new 401; the next "
      "one gets 403." },
    { "scscf", "default_expires", K_UINT, "3600", 1, 4294967, OFF(scscf_default_expires), false,
      "Registration lifetime when a REGISTER gives none, seconds." },
    { "scscf", "min_expires", K_UINT, "60", 1, 4294967, OFF(scscf_min_expires), false,
      "Shortest registration accepted (shorter: 423 with Min-Expires), seconds." },
    { "scscf", "max_expires", K_UINT, "3600", 1, 4294967, OFF(scscf_max_expires), false,
      "Longest registration granted (longer requests are shortened), seconds." },
    { "scscf", "max_contacts", K_UINT, "5", 1, 16, OFF(scscf_max_contacts), false,
      "Contacts per registration; a new one beyond it replaces the one expiring first." },
    { "scscf", "max_registrations", K_UINT, "100000", 16, 10000000,
      OFF(scscf_max_registrations), false,
      "Registered public identities (location store entries, aliases of implicit sets "
      "included); beyond it REGISTERs get 503." },
    { "scscf", "hss_timeout_ms", K_UINT, "3000", 100, 60000, OFF(scscf_hss_timeout_ms), false,
      "Longest wait for a MAA/SAA; then the REGISTER gets 503 (Retry-After)." },
    { "scscf", "retry_after", K_UINT, "30", 0, 86400, OFF(scscf_retry_after), false,
      "Retry-After seconds on a 503 when the HSS cannot answer (0: no Retry-After)." },
    { "scscf", "max_pending", K_UINT, "1024", 1, 65536, OFF(scscf_max_pending), false,
      "Cx requests in flight per worker; beyond it REGISTERs get 503." },
    { "scscf", "icscf", K_STR, NULL, 0, 0, OFF(scscf_icscf), false,
      "SIP URI of the I-CSCF that originating requests for users of the home domains go to "
      "(terminating processing via LIR). Default: this process's I-CSCF when it runs one, "
      "else the Request-URI is resolved (RFC 3263)." },
    { "scscf", "home_domains", K_STR, NULL, 0, 0, OFF(scscf_home_domains), false,
      "Comma list of the domains whose users this IMS network serves. Default: [diameter] "
      "realm." },
    { "scscf", "as_timeout_ms", K_UINT, "3000", 100, 32000, OFF(scscf_as_timeout_ms), false,
      "How long the S-CSCF waits for an application server's first response before the "
      "iFC's default handling applies (SESSION_CONTINUED or SESSION_TERMINATED)." },
    { "scscf", "contact_ring_s", K_UINT, "20", 0, 180, OFF(scscf_contact_ring_s), false,
      "A callee's devices (registered contacts) get a call one at a time, highest q first "
      "(RFC 3261 16.6): one that rings this many seconds unanswered, or says nothing, is "
      "cancelled and the next one rings. Applies only while another device is left. 0: only "
      "a failure (408, 480, 486, 488, 5xx) or [proxy] timer_c moves on." },
    { "scscf", "reg_event_expires", K_UINT, "3600", 60, 86400, OFF(scscf_reg_event_expires),
      false, "Longest subscription to the reg event package (RFC 3680) granted, seconds." },
    { "scscf", "policy_file", K_FILE, NULL, 0, 0, OFF(scscf_policy_file), false,
      "Policy file (oslo.policy rules, YAML or JSON; docs/policy.md) the S-CSCF enforces: "
      "ims:register for REGISTER, ims:message for MESSAGE, ims:subscribe for SUBSCRIBE, "
      "ims:call / ims:call:external for INVITE (docs/keystone.md). Reloaded on SIGHUP (a bad "
      "file keeps the old policy). Unset: no policy is enforced." },
    { "scscf", "local_roles", K_STR, "member", 0, 0, OFF(scscf_local_roles), false,
      "Comma list of the roles a Digest or AKA authenticated user has for the policy when "
      "its subscription has no roles in the HSS (imscloudctl sub modify --roles); Bearer "
      "users have their Keystone token's roles." },
    { "scscf", "bearer_scope", K_SCOPE, "ims", 0, 0, OFF(scscf_bearer_scope), false,
      "scope of the RFC 8898 Bearer challenge the S-CSCF adds to its 401 when [keystone] "
      "url is set." },
    { "scscf", "persist", K_BOOL, "yes", 0, 0, OFF(scscf_persist), false,
      "Keep the registrations in <state_dir>/scscf-reg.db (SQLite, written behind by a thread "
      "of their own) and load them at start, so a restart loses none: after a crash only "
      "the last milliseconds of changes, after a power cut the last seconds "
      "(src/cscf/reg_persist.h). One S-CSCF per state_dir." },

    /* [keystone]: the Keystone v3 client (src/keystone, docs/internals/keystone.md) */
    { "keystone", "url", K_URL, NULL, 0, 0, OFF(ks_url), false,
      "Keystone identity API v3 root, e.g. http://127.0.0.1:5000/v3. Unset: Keystone is not "
      "used." },
    { "keystone", "user", K_STR, NULL, 0, 0, OFF(ks_user), false,
      "Service account (password authentication). Needs the role `service` on its project to "
      "validate tokens, or the system role `reader` (then leave project unset) to also read "
      "role assignments and credentials." },
    { "keystone", "password", K_STR, NULL, 0, 0, OFF(ks_password), true,
      "Password of the service account; prefer password_file." },
    { "keystone", "password_file", K_FILE, NULL, 0, 0, OFF(ks_password_file), false,
      "File holding the service account's password (first line)." },
    { "keystone", "user_domain", K_STR, "Default", 0, 0, OFF(ks_user_domain), false,
      "Domain name of the service account." },
    { "keystone", "project", K_STR, NULL, 0, 0, OFF(ks_project), false,
      "Project name the service token is scoped to. Unset: a system-scoped token." },
    { "keystone", "project_domain", K_STR, "Default", 0, 0, OFF(ks_project_domain), false,
      "Domain name of the project." },
    { "keystone", "application_credential_id", K_STR, NULL, 0, 0, OFF(ks_app_cred_id), false,
      "Authenticate with this application credential instead of user/password (its token is "
      "scoped to the credential's project)." },
    { "keystone", "application_credential_secret", K_STR, NULL, 0, 0, OFF(ks_app_cred_secret),
      true, "Secret of the application credential; prefer application_credential_secret_file." },
    { "keystone", "application_credential_secret_file", K_FILE, NULL, 0, 0,
      OFF(ks_app_cred_secret_file), false,
      "File holding the application credential's secret (first line)." },
    { "keystone", "ca_file", K_FILE, NULL, 0, 0, OFF(ks_ca_file), false,
      "CA bundle to verify an https Keystone. Unset: the system trust store." },
    { "keystone", "cache_ttl", K_UINT, "60", 0, 86400, OFF(ks_cache_ttl), false,
      "Seconds a validated token is cached (never beyond its expires_at); 0 disables the "
      "cache. A revoked token keeps working at most this long." },
    { "keystone", "negative_ttl", K_UINT, "5", 0, 3600, OFF(ks_negative_ttl), false,
      "Seconds an invalid or revoked token (404) is cached; 0 disables." },
    { "keystone", "timeout_ms", K_UINT, "2000", 100, 60000, OFF(ks_timeout_ms), false,
      "Whole-request timeout for Keystone; past it the request fails closed." },
    { "keystone", "max_pending", K_UINT, "1024", 1, 1000000, OFF(ks_max_pending), false,
      "Keystone requests (and waiting validations) per worker." },
    { "keystone", "cache_size", K_UINT, "65536", 16, 16777216, OFF(ks_cache_size), false,
      "Entries of the validation cache (shared by all workers)." },

    /* [as]: the cloud application server (src/cloudas, docs/cloud-as.md) */
    { "as", "ports", K_PORTS, NULL, 0, 0, OFF(as_ports), false,
      "Local SIP ports the cloud AS serves (each also a [sip] listen port, in no other role). "
      "None: the role is inactive." },
    { "as", "service_uri", K_STR, NULL, 0, 0, OFF(as_service_uri), false,
      "The service's SIP URI that users send commands to (MESSAGE) and SUBSCRIBE to. "
      "Default: sip:cloud@<[diameter] realm>." },
    { "as", "icscf", K_STR, NULL, 0, 0, OFF(as_icscf), false,
      "SIP URI the AS sends its own MESSAGEs and NOTIFYs to (an I-CSCF: terminating "
      "processing towards the user). Required with ports." },
    { "as", "keystone_url", K_URL, NULL, 0, 0, OFF(as_keystone_url), false,
      "Keystone v3 root the AS authenticates users' delegations at. Default: [keystone] url." },
    { "as", "delegations", K_FILE, NULL, 0, 0, OFF(as_delegations), false,
      "File of the users' delegations (mode 0600 or stricter): lines '<IMPU> "
      "<application credential id> <secret>' (docs/cloud-as.md). A user without a line is "
      "refused." },
    { "as", "policy_file", K_FILE, NULL, 0, 0, OFF(as_policy_file), false,
      "Policy file (docs/policy.md) with the cloud:* rules each command is checked against "
      "before any OpenStack call. Required with ports." },
    { "as", "poll_ms", K_UINT, "250", 50, 60000, OFF(as_poll_ms), false,
      "First delay when polling Nova for a server build or a subscription; doubles up to "
      "poll_max_ms." },
    { "as", "poll_max_ms", K_UINT, "2000", 50, 600000, OFF(as_poll_max_ms), false,
      "Longest delay between two polls." },
    { "as", "build_timeout", K_UINT, "120", 5, 3600, OFF(as_build_timeout), false,
      "Seconds a create reports progress; then the user is told it is still building." },
    { "as", "http_timeout_ms", K_UINT, "5000", 100, 60000, OFF(as_http_timeout_ms), false,
      "Whole-request timeout of every Keystone and OpenStack call; past it the command "
      "fails with a clear error." },
    { "as", "max_jobs", K_UINT, "256", 1, 65536, OFF(as_max_jobs), false,
      "Commands and builds in progress per worker; beyond it the MESSAGE gets 503." },

    { "security", "rules_file", K_FILE, NULL, 0, 0, OFF(sec_rules_file), false,
      "Security group rules for every listener (SIP UDP/TCP/TLS, Diameter), as Neutron's "
      "API JSON {\"security_group_rules\": [...]} (docs/security-groups.md): ingress is "
      "default deny, a rule allows. Reloaded on SIGHUP (a bad file keeps the old rules). "
      "Unset: every listener is open (logged once as a warning)." },
    { "security", "diameter_default_deny", K_BOOL, "yes", 0, 0, OFF(sec_dia_default_deny), false,
      "Diameter connections only from the addresses of [diameter] peer lines, unless a rule "
      "allows the Diameter port explicitly (a port range that covers it); without a "
      "rules_file, connections from this host (loopback) are accepted too. no: Diameter is "
      "filtered by the rules like any listener (and open without a rules_file)." },
    { "security", "neutron_group", K_STR, NULL, 0, 0, OFF(sec_neutron_group), false,
      "Name or id of an OpenStack Neutron security group whose ingress rules guard every "
      "listener (docs/security-groups.md \"Neutron as the source\"), read with the [keystone] "
      "service account from the catalog's network endpoint. With rules_file too, the rules "
      "in force are the union of both. A Neutron outage or a rule that cannot be applied "
      "keeps the last good rules. Needs [keystone] url." },
    { "security", "neutron_refresh", K_UINT, "30", 1, 86400, OFF(sec_neutron_refresh), false,
      "Seconds between reads of neutron_group; SIGHUP reads it at once." },

    /* [audit] (src/audit, docs/audit.md) */
    { "audit", "enabled", K_BOOL, "yes", 0, 0, OFF(audit_enabled), false,
      "Write the tamper-evident CADF audit trail (hash-chained, HMAC-sealed JSON lines)." },
    { "audit", "file", K_STR, NULL, 0, 0, OFF(audit_file), false,
      "The audit trail. Default <state_dir>/audit.jsonl. One process writes it (locked)." },
    { "audit", "syslog", K_BOOL, "no", 0, 0, OFF(audit_syslog), false,
      "Also send every audit line to syslog (facility LOG_AUTHPRIV)." },
    { "audit", "keys_dir", K_STR, NULL, 0, 0, OFF(audit_keys_dir), false,
      "Key repository the HMAC keys derive from. Default: [hss] keys_dir, else "
      "<state_dir>/keys (created when missing)." },
    { "audit", "key_id", K_STR, "primary", 0, 0, OFF(audit_key_id), false,
      "Repository key for new lines: 'primary' (follows rotations) or a key number." },
    { "audit", "queue", K_UINT, "4096", 16, 1000000, OFF(audit_queue), false,
      "Events waiting for the writer thread; beyond it events are dropped and counted." },
    { "audit", "sync_ms", K_UINT, "50", 1, 1000, OFF(audit_sync_ms), false,
      "Under load the writer appends what is queued, fdatasyncs the trail, then lets events "
      "gather this long: at most 1000/sync_ms disk flushes a second, and what a power cut can "
      "lose of the trail (a crash of the process loses nothing written). The queue must hold "
      "sync_ms worth of events." },

    /* [detect] (src/detect, docs/security.md "Detectors") */
    { "detect", "enabled", K_BOOL, "no", 0, 0, OFF(det_enabled), false,
      "Run the attack detectors on every SIP request: scanner User-Agents, user sweeps and "
      "malformed bursts per source. A detection writes a CADF monitor event." },
    { "detect", "fingerprints", K_STR, NULL, 0, 0, OFF(det_fingerprints), false,
      "Comma list of User-Agent substrings (case-insensitive) that mark a scanner. Unset: "
      "friendly-scanner, sipvicious, sipcli, sundayddr, VaxSIPUserAgent, pplsip, iWar, "
      "sip-scan, SIPScan, smap, sipsak-scan, Cisco-SIPScan." },
    { "detect", "exempt", K_STR, NULL, 0, 0, OFF(det_exempt), false,
      "Comma list of IPs or CIDR prefixes never tracked (the P-CSCF as seen by the I-CSCF, "
      "monitoring hosts); at most 16." },
    { "detect", "sweep_users", K_UINT, "20", 0, 99, OFF(det_sweep_users), false,
      "A source that probes more than this many distinct users (REGISTER To, else the "
      "Request-URI user) within sweep_window seconds is sweeping; 0 disables." },
    { "detect", "sweep_window", K_UINT, "60", 1, 86400, OFF(det_sweep_window), false,
      "Seconds of the sweep window." },
    { "detect", "malformed_max", K_UINT, "20", 0, 1000000, OFF(det_malformed_max), false,
      "A source that sends more than this many messages the parser refuses within "
      "malformed_window seconds is attacking; 0 disables." },
    { "detect", "malformed_window", K_UINT, "10", 1, 86400, OFF(det_malformed_window), false,
      "Seconds of the malformed-burst window." },
    { "detect", "block", K_UINT, "300", 0, 604800, OFF(det_block), false,
      "Seconds a detected source spends in the dynamic deny group (every SIP and HTTP "
      "listener ignores it); 0: detect and audit only." },
    { "detect", "max_sources", K_UINT, "4096", 64, 1048576, OFF(det_max_sources), false,
      "Sources tracked at once; beyond it the least recently seen is forgotten." },

    /* [metrics] (src/metrics, docs/security.md "Metrics") */
    { "metrics", "listen", K_STR, NULL, 0, 0, OFF(metrics_listen), false,
      "address:port of the Prometheus endpoint (GET /metrics), e.g. 127.0.0.1:9090. Unset: "
      "no endpoint. Filtered by the security groups like every listener (TCP)." },

    /* [ut] (src/ut, docs/ut.md): the Ut interface, users' own settings over HTTP(S) */
    { "ut", "listen", K_STR, NULL, 0, 0, OFF(ut_listen), false,
      "address:port of the Ut HTTP(S) API (docs/ut.md, docs/ut-openapi.yaml), e.g. "
      "127.0.0.1:8443. Unset: no Ut interface. Needs [keystone] url and the hss role in this "
      "process. Filtered by the security groups like every listener (TCP)." },
    { "ut", "tls_cert", K_FILE, NULL, 0, 0, OFF(ut_tls_cert), false,
      "PEM certificate chain of the Ut listener; with tls_key set the API is HTTPS only." },
    { "ut", "tls_key", K_FILE, NULL, 0, 0, OFF(ut_tls_key), true,
      "PEM private key of tls_cert." },
    { "ut", "policy_file", K_FILE, NULL, 0, 0, OFF(ut_policy_file), false,
      "Policy file (etc/policy.yaml) with the rules ut:read, ut:write and admin:subscriber. "
      "Reloaded on SIGHUP (a bad file keeps the old policy). "
      "Unset: owners may read and write their own settings, nobody else." },

    /* [privacy] (src/cscf/privacy.c, docs/privacy.md) */
    { "privacy", "enabled", K_BOOL, "yes", 0, 0, OFF(privacy_enabled), false,
      "Act as the privacy service (RFC 3323, RFC 3325) where requests and responses leave the "
      "trust domain: toward a UE (P-CSCF) and toward an untrusted next hop (S-CSCF)." },
    { "privacy", "trusted", K_STR, NULL, 0, 0, OFF(privacy_trusted), false,
      "Comma list of the peers inside the trust domain besides this network's own CSCF "
      "listeners and application servers: IP addresses, CIDR prefixes (10.0.0.0/8, "
      "2001:db8::/32), ip:port for one hop (127.0.0.1:5080), or host names. A next hop is "
      "compared by its URI host (names are not resolved). The I- and S-CSCF also believe a "
      "REGISTER's integrity-protected (TS 24.229) only from a source address (and port) "
      "listed here or from our own roles in this process: list the P- and I-CSCF processes "
      "when the roles run apart. Unset: only our own roles are trusted; UEs and every other "
      "peer are not." },
    /* [lockout] (src/cscf/lockout.c, docs/security.md "Brute-force lockout") */
    { "lockout", "impi_failures", K_UINT, "5", 0, 1000, OFF(lockout_impi_failures), false,
      "Failed authentications of one private identity within 'window' that lock it out, for "
      "the sources that failed for it (a source that never failed can still register). "
      "0: no per-IMPI lockout." },
    { "lockout", "source_failures", K_UINT, "20", 0, 100000, OFF(lockout_source_failures),
      false, "Failed authentications from one source address (the UE's, as the P-CSCF saw "
      "it) within 'window' that lock the address out for every IMPI. Higher than "
      "impi_failures: many users can share an address behind NAT. 0: off." },
    { "lockout", "window", K_UINT, "600", 1, 86400, OFF(lockout_window), false,
      "Seconds over which failures are counted (a fixed window from the first failure)." },
    { "lockout", "time", K_UINT, "60", 1, 86400, OFF(lockout_time), false,
      "Seconds of the first lockout; each further lockout of the same IMPI or address "
      "doubles it, up to max_time." },
    { "lockout", "max_time", K_UINT, "3600", 1, 604800, OFF(lockout_max_time), false,
      "Longest lockout, seconds (must be >= time)." },
    { "lockout", "max_entries", K_UINT, "200000", 16, 100000000, OFF(lockout_max_entries),
      false, "IMPIs, addresses and pairs with failures remembered at once; beyond it new "
      "failures are not counted (logged)." },

    /* [limits] (src/proxy/ratelimit.c, docs/security.md "Rate limits and overload") */
    { "limits", "source_rate", K_UINT, "0", 0, 1000000, OFF(lim_source_rate), false,
      "Requests per second one source address may send to a limited listener (token bucket, "
      "per worker). Beyond it: 503 with Retry-After, and beyond the same rate of 503s the "
      "requests are dropped. 0: no per-source limit." },
    { "limits", "source_burst", K_UINT, "0", 0, 1000000, OFF(lim_source_burst), false,
      "Bucket size of the per-source limit. 0: twice source_rate." },
    { "limits", "ports", K_PORTS, NULL, 0, 0, OFF(lim_ports), false,
      "Listener ports the per-source limit applies to (the UE-facing ones, e.g. the P-CSCF's). "
      "Empty: every listener." },
    { "limits", "exempt", K_STR, NULL, 0, 0, OFF(lim_exempt), false,
      "Comma list of source IP addresses, or ip:port for one sender ([::1]:5060), never rate "
      "limited nor refused for overload: our own CSCFs (hops between the roles of one process "
      "never are) and application servers." },
    { "limits", "impi_rate", K_UINT, "0", 0, 100000, OFF(lim_impi_rate), false,
      "REGISTERs per second one private identity may send to the S-CSCF (token bucket); "
      "beyond it 503 with Retry-After. 0: off." },
    { "limits", "impi_burst", K_UINT, "0", 0, 100000, OFF(lim_impi_burst), false,
      "Bucket size of the per-IMPI limit. 0: twice impi_rate (at least 5)." },
    { "limits", "overload_target_ms", K_UINT, "100", 0, 60000, OFF(lim_overload_target_ms),
      false, "Overload control: the longest a new out-of-dialog request may have waited in "
      "the worker's receive queue and still be admitted (a UDP datagram's queueing delay, "
      "from the kernel's receive timestamp; slow peers such as the HSS or Keystone do not "
      "count). Beyond it the request gets 503 with Retry-After at once, statelessly; one "
      "whose Digest credentials answer our challenge may wait four times as long. "
      "In-dialog requests, ACK, CANCEL, BYE and hops between the roles of this process are "
      "never refused. 0: off." },
    { "limits", "overload_min_rate", K_UINT, "200", 1, 10000000, OFF(lim_overload_min_rate),
      false, "Overload control: requests per second per worker admitted even when they "
      "waited longer than overload_target_ms (a trickle of service while the queue stays "
      "long)." },
    { "limits", "overload_max_rate", K_UINT, "1000000", 1, 10000000,
      OFF(lim_overload_max_rate), false,
      "Overload control: at most this many new out-of-dialog requests per second per "
      "worker are admitted, however short the queue (a ceiling)." },
    { "limits", "retry_after", K_UINT, "5", 0, 3600, OFF(lim_retry_after), false,
      "Retry-After seconds on the 503s of the rate limits and the overload control, and on "
      "the proxy's own 503s when a transaction cannot be created or a forward fails for lack "
      "of resources (there 0 means 5)." },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parse_state {
    const char *name;
    struct ims_cfg *cfg;
    unsigned seen_line[NKEYS]; /* 0 = not seen */
    char *err;
    size_t errsz;
};

static int fail(struct parse_state *st, unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Keys whose value is a heap string in struct ims_cfg. */
static bool is_text(enum key_type t)
{
    return t == K_STR || t == K_NAME || t == K_SCOPE || t == K_URL || t == K_FILE;
}

/* Whether v fits a K_NAME, K_SCOPE or K_URL key (the enum's comment). */
static bool chars_ok(enum key_type t, ims_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        bool alnum = ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9');
        bool ok = t == K_NAME ? alnum || c == '-' || c == '.' || c == '_'
                              : c >= 0x21 && c <= 0x7e && c != '"' && c != '\\' &&
                                    (t != K_URL || (c != '<' && c != '>'));
        if (!ok)
            return false;
    }
    if (t == K_URL && v.len)
        return ims_str_has_caseprefix(v, "http://") || ims_str_has_caseprefix(v, "https://");
    return true;
}

static int fail(struct parse_state *st, unsigned line, const char *key, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (line)
        snprintf(st->err, st->errsz, "%s:%u: %s: %s", st->name, line, key, why);
    else
        snprintf(st->err, st->errsz, "%s: %s: %s", st->name, key, why);
    return IMS_EINVAL;
}

static int set_str(char **slot, ims_str v)
{
    char *d = ims_strndup(v.p, v.len);
    if (!d)
        return IMS_ENOMEM;
    ims_free(*slot);
    *slot = d;
    return 0;
}

static int parse_bool(ims_str v, bool *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (ims_str_caseeq_lit(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (ims_str_caseeq_lit(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return IMS_EINVAL;
}

static int parse_listen(ims_str v, struct ims_cfg_listen *out)
{
    long colon = ims_str_chr(v, ':');
    if (colon <= 0)
        return IMS_EINVAL;
    if (ims_proto_parse(ims_str_make(v.p, (size_t)colon), &out->proto) != 0)
        return IMS_EINVAL;
    ims_str rest = ims_str_make(v.p + colon + 1, v.len - (size_t)colon - 1);
    uint16_t def = out->proto == SIP_PROTO_TLS ? 5061 : 5060;
    if (ims_addr_parse(rest, def, &out->addr) != 0)
        return IMS_EINVAL;
    return 0;
}

/* Applies one value to its key. */
static int apply(struct parse_state *st, const struct key *k, ims_str v, unsigned line)
{
    char *base = (char *)st->cfg;
    switch (k->type) {
    case K_UINT: {
        uint64_t n;
        if (ims_str_to_u64(v, UINT32_MAX, &n) != 0)
            return fail(st, line, k->name, "'%.*s' is not a whole number", IMS_SF(v));
        if (n < k->min || n > k->max)
            return fail(st, line, k->name, "%llu is out of range %u..%u",
                        (unsigned long long)n, k->min, k->max);
        *(unsigned *)(base + k->off) = (unsigned)n;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(v, (bool *)(base + k->off)) != 0)
            return fail(st, line, k->name, "'%.*s' is not yes or no", IMS_SF(v));
        return 0;
    case K_NAME:
    case K_SCOPE:
    case K_URL:
        if (!chars_ok(k->type, v))
            return fail(st, line, k->name, "'%.*s' is not %s", IMS_SF(v),
                        k->type == K_NAME ? "a host or realm name (letters, digits, '-', '.', '_')"
                        : k->type == K_SCOPE
                            ? "a scope token (printable ASCII but space, '\"' and '\\', "
                              "RFC 6749 section 3.3)"
                            : "an http:// or https:// URL (printable ASCII but space, '\"', "
                              "'\\', '<' and '>')");
        /* fall through */
    case K_STR:
        if (v.len == 0) {
            ims_free(*(char **)(base + k->off));
            *(char **)(base + k->off) = NULL;
            return 0;
        }
        return set_str((char **)(base + k->off), v) ? IMS_ENOMEM : 0;
    case K_FILE: {
        if (set_str((char **)(base + k->off), v) != 0)
            return IMS_ENOMEM;
        const char *path = *(char **)(base + k->off);
        if (access(path, R_OK) != 0)
            return fail(st, line, k->name, "cannot read '%s': %s", path, strerror(errno));
        return 0;
    }
    case K_LOGLEVEL: {
        char lv[16];
        enum ims_log_level l;
        ims_str_copy(v, lv, sizeof(lv));
        if (v.len >= sizeof(lv) || ims_log_level_parse(lv, &l) != 0)
            return fail(st, line, k->name, "'%.*s' is not one of err, warn, notice, info, debug",
                        IMS_SF(v));
        *(int *)(base + k->off) = (int)l;
        return 0;
    }
    case K_LISTEN: {
        struct ims_cfg *c = st->cfg;
        if (c->nlisten == IMS_CFG_MAX_LISTEN)
            return fail(st, line, k->name, "more than %d listeners", IMS_CFG_MAX_LISTEN);
        if (parse_listen(v, &c->listen[c->nlisten]) != 0)
            return fail(st, line, k->name,
                        "'%.*s' is not proto:address:port (e.g. udp:127.0.0.1:5060, "
                        "tls:[::1]:5061)", IMS_SF(v));
        c->nlisten++;
        return 0;
    }
    case K_ROUTE: {
        struct ims_cfg *c = st->cfg;
        struct ims_cur cur = ims_cur_of(v);
        ims_str dom, hop;
        ims_cur_until(&cur, " \t", &dom);
        ims_cur_lws(&cur);
        hop = ims_str_make(cur.p, ims_cur_left(&cur));
        if (dom.len == 0 || hop.len == 0 ||
            !(ims_str_has_caseprefix(hop, "sip:") || ims_str_has_caseprefix(hop, "sips:")))
            return fail(st, line, k->name, "'%.*s' is not '<domain|*> <sip:next-hop>'", IMS_SF(v));
        if (c->nroutes == IMS_CFG_MAX_ROUTES)
            return fail(st, line, k->name, "more than %d routes", IMS_CFG_MAX_ROUTES);
        /* counted first, so ims_cfg_free() releases a half-set route */
        struct ims_cfg_route *r = &c->routes[c->nroutes++];
        if (set_str(&r->domain, dom) || set_str(&r->next_hop, hop))
            return IMS_ENOMEM;
        return 0;
    }
    case K_ROLES: {
        static const char *const names[] = { "pcscf", "icscf", "scscf", "hss", "as" };
        struct ims_cur cur = ims_cur_of(v);
        unsigned roles = 0;
        while (!ims_cur_eof(&cur)) {
            ims_str item;
            ims_cur_until(&cur, ",", &item);
            ims_cur_char(&cur, ',');
            item = ims_str_trim(item);
            size_t i = 0;
            while (i < 5 && !ims_str_caseeq_lit(item, names[i]))
                i++;
            if (i == 5)
                return fail(st, line, k->name, "'%.*s' is not one of pcscf, icscf, scscf, hss, as",
                            IMS_SF(item));
            roles |= 1u << i;
        }
        if (!roles)
            return fail(st, line, k->name, "no role listed");
        *(unsigned *)(base + k->off) = roles;
        return 0;
    }
    case K_HSSMODE:
        if (ims_str_caseeq_lit(v, "hss"))
            *(int *)(base + k->off) = 0;
        else if (ims_str_caseeq_lit(v, "slf"))
            *(int *)(base + k->off) = 1;
        else
            return fail(st, line, k->name, "'%.*s' is not hss or slf", IMS_SF(v));
        return 0;
    case K_SLF: {
        struct ims_cfg *c = st->cfg;
        struct ims_cur cur = ims_cur_of(v);
        ims_str pat, hss;
        ims_cur_until(&cur, " \t", &pat);
        ims_cur_lws(&cur);
        hss = ims_str_trim(ims_str_make(cur.p, ims_cur_left(&cur)));
        if (pat.len == 0 || hss.len == 0 || ims_str_chr(hss, ' ') >= 0)
            return fail(st, line, k->name, "'%.*s' is not '<identity glob> <HSS identity>'",
                        IMS_SF(v));
        if (c->nhss_slf == IMS_CFG_MAX_SLF)
            return fail(st, line, k->name, "more than %d routes", IMS_CFG_MAX_SLF);
        struct ims_cfg_slf *r = &c->hss_slf[c->nhss_slf++];
        if (set_str(&r->pattern, pat) || set_str(&r->hss, hss))
            return IMS_ENOMEM;
        return 0;
    }
    case K_DIAPEER: {
        struct ims_cfg *c = st->cfg;
        struct ims_cur cur = ims_cur_of(v);
        ims_str id, addr, opt;
        struct ims_addr a;
        ims_cur_until(&cur, " \t", &id);
        ims_cur_lws(&cur);
        ims_cur_until(&cur, " \t", &addr);
        ims_cur_lws(&cur);
        opt = ims_str_trim(ims_str_make(cur.p, ims_cur_left(&cur)));
        bool tls = ims_str_caseeq_lit(opt, "tls");
        if (id.len == 0 || addr.len == 0 || (opt.len && !tls) ||
            ims_addr_parse(addr, tls ? 5868 : 3868, &a) != 0)
            return fail(st, line, k->name, "'%.*s' is not '<diameter-id> <ip>[:port] [tls]'",
                        IMS_SF(v));
        if (c->ndia_peers == IMS_CFG_MAX_DIA_PEERS)
            return fail(st, line, k->name, "more than %d peers", IMS_CFG_MAX_DIA_PEERS);
        struct ims_cfg_dia_peer *p = &c->dia_peers[c->ndia_peers++];
        char host[64];
        ims_addr_host(&a, host, sizeof(host));
        p->port = ims_addr_port(&a);
        p->tls = tls;
        if (set_str(&p->id, id) || set_str(&p->addr, ims_str_cstr(host)))
            return IMS_ENOMEM;
        return 0;
    }
    case K_PORTS: {
        struct ims_cfg_ports *ps = (struct ims_cfg_ports *)(base + k->off);
        struct ims_cur cur = ims_cur_of(v);
        ps->n = 0;
        while (!ims_cur_eof(&cur)) {
            ims_str item;
            uint64_t n;
            ims_cur_until(&cur, ",", &item);
            ims_cur_char(&cur, ',');
            item = ims_str_trim(item);
            if (ims_str_to_u64(item, 65535, &n) != 0 || n == 0)
                return fail(st, line, k->name, "'%.*s' is not a port (1..65535)", IMS_SF(item));
            if (ps->n == IMS_CFG_MAX_PORTS)
                return fail(st, line, k->name, "more than %d ports", IMS_CFG_MAX_PORTS);
            for (size_t i = 0; i < ps->n; i++)
                if (ps->port[i] == n)
                    return fail(st, line, k->name, "port %llu is listed twice",
                                (unsigned long long)n);
            ps->port[ps->n++] = (uint16_t)n;
        }
        return 0;
    }
    case K_SCSCF: {
        struct ims_cfg *c = st->cfg;
        struct ims_cur cur = ims_cur_of(v);
        ims_str uri, caps;
        ims_cur_until(&cur, " \t", &uri);
        ims_cur_lws(&cur);
        caps = ims_str_trim(ims_str_make(cur.p, ims_cur_left(&cur)));
        if (!(ims_str_has_caseprefix(uri, "sip:") || ims_str_has_caseprefix(uri, "sips:")))
            return fail(st, line, k->name, "'%.*s' is not '<sip:uri> [capability,...]'",
                        IMS_SF(v));
        if (c->nicscf_scscf == IMS_CFG_MAX_SCSCF)
            return fail(st, line, k->name, "more than %d S-CSCFs", IMS_CFG_MAX_SCSCF);
        struct ims_cfg_scscf *e = &c->icscf_scscf[c->nicscf_scscf++];
        if (set_str(&e->uri, uri))
            return IMS_ENOMEM;
        struct ims_cur cc = ims_cur_of(caps);
        while (!ims_cur_eof(&cc)) {
            ims_str item;
            uint64_t n;
            ims_cur_until(&cc, ",", &item);
            ims_cur_char(&cc, ',');
            item = ims_str_trim(item);
            if (ims_str_to_u64(item, UINT32_MAX, &n) != 0)
                return fail(st, line, k->name, "capability '%.*s' is not a number",
                            IMS_SF(item));
            if (e->ncaps == IMS_CFG_MAX_CAPS)
                return fail(st, line, k->name, "more than %d capabilities", IMS_CFG_MAX_CAPS);
            e->caps[e->ncaps++] = (uint32_t)n;
        }
        return 0;
    }
    }
    return IMS_EINVAL;
}

static const struct key *find_key(ims_str section, ims_str name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (ims_str_caseeq_lit(section, keys[i].section) && ims_str_caseeq_lit(name, keys[i].name))
            return &keys[i];
    return NULL;
}

static bool known_section(ims_str s)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (ims_str_caseeq_lit(s, keys[i].section))
            return true;
    return false;
}

/* Strips an inline comment: whitespace followed by '#' or ';'. */
static ims_str strip_comment(ims_str v)
{
    for (size_t i = 1; i < v.len; i++)
        if ((v.p[i] == '#' || v.p[i] == ';') && ims_is_ws((unsigned char)v.p[i - 1]))
            return ims_str_trim(ims_str_make(v.p, i));
    return ims_str_trim(v);
}

static int parse_text(struct parse_state *st, const char *text, size_t len)
{
    ims_str section = IMS_STR_NULL;
    unsigned line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        ims_str l = ims_str_trim(ims_str_make(p, (size_t)(le - p)));
        p = nl ? nl + 1 : end;
        line++;
        if (l.len == 0 || l.p[0] == '#' || l.p[0] == ';')
            continue;
        if (memchr(l.p, '\0', l.len))
            return fail(st, line, "(line)", "contains a NUL byte");
        if (l.p[0] == '[') {
            if (l.p[l.len - 1] != ']')
                return fail(st, line, "(section)", "missing ']'");
            section = ims_str_trim(ims_str_make(l.p + 1, l.len - 2));
            if (!known_section(section))
                return fail(st, line, "(section)", "unknown section [%.*s]", IMS_SF(section));
            continue;
        }
        long eq = ims_str_chr(l, '=');
        if (eq <= 0)
            return fail(st, line, "(line)", "expected 'key = value', got '%.*s'",
                        (int)(l.len > 60 ? 60 : l.len), l.p);
        ims_str name = ims_str_trim(ims_str_make(l.p, (size_t)eq));
        ims_str value = strip_comment(ims_str_make(l.p + eq + 1, l.len - (size_t)eq - 1));
        char kname[64];
        ims_str_copy(name, kname, sizeof(kname));
        if (section.len == 0)
            return fail(st, line, kname, "key outside of any [section]");
        /* "key =# x" would be the value "# x", and the dump's "key = # x" a
         * comment: refused, so that what loads also dumps and loads again */
        if (value.len && (value.p[0] == '#' || value.p[0] == ';'))
            return fail(st, line, kname, "a value cannot begin with '%c' (it starts a comment)",
                        value.p[0]);
        const struct key *k = find_key(section, name);
        if (!k)
            return fail(st, line, kname, "unknown key in [%.*s]", IMS_SF(section));
        size_t ki = (size_t)(k - keys);
        bool repeatable = k->type == K_LISTEN || k->type == K_ROUTE || k->type == K_SLF ||
                          k->type == K_DIAPEER || k->type == K_SCSCF;
        if (st->seen_line[ki] && !repeatable)
            return fail(st, line, kname, "set twice (first on line %u)", st->seen_line[ki]);
        st->seen_line[ki] = line;
        int rc = apply(st, k, value, line);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_defaults(struct parse_state *st)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (!keys[i].def || keys[i].type == K_LISTEN || keys[i].type == K_ROUTE ||
            keys[i].type == K_SLF || keys[i].type == K_DIAPEER || keys[i].type == K_SCSCF ||
            keys[i].type == K_PORTS)
            continue;
        int rc = apply(st, &keys[i], ims_str_cstr(keys[i].def), 0);
        if (rc)
            return rc;
    }
    return 0;
}

static const struct key *key_named(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static unsigned key_line(struct parse_state *st, const char *section, const char *name)
{
    const struct key *k = find_key(ims_str_cstr(section), ims_str_cstr(name));
    return k ? st->seen_line[k - keys] : 0;
}

static bool is_digest_alg(ims_str a)
{
    return ims_str_caseeq_lit(a, "MD5") || ims_str_caseeq_lit(a, "SHA-256") ||
           ims_str_caseeq_lit(a, "SHA-512-256");
}

/* The CSCF sections: every port of an active role is a listener port and
 * belongs to one role only; what each active role needs is there. */
static int validate_cscf(struct parse_state *st)
{
    struct ims_cfg *c = st->cfg;
    static const char *const sec[3] = { "pcscf", "icscf", "scscf" };
    static const unsigned bit[3] = { IMS_ROLE_PCSCF, IMS_ROLE_ICSCF, IMS_ROLE_SCSCF };
    const struct ims_cfg_ports *ports[3] = { &c->pcscf_ports, &c->icscf_ports, &c->scscf_ports };
    for (int r = 0; r < 3; r++) {
        if (!(c->roles & bit[r]))
            continue;
        for (size_t i = 0; i < ports[r]->n; i++) {
            uint16_t port = ports[r]->port[i];
            bool listened = false;
            for (size_t j = 0; j < c->nlisten && !listened; j++)
                listened = ims_addr_port(&c->listen[j].addr) == port;
            if (!listened)
                return fail(st, key_line(st, sec[r], "ports"), "ports",
                            "[%s] port %u has no [sip] listen", sec[r], (unsigned)port);
            for (int o = 0; o < r; o++)
                for (size_t j = 0; (c->roles & bit[o]) && j < ports[o]->n; j++)
                    if (ports[o]->port[j] == port)
                        return fail(st, key_line(st, sec[r], "ports"), "ports",
                                    "port %u is in [%s] and [%s]", (unsigned)port, sec[o],
                                    sec[r]);
        }
    }
    bool pcscf = (c->roles & IMS_ROLE_PCSCF) && c->pcscf_ports.n;
    bool icscf = (c->roles & IMS_ROLE_ICSCF) && c->icscf_ports.n;
    bool scscf = (c->roles & IMS_ROLE_SCSCF) && c->scscf_ports.n;
    ims_str icscf_uri = ims_str_cstr(c->pcscf_icscf);
    if (pcscf && !(ims_str_has_caseprefix(icscf_uri, "sip:") ||
                   ims_str_has_caseprefix(icscf_uri, "sips:")))
        return fail(st, key_line(st, "pcscf", "icscf"), "icscf",
                    "the P-CSCF needs the I-CSCF's SIP URI (icscf = sip:host:port)");
    if ((icscf || scscf) && !(c->roles & IMS_ROLE_HSS) && c->ndia_peers == 0)
        return fail(st, key_line(st, icscf ? "icscf" : "scscf", "ports"), "ports",
                    "an %s without the hss role in this process needs a [diameter] peer (the HSS)",
                    icscf ? "I-CSCF" : "S-CSCF");
    if (c->icscf_hss_error_status != 480 && c->icscf_hss_error_status != 503)
        return fail(st, key_line(st, "icscf", "hss_error_status"), "hss_error_status",
                    "must be 480 or 503");
    if (c->scscf_min_expires > c->scscf_max_expires)
        return fail(st, key_line(st, "scscf", "min_expires"), "min_expires",
                    "must not exceed max_expires (%u)", c->scscf_max_expires);
    ims_str algs = ims_str_cstr(c->scscf_digest_algorithms);
    struct ims_cur cur = ims_cur_of(algs);
    while (!ims_cur_eof(&cur)) {
        ims_str item;
        ims_cur_until(&cur, ",", &item);
        ims_cur_char(&cur, ',');
        item = ims_str_trim(item);
        if (!is_digest_alg(item))
            return fail(st, key_line(st, "scscf", "digest_algorithms"), "digest_algorithms",
                        "'%.*s' is not MD5, SHA-256 or SHA-512-256", IMS_SF(item));
    }
    return 0;
}

/* Checks that span several keys, after the whole file is read. */
static int validate(struct parse_state *st)
{
    struct ims_cfg *c = st->cfg;
    unsigned listen_line = st->seen_line[key_named("listen") - keys];
    if (c->nlisten == 0) {
        static const char *const defaults[] = { "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060" };
        for (size_t i = 0; i < 2; i++)
            if (parse_listen(ims_str_cstr(defaults[i]), &c->listen[c->nlisten++]) != 0)
                return IMS_EINVAL;
    }
    bool tls = false;
    for (size_t i = 0; i < c->nlisten; i++) {
        tls |= c->listen[i].proto == SIP_PROTO_TLS;
        for (size_t j = 0; j < i; j++)
            if (c->listen[i].proto == c->listen[j].proto &&
                ims_addr_equal(&c->listen[i].addr, &c->listen[j].addr))
                return fail(st, listen_line, "listen", "the same address is listed twice");
    }
    if (tls && (!c->tls_cert || !c->tls_key))
        return fail(st, listen_line, "listen",
                    "a tls listener needs tls_cert and tls_key in [sip]");
    if (c->tls_verify_client && !c->tls_ca)
        return fail(st, st->seen_line[key_named("tls_verify_client") - keys], "tls_verify_client",
                    "needs tls_ca");
    if (c->t1_ms > c->t2_ms)
        return fail(st, st->seen_line[key_named("t1_ms") - keys], "t1_ms",
                    "must not exceed t2_ms (%u)", c->t2_ms);
    if (c->dia_tls_port && (!c->dia_tls_cert || !c->dia_tls_key))
        return fail(st, st->seen_line[key_named("tls_port") - keys], "tls_port",
                    "needs tls_cert and tls_key in [diameter]");
    if (c->hss_mode == 1 && c->nhss_slf == 0 && (c->roles & IMS_ROLE_HSS))
        return fail(st, st->seen_line[key_named("mode") - keys], "mode",
                    "slf mode needs at least one slf_route");
    int rc = validate_cscf(st);
    if (rc)
        return rc;
    char perr[160]; /* [privacy] trusted: checked by its one parser (src/cscf/privacy.c) */
    if (ims_privacy_trust_check(c->privacy_trusted, perr, sizeof(perr)) != 0)
        return fail(st, st->seen_line[key_named("trusted") - keys], "trusted", "%s", perr);
    if (c->sec_neutron_group && !c->ks_url) /* the group is read with Keystone's token */
        return fail(st, st->seen_line[key_named("neutron_group") - keys], "neutron_group",
                    "needs [keystone] url and its service account");
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (unsigned)(n > 64 ? 64 : n) : 1;
    }
    return 0;
}

int ims_cfg_load_string(const char *name, const char *text, struct ims_cfg **out, char *err,
                        size_t errsz)
{
    struct parse_state st;
    memset(&st, 0, sizeof(st));
    st.name = name;
    st.err = err;
    st.errsz = errsz;
    if (errsz)
        err[0] = '\0';
    st.cfg = ims_calloc(1, sizeof(*st.cfg));
    if (!st.cfg) {
        snprintf(err, errsz, "%s: out of memory", name);
        return IMS_ENOMEM;
    }
    int rc = IMS_ENOMEM;
    st.cfg->path = ims_strndup(name, strlen(name));
    if (!st.cfg->path)
        goto out_free;
    rc = apply_defaults(&st);
    if (rc == 0)
        rc = parse_text(&st, text, strlen(text));
    if (rc == 0)
        rc = validate(&st);
    if (rc == 0) {
        *out = st.cfg;
        return 0;
    }
out_free:
    if (rc == IMS_ENOMEM)
        snprintf(err, errsz, "%s: out of memory", name);
    ims_cfg_free(st.cfg);
    return rc;
}

int ims_cfg_load(const char *path, struct ims_cfg **out, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return IMS_EINVAL;
    }
    struct ims_buf b;
    ims_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = ims_buf_add(&b, chunk, n);
        if (rc)
            break;
    }
    bool read_err = ferror(f);
    fclose(f);
    if (rc || read_err) {
        snprintf(err, errsz, "%s: %s", path,
                 rc == IMS_ELIMIT ? "larger than 1 MiB" : "cannot read");
        ims_buf_free(&b);
        return rc ? rc : IMS_EINVAL;
    }
    rc = ims_cfg_load_string(path, b.p ? b.p : "", out, err, errsz);
    ims_buf_free(&b);
    return rc;
}

void ims_cfg_free(struct ims_cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_text(keys[i].type))
            ims_free(*(char **)((char *)cfg + keys[i].off));
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        ims_free(cfg->routes[i].domain);
        ims_free(cfg->routes[i].next_hop);
    }
    for (size_t i = 0; i < cfg->nhss_slf; i++) {
        ims_free(cfg->hss_slf[i].pattern);
        ims_free(cfg->hss_slf[i].hss);
    }
    for (size_t i = 0; i < cfg->ndia_peers; i++) {
        ims_free(cfg->dia_peers[i].id);
        ims_free(cfg->dia_peers[i].addr);
    }
    for (size_t i = 0; i < cfg->nicscf_scscf; i++)
        ims_free(cfg->icscf_scscf[i].uri);
    ims_free(cfg->path);
    ims_free(cfg);
}

static const char *const level_names[] = { "err", "warn", "notice", "info", "debug" };

void ims_cfg_dump(const struct ims_cfg *cfg, FILE *f)
{
    const char *section = "";
    const char *base = (const char *)cfg;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (strcmp(section, k->section) != 0) {
            fprintf(f, "%s[%s]\n", i ? "\n" : "", k->section);
            section = k->section;
        }
        switch (k->type) {
        case K_UINT:
            fprintf(f, "%s = %u\n", k->name, *(const unsigned *)(base + k->off));
            break;
        case K_BOOL:
            fprintf(f, "%s = %s\n", k->name, *(const bool *)(base + k->off) ? "yes" : "no");
            break;
        case K_STR:
        case K_NAME:
        case K_SCOPE:
        case K_URL:
        case K_FILE: {
            const char *s = *(char *const *)(base + k->off);
            if (s)
                fprintf(f, "%s = %s\n", k->name, k->secret ? "<redacted>" : s);
            else if (k->def) /* emptied by the file: without this line the default would return */
                fprintf(f, "%s =\n", k->name);
            break;
        }
        case K_LOGLEVEL:
            fprintf(f, "%s = %s\n", k->name, level_names[*(const int *)(base + k->off)]);
            break;
        case K_LISTEN:
            for (size_t j = 0; j < cfg->nlisten; j++) {
                char a[80];
                fprintf(f, "listen = %s:%s\n", ims_proto_name(cfg->listen[j].proto),
                        ims_addr_str(&cfg->listen[j].addr, a, sizeof(a)));
            }
            break;
        case K_ROUTE:
            for (size_t j = 0; j < cfg->nroutes; j++)
                fprintf(f, "route = %s %s\n", cfg->routes[j].domain, cfg->routes[j].next_hop);
            break;
        case K_ROLES: {
            static const char *const names[] = { "pcscf", "icscf", "scscf", "hss", "as" };
            unsigned r = *(const unsigned *)(base + k->off);
            const char *sep = "";
            fprintf(f, "%s = ", k->name);
            for (int j = 0; j < 5; j++)
                if (r & (1u << j)) {
                    fprintf(f, "%s%s", sep, names[j]);
                    sep = ",";
                }
            fputc('\n', f);
            break;
        }
        case K_HSSMODE:
            fprintf(f, "%s = %s\n", k->name, *(const int *)(base + k->off) ? "slf" : "hss");
            break;
        case K_SLF:
            for (size_t j = 0; j < cfg->nhss_slf; j++)
                fprintf(f, "slf_route = %s %s\n", cfg->hss_slf[j].pattern, cfg->hss_slf[j].hss);
            break;
        case K_DIAPEER:
            for (size_t j = 0; j < cfg->ndia_peers; j++)
            {
                bool v6 = strchr(cfg->dia_peers[j].addr, ':') != NULL;
                fprintf(f, "peer = %s %s%s%s:%u%s\n", cfg->dia_peers[j].id, v6 ? "[" : "",
                        cfg->dia_peers[j].addr, v6 ? "]" : "", cfg->dia_peers[j].port,
                        cfg->dia_peers[j].tls ? " tls" : "");
            }
            break;
        case K_PORTS: {
            const struct ims_cfg_ports *ps = (const struct ims_cfg_ports *)(base + k->off);
            if (!ps->n)
                break;
            fprintf(f, "%s = ", k->name);
            for (size_t j = 0; j < ps->n; j++)
                fprintf(f, "%s%u", j ? "," : "", (unsigned)ps->port[j]);
            fputc('\n', f);
            break;
        }
        case K_SCSCF:
            for (size_t j = 0; j < cfg->nicscf_scscf; j++) {
                fprintf(f, "scscf = %s", cfg->icscf_scscf[j].uri);
                for (size_t q = 0; q < cfg->icscf_scscf[j].ncaps; q++)
                    fprintf(f, "%s%u", q ? "," : " ", (unsigned)cfg->icscf_scscf[j].caps[q]);
                fputc('\n', f);
            }
            break;
        }
    }
}

void ims_cfg_doc(FILE *f)
{
    const char *section = "";
    fprintf(f, "# imscloud configuration reference\n\n"
               "Generated by `imscloud --config-doc` from the key table in src/cfg/cfg.c.\n"
               "Syntax: `[section]`, `key = value`; comments start a line with `#` or `;`, or\n"
               "follow whitespace inside a line (so a value cannot begin with either). `key =`\n"
               "with nothing after it empties a text or file key, its default included. Unknown\n"
               "keys and sections are errors, reported as `FILE:LINE: key: why` before any\n"
               "socket opens.\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (strcmp(section, k->section) != 0) {
            fprintf(f, "\n## [%s]\n\n| key | default | range | meaning |\n|---|---|---|---|\n",
                    k->section);
            section = k->section;
        }
        char range[48] = "";
        if (k->type == K_UINT)
            snprintf(range, sizeof(range), "%u..%u", k->min, k->max);
        else if (k->type == K_NAME)
            snprintf(range, sizeof(range), "letters, digits, `-._`");
        else if (k->type == K_SCOPE)
            snprintf(range, sizeof(range), "RFC 6749 scope-token");
        else if (k->type == K_URL)
            snprintf(range, sizeof(range), "`http://` or `https://` URL");
        fprintf(f, "| `%s` | %s | %s | %s |\n", k->name, k->def ? k->def : "", range, k->doc);
    }
}
