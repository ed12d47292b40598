/* http.c: reading a request's head, decoding its target into a safe path, and writing a
 * response's head (RFC 9110 and 9112, the parts a static file server uses). */
#define _GNU_SOURCE 1 /* memrchr, strncasecmp */
#include "http.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * The head
 */

/* Ends the head early: the rest of the stream is not read, and the connection closes after
 * the answer. */
static void end_head(struct http_request *r, int status)
{
	r->status = status;
	r->done = true;
	r->keep_alive = false;
}

/* tchar of RFC 9110, 5.6.2: what a method or a header name is made of. */
static bool is_token(const char *s, size_t len)
{
	static const char other[] = "!#$%&'*+-.^_`|~";
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool alnum = (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
		if (!alnum && (ch == '\0' || strchr(other, ch) == NULL))
			return false;
	}
	return true;
}

/* "HTTP/1.1" and "HTTP/1.0" are served (and 1.x as 1.1); another major version gets 505,
 * anything else 400. */
static int parse_version(struct http_request *r, const char *v, size_t len)
{
	if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1')
		return 505;
	r->http11 = v[7] != '0';
	return 0;
}

/* METHOD SP request-target SP HTTP-version */
static void request_line(struct http_request *r, const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len);
	const char *sp2 = sp1 != NULL ? memrchr(line, ' ', len) : NULL;
	if (sp1 == NULL || sp2 == sp1) { /* no version: HTTP/0.9, or not HTTP at all */
		end_head(r, 400);
		return;
	}
	int status = parse_version(r, sp2 + 1, len - (size_t)(sp2 + 1 - line));
	size_t mlen = (size_t)(sp1 - line);
	if (status == 0 && !is_token(line, mlen))
		status = 400;
	if (status != 0) {
		end_head(r, status);
		return;
	}
	if (mlen == 3 && memcmp(line, "GET", 3) == 0) {
		r->method = HTTP_GET;
	} else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0) {
		r->method = HTTP_HEAD;
	} else {
		end_head(r, 405); /* a body may follow, which we would not know to skip */
		return;
	}
	status = http_target_path(sp1 + 1, (size_t)(sp2 - sp1 - 1), r->path, sizeof(r->path));
	if (status == 403)
		r->status = 403; /* answered once the head is read; the connection goes on */
	else if (status != 0)
		end_head(r, status);
}

/* Whether the comma-separated list `v` holds `token`, in any case. */
static bool list_has(const char *v, size_t len, const char *token)
{
	size_t tlen = strlen(token);
	for (size_t i = 0; i < len;) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == tlen && strncasecmp(v + start, token, tlen) == 0)
			return true;
	}
	return false;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* field-name ":" OWS field-value OWS */
static void header_line(struct http_request *r, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	if (colon == NULL || !is_token(line, (size_t)(colon - line))) {
		end_head(r, 400); /* no name, a space before the colon, or obsolete line folding */
		return;
	}
	size_t nlen = (size_t)(colon - line);
	const char *v = colon + 1, *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t vlen = (size_t)(e - v);
	if (name_is(line, nlen, "host")) {
		if (r->has_host) { /* RFC 9112, 3.2: more than one Host is a 400 */
			end_head(r, 400);
			return;
		}
		r->has_host = true;
	} else if (name_is(line, nlen, "connection")) {
		if (list_has(v, vlen, "close"))
			r->conn_close = true;
		if (list_has(v, vlen, "keep-alive"))
			r->conn_keep = true;
	} else if (name_is(line, nlen, "content-length")) {
		if (vlen == 0 || strspn(v, "0123456789") < vlen) {
			end_head(r, 400);
			return;
		}
		if (strspn(v, "0") < vlen)
			r->has_body = true;
	} else if (name_is(line, nlen, "transfer-encoding")) {
		r->has_body = true;
	}
}

/* The empty line: the head is complete. */
static void head_end(struct http_request *r)
{
	if (r->http11 && !r->has_host && r->status == 0)
		r->status = 400; /* RFC 9112, 3.2: an HTTP/1.1 request without Host */
	r->done = true;
	r->keep_alive = r->http11 ? !r->conn_close : r->conn_keep && !r->conn_close;
	if (r->has_body || http_status_closes(r->status))
		r->keep_alive = false;
}

