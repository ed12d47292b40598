/* conn.c: a TCP connection's state machine over its watcher: reading (with the owner's pause
 * and read limit), the output queue and its flow control, closing with a linger, failing.
 *
 * Input flow control: `unhandled` counts the bytes of the DATA messages sent to the owner whose
 * behaviour calls have not returned yet (msg.c takes the message's mark as it is handled, and
 * calls actor__conn_handled). Above read_limit the connection is `throttled` (reads stop, as
 * for a pause); at half of it reading resumes.
 *
 * Every change of state ends in actor__conn_update, which derives what the watcher wants from
 * the state alone; the reactor applies it in its next poll. Bytes that a backend had already
 * read when a pause was applied still arrive: they wait in the stash and come first on resume.
 *
 * Lifetime: a connection leaves the table (its handle goes stale) when the owner closes or
 * aborts it, when its owner stops, or, after it failed, once the CLOSED (or CONNECTED) message
 * carrying the error has been delivered or dead-lettered; until then its handle stays valid and
 * writes say -EPIPE. It is freed when the reactor lets go of its watcher (conn_closed): for a
 * close, once the peer's kernel has acknowledged all the output, or the linger ran out (see
 * actor__conn_close_graceful).
 */
#include "config.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "services/lookup/lookup.h"
#include "services/net/net.h"

#define OUTBUF_SMALL 4096        /* bytes of an output chunk while its queue is short */
#define OUTBUF_LARGE (64u << 10) /* the most a chunk grows to for a long queue */
#define OUTBUF_SPARE_MAX 64      /* freed OUTBUF_SMALL chunks a worker keeps: 256 KiB */
#define STASH_CHUNK (64u << 10)  /* the most of a stash one DATA message carries */
/* A close whose output is all in the kernel looks whether the peer has acknowledged it 1 ms
 * later, then at doubling intervals up to 64 ms. A peer that reads at once has acknowledged by
 * the first look (on loopback within microseconds), a delayed acknowledgement (Linux: 40 to
 * 200 ms) is seen a few looks later, and a peer slow to read costs at most about 16 looks a
 * second until the linger ends the wait. */
#define ACK_POLL_FIRST_NS 1000000u
#define ACK_POLL_MAX_NS 64000000u

static const struct actor__watch_ops conn_ops;

static void close_output_done(struct actor__conn *c);
static void shut_when_written(struct actor__conn *c);
static bool tls_closing_handshake(const struct actor__conn *c);

static struct actor__conn *conn_of_watcher(struct actor__watcher *wt)
{
	return (struct actor__conn *)((char *)wt - offsetof(struct actor__conn, wt));
}

/* ---------------------------------------------------------------------------------------------
 * Handles and events
 */

struct actor__conn *actor__conn_of(struct actor__net *net, actor_conn_t h)
{
	if (actor__handle_worker(h.id) != net->w->index)
		return NULL;
	return actor__table_get(&net->conns, h.id);
}

actor_conn_t actor__conn_handle(const struct actor__conn *c)
{
	return (actor_conn_t){((uint64_t)c->w->index << 56) | ((uint64_t)c->gen << 32) | c->idx};
}

int actor__conn_event(struct actor__conn *c, uint32_t type, int err)
{
	actor_tcp_event_t ev = {.conn = actor__conn_handle(c), .error = err, .worker = c->w->index};
	return actor__send_internal(c->w->sys, c->owner, ACTOR_REF_NONE, type, &ev, sizeof(ev));
}

/* Takes the connection out of the table: its handle is stale from now on. */
void actor__conn_unlist(struct actor__conn *c)
{
	if (c->idx != 0) {
		actor__table_del(&c->net->conns, c->idx);
		c->idx = 0;
	}
}

static bool conn_paused(const struct actor__conn *c)
{
	return c->owner_paused || c->throttled;
}

void actor__conn_update(struct actor__conn *c)
{
	unsigned want = 0;
	switch (c->state) {
	case CONN_CONNECTING:
		want = WATCH_CONNECT;
		break;
	case CONN_OPEN:
		if (!c->rd_eof && !c->rd_ended && !c->read_held && !conn_paused(c) &&
		    c->stash == NULL)
			want |= WATCH_READ;
		if (c->out_head != NULL)
			want |= WATCH_WRITE;
		break;
	case CONN_CLOSING:
		/* A close reads on to discard what arrives (actor__conn_close_graceful). */
		if (!c->rd_eof)
			want |= WATCH_READ;
		if (c->out_head != NULL)
			want |= WATCH_WRITE;
		break;
	default: /* pending: not read until handed off; failed: no I/O */
		break;
	}
	actor__watch_set(c->w->reactor, &c->wt, want);
}

/* ---------------------------------------------------------------------------------------------
 * Creating
 */

