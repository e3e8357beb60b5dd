/* audit.h - the tamper-evident audit trail: DMTF CADF events (DSP0262) as
 * JSON lines, each chained to the previous line and sealed with an HMAC
 * (docs/audit.md).
 *
 * A line is the event as compact JSON with sorted keys, carrying
 * "key_id" ("k<N>": the key repository key its HMAC key derives from) and
 * "prev_hash" (hex SHA-256 of the exact bytes of the previous line, without
 * its '\n'; 64 zeros for the first line of a file), followed by the HMAC:
 *
 *     {"action":...,"prev_hash":"...",...,"typeURI":"..."}          <- body
 *     {"action":...,"prev_hash":"...",...,"typeURI":"...","hmac":"<hex>"}
 *
 * hmac = HMAC-SHA-256(K, body), K = HKDF-SHA-256(repository key N,
 * info "imscloud-audit-v1") (ims_keyrepo_derive).  The body is the line
 * with its last member (,"hmac":"...") cut out, so a verifier recomputes
 * from the bytes and never re-serialises JSON.
 *
 * Emitting renders the event's JSON text at once (audit.c writes it
 * directly, byte for byte what jansson's sorted compact dump gives) and
 * queues it: one allocation, no JSON objects.
 *
 * Writer: one thread per open trail takes events from a bounded queue,
 * seals them in order, appends them (the lines of a batch in one write(2),
 * fdatasync after each batch) and, with syslog on, copies them to
 * LOG_AUTHPRIV.  An emitter wakes the writer only when it sleeps idle;
 * after a short batch the writer lingers a few milliseconds so that under
 * load it wakes and syncs a few hundred times a second, not per event.
 * Emitting never blocks on the disk: when the queue is full the event is
 * dropped and counted (logged once); the chain is over written lines, so a
 * drop breaks nothing.  The file is locked (flock) while open: one writer.
 *
 * Restart: open reads the file's last line and continues the chain from
 * it.  A last line without its '\n' (a crash mid-write) is terminated and
 * followed by a "chain-restart" control event that names it (attachments:
 * its line number and hash, and the hash of the line before it), which the
 * verifier accepts as a recorded gap.
 *
 * Lifetime and threads:
 * 1. ims_audit_open() returns a trail owned by the caller; ims_audit_close()
 *    writes what is queued, stops the thread and frees it.
 * 2. ims_audit_submit() and ims_audit_emit() may run on any thread.
 * 3. The process-wide default (ims_audit_set_default) is what the emitters
 *    in the roles use; clear it before closing that trail. */
#ifndef IMS_AUDIT_AUDIT_H
#define IMS_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/str.h"

struct ims_keyrepo;
struct ims_audit;

#define IMS_AUDIT_LABEL "imscloud-audit-v1"
#define IMS_AUDIT_TYPEURI "http://schemas.dmtf.org/cloud/audit/1.0/event"
#define IMS_AUDIT_LINE_MAX 16384 /* a longer line is not ours */
#define IMS_AUDIT_FIELD_MAX 256  /* event strings are cut to this */
#define IMS_AUDIT_HEX 65         /* a SHA-256 in hex, with its NUL */
#define IMS_AUDIT_KEY_PRIMARY (-1)

/* ------------------------------------------------------------ events */

/* One event, as the emitters describe it.  Every pointer is borrowed for
 * the duration of the call; NULL / empty members are left out. */
struct ims_audit_event {
    const char *event_type;     /* "activity" (NULL), "control", "monitor" */
    const char *action;         /* CADF action: "authenticate", "create", "update", ... */
    const char *outcome;        /* "success", "failure", "pending", "unknown" (NULL) */
    const char *initiator_type; /* CADF resource type: "service/security/account/user" */
    ims_str initiator_id, initiator_name, initiator_addr;
    const char *target_type;
    ims_str target_id, target_name;
    const char *observer;       /* our role: "scscf", "admin", "hss", "imscloudctl" */
    const char *reason_type;    /* "SIP", "Diameter", "imscloud" */
    ims_str reason_code;
    ims_str detail;             /* attachment "detail": free text */
};

/* Builds the CADF object of ev with a fresh id (UUID v4) and eventTime
 * (now, UTC, microseconds), as the trail writes it (parsed back from the
 * rendered text: for tests and tools).  *out is a new reference.
 * 0, IMS_EINVAL (no action), IMS_ENOMEM, IMS_EBACKEND (RNG). */
int ims_audit_build(const struct ims_audit_event *ev, json_t **out);

/* The HMAC key of repository key id.  0 or as ims_keyrepo_derive(). */
int ims_audit_derive_key(const struct ims_keyrepo *r, unsigned id, uint8_t key[32]);

