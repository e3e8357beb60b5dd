/* xml.h - what the modules that read or write XML share (User-Data and
 * Sh-Data in src/hss; profiles, reginfo and ServiceInfo in src/cscf):
 * libxml2's process-wide set-up, and escaping for the documents we build.
 *
 * Why: libxml2 2.9 initialises itself lazily, which is not thread-safe, so
 * xmlInitParser() must run before two workers parse at once; and its own
 * error printer writes to stderr, outside our log and whatever the parse
 * options say, for every malformed document a peer sends (encoding errors,
 * as fuzz_userdata showed).  Our callers already report a refused document
 * (IMS_EPROTO and their event lines), so its messages are dropped. */
#ifndef IMS_BASE_XML_H
#define IMS_BASE_XML_H

#include "base/buf.h"
#include "base/str.h"

/* Once per process (later calls do nothing); before the threads that parse
 * start: threads created afterwards inherit the silent error handlers. */
void ims_xml_init(void);

/* Appends s as XML text or an attribute value (XML 1.0 §2.4): the five
 * special characters escaped.  0, IMS_ELIMIT, IMS_ENOMEM. */
int ims_xml_escape(struct ims_buf *b, ims_str s);

#endif
