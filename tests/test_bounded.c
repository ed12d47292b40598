/* test_bounded.c: bounded mailboxes (contract 9): a full mailbox refuses user messages with
 * -EAGAIN and queues nothing, tells each refused behaviour once when it has room
 * (ACTOR_MSG_WRITABLE), never refuses the library's messages, keeps its capacity and its
 * registrations when actors move; actor_info's depth and age of a counted mailbox, and what it
 * says of one without a count; bad options.
 *
 * A consumer held at a gate (tests/common.h) keeps its worker busy, so the test knows what its
 * mailbox holds: the gate message itself has been handed to the behaviour (not counted), and
 * every message sent meanwhile waits behind it.
 */
#include "common.h"

#define STRESS_PRODUCERS_DEFAULT 4
#define STRESS_MESSAGES_DEFAULT 20000 /* per producer */

enum { GATE = 1, WORK, HELLO, TRY, START, CONTINUE, ARM };

/* ---------------------------------------------------------------------------------------------
 * A consumer that waits at a gate, and senders that try it
 */

struct consumer {
	atomic_int at_gate; /* it is waiting at the gate */
	atomic_int gate;    /* opened by the test */
	atomic_uint works;  /* WORK messages handled */
	atomic_int done;    /* it handled `works_to_signal` WORK messages */
	unsigned works_to_signal;
	int exit_at_gate;        /* exit with reason 7 once the gate opens */
	unsigned hellos_to_exit; /* exit after this many HELLOs (0: never) */
	unsigned hellos, timers, downs, others;
	actor_down_t down;
};

static void consumer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct consumer *c = state;
	switch (msg->type) {
	case GATE:
		atomic_store(&c->at_gate, 1);
		gate_wait(&c->gate);
		if (c->exit_at_gate)
			actor_exit(ctx, 7);
		break;
	case WORK:
		if (atomic_fetch_add(&c->works, 1) + 1 == c->works_to_signal)
			atomic_store(&c->done, 1);
		break;
	case HELLO:
		if (++c->hellos == c->hellos_to_exit)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	case ACTOR_MSG_TIMER:
		c->timers++;
		break;
	case ACTOR_MSG_DOWN:
		c->downs++;
		if (msg->size == sizeof(c->down))
			memcpy(&c->down, actor_msg_data(msg), sizeof(c->down));
		break;
	default:
		c->others++;
	}
}

/* Spawns a consumer with `capacity` on `worker` and holds it at its gate. */
static actor_ref_t gated_consumer(actor_system_t *sys, struct consumer *c, uint32_t capacity,
                                  unsigned worker)
{
	actor_spawn_opts_t o = {
	    .placement = ACTOR_PLACE_FIXED, .worker = worker, .capacity = capacity};
	actor_ref_t ref = spawn_ok(sys, &o, consumer_fn, c);
	send_ok(sys, ref, GATE, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&c->at_gate), TEST_WATCHDOG),
	              "the consumer never reached its gate");
	return ref;
}

/* Sends WORK until the mailbox is full; true if exactly `n` went in. */
static bool fill(actor_system_t *sys, actor_ref_t to, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (actor_send(sys, to, WORK, &i, sizeof(i)) != 0)
			return false;
	}
	return actor_send(sys, to, WORK, NULL, 0) == -EAGAIN;
}

struct sender {
	actor_ref_t to;
	unsigned tries; /* sends per TRY */
	atomic_uint refused, tried_turns, other_rc;
	unsigned writables, bad_writables, downs, others;
	int retry_rc; /* its HELLO's send, on the notice */
	bool monitored;
};

