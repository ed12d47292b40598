/* test_net_fake.c: the net service's connection state machine, driven by a scripted reactor
 * backend (fake_reactor.h) instead of the kernel: bytes that arrive after a pause was applied,
 * the end of input behind them, writes that complete slowly or fail, a close that must wait for
 * its output and for operations in flight, descriptors running out, an owner stopping. Each
 * case decides exactly when each event happens, which a socket cannot.
 *
 * One worker; the owner actor listens, adopts each accepted connection and logs what it gets
 * as text ("D:bytes" for data, "C:err" for CLOSED), under a lock the test reads.
 */
#include "common.h"

#include <fcntl.h>
#include <stdarg.h>

#include "fake_reactor.h"

enum {
	OP_LISTEN = 1,
	OP_PAUSE,
	OP_RESUME,
	OP_PAUSE_RESUME, /* both in one turn */
	OP_WRITE,
	OP_CLOSE,
	OP_ABORT,
	OP_EXIT,
	OP_READ_LIMIT,
	OP_GATE, /* the next DATA waits at the gate */
	OP_PING,
	OP_FRAMING, /* payload: actor_tcp_framing_t */
};

static struct {
	pthread_mutex_t mu;
	char log[4096];
	size_t log_len;
	unsigned pings;
	actor_conn_t conn;
	bool have_conn;
	int last_rc;
} O = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_int gate_armed, gate;

static void log_add(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&O.mu);
	int n = vsnprintf(O.log + O.log_len, sizeof(O.log) - O.log_len, fmt, ap);
	if (n > 0 && O.log_len + (size_t)n < sizeof(O.log))
		O.log_len += (size_t)n;
	pthread_mutex_unlock(&O.mu);
	va_end(ap);
}

static bool log_is(const char *want)
{
	pthread_mutex_lock(&O.mu);
	bool eq = strcmp(O.log, want) == 0;
	pthread_mutex_unlock(&O.mu);
	return eq;
}

static void note_rc(int rc)
{
	pthread_mutex_lock(&O.mu);
	if (rc < 0 && O.last_rc == 0)
		O.last_rc = rc;
	pthread_mutex_unlock(&O.mu);
}

static void owner(actor_ctx_t *ctx, void *state, actor_msg_t *m)
{
	(void)state;
	switch (m->type) {
	case OP_LISTEN: {
		actor_listener_t l;
		note_rc(actor_tcp_listen(ctx, &(actor_listen_opts_t){.host = "127.0.0.1"}, &l));
		return;
	}
	case ACTOR_MSG_TCP_ACCEPTED: {
		actor_tcp_accepted_t acc;
		memcpy(&acc, actor_msg_data(m), sizeof(acc));
		note_rc(actor_tcp_handoff(ctx, acc.conn, actor_self(ctx)));
		return;
	}
	case ACTOR_MSG_TCP_ADOPTED: {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(m), sizeof(ev));
		pthread_mutex_lock(&O.mu);
		O.conn = ev.conn;
		O.have_conn = true;
		pthread_mutex_unlock(&O.mu);
		return;
	}
	case ACTOR_MSG_TCP_DATA: {
		const actor_tcp_data_t *d = actor_msg_data(m);
		if (atomic_exchange(&gate_armed, 0))
			gate_wait(&gate);
		log_add("D:%.*s ", (int)d->len, (const char *)(d + 1));
		return;
	}
	case ACTOR_MSG_TCP_CLOSED: {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(m), sizeof(ev));
		log_add("C:%d ", ev.error);
		return;
	}
	case ACTOR_MSG_TCP_OVERLONG:
		log_add("O ");
		return;
	}
	actor_conn_t c = O.conn; /* set by ADOPTED, on this thread */
	switch (m->type) {
	case OP_PAUSE:
		note_rc(actor_tcp_pause(ctx, c));
		break;
	case OP_RESUME:
		note_rc(actor_tcp_resume(ctx, c));
		break;
	case OP_PAUSE_RESUME:
		note_rc(actor_tcp_pause(ctx, c));
		note_rc(actor_tcp_resume(ctx, c));
		break;
	case OP_WRITE:
		note_rc(actor_tcp_write(ctx, c, actor_msg_data(m), m->size));
		break;
	case OP_CLOSE:
		note_rc(actor_tcp_close(ctx, c));
		break;
	case OP_ABORT:
		note_rc(actor_tcp_abort(ctx, c));
		break;
	case OP_EXIT:
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	case OP_READ_LIMIT:
		note_rc(actor_tcp_set_read_limit(ctx, c, msg_u64(m)));
		break;
	case OP_GATE:
		atomic_store(&gate_armed, 1);
		break;
	case OP_FRAMING: {
		actor_tcp_framing_t f;
		memcpy(&f, actor_msg_data(m), sizeof(f));
		note_rc(actor_tcp_set_framing(ctx, c, &f));
		break;
	}
	case OP_PING:
		pthread_mutex_lock(&O.mu);
		O.pings++;
		pthread_mutex_unlock(&O.mu);
		break;
	}
}

