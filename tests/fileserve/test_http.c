/* test_http.c: the file server's HTTP (examples/fileserve/http.c) without sockets: targets
 * decoded into paths that stay under the root, heads read line by line, response heads. */
#include "../common.h"

#include "http.h"

/* Feeds a whole head, lines separated by "\n" in `text`. */
static struct http_request feed(const char *text)
{
	struct http_request r = {0};
	for (const char *p = text; *p != '\0' && !r.done;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		http_feed_line(&r, p, len);
		p += len + (nl != NULL);
	}
	return r;
}

static int decode(const char *target, char *out)
{
	return http_target_path(target, strlen(target), out, HTTP_PATH_MAX + 1);
}

START_TEST(targets_decode_into_paths_under_the_root)
{
	static const char *const ok[][2] = {
	    {"/", "/"},
	    {"/a/b.txt", "/a/b.txt"},
	    {"/a%20b", "/a b"},
	    {"/caf%C3%A9", "/caf\xc3\xa9"},
	    {"/a?x=../..", "/a"},
	    {"/a#frag", "/a"},
	    {"/dir/", "/dir/"},
	    {"/.hidden", "/.hidden"},
	    {"/a..b/...", "/a..b/..."},
	    {"http://example.com/x", "/x"},
	    {"HTTPS://example.com", "/"},
	    {"http://example.com?q", "/"},
	};
	char out[HTTP_PATH_MAX + 1];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(decode(ok[i][0], out) == 0, "%s refused", ok[i][0]);
		ck_assert_str_eq(out, ok[i][1]);
	}
}
END_TEST

START_TEST(targets_that_climb_out_or_name_a_path_from_the_top_are_403)
{
	static const char *const bad[] = {
	    "/..",  "/../x", "/a/../../x", "/%2e%2e/x", "/%2E%2e%2Fx",   "/a/%2e%2E", "/.",
	    "/./a", "//etc", "/%2fetc",    "/a//b",     "http://h/../x", "/a/./b",    "/..%2f..",
	};
	char out[HTTP_PATH_MAX + 1];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(decode(bad[i], out) == 403, "%s: %d", bad[i], decode(bad[i], out));
}
END_TEST

START_TEST(malformed_targets_are_400_and_long_ones_414)
{
	static const char *const bad[] = {
	    "",   "a",   "*",    "../x",   "%2e%2e/x", "/a%00",
	    "/%", "/%4", "/%zz", "/a\x01", "/a\x7f",   "/caf\xc3\xa9",
	};
	char out[HTTP_PATH_MAX + 1];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(decode(bad[i], out) == 400, "[%s]: %d", bad[i], decode(bad[i], out));
	char *longer = malloc(HTTP_PATH_MAX + 2);
	longer[0] = '/';
	memset(longer + 1, 'a', HTTP_PATH_MAX);
	longer[HTTP_PATH_MAX + 1] = '\0';
	ck_assert_int_eq(decode(longer, out), 414);
	longer[HTTP_PATH_MAX] = '\0'; /* just fits */
	ck_assert_int_eq(decode(longer, out), 0);
	free(longer);
}
END_TEST

START_TEST(a_head_is_read_to_its_empty_line)
{
	struct http_request r = feed("\nGET /x HTTP/1.1\nHost: h\nAccept: */*\n\n");
	ck_assert(r.done);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(r.method, HTTP_GET);
	ck_assert_str_eq(r.path, "/x");
	ck_assert(r.keep_alive);

	r = feed("HEAD /y HTTP/1.1\nHost: h\n");
	ck_assert(!r.done); /* no empty line yet */
	http_feed_line(&r, "", 0);
	ck_assert(r.done);
	ck_assert_int_eq(r.method, HTTP_HEAD);
}
END_TEST

START_TEST(keep_alive_follows_the_version_and_the_connection_header)
{
	ck_assert(feed("GET / HTTP/1.1\nHost: h\n\n").keep_alive);
	ck_assert(!feed("GET / HTTP/1.1\nHost: h\nConnection: close\n\n").keep_alive);
	ck_assert(!feed("GET / HTTP/1.1\nHost: h\nconnection: Upgrade, CLOSE\n\n").keep_alive);
	ck_assert(!feed("GET / HTTP/1.0\n\n").keep_alive);
	ck_assert(feed("GET / HTTP/1.0\nConnection: Keep-Alive\n\n").keep_alive);
	ck_assert(feed("GET / HTTP/1.2\nHost: h\n\n").keep_alive); /* a later 1.x is 1.1 */
	/* A body we do not read ends the connection after the answer. */
	ck_assert(!feed("GET / HTTP/1.1\nHost: h\nContent-Length: 3\n\n").keep_alive);
	ck_assert(feed("GET / HTTP/1.1\nHost: h\nContent-Length: 0\n\n").keep_alive);
	ck_assert(!feed("GET / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n").keep_alive);
	/* A 403 keeps it; a 400 does not. */
	struct http_request r = feed("GET /../x HTTP/1.1\nHost: h\n\n");
	ck_assert_int_eq(r.status, 403);
	ck_assert(r.keep_alive);
	r = feed("GET / HTTP/1.1\n\n");
	ck_assert_int_eq(r.status, 400);
	ck_assert(!r.keep_alive);
}
END_TEST

