/* item.h: building a darner_item from a streamed get. */
#ifndef DARNER_CLIENT_ITEM_H
#define DARNER_CLIENT_ITEM_H

#include "darner/client.h"

/* A sink that collects one item into memory. */
struct dn_item_sink {
    darner_item *item; /* NULL until begin(); then owned by the sink's user */
    const char *queue; /* borrowed */
    size_t filled;
};

/* Fills *sink with callbacks that build st->item. */
void dn_item_sink_init(darner_sink *sink, struct dn_item_sink *st, const char *queue);

#endif
