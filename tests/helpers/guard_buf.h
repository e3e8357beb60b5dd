/* guard_buf.h - test helper: copies bytes so that they end flush against a
 * PROT_NONE page, so any read past the end faults at once (after
 * picohttpparser's test.c). */
#ifndef IMS_TEST_GUARD_BUF_H
#define IMS_TEST_GUARD_BUF_H

#include <stddef.h>

struct guard_buf {
    char *map;
    size_t map_len;
    char *data; /* len bytes ending at the guard page */
};

/* Returns data (or NULL on failure); release with guard_buf_free(). */
char *guard_buf_new(struct guard_buf *g, const void *bytes, size_t len);
void guard_buf_free(struct guard_buf *g);

#endif
