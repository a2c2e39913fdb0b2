/* main.c: flags, data folder, wiring; the only place that exits. */
#include "app.h"
#include "auth.h"
#include "auth_file.h"
#include "conffile.h"
#include "config.h"
#include "server.h"

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

/* Creates dir and its parents; checks it is a folder we can write to. */
static int prepare_data_dir(const char *dir)
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

/* Many queues and connections each hold fds: use what the hard limit allows.
 * Notes the limits in cfg for the start-up log. */
static void raise_fd_limit(struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    cfg->nofile_was = cfg->nofile_soft = (uint64_t)rl.rlim_cur;
    cfg->nofile_hard = (uint64_t)rl.rlim_max;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            cfg->nofile_soft = (uint64_t)rl.rlim_cur;
    }
}

int darner_main(int argc, char **argv, const struct jio *io)
{
    struct config cfg;
    struct conffile *file;
    config_defaults(&cfg);
    switch (config_parse(&cfg, &file, argc, argv, stdout, stderr)) {
    case CONFIG_EXIT_OK:
        return 0;
    case CONFIG_EXIT_ERROR:
        return 2;
    case CONFIG_RUN:
        break;
    }
    struct conf_error cerr;
    if (!file && conffile_load(NULL, NULL, NULL, NULL, &file, &cerr) < 0) {
        fprintf(stderr, "darner: %s\n", cerr.msg);
        return 1;
    }
    struct auth_table *auth = NULL;
    char why[1024];
    if (cfg.auth_file[0] && auth_file_load(cfg.auth_file, &auth, why, sizeof(why)) < 0) {
        fprintf(stderr, "darner: %s\n", why);
        conffile_free(file);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&cfg);
    int rc = prepare_data_dir(cfg.data_dir);
    if (rc < 0) {
        fprintf(stderr, "darner: cannot use data folder '%s': %s; give --data a folder you can write to\n",
                cfg.data_dir, strerror(-rc));
        conffile_free(file);
        auth_free(auth);
        return 1;
    }
    uv_loop_t loop;
    if ((rc = uv_loop_init(&loop)) < 0) {
        fprintf(stderr, "darner: cannot start the event loop: %s\n", uv_strerror(rc));
        conffile_free(file);
        auth_free(auth);
        return 1;
    }
    struct server srv;
    rc = server_init(&srv, &loop, &cfg, file, io);
    if (rc == 0 && auth) { /* the server's from now on */
        srv.auth = auth;
        log_info(&srv.log, "authentication: %zu users from %s%s", auth_count(auth), cfg.auth_file,
                 auth_count(auth) ? "" : " (none: no client can authenticate)");
    } else {
        auth_free(auth);
    }
    if (rc < 0) {
        if (rc == -EPROTONOSUPPORT)
            fprintf(stderr,
                    "darner: the data folder '%s' is in a format this build cannot read (see the error "
                    "above); nothing in it was changed\n",
                    cfg.data_dir);
        else
            fprintf(stderr, "darner: cannot open the queues in '%s': %s\n", cfg.data_dir, strerror(-rc));
        uv_loop_close(&loop);
        return 1;
    }
    if ((rc = server_start(&srv)) < 0) {
        fprintf(stderr, "darner: cannot start: %s\n", uv_strerror(rc));
        server_stop(&srv);
        uv_run(&loop, UV_RUN_DEFAULT);
        server_free(&srv);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    log_info(&srv.log, "stopped");
    server_free(&srv);
    uv_loop_close(&loop);
    return 0;
}

#ifndef DARNER_NO_MAIN
int main(int argc, char **argv) { return darner_main(argc, argv, jio_posix()); }
#endif
