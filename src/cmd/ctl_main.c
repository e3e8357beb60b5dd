/* ctl_main.c - imscloudctl's admin commands: context, arguments, output,
 * value parsers and dispatch (see ctl.h). */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"
#include "cmd/ctl.h"
#include "crypto/encode.h"
#include "crypto/keyrepo.h"

/* ---------------------------------------------------------------- usage */

void ctl_usage(FILE *f)
{
    fprintf(f,
            "usage: imscloudctl [-c FILE] [--json] [-v] COMMAND ...   (docs/admin.md)\n"
            "  user add IMPI (--password P | --password-file FILE|- |\n"
            "                 --k HEX (--op HEX | --opc HEX) [--amf HEX])\n"
            "           [--impu URI]... [--realm R] [--scheme LIST]... [--sub NAME]\n"
            "           [--profile NAME | --no-profile] [--keep-password]\n"
            "  sub add|modify NAME [--ccf URI]... [--ecf URI]... [--keystone-user ID]\n"
            "           [--keystone-project ID] [--cap-mandatory N,..] [--cap-optional N,..]\n"
            "           [--roles ROLE,..]   (policy roles of its Digest/AKA users; '' clears)\n"
            "  sub show|delete NAME | sub list\n"
            "  impi add IMPI --sub NAME [--realm R] [--scheme LIST]... [--impu URI]...\n"
            "           [--password P | --k HEX (--op|--opc) HEX [--amf HEX]]\n"
            "  impi set-password IMPI (--password P | --password-file FILE|-) [--keep-password]\n"
            "  impi set-aka IMPI --k HEX (--op HEX | --opc HEX) [--amf HEX]\n"
            "  impi set-schemes IMPI LIST | impi link|unlink IMPI IMPU\n"
            "  impi show|delete IMPI | impi list [--sub NAME]\n"
            "  impu add URI --sub NAME [--impi IMPI]... [--irs N] [--profile NAME] [--barred]\n"
            "           [--type public|distinct-psi|wildcard-psi|wildcard-impu]\n"
            "  impu bar|unbar|show|delete URI | impu set-profile URI (NAME | --none)\n"
            "  impu list [--sub NAME]\n"
            "  profile put NAME FILE|- | profile show|delete NAME | profile list\n"
            "  profile ifc-add NAME --priority N --as URI [--method M]... [--session-case C]...\n"
            "           [--request-uri REGEX]... [--header NAME[=REGEX]]... [--sdp LINE[=REGEX]]...\n"
            "           [--default-handling continue|terminate] [--service-info TEXT]\n"
            "           [--profile-part registered|unregistered]\n"
            "  scscf add NAME [--cap N,..] | scscf delete NAME | scscf list\n"
            "  export [--json | --text] [FILE]     import [--json | --text] FILE|-\n"
            "  keys init | keys list | keys rotate [--no-reencrypt] | keys reencrypt\n"
            "  keys reload | keys remove ID\n"
            "  status\n"
            "  audit verify [FILE] | audit tail [-n N] [FILE]\n"
            "exit: 0 ok, 1 failed (reason printed), 2 bad usage or input\n");
}

/* ------------------------------------------------------------- output */

void ctl_set_cmd(struct ctl *c, const char *a, const char *b)
{
    snprintf(c->cmdbuf, sizeof(c->cmdbuf), "%s%s%s", a, b ? " " : "", b ? b : "");
    c->cmd = c->cmdbuf;
}

static void print_value(FILE *f, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: fputs(json_string_value(v), f); break;
    case JSON_INTEGER: fprintf(f, "%lld", (long long)json_integer_value(v)); break;
    case JSON_TRUE: fputs("yes", f); break;
    case JSON_FALSE: fputs("no", f); break;
    case JSON_NULL: fputs("-", f); break;
    case JSON_ARRAY: {
        size_t i;
        const json_t *x;
        if (json_array_size(v) == 0)
            fputs("-", f);
        json_array_foreach(v, i, x) {
            if (i)
                fputs(", ", f);
            print_value(f, x);
        }
        break;
    }
    default: {
        char *s = json_dumps(v, JSON_COMPACT);
        fputs(s ? s : "?", f);
        ims_free(s);
    }
    }
}

