/* fd_guard.c - see fd_guard.h. */
#define _GNU_SOURCE       /* RTLD_NEXT */
#include "dia/codec.h" /* first: freeDiameter's headers, then ours (codec.h) */
#include "dia/fd_guard.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "base/log.h"

/* libfdcore's internal types, only passed through */
struct cnxctx;
struct fd_peer;

typedef int (*out_send_fn)(struct msg **msg, struct cnxctx *cnx, struct fd_peer *peer,
                           int update_reqin_cnt);

/* freeDiameter 1.2.1's prototype (libfdcore/fdcore-internal.h) */
int fd_out_send(struct msg **msg, struct cnxctx *cnx, struct fd_peer *peer, int update_reqin_cnt);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static out_send_fn real_out_send;

static void find_real(void)
{
    real_out_send = (out_send_fn)dlsym(RTLD_NEXT, "fd_out_send");
}

int fd_out_send(struct msg **msg, struct cnxctx *cnx, struct fd_peer *peer, int update_reqin_cnt)
{
    pthread_once(&once, find_real);
    if (!real_out_send)
        return ENOSYS; /* not linked with libfdcore: nothing calls this */
    int rc = real_out_send(msg, cnx, peer, update_reqin_cnt);
    /* Only the routing threads' sends of answers (update_reqin_cnt 1: its
     * return_error() and the answer path; the state machine passes 0), where
     * an error is fatal to the node.  A request's failed send is handled
     * there: the next candidate peer, or an error answer.  Its first check
     * is CHECK_PARAMS(msg && *msg && (cnx || (peer && peer->p_cnxctx))):
     * with a message and a peer, only the connection can have failed it. */
    struct msg_hdr *h = NULL;
    if (rc == EINVAL && update_reqin_cnt == 1 && msg && *msg && !cnx && peer &&
        fd_msg_hdr(*msg, &h) == 0 && h && !(h->msg_flags & CMD_FLAG_REQUEST)) {
        LOG_W("dia", "event=send_dropped cmd=%u why=\"the peer's connection is gone\"",
              h->msg_code);
        fd_msg_free(*msg); /* an answer: its request goes with it */
        *msg = NULL;
        return 0;
    }
    return rc;
}

bool dia_fd_guard_active(void)
{
    return dlsym(RTLD_DEFAULT, "fd_out_send") == (void *)fd_out_send;
}
