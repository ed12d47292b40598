/* test_broker.c: the broker service against a real nats-server (actor.h, "Broker: NATS and
 * JetStream"): subscriptions delivered once and in order with their headers, queue groups,
 * unsubscribing, a subscription's max_pending, requests over NATS (answered, no responders,
 * timed out, cancelled), JetStream publishes acknowledged and deduplicated, key-value claims
 * raced by many actors, a durable consumer with acknowledgements and redelivery, ordered
 * consumers (through a pause, a server's crash, a stream leader's death and their connection
 * moving to another server), the connection's state and a refused publish across a server's
 * crash and restart, and misuse.
 *
 * Each test starts its own nats-server (JetStream, a free port of 127.0.0.1, a temporary
 * store); the suite is skipped when there is none, or when the library was built without
 * libnats.
 */
#include "common.h"

#include <sys/prctl.h>

#ifdef TEST_NATS_CLIENT
#include <nats/nats.h>
#endif

#include "nats_server.h"
#ifdef TEST_NATS_CLIENT
#include "services/broker/broker.h" /* graves_dug */
#endif

#define T_GO 1
#define T_READY 2
#define T_DONE 3
#define T_QUIT 4

static actor_system_t *broker_system(struct nats_srv *srv, const actor_broker_opts_t *extra)
{
	nats_start(srv);
	actor_system_t *sys = system_new(2);
	actor_broker_opts_t o = {0};
	if (extra != NULL)
		o = *extra;
	o.servers = srv->url;
	int rc = actor_broker_connect(sys, &o);
	ck_assert_msg(rc == 0, "actor_broker_connect %s: %s", srv->url, strerror(-rc));
	return sys;
}

static void broker_done(actor_system_t *sys, struct nats_srv *srv)
{
	actor_system_free(sys);
	nats_free(srv);
}

static uint64_t data_u64(const actor_broker_msg_t *m)
{
	uint64_t v = UINT64_MAX;
	if (m->data_len == sizeof(v))
		memcpy(&v, actor_broker_data(m), sizeof(v));
	return v;
}

static const actor_reply_t *reply_of(actor_msg_t *msg)
{
	ck_assert_uint_eq(msg->type, ACTOR_MSG_REPLY);
	ck_assert_uint_ge(msg->size, sizeof(actor_reply_t));
	return actor_msg_data(msg);
}

/* The acknowledgement a JetStream reply carries. */
static actor_broker_ack_t ack_of(actor_msg_t *msg)
{
	const actor_reply_t *r = reply_of(msg);
	actor_broker_ack_t a = {.error = 1};
	if (r->error == 0 && r->type == ACTOR_MSG_BROKER_ACK && r->len == sizeof(a))
		memcpy(&a, actor_reply_data((actor_reply_t *)r), sizeof(a));
	else if (r->error != 0)
		a.error = r->error;
	return a;
}

/* ---------------------------------------------------------------------------------------------
 * Publish and subscribe
 */

#define PUB_N 2000

struct pubsub {
	actor_ref_t publisher;
	actor_broker_sub_t sub;
	uint64_t next;
	unsigned bad, with_headers, with_reply;
	int rc;
};

static void publisher_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pubsub *p = state;
	if (msg->type != T_READY)
		return;
	for (uint64_t i = 0; i < PUB_N; i++) {
		char seq[24];
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)i);
		actor_broker_header_t h[2] = {{"X-Seq", seq}, {"X-Other", "two words"}};
		actor_broker_pub_t pub = {.subject = "t.order", .data = &i, .len = sizeof(i)};
		if (i % 100 == 0) {
			pub.headers = h;
			pub.nheaders = 2;
		}
		if (i % 7 == 0)
			pub.reply = "t.back";
		int rc = actor_broker_publish(ctx, &pub);
		if (rc != 0)
			p->rc = rc;
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void subscriber_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pubsub *p = state;
	if (msg->type == T_GO) {
		int rc = actor_broker_subscribe(ctx, "t.*", NULL, &p->sub);
		if (rc != 0)
			p->rc = rc;
		actor_send(actor_ctx_system(ctx), p->publisher, T_READY, NULL, 0);
		return;
	}
	ck_assert_uint_eq(msg->type, ACTOR_MSG_BROKER);
	actor_broker_msg_t *m = actor_broker_msg(msg);
	uint64_t i = data_u64(m);
	bool ok = i == p->next && strcmp(actor_broker_subject(m), "t.order") == 0 &&
	          m->sub.id == p->sub.id && m->dropped == 0 && m->stream_seq == 0;
	const char *seq = actor_broker_header(m, "x-seq");
	if (i % 100 == 0) {
		char want[24];
		snprintf(want, sizeof(want), "%llu", (unsigned long long)i);
		const char *other = actor_broker_header(m, "X-Other");
		ok = ok && seq != NULL && strcmp(seq, want) == 0 && other != NULL &&
		     strcmp(other, "two words") == 0;
		p->with_headers += ok;
	} else {
		ok = ok && seq == NULL && m->headers_len == 0;
	}
	if (i % 7 == 0) {
		ok = ok && strcmp(actor_broker_reply_subject(m), "t.back") == 0;
		p->with_reply += ok;
	} else {
		ok = ok && m->reply_len == 0 && actor_broker_reply_subject(m)[0] == '\0';
	}
	p->bad += !ok;
	p->next++;
	if (p->next == PUB_N) {
		ck_assert_int_eq(actor_broker_unsubscribe(ctx, p->sub), 0);
		ck_assert_int_eq(actor_broker_unsubscribe(ctx, p->sub), -ESRCH);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(a_subscriber_gets_every_message_once_in_order_with_its_headers_and_reply)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	struct pubsub p = {0};
	p.publisher = spawn_on(sys, 1, publisher_behavior, &p);
	actor_ref_t s = spawn_on(sys, 0, subscriber_behavior, &p);
	send_ok(sys, s, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "pubsub");
	ck_assert_int_eq(p.rc, 0);
	ck_assert_uint_eq(p.next, PUB_N);
	ck_assert_uint_eq(p.bad, 0);
	ck_assert_uint_eq(p.with_headers, PUB_N / 100);
	ck_assert_uint_eq(p.with_reply, (PUB_N + 6) / 7);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Queue groups: each message to one member
 */

#define QUEUE_N 1000

struct queue_member {
	atomic_uint *seen; /* per message, how many members got it */
	atomic_uint *total;
	actor_ref_t publisher;
	unsigned got;
	int rc;
};

static void queue_member_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct queue_member *q = state;
	if (msg->type == T_GO) {
		actor_broker_sub_opts_t o = {.queue = "workers"};
		actor_broker_sub_t sub;
		q->rc = actor_broker_subscribe(ctx, "jobs", &o, &sub);
		actor_send(actor_ctx_system(ctx), q->publisher, T_READY, NULL, 0);
		return;
	}
	if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t i = data_u64(actor_broker_msg(msg));
	if (i < QUEUE_N)
		atomic_fetch_add(&q->seen[i], 1);
	q->got++;
	atomic_fetch_add(q->total, 1);
}

struct queue_pub {
	unsigned ready;
	int rc;
};

static void queue_publisher_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct queue_pub *qp = state;
	if (msg->type != T_READY || ++qp->ready < 2)
		return;
	for (uint64_t i = 0; i < QUEUE_N; i++) {
		actor_broker_pub_t pub = {.subject = "jobs", .data = &i, .len = sizeof(i)};
		int rc = actor_broker_publish(ctx, &pub);
		if (rc != 0)
			qp->rc = rc;
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_queue_group_gives_each_message_to_exactly_one_member)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	static atomic_uint seen[QUEUE_N];
	atomic_uint total = 0;
	struct queue_pub qp = {0};
	actor_ref_t pub = spawn_on(sys, 0, queue_publisher_behavior, &qp);
	struct queue_member m[2] = {{seen, &total, pub, 0, 0}, {seen, &total, pub, 0, 0}};
	actor_ref_t r[2];
	for (int i = 0; i < 2; i++) {
		r[i] = spawn_on(sys, (unsigned)i, queue_member_behavior, &m[i]);
		send_ok(sys, r[i], T_GO, NULL, 0);
	}
	assert_eventually(atomic_load(&total) == QUEUE_N, TEST_WATCHDOG);
	for (int i = 0; i < 2; i++)
		send_ok(sys, r[i], T_QUIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "queue group");
	ck_assert_int_eq(qp.rc, 0);
	ck_assert_int_eq(m[0].rc, 0);
	ck_assert_int_eq(m[1].rc, 0);
	ck_assert_uint_eq(m[0].got + m[1].got, QUEUE_N);
	for (unsigned i = 0; i < QUEUE_N; i++)
		ck_assert_uint_eq(atomic_load(&seen[i]), 1);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * max_pending and unsubscribing: a subscriber held up while a witness on another worker takes
 * the same messages
 */

