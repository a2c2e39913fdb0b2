/* os.h: what darner-cli asks of its operating system beyond the C library:
 * the console and standard streams, a monotonic clock (cli.h's cli_now_ms,
 * cli_sleep_ms), reading lines, and the child process of `get --exec`. One
 * file per platform family: os_unix.c (POSIX) and os_win.c (Win32). */
#ifndef DARNER_CLI_OS_H
#define DARNER_CLI_OS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Once at start; returns the arguments to use in place of argv. Unix:
 * SIGPIPE ignored, so a reader that goes away (darner-cli drain q | head)
 * is an error we report, not a signal that kills us with an item half
 * written; argv as it is. Windows: stdin and stdout in binary mode, so
 * items pass byte for byte, the console told to obey the escape sequences
 * of `stats --watch` and the progress line and to show UTF-8, and the
 * arguments as UTF-8 (from the UTF-16 command line: argv is in the ANSI
 * code page, which cannot hold every queue name). */
char **cli_os_init(int argc, char **argv);

/* Reads one line (with its '\n', if there is one) from f into *line, grown
 * as needed (the caller frees it; *cap is its size). Returns the line's
 * length (it may hold NUL bytes), or -1 at the end of the input or on an
 * error (ferror tells which). */
int64_t cli_getline(char **line, size_t *cap, FILE *f);

/* A temporary file open for reading and writing that is gone once closed
 * (Unix: in $TMPDIR, else /tmp, and unlinked at once; Windows: in the temp
 * folder, deleted on close). Returns it, or NULL with errno set. */
FILE *cli_spool_file(void);

/* One variable added to a child's environment. */
struct cli_env {
    const char *name, *value;
};

/* How a command run by cli_run_command() ended. */
struct cli_exit {
    int code;   /* its exit status, when signal is 0 */
    int signal; /* the signal that killed it (Unix only), else 0 */
};

/* Runs command with the system's shell (Unix: /bin/sh -c; Windows: cmd.exe
 * /d /s /c) with its stdin reading in from in's current position, stdout and
 * stderr ours and env[0..nenv) added to its environment, and waits for it.
 * Returns 0 with *ex filled, or -errno when it could not be started. */
int cli_run_command(const char *command, FILE *in, const struct cli_env *env, size_t nenv, struct cli_exit *ex);

#endif
