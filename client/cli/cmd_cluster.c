/* cmd_cluster.c: cluster, the members of each cell (docs/cluster.md), and
 * cluster add|remove|transfer, a change of one cell's members sent to its
 * leader. These speak the `cluster` command on a connection of their own,
 * through libdarner's connections (conn.h): the library's server list holds
 * a cell's leader but not the members' ids and roles. */
#include "cli.h"

#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One MEMBER or CELL line of an answer. */
struct cl_line {
    char id[24];             /* "" for a CELL line */
    char addr[DN_NAME_MAX + 1];
    char role[16];           /* leader, follower; "" for a CELL line */
};

struct cl_answer {
    struct cl_line *lines;
    size_t n;
    size_t nmembers;
    char error[512]; /* why there is no answer, when there is none */
};

static int timeout_ms(const struct cli *cli) { return cli->timeout_ms ? cli->timeout_ms : DARNER_DEFAULT_TIMEOUT_MS; }

/* Connects to name ("host:port"). */
static int open_name(struct cli *cli, struct dn_conn *conn, const char *name)
{
    struct dn_addr a;
    dn_conn_init(conn);
    if (dn_addr_parse(name, strlen(name), DARNER_DEFAULT_PORT, &a) < 0)
        return -EINVAL;
    int ms = timeout_ms(cli) < DARNER_DEFAULT_CONNECT_TIMEOUT_MS ? timeout_ms(cli) : DARNER_DEFAULT_CONNECT_TIMEOUT_MS;
    return dn_conn_open(conn, &a, ms);
}

/* Sends req (a line with its CRLF) on conn. */
static int send_line(struct cli *cli, struct dn_conn *conn, const char *req)
{
    dn_iov iov = {(void *)req, strlen(req)};
    return dn_conn_writev(conn, &iov, 1, timeout_ms(cli));
}

/* Copies word n (0-based, space-separated) of line (len bytes) into out;
 * returns its length, or -1 when there is none or it does not fit. */
static int word(const char *line, size_t len, int n, char *out, size_t size)
{
    size_t p = 0;
    for (int k = 0;; k++) {
        while (p < len && line[p] == ' ')
            p++;
        size_t start = p;
        while (p < len && line[p] != ' ')
            p++;
        if (p == start)
            return -1;
        if (k == n) {
            if (p - start >= size)
                return -1;
            memcpy(out, line + start, p - start);
            out[p - start] = '\0';
            return (int)(p - start);
        }
    }
}

static void answer_free(struct cl_answer *a)
{
    free(a->lines);
    a->lines = NULL;
    a->n = a->nmembers = 0;
}

/* Asks name `cluster`. Returns 0 with *a filled, or a negative errno with
 * a->error saying why. */
static int ask_cluster(struct cli *cli, const char *name, struct cl_answer *a)
{
    struct dn_conn conn;
    memset(a, 0, sizeof(*a));
    int rc = open_name(cli, &conn, name);
    if (rc == 0)
        rc = send_line(cli, &conn, "cluster\r\n");
    while (rc == 0) {
        const char *line;
        size_t len;
        if ((rc = dn_conn_readline(&conn, &line, &len, timeout_ms(cli))) < 0)
            break;
        if (len == 3 && memcmp(line, "END", 3) == 0)
            break;
        struct cl_line l;
        memset(&l, 0, sizeof(l));
        char kind[8] = "";
        int member = word(line, len, 0, kind, sizeof(kind)) > 0 && strcmp(kind, "MEMBER") == 0;
        int cell = !member && strcmp(kind, "CELL") == 0;
        if (member ? word(line, len, 1, l.id, sizeof(l.id)) < 0 || word(line, len, 2, l.addr, sizeof(l.addr)) < 0 ||
                         word(line, len, 3, l.role, sizeof(l.role)) < 0
                   : !cell || word(line, len, 1, l.addr, sizeof(l.addr)) < 0) {
            snprintf(a->error, sizeof(a->error), "%s: unexpected answer to `cluster`: %.*s%s", name,
                     (int)(len < 200 ? len : 200), line,
                     len == 5 && memcmp(line, "ERROR", 5) == 0 ? " (a server without cells)" : "");
            rc = -EPROTO;
            break;
        }
        struct cl_line *nl = realloc(a->lines, (a->n + 1) * sizeof(*nl));
        if (!nl) {
            rc = -ENOMEM;
            break;
        }
        a->lines = nl;
        a->lines[a->n++] = l;
        a->nmembers += member;
    }
    dn_conn_close(&conn);
    if (rc < 0) {
        answer_free(a);
        if (!a->error[0])
            snprintf(a->error, sizeof(a->error), "%s: %s", name, darner_strerror(rc));
    }
    return rc;
}

