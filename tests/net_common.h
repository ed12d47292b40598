/* net_common.h: what the network suites (test_net.c, test_net_flow.c) share: seeded byte
 * streams, the test's own plain-socket clients and servers, a server actor that hands each
 * connection to a fresh actor, the echo and flood connection actors, and many echo clients at
 * once. Include after common.h.
 */
#ifndef TESTS_NET_COMMON_H
#define TESTS_NET_COMMON_H

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define NET_MAX_WORKERS 8
#define CHUNK (64u << 10) /* bytes per write in the streaming actors and threads */
#define IO_TIMEOUT_S 20   /* socket timeouts of the test's own clients, before scaling */
#define TRANSFER_MB_DEFAULT 100
#define CONNS_DEFAULT 1000
#define CONN_BYTES_DEFAULT (32u << 10)

enum { MSG_GO = 1, MSG_RESUME, MSG_STOP };

#include "backend.h" /* the backend under test; failures seen inside behaviours */

static inline uint64_t stat_sum(actor_system_t *sys, size_t offset)
{
	uint64_t sum = 0;
	for (unsigned w = 0; w < actor_system_workers(sys); w++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
		uint64_t v;
		memcpy(&v, (const char *)&st + offset, sizeof(v));
		sum += v;
	}
	return sum;
}
#define STAT_SUM(sys, field) stat_sum((sys), offsetof(actor_worker_stats_t, field))

/* ---------------------------------------------------------------------------------------------
 * A seeded byte stream: byte p of stream `seed` is a function of (seed, p), so a sender and a
 * verifier agree without sharing anything but the seed.
 */

struct stream {
	uint64_t seed, pos;
};

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline void stream_fill(struct stream *s, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len;) {
		uint64_t w = mix64(s->seed * 0x100000001b3ull + s->pos / 8);
		for (unsigned k = (unsigned)(s->pos % 8); k < 8 && i < len; k++, i++, s->pos++)
			buf[i] = (unsigned char)(w >> (8 * k));
	}
}

/* Checks that `buf` continues the stream; returns the offset of the first wrong byte, or len. */
static inline size_t stream_check(struct stream *s, const unsigned char *buf, size_t len)
{
	unsigned char want[4096];
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);
		stream_fill(s, want, n);
		if (memcmp(want, buf + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (want[i] != buf[done + i])
					return done + i;
		}
		done += n;
	}
	return len;
}

/* ---------------------------------------------------------------------------------------------
 * Plain sockets for the test's own clients and servers
 */

static inline void set_io_timeouts(int fd, double seconds)
{
	double s = seconds * test_scale();
	struct timeval tv = {.tv_sec = (time_t)s, .tv_usec = (long)((s - (double)(time_t)s) * 1e6)};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The test's own blocking calls retry EINTR: whether the runtime may cause one is pinned by
 * its own test (system_creation_does_not_interrupt_the_callers_blocking_calls). */
static inline ssize_t recv_some(int fd, void *buf, size_t len)
{
	ssize_t n;
	while ((n = recv(fd, buf, len, 0)) < 0 && errno == EINTR)
		;
	return n;
}

/* A connect() interrupted by EINTR goes on in the background: wait for it, return its errno. */
static inline int connect_finish(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int rc;
	while ((rc = poll(&p, 1, (int)(IO_TIMEOUT_S * 1000 * test_scale()))) < 0 && errno == EINTR)
		;
	if (rc == 0)
		return ETIMEDOUT;
	int err = 0;
	socklen_t sl = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
	return err;
}

/* A blocking TCP socket connected to host:port (numeric), with I/O timeouts; -errno on error. */
static inline int tcp_client(const char *host, uint16_t port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int family;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		family = in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		family = in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_io_timeouts(fd, IO_TIMEOUT_S);
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno == EINTR ? connect_finish(fd) : errno;
		if (e != 0) {
			close(fd);
			return -e;
		}
	}
	return fd;
}

