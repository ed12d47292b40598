/* chat_load.c: the load generator of the chat benchmark. It speaks plain IRC, so it drives any
 * IRC server: the libactor chat server, ngircd, InspIRCd (bench/chat_compare.sh runs them all).
 *
 * Usage: bench/chat_load --port P [--host 127.0.0.1] [--mode broadcast|paced|idle]
 *          [--servers ADDR:PORT,ADDR:PORT,...] [--nick-prefix P]
 *          [--clients N] [--channels K] [--messages M] [--rate LINES_PER_S]
 *          [--server-pid PID] [--impl NAME] [--name NAME] [--password P]
 *          [--setup 'LINE'] ... [--window W] [--timeout S] [--connect-batch B]
 *
 * N clients connect and register (NICK, USER); unless idle, client i joins channel i % K.
 * --servers spreads them over several servers (one network, say the hosts of a cluster):
 * client i connects to server i % S; it replaces --host and --port. Client i's nick is
 * <P><i> (--nick-prefix, default "l"): loads run one after another on a network whose nicks
 * are released asynchronously (a cluster) take a prefix each.
 *   broadcast: every client sends M lines to its channel as fast as the server takes them
 *              (at most W lines per receiver in flight, so no client becomes a slow reader);
 *              RESULT name=chat_broadcast_c<N> metric=deliveries_per_s
 *   paced:     RATE lines per second in total, spread over the clients, M per client, each
 *              stamped with its send time; RESULT name=chat_paced_c<N> metric=latency_p99_ms
 *              (and latency_p50_ms)
 *   idle:      registered clients that say nothing; the server's RSS (from /proc/PID/statm)
 *              before and after; RESULT name=chat_idle_<N> metric=bytes_per_conn
 * Every line carries its sender and sequence number, and every receiver checks it got each
 * other member's lines exactly once and in order; a run that loses, duplicates or reorders a
 * line prints what went wrong and exits 1 without a RESULT. --setup lines are sent after
 * registration (%n is the nick), e.g. to lift a server's flood limits for the test clients.
 * Single-threaded epoll: it shares the machine with the server the same way for every server.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
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

#include "bench.h"

#define CONNECT_BATCH 256 /* connections registering at once (--connect-batch) */
#define MAX_SETUP 8
#define MAX_SERVERS 16

enum mode { BROADCAST, PACED, IDLE };
enum state { CONNECTING, REGISTERING, JOINING, READY, DEAD };

struct opts {
	const char *host, *impl, *name, *password, *prefix;
	const char *setup[MAX_SETUP];
	unsigned nsetup;
	unsigned port, clients, channels, messages, window, batch;
	double rate, timeout;
	int server_pid;
	enum mode mode;
	struct sockaddr_in servers[MAX_SERVERS]; /* --servers, or --host and --port */
	unsigned nservers;
};

struct lc {
	int fd;
	enum state state;
	unsigned chan;
	unsigned sent;  /* lines sent */
	uint64_t got;   /* lines received from others */
	unsigned *next; /* per sender: the next sequence number expected */
	char *part;     /* an incomplete line */
	size_t plen;
	char *out; /* output the socket did not take yet */
	size_t olen, ocap;
};

static struct opts o = {.host = "127.0.0.1",
                        .impl = "libactor",
                        .clients = 50,
                        .channels = 1,
                        .messages = 200,
                        .window = 200,
                        .batch = CONNECT_BATCH,
                        .timeout = 120,
                        .mode = BROADCAST};
static struct lc *cl;
static unsigned *members; /* per channel */
static int ep;
static uint64_t sent_total, got_total, want_total;
static unsigned registered, joined, dead;
static uint32_t *lat_us; /* paced: one latency per delivery */
static uint64_t nlat, caplat;
static bool failed;

static void die(const char *what)
{
	fprintf(stderr, "chat_load: %s\n", what);
	exit(1);
}

static void fail(unsigned i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(unsigned i, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "chat_load: client %u: ", i);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failed = true;
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */

static void watch(unsigned i, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = i};
	epoll_ctl(ep, EPOLL_CTL_MOD, cl[i].fd, &ev);
}

