/* bus.c: a synchronous, single-threaded struct chat_env for tests and fuzzing (see bus.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

enum kind { K_SESS, K_CHAN, K_REG, K_FAN };

struct entity {
	enum kind kind;
	void *state;
	unsigned worker;
	bool alive;
	bool exiting; /* asked to stop after the current message */
	int exit_reason;
	struct bus_client *client;
	actor_ref_t *watchers; /* K_CHAN: who gets a CM_DOWN when it stops (op_monitor) */
	unsigned nwatchers;
	actor_ref_t prev; /* K_CHAN: the actor it was restarted from, or none */
	bool stalled;     /* bus_stall: its messages wait in the queue */
	/* Its slow clients (srv.c), allocated apart: `ents` moves as it grows. */
	struct chat_slow *slow;
	/* A bounded mailbox, as the server spawns sessions (--session-queue) and as flow.c keeps
	 * it: `depth` user messages queued, at most `capacity` (0: unbounded); the senders
	 * refused since the last notice, each told once it is down to half. */
	uint32_t capacity, depth;
	actor_ref_t *refused;
	unsigned nrefused;
	unsigned handed[CM_SLOW + 1]; /* messages handed to it, by type */
};

struct bus_client {
	struct bus *bus;
	actor_ref_t ref;
	struct irc_buf in; /* what the client received, not yet read */
	char *read_copy;   /* the last bus_read */
	char line_copy[1024];
	size_t queued; /* bytes the client has not read, against the cap */
	size_t high;   /* the send queue cap */
	bool reading;  /* false: output stays queued */
	bool closed;
	bool failed; /* the connection failed: writes say -EPIPE */
	bool paused;
	bool hung_up;
	bool input_ended; /* the connection reads no more (skip_max), but still writes */
	/* What the client sent, cut into lines as the server's connection does (server.c), by the
	 * reference framer: the bytes of the unfinished line wait here. */
	struct irc_framer framer;
	char *partial;
	size_t partial_len;
};

/* Requests, as the library's request service has them (actor.h, "Requests"): a message may
 * carry one (qmsg.req), which its receiver answers, keeps, passes on, or fails; the answer
 * travels as a message (qmsg.answer) and reaches its requester only if the request is still
 * pending there: timed out, or its requester stopped, it is dropped and counted. */
struct breq {
	actor_ref_t requester;
	uint64_t tag;
	bool pending;
};

struct bkept { /* a request kept by `owner` (chat_env_ops.keep); handle = index + 1 */
	uint64_t req;
	actor_ref_t owner;
	bool live;
};

struct qmsg {
	actor_ref_t to;
	actor_msg_t *m;
	uint64_t req; /* the request the message carries (index + 1), or 0 */
	bool answer;  /* an ACTOR_MSG_REPLY on its way: its request decides whether it arrives */
};

struct timer {
	uint64_t at;
	actor_ref_t to;
	uint64_t tag;
	uint64_t seq;
	uint64_t req; /* nonzero: the timeout of that request, not a chat_env timer */
};

struct bus {
	struct chat_srv srv;
	struct entity *ents;
	size_t nents, capents;
	struct qmsg *q;
	size_t qhead, qlen, qcap;
	struct timer *timers;
	size_t ntimers, captimers;
	uint64_t timer_seq;
	uint64_t now;
	actor_ref_t current;
	actor_msg_t *current_msg;
	bool forwarded;
	uint64_t current_req; /* the request the message being handled carries, while open */
	struct breq *reqs;
	size_t nreqs, capreqs;
	struct bkept *kept;
	size_t nkept, capkept;
	unsigned replies_dropped;
	unsigned dead_letters;
	unsigned refusals;
	unsigned shutdown_done;
	struct bus_client **clients;
	size_t nclients;
	uint64_t shuffle; /* 0: one FIFO; else the state of the generator that picks senders */
	bool hold;        /* bus_run delivers nothing; bus_step does, one at a time */
};

/* Refs are entity indexes + 1, so that 0 stays "no actor". */
static struct entity *ent(struct bus *b, actor_ref_t r)
{
	if (r.id == 0 || r.id > b->nents)
		return NULL;
	return &b->ents[r.id - 1];
}

static actor_ref_t add_entity(struct bus *b, enum kind k, void *state, unsigned worker)
{
	if (b->nents == b->capents) {
		b->capents = b->capents ? b->capents * 2 : 64;
		b->ents = realloc(b->ents, b->capents * sizeof(*b->ents));
	}
	b->ents[b->nents++] = (struct entity){.kind = k,
	                                      .state = state,
	                                      .worker = worker,
	                                      .alive = true,
	                                      .slow = calloc(1, sizeof(struct chat_slow))};
	return (actor_ref_t){.id = b->nents};
}

