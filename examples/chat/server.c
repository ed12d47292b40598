/* server.c: chat-server, an IRC server on libactor. This file is the glue: signals, the
 * acceptor, and struct chat_env implemented over the actor runtime, so that the protocol parts
 * (session, channel, registry, fanout) run as actors; options.c reads the options. README.md
 * has the design.
 *
 * Usage: chat-server [--bind 127.0.0.1] [--port 6667] [--workers N] [--reactor auto|epoll|
 *        io_uring] [--max-clients N] [--motd FILE] [--password P] [--oper NAME:PASSWORD]
 *        [--config FILE] [more: --help]
 *
 * With --tls-port N --cert FILE --key FILE it listens for TLS on port N as well.
 *
 * Prints "PORT <n>" on stdout once it listens (--port 0 takes any free port), then
 * "TLS_PORT <n>" with --tls-port. SIGINT or
 * SIGTERM: stop accepting, send ERROR to every client, wait for them to go (at most
 * CHAT_LINGER_MS), exit 0.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chat.h"
#include "cluster.h"
#include "options.h"

enum { MSG_LISTEN = 0x1000, MSG_FANOUT_DONE };

#define SHUTDOWN_GRACE_MS (CHAT_LINGER_MS + 3000) /* then the runtime stops whatever is left */

static struct chat_srv srv;
static struct chat_options opt;
static actor_system_t *the_sys;
static actor_ref_t acceptor_ref;
static int listen_rc;          /* set by the acceptor before anything else runs; read after run */
static bool listen_tls_failed; /* listen_rc is the TLS listener's */
static actor_tls_t *tls;       /* --tls-port's configuration, or NULL */

/* ---------------------------------------------------------------------------------------------
 * The environment over libactor
 */

struct actor_env {
	struct chat_env env;
	actor_ctx_t *ctx;
	actor_conn_t *conn; /* the session's connection, or NULL */
};

static struct actor_env *aenv(struct chat_env *e)
{
	return e->impl;
}

static actor_msg_t *env_alloc(struct chat_env *e, size_t size, uint32_t type)
{
	(void)e;
	actor_msg_t *m = NULL;
	return actor_msg_alloc(size, type, &m) == 0 ? m : NULL;
}

static void env_free(struct chat_env *e, actor_msg_t *m)
{
	(void)e;
	actor_msg_free(m);
}

static int env_send(struct chat_env *e, actor_ref_t to, actor_msg_t *m)
{
	return actor_send_msg(actor_ctx_system(aenv(e)->ctx), to, m);
}

static void channel_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg);

static void stop_system(actor_system_t *sys)
{
	actor_system_shutdown(sys);
}

/* What each start of a channel's actor is made from (its child spec's arg). It outlives each
 * actor: a restart makes the next one from it. Counted: one reference is env_spawn_channel's,
 * then the channel supervisor's once it has taken the child (its free_arg drops it when it
 * forgets the child), and one is each actor's made from it (its destroy drops it), so the last
 * of them frees it, whichever it is and on whichever worker. */
struct chan_seed {
	char name[IRC_CHANLEN + 1];
	unsigned starts;  /* written at each start, on the starting actor's worker: one at a time */
	actor_ref_t last; /* the last actor started from it */
	atomic_uint refs;
};

static void seed_unref(void *arg)
{
	struct chan_seed *seed = arg;
	/* acq_rel: the last holder sees every other holder's writes (starts, last). */
	if (atomic_fetch_sub_explicit(&seed->refs, 1, memory_order_acq_rel) == 1)
		free(seed);
}

struct channel_actor {
	struct chan *c;
	struct chan_seed *seed;
	struct chat_slow slow; /* its slow clients (srv.c) */
};

static void *channel_make(void *arg)
{
	struct channel_actor *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->seed = arg;
	a->c = chan_new(&srv, a->seed->name);
	if (a->c == NULL) {
		free(a);
		return NULL;
	}
	/* relaxed: the supervisor holds a reference already. */
	atomic_fetch_add_explicit(&a->seed->refs, 1, memory_order_relaxed);
	return a;
}

static void channel_destroy(void *state)
{
	struct channel_actor *a = state;
	if (a == NULL)
		return;
	seed_unref(a->seed);
	chan_free(a->c);
	chat_slow_free(&a->slow);
	free(a);
}

static void channel_start(actor_ctx_t *ctx, void *state);

/* The channel supervisor of worker w's shard (spawn_parts), by its registered name. */
#define CHANNELS_NAME "chat.channels.%u"

