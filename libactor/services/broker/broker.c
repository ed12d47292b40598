/* broker.c: the broker service: one NATS connection per system (libnats), its state and
 * watchers, subscriptions delivered as messages, and publishes (actor.h, "Broker: NATS and
 * JetStream"; broker.h has who touches what; js.c the requests and JetStream).
 *
 * Why libnats's threads deliver and no worker reads the socket. libnats 3.4 can be driven by an
 * external event loop (natsOptions_SetEventLoop), but that only moves the socket's reads: every
 * message callback still runs on a delivery thread of the library, connection events on
 * another, reconnection on a third, and the loop's callbacks come from those threads too. So the
 * connection is libnats's own, with its global delivery pool (one thread for every
 * subscription, in order per subscription), and each callback does one thing: copy the message
 * into an actor message and send it to its subscriber, as any thread outside the pool may. No
 * behaviour runs on a library thread, and no library thread waits for an actor.
 *
 * Flow toward a subscriber. The library's messages are never refused by a bounded mailbox, so a
 * subscription counts its own: `pending` messages sent and not yet received; past max_pending
 * the callback drops and counts, as NATS core does for a slow consumer (a JetStream consumer's
 * message dropped so is delivered again after its ack wait). Flow toward the servers: a publish
 * goes into libnats's buffer; while the connection is down that buffer is bounded (pending_max)
 * and a publish past it is refused with -EAGAIN and a notice once reconnected.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/broker/broker.h"
#include "services/owners.h"

/* An actor with subscriptions on this worker. */
struct sub_owner {
	actor_ref_t ref;
	struct bsub *subs;
};
_Static_assert(offsetof(struct sub_owner, ref) == 0, "an owners.h record starts with ref");

struct broker_worker {
	struct actor__table subs; /* struct bsub by handle */
	struct actor__owners owners;
};

static struct broker_worker *broker_worker_of(struct actor_worker *w)
{
	return w->svc[SVC_BROKER];
}

/* The connection's state changed: every watcher hears of it (lock held). Watchers that have
 * stopped are dropped. */
static void notify_state(struct broker *b, int state)
{
	actor_broker_status_t st = {.state = state};
	if (state == BROKER_UP)
		(void)natsConnection_GetConnectedUrl(b->nc, st.server, sizeof(st.server));
	for (uint32_t i = 0; i < b->nwatchers;) {
		int rc = actor__send_internal(b->sys, b->watchers[i], ACTOR_REF_NONE,
		                              ACTOR_MSG_BROKER_STATUS, &st, sizeof(st));
		if (rc == -ESRCH)
			b->watchers[i] = b->watchers[--b->nwatchers];
		else
			i++;
	}
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct broker *b = closure;
	if (!actor__broker_enter(b))
		return;
	pthread_mutex_lock(&b->lock);
	if (atomic_load(&b->state) == BROKER_UP) {
		atomic_store_explicit(&b->state, BROKER_DOWN, memory_order_release);
		notify_state(b, BROKER_DOWN);
	}
	pthread_mutex_unlock(&b->lock);
	actor__broker_leave(b);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct broker *b = closure;
	if (!actor__broker_enter(b))
		return;
	pthread_mutex_lock(&b->lock);
	atomic_store_explicit(&b->state, BROKER_UP, memory_order_release);
	notify_state(b, BROKER_UP);
	actor__broker_notify_room(b);
	pthread_mutex_unlock(&b->lock);
	actor__broker_leave(b);
}

/* The last event of the connection: its reference goes. */
static void on_closed(natsConnection *nc, void *closure)
{
	(void)nc;
	struct broker *b = closure;
	if (actor__broker_enter(b)) {
		pthread_mutex_lock(&b->lock);
		atomic_store_explicit(&b->state, BROKER_CLOSED, memory_order_release);
		notify_state(b, BROKER_CLOSED);
		actor__broker_notify_room(b);
		pthread_mutex_unlock(&b->lock);
		actor__broker_js_closed(b);
		actor__broker_leave(b);
	}
	actor__broker_unref(b);
}

