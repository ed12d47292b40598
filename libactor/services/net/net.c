/* net.c: TCP as messages: listeners, connections, output queues and flow control, on top of a
 * worker's reactor backend.
 *
 * Ownership (the rule everything here follows): a connection lives in one worker's table and
 * only that worker's thread touches it. Its owner is an actor living on the same worker, except
 * a freshly accepted connection, which is owned by its listener's owner (maybe elsewhere) and is
 * not read until handed off. A cross-worker hand-off travels as a MSG_TCP_ADOPT message to the
 * target, which lives on the connection's worker, so the claim also happens on that worker.
 *
 * Input flow control: `unhandled` counts the bytes of the DATA messages sent to the owner whose
 * behaviour calls have not returned yet. A DATA message carries a mark (actor_tcp_data_t's
 * reserved_ field) while its bytes are counted; the first handling of the message (actor.c:
 * the behaviour call returning, or a dead letter) takes the mark before anything else can see
 * the message and then subtracts, on this worker, since the owner lives here. A message kept
 * and handled again is not counted twice: its mark is gone. Above read_limit the connection is
 * `throttled` (reads stop, as for a pause); at half of it reading resumes.
 *
 * Lifetime: a connection leaves the table (its handle goes stale) when the owner closes or
 * aborts it, when its owner stops, or, after it failed, once the CLOSED (or CONNECTED) message
 * carrying the error has been delivered or dead-lettered; until then its handle stays valid and
 * writes say -EPIPE. It is freed when the backend releases it (actor__net_conn_released): for a
 * close, once the peer's kernel has acknowledged all the output, or the linger ran out (see
 * conn_close_graceful).
 */
#include "config.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/internal.h"
#include "reactor/reactor.h"

#define OUTBUF_SMALL 4096          /* bytes of an output chunk while its queue is short */
#define OUTBUF_LARGE (64u << 10)   /* the most a chunk grows to for a long queue */
#define OUTBUF_SPARE_MAX 64        /* freed OUTBUF_SMALL chunks a worker keeps: 256 KiB */
#define BACKOFF_FIRST_NS 10000000u /* first accept back-off after EMFILE: 10 ms */
#define BACKOFF_MAX_NS 1000000000u /* doubling up to 1 s */
#define DATA_COUNTED 1u            /* actor_tcp_data_t.reserved_: counted in `unhandled` */
/* A close whose output is all in the kernel looks whether the peer has acknowledged it 1 ms
 * later, then at doubling intervals up to 64 ms. A peer that reads at once has acknowledged by
 * the first look (on loopback within microseconds), a delayed acknowledgement (Linux: 40 to
 * 200 ms) is seen a few looks later, and a peer slow to read costs at most about 16 looks a
 * second until the linger ends the wait. */
#define ACK_POLL_FIRST_NS 1000000u
#define ACK_POLL_MAX_NS 64000000u

struct actor__net {
	struct actor__table conns;   /* this worker's connections */
	struct actor__table lgroups; /* listeners opened by actors living here */
	struct actor__conn *dirty;   /* output queued, waiting for this turn's flush */
	struct actor__lsock *lsocks; /* listening sockets on this worker (open ones) */
	unsigned nlsocks;
	struct actor__conn **closing; /* closed by their owners, still flushing, with a deadline */
	uint32_t nclosing, closing_cap;
	uint64_t next_tick_ns;
	/* Output chunks of OUTBUF_SMALL bytes, written and kept for the next write (linked through
	 * next). A request/response connection takes one and gives one back every round trip;
	 * from jemalloc that pair cost about 1,000 instructions (its thread cache for this size
	 * refilled and flushed through the arena, behind a lock), from here a dozen. */
	struct actor__outbuf *spare;
	uint32_t nspare;
};

/* A MSG_TCP_ADOPT payload; the same size as the actor_tcp_event_t it is turned into. */
struct actor__adopt {
	actor_conn_t conn;
	actor_ref_t from;
};
_Static_assert(sizeof(struct actor__adopt) == sizeof(actor_tcp_event_t), "adopt is rewritten");

struct conn_cmd {
	struct actor__cmd cmd;
	uint64_t conn;
	actor_ref_t owner;
};

static void conn_release(struct actor__conn *c);
static void conn_fail(struct actor__conn *c, int err);
static bool close_output_done(struct actor__conn *c);

/* ---------------------------------------------------------------------------------------------
 * Per-worker state
 */

int actor__net_init(struct actor_worker *w)
{
	w->net = calloc(1, sizeof(*w->net));
	return w->net ? 0 : -ENOMEM;
}

bool actor__net_active(const struct actor_worker *w)
{
	return w->net != NULL && (w->net->conns.used > 0 || w->net->nlsocks > 0 ||
	                          w->net->nclosing > 0 || w->net->dirty != NULL);
}

static struct actor__conn *conn_of(struct actor_worker *w, actor_conn_t h)
{
	if (actor__handle_worker(h.id) != w->index)
		return NULL;
	return actor__table_get(&w->net->conns, h.id);
}

static actor_conn_t handle_of(const struct actor__conn *c)
{
	return (actor_conn_t){((uint64_t)c->w->index << 56) | ((uint64_t)c->gen << 32) | c->idx};
}

static int send_event(struct actor__conn *c, uint32_t type, int err)
{
	actor_tcp_event_t ev = {.conn = handle_of(c), .error = err, .worker = c->w->index};
	return actor__send_internal(c->w->sys, c->owner, ACTOR_REF_NONE, type, &ev, sizeof(ev));
}

