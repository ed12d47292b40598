/* fileserve.c: a static HTTP/1.1 file server. One actor per connection; files are opened,
 * examined and sent through the files API, so that no worker ever waits on the disk.
 *
 * Usage: fileserve [--host ADDR] [--workers N] [PORT [ROOT]]
 *        (defaults: 127.0.0.1, one worker per CPU, port 8080, the current directory;
 *        port 0 takes any free port)
 *
 * Serves GET and HEAD for the regular files under ROOT, with keep-alive and pipelining; a path
 * that ends in "/" means its index.html, and a directory named without the "/" is redirected
 * there (301). Each request's head is read a line at a time (ACTOR_FRAME_LINE); the response's
 * head is written with actor_tcp_write, and the file follows with actor_file_send, which moves
 * its bytes from the page cache to the socket (sendfile) in order with the writes around it. A
 * target that would leave ROOT ("..", "%2e%2e", "//") gets 403, a missing file 404, a method
 * other than GET and HEAD 405, a request line over 8 KiB 414, a header line over 8 KiB or a
 * head over 32 KiB 431, anything else malformed 400 (examples/fileserve/http.c).
 *
 * Prints the address it listens on, then serves until SIGINT or SIGTERM, and exits 0; exits 2
 * for bad arguments, 1 if it cannot listen. Symbolic links under ROOT are followed, even out of
 * it: the checks are on the path's text, and actor_file_open opens a path as open(2) does.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <actor.h>

#include "http.h"

enum { MSG_LISTEN = 1 };

/* A connection holds at most this many files at once (opening, or sending): more pipelined
 * requests wait. Each is a descriptor until its send is done. */
#define FILES_MAX 4
/* Parsed requests waiting for their turn before reading stops (actor_tcp_pause); a client
 * that pipelines more meets TCP's flow control. */
#define PIPELINE_MAX 16
/* Unread input a connection may have waiting in its owner's mailbox: one head at its longest
 * (actor_tcp_set_read_limit; the default of 1 MiB would let a pipelining client queue tens of
 * thousands of tiny requests). */
#define READ_LIMIT HTTP_HEAD_MAX
/* A connection with nothing in flight that hears nothing from its peer between two ticks is
 * closed (after 10 to 20 s of silence); a head still unfinished at the second tick after it
 * began gets 408 (10 to 20 s). */
#define TICK_NS (10 * 1000000000ull)

/* What every connection serves: main's, read-only once the workers run. */
struct site {
	char root[PATH_MAX]; /* without a trailing "/" ("" for "/") */
	size_t root_len;
};

/* A request whose answer is owed, in the order they came. */
struct req {
	struct req *next;
	int method, status;
	bool keep_alive, http11;
	size_t len;
	char path[]; /* decoded: "/..." */
};

/* A connection actor's state. */
struct conn {
	const struct site *site;
	actor_conn_t conn;
	struct http_request head; /* the head being read */
	struct req *first, *last; /* answers owed, oldest first */
	unsigned queued;          /* requests in that list */
	struct req *serving;      /* the one whose file is being opened or examined */
	actor_file_t file;        /* its file, once open */
	uint64_t size;            /* and its size, while it waits for room (`blocked`) */
	unsigned files;           /* files opening or open: at most FILES_MAX */
	unsigned ops;             /* file operations whose answers have not come */
	unsigned head_ticks;      /* ticks during which `head` was unfinished */
	actor_timer_t timer;
	bool heard;      /* the peer sent something since the last tick */
	bool paused;     /* reading stopped: PIPELINE_MAX requests wait */
	bool blocked;    /* the output queue is full: nothing more until ACTOR_MSG_TCP_DRAINED */
	bool input_done; /* nothing more will be read */
	bool closed;     /* actor_tcp_close was called: stop once `ops` is 0 */
	bool exiting;
	char full[PATH_MAX];
};

static void serve_next(actor_ctx_t *ctx, struct conn *c);

static void conn_free(void *state)
{
	struct conn *c = state;
	free(c->serving);
	while (c->first != NULL) {
		struct req *r = c->first;
		c->first = r->next;
		free(r);
	}
	free(c);
}