#define HOLD_N 1000
#define HOLD_MAX 8

struct held {
	actor_ref_t publisher;
	atomic_int gate;       /* opened once the witness has every message */
	atomic_ullong witness; /* messages the witness got */
	unsigned got, ends;
	uint64_t marks; /* end marks published */
	unsigned ready; /* subscribers ready (publisher) */
	uint64_t dropped, last;
	unsigned bad;
	bool unsubscribe_first; /* the unsubscribe variant */
	unsigned after_unsub;
	actor_broker_sub_t sub;
	int rc;
};

#define END_MARK (UINT64_MAX - 1000) /* end marks: END_MARK + k, k = 1, 2, ... */

static void hold_publisher_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct held *h = state;
	uint64_t i;
	if (msg->type == T_READY) {
		if (++h->ready < 2)
			return; /* both subscriptions first */
		for (i = 1; i <= HOLD_N; i++) {
			actor_broker_pub_t pub = {.subject = "held", .data = &i, .len = sizeof(i)};
			if (actor_broker_publish(ctx, &pub) != 0)
				h->rc = -1;
		}
	} else if (msg->type == T_DONE) {
		/* End marks, every 20 ms until the subscriber has one (one may be dropped too). */
		actor_timer_t t;
		if (actor_timer_start(ctx, actor_self(ctx), 0, 20000000ull, 0, &t) != 0)
			h->rc = -2;
	} else if (msg->type == ACTOR_MSG_TIMER) {
		i = END_MARK + ++h->marks;
		actor_broker_pub_t pub = {.subject = "held", .data = &i, .len = sizeof(i)};
		if (actor_broker_publish(ctx, &pub) != 0)
			h->rc = -6;
	} else if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static void witness_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct held *h = state;
	if (msg->type == T_GO) {
		actor_broker_sub_t sub;
		if (actor_broker_subscribe(ctx, "held", NULL, &sub) != 0)
			h->rc = -3;
		actor_send(actor_ctx_system(ctx), h->publisher, T_READY, NULL, 0);
		return;
	}
	uint64_t i = data_u64(actor_broker_msg(msg));
	if (i <= HOLD_N && atomic_fetch_add(&h->witness, 1) + 1 == HOLD_N)
		gate_open(&h->gate);
	if (i > END_MARK)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void held_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct held *h = state;
	if (msg->type == T_GO) {
		actor_broker_sub_opts_t o = {.max_pending = HOLD_MAX, .tag = 77};
		if (actor_broker_subscribe(ctx, "held", &o, &h->sub) != 0)
			h->rc = -4;
		actor_send(actor_ctx_system(ctx), h->publisher, T_READY, NULL, 0);
		return;
	}
	if (msg->type == T_DONE) {
		/* Behind every message queued before the unsubscribe. */
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	ck_assert_uint_eq(msg->type, ACTOR_MSG_BROKER);
	actor_broker_msg_t *m = actor_broker_msg(msg);
	uint64_t i = data_u64(m);
	if (h->got == 0 && h->ends == 0) {
		/* Held up: the witness takes them all meanwhile, and this subscription's pile up.
		 */
		if (!gate_wait(&h->gate))
			h->rc = -5;
		if (!h->unsubscribe_first)
			actor_send(actor_ctx_system(ctx), h->publisher, T_DONE, NULL, 0);
		if (h->unsubscribe_first) {
			ck_assert_int_eq(actor_broker_unsubscribe(ctx, h->sub), 0);
			h->got++;
			actor_send(actor_ctx_system(ctx), actor_self(ctx), T_DONE, NULL, 0);
			return;
		}
	} else if (h->unsubscribe_first) {
		h->after_unsub++;
		return;
	}
	h->bad += m->tag != 77 || m->sub.id != h->sub.id;
	if (i > END_MARK) {
		/* The end marks dropped before this one were counted with the messages. */
		uint64_t k = i - END_MARK;
		h->bad += m->dropped < k - 1;
		h->dropped += m->dropped - (k - 1);
		h->ends++;
		actor_send(actor_ctx_system(ctx), h->publisher, T_QUIT, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	h->bad += i <= h->last || i - h->last - 1 != m->dropped;
	h->last = i;
	h->dropped += m->dropped;
	h->got++;
}

static void run_held(struct held *h)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	h->publisher = spawn_on(sys, 1, hold_publisher_behavior, h);
	actor_ref_t sub = spawn_on(sys, 0, held_behavior, h);
	send_ok(sys, sub, T_GO, NULL, 0);
	actor_ref_t wit = spawn_on(sys, 1, witness_behavior, h);
	send_ok(sys, wit, T_GO, NULL, 0);
	if (h->unsubscribe_first) {
		/* The publisher's end marks let the witness stop. */
		assert_eventually(atomic_load(&h->witness) == HOLD_N, TEST_WATCHDOG);
		send_ok(sys, h->publisher, T_DONE, NULL, 0);
		wait_stopped(sys, wit);
		send_ok(sys, h->publisher, T_QUIT, NULL, 0);
	}
	system_run_to_end(sys, TEST_WATCHDOG, "held subscriber");
	ck_assert_int_eq(h->rc, 0);
	broker_done(sys, &srv);
}

START_TEST(a_subscriber_behind_by_max_pending_loses_the_rest_and_is_told_how_many)
{
	struct held h = {0};
	run_held(&h);
	ck_assert_uint_eq(h.bad, 0);
	ck_assert_uint_eq(h.ends, 1);
	/* Exactly: what arrived and what was reported dropped make every message. */
	ck_assert_uint_eq(h.got + h.dropped, HOLD_N);
	/* Held up while the witness took all of them: at most max_pending waited, one was held. */
	ck_assert_uint_le(h.got, HOLD_N);
	ck_assert_uint_gt(h.dropped, 0);
}
END_TEST

START_TEST(no_message_of_a_subscription_arrives_after_unsubscribe_not_even_one_queued)
{
	struct held h = {.unsubscribe_first = true};
	run_held(&h);
	ck_assert_uint_eq(h.got, 1);
	ck_assert_uint_eq(h.after_unsub, 0);
}
END_TEST

/* Regression: libnats 3.4's read loop could lock a subscription that another thread had just
 * ended and freed (nats.c issue 637): the process aborted in natsConn_processMsg, about one run
 * in fifteen of the ordered consumer's test below. The library now destroys an ended
 * subscription only once a mark sent after it has come back through the read loop, and all of
 * them while the system runs. Here one actor
 * ends its subscription and makes a new one every CHURN_EVERY messages while another keeps
 * publishing, so messages keep arriving for subscriptions being ended. */
#define CHURN_ROUNDS 3000
#define CHURN_EVERY 5
#define CHURN_BATCH 50

struct churn {
	actor_ref_t publisher;
	actor_broker_sub_t sub;
	unsigned rounds, got, bad;
	atomic_uint done; /* the churner made its last round */
	atomic_int rc;    /* both actors' */
};

/* A batch for each new subscription: most of it is still on its way when that one ends. */
static void churn_publisher(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct churn *c = state;
	if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	for (uint64_t i = 0; i < CHURN_BATCH; i++) {
		actor_broker_pub_t pub = {.subject = "churn.x", .data = &i, .len = sizeof(i)};
		int rc = actor_broker_publish(ctx, &pub);
		if (rc != 0)
			atomic_store(&c->rc, rc);
	}
}

static void churner(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct churn *c = state;
	if (msg->type == T_GO) {
		int rc = actor_broker_subscribe(ctx, "churn.x", NULL, &c->sub);
		if (rc != 0)
			atomic_store(&c->rc, rc);
		actor_send(actor_ctx_system(ctx), c->publisher, T_GO, NULL, 0);
		return;
	}
	if (msg->type != ACTOR_MSG_BROKER)
		return;
	actor_broker_msg_t *m = actor_broker_msg(msg);
	c->bad += m->sub.id != c->sub.id; /* nothing of an ended subscription arrives */
	if (++c->got % CHURN_EVERY != 0)
		return;
	ck_assert_int_eq(actor_broker_unsubscribe(ctx, c->sub), 0);
	if (++c->rounds == CHURN_ROUNDS) {
		atomic_store(&c->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	int rc = actor_broker_subscribe(ctx, "churn.x", NULL, &c->sub);
	if (rc != 0) {
		atomic_store(&c->rc, rc);
		atomic_store(&c->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	actor_send(actor_ctx_system(ctx), c->publisher, T_GO, NULL, 0);
}

START_TEST(subscriptions_ended_while_their_messages_stream_in_never_crash_the_client)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	struct churn c = {0};
	c.publisher = spawn_on(sys, 1, churn_publisher, &c);
	actor_ref_t a = spawn_on(sys, 0, churner, &c);
	send_ok(sys, a, T_GO, NULL, 0);
	assert_eventually(atomic_load(&c.done) == 1, TEST_WATCHDOG);
#ifdef TEST_NATS_CLIENT
	/* Every ended subscription is destroyed while the system runs, not only at its end: the
	 * marks come back. */
	struct broker *b = actor__broker_of(sys);
	assert_eventually(atomic_load(&b->graves_dug) >= CHURN_ROUNDS, TEST_WATCHDOG);
#endif
	send_ok(sys, c.publisher, T_QUIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "subscription churn");
	ck_assert_int_eq(atomic_load(&c.rc), 0);
	ck_assert_uint_eq(c.rounds, CHURN_ROUNDS);
	ck_assert_uint_eq(c.bad, 0);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Requests over NATS
 */

#define REQ_N 200

struct responder {
	actor_ref_t requester; /* told T_GO once the subscription is made */
	int rc;
	bool silent; /* takes requests and never answers */
};

static void responder_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct responder *r = state;
	if (msg->type == T_GO) {
		actor_broker_sub_t sub;
		r->rc = actor_broker_subscribe(ctx, "svc.triple", NULL, &sub);
		/* One connection: the subscription reaches the server before the requests. */
		actor_send(actor_ctx_system(ctx), r->requester, T_GO, NULL, 0);
		return;
	}
	if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	actor_broker_msg_t *m = actor_broker_msg(msg);
	if (r->silent)
		return;
	uint64_t v = data_u64(m) * 3;
	actor_broker_header_t h = {"X-By", "responder"};
	actor_broker_pub_t pub = {.subject = actor_broker_reply_subject(m),
	                          .headers = &h,
	                          .nheaders = 1,
	                          .data = &v,
	                          .len = sizeof(v)};
	if (actor_broker_publish(ctx, &pub) != 0)
		r->rc = -1;
}

struct requester {
	actor_ref_t responder;
	actor_request_t ids[REQ_N];
	unsigned seen[REQ_N];
	unsigned replies, bad, timed_out, no_resp;
	int mode; /* 0: REQ_N answered; 1: no responders; 2: one times out, one cancelled */
	int rc;
};

static void requester_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct requester *q = state;
	if (msg->type == T_GO) {
		if (q->mode == 0) {
			for (uint64_t i = 0; i < REQ_N; i++) {
				actor_broker_pub_t pub = {
				    .subject = "svc.triple", .data = &i, .len = sizeof(i)};
				actor_request_opts_t o = {.tag = i, .timeout_ns = 20000000000ull};
				int rc = actor_broker_request(ctx, &pub, &o, &q->ids[i]);
				if (rc != 0)
					q->rc = rc;
			}
		} else if (q->mode == 1) {
			uint64_t v = 1;
			actor_broker_pub_t pub = {
			    .subject = "nobody.here", .data = &v, .len = sizeof(v)};
			actor_request_opts_t o = {.tag =
			                              5}; /* no timeout: only the servers end it */
			q->rc = actor_broker_request(ctx, &pub, &o, &q->ids[0]);
		} else {
			uint64_t v = 1;
			actor_broker_pub_t pub = {
			    .subject = "svc.triple", .data = &v, .len = sizeof(v)};
			actor_request_opts_t o = {.tag = 1, .timeout_ns = 300000000ull};
			q->rc = actor_broker_request(ctx, &pub, &o, &q->ids[0]);
			actor_request_opts_t o2 = {.tag = 2, .timeout_ns = 100000000ull};
			if (q->rc == 0)
				q->rc = actor_broker_request(ctx, &pub, &o2, &q->ids[1]);
			if (q->rc == 0)
				q->rc = actor_request_cancel(ctx, q->ids[1]);
		}
		return;
	}
	const actor_reply_t *r = reply_of(msg);
	q->replies++;
	if (q->mode == 1) {
		q->no_resp += r->error == -ESRCH && r->tag == 5 && r->request.id == q->ids[0].id;
	} else if (q->mode == 2) {
		q->timed_out +=
		    r->error == -ETIMEDOUT && r->tag == 1 && actor_ref_is_none(msg->sender);
	} else {
		uint64_t i = r->tag;
		bool ok = r->error == 0 && i < REQ_N && r->type == ACTOR_MSG_BROKER &&
		          r->request.id == q->ids[i].id && actor_ref_is_none(msg->sender);
		if (ok) {
			actor_broker_msg_t *m = actor_reply_data((actor_reply_t *)r);
			const char *by = actor_broker_header(m, "X-By");
			ok = r->len >= sizeof(*m) && data_u64(m) == i * 3 && by != NULL &&
			     strcmp(by, "responder") == 0 && m->sub.id == 0;
			q->seen[i]++;
		}
		q->bad += !ok;
		if (q->replies < REQ_N)
			return;
	}
	actor_send(actor_ctx_system(ctx), q->responder, T_QUIT, NULL, 0);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(requests_over_nats_are_answered_once_each_by_id_and_tag)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	struct responder r = {0};
	struct requester q = {.mode = 0};
	q.responder = spawn_on(sys, 1, responder_behavior, &r);
	r.requester = spawn_on(sys, 0, requester_behavior, &q);
	send_ok(sys, q.responder, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "requests");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(q.rc, 0);
	ck_assert_uint_eq(q.replies, REQ_N);
	ck_assert_uint_eq(q.bad, 0);
	for (unsigned i = 0; i < REQ_N; i++)
		ck_assert_uint_eq(q.seen[i], 1);
	broker_done(sys, &srv);
}
END_TEST

START_TEST(a_request_that_no_subscriber_takes_ends_with_esrch_at_once)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	struct responder r = {0};
	struct requester q = {.mode = 1};
	q.responder = spawn_on(sys, 1, responder_behavior, &r);
	actor_ref_t req = spawn_on(sys, 0, requester_behavior, &q);
	send_ok(sys, req, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "no responders");
	ck_assert_int_eq(q.rc, 0);
	ck_assert_uint_eq(q.replies, 1);
	ck_assert_uint_eq(q.no_resp, 1);
	broker_done(sys, &srv);
}
END_TEST

START_TEST(a_request_nobody_answers_times_out_and_a_cancelled_one_gets_nothing)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	struct responder r = {.silent = true};
	struct requester q = {.mode = 2};
	q.responder = spawn_on(sys, 1, responder_behavior, &r);
	r.requester = spawn_on(sys, 0, requester_behavior, &q);
	send_ok(sys, q.responder, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "timeout");
	ck_assert_int_eq(q.rc, 0);
	ck_assert_uint_eq(q.replies, 1); /* the timeout; nothing for the cancelled one */
	ck_assert_uint_eq(q.timed_out, 1);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * JetStream publishes
 */

#define JS_N 100

struct jspub {
	unsigned round, acks, bad;
	uint64_t seq[JS_N];
	actor_request_t ids[JS_N];
	int rc;
};

static void jspub_send_round(actor_ctx_t *ctx, struct jspub *j)
{
	for (uint64_t i = 0; i < JS_N; i++) {
		char id[32];
		snprintf(id, sizeof(id), "line-%llu", (unsigned long long)i);
		actor_broker_pub_t pub = {
		    .subject = "chan.x", .data = &i, .len = sizeof(i), .msg_id = id};
		actor_request_opts_t o = {.tag = i};
		int rc = actor_broker_js_publish(ctx, &pub, &o, &j->ids[i]);
		if (rc != 0)
			j->rc = rc;
	}
}

static void jspub_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct jspub *j = state;
	if (msg->type == T_GO) {
		jspub_send_round(ctx, j);
		return;
	}
	const actor_reply_t *r = reply_of(msg);
	actor_broker_ack_t a = ack_of(msg);
	uint64_t i = r->tag;
	bool ok = i < JS_N && r->request.id == j->ids[i].id && a.error == 0 &&
	          strcmp(a.stream, "CHAN") == 0 && a.seq >= 1 && a.seq <= JS_N;
	if (ok && j->round == 0) {
		ok = a.duplicate == 0 && j->seq[i] == 0;
		j->seq[i] = a.seq;
	} else if (ok) {
		ok = a.duplicate == 1 && j->seq[i] == a.seq;
	}
	j->bad += !ok;
	if (++j->acks < JS_N * (j->round + 1))
		return;
	if (j->round++ == 0)
		jspub_send_round(ctx, j); /* the same ids again: duplicates */
	else
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(jetstream_publishes_are_acknowledged_once_stored_and_deduplicated_by_msg_id)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "chan.>", 1, 0, 0), 0);
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "chan.>", 1, 0, 0), 0); /* again */
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "other.>", 1, 0, 0), -EEXIST);
	ck_assert_int_eq(actor_broker_stream_add(sys, "R3", "r3.>", 3, 0, 0), -EINVAL);
	struct jspub j = {0};
	actor_ref_t a = spawn_on(sys, 0, jspub_behavior, &j);
	send_ok(sys, a, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "js publish");
	ck_assert_int_eq(j.rc, 0);
	ck_assert_uint_eq(j.acks, 2 * JS_N);
	ck_assert_uint_eq(j.bad, 0);
	/* Every sequence 1..JS_N once: stored in order of publishing. */
	for (unsigned i = 0; i < JS_N; i++)
		ck_assert_uint_eq(j.seq[i], i + 1);
	broker_done(sys, &srv);
}
END_TEST

