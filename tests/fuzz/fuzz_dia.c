/* fuzz_dia.c - libFuzzer harness for the Cx/Dx/Sh codec (src/dia/codec.c)
 * over real freeDiameter messages: what a Diameter peer sends.
 *
 * The first byte picks the command (byte % 8: UAR, SAR, LIR, MAR, RTR, PPR,
 * UDR, PUR) and, with its top bit, an answer instead of a request; the rest
 * is the AVP area after a header this harness writes (so the fuzzer spends
 * its time on AVPs, not on the 20-byte header freeDiameter checks first).
 * The bytes go through fd_msg_parse_buffer() and fd_msg_parse_dict() as on
 * the wire; a message freeDiameter accepts is decoded by the command's
 * table.  A decoded struct must encode again, and the encoding must parse
 * and decode to the same values (a table walk compares them); a refusal
 * must name a Result-Code of RFC 6733 §7.1.5 and go into an answer's
 * Failed-AVP.  Built without libFuzzer it is just a function
 * (fuzz_dia_replay runs the corpus). */
#include "dia/codec.h" /* first: it replaces freeDiameter's LOG_* macros */

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"

#include "fuzz.h"
#include "fuzz_dia_in.h"

union any_msg {
    struct cx_uar uar;
    struct cx_sar sar;
    struct cx_lir lir;
    struct cx_mar mar;
    struct cx_rtr rtr;
    struct cx_ppr ppr;
    struct sh_udr udr;
    struct sh_pur pur;
    struct dia_ans ans;
};

static const struct dia_table *const requests[8] = { &dia_t_uar, &dia_t_sar, &dia_t_lir,
                                                     &dia_t_mar, &dia_t_rtr, &dia_t_ppr,
                                                     &dia_t_udr, &dia_t_pur };

/* a and b were decoded by t: the same fields present, with the same values */
static bool same(const struct dia_table *t, const char *a, const char *b)
{
    uint64_t pa, pb;
    memcpy(&pa, a, sizeof(pa));
    memcpy(&pb, b, sizeof(pb));
    if (pa != pb)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        const struct dia_field *fd = &t->f[i];
        if (!((pa >> i) & 1u))
            continue;
        size_t na = 1, nb = 1;
        if (fd->flags & DF_MULTI) {
            memcpy(&na, a + fd->n_off, sizeof(na));
            memcpy(&nb, b + fd->n_off, sizeof(nb));
            if (na != nb || na > fd->max_n)
                return false;
        }
        for (size_t k = 0; k < na; k++) {
            const char *sa = a + fd->off + k * fd->stride, *sb = b + fd->off + k * fd->stride;
            switch (fd->type) {
            case DT_GROUP:
                if (!same(fd->sub, sa, sb))
                    return false;
                break;
            case DT_U32:
            case DT_I32:
                if (memcmp(sa, sb, sizeof(uint32_t)) != 0)
                    return false;
                break;
            default: {
                ims_str x, y;
                memcpy(&x, sa, sizeof(x));
                memcpy(&y, sb, sizeof(y));
                if (!ims_str_eq(x, y))
                    return false;
            }
            }
        }
    }
    return true;
}

static void roundtrip(const struct dia_table *t, unsigned cmd, bool request,
                      const union any_msg *a)
{
    struct msg *m = NULL;
    CHECK(fd_msg_new(dia_dict_cmd(cmd, request), MSGFL_ALLOC_ETEID, &m) == 0);
    CHECK(dia_encode(m, t, a) == 0);
    m = fuzz_dia_wire(m);
    union any_msg b;
    struct dia_fail fail;
    CHECK(dia_decode(m, t, &b, &fail) == 0);
    CHECK(same(t, (const char *)a, (const char *)&b));
    fd_msg_free(m);
}

static void refused(struct msg *req, const struct dia_fail *f)
{
    CHECK(f->result == DIA_MISSING_AVP || f->result == DIA_INVALID_AVP_VALUE ||
          f->result == DIA_AVP_OCCURS_TOO_MANY_TIMES);
    CHECK(f->field && f->why);
    CHECK(f->avp || f->result == DIA_MISSING_AVP);
    struct msg *ans = req;
    if (fd_msg_new_answer_from_req(fd_g_config->cnf_dict, &ans, 0) != 0) {
        fd_msg_free(ans); /* what node.c's send_answer() does when this fails */
        return;
    }
    CHECK(dia_add_failed_avp(ans, f) == 0);
    struct msg *q = NULL;
    CHECK(fd_msg_answ_getq(ans, &q) == 0);
    fd_msg_answ_detach(ans);
    fd_msg_free(q);
    fd_msg_free(ans);
}

/* freeDiameter 1.2.1's dispatcher reads the Session-Id before any handler:
 * one that parsed without a value (sent with the V flag: the 14-byte seed in
 * tests/corpus/dia/bad) fails an assert in fd_msg_sess_get(), an empty one
 * is read past its end, and one holding a NUL byte shuts the node down.
 * node.c's receive hook removes such AVPs (dia_drop_bad_session_id), and so
 * does the harness; what would still reach the dispatcher is a trap. */
static bool session_id_unusable(struct msg *m)
{
    struct avp *a = NULL;
    struct avp_hdr *h;
    if (fd_msg_search_avp(m, dia_dict_avp(263, 0), &a) != 0 || !a)
        return false;
    if (fd_msg_avp_hdr(a, &h) != 0 || !h->avp_value)
        return true;
    return h->avp_value->os.len == 0 || memchr(h->avp_value->os.data, '\0', h->avp_value->os.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dia_init();
    unsigned cmd;
    bool request;
    struct msg *m = fuzz_dia_received(data, size, &cmd, &request);
    if (!m)
        return 0;
    struct fd_pei pei;
    memset(&pei, 0, sizeof(pei));
    if (fd_msg_parse_dict(m, fd_g_config->cnf_dict, &pei) != 0) {
        fd_msg_free(m); /* freeDiameter answers it itself (pei) */
        return 0;
    }
    CHECK(!session_id_unusable(m));
    const struct dia_table *t = request ? requests[data[0] % 8u] : &dia_t_ans;
    union any_msg a;
    struct dia_fail fail;
    int rc = dia_decode(m, t, &a, &fail);
    CHECK(rc == 0 || rc == IMS_EPROTO);
    if (rc == 0) {
        roundtrip(t, cmd, request, &a); /* before m goes: a's strings point into it */
        fd_msg_free(m);
    } else if (request) {
        refused(m, &fail); /* frees m with the answer */
    } else {
        fd_msg_free(m);
    }
    return 0;
}
