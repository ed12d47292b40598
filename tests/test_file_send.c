/* test_file_send.c: actor_file_send on every reactor backend (backend.h): a file range between
 * two writes arrives whole; a peer that resets or closes, or an abort, in the middle of a large
 * send; an owner that stops, or a system that shuts down, with a large send in flight; a file
 * shorter than the range; an empty range, checked as a non-empty one is; a close of the file
 * while its sends are in flight; many small ranges in a row. Every case checks that each send
 * answers exactly once (or, its owner gone, is counted as dropped), that the connection reports
 * its end once, that the file and the sockets are closed (the process's descriptors are counted
 * before and after) and, under AddressSanitizer, that nothing leaks.
 *
 * The test's end of each connection is a plain socket in a thread of its own (struct peer),
 * which checks every byte it reads. "In the middle of a send" is made certain, not timed: the
 * peer reads part of the file and then acts, and the file is several times larger than what the
 * kernel's socket buffers can hold (big_len), so the rest is still to be sent then.
 */
#include "common.h"

#include <limits.h>

#include "net_common.h" /* backend.h, plain sockets, count_open_fds, MSG_GO and MSG_STOP */

#include "file_common.h"

/* The peer's receive buffer: small and fixed, so that what the kernel holds for it is
 * bounded (autotuning could otherwise take it to tcp_rmem's maximum). */
#define PEER_RCVBUF (64u << 10)
#define PEER_READS_FIRST (1u << 20) /* bytes a peer reads before it acts */

/* ---------------------------------------------------------------------------------------------
 * The peer: accepts the connections one by one and does to each what its script says
 */

enum peer_act {
	PEER_READ_ALL, /* read to the end, calling on_first once `first` bytes have arrived */
	PEER_RESET,    /* read `first` bytes, then reset the connection (RST) */
	PEER_CLOSE,    /* read `first` bytes, then close with the rest unread */
	PEER_HOLD,     /* read `first` bytes, call on_first, read no more until released */
};

struct peer;

struct peer_conn {
	enum peer_act act;
	size_t first;
	void (*on_first)(struct peer *p);
	/* What should arrive: `head`, bytes [file_off, file_off + file_len) of the pattern, then
	 * `tail`. */
	const char *head, *tail;
	size_t file_off, file_len;
	/* Results. */
	size_t got;
	size_t bad_at; /* 1 + the offset of the first wrong byte (one past the end: an extra) */
	int end;       /* how reading ended: 0 at EOF, a negative errno, 1 if the script ended it */
};

struct peer {
	int lfd;
	uint16_t port;
	int hold[2]; /* PEER_HOLD reads on once the write end is closed (peer_release) */
	unsigned nconns;
	struct peer_conn conns[4];
	actor_system_t *sys;
	actor_ref_t owner;
	atomic_int owner_gone;    /* set by the owner's destroy callback */
	atomic_int owner_aborted; /* set by the owner once it has aborted its connection */
	pthread_t thread;
	unsigned char buf[64 << 10];
};

static void peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(p->lfd, 0);
	int rcvbuf = PEER_RCVBUF; /* inherited by accepted sockets; set before listen() */
	ck_assert_int_eq(setsockopt(p->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&a, len), 0);
	ck_assert_int_eq(listen(p->lfd, 16), 0);
	ck_assert_int_eq(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
	p->port = ntohs(a.sin_port);
	ck_assert_int_eq(pipe2(p->hold, O_CLOEXEC), 0);
}

static struct peer_conn *peer_add(struct peer *p, enum peer_act act, size_t first, const char *head,
                                  size_t file_off, size_t file_len, const char *tail)
{
	ck_assert_uint_lt(p->nconns, 4);
	struct peer_conn *pc = &p->conns[p->nconns++];
	*pc = (struct peer_conn){.act = act,
	                         .first = first,
	                         .head = head != NULL ? head : "",
	                         .tail = tail != NULL ? tail : "",
	                         .file_off = file_off,
	                         .file_len = file_len};
	return pc;
}

static size_t peer_total(const struct peer_conn *pc)
{
	return strlen(pc->head) + pc->file_len + strlen(pc->tail);
}

static void peer_check(struct peer_conn *pc, const unsigned char *b, size_t n)
{
	size_t hl = strlen(pc->head), tl = strlen(pc->tail);
	for (size_t i = 0; i < n && pc->bad_at == 0; i++) {
		size_t at = pc->got + i;
		int want = at < hl                  ? (unsigned char)pc->head[at]
		           : at < hl + pc->file_len ? pattern(pc->file_off + at - hl)
		           : at < hl + pc->file_len + tl
		               ? (unsigned char)pc->tail[at - hl - pc->file_len]
		               : -1;
		if (want != b[i])
			pc->bad_at = at + 1;
	}
	pc->got += n;
}

/* Reads until `limit` bytes in all have arrived, the end, or an error; false at the end or an
 * error (pc->end says which). */
static bool peer_read(struct peer *p, struct peer_conn *pc, int fd, size_t limit)
{
	while (pc->got < limit) {
		size_t want = limit - pc->got < sizeof(p->buf) ? limit - pc->got : sizeof(p->buf);
		ssize_t n = recv_some(fd, p->buf, want);
		if (n <= 0) {
			pc->end = n == 0 ? 0 : -errno;
			return false;
		}
		peer_check(pc, p->buf, (size_t)n);
	}
	return true;
}

