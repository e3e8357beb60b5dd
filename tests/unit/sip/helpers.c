#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip_tests.h"

int tmsg_parse(struct tmsg *t, const char *text, size_t len, bool stream)
{
    char *p = guard_buf_new(&t->g, text, len);
    assert_non_null(p);
    t->rc = ims_sip_parse(p, len, stream, &t->m, t->h, SIP_MAX_HEADERS_DEFAULT);
    return t->rc;
}

void tmsg_free(struct tmsg *t)
{
    guard_buf_free(&t->g);
}

const char *corpus_dir(void)
{
    const char *d = getenv("IMS_CORPUS");
    return d && *d ? d : IMS_CORPUS_DEFAULT;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}
