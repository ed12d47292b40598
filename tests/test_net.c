/* test_net.c: TCP through the public API, once per available reactor backend: bulk transfers
 * verified byte for byte in both directions, a thousand concurrent echo connections, a request
 * and response that never stalls, address errors, IPv6, refused connects, per-worker listeners,
 * hand-off rules, shutdown with open sockets, and creating a system without disturbing the
 * caller. Connection ends and flow control are in test_net_flow.c.
 *
 * The binary holds one suite per backend ("net-epoll", "net-io_uring"); a backend the kernel or
 * the sandbox refuses is reported as "SKIP <backend>: <reason>" and contributes no cases. Run one
 * backend with CK_RUN_SUITE=net-epoll. Sizes: NET_TRANSFER_MB (100), NET_CONNS (1000),
 * NET_CONN_BYTES (32768).
 */
#include "common.h"

#include "net_common.h"

/* ---------------------------------------------------------------------------------------------
 * Bulk transfers
 */

/* Verifies the stream with seed 1 and counts it; at EOF closes and reports. */
struct sink_conn {
	struct conn_base b;
	struct stream rx;
	uint64_t bytes;
	bool bad;
};

struct sink_report {
	atomic_uint_fast64_t bytes;
	atomic_int closed_error;
	atomic_int done;
};

static void sink_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sink_conn *s = state;
	struct sink_report *r = s->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, &s->b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		s->rx.seed = 1;
	} else if (msg->type == ACTOR_MSG_TCP_DATA) {
		size_t ok = s->bad ? 0 : stream_check(&s->rx, actor_tcp_data_bytes(msg), d.len);
		if (!s->bad && ok != d.len) {
			NOTE_FAIL("sink: wrong byte at offset %" PRIu64, s->bytes + ok);
			s->bad = true;
		}
		s->bytes += d.len;
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		atomic_store(&r->bytes, s->bytes);
		atomic_store(&r->closed_error, ev.error);
		actor_tcp_close(ctx, s->b.conn);
		atomic_store(&r->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(server_actor_receives_100_mb_byte_for_byte)
{
	uint64_t total = test_param(1, "NET_TRANSFER_MB", TRANSFER_MB_DEFAULT) << 20;
	actor_system_t *sys = backend_system(2);
	struct sink_report rep = {0};
	struct server srv = {
	    .conn_fn = sink_fn, .conn_size = sizeof(struct sink_conn), .user = &rep};
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	struct stream tx = {1, 0};
	unsigned char *buf = malloc(CHUNK);
	double t0 = now_sec();
	bool sent = true;
	for (uint64_t off = 0; sent && off < total; off += CHUNK) {
		size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
		stream_fill(&tx, buf, n);
		sent = send_all(fd, buf, n);
	}
	free(buf);
	ck_assert_msg(sent, "[%s] client send: %s", reactor, strerror(errno));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	/* The sink closes when it has seen our EOF. */
	int end = recv_eof(fd, NULL);
	double secs = now_sec() - t0;
	close(fd);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep.done), TEST_WATCHDOG), "sink never saw EOF");
	assert_no_failures();
	ck_assert_int_eq(end, 0);
	ck_assert_int_eq(atomic_load(&rep.closed_error), 0);
	ck_assert_uint_eq(atomic_load(&rep.bytes), total);
	fprintf(stderr, "[%s] %" PRIu64 " MB to a server actor in %.2f s\n", reactor, total >> 20,
	        secs);
	backend_system_end(sys, "100 MB to a server actor");
}
END_TEST

/* Length-prefixed frames (4 bytes, big-endian) of sizes 0 to 300 KiB, sent in pieces of random
 * sizes: each data message must be exactly one frame, in order, byte for byte. A read limit of
 * 64 KiB, below the larger frames, makes reading stop and start throughout (on io_uring, bytes
 * already received are kept meanwhile and framed on resume). */
#define FRAMES 300
#define FRAME_MAX (300u << 10)

static size_t frame_size(unsigned i)
{
	return i % 7 == 0 ? 0 : (size_t)(mix64(i) % (i % 5 == 0 ? FRAME_MAX : 2000));
}

struct frame_conn {
	struct conn_base b;
	struct stream rx;
	unsigned frames;
	bool bad;
};