static inline int tcp_client_ok(uint16_t port)
{
	int fd = tcp_client("127.0.0.1", port);
	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%u: %s", port, strerror(-fd));
	return fd;
}

/* A listening plain socket on 127.0.0.1, any port. */
static inline int tcp_plain_listener(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, len), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static inline bool send_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads exactly len bytes; false on EOF, error or timeout. */
static inline bool recv_all(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Waits for the end of the peer's stream: 0 for EOF, -errno for an error (-EAGAIN: timeout),
 * 1 if bytes arrived instead (they are discarded, *extra counts them). */
static inline int recv_eof(int fd, size_t *extra)
{
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (extra != NULL)
			*extra += (size_t)n;
		else
			return 1;
	}
}

static inline unsigned count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	unsigned n = 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static inline void raise_nofile_to_hard(struct rlimit *old)
{
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, old), 0);
	struct rlimit r = *old;
	r.rlim_cur = r.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &r), 0);
}

/* ---------------------------------------------------------------------------------------------
 * The server: an acceptor actor that listens and hands every connection to a fresh actor of
 * the test's choosing, spawned on the connection's worker. Per-connection states start with a
 * struct conn_base.
 */

struct server;

struct conn_base {
	struct server *srv;
	actor_conn_t conn;
	unsigned worker; /* accepted->worker */
	bool framed;     /* framing on: a data message may carry an empty frame */
};

struct server {
	actor_listen_opts_t opts;
	actor_behavior_fn *conn_fn;
	size_t conn_size;
	void (*conn_destroy)(void *state); /* default: free */
	/* Optional: called on ACCEPTED before the hand-off, from the acceptor's behaviour. */
	void (*on_accepted)(actor_ctx_t *ctx, struct server *srv, const actor_tcp_accepted_t *a);
	void *user;

	actor_ref_t ref;
	actor_listener_t listener;
	atomic_int listen_rc;
	atomic_int ready;
	atomic_uint port;
	atomic_uint accepted, adopted, finished;
	atomic_uint by_worker[NET_MAX_WORKERS];
	atomic_uint_fast64_t last_conn_actor;
	/* The last accepted peer, published by `accepted` (release). */
	unsigned char peer[128];
	uint32_t peer_len;
};

static inline void acceptor_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct server *srv = state;
	if (msg->type == MSG_GO) {
		int rc = actor_tcp_listen(ctx, &srv->opts, &srv->listener);
		uint16_t port = 0;
		if (rc == 0)
			rc = actor_tcp_listener_port(ctx, srv->listener, &port);
		atomic_store(&srv->listen_rc, rc);
		atomic_store(&srv->port, port);
		atomic_store(&srv->ready, 1);
		return;
	}
	if (msg->type == MSG_STOP) {
		int rc = actor_tcp_listener_close(ctx, srv->listener);
		if (rc != 0)
			NOTE_FAIL("actor_tcp_listener_close: %d", rc);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type != ACTOR_MSG_TCP_ACCEPTED) {
		NOTE_FAIL("acceptor got message type %#x", msg->type);
		return;
	}
	actor_tcp_accepted_t a;
	if (msg->size != sizeof(a)) {
		NOTE_FAIL("ACCEPTED payload is %u bytes, expected %zu", msg->size, sizeof(a));
		return;
	}
	memcpy(&a, actor_msg_data(msg), sizeof(a));
	if (a.listener.id != srv->listener.id)
		NOTE_FAIL("ACCEPTED names listener %#" PRIx64 ", not %#" PRIx64, a.listener.id,
		          srv->listener.id);
	if (a.worker >= actor_system_workers(actor_ctx_system(ctx)) ||
	    a.worker >= NET_MAX_WORKERS) {
		NOTE_FAIL("ACCEPTED on worker %u", a.worker);
		return;
	}
	if (srv->on_accepted != NULL)
		srv->on_accepted(ctx, srv, &a);

	struct conn_base *b = calloc(1, srv->conn_size);
	b->srv = srv;
	b->conn = a.conn;
	b->worker = a.worker;
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED,
	                        .worker = a.worker,
	                        .destroy = srv->conn_destroy != NULL ? srv->conn_destroy : free};
	actor_ref_t ref;
	int rc = actor_spawn(actor_ctx_system(ctx), &o, srv->conn_fn, b, &ref);
	if (rc != 0) {
		free(b);
		NOTE_FAIL("spawn of a connection actor: %d", rc);
		return;
	}
	rc = actor_tcp_handoff(ctx, a.conn, ref);
	if (rc != 0)
		NOTE_FAIL("actor_tcp_handoff to worker %u: %d", a.worker, rc);
	atomic_store(&srv->last_conn_actor, ref.id);
	memcpy(srv->peer, a.peer, sizeof(srv->peer));
	srv->peer_len = a.peer_len;
	atomic_fetch_add(&srv->by_worker[a.worker], 1);
	/* release: publishes peer and last_conn_actor to the test thread */
	atomic_fetch_add_explicit(&srv->accepted, 1, memory_order_release);
}