/* What the library counts in a bounded mailbox: user messages. CM_DOWN and CM_CHAN_STARTED
 * stand in for the library's ACTOR_MSG_DOWN and a supervisor's ACTOR_MSG_REPLY here. */
static bool counted(const actor_msg_t *m)
{
	return m->type < ACTOR_MSG_SYSTEM && m->type != CM_DOWN && m->type != CM_CHAN_STARTED;
}

/* ---------------------------------------------------------------------------------------------
 * The environment
 */

static struct bus *bus_of(struct chat_env *e)
{
	return e->impl;
}

static struct bus_client *client_of(struct chat_env *e)
{
	struct entity *x = ent(bus_of(e), e->self);
	return x != NULL ? x->client : NULL;
}

static actor_msg_t *op_alloc(struct chat_env *e, size_t size, uint32_t type)
{
	(void)e;
	if (size < sizeof(actor_msg_t))
		return NULL;
	actor_msg_t *m = calloc(1, size);
	if (m == NULL)
		return NULL;
	m->type = type;
	m->size = (uint32_t)(size - sizeof(actor_msg_t));
	return m;
}

static void op_free(struct chat_env *e, actor_msg_t *m)
{
	(void)e;
	free(m);
}

/* A full mailbox refuses: nothing is queued, and a sender inside a behaviour (a live
 * entity) is told once there is room, once however many of its sends were refused. */
static int refuse(struct bus *b, struct entity *x, actor_ref_t sender)
{
	b->refusals++;
	struct entity *from = ent(b, sender);
	if (from == NULL || !from->alive)
		return -EAGAIN;
	for (unsigned i = 0; i < x->nrefused; i++)
		if (actor_ref_eq(x->refused[i], sender))
			return -EAGAIN;
	x->refused = realloc(x->refused, (x->nrefused + 1) * sizeof(*x->refused));
	x->refused[x->nrefused++] = sender;
	return -EAGAIN;
}

static void enqueue(struct bus *b, struct qmsg q)
{
	if (b->qlen == b->qcap) {
		size_t cap = b->qcap ? b->qcap * 2 : 256;
		struct qmsg *q = malloc(cap * sizeof(*q));
		for (size_t i = 0; i < b->qlen; i++)
			q[i] = b->q[(b->qhead + i) % b->qcap];
		free(b->q);
		b->q = q;
		b->qcap = cap;
		b->qhead = 0;
	}
	b->q[(b->qhead + b->qlen++) % b->qcap] = q;
}

static int send_req(struct chat_env *e, actor_ref_t to, actor_msg_t *m, uint64_t req)
{
	struct bus *b = bus_of(e);
	struct entity *x = ent(b, to);
	if (x == NULL || !x->alive)
		return -ESRCH;
	if (x->capacity != 0 && counted(m)) {
		if (x->depth >= x->capacity)
			return refuse(b, x, e->self);
		x->depth++;
	}
	if (m == b->current_msg)
		b->forwarded = true;
	m->sender = e->self;
	enqueue(b, (struct qmsg){.to = to, .m = m, .req = req});
	return 0;
}

static int op_send(struct chat_env *e, actor_ref_t to, actor_msg_t *m)
{
	return send_req(e, to, m, 0);
}

/* Sends request `req` its end from `from`: the answer (error 0, `ans` whole) or an error. */
static void answer(struct bus *b, uint64_t req, actor_ref_t from, int error, actor_msg_t *ans)
{
	size_t len = ans != NULL ? sizeof(*ans) + ans->size : 0;
	actor_msg_t *m = calloc(1, sizeof(*m) + sizeof(actor_reply_t) + len);
	if (m == NULL)
		abort();
	m->type = ACTOR_MSG_REPLY;
	m->size = (uint32_t)(sizeof(actor_reply_t) + len);
	m->sender = from;
	actor_reply_t *r = actor_msg_data(m);
	*r = (actor_reply_t){.request = {req}, .error = error, .len = (uint32_t)len};
	if (ans != NULL) {
		r->type = ans->type;
		memcpy(actor_reply_data(r), ans, len);
	}
	enqueue(b, (struct qmsg){.to = b->reqs[req - 1].requester, .m = m, .answer = true});
}

/* The request `kept` names for the running actor (0: the current message's), or 0. */
static uint64_t request_of(struct bus *b, actor_ref_t self, uint64_t kept)
{
	if (kept == CHAT_PLAIN)
		return 0;
	if (kept == 0)
		return actor_ref_eq(b->current, self) ? b->current_req : 0;
	if (kept > b->nkept || !b->kept[kept - 1].live ||
	    !actor_ref_eq(b->kept[kept - 1].owner, self))
		return 0;
	return b->kept[kept - 1].req;
}

static void request_done(struct bus *b, uint64_t kept)
{
	if (kept == 0)
		b->current_req = 0;
	else
		b->kept[kept - 1].live = false;
}