static void frame_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct frame_conn *f = state;
	struct sink_report *r = f->b.srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d;
	if (!conn_message(ctx, &f->b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		f->rx.seed = 3;
		f->b.framed = true;
		actor_tcp_framing_t fr = {
		    .kind = ACTOR_FRAME_LENGTH, .length_bytes = 4, .max = FRAME_MAX};
		if (actor_tcp_set_framing(ctx, f->b.conn, &fr) != 0 ||
		    actor_tcp_set_read_limit(ctx, f->b.conn, 64u << 10) != 0)
			NOTE_FAIL("framing options refused");
	} else if (msg->type == ACTOR_MSG_TCP_DATA && !f->bad) {
		size_t want = frame_size(f->frames);
		if (f->frames >= FRAMES || d.len != want) {
			NOTE_FAIL("frame %u: %u bytes, expected %zu", f->frames, d.len, want);
			f->bad = true;
		} else if (stream_check(&f->rx, actor_tcp_data_bytes(msg), d.len) != d.len) {
			NOTE_FAIL("frame %u: wrong bytes", f->frames);
			f->bad = true;
		}
		f->frames++;
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		atomic_store(&r->bytes, f->frames);
		atomic_store(&r->closed_error, ev.error);
		actor_tcp_close(ctx, f->b.conn);
		atomic_store(&r->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(length_prefixed_frames_arrive_one_per_message_whatever_the_pieces)
{
	actor_system_t *sys = backend_system(2);
	struct sink_report rep = {0};
	struct server srv = {
	    .conn_fn = frame_fn, .conn_size = sizeof(struct frame_conn), .user = &rep};
	uint16_t port = server_start(sys, &srv);
	int fd = tcp_client_ok(port);
	struct stream tx = {3, 0};
	unsigned char *buf = malloc(FRAME_MAX + 4);
	bool sent = true;
	uint64_t rnd = 1;
	for (unsigned i = 0; sent && i < FRAMES; i++) {
		size_t n = frame_size(i);
		buf[0] = (unsigned char)(n >> 24);
		buf[1] = (unsigned char)(n >> 16);
		buf[2] = (unsigned char)(n >> 8);
		buf[3] = (unsigned char)n;
		stream_fill(&tx, buf + 4, n);
		for (size_t off = 0; sent && off < n + 4;) {
			rnd = mix64(rnd);
			size_t piece = 1 + rnd % 3000;
			piece = piece < n + 4 - off ? piece : n + 4 - off;
			sent = send_all(fd, buf + off, piece);
			off += piece;
		}
	}
	free(buf);
	ck_assert_msg(sent, "[%s] client send: %s", reactor, strerror(errno));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	int end = recv_eof(fd, NULL);
	close(fd);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&rep.done), TEST_WATCHDOG), "never saw EOF");
	assert_no_failures();
	ck_assert_int_eq(end, 0);
	ck_assert_int_eq(atomic_load(&rep.closed_error), 0);
	ck_assert_uint_eq(atomic_load(&rep.bytes), FRAMES);
	backend_system_end(sys, "framed stream");
}
END_TEST

/* Connects, streams `total` bytes of seed 2 under back-pressure, then half-closes and waits
 * for the peer's EOF. */
struct pump {
	uint16_t port;
	uint64_t total, sent;
	actor_conn_t conn;
	struct stream tx;
	unsigned char chunk[CHUNK];
	size_t chunk_len; /* bytes in `chunk` not yet accepted by actor_tcp_write */
	uint64_t rnd;     /* non-zero: each write is 1 to max_piece bytes, at random */
	size_t max_piece;
	unsigned enobufs, drained;
	atomic_int connect_error;
	atomic_int closed_error;
	atomic_int done;
};

static void pump_write(actor_ctx_t *ctx, struct pump *p)
{
	while (p->sent < p->total) {
		if (p->chunk_len == 0) {
			uint64_t left = p->total - p->sent;
			size_t want = CHUNK;
			if (p->rnd != 0) {
				p->rnd = mix64(p->rnd);
				want = 1 + (size_t)(p->rnd % p->max_piece);
			}
			p->chunk_len = left < want ? (size_t)left : want;
			stream_fill(&p->tx, p->chunk, p->chunk_len);
		}
		int rc = actor_tcp_write(ctx, p->conn, p->chunk, p->chunk_len);
		if (rc == -ENOBUFS) {
			p->enobufs++;
			return;
		}
		if (rc != 0) {
			NOTE_FAIL("pump: actor_tcp_write: %d", rc);
			return;
		}
		p->sent += p->chunk_len;
		p->chunk_len = 0;
	}
	int rc = actor_tcp_shutdown(ctx, p->conn);
	if (rc != 0)
		NOTE_FAIL("pump: actor_tcp_shutdown: %d", rc);
}

