/* msg.c: the net service as actors see it: the connection calls of actor.h, hand-offs between
 * actors, connecting, the messages a behaviour gets (and their accounting when handled or
 * dead-lettered), owners stopping, and the service table the worker calls. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/lookup/lookup.h"
#include "services/net/net.h"

struct conn_cmd {
	struct actor__cmd cmd;
	uint64_t conn;
	actor_ref_t owner;
};

/* ---------------------------------------------------------------------------------------------
 * The public connection API (owner, inside its behaviour)
 */

/* The caller's connection, checked: -EXDEV from the wrong worker, -ESRCH for a stale handle,
 * -EPERM for someone else's. */
static int owned(actor_ctx_t *ctx, actor_conn_t h, struct actor__conn **out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (actor__handle_worker(h.id) != w->index)
		return -EXDEV;
	struct actor__conn *c = actor__conn_of(actor__net_of(w), h);
	if (c == NULL)
		return -ESRCH;
	if (!actor_ref_eq(c->owner, ctx->actor->ref))
		return -EPERM;
	*out = c;
	return 0;
}

int actor_tcp_write(actor_ctx_t *ctx, actor_conn_t conn, const void *data, size_t len)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (data == NULL && len > 0)
		return -EINVAL;
	if (c->state != CONN_OPEN || c->wr_shut || c->tls_connecting)
		return -EPIPE;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (c->queued > c->high) {
		c->over_high = true;
		return -ENOBUFS;
	}
	return len == 0 ? 0 : actor__conn_write(c, data, len);
}

int actor__tcp_queue_seg(actor_ctx_t *ctx, actor_conn_t conn, const struct actor__outseg *seg,
                         uint32_t len)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (c->tls != NULL)
		return -EOPNOTSUPP; /* sendfile would put the file on the wire unencrypted */
	if (c->state != CONN_OPEN || c->wr_shut)
		return -EPIPE;
	return len == 0 ? 0 : actor__conn_queue_seg(c, seg, len);
}

int actor_tcp_queued(actor_ctx_t *ctx, actor_conn_t conn, size_t *bytes)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (bytes == NULL)
		return -EINVAL;
	*bytes = c->queued;
	return 0;
}

int actor_tcp_set_watermarks(actor_ctx_t *ctx, actor_conn_t conn, size_t high, size_t low)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (low > high)
		return -EINVAL;
	c->high = high;
	c->low = low;
	return 0;
}

int actor_tcp_pause(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	actor__conn_set_paused(c, true);
	return 0;
}

int actor_tcp_resume(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	actor__conn_set_paused(c, false);
	return 0;
}

int actor_tcp_set_read_limit(actor_ctx_t *ctx, actor_conn_t conn, size_t bytes)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	actor__conn_set_read_limit(c, bytes);
	return 0;
}

int actor_tcp_backlog(actor_ctx_t *ctx, actor_conn_t conn, size_t *bytes)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (bytes == NULL)
		return -EINVAL;
	*bytes = c->unhandled;
	return 0;
}

int actor_tcp_set_framing(actor_ctx_t *ctx, actor_conn_t conn, const actor_tcp_framing_t *framing)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (framing == NULL)
		return -EINVAL;
	return actor__conn_set_framing(c, framing);
}

int actor_tcp_shutdown(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (c->state != CONN_OPEN)
		return -ENOTCONN;
	actor__conn_shutdown(c);
	return 0;
}

int actor_tcp_close(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	actor__conn_close_graceful(c);
	return 0;
}

int actor_tcp_abort(actor_ctx_t *ctx, actor_conn_t conn)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	actor__conn_abort(c);
	return 0;
}