static void sender_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sender *s = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	switch (msg->type) {
	case TRY:
		for (unsigned i = 0; i < s->tries; i++) {
			int rc = actor_send(sys, s->to, WORK, &i, sizeof(i));
			if (rc == -EAGAIN)
				atomic_fetch_add(&s->refused, 1);
			else
				atomic_fetch_add(&s->other_rc, 1);
		}
		atomic_fetch_add(&s->tried_turns, 1);
		break;
	case ACTOR_MSG_WRITABLE: {
		s->writables++;
		actor_writable_t wr;
		if (msg->size != sizeof(wr)) {
			s->bad_writables++;
			break;
		}
		memcpy(&wr, actor_msg_data(msg), sizeof(wr));
		if (!actor_ref_eq(wr.actor, s->to) || !actor_ref_eq(actor_sender(ctx), s->to))
			s->bad_writables++;
		s->retry_rc = actor_send(sys, s->to, HELLO, NULL, 0);
		break;
	}
	case ACTOR_MSG_DOWN:
		s->downs++;
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	default:
		s->others++;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Refusal
 */

START_TEST(a_full_mailbox_refuses_at_exactly_the_capacity)
{
	enum { CAP = 8 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {.works_to_signal = CAP};
	actor_ref_t ref = gated_consumer(sys, &c, CAP, 0);

	for (unsigned i = 0; i < CAP; i++)
		ck_assert_int_eq(actor_send(sys, ref, WORK, &i, sizeof(i)), 0);
	ck_assert_int_eq(actor_send(sys, ref, WORK, NULL, 0), -EAGAIN);
	ck_assert_int_eq(actor_send(sys, ref, WORK, "x", 1), -EAGAIN);

	/* actor_send_msg: refused, and the message is still the caller's, as it was. */
	actor_msg_t *m;
	ck_assert_int_eq(actor_msg_alloc(sizeof(*m) + 8, WORK, &m), 0);
	memcpy(actor_msg_data(m), "12345678", 8);
	m->sender = ACTOR_REF_NONE;
	ck_assert_int_eq(actor_send_msg(sys, ref, m), -EAGAIN);
	ck_assert_uint_eq(m->type, WORK);
	ck_assert_uint_eq(m->size, 8);
	ck_assert(actor_ref_is_none(m->sender));
	ck_assert_int_eq(memcmp(actor_msg_data(m), "12345678", 8), 0);

	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.capacity, CAP);
	ck_assert_uint_eq(info.depth, CAP);

	/* The library's control messages are not refused: the stop waits behind the work. */
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	gate_open(&c.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG));
	wait_stopped(sys, ref);
	/* Room now, but the actor is gone: the message is still the caller's to free. */
	ck_assert_int_eq(actor_send_msg(sys, ref, m), -ESRCH);
	actor_msg_free(m);
	system_run_to_end(sys, TEST_WATCHDOG, "refusal");

	ck_assert_uint_eq(atomic_load(&c.works), CAP);
	ck_assert_uint_eq(c.others, 0);
	actor_stats_t st = stats_of(sys);
	/* The gate and CAP works: nothing refused was sent, and no notice to an outside sender. */
	ck_assert_uint_eq(st.sent, 1 + CAP);
	ck_assert_uint_eq(st.delivered, 1 + CAP);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

/* Requests (actor_request) count in a bounded mailbox like plain sends: refused with -EAGAIN
 * when it is full, counted out as their behaviour gets them, and a refused requester gets its
 * notice. */
struct requester {
	actor_ref_t to;
	unsigned tries;
	atomic_uint accepted, refused, other_rc, replies, writables;
};

static void requester_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct requester *r = state;
	if (msg->type == TRY) {
		for (unsigned i = 0; i < r->tries; i++) {
			actor_request_t req;
			int rc = actor_request(ctx, r->to, WORK, &i, sizeof(i), NULL, &req);
			if (rc == 0)
				atomic_fetch_add(&r->accepted, 1);
			else if (rc == -EAGAIN)
				atomic_fetch_add(&r->refused, 1);
			else
				atomic_fetch_add(&r->other_rc, 1);
		}
	} else if (msg->type == ACTOR_MSG_REPLY) {
		atomic_fetch_add(&r->replies, 1);
	} else if (msg->type == ACTOR_MSG_WRITABLE) {
		atomic_fetch_add(&r->writables, 1);
	}
}