/* Spawns the acceptor on worker 0 and waits until it listens; returns the port. */
static inline uint16_t server_start(actor_system_t *sys, struct server *srv)
{
	if (srv->opts.host == NULL)
		srv->opts.host = "127.0.0.1";
	srv->ref = spawn_on(sys, 0, acceptor_fn, srv);
	send_ok(sys, srv->ref, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&srv->ready), TEST_WATCHDOG), "listener never ready");
	int rc = atomic_load(&srv->listen_rc);
	ck_assert_msg(rc == 0, "[%s] actor_tcp_listen(%s): %d (%s)", reactor, srv->opts.host, rc,
	              strerror(-rc));
	uint16_t port = (uint16_t)atomic_load(&srv->port);
	ck_assert_uint_ne(port, 0);
	return port;
}

/* The checks every connection actor makes on every message. Returns the message's event (for
 * ADOPTED, CONNECTED, CLOSED and DRAINED) or fills *data (for DATA); false for a malformed
 * message, which has been noted. */
static inline bool conn_message(actor_ctx_t *ctx, struct conn_base *b, actor_msg_t *msg,
                                actor_tcp_event_t *ev, actor_tcp_data_t *data)
{
	if (actor_ctx_worker(ctx) != b->worker)
		NOTE_FAIL("connection actor runs on worker %u, its connection lives on %u",
		          actor_ctx_worker(ctx), b->worker);
	switch (msg->type) {
	case ACTOR_MSG_TCP_DATA:
		if (msg->size < sizeof(*data)) {
			NOTE_FAIL("DATA of %u bytes", msg->size);
			return false;
		}
		memcpy(data, actor_msg_data(msg), sizeof(*data));
		if (msg->size != sizeof(*data) + data->len || (data->len == 0 && !b->framed)) {
			NOTE_FAIL("DATA: size %u, len %u", msg->size, data->len);
			return false;
		}
		if (data->conn.id != b->conn.id) {
			NOTE_FAIL("DATA for conn %#" PRIx64 ", expected %#" PRIx64, data->conn.id,
			          b->conn.id);
			return false;
		}
		return true;
	case ACTOR_MSG_TCP_ADOPTED:
	case ACTOR_MSG_TCP_CONNECTED:
	case ACTOR_MSG_TCP_CLOSED:
	case ACTOR_MSG_TCP_DRAINED:
		if (msg->size != sizeof(*ev)) {
			NOTE_FAIL("event %#x of %u bytes", msg->type, msg->size);
			return false;
		}
		memcpy(ev, actor_msg_data(msg), sizeof(*ev));
		if (ev->conn.id != b->conn.id) {
			NOTE_FAIL("event %#x for conn %#" PRIx64 ", expected %#" PRIx64, msg->type,
			          ev->conn.id, b->conn.id);
			return false;
		}
		if (ev->worker != b->worker)
			NOTE_FAIL("event %#x says worker %u, expected %u", msg->type, ev->worker,
			          b->worker);
		if (msg->type == ACTOR_MSG_TCP_ADOPTED && b->srv != NULL)
			atomic_fetch_add(&b->srv->adopted, 1);
		return true;
	default:
		return true;
	}
}

