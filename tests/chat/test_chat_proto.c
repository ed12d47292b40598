/* test_chat_proto.c: every command of the chat server, its replies and its error numerics,
 * run through the server's own sessions, channels, registries and fan-outs on the synchronous
 * bus of bus.c: no sockets, no threads, and time that moves only when a test says so.
 */
#include "../common.h"

#include "bus.h"

/* Fails unless a line received since the last bus_read contains `needle`. */
#define HAS(c, needle)                                                                             \
	ck_assert_msg(bus_line_with((c), (needle)) != NULL, "%s:%d: no line with '%s' in:\n%s",    \
	              __FILE__, __LINE__, (needle), bus_peek(c))
#define HASNT(c, needle)                                                                           \
	ck_assert_msg(bus_line_with((c), (needle)) == NULL, "%s:%d: a line with '%s' in:\n%s",     \
	              __FILE__, __LINE__, (needle), bus_peek(c))
#define COUNT(c, needle, n)                                                                        \
	ck_assert_msg(bus_count((c), (needle)) == (n),                                             \
	              "%s:%d: %u lines with '%s', expected %u:\n%s", __FILE__, __LINE__,           \
	              bus_count((c), (needle)), (needle), (unsigned)(n), bus_peek(c))

/* Each needle occurs in `all` after the one before it. */
static void assert_in_order(const char *all, const char *const *needles, unsigned n)
{
	const char *at = all;
	for (unsigned i = 0; i < n; i++) {
		const char *p = strstr(at, needles[i]);
		ck_assert_msg(p != NULL, "no \"%s\" after \"%s\" in:\n%s", needles[i],
		              i > 0 ? needles[i - 1] : "the start", all);
		at = p + 1;
	}
}

static struct bus *B;

static void setup(void)
{
	B = bus_new(3);
}

static void teardown(void)
{
	bus_free(B);
	B = NULL;
}

/* Two registered clients on different workers, both in #room, outputs read. */
static void two_in_room(struct bus_client **a, struct bus_client **b)
{
	*a = bus_client_new(B, 0, "alice");
	*b = bus_client_new(B, 1, "bob");
	bus_sendf(*a, "JOIN #room\r\n");
	bus_sendf(*b, "JOIN #room\r\n");
	bus_read(*a);
	bus_read(*b);
}

/* ---------------------------------------------------------------------------------------------
 * Registration
 */

START_TEST(registration_sends_the_welcome_burst)
{
	struct bus_client *c = bus_connect(B, 0, "10.1.2.3", false);
	bus_sendf(c, "NICK alice\r\nUSER al 0 * :Alice Liddell\r\n");
	HAS(c, ":irc.test 001 alice :Welcome to the libactor Internet Relay Chat Network "
	       "alice!~al@10.1.2.3");
	HAS(c, ":irc.test 002 alice :Your host is irc.test");
	HAS(c, ":irc.test 003 alice :This server was created");
	HAS(c, ":irc.test 004 alice irc.test ");
	const char *tokens[] = {"CASEMAPPING=rfc1459",   "CHANTYPES=#",     "NICKLEN=30",
	                        "CHANNELLEN=50",         "TOPICLEN=390",    "PREFIX=(ov)@+",
	                        "CHANMODES=b,k,l,imnst", "NETWORK=libactor"};
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		char needle[64];
		snprintf(needle, sizeof(needle), " %s ", tokens[i]);
		const char *l = bus_line_with(c, needle);
		ck_assert_msg(l != NULL && strstr(l, " 005 alice ") != NULL, "no 005 with %s",
		              tokens[i]);
	}
	HAS(c, ":are supported by this server");
	HAS(c, " 251 alice :There are 1 users and 0 invisible on 1 servers");
	HAS(c, " 254 alice 0 :channels formed");
	HAS(c, " 255 alice :I have 1 clients and 0 servers");
	HAS(c, " 422 alice :MOTD File is missing");
}
END_TEST

START_TEST(registration_sends_the_motd_when_there_is_one)
{
	char path[] = "/tmp/chat-motd-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "first line\nsecond line\n", 23), 23);
	close(fd);
	ck_assert_int_eq(chat_srv_load_motd(bus_srv(B), path), 0);
	unlink(path);
	struct bus_client *c = bus_connect(B, 0, "h", false);
	bus_sendf(c, "USER u 0 * :r\r\nNICK n\r\n");
	HAS(c, " 375 n :- irc.test Message of the day");
	HAS(c, " 372 n :- first line");
	HAS(c, " 372 n :- second line");
	HAS(c, " 376 n :End of /MOTD command.");
	HASNT(c, " 422 ");
}
END_TEST

START_TEST(cap_ls_holds_registration_until_cap_end)
{
	struct bus_client *c = bus_connect(B, 0, "h", false);
	bus_sendf(c, "CAP LS 302\r\nNICK n\r\nUSER u 0 * :r\r\n");
	HAS(c, ":irc.test CAP * LS :");
	HASNT(c, " 001 ");
	bus_sendf(c, "CAP REQ :multi-prefix sasl\r\n");
	HAS(c, ":irc.test CAP n NAK :multi-prefix sasl"); /* one unknown: none of them */
	bus_sendf(c, "CAP LIST\r\nCAP END\r\n");
	HAS(c, "CAP n LIST :");
	HAS(c, " 001 n ");
	bus_read(c);
	bus_sendf(c, "CAP BOGUS\r\nCAP\r\n");
	HAS(c, " 410 n BOGUS :Invalid CAP command");
	HAS(c, " 461 n CAP :Not enough parameters");
}
END_TEST

START_TEST(away_notify_and_setname_reach_the_members_who_asked)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(a, "CAP REQ :away-notify setname\r\nJOIN #n\r\n");
	bus_sendf(b, "CAP REQ :setname\r\nJOIN #n\r\n");
	bus_sendf(c, "AWAY :lunch\r\nJOIN #n\r\n");
	HAS(a, ":carol!~carol@127.0.0.1 JOIN #n");
	HAS(a, ":carol!~carol@127.0.0.1 AWAY :lunch"); /* away when she joined */
	HASNT(b, " AWAY ");
	bus_read(a);
	bus_read(b);
	bus_sendf(c, "AWAY\r\nAWAY :dinner\r\n");
	HAS(a, ":carol!~carol@127.0.0.1 AWAY\r\n");
	HAS(a, ":carol!~carol@127.0.0.1 AWAY :dinner");
	HASNT(b, " AWAY");
	bus_read(a);
	bus_sendf(c, "SETNAME :Carol C\r\n"); /* not enabled */
	HAS(c, " FAIL SETNAME CANNOT_CHANGE_REALNAME ");
	bus_read(c);
	bus_sendf(b, "SETNAME :Bob B\r\nWHOIS bob\r\n");
	HAS(b, ":bob!~bob@127.0.0.1 SETNAME :Bob B");
	HAS(b, " 311 bob bob ~bob 127.0.0.1 * :Bob B");
	HAS(a, ":bob!~bob@127.0.0.1 SETNAME :Bob B");
	HASNT(c, "SETNAME");
	bus_sendf(c, "WHO #n\r\n");
	HAS(c, " bob H :0 Bob B");
}
END_TEST

START_TEST(labeled_commands_get_labeled_responses)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "CAP REQ :batch labeled-response echo-message\r\n");
	bus_read(a);
	bus_sendf(a,
	          "@label=p PING :x\r\n@label=q PONG :y\r\n@label=j JOIN #lr\r\n"
	          "@label=w;other=1 WHOIS nobody\r\n@label=m PRIVMSG bob :hi\r\nPING :plain\r\n");
	const char *all = bus_read(a);
	const char *order[] = {"@label=p :irc.test PONG irc.test :x\r\n",
	                       "@label=q :irc.test ACK\r\n",
	                       "@label=j :irc.test BATCH +lr1 labeled-response\r\n",
	                       "@batch=lr1 :alice!~alice@127.0.0.1 JOIN #lr\r\n",
	                       "@batch=lr1 :irc.test 366 alice #lr ",
	                       ":irc.test BATCH -lr1\r\n",
	                       "@label=w :irc.test BATCH +lr2 labeled-response\r\n",
	                       "@batch=lr2 :irc.test 401 alice nobody ",
	                       "@batch=lr2 :irc.test 318 alice nobody ",
	                       ":irc.test BATCH -lr2\r\n",
	                       "@label=m :alice!~alice@127.0.0.1 PRIVMSG bob :hi\r\n",
	                       "\n:irc.test PONG irc.test :plain\r\n"};
	assert_in_order(all, order, sizeof(order) / sizeof(order[0]));
	HAS(b, ":alice!~alice@127.0.0.1 PRIVMSG bob :hi"); /* the label is for the sender only */
	HASNT(b, "label");
	bus_sendf(b, "@label=z PING :nolabel\r\n"); /* bob did not ask for labeled-response */
	HAS(b, ":irc.test PONG irc.test :nolabel");
	HASNT(b, "label=z");
}
END_TEST

START_TEST(message_tags_carry_client_tags_and_a_msgid_to_those_who_asked)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(a, "CAP REQ :message-tags\r\nJOIN #t\r\n");
	bus_sendf(b, "CAP REQ :message-tags echo-message\r\nJOIN #t\r\n");
	bus_sendf(c, "JOIN #t\r\n");
	bus_read(a);
	bus_read(b);
	bus_read(c);
	bus_sendf(b, "@+bat=baz;server=x;+fizz=buzz PRIVMSG #t :hi\r\n");
	const char *line = bus_line_with(a, "PRIVMSG #t :hi");
	ck_assert_msg(line != NULL && strncmp(line, "@msgid=", 7) == 0 &&
	                  strstr(line, ";+bat=baz;+fizz=buzz :bob!~bob@127.0.0.1 PRIVMSG") !=
	                      NULL &&
	                  strstr(line, "server=") == NULL,
	              "%s", bus_peek(a));
	char msgid[64];
	ck_assert_int_eq(sscanf(line, "@msgid=%63[^;]", msgid), 1);
	line = bus_line_with(b, "PRIVMSG #t :hi"); /* the echo has the same msgid */
	ck_assert_msg(line != NULL && strstr(line, msgid) != NULL, "%s", bus_peek(b));
	line = bus_line_with(c, "PRIVMSG #t :hi"); /* carol asked for nothing: no tags */
	ck_assert_msg(line != NULL && strncmp(line, ":bob!~bob@127.0.0.1 PRIVMSG", 27) == 0, "%s",
	              bus_peek(c));
	bus_read(a);
	bus_read(b);
	bus_read(c);
	bus_sendf(b, "@+typing=active TAGMSG #t\r\n@+typing=done TAGMSG alice\r\n");
	HAS(a, ";+typing=active :bob!~bob@127.0.0.1 TAGMSG #t");
	HAS(a, ";+typing=done :bob!~bob@127.0.0.1 TAGMSG alice");
	HAS(b, ";+typing=active :bob!~bob@127.0.0.1 TAGMSG #t");
	ck_assert_str_eq(bus_read(c), ""); /* TAGMSG is for message-tags clients only */
	bus_read(a);
	bus_sendf(c, "TAGMSG #t\r\n"); /* nor may carol send it */
	ck_assert_str_eq(bus_read(a), "");
}
END_TEST

START_TEST(tags_may_take_4096_bytes_and_no_more)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "CAP REQ :message-tags\r\n");
	bus_sendf(b, "CAP REQ :message-tags\r\n");
	bus_read(a);
	static char big[IRC_TAGS_MAX + 600];
	int n = snprintf(big, sizeof(big), "@+baz=%0*d TAGMSG bob\r\n", IRC_TAGS_MAX - 7, 0);
	ck_assert_int_eq((int)(strchr(big, ' ') - big), IRC_TAGS_MAX - 1);
	bus_send(a, big, (size_t)n);
	HAS(b, " TAGMSG bob");
	HASNT(a, " 417 ");
	n = snprintf(big, sizeof(big), "@+baz=%0*d TAGMSG bob\r\n", IRC_TAGS_MAX - 6, 0);
	bus_send(a, big, (size_t)n);
	HAS(a, " 417 alice :Input line was too long");
	bus_read(b);
	n = snprintf(big, sizeof(big), "PRIVMSG bob :%0*d\r\n", 512 - 15 + 1, 0); /* 513 bytes */
	bus_send(a, big, (size_t)n);
	COUNT(a, " 417 alice :Input line was too long", 2);
	ck_assert_str_eq(bus_read(b), "");
}
END_TEST