void ctl_print_obj(struct ctl *c, const json_t *obj, int indent)
{
    const char *key;
    json_t *v;
    if (c->json)
        return;
    json_object_foreach((json_t *)obj, key, v) {
        bool nested = json_is_object(v) || (json_is_array(v) && json_array_size(v) &&
                                            json_is_object(json_array_get(v, 0)));
        fprintf(c->out, "%*s%s:", indent, "", key);
        if (!nested) {
            fputc(' ', c->out);
            print_value(c->out, v);
            fputc('\n', c->out);
        } else if (json_is_object(v)) {
            fputc('\n', c->out);
            ctl_print_obj(c, v, indent + 2);
        } else {
            size_t i;
            json_t *x;
            fputc('\n', c->out);
            json_array_foreach(v, i, x) {
                fprintf(c->out, "%*s-\n", indent + 2, "");
                ctl_print_obj(c, x, indent + 4);
            }
        }
    }
    fflush(c->out);
}

static void vput(FILE *f, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vput(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    fputs(prefix, f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
}

int ctl_fail(struct ctl *c, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(c->err, "imscloudctl: %s%s%s\n", c->cmd ? c->cmd : "", c->cmd ? ": " : "", msg);
    fflush(c->err);
    if (c->json) {
        json_t *o = json_pack("{s:b, s:i, s:s}", "ok", 0, "exit", code, "message", msg);
        if (o) {
            json_dumpf(o, c->out, JSON_COMPACT);
            fputc('\n', c->out);
            fflush(c->out);
            json_decref(o);
        }
    }
    return code;
}

void ctl_warn(struct ctl *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(c->err, "imscloudctl: warning: %s\n", msg);
    fflush(c->err);
    if (c->nwarn < CTL_MAX_WARN)
        c->warn[c->nwarn++] = ims_strndup(msg, strlen(msg));
}

void ctl_say(struct ctl *c, const char *fmt, ...)
{
    if (c->json)
        return;
    va_list ap;
    va_start(ap, fmt);
    vput(c->out, "", fmt, ap);
    va_end(ap);
}

int ctl_done(struct ctl *c, json_t *obj)
{
    if (!c->json) {
        json_decref(obj);
        return CTL_OK;
    }
    json_t *o = json_object();
    json_t *w = json_array();
    if (o && w) {
        json_object_set_new(o, "ok", json_true());
        if (obj)
            json_object_update(o, obj);
        for (size_t i = 0; i < c->nwarn; i++)
            if (c->warn[i])
                json_array_append_new(w, json_string(c->warn[i]));
        json_object_set(o, "warnings", w);
        json_dumpf(o, c->out, JSON_COMPACT);
        fputc('\n', c->out);
        fflush(c->out);
    }
    json_decref(w);
    json_decref(o);
    json_decref(obj);
    return CTL_OK;
}

int ctl_store_fail(struct ctl *c, int rc, const char *what)
{
    const char *m = c->st ? ims_store_errmsg(c->st) : "";
    if (rc == IMS_ENOENT)
        return ctl_fail(c, CTL_FAIL, "%s: %s", what, m[0] ? m : "not found");
    return ctl_fail(c, CTL_FAIL, "%s: %s", what, m[0] ? m : ims_strerror(rc));
}

/* ---------------------------------------------------------- arguments */

static int usage_err(struct ctl *c, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage_err(struct ctl *c, const char *usage, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ctl_fail(c, CTL_USAGE, "%s", msg);
    if (usage)
        fprintf(c->err, "usage: imscloudctl %s %s\n", c->cmd, usage);
    return CTL_USAGE;
}

int ctl_parse(struct ctl *c, int argc, char **argv, const char *const *spec, int min_pos,
              int max_pos, const char *usage, struct ctl_args *a)
{
    memset(a, 0, sizeof(*a));
    for (size_t i = 0; spec && spec[i]; i++) {
        if (a->nopts == CTL_MAX_OPTS)
            return usage_err(c, NULL, "too many options in the spec (a bug)");
        const char *eq = strchr(spec[i], '=');
        a->o[a->nopts].name = spec[i];
        a->o[a->nopts].value = eq != NULL;
        a->o[a->nopts].multi = eq && eq[1] == '*';
        a->nopts++;
    }
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->npos == max_pos || a->npos == CTL_MAX_POS)
                return usage_err(c, usage, "unexpected argument '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(arg, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
            if (i + 1 == argc)
                return usage_err(c, usage, "%s: needs a file", arg);
            c->cfg_path = argv[++i];
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fprintf(c->out, "usage: imscloudctl %s %s\n", c->cmd, usage ? usage : "");
            return CTL_HELP;
        }
        /* --name or --name=value */
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *val = strchr(name, '=');
        size_t nlen = val ? (size_t)(val - name) : strlen(name);
        int k = -1;
        for (int j = 0; j < a->nopts && k < 0; j++) {
            const char *sn = a->o[j].name;
            size_t slen = strcspn(sn, "=");
            if (slen == nlen && memcmp(sn, name, nlen) == 0)
                k = j;
        }
        if (arg[1] != '-' || k < 0)
            return usage_err(c, usage, "%.*s: unknown option", (int)(nlen + (name - arg)), arg);
        if (!a->o[k].value) {
            if (val)
                return usage_err(c, usage, "--%.*s: takes no value", (int)nlen, name);
            a->o[k].n = 1;
            continue;
        }
        if (!val) {
            if (i + 1 == argc)
                return usage_err(c, usage, "--%.*s: needs a value", (int)nlen, name);
            val = argv[++i];
        } else {
            val++;
        }
        if (a->o[k].n && !a->o[k].multi)
            return usage_err(c, usage, "--%.*s: given twice", (int)nlen, name);
        if (a->o[k].n == CTL_MAX_MULTI)
            return usage_err(c, usage, "--%.*s: more than %d values", (int)nlen, name,
                             CTL_MAX_MULTI);
        a->o[k].v[a->o[k].n++] = val;
    }
    if (a->npos < min_pos)
        return usage_err(c, usage, "missing argument%s", min_pos - a->npos > 1 ? "s" : "");
    return 0;
}

static int find_opt(const struct ctl_args *a, const char *name)
{
    size_t nlen = strlen(name);
    for (int i = 0; i < a->nopts; i++)
        if (strcspn(a->o[i].name, "=") == nlen && memcmp(a->o[i].name, name, nlen) == 0)
            return i;
    return -1;
}

const char *ctl_opt(const struct ctl_args *a, const char *name)
{
    int i = find_opt(a, name);
    return i >= 0 && a->o[i].n && a->o[i].value ? a->o[i].v[a->o[i].n - 1] : NULL;
}

int ctl_optv(const struct ctl_args *a, const char *name, const char *const **v)
{
    int i = find_opt(a, name);
    if (i < 0 || !a->o[i].value) {
        *v = NULL;
        return 0;
    }
    *v = a->o[i].v;
    return a->o[i].n;
}

bool ctl_flag(const struct ctl_args *a, const char *name)
{
    int i = find_opt(a, name);
    return i >= 0 && a->o[i].n > 0;
}

/* ------------------------------------------------------------ context */

int ctl_load_config(struct ctl *c)
{
    char err[512];
    if (c->cfg)
        return CTL_OK;
    if (ims_cfg_load(c->cfg_path, &c->cfg, err, sizeof(err)) != 0)
        return ctl_fail(c, CTL_USAGE, "%s (the configuration: -c FILE)", err);
    const char *state = c->cfg->state_dir ? c->cfg->state_dir : "var";
    snprintf(c->state_dir, sizeof(c->state_dir), "%s", state);
    /* the same defaults as src/hss/role.c */
    if (c->cfg->hss_store)
        snprintf(c->store_url, sizeof(c->store_url), "%s", c->cfg->hss_store);
    else
        snprintf(c->store_url, sizeof(c->store_url), "sqlite:%s/hss.db", state);
    if (c->cfg->hss_keys_dir)
        snprintf(c->keys_dir, sizeof(c->keys_dir), "%s", c->cfg->hss_keys_dir);
    else
        snprintf(c->keys_dir, sizeof(c->keys_dir), "%s/keys", state);
    snprintf(c->sock_path, sizeof(c->sock_path), "%s/imscloud.ctl", state);
    return CTL_OK;
}

static int has_secret(void *ctx, const struct ims_impi_rec *r)
{
    return r->has_aka || r->has_password || r->has_ha1[0] || r->has_ha1[1] || r->has_ha1[2];
}

/* No key repository yet: create one (as imscloud does on its first start)
 * when the store holds no secret, so provisioning before the first start
 * works; otherwise keys_dir is wrong and a new key would not help. */
static int create_keys(struct ctl *c)
{
    char kerr[IMS_KEYREPO_ERRLEN];
    struct ims_store *st = NULL;
    /* no repository: the store only lists, it decrypts nothing */
    int rc = ims_store_open(c->store_url, NULL, &st);
    if (rc)
        return ctl_fail(c, CTL_FAIL, "cannot open the subscriber store ([hss] store): %s",
                        ims_strerror(rc));
    rc = ims_store_impi_list(st, IMS_STR_NULL, has_secret, NULL);
    if (rc < 0) {
        rc = ctl_fail(c, CTL_FAIL, "store: %s", ims_store_errmsg(st));
        ims_store_close(st);
        return rc;
    }
    ims_store_close(st);
    if (rc)
        return ctl_fail(c, CTL_FAIL, "no key repository in %s, but the store holds secrets: "
                                     "is [hss] keys_dir right?",
                        c->keys_dir);
    if (ims_keyrepo_create(c->keys_dir, kerr, sizeof(kerr)) != 0 ||
        ims_keyrepo_open(c->keys_dir, &c->repo, kerr, sizeof(kerr)) != 0)
        return ctl_fail(c, CTL_FAIL, "key repository %s: %s", c->keys_dir, kerr);
    fprintf(c->err, "imscloudctl: created the key repository %s (back it up with the "
                    "database)\n",
            c->keys_dir);
    return CTL_OK;
}

int ctl_open(struct ctl *c)
{
    char kerr[IMS_KEYREPO_ERRLEN];
    int rc = ctl_load_config(c);
    if (rc)
        return rc;
    if (strncmp(c->store_url, "sqlite:", 7) == 0 && strcmp(c->store_url, "sqlite::memory:"))
        mkdir(c->state_dir, 0700); /* as the server does; an error shows at open */
    if (!c->repo) {
        rc = ims_keyrepo_open(c->keys_dir, &c->repo, kerr, sizeof(kerr));
        if (rc == IMS_ENOENT && c->create_keys)
            rc = create_keys(c);
        else if (rc == IMS_ENOENT)
            return ctl_fail(c, CTL_FAIL, "no key repository in %s: start imscloud once, or run "
                                         "`imscloudctl keys init`",
                            c->keys_dir);
        else if (rc)
            return ctl_fail(c, CTL_FAIL, "key repository %s: %s", c->keys_dir, kerr);
        if (rc)
            return rc;
    }
    if (!c->st) {
        rc = ims_store_open(c->store_url, c->repo, &c->st);
        if (rc)
            return ctl_fail(c, CTL_FAIL, "cannot open the subscriber store ([hss] store): %s",
                            ims_strerror(rc));
    }
    return CTL_OK;
}

void ctl_close(struct ctl *c)
{
    ims_store_close(c->st);
    c->st = NULL;
    ims_keyrepo_free(c->repo);
    c->repo = NULL;
    ims_cfg_free(c->cfg);
    c->cfg = NULL;
    for (size_t i = 0; i < c->nwarn; i++)
        ims_free(c->warn[i]);
    c->nwarn = 0;
}

/* ------------------------------------------------------ value parsing */

static bool printable_nospace(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

bool ctl_valid_id(const char *s, char *why, size_t whysz)
{
    size_t n = strlen(s);
    if (n == 0 || n >= IMS_STORE_ID_MAX || !printable_nospace(s)) {
        snprintf(why, whysz, "must be 1 to %d printable ASCII characters without spaces",
                 IMS_STORE_ID_MAX - 1);
        return false;
    }
    return true;
}

bool ctl_valid_name(const char *s, char *why, size_t whysz)
{
    size_t n = strlen(s);
    if (n == 0 || n >= IMS_STORE_NAME_MAX || !printable_nospace(s)) {
        snprintf(why, whysz, "must be 1 to %d printable ASCII characters without spaces",
                 IMS_STORE_NAME_MAX - 1);
        return false;
    }
    return true;
}

bool ctl_valid_impu(const char *s, char *why, size_t whysz)
{
    if (!ctl_valid_id(s, why, whysz))
        return false;
    if ((strncmp(s, "sip:", 4) == 0 && s[4]) || (strncmp(s, "sips:", 5) == 0 && s[5]) ||
        (strncmp(s, "tel:", 4) == 0 && s[4]))
        return true;
    snprintf(why, whysz, "must be a sip:, sips: or tel: URI");
    return false;
}

bool ctl_hex(const char *s, uint8_t *out, size_t n, char *why, size_t whysz)
{
    if (strlen(s) != 2 * n || ims_hex_decode(ims_str_cstr(s), out, n) != 0) {
        snprintf(why, whysz, "must be %zu hex digits", 2 * n);
        return false;
    }
    return true;
}

static const struct {
    const char *name;
    unsigned bits;
} scheme_names[] = {
    { "md5", IMS_AUTH_DIGEST_MD5 },
    { "sha256", IMS_AUTH_DIGEST_SHA256 },
    { "sha512-256", IMS_AUTH_DIGEST_SHA512_256 },
    { "akav1", IMS_AUTH_AKAV1_MD5 },
    { "akav2", IMS_AUTH_AKAV2_MD5 },
    { "digest", IMS_AUTH_DIGEST_MD5 | IMS_AUTH_DIGEST_SHA256 | IMS_AUTH_DIGEST_SHA512_256 },
    { "aka", IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5 },
    { "all", IMS_AUTH_ALL },
    { "sha-256", IMS_AUTH_DIGEST_SHA256 },
    { "sha-512-256", IMS_AUTH_DIGEST_SHA512_256 },
};

bool ctl_schemes(const char *const *lists, int n, unsigned *out, char *why, size_t whysz)
{
    unsigned bits = 0;
    for (int i = 0; i < n; i++) {
        struct ims_cur cur = { lists[i], lists[i] + strlen(lists[i]) };
        do {
            ims_str item;
            ims_cur_until(&cur, ",", &item);
            ims_cur_char(&cur, ',');
            item = ims_str_trim(item);
            size_t k = 0;
            while (k < sizeof(scheme_names) / sizeof(scheme_names[0]) &&
                   !ims_str_caseeq_lit(item, scheme_names[k].name))
                k++;
            if (k == sizeof(scheme_names) / sizeof(scheme_names[0])) {
                snprintf(why, whysz, "'%.*s' is not one of md5, sha256, sha512-256, akav1, "
                                     "akav2, digest, aka, all",
                         IMS_SF(item));
                return false;
            }
            bits |= scheme_names[k].bits;
        } while (!ims_cur_eof(&cur));
    }
    *out = bits;
    return true;
}

const char *ctl_schemes_str(unsigned schemes, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < 5; k++)
        if (schemes & scheme_names[k].bits) {
            int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", scheme_names[k].name);
            if (n < 0 || (size_t)n >= cap - len)
                break;
            len += (size_t)n;
        }
    return buf;
}

bool ctl_uint(const char *s, uint64_t max, uint64_t *out, char *why, size_t whysz)
{
    if (ims_str_to_u64(ims_str_cstr(s), max, out) != 0) {
        snprintf(why, whysz, "must be an integer 0..%llu", (unsigned long long)max);
        return false;
    }
    return true;
}

bool ctl_caps(const char *s, uint32_t *caps, size_t *n, char *why, size_t whysz)
{
    struct ims_cur cur = { s, s + strlen(s) };
    *n = 0;
    while (!ims_cur_eof(&cur)) {
        ims_str t;
        uint64_t v;
        ims_cur_until(&cur, ",", &t);
        ims_cur_char(&cur, ',');
        t = ims_str_trim(t);
        if (*n == IMS_STORE_MAX_CAPS) {
            snprintf(why, whysz, "at most %d capabilities", IMS_STORE_MAX_CAPS);
            return false;
        }
        if (ims_str_to_u64(t, UINT32_MAX, &v) != 0) {
            snprintf(why, whysz, "'%.*s' is not a capability number (0..4294967295)",
                     IMS_SF(t));
            return false;
        }
        caps[(*n)++] = (uint32_t)v;
    }
    return true;
}

int ctl_read_file(struct ctl *c, const char *path, size_t max, struct ims_buf *b)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return ctl_fail(c, CTL_USAGE, "%s: cannot open: %s", path, strerror(errno));
    ims_buf_init(b, max);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = ims_buf_add(b, chunk, n);
    bool ferr = ferror(f);
    if (!is_stdin)
        fclose(f);
    if (rc == IMS_ELIMIT)
        return ctl_fail(c, CTL_USAGE, "%s: larger than %zu bytes", path, max);
    if (rc || ferr)
        return ctl_fail(c, CTL_FAIL, "%s: cannot read", path);
    return CTL_OK;
}