START_TEST(requests_count_in_a_bounded_mailbox_and_are_refused_when_it_is_full)
{
	enum { CAP = 4, TRIES = 6 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {.works_to_signal = CAP};
	actor_ref_t ref = gated_consumer(sys, &c, CAP, 0);
	struct requester r = {.to = ref, .tries = TRIES};
	send_ok(sys, spawn_on(sys, 1, requester_fn, &r), TRY, NULL, 0);
	ck_assert(WAIT_UNTIL(
	    atomic_load(&r.accepted) + atomic_load(&r.refused) + atomic_load(&r.other_rc) == TRIES,
	    TEST_WATCHDOG));
	ck_assert_uint_eq(atomic_load(&r.accepted), CAP);
	ck_assert_uint_eq(atomic_load(&r.refused), TRIES - CAP);
	ck_assert_uint_eq(atomic_load(&r.other_rc), 0);
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.depth, CAP);
	gate_open(&c.gate);
	/* Each request reaches the behaviour (answered by the library: -ENOMSG), counted out. */
	ck_assert(WAIT_UNTIL(atomic_load(&r.replies) == CAP && atomic_load(&r.writables) == 1,
	                     TEST_WATCHDOG));
	ck_assert_uint_eq(atomic_load(&c.works), CAP);
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.depth, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(room_after_the_refusal_takes_sends_again)
{
	enum { CAP = 3 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {.works_to_signal = CAP};
	actor_ref_t ref = gated_consumer(sys, &c, CAP, 1);
	ck_assert(fill(sys, ref, CAP));
	gate_open(&c.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG));
	/* Handed to the behaviour: they no longer count. */
	actor_info_t info;
	ck_assert(WAIT_UNTIL(actor_info(sys, ref, &info) == 0 && info.depth == 0, TEST_WATCHDOG));
	/* At a gate again, so that nothing is handled meanwhile: room for exactly CAP more. */
	atomic_store(&c.gate, 0);
	atomic_store(&c.at_gate, 0);
	send_ok(sys, ref, GATE, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.at_gate), TEST_WATCHDOG));
	ck_assert(fill(sys, ref, CAP));
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	gate_open(&c.gate);
	system_run_to_end(sys, TEST_WATCHDOG, "room again");
	ck_assert_uint_eq(atomic_load(&c.works), 2 * CAP);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The writable notice
 */

START_TEST(each_refused_sender_gets_exactly_one_writable_notice)
{
	enum { CAP = 4, SENDERS = 4, TURNS = 3, TRIES = 50 };
	actor_system_t *sys = system_new(3);
	struct consumer c = {.hellos_to_exit = SENDERS};
	actor_ref_t ref = gated_consumer(sys, &c, CAP, 0);
	ck_assert(fill(sys, ref, CAP));

	struct sender s[SENDERS];
	actor_ref_t sr[SENDERS];
	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < SENDERS; i++) {
		s[i].to = ref;
		s[i].tries = TRIES;
		/* Off the consumer's worker, which the gate holds; they stay, so the refusals of
		 * one sender are remembered by one worker. */
		sr[i] = spawn_on(sys, 1 + i % 2, sender_fn, &s[i]);
		ck_assert_int_eq(actor_monitor(sys, sr[i], ref), 0);
	}
	for (unsigned t = 0; t < TURNS; t++) {
		for (unsigned i = 0; i < SENDERS; i++)
			send_ok(sys, sr[i], TRY, NULL, 0);
	}
	for (unsigned i = 0; i < SENDERS; i++)
		ck_assert(WAIT_UNTIL(atomic_load(&s[i].tried_turns) == TURNS, TEST_WATCHDOG));
	/* Still full, and nobody has been told anything. */
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.depth, CAP);
	gate_open(&c.gate);
	/* The consumer drains, notifies each sender once, gets a HELLO from each on its notice,
	 * and exits; its DOWN ends the senders, after every notice it sent them. */
	system_run_to_end(sys, TEST_WATCHDOG, "writable notices");

	for (unsigned i = 0; i < SENDERS; i++) {
		ck_assert_uint_eq(atomic_load(&s[i].refused), TURNS * TRIES);
		ck_assert_uint_eq(atomic_load(&s[i].other_rc), 0);
		ck_assert_msg(s[i].writables == 1, "sender %u got %u notices", i, s[i].writables);
		ck_assert_uint_eq(s[i].bad_writables, 0);
		ck_assert_int_eq(s[i].retry_rc, 0);
		ck_assert_uint_eq(s[i].downs, 1);
		ck_assert_uint_eq(s[i].others, 0);
	}
	ck_assert_uint_eq(atomic_load(&c.works), CAP);
	ck_assert_uint_eq(c.hellos, SENDERS);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_receiver_that_stops_still_notifies_its_refused_senders)
{
	enum { CAP = 4 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {.exit_at_gate = 1};
	actor_ref_t ref = gated_consumer(sys, &c, CAP, 0);
	ck_assert(fill(sys, ref, CAP));
	struct sender s = {.to = ref, .tries = 3};
	actor_ref_t sr = spawn_on(sys, 1, sender_fn, &s);
	ck_assert_int_eq(actor_monitor(sys, sr, ref), 0);
	send_ok(sys, sr, TRY, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&s.tried_turns) == 1, TEST_WATCHDOG));
	/* The consumer exits full: no room ever comes, but the stop tells the sender, before its
	 * DOWN, and the retry on the notice fails as the receiver is gone. */
	gate_open(&c.gate);
	system_run_to_end(sys, TEST_WATCHDOG, "stop notifies");

	ck_assert_uint_eq(atomic_load(&s.refused), 3);
	ck_assert_uint_eq(s.writables, 1);
	ck_assert_uint_eq(s.bad_writables, 0);
	ck_assert_int_eq(s.retry_rc, -ESRCH);
	ck_assert_uint_eq(s.downs, 1);
	ck_assert_uint_eq(atomic_load(&c.works), 0);
	ck_assert_uint_eq(stats_of(sys).dead_letters, CAP); /* the work it never handled */
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Library messages
 */