/* A JetStream publish to a subject no stream captures is retried until its time runs out. */
static void js_nowhere(actor_ctx_t *ctx, void *arg)
{
	(void)arg;
	actor_broker_pub_t pub = {.subject = "nowhere.x", .data = "x", .len = 1};
	actor_request_opts_t o = {.timeout_ns = 600000000ull, .tag = 9};
	actor_request_t req;
	ck_assert_int_eq(actor_broker_js_publish(ctx, &pub, &o, &req), 0);
}

struct one_reply {
	actor_broker_ack_t ack;
	uint64_t tag;
	int replies;
	double at;
};

static void one_reply_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct one_reply *o = state;
	if (msg->type == T_GO) {
		js_nowhere(ctx, NULL);
		o->at = now_sec();
		return;
	}
	o->ack = ack_of(msg);
	o->tag = reply_of(msg)->tag;
	o->replies++;
	o->at = now_sec() - o->at;
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_jetstream_publish_nobody_stores_is_retried_until_it_times_out)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	struct one_reply o = {0};
	actor_ref_t a = spawn_on(sys, 0, one_reply_behavior, &o);
	send_ok(sys, a, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "js nowhere");
	ck_assert_int_eq(o.replies, 1);
	ck_assert_uint_eq(o.tag, 9);
	ck_assert_int_eq(o.ack.error, -ETIMEDOUT);
	ck_assert_double_ge(o.at, 0.55); /* not before its time */
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Key-value claims
 */