int ctl_password(struct ctl *c, const struct ctl_args *a, char *buf, size_t cap)
{
    const char *pw = ctl_opt(a, "password");
    const char *file = ctl_opt(a, "password-file");
    if (pw && file)
        return -ctl_fail(c, CTL_USAGE, "--password and --password-file: give one");
    if (!pw && !file)
        return 0;
    if (pw) {
        if (strlen(pw) == 0 || strlen(pw) > IMS_STORE_PASSWORD_MAX || strlen(pw) >= cap)
            return -ctl_fail(c, CTL_USAGE, "--password: must be 1 to %d bytes",
                             IMS_STORE_PASSWORD_MAX);
        snprintf(buf, cap, "%s", pw);
        return 1;
    }
    struct ims_buf b;
    int rc = ctl_read_file(c, file, 4096, &b);
    if (rc) {
        ims_buf_free(&b);
        return -rc;
    }
    size_t n = strcspn(b.p ? b.p : "", "\r\n");
    bool ok = n > 0 && n <= IMS_STORE_PASSWORD_MAX && n < cap && !memchr(b.p, '\0', n);
    if (ok) {
        memcpy(buf, b.p, n);
        buf[n] = '\0';
    }
    if (b.p)
        ims_wipe(b.p, b.len);
    ims_buf_free(&b);
    if (!ok)
        return -ctl_fail(c, CTL_USAGE, "--password-file: the first line must be 1 to %d bytes",
                         IMS_STORE_PASSWORD_MAX);
    return 1;
}