static void peer_serve(struct peer *p, struct peer_conn *pc, int fd)
{
	if (!peer_read(p, pc, fd, pc->first))
		return;
	switch (pc->act) {
	case PEER_RESET: {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		pc->end = 1;
		return;
	}
	case PEER_CLOSE:
		pc->end = 1;
		return;
	case PEER_HOLD: {
		if (pc->on_first != NULL)
			pc->on_first(p);
		char c;
		while (read(p->hold[0], &c, 1) < 0 && errno == EINTR)
			;
		break;
	}
	case PEER_READ_ALL:
		if (pc->on_first != NULL)
			pc->on_first(p);
		break;
	}
	peer_read(p, pc, fd, SIZE_MAX);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	for (unsigned i = 0; i < p->nconns; i++) {
		struct peer_conn *pc = &p->conns[i];
		int fd;
		while ((fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
			;
		if (fd < 0) {
			pc->end = -errno;
			return NULL;
		}
		set_io_timeouts(fd, IO_TIMEOUT_S); /* bounds a hang; never reached otherwise */
		peer_serve(p, pc, fd);
		close(fd);
	}
	return NULL;
}

/* Lets a PEER_HOLD connection read on. */
static void peer_release(struct peer *p)
{
	if (p->hold[1] >= 0) {
		close(p->hold[1]);
		p->hold[1] = -1;
	}
}

static void peer_end(struct peer *p)
{
	peer_release(p);
	pthread_join(p->thread, NULL);
	close(p->hold[0]);
	close(p->lfd);
}

/* The peer checked every byte it read, and read `total` bytes (SIZE_MAX: any number) before
 * its reading ended as `end` (INT_MIN: any way). */
static void assert_peer_conn(const struct peer_conn *pc, size_t total, int end)
{
	ck_assert_msg(pc->bad_at == 0, "the peer read a wrong byte at offset %zu of %zu",
	              pc->bad_at - 1, pc->got);
	if (total != SIZE_MAX)
		ck_assert_msg(pc->got == total, "the peer read %zu bytes, expected %zu", pc->got,
		              total);
	if (end != INT_MIN)
		ck_assert_msg(pc->end == end, "the peer's reading ended with %d, expected %d",
		              pc->end, end);
}

/* What every case's actor state begins with. */
struct script {
	struct peer *peer;
	actor_file_t f;
	actor_conn_t c;
	int ended;
};

static void owner_destroyed(void *state)
{
	struct script *s = state;
	atomic_store(&s->peer->owner_gone, 1);
}

/* Runs `fn` with `s` on one worker, the peer serving its connections, until every actor has
 * stopped. */
static actor_system_t *run_with_peer(struct peer *p, actor_config_t cfg, actor_behavior_fn *fn,
                                     struct script *s, const char *what)
{
	s->peer = p;
	actor_system_t *sys = backend_system_cfg(cfg);
	actor_spawn_opts_t opts = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 0, .destroy = owner_destroyed};
	actor_ref_t a = spawn_ok(sys, &opts, fn, s);
	p->sys = sys;
	p->owner = a;
	ck_assert_int_eq(pthread_create(&p->thread, NULL, peer_main, p), 0);
	send_ok(sys, a, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, what);
	peer_end(p);
	assert_no_failures(); /* first: what went wrong inside says most */
	return sys;
}

/* What every case ends with: nothing open, nothing pending (but at most `running` operations
 * still on a pool thread: see stop_mid_send), no message lost but the `dropped` answers. */
static void assert_settled(actor_system_t *sys, uint64_t dropped, uint64_t running)
{
	ck_assert_uint_eq(STAT_SUM(sys, files), 0);
	ck_assert_uint_le(STAT_SUM(sys, file_ops), running);
	ck_assert_uint_eq(STAT_SUM(sys, file_ops_dropped), dropped);
	ck_assert_uint_eq(STAT_SUM(sys, conns), 0);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.dead_letters, 0);
}

static void assert_all_settled(actor_system_t *sys, uint64_t dropped)
{
	assert_settled(sys, dropped, 0);
}

static const actor_tcp_event_t *tcp_event(const actor_msg_t *m)
{
	return actor_msg_data((actor_msg_t *)m);
}

/* ---------------------------------------------------------------------------------------------
 * The whole range, between two writes
 */

#define SEND_LEN (10u << 20)

struct whole {
	struct script s;
	int sent;
};

static void whole_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct whole *w = state;
	struct script *s = &w->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("big"), O_RDONLY, 0, 1));
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		EXPECT(tcp_event(msg)->error == 0, "connect: %d", tcp_event(msg)->error);
		CALL_OK(actor_tcp_write(ctx, s->c, "HEAD", 4));
		CALL_OK(actor_file_send(ctx, s->f, 0, SEND_LEN, s->c, 2));
		CALL_OK(actor_tcp_write(ctx, s->c, "TAIL", 4));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	if (d->op == ACTOR_FILE_OPEN) {
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		return;
	}
	if (d->op == ACTOR_FILE_CLOSE) {
		EXPECT(w->sent == 1, "the close answered before the send");
		s->ended = 1;
		actor_exit(ctx, 0);
		return;
	}
	EXPECT(d->op == ACTOR_FILE_SEND && d->tag == 2 && d->result == SEND_LEN,
	       "send: op %d result %" PRId64, d->op, d->result);
	w->sent++;
	CALL_OK(actor_tcp_close(ctx, s->c));
	CALL_OK(actor_file_close(ctx, s->f, 3));
}

