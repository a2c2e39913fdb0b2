/* admin.c: flush, delete, version and stats. These name their server (or
 * go to all of them), so they ignore backoff: an operator asking a server
 * that is down should hear why at once. */
#include "client_int.h"

#include "request.h"
#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Sends a request line to server i (connecting first) and reads the first
 * reply line into *r. */
static int ask(darner_client *c, size_t i, const char *req, size_t len, struct dn_reply *r)
{
    int rc = dn_server_connect(c, i);
    if (rc < 0)
        return rc;
    dn_iov iov = {(void *)req, len};
    rc = dn_server_send(c, i, &iov, 1);
    if (rc == 0)
        rc = dn_server_reply(c, i, r, 0);
    return rc;
}

/* word on every server, expecting `expect`. Returns the first error. */
static int on_all(darner_client *c, const char *word, const char *queue, enum dn_reply_kind expect)
{
    dn_clear_error(c);
    char req[DN_REQ_MAX];
    int len = dn_req_queue(req, sizeof(req), word, queue);
    if (len < 0)
        return len;
    dn_begin(c);
    int first = 0;
    for (size_t i = 0; i < c->fleet.n; i++) {
        struct dn_reply r;
        int rc = ask(c, i, req, (size_t)len, &r);
        if (rc == 0 && r.kind != expect)
            rc = dn_reply_failure(c, i, &r);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

int darner_flush(darner_client *c, const char *queue) { return on_all(c, "flush", queue, DN_R_END); }

int darner_delete(darner_client *c, const char *queue)
{
    return on_all(c, "delete", queue, DN_R_DELETED);
}

int darner_version(darner_client *c, size_t server, char *buf, size_t size)
{
    dn_clear_error(c);
    if (server >= c->fleet.n || size == 0)
        return -ERANGE;
    struct dn_reply r;
    int rc = ask(c, server, "version\r\n", 9, &r);
    if (rc < 0)
        return rc;
    if (r.kind != DN_R_VERSION)
        return dn_reply_failure(c, server, &r);
    size_t n = r.text_len < size - 1 ? r.text_len : size - 1;
    memcpy(buf, r.text, n);
    buf[n] = '\0';
    return 0;
}

/* *out is the caller's (darner_stats_free). */
int darner_stats_fetch(darner_client *c, size_t server, darner_stats **out)
{
    *out = NULL;
    dn_clear_error(c);
    if (server >= c->fleet.n)
        return -ERANGE;
    darner_stats *s = dn_stats_new();
    if (!s)
        return -ENOMEM;
    struct dn_reply r;
    int rc = ask(c, server, "stats\r\n", 7, &r);
    while (rc == 0 && r.kind == DN_R_STAT) {
        rc = dn_stats_add(s, r.key, r.key_len, r.text, r.text_len);
        if (rc < 0) {
            dn_server_drop(c, server, 0, 0); /* the rest of the answer is unread */
            break;
        }
        rc = dn_server_reply(c, server, &r, 0);
    }
    if (rc == 0 && r.kind != DN_R_END)
        rc = dn_reply_failure(c, server, &r);
    if (rc == 0)
        rc = dn_stats_index_queues(s);
    if (rc < 0) {
        darner_stats_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
