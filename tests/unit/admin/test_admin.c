/* test_admin - the admin socket: request/reply lines (parse, format, every
 * refusal named), and the server without an HSS over a real Unix socket
 * (status, refusals, mode 0600, one live server per path, stale files,
 * pipelined requests, over-long lines, stop removes the file). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "base/err.h"
#include "base/log.h"

#define S(x) ims_str_cstr(x)

/* ------------------------------------------------------------ protocol */

static void parse_err(const char *line, const char *want)
{
    struct ims_admin_req r;
    char err[256] = "";
    assert_int_equal(ims_admin_req_parse(S(line), &r, err, sizeof(err)), IMS_EPROTO);
    if (!strstr(err, want))
        fail_msg("'%s': got '%s', want '%s'", line, err, want);
}

static void test_req_parse(void **state)
{
    struct ims_admin_req r;
    char err[256];
    assert_int_equal(ims_admin_req_parse(S("{\"cmd\":\"status\"}\n"), &r, err, sizeof(err)), 0);
    assert_int_equal(r.cmd, IMS_ADMIN_STATUS);
    assert_int_equal(ims_admin_req_parse(S("{\"cmd\":\"hss.deregister\",\"impu\":\"sip:a@b\","
                                           "\"reason\":3,\"info\":\"barred by ops\"}"),
                                         &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.cmd, IMS_ADMIN_HSS_DEREGISTER);
    assert_string_equal(r.impu, "sip:a@b");
    assert_int_equal(r.reason, 3);
    assert_string_equal(r.info, "barred by ops");
    assert_int_equal(ims_admin_req_parse(S("{\"cmd\":\"hss.push-profile\",\"impu\":\"tel:+1\"}"),
                                         &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.cmd, IMS_ADMIN_HSS_PUSH_PROFILE);
    assert_int_equal(ims_admin_req_parse(S("{\"cmd\":\"keys.reload\"}"), &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.cmd, IMS_ADMIN_KEYS_RELOAD);

    parse_err("", "empty");
    parse_err("status", "not JSON");
    parse_err("[1]", "not a JSON object");
    parse_err("{}", "cmd: missing");
    parse_err("{\"cmd\":7}", "cmd: missing or not a string");
    parse_err("{\"cmd\":\"reboot\"}", "cmd: unknown command");
    parse_err("{\"cmd\":\"hss.deregister\"}", "impu: missing");
    parse_err("{\"cmd\":\"hss.deregister\",\"impu\":\"sip:a b\"}", "impu:");
    parse_err("{\"cmd\":\"hss.deregister\",\"impu\":\"sip:a\",\"reason\":4}", "reason: must be");
    parse_err("{\"cmd\":\"hss.deregister\",\"impu\":\"sip:a\",\"reason\":\"0\"}", "reason:");
    parse_err("{\"cmd\":\"hss.deregister\",\"impu\":\"sip:a\",\"info\":\"a\\nb\"}", "info:");
    parse_err("{\"cmd\":\"status\",\"cmd\":\"status\"}", "not JSON"); /* duplicate key */
    char big[IMS_ADMIN_LINE_MAX + 64];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    parse_err(big, "longer than");
}

static void test_req_format_roundtrip(void **state)
{
    struct ims_admin_req r = { .cmd = IMS_ADMIN_HSS_DEREGISTER, .impu = "sip:alice@ims.test",
                               .reason = 0, .info = "subscription \"ended\"" };
    struct ims_admin_req back;
    struct ims_buf b;
    char err[256];
    ims_buf_init(&b, IMS_ADMIN_LINE_MAX);
    assert_int_equal(ims_admin_req_format(&r, &b), 0);
    assert_true(b.len > 0 && b.p[b.len - 1] == '\n');
    assert_null(memchr(b.p, '\n', b.len - 1)); /* one line */
    assert_int_equal(ims_admin_req_parse(ims_buf_str(&b), &back, err, sizeof(err)), 0);
    assert_int_equal(back.cmd, r.cmd);
    assert_string_equal(back.impu, r.impu);
    assert_string_equal(back.info, r.info);
    ims_buf_free(&b);
    /* out of range fields are our bug: refused */
    r.reason = 9;
    assert_int_equal(ims_admin_req_format(&r, &b), IMS_EINVAL);
    r.reason = 0;
    snprintf(r.impu, sizeof(r.impu), "sip:has space");
    assert_int_equal(ims_admin_req_format(&r, &b), IMS_EINVAL);
    ims_buf_free(&b);
}

static void test_reply_parse(void **state)
{
    struct ims_admin_reply rep;
    assert_int_equal(ims_admin_reply_parse(S("{\"ok\":true,\"result\":2001}"), &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.result, 2001);
    assert_int_equal(ims_admin_reply_parse(S("{\"ok\":false,\"error\":\"EAGAIN\",\"message\":"
                                             "\"not known yet\"}"),
                                           &rep),
                     0);
    assert_false(rep.ok);
    assert_int_equal(ims_admin_errcode(rep.error), IMS_EAGAIN);
    assert_string_equal(rep.message, "not known yet");
    assert_int_equal(ims_admin_errcode("EWHAT"), IMS_EBACKEND);
    assert_int_equal(ims_admin_reply_parse(S("{\"result\":1}"), &rep), IMS_EPROTO);
    assert_int_equal(ims_admin_reply_parse(S("nope"), &rep), IMS_EPROTO);
}

/* -------------------------------------------------------------- server */

struct sfix {
    char dir[64];
    char path[100];
    struct ims_admin *a;
};

static int setup_server(void **state)
{
    struct sfix *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/ims-admin-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, IMS_ADMIN_SOCKET_NAME);
    struct ims_admin_cfg cfg = { .path = f->path, .hss = NULL, .roles = "pcscf",
                                 .hss_timeout_ms = 1000 };
    char err[256];
    if (ims_admin_start(&cfg, &f->a, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown_server(void **state)
{
    struct sfix *f = *state;
    assert_int_equal(ims_admin_stop(f->a), 0);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* One request through the client library; the reply line in out. */
static int call(struct sfix *f, const char *req, char *out, size_t cap)
{
    struct ims_buf reply;
    char err[256];
    ims_buf_init(&reply, IMS_ADMIN_LINE_MAX);
    int rc = ims_admin_call(f->path, S(req), &reply, 3000, err, sizeof(err));
    snprintf(out, cap, "%s", reply.p ? reply.p : "");
    ims_buf_free(&reply);
    return rc;
}

static void test_server_status(void **state)
{
    struct sfix *f = *state;
    char out[IMS_ADMIN_LINE_MAX + 1];
    struct stat sb;
    assert_int_equal(lstat(f->path, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(call(f, "{\"cmd\":\"status\"}\n", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"ok\":true"));
    assert_non_null(strstr(out, "\"roles\":\"pcscf\""));
    assert_non_null(strstr(out, "\"hss\":false"));
}

static void test_server_refusals(void **state)
{
    struct sfix *f = *state;
    char out[IMS_ADMIN_LINE_MAX + 1];
    struct ims_admin_reply rep;
    /* no HSS in this process */
    assert_int_equal(call(f, "{\"cmd\":\"hss.deregister\",\"impu\":\"sip:a@b\"}\n", out,
                          sizeof(out)),
                     0);
    assert_int_equal(ims_admin_reply_parse(S(out), &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(ims_admin_errcode(rep.error), IMS_ENOENT);
    assert_non_null(strstr(rep.message, "hss role"));
    assert_int_equal(call(f, "{\"cmd\":\"keys.reload\"}\n", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"ok\":false"));
    /* a bad request gets its reason, the connection stays usable */
    assert_int_equal(call(f, "{\"cmd\":\"hss.push-profile\"}\n", out, sizeof(out)), 0);
    assert_int_equal(ims_admin_reply_parse(S(out), &rep), 0);
    assert_int_equal(ims_admin_errcode(rep.error), IMS_EPROTO);
    assert_non_null(strstr(rep.message, "impu:"));
}

static int raw_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads until n newlines arrived (or EOF / 3 s); returns bytes. */
static size_t read_lines(int fd, char *buf, size_t cap, int n)
{
    size_t have = 0;
    while (have + 1 < cap) {
        int lines = 0;
        for (size_t i = 0; i < have; i++)
            lines += buf[i] == '\n';
        if (lines >= n)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 3000) <= 0)
            break;
        ssize_t r = read(fd, buf + have, cap - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    buf[have] = '\0';
    return have;
}

static void test_server_pipelined(void **state)
{
    struct sfix *f = *state;
    char buf[4 * IMS_ADMIN_LINE_MAX];
    int fd = raw_connect(f->path);
    const char *two = "{\"cmd\":\"status\"}\n{\"cmd\":\"nope\"}\n";
    assert_int_equal(write(fd, two, strlen(two)), (ssize_t)strlen(two));
    read_lines(fd, buf, sizeof(buf), 2);
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    assert_non_null(strstr(buf, "\"ok\":true"));
    assert_non_null(strstr(nl + 1, "unknown command"));
    close(fd);
}

static void test_server_long_line(void **state)
{
    struct sfix *f = *state;
    char buf[2 * IMS_ADMIN_LINE_MAX];
    static char big[IMS_ADMIN_LINE_MAX + 100];
    memset(big, 'x', sizeof(big));
    int fd = raw_connect(f->path);
    assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
    read_lines(fd, buf, sizeof(buf), 1);
    assert_non_null(strstr(buf, "too long"));
    /* and the server closes that connection */
    char c;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, 3000), 1);
    assert_true(read(fd, &c, 1) <= 0); /* EOF, or a reset: unread bytes were left */
    close(fd);
}

static void test_server_one_per_path(void **state)
{
    struct sfix *f = *state;
    struct ims_admin *b = NULL;
    char err[256];
    struct ims_admin_cfg cfg = { .path = f->path, .roles = "hss" };
    assert_int_equal(ims_admin_start(&cfg, &b, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "another imscloud"));
    assert_null(b);
    /* too long a path */
    char lpath[300];
    memset(lpath, 'a', sizeof(lpath) - 1);
    lpath[sizeof(lpath) - 1] = '\0';
    cfg.path = lpath;
    assert_int_equal(ims_admin_start(&cfg, &b, err, sizeof(err)), IMS_EINVAL);
    assert_non_null(strstr(err, "longer than"));
}

static void test_stale_and_stop(void **state)
{
    char dir[64], path[100], out[256], err[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/ims-admin-XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/x.ctl", dir);
    struct ims_buf reply;
    ims_buf_init(&reply, 256);
    /* no socket: "not running" */
    assert_int_equal(ims_admin_call(path, S("{\"cmd\":\"status\"}\n"), &reply, 1000, err,
                                    sizeof(err)),
                     IMS_ENOENT);
    /* a stale socket file (its server died): refused connect, replaced at start */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(ims_admin_call(path, S("{\"cmd\":\"status\"}\n"), &reply, 1000, err,
                                    sizeof(err)),
                     IMS_ENOENT);
    struct ims_admin *a = NULL;
    struct ims_admin_cfg cfg = { .path = path, .roles = "hss" };
    assert_int_equal(ims_admin_start(&cfg, &a, err, sizeof(err)), 0);
    assert_int_equal(ims_admin_call(path, S("{\"cmd\":\"status\"}\n"), &reply, 1000, err,
                                    sizeof(err)),
                     0);
    snprintf(out, sizeof(out), "%s", reply.p);
    assert_non_null(strstr(out, "\"ok\":true"));
    /* an idle connection left open does not hold up the stop */
    int idle = raw_connect(path);
    assert_int_equal(ims_admin_stop(a), 0);
    struct stat sb;
    assert_int_equal(lstat(path, &sb), -1); /* the socket file is gone */
    close(idle);
    ims_buf_free(&reply);
    rmdir(dir);
}

int main(void)
{
    ims_log_set_level(IMS_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_parse),
        cmocka_unit_test(test_req_format_roundtrip),
        cmocka_unit_test(test_reply_parse),
        cmocka_unit_test_setup_teardown(test_server_status, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_refusals, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_pipelined, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_long_line, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_one_per_path, setup_server, teardown_server),
        cmocka_unit_test(test_stale_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
