/* ctl_keys.c - imscloudctl keys: the key repository that encrypts K, OPc,
 * HA1s and passwords at rest (crypto/keyrepo.h, docs/internals/crypto.md).
 *
 * Rotation, online (docs/admin.md "Key rotation"):
 *   1. write key N+1, the new primary (ims_keyrepo_rotate);
 *   2. tell the running imscloud to reload its repository (admin socket
 *      keys.reload), so it can decrypt what step 3 writes - if it cannot,
 *      key N+1 is deleted again and nothing has changed;
 *   3. re-encrypt every secret under N+1 (ims_store_reencrypt, batches of
 *      100 IMPIs per transaction, idempotent);
 *   4. later: `keys remove OLD`, refused while any secret still uses it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/err.h"
#include "cmd/ctl.h"
#include "crypto/keyrepo.h"

/* keys.reload on the running server.  0 when reloaded or no server runs
 * (*running says which); CTL_FAIL (printed) when a server runs but could
 * not reload. */
static int reload(struct ctl *c, unsigned want_primary, bool *running)
{
    char msg[512];
    unsigned primary = 0;
    int rc = ctl_keys_reload(c, &primary, msg, sizeof(msg));
    *running = rc != IMS_ENOENT;
    if (rc == IMS_ENOENT) {
        ctl_say(c, "no imscloud is running (%s): nothing to reload", c->sock_path);
        return 0;
    }
    if (rc)
        return ctl_fail(c, CTL_FAIL, "the running imscloud could not reload its keys: %s (%s)",
                        msg, ims_strerror(rc));
    if (want_primary != (unsigned)-1 && primary != want_primary)
        return ctl_fail(c, CTL_FAIL, "the running imscloud reloaded, but its primary key is %u, "
                                     "not %u: is its [hss] keys_dir %s?",
                        primary, want_primary, c->keys_dir);
    ctl_say(c, "the running imscloud reloaded its keys (primary %u)", primary);
    return 0;
}

/* Offline rotation: no server holds the audit trail, so append to it here. */
static void audit_rotation(struct ctl *c, unsigned old, unsigned id)
{
    char kid[16], detail[96], who[32];
    snprintf(kid, sizeof(kid), "k%u", id);
    snprintf(detail, sizeof(detail), "keys rotate: new primary k%u (was k%u)", id, old);
    snprintf(who, sizeof(who), "uid:%ld", (long)geteuid());
    struct ims_audit_event ev = {
        .action = "create",
        .outcome = "success",
        .initiator_type = "service/security/account/user",
        .initiator_id = ims_str_cstr(who),
        .initiator_name = IMS_S("imscloudctl"),
        .initiator_addr = IMS_S("local"),
        .target_type = "data/security/keys",
        .target_id = ims_str_cstr(kid),
        .target_name = IMS_S("key repository"),
        .observer = "imscloudctl",
        .detail = ims_str_cstr(detail),
    };
    ctl_audit_offline(c, &ev);
}

static int key_init(struct ctl *c)
{
    char err[IMS_KEYREPO_ERRLEN];
    int rc = ctl_load_config(c);
    if (rc)
        return rc;
    mkdir(c->state_dir, 0700); /* as the server does; keyrepo reports what fails */
    if ((rc = ims_keyrepo_create(c->keys_dir, err, sizeof(err))) != 0)
        return ctl_fail(c, CTL_FAIL, "%s: %s", c->keys_dir, err);
    ctl_say(c, "created key repository %s with key 0 (back it up with the database)",
            c->keys_dir);
    return ctl_done(c, json_pack("{s:s, s:i}", "keys_dir", c->keys_dir, "primary", 0));
}