static void close_conn(actor_ctx_t *ctx, struct conn *c)
{
	if (!c->closed) {
		c->closed = true;
		/* What is queued is written first, the files' bytes included. */
		actor_tcp_close(ctx, c->conn);
		actor_timer_cancel(ctx, c->timer);
	}
	if (c->ops == 0 && !c->exiting) {
		c->exiting = true;
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

/* Counts a file operation that was started, or ends the connection if it could not be. */
static bool started(actor_ctx_t *ctx, struct conn *c, int rc)
{
	if (rc == 0) {
		c->ops++;
		return true;
	}
	close_conn(ctx, c);
	return false;
}

/* ---------------------------------------------------------------------------------------------
 * Answers
 */

/* Writes a response head with `extra` headers, and for GET `body`; -ENOBUFS if the output
 * queue is full. */
static int respond(actor_ctx_t *ctx, struct conn *c, const struct req *r, int status,
                   const char *extra, const char *body)
{
	size_t blen = strlen(body);
	struct http_reply h = {.status = status,
	                       .type = "text/plain; charset=utf-8",
	                       .length = blen,
	                       .keep_alive = r->keep_alive,
	                       .http11 = r->http11,
	                       .extra = extra};
	char buf[1024];
	size_t n = http_response_head(buf, sizeof(buf), &h);
	if (n == 0 || n + blen > sizeof(buf))
		return -EMSGSIZE;
	if (r->method != HTTP_HEAD) {
		memcpy(buf + n, body, blen);
		n += blen;
	}
	return actor_tcp_write(ctx, c->conn, buf, n);
}

/* An error, with its reason as the body. */
static int respond_error(actor_ctx_t *ctx, struct conn *c, const struct req *r, int status)
{
	char body[64];
	snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	return respond(ctx, c, r, status, status == 405 ? "Allow: GET, HEAD\r\n" : NULL, body);
}

/* 301 to the directory's path with a "/": the path %-encoded again, as it came decoded. */
static int respond_redirect(actor_ctx_t *ctx, struct conn *c, const struct req *r)
{
	static const char keep[] = "/-._~!$&'()*+,;=:@";
	char extra[sizeof("Location: /\r\n") + 3 * HTTP_PATH_MAX];
	size_t n = 0;
	n += (size_t)snprintf(extra, sizeof(extra), "Location: ");
	for (size_t i = 0; i < r->len; i++) {
		unsigned char ch = (unsigned char)r->path[i];
		bool alnum = (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
		if (alnum || strchr(keep, ch) != NULL)
			extra[n++] = (char)ch;
		else
			n += (size_t)snprintf(extra + n, 4, "%%%02X", ch);
	}
	memcpy(extra + n, "/\r\n", 4);
	/* The head no longer fits respond()'s buffer for the longest paths: write it alone. */
	struct http_reply h = {
	    .status = 301, .keep_alive = r->keep_alive, .http11 = r->http11, .extra = extra};
	char buf[sizeof(extra) + 512];
	size_t len = http_response_head(buf, sizeof(buf), &h);
	return len == 0 ? -EMSGSIZE : actor_tcp_write(ctx, c->conn, buf, len);
}

/* The answer is queued: what comes next on this connection. */
static void answered(actor_ctx_t *ctx, struct conn *c, struct req *r)
{
	bool keep = r->keep_alive;
	free(r);
	if (!keep)
		close_conn(ctx, c); /* after this answer, which is queued */
}

/* Answers a request that gets no file: its error, or a redirect. If the output queue is full,
 * the request goes back to the head of the queue until ACTOR_MSG_TCP_DRAINED. */
static void answer_status(actor_ctx_t *ctx, struct conn *c, struct req *r)
{
	int rc =
	    r->status == 301 ? respond_redirect(ctx, c, r) : respond_error(ctx, c, r, r->status);
	if (rc == -ENOBUFS) {
		r->next = c->first;
		c->first = r;
		c->last = c->last != NULL ? c->last : r;
		c->queued++;
		c->blocked = true;
	} else if (rc < 0) {
		free(r);
		close_conn(ctx, c);
	} else {
		answered(ctx, c, r);
	}
}

/* The serving request gets no file after all: `status` instead. */
static void serving_fails(actor_ctx_t *ctx, struct conn *c, int status)
{
	struct req *r = c->serving;
	c->serving = NULL;
	r->status = status;
	answer_status(ctx, c, r);
}

/* The file is open and regular: the head, then the file's bytes. */
static void send_file(actor_ctx_t *ctx, struct conn *c)
{
	struct req *r = c->serving;
	struct http_reply h = {.status = 200,
	                       .type = http_content_type(c->full),
	                       .length = c->size,
	                       .keep_alive = r->keep_alive,
	                       .http11 = r->http11};
	char buf[512];
	size_t n = http_response_head(buf, sizeof(buf), &h);
	int rc = actor_tcp_write(ctx, c->conn, buf, n);
	if (rc == -ENOBUFS) {
		c->blocked = true; /* ACTOR_MSG_TCP_DRAINED brings us back here */
		return;
	}
	c->serving = NULL;
	/* One send moves at most ACTOR_FILE_IO_MAX bytes: a larger file takes several. */
	for (uint64_t off = 0; rc == 0 && r->method == HTTP_GET && off < c->size;) {
		uint64_t len =
		    c->size - off < ACTOR_FILE_IO_MAX ? c->size - off : ACTOR_FILE_IO_MAX;
		rc = actor_file_send(ctx, c->file, (int64_t)off, (size_t)len, c->conn, 0);
		if (rc == 0)
			c->ops++;
		off += len;
	}
	/* The close waits for the sends: its answer says the file is out of our hands. */
	int crc = actor_file_close(ctx, c->file, 0);
	if (crc == 0)
		c->ops++;
	if (rc == 0 && crc == 0) {
		answered(ctx, c, r);
	} else {
		free(r); /* the peer would read a short body: end the connection */
		close_conn(ctx, c);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Files
 */

static int status_of_open_error(int64_t err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
	case -ENAMETOOLONG: /* a name longer than the file system's: no such file */
		return 404;
	case -EACCES:
	case -EPERM:
	case -ELOOP:
		return 403;
	default:
		return 500;
	}
}

/* Starts opening the file of request r. */
static void open_file(actor_ctx_t *ctx, struct conn *c, struct req *r)
{
	const struct site *s = c->site;
	bool index = r->path[r->len - 1] == '/';
	memcpy(c->full, s->root, s->root_len);
	memcpy(c->full + s->root_len, r->path, r->len);
	strcpy(c->full + s->root_len + r->len, index ? "index.html" : "");
	c->serving = r;
	c->files++;
	/* O_NONBLOCK: a FIFO put under the root would otherwise hold the open until a writer
	 * came; it makes no difference to a regular file. */
	started(ctx, c, actor_file_open(ctx, c->full, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, 0));
}

static void on_file(actor_ctx_t *ctx, struct conn *c, const actor_file_done_t *d)
{
	c->ops--;
	if (d->op == ACTOR_FILE_OPEN && d->result < 0)
		c->files--;
	else if (d->op == ACTOR_FILE_CLOSE)
		c->files--;
	if (c->closed) { /* the connection is gone: close what opened meanwhile */
		if ((d->op == ACTOR_FILE_OPEN && d->result == 0) || d->op == ACTOR_FILE_STAT)
			started(ctx, c, actor_file_close(ctx, d->file, 0));
		close_conn(ctx, c);
		return;
	}
	if (d->op == ACTOR_FILE_OPEN) {
		if (d->result < 0) {
			serving_fails(ctx, c, status_of_open_error(d->result));
		} else {
			c->file = d->file;
			started(ctx, c, actor_file_stat(ctx, c->file, 0));
		}
	} else if (d->op == ACTOR_FILE_STAT) {
		bool regular = d->result == 0 && S_ISREG(d->st.st_mode);
		bool dir = d->result == 0 && S_ISDIR(d->st.st_mode);
		c->size = regular ? (uint64_t)d->st.st_size : 0;
		if (regular) {
			send_file(ctx, c); /* it closes the file */
		} else if (started(ctx, c, actor_file_close(ctx, c->file, 0))) {
			bool index = c->serving->path[c->serving->len - 1] == '/';
			serving_fails(ctx, c, d->result < 0 ? 500 : dir && !index ? 301 : 403);
		}
	}
	/* SEND: an error fails the connection too, and ACTOR_MSG_TCP_CLOSED says so. */
	if (!c->closed)
		serve_next(ctx, c);
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 */

/* Answers the waiting requests in order, as far as files and the output queue allow. */
static void serve_next(actor_ctx_t *ctx, struct conn *c)
{
	while (!c->closed && c->serving == NULL && !c->blocked && c->first != NULL) {
		struct req *r = c->first;
		if (r->status == 0 && c->files == FILES_MAX)
			return; /* a CLOSE's answer brings us back */
		c->first = r->next;
		c->last = c->first != NULL ? c->last : NULL;
		c->queued--;
		if (r->status == 0)
			open_file(ctx, c, r);
		else
			answer_status(ctx, c, r);
	}
	if (c->closed)
		return;
	if (c->paused && c->queued < PIPELINE_MAX / 2) {
		c->paused = false;
		actor_tcp_resume(ctx, c->conn);
	}
	if (c->input_done && c->first == NULL && c->serving == NULL)
		close_conn(ctx, c); /* everything asked has been answered */
}

/* Queues the answer to a complete head (or to the input's end: status, no path). */
static void queue_request(actor_ctx_t *ctx, struct conn *c, const struct http_request *h,
                          int status)
{
	size_t len = status == 0 ? strlen(h->path) : 0;
	struct req *r = malloc(sizeof(*r) + len + 1);
	if (r == NULL) {
		close_conn(ctx, c);
		return;
	}
	*r = (struct req){.method = h->method,
	                  .status = status,
	                  .keep_alive = h->keep_alive,
	                  .http11 = h->http11,
	                  .len = len};
	memcpy(r->path, h->path, len);
	r->path[len] = '\0';
	if (!r->keep_alive)
		c->input_done = true; /* nothing after this request is read */
	if (c->last != NULL)
		c->last->next = r;
	else
		c->first = r;
	c->last = r;
	if (++c->queued >= PIPELINE_MAX && !c->paused) {
		c->paused = true;
		actor_tcp_pause(ctx, c->conn);
	}
}

static void on_line(actor_ctx_t *ctx, struct conn *c, const char *line, size_t len)
{
	if (c->input_done)
		return;
	http_feed_line(&c->head, line, len);
	if (!c->head.done)
		return;
	queue_request(ctx, c, &c->head, c->head.status);
	c->head = (struct http_request){0};
	c->head_ticks = 0;
	serve_next(ctx, c);
}

/* The input has ended: the peer's end, an overlong line, or a head too slow in coming. What
 * was asked before is still answered; `status`, if not 0, after it. */
static void end_input(actor_ctx_t *ctx, struct conn *c, int status)
{
	if (!c->input_done && status != 0) {
		struct http_request h = c->head;
		h.method = h.method != 0 ? h.method : HTTP_GET;
		h.keep_alive = false;
		queue_request(ctx, c, &h, status);
	}
	c->input_done = true;
	serve_next(ctx, c);
}

static void on_tick(actor_ctx_t *ctx, struct conn *c)
{
	bool idle = !c->heard && c->first == NULL && c->serving == NULL && c->files == 0;
	c->heard = false;
	if (c->head.head_len > 0 && ++c->head_ticks >= 2)
		end_input(ctx, c, 408);
	else if (idle && !c->head.started)
		close_conn(ctx, c);
}

static void conn_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct conn *c = state;
	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED: {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		actor_tcp_framing_t f = {.kind = ACTOR_FRAME_LINE, .max = HTTP_LINE_MAX};
		c->conn = ev->conn;
		if (actor_tcp_set_framing(ctx, c->conn, &f) < 0 ||
		    actor_tcp_set_read_limit(ctx, c->conn, READ_LIMIT) < 0 ||
		    actor_timer_start(ctx, actor_self(ctx), TICK_NS, TICK_NS, 0, &c->timer) < 0)
			close_conn(ctx, c);
		break;
	}
	case ACTOR_MSG_TCP_DATA: {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		c->heard = true;
		if (!c->closed)
			on_line(ctx, c, (const char *)actor_tcp_data_bytes(msg), d->len);
		break;
	}
	case ACTOR_MSG_TCP_CLOSED: {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		if (ev->error == -EMSGSIZE) /* a line over HTTP_LINE_MAX */
			end_input(ctx, c, c->head.started ? 431 : 414);
		else if (ev->error == 0) /* the peer's end: answer what it asked */
			end_input(ctx, c, 0);
		else
			close_conn(ctx, c);
		break;
	}
	case ACTOR_MSG_TCP_DRAINED:
		/* Refused earlier: the head of a file whose request is still `serving`, or an
		 * answer without a file, put back at the head of the queue. */
		if (c->blocked && c->serving != NULL) {
			c->blocked = false;
			send_file(ctx, c);
		}
		c->blocked = false;
		if (!c->closed)
			serve_next(ctx, c);
		break;
	case ACTOR_MSG_FILE:
		on_file(ctx, c, actor_msg_data(msg));
		break;
	case ACTOR_MSG_TIMER:
		if (!c->closed)
			on_tick(ctx, c);
		break;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Listening
 */

/* The listener's state, main's. */
struct listener {
	const struct site *site;
	const char *host;
	unsigned port;
	int error; /* why listening failed */
};

static void listener_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct listener *ls = state;
	if (msg->type == MSG_LISTEN) {
		actor_listen_opts_t o = {.host = ls->host, .port = ls->port, .per_worker = 1};
		actor_listener_t l;
		uint16_t port;
		int rc = actor_tcp_listen(ctx, &o, &l);
		if (rc == 0)
			rc = actor_tcp_listener_port(ctx, l, &port);
		if (rc < 0) {
			ls->error = rc;
			actor_exit(ctx, ACTOR_REASON_NORMAL); /* the last actor: the program ends */
			return;
		}
		bool v6 = strchr(ls->host, ':') != NULL; /* an IPv6 address goes in brackets */
		printf("listening on %s%s%s:%u, serving %s\n", v6 ? "[" : "", ls->host,
		       v6 ? "]" : "", port, ls->site->root_len > 0 ? ls->site->root : "/");
		fflush(stdout);
	} else if (msg->type == ACTOR_MSG_TCP_ACCEPTED) {
		/* Each connection gets an actor on the worker that accepted it. If the spawn
		 * fails, the connection stays ours and closes when we stop. */
		const actor_tcp_accepted_t *acc = actor_msg_data(msg);
		actor_spawn_opts_t so = {
		    .placement = ACTOR_PLACE_FIXED, .worker = acc->worker, .destroy = conn_free};
		struct conn *c = calloc(1, sizeof(*c));
		actor_ref_t ref;
		if (c == NULL)
			return;
		c->site = ls->site;
		if (actor_spawn(actor_ctx_system(ctx), &so, conn_fn, c, &ref) < 0)
			free(c);
		else
			actor_tcp_handoff(ctx, acc->conn, ref);
	}
}

/* ---------------------------------------------------------------------------------------------
 * The program
 */

static actor_system_t *sys; /* for the signal handler */

static void on_signal(int sig)
{
	(void)sig;
	actor_system_shutdown(sys); /* safe in a signal handler */
}

static int usage(void)
{
	fprintf(stderr, "usage: fileserve [--host ADDR] [--workers N] [PORT [ROOT]]\n"
	                "  serves the files under ROOT (default: the current directory) over "
	                "HTTP\n  on ADDR:PORT (default 127.0.0.1:8080; port 0: any free port)\n");
	return 2;
}

/* A whole number in [min, max], or -1. */
static long number(const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && v >= min && v <= max ? v : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"host", required_argument, NULL, 'H'},
	                                         {"workers", required_argument, NULL, 'w'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {0}};
	static struct site site;
	struct listener ls = {.site = &site, .host = "127.0.0.1", .port = 8080};
	actor_config_t cfg = {0};
	for (int opt; (opt = getopt_long(argc, argv, "H:w:h", longopts, NULL)) != -1;) {
		if (opt == 'H') {
			ls.host = optarg;
		} else if (opt == 'w' && number(optarg, 1, ACTOR_WORKERS_MAX) > 0) {
			cfg.workers = (unsigned)number(optarg, 1, ACTOR_WORKERS_MAX);
		} else if (opt == 'w') {
			fprintf(stderr, "fileserve: --workers: not a number from 1 to %d: %s\n",
			        ACTOR_WORKERS_MAX, optarg);
			return 2;
		} else {
			return usage();
		}
	}
	if (argc - optind > 2)
		return usage();
	if (optind < argc) {
		long port = number(argv[optind], 0, 65535);
		if (port < 0) {
			fprintf(stderr, "fileserve: not a port number (0 to 65535): %s\n",
			        argv[optind]);
			return 2;
		}
		ls.port = (unsigned)port;
	}
	/* Before the workers start, main may block: the root is resolved once, here. */
	const char *root = optind + 1 < argc ? argv[optind + 1] : ".";
	struct stat st;
	if (realpath(root, site.root) == NULL || stat(site.root, &st) < 0) {
		fprintf(stderr, "fileserve: %s: %s\n", root, strerror(errno));
		return 2;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "fileserve: %s: %s\n", root, strerror(ENOTDIR));
		return 2;
	}
	site.root_len = strcmp(site.root, "/") == 0 ? 0 : strlen(site.root);
	if (site.root_len + HTTP_PATH_MAX + sizeof("index.html") > PATH_MAX) {
		fprintf(stderr, "fileserve: %s: %s\n", root, strerror(ENAMETOOLONG));
		return 2;
	}

	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0) {
		fprintf(stderr, "fileserve: actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* ls.error is the listener's to write once it runs, which may be before actor_send
	 * returns: main's own calls answer in rc. */
	actor_ref_t l;
	rc = actor_spawn(sys, NULL, listener_fn, &ls, &l);
	if (rc == 0)
		rc = actor_send(sys, l, MSG_LISTEN, NULL, 0);
	if (rc == 0)
		actor_system_run(sys); /* until a signal, or the listener's failure */
	actor_system_free(sys);
	if (rc == 0)
		rc = ls.error;
	if (rc < 0) {
		fprintf(stderr, "fileserve: %s:%u: %s\n", ls.host, ls.port, strerror(-rc));
		return 1;
	}
	return 0;
}
