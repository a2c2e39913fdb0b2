/* cmd_info.c: stats, queues and version, over every server of the list. A
 * server that does not answer is reported and left out; the others are
 * still shown. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One fetch of every server's stats; failed servers have NULL and an error. */
struct fleet_stats {
    size_t n;
    darner_stats **st;
    char **err;
};

static int fetch_all(struct cli *cli, struct fleet_stats *fs)
{
    fs->n = darner_client_server_count(cli->client);
    fs->st = calloc(fs->n, sizeof(*fs->st));
    fs->err = calloc(fs->n, sizeof(*fs->err));
    if (!fs->st || !fs->err)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < fs->n; i++) {
        int rc = darner_stats_fetch(cli->client, i, &fs->st[i]);
        if (rc < 0) {
            /* The client's text already names the server when it came from
             * one; otherwise name it here. */
            const char *detail = darner_client_last_error(cli->client);
            const char *name = darner_client_server_name(cli->client, i);
            char msg[1024];
            if (detail[0] && strncmp(detail, name, strlen(name)) == 0)
                snprintf(msg, sizeof(msg), "%s", detail);
            else
                snprintf(msg, sizeof(msg), "%s: %.900s", name, detail[0] ? detail : darner_strerror(rc));
            fs->err[i] = strdup(msg);
            fprintf(stderr, "darner-cli: %s\n", msg);
            failed = 1;
        }
    }
    return failed;
}

static void free_all(struct fleet_stats *fs)
{
    for (size_t i = 0; fs->st && fs->err && i < fs->n; i++) {
        darner_stats_free(fs->st[i]);
        free(fs->err[i]);
    }
    free(fs->st);
    free(fs->err);
}

/* A value that reads as a JSON number goes out as one, else as a string. */
static void json_value(const char *v)
{
    const char *p = v;
    int digits = 0, dot = 0;
    if (*p == '-')
        p++;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && !dot && digits)
            dot = 1;
        else
            break;
    }
    if (!*p && digits && p[-1] != '.' && strlen(v) < 19 && !(v[0] == '0' && v[1] >= '0' && v[1] <= '9'))
        fputs(v, stdout);
    else
        json_cstr(stdout, v);
}

static void stats_json(struct cli *cli, const struct fleet_stats *fs, int watch)
{
    fputs("{\"ok\":true,", stdout);
    if (watch)
        printf("\"time\":%lld,", (long long)time(NULL));
    fputs("\"servers\":[", stdout);
    for (size_t i = 0; i < fs->n; i++) {
        fputs(i ? ",{\"server\":" : "{\"server\":", stdout);
        json_cstr(stdout, darner_client_server_name(cli->client, i));
        if (!fs->st[i]) {
            fputs(",\"ok\":false,\"error\":", stdout);
            json_cstr(stdout, fs->err[i] ? fs->err[i] : "failed");
            fputs("}", stdout);
            continue;
        }
        fputs(",\"ok\":true,\"stats\":{", stdout);
        for (size_t k = 0; k < darner_stats_count(fs->st[i]); k++) {
            if (k)
                fputc(',', stdout);
            json_cstr(stdout, darner_stats_name(fs->st[i], k));
            fputc(':', stdout);
            json_value(darner_stats_value(fs->st[i], k));
        }
        fputs("}}", stdout);
    }
    fputs("]}\n", stdout);
}

