/* fuzz_dia_in.h - what fuzz_dia and fuzz_hss share: a fuzz input made into a
 * Diameter message as freeDiameter receives it and node.c's receive hook
 * leaves it, and a message's round trip over the wire.  Include after
 * dia/codec.h (first in a harness: it replaces freeDiameter's LOG_*). */
#ifndef IMS_TESTS_FUZZ_DIA_IN_H
#define IMS_TESTS_FUZZ_DIA_IN_H

#include <stdlib.h>
#include <string.h>

#include "dia/codec.h"

#include "fuzz.h"

/* freeDiameter's core and our dictionary, once per process. */
static inline void fuzz_dia_init(void)
{
    static bool ready;
    if (ready)
        return;
    fuzz_quiet();
    fd_g_debug_lvl = FD_LOG_FATAL;
    if (fd_core_initialize() != 0 || dia_dict_load() != 0)
        abort();
    ready = true;
}

/* The input's first byte picks the command (% 8: UAR, SAR, LIR, MAR, RTR,
 * PPR, UDR, PUR) and, with its top bit, an answer; the rest is the AVP area
 * behind a 20-byte header written here (the fuzzer spends its time on AVPs,
 * not on the header freeDiameter checks first).  Returns the message
 * fd_msg_parse_buffer() made of it, with what node.c's HOOK_MESSAGE_RECEIVED
 * removes removed, not yet parsed with the dictionary (the caller frees
 * it), or NULL when freeDiameter refused the bytes. */
static inline struct msg *fuzz_dia_received(const uint8_t *data, size_t size, unsigned *cmd,
                                            bool *request)
{
    if (size == 0 || size - 1 > (1u << 16))
        return NULL;
    *cmd = DIA_CMD_UAR + data[0] % 8u;
    *request = !(data[0] & 0x80);
    uint32_t app = *cmd >= DIA_CMD_UDR ? DIA_APP_SH : DIA_APP_CX;
    size_t len = 20 + size - 1;
    uint8_t *buf = malloc(len);
    if (!buf)
        return NULL;
    uint8_t hdr[20] = { 1, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                        (uint8_t)(*request ? 0xc0 : 0x40), 0, (uint8_t)(*cmd >> 8),
                        (uint8_t)*cmd, (uint8_t)(app >> 24), (uint8_t)(app >> 16),
                        (uint8_t)(app >> 8), (uint8_t)app, 0, 0, 0, 1, 0, 0, 0, 2 };
    memcpy(buf, hdr, sizeof(hdr));
    memcpy(buf + 20, data + 1, size - 1);
    struct msg *m = NULL;
    if (fd_msg_parse_buffer(&buf, len, &m) != 0) {
        free(buf); /* not taken */
        return NULL;
    }
    dia_drop_bad_session_id(m, NULL);
    dia_drop_bad_proxy_info(m, NULL);
    return m;
}

/* Serialises m (freed) and parses the bytes back with the dictionary. */
static inline struct msg *fuzz_dia_wire(struct msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct msg *out = NULL;
    struct fd_pei pei;
    CHECK(fd_msg_bufferize(m, &buf, &len) == 0);
    fd_msg_free(m);
    CHECK(fd_msg_parse_buffer(&buf, len, &out) == 0); /* takes buf */
    memset(&pei, 0, sizeof(pei));
    CHECK(fd_msg_parse_dict(out, fd_g_config->cnf_dict, &pei) == 0);
    return out;
}

#endif