#define CLAIMERS 16

struct claim {
	atomic_uint *won, *lost, *other, *done;
};

static void claim_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct claim *c = state;
	if (msg->type == T_GO) {
		actor_request_t req;
		const char *me = "claimer";
		ck_assert_int_eq(
		    actor_broker_kv_create(ctx, "nicks", "al.ice", me, strlen(me), NULL, &req), 0);
		return;
	}
	actor_broker_ack_t a = ack_of(msg);
	if (a.error == 0 && a.seq > 0)
		atomic_fetch_add(c->won, 1);
	else if (a.error == -EEXIST && a.api_code == 10071)
		atomic_fetch_add(c->lost, 1);
	else
		atomic_fetch_add(c->other, 1);
	atomic_fetch_add(c->done, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Deletes the key once every claimer has its answer, and says how that went. */
static void unclaim_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	atomic_int *result = state;
	if (msg->type == T_GO) {
		actor_request_t req;
		ck_assert_int_eq(actor_broker_kv_delete(ctx, "nicks", "al.ice", NULL, &req), 0);
		return;
	}
	atomic_store(result, ack_of(msg).error == 0 ? 1 : -1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(of_many_actors_creating_one_key_exactly_one_wins_and_a_delete_frees_it)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	ck_assert_int_eq(actor_broker_kv_add(sys, "nicks", 1), 0);
	ck_assert_int_eq(actor_broker_kv_add(sys, "nicks", 1), 0);
	for (unsigned round = 0; round < 3; round++) {
		atomic_uint won = 0, lost = 0, other = 0, done = 0;
		struct claim c[CLAIMERS];
		actor_ref_t r[CLAIMERS];
		for (unsigned i = 0; i < CLAIMERS; i++) {
			c[i] = (struct claim){&won, &lost, &other, &done};
			r[i] = spawn_on(sys, i % 2, claim_behavior, &c[i]);
		}
		for (unsigned i = 0; i < CLAIMERS; i++)
			send_ok(sys, r[i], T_GO, NULL, 0);
		assert_eventually(atomic_load(&done) == CLAIMERS, TEST_WATCHDOG);
		ck_assert_uint_eq(atomic_load(&won), 1);
		ck_assert_uint_eq(atomic_load(&lost), CLAIMERS - 1);
		ck_assert_uint_eq(atomic_load(&other), 0);
		/* Deleted: the next round starts afresh. */
		atomic_int deleted = 0;
		actor_ref_t d = spawn_on(sys, 1, unclaim_behavior, &deleted);
		send_ok(sys, d, T_GO, NULL, 0);
		assert_eventually(atomic_load(&deleted) != 0, TEST_WATCHDOG);
		ck_assert_int_eq(atomic_load(&deleted), 1);
		for (unsigned i = 0; i < CLAIMERS; i++)
			wait_stopped(sys, r[i]);
		wait_stopped(sys, d);
	}
	actor_system_shutdown(sys);
	system_run_to_end(sys, TEST_WATCHDOG, "claims");
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A durable consumer
 */

#define CONS_N 50
#define CONS_SKIP 7 /* the stream sequence the consumer does not acknowledge the first time */

struct consumer {
	unsigned seen[CONS_N + 1];
	unsigned got, bad, redelivered, created;
	actor_request_t create;
	actor_broker_sub_t sub;
	int rc;
};

static void consumer_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct consumer *c = state;
	if (msg->type == T_GO) {
		actor_broker_consumer_opts_t co = {.stream = "CHAN",
		                                   .durable = "host-1",
		                                   .filter = "chan.>",
		                                   .ack_wait_ms = 500,
		                                   .max_ack_pending = 64,
		                                   .tag = 3};
		actor_request_opts_t o = {.tag = 99};
		c->rc = actor_broker_consume(ctx, &co, &o, &c->sub, &c->create);
		return;
	}
	if (msg->type == ACTOR_MSG_REPLY) {
		actor_broker_ack_t a = ack_of(msg);
		c->created += a.error == 0 && reply_of(msg)->tag == 99 &&
		              reply_of(msg)->request.id == c->create.id;
		if (a.error != 0)
			c->rc = a.error;
		return;
	}
	actor_broker_msg_t *m = actor_broker_msg(msg);
	uint64_t v = data_u64(m);
	bool ok = m->tag == 3 && m->sub.id == c->sub.id && m->stream_seq >= 1 &&
	          m->stream_seq <= CONS_N && v == m->stream_seq - 1;
	c->bad += !ok;
	if (!ok)
		return;
	c->seen[m->stream_seq]++;
	if (m->stream_seq == CONS_SKIP && m->delivered == 1)
		return; /* not acknowledged: it comes again */
	if (m->stream_seq == CONS_SKIP)
		c->redelivered += m->delivered == 2;
	else
		c->bad += m->delivered != 1;
	ck_assert_int_eq(actor_broker_ack(ctx, m, ACTOR_BROKER_ACK), 0);
	if (++c->got == CONS_N) {
		ck_assert_int_eq(actor_broker_unsubscribe(ctx, c->sub), 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static void publish_cons_n(actor_ctx_t *ctx, void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < CONS_N; i++) {
		actor_broker_pub_t pub = {.subject = "chan.y", .data = &i, .len = sizeof(i)};
		actor_request_t req;
		ck_assert_int_eq(actor_broker_js_publish(ctx, &pub, NULL, &req), 0);
	}
}

START_TEST(a_durable_consumer_delivers_each_stored_message_and_again_the_unacknowledged_one)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "chan.>", 1, 0, 0), 0);
	run_in_actor(sys, NULL, publish_cons_n, NULL);
	struct consumer c = {0};
	actor_ref_t a = spawn_on(sys, 0, consumer_behavior, &c);
	send_ok(sys, a, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "consumer");
	ck_assert_int_eq(c.rc, 0);
	ck_assert_uint_eq(c.created, 1);
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(c.got, CONS_N);
	ck_assert_uint_eq(c.redelivered, 1);
	for (unsigned i = 1; i <= CONS_N; i++)
		ck_assert_uint_eq(c.seen[i], i == CONS_SKIP ? 2 : 1);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * An ordered consumer
 */

#define ORD_N 600
#define ORD_BLOCK_AT                                                                               \
	50 /* the consumer stops here until told, so that more than max_pending wait               \
	    */
#define ORD_MAX_PENDING 16

struct ordered {
	atomic_ullong got;  /* messages passed, in order */
	atomic_int release; /* the test lets the blocked consumer go on */
	atomic_int blocked; /* it is blocked */
	unsigned bad;
	atomic_uint created;
	uint64_t last_seq;
	actor_request_t create;
	actor_broker_sub_t sub;
	int rc;
	int filtered; /* 1: chan.y only, whose values count 0, 1, 2, ...; 0: every stream sequence
	               */
	uint64_t quit_at;      /* nonzero: it unsubscribes and stops once it has had this many */
	uint32_t heartbeat_ms; /* 0: 100 */
};

static void ordered_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct ordered *c = state;
	if (msg->type == T_GO) {
		actor_broker_ordered_opts_t co = {.stream = "CHAN",
		                                  .filter = c->filtered ? "chan.y" : NULL,
		                                  .heartbeat_ms =
		                                      c->heartbeat_ms ? c->heartbeat_ms : 100,
		                                  .max_pending = c->filtered ? ORD_MAX_PENDING : 0,
		                                  .tag = 5};
		actor_request_opts_t o = {.tag = 98};
		c->rc = actor_broker_consume_ordered(ctx, &co, &o, &c->sub, &c->create);
		return;
	}
	if (msg->type == T_QUIT) {
		ck_assert_int_eq(actor_broker_unsubscribe(ctx, c->sub), 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type == ACTOR_MSG_REPLY) {
		actor_broker_ack_t a = ack_of(msg);
		c->created += a.error == 0 && reply_of(msg)->tag == 98 &&
		              reply_of(msg)->request.id == c->create.id;
		if (a.error != 0)
			c->rc = a.error;
		return;
	}
	actor_broker_msg_t *m = actor_broker_msg(msg);
	uint64_t n = atomic_load(&c->got);
	/* In order, once each: filtered, the values count up; unfiltered, the sequences do. */
	bool ok = m->tag == 5 && m->sub.id == c->sub.id && m->delivered == 1 &&
	          m->stream_seq > c->last_seq &&
	          (c->filtered ? data_u64(m) == n : m->stream_seq == n + 1);
	c->bad += !ok;
	c->last_seq = m->stream_seq;
	atomic_store(&c->got, n + 1);
	if (n + 1 == c->quit_at) {
		ck_assert_int_eq(actor_broker_unsubscribe(ctx, c->sub), 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (c->filtered && n + 1 == ORD_BLOCK_AT && !atomic_load(&c->release)) {
		atomic_store(&c->blocked, 1);
		while (!atomic_load(&c->release))
			sched_yield(); /* the worker is held: messages pile up past max_pending */
	}
}

static void publish_ord(actor_ctx_t *ctx, void *arg)
{
	/* Values first .. first + ORD_N / 2 - 1 on chan.y, with chan.x between them (filtered
	 * out). One connection stores them in the order sent. */
	uint64_t first = *(uint64_t *)arg;
	/* Some carry a header of their own named Status, as a heartbeat's status line reads. */
	static const actor_broker_header_t status = {"Status", "100"};
	for (uint64_t i = first; i < first + ORD_N / 2; i++) {
		actor_broker_pub_t x = {.subject = "chan.x", .data = "x", .len = 1};
		actor_broker_pub_t y = {.subject = "chan.y",
		                        .data = &i,
		                        .len = sizeof(i),
		                        .headers = i % 10 == 0 ? &status : NULL,
		                        .nheaders = i % 10 == 0};
		actor_request_t req;
		actor_request_opts_t o = {.timeout_ns = 60000000000ull};
		ck_assert_int_eq(actor_broker_js_publish(ctx, &x, &o, &req), 0);
		ck_assert_int_eq(actor_broker_js_publish(ctx, &y, &o, &req), 0);
	}
}

#ifdef TEST_NATS_CLIENT
static int chan_info(const char *urls, char *leader, size_t cap, uint64_t *msgs,
                     uint64_t *consumers);
#endif

START_TEST(an_ordered_consumer_gets_each_message_once_in_order_through_a_pause_and_a_crash)
{
	struct nats_srv srv = {0};
	actor_broker_opts_t bo = {.reconnect_wait_ms = 50};
	actor_system_t *sys = broker_system(&srv, &bo);
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "chan.>", 1, 0, 0), 0);
	static struct ordered c;
	c.filtered = 1;
	actor_ref_t a = spawn_on(sys, 0, ordered_behavior, &c);
	send_ok(sys, a, T_GO, NULL, 0);
	/* Half the messages, with the consumer held at ORD_BLOCK_AT: it falls behind by more than
	 * max_pending, so its consumer pauses and is made again once it has room. */
	uint64_t first = 0;
	run_in_actor(sys, NULL, publish_ord, &first);
	assert_eventually(atomic_load(&c.blocked) == 1, TEST_WATCHDOG);
#ifdef TEST_NATS_CLIENT
	uint64_t msgs = 0;
	assert_eventually(chan_info(srv.url, NULL, 0, &msgs, NULL) == 0 && msgs == ORD_N,
	                  TEST_WATCHDOG);
#endif
	atomic_store(&c.release, 1);
	assert_eventually(atomic_load(&c.got) == ORD_N / 2, TEST_WATCHDOG);
	/* The server crashes, with the consumer (in its memory), and comes back: the consumer
	 * falls silent and is made again after the last message passed. */
	nats_stop(&srv, true);
	nats_start(&srv);
	first = ORD_N / 2;
	run_in_actor(sys, NULL, publish_ord, &first);
	assert_eventually(atomic_load(&c.got) >= ORD_N, TEST_WATCHDOG);
	send_ok(sys, a, T_QUIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "ordered consumer");
	ck_assert_int_eq(c.rc, 0);
	ck_assert_uint_eq(c.created, 1);
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(atomic_load(&c.got), ORD_N);
#ifdef TEST_NATS_CLIENT
	/* Unsubscribed: no consumer of it is left on the server, those of the pause included. */
	uint64_t consumers = 1;
	assert_eventually(chan_info(srv.url, NULL, 0, NULL, &consumers) == 0 && consumers == 0,
	                  TEST_WATCHDOG);
#endif
	broker_done(sys, &srv);
}
END_TEST

struct cancelled {
	atomic_int replies, last_error;
	actor_request_t create;
};

static void cancelled_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct cancelled *c = state;
	if (msg->type == T_GO) {
		actor_broker_ordered_opts_t co = {.stream = "CHAN"};
		actor_broker_sub_t sub;
		ck_assert_int_eq(actor_broker_consume_ordered(ctx, &co, NULL, &sub, &c->create), 0);
		ck_assert_int_eq(actor_broker_unsubscribe(ctx, sub), 0);
		return;
	}
	if (msg->type == ACTOR_MSG_REPLY && reply_of(msg)->request.id == c->create.id) {
		atomic_store(&c->last_error, ack_of(msg).error);
		atomic_fetch_add(&c->replies, 1);
	}
}

