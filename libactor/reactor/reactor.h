/* reactor.h: the interface every reactor backend implements, and the network objects that the
 * backends and net.c share.
 *
 * One reactor per worker, used only by that worker's thread (except `wake`). A backend is a
 * const table of operations (reactor_epoll.c: readiness; reactor_uring.c: completion). Backends
 * do the I/O system calls and report what happened through the actor__net_on_* callbacks, which
 * turn events into messages; a backend knows nothing of actors beyond those callbacks.
 *
 * The worker parks in `wait`: one blocking call covers I/O, the next timer deadline and wake-ups
 * from other threads: the backend watches the worker's eventfd (w->evfd), which wakers write.
 * The eventfd belongs to the worker and outlives the reactor, so a late waker never touches a
 * freed backend.
 */
#ifndef ACTOR_REACTOR_H
#define ACTOR_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct actor_worker;
struct actor__reactor;

/* Output queue: a list of byte chunks, written in order. */
struct actor__outbuf {
	struct actor__outbuf *next;
	uint32_t len; /* bytes in data */
	uint32_t off; /* bytes already written */
	uint32_t cap; /* bytes allocated for data */
	unsigned char data[];
};

enum actor__conn_state {
	CONN_PENDING,    /* accepted, not yet handed off: not read */
	CONN_CONNECTING, /* connect() in progress */
	CONN_OPEN,
	CONN_CLOSING, /* the owner closed it: flushing output, then close */
	CONN_FAILED,  /* broke (or failed to connect): no I/O; freed once the owner has been told */
};

/* Laid out by use: the first 64 bytes hold what every read and write touches, the next 64 the
 * queue and flow-control counts; the peer's address, read once, comes last. (jemalloc puts the
 * struct, 280 bytes, in its 320-byte class, whose blocks start on 64-byte boundaries.) */
struct actor__conn {
	int fd;
	uint32_t idx, gen;  /* the handle: see net.c */
	uint32_t ep_events; /* epoll: the events registered */
	struct actor_worker *w;
	actor_ref_t owner;
	uint8_t state;
	bool owner_paused; /* the owner asked for no reads */
	bool throttled;    /* the owner is behind by more than read_limit bytes */
	bool rd_eof;       /* the peer's FIN was seen */
	bool wr_shut;      /* shutdown(SHUT_WR) requested once the queue drains */
	bool wr_shut_done;
	bool over_high;    /* -ENOBUFS was reported: send DRAINED below low water */
	bool reading;      /* the backend is reading (armed or a receive in flight) */
	bool writing;      /* the backend is writing (armed or a send in flight) */
	bool dirty_flag;   /* on the worker's dirty list */
	bool registered;   /* epoll: the fd is in the epoll set */
	uint32_t inflight; /* io_uring: operations submitted and not completed */
	struct actor__conn *dirty_next;
	void *backend; /* io_uring: per-connection state */
	struct actor__outbuf *out_head, *out_tail;
	size_t queued; /* bytes in the output queue, not yet written */
	size_t high, low;
	size_t unhandled;  /* bytes in DATA messages the owner has not finished handling */
	size_t read_limit; /* throttle above this many unhandled bytes; 0: never */
	uint64_t linger_deadline_ns;
	uint64_t ack_check_ns; /* a close with all its output in the kernel: when to look whether
	                        * the peer has acknowledged it (net.c); 0 while still writing */
	uint32_t ack_step_ns;  /* the wait before the next look after that one */
	uint32_t closing_pos;  /* 1 + index in the worker's lingering-close list, 0 if not in it */
	uint32_t peer_len;
	struct sockaddr_storage peer;
};

/* No reads wanted: the owner paused the connection, or is behind by more than its read limit
 * (net.c). Data already read may still arrive (conn_pause below). */
static inline bool actor__conn_paused(const struct actor__conn *c)
{
	return c->owner_paused || c->throttled;
}

/* A listening socket on one worker. A listener handle names a group of these (one, or one per
 * worker); each belongs to its worker and is touched only there. */
struct actor__lsock {
	struct actor__cmd start_cmd, close_cmd; /* posted to the socket's worker (no allocation) */
	int fd;
	struct actor_worker *w;
	struct actor__lgroup *group;
	bool armed;                /* registered for accept events */
	bool closing;              /* io_uring: waiting for the multishot accept to end */
	uint64_t backoff_ns;       /* current EMFILE back-off, 0 when accepting normally */
	uint64_t resume_ns;        /* when to re-arm after a back-off */
	struct actor__lsock *next; /* the worker's list of open listening sockets */
	uint32_t inflight;
};

