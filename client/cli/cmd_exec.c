/* cmd_exec.c: `get --exec CMD`: open an item, run CMD with the item on its
 * stdin, and confirm the item if CMD exits 0, give it back otherwise. This
 * is how a one-shot process gets a reliable read: the item is only removed
 * once the work on it succeeded, and if darner-cli or CMD is killed, the
 * connection closes and the server puts the item back.
 *
 * The item is spooled to a temporary file first (gone once closed), so CMD
 * sees all of it or nothing (never a stream cut short by a network
 * failure), and an item of any size passes without being held in memory. */
#include "cli.h"
#include "os.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

struct spool {
    FILE *f;
    uint64_t len;
    uint32_t flags;
    size_t server;
};

static int spool_begin(void *arg, uint64_t len, uint32_t flags, size_t server)
{
    struct spool *s = arg;
    s->len = len;
    s->flags = flags;
    s->server = server;
    return 0;
}

static int spool_data(void *arg, const void *p, size_t n)
{
    struct spool *s = arg;
    return fwrite(p, 1, n, s->f) == n ? 0 : -ENOSPC;
}

/* Runs command with the item spooled in s on its stdin and the item's
 * details in DARNER_QUEUE, DARNER_SERVER, DARNER_FLAGS and DARNER_BYTES.
 * Returns 0 with *ex, or -errno when it could not be started. */
static int run_command(const char *command, const char *queue, const char *server, const struct spool *s,
                       struct cli_exit *ex)
{
    char flags[16], bytes[32];
    snprintf(flags, sizeof(flags), "%" PRIu32, s->flags);
    snprintf(bytes, sizeof(bytes), "%" PRIu64, s->len);
    const struct cli_env env[] = {{"DARNER_QUEUE", queue},
                                  {"DARNER_SERVER", server},
                                  {"DARNER_FLAGS", flags},
                                  {"DARNER_BYTES", bytes}};
    fflush(stdout);
    fflush(stderr);
    return cli_run_command(command, s->f, env, sizeof(env) / sizeof(env[0]), ex);
}

int exec_open_item(struct cli *cli, const char *queue, int wait_ms, const char *command)
{
    struct spool s = {0};
    s.f = cli_spool_file();
    if (!s.f)
        return cli_usage_error(cli, "get --exec: cannot create a temporary file: %s", strerror(errno));
    darner_sink sink = {spool_begin, spool_data, &s};
    int found = 0;
    int rc = darner_get_stream(cli->client, queue, DARNER_GET_OPEN, wait_ms, &sink, &found);
    if (rc < 0) {
        fclose(s.f);
        return cli_fail(cli, "get --exec", rc);
    }
    if (!found) {
        fclose(s.f);
        if (cli->json) {
            fputs("{\"ok\":true,\"queue\":", stdout);
            json_cstr(stdout, queue);
            fputs(",\"found\":false}\n", stdout);
        } else if (cli->in_shell) {
            puts("(empty)");
        }
        return CLI_EMPTY;
    }
    if (fflush(s.f) != 0 || fseek(s.f, 0, SEEK_SET) != 0) {
        fclose(s.f);
        darner_abort(cli->client, queue);
        return cli_usage_error(cli, "get --exec: spooling the item failed; it went back to %s", queue);
    }
    const char *server = darner_client_server_name(cli->client, s.server);
    struct cli_exit ex = {0};
    int started = run_command(command, queue, server, &s, &ex) == 0;
    fclose(s.f);
    int ok = started && ex.signal == 0 && ex.code == 0;
    rc = ok ? darner_close(cli->client, queue) : darner_abort(cli->client, queue);
    if (rc < 0)
        return cli_fail(cli, ok ? "get --exec: close" : "get --exec: abort", rc);
    if (cli->json) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        fputs(",\"found\":true,\"server\":", stdout);
        json_cstr(stdout, server);
        printf(",\"bytes\":%" PRIu64 ",\"flags\":%" PRIu32 ",\"exit\":%d,\"result\":\"%s\"}\n", s.len, s.flags,
               !started    ? -1
               : ex.signal ? 128 + ex.signal
                           : ex.code,
               ok ? "closed" : "aborted");
    }
    if (ok)
        return CLI_OK;
    if (!started)
        fprintf(stderr, "darner-cli: could not run the command; the item went back to %s\n", queue);
    else if (ex.signal == 0)
        fprintf(stderr, "darner-cli: the command exited with %d; the item went back to %s\n", ex.code, queue);
    else
        fprintf(stderr, "darner-cli: the command was killed by signal %d; the item went back to %s\n", ex.signal,
                queue);
    return CLI_ERR;
}
