/* cmd_load.c: load QUEUE < FILE, one set per item. In a fleet every item
 * goes to a random server, as any set does. Format: see transfer.h. */
#include "cli.h"
#include "os.h"
#include "transfer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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

/* Returns 0 when stdin is used up, or an exit code after a message. */
static int load_lp(struct cli *cli, const char *queue, uint32_t flags, unsigned how, struct progress *pg)
{
    for (;;) {
        unsigned char hdr[4];
        size_t n = fread(hdr, 1, 4, stdin);
        if (n == 0 && !ferror(stdin))
            return 0;
        if (n != 4)
            return cli_usage_error(cli, "load: the input ends inside a length prefix after %" PRIu64 " items",
                                   pg->items);
        struct lp_source src = {pg, 0};
        int rc = darner_set_stream(cli->client, queue, get_be32(hdr), flags, 0, how, lp_read, &src);
        if (rc < 0) {
            if (src.eof)
                return cli_usage_error(cli, "load: the input ends inside item %" PRIu64 " (not loaded)",
                                       pg->items + 1);
            return cli_fail(cli, "load", rc);
        }
        progress_add(pg, 1, 0);
    }
}

static int load_lines(struct cli *cli, const char *queue, uint32_t flags, unsigned how, struct progress *pg)
{
    char *line = NULL;
    size_t cap = 0;
    int64_t n;
    int status = 0;
    while ((n = cli_getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        int rc = darner_set_ex(cli->client, queue, line, (size_t)n, flags, 0, how);
        if (rc < 0) {
            status = cli_fail(cli, "load", rc);
            break;
        }
        progress_add(pg, 1, (uint64_t)n);
    }
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
    int64_t flags = 0;
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
        } else {
            return cli_usage_error(cli, "load: unknown option %s", s);
        }
    }
    if (!queue)
        return cli_usage_error(cli, "usage: load [--length-prefixed] [--flags N] [--sync] QUEUE < FILE");
    struct progress pg;
    progress_init(&pg, cli, "load", queue);
    int status = lp ? load_lp(cli, queue, (uint32_t)flags, how, &pg)
                    : load_lines(cli, queue, (uint32_t)flags, how, &pg);
    progress_done(&pg);
    if (status && !cli->json)
        fprintf(stderr, "darner-cli: %" PRIu64 " items were loaded before the error\n", pg.items);
    if (cli->json && !status) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        printf(",\"items\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", pg.items, pg.bytes);
    }
    return status;
}
