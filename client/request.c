/* request.c: building request lines. Names are checked here, so a bad name
 * is -EINVAL locally instead of a CLIENT_ERROR that may close the
 * connection. */
#include "request.h"

#include "darner/client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int dn_queue_name_ok(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    if (n == 0 || n > DARNER_MAX_QUEUE_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '/')
            return 0;
    }
    return 1;
}

static int finish(int n, size_t cap)
{
    return n < 0 || (size_t)n >= cap ? -EINVAL : n;
}

int dn_req_get(char *buf, size_t cap, const char *queue, unsigned opts, uint32_t wait_ms)
{
    if (!dn_queue_name_ok(queue))
        return -EINVAL;
    if ((opts & DN_GET_ABORT) && opts != DN_GET_ABORT)
        return -EINVAL;
    if ((opts & DN_GET_PEEK) && (opts != DN_GET_PEEK))
        return -EINVAL;
    char t[24] = "";
    if (wait_ms)
        snprintf(t, sizeof(t), "/t=%" PRIu32, wait_ms);
    int n = snprintf(buf, cap, "get %s%s%s%s%s%s\r\n", queue, (opts & DN_GET_CLOSE) ? "/close" : "",
                     (opts & DN_GET_OPEN) ? "/open" : "", (opts & DN_GET_ABORT) ? "/abort" : "",
                     (opts & DN_GET_PEEK) ? "/peek" : "", t);
    return finish(n, cap);
}

int dn_req_get_multi(char *buf, size_t cap, const char *queue, size_t keys, uint32_t wait_ms, size_t *put)
{
    *put = 0;
    if (!dn_queue_name_ok(queue) || keys == 0)
        return -EINVAL;
    size_t qlen = strlen(queue), len = 0;
    char t[24] = "";
    if (wait_ms)
        snprintf(t, sizeof(t), "/t=%" PRIu32, wait_ms);
    size_t tlen = strlen(t);
    while (*put < keys) {
        /* a line: "get", then " <q>" per key (the first maybe with /t=), CRLF */
        size_t first = 4 + qlen + (*put == 0 ? tlen : 0) + 2;
        if (first > DN_REQ_MULTI_LINE || len + first > cap)
            break;
        memcpy(buf + len, "get ", 4);
        memcpy(buf + len + 4, queue, qlen);
        memcpy(buf + len + 4 + qlen, t, *put == 0 ? tlen : 0);
        size_t line = first - 2;
        (*put)++;
        while (*put < keys && line + 1 + qlen + 2 <= DN_REQ_MULTI_LINE && len + line + 1 + qlen + 2 <= cap) {
            buf[len + line] = ' ';
            memcpy(buf + len + line + 1, queue, qlen);
            line += 1 + qlen;
            (*put)++;
        }
        memcpy(buf + len + line, "\r\n", 2);
        len += line + 2;
    }
    return *put ? (int)len : -EINVAL;
}

int dn_req_set(char *buf, size_t cap, const char *queue, int sync, uint32_t flags, int64_t exptime,
               uint64_t bytes)
{
    if (!dn_queue_name_ok(queue))
        return -EINVAL;
    int n = snprintf(buf, cap, "set %s%s %" PRIu32 " %" PRId64 " %" PRIu64 "\r\n", queue,
                     sync ? "/sync" : "", flags, exptime, bytes);
    return finish(n, cap);
}

int dn_req_queue(char *buf, size_t cap, const char *word, const char *queue)
{
    if (!dn_queue_name_ok(queue))
        return -EINVAL;
    return finish(snprintf(buf, cap, "%s %s\r\n", word, queue), cap);
}
