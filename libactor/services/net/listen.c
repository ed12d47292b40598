/* listen.c: listeners: a group of listening sockets (one, or one per worker with SO_REUSEPORT)
 * named by one handle, accepting through their watchers, backing off when descriptors run
 * out; and resolving the addresses to listen on or connect to. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/net/net.h"

#define BACKOFF_FIRST_NS 10000000u /* first accept back-off after EMFILE: 10 ms */
#define BACKOFF_MAX_NS 1000000000u /* doubling up to 1 s */

static const struct actor__watch_ops lsock_ops;

void actor__set_nodelay(int fd)
{
	int one = 1;
	/* Request/response traffic wants no Nagle delay; the output queue batches writes. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int actor__resolve(const char *host, uint16_t port, bool passive, struct addrinfo **out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV};
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int rc = getaddrinfo(host, portstr, &hints, out);
	if (rc == 0)
		return 0;
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	if (rc == EAI_SYSTEM)
		return errno ? -errno : -EINVAL;
	return -EADDRNOTAVAIL; /* unknown host or an address this machine cannot use */
}

static int open_listener(const struct sockaddr *sa, socklen_t len, int backlog, bool reuseport)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6) /* "::" serves IPv4 too */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Opens every socket of the group: the first binds (maybe port 0), the rest reuse its port. */
static void set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(port);
}

/* With SO_REUSEPORT a bind joins whatever group already listens on the port (another server of
 * the same user, say) instead of failing. A bind without it says whether the port is free; for
 * port 0 it also picks the port the group then shares. */
static int claim_port(struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	int rc = bind(fd, sa, len) < 0 ? -errno : 0;
	if (rc == 0)
		set_port(sa, bound_port(fd));
	close(fd);
	return rc;
}

/* Resolves the address to listen on: NULL means every address, IPv6 and IPv4 ("::" with
 * IPV6_V6ONLY off), or IPv4 alone on a machine without IPv6. */
static int listen_addr(const actor_listen_opts_t *o, struct addrinfo **ai)
{
	if (o->host != NULL)
		return actor__resolve(o->host, o->port, true, ai);
	int rc = actor__resolve("::", o->port, true, ai);
	if (rc == 0) {
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		freeaddrinfo(*ai);
	}
	return actor__resolve("0.0.0.0", o->port, true, ai);
}

/* Opens every socket of the group on one port. */
static int open_group(struct actor__lgroup *g, const actor_listen_opts_t *o, bool reuseport)
{
	struct addrinfo *ai;
	int rc = listen_addr(o, &ai);
	if (rc < 0)
		return rc;
	if (reuseport && (rc = claim_port(ai->ai_addr, ai->ai_addrlen)) < 0) {
		freeaddrinfo(ai);
		return rc;
	}
	int backlog = o->backlog > 0 ? o->backlog : SOMAXCONN;
	for (unsigned i = 0; i < g->nsocks; i++) {
		int fd = open_listener(ai->ai_addr, ai->ai_addrlen, backlog, reuseport);
		if (fd < 0) {
			while (i-- > 0)
				close(g->socks[i].wt.fd);
			freeaddrinfo(ai);
			return fd;
		}
		g->socks[i].wt.fd = fd;
	}
	g->port = bound_port(g->socks[0].wt.fd);
	freeaddrinfo(ai);
	return 0;
}

static void group_unref(struct actor__lgroup *g)
{
	/* acq_rel: the last holder frees; every socket's worker has finished with it. */
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) {
		actor_tls_free(g->tls);
		free(g);
	}
}

static void lsock_start(struct actor__net *net, struct actor__lsock *ls)
{
	ls->next = net->lsocks;
	net->lsocks = ls;
	net->nlsocks++;
	ls->open = true;
	int fd = ls->wt.fd;
	actor__watch_open(net->w->reactor, &ls->wt, fd, &lsock_ops);
	actor__watch_set(net->w->reactor, &ls->wt, WATCH_ACCEPT);
}

#define lsock_of(cmd, field)                                                                       \
	((struct actor__lsock *)((char *)(cmd)-offsetof(struct actor__lsock, field)))

static void lsock_start_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct actor__lsock *ls = lsock_of(cmd, start_cmd);
	struct actor__net *net = actor__net_of(w);
	if (net != NULL) {
		lsock_start(net, ls);
	} else {
		close(ls->wt.fd); /* the worker has exited */
		group_unref(ls->group);
	}
}