static void flush_out(unsigned i)
{
	struct lc *c = &cl[i];
	size_t off = 0;
	while (off < c->olen) {
		ssize_t w = send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			c->olen = 0;
			return;
		}
		off += (size_t)w;
	}
	memmove(c->out, c->out + off, c->olen - off);
	c->olen -= off;
	watch(i, c->olen > 0);
}

/* Queues bytes for client i and writes what the socket takes. */
static void put(unsigned i, const char *data, size_t len)
{
	struct lc *c = &cl[i];
	if (c->state == DEAD)
		return;
	if (c->olen + len > c->ocap) {
		c->ocap = (c->olen + len) * 2;
		c->out = realloc(c->out, c->ocap);
		if (c->out == NULL)
			die("out of memory");
	}
	memcpy(c->out + c->olen, data, len);
	c->olen += len;
	if (c->olen == len)
		flush_out(i);
}

static void putf(unsigned i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(unsigned i, const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	put(i, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void open_client(unsigned i)
{
	struct sockaddr_in a = o.servers[i % o.nservers];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket failed (raise the descriptor limit?)");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
		die("connect failed");
	cl[i].fd = fd;
	cl[i].state = CONNECTING;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void nick_of(unsigned i, char *buf, size_t cap)
{
	/* short: ngircd allows 9 characters by default */
	snprintf(buf, cap, "%s%u", o.prefix != NULL ? o.prefix : "l", i);
}

static void begin_register(unsigned i)
{
	char nick[16];
	nick_of(i, nick, sizeof(nick));
	cl[i].state = REGISTERING;
	if (o.password != NULL)
		putf(i, "PASS %s\r\n", o.password);
	putf(i, "NICK %s\r\nUSER load 0 * :chat_load\r\n", nick);
}

static void registered_now(unsigned i)
{
	char nick[16];
	nick_of(i, nick, sizeof(nick));
	for (unsigned k = 0; k < o.nsetup; k++) { /* "%n" is the nick */
		char line[512];
		size_t n = 0;
		for (const char *p = o.setup[k]; *p != '\0' && n + 20 < sizeof(line); p++) {
			if (p[0] == '%' && p[1] == 'n') {
				n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", nick);
				p++;
			} else {
				line[n++] = *p;
			}
		}
		line[n] = '\0';
		putf(i, "%s\r\n", line);
	}
	registered++;
	if (o.mode == IDLE) {
		cl[i].state = READY;
		return;
	}
	cl[i].state = JOINING;
	putf(i, "JOIN #load%u\r\n", cl[i].chan);
}

/* ---------------------------------------------------------------------------------------------
 * Lines
 */

static uint64_t now_ns(void)
{
	return bench_now_ns();
}

static void record_latency(uint64_t sent_ns)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 1 << 16;
		lat_us = realloc(lat_us, caplat * sizeof(*lat_us));
		if (lat_us == NULL)
			die("out of memory");
	}
	uint64_t d = now_ns() - sent_ns;
	lat_us[nlat++] = (uint32_t)(d / 1000 > UINT32_MAX ? UINT32_MAX : d / 1000);
}

/* A decimal number of at most `max` at *p, followed by `end` (a space, or '\0' for the end of
 * the text); advances *p past both. Strict, and much cheaper than sscanf, which took a third of
 * the generator's CPU at millions of lines a second (perf): a generator that is the bottleneck
 * measures itself, not the server. */
static bool take_number(const char **p, char end, unsigned long long max, unsigned long long *out)
{
	const char *s = *p;
	unsigned long long v = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (__builtin_mul_overflow(v, 10u, &v) ||
		    __builtin_add_overflow(v, (unsigned)(*s - '0'), &v) || v > max)
			return false;
	}
	if (*s != end)
		return false;
	*p = end != '\0' ? s + 1 : s;
	*out = v;
	return true;
}

/* ":nick!u@h PRIVMSG #loadK :<from> <seq> <ns>" */
static void on_privmsg(unsigned i, const char *text)
{
	unsigned long long from, seq, ts;
	const char *p = text;
	if (!take_number(&p, ' ', UINT_MAX, &from) || !take_number(&p, ' ', UINT_MAX, &seq) ||
	    !take_number(&p, '\0', ULLONG_MAX, &ts) || from >= o.clients) {
		fail(i, "a line it cannot read: '%s'", text);
		return;
	}
	struct lc *c = &cl[i];
	if (from == i)
		fail(i, "heard itself");
	else if (cl[from].chan != c->chan)
		fail(i, "heard %llu from another channel", from);
	else if (seq != c->next[from])
		fail(i, "from %llu got line %llu, expected %u (%s)", from, seq, c->next[from],
		     seq < c->next[from] ? "duplicate or reordered" : "lost");
	c->next[from] = (unsigned)seq + 1;
	c->got++;
	got_total++;
	if (o.mode == PACED)
		record_latency(ts);
}

static void on_line(unsigned i, char *line)
{
	if (strncmp(line, "PING ", 5) == 0) {
		putf(i, "PONG %s\r\n", line + 5);
		return;
	}
	if (strncmp(line, "ERROR", 5) == 0) {
		fail(i, "the server closed the link: %s", line);
		return;
	}
	/* ":prefix COMMAND ..." */
	char *cmd = strchr(line, ' ');
	if (line[0] != ':' || cmd == NULL)
		return;
	cmd++;
	if (strncmp(cmd, "PRIVMSG ", 8) == 0) {
		char *text = strstr(cmd, " :");
		if (text != NULL)
			on_privmsg(i, text + 2);
	} else if (strncmp(cmd, "001 ", 4) == 0 && cl[i].state == REGISTERING) {
		registered_now(i);
	} else if (strncmp(cmd, "366 ", 4) == 0 && cl[i].state == JOINING) {
		cl[i].state = READY;
		joined++;
	} else if (strncmp(cmd, "433 ", 4) == 0 || strncmp(cmd, "432 ", 4) == 0 ||
	           strncmp(cmd, "464 ", 4) == 0 || strncmp(cmd, "465 ", 4) == 0 ||
	           strncmp(cmd, "471 ", 4) == 0 || strncmp(cmd, "473 ", 4) == 0 ||
	           strncmp(cmd, "474 ", 4) == 0 || strncmp(cmd, "475 ", 4) == 0 ||
	           strncmp(cmd, "404 ", 4) == 0) {
		fail(i, "refused: %s", line);
	}
}

static void on_readable(unsigned i)
{
	struct lc *c = &cl[i];
	char buf[65536 + 512];
	for (;;) {
		memcpy(buf, c->part, c->plen);
		size_t want = sizeof(buf) - c->plen;
		ssize_t r = recv(c->fd, buf + c->plen, want, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			if (c->state != DEAD && o.mode != IDLE)
				fail(i, "disconnected");
			c->state = DEAD;
			dead++;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			return;
		}
		size_t len = c->plen + (size_t)r, off = 0;
		for (;;) {
			char *nl = memchr(buf + off, '\n', len - off);
			if (nl == NULL)
				break;
			char *end = nl;
			if (end > buf + off && end[-1] == '\r')
				end--;
			*end = '\0';
			on_line(i, buf + off);
			off = (size_t)(nl - buf) + 1;
		}
		c->plen = len - off;
		if (c->plen > 512) /* no line is this long: drop the garbage */
			c->plen = 0;
		if (c->plen > 0) {
			if (c->part == NULL && (c->part = malloc(512)) == NULL)
				die("out of memory");
			memmove(c->part, buf + off, c->plen);
		}
		/* Level-triggered: a read that did not fill the buffer most likely emptied the
		 * socket, and if not, epoll says so again; a last recv only to see EAGAIN would be
		 * one more system call per wake-up. */
		if ((size_t)r < want)
			return;
	}
}

static void on_event(struct epoll_event *ev)
{
	unsigned i = ev->data.u32;
	struct lc *c = &cl[i];
	if (c->state == DEAD)
		return;
	if (c->state == CONNECTING && (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			fprintf(stderr, "chat_load: connect: %s\n", strerror(err));
			exit(1);
		}
		watch(i, false);
		begin_register(i);
	}
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(i);
	if ((ev->events & EPOLLOUT) && c->olen > 0 && c->state != DEAD)
		flush_out(i);
}

/* One turn of the event loop, waiting at most timeout_ms. */
static void poll_once(int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, timeout_ms);
	for (int k = 0; k < n; k++)
		on_event(&evs[k]);
}