START_TEST(errors_in_the_request_line_end_the_head_at_once)
{
	static const struct {
		const char *line;
		int status;
	} cases[] = {
	    {"HELLO", 400},           {"GET /", 400},          {"GET / HTTP/1.1 x", 400},
	    {"GET / http/1.1", 400},  {"GET / HTTP/11", 400},  {"GET / HTTP/2.0", 505},
	    {"POST / HTTP/1.1", 405}, {"get / HTTP/1.1", 405}, {"G(T / HTTP/1.1", 400},
	    {"GET a HTTP/1.1", 400},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request r = {0};
		http_feed_line(&r, cases[i].line, strlen(cases[i].line));
		ck_assert_msg(r.done && r.status == cases[i].status && !r.keep_alive, "%s: %d",
		              cases[i].line, r.status);
	}
}
END_TEST

START_TEST(bad_headers_are_400_and_a_head_over_the_limit_431)
{
	ck_assert_int_eq(feed("GET / HTTP/1.1\nHost: a\nHost: b\n\n").status, 400);
	ck_assert_int_eq(feed("GET / HTTP/1.1\nHost: a\n folded\n\n").status, 400);
	ck_assert_int_eq(feed("GET / HTTP/1.1\nHost: a\nName : v\n\n").status, 400);
	ck_assert_int_eq(feed("GET / HTTP/1.1\nHost: a\n: v\n\n").status, 400);
	ck_assert_int_eq(feed("GET / HTTP/1.1\nHost: a\nContent-Length: -1\n\n").status, 400);

	/* Lines of 100 bytes, counted with their CR LF, up to HTTP_HEAD_MAX exactly: accepted;
	 * one byte more: 431. */
	char line[128];
	memset(line, 'x', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	struct http_request r = {0};
	http_feed_line(&r, "GET / HTTP/1.1", 14);
	http_feed_line(&r, "Host: h", 7);
	size_t used = 16 + 9;
	while (used + 102 <= HTTP_HEAD_MAX - 2) {
		http_feed_line(&r, line, 100);
		used += 102;
	}
	size_t last = HTTP_HEAD_MAX - 2 - used - 2; /* leaves room for the empty line's 2 */
	http_feed_line(&r, line, last);
	ck_assert(!r.done);
	http_feed_line(&r, "", 0);
	ck_assert(r.done);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.head_len, HTTP_HEAD_MAX);

	r = (struct http_request){0};
	http_feed_line(&r, "GET / HTTP/1.1", 14);
	http_feed_line(&r, "Host: h", 7);
	for (used = 16 + 9; used + 102 <= HTTP_HEAD_MAX - 2; used += 102)
		http_feed_line(&r, line, 100);
	http_feed_line(&r, line, HTTP_HEAD_MAX - 2 - used - 2 + 1);
	http_feed_line(&r, "", 0);
	ck_assert_int_eq(r.status, 431);
	ck_assert(!r.keep_alive);
}
END_TEST

START_TEST(response_heads_say_length_type_and_connection)
{
	char buf[512];
	struct http_reply h = {
	    .status = 200, .type = "text/plain", .length = 12, .keep_alive = true, .http11 = true};
	size_t n = http_response_head(buf, sizeof(buf), &h);
	ck_assert_uint_eq(n, strlen(buf));
	ck_assert(strncmp(buf, "HTTP/1.1 200 OK\r\nDate: ", 23) == 0);
	ck_assert_ptr_nonnull(strstr(buf, " GMT\r\nContent-Type: text/plain\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\r\nContent-Length: 12\r\n\r\n"));
	ck_assert_ptr_null(strstr(buf, "Connection"));

	h = (struct http_reply){.status = 404, .keep_alive = true}; /* to HTTP/1.0 */
	http_response_head(buf, sizeof(buf), &h);
	ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\r\nConnection: keep-alive\r\n"));
	ck_assert_ptr_null(strstr(buf, "Content-Type"));

	h = (struct http_reply){.status = 405, .http11 = true, .extra = "Allow: GET, HEAD\r\n"};
	http_response_head(buf, sizeof(buf), &h);
	ck_assert_ptr_nonnull(strstr(buf, "\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n"));

	h = (struct http_reply){.status = 200};
	ck_assert_uint_eq(http_response_head(buf, 40, &h), 0);
}
END_TEST

START_TEST(content_types_come_from_the_extension)
{
	ck_assert_str_eq(http_content_type("/a/index.html"), "text/html; charset=utf-8");
	ck_assert_str_eq(http_content_type("/a/B.PNG"), "image/png");
	ck_assert_str_eq(http_content_type("/a.d/file"), "application/octet-stream");
	ck_assert_str_eq(http_content_type("/a/.txt"), "text/plain; charset=utf-8");
	ck_assert_str_eq(http_content_type("/archive.tar.gz"), "application/octet-stream");
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("fileserve-http");
	TCase *tc = tcase_new("targets", TEST_TIMEOUT);
	tcase_add_test(tc, targets_decode_into_paths_under_the_root);
	tcase_add_test(tc, targets_that_climb_out_or_name_a_path_from_the_top_are_403);
	tcase_add_test(tc, malformed_targets_are_400_and_long_ones_414);
	suite_add_tcase(s, tc);
	tc = tcase_new("heads", TEST_TIMEOUT);
	tcase_add_test(tc, a_head_is_read_to_its_empty_line);
	tcase_add_test(tc, keep_alive_follows_the_version_and_the_connection_header);
	tcase_add_test(tc, errors_in_the_request_line_end_the_head_at_once);
	tcase_add_test(tc, bad_headers_are_400_and_a_head_over_the_limit_431);
	suite_add_tcase(s, tc);
	tc = tcase_new("responses", TEST_TIMEOUT);
	tcase_add_test(tc, response_heads_say_length_type_and_connection);
	tcase_add_test(tc, content_types_come_from_the_extension);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(http_suite)
