/* config.c: the server's settings from the built-in defaults, the config
 * file and the command line, all driven by the table in settings.c. */
#include "config.h"
#include "listen.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "settings.h"

void config_defaults(struct config *c)
{
    const char *why;
    *c = (struct config){0};
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].scope == SCOPE_SERVER)
            setting_parse(&SETTINGS[i], SETTINGS[i].def, c, &why);
}

/* A setting's flag: "--" and its key with '-' for '_'. */
static void flag_name(const struct setting *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s", s->key);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

/* One --help entry: the flag, then its text wrapped at 79 columns. */
static void usage_line(FILE *f, const char *left, const char *text)
{
    const int col = 31, width = 79 - col;
    fprintf(f, "%-*s", col, left);
    if ((int)strlen(left) >= col)
        fprintf(f, "\n%*s", col, "");
    while (*text) {
        int n = (int)strlen(text);
        if (n > width) {
            n = width;
            while (n > 0 && text[n] != ' ')
                n--;
            if (n == 0)
                n = width;
        }
        fprintf(f, "%.*s\n", n, text);
        text += n;
        while (*text == ' ')
            text++;
        if (*text)
            fprintf(f, "%*s", col, "");
    }
}

static void usage(FILE *f)
{
    char name[64], left[96], text[512];
    fprintf(f, "usage: darner [flags]\n"
               "A durable message-queue server speaking the memcache text protocol.\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &SETTINGS[i];
        if (s->scope != SCOPE_SERVER)
            continue;
        flag_name(s, name, sizeof(name));
        if (s->short_flag)
            snprintf(left, sizeof(left), "  -%c, --%s %s", s->short_flag, name, s->arg);
        else
            snprintf(left, sizeof(left), "      --%s %s", name, s->arg);
        snprintf(text, sizeof(text), "%s (default %s)", s->help, *s->def ? s->def : "none");
        usage_line(f, left, text);
    }
    usage_line(f, "  -c, --config FILE",
               "read settings from FILE: INI with [server] (any flag, as key_name = value), [queue], "
               "[queue \"NAME\"], [queue \"PATTERN\"] and [alias \"NAME\"]; see darner.conf.example. "
               "A flag wins over the file.");
    usage_line(f, "      --service WORD [FLAGS...]",
               "Windows only, and first: install (a service running darner with FLAGS, logging to a file), "
               "uninstall, or run (what the service manager starts)");
    usage_line(f, "  -h, --help", "this text");
    usage_line(f, "  -V, --version", "print the version");
}

#define CONFIG_MAX_FLAGS 128 /* getopt's table: every setting's flag and -c, -h, -V */

enum { OPT_SETTING = 1000 }; /* getopt's value for SETTINGS[i] is OPT_SETTING + i */

/* Builds getopt_long's tables from the settings. names holds the flag
 * names (NSETTINGS * 64 bytes). */
static void build_options(struct option *opts, char *names, char *shorts)
{
    size_t n = 0, ns = 0;
    shorts[ns++] = ':';
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &SETTINGS[i];
        if (s->scope != SCOPE_SERVER)
            continue;
        char *name = names + i * 64;
        flag_name(s, name, 64);
        /* a yes/no flag alone means yes: --enable-shutdown */
        opts[n++] = (struct option){name, s->type == ST_BOOL ? optional_argument : required_argument, NULL,
                                    OPT_SETTING + (int)i};
        if (s->short_flag) {
            shorts[ns++] = s->short_flag;
            shorts[ns++] = ':';
            if (s->type == ST_BOOL) /* -Z alone means yes; -Zno */
                shorts[ns++] = ':';
        }
    }
    opts[n++] = (struct option){"config", required_argument, NULL, 'c'};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n++] = (struct option){"version", no_argument, NULL, 'V'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    memcpy(shorts + ns, "c:hV", 5);
}