int actor_tcp_peer(actor_ctx_t *ctx, actor_conn_t conn, void *buf, uint32_t *len)
{
	struct actor__conn *c;
	int rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (buf == NULL || len == NULL)
		return -EINVAL;
	if (c->peer_len == 0) {
		socklen_t sl = sizeof(c->peer);
		if (getpeername(c->wt.fd, (struct sockaddr *)&c->peer, &sl) < 0)
			return -errno;
		c->peer_len = sl;
	}
	if (*len < c->peer_len)
		return -ENOSPC;
	memcpy(buf, &c->peer, c->peer_len);
	*len = c->peer_len;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Hand-off
 */

/* Makes `target` (living on c's worker, the current thread) the owner and starts reading. */
static void adopt(struct actor__conn *c, struct actor *target)
{
	c->owner = target->ref;
	/* A home-worker field: `target` lives here, and is either the caller or pinned. */
	actor__svc_hold(target, SVC_BIT_NET);
	if (c->state == CONN_PENDING)
		c->state = CONN_OPEN;
	actor__conn_update(c);
}

int actor_tcp_handoff(actor_ctx_t *ctx, actor_conn_t conn, actor_ref_t target)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	actor_info_t info;
	int rc = actor_info(w->sys, target, &info);
	if (rc < 0)
		return rc;
	unsigned cw = actor__handle_worker(conn.id);
	if (cw >= w->sys->nworkers)
		return -ESRCH;
	if (info.worker != cw)
		return -EXDEV;
	/* A target that may move could leave the connection's worker at any moment: only one
	 * that stays there (pinned) or the caller itself (running here now) can take it. */
	struct actor *t = actor__lookup(w->sys, target);
	if (t == NULL)
		return -ESRCH;
	if (t != ctx->actor && !t->pinned)
		return -EXDEV;
	if (cw != w->index) {
		/* A pending connection accepted on another worker: its target claims it there. */
		struct actor__adopt ad = {.conn = conn, .from = ctx->actor->ref};
		return actor__send_internal(w->sys, target, ctx->actor->ref, MSG_TCP_ADOPT, &ad,
		                            sizeof(ad));
	}
	struct actor__conn *c;
	rc = owned(ctx, conn, &c);
	if (rc < 0)
		return rc;
	if (c->state == CONN_CLOSING)
		return -EPIPE;
	actor_ref_t old = c->owner;
	c->owner = target;
	/* No reading until the new owner has ADOPTED: what it sets then (framing, a read limit)
	 * applies from the first byte it gets. */
	c->read_held = true;
	rc = actor__conn_event(c, ACTOR_MSG_TCP_ADOPTED, 0);
	if (rc < 0) {
		c->owner = old;
		return rc;
	}
	adopt(c, t);
	return 0;
}

/* A MSG_TCP_ADOPT reached its target `a`: claims the conn and turns `m` into the ADOPTED message
 * the behaviour sees; false if the conn was closed or claimed meanwhile. */
static bool adopt_msg(struct actor__net *net, struct actor *a, actor_msg_t *m)
{
	struct actor__adopt ad;
	memcpy(&ad, actor_msg_data(m), sizeof(ad));
	struct actor__conn *c = actor__conn_of(net, ad.conn);
	if (c == NULL || c->state != CONN_PENDING || !actor_ref_eq(c->owner, ad.from))
		return false;
	adopt(c, a);
	actor_tcp_event_t ev = {.conn = ad.conn, .error = 0, .worker = net->w->index};
	memcpy(actor_msg_data(m), &ev, sizeof(ev));
	m->type = ACTOR_MSG_TCP_ADOPTED;
	m->sender = ad.from;
	return true;
}

/* Closes a pending connection nobody will claim (its ACCEPTED or ADOPT was dead-lettered). */
static void close_pending(struct actor__net *net, uint64_t id, actor_ref_t owner)
{
	struct actor__conn *c = actor__conn_of(net, (actor_conn_t){id});
	if (c != NULL && c->state == CONN_PENDING && actor_ref_eq(c->owner, owner)) {
		actor__conn_unlist(c);
		actor__conn_release(c);
	}
}

static void close_pending_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct conn_cmd *cc = (struct conn_cmd *)cmd;
	if (actor__net_of(w) != NULL)
		close_pending(actor__net_of(w), cc->conn, cc->owner);
	free(cc);
}

