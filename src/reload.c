/* reload.c: re-reading the config file and the auth file on `reload` or
 * SIGHUP: queue and alias settings apply to live queues at once, users to
 * live connections; server settings wait for a restart and are named in a
 * warning. A file with a mistake changes nothing of its own. */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "auth_file.h"
#include "conffile.h"
#include "conn_auth.h"
#include "server.h"
#include "settings.h"
#include "tls.h"

static void warn_log(void *ctx, const char *line) { log_warn((const struct log *)ctx, "%s", line); }

/* The config file again: s->conf is replaced (the old one freed) once the
 * new one is read whole. */
static int reload_conf(struct server *s, char *why, size_t cap)
{
    const char *path = s->cfg->config_file;
    struct conffile *f;
    struct conf_error e;
    int rc = conffile_load(path, NULL, warn_log, &s->log, &f, &e);
    if (rc < 0) {
        snprintf(why, cap, "%s", e.msg);
        log_error(&s->log, "reload refused, the settings stay as they were: %s", e.msg);
        return rc;
    }
    /* Server settings the file changed since it was last read. */
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *st = &SETTINGS[i];
        char was[300], is[300];
        if (st->scope != SCOPE_SERVER)
            continue;
        setting_format(st, conffile_server(s->conf), was, sizeof(was));
        setting_format(st, conffile_server(f), is, sizeof(is));
        if (strcmp(was, is) != 0)
            log_warn(&s->log, "reload: %s changed in %s (%s to %s): it takes effect at the next start", st->key, path,
                     was, is);
    }
    registry_set_conf(s->reg, f);
    conffile_free(s->conf);
    s->conf = f;
    server_fsync_timer(s);
    log_info(&s->log, "reloaded %s", path);
    return 0;
}

/* The auth file again: s->auth is replaced (the old table freed) once
 * every connection is re-pointed at the new one. */
static int reload_auth(struct server *s, char *why, size_t cap)
{
    struct auth_table *t;
    int rc = auth_file_load(s->cfg->auth_file, &t, why, cap);
    if (rc < 0) {
        log_error(&s->log, "auth file reload refused, the users stay as they were: %s", why);
        return rc;
    }
    conn_auth_rebind(s, t);
    auth_free(s->auth);
    s->auth = t;
    log_info(&s->log, "reloaded the auth file %s: %zu users", s->cfg->auth_file, auth_count(t));
    return 0;
}

/* The TLS certificate, key and CAs again (memcached reloads them on
 * SIGHUP): new connections get the new context, connections made under the
 * old one keep it until they close. A file that fails keeps the old. */
static int reload_tls(struct server *s, char *why, size_t cap)
{
    struct tls_ctx *t;
    int rc = server_tls_load(s, &t); /* logs OpenSSL's reason */
    if (rc < 0) {
        snprintf(why, cap, "TLS certificate or key not reloaded (the old ones stay): see the log");
        return rc;
    }
    tls_ctx_put(s->tls);
    s->tls = t;
    log_info(&s->log, "reloaded the TLS certificate %s", s->cfg->ssl_chain_cert);
    return 0;
}

int server_reload(struct server *s, char *why, size_t cap)
{
    int rc = 0;
    char later[512];
    /* --log-file opened again first: logrotate renamed it (and sent SIGHUP,
     * or sends the reload command where there is no SIGHUP: Windows) */
    server_reopen_log(s);
    if (!s->cfg->config_file[0] && !s->auth && !s->tls) {
        snprintf(why, cap, "no config file to reload (start darner with -c FILE)");
        return -ENOENT;
    }
    /* each file on its own: a mistake in one keeps the other's changes */
    if (s->tls)
        rc = reload_tls(s, why, cap);
    if (s->auth) {
        int rc2 = reload_auth(s, rc < 0 ? later : why, rc < 0 ? sizeof(later) : cap);
        rc = rc < 0 ? rc : rc2;
    }
    if (s->cfg->config_file[0]) {
        int rc2 = reload_conf(s, rc < 0 ? later : why, rc < 0 ? sizeof(later) : cap);
        rc = rc < 0 ? rc : rc2;
    }
    return rc;
}
