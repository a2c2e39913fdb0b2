/* journal/datadir.h: the data folder's own files (FORMAT, and small files
 * such as the server's STATUS).
 *
 * <data>/FORMAT holds the version of the data folder's layout as a decimal
 * number and a newline. It is read before any queue is opened: a version this
 * build does not know refuses the whole folder, untouched. See
 * docs/journal-format.md. */
#ifndef DARNER_JOURNAL_DATADIR_H
#define DARNER_JOURNAL_DATADIR_H

#include <sys/types.h>

#include "journal/journal.h"

/* The data-folder format this build writes. */
#define JDD_FORMAT 3
/* The oldest data-folder format this build opens (and upgrades). */
#define JDD_FORMAT_MIN 1
#define JDD_FORMAT_FILE "FORMAT"

/* Checks <data_dir>/FORMAT, writing it (crash-safely) when it is missing (a
 * folder without one is new, or of version 1 from before the file existed)
 * or older than JDD_FORMAT: an older folder is upgraded in place, each queue
 * as it is next opened (its next append starts a new segment, its ack log
 * is rewritten), every step crash-safe. Returns 0; -EPROTONOSUPPORT for a version this build does not
 * know, or a file that holds no version; or -errno. Each refusal is
 * logged with what to do, and changes nothing on disk. *found (may be NULL)
 * gets the version read (0 if none). */
int jdd_check_format(const struct jnl_conf *conf, const char *data_dir, uint32_t *found);

/* Writes <data_dir>/FORMAT holding version: to FORMAT.tmp, synced, renamed,
 * and the folder synced (unless the fsync policy is "never"). */
int jdd_write_format(const struct jnl_conf *conf, const char *data_dir, uint32_t version);

/* Writes <data_dir>/<name> holding text, crash-safely: to <name>.tmp,
 * synced, renamed, and the folder synced (unless the fsync policy is
 * "never"). Returns 0 or -errno. */
int jdd_write_file(const struct jnl_conf *conf, const char *data_dir, const char *name, const char *text);
/* Reads up to cap bytes of <data_dir>/<name>. Returns the length read, or
 * -errno (-ENOENT: there is none). */
ssize_t jdd_read_file(const struct jnl_conf *conf, const char *data_dir, const char *name, char *buf, size_t cap);

#endif
