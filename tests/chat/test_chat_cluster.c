/* test_chat_cluster.c: chat-server on two hosts (--cluster) sharing one network through a real
 * nats-server (one, with JetStream, its stream and bucket on one replica), each host a
 * chat-server process on its own loopback port, each driven by IRC clients. Skipped (77) when
 * nats-server is not installed or the library was built without libnats.
 */
#include "../common.h"

#include "../nats_server.h"
#include "client.h"

#define CLUSTER_TIMEOUT 90 /* per test, before CK_TIMEOUT_MULTIPLIER */
/* examples/chat/README.md, "Several hosts": a dead host's users quit on the others within
 * this many seconds of its death. */
#define SPLIT_BOUND_S 5.0

struct net {
	struct nats_srv nats;
	struct server h[2];
};

static struct server host_start(struct net *n, const char *name)
{
	return server_start("--workers", "2", "--name", name, "--cluster", n->nats.url,
	                    "--cluster-replicas", "1");
}

static void net_start(struct net *n)
{
	*n = (struct net){0};
	nats_start(&n->nats);
	n->h[0] = host_start(n, "h1.test");
	n->h[1] = host_start(n, "h2.test");
}

static void net_stop(struct net *n)
{
	for (int i = 0; i < 2; i++)
		if (n->h[i].pid > 0)
			server_stop(&n->h[i]);
	nats_free(&n->nats);
}

/* Reads until a line with `needle`; fails the test otherwise. */
#define SEE(c, needle)                                                                             \
	ck_assert_msg(ircc_expect((c), (needle), 15) != NULL, "%s:%d: never saw '%s'", __FILE__,   \
	              __LINE__, (needle))

START_TEST(private_messages_and_whois_cross_hosts)
{
	struct net n;
	net_start(&n);
	struct ircc *a = ircc_new(n.h[0].port, "alice"), *b = ircc_new(n.h[1].port, "bob");

	ircc_send(a, "PRIVMSG bob :hello from h1\r\n");
	SEE(b, ":alice!~alice@127.0.0.1 PRIVMSG bob :hello from h1");
	ircc_send(b, "NOTICE alice :and back from h2\r\n");
	SEE(a, ":bob!~bob@127.0.0.1 NOTICE alice :and back from h2");

	ircc_send(a, "WHOIS bob\r\n");
	SEE(a, " 311 alice bob ~bob 127.0.0.1 * :Test bob");
	SEE(a, " 312 alice bob h2.test ");
	SEE(a, " 318 alice bob ");

	ircc_send(a, "PRIVMSG nobody :anyone?\r\n");
	SEE(a, " 401 alice nobody ");

	/* bob changes nick: the new one reaches him, the old one is free for anyone. */
	ircc_send(b, "NICK robert\r\n");
	SEE(b, ":bob!~bob@127.0.0.1 NICK :robert");
	ircc_send(a, "PRIVMSG robert :hi robert\r\n");
	SEE(b, ":alice!~alice@127.0.0.1 PRIVMSG robert :hi robert");
	/* bob's release is on its way to the bucket when he sees his rename, as a holder's at
	 * QUIT is (below): alice may be refused until it lands, so she asks again, bounded. (A
	 * loaded CI run refused her the first time.) */
	double end = now_sec() + 15 * test_scale();
	for (;;) {
		ircc_send(a, "NICK bob\r\n");
		const char *l = NULL;
		while ((l = ircc_expect(a, "bob", 10)) != NULL &&
		       strstr(l, ":alice!~alice@127.0.0.1 NICK :bob") == NULL &&
		       strstr(l, " 433 ") == NULL && strstr(l, " 437 ") == NULL)
			;
		ck_assert_msg(l != NULL, "no answer to alice's NICK bob");
		if (strstr(l, " NICK :bob") != NULL)
			break;
		ck_assert_msg(now_sec() < end, "bob was not released: %s", l);
	}
	ircc_close(a);
	ircc_close(b);
	net_stop(&n);
}
END_TEST