static actor_system_t *sys;
static actor_ref_t who;

static void op(uint32_t type)
{
	send_ok(sys, who, type, NULL, 0);
}

static unsigned pings(void)
{
	pthread_mutex_lock(&O.mu);
	unsigned n = O.pings;
	pthread_mutex_unlock(&O.mu);
	return n;
}

/* Everything sent to the owner before this call has been handled when it returns: the owner's
 * mailbox is one queue, and the ping is pushed after every earlier push. */
static void sync_owner(void)
{
	unsigned n = pings();
	op(OP_PING);
	assert_eventually(pings() > n, 10);
}

static bool have_conn(void)
{
	pthread_mutex_lock(&O.mu);
	bool h = O.have_conn;
	pthread_mutex_unlock(&O.mu);
	return h;
}

/* A system on the fake backend, the owner listening, and one connection it has adopted and
 * reads: returns the connection's descriptor; *lfd the listener's. */
static int setup_conn(int *lfd)
{
	fake_install();
	sys = system_new_cfg(&(actor_config_t){.workers = 1});
	ck_assert_str_eq(actor_system_reactor(sys), "fake");
	who = spawn_ok(sys, NULL, owner, NULL);
	op(OP_LISTEN);
	assert_eventually(fake_listener() >= 0, 10);
	*lfd = fake_listener();
	ck_assert_int_eq(fake_want(*lfd), WATCH_ACCEPT);
	int fd = fake_accept(*lfd);
	ck_assert_int_ge(fd, 0);
	assert_eventually(have_conn(), 10);
	ck_assert_msg(fake_wait_want(fd, WATCH_READ), "an adopted connection reads");
	return fd;
}

static void teardown(void)
{
	ck_assert_int_eq(O.last_rc, 0);
	actor_system_shutdown(sys);
	actor_system_free(sys);
}

START_TEST(bytes_read_after_a_pause_wait_and_come_first_on_resume)
{
	int lfd, fd = setup_conn(&lfd);
	ck_assert_int_eq(fake_read(fd, "ab", 2), 0);
	assert_eventually(log_is("D:ab "), 10);
	op(OP_PAUSE);
	ck_assert(fake_wait_want(fd, 0));
	/* A receive that was in flight when the pause was applied completes now. */
	ck_assert_int_eq(fake_read(fd, "cd", 2), 0);
	sync_owner();
	ck_assert_msg(log_is("D:ab "), "a paused connection delivered bytes: %s", O.log);
	op(OP_RESUME);
	assert_eventually(log_is("D:ab D:cd "), 10);
	ck_assert(fake_wait_want(fd, WATCH_READ));
	ck_assert_int_eq(fake_read(fd, "ef", 2), 0);
	assert_eventually(log_is("D:ab D:cd D:ef "), 10);
	teardown();
}
END_TEST

/* The kind of bug commit 7647a0f fixed on io_uring: a pause undone before it took effect left
 * the connection stalled. */
START_TEST(a_pause_undone_in_the_same_turn_leaves_reading_on)
{
	int lfd, fd = setup_conn(&lfd);
	op(OP_PAUSE_RESUME);
	sync_owner();
	ck_assert_int_eq(fake_want(fd), WATCH_READ);
	ck_assert_int_eq(fake_read(fd, "x", 1), 0);
	assert_eventually(log_is("D:x "), 10);
	/* And a pause applied, bytes in flight, then a resume: nothing stalls after. */
	op(OP_PAUSE);
	ck_assert(fake_wait_want(fd, 0));
	ck_assert_int_eq(fake_read(fd, "y", 1), 0);
	op(OP_RESUME);
	ck_assert(fake_wait_want(fd, WATCH_READ));
	ck_assert_int_eq(fake_read(fd, "z", 1), 0);
	assert_eventually(log_is("D:x D:y D:z "), 10);
	teardown();
}
END_TEST