static const struct setting *by_short(int ch)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].scope == SCOPE_SERVER && SETTINGS[i].short_flag == ch)
            return &SETTINGS[i];
    return NULL;
}

/* A server anyone on the network could empty is refused unless asked for. */
static int check_exposure(const struct config *c, FILE *err)
{
    if (c->auth_file[0] || c->allow_unauthenticated)
        return 0;
    struct listen_addr where[LISTEN_MAX];
    size_t n;
    char why[512];
    if (listen_parse(c->listen, (int)c->port, where, &n, why, sizeof(why)) < 0)
        return 0; /* server_start refuses it with its own message */
    size_t i = 0;
    while (i < n && listen_is_loopback(where[i].addr))
        i++;
    if (i == n)
        return 0;
    fprintf(err,
            "darner: refusing to listen on %s without authentication: anyone who can reach it could read, "
            "write and delete every queue. Give --auth-file FILE (user:password lines, see "
            "docs/operations.md), or --allow-unauthenticated if the network is trusted (in a config file: "
            "auth_file = FILE or allow_unauthenticated = true in [server])\n",
            where[i].addr);
    return -EPERM;
}

static void warn_to(void *ctx, const char *line) { fprintf((FILE *)ctx, "darner: warning: %s\n", line); }

enum config_result config_parse(struct config *c, struct conffile **file, int argc, char **argv, FILE *out, FILE *err)
{
    struct option opts[CONFIG_MAX_FLAGS];
    char names[CONFIG_MAX_FLAGS * 64], shorts[128];
    if (NSETTINGS + 4 > CONFIG_MAX_FLAGS) { /* a build with more settings than flag slots: never silently */
        fprintf(err, "darner: %zu settings, room for %d flags: raise CONFIG_MAX_FLAGS\n", NSETTINGS,
                CONFIG_MAX_FLAGS - 4);
        return CONFIG_EXIT_ERROR;
    }
    build_options(opts, names, shorts);
    *file = NULL;
    opterr = 0;
    /* First pass: help, version, the config file and bad flags. */
    const char *path = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            usage(out);
            return CONFIG_EXIT_OK;
        case 'V':
            fprintf(out, "darner %s\n", DARNER_VERSION);
            return CONFIG_EXIT_OK;
        case 'c':
            path = optarg;
            break;
        case ':':
            fprintf(err, "darner: %s needs a value (see darner --help)\n", argv[optind - 1]);
            return CONFIG_EXIT_ERROR;
        case '?':
            fprintf(err, "darner: unknown flag '%s' (see darner --help)\n", argv[optind - 1]);
            return CONFIG_EXIT_ERROR;
        default:
            break;
        }
    }
    if (optind < argc) {
        fprintf(err, "darner: unexpected argument '%s' (see darner --help)\n", argv[optind]);
        return CONFIG_EXIT_ERROR;
    }
    if (path) {
        struct conf_error e;
        if (conffile_load(path, c, warn_to, err, file, &e) < 0) {
            fprintf(err, "darner: %s\n", e.msg);
            return CONFIG_EXIT_ERROR;
        }
        snprintf(c->config_file, sizeof(c->config_file), "%s", path);
    }
    /* Second pass: the flags, over the file. */
    optind = 1;
    while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        const struct setting *s = ch >= OPT_SETTING ? &SETTINGS[ch - OPT_SETTING] : by_short(ch);
        const char *why;
        if (!s)
            continue;
        const char *value = optarg ? optarg : "true"; /* a yes/no flag alone */
        if (setting_parse(s, value, c, &why) < 0) {
            char name[64];
            flag_name(s, name, sizeof(name));
            fprintf(err, "darner: --%s %s, not '%s'\n", name, why, value);
            conffile_free(*file);
            *file = NULL;
            return CONFIG_EXIT_ERROR;
        }
    }
    if (check_exposure(c, err) < 0) {
        conffile_free(*file);
        *file = NULL;
        return CONFIG_EXIT_ERROR;
    }
    return CONFIG_RUN;
}