/* Sets a timer for the consumer, then one for itself: the timers' worker fires them in that
 * order, so once its own has come the consumer's has been sent. */
struct timer_setter {
	actor_ref_t consumer;
	atomic_int fired; /* its own timer came */
	int rc1, rc2;
};

static void timer_setter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct timer_setter *t = state;
	actor_timer_t tm;
	if (msg->type == ARM) {
		t->rc1 = actor_timer_start(ctx, t->consumer, ACTOR_MS(1), 0, 1, &tm);
		t->rc2 = actor_timer_start(ctx, actor_self(ctx), ACTOR_MS(1), 0, 2, &tm);
	} else if (msg->type == ACTOR_MSG_TIMER) {
		atomic_store(&t->fired, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static void exit_at_once(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	(void)msg;
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(library_messages_reach_a_full_mailbox)
{
	enum { CAP = 2 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {0};
	actor_ref_t ref = gated_consumer(sys, &c, CAP, 0);
	ck_assert(fill(sys, ref, CAP));

	/* A timer firing into the full mailbox. */
	struct timer_setter t = {.consumer = ref};
	actor_ref_t tr = spawn_on(sys, 1, timer_setter_fn, &t);
	send_ok(sys, tr, ARM, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&t.fired), TEST_WATCHDOG));
	ck_assert_int_eq(t.rc1, 0);
	ck_assert_int_eq(t.rc2, 0);
	/* A DOWN: a monitor of an actor already stopped answers at once into the mailbox. */
	actor_ref_t gone = spawn_on(sys, 1, exit_at_once, NULL);
	send_ok(sys, gone, WORK, NULL, 0);
	wait_stopped(sys, gone);
	ck_assert_int_eq(actor_monitor(sys, ref, gone), 0);
	/* Neither counts; user messages are still refused; the stop is taken. */
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.depth, CAP);
	ck_assert_int_eq(actor_send(sys, ref, WORK, NULL, 0), -EAGAIN);
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	gate_open(&c.gate);
	system_run_to_end(sys, TEST_WATCHDOG, "library messages");

	ck_assert_uint_eq(atomic_load(&c.works), CAP);
	ck_assert_uint_eq(c.timers, 1);
	ck_assert_uint_eq(c.downs, 1);
	ck_assert(actor_ref_eq(c.down.actor, gone));
	ck_assert_int_eq(c.down.reason, ACTOR_REASON_NOPROC);
	ck_assert_uint_eq(c.others, 0);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Across migration: producers on several workers, a bounded consumer, everyone free to move
 */

/* A WORK payload: the producer's index and its sequence number. */
struct item {
	uint32_t producer;
	uint64_t seq;
};

struct stress;

struct producer {
	struct stress *st;
	actor_ref_t consumer;
	uint32_t index;
	uint64_t next;         /* the sequence number to send next */
	bool waiting;          /* refused, its notice not yet come */
	uint64_t episodes;     /* refusals that started a wait */
	uint64_t notices;      /* ACTOR_MSG_WRITABLE received */
	uint64_t unexpected;   /* notices while not waiting, or from elsewhere */
	uint64_t errors;       /* sends that failed otherwise */
	unsigned home_changes; /* times it found itself on another worker */
	unsigned last_worker;
};

struct stress {
	uint64_t per_producer;
	unsigned producers;
	uint64_t total, received;
	uint64_t next_seq[16];
	uint64_t out_of_order;
	unsigned consumer_home_changes, consumer_last_worker;
	atomic_ullong progress; /* for the watchdog */
};

#define PUMP_BUDGET 256 /* sends per producer turn: it yields to the consumer between */

static void producer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct producer *p = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	unsigned here = actor_ctx_worker(ctx);
	if (here != p->last_worker) {
		p->home_changes++;
		p->last_worker = here;
	}
	if (msg->type == ACTOR_MSG_WRITABLE) {
		p->notices++;
		if (!p->waiting || !actor_ref_eq(actor_sender(ctx), p->consumer))
			p->unexpected++;
		p->waiting = false;
	} else if (p->waiting) {
		p->unexpected++; /* nothing else should come while it waits */
		return;
	}
	for (unsigned n = 0; n < PUMP_BUDGET && p->next < p->st->per_producer; n++) {
		struct item it = {.producer = p->index, .seq = p->next};
		int rc = actor_send(sys, p->consumer, WORK, &it, sizeof(it));
		if (rc == -EAGAIN) {
			p->waiting = true;
			p->episodes++;
			return; /* the same item again on the notice */
		}
		if (rc != 0) {
			p->errors++;
			actor_exit(ctx, 1);
			return;
		}
		p->next++;
	}
	if (p->next < p->st->per_producer)
		actor_send(sys, actor_self(ctx), CONTINUE, NULL, 0);
	else
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void stress_consumer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct stress *st = state;
	unsigned here = actor_ctx_worker(ctx);
	if (here != st->consumer_last_worker) {
		st->consumer_home_changes++;
		st->consumer_last_worker = here;
	}
	struct item it;
	if (msg->type != WORK || msg->size != sizeof(it)) {
		st->out_of_order++;
		return;
	}
	memcpy(&it, actor_msg_data(msg), sizeof(it));
	if (it.producer >= st->producers || it.seq != st->next_seq[it.producer])
		st->out_of_order++;
	else
		st->next_seq[it.producer]++;
	atomic_fetch_add_explicit(&st->progress, 1, memory_order_relaxed);
	if (++st->received == st->total)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* `np` producers of `per` messages each into a consumer of `capacity`; `fixed`: the consumer
 * on worker 0 and the producers on the others, all staying; else round-robin, free to move. */
static void stress_run(unsigned np, uint64_t per, uint32_t capacity, bool fixed)
{
	if (np > 16)
		np = 16;
	actor_system_t *sys = system_new(3);
	struct stress st = {.per_producer = per, .producers = np, .total = per * np};
	atomic_init(&st.progress, 0);
	actor_spawn_opts_t co = {.capacity = capacity};
	if (fixed)
		co.placement = ACTOR_PLACE_FIXED;
	actor_ref_t consumer = spawn_ok(sys, &co, stress_consumer_fn, &st);
	st.consumer_last_worker = worker_of(sys, consumer);

	struct producer *p = calloc(np, sizeof(*p));
	ck_assert_ptr_nonnull(p);
	for (unsigned i = 0; i < np; i++) {
		p[i] = (struct producer){.st = &st, .consumer = consumer, .index = i};
		actor_spawn_opts_t po = {.placement = ACTOR_PLACE_FIXED, .worker = 1 + i % 2};
		actor_ref_t r = spawn_ok(sys, fixed ? &po : NULL, producer_fn, &p[i]);
		p[i].last_worker = worker_of(sys, r);
		send_ok(sys, r, START, NULL, 0);
	}
	struct watchdog wd;
	watchdog_start_progress(&wd, sys, 10, "bounded stress", &st.progress);
	ck_assert_int_eq(actor_system_run(sys), 0);
	ck_assert_msg(!watchdog_stop(&wd), "a producer waited for a notice that never came");

	uint64_t episodes = 0, moves = 0;
	for (unsigned i = 0; i < np; i++) {
		ck_assert_uint_eq(p[i].next, per);
		ck_assert_uint_eq(p[i].errors, 0);
		ck_assert_uint_eq(p[i].unexpected, 0);
		ck_assert_msg(p[i].notices == p[i].episodes,
		              "producer %u: %" PRIu64 " notices for %" PRIu64 " refusals", i,
		              p[i].notices, p[i].episodes);
		ck_assert(!p[i].waiting);
		episodes += p[i].episodes;
		moves += p[i].home_changes;
	}
	ck_assert_uint_eq(st.received, st.total);
	ck_assert_uint_eq(st.out_of_order, 0);
	for (unsigned i = 0; i < np; i++)
		ck_assert_uint_eq(st.next_seq[i], per);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	ck_assert_msg(episodes > 0, "the consumer never refused: the test tested nothing");
	uint64_t migrations = 0, shared = 0;
	for (unsigned i = 0; i < actor_system_workers(sys); i++) {
		actor_worker_stats_t ws;
		ck_assert_int_eq(actor_stats_worker(sys, i, &ws), 0);
		migrations += ws.migrations;
		shared += ws.shared;
	}
	fprintf(stderr,
	        "bounded stress: %" PRIu64 " refusal episodes; producers changed worker %" PRIu64
	        " times, the consumer %u; migrations %" PRIu64 ", shared %" PRIu64 "\n",
	        episodes, moves, st.consumer_home_changes, migrations, shared);
	free(p);
	actor_system_free(sys);
}

START_TEST(capacity_and_notices_hold_across_migration)
{
	unsigned np = (unsigned)test_param(1, "BOUNDED_PRODUCERS", STRESS_PRODUCERS_DEFAULT);
	uint64_t per = test_param(2, "BOUNDED_MESSAGES", STRESS_MESSAGES_DEFAULT);
	stress_run(np, per, 16, false);
}
END_TEST

/* Capacity 1 (room means empty): each refusal races the consumer's turn that empties the
 * mailbox and ends; a registration that turn's end misses must be caught by the sender's
 * nudge, or the producer waits forever (flow.c, W1). */
START_TEST(a_refusal_racing_the_receivers_last_turn_still_gets_its_notice)
{
	uint64_t per = test_param(2, "BOUNDED_MESSAGES", STRESS_MESSAGES_DEFAULT);
	stress_run(2, per, 1, true);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Depth and age in actor_info
 */

/* Sends `n` WORKs to counted `ref`, whose worker is held (its own gate, or another actor's),
 * and lets time pass; checks depth `n` and an age at least the time since the first of them
 * was sent (its send stamped the mailbox, with a coarse clock that is never ahead). */
static void check_backlog(actor_system_t *sys, actor_ref_t ref, unsigned n)
{
	unsigned first = 0;
	send_ok(sys, ref, WORK, &first, sizeof(first));
	double t_sent = now_sec(); /* after the first send: no earlier than its stamp */
	for (unsigned i = 1; i < n; i++)
		send_ok(sys, ref, WORK, &i, sizeof(i));
	sleep_ms(30); /* time passing, to be measured: not a synchronisation */
	double t_info = now_sec();
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.depth, n);
	uint64_t waited = (uint64_t)((t_info - t_sent) * 1e9);
	ck_assert_msg(info.oldest_age_ns >= waited, "age %" PRIu64 " ns, waited %" PRIu64 " ns",
	              info.oldest_age_ns, waited);
	ck_assert_msg(info.oldest_age_ns < waited + (uint64_t)(TEST_WATCHDOG * 1e9 * test_scale()),
	              "age %" PRIu64 " ns is not this backlog's", info.oldest_age_ns);
}

/* Once it has handled everything and gone idle: nothing waits. */
static void check_idle(actor_system_t *sys, actor_ref_t ref)
{
	actor_info_t info;
	ck_assert_msg(WAIT_UNTIL(actor_info(sys, ref, &info) == 0 && info.depth == 0 &&
	                             info.oldest_age_ns == 0,
	                         TEST_WATCHDOG),
	              "an idle actor shows depth %" PRIu64 ", age %" PRIu64, info.depth,
	              info.oldest_age_ns);
}

START_TEST(info_reports_depth_and_age_of_a_bounded_mailbox)
{
	enum { N = 5 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {.works_to_signal = N};
	actor_ref_t ref = gated_consumer(sys, &c, 10, 0);
	check_backlog(sys, ref, N);
	gate_open(&c.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG));
	check_idle(sys, ref);
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.capacity, 10);
	ck_assert_ptr_null(info.name);
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "bounded depth and age");
	actor_system_free(sys);
}
END_TEST

