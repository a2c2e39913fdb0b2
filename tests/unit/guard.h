/* tests/unit/guard.h: inputs placed right against a page that cannot be read
 * (picohttpparser's trick), so a parser that looks one byte too far, or
 * before its buffer, crashes the test instead of passing by luck. Shared by
 * test_parse.c and test_bin.c; include after cmocka.h and testplat.h, with
 * GUARD_DATA_PAGES defined.
 *
 * Layout: one unreadable page, GUARD_DATA_PAGES readable pages, one
 * unreadable page. */
#ifndef DARNER_TESTS_GUARD_H
#define DARNER_TESTS_GUARD_H

#include <string.h>

static char *guard_map;   /* the whole mapping */
static char *guard_mem;   /* the first readable byte */
static size_t guard_room; /* readable bytes */

static int guard_setup(void **state)
{
    (void)state;
    size_t page = tp_page_size();
    guard_room = page * GUARD_DATA_PAGES;
    void *m = tp_map(guard_room + 2 * page);
    if (!m)
        return -1;
    guard_map = m;
    guard_mem = guard_map + page;
    if (tp_protect_none(guard_map, page) != 0 || tp_protect_none(guard_mem + guard_room, page) != 0)
        return -1;
    return 0;
}

static int guard_teardown(void **state)
{
    (void)state;
    tp_unmap(guard_map, guard_room + 2 * tp_page_size());
    return 0;
}

/* n bytes of s copied so they end right at the second unreadable page. */
static inline void *guard_place_end(const void *s, size_t n)
{
    assert_true(n <= guard_room);
    char *dst = guard_mem + guard_room - n;
    memmove(dst, s, n);
    return dst;
}

/* n bytes of s copied so they start right after the first unreadable page. */
static inline void *guard_place_front(const void *s, size_t n)
{
    assert_true(n <= guard_room);
    memmove(guard_mem, s, n);
    return guard_mem;
}

#endif
