/* aka_usim - the USIM and Digest-AKAv1-MD5 client side of the AKA
 * re-synchronisation test (t_aka.sh), for sipp: Debian's sipp 3.6.1 checks
 * AUTN's MAC but never the SQN, so it can neither refuse a stale
 * challenge nor compute AUTS.
 *
 *   aka_usim init STATE SEQ_MS
 *       a USIM whose highest accepted SEQ is SEQ_MS (TS 33.102 Annex C)
 *   aka_usim answer STATE OUT ADDR PORT CALL_ID USER REALM URI NONCE [forge]
 *       answers the 401 whose nonce is NONCE (base64 RAND || AUTN, RFC 3310
 *       §3.2) the way a USIM and its UE would, writes the Authorization
 *       line to OUT, then sends a NOTIFY with CALL_ID to ADDR:PORT (sipp's
 *       <exec> does not wait for its command; the NOTIFY wakes the call):
 *       - AUTN's MAC-A wrong: says so, writes nothing and exits 1;
 *       - SEQ not fresh (SEQ <= SEQ_MS, or more than Δ ahead of it, Annex
 *         C.2.1): AUTS = (SQN_MS xor AK*) || MAC-S with auts= (RFC 3310
 *         §3.4; the response is computed with an empty password);
 *       - fresh: SEQ_MS = SEQ, response computed with RES as the password.
 *       forge: the AUTS is made with another K (an attacker's), claiming
 *       SEQ_MS; the state is not changed.
 *
 * K and OP are TS 35.208 test set 1, as ims_seed stores them (test data
 * only).  The USIM side is imscore's (ims_aka_ue_check, ims_aka_auts_make,
 * whose Milenage the unit tests check against TS 35.208); the Digest
 * response is computed here with OpenSSL, apart from the server's code.
 * Each answer prints one line saying what the USIM decided.
 * Exit 0, 1 (refused or failed, with a message), 2 (usage). */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/str.h"
#include "crypto/aka.h"
#include "crypto/encode.h"
#include "crypto/milenage.h"

static const uint8_t k1[16] = { 0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f,
                                0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc };
static const uint8_t op1[16] = { 0xcd, 0xc2, 0x02, 0xd5, 0x12, 0x3e, 0x20, 0xf6,
                                 0x2b, 0x6d, 0x67, 0x6a, 0xc7, 0x2c, 0xb3, 0x18 };

static int fail(const char *msg, const char *arg)
{
    fprintf(stderr, "aka_usim: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 1;
}

static int state_read(const char *path, uint64_t *seq_ms)
{
    FILE *f = fopen(path, "r");
    unsigned long long v;
    int ok = f && fscanf(f, "%llu", &v) == 1;
    if (f)
        fclose(f);
    if (!ok || v > IMS_AKA_SEQ_MAX)
        return fail("no USIM state (aka_usim init first)", path);
    *seq_ms = v;
    return 0;
}

static int state_write(const char *path, uint64_t seq_ms)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%llu\n", (unsigned long long)seq_ms) < 0 || fclose(f) != 0)
        return fail("cannot write the USIM state", tmp);
    return rename(tmp, path) == 0 ? 0 : fail("cannot write the USIM state", path);
}

/* lower-case hex MD5 of the n parts joined by ':' (RFC 2617 §3.2.2) */
static int md5_hex(char out[33], const ims_str *parts, size_t n)
{
    uint8_t d[16];
    unsigned dl = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_md5(), NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = (i == 0 || EVP_DigestUpdate(c, ":", 1)) && EVP_DigestUpdate(c, parts[i].p, parts[i].len);
    ok = ok && EVP_DigestFinal_ex(c, d, &dl) && dl == 16;
    EVP_MD_CTX_free(c);
    if (!ok)
        return fail("MD5 failed", NULL);
    ims_hex_encode(d, 16, out);
    return 0;
}