START_TEST(a_nick_is_unique_across_hosts)
{
	struct net n;
	net_start(&n);
	struct ircc *a = ircc_new(n.h[0].port, "alice");
	struct ircc *b = ircc_open(n.h[1].port);
	ircc_send(b, "NICK alice\r\n");
	SEE(b, " 433 * alice :Nickname is already in use");
	ircc_register(b, "alice2");

	/* Both hosts race for one nick: exactly one wins. */
	struct ircc *x = ircc_open(n.h[0].port), *y = ircc_open(n.h[1].port);
	ircc_send(x, "NICK racer\r\n");
	ircc_send(y, "NICK racer\r\n");
	ircc_send(x, "USER x 0 * :x\r\n");
	ircc_send(y, "USER y 0 * :y\r\n");
	int won = 0, lost = 0;
	for (int i = 0; i < 2; i++) {
		struct ircc *c = i == 0 ? x : y;
		double end = now_sec() + 15 * test_scale();
		for (;;) {
			ck_assert_msg(now_sec() < end, "no answer to NICK racer");
			if (ircc_take_line(c)) {
				if (strstr(c->line, " 001 racer ") != NULL) {
					won++;
					break;
				}
				if (strstr(c->line, " 433 ") != NULL) {
					lost++;
					break;
				}
				continue;
			}
			ircc_fill(c, 100);
		}
	}
	ck_assert_int_eq(won, 1);
	ck_assert_int_eq(lost, 1);

	/* Released when its holder quits: the other host may have it then. */
	ircc_send(a, "QUIT :bye\r\n");
	ck_assert(ircc_wait_eof(a, 10));
	double end = now_sec() + 15 * test_scale();
	for (;;) {
		ircc_send(b, "NICK alice\r\n");
		const char *l = NULL;
		while ((l = ircc_expect(b, "alice", 10)) != NULL &&
		       strstr(l, " NICK :alice") == NULL && strstr(l, " 433 ") == NULL)
			;
		ck_assert_ptr_nonnull(l);
		if (strstr(l, " NICK :alice") != NULL)
			break;
		/* The release is on its way to the bucket: a retry, bounded. */
		ck_assert_msg(now_sec() < end, "alice was not released");
	}
	ircc_close(a);
	ircc_close(b);
	ircc_close(x);
	ircc_close(y);
	net_stop(&n);
}
END_TEST

/* Reads c's lines until `want` lines containing `marker` came: they must be want[0..n) in
 * order, each once. */
static void see_in_order(struct ircc *c, const char *marker, const char *const *want, int n)
{
	for (int i = 0; i < n;) {
		const char *l = ircc_expect(c, marker, 15);
		ck_assert_msg(l != NULL, "line %d of %d ('%s') never came", i, n, want[i]);
		ck_assert_msg(strstr(l, want[i]) != NULL, "expected '%s', got '%s'", want[i], l);
		i++;
	}
}

#define LINES 30

/* Reads c's lines until each of the n needles has been in one, in any order (events of
 * different channels come through different consumers: no order between them). */
static void see_all(struct ircc *c, const char *const *needles, int n)
{
	bool seen[8] = {false};
	int left = n;
	double end = now_sec() + 15 * test_scale();
	while (left > 0) {
		while (left > 0 && ircc_take_line(c))
			for (int i = 0; i < n; i++)
				if (!seen[i] && strstr(c->line, needles[i]) != NULL) {
					seen[i] = true;
					left--;
				}
		if (left == 0)
			break;
		for (int i = 0; i < n && now_sec() >= end; i++)
			ck_assert_msg(seen[i], "never saw '%s'", needles[i]);
		ircc_fill(c, 100);
	}
}

/* A round trip: fails if any line before the PONG contains `needle`. */
static void none_until_pong(struct ircc *c, const char *needle)
{
	ircc_send(c, "PING :quiet\r\n");
	double end = now_sec() + 15 * test_scale();
	for (;;) {
		while (ircc_take_line(c)) {
			if (strstr(c->line, "PONG") != NULL)
				return;
			ck_assert_msg(strstr(c->line, needle) == NULL, "one more: '%s'", c->line);
		}
		ck_assert_msg(now_sec() < end && ircc_fill(c, 100), "no PONG");
	}
}