/* Unsubscribed while the server does not answer (stopped with SIGSTOP): the first creation's
 * request still gets its one reply, -ECANCELED, and no other once the server answers again. */
START_TEST(an_ordered_consumer_ended_before_its_creation_is_answered_still_gets_one_reply)
{
	struct nats_srv srv = {0};
	actor_system_t *sys = broker_system(&srv, NULL);
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "chan.>", 1, 0, 0), 0);
	static struct cancelled c;
	actor_ref_t a = spawn_on(sys, 0, cancelled_behavior, &c);
	ck_assert_int_eq(kill(srv.pid, SIGSTOP), 0);
	send_ok(sys, a, T_GO, NULL, 0);
	assert_eventually(atomic_load(&c.replies) == 1, TEST_WATCHDOG);
	ck_assert_int_eq(kill(srv.pid, SIGCONT), 0);
	ck_assert_int_eq(atomic_load(&c.last_error), -ECANCELED);
	/* A later call through the server gives the creation's answer time to come. */
	ck_assert_int_eq(actor_broker_stream_add(sys, "CHAN", "chan.>", 1, 0, 0), 0);
	actor_system_shutdown(sys);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	ck_assert_int_eq(atomic_load(&c.replies), 1);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The connection's state across a server's crash; a refused publish and its notice
 */

struct watcher {
	atomic_int states[8]; /* how many of each state were reported */
	atomic_int last;
	atomic_int refused, writable, after;
	atomic_int got_after; /* messages of the old subscription after reconnecting */
	int phase;
	int rc;
};

#define BIG (32 * 1024)

