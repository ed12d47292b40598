/* echo_slow_reader.c: examples/echo against a peer that reads only when it cannot write.
 *
 * Usage: tests/echo_slow_reader [server [MiB]]   (default examples/echo/echo, 16 MiB)
 *
 * Starts the server on a free port, once on the default reactor and once on epoll. Each time it
 * sends MiB of numbered bytes through a small receive buffer and reads only while its writes
 * would block, so the echo backs up into the server's output queue until actor_tcp_write
 * refuses with -ENOBUFS. Then it half-closes, reads to the end and checks that every byte came
 * back, in order, before the server's EOF; last, it stops the server with SIGINT and checks that
 * it exits 0. A watchdog (60 s times CK_TIMEOUT_MULTIPLIER) turns a hang into a failure.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WATCHDOG_S 60
#define RCVBUF (16u << 10) /* small, so the echo backs up into the server quickly */
#define CHUNK (64u << 10)

static pid_t server_pid;

static void fail(const char *what)
{
	fprintf(stderr, "echo_slow_reader: %s\n", what);
	if (server_pid > 0)
		kill(server_pid, SIGKILL);
	exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "echo_slow_reader: watchdog: no progress, killing the server\n";
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	kill(server_pid, SIGKILL);
	_exit(1);
}

static unsigned char byte_at(size_t i)
{
	return (unsigned char)(i % 251); /* 251 is prime: no chunk size lines up with it */
}

/* Starts the server on port 0; returns the port it printed. */
static unsigned start_server(const char *server)
{
	int out[2];
	if (pipe(out) < 0)
		fail("pipe");
	server_pid = fork();
	if (server_pid < 0)
		fail("fork");
	if (server_pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(server, server, "0", (char *)NULL);
		perror(server);
		_exit(127);
	}
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char line[128];
	unsigned port = 0;
	if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "listening on 127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535)
		fail("the server did not say where it listens");
	fclose(f);
	return port;
}

static int connect_to(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rcvbuf = RCVBUF;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("connect");
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		fail("fcntl");
	return fd;
}

/* Reads what is there and checks it; returns 0 at the server's EOF. */
static ssize_t read_some(int fd, size_t *received)
{
	static unsigned char buf[CHUNK];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno != EAGAIN)
		fail("read");
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] != byte_at(*received + (size_t)i))
			fail("a byte came back wrong or out of order");
	if (n > 0)
		*received += (size_t)n;
	return n;
}

/* Sends `total` bytes, preferring writing to reading; then reads the rest of the echo. */
static void exchange(int fd, size_t total, unsigned *stalls)
{
	static unsigned char buf[CHUNK];
	size_t sent = 0, received = 0;
	int shut = 0;
	for (;;) {
		if (sent < total) {
			size_t len = total - sent < CHUNK ? total - sent : CHUNK;
			for (size_t i = 0; i < len; i++)
				buf[i] = byte_at(sent + i);
			ssize_t n = write(fd, buf, len);
			if (n > 0) {
				sent += (size_t)n;
				continue;
			}
			if (n < 0 && errno != EAGAIN)
				fail("write");
			++*stalls;
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			fail("poll");
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && read_some(fd, &received) == 0) {
			if (received != total)
				fail("the server closed before echoing everything");
			return;
		}
		if (received > sent)
			fail("more came back than was sent");
	}
}

static void run_once(const char *server, size_t total, const char *reactor)
{
	if (reactor != NULL)
		setenv("ACTOR_REACTOR", reactor, 1);
	else
		unsetenv("ACTOR_REACTOR");
	unsigned port = start_server(server);
	int fd = connect_to(port);
	unsigned stalls = 0;
	exchange(fd, total, &stalls);
	close(fd);

	int status;
	if (kill(server_pid, SIGINT) < 0 || waitpid(server_pid, &status, 0) != server_pid)
		fail("waitpid");
	server_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("the server did not exit 0 on SIGINT");
	printf("echo_slow_reader: %s reactor: %zu bytes echoed in order, writes blocked %u times\n",
	       reactor != NULL ? reactor : "default", total, stalls);
}

int main(int argc, char **argv)
{
	const char *server = argc > 1 ? argv[1] : "examples/echo/echo";
	size_t total = (argc > 2 ? strtoul(argv[2], NULL, 10) : 16) << 20;
	const char *mult = getenv("CK_TIMEOUT_MULTIPLIER");
	unsigned scale = mult != NULL && atoi(mult) > 1 ? (unsigned)atoi(mult) : 1;

	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(WATCHDOG_S * scale);
	run_once(server, total, NULL);
	run_once(server, total, "epoll");
	return 0;
}