static int env_spawn_channel(struct chat_env *e, const char *name)
{
	actor_ctx_t *ctx = aenv(e)->ctx;
	char sup_name[32];
	snprintf(sup_name, sizeof(sup_name), CHANNELS_NAME, e->worker);
	actor_ref_t sup;
	int rc = actor_whereis(actor_ctx_system(ctx), sup_name, &sup);
	if (rc < 0)
		return rc;
	struct chan_seed *seed = calloc(1, sizeof(*seed));
	if (seed == NULL)
		return -ENOMEM;
	snprintf(seed->name, sizeof(seed->name), "%s", name);
	atomic_init(&seed->refs, 1); /* ours, the supervisor's once it answers 0 */
	/* Child ids are unique among a supervisor's children: a channel forgotten and created
	 * again may meet its predecessor, not yet removed. */
	static atomic_uint_fast64_t next_id;
	char id[32];
	snprintf(id, sizeof(id), "c%llu",
	         (unsigned long long)atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed));
	/* `stay`: a channel delivers to members on its own worker directly and to the others
	 * through their workers' fan-outs; were it to move, a line sent directly after the move
	 * could overtake the one before it, still in a fan-out's mailbox. Transient: restarted
	 * after a failure, not after the normal stop of an empty channel. */
	actor_child_spec_t spec = {.id = id,
	                           .fn = channel_fn,
	                           .make_state = channel_make,
	                           .arg = seed,
	                           .spawn = {.placement = ACTOR_PLACE_HASH,
	                                     .key = irc_hash(name),
	                                     .name = "channel",
	                                     .destroy = channel_destroy,
	                                     .start = channel_start,
	                                     .stay = 1},
	                           .restart = ACTOR_RESTART_TRANSIENT,
	                           .free_arg = seed_unref};
	actor_request_t req;
	rc = actor_supervisor_start_child(ctx, sup, &spec,
	                                  &(actor_request_opts_t){.tag = (uintptr_t)seed}, &req);
	if (rc < 0)
		seed_unref(seed);
	return rc;
}

static uint64_t env_keep(struct chat_env *e)
{
	actor_ctx_t *ctx = aenv(e)->ctx;
	actor_msg_keep(ctx);
	actor_reply_handle_t h;
	if (actor_request_of(ctx, NULL) != 1 || actor_request_keep(ctx, &h) < 0)
		return CHAT_PLAIN; /* out of memory: its requester hears -ENOMSG */
	return h.id;
}

static int env_request(struct chat_env *e, actor_ref_t to, actor_msg_t *m, uint64_t timeout_ns,
                       uint64_t tag)
{
	actor_request_t id;
	actor_request_opts_t o = {.timeout_ns = timeout_ns, .tag = tag};
	int rc = actor_request(aenv(e)->ctx, to, m->type, actor_msg_data(m), m->size, &o, &id);
	if (rc == 0)
		actor_msg_free(m);
	return rc;
}

/* The answer travels whole, header included, so that chat_answer_of can hand the requester
 * the message it was given. */
static int env_reply(struct chat_env *e, uint64_t kept, actor_msg_t *answer)
{
	actor_ctx_t *ctx = aenv(e)->ctx;
	size_t len = sizeof(*answer) + answer->size;
	int rc;
	if (kept == CHAT_PLAIN)
		rc = -EINVAL;
	else if (kept != 0)
		rc = actor_reply_to(ctx, &(actor_reply_handle_t){kept}, answer->type, answer, len);
	else
		rc = actor_reply(ctx, answer->type, answer, len);
	if (rc == 0)
		actor_msg_free(answer);
	return rc;
}

static int env_forward(struct chat_env *e, uint64_t kept, actor_ref_t to, actor_msg_t *m)
{
	actor_ctx_t *ctx = aenv(e)->ctx;
	if (kept == CHAT_PLAIN || (kept == 0 && actor_request_of(ctx, NULL) != 1))
		return actor_send_msg(actor_ctx_system(ctx), to, m);
	if (kept != 0)
		return actor_request_forward_kept(ctx, &(actor_reply_handle_t){kept}, to, m);
	return actor_request_forward(ctx, to, m);
}

static int env_monitor(struct chat_env *e, actor_ref_t target, bool on)
{
	actor_ctx_t *ctx = aenv(e)->ctx;
	actor_system_t *sys = actor_ctx_system(ctx);
	return on ? actor_monitor(sys, actor_self(ctx), target)
	          : actor_demonitor(sys, actor_self(ctx), target);
}

static void env_exit(struct chat_env *e, int reason)
{
	actor_exit(aenv(e)->ctx, reason);
}

