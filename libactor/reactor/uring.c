/* uring.c: the completion backend on io_uring. The kernel accepts (multishot where it can),
 * receives (multishot where it can: one armed receive per watcher, not one submission per read)
 * into buffers picked from a ring the reactor provides, and sends (one send in flight per
 * watcher: what out_iov gives, a plain send for one iovec, a sendmsg of up to SEND_IOV
 * otherwise). `wait` applies the recorded changes, submits once per loop turn and reports
 * completions through the watchers' callbacks.
 *
 * Lifetime rule: every submitted operation holds its watcher (`holds`), a cancel included. A
 * closed watcher has what is in flight cancelled and is let go (on_closed) only when the last
 * completion has come back, so no completion ever points at freed memory.
 *
 * Dropping WATCH_READ cancels the receive in flight; what it had taken before the cancel landed
 * is delivered all the same (reactor.h: the service keeps it), so nothing is lost or reordered.
 * Wanting it again while the cancel is in flight forgets the cancel: the receive either goes on
 * or ends with -ECANCELED, and a new one is submitted then. Accepting pauses the same way.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reactor/reactor.h"

#define RING_ENTRIES 1024 /* submission queue; completions get twice that, and overflow safely */
#define BUF_COUNT 256     /* provided receive buffers per worker (a power of two) */
#define BUF_SIZE (16u << 10)
#define BUF_GROUP 0
#define SEND_IOV 8 /* iovecs per sendmsg */

/* user_data: the watcher's address with the operation in the low three bits. */
enum { OP_WAKE = 0, OP_ACCEPT, OP_RECV, OP_SEND, OP_POLL, OP_CANCEL, OP_READY, OP_ONESHOT };
enum { OP_MASK = 7 };
#define READINESS (WATCH_READABLE | WATCH_WRITABLE)
_Static_assert(_Alignof(struct actor__watcher) > OP_MASK, "the low bits of a watcher are free");
_Static_assert(_Alignof(struct actor__op) > OP_MASK, "the low bits of an operation are free");

/* be_flags. */
enum {
	UR_MULTISHOT = 1,     /* the receive in flight is multishot */
	UR_RECV_CANCEL = 2,   /* the receive in flight has a cancel queued, which ends it
	                       * even if reading is wanted again: one is enough */
	UR_ACCEPT_CANCEL = 4, /* a cancel of the accept in flight is queued */
	UR_CLOSING = 8,       /* closed: what was in flight has been cancelled */
	UR_READY_CANCEL = 16, /* a cancel of the readiness poll in flight is queued */
	UR_SEND_POLL = 32,    /* the "send" in flight is a poll for room after -EAGAIN */
};

struct uring_reactor {
	struct actor__reactor base;
	struct io_uring ring;
	uint64_t evbuf;
	bool multishot_accept;
	bool multishot_recv;          /* cleared if the kernel refuses it (before 6.0) */
	bool refuse_multishot_recv;   /* URING_5_19: have the kernel refuse it, as 5.19 would */
	struct io_uring_buf_ring *br; /* NULL: receive into per-watcher buffers instead */
	unsigned char *bufs;
	int apply_events; /* callbacks no completion counts: on_closed while applying, failures */
};

/* Per-watcher state (wt->be), allocated on first use: not every watcher needs it. The kernel
 * reads a sendmsg's header and vector no earlier than when the loop turn hands its submissions
 * over, after send_next has returned: both live here until the watcher is let go (which waits
 * for its operations to complete). */
struct uwatch {
	unsigned char *rbuf; /* without provided buffers */
	struct msghdr mh;
	struct iovec iov[SEND_IOV];
};

static const struct actor__reactor_ops uring_ops;

static struct uring_reactor *ur(struct actor__reactor *r)
{
	return (struct uring_reactor *)r;
}

static uint64_t tag(struct actor__watcher *wt, int op)
{
	return (uint64_t)(uintptr_t)wt | (uint64_t)op;
}

static struct io_uring_sqe *sqe_get(struct uring_reactor *r)
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

static int setup_buffers(struct uring_reactor *r)
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

