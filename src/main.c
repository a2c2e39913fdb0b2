/* main.c: flags, data folder, wiring; the only place that exits. */
#include "app.h"
#include "auth.h"
#include "auth_file.h"
#include "cell/cell.h"
#include "conffile.h"
#include "config.h"
#include "proc.h"
#include "server.h"
#include "service.h"
#include "util/errstr.h"

#include <errno.h>
#include <stdarg.h>
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

/* Why the server cannot start: on stderr, and in the log file too when
 * there is one (a Windows service's stderr goes nowhere). */
static void fail(const struct log *lg, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void fail(const struct log *lg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "darner: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (log_to_file(lg)) {
        va_start(ap, fmt);
        log_vmsg(lg, LOG_ERROR, fmt, ap);
        va_end(ap);
    }
}

static void hook_ready(const struct darner_hooks *hooks, struct server *s)
{
    if (hooks && hooks->ready)
        hooks->ready(hooks->arg, s);
}

/* Serves from server_init to the end. file, auth and lg's stream are ours
 * (all freed or closed here, whatever happens). */
static int serve(struct config *cfg, struct conffile *file, struct auth_table *auth, const struct jio *io,
                 const struct darner_hooks *hooks, struct log *lg)
{
    uv_loop_t loop;
    int rc;
    if ((rc = uv_loop_init(&loop)) < 0) {
        fail(lg, "cannot start the event loop: %s", uv_strerror(rc));
        conffile_free(file);
        auth_free(auth);
        log_close(lg);
        return 1;
    }
    struct server srv;
    rc = server_init(&srv, &loop, cfg, file, io, lg);
    if (rc == 0 && auth) { /* the server's from now on */
        srv.auth = auth;
        log_info(&srv.log, "authentication: %zu users from %s%s", auth_count(auth), cfg->auth_file,
                 auth_count(auth) ? "" : " (none: no client can authenticate)");
    } else {
        auth_free(auth);
    }
    if (rc < 0) {
        if (rc == -EPROTONOSUPPORT)
            fail(lg,
                 "the data folder '%s' is in a format this build cannot read (see the error above); nothing in it "
                 "was changed",
                 cfg->data_dir);
        else
            fail(lg, "cannot open the queues in '%s': %s", cfg->data_dir, errstr(rc));
        log_close(lg); /* srv.log is a copy of it, unused from here */
        uv_loop_close(&loop);
        return 1;
    }
    int code = 0;
    if ((rc = server_start(&srv)) < 0) {
        fail(&srv.log, "cannot start (the lines above say why)");
        server_stop(&srv);
        code = 1;
    } else {
        hook_ready(hooks, &srv);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (code == 0)
        hook_ready(hooks, NULL);
    server_free(&srv);
    if (code == 0)
        log_info(&srv.log, "stopped");
    log_close(&srv.log);
    uv_loop_close(&loop);
    return code;
}

int darner_run(int argc, char **argv, const struct jio *io, const struct darner_hooks *hooks)
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
    struct log lg;
    int rc = log_open(&lg, (enum log_level)cfg.log_level, cfg.log_file);
    if (rc < 0) {
        fprintf(stderr,
                "darner: cannot open the log file '%s' (--log-file): %s; give a file in a folder that exists "
                "and that darner may write to\n",
                cfg.log_file, errstr(rc));
        conffile_free(file);
        return 2;
    }
    struct conf_error cerr;
    if (!file && conffile_load(NULL, NULL, NULL, NULL, &file, &cerr) < 0) {
        fail(&lg, "%s", cerr.msg);
        log_close(&lg);
        return 1;
    }
    struct auth_table *auth = NULL;
    char why[1024];
    if (cfg.auth_file[0] && auth_file_load(cfg.auth_file, &auth, why, sizeof(why)) < 0) {
        fail(&lg, "%s", why);
        conffile_free(file);
        log_close(&lg);
        return 2;
    }
    proc_init();
    raise_fd_limit(&cfg);
    if ((rc = proc_prepare_dir(cfg.data_dir)) < 0) {
        fail(&lg, "cannot use data folder '%s': %s; give --data a folder you can write to", cfg.data_dir, errstr(rc));
        conffile_free(file);
        auth_free(auth);
        log_close(&lg);
        return 1;
    }
    if (cfg.cluster_id) /* a member of a replicated cell (docs/cluster.md) */
        return cell_run(&cfg, file, auth, io, hooks, &lg);
    char raft_dir[sizeof(cfg.data_dir) + 8];
    uv_fs_t st;
    snprintf(raft_dir, sizeof(raft_dir), "%s/raft", cfg.data_dir);
    int is_cell = uv_fs_stat(NULL, &st, raft_dir, NULL) == 0;
    uv_fs_req_cleanup(&st);
    if (is_cell) {
        fail(&lg,
             "the data folder '%s' belongs to a member of a cell (it has a Raft log, raft/): start it with its "
             "cluster_id and cluster_members (docs/cluster.md); nothing in it was changed",
             cfg.data_dir);
        conffile_free(file);
        auth_free(auth);
        log_close(&lg);
        return 1;
    }
    return serve(&cfg, file, auth, io, hooks, &lg);
}

int darner_main(int argc, char **argv, const struct jio *io) { return darner_run(argc, argv, io, NULL); }

#ifndef DARNER_NO_MAIN
/* --service's words, which come before any other flag. */
static const struct {
    const char *word;
    int (*run)(int argc, char **argv, const struct jio *io);
} SERVICE_WORDS[] = {
    {"install", service_install},
    {"uninstall", service_uninstall},
    {"run", service_run},
};

int main(int argc, char **argv)
{
    argv = proc_args(argc, argv); /* UTF-8 on Windows too */
    if (argc < 2 || strcmp(argv[1], "--service") != 0)
        return darner_main(argc, argv, jio_posix());
    if (SERVICE_UNAVAILABLE) {
        fprintf(stderr, "darner: %s\n", SERVICE_UNAVAILABLE);
        return 2;
    }
    for (size_t i = 0; argc > 2 && i < sizeof(SERVICE_WORDS) / sizeof(SERVICE_WORDS[0]); i++)
        if (strcmp(argv[2], SERVICE_WORDS[i].word) == 0)
            return SERVICE_WORDS[i].run(argc - 2, argv + 2, jio_posix());
    fprintf(stderr, "darner: --service wants install [FLAGS...], uninstall or run [FLAGS...]%s%s%s\n",
            argc > 2 ? ", not '" : "", argc > 2 ? argv[2] : "", argc > 2 ? "'" : "");
    return 2;
}
#endif
