/* admin.h - the admin control socket of a running imscloud, and the small
 * client imscloudctl uses to talk to it.
 *
 * The socket: a Unix-domain stream socket, <state_dir>/imscloud.ctl,
 * mode 0600, and only peers with our uid (or root) are served
 * (SO_PEERCRED).  It is served by one event loop on its own thread, so an
 * operator's request never blocks a SIP worker or the HSS loop: HSS
 * requests are handed to the HSS (thread-safe ims_hss_admin_* calls) and
 * their completions posted back.
 *
 * Protocol (docs/admin.md): one JSON object per line each way; a
 * connection may carry several requests, one at a time (the reply to a
 * request comes before the next one is read).  Lines are at most
 * IMS_ADMIN_LINE_MAX bytes.
 *
 *   {"cmd":"status"}
 *       -> {"ok":true,"pid":N,"version":"...","roles":"hss,...","uptime_s":N,"hss":true}
 *   {"cmd":"hss.deregister","impu":"sip:...","reason":0..3,"info":"text"}
 *       RTR to the S-CSCF holding impu's implicit set (TS 29.228 §6.1.3)
 *       -> {"ok":true,"result":2001}   (the RTA's result code)
 *   {"cmd":"hss.push-profile","impu":"sip:..."}
 *       PPR with the set's current User-Data (TS 29.228 §6.2.2)
 *       -> {"ok":true,"result":2001}
 *   {"cmd":"keys.reload"}
 *       the HSS re-reads its key repository (after `keys rotate`)
 *       -> {"ok":true,"primary":N}
 *   failure: {"ok":false,"error":"EAGAIN","message":"why, for an operator"}
 *
 * Lifetime: ims_admin_start() binds (refusing when another live server
 * already answers on the path; a stale socket file is replaced) and
 * starts the thread; ims_admin_stop() closes the socket, waits for HSS
 * requests in flight (at most the configured timeout), stops the thread
 * and removes the socket file.  The HSS given at start is borrowed and
 * must outlive the admin server. */
#ifndef IMS_ADMIN_ADMIN_H
#define IMS_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "store/store.h"

#define IMS_ADMIN_SOCKET_NAME "imscloud.ctl"
#define IMS_ADMIN_LINE_MAX 4096
#define IMS_ADMIN_MAX_CONNS 16
#define IMS_ADMIN_INFO_MAX 256

struct ims_hss;
struct ims_admin;

/* --------------------------------------------------------- requests */

enum ims_admin_cmd {
    IMS_ADMIN_STATUS = 1,
    IMS_ADMIN_HSS_DEREGISTER,
    IMS_ADMIN_HSS_PUSH_PROFILE,
    IMS_ADMIN_KEYS_RELOAD,
};

struct ims_admin_req {
    enum ims_admin_cmd cmd;
    char impu[IMS_STORE_ID_MAX];   /* hss.* */
    int reason;                    /* hss.deregister: CX_REASON_* (0..3) */
    char info[IMS_ADMIN_INFO_MAX]; /* hss.deregister: Reason-Info ("" = none) */
};

/* Parses one request line (without or with its '\n').  On error err gets
 * "field: why".  0 or IMS_EPROTO. */
int ims_admin_req_parse(ims_str line, struct ims_admin_req *out, char *err, size_t errsz);
/* Appends r as one JSON line ending in '\n'.  0, IMS_EINVAL (a field out
 * of range), IMS_ENOMEM, IMS_ELIMIT. */
int ims_admin_req_format(const struct ims_admin_req *r, struct ims_buf *out);

/* What a reply says, for hss.* and keys.reload.  error is the IMS_E*
 * name ("EAGAIN") when !ok. */
struct ims_admin_reply {
    bool ok;
    uint32_t result;  /* hss.*: the Diameter result of the RTA/PPA */
    unsigned primary; /* keys.reload: the primary key id now in use */
    char error[16];
    char message[256];
};
/* 0 or IMS_EPROTO (not a reply object). */
int ims_admin_reply_parse(ims_str line, struct ims_admin_reply *out);
/* The IMS_E* code an error name stands for (IMS_EBACKEND if unknown). */
int ims_admin_errcode(const char *name);

/* ----------------------------------------------------------- server */

struct ims_admin_cfg {
    const char *path;        /* socket path (< 108 bytes) */
    struct ims_hss *hss;     /* NULL: hss.* and keys.* answer "no hss role" */
    const char *roles;       /* for status: "hss", "pcscf,scscf", ... */
    unsigned hss_timeout_ms; /* longest an HSS request may take (RTR/PPR timeout) */
};

/* 0, or IMS_EINVAL (path too long, another server is live on it),
 * IMS_EIO (socket, bind), IMS_ENOMEM, with err filled. */
int ims_admin_start(const struct ims_admin_cfg *cfg, struct ims_admin **out, char *err,
                    size_t errsz);
/* Returns how many HSS requests were still unanswered at the deadline
 * (their memory is then kept, not freed: a leak the caller reports).
 * NULL is a no-op. */
size_t ims_admin_stop(struct ims_admin *a);

/* ----------------------------------------------------------- client */

/* Sends one request line and waits (up to timeout_ms) for the reply line,
 * which is appended to reply (without its '\n').  Blocking: for tools.
 * 0; IMS_ENOENT (no socket at path, or nobody listens on it: no server
 * running), IMS_ETIMEDOUT, IMS_EIO (err says), IMS_EPROTO (the reply is
 * not one line), IMS_ELIMIT (reply's cap). */
int ims_admin_call(const char *path, ims_str request, struct ims_buf *reply, unsigned timeout_ms,
                   char *err, size_t errsz);

#endif