static void recycle_buffer(struct uring_reactor *r, unsigned bid)
{
	io_uring_buf_ring_add(r->br, r->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
	                      (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(r->br, 1);
}

static void arm_wake(struct uring_reactor *r)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return;
	io_uring_prep_read(sqe, r->base.evfd, &r->evbuf, sizeof(r->evbuf), 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_WAKE));
}

static int init_ring(struct uring_reactor *r, unsigned flags, struct io_uring_params *p)
{
	*p = (struct io_uring_params){.flags = flags};
	return io_uring_queue_init_params(RING_ENTRIES, &r->ring, p);
}

/* Creates the ring with the newest flags `level` allows and the kernel takes. */
static int create_ring(struct uring_reactor *r, int level, struct io_uring_params *p)
{
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
	const unsigned defer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
	                       IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
	const unsigned coop =
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
	/* ACTOR_IO_URING_FEATURES: as an older kernel would. */
	unsigned flags = level == URING_5_19 ? coop : level == URING_BASIC ? 0 : defer;
	int rc = init_ring(r, flags, p);
	if (rc == -EINVAL && flags == defer) /* kernels before 6.1 lack DEFER_TASKRUN */
		rc = init_ring(r, flags = coop, p);
	if (rc == -EINVAL && flags == coop) /* kernels before 5.19 lack those flags */
		rc = init_ring(r, 0, p);
	return rc; /* -ENOSYS (old kernel), -EPERM (seccomp, sysctl), -ENOMEM (memlock) */
}

static bool probe_ok(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	bool ok = probe != NULL && io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
	          io_uring_opcode_supported(probe, IORING_OP_SEND) &&
	          io_uring_opcode_supported(probe, IORING_OP_SENDMSG) &&
	          io_uring_opcode_supported(probe, IORING_OP_RECV);
	io_uring_free_probe(probe);
	return ok;
}

static int ur_init(int evfd, int uring_level, struct actor__reactor **out)
{
	struct uring_reactor *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	struct io_uring_params p;
	int rc = create_ring(r, uring_level, &p);
	if (rc < 0) {
		free(r);
		return rc;
	}
	if (!probe_ok(&r->ring)) {
		io_uring_queue_exit(&r->ring);
		free(r);
		return -EOPNOTSUPP;
	}
	r->base.ops = &uring_ops;
	r->base.evfd = evfd; /* the worker's, blocking: the ring's read on it waits for a wake */
	r->base.uring_level = uring_level;
	/* Multishot accept arrived with 5.19, as did ring-provided buffers. */
	r->multishot_accept = uring_level != URING_BASIC && (p.features & IORING_FEAT_NODROP) &&
	                      setup_buffers(r) == 0;
	/* Multishot receive (6.0) needs provided buffers; a kernel without it says -EINVAL on
	 * the first one (on_recv), and single receives are used from then on. */
	r->multishot_recv = r->br != NULL && uring_level != URING_BASIC;
	r->refuse_multishot_recv = uring_level == URING_5_19;
	arm_wake(r);
	*out = &r->base;
	return 0;
}

/* Every watcher has been let go (actor__reactor_settle), so nothing in flight refers to one;
 * the wake read on the eventfd, which outlives us, is cancelled with the ring. */
static void ur_fini(struct actor__reactor *base)
{
	struct uring_reactor *r = ur(base);
	io_uring_queue_exit(&r->ring);
	if (r->br != NULL)
		munmap(r->br, BUF_COUNT * sizeof(struct io_uring_buf));
	free(r->bufs);
	free(r);
}

static unsigned ur_caps(const struct actor__reactor *base)
{
	const struct uring_reactor *r = (const struct uring_reactor *)base;
	return REACTOR_CAP_COMPLETION | (r->multishot_accept ? REACTOR_CAP_MULTISHOT_ACCEPT : 0) |
	       (r->br != NULL ? REACTOR_CAP_PROVIDED_BUFFERS : 0);
}

/* ---------------------------------------------------------------------------------------------
 * Submitting
 */

static struct uwatch *uwatch_of(struct actor__watcher *wt)
{
	if (wt->be == NULL)
		wt->be = calloc(1, sizeof(struct uwatch));
	return wt->be;
}

