/* fuzz_cfg.c - libFuzzer harness for the configuration file (src/cfg/cfg.c).
 *
 * The file is the operator's, and the bar is that a bad one is refused with
 * the file's name (and, for a line that cannot stand, its number) rather
 * than crashing or half-applying.  The input is the text.  A refusal must
 * start "fuzz.conf:"; an accepted configuration must dump (ims_cfg_dump,
 * what `imscloud --dump-config` prints), and the dump must load again and
 * dump to the same bytes.  Built without libFuzzer it is just a function
 * (fuzz_cfg_replay runs the corpus). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cfg/cfg.h"

#include "fuzz.h"

#define NAME "fuzz.conf"

/* The dump of cfg, malloc'd (NULL when out of memory). */
static char *dump(const struct ims_cfg *cfg)
{
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    if (!f)
        return NULL;
    ims_cfg_dump(cfg, f);
    if (fclose(f) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct ims_cfg *cfg = NULL;
    char err[512];
    int rc = ims_cfg_load_string(NAME, text, &cfg, err, sizeof(err));
    free(text);
    if (rc != 0) {
        CHECK(rc == IMS_EINVAL || rc == IMS_ENOMEM);
        CHECK(strncmp(err, NAME ":", sizeof(NAME)) == 0);
        return 0;
    }
    char *d1 = dump(cfg);
    ims_cfg_free(cfg);
    if (!d1)
        return 0;
    struct ims_cfg *again = NULL;
    rc = ims_cfg_load_string(NAME, d1, &again, err, sizeof(err));
    CHECK(rc == 0 || rc == IMS_ENOMEM);
    if (rc == 0) {
        char *d2 = dump(again);
        CHECK(!d2 || strcmp(d1, d2) == 0);
        free(d2);
        ims_cfg_free(again);
    }
    free(d1);
    return 0;
}
