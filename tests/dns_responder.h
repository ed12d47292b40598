/* dns_responder.h: a tiny DNS server for the lookup tests and benchmark (this machine has no
 * network): one thread answering UDP queries on a loopback port, by the first label of the name
 * asked for:
 *   "nx..."    NXDOMAIN;
 *   "slow..."  answered after `slow_ms`, without holding up the other answers;
 *   "many..."  20 A records, 127.0.0.1 to 127.0.0.20;
 *   anything else: one A record, `addr` (127.0.0.1 unless given), and for AAAA no record
 *              (NODATA).
 * It counts the queries it got and the answers it sent. Header-only: tests/test_lookup.c and
 * bench/lookup.c include it.
 */
#ifndef TESTS_DNS_RESPONDER_H
#define TESTS_DNS_RESPONDER_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DNS_MANY 20          /* A records for a "many..." name */
#define DNS_PENDING_MAX 4096 /* slow answers held at once */

struct dns_delayed {
	uint64_t due_ns;
	struct sockaddr_in to;
	uint16_t len;
	unsigned char buf[512];
};

struct dns_responder {
	int fd;
	uint16_t port;
	unsigned slow_ms;
	struct in_addr addr; /* the A record's address */
	pthread_t thread;
	atomic_bool stop;
	atomic_ulong queries, answers;
	struct dns_delayed *pending; /* the responder thread's */
	unsigned npending;
};

static inline uint64_t dns_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The question's name, dotted and lower-case, into `name`; the offset just past the question
 * (its type and class included), or 0 for a query that is not one question. */
static inline size_t dns_question(const unsigned char *q, size_t len, char *name, size_t cap,
                                  uint16_t *qtype)
{
	if (len < 12 || q[4] != 0 || q[5] != 1)
		return 0;
	size_t i = 12, n = 0;
	while (i < len && q[i] != 0) {
		unsigned l = q[i++];
		if (l > 63 || i + l > len || n + l + 2 > cap)
			return 0;
		if (n > 0)
			name[n++] = '.';
		for (unsigned k = 0; k < l; k++)
			name[n++] = (char)tolower(q[i + k]);
		i += l;
	}
	name[n] = '\0';
	if (i + 5 > len)
		return 0;
	*qtype = (uint16_t)(q[i + 1] << 8 | q[i + 2]);
	return i + 5;
}

static inline void dns_put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* The answer to query `q` into `out` (512 bytes); its length, or 0 to ignore the query. */
static inline size_t dns_answer(const struct dns_responder *r, const unsigned char *q, size_t len,
                                unsigned char *out, bool *slow)
{
	char name[256];
	uint16_t qtype;
	size_t qend = dns_question(q, len, name, sizeof(name), &qtype);
	if (qend == 0 || qend > 256)
		return 0;
	memcpy(out, q, qend); /* the id and the question */
	bool nx = strncmp(name, "nx", 2) == 0;
	*slow = strncmp(name, "slow", 4) == 0;
	unsigned records = 0;
	if (!nx && qtype == 1)
		records = strncmp(name, "many", 4) == 0 ? DNS_MANY : 1;
	out[2] = (unsigned char)(0x84 | (q[2] & 0x79)); /* QR, AA, the opcode and RD kept */
	out[3] = (unsigned char)(0x80 | (nx ? 3 : 0));  /* RA; NXDOMAIN or NOERROR */
	dns_put16(out + 4, 1);
	dns_put16(out + 6, records);
	dns_put16(out + 8, 0);
	dns_put16(out + 10, 0);
	size_t n = qend;
	for (unsigned k = 0; k < records; k++) {
		unsigned char *a = out + n;
		dns_put16(a, 0xc00c); /* the name: a pointer to the question's */
		dns_put16(a + 2, 1);  /* A */
		dns_put16(a + 4, 1);  /* IN */
		dns_put16(a + 6, 0);  /* TTL 60 */
		dns_put16(a + 8, 60);
		dns_put16(a + 10, 4);
		if (records == 1) {
			memcpy(a + 12, &r->addr, 4);
		} else {
			uint32_t ip = htonl(0x7f000001u + k);
			memcpy(a + 12, &ip, 4);
		}
		n += 16;
	}
	return n;
}

