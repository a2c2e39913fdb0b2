/* server_status.c: the server's status in force, its change (with the
 * grace period before a stricter one applies) and its file. */
#include "server_status.h"
#include "util/errstr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "journal/datadir.h"
#include "server.h"

int server_status_load(struct server *s)
{
    char text[32];
    ssize_t n = jdd_read_file(&s->reg->jconf, s->cfg->data_dir, STATUS_FILE, text, sizeof(text));
    s->status = s->status_target = STATUS_UP;
    if (n == -ENOENT)
        return 0;
    if (n < 0) {
        log_error(&s->log, "cannot read %s/%s: %s", s->cfg->data_dir, STATUS_FILE, errstr((int)n));
        return (int)n;
    }
    size_t len = (size_t)n;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    enum srv_status st;
    if (status_parse(text, len, &st) < 0) {
        log_error(&s->log,
                  "%s/%s holds no status this build knows (UP, READONLY or QUIESCENT): not started, the "
                  "file is left as it is; correct or remove it",
                  s->cfg->data_dir, STATUS_FILE);
        return -EPROTONOSUPPORT;
    }
    s->status = s->status_target = st;
    if (st != STATUS_UP)
        log_warn(&s->log, "status %s (from %s/%s)", status_name(st), s->cfg->data_dir, STATUS_FILE);
    return 0;
}

static void grace_over(uv_timer_t *t)
{
    struct server *s = t->data;
    s->status = s->status_target;
    log_info(&s->log, "status %s in force", status_name(s->status));
}

int server_set_status(struct server *s, enum srv_status st)
{
    char text[32];
    snprintf(text, sizeof(text), "%s\n", status_name(st));
    int rc = jdd_write_file(&s->reg->jconf, s->cfg->data_dir, STATUS_FILE, text);
    if (rc < 0) {
        log_error(&s->log, "cannot write %s/%s: %s; the status stays %s", s->cfg->data_dir, STATUS_FILE, errstr(rc),
                  status_name(s->status));
        return rc;
    }
    s->status_target = st;
    uv_timer_stop(&s->status_timer);
    if (st > s->status && s->cfg->status_grace_ms > 0) {
        /* Stricter: clients get the grace period to finish. */
        log_info(&s->log, "status %s in %" PRIu64 " ms (now %s)", status_name(st), s->cfg->status_grace_ms,
                 status_name(s->status));
        uv_timer_start(&s->status_timer, grace_over, s->cfg->status_grace_ms, 0);
    } else {
        s->status = st;
        log_info(&s->log, "status %s", status_name(st));
    }
    return 0;
}
