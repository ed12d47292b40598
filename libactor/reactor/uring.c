/* reactor_uring.c: the completion backend on io_uring. The kernel accepts (multishot where it
 * can), receives (multishot where it can: one armed receive per connection, not one submission
 * per read) into buffers picked from a ring the reactor provides, and sends (one send in flight
 * per connection: its first output chunk, or up to SEND_IOV of them in a sendmsg); the reactor
 * submits once per loop turn (in `wait`) and reports completions through the net callbacks.
 *
 * Lifetime rule: every submitted operation holds its object (`inflight`). A release request
 * cancels what is in flight and frees the object only when the last completion has come back,
 * so no completion ever points at freed memory. Callbacks run while the completion still holds
 * the object, so a callback that releases it cannot free it under our feet.
 *
 * Pausing cancels the receive in flight; bytes it had already taken are kept (`stash`) and
 * delivered first on resume (the peer's EOF or a reset after them), so a paused connection
 * delivers nothing and loses nothing. The owner's read limit pauses the same way, even in the
 * middle of delivering a stash: what is left of it waits for the next resume. A close that
 * is still writing receives on and drops what arrives, the stash too (net.c).
 */
#include "config.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "reactor/reactor.h"

#define RING_ENTRIES 1024 /* submission queue; completions get twice that, and overflow safely */
#define BUF_COUNT 256     /* provided receive buffers per worker (a power of two) */
#define BUF_SIZE (16u << 10)
#define BUF_GROUP 0

/* user_data: the object's address with the operation in the low three bits. */
enum { OP_WAKE = 0, OP_ACCEPT, OP_RECV, OP_SEND, OP_POLL, OP_CANCEL, OP_MASK = 7 };

struct actor__reactor {
	struct io_uring ring;
	int evfd;
	uint64_t evbuf;
	bool multishot_accept;
	bool multishot_recv;          /* cleared if the kernel refuses it (before 6.0) */
	bool refuse_multishot_recv;   /* URING_5_19: have the kernel refuse it, as 5.19 would */
	struct io_uring_buf_ring *br; /* NULL: receive into per-connection buffers instead */
	unsigned char *bufs;
	unsigned pending_releases; /* objects released but still held by operations */
};

/* Per-connection backend state, allocated on first use. */
struct uconn {
	unsigned char *stash; /* bytes received while paused */
	size_t stash_len;
	size_t stash_off;    /* bytes of the stash already delivered */
	int end_res;         /* with end_held: 0 (the peer's EOF) or the read error */
	bool end_held;       /* the receive ended while bytes were stashed: report after them */
	unsigned char *rbuf; /* without provided buffers */
	bool multishot;      /* the receive in flight is multishot */
	bool released;
	bool cancel_recv;
	struct uwrite *wv; /* a vectored send's header, once the queue first held two chunks */
};

/* The kernel reads a sendmsg's header and vector no earlier than when the loop turn hands its
 * submissions over, after submit_send has returned: both live here, one per connection, until
 * the connection is freed (which waits for its operations to complete). */
#define SEND_IOV 8
struct uwrite {
	struct msghdr mh;
	struct iovec iov[SEND_IOV];
};

static struct uconn *uc(struct actor__conn *c)
{
	return (struct uconn *)c->backend;
}

static uint64_t tag(void *obj, int op)
{
	return (uint64_t)(uintptr_t)obj | (uint64_t)op;
}

static struct io_uring_sqe *sqe_get(struct actor__reactor *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (sqe == NULL) {
		io_uring_submit(&r->ring); /* the queue is full: hand this batch over now */
		sqe = io_uring_get_sqe(&r->ring);
	}
	return sqe;
}

/* ---------------------------------------------------------------------------------------------
 * Setup
 */

