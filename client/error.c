/* error.c: darner_strerror. Our own table rather than strerror(), which is
 * not thread-safe, and with words that say what happened to a queue client
 * rather than to a file descriptor. */
#include "darner/client.h"

#include <errno.h>

const char *darner_strerror(int err)
{
    switch (-err) {
    case 0: return "success";
    case EINVAL: return "invalid argument (a queue name is 1 to 250 bytes, no space, control byte or '/')";
    case ENOMEM: return "out of memory";
    case EBUSY: return "an item is already open on this queue; close or abort it first";
    case E2BIG: return "item too large for the server";
    case EIO: return "the server failed (SERVER_ERROR)";
    case EPROTO: return "protocol error: unexpected reply from the server";
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection lost";
    case ECONNABORTED: return "connection aborted";
    case ETIMEDOUT: return "timed out";
    case EPIPE: return "the item's source ended early";
    case EAGAIN: return "server busy or temporarily unavailable";
    case ENXIO: return "host name not found";
    case EHOSTUNREACH: return "host unreachable";
    case ENETUNREACH: return "network unreachable";
    case EADDRNOTAVAIL: return "address not available";
    case ERANGE: return "out of range (no such server)";
    case ENOTCONN: return "not connected";
    case EINTR: return "interrupted";
    case ENOENT: return "not found";
    case EACCES: return "permission denied";
    case EMFILE: return "too many open files";
    case ENOSPC: return "no room: the queue is full (NOT_STORED), or a disk is";
    case ENOTSUP: return "not supported";
    default: return err < 0 ? "unknown error" : "not an error code";
    }
}
