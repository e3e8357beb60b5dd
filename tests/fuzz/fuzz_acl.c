/* fuzz_acl.c - libFuzzer harness for the security-group ACLs every listener
 * applies: what Neutron answers (a security group, or a list of them by
 * name: src/acl/neutron.c), the catalog of the Keystone token its client
 * reads Neutron's URL from, and the operator's rules file (src/acl/rules.c).
 *
 * Input: a mode byte (% 3: 0 a Neutron body for group "ims-edge", with no
 * rules file; 1 the same bytes as a rules file; 2 a token body, the
 * "network" service's URL), then the bytes.
 *
 * What must hold for any input (CHECK traps, with the input):
 *   - the same bytes get the same verdict (and rule count) twice;
 *   - an accepted set answers a match for IPv4, IPv6 and v4-mapped sources
 *     over UDP and TCP, its active rules no more than its rules;
 *   - a refusal says why (err filled), and hands out nothing;
 *   - a catalog URL fits its buffer, is not empty and has no trailing '/'.
 * FUZZ_ACL_DUMP set: each verdict on stderr. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "acl/neutron.h"
#include "base/alloc.h"
#include "base/err.h"

#include "fuzz.h"

static void probe(const struct ims_acl *acl)
{
    CHECK(ims_acl_active_rules(acl) <= ims_acl_rules(acl));
    struct sockaddr_in v4 = { .sin_family = AF_INET };
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 }, mapped = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
    inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &mapped.sin6_addr);
    static const uint16_t ports[] = { 0, 1, 5060, 3868, 65535 };
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        for (int k = 0; k < 2; k++) {
            int proto = k ? IMS_ACL_TCP : IMS_ACL_UDP;
            bool a = ims_acl_match(acl, proto, ports[i], (struct sockaddr *)&v4, false);
            bool b = ims_acl_match(acl, proto, ports[i], (struct sockaddr *)&mapped, false);
            CHECK(a == b); /* a v4-mapped source is matched as IPv4 (acl.h) */
            ims_acl_match(acl, proto, ports[i], (struct sockaddr *)&v6, true);
        }
    }
}

static int build(uint8_t mode, const char *p, size_t len, struct ims_acl **acl, char *gid_out,
                 size_t gid_cap, char *err, size_t errsz)
{
    char *gid = NULL;
    int rc;
    err[0] = '\0';
    *acl = NULL;
    if (mode == 0) {
        rc = ims_acl_neutron_build("ims-edge", p, len, NULL, 0, acl, &gid, err, errsz);
    } else {
        rc = ims_acl_parse("rules.json", p, len, acl, err, errsz);
    }
    gid_out[0] = '\0';
    if (gid) {
        CHECK(rc == 0);
        strncat(gid_out, gid, gid_cap - 1);
        ims_free(gid);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    const char *p;
    size_t len;
    if (!fuzz_mode(data, size, &mode, &p, &len))
        return 0;
    fuzz_quiet();
    mode %= 3;
    /* the bytes alone in a buffer of their size: ASan sees any read past */
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, p, len);
    if (mode == 2) {
        char url[256], again[256];
        int rc = ims_acl_neutron_catalog_url(body, len, "network", url, sizeof(url));
        CHECK(rc == ims_acl_neutron_catalog_url(body, len, "network", again, sizeof(again)));
        CHECK(rc == 0 || rc == IMS_ENOENT || rc == IMS_EPROTO || rc == IMS_ELIMIT);
        if (getenv("FUZZ_ACL_DUMP"))
            fprintf(stderr, "mode 2: rc %d url %s\n", rc, rc == 0 ? url : "");
        if (rc == 0) {
            size_t n = strnlen(url, sizeof(url));
            CHECK(n > 0 && n < sizeof(url) && url[n - 1] != '/' && strcmp(url, again) == 0);
        }
        free(body);
        return 0;
    }
    struct ims_acl *a = NULL, *b = NULL;
    char err_a[256], err_b[256], gid_a[128], gid_b[128];
    int ra = build(mode, body, len, &a, gid_a, sizeof(gid_a), err_a, sizeof(err_a));
    int rb = build(mode, body, len, &b, gid_b, sizeof(gid_b), err_b, sizeof(err_b));
    CHECK(ra == rb);
    if (getenv("FUZZ_ACL_DUMP"))
        fprintf(stderr, "mode %u: rc %d rules %zu group %s err %s\n", mode, ra,
                a ? ims_acl_rules(a) : 0, gid_a, err_a);
    if (ra == 0) {
        CHECK(a && b && ims_acl_rules(a) == ims_acl_rules(b) && strcmp(gid_a, gid_b) == 0);
        probe(a);
    } else {
        CHECK(!a && !b);
        CHECK(ra == IMS_ENOENT || err_a[0] != '\0'); /* ENOENT: no such group */
        CHECK(ra == IMS_EINVAL || ra == IMS_ENOENT || ra == IMS_ELIMIT || ra == IMS_ENOMEM);
    }
    ims_acl_free(a);
    ims_acl_free(b);
    free(body);
    return 0;
}
