/* client.h: what the file server's integration tests need: the server started as a child
 * process on a free loopback port (it is given port 0 and says which it got) and stopped, and
 * a small HTTP/1.1 client that reads whole responses, every wait bounded by IO_WAIT_S.
 *
 * Include after ../common.h and ../backend.h (the suite's reactor).
 */
#ifndef FILESERVE_TEST_CLIENT_H
#define FILESERVE_TEST_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define IO_WAIT_S 20 /* the longest wait for one read or for the server, before scaling */

/* ---------------------------------------------------------------------------------------------
 * The server process
 */

struct server {
	pid_t pid;
	uint16_t port;
};

static inline const char *server_path(void)
{
	const char *p = getenv("FILESERVE");
	return p != NULL ? p : "examples/fileserve/fileserve";
}

/* Starts the server on port 0 of 127.0.0.1 with two workers and the suite's reactor, serving
 * root; waits for the line that says where it listens. */
static inline struct server server_start_root(const char *root)
{
	struct server s = {0};
	int out[2];
	ck_assert_int_eq(pipe(out), 0);
	pid_t parent = getpid();
	s.pid = fork();
	ck_assert_int_ge(s.pid, 0);
	if (s.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		setenv("ACTOR_REACTOR", reactor, 1);
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(server_path(), server_path(), "--workers", "2", "0", root, (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", server_path(), strerror(errno));
		_exit(127);
	}
	close(out[1]);
	char line[512];
	size_t len = 0;
	unsigned port = 0;
	for (;;) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		ck_assert_msg(poll(&p, 1, (int)(IO_WAIT_S * 1000 * test_scale())) == 1,
		              "the server did not say where it listens");
		ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
		ck_assert_msg(n > 0, "the server ended before listening");
		len += (size_t)n;
		line[len] = '\0';
		if (strchr(line, '\n') != NULL)
			break;
	}
	close(out[0]);
	ck_assert_msg(sscanf(line, "listening on 127.0.0.1:%u, serving ", &port) == 1 && port > 0 &&
	                  port < 65536,
	              "the server said: %s", line);
	s.port = (uint16_t)port;
	return s;
}

/* Waits for the server to exit; its wait status, or -1 (then killed). */
static inline int server_wait(struct server *s)
{
	int status;
	double end = now_sec() + IO_WAIT_S * test_scale();
	while (now_sec() < end) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid)
			return status;
		sleep_ms(5);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	return -1;
}

/* SIGTERM; the server must exit 0. */
static inline void server_stop(struct server *s)
{
	kill(s->pid, SIGTERM);
	int st = server_wait(s);
	ck_assert_msg(st != -1, "the server did not exit after SIGTERM");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server exited with status 0x%x",
	              st);
}

/* Runs the server with these arguments (NULL-terminated) until it exits; its stderr in err. */
static inline int server_run(const char *const *args, char *err, size_t cap)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	const char *argv[8] = {server_path()};
	for (int i = 0; args[i] != NULL && i < 6; i++)
		argv[i + 1] = args[i];
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	ssize_t n;
	while (len + 1 < cap && (n = read(p[0], err + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	err[len] = '\0';
	close(p[0]);
	struct server s = {.pid = pid};
	return server_wait(&s);
}

/* ---------------------------------------------------------------------------------------------
 * A client: one connection, responses read whole
 */

struct client {
	int fd;
	size_t len; /* bytes in buf not yet taken */
	unsigned char buf[1 << 16];
};

struct response {
	int status;
	long long length; /* Content-Length, -1 if none */
	bool closes;      /* Connection: close */
	char head[4096];  /* the head, NUL-terminated */
	unsigned char *body;
	size_t body_len;
};

static inline struct client *client_open(uint16_t port)
{
	struct client *c = calloc(1, sizeof(*c));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(c->fd, 0);
	ck_assert_msg(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
	              strerror(errno));
	return c;
}

static inline void client_close(struct client *c)
{
	close(c->fd);
	free(c);
}

static inline void client_send(struct client *c, const char *fmt, ...)
{
	static char req[1 << 16];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(req, sizeof(req), fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t)n < sizeof(req));
	for (int off = 0; off < n;) {
		ssize_t w = send(c->fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
		ck_assert_msg(w > 0, "send: %s", strerror(errno));
		off += (int)w;
	}
}

/* Reads more into the buffer; 0 at the server's end. Fails after IO_WAIT_S without a byte. */
static inline ssize_t client_fill(struct client *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	ck_assert_msg(poll(&p, 1, (int)(IO_WAIT_S * 1000 * test_scale())) == 1,
	              "no answer from the server");
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	ck_assert_msg(n >= 0, "recv: %s", strerror(errno));
	c->len += (size_t)n;
	return n;
}

static inline void client_take(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* The value of header `name` in a head, or NULL. */
static inline const char *response_header(const char *head, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, nlen) == 0 && p[2 + nlen] == ':') {
			const char *v = p + 3 + nlen;
			while (*v == ' ')
				v++;
			size_t vlen = strcspn(v, "\r");
			snprintf(out, cap, "%.*s", (int)vlen, v);
			return out;
		}
	}
	return NULL;
}