static void add_timer(struct bus *b, struct timer t)
{
	if (b->ntimers == b->captimers) {
		b->captimers = b->captimers ? b->captimers * 2 : 64;
		b->timers = realloc(b->timers, b->captimers * sizeof(*b->timers));
	}
	t.seq = b->timer_seq++;
	b->timers[b->ntimers++] = t;
}

static int op_request(struct chat_env *e, actor_ref_t to, actor_msg_t *m, uint64_t timeout_ns,
                      uint64_t tag)
{
	struct bus *b = bus_of(e);
	struct entity *x = ent(b, to);
	if (x == NULL || !x->alive)
		return -ESRCH;
	if (b->nreqs == b->capreqs) {
		b->capreqs = b->capreqs ? b->capreqs * 2 : 64;
		b->reqs = realloc(b->reqs, b->capreqs * sizeof(*b->reqs));
	}
	b->reqs[b->nreqs++] = (struct breq){.requester = e->self, .tag = tag, .pending = true};
	uint64_t req = b->nreqs;
	if (timeout_ns != 0)
		add_timer(b, (struct timer){.at = b->now + timeout_ns, .to = e->self, .req = req});
	return send_req(e, to, m, req);
}

static int op_reply(struct chat_env *e, uint64_t kept, actor_msg_t *ans)
{
	struct bus *b = bus_of(e);
	uint64_t req = request_of(b, e->self, kept);
	if (req == 0)
		return -EINVAL;
	answer(b, req, e->self, 0, ans);
	request_done(b, kept);
	free(ans);
	return 0;
}

static int op_forward(struct chat_env *e, uint64_t kept, actor_ref_t to, actor_msg_t *m)
{
	struct bus *b = bus_of(e);
	uint64_t req = request_of(b, e->self, kept);
	if (req == 0 && kept != 0 && kept != CHAT_PLAIN)
		return -EINVAL; /* a spent handle */
	int rc = send_req(e, to, m, req);
	if (rc == 0 && req != 0)
		request_done(b, kept);
	return rc;
}

/* As the server's channel supervisor: the channel starts, and its answer comes as a message. */
static int op_spawn_channel(struct chat_env *e, const char *name)
{
	struct bus *b = bus_of(e);
	struct chan *c = chan_new(&b->srv, name);
	if (c == NULL)
		return -ENOMEM;
	actor_ref_t ref = add_entity(b, K_CHAN, c, irc_hash(name) % b->srv.workers);
	struct cm_chan_started *m =
	    (struct cm_chan_started *)op_alloc(e, sizeof(*m), CM_CHAN_STARTED);
	m->result = 0;
	m->ref = ref;
	snprintf(m->name, sizeof(m->name), "%s", name);
	op_send(e, e->self, &m->hdr);
	return 0;
}

static uint64_t op_keep(struct chat_env *e)
{
	struct bus *b = bus_of(e);
	b->forwarded = true; /* not freed after the handler: the caller owns it */
	uint64_t req = request_of(b, e->self, 0);
	if (req == 0)
		return CHAT_PLAIN;
	if (b->nkept == b->capkept) {
		b->capkept = b->capkept ? b->capkept * 2 : 16;
		b->kept = realloc(b->kept, b->capkept * sizeof(*b->kept));
	}
	b->kept[b->nkept++] = (struct bkept){.req = req, .owner = e->self, .live = true};
	b->current_req = 0;
	return b->nkept;
}

static int op_monitor(struct chat_env *e, actor_ref_t target, bool on)
{
	struct entity *x = ent(bus_of(e), target);
	if (x == NULL || !x->alive)
		return -ESRCH; /* the server's would send a DOWN with NOPROC: no test needs it */
	if (on) {
		x->watchers = realloc(x->watchers, (x->nwatchers + 1) * sizeof(*x->watchers));
		x->watchers[x->nwatchers++] = e->self;
		return 0;
	}
	for (unsigned i = 0; i < x->nwatchers; i++)
		if (actor_ref_eq(x->watchers[i], e->self)) {
			x->watchers[i] = x->watchers[--x->nwatchers];
			break;
		}
	return 0;
}

static void op_exit(struct chat_env *e, int reason)
{
	struct entity *x = ent(bus_of(e), e->self);
	if (x != NULL) {
		x->exiting = true;
		x->exit_reason = reason;
	}
}

static uint64_t op_now(struct chat_env *e)
{
	return bus_of(e)->now;
}

static int op_timer(struct chat_env *e, uint64_t delay_ns, uint64_t tag)
{
	struct bus *b = bus_of(e);
	add_timer(b, (struct timer){.at = b->now + delay_ns, .to = e->self, .tag = tag});
	return 0;
}

