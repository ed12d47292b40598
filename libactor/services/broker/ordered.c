/* ordered.c: ordered consumers (actor.h, actor_broker_consume_ordered): a stream's messages to
 * one actor in stream order, each exactly once, through lost deliveries, dead servers and a
 * slow actor, without acknowledgements.
 *
 * How. The servers hold a consumer of generation g: in memory on one server, no acks, an idle
 * heartbeat, named "<base>_<g>" and pushing to "_ACTOR.o.<base>.<g>", to which the library
 * subscribes first (a push consumer sends only to a subscription of its exact subject: one to
 * "_ACTOR.o.<base>.*" gets nothing from nats-server 2.9), so the libnats subscription that a
 * delivery or heartbeat comes through says which generation sent it. Without acks nothing is
 * delivered twice, so the consumer's own count (dseq, in the reply subject) goes 1, 2, 3, ...
 * with no hole unless a delivery was lost.
 * A delivery of generation g passes to the actor only if its dseq is the last passed + 1; then
 * the last stream sequence passed (last_sseq) moves to its own. The library drops generation g
 * and makes g + 1, starting at last_sseq + 1, when:
 *   - a delivery's dseq is not the next (one was lost: the connection dropped, say), or a
 *     heartbeat's Nats-Last-Consumer is not the last dseq passed (the lost one was the last);
 *   - nothing came from g for three heartbeats and its creation is not in flight (its server
 *     died, and with it the consumer);
 *   - the actor has max_pending messages waiting: g is dropped at once and g + 1 made when the
 *     actor has taken half (a pause, so that a slow actor does not make consumer after
 *     consumer);
 *   - its creation went unanswered for ACTOR_BROKER_ATTEMPT_MS (g + 1 at once: some creations
 *     are never answered; in a 3-server test, three in a row while the stream's leader was
 *     being replaced, and one now and then while it had one), or
 *     was refused (g + 1 after ACTOR_BROKER_RETRY_MS; the first creation refused ends the
 *     subscription and says why, as does no success by the first request's timeout).
 * A dropped generation's consumer is deleted on the servers and its subscription ended (so a
 * consumer the delete missed has no interest and goes by itself after INACTIVE_NS); anything of
 * an older generation that still arrives is dropped.
 * Because a new generation starts right after the last message passed on, and an old one's
 * messages never pass, each message passes once and in order. A delivery passes on to the actor
 * under the lock, so that no later generation's (another subscription, maybe another delivery
 * thread) overtakes it; one too big for an actor message is skipped and counted in `dropped`.
 *
 * Threads. The fields under "lock" are touched under the broker's lock only, by: the
 * generations' delivery threads (actor__bord_deliver; libnats delivers one subscription's
 * messages one at a time, and a generation's come only through its own), the inbox's delivery
 * thread (answered), the retry thread (tick), libnats's threads ending a generation (gen_done)
 * and the behaviour that creates it (actor__bord_start). `pending` and `ended` are the
 * subscription's atomics (broker.h).
 *
 * Lifetime. The broker's list holds a reference to each ordered subscription, and each
 * generation's libnats subscription one more, until its on-complete callback (gen_done), which
 * takes the generation out and buries it (conn.c, "Graves"). Once the subscription has ended and
 * libnats has finished with all its generations, the tick takes it out of the list; js_stop drops
 * what is left. So when the last reference goes, struct bord is plain memory (conn.c frees it).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/broker/broker.h"

#define SILENT_BEATS 3            /* heartbeats missed before a consumer counts as gone */
#define INACTIVE_NS 5000000000ull /* a consumer nobody listens to goes after this (servers) */
#define FAIL_RETRY_NS ((uint64_t)ACTOR_BROKER_RETRY_MS * 1000000ull)

/* One generation's libnats subscription, in its bord's list from its subscription until
 * libnats has finished with it. */
struct bgen {
	struct bgen *next;
	struct bsub *s;
	natsSubscription *ns;
	uint32_t gen;
	struct bgrave grave; /* `ns` and this record, once libnats has finished with them */
};