/* Takes the connection out of the table: its handle is stale from now on. */
static void conn_unlist(struct actor__conn *c)
{
	if (c->idx != 0) {
		actor__table_del(&c->w->net->conns, c->idx);
		c->idx = 0;
	}
}

static void start_reading(struct actor__conn *c)
{
	/* Even while c->reading: a pause may still be cancelling the read (reactor.h). */
	if (c->state == CONN_OPEN && !actor__conn_paused(c) && !c->rd_eof) {
		int rc = c->w->rops->conn_read(c->w->reactor, c);
		if (rc < 0)
			conn_fail(c, rc);
	}
}

/* Brings reading in line with owner_paused and throttled (see actor__conn_paused). */
static void update_reading(struct actor__conn *c)
{
	if (!actor__conn_paused(c))
		start_reading(c);
	else if (c->reading)
		c->w->rops->conn_pause(c->w->reactor, c);
}

static void set_throttled(struct actor__conn *c, bool on)
{
	if (on == c->throttled)
		return;
	c->throttled = on;
	if (on)
		actor__stat_add(&c->w->st.read_throttles, 1);
	update_reading(c);
}

/* ---------------------------------------------------------------------------------------------
 * Creating connections
 */

static void set_nodelay(int fd)
{
	int one = 1;
	/* Request/response traffic wants no Nagle delay; the output queue batches writes. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct actor__conn *conn_new(struct actor_worker *w, int fd, actor_ref_t owner, int state)
{
	struct actor__conn *c = actor__zalloc(sizeof(*c));
	if (c == NULL)
		return NULL;
	int64_t idx = actor__table_put(&w->net->conns, c);
	if (idx < 0) {
		actor__free(c, sizeof(*c));
		return NULL;
	}
	c->fd = fd;
	c->idx = (uint32_t)idx;
	c->gen = w->net->conns.gen[idx] & TABLE_GEN_MASK;
	c->w = w;
	c->owner = owner;
	c->state = (uint8_t)state;
	c->high = ACTOR_TCP_HIGH_WATER;
	c->low = ACTOR_TCP_LOW_WATER;
	c->read_limit = ACTOR_TCP_READ_LIMIT;
	actor__stat_add(&w->st.conns, 1);
	return c;
}

void actor__net_on_accept(struct actor__lsock *ls, int fd, const struct sockaddr *peer,
                          socklen_t peer_len)
{
	struct actor_worker *w = ls->w;
	ls->backoff_ns = 0;
	set_nodelay(fd);
	struct actor__conn *c = conn_new(w, fd, ls->group->owner, CONN_PENDING);
	if (c == NULL) {
		close(fd);
		return;
	}
	actor__stat_add(&w->st.accepts, 1);
	actor_tcp_accepted_t acc = {
	    .conn = handle_of(c),
	    .listener = {ls->group->handle},
	    .worker = w->index,
	};
	struct sockaddr_storage ss;
	if (peer == NULL) { /* a completion-based accept does not report the address */
		socklen_t sl = sizeof(ss);
		peer_len = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 ? sl : 0;
		peer = (struct sockaddr *)&ss;
	}
	if (peer_len > 0 && peer_len <= sizeof(acc.peer)) {
		memcpy(acc.peer, peer, peer_len);
		acc.peer_len = peer_len;
		memcpy(&c->peer, peer, peer_len);
		c->peer_len = peer_len;
	}
	if (actor__send_internal(w->sys, c->owner, ACTOR_REF_NONE, ACTOR_MSG_TCP_ACCEPTED, &acc,
	                         sizeof(acc)) < 0) {
		conn_unlist(c); /* the listener's owner is gone */
		conn_release(c);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 */

void actor__net_on_data(struct actor__conn *c, const void *data, size_t len)
{
	if (c->state != CONN_OPEN || len == 0)
		return;
	actor_msg_t *m;
	if (actor_msg_alloc(sizeof(*m) + sizeof(actor_tcp_data_t) + len, 0, &m) < 0) {
		conn_fail(c, -ENOMEM);
		return;
	}
	actor_tcp_data_t *d = actor_msg_data(m);
	d->conn = handle_of(c);
	d->len = (uint32_t)len;
	d->reserved_ = DATA_COUNTED;
	memcpy(d + 1, data, len);
	m->type = ACTOR_MSG_TCP_DATA;
	if (actor__send_internal_msg(c->w->sys, c->owner, m) < 0) {
		actor_msg_free(m);
		conn_fail(c, -ESRCH); /* the owner is gone: nobody will close it */
		return;
	}
	c->unhandled += len;
	if (c->read_limit != 0 && c->unhandled > c->read_limit)
		set_throttled(c, true);
}

uint32_t actor__net_take_count(actor_msg_t *m, actor_conn_t *conn)
{
	actor_tcp_data_t d;
	memcpy(&d, actor_msg_data(m), sizeof(d)); /* the payload need not be aligned */
	if (d.reserved_ != DATA_COUNTED)
		return 0;
	d.reserved_ = 0;
	memcpy(actor_msg_data(m), &d, sizeof(d));
	*conn = d.conn;
	return d.len;
}

void actor__net_handled(struct actor_worker *w, actor_conn_t conn, uint32_t len)
{
	struct actor__conn *c = w->net != NULL ? conn_of(w, conn) : NULL;
	if (c == NULL)
		return; /* gone since: nothing to resume */
	/* Never below zero, even for a message so old that its handle's generation came round
	 * again (2^24 reuses of the slot). */
	c->unhandled -= len < c->unhandled ? len : c->unhandled;
	if (c->throttled && c->unhandled <= c->read_limit / 2)
		set_throttled(c, false);
}

void actor__net_on_read_end(struct actor__conn *c, int err)
{
	c->reading = false;
	if (c->state == CONN_CLOSING && err < 0) {
		conn_release(c); /* broken (a reset): nothing more reaches the peer */
		return;
	}
	if (c->state != CONN_OPEN)
		return;
	if (err == 0) {
		c->rd_eof = true;
		send_event(c, ACTOR_MSG_TCP_CLOSED, 0); /* the owner decides when to close */
		return;
	}
	conn_fail(c, err);
}

/* The connection broke: tell the owner; it is freed once the owner has the message. */
static void conn_fail(struct actor__conn *c, int err)
{
	if (c->state == CONN_FAILED)
		return; /* already reported; a late completion of the same breakage */
	if (c->state == CONN_OPEN || c->state == CONN_CONNECTING) {
		uint32_t type =
		    c->state == CONN_OPEN ? ACTOR_MSG_TCP_CLOSED : ACTOR_MSG_TCP_CONNECTED;
		if (c->reading)
			c->w->rops->conn_pause(c->w->reactor, c);
		c->state = CONN_FAILED;
		if (send_event(c, type, err) == 0)
			return; /* actor__net_delivered frees it */
	}
	conn_unlist(c);
	conn_release(c);
}

/* A CLOSED or CONNECTED message reached its end (the behaviour, or the dead-letter path): a
 * connection that failed can go now. */
void actor__net_delivered(struct actor_worker *w, const actor_tcp_event_t *evp)
{
	actor_tcp_event_t ev;
	memcpy(&ev, evp, sizeof(ev)); /* the payload need not be aligned */
	if (ev.error == 0 || w->net == NULL)
		return;
	struct actor__conn *c = conn_of(w, ev.conn);
	if (c != NULL && c->state == CONN_FAILED) {
		conn_unlist(c);
		conn_release(c);
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

/* w->net is NULL once the worker's network state is gone (a backend releasing connections in
 * its fini): the chunk goes straight back to the allocator. */
static void outbuf_free(struct actor_worker *w, struct actor__outbuf *b)
{
	struct actor__net *net = w->net;
	if (net != NULL && sizeof(*b) + b->cap == OUTBUF_SMALL && net->nspare < OUTBUF_SPARE_MAX) {
		b->next = net->spare;
		net->spare = b;
		net->nspare++;
		return;
	}
	actor__free(b, sizeof(*b) + b->cap);
}

int actor__net_iov(struct actor__conn *c, struct iovec *iov, int max)
{
	int n = 0;
	for (struct actor__outbuf *b = c->out_head; b != NULL && n < max; b = b->next) {
		iov[n].iov_base = b->data + b->off;
		iov[n].iov_len = b->len - b->off;
		n++;
	}
	return n;
}

ssize_t actor__net_write_fd(struct actor__conn *c)
{
	struct iovec iov[16];
	int n = actor__net_iov(c, iov, 16);
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	/* MSG_NOSIGNAL: a closed peer is an EPIPE error here, never a SIGPIPE. */
	ssize_t r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	return r < 0 ? -errno : r;
}

ssize_t actor__net_read_fd(struct actor__conn *c, void *buf, size_t len)
{
	ssize_t r = recv(c->fd, buf, len, MSG_DONTWAIT);
	return r < 0 ? -errno : r;
}

static void mark_dirty(struct actor__conn *c)
{
	struct actor__net *net = c->w->net;
	if (c->writing)
		return; /* the backend goes on by itself when the current write completes */
	if (!c->dirty_flag) {
		c->dirty_flag = true;
		c->dirty_next = net->dirty;
		net->dirty = c;
	}
}

/* Once per loop turn: hands every connection with new output to the backend. */
static void flush_dirty(struct actor_worker *w)
{
	struct actor__conn *c = w->net->dirty;
	w->net->dirty = NULL;
	while (c != NULL) {
		struct actor__conn *next = c->dirty_next;
		c->dirty_flag = false;
		c->dirty_next = NULL;
		if (c->out_head != NULL && !c->writing &&
		    (c->state == CONN_OPEN || c->state == CONN_CLOSING)) {
			int rc = w->rops->conn_write(w->reactor, c);
			if (rc < 0)
				actor__net_on_sent(c, 0, rc);
		}
		c = next;
	}
}

bool actor__net_on_sent(struct actor__conn *c, size_t n, int err)
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
			outbuf_free(c->w, b);
		}
	}
	if (err < 0) {
		c->writing = false;
		if (c->state == CONN_CLOSING) {
			conn_release(c);
			return true;
		}
		conn_fail(c, err);
		return true; /* maybe released */
	}
	if (c->out_head != NULL)
		return false; /* the backend keeps writing */
	c->writing = false;
	if (c->state == CONN_CLOSING)
		return close_output_done(c);
	if (c->wr_shut && !c->wr_shut_done) {
		c->wr_shut_done = true;
		shutdown(c->fd, SHUT_WR);
	}
	if (c->over_high && c->queued <= c->low) {
		c->over_high = false;
		send_event(c, ACTOR_MSG_TCP_DRAINED, 0);
	}
	return false;
}