static int op_write(struct chat_env *e, const void *data, size_t len)
{
	struct bus_client *c = client_of(e);
	if (c == NULL || c->closed || c->failed)
		return -EPIPE;
	if (c->queued > c->high)
		return -ENOBUFS;
	irc_buf_put(&c->in, data, len);
	if (!c->reading)
		c->queued += len;
	return 0;
}

static int op_set_sendq(struct chat_env *e, size_t high, size_t low)
{
	(void)low;
	struct bus_client *c = client_of(e);
	if (c != NULL)
		c->high = high;
	return 0;
}

static int op_pause(struct chat_env *e, bool pause)
{
	struct bus_client *c = client_of(e);
	if (c != NULL)
		c->paused = pause;
	return 0;
}

static void op_close(struct chat_env *e, enum chat_close how)
{
	(void)how;
	struct bus_client *c = client_of(e);
	if (c != NULL)
		c->closed = true;
}

static void op_shutdown_done(struct chat_env *e)
{
	bus_of(e)->shutdown_done++;
}

static const struct chat_env_ops bus_ops = {
    .alloc = op_alloc,
    .free = op_free,
    .send = op_send,
    .spawn_channel = op_spawn_channel,
    .keep = op_keep,
    .request = op_request,
    .reply = op_reply,
    .forward = op_forward,
    .monitor = op_monitor,
    .exit = op_exit,
    .now_ns = op_now,
    .timer = op_timer,
    .write = op_write,
    .set_sendq = op_set_sendq,
    .pause = op_pause,
    .close = op_close,
    .shutdown_done = op_shutdown_done,
};

static struct chat_env env_for(struct bus *b, actor_ref_t self)
{
	struct entity *x = ent(b, self);
	return (struct chat_env){.ops = &bus_ops,
	                         .self = self,
	                         .worker = x ? x->worker : 0,
	                         .impl = b,
	                         .slow = x ? x->slow : NULL};
}

/* ---------------------------------------------------------------------------------------------
 * Delivery
 */

/* The refused senders get ACTOR_MSG_WRITABLE from x: at the end of one of its turns once it
 * is down to half its capacity, or as it stops, room or not (flow.c, W1 and W3). */
static void notify_refused(struct bus *b, struct entity *x, bool stopping)
{
	if (x->nrefused == 0 || (!stopping && x->depth > x->capacity / 2))
		return;
	actor_ref_t self = {.id = (uint64_t)(x - b->ents) + 1};
	struct chat_env e = {.ops = NULL, .self = self, .impl = b};
	for (unsigned i = 0; i < x->nrefused; i++) {
		actor_msg_t *m =
		    op_alloc(NULL, sizeof(*m) + sizeof(actor_writable_t), ACTOR_MSG_WRITABLE);
		((actor_writable_t *)actor_msg_data(m))->actor = self;
		if (op_send(&e, x->refused[i], m) < 0)
			free(m); /* a sender that stopped: not sent */
	}
	free(x->refused);
	x->refused = NULL;
	x->nrefused = 0;
}

/* Stops the entity: its watchers get CM_DOWN with `reason`, as from ACTOR_MSG_DOWN, and its
 * refused senders their notices. */
static void destroy_with(struct bus *b, struct entity *x, int reason)
{
	notify_refused(b, x, true);
	actor_ref_t self = {.id = (uint64_t)(x - b->ents) + 1};
	struct chat_env e = {.ops = NULL, .self = self, .impl = b};
	for (unsigned i = 0; i < x->nwatchers; i++) {
		struct cm_down *d = (struct cm_down *)op_alloc(NULL, sizeof(*d), CM_DOWN);
		d->who = self;
		d->reason = reason;
		if (op_send(&e, x->watchers[i], &d->hdr) < 0)
			free(d);
	}
	free(x->watchers);
	x->watchers = NULL;
	x->nwatchers = 0;
}

/* As the request service at a stop: the requests `self` kept are answered -ESRCH; those it
 * made end (their answers will be dropped). */
static void requests_stopped(struct bus *b, actor_ref_t self)
{
	for (size_t i = 0; i < b->nkept; i++)
		if (b->kept[i].live && actor_ref_eq(b->kept[i].owner, self)) {
			b->kept[i].live = false;
			answer(b, b->kept[i].req, self, -ESRCH, NULL);
		}
	for (size_t i = 0; i < b->nreqs; i++)
		if (actor_ref_eq(b->reqs[i].requester, self))
			b->reqs[i].pending = false;
}

static void destroy(struct entity *x)
{
	switch (x->kind) {
	case K_SESS:
		sess_free(x->state);
		break;
	case K_CHAN:
		chan_free(x->state);
		break;
	case K_REG:
		registry_free(x->state);
		break;
	case K_FAN:
		fanout_free(x->state);
		break;
	}
	chat_slow_free(x->slow);
	free(x->slow);
	x->slow = NULL;
	x->state = NULL;
	x->alive = false;
}

