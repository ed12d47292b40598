/* net.h: the net service's objects and the functions its three files share: conn.c (a
 * connection's state machine over its watcher), listen.c (listeners and accepting) and msg.c
 * (the message side: events to owners, hand-offs, dead letters, the service table).
 *
 * Ownership (the rule everything here follows): a connection lives in one worker's table and
 * only that worker's thread touches it. Its owner is an actor living on the same worker, except
 * a freshly accepted connection, which is owned by its listener's owner (maybe elsewhere) and is
 * not read until handed off. A cross-worker hand-off travels as a MSG_TCP_ADOPT message to the
 * target, which lives on the connection's worker, so the claim also happens on that worker.
 */
#ifndef ACTOR_NET_H
#define ACTOR_NET_H

#include <netdb.h>
#include <sys/socket.h>

#include "reactor/reactor.h"
#include "services/net/frame.h"
#include "services/net/tls.h"
#include "services/services.h"

#define DATA_COUNTED 1u /* actor_tcp_data_t.reserved_: counted in `unhandled` (conn.c, msg.c) */

/* A hand-off to an actor on another worker (control block 0x11). */
#define MSG_TCP_ADOPT (ACTOR_MSG_SYSTEM + 0x110) /* payload: struct actor__adopt */

/* A MSG_TCP_ADOPT payload; the same size as the actor_tcp_event_t it is turned into. */
struct actor__adopt {
	actor_conn_t conn;
	actor_ref_t from;
};
_Static_assert(sizeof(struct actor__adopt) == sizeof(actor_tcp_event_t), "adopt is rewritten");

/* Output queue: a list of byte chunks, written in order. */
struct actor__outbuf {
	struct actor__outbuf *next;
	uint32_t len; /* bytes in data (a segment: bytes of the file to send) */
	uint32_t off; /* bytes already written */
	uint32_t cap; /* bytes allocated for data; 0: data holds a struct actor__outseg's bytes
	               * (not aligned for it: copied in and out) */
	unsigned char data[];
};

/* A file segment of the output queue: `len` bytes of `fd` from `offset`, sent with sendfile(2)
 * when it reaches the head. The queuer keeps `fd` open until `done` has run: once, on the
 * worker, with the bytes sent, or a negative errno (-EPIPE: the connection ended first). */
struct actor__outseg {
	int fd;
	int64_t offset;
	void (*done)(void *arg, int64_t res);
	void *arg;
};

enum actor__conn_state {
	CONN_PENDING,    /* accepted, not yet handed off: not read */
	CONN_RESOLVING,  /* connecting by name: looking it up, or between two addresses */
	CONN_CONNECTING, /* connect() in progress */
	CONN_OPEN,
	CONN_CLOSING, /* the owner closed it (flushing output, then close), or it was let go */
	CONN_FAILED,  /* broke (or failed to connect): no I/O; freed once the owner has been told */
};

/* Laid out by use: the watcher and what every read and write touches first, then the queue and
 * flow-control counts; the peer's address, read once, comes last. */
struct actor__conn {
	struct actor__watcher wt; /* wt.fd is the socket */
	uint32_t idx, gen;        /* the handle: see handle_of */
	struct actor_worker *w;
	struct actor__net *net;
	actor_ref_t owner;
	uint8_t state;
	bool owner_paused; /* the owner asked for no reads */
	bool throttled;    /* the owner is behind by more than read_limit bytes */
	bool rd_eof;       /* the peer's end was seen (or held, behind the stash) */
	bool wr_shut;      /* shutdown(SHUT_WR) requested once the queue drains */
	bool wr_shut_done;
	bool over_high; /* -ENOBUFS was reported: send DRAINED below low water */
	bool end_held;  /* the read ended while bytes were stashed: report it after them */
	bool rd_ended;  /* input refused (an overlong frame): nothing more is delivered */
	bool read_held; /* no reading before the owner has its ADOPTED or CONNECTED message */
	int end_res;    /* with end_held: 0 (the peer's end) or the read error */
	struct actor__outbuf *out_head, *out_tail;
	size_t queued; /* bytes in the output queue, not yet written */
	size_t high, low;
	size_t unhandled;  /* bytes in DATA messages the owner has not finished handling */
	size_t read_limit; /* throttle above this many unhandled bytes; 0: never */
	/* Bytes that arrived while reading was paused (a receive in flight when the pause was
	 * applied): delivered first on resume, so a pause loses and reorders nothing. */
	unsigned char *stash;
	size_t stash_len, stash_off;
	struct actor__framer *framer; /* NULL: no framing (frame.c) */
	uint64_t linger_deadline_ns;
	uint64_t ack_check_ns; /* a close with all its output in the kernel: when to look whether
	                        * the peer has acknowledged it (conn.c); 0 while still writing */
	uint32_t ack_step_ns;  /* the wait before the next look after that one */
	uint32_t closing_pos;  /* 1 + index in the worker's lingering-close list, 0 if not in it */
	uint64_t lookup;       /* connecting by name: the lookup in flight, 0 if none */
	struct actor__dial *dial; /* connecting by name: the addresses left to try */
	/* TLS (tls.h; NULL: plain TCP). Plaintext written before the handshake ended waits in
	 * tls_pend (counted in `queued`); an outgoing connection's CONNECTED waits for the
	 * handshake (tls_connecting). */
	struct actor__tls_session *tls;
	unsigned char *tls_pend;
	size_t tls_pend_len;
	bool tls_connecting;
	uint32_t peer_len;
	struct sockaddr_storage peer;
};