START_TEST(the_end_behind_stashed_bytes_comes_after_them)
{
	int lfd, fd = setup_conn(&lfd);
	op(OP_PAUSE);
	ck_assert(fake_wait_want(fd, 0));
	ck_assert_int_eq(fake_read(fd, "zz", 2), 0);
	ck_assert_int_eq(fake_read_end(fd, 0), 0);
	sync_owner();
	ck_assert_msg(log_is(""), "a paused connection reported: %s", O.log);
	op(OP_RESUME);
	assert_eventually(log_is("D:zz C:0 "), 10);
	sync_owner();
	ck_assert_int_eq(fake_want(fd), 0); /* nothing more to read after the end */
	ck_assert(!fake_let_go(fd));        /* the owner decides when to close */
	op(OP_CLOSE);
	ck_assert(fake_wait_let_go(fd));
	teardown();
}
END_TEST

START_TEST(an_error_behind_stashed_bytes_comes_after_them_and_frees_the_connection)
{
	int lfd, fd = setup_conn(&lfd);
	op(OP_PAUSE);
	ck_assert(fake_wait_want(fd, 0));
	ck_assert_int_eq(fake_read(fd, "q", 1), 0);
	ck_assert_int_eq(fake_read_end(fd, -ECONNRESET), 0);
	op(OP_RESUME);
	char want[32];
	snprintf(want, sizeof(want), "D:q C:%d ", -ECONNRESET);
	assert_eventually(log_is(want), 10);
	ck_assert_msg(fake_wait_let_go(fd), "a failed connection is freed once its owner knows");
	teardown();
}
END_TEST

START_TEST(a_close_writes_its_output_before_letting_go)
{
	int lfd, fd = setup_conn(&lfd);
	ck_assert_int_eq(fake_block(fd), 0);
	send_ok(sys, who, OP_WRITE, "hello", 5);
	ck_assert(fake_wait_want(fd, WATCH_READ | WATCH_WRITE));
	op(OP_CLOSE);
	sync_owner();
	ck_assert(!fake_let_go(fd));
	ck_assert_int_eq(fake_drain(fd, 2), 2);
	ck_assert(!fake_let_go(fd));
	ck_assert_int_eq(fake_drain(fd, 100), 3);
	ck_assert(fake_wait_let_go(fd));
	char sent[16] = {0};
	ck_assert_uint_eq(fake_sent(fd, sent, sizeof(sent)), 5);
	ck_assert_str_eq(sent, "hello");
	teardown();
}
END_TEST

START_TEST(a_failed_write_reaches_the_owner_as_closed_and_frees_the_connection_after)
{
	int lfd, fd = setup_conn(&lfd);
	ck_assert_int_eq(fake_block(fd), 0);
	send_ok(sys, who, OP_WRITE, "x", 1);
	ck_assert(fake_wait_want(fd, WATCH_READ | WATCH_WRITE));
	ck_assert_int_eq(fake_write_error(fd, -EPIPE), 0);
	char want[32];
	snprintf(want, sizeof(want), "C:%d ", -EPIPE);
	assert_eventually(log_is(want), 10);
	ck_assert(fake_wait_let_go(fd));
	teardown();
}
END_TEST

START_TEST(a_descriptor_is_closed_only_once_no_operation_holds_it)
{
	int lfd, fd = setup_conn(&lfd);
	ck_assert_int_eq(fake_hold(fd), 0);
	op(OP_ABORT);
	sync_owner();
	ck_assert_msg(fcntl(fd, F_GETFD) != -1, "closed while an operation held it");
	ck_assert(!fake_let_go(fd));
	ck_assert_int_eq(fake_release(fd), 0);
	ck_assert(fake_let_go(fd));
	ck_assert_msg(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "not closed once let go");
	teardown();
}
END_TEST

START_TEST(the_read_limit_stops_reading_until_the_owner_catches_up)
{
	int lfd, fd = setup_conn(&lfd);
	send_u64(sys, who, OP_READ_LIMIT, 4);
	op(OP_GATE);
	sync_owner();
	ck_assert_int_eq(fake_read(fd, "0123456789", 10), 0);
	/* Ten bytes the owner has not handled, over a limit of four: no more reading. */
	ck_assert_int_eq(fake_want(fd), 0);
	actor_worker_stats_t st;
	ck_assert_int_eq(actor_stats_worker(sys, 0, &st), 0);
	ck_assert_uint_eq(st.read_throttles, 1);
	gate_open(&gate);
	assert_eventually(log_is("D:0123456789 "), 10);
	ck_assert_msg(fake_wait_want(fd, WATCH_READ), "reading resumes once the owner caught up");
	teardown();
}
END_TEST