static int key_list(struct ctl *c)
{
    unsigned ids[IMS_KEYREPO_MAX_KEYS];
    int rc = ctl_open(c);
    if (rc)
        return rc;
    size_t n = ims_keyrepo_ids(c->repo, ids, IMS_KEYREPO_MAX_KEYS);
    unsigned primary = ims_keyrepo_primary(c->repo);
    json_t *arr = json_array();
    if (!c->json)
        fprintf(c->out, "%-8s %-8s %s\n", "KEY", "PRIMARY", "SECRETS");
    for (size_t i = 0; i < n && i < IMS_KEYREPO_MAX_KEYS; i++) {
        uint64_t used = 0;
        int src = ims_store_key_usage(c->st, ids[i], &used);
        if (src) {
            json_decref(arr);
            return ctl_store_fail(c, src, "usage");
        }
        if (!c->json)
            fprintf(c->out, "%-8u %-8s %llu\n", ids[i], ids[i] == primary ? "yes" : "",
                    (unsigned long long)used);
        json_array_append_new(arr, json_pack("{s:i, s:b, s:I}", "id", (int)ids[i], "primary",
                                             ids[i] == primary, "secrets", (json_int_t)used));
    }
    return ctl_done(c, json_pack("{s:s, s:i, s:o}", "keys_dir", c->keys_dir, "primary",
                                 (int)primary, "keys", arr));
}

static int reencrypt(struct ctl *c, unsigned primary, uint64_t *changed)
{
    int src = ims_store_reencrypt(c->st, changed);
    if (src)
        return ctl_fail(c, CTL_FAIL, "re-encryption under key %u stopped: %s (it is idempotent: "
                                     "run `imscloudctl keys reencrypt` again)",
                        primary, ims_store_errmsg(c->st));
    ctl_say(c, "re-encrypted %llu secret(s) under key %u", (unsigned long long)*changed, primary);
    return 0;
}

static int key_rotate(struct ctl *c, bool no_reencrypt)
{
    char err[IMS_KEYREPO_ERRLEN], path[1100];
    unsigned old, id = 0;
    bool running;
    uint64_t changed = 0;
    int rc = ctl_open(c);
    if (rc)
        return rc;
    old = ims_keyrepo_primary(c->repo);
    if ((rc = ims_keyrepo_rotate(c->repo, &id, err, sizeof(err))) != 0)
        return ctl_fail(c, CTL_FAIL, "%s: %s", c->keys_dir, err);
    ctl_say(c, "wrote key %u (the new primary; key %u stays for decryption)", id, old);
    if ((rc = reload(c, id, &running)) != 0) {
        /* nothing is encrypted under the new key yet: take it back, so
         * the running server and the store stay as they were */
        snprintf(path, sizeof(path), "%s/%u", c->keys_dir, id);
        if (unlink(path) != 0)
            ctl_warn(c, "could not remove %s again (%s): remove it by hand", path,
                     strerror(errno));
        else
            fprintf(c->err, "imscloudctl: keys rotate: key %u removed again; nothing changed\n",
                    id);
        return rc;
    }
    if (!running)
        audit_rotation(c, old, id); /* audit: a running server records its keys.reload */
    if (!no_reencrypt && (rc = reencrypt(c, id, &changed)) != 0)
        return rc;
    if (no_reencrypt)
        ctl_say(c, "secrets still under older keys: run `imscloudctl keys reencrypt`");
    else
        ctl_say(c, "key %u can be removed now: `imscloudctl keys remove %u`", old, old);
    return ctl_done(c, json_pack("{s:i, s:i, s:b, s:I, s:b}", "primary", (int)id, "previous",
                                 (int)old, "server_reloaded", running, "reencrypted",
                                 (json_int_t)changed, "reencrypt_done", !no_reencrypt));
}

static int key_reencrypt(struct ctl *c)
{
    bool running;
    uint64_t changed = 0;
    int rc = ctl_open(c);
    if (rc)
        return rc;
    unsigned primary = ims_keyrepo_primary(c->repo);
    /* the server must know the primary before anything is written with it */
    if ((rc = reload(c, primary, &running)) != 0 || (rc = reencrypt(c, primary, &changed)) != 0)
        return rc;
    return ctl_done(c, json_pack("{s:i, s:I}", "primary", (int)primary, "reencrypted",
                                 (json_int_t)changed));
}

