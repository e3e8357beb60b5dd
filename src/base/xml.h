/* xml.h - libxml2's process-wide set-up, shared by the modules that parse
 * XML (User-Data and Sh-Data in src/hss, profiles in src/cscf).
 *
 * Why: libxml2 2.9 initialises itself lazily, which is not thread-safe, so
 * xmlInitParser() must run before two workers parse at once; and its own
 * error printer writes to stderr, outside our log and whatever the parse
 * options say, for every malformed document a peer sends (encoding errors,
 * as fuzz_userdata showed).  Our callers already report a refused document
 * (IMS_EPROTO and their event lines), so its messages are dropped. */
#ifndef IMS_BASE_XML_H
#define IMS_BASE_XML_H

/* Once per process (later calls do nothing); before the threads that parse
 * start: threads created afterwards inherit the silent error handlers. */
void ims_xml_init(void);

#endif
