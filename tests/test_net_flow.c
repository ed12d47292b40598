/* test_net_flow.c: how connections end and how their flow is controlled, once per available
 * reactor backend: a peer reset in the middle of a write, EOF after all the data, a half-close
 * whose FIN follows the queued output, a slow reader that crosses the high-water mark with the
 * drained message after it, pause and resume, an owner slower than its peer held to its read
 * limit (and a reset behind the held-back data), all of these at random on eight streams, and
 * accept backing off on EMFILE.
 *
 * The binary holds one suite per backend ("net_flow-epoll", "net_flow-io_uring"), as
 * test_net.c does.
 */
#include "common.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include "net_common.h"

/* ---------------------------------------------------------------------------------------------
 * Resets, half-closes, back-pressure, pause
 */

START_TEST(peer_reset_during_a_large_write_arrives_as_closed_with_an_error)
{
	actor_system_t *sys = backend_system(2);
	struct flood_report rep = {0};
	struct server srv = {
	    .conn_fn = flood_fn, .conn_size = sizeof(struct flood_conn), .user = &rep};
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	unsigned char *buf = malloc(CHUNK);
	ck_assert(recv_all(fd, buf, CHUNK));
	struct stream rx = {3, 0};
	ck_assert_uint_eq(stream_check(&rx, buf, CHUNK), CHUNK);
	free(buf);
	/* The server is mid-write (its queue is full while we do not read); reset under it. */
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep.enobufs) > 0, TEST_WATCHDOG),
	              "the server never filled its queue");
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);

	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep.closed), TEST_WATCHDOG),
	              "[%s] the server never heard of the reset (%" PRIu64 " bytes written)",
	              reactor, (uint64_t)atomic_load(&rep.written));
	assert_no_failures();
	int err = atomic_load(&rep.closed_error);
	ck_assert_msg(err == -ECONNRESET || err == -EPIPE,
	              "[%s] CLOSED with %d (%s), expected -ECONNRESET or -EPIPE", reactor, err,
	              strerror(-err));
	int wr = atomic_load(&rep.write_after_close);
	ck_assert_msg(wr < 0, "[%s] a write after CLOSED returned %d", reactor, wr);
	assert_eventually(STAT_SUM(sys, conns) == 0, TEST_WATCHDOG);
	backend_system_end(sys, "a reset connection");
}
END_TEST

/* Collects what the peer sends; at CLOSED answers, if the connection still allows it. */
struct halfclose_report {
	unsigned char got[16384];
	atomic_uint_fast64_t bytes;
	atomic_int closed, closed_error;
	atomic_int adopted;
	atomic_int reply_rc;         /* peer-EOF test: the write after CLOSED(0) */
	atomic_int shutdown_rc;      /* shutdown test: actor_tcp_shutdown */
	atomic_int write_after_shut; /* shutdown test: a write after actor_tcp_shutdown */
	bool shut_first;             /* the shutdown test: write "hello" and shut down on ADOPTED */
};

struct halfclose_conn {
	struct conn_base b;
	uint64_t bytes;
};

#define HELLO "hello, then FIN"
#define REPLY "reply after your EOF"

static void halfclose_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct halfclose_conn *h = state;
	struct halfclose_report *r = h->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, &h->b, msg, &ev, &d))
		return;
	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED:
		if (r->shut_first) {
			int rc = actor_tcp_write(ctx, h->b.conn, HELLO, strlen(HELLO));
			if (rc != 0)
				NOTE_FAIL("write before shutdown: %d", rc);
			atomic_store(&r->shutdown_rc, actor_tcp_shutdown(ctx, h->b.conn));
			atomic_store(&r->write_after_shut, actor_tcp_write(ctx, h->b.conn, "x", 1));
		}
		atomic_store(&r->adopted, 1);
		return;
	case ACTOR_MSG_TCP_DATA:
		if (h->bytes + d.len <= sizeof(r->got))
			memcpy(r->got + h->bytes, actor_tcp_data_bytes(msg), d.len);
		h->bytes += d.len;
		atomic_store(&r->bytes, h->bytes);
		return;
	case ACTOR_MSG_TCP_CLOSED:
		atomic_store(&r->closed_error, ev.error);
		if (!r->shut_first && ev.error == 0)
			atomic_store(&r->reply_rc,
			             actor_tcp_write(ctx, h->b.conn, REPLY, strlen(REPLY)));
		actor_tcp_close(ctx, h->b.conn);
		atomic_store(&r->closed, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	default:
		return;
	}
}

START_TEST(peer_eof_arrives_as_closed_with_error_zero_after_all_its_data)
{
	actor_system_t *sys = backend_system(2);
	struct halfclose_report *rep = calloc(1, sizeof(*rep));
	atomic_store(&rep->reply_rc, 1);
	struct server srv = {
	    .conn_fn = halfclose_fn, .conn_size = sizeof(struct halfclose_conn), .user = rep};
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	unsigned char out[10000];
	struct stream tx = {4, 0};
	stream_fill(&tx, out, sizeof(out));
	ck_assert(send_all(fd, out, sizeof(out)));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	/* Whatever the server answers, then its FIN. */
	char in[64] = {0};
	size_t nin = 0;
	ssize_t n;
	while (nin < sizeof(in) - 1 && (n = recv_some(fd, in + nin, sizeof(in) - 1 - nin)) > 0)
		nin += (size_t)n;
	int end = n == 0 ? 0 : (n < 0 ? -errno : 1);

	/* The accepted peer is our socket. */
	struct sockaddr_in me;
	socklen_t melen = sizeof(me);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &melen), 0);
	close(fd);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep->closed), TEST_WATCHDOG), "no CLOSED");
	assert_no_failures();
	ck_assert_uint_eq(atomic_load_explicit(&srv.accepted, memory_order_acquire), 1);
	struct sockaddr_in peer;
	ck_assert_uint_eq(srv.peer_len, sizeof(peer));
	memcpy(&peer, srv.peer, sizeof(peer));
	ck_assert_int_eq(peer.sin_family, AF_INET);
	ck_assert_uint_eq(peer.sin_port, me.sin_port);
	ck_assert_uint_eq(peer.sin_addr.s_addr, me.sin_addr.s_addr);

	ck_assert_uint_eq(atomic_load(&rep->bytes), sizeof(out));
	ck_assert_msg(memcmp(rep->got, out, sizeof(out)) == 0, "bytes differ");
	ck_assert_int_eq(atomic_load(&rep->closed_error), 0);
	int reply = atomic_load(&rep->reply_rc);
	ck_assert_msg(end == 0, "[%s] after the reply: %d, expected EOF", reactor, end);
	if (reply == 0) {
		ck_assert_str_eq(in, REPLY);
	} else {
		/* The header leaves open whether a connection at peer EOF still takes writes. */
		fprintf(stderr, "[%s] NOTE: a write after CLOSED(0) returned %d\n", reactor, reply);
		ck_assert_int_eq(reply, -EPIPE);
		ck_assert_uint_eq(nin, 0);
	}
	backend_system_end(sys, "peer EOF");
	free(rep);
}
END_TEST