/* A listening socket on one worker. A listener handle names a group of these (one, or one per
 * worker); each belongs to its worker and is touched only there. */
struct actor__lsock {
	struct actor__watcher wt;               /* wt.fd is the socket */
	struct actor__cmd start_cmd, close_cmd; /* posted to the socket's worker (no allocation) */
	struct actor_worker *w;
	struct actor__lgroup *group;
	bool open;                 /* started on its worker and not closed */
	uint64_t backoff_ns;       /* current EMFILE back-off, 0 when accepting normally */
	uint64_t resume_ns;        /* when to accept again after a back-off */
	struct actor__lsock *next; /* the worker's list of open listening sockets */
};

struct actor__lgroup {
	_Atomic uint32_t refs; /* one per socket still open, one for the owner's handle */
	actor_ref_t owner;
	uint64_t handle;
	uint16_t port;
	unsigned nsocks;
	actor_tls_t *tls; /* a reference; NULL: plain TCP */
	struct actor__lsock socks[];
};

/* The service's state on one worker. */
struct actor__net {
	struct actor_worker *w;
	struct actor__table conns;   /* this worker's connections */
	struct actor__table lgroups; /* listeners opened by actors living here */
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

static inline struct actor__net *actor__net_of(struct actor_worker *w)
{
	return w->svc[SVC_NET];
}

/* conn.c */
struct actor__conn *actor__conn_new(struct actor__net *net, int fd, actor_ref_t owner,
                                    int state);
struct actor__conn *actor__conn_of(struct actor__net *net, actor_conn_t h);
actor_conn_t actor__conn_handle(const struct actor__conn *c);
int actor__conn_event(struct actor__conn *c, uint32_t type, int err);
void actor__conn_unlist(struct actor__conn *c);
/* Brings the watcher's interest in line with the state (reading, writing, connecting). */
void actor__conn_update(struct actor__conn *c);
void actor__conn_release(struct actor__conn *c);
/* Queues bytes as they go on the wire. */
int actor__conn_queue(struct actor__conn *c, const void *data, size_t len);
/* The owner's write: queued, or encrypted first. */
int actor__conn_write(struct actor__conn *c, const void *data, size_t len);
/* The end of the owner's output (shutdown or close): TLS's close_notify, after the queue. */
void actor__conn_output_end(struct actor__conn *c);
/* The owner's actor_tcp_shutdown: close_notify (TLS) and FIN once the queue is written. */
void actor__conn_shutdown(struct actor__conn *c);
/* The owner has its ADOPTED or CONNECTED: input a TLS session holds already goes to it. */
void actor__conn_input_resume(struct actor__net *net, actor_conn_t conn);
/* Queues a file segment of `len` (> 0) bytes after what is queued. 0 or -ENOMEM. */
int actor__conn_queue_seg(struct actor__conn *c, const struct actor__outseg *seg, uint32_t len);
/* The owner's (ctx's) open connection `conn`, checked as actor_tcp_write does, takes a file
 * segment (above); with `len` 0 it is only checked, as an empty write is. -EOPNOTSUPP for a TLS
 * connection. */
int actor__tcp_queue_seg(actor_ctx_t *ctx, actor_conn_t conn, const struct actor__outseg *seg,
                         uint32_t len);
void actor__conn_set_paused(struct actor__conn *c, bool on);
void actor__conn_set_read_limit(struct actor__conn *c, size_t bytes);
void actor__net_spare_free(struct actor__net *net);
void actor__conn_close_graceful(struct actor__conn *c);
void actor__conn_abort(struct actor__conn *c);
void actor__conn_close_ran_out(struct actor__conn *c);
/* A CLOSED or CONNECTED message carrying an error reached its end: frees a failed conn. */
void actor__conn_delivered(struct actor__net *net, actor_conn_t conn);
/* The owner finished handling `len` bytes of DATA. */
void actor__conn_handled(struct actor__net *net, actor_conn_t conn, uint32_t len);
/* Resumes listeners and ends lingering closes that are due; returns the next deadline. */
uint64_t actor__conn_tick(struct actor__net *net, uint64_t now);
void actor__net_note_tick(struct actor__net *net, uint64_t when);
/* `tls` (maybe NULL) becomes the connection's on success. */
int actor__conn_connect_fd(struct actor__net *net, struct actor *a, int fd, bool done,
                           struct actor__tls_session *tls, actor_conn_t *out);
/* A connection to host:port by name, RESOLVING until the lookup answers; -ENOSYS without a
 * resolver. */
int actor__conn_connect_name(struct actor__net *net, struct actor *a, const char *host,
                             uint16_t port, struct actor__tls_session *tls, actor_conn_t *out);

/* Sends `len` bytes to the owner as one DATA message, counted in `unhandled`. */
void actor__conn_deliver(struct actor__conn *c, const void *data, size_t len);
/* The connection broke: the owner hears it; freed once it has. */
void actor__conn_fail(struct actor__conn *c, int err);

int actor__conn_set_framing(struct actor__conn *c, const actor_tcp_framing_t *f);

/* listen.c */
void actor__lsock_close(struct actor__net *net, struct actor__lsock *ls);
void actor__lgroup_close(struct actor__net *net, struct actor__lgroup *g);
uint64_t actor__listen_tick(struct actor__net *net, uint64_t now);
int actor__resolve(const char *host, uint16_t port, bool passive, struct addrinfo **out);
void actor__set_nodelay(int fd);

#endif /* ACTOR_NET_H */