static void pump_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pump *p = state;
	actor_tcp_event_t ev = {0};
	if (msg->type >= ACTOR_MSG_SYSTEM && msg->type != ACTOR_MSG_TCP_DATA)
		memcpy(&ev, actor_msg_data(msg), msg->size < sizeof(ev) ? msg->size : sizeof(ev));
	switch (msg->type) {
	case MSG_GO: {
		int rc = actor_tcp_connect(ctx, "127.0.0.1", p->port, &p->conn);
		if (rc != 0) {
			atomic_store(&p->connect_error, rc);
			atomic_store(&p->done, 1);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}
	case ACTOR_MSG_TCP_CONNECTED:
		if (ev.conn.id != p->conn.id)
			NOTE_FAIL("CONNECTED names another conn");
		if (ev.worker != actor_ctx_worker(ctx))
			NOTE_FAIL("CONNECTED says worker %u, the owner lives on %u", ev.worker,
			          actor_ctx_worker(ctx));
		atomic_store(&p->connect_error, ev.error);
		if (ev.error != 0) {
			atomic_store(&p->done, 1);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
			return;
		}
		p->tx.seed = 2;
		pump_write(ctx, p);
		return;
	case ACTOR_MSG_TCP_DRAINED:
		p->drained++;
		pump_write(ctx, p);
		return;
	case ACTOR_MSG_TCP_DATA:
		NOTE_FAIL("pump: unexpected DATA");
		return;
	case ACTOR_MSG_TCP_CLOSED:
		atomic_store(&p->closed_error, ev.error);
		actor_tcp_close(ctx, p->conn);
		atomic_store(&p->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	default:
		NOTE_FAIL("pump: message %#x", msg->type);
	}
}

/* Runs the pump `p` (its total and write sizes set) on worker 1 against a plain reader, which
 * with `stalls` reads random sizes and stops for 2 ms about every 512 KiB. Checks every byte,
 * the end of the stream and that the queue met its high-water mark; returns the seconds the
 * reading took. */
static double run_pump(struct pump *p, bool stalls, const char *what)
{
	actor_system_t *sys = backend_system(2);
	int lfd = tcp_plain_listener(&p->port);
	actor_ref_t a = spawn_on(sys, 1, pump_fn, p);
	send_ok(sys, a, MSG_GO, NULL, 0);

	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	ck_assert_msg(poll(&pfd, 1, (int)(TEST_WATCHDOG * 1000 * test_scale())) == 1,
	              "[%s] the client actor never connected (connect_error %d)", reactor,
	              atomic_load(&p->connect_error));
	int fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	set_io_timeouts(fd, IO_TIMEOUT_S);
	struct stream rx = {2, 0};
	unsigned char *buf = malloc(CHUNK);
	uint64_t got = 0, bad_at = UINT64_MAX, r = 99, next_stall = 0;
	double t0 = now_sec();
	ssize_t n;
	do {
		size_t want = CHUNK;
		if (stalls) {
			r = mix64(r);
			if (got >= next_stall) {
				sleep_ms(2);
				next_stall = got + (r % (1u << 20));
			}
			want = 1 + (size_t)(r % CHUNK);
		}
		n = recv_some(fd, buf, want);
		if (n > 0) {
			size_t ok = stream_check(&rx, buf, (size_t)n);
			if (ok != (size_t)n && bad_at == UINT64_MAX)
				bad_at = got + ok;
			got += (uint64_t)n;
		}
	} while (n > 0);
	int read_errno = n < 0 ? errno : 0;
	double secs = now_sec() - t0;
	free(buf);
	close(fd); /* our EOF ends the pump */
	close(lfd);

	ck_assert_msg(WAIT_UNTIL(atomic_load(&p->done), TEST_WATCHDOG), "pump never finished");
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&p->connect_error), 0);
	ck_assert_msg(read_errno == 0, "[%s] reading: %s", reactor, strerror(read_errno));
	ck_assert_msg(bad_at == UINT64_MAX, "[%s] wrong byte at offset %" PRIu64, reactor, bad_at);
	ck_assert_uint_eq(got, p->total);
	ck_assert_int_eq(atomic_load(&p->closed_error), 0);
	ck_assert_msg(p->enobufs > 0 && p->drained > 0,
	              "[%s] the stream never met back-pressure (ENOBUFS %u, DRAINED %u)", reactor,
	              p->enobufs, p->drained);
	backend_system_end(sys, what);
	return secs;
}

START_TEST(client_actor_streams_100_mb_to_a_plain_socket_under_back_pressure)
{
	struct pump *p = calloc(1, sizeof(*p));
	p->total = test_param(1, "NET_TRANSFER_MB", TRANSFER_MB_DEFAULT) << 20;
	double secs = run_pump(p, false, "100 MB from a client actor");
	fprintf(stderr, "[%s] %" PRIu64 " MB from a client actor in %.2f s (%u ENOBUFS)\n", reactor,
	        p->total >> 20, secs, p->enobufs);
	free(p);
}
END_TEST

/* Output chunks grow with the queue (net.c, outbuf_new): writes of 1 to 9,000 bytes, at random,
 * land in chunks of 4 KiB up to 64 KiB, and a write may straddle none or several of them; the
 * io_uring backend sends several chunks at once. A reader that stalls now and then lets the
 * queue fill to its high-water mark again and again; every byte must arrive once and in order. */
START_TEST(small_writes_to_a_reader_that_stalls_arrive_byte_for_byte)
{
	struct pump *p = calloc(1, sizeof(*p));
	p->total = 16u << 20;
	p->rnd = 77;
	p->max_piece = 9000;
	run_pump(p, true, "small writes");
	free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A thousand connections
 */

/* Regression: the io_uring backend reported 0 events after dispatching completions that a
 * non-blocking poll had flushed, and the worker then parked with the actor they had made
 * runnable still queued: one connection doing request/response stalled for seconds at a time
 * (bench/echo.sh, 1 connection). Each reply must come within a second (scaled for sanitizer
 * builds); a stall makes the recv time out. The stall depended on timing: this loop did not
 * reproduce it every time against the unfixed library, bench/echo.sh did. */
START_TEST(one_connection_request_response_never_stalls)
{
	actor_system_t *sys = backend_system(1);
	struct server srv = {0};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);
	int fd = tcp_client_ok(port);
	set_io_timeouts(fd, 1.0);
	char out[512], in[512];
	double slowest = 0;
	for (unsigned i = 0; i < 3000; i++) {
		memset(out, (int)(i & 0x7f), sizeof(out));
		double t0 = now_sec();
		ck_assert_msg(send_all(fd, out, sizeof(out)), "[%s] send %u", reactor, i);
		ck_assert_msg(recv_all(fd, in, sizeof(in)),
		              "[%s] round trip %u got no reply within a second", reactor, i);
		ck_assert_msg(memcmp(in, out, sizeof(in)) == 0, "[%s] round trip %u", reactor, i);
		if (now_sec() - t0 > slowest)
			slowest = now_sec() - t0;
	}
	close(fd);
	printf("[%s] 3000 round trips, slowest %.1f ms\n", reactor, slowest * 1e3);
	assert_no_failures();
	backend_system_end(sys, "one connection");
}
END_TEST