static int queue_bytes(struct actor__conn *c, const void *data, size_t len)
{
	struct actor__outbuf *t = c->out_tail;
	if (t != NULL && t->cap - t->len >= len) {
		memcpy(t->data + t->len, data, len);
		t->len += (uint32_t)len;
	} else {
		struct actor__outbuf *b = outbuf_new(c->w->net, len, c->queued);
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
	mark_dirty(c);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Closing
 */

/* Hands the connection to the backend to be freed once no operation refers to it. */
static void conn_release(struct actor__conn *c)
{
	struct actor__net *net = c->w->net;
	if (c->dirty_flag) {
		/* Short list (the connections written to this turn): unlink by walking it. */
		struct actor__conn **pp = &net->dirty;
		while (*pp != c)
			pp = &(*pp)->dirty_next;
		*pp = c->dirty_next;
		c->dirty_flag = false;
	}
	if (c->closing_pos != 0) {
		struct actor__conn *last = net->closing[--net->nclosing];
		net->closing[c->closing_pos - 1] = last;
		last->closing_pos = c->closing_pos;
		c->closing_pos = 0;
	}
	c->state = CONN_CLOSING;
	c->w->rops->conn_release(c->w->reactor, c);
}

void actor__net_conn_released(struct actor__conn *c)
{
	struct actor_worker *w = c->w;
	close(c->fd);
	struct actor__outbuf *b = c->out_head;
	while (b != NULL) {
		struct actor__outbuf *next = b->next;
		outbuf_free(w, b);
		b = next;
	}
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
	if (ioctl(c->fd, SIOCOUTQ, &unacked) < 0 || unacked <= (c->wr_shut_done ? 1 : 0))
		return true;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	return getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	       ti.tcpi_state == TCP_CLOSE;
}

static void note_tick(struct actor__net *net, uint64_t when)
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
 * when the peer has it all (actor__net_tick looks), or when the linger runs out. True if the
 * connection was released. */
static bool close_output_done(struct actor__conn *c)
{
	if (!c->wr_shut_done) {
		c->wr_shut_done = true;
		shutdown(c->fd, SHUT_WR);
	}
	if (close_acked(c)) {
		conn_release(c);
		return true;
	}
	c->ack_step_ns = ACK_POLL_FIRST_NS;
	c->ack_check_ns = actor__now_ns() + c->ack_step_ns;
	note_tick(c->w->net, c->ack_check_ns);
	return false;
}

/* Owner's close: the handle goes stale now; queued output is still written, and acknowledged,
 * for a while (close_output_done). Meanwhile the connection reads on and discards what arrives
 * (actor__net_on_data delivers nothing once it is CLOSING): input left unread when the socket
 * is closed makes the kernel reset the connection and drop the output the peer has not
 * received yet, and a peer that reads only once its own writes are through (another lingering
 * close, say) would wait out the linger. */
static void conn_close_graceful(struct actor__conn *c)
{
	conn_unlist(c);
	if (c->state != CONN_OPEN || (c->out_head == NULL && close_acked(c))) {
		if (c->reading)
			c->w->rops->conn_pause(c->w->reactor, c);
		conn_release(c);
		return;
	}
	struct actor__net *net = c->w->net;
	if (net->nclosing == net->closing_cap) {
		uint32_t cap = net->closing_cap ? net->closing_cap * 2 : 16;
		struct actor__conn **p = realloc(net->closing, cap * sizeof(*p));
		if (p == NULL) {
			conn_release(c); /* cannot track a deadline: close now, unflushed */
			return;
		}
		net->closing = p;
		net->closing_cap = cap;
	}
	c->state = CONN_CLOSING;
	/* Nobody to hold reading back for now. Asked even while c->reading, as start_reading
	 * does: a pause may still be cancelling the read. Failing, the close only reads nothing. */
	c->owner_paused = c->throttled = false;
	if (!c->rd_eof)
		c->w->rops->conn_read(c->w->reactor, c);
	c->linger_deadline_ns = actor__now_ns() + (uint64_t)ACTOR_TCP_LINGER_MS * 1000000u;
	net->closing[net->nclosing++] = c;
	c->closing_pos = net->nclosing;
	note_tick(net, c->linger_deadline_ns);
	if (c->out_head == NULL)
		close_output_done(c);
}

static void conn_abort(struct actor__conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	/* A zero linger makes close() send RST and drop what is queued. */
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_unlist(c);
	conn_release(c);
}

/* A close ran out of time (its linger, or the shutdown's drain). Still writing: reset, and
 * count the output dropped. Waiting for the peer's acknowledgement: close() as before, and the
 * kernel goes on sending what it holds. */
static void close_ran_out(struct actor__conn *c)
{
	if (c->out_head == NULL) {
		conn_release(c);
		return;
	}
	actor__stat_add(&c->w->st.closes_reset, 1);
	conn_abort(c);
}

/* ---------------------------------------------------------------------------------------------
 * The public connection API (owner, inside its behaviour)
 */

/* The caller's connection, checked: -EXDEV from the wrong worker, -ESRCH for a stale handle,
 * -EPERM for someone else's. */
static int owned(actor_ctx_t *ctx, actor_conn_t h, struct actor__conn **out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (actor__handle_worker(h.id) != w->index)
		return -EXDEV;
	struct actor__conn *c = conn_of(w, h);
	if (c == NULL)
		return -ESRCH;
	if (!actor_ref_eq(c->owner, ctx->actor->ref))
		return -EPERM;
	*out = c;
	return 0;
}

int actor_tcp_write(actor_ctx_t *ctx, actor_conn_t conn, const void *data, size_t len)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (data == NULL && len > 0)
		return -EINVAL;
	if (c->state != CONN_OPEN || c->wr_shut)
		return -EPIPE;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (c->queued > c->high) {
		c->over_high = true;
		return -ENOBUFS;
	}
	return len == 0 ? 0 : queue_bytes(c, data, len);
}

int actor_tcp_queued(actor_ctx_t *ctx, actor_conn_t conn, size_t *bytes)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (bytes == NULL)
		return -EINVAL;
	*bytes = c->queued;
	return 0;
}

