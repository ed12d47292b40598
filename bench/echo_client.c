/* echo_client.c: the load client of the echo benchmark.
 *
 * Usage: bench/echo_client --port P [--host 127.0.0.1] [--conns N] [--size 512]
 *                          [--duration S] [--warmup S] [--threads T] [--impl NAME]
 *                          [--server-pid PID]
 *
 * Opens N connections (blocking connects, then nonblocking), and on each runs request/response
 * round trips: send `size` bytes, wait for all of them to come back, check they equal what was
 * sent, repeat. Every request differs (connection, sequence number and a mixed pattern), so a
 * response crossed with another connection's or a stale one fails the run. Round trips that
 * complete in the measured window (after the warm-up) are counted; the result is
 *   RESULT name=echo_c<N> impl=<NAME> metric=requests_per_s value=<v> unit=1/s
 * The client runs on `threads` epoll loops (default 1), each owning N/T connections; it shares
 * the machine with the server, the same way for every server measured.
 *
 * With --server-pid it also reports the server's CPU time per round trip over the measured
 * window (user + system, all its threads, from /proc/PID/stat):
 *   RESULT name=echo_c<N> impl=<NAME> metric=server_cpu_us_per_req value=<v> unit=us
 * When both sides are busy, the rate says what the pair did and this says what the server
 * spent: a server that needs less CPU per request only gets a higher rate if the client keeps up.
 * On stderr it says how many CPUs the client itself used over the window: near one per thread,
 * the client is the limit of the rate.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

#define SIZE_MAX_BYTES (1u << 20)

struct opts {
	const char *host, *impl;
	int port;
	unsigned conns, size, threads;
	double duration, warmup;
	int server_pid; /* 0: not measured */
};

struct cconn {
	int fd;
	uint32_t id;
	uint64_t seq;
	size_t sent, recvd; /* of the current request */
	unsigned char *req;
};

struct worker {
	const struct opts *o;
	struct cconn *c;
	unsigned n;
	uint64_t t_measure, t_end; /* ns */
	uint64_t counted;          /* round trips completed in [t_measure, t_end) */
	uint64_t total;
	int failed;
	pthread_t thread;
};

static void fill_request(struct cconn *c, unsigned size)
{
	/* Eight bytes per xorshift step: the pattern differs per request as before, at an eighth
	 * of the cost. One step per byte was 14% of the client's CPU at 300 connections (perf),
	 * which the pair's rate paid for whatever the server. */
	uint64_t x = ((uint64_t)c->id << 40) ^ c->seq ^ 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < size; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(c->req + i, &x, size - i < 8 ? size - i : 8);
	}
	memcpy(c->req, &c->id, sizeof(c->id));
	memcpy(c->req + sizeof(c->id), &c->seq, size >= 12 ? sizeof(c->seq) : 0);
	c->sent = c->recvd = 0;
}