static void watcher_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct watcher *w = state;
	static char big[BIG];
	if (msg->type == T_GO) {
		actor_broker_sub_t sub;
		w->rc = actor_broker_watch(ctx, 1);
		if (w->rc == 0)
			w->rc = actor_broker_subscribe(ctx, "after", NULL, &sub);
		return;
	}
	if (msg->type == ACTOR_MSG_BROKER_STATUS) {
		const actor_broker_status_t *s = actor_msg_data(msg);
		if (s->state > 0 && s->state < 8)
			atomic_fetch_add(&w->states[s->state], 1);
		atomic_store(&w->last, s->state);
		if (s->state == ACTOR_BROKER_CONNECTED &&
		    strncmp(s->server, "nats://127.0.0.1:", 17) != 0)
			w->rc = -100;
		return;
	}
	if (msg->type == T_READY) {
		/* Disconnected: publish until refused. */
		actor_broker_pub_t pub = {.subject = "big", .data = big, .len = sizeof(big)};
		for (int i = 0; i < 1000; i++) {
			int rc = actor_broker_publish(ctx, &pub);
			if (rc == -EAGAIN) {
				atomic_store(&w->refused, 1);
				return;
			}
			if (rc != 0) {
				w->rc = rc;
				return;
			}
		}
		w->rc = -101; /* never refused */
		return;
	}
	if (msg->type == ACTOR_MSG_BROKER_WRITABLE) {
		atomic_fetch_add(&w->writable, 1);
		uint64_t v = 42;
		actor_broker_pub_t pub = {.subject = "after", .data = &v, .len = sizeof(v)};
		if (actor_broker_publish(ctx, &pub) == 0)
			atomic_store(&w->after, 1);
		return;
	}
	if (msg->type == ACTOR_MSG_BROKER) {
		if (data_u64(actor_broker_msg(msg)) == 42) {
			atomic_fetch_add(&w->got_after, 1);
			actor_broker_watch(ctx, 0);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}
}

