/* test_request.c: requests and replies (actor.h, "Requests"): replies matched by id and tag,
 * timeouts, cancellation, requesters and receivers that stop, one answer per request, kept
 * requests answered later, order with plain sends, moving responders, and actor_request_wait
 * from threads outside the pool.
 */
#include "common.h"

#define T_REQ 1  /* a request's type */
#define T_GO 2   /* "answer what you keep now" */
#define T_DONE 3 /* sent after the answers: they are handled when it arrives */
#define T_QUIT 4 /* "stop" */
#define T_NEXT 5 /* a sender's note to itself: the next batch */
#define T_ANS 7  /* an answer's type */
#define KEEP_MAX 512

/* Sum of a per-worker counter over every worker. */
static uint64_t replies_dropped(actor_system_t *sys)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < actor_system_workers(sys); i++) {
		actor_worker_stats_t ws;
		ck_assert_int_eq(actor_stats_worker(sys, i, &ws), 0);
		n += ws.replies_dropped;
	}
	return n;
}

static const actor_reply_t *reply_of(actor_msg_t *msg)
{
	ck_assert_uint_eq(msg->type, ACTOR_MSG_REPLY);
	ck_assert_uint_ge(msg->size, sizeof(actor_reply_t));
	return actor_msg_data(msg);
}

/* ---------------------------------------------------------------------------------------------
 * A keeper: keeps every request it gets; on T_GO answers them all (value * 3), in an order
 * shuffled by its seed, then, if `tell_sender`, sends T_DONE to T_GO's sender (after the
 * answers, so they are handled when T_DONE arrives); stops on T_QUIT, or after answering
 * `expect` requests if that is set.
 */

struct keeper {
	actor_reply_handle_t h[KEEP_MAX];
	uint64_t value[KEEP_MAX];
	unsigned kept, answered, expect, plain;
	unsigned seed;
	int keep_rc, reply_rc;
	bool tell_sender;
	atomic_int has_kept; /* raised once it keeps a request (for threads outside) */
	atomic_int replied;  /* raised once it has answered (for a requester waiting in a gate) */
};

static void keeper_answer_all(actor_ctx_t *ctx, struct keeper *k, actor_ref_t done_to)
{
	for (unsigned i = k->kept; i > 1; i--) {
		unsigned j = (unsigned)rand_r(&k->seed) % i;
		actor_reply_handle_t h = k->h[i - 1];
		uint64_t v = k->value[i - 1];
		k->h[i - 1] = k->h[j];
		k->value[i - 1] = k->value[j];
		k->h[j] = h;
		k->value[j] = v;
	}
	for (unsigned i = 0; i < k->kept; i++) {
		uint64_t v = k->value[i] * 3;
		int rc = actor_reply_to(ctx, &k->h[i], T_ANS, &v, sizeof(v));
		if (rc != 0)
			k->reply_rc = rc;
		k->answered++;
	}
	k->kept = 0;
	if (k->tell_sender && !actor_ref_is_none(done_to))
		actor_send(actor_ctx_system(ctx), done_to, T_DONE, NULL, 0);
	atomic_store_explicit(&k->replied, 1, memory_order_release);
}