/* ---------------------------------------------------------------------------------------------
 * Connecting and closing
 */

int actor_broker_connect(actor_system_t *sys, const actor_broker_opts_t *o)
{
	if (sys == NULL || o == NULL || o->servers == NULL || o->pending_max > INT32_MAX ||
	    (o->write_at_once != 0 && o->write_at_once != 1))
		return -EINVAL;
	if (actor__self_worker(sys) != NULL)
		return -EDEADLK;
	struct broker *b = actor__broker_of(sys);
	char *copy, **servers;
	int nservers;
	int rc = actor__broker_split(o->servers, &copy, &servers, &nservers);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&b->lock);
	if (b->ever) {
		pthread_mutex_unlock(&b->lock);
		free(copy);
		free(servers);
		return -EALREADY;
	}
	b->ever = true;
	pthread_mutex_unlock(&b->lock);

	natsOptions *opts = NULL;
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, (const char **)servers, nservers);
	if (s == NATS_OK)
		s = natsOptions_SetName(opts, o->name ? o->name : "libactor");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts,
		                           o->connect_timeout_ms ? o->connect_timeout_ms : 2000);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts,
		                                 o->reconnect_wait_ms ? o->reconnect_wait_ms : 500);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts,
		                                o->max_reconnect ? (int)o->max_reconnect : -1);
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(opts, o->write_deadline_ms ? o->write_deadline_ms
		                                                            : 2000);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(opts, o->pending_max ? (int)o->pending_max
		                                                         : 8 * 1024 * 1024);
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(opts, true);
	if (s == NATS_OK && o->write_at_once)
		s = natsOptions_SetSendAsap(opts, true);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(opts, on_disconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(opts, on_reconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(opts, on_closed, b);
	free(copy);
	free(servers);
	if (s != NATS_OK) {
		natsOptions_Destroy(opts);
		return actor__broker_status(s);
	}
	b->js_max_inflight = o->js_max_inflight ? o->js_max_inflight : 4096;
	pthread_mutex_lock(&b->lock);
	b->refs++; /* the connection's, until its closed event */
	pthread_mutex_unlock(&b->lock);
	s = natsConnection_Connect(&b->nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		b->nc = NULL;
		pthread_mutex_lock(&b->lock);
		b->refs--;
		pthread_mutex_unlock(&b->lock);
		rc = actor__broker_status(s);
		if (rc == -ETIMEDOUT || rc == -ENOTCONN)
			rc = -ECONNREFUSED;
		return rc;
	}
	rc = actor__broker_js_start(b);
	if (rc < 0) {
		natsConnection_Close(b->nc);
		return rc;
	}
	atomic_store_explicit(&b->state, BROKER_UP, memory_order_release);
	return 0;
}

/* Waits until only the system's reference is left, for at most `ms`: false if it ran out. */
static bool wait_refs(struct broker *b, unsigned ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	int rc = 0;
	while (b->refs > 1 && rc == 0)
		rc = pthread_cond_timedwait(&b->cond, &b->lock, &until);
	bool done = b->refs <= 1;
	pthread_mutex_unlock(&b->lock);
	return done;
}

int actor_broker_close(actor_system_t *sys, uint32_t timeout_ms)
{
	struct broker *b;
	int rc = actor__broker_outside(sys, &b);
	if (rc < 0)
		return rc;
	if (timeout_ms > 0)
		(void)natsConnection_FlushTimeout(b->nc, timeout_ms);
	natsConnection_Close(b->nc);
	/* Closed for the callers from now on; watchers hear of it from the closed event. */
	atomic_store_explicit(&b->state, BROKER_CLOSED, memory_order_release);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Watching
 */

int actor_broker_watch(actor_ctx_t *ctx, int on)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || (on != 0 && on != 1))
		return -EINVAL;
	struct broker *b = actor__broker_of(w->sys);
	pthread_mutex_lock(&b->lock);
	int st = atomic_load(&b->state), rc = 0;
	if (st == BROKER_NONE) {
		rc = -ENOTCONN;
	} else if (on == 0) {
		actor__broker_ref_del(b->watchers, &b->nwatchers, ctx->actor->ref);
	} else {
		rc = actor__broker_ref_add(&b->watchers, &b->nwatchers, &b->capwatchers,
		                           ctx->actor->ref);
		if (rc == 0) {
			actor_broker_status_t s = {.state = st};
			if (st == BROKER_UP)
				(void)natsConnection_GetConnectedUrl(b->nc, s.server,
				                                     sizeof(s.server));
			(void)actor__send_internal(w->sys, ctx->actor->ref, ACTOR_REF_NONE,
			                           ACTOR_MSG_BROKER_STATUS, &s, sizeof(s));
		}
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Subscriptions
 */

/* Copies `msg` into a message for s's owner and sends it: 0, or copy_msg's error (-ENOMEM,
 * -EMSGSIZE: nothing sent). A send refused because the owner has stopped counts as sent. The
 * caller holds a reference to `s` (its libnats subscription's), so the unref here is never the
 * last: ordered.c calls this under the broker's lock. */
static int pass_on(struct bsub *s, natsMsg *msg)
{
	actor_msg_t *m;
	actor_broker_msg_t *bm;
	int rc = actor__broker_copy_msg(msg, ACTOR_MSG_BROKER, 0, &m, &bm);
	if (rc < 0)
		return rc;
	bm->sub.id = s->handle;
	bm->tag = s->tag;
	bm->dropped = atomic_exchange_explicit(&s->dropped, 0, memory_order_relaxed);
	if (s->consumer) {
		/* $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or with a
		 * domain and an account hash after "ACK" and a token more at the end (v2). */
		const char *r = actor_broker_reply_subject(bm), *tok[16];
		int n = 0;
		for (const char *p = r; n < 16;) {
			tok[n++] = p;
			p = strchr(p, '.');
			if (p == NULL)
				break;
			p++;
		}
		if (n == 9 || n == 12) {
			int d = n == 9 ? 4 : 6;
			bm->delivered = (uint32_t)strtoul(tok[d], NULL, 10);
			bm->stream_seq = strtoull(tok[d + 1], NULL, 10);
		}
	}
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->pending, 1, memory_order_release);
	bm->internal_ = (uint64_t)(uintptr_t)s;
	if (actor__send_internal_msg(s->b->sys, s->owner, m) < 0) {
		actor_msg_free(m);
		atomic_fetch_sub_explicit(&s->pending, 1, memory_order_release);
		actor__bsub_unref(s);
	}
	return 0;
}

static void on_msg(natsConnection *nc, natsSubscription *ns, natsMsg *msg, void *closure)
{
	(void)nc;
	struct bsub *s = closure;
	struct broker *b = s->b;
	if (!actor__broker_enter(b)) {
		natsMsg_Destroy(msg);
		return;
	}
	if (atomic_load_explicit(&s->ended, memory_order_acquire))
		goto out;
	if (s->ord != NULL) {
		actor__bord_deliver(b, s, ns, msg); /* ordered.c's checks, then pass_on */
		goto out;
	}
	/* Only this thread adds to `pending`: the check holds until the add. */
	if (atomic_load_explicit(&s->pending, memory_order_acquire) >= s->max_pending ||
	    pass_on(s, msg) < 0)
		atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
out:
	natsMsg_Destroy(msg);
	actor__broker_leave(b);
}

static void on_sub_complete(void *closure)
{
	actor__bsub_unref(closure);
}


/* A subscription of ctx's actor to `subject`, or, with `ordered`, an ordered consumer's (whose
 * subject is its own: ordered.c). */
static int sub_new(actor_ctx_t *ctx, struct broker *b, const char *subject, const char *queue,
                   uint64_t tag, uint32_t max_pending, bool consumer,
                   const actor_broker_ordered_opts_t *ordered, struct bsub **out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	struct broker_worker *bw = broker_worker_of(w);
	struct bsub *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	struct sub_owner *ow = actor__owners_get(&bw->owners, ctx->actor->ref, sizeof(*ow));
	int64_t idx = ow != NULL ? actor__table_put(&bw->subs, s) : -ENOMEM;
	if (idx < 0) {
		if (ow != NULL && ow->subs == NULL)
			actor__owners_del(&bw->owners, ow, sizeof(*ow));
		free(s);
		return (int)idx;
	}
	s->b = b;
	s->owner = ctx->actor->ref;
	s->tag = tag;
	s->max_pending = max_pending;
	s->consumer = consumer;
	s->handle = actor__table_handle(&bw->subs, w->index, (uint32_t)idx);
	if (ordered != NULL) {
		/* The process's inbox token makes its consumers' names its own. */
		s->ord = actor__bord_new(ordered, b->inbox + strlen("_INBOX."), s->handle, on_msg,
		                         pass_on);
		if (s->ord == NULL) {
			actor__table_del(&bw->subs, (uint32_t)idx);
			if (ow->subs == NULL)
				actor__owners_del(&bw->owners, ow, sizeof(*ow));
			free(s);
			return -ENOMEM;
		}
	}
	/* The owner's record, and libnats's subscription; an ordered consumer's subscriptions
	 * (one per generation) take theirs as ordered.c makes them. */
	atomic_init(&s->refs, ordered != NULL ? 1 : 2);
	pthread_mutex_lock(&b->lock);
	b->refs++;
	pthread_mutex_unlock(&b->lock);
	natsStatus st = NATS_OK;
	if (ordered != NULL)
		;
	else if (queue != NULL)
		st = natsConnection_QueueSubscribe(&s->ns, b->nc, subject, queue, on_msg, s);
	else
		st = natsConnection_Subscribe(&s->ns, b->nc, subject, on_msg, s);
	if (st == NATS_OK && ordered == NULL)
		st = natsSubscription_SetOnCompleteCB(s->ns, on_sub_complete, s);
	if (st == NATS_OK && ordered == NULL)
		/* Our own count bounds it: libnats's queue must never drop on its own. */
		st = natsSubscription_SetPendingLimits(s->ns, -1, -1);
	if (st != NATS_OK) {
		actor__table_del(&bw->subs, (uint32_t)idx);
		if (ow->subs == NULL)
			actor__owners_del(&bw->owners, ow, sizeof(*ow));
		if (s->ns != NULL) {
			/* Its on-complete callback may or may not come: end it and keep the record
			 * counted by the owner's reference alone. */
			atomic_store(&s->ended, true);
			(void)natsSubscription_Unsubscribe(s->ns);
			actor__bsub_unref(s);
		} else {
			free(s->ord);
			free(s);
			actor__broker_unref(b);
		}
		return actor__broker_status(st);
	}
	s->ow = ow;
	s->onext = ow->subs;
	if (ow->subs != NULL)
		ow->subs->oprev = s;
	ow->subs = s;
	actor__svc_hold(ctx->actor, SVC_BIT_BROKER);
	*out = s;
	return 0;
}

int actor_broker_subscribe(actor_ctx_t *ctx, const char *subject,
                           const actor_broker_sub_opts_t *opts, actor_broker_sub_t *out)
{
	static const actor_broker_sub_opts_t defaults;
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (opts == NULL)
		opts = &defaults;
	if (out == NULL || actor__broker_check_subject(subject, true) < 0 ||
	    (opts->queue != NULL && actor__broker_check_subject(opts->queue, false) < 0))
		return -EINVAL;
	struct bsub *s;
	rc = sub_new(ctx, b, subject, opts->queue, opts->tag,
	             opts->max_pending ? opts->max_pending : 65536, false, NULL, &s);
	if (rc == 0)
		out->id = s->handle;
	return rc;
}

/* Ends `s` on its owner's worker: out of the table and the owner's list; its owner's reference
 * goes. `a` is the owner, inside its turn, or NULL when it stops. */
static void sub_end(struct broker_worker *bw, struct bsub *s, struct actor *a)
{
	struct sub_owner *ow = s->ow;
	if (s->oprev != NULL)
		s->oprev->onext = s->onext;
	else
		ow->subs = s->onext;
	if (s->onext != NULL)
		s->onext->oprev = s->oprev;
	actor__table_del(&bw->subs, (uint32_t)s->handle);
	if (ow->subs == NULL) {
		actor__owners_del(&bw->owners, ow, sizeof(*ow));
		if (a != NULL)
			actor__svc_release(a, SVC_BIT_BROKER);
	}
	atomic_store_explicit(&s->ended, true, memory_order_release);
	if (s->ns != NULL) /* an ordered consumer's are ordered.c's */
		(void)natsSubscription_Unsubscribe(s->ns);
	actor__bsub_unref(s);
}

int actor_broker_unsubscribe(actor_ctx_t *ctx, actor_broker_sub_t sub)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (sub.id == 0)
		return -ESRCH;
	if (actor__handle_worker(sub.id) != w->index)
		return -EXDEV;
	struct broker_worker *bw = broker_worker_of(w);
	struct bsub *s = actor__table_get(&bw->subs, sub.id);
	if (s == NULL)
		return -ESRCH;
	if (s->owner.id != ctx->actor->ref.id)
		return -EPERM;
	sub_end(bw, s, ctx->actor);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Publishing
 */

int actor_broker_publish(actor_ctx_t *ctx, const actor_broker_pub_t *pub)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	rc = actor__broker_check_pub(pub);
	if (rc < 0 || pub->msg_id != NULL)
		return rc < 0 ? rc : -EINVAL;
	natsStatus s;
	if (pub->nheaders == 0 && pub->reply == NULL) {
		s = natsConnection_Publish(b->nc, pub->subject, pub->data, (int)pub->len);
	} else if (pub->nheaders == 0) {
		s = natsConnection_PublishRequest(b->nc, pub->subject, pub->reply, pub->data,
		                                  (int)pub->len);
	} else {
		natsMsg *m;
		rc = actor__broker_msg_new(pub, pub->reply, &m);
		if (rc < 0)
			return rc;
		s = natsConnection_PublishMsg(b->nc, m);
		natsMsg_Destroy(m);
	}
	rc = actor__broker_status(s);
	if (rc == -EAGAIN) {
		pthread_mutex_lock(&b->lock);
		actor__broker_wait_room(b, ctx->actor->ref);
		/* Reconnected since the refusal: the notice that would have come is due now. */
		if (atomic_load(&b->state) == BROKER_UP)
			actor__broker_notify_room(b);
		pthread_mutex_unlock(&b->lock);
	}
	return rc;
}