/* A pending connection's ACCEPTED or ADOPT could not be delivered: closes it. `to` is the actor
 * that could not take `m`: for ACCEPTED, the listener's owner, which owns the pending
 * connection; for ADOPT, the target, and the owner is the sender recorded inside. */
static void pending_dead_letter(struct actor_worker *w, actor_ref_t to, actor_msg_t *m)
{
	uint64_t id;
	actor_ref_t owner = to;
	if (m->type == MSG_TCP_ADOPT) {
		struct actor__adopt ad;
		memcpy(&ad, actor_msg_data(m), sizeof(ad));
		id = ad.conn.id;
		owner = ad.from;
	} else {
		actor_tcp_accepted_t acc;
		memcpy(&acc, actor_msg_data(m), sizeof(acc));
		id = acc.conn.id;
	}
	unsigned cw = actor__handle_worker(id);
	if (cw >= w->sys->nworkers)
		return;
	if (cw == w->index) {
		close_pending(actor__net_of(w), id, owner);
		return;
	}
	struct conn_cmd *cc = malloc(sizeof(*cc));
	if (cc == NULL)
		return; /* that worker closes it when it exits */
	cc->cmd.fn = close_pending_cmd;
	cc->conn = id;
	cc->owner = owner;
	actor__worker_post(&w->sys->workers[cw], &cc->cmd);
}

/* ---------------------------------------------------------------------------------------------
 * Connecting
 */

int actor_tcp_connect(actor_ctx_t *ctx, const char *host, uint16_t port, actor_conn_t *out)
{
	return actor_tcp_connect_opts(ctx, &(actor_connect_opts_t){.host = host, .port = port}, out);
}

static int connect_tls(struct actor_worker *w, struct actor *a, const char *host,
                       uint16_t port, struct actor__tls_session *tls, actor_conn_t *out);

int actor_tcp_connect_opts(actor_ctx_t *ctx, const actor_connect_opts_t *o, actor_conn_t *out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || o == NULL || o->host == NULL || out == NULL || o->port == 0 ||
	    (o->tls != NULL && actor__tls_is_server(o->tls)))
		return -EINVAL;
	struct actor__tls_session *tls = NULL;
	if (o->tls != NULL) {
		int rc = actor__tls_session_new(
		    o->tls, o->server_name != NULL ? o->server_name : o->host, &tls);
		if (rc < 0)
			return rc;
	}
	int rc = connect_tls(w, ctx->actor, o->host, o->port, tls, out);
	if (rc < 0)
		actor__tls_session_free(tls);
	return rc;
}

/* Connects, with `tls` (maybe NULL), which becomes the connection's if this succeeds. */
static int connect_tls(struct actor_worker *w, struct actor *a, const char *host,
                       uint16_t port, struct actor__tls_session *tls, actor_conn_t *out)
{
	/* A name is looked up without waiting (conn.c, "Connecting by name"); an address, or a
	 * name in a build without c-ares, is resolved here. */
	struct sockaddr_storage numeric;
	if (!actor__lookup_numeric(host, port, &numeric)) {
		int rc = actor__conn_connect_name(actor__net_of(w), a, host, port, tls, out);
		if (rc != -ENOSYS)
			return rc;
	}
	struct addrinfo *ai;
	int rc = actor__resolve(host, port, false, &ai);
	if (rc < 0)
		return rc;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		return rc;
	}
	actor__set_nodelay(fd);
	int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	int err = r == 0 ? 0 : errno;
	freeaddrinfo(ai);
	if (r < 0 && err != EINPROGRESS) {
		close(fd);
		return -err; /* refused at once (e.g. no route): no message will follow */
	}
	rc = actor__conn_connect_fd(actor__net_of(w), a, fd, r == 0, tls, out);
	if (rc < 0)
		close(fd);
	return rc;
}

static void close_owned_here(struct actor__net *net, actor_ref_t owner)
{
	struct actor__table *t = &net->conns;
	for (uint32_t i = 1; i < t->cap; i++) {
		struct actor__conn *c = t->obj[i];
		if (c != NULL && actor_ref_eq(c->owner, owner))
			actor__conn_close_graceful(c);
	}
}