START_TEST(a_file_sent_on_a_connection_arrives_whole_between_its_writes)
{
	make_dir();
	make_file("big", SEND_LEN);
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	struct peer_conn *pc = peer_add(p, PEER_READ_ALL, 0, "HEAD", 0, SEND_LEN, "TAIL");
	struct whole w = {0};
	actor_system_t *sys =
	    run_with_peer(p, (actor_config_t){.workers = 1}, whole_behavior, &w.s, "file send");
	ck_assert_int_eq(w.s.ended, 1);
	ck_assert_int_eq(w.sent, 1);
	assert_peer_conn(pc, peer_total(pc), 0);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A peer that resets or closes in the middle of a large send
 */

/* A file large enough that, once the peer has read PEER_READS_FIRST bytes of it, most of it is
 * still to be sent: the sender's socket buffer (at most tcp_wmem's maximum) and the peer's
 * (PEER_RCVBUF, doubled by the kernel) hold only a part of it. */
static size_t big_len(void)
{
	unsigned long lo, def, max = 4u << 20;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
	if (f != NULL) {
		if (fscanf(f, "%lu %lu %lu", &lo, &def, &max) != 3)
			max = 4u << 20;
		fclose(f);
	}
	size_t held = max + 2 * PEER_RCVBUF + PEER_READS_FIRST;
	size_t len = 32u << 20;
	return len > 4 * held ? len : 4 * held;
}

static size_t big; /* big_len(), for the behaviours */

static void make_big_file(void)
{
	big = big_len();
	make_file("big", big);
}

struct broken {
	struct script s;
	int sends, closed_eof, closed_err, closes;
	int64_t send_result;
	int close_error;
};

static void broken_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct broken *b = state;
	struct script *s = &b->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("big"), O_RDONLY, 0, 1));
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		CALL_OK(actor_tcp_write(ctx, s->c, "HEAD", 4));
		CALL_OK(actor_file_send(ctx, s->f, 0, big, s->c, 2));
		return;
	}
	if (msg->type == MSG_RESUME) { /* our own end: no CLOSED follows */
		CALL_OK(actor_tcp_abort(ctx, s->c));
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, s->c, 9), -ESRCH);
		CALL_OK(actor_file_close(ctx, s->f, 3));
		atomic_store(&s->peer->owner_aborted, 1);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		int err = tcp_event(msg)->error;
		EXPECT(b->closed_err == 0, "CLOSED (%d) after CLOSED with an error", err);
		if (err == 0) { /* the peer's FIN came first: the send goes on into its reset */
			EXPECT(b->closed_eof++ == 0, "a second CLOSED for the peer's end");
			return;
		}
		b->closed_err++;
		b->close_error = err;
		/* Gone: later writes and sends are refused, an empty send included. */
		CALL_FAILS(actor_tcp_write(ctx, s->c, "x", 1), -EPIPE);
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 1, s->c, 9), -EPIPE);
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, s->c, 9), -EPIPE);
		CALL_OK(actor_file_close(ctx, s->f, 3));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	switch (d->op) {
	case ACTOR_FILE_OPEN:
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		break;
	case ACTOR_FILE_SEND:
		EXPECT(d->tag == 2, "send tag %" PRIu64, d->tag);
		b->sends++;
		b->send_result = d->result;
		break;
	case ACTOR_FILE_CLOSE:
		EXPECT(d->result == 0, "close: %" PRId64, d->result);
		EXPECT(b->sends == 1, "the close answered after %d sends", b->sends);
		b->closes++;
		s->ended = 1;
		actor_exit(ctx, 0);
		break;
	default:
		NOTE_FAIL("op %d", d->op);
	}
}

/* The peer has read part of the file: the owner aborts the connection now; the peer reads on
 * once it has (reading on at once could let the rest through first). */
static void tell_owner_to_abort(struct peer *p)
{
	int rc = actor_send(p->sys, p->owner, MSG_RESUME, NULL, 0);
	EXPECT(rc == 0, "actor_send: %d", rc);
	EXPECT(WAIT_UNTIL(atomic_load(&p->owner_aborted), TEST_WATCHDOG),
	       "the owner did not abort");
}

/* `act`: what the peer does once it has read part of the file; PEER_READ_ALL: it reads on,
 * and the owner aborts the connection. */
