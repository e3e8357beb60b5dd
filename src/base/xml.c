/* xml.c - see xml.h. */
#include "base/xml.h"

#include <pthread.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void drop_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void drop_structured(void *ctx, xmlErrorPtr err)
{
    (void)ctx;
    (void)err;
}

static void setup(void)
{
    xmlInitParser();
    /* this thread's handlers, and the defaults of threads created later */
    xmlSetGenericErrorFunc(NULL, drop_generic);
    xmlThrDefSetGenericErrorFunc(NULL, drop_generic);
    xmlSetStructuredErrorFunc(NULL, drop_structured);
    xmlThrDefSetStructuredErrorFunc(NULL, drop_structured);
}

void ims_xml_init(void)
{
    pthread_once(&once, setup);
}

int ims_xml_escape(struct ims_buf *b, ims_str s)
{
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        const char *rep;
        switch (s.p[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: continue;
        }
        int rc = ims_buf_add(b, s.p + start, i - start);
        if (rc == 0)
            rc = ims_buf_add_cstr(b, rep);
        if (rc)
            return rc;
        start = i + 1;
    }
    return ims_buf_add(b, s.p + start, s.len - start);
}
