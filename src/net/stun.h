/* stun.h - the STUN Binding server a SIP edge runs on its UDP ports for
 * RFC 5626 keep-alives (§4.4.2, §8): a UE behind NAT sends a Binding
 * request over its flow every Flow-Timer seconds and learns from the
 * answer whether its public address changed.
 *
 * Only what that needs (RFC 8489 §6.3, no authentication): a Binding
 * request gets a success response with XOR-MAPPED-ADDRESS (MAPPED-ADDRESS
 * for an RFC 3489 client, whose request lacks the magic cookie) and, when
 * the request had one, FINGERPRINT; a request with a comprehension-required
 * attribute we do not know gets 420 with UNKNOWN-ATTRIBUTES (so does a
 * CHANGE-REQUEST for another address or port: there is none); indications and
 * everything malformed are dropped (§6.3: discarded, no answer).
 *
 * Pure functions on caller buffers: the UDP transport demultiplexes (SIP
 * never starts with a byte below 0x40, STUN always does) and sends. */
#ifndef IMS_NET_STUN_H
#define IMS_NET_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/transport.h"

#define IMS_STUN_HDR 20
#define IMS_STUN_RSP_MAX 128 /* header, address (24), error + 8 unknowns, fingerprint */

/* Could p be a STUN message (RFC 8489 §5: the first two bits zero, a
 * length that is a multiple of 4 and matches n)?  Cheap: for demultiplexing. */
bool ims_stun_looks_like(const uint8_t *p, size_t n);

/* The answer to the n bytes at p from src, written to out.  Returns its
 * length, or 0 when nothing is to be sent (not a Binding request, an
 * indication, malformed). */
size_t ims_stun_answer(const uint8_t *p, size_t n, const struct ims_addr *src,
                       uint8_t out[IMS_STUN_RSP_MAX]);

#endif