/* Queues `op` for `wt`: it holds the watcher until its last completion. */
static void submitted(struct io_uring_sqe *sqe, struct actor__watcher *wt, int op)
{
	io_uring_sqe_set_data64(sqe, tag(wt, op));
	wt->holds++;
}

static int submit_recv(struct uring_reactor *r, struct actor__watcher *wt)
{
	unsigned char *rbuf = NULL;
	if (r->br == NULL) {
		struct uwatch *u = uwatch_of(wt);
		if (u == NULL || (u->rbuf == NULL && (u->rbuf = malloc(BUF_SIZE)) == NULL))
			return -ENOMEM;
		rbuf = u->rbuf;
	}
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	wt->be_flags &= ~(uint32_t)UR_MULTISHOT;
	if (r->br != NULL && r->multishot_recv) {
		/* Stays armed: one completion per chunk received (IORING_CQE_F_MORE), until EOF,
		 * an error, a cancel, or the buffers running out. No submission per read. */
		io_uring_prep_recv_multishot(sqe, wt->fd, NULL, 0, 0);
		/* Without a buffer group the kernel refuses a multishot receive with -EINVAL, the
		 * answer a kernel without multishot receive gives: on_recv's fallback runs. */
		if (!r->refuse_multishot_recv)
			sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BUF_GROUP;
		wt->be_flags |= UR_MULTISHOT;
	} else if (r->br != NULL) {
		io_uring_prep_recv(sqe, wt->fd, NULL, BUF_SIZE, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BUF_GROUP;
	} else {
		io_uring_prep_recv(sqe, wt->fd, rbuf, BUF_SIZE, 0);
	}
	submitted(sqe, wt, OP_RECV);
	wt->applied |= WATCH_READ;
	return 0;
}

static int submit_accept(struct uring_reactor *r, struct actor__watcher *wt)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	if (r->multishot_accept)
		io_uring_prep_multishot_accept(sqe, wt->fd, NULL, NULL,
		                               SOCK_NONBLOCK | SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, wt->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	submitted(sqe, wt, OP_ACCEPT);
	wt->applied |= WATCH_ACCEPT;
	return 0;
}

/* A connect() in progress ends when the socket turns writable; SO_ERROR then tells how. */
static int submit_poll(struct uring_reactor *r, struct actor__watcher *wt)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, wt->fd, POLLOUT);
	submitted(sqe, wt, OP_POLL);
	wt->applied |= WATCH_CONNECT;
	return 0;
}

/* WATCH_READABLE, WATCH_WRITABLE: a one-shot poll for what is wanted now, armed again after each
 * report while still wanted, which makes it level-triggered as the interface promises: a
 * condition that still holds completes the new poll at once, and the next wait reports it.
 * `applied` keeps the bits the poll in flight was armed for. */
static int submit_ready(struct uring_reactor *r, struct actor__watcher *wt)
{
	unsigned want = wt->want & READINESS;
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, wt->fd,
	                       ((want & WATCH_READABLE) ? POLLIN : 0) |
	                           ((want & WATCH_WRITABLE) ? POLLOUT : 0));
	submitted(sqe, wt, OP_READY);
	wt->applied |= (uint8_t)want;
	return 0;
}

static bool submit_cancel(struct uring_reactor *r, struct actor__watcher *wt, int op)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return false;
	io_uring_prep_cancel64(sqe, tag(wt, op), 0);
	submitted(sqe, wt, OP_CANCEL);
	return true;
}

/* Submitting failed (no memory, no room in the ring): the service hears it as the operation's
 * error, with the interest dropped, so that nothing waits for an operation never submitted. */
static void report_failure(struct uring_reactor *r, struct actor__watcher *wt, unsigned what,
                           int err)
{
	wt->want &= (uint8_t)~what;
	if (what == WATCH_READ)
		wt->ops->on_read(wt, NULL, err);
	else if (what == WATCH_WRITE)
		wt->ops->on_written(wt, err);
	else if (what == WATCH_ACCEPT)
		wt->ops->on_accept(wt, err, NULL, 0);
	else if (what & READINESS)
		wt->ops->on_ready(wt, err);
	else
		wt->ops->on_connect(wt, err);
	r->apply_events++;
}