/* ---------------------------------------------------------------------------------------------
 * Phases
 */

static bool timed_out(uint64_t t0)
{
	return bench_secs(t0, now_ns()) > o.timeout;
}

/* One poll; *last is when a delivery last arrived. Ten seconds without one, or the run's
 * timeout, fails the run. */
static void poll_watching(int timeout_ms, uint64_t *last, uint64_t t0)
{
	uint64_t before = got_total;
	poll_once(timeout_ms);
	if (got_total != before)
		*last = now_ns();
	if (bench_secs(*last, now_ns()) > 10 || timed_out(t0)) {
		fprintf(stderr, "chat_load: stalled at %" PRIu64 " of %" PRIu64 " deliveries\n",
		        got_total, want_total);
		failed = true;
	}
}

/* Connects everyone, o.batch at a time (a server with a short listen backlog is faster with
 * fewer: a dropped SYN costs a second), and waits until they registered (and joined). */
static void connect_all(void)
{
	unsigned opened = 0;
	uint64_t t0 = now_ns();
	unsigned *target = o.mode == IDLE ? &registered : &joined;
	while (*target < o.clients && !failed) {
		while (opened < o.clients && opened - registered < o.batch)
			open_client(opened++);
		poll_once(10);
		if (timed_out(t0)) {
			fprintf(stderr, "chat_load: %u of %u clients ready after %.0f s\n", *target,
			        o.clients, o.timeout);
			exit(1);
		}
	}
	if (failed)
		exit(1);
}

