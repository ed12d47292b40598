/* test_chat_config.c: chat-server's configuration file (--config), on the real server: a good
 * file starts it with the file's settings, the shipped example file works, the command line
 * wins over the file wherever it stands, and every kind of bad file is a clear error that
 * names the file and the line, with exit status 2.
 *
 * Skips (77) when chat-server was built without inih, so without --config.
 */
#include "../common.h"

#include "client.h"

#define CONFIG_TIMEOUT 60 /* per test, before CK_TIMEOUT_MULTIPLIER */

/* A configuration file in a folder of its own, so that relative paths in it are testable. */
struct conf {
	char dir[256];
	char path[300];
};

static struct conf conf_write(const char *text)
{
	struct conf c;
	const char *tmp = getenv("TMPDIR");
	snprintf(c.dir, sizeof(c.dir), "%s/chat-config.XXXXXX", tmp != NULL ? tmp : P_tmpdir);
	ck_assert_ptr_nonnull(mkdtemp(c.dir));
	snprintf(c.path, sizeof(c.path), "%s/chat.conf", c.dir);
	FILE *f = fopen(c.path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return c;
}

/* Removes the file, and the folder with anything the test put beside it. */
static void conf_remove(struct conf *c, const char *other)
{
	char p[400];
	if (other != NULL) {
		snprintf(p, sizeof(p), "%s/%s", c->dir, other);
		unlink(p);
	}
	unlink(c->path);
	rmdir(c->dir);
}

/* A loopback port that was free a moment ago. */
static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Connects with a wrong password: the server says 464 and closes. */
static void refused(uint16_t port, const char *password)
{
	struct ircc *c = ircc_open(port);
	ircc_send(c, "PASS %s\r\nNICK refused\r\nUSER refused 0 * :r\r\n", password);
	EXPECT(c, " 464 ");
	ircc_close(c);
}

/* ---------------------------------------------------------------------------------------------
 * Good files
 */

START_TEST(a_good_file_starts_the_server_with_its_settings)
{
	char text[1024];
	uint16_t port = free_port();
	snprintf(text, sizeof(text),
	         "# chat-server, as a test configures it\n"
	         "[server]\n"
	         "bind = 127.0.0.1\n"
	         "port = %u\n"
	         "workers = 2\n"
	         "name = irc.config.example ; a comment after a blank\n"
	         "password = letmein\n"
	         "oper = operuser:operpassword\n"
	         "oper = second:pass:word\n"
	         "\n"
	         "[limits]\n"
	         "max-line = 100\n"
	         "flood-rate = 0\n"
	         "session-queue = 64\n"
	         "\n"
	         "[motd]\n"
	         "line = Welcome, configured server.\n"
	         "line = A second line,\n"
	         "       and a third that continues it.\n",
	         port);
	struct conf c = conf_write(text);
	struct server s = server_start_exact((const char *const[]){"--config", c.path, NULL});
	ck_assert_uint_eq(s.port, port);

	struct ircc *a = ircc_open(s.port);
	ircc_send(a, "PASS letmein\r\nNICK alice\r\nUSER alice 0 * :Alice\r\n");
	EXPECT(a, ":irc.config.example 001 alice ");
	EXPECT(a, " 372 alice :- Welcome, configured server.");
	EXPECT(a, " 372 alice :- A second line,");
	EXPECT(a, " 372 alice :- and a third that continues it.");
	EXPECT(a, " 376 alice ");
	char line[128];
	memset(line, 'x', sizeof(line));
	memcpy(line, "PRIVMSG alice :", 15);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	ircc_send_raw(a, line, sizeof(line)); /* longer than max-line = 100 */
	EXPECT(a, " 417 alice ");
	refused(s.port, "wrong");
	ircc_send(a, "OPER second pass\r\n");
	EXPECT(a, " 464 alice ");
	ircc_send(a, "OPER second pass:word\r\n"); /* the password is all after the first colon */
	EXPECT(a, " 381 alice ");
	ircc_close(a);
	server_stop(&s);
	conf_remove(&c, NULL);
}
END_TEST

/* examples/chat/chat-server.conf, with its MOTD file beside it. */
START_TEST(the_shipped_example_file_starts_the_server)
{
	const char *path = CHAT_EXAMPLE_CONF;
	struct server s = server_start_exact(
	    (const char *const[]){"--config", path, "--port", "0", "--workers", "1", NULL});
	struct ircc *a = ircc_open(s.port);
	ircc_send(a, "NICK ann\r\nUSER ann 0 * :Ann\r\n");
	EXPECT(a, " 001 ann ");
	EXPECT(a, " 372 ann :- Welcome to the libactor chat server.");
	ircc_close(a);
	server_stop(&s);
}
END_TEST

START_TEST(the_command_line_wins_over_the_file_wherever_it_stands)
{
	int fd;
	char text[512];
	/* The file's port is taken: were it used, the server could not start. */
	snprintf(text, sizeof(text),
	         "[server]\n"
	         "port = %u\n"
	         "workers = 1\n"
	         "name = file.example\n"
	         "password = filepass\n"
	         "oper = operuser:fromfile\n"
	         "oper = another:fromfile\n"
	         "[motd]\n"
	         "line = the file's MOTD\n",
	         held_port(&fd));
	struct conf c = conf_write(text);
	char motd[400];
	snprintf(motd, sizeof(motd), "%s/motd.txt", c.dir);
	FILE *f = fopen(motd, "w");
	fputs("the command line's MOTD\n", f);
	fclose(f);

	struct server s = server_start_exact((const char *const[]){
	    "--name", "cli.example", "--password", "clipass", "--config", c.path, "--port", "0",
	    "--bind", "127.0.0.1", "--oper", "operuser:fromcli", "--motd", motd, NULL});
	close(fd);
	struct ircc *a = ircc_open(s.port);
	ircc_send(a, "PASS clipass\r\nNICK bob\r\nUSER bob 0 * :Bob\r\n");
	EXPECT(a, ":cli.example 001 bob ");
	EXPECT(a, " 372 bob :- the command line's MOTD");
	refused(s.port, "filepass");
	/* --oper replaced the file's operuser and kept its other operator. */
	ircc_send(a, "OPER operuser fromfile\r\n");
	EXPECT(a, " 464 bob ");
	ircc_send(a, "OPER operuser fromcli\r\n");
	EXPECT(a, " 381 bob ");
	ircc_send(a, "OPER another fromfile\r\n");
	EXPECT(a, " 381 bob ");
	ircc_close(a);
	server_stop(&s);
	conf_remove(&c, "motd.txt");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bad files
 */

struct bad {
	const char *text;
	int line;
	const char *says;
};

START_TEST(each_kind_of_bad_file_is_an_error_with_its_line)
{
	char long_line[400];
	snprintf(long_line, sizeof(long_line), "[motd]\nline = %0250d\n", 0);
	const struct bad cases[] = {
	    {"[server]\nprot = 6667\n", 2, "unknown key 'prot' in [server] (it has bind, port,"},
	    {"# a comment\n[server]\nport = 70000\n", 3,
	     "[server] port: expected a whole number in 0..65535, got '70000'"},
	    {"[server]\nworkers = many\n", 2, "[server] workers: expected a whole number"},
	    {"[server]\nreactor = kqueue\n", 2,
	     "[server] reactor: expected auto, epoll or io_uring, got 'kqueue'"},
	    {"[server]\npin = maybe\n", 2, "[server] pin: expected yes or no, got 'maybe'"},
	    {"[limits]\nflood-rate = -1\n", 2, "[limits] flood-rate: expected a whole number"},
	    {"[limits]\nsession-queue = 0\n", 2,
	     "[limits] session-queue: expected a whole number in 1..1048576, got '0'"},
	    {"[server]\nport = 0\n\n[sever]\nname = x\n", 4, "unknown section [sever]"},
	    {"[server]\nport 6667\n", 2, "expected [section] or key = value"},
	    {"[server\nport = 6667\n", 1, "expected [section] or key = value"},
	    {"port = 6667\n", 1, "'port' stands before any [section]"},
	    {"[server]\nport = 1\nname = a\nport = 2\n", 4,
	     "[server] port is set twice (first on line 2)"},
	    {"[limits]\nsendq = 4096\n  8192\n", 3,
	     "an indented line continues the value of 'sendq', which takes one value"},
	    {"[server]\nport = 0\n[tls]\nport = 66970\n", 4,
	     "[tls] port: expected a whole number in 0..65535, got '66970'"},
	    {"[tls]\ncert =\n", 2, "[tls] cert: expected a file"},
	    {"[motd]\nline = hello\nfile = motd.txt\n", 3, "[motd] takes line or file, not both"},
	    {"[motd]\nfile = no-such-motd.txt\n", 2, "[motd] file: cannot read "},
	    {"[server]\noper = nopassword\n", 2, "[server] oper: expected NAME:PASSWORD"},
	    {"[server]\noper = a:b\noper = a:c\n", 3,
	     "[server] oper: expected an operator name not given before, got 'a:c'"},
	    {"[server]\npassword =\n", 2, "[server] password: expected a non-empty word"},
	    {long_line, 2, "the line is longer than"},
	    /* The first error is the one reported, whoever found it. */
	    {"[server]\nport 1\nport = x\n", 2, "expected [section] or key = value"},
	};
	char out[4096], want[512];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c = conf_write(cases[i].text);
		int st =
		    server_run((const char *const[]){"--config", c.path, NULL}, out, sizeof(out));
		snprintf(want, sizeof(want), "chat-server: %s:%d: %s", c.path, cases[i].line,
		         cases[i].says);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "case %zu: status 0x%x: %s", i,
		              st, out);
		ck_assert_msg(strstr(out, want) != NULL, "case %zu: wanted '%s', said '%s'", i,
		              want, out);
		conf_remove(&c, NULL);
	}
}
END_TEST