static void restart_channel(struct bus *b, size_t i, int reason);

/* Ends a call of the entity's behaviour: it stops if it asked to, else its turn is over and
 * its refused senders may be told there is room. */
static void finish_call(struct bus *b, actor_ref_t self)
{
	struct entity *x = ent(b, self);
	if (b->current_req != 0) /* neither answered, kept nor passed on */
		answer(b, b->current_req, self, x->exiting ? -ESRCH : -ENOMSG, NULL);
	b->current_req = 0;
	b->current = ACTOR_REF_NONE;
	if (x->exiting && x->alive && x->kind == K_CHAN && x->exit_reason != ACTOR_REASON_NORMAL) {
		restart_channel(b, (size_t)(self.id - 1),
		                x->exit_reason); /* its supervisor's part */
	} else if (x->exiting && x->alive) {
		destroy_with(b, x, x->exit_reason);
		requests_stopped(b, self);
		destroy(x);
	} else if (x->alive) {
		notify_refused(b, x, false);
	}
}

/* The slow-client rule's library messages, as server.c's behaviours take them: true when
 * handled. Unclaimed, a CM_DOWN goes on to a session (its channels'), and to nobody else. */
static bool slow_notice(struct entity *x, struct chat_env *e, actor_msg_t *m)
{
	if (m->type == ACTOR_MSG_WRITABLE) {
		chat_slow_writable(e, ((actor_writable_t *)actor_msg_data(m))->actor);
		return true;
	}
	if (m->type == CM_DOWN)
		return chat_slow_down(e, ((struct cm_down *)m)->who) || x->kind != K_SESS;
	return false;
}

static void deliver(struct bus *b, struct qmsg q)
{
	actor_ref_t to = q.to;
	actor_msg_t *m = q.m;
	struct entity *x = ent(b, to);
	if (!q.answer && x != NULL && x->capacity != 0 && counted(m))
		x->depth--; /* off the count as it is popped (flow.c), delivered or not */
	if (q.answer) { /* only to a request still pending */
		actor_reply_t *r = actor_msg_data(m);
		struct breq *rq = &b->reqs[r->request.id - 1];
		if (!rq->pending || x == NULL || !x->alive) {
			b->replies_dropped++;
			free(m);
			return;
		}
		rq->pending = false;
		r->tag = rq->tag;
	} else if (x == NULL || !x->alive) {
		b->dead_letters++;
		if (q.req != 0) /* its requester hears of it at once, as from the library */
			answer(b, q.req, to, -ESRCH, NULL);
		chat_msg_release(m);
		free(m);
		return;
	}
	struct chat_env e = env_for(b, to);
	b->current = to;
	b->current_msg = m;
	b->forwarded = false;
	b->current_req = q.req;
	if (m->type <= CM_SLOW)
		x->handed[m->type]++;
	if (slow_notice(x, &e, m)) {
		b->current_msg = NULL;
		free(m);
		finish_call(b, to);
		return;
	}
	switch (x->kind) {
	case K_SESS:
		sess_handle(x->state, &e, m);
		break;
	case K_CHAN:
		chan_handle(x->state, &e, m);
		break;
	case K_REG:
		registry_handle(x->state, &e, m);
		break;
	case K_FAN:
		fanout_handle(x->state, &e, m);
		break;
	}
	b->current_msg = NULL;
	if (!b->forwarded)
		free(m);
	finish_call(b, to);
}

void bus_shuffle(struct bus *b, uint64_t seed)
{
	b->shuffle = seed;
}

/* In shuffle mode, the queue position of the next message: the oldest message of a sender
 * picked at random, so each sender's messages keep their order and different senders'
 * messages interleave in any order, as on a real system. */
static bool stalled(struct bus *b, size_t i)
{
	struct entity *x = ent(b, b->q[(b->qhead + i) % b->qcap].to);
	return x != NULL && x->stalled;
}

static size_t pick(struct bus *b)
{
	if (b->shuffle == 0) {
		size_t i = 0;
		while (i < b->qlen && stalled(b, i))
			i++;
		return i;
	}
	b->shuffle ^= b->shuffle << 13; /* xorshift64 */
	b->shuffle ^= b->shuffle >> 7;
	b->shuffle ^= b->shuffle << 17;
	size_t j = (size_t)(b->shuffle % b->qlen);
	actor_ref_t sender = b->q[(b->qhead + j) % b->qcap].m->sender;
	for (size_t i = 0; i < j; i++)
		if (actor_ref_eq(b->q[(b->qhead + i) % b->qcap].m->sender, sender))
			return i;
	if (stalled(b, j)) /* rare in tests that shuffle: the oldest deliverable one */
		for (j = 0; j < b->qlen && stalled(b, j); j++)
			;
	return j;
}