START_TEST(thousand_connections_each_echo_their_own_stream)
{
	unsigned n = (unsigned)test_param(1, "NET_CONNS", CONNS_DEFAULT);
	uint64_t bytes = test_param(2, "NET_CONN_BYTES", CONN_BYTES_DEFAULT);
	struct rlimit old;
	raise_nofile_to_hard(&old);
	/* Two descriptors per connection (ours and the server's) and some to spare. */
	if (old.rlim_max < 2 * (rlim_t)n + 200) {
		unsigned fit = old.rlim_max > 400 ? (unsigned)(old.rlim_max - 200) / 2 : 100;
		fprintf(stderr,
		        "NOTE: RLIMIT_NOFILE hard limit %lu: %u connections instead of %u\n",
		        (unsigned long)old.rlim_max, fit, n);
		n = fit;
	}
	actor_system_t *sys = backend_system(2);
	struct server srv = {0};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);

	struct mclients mc = {0};
	bool connected = mclients_connect(&mc, "127.0.0.1", port, n, bytes);
	bool all_open = connected && WAIT_UNTIL(atomic_load(&srv.adopted) == n, TEST_WATCHDOG);
	uint64_t conns_open = STAT_SUM(sys, conns);
	bool ok = all_open && mclients_exchange(&mc, TEST_TIMEOUT_STRESS - 20);
	mclients_close(&mc);

	ck_assert_msg(connected, "[%s] %s", reactor, mc.err);
	ck_assert_msg(all_open, "[%s] %u of %u connections adopted", reactor,
	              atomic_load(&srv.adopted), n);
	ck_assert_msg(conns_open == n, "[%s] stats say %" PRIu64 " open connections, expected %u",
	              reactor, conns_open, n);
	ck_assert_msg(ok, "[%s] %s", reactor, mc.err);
	assert_eventually(atomic_load(&srv.finished) == n, TEST_WATCHDOG);
	assert_eventually(STAT_SUM(sys, conns) == 0, TEST_WATCHDOG);
	assert_no_failures();
	ck_assert_uint_eq(STAT_SUM(sys, accepts), n);
	backend_system_end(sys, "a thousand echo connections");
	setrlimit(RLIMIT_NOFILE, &old);
}
END_TEST
/* ---------------------------------------------------------------------------------------------
 * Addresses
 */

struct listen_try {
	actor_listen_opts_t opts;
	int rc;
};

static void listen_try_task(actor_ctx_t *ctx, void *arg)
{
	struct listen_try *t = arg;
	actor_listener_t l;
	t->rc = actor_tcp_listen(ctx, &t->opts, &l);
	if (t->rc == 0)
		actor_tcp_listener_close(ctx, l);
}

static int listen_try(actor_system_t *sys, const char *host, uint16_t port, int per_worker)
{
	struct listen_try t = {.opts = {.host = host, .port = port, .per_worker = per_worker}};
	run_in_actor(sys, NULL, listen_try_task, &t);
	return t.rc;
}

START_TEST(listening_on_a_port_in_use_fails_with_eaddrinuse)
{
	actor_system_t *sys = backend_system(2);
	uint16_t port;
	int lfd = tcp_plain_listener(&port);
	ck_assert_int_eq(listen_try(sys, "127.0.0.1", port, 0), -EADDRINUSE);
	ck_assert_int_eq(listen_try(sys, "127.0.0.1", port, 1), -EADDRINUSE);
	close(lfd);

	/* A port one of our own listeners holds. */
	struct server srv = {0};
	echo_server_init(&srv);
	port = server_start(sys, &srv);
	ck_assert_int_eq(listen_try(sys, "127.0.0.1", port, 0), -EADDRINUSE);
	/* Once closed, the port is free again (SO_REUSEADDR). */
	send_ok(sys, srv.ref, MSG_STOP, NULL, 0);
	wait_stopped(sys, srv.ref);
	ck_assert_int_eq(listen_try(sys, "127.0.0.1", port, 0), 0);

	/* Regression: a per-worker listener binds with SO_REUSEPORT, and used to join another
	 * per-worker group on the same port (a second server sharing the first one's clients)
	 * instead of failing. */
	struct server group = {.opts = {.per_worker = 1}};
	echo_server_init(&group);
	port = server_start(sys, &group);
	ck_assert_int_eq(listen_try(sys, "127.0.0.1", port, 1), -EADDRINUSE);
	ck_assert_int_eq(listen_try(sys, "127.0.0.1", port, 0), -EADDRINUSE);
	send_ok(sys, group.ref, MSG_STOP, NULL, 0);
	wait_stopped(sys, group.ref);
	assert_no_failures();
	backend_system_end(sys, "EADDRINUSE");
}
END_TEST

/* Listens, closes, and listens again on the same port, within one behaviour call. */
struct relisten {
	int first, close_rc, again;
	uint16_t port;
};