START_TEST(shutdown_sends_fin_after_the_queued_output_while_reading_goes_on)
{
	actor_system_t *sys = backend_system(2);
	struct halfclose_report *rep = calloc(1, sizeof(*rep));
	rep->shut_first = true;
	struct server srv = {
	    .conn_fn = halfclose_fn, .conn_size = sizeof(struct halfclose_conn), .user = rep};
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	char in[sizeof(HELLO)] = {0};
	ck_assert_msg(recv_all(fd, in, strlen(HELLO)), "[%s] no hello: %s", reactor,
	              strerror(errno));
	ck_assert_str_eq(in, HELLO);
	size_t extra = 0;
	ck_assert_msg(recv_eof(fd, &extra) == 0, "[%s] no FIN after the hello", reactor);
	ck_assert_uint_eq(extra, 0);
	ck_assert_int_eq(atomic_load(&rep->shutdown_rc), 0);
	int was = atomic_load(&rep->write_after_shut);
	ck_assert_msg(was < 0, "[%s] a write after actor_tcp_shutdown returned %d", reactor, was);

	/* Our direction is still open: the server reads on. */
	unsigned char out[5000];
	struct stream tx = {5, 0};
	stream_fill(&tx, out, sizeof(out));
	ck_assert(send_all(fd, out, sizeof(out)));
	assert_eventually(atomic_load(&rep->bytes) == sizeof(out), TEST_WATCHDOG);
	ck_assert_int_eq(atomic_load(&rep->closed), 0);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep->closed), TEST_WATCHDOG), "no CLOSED");
	close(fd);
	assert_no_failures();
	ck_assert_msg(memcmp(rep->got, out, sizeof(out)) == 0, "bytes differ");
	ck_assert_int_eq(atomic_load(&rep->closed_error), 0);
	backend_system_end(sys, "server half-close");
	free(rep);
}
END_TEST

/* Writes `total` bytes of seed 6 under back-pressure, checking the marks, then closes. */
struct slow_conn {
	struct conn_base b;
	struct stream tx;
	unsigned char chunk[CHUNK];
	size_t chunk_len;
	uint64_t sent;
	bool blocked;
};

struct slow_report {
	uint64_t total;
	atomic_uint_fast64_t sent;
	atomic_int enobufs, drained;
	atomic_int blocked;                     /* the last write got -ENOBUFS and no DRAINED yet */
	atomic_uint_fast64_t queued_at_enobufs; /* the smallest seen */
	atomic_uint_fast64_t queued_at_drained; /* the largest seen */
	atomic_int done;
};

static void slow_write(actor_ctx_t *ctx, struct slow_conn *s)
{
	struct slow_report *r = s->b.srv->user;
	while (s->sent < r->total) {
		if (s->chunk_len == 0) {
			uint64_t left = r->total - s->sent;
			s->chunk_len = left < CHUNK ? (size_t)left : CHUNK;
			stream_fill(&s->tx, s->chunk, s->chunk_len);
		}
		size_t before = 0, after = 0;
		actor_tcp_queued(ctx, s->b.conn, &before);
		int rc = actor_tcp_write(ctx, s->b.conn, s->chunk, s->chunk_len);
		actor_tcp_queued(ctx, s->b.conn, &after);
		if (rc == -ENOBUFS) {
			if (after != before)
				NOTE_FAIL("-ENOBUFS queued something: %zu -> %zu", before, after);
			if (before < atomic_load(&r->queued_at_enobufs))
				atomic_store(&r->queued_at_enobufs, before);
			atomic_fetch_add(&r->enobufs, 1);
			atomic_store(&r->blocked, 1);
			return;
		}
		if (rc != 0) {
			NOTE_FAIL("slow: actor_tcp_write: %d", rc);
			return;
		}
		if (after != before + s->chunk_len)
			NOTE_FAIL("a write of %zu took the queue from %zu to %zu", s->chunk_len,
			          before, after);
		s->sent += s->chunk_len;
		s->chunk_len = 0;
		atomic_store(&r->sent, s->sent);
	}
	actor_tcp_close(ctx, s->b.conn);
	atomic_store(&r->done, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void slow_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct slow_conn *s = state;
	struct slow_report *r = s->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, &s->b, msg, &ev, &d))
		return;
	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED:
		s->tx.seed = 6;
		slow_write(ctx, s);
		return;
	case ACTOR_MSG_TCP_DRAINED: {
		size_t q = 0;
		actor_tcp_queued(ctx, s->b.conn, &q);
		if (q > atomic_load(&r->queued_at_drained))
			atomic_store(&r->queued_at_drained, q);
		atomic_store(&r->blocked, 0);
		atomic_fetch_add(&r->drained, 1);
		slow_write(ctx, s);
		return;
	}
	case ACTOR_MSG_TCP_CLOSED:
		NOTE_FAIL("slow: CLOSED %d", ev.error);
		return;
	default:
		return;
	}
}

START_TEST(slow_reader_pushes_the_writer_over_high_water_and_drained_follows)
{
	actor_system_t *sys = backend_system(2);
	struct slow_report rep = {.total = 32u << 20};
	atomic_store(&rep.queued_at_enobufs, UINT64_MAX);
	struct server srv = {
	    .conn_fn = slow_fn, .conn_size = sizeof(struct slow_conn), .user = &rep};
	uint16_t port = server_start(sys, &srv);

	/* A small receive buffer, so that the kernel soaks up little of the stream. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rcvbuf = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	set_io_timeouts(fd, IO_TIMEOUT_S);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);

	/* Not reading: the writer must stall above high water. */
	double end = now_sec() + TEST_WATCHDOG * test_scale();
	uint64_t last = UINT64_MAX;
	bool stalled = false;
	while (!stalled && now_sec() < end && !atomic_load(&rep.done)) {
		uint64_t s = atomic_load(&rep.sent);
		stalled = s == last && atomic_load(&rep.blocked);
		last = s;
		sleep_ms(200);
	}
	int drained_before = atomic_load(&rep.drained);
	ck_assert_msg(stalled, "[%s] the writer never stalled (sent %" PRIu64 " of %" PRIu64 ")",
	              reactor, (uint64_t)atomic_load(&rep.sent), rep.total);

	/* Read it all: DRAINED follows, the writer finishes, every byte is right. */
	struct stream rx = {6, 0};
	unsigned char *buf = malloc(CHUNK);
	uint64_t got = 0, bad_at = UINT64_MAX;
	ssize_t n;
	while ((n = recv_some(fd, buf, CHUNK)) > 0) {
		size_t ok = stream_check(&rx, buf, (size_t)n);
		if (ok != (size_t)n && bad_at == UINT64_MAX)
			bad_at = got + ok;
		got += (uint64_t)n;
	}
	free(buf);
	close(fd);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep.done), TEST_WATCHDOG), "writer never done");
	assert_no_failures();
	ck_assert_msg(n == 0, "[%s] reading: %s", reactor, strerror(errno));
	ck_assert_msg(bad_at == UINT64_MAX, "[%s] wrong byte at offset %" PRIu64, reactor, bad_at);
	ck_assert_uint_eq(got, rep.total);
	ck_assert_int_gt(atomic_load(&rep.drained), drained_before);
	uint64_t qe = atomic_load(&rep.queued_at_enobufs), qd = atomic_load(&rep.queued_at_drained);
	ck_assert_msg(qe >= ACTOR_TCP_HIGH_WATER,
	              "[%s] -ENOBUFS with %" PRIu64 " bytes queued, below high water %u", reactor,
	              qe, ACTOR_TCP_HIGH_WATER);
	ck_assert_msg(qd <= ACTOR_TCP_LOW_WATER,
	              "[%s] DRAINED with %" PRIu64 " bytes queued, above low water %u", reactor, qd,
	              ACTOR_TCP_LOW_WATER);
	backend_system_end(sys, "a slow reader");
}
END_TEST

/* Pauses after the first PAUSE_AFTER bytes; resumes on MSG_RESUME. */
#define PAUSE_AFTER 4096
#define PAUSED_BYTES (256u << 10)

struct pause_conn {
	struct conn_base b;
	struct stream rx;
	uint64_t bytes;
	bool paused;
};

struct pause_report {
	atomic_int paused;
	atomic_uint_fast64_t bytes, while_paused;
	atomic_int pause_rc, resume_rc;
};

