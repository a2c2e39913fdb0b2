/* cmd_item.c: put, get, peek, close, abort. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- put ---- */

/* Reads a stream for darner_set_stream(). */
static int read_file_source(void *arg, void *buf, size_t cap, size_t *got)
{
    FILE *f = arg;
    *got = fread(buf, 1, cap, f);
    if (*got == 0 && ferror(f))
        return -EIO;
    return 0;
}

/* Reads all of f into a malloc'd buffer (*data, caller frees). */
static int slurp(FILE *f, char **data, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return -ENOMEM;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(b);
                return -EIO;
            }
            break;
        }
    }
    *data = b;
    *len = n;
    return 0;
}

static int put_done(struct cli *cli, const char *queue, uint64_t bytes)
{
    if (cli->json) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        printf(",\"bytes\":%llu}\n", (unsigned long long)bytes);
    } else if (cli->in_shell) {
        puts("OK");
    }
    return CLI_OK;
}

int cmd_put(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *pos[2] = {NULL, NULL};
    int npos = 0, opt, m;
    int64_t flags = 0, exptime = 0;
    unsigned how = 0;
    const char *s;
    while ((s = args_next(&a, &opt))) {
        if (!opt) {
            if (npos == 2)
                return cli_usage_error(cli, "put takes QUEUE and DATA (quote DATA with spaces)");
            pos[npos++] = s;
        } else if ((m = args_match(&a, s, "--flags", 1))) {
            if (m < 0 || parse_i64(a.value, 0, UINT32_MAX, &flags) < 0)
                return cli_usage_error(cli, "--flags needs a number from 0 to 4294967295");
        } else if ((m = args_match(&a, s, "--exptime", 1))) {
            if (m < 0 || parse_i64(a.value, INT32_MIN, INT64_MAX / 2, &exptime) < 0)
                return cli_usage_error(cli, "--exptime needs seconds (or a Unix time)");
        } else if (args_match(&a, s, "--sync", 0)) {
            how |= DARNER_SET_SYNC;
        } else {
            return cli_usage_error(cli, "put: unknown option %s", s);
        }
    }
    if (npos == 0)
        return cli_usage_error(cli, "usage: put [--flags N] [--exptime S] [--sync] QUEUE [DATA|-]");
    const char *queue = pos[0];
    int rc;
    if (npos == 2 && strcmp(pos[1], "-") != 0) {
        size_t len = strlen(pos[1]);
        rc = darner_set_ex(cli->client, queue, pos[1], len, (uint32_t)flags, exptime, how);
        return rc < 0 ? cli_fail(cli, "put", rc) : put_done(cli, queue, len);
    }
    if (cli->in_shell)
        return cli_usage_error(cli, "put in a shell needs its DATA on the line");
    /* From stdin: a regular file streams (its size is known), anything else
     * is read whole first, since a set must state its size up front. */
    struct stat st;
    off_t at = lseek(STDIN_FILENO, 0, SEEK_CUR);
    if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) && at >= 0 && st.st_size >= at) {
        uint64_t len = (uint64_t)(st.st_size - at);
        rc = darner_set_stream(cli->client, queue, len, (uint32_t)flags, exptime, how,
                               read_file_source, stdin);
        return rc < 0 ? cli_fail(cli, "put", rc) : put_done(cli, queue, len);
    }
    char *data;
    size_t len;
    rc = slurp(stdin, &data, &len);
    if (rc < 0)
        return cli_fail(cli, "put: reading stdin", rc);
    rc = darner_set_ex(cli->client, queue, data, len, (uint32_t)flags, exptime, how);
    free(data);
    return rc < 0 ? cli_fail(cli, "put", rc) : put_done(cli, queue, len);
}

/* ---- get, peek ---- */

static void print_item_json(struct cli *cli, const char *queue, const darner_item *it, int open)
{
    fputs("{\"ok\":true,\"queue\":", stdout);
    json_cstr(stdout, queue);
    if (!it) {
        fputs(",\"found\":false}\n", stdout);
        return;
    }
    const unsigned char *d = darner_item_data(it);
    size_t n = darner_item_len(it);
    fputs(",\"found\":true,\"server\":", stdout);
    json_cstr(stdout, darner_client_server_name(cli->client, darner_item_server(it)));
    printf(",\"flags\":%lu,\"bytes\":%zu%s,", (unsigned long)darner_item_flags(it), n,
           open ? ",\"open\":true" : "");
    if (utf8_valid(d, n)) {
        fputs("\"data\":", stdout);
        json_str(stdout, (const char *)d, n);
    } else {
        fputs("\"data_base64\":", stdout);
        json_base64(stdout, d, n);
    }
    fputs("}\n", stdout);
}

/* Streams the payload to stdout, remembering its last byte. */
struct out_state {
    int last; /* last byte written, -1 before any */
    int failed;
};

static int out_data(void *arg, const void *p, size_t n)
{
    struct out_state *o = arg;
    if (fwrite(p, 1, n, stdout) != n) {
        o->failed = 1;
        return -EIO;
    }
    o->last = ((const unsigned char *)p)[n - 1];
    return 0;
}