static void keeper_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct keeper *k = state;
	if (actor_request_of(ctx, NULL) == 1) {
		int rc = actor_request_keep(ctx, &k->h[k->kept]);
		if (rc != 0)
			k->keep_rc = rc;
		k->value[k->kept++] = msg_u64(msg);
		atomic_store_explicit(&k->has_kept, 1, memory_order_release);
		if (k->expect != 0 && k->kept + k->answered == k->expect) {
			keeper_answer_all(ctx, k, ACTOR_REF_NONE);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}
	k->plain++;
	if (msg->type == T_GO)
		keeper_answer_all(ctx, k, msg->sender);
	else if (msg->type == T_QUIT)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* ---------------------------------------------------------------------------------------------
 * Many requests outstanding, answered in random order
 */

#define MANY_RESPONDERS 8
#define MANY_PER 32
#define MANY_TOTAL (MANY_RESPONDERS * MANY_PER)

struct many {
	actor_ref_t resp[MANY_RESPONDERS];
	actor_request_t ids[MANY_TOTAL];
	unsigned seen[MANY_TOTAL];
	unsigned replies, bad;
	int request_rc;
};

static void many_start(actor_ctx_t *ctx, void *state)
{
	struct many *m = state;
	for (uint64_t i = 0; i < MANY_TOTAL; i++) {
		actor_request_opts_t opts = {.tag = i};
		int rc = actor_request(ctx, m->resp[i % MANY_RESPONDERS], T_REQ, &i, sizeof(i),
		                       &opts, &m->ids[i]);
		if (rc != 0)
			m->request_rc = rc;
	}
}

static void many_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct many *m = state;
	const actor_reply_t *r = reply_of(msg);
	uint64_t i = r->tag, v;
	bool ok = r->error == 0 && i < MANY_TOTAL && r->type == T_ANS && r->len == sizeof(v) &&
	          msg->size == sizeof(*r) + sizeof(v);
	if (ok) {
		memcpy(&v, actor_reply_data((actor_reply_t *)r), sizeof(v));
		ok = r->request.id == m->ids[i].id && v == i * 3 &&
		     actor_ref_eq(msg->sender, m->resp[i % MANY_RESPONDERS]);
		m->seen[i]++;
	}
	if (!ok)
		m->bad++;
	if (++m->replies == MANY_TOTAL)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(replies_match_their_requests_by_id_and_tag_in_any_order)
{
	actor_system_t *sys = system_new(2);
	static struct keeper k[MANY_RESPONDERS];
	static struct many m;
	memset(k, 0, sizeof(k));
	memset(&m, 0, sizeof(m));
	for (unsigned i = 0; i < MANY_RESPONDERS; i++) {
		k[i].seed = i + 1;
		k[i].expect = MANY_PER;
		m.resp[i] = spawn_ok(sys, NULL, keeper_behavior, &k[i]);
	}
	actor_spawn_opts_t opts = {.start = many_start};
	spawn_ok(sys, &opts, many_behavior, &m);
	system_run_to_end(sys, TEST_WATCHDOG, "many requests");

	ck_assert_int_eq(m.request_rc, 0);
	ck_assert_uint_eq(m.replies, MANY_TOTAL);
	ck_assert_uint_eq(m.bad, 0);
	for (unsigned i = 0; i < MANY_TOTAL; i++)
		ck_assert_uint_eq(m.seen[i], 1);
	for (unsigned i = 0; i < MANY_RESPONDERS; i++) {
		ck_assert_uint_eq(k[i].answered, MANY_PER);
		ck_assert_int_eq(k[i].keep_rc, 0);
		ck_assert_int_eq(k[i].reply_rc, 0);
	}
	ck_assert_uint_eq(replies_dropped(sys), 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A requester of one request to a keeper, for timeouts, cancels, stops
 */

struct one {
	actor_ref_t to;
	uint64_t timeout_ns;
	bool cancel; /* cancel the request at once */
	actor_request_t id;
	int request_rc, cancel_rc, cancel_again_rc;
	unsigned replies, dones;
	actor_reply_t last;
	unsigned worker_at_request, worker_at_reply;
};

static void one_start(actor_ctx_t *ctx, void *state)
{
	struct one *o = state;
	actor_request_opts_t opts = {.timeout_ns = o->timeout_ns, .tag = 42};
	uint64_t v = 5;
	o->request_rc = actor_request(ctx, o->to, T_REQ, &v, sizeof(v), &opts, &o->id);
	o->worker_at_request = actor_ctx_worker(ctx);
	if (o->cancel) {
		o->cancel_rc = actor_request_cancel(ctx, o->id);
		o->cancel_again_rc = actor_request_cancel(ctx, o->id);
		actor_send(actor_ctx_system(ctx), o->to, T_GO, NULL, 0);
	}
}

/* Keeps the last ACTOR_MSG_REPLY; after a timeout tells the keeper to answer anyway; stops
 * (and stops the keeper) on the keeper's T_DONE. */
static void one_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct one *o = state;
	if (msg->type == T_DONE) {
		o->dones++;
		actor_send(actor_ctx_system(ctx), o->to, T_QUIT, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type != ACTOR_MSG_REPLY)
		return;
	o->replies++;
	memcpy(&o->last, reply_of(msg), sizeof(o->last));
	o->worker_at_reply = actor_ctx_worker(ctx);
	if (o->last.error == -ETIMEDOUT)
		actor_send(actor_ctx_system(ctx), o->to, T_GO, NULL, 0);
}

START_TEST(an_answer_after_the_timeout_is_dropped_and_counted_never_delivered)
{
	actor_system_t *sys = system_new(2);
	static struct keeper k;
	static struct one o;
	memset(&k, 0, sizeof(k));
	memset(&o, 0, sizeof(o));
	k.tell_sender = true;
	o.to = spawn_on(sys, 1, keeper_behavior, &k);
	o.timeout_ns = ACTOR_MS(20);
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .worker = 0, .start = one_start};
	spawn_ok(sys, &opts, one_behavior, &o);
	system_run_to_end(sys, TEST_WATCHDOG, "timeout");

	ck_assert_int_eq(o.request_rc, 0);
	ck_assert_uint_eq(o.replies, 1); /* the timeout, and nothing after it */
	ck_assert_int_eq(o.last.error, -ETIMEDOUT);
	ck_assert_uint_eq(o.last.tag, 42);
	ck_assert_uint_eq(o.last.request.id, o.id.id);
	ck_assert_uint_eq(o.dones, 1);
	ck_assert_uint_eq(k.answered, 1);
	ck_assert_int_eq(k.reply_rc, 0); /* the replier cannot know: 0 */
	ck_assert_uint_eq(replies_dropped(sys), 1);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_cancelled_request_gets_no_reply_and_its_answer_is_counted)
{
	actor_system_t *sys = system_new(2);
	static struct keeper k;
	static struct one o;
	memset(&k, 0, sizeof(k));
	memset(&o, 0, sizeof(o));
	k.tell_sender = true;
	o.to = spawn_on(sys, 1, keeper_behavior, &k);
	o.cancel = true;
	o.timeout_ns = ACTOR_MS(5); /* cancelled first: its timeout never fires either */
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .worker = 0, .start = one_start};
	spawn_ok(sys, &opts, one_behavior, &o);
	system_run_to_end(sys, TEST_WATCHDOG, "cancel");

	ck_assert_int_eq(o.cancel_rc, 0);
	ck_assert_int_eq(o.cancel_again_rc, -ESRCH);
	ck_assert_uint_eq(o.replies, 0);
	ck_assert_uint_eq(o.dones, 1);
	ck_assert_uint_eq(k.answered, 1);
	ck_assert_uint_eq(replies_dropped(sys), 1);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Requesters that stop with requests pending
 */

#define STOP_PENDING 16

struct quitter {
	actor_ref_t to;
	atomic_int *wait_for; /* if set: waits at this gate before stopping */
	int rc;
};

static void quitter_start(actor_ctx_t *ctx, void *state)
{
	struct quitter *q = state;
	for (uint64_t i = 0; i < STOP_PENDING; i++) {
		actor_request_opts_t opts = {.timeout_ns = i % 2 ? ACTOR_MS(5) : 0};
		actor_request_t id;
		int rc = actor_request(ctx, q->to, T_REQ, &i, sizeof(i), &opts, &id);
		if (rc != 0)
			q->rc = rc;
	}
	if (q->wait_for != NULL) {
		actor_send(actor_ctx_system(ctx), q->to, T_GO, NULL, 0);
		actor_send(actor_ctx_system(ctx), q->to, T_QUIT, NULL, 0);
		if (!gate_wait(q->wait_for))
			q->rc = -ETIME;
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void quitter_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

/* Counts every message; stops on T_QUIT. */
struct counter {
	unsigned msgs, replies;
};

static void counter_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct counter *c = state;
	c->msgs++;
	if (msg->type == ACTOR_MSG_REPLY)
		c->replies++;
	if (msg->type == T_QUIT)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(answers_to_a_stopped_requester_are_counted_and_reach_no_other_actor)
{
	actor_system_t *sys = system_new(1);
	static struct keeper k;
	static struct quitter q;
	static struct counter c[8];
	memset(&k, 0, sizeof(k));
	memset(&q, 0, sizeof(q));
	memset(c, 0, sizeof(c));
	q.to = spawn_ok(sys, NULL, keeper_behavior, &k);
	actor_spawn_opts_t opts = {.start = quitter_start};
	actor_ref_t quitter = spawn_ok(sys, &opts, quitter_behavior, &q);
	wait_stopped(sys, quitter);
	/* Actors spawned now may take the stopped requester's slot (with a new generation). */
	actor_ref_t others[8];
	for (unsigned i = 0; i < 8; i++)
		others[i] = spawn_ok(sys, NULL, counter_behavior, &c[i]);
	send_ok(sys, q.to, T_GO, NULL, 0);
	send_ok(sys, q.to, T_QUIT, NULL, 0);
	for (unsigned i = 0; i < 8; i++)
		send_ok(sys, others[i], T_QUIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "stopped requester");

	ck_assert_int_eq(q.rc, 0);
	ck_assert_uint_eq(k.answered, STOP_PENDING);
	ck_assert_int_eq(k.reply_rc, 0);
	for (unsigned i = 0; i < 8; i++) {
		ck_assert_uint_eq(c[i].replies, 0);
		ck_assert_uint_eq(c[i].msgs, 1);
	}
	ck_assert_uint_eq(replies_dropped(sys), STOP_PENDING);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(answers_left_in_a_stopping_requesters_mailbox_are_dropped_replies_not_dead_letters)
{
	actor_system_t *sys = system_new(2);
	static struct keeper k;
	static struct quitter q;
	memset(&k, 0, sizeof(k));
	memset(&q, 0, sizeof(q));
	q.wait_for = &k.replied; /* stops once the answers are in its mailbox */
	q.to = spawn_on(sys, 1, keeper_behavior, &k);
	actor_spawn_opts_t opts = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 0, .start = quitter_start};
	spawn_ok(sys, &opts, quitter_behavior, &q);
	system_run_to_end(sys, TEST_WATCHDOG, "stopping requester");

	ck_assert_int_eq(q.rc, 0);
	ck_assert_uint_eq(k.answered, STOP_PENDING);
	ck_assert_uint_eq(replies_dropped(sys), STOP_PENDING);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Receivers that stop before answering, or do not answer
 */

enum how {
	HOW_EXIT_UNANSWERED, /* stops in the turn that got the request, without answering */
	HOW_IGNORE,          /* returns without answering or keeping */
	HOW_KEEP_THEN_QUIT,  /* keeps it, then stops on T_QUIT */
	HOW_BLOCKED,         /* busy in its turn (a gate) while the request arrives, then stops */
};

struct refuser {
	enum how how;
	atomic_int gate;
	actor_reply_handle_t h;
};

static void refuser_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct refuser *r = state;
	if (r->how == HOW_BLOCKED) {
		gate_wait(&r->gate);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (r->how == HOW_EXIT_UNANSWERED)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	else if (r->how == HOW_KEEP_THEN_QUIT)
		actor_request_keep(ctx, &r->h);
}

struct asker {
	actor_ref_t to;
	struct refuser *r;
	int rc;
	unsigned replies;
	actor_reply_t last;
	actor_ref_t last_sender;
};

static void asker_start(actor_ctx_t *ctx, void *state)
{
	struct asker *a = state;
	actor_request_t id;
	uint64_t v = 1;
	a->rc = actor_request(ctx, a->to, T_REQ, &v, sizeof(v), NULL, &id); /* no timeout */
	if (a->r->how == HOW_KEEP_THEN_QUIT)
		actor_send(actor_ctx_system(ctx), a->to, T_QUIT, NULL, 0);
	if (a->r->how == HOW_BLOCKED)
		gate_open(&a->r->gate);
}

static void asker_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct asker *a = state;
	a->replies++;
	memcpy(&a->last, reply_of(msg), sizeof(a->last));
	a->last_sender = msg->sender;
	if (a->r->how == HOW_IGNORE) /* it lives on */
		actor_send(actor_ctx_system(ctx), a->to, T_QUIT, NULL, 0);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Runs `how` with receiver and requester on two workers and checks the error the requester
 * got: its request has no timeout, so a requester not told would hang the test. */
static void refusal_case(enum how how, int expected, uint64_t dead_letters)
{
	actor_system_t *sys = system_new(2);
	static struct refuser r;
	static struct asker a;
	memset(&r, 0, sizeof(r));
	memset(&a, 0, sizeof(a));
	r.how = how;
	a.r = &r;
	a.to = spawn_on(sys, 1, refuser_behavior, &r);
	if (how == HOW_BLOCKED)
		send_ok(sys, a.to, T_GO, NULL, 0); /* it waits at the gate in that turn */
	actor_spawn_opts_t opts = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 0, .start = asker_start};
	spawn_ok(sys, &opts, asker_behavior, &a);
	system_run_to_end(sys, TEST_WATCHDOG, "refusal");

	ck_assert_int_eq(a.rc, 0);
	ck_assert_uint_eq(a.replies, 1);
	ck_assert_int_eq(a.last.error, expected);
	ck_assert_uint_eq(a.last.len, 0);
	ck_assert_msg(actor_ref_eq(a.last_sender, a.to), "the answer comes from the receiver");
	ck_assert_uint_eq(stats_of(sys).dead_letters, dead_letters);
	ck_assert_uint_eq(replies_dropped(sys), 0);
	actor_system_free(sys);
}

START_TEST(a_request_dead_lettered_tells_its_requester_at_once)
{
	refusal_case(HOW_BLOCKED, -ESRCH, 1); /* the user's message is a dead letter */
}
END_TEST

START_TEST(a_receiver_that_stops_in_the_requests_turn_without_answering_tells_at_once)
{
	refusal_case(HOW_EXIT_UNANSWERED, -ESRCH, 0);
}
END_TEST

START_TEST(a_receiver_that_stops_holding_a_kept_request_tells_at_once)
{
	refusal_case(HOW_KEEP_THEN_QUIT, -ESRCH, 0);
}
END_TEST

START_TEST(a_request_neither_answered_nor_kept_is_answered_enomsg)
{
	refusal_case(HOW_IGNORE, -ENOMSG, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * One answer per request; calls that do not apply
 */

struct misuse {
	actor_ref_t peer;
	int plain_reply, plain_of, plain_keep;
	int of, first, second, keep_after, of_after;
	int to_first, to_second, to_other, to_null, to_big, reply_sys_type, reply_null_data;
	int req_sys_type, req_null_out, req_null_data, req_none, req_stopped, req_big_timeout;
	int cancel_zero, cancel_other;
	actor_request_t id;
	actor_reply_handle_t h;
	unsigned replies, step;
	int errors[4];
};

/* The responder: its first message is plain, the second a request it answers twice, the third
 * a request it keeps and answers twice through the handle. */
static void strict_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct misuse *m = state;
	(void)msg;
	switch (m->step++) {
	case 0:
		m->plain_of = actor_request_of(ctx, NULL);
		m->plain_reply = actor_reply(ctx, T_ANS, NULL, 0);
		m->plain_keep = actor_request_keep(ctx, &m->h);
		break;
	case 1:
		m->of = actor_request_of(ctx, NULL);
		m->reply_sys_type = actor_reply(ctx, ACTOR_MSG_SYSTEM, NULL, 0);
		m->reply_null_data = actor_reply(ctx, T_ANS, NULL, 1);
		m->first = actor_reply(ctx, T_ANS, "a", 1);
		m->second = actor_reply(ctx, T_ANS, "b", 1);
		m->keep_after = actor_request_keep(ctx, &m->h);
		m->of_after = actor_request_of(ctx, NULL);
		break;
	case 2:
		actor_request_keep(ctx, &m->h);
		break;
	case 3: /* T_GO, a later turn */
		m->to_null = actor_reply_to(ctx, NULL, T_ANS, NULL, 0);
		m->to_big = actor_reply_to(ctx, &m->h, T_ANS, "x", (size_t)ACTOR_MSG_MAX);
		m->to_first = actor_reply_to(ctx, &m->h, T_ANS, "c", 1);
		m->to_second = actor_reply_to(ctx, &m->h, T_ANS, "d", 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	}
}

struct misuse_requester {
	struct misuse *m;
	actor_ref_t strict;
	actor_ref_t stopped;
};

static void misuse_start(actor_ctx_t *ctx, void *state)
{
	struct misuse_requester *mr = state;
	struct misuse *m = mr->m;
	actor_system_t *sys = actor_ctx_system(ctx);
	actor_request_t id;
	m->req_sys_type = actor_request(ctx, mr->strict, ACTOR_MSG_SYSTEM, NULL, 0, NULL, &id);
	m->req_null_out = actor_request(ctx, mr->strict, T_REQ, NULL, 0, NULL, NULL);
	m->req_null_data = actor_request(ctx, mr->strict, T_REQ, NULL, 4, NULL, &id);
	m->req_none = actor_request(ctx, ACTOR_REF_NONE, T_REQ, NULL, 0, NULL, &id);
	m->req_stopped = actor_request(ctx, mr->stopped, T_REQ, NULL, 0, NULL, &id);
	actor_request_opts_t big = {.timeout_ns = UINT64_MAX};
	m->req_big_timeout = actor_request(ctx, mr->strict, T_REQ, NULL, 0, &big, &id);
	m->cancel_zero = actor_request_cancel(ctx, (actor_request_t){0});
	actor_send(sys, mr->strict, T_REQ, NULL, 0); /* plain */
	actor_request(ctx, mr->strict, T_REQ, NULL, 0, NULL, &m->id);
	actor_request(ctx, mr->strict, T_REQ, NULL, 0, NULL, &id);
	actor_send(sys, mr->strict, T_GO, NULL, 0);
}

static void misuse_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct misuse_requester *mr = state;
	const actor_reply_t *r = reply_of(msg);
	struct misuse *m = mr->m;
	if (m->replies < 4)
		m->errors[m->replies] =
		    r->error == 0 ? *(char *)actor_reply_data((actor_reply_t *)r) : r->error;
	if (++m->replies == 2)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(reply_answers_only_a_request_and_only_once)
{
	actor_system_t *sys = system_new(2);
	static struct misuse m;
	static struct counter c;
	memset(&m, 0, sizeof(m));
	memset(&c, 0, sizeof(c));
	struct misuse_requester mr = {.m = &m};
	mr.strict = spawn_ok(sys, NULL, strict_behavior, &m);
	mr.stopped = spawn_ok(sys, NULL, counter_behavior, &c);
	send_ok(sys, mr.stopped, T_QUIT, NULL, 0);
	wait_stopped(sys, mr.stopped);
	actor_spawn_opts_t opts = {.start = misuse_start};
	spawn_ok(sys, &opts, misuse_behavior, &mr);
	system_run_to_end(sys, TEST_WATCHDOG, "misuse");

	ck_assert_int_eq(m.req_sys_type, -EINVAL);
	ck_assert_int_eq(m.req_null_out, -EINVAL);
	ck_assert_int_eq(m.req_null_data, -EINVAL);
	ck_assert_int_eq(m.req_none, -ESRCH);
	ck_assert_int_eq(m.req_stopped, -ESRCH);
	ck_assert_int_eq(m.req_big_timeout, -EINVAL);
	ck_assert_int_eq(m.cancel_zero, -ESRCH);
	ck_assert_int_eq(m.plain_of, 0);
	ck_assert_int_eq(m.plain_reply, -EINVAL);
	ck_assert_int_eq(m.plain_keep, -EINVAL);
	ck_assert_int_eq(m.of, 1);
	ck_assert_int_eq(m.reply_sys_type, -EINVAL);
	ck_assert_int_eq(m.reply_null_data, -EINVAL);
	ck_assert_int_eq(m.first, 0);
	ck_assert_int_eq(m.second, -EINVAL);
	ck_assert_int_eq(m.keep_after, -EINVAL);
	ck_assert_int_eq(m.of_after, 0);
	ck_assert_int_eq(m.to_null, -EINVAL);
	ck_assert_int_eq(m.to_big, -EMSGSIZE);
	ck_assert_int_eq(m.to_first, 0);
	ck_assert_int_eq(m.to_second, -EINVAL);
	ck_assert_uint_eq(m.replies, 2); /* failed requests get none */
	ck_assert_int_eq(m.errors[0], 'a');
	ck_assert_int_eq(m.errors[1], 'c');
	ck_assert_uint_eq(replies_dropped(sys), 0);
	/* Outside a behaviour. */
	actor_reply_handle_t h = {0};
	ck_assert_int_eq(actor_reply(NULL, T_ANS, NULL, 0), -EINVAL);
	ck_assert_int_eq(actor_reply_to(NULL, &h, T_ANS, NULL, 0), -EINVAL);
	ck_assert_int_eq(actor_request_of(NULL, NULL), -EINVAL);
	ck_assert_int_eq(actor_request_keep(NULL, &h), -EINVAL);
	ck_assert_int_eq(actor_request_cancel(NULL, (actor_request_t){1}), -EINVAL);
	actor_request_t id;
	ck_assert_int_eq(actor_request(NULL, mr.strict, T_REQ, NULL, 0, NULL, &id), -EINVAL);
	actor_system_free(sys);
}
END_TEST

/* Another actor may not answer or cancel what is not its own. */
struct thief {
	actor_reply_handle_t *h;
	actor_request_t *id;
	int to_rc, cancel_rc;
};

static void thief_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct thief *t = state;
	(void)msg;
	t->to_rc = actor_reply_to(ctx, t->h, T_ANS, NULL, 0);
	t->cancel_rc = actor_request_cancel(ctx, *t->id);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

struct owner_pair {
	actor_ref_t thief, keeper;
	actor_reply_handle_t h;
	actor_request_t id;
	unsigned replies;
	int error;
};

/* Asks itself (so it keeps its own request: one actor holds both ends), lets the thief try
 * both, then answers. */
static void owner_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct owner_pair *p = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	if (msg->type == T_NEXT) {
		actor_request(ctx, actor_self(ctx), T_REQ, NULL, 0, NULL, &p->id);
	} else if (msg->type == T_REQ) {
		actor_request_keep(ctx, &p->h);
		actor_send(sys, p->thief, T_GO, NULL, 0);
	} else if (msg->type == T_DONE) {
		actor_reply_to(ctx, &p->h, T_ANS, NULL, 0);
	} else if (msg->type == ACTOR_MSG_REPLY) {
		p->replies++;
		p->error = reply_of(msg)->error;
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(only_the_keeper_answers_and_only_the_requester_cancels)
{
	actor_system_t *sys = system_new(1);
	static struct owner_pair p;
	static struct thief t;
	memset(&p, 0, sizeof(p));
	memset(&t, 0, sizeof(t));
	t.h = &p.h;
	t.id = &p.id;
	p.thief = spawn_ok(sys, NULL, thief_behavior, &t);
	actor_ref_t owner = spawn_ok(sys, NULL, owner_behavior, &p);
	send_ok(sys, owner, T_NEXT, NULL, 0);
	wait_stopped(sys, p.thief);
	send_ok(sys, owner, T_DONE, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "ownership");

	ck_assert_int_eq(t.to_rc, -EPERM);
	ck_assert_int_eq(t.cancel_rc, -EPERM);
	ck_assert_uint_eq(p.replies, 1);
	ck_assert_int_eq(p.error, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Order with plain sends
 */

#define FIFO_ITEMS 3000
#define FIFO_BATCH 50

struct fifo_sender {
	actor_ref_t to;
	uint64_t next;
	unsigned requests, replies, bad;
	int rc;
};

static void fifo_batch(actor_ctx_t *ctx, struct fifo_sender *s)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	for (unsigned i = 0; i < FIFO_BATCH && s->next < FIFO_ITEMS; i++, s->next++) {
		int rc;
		if (s->next % 3 == 0) {
			actor_request_t id;
			actor_request_opts_t opts = {.tag = s->next};
			rc =
			    actor_request(ctx, s->to, T_REQ, &s->next, sizeof(s->next), &opts, &id);
			s->requests++;
		} else {
			rc = actor_send(sys, s->to, T_REQ, &s->next, sizeof(s->next));
		}
		if (rc != 0)
			s->rc = rc;
	}
	if (s->next < FIFO_ITEMS)
		actor_send(sys, actor_self(ctx), T_NEXT, NULL, 0);
}

static void fifo_sender_start(actor_ctx_t *ctx, void *state)
{
	fifo_batch(ctx, state);
}

static void fifo_sender_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct fifo_sender *s = state;
	if (msg->type == T_NEXT) {
		fifo_batch(ctx, s);
		return;
	}
	const actor_reply_t *r = reply_of(msg);
	uint64_t v;
	memcpy(&v, actor_reply_data((actor_reply_t *)r), sizeof(v));
	if (r->error != 0 || r->tag % 3 != 0 || v != r->tag)
		s->bad++;
	if (++s->replies == FIFO_ITEMS / 3)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

struct fifo_receiver {
	uint64_t expect;
	unsigned bad;
};

static void fifo_receiver_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct fifo_receiver *r = state;
	uint64_t v = msg_u64(msg);
	int is_req = actor_request_of(ctx, NULL);
	if (v != r->expect || is_req != (v % 3 == 0))
		r->bad++;
	r->expect = v + 1;
	if (is_req)
		actor_reply(ctx, T_ANS, &v, sizeof(v));
	if (r->expect == FIFO_ITEMS)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(requests_and_plain_sends_from_one_sender_keep_their_order)
{
	actor_system_t *sys = system_new(2);
	static struct fifo_sender s;
	static struct fifo_receiver r;
	memset(&s, 0, sizeof(s));
	memset(&r, 0, sizeof(r));
	s.to = spawn_on(sys, 1, fifo_receiver_behavior, &r);
	actor_spawn_opts_t opts = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 0, .start = fifo_sender_start};
	spawn_ok(sys, &opts, fifo_sender_behavior, &s);
	system_run_to_end(sys, TEST_WATCHDOG, "fifo");

	ck_assert_int_eq(s.rc, 0);
	ck_assert_uint_eq(r.expect, FIFO_ITEMS);
	ck_assert_uint_eq(r.bad, 0);
	ck_assert_uint_eq(s.requests, FIFO_ITEMS / 3);
	ck_assert_uint_eq(s.replies, FIFO_ITEMS / 3);
	ck_assert_uint_eq(s.bad, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Across workers, with a responder that moves
 */

#define MOVE_ROUNDS 400

struct echo {
	unsigned answered;
	unsigned seen_worker[2];
};

static void echo_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct echo *e = state;
	if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	e->seen_worker[actor_ctx_worker(ctx) & 1]++;
	uint64_t v = msg_u64(msg);
	if (actor_reply(ctx, T_ANS, &v, sizeof(v)) == 0)
		e->answered++;
}

struct pinger {
	actor_ref_t to;
	actor_ref_t next; /* told T_GO when this one is done (NONE: stop the responder) */
	uint64_t round;
	unsigned bad, moved;
	int home;
	actor_request_t id;
};

static void pinger_ask(actor_ctx_t *ctx, struct pinger *p)
{
	if (p->home < 0)
		p->home = (int)actor_ctx_worker(ctx);
	else if (p->home != (int)actor_ctx_worker(ctx))
		p->moved++; /* a requester with a request pending never moves */
	actor_request_opts_t opts = {.tag = p->round};
	if (actor_request(ctx, p->to, T_REQ, &p->round, sizeof(p->round), &opts, &p->id) != 0)
		p->bad++;
}

static void pinger_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pinger *p = state;
	if (msg->type == T_GO) {
		pinger_ask(ctx, p);
		return;
	}
	const actor_reply_t *r = reply_of(msg);
	uint64_t v;
	memcpy(&v, actor_reply_data((actor_reply_t *)r), sizeof(v));
	if (r->error != 0 || r->request.id != p->id.id || r->tag != p->round || v != p->round)
		p->bad++;
	if (++p->round < MOVE_ROUNDS) {
		pinger_ask(ctx, p);
		return;
	}
	actor_system_t *sys = actor_ctx_system(ctx);
	if (!actor_ref_is_none(p->next))
		actor_send(sys, p->next, T_GO, NULL, 0);
	else
		actor_send(sys, p->to, T_QUIT, NULL, 0);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Places on the worker its key names, without pinning: the actor may move. */
static int place_key(void *arg, const actor_place_info_t *info)
{
	(void)arg;
	return (int)(info->key % info->workers);
}

START_TEST(requests_cross_workers_while_the_responder_moves)
{
	actor_system_t *sys = system_new(2);
	static struct echo e;
	static struct pinger p[4];
	memset(&e, 0, sizeof(e));
	memset(p, 0, sizeof(p));
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_CALLBACK, .place = place_key, .key = 1};
	actor_ref_t echo = spawn_ok(sys, &opts, echo_behavior, &e);
	/* Phases, one requester at a time: from worker 0, 1, 0, 1. The responder follows each. */
	actor_ref_t refs[4];
	for (int i = 3; i >= 0; i--) {
		p[i].to = echo;
		p[i].home = -1;
		p[i].next = i < 3 ? refs[i + 1] : ACTOR_REF_NONE;
		opts.key = (uint64_t)i;
		refs[i] = spawn_ok(sys, &opts, pinger_behavior, &p[i]);
	}
	send_ok(sys, refs[0], T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG_STRESS, "moving responder");

	ck_assert_uint_eq(e.answered, 4 * MOVE_ROUNDS);
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(p[i].round, MOVE_ROUNDS);
		ck_assert_uint_eq(p[i].bad, 0);
		ck_assert_uint_eq(p[i].moved, 0);
	}
	ck_assert_msg(e.seen_worker[0] > 0 && e.seen_worker[1] > 0,
	              "the responder answered on both workers (%u, %u)", e.seen_worker[0],
	              e.seen_worker[1]);
	ck_assert_uint_eq(replies_dropped(sys), 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_requester_with_a_request_pending_stays_on_its_worker)
{
	/* The responder cannot move (fixed on worker 1) and wakes the requester from there at
	 * every answer: an unbound requester would follow it within a few round trips. */
	actor_system_t *sys = system_new(2);
	static struct echo e;
	static struct pinger p;
	memset(&e, 0, sizeof(e));
	memset(&p, 0, sizeof(p));
	p.to = spawn_on(sys, 1, echo_behavior, &e);
	p.home = -1;
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_CALLBACK, .place = place_key, .key = 0};
	actor_ref_t pinger = spawn_ok(sys, &opts, pinger_behavior, &p);
	send_ok(sys, pinger, T_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG_STRESS, "bound requester");

	ck_assert_uint_eq(p.round, MOVE_ROUNDS);
	ck_assert_uint_eq(p.bad, 0);
	ck_assert_int_eq(p.home, 0);
	ck_assert_uint_eq(p.moved, 0);
	ck_assert_uint_eq(e.seen_worker[1], MOVE_ROUNDS);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * actor_request_wait from threads outside the pool
 */

START_TEST(request_wait_returns_the_answer)
{
	actor_system_t *sys = system_new(2);
	static struct echo e;
	memset(&e, 0, sizeof(e));
	actor_ref_t echo = spawn_ok(sys, NULL, echo_behavior, &e);
	for (uint64_t i = 0; i < 100; i++) {
		actor_msg_t *reply = NULL;
		int rc = actor_request_wait(sys, echo, T_REQ, &i, sizeof(i), ACTOR_SEC(10), &reply);
		ck_assert_int_eq(rc, 0);
		ck_assert_ptr_nonnull(reply);
		actor_reply_t *r = (actor_reply_t *)reply_of(reply);
		uint64_t v;
		ck_assert_int_eq(r->error, 0);
		ck_assert_uint_eq(r->type, T_ANS);
		ck_assert_uint_eq(r->len, sizeof(v));
		memcpy(&v, actor_reply_data(r), sizeof(v));
		ck_assert_uint_eq(v, i);
		actor_msg_free(reply);
	}
	actor_msg_t *reply = (actor_msg_t *)1;
	ck_assert_int_eq(actor_request_wait(sys, ACTOR_REF_NONE, T_REQ, NULL, 0, 0, &reply),
	                 -ESRCH);
	ck_assert_ptr_null(reply);
	ck_assert_int_eq(actor_request_wait(sys, echo, ACTOR_MSG_SYSTEM, NULL, 0, 0, &reply),
	                 -EINVAL);
	ck_assert_int_eq(actor_request_wait(NULL, echo, T_REQ, NULL, 0, 0, &reply), -EINVAL);
	ck_assert_int_eq(actor_request_wait(sys, echo, T_REQ, NULL, 0, 0, NULL), -EINVAL);
	send_ok(sys, echo, T_QUIT, NULL, 0);
	wait_stopped(sys, echo);
	uint64_t v = 0;
	ck_assert_int_eq(actor_request_wait(sys, echo, T_REQ, &v, sizeof(v), 0, &reply), -ESRCH);
	system_run_to_end(sys, TEST_WATCHDOG, "request_wait");
	ck_assert_uint_eq(e.answered, 100);
	ck_assert_uint_eq(replies_dropped(sys), 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(request_wait_times_out_and_the_late_answer_is_dropped)
{
	actor_system_t *sys = system_new(2);
	static struct keeper k;
	memset(&k, 0, sizeof(k));
	actor_ref_t keeper = spawn_ok(sys, NULL, keeper_behavior, &k);
	uint64_t v = 9;
	actor_msg_t *reply = (actor_msg_t *)1;
	int rc = actor_request_wait(sys, keeper, T_REQ, &v, sizeof(v), ACTOR_MS(20), &reply);
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_ptr_null(reply);
	/* The keeper has it (the request was sent before the wait could end). */
	ck_assert(gate_wait(&k.has_kept));
	send_ok(sys, keeper, T_GO, NULL, 0);
	send_ok(sys, keeper, T_QUIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "request_wait timeout");
	ck_assert_uint_eq(k.answered, 1);
	/* The proxy's own timeout ended the request, or the answer came to the proxy first and it
	 * passed it on to nobody: either way no reply leaked (AddressSanitizer checks), and the
	 * answer, if late, was counted. */
	ck_assert_uint_le(replies_dropped(sys), 1);
	actor_system_free(sys);
}
END_TEST

static void wait_from_worker(actor_ctx_t *ctx, void *arg)
{
	actor_msg_t *reply = (actor_msg_t *)1;
	*(int *)arg = actor_request_wait(actor_ctx_system(ctx), actor_self(ctx), T_REQ, NULL, 0,
	                                 ACTOR_SEC(1), &reply);
	if (reply != NULL)
		*(int *)arg = -999;
}

START_TEST(request_wait_from_a_worker_is_refused)
{
	actor_system_t *sys = system_new(1);
	int rc = 0;
	run_in_actor(sys, NULL, wait_from_worker, &rc);
	ck_assert_int_eq(rc, -EDEADLK);
	system_run_to_end(sys, TEST_WATCHDOG, "from a worker");
	actor_system_free(sys);
}
END_TEST

struct waiting_thread {
	actor_system_t *sys;
	actor_ref_t to;
	int rc;
	actor_msg_t *reply;
};

static void *waiting_thread_main(void *arg)
{
	struct waiting_thread *t = arg;
	uint64_t v = 1;
	t->rc = actor_request_wait(t->sys, t->to, T_REQ, &v, sizeof(v), 0, &t->reply);
	return NULL;
}

START_TEST(request_wait_returns_eshutdown_when_the_system_shuts_down)
{
	/* One worker: the shutdown stops the hidden proxy before any -ESRCH from the stopped
	 * keeper can reach it (every turn on a stopping worker stops its actor first). */
	actor_system_t *sys = system_new(1);
	static struct keeper k;
	memset(&k, 0, sizeof(k));
	struct waiting_thread t = {.sys = sys, .rc = 1};
	t.to = spawn_ok(sys, NULL, keeper_behavior, &k);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, waiting_thread_main, &t), 0);
	ck_assert(gate_wait(&k.has_kept));
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	ck_assert_int_eq(actor_system_run(sys), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(t.rc, -ESHUTDOWN);
	ck_assert_ptr_null(t.reply);
	/* After the shutdown: refused at the call. */
	actor_msg_t *reply;
	ck_assert_int_eq(actor_request_wait(sys, t.to, T_REQ, NULL, 0, 0, &reply), -ESHUTDOWN);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Forwarded requests (actor_request_forward)
 */

#define FWD_KEEP_MAX 64

enum fwd_mode {
	FWD_SAME,   /* passes the message it got on */
	FWD_NEW,    /* passes a new message on, value * 10, and lets its own be freed */
	FWD_REFUSED, /* forwards to a stopped actor, then answers itself, value + 1000 */
	FWD_KEPT     /* keeps request and message; on T_GO passes them all on */
};

struct router {
	enum fwd_mode mode;
	actor_ref_t next, stopped;
	unsigned forwarded;
	int bad_rc;          /* the first unexpected result of a call, or 0 */
	int plain_forward;   /* actor_request_forward on a plain message */
	int after_of, after_reply, after_forward, null_msg, sys_type;
	actor_reply_handle_t h[FWD_KEEP_MAX];
	actor_msg_t *held[FWD_KEEP_MAX];
	unsigned nheld;
	int kept_again, reply_after; /* the first handle, forwarded: once more, then answered */
};

static void router_check(struct router *r, int rc, int want)
{
	if (rc != want && r->bad_rc == 0)
		r->bad_rc = rc == 0 ? -1000 : rc;
}

static void router_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct router *r = state;
	if (r->mode == FWD_KEPT && msg->type == T_GO) {
		for (unsigned i = 0; i < r->nheld; i++) {
			router_check(r, actor_request_forward_kept(ctx, &r->h[i], r->next, r->held[i]),
			             0);
			r->forwarded++;
		}
		r->kept_again = actor_request_forward_kept(ctx, &r->h[0], r->next, msg);
		r->reply_after = actor_reply_to(ctx, &r->h[0], T_ANS, NULL, 0);
		r->null_msg = actor_request_forward_kept(ctx, &r->h[0], r->next, NULL);
		r->nheld = 0;
		return;
	}
	if (r->mode == FWD_KEPT && actor_request_of(ctx, NULL) == 1 && r->nheld < FWD_KEEP_MAX) {
		router_check(r, actor_request_keep(ctx, &r->h[r->nheld]), 0);
		router_check(r, actor_msg_keep(ctx), 0);
		r->held[r->nheld++] = msg;
		return;
	}
	if (actor_request_of(ctx, NULL) != 1) {
		r->plain_forward = actor_request_forward(ctx, r->next, msg);
		if (msg->type == T_QUIT)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t v = msg_u64(msg);
	if (r->mode == FWD_REFUSED) {
		router_check(r, actor_request_forward(ctx, r->stopped, msg), -ESRCH);
		router_check(r, actor_request_of(ctx, NULL), 1); /* still ours */
		v += 1000;
		router_check(r, actor_reply(ctx, T_ANS, &v, sizeof(v)), 0);
		return;
	}
	actor_msg_t *out = msg;
	if (r->mode == FWD_NEW) {
		ck_assert_int_eq(actor_msg_alloc(sizeof(*out) + sizeof(v), T_REQ, &out), 0);
		v *= 10;
		memcpy(actor_msg_data(out), &v, sizeof(v));
	}
	if (r->forwarded == 0) { /* the refusals, once, before the forward that succeeds */
		r->null_msg = actor_request_forward(ctx, r->next, NULL);
		actor_msg_t *sys;
		ck_assert_int_eq(actor_msg_alloc(sizeof(*sys), ACTOR_MSG_SYSTEM, &sys), 0);
		r->sys_type = actor_request_forward(ctx, r->next, sys);
		actor_msg_free(sys);
	}
	router_check(r, actor_request_forward(ctx, r->next, out), 0);
	if (r->forwarded++ == 0) {
		r->after_of = actor_request_of(ctx, NULL);
		r->after_reply = actor_reply(ctx, T_ANS, NULL, 0);
		r->after_forward = actor_request_forward(ctx, r->next, msg == out ? NULL : msg);
	}
}

/* Answers value * 3, or stops without answering when `mute`. */
struct answerer {
	bool mute;
	unsigned answered;
	unsigned requests_seen; /* messages that were requests, as actor_request_of says */
	actor_ref_t last_sender;
};

static void answerer_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct answerer *a = state;
	if (msg->type == T_QUIT) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	a->requests_seen += actor_request_of(ctx, NULL) == 1;
	a->last_sender = msg->sender;
	if (a->mute) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t v = msg_u64(msg) * 3;
	if (actor_reply(ctx, T_ANS, &v, sizeof(v)) == 0)
		a->answered++;
}

#define FWD_N 256

struct fwd_asker {
	actor_ref_t to, answers_from;
	unsigned n;
	uint64_t mul, add; /* the answer expected for value i: (i * mul + add) */
	int rc;
	unsigned replies, bad, seen[FWD_N];
	int last_error;
	actor_ref_t quit[3];
};

static void fwd_asker_start(actor_ctx_t *ctx, void *state)
{
	struct fwd_asker *q = state;
	for (uint64_t i = 0; i < q->n; i++) {
		actor_request_t id;
		actor_request_opts_t o = {.tag = i};
		int rc = actor_request(ctx, q->to, T_REQ, &i, sizeof(i), &o, &id);
		if (rc != 0)
			q->rc = rc;
	}
	actor_send(actor_ctx_system(ctx), q->to, T_NEXT, NULL, 0); /* a plain one, last */
}

static void fwd_asker_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct fwd_asker *q = state;
	const actor_reply_t *r = reply_of(msg);
	q->last_error = r->error;
	uint64_t v = 0;
	if (r->error == 0 && r->len == sizeof(v))
		memcpy(&v, actor_reply_data((actor_reply_t *)r), sizeof(v));
	if (r->tag >= FWD_N)
		q->bad++;
	else
		q->seen[r->tag]++;
	if (r->error == 0 && (v != r->tag * q->mul + q->add ||
	                      !actor_ref_eq(msg->sender, q->answers_from)))
		q->bad++;
	if (++q->replies == q->n) {
		for (unsigned i = 0; i < 3; i++)
			if (!actor_ref_is_none(q->quit[i]))
				actor_send(actor_ctx_system(ctx), q->quit[i], T_QUIT, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static actor_ref_t fwd_asker_spawn(actor_system_t *sys, unsigned worker, struct fwd_asker *q)
{
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED, .worker = worker,
	                        .start = fwd_asker_start};
	return spawn_ok(sys, &o, fwd_asker_behavior, q);
}

START_TEST(a_forwarded_request_is_answered_by_its_last_receiver_straight_to_the_requester)
{
	/* requester (worker 0) -> r1 (worker 1, passes its message on) -> r2 (worker 0, passes a
	 * new one on) -> answerer (worker 1). */
	actor_system_t *sys = system_new(2);
	static struct router r1, r2;
	static struct answerer a;
	static struct fwd_asker q;
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&a, 0, sizeof(a));
	memset(&q, 0, sizeof(q));
	actor_ref_t ans = spawn_on(sys, 1, answerer_behavior, &a);
	r2 = (struct router){.mode = FWD_NEW, .next = ans};
	actor_ref_t rr2 = spawn_on(sys, 0, router_behavior, &r2);
	r1 = (struct router){.mode = FWD_SAME, .next = rr2};
	actor_ref_t rr1 = spawn_on(sys, 1, router_behavior, &r1);
	q = (struct fwd_asker){.to = rr1, .answers_from = ans, .n = FWD_N, .mul = 30,
	                       .quit = {rr1, rr2, ans}};
	fwd_asker_spawn(sys, 0, &q);
	system_run_to_end(sys, TEST_WATCHDOG, "forwarding");

	ck_assert_int_eq(q.rc, 0);
	ck_assert_uint_eq(q.replies, FWD_N);
	ck_assert_uint_eq(q.bad, 0);
	for (unsigned i = 0; i < FWD_N; i++)
		ck_assert_uint_eq(q.seen[i], 1);
	ck_assert_uint_eq(a.answered, FWD_N);
	ck_assert_uint_eq(a.requests_seen, FWD_N);
	ck_assert(actor_ref_eq(a.last_sender, rr2)); /* the sender is the last forwarder */
	for (struct router *r = &r1; r != NULL; r = r == &r1 ? &r2 : NULL) {
		ck_assert_int_eq(r->bad_rc, 0);
		ck_assert_uint_eq(r->forwarded, FWD_N);
		ck_assert_int_eq(r->after_of, 0);
		ck_assert_int_eq(r->after_reply, -EINVAL);
		ck_assert_int_eq(r->after_forward, -EINVAL);
		ck_assert_int_eq(r->null_msg, -EINVAL);
		ck_assert_int_eq(r->sys_type, -EINVAL);
		ck_assert_int_eq(r->plain_forward, -EINVAL); /* T_NEXT, then T_QUIT: not requests */
	}
	ck_assert_uint_eq(replies_dropped(sys), 0);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_forward_that_fails_leaves_the_request_with_the_forwarder)
{
	actor_system_t *sys = system_new(2);
	static struct router r;
	static struct answerer gone;
	static struct fwd_asker q;
	memset(&gone, 0, sizeof(gone));
	memset(&q, 0, sizeof(q));
	actor_ref_t stopped = spawn_on(sys, 0, answerer_behavior, &gone);
	ck_assert_int_eq(actor_stop(sys, stopped), 0);
	ck_assert(WAIT_UNTIL(actor_info(sys, stopped, &(actor_info_t){0}) == -ESRCH, 10));
	r = (struct router){.mode = FWD_REFUSED, .next = stopped, .stopped = stopped};
	actor_ref_t rr = spawn_on(sys, 1, router_behavior, &r);
	q = (struct fwd_asker){.to = rr, .answers_from = rr, .n = 16, .mul = 1, .add = 1000,
	                       .quit = {rr}};
	fwd_asker_spawn(sys, 0, &q);
	system_run_to_end(sys, TEST_WATCHDOG, "refused forward");

	ck_assert_int_eq(r.bad_rc, 0);
	ck_assert_uint_eq(q.replies, 16);
	ck_assert_uint_eq(q.bad, 0);
	ck_assert_int_eq(q.last_error, 0);
	ck_assert_uint_eq(replies_dropped(sys), 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_forwarded_request_whose_receiver_stops_unanswered_tells_the_requester)
{
	actor_system_t *sys = system_new(2);
	static struct router r;
	static struct answerer mute;
	static struct fwd_asker q;
	memset(&mute, 0, sizeof(mute));
	memset(&q, 0, sizeof(q));
	mute.mute = true;
	actor_ref_t m = spawn_on(sys, 0, answerer_behavior, &mute);
	r = (struct router){.mode = FWD_SAME, .next = m};
	actor_ref_t rr = spawn_on(sys, 1, router_behavior, &r);
	q = (struct fwd_asker){.to = rr, .answers_from = m, .n = 1, .quit = {rr}};
	fwd_asker_spawn(sys, 1, &q);
	system_run_to_end(sys, TEST_WATCHDOG, "forwarded to a quitter");

	ck_assert_uint_eq(q.replies, 1);
	ck_assert_int_eq(q.last_error, -ESRCH); /* told at once, not at a timeout: it has none */
	ck_assert_uint_eq(mute.requests_seen, 1);
	actor_system_free(sys);
}
END_TEST

struct go_asker {
	struct fwd_asker q;
	actor_ref_t router;
};

static void go_asker_start(actor_ctx_t *ctx, void *state)
{
	struct go_asker *g = state;
	fwd_asker_start(ctx, &g->q);
	actor_send(actor_ctx_system(ctx), g->router, T_GO, NULL, 0);
}

START_TEST(a_kept_request_is_forwarded_in_a_later_turn_and_answered_once)
{
	actor_system_t *sys = system_new(2);
	static struct router r;
	static struct answerer a;
	static struct go_asker g;
	memset(&r, 0, sizeof(r));
	memset(&a, 0, sizeof(a));
	memset(&g, 0, sizeof(g));
	actor_ref_t ans = spawn_on(sys, 0, answerer_behavior, &a);
	r.mode = FWD_KEPT;
	r.next = ans;
	actor_ref_t rr = spawn_on(sys, 1, router_behavior, &r);
	g.router = rr;
	g.q = (struct fwd_asker){.to = rr, .answers_from = ans, .n = 32, .mul = 3,
	                         .quit = {rr, ans}};
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED, .worker = 0,
	                        .start = go_asker_start};
	spawn_ok(sys, &o, fwd_asker_behavior, &g.q);
	system_run_to_end(sys, TEST_WATCHDOG, "kept and forwarded");

	ck_assert_int_eq(r.bad_rc, 0);
	ck_assert_uint_eq(r.forwarded, 32);
	ck_assert_int_eq(r.kept_again, -EINVAL);  /* the handle is spent */
	ck_assert_int_eq(r.reply_after, -EINVAL); /* and not answerable here either */
	ck_assert_int_eq(r.null_msg, -EINVAL);
	ck_assert_uint_eq(g.q.replies, 32);
	ck_assert_uint_eq(g.q.bad, 0);
	for (unsigned i = 0; i < 32; i++)
		ck_assert_uint_eq(g.q.seen[i], 1);
	ck_assert_uint_eq(a.requests_seen, 32);
	ck_assert_uint_eq(replies_dropped(sys), 0);
	actor_system_free(sys);
}
END_TEST

static Suite *request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_new("request", TEST_TIMEOUT);
	tcase_add_test(tc, replies_match_their_requests_by_id_and_tag_in_any_order);
	tcase_add_test(tc, an_answer_after_the_timeout_is_dropped_and_counted_never_delivered);
	tcase_add_test(tc, a_cancelled_request_gets_no_reply_and_its_answer_is_counted);
	tcase_add_test(tc, answers_to_a_stopped_requester_are_counted_and_reach_no_other_actor);
	tcase_add_test(
	    tc, answers_left_in_a_stopping_requesters_mailbox_are_dropped_replies_not_dead_letters);
	tcase_add_test(tc, a_request_dead_lettered_tells_its_requester_at_once);
	tcase_add_test(tc,
	               a_receiver_that_stops_in_the_requests_turn_without_answering_tells_at_once);
	tcase_add_test(tc, a_receiver_that_stops_holding_a_kept_request_tells_at_once);
	tcase_add_test(tc, a_request_neither_answered_nor_kept_is_answered_enomsg);
	tcase_add_test(tc, reply_answers_only_a_request_and_only_once);
	tcase_add_test(tc, only_the_keeper_answers_and_only_the_requester_cancels);
	tcase_add_test(tc, requests_and_plain_sends_from_one_sender_keep_their_order);
	tcase_add_test(tc,
	               a_forwarded_request_is_answered_by_its_last_receiver_straight_to_the_requester);
	tcase_add_test(tc, a_forward_that_fails_leaves_the_request_with_the_forwarder);
	tcase_add_test(tc, a_kept_request_is_forwarded_in_a_later_turn_and_answered_once);
	tcase_add_test(tc, a_forwarded_request_whose_receiver_stops_unanswered_tells_the_requester);
	tcase_add_test(tc, request_wait_returns_the_answer);
	tcase_add_test(tc, request_wait_times_out_and_the_late_answer_is_dropped);
	tcase_add_test(tc, request_wait_from_a_worker_is_refused);
	tcase_add_test(tc, request_wait_returns_eshutdown_when_the_system_shuts_down);
	suite_add_tcase(s, tc);
	TCase *stress = tcase_new("moving", TEST_TIMEOUT_STRESS);
	tcase_add_test(stress, requests_cross_workers_while_the_responder_moves);
	tcase_add_test(stress, a_requester_with_a_request_pending_stays_on_its_worker);
	suite_add_tcase(s, stress);
	return s;
}

TEST_MAIN(request_suite)