int actor_broker_ack(actor_ctx_t *ctx, const actor_broker_msg_t *m, int kind)
{
	static const char *const bodies[] = {"+ACK", "-NAK", "+TERM"};
	if (m == NULL || kind < ACTOR_BROKER_ACK || kind > ACTOR_BROKER_TERM ||
	    m->stream_seq == 0 || m->reply_len == 0)
		return -EINVAL;
	actor_broker_pub_t pub = {.subject = actor_broker_reply_subject(m),
	                          .data = bodies[kind],
	                          .len = strlen(bodies[kind])};
	return actor_broker_publish(ctx, &pub);
}

/* ---------------------------------------------------------------------------------------------
 * Consumers
 */

/* What both kinds of consumer check: 0 or -EINVAL. */
static int check_consumer(const char *stream, const char *filter, int deliver_new, const void *sub,
                          const void *out)
{
	if (sub == NULL || out == NULL || actor__broker_check_name(stream, "-_", 64) < 0 ||
	    (filter != NULL && actor__broker_check_subject(filter, true) < 0) ||
	    (deliver_new != 0 && deliver_new != 1))
		return -EINVAL;
	return 0;
}

int actor_broker_consume(actor_ctx_t *ctx, const actor_broker_consumer_opts_t *c,
                         const actor_request_opts_t *opts, actor_broker_sub_t *sub,
                         actor_request_t *out)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (c == NULL || check_consumer(c->stream, c->filter, c->deliver_new, sub, out) < 0 ||
	    actor__broker_check_name(c->durable, "-_", 64) < 0)
		return -EINVAL;
	uint32_t max_ack = c->max_ack_pending ? c->max_ack_pending : 1024;
	uint64_t ack_wait = (uint64_t)(c->ack_wait_ms ? c->ack_wait_ms : 30000) * 1000000ull;
	char deliver[160], subject[200], body[1024];
	snprintf(deliver, sizeof(deliver), "_ACTOR.deliver.%s.%s", c->stream, c->durable);
	snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s", c->stream,
	         c->durable);
	char filter[ACTOR_BROKER_SUBJECT_MAX + 32] = "";
	if (c->filter != NULL)
		snprintf(filter, sizeof(filter), ",\"filter_subject\":\"%s\"", c->filter);
	int n = snprintf(body, sizeof(body),
	                 "{\"stream_name\":\"%s\",\"config\":{\"durable_name\":\"%s\","
	                 "\"deliver_subject\":\"%s\",\"deliver_policy\":\"%s\","
	                 "\"ack_policy\":\"explicit\",\"ack_wait\":%llu,\"max_ack_pending\":%u%s}}",
	                 c->stream, c->durable, deliver, c->deliver_new ? "new" : "all",
	                 (unsigned long long)ack_wait, max_ack, filter);
	struct bsub *s;
	rc = sub_new(ctx, b, deliver, NULL, c->tag, max_ack, true, NULL, &s);
	if (rc < 0)
		return rc;
	actor_broker_pub_t pub = {.subject = subject, .data = body, .len = (size_t)n};
	rc = actor__broker_request_send(ctx, b, BREQ_API, &pub, opts, s, out);
	if (rc < 0) {
		(void)actor_broker_unsubscribe(ctx, (actor_broker_sub_t){s->handle});
		return rc;
	}
	sub->id = s->handle;
	return 0;
}