static uint64_t env_now(struct chat_env *e)
{
	(void)e;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int env_timer(struct chat_env *e, uint64_t delay_ns, uint64_t tag)
{
	actor_timer_t t;
	actor_ctx_t *ctx = aenv(e)->ctx;
	return actor_timer_start(ctx, actor_self(ctx), delay_ns, 0, tag, &t);
}

static int env_write(struct chat_env *e, const void *data, size_t len)
{
	struct actor_env *a = aenv(e);
	if (a->conn == NULL || a->conn->id == 0)
		return -EPIPE;
	return actor_tcp_write(a->ctx, *a->conn, data, len);
}

static int env_set_sendq(struct chat_env *e, size_t high, size_t low)
{
	struct actor_env *a = aenv(e);
	if (a->conn == NULL || a->conn->id == 0)
		return -EPIPE;
	return actor_tcp_set_watermarks(a->ctx, *a->conn, high, low);
}

static int env_pause(struct chat_env *e, bool pause)
{
	struct actor_env *a = aenv(e);
	if (a->conn == NULL || a->conn->id == 0)
		return -EPIPE;
	return pause ? actor_tcp_pause(a->ctx, *a->conn) : actor_tcp_resume(a->ctx, *a->conn);
}

static void env_close(struct chat_env *e, enum chat_close how)
{
	struct actor_env *a = aenv(e);
	if (a->conn == NULL || a->conn->id == 0)
		return;
	switch (how) {
	case CHAT_CLOSE_GRACEFUL:
		actor_tcp_shutdown(a->ctx, *a->conn);
		return; /* still ours: we read until the client hangs up */
	case CHAT_CLOSE_NOW:
		actor_tcp_close(a->ctx, *a->conn);
		break;
	case CHAT_CLOSE_ABORT:
		actor_tcp_abort(a->ctx, *a->conn);
		break;
	}
	a->conn->id = 0;
}

static void env_shutdown_done(struct chat_env *e)
{
	actor_send(actor_ctx_system(aenv(e)->ctx), acceptor_ref, MSG_FANOUT_DONE, NULL, 0);
}

static const struct chat_env_ops actor_ops = {
    .alloc = env_alloc,
    .free = env_free,
    .send = env_send,
    .spawn_channel = env_spawn_channel,
    .keep = env_keep,
    .request = env_request,
    .reply = env_reply,
    .forward = env_forward,
    .monitor = env_monitor,
    .exit = env_exit,
    .now_ns = env_now,
    .timer = env_timer,
    .write = env_write,
    .set_sendq = env_set_sendq,
    .pause = env_pause,
    .close = env_close,
    .shutdown_done = env_shutdown_done,
};

#define ACTOR_ENV(name, ctx_, conn_, slow_)                                                        \
	struct actor_env name = {.ctx = (ctx_), .conn = (conn_)};                                  \
	name.env = (struct chat_env)                                                               \
	{                                                                                          \
		.ops = &actor_ops, .self = actor_self(ctx_), .worker = actor_ctx_worker(ctx_),     \
		.impl = &name, .slow = (slow_)                                                     \
	}

/* The slow-client rule's two library messages (srv.c, "Slow clients"), for every behaviour
 * that sends to sessions: true when `msg` was one of them and is handled. */
static bool slow_notice(struct chat_env *e, actor_msg_t *msg)
{
	if (msg->type == ACTOR_MSG_WRITABLE) {
		const actor_writable_t *w = actor_msg_data(msg);
		chat_slow_writable(e, w->actor);
		return true;
	}
	if (msg->type == ACTOR_MSG_DOWN) {
		const actor_down_t *d = actor_msg_data(msg);
		return chat_slow_down(e, d->actor);
	}
	return false;
}

/* ---------------------------------------------------------------------------------------------
 * Behaviours: each hands its messages to its part
 */

struct session_actor {
	struct sess *s;
	actor_conn_t conn;
	/* Sessions that refused our answers (srv.c, "Slow clients"). */
	struct chat_slow slow;
	bool full;   /* refused: over --max-clients */
	bool framed; /* the acceptor set the connection's framing (accept_one) */
};

/* The session gets lines: the connection cuts them (CR LF, LF and a lone CR each end one,
 * empty ones are dropped) and drops a line longer than the session takes, up to its end,
 * reporting it in its place (ACTOR_MSG_TCP_OVERLONG: 417). A client that sends IRC_NOEOL_MAX
 * bytes of one line without its end ends the input (ACTOR_MSG_TCP_CLOSED with -EMSGSIZE;
 * skip_max counts the bytes dropped): reading stops there, and the session can still write the
 * client an ERROR before it closes. */
static int frame_lines(actor_ctx_t *ctx, actor_conn_t conn)
{
	actor_tcp_framing_t f = {.kind = ACTOR_FRAME_LINE,
	                         .flags = ACTOR_FRAME_CR_ENDS | ACTOR_FRAME_SKIP_EMPTY |
	                                  ACTOR_FRAME_SKIP_OVERLONG,
	                         .max = (uint32_t)chat_line_max(&srv),
	                         .skip_max = IRC_NOEOL_MAX - 1};
	return actor_tcp_set_framing(ctx, conn, &f);
}

static void session_destroy(void *state)
{
	struct session_actor *a = state;
	sess_free(a->s);
	chat_slow_free(&a->slow);
	free(a);
}

static void session_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct session_actor *a = state;
	ACTOR_ENV(e, ctx, &a->conn, &a->slow);
	if (msg->type >= ACTOR_MSG_SYSTEM && slow_notice(&e.env, msg))
		return;

	switch (msg->type) {
	case ACTOR_MSG_TCP_ADOPTED: {
		int rc = a->framed ? 0 : frame_lines(ctx, a->conn);
		sess_start(a->s, &e.env, a->full);
		if (rc < 0)
			sess_closed(a->s, &e.env, rc);
		break;
	}
	case ACTOR_MSG_TCP_DATA: {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		sess_line(a->s, &e.env, (const char *)actor_tcp_data_bytes(msg), d->len);
		break;
	}
	case ACTOR_MSG_TCP_OVERLONG:
		sess_overlong(a->s, &e.env);
		break;
	case ACTOR_MSG_TCP_CLOSED: {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		sess_closed(a->s, &e.env, ev->error);
		break;
	}
	case ACTOR_MSG_TCP_DRAINED:
		sess_drained(a->s, &e.env);
		break;
	case ACTOR_MSG_TIMER: {
		const actor_timer_event_t *t = actor_msg_data(msg);
		sess_timer(a->s, &e.env, t->tag);
		break;
	}
	case ACTOR_MSG_REPLY: /* the answer to a request (env_request) */
		sess_handle(a->s, &e.env, msg);
		break;
	case ACTOR_MSG_DOWN: { /* a channel we watch (env_monitor) */
		const actor_down_t *d = actor_msg_data(msg);
		struct cm_down m = {.hdr = {.type = CM_DOWN,
		                            .size = sizeof(m) - sizeof(m.hdr),
		                            .sender = msg->sender},
		                    .who = d->actor,
		                    .reason = d->reason};
		sess_handle(a->s, &e.env, &m.hdr);
		break;
	}
	default:
		if (msg->type < ACTOR_MSG_SYSTEM)
			sess_handle(a->s, &e.env, msg);
		break;
	}
}

