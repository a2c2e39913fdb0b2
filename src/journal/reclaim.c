/* journal/reclaim.c: giving disk space back: deleting consumed segments and
 * rewriting a long ack log. */
#include "journal/jnl_int.h"

#include "journal/format.h"
#include "util/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- upkeep ---- */

void jnl_maintain(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done)
{
    uint64_t low = j->r_seg;
    struct list *lists[2] = {&j->returned, &j->open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
        {
            uint64_t s = list_entry(pos, struct jnl_node, link)->item.seg;
            if (s < low)
                low = s;
        }
    }
    for (; j->oldest_seg < low; j->oldest_seg++) {
        char path[PATH_MAX];
        struct stat st;
        ji_seg_path(j, j->oldest_seg, path, sizeof(path));
        if (stat(path, &st) == 0)
            j->disk_bytes -= (uint64_t)st.st_size < j->disk_bytes ? (uint64_t)st.st_size : j->disk_bytes;
        int rc = j->conf.io->unlink(j->conf.io->ctx, path);
        if (rc < 0 && rc != -ENOENT) {
            log_error(j->conf.log, "journal %s: cannot remove segment %" PRIu64 ": %s", j->dir, j->oldest_seg,
                      strerror(-rc));
            break;
        }
        if (j->r_fd >= 0 && j->r_fd_seg == j->oldest_seg)
            ji_close_fd(j, &j->r_fd);
        j->dir_dirty = 1;
    }
    if (j->ack_off > j->conf.ack_compact_bytes && (j->conf.sync_never || sync_epoch_done >= j->ack_ckpt_epoch)) {
        int rc = ji_ack_rewrite(j, sync_epoch_next);
        if (rc < 0)
            log_error(j->conf.log, "journal %s: cannot rewrite the ack log: %s", j->dir, strerror(-rc));
    }
}
