/* e2e_hss.h - the subscribers hss_seed provisions and cx_client expects. */
#ifndef IMS_E2E_HSS_H
#define IMS_E2E_HSS_H

#include <stdint.h>
#include <stdlib.h>

#define E2E_REALM "ims.test"
#define E2E_ALICE_IMPI "alice@ims.test"
#define E2E_ALICE_IMPU "sip:alice@ims.test"
#define E2E_ALICE_TEL "tel:+15550001"
#define E2E_ALICE_PW "alice-secret"
#define E2E_BOB_IMPI "bob@ims.test"
#define E2E_BOB_IMPU "sip:bob@ims.test"
#define E2E_CAROL_IMPI "carol@ims.test"
#define E2E_CAROL_IMPU "sip:carol@ims.test"
#define E2E_SCSCF "sip:scscf.ims.test:6060"

/* TS 35.208 test set 1 K and OPc (only ever test data). */
static const uint8_t e2e_k[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                   0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t e2e_opc[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                     0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };

#endif
