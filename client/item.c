/* item.c: darner_item, an item held in memory (payload plus a NUL). */
#include "item.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct darner_item {
    char *data;
    size_t len;
    uint32_t flags;
    size_t server;
    char *queue;
};

/* Allocates the item for len bytes; the sink state owns it until the get
 * hands it to the caller. */
static int item_begin(void *arg, uint64_t len, uint32_t flags, size_t server)
{
    struct dn_item_sink *st = arg;
    if (len >= SIZE_MAX)
        return -ENOMEM;
    darner_item *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->data = malloc((size_t)len + 1);
    it->queue = strdup(st->queue);
    if (!it->data || !it->queue) {
        darner_item_free(it);
        return -ENOMEM;
    }
    it->data[len] = '\0';
    it->len = (size_t)len;
    it->flags = flags;
    it->server = server;
    darner_item_free(st->item);
    st->item = it;
    st->filled = 0;
    return 0;
}

static int item_data(void *arg, const void *chunk, size_t n)
{
    struct dn_item_sink *st = arg;
    if (!st->item || n > st->item->len - st->filled)
        return -EPROTO;
    memcpy(st->item->data + st->filled, chunk, n);
    st->filled += n;
    return 0;
}

void dn_item_sink_init(darner_sink *sink, struct dn_item_sink *st, const char *queue)
{
    st->item = NULL;
    st->queue = queue;
    st->filled = 0;
    sink->begin = item_begin;
    sink->data = item_data;
    sink->arg = st;
}

const void *darner_item_data(const darner_item *it) { return it->data; }
size_t darner_item_len(const darner_item *it) { return it->len; }
uint32_t darner_item_flags(const darner_item *it) { return it->flags; }
const char *darner_item_queue(const darner_item *it) { return it->queue; }
size_t darner_item_server(const darner_item *it) { return it->server; }

void darner_item_free(darner_item *it)
{
    if (!it)
        return;
    free(it->data);
    free(it->queue);
    free(it);
}