static void channel_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct channel_actor *a = state;
	ACTOR_ENV(e, ctx, NULL, &a->slow);
	if (msg->type < ACTOR_MSG_SYSTEM)
		chan_handle(a->c, &e.env, msg);
	else
		slow_notice(&e.env, msg);
}

/* Each start of a channel's actor: a restart (the seed has started one before) tells the
 * registry, which knows the failed one. */
static void channel_start(actor_ctx_t *ctx, void *state)
{
	struct channel_actor *a = state;
	ACTOR_ENV(e, ctx, NULL, &a->slow);
	actor_ref_t prev = a->seed->last;
	a->seed->last = actor_self(ctx);
	if (a->seed->starts++ > 0)
		chan_restarted(a->c, &e.env, prev);
}

/* A registry shard's or fan-out's state: its part, and its slow clients (srv.c). */
struct part_actor {
	void *part;
	struct chat_slow slow;
};

static void *part_new(void *part)
{
	struct part_actor *a = part != NULL ? calloc(1, sizeof(*a)) : NULL;
	if (a != NULL)
		a->part = part;
	return a;
}

static void registry_destroy(void *state)
{
	struct part_actor *a = state;
	if (a == NULL)
		return;
	registry_free(a->part);
	chat_slow_free(&a->slow);
	free(a);
}

/* Registry shards and fan-outs are children of supervisors (spawn_parts); the arg of their
 * child spec is their worker's index. */
static void *registry_make(void *arg)
{
	struct registry *r = registry_new(&srv, (unsigned)(uintptr_t)arg);
	struct part_actor *a = part_new(r);
	if (a == NULL)
		registry_free(r);
	return a;
}

static atomic_uint parts_started; /* first starts of registries and fan-outs */

/* Each start of a registry shard or fan-out puts its reference where the others find it
 * (chat_srv.registry); the last first start lets the acceptor listen, so that no session
 * sends to a part that has not started. */
static void part_started(actor_ctx_t *ctx, _Atomic(actor_ref_t) *slot)
{
	bool first = actor_ref_eq(atomic_load_explicit(slot, memory_order_relaxed), ACTOR_REF_NONE);
	atomic_store_explicit(slot, actor_self(ctx), memory_order_relaxed);
	if (first && atomic_fetch_add_explicit(&parts_started, 1, memory_order_relaxed) + 1 ==
	                 2 * srv.workers)
		actor_send(actor_ctx_system(ctx), acceptor_ref, MSG_LISTEN, NULL, 0);
}

static void registry_start(actor_ctx_t *ctx, void *state)
{
	(void)state;
	part_started(ctx, &srv.registry[actor_ctx_worker(ctx)]);
}