int actor_tcp_listen(actor_ctx_t *ctx, const actor_listen_opts_t *opts, actor_listener_t *out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || opts == NULL || out == NULL || opts->backlog < 0 ||
	    (opts->tls != NULL && !actor__tls_is_server(opts->tls)))
		return -EINVAL;
	actor_system_t *sys = w->sys;
	unsigned n = opts->per_worker ? sys->nworkers : 1;
	struct actor__lgroup *g = calloc(1, sizeof(*g) + n * sizeof(g->socks[0]));
	if (g == NULL)
		return -ENOMEM;
	g->nsocks = n;
	g->owner = ctx->actor->ref;
	int rc = open_group(g, opts, opts->per_worker != 0);
	if (rc < 0) {
		free(g);
		return rc;
	}
	struct actor__net *net = actor__net_of(w);
	int64_t idx = actor__table_put(&net->lgroups, g);
	if (idx < 0) {
		for (unsigned i = 0; i < n; i++)
			close(g->socks[i].wt.fd);
		free(g);
		return -ENOMEM;
	}
	g->tls = opts->tls != NULL ? actor__tls_ref(opts->tls) : NULL;
	g->handle = actor__table_handle(&net->lgroups, w->index, (uint32_t)idx);
	atomic_init(&g->refs, n + 1); /* one per socket, one for the handle */
	actor__svc_hold(ctx->actor, SVC_BIT_NET | SVC_BIT_LISTENS);
	for (unsigned i = 0; i < n; i++) {
		struct actor__lsock *ls = &g->socks[i];
		ls->group = g;
		ls->w = opts->per_worker ? &sys->workers[i] : w;
		if (ls->w == w) {
			lsock_start(net, ls);
		} else {
			ls->start_cmd.fn = lsock_start_cmd;
			actor__worker_post(ls->w, &ls->start_cmd);
		}
	}
	out->id = g->handle;
	return 0;
}

static struct actor__lgroup *group_owned(actor_ctx_t *ctx, actor_listener_t l, int *rc)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	*rc = -EINVAL;
	if (w == NULL)
		return NULL;
	*rc = -ESRCH;
	if (actor__handle_worker(l.id) != w->index)
		return NULL;
	struct actor__lgroup *g = actor__table_get(&actor__net_of(w)->lgroups, l.id);
	if (g == NULL)
		return NULL;
	if (!actor_ref_eq(g->owner, ctx->actor->ref)) {
		*rc = -EPERM;
		return NULL;
	}
	*rc = 0;
	return g;
}

int actor_tcp_listener_port(actor_ctx_t *ctx, actor_listener_t l, uint16_t *port)
{
	int rc;
	struct actor__lgroup *g = group_owned(ctx, l, &rc);
	if (g == NULL)
		return rc;
	if (port == NULL)
		return -EINVAL;
	*port = g->port;
	return 0;
}

/* On the socket's worker: stop accepting and let the reactor let go of it. Shutting the socket
 * down now takes it out of the listening state at once, so that the port can be bound again
 * (SO_REUSEADDR) as soon as actor_tcp_listener_close returns, however busy the worker is and
 * whatever the backend still has in flight on it (an io_uring accept holds the socket until
 * its cancellation comes back): a_closed_listeners_port_is_free_at_once_while_the_worker_is_busy.
 * The descriptor itself is closed only once the reactor has let go, so that its number cannot
 * be reused under an operation still in flight. */
void actor__lsock_close(struct actor__net *net, struct actor__lsock *ls)
{
	struct actor__lsock **pp = &net->lsocks;
	while (*pp != NULL && *pp != ls)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return; /* already closed */
	*pp = ls->next;
	net->nlsocks--;
	ls->resume_ns = 0;
	ls->open = false;
	shutdown(ls->wt.fd, SHUT_RDWR);
	actor__watch_close(net->w->reactor, &ls->wt);
}

static void lsock_on_closed(struct actor__watcher *wt)
{
	struct actor__lsock *ls = (struct actor__lsock *)((char *)wt - offsetof(struct actor__lsock, wt));
	close(ls->wt.fd);
	group_unref(ls->group);
}

static void lsock_close_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct actor__lsock *ls = lsock_of(cmd, close_cmd);
	struct actor__lgroup *g = ls->group;
	struct actor__net *net = actor__net_of(w);
	if (net != NULL)
		actor__lsock_close(net, ls);
	/* else: the worker's exit closed it */
	group_unref(g); /* the command's own reference, taken when it was posted */
}

