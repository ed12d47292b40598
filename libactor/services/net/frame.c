/* frame.c: a framer (actor_tcp_set_framing): bytes in, frames out through a sink. It knows
 * nothing of connections: conn.c gives it a connection's input and delivers what comes out.
 *
 * Bytes are framed where they are when they can be: a frame found whole in what a read gave is
 * delivered from it without a copy into the framer; only the unfinished frame at the end of a
 * read is kept (`buf`), and the next read is appended to it. `scanned` says how much of `buf`
 * is known to hold no frame end, so a long frame arriving in many small reads is looked
 * through once. A frame that grows past `max` is overlong: the connection fails, or (skip) its
 * bytes are dropped up to its end and one OVERLONG message stands in for it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services/net/frame.h"

struct actor__framer {
	actor_tcp_framing_t f;
	unsigned char *buf; /* the unfinished frame's bytes (prefix included) */
	size_t len, cap;
	size_t scanned;   /* bytes of buf without a frame end in them */
	bool skipping;    /* inside an overlong frame: dropping up to its end */
	size_t skipped;   /* bytes dropped so far in it */
	size_t skip_left; /* LENGTH: the overlong frame's bytes still to drop */
	bool after_cr;    /* LINE with CR_ENDS: the last frame ended at a CR; a LF now is its end */
};

/* Where the frame at p[0..n) ends. True if it does within n: the frame is p[*start ..
 * *start + *content), and *used bytes go with it. */
static bool frame_end(const struct actor__framer *fr, const unsigned char *p, size_t n,
                      size_t from, size_t *start, size_t *content, size_t *used)
{
	const actor_tcp_framing_t *f = &fr->f;
	*start = 0;
	if (f->kind == ACTOR_FRAME_LENGTH) {
		if (n < f->length_bytes)
			return false;
		uint32_t len = 0;
		for (unsigned i = 0; i < f->length_bytes; i++)
			len = len << 8 | p[i];
		if (len > f->max || n - f->length_bytes < len)
			return false;
		*start = f->length_bytes;
		*content = len;
		*used = f->length_bytes + len;
		return true;
	}
	if (f->kind == ACTOR_FRAME_DELIM) {
		size_t back = from >= f->delim_len ? from - (f->delim_len - 1) : 0;
		const unsigned char *d = memmem(p + back, n - back, f->delim, f->delim_len);
		if (d == NULL)
			return false;
		*content = (size_t)(d - p);
		*used = *content + f->delim_len;
		return true;
	}
	bool cr_ends = f->flags & ACTOR_FRAME_CR_ENDS;
	for (size_t i = from; i < n; i++) {
		if (p[i] == '\n') {
			*content = i > 0 && p[i - 1] == '\r' ? i - 1 : i;
			*used = i + 1;
			return true;
		}
		if (p[i] == '\r' && cr_ends) {
			*content = i;
			*used = i + 1 + (i + 1 < n && p[i + 1] == '\n');
			return true;
		}
	}
	return false;
}

/* Whether n bytes without a frame end already make an overlong frame. */
static bool overlong(const struct actor__framer *fr, const unsigned char *p, size_t n)
{
	const actor_tcp_framing_t *f = &fr->f;
	if (f->kind == ACTOR_FRAME_LENGTH) {
		if (n < f->length_bytes)
			return false;
		uint32_t len = 0;
		for (unsigned i = 0; i < f->length_bytes; i++)
			len = len << 8 | p[i];
		return len > f->max;
	}
	/* Room for the longest frame and the start of its end: a delimiter cut by the read, or
	 * the CR of a CR LF (with CR_ENDS a CR ends the frame by itself). */
	size_t end = f->kind == ACTOR_FRAME_DELIM                ? f->delim_len
	             : (f->flags & ACTOR_FRAME_CR_ENDS) ? 1 : 2;
	return n > f->max + end - 1;
}

/* An overlong frame begins: fail, or report it and drop it. False if the connection failed. */
static bool start_skipping(const struct actor__frame_sink *k, void *ctx, struct actor__framer *fr,
                           const unsigned char *p)
{
	if (!(fr->f.flags & ACTOR_FRAME_SKIP_OVERLONG)) {
		k->end(ctx, -EMSGSIZE);
		return false;
	}
	k->overlong(ctx);
	fr->skipping = true;
	fr->skipped = 0;
	fr->skip_left = 0;
	if (fr->f.kind == ACTOR_FRAME_LENGTH) {
		uint32_t len = 0;
		for (unsigned i = 0; i < fr->f.length_bytes; i++)
			len = len << 8 | p[i];
		fr->skip_left = (size_t)fr->f.length_bytes + len;
	}
	return true;
}

/* Drops bytes of an overlong frame from p[0..n); returns how many it used. Sets *failed if the
 * connection failed (skip_max). */
static size_t skip(const struct actor__frame_sink *k, void *ctx, struct actor__framer *fr,
                   const unsigned char *p, size_t n, bool *failed)
{
	size_t start, content, used;
	if (fr->f.kind == ACTOR_FRAME_LENGTH) {
		used = n < fr->skip_left ? n : fr->skip_left;
		fr->skip_left -= used;
		fr->skipping = fr->skip_left > 0;
		return used;
	}
	if (frame_end(fr, p, n, 0, &start, &content, &used)) {
		fr->skipping = false;
		fr->after_cr = p[used - 1] == '\r';
		return used;
	}
	/* Keep what could be the start of a delimiter cut by the read. */
	size_t keep = fr->f.kind == ACTOR_FRAME_DELIM ? fr->f.delim_len - 1 : 0;
	used = n > keep ? n - keep : 0;
	fr->skipped += used;
	if (fr->f.skip_max != 0 && fr->skipped > fr->f.skip_max) {
		k->end(ctx, -EMSGSIZE);
		*failed = true;
	}
	return used;
}

