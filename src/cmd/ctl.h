/* ctl.h - imscloudctl's HSS administration commands (docs/admin.md).
 *
 * imscloudctl.c keeps main(), ping and check-config; every other command
 * is run by ctl_run() (ctl_main.c), which the unit tests call in process.
 *
 * Files, by job:
 *   ctl_main.c     the context (config, key repository, store), argument
 *                  parsing, output (human or --json), value parsers, dispatch
 *   ctl_sub.c      user add, sub, impi, impu
 *   ctl_profile.c  profile (put, show, list, delete, ifc-add), scscf
 *   ctl_json.c     the provisioning document: JSON <-> struct ctl_doc,
 *                  whole-document validation, export, atomic import
 *   ctl_keys.c     keys init, list, rotate, reencrypt, remove
 *   ctl_notify.c   the admin socket: RTR/PPR after a change, keys.reload,
 *                  status
 *
 * Rules every command follows:
 * 1. Exit codes: CTL_OK 0, CTL_FAIL 1 (the command failed: the reason is
 *    printed), CTL_USAGE 2 (bad arguments or input: the message names the
 *    option or JSON path and why, whatever the store holds).  A valid
 *    request that conflicts with the store (the user exists, a profile it
 *    names does not) is CTL_FAIL.
 * 2. A failed command changes nothing: input is validated before the
 *    first write, and a change that takes several records is applied in
 *    one store transaction (ims_store_import() of generated text).
 * 3. Secrets are never printed; options carrying them are wiped after use.
 * 4. After a change the network must hear about (bar, delete: RTR;
 *    profile change: PPR), the running server is told over the admin
 *    socket.  If none runs, the change stands, a warning says that no
 *    RTR/PPR was sent, and the exit code stays 0. */
#ifndef IMS_CMD_CTL_H
#define IMS_CMD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/str.h"
#include "store/store.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };
/* ctl_parse() after printing a command's --help: the command exits 0. */
#define CTL_HELP 100

#define CTL_DEFAULT_CONFIG "etc/imscloud.conf"
#define CTL_MAX_POS 4     /* positional arguments per command */
#define CTL_MAX_MULTI 64  /* values of a repeatable option */
#define CTL_MAX_OPTS 24   /* options per command */
#define CTL_MAX_WARN 32

struct ims_cfg;
struct ims_keyrepo;

struct ctl {
    const char *cfg_path;
    struct ims_cfg *cfg;
    char store_url[1024];
    char keys_dir[1024];
    char state_dir[1024];
    char sock_path[1024];
    bool json;              /* --json: machine-readable output on stdout */
    bool create_keys;       /* ctl_open may create a missing key repository */
    struct ims_keyrepo *repo;
    struct ims_store *st;
    FILE *out, *err;
    const char *cmd;        /* "user add", for messages (points to cmdbuf) */
    char cmdbuf[64];
    char *warn[CTL_MAX_WARN];
    size_t nwarn;
};

/* Runs one admin command: argv[0] is the command ("user", "sub", ...).
 * Output goes to out (results) and err (errors, warnings).  Returns the
 * exit code. */
int ctl_run(int argc, char **argv, FILE *out, FILE *err);
/* The usage text of the admin commands. */
void ctl_usage(FILE *f);

/* ------------------------------------------------------------ arguments */

/* An option spec: "name" (a flag), "name=" (takes a value), "name=*"
 * (takes a value, repeatable).  -c/--config and --json are always known. */
struct ctl_args {
    const char *pos[CTL_MAX_POS];
    int npos;
    struct {
        const char *name;
        bool value, multi;
        int n;
        const char *v[CTL_MAX_MULTI];
    } o[CTL_MAX_OPTS];
    int nopts;
};

/* Parses argv (after the command words) against spec (NULL-terminated);
 * positionals must number min..max.  On error prints "imscloudctl: CMD:
 * --opt: why" and the usage line, and returns CTL_USAGE; after printing
 * --help, CTL_HELP.  0 when parsed. */
int ctl_parse(struct ctl *c, int argc, char **argv, const char *const *spec, int min_pos,
              int max_pos, const char *usage, struct ctl_args *a);
const char *ctl_opt(const struct ctl_args *a, const char *name);        /* last value or NULL */
int ctl_optv(const struct ctl_args *a, const char *name, const char *const **v); /* count */
bool ctl_flag(const struct ctl_args *a, const char *name);

/* -------------------------------------------------------------- output */