START_TEST(extended_join_shows_account_and_realname_to_those_who_asked)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(a, "CAP REQ extended-join\r\nJOIN #e\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 JOIN #e * :Real alice");
	bus_sendf(b, "JOIN #e\r\n");
	HAS(b, ":bob!~bob@127.0.0.1 JOIN #e\r"); /* bob did not ask */
	bus_sendf(c, "JOIN #e\r\n");
	HAS(a, ":carol!~carol@127.0.0.1 JOIN #e * :Real carol");
	HAS(b, ":carol!~carol@127.0.0.1 JOIN #e");
	HASNT(b, "JOIN #e *");
}
END_TEST

START_TEST(cap_req_enables_capabilities_all_or_none)
{
	struct bus_client *c = bus_connect(B, 0, "h", false);
	bus_sendf(c, "CAP LS 302\r\nNICK n\r\nUSER u 0 * :r\r\n");
	HAS(c, " LS :cap-notify multi-prefix userhost-in-names echo-message server-time "
	       "away-notify setname batch labeled-response message-tags extended-join");
	bus_sendf(c, "CAP REQ :multi-prefix -multi-prefix\r\nCAP REQ :userhost-in-names "
	             "multi-prefix echo-message\r\nCAP LIST\r\nCAP END\r\n");
	HAS(c, " CAP n NAK :multi-prefix -multi-prefix");
	HAS(c, " CAP n ACK :userhost-in-names multi-prefix echo-message");
	HAS(c, " CAP n LIST :cap-notify multi-prefix userhost-in-names echo-message");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(c, "JOIN #caps\r\n");
	bus_sendf(b, "JOIN #caps\r\n");
	bus_sendf(c, "MODE #caps +v n\r\nMODE #caps +v bob\r\nPRIVMSG #caps :echoed\r\n"
	             "PRIVMSG bob :echoed too\r\nNAMES #caps\r\nWHO #caps\r\n");
	const char *all = bus_read(c);
	ck_assert_msg(strstr(all, " 353 n = #caps :@+n!~u@h +bob!~bob@127.0.0.1") != NULL, "%s",
	              all);
	ck_assert_msg(strstr(all, ":n!~u@h PRIVMSG #caps :echoed") != NULL, "%s", all);
	ck_assert_msg(strstr(all, ":n!~u@h PRIVMSG bob :echoed too") != NULL, "%s", all);
	ck_assert_msg(strstr(all, " n H@+ :0 r") != NULL, "%s", all);
	bus_sendf(b, "NAMES #caps\r\n"); /* bob asked for nothing */
	HAS(b, " 353 bob = #caps :@n bob");
	bus_sendf(c, "CAP REQ :-multi-prefix -userhost-in-names server-time\r\nNAMES #caps\r\n");
	all = bus_read(c);
	const char *names = strstr(all, "\n@time=");
	ck_assert_msg(names != NULL && strlen(names) > 32 && names[17] == 'T' && names[26] == '.' &&
	                  strncmp(names + 30, "Z :irc.test 353 n = #caps :@n +bob", 34) == 0,
	              "%s", all);
}
END_TEST

START_TEST(nick_errors_get_431_432_and_433)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *c = bus_connect(B, 1, "h", false);
	bus_sendf(c, "NICK\r\n");
	HAS(c, ":irc.test 431 * :No nickname given");
	bus_sendf(c, "NICK 9bad\r\nNICK a,b\r\n");
	HAS(c, ":irc.test 432 * 9bad :Erroneous nickname");
	HAS(c, ":irc.test 432 * a,b :Erroneous nickname");
	bus_sendf(c, "NICK alice\r\n");
	HAS(c, ":irc.test 433 * alice :Nickname is already in use");
	bus_sendf(c, "NICK ALICE\r\n");
	HAS(c, ":irc.test 433 * ALICE :Nickname is already in use");
	bus_read(a);
}
END_TEST

START_TEST(nicks_collide_under_the_rfc1459_case_mapping)
{
	struct bus_client *a = bus_client_new(B, 0, "[x]\\");
	struct bus_client *c = bus_connect(B, 2, "h", false);
	bus_sendf(c, "NICK {X}|\r\n");
	HAS(c, " 433 * {X}| :Nickname is already in use");
	bus_read(a);
}
END_TEST

START_TEST(commands_before_registration_get_451)
{
	struct bus_client *c = bus_connect(B, 0, "h", false);
	bus_sendf(c, "JOIN #a\r\nPRIVMSG x :y\r\nFOO\r\n");
	COUNT(c, ":irc.test 451 * :You have not registered", 3);
	bus_read(c);
	bus_sendf(c, "PING :tok\r\n");
	HAS(c, ":irc.test PONG irc.test :tok");
}
END_TEST

START_TEST(unknown_commands_get_421)
{
	struct bus_client *c = bus_client_new(B, 0, "n");
	bus_sendf(c, "FROBNICATE a b\r\n");
	HAS(c, ":irc.test 421 n FROBNICATE :Unknown command");
}
END_TEST

START_TEST(user_and_pass_errors_get_461_and_462)
{
	struct bus_client *c = bus_connect(B, 0, "h", false);
	bus_sendf(c, "USER onlyone\r\nPASS\r\n");
	HAS(c, " 461 * USER :Not enough parameters");
	HAS(c, " 461 * PASS :Not enough parameters");
	bus_sendf(c, "NICK n\r\nUSER u 0 * :r\r\n");
	bus_read(c);
	bus_sendf(c, "USER u 0 * :r\r\nPASS x\r\n");
	COUNT(c, " 462 n :You may not reregister", 2);
}
END_TEST

START_TEST(a_server_password_is_checked_at_registration)
{
	bus_srv(B)->password = "sesame";
	struct bus_client *bad = bus_connect(B, 0, "h", false);
	bus_sendf(bad, "PASS wrong\r\nNICK n\r\nUSER u 0 * :r\r\n");
	HAS(bad, " 464 n :Password incorrect");
	HAS(bad, "ERROR :Closing Link: h (Bad Password)");
	HASNT(bad, " 001 ");
	ck_assert(bus_closed(bad));

	struct bus_client *none = bus_connect(B, 0, "h", false);
	bus_sendf(none, "NICK m\r\nUSER u 0 * :r\r\n");
	HAS(none, " 464 ");

	struct bus_client *good = bus_connect(B, 1, "h", false);
	bus_sendf(good, "PASS sesame\r\nNICK n\r\nUSER u 0 * :r\r\n");
	HAS(good, " 001 n ");
}
END_TEST

START_TEST(ping_is_answered_and_needs_a_token)
{
	struct bus_client *c = bus_client_new(B, 0, "n");
	bus_sendf(c, "PING :12345\r\nPING\r\n");
	HAS(c, ":irc.test PONG irc.test :12345");
	HAS(c, ":irc.test 409 n :No origin specified");
}
END_TEST

START_TEST(idle_clients_are_pinged_then_dropped)
{
	struct chat_srv *srv = bus_srv(B);
	srv->ping_interval_ns = 10ull * 1000000000;
	srv->ping_timeout_ns = 10ull * 1000000000;
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #r\r\n");
	bus_sendf(b, "JOIN #r\r\n");
	bus_read(a);
	bus_read(b);
	bus_advance_ms(B, 11000);
	HAS(a, "PING :irc.test");
	HAS(b, "PING :irc.test");
	bus_sendf(a, "PONG :irc.test\r\n");
	bus_advance_ms(B, 11000);
	ck_assert(!bus_closed(a));
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Ping timeout: ");
	ck_assert(bus_closed(b));
	HAS(a, ":bob!~bob@127.0.0.1 QUIT :Ping timeout: ");
}
END_TEST

START_TEST(clients_that_never_register_are_dropped)
{
	struct chat_srv *srv = bus_srv(B);
	srv->ping_interval_ns = srv->ping_timeout_ns = 5ull * 1000000000;
	struct bus_client *c = bus_connect(B, 0, "h", false);
	bus_sendf(c, "NICK lurker\r\n");
	bus_advance_ms(B, 12000);
	HAS(c, "ERROR :Closing Link: h (Registration timed out)");
	bus_advance_ms(B, CHAT_LINGER_MS + 10);
	ck_assert(bus_exited(c));
	struct bus_client *d = bus_connect(B, 0, "h", false); /* the nick is free again */
	bus_sendf(d, "NICK lurker\r\nUSER u 0 * :r\r\n");
	HAS(d, " 001 lurker ");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * JOIN, PART, NAMES, TOPIC
 */

START_TEST(join_creates_the_channel_and_makes_its_creator_operator)
{
	struct bus_client *c = bus_client_new(B, 0, "alice");
	bus_sendf(c, "JOIN #Room\r\n");
	HAS(c, ":alice!~alice@127.0.0.1 JOIN #Room");
	HAS(c, ":irc.test 353 alice = #Room :@alice");
	HAS(c, ":irc.test 366 alice #Room :End of /NAMES list");
	ck_assert_uint_eq(bus_channels(B), 1);
}
END_TEST

START_TEST(join_is_relayed_to_members_and_the_joiner_gets_topic_and_names)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #room\r\nTOPIC #room :the topic\r\n");
	bus_read(a);
	bus_sendf(b, "JOIN #ROOM\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 JOIN #room");
	HAS(b, ":bob!~bob@127.0.0.1 JOIN #room");
	HAS(b, " 332 bob #room :the topic");
	HAS(b, " 333 bob #room alice ");
	HAS(b, " 353 bob = #room :");
	const char *names = bus_line_with(b, " 353 ");
	ck_assert_ptr_nonnull(strstr(names, "@alice"));
	ck_assert_ptr_nonnull(strstr(names, "bob"));
	HAS(b, " 366 bob #room :End of /NAMES list");
}
END_TEST

START_TEST(join_takes_several_channels_and_keys)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #k1,#k2\r\nMODE #k1 +k one\r\nMODE #k2 +k two\r\n");
	bus_read(a);
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(b, "JOIN #k1,#k2,#free one,bad\r\n");
	HAS(b, ":bob!~bob@127.0.0.1 JOIN #k1");
	HAS(b, " 475 bob #k2 :Cannot join channel (+k)");
	HAS(b, ":bob!~bob@127.0.0.1 JOIN #free");
}
END_TEST

START_TEST(join_0_parts_every_channel)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "JOIN #other\r\n");
	bus_read(b);
	bus_sendf(b, "JOIN 0\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 PART #room");
	HAS(b, ":bob!~bob@127.0.0.1 PART #room");
	HAS(b, ":bob!~bob@127.0.0.1 PART #other");
	bus_read(b);
	bus_sendf(b, "PRIVMSG #room :still here?\r\n");
	HAS(b, " 404 bob #room :Cannot send to channel");
}
END_TEST

START_TEST(join_errors_get_461_403_and_405)
{
	struct bus_client *c = bus_client_new(B, 0, "n");
	bus_sendf(c, "JOIN\r\nJOIN nohash\r\nJOIN #bad:name\r\n");
	HAS(c, " 461 n JOIN :Not enough parameters");
	HAS(c, " 403 n nohash :No such channel");
	HAS(c, " 403 n #bad:name :No such channel");
	bus_read(c);
	for (int i = 0; i < IRC_CHANLIMIT; i++)
		bus_sendf(c, "JOIN #c%d\r\n", i);
	bus_read(c);
	bus_sendf(c, "JOIN #onetoomany\r\n");
	HAS(c, " 405 n #onetoomany :You have joined too many channels");
}
END_TEST

START_TEST(part_is_relayed_with_its_reason)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "PART #room :gone fishing\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 PART #room :gone fishing");
	HAS(b, ":bob!~bob@127.0.0.1 PART #room :gone fishing");
}
END_TEST

START_TEST(part_errors_get_461_403_and_442)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "PART\r\nPART #nowhere\r\nPART #room\r\nPART bad\r\n");
	HAS(c, " 461 carol PART :Not enough parameters");
	HAS(c, " 403 carol #nowhere :No such channel");
	HAS(c, " 442 carol #room :You're not on that channel");
	HAS(c, " 403 carol bad :No such channel");
}
END_TEST

