/* reg_db_files.h - removes the S-CSCF registration database at path and
 * the files reg_persist.c keeps beside it (WAL, shared memory, lock, a
 * corrupt file moved aside with its own WAL and shared memory): tests and
 * harnesses start each run without them. */
#ifndef IMS_TESTS_REG_DB_FILES_H
#define IMS_TESTS_REG_DB_FILES_H

#include <stdio.h>
#include <unistd.h>

static inline void reg_db_remove(const char *path)
{
    static const char *const sfx[] = { "", "-wal", "-shm", ".lock", ".corrupt", ".corrupt-wal",
                                       ".corrupt-shm" };
    char f[4096];
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
        unlink(f);
    }
}

#endif
