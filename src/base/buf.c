#include "base/buf.h"

#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

void ims_buf_init(struct ims_buf *b, size_t cap)
{
    b->p = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void ims_buf_free(struct ims_buf *b)
{
    ims_free(b->p);
    b->p = NULL;
    b->len = 0;
    b->alloc = 0;
}

void ims_buf_reset(struct ims_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int grow(struct ims_buf *b, size_t need)
{
    if (need + 1 > b->cap + 1 || need < b->len) {
        ims_buf_free(b);
        return IMS_ELIMIT;
    }
    if (need + 1 <= b->alloc)
        return 0;
    size_t a = b->alloc ? b->alloc : 64;
    while (a < need + 1)
        a *= 2;
    if (a > b->cap + 1)
        a = b->cap + 1;
    char *np = ims_realloc(b->p, a);
    if (!np) {
        ims_buf_free(b);
        return IMS_ENOMEM;
    }
    b->p = np;
    b->alloc = a;
    return 0;
}

int ims_buf_add(struct ims_buf *b, const void *p, size_t n)
{
    int rc = grow(b, b->len + n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int ims_buf_add_strs(struct ims_buf *b, const ims_str *parts, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > SIZE_MAX / 2 - total) { /* no real buffer gets here */
            ims_buf_free(b);
            return IMS_ELIMIT;
        }
        total += parts[i].len;
    }
    int rc = grow(b, b->len + total);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len)
            memcpy(b->p + b->len, parts[i].p, parts[i].len);
        b->len += parts[i].len;
    }
    b->p[b->len] = '\0';
    return 0;
}

int ims_buf_add_str(struct ims_buf *b, ims_str s)
{
    return ims_buf_add(b, s.p, s.len);
}

int ims_buf_add_cstr(struct ims_buf *b, const char *s)
{
    return ims_buf_add(b, s, strlen(s));
}

int ims_buf_vprintf(struct ims_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        ims_buf_free(b);
        return IMS_EINVAL;
    }
    int rc = grow(b, b->len + (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ims_buf_printf(struct ims_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ims_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void ims_buf_consume(struct ims_buf *b, size_t n)
{
    if (n >= b->len) {
        ims_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}