START_TEST(a_server_crash_is_reported_publishes_are_refused_then_resume_with_a_notice)
{
	struct nats_srv srv = {0};
	actor_broker_opts_t o = {.reconnect_wait_ms = 50, .pending_max = 256 * 1024};
	actor_system_t *sys = broker_system(&srv, &o);
	struct watcher w = {0};
	actor_ref_t a = spawn_on(sys, 0, watcher_behavior, &w);
	send_ok(sys, a, T_GO, NULL, 0);
	assert_eventually(atomic_load(&w.states[ACTOR_BROKER_CONNECTED]) == 1, TEST_WATCHDOG);
	nats_stop(&srv, true);
	assert_eventually(atomic_load(&w.last) == ACTOR_BROKER_DISCONNECTED, TEST_WATCHDOG);
	send_ok(sys, a, T_READY, NULL, 0);
	assert_eventually(atomic_load(&w.refused) == 1 || w.rc != 0, TEST_WATCHDOG);
	ck_assert_int_eq(w.rc, 0);
	ck_assert_int_eq(atomic_load(&w.writable), 0);
	nats_start(&srv); /* the same port */
	assert_eventually(atomic_load(&w.got_after) == 1 || w.rc != 0, TEST_WATCHDOG);
	ck_assert_int_eq(w.rc, 0);
	actor_system_shutdown(sys);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	ck_assert_int_eq(atomic_load(&w.states[ACTOR_BROKER_CONNECTED]), 2);
	ck_assert_int_eq(atomic_load(&w.states[ACTOR_BROKER_DISCONNECTED]), 1);
	ck_assert_int_eq(atomic_load(&w.writable), 1);
	ck_assert_int_eq(atomic_load(&w.after), 1);
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Misuse
 */

static void misuse_in_actor(actor_ctx_t *ctx, void *arg)
{
	(void)arg;
	actor_broker_sub_t sub;
	const char *bad[] = {"", "a..b", "a b", "a.>.b", ">x", "a.*b", ".a", "a.", "a\tb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(actor_broker_subscribe(ctx, bad[i], NULL, &sub), -EINVAL);
	ck_assert_int_eq(actor_broker_subscribe(ctx, "ok.>", NULL, NULL), -EINVAL);
	actor_broker_pub_t pub = {.subject = "a.*"};
	ck_assert_int_eq(actor_broker_publish(ctx, &pub), -EINVAL);
	pub.subject = "a.b";
	pub.len = 3; /* NULL data */
	ck_assert_int_eq(actor_broker_publish(ctx, &pub), -EINVAL);
	pub.len = 0;
	actor_broker_header_t h = {"Bad Name", "v"};
	pub.headers = &h;
	pub.nheaders = 1;
	ck_assert_int_eq(actor_broker_publish(ctx, &pub), -EINVAL);
	h = (actor_broker_header_t){"Name", "a\r\nb"};
	ck_assert_int_eq(actor_broker_publish(ctx, &pub), -EINVAL);
	pub.nheaders = 0;
	pub.msg_id = "x"; /* only for JetStream */
	ck_assert_int_eq(actor_broker_publish(ctx, &pub), -EINVAL);
	pub.msg_id = NULL;
	ck_assert_int_eq(actor_broker_publish(ctx, NULL), -EINVAL);
	actor_request_t req;
	pub.reply = "r";
	ck_assert_int_eq(actor_broker_request(ctx, &pub, NULL, &req), -EINVAL);
	ck_assert_int_eq(actor_broker_js_publish(ctx, &pub, NULL, &req), -EINVAL);
	pub.reply = NULL;
	ck_assert_int_eq(actor_broker_request(ctx, &pub, NULL, NULL), -EINVAL);
	ck_assert_int_eq(actor_broker_kv_create(ctx, "b", ".x", "v", 1, NULL, &req), -EINVAL);
	ck_assert_int_eq(actor_broker_kv_create(ctx, "b", "x y", "v", 1, NULL, &req), -EINVAL);
	ck_assert_int_eq(actor_broker_kv_create(ctx, "b.c", "x", "v", 1, NULL, &req), -EINVAL);
	ck_assert_int_eq(actor_broker_kv_delete(ctx, "b", "", NULL, &req), -EINVAL);
	actor_broker_consumer_opts_t co = {.stream = "S"};
	ck_assert_int_eq(actor_broker_consume(ctx, &co, NULL, &sub, &req), -EINVAL);
	/* An ordered consumer: no stream, a bad one, a start with deliver_new, a bad filter. */
	actor_broker_ordered_opts_t oo = {0};
	ck_assert_int_eq(actor_broker_consume_ordered(ctx, &oo, NULL, &sub, &req), -EINVAL);
	oo.stream = "S.x";
	ck_assert_int_eq(actor_broker_consume_ordered(ctx, &oo, NULL, &sub, &req), -EINVAL);
	oo = (actor_broker_ordered_opts_t){.stream = "S", .deliver_new = 1, .start_seq = 5};
	ck_assert_int_eq(actor_broker_consume_ordered(ctx, &oo, NULL, &sub, &req), -EINVAL);
	oo = (actor_broker_ordered_opts_t){.stream = "S", .filter = "a..b"};
	ck_assert_int_eq(actor_broker_consume_ordered(ctx, &oo, NULL, &sub, &req), -EINVAL);
	oo.filter = NULL;
	ck_assert_int_eq(actor_broker_consume_ordered(ctx, &oo, NULL, NULL, &req), -EINVAL);
	ck_assert_int_eq(actor_broker_unsubscribe(ctx, (actor_broker_sub_t){0}), -ESRCH);
	ck_assert_int_eq(actor_broker_unsubscribe(ctx, (actor_broker_sub_t){12345}), -ESRCH);
	ck_assert_int_eq(actor_broker_watch(ctx, 2), -EINVAL);
	actor_broker_msg_t m = {0};
	ck_assert_int_eq(actor_broker_ack(ctx, &m, ACTOR_BROKER_ACK), -EINVAL);
	ck_assert_ptr_null(actor_broker_header(&m, "x"));
}

static void others_sub_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	actor_broker_sub_t *s = state;
	(void)msg;
	ck_assert_int_eq(actor_broker_subscribe(ctx, "x", NULL, s), 0);
}

static void unsubscribe_others(actor_ctx_t *ctx, void *arg)
{
	ck_assert_int_eq(actor_broker_unsubscribe(ctx, *(actor_broker_sub_t *)arg), -EPERM);
}

static void unsubscribe_elsewhere(actor_ctx_t *ctx, void *arg)
{
	ck_assert_int_eq(actor_broker_unsubscribe(ctx, *(actor_broker_sub_t *)arg), -EXDEV);
}

static void connect_from_worker(actor_ctx_t *ctx, void *arg)
{
	actor_broker_opts_t o = {.servers = arg};
	ck_assert_int_eq(actor_broker_connect(actor_ctx_system(ctx), &o), -EDEADLK);
	ck_assert_int_eq(actor_broker_stream_add(actor_ctx_system(ctx), "S", "s", 1, 0, 0),
	                 -EDEADLK);
}

static void not_connected(actor_ctx_t *ctx, void *arg)
{
	(void)arg;
	actor_broker_sub_t sub;
	actor_broker_pub_t pub = {.subject = "a"};
	actor_request_t req;
	ck_assert_int_eq(actor_broker_subscribe(ctx, "a", NULL, &sub), -ENOTCONN);
	ck_assert_int_eq(actor_broker_publish(ctx, &pub), -ENOTCONN);
	ck_assert_int_eq(actor_broker_request(ctx, &pub, NULL, &req), -ENOTCONN);
	ck_assert_int_eq(actor_broker_watch(ctx, 1), -ENOTCONN);
	actor_broker_ordered_opts_t oo = {.stream = "S"};
	ck_assert_int_eq(actor_broker_consume_ordered(ctx, &oo, NULL, &sub, &req), -ENOTCONN);
}

START_TEST(bad_calls_get_clear_errors_and_change_nothing)
{
	actor_system_t *sys = system_new(2);
	actor_broker_opts_t o = {0};
	ck_assert_int_eq(actor_broker_connect(NULL, &o), -EINVAL);
	ck_assert_int_eq(actor_broker_connect(sys, NULL), -EINVAL);
	ck_assert_int_eq(actor_broker_connect(sys, &o), -EINVAL); /* no servers */
	o.servers = ",";
	ck_assert_int_eq(actor_broker_connect(sys, &o), -EINVAL);
	o.servers = "nats://a:1, ,nats://b:2";
	ck_assert_int_eq(actor_broker_connect(sys, &o), -EINVAL);
	o.servers = "nats://a b:1";
	ck_assert_int_eq(actor_broker_connect(sys, &o), -EINVAL);
	ck_assert_int_eq(actor_broker_close(sys, 0), -ENOTCONN);
	ck_assert_int_eq(actor_broker_stream_add(sys, "S", "s", 1, 0, 0), -ENOTCONN);
	run_in_actor(sys, NULL, not_connected, NULL);
	actor_system_shutdown(sys);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	actor_system_free(sys);

	/* Nobody listening: refused, and the system stays usable for a second try (-EALREADY). */
	sys = system_new(1);
	o = (actor_broker_opts_t){.servers = "nats://127.0.0.1:1", .connect_timeout_ms = 500};
	ck_assert_int_eq(actor_broker_connect(sys, &o), -ECONNREFUSED);
	actor_system_free(sys);

	/* Spaces around the servers of a list are dropped (a regression: the first server's
	 * string was freed from inside its copy). */
	struct nats_srv srv = {0};
	nats_start(&srv);
	sys = system_new(2);
	char list[160];
	snprintf(list, sizeof(list), "  %s , nats://127.0.0.1:1 ", srv.url);
	o = (actor_broker_opts_t){.servers = list};
	ck_assert_int_eq(actor_broker_connect(sys, &o), 0);
	ck_assert_int_eq(actor_broker_connect(sys, &o), -EALREADY);
	run_in_actor(sys, NULL, misuse_in_actor, NULL);
	run_in_actor(sys, NULL, connect_from_worker, srv.url);
	actor_broker_sub_t theirs = {0};
	actor_ref_t other = spawn_on(sys, 1, others_sub_behavior, &theirs);
	send_ok(sys, other, T_GO, NULL, 0);
	assert_eventually(theirs.id != 0, TEST_WATCHDOG);
	actor_spawn_opts_t on1 = {.placement = ACTOR_PLACE_FIXED, .worker = 1};
	actor_spawn_opts_t on0 = {.placement = ACTOR_PLACE_FIXED, .worker = 0};
	run_in_actor(sys, &on1, unsubscribe_others, &theirs);
	run_in_actor(sys, &on0, unsubscribe_elsewhere, &theirs);
	ck_assert_int_eq(actor_stop(sys, other), 0);
	wait_stopped(sys, other);
	ck_assert_int_eq(actor_broker_close(sys, 1000), 0);
	ck_assert_int_eq(actor_broker_close(sys, 0), -ENOTCONN);
	actor_system_shutdown(sys);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	broker_done(sys, &srv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A three-server cluster: the stream's leader dies in the middle of publishing
 */

#ifdef TEST_NATS_CLIENT

#define SPLIT_N 3000
#define SPLIT_WINDOW 64
#define SPLIT_KILL_AT 500

struct splitter {
	uint64_t seq[SPLIT_N];
	int32_t error[SPLIT_N];
	actor_request_t ids[SPLIT_N];
	uint64_t sent;
	atomic_ullong acked; /* answers so far: the test's progress */
	unsigned bad;
	int rc;
};

static void split_send(actor_ctx_t *ctx, struct splitter *sp)
{
	uint64_t i = sp->sent++;
	char id[32];
	snprintf(id, sizeof(id), "m-%llu", (unsigned long long)i);
	actor_broker_pub_t pub = {.subject = "chan.z", .data = &i, .len = sizeof(i), .msg_id = id};
	actor_request_opts_t o = {.tag = i, .timeout_ns = 60000000000ull};
	int rc = actor_broker_js_publish(ctx, &pub, &o, &sp->ids[i]);
	if (rc != 0)
		sp->rc = rc;
}

static void splitter_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct splitter *sp = state;
	if (msg->type == T_GO) {
		while (sp->sent < SPLIT_WINDOW)
			split_send(ctx, sp);
		return;
	}
	const actor_reply_t *r = reply_of(msg);
	actor_broker_ack_t a = ack_of(msg);
	uint64_t i = r->tag;
	if (i >= SPLIT_N || r->request.id != sp->ids[i].id || sp->error[i] != 1) {
		sp->bad++;
	} else {
		sp->error[i] = a.error;
		sp->seq[i] = a.seq;
	}
	if (atomic_fetch_add(&sp->acked, 1) + 1 == SPLIT_N) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (sp->sent < SPLIT_N)
		split_send(ctx, sp);
}

/* What the servers at `urls` say of stream CHAN, asked with libnats directly: its leader ("n1"
 * to "n3") into `leader` if not NULL, its message count into *msgs and its consumers into
 * *consumers if not NULL. 0, or -1 if they could not say. */
static int chan_info(const char *urls, char *leader, size_t cap, uint64_t *msgs,
                     uint64_t *consumers)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	int rc = -1;
	if (natsConnection_ConnectTo(&nc, urls) == NATS_OK &&
	    natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
	    js_GetStreamInfo(&si, js, "CHAN", NULL, NULL) == NATS_OK &&
	    (leader == NULL || (si->Cluster != NULL && si->Cluster->Leader != NULL))) {
		if (leader != NULL)
			snprintf(leader, cap, "%s", si->Cluster->Leader);
		if (msgs != NULL)
			*msgs = si->State.Msgs;
		if (consumers != NULL)
			*consumers = (uint64_t)si->State.Consumers;
		rc = 0;
	}
	if (si != NULL)
		jsStreamInfo_Destroy(si);
	if (js != NULL)
		jsCtx_Destroy(js);
	if (nc != NULL)
		natsConnection_Destroy(nc);
	return rc;
}

/* A system connected to `servers`, reconnecting quickly. */
static actor_system_t *cluster_system(const char *servers)
{
	actor_system_t *sys = system_new(2);
	actor_broker_opts_t o = {.servers = servers, .reconnect_wait_ms = 100};
	ck_assert_int_eq(actor_broker_connect(sys, &o), 0);
	return sys;
}

/* Stream CHAN on the three servers. The cluster elects its JetStream leader first: until then
 * the stream cannot be made. */
static void chan_r3(actor_system_t *sys)
{
	int rc;
	double end = now_sec() + TEST_WATCHDOG_STRESS * test_scale();
	while ((rc = actor_broker_stream_add(sys, "CHAN", "chan.>", 3, 0, 0)) != 0 &&
	       now_sec() < end)
		sleep_ms(100);
	ck_assert_msg(rc == 0, "stream_add R3: %s", strerror(-rc));
}

START_TEST(no_acknowledged_publish_is_lost_when_the_stream_leader_is_killed_nor_missed_by_a_reader)
{
	struct nats_cluster c = {0};
	nats_cluster_start(&c);
	actor_system_t *sys = cluster_system(c.urls);
	chan_r3(sys);
	static struct splitter sp;
	for (unsigned i = 0; i < SPLIT_N; i++)
		sp.error[i] = 1; /* not answered */
	/* An ordered consumer reads the stream all along: its consumer lives on one server,
	 * maybe the one killed, and is made again elsewhere. */
	static struct ordered oc = {.quit_at = SPLIT_N};
	actor_ref_t reader = spawn_on(sys, 1, ordered_behavior, &oc);
	send_ok(sys, reader, T_GO, NULL, 0);
	actor_ref_t a = spawn_on(sys, 0, splitter_behavior, &sp);
	send_ok(sys, a, T_GO, NULL, 0);
	assert_eventually(atomic_load(&sp.acked) >= SPLIT_KILL_AT, TEST_WATCHDOG_STRESS);
	char leader[16];
	ck_assert_int_eq(chan_info(c.urls, leader, sizeof(leader), NULL, NULL), 0);
	int victim = leader[1] - '1';
	ck_assert(victim >= 0 && victim < 3);
	nats_stop(&c.node[victim], true);
	struct watchdog wd;
	watchdog_start_progress(&wd, sys, TEST_WATCHDOG_STRESS, "publishing through the split",
	                        &sp.acked);
	ck_assert_int_eq(actor_system_run(sys), 0);
	ck_assert(!watchdog_stop(&wd));
	ck_assert_int_eq(sp.rc, 0);
	ck_assert_uint_eq(sp.bad, 0);
	/* Every publish acknowledged, each with a sequence of its own: 1..SPLIT_N once each. */
	static uint8_t seen[SPLIT_N + 1];
	for (unsigned i = 0; i < SPLIT_N; i++) {
		ck_assert_msg(sp.error[i] == 0, "publish %u: %d", i, sp.error[i]);
		ck_assert_uint_ge(sp.seq[i], 1);
		ck_assert_uint_le(sp.seq[i], SPLIT_N);
		ck_assert_uint_eq(seen[sp.seq[i]]++, 0);
	}
	/* And the survivors hold exactly those: none lost, none stored twice. */
	char survivors[200] = "";
	for (int i = 0; i < 3; i++)
		if (i != victim)
			snprintf(survivors + strlen(survivors),
			         sizeof(survivors) - strlen(survivors), "%s%s",
			         survivors[0] ? "," : "", c.node[i].url);
	uint64_t kept = 0;
	ck_assert_int_eq(chan_info(survivors, NULL, 0, &kept, NULL), 0);
	ck_assert_uint_eq(kept, SPLIT_N);
	/* The reader had every sequence, 1..SPLIT_N, once each and in order. */
	ck_assert_int_eq(oc.rc, 0);
	ck_assert_uint_eq(oc.created, 1);
	ck_assert_uint_eq(oc.bad, 0);
	ck_assert_uint_eq(atomic_load(&oc.got), SPLIT_N);
	actor_system_free(sys);
	nats_cluster_free(&c);
}
END_TEST
#define LOSS_N 2000
#define LOSS_KILL_AT 400

/* The reader's server dies while another connection publishes: deliveries pushed while the
 * reader's connection moves to another server are lost on the way, and its consumer (on the
 * stream leader, alive) goes on counting, or, without interest for a while, goes. Either way the
 * reader gets every sequence once, in order: from a gap in the count, or after the silence. */
START_TEST(an_ordered_consumer_makes_up_for_deliveries_lost_while_its_connection_moved)
{
	struct nats_cluster c = {0};
	nats_cluster_start(&c);
	/* The stream first; its leader decides which node the reader uses (below). */
	actor_system_t *sys = cluster_system(c.urls);
	chan_r3(sys);
	char leader[16];
	assert_eventually(chan_info(c.urls, leader, sizeof(leader), NULL, NULL) == 0,
	                  TEST_WATCHDOG_STRESS);
	int lead = leader[1] - '1';
	ck_assert(lead >= 0 && lead < 3);
	int away = (lead + 1) % 3, pubnode = (lead + 2) % 3;
	actor_system_free(sys);

	/* The reader connects to `away` alone (it learns the others from it). */
	sys = cluster_system(c.node[away].url);
	static struct ordered oc = {.quit_at = LOSS_N, .heartbeat_ms = 1000};
	actor_ref_t reader = spawn_on(sys, 1, ordered_behavior, &oc);
	send_ok(sys, reader, T_GO, NULL, 0);
	assert_eventually(atomic_load(&oc.created) == 1, TEST_WATCHDOG);

	/* Another connection, to a node that stays, publishes; `away` dies on the way. */
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	ck_assert_int_eq(natsConnection_ConnectTo(&nc, c.node[pubnode].url), NATS_OK);
	ck_assert_int_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	for (uint64_t i = 0; i < LOSS_N; i++) {
		if (i == LOSS_KILL_AT)
			nats_stop(&c.node[away], true);
		natsStatus st;
		double until = now_sec() + TEST_WATCHDOG * test_scale();
		while ((st = js_Publish(NULL, js, "chan.l", &i, sizeof(i), NULL, NULL)) !=
		           NATS_OK &&
		       now_sec() < until)
			sleep_ms(50);
		ck_assert_int_eq(st, NATS_OK);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	system_run_to_end(sys, TEST_WATCHDOG, "the reader");
	ck_assert_int_eq(oc.rc, 0);
	ck_assert_uint_eq(oc.bad, 0);
	ck_assert_uint_eq(atomic_load(&oc.got), LOSS_N);
	nats_cluster_free(&c);
}
END_TEST
#endif /* TEST_NATS_CLIENT */

static Suite *broker_suite(void)
{
	Suite *s = suite_create("broker");
	TCase *tc = tcase_new("broker", TEST_TIMEOUT);
	tcase_add_test(tc,
	               a_subscriber_gets_every_message_once_in_order_with_its_headers_and_reply);
	tcase_add_test(tc, a_queue_group_gives_each_message_to_exactly_one_member);
	tcase_add_test(tc, a_subscriber_behind_by_max_pending_loses_the_rest_and_is_told_how_many);
	tcase_add_test(tc,
	               no_message_of_a_subscription_arrives_after_unsubscribe_not_even_one_queued);
	tcase_add_test(tc,
	               subscriptions_ended_while_their_messages_stream_in_never_crash_the_client);
	tcase_add_test(tc, requests_over_nats_are_answered_once_each_by_id_and_tag);
	tcase_add_test(tc, a_request_that_no_subscriber_takes_ends_with_esrch_at_once);
	tcase_add_test(tc, a_request_nobody_answers_times_out_and_a_cancelled_one_gets_nothing);
	tcase_add_test(tc,
	               jetstream_publishes_are_acknowledged_once_stored_and_deduplicated_by_msg_id);
	tcase_add_test(tc, a_jetstream_publish_nobody_stores_is_retried_until_it_times_out);
	tcase_add_test(tc, of_many_actors_creating_one_key_exactly_one_wins_and_a_delete_frees_it);
	tcase_add_test(
	    tc, a_durable_consumer_delivers_each_stored_message_and_again_the_unacknowledged_one);
	tcase_add_test(
	    tc, an_ordered_consumer_gets_each_message_once_in_order_through_a_pause_and_a_crash);
	tcase_add_test(
	    tc, an_ordered_consumer_ended_before_its_creation_is_answered_still_gets_one_reply);
	tcase_add_test(tc,
	               a_server_crash_is_reported_publishes_are_refused_then_resume_with_a_notice);
	tcase_add_test(tc, bad_calls_get_clear_errors_and_change_nothing);
	suite_add_tcase(s, tc);
#ifdef TEST_NATS_CLIENT
	TCase *cluster = tcase_new("cluster", TEST_TIMEOUT_STRESS);
	tcase_add_test(
	    cluster,
	    no_acknowledged_publish_is_lost_when_the_stream_leader_is_killed_nor_missed_by_a_reader);
	tcase_add_test(cluster,
	               an_ordered_consumer_makes_up_for_deliveries_lost_while_its_connection_moved);
	suite_add_tcase(s, cluster);
#endif
	return s;
}

int main(int argc, char **argv)
{
	test_argc = argc;
	test_argv = argv;
	/* Without libnats every call says -ENOSYS; with it, a system never connected says
	 * -ENOTCONN (and nothing of libnats runs in this process, which forks each test). */
	actor_system_t *sys;
	actor_config_t cfg = {.workers = 1};
	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0) {
		fprintf(stderr, "test_broker: actor_system_create: %s\n", strerror(-rc));
		return EXIT_FAILURE;
	}
	rc = actor_broker_close(sys, 0);
	actor_system_free(sys);
	if (rc == -ENOSYS) {
		printf(
		    "test_broker: skipped: the library was built without libnats (libnats-dev)\n");
		return 77;
	}
	if (nats_server_path() == NULL) {
		printf("test_broker: skipped: nats-server is not installed (apt-get install "
		       "nats-server)\n");
		return 77;
	}
	SRunner *sr = srunner_create(broker_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
