/* http.h: the HTTP/1.1 a static file server needs: a request's head read line by line, its
 * target turned into a path that cannot leave the served directory, and a response's head.
 * No sockets and no actors: tests/fileserve/test_http.c drives it alone.
 */
#ifndef FILESERVE_HTTP_H
#define FILESERVE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest request line or header line, and the longest head (request line and headers
 * together). 8 KiB per line is what common servers accept by default (nginx's
 * large_client_header_buffers); 32 KiB leaves room for a few long cookies. */
#define HTTP_LINE_MAX 8192
#define HTTP_HEAD_MAX (32u << 10)

/* The longest path a request may name, after decoding: with the root and "index.html" it must
 * still fit PATH_MAX. Longer targets get 414. */
#define HTTP_PATH_MAX 3072

enum http_method { HTTP_GET = 1, HTTP_HEAD };

/* A request as its head is read. Zeroed to start. */
struct http_request {
	int method;      /* enum http_method, once the request line is read */
	int status;      /* 0: serve `path`; else the status to answer with (400, 403, 405, ...) */
	bool started;    /* the request line has been read */
	bool done;       /* the head is complete (or ended early by an error) */
	bool keep_alive; /* once done: the connection may carry another request after this one */
	bool http11;     /* HTTP/1.1 (else 1.0) */
	bool has_host;
	bool
	    has_body; /* Content-Length other than 0, or Transfer-Encoding: a body we do not read */
	bool conn_close, conn_keep;   /* the Connection header's "close" and "keep-alive" */
	size_t head_len;              /* bytes of the head so far, line ends counted */
	char path[HTTP_PATH_MAX + 1]; /* the decoded path, "/..." */
};

/* Feeds the next line of a head, without its line end. Lines before the request line that are
 * empty are skipped (RFC 9112, 2.2). Sets r->done once the head is complete: at its empty
 * line, or at once on an error that makes the rest unreadable (a malformed request line, an
 * unsupported version or method, a malformed header, a head over HTTP_HEAD_MAX); r->status
 * then says what to answer. A target that would leave the root (403) is answered once the
 * head is complete, and the connection goes on. */
void http_feed_line(struct http_request *r, const char *line, size_t len);

/* Decodes the path of a request target (origin-form "/a%20b?q", or absolute-form
 * "http://host/a") into out (cap bytes, NUL-terminated). 0, or the status to answer: 400 for a
 * malformed target (not "/..." or "http(s)://...", a bad or NUL %-escape, a control character
 * or a non-ASCII byte), 403 for one that would leave the root or name it twice (a "." or ".."
 * segment, "//", after decoding: "%2e%2e%2f" is ".." too), 414 if it does not fit. */
int http_target_path(const char *target, size_t len, char *out, size_t cap);

/* True if the status ends the connection after its answer: the rest of the stream cannot be
 * trusted to start a request (400, 405, 414, 431, 505...). 301, 403, 404 do not. */
bool http_status_closes(int status);

/* The reason phrase of a status ("Not Found"). */
const char *http_reason(int status);

/* The Content-Type for a path, by its extension; application/octet-stream if unknown. */
const char *http_content_type(const char *path);

/* What a response head says. */
struct http_reply {
	int status;
	const char *type;  /* Content-Type, or NULL for none */
	uint64_t length;   /* Content-Length */
	bool keep_alive;   /* else "Connection: close" */
	bool http11;       /* the request's version: to keep an HTTP/1.0 client, say keep-alive */
	const char *extra; /* more header lines, each ending in CR LF, or NULL */
};

/* Writes a response head into buf (cap bytes): the status line, Date, the headers `h` asks
 * for, and the empty line. Returns its length, or 0 if it does not fit. */
size_t http_response_head(char *buf, size_t cap, const struct http_reply *h);

#endif /* FILESERVE_HTTP_H */
