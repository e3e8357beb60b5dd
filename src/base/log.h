/* log.h - levelled key=value logging, one event per line on stderr.
 *
 * The level is checked before any formatting.  Print slices with IMS_SF().
 * Never log secrets (keys, HA1, tokens, passwords).  Use ims_log_peer_bytes()
 * for attacker-controlled input: it prints at most 100 bytes, escaped. */
#ifndef IMS_BASE_LOG_H
#define IMS_BASE_LOG_H

#include <stddef.h>

enum ims_log_level { IMS_LOG_ERR = 0, IMS_LOG_WARN, IMS_LOG_NOTICE, IMS_LOG_INFO, IMS_LOG_DEBUG };

extern int ims_log_level;

void ims_log_set_level(enum ims_log_level lvl);
/* Parses "err|warn|notice|info|debug"; returns 0 or IMS_EINVAL. */
int ims_log_level_parse(const char *name, enum ims_log_level *out);
void ims_log_write(enum ims_log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Escapes up to 100 bytes of p into out (size >= 420) for a log line. */
const char *ims_log_peer_bytes(const void *p, size_t n, char *out, size_t outsz);

#define IMS_LOG(lvl, mod, ...)                                                                     \
    do {                                                                                           \
        if ((int)(lvl) <= ims_log_level)                                                           \
            ims_log_write((lvl), (mod), __VA_ARGS__);                                              \
    } while (0)
#define LOG_E(mod, ...) IMS_LOG(IMS_LOG_ERR, mod, __VA_ARGS__)
#define LOG_W(mod, ...) IMS_LOG(IMS_LOG_WARN, mod, __VA_ARGS__)
#define LOG_N(mod, ...) IMS_LOG(IMS_LOG_NOTICE, mod, __VA_ARGS__)
#define LOG_I(mod, ...) IMS_LOG(IMS_LOG_INFO, mod, __VA_ARGS__)
#define LOG_D(mod, ...) IMS_LOG(IMS_LOG_DEBUG, mod, __VA_ARGS__)

#endif
