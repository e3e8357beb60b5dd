/* admin_client.c - a blocking one-request client of the admin socket, for
 * imscloudctl and tests (see admin.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "base/err.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for events on fd until deadline: 0, IMS_ETIMEDOUT or IMS_EIO. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return IMS_ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return IMS_EIO;
        if (n > 0)
            return 0;
    }
}

int ims_admin_call(const char *path, ims_str request, struct ims_buf *reply, unsigned timeout_ms,
                   char *err, size_t errsz)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    uint64_t deadline = mono_ms() + timeout_ms;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errsz, "%s: path too long for a Unix socket", path);
        return IMS_EIO;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        return IMS_EIO;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errsz, "%s: %s", path, strerror(e));
        /* no file, or a stale one nobody listens on: no server running */
        return e == ENOENT || e == ECONNREFUSED ? IMS_ENOENT : IMS_EIO;
    }
    int rc = 0;
    size_t off = 0;
    while (rc == 0 && off < request.len) {
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            break;
        ssize_t n = send(fd, request.p + off, request.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            snprintf(err, errsz, "%s: send: %s", path, strerror(errno));
            rc = IMS_EIO;
            break;
        }
        off += (size_t)n;
    }
    char buf[IMS_ADMIN_LINE_MAX + 1];
    size_t have = 0;
    while (rc == 0) {
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            break;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            snprintf(err, errsz, "%s: the server closed the connection without a reply", path);
            rc = n == 0 ? IMS_EPROTO : IMS_EIO;
            break;
        }
        have += (size_t)n;
        char *nl = memchr(buf, '\n', have);
        if (nl) {
            rc = ims_buf_add(reply, buf, (size_t)(nl - buf));
            break;
        }
        if (have == sizeof(buf)) {
            snprintf(err, errsz, "%s: reply longer than %d bytes", path, IMS_ADMIN_LINE_MAX);
            rc = IMS_EPROTO;
        }
    }
    if (rc == IMS_ETIMEDOUT)
        snprintf(err, errsz, "%s: no reply within %u ms", path, timeout_ms);
    close(fd);
    return rc;
}
