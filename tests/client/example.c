/* example.c: the C example of docs/client.md, built against libdarner.so.
 * Usage: client_example HOST:PORT[,HOST:PORT...] QUEUE
 * Puts three jobs, takes one with a reliable read and confirms it, then
 * takes the rest with plain gets; prints each item. Exit 0 on success. */
#include <darner/client.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT[,HOST:PORT...] QUEUE\n", argv[0]);
        return 2;
    }
    const char *queue = argv[2];
    darner_client *c;
    int rc = darner_client_new(&c, argv[1]);
    if (rc < 0) {
        fprintf(stderr, "bad server list: %s\n", darner_strerror(rc));
        return 2;
    }
    darner_client_set_timeout(c, 2000); /* ms any one call may wait on the network */

    /* Enqueue: each set goes to a random healthy server. */
    const char *jobs[] = {"resize 1", "resize 2", "resize 3"};
    for (int i = 0; i < 3; i++) {
        rc = darner_set(c, queue, jobs[i], strlen(jobs[i]));
        if (rc < 0)
            goto fail;
    }

    /* Reliable read: the item stays on its server until we confirm it. */
    darner_item *it;
    rc = darner_open(c, queue, 1000, &it); /* wait up to 1 s for an item */
    if (rc < 0)
        goto fail;
    if (it) {
        printf("opened %.*s from %s\n", (int)darner_item_len(it), (const char *)darner_item_data(it),
               darner_client_server_name(c, darner_item_server(it)));
        darner_item_free(it);
        rc = darner_close(c, queue); /* done: remove it for good (darner_abort gives it back) */
        if (rc < 0)
            goto fail;
    }

    /* Plain gets rotate across the servers until every one is empty. */
    for (;;) {
        rc = darner_get(c, queue, 0, &it);
        if (rc < 0)
            goto fail;
        if (!it)
            break;
        printf("got %s\n", (const char *)darner_item_data(it)); /* payloads are NUL-terminated */
        darner_item_free(it);
    }
    darner_client_free(c);
    return 0;
fail:
    fprintf(stderr, "error: %s (%s)\n", darner_strerror(rc), darner_client_last_error(c));
    darner_client_free(c);
    return 1;
}
