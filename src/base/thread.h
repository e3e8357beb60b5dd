/* thread.h - starting a named thread.
 *
 * Every long-lived thread of the process has a name ("ims-w0", "ims-hss",
 * ...) that top -H, perf --per-thread and /proc/PID/task/N/comm show:
 * without it every thread reads as the process's name and a profile cannot
 * tell a worker from the store flusher. */
#ifndef IMS_BASE_THREAD_H
#define IMS_BASE_THREAD_H

#include <pthread.h>

/* The kernel keeps 15 bytes of a thread's name; a longer one is cut. */
#define IMS_THREAD_NAME_MAX 16

/* pthread_create(t, NULL, fn, arg), then names the thread (a name the
 * kernel refuses leaves the thread running, unnamed).  0, or the error
 * pthread_create returned. */
int ims_thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg);

#endif