static void relisten_task(actor_ctx_t *ctx, void *arg)
{
	struct relisten *t = arg;
	actor_listen_opts_t o = {.host = "127.0.0.1"};
	actor_listener_t l;
	t->first = actor_tcp_listen(ctx, &o, &l);
	if (t->first != 0 || actor_tcp_listener_port(ctx, l, &t->port) != 0)
		return;
	t->close_rc = actor_tcp_listener_close(ctx, l);
	o.port = t->port;
	t->again = actor_tcp_listen(ctx, &o, &l);
	if (t->again == 0)
		actor_tcp_listener_close(ctx, l);
}

/* A regression test: on io_uring the socket was closed only once the cancelled accept had come
 * back, a loop turn or more later, so listening again on the port at once (a server
 * reconfiguring itself, or a test) failed with EADDRINUSE. */
START_TEST(a_closed_listeners_port_can_be_listened_on_again_at_once)
{
	actor_system_t *sys = backend_system(2);
	for (int i = 0; i < 20; i++) {
		struct relisten t = {0};
		run_in_actor(sys, NULL, relisten_task, &t);
		ck_assert_int_eq(t.first, 0);
		ck_assert_int_eq(t.close_rc, 0);
		ck_assert_msg(t.again == 0,
		              "[%s] listening again on port %u right after closing: %d (%s)",
		              reactor, t.port, t.again, strerror(-t.again));
	}
	assert_no_failures();
	backend_system_end(sys, "listen again");
}
END_TEST

/* The same with the worker's ring busy: on io_uring with DEFER_TASKRUN, the one entry the close
 * made after cancelling the accept ran at most 20 queued completions, and the cancelled accept,
 * which holds the socket, came after them; the socket stayed listening after
 * actor_tcp_listener_close returned. Here 100 connections each have a byte waiting for the
 * worker when it closes and listens again (40 did not show it). */
#define BUSY_CONNS 100

struct busy_relisten {
	struct relisten t;
	int fds[BUSY_CONNS];
	atomic_int inside, written;
};

static void *busy_writer(void *arg)
{
	struct busy_relisten *b = arg;
	if (!WAIT_UNTIL(atomic_load(&b->inside), TEST_WATCHDOG))
		return NULL;
	for (int i = 0; i < BUSY_CONNS; i++)
		if (send(b->fds[i], "x", 1, MSG_NOSIGNAL) != 1)
			NOTE_FAIL("send to connection %d: %s", i, strerror(errno));
	atomic_store(&b->written, 1);
	return NULL;
}

static void busy_relisten_task(actor_ctx_t *ctx, void *arg)
{
	struct busy_relisten *b = arg;
	atomic_store(&b->inside, 1);
	if (!WAIT_UNTIL(atomic_load(&b->written), TEST_WATCHDOG))
		NOTE_FAIL("the writer never wrote");
	sleep_ms(20); /* the bytes arrive; on io_uring their completions wait for this worker */
	relisten_task(ctx, &b->t);
}

START_TEST(a_closed_listeners_port_is_free_at_once_while_the_worker_is_busy)
{
	actor_system_t *sys = backend_system(1);
	struct server srv = {0};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);
	struct busy_relisten b = {0};
	for (int i = 0; i < BUSY_CONNS; i++) {
		b.fds[i] = tcp_client_ok(port);
		set_io_timeouts(b.fds[i], TEST_WATCHDOG);
	}
	ck_assert_msg(WAIT_UNTIL(atomic_load(&srv.adopted) == BUSY_CONNS, TEST_WATCHDOG),
	              "only %u of %d connections adopted", atomic_load(&srv.adopted), BUSY_CONNS);
	for (int round = 0; round < 5; round++) {
		memset(&b.t, 0, sizeof(b.t));
		atomic_store(&b.inside, 0);
		atomic_store(&b.written, 0);
		pthread_t writer;
		ck_assert_int_eq(pthread_create(&writer, NULL, busy_writer, &b), 0);
		run_in_actor(sys, NULL, busy_relisten_task, &b);
		pthread_join(writer, NULL);
		ck_assert_int_eq(b.t.first, 0);
		ck_assert_int_eq(b.t.close_rc, 0);
		ck_assert_msg(b.t.again == 0,
		              "[%s] listening again on port %u right after closing, busy: %d (%s)",
		              reactor, b.t.port, b.t.again, strerror(-b.t.again));
		/* Nothing lost on the way: every connection gets its byte back. */
		for (int i = 0; i < BUSY_CONNS; i++) {
			char c = 0;
			ck_assert_msg(recv_all(b.fds[i], &c, 1) && c == 'x',
			              "[%s] connection %d: no echo", reactor, i);
		}
	}
	for (int i = 0; i < BUSY_CONNS; i++)
		close(b.fds[i]);
	assert_no_failures();
	backend_system_end(sys, "listen again, busy");
}
END_TEST

START_TEST(listening_on_an_address_not_on_this_host_fails_with_eaddrnotavail)
{
	actor_system_t *sys = backend_system(1);
	/* 192.0.2.1 is TEST-NET-1: documentation only, never a local address. */
	ck_assert_int_eq(listen_try(sys, "192.0.2.1", 0, 0), -EADDRNOTAVAIL);
	backend_system_end(sys, "EADDRNOTAVAIL");
}
END_TEST