static void owner_stopped_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct conn_cmd *cc = (struct conn_cmd *)cmd;
	if (actor__net_of(w) != NULL)
		close_owned_here(actor__net_of(w), cc->owner);
	free(cc);
}

/* Home worker of `a`, as it stops: closes its connections (queued output is still written) and
 * its listeners, and the pending connections its listeners accepted on other workers. */
static void net_owner_stopped(struct actor_worker *w, void *state, struct actor *a)
{
	struct actor__net *net = state;
	close_owned_here(net, a->ref);
	if (!(a->svc_bits & SVC_BIT_LISTENS))
		return;
	struct actor__table *t = &net->lgroups;
	for (uint32_t i = 1; i < t->cap; i++) {
		struct actor__lgroup *g = t->obj[i];
		if (g != NULL && actor_ref_eq(g->owner, a->ref))
			actor__lgroup_close(net, g);
	}
	for (unsigned i = 0; i < w->sys->nworkers; i++) {
		if (i == w->index)
			continue;
		struct conn_cmd *cc = malloc(sizeof(*cc));
		if (cc == NULL)
			continue; /* those conns close when their worker exits */
		cc->cmd.fn = owner_stopped_cmd;
		cc->owner = a->ref;
		actor__worker_post(&w->sys->workers[i], &cc->cmd);
	}
}

/* The worker is exiting: every actor has stopped. Closes what is left, at once, and waits for
 * the reactor to let go of it (io_uring cancellations) before freeing the state the
 * connections' last callbacks use. */
