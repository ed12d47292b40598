/* client.h: what the chat integration tests need to drive the real server: start it as a
 * child process on a free loopback port, watch its descriptors and memory, and talk IRC to it
 * over plain sockets with time limits.
 *
 * Include after ../common.h.
 */
#ifndef CHAT_TEST_CLIENT_H
#define CHAT_TEST_CLIENT_H

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------------------------------------
 * The server process
 */

struct server {
	pid_t pid;
	uint16_t port;
	int out; /* its stdout */
};

/* The server binary: $CHAT_SERVER, else the one built in this tree (tests run from the top
 * build directory). */
static inline const char *server_path(void)
{
	const char *p = getenv("CHAT_SERVER");
	return p != NULL ? p : "examples/chat/chat-server";
}

/* Starts the server with exactly these arguments (NULL-terminated, after the program's name);
 * waits for its "PORT <n>" line. Its stderr goes to ours. It dies with us. */
static inline struct server server_start_exact(const char *const *args)
{
	struct server s = {0};
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	const char *argv[40] = {server_path()};
	int n = 1;
	for (int i = 0; args != NULL && args[i] != NULL && n < 38; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t ppid = getpid();
	s.pid = fork();
	ck_assert_int_ge(s.pid, 0);
	if (s.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != ppid)
			_exit(127);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	s.out = pipefd[0];
	char buf[128];
	size_t len = 0;
	double end = now_sec() + 15 * test_scale();
	while (len + 1 < sizeof(buf) && now_sec() < end) {
		struct pollfd p = {.fd = s.out, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(s.out, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		char *nl = strchr(buf, '\n');
		unsigned port;
		if (nl != NULL && sscanf(buf, "PORT %u", &port) == 1) {
			s.port = (uint16_t)port;
			return s;
		}
	}
	kill(s.pid, SIGKILL);
	waitpid(s.pid, NULL, 0);
	ck_abort_msg("the server did not start (%s)", server_path());
	return s;
}

/* Starts the server with --port 0 --bind 127.0.0.1 and the NULL-terminated extra arguments. */
static inline struct server server_start_argv(const char *const *extra)
{
	const char *args[40] = {"--port", "0", "--bind", "127.0.0.1"};
	int n = 4;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < 38; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	return server_start_exact(args);
}

#define server_start(...) server_start_argv((const char *const[]){__VA_ARGS__, NULL})

/* Runs the server with arguments (NULL-terminated) until it exits, collecting its output
 * (stdout and stderr) in out; returns its wait status, or -1 if it ran on (then killed). */
static inline int server_run(const char *const *args, char *out, size_t cap)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	const char *argv[40] = {server_path()};
	int n = 1;
	for (int i = 0; args[i] != NULL && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	double end = now_sec() + 10 * test_scale();
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (now_sec() > end || poll(&pf, 1, 100) < 0)
			break;
		if (!(pf.revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t r = read(p[0], out + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	out[len] = '\0';
	close(p[0]);
	int status;
	if (waitpid(pid, &status, WNOHANG) != pid) {
		sleep_ms(200);
		if (waitpid(pid, &status, WNOHANG) != pid) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
	}
	return status;
}

/* Waits up to `seconds` for the server to exit; returns its wait status, or -1 (and kills it)
 * if it did not. */
static inline int server_wait(struct server *s, double seconds)
{
	int status;
	double end = now_sec() + seconds * test_scale();
	while (now_sec() < end) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid) {
			close(s->out);
			s->pid = 0;
			return status;
		}
		sleep_ms(10);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	close(s->out);
	s->pid = 0;
	return -1;
}

/* SIGTERM, then the exit status (ck-fails unless it exits 0 within the time). */
static inline void server_stop(struct server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	int st = server_wait(s, 15);
	ck_assert_msg(st != -1, "the server did not exit after SIGTERM");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server exited with status 0x%x",
	              st);
}

/* A port held by a plain listening socket (*fd, to close): binding it must fail. Not another
 * server's: per-worker listeners use SO_REUSEPORT, which lets sockets of the same user join
 * the group, so two servers would share a port. */
static inline uint16_t held_port(int *fd)
{
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(*fd, 8), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&a, &alen), 0);
	return ntohs(a.sin_port);
}

static inline unsigned proc_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static inline uint64_t proc_rss(pid_t pid)
{
	char path[64];
	unsigned long long size = 0, rss = 0;
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static inline void raise_fd_limit(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* ---------------------------------------------------------------------------------------------
 * A client
 */

struct ircc {
	int fd;
	bool eof;
	size_t len;
	char buf[1 << 16];
	char line[1024]; /* the last line ircc_expect found */
};

/* Connects; rcvbuf > 0 sets a small receive buffer first (a slow reader's). */
static inline struct ircc *ircc_open_rcvbuf(uint16_t port, int rcvbuf)
{
	struct ircc *c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
	              strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

static inline struct ircc *ircc_open(uint16_t port)
{
	return ircc_open_rcvbuf(port, 0);
}

static inline void ircc_close(struct ircc *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

/* Closes with a reset (RST) instead of FIN. */
static inline void ircc_reset(struct ircc *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	ircc_close(c);
}

static inline bool ircc_send_raw(struct ircc *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

static inline bool ircc_send(struct ircc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline bool ircc_send(struct ircc *c, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return ircc_send_raw(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Reads what is there, waiting up to ms for something. False on EOF or error. */
static inline bool ircc_fill(struct ircc *c, int ms)
{
	if (c->eof)
		return false;
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return true;
	if (c->len == sizeof(c->buf)) /* nobody looks for this much: keep the tail */
		c->len = 0;
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (r <= 0) {
		c->eof = true;
		return false;
	}
	c->len += (size_t)r;
	return true;
}

/* Takes the next complete line (without CR LF) into c->line; false if none is buffered. */
static inline bool ircc_take_line(struct ircc *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	if (nl == NULL)
		return false;
	size_t n = (size_t)(nl - c->buf) + 1, k = n;
	while (k > 0 && (c->buf[k - 1] == '\n' || c->buf[k - 1] == '\r'))
		k--;
	if (k >= sizeof(c->line))
		k = sizeof(c->line) - 1;
	memcpy(c->line, c->buf, k);
	c->line[k] = '\0';
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return true;
}

/* Reads lines until one contains `needle` (returned, in c->line) or `seconds` pass (NULL). */
static inline const char *ircc_expect(struct ircc *c, const char *needle, double seconds)
{
	double end = now_sec() + seconds * test_scale();
	for (;;) {
		while (ircc_take_line(c))
			if (strstr(c->line, needle) != NULL)
				return c->line;
		double left = end - now_sec();
		if (left <= 0 || !ircc_fill(c, left > 0.1 ? 100 : (int)(left * 1000) + 1))
			break;
	}
	while (ircc_take_line(c)) /* what came with the EOF */
		if (strstr(c->line, needle) != NULL)
			return c->line;
	return NULL;
}

#define EXPECT(c, needle)                                                                          \
	ck_assert_msg(ircc_expect((c), (needle), 10) != NULL, "%s:%d: never saw '%s'", __FILE__,   \
	              __LINE__, (needle))

/* True if the server closes the connection within `seconds`. */
static inline bool ircc_wait_eof(struct ircc *c, double seconds)
{
	double end = now_sec() + seconds * test_scale();
	while (!c->eof && now_sec() < end) {
		ircc_fill(c, 50);
		while (ircc_take_line(c))
			;
	}
	return c->eof;
}

/* Registers and reads through the welcome burst (to the end of the MOTD, or its absence). */
static inline void ircc_register(struct ircc *c, const char *nick)
{
	ircc_send(c, "NICK %s\r\nUSER %s 0 * :Test %s\r\n", nick, nick, nick);
	char want[64];
	snprintf(want, sizeof(want), " 001 %s ", nick);
	ck_assert_msg(ircc_expect(c, want, 10) != NULL, "%s was not welcomed", nick);
	double end = now_sec() + 10 * test_scale();
	for (;;) {
		while (ircc_take_line(c))
			if (strstr(c->line, " 376 ") != NULL || strstr(c->line, " 422 ") != NULL)
				return;
		ck_assert_msg(now_sec() < end && ircc_fill(c, 100), "%s: no end of MOTD", nick);
	}
}

static inline struct ircc *ircc_new(uint16_t port, const char *nick)
{
	struct ircc *c = ircc_open(port);
	ircc_register(c, nick);
	return c;
}

/* Joins and waits for the end of NAMES. */
static inline void ircc_join(struct ircc *c, const char *chan)
{
	ircc_send(c, "JOIN %s\r\n", chan);
	char want[80];
	snprintf(want, sizeof(want), " 366 ");
	ck_assert_msg(ircc_expect(c, want, 10) != NULL, "no NAMES after JOIN %s", chan);
}

/* A round trip: everything the server sent before the PONG has been read. */
static inline void ircc_sync(struct ircc *c)
{
	static unsigned token;
	char want[32];
	snprintf(want, sizeof(want), "PONG");
	ircc_send(c, "PING :sync%u\r\n", ++token);
	ck_assert_msg(ircc_expect(c, want, 10) != NULL, "no PONG");
}

#endif /* CHAT_TEST_CLIENT_H */