START_TEST(a_file_that_cannot_be_read_is_an_error)
{
	char out[4096];
	struct conf c = conf_write("");
	unlink(c.path);
	int st = server_run((const char *const[]){"--config", c.path, NULL}, out, sizeof(out));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x: %s", st, out);
	ck_assert_msg(strstr(out, ": No such file or directory") != NULL, "said '%s'", out);
	ck_assert_ptr_nonnull(strstr(out, c.path));

	st = server_run((const char *const[]){"--config", c.dir, NULL}, out, sizeof(out));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x: %s", st, out);
	ck_assert_msg(strstr(out, ": Is a directory") != NULL, "said '%s'", out);

	st = server_run((const char *const[]){"--config", c.dir, "--config", c.dir, NULL}, out,
	                sizeof(out));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x: %s", st, out);
	ck_assert_msg(strstr(out, "--config given twice") != NULL, "said '%s'", out);
	rmdir(c.dir);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("chat_config");
	TCase *tc = tcase_new("good", CONFIG_TIMEOUT);
	tcase_add_test(tc, a_good_file_starts_the_server_with_its_settings);
	tcase_add_test(tc, the_shipped_example_file_starts_the_server);
	tcase_add_test(tc, the_command_line_wins_over_the_file_wherever_it_stands);
	suite_add_tcase(s, tc);

	tc = tcase_new("bad", CONFIG_TIMEOUT);
	tcase_add_test(tc, each_kind_of_bad_file_is_an_error_with_its_line);
	tcase_add_test(tc, a_file_that_cannot_be_read_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}

/* TEST_MAIN, but a chat-server without --config is a skip. */
int main(int argc, char **argv)
{
	if (!CHAT_CONFIG_BUILT) {
		printf("SKIP: chat-server was built without inih, so without --config\n");
		return 77;
	}
	test_argc = argc;
	test_argv = argv;
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
