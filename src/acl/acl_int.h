/* acl_int.h - private to src/acl: the dynamic deny group (dyn.c) that
 * holder.c embeds in every holder. */
#ifndef IMS_ACL_ACL_INT_H
#define IMS_ACL_ACL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct acl_dyn;

int acl_dyn_new(struct acl_dyn **out);  /* 0 or IMS_ENOMEM */
void acl_dyn_free(struct acl_dyn *d);   /* NULL is a no-op */
int acl_dyn_add(struct acl_dyn *d, const struct sockaddr *src, uint32_t ttl_ms, uint64_t now_ms);
bool acl_dyn_has(struct acl_dyn *d, const struct sockaddr *src, uint64_t now_ms);
size_t acl_dyn_count(struct acl_dyn *d, uint64_t now_ms);
void acl_dyn_clear(struct acl_dyn *d);

#endif