/* ---- cluster: the list ---- */

/* An id that reads as a whole number goes out as a JSON number. */
static void json_id(const char *id)
{
    size_t n = strlen(id);
    if (n > 0 && n < 16 && strspn(id, "0123456789") == n && !(id[0] == '0' && n > 1))
        fputs(id, stdout);
    else
        json_cstr(stdout, id);
}

static void list_json(struct cli *cli, const struct cl_answer *ans, size_t n)
{
    fputs("{\"ok\":true,\"cells\":[", stdout);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (ans[i].error[0])
            continue;
        fputs(first ? "{\"server\":" : ",{\"server\":", stdout);
        first = 0;
        json_cstr(stdout, darner_client_server_name(cli->client, i));
        fputs(",\"members\":[", stdout);
        int m = 0;
        for (size_t k = 0; k < ans[i].n; k++) {
            const struct cl_line *l = &ans[i].lines[k];
            if (!l->id[0])
                continue;
            fputs(m++ ? ",{\"id\":" : "{\"id\":", stdout);
            json_id(l->id);
            fputs(",\"address\":", stdout);
            json_cstr(stdout, l->addr);
            fputs(",\"role\":", stdout);
            json_cstr(stdout, l->role);
            fputc('}', stdout);
        }
        fputs("],\"cells\":[", stdout);
        int c = 0;
        for (size_t k = 0; k < ans[i].n; k++)
            if (!ans[i].lines[k].id[0]) {
                if (c++)
                    fputc(',', stdout);
                json_cstr(stdout, ans[i].lines[k].addr);
            }
        fputs("]}", stdout);
    }
    fputs("],\"errors\":[", stdout);
    first = 1;
    for (size_t i = 0; i < n; i++) {
        if (!ans[i].error[0])
            continue;
        fputs(first ? "{\"server\":" : ",{\"server\":", stdout);
        first = 0;
        json_cstr(stdout, darner_client_server_name(cli->client, i));
        fputs(",\"error\":", stdout);
        json_cstr(stdout, ans[i].error);
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
}

/* CELL (its number in the list), ID, ADDRESS, ROLE: a row per member, then
 * a row per other cell it lists (ROLE "cell"); a single server is one row
 * with ROLE "single". */
static int list_table(const struct cl_answer *ans, size_t n, struct cli *cli)
{
    struct table t;
    table_init(&t, 4, 0x1u);
    const char *head[] = {"CELL", "ID", "ADDRESS", "ROLE"};
    int rc = table_row(&t, head);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char num[24];
        snprintf(num, sizeof(num), "%zu", i + 1);
        if (ans[i].error[0])
            continue;
        if (!ans[i].nmembers) {
            const char *row[] = {num, "-", darner_client_server_name(cli->client, i), "single"};
            rc = table_row(&t, row);
        }
        for (int cells = 0; cells < 2; cells++)
            for (size_t k = 0; rc == 0 && k < ans[i].n; k++) {
                const struct cl_line *l = &ans[i].lines[k];
                if ((l->id[0] == '\0') != cells)
                    continue;
                const char *row[] = {num, cells ? "-" : l->id, l->addr, cells ? "cell" : l->role};
                rc = table_row(&t, row);
            }
    }
    if (rc == 0)
        table_print(&t, stdout);
    table_free(&t);
    return rc;
}