START_TEST(an_empty_channel_is_forgotten_and_made_afresh)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #tmp\r\nMODE #tmp +k key\r\nPART #tmp\r\n");
	ck_assert_uint_eq(bus_channels(B), 0);
	bus_read(a);
	bus_sendf(a, "JOIN #tmp\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 JOIN #tmp"); /* no key any more */
	ck_assert_uint_eq(bus_channels(B), 1);
}
END_TEST

START_TEST(names_lists_members_with_prefixes)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(a, "MODE #room +v bob\r\n");
	bus_read(a);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "NAMES #room\r\nNAMES #none\r\nNAMES\r\n");
	const char *l = bus_line_with(c, " 353 carol = #room :");
	ck_assert_ptr_nonnull(l);
	ck_assert_ptr_nonnull(strstr(l, "@alice"));
	ck_assert_ptr_nonnull(strstr(l, "+bob"));
	HAS(c, " 366 carol #room :End of /NAMES list");
	HAS(c, " 366 carol #none :End of /NAMES list");
	HAS(c, " 366 carol * :End of /NAMES list");
}
END_TEST

START_TEST(names_of_several_channels_ends_with_one_366)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #one\r\nJOIN #two\r\n");
	bus_sendf(b, "JOIN #two\r\n");
	bus_read(a);
	bus_shuffle(B, 7); /* the two channels answer in either order */
	bus_sendf(a, "NAMES #one,#nosuch,#two\r\nNAMES\r\nPING :z\r\n");
	bus_shuffle(B, 0);
	const char *order[] = {" 353 alice = #one :@alice",
	                       " 353 alice = #two :",
	                       " 366 alice #one,#nosuch,#two :End of /NAMES list",
	                       " 353 alice = #",
	                       " 353 alice = #",
	                       " 366 alice * :End of /NAMES list",
	                       "PONG"};
	const char *all = bus_read(a);
	assert_in_order(all, order, sizeof(order) / sizeof(order[0]));
	ck_assert_msg(strstr(all, " 366 alice #one ") == NULL &&
	                  strstr(all, " 366 alice #two ") == NULL,
	              "%s", all);
}
END_TEST

START_TEST(names_splits_long_member_lists_over_lines)
{
	struct bus_client *a = bus_client_new(B, 0, "a0");
	bus_sendf(a, "JOIN #big\r\n");
	for (int i = 1; i < 80; i++) {
		char nick[32];
		snprintf(nick, sizeof(nick), "member_with_long_nick%02d", i);
		struct bus_client *c = bus_client_new(B, (unsigned)i, nick);
		bus_sendf(c, "JOIN #big\r\n");
	}
	bus_read(a);
	bus_sendf(a, "NAMES #big\r\n");
	ck_assert_uint_gt(bus_count(a, " 353 a0 = #big :"), 3);
	const char *all = bus_peek(a);
	for (const char *p = all; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		ck_assert_ptr_nonnull(nl);
		ck_assert_int_le(nl - p + 1, 512);
		p = nl + 1;
	}
	for (int i = 1; i < 80; i++) {
		char nick[32];
		snprintf(nick, sizeof(nick), "member_with_long_nick%02d", i);
		ck_assert_ptr_nonnull(strstr(all, nick));
	}
}
END_TEST

START_TEST(topic_is_set_queried_and_guarded)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "TOPIC #room\r\n");
	HAS(b, " 331 bob #room :No topic is set");
	bus_sendf(b, "TOPIC #room :mine now\r\n");
	HAS(b, " 482 bob #room :You're not channel operator");
	bus_sendf(a, "TOPIC #room :hello world\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 TOPIC #room :hello world");
	HAS(b, ":alice!~alice@127.0.0.1 TOPIC #room :hello world");
	bus_read(b);
	bus_sendf(b, "TOPIC #room\r\n");
	HAS(b, " 332 bob #room :hello world");
	HAS(b, " 333 bob #room alice ");
	bus_sendf(a, "MODE #room -t\r\n");
	bus_sendf(b, "TOPIC #room :anyone may\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 TOPIC #room :anyone may");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "TOPIC #room :outsider\r\nTOPIC #void\r\nTOPIC\r\n");
	HAS(c, " 442 carol #room :You're not on that channel");
	HAS(c, " 403 carol #void :No such channel");
	HAS(c, " 461 carol TOPIC :Not enough parameters");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * PRIVMSG and NOTICE
 */

START_TEST(channel_messages_reach_every_member_but_the_sender)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "JOIN #room\r\n");
	bus_read(a);
	bus_read(b);
	bus_read(c);
	bus_sendf(a, "PRIVMSG #room :hi all\r\nNOTICE #room :note\r\n");
	HAS(b, ":alice!~alice@127.0.0.1 PRIVMSG #room :hi all");
	HAS(c, ":alice!~alice@127.0.0.1 PRIVMSG #room :hi all");
	HAS(c, ":alice!~alice@127.0.0.1 NOTICE #room :note");
	HASNT(a, "PRIVMSG");
	ck_assert_uint_eq(bus_free(B), 0); /* and nothing was dead-lettered */
	B = bus_new(1);
}
END_TEST

START_TEST(private_messages_reach_the_nick_whatever_its_case)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "Bob");
	bus_sendf(a, "PRIVMSG BOB :psst\r\nNOTICE bob :n\r\n");
	HAS(b, ":alice!~alice@127.0.0.1 PRIVMSG Bob :psst");
	HAS(b, ":alice!~alice@127.0.0.1 NOTICE Bob :n");
	HASNT(a, " 401 ");
}
END_TEST

START_TEST(messages_go_to_several_targets)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(a, "PRIVMSG #room,carol,nobody :to many\r\n");
	HAS(b, "PRIVMSG #room :to many");
	HAS(c, "PRIVMSG carol :to many");
	HAS(a, " 401 alice nobody :No such nick/channel");
	bus_read(a);
	bus_sendf(a, "PRIVMSG carol,carol,carol,carol,carol :x\r\n");
	HAS(a, " 407 alice carol :Too many recipients");
	COUNT(c, "PRIVMSG carol :x", 4);
}
END_TEST

START_TEST(message_errors_get_411_412_401_and_404)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "PRIVMSG\r\nPRIVMSG bob\r\nPRIVMSG bob :\r\nPRIVMSG ghost :x\r\n"
	             "PRIVMSG #ghost :x\r\nPRIVMSG #room :x\r\nPRIVMSG #bad,name :x\r\n");
	HAS(c, " 411 carol :No recipient given (PRIVMSG)");
	COUNT(c, " 412 carol :No text to send", 2);
	HAS(c, " 401 carol ghost :No such nick/channel");
	HAS(c, " 401 carol #ghost :No such nick/channel");
	HAS(c, " 404 carol #room :Cannot send to channel");
	HAS(c, " 401 carol #bad :No such nick/channel");
	HASNT(b, "PRIVMSG");
}
END_TEST

START_TEST(notices_never_get_error_replies)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "NOTICE\r\nNOTICE bob\r\nNOTICE ghost :x\r\nNOTICE #ghost :x\r\n"
	             "NOTICE #room :x\r\n");
	ck_assert_str_eq(bus_peek(c), "");
}
END_TEST

START_TEST(an_open_channel_takes_messages_from_outside)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(a, "MODE #room -n\r\n");
	bus_sendf(c, "PRIVMSG #room :from outside\r\n");
	HAS(b, ":carol!~carol@127.0.0.1 PRIVMSG #room :from outside");
	HASNT(c, " 404 ");
}
END_TEST

START_TEST(statusmsg_reaches_only_operators_or_voices)
{
	struct bus_client *op = bus_client_new(B, 0, "chanop");
	struct bus_client *v = bus_client_new(B, 1, "voiced");
	struct bus_client *r = bus_client_new(B, 2, "regular");
	bus_sendf(op, "JOIN #s\r\n");
	bus_sendf(v, "JOIN #s\r\n");
	bus_sendf(r, "JOIN #s\r\n");
	bus_sendf(op, "MODE #s +v voiced\r\n");
	bus_read(op);
	bus_read(v);
	bus_read(r);
	bus_sendf(r, "PRIVMSG @#s :ops only\r\nPRIVMSG +#s :voices too\r\n");
	HAS(op, ":regular!~regular@127.0.0.1 PRIVMSG @#s :ops only");
	HAS(op, ":regular!~regular@127.0.0.1 PRIVMSG +#s :voices too");
	HASNT(v, "ops only");
	HAS(v, ":regular!~regular@127.0.0.1 PRIVMSG +#s :voices too");
	ck_assert_str_eq(bus_read(r), ""); /* no echo, no error */
	bus_sendf(r, "PRIVMSG @#nosuch :x\r\n");
	HAS(r, " 401 regular #nosuch ");
}
END_TEST

START_TEST(a_moderated_channel_hears_only_voices_and_operators)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(a, "MODE #room +m\r\n");
	bus_read(b);
	bus_sendf(b, "PRIVMSG #room :can I?\r\n");
	HAS(b, " 404 bob #room :Cannot send to channel");
	bus_sendf(a, "MODE #room +v bob\r\n");
	bus_sendf(b, "PRIVMSG #room :now I can\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 PRIVMSG #room :now I can");
}
END_TEST

START_TEST(a_message_joined_in_the_same_packet_as_its_join_is_delivered)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #fast\r\n");
	bus_read(a);
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(b, "JOIN #fast\r\nPRIVMSG #fast :first words\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 PRIVMSG #fast :first words");
	HASNT(b, " 404 ");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * MODE
 */

START_TEST(channel_mode_query_shows_modes_and_creation_time)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #m\r\n");
	bus_read(a);
	bus_sendf(a, "MODE #m\r\n");
	HAS(a, " 324 alice #m +nt");
	HAS(a, " 329 alice #m ");
	bus_sendf(a, "MODE #m +k-t+l secret 5\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 MODE #m +k-t+l secret 5");
	bus_read(a);
	bus_sendf(a, "MODE #m\r\n");
	HAS(a, " 324 alice #m +nkl secret 5");
	struct bus_client *c = bus_client_new(B, 1, "carol");
	bus_sendf(c, "MODE #m\r\nMODE #none\r\n");
	HAS(c, " 324 carol #m +nkl * 5");
	HAS(c, " 403 carol #none :No such channel");
}
END_TEST

START_TEST(channel_modes_need_an_operator)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "MODE #room +i\r\n");
	HAS(b, " 482 bob #room :You're not channel operator");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "MODE #room +i\r\n");
	HAS(c, " 442 carol #room :You're not on that channel");
	bus_sendf(a, "MODE #room +o bob\r\n");
	HAS(b, ":alice!~alice@127.0.0.1 MODE #room +o bob");
	bus_read(b);
	bus_sendf(b, "MODE #room +i\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 MODE #room +i");
}
END_TEST

START_TEST(unknown_channel_modes_get_472_and_missing_members_441)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #m\r\n");
	bus_read(a);
	bus_sendf(a, "MODE #m +zo nobody\r\n");
	HAS(a, " 472 alice z :is unknown mode char to me");
	HAS(a, " 441 alice nobody #m :They aren't on that channel");
	bus_sendf(a, "MODE\r\n");
	HAS(a, " 461 alice MODE :Not enough parameters");
}
END_TEST

START_TEST(a_key_a_limit_and_invite_only_keep_people_out)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #vault\r\nMODE #vault +k pw\r\n");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(b, "JOIN #vault\r\nJOIN #vault wrong\r\n");
	COUNT(b, " 475 bob #vault :Cannot join channel (+k)", 2);
	bus_sendf(b, "JOIN #vault pw\r\n");
	HAS(b, "JOIN #vault");
	bus_sendf(a, "MODE #vault -k+l pw 2\r\n"); /* -k takes the key too */
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "JOIN #vault\r\n");
	HAS(c, " 471 carol #vault :Cannot join channel (+l)");
	bus_sendf(a, "MODE #vault -l+i\r\n");
	bus_read(c);
	bus_sendf(c, "JOIN #vault\r\n");
	HAS(c, " 473 carol #vault :Cannot join channel (+i)");
	bus_sendf(a, "INVITE carol #vault\r\n");
	bus_sendf(c, "JOIN #vault\r\n");
	HAS(c, ":carol!~carol@127.0.0.1 JOIN #vault");
}
END_TEST

