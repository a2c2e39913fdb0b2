/* main.c: flags, data folder, wiring; the only place that exits. */
#include "app.h"
#include "auth.h"
#include "auth_file.h"
#include "conffile.h"
#include "config.h"
#include "proc.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Many queues and connections each hold fds: use what the hard limit allows.
 * Notes the limits in cfg for the start-up log. */
static void raise_fd_limit(struct config *cfg)
{
    struct proc_fd_limit l;
    if (proc_raise_fd_limit(&l) < 0)
        return;
    cfg->nofile_was = l.was;
    cfg->nofile_soft = l.soft;
    cfg->nofile_hard = l.hard;
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
    proc_init();
    raise_fd_limit(&cfg);
    int rc = proc_prepare_dir(cfg.data_dir);
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
