/* cmd_load.c: load QUEUE < FILE. Items go in batches of --batch N
 * (darner_set_batch: N sets pipelined on one connection, to a random server
 * per batch); --batch 1 sets each item in turn, each to a random server.
 * Length-prefixed items over LOAD_INLINE_MAX are streamed alone, so memory
 * stays bounded. Format: see transfer.h. */
#include "cli.h"
#include "os.h"
#include "transfer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_BATCH_DEFAULT 100
#define LOAD_BATCH_MAX 100000
#define LOAD_INLINE_MAX (64 * 1024)

/* The items read but not yet sent: their bytes back to back in buf. */
struct pending {
    char *buf;
    size_t used, cap;
    size_t *off, *len;
    darner_batch_item *items;
    int *status;
    size_t n, max;
    uint64_t first_failed; /* input number (from 1) of the first item not loaded, or 0 */
};

/* Room for max items. Returns 0 or -ENOMEM; pending_free() either way. */
static int pending_init(struct pending *p, size_t max)
{
    memset(p, 0, sizeof(*p));
    p->max = max;
    p->off = malloc(max * sizeof(*p->off));
    p->len = malloc(max * sizeof(*p->len));
    p->items = malloc(max * sizeof(*p->items));
    p->status = malloc(max * sizeof(*p->status));
    return p->off && p->len && p->items && p->status ? 0 : -ENOMEM;
}

static void pending_free(struct pending *p)
{
    free(p->buf);
    free(p->off);
    free(p->len);
    free(p->items);
    free(p->status);
}

/* Room for n more bytes of the item being added. Returns 0 or -ENOMEM. */
static int pending_reserve(struct pending *p, size_t n)
{
    if (p->cap - p->used >= n)
        return 0;
    size_t cap = p->cap ? p->cap : 64 * 1024;
    while (cap - p->used < n)
        cap *= 2;
    char *b = realloc(p->buf, cap);
    if (!b)
        return -ENOMEM;
    p->buf = b;
    p->cap = cap;
    return 0;
}

/* Sends the pending items as one batch. Returns 0, or an exit code after a
 * message naming the first item (counted from 1 in the input) not stored. */
static int pending_flush(struct cli *cli, const char *queue, uint32_t flags, unsigned how, struct pending *p,
                         struct progress *pg)
{
    if (p->n == 0)
        return 0;
    for (size_t k = 0; k < p->n; k++)
        p->items[k] = (darner_batch_item){p->buf + p->off[k], p->len[k], flags};
    size_t stored = 0;
    uint64_t before = pg->items; /* items loaded before this batch are its first input numbers */
    int rc;
    if (p->max == 1) { /* --batch 1: a plain set, moved to another server if its send fails */
        rc = p->status[0] = darner_set_ex(cli->client, queue, p->items[0].data, p->len[0], flags, 0, how);
        stored = rc == 0;
    } else {
        rc = darner_set_batch(cli->client, queue, p->items, p->n, 0, how, p->status, &stored);
    }
    uint64_t bytes = 0;
    size_t bad = p->n;
    for (size_t k = 0; k < p->n; k++) {
        if (p->status[k] == 0)
            bytes += p->len[k];
        else if (bad == p->n)
            bad = k;
    }
    progress_add(pg, stored, bytes);
    p->n = p->used = 0;
    if (rc == 0)
        return 0;
    p->first_failed = before + bad + 1;
    /* the client's last error may be a later item's: name this one's too */
    char what[160];
    snprintf(what, sizeof(what), "load: item %" PRIu64 " not stored (%s)", p->first_failed, darner_strerror(rc));
    return cli_fail(cli, what, rc);
}
/* Hands darner_set_stream() the payload from stdin; the library asks for
 * no more than the item's length, so this never reads into the next one. */
struct lp_source {
    struct progress *pg;
    int eof;
};

static int lp_read(void *arg, void *buf, size_t cap, size_t *got)
{
    struct lp_source *s = arg;
    *got = fread(buf, 1, cap, stdin);
    if (*got == 0) {
        if (ferror(stdin))
            return -EIO;
        s->eof = 1;
    }
    progress_add(s->pg, 0, *got);
    return 0;
}

/* Returns 0 when stdin is used up, or an exit code after a message. Items
 * up to LOAD_INLINE_MAX join the batch; larger ones are streamed alone,
 * after the batch before them. */
