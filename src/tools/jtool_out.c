/* tools/jtool_out.c: darner-journal's output: escaping, times, findings,
 * and the record and ack lines of dump, as text or one JSON object a line. */
#include "tools/jtool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* Writes p[0..n) escaped for a "..." string: JSON, or C-like for text. */
void esc(const struct tool *t, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == '"' || c[i] == '\\')
            fprintf(t->out, "\\%c", c[i]);
        else if (c[i] >= 0x20 && c[i] < 0x7f)
            fputc(c[i], t->out);
        else if (c[i] == '\n' || c[i] == '\t')
            fputs(c[i] == '\n' ? "\\n" : "\\t", t->out);
        else
            fprintf(t->out, t->json ? "\\u%04x" : "\\x%02x", c[i]);
    }
}

const char *fmt_ms(char out[40], uint64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char day[24];
    if (ms == 0)
        return "never";
    if (!jt_gmtime(&s, &tm) || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(out, 40, "%" PRIu64 "ms", ms);
    else
        snprintf(out, 40, "%s.%03uZ", day, (unsigned)(ms % 1000));
    return out;
}

/* Counts and prints one finding: damage (makes the exit code 1) or a note. */
void report(struct tool *t, int damage, const char *file, uint64_t off, uint64_t bytes, const char *fmt, ...)
{
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    *(damage ? &t->damages : &t->notes) += 1;
    if (!t->json) {
        fprintf(t->out, "  %s %s offset %" PRIu64 " (%" PRIu64 " bytes): %s\n", damage ? "DAMAGE" : "note", file, off,
                bytes, what);
        return;
    }
    fprintf(t->out, "{\"type\":\"%s\",\"file\":\"%s\",\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"what\":\"",
            damage ? "damage" : "note", file, off, bytes);
    esc(t, what, strlen(what));
    fputs("\"}\n", t->out);
}

/* Lists one record (dump). ok: 1 checksum good, 0 bad, -1 no blob file. The
 * payload is at base in fd (fd < 0: none to show). */
int emit_rec(struct tool *t, uint64_t seq, uint64_t off, const struct jf_rec *r, int ok, int fd, uint64_t base)
{
    char added[40], expires[40];
    const char *sum = ok > 0 ? "ok" : ok == 0 ? "bad" : "no blob file";
    const char *kind = r->type == JF_REC_BLOB ? "blob" : "item";
    int moved = (r->rflags & JF_RF_MOVED) != 0, rc = 0;
    const char *reason = r->reason && jf_reason_name(r->reason) ? jf_reason_name(r->reason) : "none";
    uint64_t n = fd < 0 ? 0 : t->payload || r->len <= PREVIEW ? r->len : PREVIEW;
    if (t->json)
        fprintf(t->out,
                "{\"type\":\"record\",\"seg\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"idx\":%" PRIu32
                ",\"batch_size\":%" PRIu64 ",\"payload_at\":%" PRIu64 ",\"id\":%" PRIu64 ",\"kind\":\"%s\","
                "\"moved\":%s,\"flags\":%" PRIu32 ",\"added_ms\":%" PRIu64 ",\"expires_ms\":%" PRIu64
                ",\"length\":%" PRIu64 ",\"deliveries\":%" PRIu32 ",\"origin_id\":%" PRIu64
                ",\"reason\":\"%s\",\"checksum\":\"%s\",\"payload\":\"",
                seq, off, t->cur_idx, t->cur_size, t->cur_payload_at, r->id, kind, moved ? "true" : "false", r->flags,
                r->add_ms, r->expire_ms, r->len, r->deliveries, r->origin_id, reason, sum);
    else
        fprintf(t->out,
                "  record seg %" PRIu64 " off %" PRIu64 " id %" PRIu64 " %s%s flags %" PRIu32
                " added %s expires %s len %" PRIu64 " deliveries %" PRIu32 " origin %" PRIu64 " (%s) sum %s \"",
                seq, off, r->id, kind, moved ? " (moved copy)" : "", r->flags, fmt_ms(added, r->add_ms),
                fmt_ms(expires, r->expire_ms), r->len, r->deliveries, r->origin_id, reason, sum);
    for (uint64_t done = 0, k; rc == 0 && done < n; done += k) {
        k = n - done < CHUNK ? n - done : CHUNK;
        if ((rc = jio_pread_all(t->io, fd, t->buf, (size_t)k, (off_t)(base + done))) == 0)
            esc(t, t->buf, (size_t)k);
    }
    fputs(t->json ? (n == r->len ? "\",\"complete\":true}\n" : "\",\"complete\":false}\n")
                  : (n == r->len ? "\"\n" : "\"...\n"),
          t->out);
    return rc == -ENODATA ? 0 : rc;
}

/* Lists one ack record (dump). */
void dump_ack(void *ctx, uint64_t off, const struct jf_ack *r, int ok)
{
    const struct dump_ctx *d = ctx;
    const struct tool *t = d->t;
    const char *type = ok ? jf_ack_type_name(r->type) : "?";
    fprintf(t->out,
            t->json ? "{\"type\":\"ack\",\"file\":\"%s\",\"offset\":%" PRIu64 ",\"ok\":%s,\"record\":\"%s\","
                      "\"id\":%" PRIu64 ",\"seg\":%" PRIu64 ",\"off\":%" PRIu64 ",\"len\":%" PRIu64 ",\"cum\":%" PRIu64
                      ",\"kind\":\"%s\",\"deliveries\":%" PRIu32 ",\"xfer\":\"%s\"}\n"
                    : "  ack %s off %" PRIu64 " %s %s id %" PRIu64 " seg %" PRIu64 " off %" PRIu64 " len %" PRIu64
                      " cum %" PRIu64 " %s deliveries %" PRIu32 " xfer %s\n",
            d->name, off, ok ? (t->json ? "true" : "ok") : (t->json ? "false" : "DAMAGED"), type ? type : "?", r->id,
            r->seg, r->off, r->len, r->cum, r->kind == JF_REC_BLOB ? "blob" : "item", r->deliveries,
            r->xfer && jf_reason_name(r->xfer) ? jf_reason_name(r->xfer) : "none");
}
