/* test_cli - imscloudctl commands in process against a SQLite store:
 * argument errors name the option and exit 2; user add creates what it
 * says; a failed command or import changes nothing (also when the store
 * refuses the last record inside the transaction); exports never carry
 * a secret; --json output; iFCs from flags; a change with no server
 * running succeeds with a warning. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/digest.h"
#include "crypto/encode.h"
#include "hss/userdata.h"
#include "store/store_ext.h"
#include "ctl_tests.h"

#define K_HEX "465b5ce8b199b49faa5f0a2ee238a6bc"
#define OP_HEX "cdc202d5123e20f62b6d676ac72cb318"
#define OPC_HEX "cd63cb71954a9f4e48a5994e37a02baf"

static void expect_run(struct cfix *f, const char *cmd, int code, const char *msg)
{
    int rc = run(f, cmd);
    if (rc != code || (msg && !strstr(f->err, msg)))
        fail_msg("'%s': exit %d (want %d), stderr '%s' (want '%s')", cmd, rc, code, f->err,
                 msg ? msg : "");
}

static void test_argument_errors(void **state)
{
    struct cfix *f = *state;
    static const struct {
        const char *cmd;
        const char *msg;
    } cases[] = {
        { "user", "usage: imscloudctl user add" },
        { "user add", "missing argument" },
        { "user add a@x --frob", "--frob: unknown option" },
        { "user add a@x -x", "-x: unknown option" },
        { "user add a@x", "--password or --k: the user needs a credential" },
        { "user add a@x --password", "--password: needs a value" },
        { "user add a@x --password p --password q", "--password: given twice" },
        { "user add a@x --k 00 --opc " OPC_HEX, "--k: must be 32 hex digits" },
        { "user add a@x --k " K_HEX, "--k: needs --op or --opc" },
        { "user add a@x --opc " OPC_HEX, "--opc: needs --k" },
        { "user add a@x --k " K_HEX " --op " OP_HEX " --opc " OPC_HEX,
          "--op and --opc: give one" },
        { "user add a@x --password p --amf 8", "--amf: must be 4 hex digits" },
        { "user add a@x --password p --scheme md5,ntlm", "--scheme: 'ntlm' is not one of" },
        { "user add a@x --password p --scheme aka", "--scheme: AKA needs --k" },
        { "user add nodomain --password p", "--realm: required" },
        { "user add a@x --password p --impu http://x", "--impu 'http://x': must be a sip:" },
        { "user add a@x --password p --impu sip:a@x --impu sip:a@x", "given twice" },
        { "user add a@x --password p --keep-password=1", "--keep-password: takes no value" },
        { "user add a@x --password p --profile p --no-profile", "give one" },
        { "user add a@x extra --password p", "unexpected argument 'extra'" },
        { "sub add", "missing argument" },
        { "sub add a --ccf x --ccf y --ccf z", "--ccf: at most 2" },
        { "sub add a --cap-mandatory 1,x", "--cap-mandatory: 'x' is not a capability" },
        { "sub frob a", "unknown subcommand" },
        { "impi add a@x", "--sub: required" },
        { "impi set-schemes a@x", "LIST: required" },
        { "impi set-password a@x", "--password or --password-file: required" },
        { "impu set-profile sip:a@x", "PROFILE or --none: give one" },
        { "impu add sip:a@x", "--sub: required" },
        { "impu add sip:a@x --sub s --irs 0", "--irs: must be an implicit set number" },
        { "impu add sip:a@x --sub s --type psi", "--type: must be public" },
        { "profile ifc-add p --priority 1", "--as: required" },
        { "profile ifc-add p --as sip:as", "--priority: required" },
        { "profile ifc-add p --priority x --as sip:as", "--priority: must be an integer" },
        { "profile ifc-add p --priority 1 --as sip:as --default-handling maybe",
          "--default-handling: must be continue" },
        { "profile put p", "missing argument" },
        { "keys remove abc", "ID 'abc': must be an integer" },
        { "keys frob", "unknown subcommand" },
        { "export --json --text", "give one" },
        { "frobnicate", "unknown command 'frobnicate'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_run(f, cases[i].cmd, CTL_USAGE, cases[i].msg);
    /* nothing was created by any of them */
    cfix_open(f);
    struct ims_sub_rec r;
    assert_int_equal(ims_store_sub_get(f->st, S("a@x"), &r), IMS_ENOENT);
    /* a bad configuration is bad input too */
    char *save = strdup(f->conf);
    snprintf(f->conf, sizeof(f->conf), "%s/missing.conf", f->dir);
    expect_run(f, "sub list", CTL_USAGE, "missing.conf: cannot open");
    snprintf(f->conf, sizeof(f->conf), "%s", save);
    free(save);
    /* --help exits 0 */
    assert_int_equal(run(f, "user add --help"), CTL_OK);
    assert_non_null(strstr(f->out, "usage: imscloudctl user add"));
}