START_TEST(a_channel_spans_hosts_with_each_line_once_and_in_order)
{
	struct net n;
	net_start(&n);
	struct ircc *a = ircc_new(n.h[0].port, "alice"), *c = ircc_new(n.h[0].port, "carol");
	struct ircc *b = ircc_new(n.h[1].port, "bob");
	ircc_join(a, "#x");
	ircc_join(c, "#x");
	/* bob's host hears h1's roster before it answers the JOIN: bob's NAMES lists everyone
	 * at once, and no JOIN lines for those who were there follow. */
	ircc_send(b, "JOIN #x\r\n");
	const char *nl = ircc_expect(b, " 353 bob ", 15);
	ck_assert_ptr_nonnull(nl);
	ck_assert_msg(strstr(nl, "alice") && strstr(nl, "carol") && strstr(nl, "bob"), "%s", nl);
	SEE(b, " 366 ");
	none_until_pong(b, " JOIN ");
	SEE(a, ":bob!~bob@127.0.0.1 JOIN #x");
	SEE(c, ":bob!~bob@127.0.0.1 JOIN #x");

	/* alice and bob talk at once, from either host. */
	char want_a[LINES][64], want_b[LINES][64];
	const char *wa[LINES], *wb[LINES];
	for (int i = 0; i < LINES; i++) {
		snprintf(want_a[i], sizeof(want_a[i]), "PRIVMSG #x :from-alice %d", i);
		snprintf(want_b[i], sizeof(want_b[i]), "PRIVMSG #x :from-bob %d", i);
		wa[i] = want_a[i];
		wb[i] = want_b[i];
		ircc_send(a, "PRIVMSG #x :from-alice %d\r\n", i);
		ircc_send(b, "PRIVMSG #x :from-bob %d\r\n", i);
	}
	see_in_order(b, "from-alice", wa, LINES);
	see_in_order(a, "from-bob", wb, LINES);
	/* carol hears both, each in its order, however they interleave. */
	for (int i = 0, j = 0; i < LINES || j < LINES;) {
		const char *l = ircc_expect(c, "PRIVMSG #x :from-", 15);
		ck_assert_msg(l != NULL, "carol: %d of alice's and %d of bob's lines came", i, j);
		if (i < LINES && strstr(l, wa[i]) != NULL)
			i++;
		else if (j < LINES && strstr(l, wb[j]) != NULL)
			j++;
		else
			ck_abort_msg("carol: out of order or again: '%s' (%d, %d)", l, i, j);
	}
	/* ...and no more copies: a marker line after them is the next one each sees. */
	ircc_send(a, "PRIVMSG #x :end\r\n");
	ircc_send(b, "PRIVMSG #x :end\r\n");
	const char *end_a = ":alice!~alice@127.0.0.1 PRIVMSG #x :end";
	const char *end_b = ":bob!~bob@127.0.0.1 PRIVMSG #x :end";
	ck_assert_str_eq(ircc_expect(b, "PRIVMSG #x", 15), end_a);
	ck_assert_str_eq(ircc_expect(a, "PRIVMSG #x", 15), end_b);
	const char *first = ircc_expect(c, "PRIVMSG #x", 15);
	ck_assert_msg(first != NULL && (strcmp(first, end_a) == 0 || strcmp(first, end_b) == 0),
	              "%s", first);
	bool a_first = strcmp(first, end_a) == 0;
	ck_assert_str_eq(ircc_expect(c, "PRIVMSG #x", 15), a_first ? end_b : end_a);
	none_until_pong(a, "PRIVMSG");
	none_until_pong(b, "PRIVMSG");
	none_until_pong(c, "PRIVMSG");

	/* NAMES lists both hosts' members, on both. */
	ircc_send(b, "NAMES #x\r\n");
	const char *l = ircc_expect(b, " 353 bob ", 15);
	ck_assert_ptr_nonnull(l);
	ck_assert_msg(strstr(l, "alice") && strstr(l, "carol") && strstr(l, "bob"), "%s", l);
	ircc_send(a, "NAMES #x\r\n");
	l = ircc_expect(a, " 353 alice ", 15);
	ck_assert_ptr_nonnull(l);
	ck_assert_msg(strstr(l, "alice") && strstr(l, "carol") && strstr(l, "bob"), "%s", l);

	/* Leaving and changing nick show on the other host. */
	ircc_send(b, "NICK bobby\r\n");
	SEE(a, ":bob!~bob@127.0.0.1 NICK :bobby");
	ircc_send(c, "PART #x :later\r\n");
	SEE(b, ":carol!~carol@127.0.0.1 PART #x :later");
	ircc_send(b, "QUIT :gone\r\n");
	SEE(a, ":bobby!~bob@127.0.0.1 QUIT :Quit: gone");
	ircc_close(a);
	ircc_close(b);
	ircc_close(c);
	net_stop(&n);
}
END_TEST