START_TEST(a_secret_channel_hides_from_list_names_and_whois)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #hidden,#shown\r\nMODE #hidden +s\r\n");
	bus_read(a);
	struct bus_client *c = bus_client_new(B, 1, "carol");
	bus_sendf(c, "LIST\r\nNAMES #hidden\r\nWHOIS alice\r\n");
	HAS(c, " 322 carol #shown 1 :");
	HASNT(c, "#hidden 1");
	HASNT(c, " 353 ");
	HAS(c, " 366 carol #hidden :End of /NAMES list");
	const char *l = bus_line_with(c, " 319 carol alice :");
	ck_assert_ptr_nonnull(l);
	ck_assert_ptr_null(strstr(l, "#hidden"));
	bus_sendf(a, "LIST\r\n");
	HAS(a, " 322 alice #hidden 1 :");
}
END_TEST

START_TEST(bans_are_listed_set_and_enforced)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #b\r\nMODE #b +b bob\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 MODE #b +b bob!*@*");
	bus_read(a);
	bus_sendf(a, "MODE #b b\r\n");
	HAS(a, " 367 alice #b bob!*@* alice ");
	HAS(a, " 368 alice #b :End of channel ban list");
	struct bus_client *b = bus_client_new(B, 1, "Bob");
	bus_sendf(b, "JOIN #b\r\n");
	HAS(b, " 474 Bob #b :Cannot join channel (+b)");
	bus_sendf(a, "MODE #b -b bob!*@*\r\n");
	bus_sendf(b, "JOIN #b\r\n");
	HAS(b, ":Bob!~Bob@127.0.0.1 JOIN #b");
}
END_TEST

START_TEST(user_modes_are_queried_and_set_on_oneself_only)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "MODE alice\r\n");
	HAS(a, " 221 alice +");
	bus_sendf(a, "MODE alice +i\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 MODE alice :+i");
	bus_read(a);
	bus_sendf(a, "MODE alice\r\nMODE alice +x\r\nMODE bob +i\r\nMODE ghost\r\n");
	HAS(a, " 221 alice +i");
	HAS(a, " 501 alice :Unknown MODE flag");
	HAS(a, " 502 alice :Can't change mode for other users");
	HAS(a, " 401 alice ghost :No such nick/channel");
	bus_sendf(b, "LUSERS\r\n");
	HAS(b, " 251 bob :There are 1 users and 1 invisible on 1 servers");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * KICK and INVITE
 */

START_TEST(kick_removes_the_target_and_tells_everyone)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(a, "KICK #room bob :behave\r\n");
	HAS(a, ":alice!~alice@127.0.0.1 KICK #room bob :behave");
	HAS(b, ":alice!~alice@127.0.0.1 KICK #room bob :behave");
	bus_read(a);
	bus_read(b);
	bus_sendf(b, "PRIVMSG #room :let me back\r\n");
	HAS(b, " 404 bob #room :Cannot send to channel");
	HASNT(a, "let me back");
}
END_TEST

START_TEST(kick_errors_get_461_403_442_482_and_441)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "KICK #room\r\nKICK #nope bob\r\nKICK #room bob\r\n");
	HAS(c, " 461 carol KICK :Not enough parameters");
	HAS(c, " 403 carol #nope :No such channel");
	HAS(c, " 442 carol #room :You're not on that channel");
	bus_sendf(b, "KICK #room alice\r\n");
	HAS(b, " 482 bob #room :You're not channel operator");
	bus_sendf(a, "KICK #room carol\r\n");
	HAS(a, " 441 alice carol #room :They aren't on that channel");
}
END_TEST

START_TEST(invite_reaches_the_invitee_and_confirms_with_341)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #inv\r\n");
	bus_read(a);
	bus_sendf(a, "INVITE bob #inv\r\n");
	HAS(a, ":irc.test 341 alice bob #inv");
	HAS(b, ":alice!~alice@127.0.0.1 INVITE bob :#inv");
	bus_read(b);
	bus_sendf(b, "INVITE\r\n"); /* the invitations bob holds */
	HAS(b, " 336 bob #inv");
	HAS(b, " 337 bob :End of /INVITE list");
	bus_sendf(b, "JOIN #inv\r\n");
	bus_read(b);
	bus_sendf(b, "INVITE\r\n"); /* used up by the JOIN */
	HASNT(b, " 336 ");
	HAS(b, " 337 bob :End of /INVITE list");
}
END_TEST

START_TEST(invite_errors_get_461_401_403_442_443_and_482)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(a,
	          "INVITE bob\r\nINVITE ghost #room\r\nINVITE bob #room\r\nINVITE carol #none\r\n");
	HAS(a, " 461 alice INVITE :Not enough parameters");
	HAS(a, " 401 alice ghost :No such nick/channel");
	HAS(a, " 443 alice bob #room :is already on channel");
	HAS(a, " 403 alice #none :No such channel");
	bus_sendf(c, "INVITE alice #room\r\n");
	HAS(c, " 442 carol #room :You're not on that channel");
	bus_sendf(a, "MODE #room +i\r\n");
	bus_sendf(b, "INVITE carol #room\r\n");
	HAS(b, " 482 bob #room :You're not channel operator");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Queries: WHO, WHOIS, LIST, ISON, USERHOST, LUSERS, MOTD, VERSION, TIME, WHOWAS
 */

START_TEST(who_lists_a_channel_or_a_nick)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "AWAY :lunch\r\n");
	bus_read(b);
	bus_sendf(a, "WHO #room\r\n");
	HAS(a, " 352 alice #room ~alice 127.0.0.1 irc.test alice H@ :0 Real alice");
	HAS(a, " 352 alice #room ~bob 127.0.0.1 irc.test bob G :0 Real bob");
	HAS(a, " 315 alice #room :End of /WHO list");
	bus_read(a);
	bus_sendf(a, "WHO bob\r\nWHO nobody\r\nWHO *.com\r\n");
	HAS(a, " 352 alice * ~bob 127.0.0.1 irc.test bob G :0 Real bob");
	HAS(a, " 315 alice bob :End of /WHO list");
	HAS(a, " 315 alice nobody :End of /WHO list");
	HAS(a, " 315 alice *.com :End of /WHO list");
}
END_TEST

START_TEST(whois_describes_a_user_or_says_there_is_none)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "AWAY :out\r\n");
	bus_sendf(a, "WHOIS bob\r\n");
	HAS(a, " 311 alice bob ~bob 127.0.0.1 * :Real bob");
	HAS(a, " 319 alice bob :#room");
	HAS(a, " 312 alice bob irc.test :");
	HAS(a, " 301 alice bob :out");
	HAS(a, " 317 alice bob ");
	HAS(a, " 318 alice bob :End of /WHOIS list");
	bus_read(a);
	bus_sendf(a, "WHOIS irc.test BOB\r\nWHOIS ghost\r\nWHOIS\r\n");
	HAS(a, " 311 alice bob ");
	HAS(a, " 401 alice ghost :No such nick/channel");
	HAS(a, " 318 alice ghost :End of /WHOIS list");
	HAS(a, " 431 alice :No nickname given");
}
END_TEST

START_TEST(list_shows_channels_users_and_topics)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(a, "TOPIC #room :chat here\r\nJOIN #solo\r\n");
	bus_read(a);
	bus_sendf(a, "LIST\r\n");
	HAS(a, " 321 alice Channel :Users  Name");
	HAS(a, " 322 alice #room 2 :chat here");
	HAS(a, " 322 alice #solo 1 :");
	HAS(a, " 323 alice :End of /LIST");
	bus_read(a);
	bus_sendf(a, "LIST #solo\r\n");
	HASNT(a, "#room");
	HAS(a, " 322 alice #solo 1 :");
	bus_read(a);
	bus_sendf(a, "LIST #r*\r\n"); /* ELIST M */
	HAS(a, " 322 alice #room ");
	HASNT(a, "#solo");
	bus_read(a);
	bus_sendf(a, "LIST !#r*\r\n"); /* ELIST N */
	HAS(a, " 322 alice #solo ");
	HASNT(a, "#room");
	bus_read(a);
	bus_sendf(a, "LIST >1\r\n"); /* ELIST U */
	HAS(a, " 322 alice #room ");
	HASNT(a, "#solo");
	bus_read(a);
	bus_sendf(a, "LIST <2\r\n");
	HAS(a, " 322 alice #solo ");
	HASNT(a, "#room");
	bus_read(a);
	bus_sendf(a, "LIST <100,#s*\r\n");
	HAS(a, " 322 alice #solo ");
	HASNT(a, "#room");
}
END_TEST

START_TEST(ison_and_userhost_find_registered_nicks)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_client_new(B, 1, "bob");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "AWAY :zzz\r\n");
	bus_sendf(a, "ISON bob ghost carol\r\n");
	const char *l = bus_line_with(a, " 303 alice :");
	ck_assert_ptr_nonnull(l);
	ck_assert_ptr_nonnull(strstr(l, "bob"));
	ck_assert_ptr_nonnull(strstr(l, "carol"));
	ck_assert_ptr_null(strstr(l, "ghost"));
	bus_read(a);
	bus_sendf(a, "USERHOST bob carol\r\n");
	l = bus_line_with(a, " 302 alice :");
	ck_assert_ptr_nonnull(l);
	ck_assert_ptr_nonnull(strstr(l, "bob=+~bob@127.0.0.1"));
	ck_assert_ptr_nonnull(strstr(l, "carol=-~carol@127.0.0.1"));
	bus_sendf(a, "ISON\r\n");
	HAS(a, " 461 alice ISON :Not enough parameters");
}
END_TEST

START_TEST(small_queries_answer_with_their_numerics)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "LUSERS\r\nMOTD\r\nVERSION\r\nTIME\r\nWHOWAS old\r\nOPER a b\r\nKILL x :y\r\n"
	             "INFO\r\n");
	HAS(a, " 251 alice ");
	HAS(a, " 422 alice ");
	HAS(a, " 351 alice libactor-chat");
	HAS(a, " 391 alice irc.test :");
	HAS(a, " 406 alice old :There was no such nickname");
	HAS(a, " 369 alice old :End of WHOWAS");
	HAS(a, " 491 alice :No O-lines for your host");
	HAS(a, " 481 alice :Permission Denied- You're not an IRC operator");
	HAS(a, " 371 alice :");
	HAS(a, " 374 alice :End of INFO list");
}
END_TEST

START_TEST(lusers_counts_a_client_saying_goodbye_as_neither_user_nor_unknown)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *u = bus_connect(B, 1, "h", false); /* not registered */
	struct bus_client *b = bus_client_new(B, 2, "bob");
	bus_sendf(a, "LUSERS\r\n");
	HAS(a, " 251 alice :There are 2 users and 0 invisible on 1 servers");
	HAS(a, " 253 alice 1 :unknown connection(s)");
	bus_read(a);
	bus_sendf(u, "QUIT\r\n");
	bus_sendf(b, "QUIT\r\n"); /* both linger until they hang up */
	ck_assert(!bus_exited(u) && !bus_exited(b));
	bus_sendf(a, "LUSERS\r\n");
	HAS(a, " 251 alice :There are 1 users and 0 invisible on 1 servers");
	HASNT(a, " 253 ");
}
END_TEST

START_TEST(oper_needs_the_right_name_and_password_and_shows_in_who_whois_and_lusers)
{
	ck_assert_int_eq(chat_srv_add_oper(bus_srv(B), "operuser", "operpassword"), 0);
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "OPER operuser wrong\r\nOPER nobody operpassword\r\nOPER operuser\r\n");
	COUNT(a, " 464 alice :Password incorrect", 2);
	HAS(a, " 461 alice OPER ");
	bus_sendf(a, "OPER operuser operpassword\r\nMODE alice\r\n");
	HAS(a, " 381 alice :You are now an IRC operator");
	HAS(a, ":alice!~alice@127.0.0.1 MODE alice :+o");
	HAS(a, " 221 alice +o");
	bus_sendf(a, "JOIN #ops\r\n");
	bus_read(a);
	bus_sendf(b, "WHOIS alice\r\nWHO alice\r\nWHO #ops\r\nLUSERS\r\n");
	const char *all = bus_read(b);
	ck_assert_msg(strstr(all, " 313 bob alice :is an IRC operator") != NULL, "%s", all);
	ck_assert_msg(strstr(all, " 319 bob alice :@#ops") != NULL, "%s", all);
	ck_assert_msg(strstr(all, " alice H* :0 ") != NULL, "%s", all);
	ck_assert_msg(strstr(all, " alice H*@ :0 ") != NULL, "%s", all);
	ck_assert_msg(strstr(all, " 252 bob 1 :") != NULL, "%s", all);
	bus_sendf(a, "MODE alice -o\r\n");
	HAS(a, "MODE alice :-o");
	bus_sendf(b, "WHOIS alice\r\nLUSERS\r\n");
	all = bus_read(b);
	ck_assert_msg(strstr(all, " 313 ") == NULL && strstr(all, " 252 ") == NULL, "%s", all);
}
END_TEST