START_TEST(running_out_of_descriptors_pauses_accepting_and_then_accepts_again)
{
	int lfd, fd = setup_conn(&lfd);
	(void)fd;
	ck_assert_int_eq(fake_accept_error(lfd, -EMFILE), 0);
	ck_assert_int_eq(fake_want(lfd), 0);
	ck_assert_msg(fake_wait_want(lfd, WATCH_ACCEPT), "accepting resumes after the back-off");
	actor_worker_stats_t st;
	ck_assert_int_eq(actor_stats_worker(sys, 0, &st), 0);
	ck_assert_uint_eq(st.accept_backoffs, 1);
	/* An error that concerns one connection only changes nothing. */
	ck_assert_int_eq(fake_accept_error(lfd, -ECONNABORTED), 0);
	ck_assert_int_eq(fake_want(lfd), WATCH_ACCEPT);
	teardown();
}
END_TEST

START_TEST(an_owner_that_stops_lets_go_of_its_connections_and_listeners)
{
	int lfd, fd = setup_conn(&lfd);
	op(OP_EXIT);
	ck_assert(fake_wait_let_go(fd));
	ck_assert(fake_wait_let_go(lfd));
	teardown();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Framing
 */

static void set_framing(const actor_tcp_framing_t *f)
{
	send_ok(sys, who, OP_FRAMING, f, sizeof(*f));
	sync_owner();
}

static void feed(int fd, const char *s)
{
	ck_assert_int_eq(fake_read(fd, s, strlen(s)), 0);
}

START_TEST(lines_arrive_one_per_message_however_the_reads_cut_them)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE});
	feed(fd, "he");
	feed(fd, "llo\r");
	feed(fd, "\nwor");
	feed(fd, "ld\n\nlast\r\nno end");
	assert_eventually(log_is("D:hello D:world D: D:last "), 10);
	teardown();
}
END_TEST

START_TEST(irc_lines_end_at_cr_lf_or_cr_lf_and_empty_ones_are_skipped)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE,
	                                   .flags = ACTOR_FRAME_CR_ENDS | ACTOR_FRAME_SKIP_EMPTY});
	feed(fd, "a\rb\n\r\nc\r");
	feed(fd, "\nd\n\n\ne\r\n");
	assert_eventually(log_is("D:a D:b D:c D:d D:e "), 10);
	teardown();
}
END_TEST

START_TEST(a_delimiter_cut_by_a_read_still_ends_its_frame)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_DELIM, .delim_len = 2, .delim = "||"});
	feed(fd, "x|");
	feed(fd, "|y||");
	feed(fd, "|z|");
	feed(fd, "|");
	assert_eventually(log_is("D:x D:y D:|z "), 10);
	teardown();
}
END_TEST

START_TEST(length_prefixed_frames_arrive_whole_from_single_bytes)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LENGTH, .length_bytes = 2});
	static const char in[] = "\0\3abc\0\0\0\4defg";
	for (size_t i = 0; i < sizeof(in) - 1; i++)
		ck_assert_int_eq(fake_read(fd, in + i, 1), 0);
	assert_eventually(log_is("D:abc D: D:defg "), 10);
	teardown();
}
END_TEST

START_TEST(an_overlong_frame_ends_the_input_and_the_owner_may_still_write_and_close)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE, .max = 4});
	feed(fd, "abcd\r\n"); /* four bytes and the CR LF: not too long */
	feed(fd, "abcde");
	feed(fd, "\n");
	char want[64];
	snprintf(want, sizeof(want), "D:abcd C:%d ", -EMSGSIZE);
	assert_eventually(log_is(want), 10);
	ck_assert(fake_wait_want(fd, 0)); /* no more reading */
	feed(fd, "late\n");               /* bytes in flight then are dropped */
	send_ok(sys, who, OP_WRITE, "bye", 3);
	op(OP_CLOSE);
	ck_assert(fake_wait_let_go(fd));
	char sent[8] = {0};
	ck_assert_uint_eq(fake_sent(fd, sent, sizeof(sent)), 3);
	ck_assert_str_eq(sent, "bye");
	sync_owner();
	ck_assert_msg(log_is(want), "more after the end of input: %s", O.log);
	teardown();
}
END_TEST

START_TEST(a_lone_cr_line_one_byte_over_is_overlong_at_once)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE,
	                                   .flags = ACTOR_FRAME_CR_ENDS | ACTOR_FRAME_SKIP_OVERLONG,
	                                   .max = 4});
	feed(fd, "abcde"); /* five bytes, no end: with CR_ENDS nothing can make it four */
	assert_eventually(log_is("O "), 10);
	feed(fd, "fg\rok\r");
	assert_eventually(log_is("O D:ok "), 10);
	teardown();
}
END_TEST