/* Reads one response; a HEAD's has no body whatever its Content-Length says. */
static inline struct response client_response(struct client *c, bool head_request)
{
	struct response r = {.length = -1};
	unsigned char *end;
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
		ck_assert_msg(c->len < sizeof(r.head) - 1, "a response head over 4 KiB");
		ck_assert_msg(client_fill(c) > 0, "the server closed without a response");
	}
	size_t hlen = (size_t)(end - c->buf) + 4;
	memcpy(r.head, c->buf, hlen);
	r.head[hlen] = '\0';
	client_take(c, hlen);
	ck_assert_msg(sscanf(r.head, "HTTP/1.1 %d ", &r.status) == 1, "a bad status line: %s",
	              r.head);
	char v[128];
	if (response_header(r.head, "Content-Length", v, sizeof(v)) != NULL)
		r.length = atoll(v);
	r.closes =
	    response_header(r.head, "Connection", v, sizeof(v)) != NULL && strcmp(v, "close") == 0;
	ck_assert_msg(r.length >= 0, "no Content-Length: %s", r.head);
	if (head_request)
		return r;
	r.body = malloc((size_t)r.length + 1);
	while (r.body_len < (size_t)r.length) {
		if (c->len == 0)
			ck_assert_msg(client_fill(c) > 0, "the body ended after %zu of %lld bytes",
			              r.body_len, r.length);
		size_t n =
		    c->len < (size_t)r.length - r.body_len ? c->len : (size_t)r.length - r.body_len;
		memcpy(r.body + r.body_len, c->buf, n);
		r.body_len += n;
		client_take(c, n);
	}
	r.body[r.body_len] = '\0';
	return r;
}

/* GET or HEAD of `target` on c, with Host; the response. */
static inline struct response client_get(struct client *c, const char *method, const char *target)
{
	client_send(c, "%s %s HTTP/1.1\r\nHost: test\r\n\r\n", method, target);
	return client_response(c, strcmp(method, "HEAD") == 0);
}

/* The server closes the connection, with nothing more before its end. */
static inline void client_expect_end(struct client *c)
{
	ck_assert_msg(c->len == 0, "%zu bytes more than the response", c->len);
	ck_assert_msg(client_fill(c) == 0, "bytes after the response: %.*s", (int)c->len, c->buf);
}

static inline void response_free(struct response *r)
{
	free(r->body);
	r->body = NULL;
}

/* One request on a new connection; the response's status. */
static inline int status_of(uint16_t port, const char *request)
{
	struct client *c = client_open(port);
	client_send(c, "%s", request);
	struct response r = client_response(c, false);
	response_free(&r);
	client_close(c);
	return r.status;
}

#endif /* FILESERVE_TEST_CLIENT_H */
