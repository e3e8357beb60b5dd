/* alloc.h - every heap allocation in imscloud goes through here.
 *
 * Why: tests make the Nth allocation fail (tests/helpers/fail_alloc) and check
 * that each caller returns IMS_ENOMEM cleanly and leaks nothing.  In the request
 * path a NULL return is an ordinary error; only start-up code may abort. */
#ifndef IMS_BASE_ALLOC_H
#define IMS_BASE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *ims_alloc(size_t n);              /* uninitialised; NULL on failure */
void *ims_calloc(size_t nmemb, size_t n); /* zeroed; NULL on failure or overflow */
void *ims_realloc(void *p, size_t n);   /* NULL on failure, p untouched */
void ims_free(void *p);
char *ims_strndup(const char *s, size_t n); /* NUL-terminated copy; NULL on failure */

/* Zeroes n bytes at p, and the compiler may not drop it as a dead store:
 * for secrets before their memory is freed or reused.  glibc's
 * explicit_bzero runs at memset's speed; OPENSSL_cleanse, used before,
 * stores 8 bytes at a time (5x slower on the few KiB of a Cx answer or an
 * S-CSCF challenge, which every registration wipes). */
void ims_wipe(void *p, size_t n);

/* For a long-running server, once, before its threads start: glibc keeps
 * up to IMS_ALLOC_TRIM_KEEP bytes free at the top of each arena instead of
 * handing them back to the kernel at 128 KiB (M_TRIM_THRESHOLD).  Returns
 * false, changing nothing, when GLIBC_TUNABLES sets the threshold already
 * (the operator's choice wins) or mallopt refuses. */
#define IMS_ALLOC_TRIM_KEEP (8u << 20)
bool ims_alloc_tune_server(void);

/* Fault injection: from now on, fail allocation number `n` (1-based, counted
 * from this call) and every later one if `sticky`.  n == 0 disables it.
 * Thread-safe counters; meant for tests only: until the first call nothing
 * is counted (an allocation costs one relaxed load), from then on every
 * allocation bumps a shared counter. */
void ims_alloc_fail_at(unsigned long n, int sticky);
/* Allocations counted since the last ims_alloc_fail_at(). */
unsigned long ims_alloc_count(void);

#endif
