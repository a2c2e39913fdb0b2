/* tests/crash/crash_check.h: recovering one crash state and judging it.
 *
 * The state's journal folder is opened as start-up opens it (jnl_open with
 * create 0, the real system calls), the moves it finds under way are ended
 * as the registry ends them (jnl_next_xfer, jnl_xfer_end), it is drained as
 * a consumer would (jnl_head, jnl_read, jnl_remove_head; an item failing
 * its checksum is dropped, as queue.c does), and what came out is held
 * against the model:
 *
 * - recovery succeeds; -ENOENT (no journal) only while no item was ever
 *   acknowledged durable;
 * - every item comes back in a state its class allows: handed out, in
 *   transfer (and then never handed out), or not at all; one whose class
 *   does not allow "gone" comes back; its delivery count is at least that
 *   of its hand-outs made durable and at most that of those begun before
 *   the crash;
 * - nothing comes out that the workload never appended, and every item's
 *   length, flags and bytes are the ones appended;
 * - the order is exact: recovery hands out the live items behind the read
 *   cursor first (open or given back at the crash, by id), then the
 *   cursor's items (by id); both lists are in append order and every id
 *   behind the cursor is below every id at or after it, so the whole drain
 *   must be in strictly increasing append order (no repeats);
 * - then a second life: the drained journal, closed and opened again, is
 *   empty (nothing in transfer either), and an item appended to it comes back after another reopen (a
 *   folder that held no journal is first started over with create, as the
 *   registry does). */
#ifndef DARNER_TESTS_CRASH_CHECK_H
#define DARNER_TESTS_CRASH_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "crash_model.h"
#include "journal/journal.h"

#define CC_MAX_MSGS 8

struct cc_result {
    int nviol;                  /* violations found */
    char msg[CC_MAX_MSGS][256]; /* the first ones, described */
    size_t drained, damaged;    /* items handed out; dropped for a bad checksum */
    size_t in_xfer;             /* items found in transfer */
    int no_journal;             /* jnl_open said -ENOENT */
};

/* Recovers the journal in dir and checks it against e (model m). conf gives
 * the segment size and the like; its io is replaced by the real one. */
void cc_check(const char *dir, const struct jnl_conf *conf, const struct cm_model *m, const struct cm_expect *e,
              struct cc_result *out);

#endif