#define ORDERED_TIMEOUT_NS (10ull * 1000000000ull) /* the first creation's, by default */

int actor_broker_consume_ordered(actor_ctx_t *ctx, const actor_broker_ordered_opts_t *c,
                                 const actor_request_opts_t *opts, actor_broker_sub_t *sub,
                                 actor_request_t *out)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (c == NULL || check_consumer(c->stream, c->filter, c->deliver_new, sub, out) < 0 ||
	    (c->deliver_new == 1 && c->start_seq != 0) || c->heartbeat_ms > 3600000)
		return -EINVAL;
	struct bsub *s;
	rc = sub_new(ctx, b, NULL, NULL, c->tag, UINT32_MAX, true, c, &s);
	if (rc < 0)
		return rc;
	/* The request its first creation answers: timed by the library, as a JetStream one. */
	actor_request_opts_t ro = opts != NULL ? *opts : (actor_request_opts_t){0};
	uint64_t timeout = ro.timeout_ns ? ro.timeout_ns : ORDERED_TIMEOUT_NS;
	ro.timeout_ns = 0;
	if (timeout > UINT64_MAX / 4)
		rc = -EINVAL;
	else
		rc = actor__request_open(ctx, &ro, out);
	if (rc == 0) {
		rc = actor__bord_start(b, s, ctx->actor->ref, out->id,
		                       actor__broker_now_ns() + timeout);
		if (rc < 0)
			(void)actor_request_cancel(ctx, *out);
	}
	if (rc < 0) {
		/* Ended: ordered.c's tick takes it out of its list. */
		(void)actor_broker_unsubscribe(ctx, (actor_broker_sub_t){s->handle});
		return rc;
	}
	sub->id = s->handle;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */

static int broker_sys_init(actor_system_t *sys, const actor_config_t *cfg, void **shared)
{
	(void)cfg;
	struct broker *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->sys = sys;
	b->refs = 1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	*shared = b;
	return 0;
}

static void broker_sys_fini(actor_system_t *sys, void *shared)
{
	(void)sys;
	struct broker *b = shared;
	atomic_store(&b->closing, true);
	if (b->nc != NULL)
		natsConnection_Close(b->nc);
	actor__broker_js_stop(b);
	/* Callbacks that started before `closing` still use the system. */
	while (atomic_load(&b->active) != 0)
		sched_yield();
	if (!wait_refs(b, 5000)) {
		/* libnats still holds callbacks that name `b`: leave it to them rather than free
		 * memory they will read. */
		fprintf(stderr, "libactor: broker: the NATS client did not finish in 5 s\n");
		return;
	}
	actor__broker_dig(b, true); /* every reference gone: the connection's too (conn.c) */
	if (b->nc != NULL)
		natsConnection_Destroy(b->nc);
	free(b->watchers);
	free(b->waiters);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

static int broker_init(struct actor_worker *w, void **state)
{
	(void)w;
	struct broker_worker *bw = calloc(1, sizeof(*bw));
	if (bw == NULL)
		return -ENOMEM;
	*state = bw;
	return 0;
}

static void broker_fini(struct actor_worker *w, void *state)
{
	struct broker_worker *bw = state;
	struct broker *b = actor__broker_of(w->sys);
	actor__table_free(&bw->subs);
	actor__owners_free(&bw->owners, sizeof(struct sub_owner));
	free(bw);
	/* libnats keeps per-thread memory for a thread that called it. */
	pthread_mutex_lock(&b->lock);
	bool ever = b->ever;
	pthread_mutex_unlock(&b->lock);
	if (ever)
		nats_ReleaseThreadMemory();
}

static void broker_owner_stopped(struct actor_worker *w, void *state, struct actor *a)
{
	(void)w;
	struct broker_worker *bw = state;
	struct sub_owner *ow = actor__owners_find(&bw->owners, a->ref);
	while (ow != NULL && ow->subs != NULL) {
		bool last = ow->subs->onext == NULL;
		sub_end(bw, ow->subs, NULL);
		if (last)
			break; /* the record went with its last subscription */
	}
}

/* A subscription's message on its way in: its count goes down; one of a subscription that has
 * ended since is dropped. */
static bool sub_arrived(actor_msg_t *m)
{
	actor_broker_msg_t *bm = actor_msg_data(m);
	if (m->size < sizeof(*bm) || bm->internal_ == 0)
		return true; /* passed on by an actor: not counted any more */
	struct bsub *s = (struct bsub *)(uintptr_t)bm->internal_;
	bm->internal_ = 0;
	atomic_fetch_sub_explicit(&s->pending, 1, memory_order_release);
	bool live = !atomic_load_explicit(&s->ended, memory_order_acquire);
	actor__bsub_unref(s);
	return live;
}

static enum actor__svc_verdict broker_receive(struct actor_worker *w, void *state, struct actor *a,
                                              actor_msg_t *m, struct actor__svc_note *note)
{
	(void)w;
	(void)state;
	(void)a;
	(void)note;
	if (m->type == ACTOR_MSG_BROKER && !sub_arrived(m))
		return SVC_CONSUMED;
	return SVC_DELIVER;
}

static void broker_dead_letter(struct actor_worker *w, void *state, actor_ref_t to, actor_msg_t *m)
{
	(void)w;
	(void)state;
	(void)to;
	if (m->type == ACTOR_MSG_BROKER)
		(void)sub_arrived(m);
}

const struct actor__service_ops actor__broker_service = {
    .name = "broker",
    .id = SVC_BROKER,
    .blocks = {0x07},
    .actor_bits = SVC_BIT_BROKER,
    .sys_init = broker_sys_init,
    .sys_fini = broker_sys_fini,
    .init = broker_init,
    .fini = broker_fini,
    .owner_stopped = broker_owner_stopped,
    .receive = broker_receive,
    .dead_letter = broker_dead_letter,
};