/* Frames p[0..n), delivering every whole frame; returns the bytes used (the rest begins an
 * unfinished frame). `from`: bytes at the start known to hold no frame end. */
static size_t frame_some(const struct actor__frame_sink *k, void *ctx, struct actor__framer *fr,
                         const unsigned char *p, size_t n, size_t from)
{
	size_t off = 0;
	while (off < n && k->live(ctx)) {
		if (fr->after_cr) {
			fr->after_cr = false;
			if (p[off] == '\n') {
				off++;
				from = 0;
				continue;
			}
		}
		if (fr->skipping) {
			bool failed = false;
			size_t used = skip(k, ctx, fr, p + off, n - off, &failed);
			if (failed)
				return n;
			if (used == 0)
				return off; /* the start of a delimiter, perhaps: kept for the next read */
			off += used;
			from = 0;
			continue;
		}
		size_t start, content, used;
		if (!frame_end(fr, p + off, n - off, from, &start, &content, &used)) {
			if (!overlong(fr, p + off, n - off))
				return off;
			if (!start_skipping(k, ctx, fr, p + off))
				return n;
			continue;
		}
		from = 0;
		if (fr->f.kind == ACTOR_FRAME_LINE && p[off + used - 1] == '\r')
			fr->after_cr = true;
		if (content > fr->f.max) {
			/* Whole, but too long: a line whose end came in the read that made it so. */
			if (!start_skipping(k, ctx, fr, p + off))
				return n;
			fr->skipping = false;
		} else if (content > 0 || !(fr->f.flags & ACTOR_FRAME_SKIP_EMPTY)) {
			k->frame(ctx, p + off + start, content);
		}
		off += used;
	}
	return k->live(ctx) ? off : n;
}

static bool keep(struct actor__framer *fr, const unsigned char *p, size_t n)
{
	if (fr->len + n > fr->cap) {
		size_t cap = fr->cap ? fr->cap : 256;
		while (cap < fr->len + n)
			cap *= 2;
		unsigned char *b = realloc(fr->buf, cap);
		if (b == NULL)
			return false;
		fr->buf = b;
		fr->cap = cap;
	}
	memcpy(fr->buf + fr->len, p, n);
	fr->len += n;
	return true;
}

void actor__framer_input(struct actor__framer *fr, const unsigned char *p, size_t n,
                         const struct actor__frame_sink *k, void *ctx)
{
	if (fr->len == 0) {
		size_t used = frame_some(k, ctx, fr, p, n, 0);
		if (used < n && k->live(ctx) && !keep(fr, p + used, n - used))
			k->fail(ctx, -ENOMEM);
		fr->scanned = fr->len;
		return;
	}
	if (!keep(fr, p, n)) {
		k->fail(ctx, -ENOMEM);
		return;
	}
	size_t used = frame_some(k, ctx, fr, fr->buf, fr->len, fr->scanned);
	memmove(fr->buf, fr->buf + used, fr->len - used);
	fr->len -= used;
	fr->scanned = fr->len;
	if (fr->len == 0 && fr->cap > 4096) { /* an idle connection keeps no large buffer */
		free(fr->buf);
		fr->buf = NULL;
		fr->cap = 0;
	}
}

size_t actor__framer_pending(const struct actor__framer *fr, const unsigned char **bytes)
{
	*bytes = fr->buf;
	return fr->skipping ? 0 : fr->len;
}

static int check(const actor_tcp_framing_t *f)
{
	if (f->flags & ~(ACTOR_FRAME_CR_ENDS | ACTOR_FRAME_SKIP_EMPTY | ACTOR_FRAME_SKIP_OVERLONG))
		return -EINVAL;
	if (f->max > ACTOR_MSG_MAX - sizeof(actor_tcp_data_t))
		return -EINVAL;
	switch (f->kind) {
	case ACTOR_FRAME_LINE:
		return 0;
	case ACTOR_FRAME_DELIM:
		return f->delim_len >= 1 && f->delim_len <= sizeof(f->delim) ? 0 : -EINVAL;
	case ACTOR_FRAME_LENGTH:
		return f->length_bytes == 1 || f->length_bytes == 2 || f->length_bytes == 4 ? 0
		                                                                          : -EINVAL;
	default:
		return -EINVAL;
	}
}

int actor__framer_new(const actor_tcp_framing_t *f, struct actor__framer **out)
{
	int rc = check(f);
	if (rc < 0)
		return rc;
	struct actor__framer *fr = calloc(1, sizeof(*fr));
	if (fr == NULL)
		return -ENOMEM;
	fr->f = *f;
	if (fr->f.max == 0)
		fr->f.max = ACTOR_TCP_DATA_MAX;
	*out = fr;
	return 0;
}

void actor__framer_free(struct actor__framer *fr)
{
	if (fr != NULL) {
		free(fr->buf);
		free(fr);
	}
}