/* Error (to err; with --json also {"ok":false,...} to out); returns code. */
int ctl_fail(struct ctl *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A warning: printed to err now, listed in the --json result. */
void ctl_warn(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A human-readable line (not printed with --json). */
void ctl_say(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* With --json: prints {"ok":true, <obj's members>, "warnings":[...]}.
 * Consumes obj (NULL = empty).  Returns CTL_OK. */
int ctl_done(struct ctl *c, json_t *obj);
/* A store failure: "what: <ims_store_errmsg>" (CTL_USAGE for IMS_EINVAL
 * on bad values the store refused, CTL_FAIL otherwise). */
int ctl_store_fail(struct ctl *c, int rc, const char *what);

/* ------------------------------------------------------------- context */

/* Loads the configuration (once) and derives the paths.  CTL_OK or a code. */
int ctl_load_config(struct ctl *c);
/* Also opens the key repository and the store.  With c->create_keys (the
 * commands that store secrets), a missing repository is created, as the
 * server does on its first start, unless the store already holds secrets
 * (then keys_dir is wrong, and a new key would not read them). */
int ctl_open(struct ctl *c);
void ctl_close(struct ctl *c);

/* --------------------------------------------------------- value parsing */

/* Each returns true when valid; else fills why (for "--opt: why"). */
bool ctl_valid_id(const char *s, char *why, size_t whysz);   /* identities */
bool ctl_valid_name(const char *s, char *why, size_t whysz); /* sub/profile names */
bool ctl_valid_impu(const char *s, char *why, size_t whysz); /* sip:, sips:, tel: */
bool ctl_valid_roles(const char *s, char *why, size_t whysz); /* role,role ('' ok) */
bool ctl_hex(const char *s, uint8_t *out, size_t n, char *why, size_t whysz);
/* "md5,sha256,sha512-256,akav1,akav2", "digest" (the three), "aka" (both
 * AKA versions), "all"; several lists are ORed. */
bool ctl_schemes(const char *const *lists, int n, unsigned *out, char *why, size_t whysz);
/* The names of a scheme set, comma separated, into buf. */
const char *ctl_schemes_str(unsigned schemes, char *buf, size_t cap);
/* "1,5,7" -> caps (at most IMS_STORE_MAX_CAPS). */
bool ctl_caps(const char *s, uint32_t *caps, size_t *n, char *why, size_t whysz);
bool ctl_uint(const char *s, uint64_t max, uint64_t *out, char *why, size_t whysz);
/* Reads a whole file (or stdin for "-"), at most max bytes, into b. */
int ctl_read_file(struct ctl *c, const char *path, size_t max, struct ims_buf *b);
/* A password from --password or --password-file (first line; "-" is
 * stdin) into buf; 0 = none given, 1 = got one, <0 = CTL_* error printed. */
int ctl_password(struct ctl *c, const struct ctl_args *a, char *buf, size_t cap);

/* ----------------------------------------------------------- commands */

int ctl_cmd_user(struct ctl *c, int argc, char **argv);
int ctl_cmd_sub(struct ctl *c, int argc, char **argv);
int ctl_cmd_impi(struct ctl *c, int argc, char **argv);
int ctl_cmd_impu(struct ctl *c, int argc, char **argv);
int ctl_cmd_profile(struct ctl *c, int argc, char **argv);
int ctl_cmd_scscf(struct ctl *c, int argc, char **argv);
int ctl_cmd_export(struct ctl *c, int argc, char **argv);
int ctl_cmd_import(struct ctl *c, int argc, char **argv);
int ctl_cmd_keys(struct ctl *c, int argc, char **argv);
int ctl_cmd_status(struct ctl *c, int argc, char **argv);
int ctl_cmd_audit(struct ctl *c, int argc, char **argv); /* ctl_audit.c */
struct ims_audit_event;
/* Appends ev to the audit trail when no server holds it (offline admin
 * changes); a warning when it cannot.  0 or an IMS_E* (warned). */
int ctl_audit_offline(struct ctl *c, const struct ims_audit_event *ev);
/* Whether the audit trail has lines sealed with key id (they could not be
 * verified without it); file gets the trail's path. */
bool ctl_audit_uses_key(struct ctl *c, unsigned id, char *file, size_t filesz);

/* ----------------------------------------------------- admin socket */

/* What a change needs the serving S-CSCF told. */
enum ctl_notify_kind { CTL_NOTIFY_RTR, CTL_NOTIFY_PPR };
/* Sends hss.deregister (RTR, with reason and info) or hss.push-profile
 * (PPR) for impu to the running server and reports the outcome as a line
 * or a warning.  Never fails the command (rule 4).  Returns true when the
 * S-CSCF answered. */
bool ctl_notify(struct ctl *c, enum ctl_notify_kind kind, const char *impu, int reason,
                const char *info);
/* keys.reload: 0 (reloaded: *primary), IMS_ENOENT (no server running),
 * or another IMS_E* (the server could not reload: msg says why). */
int ctl_keys_reload(struct ctl *c, unsigned *primary, char *msg, size_t msgsz);

/* One notification per implicit registration set that is assigned to an
 * S-CSCF: collects IMPUs (call ctl_nset_add for candidates), dedupes by
 * (subscription, irs), then ctl_nset_send. */
struct ctl_nset {
    struct {
        char sub[IMS_STORE_NAME_MAX];
        unsigned irs;
        char impu[IMS_STORE_ID_MAX];
    } e[256];
    size_t n;
    bool truncated;
};
void ctl_nset_add(struct ctl_nset *s, const struct ims_impu_rec *r);
void ctl_nset_send(struct ctl *c, const struct ctl_nset *s, enum ctl_notify_kind kind, int reason,
                   const char *info);

/* ------------------------------------------------ provisioning document */

/* The document imscloudctl imports (JSON, docs/admin.md) and builds for
 * `user add`, `impi add`, `impu add`: every record is new. */
struct ctl_doc_impi {
    char identity[IMS_STORE_ID_MAX];
    char realm[IMS_STORE_ID_MAX];
    unsigned schemes;
    bool has_password, keep_password;
    char password[IMS_STORE_PASSWORD_MAX + 1];
    bool has_aka;
    uint8_t k[16], opc[16], amf[2];
    uint64_t sqn;
    char (*links)[IMS_STORE_ID_MAX]; /* IMPUs this IMPI may use */
    size_t nlinks;
    bool links_all;                  /* JSON "impus" absent: every IMPU of the subscriber */
};

struct ctl_doc_impu {
    char identity[IMS_STORE_ID_MAX];
    unsigned irs;                     /* >= 1 */
    char profile[IMS_STORE_NAME_MAX]; /* "" = none */
    bool barred;
    int type;                         /* enum ims_identity_type */
};

struct ctl_doc_sub {
    struct ims_sub_rec rec;
    bool existing; /* already in the store: only its impis/impus are new */
    struct ctl_doc_impi *impis;
    size_t nimpis;
    struct ctl_doc_impu *impus;
    size_t nimpus;
};

struct ctl_doc_profile {
    char name[IMS_STORE_NAME_MAX];
    char *xml; /* owned, NUL-terminated */
};

struct ctl_doc_scscf {
    char name[IMS_STORE_ID_MAX];
    uint32_t caps[IMS_STORE_MAX_CAPS];
    size_t ncaps;
};

struct ctl_doc {
    /* extra IMPI -> IMPU links (records that exist already, or new ones) */
    char (*xlinks)[2][IMS_STORE_ID_MAX];
    size_t nxlinks;
    struct ctl_doc_profile *profiles;
    size_t nprofiles;
    struct ctl_doc_scscf *scscfs;
    size_t nscscfs;
    struct ctl_doc_sub *subs;
    size_t nsubs;
};

#define CTL_DOC_MAX_RECORDS 1000000 /* a cap on one document */
#define CTL_DOC_MAX_BYTES (256u << 20)

void ctl_doc_free(struct ctl_doc *d); /* wipes the secrets */
/* Sets the command name for messages ("user add"). */
void ctl_set_cmd(struct ctl *c, const char *a, const char *b);
/* Prints obj as "key: value" lines (human output of show commands). */
void ctl_print_obj(struct ctl *c, const json_t *obj, int indent);

/* JSON views of records (export, show; never secrets). */
json_t *ctl_json_sub(const struct ims_sub_rec *r);
json_t *ctl_json_impi(struct ims_store *st, const struct ims_impi_rec *r); /* with its links */
json_t *ctl_json_impu(const struct ims_impu_rec *r);
const char *ctl_type_name(int type);

/* Error list of a validation: each "path: why". */
struct ctl_errs {
    char msg[20][320];
    size_t n, total;
};
void ctl_errs_add(struct ctl_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* JSON text -> document, validating every field; errors are collected
 * (all of them, up to 20 kept) with their JSON path.  0 or CTL_USAGE. */
int ctl_doc_from_json(ims_str text, struct ctl_doc *d, struct ctl_errs *e);
/* Checks the document against the store: records that already exist,
 * profiles and IMPI links that refer to nothing.  0, CTL_USAGE (errors
 * in e), or CTL_FAIL (store error, in e). */
int ctl_doc_check(struct ims_store *st, const struct ctl_doc *d, struct ctl_errs *e);
/* Applies the document in one transaction: builds ims_store_import()
 * text (secrets sealed with the store's key repository, HA1s computed)
 * and imports it; all or nothing.  *records (may be NULL) gets the
 * records written.  0 or an IMS_E* code (ims_store_errmsg() says why). */
int ctl_doc_apply(struct ims_store *st, const struct ctl_doc *d, size_t *records);
/* The whole store as a provisioning document in JSON, without secrets
 * (only which are set).  0 or an IMS_E* code. */
int ctl_export_json(struct ims_store *st, json_t **out);

#endif
