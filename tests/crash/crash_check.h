/* tests/crash/crash_check.h: recovering one crash state and judging it.
 *
 * The state's journal folder is opened as start-up opens it (jnl_open with
 * create 0, the real system calls), drained as a consumer would (jnl_head,
 * jnl_read, jnl_remove_head; an item failing its checksum is dropped, as
 * queue.c does), and what came out is held against the model:
 *
 * - recovery succeeds; -ENOENT (no journal) only while no item was ever
 *   acknowledged durable;
 * - every item that must come back does, and none that must not;
 * - nothing comes out that the workload never appended, and every item's
 *   length, flags and bytes are the ones appended;
 * - the order is exact: recovery hands out the live items behind the read
 *   cursor first (open or given back at the crash, by id), then the
 *   cursor's items (by id); both lists are in append order and every id
 *   behind the cursor is below every id at or after it, so the whole drain
 *   must be in strictly increasing append order (no repeats);
 * - then a second life: the drained journal, closed and opened again, is
 *   empty, and an item appended to it comes back after another reopen (a
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
    int no_journal;             /* jnl_open said -ENOENT */
};

/* Recovers the journal in dir and checks it against e (model m). conf gives
 * the segment size and the like; its io is replaced by the real one. */
void cc_check(const char *dir, const struct jnl_conf *conf, const struct cm_model *m, const struct cm_expect *e,
              struct cc_result *out);

#endif