START_TEST(who_with_a_mask_searches_every_shard_and_shows_invisible_users_to_channel_peers)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	struct bus_client *c = bus_client_new(B, 2, "carol");
	struct bus_client *d = bus_client_new(B, 0, "bobby");
	bus_sendf(c, "MODE carol +i\r\nAWAY :gone\r\n");
	bus_read(c);
	bus_sendf(a, "WHO bo*\r\n");
	COUNT(a, " 352 alice ", 2);
	HAS(a, " 352 alice * ~bob 127.0.0.1 irc.test bob H :0 Real bob");
	HAS(a, " 352 alice * ~bobby 127.0.0.1 irc.test bobby H :0 Real bobby");
	HAS(a, " 315 alice bo* :End of /WHO list");
	bus_read(a);
	bus_sendf(a, "WHO *\r\n");
	COUNT(a, " 352 alice ", 3); /* alice, bob, bobby; carol is invisible */
	bus_read(a);
	bus_sendf(c, "WHO *\r\nWHO *Real?carol\r\n");
	COUNT(c, " carol G :0 Real carol", 2); /* but sees herself */
	bus_sendf(a, "WHO nobody*\r\n");
	const char *all = bus_read(a);
	ck_assert_msg(strstr(all, " 352 ") == NULL && strstr(all, " 315 alice nobody* ") != NULL,
	              "%s", all);
	bus_sendf(c, "JOIN #shared\r\n"); /* sharing a channel shows her to alice... */
	bus_sendf(a, "JOIN #shared\r\nWHO car*\r\n");
	HAS(a, " 352 alice * ~carol 127.0.0.1 irc.test carol G :0 Real carol");
	bus_read(a);
	bus_sendf(b, "WHO car*\r\n"); /* ...not to bob */
	HASNT(b, " 352 ");
	bus_sendf(a, "PART #shared\r\nWHO car*\r\n"); /* nor to alice once she left */
	HASNT(a, " 352 ");
	(void)b;
	(void)d;
}
END_TEST

START_TEST(whox_returns_the_fields_asked_for_in_the_specification_order)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(b, "JOIN #x\r\n");
	bus_read(b);
	bus_sendf(a, "WHO bob %%tcuihsnfdlaor,123\r\n");
	HAS(a, " 354 alice 123 * ~bob 127.0.0.1 127.0.0.1 irc.test bob H 0 0 0 n/a :Real bob");
	HAS(a, " 315 alice bob :End of /WHO list");
	bus_sendf(a, "WHO #x %%ronf\r\nWHO b?b %%nt\r\n");
	HAS(a, " 354 alice bob H@ n/a :Real bob");
	HAS(a, " 354 alice 0 bob"); /* no token given: 0 */
	bus_read(a);
	bus_sendf(a, "WHO bob %%tn,1234\r\n"); /* a token is up to three digits */
	HAS(a, " 354 alice 123 bob");
}
END_TEST

START_TEST(help_describes_a_command_or_says_there_is_none)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "HELP\r\nHELP privmsg\r\nHELPOP nothing\r\n");
	HAS(a, " 704 alice * :");
	HAS(a, " 705 alice * :AWAY CAP ");
	HAS(a, " 706 alice * :");
	HAS(a, " 704 alice PRIVMSG :PRIVMSG <target>");
	HAS(a, " 706 alice PRIVMSG :");
	HAS(a, " 524 alice NOTHING :No help available on this topic");
}
END_TEST

START_TEST(an_invitation_for_a_free_nick_is_taken_back)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #inv\r\nMODE #inv +i\r\nINVITE later #inv\r\n");
	HAS(a, " 401 alice later :No such nick/channel");
	struct bus_client *l = bus_client_new(B, 1, "later"); /* takes the nick afterwards */
	bus_sendf(l, "JOIN #inv\r\n");
	HAS(l, " 473 later #inv :Cannot join channel (+i)");
	bus_sendf(a, "INVITE later #inv\r\n");
	HAS(a, " 341 alice later #inv");
	bus_sendf(l, "JOIN #inv\r\n");
	HAS(l, ":later!~later@127.0.0.1 JOIN #inv");
}
END_TEST

START_TEST(kill_and_wallops_are_for_operators)
{
	ck_assert_int_eq(chat_srv_add_oper(bus_srv(B), "op", "secret"), 0);
	struct bus_client *o = bus_client_new(B, 0, "ircop");
	struct bus_client *a = bus_client_new(B, 1, "alice");
	struct bus_client *b = bus_client_new(B, 2, "bob");
	bus_sendf(a, "KILL bob :no\r\nWALLOPS :no\r\nMODE alice +w\r\n");
	COUNT(a, " 481 alice ", 2);
	ck_assert(!bus_closed(b));
	bus_sendf(o, "OPER op secret\r\nWALLOPS :hello watchers\r\n");
	HAS(a, ":ircop!~ircop@127.0.0.1 WALLOPS :hello watchers");
	ck_assert_uint_eq(bus_count(b, "WALLOPS"), 0); /* no +w */
	bus_read(o);
	bus_sendf(o, "KILL bob :spam\r\nKILL nobody :x\r\nPING :k\r\n");
	HAS(b, ":ircop!~ircop@127.0.0.1 KILL bob :spam");
	ck_assert(bus_closed(b));
	const char *order[] = {" 401 ircop nobody ", "PONG"};
	assert_in_order(bus_read(o), order, 2);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * AWAY, NICK changes, QUIT
 */

START_TEST(away_is_set_cleared_and_shown_to_who_messages_you)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(b, "AWAY :back soon\r\n");
	HAS(b, " 306 bob :You have been marked as being away");
	bus_sendf(a, "PRIVMSG bob :hello?\r\nNOTICE bob :n\r\n");
	COUNT(a, " 301 alice bob :back soon", 1);
	bus_read(b);
	bus_sendf(b, "AWAY\r\n");
	HAS(b, " 305 bob :You are no longer marked as being away");
	bus_read(a);
	bus_sendf(a, "PRIVMSG bob :hello?\r\n");
	HASNT(a, " 301 ");
}
END_TEST

START_TEST(a_nick_change_reaches_each_channel_peer_once)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(a, "JOIN #two\r\n");
	bus_sendf(b, "JOIN #two\r\n");
	bus_read(a);
	bus_read(b);
	bus_sendf(b, "NICK robert\r\n");
	COUNT(b, ":bob!~bob@127.0.0.1 NICK :robert", 1);
	COUNT(a, ":bob!~bob@127.0.0.1 NICK :robert", 1);
	bus_read(a);
	bus_sendf(a, "PRIVMSG robert :hi\r\nPRIVMSG bob :hi\r\n");
	HAS(b, ":alice!~alice@127.0.0.1 PRIVMSG robert :hi");
	HAS(a, " 401 alice bob :No such nick/channel");
	struct bus_client *c = bus_client_new(B, 2, "bob"); /* the old nick is free */
	bus_sendf(c, "NICK Robert\r\n");
	HAS(c, " 433 bob Robert :Nickname is already in use");
	bus_sendf(b, "NICK Robert\r\n");
	HAS(b, ":robert!~bob@127.0.0.1 NICK :Robert");
}
END_TEST

START_TEST(quit_reason_reaches_everyone_sharing_a_channel_once)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	struct bus_client *d = bus_client_new(B, 0, "dave");
	bus_sendf(a, "JOIN #x,#y\r\n");
	bus_sendf(b, "JOIN #x,#y\r\n");
	bus_sendf(c, "JOIN #y\r\n");
	bus_read(a);
	bus_read(c);
	bus_read(d);
	bus_sendf(b, "QUIT :see you\r\n");
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Quit: see you)");
	ck_assert(bus_closed(b));
	COUNT(a, ":bob!~bob@127.0.0.1 QUIT :Quit: see you", 1);
	COUNT(c, ":bob!~bob@127.0.0.1 QUIT :Quit: see you", 1);
	HASNT(d, "QUIT");
	bus_hangup(b, 0);
	ck_assert(bus_exited(b));
	bus_read(a);
	bus_sendf(a, "NAMES #x\r\n");
	HASNT(a, "bob");
}
END_TEST

START_TEST(a_client_that_hangs_up_quits_with_a_reason)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_hangup(b, -ECONNRESET);
	HAS(a, ":bob!~bob@127.0.0.1 QUIT :Connection reset by peer");
	ck_assert(bus_exited(b));
	struct bus_client *c = bus_client_new(B, 1, "carol");
	bus_sendf(c, "JOIN #room\r\n");
	bus_read(a);
	bus_hangup(c, 0);
	HAS(a, ":carol!~carol@127.0.0.1 QUIT :Remote host closed the connection");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Limits and bad input
 */

START_TEST(an_overlong_line_gets_417_and_the_next_line_works)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	char big[700];
	memset(big, 'x', sizeof(big));
	memcpy(big, "PRIVMSG alice :", 15);
	bus_send(a, big, sizeof(big));
	bus_sendf(a, "tail\r\nPING :after\r\n");
	HAS(a, ":irc.test 417 alice :Input line was too long");
	HASNT(a, "tail");
	HAS(a, "PONG irc.test :after");
}
END_TEST

/* The connection gives up on the line (server.c: skip_max) and reads no more: the client is told
 * why in an ERROR, the others why it left. */
START_TEST(sixteen_kib_without_a_line_end_disconnects_with_an_error)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	char chunk[1024];
	memset(chunk, 'g', sizeof(chunk));
	for (int i = 0; i < 17 && !bus_closed(b); i++)
		bus_send(b, chunk, sizeof(chunk));
	ck_assert(bus_closed(b));
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Input line too long)");
	HAS(a, ":bob!~bob@127.0.0.1 QUIT :Input line too long");
}
END_TEST

START_TEST(nul_bytes_lone_crs_and_invalid_utf8_do_no_harm)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	const char in[] = "PRIV\0MSG #room :a\0b\rPRIVMSG #room :\xff\xfe\xc0\r\n\0\0\r\n";
	bus_send(a, in, sizeof(in) - 1);
	HAS(b, ":alice!~alice@127.0.0.1 PRIVMSG #room :ab\r\n");
	HASNT(b, "\xff");                                /* UTF8ONLY: not passed on... */
	HAS(a, ":irc.test FAIL PRIVMSG INVALID_UTF8 :"); /* ...and the sender is told */
	bus_sendf(a,
	          "NICK \xc3\xa9\r\nJOIN #\xff\xfe\r\nPRIVMSG #room :caf\xc3\xa9 \xe2\x82\xac\r\n");
	HAS(a, " 432 alice \xc3\xa9 :Erroneous nickname");
	HAS(a, ":irc.test FAIL JOIN INVALID_UTF8 :");
	HAS(b, "PRIVMSG #room :caf\xc3\xa9 \xe2\x82\xac");
}
END_TEST

START_TEST(utf8_validation_rejects_overlongs_surrogates_and_truncations)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
	    {"plain", true},         {"caf\xc3\xa9", true},
	    {"\xe2\x82\xac", true},  {"\xf0\x9f\x98\x80", true},
	    {"\xc0\xaf", false},     {"\xe0\x80\xaf", false},
	    {"\xed\xa0\x80", false}, {"\xf4\x90\x80\x80", false},
	    {"\xc3", false},         {"\x80", false},
	    {"\xff", false},         {"a\xe2\x82", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(irc_valid_utf8(cases[i].s, strlen(cases[i].s)) == cases[i].ok,
		              "case %zu", i);
}
END_TEST