static int fetch_and_print(struct cli *cli, const char *queue, enum darner_get_mode mode, int wait_ms)
{
    int rc;
    if (cli->json) {
        darner_item *it = NULL;
        rc = mode == DARNER_GET_PEEK ? darner_peek(cli->client, queue, &it)
             : mode == DARNER_GET_OPEN ? darner_open(cli->client, queue, wait_ms, &it)
                                       : darner_get(cli->client, queue, wait_ms, &it);
        if (rc < 0)
            return cli_fail(cli, mode == DARNER_GET_PEEK ? "peek" : "get", rc);
        print_item_json(cli, queue, it, mode == DARNER_GET_OPEN);
        int found = it != NULL;
        darner_item_free(it);
        return found ? CLI_OK : CLI_EMPTY;
    }
    /* Straight to stdout in chunks, so an item of any size passes through
     * without being held in memory. */
    struct out_state o = {-1, 0};
    darner_sink sink = {NULL, out_data, &o};
    int found = 0;
    rc = darner_get_stream(cli->client, queue, mode, wait_ms, &sink, &found);
    if (rc < 0)
        return cli_fail(cli, o.failed ? "writing the item" : mode == DARNER_GET_PEEK ? "peek" : "get", rc);
    if (!found) {
        if (cli->in_shell)
            puts("(empty)");
        return CLI_EMPTY;
    }
    if (o.last != '\n' && (cli->in_shell || isatty(STDOUT_FILENO)))
        putchar('\n');
    return CLI_OK;
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *queue = NULL, *exec = NULL, *s;
    int open = 0, opt, m;
    int64_t wait = 0;
    while ((s = args_next(&a, &opt))) {
        if (!opt) {
            if (queue)
                return cli_usage_error(cli, "get takes one QUEUE");
            queue = s;
        } else if (args_match(&a, s, "--open", 0)) {
            open = 1;
        } else if ((m = args_match(&a, s, "--wait", 1))) {
            if (m < 0 || parse_i64(a.value, 0, UINT32_MAX, &wait) < 0)
                return cli_usage_error(cli, "--wait needs milliseconds");
        } else if ((m = args_match(&a, s, "--exec", 1))) {
            if (m < 0)
                return cli_usage_error(cli, "--exec needs a command");
            exec = a.value;
            open = 1;
        } else {
            return cli_usage_error(cli, "get: unknown option %s", s);
        }
    }
    if (!queue)
        return cli_usage_error(cli, "usage: get [--open [--exec CMD]] [--wait MS] QUEUE");
    if (wait > INT32_MAX)
        wait = INT32_MAX;
    if (exec)
        return exec_open_item(cli, queue, (int)wait, exec);
    int rc = fetch_and_print(cli, queue, open ? DARNER_GET_OPEN : DARNER_GET_REMOVE, (int)wait);
    if (rc == CLI_OK && open && !cli->in_shell && isatty(STDERR_FILENO))
        fprintf(stderr, "darner-cli: note: the item stays open only while this process runs, so it "
                        "goes back to %s now; use --exec CMD, or `darner-cli shell`\n",
                queue);
    return rc;
}

int cmd_peek(struct cli *cli, int argc, char **argv)
{
    const char *queue;
    if (one_queue_arg(cli, argc, argv, &queue))
        return CLI_ERR;
    return fetch_and_print(cli, queue, DARNER_GET_PEEK, 0);
}

/* ---- close, abort ---- */

static int finish(struct cli *cli, int argc, char **argv, int close)
{
    const char *verb = close ? "close" : "abort";
    const char *queue;
    if (one_queue_arg(cli, argc, argv, &queue))
        return CLI_ERR;
    if (!darner_is_open(cli->client, queue)) {
        if (cli->in_shell)
            fprintf(stderr, "darner-cli: nothing is open on %s\n", queue);
        else
            fprintf(stderr,
                    "darner-cli: nothing is open on %s in this process: an open item belongs to the "
                    "connection that opened it and goes back to the queue when that process ends. "
                    "Use `darner-cli get --exec CMD %s` (close on exit 0, abort otherwise), or open "
                    "and %s within `darner-cli shell`.\n",
                    queue, queue, verb);
        if (cli->json) {
            fputs("{\"ok\":true,\"queue\":", stdout);
            json_cstr(stdout, queue);
            printf(",\"%s\":false}\n", close ? "closed" : "aborted");
        }
        return CLI_EMPTY;
    }
    int rc = close ? darner_close(cli->client, queue) : darner_abort(cli->client, queue);
    if (rc < 0)
        return cli_fail(cli, verb, rc);
    if (cli->json) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        printf(",\"%s\":true}\n", close ? "closed" : "aborted");
    } else if (cli->in_shell) {
        puts("OK");
    }
    return CLI_OK;
}

int cmd_close(struct cli *cli, int argc, char **argv) { return finish(cli, argc, argv, 1); }

int cmd_abort(struct cli *cli, int argc, char **argv) { return finish(cli, argc, argv, 0); }