START_TEST(info_reports_depth_of_every_mailbox_when_the_system_counts)
{
	enum { N = 7 };
	actor_config_t cfg = {.workers = 2, .count_depth = 1};
	actor_system_t *sys = system_new_cfg(&cfg);
	struct consumer c = {.works_to_signal = N};
	actor_ref_t ref = gated_consumer(sys, &c, 0, 0);
	check_backlog(sys, ref, N);
	gate_open(&c.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG));
	check_idle(sys, ref);
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.capacity, 0);
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "counted depth");
	ck_assert_uint_eq(atomic_load(&c.works), N);
	actor_system_free(sys);
}
END_TEST

/* A mailbox emptied, then idle a while, then sent to again while its worker is busy: the age
 * counts from the new message, not from the first run of messages (flow.c, A1). */
START_TEST(the_age_starts_again_once_the_mailbox_has_emptied)
{
	enum { N = 4, IDLE_MS = 100 };
	actor_system_t *sys = system_new(2);
	/* `b` holds worker 1 at its gate while `c`, counted, waits there behind it. */
	struct consumer b = {0}, c = {.works_to_signal = N};
	actor_ref_t bref = gated_consumer(sys, &b, 0, 1);
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED, .worker = 1, .capacity = 10};
	actor_ref_t ref = spawn_ok(sys, &o, consumer_fn, &c);
	check_backlog(sys, ref, N);
	gate_open(&b.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG));
	check_idle(sys, ref);
	sleep_ms(IDLE_MS); /* time passing, which the next age must not include */

	atomic_store(&b.at_gate, 0);
	atomic_store(&b.gate, 0);
	send_ok(sys, bref, GATE, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&b.at_gate), TEST_WATCHDOG));
	struct timespec res;
	ck_assert_int_eq(clock_getres(CLOCK_MONOTONIC_COARSE, &res), 0);
	double t_before = now_sec(); /* before the stamp, which is at most a tick behind it */
	unsigned i = N;
	send_ok(sys, ref, WORK, &i, sizeof(i));
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	uint64_t bound = (uint64_t)((now_sec() - t_before) * 1e9) + 2 * (uint64_t)res.tv_nsec;
	ck_assert_uint_eq(info.depth, 1);
	ck_assert_msg(info.oldest_age_ns > 0 && info.oldest_age_ns < bound,
	              "age %" PRIu64 " ns, at most %" PRIu64 " ns expected", info.oldest_age_ns,
	              bound);
	gate_open(&b.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.works) == N + 1, TEST_WATCHDOG));
	check_idle(sys, ref);
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	ck_assert_int_eq(actor_stop(sys, bref), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "age restarts");
	actor_system_free(sys);
}
END_TEST