/* Each start_* submits what is wanted and not in flight; each may run a callback, after which
 * the watcher may be closed. */
static void start_read(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (!wt->closed && (wt->want & WATCH_READ) && !(wt->applied & WATCH_READ)) {
		int rc = submit_recv(r, wt);
		if (rc < 0)
			report_failure(r, wt, WATCH_READ, rc);
	}
}

static void start_accept(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (!wt->closed && (wt->want & WATCH_ACCEPT) && !(wt->applied & WATCH_ACCEPT)) {
		int rc = submit_accept(r, wt);
		if (rc < 0)
			report_failure(r, wt, WATCH_ACCEPT, rc);
	}
}

static void start_connect(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (!wt->closed && (wt->want & WATCH_CONNECT) && !(wt->applied & WATCH_CONNECT)) {
		int rc = submit_poll(r, wt);
		if (rc < 0)
			report_failure(r, wt, WATCH_CONNECT, rc);
	}
}

static void start_ready(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (!wt->closed && (wt->want & READINESS) && !(wt->applied & READINESS)) {
		int rc = submit_ready(r, wt);
		if (rc < 0)
			report_failure(r, wt, READINESS, rc);
	}
}

/* The socket had no room (a send's -EAGAIN: io_uring does not wait on a non-blocking socket,
 * and ours are; or out_direct's): a poll for room stands in for the send, under the same tag, so
 * that a close cancels it as it would the send; when it completes the send is tried again. */
static void wait_for_room(struct uring_reactor *r, struct actor__watcher *wt)
{
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL) {
		report_failure(r, wt, WATCH_WRITE, -EBUSY);
		return;
	}
	io_uring_prep_poll_add(sqe, wt->fd, POLLOUT);
	submitted(sqe, wt, OP_SEND);
	wt->applied |= WATCH_WRITE;
	wt->be_flags |= UR_SEND_POLL;
}

/* out_iov gave nothing: the service writes by itself (out_direct) until the socket is full,
 * then waits for room as a send would. True if it wrote some: the caller asks out_iov again.
 * io_uring has no sendfile; a splice would need a pipe per connection. */
static bool send_direct(struct uring_reactor *r, struct actor__watcher *wt)
{
	ssize_t d = wt->ops->out_direct(wt);
	if (wt->closed || !(wt->want & WATCH_WRITE) || d == 0)
		return false;
	if (d > 0)
		return true;
	if (d == -EAGAIN) {
		wait_for_room(r, wt);
		return false;
	}
	wt->want &= (uint8_t)~WATCH_WRITE;
	wt->ops->on_written(wt, d);
	return false;
}

/* Sends what out_iov gives next. One iovec: a plain send. More: one sendmsg of up to SEND_IOV,
 * its header and vector kept in the watcher's state (without that, an iovec at a time). Output
 * the service sends itself comes in between (send_direct): a loop asks again after it, not a
 * call per part, as a socket may take thousands of small parts at once. */
static void send_next(struct uring_reactor *r, struct actor__watcher *wt)
{
	struct iovec iov[SEND_IOV];
	int n;
	do {
		if (wt->closed || !(wt->want & WATCH_WRITE) || (wt->applied & WATCH_WRITE))
			return;
		n = wt->ops->out_iov(wt, iov, SEND_IOV);
	} while (n == 0 && wt->ops->out_direct != NULL && send_direct(r, wt));
	n = n < SEND_IOV ? n : SEND_IOV;
	size_t bytes = 0;
	for (int i = 0; i < n; i++)
		bytes += iov[i].iov_len;
	if (wt->closed || bytes == 0)
		return;
	struct uwatch *u = n > 1 ? uwatch_of(wt) : NULL;
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL) {
		report_failure(r, wt, WATCH_WRITE, -EBUSY);
		return;
	}
	/* MSG_NOSIGNAL: a vanished peer is -EPIPE, never SIGPIPE. */
	if (u != NULL) {
		memcpy(u->iov, iov, (size_t)n * sizeof(iov[0]));
		u->mh = (struct msghdr){.msg_iov = u->iov, .msg_iovlen = (size_t)n};
		io_uring_prep_sendmsg(sqe, wt->fd, &u->mh, MSG_NOSIGNAL);
	} else {
		io_uring_prep_send(sqe, wt->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
	}
	submitted(sqe, wt, OP_SEND);
	wt->applied |= WATCH_WRITE;
}

