/* cluster.c: a fleet of cells (docs/client.md, Fleets of cells). Each
 * server given is asked `cluster` once at first use: a member of a cell
 * answers its cell's members, which become one entry of the server table
 * (its address the leader's when known, the others kept to follow a leader
 * change), and the other cells it knows (CELL lines), which are asked in
 * turn. A server that answers no MEMBER line (a single server, or one older
 * than `cluster`) stays an entry of its own. After a failure of a cell the
 * cells are asked again, at most once a second. */
#include "client_int.h"

#include "cluster.h"
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REDISCOVER_MS 1000 /* cells asked again at most this often */
#define DEPTH_TTL_MS 1000  /* a queue's depth seen on a server is used this long */

void dn_cluster_init(struct dn_cluster *a)
{
    memset(a, 0, sizeof(*a));
    a->leader = SIZE_MAX;
}

void dn_cluster_free(struct dn_cluster *a)
{
    free(a->members);
    free(a->cells);
    dn_cluster_init(a);
}

size_t dn_addr_find(const struct dn_addr *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

static int push_addr(struct dn_addr **list, size_t *n, const struct dn_addr *a)
{
    if (*n >= DN_SERVERS_MAX)
        return 0; /* enough: the rest is ignored */
    struct dn_addr *l = realloc(*list, (*n + 1) * sizeof(**list));
    if (!l)
        return -ENOMEM;
    l[(*n)++] = *a;
    *list = l;
    return 0;
}

/* The next space-separated word of line[*pos, len). */
static int next_word(const char *line, size_t len, size_t *pos, const char **w, size_t *wl)
{
    while (*pos < len && line[*pos] == ' ')
        (*pos)++;
    size_t start = *pos;
    while (*pos < len && line[*pos] != ' ')
        (*pos)++;
    *w = line + start;
    *wl = *pos - start;
    return *wl > 0;
}

static int word_is(const char *w, size_t wl, const char *s) { return wl == strlen(s) && memcmp(w, s, wl) == 0; }

int dn_cluster_line(struct dn_cluster *a, const char *line, size_t len)
{
    size_t pos = 0;
    const char *w, *id, *ad, *role;
    size_t wl, idl, adl, rolel;
    if (!next_word(line, len, &pos, &w, &wl))
        return -EPROTO;
    if (word_is(w, wl, "END") && pos == len)
        return 1;
    struct dn_addr addr;
    if (word_is(w, wl, "CELL")) {
        if (!next_word(line, len, &pos, &ad, &adl) || dn_addr_parse(ad, adl, DARNER_DEFAULT_PORT, &addr) < 0)
            return -EPROTO;
        return push_addr(&a->cells, &a->ncells, &addr);
    }
    if (word_is(w, wl, "MEMBER")) {
        if (!next_word(line, len, &pos, &id, &idl) || !next_word(line, len, &pos, &ad, &adl) ||
            !next_word(line, len, &pos, &role, &rolel) || dn_addr_parse(ad, adl, DARNER_DEFAULT_PORT, &addr) < 0)
            return -EPROTO;
        (void)id;
        if (word_is(role, rolel, "leader"))
            a->leader = a->nmembers;
        return push_addr(&a->members, &a->nmembers, &addr);
    }
    return -EPROTO;
}

/* Asks addr `cluster` on a connection of its own. Returns 0 with *out
 * filled, or a negative errno (-EPROTO: no such command there). */
static int ask(darner_client *c, const struct dn_addr *addr, struct dn_cluster *out)
{
    struct dn_conn conn;
    dn_conn_init(&conn);
    dn_cluster_init(out);
    int rc = dn_conn_open(&conn, addr, c->connect_timeout_ms);
    if (rc < 0)
        return rc;
    dn_iov iov = {(void *)"cluster\r\n", 9};
    rc = dn_conn_writev(&conn, &iov, 1, c->timeout_ms);
    while (rc == 0) {
        const char *line;
        size_t len;
        rc = dn_conn_readline(&conn, &line, &len, c->timeout_ms);
        if (rc == 0)
            rc = dn_cluster_line(out, line, len);
    }
    dn_conn_close(&conn);
    if (rc == 1)
        return 0;
    dn_cluster_free(out);
    return rc;
}

/* The entry of servers (n) that has name among its members or as its
 * address, or SIZE_MAX. */
static size_t find_entry(const struct dn_server *servers, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(servers[i].addr.name, name) == 0 ||
            dn_addr_find(servers[i].members, servers[i].nmembers, name) != SIZE_MAX)
            return i;
    return SIZE_MAX;
}

