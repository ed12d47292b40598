/* test_chat_net.c: the chat server over real loopback sockets. Each test starts the built
 * server (examples/chat/chat-server, or $CHAT_SERVER) on a free port as a child process, talks
 * IRC to it, and where it matters watches its descriptors (/proc/<pid>/fd) and memory.
 *
 * Stress sizes are parameters: CHAT_BROADCAST_CLIENTS (50), CHAT_BROADCAST_MSGS (200),
 * CHAT_RESET_CLIENTS (500).
 */
#include "../common.h"

#include "client.h"

#define NET_TIMEOUT 60 /* per test, before CK_TIMEOUT_MULTIPLIER */

/* ---------------------------------------------------------------------------------------------
 * Conversations
 */

START_TEST(clients_converse_in_channels_and_in_private)
{
	struct server s = server_start("--workers", "2");
	struct ircc *a = ircc_new(s.port, "alice"), *b = ircc_new(s.port, "bob");
	struct ircc *c = ircc_new(s.port, "carol"), *d = ircc_new(s.port, "dave");
	ircc_join(a, "#talk");
	ircc_join(b, "#talk");
	ircc_join(c, "#talk");
	EXPECT(a, ":carol!~carol@127.0.0.1 JOIN #talk");

	ircc_send(a, "PRIVMSG #talk :hello, both of you\r\n");
	EXPECT(b, ":alice!~alice@127.0.0.1 PRIVMSG #talk :hello, both of you");
	EXPECT(c, ":alice!~alice@127.0.0.1 PRIVMSG #talk :hello, both of you");

	ircc_send(d, "PRIVMSG bob :psst, bob\r\n");
	EXPECT(b, ":dave!~dave@127.0.0.1 PRIVMSG bob :psst, bob");

	ircc_send(a, "TOPIC #talk :today: actors\r\n");
	EXPECT(c, ":alice!~alice@127.0.0.1 TOPIC #talk :today: actors");
	ircc_send(b, "PART #talk :off to lunch\r\n");
	EXPECT(a, ":bob!~bob@127.0.0.1 PART #talk :off to lunch");
	EXPECT(c, ":bob!~bob@127.0.0.1 PART #talk :off to lunch");

	ircc_send(c, "QUIT :good night\r\n");
	EXPECT(c, "ERROR :Closing Link: 127.0.0.1 (Quit: good night)");
	EXPECT(a, ":carol!~carol@127.0.0.1 QUIT :Quit: good night");
	ck_assert(ircc_wait_eof(c, 5));

	ircc_send(d, "WHOIS alice\r\n");
	EXPECT(d, " 319 dave alice :@#talk");
	EXPECT(d, " 318 dave alice :End of /WHOIS list");
	ircc_sync(d);
	ck_assert_ptr_null(ircc_expect(d, "carol", 0.2)); /* dave shared no channel with carol */

	ircc_close(a);
	ircc_close(b);
	ircc_close(c);
	ircc_close(d);
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Broadcast conservation: every line reaches every other member exactly once, in per-sender
 * order, while everyone talks at once.
 */

struct bc_client {
	struct ircc *c;
	unsigned sent;
	unsigned got;
	unsigned *next; /* per sender: the next sequence number expected */
};

static void bc_parse(struct bc_client *cl, unsigned self, unsigned n)
{
	while (ircc_take_line(cl->c)) {
		const char *p = strstr(cl->c->line, " PRIVMSG #bc :");
		if (p == NULL)
			continue;
		unsigned from, seq;
		ck_assert_int_eq(sscanf(p, " PRIVMSG #bc :%u %u", &from, &seq), 2);
		ck_assert_uint_lt(from, n);
		ck_assert_msg(from != self, "client %u heard itself", self);
		ck_assert_msg(seq == cl->next[from], "client %u: from %u got #%u, expected #%u",
		              self, from, seq, cl->next[from]);
		cl->next[from]++;
		cl->got++;
	}
}

START_TEST(broadcast_reaches_every_member_once_in_order)
{
	unsigned n = (unsigned)test_param(0, "CHAT_BROADCAST_CLIENTS", 50);
	unsigned msgs = (unsigned)test_param(0, "CHAT_BROADCAST_MSGS", 200);
	raise_fd_limit();
	struct server s = server_start("--workers", "2", "--flood-rate", "0", "--sendq", "4194304");
	struct bc_client *cl = calloc(n, sizeof(*cl));
	for (unsigned i = 0; i < n; i++) {
		char nick[16];
		snprintf(nick, sizeof(nick), "bc%u", i);
		cl[i].c = ircc_new(s.port, nick);
		cl[i].next = calloc(n, sizeof(unsigned));
		ircc_join(cl[i].c, "#bc");
	}
	for (unsigned i = 0; i < n; i++) /* every JOIN has been seen by everyone */
		ircc_sync(cl[i].c);

	uint64_t want = (uint64_t)(n - 1) * msgs, total_sent = 0, total_got = 0;
	struct pollfd *pf = calloc(n, sizeof(*pf));
	double end = now_sec() + 50 * test_scale();
	bool done = false;
	while (!done && now_sec() < end) {
		for (unsigned i = 0; i < n; i++) {
			pf[i].fd = cl[i].c->fd;
			/* Stay at most a window ahead of what the slowest listener has heard. */
			bool may_send =
			    cl[i].sent < msgs && total_sent * (n - 1) < total_got + 200 * n;
			pf[i].events = POLLIN | (may_send ? POLLOUT : 0);
		}
		ck_assert_int_ge(poll(pf, n, 100), 0);
		done = true;
		for (unsigned i = 0; i < n; i++) {
			if (pf[i].revents & POLLOUT) {
				char line[64];
				for (int k = 0; k < 4 && cl[i].sent < msgs; k++) {
					int len = snprintf(line, sizeof(line),
					                   "PRIVMSG #bc :%u %u\r\n", i, cl[i].sent);
					ck_assert(ircc_send_raw(cl[i].c, line, (size_t)len));
					cl[i].sent++;
					total_sent++;
				}
			}
			if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				unsigned before = cl[i].got;
				ck_assert_msg(ircc_fill(cl[i].c, 0), "client %u was disconnected",
				              i);
				bc_parse(&cl[i], i, n);
				total_got += cl[i].got - before;
			}
			if (cl[i].got < want || cl[i].sent < msgs)
				done = false;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		ck_assert_msg(cl[i].got == want, "client %u heard %u lines of %llu", i, cl[i].got,
		              (unsigned long long)want);
		for (unsigned k = 0; k < n; k++)
			ck_assert_uint_eq(cl[i].next[k], k == i ? 0 : msgs);
	}
	for (unsigned i = 0; i < n; i++) { /* and nothing more comes */
		ircc_sync(cl[i].c);
		bc_parse(&cl[i], i, n);
		ck_assert_uint_eq(cl[i].got, want);
	}
	for (unsigned i = 0; i < n; i++) {
		ircc_close(cl[i].c);
		free(cl[i].next);
	}
	free(cl);
	free(pf);
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Nicks
 */

START_TEST(nick_collisions_across_workers_have_exactly_one_winner)
{
	enum { PAIRS = 40 };
	raise_fd_limit();
	struct server s = server_start("--workers", "2");
	struct ircc *x[PAIRS], *y[PAIRS];
	for (int i = 0; i < PAIRS; i++) {
		x[i] = ircc_open(s.port);
		y[i] = ircc_open(s.port);
	}
	for (int i = 0; i < PAIRS; i++) { /* both ask at once */
		char line[96];
		int len = snprintf(line, sizeof(line), "NICK Racer%d\r\nUSER r 0 * :r\r\n", i);
		ircc_send_raw(x[i], line, (size_t)len);
		len = snprintf(line, sizeof(line), "NICK racer%d\r\nUSER r 0 * :r\r\n", i);
		ircc_send_raw(y[i], line, (size_t)len);
	}
	for (int i = 0; i < PAIRS; i++) {
		struct ircc *both[2] = {x[i], y[i]};
		int won = 0, lost = 0;
		for (int k = 0; k < 2; k++) {
			/* Either the welcome or "in use", whichever comes. */
			double end = now_sec() + 10 * test_scale();
			bool decided = false;
			while (!decided && now_sec() < end) {
				while (!decided && ircc_take_line(both[k])) {
					if (strstr(both[k]->line, " 001 ") != NULL)
						won++, decided = true;
					else if (strstr(both[k]->line, " 433 ") != NULL)
						lost++, decided = true;
				}
				if (!decided)
					ircc_fill(both[k], 50);
			}
		}
		ck_assert_msg(won == 1 && lost == 1, "pair %d: %d won, %d lost", i, won, lost);
	}
	for (int i = 0; i < PAIRS; i++) {
		ircc_close(x[i]);
		ircc_close(y[i]);
	}
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Limits and bad input
 */

/* The most the kernel lets a server socket hold unsent: its send buffer grows up to tcp_wmem's
 * maximum (4 MiB by default; over loopback it gets there at once). */
static uint64_t kernel_sndbuf_max(void)
{
	unsigned long min, dflt, max;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
	bool ok = f != NULL && fscanf(f, "%lu %lu %lu", &min, &dflt, &max) == 3;
	if (f != NULL)
		fclose(f);
	return ok ? max : 4u << 20;
}

/* Reads what the observer has; counts the firehose's lines into *heard. True once the slow
 * reader's QUIT went by, which must give the send queue as the reason. */
static bool watch_firehose(struct ircc *obs, unsigned long long *heard)
{
	bool open = ircc_fill(obs, 100), gone = false;
	while (ircc_take_line(obs)) {
		*heard += strstr(obs->line, " PRIVMSG #firehose :") != NULL;
		if (strstr(obs->line, ":sloth!") != NULL && strstr(obs->line, " QUIT :") != NULL) {
			ck_assert_msg(strstr(obs->line, "Max SendQ exceeded") != NULL,
			              "the slow reader left for another reason: %s", obs->line);
			gone = true;
		}
	}
	ck_assert_msg(open, "the observer was disconnected (last line: %s)", obs->line);
	return gone;
}

START_TEST(a_slow_reader_is_disconnected_and_memory_stays_bounded)
{
	enum {
		SENDQ = 65536, /* as given to --sendq */
		SLOW_RCVBUF = 4096,
		/* Lines the hose may be ahead of the observer: 64 of some 450 bytes stay well
		 * under the observer's own send queue, so it is never the one dropped, however
		 * late this process gets the CPU. */
		WINDOW = 64,
	};
	/* An AddressSanitizer build keeps freed memory in quarantine, which would count as
	 * growth: keep that small for this server (no effect on other builds). */
	char asan[512];
	const char *prev = getenv("ASAN_OPTIONS");
	snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=4", prev ? prev : "", prev ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	struct server s = server_start("--workers", "2", "--flood-rate", "0", "--sendq", "65536");
	struct ircc *slow = ircc_open_rcvbuf(s.port, SLOW_RCVBUF);
	ircc_register(slow, "sloth");
	ircc_join(slow, "#firehose");
	struct ircc *fast = ircc_new(s.port, "hose"), *obs = ircc_new(s.port, "watcher");
	ircc_join(fast, "#firehose");
	ircc_join(obs, "#firehose");
	ircc_sync(obs);
	uint64_t rss0 = proc_rss(s.pid);

	char text[400];
	memset(text, 'w', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	/* A reader that never reads holds at most its send queue, the server socket's buffer and
	 * its own receive buffer (which the kernel doubles); twice that must have dropped it. */
	unsigned long long most =
	    2 * (SENDQ + kernel_sndbuf_max() + 2 * SLOW_RCVBUF) / (sizeof(text) - 1);
	unsigned long long sent = 0, heard = 0, seen = 0;
	bool gone = false;
	double stall = now_sec() + 10 * test_scale();
	while (!gone) {
		for (; sent < most && sent < heard + WINDOW; sent++)
			ck_assert(ircc_send(fast, "PRIVMSG #firehose :%llu %s\r\n", sent, text));
		gone = watch_firehose(obs, &heard);
		if (heard > seen) { /* the deadline bounds a hang, not the pace */
			seen = heard;
			stall = now_sec() + 10 * test_scale();
		}
		if (gone || now_sec() < stall)
			continue;
		ck_assert_msg(
		    heard < most,
		    "the slow reader was never disconnected for its send queue (%llu lines "
		    "of %zu bytes went by)",
		    heard, sizeof(text) - 1);
		ck_abort_msg("the firehose stalled after %llu of %llu lines", heard, sent);
	}
	uint64_t rss1 = proc_rss(s.pid);
	ck_assert_msg(rss1 < rss0 + (24u << 20), "server RSS grew from %llu to %llu bytes",
	              (unsigned long long)rss0, (unsigned long long)rss1);
	/* Everyone else is fine. */
	ircc_send(obs, "PRIVMSG #firehose :still here\r\n");
	EXPECT(fast, "PRIVMSG #firehose :still here");
	ircc_close(slow);
	ircc_close(fast);
	ircc_close(obs);
	server_stop(&s);
}
END_TEST

START_TEST(an_overlong_line_gets_417_and_is_discarded)
{
	struct server s = server_start("--workers", "1");
	struct ircc *a = ircc_new(s.port, "alice");
	char big[700];
	memset(big, 'x', sizeof(big));
	memcpy(big, "PRIVMSG alice :", 15);
	ircc_send_raw(a, big, sizeof(big));
	ircc_send(a, "\r\nPING :after\r\n");
	EXPECT(a, ":irc.libactor.local 417 alice :Input line was too long");
	EXPECT(a, "PONG irc.libactor.local :after");
	ircc_close(a);

	struct server t = server_start("--workers", "1", "--max-line", "1024");
	struct ircc *b = ircc_new(t.port, "bob");
	memcpy(big, "PRIVMSG bob :xx", 15);
	ircc_send_raw(b, big, sizeof(big));
	ircc_send(b, "\r\n");
	EXPECT(b, ":bob!~bob@127.0.0.1 PRIVMSG bob :xxx");
	ircc_close(b);
	server_stop(&t);
	server_stop(&s);
}
END_TEST

/* The connection gives up on the line and reads no more (server.c: skip_max): the client gets
 * an ERROR saying why, then the end of its connection; the others hear why it left. */
START_TEST(sixteen_kib_without_a_line_end_ends_the_connection)
{
	struct server s = server_start("--workers", "1");
	struct ircc *a = ircc_new(s.port, "alice"), *o = ircc_new(s.port, "observer");
	ircc_join(a, "#junk");
	ircc_join(o, "#junk");
	static char junk[17 << 10];
	memset(junk, 'j', sizeof(junk));
	ircc_send_raw(a, junk, sizeof(junk));
	EXPECT(o, ":alice!~alice@127.0.0.1 QUIT :Input line too long");
	EXPECT(a, "ERROR :Closing Link: 127.0.0.1 (Input line too long)");
	ck_assert(ircc_wait_eof(a, 5));
	struct ircc *b = ircc_new(s.port, "bob"); /* the server is fine */
	ircc_close(a);
	ircc_close(b);
	ircc_close(o);
	server_stop(&s);
}
END_TEST

/* The connection cuts the lines (server.c): CR LF, LF and a lone CR each end one, wherever the
 * reads fall, a CR LF split between two reads included, and empty lines are not lines. */
START_TEST(lines_end_at_cr_lf_or_either_alone_wherever_the_reads_fall)
{
	struct server s = server_start("--workers", "1");
	struct ircc *a = ircc_new(s.port, "alice");
	static const char *const pieces[] = {
	    "PING :one\r", "\nPING :two\n", "PING :th", "ree\r\n\r\n\n\r", "\r", "PING :four\r\n"};
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		ircc_send_raw(a, pieces[i], strlen(pieces[i]));
		sleep_ms(50); /* one read each */
	}
	char got[1024] = "";
	double end = now_sec() + 10 * test_scale();
	while (strstr(got, "four") == NULL && now_sec() < end && ircc_fill(a, 100))
		while (ircc_take_line(a))
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%.200s|", a->line);
	ck_assert_str_eq(got, ":irc.libactor.local PONG irc.libactor.local :one|"
	                      ":irc.libactor.local PONG irc.libactor.local :two|"
	                      ":irc.libactor.local PONG irc.libactor.local :three|"
	                      ":irc.libactor.local PONG irc.libactor.local :four|");
	ircc_close(a);
	server_stop(&s);
}
END_TEST

/* Clients that send their registration the moment they connect, many at once on one worker:
 * each connection is cut into lines from its first byte, although its session may not have run
 * yet when the first read comes (server.c, accept_one). */
START_TEST(clients_that_speak_at_once_are_framed_from_the_first_byte)
{
	struct server s = server_start("--workers", "1");
	enum { N = 300 };
	static struct ircc *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = ircc_open(s.port);
		ircc_send(c[i], "NICK early%d\r\nUSER early%d 0 * :Early\r\n", i, i);
	}
	for (int i = 0; i < N; i++) {
		char want[32];
		snprintf(want, sizeof(want), " 001 early%d ", i);
		ck_assert_msg(ircc_expect(c[i], want, 10) != NULL, "early%d was not welcomed", i);
		ircc_close(c[i]);
	}
	server_stop(&s);
}
END_TEST

/* The longest line the session takes, 4,096 bytes of tags and 510 of message, passes the
 * connection's framing whole. */
START_TEST(the_longest_line_with_tags_gets_through)
{
	struct server s = server_start("--workers", "1");
	struct ircc *a = ircc_new(s.port, "alice"), *b = ircc_new(s.port, "bob");
	static char line[4096 + 510 + 3];
	int n = snprintf(line, sizeof(line), "@+t=%0*d PRIVMSG bob :%0*d\r\n", 4096 - 5, 0,
	                 510 - 13, 7);
	ck_assert_int_eq(n, 4096 + 510 + 2);
	ircc_send_raw(a, line, (size_t)n);
	EXPECT(b, ":alice!~alice@127.0.0.1 PRIVMSG bob :0000");
	ircc_sync(a);
	ck_assert_ptr_null(ircc_expect(a, " 417 ", 0.2));
	ircc_close(a);
	ircc_close(b);
	server_stop(&s);
}
END_TEST

START_TEST(nul_bytes_lone_crs_and_invalid_utf8_do_no_harm)
{
	struct server s = server_start("--workers", "2");
	struct ircc *a = ircc_new(s.port, "alice"), *b = ircc_new(s.port, "bob");
	static const char bad[] = "PRIVMSG bob :nul\0here\r\xff\xfe\xfd\rNICK \xc3\xa9\r\n\0\0\0\r"
	                          "PRIVMSG bob :caf\xc3\xa9 \xed\xa0\x80\r\n:::: :: :\r\n@@@\r\n";
	ircc_send_raw(a, bad, sizeof(bad) - 1);
	EXPECT(b, ":alice!~alice@127.0.0.1 PRIVMSG bob :nulhere");
	EXPECT(a, " 432 alice \xc3\xa9 :Erroneous nickname");
	EXPECT(a, " FAIL PRIVMSG INVALID_UTF8 :"); /* a surrogate is not UTF-8 */
	ircc_send(a, "PRIVMSG bob :caf\xc3\xa9 after\r\n");
	EXPECT(b, "PRIVMSG bob :caf\xc3\xa9 after"); /* the next line, not the bad one */
	ircc_sync(a);
	ircc_close(a);
	ircc_close(b);
	server_stop(&s);
}
END_TEST

START_TEST(clients_beyond_the_cap_are_told_the_server_is_full)
{
	struct server s = server_start("--workers", "2", "--max-clients", "5");
	struct ircc *c[5];
	for (int i = 0; i < 5; i++) {
		char nick[16];
		snprintf(nick, sizeof(nick), "cap%d", i);
		c[i] = ircc_new(s.port, nick);
	}
	for (int k = 0; k < 3; k++) {
		struct ircc *extra = ircc_open(s.port);
		EXPECT(extra, "ERROR :Server full");
		ck_assert(ircc_wait_eof(extra, 5));
		ircc_close(extra);
	}
	ircc_sync(c[0]); /* the server keeps running */
	ircc_send(c[4], "QUIT\r\n");
	ck_assert(ircc_wait_eof(c[4], 5));
	ircc_close(c[4]);
	/* Room again once the quitter's session is gone. */
	bool in = false;
	for (int tries = 0; tries < 100 && !in; tries++) {
		struct ircc *n = ircc_open(s.port);
		ircc_send(n, "NICK late\r\nUSER l 0 * :l\r\n");
		in = ircc_expect(n, " 001 late ", 2) != NULL;
		ircc_close(n);
		if (!in)
			sleep_ms(50);
	}
	ck_assert_msg(in, "no room after a client left");
	for (int i = 0; i < 4; i++)
		ircc_close(c[i]);
	server_stop(&s);
}
END_TEST

START_TEST(resets_mid_broadcast_leave_no_descriptor_behind)
{
	unsigned n = (unsigned)test_param(0, "CHAT_RESET_CLIENTS", 500);
	raise_fd_limit();
	struct server s = server_start("--workers", "2", "--flood-rate", "0");
	struct ircc *talker = ircc_new(s.port, "talker");
	ircc_join(talker, "#storm");
	unsigned base = proc_fds(s.pid);
	struct ircc **c = calloc(n, sizeof(*c));
	for (unsigned i = 0; i < n; i++) {
		c[i] = ircc_open(s.port);
		ircc_send(c[i], "NICK s%u\r\nUSER s 0 * :s\r\nJOIN #storm\r\n", i);
	}
	for (unsigned i = 0; i < n; i++)
		ck_assert_msg(ircc_expect(c[i], " 366 ", 20) != NULL, "client %u did not join", i);
	ck_assert_uint_ge(proc_fds(s.pid), base + n);

	char text[200];
	memset(text, 'r', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (unsigned i = 0; i < n; i++) {
		ircc_send(talker, "PRIVMSG #storm :%u %s\r\n", i, text);
		ircc_reset(c[i]); /* mid-broadcast, with lines on the way to it */
		if (i % 64 == 0)
			while (ircc_fill(talker, 0) && talker->len > 0 && ircc_take_line(talker))
				;
	}
	free(c);
	ircc_sync(talker);
	ck_assert_msg(WAIT_UNTIL(proc_fds(s.pid) <= base, 15), "descriptors: %u, baseline %u",
	              proc_fds(s.pid), base);
	ircc_send(talker, "NAMES #storm\r\n");
	EXPECT(talker, " 353 talker = #storm :@talker");
	ircc_send(talker, "QUIT\r\n");
	ck_assert(ircc_wait_eof(talker, 5));
	ircc_close(talker);
	ck_assert_msg(WAIT_UNTIL(proc_fds(s.pid) <= base - 1, 10), "descriptors: %u, baseline %u",
	              proc_fds(s.pid), base - 1);
	server_stop(&s);
}
END_TEST

START_TEST(one_flooder_cannot_starve_the_others)
{
	struct server s =
	    server_start("--workers", "1", "--flood-burst", "10", "--flood-rate", "10");
	struct ircc *f = ircc_new(s.port, "flooder"), *o = ircc_new(s.port, "other");
	ircc_join(f, "#f");
	ircc_join(o, "#f");
	static char flood[64 << 10];
	size_t len = 0;
	for (int i = 0; len + 40 < sizeof(flood); i++)
		len += (size_t)snprintf(flood + len, sizeof(flood) - len,
		                        "PRIVMSG #f :flood %d\r\n", i);
	double t0 = now_sec();
	ircc_send_raw(f, flood, len);
	ircc_send(o, "PING :quick\r\n");
	EXPECT(o, "PONG irc.libactor.local :quick");
	ck_assert_msg(now_sec() - t0 < 1.0 * test_scale(), "PONG took %.2f s", now_sec() - t0);
	sleep_ms(1000);
	unsigned heard = 0;
	while (ircc_fill(o, 10) && o->len > 0)
		while (ircc_take_line(o))
			heard += strstr(o->line, "PRIVMSG #f :flood") != NULL;
	/* The bucket lets through its 10 lines, then 10 a second: never the whole flood. */
	double most = 10 + 10 * (now_sec() - t0) + 5;
	ck_assert_msg(heard >= 1 && heard <= most, "heard %u lines of the flood in %.2f s", heard,
	              now_sec() - t0);
	ircc_close(f);
	ircc_close(o);
	server_stop(&s);
}
END_TEST

START_TEST(idle_clients_are_pinged_and_dropped_when_silent)
{
	struct server s =
	    server_start("--workers", "1", "--ping-interval", "1", "--ping-timeout", "1");
	struct ircc *mute = ircc_new(s.port, "mute"), *live = ircc_new(s.port, "live");
	ircc_join(mute, "#p");
	ircc_join(live, "#p");
	EXPECT(mute, "PING :irc.libactor.local");
	double end = now_sec() + 6 * test_scale();
	bool dropped = false;
	while (now_sec() < end && !dropped) {
		ircc_fill(live, 50);
		while (ircc_take_line(live)) {
			if (strncmp(live->line, "PING ", 5) == 0)
				ircc_send(live, "PONG %s\r\n", live->line + 5);
			if (strstr(live->line, ":mute!") &&
			    strstr(live->line, "QUIT :Ping timeout"))
				dropped = true;
		}
	}
	ck_assert_msg(dropped, "the silent client was not dropped");
	EXPECT(mute, "ERROR :Closing Link: 127.0.0.1 (Ping timeout");
	ircc_sync(live);
	ircc_close(mute);
	ircc_close(live);
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Slow clients: a session whose mailbox (--session-queue) refuses a message is dropped
 */

/* A burst of n numbered lines in one write: "AWAY :<i>" or "PRIVMSG <chan> :<i>". AWAY goes
 * to the channel's away-notify members and asks nothing back; each PRIVMSG is a request whose
 * answer comes back to the speaker's session as the library's message, which no mailbox
 * refuses. */
static void send_burst(struct ircc *c, const char *chan, unsigned n)
{
	static char burst[32768];
	size_t len = 0;
	for (unsigned i = 0; i < n; i++)
		len += (size_t)(chan != NULL ? snprintf(burst + len, sizeof(burst) - len,
		                                        "PRIVMSG %s :%u\r\n", chan, i)
		                             : snprintf(burst + len, sizeof(burst) - len,
		                                        "AWAY :%u\r\n", i));
	ck_assert(ircc_send_raw(c, burst, len));
}

/* Reads c's lines until one contains `last`; before it, those containing `what` must go on
 * with 0, 1, ... in order, none missing: returns how many. */
static unsigned numbered_until(struct ircc *c, const char *what, const char *last)
{
	unsigned next = 0;
	double end = now_sec() + 20 * test_scale();
	for (;;) {
		while (ircc_take_line(c)) {
			const char *p = strstr(c->line, what);
			if (strstr(c->line, last) != NULL)
				return next;
			if (p != NULL) {
				unsigned n;
				ck_assert_int_eq(sscanf(p + strlen(what), "%u", &n), 1);
				ck_assert_msg(n == next, "got %u, expected %u", n, next);
				next++;
			}
		}
		ck_assert_msg(now_sec() < end, "no '%s' after %u lines", last, next);
		ck_assert_msg(ircc_fill(c, 100), "the connection ended after %u lines", next);
	}
}

/* One worker: the speaker's session, the channel, the fan-out and the listener take turns on
 * it. The channel handles the burst a batch at a time and finds the listener's mailbox full
 * at its third line: the listener gets that many lines, none after, then its goodbye. */
START_TEST(a_session_that_cannot_keep_up_with_a_channel_is_dropped_as_a_slow_client)
{
	struct server s =
	    server_start("--workers", "1", "--session-queue", "2", "--flood-rate", "0");
	struct ircc *talk = ircc_new(s.port, "talker"), *slow = ircc_new(s.port, "slowpoke");
	ircc_send(slow, "CAP REQ :away-notify\r\n");
	EXPECT(slow, "ACK :away-notify");
	ircc_join(talk, "#burst");
	ircc_join(slow, "#burst");
	EXPECT(talk, ":slowpoke!~slowpoke@127.0.0.1 JOIN #burst");
	send_burst(talk, "#burst", 300);
	unsigned got = numbered_until(slow, ":talker!~talker@127.0.0.1 PRIVMSG #burst :",
	                              "ERROR :Closing Link: 127.0.0.1 (Max SendQ exceeded)");
	ck_assert_uint_ge(got, 1);
	ck_assert_uint_lt(got, 300);
	double end = now_sec() + 10 * test_scale(); /* then nothing but the end */
	while (ircc_fill(slow, 100) && now_sec() < end)
		while (ircc_take_line(slow))
			ck_assert_msg(strstr(slow->line, " PRIVMSG ") == NULL,
			              "after the ERROR: %s", slow->line);
	ck_assert_msg(slow->eof, "the slow client's connection stayed open");
	EXPECT(talk, ":slowpoke!~slowpoke@127.0.0.1 QUIT :Max SendQ exceeded");
	ircc_sync(talk); /* the speaker is still served */
	ircc_close(talk);
	ircc_close(slow);
	server_stop(&s);
}
END_TEST

/* The same bursts with the default queue: every line reaches the listener, and nobody is
 * dropped, the speaker of 300 PRIVMSG (and their 300 answers) included. */
START_TEST(with_the_default_session_queue_a_burst_is_delivered_whole)
{
	struct server s = server_start("--workers", "1", "--flood-rate", "0");
	struct ircc *talk = ircc_new(s.port, "talker"), *listen = ircc_new(s.port, "listener");
	ircc_send(listen, "CAP REQ :away-notify\r\n");
	EXPECT(listen, "ACK :away-notify");
	ircc_join(talk, "#burst");
	ircc_join(listen, "#burst");
	EXPECT(talk, ":listener!~listener@127.0.0.1 JOIN #burst");
	send_burst(talk, "#burst", 300);
	ircc_send(talk, "PRIVMSG #burst :done\r\n");
	ck_assert_uint_eq(numbered_until(listen, ":talker!~talker@127.0.0.1 PRIVMSG #burst :",
	                                 "PRIVMSG #burst :done"),
	                  300);
	send_burst(talk, NULL, 300);
	ircc_send(talk, "PRIVMSG #burst :done again\r\n");
	ck_assert_uint_eq(numbered_until(listen, ":talker!~talker@127.0.0.1 AWAY :",
	                                 "PRIVMSG #burst :done again"),
	                  300);
	ircc_sync(talk);
	ircc_sync(listen);
	ircc_close(talk);
	ircc_close(listen);
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Running
 */

START_TEST(sigterm_sends_error_to_every_client_and_exits_0)
{
	struct server s = server_start("--workers", "2");
	struct ircc *a = ircc_new(s.port, "alice"), *b = ircc_new(s.port, "bob");
	ircc_join(a, "#x");
	ircc_join(b, "#x");
	struct ircc *u = ircc_open(s.port); /* not registered */
	ircc_send(u, "NICK halfway\r\n");
	ircc_sync(u);
	kill(s.pid, SIGTERM);
	struct ircc *all[] = {a, b, u};
	for (int i = 0; i < 3; i++) {
		EXPECT(all[i], "ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
		ircc_close(all[i]); /* as clients do on ERROR */
	}
	int st = server_wait(&s, 10);
	ck_assert_msg(st != -1, "the server did not exit");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
}
END_TEST

START_TEST(sigint_with_a_client_that_never_leaves_still_exits_0)
{
	struct server s = server_start("--workers", "2");
	struct ircc *a = ircc_new(s.port, "stubborn");
	kill(s.pid, SIGINT);
	EXPECT(a, "ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
	int st = server_wait(&s, 10); /* the linger runs out, the server goes anyway */
	ck_assert_msg(st != -1, "the server did not exit");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
	ck_assert(ircc_wait_eof(a, 5));
	ircc_close(a);
}
END_TEST

START_TEST(a_port_in_use_is_a_clear_error)
{
	int fd;
	char port[16], out[2048];
	snprintf(port, sizeof(port), "%u", held_port(&fd));
	int st = server_run((const char *const[]){"--port", port, "--workers", "1", NULL}, out,
	                    sizeof(out));
	close(fd);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status 0x%x: %s", st, out);
	ck_assert_msg(strstr(out, "the port is in use") != NULL, "said: %s", out);
}
END_TEST

START_TEST(bad_options_are_clear_errors)
{
	static const char *const cases[][4] = {
	    {"--port", "70000", NULL, "--port: expected a whole number in 0..65535, got '70000'"},
	    {"--workers", "zero", NULL, "--workers: expected"},
	    {"--reactor", "kqueue", NULL, "--reactor: expected auto, epoll or io_uring"},
	    {"--max-clients", "-5", NULL, "--max-clients: expected"},
	    {"--motd", "/nonexistent/motd", NULL, "--motd /nonexistent/motd: No such file"},
	    {"--frobnicate", NULL, NULL, "unknown option '--frobnicate'"},
	    {"--port", NULL, NULL, "--port needs a value"},
	    {"--oper", "nopassword", NULL, "--oper: expected NAME:PASSWORD"},
	    {"--oper", ":pw", NULL, "--oper: expected NAME:PASSWORD"},
	    {"--oper", "alice:", NULL, "--oper: expected NAME:PASSWORD"},
	    {"--oper", "alice:two words", NULL, "--oper: expected NAME:PASSWORD"},
	    {"--request-timeout", "0", NULL,
	     "--request-timeout: expected a whole number in 1..3600, got '0'"},
	    {"--session-queue", "0", NULL,
	     "--session-queue: expected a whole number in 1..1048576, got '0'"},
	    {"--session-queue", "many", NULL, "--session-queue: expected a whole number"},
	};
	char out[4096];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = {cases[i][0], cases[i][1], NULL};
		int st = server_run(args, out, sizeof(out));
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "%s: status 0x%x", cases[i][0],
		              st);
		ck_assert_msg(strstr(out, cases[i][3]) != NULL, "%s: said '%s'", cases[i][0], out);
	}
	int st = server_run((const char *const[]){"--help", NULL}, out, sizeof(out));
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_ptr_nonnull(strstr(out, "--max-clients"));
}
END_TEST

START_TEST(operators_on_the_command_line_can_oper)
{
	char out[4096];
	int st =
	    server_run((const char *const[]){"--oper", "alice:pw", "--oper", "alice:other", NULL},
	               out, sizeof(out));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x: %s", st, out);
	ck_assert_msg(strstr(out, "--oper: expected an operator name not given before, got "
	                          "'alice:other'") != NULL,
	              "said: %s", out);

	/* The password is everything after the first colon. */
	struct server s = server_start("--workers", "1", "--oper", "operuser:operpassword",
	                               "--oper", "root:pass:word");
	struct ircc *a = ircc_new(s.port, "alice");
	ircc_send(a, "OPER root pass\r\n");
	EXPECT(a, " 464 alice ");
	ircc_send(a, "OPER root pass:word\r\n");
	EXPECT(a, " 381 alice ");
	ircc_send(a, "OPER operuser operpassword\r\n");
	EXPECT(a, " 381 alice ");
	ircc_close(a);
	server_stop(&s);
}
END_TEST

/* The failure path of a channel end to end, with real sockets, supervisors and monitors: an
 * operator's RESETCHAN makes the channel's actor fail; its supervisor starts it again, each
 * member's session (which watches it) kicks its client, and the channel works afresh. Three
 * times, on two workers. */
START_TEST(a_channel_reset_by_an_operator_kicks_its_members_and_starts_afresh)
{
	struct server s = server_start("--workers", "2", "--oper", "op:pw");
	struct ircc *a = ircc_new(s.port, "alice"), *b = ircc_new(s.port, "bob");
	ircc_join(a, "#reset");
	ircc_join(b, "#reset");
	ircc_send(a, "TOPIC #reset :before\r\nOPER op pw\r\n");
	EXPECT(a, " 381 alice ");
	for (int round = 0; round < 3; round++) {
		ircc_send(a, "RESETCHAN #reset\r\n");
		EXPECT(a, ":irc.libactor.local NOTICE alice :Resetting #reset");
		EXPECT(a, ":irc.libactor.local KICK #reset alice :Channel reset");
		EXPECT(b, ":irc.libactor.local KICK #reset bob :Channel reset");
		ircc_send(b, "PRIVMSG #reset :still here?\r\n"); /* not a member any more */
		EXPECT(b, " 401 bob #reset ");
		ircc_join(b, "#reset");
		ircc_join(a, "#reset");
		ircc_send(a, "TOPIC #reset\r\n");
		EXPECT(a, " 331 alice #reset :No topic is set"); /* its state went with the actor */
		ircc_send(a, "PRIVMSG #reset :round %d\r\n", round);
		char want[64];
		snprintf(want, sizeof(want), "PRIVMSG #reset :round %d", round);
		EXPECT(b, want);
	}
	ircc_close(a);
	ircc_close(b);
	server_stop(&s);
}
END_TEST

START_TEST(both_reactors_serve_clients)
{
	static const char *reactors[] = {"epoll", "io_uring"};
	char out[2048], port[16];
	for (int r = 0; r < 2; r++) {
		struct server s = server_start("--workers", "2", "--reactor", reactors[r]);
		if (r == 0) { /* may io_uring run here? A server on a taken port tells. */
			int fd;
			snprintf(port, sizeof(port), "%u", held_port(&fd));
			server_run(
			    (const char *const[]){"--reactor", "io_uring", "--port", port, NULL},
			    out, sizeof(out));
			close(fd);
		}
		struct ircc *a = ircc_new(s.port, "a"), *b = ircc_new(s.port, "b");
		ircc_join(a, "#r");
		ircc_join(b, "#r");
		ircc_send(a, "PRIVMSG #r :via %s\r\n", reactors[r]);
		char want[64];
		snprintf(want, sizeof(want), "PRIVMSG #r :via %s", reactors[r]);
		EXPECT(b, want);
		ircc_close(a);
		ircc_close(b);
		server_stop(&s);
		if (r == 0 && strstr(out, "cannot start the runtime") != NULL) {
			fprintf(stderr, "SKIP io_uring: %s", out);
			break;
		}
	}
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("chat_net");
	TCase *tc = tcase_new("conversation", NET_TIMEOUT);
	tcase_add_test(tc, clients_converse_in_channels_and_in_private);
	tcase_add_test(tc, broadcast_reaches_every_member_once_in_order);
	tcase_add_test(tc, nick_collisions_across_workers_have_exactly_one_winner);
	tcase_add_test(tc, both_reactors_serve_clients);
	tcase_add_test(tc, a_channel_reset_by_an_operator_kicks_its_members_and_starts_afresh);
	suite_add_tcase(s, tc);

	tc = tcase_new("limits", NET_TIMEOUT);
	tcase_add_test(tc, a_slow_reader_is_disconnected_and_memory_stays_bounded);
	tcase_add_test(tc, an_overlong_line_gets_417_and_is_discarded);
	tcase_add_test(tc, sixteen_kib_without_a_line_end_ends_the_connection);
	tcase_add_test(tc, lines_end_at_cr_lf_or_either_alone_wherever_the_reads_fall);
	tcase_add_test(tc, the_longest_line_with_tags_gets_through);
	tcase_add_test(tc, clients_that_speak_at_once_are_framed_from_the_first_byte);
	tcase_add_test(tc, nul_bytes_lone_crs_and_invalid_utf8_do_no_harm);
	tcase_add_test(tc, clients_beyond_the_cap_are_told_the_server_is_full);
	tcase_add_test(tc, resets_mid_broadcast_leave_no_descriptor_behind);
	tcase_add_test(tc, one_flooder_cannot_starve_the_others);
	tcase_add_test(tc, idle_clients_are_pinged_and_dropped_when_silent);
	tcase_add_test(tc,
	               a_session_that_cannot_keep_up_with_a_channel_is_dropped_as_a_slow_client);
	tcase_add_test(tc, with_the_default_session_queue_a_burst_is_delivered_whole);
	suite_add_tcase(s, tc);

	tc = tcase_new("running", NET_TIMEOUT);
	tcase_add_test(tc, sigterm_sends_error_to_every_client_and_exits_0);
	tcase_add_test(tc, sigint_with_a_client_that_never_leaves_still_exits_0);
	tcase_add_test(tc, a_port_in_use_is_a_clear_error);
	tcase_add_test(tc, bad_options_are_clear_errors);
	tcase_add_test(tc, operators_on_the_command_line_can_oper);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(net_suite)
