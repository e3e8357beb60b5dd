/* milenage.h - the 3GPP MILENAGE algorithm set (TS 35.206) over AES-128.
 *
 * f1 (MAC-A), f1* (MAC-S), f2 (RES), f3 (CK), f4 (IK), f5 (AK), f5* (AK*)
 * and the OPc derivation, with the constants of TS 35.206 §4.1:
 * r1=64 r2=0 r3=32 r4=64 r5=96, c1=0 c2=1 c3=2 c4=4 c5=8 (in the last byte).
 * The kernel is AES-128 through OpenSSL's EVP interface (AES-128-ECB on one
 * block at a time, no padding).
 *
 * All inputs and outputs are caller-owned fixed-size byte arrays; outputs
 * that are not wanted may be NULL.  Intermediate values are wiped before
 * return.  Thread-safe (no shared state).  Nothing here logs.
 *
 * Returns: 0, IMS_ENOMEM (OpenSSL could not allocate a cipher context) or
 * IMS_EBACKEND (OpenSSL refused the operation). */
#ifndef IMS_CRYPTO_MILENAGE_H
#define IMS_CRYPTO_MILENAGE_H

#include <stdint.h>

#define IMS_MILENAGE_K_LEN 16
#define IMS_MILENAGE_OP_LEN 16
#define IMS_MILENAGE_RAND_LEN 16
#define IMS_MILENAGE_SQN_LEN 6
#define IMS_MILENAGE_AMF_LEN 2
#define IMS_MILENAGE_MAC_LEN 8
#define IMS_MILENAGE_RES_LEN 8
#define IMS_MILENAGE_CK_LEN 16
#define IMS_MILENAGE_IK_LEN 16
#define IMS_MILENAGE_AK_LEN 6

/* TS 35.206 §4.1: OPc = OP xor E_K(OP). */
int ims_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16]);

/* f1 and f1*: MAC-A = OUT1[0..63], MAC-S = OUT1[64..127], where
 * OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc,
 * TEMP = E_K(RAND xor OPc), IN1 = SQN||AMF||SQN||AMF.
 * mac_a and/or mac_s may be NULL. */
int ims_milenage_f1(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                    const uint8_t sqn[6], const uint8_t amf[2], uint8_t mac_a[8],
                    uint8_t mac_s[8]);

/* f2, f3, f4, f5 and f5*: RES = OUT2[64..127], AK = OUT2[0..47],
 * CK = OUT3, IK = OUT4, AK* = OUT5[0..47].  Any output may be NULL (the
 * blocks it needs alone are then skipped). */
int ims_milenage_f2345(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
                       uint8_t res[8], uint8_t ck[16], uint8_t ik[16], uint8_t ak[6],
                       uint8_t ak_star[6]);

#endif