int actor_tcp_set_watermarks(actor_ctx_t *ctx, actor_conn_t conn, size_t high, size_t low)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (low > high)
		return -EINVAL;
	c->high = high;
	c->low = low;
	return 0;
}

int actor_tcp_pause(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	c->owner_paused = true;
	update_reading(c);
	return 0;
}

int actor_tcp_resume(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	c->owner_paused = false;
	update_reading(c);
	return 0;
}

int actor_tcp_set_read_limit(actor_ctx_t *ctx, actor_conn_t conn, size_t bytes)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	c->read_limit = bytes;
	if (bytes == 0 || c->unhandled <= bytes / 2)
		set_throttled(c, false);
	else if (c->unhandled > bytes)
		set_throttled(c, true);
	return 0;
}

int actor_tcp_backlog(actor_ctx_t *ctx, actor_conn_t conn, size_t *bytes)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (bytes == NULL)
		return -EINVAL;
	*bytes = c->unhandled;
	return 0;
}

int actor_tcp_shutdown(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (c->state != CONN_OPEN)
		return -ENOTCONN;
	c->wr_shut = true;
	if (c->out_head == NULL && !c->wr_shut_done) {
		c->wr_shut_done = true;
		shutdown(c->fd, SHUT_WR);
	}
	return 0;
}

