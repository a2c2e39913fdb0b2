/* util/errstr.c: errstr (util/errstr.h). */
#include "util/errstr.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <uv.h>

/* errno values darner returns that some C runtimes have no text for
 * (Windows' msvcrt answers "Unknown error"): glibc's texts. */
static const struct {
    int e;
    const char *text;
} OWN_TEXTS[] = {
    {ENODATA, "No data available"},
    {EOPNOTSUPP, "Operation not supported"},
    {EOVERFLOW, "Value too large for defined data type"},
    {ECANCELED, "Operation canceled"},
    {EBADMSG, "Bad message"},
    {ENOBUFS, "No buffer space available"},
    {EPROTONOSUPPORT, "Protocol not supported"},
    {ELOOP, "Too many levels of symbolic links"},
    {ETIMEDOUT, "Connection timed out"},
    {ECONNRESET, "Connection reset by peer"},
    {EPROTO, "Protocol error"},
};

const char *errstr(int rc)
{
    /* libuv's own codes: all of them on Windows (-4095 to -3000), the few
     * with no errno elsewhere (UV_EOF, UV_EAI_*) */
    if (rc <= -3000)
        return uv_strerror(rc);
    for (size_t i = 0; i < sizeof(OWN_TEXTS) / sizeof(OWN_TEXTS[0]); i++)
        if (OWN_TEXTS[i].e == -rc)
            return OWN_TEXTS[i].text;
    return strerror(-rc);
}
