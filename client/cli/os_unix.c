/* os_unix.c: os.h for Linux, the BSDs and macOS: POSIX signals, getline,
 * mkostemp, fork and exec. */
#include "cli.h"
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char **cli_os_init(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    return argv;
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

int64_t cli_getline(char **line, size_t *cap, FILE *f) { return getline(line, cap, f); }

/* mkostemp in $TMPDIR (else /tmp), unlinked before it is used. */
FILE *cli_spool_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    if (!dir || !*dir)
        dir = "/tmp";
    if (snprintf(path, sizeof(path), "%s/darner-cli-XXXXXX", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return NULL;
    unlink(path);
    FILE *f = fdopen(fd, "w+");
    if (!f)
        close(fd);
    return f;
}

/* fork, then in the child: stdin on in, SIGPIPE back to its default, the
 * variables set, /bin/sh exec'd (exit status 127 when it cannot be). */
int cli_run_command(const char *command, FILE *in, const struct cli_env *env, size_t nenv, struct cli_exit *ex)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (dup2(fileno(in), STDIN_FILENO) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        for (size_t i = 0; i < nenv; i++)
            setenv(env[i].name, env[i].value, 1);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    ex->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    ex->code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    return 0;
}
