/* err.h - the small set of error codes every module returns.
 *
 * Functions return 0 (or a count of bytes) on success and one of these
 * negative values on failure. Results go through out-parameters. */
#ifndef IMS_BASE_ERR_H
#define IMS_BASE_ERR_H

enum {
    IMS_OK = 0,
    IMS_EAGAIN = -1,   /* need more bytes / would block */
    IMS_EPROTO = -2,   /* peer sent garbage */
    IMS_ENOENT = -3,   /* absent */
    IMS_ELIMIT = -4,   /* a cap was hit */
    IMS_ENOMEM = -5,   /* allocation failed */
    IMS_EINVAL = -6,   /* our bug or bad configuration */
    IMS_ETIMEDOUT = -7,
    IMS_EBACKEND = -8, /* DB, Keystone, Diameter peer failed */
    IMS_EIO = -9,      /* socket or file error (errno kept by the caller) */
};

/* Short constant name of an error code ("EPROTO"), for logs. */
const char *ims_strerror(int err);

#endif