static int cluster_list(struct cli *cli)
{
    size_t n = darner_client_server_count(cli->client);
    struct cl_answer *ans = calloc(n ? n : 1, sizeof(*ans));
    if (!ans)
        return cli_fail(cli, "cluster", -ENOMEM);
    int status = CLI_OK;
    for (size_t i = 0; i < n; i++)
        if (ask_cluster(cli, darner_client_server_name(cli->client, i), &ans[i]) < 0) {
            fprintf(stderr, "darner-cli: %s\n", ans[i].error);
            status = CLI_ERR;
        }
    if (cli->json)
        list_json(cli, ans, n);
    else if (list_table(ans, n, cli) < 0)
        status = cli_fail(cli, "cluster", -ENOMEM);
    for (size_t i = 0; i < n; i++)
        answer_free(&ans[i]);
    free(ans);
    return status;
}

/* ---- cluster add|remove|transfer ---- */

/* 1 if every server given is in the first one's cell (a member in its
 * answer, or the address the list holds for it); else 0 after a message. */
static int one_cell(struct cli *cli, const char *what)
{
    const char *list = cli->servers && *cli->servers ? cli->servers : DARNER_DEFAULT_SERVERS;
    struct dn_addr *given = NULL;
    size_t ngiven = 0;
    if (dn_servers_parse(list, DARNER_DEFAULT_PORT, &given, &ngiven) < 0 || ngiven < 2) {
        free(given);
        return 1;
    }
    const char *target = darner_client_server_name(cli->client, 0);
    struct cl_answer a;
    if (ask_cluster(cli, target, &a) < 0) {
        cli_usage_error(cli, "cluster %s changes one cell, and which cell %s is in cannot be told (%s): give one "
                        "server (-s HOST:PORT) of the cell to change", what, given[0].name, a.error);
        free(given);
        return 0;
    }
    int ok = 1;
    for (size_t g = 1; ok && g < ngiven; g++) {
        int in = strcmp(given[g].name, given[0].name) == 0 || strcmp(given[g].name, target) == 0;
        for (size_t k = 0; !in && k < a.n; k++)
            in = a.lines[k].id[0] && strcmp(a.lines[k].addr, given[g].name) == 0;
        if (!in) {
            cli_usage_error(cli,
                            "cluster %s changes one cell, and %s is not a member of the cell of %s: "
                            "give one server (-s HOST:PORT) of the cell to change",
                            what, given[g].name, given[0].name);
            ok = 0;
        }
    }
    answer_free(&a);
    free(given);
    return ok;
}

/* Sends "cluster WORDS" to the cell of the first server given: its leader
 * when known (a follower relays to the leader), else each server given in
 * turn until one is reached. */
