/* http_api_int.h: the insides of the HTTP/JSON queue API shared by its
 * modules: http_api.c (answers, parameters, queues, routing),
 * http_enqueue.c (POST /v1/queues/{q}/items) and http_take.c (takes,
 * leases and their handles). */
#ifndef DARNER_HTTP_API_INT_H
#define DARNER_HTTP_API_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "httpd.h"
#include "proto/parse.h"
#include "queue/queue.h"
#include "sync.h"
#include "util/buf.h"
#include "util/compat.h"

/* An item's JSON besides its base64: {"id":, "flags":, "data":, "handle":,
 * "deliveries":}, numbers of up to 20 digits and a handle of up to 63 */
#define ITEM_JSON_MAX 192

struct server;

struct call {
    struct http_req *r;
    struct server *s;
    char name[PROTO_MAX_NAME + 1];
    size_t name_len;
    struct proto_key key;
    /* a take: how, how many, and its waiting */
    enum qget_mode mode;
    uint64_t ttr; /* of a lease */
    struct qwaiter waiter;
    int waiting;
    uv_timer_t timer;
    uint64_t max;
    /* a set that waits for its fsync */
    struct sync_waiter sw;
    struct buf body; /* its answer, sent once the fsync is done */
};

/* Answers code with j (taken) as its body. */
void api_answer_json(struct http_req *r, int code, json_t *j);
/* {"error": {"code": code, "message": ...}}: code is stable (docs/api.md). */
void api_fail(struct http_req *r, int status, const char *code, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* Query parameter name as a whole number in [min, max] into *v (kept when
 * absent; *given, unless NULL, says). Returns 0, or -EINVAL having
 * answered 400. */
int api_param_u64(struct call *c, const char *name, uint64_t min, uint64_t max, uint64_t *v, int *given);
/* Answers 400 for a query parameter not in names. Returns 0 or -EINVAL. */
int api_only_params(struct call *c, const char *const *names);
/* Appends v in decimal to out (room for 20 digits reserved before). */
void api_put_u64(struct buf *out, uint64_t v);

/* The routes (their query parameters are checked by each). */
void api_enqueue(struct call *c); /* POST /v1/queues/{q}/items */
void api_take(struct call *c);    /* GET /v1/queues/{q}/items */
void api_lease(struct call *c);   /* POST /v1/queues/{q}/leases */
/* DELETE /v1/leases/{h}, POST /v1/leases/{h}/abort and /touch: h is
 * h[0..hn), rest the path after it. */
void api_lease_call(struct http_req *r, struct server *s, const char *h, size_t hn, const char *rest, size_t rn);

#endif
