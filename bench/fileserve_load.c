/* fileserve_load.c: the load client of the file server benchmark (bench/fileserve.sh).
 *
 * Usage: bench/fileserve_load --port P --path /TARGET --file LOCAL [--host 127.0.0.1]
 *                             [--conns N] [--duration S] [--warmup S] [--threads T]
 *                             [--name NAME] [--impl NAME] [--server-pid PID]
 *
 * Opens N keep-alive connections and on each asks GET /TARGET again and again, one request at a
 * time: it reads the response head (status 200, a Content-Length equal to LOCAL's size), then
 * the body, which must equal LOCAL byte for byte, then asks again. A response that differs, or
 * a connection the server ends, fails the run: no figure is printed. Responses completed in the
 * measured window (after the warm-up) count:
 *   RESULT name=<NAME> impl=<NAME> metric=requests_per_s value=<v> unit=1/s
 *   RESULT name=<NAME> impl=<NAME> metric=throughput value=<v> unit=MiB/s   (bodies only)
 * With --server-pid, also the server's CPU time per response over the window (user + system,
 * all its threads, from /proc/PID/stat), as bench/echo_client reports it:
 *   RESULT name=<NAME> impl=<NAME> metric=server_cpu_us_per_req value=<v> unit=us
 * On stderr: the CPUs the client itself used (near one per thread: the client is the limit).
 * The client runs on `threads` epoll loops (default 1), each owning N/T connections.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

#define HEAD_MAX 2048 /* a response head longer than this fails the run */
#define RECV_CHUNK (256u << 10)

struct opts {
	const char *host, *path, *file, *name, *impl;
	int port;
	unsigned conns, threads;
	double duration, warmup;
	int server_pid; /* 0: not measured */
};

/* What every response must be: LOCAL's bytes, and the request that asks for them. */
static unsigned char *expected;
static size_t expected_len;
static char request[1024];
static size_t request_len;

struct lconn {
	int fd;
	uint32_t id;
	bool in_head;    /* reading the head (else the body) */
	size_t head_len; /* bytes of the head so far */
	size_t body_got; /* bytes of the body so far */
	char head[HEAD_MAX];
};

struct worker {
	const struct opts *o;
	struct lconn *c;
	unsigned n;
	uint64_t t_measure, t_end; /* ns */
	uint64_t counted;          /* responses completed in [t_measure, t_end) */
	uint64_t total;
	int failed;
	pthread_t thread;
};

static bool conn_ask(struct lconn *c)
{
	c->in_head = true;
	c->head_len = c->body_got = 0;
	/* A request of a few dozen bytes fits any socket buffer: a short send is an error. */
	ssize_t n = send(c->fd, request, request_len, MSG_NOSIGNAL);
	if (n != (ssize_t)request_len) {
		fprintf(stderr, "fileserve_load: conn %u: send: %s\n", c->id,
		        n < 0 ? strerror(errno) : "short");
		return false;
	}
	return true;
}