static void net_fini(struct actor_worker *w, void *state)
{
	struct actor__net *net = state;
	while (net->lsocks != NULL)
		actor__lsock_close(net, net->lsocks);
	for (uint32_t i = 1; i < net->conns.cap; i++) {
		struct actor__conn *c = net->conns.obj[i];
		if (c != NULL)
			actor__conn_abort(c);
	}
	while (net->nclosing > 0)
		actor__conn_close_ran_out(net->closing[0]);
	/* Listener groups whose owner lived here and whose sockets live elsewhere. */
	for (uint32_t i = 1; i < net->lgroups.cap; i++) {
		struct actor__lgroup *g = net->lgroups.obj[i];
		if (g != NULL)
			actor__lgroup_close(net, g);
	}
	if (w->reactor != NULL)
		actor__reactor_settle(w->reactor);
	actor__table_free(&net->conns);
	actor__table_free(&net->lgroups);
	actor__net_spare_free(net);
	free(net->closing);
	free(net);
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */

static int net_init(struct actor_worker *w, void **state)
{
	struct actor__net *net = calloc(1, sizeof(*net));
	if (net == NULL)
		return -ENOMEM;
	net->w = w;
	*state = net;
	return 0;
}

static bool net_draining(const struct actor_worker *w, const void *state)
{
	(void)w;
	return ((const struct actor__net *)state)->nclosing > 0;
}

static uint64_t net_next_deadline(const struct actor_worker *w, const void *state)
{
	(void)w;
	const struct actor__net *net = state;
	return net->next_tick_ns != 0 ? net->next_tick_ns : UINT64_MAX;
}

/* Resumes backed-off listeners, ends closes whose output the peer has acknowledged, and gives
 * up on closes whose linger ran out. */
static unsigned net_tick(struct actor_worker *w, void *state, uint64_t now)
{
	(void)w;
	struct actor__net *net = state;
	if (net->next_tick_ns == 0 || now < net->next_tick_ns)
		return 0;
	uint64_t a = actor__listen_tick(net, now), b = actor__conn_tick(net, now);
	net->next_tick_ns = a == 0 ? b : b == 0 ? a : a < b ? a : b;
	return 1;
}

/* Takes a DATA message's mark: the bytes it counted for, 0 if it counts for none (handled
 * before: kept and handled again, or forwarded). */
static uint32_t take_count(actor_msg_t *m, actor_conn_t *conn)
{
	actor_tcp_data_t d;
	memcpy(&d, actor_msg_data(m), sizeof(d)); /* the payload need not be aligned */
	if (d.reserved_ != DATA_COUNTED)
		return 0;
	d.reserved_ = 0;
	memcpy(actor_msg_data(m), &d, sizeof(d));
	*conn = d.conn;
	return d.len;
}

/* The owner is about to get its ADOPTED or CONNECTED: reading may start (after this turn, when
 * the reactor next applies changes). True for a TLS connection. */
static bool release_read(struct actor__net *net, actor_conn_t conn)
{
	struct actor__conn *c = actor__conn_of(net, conn);
	if (c != NULL && c->read_held) {
		c->read_held = false;
		actor__conn_update(c);
	}
	return c != NULL && c->tls != NULL; /* true: resume its input once this is handled */
}

/* A message of ours is about to reach `a`'s behaviour. The note: for DATA, the connection and
 * the bytes to count off once handled; for a CLOSED or CONNECTED carrying an error, the
 * connection to free once the owner has been told (value < 0). */
static enum actor__svc_verdict net_receive(struct actor_worker *w, void *state, struct actor *a,
                                           actor_msg_t *m, struct actor__svc_note *note)
{
	(void)w;
	struct actor__net *net = state;
	if (m->type == ACTOR_MSG_TCP_DATA) {
		actor_conn_t conn;
		uint32_t len = take_count(m, &conn);
		if (len == 0)
			return SVC_DELIVER;
		*note = (struct actor__svc_note){.id = conn.id, .value = len};
		return SVC_DELIVER_NOTE;
	}
	if (m->type == ACTOR_MSG_TCP_ADOPTED || m->type == ACTOR_MSG_TCP_CLOSED ||
	    m->type == ACTOR_MSG_TCP_CONNECTED) {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(m), sizeof(ev));
		if (m->type != ACTOR_MSG_TCP_CLOSED && ev.error == 0 && a != NULL &&
		    release_read(net, ev.conn)) {
			/* Input its TLS session already holds goes to the owner once it has this. */
			*note = (struct actor__svc_note){.id = ev.conn.id, .value = 0};
			return SVC_DELIVER_NOTE;
		}
		if (ev.error == 0)
			return SVC_DELIVER;
		*note = (struct actor__svc_note){.id = ev.conn.id, .value = -1};
		return SVC_DELIVER_NOTE;
	}
	if (m->type == MSG_TCP_ADOPT)
		return adopt_msg(net, a, m) ? SVC_DELIVER : SVC_CONSUMED;
	return SVC_DELIVER;
}

static void net_handled(struct actor_worker *w, void *state, const struct actor__svc_note *note)
{
	(void)w;
	actor_conn_t conn = {note->id};
	if (note->value > 0)
		actor__conn_handled(state, conn, (uint32_t)note->value);
	else if (note->value == 0)
		actor__conn_input_resume(state, conn);
	else
		actor__conn_delivered(state, conn);
}

static void net_dead_letter(struct actor_worker *w, void *state, actor_ref_t to, actor_msg_t *m)
{
	struct actor__svc_note note;
	if (m->type == MSG_TCP_ADOPT || m->type == ACTOR_MSG_TCP_ACCEPTED)
		pending_dead_letter(w, to, m); /* close the connection it carries */
	else if (net_receive(w, state, NULL, m, &note) == SVC_DELIVER_NOTE)
		net_handled(w, state, &note);
}

const struct actor__service_ops actor__net_service = {
    .name = "net",
    .id = SVC_NET,
    .blocks = {0x01, 0x11},
    .actor_bits = SVC_BIT_NET | SVC_BIT_LISTENS,
    .init = net_init,
    .fini = net_fini,
    .next_deadline = net_next_deadline,
    .tick = net_tick,
    .draining = net_draining,
    .owner_stopped = net_owner_stopped,
    .receive = net_receive,
    .handled = net_handled,
    .dead_letter = net_dead_letter,
};