struct bord {
	/* Set at creation, then read-only: */
	char stream[65];
	char filter[ACTOR_BROKER_SUBJECT_MAX + 1]; /* "" : the whole stream */
	char base[64];                             /* consumer names: "<base>_<gen>" */
	uint64_t hb_ns;
	uint32_t max_pending;
	bool first_new;        /* deliver_new */
	uint64_t first_start;  /* start_seq */
	natsMsgHandler on_msg; /* broker.c's delivery callback */
	int (*pass)(struct bsub *s, natsMsg *msg); /* broker.c's copy and send to the owner */
	/* Under the broker's lock: */
	struct bsub *prev, *next; /* the broker's list */
	uint32_t gen;             /* the current generation: only its deliveries pass */
	bool live;                /* generation gen exists on the servers, or is being made */
	bool making;              /* its creation is in flight */
	bool started;             /* a creation succeeded once */
	bool known;               /* last_sseq says where the stream stood */
	uint64_t last_sseq;       /* the last stream sequence passed on (or the start, minus 1) */
	uint64_t last_dseq;       /* generation gen's count of the last passed on */
	uint64_t seen_ns;         /* gen's last delivery or heartbeat, or its creation */
	uint64_t retry_ns; /* !live: when to make the next; UINT64_MAX: once pending has room */
	struct bgen *gens; /* subscriptions, the newest first; ended but the live one */
	/* Until started: the request that the first success (or the failure) answers. */
	actor_ref_t first_to;
	uint64_t first_req, first_deadline_ns;
};

struct bord *actor__bord_new(const actor_broker_ordered_opts_t *c, const char *base,
                             uint64_t handle, natsMsgHandler on_msg,
                             int (*pass)(struct bsub *s, natsMsg *msg))
{
	struct bord *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	snprintf(o->stream, sizeof(o->stream), "%s", c->stream);
	snprintf(o->filter, sizeof(o->filter), "%s", c->filter != NULL ? c->filter : "");
	snprintf(o->base, sizeof(o->base), "%s_%" PRIx64, base, handle);
	o->hb_ns = (uint64_t)(c->heartbeat_ms ? c->heartbeat_ms : 1000) * 1000000ull;
	o->max_pending = c->max_pending ? c->max_pending : 65536;
	o->first_new = c->deliver_new != 0;
	o->first_start = c->start_seq;
	o->on_msg = on_msg;
	o->pass = pass;
	o->gen = 1;
	return o;
}

/* The creation of `s`'s consumer of its current generation: its API subject and body. */
static void request(const struct bsub *s, char *subject, size_t scap, char *body, size_t bcap,
                    int *len)
{
	const struct bord *o = s->ord;
	char start[96], filter[ACTOR_BROKER_SUBJECT_MAX + 32] = "";
	uint64_t from = o->known ? o->last_sseq + 1 : o->first_start;
	if (!o->known && o->first_new)
		snprintf(start, sizeof(start), "\"deliver_policy\":\"new\"");
	else if (from > 0)
		snprintf(start, sizeof(start),
		         "\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":%" PRIu64,
		         from);
	else
		snprintf(start, sizeof(start), "\"deliver_policy\":\"all\"");
	if (o->filter[0] != '\0')
		snprintf(filter, sizeof(filter), ",\"filter_subject\":\"%s\"", o->filter);
	snprintf(subject, scap, "$JS.API.CONSUMER.CREATE.%s.%s_%" PRIu32, o->stream, o->base,
	         o->gen);
	*len = snprintf(body, bcap,
	                "{\"stream_name\":\"%s\",\"config\":{\"name\":\"%s_%" PRIu32 "\","
	                "\"deliver_subject\":\"_ACTOR.o.%s.%" PRIu32 "\",%s,"
	                "\"ack_policy\":\"none\",\"idle_heartbeat\":%" PRIu64 ","
	                "\"inactive_threshold\":%llu,\"mem_storage\":true,\"num_replicas\":1%s}}",
	                o->stream, o->base, o->gen, o->base, o->gen, start, o->hb_ns,
	                (unsigned long long)INACTIVE_NS, filter);
}

/* ---------------------------------------------------------------------------------------------
 * Generations (lock held)
 */

/* libnats has finished delivering a generation's subscription (its delivery thread, lock not
 * held): buried, not destroyed, as its read loop may still hold it (conn.c, "Graves"). */
