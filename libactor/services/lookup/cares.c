/* cares.c: the resolver on c-ares: one channel per worker, driven by that worker's reactor, with
 * no thread of its own and no call that waits.
 *
 * c-ares opens and closes its sockets through us (ares_set_socket_functions), so each is a
 * watcher from the start, and its descriptor is closed only once the reactor has let go of it
 * (reactor.h, Lifetime): a number c-ares gives up cannot come back as a new socket while the
 * reactor still knows the old one. Its socket-state callback says what to watch, as readiness
 * (WATCH_READABLE, WATCH_WRITABLE: c-ares does its own reads and writes); a readiness report
 * runs ares_process_fd on that descriptor. Its query timeouts are the service's deadline.
 *
 * What still touches files: ares_init_options reads /etc/resolv.conf and /etc/nsswitch.conf
 * when the system is created (on the creating thread), and each lookup of a name reads
 * /etc/hosts before asking DNS, as glibc's getaddrinfo does: a small local file, in the page
 * cache after the first read.
 */
#include "config.h"

#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactor/reactor.h"
#include "services/lookup/lookup.h"

const bool actor__dns_available = true;

/* A socket c-ares opened; closed (and freed) when the reactor lets go of it. */
struct dns_sock {
	struct actor__watcher wt; /* first: the watcher callbacks cast back */
	struct actor__dns *d;
	struct dns_sock *next;
};

struct actor__dns {
	struct actor_worker *w;
	ares_channel ch;
	struct dns_sock *socks; /* open, in c-ares's hands */
	uint64_t next_ns;       /* c-ares's next timeout; UINT64_MAX: nothing in flight */
	bool stale;             /* c-ares ran since next_ns was read: read it again */
};

/* One ares_getaddrinfo in flight. */
struct dns_query {
	actor__dns_done_fn *done;
	void *arg;
};

static int dns_error(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
		return -ENOENT;
	case ARES_ETIMEOUT:
		return -ETIMEDOUT;
	case ARES_ECONNREFUSED:
		return -ECONNREFUSED;
	case ARES_ESERVFAIL:
	case ARES_EREFUSED:
		return -EAGAIN;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_EBADNAME:
	case ARES_EBADFLAGS:
	case ARES_EBADFAMILY:
		return -EINVAL;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return -ECANCELED;
	default: /* EFORMERR, EBADRESP, EOF, EFILE, ...: an answer or a file that made no sense */
		return -EIO;
	}
}

/* ---------------------------------------------------------------------------------------------
 * c-ares's sockets, as watchers
 */

static struct dns_sock *sock_find(struct actor__dns *d, int fd, bool take)
{
	for (struct dns_sock **p = &d->socks; *p != NULL; p = &(*p)->next) {
		struct dns_sock *s = *p;
		if (s->wt.fd != fd)
			continue;
		if (take)
			*p = s->next;
		return s;
	}
	return NULL;
}

static void dns_on_ready(struct actor__watcher *wt, int ready)
{
	struct dns_sock *s = (struct dns_sock *)wt;
	struct actor__dns *d = s->d; /* `s` may be closed by what follows */
	ares_socket_t fd = wt->fd;
	/* The reactor cannot watch it (ready < 0): c-ares tries both once; a query left waiting
	 * on it ends by its timeout. */
	if (ready < 0)
		ready = WATCH_READABLE | WATCH_WRITABLE;
	ares_process_fd(d->ch, (ready & WATCH_READABLE) ? fd : ARES_SOCKET_BAD,
	                (ready & WATCH_WRITABLE) ? fd : ARES_SOCKET_BAD);
	d->stale = true;
}

static void dns_on_closed(struct actor__watcher *wt)
{
	close(wt->fd);
	free((struct dns_sock *)wt);
}

static const struct actor__watch_ops dns_watch_ops = {
    .on_ready = dns_on_ready,
    .on_closed = dns_on_closed,
};

static ares_socket_t dns_socket(int af, int type, int protocol, void *arg)
{
	struct actor__dns *d = arg;
	struct dns_sock *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		errno = ENOMEM;
		return ARES_SOCKET_BAD;
	}
	/* Set up as c-ares would its own: it leaves ours to us. */
	int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	if (fd < 0) {
		int err = errno;
		free(s);
		errno = err;
		return ARES_SOCKET_BAD;
	}
	if (type == SOCK_STREAM) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	actor__watch_open(d->w->reactor, &s->wt, fd, &dns_watch_ops);
	s->d = d;
	s->next = d->socks;
	d->socks = s;
	return fd;
}

static int dns_close(ares_socket_t fd, void *arg)
{
	struct actor__dns *d = arg;
	struct dns_sock *s = sock_find(d, fd, true);
	if (s == NULL)
		return close(fd); /* not one of ours: cannot happen */
	/* The descriptor is closed in dns_on_closed, once the reactor has let go of it. */
	actor__watch_close(d->w->reactor, &s->wt);
	return 0;
}