/* Connects to host:port, sends a message, checks the echo and the peer address. */
struct echo_client {
	const char *host;
	uint16_t port;
	actor_conn_t conn;
	char got[64];
	size_t ngot;
	unsigned char peer[128];
	uint32_t peer_len;
	atomic_int connect_error;
	atomic_int done;
};

#define ECHO_TEXT "over the loopback and back"

static void echo_client_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct echo_client *c = state;
	actor_tcp_event_t ev = {0};
	if (msg->type >= ACTOR_MSG_SYSTEM && msg->type != ACTOR_MSG_TCP_DATA)
		memcpy(&ev, actor_msg_data(msg), msg->size < sizeof(ev) ? msg->size : sizeof(ev));
	switch (msg->type) {
	case MSG_GO: {
		int rc = actor_tcp_connect(ctx, c->host, c->port, &c->conn);
		if (rc != 0) {
			atomic_store(&c->connect_error, rc);
			atomic_store(&c->done, 1);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}
	case ACTOR_MSG_TCP_CONNECTED:
		atomic_store(&c->connect_error, ev.error);
		if (ev.error != 0) {
			atomic_store(&c->done, 1);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
			return;
		}
		c->peer_len = sizeof(c->peer);
		if (actor_tcp_peer(ctx, c->conn, c->peer, &c->peer_len) != 0)
			NOTE_FAIL("actor_tcp_peer failed");
		if (actor_tcp_write(ctx, c->conn, ECHO_TEXT, sizeof(ECHO_TEXT)) != 0)
			NOTE_FAIL("echo client: write failed");
		return;
	case ACTOR_MSG_TCP_DATA: {
		actor_tcp_data_t d;
		memcpy(&d, actor_msg_data(msg), sizeof(d));
		if (c->ngot + d.len > sizeof(c->got)) {
			NOTE_FAIL("echo client: too much data");
			return;
		}
		memcpy(c->got + c->ngot, actor_tcp_data_bytes(msg), d.len);
		c->ngot += d.len;
		if (c->ngot == sizeof(ECHO_TEXT)) {
			actor_tcp_close(ctx, c->conn);
			atomic_store(&c->done, 1);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}
	case ACTOR_MSG_TCP_CLOSED:
		NOTE_FAIL("echo client: CLOSED %d after %zu bytes", ev.error, c->ngot);
		atomic_store(&c->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	default:
		return;
	}
}

static bool ipv6_loopback_available(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

START_TEST(ipv6_loopback_listen_and_connect_work)
{
	if (!ipv6_loopback_available()) {
		printf("SKIP ipv6_loopback_listen_and_connect_work: no IPv6 loopback here\n");
		return;
	}
	actor_system_t *sys = backend_system(2);
	struct server srv = {.opts = {.host = "::1"}};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);
	struct echo_client c = {.host = "::1", .port = port};
	actor_ref_t a = spawn_on(sys, 1, echo_client_fn, &c);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG), "no echo over IPv6");
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&c.connect_error), 0);
	ck_assert_uint_eq(c.ngot, sizeof(ECHO_TEXT));
	ck_assert_str_eq(c.got, ECHO_TEXT);

	struct sockaddr_in6 loop = {.sin6_addr = IN6ADDR_LOOPBACK_INIT}, p;
	ck_assert_uint_eq(c.peer_len, sizeof(p));
	memcpy(&p, c.peer, sizeof(p));
	ck_assert_int_eq(p.sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(p.sin6_port), port);
	ck_assert(memcmp(&p.sin6_addr, &loop.sin6_addr, sizeof(p.sin6_addr)) == 0);
	ck_assert_uint_eq(atomic_load_explicit(&srv.accepted, memory_order_acquire), 1);
	ck_assert_uint_eq(srv.peer_len, sizeof(p));
	memcpy(&p, srv.peer, sizeof(p));
	ck_assert_int_eq(p.sin6_family, AF_INET6);
	ck_assert(memcmp(&p.sin6_addr, &loop.sin6_addr, sizeof(p.sin6_addr)) == 0);
	backend_system_end(sys, "IPv6 loopback");
}
END_TEST

START_TEST(connect_to_a_closed_port_reports_econnrefused)
{
	actor_system_t *sys = backend_system(2);
	/* A port nobody listens on: bound, never listened, closed. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, len), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);

	struct echo_client c = {.host = "127.0.0.1", .port = ntohs(a.sin_port)};
	actor_ref_t ref = spawn_on(sys, 1, echo_client_fn, &c);
	send_ok(sys, ref, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG), "no CONNECTED");
	assert_no_failures();
	/* Either form keeps the contract: a failed call, or CONNECTED carrying the error. */
	ck_assert_int_eq(atomic_load(&c.connect_error), -ECONNREFUSED);
	assert_eventually(STAT_SUM(sys, conns) == 0, TEST_WATCHDOG);
	backend_system_end(sys, "refused connect");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Workers
 */

#define SPREAD_CONNS 64

START_TEST(per_worker_listener_spreads_connections_and_keeps_each_on_its_worker)
{
	actor_system_t *sys = backend_system(2);
	struct server srv = {.opts = {.per_worker = 1}};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);

	struct mclients mc = {0};
	bool ok = mclients_connect(&mc, "127.0.0.1", port, SPREAD_CONNS, 8192) &&
	          mclients_exchange(&mc, TEST_WATCHDOG);
	mclients_close(&mc);
	ck_assert_msg(ok, "[%s] %s", reactor, mc.err);
	assert_eventually(atomic_load(&srv.finished) == SPREAD_CONNS, TEST_WATCHDOG);
	assert_no_failures(); /* includes: every event ran on the connection's worker */
	unsigned w0 = atomic_load(&srv.by_worker[0]), w1 = atomic_load(&srv.by_worker[1]);
	ck_assert_msg(w0 > 0 && w1 > 0, "[%s] connections per worker: %u and %u", reactor, w0, w1);
	for (unsigned w = 0; w < 2; w++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
		ck_assert_msg(st.accepts == atomic_load(&srv.by_worker[w]),
		              "[%s] worker %u accepted %" PRIu64 " but %u arrived as its", reactor,
		              w, st.accepts, atomic_load(&srv.by_worker[w]));
		ck_assert_str_eq(st.reactor, reactor);
	}
	backend_system_end(sys, "per-worker listener");
}
END_TEST