bool bus_step(struct bus *b)
{
	if (b->qlen == 0)
		return false;
	size_t i = pick(b);
	if (i == b->qlen) /* everything queued is for stalled actors */
		return false;
	struct qmsg q = b->q[(b->qhead + i) % b->qcap];
	for (; i > 0; i--) /* close the gap, keeping the others' order */
		b->q[(b->qhead + i) % b->qcap] = b->q[(b->qhead + i - 1) % b->qcap];
	b->qhead = (b->qhead + 1) % b->qcap;
	b->qlen--;
	deliver(b, q);
	return true;
}

void bus_hold(struct bus *b, bool hold)
{
	b->hold = hold;
}

void bus_run(struct bus *b)
{
	while (!b->hold && bus_step(b))
		;
}

void bus_advance_ms(struct bus *b, uint64_t ms)
{
	uint64_t end = b->now + ms * 1000000ull;
	for (;;) {
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < b->ntimers; i++)
			if (b->timers[i].at <= end &&
			    (best == SIZE_MAX || b->timers[i].at < b->timers[best].at ||
			     (b->timers[i].at == b->timers[best].at &&
			      b->timers[i].seq < b->timers[best].seq)))
				best = i;
		if (best == SIZE_MAX)
			break;
		struct timer t = b->timers[best];
		b->timers[best] = b->timers[--b->ntimers];
		if (t.at > b->now)
			b->now = t.at;
		if (t.req != 0) { /* a request's timeout, on its requester's side */
			struct breq *rq = &b->reqs[t.req - 1];
			if (rq->pending) {
				rq->pending = false;
				actor_msg_t *m = calloc(1, sizeof(*m) + sizeof(actor_reply_t));
				m->type = ACTOR_MSG_REPLY;
				m->size = sizeof(actor_reply_t);
				*(actor_reply_t *)actor_msg_data(m) = (actor_reply_t){
				    .request = {t.req}, .tag = rq->tag, .error = -ETIMEDOUT};
				enqueue(b, (struct qmsg){.to = rq->requester, .m = m});
				bus_run(b);
			}
			continue;
		}
		struct entity *x = ent(b, t.to);
		if (x == NULL || !x->alive || x->kind != K_SESS)
			continue;
		struct chat_env e = env_for(b, t.to);
		b->current = t.to;
		sess_timer(x->state, &e, t.tag);
		finish_call(b, t.to);
		bus_run(b);
	}
	b->now = end;
}

/* ---------------------------------------------------------------------------------------------
 * The server and its clients
 */

struct bus *bus_new(unsigned workers)
{
	struct bus *b = calloc(1, sizeof(*b));
	chat_srv_init(&b->srv, workers);
	snprintf(b->srv.name, sizeof(b->srv.name), "irc.test");
	snprintf(b->srv.created, sizeof(b->srv.created), "today");
	b->srv.flood_rate = 0; /* tests that want flood control turn it on */
	b->now = 1000000000ull;
	for (unsigned w = 0; w < workers; w++) {
		b->srv.registry[w] = add_entity(b, K_REG, registry_new(&b->srv, w), w);
		b->srv.fanout[w] = add_entity(b, K_FAN, fanout_new(&b->srv, w), w);
	}
	return b;
}

struct chat_srv *bus_srv(struct bus *b)
{
	return &b->srv;
}

unsigned bus_free(struct bus *b)
{
	bus_run(b);
	for (size_t i = 0; i < b->nents; i++) {
		if (b->ents[i].alive)
			destroy(&b->ents[i]);
		free(b->ents[i].watchers);
		free(b->ents[i].refused);
	}
	for (size_t i = 0; i < b->nclients; i++) {
		irc_buf_free(&b->clients[i]->in);
		free(b->clients[i]->read_copy);
		free(b->clients[i]->partial);
		free(b->clients[i]);
	}
	unsigned dead = b->dead_letters;
	free(b->clients);
	free(b->ents);
	free(b->q);
	free(b->timers);
	free(b->reqs);
	free(b->kept);
	chat_srv_fini(&b->srv);
	free(b);
	return dead;
}

struct bus_client *bus_connect(struct bus *b, unsigned worker, const char *host, bool full)
{
	struct bus_client *c = calloc(1, sizeof(*c));
	c->bus = b;
	c->reading = true;
	c->high = ACTOR_TCP_HIGH_WATER;
	irc_framer_init(&c->framer, chat_line_max(&b->srv) + 2, IRC_NOEOL_MAX);
	b->clients = realloc(b->clients, (b->nclients + 1) * sizeof(*b->clients));
	b->clients[b->nclients++] = c;
	struct sess *s = sess_new(&b->srv, host);
	c->ref = add_entity(b, K_SESS, s, worker % b->srv.workers);
	ent(b, c->ref)->client = c;
	ent(b, c->ref)->capacity = b->srv.session_queue; /* as the server's acceptor */
	atomic_fetch_add_explicit(&b->srv.conns, 1, memory_order_relaxed);
	struct chat_env e = env_for(b, c->ref);
	b->current = c->ref;
	sess_start(s, &e, full);
	finish_call(b, c->ref);
	bus_run(b);
	return c;
}