/* Without a count there is no age (no send or turn pays for one): 0, and the depth says only
 * whether the mailbox is idle. */
START_TEST(info_reports_no_age_for_an_uncounted_mailbox)
{
	enum { N = 3 };
	actor_system_t *sys = system_new(2);
	struct consumer c = {.works_to_signal = N};
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED, .worker = 1, .name = "plain"};
	actor_ref_t ref = spawn_ok(sys, &o, consumer_fn, &c);
	check_idle(sys, ref); /* never woken yet */
	send_ok(sys, ref, GATE, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.at_gate), TEST_WATCHDOG));
	for (unsigned i = 0; i < N; i++)
		send_ok(sys, ref, WORK, &i, sizeof(i));
	sleep_ms(30); /* time passing, that an age would show: not a synchronisation */
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.depth, ACTOR_DEPTH_UNKNOWN);
	ck_assert_uint_eq(info.oldest_age_ns, 0);
	gate_open(&c.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG));
	check_idle(sys, ref);
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_str_eq(info.name, "plain");
	ck_assert_uint_eq(info.capacity, 0);
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "uncounted age");
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Options
 */

START_TEST(bad_capacity_and_count_options_are_refused)
{
	actor_system_t *sys = system_new(1);
	actor_ref_t ref = ACTOR_REF_NONE;
	actor_spawn_opts_t o = {.capacity = ACTOR_CAPACITY_MAX + 1};
	ck_assert_int_eq(actor_spawn(sys, &o, consumer_fn, NULL, &ref), -EINVAL);
	o.capacity = UINT32_MAX;
	ck_assert_int_eq(actor_spawn(sys, &o, consumer_fn, NULL, &ref), -EINVAL);
	ck_assert(actor_ref_is_none(ref));
	o.capacity = ACTOR_CAPACITY_MAX;
	ck_assert_int_eq(actor_spawn(sys, &o, consumer_fn, NULL, &ref), 0);
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, ref, &info), 0);
	ck_assert_uint_eq(info.capacity, ACTOR_CAPACITY_MAX);
	ck_assert_uint_eq(info.depth, 0);
	ck_assert_uint_eq(info.oldest_age_ns, 0);
	ck_assert_int_eq(actor_stop(sys, ref), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "options");
	actor_system_free(sys);

	actor_system_t *bad = NULL;
	actor_config_t cfg = {.count_depth = 2};
	ck_assert_int_eq(actor_system_create(&cfg, &bad), -EINVAL);
	cfg.count_depth = -1;
	ck_assert_int_eq(actor_system_create(&cfg, &bad), -EINVAL);
	ck_assert_ptr_null(bad);
}
END_TEST