/* Tries the hand-off to an actor on the wrong worker and to a made-up connection first. */
struct handoff_rules {
	actor_ref_t on_worker[2];
	atomic_int wrong_worker_rc, bogus_rc;
};

static void idle_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

static void try_bad_handoffs(actor_ctx_t *ctx, struct server *srv, const actor_tcp_accepted_t *a)
{
	struct handoff_rules *h = srv->user;
	atomic_store(&h->wrong_worker_rc,
	             actor_tcp_handoff(ctx, a->conn, h->on_worker[!a->worker]));
	actor_conn_t bogus = {a->conn.id ^ 0x00ffff0000000000ull};
	atomic_store(&h->bogus_rc, actor_tcp_handoff(ctx, bogus, h->on_worker[a->worker]));
}

START_TEST(handoff_to_an_actor_on_another_worker_fails_with_exdev_and_changes_nothing)
{
	actor_system_t *sys = backend_system(2);
	struct handoff_rules h = {0};
	h.on_worker[0] = spawn_on(sys, 0, idle_fn, NULL);
	h.on_worker[1] = spawn_on(sys, 1, idle_fn, NULL);
	struct server srv = {.on_accepted = try_bad_handoffs, .user = &h};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);

	int fd = tcp_client_ok(port);
	char in[sizeof(ECHO_TEXT)];
	ck_assert(send_all(fd, ECHO_TEXT, sizeof(ECHO_TEXT)));
	ck_assert_msg(recv_all(fd, in, sizeof(in)), "[%s] no echo after the failed hand-offs",
	              reactor);
	ck_assert_str_eq(in, ECHO_TEXT);
	close(fd);
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&h.wrong_worker_rc), -EXDEV);
	int bogus = atomic_load(&h.bogus_rc);
	ck_assert_msg(bogus < 0, "[%s] hand-off of a made-up connection returned %d", reactor,
	              bogus);
	backend_system_end(sys, "hand-off rules");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown
 */

struct far_timer {
	actor_ref_t target;
	int rc;
};

static void far_timer_task(actor_ctx_t *ctx, void *arg)
{
	struct far_timer *f = arg;
	actor_timer_t t;
	f->rc = actor_timer_start(ctx, f->target, 3600ull * 1000000000u, 0, 0, &t);
}