/* Hands the session one line, an overlong line's place (line NULL), or the end of input that
 * a line without an end brings (CLOSED with -EMSGSIZE), as the server's connection would. */
static void to_session(struct bus_client *c, const char *line, size_t len, bool fail)
{
	struct bus *b = c->bus;
	struct entity *x = ent(b, c->ref);
	struct chat_env e = env_for(b, c->ref);
	b->current = c->ref;
	if (fail)
		sess_closed(x->state, &e, -EMSGSIZE);
	else if (line == NULL)
		sess_overlong(x->state, &e);
	else
		sess_line(x->state, &e, line, len);
	finish_call(b, c->ref);
}

/* The bytes arrive as one read would bring them: every line they end goes to the session,
 * each as its own message, before any other message is delivered. */
void bus_send(struct bus_client *c, const char *data, size_t len)
{
	struct bus *b = c->bus;
	if (!ent(b, c->ref)->alive || c->hung_up)
		return;
	if (len > 0) {
		char *grown = realloc(c->partial, c->partial_len + len);
		if (grown == NULL)
			abort();
		memcpy(grown + c->partial_len, data, len);
		c->partial = grown;
		c->partial_len += len;
	}
	char *p = c->partial;
	size_t off = 0;
	while (c->partial_len > 0 && ent(b, c->ref)->alive && !c->failed && !c->input_ended) {
		size_t used, lo, ll;
		enum irc_frame r =
		    irc_frame_next(&c->framer, p + off, c->partial_len - off, &used, &lo, &ll);
		const char *at = p + off;
		off += used;
		if (r == IRC_FRAME_MORE)
			break;
		if (r == IRC_FRAME_NOEOL) /* the connection reads no more (skip_max) */
			c->input_ended = true;
		to_session(c, r == IRC_FRAME_LINE ? at + lo : NULL, ll, r == IRC_FRAME_NOEOL);
	}
	if (c->failed || c->input_ended)
		off = c->partial_len;
	if (off > 0) {
		memmove(p, p + off, c->partial_len - off);
		c->partial_len -= off;
	}
	bus_run(b);
}