static void break_mid_send(enum peer_act act)
{
	make_dir();
	make_big_file();
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	struct peer_conn *pc = peer_add(p, act, PEER_READS_FIRST, "HEAD", 0, big, NULL);
	if (act == PEER_READ_ALL)
		pc->on_first = tell_owner_to_abort;
	struct broken b = {0};
	actor_system_t *sys = run_with_peer(p, (actor_config_t){.workers = 1}, broken_behavior,
	                                    &b.s, "broken mid-send");
	if (act == PEER_READ_ALL) /* reset by the abort, after what had reached the kernel */
		assert_peer_conn(pc, SIZE_MAX, -ECONNRESET);
	else
		assert_peer_conn(pc, PEER_READS_FIRST, 1);
	ck_assert_int_eq(b.s.ended, 1);
	ck_assert_int_eq(b.sends, 1);
	ck_assert_int_eq(b.send_result, -EPIPE);
	if (act == PEER_READ_ALL) {
		ck_assert_int_eq(b.closed_err, 0);
	} else {
		ck_assert_int_eq(b.closed_err, 1);
		ck_assert_msg(b.close_error == -EPIPE || b.close_error == -ECONNRESET,
		              "CLOSED with %d", b.close_error);
	}
	ck_assert_int_eq(b.closes, 1);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}

START_TEST(a_peer_that_resets_mid_send_fails_the_send_and_the_connection_once)
{
	break_mid_send(PEER_RESET);
}
END_TEST

/* With bytes still unread a close is a reset too; with none (the peer had read all that had
 * arrived) it is a FIN, and the send goes on into the peer's reset: CLOSED for the peer's end
 * may come first, then CLOSED with the error. */
START_TEST(a_peer_that_closes_mid_send_fails_the_send_and_the_connection_once)
{
	break_mid_send(PEER_CLOSE);
}
END_TEST

START_TEST(an_abort_mid_send_answers_the_send_once_with_epipe)
{
	break_mid_send(PEER_READ_ALL);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * An owner that stops, or a system that shuts down, with a large send in flight
 */

enum stop_how {
	STOP_EXIT,     /* the owner returns stop (actor_exit) when told to */
	STOP_KILLED,   /* another thread stops it (actor_stop) */
	STOP_SHUTDOWN, /* the system shuts down, its drain time 0, the peer reading nothing */
};

struct stopper {
	struct script s;
	int answers;
};

static void stopper_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct stopper *st = state;
	struct script *s = &st->s;
	switch (msg->type) {
	case MSG_GO:
		CALL_OK(actor_file_open(ctx, path_in_dir("big"), O_RDONLY, 0, 1));
		return;
	case MSG_STOP:
		s->ended = 1;
		actor_exit(ctx, 0);
		return;
	case ACTOR_MSG_TCP_CONNECTED:
		CALL_OK(actor_tcp_write(ctx, s->c, "HEAD", 4));
		CALL_OK(actor_file_send(ctx, s->f, 0, big, s->c, 2));
		CALL_OK(actor_tcp_write(ctx, s->c, "TAIL", 4));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d != NULL && d->op == ACTOR_FILE_OPEN) {
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		return;
	}
	st->answers++; /* none may come: the owner stops before the send can end */
	NOTE_FAIL("message %#x (op %d, result %" PRId64 ") before the stop", msg->type,
	          d != NULL ? d->op : 0, d != NULL ? d->result : 0);
}

/* The peer has read part of the file: the owner stops now; the peer reads on once it has. */
static void tell_owner_to_exit(struct peer *p)
{
	int rc = actor_send(p->sys, p->owner, MSG_STOP, NULL, 0);
	EXPECT(rc == 0, "actor_send: %d", rc);
	EXPECT(WAIT_UNTIL(atomic_load(&p->owner_gone), TEST_WATCHDOG), "the owner did not stop");
}

static void stop_owner(struct peer *p)
{
	int rc = actor_stop(p->sys, p->owner);
	EXPECT(rc == 0, "actor_stop: %d", rc);
	EXPECT(WAIT_UNTIL(atomic_load(&p->owner_gone), TEST_WATCHDOG), "the owner did not stop");
}

static void shut_system_down(struct peer *p)
{
	int rc = actor_system_shutdown(p->sys);
	EXPECT(rc == 0, "actor_system_shutdown: %d", rc);
}

