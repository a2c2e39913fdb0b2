/* cli.h: what the darner-cli files share: the run context, the command
 * table's shape, exit codes, and the small output and argument helpers. */
#ifndef DARNER_CLI_H
#define DARNER_CLI_H

#include "darner/client.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, as grep's: found, nothing found, trouble. */
enum { CLI_OK = 0, CLI_EMPTY = 1, CLI_ERR = 2 };

struct cli {
    darner_client *client;
    const char *servers;
    int json;      /* --json */
    int progress;  /* --progress: 1, --no-progress: 0, unset: -1 (stderr is a tty) */
    int timeout_ms;
    int in_shell;  /* running commands read by `shell`: stdin is theirs */
};

typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

struct cli_cmd {
    const char *name;
    cli_cmd_fn fn;
    const char *usage;
};

/* The commands (argv[0] is the command's name; returns an exit code). */
int cmd_put(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_peek(struct cli *cli, int argc, char **argv);
int cmd_close(struct cli *cli, int argc, char **argv);
int cmd_abort(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_queues(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_flush(struct cli *cli, int argc, char **argv);
int cmd_delete(struct cli *cli, int argc, char **argv);
int cmd_drain(struct cli *cli, int argc, char **argv);
int cmd_load(struct cli *cli, int argc, char **argv);
int cmd_cluster(struct cli *cli, int argc, char **argv);

/* Runs the item with --exec (cmd_exec.c): see there. */
int exec_open_item(struct cli *cli, const char *queue, int wait_ms, const char *command);

/* ---- arguments (args.c) ---- */

/* Walks a command's arguments: options (--name, --name=value, --name value)
 * and positionals, "--" ending the options. */
struct argscan {
    int argc;
    char **argv;
    int i;
    int no_more_options;
    const char *value; /* the option's value after arg_value() */
};

void args_init(struct argscan *a, int argc, char **argv);
/* The next argument, or NULL at the end. *is_option tells which kind. */
const char *args_next(struct argscan *a, int *is_option);
/* 1 if opt (the option just returned) is name, with its value (if any) in
 * a->value; 0 otherwise; -1 when name takes a value and none is given. */
int args_match(struct argscan *a, const char *opt, const char *name, int takes_value);

/* The single QUEUE argument of a command that takes nothing else (a name
 * starting with '-' goes after "--"). Returns 0, or CLI_ERR after a usage
 * message. */
int one_queue_arg(struct cli *cli, int argc, char **argv, const char **queue);

/* Parses a whole number into *v within [lo, hi]. Returns 0 or -EINVAL. */
int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *v);
/* Parses a number of seconds ("2", "0.5") into milliseconds. */
int parse_seconds_ms(const char *s, int64_t *ms);

/* Prints "darner-cli: <what>" to stderr (and in --json mode, one
 * {"ok":false,...} line to stdout); returns CLI_ERR. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As cli_usage_error() for a failed library call rc, with its text and
 * the client's last error. */
int cli_fail(struct cli *cli, const char *what, int rc);

/* ---- output (out.c) ---- */

/* Writes a JSON string for n bytes: valid UTF-8 as is (escaped), any other
 * byte as \u00XX. */
void json_str(FILE *f, const char *s, size_t n);
void json_cstr(FILE *f, const char *s);
/* 1 if the n bytes are valid UTF-8. */
int utf8_valid(const unsigned char *s, size_t n);
/* Writes n bytes as a base64 JSON string. */
void json_base64(FILE *f, const unsigned char *s, size_t n);
/* "12.3 KiB"-style size into buf. */
const char *human_bytes(uint64_t n, char *buf, size_t size);

/* A table of strings printed with aligned columns. */
struct table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols, row-major, owned */
    unsigned right_align; /* bit i: column i is numeric */
};

void table_init(struct table *t, size_t ncols, unsigned right_align);
/* Adds a row of ncols printf-ready strings (copied). Returns 0 or -ENOMEM. */
int table_row(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

/* ---- progress (progress.c) ---- */

struct progress {
    int on;
    int tty;
    const char *verb;
    const char *queue;
    uint64_t items, bytes;
    int64_t start_ms, last_ms;
};

void progress_init(struct progress *p, struct cli *cli, const char *verb, const char *queue);
/* Counts bytes of the item in flight (items = 0) or a finished item. */
void progress_add(struct progress *p, uint64_t items, uint64_t bytes);
/* Ends the line (prints the final figures when on). */
void progress_done(struct progress *p);
int64_t cli_now_ms(void);
/* Sleeps ms milliseconds, through signals. */
void cli_sleep_ms(int64_t ms);

/* ---- shell words (words.c) ---- */

/* Splits line into words as a POSIX shell would for plain words, 'single'
 * and "double" quotes and backslashes (no expansions). *argv is a malloc'd
 * NULL-terminated array whose strings live in the same block (free(*argv)
 * frees all). Returns the count, or -EINVAL (an unclosed quote), -ENOMEM. */
int split_words(const char *line, char ***argv);

#endif