static void pause_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pause_conn *p = state;
	struct pause_report *r = p->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, &p->b, msg, &ev, &d))
		return;
	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED:
		p->rx.seed = 7;
		return;
	case ACTOR_MSG_TCP_DATA: {
		size_t ok = stream_check(&p->rx, actor_tcp_data_bytes(msg), d.len);
		if (ok != d.len)
			NOTE_FAIL("pause: wrong byte at offset %" PRIu64, p->bytes + ok);
		if (p->paused)
			atomic_fetch_add(&r->while_paused, d.len);
		p->bytes += d.len;
		atomic_store(&r->bytes, p->bytes);
		if (p->bytes == PAUSE_AFTER && !p->paused) {
			atomic_store(&r->pause_rc, actor_tcp_pause(ctx, p->b.conn));
			p->paused = true;
			atomic_store(&r->paused, 1);
		}
		return;
	}
	case MSG_RESUME:
		p->paused = false;
		atomic_store(&r->resume_rc, actor_tcp_resume(ctx, p->b.conn));
		return;
	case ACTOR_MSG_TCP_CLOSED:
		if (ev.error != 0)
			NOTE_FAIL("pause: CLOSED %d", ev.error);
		actor_tcp_close(ctx, p->b.conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	default:
		return;
	}
}

struct writer_thread {
	int fd;
	const unsigned char *buf;
	size_t len;
	bool ok;
};

static void *writer_main(void *arg)
{
	struct writer_thread *w = arg;
	w->ok = send_all(w->fd, w->buf, w->len);
	return NULL;
}

START_TEST(paused_connection_delivers_nothing_until_resumed)
{
	actor_system_t *sys = backend_system(2);
	struct pause_report rep = {0};
	struct server srv = {
	    .conn_fn = pause_fn, .conn_size = sizeof(struct pause_conn), .user = &rep};
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	size_t total = PAUSE_AFTER + PAUSED_BYTES;
	unsigned char *out = malloc(total);
	struct stream tx = {7, 0};
	stream_fill(&tx, out, total);
	ck_assert(send_all(fd, out, PAUSE_AFTER));
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep.paused), TEST_WATCHDOG), "never paused");
	ck_assert_int_eq(atomic_load(&rep.pause_rc), 0);

	/* Sent after the pause, from a thread: the kernel buffers may not take it all. */
	struct writer_thread wt = {.fd = fd, .buf = out + PAUSE_AFTER, .len = PAUSED_BYTES};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &wt), 0);
	sleep_ms(300);
	uint64_t leaked = atomic_load(&rep.while_paused);

	uint64_t conn_actor = atomic_load(&srv.last_conn_actor);
	send_ok(sys, (actor_ref_t){conn_actor}, MSG_RESUME, NULL, 0);
	bool all = WAIT_UNTIL(atomic_load(&rep.bytes) == total, TEST_WATCHDOG);
	pthread_join(th, NULL);
	close(fd);
	ck_assert_msg(leaked == 0,
	              "[%s] %" PRIu64 " bytes sent after the pause were delivered "
	              "before the resume",
	              reactor, leaked);
	ck_assert_msg(wt.ok, "client send failed");
	ck_assert_msg(all, "[%s] %" PRIu64 " of %zu bytes after the resume", reactor,
	              (uint64_t)atomic_load(&rep.bytes), total);
	ck_assert_int_eq(atomic_load(&rep.resume_rc), 0);
	assert_no_failures();
	free(out);
	backend_system_end(sys, "pause and resume");
}
END_TEST

/* Toggles reading on every DATA message: pause and resume in the same behaviour call on odd
 * messages, pause now and resume on the next turn (a message to itself) on even ones. */
#define TOGGLE_BYTES (8u << 20)
#define MSG_TOGGLE_RESUME 2

struct toggle_conn {
	struct conn_base b;
	struct stream rx;
	uint64_t bytes, msgs;
	bool paused;
};

struct toggle_report {
	atomic_uint_fast64_t bytes, msgs;
	atomic_int errors;
};

static void toggle_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct toggle_conn *t = state;
	struct toggle_report *r = t->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (msg->type == MSG_TOGGLE_RESUME) {
		if (actor_tcp_resume(ctx, t->b.conn) != 0)
			atomic_fetch_add(&r->errors, 1);
		t->paused = false;
		return;
	}
	if (!conn_message(ctx, &t->b, msg, &ev, &d))
		return;
	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED:
		t->rx.seed = 11;
		return;
	case ACTOR_MSG_TCP_DATA: {
		size_t ok = stream_check(&t->rx, actor_tcp_data_bytes(msg), d.len);
		if (ok != d.len)
			NOTE_FAIL("toggle: wrong byte at offset %" PRIu64, t->bytes + ok);
		t->bytes += d.len;
		atomic_store(&r->bytes, t->bytes);
		atomic_store(&r->msgs, ++t->msgs);
		if (t->paused)
			return; /* taken before the pause reached the reactor: allowed */
		if (actor_tcp_pause(ctx, t->b.conn) != 0)
			atomic_fetch_add(&r->errors, 1);
		if (t->msgs % 2 == 1) {
			if (actor_tcp_resume(ctx, t->b.conn) != 0)
				atomic_fetch_add(&r->errors, 1);
		} else {
			t->paused = true;
			if (actor_send(actor_ctx_system(ctx), actor_self(ctx), MSG_TOGGLE_RESUME,
			               NULL, 0) != 0)
				atomic_fetch_add(&r->errors, 1);
		}
		return;
	}
	case ACTOR_MSG_TCP_CLOSED:
		if (ev.error != 0)
			NOTE_FAIL("toggle: CLOSED %d", ev.error);
		actor_tcp_close(ctx, t->b.conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	default:
		return;
	}
}

/* A regression test: on io_uring, a resume in the same turn as the pause (the receive still in
 * flight, its cancel queued) left the connection marked as cancelling, so the next bytes were
 * stashed for a resume that had already happened, and reading stopped for good. */
START_TEST(pause_and_resume_in_quick_succession_lose_and_stall_nothing)
{
	actor_system_t *sys = backend_system(2);
	struct toggle_report rep = {0};
	struct server srv = {
	    .conn_fn = toggle_fn, .conn_size = sizeof(struct toggle_conn), .user = &rep};
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	unsigned char *out = malloc(TOGGLE_BYTES);
	struct stream tx = {11, 0};
	stream_fill(&tx, out, TOGGLE_BYTES);
	struct writer_thread wt = {.fd = fd, .buf = out, .len = TOGGLE_BYTES};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &wt), 0);
	bool all = WAIT_UNTIL(atomic_load(&rep.bytes) == TOGGLE_BYTES, TEST_WATCHDOG);
	shutdown(fd, SHUT_RDWR); /* unblocks the writer if reading stalled */
	pthread_join(th, NULL);
	close(fd);
	ck_assert_msg(all, "[%s] reading stalled: %" PRIu64 " of %u bytes in %" PRIu64 " messages",
	              reactor, (uint64_t)atomic_load(&rep.bytes), TOGGLE_BYTES,
	              (uint64_t)atomic_load(&rep.msgs));
	ck_assert_msg(wt.ok, "client send failed");
	ck_assert_int_eq(atomic_load(&rep.errors), 0);
	ck_assert_uint_gt(atomic_load(&rep.msgs), 2);
	assert_no_failures();
	free(out);
	backend_system_end(sys, "pause and resume toggling");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Running out of descriptors
 */

#define EMFILE_CLIENTS 8

static void counter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)msg;
	atomic_fetch_add((atomic_int *)state, 1);
}

/* The highest descriptor open now. */
static int highest_fd(void)
{
	int maxfd = 2;
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (atoi(de->d_name) > maxfd)
			maxfd = atoi(de->d_name);
	closedir(d);
	return maxfd;
}

