/* reactor.h: the interface every reactor backend implements, and the watcher, the one thing a
 * backend knows of the services that use it.
 *
 * One reactor per worker, used only by that worker's thread (except the wake eventfd). A backend
 * is a const table of operations (epoll.c: readiness; uring.c: completion). A service embeds a
 * watcher per descriptor: the descriptor, what it wants (`want`: read, write, accept, connect,
 * or only word that it is readable or writable) and a table of callbacks. Saying what it wants
 * only records the change (actor__watch_set queues the watcher on the reactor's change list);
 * the backend applies every recorded change in one batch at the start of its next `wait`, does
 * the system calls itself (for readiness, only the poll) and reports through the callbacks. A
 * backend never sees a connection or an actor.
 *
 * Lifetime: actor__watch_close asks the backend to let go; the backend calls `on_closed` once
 * no operation of its refers to the watcher (io_uring: after the cancelled ones have come
 * back), always from `wait` (or `settle`), never from inside actor__watch_close. Only then may
 * the service close the descriptor and free the watcher. After actor__watch_close no other
 * callback runs for that watcher.
 *
 * What a backend does and does not promise beyond that:
 *   - WATCH_WRITE: a service wants it only while it has bytes to send. The backend asks out_iov
 *     when the change is applied and after each on_written, and at no other time: a service
 *     that has more to send while WATCH_WRITE is still wanted need do nothing more.
 *   - A backend that cannot start an operation (no memory, no room to submit) reports it as
 *     that operation's error, with the interest cleared from `want`: WATCH_ACCEPT included.
 *   - Accepts and receives already in flight when their interest was dropped still report
 *     (the service keeps what they bring); after a close, nothing does: the backend closes a
 *     descriptor accepted meanwhile itself.
 *   - A wait whose applying of changes ran callbacks (writes done, failures, watchers let go)
 *     does not block: those may have made work for the worker.
 *
 * One-shot operations (struct actor__op, below) are the other thing a backend may see: a read,
 * write, fsync, open, close or statx with no watcher, for a service that wants a completion
 * rather than readiness (files). Only a completion backend offers them (`submit`; epoll leaves it
 * NULL and the service runs the call on a thread instead).
 *
 * The worker parks in `wait`: one blocking call covers I/O, the next deadline and wake-ups from
 * other threads: the backend watches the worker's eventfd (`evfd`), which wakers write. The
 * eventfd belongs to the worker and outlives the reactor, so a late waker never touches a freed
 * backend.
 */
#ifndef ACTOR_REACTOR_H
#define ACTOR_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* What a watcher can want. The first four have the backend do the I/O; the last two only
 * report readiness, for a service whose library does its own reads and writes (c-ares), and
 * are not combined with the first four on one watcher. */
enum actor__interest {
	WATCH_READ = 1,      /* receive; on_read reports each chunk, the end or an error */
	WATCH_WRITE = 2,     /* send what out_iov gives; on_written reports */
	WATCH_ACCEPT = 4,    /* accept connections (a listening socket); on_accept reports */
	WATCH_CONNECT = 8,   /* a connect() in progress; on_connect reports once */
	WATCH_READABLE = 16, /* tell when a read would not block; on_ready reports, nothing read */
	WATCH_WRITABLE = 32, /* tell when a write would not block; on_ready reports */
};

struct actor__watcher;