int actor_tcp_close(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	conn_close_graceful(c);
	return 0;
}

int actor_tcp_abort(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	conn_abort(c);
	return 0;
}

int actor_tcp_peer(actor_ctx_t *ctx, actor_conn_t conn, void *buf, uint32_t *len)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (buf == NULL || len == NULL)
		return -EINVAL;
	if (c->peer_len == 0) {
		socklen_t sl = sizeof(c->peer);
		if (getpeername(c->fd, (struct sockaddr *)&c->peer, &sl) < 0)
			return -errno;
		c->peer_len = sl;
	}
	if (*len < c->peer_len)
		return -ENOSPC;
	memcpy(buf, &c->peer, c->peer_len);
	*len = c->peer_len;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Hand-off
 */

static void mark_io_owner(actor_system_t *sys, actor_ref_t who, uint32_t flag)
{
	struct actor *a = actor__lookup(sys, who);
	if (a != NULL)
		a->flags |= flag; /* home-worker field: callers run on `who`'s home worker */
}

/* Makes `target` (living on c's worker, the current thread) the owner and starts reading. */
static void adopt(struct actor__conn *c, actor_ref_t target)
{
	c->owner = target;
	mark_io_owner(c->w->sys, target, ACTOR_HAS_IO);
	if (c->state == CONN_PENDING)
		c->state = CONN_OPEN;
}

int actor_tcp_handoff(actor_ctx_t *ctx, actor_conn_t conn, actor_ref_t target)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	actor_info_t info;
	int rc = actor_info(w->sys, target, &info);
	if (rc < 0)
		return rc;
	unsigned cw = actor__handle_worker(conn.id);
	if (cw >= w->sys->nworkers)
		return -ESRCH;
	if (info.worker != cw)
		return -EXDEV;
	/* A target that may move could leave the connection's worker at any moment: only one
	 * that stays there (pinned) or the caller itself (running here now) can take it. */
	struct actor *t = actor__lookup(w->sys, target);
	if (t == NULL)
		return -ESRCH;
	if (t != ctx->actor && !t->pinned)
		return -EXDEV;
	if (cw != w->index) {
		/* A pending connection accepted on another worker: its target claims it there. */
		struct actor__adopt ad = {.conn = conn, .from = ctx->actor->ref};
		return actor__send_internal(w->sys, target, ctx->actor->ref, MSG_TCP_ADOPT, &ad,
		                            sizeof(ad));
	}
	struct actor__conn *c;
	rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (c->state == CONN_CLOSING)
		return -EPIPE;
	actor_ref_t old = c->owner;
	c->owner = target;
	rc = send_event(c, ACTOR_MSG_TCP_ADOPTED, 0);
	if (rc < 0) {
		c->owner = old;
		return rc;
	}
	adopt(c, target);
	start_reading(c);
	return 0;
}

bool actor__net_adopt(struct actor_worker *w, struct actor *a, actor_msg_t *m)
{
	struct actor__adopt ad;
	memcpy(&ad, actor_msg_data(m), sizeof(ad));
	struct actor__conn *c = conn_of(w, ad.conn);
	if (c == NULL || c->state != CONN_PENDING || !actor_ref_eq(c->owner, ad.from))
		return false; /* closed or claimed meanwhile */
	adopt(c, a->ref);
	a->flags |= ACTOR_HAS_IO;
	actor_tcp_event_t ev = {.conn = ad.conn, .error = 0, .worker = w->index};
	memcpy(actor_msg_data(m), &ev, sizeof(ev));
	m->type = ACTOR_MSG_TCP_ADOPTED;
	m->sender = ad.from;
	start_reading(c);
	return true;
}

/* Closes a pending connection nobody will claim (its ACCEPTED or ADOPT was dead-lettered). */
static void close_pending(struct actor_worker *w, uint64_t id, actor_ref_t owner)
{
	struct actor__conn *c = conn_of(w, (actor_conn_t){id});
	if (c != NULL && c->state == CONN_PENDING && actor_ref_eq(c->owner, owner)) {
		conn_unlist(c);
		conn_release(c);
	}
}

static void close_pending_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct conn_cmd *cc = (struct conn_cmd *)cmd;
	if (w->net != NULL)
		close_pending(w, cc->conn, cc->owner);
	free(cc);
}

