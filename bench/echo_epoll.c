/* echo_epoll.c: the floor for the echo benchmark: a plain single-threaded epoll echo server.
 *
 * Usage: bench/echo_epoll [--port N]   (default 0: any free port)
 *
 * Prints "PORT <n>" on stdout once it listens on 127.0.0.1, then echoes until SIGINT or
 * SIGTERM. Level-triggered and nonblocking: it reads what is there, writes it back, and keeps
 * what the socket would not take, reading nothing more from that connection until it is out.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_MAX (64u << 10) /* one read; bigger than any request the client sends */

struct conn {
	int fd;
	unsigned char *out; /* bytes the socket did not take yet */
	size_t nout, off, cap;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void conn_free(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
}

/* Writes the kept bytes; 0 when all are out, 1 when some remain, -1 on error. */
static int conn_flush(struct conn *c)
{
	while (c->off < c->nout) {
		ssize_t n = send(c->fd, c->out + c->off, c->nout - c->off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		c->off += (size_t)n;
	}
	c->nout = c->off = 0;
	return 0;
}

/* Echoes what there is to read; returns -1 when the connection is done. */
static int conn_read(int ep, struct conn *c, unsigned char *buf)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, READ_MAX, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			return -1;
		if (w < 0)
			w = 0;
		if (w < n) {
			/* Keep the rest; stop reading until it is written. */
			size_t rest = (size_t)(n - w);
			if (rest > c->cap) {
				c->cap = rest;
				c->out = realloc(c->out, c->cap);
			}
			memcpy(c->out, buf + w, rest);
			c->nout = rest;
			c->off = 0;
			struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			return 0;
		}
	}
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "echo_epoll: accept: %s\n", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		c->fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, len) != 0)
		die("bind");
	if (listen(fd, SOMAXCONN) != 0)
		die("listen");
	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		die("getsockname");
	printf("PORT %u\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

int main(int argc, char **argv)
{
	int port = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
			return 2;
		}
	}
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lfd = listen_on(port);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	unsigned char *buf = malloc(READ_MAX);
	struct epoll_event evs[256];
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == NULL) {
				accept_all(ep, lfd);
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				int rc = conn_flush(c);
				if (rc < 0) {
					conn_free(ep, c);
					continue;
				}
				if (rc == 0) {
					struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				if (conn_read(ep, c, buf) < 0)
					conn_free(ep, c);
		}
	}
	free(buf);
	close(ep);
	close(lfd);
	return 0;
}