START_TEST(a_killed_host_s_users_quit_with_a_netsplit_on_the_others)
{
	struct net n;
	net_start(&n);
	struct ircc *a = ircc_new(n.h[0].port, "alice");
	struct ircc *b = ircc_new(n.h[1].port, "bob"), *d = ircc_new(n.h[1].port, "dave");
	ircc_join(a, "#x");
	ircc_join(a, "#y");
	ircc_join(b, "#x");
	ircc_join(b, "#y");
	ircc_join(d, "#y");
	see_all(a,
	        (const char *const[]){":bob!~bob@127.0.0.1 JOIN #x", ":bob!~bob@127.0.0.1 JOIN #y",
	                              ":dave!~dave@127.0.0.1 JOIN #y"},
	        3);

	kill(n.h[1].pid, SIGKILL);
	double killed = now_sec();
	waitpid(n.h[1].pid, NULL, 0);
	close(n.h[1].out);
	n.h[1].pid = 0;
	see_all(a,
	        (const char *const[]){":bob!~bob@127.0.0.1 QUIT :*.net *.split",
	                              ":dave!~dave@127.0.0.1 QUIT :*.net *.split"},
	        2);
	double took = now_sec() - killed;
	ck_assert_msg(took <= SPLIT_BOUND_S * test_scale(), "the split took %.1f s", took);
	/* bob shared two channels with alice: one QUIT. */
	none_until_pong(a, "QUIT");
	ircc_send(a, "NAMES #y\r\n");
	const char *l = ircc_expect(a, " 353 alice ", 15);
	ck_assert_ptr_nonnull(l);
	ck_assert_msg(strstr(l, "bob") == NULL && strstr(l, "dave") == NULL, "%s", l);

	/* The dead host's nicks are released by the survivor. */
	double end = now_sec() + 15 * test_scale();
	for (;;) {
		ircc_send(a, "NICK bob\r\n");
		const char *r = NULL;
		while ((r = ircc_expect(a, "bob", 10)) != NULL && strstr(r, " NICK :bob") == NULL &&
		       strstr(r, " 433 ") == NULL)
			;
		ck_assert_ptr_nonnull(r);
		if (strstr(r, " NICK :bob") != NULL)
			break;
		ck_assert_msg(now_sec() < end, "bob was not released");
	}
	ircc_close(a);
	ircc_close(b);
	ircc_close(d);
	net_stop(&n);
}
END_TEST

static Suite *cluster_suite(void)
{
	Suite *s = suite_create("chat_cluster");
	TCase *tc = tcase_new("hosts", CLUSTER_TIMEOUT);
	tcase_add_test(tc, private_messages_and_whois_cross_hosts);
	tcase_add_test(tc, a_nick_is_unique_across_hosts);
	tcase_add_test(tc, a_channel_spans_hosts_with_each_line_once_and_in_order);
	tcase_add_test(tc, a_killed_host_s_users_quit_with_a_netsplit_on_the_others);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (nats_server_path() == NULL) {
		printf("test_chat_cluster: skipped: nats-server is not installed (apt-get install "
		       "nats-server)\n");
		return 77;
	}
	/* The server links the same library: without libnats it would refuse --cluster. */
	actor_system_t *sys;
	if (actor_system_create(&(actor_config_t){.workers = 1}, &sys) < 0)
		return EXIT_FAILURE;
	int rc = actor_broker_close(sys, 0);
	actor_system_free(sys);
	if (rc == -ENOSYS) {
		printf("test_chat_cluster: skipped: the library was built without libnats\n");
		return 77;
	}
	SRunner *sr = srunner_create(cluster_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