static int setup_buffers(struct actor__reactor *r)
{
	size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
	void *mem =
	    mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	r->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
	if (r->bufs == NULL) {
		munmap(mem, ring_bytes);
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uint64_t)(uintptr_t)mem, .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
	int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
	if (rc < 0) {
		munmap(mem, ring_bytes);
		free(r->bufs);
		r->bufs = NULL;
		return rc;
	}
	r->br = mem;
	io_uring_buf_ring_init(r->br);
	for (unsigned i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(r->br, r->bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
		                      (unsigned short)i, io_uring_buf_ring_mask(BUF_COUNT), (int)i);
	io_uring_buf_ring_advance(r->br, BUF_COUNT);
	return 0;
}

static void recycle_buffer(struct actor__reactor *r, unsigned bid)
{
	io_uring_buf_ring_add(r->br, r->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
	                      (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(r->br, 1);
}

static void arm_wake(struct actor__reactor *r)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return;
	io_uring_prep_read(sqe, r->evfd, &r->evbuf, sizeof(r->evbuf), 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_WAKE));
}

static int ur_init(struct actor_worker *w, struct actor__reactor **out)
{
	struct actor__reactor *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	/* DEFER_TASKRUN (6.1): the kernel never interrupts the worker to post completions; it
	 * queues them on the ring and posts them only when the worker enters it asking for events,
	 * which ur_wait does once per loop turn. It needs SINGLE_ISSUER: only the thread that
	 * created the ring may submit to it, and that holds here (the ring is created, used and
	 * destroyed on its worker's thread; sched.c, reactor_start). With the one-entry poll in
	 * ur_wait, against COOP_TASKRUN (which posts them on any entry), echo at 50 connections:
	 * 1% more requests/s and 1% less server CPU per request; level at 300 (bench/README.md,
	 * Echo). COOP_TASKRUN remains the fallback for 5.19 and 6.0.
	 * TASKRUN_FLAG: the kernel also marks the ring when completions wait, so that the
	 * non-blocking poll of a spinning worker enters and posts them. Without it the worker saw
	 * a reply's completion only when it parked, a whole idle spin later: 66 us per round trip
	 * on one connection instead of 24 (bench/echo.sh, c1). */
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
	                                     IORING_SETUP_DEFER_TASKRUN |
	                                     IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL};
	int level = w->sys->uring_level; /* ACTOR_IO_URING_FEATURES: as an older kernel would */
	if (level == URING_5_19)
		p.flags =
		    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
	else if (level == URING_BASIC)
		p.flags = 0;
	int rc = io_uring_queue_init_params(RING_ENTRIES, &r->ring, &p);
	if (rc == -EINVAL) { /* kernels before 6.1 lack DEFER_TASKRUN */
		memset(&p, 0, sizeof(p));
		p.flags =
		    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
		rc = io_uring_queue_init_params(RING_ENTRIES, &r->ring, &p);
	}
	if (rc == -EINVAL) { /* kernels before 5.19 lack those flags */
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(RING_ENTRIES, &r->ring, &p);
	}
	if (rc < 0) {
		free(r); /* -ENOSYS (old kernel), -EPERM (seccomp, sysctl), -ENOMEM (memlock) */
		return rc;
	}
	r->evfd = w->evfd; /* the worker's, blocking: the ring's read on it waits for a wake */
	struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
	if (probe == NULL || !io_uring_opcode_supported(probe, IORING_OP_ACCEPT) ||
	    !io_uring_opcode_supported(probe, IORING_OP_SEND) ||
	    !io_uring_opcode_supported(probe, IORING_OP_SENDMSG) ||
	    !io_uring_opcode_supported(probe, IORING_OP_RECV)) {
		io_uring_free_probe(probe);
		io_uring_queue_exit(&r->ring);
		free(r);
		return -EOPNOTSUPP;
	}
	io_uring_free_probe(probe);
	/* Multishot accept arrived with 5.19, as did ring-provided buffers. */
	r->multishot_accept =
	    level != URING_BASIC && (p.features & IORING_FEAT_NODROP) && setup_buffers(r) == 0;
	/* Multishot receive (6.0) needs provided buffers; a kernel without it says -EINVAL on
	 * the first one (on_recv), and single receives are used from then on. */
	r->multishot_recv = r->br != NULL && level != URING_BASIC;
	r->refuse_multishot_recv = level == URING_5_19;
	arm_wake(r);
	*out = r;
	return 0;
}

static int drain_completions(struct actor__reactor *r);

static void ur_fini(struct actor__reactor *r)
{
	/* Let outstanding cancellations finish so every released object is freed. */
	for (int i = 0; i < 100 && r->pending_releases > 0; i++) {
		struct __kernel_timespec ts = {0, 10000000};
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
		drain_completions(r);
	}
	io_uring_queue_exit(&r->ring);
	if (r->br != NULL)
		munmap(r->br, BUF_COUNT * sizeof(struct io_uring_buf));
	free(r->bufs);
	free(r);
}