static int load_lp(struct cli *cli, const char *queue, uint32_t flags, unsigned how, struct pending *b,
                   struct progress *pg)
{
    for (;;) {
        unsigned char hdr[4];
        size_t n = fread(hdr, 1, 4, stdin);
        if (n == 0 && !ferror(stdin))
            return pending_flush(cli, queue, flags, how, b, pg);
        if (n != 4) {
            int rc = pending_flush(cli, queue, flags, how, b, pg);
            return rc ? rc
                      : cli_usage_error(cli, "load: the input ends inside a length prefix after %" PRIu64 " items",
                                        pg->items);
        }
        uint32_t len = get_be32(hdr);
        if (b->max > 1 && len <= LOAD_INLINE_MAX) {
            if (pending_reserve(b, len) < 0)
                return cli_fail(cli, "load", -ENOMEM);
            if (fread(b->buf + b->used, 1, len, stdin) != len) {
                int rc = pending_flush(cli, queue, flags, how, b, pg);
                return rc ? rc
                          : cli_usage_error(cli, "load: the input ends inside item %" PRIu64 " (not loaded)",
                                            pg->items + 1);
            }
            b->off[b->n] = b->used;
            b->len[b->n++] = len;
            b->used += len;
            if (b->n == b->max) {
                int rc = pending_flush(cli, queue, flags, how, b, pg);
                if (rc)
                    return rc;
            }
            continue;
        }
        int rc = pending_flush(cli, queue, flags, how, b, pg);
        if (rc)
            return rc;
        struct lp_source src = {pg, 0};
        rc = darner_set_stream(cli->client, queue, len, flags, 0, how, lp_read, &src);
        if (rc < 0) {
            if (src.eof)
                return cli_usage_error(cli, "load: the input ends inside item %" PRIu64 " (not loaded)",
                                       pg->items + 1);
            b->first_failed = pg->items + 1;
            return cli_fail(cli, "load", rc);
        }
        progress_add(pg, 1, 0);
    }
}

static int load_lines(struct cli *cli, const char *queue, uint32_t flags, unsigned how, struct pending *b,
                      struct progress *pg)
{
    char *line = NULL;
    size_t cap = 0;
    int64_t n;
    int status = 0;
    while ((n = cli_getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (pending_reserve(b, (size_t)n) < 0) {
            status = cli_fail(cli, "load", -ENOMEM);
            break;
        }
        memcpy(b->buf + b->used, line, (size_t)n);
        b->off[b->n] = b->used;
        b->len[b->n++] = (size_t)n;
        b->used += (size_t)n;
        if (b->n == b->max && (status = pending_flush(cli, queue, flags, how, b, pg)) != 0)
            break;
    }
    if (!status)
        status = pending_flush(cli, queue, flags, how, b, pg);
    if (!status && ferror(stdin))
        status = cli_fail(cli, "load: reading stdin", -EIO);
    free(line);
    return status;
}

int cmd_load(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *queue = NULL, *s;
    int lp = 0, opt, m;
    int64_t flags = 0, batch = LOAD_BATCH_DEFAULT;
    unsigned how = 0;
    while ((s = args_next(&a, &opt))) {
        if (!opt) {
            if (queue)
                return cli_usage_error(cli, "load takes one QUEUE");
            queue = s;
        } else if (args_match(&a, s, "--length-prefixed", 0)) {
            lp = 1;
        } else if ((m = args_match(&a, s, "--flags", 1))) {
            if (m < 0 || parse_i64(a.value, 0, UINT32_MAX, &flags) < 0)
                return cli_usage_error(cli, "--flags needs a number from 0 to 4294967295");
        } else if (args_match(&a, s, "--sync", 0)) {
            how |= DARNER_SET_SYNC;
        } else if ((m = args_match(&a, s, "--batch", 1))) {
            if (m < 0 || parse_i64(a.value, 1, LOAD_BATCH_MAX, &batch) < 0)
                return cli_usage_error(cli, "--batch needs a number from 1 to %d", LOAD_BATCH_MAX);
        } else {
            return cli_usage_error(cli, "load: unknown option %s", s);
        }
    }
    if (!queue)
        return cli_usage_error(cli, "usage: load [--length-prefixed] [--flags N] [--sync] [--batch N] QUEUE < FILE");
    struct pending b;
    if (pending_init(&b, (size_t)batch) < 0) {
        pending_free(&b);
        return cli_fail(cli, "load", -ENOMEM);
    }
    struct progress pg;
    progress_init(&pg, cli, "load", queue);
    int status = lp ? load_lp(cli, queue, (uint32_t)flags, how, &b, &pg)
                    : load_lines(cli, queue, (uint32_t)flags, how, &b, &pg);
    progress_done(&pg);
    if (status && !cli->json && b.first_failed && b.first_failed != pg.items + 1)
        fprintf(stderr,
                "darner-cli: %" PRIu64 " items were loaded; item %" PRIu64
                " was the first not loaded (items after it in its batch may have been)\n",
                pg.items, b.first_failed);
    else if (status && !cli->json)
        fprintf(stderr, "darner-cli: %" PRIu64 " items were loaded before the error\n", pg.items);
    pending_free(&b);
    if (cli->json && !status) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        printf(",\"items\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", pg.items, pg.bytes);
    }
    return status;
}