/* `to` is the actor that could not take `m`: for ACCEPTED, the listener's owner, which owns the
 * pending connection; for ADOPT, the target, and the owner is the sender recorded inside. */
void actor__net_dead_letter(struct actor_worker *w, actor_ref_t to, actor_msg_t *m)
{
	uint64_t id;
	actor_ref_t owner = to;
	if (m->type == MSG_TCP_ADOPT) {
		struct actor__adopt ad;
		memcpy(&ad, actor_msg_data(m), sizeof(ad));
		id = ad.conn.id;
		owner = ad.from;
	} else {
		actor_tcp_accepted_t acc;
		memcpy(&acc, actor_msg_data(m), sizeof(acc));
		id = acc.conn.id;
	}
	unsigned cw = actor__handle_worker(id);
	if (cw >= w->sys->nworkers)
		return;
	if (cw == w->index) {
		if (w->net != NULL)
			close_pending(w, id, owner);
		return;
	}
	struct conn_cmd *cc = malloc(sizeof(*cc));
	if (cc == NULL)
		return; /* that worker closes it when it exits */
	cc->cmd.fn = close_pending_cmd;
	cc->conn = id;
	cc->owner = owner;
	actor__worker_post(&w->sys->workers[cw], &cc->cmd);
}

/* ---------------------------------------------------------------------------------------------
 * Listening
 */

static int resolve(const char *host, uint16_t port, bool passive, struct addrinfo **out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV};
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int rc = getaddrinfo(host, portstr, &hints, out);
	if (rc == 0)
		return 0;
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	if (rc == EAI_SYSTEM)
		return errno ? -errno : -EINVAL;
	return -EADDRNOTAVAIL; /* unknown host or an address this machine cannot use */
}

static int open_listener(const struct sockaddr *sa, socklen_t len, int backlog, bool reuseport)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6) /* "::" serves IPv4 too */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Opens every socket of the group: the first binds (maybe port 0), the rest reuse its port. */
static void set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(port);
}

/* With SO_REUSEPORT a bind joins whatever group already listens on the port (another server of
 * the same user, say) instead of failing. A bind without it says whether the port is free; for
 * port 0 it also picks the port the group then shares. */
static int claim_port(struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	int rc = bind(fd, sa, len) < 0 ? -errno : 0;
	if (rc == 0)
		set_port(sa, bound_port(fd));
	close(fd);
	return rc;
}

/* Resolves the address to listen on: NULL means every address, IPv6 and IPv4 ("::" with
 * IPV6_V6ONLY off), or IPv4 alone on a machine without IPv6. */
static int listen_addr(const actor_listen_opts_t *o, struct addrinfo **ai)
{
	if (o->host != NULL)
		return resolve(o->host, o->port, true, ai);
	int rc = resolve("::", o->port, true, ai);
	if (rc == 0) {
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		freeaddrinfo(*ai);
	}
	return resolve("0.0.0.0", o->port, true, ai);
}

/* Opens every socket of the group on one port. */
static int open_group(struct actor__lgroup *g, const actor_listen_opts_t *o, bool reuseport)
{
	struct addrinfo *ai;
	int rc = listen_addr(o, &ai);
	if (rc < 0)
		return rc;
	if (reuseport && (rc = claim_port(ai->ai_addr, ai->ai_addrlen)) < 0) {
		freeaddrinfo(ai);
		return rc;
	}
	int backlog = o->backlog > 0 ? o->backlog : SOMAXCONN;
	for (unsigned i = 0; i < g->nsocks; i++) {
		int fd = open_listener(ai->ai_addr, ai->ai_addrlen, backlog, reuseport);
		if (fd < 0) {
			while (i-- > 0)
				close(g->socks[i].fd);
			freeaddrinfo(ai);
			return fd;
		}
		g->socks[i].fd = fd;
	}
	g->port = bound_port(g->socks[0].fd);
	freeaddrinfo(ai);
	return 0;
}

static void group_unref(struct actor__lgroup *g)
{
	/* acq_rel: the last holder frees; every socket's worker has finished with it. */
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		free(g);
}

static void lsock_start(struct actor_worker *w, struct actor__lsock *ls)
{
	ls->next = w->net->lsocks;
	w->net->lsocks = ls;
	w->net->nlsocks++;
	if (w->rops->listen_start(w->reactor, ls) == 0)
		ls->armed = true;
}

#define lsock_of(cmd, field)                                                                       \
	((struct actor__lsock *)((char *)(cmd)-offsetof(struct actor__lsock, field)))

static void lsock_start_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct actor__lsock *ls = lsock_of(cmd, start_cmd);
	if (w->net != NULL) {
		lsock_start(w, ls);
	} else {
		close(ls->fd); /* the worker has exited */
		group_unref(ls->group);
	}
}

int actor_tcp_listen(actor_ctx_t *ctx, const actor_listen_opts_t *opts, actor_listener_t *out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || opts == NULL || out == NULL || opts->backlog < 0)
		return -EINVAL;
	actor_system_t *sys = w->sys;
	unsigned n = opts->per_worker ? sys->nworkers : 1;
	struct actor__lgroup *g = calloc(1, sizeof(*g) + n * sizeof(g->socks[0]));
	if (g == NULL)
		return -ENOMEM;
	g->nsocks = n;
	g->owner = ctx->actor->ref;
	int rc = open_group(g, opts, opts->per_worker != 0);
	if (rc < 0) {
		free(g);
		return rc;
	}
	int64_t idx = actor__table_put(&w->net->lgroups, g);
	if (idx < 0) {
		for (unsigned i = 0; i < n; i++)
			close(g->socks[i].fd);
		free(g);
		return -ENOMEM;
	}
	g->handle = actor__table_handle(&w->net->lgroups, w->index, (uint32_t)idx);
	atomic_init(&g->refs, n + 1); /* one per socket, one for the handle */
	ctx->actor->flags |= ACTOR_HAS_IO | ACTOR_LISTENS;
	for (unsigned i = 0; i < n; i++) {
		struct actor__lsock *ls = &g->socks[i];
		ls->group = g;
		ls->w = opts->per_worker ? &sys->workers[i] : w;
		if (ls->w == w) {
			lsock_start(w, ls);
		} else {
			ls->start_cmd.fn = lsock_start_cmd;
			actor__worker_post(ls->w, &ls->start_cmd);
		}
	}
	out->id = g->handle;
	return 0;
}

