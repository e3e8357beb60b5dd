/* userdata.h - the XML documents the HSS sends and receives:
 *   - TS 29.228 Annex E / §7.7 IMSSubscription (Cx User-Data in SAA/PPA),
 *   - TS 29.328 Annex D Sh-Data (Sh User-Data in UDA and PUR),
 *   - initial filter criteria (TS 29.228 Annex B.2.2, Annex E), built
 *     from plain structs for the admin tools.
 *
 * Every text we put into a document is escaped (& < > " '); a stored
 * service-profile fragment (store.h: iFCs etc. as XML text) is checked to
 * be well-formed before it is embedded, so a bad row never produces a
 * broken document.  Documents are appended to a capped ims_buf; the cap
 * is IMS_ELIMIT (answered DIAMETER_ERROR_TOO_MUCH_DATA). */
#ifndef IMS_HSS_USERDATA_H
#define IMS_HSS_USERDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"

/* True if frag is a well-formed sequence of XML elements (a fragment:
 * several top-level elements allowed), with no DTD and no entity other
 * than the predefined ones. */
bool ims_xml_fragment_ok(ims_str frag);

/* ---- IMSSubscription ---- */

struct ims_ud_impu {
    ims_str identity;
    bool barred;
    int identity_type; /* IMS_ID_*; 0 (public user identity) is not written */
};

struct ims_ud_profile {
    const struct ims_ud_impu *impus;
    size_t n;
    ims_str xml; /* the stored fragment (InitialFilterCriteria, ...) or empty */
    ims_str roles; /* the subscription's local roles (comma list) or empty */
};

/* The namespace of the <imscloud:Roles> Extension of a ServiceProfile. */
#define IMS_UD_ROLES_NS "urn:imscloud:params:xml:ns:roles"

/* Appends <IMSSubscription> with PrivateID impi and one ServiceProfile per
 * entry of profiles.  A fragment that is not well-formed is left out (and
 * logged).  0, IMS_ELIMIT, IMS_ENOMEM. */
int ims_ud_subscription(struct ims_buf *b, ims_str impi, const struct ims_ud_profile *profiles,
                        size_t n);

/* ---- initial filter criteria ---- */

enum ims_spt_type {
    IMS_SPT_METHOD,
    IMS_SPT_REQUEST_URI,
    IMS_SPT_SIP_HEADER,
    IMS_SPT_SESSION_CASE,
    IMS_SPT_SESSION_DESCRIPTION,
};

struct ims_spt {
    enum ims_spt_type type;
    bool negated;
    unsigned group;
    ims_str value;   /* Method, RequestURI, Header name, Line; SessionCase as "0".."4" */
    ims_str content; /* SIPHeader Content / SessionDescription Content (optional) */
};

struct ims_ifc {
    unsigned priority;
    bool cnf;                 /* ConditionTypeCNF */
    const struct ims_spt *spts;
    size_t nspt;              /* 0: no TriggerPoint (always matches) */
    ims_str server_name;      /* ApplicationServer/ServerName (SIP URI) */
    int default_handling;     /* 0 SESSION_CONTINUED, 1 SESSION_TERMINATED */
    ims_str service_info;     /* optional */
    int profile_part;         /* -1 none, 0 REGISTERED, 1 UNREGISTERED */
};

/* Appends one <InitialFilterCriteria> per entry.  0, IMS_EINVAL (an SPT
 * type out of range), IMS_ELIMIT, IMS_ENOMEM. */
int ims_ud_ifc(struct ims_buf *b, const struct ims_ifc *ifc, size_t n);

/* Appends the <InitialFilterCriteria> elements of a stored profile
 * fragment whose ApplicationServer/ServerName equals server_name (all of
 * them when server_name is empty): the Sh IFCs data reference.
 * 0, IMS_EPROTO (fragment not well-formed), IMS_ELIMIT, IMS_ENOMEM. */
int ims_ud_ifcs_of(struct ims_buf *b, ims_str fragment, ims_str server_name);

/* ---- Sh-Data (PUR) ---- */

struct ims_sh_repo {
    char si[256];        /* ServiceIndication */
    unsigned seq;        /* SequenceNumber */
    bool has_data;       /* ServiceData present (absent: delete) */
    struct ims_buf data; /* ServiceData content, serialised */
};

/* Parses the RepositoryData elements of an Sh-Data document into out
 * (at most cap; each out[i].data must be initialised by the caller with
 * its cap).  *n gets how many.  0, IMS_EPROTO (not an Sh-Data document,
 * or a RepositoryData without ServiceIndication / SequenceNumber),
 * IMS_ELIMIT (more than cap, or data too large), IMS_ENOMEM. */
int ims_sh_parse_repository(ims_str doc, struct ims_sh_repo *out, size_t cap, size_t *n);

#endif