struct actor__conn *actor__conn_new(struct actor__net *net, int fd, actor_ref_t owner, int state)
{
	struct actor_worker *w = net->w;
	struct actor__conn *c = actor__zalloc(sizeof(*c));
	if (c == NULL)
		return NULL;
	int64_t idx = actor__table_put(&net->conns, c);
	if (idx < 0) {
		actor__free(c, sizeof(*c));
		return NULL;
	}
	if (fd >= 0)
		actor__watch_open(w->reactor, &c->wt, fd, &conn_ops);
	else
		c->wt.fd = -1; /* connecting by name: no socket yet (dial_next opens the watcher) */
	c->idx = (uint32_t)idx;
	c->gen = net->conns.gen[idx] & TABLE_GEN_MASK;
	c->w = w;
	c->net = net;
	c->owner = owner;
	c->state = (uint8_t)state;
	c->high = ACTOR_TCP_HIGH_WATER;
	c->low = ACTOR_TCP_LOW_WATER;
	c->read_limit = ACTOR_TCP_READ_LIMIT;
	actor__stat_add(&w->st.conns, 1);
	return c;
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 */

static void set_throttled(struct actor__conn *c, bool on);

void actor__conn_deliver(struct actor__conn *c, const void *data, size_t len)
{
	actor_msg_t *m;
	if (actor_msg_alloc(sizeof(*m) + sizeof(actor_tcp_data_t) + len, 0, &m) < 0) {
		actor__conn_fail(c, -ENOMEM);
		return;
	}
	actor_tcp_data_t *d = actor_msg_data(m);
	d->conn = actor__conn_handle(c);
	d->len = (uint32_t)len;
	d->reserved_ = DATA_COUNTED;
	memcpy(d + 1, data, len);
	m->type = ACTOR_MSG_TCP_DATA;
	if (actor__send_internal_msg(c->w->sys, c->owner, m) < 0) {
		actor_msg_free(m);
		actor__conn_fail(c, -ESRCH); /* the owner is gone: nobody will close it */
		return;
	}
	c->unhandled += len;
	if (c->read_limit != 0 && c->unhandled > c->read_limit)
		set_throttled(c, true);
}

static void stash_free(struct actor__conn *c);

/* Where a connection's framer sends what it makes. */
static void frame_out(void *ctx, const void *bytes, size_t len)
{
	actor__conn_deliver(ctx, bytes, len);
}

static void frame_overlong(void *ctx)
{
	actor__conn_event(ctx, ACTOR_MSG_TCP_OVERLONG, -EMSGSIZE);
}

static void frame_fail(void *ctx, int err)
{
	actor__conn_fail(ctx, err);
}

/* Input the framer refuses (an overlong frame): the owner hears CLOSED with the error and gets
 * no more input, as at the peer's end, but may still write (an error line, say) and close. */
static void frame_end(void *ctx, int err)
{
	struct actor__conn *c = ctx;
	c->rd_ended = true;
	stash_free(c);
	c->end_held = false;
	actor__conn_event(c, ACTOR_MSG_TCP_CLOSED, err);
	actor__conn_update(c);
}

static bool frame_live(void *ctx)
{
	const struct actor__conn *c = ctx;
	return c->state == CONN_OPEN && !c->rd_ended;
}

static const struct actor__frame_sink frame_sink = {
    .frame = frame_out,
    .overlong = frame_overlong,
    .end = frame_end,
    .fail = frame_fail,
    .live = frame_live,
};

/* Input for the owner: framed, or as it is. */
static void input(struct actor__conn *c, const void *data, size_t len)
{
	if (c->framer != NULL)
		actor__framer_input(c->framer, data, len, &frame_sink, c);
	else
		actor__conn_deliver(c, data, len);
}

int actor__conn_set_framing(struct actor__conn *c, const actor_tcp_framing_t *f)
{
	struct actor__framer *fr = NULL;
	if (f->kind != ACTOR_FRAME_NONE) {
		int rc = actor__framer_new(f, &fr);
		if (rc < 0)
			return rc;
	} else if (f->flags != 0) {
		return -EINVAL;
	}
	/* The old framer's unfinished frame is input not yet delivered: framed anew, or (none)
	 * delivered as it is. */
	struct actor__framer *old = c->framer;
	c->framer = fr;
	if (old != NULL) {
		const unsigned char *bytes;
		size_t len = actor__framer_pending(old, &bytes);
		if (len > 0 && c->state == CONN_OPEN)
			input(c, bytes, len);
		actor__framer_free(old);
	}
	return 0;
}

/* Keeps bytes that arrived while reading was paused. False if they cannot be kept. */
static bool stash_add(struct actor__conn *c, const void *data, size_t len)
{
	unsigned char *s = realloc(c->stash, c->stash_len + len);
	if (s == NULL)
		return false;
	memcpy(s + c->stash_len, data, len);
	c->stash = s;
	c->stash_len += len;
	return true;
}

static void stash_free(struct actor__conn *c)
{
	free(c->stash);
	c->stash = NULL;
	c->stash_len = c->stash_off = 0;
}

/* The read ended (0: the peer's end; < 0: an error). */
static void read_end(struct actor__conn *c, int err)
{
	if (c->state == CONN_CLOSING && err < 0) {
		actor__conn_release(c); /* broken (a reset): nothing more reaches the peer */
		return;
	}
	if (c->state != CONN_OPEN)
		return;
	if (err == 0) {
		c->rd_eof = true;
		actor__conn_event(c, ACTOR_MSG_TCP_CLOSED, 0); /* the owner decides when to close */
		actor__conn_update(c);
		return;
	}
	actor__conn_fail(c, err);
}

/* Reading is wanted again: delivers the stash, a message's worth at a time (one may throttle
 * the connection again: the rest then waits for the next resume), then the end held behind
 * it. */
static bool tls_pump(struct actor__conn *c);

static void stash_deliver(struct actor__conn *c)
{
	/* A TLS connection stashes nothing: what it read waits in its session. */
	bool drained = c->tls == NULL || tls_pump(c);
	while (c->stash != NULL && c->state == CONN_OPEN && !conn_paused(c)) {
		size_t n = c->stash_len - c->stash_off;
		n = n < STASH_CHUNK ? n : STASH_CHUNK;
		input(c, c->stash + c->stash_off, n);
		c->stash_off += n;
		if (c->stash_off == c->stash_len)
			stash_free(c);
	}
	if (c->stash == NULL && drained && c->end_held && c->state == CONN_OPEN && !conn_paused(c)) {
		c->end_held = false;
		c->rd_eof = false;
		read_end(c, c->end_res);
	}
}

static void set_throttled(struct actor__conn *c, bool on)
{
	if (on == c->throttled)
		return;
	c->throttled = on;
	if (on)
		actor__stat_add(&c->w->st.read_throttles, 1);
	else
		stash_deliver(c);
	actor__conn_update(c);
}

void actor__conn_set_paused(struct actor__conn *c, bool on)
{
	c->owner_paused = on;
	if (!on)
		stash_deliver(c);
	actor__conn_update(c);
}

void actor__conn_set_read_limit(struct actor__conn *c, size_t bytes)
{
	c->read_limit = bytes;
	if (bytes == 0 || c->unhandled <= bytes / 2)
		set_throttled(c, false);
	else if (c->unhandled > bytes)
		set_throttled(c, true);
}

void actor__conn_handled(struct actor__net *net, actor_conn_t conn, uint32_t len)
{
	struct actor__conn *c = actor__conn_of(net, conn);
	if (c == NULL)
		return; /* gone since: nothing to resume */
	/* Never below zero, even for a message so old that its handle's generation came round
	 * again (2^24 reuses of the slot). */
	c->unhandled -= len < c->unhandled ? len : c->unhandled;
	if (c->throttled && c->unhandled <= c->read_limit / 2)
		set_throttled(c, false);
}

static void tls_on_read(struct actor__conn *c, const void *data, ssize_t n);
static void tls_closing_read(struct actor__conn *c, const void *data, ssize_t n);

static void conn_on_read(struct actor__watcher *wt, const void *data, ssize_t n)
{
	struct actor__conn *c = conn_of_watcher(wt);
	bool held = c->state == CONN_OPEN && (conn_paused(c) || c->stash != NULL);
	if (c->state == CONN_CLOSING && tls_closing_handshake(c)) {
		tls_closing_read(c, data, n);
		return;
	}
	if (n > 0 && c->state != CONN_OPEN)
		return; /* a close discards what arrives */
	if (c->state == CONN_OPEN && c->rd_eof)
		return; /* after the peer's end (reported, or held behind the stash) nothing counts:
		         * a late completion must not report a second end */
	if (c->state == CONN_OPEN && c->rd_ended) {
		if (n <= 0) /* input refused already: the owner has had its CLOSED */
			c->rd_eof = true;
		return;
	}
	if (c->tls != NULL && c->state == CONN_OPEN) {
		tls_on_read(c, data, n);
		return;
	}
	if (n > 0 && held) {
		if (!stash_add(c, data, (size_t)n))
			actor__conn_fail(
			    c, -ENOMEM); /* cannot keep them: the stream would have a hole */
		return;
	}
	if (n > 0) {
		input(c, data, (size_t)n);
		return;
	}
	if (held) {
		/* The peer's end, or a reset, comes after the bytes still stashed, as it would
		 * have without the pause. */
		c->end_held = true;
		c->end_res = (int)n;
		c->rd_eof = true; /* no more reading meanwhile */
		return;
	}
	if (c->state == CONN_CLOSING && n == 0) {
		c->rd_eof = true;
		actor__conn_update(c);
		return;
	}
	read_end(c, (int)n);
}

/* The connection broke: tell the owner; it is freed once the owner has the message. */
void actor__conn_fail(struct actor__conn *c, int err)
{
	if (c->state == CONN_FAILED)
		return; /* already reported; a late completion of the same breakage */
	if (c->state == CONN_OPEN || c->state == CONN_CONNECTING || c->state == CONN_RESOLVING) {
		uint32_t type =
		    c->state == CONN_OPEN ? ACTOR_MSG_TCP_CLOSED : ACTOR_MSG_TCP_CONNECTED;
		c->state = CONN_FAILED;
		actor__conn_update(c);
		if (actor__conn_event(c, type, err) == 0)
			return; /* actor__conn_delivered frees it */
	}
	actor__conn_unlist(c);
	actor__conn_release(c);
}

void actor__conn_delivered(struct actor__net *net, actor_conn_t conn)
{
	struct actor__conn *c = actor__conn_of(net, conn);
	if (c != NULL && c->state == CONN_FAILED) {
		actor__conn_unlist(c);
		actor__conn_release(c);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 */

/* A chunk for a write of `len` bytes to a queue holding `queued`. Small writes are appended
 * to the tail chunk while it has room. A short queue gets OUTBUF_SMALL-byte chunks (header
 * included, so that this and the larger powers of two are jemalloc size classes), reused
 * through `spare`; a longer one, chunks about as large as what it already holds, up to
 * OUTBUF_LARGE; a larger write, a chunk of its own size. So a stream of small writes that the
 * socket does not take at once goes out in a few large sends, and a queue's chunks take about
 * twice what it holds at most, plus the part of the head chunk already written. */
static struct actor__outbuf *outbuf_new(struct actor__net *net, size_t len, size_t queued)
{
	const size_t hdr = sizeof(struct actor__outbuf);
	size_t bytes = OUTBUF_SMALL;
	while (bytes < OUTBUF_LARGE && bytes - hdr < queued)
		bytes <<= 1;
	if (bytes - hdr < len)
		bytes = hdr + len;
	struct actor__outbuf *b;
	if (bytes == OUTBUF_SMALL && net->spare != NULL) {
		b = net->spare;
		net->spare = b->next;
		net->nspare--;
		return b;
	}
	b = actor__alloc(bytes);
	if (b != NULL)
		b->cap = (uint32_t)(bytes - hdr);
	return b;
}

/* The file segment `b` holds, copied out (its bytes are not aligned for the struct); false if
 * `b` holds bytes to send. */
static bool seg_read(const struct actor__outbuf *b, struct actor__outseg *seg)
{
	if (b->cap != 0)
		return false;
	memcpy(seg, b->data, sizeof(*seg));
	return true;
}

static void outbuf_free(struct actor__net *net, struct actor__outbuf *b)
{
	if (b->cap == 0) {
		actor__free(b, sizeof(*b) + sizeof(struct actor__outseg));
		return;
	}
	if (sizeof(*b) + b->cap == OUTBUF_SMALL && net->nspare < OUTBUF_SPARE_MAX) {
		b->next = net->spare;
		net->spare = b;
		net->nspare++;
		return;
	}
	actor__free(b, sizeof(*b) + b->cap);
}

void actor__net_spare_free(struct actor__net *net)
{
	while (net->spare != NULL) {
		struct actor__outbuf *b = net->spare;
		net->spare = b->next;
		actor__free(b, sizeof(*b) + b->cap);
	}
	net->nspare = 0;
}

static int conn_out_iov(struct actor__watcher *wt, struct iovec *iov, int max)
{
	struct actor__conn *c = conn_of_watcher(wt);
	int n = 0;
	for (struct actor__outbuf *b = c->out_head; b != NULL && n < max && b->cap != 0;
	     b = b->next) {
		iov[n].iov_base = b->data + b->off;
		iov[n].iov_len = b->len - b->off;
		n++;
	}
	return n;
}

/* Drops `n` written bytes from the head of the queue. */
static void consume(struct actor__conn *c, size_t n)
{
	c->queued -= n;
	while (n > 0) {
		struct actor__outbuf *b = c->out_head;
		size_t take = b->len - b->off < n ? b->len - b->off : n;
		b->off += (uint32_t)take;
		n -= take;
		if (b->off == b->len) {
			c->out_head = b->next;
			if (c->out_head == NULL)
				c->out_tail = NULL;
			outbuf_free(c->net, b);
		}
	}
}

static void output_progress(struct actor__conn *c);

static void conn_on_written(struct actor__watcher *wt, ssize_t n)
{
	struct actor__conn *c = conn_of_watcher(wt);
	if (n < 0) {
		if (c->state == CONN_CLOSING)
			actor__conn_release(c);
		else
			actor__conn_fail(c, (int)n);
		return;
	}
	consume(c, (size_t)n);
	output_progress(c);
}

/* Some output was written: what follows when the queue has emptied. */
static void output_progress(struct actor__conn *c)
{
	if (c->out_head != NULL)
		return; /* the backend goes on writing */
	if (c->state == CONN_CLOSING && tls_closing_handshake(c)) {
		actor__conn_update(c); /* the handshake's flight is out: on to the peer's answer */
		return;
	}
	if (c->state == CONN_CLOSING) {
		close_output_done(c);
		return;
	}
	actor__conn_update(c);
	shut_when_written(c);
	if (c->over_high && c->queued <= c->low) {
		c->over_high = false;
		actor__conn_event(c, ACTOR_MSG_TCP_DRAINED, 0);
	}
}

/* The most one sendfile(2) call is asked for: a turn of the worker stays short however large
 * the file (the socket buffer takes less than this anyway). */
#define SEG_STEP (1u << 20)

/* A socket's error ends a segment as the connection's end does (-EPIPE); others (EIO, ...) are
 * the file's. */
static int64_t seg_error(int err)
{
	switch (err) {
	case EPIPE:
	case ECONNRESET:
	case ECONNABORTED:
	case ENOTCONN:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
		return -EPIPE;
	default:
		return -err;
	}
}

/* sendfile(2) has no MSG_NOSIGNAL: on a connection the peer has closed it raises SIGPIPE in the
 * calling thread, which kills a program that has not ignored the signal (actor.h promises none).
 * So the signal is blocked around the call and, if the call raised it, taken back before it is
 * unblocked. Where the program itself blocks SIGPIPE, a pending one is left to it, as its own
 * writes would leave it: it may have been pending before. */
static ssize_t sendfile_quiet(int sock, int fd, off_t *pos, size_t len)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t n;
	do
		n = sendfile(sock, fd, pos, len);
	while (n < 0 && errno == EINTR);
	int err = errno;
	/* Taken back whatever the call returned: one that sent part of the range before the
	 * peer's reset returns that count, and has raised SIGPIPE all the same. */
	sigset_t pending;
	if (!sigismember(&old, SIGPIPE) && sigpending(&pending) == 0 &&
	    sigismember(&pending, SIGPIPE)) {
		static const struct timespec at_once = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &at_once) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

/* The head segment `b` leaves the queue; its queuer hears `res`. */
static void seg_end(struct actor__conn *c, struct actor__outbuf *b, int64_t res)
{
	struct actor__outseg seg;
	seg_read(b, &seg);
	c->out_head = b->next;
	if (c->out_head == NULL)
		c->out_tail = NULL;
	outbuf_free(c->net, b);
	seg.done(seg.arg, res);
}

/* out_direct: the head is a file segment; sends what the socket takes of it. A file that ends
 * before the segment does (it shrank) fails the connection with -ENODATA: the peer would
 * otherwise read what follows in the segment's place. A socket's error fails it with that
 * error, as a write's would. */
static ssize_t conn_out_direct(struct actor__watcher *wt)
{
	struct actor__conn *c = conn_of_watcher(wt);
	struct actor__outbuf *b = c->out_head;
	struct actor__outseg seg;
	if (b == NULL || !seg_read(b, &seg))
		return 0;
	size_t want = b->len - b->off < SEG_STEP ? b->len - b->off : SEG_STEP;
	off_t pos = (off_t)(seg.offset + b->off);
	ssize_t n = sendfile_quiet(wt->fd, seg.fd, &pos, want);
	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (n <= 0) {
		int err = n == 0 ? ENODATA : errno;
		seg_end(c, b, seg_error(err));
		return -err; /* the backend fails the connection with it */
	}
	b->off += (uint32_t)n;
	if (b->off == b->len) {
		seg_end(c, b, b->len);
		output_progress(c);
	}
	return n;
}

static void queue_append(struct actor__conn *c, struct actor__outbuf *b)
{
	b->next = NULL;
	if (c->out_tail != NULL)
		c->out_tail->next = b;
	else
		c->out_head = b;
	c->out_tail = b;
}

int actor__conn_queue_seg(struct actor__conn *c, const struct actor__outseg *seg, uint32_t len)
{
	struct actor__outbuf *b = actor__alloc(sizeof(*b) + sizeof(*seg));
	if (b == NULL)
		return -ENOMEM;
	b->len = len;
	b->off = 0;
	b->cap = 0;
	memcpy(b->data, seg, sizeof(*seg));
	queue_append(c, b); /* not in `queued`: a segment holds no memory (actor.h) */
	if (!(c->wt.want & WATCH_WRITE))
		actor__conn_update(c);
	return 0;
}

int actor__conn_queue(struct actor__conn *c, const void *data, size_t len)
{
	struct actor__outbuf *t = c->out_tail;
	if (t != NULL && t->cap != 0 && t->cap - t->len >= len) {
		memcpy(t->data + t->len, data, len);
		t->len += (uint32_t)len;
	} else {
		struct actor__outbuf *b = outbuf_new(c->net, len, c->queued);
		if (b == NULL)
			return -ENOMEM;
		b->next = NULL;
		b->len = (uint32_t)len;
		b->off = 0;
		memcpy(b->data, data, len);
		if (t != NULL)
			t->next = b;
		else
			c->out_head = b;
		c->out_tail = b;
	}
	c->queued += len;
	if (!(c->wt.want & WATCH_WRITE))
		actor__conn_update(c);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * TLS: a session (tls.h) between the reactor's encrypted bytes and the owner's plaintext
 *
 * Input: what the reactor reads is fed to the session whatever the state of reading (it is the
 * stash of a TLS connection), and decrypted while reading is wanted (tls_pump: on each read,
 * and on resume through stash_deliver). The end of the stream waits behind what the session
 * holds, as behind a stash. Output: the owner's writes are encrypted at once (before the
 * handshake ends they wait in tls_pend), and the session's output queued as it is made.
 */

/* Queues what the session has made to send. */
static void tls_flush(struct actor__conn *c)
{
	const void *bytes;
	size_t n = actor__tls_output(c->tls, &bytes);
	if (n == 0)
		return;
	int rc = c->state == CONN_FAILED ? 0 : actor__conn_queue(c, bytes, n);
	actor__tls_output_taken(c->tls);
	if (rc < 0)
		actor__conn_fail(c, rc);
}

/* The handshake failed, or the peer's end came before it was done: an outgoing connection
 * reports it in CONNECTED, an accepted one in CLOSED. */
static void tls_fail(struct actor__conn *c, int err)
{
	if (c->tls_connecting && c->state == CONN_OPEN)
		c->state = CONN_CONNECTING;
	actor__conn_fail(c, err);
}

/* The handshake is done: the plaintext written while it went on is encrypted (it counts in
 * `queued` from now on as the encrypted bytes it became, once tls_flush queues them). */
static int tls_write_pending(struct actor__conn *c)
{
	if (c->tls_pend_len == 0)
		return 0;
	c->queued -= c->tls_pend_len;
	int rc = actor__tls_write(c->tls, c->tls_pend, c->tls_pend_len);
	free(c->tls_pend);
	c->tls_pend = NULL;
	c->tls_pend_len = 0;
	return rc;
}

/* The handshake is done: the plaintext written meanwhile goes out, and an outgoing
 * connection's owner hears CONNECTED. False if the connection ended. */
static bool tls_established(struct actor__conn *c)
{
	int rc = tls_write_pending(c);
	if (rc < 0) {
		actor__conn_fail(c, rc);
		return false;
	}
	if (c->wr_shut)
		actor__tls_close_notify(c->tls);
	tls_flush(c);
	if (c->tls_connecting) {
		c->tls_connecting = false;
		c->read_held = true; /* until the owner has CONNECTED, as for plain TCP */
		if (actor__conn_event(c, ACTOR_MSG_TCP_CONNECTED, 0) < 0) {
			actor__conn_unlist(c);
			actor__conn_release(c);
			return false;
		}
	}
	actor__conn_update(c);
	return c->state == CONN_OPEN;
}

/* Moves the handshake on, then decrypts for the owner while reading is wanted. True once it
 * has taken all there is (what is left is part of a record: more must come), false if it
 * stopped for a pause, a read limit or the owner not having its connection yet. */
static bool tls_pump(struct actor__conn *c)
{
	if (c->state != CONN_OPEN || c->rd_ended)
		return true;
	if (!actor__tls_established(c->tls)) {
		int r = actor__tls_handshake(c->tls);
		tls_flush(c);
		if (r == TLS_WANT)
			return true;
		if (r < 0) {
			tls_fail(c, r);
			return true;
		}
		if (!tls_established(c))
			return true;
	}
	unsigned char buf[16384]; /* a record's plaintext at most */
	while (c->state == CONN_OPEN && !c->rd_ended) {
		if (c->read_held || conn_paused(c))
			return false;
		size_t got = 0;
		int r = actor__tls_read(c->tls, buf, sizeof(buf), &got);
		if (r == TLS_OK) {
			input(c, buf, got);
			continue;
		}
		tls_flush(c); /* what reading made: an answer to a key update, say */
		if (r == TLS_WANT)
			return true;
		if (r == TLS_CLOSED) { /* close_notify: the peer's end, held or not */
			c->end_held = false;
			c->rd_eof = false;
			read_end(c, 0);
			return true;
		}
		actor__conn_fail(c, r);
		return true;
	}
	return true;
}

static void tls_on_read(struct actor__conn *c, const void *data, ssize_t n)
{
	if (n > 0) {
		if (actor__tls_feed(c->tls, data, (size_t)n) < 0) {
			actor__conn_fail(c, -ENOMEM); /* the stream would have a hole */
			return;
		}
		tls_pump(c);
		return;
	}
	if (!actor__tls_established(c->tls)) {
		tls_fail(c, n < 0 ? (int)n : -EPROTO); /* ended before the handshake did */
		return;
	}
	/* The end comes after what the session holds; without close_notify (which ends input in
	 * tls_pump) it may have cut the stream short. */
	c->end_held = true;
	c->end_res = n < 0 ? (int)n : -ECONNABORTED;
	c->rd_eof = true;
	stash_deliver(c);
}

/* A close before the handshake ended, with something written for the peer (a refusal, say):
 * the handshake goes on in CLOSING, then the writes and close_notify go out, then the close
 * ends as any other (close_output_done). */
static bool tls_closing_handshake(const struct actor__conn *c)
{
	return c->tls != NULL && c->tls_pend_len > 0 && !actor__tls_established(c->tls);
}

static void tls_closing_read(struct actor__conn *c, const void *data, ssize_t n)
{
	if (n <= 0 || actor__tls_feed(c->tls, data, (size_t)n) < 0) {
		actor__conn_release(c); /* the peer left before the handshake ended */
		return;
	}
	int r = actor__tls_handshake(c->tls);
	tls_flush(c);
	if (r == TLS_WANT)
		return;
	if (r < 0) {
		actor__conn_release(c);
		return;
	}
	if (tls_write_pending(c) < 0) {
		actor__conn_release(c);
		return;
	}
	actor__tls_close_notify(c->tls);
	tls_flush(c);
	if (c->out_head == NULL)
		close_output_done(c);
	else
		actor__conn_update(c);
}

int actor__conn_write(struct actor__conn *c, const void *data, size_t len)
{
	if (c->tls == NULL)
		return actor__conn_queue(c, data, len);
	if (!actor__tls_established(c->tls)) {
		unsigned char *p = realloc(c->tls_pend, c->tls_pend_len + len);
		if (p == NULL)
			return -ENOMEM;
		memcpy(p + c->tls_pend_len, data, len);
		c->tls_pend = p;
		c->tls_pend_len += len;
		c->queued += len;
		return 0;
	}
	int rc = actor__tls_write(c->tls, data, len);
	if (rc < 0)
		return rc;
	tls_flush(c);
	return 0;
}

void actor__conn_output_end(struct actor__conn *c)
{
	if (c->tls != NULL && actor__tls_established(c->tls)) {
		actor__tls_close_notify(c->tls);
		tls_flush(c);
	}
}

/* An asked-for half-close, once the output is all written: shutdown(SHUT_WR). Not while a TLS
 * handshake goes on: its next flight, then what was written and close_notify, are still to
 * come (tls_established), and output_progress looks again when they are written. */
static void shut_when_written(struct actor__conn *c)
{
	if (c->wr_shut && !c->wr_shut_done && c->out_head == NULL &&
	    (c->tls == NULL || actor__tls_established(c->tls))) {
		c->wr_shut_done = true;
		shutdown(c->wt.fd, SHUT_WR);
	}
}

void actor__conn_shutdown(struct actor__conn *c)
{
	if (!c->wr_shut)
		actor__conn_output_end(c);
	c->wr_shut = true;
	shut_when_written(c);
}

void actor__conn_input_resume(struct actor__net *net, actor_conn_t conn)
{
	struct actor__conn *c = actor__conn_of(net, conn);
	if (c != NULL && c->tls != NULL && c->state == CONN_OPEN)
		stash_deliver(c);
}

/* ---------------------------------------------------------------------------------------------
 * Connecting
 */

static bool dial_again(struct actor__conn *c, int err);

static void conn_on_connect(struct actor__watcher *wt, int err)
{
	struct actor__conn *c = conn_of_watcher(wt);
	if (c->state != CONN_CONNECTING)
		return;
	if (err != 0) {
		if (!dial_again(c, err))
			actor__conn_fail(c, err); /* CONNECTED with the error, then freed */
		return;
	}
	free(c->dial); /* connecting by name: the addresses left are not needed */
	c->dial = NULL;
	c->state = CONN_OPEN;
	if (c->tls != NULL) { /* CONNECTED once the handshake is done (tls_established) */
		c->tls_connecting = true;
		tls_pump(c);
		if (c->state == CONN_OPEN)
			actor__conn_update(c);
		return;
	}
	c->read_held = true; /* until the owner has CONNECTED: it may set framing first */
	if (actor__conn_event(c, ACTOR_MSG_TCP_CONNECTED, 0) < 0) {
		actor__conn_unlist(c);
		actor__conn_release(c);
		return;
	}
	actor__conn_update(c);
}

/* `fd` connecting (or connected, `done`) for `a`: the connection that reports it. */
int actor__conn_connect_fd(struct actor__net *net, struct actor *a, int fd, bool done,
                           struct actor__tls_session *tls, actor_conn_t *out)
{
	struct actor__conn *c = actor__conn_new(net, fd, a->ref, CONN_CONNECTING);
	if (c == NULL)
		return -ENOMEM;
	c->tls = tls;
	actor__svc_hold(a, SVC_BIT_NET);
	*out = actor__conn_handle(c);
	if (done)
		conn_on_connect(&c->wt, 0);
	else
		actor__conn_update(c);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Connecting by name
 *
 * The connection starts RESOLVING, with no socket, while the lookup service looks the name up
 * (lookup.h); its answer comes to conn_resolved. The addresses are then tried in order, each
 * on a socket of its own: one whose connect() fails at once is skipped; one whose connect
 * fails later has its watcher closed (RESOLVING again), and once the reactor has let go of it
 * (conn_on_closed) the next is tried with the same watcher. Closing or aborting it meanwhile,
 * or its owner stopping, cancels the lookup (conn_free).
 */

struct actor__dial {
	uint32_t next, count; /* the next address to try, of `count` */
	int last_err;         /* the last address's failure */
	struct sockaddr_storage addrs[];
};

/* Tries the addresses left until a connect() is under way; CONNECTED with the last failure if
 * none is left. */
static void dial_next(struct actor__conn *c)
{
	struct actor__dial *d = c->dial;
	while (d->next < d->count) {
		const struct sockaddr_storage *ss = &d->addrs[d->next++];
		socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                          : sizeof(struct sockaddr_in);
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			d->last_err = -errno;
			continue;
		}
		int one = 1; /* as actor__set_nodelay (listen.c, which depends on this file) */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		int r = connect(fd, (const struct sockaddr *)ss, len);
		if (r < 0 && errno != EINPROGRESS) {
			d->last_err = -errno;
			close(fd);
			continue;
		}
		actor__watch_open(c->w->reactor, &c->wt, fd, &conn_ops);
		c->state = CONN_CONNECTING;
		if (r == 0)
			conn_on_connect(&c->wt, 0);
		else
			actor__conn_update(c);
		return;
	}
	actor__conn_fail(c, d->last_err);
}

/* A connect() by name failed with `err`: true if another address is left to try (once the
 * reactor has let go of this socket). */
static bool dial_again(struct actor__conn *c, int err)
{
	if (c->dial == NULL || c->dial->next == c->dial->count)
		return false;
	c->dial->last_err = err;
	c->state = CONN_RESOLVING;
	actor__watch_close(c->w->reactor, &c->wt);
	return true;
}

/* The lookup's answer (actor__lookup_fn). */
static void conn_resolved(struct actor_worker *w, const actor_lookup_done_t *res)
{
	struct actor__net *net = actor__net_of(w);
	struct actor__conn *c = net != NULL ? actor__conn_of(net, (actor_conn_t){res->tag}) : NULL;
	if (c == NULL || c->state != CONN_RESOLVING || c->lookup != res->lookup.id)
		return; /* closed meanwhile, which cancelled the lookup: cannot happen */
	c->lookup = 0;
	if (res->error != 0) {
		/* A name with no address: as the synchronous resolve said it. */
		actor__conn_fail(c, res->error == -ENOENT ? -EADDRNOTAVAIL : res->error);
		return;
	}
	c->dial = malloc(sizeof(*c->dial) + res->count * sizeof(res->addrs[0]));
	if (c->dial == NULL) {
		actor__conn_fail(c, -ENOMEM);
		return;
	}
	c->dial->next = 0;
	c->dial->count = res->count;
	c->dial->last_err = -EADDRNOTAVAIL;
	memcpy(c->dial->addrs, res->addrs, res->count * sizeof(res->addrs[0]));
	dial_next(c);
}

int actor__conn_connect_name(struct actor__net *net, struct actor *a, const char *host,
                             uint16_t port, struct actor__tls_session *tls, actor_conn_t *out)
{
	struct actor__conn *c = actor__conn_new(net, -1, a->ref, CONN_RESOLVING);
	if (c == NULL)
		return -ENOMEM;
	actor_conn_t h = actor__conn_handle(c);
	int rc = actor__lookup_start(net->w, host, port, h.id, conn_resolved, &c->lookup);
	if (rc < 0) {
		actor__conn_unlist(c); /* the caller still owns `tls` */
		actor__conn_release(c);
		return rc;
	}
	c->tls = tls;
	actor__svc_hold(a, SVC_BIT_NET);
	*out = h;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Closing
 */

static void conn_free(struct actor__conn *c);

/* Hands the connection to the reactor, to be freed once nothing there refers to it. */
void actor__conn_release(struct actor__conn *c)
{
	struct actor__net *net = c->net;
	if (c->closing_pos != 0) {
		struct actor__conn *last = net->closing[--net->nclosing];
		net->closing[c->closing_pos - 1] = last;
		last->closing_pos = c->closing_pos;
		c->closing_pos = 0;
	}
	c->state = CONN_CLOSING;
	if (c->wt.fd < 0) {
		conn_free(c); /* connecting by name, no socket yet: the reactor never knew it */
		return;
	}
	actor__watch_close(c->w->reactor, &c->wt);
}

static void conn_on_closed(struct actor__watcher *wt)
{
	struct actor__conn *c = conn_of_watcher(wt);
	close(c->wt.fd);
	if (c->state == CONN_RESOLVING) { /* connecting by name: on to the next address */
		c->wt.fd = -1;
		dial_next(c);
		return;
	}
	conn_free(c);
}

static void conn_free(struct actor__conn *c)
{
	struct actor_worker *w = c->w;
	if (c->lookup != 0)
		actor__lookup_cancel(w, c->lookup);
	free(c->dial);
	struct actor__outbuf *b = c->out_head;
	while (b != NULL) {
		struct actor__outbuf *next = b->next;
		struct actor__outseg seg;
		bool is_seg = seg_read(b, &seg);
		outbuf_free(c->net, b);
		if (is_seg)
			seg.done(seg.arg, -EPIPE);
		b = next;
	}
	free(c->stash);
	actor__framer_free(c->framer);
	actor__tls_session_free(c->tls);
	free(c->tls_pend);
	actor__stat_add(&w->st.conns, (uint64_t)-1);
	actor__free(c, sizeof(*c));
}

/* Whether a close may end: the peer's kernel has acknowledged all of the output, or the
 * connection broke (a reset or a timeout: nothing more will be acknowledged, and the count
 * stays where it was). SIOCOUTQ counts what the peer has not acknowledged, our FIN included
 * once it is sent; the FIN is not output, and the peer's kernel may acknowledge it late (Linux
 * delays that until its own side answers or closes). */
static bool close_acked(struct actor__conn *c)
{
	int unacked = 0;
	if (ioctl(c->wt.fd, SIOCOUTQ, &unacked) < 0 || unacked <= (c->wr_shut_done ? 1 : 0))
		return true;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	return getsockopt(c->wt.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	       ti.tcpi_state == TCP_CLOSE;
}

void actor__net_note_tick(struct actor__net *net, uint64_t when)
{
	if (net->next_tick_ns == 0 || when < net->next_tick_ns)
		net->next_tick_ns = when;
}

/* A close has handed all its output to the kernel. The kernel still holds what the peer has
 * not acknowledged, and close() would now lose it to anything the peer sends before it has
 * read everything: input unread at close(), or arriving after it, makes the kernel reset the
 * connection and drop what it still holds (megabytes: the socket's send buffer). Once the peer
 * has acknowledged everything, a reset costs it nothing (Linux hands the reader what arrived
 * before reporting it). So: FIN now, as close() would send it; read on and discard; close
 * when the peer has it all (actor__conn_tick looks), or when the linger runs out. */
static void close_output_done(struct actor__conn *c)
{
	if (!c->wr_shut_done) {
		c->wr_shut_done = true;
		shutdown(c->wt.fd, SHUT_WR);
	}
	if (close_acked(c)) {
		actor__conn_release(c);
		return;
	}
	actor__conn_update(c);
	c->ack_step_ns = ACK_POLL_FIRST_NS;
	c->ack_check_ns = actor__now_ns() + c->ack_step_ns;
	actor__net_note_tick(c->net, c->ack_check_ns);
}

/* Owner's close: the handle goes stale now; queued output is still written, and acknowledged,
 * for a while (close_output_done). Meanwhile the connection reads on and discards what arrives
 * (conn_on_read delivers nothing once it is CLOSING): input left unread when the socket is
 * closed makes the kernel reset the connection and drop the output the peer has not received
 * yet, and a peer that reads only once its own writes are through (another lingering close,
 * say) would wait out the linger. */
void actor__conn_close_graceful(struct actor__conn *c)
{
	actor__conn_unlist(c);
	if (c->state == CONN_OPEN)
		actor__conn_output_end(c);
	if (c->state != CONN_OPEN ||
	    (c->out_head == NULL && !tls_closing_handshake(c) && close_acked(c))) {
		actor__conn_release(c);
		return;
	}
	struct actor__net *net = c->net;
	if (net->nclosing == net->closing_cap) {
		uint32_t cap = net->closing_cap ? net->closing_cap * 2 : 16;
		struct actor__conn **p = realloc(net->closing, cap * sizeof(*p));
		if (p == NULL) {
			actor__conn_release(c); /* cannot track a deadline: close now, unflushed */
			return;
		}
		net->closing = p;
		net->closing_cap = cap;
	}
	c->state = CONN_CLOSING;
	/* Nobody to hold reading back now, and nobody to deliver the stash or an end to. */
	c->owner_paused = c->throttled = false;
	stash_free(c);
	c->end_held = false;
	c->linger_deadline_ns = actor__now_ns() + (uint64_t)ACTOR_TCP_LINGER_MS * 1000000u;
	net->closing[net->nclosing++] = c;
	c->closing_pos = net->nclosing;
	actor__net_note_tick(net, c->linger_deadline_ns);
	if (c->out_head == NULL && !tls_closing_handshake(c))
		close_output_done(c);
	else
		actor__conn_update(c);
}

void actor__conn_abort(struct actor__conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	/* A zero linger makes close() send RST and drop what is queued. */
	setsockopt(c->wt.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	actor__conn_unlist(c);
	actor__conn_release(c);
}

/* A close ran out of time (its linger, or the shutdown's drain). Still writing: reset, and
 * count the output dropped. Waiting for the peer's acknowledgement: close() as before, and the
 * kernel goes on sending what it holds (counted too: the peer may not get all of it). */
void actor__conn_close_ran_out(struct actor__conn *c)
{
	if (c->out_head == NULL) {
		actor__stat_add(&c->w->st.closes_unacked, 1);
		actor__conn_release(c);
		return;
	}
	actor__stat_add(&c->w->st.closes_reset, 1);
	actor__conn_abort(c);
}

/* Ends closes whose output the peer has acknowledged and gives up on closes whose linger ran
 * out; returns the next moment to look (0: none). */
uint64_t actor__conn_tick(struct actor__net *net, uint64_t now)
{
	uint64_t next = 0;
	for (uint32_t i = 0; i < net->nclosing;) {
		struct actor__conn *c = net->closing[i];
		if (c->linger_deadline_ns <= now) {
			actor__conn_close_ran_out(c); /* takes it off the list: look at i again */
			continue;
		}
		if (c->ack_check_ns != 0 && c->ack_check_ns <= now) {
			if (close_acked(c)) {
				actor__conn_release(c); /* the same */
				continue;
			}
			if (c->ack_step_ns < ACK_POLL_MAX_NS)
				c->ack_step_ns *= 2;
			c->ack_check_ns = now + c->ack_step_ns;
		}
		if (next == 0 || c->linger_deadline_ns < next)
			next = c->linger_deadline_ns;
		if (c->ack_check_ns != 0 && c->ack_check_ns < next)
			next = c->ack_check_ns;
		i++;
	}
	return next;
}

static const struct actor__watch_ops conn_ops = {
    .on_read = conn_on_read,
    .out_iov = conn_out_iov,
    .out_direct = conn_out_direct,
    .on_written = conn_on_written,
    .on_connect = conn_on_connect,
    .on_closed = conn_on_closed,
};