static int dns_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *arg)
{
	(void)arg;
	return connect(fd, sa, len);
}

static ares_ssize_t dns_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                 struct sockaddr *from, ares_socklen_t *from_len, void *arg)
{
	(void)arg;
	return recvfrom(fd, buf, len, flags, from, from_len);
}

static ares_ssize_t dns_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *arg)
{
	(void)arg;
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	return sendmsg(fd, &mh, MSG_NOSIGNAL); /* a TCP server gone: EPIPE, never SIGPIPE */
}

static const struct ares_socket_functions dns_funcs = {
    .asocket = dns_socket,
    .aclose = dns_close,
    .aconnect = dns_connect,
    .arecvfrom = dns_recvfrom,
    .asendv = dns_sendv,
};

/* c-ares's socket-state callback: what to watch `fd` for. */
static void dns_sock_state(void *arg, ares_socket_t fd, int readable, int writable)
{
	struct actor__dns *d = arg;
	struct dns_sock *s = sock_find(d, fd, false);
	if (s != NULL)
		actor__watch_set(d->w->reactor, &s->wt,
		                 (readable ? WATCH_READABLE : 0u) |
		                     (writable ? WATCH_WRITABLE : 0u));
}

/* ---------------------------------------------------------------------------------------------
 * Lookups
 */

static void dns_answered(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	(void)timeouts;
	struct dns_query *q = arg;
	const struct sockaddr *addrs[ACTOR_LOOKUP_MAX];
	unsigned n = 0;
	if (status == ARES_SUCCESS && res != NULL) {
		for (struct ares_addrinfo_node *a = res->nodes; a != NULL && n < ACTOR_LOOKUP_MAX;
		     a = a->ai_next)
			addrs[n++] = a->ai_addr;
	}
	q->done(q->arg, dns_error(status), addrs, n);
	if (res != NULL)
		ares_freeaddrinfo(res);
	free(q);
}

int actor__dns_start(struct actor__dns *d, const char *host, actor__dns_done_fn *done, void *arg)
{
	struct dns_query *q = malloc(sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->done = done;
	q->arg = arg;
	/* /etc/hosts, then DNS (A and AAAA), as the system's configuration says; the answer
	 * sorted as RFC 6724 says (getaddrinfo's order). */
	struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	ares_getaddrinfo(d->ch, host, NULL, &hints, dns_answered, q);
	d->stale = true;
	return 0;
}

void actor__dns_poll(struct actor__dns *d)
{
	if (!d->stale)
		return;
	d->stale = false;
	struct timeval tv;
	if (ares_timeout(d->ch, NULL, &tv) == NULL) {
		d->next_ns = UINT64_MAX;
		return;
	}
	/* c-ares counts in milliseconds and rounds down: a millisecond more, so that the tick
	 * finds the timeout due. */
	d->next_ns = actor__now_ns() + (uint64_t)tv.tv_sec * 1000000000u +
	             (uint64_t)tv.tv_usec * 1000u + 1000000u;
}

uint64_t actor__dns_next_deadline(const struct actor__dns *d)
{
	return d->stale ? 0 : d->next_ns; /* stale: the poll that reads it again is due now */
}

void actor__dns_tick(struct actor__dns *d, uint64_t now)
{
	actor__dns_poll(d);
	if (now < d->next_ns)
		return;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* the timeouts */
	d->stale = true;
	actor__dns_poll(d);
}

/* ---------------------------------------------------------------------------------------------
 * The channel
 */

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_status;

static void library_init(void)
{
	library_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int actor__dns_create(struct actor_worker *w, struct actor__dns **out)
{
	pthread_once(&library_once, library_init);
	if (library_status != ARES_SUCCESS)
		return dns_error(library_status);
	struct actor__dns *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->w = w;
	d->next_ns = UINT64_MAX;
	struct ares_options o = {.sock_state_cb = dns_sock_state, .sock_state_cb_data = d};
	int rc = ares_init_options(&d->ch, &o, ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		free(d);
		return dns_error(rc);
	}
	ares_set_socket_functions(d->ch, &dns_funcs, d);
	/* Tests point the resolver at a server of their own (actor.h, "Name lookups"). */
	const char *servers = getenv("ACTOR_DNS_SERVERS");
	if (servers != NULL && servers[0] != '\0' &&
	    ares_set_servers_ports_csv(d->ch, servers) != ARES_SUCCESS) {
		ares_destroy(d->ch);
		free(d);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

void actor__dns_free(struct actor__dns *d)
{
	/* Every lookup in flight is answered (ARES_EDESTRUCTION: -ECANCELED) and every socket
	 * closed through dns_close; the reactor then lets go of them. */
	ares_destroy(d->ch);
	if (d->w->reactor != NULL)
		actor__reactor_settle(d->w->reactor);
	free(d);
}