/* ---------------------------------------------------------------------------------------------
 * The echo actor: writes back what it reads. Above high water it keeps the rest, pauses
 * reading and carries on at DRAINED. At the peer's EOF it closes once everything is written.
 */

struct echo_conn {
	struct conn_base b;
	unsigned char *pending;
	size_t npending, cap;
	bool paused, eof;
};

static inline void echo_destroy(void *state)
{
	struct echo_conn *e = state;
	free(e->pending);
	free(e);
}

static inline void echo_keep(struct echo_conn *e, const unsigned char *p, size_t len)
{
	if (e->npending + len > e->cap) {
		e->cap = (e->npending + len) * 2;
		e->pending = realloc(e->pending, e->cap);
	}
	memcpy(e->pending + e->npending, p, len);
	e->npending += len;
}

static inline void echo_finish(actor_ctx_t *ctx, struct echo_conn *e)
{
	actor_tcp_close(ctx, e->b.conn);
	atomic_fetch_add(&e->b.srv->finished, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static inline void echo_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct echo_conn *e = state;
	actor_tcp_event_t ev;
	actor_tcp_data_t d = {0}; /* set by conn_message for DATA; gcc cannot always tell */
	if (!conn_message(ctx, &e->b, msg, &ev, &d))
		return;
	int rc;
	switch (msg->type) {
	case ACTOR_MSG_TCP_DATA:
		if (e->npending > 0) {
			echo_keep(e, actor_tcp_data_bytes(msg), d.len);
			return;
		}
		rc = actor_tcp_write(ctx, e->b.conn, actor_tcp_data_bytes(msg), d.len);
		if (rc == -ENOBUFS) {
			echo_keep(e, actor_tcp_data_bytes(msg), d.len);
			if (!e->paused && (rc = actor_tcp_pause(ctx, e->b.conn)) != 0)
				NOTE_FAIL("actor_tcp_pause: %d", rc);
			e->paused = true;
		} else if (rc != 0) {
			NOTE_FAIL("echo: actor_tcp_write: %d", rc);
		}
		return;
	case ACTOR_MSG_TCP_DRAINED:
		if (e->npending == 0)
			return;
		rc = actor_tcp_write(ctx, e->b.conn, e->pending, e->npending);
		if (rc == -ENOBUFS)
			return;
		if (rc != 0)
			NOTE_FAIL("echo: actor_tcp_write after DRAINED: %d", rc);
		e->npending = 0;
		if (e->eof) {
			echo_finish(ctx, e);
			return;
		}
		if (e->paused && (rc = actor_tcp_resume(ctx, e->b.conn)) != 0)
			NOTE_FAIL("actor_tcp_resume: %d", rc);
		e->paused = false;
		return;
	case ACTOR_MSG_TCP_CLOSED:
		if (ev.error != 0) {
			NOTE_FAIL("echo: CLOSED with %d (%s)", ev.error, strerror(-ev.error));
			echo_finish(ctx, e);
			return;
		}
		e->eof = true;
		if (e->npending == 0)
			echo_finish(ctx, e);
		return;
	default:
		return;
	}
}

static inline void echo_server_init(struct server *srv)
{
	srv->conn_fn = echo_fn;
	srv->conn_size = sizeof(struct echo_conn);
	srv->conn_destroy = echo_destroy;
}

/* ---------------------------------------------------------------------------------------------
 * Many echo clients at once, in the test thread: every connection sends its own stream and
 * checks that it comes back.
 */

struct mconn {
	int fd;
	struct stream tx, rx;
	uint64_t sent, recvd;
	unsigned char stage[4096];
	size_t stage_off, stage_len;
};

struct mclients {
	struct mconn *c;
	unsigned n;
	uint64_t bytes; /* per connection */
	char err[256];
};

/* Connects n blocking-connect sockets; false (with mc->err) on the first failure. */
static inline bool mclients_connect(struct mclients *mc, const char *host, uint16_t port,
                                    unsigned n, uint64_t bytes)
{
	mc->c = calloc(n, sizeof(*mc->c));
	mc->n = 0;
	mc->bytes = bytes;
	for (unsigned i = 0; i < n; i++) {
		int fd = tcp_client(host, port);
		if (fd < 0) {
			snprintf(mc->err, sizeof(mc->err), "connect %u of %u: %s", i, n,
			         strerror(-fd));
			return false;
		}
		mc->c[i] = (struct mconn){.fd = fd, .tx = {i + 1, 0}, .rx = {i + 1, 0}};
		mc->n++;
	}
	return true;
}

static inline void mclients_close(struct mclients *mc)
{
	for (unsigned i = 0; i < mc->n; i++)
		if (mc->c[i].fd >= 0)
			close(mc->c[i].fd);
	free(mc->c);
	mc->c = NULL;
}

static inline bool mconn_send(struct mclients *mc, struct mconn *c)
{
	while (c->sent < mc->bytes) {
		if (c->stage_off == c->stage_len) {
			uint64_t left = mc->bytes - c->sent;
			c->stage_len = left < sizeof(c->stage) ? (size_t)left : sizeof(c->stage);
			c->stage_off = 0;
			stream_fill(&c->tx, c->stage, c->stage_len);
		}
		ssize_t n = send(c->fd, c->stage + c->stage_off, c->stage_len - c->stage_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n < 0) {
			snprintf(mc->err, sizeof(mc->err), "send: %s", strerror(errno));
			return false;
		}
		c->stage_off += (size_t)n;
		c->sent += (uint64_t)n;
	}
	return true;
}

static inline bool mconn_recv(struct mclients *mc, struct mconn *c, unsigned i)
{
	unsigned char buf[16384];
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0) {
			snprintf(mc->err, sizeof(mc->err),
			         "conn %u: %s after %" PRIu64 " of %" PRIu64 " bytes", i,
			         n == 0 ? "EOF" : strerror(errno), c->recvd, mc->bytes);
			return false;
		}
		size_t ok = stream_check(&c->rx, buf, (size_t)n);
		if (ok != (size_t)n || c->recvd + (uint64_t)n > mc->bytes) {
			snprintf(mc->err, sizeof(mc->err), "conn %u: wrong byte at offset %" PRIu64,
			         i, c->recvd + ok);
			return false;
		}
		c->recvd += (uint64_t)n;
	}
}

