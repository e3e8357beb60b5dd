/* fuzz.h - what the harnesses in tests/fuzz share: libFuzzer's entry point
 * (replay_main.c calls it too, in builds without libFuzzer) and CHECK. */
#ifndef IMS_TESTS_FUZZ_H
#define IMS_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold on any input: a trap, which libFuzzer and the
 * replay both report as a crash, with the input. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Once per process: errors only (a run would log millions of refusals). */
static inline void fuzz_quiet(void)
{
    static int done;
    if (!done++)
        ims_log_set_level(IMS_LOG_ERR);
}

/* True at a harness's first input only (its one-time set-up), with the log
 * quieted then. */
static inline bool fuzz_first(void)
{
    static bool done;
    if (done)
        return false;
    done = true;
    fuzz_quiet();
    return true;
}

/* An input whose first byte picks a mode: false when it is empty. */
static inline bool fuzz_mode(const uint8_t *data, size_t size, uint8_t *mode, const char **rest,
                             size_t *len)
{
    if (size == 0)
        return false;
    *mode = data[0];
    *rest = (const char *)data + 1;
    *len = size - 1;
    return true;
}

#endif
