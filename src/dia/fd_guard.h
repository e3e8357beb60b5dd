/* fd_guard.h - a guard around a freeDiameter 1.2.1 fault that a peer can
 * trigger and that would stop the whole Diameter node.
 *
 * freeDiameter answers some requests itself, from its routing thread, before
 * any handler of ours: one for another realm or host (we are no relay),
 * one without Destination-Realm, one whose Route-Record names us (a loop),
 * one for an application we do not serve.  Its return_error() looks the
 * sender up and hands the answer to fd_out_send(), which refuses (EINVAL)
 * a peer whose connection has just gone; the routing thread takes that
 * error for a fatal one and shuts the node down ("Initiating freeDiameter
 * shutdown sequence"): the process lives on without Diameter.  A peer only
 * has to send such a request and close its connection at once
 * (tests/e2e/hss/dia_raw.py does).
 *
 * The guard: this module defines fd_out_send() itself.  libfdcore calls
 * its own fd_out_send() through its PLT, so the executable's definition
 * (exported: the link options in CMakeLists.txt) is the one called; it
 * calls freeDiameter's, and when that refuses an answer the routing threads
 * send to a peer without a connection, it drops the answer as freeDiameter
 * does when a send fails (the peer is gone: nobody is left to answer)
 * instead of failing.  Every other outcome is freeDiameter's own (a request
 * whose send fails goes to the next peer or gets an error answer there). */
#ifndef IMS_DIA_FD_GUARD_H
#define IMS_DIA_FD_GUARD_H

#include <stdbool.h>

/* Whether libfdcore's calls reach the guard (false: the executable does not
 * export it; node.c logs that at start). */
bool dia_fd_guard_active(void);

#endif