static void stop_mid_send(enum stop_how how)
{
	make_dir();
	make_big_file();
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	struct peer_conn *pc = peer_add(p, how == STOP_SHUTDOWN ? PEER_HOLD : PEER_READ_ALL,
	                                PEER_READS_FIRST, "HEAD", 0, big, "TAIL");
	pc->on_first = how == STOP_EXIT     ? tell_owner_to_exit
	               : how == STOP_KILLED ? stop_owner
	                                    : shut_system_down;
	struct stopper st = {0};
	actor_config_t cfg = {.workers = 1, .shutdown_drain_ms = how == STOP_SHUTDOWN ? -1 : 0};
	actor_system_t *sys = run_with_peer(p, cfg, stopper_behavior, &st.s, "owner stops");
	ck_assert_int_eq(atomic_load(&p->owner_gone), 1);
	ck_assert_int_eq(st.answers, 0);
	ck_assert_int_eq(st.s.ended, how == STOP_EXIT);
	if (how == STOP_SHUTDOWN) /* the rest was dropped, with a reset */
		assert_peer_conn(pc, SIZE_MAX, INT_MIN);
	else /* the owner's connection was closed: what was queued was still sent */
		assert_peer_conn(pc, peer_total(pc), 0);
	/* The send's answer was dropped, its owner gone. At a shutdown with no drain time the
	 * connection is reset only as the worker exits; the send ends then, and the file's close
	 * starts: on a pool thread (epoll) it ends in actor_system_free, as operations that run
	 * when a worker exits do. The descriptors counted below are the proof that it did. */
	assert_settled(sys, 1, how == STOP_SHUTDOWN ? 1 : 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}

START_TEST(an_owner_that_exits_mid_send_still_sends_the_rest_and_closes_the_file)
{
	stop_mid_send(STOP_EXIT);
}
END_TEST

START_TEST(an_owner_stopped_mid_send_still_sends_the_rest_and_closes_the_file)
{
	stop_mid_send(STOP_KILLED);
}
END_TEST

START_TEST(a_shutdown_mid_send_to_a_peer_that_reads_nothing_frees_everything_once)
{
	stop_mid_send(STOP_SHUTDOWN);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A file shorter than the range: -ENODATA for the send and the connection
 */

#define SHORT_LEN ((1u << 20) + 100)

struct shorter {
	struct script s;
	int conn; /* 0: a range past the file's end; 1: a range that starts at its end */
	int sends, closed;
};

static void shorter_connected(actor_ctx_t *ctx, struct shorter *sh)
{
	struct script *s = &sh->s;
	CALL_OK(actor_tcp_write(ctx, s->c, "HEAD", 4));
	if (sh->conn == 0)
		CALL_OK(actor_file_send(ctx, s->f, 0, 2 * SHORT_LEN, s->c, 10));
	else
		CALL_OK(actor_file_send(ctx, s->f, SHORT_LEN, 10, s->c, 11));
	CALL_OK(actor_tcp_write(ctx, s->c, "TAIL", 4)); /* never reaches the peer */
}

static void shorter_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct shorter *sh = state;
	struct script *s = &sh->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("short"), O_RDONLY, 0, 1));
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		shorter_connected(ctx, sh);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		EXPECT(tcp_event(msg)->error == -ENODATA, "connection %d: CLOSED with %d", sh->conn,
		       tcp_event(msg)->error);
		EXPECT(sh->closed++ == sh->conn, "connection %d: a second CLOSED", sh->conn);
		CALL_FAILS(actor_tcp_write(ctx, s->c, "x", 1), -EPIPE);
		if (sh->conn++ == 0)
			CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		else
			CALL_OK(actor_file_close(ctx, s->f, 3));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	switch (d->op) {
	case ACTOR_FILE_OPEN:
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		break;
	case ACTOR_FILE_SEND:
		EXPECT(d->tag == 10u + (unsigned)sh->sends && d->result == -ENODATA,
		       "send %" PRIu64 ": %" PRId64, d->tag, d->result);
		sh->sends++;
		break;
	case ACTOR_FILE_CLOSE:
		EXPECT(sh->sends == 2, "the close answered after %d sends", sh->sends);
		s->ended = 1;
		actor_exit(ctx, 0);
		break;
	default:
		NOTE_FAIL("op %d", d->op);
	}
}

START_TEST(a_file_shorter_than_the_range_fails_the_send_and_the_connection_with_enodata)
{
	make_dir();
	make_file("short", SHORT_LEN);
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	/* The file's bytes go out, then the connection ends: "TAIL" never follows them. */
	struct peer_conn *pc0 = peer_add(p, PEER_READ_ALL, 0, "HEAD", 0, SHORT_LEN, NULL);
	struct peer_conn *pc1 = peer_add(p, PEER_READ_ALL, 0, "HEAD", 0, 0, NULL);
	struct shorter sh = {0};
	actor_system_t *sys =
	    run_with_peer(p, (actor_config_t){.workers = 1}, shorter_behavior, &sh.s, "short file");
	ck_assert_int_eq(sh.s.ended, 1);
	ck_assert_int_eq(sh.sends, 2);
	ck_assert_int_eq(sh.closed, 2);
	assert_peer_conn(pc0, 4 + SHORT_LEN, 0);
	assert_peer_conn(pc1, 4, 0);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * An empty range: checked as any other, answered at once
 */

enum { EMPTY_OPEN_RO = 1, EMPTY_OPEN_WO, EMPTY_SEND, EMPTY_CLOSE_RO, EMPTY_CLOSE_WO };

struct empty {
	struct script s;
	actor_file_t wo; /* opened for writing only */
	int conn;        /* 0: the peer reads; 1: it resets at once; 2: closed by us */
	int sends, closes, closed_eof;
};

/* Arguments refused at the call, whatever the connection. */
static void empty_bad_arguments(actor_ctx_t *ctx, struct empty *e)
{
	struct script *s = &e->s;
	CALL_FAILS(actor_file_send(NULL, s->f, 0, 0, s->c, 0), -EINVAL);
	CALL_FAILS(actor_file_send(ctx, s->f, -1, 0, s->c, 0), -EINVAL);
	CALL_FAILS(actor_file_send(ctx, s->f, 0, (size_t)ACTOR_FILE_IO_MAX + 1, s->c, 0), -EINVAL);
	CALL_FAILS(actor_file_send(ctx, s->f, INT64_MAX, 1, s->c, 0), -EINVAL);
	CALL_FAILS(actor_file_send(ctx, (actor_file_t){0}, 0, 0, s->c, 0), -EBADF);
	CALL_FAILS(actor_file_send(ctx, (actor_file_t){12345}, 0, 0, s->c, 0), -EBADF);
	/* A file that cannot be read: refused at once, the connection untouched. */
	CALL_FAILS(actor_file_send(ctx, e->wo, 0, 0, s->c, 0), -EBADF);
	CALL_FAILS(actor_file_send(ctx, e->wo, 0, 10, s->c, 0), -EBADF);
	/* No such connection. */
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, (actor_conn_t){0}, 0), -ESRCH);
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, (actor_conn_t){((uint64_t)7 << 56) | 1}, 0),
	           -EXDEV);
}

