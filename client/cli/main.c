/* main.c: darner-cli's options, its command table, and `shell`, which runs
 * commands read from stdin on one client, so an item opened by one line can
 * be closed by a later one. The only file that exits. */
#include "cli.h"
#include "os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmd_shell(struct cli *cli, int argc, char **argv);
static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_cmd commands[] = {
    {"put", cmd_put, "put [--flags N] [--exptime S] [--sync] QUEUE [DATA|-]"},
    {"get", cmd_get, "get [--open [--exec CMD]] [--wait MS] QUEUE"},
    {"peek", cmd_peek, "peek QUEUE"},
    {"close", cmd_close, "close QUEUE            (in `shell`: confirm the item opened there)"},
    {"abort", cmd_abort, "abort QUEUE            (in `shell`: give the opened item back)"},
    {"stats", cmd_stats, "stats [--watch [SECONDS]] [--count N]"},
    {"queues", cmd_queues, "queues [--per-server]"},
    {"flush", cmd_flush, "flush QUEUE"},
    {"delete", cmd_delete, "delete QUEUE"},
    {"drain", cmd_drain, "drain [--length-prefixed] [--wait MS] [--max N] [--batch N] QUEUE > FILE"},
    {"load", cmd_load, "load [--length-prefixed] [--flags N] [--sync] [--batch N] QUEUE < FILE"},
    {"version", cmd_version, "version"},
    {"cluster", cmd_cluster, "cluster [add ID@HOST:RAFT_PORT:PORT | remove ID | transfer [ID]]"},
    {"shell", cmd_shell, "shell                  (commands from stdin, one per line, one client)"},
    {"help", cmd_help, "help"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: darner-cli [-s HOST:PORT[,HOST:PORT...]] [--json] [--timeout MS]\n"
            "                  [--progress|--no-progress] COMMAND [ARGS]\n\n"
            "Servers come from -s, else $DARNER_SERVERS, else %s.\n\ncommands:\n",
            DARNER_DEFAULT_SERVERS);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "\nExit status: 0 done, 1 no item (get, peek), nothing open (close, abort) or\n"
               "a change refused by the cell (cluster add, remove, transfer), 2 error.\n"
               "See darner-cli(1) and docs/client.md.\n");
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
    (void)cli, (void)argc, (void)argv;
    usage(stdout);
    return CLI_OK;
}

static const struct cli_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Takes the global options out of argv (anywhere before "--"), leaving the
 * command and its own arguments in order. Returns 0, or CLI_ERR after a
 * message; *stop is set for --help and --version. */
static int global_options(struct cli *cli, int *argc, char **argv, int *stop)
{
    int out = 1;
    int ended = 0;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (ended || a[0] != '-' || a[1] == '\0') {
            argv[out++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            ended = 1;
            argv[out++] = argv[i];
        } else if (strcmp(a, "-s") == 0 || strcmp(a, "--servers") == 0) {
            if (++i >= *argc)
                return cli_usage_error(cli, "%s needs HOST:PORT[,HOST:PORT...]", a);
            cli->servers = argv[i];
        } else if (strncmp(a, "--servers=", 10) == 0) {
            cli->servers = a + 10;
        } else if (strcmp(a, "--json") == 0) {
            cli->json = 1;
        } else if (strcmp(a, "--progress") == 0) {
            cli->progress = 1;
        } else if (strcmp(a, "--no-progress") == 0) {
            cli->progress = 0;
        } else if (strcmp(a, "--timeout") == 0 || strncmp(a, "--timeout=", 10) == 0) {
            const char *v = a[9] == '=' ? a + 10 : (++i < *argc ? argv[i] : NULL);
            int64_t ms;
            if (parse_i64(v, 1, INT32_MAX, &ms) < 0)
                return cli_usage_error(cli, "--timeout needs milliseconds (a whole number > 0)");
            cli->timeout_ms = (int)ms;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            *stop = 1;
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("darner-cli %d.%d.%d\n", DARNER_CLIENT_VERSION_MAJOR, DARNER_CLIENT_VERSION_MINOR,
                   DARNER_CLIENT_VERSION_PATCH);
            *stop = 1;
            return 0;
        } else {
            argv[out++] = argv[i]; /* the command's own option */
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
    const struct cli_cmd *cmd = find_cmd(argv[0]);
    if (!cmd)
        return cli_usage_error(cli, "unknown command '%s' (darner-cli --help lists them)", argv[0]);
    if (cli->in_shell && (cmd->fn == cmd_shell || cmd->fn == cmd_load))
        return cli_usage_error(cli, "'%s' reads stdin, which holds the shell's commands", argv[0]);
    int rc = cmd->fn(cli, argc, argv);
    fflush(stdout);
    return rc;
}

/* One command per line; blank lines and lines starting with '#' are
 * skipped; `quit` or end of input ends. Returns the last command's code. */
static int cmd_shell(struct cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage_error(cli, "shell takes no arguments");
    cli->in_shell = 1;
    int tty = isatty(STDIN_FILENO);
    int last = CLI_OK;
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) {
            fputs("darner> ", stdout);
            fflush(stdout);
        }
        if (cli_getline(&line, &cap, stdin) < 0)
            break;
        char **words;
        int n = split_words(line, &words);
        if (n < 0) {
            last = cli_usage_error(cli, "%s", n == -EINVAL ? "unclosed quote" : "out of memory");
            continue;
        }
        if (n == 0 || words[0][0] == '#') {
            free(words);
            continue;
        }
        if (strcmp(words[0], "quit") == 0 || strcmp(words[0], "exit") == 0) {
            free(words);
            break;
        }
        last = run(cli, n, words);
        free(words);
    }
    free(line);
    cli->in_shell = 0;
    return last;
}

int main(int argc, char **argv)
{
    argv = cli_os_init(argc, argv); /* SIGPIPE ignored; binary stdio and UTF-8 arguments on Windows */
    struct cli cli = {.progress = -1};
    int stop = 0;
    int rc = global_options(&cli, &argc, argv, &stop);
    if (rc || stop)
        return rc;
    if (argc < 2) {
        usage(stderr);
        return CLI_ERR;
    }
    if (!find_cmd(argv[1]))
        return cli_usage_error(&cli, "unknown command '%s' (darner-cli --help lists them)", argv[1]);
    if (!cli.servers || !*cli.servers)
        cli.servers = getenv("DARNER_SERVERS");
    rc = darner_client_new(&cli.client, cli.servers);
    if (rc < 0)
        return cli_usage_error(&cli, "bad server list '%s': use HOST:PORT[,HOST:PORT...]",
                               cli.servers ? cli.servers : "");
    if (cli.timeout_ms)
        darner_client_set_timeout(cli.client, cli.timeout_ms);
    (void)darner_client_discover(cli.client); /* cells: the list of servers is the list of cells */
    rc = run(&cli, argc - 1, argv + 1);
    darner_client_free(cli.client);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "darner-cli: writing the output failed\n");
        return CLI_ERR;
    }
    return rc;
}