static void test_user_add(void **state)
{
    struct cfix *f = *state;
    char ha1[IMS_DIGEST_HEX_MAX + 1];
    assert_int_equal(run(f, "user add alice@ims.test --password pw1 --impu sip:alice@ims.test "
                            "--impu tel:+15550001"),
                     CTL_OK);
    assert_non_null(strstr(f->out, "created subscription alice@ims.test"));
    assert_non_null(strstr(f->out, "created IMPU tel:+15550001"));
    assert_non_null(strstr(f->out, "created service profile default"));
    cfix_open(f);
    struct ims_auth_data ad;
    assert_int_equal(ims_store_auth_get(f->st, S("alice@ims.test"), &ad), 0);
    assert_string_equal(ad.realm, "ims.test");
    assert_true(ad.has_ha1[IMS_DIGEST_MD5] && ad.has_ha1[IMS_DIGEST_SHA256]);
    ims_digest_ha1(IMS_DIGEST_MD5, S("alice@ims.test"), S("ims.test"), S("pw1"), ha1);
    assert_string_equal(ad.ha1[IMS_DIGEST_MD5], ha1);
    assert_false(ad.has_aka);
    ims_auth_data_clear(&ad);
    struct ims_impu_rec arr[4];
    size_t n = 0;
    assert_int_equal(ims_store_impus_of_impi(f->st, S("alice@ims.test"), arr, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(arr[0].irs, arr[1].irs); /* one implicit set */
    assert_string_equal(arr[0].profile, "default");
    struct ims_impi_rec m;
    assert_int_equal(ims_store_impi_get(f->st, S("alice@ims.test"), &m), 0);
    assert_false(m.has_password); /* only with --keep-password */

    /* AKA from K and OP; default IMPU sip:<impi>; the second user reuses "default" */
    assert_int_equal(run(f, "--json user add bob@ims.test --k " K_HEX " --op " OP_HEX), CTL_OK);
    assert_non_null(strstr(f->out, "\"ok\":true"));
    assert_non_null(strstr(f->out, "\"profile_created\":false"));
    assert_non_null(strstr(f->out, "sip:bob@ims.test"));
    uint8_t opc[16];
    ims_hex_decode(S(OPC_HEX), opc, 16);
    assert_int_equal(ims_store_auth_get(f->st, S("bob@ims.test"), &ad), 0);
    assert_true(ad.has_aka);
    assert_memory_equal(ad.opc, opc, 16);
    assert_int_equal(ad.schemes, IMS_AUTH_AKAV1_MD5 | IMS_AUTH_AKAV2_MD5);
    ims_auth_data_clear(&ad);

    /* a second user add of the same user: exit 1, nothing changed */
    char *before = store_text(f);
    expect_run(f, "user add alice@ims.test --password other", CTL_FAIL, "already exists");
    char *after = store_text(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_failed_command_changes_nothing(void **state)
{
    struct cfix *f = *state;
    assert_int_equal(run(f, "user add alice@ims.test --password pw1"), CTL_OK);
    char *before = store_text(f);
    /* bob's command would create a subscription, an IMPI, two IMPUs; the
     * second IMPU is alice's: the whole command fails */
    expect_run(f, "user add bob@ims.test --password pw2 --impu sip:bob@ims.test --impu "
                  "sip:alice@ims.test",
               CTL_FAIL, "IMPU sip:alice@ims.test already exists");
    expect_run(f, "user add carol@ims.test --password pw --profile nosuch", CTL_FAIL,
               "no profile nosuch");
    expect_run(f, "impi add x@ims.test --sub nosuch --password p", CTL_FAIL,
               "no subscription nosuch");
    expect_run(f, "impu add sip:y@ims.test --sub alice@ims.test --impi nobody@ims.test",
               CTL_FAIL, "no IMPI nobody@ims.test");
    char *after = store_text(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* the same commands, valid, work */
    assert_int_equal(run(f, "impi add alice-ue@ims.test --sub alice@ims.test --password p2 "
                            "--impu sip:alice@ims.test"),
                     CTL_OK);
    assert_int_equal(run(f, "impu add sip:alice2@ims.test --sub alice@ims.test --impi "
                            "alice@ims.test --impi alice-ue@ims.test"),
                     CTL_OK);
    assert_non_null(strstr(f->out, "implicit set 2"));
    struct ims_impu_rec arr[4];
    size_t n = 0;
    assert_int_equal(ims_store_impus_of_impi(f->st, S("alice-ue@ims.test"), arr, 4, &n), 0);
    assert_int_equal(n, 2);
}

#define DOC3                                                                                       \
    "{\"version\":1,\"profiles\":[{\"name\":\"gold\",\"xml\":\"\"}],\"subscribers\":["            \
    "{\"name\":\"s1\",\"impis\":[{\"identity\":\"u1@ims.test\",\"password\":\"p1\"}],"            \
    "\"impus\":[{\"identity\":\"sip:u1@ims.test\",\"profile\":\"gold\"}]},"                       \
    "{\"name\":\"s2\",\"impis\":[{\"identity\":\"u2@ims.test\",\"password\":\"p2\"}],"            \
    "\"impus\":[{\"identity\":\"sip:u2@ims.test\"}]},"                                            \
    "{\"name\":\"s3\",\"impis\":[{\"identity\":\"u3@ims.test\",\"k\":\"" K_HEX "\","              \
    "\"opc\":\"" OPC_HEX "\"}],\"impus\":[{\"identity\":\"%s\"}]}]}"

static void test_import_atomic(void **state)
{
    struct cfix *f = *state;
    char doc[4096];
    assert_int_equal(run(f, "user add alice@ims.test --password pw1"), CTL_OK);
    char *before = store_text(f);

    /* 1. the last record collides with the store inside the transaction
     *    (the pre-check is skipped on purpose: as if another admin had
     *    created it meanwhile): nothing of the first two stays */
    snprintf(doc, sizeof(doc), DOC3, "sip:alice@ims.test");
    struct ctl_doc d;
    struct ctl_errs e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(ctl_doc_from_json(S(doc), &d, &e), 0);
    cfix_open(f);
    size_t records = 0;
    assert_int_not_equal(ctl_doc_apply(f->st, &d, &records), 0);
    ctl_doc_free(&d);
    char *after = store_text(f);
    assert_string_equal(before, after);
    free(after);

    /* 2. the same through the command: found by the check, exit 1 */
    const char *path = write_file(f, "dup.json", doc);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "import --json %s", path);
    expect_run(f, cmd, CTL_FAIL,
               "subscribers[2].impus[0].identity: IMPU sip:alice@ims.test already exists");
    after = store_text(f);
    assert_string_equal(before, after);
    free(after);

    /* 3. invalid at the last record: exit 2, the path named, nothing written */
    snprintf(doc, sizeof(doc), DOC3, "sip:u3@ims.test");
    char *bad = strdup(doc);
    char *k = strstr(bad, K_HEX);
    k[31] = 'x';
    path = write_file(f, "bad.json", bad);
    free(bad);
    snprintf(cmd, sizeof(cmd), "import --json %s", path);
    expect_run(f, cmd, CTL_USAGE, "subscribers[2].impis[0].k: must be 32 hex digits");
    assert_non_null(strstr(f->err, "nothing was imported"));
    after = store_text(f);
    assert_string_equal(before, after);
    free(after);

    /* 4. valid: everything at once */
    path = write_file(f, "good.json", doc);
    snprintf(cmd, sizeof(cmd), "import --json %s --dry-run", path);
    assert_int_equal(run(f, cmd), CTL_OK);
    after = store_text(f);
    assert_string_equal(before, after);
    free(after);
    snprintf(cmd, sizeof(cmd), "import %s", path);
    assert_int_equal(run(f, cmd), CTL_OK);
    assert_non_null(strstr(f->out, "imported 3 subscribers, 1 profiles"));
    /* --json: the result as one JSON object (the input is JSON either way) */
    expect_run(f, cmd, CTL_FAIL, "already exists");
    snprintf(cmd, sizeof(cmd), "import --json %s", path);
    assert_int_equal(run(f, cmd), CTL_FAIL);
    assert_non_null(strstr(f->out, "\"ok\":false"));
    struct ims_auth_data ad;
    assert_int_equal(ims_store_auth_get(f->st, S("u3@ims.test"), &ad), 0);
    assert_true(ad.has_aka);
    ims_auth_data_clear(&ad);
    struct ims_impu_rec r;
    assert_int_equal(ims_store_impu_get(f->st, S("sip:u1@ims.test"), &r), 0);
    assert_string_equal(r.profile, "gold");
    free(before);
}

static void test_export_has_no_secret(void **state)
{
    struct cfix *f = *state;
    static const char *const pw = "Sup3rSecretPw";
    char cmd[400], ha1[IMS_DIGEST_NALG][IMS_DIGEST_HEX_MAX + 1];
    snprintf(cmd, sizeof(cmd), "user add alice@ims.test --password %s --keep-password", pw);
    assert_int_equal(run(f, cmd), CTL_OK);
    assert_int_equal(run(f, "user add bob@ims.test --k " K_HEX " --op " OP_HEX), CTL_OK);
    for (int a = 0; a < IMS_DIGEST_NALG; a++)
        ims_digest_ha1((enum ims_digest_alg)a, S("alice@ims.test"), S("ims.test"), S(pw),
                       ha1[a]);
    snprintf(cmd, sizeof(cmd), "export --json %s/export.json", f->dir);
    assert_int_equal(run(f, cmd), CTL_OK);
    char path[300], text[1 << 16];
    snprintf(path, sizeof(path), "%s/export.json", f->dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    /* also to stdout */
    assert_int_equal(run(f, "export"), CTL_OK);
    assert_string_equal(f->out, text);
    const char *never[] = { pw,     K_HEX,  OP_HEX, OPC_HEX, "465B5CE8B199B49FAA5F0A2EE238A6BC",
                            "CD63CB71954A9F4E48A5994E37A02BAF", ha1[0], ha1[1], ha1[2], "v1:" };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (strstr(text, never[i]))
            fail_msg("the export contains a secret (%zu)", i);
    /* it says which secrets are set */
    assert_non_null(strstr(text, "\"aka\": true"));
    assert_non_null(strstr(text, "\"password\": true"));
    /* show and list do not print them either */
    assert_int_equal(run(f, "--json impi show alice@ims.test"), CTL_OK);
    assert_null(strstr(f->out, ha1[0]));
    assert_null(strstr(f->out, pw));
    /* the export re-imports into an empty store (without secrets) */
    assert_int_equal(run(f, "sub delete alice@ims.test"), CTL_OK);
    assert_int_equal(run(f, "sub delete bob@ims.test"), CTL_OK);
    assert_int_equal(run(f, "profile delete default"), CTL_OK);
    snprintf(cmd, sizeof(cmd), "import %s", path);
    assert_int_equal(run(f, cmd), CTL_OK);
    assert_int_equal(run(f, "export"), CTL_OK);
    assert_non_null(strstr(f->out, "sip:alice@ims.test"));
    /* an existing export file is never overwritten */
    snprintf(cmd, sizeof(cmd), "export %s", path);
    expect_run(f, cmd, CTL_FAIL, "must not exist yet");
}

static void test_json_output(void **state)
{
    struct cfix *f = *state;
    assert_int_equal(run(f, "user add alice@ims.test --password p"), CTL_OK);
    assert_int_equal(run(f, "--json sub list"), CTL_OK);
    json_t *o = json_loads(f->out, 0, NULL);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_array_size(json_object_get(o, "subscriptions")), 1);
    json_decref(o);
    assert_int_equal(run(f, "impu list --json"), CTL_OK); /* --json after the command too */
    assert_non_null(strstr(f->out, "\"impus\":[{"));
    assert_int_equal(run(f, "--json sub show nosuch"), CTL_FAIL);
    o = json_loads(f->out, 0, NULL);
    assert_non_null(o);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 1);
    json_decref(o);
}

static void test_ifc_add(void **state)
{
    struct cfix *f = *state;
    assert_int_equal(run(f, "profile ifc-add gold --priority 0 --method INVITE --method MESSAGE "
                            "--session-case terminating-registered --as sip:as@ims.test "
                            "--default-handling terminate --service-info hello"),
                     CTL_OK);
    assert_non_null(strstr(f->out, "created profile gold"));
    assert_int_equal(run(f, "profile ifc-add gold --priority 1 --header P-Foo=bar --as "
                            "sips:as2@ims.test --profile-part unregistered"),
                     CTL_OK);
    expect_run(f, "profile ifc-add gold --priority 1 --as sip:as3@ims.test", CTL_FAIL,
               "already has an iFC with priority 1");
    assert_int_equal(run(f, "profile show gold"), CTL_OK);
    const char *x = f->out;
    assert_true(ims_xml_fragment_ok(ims_str_trim(S(x))));
    /* one group per option (ANDed), its values ORed inside */
    assert_non_null(strstr(x, "<ConditionTypeCNF>1</ConditionTypeCNF>"));
    assert_non_null(strstr(x, "<Group>0</Group><Method>INVITE</Method>"));
    assert_non_null(strstr(x, "<Group>0</Group><Method>MESSAGE</Method>"));
    assert_non_null(strstr(x, "<Group>1</Group><SessionCase>1</SessionCase>"));
    assert_non_null(strstr(x, "<ServerName>sip:as@ims.test</ServerName>"));
    assert_non_null(strstr(x, "<DefaultHandling>1</DefaultHandling>"));
    assert_non_null(strstr(x, "<ServiceInfo>hello</ServiceInfo>"));
    assert_non_null(strstr(x, "<Header>P-Foo</Header><Content>bar</Content>"));
    assert_non_null(strstr(x, "<ProfilePartIndicator>1</ProfilePartIndicator>"));
    /* profile put refuses what is not XML */
    const char *p = write_file(f, "bad.xml", "<InitialFilterCriteria>");
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "profile put gold %s", p);
    expect_run(f, cmd, CTL_USAGE, "not well-formed XML");
    assert_int_equal(run(f, "profile list"), CTL_OK);
    assert_non_null(strstr(f->out, "gold"));
}

static void test_no_server_warning(void **state)
{
    struct cfix *f = *state;
    assert_int_equal(run(f, "user add alice@ims.test --password p"), CTL_OK);
    cfix_open(f);
    /* as if the S-CSCF had registered alice */
    assert_int_equal(ims_store_reg_set(f->st, S("sip:alice@ims.test"), IMS_REG_REGISTERED,
                                       IMS_SCSCF_SET, S("sip:scscf.ims.test"), NULL),
                     0);
    assert_int_equal(run(f, "impu bar sip:alice@ims.test"), CTL_OK);
    assert_non_null(strstr(f->err, "no imscloud is running"));
    assert_non_null(strstr(f->err, "no RTR was sent"));
    struct ims_impu_rec r;
    assert_int_equal(ims_store_impu_get(f->st, S("sip:alice@ims.test"), &r), 0);
    assert_true(r.barred);
    assert_int_equal(run(f, "--json impu set-profile sip:alice@ims.test --none"), CTL_OK);
    assert_non_null(strstr(f->out, "no PPR was sent")); /* in the JSON warnings */
    expect_run(f, "status", CTL_FAIL, "no imscloud is running");
}

static void test_keys(void **state)
{
    struct cfix *f = *state;
    assert_int_equal(run(f, "user add alice@ims.test --password p"), CTL_OK);
    expect_run(f, "keys init", CTL_FAIL, "");
    expect_run(f, "keys remove 0", CTL_FAIL, "is the primary");
    expect_run(f, "keys remove 7", CTL_FAIL, "no key 7");
    assert_int_equal(run(f, "keys rotate --no-reencrypt"), CTL_OK);
    assert_non_null(strstr(f->out, "no imscloud is running"));
    expect_run(f, "keys remove 0", CTL_FAIL, "still encrypts 3 secret(s)");
    assert_int_equal(run(f, "keys reencrypt"), CTL_OK);
    assert_non_null(strstr(f->out, "re-encrypted 3 secret(s) under key 1"));
    assert_int_equal(run(f, "keys remove 0"), CTL_OK);
    assert_int_equal(run(f, "--json keys list"), CTL_OK);
    assert_non_null(strstr(f->out, "\"keys\":[{\"id\":1,\"primary\":true,\"secrets\":3}]"));
    /* the secrets still decrypt (a fresh repository object: what the server reloads) */
    ims_store_close(f->st);
    f->st = NULL;
    ims_keyrepo_free(f->repo);
    f->repo = NULL;
    cfix_open(f);
    struct ims_auth_data ad;
    assert_int_equal(ims_store_auth_get(f->st, S("alice@ims.test"), &ad), 0);
    ims_auth_data_clear(&ad);
}

static int count_peer(void *ctx, const struct ims_scscf_peer *p)
{
    (*(int *)ctx)++;
    return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Provisioning before the server's first start creates the key repository
 * (as the server would); a store with secrets but no keys is refused. */
static void test_keys_created_on_first_use(void **state)
{
    struct cfix *f = *state;
    nftw(f->keys, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    expect_run(f, "sub list", CTL_FAIL, "no key repository"); /* only provisioning creates */
    assert_int_equal(run(f, "user add alice@ims.test --password p"), CTL_OK);
    assert_non_null(strstr(f->err, "created the key repository"));
    nftw(f->keys, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    expect_run(f, "user add bob@ims.test --password p", CTL_FAIL,
               "the store holds secrets: is [hss] keys_dir right?");
}

/* The S-CSCF Diameter peers the HSS persists (migration 002, store_ext.h). */
static void test_scscf_peers(void **state)
{
    struct cfix *f = *state;
    struct ims_scscf_peer p;
    int n = 0;
    cfix_open(f);
    assert_int_equal(ims_store_scscf_peer_get(f->st, S("sip:s1:6060"), &p), IMS_ENOENT);
    assert_int_equal(ims_store_scscf_peer_put(f->st, S("sip:s1:6060"), S("scscf1.ims.test"),
                                              S("ims.test")),
                     0);
    /* a new Origin-Host for the same Server-Name replaces the old one */
    assert_int_equal(ims_store_scscf_peer_put(f->st, S("sip:s1:6060"), S("scscf1b.ims.test"),
                                              S("ims.test")),
                     0);
    assert_int_equal(ims_store_scscf_peer_get(f->st, S("sip:s1:6060"), &p), 0);
    assert_string_equal(p.host, "scscf1b.ims.test");
    assert_string_equal(p.realm, "ims.test");
    assert_int_equal(ims_store_scscf_peer_put(f->st, S("sip:s2"), S("scscf2.ims.test"),
                                              S("ims.test")),
                     0);
    assert_int_equal(ims_store_scscf_peer_list(f->st, count_peer, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ims_store_scscf_peer_put(f->st, S("sip:s 3"), S("h"), S("r")), IMS_EINVAL);
    assert_int_equal(ims_store_scscf_peer_put(f->st, S("sip:s3"), S(""), S("r")), IMS_EINVAL);
    /* scscf list shows them, with or without capabilities */
    assert_int_equal(run(f, "scscf add sip:s1:6060 --cap 1,5"), CTL_OK);
    assert_int_equal(run(f, "scscf list"), CTL_OK);
    assert_non_null(strstr(f->out, "scscf1b.ims.test"));
    assert_non_null(strstr(f->out, "scscf2.ims.test"));
    assert_non_null(strstr(f->out, "1,5"));
    expect_run(f, "scscf add tel:+1", CTL_USAGE, "must be the S-CSCF's sip: URI");
}

/* Runs cmd failing allocation n = 1, 2, ... (ims_alloc, which SQLite and
 * jansson use too) until it completes: each failure must be clean (exit
 * 1 or 2, nothing leaked, the store as it was).  A failure the command
 * absorbs (a log line, SQLite's cache) completes it: undo removes what it
 * made (impi proves it is whole) before the next round. */
static void alloc_loop(struct cfix *f, const char *cmd, const char *impi, const char *undo)
{
    char *before = store_text(f);
    unsigned long n, failures = 0;
    for (n = 1; n < 200000; n++) {
        ims_alloc_fail_at(n, 0);
        int rc = run(f, cmd);
        unsigned long used = ims_alloc_count();
        ims_alloc_fail_at(0, 0);
        if (rc == CTL_OK && used < n)
            break; /* nothing failed: the command needs fewer than n allocations */
        if (rc == CTL_OK) {
            struct ims_auth_data ad;
            cfix_open(f);
            assert_int_equal(ims_store_auth_get(f->st, S(impi), &ad), 0);
            ims_auth_data_clear(&ad);
            assert_int_equal(run(f, undo), CTL_OK);
        } else {
            assert_true(rc == CTL_FAIL || rc == CTL_USAGE);
            failures++;
        }
        char *now = store_text(f);
        if (strcmp(before, now) != 0)
            fail_msg("%s: allocation %lu failed: the store changed (%s)", cmd, n, f->err);
        free(now);
    }
    assert_true(n < 200000);
    assert_true(failures > 10);
    print_message("      %.40s...: %lu allocations failed one at a time\n", cmd, n - 1);
    free(before);
}

static void test_alloc_failures(void **state)
{
    struct cfix *f = *state;
    char cmd[400];
    assert_int_equal(run(f, "user add alice@ims.test --password p"), CTL_OK);
    alloc_loop(f, "user add bob@ims.test --password pw --impu sip:bob@ims.test --impu "
                  "tel:+15550002",
               "bob@ims.test", "sub delete bob@ims.test");
    const char *path = write_file(f, "one.json",
                                  "{\"version\":1,\"subscribers\":[{\"name\":\"s9\",\"impis\":"
                                  "[{\"identity\":\"u9@ims.test\",\"k\":\"" K_HEX "\",\"opc\":"
                                  "\"" OPC_HEX "\"}],\"impus\":[{\"identity\":\"sip:u9@ims.test\","
                                  "\"profile\":\"default\"}]}]}");
    snprintf(cmd, sizeof(cmd), "import %s", path);
    alloc_loop(f, cmd, "u9@ims.test", "sub delete s9");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, cfix_setup, cfix_teardown)
const struct CMUnitTest cli_tests[] = {
    T(test_argument_errors), T(test_user_add),   T(test_failed_command_changes_nothing),
    T(test_import_atomic),   T(test_export_has_no_secret), T(test_json_output),
    T(test_ifc_add),         T(test_no_server_warning),    T(test_keys),
    T(test_scscf_peers),     T(test_keys_created_on_first_use), T(test_alloc_failures),
};
const size_t cli_ntests = sizeof(cli_tests) / sizeof(cli_tests[0]);