/* ----------------------------------------------------------- dispatch */

/* jansson's memory: through ims_alloc (fault injection sees it), and wiped
 * when freed - an imported document's strings hold passwords and keys. */
static void wipe_free(void *p)
{
    if (p)
        ims_wipe(p, malloc_usable_size(p));
    ims_free(p);
}

int ctl_run(int argc, char **argv, FILE *out, FILE *err)
{
    static const struct {
        const char *name;
        int (*fn)(struct ctl *, int, char **);
    } cmds[] = {
        { "user", ctl_cmd_user },       { "sub", ctl_cmd_sub },       { "impi", ctl_cmd_impi },
        { "impu", ctl_cmd_impu },       { "profile", ctl_cmd_profile }, { "scscf", ctl_cmd_scscf },
        { "export", ctl_cmd_export },   { "import", ctl_cmd_import }, { "keys", ctl_cmd_keys },
        { "status", ctl_cmd_status },   { "audit", ctl_cmd_audit },
    };
    struct ctl c;
    memset(&c, 0, sizeof(c));
    c.out = out;
    c.err = err;
    c.cfg_path = CTL_DEFAULT_CONFIG;
    json_set_alloc_funcs(ims_alloc, wipe_free);
    /* global options before the command */
    int i = 0;
    while (i < argc && argv[i][0] == '-') {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            c.cfg_path = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
            i++;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            ims_log_set_level(IMS_LOG_INFO);
            i++;
        } else {
            ctl_usage(err);
            return CTL_USAGE;
        }
    }
    if (i == argc) {
        ctl_usage(err);
        return CTL_USAGE;
    }
    int rc = CTL_USAGE;
    bool found = false;
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]) && !found; k++)
        if (strcmp(argv[i], cmds[k].name) == 0) {
            found = true;
            ctl_set_cmd(&c, argv[i], NULL);
            rc = cmds[k].fn(&c, argc - i - 1, argv + i + 1);
        }
    if (!found && (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0)) {
        ctl_usage(out);
        rc = CTL_OK;
    } else if (!found) {
        fprintf(err, "imscloudctl: unknown command '%s'\n", argv[i]);
        ctl_usage(err);
    }
    if (rc == CTL_HELP)
        rc = CTL_OK;
    ctl_close(&c);
    return rc;
}