/* Runs every connection's exchange to the end; false (with mc->err) on an error or timeout.
 * Each connection is closed as soon as its whole stream has come back. */
static inline bool mclients_exchange(struct mclients *mc, double seconds)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	unsigned done = 0;
	for (unsigned i = 0; i < mc->n; i++) {
		struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
		epoll_ctl(ep, EPOLL_CTL_ADD, mc->c[i].fd, &e);
	}
	double end = now_sec() + seconds * test_scale();
	bool ok = true;
	while (ok && done < mc->n) {
		if (now_sec() > end) {
			snprintf(mc->err, sizeof(mc->err), "%u of %u connections done in %.0f s",
			         done, mc->n, seconds * test_scale());
			ok = false;
			break;
		}
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 100);
		for (int j = 0; ok && j < k; j++) {
			unsigned i = evs[j].data.u32;
			struct mconn *c = &mc->c[i];
			if (c->fd < 0)
				continue;
			if (evs[j].events & EPOLLOUT) {
				ok = mconn_send(mc, c);
				if (ok && c->sent == mc->bytes) {
					struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
				}
			}
			if (ok && (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				ok = mconn_recv(mc, c, i);
			if (ok && c->recvd == mc->bytes) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				done++;
			}
		}
	}
	close(ep);
	return ok;
}