static void empty_connected(actor_ctx_t *ctx, struct empty *e)
{
	struct script *s = &e->s;
	switch (e->conn) {
	case 0:
		empty_bad_arguments(ctx, e);
		CALL_OK(actor_tcp_write(ctx, s->c, "HEAD", 4));
		CALL_OK(actor_file_send(ctx, s->f, 0, 0, s->c, EMPTY_SEND));
		CALL_OK(actor_tcp_write(ctx, s->c, "TAIL", 4));
		/* Shut down for writing: no more writes, no more sends, empty or not. */
		CALL_OK(actor_tcp_shutdown(ctx, s->c));
		CALL_FAILS(actor_tcp_write(ctx, s->c, "x", 1), -EPIPE);
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, s->c, 0), -EPIPE);
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 10, s->c, 0), -EPIPE);
		break;
	case 1: /* the peer resets once this byte arrives (not before: CONNECTED could fail) */
		CALL_OK(actor_tcp_write(ctx, s->c, "R", 1));
		break;
	case 2: {
		/* Closed by us: the handle is stale, for a send as for a write. */
		actor_conn_t c = s->c;
		CALL_OK(actor_tcp_close(ctx, c));
		CALL_FAILS(actor_tcp_write(ctx, c, "x", 1), -ESRCH);
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, c, 0), -ESRCH);
		CALL_FAILS(actor_file_send(ctx, s->f, 0, 10, c, 0), -ESRCH);
		CALL_OK(actor_file_close(ctx, s->f, EMPTY_CLOSE_RO));
		CALL_OK(actor_file_close(ctx, e->wo, EMPTY_CLOSE_WO));
		break;
	}
	}
}

static void empty_closed(actor_ctx_t *ctx, struct empty *e, int err)
{
	struct script *s = &e->s;
	if (e->conn == 0) {
		/* The peer's end after ours: we close, and go on to the next connection. */
		EXPECT(err == 0, "connection 0: CLOSED with %d", err);
		e->closed_eof++;
		CALL_OK(actor_tcp_close(ctx, s->c));
		e->conn++;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		return;
	}
	/* Reset: the connection failed; its handle lasts until this message returns. */
	EXPECT(e->conn == 1 && err < 0, "connection %d: CLOSED with %d", e->conn, err);
	CALL_FAILS(actor_tcp_write(ctx, s->c, "x", 1), -EPIPE);
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, s->c, 0), -EPIPE);
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 10, s->c, 0), -EPIPE);
	e->conn++;
	CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
}

static void empty_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct empty *e = state;
	struct script *s = &e->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("small"), O_RDONLY, 0, EMPTY_OPEN_RO));
		CALL_OK(actor_file_open(ctx, path_in_dir("small"), O_WRONLY, 0, EMPTY_OPEN_WO));
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		EXPECT(tcp_event(msg)->error == 0, "connect: %d", tcp_event(msg)->error);
		empty_connected(ctx, e);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		empty_closed(ctx, e, tcp_event(msg)->error);
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	switch (d->tag) {
	case EMPTY_OPEN_RO:
	case EMPTY_OPEN_WO:
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		*(d->tag == EMPTY_OPEN_RO ? &s->f : &e->wo) = d->file;
		if (s->f.id != 0 && e->wo.id != 0)
			CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		break;
	case EMPTY_SEND:
		EXPECT(d->op == ACTOR_FILE_SEND && d->result == 0 && d->file.id == s->f.id,
		       "the empty send: op %d result %" PRId64, d->op, d->result);
		e->sends++;
		break;
	case EMPTY_CLOSE_RO:
	case EMPTY_CLOSE_WO:
		EXPECT(d->op == ACTOR_FILE_CLOSE && d->result == 0, "close: %" PRId64, d->result);
		if (++e->closes == 2) {
			s->ended = 1;
			actor_exit(ctx, 0);
		}
		break;
	default:
		NOTE_FAIL("tag %" PRIu64 " op %d result %" PRId64, d->tag, d->op, d->result);
	}
}

