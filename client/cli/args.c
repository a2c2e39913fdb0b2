/* args.c: command arguments, numbers, and error reporting. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void args_init(struct argscan *a, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 1; /* argv[0] is the command */
    a->no_more_options = 0;
    a->value = NULL;
}

const char *args_next(struct argscan *a, int *is_option)
{
    while (a->i < a->argc) {
        const char *s = a->argv[a->i++];
        if (!a->no_more_options && strcmp(s, "--") == 0) {
            a->no_more_options = 1;
            continue;
        }
        /* "-" alone is a positional (stdin), as is anything after "--". */
        *is_option = !a->no_more_options && s[0] == '-' && s[1] != '\0';
        return s;
    }
    return NULL;
}

int args_match(struct argscan *a, const char *opt, const char *name, int takes_value)
{
    size_t n = strlen(name);
    if (strncmp(opt, name, n) != 0)
        return 0;
    if (opt[n] == '\0') {
        if (!takes_value)
            return 1;
        if (a->i >= a->argc)
            return -1;
        a->value = a->argv[a->i++];
        return 1;
    }
    if (opt[n] == '=' && takes_value) {
        a->value = opt + n + 1;
        return 1;
    }
    return 0;
}

int one_queue_arg(struct cli *cli, int argc, char **argv, const char **queue)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *s;
    int opt, n = 0;
    *queue = NULL;
    while ((s = args_next(&a, &opt))) {
        if (opt || n++)
            return cli_usage_error(cli, "usage: %s QUEUE", argv[0]);
        *queue = s;
    }
    if (!*queue)
        return cli_usage_error(cli, "usage: %s QUEUE", argv[0]);
    return 0;
}

int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -EINVAL;
    *v = x;
    return 0;
}

int parse_seconds_ms(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || !(x > 0) || x > 86400.0 * 365)
        return -EINVAL;
    *ms = (int64_t)(x * 1000.0 + 0.5);
    if (*ms < 1)
        *ms = 1;
    return 0;
}

static void json_error_line(const char *msg, int rc)
{
    fputs("{\"ok\":false,\"error\":", stdout);
    json_cstr(stdout, msg);
    if (rc)
        printf(",\"errno\":%d", -rc);
    fputs("}\n", stdout);
    fflush(stdout);
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "darner-cli: %s\n", msg);
    if (cli->json)
        json_error_line(msg, 0);
    return CLI_ERR;
}

int cli_fail(struct cli *cli, const char *what, int rc)
{
    char msg[1024];
    const char *detail = cli->client ? darner_client_last_error(cli->client) : "";
    if (detail[0]) /* the client's own words, naming the server */
        snprintf(msg, sizeof(msg), "%s: %s", what, detail);
    else
        snprintf(msg, sizeof(msg), "%s: %s", what, darner_strerror(rc));
    fprintf(stderr, "darner-cli: %s\n", msg);
    if (cli->json)
        json_error_line(msg, rc);
    return CLI_ERR;
}
