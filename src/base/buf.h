/* buf.h - an owned, growing byte buffer with a hard cap (after curl's dynbuf).
 *
 * A buffer never grows past `cap`; an append that would, or that fails to
 * allocate, frees the contents and leaves the buffer empty and valid, so a
 * half-built message is never sent.  Contents are always NUL-terminated for
 * convenience (the NUL is not counted in len). */
#ifndef IMS_BASE_BUF_H
#define IMS_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/str.h"

struct ims_buf {
    char *p;
    size_t len;
    size_t alloc;
    size_t cap;
};

void ims_buf_init(struct ims_buf *b, size_t cap);
void ims_buf_free(struct ims_buf *b);  /* frees contents; b stays usable */
void ims_buf_reset(struct ims_buf *b); /* len = 0, keeps the allocation */
/* Each append returns 0, IMS_ELIMIT (cap) or IMS_ENOMEM; on error b is empty. */
int ims_buf_add(struct ims_buf *b, const void *p, size_t n);
int ims_buf_add_str(struct ims_buf *b, ims_str s);
int ims_buf_add_cstr(struct ims_buf *b, const char *s);
/* Appends parts[0, n) in one growth: what ims_buf_printf does for "%s%s..."
 * without parsing a format. */
int ims_buf_add_strs(struct ims_buf *b, const ims_str *parts, size_t n);
#define IMS_BUF_CAT(b, ...)                                                                 \
    ims_buf_add_strs((b), (const ims_str[]){ __VA_ARGS__ },                                 \
                     sizeof((const ims_str[]){ __VA_ARGS__ }) / sizeof(ims_str))
int ims_buf_printf(struct ims_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ims_buf_vprintf(struct ims_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static inline ims_str ims_buf_str(const struct ims_buf *b)
{
    return ims_str_make(b->p, b->len);
}
/* Removes the first n bytes (stream consumers). */
void ims_buf_consume(struct ims_buf *b, size_t n);

#endif
