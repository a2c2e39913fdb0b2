/* cmd_exec.c: `get --exec CMD`: open an item, run CMD with the item on its
 * stdin, and confirm the item if CMD exits 0, give it back otherwise. This
 * is how a one-shot process gets a reliable read: the item is only removed
 * once the work on it succeeded, and if darner-cli or CMD is killed, the
 * connection closes and the server puts the item back.
 *
 * The item is spooled to an unlinked temporary file first, so CMD sees all
 * of it or nothing (never a stream cut short by a network failure), and an
 * item of any size passes without being held in memory. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs command under /bin/sh with stdin on the spool; returns its wait
 * status, or -1 when it could not be started. */
static int run_command(const char *command, const char *queue, const char *server,
                       const struct spool *s)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char num[32];
        if (dup2(fileno(s->f), STDIN_FILENO) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        setenv("DARNER_QUEUE", queue, 1);
        setenv("DARNER_SERVER", server, 1);
        snprintf(num, sizeof(num), "%" PRIu32, s->flags);
        setenv("DARNER_FLAGS", num, 1);
        snprintf(num, sizeof(num), "%" PRIu64, s->len);
        setenv("DARNER_BYTES", num, 1);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* An unlinked temporary file in $TMPDIR (else /tmp), or NULL. */
static FILE *spool_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    if (!dir || !*dir)
        dir = "/tmp";
    if (snprintf(path, sizeof(path), "%s/darner-cli-XXXXXX", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return NULL;
    unlink(path);
    FILE *f = fdopen(fd, "w+");
    if (!f)
        close(fd);
    return f;
}

int exec_open_item(struct cli *cli, const char *queue, int wait_ms, const char *command)
{
    struct spool s = {0};
    s.f = spool_file();
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
    int status = run_command(command, queue, server, &s);
    fclose(s.f);
    int ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    rc = ok ? darner_close(cli->client, queue) : darner_abort(cli->client, queue);
    if (rc < 0)
        return cli_fail(cli, ok ? "get --exec: close" : "get --exec: abort", rc);
    if (cli->json) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        fputs(",\"found\":true,\"server\":", stdout);
        json_cstr(stdout, server);
        printf(",\"bytes\":%" PRIu64 ",\"flags\":%" PRIu32 ",\"exit\":%d,\"result\":\"%s\"}\n", s.len,
               s.flags,
               status < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
               ok ? "closed" : "aborted");
    }
    if (ok)
        return CLI_OK;
    if (status < 0)
        fprintf(stderr, "darner-cli: could not run the command; the item went back to %s\n", queue);
    else if (WIFEXITED(status))
        fprintf(stderr, "darner-cli: the command exited with %d; the item went back to %s\n",
                WEXITSTATUS(status), queue);
    else
        fprintf(stderr, "darner-cli: the command was killed by signal %d; the item went back to %s\n",
                WTERMSIG(status), queue);
    return CLI_ERR;
}
