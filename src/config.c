/* config.c: command-line flags. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct config *c)
{
    *c = (struct config){
        .listen = "127.0.0.1",
        .port = 22133,
        .port_file = NULL,
        .data_dir = CONFIG_DEFAULT_DATA,
        .fsync = FSYNC_PERIODIC,
        .fsync_ms = 1000,
        .max_item_size = 1ull << 30,
        .max_connections = 4096,
        .compat = COMPAT_MEMCACHE,
        .max_line = 8192,
        .segment_size = 64ull << 20,
        .log_level = LOG_INFO,
    };
}

int config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return -EINVAL;
        }
        if (end[1] && !((end[1] == 'B' || end[1] == 'b') && !end[2]))
            return -EINVAL;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: darner [flags]\n"
            "A durable message-queue server speaking the memcache text protocol.\n"
            "\n"
            "  --listen ADDR           address to listen on (default 127.0.0.1)\n"
            "  -p, --port N            TCP port, 0 picks a free one (default 22133)\n"
            "      --port-file PATH    write the port here once accepting connections\n"
            "  -d, --data DIR          data folder, created if missing (default " CONFIG_DEFAULT_DATA ")\n"
            "      --fsync POLICY      always | never | <ms> between fsyncs (default 1000)\n"
            "      --max-item-size N   largest item accepted, bytes, K/M/G suffix allowed (default 1G)\n"
            "      --max-connections N connections served at once (default 4096)\n"
            "      --max-line-length N longest request line, bytes (default 8192)\n"
            "      --idle-timeout S    close connections idle for S seconds; their open\n"
            "                          items go back to their queues (default 0: never)\n"
            "      --segment-size N    journal segment size, bytes, K/M/G allowed (default 64M)\n"
            "      --max-open-queues N queues whose files stay open at once; idle ones beyond\n"
            "                          are closed and opened again on use (default 0: from\n"
            "                          the open-file limit)\n"
            "      --compat MODE       memcache | kestrel answers (default memcache)\n"
            "      --log-level LEVEL   error | warn | info | debug (default info)\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n");
}

enum config_result config_parse(struct config *c, int argc, char **argv, FILE *out, FILE *err)
{
    enum {
        OPT_LISTEN = 256,
        OPT_PORT_FILE,
        OPT_FSYNC,
        OPT_MAX_ITEM,
        OPT_MAX_CONN,
        OPT_IDLE,
        OPT_MAX_LINE,
        OPT_SEGMENT,
        OPT_COMPAT,
        OPT_LOG_LEVEL,
        OPT_MAX_OPEN_QUEUES,
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"data", required_argument, NULL, 'd'},
        {"fsync", required_argument, NULL, OPT_FSYNC},
        {"max-item-size", required_argument, NULL, OPT_MAX_ITEM},
        {"max-connections", required_argument, NULL, OPT_MAX_CONN},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"max-line-length", required_argument, NULL, OPT_MAX_LINE},
        {"segment-size", required_argument, NULL, OPT_SEGMENT},
        {"compat", required_argument, NULL, OPT_COMPAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"max-open-queues", required_argument, NULL, OPT_MAX_OPEN_QUEUES},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":p:d:hV", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_LISTEN:
            c->listen = optarg;
            break;
        case 'p':
            if (parse_uint(optarg, 65535, &v) < 0) {
                fprintf(err, "darner: --port wants a number from 0 to 65535, not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->port = (int)v;
            break;
        case OPT_PORT_FILE:
            c->port_file = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        case OPT_FSYNC:
            if (strcmp(optarg, "always") == 0) {
                c->fsync = FSYNC_ALWAYS;
            } else if (strcmp(optarg, "never") == 0) {
                c->fsync = FSYNC_NEVER;
            } else if (parse_uint(optarg, 86400000, &v) == 0 && v > 0) {
                c->fsync = FSYNC_PERIODIC;
                c->fsync_ms = (uint32_t)v;
            } else {
                fprintf(err, "darner: --fsync wants always, never or milliseconds (1 to 86400000), not '%s'\n",
                        optarg);
                return CONFIG_EXIT_ERROR;
            }
            break;
        case OPT_MAX_ITEM:
            if (config_parse_size(optarg, &v) < 0 || v == 0 || v > (UINT64_MAX >> 2)) {
                fprintf(err, "darner: --max-item-size wants a size in bytes such as 1048576 or 64M, not '%s'\n",
                        optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->max_item_size = v;
            break;
        case OPT_MAX_CONN:
            if (parse_uint(optarg, 10000000, &v) < 0 || v == 0) {
                fprintf(err, "darner: --max-connections wants a number from 1 to 10000000, not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->max_connections = (uint32_t)v;
            break;
        case OPT_IDLE:
            if (parse_uint(optarg, 86400 * 365, &v) < 0) {
                fprintf(err, "darner: --idle-timeout wants seconds (0 for none), not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->idle_timeout_s = (uint32_t)v;
            break;
        case OPT_MAX_LINE:
            if (config_parse_size(optarg, &v) < 0 || v < 512 || v > (16u << 20)) {
                fprintf(err, "darner: --max-line-length wants a size from 512 bytes to 16M, not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->max_line = (size_t)v;
            break;
        case OPT_SEGMENT:
            if (config_parse_size(optarg, &v) < 0 || v < 4096) {
                fprintf(err, "darner: --segment-size wants a size of at least 4096 bytes, not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->segment_size = v;
            break;
        case OPT_COMPAT:
            if (strcmp(optarg, "memcache") == 0) {
                c->compat = COMPAT_MEMCACHE;
            } else if (strcmp(optarg, "kestrel") == 0) {
                c->compat = COMPAT_KESTREL;
            } else {
                fprintf(err, "darner: --compat wants memcache or kestrel, not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            break;
        case OPT_LOG_LEVEL:
            if (log_level_parse(optarg, &c->log_level) < 0) {
                fprintf(err, "darner: --log-level wants error, warn, info or debug, not '%s'\n", optarg);
                return CONFIG_EXIT_ERROR;
            }
            break;
        case OPT_MAX_OPEN_QUEUES:
            if (parse_uint(optarg, 10000000, &v) < 0) {
                fprintf(err, "darner: --max-open-queues wants a number from 0 (automatic) to 10000000, not '%s'\n",
                        optarg);
                return CONFIG_EXIT_ERROR;
            }
            c->max_open_queues = (uint32_t)v;
            break;
        case 'h':
            usage(out);
            return CONFIG_EXIT_OK;
        case 'V':
            fprintf(out, "darner %s\n", DARNER_VERSION);
            return CONFIG_EXIT_OK;
        case ':':
            fprintf(err, "darner: %s needs a value (see darner --help)\n", argv[optind - 1]);
            return CONFIG_EXIT_ERROR;
        default:
            fprintf(err, "darner: unknown flag '%s' (see darner --help)\n", argv[optind - 1]);
            return CONFIG_EXIT_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(err, "darner: unexpected argument '%s' (see darner --help)\n", argv[optind]);
        return CONFIG_EXIT_ERROR;
    }
    return CONFIG_RUN;
}