/* Checks a complete head: 200, and the length of LOCAL. */
static bool head_ok(struct lconn *c, size_t len)
{
	unsigned long long length = ~0ull;
	int status = 0;
	if (sscanf(c->head, "HTTP/1.1 %d ", &status) != 1 || status != 200) {
		fprintf(stderr, "fileserve_load: conn %u: status %d:\n%.*s", c->id, status,
		        (int)len, c->head);
		return false;
	}
	for (const char *p = strstr(c->head, "\r\n"); p != NULL && p < c->head + len;
	     p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			length = strtoull(p + 17, NULL, 10);
	if (length != expected_len) {
		fprintf(stderr, "fileserve_load: conn %u: Content-Length %llu, expected %zu\n",
		        c->id, length, expected_len);
		return false;
	}
	return true;
}

/* Takes `n` received bytes; returns 1 when the response is complete, 0 for more, -1 if wrong.
 * The bytes after a complete response would belong to a response not asked for: wrong too. */
static int conn_take(struct lconn *c, const unsigned char *p, size_t n)
{
	if (c->in_head) {
		size_t room = sizeof(c->head) - 1 - c->head_len;
		size_t k = n < room ? n : room;
		memcpy(c->head + c->head_len, p, k);
		c->head_len += k;
		c->head[c->head_len] = '\0';
		char *end = strstr(c->head, "\r\n\r\n");
		if (end == NULL) {
			if (c->head_len == sizeof(c->head) - 1) {
				fprintf(stderr, "fileserve_load: conn %u: a head over %d bytes\n",
				        c->id, HEAD_MAX);
				return -1;
			}
			return 0;
		}
		size_t hlen = (size_t)(end - c->head) + 4;
		if (!head_ok(c, hlen))
			return -1;
		size_t used = hlen - (c->head_len - k); /* of this chunk */
		c->in_head = false;
		p += used;
		n -= used;
	}
	if (c->body_got + n > expected_len || memcmp(p, expected + c->body_got, n) != 0) {
		fprintf(stderr, "fileserve_load: conn %u: the body differs from the file\n", c->id);
		return -1;
	}
	c->body_got += n;
	return c->body_got == expected_len ? 1 : 0;
}

/* Reads what the socket has; returns how many responses completed, or -1. */
static int conn_read(struct lconn *c, unsigned char *buf, uint64_t *done_at)
{
	int done = 0;
	for (;;) {
		ssize_t n = recv(c->fd, buf, RECV_CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return done;
		if (n <= 0) {
			fprintf(stderr, "fileserve_load: conn %u: %s\n", c->id,
			        n == 0 ? "closed by the server" : strerror(errno));
			return -1;
		}
		int rc = conn_take(c, buf, (size_t)n);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			done++;
			*done_at = now_ns();
			if (!conn_ask(c))
				return -1;
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(RECV_CHUNK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (unsigned i = 0; i < w->n && !w->failed; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		epoll_ctl(ep, EPOLL_CTL_ADD, w->c[i].fd, &ev);
		if (!conn_ask(&w->c[i]))
			w->failed = 1;
	}
	struct epoll_event evs[256];
	while (!w->failed && now_ns() < w->t_end) {
		int k = epoll_wait(ep, evs, 256, 50);
		if (k < 0 && errno != EINTR)
			w->failed = 1;
		for (int j = 0; j < k && !w->failed; j++) {
			uint64_t t = 0;
			int done = conn_read(&w->c[evs[j].data.u32], buf, &t);
			if (done < 0) {
				w->failed = 1;
				break;
			}
			w->total += (uint64_t)done;
			if (done > 0 && t >= w->t_measure && t < w->t_end)
				w->counted += (uint64_t)done;
		}
	}
	close(ep);
	free(buf);
	return NULL;
}

static int connect_one(const struct opts *o, uint32_t id, struct lconn *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1) {
		fprintf(stderr, "fileserve_load: bad --host %s (numeric IPv4 only)\n", o->host);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		fprintf(stderr, "fileserve_load: connect %u to %s:%d: %s\n", id, o->host, o->port,
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
	return 0;
}

/* LOCAL, read whole into `expected`. */
static int load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (f == NULL || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "fileserve_load: %s: %s\n", path, strerror(errno));
		return -1;
	}
	expected_len = (size_t)st.st_size;
	expected = malloc(expected_len + 1);
	size_t got = fread(expected, 1, expected_len, f);
	fclose(f);
	if (expected == NULL || got != expected_len) {
		fprintf(stderr, "fileserve_load: %s: cannot read it whole\n", path);
		return -1;
	}
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s --port P --path /TARGET --file LOCAL [--host 127.0.0.1] [--conns N] "
	        "[--duration S] [--warmup S] [--threads T] [--name NAME] [--impl NAME] "
	        "[--server-pid PID]\n",
	        prog);
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.host = "127.0.0.1",
	                   .name = "fileserve",
	                   .impl = "unknown",
	                   .conns = 1,
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
		else if (strcmp(k, "--path") == 0)
			o->path = v;
		else if (strcmp(k, "--file") == 0)
			o->file = v;
		else if (strcmp(k, "--conns") == 0)
			o->conns = (unsigned)atoi(v);
		else if (strcmp(k, "--duration") == 0)
			o->duration = atof(v);
		else if (strcmp(k, "--warmup") == 0)
			o->warmup = atof(v);
		else if (strcmp(k, "--threads") == 0)
			o->threads = (unsigned)atoi(v);
		else if (strcmp(k, "--name") == 0)
			o->name = v;
		else if (strcmp(k, "--impl") == 0)
			o->impl = v;
		else if (strcmp(k, "--server-pid") == 0)
			o->server_pid = atoi(v);
		else
			usage(argv[0]);
	}
	if (o->port <= 0 || o->port > 65535 || o->path == NULL || o->path[0] != '/' ||
	    strlen(o->path) > 512 || o->file == NULL || o->conns == 0 || o->threads == 0 ||
	    o->duration <= 0 || o->warmup < 0 || o->server_pid < 0)
		usage(argv[0]);
	if (o->threads > o->conns)
		o->threads = o->conns;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse(argc, argv, &o);
	if (load_file(o.file) != 0)
		return 1;
	request_len = (size_t)snprintf(request, sizeof(request),
	                               "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", o.path, o.host);
	raise_nofile();

	struct lconn *conns = calloc(o.conns, sizeof(*conns));
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
			fprintf(stderr, "fileserve_load: pthread_create failed\n");
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
	for (unsigned i = 0; i < o.conns; i++)
		close(conns[i].fd);
	free(conns);
	free(w);
	free(expected);
	if (failed || counted == 0) {
		fprintf(stderr, "fileserve_load: FAILED (%s %s, %u connections)\n", o.impl, o.name,
		        o.conns);
		return 1;
	}
	double rate = (double)counted / o.duration;
	fprintf(stderr,
	        "fileserve_load: %s %s: %" PRIu64 " responses in %.1f s (%" PRIu64
	        " with warm-up), %.2f ms mean\n",
	        o.impl, o.name, counted, o.duration, total,
	        o.duration * 1e3 * o.conns / (double)counted);
	printf("RESULT name=%s impl=%s metric=requests_per_s value=%.*f unit=1/s\n", o.name, o.impl,
	       rate >= 10000.0 ? 0 : 1, rate);
	printf("RESULT name=%s impl=%s metric=throughput value=%.1f unit=MiB/s\n", o.name, o.impl,
	       rate * (double)expected_len / (1 << 20));
	if (cli >= 0)
		fprintf(stderr, "fileserve_load: %s %s: the client used %.2f CPUs (%u threads)\n",
		        o.impl, o.name, cli / o.duration, o.threads);
	if (o.server_pid > 0) {
		if (srv < 0) {
			fprintf(stderr, "fileserve_load: cannot read the CPU time of process %d\n",
			        o.server_pid);
			return 1;
		}
		fprintf(stderr, "fileserve_load: %s %s: the server used %.2f CPUs\n", o.impl,
		        o.name, srv / o.duration);
		printf("RESULT name=%s impl=%s metric=server_cpu_us_per_req value=%.3f unit=us\n",
		       o.name, o.impl, srv * 1e6 / (double)counted);
	}
	fflush(stdout);
	return 0;
}