void actor__lgroup_close(struct actor__net *net, struct actor__lgroup *g)
{
	struct actor_worker *w = net->w;
	actor__table_del(&net->lgroups, (uint32_t)g->handle);
	for (unsigned i = 0; i < g->nsocks; i++) {
		struct actor__lsock *ls = &g->socks[i];
		if (ls->w == w) {
			actor__lsock_close(net, ls);
		} else {
			/* The command lives in the group: it holds a reference until it has run,
			 * or the socket's own release could free it while it waits in the queue
			 * (seen when both workers exit with the listener open). */
			atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
			ls->close_cmd.fn = lsock_close_cmd;
			actor__worker_post(ls->w, &ls->close_cmd);
		}
	}
	group_unref(g); /* the handle's reference */
}

int actor_tcp_listener_close(actor_ctx_t *ctx, actor_listener_t l)
{
	int rc;
	struct actor__lgroup *g = group_owned(ctx, l, &rc);
	if (g == NULL)
		return rc;
	actor__lgroup_close(actor__net_of(ctx->worker), g);
	return 0;
}

static void accept_error(struct actor__lsock *ls, int err)
{
	if (err != -EMFILE && err != -ENFILE && err != -ENOBUFS && err != -ENOMEM)
		return; /* ECONNABORTED and friends concern one connection only */
	struct actor_worker *w = ls->w;
	actor__stat_add(&w->st.accept_backoffs, 1);
	/* Out of descriptors: stop accepting for a while instead of spinning on a listening socket
	 * that stays readable, and double the pause while it lasts. */
	actor__watch_set(w->reactor, &ls->wt, 0);
	ls->backoff_ns = ls->backoff_ns ? ls->backoff_ns * 2 : BACKOFF_FIRST_NS;
	if (ls->backoff_ns > BACKOFF_MAX_NS)
		ls->backoff_ns = BACKOFF_MAX_NS;
	ls->resume_ns = actor__now_ns() + ls->backoff_ns;
	actor__net_note_tick(actor__net_of(w), ls->resume_ns);
}

/* An accepted connection: pending (not read) until its owner hands it off or closes it. */
static void lsock_on_accept(struct actor__watcher *wt, int fd, const struct sockaddr *peer,
                            socklen_t peer_len)
{
	struct actor__lsock *ls = (struct actor__lsock *)((char *)wt - offsetof(struct actor__lsock, wt));
	if (fd < 0) {
		accept_error(ls, fd);
		return;
	}
	struct actor_worker *w = ls->w;
	ls->backoff_ns = 0;
	actor__set_nodelay(fd);
	struct actor__tls_session *tls = NULL;
	if (ls->group->tls != NULL && actor__tls_session_new(ls->group->tls, NULL, &tls) < 0) {
		close(fd); /* out of memory: as if the accept had failed */
		return;
	}
	struct actor__conn *c = actor__conn_new(actor__net_of(w), fd, ls->group->owner, CONN_PENDING);
	if (c == NULL) {
		actor__tls_session_free(tls);
		close(fd);
		return;
	}
	c->tls = tls;
	actor__stat_add(&w->st.accepts, 1);
	actor_tcp_accepted_t acc = {
	    .conn = actor__conn_handle(c),
	    .listener = {ls->group->handle},
	    .worker = w->index,
	};
	struct sockaddr_storage ss;
	if (peer == NULL) { /* a completion-based accept does not report the address */
		socklen_t sl = sizeof(ss);
		peer_len = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 ? sl : 0;
		peer = (struct sockaddr *)&ss;
	}
	if (peer_len > 0 && peer_len <= sizeof(acc.peer)) {
		memcpy(acc.peer, peer, peer_len);
		acc.peer_len = peer_len;
		memcpy(&c->peer, peer, peer_len);
		c->peer_len = peer_len;
	}
	if (actor__send_internal(w->sys, c->owner, ACTOR_REF_NONE, ACTOR_MSG_TCP_ACCEPTED, &acc,
	                         sizeof(acc)) < 0) {
		actor__conn_unlist(c); /* the listener's owner is gone */
		actor__conn_release(c);
	}
}

/* Resumes listeners whose back-off is over; returns the next moment to look (0: none). */
uint64_t actor__listen_tick(struct actor__net *net, uint64_t now)
{
	uint64_t next = 0;
	for (struct actor__lsock *ls = net->lsocks; ls != NULL; ls = ls->next) {
		if (ls->resume_ns == 0)
			continue;
		if (ls->resume_ns <= now) {
			ls->resume_ns = 0;
			actor__watch_set(net->w->reactor, &ls->wt, WATCH_ACCEPT);
		} else if (next == 0 || ls->resume_ns < next) {
			next = ls->resume_ns;
		}
	}
	return next;
}

static const struct actor__watch_ops lsock_ops = {
    .on_accept = lsock_on_accept,
    .on_closed = lsock_on_closed,
};