START_TEST(system_shuts_down_cleanly_with_connections_open)
{
	unsigned fds_before = count_open_fds();
	/* The flooded client below never reads: a connection still writing to it at the shutdown
	 * holds the shutdown for the drain (test_net_flow has the drain's own tests). */
	actor_system_t *sys =
	    backend_system_cfg((actor_config_t){.workers = 2, .shutdown_drain_ms = 100});
	struct server srv = {0};
	echo_server_init(&srv);
	uint16_t port = server_start(sys, &srv);
	struct flood_report frep = {0};
	struct server fsrv = {
	    .conn_fn = flood_fn, .conn_size = sizeof(struct flood_conn), .user = &frep};
	uint16_t fport = server_start(sys, &fsrv);
	/* And a per-worker listener: its sockets live on both workers, its owner on one. */
	struct server psrv = {.opts = {.per_worker = 1}};
	echo_server_init(&psrv);
	server_start(sys, &psrv);

	/* Twenty idle echo connections that have carried data. */
	int cl[20];
	for (int i = 0; i < 20; i++) {
		cl[i] = tcp_client_ok(port);
		char b = (char)i;
		ck_assert(send_all(cl[i], &b, 1) && recv_all(cl[i], &b, 1));
	}
	/* One with a full output queue, one from a client actor, one pending timer. */
	int flooded = tcp_client_ok(fport);
	ck_assert(WAIT_UNTIL(atomic_load(&frep.enobufs) > 0, TEST_WATCHDOG));
	struct far_timer ft = {.target = srv.ref};
	run_in_actor(sys, NULL, far_timer_task, &ft);
	ck_assert_int_eq(ft.rc, 0);
	/* A client actor reading the flood server's stream as fast as it comes. */
	struct holder *h = calloc(1, sizeof(*h));
	h->port = fport;
	actor_ref_t ha = spawn_on(sys, 1, holder_fn, h);
	send_ok(sys, ha, MSG_GO, NULL, 0);
	/* A failed connect (say, EADDRNOTAVAIL with the ephemeral ports held in TIME_WAIT by an
	 * earlier benchmark) is reported as such, not as a stalled stream. */
	bool streamed =
	    WAIT_UNTIL(atomic_load(&h->bytes) > (1u << 20) || atomic_load(&h->connect_error) != 0,
	               TEST_WATCHDOG);
	if (!streamed) { /* what the workers were doing, for the failure below */
		fprintf(stderr, "[%s] flood: %llu bytes written, %d ENOBUFS; holder connected %d\n",
		        reactor, (unsigned long long)atomic_load(&frep.written),
		        atomic_load(&frep.enobufs), atomic_load(&h->connected));
		actor_stats_print(sys, stderr);
		sleep_ms(500);
		actor_stats_print(sys, stderr);
	}
	int cerr = atomic_load(&h->connect_error);
	ck_assert_msg(cerr == 0, "[%s] the client actor's connect: %d (%s)", reactor, cerr,
	              strerror(-cerr));
	ck_assert_msg(streamed, "[%s] the client actor got only %llu bytes of the flood", reactor,
	              (unsigned long long)atomic_load(&h->bytes));
	assert_eventually(STAT_SUM(sys, conns) >= 23, TEST_WATCHDOG);

	double t0 = now_sec();
	backend_system_end(sys, "shutdown with open connections");
	fprintf(stderr, "[%s] shutdown with open connections took %.3f s\n", reactor,
	        now_sec() - t0);

	/* Every server-side socket was closed: our ends see EOF or a reset. */
	for (int i = 0; i < 20; i++) {
		char b;
		ssize_t n = recv_some(cl[i], &b, 1);
		ck_assert_msg(n == 0 || (n < 0 && errno == ECONNRESET),
		              "[%s] client %d after shutdown: %zd (%s)", reactor, i, n,
		              n < 0 ? strerror(errno) : "data");
		close(cl[i]);
	}
	size_t extra = 0;
	int end = recv_eof(flooded, &extra);
	ck_assert_msg(end == 0 || end == -ECONNRESET, "[%s] flooded client: %s", reactor,
	              strerror(-end));
	close(flooded);
	free(h);
	assert_no_failures();
	unsigned fds_after = count_open_fds();
	ck_assert_msg(fds_after == fds_before, "[%s] %u descriptors open before, %u after free",
	              reactor, fds_before, fds_after);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The caller's thread
 */

/* A blocking recv with a timeout on an idle socket: -EAGAIN when the timeout passes, -EINTR if
 * something interrupted it (there is no signal handler in this test). */
static int idle_recv_result(void)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char c;
	ssize_t n = recv(sv[0], &c, 1, 0);
	int rc = n < 0 ? -errno : (int)n;
	close(sv[0]);
	close(sv[1]);
	return rc;
}

START_TEST(system_creation_does_not_interrupt_the_callers_blocking_calls)
{
	actor_system_t *sys = backend_system(2);
	int during = idle_recv_result();
	backend_system_end(sys, "an idle system");
	int after = idle_recv_result();
	ck_assert_msg(during == -EAGAIN,
	              "[%s] a recv timeout in the thread that created the system "
	              "ended with %d (%s), expected EAGAIN",
	              reactor, during, strerror(-during));
	ck_assert_msg(after == -EAGAIN,
	              "[%s] a recv timeout after actor_system_free ended with %d "
	              "(%s), expected EAGAIN",
	              reactor, after, strerror(-after));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Suites
 */

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	unsigned k = 0;
#define TC(label, timeout) (tc = backend_tcase(s, b, k++, label, timeout, fixture))
	TCase *tc;

	TC("bulk", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, server_actor_receives_100_mb_byte_for_byte);
	tcase_add_test(tc, client_actor_streams_100_mb_to_a_plain_socket_under_back_pressure);
	tcase_add_test(tc, small_writes_to_a_reader_that_stalls_arrive_byte_for_byte);
	tcase_add_test(tc, thousand_connections_each_echo_their_own_stream);
	tcase_add_test(tc, one_connection_request_response_never_stalls);
	tcase_add_test(tc, length_prefixed_frames_arrive_one_per_message_whatever_the_pieces);

	TC("lifetime", TEST_TIMEOUT);
	tcase_add_test(tc, system_shuts_down_cleanly_with_connections_open);
	tcase_add_test(tc, system_creation_does_not_interrupt_the_callers_blocking_calls);

	TC("addresses and workers", TEST_TIMEOUT);
	tcase_add_test(tc, listening_on_a_port_in_use_fails_with_eaddrinuse);
	tcase_add_test(tc, a_closed_listeners_port_can_be_listened_on_again_at_once);
	tcase_add_test(tc, a_closed_listeners_port_is_free_at_once_while_the_worker_is_busy);
	tcase_add_test(tc, listening_on_an_address_not_on_this_host_fails_with_eaddrnotavail);
	tcase_add_test(tc, ipv6_loopback_listen_and_connect_work);
	tcase_add_test(tc, connect_to_a_closed_port_reports_econnrefused);
	tcase_add_test(tc, per_worker_listener_spreads_connections_and_keeps_each_on_its_worker);
	tcase_add_test(tc,
	               handoff_to_an_actor_on_another_worker_fails_with_exdev_and_changes_nothing);
#undef TC
}

int main(int argc, char **argv)
{
	return backend_main(argc, argv, "net", add_cases);
}
