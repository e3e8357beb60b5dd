/* thread.c - ims_thread_start (thread.h). */
#define _GNU_SOURCE /* pthread_setname_np */
#include "base/thread.h"

#include "base/str.h"

int ims_thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc == 0 && name) {
        char cut[IMS_THREAD_NAME_MAX];
        ims_cstr_copy(name, cut, sizeof(cut));
        (void)pthread_setname_np(*t, cut); /* a name only: the thread runs either way */
    }
    return rc;
}