struct actor__watch_ops {
	/* WATCH_READ: n > 0 bytes were read into `data` (the backend's; valid during the call), or
	 * the peer's end (n == 0) or an error (n < 0, a negative errno); after those two the backend
	 * has cleared WATCH_READ from `want` and reads no more. Bytes may still arrive after
	 * WATCH_READ was dropped (a completion backend's receive in flight when the change is
	 * applied): the service keeps them, and no byte is ever lost or reordered. */
	void (*on_read)(struct actor__watcher *wt, const void *data, ssize_t n);
	/* WATCH_WRITE: fills up to `max` iovecs with the bytes to send next and returns how many (0:
	 * nothing to send now). The memory stays put until on_written reports on it. */
	int (*out_iov)(struct actor__watcher *wt, struct iovec *iov, int max);
	/* n >= 0 bytes of what out_iov gave were sent, or writing failed (n < 0; the backend has
	 * cleared WATCH_WRITE). The backend goes on while WATCH_WRITE is wanted and out_iov gives
	 * bytes; one send at a time. */
	void (*on_written)(struct actor__watcher *wt, ssize_t n);
	/* WATCH_WRITE, optional (NULL: none): called when out_iov gave nothing, for output the
	 * service sends itself (bytes that are not in memory: sendfile from a descriptor). It
	 * writes what the socket takes now without blocking, does its own accounting (no
	 * on_written follows) and returns > 0 (it wrote some: the backend asks out_iov again), 0
	 * (nothing to send), -EAGAIN (the socket is full: the backend calls again once it is
	 * writable) or another negative errno (writing failed: the backend clears WATCH_WRITE and
	 * reports it through on_written, as its own failures). */
	ssize_t (*out_direct)(struct actor__watcher *wt);
	/* WATCH_ACCEPT: a new connection's descriptor (non-blocking, close-on-exec) and, if the
	 * backend has it, the peer's address (NULL otherwise); or fd < 0, a negative errno. */
	void (*on_accept)(struct actor__watcher *wt, int fd, const struct sockaddr *peer,
	                  socklen_t peer_len);
	/* WATCH_CONNECT: the connect() ended: 0 or a negative errno. The backend has cleared
	 * WATCH_CONNECT from `want`. */
	void (*on_connect)(struct actor__watcher *wt, int err);
	/* WATCH_READABLE, WATCH_WRITABLE: `ready` > 0 is the mask of those wanted that the
	 * descriptor is ready for (an error or a hang-up counts as both: the service's own read or
	 * write then meets it). The backend reads and writes nothing. Level-triggered: a wait
	 * reports again while a wanted condition still holds, so the service reads or writes until
	 * it would block, or stops wanting it. `ready` < 0: the backend cannot watch the
	 * descriptor (a negative errno) and has cleared both from `want`. A readiness backend
	 * reports what its poll says (epoll: EPOLLIN, EPOLLOUT); a completion backend polls
	 * (io_uring: IORING_OP_POLL_ADD, armed again after each report while still wanted). */
	void (*on_ready)(struct actor__watcher *wt, int ready);
	/* After actor__watch_close: the backend has let go; the descriptor and the watcher are the
	 * service's again. */
	void (*on_closed)(struct actor__watcher *wt);
};

/* A one-shot operation (io_uring: IORING_OP_READ, WRITE, FSYNC, OPENAT, CLOSE, STATX). The
 * service owns it and everything it points at until `done` has run: from `wait`, once, with the
 * system call's result (>= 0, or a negative errno), after which the backend never touches it
 * again. An operation in flight is never cancelled: a service whose user is gone waits for it
 * and drops its result. */
enum actor__op_kind {
	REACTOR_OP_READ,  /* read(fd, buf, len) at offset */
	REACTOR_OP_WRITE, /* write(fd, buf, len) at offset */
	REACTOR_OP_FSYNC, /* fsync(fd), or fdatasync with REACTOR_OP_DATASYNC in flags */
	REACTOR_OP_OPEN,  /* openat(AT_FDCWD, path, flags, mode) */
	REACTOR_OP_CLOSE, /* close(fd) */
	REACTOR_OP_STATX, /* statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, buf) */
};
#define REACTOR_OP_DATASYNC 1
#define REACTOR_OP_AT_POSITION UINT64_MAX /* offset: the file's position, as read() and write() */

struct actor__op {
	uint8_t kind; /* enum actor__op_kind */
	int fd;
	int flags;
	unsigned mode;
	uint32_t len;
	uint64_t offset;
	void *buf;        /* READ, WRITE: the bytes; STATX: a struct statx */
	const char *path; /* OPEN */
	void (*done)(struct actor__op *op, int64_t res);
};

struct actor__watcher {
	int fd;
	uint8_t want;    /* the service's: WATCH_* wanted */
	uint8_t applied; /* the backend's: what it has armed or has in flight */
	bool queued;     /* on the reactor's change list */
	bool closed;     /* actor__watch_close was called */
	uint32_t holds;  /* the backend's: operations in flight that refer to the watcher */
	uint32_t be_flags; /* the backend's own bits */
	struct actor__watcher *next_change;
	const struct actor__watch_ops *ops;
	void *be; /* the backend's per-watcher state, if it needs any; freed before on_closed */
};

/* The part of every reactor the core and the services see; each backend's own struct begins
 * with it. */
struct actor__reactor {
	const struct actor__reactor_ops *ops;
	struct actor__watcher *changes; /* watchers whose `want` or close the next wait applies */
	uint32_t watchers;              /* opened and not yet on_closed */
	uint32_t closing;               /* closed and not yet on_closed */
	uint32_t oneshots;              /* one-shot operations submitted and not yet done */
	int evfd;                       /* the worker's wake eventfd */
	int uring_level;                /* enum actor__uring_level */
};

/* Capability bits a backend reports. */
#define REACTOR_CAP_COMPLETION 1u       /* I/O completes in the kernel (io_uring) */
#define REACTOR_CAP_MULTISHOT_ACCEPT 2u /* one submission accepts many connections */
#define REACTOR_CAP_PROVIDED_BUFFERS 4u /* receives pick buffers from a registered ring */

