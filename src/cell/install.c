/* cell/install.c: a member catches up from a snapshot by fetching files
 * (cell/install.h). */
#include "cell/install.h"

#include "util/errstr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define CHUNK (1u << 20) /* asked for in one request */
#define RBUF (64u << 10) /* the socket's read buffer */
#define IO_TIMEOUT_S 30  /* a read or write on the socket */
#define FETCH_NAME "tmp/cell-fetch.tmp"

struct fetcher {
    int sock;
    const char *root;
    char host[64];
    int port;
    unsigned char *rbuf; /* RBUF bytes */
    size_t rpos, rlen;
    unsigned char *wbuf; /* CHUNK bytes: file bytes on their way to disk */
    const struct log *log;
    struct cell_install_stats *st;
};

static int dial(struct fetcher *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    if (inet_pton(AF_INET, f->host, &a.sin_addr) != 1)
        return -EINVAL;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(s);
        return rc;
    }
    f->sock = s;
    f->rpos = f->rlen = 0;
    return 0;
}

static int send_all(int s, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(s, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fill(struct fetcher *f)
{
    if (f->rpos == f->rlen)
        f->rpos = f->rlen = 0;
    for (;;) {
        ssize_t r = recv(f->sock, f->rbuf + f->rlen, RBUF - f->rlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ECONNRESET;
        if (r < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        f->rlen += (size_t)r;
        return 0;
    }
}

/* One answer line (without CRLF, NUL-terminated) into out. */
static int read_line(struct fetcher *f, char *out, size_t cap)
{
    for (;;) {
        unsigned char *nl = memchr(f->rbuf + f->rpos, '\n', f->rlen - f->rpos);
        if (nl) {
            size_t n = (size_t)(nl - (f->rbuf + f->rpos));
            if (n && nl[-1] == '\r')
                n--;
            if (n >= cap)
                return -EBADMSG;
            memcpy(out, f->rbuf + f->rpos, n);
            out[n] = '\0';
            f->rpos = (size_t)(nl - f->rbuf) + 1;
            return 0;
        }
        if (f->rpos > 0) {
            memmove(f->rbuf, f->rbuf + f->rpos, f->rlen - f->rpos);
            f->rlen -= f->rpos;
            f->rpos = 0;
        }
        if (f->rlen == RBUF)
            return -EBADMSG;
        int rc = fill(f);
        if (rc < 0)
            return rc;
    }
}

/* n bytes of the answer into p. */
static int read_exact(struct fetcher *f, unsigned char *p, size_t n)
{
    while (n) {
        if (f->rpos == f->rlen) {
            int rc = fill(f);
            if (rc < 0)
                return rc;
        }
        size_t k = f->rlen - f->rpos < n ? f->rlen - f->rpos : n;
        memcpy(p, f->rbuf + f->rpos, k);
        f->rpos += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* Bytes [off, off + len) of the leader's file path, written to fd at dst.
 * *got: bytes written; *absent: the leader has no such file. */
static int fetch_range(struct fetcher *f, const char *path, uint64_t off, uint64_t len, int fd, uint64_t dst,
                       uint64_t *got, int *absent)
{
    *got = 0;
    *absent = 0;
    while (*got < len) {
        uint64_t want = len - *got < CHUNK ? len - *got : CHUNK;
        char req[COP_PATH_MAX + 80], line[COP_PATH_MAX + 120];
        int n = snprintf(req, sizeof(req), "cellfile %s %" PRIu64 " %" PRIu64 "\r\n", path, off + *got, want);
        int rc = send_all(f->sock, req, (size_t)n);
        if (rc == 0)
            rc = read_line(f, line, sizeof(line));
        if (rc < 0)
            return rc;
        if (strcmp(line, "END") == 0) {
            *absent = 1;
            return 0;
        }
        uint64_t vn, size;
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "VALUE %%*s 0 %%%s %%%s", SCNu64, SCNu64);
        if (strncmp(line, "VALUE ", 6) != 0 || sscanf(line, fmt, &vn, &size) != 2 || vn > want) {
            log_warn(f->log, "cell: catching up: the leader answered '%.200s' for %s", line, path);
            return -EPROTO;
        }
        for (uint64_t left = vn; left;) {
            size_t k = left < CHUNK ? (size_t)left : CHUNK;
            if ((rc = read_exact(f, f->wbuf, k)) < 0)
                return rc;
            for (size_t w = 0; w < k;) {
                ssize_t r = pwrite(fd, f->wbuf + w, k - w, (off_t)(dst + *got + w));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    return r < 0 ? -errno : -EIO;
                w += (size_t)r;
            }
            *got += k;
            left -= k;
        }
        if ((rc = read_line(f, line, sizeof(line))) < 0 || (rc = read_line(f, line, sizeof(line))) < 0)
            return rc;
        if (strcmp(line, "END") != 0)
            return -EPROTO;
        f->st->bytes += vn;
        if (vn < want) /* the leader's file is shorter now: a later entry cut it */
            return 0;
    }
    return 0;
}

/* mkdir -p of path's parent folders under root. */
static int make_parents(const char *root, const char *path)
{
    char buf[4096 + COP_PATH_MAX + 2];
    int n = snprintf(buf, sizeof(buf), "%s/%s", root, path);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -ENAMETOOLONG;
    size_t rl = strlen(root);
    for (char *p = buf + rl + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    return 0;
}

/* Whether the first bytes of the file at fd agree with it's head. */
static int head_agrees(int fd, uint64_t size, const struct cst_item *it)
{
    unsigned char b[COP_HEAD];
    size_t n = size < it->head_len ? (size_t)size : it->head_len;
    ssize_t r = pread(fd, b, n, 0);
    return r == (ssize_t)n && memcmp(b, it->head, n) == 0;
}

static int one_item(void *arg, const struct cst_item *it)
{
    struct fetcher *f = arg;
    char path[4096 + COP_PATH_MAX + 2], tmp[4096 + 64];
    snprintf(path, sizeof(path), "%s/%s", f->root, it->path);
    if (it->dir) {
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            int rc = make_parents(f->root, it->path);
            if (rc < 0 || (mkdir(path, 0755) < 0 && errno != EEXIST))
                return rc < 0 ? rc : -errno;
        }
        return 0;
    }
    int rc, absent;
    uint64_t got;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat sb;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && head_agrees(fd, (uint64_t)sb.st_size, it)) {
        /* the start is the same: only the bytes it lacks */
        uint64_t have = (uint64_t)sb.st_size;
        rc = have < it->size ? fetch_range(f, it->path, have, it->size - have, fd, have, &got, &absent) : 0;
        close(fd);
        if (rc == 0 && have < it->size)
            f->st->files++;
        return rc;
    }
    if (fd >= 0)
        close(fd);
    /* the whole file, next to it first */
    snprintf(tmp, sizeof(tmp), "%s/" FETCH_NAME, f->root);
    if ((rc = make_parents(f->root, FETCH_NAME)) < 0 || (rc = make_parents(f->root, it->path)) < 0)
        return rc;
    if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -errno;
    rc = fetch_range(f, it->path, 0, it->size, fd, 0, &got, &absent);
    if (rc == 0 && !absent && !head_agrees(fd, got, it)) {
        /* the leader rewrote it from its start since the snapshot (an ack
         * log's turn): the entries after the snapshot write it again */
        log_info(f->log, "cell: catching up: %s was rewritten since the snapshot; it starts empty", it->path);
        rc = ftruncate(fd, 0) < 0 ? -errno : 0;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && !absent && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0 && !absent)
        f->st->files++;
    unlink(tmp);
    return rc;
}

static int touch_one(void *arg, const struct cst_item *it) { return cop_applier_touch(arg, it->path, it->path_len); }

/* fsyncs every file and folder st holds (through a). */
static int install_sync(const struct cop_state *st, struct cop_applier *a)
{
    int rc = cst_each(st, touch_one, a);
    return rc < 0 ? rc : cop_applier_sync(a);
}

int cell_install(const struct cop_state *st, const char *root, const char *host, int port, struct cop_applier *a,
                 const struct log *log, struct cell_install_stats *out)
{
    *out = (struct cell_install_stats){0};
    struct fetcher f = {.sock = -1, .root = root, .port = port, .log = log, .st = out};
    snprintf(f.host, sizeof(f.host), "%s", host);
    f.rbuf = malloc(RBUF);
    f.wbuf = malloc(CHUNK);
    int rc = f.rbuf && f.wbuf ? dial(&f) : -ENOMEM;
    if (rc == 0)
        rc = cst_each(st, one_item, &f);
    if (f.sock >= 0)
        close(f.sock);
    free(f.rbuf);
    free(f.wbuf);
    /* what the snapshot does not hold goes, what is longer is cut */
    if (rc == 0)
        rc = cst_reconcile(st, root);
    if (rc == 0)
        rc = install_sync(st, a);
    if (rc < 0)
        log_error(log, "cell: catching up from %s:%d failed: %s", host, port, errstr(rc));
    return rc;
}