START_TEST(an_overlong_frame_can_be_skipped_and_reported_in_its_place)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE,
	                                   .flags = ACTOR_FRAME_SKIP_OVERLONG,
	                                   .max = 4});
	feed(fd, "ok\n0123456");
	feed(fd, "789");
	feed(fd, "\nnext\n");
	assert_eventually(log_is("D:ok O D:next "), 10);
	/* Length prefixes too: the overlong frame's bytes are counted off exactly. */
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LENGTH,
	                                   .flags = ACTOR_FRAME_SKIP_OVERLONG,
	                                   .length_bytes = 1,
	                                   .max = 4});
	feed(fd, "\x06");
	feed(fd, "abc");
	feed(fd, "def\x02hi");
	assert_eventually(log_is("D:ok O D:next O D:hi "), 10);
	teardown();
}
END_TEST

START_TEST(skipping_too_much_without_a_frame_end_fails_the_connection)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE,
	                                   .flags = ACTOR_FRAME_SKIP_OVERLONG,
	                                   .max = 4,
	                                   .skip_max = 10});
	feed(fd, "0123456789");
	feed(fd, "0123456789");
	char want[64];
	snprintf(want, sizeof(want), "O C:%d ", -EMSGSIZE);
	assert_eventually(log_is(want), 10);
	ck_assert(fake_wait_want(fd, 0));
	ck_assert(!fake_let_go(fd)); /* still the owner's, to write to and close */
	teardown();
}
END_TEST

START_TEST(framing_off_delivers_the_unfinished_frame_and_bad_options_are_refused)
{
	int lfd, fd = setup_conn(&lfd);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_LINE});
	feed(fd, "one\ntw");
	assert_eventually(log_is("D:one "), 10);
	set_framing(&(actor_tcp_framing_t){.kind = ACTOR_FRAME_NONE});
	assert_eventually(log_is("D:one D:tw "), 10);
	static const actor_tcp_framing_t bad[] = {
	    {.kind = 9},
	    {.kind = ACTOR_FRAME_DELIM},
	    {.kind = ACTOR_FRAME_DELIM, .delim_len = 9},
	    {.kind = ACTOR_FRAME_LENGTH, .length_bytes = 3},
	    {.kind = ACTOR_FRAME_LINE, .flags = 64},
	    {.kind = ACTOR_FRAME_LINE, .max = ACTOR_MSG_MAX},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		send_ok(sys, who, OP_FRAMING, &bad[i], sizeof(bad[i]));
		sync_owner();
		ck_assert_msg(O.last_rc == -EINVAL, "option %zu: %d", i, O.last_rc);
		O.last_rc = 0;
	}
	teardown();
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("net on a scripted backend");
	TCase *tc = tcase_new("connections", TEST_TIMEOUT);
	tcase_add_test(tc, bytes_read_after_a_pause_wait_and_come_first_on_resume);
	tcase_add_test(tc, a_pause_undone_in_the_same_turn_leaves_reading_on);
	tcase_add_test(tc, the_end_behind_stashed_bytes_comes_after_them);
	tcase_add_test(tc, an_error_behind_stashed_bytes_comes_after_them_and_frees_the_connection);
	tcase_add_test(tc, a_close_writes_its_output_before_letting_go);
	tcase_add_test(tc, a_failed_write_reaches_the_owner_as_closed_and_frees_the_connection_after);
	tcase_add_test(tc, a_descriptor_is_closed_only_once_no_operation_holds_it);
	tcase_add_test(tc, the_read_limit_stops_reading_until_the_owner_catches_up);
	tcase_add_test(tc, running_out_of_descriptors_pauses_accepting_and_then_accepts_again);
	tcase_add_test(tc, an_owner_that_stops_lets_go_of_its_connections_and_listeners);
	suite_add_tcase(s, tc);
	tc = tcase_new("framing", TEST_TIMEOUT);
	tcase_add_test(tc, lines_arrive_one_per_message_however_the_reads_cut_them);
	tcase_add_test(tc, irc_lines_end_at_cr_lf_or_cr_lf_and_empty_ones_are_skipped);
	tcase_add_test(tc, a_delimiter_cut_by_a_read_still_ends_its_frame);
	tcase_add_test(tc, length_prefixed_frames_arrive_whole_from_single_bytes);
	tcase_add_test(tc, an_overlong_frame_ends_the_input_and_the_owner_may_still_write_and_close);
	tcase_add_test(tc, a_lone_cr_line_one_byte_over_is_overlong_at_once);
	tcase_add_test(tc, an_overlong_frame_can_be_skipped_and_reported_in_its_place);
	tcase_add_test(tc, skipping_too_much_without_a_frame_end_fails_the_connection);
	tcase_add_test(tc, framing_off_delivers_the_unfinished_frame_and_bad_options_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(make_suite)