/* Lowercase hex SHA-256 of p[0..n). */
void ims_audit_sha256_hex(const void *p, size_t n, char out[IMS_AUDIT_HEX]);

/* ------------------------------------------------------------ writer */

struct ims_audit_cfg {
    const char *file;     /* the JSON-lines file (created 0600) */
    const char *keys_dir; /* the key repository */
    bool create_keys;     /* create keys_dir when it has no key */
    bool syslog;          /* copy each line to syslog(LOG_AUTHPRIV | LOG_NOTICE) */
    int key_id;           /* repository key, or IMS_AUDIT_KEY_PRIMARY */
    unsigned queue_max;   /* events waiting for the writer; 0 = 4096 */
    unsigned sync_ms;     /* the writer fdatasyncs at most this often under load;
                           * 0 = IMS_AUDIT_SYNC_MS_DEFAULT */
};
#define IMS_AUDIT_SYNC_MS_DEFAULT 50

/* Opens (or creates) the trail and starts its writer.  Writes a
 * chain-restart event first when the last line was cut short.
 * 0; IMS_EAGAIN (another process holds the file); IMS_ENOENT (no key
 * repository and !create_keys, or no key key_id); IMS_EIO; IMS_EINVAL;
 * IMS_ENOMEM; err says why. */
int ims_audit_open(const struct ims_audit_cfg *cfg, struct ims_audit **out, char *err,
                   size_t errsz);
/* Writes what is queued, stops the writer, frees.  Returns the number of
 * events dropped over the trail's life (queue full, or an event the writer
 * could not seal or write: logged).  NULL is a no-op. */
size_t ims_audit_close(struct ims_audit *a);

/* Queues ev (built now, sealed by the writer).  0, IMS_ELIMIT (queue full:
 * dropped and counted), IMS_ENOMEM, IMS_EINVAL. */
int ims_audit_submit(struct ims_audit *a, const struct ims_audit_event *ev);
/* Re-reads the key repository; with key_id PRIMARY the next lines use
 * the new primary (after a rotation).  Thread-safe.  0 or as open. */
int ims_audit_rekey(struct ims_audit *a);
/* Blocks until every event queued so far is written and synced (tests,
 * tools); ends the writer's wait between syncs. */
void ims_audit_flush(struct ims_audit *a);
/* fdatasyncs of the trail so far: under load at most one per sync_ms. */
uint64_t ims_audit_syncs(struct ims_audit *a);

/* The process-wide trail the roles' emitters use (NULL: none). */
void ims_audit_set_default(struct ims_audit *a);
/* ims_audit_submit() on the default trail; does nothing without one. */
void ims_audit_emit(const struct ims_audit_event *ev);
/* ims_audit_rekey() on the default trail, if any. */
void ims_audit_rekey_default(void);

/* ------------------------------------------------ configuration glue */

struct ims_cfg;

/* Paths and key choice of [audit] (defaults resolved as docs/config.md
 * says) into out; file and keys_dir are written to the caller's buffers,
 * which out points to.  0 or IMS_EINVAL (bad key_id: err says). */
int ims_audit_cfg_from(const struct ims_cfg *cfg, struct ims_audit_cfg *out, char *file,
                       size_t filesz, char *keys, size_t keyssz, char *err, size_t errsz);
/* The server's trail: opens it per [audit] and makes it the default.
 * *out is NULL (and 0 returned) when disabled, when another process holds
 * the file (a warning: that process writes the trail), or when it cannot
 * be opened (an error is logged: the service runs without a trail rather
 * than not at all).  IMS_EINVAL only for a bad [audit] key_id. */
int ims_audit_server_start(const struct ims_cfg *cfg, struct ims_audit **out, char *err,
                           size_t errsz);
/* Clears the default and closes.  NULL is a no-op. */
void ims_audit_server_stop(struct ims_audit *a);

/* ------------------------------------------------------------ verify */

struct ims_audit_verify_res {
    size_t lines;         /* lines read */
    size_t restarts;      /* recorded chain restarts (crash mid-write) */
    size_t bad_line;      /* first bad line (1-based), 0 when intact */
    char why[256];        /* "hmac mismatch (edited)", ... */
    unsigned keys[64];    /* key ids seen, ascending */
    size_t nkeys;
    char first_time[40], last_time[40];
};

/* Recomputes the chain and every HMAC of the file at path.
 * 0 (intact), IMS_EPROTO (res->bad_line and res->why say where and why),
 * IMS_ENOENT / IMS_EIO (cannot read: res->why says). */
int ims_audit_verify_file(const char *path, const struct ims_keyrepo *r,
                          struct ims_audit_verify_res *res);

#endif
