/* progress.c: the progress line of long drains and loads, on stderr. On a
 * terminal it rewrites itself in place a few times a second; forced onto a
 * file or pipe (--progress) it prints a line a second. */
#include "cli.h"

#include <inttypes.h>
#include <unistd.h>

#define TTY_EVERY_MS 200
#define FILE_EVERY_MS 1000

void progress_init(struct progress *p, struct cli *cli, const char *verb, const char *queue)
{
    p->tty = isatty(STDERR_FILENO);
    p->on = cli->progress < 0 ? p->tty : cli->progress;
    p->verb = verb;
    p->queue = queue;
    p->items = p->bytes = 0;
    p->start_ms = p->last_ms = cli_now_ms();
}

static void show(struct progress *p, int final)
{
    int64_t ms = cli_now_ms() - p->start_ms;
    double secs = ms > 0 ? (double)ms / 1000.0 : 0.001;
    char b[32], rate[32];
    human_bytes(p->bytes, b, sizeof(b));
    human_bytes((uint64_t)((double)p->bytes / secs), rate, sizeof(rate));
    fprintf(stderr, "%s%s %s: %" PRIu64 " items, %s, %.0f items/s, %s/s, %.1f s%s", p->tty ? "\r" : "",
            p->verb, p->queue, p->items, b, (double)p->items / secs, rate, secs,
            p->tty && !final ? "\033[K" : "");
    if (final || !p->tty)
        fputc('\n', stderr);
    fflush(stderr);
}

void progress_add(struct progress *p, uint64_t items, uint64_t bytes)
{
    p->items += items;
    p->bytes += bytes;
    if (!p->on)
        return;
    int64_t now = cli_now_ms();
    if (now - p->last_ms >= (p->tty ? TTY_EVERY_MS : FILE_EVERY_MS)) {
        p->last_ms = now;
        show(p, 0);
    }
}

void progress_done(struct progress *p)
{
    if (p->on)
        show(p, 1);
}