/* The channel supervisor's answer to env_spawn_channel, for the registry as CM_CHAN_STARTED. */
static void channel_started(struct registry *r, struct chat_env *e, actor_msg_t *msg)
{
	actor_reply_t *rep = actor_msg_data(msg);
	struct chan_seed *seed = (struct chan_seed *)(uintptr_t)rep->tag;
	actor_supervisor_answer_t *ans;
	struct cm_chan_started m = {.hdr = {.type = CM_CHAN_STARTED,
	                                    .size = sizeof(m) - sizeof(m.hdr),
	                                    .sender = msg->sender}};
	int rc = actor_supervisor_answer_of(msg, &ans);
	m.result = rc < 0 ? rc : ans->result;
	if (m.result == 0)
		m.ref = ans->child;
	snprintf(m.name, sizeof(m.name), "%s", seed->name);
	if (rc < 0 || ans->result < 0) /* the supervisor did not take it */
		seed_unref(seed);
	registry_handle(r, e, &m.hdr);
}

static void registry_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct part_actor *a = state;
	ACTOR_ENV(e, ctx, NULL, &a->slow);
	if (msg->type == ACTOR_MSG_REPLY)
		channel_started(a->part, &e.env, msg);
	else if (msg->type < ACTOR_MSG_SYSTEM)
		registry_handle(a->part, &e.env, msg);
	else
		slow_notice(&e.env, msg);
}

static void fanout_destroy(void *state)
{
	struct part_actor *a = state;
	if (a == NULL)
		return;
	fanout_free(a->part);
	chat_slow_free(&a->slow);
	free(a);
}

static void *fanout_make(void *arg)
{
	struct fanout *f = fanout_new(&srv, (unsigned)(uintptr_t)arg);
	struct part_actor *a = part_new(f);
	if (a == NULL)
		fanout_free(f);
	return a;
}

static void fanout_start(actor_ctx_t *ctx, void *state)
{
	(void)state;
	part_started(ctx, &srv.fanout[actor_ctx_worker(ctx)]);
}

static void fanout_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct part_actor *a = state;
	ACTOR_ENV(e, ctx, NULL, &a->slow);
	if (msg->type < ACTOR_MSG_SYSTEM)
		fanout_handle(a->part, &e.env, msg);
	else
		slow_notice(&e.env, msg);
}

/* ---------------------------------------------------------------------------------------------
 * The acceptor: listens on every worker, spawns a session on the worker of each connection,
 * and runs the shutdown.
 */

struct acceptor {
	actor_listener_t listener, tls_listener;
	bool listening, tls_listening;
	bool stopping;
	unsigned fanouts_done;
};

/* The peer's address as text: "10.0.0.1", "2001:db8::1"; IPv4-mapped IPv6 as IPv4. */
static void peer_host(const actor_tcp_accepted_t *a, char *buf, size_t cap)
{
	const struct sockaddr *sa = (const struct sockaddr *)a->peer;
	snprintf(buf, cap, "unknown");
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
		          (socklen_t)cap);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6))
			inet_ntop(AF_INET, &in6->s6_addr[12], buf, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, in6, buf, (socklen_t)cap);
	}
}

static void accept_one(actor_ctx_t *ctx, struct acceptor *acc, const actor_tcp_accepted_t *a)
{
	if (acc->stopping) {
		actor_tcp_abort(ctx, a->conn);
		return;
	}
	char host[INET6_ADDRSTRLEN];
	peer_host(a, host, sizeof(host));
	struct session_actor *s = calloc(1, sizeof(*s));
	unsigned n = atomic_fetch_add_explicit(&srv.conns, 1, memory_order_relaxed);
	if (s != NULL)
		s->s = sess_new(&srv, host);
	if (s == NULL || s->s == NULL) {
		atomic_fetch_sub_explicit(&srv.conns, 1, memory_order_relaxed);
		free(s);
		actor_tcp_abort(ctx, a->conn);
		return;
	}
	s->conn = a->conn;
	s->full = n >= srv.max_clients;
	/* Framed before its first byte is read. A connection on this worker is read from the
	 * handoff on, perhaps before its session runs, so it is framed here, while it is still
	 * ours; one on another worker is read only once its session has adopted it, and is
	 * framed then (ACTOR_MSG_TCP_ADOPTED). */
	s->framed = a->worker == actor_ctx_worker(ctx) && frame_lines(ctx, a->conn) == 0;
	/* Bounded: a session that falls this far behind is dropped as a slow client (srv.c). */
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED,
	                        .worker = a->worker,
	                        .name = "session",
	                        .destroy = session_destroy,
	                        .capacity = srv.session_queue};
	actor_ref_t ref;
	if (actor_spawn(actor_ctx_system(ctx), &o, session_fn, s, &ref) < 0) {
		session_destroy(s);
		actor_tcp_abort(ctx, a->conn);
		return;
	}
	if (actor_tcp_handoff(ctx, a->conn, ref) < 0) {
		actor_tcp_abort(ctx, a->conn);
		actor_stop(actor_ctx_system(ctx), ref);
	}
}

