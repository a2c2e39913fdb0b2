/* cmd_drain.c: drain QUEUE > FILE. By default (--batch 1) every item is
 * opened, written and flushed, and only then closed: if darner-cli dies or
 * the output fails halfway, the item in flight goes back to its queue
 * instead of being lost. With --batch N > 1 items are taken N at a time
 * (darner_get_batch, one round trip each), at most once: items taken but
 * not yet written when darner-cli dies are lost. Format: see transfer.h. */
#include "cli.h"
#include "transfer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_BATCH_MAX 100000

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

/* Puts items[from, n) back (at the tail of the queue: they were taken), so
 * the ones drain could not write are not lost. Returns how many went back. */
static size_t put_back(struct cli *cli, const char *queue, darner_item **items, size_t from, size_t n)
{
    darner_batch_item *b = malloc((n - from) * sizeof(*b));
    if (!b)
        return 0;
    for (size_t k = from; k < n; k++)
        b[k - from] = (darner_batch_item){darner_item_data(items[k]), darner_item_len(items[k]),
                                          darner_item_flags(items[k])};
    size_t stored = 0;
    darner_set_batch(cli->client, queue, b, n - from, 0, 0, NULL, &stored);
    free(b);
    return stored;
}

/* Writes items[0, n) to stdout in the format; stops at the first item the
 * format cannot hold, putting it and the rest back. Returns 0 or an exit
 * code after a message. Borrows the items. */
static int write_batch(struct cli *cli, const char *queue, int lp, darner_item **items, size_t n,
                       struct progress *pg)
{
    for (size_t k = 0; k < n; k++) {
        const void *data = darner_item_data(items[k]);
        size_t len = darner_item_len(items[k]);
        const char *why = !lp && memchr(data, '\n', len) ? "an item holds a newline, so it cannot be a line"
                          : lp && (uint64_t)len > UINT32_MAX ? "an item is over 4 GiB"
                                                            : NULL;
        if (why) {
            size_t back = put_back(cli, queue, items, k, n);
            if (fflush(stdout) != 0)
                return cli_fail(cli, "drain: writing the output", -EIO);
            return cli_usage_error(cli,
                                   "drain: %s; it and the %llu items taken after it (%llu of %llu put back at the "
                                   "end of %s) were not written (use --length-prefixed)",
                                   why, (unsigned long long)(n - k - 1), (unsigned long long)back,
                                   (unsigned long long)(n - k), queue);
        }
        unsigned char hdr[4];
        put_be32(hdr, (uint32_t)len);
        int bad = lp ? fwrite(hdr, 1, 4, stdout) != 4 || fwrite(data, 1, len, stdout) != len
                     : fwrite(data, 1, len, stdout) != len || putchar('\n') == EOF;
        if (bad)
            return cli_fail(cli, "drain: writing the output (the items of this batch not written are lost)", -EIO);
        progress_add(pg, 1, len);
    }
    if (fflush(stdout) != 0)
        return cli_fail(cli, "drain: writing the output (the items of this batch not written are lost)", -errno);
    return 0;
}

/* One batch: takes up to want items and writes them. *got: how many came. */
static int drain_batch(struct cli *cli, const char *queue, int lp, int wait_ms, darner_item **items, size_t want,
                       struct progress *pg, size_t *got)
{
    int rc = darner_get_batch(cli->client, queue, wait_ms, items, want, got);
    int status = write_batch(cli, queue, lp, items, *got, pg);
    for (size_t k = 0; k < *got; k++)
        darner_item_free(items[k]);
    if (!status && rc < 0)
        status = cli_fail(cli, "drain", rc);
    return status;
}

int cmd_drain(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *queue = NULL, *s;
    int lp = 0, opt, m;
    int64_t wait = 0, max = 0, batch = 1;
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
        } else if ((m = args_match(&a, s, "--batch", 1))) {
            if (m < 0 || parse_i64(a.value, 1, DRAIN_BATCH_MAX, &batch) < 0)
                return cli_usage_error(cli, "--batch needs a number from 1 to %d", DRAIN_BATCH_MAX);
        } else {
            return cli_usage_error(cli, "drain: unknown option %s", s);
        }
    }
    if (!queue)
        return cli_usage_error(cli, "usage: drain [--length-prefixed] [--wait MS] [--max N] [--batch N] QUEUE > FILE");
    darner_item **items = NULL;
    if (batch > 1 && !(items = malloc((size_t)batch * sizeof(*items))))
        return cli_fail(cli, "drain", -ENOMEM);
    struct progress pg;
    progress_init(&pg, cli, "drain", queue);
    int status = CLI_OK;
    while (items && (max == 0 || (int64_t)pg.items < max)) {
        size_t want = (size_t)batch, got = 0;
        if (max > 0 && (uint64_t)(max - (int64_t)pg.items) < want)
            want = (size_t)(max - (int64_t)pg.items);
        status = drain_batch(cli, queue, lp, (int)wait, items, want, &pg, &got);
        if (status || got == 0)
            break;
    }
    while (!items && (max == 0 || (int64_t)pg.items < max)) {
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
    free(items);
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
