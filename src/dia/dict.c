/* dict.c - the Cx/Dx and Sh dictionary: what libfdproto's base protocol
 * dictionary lacks (TS 29.229 §6.3, TS 29.329 §6.3, RFC 4740 Digest AVPs),
 * plus a cache of the dictionary objects the codec uses.
 *
 * freeDiameter's dictionary is process-wide (fd_g_config->cnf_dict); we
 * add to it once, before fd_core_parseconf() (dia/node.c) or in a test
 * after fd_core_initialize().  Enumerated AVPs are plain Integer32 here:
 * the codec checks their ranges itself.  No command rules are defined on
 * purpose: presence is checked by the codec (so that every missing AVP
 * gets the same DIAMETER_MISSING_AVP answer with Failed-AVP, and tests can
 * reach that path without freeDiameter's own rule engine). */
#include "dia/codec.h"

#include <pthread.h>
#include <string.h>

#include "base/err.h"

#define V3 DIA_VENDOR_3GPP
#define OS AVP_TYPE_OCTETSTRING
#define I32 AVP_TYPE_INTEGER32
#define U32 AVP_TYPE_UNSIGNED32
#define GRP AVP_TYPE_GROUPED

struct avp_def {
    uint32_t code, vendor;
    const char *name;
    enum dict_avp_basetype type;
    bool mandatory; /* the M bit we set on AVPs we send */
};

/* Order matters only for grouped AVPs, which need nothing from their
 * children at creation time. */
static const struct avp_def avps[] = {
    /* RFC 4740 (Diameter SIP application) AVPs used inside SIP-Digest-Authenticate */
    { 104, 0, "Digest-Realm", OS, true },
    { 110, 0, "Digest-QoP", OS, true },
    { 111, 0, "Digest-Algorithm", OS, true },
    { 121, 0, "Digest-HA1", OS, true },
    /* TS 29.229 §6.3 */
    { 600, V3, "Visited-Network-Identifier", OS, true },
    { 601, V3, "Public-Identity", OS, true },
    { 602, V3, "Server-Name", OS, true },
    { 603, V3, "Server-Capabilities", GRP, true },
    { 604, V3, "Mandatory-Capability", U32, true },
    { 605, V3, "Optional-Capability", U32, true },
    { 606, V3, "User-Data", OS, true },
    { 607, V3, "SIP-Number-Auth-Items", U32, true },
    { 608, V3, "SIP-Authentication-Scheme", OS, true },
    { 609, V3, "SIP-Authenticate", OS, true },
    { 610, V3, "SIP-Authorization", OS, true },
    { 611, V3, "SIP-Authentication-Context", OS, true },
    { 612, V3, "SIP-Auth-Data-Item", GRP, true },
    { 613, V3, "SIP-Item-Number", U32, true },
    { 614, V3, "Server-Assignment-Type", I32, true },
    { 615, V3, "Deregistration-Reason", GRP, true },
    { 616, V3, "Reason-Code", I32, true },
    { 617, V3, "Reason-Info", OS, true },
    { 618, V3, "Charging-Information", GRP, true },
    { 619, V3, "Primary-Event-Charging-Function-Name", OS, true },
    { 620, V3, "Secondary-Event-Charging-Function-Name", OS, true },
    { 621, V3, "Primary-Charging-Collection-Function-Name", OS, true },
    { 622, V3, "Secondary-Charging-Collection-Function-Name", OS, true },
    { 623, V3, "User-Authorization-Type", I32, true },
    { 624, V3, "User-Data-Already-Available", I32, true },
    { 625, V3, "Confidentiality-Key", OS, true },
    { 626, V3, "Integrity-Key", OS, true },
    { 628, V3, "Supported-Features", GRP, false },
    { 629, V3, "Feature-List-ID", U32, false },
    { 630, V3, "Feature-List", U32, false },
    { 631, V3, "Supported-Applications", GRP, false },
    { 632, V3, "Associated-Identities", GRP, false },
    { 633, V3, "Originating-Request", I32, true },
    { 634, V3, "Wildcarded-Public-Identity", OS, false },
    { 635, V3, "SIP-Digest-Authenticate", GRP, false },
    { 637, V3, "UAR-Flags", U32, false },
    { 638, V3, "Loose-Route-Indication", I32, false },
    { 655, V3, "SAR-Flags", U32, false },
    /* TS 29.329 §6.3 */
    { 700, V3, "User-Identity", GRP, true },
    { 701, V3, "MSISDN", OS, true },
    { 702, V3, "Sh-User-Data", OS, true },
    { 703, V3, "Data-Reference", I32, true },
    { 704, V3, "Service-Indication", OS, true },
    { 705, V3, "Subs-Req-Type", I32, true },
    { 706, V3, "Requested-Domain", I32, true },
    { 708, V3, "Identity-Set", I32, true },
    { 715, V3, "Repository-Data-ID", GRP, false },
    { 716, V3, "Sequence-Number", U32, false },
};
#define NAVPS (sizeof(avps) / sizeof(avps[0]))