static int stats_table(struct cli *cli, const struct fleet_stats *fs)
{
    size_t cols = fs->n + 1 < 32 ? fs->n + 1 : 32;
    struct table t;
    table_init(&t, cols, ~1u);
    const char **row = calloc(cols, sizeof(*row));
    if (!row)
        return -ENOMEM;
    row[0] = "STAT";
    for (size_t i = 1; i < cols; i++)
        row[i] = darner_client_server_name(cli->client, i - 1);
    int rc = table_row(&t, row);
    /* Rows in the order the first answering server gave them, then names
     * only later servers know (queues that live on some servers only). */
    for (size_t s = 0; rc == 0 && s < fs->n; s++) {
        if (!fs->st[s])
            continue;
        for (size_t k = 0; rc == 0 && k < darner_stats_count(fs->st[s]); k++) {
            const char *name = darner_stats_name(fs->st[s], k);
            int seen = 0;
            for (size_t e = 0; e < s && !seen; e++)
                seen = fs->st[e] && darner_stats_get(fs->st[e], name);
            if (seen)
                continue;
            row[0] = name;
            for (size_t i = 1; i < cols; i++) {
                const char *v = fs->st[i - 1] ? darner_stats_get(fs->st[i - 1], name) : NULL;
                row[i] = v ? v : "-";
            }
            rc = table_row(&t, row);
        }
    }
    if (rc == 0)
        table_print(&t, stdout);
    table_free(&t);
    free(row);
    return rc;
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    int watch = 0, opt, m;
    int64_t every_ms = 2000, count = 0;
    const char *s;
    while ((s = args_next(&a, &opt))) {
        if (!opt)
            return cli_usage_error(cli, "stats takes no QUEUE (see `queues`)");
        if (args_match(&a, s, "--watch", 0)) {
            watch = 1;
            /* An optional SECONDS right after --watch. */
            if (a.i < a.argc && parse_seconds_ms(a.argv[a.i], &every_ms) == 0)
                a.i++;
        } else if (strncmp(s, "--watch=", 8) == 0) {
            watch = 1;
            if (parse_seconds_ms(s + 8, &every_ms) < 0)
                return cli_usage_error(cli, "--watch takes SECONDS (e.g. 2 or 0.5)");
        } else if ((m = args_match(&a, s, "--count", 1))) {
            if (m < 0 || parse_i64(a.value, 1, INT64_MAX, &count) < 0)
                return cli_usage_error(cli, "--count needs a number > 0");
        } else {
            return cli_usage_error(cli, "stats: unknown option %s", s);
        }
    }
    if (!watch && !count)
        count = 1;
    int clear = watch && !cli->json && isatty(STDOUT_FILENO);
    int status = CLI_OK;
    for (int64_t round = 0; count == 0 || round < count; round++) {
        if (round)
            cli_sleep_ms(every_ms);
        struct fleet_stats fs = {0};
        int rc = fetch_all(cli, &fs);
        if (rc < 0) {
            free_all(&fs);
            return cli_fail(cli, "stats", rc);
        }
        if (rc)
            status = CLI_ERR;
        if (cli->json) {
            stats_json(cli, &fs, watch);
        } else {
            if (clear)
                fputs("\033[H\033[2J", stdout);
            if (watch) {
                time_t now = time(NULL);
                char when[32];
                strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
                printf("%severy %.1f s, %s\n", round && !clear ? "\n" : "", (double)every_ms / 1000.0, when);
            }
            if (stats_table(cli, &fs) < 0)
                status = CLI_ERR;
        }
        fflush(stdout);
        free_all(&fs);
    }
    return status;
}

/* ---- queues ---- */

struct qrow {
    const char *name; /* borrowed from a darner_stats */
    darner_queue_stats sum;
    darner_queue_stats *per; /* one per server; name NULL where absent */
};

static int qrow_cmp(const void *a, const void *b)
{
    return strcmp(((const struct qrow *)a)->name, ((const struct qrow *)b)->name);
}

/* Merges every server's queues into rows (sorted by name). *rows is the
 * caller's (free each ->per, then the array). */
static int merge_queues(const struct fleet_stats *fs, struct qrow **rows, size_t *nrows)
{
    size_t cap = 0, n = 0;
    struct qrow *r = NULL;
    for (size_t s = 0; s < fs->n; s++) {
        if (!fs->st[s])
            continue;
        for (size_t k = 0; k < darner_stats_queue_count(fs->st[s]); k++) {
            darner_queue_stats q;
            darner_stats_queue(fs->st[s], k, &q);
            size_t j = 0;
            while (j < n && strcmp(r[j].name, q.name) != 0)
                j++;
            if (j == n) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 16;
                    struct qrow *nr = realloc(r, cap * sizeof(*r));
                    if (!nr)
                        goto fail;
                    r = nr;
                }
                r[n] = (struct qrow){.name = q.name, .per = calloc(fs->n, sizeof(darner_queue_stats))};
                if (!r[n].per)
                    goto fail;
                n++;
            }
            r[j].per[s] = q;
            r[j].sum.items += q.items;
            r[j].sum.bytes += q.bytes;
            r[j].sum.total_items += q.total_items;
            r[j].sum.logsize += q.logsize;
            r[j].sum.waiters += q.waiters;
            r[j].sum.open_transactions += q.open_transactions;
            if (q.age_ms > r[j].sum.age_ms)
                r[j].sum.age_ms = q.age_ms;
        }
    }
    if (n)
        qsort(r, n, sizeof(*r), qrow_cmp);
    *rows = r;
    *nrows = n;
    return 0;
fail:
    for (size_t j = 0; j < n; j++)
        free(r[j].per);
    free(r);
    return -ENOMEM;
}

static void json_qfigures(const darner_queue_stats *q)
{
    printf("\"items\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"open\":%" PRIu64 ",\"waiters\":%" PRIu64
           ",\"total_items\":%" PRIu64 ",\"logsize\":%" PRIu64 ",\"age_ms\":%" PRIu64,
           q->items, q->bytes, q->open_transactions, q->waiters, q->total_items, q->logsize, q->age_ms);
}