START_TEST(a_slow_reader_over_its_send_queue_is_disconnected)
{
	bus_srv(B)->sendq = 4096;
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_client_new(B, 2, "carol");
	bus_sendf(c, "JOIN #room\r\n");
	bus_read(a);
	bus_stop_reading(b, true);
	char text[300];
	memset(text, 'm', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (int i = 0; i < 40 && !bus_closed(b); i++)
		bus_sendf(a, "PRIVMSG #room :%s\r\n", text);
	ck_assert(bus_closed(b));
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Max SendQ exceeded)");
	HAS(a, ":bob!~bob@127.0.0.1 QUIT :Max SendQ exceeded");
	HAS(c, ":bob!~bob@127.0.0.1 QUIT :Max SendQ exceeded");
	COUNT(c, "PRIVMSG #room", 40 > 0 ? bus_count(c, "PRIVMSG #room") : 0);
	ck_assert(!bus_closed(c));
}
END_TEST

START_TEST(flood_control_spreads_a_burst_over_time)
{
	struct chat_srv *srv = bus_srv(B);
	srv->flood_burst = 5;
	srv->flood_rate = 2;
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_advance_ms(B, 10000); /* a full bucket */
	bus_read(a);
	char many[400] = "";
	for (int i = 0; i < 20; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "PING :%d\r\n", i);
	bus_sendf(a, "%s", many);
	COUNT(a, "PONG", 5);
	bus_advance_ms(B, 1001);
	COUNT(a, "PONG", 7);
	bus_advance_ms(B, 10000);
	COUNT(a, "PONG", 20);
	HAS(a, "PONG irc.test :19");
}
END_TEST

START_TEST(a_flooder_is_paused_while_others_are_served)
{
	struct chat_srv *srv = bus_srv(B);
	srv->flood_burst = 2;
	srv->flood_rate = 1;
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_advance_ms(B, 5000);
	bus_read(a);
	bus_read(b);
	static char flood[20000];
	size_t n = 0;
	while (n + 20 < sizeof(flood))
		n += (size_t)snprintf(flood + n, sizeof(flood) - n, "PRIVMSG #room :f\r\n");
	bus_send(a, flood, n);
	ck_assert(bus_paused(a));
	bus_sendf(b, "PRIVMSG #room :not starved\r\n");
	HAS(a, ":bob!~bob@127.0.0.1 PRIVMSG #room :not starved");
	ck_assert_uint_le(bus_count(b, "PRIVMSG #room :f"), 2);
}
END_TEST

START_TEST(a_full_server_says_so_and_closes)
{
	struct bus_client *c = bus_connect(B, 0, "h", true);
	ck_assert_str_eq(bus_read(c), "ERROR :Server full\r\n");
	ck_assert(bus_closed(c));
	bus_advance_ms(B, CHAT_LINGER_MS + 1);
	ck_assert(bus_exited(c));
}
END_TEST

START_TEST(shutdown_says_error_to_every_client)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	struct bus_client *c = bus_connect(B, 2, "h", false);
	ck_assert(!bus_shutdown(B)); /* sessions linger until their clients go */
	HAS(a, "ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Server shutting down)");
	HAS(c, "ERROR :Closing Link: h (Server shutting down)");
	struct bus_client *late = bus_connect(B, 1, "late", false); /* accepted just before */
	HAS(late, "ERROR :Closing Link: late (Server shutting down)");
	bus_hangup(late, 0);
	bus_hangup(a, 0);
	bus_hangup(b, 0);
	bus_advance_ms(B, CHAT_LINGER_MS + 1);
	ck_assert(bus_exited(a) && bus_exited(b) && bus_exited(c));
	ck_assert_uint_eq(bus_sessions(B), 0);
}
END_TEST

START_TEST(broadcasts_reach_members_on_every_worker_in_order)
{
	enum { CLIENTS = 12, MSGS = 30 };
	struct bus_client *c[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		char nick[16];
		snprintf(nick, sizeof(nick), "u%d", i);
		c[i] = bus_client_new(B, (unsigned)i, nick);
		bus_sendf(c[i], "JOIN #all\r\n");
	}
	for (int i = 0; i < CLIENTS; i++)
		bus_read(c[i]);
	for (int m = 0; m < MSGS; m++)
		for (int i = 0; i < CLIENTS; i++)
			bus_sendf(c[i], "PRIVMSG #all :%d %d\r\n", i, m);
	for (int i = 0; i < CLIENTS; i++) {
		int next[CLIENTS] = {0};
		const char *all = bus_read(c[i]);
		for (const char *p = all; (p = strstr(p, "PRIVMSG #all :")) != NULL; p++) {
			int from, seq;
			ck_assert_int_eq(sscanf(p, "PRIVMSG #all :%d %d", &from, &seq), 2);
			ck_assert_int_ne(from, i);
			ck_assert_int_eq(seq, next[from]);
			next[from]++;
		}
		for (int k = 0; k < CLIENTS; k++)
			ck_assert_int_eq(next[k], k == i ? 0 : MSGS);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Replies in order
 */

START_TEST(a_401_for_a_missing_nick_comes_before_a_later_pong)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "PRIVMSG nosuchnick :hi\r\nPING :after\r\n");
	const char *order[] = {" 401 alice nosuchnick ", "PONG"};
	assert_in_order(bus_read(a), order, 2);
}
END_TEST

START_TEST(a_404_and_a_442_come_before_a_later_pong)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #n\r\n");
	bus_read(a);
	bus_sendf(b, "PRIVMSG #n :outside\r\nPART #n\r\nPING :after\r\n");
	const char *order[] = {" 404 bob #n ", " 442 bob #n ", "PONG"};
	assert_in_order(bus_read(b), order, 3);
	ck_assert_ptr_null(strstr(bus_read(a), "outside"));
}
END_TEST

START_TEST(a_part_line_comes_before_a_later_pong)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #p\r\n");
	bus_read(a);
	bus_sendf(a, "PART #p :bye\r\nPING :after\r\n");
	const char *order[] = {"PART #p :bye", "PONG"};
	assert_in_order(bus_read(a), order, 2);
}
END_TEST

/* Replies from a channel, two registry shards and another session, arriving in any order the
 * senders' own orders allow: the client still sees them in the order of its commands. */
START_TEST(replies_from_several_actors_come_in_command_order_whatever_arrives_first)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(b, "JOIN #o\r\nAWAY :out\r\n");
	bus_sendf(a, "JOIN #o\r\n");
	bus_read(a);
	bus_read(b);
	for (uint64_t seed = 1; seed <= 200; seed++) {
		bus_shuffle(B, seed);
		bus_sendf(a,
		          "WHOIS bob\r\nNAMES #o\r\nPRIVMSG bob :hi\r\nPRIVMSG nobody :x\r\n"
		          "TOPIC #o\r\nWHO bob\r\nPING :end%" PRIu64 "\r\n",
		          seed);
		char pong[32];
		snprintf(pong, sizeof(pong), "PONG irc.test :end%" PRIu64, seed);
		const char *order[] = {" 311 alice bob ",  " 318 alice bob ",
		                       " 353 alice = #o ", " 366 alice #o ",
		                       " 301 alice bob ",  " 401 alice nobody ",
		                       " 331 alice #o ",   " 352 alice ",
		                       " 315 alice bob ",  pong};
		assert_in_order(bus_read(a), order, sizeof(order) / sizeof(order[0]));
		bus_read(b);
	}
	bus_shuffle(B, 0);
}
END_TEST

/* A numbered request whose receiver stops before it arrives is answered by the dead-letter
 * path, so the session does not wait for ever and its later replies still come. */
START_TEST(a_request_to_a_session_that_stopped_still_gets_its_place_answered)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_hold(B, true);
	bus_sendf(a, "PRIVMSG bob :hi\r\nPING :alive\r\n");
	ck_assert(bus_step(B)); /* the registry forwards it to bob's session... */
	bus_hangup(b, 0);       /* ...which stops before it arrives */
	ck_assert(bus_exited(b));
	bus_hold(B, false);
	bus_run(B);
	const char *all = bus_read(a);
	ck_assert_msg(strstr(all, "PONG irc.test :alive") != NULL, "%s", all);
}
END_TEST

/* A channel's actor fails: each member (on either worker) gets one server KICK with the reason
 * and forgets the channel; the restarted channel, empty, is forgotten as any empty channel is.
 * Members can JOIN again: the channel starts afresh, so the first to rejoin is its operator,
 * and no topic survives. */
START_TEST(a_failed_channel_kicks_its_members_who_can_join_it_again)
{
	struct bus_client *c[3] = {bus_client_new(B, 0, "alice"), bus_client_new(B, 1, "bob"),
	                           bus_client_new(B, 0, "carol")};
	const char *nick[3] = {"alice", "bob", "carol"};
	for (int i = 0; i < 3; i++)
		bus_sendf(c[i], "JOIN #reset\r\n");
	bus_sendf(c[0], "TOPIC #reset :before\r\n");
	for (int i = 0; i < 3; i++)
		bus_read(c[i]);
	ck_assert_uint_eq(bus_channels(B), 1);

	ck_assert(bus_fail_channel(B, "#reset"));
	for (int i = 0; i < 3; i++) {
		char kick[64];
		snprintf(kick, sizeof(kick), ":irc.test KICK #reset %s :Channel reset", nick[i]);
		ck_assert_uint_eq(bus_count(c[i], kick), 1);
		ck_assert_uint_eq(bus_count(c[i], "KICK"), 1); /* theirs alone, once */
		bus_read(c[i]);
		/* Not a member any more, and the channel, restarted empty, was forgotten. */
		bus_sendf(c[i], "PRIVMSG #reset :still there?\r\n");
		HAS(c[i], " 401 ");
		bus_read(c[i]);
	}
	ck_assert_uint_eq(bus_channels(B), 0);

	bus_sendf(c[1], "JOIN #reset\r\n");
	HAS(c[1], ":bob!~bob@127.0.0.1 JOIN #reset");
	HAS(c[1], " 353 bob = #reset :@bob\r");
	HASNT(c[1], " 332 "); /* no topic: the state went with the failed actor */
	bus_sendf(c[0], "JOIN #reset\r\nPRIVMSG #reset :back\r\n");
	HAS(c[0], " 353 alice = #reset :");
	HAS(c[1], ":alice!~alice@127.0.0.1 JOIN #reset");
	HAS(c[1], ":alice!~alice@127.0.0.1 PRIVMSG #reset :back");
	ck_assert_uint_eq(bus_channels(B), 1);
	HASNT(c[2], "back"); /* carol did not rejoin */
}
END_TEST

/* RESETCHAN makes the channel's actor fail on purpose: the same path as a crash. */
START_TEST(resetchan_fails_the_channel_on_purpose_for_operators_only)
{
	ck_assert_int_eq(chat_srv_add_oper(bus_srv(B), "op", "pw"), 0);
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	bus_sendf(b, "RESETCHAN #room\r\nRESETCHAN\r\n");
	HAS(b, " 481 bob :Permission Denied");
	HAS(b, " 461 bob RESETCHAN :Not enough parameters");
	bus_read(b);
	bus_sendf(a, "OPER op pw\r\n");
	bus_read(a);
	bus_sendf(a, "RESETCHAN #nowhere\r\nRESETCHAN nochannel\r\n");
	COUNT(a, " 403 alice ", 2);
	bus_read(a);
	actor_ref_t before = bus_channel_ref(B, "#room");
	bus_sendf(a, "RESETCHAN #room\r\n");
	const char *order[] = {":irc.test NOTICE alice :Resetting #room",
	                       ":irc.test KICK #room alice :Channel reset"};
	assert_in_order(bus_peek(a), order, 2);
	HAS(b, ":irc.test KICK #room bob :Channel reset");
	ck_assert(!actor_ref_eq(bus_channel_ref(B, "#room"), before)); /* gone, or a new actor */
	bus_read(a);
	bus_read(b);
	bus_sendf(b, "JOIN #room\r\n");
	HAS(b, " 353 bob = #room :@bob\r"); /* afresh, bob its first member and operator */
}
END_TEST

/* The restarted channel nobody rejoins asks to be forgotten and stops, as any empty channel. */
START_TEST(a_failed_channel_nobody_rejoins_is_forgotten)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #gone\r\n");
	ck_assert(bus_fail_channel(B, "#gone"));
	ck_assert_uint_eq(bus_count(a, "KICK #gone alice :Channel reset"), 1);
	ck_assert_uint_eq(bus_channels(B), 0);
	bus_read(a);
	bus_sendf(a, "LIST\r\n");
	HASNT(a, "#gone");
}
END_TEST