/* The poll timeout, in ms, until `next` (ns): 0 once it is due. An answer that fell due while
 * the thread was sending others made `next - now` wrap, and the int it became was negative:
 * poll then waited for the next query, which may never come (test_lookup's owner-stops case
 * waited out its 200 s with answers held). */
static inline int dns_poll_timeout_ms(uint64_t now, uint64_t next)
{
	return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

static inline void dns_send_due(struct dns_responder *r, uint64_t now)
{
	for (unsigned i = 0; i < r->npending;) {
		struct dns_delayed *p = &r->pending[i];
		if (p->due_ns > now) {
			i++;
			continue;
		}
		if (sendto(r->fd, p->buf, p->len, 0, (struct sockaddr *)&p->to, sizeof(p->to)) > 0)
			atomic_fetch_add(&r->answers, 1);
		*p = r->pending[--r->npending];
	}
}

static inline void *dns_responder_main(void *arg)
{
	struct dns_responder *r = arg;
	unsigned char q[1500], out[512];
	while (!atomic_load(&r->stop)) {
		uint64_t now = dns_now_ns(),
		         next = now + 20000000u; /* looks at `stop` every 20 ms */
		for (unsigned i = 0; i < r->npending; i++)
			next = r->pending[i].due_ns < next ? r->pending[i].due_ns : next;
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		poll(&pfd, 1, dns_poll_timeout_ms(now, next));
		for (;;) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t len = recvfrom(r->fd, q, sizeof(q), MSG_DONTWAIT,
			                       (struct sockaddr *)&from, &fl);
			if (len <= 0)
				break;
			atomic_fetch_add(&r->queries, 1);
			bool slow = false;
			size_t n = dns_answer(r, q, (size_t)len, out, &slow);
			if (n == 0)
				continue;
			if (slow && r->npending < DNS_PENDING_MAX) {
				struct dns_delayed *p = &r->pending[r->npending++];
				p->due_ns = dns_now_ns() + (uint64_t)r->slow_ms * 1000000u;
				p->to = from;
				p->len = (uint16_t)n;
				memcpy(p->buf, out, n);
			} else if (sendto(r->fd, out, n, 0, (struct sockaddr *)&from, fl) > 0) {
				atomic_fetch_add(&r->answers, 1);
			}
		}
		dns_send_due(r, dns_now_ns());
	}
	return NULL;
}

/* Starts a responder on 127.0.0.1:`port` (0: any free port) whose A record is `addr` (host
 * order; 0: 127.0.0.1); 0 or a negative errno. Its "host:port", for ACTOR_DNS_SERVERS, with
 * dns_responder_servers. */
static inline int dns_responder_start(struct dns_responder *r, uint16_t port, unsigned slow_ms,
                                      uint32_t addr)
{
	memset(r, 0, sizeof(*r));
	r->slow_ms = slow_ms;
	r->addr.s_addr = htonl(addr != 0 ? addr : INADDR_LOOPBACK);
	r->pending = calloc(DNS_PENDING_MAX, sizeof(*r->pending));
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->pending == NULL || r->fd < 0)
		return -ENOMEM;
	/* Room for a burst of queries: a thousand lookups started in one turn. */
	int buf = 4 << 20;
	if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (bind(r->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(r->fd, (struct sockaddr *)&a, &al) < 0) {
		int err = -errno;
		close(r->fd);
		free(r->pending);
		return err;
	}
	r->port = ntohs(a.sin_port);
	atomic_init(&r->stop, false);
	atomic_init(&r->queries, 0);
	atomic_init(&r->answers, 0);
	if (pthread_create(&r->thread, NULL, dns_responder_main, r) != 0) {
		close(r->fd);
		free(r->pending);
		return -EAGAIN;
	}
	return 0;
}

static inline const char *dns_responder_servers(const struct dns_responder *r, char *buf,
                                                size_t cap)
{
	snprintf(buf, cap, "127.0.0.1:%u", (unsigned)r->port);
	return buf;
}

static inline void dns_responder_stop(struct dns_responder *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->fd);
	free(r->pending);
}

#endif /* TESTS_DNS_RESPONDER_H */
