/* test_fileserve.c: the file server example over real loopback sockets. Each test starts the
 * built server (examples/fileserve/fileserve, or $FILESERVE) on a free port (it is given port
 * 0 and says which it got) with a directory of files made for the test, on the suite's reactor
 * backend, and talks HTTP/1.1 to it with a small client of its own; the server must exit 0 on
 * SIGTERM at the end of each. Nothing waits for time to pass: every wait is for bytes or an
 * exit, bounded only so that a hang fails instead of blocking.
 */
#include "../common.h"

#include <dirent.h>
#include <stdarg.h> /* backend.h needs it */
#include <sys/stat.h>

#include "../backend.h"
#include "client.h"

#define BIG_LEN ((3u << 20) + 7) /* bytes of big.bin: several sends' worth, not a round size */

/* ---------------------------------------------------------------------------------------------
 * The served directory: www/ in a temporary directory, with secret.txt beside it (outside)
 */

static char top[256], www[300];

/* The byte at `i` of big.bin: a xorshift stream, so that a misplaced block shows. */
static unsigned char big_byte(size_t i)
{
	uint64_t x = (i / 8 + 1) * 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (unsigned char)(x >> (8 * (i % 8)));
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static void make_root(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(top, sizeof(top), "%s/fileserve.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(top));
	snprintf(www, sizeof(www), "%s/www", top);
	ck_assert_int_eq(mkdir(www, 0755), 0);
	write_file(top, "secret.txt", "secret\n", 7);
	write_file(www, "index.html", "<p>hello</p>\n", 13);
	write_file(www, "empty.txt", "", 0);
	unsigned char *big = malloc(BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = big_byte(i);
	write_file(www, "big.bin", big, BIG_LEN);
	free(big);
	char sub[320];
	snprintf(sub, sizeof(sub), "%s/sub dir", www);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	write_file(sub, "index.html", "sub\n", 4);
	write_file(sub, "a.txt", "a\n", 2);
	snprintf(sub, sizeof(sub), "%s/noindex", www);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL) {
		unlink(path);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[600];
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		remove_tree(child);
	}
	closedir(d);
	rmdir(path);
}

static void remove_root(void)
{
	remove_tree(top);
}

static struct server server_start(void)
{
	return server_start_root(www);
}

/* ---------------------------------------------------------------------------------------------
 * Serving
 */

START_TEST(a_file_is_served_byte_for_byte)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	struct response r = client_get(c, "GET", "/big.bin");
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.length, BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		if (r.body[i] != big_byte(i))
			ck_abort_msg("byte %zu differs", i);
	char v[128];
	ck_assert_str_eq(response_header(r.head, "Content-Type", v, sizeof(v)),
	                 "application/octet-stream");
	ck_assert_ptr_nonnull(response_header(r.head, "Date", v, sizeof(v)));
	response_free(&r);
	r = client_get(c, "GET", "/empty.txt");
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.length, 0);
	response_free(&r);
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(a_path_ending_in_a_slash_serves_its_index_and_a_directory_without_is_redirected)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	struct response r = client_get(c, "GET", "/");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq((char *)r.body, "<p>hello</p>\n");
	char v[128];
	ck_assert_str_eq(response_header(r.head, "Content-Type", v, sizeof(v)),
	                 "text/html; charset=utf-8");
	response_free(&r);
	r = client_get(c, "GET", "/sub%20dir");
	ck_assert_int_eq(r.status, 301);
	ck_assert_str_eq(response_header(r.head, "Location", v, sizeof(v)), "/sub%20dir/");
	response_free(&r);
	r = client_get(c, "GET", "/sub%20dir/?query=1");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq((char *)r.body, "sub\n");
	response_free(&r);
	r = client_get(c, "GET", "/noindex/"); /* no index.html there, and no listing */
	ck_assert_int_eq(r.status, 404);
	response_free(&r);
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(a_missing_file_is_404_and_the_connection_goes_on)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	struct response r = client_get(c, "GET", "/no-such-file");
	ck_assert_int_eq(r.status, 404);
	ck_assert(!r.closes);
	ck_assert_str_eq((char *)r.body, "404 Not Found\n");
	response_free(&r);
	r = client_get(c, "GET", "/index.html/below-a-file");
	ck_assert_int_eq(r.status, 404);
	response_free(&r);
	r = client_get(c, "GET", "/sub%20dir/a.txt");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq((char *)r.body, "a\n");
	response_free(&r);
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(head_answers_the_head_alone)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	struct response r = client_get(c, "HEAD", "/big.bin");
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.length, BIG_LEN);
	/* Had a body followed, the next response would start with its bytes. */
	r = client_get(c, "HEAD", "/no-such-file");
	ck_assert_int_eq(r.status, 404);
	r = client_get(c, "GET", "/index.html");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq((char *)r.body, "<p>hello</p>\n");
	response_free(&r);
	client_close(c);
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Connections
 */