static Suite *bounded_suite(void)
{
	Suite *s = suite_create("bounded");
	TCase *tc = tcase_new("refusal", TEST_TIMEOUT);
	tcase_add_test(tc, a_full_mailbox_refuses_at_exactly_the_capacity);
	tcase_add_test(tc, requests_count_in_a_bounded_mailbox_and_are_refused_when_it_is_full);
	tcase_add_test(tc, room_after_the_refusal_takes_sends_again);
	tcase_add_test(tc, library_messages_reach_a_full_mailbox);
	tcase_add_test(tc, bad_capacity_and_count_options_are_refused);
	suite_add_tcase(s, tc);

	tc = tcase_new("notices", TEST_TIMEOUT);
	tcase_add_test(tc, each_refused_sender_gets_exactly_one_writable_notice);
	tcase_add_test(tc, a_receiver_that_stops_still_notifies_its_refused_senders);
	suite_add_tcase(s, tc);

	tc = tcase_new("info", TEST_TIMEOUT);
	tcase_add_test(tc, info_reports_depth_and_age_of_a_bounded_mailbox);
	tcase_add_test(tc, info_reports_depth_of_every_mailbox_when_the_system_counts);
	tcase_add_test(tc, the_age_starts_again_once_the_mailbox_has_emptied);
	tcase_add_test(tc, info_reports_no_age_for_an_uncounted_mailbox);
	suite_add_tcase(s, tc);

	tc = tcase_new("migration", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, capacity_and_notices_hold_across_migration);
	tcase_add_test(tc, a_refusal_racing_the_receivers_last_turn_still_gets_its_notice);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(bounded_suite)
