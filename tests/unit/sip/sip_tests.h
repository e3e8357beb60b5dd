/* sip_tests.h - shared declarations for the SIP unit tests (one cmocka
 * executable, one group per source file). */
#ifndef IMS_TEST_SIP_TESTS_H
#define IMS_TEST_SIP_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/str.h"
#include "guard_buf.h"
#include "sip/msg.h"

#define GROUP(name)                                                                                \
    extern const struct CMUnitTest name##_tests[];                                                 \
    extern const size_t name##_ntests
GROUP(uri);
GROUP(nameaddr);
GROUP(via);
GROUP(auth);
GROUP(misc);
GROUP(msg);
GROUP(corpus);
GROUP(build);
#undef GROUP

#define NTESTS(arr) (sizeof(arr) / sizeof((arr)[0]))

/* assert that an ims_str equals a literal */
#define assert_str(s, lit)                                                                         \
    do {                                                                                           \
        ims_str s_ = (s);                                                                          \
        if (!ims_str_eq(s_, IMS_S(lit)))                                                           \
            fail_msg("%s: got \"%.*s\" (%zu), want \"%s\"", #s, IMS_SF(s_), s_.len, lit);          \
    } while (0)

/* A message kept flush against a PROT_NONE page for the whole test. */
struct tmsg {
    struct guard_buf g;
    struct sip_msg m;
    struct sip_hdr h[SIP_MAX_HEADERS_DEFAULT];
    int rc;
};

/* Parses text (CRLF line ends written as "\r\n" by the caller) placed on a
 * guard page; returns the ims_sip_parse() result.  Free with tmsg_free(). */
int tmsg_parse(struct tmsg *t, const char *text, size_t len, bool stream);
void tmsg_free(struct tmsg *t);
#define TPARSE(t, lit, stream) tmsg_parse((t), (lit), sizeof(lit) - 1, (stream))

/* Reads a whole file (tests/corpus relative path or absolute); NULL if absent. */
char *read_file(const char *path, size_t *len);
/* $IMS_CORPUS or the compiled-in default. */
const char *corpus_dir(void);

#endif