static struct actor__lgroup *group_owned(actor_ctx_t *ctx, actor_listener_t l, int *rc)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	*rc = -EINVAL;
	if (w == NULL)
		return NULL;
	*rc = -ESRCH;
	if (actor__handle_worker(l.id) != w->index)
		return NULL;
	struct actor__lgroup *g = actor__table_get(&w->net->lgroups, l.id);
	if (g == NULL)
		return NULL;
	if (!actor_ref_eq(g->owner, ctx->actor->ref)) {
		*rc = -EPERM;
		return NULL;
	}
	*rc = 0;
	return g;
}

int actor_tcp_listener_port(actor_ctx_t *ctx, actor_listener_t l, uint16_t *port)
{
	int rc;
	struct actor__lgroup *g = group_owned(ctx, l, &rc);
	if (g == NULL)
		return rc;
	if (port == NULL)
		return -EINVAL;
	*port = g->port;
	return 0;
}

/* On the socket's worker: stop accepting and let the backend release it. */
static void lsock_close(struct actor_worker *w, struct actor__lsock *ls)
{
	struct actor__lsock **pp = &w->net->lsocks;
	while (*pp != NULL && *pp != ls)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return; /* already closed */
	*pp = ls->next;
	w->net->nlsocks--;
	ls->resume_ns = 0;
	w->rops->listen_release(w->reactor, ls);
}

void actor__net_lsock_released(struct actor__lsock *ls)
{
	if (ls->fd >= 0) /* -1: the backend closed it early (reactor_uring.c) */
		close(ls->fd);
	group_unref(ls->group);
}

static void lsock_close_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct actor__lsock *ls = lsock_of(cmd, close_cmd);
	struct actor__lgroup *g = ls->group;
	if (w->net != NULL)
		lsock_close(w, ls);
	/* else: the worker's exit closed it */
	group_unref(g); /* the command's own reference, taken when it was posted */
}

static void group_close(struct actor_worker *w, struct actor__lgroup *g)
{
	actor__table_del(&w->net->lgroups, (uint32_t)g->handle);
	for (unsigned i = 0; i < g->nsocks; i++) {
		struct actor__lsock *ls = &g->socks[i];
		if (ls->w == w) {
			lsock_close(w, ls);
		} else {
			/* The command lives in the group: it holds a reference until it has run,
			 * or the socket's own release could free it while it waits in the queue
			 * (seen when both workers exit with the listener open). */
			atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
			ls->close_cmd.fn = lsock_close_cmd;
			actor__worker_post(ls->w, &ls->close_cmd);
		}
	}
	group_unref(g); /* the handle's reference */
}

int actor_tcp_listener_close(actor_ctx_t *ctx, actor_listener_t l)
{
	int rc;
	struct actor__lgroup *g = group_owned(ctx, l, &rc);
	if (g == NULL)
		return rc;
	group_close(ctx->worker, g);
	return 0;
}

void actor__net_on_accept_error(struct actor__lsock *ls, int err)
{
	if (err != -EMFILE && err != -ENFILE && err != -ENOBUFS && err != -ENOMEM)
		return; /* ECONNABORTED and friends concern one connection only */
	struct actor_worker *w = ls->w;
	actor__stat_add(&w->st.accept_backoffs, 1);
	/* Out of descriptors: stop accepting for a while instead of spinning on a listening socket
	 * that stays readable, and double the pause while it lasts. */
	w->rops->listen_pause(w->reactor, ls);
	ls->armed = false;
	ls->backoff_ns = ls->backoff_ns ? ls->backoff_ns * 2 : BACKOFF_FIRST_NS;
	if (ls->backoff_ns > BACKOFF_MAX_NS)
		ls->backoff_ns = BACKOFF_MAX_NS;
	ls->resume_ns = actor__now_ns() + ls->backoff_ns;
	if (w->net->next_tick_ns == 0 || ls->resume_ns < w->net->next_tick_ns)
		w->net->next_tick_ns = ls->resume_ns;
}

/* ---------------------------------------------------------------------------------------------
 * The worker loop's share
 */

int actor__net_poll(struct actor_worker *w)
{
	flush_dirty(w);
	return w->rops->wait(w->reactor, 0);
}

bool actor__net_closing(const struct actor_worker *w)
{
	return w->net != NULL && w->net->nclosing > 0;
}

uint64_t actor__net_next_deadline(const struct actor_worker *w)
{
	return w->net != NULL && w->net->next_tick_ns != 0 ? w->net->next_tick_ns : UINT64_MAX;
}

/* Resumes backed-off listeners, ends closes whose output the peer has acknowledged, and gives
 * up on closes whose linger ran out. */
