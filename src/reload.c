/* reload.c: re-reading the config file on `reload` or SIGHUP: queue and
 * alias settings apply to live queues at once; server settings wait for a
 * restart and are named in a warning. */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "conffile.h"
#include "server.h"
#include "settings.h"

static void warn_log(void *ctx, const char *line) { log_warn((const struct log *)ctx, "%s", line); }

int server_reload(struct server *s, char *why, size_t cap)
{
    const char *path = s->cfg->config_file;
    if (!path[0]) {
        snprintf(why, cap, "no config file to reload (start darner with -c FILE)");
        return -ENOENT;
    }
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
            log_warn(&s->log, "reload: %s changed in %s (%s to %s): it takes effect at the next start", st->key,
                     path, was, is);
    }
    registry_set_conf(s->reg, f);
    conffile_free(s->conf);
    s->conf = f;
    server_fsync_timer(s);
    log_info(&s->log, "reloaded %s", path);
    return 0;
}