/* A one-shot operation (reactor.h): one SQE, its completion reported through op->done. */
static int ur_submit(struct actor__reactor *base, struct actor__op *op)
{
	struct uring_reactor *r = ur(base);
	struct io_uring_sqe *sqe = sqe_get(r);
	if (sqe == NULL)
		return -EBUSY;
	switch (op->kind) {
	case REACTOR_OP_READ:
		io_uring_prep_read(sqe, op->fd, op->buf, op->len, op->offset);
		break;
	case REACTOR_OP_WRITE:
		io_uring_prep_write(sqe, op->fd, op->buf, op->len, op->offset);
		break;
	case REACTOR_OP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd,
		                    (op->flags & REACTOR_OP_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
		break;
	case REACTOR_OP_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, op->path, op->flags, op->mode);
		break;
	case REACTOR_OP_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	case REACTOR_OP_STATX:
		io_uring_prep_statx(sqe, op->fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, op->buf);
		break;
	default:
		/* Give the slot back as a no-op that reports to nobody. */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, tag(NULL, OP_CANCEL));
		return -EINVAL;
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | OP_ONESHOT);
	r->base.oneshots++;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Applying the changes
 */

/* Frees the watcher's state and hands it back to the service. */
static void let_go(struct uring_reactor *r, struct actor__watcher *wt)
{
	struct uwatch *u = wt->be;
	if (u != NULL) {
		free(u->rbuf);
		free(u);
		wt->be = NULL;
	}
	wt->applied = 0;
	wt->be_flags = 0;
	actor__reactor_closed(&r->base, wt);
}

/* A closed watcher: cancels what is in flight (once), and lets go once nothing is. */
static void close_watcher(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (wt->holds == 0) {
		let_go(r, wt);
		r->apply_events++;
		return;
	}
	if (wt->be_flags & UR_CLOSING)
		return;
	wt->be_flags |= UR_CLOSING;
	if ((wt->applied & WATCH_READ) && !(wt->be_flags & UR_RECV_CANCEL))
		submit_cancel(r, wt, OP_RECV);
	if (wt->applied & WATCH_WRITE)
		submit_cancel(r, wt, OP_SEND);
	if (wt->applied & WATCH_CONNECT)
		submit_cancel(r, wt, OP_POLL);
	/* The accept in flight keeps a listening socket open until its cancelled completion is
	 * back; the service shuts the socket down first (listen.c), so that its port is free at
	 * once however busy the ring is. */
	if ((wt->applied & WATCH_ACCEPT) && !(wt->be_flags & UR_ACCEPT_CANCEL))
		submit_cancel(r, wt, OP_ACCEPT);
	if ((wt->applied & READINESS) && !(wt->be_flags & UR_READY_CANCEL))
		submit_cancel(r, wt, OP_READY);
}

/* A receive or an accept in flight that is no longer wanted is cancelled, once. What it
 * delivers meanwhile is still reported. */
static void cancel_unwanted(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (!(wt->want & WATCH_READ) && (wt->applied & WATCH_READ) &&
	    !(wt->be_flags & UR_RECV_CANCEL) && submit_cancel(r, wt, OP_RECV))
		wt->be_flags |= UR_RECV_CANCEL;
	if (!(wt->want & WATCH_ACCEPT) && (wt->applied & WATCH_ACCEPT) &&
	    !(wt->be_flags & UR_ACCEPT_CANCEL) && submit_cancel(r, wt, OP_ACCEPT))
		wt->be_flags |= UR_ACCEPT_CANCEL;
	/* A poll armed for other readiness than is wanted now: cancelled, and armed again for
	 * what is wanted when its completion is back. */
	unsigned armed = wt->applied & READINESS;
	if (armed != 0 && armed != (wt->want & READINESS) && !(wt->be_flags & UR_READY_CANCEL) &&
	    submit_cancel(r, wt, OP_READY))
		wt->be_flags |= UR_READY_CANCEL;
}