static void gen_done(void *closure)
{
	struct bgen *g = closure;
	struct bsub *s = g->s;
	struct broker *b = s->b;
	pthread_mutex_lock(&b->lock);
	for (struct bgen **p = &s->ord->gens; *p != NULL; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	actor__broker_bury(b, &g->grave, g->ns, g);
	actor__bsub_unref(s);
}

/* Subscribes to generation o->gen's subject. */
static int subscribe_gen(struct bsub *s)
{
	struct bord *o = s->ord;
	struct bgen *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->s = s;
	g->gen = o->gen;
	char subject[160];
	snprintf(subject, sizeof(subject), "_ACTOR.o.%s.%" PRIu32, o->base, o->gen);
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); /* the list's keeps s alive */
	natsStatus st = natsConnection_Subscribe(&g->ns, s->b->nc, subject, o->on_msg, s);
	bool done_set = false;
	if (st == NATS_OK) {
		st = natsSubscription_SetOnCompleteCB(g->ns, gen_done, g);
		done_set = st == NATS_OK;
	}
	if (st == NATS_OK)
		/* The subscription's own count bounds it (pending): libnats must never drop. */
		st = natsSubscription_SetPendingLimits(g->ns, -1, -1);
	if (st != NATS_OK) {
		if (!done_set) {
			/* No on-complete callback will come (the connection closed meanwhile,
			 * say): it goes now. The list's reference keeps s alive, so this one is
			 * not the last. */
			atomic_fetch_sub_explicit(&s->refs, 1, memory_order_relaxed);
			if (g->ns != NULL) {
				/* Out of libnats's table (if a close has not taken it out
				 * already) before it is buried, as every grave is. */
				(void)natsSubscription_Unsubscribe(g->ns);
				actor__broker_bury(s->b, &g->grave, g->ns, g);
			} else {
				free(g);
			}
			return actor__broker_status(st);
		}
		(void)natsSubscription_Unsubscribe(g->ns); /* its callback comes, and it goes */
	}
	g->next = o->gens;
	o->gens = g;
	return st == NATS_OK ? 0 : actor__broker_status(st);
}

/* Ends generation `gen`'s subscription. */
static void unsubscribe_gen(struct bsub *s, uint32_t gen)
{
	for (struct bgen *g = s->ord->gens; g != NULL; g = g->next)
		if (g->gen == gen)
			(void)natsSubscription_Unsubscribe(g->ns);
}

static void delete_gen(struct broker *b, struct bsub *s, uint32_t gen)
{
	char subject[200];
	snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.DELETE.%s.%s_%" PRIu32, s->ord->stream,
	         s->ord->base, gen);
	actor__broker_api_forget(b, subject, "");
}

/* The current generation goes: deleted on the servers, its subscription ended, and none of
 * its deliveries passes. */
static void drop(struct broker *b, struct bsub *s)
{
	struct bord *o = s->ord;
	if (o->live) {
		unsubscribe_gen(s, o->gen);
		delete_gen(b, s, o->gen);
	}
	o->live = o->making = false;
	o->gen++;
}

static void answered(struct broker *b, struct breq *r, int error, const char *json);

/* Makes generation o->gen: its subscription, then its consumer. 0, or why not (then it is
 * tried again after FAIL_RETRY_NS). */
static int make(struct broker *b, struct bsub *s, uint64_t now)
{
	struct bord *o = s->ord;
	char subject[200], body[1024];
	int len;
	int rc = subscribe_gen(s);
	if (rc < 0) {
		o->retry_ns = now + FAIL_RETRY_NS;
		return rc;
	}
	request(s, subject, sizeof(subject), body, sizeof(body), &len);
	rc = actor__broker_api_locked(b, subject, body, (size_t)len, s, o->gen, answered);
	if (rc < 0) {
		unsubscribe_gen(s, o->gen);
		o->gen++;
		o->retry_ns = now + FAIL_RETRY_NS;
		return rc;
	}
	o->live = o->making = true;
	o->last_dseq = 0;
	o->seen_ns = now;
	return 0;
}

static void remake(struct broker *b, struct bsub *s, uint64_t now)
{
	drop(b, s);
	(void)make(b, s, now); /* else tried again later */
}

