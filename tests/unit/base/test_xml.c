/* test_xml - base/xml.h: after ims_xml_init() libxml2 prints nothing for a
 * malformed document, on this thread or on one started later (a worker);
 * before it, the same document does print (the test's document is one
 * that reaches libxml2's own printer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "base/xml.h"

/* a declared encoding the bytes do not follow: an "encoding error" that
 * XML_PARSE_NOERROR does not silence (fuzz_userdata's find) */
static const char bad[] = "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><a>\x9c\x9c\x9c\x9c</a>";

static void *parse(void *arg)
{
    (void)arg;
    xmlDocPtr d = xmlReadMemory(bad, (int)strlen(bad), NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlFreeDoc(d);
    return NULL;
}

/* Bytes libxml2 wrote to stderr while fn ran (on a new thread: thread). */
static long printed(bool thread)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_true(saved >= 0 && tmp);
    assert_true(dup2(fileno(tmp), 2) == 2);
    if (thread) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, parse, NULL), 0);
        pthread_join(t, NULL);
    } else {
        parse(NULL);
    }
    fflush(stderr);
    long n = lseek(2, 0, SEEK_END);
    dup2(saved, 2);
    close(saved);
    fclose(tmp);
    return n;
}

static void test_silenced(void **state)
{
    (void)state;
    assert_true(printed(false) > 0); /* libxml2's default: stderr */
    ims_xml_init();
    ims_xml_init(); /* once */
    assert_int_equal(printed(false), 0);
    assert_int_equal(printed(true), 0); /* a thread started after it */
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_silenced) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