/* The plain listener, and the TLS one with --tls-port: both hand their connections here, and
 * a session does not tell them apart. */
static void start_listening(actor_ctx_t *ctx, struct acceptor *acc)
{
	actor_listen_opts_t o = {.host = opt.bind, .port = (uint16_t)opt.port, .per_worker = 1};
	listen_rc = actor_tcp_listen(ctx, &o, &acc->listener);
	if (listen_rc == 0 && tls != NULL) {
		acc->listening = true;
		o.port = (uint16_t)opt.tls_port;
		o.tls = tls;
		listen_rc = actor_tcp_listen(ctx, &o, &acc->tls_listener);
		listen_tls_failed = listen_rc < 0;
	}
	if (listen_rc < 0) {
		if (acc->listening)
			actor_tcp_listener_close(ctx, acc->listener);
		acc->listening = false;
		stop_system(actor_ctx_system(ctx));
		return;
	}
	acc->listening = true;
	acc->tls_listening = tls != NULL;
	uint16_t port = 0, tls_port = 0;
	actor_tcp_listener_port(ctx, acc->listener, &port);
	if (tls != NULL)
		actor_tcp_listener_port(ctx, acc->tls_listener, &tls_port);
	char tls_note[32] = "";
	if (tls != NULL)
		snprintf(tls_note, sizeof(tls_note), ", TLS port %u", tls_port);
	fprintf(stderr, "chat-server: listening on %s port %u%s (%u workers, %s, max %u clients)\n",
	        opt.bind, port, tls_note, srv.workers, actor_system_reactor(actor_ctx_system(ctx)),
	        srv.max_clients);
	printf("PORT %u\n", port);
	if (tls != NULL)
		printf("TLS_PORT %u\n", tls_port);
	fflush(stdout);
}

/* Stop accepting, then have every session say goodbye; when the fan-outs report their
 * sessions gone, stop the system. */
static void begin_shutdown(actor_ctx_t *ctx, struct acceptor *acc)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	if (acc->stopping)
		return;
	acc->stopping = true;
	fprintf(stderr, "chat-server: shutting down\n");
	if (acc->listening)
		actor_tcp_listener_close(ctx, acc->listener);
	if (acc->tls_listening)
		actor_tcp_listener_close(ctx, acc->tls_listener);
	acc->listening = acc->tls_listening = false;
	for (unsigned w = 0; w < srv.workers; w++)
		actor_send(sys, chat_fanout_at(&srv, w), CM_SHUTDOWN, NULL, 0);
}

static void acceptor_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct acceptor *acc = state;
	switch (msg->type) {
	case MSG_LISTEN:
		start_listening(ctx, acc);
		break;
	case ACTOR_MSG_TCP_ACCEPTED:
		accept_one(ctx, acc, actor_msg_data(msg));
		break;
	case CM_SHUTDOWN:
		begin_shutdown(ctx, acc);
		break;
	case MSG_FANOUT_DONE:
		if (++acc->fanouts_done == srv.workers)
			stop_system(actor_ctx_system(ctx));
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Signals: a thread waits for them, so the handler's work can use the whole API
 */

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	bool asked = false;
	for (;;) {
		int sig;
		if (!asked) {
			if (sigwait(set, &sig) != 0)
				continue;
		} else {
			struct timespec grace = {.tv_sec = SHUTDOWN_GRACE_MS / 1000,
			                         .tv_nsec = (SHUTDOWN_GRACE_MS % 1000) * 1000000L};
			sig = sigtimedwait(set, NULL, &grace);
			if (sig < 0 && errno == EINTR)
				continue;
			if (sig < 0) { /* clients that would not go: the runtime stops them */
				stop_system(the_sys);
				continue;
			}
		}
		if (sig == SIGUSR1) /* main is done with the system */
			return NULL;
		if (!asked) { /* the orderly way: every client gets ERROR first */
			asked = true;
			actor_send(the_sys, acceptor_ref, CM_SHUTDOWN, NULL, 0);
		} else { /* a second signal: stop now */
			stop_system(the_sys);
		}
	}
}

/* Messages the runtime could not deliver still hold references to shared lines. (A request
 * among them is answered -ESRCH by the library: its requester does not wait for ever.) */
static void dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	(void)arg;
	(void)to;
	if (msg->type < ACTOR_MSG_SYSTEM)
		chat_msg_release((actor_msg_t *)msg);
}

/* ---------------------------------------------------------------------------------------------
 * The descriptor limit
 */