/* ---------------------------------------------------------------------------------------------
 * The flood actor
 */

/* Writes an endless stream of seed 3 as fast as back-pressure allows; reports how it ends. */
struct flood_conn {
	struct conn_base b;
	struct stream tx;
	unsigned char chunk[CHUNK];
	size_t chunk_len;
};

/* A client actor: connects to 127.0.0.1:port on MSG_GO and counts the bytes that arrive,
 * discarding them. */
struct holder {
	uint16_t port;
	bool no_read_limit; /* reads never wait for the holder (actor_tcp_set_read_limit 0) */
	actor_conn_t conn;
	atomic_int connect_error;
	atomic_int connected;
	atomic_uint_fast64_t bytes;
};

static inline void holder_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct holder *h = state;
	actor_tcp_event_t ev = {0};
	if (msg->type == MSG_GO) {
		int rc = actor_tcp_connect(ctx, "127.0.0.1", h->port, &h->conn);
		if (rc != 0)
			atomic_store(&h->connect_error, rc);
	} else if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		if (ev.error == 0 && h->no_read_limit)
			ev.error = actor_tcp_set_read_limit(ctx, h->conn, 0);
		atomic_store(&h->connect_error, ev.error);
		atomic_store(&h->connected, 1);
	} else if (msg->type == ACTOR_MSG_TCP_DATA) {
		actor_tcp_data_t d;
		memcpy(&d, actor_msg_data(msg), sizeof(d));
		atomic_fetch_add(&h->bytes, d.len);
	}
	/* CLOSED may come first, for instance if a shutdown stops the other side before us. */
}

struct flood_report {
	atomic_uint_fast64_t written;
	atomic_int enobufs;
	atomic_int closed;
	atomic_int closed_error;
	atomic_int write_after_close;
};

static inline void flood_write(actor_ctx_t *ctx, struct flood_conn *f)
{
	struct flood_report *r = f->b.srv->user;
	for (;;) {
		if (f->chunk_len == 0) {
			f->chunk_len = CHUNK;
			stream_fill(&f->tx, f->chunk, CHUNK);
		}
		int rc = actor_tcp_write(ctx, f->b.conn, f->chunk, f->chunk_len);
		if (rc == -ENOBUFS) {
			atomic_fetch_add(&r->enobufs, 1);
			return;
		}
		if (rc == -EPIPE)
			return; /* broken: CLOSED is on its way */
		if (rc != 0) {
			/* Neither closed by its owner nor reported CLOSED: still valid. */
			NOTE_FAIL("flood: actor_tcp_write: %d (%s) before CLOSED arrived", rc,
			          strerror(-rc));
			return;
		}
		atomic_fetch_add(&r->written, f->chunk_len);
		f->chunk_len = 0;
	}
}

static inline void flood_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct flood_conn *f = state;
	struct flood_report *r = f->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, &f->b, msg, &ev, &d))
		return;
	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED:
		f->tx.seed = 3;
		/* fall through */
	case ACTOR_MSG_TCP_DRAINED:
		flood_write(ctx, f);
		return;
	case ACTOR_MSG_TCP_CLOSED: {
		char byte = 0;
		atomic_store(&r->closed_error, ev.error);
		atomic_store(&r->write_after_close, actor_tcp_write(ctx, f->b.conn, &byte, 1));
		actor_tcp_close(ctx, f->b.conn);
		atomic_store(&r->closed, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	default:
		return;
	}
}

#endif /* TESTS_NET_COMMON_H */