static int key_remove(struct ctl *c, const char *idstr)
{
    char err[IMS_KEYREPO_ERRLEN], why[160];
    uint64_t id, used = 0;
    bool running;
    if (!ctl_uint(idstr, IMS_KEYREPO_MAX_ID, &id, why, sizeof(why)))
        return ctl_fail(c, CTL_USAGE, "ID '%s': %s", idstr, why);
    int rc = ctl_open(c);
    if (rc)
        return rc;
    if (!ims_keyrepo_has(c->repo, (unsigned)id))
        return ctl_fail(c, CTL_FAIL, "no key %llu in %s", (unsigned long long)id, c->keys_dir);
    if ((unsigned)id == ims_keyrepo_primary(c->repo))
        return ctl_fail(c, CTL_FAIL, "key %llu is the primary: rotate first",
                        (unsigned long long)id);
    int src = ims_store_key_usage(c->st, (unsigned)id, &used);
    if (src)
        return ctl_store_fail(c, src, "usage");
    if (used)
        return ctl_fail(c, CTL_FAIL, "key %llu still encrypts %llu secret(s): run `imscloudctl "
                                     "keys reencrypt` first",
                        (unsigned long long)id, (unsigned long long)used);
    char trail[1024];
    if (ctl_audit_uses_key(c, (unsigned)id, trail, sizeof(trail))) /* audit */
        ctl_warn(c, "key %llu sealed lines of the audit trail %s: `audit verify` needs it; "
                    "archive a copy of the key file with the trail (docs/audit.md)",
                 (unsigned long long)id, trail);
    if ((rc = ims_keyrepo_remove(c->repo, (unsigned)id, err, sizeof(err))) != 0)
        return ctl_fail(c, CTL_FAIL, "%s", err);
    ctl_say(c, "removed key %llu", (unsigned long long)id);
    /* the server's copy is harmless (nothing uses it); drop it anyway */
    char msg[512];
    unsigned primary;
    rc = ctl_keys_reload(c, &primary, msg, sizeof(msg));
    running = rc != IMS_ENOENT;
    if (rc && running)
        ctl_warn(c, "the running imscloud did not reload (%s): it keeps key %llu in memory "
                    "until it does",
                 msg, (unsigned long long)id);
    return ctl_done(c, json_pack("{s:I}", "removed", (json_int_t)id));
}

int ctl_cmd_keys(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    int rc;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl keys init|list|rotate|reencrypt|"
                                      "reload|remove ID");
    const char *op = argv[0];
    ctl_set_cmd(c, "keys", op);
    argc--;
    argv++;
    if (strcmp(op, "remove") == 0) {
        if ((rc = ctl_parse(c, argc, argv, NULL, 1, 1, "ID", &a)) != 0)
            return rc;
        return key_remove(c, a.pos[0]);
    }
    if (strcmp(op, "rotate") == 0) {
        static const char *const spec[] = { "no-reencrypt", NULL };
        if ((rc = ctl_parse(c, argc, argv, spec, 0, 0, "[--no-reencrypt]", &a)) != 0)
            return rc;
        return key_rotate(c, ctl_flag(&a, "no-reencrypt"));
    }
    if ((rc = ctl_parse(c, argc, argv, NULL, 0, 0, "", &a)) != 0)
        return rc;
    if (strcmp(op, "init") == 0)
        return key_init(c);
    if (strcmp(op, "list") == 0)
        return key_list(c);
    if (strcmp(op, "reencrypt") == 0)
        return key_reencrypt(c);
    if (strcmp(op, "reload") == 0) { /* several nodes: after copying a key file */
        bool running;
        if ((rc = ctl_load_config(c)) != 0 || (rc = reload(c, (unsigned)-1, &running)) != 0)
            return rc;
        if (!running)
            return ctl_fail(c, CTL_FAIL, "no imscloud is running (%s)", c->sock_path);
        return ctl_done(c, json_pack("{s:b}", "reloaded", 1));
    }
    return ctl_fail(c, CTL_USAGE, "unknown subcommand (init, list, rotate, reencrypt, reload, "
                                  "remove)");
}