/* The entry some member of a belongs to, or SIZE_MAX. */
static size_t find_cell(const struct dn_server *servers, size_t n, const struct dn_cluster *a)
{
    for (size_t k = 0; k < a->nmembers; k++) {
        size_t i = find_entry(servers, n, a->members[k].name);
        if (i != SIZE_MAX)
            return i;
    }
    return SIZE_MAX;
}

/* Makes s a cell from answer a (its members taken), reached at first
 * through asked (a member, maybe spelled otherwise than in the answer). */
static int make_cell(darner_client *c, struct dn_server *s, struct dn_cluster *a, const struct dn_addr *asked)
{
    size_t at = dn_addr_find(a->members, a->nmembers, asked->name);
    if (at == SIZE_MAX) {
        int rc = push_addr(&a->members, &a->nmembers, asked);
        if (rc < 0)
            return rc;
        at = a->nmembers - 1;
    }
    free(s->members);
    s->members = a->members;
    s->nmembers = a->nmembers;
    a->members = NULL;
    a->nmembers = 0;
    /* the leader's address when known; else the one used so far, if it is
     * still a member; else the member that answered (followers relay) */
    size_t use = a->leader != SIZE_MAX ? a->leader : dn_addr_find(s->members, s->nmembers, s->addr.name);
    if (use == SIZE_MAX)
        use = at;
    s->member = use;
    s->addr = s->members[use];
    s->probe = 0;
    c->fleet.cells = 1;
    return 0;
}

/* Adds the CELL addresses of a not yet in todo to it. */
static int add_todo(struct dn_addr **todo, size_t *ntodo, const struct dn_cluster *a)
{
    for (size_t k = 0; k < a->ncells; k++)
        if (dn_addr_find(*todo, *ntodo, a->cells[k].name) == SIZE_MAX) {
            int rc = push_addr(todo, ntodo, &a->cells[k]);
            if (rc < 0)
                return rc;
        }
    return 0;
}

/* Appends an entry for addr to the table (n, *cap). */
static struct dn_server *append(struct dn_server **servers, size_t *n, const struct dn_addr *addr)
{
    if (*n >= DN_SERVERS_MAX)
        return NULL;
    struct dn_server *t = realloc(*servers, (*n + 1) * sizeof(**servers));
    if (!t)
        return NULL;
    *servers = t;
    struct dn_server *s = &t[(*n)++];
    memset(s, 0, sizeof(*s));
    s->addr = *addr;
    dn_conn_init(&s->conn);
    return s;
}

/* Asks every address of todo from index from on that no entry holds yet,
 * appending an entry for each (a cell, or a single server). todo grows with
 * the CELL lines found. probe: entries for addresses that do not answer are
 * asked again at the next discovery. */