/* Raises the soft descriptor limit to the hard one and sets the client cap below it. */
static void size_for_descriptors(void)
{
	struct rlimit r;
	unsigned long fds = 1024;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		if (r.rlim_cur < r.rlim_max) {
			r.rlim_cur = r.rlim_max;
			setrlimit(RLIMIT_NOFILE, &r);
			getrlimit(RLIMIT_NOFILE, &r);
		}
		fds = r.rlim_cur == RLIM_INFINITY ? 1ul << 20 : (unsigned long)r.rlim_cur;
	}
	unsigned long room = fds > 2 * CHAT_FD_RESERVE ? fds - CHAT_FD_RESERVE : fds / 2;
	if (opt.max_clients < 0)
		srv.max_clients = (unsigned)room;
	else if ((unsigned long)opt.max_clients > room) {
		fprintf(stderr,
		        "chat-server: --max-clients %ld is above what %lu descriptors allow; "
		        "using %lu\n",
		        opt.max_clients, fds, room);
		srv.max_clients = (unsigned)room;
	} else {
		srv.max_clients = (unsigned)opt.max_clients;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Main
 */

/* Restarts allowed per period, per supervisor: a part that fails more often than this is not
 * failing by chance, and its supervisor gives up (and its own supervisor restarts it, once
 * more, before the whole tree stops and the server with it). Channels fail alone, so theirs
 * allows more. */
#define PARTS_INTENSITY 3
#define CHANNELS_INTENSITY 10
#define SUPERVISOR_PERIOD_MS 5000

/* The supervision tree (README.md, "Failures"):
 *   chat (one_for_one)
 *     shard.W (one_for_all), per worker W
 *       channels (one_for_one): the channels whose names hash to W, started on demand
 *       registry: worker W's shard of the nicks and channel names
 *     fanout.W, per worker W
 * A shard's registry and channel supervisor fail together: a registry restarted without its
 * records must not meet channels it no longer knows (a JOIN would start a second #c), and
 * channels restarted by a new supervisor start empty, their members told. A fan-out holds
 * nothing that outlives a broadcast but the list of its sessions, so it restarts alone. */
static int spawn_parts(void)
{
	static struct acceptor acc;
	actor_spawn_opts_t ao = {.placement = ACTOR_PLACE_FIXED, .worker = 0, .name = "acceptor"};
	int rc = actor_spawn(the_sys, &ao, acceptor_fn, &acc, &acceptor_ref);
	if (rc < 0)
		return rc;

	unsigned n = srv.workers;
	actor_child_spec_t *top = calloc(2 * n, sizeof(*top));
	actor_child_spec_t *shard = calloc(2 * n, sizeof(*shard));
	actor_supervisor_opts_t *shard_opts = calloc(n, sizeof(*shard_opts));
	actor_supervisor_opts_t *chan_opts = calloc(n, sizeof(*chan_opts));
	char(*ids)[2][24] = calloc(n, sizeof(*ids));
	char(*names)[32] = calloc(n, sizeof(*names));
	rc = -ENOMEM;
	if (top == NULL || shard == NULL || shard_opts == NULL || chan_opts == NULL ||
	    ids == NULL || names == NULL)
		goto out;
	for (unsigned w = 0; w < n; w++) {
		actor_spawn_opts_t fixed = {.placement = ACTOR_PLACE_FIXED, .worker = w};
		chan_opts[w] = (actor_supervisor_opts_t){.strategy = ACTOR_ONE_FOR_ONE,
		                                         .intensity = CHANNELS_INTENSITY,
		                                         .period_ms = SUPERVISOR_PERIOD_MS};
		snprintf(names[w], sizeof(names[w]), CHANNELS_NAME, w);
		shard[2 * w] = (actor_child_spec_t){.id = "channels",
		                                    .spawn = fixed,
		                                    .supervisor = &chan_opts[w],
		                                    .register_as = names[w]};
		shard[2 * w].spawn.name = "channels";
		shard[2 * w + 1] = (actor_child_spec_t){.id = "registry",
		                                        .fn = registry_fn,
		                                        .make_state = registry_make,
		                                        .arg = (void *)(uintptr_t)w,
		                                        .spawn = fixed};
		shard[2 * w + 1].spawn.name = "registry";
		shard[2 * w + 1].spawn.destroy = registry_destroy;
		shard[2 * w + 1].spawn.start = registry_start;
		shard_opts[w] = (actor_supervisor_opts_t){.strategy = ACTOR_ONE_FOR_ALL,
		                                          .intensity = PARTS_INTENSITY,
		                                          .period_ms = SUPERVISOR_PERIOD_MS,
		                                          .children = &shard[2 * w],
		                                          .nchildren = 2};
		snprintf(ids[w][0], sizeof(ids[w][0]), "shard.%u", w);
		snprintf(ids[w][1], sizeof(ids[w][1]), "fanout.%u", w);
		top[2 * w] = (actor_child_spec_t){
		    .id = ids[w][0], .spawn = fixed, .supervisor = &shard_opts[w]};
		top[2 * w].spawn.name = "shard";
		top[2 * w + 1] = (actor_child_spec_t){.id = ids[w][1],
		                                      .fn = fanout_fn,
		                                      .make_state = fanout_make,
		                                      .arg = (void *)(uintptr_t)w,
		                                      .spawn = fixed};
		top[2 * w + 1].spawn.name = "fanout";
		top[2 * w + 1].spawn.destroy = fanout_destroy;
		top[2 * w + 1].spawn.start = fanout_start;
	}
	actor_supervisor_opts_t top_opts = {.strategy = ACTOR_ONE_FOR_ONE,
	                                    .intensity = PARTS_INTENSITY,
	                                    .period_ms = SUPERVISOR_PERIOD_MS,
	                                    .children = top,
	                                    .nchildren = 2 * n};
	actor_ref_t sup;
	/* The specs are copied, deeply: what is built here may go once this returns. The
	 * acceptor listens once every registry and fan-out has started (part_started). */
	rc = actor_supervisor_spawn(
	    the_sys, &(actor_spawn_opts_t){.placement = ACTOR_PLACE_FIXED, .name = "chat"},
	    &top_opts, &sup);
out:
	free(top);
	free(shard);
	free(shard_opts);
	free(chan_opts);
	free(ids);
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	chat_srv_init(&srv, 1);
	chat_options_parse(&opt, &srv, argc, argv);
	size_for_descriptors();
	if (opt.motd != NULL) {
		int rc = chat_srv_load_motd(&srv, opt.motd);
		if (rc < 0 && rc != -ENODATA) {
			fprintf(stderr, "chat-server: --motd %s: %s\n", opt.motd, strerror(-rc));
			return 1;
		}
	} else if (opt.motd_text != NULL) { /* the file's own lines: srv frees them */
		srv.motd = opt.motd_text;
		srv.motd_lines = opt.motd_text_lines;
		opt.motd_text = NULL;
		opt.motd_text_lines = 0;
	}
	srv.password = opt.password;
	if (opt.tls_port >= 0) {
		char why[512];
		int rc = actor_tls_create(
		    &(actor_tls_opts_t){.server = 1, .cert = opt.tls_cert, .key = opt.tls_key},
		    &tls, why, sizeof(why));
		if (rc < 0) {
			fprintf(stderr, "chat-server: TLS: %s\n", why);
			return 1;
		}
	}
	snprintf(srv.version, sizeof(srv.version), "libactor-chat-%s", actor_version());

	/* Block the signals before any thread starts: every thread inherits the mask, and only
	 * signal_thread takes them. */
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	actor_config_t cfg = {.workers = opt.workers,
	                      .pin = opt.pin,
	                      .reactor = opt.reactor,
	                      .dead_letter = dead_letter};
	int rc = actor_system_create(&cfg, &the_sys);
	if (rc < 0) {
		fprintf(stderr, "chat-server: cannot start the runtime (reactor %s): %s\n",
		        opt.reactor, strerror(-rc));
		return 1;
	}
	unsigned workers = actor_system_workers(the_sys);
	free((void *)srv.registry);
	free((void *)srv.fanout);
	srv.workers = workers;
	srv.registry = calloc(workers, sizeof(*srv.registry));
	srv.fanout = calloc(workers, sizeof(*srv.fanout));
	if (opt.cluster != NULL) {
		/* Before the parts: they send to the cluster actor from their first message. */
		rc = chat_cluster_start(
		    the_sys, &srv,
		    &(struct chat_cluster_opts){.servers = opt.cluster,
		                                .network = srv.network,
		                                .replicas = opt.cluster_replicas});
		if (rc < 0) {
			actor_system_free(the_sys);
			return 1;
		}
	}
	pthread_t sigthr;
	if (srv.registry == NULL || srv.fanout == NULL || spawn_parts() < 0 ||
	    pthread_create(&sigthr, NULL, signal_thread, &set) != 0) {
		fprintf(stderr, "chat-server: out of memory\n");
		actor_system_free(the_sys);
		return 1;
	}
	actor_system_run(the_sys);
	pthread_kill(sigthr, SIGUSR1);
	pthread_join(sigthr, NULL);
	actor_system_free(the_sys);
	chat_srv_fini(&srv);
	int status = 0;
	actor_tls_free(tls);
	if (listen_rc < 0) {
		fprintf(stderr, "chat-server: cannot listen on %s %sport %ld: %s\n", opt.bind,
		        listen_tls_failed ? "TLS " : "",
		        listen_tls_failed ? opt.tls_port : (long)opt.port,
		        listen_rc == -EADDRINUSE ? "the port is in use" : strerror(-listen_rc));
		status = 1;
	} else {
		fprintf(stderr, "chat-server: stopped\n");
	}
	chat_options_free(&opt);
	return status;
}
