/* cmd_admin.c: flush and delete, on every server of the list. */
#include "cli.h"

#include <string.h>

static int on_queue(struct cli *cli, int argc, char **argv, int (*fn)(darner_client *, const char *))
{
    const char *queue;
    if (one_queue_arg(cli, argc, argv, &queue))
        return CLI_ERR;
    int rc = fn(cli->client, queue);
    if (rc < 0)
        return cli_fail(cli, argv[0], rc);
    if (cli->json) {
        fputs("{\"ok\":true,\"queue\":", stdout);
        json_cstr(stdout, queue);
        fputs("}\n", stdout);
    } else if (cli->in_shell) {
        puts("OK");
    }
    return CLI_OK;
}

int cmd_flush(struct cli *cli, int argc, char **argv) { return on_queue(cli, argc, argv, darner_flush); }

int cmd_delete(struct cli *cli, int argc, char **argv) { return on_queue(cli, argc, argv, darner_delete); }
