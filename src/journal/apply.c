/* journal/apply.c: what each journal record does to the journal's state.
 * The only code that changes the cursor, the tail counts and the live items
 * (journal/state.h). */
#include "journal/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void jst_init(struct jst *s)
{
    *s = (struct jst){0};
    list_init(&s->returned);
    list_init(&s->open);
}

/* ---- the given-back nodes by id ----
 *
 * The returned list is kept in id order (the oldest given-back item is
 * handed out first). Leases run out in deadline order, which is random in
 * id order, so finding each one's place by a walk of the list cost
 * O(given back) per item: 100,000 leases running out took 24 s of CPU. A
 * treap over the same nodes finds the place in O(log n) expected; the list
 * stays as it was for everything that walks it in order. A node's treap
 * priority is a hash of its id and address: no state to keep, and nodes
 * with the same id (only a damaged ack log makes them) still get different
 * ones, so the tree stays shallow. */

static uint64_t prio(const struct jnl_node *n)
{
    uint64_t z = n->item.id ^ (uint64_t)(uintptr_t)n;
    z += 0x9e3779b97f4a7c15ull; /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct jnl_node *rotate_right(struct jnl_node *t)
{
    struct jnl_node *l = t->tl;
    t->tl = l->tr;
    l->tr = t;
    return l;
}

static struct jnl_node *rotate_left(struct jnl_node *t)
{
    struct jnl_node *r = t->tr;
    t->tr = r->tl;
    r->tl = t;
    return r;
}

/* n put into the treap t; *succ gets the first node in id order not below
 * n (NULL: none), which n goes before in the list. Returns the new root. */
static struct jnl_node *treap_insert(struct jnl_node *t, struct jnl_node *n, struct jnl_node **succ)
{
    if (!t) {
        n->tl = n->tr = NULL;
        return n;
    }
    if (n->item.id <= t->item.id) {
        *succ = t;
        t->tl = treap_insert(t->tl, n, succ);
        if (prio(t->tl) > prio(t))
            t = rotate_right(t);
    } else {
        t->tr = treap_insert(t->tr, n, succ);
        if (prio(t->tr) > prio(t))
            t = rotate_left(t);
    }
    return t;
}

/* n taken out of the treap t. Returns the new root. */
static struct jnl_node *treap_remove(struct jnl_node *t, struct jnl_node *n)
{
    if (!t)
        return NULL;
    if (t != n) {
        if (n->item.id <= t->item.id) /* an equal id may be on either side (rotations) */
            t->tl = treap_remove(t->tl, n);
        if (n->item.id >= t->item.id)
            t->tr = treap_remove(t->tr, n);
        return t;
    }
    if (!t->tl)
        return t->tr;
    if (!t->tr)
        return t->tl;
    if (prio(t->tl) > prio(t->tr)) {
        t = rotate_right(t);
        t->tr = treap_remove(t->tr, n);
    } else {
        t = rotate_left(t);
        t->tl = treap_remove(t->tl, n);
    }
    return t;
}

static void returned_insert(struct jst *s, struct jnl_node *n)
{
    struct jnl_node *succ = NULL;
    s->by_id = treap_insert(s->by_id, n, &succ);
    n->in_tree = 1;
    list_insert_before(succ ? &succ->link : &s->returned, &n->link);
}

/* n leaves the returned list (and the treap), if it is there. */
static void returned_remove(struct jst *s, struct jnl_node *n)
{
    if (n->in_tree) {
        s->by_id = treap_remove(s->by_id, n);
        n->in_tree = 0;
    }
    list_remove(&n->link);
}

/* The cached lowest live segment (jst_lowest_live_seg) keeps a count of the
 * live items in it, so it is looked for again only once the last of them
 * went, not each time one of them goes: taking 100,000 given-back items of
 * one segment walked every live item for each (O(n^2): 23 s of CPU). */
static void low_add(struct jst *s, uint64_t seg)
{
    if (!s->low_valid || seg > s->low_seg)
        return;
    s->low_count = seg < s->low_seg ? 1 : s->low_count + 1;
    s->low_seg = seg;
}

static void low_drop(struct jst *s, uint64_t seg)
{
    if (s->low_valid && seg == s->low_seg && --s->low_count == 0)
        s->low_valid = 0; /* the last one there: the next lowest is looked for */
}

/* A new given-back node for it. Returns NULL when out of memory. */
static struct jnl_node *node_new(struct jst *s, const struct jnl_item *it)
{
    struct jnl_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->item = *it;
    list_init(&n->link);
    s->nnodes++;
    s->node_bytes += it->len;
    low_add(s, it->seg);
    returned_insert(s, n);
    return n;
}

/* Counts n out of the nodes in transfer, if it is one. */
static void xfer_leave(struct jst *s, const struct jnl_node *n)
{
    if (jst_in_xfer(s, n)) {
        s->nxfer--;
        s->xfer_bytes -= n->item.len;
    }
}

static void node_free(struct jst *s, struct jnl_node *n)
{
    returned_remove(s, n);
    xfer_leave(s, n);
    if (n->owner) {
        s->nopen--;
        s->open_bytes -= n->item.len;
    }
    s->nnodes--;
    s->node_bytes -= n->item.len;
    low_drop(s, n->item.seg);
    free(n);
}

void jst_free_nodes(struct jst *s)
{
    free(s->pend); /* (a checkpoint writes its own FIRED and FIRINGs after its CKPT) */
    s->pend = NULL;
    s->npend = s->cappend = 0;
    s->fire = (struct jfire){0};
    struct list *lists[2] = {&s->returned, &s->open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
            node_free(s, list_entry(pos, struct jnl_node, link));
    }
}

struct jnl_node *jst_find(struct jst *s, uint64_t id)
{
    for (struct jnl_node *t = s->by_id; t; t = id < t->item.id ? t->tl : t->tr)
        if (t->item.id == id)
            return t;
    struct list *pos;
    for (pos = s->open.next; pos != &s->open; pos = pos->next) {
        struct jnl_node *n = list_entry(pos, struct jnl_node, link);
        if (n->item.id == id)
            return n;
    }
    return NULL;
}

uint64_t jst_lowest_live_seg(const struct jst *cs)
{
    /* Asked after every request: the answer is kept, and looked for again
     * only once the node in the lowest segment may have gone (a walk of
     * every live item each time made each request cost O(open items)). */
    struct jst *s = (struct jst *)cs; /* (the cache alone changes) */
    if (s->low_valid)
        return s->low_seg;
    uint64_t low = UINT64_MAX, count = 0;
    const struct list *lists[2] = {&s->returned, &s->open};
    for (int i = 0; i < 2; i++)
        for (const struct list *pos = lists[i]->next; pos != lists[i]; pos = pos->next) {
            uint64_t seg = list_entry(pos, struct jnl_node, link)->item.seg;
            count = seg < low ? 1 : count + (seg == low);
            low = seg < low ? seg : low;
        }
    s->low_seg = low;
    s->low_count = count;
    s->low_valid = 1;
    return low;
}

void jst_each(const struct jst *s, void (*fn)(void *ctx, const struct jnl_node *n), void *ctx)
{
    const struct list *lists[2] = {&s->returned, &s->open};
    for (int i = 0; i < 2; i++)
        for (const struct list *pos = lists[i]->next; pos != lists[i]; pos = pos->next)
            fn(ctx, list_entry(pos, struct jnl_node, link));
}

void jst_hold(struct jst *s, struct jnl_node *n, void *owner)
{
    if (!n->owner) {
        s->nopen++;
        s->open_bytes += n->item.len;
    }
    if (owner == s && !jst_in_xfer(s, n)) {
        s->nxfer++;
        s->xfer_bytes += n->item.len;
    }
    returned_remove(s, n);
    list_push_back(&s->open, &n->link);
    n->owner = owner;
}

void jst_release(struct jst *s, struct jnl_node *n)
{
    xfer_leave(s, n);
    if (n->owner) {
        s->nopen--;
        s->open_bytes -= n->item.len;
    }
    n->owner = NULL;
    returned_remove(s, n);
    returned_insert(s, n);
}

int jst_apply_rec(struct jst *s, const struct jf_rec *r)
{
    if (r->rflags & JF_RF_MOVED)
        return r->id < s->next_id ? 0 : -EBADMSG;
    if (r->id != s->next_id)
        return -EBADMSG;
    s->next_id++;
    s->tail_cum += r->len;
    return 0;
}

/* The item an ack record names; the rest of its attributes are in its
 * segment record. */
static struct jnl_item ack_item(const struct jf_ack *a)
{
    return (struct jnl_item){.id = a->id,
                             .kind = a->kind,
                             .seg = a->seg,
                             .off = a->off,
                             .idx = a->idx,
                             .len = a->len,
                             .deliveries = a->deliveries};
}

static struct jnl_node *find(struct jst *s, const struct jf_ack *a, struct jnl_node *hint)
{
    return hint && hint->item.id == a->id ? hint : jst_find(s, a->id);
}

static void cursor_past(struct jst *s, const struct jf_ack *a)
{
    s->r_seg = a->seg;
    s->r_off = a->off;
    s->r_idx = a->idx + 1;
    s->r_id = a->id + 1;
    s->r_cum += a->len;
}

int jst_apply_ack(struct jst *s, const struct jf_ack *a, struct jnl_node *hint, struct jnl_node **out)
{
    struct jnl_node *n = NULL;
    struct jnl_item it = ack_item(a);
    int rc = 0;
    if (a->id > s->ack_max_id)
        s->ack_max_id = a->id;
    switch ((enum jf_ack_type)a->type) {
    case JF_ACK_CKPT:  /* starts a file: the cursor; its OUT records follow */
    case JF_ACK_FLUSH: /* everything before the position is gone */
        jst_free_nodes(s);
        s->r_seg = a->seg;
        s->r_off = a->off;
        s->r_idx = a->idx;
        s->r_id = a->id;
        s->r_cum = a->cum;
        break;
    case JF_ACK_OUT:
    case JF_ACK_OPEN:
        if (!(n = node_new(s, &it)))
            return -ENOMEM;
        if (a->type == JF_ACK_OPEN) /* handed out open: the cursor moves as for TAKE */
            cursor_past(s, a);
        break;
    case JF_ACK_COUNT:
        if ((n = find(s, a, hint)) != NULL)
            n->item.deliveries = a->deliveries;
        break;
    case JF_ACK_XFER:
        if (!a->xfer)
            return -EBADMSG;
        if ((n = find(s, a, hint)) != NULL) { /* else gone already: nothing to move */
            /* held, never handed out, until a CONFIRM or a RESTORE */
            n->item.xfer = a->xfer;
            n->item.xfer_dir = a->seg;
            n->item.xfer_id = a->off;
            n->item.xfer_due = a->cum;
            jst_hold(s, n, s);
        }
        break;
    case JF_ACK_TAKE:
        cursor_past(s, a);
        break;
    case JF_ACK_CONFIRM:
        if ((n = find(s, a, hint)) != NULL)
            node_free(s, n);
        n = NULL;
        break;
    case JF_ACK_FIRING: /* one more whose copies are not known durable */
        if (s->npend == s->cappend) {
            size_t cap = s->cappend ? s->cappend * 2 : 8;
            struct jfire *p = realloc(s->pend, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            s->pend = p;
            s->cappend = cap;
        }
        s->pend[s->npend++] =
            (struct jfire){.due = a->off, .id = a->id, .fired = a->len, .lane_dir = a->seg, .lane_id = a->cum};
        break;
    case JF_ACK_FIRED: {
        /* done up to its key: the FIRINGs up to it are; with its void flag
         * (byte 52), every FIRING before it whose copies were never made is
         * void */
        size_t k = 0;
        while (k < s->npend && !a->xfer &&
               (s->pend[k].due < a->off || (s->pend[k].due == a->off && s->pend[k].id <= a->id)))
            k++;
        if (a->xfer)
            k = s->npend;
        if (k) { /* (pend may be NULL: none pending) */
            memmove(s->pend, s->pend + k, (s->npend - k) * sizeof(*s->pend));
            s->npend -= k;
        }
        s->fire = (struct jfire){.due = a->off, .id = a->id, .fired = a->len};
        break;
    }
    case JF_ACK_RESTORE:
        /* Live again behind the cursor, handed out before the cursor's items
         * (also an item whose transfer was given up). */
        if ((n = find(s, a, hint)) == NULL && !(n = node_new(s, &it)))
            return -ENOMEM;
        if (jst_in_xfer(s, n))
            jst_release(s, n);
        n->item.xfer = 0;
        n->item.xfer_dir = n->item.xfer_id = n->item.xfer_due = 0;
        break;
    case JF_ACK_MOVE:
        if ((n = find(s, a, hint)) != NULL) {
            low_drop(s, n->item.seg);
            low_add(s, a->seg);
            n->item.seg = a->seg;
            n->item.off = a->off;
            n->item.idx = a->idx;
            n->item.epos = 0; /* a new place: its entry is walked to */
        }
        break;
    default:
        rc = -EBADMSG;
    }
    if (out)
        *out = n;
    return rc;
}