START_TEST(accept_backs_off_on_emfile_and_serves_again_when_descriptors_free)
{
	/* The client sockets come first: connect() needs no new descriptor. */
	int cl[EMFILE_CLIENTS];
	for (int i = 0; i < EMFILE_CLIENTS; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(cl[i], 0);
		set_io_timeouts(cl[i], IO_TIMEOUT_S);
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	/* The low limit is in force before the listener exists: an io_uring accept takes the
	 * limit when it is submitted, so lowering it under an armed accept would not bite. */
	struct rlimit old, low;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)highest_fd() + 256;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);

	actor_system_t *sys = backend_system(2);
	struct server srv = {0};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);
	atomic_int pings = 0;
	actor_ref_t pinger = spawn_on(sys, 0, counter_fn, &pings); /* on the listener's worker */

	/* Fill the table: no descriptor left for accept. */
	int *fill = malloc(sizeof(int) * (size_t)low.rlim_cur);
	int nfill = 0, f;
	while ((f = dup(devnull)) >= 0)
		fill[nfill++] = f;
	int dup_errno = errno;

	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int connected = 0;
	for (int i = 0; i < EMFILE_CLIENTS; i++) {
		int rc = connect(cl[i], (struct sockaddr *)&a, sizeof(a));
		connected += rc == 0 || (errno == EINTR && connect_finish(cl[i]) == 0);
	}
	bool backed_off = WAIT_UNTIL(STAT_SUM(sys, accept_backoffs) > 0, TEST_WATCHDOG);

	/* While backed off: little CPU, and the worker still runs actors. */
	double w0 = now_sec(), c0 = cpu_sec();
	sleep_ms(300);
	double cpu = cpu_sec() - c0, wall = now_sec() - w0;
	int ping_rc = actor_send(sys, pinger, 1, NULL, 0);
	bool pinged = WAIT_UNTIL(atomic_load(&pings) == 1, TEST_WATCHDOG);
	unsigned adopted_while_low = atomic_load(&srv.adopted);

	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	free(fill);
	setrlimit(RLIMIT_NOFILE, &old);

	ck_assert_msg(dup_errno == EMFILE, "filling the table ended with %s", strerror(dup_errno));
	ck_assert_int_eq(connected, EMFILE_CLIENTS);
	ck_assert_msg(backed_off,
	              "[%s] no accept back-off counted (%u connections adopted with "
	              "the table full)",
	              reactor, atomic_load(&srv.adopted));
	ck_assert_msg(cpu < 0.1 + 0.2 * wall, "[%s] %.3f s of CPU in %.3f s while backed off",
	              reactor, cpu, wall);
	ck_assert_int_eq(ping_rc, 0);
	ck_assert_msg(pinged, "[%s] the listener's worker stopped running actors", reactor);
	ck_assert_uint_eq(adopted_while_low, 0);

	/* Descriptors are back: every waiting connection is served. */
	for (int i = 0; i < EMFILE_CLIENTS; i++) {
		char out[16], in[16];
		snprintf(out, sizeof(out), "client %d", i);
		ck_assert_msg(send_all(cl[i], out, sizeof(out)), "send %d", i);
		ck_assert_msg(recv_all(cl[i], in, sizeof(in)),
		              "[%s] client %d got no echo after the "
		              "descriptors came back",
		              reactor, i);
		ck_assert_str_eq(in, out);
		close(cl[i]);
	}
	close(devnull);
	ck_assert_uint_ge(STAT_SUM(sys, accepts), EMFILE_CLIENTS);
	assert_no_failures();
	fprintf(stderr, "[%s] EMFILE: %" PRIu64 " back-offs, %.1f ms CPU in %.0f ms\n", reactor,
	        STAT_SUM(sys, accept_backoffs), cpu * 1e3, wall * 1e3);
	backend_system_end(sys, "EMFILE back-off");
}
END_TEST

/* Regression: on io_uring the worker drained completions until the ring stayed empty, and each
 * time it ran dry the peek entered the kernel, which ran the multishot receive again: with a
 * stream arriving faster than the worker turned it into messages, the drain never ended, and
 * the actor the messages were for never ran (they piled up in its mailbox). Here a thread
 * streams as fast as loopback goes to a client actor, which must keep receiving. */
struct fast_writer {
	int lfd;
	atomic_int fd; /* the accepted connection, -1 before: the test thread shuts it down */
	atomic_int stop;
	uint64_t sent; /* the writer's alone until it is joined */
};

static void *fast_writer_main(void *arg)
{
	struct fast_writer *w = arg;
	int fd = accept(w->lfd, NULL, NULL);
	/* release: pairs with the acquire in the test thread, the number's only other user (it
	 * shuts the socket down while this thread may still send, and closes it after the join). */
	atomic_store_explicit(&w->fd, fd, memory_order_release);
	if (fd < 0)
		return NULL; /* the test shut the listener down: nobody connected */
	static unsigned char chunk[CHUNK];
	memset(chunk, 'f', sizeof(chunk));
	set_io_timeouts(fd, 0.2); /* a blocked send returns, to look at `stop` */
	while (!atomic_load(&w->stop)) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (n > 0)
			w->sent += (uint64_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break;
	}
	return NULL;
}

START_TEST(a_fast_stream_keeps_reaching_its_actor)
{
	const uint64_t want = 256u << 20;
	actor_system_t *sys = backend_system(1);
	struct fast_writer w = {.fd = -1};
	uint16_t port;
	w.lfd = tcp_plain_listener(&port);
	pthread_t thr;
	ck_assert_int_eq(pthread_create(&thr, NULL, fast_writer_main, &w), 0);
	/* No read limit: the stream must keep reaching the actor because the worker's loop comes
	 * back to it, not because reading stopped. */
	struct holder f = {.port = port, .no_read_limit = true};
	actor_ref_t a = spawn_on(sys, 0, holder_fn, &f);
	send_ok(sys, a, MSG_GO, NULL, 0);
	bool got = WAIT_UNTIL(atomic_load(&f.bytes) >= want || atomic_load(&f.connect_error) != 0,
	                      TEST_WATCHDOG);
	uint64_t bytes = atomic_load(&f.bytes);
	atomic_store(&w.stop, 1);
	/* Cuts the writer off at once rather than after its send's timeout; an accept still
	 * waiting (the actor never connected) ends with the listener's shutdown. A writer that
	 * accepts after the load below sees `stop` within its send's timeout. */
	int fd = atomic_load_explicit(&w.fd, memory_order_acquire);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	else
		shutdown(w.lfd, SHUT_RDWR);
	pthread_join(thr, NULL);
	ck_assert_int_eq(atomic_load(&f.connect_error), 0);
	ck_assert_msg(got, "[%s] the actor received %llu of the %llu bytes sent", reactor,
	              (unsigned long long)bytes, (unsigned long long)w.sent);
	printf("[%s] %llu MB streamed to an actor\n", reactor, (unsigned long long)(bytes >> 20));
	backend_system_end(sys, "fast stream");
	fd = atomic_load(&w.fd); /* again: the writer may have accepted after the load above */
	if (fd >= 0)
		close(fd);
	close(w.lfd);
}
END_TEST

/* An owner slower than its peer: a thread sends a seeded stream as fast as loopback takes it
 * to a client actor that sets a small read limit and sleeps over every message. Reading must
 * stop whenever more than the limit waits for the actor (one read past it at most: the one
 * that crossed it), and the stream must arrive whole. The actor also calls actor_tcp_resume
 * on every message, which must not lift the limit: pause and read limit are independent.
 * Without the limit, io_uring reads up to its 4 MiB of provided buffers per loop turn and the
 * backlog grows with the stream. */
#define SLOW_LIMIT (8u << 10) /* below every backend's read size: each read crosses it */
#define SLOW_TOTAL (16u << 20)
#define SLOW_SEED 23

struct slow_owner {
	uint16_t port;
	size_t limit;  /* the read limit it sets */
	long sleep_ns; /* over each data message */
	actor_conn_t conn;
	struct stream rx;
	atomic_int connect_error, closed;
	atomic_uint_fast64_t bytes;
	/* behaviour only until the actor has exited */
	uint64_t max_backlog;
	uint32_t max_msg;
	int rc;          /* the first failed call */
	int null_out_rc; /* actor_tcp_backlog with a NULL out */
	int closed_error;
};