static unsigned ur_caps(const struct actor__reactor *r)
{
	return REACTOR_CAP_COMPLETION | (r->multishot_accept ? REACTOR_CAP_MULTISHOT_ACCEPT : 0) |
	       (r->br != NULL ? REACTOR_CAP_PROVIDED_BUFFERS : 0);
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */

static struct uconn *uconn_of(struct actor__conn *c)
{
	if (c->backend == NULL)
		c->backend = calloc(1, sizeof(struct uconn));
	return uc(c);
}

static int submit_recv(struct actor__reactor *r, struct actor__conn *c)
{
	struct uconn *u = uconn_of(c);
	if (u == NULL)
		return -ENOMEM;
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	u->multishot = false;
	if (r->br != NULL && r->multishot_recv) {
		/* Stays armed: one completion per chunk received (IORING_CQE_F_MORE), until EOF,
		 * an error, a cancel, or the buffers running out. No submission per read. */
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		/* Without a buffer group the kernel refuses a multishot receive with -EINVAL, the
		 * answer a kernel without multishot receive gives: on_recv's fallback runs. */
		if (!r->refuse_multishot_recv)
			sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BUF_GROUP;
		u->multishot = true;
	} else if (r->br != NULL) {
		io_uring_prep_recv(sqe, c->fd, NULL, BUF_SIZE, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BUF_GROUP;
	} else {
		if (u->rbuf == NULL && (u->rbuf = malloc(BUF_SIZE)) == NULL)
			return -ENOMEM;
		io_uring_prep_recv(sqe, c->fd, u->rbuf, BUF_SIZE, 0);
	}
	io_uring_sqe_set_data64(sqe, tag(c, OP_RECV));
	c->inflight++;
	c->reading = true;
	return 0;
}

static bool conn_unhold(struct actor__reactor *r, struct actor__conn *c);

static int ur_conn_read(struct actor__reactor *r, struct actor__conn *c)
{
	struct uconn *u = uconn_of(c);
	if (u == NULL)
		return -ENOMEM;
	if (c->state == CONN_CLOSING) {
		/* A close reads on only to discard (net.c, conn_close_graceful): so goes the stash,
		 * and after the peer's end there is nothing more to read. */
		free(u->stash);
		u->stash = NULL;
		u->stash_len = u->stash_off = 0;
		if (u->end_held) {
			u->end_held = false;
			return 0;
		}
	}
	if (u->stash != NULL) {
		/* Bytes taken while paused come first, at most a receive's worth per message: one
		 * may pause the connection again (its owner's read limit), and the rest then waits
		 * for the next resume. The hold keeps `c` if a callback releases it. */
		c->inflight++;
		while (u->stash_off < u->stash_len && !u->released && !actor__conn_paused(c) &&
		       c->state == CONN_OPEN) {
			size_t n = u->stash_len - u->stash_off;
			n = n < BUF_SIZE ? n : BUF_SIZE;
			actor__net_on_data(c, u->stash + u->stash_off, n);
			u->stash_off += n;
		}
		if (u->stash_off == u->stash_len) {
			free(u->stash);
			u->stash = NULL;
			u->stash_len = u->stash_off = 0;
		} else if (u->stash_off >= u->stash_len / 2) {
			/* Moves no more than was delivered since the last move: linear in all. */
			memmove(u->stash, u->stash + u->stash_off, u->stash_len - u->stash_off);
			u->stash_len -= u->stash_off;
			u->stash_off = 0;
		}
		if (conn_unhold(r, c) || u->released || actor__conn_paused(c) ||
		    c->state != CONN_OPEN)
			return 0;
	}
	if (u->end_held) {
		u->end_held = false;
		actor__net_on_read_end(c, u->end_res);
		return 0;
	}
	/* Reading is wanted again: bytes of a receive still in flight are delivered, not stashed.
	 * Its cancel, if queued, either loses the race or ends it with -ECANCELED, and on_recv
	 * then submits a new one. */
	u->cancel_recv = false;
	if (c->reading)
		return 0;
	return submit_recv(r, c);
}

static void cancel_op(struct actor__reactor *r, void *obj, int op)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return;
	io_uring_prep_cancel64(sqe, tag(obj, op), 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_CANCEL));
}