static void queues_json(struct cli *cli, const struct fleet_stats *fs, const struct qrow *r, size_t n)
{
    fputs("{\"ok\":true,\"queues\":[", stdout);
    for (size_t j = 0; j < n; j++) {
        fputs(j ? ",{\"name\":" : "{\"name\":", stdout);
        json_cstr(stdout, r[j].name);
        fputc(',', stdout);
        json_qfigures(&r[j].sum);
        fputs(",\"servers\":[", stdout);
        int first = 1;
        for (size_t s = 0; s < fs->n; s++) {
            if (!r[j].per[s].name)
                continue;
            fputs(first ? "{\"server\":" : ",{\"server\":", stdout);
            first = 0;
            json_cstr(stdout, darner_client_server_name(cli->client, s));
            fputc(',', stdout);
            json_qfigures(&r[j].per[s]);
            fputc('}', stdout);
        }
        fputs("]}", stdout);
    }
    fputs("],\"errors\":[", stdout);
    int first = 1;
    for (size_t s = 0; s < fs->n; s++) {
        if (fs->st[s])
            continue;
        fputs(first ? "{\"server\":" : ",{\"server\":", stdout);
        first = 0;
        json_cstr(stdout, darner_client_server_name(cli->client, s));
        fputs(",\"error\":", stdout);
        json_cstr(stdout, fs->err[s] ? fs->err[s] : "failed");
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
}

static int queues_row(struct table *t, const char *name, const char *server, const darner_queue_stats *q)
{
    char items[24], bytes[32], open[24], waiters[24];
    snprintf(items, sizeof(items), "%" PRIu64, q->items);
    human_bytes(q->bytes, bytes, sizeof(bytes));
    snprintf(open, sizeof(open), "%" PRIu64, q->open_transactions);
    snprintf(waiters, sizeof(waiters), "%" PRIu64, q->waiters);
    const char *with[] = {name, server, items, bytes, open, waiters};
    const char *without[] = {name, items, bytes, open, waiters};
    return table_row(t, server ? with : without);
}

int cmd_queues(struct cli *cli, int argc, char **argv)
{
    int per_server = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--per-server") == 0)
            per_server = 1;
        else
            return cli_usage_error(cli, "usage: queues [--per-server]");
    }
    struct fleet_stats fs = {0};
    int rc = fetch_all(cli, &fs);
    if (rc < 0) {
        free_all(&fs);
        return cli_fail(cli, "queues", rc);
    }
    int status = rc ? CLI_ERR : CLI_OK;
    struct qrow *r = NULL;
    size_t n = 0;
    if (merge_queues(&fs, &r, &n) < 0) {
        free_all(&fs);
        return cli_fail(cli, "queues", -ENOMEM);
    }
    if (cli->json) {
        queues_json(cli, &fs, r, n);
    } else {
        struct table t;
        /* Numbers right-aligned: ITEMS, BYTES, OPEN, WAITERS. */
        table_init(&t, per_server ? 6 : 5, per_server ? 0x3cu : 0x1eu);
        const char *h6[] = {"QUEUE", "SERVER", "ITEMS", "BYTES", "OPEN", "WAITERS"};
        const char *h5[] = {"QUEUE", "ITEMS", "BYTES", "OPEN", "WAITERS"};
        int trc = table_row(&t, per_server ? h6 : h5);
        for (size_t j = 0; trc == 0 && j < n; j++) {
            if (!per_server) {
                trc = queues_row(&t, r[j].name, NULL, &r[j].sum);
                continue;
            }
            for (size_t s = 0; trc == 0 && s < fs.n; s++)
                if (r[j].per[s].name)
                    trc = queues_row(&t, r[j].name, darner_client_server_name(cli->client, s), &r[j].per[s]);
        }
        if (trc == 0)
            table_print(&t, stdout);
        else
            status = cli_fail(cli, "queues", trc);
        table_free(&t);
    }
    for (size_t j = 0; j < n; j++)
        free(r[j].per);
    free(r);
    free_all(&fs);
    return status;
}

/* ---- version ---- */

int cmd_version(struct cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return cli_usage_error(cli, "usage: version");
    int status = CLI_OK;
    size_t n = darner_client_server_count(cli->client);
    if (cli->json)
        printf("{\"ok\":true,\"client\":\"%d.%d.%d\",\"servers\":[", DARNER_CLIENT_VERSION_MAJOR,
               DARNER_CLIENT_VERSION_MINOR, DARNER_CLIENT_VERSION_PATCH);
    else
        printf("darner-cli %d.%d.%d\n", DARNER_CLIENT_VERSION_MAJOR, DARNER_CLIENT_VERSION_MINOR,
               DARNER_CLIENT_VERSION_PATCH);
    for (size_t i = 0; i < n; i++) {
        char v[128];
        int rc = darner_version(cli->client, i, v, sizeof(v));
        const char *name = darner_client_server_name(cli->client, i);
        if (rc < 0) {
            status = CLI_ERR;
            fprintf(stderr, "darner-cli: %s: %s\n", name, darner_strerror(rc));
        }
        if (cli->json) {
            fputs(i ? ",{\"server\":" : "{\"server\":", stdout);
            json_cstr(stdout, name);
            fputs(rc < 0 ? ",\"error\":" : ",\"version\":", stdout);
            json_cstr(stdout, rc < 0 ? darner_strerror(rc) : v);
            fputc('}', stdout);
        } else if (rc == 0) {
            printf("%s %s\n", name, v);
        }
    }
    if (cli->json)
        fputs("]}\n", stdout);
    return status;
}