void actor__net_tick(struct actor_worker *w, uint64_t now)
{
	struct actor__net *net = w->net;
	if (net == NULL || net->next_tick_ns == 0 || now < net->next_tick_ns)
		return;
	uint64_t next = 0;
	for (struct actor__lsock *ls = net->lsocks; ls != NULL; ls = ls->next) {
		if (ls->resume_ns == 0)
			continue;
		if (ls->resume_ns <= now) {
			ls->resume_ns = 0;
			if (w->rops->listen_start(w->reactor, ls) == 0)
				ls->armed = true;
		} else if (next == 0 || ls->resume_ns < next) {
			next = ls->resume_ns;
		}
	}
	for (uint32_t i = 0; i < net->nclosing;) {
		struct actor__conn *c = net->closing[i];
		if (c->linger_deadline_ns <= now) {
			close_ran_out(c); /* takes it off the list: look at index i again */
			continue;
		}
		if (c->ack_check_ns != 0 && c->ack_check_ns <= now) {
			if (close_acked(c)) {
				conn_release(c); /* the same */
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
	net->next_tick_ns = next;
}

/* ---------------------------------------------------------------------------------------------
 * Connecting
 */

int actor_tcp_connect(actor_ctx_t *ctx, const char *host, uint16_t port, actor_conn_t *out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || host == NULL || out == NULL || port == 0)
		return -EINVAL;
	struct addrinfo *ai;
	int rc = resolve(host, port, false, &ai);
	if (rc < 0)
		return rc;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		return rc;
	}
	set_nodelay(fd);
	int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	int err = r == 0 ? 0 : errno;
	freeaddrinfo(ai);
	if (r < 0 && err != EINPROGRESS) {
		close(fd);
		return -err; /* refused at once (e.g. no route): no message will follow */
	}
	struct actor__conn *c = conn_new(w, fd, ctx->actor->ref, CONN_CONNECTING);
	if (c == NULL) {
		close(fd);
		return -ENOMEM;
	}
	ctx->actor->flags |= ACTOR_HAS_IO;
	*out = handle_of(c);
	if (r == 0) {
		actor__net_on_connected(c, 0);
		return 0;
	}
	rc = w->rops->conn_connect(w->reactor, c);
	if (rc < 0) {
		conn_unlist(c);
		conn_release(c);
		return rc;
	}
	return 0;
}

void actor__net_on_connected(struct actor__conn *c, int err)
{
	if (c->state != CONN_CONNECTING)
		return;
	if (err != 0) {
		conn_fail(c, err); /* CONNECTED with the error, then freed */
		return;
	}
	c->state = CONN_OPEN;
	if (send_event(c, ACTOR_MSG_TCP_CONNECTED, 0) < 0) {
		conn_unlist(c);
		conn_release(c);
		return;
	}
	start_reading(c);
	if (c->out_head != NULL)
		mark_dirty(c);
}

/* ---------------------------------------------------------------------------------------------
 * Owners stopping, workers exiting
 */

static void close_owned_here(struct actor_worker *w, actor_ref_t owner)
{
	struct actor__table *t = &w->net->conns;
	for (uint32_t i = 1; i < t->cap; i++) {
		struct actor__conn *c = t->obj[i];
		if (c != NULL && actor_ref_eq(c->owner, owner))
			conn_close_graceful(c);
	}
}

static void owner_stopped_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct conn_cmd *cc = (struct conn_cmd *)cmd;
	if (w->net != NULL)
		close_owned_here(w, cc->owner);
	free(cc);
}

/* Home worker of `a`, as it stops: closes its connections (queued output is still written) and
 * its listeners, and the pending connections its listeners accepted on other workers. */
void actor__net_owner_stopped(struct actor_worker *w, struct actor *a)
{
	if (w->net == NULL)
		return;
	close_owned_here(w, a->ref);
	if (!(a->flags & ACTOR_LISTENS))
		return;
	struct actor__table *t = &w->net->lgroups;
	for (uint32_t i = 1; i < t->cap; i++) {
		struct actor__lgroup *g = t->obj[i];
		if (g != NULL && actor_ref_eq(g->owner, a->ref))
			group_close(w, g);
	}
	for (unsigned i = 0; i < w->sys->nworkers; i++) {
		if (i == w->index)
			continue;
		struct conn_cmd *cc = malloc(sizeof(*cc));
		if (cc == NULL)
			continue; /* those conns close when their worker exits */
		cc->cmd.fn = owner_stopped_cmd;
		cc->owner = a->ref;
		actor__worker_post(&w->sys->workers[i], &cc->cmd);
	}
}

/* The worker is exiting: every actor has stopped. Closes what is left, at once. */
void actor__net_fini(struct actor_worker *w)
{
	struct actor__net *net = w->net;
	if (net == NULL)
		return;
	while (net->lsocks != NULL)
		lsock_close(w, net->lsocks);
	for (uint32_t i = 1; i < net->conns.cap; i++) {
		struct actor__conn *c = net->conns.obj[i];
		if (c != NULL)
			conn_abort(c);
	}
	while (net->nclosing > 0)
		close_ran_out(net->closing[0]);
	/* Listener groups whose owner lived here and whose sockets live elsewhere. */
	for (uint32_t i = 1; i < net->lgroups.cap; i++) {
		struct actor__lgroup *g = net->lgroups.obj[i];
		if (g != NULL)
			group_close(w, g);
	}
	/* Releases the backend still owes (io_uring cancellations) complete in its fini. */
	actor__table_free(&net->conns);
	actor__table_free(&net->lgroups);
	while (net->spare != NULL) {
		struct actor__outbuf *b = net->spare;
		net->spare = b->next;
		actor__free(b, sizeof(*b) + b->cap);
	}
	free(net->closing);
	free(net);
	w->net = NULL;
}
