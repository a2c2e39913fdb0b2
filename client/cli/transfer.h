/* transfer.h: the two file formats of drain and load.
 *
 * Lines: one item per line, the item's bytes then '\n'. An item holding a
 * '\n' cannot be written this way (drain stops at it and leaves it in the
 * queue). On load a final line without '\n' is an item too, and an empty
 * line is an empty item.
 *
 * Length-prefixed: for each item, its length as 4 bytes big-endian (network
 * order), then exactly that many bytes; nothing between items, nothing at
 * the end. Any bytes, and items up to 4 GiB - 1. */
#ifndef DARNER_CLI_TRANSFER_H
#define DARNER_CLI_TRANSFER_H

#include <stdint.h>

static inline void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