START_TEST(requests_one_after_another_share_a_connection)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	for (int i = 0; i < 3; i++) {
		struct response r = client_get(c, "GET", i == 1 ? "/big.bin" : "/index.html");
		ck_assert_int_eq(r.status, 200);
		ck_assert(!r.closes);
		ck_assert_int_eq(r.body_len, i == 1 ? BIG_LEN : 13);
		response_free(&r);
	}
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(pipelined_requests_are_answered_in_order)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	static const char *const targets[] = {"/big.bin",  "/index.html",    "/nope",
	                                      "/big.bin",  "/../secret.txt", "/sub%20dir/a.txt",
	                                      "/empty.txt"};
	static const int want[] = {200, 200, 404, 200, 403, 200, 200};
	enum { N = sizeof(want) / sizeof(want[0]) };
	char all[1024];
	size_t len = 0;
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len,
		                        "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", targets[i]);
	client_send(c, "%s", all); /* all at once */
	for (int i = 0; i < N; i++) {
		struct response r = client_response(c, false);
		ck_assert_msg(r.status == want[i], "%s: %d", targets[i], r.status);
		if (strcmp(targets[i], "/big.bin") == 0) {
			ck_assert_int_eq(r.body_len, BIG_LEN);
			ck_assert(r.body[BIG_LEN - 1] == big_byte(BIG_LEN - 1));
		}
		response_free(&r);
	}
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(connection_close_and_http_1_0_end_the_connection_after_the_response)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	client_send(c, "GET /big.bin HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
	struct response r = client_response(c, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert(r.closes);
	ck_assert_int_eq(r.body_len, BIG_LEN);
	response_free(&r);
	client_expect_end(c);
	client_close(c);

	c = client_open(s.port);
	client_send(c, "GET /index.html HTTP/1.0\r\n\r\n");
	r = client_response(c, false);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	client_expect_end(c);
	client_close(c);

	c = client_open(s.port); /* 1.0 with keep-alive asked for stays */
	for (int i = 0; i < 2; i++) {
		client_send(c, "GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
		r = client_response(c, false);
		ck_assert_int_eq(r.status, 200);
		char v[64];
		ck_assert_str_eq(response_header(r.head, "Connection", v, sizeof(v)), "keep-alive");
		response_free(&r);
	}
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(a_client_that_half_closes_still_gets_its_answers)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	client_send(
	    c,
	    "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	struct response r = client_response(c, false);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	r = client_response(c, false);
	ck_assert_int_eq(r.body_len, BIG_LEN);
	response_free(&r);
	client_expect_end(c);
	client_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(many_connections_at_once_each_get_the_whole_file)
{
	enum { N = 24 };
	struct server s = server_start();
	struct client *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = client_open(s.port);
		client_send(c[i], "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
	}
	/* Read them all as bytes come: the server meets 24 full sockets, none read to the end
	 * first. */
	size_t got[N] = {0}; /* body bytes, after the head */
	bool head_seen[N] = {0};
	for (int left = N; left > 0;) {
		struct pollfd p[N];
		for (int i = 0; i < N; i++)
			p[i] = (struct pollfd){.fd = got[i] == BIG_LEN ? -1 : c[i]->fd,
			                       .events = POLLIN};
		ck_assert_msg(poll(p, N, (int)(IO_WAIT_S * 1000 * test_scale())) > 0, "stalled");
		for (int i = 0; i < N; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ck_assert_msg(client_fill(c[i]) > 0, "connection %d ended early", i);
			if (!head_seen[i]) {
				unsigned char *e = memmem(c[i]->buf, c[i]->len, "\r\n\r\n", 4);
				if (e == NULL)
					continue;
				ck_assert(memcmp(c[i]->buf, "HTTP/1.1 200 ", 13) == 0);
				client_take(c[i], (size_t)(e - c[i]->buf) + 4);
				head_seen[i] = true;
			}
			ck_assert_msg(got[i] + c[i]->len <= BIG_LEN,
			              "connection %d: too many bytes", i);
			for (size_t k = 0; k < c[i]->len; k++)
				if (c[i]->buf[k] != big_byte(got[i] + k))
					ck_abort_msg("connection %d: byte %zu differs", i,
					             got[i] + k);
			got[i] += c[i]->len;
			client_take(c[i], c[i]->len);
			if (got[i] == BIG_LEN)
				left--;
		}
	}
	for (int i = 0; i < N; i++)
		client_close(c[i]);
	server_stop(&s);
}
END_TEST

/* Clients that leave with a file half sent: sendfile on a connection the peer has reset must
 * neither kill the server (SIGPIPE) nor leave it stuck; the next client is served. */
START_TEST(clients_gone_mid_file_leave_the_server_serving)
{
	enum { N = 8 };
	struct server s = server_start();
	for (int round = 0; round < 3; round++) {
		struct client *c[N];
		for (int i = 0; i < N; i++) {
			c[i] = client_open(s.port);
			client_send(c[i], "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
		}
		for (int i = 0; i < N; i++) {
			ck_assert(client_fill(c[i]) > 0); /* the file has started */
			struct linger rst = {.l_onoff = 1, .l_linger = 0};
			setsockopt(c[i]->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
			client_close(c[i]); /* a reset, with most of the file unsent */
		}
		struct client *next = client_open(s.port);
		struct response r = client_get(next, "GET", "/index.html");
		ck_assert_int_eq(r.status, 200);
		response_free(&r);
		client_close(next);
	}
	server_stop(&s);
}
END_TEST

/* SIGTERM while a client is in the middle of a file: the server exits 0 (a shutdown goes on
 * writing for a while, then resets: here the client leaves first). */
START_TEST(sigterm_with_a_file_half_sent_exits_0)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	client_send(c, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert(client_fill(c) > 0);
	kill(s.pid, SIGTERM);
	client_close(c);
	int st = server_wait(&s);
	ck_assert_msg(st != -1, "the server did not exit after SIGTERM");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server exited with status 0x%x",
	              st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Refusing
 */

START_TEST(paths_that_would_leave_the_root_are_refused)
{
	static const char *const forbidden[] = {
	    "/../secret.txt",
	    "/%2e%2e/secret.txt",
	    "/%2E%2E%2Fsecret.txt",
	    "/sub%20dir/../../secret.txt",
	    "/sub%20dir/%2e%2e/index.html",
	    "/./index.html",
	    "//etc/passwd",
	    "/%2F%2Fetc/passwd",
	    "/sub%20dir//a.txt",
	    "/..",
	    "http://host/../secret.txt",
	};
	static const char *const malformed[] = {
	    "../secret.txt", "secret.txt", "%2e%2e/secret.txt", "/a%00b", "/%zz", "/%2", "*",
	};
	struct server s = server_start();
	struct client *c = client_open(s.port);
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		struct response r = client_get(c, "GET", forbidden[i]);
		ck_assert_msg(r.status == 403, "%s: %d", forbidden[i], r.status);
		ck_assert(!r.closes); /* a 403 keeps the connection */
		response_free(&r);
	}
	client_close(c);
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		char req[128];
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", malformed[i]);
		int st = status_of(s.port, req);
		ck_assert_msg(st == 400, "%s: %d", malformed[i], st);
	}
	/* An absolute-form target inside the root is served. */
	ck_assert_int_eq(
	    status_of(s.port, "GET http://test/index.html HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
	server_stop(&s);
}
END_TEST

START_TEST(other_methods_get_405_and_the_connection_ends)
{
	struct server s = server_start();
	struct client *c = client_open(s.port);
	client_send(c, "POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
	struct response r = client_response(c, false);
	ck_assert_int_eq(r.status, 405);
	ck_assert(r.closes);
	char v[64];
	ck_assert_str_eq(response_header(r.head, "Allow", v, sizeof(v)), "GET, HEAD");
	response_free(&r);
	client_expect_end(c);
	client_close(c);
	ck_assert_int_eq(status_of(s.port, "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
	server_stop(&s);
}
END_TEST

START_TEST(malformed_requests_get_400_or_505)
{
	struct server s = server_start();
	ck_assert_int_eq(status_of(s.port, "HELLO\r\n\r\n"), 400);
	ck_assert_int_eq(status_of(s.port, "GET /\r\n\r\n"), 400);          /* HTTP/0.9 */
	ck_assert_int_eq(status_of(s.port, "GET / HTTP/1.1\r\n\r\n"), 400); /* no Host */
	ck_assert_int_eq(status_of(s.port, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
	ck_assert_int_eq(status_of(s.port, "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n"), 400);
	ck_assert_int_eq(status_of(s.port, "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
	ck_assert_int_eq(status_of(s.port, "GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
	ck_assert_int_eq(
	    status_of(s.port, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"), 400);
	server_stop(&s);
}
END_TEST

START_TEST(a_request_line_too_long_gets_414_and_a_head_too_long_431)
{
	struct server s = server_start();
	char *req = malloc(40000);
	/* A target of 9,000 bytes: over the 8 KiB line limit. */
	int n = sprintf(req, "GET /");
	memset(req + n, 'a', 9000);
	strcpy(req + n + 9000, " HTTP/1.1\r\nHost: t\r\n\r\n");
	struct client *c = client_open(s.port);
	client_send(c, "%s", req);
	struct response r = client_response(c, false);
	ck_assert_int_eq(r.status, 414);
	ck_assert(r.closes);
	response_free(&r);
	client_expect_end(c);
	client_close(c);

	/* One header line of 9,000 bytes. */
	n = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\nX-Long: ");
	memset(req + n, 'b', 9000);
	strcpy(req + n + 9000, "\r\n\r\n");
	ck_assert_int_eq(status_of(s.port, req), 431);

	/* Many header lines, each short, over 32 KiB in all. */
	n = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 700; i++)
		n += sprintf(req + n, "X-Header-%03d: %040d\r\n", i, i);
	strcpy(req + n, "\r\n");
	ck_assert_int_eq(status_of(s.port, req), 431);
	free(req);
	server_stop(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The program
 */

START_TEST(bad_arguments_get_a_message_and_exit_status_2)
{
	char err[512], missing[400];
	snprintf(missing, sizeof(missing), "%s/no-such-dir", top);
	int st = server_run((const char *[]){"0", missing, NULL}, err, sizeof(err));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);
	ck_assert_msg(strstr(err, "No such file or directory") != NULL, "said: %s", err);

	char file[400];
	snprintf(file, sizeof(file), "%s/index.html", www);
	st = server_run((const char *[]){"0", file, NULL}, err, sizeof(err));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);
	ck_assert_msg(strstr(err, "Not a directory") != NULL, "said: %s", err);

	st = server_run((const char *[]){"70000", www, NULL}, err, sizeof(err));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);
	ck_assert_msg(strstr(err, "not a port number") != NULL, "said: %s", err);

	st = server_run((const char *[]){"--workers", "zero", NULL}, err, sizeof(err));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);

	st = server_run((const char *[]){"1", "2", "3", NULL}, err, sizeof(err));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);
	ck_assert_msg(strstr(err, "usage:") != NULL, "said: %s", err);
}
END_TEST

START_TEST(a_port_in_use_is_an_error_with_exit_status_1)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	char port[16], err[512];
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	int st = server_run((const char *[]){port, www, NULL}, err, sizeof(err));
	close(fd);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status 0x%x: %s", st, err);
	ck_assert_msg(strstr(err, "Address already in use") != NULL, "said: %s", err);
}
END_TEST

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	TCase *tc = backend_tcase(s, b, 0, "serving", TEST_TIMEOUT, fixture);
	tcase_add_checked_fixture(tc, make_root, remove_root);
	tcase_add_test(tc, a_file_is_served_byte_for_byte);
	tcase_add_test(
	    tc, a_path_ending_in_a_slash_serves_its_index_and_a_directory_without_is_redirected);
	tcase_add_test(tc, a_missing_file_is_404_and_the_connection_goes_on);
	tcase_add_test(tc, head_answers_the_head_alone);

	tc = backend_tcase(s, b, 1, "connections", TEST_TIMEOUT_STRESS, fixture);
	tcase_add_checked_fixture(tc, make_root, remove_root);
	tcase_add_test(tc, requests_one_after_another_share_a_connection);
	tcase_add_test(tc, pipelined_requests_are_answered_in_order);
	tcase_add_test(tc, connection_close_and_http_1_0_end_the_connection_after_the_response);
	tcase_add_test(tc, a_client_that_half_closes_still_gets_its_answers);
	tcase_add_test(tc, many_connections_at_once_each_get_the_whole_file);
	tcase_add_test(tc, clients_gone_mid_file_leave_the_server_serving);
	tcase_add_test(tc, sigterm_with_a_file_half_sent_exits_0);

	tc = backend_tcase(s, b, 2, "refusing", TEST_TIMEOUT, fixture);
	tcase_add_checked_fixture(tc, make_root, remove_root);
	tcase_add_test(tc, paths_that_would_leave_the_root_are_refused);
	tcase_add_test(tc, other_methods_get_405_and_the_connection_ends);
	tcase_add_test(tc, malformed_requests_get_400_or_505);
	tcase_add_test(tc, a_request_line_too_long_gets_414_and_a_head_too_long_431);

	if (b == 0) { /* the same on every backend: once is enough */
		tc = backend_tcase(s, b, 3, "arguments", TEST_TIMEOUT, fixture);
		tcase_add_checked_fixture(tc, make_root, remove_root);
		tcase_add_test(tc, bad_arguments_get_a_message_and_exit_status_2);
		tcase_add_test(tc, a_port_in_use_is_an_error_with_exit_status_1);
	}
}

int main(int argc, char **argv)
{
	return backend_main(argc, argv, "fileserve", add_cases);
}