/* A JOIN forwarded to a channel whose actor then fails is dead-lettered: the joiner gets 437,
 * and its next line is handled (it does not wait for ever). */
START_TEST(a_join_sent_to_a_channel_that_fails_gets_437)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #flaky\r\n");
	bus_hold(B, true);
	bus_sendf(b, "JOIN #flaky\r\nPING :after\r\n");
	ck_assert(bus_step(B)); /* the registry forwards bob's JOIN to the channel... */
	bus_hold(B, false);
	ck_assert(bus_fail_channel(B, "#flaky")); /* ...which fails before it arrives */
	bus_run(B);
	HAS(b, " 437 bob #flaky :Channel is temporarily unavailable");
	HAS(b, "PONG irc.test :after");
	HASNT(b, "KICK"); /* bob was never a member */
	HAS(a, "KICK #flaky alice :Channel reset");
	bus_read(b);
	bus_sendf(b, "JOIN #flaky\r\n");
	HAS(b, ":bob!~bob@127.0.0.1 JOIN #flaky");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Requests that take too long: the session asks with a timeout (--request-timeout), tells its
 * client, and goes on; the late answer is dropped
 */

#define TIMEOUT_MS (CHAT_REQUEST_TIMEOUT_DEFAULT * 1000ull)

START_TEST(a_command_whose_channel_does_not_answer_times_out_with_400_and_input_goes_on)
{
	struct bus_client *a, *b;
	two_in_room(&a, &b);
	actor_ref_t room = bus_channel_ref(B, "#room");
	ck_assert(!actor_ref_is_none(room));
	bus_stall(B, room, true);
	bus_sendf(a, "TOPIC #room :new\r\nPING :after\r\n");
	HASNT(a, "PONG"); /* it waits behind the TOPIC's place */
	bus_advance_ms(B, TIMEOUT_MS - 1);
	HASNT(a, " 400 ");
	bus_advance_ms(B, 1);
	const char *order[] = {":irc.test 400 alice TOPIC :Timed out", "PONG irc.test :after"};
	assert_in_order(bus_peek(a), order, 2);
	bus_read(a);
	ck_assert_uint_eq(bus_replies_dropped(B), 0);

	bus_stall(B, room, false); /* the channel runs the TOPIC now: its answer comes too late */
	ck_assert_uint_eq(bus_replies_dropped(B), 1);
	HASNT(a, " 400 ");
	HAS(b, ":alice!~alice@127.0.0.1 TOPIC #room :new"); /* the others see it happen */
	bus_sendf(a, "TOPIC #room\r\n");
	HAS(a, " 332 alice #room :new");
}
END_TEST

START_TEST(a_join_that_times_out_gets_437_and_is_undone_when_it_arrives)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	bus_sendf(a, "JOIN #busy\r\n");
	bus_read(a);
	bus_stall(B, bus_channel_ref(B, "#busy"), true);
	bus_sendf(b, "JOIN #busy\r\nPING :after\r\n");
	HASNT(b, "PONG"); /* input waits for a JOIN's end */
	bus_advance_ms(B, TIMEOUT_MS);
	const char *order[] = {" 437 bob #busy :", "PONG irc.test :after"};
	assert_in_order(bus_peek(b), order, 2);
	bus_read(b);

	bus_stall(B, bus_channel_ref(B, "#busy"), false);
	/* The JOIN reached the channel after all, and the PART the session sent when it gave up
	 * followed it: bob is not left in a channel he was told he is not in. */
	const char *seen[] = {":bob!~bob@127.0.0.1 JOIN #busy", ":bob!~bob@127.0.0.1 PART #busy"};
	assert_in_order(bus_peek(a), seen, 2);
	bus_read(a);
	bus_sendf(a, "NAMES #busy\r\n");
	HAS(a, " 353 alice = #busy :@alice\r");
}
END_TEST

START_TEST(a_nick_claim_that_times_out_gets_437_and_the_nick_stays_free)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 1, "bob");
	actor_ref_t shard = chat_registry_for(bus_srv(B), "zed");
	bus_stall(B, shard, true);
	bus_sendf(a, "NICK zed\r\n");
	bus_advance_ms(B, TIMEOUT_MS);
	HAS(a, " 437 alice zed :Nick/channel is temporarily unavailable");
	bus_read(a);
	bus_stall(B, shard, false); /* the claim is made late, then let go */
	HASNT(a, "NICK");
	bus_sendf(b, "NICK zed\r\n");
	HAS(b, ":bob!~bob@127.0.0.1 NICK :zed");
	bus_sendf(a, "WHOIS alice\r\n");
	HAS(a, " 311 alice alice ~alice 127.0.0.1 ");
}
END_TEST

START_TEST(a_list_with_a_shard_that_does_not_answer_ends_at_the_timeout)
{
	struct bus_client *a = bus_client_new(B, 0, "alice");
	bus_sendf(a, "JOIN #one\r\n");
	bus_read(a);
	actor_ref_t holder = chat_registry_for(bus_srv(B), "#one"), other = ACTOR_REF_NONE;
	for (unsigned w = 0; w < bus_srv(B)->workers && actor_ref_is_none(other); w++)
		if (!actor_ref_eq(chat_registry_at(bus_srv(B), w), holder))
			other = chat_registry_at(bus_srv(B), w); /* a shard that does not hold #one */
	bus_stall(B, other, true);
	bus_sendf(a, "LIST\r\n");
	HASNT(a, " 323 ");
	bus_advance_ms(B, TIMEOUT_MS);
	const char *order[] = {" 321 alice ", " 322 alice #one 1 :", " 323 alice :End of /LIST"};
	assert_in_order(bus_peek(a), order, 3);
	bus_stall(B, other, false);
	ck_assert_uint_eq(bus_replies_dropped(B), 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Slow clients: a session's mailbox holds --session-queue messages; a sender it refuses sends
 * it nothing more and, at the notice, CM_SLOW, and the session quits as over its sendq
 */

/* A fresh server of `workers` whose sessions' mailboxes hold `queue` messages. */
static void slow_server(unsigned workers, uint32_t queue)
{
	bus_free(B);
	B = bus_new(workers);
	bus_srv(B)->session_queue = queue;
}

/* n AWAY lines in one read. Each reaches the channel's away-notify members and asks nothing
 * back, so only the listeners' mailboxes fill. (A burst of PRIVMSG would fill the speaker's as
 * well: each is a request whose answer comes back to it as a user message.) */
static void away_burst(struct bus_client *c, unsigned n)
{
	static char burst[16384];
	size_t len = 0;
	for (unsigned i = 0; i < n && len + 16 < sizeof(burst); i++)
		len += (size_t)snprintf(burst + len, sizeof(burst) - len, "AWAY :%u\r\n", i);
	bus_send(c, burst, len);
}

/* c's lines since the last read that contain `what` and end in a number: they must be 0, 1,
 * ... in order, none missing (no gap); returns how many. */
static unsigned numbered_prefix(struct bus_client *c, const char *what)
{
	const char *all = bus_peek(c);
	unsigned next = 0;
	for (const char *p = all; (p = strstr(p, what)) != NULL; p++) {
		unsigned n;
		ck_assert_int_eq(sscanf(p + strlen(what), "%u", &n), 1);
		ck_assert_msg(n == next, "got %u, expected %u, in:\n%s", n, next, all);
		next++;
	}
	return next;
}

START_TEST(a_session_that_cannot_keep_up_with_a_channel_quits_as_a_slow_client)
{
	slow_server(1, 2);
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 0, "bob");
	struct bus_client *c = bus_client_new(B, 0, "carol");
	bus_sendf(b, "CAP REQ :away-notify\r\n");
	bus_sendf(a, "JOIN #fast\r\n");
	bus_sendf(b, "JOIN #fast\r\n");
	bus_sendf(c, "JOIN #fast\r\n");
	bus_read(a);
	bus_read(b);
	bus_read(c);
	ck_assert_uint_eq(bus_refusals(B), 0);
	unsigned lines = bus_handed(b, CM_LINE);
	away_burst(a, 50);
	/* The channel handed bob two lines; the third was refused, and the channel sent him
	 * nothing more but, once he had room, CM_SLOW. */
	ck_assert_uint_eq(numbered_prefix(b, ":alice!~alice@127.0.0.1 AWAY :"), 2);
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Max SendQ exceeded)");
	ck_assert_uint_eq(bus_handed(b, CM_LINE), lines + 2);
	ck_assert_uint_eq(bus_handed(b, CM_SLOW), 1);
	ck_assert_uint_eq(bus_refusals(B), 1);
	ck_assert(bus_closed(b));
	HAS(a, ":bob!~bob@127.0.0.1 QUIT :Max SendQ exceeded");
	HAS(c, ":bob!~bob@127.0.0.1 QUIT :Max SendQ exceeded");
	HASNT(c, " AWAY "); /* carol did not ask for away-notify: none of it was hers */
	ck_assert_uint_eq(bus_slow_clients(B), 1); /* the channel's record of bob... */
	bus_advance_ms(B, CHAT_LINGER_MS + 1);
	ck_assert(bus_exited(b));
	ck_assert_uint_eq(bus_slow_clients(B), 0); /* ...ends with him */
	bus_read(a);
	bus_sendf(c, "PRIVMSG #fast :still here\r\n");
	HAS(a, ":carol!~carol@127.0.0.1 PRIVMSG #fast :still here");
	/* Nothing after the gap reached him, nor was anything left for him. */
	ck_assert_uint_eq(bus_handed(b, CM_LINE), lines + 2);
	ck_assert_uint_eq(bus_free(B), 0);
	B = bus_new(1);
}
END_TEST

/* Lines from another worker come through the fan-out of bob's: it is the fan-out that bob
 * refuses, and that drops him. Three speakers outside the channel (-n) send three lines each,
 * so that no speaker gets more answers than its own mailbox holds; carol shares another
 * channel with bob. */
START_TEST(a_fan_out_drops_a_slow_client_the_same_way)
{
	slow_server(2, 4);
	unsigned home = irc_hash("#wide") % 2;
	struct bus_client *b = bus_client_new(B, 1 - home, "bob");
	struct bus_client *c = bus_client_new(B, home, "carol");
	bus_sendf(b, "JOIN #wide\r\nMODE #wide -n\r\nJOIN #other\r\n");
	bus_sendf(c, "JOIN #other\r\n");
	struct bus_client *s[3] = {bus_client_new(B, 0, "s0"), bus_client_new(B, 1, "s1"),
	                           bus_client_new(B, 0, "s2")};
	bus_read(b);
	bus_read(c);
	unsigned lines = bus_handed(b, CM_LINE);
	bus_hold(B, true);
	for (int k = 0; k < 3; k++)
		bus_sendf(s[k], "PRIVMSG #wide :%d\r\nPRIVMSG #wide :%d\r\nPRIVMSG #wide :%d\r\n",
		          3 * k, 3 * k + 1, 3 * k + 2);
	bus_hold(B, false);
	bus_run(B);
	/* bob has the first four, then the goodbye. */
	ck_assert_uint_eq(numbered_prefix(b, " PRIVMSG #wide :"), 4);
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Max SendQ exceeded)");
	HAS(c, ":bob!~bob@127.0.0.1 QUIT :Max SendQ exceeded");
	ck_assert_uint_eq(bus_refusals(B), 1);
	for (int k = 0; k < 3; k++) {
		HASNT(s[k], "ERROR");
		HASNT(s[k], " 404 ");
	}
	bus_advance_ms(B, CHAT_LINGER_MS + 1);
	ck_assert(bus_exited(b));
	ck_assert_uint_eq(bus_handed(b, CM_LINE), lines + 4);
	ck_assert_uint_eq(bus_free(B), 0);
	B = bus_new(1);
}
END_TEST

/* The registry passes private messages on to the session owning the nick: refused, it answers
 * the sender's request itself, with nothing to say (bob is there, but going), tells bob to go,
 * and keeps his nick until he has released it, so nobody takes it while he is still
 * connected. */