/* One datagram: the NOTIFY that wakes the sipp call CALL_ID. */
static int wake(const char *addr, const char *port, const char *callid)
{
    char host[64];
    size_t n = strlen(addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') /* sipp's [local_ip] of ::1 */
        snprintf(host, sizeof(host), "%.*s", (int)(n - 2), addr + 1);
    else
        snprintf(host, sizeof(host), "%s", addr);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return fail("bad address", addr);
    char msg[1024];
    int len = snprintf(msg, sizeof(msg),
                       "NOTIFY sip:ue@%s:%s SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP %s:9;branch=z9hG4bKusim%d\r\n"
                       "Max-Forwards: 70\r\n"
                       "From: <sip:usim@ims.test>;tag=u1\r\n"
                       "To: <sip:ue@ims.test>\r\n"
                       "Call-ID: %s\r\n"
                       "CSeq: 1 NOTIFY\r\n"
                       "Event: auth-ready\r\n"
                       "Content-Length: 0\r\n\r\n",
                       addr, port, addr, (int)getpid(), callid);
    int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
    bool sent = fd >= 0 && len > 0 && (size_t)len < sizeof(msg) &&
                sendto(fd, msg, (size_t)len, 0, ai->ai_addr, ai->ai_addrlen) == len;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return sent ? 0 : fail("cannot send the wake-up NOTIFY to port", port);
}

static int answer(char **a, bool forge)
{
    const char *state = a[0], *out = a[1], *addr = a[2], *port = a[3], *callid = a[4];
    ims_str user = ims_str_cstr(a[5]), realm = ims_str_cstr(a[6]), uri = ims_str_cstr(a[7]);
    ims_str nonce = ims_str_cstr(a[8]);
    uint64_t seq_ms = 0;
    if (state_read(state, &seq_ms))
        return 1;
    uint8_t opc[16], ra[48], res[8];
    size_t n = 0;
    if (ims_milenage_opc(k1, op1, opc) != 0)
        return fail("OPc failed", NULL);
    if (ims_b64_decode(nonce, ra, sizeof(ra), &n) != 0 || n < 32)
        return fail("the nonce is not base64(RAND || AUTN)", a[8]);
    uint64_t sqn;
    uint8_t amf[2];
    if (ims_aka_ue_check(k1, opc, ra, ra + 16, &sqn, amf, res, NULL, NULL) != 0)
        return fail("AUTN's MAC-A is wrong: the network is not authentic; no answer", a[8]);
    uint64_t seq = ims_aka_sqn_seq(sqn);
    bool fresh = seq > seq_ms && seq - seq_ms <= IMS_AKA_DELTA;

    char auts_b64[IMS_B64_LEN(IMS_AKA_AUTS_LEN) + 1] = "";
    ims_str password = IMS_STR_NULL; /* RFC 3310 §3.4: empty when sending AUTS */
    if (!fresh || forge) {
        uint8_t auts[IMS_AKA_AUTS_LEN], kx[16], opcx[16];
        memcpy(kx, k1, 16);
        if (forge)
            kx[0] ^= 0x01;
        if (ims_milenage_opc(kx, op1, opcx) != 0 ||
            ims_aka_auts_make(kx, opcx, ra, ims_aka_sqn_make(seq_ms, 0), auts) != 0)
            return fail("AUTS failed", NULL);
        ims_b64_encode(auts, sizeof(auts), auts_b64);
        printf("aka_usim: SEQ %llu %s (SEQ_MS %llu): %s AUTS\n", (unsigned long long)seq,
               fresh ? "fresh" : "not fresh", (unsigned long long)seq_ms,
               forge ? "forged" : "re-synchronisation,");
    } else {
        password = ims_str_make((const char *)res, sizeof(res));
        if (state_write(state, seq))
            return 1;
        printf("aka_usim: SEQ %llu fresh (SEQ_MS was %llu): accepted, RES answered\n",
               (unsigned long long)seq, (unsigned long long)seq_ms);
    }

    uint8_t cn[8];
    char cnonce[17], ha1[33], ha2[33], resp[33];
    if (RAND_bytes(cn, sizeof(cn)) != 1)
        return fail("no random cnonce", NULL);
    ims_hex_encode(cn, sizeof(cn), cnonce);
    const ims_str p1[] = { user, realm, password };
    const ims_str p2[] = { IMS_S("REGISTER"), uri };
    if (md5_hex(ha1, p1, 3) || md5_hex(ha2, p2, 2))
        return 1;
    const ims_str p3[] = { ims_str_cstr(ha1), nonce,           IMS_S("00000001"),
                           ims_str_cstr(cnonce), IMS_S("auth"), ims_str_cstr(ha2) };
    if (md5_hex(resp, p3, 6))
        return 1;

    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return fail("cannot write", tmp);
    fprintf(f,
            "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
            "response=\"%s\", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce=\"%s\"",
            a[5], a[6], a[8], a[7], resp, cnonce);
    if (auts_b64[0])
        fprintf(f, ", auts=\"%s\"", auts_b64);
    if (fclose(f) != 0 || rename(tmp, out) != 0)
        return fail("cannot write", out);
    fflush(stdout);
    return wake(addr, port, callid);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "init") == 0) {
        char *end;
        unsigned long long v = strtoull(argv[3], &end, 10);
        if (*end || v > IMS_AKA_SEQ_MAX)
            return fail("bad SEQ_MS", argv[3]);
        return state_write(argv[2], v);
    }
    bool forge = argc == 12 && strcmp(argv[11], "forge") == 0;
    if (strcmp(argc > 1 ? argv[1] : "", "answer") == 0 && (argc == 11 || forge))
        return answer(argv + 2, forge);
    fprintf(stderr, "usage: aka_usim init STATE SEQ_MS\n"
                    "       aka_usim answer STATE OUT ADDR PORT CALL_ID USER REALM URI NONCE "
                    "[forge]\n");
    return 2;
}