/* Before the first success: the subscription ends, and its request is answered with `error`. */
static void fail_first(struct broker *b, struct bsub *s, int error)
{
	struct bord *o = s->ord;
	drop(b, s);
	atomic_store_explicit(&s->ended, true, memory_order_release);
	actor_broker_ack_t ack = {.error = error};
	actor__broker_answer(b, o->first_to, o->first_req, 0, &ack);
	o->first_req = 0;
}

static void tick(struct broker *b, uint64_t now, bool stopping);

int actor__bord_start(struct broker *b, struct bsub *s, actor_ref_t to, uint64_t req_id,
                      uint64_t deadline_ns)
{
	struct bord *o = s->ord;
	pthread_mutex_lock(&b->lock);
	b->ordered_hook = tick;
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	o->prev = NULL;
	o->next = b->ordered;
	if (b->ordered != NULL)
		b->ordered->ord->prev = s;
	b->ordered = s;
	o->first_to = to;
	o->first_req = req_id;
	o->first_deadline_ns = deadline_ns;
	int rc = make(b, s, actor__broker_now_ns());
	if (rc < 0) {
		o->first_req = 0; /* the caller fails, and the tick takes it out */
		if (rc == -EAGAIN)
			actor__broker_wait_room(b, to); /* js_max_inflight requests in flight */
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Deliveries (the subscription's delivery thread)
 */

/* The n-th token (from 0) of a dotted subject, as a number. */
static uint64_t token_u64(const char *s, int n)
{
	for (; n > 0 && s != NULL; n--) {
		s = strchr(s, '.');
		if (s != NULL)
			s++;
	}
	return s != NULL ? strtoull(s, NULL, 10) : 0;
}

void actor__bord_deliver(struct broker *b, struct bsub *s, natsSubscription *ns, natsMsg *msg)
{
	struct bord *o = s->ord;
	const char *status = NULL, *reply = natsMsg_GetReply(msg);
	/* A heartbeat has a status and no reply subject; a delivery always has its $JS.ACK reply
	 * (and may carry a header of its own named Status). */
	if (reply != NULL && reply[0] != '\0')
		status = NULL;
	else if (natsMsgHeader_Get(msg, "Status", &status) != NATS_OK)
		status = NULL;
	/* $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, or v2 with two
	 * tokens more after "ACK" (domain, account hash) and one at the end. */
	int ntok = 0;
	for (const char *p = reply; p != NULL && *p != '\0'; p = strchr(p, '.'), p = p ? p + 1 : p)
		ntok++;
	int at = ntok == 12 ? 7 : 5;
	uint64_t sseq = 0, dseq = 0;
	if (status == NULL && (ntok == 9 || ntok == 12)) {
		sseq = token_u64(reply, at);
		dseq = token_u64(reply, at + 1);
	}
	uint64_t now = actor__broker_now_ns();
	pthread_mutex_lock(&b->lock);
	if (atomic_load_explicit(&s->ended, memory_order_acquire))
		goto out;
	if (!o->live || o->gens == NULL || o->gens->gen != o->gen || o->gens->ns != ns)
		goto out; /* a dropped generation's, on its way before its subscription ended */
	if (status != NULL) {
		const char *last = NULL;
		if (strcmp(status, "100") != 0)
			goto out;
		if (natsMsgHeader_Get(msg, "Nats-Last-Consumer", &last) == NATS_OK &&
		    strtoull(last, NULL, 10) != o->last_dseq)
			remake(b, s, now); /* a heartbeat says more was sent than came */
		else
			o->seen_ns = now;
		goto out;
	}
	if (dseq == 0)
		goto out; /* not a consumer's delivery */
	if (dseq != o->last_dseq + 1) {
		remake(b, s, now);
		goto out;
	}
	if (atomic_load_explicit(&s->pending, memory_order_acquire) >= o->max_pending) {
		drop(b, s); /* paused: made again by the tick once the actor has room */
		o->retry_ns = UINT64_MAX;
		goto out;
	}
	/* Passed on under the lock: a later generation's first delivery (on another delivery
	 * thread) cannot reach the owner before this one. */
	int rc = o->pass(s, msg);
	o->seen_ns = now;
	o->last_dseq = dseq;
	if (rc == 0 || rc == -EMSGSIZE) {
		if (rc < 0) /* too big for any actor message: skipped, and counted */
			atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
		o->last_sseq = sseq;
		o->known = true;
	} else {
		remake(b, s, now); /* no memory: it comes again, from the same place */
	}
out:
	pthread_mutex_unlock(&b->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Answers and ticks
 */

/* The end of a creation (js.c, lock not held). */
static void answered(struct broker *b, struct breq *r, int error, const char *json)
{
	struct bsub *s = r->consumer;
	uint32_t gen = r->gen;
	struct bord *o = s->ord;
	uint64_t now = actor__broker_now_ns();
	pthread_mutex_lock(&b->lock);
	if (gen != o->gen || atomic_load_explicit(&s->ended, memory_order_acquire)) {
		pthread_mutex_unlock(&b->lock);
		return; /* a dropped generation's: deleted already */
	}
	o->making = false;
	if (error == 0) {
		/* "delivered":{"consumer_seq":0,"stream_seq":N}: the stream's sequence before the
		 * first this consumer sends. */
		const char *d = json != NULL ? strstr(json, "\"delivered\":") : NULL;
		const char *ss = d != NULL ? strstr(d, "\"stream_seq\":") : NULL;
		uint64_t before = ss != NULL ? strtoull(ss + strlen("\"stream_seq\":"), NULL, 10) : 0;
		if (!o->known && ss != NULL) {
			o->last_sseq = before;
			o->known = true;
		}
		o->seen_ns = now;
		if (!o->started) {
			o->started = true;
			actor_broker_ack_t ack = {.seq = before};
			snprintf(ack.stream, sizeof(ack.stream), "%.63s", o->stream);
			actor__broker_answer(b, o->first_to, o->first_req, 0, &ack);
			o->first_req = 0;
		}
	} else if (!o->started && error != -ETIMEDOUT) {
		fail_first(b, s, error); /* refused (no such stream, say): the owner hears why */
	} else {
		/* Unanswered: another name at once; refused later on: again after a while. */
		drop(b, s);
		o->retry_ns = error == -ETIMEDOUT ? now : now + FAIL_RETRY_NS;
	}
	pthread_mutex_unlock(&b->lock);
}

/* The retry thread's tick (lock not held): silent consumers made again, paused ones resumed,
 * ended ones deleted and, once libnats has finished with them, taken out of the list. Stopping
 * (js_stop, the retry thread gone): every reference of the list goes. */
static void tick(struct broker *b, uint64_t now, bool stopping)
{
	struct bsub *unref = NULL;
	pthread_mutex_lock(&b->lock);
	for (struct bsub *s = b->ordered, *next; s != NULL; s = next) {
		struct bord *o = s->ord;
		next = o->next;
		bool ended = atomic_load_explicit(&s->ended, memory_order_acquire);
		if (!stopping && !ended && !o->started && now >= o->first_deadline_ns) {
			fail_first(b, s, -ETIMEDOUT);
			ended = true;
		}
		if (ended && o->first_req != 0) {
			/* Unsubscribed (or its owner stopped) before the first creation's outcome. */
			actor_broker_ack_t ack = {.error = -ECANCELED};
			actor__broker_answer(b, o->first_to, o->first_req, 0, &ack);
			o->first_req = 0;
		}
		if (ended && o->live)
			drop(b, s);
		if (ended || stopping) {
			if (o->gens != NULL && !stopping)
				continue; /* taken out once libnats is finished with it */
			if (o->prev != NULL)
				o->prev->ord->next = o->next;
			else
				b->ordered = o->next;
			if (o->next != NULL)
				o->next->ord->prev = o->prev;
			o->next = unref;
			unref = s;
			continue;
		}
		if (o->live) {
			/* seen_ns may be later than `now`, read before the lock. */
			if (!o->making && now > o->seen_ns &&
			    now - o->seen_ns > SILENT_BEATS * o->hb_ns)
				remake(b, s, now);
		} else if (o->retry_ns == UINT64_MAX) {
			if (atomic_load_explicit(&s->pending, memory_order_acquire) <=
			    o->max_pending / 2)
				make(b, s, now);
		} else if (now >= o->retry_ns) {
			make(b, s, now);
		}
	}
	pthread_mutex_unlock(&b->lock);
	while (unref != NULL) {
		struct bsub *s = unref;
		unref = s->ord->next;
		actor__bsub_unref(s);
	}
}
