/* request.h: request lines the client sends, built into a caller's buffer. */
#ifndef DARNER_CLIENT_REQUEST_H
#define DARNER_CLIENT_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest request line the client builds. */
#define DN_REQ_MAX 512

/* 1 if name is a queue name the server accepts: 1 to 250 bytes, no space,
 * no control byte, no '/'. */
int dn_queue_name_ok(const char *name);

/* Option bits of a get. */
#define DN_GET_OPEN 1u
#define DN_GET_CLOSE 2u
#define DN_GET_ABORT 4u
#define DN_GET_PEEK 8u

/* "get <q>[/close][/open][/abort][/peek][/t=<wait_ms>]\r\n" into buf (cap
 * bytes; DN_REQ_MAX is always enough); no /t= when wait_ms is 0. Returns the
 * length, or -EINVAL for a bad name or option mix. */
int dn_req_get(char *buf, size_t cap, const char *queue, unsigned opts, uint32_t wait_ms);

/* The longest line of a multi-key get: the smallest --max-line-length a
 * server accepts, so a batch take works against any server. */
#define DN_REQ_MULTI_LINE 512

/* As many "get <q>[/t=<wait_ms>] <q> <q> ...\r\n" lines as fit in cap bytes
 * for up to keys keys (one item each), every line at most DN_REQ_MULTI_LINE
 * bytes; only the first key of the first line carries /t= (none when
 * wait_ms is 0). *put is the number of keys written. Returns the length, or
 * -EINVAL for a bad name, keys == 0, or a cap too small for one line. */
int dn_req_get_multi(char *buf, size_t cap, const char *queue, size_t keys, uint32_t wait_ms, size_t *put);

/* "set <q>[/sync] <flags> <exptime> <bytes>\r\n". Returns the length or -EINVAL. */
int dn_req_set(char *buf, size_t cap, const char *queue, int sync, uint32_t flags, int64_t exptime,
               uint64_t bytes);

/* "<word> <q>\r\n" (flush, delete). Returns the length or -EINVAL. */
int dn_req_queue(char *buf, size_t cap, const char *word, const char *queue);

#endif
