/* ctl_audit.c - imscloudctl audit: check and read the CADF audit trail
 * (src/audit/audit.h, docs/audit.md).
 *
 *   audit verify [FILE]   recompute the chain and every HMAC; exit 0 with a
 *                         summary, 1 naming the first bad line and why
 *   audit tail [-n N] [FILE]
 *
 * FILE defaults to [audit] file of the configuration (-c); the HMAC keys
 * derive from [audit] keys_dir (by default the HSS's key repository). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cfg/cfg.h"
#include "cmd/ctl.h"
#include "crypto/keyrepo.h"

#define TAIL_MAX 10000

struct paths {
    struct ims_audit_cfg ac;
    char file[1024], keys[1024];
};

static int paths(struct ctl *c, const char *file, struct paths *p)
{
    char err[256];
    int rc = ctl_load_config(c);
    if (rc)
        return rc;
    if (ims_audit_cfg_from(c->cfg, &p->ac, p->file, sizeof(p->file), p->keys, sizeof(p->keys),
                           err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_USAGE, "%s", err);
    if (file)
        snprintf(p->file, sizeof(p->file), "%s", file);
    return CTL_OK;
}

static int verify(struct ctl *c, const char *file)
{
    struct paths p;
    struct ims_keyrepo *repo = NULL;
    char kerr[IMS_KEYREPO_ERRLEN];
    struct ims_audit_verify_res res;
    int rc = paths(c, file, &p);
    if (rc)
        return rc;
    if (ims_keyrepo_open(p.keys, &repo, kerr, sizeof(kerr)) != 0)
        return ctl_fail(c, CTL_FAIL, "key repository %s: %s", p.keys, kerr);
    rc = ims_audit_verify_file(p.file, repo, &res);
    ims_keyrepo_free(repo);
    if (rc == IMS_EPROTO)
        return ctl_fail(c, CTL_FAIL, "%s: %s", p.file, res.why);
    if (rc)
        return ctl_fail(c, CTL_FAIL, "%s", res.why);
    char keys[400] = "", one[16];
    json_t *ka = json_array();
    for (size_t i = 0; i < res.nkeys; i++) {
        snprintf(one, sizeof(one), "k%u", res.keys[i]);
        snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", i ? "," : "", one);
        json_array_append_new(ka, json_string(one));
    }
    /* a line cut by a crash is not an event (its chain-restart event is) */
    ctl_say(c, "%zu events, chain intact, keys %s", res.lines - res.restarts,
            keys[0] ? keys : "-");
    if (res.restarts)
        ctl_say(c, "%zu line(s) cut by a crash, each recorded by a chain-restart event "
                   "(docs/audit.md)",
                res.restarts);
    if (res.first_time[0])
        ctl_say(c, "from %s to %s", res.first_time, res.last_time);
    return ctl_done(c, json_pack("{s:s, s:I, s:I, s:o, s:b}", "file", p.file, "events",
                                 (json_int_t)(res.lines - res.restarts), "restarts",
                                 (json_int_t)res.restarts, "keys", ka, "intact", 1));
}

/* The last n lines of the file, as they are (no verification). */
static int tail(struct ctl *c, const char *file, uint64_t n)
{
    struct paths p;
    int rc = paths(c, file, &p);
    if (rc)
        return rc;
    FILE *f = fopen(p.file, "r");
    if (!f)
        return ctl_fail(c, CTL_FAIL, "%s: %s", p.file, strerror(errno));
    char **ring = ims_calloc(n ? n : 1, sizeof(*ring));
    char *line = ims_alloc(IMS_AUDIT_LINE_MAX + 2);
    size_t count = 0;
    rc = ring && line ? CTL_OK : ctl_fail(c, CTL_FAIL, "out of memory");
    while (rc == CTL_OK && n && fgets(line, IMS_AUDIT_LINE_MAX + 2, f)) {
        size_t slot = count++ % n;
        ims_free(ring[slot]);
        ring[slot] = ims_strndup(line, strlen(line));
    }
    fclose(f);
    size_t first = count > n ? count - n : 0;
    for (size_t i = first; rc == CTL_OK && i < count; i++) {
        const char *s = ring[i % n];
        if (s)
            fputs(s, c->out);
    }
    for (size_t i = 0; ring && i < n; i++)
        ims_free(ring[i]);
    ims_free(ring);
    ims_free(line);
    return rc;
}

int ctl_audit_offline(struct ctl *c, const struct ims_audit_event *ev)
{
    struct paths p;
    struct ims_audit *a = NULL;
    char err[512];
    if (ctl_load_config(c) != CTL_OK || !c->cfg->audit_enabled)
        return 0;
    if (paths(c, NULL, &p) != CTL_OK)
        return IMS_EINVAL;
    int rc = ims_audit_open(&p.ac, &a, err, sizeof(err));
    if (rc == 0)
        rc = ims_audit_submit(a, ev);
    ims_audit_close(a);
    if (rc)
        ctl_warn(c, "audit trail %s: not recorded (%s)", p.file,
                 rc == IMS_EAGAIN ? "a running imscloud holds it" : err);
    return rc;
}

bool ctl_audit_uses_key(struct ctl *c, unsigned id, char *file, size_t filesz)
{
    struct paths p;
    char want[32], *line = NULL;
    bool used = false;
    if (paths(c, NULL, &p) != CTL_OK)
        return false;
    snprintf(file, filesz, "%s", p.file);
    snprintf(want, sizeof(want), "\"key_id\":\"k%u\"", id);
    FILE *f = fopen(p.file, "r");
    line = ims_alloc(IMS_AUDIT_LINE_MAX + 2);
    while (f && line && !used && fgets(line, IMS_AUDIT_LINE_MAX + 2, f))
        used = strstr(line, want) != NULL;
    if (f)
        fclose(f);
    ims_free(line);
    return used;
}

int ctl_cmd_audit(struct ctl *c, int argc, char **argv)
{
    struct ctl_args a;
    int rc;
    if (argc < 1)
        return ctl_fail(c, CTL_USAGE, "usage: imscloudctl audit verify [FILE] | audit tail "
                                      "[-n N] [FILE]");
    const char *op = argv[0];
    ctl_set_cmd(c, "audit", op);
    if (strcmp(op, "verify") == 0) {
        if ((rc = ctl_parse(c, argc - 1, argv + 1, NULL, 0, 1, "[FILE]", &a)) != 0)
            return rc;
        return verify(c, a.npos ? a.pos[0] : NULL);
    }
    if (strcmp(op, "tail") == 0) {
        static const char *const spec[] = { "n=", NULL };
        char why[128];
        uint64_t n = 10;
        static char dashdash_n[] = "--n"; /* ctl_parse knows long options only */
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], "-n") == 0)
                argv[i] = dashdash_n;
        if ((rc = ctl_parse(c, argc - 1, argv + 1, spec, 0, 1, "[-n N] [FILE]", &a)) != 0)
            return rc;
        const char *ns = ctl_opt(&a, "n");
        if (ns && !ctl_uint(ns, TAIL_MAX, &n, why, sizeof(why)))
            return ctl_fail(c, CTL_USAGE, "-n: %s", why);
        return tail(c, a.npos ? a.pos[0] : NULL, n);
    }
    return ctl_fail(c, CTL_USAGE, "unknown subcommand (verify, tail)");
}