void bus_sendf(struct bus_client *c, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	bus_send(c, buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

struct bus_client *bus_client_new(struct bus *b, unsigned worker, const char *nick)
{
	struct bus_client *c = bus_connect(b, worker, "127.0.0.1", false);
	bus_sendf(c, "NICK %s\r\nUSER %s 0 * :Real %s\r\n", nick, nick, nick);
	bus_read(c);
	return c;
}

const char *bus_read(struct bus_client *c)
{
	free(c->read_copy);
	c->read_copy = malloc(c->in.len + 1);
	memcpy(c->read_copy, c->in.data ? c->in.data : "", c->in.len);
	c->read_copy[c->in.len] = '\0';
	irc_buf_reset(&c->in);
	c->queued = 0;
	return c->read_copy;
}

const char *bus_peek(struct bus_client *c)
{
	free(c->read_copy);
	c->read_copy = malloc(c->in.len + 1);
	memcpy(c->read_copy, c->in.data ? c->in.data : "", c->in.len);
	c->read_copy[c->in.len] = '\0';
	return c->read_copy;
}

/* Calls fn on each line received since the last read; stops when it returns true. */
static bool each_line(struct bus_client *c,
                      bool (*fn)(struct bus_client *, const char *, size_t, const void *),
                      const void *arg)
{
	size_t off = 0;
	while (off < c->in.len) {
		const char *p = c->in.data + off;
		const char *nl = memchr(p, '\n', c->in.len - off);
		size_t len = nl ? (size_t)(nl - p) + 1 : c->in.len - off;
		if (fn(c, p, len, arg))
			return true;
		off += len;
	}
	return false;
}

static bool line_has(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(p + i, needle, n) == 0)
			return true;
	return false;
}

static bool copy_if(struct bus_client *c, const char *p, size_t len, const void *needle)
{
	if (!line_has(p, len, needle))
		return false;
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (len >= sizeof(c->line_copy))
		len = sizeof(c->line_copy) - 1;
	memcpy(c->line_copy, p, len);
	c->line_copy[len] = '\0';
	return true;
}

const char *bus_line_with(struct bus_client *c, const char *needle)
{
	return each_line(c, copy_if, needle) ? c->line_copy : NULL;
}

struct count_arg {
	const char *needle;
	unsigned *n;
};

static bool count_if(struct bus_client *c, const char *p, size_t len, const void *arg)
{
	(void)c;
	const struct count_arg *a = arg;
	if (line_has(p, len, a->needle))
		(*a->n)++;
	return false;
}

unsigned bus_count(struct bus_client *c, const char *needle)
{
	unsigned n = 0;
	struct count_arg a = {needle, &n};
	each_line(c, count_if, &a);
	return n;
}

void bus_stop_reading(struct bus_client *c, bool stop)
{
	c->reading = !stop;
	if (!stop)
		c->queued = 0;
}

void bus_hangup(struct bus_client *c, int error)
{
	struct bus *b = c->bus;
	struct entity *x = ent(b, c->ref);
	c->hung_up = true;
	if (!x->alive)
		return;
	struct chat_env e = env_for(b, c->ref);
	b->current = c->ref;
	sess_closed(x->state, &e, error);
	finish_call(b, c->ref);
	bus_run(b);
}

bool bus_closed(struct bus_client *c)
{
	return c->closed;
}

bool bus_exited(struct bus_client *c)
{
	return !ent(c->bus, c->ref)->alive;
}

bool bus_paused(struct bus_client *c)
{
	return c->paused;
}

bool bus_shutdown(struct bus *b)
{
	for (unsigned w = 0; w < b->srv.workers; w++) {
		actor_msg_t *m = op_alloc(NULL, sizeof(*m), CM_SHUTDOWN);
		struct chat_env e = env_for(b, ACTOR_REF_NONE);
		op_send(&e, chat_fanout_at(&b->srv, w), m);
	}
	bus_run(b);
	return b->shutdown_done == b->srv.workers;
}

static unsigned count_kind(struct bus *b, enum kind k)
{
	unsigned n = 0;
	for (size_t i = 0; i < b->nents; i++)
		if (b->ents[i].alive && b->ents[i].kind == k)
			n++;
	return n;
}

unsigned bus_handed(struct bus_client *c, uint32_t type)
{
	return type <= CM_SLOW ? ent(c->bus, c->ref)->handed[type] : 0;
}

unsigned bus_refusals(struct bus *b)
{
	return b->refusals;
}

unsigned bus_slow_clients(struct bus *b)
{
	unsigned n = 0;
	for (size_t i = 0; i < b->nents; i++)
		if (b->ents[i].alive)
			n += (unsigned)b->ents[i].slow->map.n;
	return n;
}

unsigned bus_channels(struct bus *b)
{
	return count_kind(b, K_CHAN);
}

unsigned bus_sessions(struct bus *b)
{
	return count_kind(b, K_SESS);
}

/* As a channel's actor that fails: it stops with an abnormal reason (its watchers get CM_DOWN
 * with it, the messages queued for it are dead-lettered as they come), and its supervisor
 * starts a new, empty one from the same spec, which runs its start (chan_restarted). */
bool bus_fail_channel(struct bus *b, const char *name)
{
	actor_ref_t ref = bus_channel_ref(b, name);
	if (actor_ref_is_none(ref))
		return false;
	restart_channel(b, (size_t)(ref.id - 1), ACTOR_REASON_KILLED);
	bus_run(b);
	return true;
}

static void restart_channel(struct bus *b, size_t i, int reason)
{
	struct entity *x = &b->ents[i];
	actor_ref_t old = {.id = i + 1};
	unsigned worker = x->worker;
	char name[IRC_CHANLEN + 1];
	snprintf(name, sizeof(name), "%s", chan_name(x->state));
	destroy_with(b, x, reason);
	requests_stopped(b, old);
	destroy(x);
	struct chan *c = chan_new(&b->srv, name);
	actor_ref_t ref = add_entity(b, K_CHAN, c, worker); /* may move b->ents */
	struct chat_env e = env_for(b, ref);
	actor_ref_t outer = b->current;
	b->current = ref;
	chan_restarted(c, &e, old);
	finish_call(b, ref);
	b->current = outer;
}

void bus_stall(struct bus *b, actor_ref_t who, bool stall)
{
	struct entity *x = ent(b, who);
	if (x != NULL)
		x->stalled = stall;
	if (!stall)
		bus_run(b);
}

actor_ref_t bus_channel_ref(struct bus *b, const char *name)
{
	for (size_t i = 0; i < b->nents; i++) {
		struct entity *x = &b->ents[i];
		if (x->alive && x->kind == K_CHAN && irc_casecmp(chan_name(x->state), name) == 0)
			return (actor_ref_t){.id = i + 1};
	}
	return ACTOR_REF_NONE;
}

unsigned bus_replies_dropped(struct bus *b)
{
	return b->replies_dropped;
}