static int cluster_change(struct cli *cli, const char *what, const char *req)
{
    if (!one_cell(cli, what))
        return CLI_ERR;
    struct dn_conn conn;
    char target[DN_NAME_MAX + 1];
    snprintf(target, sizeof(target), "%s", darner_client_server_name(cli->client, 0));
    int rc = open_name(cli, &conn, target);
    if (rc < 0) {
        struct dn_addr *given = NULL;
        size_t ngiven = 0;
        const char *list = cli->servers && *cli->servers ? cli->servers : DARNER_DEFAULT_SERVERS;
        if (dn_servers_parse(list, DARNER_DEFAULT_PORT, &given, &ngiven) == 0)
            for (size_t g = 0; g < ngiven; g++)
                if (strcmp(given[g].name, target) != 0 && open_name(cli, &conn, given[g].name) == 0) {
                    snprintf(target, sizeof(target), "%s", given[g].name);
                    rc = 0;
                    break;
                }
        free(given);
    }
    char msg[1024];
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "cluster %s: %s: %s", what, target, darner_strerror(rc));
        return cli_usage_error(cli, "%s", msg);
    }
    const char *line = NULL;
    size_t len = 0;
    rc = send_line(cli, &conn, req);
    if (rc == 0)
        rc = dn_conn_readline(&conn, &line, &len, timeout_ms(cli));
    if (rc < 0) {
        dn_conn_close(&conn);
        return cli_usage_error(cli, "cluster %s: %s: %s", what, target, darner_strerror(rc));
    }
    if (len == 2 && memcmp(line, "OK", 2) == 0) {
        dn_conn_close(&conn);
        if (cli->json)
            fputs("{\"ok\":true}\n", stdout);
        else
            puts("OK");
        return CLI_OK;
    }
    /* SERVER_ERROR why (or CLIENT_ERROR, ERROR): the server's refusal */
    size_t skip = 0;
    if (len > 13 && memcmp(line, "SERVER_ERROR ", 13) == 0)
        skip = 13;
    else if (len > 13 && memcmp(line, "CLIENT_ERROR ", 13) == 0)
        skip = 13;
    int n = (int)(len - skip < 800 ? len - skip : 800);
    if ((len >= 7 && memcmp(line, "MEMBER ", 7) == 0) || (len == 3 && memcmp(line, "END", 3) == 0))
        snprintf(msg, sizeof(msg), "cluster %s: %s answered with its members, not the change: a follower "
                 "that does not relay it (an older server); give the leader (darner-cli cluster)", what, target);
    else if (len == 5 && memcmp(line, "ERROR", 5) == 0)
        snprintf(msg, sizeof(msg), "cluster %s: %s has no such command (a server without cells, or older)", what,
                 target);
    else
        snprintf(msg, sizeof(msg), "cluster %s: %s: %.*s", what, target, n, line + skip);
    dn_conn_close(&conn);
    cli_usage_error(cli, "%s", msg);
    return CLI_EMPTY;
}

/* A word that can go on the request line as it is. */
static int plain_word(const char *s)
{
    if (!*s || strlen(s) > 200)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

#define CLUSTER_USAGE "usage: cluster [add ID@HOST:RAFT_PORT:PORT | remove ID | transfer [ID]]"

int cmd_cluster(struct cli *cli, int argc, char **argv)
{
    struct argscan a;
    args_init(&a, argc, argv);
    const char *words[3];
    int n = 0, opt;
    const char *s;
    while ((s = args_next(&a, &opt))) {
        if (opt || n == 3)
            return cli_usage_error(cli, CLUSTER_USAGE);
        words[n++] = s;
    }
    if (n == 0)
        return cluster_list(cli);
    const char *what = words[0];
    int want_lo, want_hi;
    if (strcmp(what, "add") == 0 || strcmp(what, "remove") == 0)
        want_lo = want_hi = 2;
    else if (strcmp(what, "transfer") == 0)
        want_lo = 1, want_hi = 2;
    else
        return cli_usage_error(cli, "cluster: unknown subcommand '%s' (%s)", what, CLUSTER_USAGE);
    if (n < want_lo || n > want_hi)
        return cli_usage_error(cli, "usage: cluster %s", strcmp(what, "add") == 0 ? "add ID@HOST:RAFT_PORT:PORT"
                                                          : strcmp(what, "remove") == 0 ? "remove ID"
                                                                                        : "transfer [ID]");
    if (n == 2 && !plain_word(words[1]))
        return cli_usage_error(cli, "cluster %s: '%s' is not one word", what, words[1]);
    char req[256];
    snprintf(req, sizeof(req), "cluster %s%s%s\r\n", what, n == 2 ? " " : "", n == 2 ? words[1] : "");
    return cluster_change(cli, what, req);
}
