/* policy_cli.c - the C side of the oslo.policy differential test.
 *
 * Reads one case per line on stdin, a JSON object
 *   {"policy": "<YAML or JSON text>", "rule": "name",
 *    "creds": {"user_id": "u", "roles": ["member"], "methods": ["totp"],
 *              "is_admin": false, ...},
 *    "target": {"target.project_id": "p1", ...}}
 * and writes one line per case: "allow <rule>", "deny <rule>" or
 * "loaderror <message>".  oslo_diff.py feeds the same cases to oslo.policy. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "policy/policy.h"

#define MAX_LIST 32
#define MAX_KV 32

static const char *opt_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static size_t str_list(json_t *o, const char *k, const char **out)
{
    json_t *a = json_object_get(o, k), *v;
    size_t i, n = 0;
    json_array_foreach(a, i, v) {
        if (n < MAX_LIST && json_is_string(v))
            out[n++] = json_string_value(v);
    }
    return n;
}

static void run_case(const char *line)
{
    json_error_t jerr;
    json_t *c = json_loads(line, 0, &jerr);
    if (!c) {
        printf("badcase %s\n", jerr.text);
        return;
    }
    json_t *pt = json_object_get(c, "policy");
    struct ims_policy *pol = NULL;
    char err[256];
    if (ims_policy_load_mem(json_string_value(pt), json_string_length(pt), "case", &pol, err,
                            sizeof(err)) != 0) {
        printf("loaderror %s\n", err);
        json_decref(c);
        return;
    }
    json_t *cr = json_object_get(c, "creds");
    const char *roles[MAX_LIST], *methods[MAX_LIST];
    struct ims_policy_creds creds = {
        .user_id = opt_str(cr, "user_id"),
        .user_domain_id = opt_str(cr, "user_domain_id"),
        .project_id = opt_str(cr, "project_id"),
        .project_domain_id = opt_str(cr, "project_domain_id"),
        .domain_id = opt_str(cr, "domain_id"),
        .roles = roles,
        .n_roles = str_list(cr, "roles", roles),
        .methods = methods,
        .n_methods = str_list(cr, "methods", methods),
        .is_admin = json_is_true(json_object_get(cr, "is_admin")),
    };
    struct ims_policy_kv kv[MAX_KV];
    struct ims_policy_target target = { kv, 0 };
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(c, "target"), key, val) {
        if (target.n < MAX_KV && json_is_string(val))
            kv[target.n++] = (struct ims_policy_kv){ key, json_string_value(val) };
    }
    struct ims_policy_reason why;
    bool ok = ims_policy_enforce(pol, opt_str(c, "rule"), &creds, &target, &why);
    printf("%s %s\n", ok ? "allow" : "deny", why.rule ? why.rule : "-");
    ims_policy_free(pol);
    json_decref(c);
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ims_log_set_level(IMS_LOG_ERR); /* unparsable rules are the point here */
    while (getline(&line, &cap, stdin) > 0) {
        run_case(line);
        fflush(stdout);
    }
    free(line);
    return 0;
}