START_TEST(private_messages_to_a_slow_client_are_dropped_and_it_keeps_its_nick_until_it_quits)
{
	slow_server(1, 4);
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 0, "bob");
	struct bus_client *c = bus_client_new(B, 0, "carol");
	struct bus_client *d = bus_client_new(B, 0, "dave");
	bus_hold(B, true);
	bus_sendf(a, "PRIVMSG bob :0\r\nPRIVMSG bob :1\r\nPRIVMSG bob :2\r\n");
	bus_sendf(c, "PRIVMSG bob :3\r\nPRIVMSG bob :4\r\nPRIVMSG bob :5\r\n");
	for (int i = 0; i < 6; i++) /* the registry hands four on; the fifth is refused */
		ck_assert(bus_step(B));
	ck_assert_uint_eq(bus_refusals(B), 1);
	bus_sendf(d, "NICK bob\r\n"); /* while bob is still there */
	bus_hold(B, false);
	bus_run(B);
	ck_assert_uint_eq(numbered_prefix(b, ":alice!~alice@127.0.0.1 PRIVMSG bob :"), 3);
	HAS(b, ":carol!~carol@127.0.0.1 PRIVMSG bob :3");
	HASNT(b, "PRIVMSG bob :4");
	HASNT(b, "PRIVMSG bob :5");
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Max SendQ exceeded)");
	HASNT(c, " 401 "); /* not "no such nick": he is still there */
	HASNT(a, " 401 ");
	HAS(d, " 433 dave bob :Nickname is already in use");
	ck_assert_uint_eq(bus_refusals(B), 1);
	bus_advance_ms(B, CHAT_LINGER_MS + 1);
	ck_assert(bus_exited(b));
	bus_read(d);
	bus_sendf(d, "NICK bob\r\n"); /* released now */
	HAS(d, ":dave!~dave@127.0.0.1 NICK :bob");
}
END_TEST

/* An answer is the library's message, never refused: a session whose mailbox is full still
 * gets the end of its JOIN, and is dropped only by a sender its mailbox refused. */
START_TEST(a_session_with_a_full_mailbox_still_gets_its_answers)
{
	slow_server(1, 2);
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 0, "bob");
	bus_sendf(a, "JOIN #j\r\n");
	bus_read(a);
	struct bus_client *c = bus_client_new(B, 0, "carol");
	bus_hold(B, true);
	bus_sendf(b, "JOIN #j\r\n");
	/* Handed to bob after the registry passes his JOIN on, before the channel answers it. */
	bus_sendf(a, "PRIVMSG bob :0\r\n");
	bus_sendf(c, "PRIVMSG bob :1\r\n");
	bus_hold(B, false);
	bus_run(B);
	ck_assert_uint_eq(bus_refusals(B), 0);
	HAS(b, ":bob!~bob@127.0.0.1 JOIN #j");
	HAS(b, " 366 bob #j ");
	HAS(b, ":alice!~alice@127.0.0.1 PRIVMSG bob :0");
	HAS(b, ":carol!~carol@127.0.0.1 PRIVMSG bob :1");
	HASNT(b, "ERROR");
	HAS(a, ":bob!~bob@127.0.0.1 JOIN #j");
}
END_TEST

/* Others may take the room the notice announced: CM_SLOW refused in turn goes again at the
 * next notice, and bob is told once. */
START_TEST(cm_slow_refused_goes_again_at_the_next_notice)
{
	slow_server(1, 2);
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 0, "bob");
	struct bus_client *c = bus_client_new(B, 0, "carol");
	bus_sendf(b, "CAP REQ :away-notify\r\nJOIN #r\r\n");
	bus_sendf(a, "JOIN #r\r\n");
	bus_read(b);
	bus_hold(B, true);
	bus_sendf(a, "AWAY :0\r\nAWAY :1\r\nAWAY :2\r\n");
	while (bus_refusals(B) == 0) /* the channel: two lines for bob, the third refused */
		ck_assert(bus_step(B));
	/* Before the channel hears bob has room, the registry fills it with carol's messages. */
	bus_sendf(c, "PRIVMSG bob :0\r\nPRIVMSG bob :1\r\n");
	bus_hold(B, false);
	bus_run(B);
	ck_assert_uint_eq(bus_refusals(B), 2); /* the line, then CM_SLOW */
	ck_assert_uint_eq(bus_handed(b, CM_SLOW), 1);
	HAS(b, ":carol!~carol@127.0.0.1 PRIVMSG bob :1");
	HAS(b, "ERROR :Closing Link: 127.0.0.1 (Max SendQ exceeded)");
	HAS(a, ":bob!~bob@127.0.0.1 QUIT :Max SendQ exceeded");
}
END_TEST

/* The default queue holds more than a session's own answers and a channel's burst: a paste
 * of 300 lines, with flood control off, reaches everyone whole. */
START_TEST(with_the_default_queue_a_burst_is_delivered_whole)
{
	slow_server(1, CHAT_SESSION_QUEUE_DEFAULT);
	struct bus_client *a = bus_client_new(B, 0, "alice");
	struct bus_client *b = bus_client_new(B, 0, "bob");
	bus_sendf(b, "CAP REQ :away-notify\r\nJOIN #all\r\n");
	bus_sendf(a, "JOIN #all\r\n");
	bus_read(a);
	bus_read(b);
	static char paste[16384];
	size_t len = 0;
	for (int i = 0; i < 300; i++)
		len +=
		    (size_t)snprintf(paste + len, sizeof(paste) - len, "PRIVMSG #all :%d\r\n", i);
	bus_send(a, paste, len);
	ck_assert_uint_eq(numbered_prefix(b, ":alice!~alice@127.0.0.1 PRIVMSG #all :"), 300);
	bus_read(b);
	away_burst(a, 300);
	ck_assert_uint_eq(numbered_prefix(b, ":alice!~alice@127.0.0.1 AWAY :"), 300);
	ck_assert_uint_eq(bus_refusals(B), 0);
	HASNT(a, "ERROR");
	HASNT(b, "ERROR");
	ck_assert_uint_eq(bus_free(B), 0);
	B = bus_new(1);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("chat_proto");
	struct {
		const char *name;
		const TTest *tests[20];
	} groups[] = {
	    {"registration",
	     {registration_sends_the_welcome_burst, registration_sends_the_motd_when_there_is_one,
	      cap_ls_holds_registration_until_cap_end, cap_req_enables_capabilities_all_or_none,
	      away_notify_and_setname_reach_the_members_who_asked,
	      labeled_commands_get_labeled_responses,
	      message_tags_carry_client_tags_and_a_msgid_to_those_who_asked,
	      tags_may_take_4096_bytes_and_no_more,
	      extended_join_shows_account_and_realname_to_those_who_asked,
	      nick_errors_get_431_432_and_433, nicks_collide_under_the_rfc1459_case_mapping,
	      commands_before_registration_get_451, unknown_commands_get_421,
	      user_and_pass_errors_get_461_and_462, a_server_password_is_checked_at_registration,
	      ping_is_answered_and_needs_a_token, idle_clients_are_pinged_then_dropped,
	      clients_that_never_register_are_dropped}},
	    {"channels",
	     {join_creates_the_channel_and_makes_its_creator_operator,
	      join_is_relayed_to_members_and_the_joiner_gets_topic_and_names,
	      join_takes_several_channels_and_keys, join_0_parts_every_channel,
	      join_errors_get_461_403_and_405, part_is_relayed_with_its_reason,
	      part_errors_get_461_403_and_442, an_empty_channel_is_forgotten_and_made_afresh,
	      names_lists_members_with_prefixes, names_of_several_channels_ends_with_one_366,
	      names_splits_long_member_lists_over_lines, topic_is_set_queried_and_guarded,
	      a_failed_channel_kicks_its_members_who_can_join_it_again,
	      a_failed_channel_nobody_rejoins_is_forgotten,
	      a_join_sent_to_a_channel_that_fails_gets_437,
	      resetchan_fails_the_channel_on_purpose_for_operators_only}},
	    {"messages",
	     {channel_messages_reach_every_member_but_the_sender,
	      private_messages_reach_the_nick_whatever_its_case, messages_go_to_several_targets,
	      message_errors_get_411_412_401_and_404, notices_never_get_error_replies,
	      an_open_channel_takes_messages_from_outside,
	      a_moderated_channel_hears_only_voices_and_operators,
	      statusmsg_reaches_only_operators_or_voices,
	      a_message_joined_in_the_same_packet_as_its_join_is_delivered,
	      broadcasts_reach_members_on_every_worker_in_order}},
	    {"modes",
	     {channel_mode_query_shows_modes_and_creation_time, channel_modes_need_an_operator,
	      unknown_channel_modes_get_472_and_missing_members_441,
	      a_key_a_limit_and_invite_only_keep_people_out,
	      a_secret_channel_hides_from_list_names_and_whois, bans_are_listed_set_and_enforced,
	      user_modes_are_queried_and_set_on_oneself_only}},
	    {"kick_invite",
	     {kick_removes_the_target_and_tells_everyone, kick_errors_get_461_403_442_482_and_441,
	      invite_reaches_the_invitee_and_confirms_with_341,
	      invite_errors_get_461_401_403_442_443_and_482}},
	    {"queries",
	     {who_lists_a_channel_or_a_nick, whois_describes_a_user_or_says_there_is_none,
	      list_shows_channels_users_and_topics, ison_and_userhost_find_registered_nicks,
	      small_queries_answer_with_their_numerics,
	      oper_needs_the_right_name_and_password_and_shows_in_who_whois_and_lusers,
	      lusers_counts_a_client_saying_goodbye_as_neither_user_nor_unknown,
	      kill_and_wallops_are_for_operators, an_invitation_for_a_free_nick_is_taken_back,
	      who_with_a_mask_searches_every_shard_and_shows_invisible_users_to_channel_peers,
	      whox_returns_the_fields_asked_for_in_the_specification_order,
	      help_describes_a_command_or_says_there_is_none}},
	    {"presence",
	     {away_is_set_cleared_and_shown_to_who_messages_you,
	      a_nick_change_reaches_each_channel_peer_once,
	      quit_reason_reaches_everyone_sharing_a_channel_once,
	      a_client_that_hangs_up_quits_with_a_reason}},
	    {"order",
	     {a_401_for_a_missing_nick_comes_before_a_later_pong,
	      a_404_and_a_442_come_before_a_later_pong, a_part_line_comes_before_a_later_pong,
	      replies_from_several_actors_come_in_command_order_whatever_arrives_first,
	      a_request_to_a_session_that_stopped_still_gets_its_place_answered}},
	    {"timeouts",
	     {a_command_whose_channel_does_not_answer_times_out_with_400_and_input_goes_on,
	      a_join_that_times_out_gets_437_and_is_undone_when_it_arrives,
	      a_nick_claim_that_times_out_gets_437_and_the_nick_stays_free,
	      a_list_with_a_shard_that_does_not_answer_ends_at_the_timeout}},
	    {"limits",
	     {an_overlong_line_gets_417_and_the_next_line_works,
	      sixteen_kib_without_a_line_end_disconnects_with_an_error,
	      nul_bytes_lone_crs_and_invalid_utf8_do_no_harm,
	      utf8_validation_rejects_overlongs_surrogates_and_truncations,
	      a_slow_reader_over_its_send_queue_is_disconnected,
	      flood_control_spreads_a_burst_over_time, a_flooder_is_paused_while_others_are_served,
	      a_full_server_says_so_and_closes, shutdown_says_error_to_every_client}},
	    {"slow_clients",
	     {a_session_that_cannot_keep_up_with_a_channel_quits_as_a_slow_client,
	      a_fan_out_drops_a_slow_client_the_same_way,
	      private_messages_to_a_slow_client_are_dropped_and_it_keeps_its_nick_until_it_quits,
	      a_session_with_a_full_mailbox_still_gets_its_answers,
	      cm_slow_refused_goes_again_at_the_next_notice,
	      with_the_default_queue_a_burst_is_delivered_whole}},
	};
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		TCase *tc = tcase_new(groups[g].name, TEST_TIMEOUT);
		tcase_add_checked_fixture(tc, setup, teardown);
		for (size_t i = 0; i < 20 && groups[g].tests[i] != NULL; i++)
			tcase_add_test(tc, groups[g].tests[i]);
		suite_add_tcase(s, tc);
	}
	return s;
}

TEST_MAIN(proto_suite)
