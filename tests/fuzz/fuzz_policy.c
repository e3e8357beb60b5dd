/* fuzz_policy.c - libFuzzer harness for the policy engine (src/policy).
 *
 * Policy files are operator input, but a typo must never crash the server.
 * The first byte picks the mode: 'F' = the rest is a whole policy file
 * (the JSON and YAML loaders, then every compiled rule through enforce);
 * anything else = the rest is the text of one rule "a", compiled next to
 * rules that reference it (rule:a, a cycle through it, the default rule),
 * then enforced for two credential sets and targets.  Enforcing twice must
 * give the same answer, and a decided rule must have a name.  Built without
 * libFuzzer it is just a function (fuzz_policy_replay runs the corpus). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "policy/policy.h"
#include "policy/policy_int.h"

#include "fuzz.h"

static const char *const roles[] = { "member", "Admin" };
static const char *const methods[] = { "password", "totp" };
static const struct ims_policy_creds creds[2] = {
    { .user_id = "u1", .project_id = "p1", .roles = roles, .n_roles = 2, .methods = methods,
      .n_methods = 2, .is_admin = true },
    { .user_id = "", .domain_id = "d" },
};
static const struct ims_policy_kv kv[] = { { "target.project_id", "p1" }, { "user_id", "u1" },
                                           { "a(b)c", "x" } };
static const struct ims_policy_target targets[2] = { { kv, 3 }, { NULL, 0 } };

static void enforce_all(const struct ims_policy *p)
{
    static const char *const names[] = { "a", "b", "c", "default", "zz", "" };
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        for (int i = 0; i < 2; i++) {
            struct ims_policy_reason r1, r2;
            bool v1 = ims_policy_enforce(p, names[n], &creds[i], &targets[i], &r1);
            bool v2 = ims_policy_enforce(p, names[n], &creds[i], &targets[i], &r2);
            CHECK(v1 == v2 && r1.why == r2.why);
            CHECK(r1.rule != NULL);
            CHECK(!v1 || r1.why == IMS_POLICY_DECIDED);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    uint8_t mode;
    const char *text;
    size_t len;
    if (!fuzz_mode(data, size, &mode, &text, &len))
        return 0;
    struct ims_policy *p = NULL;
    if (mode == 'F') {
        if (ims_policy_load_mem(text, len, "fuzz", &p, NULL, 0) == 0) {
            enforce_all(p);
            ims_policy_free(p);
        }
        return 0;
    }
    const struct pol_src src[] = {
        { "a", 1, text, len },
        { "b", 1, "rule:a or role:x", 16 },
        { "c", 1, "not rule:a and rule:c", 21 },
        { "default", 7, text, len },
    };
    if (pol_build(src, 4, "fuzz", &p, NULL, 0) == 0) {
        enforce_all(p);
        ims_policy_free(p);
    }
    return 0;
}