void http_feed_line(struct http_request *r, const char *line, size_t len)
{
	if (r->done)
		return;
	r->head_len += len + 2;
	if (r->head_len > HTTP_HEAD_MAX)
		end_head(r, 431);
	else if (!r->started && len == 0)
		return; /* an empty line before the request line */
	else if (!r->started && (r->started = true))
		request_line(r, line, len);
	else if (len == 0)
		head_end(r);
	else
		header_line(r, line, len);
}

/* ---------------------------------------------------------------------------------------------
 * The target
 */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 403 if the decoded path has a "." or ".." segment, or an empty one before its end ("//"):
 * the first two would climb out of the root, the last would name a path from the top. */
static int check_segments(const char *path)
{
	for (const char *seg = path + 1;;) {
		const char *slash = strchr(seg, '/');
		size_t len = slash != NULL ? (size_t)(slash - seg) : strlen(seg);
		if ((len == 0 && slash != NULL) || (len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return 403;
		if (slash == NULL)
			return 0;
		seg = slash + 1;
	}
}

int http_target_path(const char *target, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	if (len >= 7 && strncasecmp(target, "http://", 7) == 0)
		i = 7;
	else if (len >= 8 && strncasecmp(target, "https://", 8) == 0)
		i = 8;
	if (i > 0) { /* absolute-form: the authority is not ours to check */
		while (i < len && target[i] != '/' && target[i] != '?' && target[i] != '#')
			i++;
		if (i == len || target[i] != '/')
			out[o++] = '/';
	} else if (len == 0 || target[0] != '/') {
		return 400; /* "*", an authority alone, or not a target at all */
	}
	for (; i < len && target[i] != '?' && target[i] != '#'; i++) {
		unsigned char ch = (unsigned char)target[i];
		if (ch <= ' ' || ch >= 0x7f)
			return 400;
		if (ch == '%') {
			int hi = i + 2 < len ? hex_digit(target[i + 1]) : -1;
			int lo = hi >= 0 ? hex_digit(target[i + 2]) : -1;
			if (lo < 0 || (hi | lo) == 0)
				return 400; /* not two hex digits, or %00 */
			ch = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return 414;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return check_segments(out);
}

/* ---------------------------------------------------------------------------------------------
 * Responses
 */

bool http_status_closes(int status)
{
	return status >= 400 && status != 403 && status != 404 && status != 500;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 301:
		return "Moved Permanently";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

const char *http_content_type(const char *path)
{
	static const char *const types[][2] = {
	    {"html", "text/html; charset=utf-8"},
	    {"htm", "text/html; charset=utf-8"},
	    {"txt", "text/plain; charset=utf-8"},
	    {"css", "text/css"},
	    {"js", "text/javascript"},
	    {"json", "application/json"},
	    {"xml", "application/xml"},
	    {"png", "image/png"},
	    {"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},
	    {"svg", "image/svg+xml"},
	    {"ico", "image/x-icon"},
	    {"webp", "image/webp"},
	    {"pdf", "application/pdf"},
	    {"wasm", "application/wasm"},
	    {"woff2", "font/woff2"},
	    {"mp4", "video/mp4"},
	};
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash != NULL ? slash : path, '.');
	if (dot != NULL)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i][0]) == 0)
				return types[i][1];
	return "application/octet-stream";
}

/* The Date header's value (RFC 9110, 5.6.7), made once a second on each thread. */
static const char *date_now(void)
{
	static __thread time_t made;
	static __thread char text[32];
	time_t now = time(NULL);
	if (now != made) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		made = now;
	}
	return text;
}

size_t http_response_head(char *buf, size_t cap, const struct http_reply *h)
{
	const char *conn = !h->keep_alive ? "Connection: close\r\n"
	                   : !h->http11   ? "Connection: keep-alive\r\n"
	                                  : "";
	bool typed = h->type != NULL;
	int n = snprintf(
	    buf, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%sContent-Length: %" PRIu64 "\r\n%s%s\r\n",
	    h->status, http_reason(h->status), date_now(), typed ? "Content-Type: " : "",
	    typed ? h->type : "", typed ? "\r\n" : "", h->length, conn,
	    h->extra != NULL ? h->extra : "");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