struct cmd_def {
    uint32_t code;
    const char *req, *ans;
    uint32_t app;
};
static const struct cmd_def cmds[] = {
    { DIA_CMD_UAR, "User-Authorization-Request", "User-Authorization-Answer", DIA_APP_CX },
    { DIA_CMD_SAR, "Server-Assignment-Request", "Server-Assignment-Answer", DIA_APP_CX },
    { DIA_CMD_LIR, "Location-Info-Request", "Location-Info-Answer", DIA_APP_CX },
    { DIA_CMD_MAR, "Multimedia-Auth-Request", "Multimedia-Auth-Answer", DIA_APP_CX },
    { DIA_CMD_RTR, "Registration-Termination-Request", "Registration-Termination-Answer",
      DIA_APP_CX },
    { DIA_CMD_PPR, "Push-Profile-Request", "Push-Profile-Answer", DIA_APP_CX },
    { DIA_CMD_UDR, "User-Data-Request", "User-Data-Answer", DIA_APP_SH },
    { DIA_CMD_PUR, "Profile-Update-Request", "Profile-Update-Answer", DIA_APP_SH },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* Base-protocol AVPs the codec uses (already in libfdproto's dictionary). */
static const uint32_t base_codes[] = { 1,   258, 260, 261, 263, 264, 266, 268, 277, 279,
                                       281, 283, 292, 293, 296, 297, 298 };
#define NBASE (sizeof(base_codes) / sizeof(base_codes[0]))

static struct {
    bool loaded;
    struct dict_object *vendor;
    struct dict_object *app_cx, *app_sh;
    struct dict_object *avp[NAVPS];
    struct dict_object *base[NBASE];
    struct dict_object *req[NCMDS], *ans[NCMDS];
} dc;
static pthread_mutex_t dc_lock = PTHREAD_MUTEX_INITIALIZER;

static int new_or_find(enum dict_object_type type, void *data, struct dict_object *parent,
                       struct dict_object **out)
{
    int rc = fd_dict_new(fd_g_config->cnf_dict, type, data, parent, out);
    if (rc == EEXIST) /* defined by someone else (an extension): use theirs */
        return 0;
    return rc;
}

/* Kamailio's cdp sometimes sends a CER without Host-IP-Address (a
 * connect/getsockname race, shared/kamailio-ims/NOTES.md), which the base
 * dictionary rejects with DIAMETER_MISSING_AVP.  We accept it: the address
 * is informational, peers are identified by Origin-Host.  Best effort. */
static void relax_cer(void)
{
    struct dictionary *d = fd_g_config->cnf_dict;
    struct dict_object *cer = NULL, *hip = NULL, *rule = NULL;
    command_code_t code = 257;
    avp_code_t hcode = 257;
    if (fd_dict_search(d, DICT_COMMAND, CMD_BY_CODE_R, &code, &cer, ENOENT) ||
        fd_dict_search(d, DICT_AVP, AVP_BY_CODE, &hcode, &hip, ENOENT))
        return;
    struct dict_rule_request rq = { cer, hip };
    struct dict_rule_data rd;
    if (fd_dict_search(d, DICT_RULE, RULE_BY_AVP_AND_PARENT, &rq, &rule, ENOENT) || !rule ||
        fd_dict_getval(rule, &rd) || rd.rule_position != RULE_REQUIRED)
        return;
    rd.rule_position = RULE_OPTIONAL;
    rd.rule_min = 0;
    rd.rule_max = -1;
    if (fd_dict_delete(rule) == 0 && fd_dict_new(d, DICT_RULE, &rd, cer, NULL) == 0)
        LOG_D("dia", "event=cer_rule_relaxed avp=Host-IP-Address");
    else
        LOG_W("dia", "event=cer_rule_not_relaxed avp=Host-IP-Address");
}

static int load_locked(void)
{
    struct dictionary *d = fd_g_config->cnf_dict;
    struct dict_vendor_data vd = { DIA_VENDOR_3GPP, "3GPP" };
    if (new_or_find(DICT_VENDOR, &vd, NULL, &dc.vendor) != 0 ||
        fd_dict_search(d, DICT_VENDOR, VENDOR_BY_ID, &vd.vendor_id, &dc.vendor, ENOENT) != 0)
        return IMS_EBACKEND;
    struct dict_application_data cx = { DIA_APP_CX, "3GPP Cx/Dx" };
    struct dict_application_data sh = { DIA_APP_SH, "3GPP Sh" };
    application_id_t id;
    if (new_or_find(DICT_APPLICATION, &cx, dc.vendor, &dc.app_cx) ||
        new_or_find(DICT_APPLICATION, &sh, dc.vendor, &dc.app_sh))
        return IMS_EBACKEND;
    id = DIA_APP_CX;
    if (fd_dict_search(d, DICT_APPLICATION, APPLICATION_BY_ID, &id, &dc.app_cx, ENOENT))
        return IMS_EBACKEND;
    id = DIA_APP_SH;
    if (fd_dict_search(d, DICT_APPLICATION, APPLICATION_BY_ID, &id, &dc.app_sh, ENOENT))
        return IMS_EBACKEND;

    for (size_t i = 0; i < NAVPS; i++) {
        const struct avp_def *a = &avps[i];
        struct dict_avp_data ad = {
            .avp_code = a->code,
            .avp_vendor = a->vendor,
            .avp_name = (char *)(uintptr_t)a->name,
            .avp_flag_mask = AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY,
            .avp_flag_val = (uint8_t)((a->vendor ? AVP_FLAG_VENDOR : 0) |
                                      (a->mandatory ? AVP_FLAG_MANDATORY : 0)),
            .avp_basetype = a->type,
        };
        struct dict_avp_request_ex rq;
        memset(&rq, 0, sizeof(rq));
        rq.avp_vendor.vendor_id = a->vendor;
        rq.avp_data.avp_code = a->code;
        if (new_or_find(DICT_AVP, &ad, NULL, &dc.avp[i]) != 0) {
            LOG_E("dia", "event=dict_add_failed avp=%s", a->name);
            return IMS_EBACKEND;
        }
        if (a->vendor == 0) {
            avp_code_t c = a->code;
            if (fd_dict_search(d, DICT_AVP, AVP_BY_CODE, &c, &dc.avp[i], ENOENT))
                return IMS_EBACKEND;
        } else if (fd_dict_search(d, DICT_AVP, AVP_BY_STRUCT, &rq, &dc.avp[i], ENOENT)) {
            return IMS_EBACKEND;
        }
    }
    for (size_t i = 0; i < NBASE; i++) {
        avp_code_t c = base_codes[i];
        if (fd_dict_search(d, DICT_AVP, AVP_BY_CODE, &c, &dc.base[i], ENOENT)) {
            LOG_E("dia", "event=dict_missing_base avp=%u", c);
            return IMS_EBACKEND;
        }
    }
    for (size_t i = 0; i < NCMDS; i++) {
        struct dict_cmd_data rq = { cmds[i].code, (char *)(uintptr_t)cmds[i].req,
                                    CMD_FLAG_REQUEST, CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE };
        struct dict_cmd_data an = { cmds[i].code, (char *)(uintptr_t)cmds[i].ans,
                                    CMD_FLAG_REQUEST, CMD_FLAG_PROXIABLE };
        struct dict_object *app = cmds[i].app == DIA_APP_CX ? dc.app_cx : dc.app_sh;
        command_code_t code = cmds[i].code;
        if (new_or_find(DICT_COMMAND, &rq, app, &dc.req[i]) ||
            new_or_find(DICT_COMMAND, &an, app, &dc.ans[i]) ||
            fd_dict_search(d, DICT_COMMAND, CMD_BY_CODE_R, &code, &dc.req[i], ENOENT) ||
            fd_dict_search(d, DICT_COMMAND, CMD_BY_CODE_A, &code, &dc.ans[i], ENOENT)) {
            LOG_E("dia", "event=dict_add_failed command=%s", cmds[i].req);
            return IMS_EBACKEND;
        }
    }
    relax_cer();
    dc.loaded = true;
    return 0;
}

int dia_dict_load(void)
{
    pthread_mutex_lock(&dc_lock);
    int rc = dc.loaded ? 0 : load_locked();
    pthread_mutex_unlock(&dc_lock);
    return rc;
}

/* Read-only after dia_dict_load(): no lock needed by the readers. */
struct dict_object *dia_dict_avp(uint32_t code, uint32_t vendor)
{
    if (vendor == 0) {
        for (size_t i = 0; i < NBASE; i++)
            if (base_codes[i] == code)
                return dc.base[i];
    }
    for (size_t i = 0; i < NAVPS; i++)
        if (avps[i].code == code && avps[i].vendor == vendor)
            return dc.avp[i];
    return NULL;
}

struct dict_object *dia_dict_cmd(uint32_t code, bool request)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (cmds[i].code == code)
            return request ? dc.req[i] : dc.ans[i];
    return NULL;
}

struct dict_object *dia_dict_app(uint32_t app)
{
    return app == DIA_APP_CX ? dc.app_cx : app == DIA_APP_SH ? dc.app_sh : NULL;
}

struct dict_object *dia_dict_vendor(void)
{
    return dc.vendor;
}