struct actor__reactor_ops {
	const char *name;
	/* Creates a reactor waking on `evfd`; negative errno when the backend is unavailable
	 * (-ENOSYS, -EPERM in many containers, ...). On the thread that will use it. */
	int (*init)(int evfd, int uring_level, struct actor__reactor **out);
	/* Every watcher has been closed and settled (actor__reactor_settle). */
	void (*fini)(struct actor__reactor *r);
	unsigned (*caps)(const struct actor__reactor *r);
	/* Applies the recorded changes, waits at most timeout_ns (0: poll, -1: no limit) for
	 * events, and dispatches them. Returns the number of events handled or a negative errno. */
	int (*wait)(struct actor__reactor *r, int64_t timeout_ns);
	/* Optional (NULL: none): queues a one-shot operation, submitted by the next `wait`, which
	 * also reports it done. 0, or a negative errno (-EBUSY: no room) and nothing queued. */
	int (*submit)(struct actor__reactor *r, struct actor__op *op);
};

extern const struct actor__reactor_ops actor__reactor_epoll;
extern const struct actor__reactor_ops *const actor__reactor_uring; /* NULL without liburing */

/* Chooses the backend: "epoll", "io_uring", "auto" or NULL (ACTOR_REACTOR, else auto). With
 * "auto", *fallback says that a worker whose io_uring cannot be created uses epoll instead.
 * *uring_level: the io_uring features to use, from ACTOR_IO_URING_FEATURES ("all" or unset,
 * "5.19", "basic"; any other value is -EINVAL). */
enum actor__uring_level {
	URING_ALL,   /* whatever the kernel has */
	URING_5_19,  /* as 5.19: COOP_TASKRUN, provided buffers, multishot accept, nothing newer */
	URING_BASIC, /* as before 5.19: no ring flags, no provided buffers, no multishot */
};
int actor__reactor_choose(const char *want, const struct actor__reactor_ops **out, bool *fallback,
                          enum actor__uring_level *uring_level);
/* Tests only: a backend to use instead of the chosen one (a scripted fake), or NULL. */
extern const struct actor__reactor_ops *actor__reactor_override;

/* ---------------------------------------------------------------------------------------------
 * Watchers (the service's side; worker thread only)
 */

/* Queues `wt` for the next wait to look at. */
static inline void actor__watch_queue(struct actor__reactor *r, struct actor__watcher *wt)
{
	if (!wt->queued) {
		wt->queued = true;
		wt->next_change = r->changes;
		r->changes = wt;
	}
}

/* Starts watching `fd` with `ops`; nothing is wanted yet. */
static inline void actor__watch_open(struct actor__reactor *r, struct actor__watcher *wt, int fd,
                                     const struct actor__watch_ops *ops)
{
	*wt = (struct actor__watcher){.fd = fd, .ops = ops};
	r->watchers++;
}

/* Wants `want` from now on (the next wait applies it). */
static inline void actor__watch_set(struct actor__reactor *r, struct actor__watcher *wt,
                                    unsigned want)
{
	if (wt->closed || wt->want == want)
		return;
	wt->want = (uint8_t)want;
	actor__watch_queue(r, wt);
}

/* Stops everything; on_closed follows from a later wait. */
static inline void actor__watch_close(struct actor__reactor *r, struct actor__watcher *wt)
{
	if (wt->closed)
		return;
	wt->closed = true;
	wt->want = 0;
	r->closing++;
	actor__watch_queue(r, wt);
}

/* Whether the worker should poll this reactor: a watcher is open or a change waits. */
static inline bool actor__reactor_busy(const struct actor__reactor *r)
{
	return r != NULL && (r->watchers > 0 || r->changes != NULL || r->oneshots > 0);
}

/* Waits (up to about a second) until every closed watcher has had its on_closed and every
 * one-shot operation is done: a service leaving at exit, after closing its watchers. */
void actor__reactor_settle(struct actor__reactor *r);

/* Backends: take the change list (the order of the changes is not kept; a backend clears
 * `queued` on each before applying it, and a callback may queue it again), and report a closed
 * watcher let go (on_closed runs, and the counts follow). */
static inline struct actor__watcher *actor__reactor_take_changes(struct actor__reactor *r)
{
	struct actor__watcher *list = r->changes;
	r->changes = NULL;
	return list;
}
static inline void actor__reactor_closed(struct actor__reactor *r, struct actor__watcher *wt)
{
	r->watchers--;
	r->closing--;
	wt->ops->on_closed(wt);
}

#endif /* ACTOR_REACTOR_H */