static void apply_watcher(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (wt->closed) {
		close_watcher(r, wt);
		return;
	}
	cancel_unwanted(r, wt);
	start_read(r, wt);
	send_next(r, wt);
	start_accept(r, wt);
	start_connect(r, wt);
	start_ready(r, wt);
	/* A callback that closed the watcher queued it again: the next pass lets go. */
}

/* Applies every recorded change, those that callbacks record meanwhile included. */
static void apply_changes(struct uring_reactor *r)
{
	struct actor__watcher *wt;
	while ((wt = actor__reactor_take_changes(&r->base)) != NULL) {
		while (wt != NULL) {
			struct actor__watcher *next = wt->next_change; /* wt may be gone after */
			wt->queued = false;
			apply_watcher(r, wt);
			wt = next;
		}
	}
}

/* ---------------------------------------------------------------------------------------------
 * Completions
 */

/* Drops the hold of one completed operation. A closed watcher is let go on the last one,
 * unless it waits on the change list: apply_watcher lets it go there, and it must not be freed
 * while the list points at it. */
static void unhold(struct uring_reactor *r, struct actor__watcher *wt)
{
	if (--wt->holds == 0 && wt->closed && !wt->queued)
		let_go(r, wt);
}

static void on_recv(struct uring_reactor *r, struct actor__watcher *wt, int res, unsigned flags)
{
	bool multishot = wt->be_flags & UR_MULTISHOT;
	if (!(flags & IORING_CQE_F_MORE)) { /* else a multishot receive is still in flight */
		wt->applied &= (uint8_t)~WATCH_READ;
		wt->be_flags &= ~(uint32_t)(UR_MULTISHOT | UR_RECV_CANCEL);
	}
	if (res == -EINVAL && multishot) {
		r->multishot_recv = false; /* this kernel has no multishot receive */
		start_read(r, wt);
		return;
	}
	int bid = -1;
	const unsigned char *data = NULL;
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
		data = r->bufs + (size_t)bid * BUF_SIZE;
	} else if (res > 0) {
		data = ((struct uwatch *)wt->be)->rbuf;
	}
	if (wt->closed) {
		/* nothing to deliver to */
	} else if (res > 0) {
		/* Also when WATCH_READ was dropped meanwhile: the service keeps the bytes. */
		wt->ops->on_read(wt, data, res);
	} else if (res != -ENOBUFS && res != -ECANCELED && res != -EAGAIN && res != -EINTR) {
		wt->want &= (uint8_t)~WATCH_READ; /* the peer's end, or an error */
		wt->ops->on_read(wt, NULL, res);
	}
	if (bid >= 0)
		recycle_buffer(r, (unsigned)bid);
	/* Out of provided buffers for a moment, a cancel that reading wanted again made stale, or
	 * a receive that ended: a new one if reading is (still) wanted. */
	start_read(r, wt);
}

static void on_send(struct uring_reactor *r, struct actor__watcher *wt, int res)
{
	wt->applied &= (uint8_t)~WATCH_WRITE;
	if (wt->be_flags & UR_SEND_POLL) {
		wt->be_flags &= ~(uint32_t)UR_SEND_POLL;
		if (!wt->closed)
			send_next(r, wt); /* room, or an error the send itself will report */
		return;
	}
	if (wt->closed)
		return;
	if (res == -EAGAIN) {
		wait_for_room(r, wt);
		return;
	}
	if (res < 0) {
		wt->want &= (uint8_t)~WATCH_WRITE;
		wt->ops->on_written(wt, res == -ECANCELED ? -EPIPE : res);
		return;
	}
	wt->ops->on_written(wt, res);
	send_next(r, wt);
}

static void on_accept(struct uring_reactor *r, struct actor__watcher *wt, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE)) {
		wt->applied &= (uint8_t)~WATCH_ACCEPT;
		wt->be_flags &= ~(uint32_t)UR_ACCEPT_CANCEL;
	}
	if (res >= 0 && wt->closed)
		close(res); /* accepted as the close was being applied: nobody to take it */
	else if (res >= 0 || (res != -ECANCELED && !wt->closed))
		wt->ops->on_accept(wt, res, NULL, 0);
	/* A single accept, a cancel that accepting wanted again made stale, or an error that
	 * ended the multishot one: a new one if accepting is (still) wanted. */
	start_accept(r, wt);
}