static void slow_owner_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct slow_owner *o = state;
	actor_tcp_event_t ev;
	if (msg->type == MSG_GO) {
		int rc = actor_tcp_connect(ctx, "127.0.0.1", o->port, &o->conn);
		if (rc != 0)
			atomic_store(&o->connect_error, rc);
	} else if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		if (ev.error == 0)
			ev.error = actor_tcp_set_read_limit(ctx, o->conn, o->limit);
		atomic_store(&o->connect_error, ev.error);
		/* Slow from the start: the worker is busy while the first bytes come in. */
		nanosleep(&(struct timespec){0, o->sleep_ns}, NULL);
	} else if (msg->type == ACTOR_MSG_TCP_DATA) {
		actor_tcp_data_t d;
		memcpy(&d, actor_msg_data(msg), sizeof(d));
		size_t backlog = 0;
		int rc = actor_tcp_backlog(ctx, o->conn, &backlog);
		if (rc == 0)
			rc = actor_tcp_resume(ctx, o->conn);
		if (rc != 0 && o->rc == 0)
			o->rc = rc;
		if (backlog > o->max_backlog)
			o->max_backlog = backlog;
		if (d.len > o->max_msg)
			o->max_msg = d.len;
		uint64_t at = atomic_load(&o->bytes);
		size_t ok = stream_check(&o->rx, actor_tcp_data_bytes(msg), d.len);
		if (ok != d.len)
			NOTE_FAIL("slow owner: wrong byte at offset %" PRIu64, at + ok);
		atomic_store(&o->bytes, at + d.len);
		nanosleep(&(struct timespec){0, o->sleep_ns}, NULL);
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		o->closed_error = ev.error;
		o->null_out_rc = actor_tcp_backlog(ctx, o->conn, NULL);
		actor_tcp_close(ctx, o->conn);
		atomic_store(&o->closed, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

struct stream_sender {
	int lfd;
	uint64_t total;
	bool reset; /* end with a reset once the peer has acknowledged everything */
	bool ok;
};

/* Waits until the peer's kernel has acknowledged all we sent (at most the I/O timeout). */
static bool all_acked(int fd)
{
	for (int i = 0; i < IO_TIMEOUT_S * 1000; i++) {
		int unacked = 0;
		if (ioctl(fd, SIOCOUTQ, &unacked) != 0)
			return false;
		if (unacked == 0)
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

static void *stream_sender_main(void *arg)
{
	struct stream_sender *t = arg;
	int fd = accept(t->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	set_io_timeouts(fd, IO_TIMEOUT_S);
	struct stream tx = {.seed = SLOW_SEED};
	static unsigned char chunk[CHUNK];
	t->ok = true;
	for (uint64_t sent = 0; t->ok && sent < t->total; sent += CHUNK) {
		stream_fill(&tx, chunk, CHUNK);
		size_t n = t->total - sent < CHUNK ? (size_t)(t->total - sent) : CHUNK;
		t->ok = send_all(fd, chunk, n);
	}
	if (t->ok && t->reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		t->ok =
		    all_acked(fd) && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0;
	}
	close(fd);
	return NULL;
}

/* Runs a slow owner against a stream sender until the owner has had CLOSED, and stops the
 * system (the actor has exited: its fields are the test's to read). Returns the workers'
 * read_throttles. */
static uint64_t run_slow_owner(struct slow_owner *o, struct stream_sender *t)
{
	actor_system_t *sys = backend_system(1);
	t->lfd = tcp_plain_listener(&o->port);
	pthread_t thr;
	ck_assert_int_eq(pthread_create(&thr, NULL, stream_sender_main, t), 0);
	actor_ref_t a = spawn_on(sys, 0, slow_owner_fn, o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	bool done = WAIT_UNTIL(atomic_load(&o->closed) || atomic_load(&o->connect_error) != 0,
	                       TEST_WATCHDOG);
	pthread_join(thr, NULL);
	close(t->lfd);
	ck_assert_int_eq(atomic_load(&o->connect_error), 0);
	ck_assert_msg(done, "[%s] no CLOSED after %" PRIu64 " of %" PRIu64 " bytes", reactor,
	              (uint64_t)atomic_load(&o->bytes), t->total);
	ck_assert_msg(t->ok, "the sender could not send, or its data was never acknowledged");
	uint64_t throttles = STAT_SUM(sys, read_throttles);
	backend_system_end(sys, "slow owner");
	ck_assert_int_eq(o->rc, 0);
	assert_no_failures();
	return throttles;
}

START_TEST(a_slow_owner_stops_reading_at_its_read_limit)
{
	struct stream_sender t = {.total = SLOW_TOTAL};
	struct slow_owner o = {.limit = SLOW_LIMIT, .sleep_ns = 100000, .rx = {.seed = SLOW_SEED}};
	uint64_t throttles = run_slow_owner(&o, &t);
	ck_assert_int_eq(o.null_out_rc, -EINVAL);
	ck_assert_int_eq(o.closed_error, 0);
	ck_assert_uint_eq(atomic_load(&o.bytes), SLOW_TOTAL);
	printf("[%s] read limit %u: backlog at most %" PRIu64
	       " bytes (largest message %u), %" PRIu64 " throttles\n",
	       reactor, SLOW_LIMIT, o.max_backlog, o.max_msg, throttles);
	ck_assert_msg(o.max_backlog <= SLOW_LIMIT + o.max_msg,
	              "[%s] %" PRIu64 " bytes waited for the actor, read limit %u", reactor,
	              o.max_backlog, SLOW_LIMIT);
	ck_assert_uint_gt(throttles, 0);
}
END_TEST

/* The peer sends a few receive buffers' worth and resets the connection at once; the owner's
 * read limit stops reading after the first message. On io_uring the rest was already received
 * (held by the reactor until reading resumes), and the reset came behind it: it must still
 * come after those bytes, not overtake them and throw them away. */
START_TEST(a_reset_behind_held_back_data_arrives_after_that_data)
{
	struct stream_sender t = {.total = 3 * CHUNK / 4 /* within the first window */,
	                          .reset = true};
	/* The owner sleeps over CONNECTED too, while the data and the reset come in: the worker
	 * receives both in one go, as a busy worker would. */
	struct slow_owner o = {
	    .limit = SLOW_LIMIT, .sleep_ns = 200000000, .rx = {.seed = SLOW_SEED}};
	run_slow_owner(&o, &t);
	ck_assert_msg(atomic_load(&o.bytes) == t.total,
	              "[%s] CLOSED (%d) after %" PRIu64 " of the %" PRIu64 " bytes received",
	              reactor, o.closed_error, (uint64_t)atomic_load(&o.bytes), t.total);
	ck_assert_msg(o.closed_error == -ECONNRESET, "[%s] CLOSED with %d (%s)", reactor,
	              o.closed_error, strerror(-o.closed_error));
}
END_TEST

/* Everything at once, at random, on two workers: eight owners read seeded streams (4 MiB each,
 * written in random sizes, then FIN) while they pause and resume on timers, change their read
 * limits (none, 1 byte to 1 MiB), keep messages for a while and take their time. Every byte
 * must arrive once and in order, nothing new while paused (only what was already on its way
 * when the pause came), EOF after the last byte, and nothing left counted at the end. */
#define MIX_CONNS 8
#define MIX_TOTAL (4u << 20)
#define MIX_KEEP 4

struct mix_owner {
	uint16_t port;
	unsigned index;
	actor_conn_t conn;
	struct stream rx;
	uint64_t rnd, got;
	bool paused;
	uint64_t may_arrive; /* while paused: bytes already sent to us when we paused */
	actor_msg_t *kept[MIX_KEEP];
	unsigned nkept;
	atomic_int connecting, done;
};

static unsigned mix_rand(struct mix_owner *o, unsigned n)
{
	o->rnd = mix64(o->rnd);
	return (unsigned)(o->rnd % n);
}

static void mix_free_kept(struct mix_owner *o)
{
	for (unsigned i = 0; i < o->nkept; i++)
		actor_msg_free(o->kept[i]);
	o->nkept = 0;
}

static void mix_data(actor_ctx_t *ctx, struct mix_owner *o, actor_msg_t *msg)
{
	static const size_t limits[] = {0, 1, 4096, 16384, 100000, 1u << 20};
	actor_tcp_data_t d;
	memcpy(&d, actor_msg_data(msg), sizeof(d));
	size_t ok = stream_check(&o->rx, actor_tcp_data_bytes(msg), d.len);
	if (ok != d.len)
		NOTE_FAIL("mix %u: wrong byte at offset %" PRIu64, o->index, o->got + ok);
	o->got += d.len;
	size_t backlog = 0;
	if (actor_tcp_backlog(ctx, o->conn, &backlog) != 0 || backlog < d.len)
		NOTE_FAIL("mix %u: backlog %zu while handling %u bytes", o->index, backlog, d.len);
	if (o->paused) {
		if (d.len > o->may_arrive)
			NOTE_FAIL("mix %u: %u bytes read while paused", o->index, d.len);
		o->may_arrive -= d.len < o->may_arrive ? d.len : o->may_arrive;
	}
	actor_timer_t t;
	unsigned r = mix_rand(o, 100);
	if (r < 5) {
		if (!o->paused)
			o->may_arrive = backlog - d.len;
		o->paused = true;
		if (actor_tcp_pause(ctx, o->conn) != 0 ||
		    actor_timer_start(ctx, actor_self(ctx), 200000 + mix_rand(o, 1000000), 0, 0,
		                      &t) != 0)
			NOTE_FAIL("mix %u: pause or its timer failed", o->index);
	} else if (r < 15) {
		if (actor_tcp_set_read_limit(ctx, o->conn, limits[mix_rand(o, 6)]) != 0)
			NOTE_FAIL("mix %u: actor_tcp_set_read_limit failed", o->index);
	} else if (r < 20 && o->nkept < MIX_KEEP) {
		actor_msg_keep(ctx);
		o->kept[o->nkept++] = msg;
		if (actor_timer_start(ctx, actor_self(ctx), 100000, 0, 0, &t) != 0)
			NOTE_FAIL("mix %u: timer failed", o->index);
	}
	if (mix_rand(o, 4) == 0)
		nanosleep(&(struct timespec){0, 20000 + mix_rand(o, 50000)}, NULL);
}

static void mix_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct mix_owner *o = state;
	actor_tcp_event_t ev;
	size_t backlog = 1;
	switch (msg->type) {
	case MSG_GO:
		if (actor_tcp_connect(ctx, "127.0.0.1", o->port, &o->conn) != 0)
			NOTE_FAIL("mix %u: connect failed", o->index);
		atomic_store(&o->connecting, 1);
		return;
	case ACTOR_MSG_TCP_CONNECTED:
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		if (ev.error != 0 || actor_tcp_set_read_limit(ctx, o->conn, 4096) != 0)
			NOTE_FAIL("mix %u: CONNECTED %d", o->index, ev.error);
		return;
	case ACTOR_MSG_TIMER:
		if (o->paused) {
			o->paused = false;
			if (actor_tcp_resume(ctx, o->conn) != 0)
				NOTE_FAIL("mix %u: resume failed", o->index);
		}
		mix_free_kept(o);
		return;
	case ACTOR_MSG_TCP_DATA:
		mix_data(ctx, o, msg);
		return;
	case ACTOR_MSG_TCP_CLOSED:
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		actor_tcp_backlog(ctx, o->conn, &backlog);
		if (ev.error != 0 || o->got != MIX_TOTAL || backlog != 0)
			NOTE_FAIL("mix %u: CLOSED %d after %" PRIu64 " bytes, backlog %zu",
			          o->index, ev.error, o->got, backlog);
		mix_free_kept(o);
		actor_tcp_close(ctx, o->conn);
		atomic_store(&o->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	default:
		return;
	}
}

struct mix_sender {
	int fd;
	uint64_t seed;
	bool ok;
};

static void *mix_sender_main(void *arg)
{
	struct mix_sender *m = arg;
	struct stream tx = {.seed = m->seed};
	static _Thread_local unsigned char buf[50000];
	uint64_t r = m->seed;
	m->ok = true;
	for (uint64_t sent = 0; m->ok && sent < MIX_TOTAL;) {
		r = mix64(r);
		size_t n = 1 + (size_t)(r % sizeof(buf));
		n = n < MIX_TOTAL - sent ? n : (size_t)(MIX_TOTAL - sent);
		stream_fill(&tx, buf, n);
		m->ok = send_all(m->fd, buf, n);
		sent += n;
	}
	close(m->fd);
	return NULL;
}

START_TEST(random_pauses_read_limits_and_kept_messages_lose_nothing)
{
	actor_system_t *sys = backend_system(2);
	uint16_t port;
	int lfd = tcp_plain_listener(&port);
	static struct mix_owner owners[MIX_CONNS];
	struct mix_sender senders[MIX_CONNS];
	pthread_t thr[MIX_CONNS];
	for (unsigned i = 0; i < MIX_CONNS; i++) {
		owners[i] = (struct mix_owner){
		    .port = port, .index = i, .rnd = 1000 + i, .rx = {.seed = 500 + i}};
		actor_ref_t a = spawn_on(sys, i % 2, mix_fn, &owners[i]);
		send_ok(sys, a, MSG_GO, NULL, 0);
		/* One connect at a time: the i-th connection accepted is the i-th owner's, so both
		 * ends know its stream's seed. */
		ck_assert(WAIT_UNTIL(atomic_load(&owners[i].connecting), TEST_WATCHDOG));
		senders[i] = (struct mix_sender){.fd = accept(lfd, NULL, NULL), .seed = 500 + i};
		ck_assert_int_ge(senders[i].fd, 0);
		set_io_timeouts(senders[i].fd, IO_TIMEOUT_S);
	}
	for (unsigned i = 0; i < MIX_CONNS; i++)
		ck_assert_int_eq(pthread_create(&thr[i], NULL, mix_sender_main, &senders[i]), 0);
	bool done = true;
	for (unsigned i = 0; i < MIX_CONNS; i++)
		done = done && WAIT_UNTIL(atomic_load(&owners[i].done), TEST_WATCHDOG);
	for (unsigned i = 0; i < MIX_CONNS; i++) {
		pthread_join(thr[i], NULL);
		ck_assert_msg(senders[i].ok, "sender %u failed", i);
	}
	close(lfd);
	assert_no_failures();
	ck_assert_msg(done, "[%s] not every stream ended", reactor);
	printf("[%s] random mix: %u streams of %u bytes whole, %" PRIu64 " throttles\n", reactor,
	       MIX_CONNS, MIX_TOTAL, STAT_SUM(sys, read_throttles));
	backend_system_end(sys, "random mix");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutting down with output still queued
 */

#define BURST_BYTES (16u << 20) /* more than loopback's socket buffers hold unread */

/* Queues BURST_BYTES of seed 8 in one turn (the marks raised above that); 50 ms later, when
 * the kernel has taken what it will, notes what is still queued, then either closes the
 * connection and stops, or keeps it open for the shutdown to stop it. */
struct burst_report {
	bool keep_open;
	atomic_int done;
	atomic_int write_rc;
	atomic_uint_fast64_t queued_at_end; /* output still queued when the actor was done */
};

static void burst_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct conn_base *b = state;
	struct burst_report *r = b->srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		int rc = actor_tcp_set_watermarks(ctx, b->conn, 2 * BURST_BYTES, BURST_BYTES);
		static unsigned char chunk[CHUNK]; /* one burst per test, on one worker */
		struct stream tx = {8, 0};
		for (uint32_t sent = 0; rc == 0 && sent < BURST_BYTES; sent += CHUNK) {
			stream_fill(&tx, chunk, CHUNK);
			rc = actor_tcp_write(ctx, b->conn, chunk, CHUNK);
		}
		actor_timer_t t;
		if (rc == 0)
			rc = actor_timer_start(ctx, actor_self(ctx), 50000000u, 0, 0, &t);
		atomic_store(&r->write_rc, rc);
		if (rc != 0)
			atomic_store(&r->done, 1);
	} else if (msg->type == ACTOR_MSG_TIMER) {
		size_t q = 0;
		actor_tcp_queued(ctx, b->conn, &q);
		atomic_store(&r->queued_at_end, q);
		if (!r->keep_open) {
			actor_tcp_close(ctx, b->conn);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		atomic_store(&r->done, 1);
	}
}

/* Reads a socket to its end, checking the bytes against stream seed 8. */
struct drain_reader {
	int fd;
	pthread_t thread;
	uint64_t bytes;
	size_t bad_at; /* SIZE_MAX: every byte right */
	int end;       /* 0: EOF; -errno */
};

static void *drain_reader_main(void *arg)
{
	struct drain_reader *dr = arg;
	struct stream rx = {8, 0};
	static unsigned char buf[CHUNK];
	dr->bad_at = SIZE_MAX;
	for (;;) {
		ssize_t n = recv_some(dr->fd, buf, sizeof(buf));
		if (n <= 0) {
			dr->end = n == 0 ? 0 : -errno;
			return NULL;
		}
		size_t ok = stream_check(&rx, buf, (size_t)n);
		if (ok != (size_t)n && dr->bad_at == SIZE_MAX)
			dr->bad_at = dr->bytes + ok;
		dr->bytes += (uint64_t)n;
	}
}

/* A connection holding output nobody has read yet, on a system made with `cfg`; *fd is the
 * reading end, not read. Fails unless some of the output is still in libactor's queue (not
 * all in the kernel's buffers, which the reading end keeps small), which is what the tests
 * below are about. */
static actor_system_t *burst_start(actor_config_t cfg, struct server *srv, struct burst_report *rep,
                                   int *fd)
{
	actor_system_t *sys = backend_system_cfg(cfg);
	*srv = (struct server){
	    .conn_fn = burst_fn, .conn_size = sizeof(struct conn_base), .user = rep};
	uint16_t port = server_start(sys, srv);
	*fd = tcp_client_ok(port);
	int small = 64 << 10;
	ck_assert_int_eq(setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep->done), TEST_WATCHDOG), "[%s] no burst", reactor);
	ck_assert_int_eq(atomic_load(&rep->write_rc), 0);
	ck_assert_msg(atomic_load(&rep->queued_at_end) > 0,
	              "[%s] the kernel took all %u bytes: nothing left to test", reactor,
	              BURST_BYTES);
	return sys;
}

/* A regression test: a shutdown reset every connection still writing its output, closed by
 * its owner or by the owner's stop, at once, and the peer lost what was queued. And a close
 * read nothing more, so input arriving after it made the final close a reset too. */
START_TEST(output_queued_at_shutdown_is_written_before_the_connection_ends)
{
	for (int k = 0; k < 4; k++) {
		bool keep_open = k & 1, talk = k & 2;
		struct burst_report rep = {.keep_open = keep_open};
		struct server srv;
		struct drain_reader dr = {0};
		actor_system_t *sys =
		    burst_start((actor_config_t){.workers = 2}, &srv, &rep, &dr.fd);
		/* Nothing read before the shutdown starts: what arrives is the drain's. */
		ck_assert_int_eq(actor_system_shutdown(sys), 0);
		if (talk) {
			char hi[1024] = {0};
			ck_assert(send_all(dr.fd, hi, sizeof(hi)));
		}
		ck_assert_int_eq(pthread_create(&dr.thread, NULL, drain_reader_main, &dr), 0);
		system_run_to_end(sys, TEST_WATCHDOG, "shutdown with output queued");
		uint64_t cut = STAT_SUM(sys, closes_reset);
		actor_system_free(sys);
		pthread_join(dr.thread, NULL);
		close(dr.fd);
		assert_no_failures();
		char how[96];
		snprintf(how, sizeof(how), "%s, %" PRIu64 " bytes queued at the end%s",
		         keep_open ? "owner stopped by the shutdown" : "closed by its owner",
		         (uint64_t)atomic_load(&rep.queued_at_end),
		         talk ? ", the peer writing after it" : "");
		ck_assert_msg(dr.bytes == BURST_BYTES && dr.end == 0,
		              "[%s] %s: %" PRIu64 " of %u bytes, then %s", reactor, how, dr.bytes,
		              BURST_BYTES, dr.end == 0 ? "EOF" : strerror(-dr.end));
		ck_assert_msg(dr.bad_at == SIZE_MAX, "[%s] %s: byte %zu differs", reactor, how,
		              dr.bad_at);
		ck_assert_msg(cut == 0, "[%s] %s: %" PRIu64 " closes reset", reactor, how, cut);
	}
}
END_TEST

/* Regression: a close ended with close() as soon as its output was all in the kernel's send
 * queue, and input arriving after that made the kernel reset the connection and drop what it
 * still held, up to the socket's send buffer (megabytes): the output_queued test above once
 * saw 16,012,800 of its 16,777,216 bytes, then a reset. Here all of the output fits in the
 * kernel, and the actor closes once its queue in libactor is empty; the peer, whose small
 * receive buffer holds little of the output, writes after the close, and only then reads. It
 * must get everything, then EOF, and the close must end without waiting for the peer to
 * close. */
#define LATE_BYTES (1u << 20) /* far more than the peer's buffer, less than the kernel takes */

struct late_report {
	atomic_int rc;     /* the first failed call */
	atomic_int closed; /* the actor closed the connection, its queue in libactor empty */
	atomic_uint_fast64_t queued;
};

static void late_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct conn_base *b = state;
	struct late_report *r = b->srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, b, msg, &ev, &d))
		return;
	int rc = 0;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		static unsigned char out[LATE_BYTES]; /* one connection at a time */
		struct stream tx = {8, 0};            /* drain_reader_main checks seed 8 */
		stream_fill(&tx, out, sizeof(out));
		actor_timer_t t;
		rc = actor_tcp_write(ctx, b->conn, out, sizeof(out));
		if (rc == 0) /* looks every millisecond until the kernel has taken it all */
			rc = actor_timer_start(ctx, actor_self(ctx), 1000000u, 1000000u, 0, &t);
	} else if (msg->type == ACTOR_MSG_TIMER) {
		size_t q = 0;
		rc = actor_tcp_queued(ctx, b->conn, &q);
		atomic_store(&r->queued, q);
		if (rc == 0 && q == 0) {
			rc = actor_tcp_close(ctx, b->conn);
			atomic_store(&r->closed, 1);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
	}
	if (rc != 0)
		atomic_store(&r->rc, rc);
}

/* A system on this suite's backend whose server actor has written LATE_BYTES and closed the
 * connection, all the output in the kernel; returns the peer's end, which has read nothing and
 * whose small receive buffer (set before connecting, so that the window stays small from the
 * start) holds little of it. */
static actor_system_t *late_start(actor_config_t cfg, struct server *srv,
                                  struct late_report *rep, int *fd)
{
	actor_system_t *sys = backend_system_cfg(cfg);
	*srv =
	    (struct server){.conn_fn = late_fn, .conn_size = sizeof(struct conn_base), .user = rep};
	uint16_t port = server_start(sys, srv);
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rcvbuf = 4096;
	setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	set_io_timeouts(*fd, IO_TIMEOUT_S);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	bool closed =
	    WAIT_UNTIL(atomic_load(&rep->closed) || atomic_load(&rep->rc) != 0, TEST_WATCHDOG);
	ck_assert_int_eq(atomic_load(&rep->rc), 0);
	ck_assert_msg(closed, "[%s] the kernel never took all %u bytes (%" PRIu64 " still queued)",
	              reactor, LATE_BYTES, (uint64_t)atomic_load(&rep->queued));
	return sys;
}

START_TEST(input_arriving_after_a_close_does_not_cut_its_output_short)
{
	struct late_report rep = {0};
	struct server srv;
	struct drain_reader dr = {0};
	actor_system_t *sys = late_start((actor_config_t){.workers = 2}, &srv, &rep, &dr.fd);
	char hi[1024] = {0};
	ck_assert(send_all(dr.fd, hi, sizeof(hi)));
	drain_reader_main(&dr);
	ck_assert_msg(dr.bytes == LATE_BYTES && dr.end == 0,
	              "[%s] %" PRIu64 " of %u bytes, then %s", reactor, dr.bytes, LATE_BYTES,
	              dr.end == 0 ? "EOF" : strerror(-dr.end));
	ck_assert_msg(dr.bad_at == SIZE_MAX, "[%s] byte %zu differs", reactor, dr.bad_at);
	/* Our end still open: the close ends because we have everything, not by its linger. */
	assert_eventually(STAT_SUM(sys, conns) == 0, TEST_WATCHDOG);
	ck_assert_msg(STAT_SUM(sys, closes_unacked) == 0,
	              "[%s] the close ran out its linger after the peer had everything", reactor);
	close(dr.fd);
	ck_assert_uint_eq(STAT_SUM(sys, closes_reset), 0);
	assert_no_failures();
	backend_system_end(sys, "input after a close");
}
END_TEST

/* A close waiting for the peer to acknowledge its output ends when the peer resets, not when
 * its linger runs out: a broken connection acknowledges nothing more. Also after the peer's EOF,
 * when the close reads no more (the reset then shows only in the socket's state). */
START_TEST(a_close_waiting_for_acknowledgement_ends_when_the_peer_resets)
{
	for (int eof_first = 0; eof_first < 2; eof_first++) {
		struct late_report rep = {0};
		struct server srv;
		int fd;
		actor_system_t *sys = late_start((actor_config_t){.workers = 2}, &srv, &rep, &fd);
		ck_assert_uint_eq(STAT_SUM(sys, conns), 1); /* waiting: we have read nothing */
		if (eof_first)
			ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
		close(fd);
		assert_eventually(STAT_SUM(sys, conns) == 0, TEST_WATCHDOG);
		ck_assert_msg(STAT_SUM(sys, closes_unacked) == 0,
		              "[%s] the close ran out its linger after the peer's %sreset", reactor,
		              eof_first ? "EOF and " : "");
		ck_assert_uint_eq(STAT_SUM(sys, closes_reset), 0);
		assert_no_failures();
		backend_system_end(sys, "a reset during a close");
	}
}
END_TEST

/* A close whose output is all in the kernel but whose peer reads none of it is given up when
 * the shutdown's drain runs out: not reset (the kernel goes on sending), but counted as
 * unacknowledged, the counter the two tests above rely on. */
START_TEST(a_close_the_peer_never_acknowledges_is_counted_when_it_runs_out)
{
	struct late_report rep = {0};
	struct server srv;
	int fd;
	actor_system_t *sys =
	    late_start((actor_config_t){.workers = 2, .shutdown_drain_ms = 50}, &srv, &rep, &fd);
	ck_assert_uint_eq(STAT_SUM(sys, conns), 1); /* waiting: we have read nothing */
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown with a close unacknowledged");
	uint64_t unacked = STAT_SUM(sys, closes_unacked), cut = STAT_SUM(sys, closes_reset);
	actor_system_free(sys);
	close(fd);
	assert_no_failures();
	ck_assert_msg(unacked == 1, "[%s] %" PRIu64 " closes counted unacknowledged, expected 1",
	              reactor, unacked);
	ck_assert_msg(cut == 0, "[%s] %" PRIu64 " closes reset", reactor, cut);
}
END_TEST

/* A peer that reads nothing holds a shutdown for shutdown_drain_ms, no longer, and the worker
 * waits without spinning; then the connection is reset, the rest of the output dropped, and
 * counted. -1: no wait at all. */
START_TEST(a_shutdown_drain_that_runs_out_resets_the_connection)
{
	static const int drain_ms[] = {300, -1};
	for (unsigned i = 0; i < sizeof(drain_ms) / sizeof(drain_ms[0]); i++) {
		struct burst_report rep = {0};
		struct server srv;
		struct drain_reader dr = {0};
		actor_config_t cfg = {.workers = 2, .shutdown_drain_ms = drain_ms[i]};
		actor_system_t *sys = burst_start(cfg, &srv, &rep, &dr.fd);
		double t0 = now_sec(), cpu0 = cpu_sec();
		ck_assert_int_eq(actor_system_shutdown(sys), 0);
		system_run_to_end(sys, TEST_WATCHDOG, "shutdown drain running out");
		double took = now_sec() - t0, cpu = cpu_sec() - cpu0;
		uint64_t cut = STAT_SUM(sys, closes_reset);
		actor_system_free(sys);
		drain_reader_main(&dr);
		close(dr.fd);
		assert_no_failures();
		fprintf(stderr,
		        "[%s] drain %d ms: shutdown took %.3f s (%.3f s of CPU), %" PRIu64
		        " bytes arrived\n",
		        reactor, drain_ms[i], took, cpu, dr.bytes);
		if (drain_ms[i] > 0) {
			double d = drain_ms[i] / 1000.0;
			ck_assert_msg(took >= d * 0.9,
			              "[%s] shut down in %.3f s, before the drain ran out", reactor,
			              took);
			/* The close's own linger (5 s) would end it much later. */
			ck_assert_msg(took < d + 2.0 * test_scale(),
			              "[%s] shut down in %.3f s: the %d ms drain did not end it",
			              reactor, took, drain_ms[i]);
			ck_assert_msg(cpu < took / 2,
			              "[%s] %.3f s of CPU in %.3f s: the drain spins", reactor, cpu,
			              took);
		}
		ck_assert_msg(cut == 1, "[%s] drain %d: %" PRIu64 " closes reset, expected 1",
		              reactor, drain_ms[i], cut);
		ck_assert_msg(dr.bytes < BURST_BYTES && dr.end == -ECONNRESET,
		              "[%s] drain %d: %" PRIu64 " of %u bytes, then %s", reactor,
		              drain_ms[i], dr.bytes, BURST_BYTES,
		              dr.end == 0 ? "EOF" : strerror(-dr.end));
		ck_assert_msg(dr.bad_at == SIZE_MAX, "[%s] byte %zu differs", reactor, dr.bad_at);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Suites
 */

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	TCase *tc = backend_tcase(s, b, 0, "connection ends", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, peer_reset_during_a_large_write_arrives_as_closed_with_an_error);
	tcase_add_test(tc, peer_eof_arrives_as_closed_with_error_zero_after_all_its_data);
	tcase_add_test(tc, shutdown_sends_fin_after_the_queued_output_while_reading_goes_on);
	tcase_add_test(tc, output_queued_at_shutdown_is_written_before_the_connection_ends);
	tcase_add_test(tc, input_arriving_after_a_close_does_not_cut_its_output_short);
	tcase_add_test(tc, a_close_waiting_for_acknowledgement_ends_when_the_peer_resets);
	tcase_add_test(tc, a_close_the_peer_never_acknowledges_is_counted_when_it_runs_out);
	tcase_add_test(tc, a_shutdown_drain_that_runs_out_resets_the_connection);

	tc = backend_tcase(s, b, 1, "flow control", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, slow_reader_pushes_the_writer_over_high_water_and_drained_follows);
	tcase_add_test(tc, paused_connection_delivers_nothing_until_resumed);
	tcase_add_test(tc, pause_and_resume_in_quick_succession_lose_and_stall_nothing);
	tcase_add_test(tc, a_fast_stream_keeps_reaching_its_actor);
	tcase_add_test(tc, a_slow_owner_stops_reading_at_its_read_limit);
	tcase_add_test(tc, a_reset_behind_held_back_data_arrives_after_that_data);
	tcase_add_test(tc, random_pauses_read_limits_and_kept_messages_lose_nothing);
	tcase_add_test(tc, accept_backs_off_on_emfile_and_serves_again_when_descriptors_free);
}

int main(int argc, char **argv)
{
	return backend_main(argc, argv, "net_flow", add_cases);
}