static void ur_conn_pause(struct actor__reactor *r, struct actor__conn *c)
{
	struct uconn *u = uc(c);
	if (c->reading && u != NULL && !u->cancel_recv) {
		u->cancel_recv = true;
		cancel_op(r, c, OP_RECV);
	}
}

/* One chunk: a plain send. More: one sendmsg of up to SEND_IOV of them, as epoll's write does. */
static int submit_send(struct actor__reactor *r, struct actor__conn *c)
{
	struct actor__outbuf *b = c->out_head;
	struct uconn *u = uc(c);
	if (b->next != NULL && u != NULL && u->wv == NULL)
		u->wv = malloc(sizeof(*u->wv)); /* without it, a chunk at a time */
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	/* MSG_NOSIGNAL: a vanished peer is -EPIPE, never SIGPIPE. */
	if (b->next != NULL && u != NULL && u->wv != NULL) {
		struct uwrite *v = u->wv;
		v->mh = (struct msghdr){.msg_iov = v->iov};
		v->mh.msg_iovlen = (size_t)actor__net_iov(c, v->iov, SEND_IOV);
		io_uring_prep_sendmsg(sqe, c->fd, &v->mh, MSG_NOSIGNAL);
	} else {
		io_uring_prep_send(sqe, c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, tag(c, OP_SEND));
	c->inflight++;
	c->writing = true;
	return 0;
}

static int ur_conn_write(struct actor__reactor *r, struct actor__conn *c)
{
	if (c->writing || c->out_head == NULL)
		return 0;
	return submit_send(r, c);
}

static int ur_conn_connect(struct actor__reactor *r, struct actor__conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, tag(c, OP_POLL));
	c->inflight++;
	return 0;
}

static void free_uconn(struct actor__conn *c)
{
	struct uconn *u = uc(c);
	if (u != NULL) {
		free(u->stash);
		free(u->rbuf);
		free(u->wv);
		free(u);
		c->backend = NULL;
	}
}

static void ur_conn_release(struct actor__reactor *r, struct actor__conn *c)
{
	struct uconn *u = uconn_of(c);
	if (c->inflight == 0 || u == NULL) {
		free_uconn(c);
		actor__net_conn_released(c);
		return;
	}
	if (u->released)
		return;
	u->released = true;
	r->pending_releases++;
	if (c->reading)
		cancel_op(r, c, OP_RECV);
	if (c->writing)
		cancel_op(r, c, OP_SEND);
	if (c->state == CONN_CONNECTING)
		cancel_op(r, c, OP_POLL);
}

/* Drops the hold of one completed operation; frees a released connection on the last one
 * (then true: `c` is gone). */
static bool conn_unhold(struct actor__reactor *r, struct actor__conn *c)
{
	struct uconn *u = uc(c);
	if (--c->inflight == 0 && u != NULL && u->released) {
		r->pending_releases--;
		free_uconn(c);
		actor__net_conn_released(c);
		return true;
	}
	return false;
}

static bool released(struct actor__conn *c)
{
	return uc(c) != NULL && uc(c)->released;
}

/* Whether a receive should stay in flight: the owner wants input, or a close reads on to
 * discard it (net.c, conn_close_graceful). */
static bool wants_recv(struct actor__conn *c)
{
	return !released(c) &&
	       ((c->state == CONN_OPEN && !actor__conn_paused(c)) || c->state == CONN_CLOSING);
}