static void on_poll(struct actor__watcher *wt, int res)
{
	wt->applied &= (uint8_t)~WATCH_CONNECT;
	if (wt->closed || !(wt->want & WATCH_CONNECT))
		return;
	int err = 0;
	socklen_t sl = sizeof(err);
	if (res < 0)
		err = -res;
	else if (getsockopt(wt->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	wt->want &= (uint8_t)~WATCH_CONNECT;
	wt->ops->on_connect(wt, -err);
}

static void on_ready_done(struct uring_reactor *r, struct actor__watcher *wt, int res)
{
	wt->applied &= (uint8_t)~READINESS;
	wt->be_flags &= ~(uint32_t)UR_READY_CANCEL;
	if (wt->closed)
		return;
	if (res >= 0) {
		int ready = 0;
		if (res & (POLLIN | POLLERR | POLLHUP))
			ready |= wt->want & WATCH_READABLE;
		if (res & (POLLOUT | POLLERR | POLLHUP))
			ready |= wt->want & WATCH_WRITABLE;
		if (ready != 0)
			wt->ops->on_ready(wt, ready);
	} else if (res != -ECANCELED) {
		wt->want &= (uint8_t)~READINESS;
		wt->ops->on_ready(wt, res);
	}
	start_ready(r, wt);
}

static void dispatch(struct uring_reactor *r, const struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	struct actor__watcher *wt = (struct actor__watcher *)(uintptr_t)(d & ~(uint64_t)OP_MASK);
	switch (d & OP_MASK) {
	case OP_WAKE:
		arm_wake(r);
		return;
	case OP_ONESHOT: {
		struct actor__op *op = (struct actor__op *)(uintptr_t)(d & ~(uint64_t)OP_MASK);
		r->base.oneshots--;
		op->done(op, cqe->res); /* the operation is the service's from here */
		return;
	}
	case OP_RECV:
		on_recv(r, wt, cqe->res, cqe->flags);
		break;
	case OP_SEND:
		on_send(r, wt, cqe->res);
		break;
	case OP_ACCEPT:
		on_accept(r, wt, cqe->res, cqe->flags);
		break;
	case OP_POLL:
		on_poll(wt, cqe->res);
		break;
	case OP_READY:
		on_ready_done(r, wt, cqe->res);
		break;
	default: /* OP_CANCEL: only its hold to drop */
		if (wt == NULL)
			return; /* the no-op of a refused one-shot operation */
		break;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) /* else the multishot operation still holds wt */
		unhold(r, wt);
}

/* Dispatches the completions the ring holds now, and no more; returns how many.
 *
 * No more: while a stream flows, the kernel keeps posting receive completions. A drain that
 * went on until the ring stayed empty (io_uring_peek_cqe enters the kernel when the ring is
 * empty but completions wait in its task work, and that runs the multishot receive again)
 * never returned while the stream was faster than the worker, and the actors its messages were
 * for never ran (a_fast_stream_keeps_reaching_its_actor). What waits is posted at the next
 * entry: the next poll (ur_wait enters when IORING_SQ_TASKRUN is set) or park. */
static int drain_completions(struct uring_reactor *r)
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

static int ur_wait(struct actor__reactor *base, int64_t timeout_ns)
{
	struct uring_reactor *r = ur(base);
	r->apply_events = 0;
	apply_changes(r);
	/* on_closed (or a failure) ran: what it made runnable must not wait for a park to end. */
	if (r->apply_events > 0)
		timeout_ns = 0;
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
	return r->apply_events + drain_completions(r);
}

static const struct actor__reactor_ops uring_ops = {
    .name = "io_uring",
    .init = ur_init,
    .fini = ur_fini,
    .caps = ur_caps,
    .wait = ur_wait,
    .submit = ur_submit,
};

const struct actor__reactor_ops *const actor__reactor_uring = &uring_ops;