static int ask_new(darner_client *c, struct dn_server **servers, size_t *n, struct dn_addr **todo, size_t *ntodo,
                   size_t from, size_t nprobe_from)
{
    for (size_t i = from; i < *ntodo; i++) {
        struct dn_addr a = (*todo)[i];
        if (find_entry(*servers, *n, a.name) != SIZE_MAX)
            continue;
        struct dn_cluster ans;
        int asked = ask(c, &a, &ans) == 0, rc = 0;
        if (asked && (rc = add_todo(todo, ntodo, &ans)) < 0) {
            dn_cluster_free(&ans);
            return rc;
        }
        if (asked && ans.nmembers && find_cell(*servers, *n, &ans) != SIZE_MAX) {
            dn_cluster_free(&ans); /* another spelling of a cell already found */
            continue;
        }
        struct dn_server *s = append(servers, n, &a);
        if (!s) {
            dn_cluster_free(&ans);
            return *n >= DN_SERVERS_MAX ? 0 : -ENOMEM;
        }
        if (asked && ans.nmembers)
            rc = make_cell(c, s, &ans, &a);
        else
            s->probe = !asked && i >= nprobe_from;
        if (asked)
            dn_cluster_free(&ans);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The first discovery: the table is made again from the answers, the
 * servers given first, in their order. A fleet of single servers keeps its
 * table as it was. */
static int discover_first(darner_client *c)
{
    struct dn_fleet *f = &c->fleet;
    size_t ntodo = 0, n = 0;
    struct dn_addr *todo = NULL;
    struct dn_server *servers = NULL;
    int rc = 0;
    for (size_t i = 0; i < f->n && rc == 0; i++)
        if (dn_addr_find(todo, ntodo, f->servers[i].addr.name) == SIZE_MAX)
            rc = push_addr(&todo, &ntodo, &f->servers[i].addr);
    size_t given = ntodo;
    if (rc == 0)
        rc = ask_new(c, &servers, &n, &todo, &ntodo, 0, given);
    free(todo);
    /* no cell found, and no CELL line: the entries are the servers given */
    int same = rc == 0 && !f->cells && n == given;
    if (rc < 0 || same || n == 0) {
        for (size_t i = 0; i < n; i++)
            dn_server_free_extra(&servers[i]);
        free(servers);
        return rc;
    }
    /* nothing is connected or open before the first discovery */
    for (size_t i = 0; i < f->n; i++) {
        dn_conn_close(&f->servers[i].conn);
        dn_server_free_extra(&f->servers[i]);
    }
    free(f->servers);
    f->servers = servers;
    f->n = n;
    f->next_get = (size_t)dn_fleet_random(f, n);
    f->next_set = (size_t)dn_fleet_random(f, n);
    return 0;
}

/* Later discoveries: each cell (and each CELL address not reached yet) is
 * asked again, its members and leader brought up to date; new cells are
 * appended. Entries never move, so open items keep their server. */
static int discover_again(darner_client *c)
{
    struct dn_fleet *f = &c->fleet;
    size_t ntodo = 0, n0 = f->n;
    struct dn_addr *todo = NULL;
    int rc = 0;
    for (size_t i = 0; i < n0 && rc == 0; i++) {
        struct dn_server *s = &f->servers[i];
        if (!s->members && !s->probe)
            continue;
        size_t tries = s->members ? s->nmembers : 1;
        for (size_t k = 0; k < tries; k++) {
            struct dn_addr a = s->members ? s->members[(s->member + k) % s->nmembers] : s->addr;
            struct dn_cluster ans;
            if (ask(c, &a, &ans) < 0)
                continue;
            rc = add_todo(&todo, &ntodo, &ans);
            if (rc == 0 && ans.nmembers)
                rc = make_cell(c, s, &ans, &a);
            else if (rc == 0)
                s->probe = 0; /* a single server after all */
            dn_cluster_free(&ans);
            break;
        }
    }
    size_t n = f->n;
    if (rc == 0)
        rc = ask_new(c, &f->servers, &n, &todo, &ntodo, 0, 0);
    f->n = n;
    free(todo);
    return rc;
}

int dn_discover(darner_client *c)
{
    int first = !c->discovered;
    c->discovered = 1;
    c->rediscover = 0;
    c->discover_after = dn_now_ms() + REDISCOVER_MS;
    return first ? discover_first(c) : discover_again(c);
}

void dn_begin(darner_client *c)
{
    dn_clear_error(c);
    c->noquorum = 0;
    if (!c->discovered || (c->rediscover && (c->fleet.cells || c->probes) && dn_now_ms() >= c->discover_after))
        (void)dn_discover(c); /* what is not found is not used: errors show on the requests */
    c->probes = 0;
    for (size_t i = 0; i < c->fleet.n; i++)
        c->probes |= c->fleet.servers[i].probe;
    dn_clear_error(c);
}

int darner_client_discover(darner_client *c)
{
    dn_clear_error(c);
    int rc = dn_discover(c);
    c->probes = 0;
    for (size_t i = 0; i < c->fleet.n; i++)
        c->probes |= c->fleet.servers[i].probe;
    return rc;
}

void dn_follow(darner_client *c, size_t i)
{
    struct dn_server *s = &c->fleet.servers[i];
    if (s->members || s->probe)
        c->rediscover = 1;
}

int dn_cell_connect(darner_client *c, size_t i)
{
    struct dn_server *s = &c->fleet.servers[i];
    int rc = dn_conn_open(&s->conn, &s->addr, c->connect_timeout_ms);
    if (rc == 0 || s->nmembers < 2)
        return rc;
    /* the leader may be gone: any other member relays to the new one */
    c->rediscover = 1;
    for (size_t k = 1; k < s->nmembers; k++) {
        size_t m = (s->member + k) % s->nmembers;
        if (dn_conn_open(&s->conn, &s->members[m], c->connect_timeout_ms) == 0) {
            s->member = m;
            s->addr = s->members[m];
            return 0;
        }
    }
    return rc;
}

void dn_cell_next_member(darner_client *c, size_t i)
{
    struct dn_server *s = &c->fleet.servers[i];
    if (s->nmembers < 2)
        return;
    s->member = (s->member + 1) % s->nmembers;
    s->addr = s->members[s->member];
    c->rediscover = 1;
}

/* Parses "items=N" (after blanks) of a dump_stats line. */
static int items_line(const char *line, size_t len, uint64_t *v)
{
    size_t p = 0;
    while (p < len && (line[p] == ' ' || line[p] == '\t'))
        p++;
    if (len - p < 7 || memcmp(line + p, "items=", 6) != 0)
        return 0;
    uint64_t x = 0;
    for (p += 6; p < len && line[p] >= '0' && line[p] <= '9'; p++)
        x = x * 10 + (uint64_t)(line[p] - '0');
    *v = x;
    return 1;
}

int dn_queue_depth(darner_client *c, size_t i, const char *queue, uint64_t *depth)
{
    struct dn_server *s = &c->fleet.servers[i];
    int64_t now = dn_now_ms();
    if (s->depth_queue && strcmp(s->depth_queue, queue) == 0 && now - s->depth_at < DEPTH_TTL_MS) {
        *depth = s->depth;
        return 0;
    }
    char req[DN_REQ_MAX];
    int len = dn_req_queue(req, sizeof(req), "dump_stats", queue);
    if (len < 0)
        return len;
    int rc = dn_server_connect(c, i);
    if (rc < 0)
        return rc;
    dn_iov iov = {req, (size_t)len};
    if ((rc = dn_server_send(c, i, &iov, 1)) < 0)
        return rc;
    uint64_t items = 0;
    for (;;) {
        const char *line;
        size_t n;
        rc = dn_conn_readline(&s->conn, &line, &n, c->timeout_ms);
        if (rc < 0) {
            dn_server_drop(c, i, rc, rc != -EPROTO);
            return rc;
        }
        struct dn_reply r;
        if (dn_reply_parse(line, n, &r) < 0)
            r.kind = DN_R_UNKNOWN;
        if (r.kind == DN_R_END)
            break;
        if (r.kind == DN_R_ERROR || r.kind == DN_R_CLIENT_ERROR || r.kind == DN_R_SERVER_ERROR)
            return dn_reply_failure(c, i, &r);
        (void)items_line(line, n, &items); /* "queue 'q' {", "  key=value", "}" */
    }
    dn_depth_note(c, i, queue, items);
    s->depth_at = dn_now_ms();
    *depth = items;
    return 0;
}

void dn_depth_note(darner_client *c, size_t i, const char *queue, uint64_t depth)
{
    struct dn_server *s = &c->fleet.servers[i];
    if (!s->depth_queue || strcmp(s->depth_queue, queue) != 0) {
        char *q = strdup(queue);
        if (!q)
            return;
        free(s->depth_queue);
        s->depth_queue = q;
        s->depth_at = 0; /* known only from a dump_stats */
    }
    s->depth = depth;
}
