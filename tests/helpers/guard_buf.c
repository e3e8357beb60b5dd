#include "guard_buf.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *guard_buf_new(struct guard_buf *g, const void *bytes, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    g->map_len = (data_pages + 1) * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        g->map = NULL;
        return NULL;
    }
    char *guard = g->map + data_pages * page;
    if (mprotect(guard, page, PROT_NONE) != 0) {
        munmap(g->map, g->map_len);
        g->map = NULL;
        return NULL;
    }
    g->data = guard - len;
    if (len)
        memcpy(g->data, bytes, len);
    return g->data;
}

void guard_buf_free(struct guard_buf *g)
{
    if (g->map)
        munmap(g->map, g->map_len);
    g->map = NULL;
}
