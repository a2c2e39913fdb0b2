/* proc.h: what the server asks of its operating system outside the
 * journal's files: the open-file limit, memory and handle counts for
 * /metrics, the signals that stop or reload it, the data folder's
 * creation, UTC time. One file per platform family: proc_unix.c (Linux,
 * the BSDs, macOS) and proc_win.c (Windows). */
#ifndef DARNER_PROC_H
#define DARNER_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Once at start: SIGPIPE ignored (Unix); nothing to do on Windows. */
void proc_init(void);

/* The program's arguments as UTF-8, to use in place of argv: argv itself
 * on Unix; on Windows the UTF-16 command line converted (argv is in the
 * ANSI code page, which cannot hold every path or queue name), kept for
 * the process's life, or argv if that fails. */
char **proc_args(int argc, char **argv);

/* The open-file limit before and after raising the soft limit to the hard
 * one (Windows: the C runtime's table of file descriptors, raised to its
 * maximum). */
struct proc_fd_limit {
    uint64_t was, soft, hard;
};
/* Returns 0 or -errno (l is then untouched). */
int proc_raise_fd_limit(struct proc_fd_limit *l);
/* The open-file limit now: UINT64_MAX for none; 0 when unknown. */
uint64_t proc_max_fds(void);

/* Resident and virtual memory in bytes; 0 where unknown. */
void proc_memory(uint64_t *rss, uint64_t *virt);

/* Counting the open files (or handles) in steps, so thousands of them do
 * not hold the loop. proc_fds_begin returns NULL when the platform cannot
 * count them (the metric is left out). proc_fds_step reads up to n and
 * returns 1 once *count is final; proc_fds_end frees the counter (any
 * time). */
struct proc_fds;
struct proc_fds *proc_fds_begin(void);
int proc_fds_step(struct proc_fds *f, size_t n, uint64_t *count);
void proc_fds_end(struct proc_fds *f);

/* Creates the folder dir and its parents, and checks it is a folder this
 * process may read and write. Returns 0 or -errno. */
int proc_prepare_dir(const char *dir);

/* Opens path (UTF-8) for appending, created if missing, as a stream that
 * another program may rename or delete while it is open (log rotation;
 * Windows' fopen would not let it). Returns NULL with errno set. */
FILE *proc_fopen_append(const char *path);

/* secs since the epoch as UTC calendar time. */
void proc_gmtime(time_t secs, struct tm *tm);

/* The signals the server stops or reloads on. Unix: SIGTERM and SIGINT
 * stop, SIGHUP reloads. Windows: Ctrl-C (SIGINT), Ctrl-Break (SIGBREAK)
 * and the console closing (SIGHUP) stop; reload is the `reload` command. */
enum proc_signal_action { PROC_SIG_STOP, PROC_SIG_RELOAD };
struct proc_signal {
    int signum;
    enum proc_signal_action action;
};
#define PROC_NSIGNALS 3
extern const struct proc_signal PROC_SIGNALS[PROC_NSIGNALS];

#endif
