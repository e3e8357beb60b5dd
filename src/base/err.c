#include "base/err.h"

const char *ims_strerror(int err)
{
    switch (err) {
    case IMS_OK: return "OK";
    case IMS_EAGAIN: return "EAGAIN";
    case IMS_EPROTO: return "EPROTO";
    case IMS_ENOENT: return "ENOENT";
    case IMS_ELIMIT: return "ELIMIT";
    case IMS_ENOMEM: return "ENOMEM";
    case IMS_EINVAL: return "EINVAL";
    case IMS_ETIMEDOUT: return "ETIMEDOUT";
    case IMS_EBACKEND: return "EBACKEND";
    case IMS_EIO: return "EIO";
    }
    return "E?";
}
