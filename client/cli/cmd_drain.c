/* cmd_drain.c: drain QUEUE > FILE. Every item is opened, written and
 * flushed, and only then closed: if darner-cli dies or the output fails
 * halfway, the item in flight goes back to its queue instead of being
 * lost. Format: see transfer.h. */
#include "cli.h"
#include "transfer.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

struct drain_sink {
    struct progress *pg;
    int write_failed;
    int too_big;
};

static int lp_begin(void *arg, uint64_t len, uint32_t flags, size_t server)
{
    (void)flags, (void)server;
    struct drain_sink *d = arg;
    unsigned char hdr[4];
    if (len > UINT32_MAX) {
        d->too_big = 1;
        return -E2BIG;
    }
    put_be32(hdr, (uint32_t)len);
    if (fwrite(hdr, 1, 4, stdout) != 4) {
        d->write_failed = 1;
        return -EIO;
    }
    return 0;
}

static int lp_data(void *arg, const void *p, size_t n)
{
    struct drain_sink *d = arg;
    if (fwrite(p, 1, n, stdout) != n) {
        d->write_failed = 1;
        return -EIO;
    }
    progress_add(d->pg, 0, n);
    return 0;
}

/* Takes one item out into stdout. *found: there was one. Returns 0 or an
 * exit code after a message. */
static int drain_one(struct cli *cli, const char *queue, int lp, int wait_ms, struct progress *pg,
                     int *found)
{
    int rc;
    *found = 0;
    if (lp) {
        struct drain_sink d = {pg, 0, 0};
        darner_sink sink = {lp_begin, lp_data, &d};
        rc = darner_get_stream(cli->client, queue, DARNER_GET_OPEN, wait_ms, &sink, found);
        if (rc < 0)
            return cli_fail(cli, d.write_failed ? "drain: writing the output" : d.too_big ? "drain: item over 4 GiB" : "drain", rc);
        if (!*found)
            return 0;
    } else {
        darner_item *it = NULL;
        rc = darner_open(cli->client, queue, wait_ms, &it);
        if (rc < 0)
            return cli_fail(cli, "drain", rc);
        if (!it)
            return 0;
        *found = 1;
        size_t n = darner_item_len(it);
        if (memchr(darner_item_data(it), '\n', n)) {
            darner_item_free(it);
            darner_abort(cli->client, queue);
            return cli_usage_error(cli, "drain: an item holds a newline, so it cannot be a line; it "
                                        "stays in %s (use --length-prefixed)", queue);
        }
        int bad = fwrite(darner_item_data(it), 1, n, stdout) != n || putchar('\n') == EOF;
        darner_item_free(it);
        progress_add(pg, 0, n);
        if (bad) {
            darner_abort(cli->client, queue);
            return cli_fail(cli, "drain: writing the output", -EIO);
        }
    }
    if (fflush(stdout) != 0) {
        darner_abort(cli->client, queue);
        return cli_fail(cli, "drain: writing the output", -errno);
    }
    rc = darner_close(cli->client, queue);
    if (rc < 0)
        return cli_fail(cli, "drain: the last item was written but not confirmed, so it is still in "
                             "the queue and may be drained twice",
                        rc);
    progress_add(pg, 1, 0);
    return 0;
}

int cmd_drain(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *queue = NULL, *s;
    int lp = 0, opt, m;
    int64_t wait = 0, max = 0;
    while ((s = args_next(&a, &opt))) {
        if (!opt) {
            if (queue)
                return cli_usage_error(cli, "drain takes one QUEUE");
            queue = s;
        } else if (args_match(&a, s, "--length-prefixed", 0)) {
            lp = 1;
        } else if ((m = args_match(&a, s, "--wait", 1))) {
            if (m < 0 || parse_i64(a.value, 0, INT32_MAX, &wait) < 0)
                return cli_usage_error(cli, "--wait needs milliseconds");
        } else if ((m = args_match(&a, s, "--max", 1))) {
            if (m < 0 || parse_i64(a.value, 1, INT64_MAX, &max) < 0)
                return cli_usage_error(cli, "--max needs a number > 0");
        } else {
            return cli_usage_error(cli, "drain: unknown option %s", s);
        }
    }
    if (!queue)
        return cli_usage_error(cli, "usage: drain [--length-prefixed] [--wait MS] [--max N] QUEUE > FILE");
    struct progress pg;
    progress_init(&pg, cli, "drain", queue);
    int status = CLI_OK;
    while (max == 0 || (int64_t)pg.items < max) {
        int found;
        int rc = drain_one(cli, queue, lp, (int)wait, &pg, &found);
        if (rc) {
            status = rc;
            break;
        }
        if (!found)
            break;
    }
    progress_done(&pg);
    if (cli->json) {
        /* stdout holds the items, so the summary goes to stderr. */
        fputs("{\"ok\":", stderr);
        fputs(status == CLI_OK ? "true" : "false", stderr);
        fputs(",\"queue\":", stderr);
        json_cstr(stderr, queue);
        fprintf(stderr, ",\"items\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", pg.items, pg.bytes);
    }
    return status;
}