START_TEST(an_empty_send_is_checked_as_any_other_and_answers_at_once)
{
	make_dir();
	make_file("small", 4096);
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	struct peer_conn *pc0 = peer_add(p, PEER_READ_ALL, 0, "HEAD", 0, 0, "TAIL");
	struct peer_conn *pc1 = peer_add(p, PEER_RESET, 1, "R", 0, 0, NULL);
	struct peer_conn *pc2 = peer_add(p, PEER_READ_ALL, 0, NULL, 0, 0, NULL);
	struct empty e = {0};
	actor_system_t *sys =
	    run_with_peer(p, (actor_config_t){.workers = 1}, empty_behavior, &e.s, "empty send");
	ck_assert_int_eq(e.s.ended, 1);
	ck_assert_int_eq(e.sends, 1);
	ck_assert_int_eq(e.closed_eof, 1);
	assert_peer_conn(pc0, 8, 0);
	assert_peer_conn(pc1, 1, 1);
	assert_peer_conn(pc2, 0, 0);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A TLS connection: no file sends, empty or not (sendfile would bypass the encryption)
 */

struct tls_case {
	struct script s;
	actor_tls_t *tls;
	int closes;
};

static void tls_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct tls_case *t = state;
	struct script *s = &t->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("small"), O_RDONLY, 0, 1));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	if (d->op == ACTOR_FILE_CLOSE) {
		t->closes++;
		s->ended = 1;
		actor_exit(ctx, 0);
		return;
	}
	EXPECT(d->op == ACTOR_FILE_OPEN && d->result == 0, "open: %" PRId64, d->result);
	s->f = d->file;
	actor_connect_opts_t opts = {.host = "127.0.0.1", .port = s->peer->port, .tls = t->tls};
	CALL_OK(actor_tcp_connect_opts(ctx, &opts, &s->c));
	/* Refused whatever the connection's state: still connecting here. */
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 10, s->c, 2), -EOPNOTSUPP);
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, s->c, 2), -EOPNOTSUPP);
	CALL_OK(actor_tcp_abort(ctx, s->c));
	CALL_OK(actor_file_close(ctx, s->f, 3));
}

START_TEST(a_tls_connection_refuses_file_sends)
{
	char why[256];
	struct tls_case t = {0};
	int rc = actor_tls_create(&(actor_tls_opts_t){.verify = ACTOR_TLS_VERIFY_NONE}, &t.tls, why,
	                          sizeof(why));
	if (rc == -ENOTSUP) {
		printf("SKIP %s: built without OpenSSL\n", __func__);
		return;
	}
	ck_assert_msg(rc == 0, "actor_tls_create: %d: %s", rc, why);
	make_dir();
	make_file("small", 4096);
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p); /* accepts nothing: the connection is aborted as it connects */
	actor_system_t *sys =
	    run_with_peer(p, (actor_config_t){.workers = 1}, tls_behavior, &t.s, "TLS");
	ck_assert_int_eq(t.s.ended, 1);
	ck_assert_int_eq(t.closes, 1);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	actor_tls_free(t.tls);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A close of the file while its sends are in flight
 */

#define PARTS 3
#define MID_LEN ((8u << 20) + 123)

struct closer {
	struct script s;
	int next_send; /* the tag of the part expected next */
	int empty_done, closes;
};

static void closer_connected(actor_ctx_t *ctx, struct closer *cl)
{
	struct script *s = &cl->s;
	CALL_OK(actor_tcp_write(ctx, s->c, "HEAD", 4));
	size_t part = MID_LEN / PARTS;
	for (unsigned i = 0; i < PARTS; i++) {
		size_t len = i + 1 < PARTS ? part : MID_LEN - i * part;
		CALL_OK(actor_file_send(ctx, s->f, (int64_t)(i * part), len, s->c, i + 1));
	}
	CALL_OK(actor_file_send(ctx, s->f, 0, 0, s->c, 100));
	CALL_OK(actor_tcp_write(ctx, s->c, "TAIL", 4));
	CALL_OK(actor_file_close(ctx, s->f, 200));
	/* The handle is gone at once; the sends go on. */
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 0, s->c, 0), -EBADF);
	CALL_FAILS(actor_file_send(ctx, s->f, 0, 10, s->c, 0), -EBADF);
	CALL_OK(actor_tcp_close(ctx, s->c)); /* and so does the connection's output */
	cl->next_send = 1;
}

static void closer_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct closer *cl = state;
	struct script *s = &cl->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("mid"), O_RDONLY, 0, 1));
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		closer_connected(ctx, cl);
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	if (d->op == ACTOR_FILE_OPEN) {
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		return;
	}
	if (d->op == ACTOR_FILE_CLOSE) {
		EXPECT(d->tag == 200 && d->result == 0, "close: %" PRId64, d->result);
		EXPECT(cl->next_send == PARTS + 1 && cl->empty_done == 1,
		       "the close answered before its sends: %d of %d parts, %d empty",
		       cl->next_send - 1, PARTS, cl->empty_done);
		cl->closes++;
		s->ended = 1;
		actor_exit(ctx, 0);
		return;
	}
	EXPECT(d->op == ACTOR_FILE_SEND, "op %d", d->op);
	EXPECT(cl->closes == 0, "a send answered after the close");
	if (d->tag == 100) {
		EXPECT(d->result == 0, "the empty send: %" PRId64, d->result);
		cl->empty_done++;
		return;
	}
	size_t part = MID_LEN / PARTS;
	int64_t len = d->tag < PARTS ? (int64_t)part : (int64_t)(MID_LEN - (PARTS - 1) * part);
	EXPECT(d->tag == (uint64_t)cl->next_send && d->result == len,
	       "part %" PRIu64 " (expected %d): %" PRId64, d->tag, cl->next_send, d->result);
	cl->next_send++;
}

