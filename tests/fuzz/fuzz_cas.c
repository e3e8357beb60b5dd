/* fuzz_cas.c - libFuzzer harness for the cloud AS's command language
 * (src/cloudas/cas_cmd.c): the body of a SIP MESSAGE any registered user
 * sends (docs/cloud-as.md).
 *
 * The first byte picks the Content-Type (byte % 4: text/plain,
 * application/json, the JSON type with a parameter and odd case, an
 * unsupported type); the rest is the body.  A command must parse the same
 * way twice, into a struct with nothing left of an earlier one; what is
 * accepted must be one of the verbs with only names of the allowed
 * characters, a port range within 1..65535 and a known protocol; a refusal
 * must say why, within the error buffer given, also a tiny one.  Built
 * without libFuzzer it is just a function (fuzz_cas_replay runs the
 * corpus). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cloudas/cas_int.h"

#include "fuzz.h"

static const char *const ctypes[] = { "text/plain", "application/json",
                                      " Application/JSON ; charset=utf-8", "image/png" };

/* A name or id: 1..63 of letters, digits, '.', '_', '-', NUL-terminated. */
static void check_name(const char *s, size_t cap, bool may_be_empty)
{
    size_t n = strnlen(s, cap);
    CHECK(n < cap);
    CHECK(n > 0 || may_be_empty);
    for (size_t i = 0; i < n; i++)
        CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]));
}

static void check_accepted(const struct cas_cmd *c)
{
    CHECK((unsigned)c->verb <= CAS_QUOTA);
    CHECK(strcmp(cas_verb_name(c->verb), "?") != 0);
    switch (c->verb) {
    case CAS_SHOW:
    case CAS_START:
    case CAS_STOP:
    case CAS_DELETE:
    case CAS_SG_DELETE:
        check_name(c->name, sizeof(c->name), false);
        CHECK(!c->flavor[0] && !c->image[0]);
        break;
    case CAS_CREATE:
        check_name(c->name, sizeof(c->name), false);
        check_name(c->flavor, sizeof(c->flavor), true);
        check_name(c->image, sizeof(c->image), true);
        break;
    case CAS_SG_ADD:
        CHECK(!strcmp(c->proto, "tcp") || !strcmp(c->proto, "udp") || !strcmp(c->proto, "icmp"));
        CHECK(c->port_min >= 1 && c->port_min <= c->port_max && c->port_max <= 65535);
        CHECK(strnlen(c->cidr, sizeof(c->cidr)) < sizeof(c->cidr) && strchr(c->cidr, '/'));
        break;
    default: /* help, list, quota, secgroup list: nothing else set */
        CHECK(!c->name[0] && !c->flavor[0] && !c->image[0] && !c->proto[0] && !c->cidr[0]);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size == 0)
        return 0;
    ims_str ctype = ims_str_cstr(ctypes[data[0] % 4]);
    ims_str body = ims_str_make((const char *)data + 1, size - 1);
    struct cas_cmd a, b;
    char ea[256], eb[8];
    /* different leftovers in the two structs: the parse must replace them all */
    memset(&a, 0xa5, sizeof(a));
    memset(&b, 0x5a, sizeof(b));
    ea[0] = eb[0] = '\0';
    int ra = cas_cmd_parse(ctype, body, &a, ea, sizeof(ea));
    int rb = cas_cmd_parse(ctype, body, &b, eb, sizeof(eb));
    CHECK(ra == rb);
    if (ra == 0) {
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        check_accepted(&a);
    } else {
        CHECK(ra == IMS_EPROTO);
        CHECK(ea[0] && strnlen(ea, sizeof(ea)) < sizeof(ea));
        CHECK(strnlen(eb, sizeof(eb)) < sizeof(eb) && strncmp(ea, eb, sizeof(eb) - 1) == 0);
    }
    return 0;
}
