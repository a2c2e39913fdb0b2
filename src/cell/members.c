/* cell/members.c: the cluster_members setting (cell/cell.h). */
#include "cell/cell.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One "ID@HOST:RAFT_PORT:PORT" of n bytes into *m. Returns 0 or -EINVAL. */
static int parse_one(const char *p, size_t n, struct cell_member *m, char *why, size_t why_cap)
{
    char item[256];
    if (n == 0 || n >= sizeof(item)) {
        snprintf(why, why_cap, "a member is empty or too long");
        return -EINVAL;
    }
    memcpy(item, p, n);
    item[n] = '\0';
    char *at = strchr(item, '@');
    char *c2 = strrchr(item, ':');
    char *c1 = c2 && c2 > item ? memrchr(item, ':', (size_t)(c2 - item)) : NULL;
    if (!at || !c1 || !c2 || at > c1 || at == item || c1 == at + 1) {
        snprintf(why, why_cap, "member '%s' is not ID@HOST:RAFT_PORT:PORT", item);
        return -EINVAL;
    }
    *at = *c1 = *c2 = '\0';
    char *end;
    unsigned long long id = strtoull(item, &end, 10);
    unsigned long rp = strtoul(c1 + 1, &end, 10);
    int rp_ok = *end == '\0' && c1[1] != '\0';
    unsigned long cp = strtoul(c2 + 1, &end, 10);
    int cp_ok = *end == '\0' && c2[1] != '\0';
    size_t hl = strlen(at + 1);
    if (id == 0 || id > 1000000 || !rp_ok || !cp_ok || rp == 0 || rp > 65535 || cp == 0 || cp > 65535 ||
        hl >= sizeof(m->host) || strchr(item, ' ')) {
        snprintf(why, why_cap, "member '%s@%s:%s:%s': the id must be 1..1000000 and the ports 1..65535", item, at + 1,
                 c1 + 1, c2 + 1);
        return -EINVAL;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, at + 1, &a4) != 1) {
        /* libraft 0.15's TCP transport takes IPv4 addresses only */
        snprintf(why, why_cap, "member %s: the host must be an IPv4 address (a.b.c.d)", at + 1);
        return -EINVAL;
    }
    *m = (struct cell_member){.id = id, .raft_port = (int)rp, .port = (int)cp};
    memcpy(m->host, at + 1, hl + 1);
    snprintf(m->raft_addr, sizeof(m->raft_addr), "%s:%d", m->host, m->raft_port);
    return 0;
}

int cell_parse_members(const char *text, struct cell_member *out, size_t cap, char *why, size_t why_cap)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if (n == cap) {
            snprintf(why, why_cap, "a cell has at most %zu members", cap);
            return -EINVAL;
        }
        int rc = parse_one(p, (size_t)(e - p), &out[n], why, why_cap);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (out[i].id == out[n].id || strcmp(out[i].raft_addr, out[n].raft_addr) == 0) {
                snprintf(why, why_cap, "member %" PRIu64 " (%s) is listed twice", out[n].id, out[n].raft_addr);
                return -EINVAL;
            }
        n++;
        p = e;
    }
    if (n == 0) {
        snprintf(why, why_cap, "cluster_members is empty: list the cell's members as ID@HOST:RAFT_PORT:PORT");
        return -EINVAL;
    }
    return (int)n;
}
