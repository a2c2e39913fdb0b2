/* util/varint.h: LEB128 varints (7 bits a byte, low bits first, the high
 * bit set on every byte but the last), as the journal's batches and a
 * cell's file operations write them. Readers check what they accept
 * themselves (journal/format.c, cell/ops.c). */
#ifndef DARNER_UTIL_VARINT_H
#define DARNER_UTIL_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define VARINT_MAX 10 /* bytes of a 64-bit value at most */

/* Writes v at p (VARINT_MAX bytes of room); returns the bytes written. */
static inline size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

#endif
