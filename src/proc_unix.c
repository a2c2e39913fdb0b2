/* proc_unix.c: proc.h on Linux, the BSDs and macOS. */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

const struct proc_signal PROC_SIGNALS[PROC_NSIGNALS] = {
    {SIGTERM, PROC_SIG_STOP},
    {SIGINT, PROC_SIG_STOP},
    {SIGHUP, PROC_SIG_RELOAD},
};

void proc_init(void) { signal(SIGPIPE, SIG_IGN); }

char **proc_args(int argc, char **argv)
{
    (void)argc;
    return argv;
}

int proc_raise_fd_limit(struct proc_fd_limit *l)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    l->was = l->soft = (uint64_t)rl.rlim_cur;
    l->hard = (uint64_t)rl.rlim_max;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            l->soft = (uint64_t)rl.rlim_cur;
    }
    return 0;
}

uint64_t proc_max_fds(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/* From /proc/self/statm where there is one (Linux); elsewhere libuv's
 * resident size and no virtual size. */
void proc_memory(uint64_t *rss, uint64_t *virt)
{
    *rss = *virt = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long vm, res;
    if (f && fscanf(f, "%llu %llu", &vm, &res) == 2) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        *virt = vm * page;
        *rss = res * page;
    } else {
        size_t r;
        if (uv_resident_set_memory(&r) == 0)
            *rss = r;
    }
    if (f)
        fclose(f);
}

struct proc_fds {
    DIR *dir; /* /proc/self/fd (Linux) or /dev/fd (the BSDs, macOS) */
    uint64_t n;
};

struct proc_fds *proc_fds_begin(void)
{
    struct proc_fds *f = calloc(1, sizeof(*f));
    if (f && !(f->dir = opendir("/proc/self/fd")) && !(f->dir = opendir("/dev/fd"))) {
        free(f);
        return NULL;
    }
    return f;
}

/* The folder may change between steps: the count is as of about then. */
int proc_fds_step(struct proc_fds *f, size_t n, uint64_t *count)
{
    for (; n > 0; n--) {
        struct dirent *e = readdir(f->dir);
        if (!e)
            break;
        f->n += e->d_name[0] != '.';
    }
    if (n == 0)
        return 0;                 /* stopped at the budget: more next step */
    *count = f->n ? f->n - 1 : 0; /* less the listing's own fd */
    return 1;
}

void proc_fds_end(struct proc_fds *f)
{
    if (!f)
        return;
    closedir(f->dir);
    free(f);
}

int proc_prepare_dir(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (access(path, R_OK | W_OK | X_OK) < 0)
        return -errno;
    return 0;
}

FILE *proc_fopen_append(const char *path) { return fopen(path, "a"); }

void proc_gmtime(time_t secs, struct tm *tm) { gmtime_r(&secs, tm); }
