/* fuzz_audit.c - libFuzzer harness for the audit trail verifier
 * (src/audit/audit_verify.c, `imscloudctl audit verify`).
 *
 * The verifier's whole job is reading files someone may have edited, so
 * any bytes must give a verdict, never a crash: the input is the file.
 * It is verified twice against a key repository made for the run; both
 * verdicts must agree, a refusal must name a line within the lines read
 * and say why, and an intact verdict must name no line.  Built without
 * libFuzzer it is just a function (fuzz_audit_replay runs the corpus). */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/log.h"
#include "crypto/keyrepo.h"

#include "fuzz.h"

static char root[256];
static struct ims_keyrepo *repo;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    ims_keyrepo_free(repo);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char keys[300];
    snprintf(root, sizeof(root), "%s/ims-fuzz-audit-XXXXXX", tmp);
    snprintf(keys, sizeof(keys), "%s/keys", mkdtemp(root) ? root : "/nonexistent");
    if (ims_keyrepo_create(keys, NULL, 0) != 0 || ims_keyrepo_open(keys, &repo, NULL, 0) != 0)
        abort();
    atexit(cleanup);
}

static int verify(int fd, struct ims_audit_verify_res *res)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return ims_audit_verify_file(path, repo, res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!repo) {
        fuzz_quiet();
        setup();
    }
    int fd = memfd_create("audit", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    struct ims_audit_verify_res a, b;
    int ra = verify(fd, &a), rb = verify(fd, &b);
    close(fd);
    CHECK(ra == rb && a.lines == b.lines && a.bad_line == b.bad_line && a.nkeys == b.nkeys);
    CHECK(ra == 0 || ra == IMS_EPROTO || ra == IMS_ENOMEM);
    size_t nl = 0;
    for (size_t i = 0; i < size; i++)
        nl += data[i] == '\n';
    CHECK(a.lines <= nl + 1);
    CHECK(a.nkeys <= sizeof(a.keys) / sizeof(a.keys[0]));
    CHECK(strnlen(a.why, sizeof(a.why)) < sizeof(a.why));
    if (ra == IMS_EPROTO)
        CHECK(a.bad_line >= 1 && a.bad_line <= a.lines && a.why[0]);
    if (ra == 0)
        CHECK(a.bad_line == 0);
    return 0;
}