struct actor__lgroup {
	_Atomic uint32_t refs; /* one per socket still open, one for the owner's handle */
	actor_ref_t owner;
	uint64_t handle;
	uint16_t port;
	unsigned nsocks;
	struct actor__lsock socks[];
};

/* Capability bits a backend reports. */
#define REACTOR_CAP_COMPLETION 1u       /* I/O completes in the kernel (io_uring) */
#define REACTOR_CAP_MULTISHOT_ACCEPT 2u /* one submission accepts many connections */
#define REACTOR_CAP_PROVIDED_BUFFERS 4u /* receives pick buffers from a registered ring */

struct actor__reactor_ops {
	const char *name;
	/* Creates the reactor of worker `w`; negative errno when the backend is unavailable
	 * (-ENOSYS, -EPERM in many containers, ...). Worker thread or system creation. */
	int (*init)(struct actor_worker *w, struct actor__reactor **out);
	void (*fini)(struct actor__reactor *r);
	unsigned (*caps)(const struct actor__reactor *r);
	/* Waits at most timeout_ns (0: poll, -1: no limit) for events and dispatches them. Returns
	 * the number of events handled or a negative errno. */
	int (*wait)(struct actor__reactor *r, int64_t timeout_ns);

	/* Starts (or restarts) accepting: connections arrive through actor__net_on_accept. */
	int (*listen_start)(struct actor__reactor *r, struct actor__lsock *ls);
	/* Stops accepting for now (EMFILE back-off). */
	void (*listen_pause)(struct actor__reactor *r, struct actor__lsock *ls);
	/* Stops for good; calls actor__net_lsock_released once nothing refers to the socket. */
	void (*listen_release)(struct actor__reactor *r, struct actor__lsock *ls);

	/* Starts reading (or resumes): data arrives through actor__net_on_data. Called whenever
	 * reading is wanted, also while c->reading is still set: a pause whose receive is still in
	 * flight (completion backends) must then be undone, not left to stash what arrives. */
	int (*conn_read)(struct actor__reactor *r, struct actor__conn *c);
	/* Stops reading (pause). Data already read may still arrive. */
	void (*conn_pause)(struct actor__reactor *r, struct actor__conn *c);
	/* The output queue became non-empty: write it, reporting through actor__net_on_sent. */
	int (*conn_write)(struct actor__reactor *r, struct actor__conn *c);
	/* Waits for a connect() in progress; reports through actor__net_on_connected. */
	int (*conn_connect)(struct actor__reactor *r, struct actor__conn *c);
	/* Stops all I/O; calls actor__net_conn_released once no operation refers to the conn. */
	void (*conn_release)(struct actor__reactor *r, struct actor__conn *c);
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

/* Callbacks from the backends into net.c (worker thread only). */
void actor__net_on_accept(struct actor__lsock *ls, int fd, const struct sockaddr *peer,
                          socklen_t peer_len);
/* accept failed: -EMFILE/-ENFILE/-ENOBUFS/-ENOMEM make net.c back off (it calls listen_pause
 * and restarts later); others are ignored. */
void actor__net_on_accept_error(struct actor__lsock *ls, int err);
void actor__net_lsock_released(struct actor__lsock *ls);
/* Bytes read into a buffer the backend owns (copied before return). */
void actor__net_on_data(struct actor__conn *c, const void *data, size_t len);
/* 0: the peer's EOF; negative errno: the connection failed. */
void actor__net_on_read_end(struct actor__conn *c, int err);
/* `n` bytes of the output queue were written (n >= 0), or writing failed (err < 0). True if
 * the connection was released (a close that has nothing left to do; after a failure, maybe):
 * the backend's conn_release has run, and `c` is gone unless an operation holds it. */
bool actor__net_on_sent(struct actor__conn *c, size_t n, int err);
void actor__net_on_connected(struct actor__conn *c, int err);
void actor__net_conn_released(struct actor__conn *c);

/* Helpers both backends use. */
ssize_t actor__net_read_fd(struct actor__conn *c, void *buf, size_t len);
ssize_t actor__net_write_fd(struct actor__conn *c); /* writev of the queue head; -errno */
int actor__net_iov(struct actor__conn *c, struct iovec *iov, int max);

#endif /* ACTOR_REACTOR_H */
