/* tests/unit/registry_fixture.h: what the queue-level unit tests share: a
 * registry over a fresh data folder (with an optional config file), reopened
 * as a restart would, and small helpers. Include after <cmocka.h>; every
 * helper is static inline, so a test file that does not use one gets no
 * warning. */
#ifndef DARNER_TESTS_REGISTRY_FIXTURE_H
#define DARNER_TESTS_REGISTRY_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "journal/journal.h"
#include "queue/queue.h"
#include "queue/registry.h"
#include "testutil.h"

struct fx {
    char tmp[PATH_MAX];
    char data[PATH_MAX];
    struct jnl_conf conf;
    struct conffile *file;
    struct registry *r;
};

/* A registry over a fresh folder, fsync "never" (nothing waits for a sync);
 * conf_text (NULL: none) is the config file's text. */
static inline int fx_setup(void **state, const char *conf_text)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    tu_mkdtemp(fx->tmp);
    tu_join(fx->data, fx->tmp, "data");
    tu_mkdir(fx->data);
    fx->conf =
        (struct jnl_conf){.io = jio_posix(), .segment_size = 1 << 20, .ack_compact_bytes = 1 << 20, .sync_never = 1};
    char path[PATH_MAX];
    tu_join(path, fx->tmp, "darner.conf");
    if (conf_text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(conf_text, f);
        fclose(f);
    }
    struct conf_error e;
    assert_int_equal(conffile_load(conf_text ? path : NULL, NULL, NULL, NULL, &fx->file, &e), 0);
    assert_int_equal(registry_open(&fx->r, fx->data, &fx->conf, fx->file), 0);
    *state = fx;
    return 0;
}

static inline int fx_teardown(void **state)
{
    struct fx *fx = *state;
    registry_close(fx->r);
    conffile_free(fx->file);
    tu_rmtree(fx->tmp);
    free(fx);
    return 0;
}

/* Closes every journal (what was written stays, as after a kill -9 with
 * the page cache intact) and opens the folder again. */
static inline void reopen(struct fx *fx)
{
    registry_close(fx->r);
    fx->r = NULL;
    assert_int_equal(registry_open(&fx->r, fx->data, &fx->conf, fx->file), 0);
}

static inline struct queue *mkq(struct fx *fx, const char *name)
{
    struct queue *q = NULL;
    assert_int_equal(registry_get_or_create(fx->r, name, strlen(name), &q), 0);
    return q;
}

/* The first hidden queue of kind (a lane or a delay bucket), or NULL. */
static inline struct queue *first_of_kind(struct fx *fx, int kind)
{
    for (struct list *pos = fx->r->all.next; pos != &fx->r->all; pos = pos->next)
        if (list_entry(pos, struct queue, all)->kind == kind)
            return list_entry(pos, struct queue, all);
    return NULL;
}

#endif