static void on_recv(struct actor__reactor *r, struct actor__conn *c, int res, unsigned flags)
{
	/* A multishot receive with more to come is still in flight (and still holds c). */
	c->reading = (flags & IORING_CQE_F_MORE) != 0;
	struct uconn *u = uc(c);
	if (res == -EINVAL && u != NULL && u->multishot) {
		r->multishot_recv = false; /* this kernel has no multishot receive */
		if (wants_recv(c))
			submit_recv(r, c);
		return;
	}
	const unsigned char *data = NULL;
	int bid = -1;
	if (res > 0) {
		if (flags & IORING_CQE_F_BUFFER) {
			bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
			data = r->bufs + (size_t)bid * BUF_SIZE;
		} else {
			data = u->rbuf;
		}
	}
	if (released(c)) {
		/* nothing to deliver to */
	} else if (res > 0 && c->state == CONN_OPEN && (actor__conn_paused(c) || u->cancel_recv)) {
		unsigned char *s = realloc(u->stash, u->stash_len + (size_t)res);
		if (s != NULL) {
			memcpy(s + u->stash_len, data, (size_t)res);
			u->stash = s;
			u->stash_len += (size_t)res;
		} else {
			/* Out of memory: the bytes cannot be kept, so the stream is broken; say so
			 * rather than deliver it with a hole in it. on_read_end clears `reading`,
			 * but a multishot receive may still be in flight (its cancel is, too). */
			actor__net_on_read_end(c, -ENOMEM);
			c->reading = (flags & IORING_CQE_F_MORE) != 0;
		}
	} else if (res > 0) {
		actor__net_on_data(c, data, (size_t)res); /* nothing, once CLOSING */
		if (wants_recv(c) && !c->reading)
			submit_recv(r, c);
	} else if (res == -ENOBUFS ||
	           (res == -ECANCELED && !actor__conn_paused(c) && !released(c))) {
		/* Out of provided buffers for a moment, or a stale cancel. */
		if (wants_recv(c) && !c->reading)
			submit_recv(r, c);
	} else if (res != -ECANCELED && u != NULL && u->stash != NULL && c->state == CONN_OPEN) {
		/* The peer's EOF, or a reset, comes after the bytes still stashed, as it would have
		 * without the pause. */
		u->end_held = true;
		u->end_res = res;
	} else if (res != -ECANCELED) {
		actor__net_on_read_end(c, res);
	}
	if (bid >= 0)
		recycle_buffer(r, (unsigned)bid);
	if (u != NULL && !c->reading)
		u->cancel_recv = false;
}

static void on_send(struct actor__reactor *r, struct actor__conn *c, int res)
{
	if (released(c)) {
		c->writing = false;
		return;
	}
	if (res < 0) {
		actor__net_on_sent(c, 0, res == -ECANCELED ? -EPIPE : res);
		return;
	}
	actor__net_on_sent(c, (size_t)res, 0);
	if (!released(c) && c->writing && c->out_head != NULL)
		submit_send(r, c);
}

static void on_poll(struct actor__conn *c, int res)
{
	if (released(c))
		return;
	int err = 0;
	socklen_t sl = sizeof(err);
	if (res < 0)
		err = -res;
	else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	actor__net_on_connected(c, -err);
}

/* ---------------------------------------------------------------------------------------------
 * Listening
 */

static int submit_accept(struct actor__reactor *r, struct actor__lsock *ls)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	if (r->multishot_accept)
		io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL,
		                               SOCK_NONBLOCK | SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, tag(ls, OP_ACCEPT));
	ls->inflight++;
	return 0;
}

static int ur_listen_start(struct actor__reactor *r, struct actor__lsock *ls)
{
	ls->armed = true;
	if (ls->inflight > 0)
		return 0; /* the previous accept is still being cancelled; its end re-arms */
	return submit_accept(r, ls);
}

static void ur_listen_pause(struct actor__reactor *r, struct actor__lsock *ls)
{
	ls->armed = false;
	if (ls->inflight > 0)
		cancel_op(r, ls, OP_ACCEPT);
}

static void ur_listen_release(struct actor__reactor *r, struct actor__lsock *ls)
{
	ls->armed = false;
	ls->closing = true;
	if (ls->inflight == 0) {
		actor__net_lsock_released(ls);
		return;
	}
	r->pending_releases++;
	/* The accept in flight holds the socket open until its cancelled completion comes back,
	 * which closes the socket and frees `ls` (actor__net_lsock_released); closing our
	 * descriptor before that would let a new socket reuse the number while a stale accept could
	 * still be submitted on it. Shutting the socket down now takes it out of the listening
	 * state at once, so that the port can be bound again (SO_REUSEADDR) as soon as
	 * actor_tcp_listener_close returns, as on epoll, however busy the ring is
	 * (a_closed_listeners_port_is_free_at_once_while_the_worker_is_busy). */
	shutdown(ls->fd, SHUT_RDWR);
	cancel_op(r, ls, OP_ACCEPT);
}