/* Sends what is left of the request; false on error. */
static bool conn_send(struct cconn *c, unsigned size)
{
	while (c->sent < size) {
		ssize_t n = send(c->fd, c->req + c->sent, size - c->sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		c->sent += (size_t)n;
	}
	return true;
}

/* Reads and checks the response; returns 1 when it is complete, 0 for more, -1 on error. */
static int conn_recv(struct cconn *c, unsigned size, unsigned char *buf)
{
	for (;;) {
		size_t want = size - c->recvd;
		if (want == 0)
			return 1;
		ssize_t n = recv(c->fd, buf, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			fprintf(stderr, "echo_client: conn %u: %s\n", c->id,
			        n == 0 ? "closed by the server" : strerror(errno));
			return -1;
		}
		if (c->recvd + (size_t)n > c->sent ||
		    memcmp(buf, c->req + c->recvd, (size_t)n) != 0) {
			fprintf(stderr,
			        "echo_client: conn %u request %" PRIu64
			        ": the response differs from the request\n",
			        c->id, c->seq);
			return -1;
		}
		c->recvd += (size_t)n;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	unsigned char *buf = malloc(o->size);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (unsigned i = 0; i < w->n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		epoll_ctl(ep, EPOLL_CTL_ADD, w->c[i].fd, &ev);
		fill_request(&w->c[i], o->size);
		if (!conn_send(&w->c[i], o->size)) {
			w->failed = 1;
			break;
		}
	}
	struct epoll_event evs[256];
	while (!w->failed && now_ns() < w->t_end) {
		int k = epoll_wait(ep, evs, 256, 50);
		if (k < 0 && errno != EINTR) {
			w->failed = 1;
			break;
		}
		for (int j = 0; j < k && !w->failed; j++) {
			struct cconn *c = &w->c[evs[j].data.u32];
			int rc = conn_recv(c, o->size, buf);
			if (rc < 0) {
				w->failed = 1;
				break;
			}
			if (rc == 0)
				continue;
			uint64_t t = now_ns();
			w->total++;
			if (t >= w->t_measure && t < w->t_end)
				w->counted++;
			c->seq++;
			fill_request(c, o->size);
			/* A 512-byte request fits any socket buffer: a short send is an error here.
			 */
			if (!conn_send(c, o->size) || c->sent != o->size) {
				fprintf(stderr, "echo_client: conn %u: short send\n", c->id);
				w->failed = 1;
			}
		}
	}
	close(ep);
	free(buf);
	return NULL;
}

static int connect_one(const struct opts *o, uint32_t id, struct cconn *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1) {
		fprintf(stderr, "echo_client: bad --host %s (numeric IPv4 only)\n", o->host);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		fprintf(stderr, "echo_client: connect %u to %s:%d: %s\n", id, o->host, o->port,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->id = id;
	c->req = malloc(o->size);
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s --port P [--host 127.0.0.1] [--conns N] [--size BYTES] "
	        "[--duration S] [--warmup S] [--threads T] [--impl NAME] [--server-pid PID]\n",
	        prog);
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.host = "127.0.0.1",
	                   .impl = "unknown",
	                   .conns = 1,
	                   .size = 512,
	                   .threads = 1,
	                   .duration = 5,
	                   .warmup = 1};
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage(argv[0]);
		const char *k = argv[i], *v = argv[++i];
		if (strcmp(k, "--port") == 0)
			o->port = atoi(v);
		else if (strcmp(k, "--host") == 0)
			o->host = v;
		else if (strcmp(k, "--conns") == 0)
			o->conns = (unsigned)atoi(v);
		else if (strcmp(k, "--size") == 0)
			o->size = (unsigned)atoi(v);
		else if (strcmp(k, "--duration") == 0)
			o->duration = atof(v);
		else if (strcmp(k, "--warmup") == 0)
			o->warmup = atof(v);
		else if (strcmp(k, "--threads") == 0)
			o->threads = (unsigned)atoi(v);
		else if (strcmp(k, "--impl") == 0)
			o->impl = v;
		else if (strcmp(k, "--server-pid") == 0)
			o->server_pid = atoi(v);
		else
			usage(argv[0]);
	}
	if (o->port <= 0 || o->port > 65535 || o->conns == 0 || o->size < 16 ||
	    o->size > SIZE_MAX_BYTES || o->threads == 0 || o->duration <= 0 || o->warmup < 0 ||
	    o->server_pid < 0)
		usage(argv[0]);
	if (o->threads > o->conns)
		o->threads = o->conns;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse(argc, argv, &o);
	raise_nofile();

	struct cconn *conns = calloc(o.conns, sizeof(*conns));
	for (unsigned i = 0; i < o.conns; i++)
		if (connect_one(&o, i, &conns[i]) != 0)
			return 1;

	struct worker *w = calloc(o.threads, sizeof(*w));
	uint64_t t0 = now_ns();
	uint64_t t_measure = t0 + (uint64_t)(o.warmup * 1e9);
	uint64_t t_end = t_measure + (uint64_t)(o.duration * 1e9);
	unsigned per = o.conns / o.threads, extra = o.conns % o.threads, first = 0;
	for (unsigned t = 0; t < o.threads; t++) {
		w[t] = (struct worker){.o = &o,
		                       .c = conns + first,
		                       .n = per + (t < extra),
		                       .t_measure = t_measure,
		                       .t_end = t_end};
		first += w[t].n;
		if (pthread_create(&w[t].thread, NULL, worker_main, &w[t]) != 0) {
			fprintf(stderr, "echo_client: pthread_create failed\n");
			return 1;
		}
	}
	double cli, srv;
	measure_cpu(t_measure, t_end, o.server_pid, &cli, &srv);
	uint64_t counted = 0, total = 0;
	int failed = 0;
	for (unsigned t = 0; t < o.threads; t++) {
		pthread_join(w[t].thread, NULL);
		counted += w[t].counted;
		total += w[t].total;
		failed |= w[t].failed;
	}
	for (unsigned i = 0; i < o.conns; i++) {
		close(conns[i].fd);
		free(conns[i].req);
	}
	free(conns);
	free(w);
	if (failed) {
		fprintf(stderr, "echo_client: FAILED (%s, %u connections)\n", o.impl, o.conns);
		return 1;
	}
	double rate = (double)counted / o.duration;
	fprintf(stderr,
	        "echo_client: %s c%u: %" PRIu64 " round trips in %.1f s (%" PRIu64
	        " with warm-up), %.1f us mean\n",
	        o.impl, o.conns, counted, o.duration, total,
	        counted ? o.duration * 1e6 * o.conns / (double)counted : 0.0);
	printf("RESULT name=echo_c%u impl=%s metric=requests_per_s value=%.*f unit=1/s\n", o.conns,
	       o.impl, rate >= 10000.0 ? 0 : 3, rate);
	/* A client near one CPU per thread is the limit: no server gets a higher rate from it. */
	if (cli >= 0)
		fprintf(stderr, "echo_client: %s c%u: the client used %.2f CPUs (%u threads)\n",
		        o.impl, o.conns, cli / o.duration, o.threads);
	if (o.server_pid > 0) {
		if (srv < 0 || counted == 0) {
			fprintf(stderr, "echo_client: cannot read the CPU time of process %d\n",
			        o.server_pid);
			return 1;
		}
		fprintf(stderr, "echo_client: %s c%u: the server used %.2f CPUs\n", o.impl, o.conns,
		        srv / o.duration);
		printf("RESULT name=echo_c%u impl=%s metric=server_cpu_us_per_req value=%.3f "
		       "unit=us\n",
		       o.conns, o.impl, srv * 1e6 / (double)counted);
	}
	fflush(stdout);
	return 0;
}