static void send_line(unsigned i, unsigned seq)
{
	putf(i, "PRIVMSG #load%u :%u %u %" PRIu64 "\r\n", cl[i].chan, i, seq, now_ns());
	cl[i].sent++;
	sent_total++;
}

/* Every other member of the channel of client i gets each of its lines. */
static uint64_t fanout_of(unsigned i)
{
	return members[cl[i].chan] - 1;
}

static void broadcast(void)
{
	uint64_t t0 = now_ns(), last = t0;
	uint64_t window = (uint64_t)o.window * o.clients;
	uint64_t in_flight_want = 0; /* deliveries due from lines sent so far */
	while ((got_total < want_total || sent_total < (uint64_t)o.clients * o.messages) &&
	       !failed) {
		for (unsigned i = 0; i < o.clients; i++) {
			struct lc *c = &cl[i];
			for (int k = 0; k < 8 && c->sent < o.messages && c->olen == 0 &&
			                in_flight_want - got_total < window;
			     k++) {
				send_line(i, c->sent);
				in_flight_want += fanout_of(i);
			}
		}
		poll_watching(1, &last, t0);
	}
	if (failed)
		return;
	double secs = bench_secs(t0, last);
	char name[64];
	if (o.name != NULL)
		snprintf(name, sizeof(name), "%s", o.name);
	else if (o.channels > 1)
		snprintf(name, sizeof(name), "chat_broadcast_c%u_k%u", o.clients, o.channels);
	else
		snprintf(name, sizeof(name), "chat_broadcast_c%u", o.clients);
	fprintf(stderr, "chat_load: %s %s: %" PRIu64 " lines, %" PRIu64 " deliveries in %.2f s\n",
	        o.impl, name, sent_total, got_total, secs);
	printf("RESULT name=%s impl=%s metric=deliveries_per_s value=%.0f unit=1/s\n", name, o.impl,
	       (double)got_total / secs);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void paced(void)
{
	uint64_t total = (uint64_t)o.clients * o.messages, g = 0;
	double gap_ns = 1e9 / o.rate;
	uint64_t t0 = now_ns(), last = t0;
	while ((g < total || got_total < want_total) && !failed) {
		uint64_t now = now_ns();
		while (g < total && (double)(now - t0) >= (double)g * gap_ns) {
			unsigned i = (unsigned)(g % o.clients);
			send_line(i, cl[i].sent);
			g++;
		}
		int wait_ms = 10;
		if (g < total) {
			double due = (double)g * gap_ns - (double)(now_ns() - t0);
			wait_ms = due <= 0 ? 0 : (int)(due / 1e6);
		}
		poll_watching(wait_ms, &last, t0);
	}
	if (failed)
		return;
	qsort(lat_us, nlat, sizeof(*lat_us), cmp_u32);
	double p50 = lat_us[nlat / 2] / 1000.0, p99 = lat_us[nlat * 99 / 100] / 1000.0;
	double max = lat_us[nlat - 1] / 1000.0;
	char name[64];
	if (o.name != NULL)
		snprintf(name, sizeof(name), "%s", o.name);
	else
		snprintf(name, sizeof(name), "chat_paced_c%u", o.clients);
	fprintf(stderr,
	        "chat_load: %s %s: %.0f lines/s, %" PRIu64 " deliveries, p50 %.3f ms, "
	        "p99 %.3f ms, max %.3f ms\n",
	        o.impl, name, o.rate, nlat, p50, p99, max);
	printf("RESULT name=%s impl=%s metric=latency_p99_ms value=%.3f unit=ms\n", name, o.impl,
	       p99);
	printf("RESULT name=%s impl=%s metric=latency_p50_ms value=%.3f unit=ms\n", name, o.impl,
	       p50);
}

static uint64_t server_rss(void)
{
	char path[64];
	unsigned long long size = 0, rss = 0;
	snprintf(path, sizeof(path), "/proc/%d/statm", o.server_pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("cannot read the server's /proc/PID/statm (--server-pid)");
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Lets the server settle, then samples its RSS a few times and keeps the lowest. */
static uint64_t settled_rss(void)
{
	uint64_t best = UINT64_MAX;
	uint64_t t0 = now_ns();
	while (bench_secs(t0, now_ns()) < 1.0)
		poll_once(50);
	for (int k = 0; k < 5; k++) {
		uint64_t r = server_rss();
		best = r < best ? r : best;
		poll_once(50);
	}
	return best;
}

/* ---------------------------------------------------------------------------------------------
 * Main
 */

static void usage(void)
{
	fprintf(stderr,
	        "usage: chat_load --port P [--host 127.0.0.1] [--mode broadcast|paced|idle]\n"
	        "         [--servers ADDR:PORT,ADDR:PORT,...] [--nick-prefix P]\n"
	        "         [--clients N] [--channels K] [--messages M] [--rate LINES_PER_S]\n"
	        "         [--server-pid PID] [--impl NAME] [--name NAME] [--password P]\n"
	        "         [--setup LINE]... [--window W] [--timeout S] [--connect-batch B]\n");
	exit(2);
}

static unsigned long num(const char *s, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] == '-' || v > max)
		usage();
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"host", 1, NULL, 'h'},          {"port", 1, NULL, 'p'},
	    {"mode", 1, NULL, 'm'},          {"clients", 1, NULL, 'c'},
	    {"channels", 1, NULL, 'k'},      {"messages", 1, NULL, 'n'},
	    {"rate", 1, NULL, 'r'},          {"server-pid", 1, NULL, 'P'},
	    {"impl", 1, NULL, 'i'},          {"name", 1, NULL, 'N'},
	    {"password", 1, NULL, 'w'},      {"setup", 1, NULL, 's'},
	    {"window", 1, NULL, 'W'},        {"timeout", 1, NULL, 't'},
	    {"connect-batch", 1, NULL, 'b'}, {"servers", 1, NULL, 'S'},
	    {"nick-prefix", 1, NULL, 'x'},   {NULL, 0, NULL, 0}};
	int ch;
	const char *servers = NULL;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'h':
			o.host = optarg;
			break;
		case 'p':
			o.port = (unsigned)num(optarg, 65535);
			break;
		case 'm':
			if (strcmp(optarg, "broadcast") == 0)
				o.mode = BROADCAST;
			else if (strcmp(optarg, "paced") == 0)
				o.mode = PACED;
			else if (strcmp(optarg, "idle") == 0)
				o.mode = IDLE;
			else
				usage();
			break;
		case 'c':
			o.clients = (unsigned)num(optarg, 1000000);
			break;
		case 'k':
			o.channels = (unsigned)num(optarg, 100000);
			break;
		case 'n':
			o.messages = (unsigned)num(optarg, 100000000);
			break;
		case 'r':
			o.rate = (double)num(optarg, 10000000);
			break;
		case 'P':
			o.server_pid = (int)num(optarg, 1u << 30);
			break;
		case 'i':
			o.impl = optarg;
			break;
		case 'N':
			o.name = optarg;
			break;
		case 'w':
			o.password = optarg;
			break;
		case 's':
			if (o.nsetup == MAX_SETUP)
				usage();
			o.setup[o.nsetup++] = optarg;
			break;
		case 'W':
			o.window = (unsigned)num(optarg, 1000000);
			break;
		case 't':
			o.timeout = (double)num(optarg, 86400);
			break;
		case 'b':
			o.batch = (unsigned)num(optarg, 100000);
			break;
		case 'S':
			servers = optarg;
			break;
		case 'x':
			if (strlen(optarg) < 1 || strlen(optarg) > 4)
				usage();
			o.prefix = optarg;
			break;
		default:
			usage();
		}
	}
	if (servers != NULL) {
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s", servers);
		for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			char *colon = strrchr(t, ':');
			struct sockaddr_in a = {.sin_family = AF_INET};
			if (colon == NULL || o.nservers == MAX_SERVERS)
				usage();
			*colon = '\0';
			if (inet_pton(AF_INET, t, &a.sin_addr) != 1)
				die("--servers: each must be a numeric IPv4 address and a port");
			a.sin_port = htons((uint16_t)num(colon + 1, 65535));
			o.servers[o.nservers++] = a;
		}
		o.port = o.nservers > 0 ? 1 : 0; /* taken from the list */
	} else if (o.port != 0) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
		if (inet_pton(AF_INET, o.host, &a.sin_addr) != 1)
			die("--host must be a numeric IPv4 address");
		o.servers[o.nservers++] = a;
	}
	if (o.port == 0 || o.clients == 0 || o.channels == 0 || o.window == 0 || o.batch == 0 ||
	    (o.mode != IDLE && (o.clients < 2 || o.messages == 0)) ||
	    (o.mode == PACED && o.rate <= 0) || (o.mode == IDLE && o.server_pid <= 0))
		usage();
	if (o.channels > o.clients)
		o.channels = o.clients;
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
		if (r.rlim_cur < o.clients + 16)
			die("the descriptor limit is below --clients");
	}
	cl = calloc(o.clients, sizeof(*cl));
	members = calloc(o.channels, sizeof(*members));
	ep = epoll_create1(0);
	if (cl == NULL || members == NULL || ep < 0)
		die("out of memory");
	for (unsigned i = 0; i < o.clients; i++) {
		cl[i].chan = i % o.channels;
		members[cl[i].chan]++;
		if (o.mode != IDLE && (cl[i].next = calloc(o.clients, sizeof(unsigned))) == NULL)
			die("out of memory");
	}
	for (unsigned i = 0; i < o.clients && o.mode != IDLE; i++)
		want_total += (uint64_t)(members[cl[i].chan] - 1) * o.messages;

	uint64_t rss0 = o.mode == IDLE ? settled_rss() : 0;
	connect_all();
	if (o.mode == BROADCAST) {
		broadcast();
	} else if (o.mode == PACED) {
		paced();
	} else {
		uint64_t rss1 = settled_rss();
		double per = ((double)rss1 - (double)rss0) / o.clients;
		char name[64];
		if (o.name != NULL)
			snprintf(name, sizeof(name), "%s", o.name);
		else if (o.clients % 1000 == 0)
			snprintf(name, sizeof(name), "chat_idle_%uk", o.clients / 1000);
		else
			snprintf(name, sizeof(name), "chat_idle_%u", o.clients);
		fprintf(stderr,
		        "chat_load: %s %s: server RSS %.1f MiB -> %.1f MiB for %u clients\n",
		        o.impl, name, rss0 / 1048576.0, rss1 / 1048576.0, o.clients);
		printf("RESULT name=%s impl=%s metric=bytes_per_conn value=%.0f unit=bytes\n", name,
		       o.impl, per);
	}
	/* Check every receiver's tally, not just the total. */
	for (unsigned i = 0; i < o.clients && o.mode != IDLE && !failed; i++) {
		uint64_t want = (uint64_t)(members[cl[i].chan] - 1) * o.messages;
		if (cl[i].got != want)
			fail(i, "received %" PRIu64 " lines, expected %" PRIu64, cl[i].got, want);
	}
	for (unsigned i = 0; i < o.clients; i++) {
		if (cl[i].state != DEAD)
			put(i, "QUIT :done\r\n", 12);
		close(cl[i].fd);
		free(cl[i].next);
		free(cl[i].part);
		free(cl[i].out);
	}
	free(cl);
	free(members);
	free(lat_us);
	close(ep);
	fflush(stdout);
	return failed ? 1 : 0;
}