static void on_accept(struct actor__reactor *r, struct actor__lsock *ls, int res, unsigned flags)
{
	bool more = flags & IORING_CQE_F_MORE;
	if (res >= 0) {
		if (ls->closing)
			close(res);
		else
			actor__net_on_accept(ls, res, NULL, 0);
	} else if (res != -ECANCELED && !ls->closing) {
		actor__net_on_accept_error(ls, res);
	}
	if (more)
		return;
	if (--ls->inflight == 0 && ls->closing) {
		r->pending_releases--;
		actor__net_lsock_released(ls);
		return;
	}
	if (ls->armed && ls->inflight == 0)
		submit_accept(r, ls);
}

/* ---------------------------------------------------------------------------------------------
 * The loop
 */

static void dispatch(struct actor__reactor *r, struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	void *obj = (void *)(uintptr_t)(d & ~(uint64_t)OP_MASK);
	int op = (int)(d & OP_MASK);
	switch (op) {
	case OP_WAKE:
		arm_wake(r);
		return;
	case OP_CANCEL:
		return;
	case OP_ACCEPT:
		on_accept(r, obj, cqe->res, cqe->flags);
		return;
	}
	struct actor__conn *c = obj;
	if (op == OP_RECV) {
		on_recv(r, c, cqe->res, cqe->flags);
		if (cqe->flags & IORING_CQE_F_MORE)
			return; /* the multishot receive still holds c */
	} else if (op == OP_SEND)
		on_send(r, c, cqe->res);
	else if (op == OP_POLL)
		on_poll(c, cqe->res);
	conn_unhold(r, c);
}

/* Dispatches the completions the ring holds now, and no more; returns how many.
 *
 * No more: while a stream flows, the kernel keeps posting receive completions. A drain that
 * went on until the ring stayed empty (io_uring_peek_cqe enters the kernel when the ring is
 * empty but completions wait in its task work, and that runs the multishot receive again)
 * never returned while the stream was faster than the worker, and the actors its messages were
 * for never ran (a_fast_stream_keeps_reaching_its_actor). What waits is posted at the next
 * entry: the next poll (ur_wait enters when IORING_SQ_TASKRUN is set) or park. */
static int drain_completions(struct actor__reactor *r)
{
	unsigned ready = io_uring_cq_ready(&r->ring);
	int n = 0;
	/* One at a time: a handler may submit, and may itself need completion space. */
	while (ready-- > 0) {
		struct io_uring_cqe *cqe;
		/* The ring holds one, so this reads it without entering the kernel. */
		if (io_uring_peek_cqe(&r->ring, &cqe) != 0)
			break;
		struct io_uring_cqe copy = *cqe;
		io_uring_cqe_seen(&r->ring, cqe);
		dispatch(r, &copy);
		n++;
	}
	return n;
}

static int ur_wait(struct actor__reactor *r, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	int rc;
	if (timeout_ns == 0) {
		/* A poll: one entry that both submits and posts what completed, and none when there
		 * is nothing to submit and nothing waiting (IORING_SQ_TASKRUN unset, and no
		 * completions held back by a full ring: IORING_SQ_CQ_OVERFLOW). */
		rc = 0;
		if (io_uring_sq_ready(&r->ring) > 0 ||
		    (IO_URING_READ_ONCE(*r->ring.sq.kflags) &
		     (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
			rc = io_uring_submit_and_get_events(&r->ring);
	} else if (timeout_ns < 0) {
		rc = io_uring_submit_and_wait(&r->ring, 1);
	} else {
		struct __kernel_timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
		rc = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
	}
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
		return rc;
	/* Count what was dispatched, not what was ready before the entry: it may have posted
	 * completions whose task work was pending, and reporting 0 after dispatching them let the
	 * worker park with actors they had made runnable: a single request/response connection
	 * stalled for seconds (bench/echo.sh, c1). */
	return drain_completions(r);
}

static const struct actor__reactor_ops uring_ops = {
    .name = "io_uring",
    .init = ur_init,
    .fini = ur_fini,
    .caps = ur_caps,
    .wait = ur_wait,
    .listen_start = ur_listen_start,
    .listen_pause = ur_listen_pause,
    .listen_release = ur_listen_release,
    .conn_read = ur_conn_read,
    .conn_pause = ur_conn_pause,
    .conn_write = ur_conn_write,
    .conn_connect = ur_conn_connect,
    .conn_release = ur_conn_release,
};

const struct actor__reactor_ops *const actor__reactor_uring = &uring_ops;