START_TEST(a_close_of_the_file_answers_after_its_sends_in_flight)
{
	make_dir();
	make_file("mid", MID_LEN);
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	struct peer_conn *pc = peer_add(p, PEER_READ_ALL, 0, "HEAD", 0, MID_LEN, "TAIL");
	struct closer cl = {0};
	actor_system_t *sys = run_with_peer(p, (actor_config_t){.workers = 1}, closer_behavior,
	                                    &cl.s, "close with sends in flight");
	ck_assert_int_eq(cl.s.ended, 1);
	ck_assert_int_eq(cl.closes, 1);
	assert_peer_conn(pc, peer_total(pc), 0);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Many small ranges in a row: each goes out whole and answers, in order. The socket takes
 * thousands of them at a time, so a backend that went from one to the next by recursion would
 * run out of stack: the workers get small stacks here (the default for new threads, which the
 * library's threads take), so that it would, at once.
 */

#define SMALL_RANGES 40000
#define SMALL_RANGE 1
#define SMALL_STACK (256u << 10)

struct ranges {
	struct script s;
	unsigned answered;
	int closes;
};

static void ranges_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct ranges *r = state;
	struct script *s = &r->s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("mid"), O_RDONLY, 0, 0));
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		for (unsigned i = 0; i < SMALL_RANGES; i++)
			CALL_OK(actor_file_send(ctx, s->f, (int64_t)i * SMALL_RANGE, SMALL_RANGE,
			                        s->c, i));
		CALL_OK(actor_tcp_close(ctx, s->c));
		CALL_OK(actor_file_close(ctx, s->f, SMALL_RANGES));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	if (d->op == ACTOR_FILE_OPEN) {
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_tcp_connect(ctx, "127.0.0.1", s->peer->port, &s->c));
		return;
	}
	if (d->op == ACTOR_FILE_CLOSE) {
		EXPECT(r->answered == SMALL_RANGES, "the close answered after %u sends",
		       r->answered);
		r->closes++;
		s->ended = 1;
		actor_exit(ctx, 0);
		return;
	}
	EXPECT(d->tag == r->answered && d->result == SMALL_RANGE,
	       "send %" PRIu64 " (expected %u): %" PRId64, d->tag, r->answered, d->result);
	r->answered++;
}

START_TEST(many_small_ranges_in_a_row_arrive_in_order)
{
	make_dir();
	make_file("mid", SMALL_RANGES * SMALL_RANGE);
	unsigned fds = count_open_fds();
	struct peer *p = malloc(sizeof(*p));
	peer_init(p);
	struct peer_conn *pc =
	    peer_add(p, PEER_READ_ALL, 0, NULL, 0, SMALL_RANGES * SMALL_RANGE, NULL);
	pthread_attr_t before, small;
	ck_assert_int_eq(pthread_getattr_default_np(&before), 0);
	ck_assert_int_eq(pthread_attr_init(&small), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&small, SMALL_STACK), 0);
	ck_assert_int_eq(pthread_setattr_default_np(&small), 0);
	pthread_attr_destroy(&small);
	struct ranges r = {0};
	actor_system_t *sys =
	    run_with_peer(p, (actor_config_t){.workers = 1}, ranges_behavior, &r.s, "small ranges");
	/* As it was, for the cases after this one when they share its process (CK_FORK=no). */
	ck_assert_int_eq(pthread_setattr_default_np(&before), 0);
	pthread_attr_destroy(&before);
	ck_assert_int_eq(r.s.ended, 1);
	ck_assert_uint_eq(r.answered, SMALL_RANGES);
	assert_peer_conn(pc, peer_total(pc), 0);
	assert_all_settled(sys, 0);
	actor_system_free(sys);
	free(p);
	ck_assert_uint_eq(count_open_fds(), fds);
	remove_dir();
}
END_TEST

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	TCase *tc;
	tc = backend_tcase(s, b, 0, "send", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, a_file_sent_on_a_connection_arrives_whole_between_its_writes);
	tcase_add_test(tc, a_close_of_the_file_answers_after_its_sends_in_flight);
	tcase_add_test(tc, an_empty_send_is_checked_as_any_other_and_answers_at_once);
	tcase_add_test(tc, many_small_ranges_in_a_row_arrive_in_order);
	tc = backend_tcase(s, b, 1, "send errors", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, a_peer_that_resets_mid_send_fails_the_send_and_the_connection_once);
	tcase_add_test(tc, a_peer_that_closes_mid_send_fails_the_send_and_the_connection_once);
	tcase_add_test(tc, an_abort_mid_send_answers_the_send_once_with_epipe);
	tcase_add_test(
	    tc, a_file_shorter_than_the_range_fails_the_send_and_the_connection_with_enodata);
	tcase_add_test(tc, a_tls_connection_refuses_file_sends);
	tc = backend_tcase(s, b, 2, "send and stop", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, an_owner_that_exits_mid_send_still_sends_the_rest_and_closes_the_file);
	tcase_add_test(tc, an_owner_stopped_mid_send_still_sends_the_rest_and_closes_the_file);
	tcase_add_test(tc, a_shutdown_mid_send_to_a_peer_that_reads_nothing_frees_everything_once);
}

int main(int argc, char **argv)
{
	return backend_main(argc, argv, "file_send", add_cases);
}
