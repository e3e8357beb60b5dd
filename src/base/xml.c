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
