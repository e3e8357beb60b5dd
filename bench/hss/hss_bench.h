/* hss_bench.h - the synthetic subscribers of the HSS benchmark and crash
 * test: what hss_bench_seed provisions and what hss_load asks for.
 *
 * Subscriber i (0 <= i < N), realm ims.bench:
 *   subscription  u<i>              (7 digits, zero-padded)
 *   IMPI          u<i>@ims.bench    all schemes; Digest password "pw-<i>";
 *                                   AKA K and OPc from hss_bench_keys(i)
 *   IMPU          sip:u<i>@ims.bench, implicit set 1, service profile "bench"
 *
 * The keys are test data derived from the index (the TS 35.208 test set 1
 * K and OPc with the index mixed into their last bytes), so the client can
 * check every AUTN it gets (ims_aka_ue_check) without reading the store.
 * Never use them for anything else. */
#ifndef IMS_BENCH_HSS_BENCH_H
#define IMS_BENCH_HSS_BENCH_H

#include <stdint.h>
#include <stdio.h>

#define HB_REALM "ims.bench"
#define HB_SCSCF "sip:scscf.ims.bench:6060"
#define HB_PROFILE "bench"
#define HB_ID_MAX 64

static inline void hb_sub(uint32_t i, char out[HB_ID_MAX])
{
    snprintf(out, HB_ID_MAX, "u%07u", i);
}
static inline void hb_impi(uint32_t i, char out[HB_ID_MAX])
{
    snprintf(out, HB_ID_MAX, "u%07u@" HB_REALM, i);
}
static inline void hb_impu(uint32_t i, char out[HB_ID_MAX])
{
    snprintf(out, HB_ID_MAX, "sip:u%07u@" HB_REALM, i);
}
static inline void hb_password(uint32_t i, char out[HB_ID_MAX])
{
    snprintf(out, HB_ID_MAX, "pw-%u", i);
}

static inline void hb_keys(uint32_t i, uint8_t k[16], uint8_t opc[16])
{
    static const uint8_t k0[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                    0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
    static const uint8_t opc0[16] = { 0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e,
                                      0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf };
    for (int b = 0; b < 16; b++) {
        k[b] = k0[b];
        opc[b] = opc0[b];
    }
    for (int b = 0; b < 4; b++) {
        k[12 + b] ^= (uint8_t)(i >> (8 * b));
        opc[12 + b] ^= (uint8_t)(i >> (8 * (3 - b)));
    }
}

#endif
