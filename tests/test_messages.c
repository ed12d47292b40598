/* test_messages.c: messages through the public API: copying sends, empty messages, zero-copy
 * sends and forwards, a failed zero-copy send, a message kept past the behaviour call, payloads
 * of every length, and message blocks recycled between threads.
 */
#include "common.h"

/* ---------------------------------------------------------------------------------------------
 * Copying sends
 */

START_TEST(actor_receives_a_copy_of_the_sent_bytes)
{
	actor_system_t *sys = system_new(2);
	struct recorder r = {0};
	actor_ref_t a = spawn_ok(sys, NULL, record_and_exit, &r);
	char buf[] = "hello, actor";

	send_ok(sys, a, 7, buf, sizeof(buf));
	memset(buf, 'X', sizeof(buf) - 1); /* the message must not see this */
	system_run_to_end(sys, TEST_WATCHDOG, "one copied message");

	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(r.type, 7);
	ck_assert_uint_eq(r.size, sizeof("hello, actor"));
	ck_assert_str_eq(r.data, "hello, actor");
	ck_assert(actor_ref_eq(r.self, a));
	ck_assert(actor_ref_is_none(r.msg_sender));
	ck_assert(actor_ref_is_none(r.ctx_sender));
	ck_assert_ptr_eq(r.sys, sys);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.spawned, 1);
	ck_assert_uint_eq(st.stopped, 1);
	ck_assert_uint_eq(st.sent, 1);
	ck_assert_uint_eq(st.delivered, 1);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(empty_message_carries_only_its_type)
{
	actor_system_t *sys = system_new(1);
	struct recorder r = {0};
	actor_ref_t a = spawn_ok(sys, NULL, record_and_exit, &r);

	send_ok(sys, a, 12345, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "one empty message");
	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(r.type, 12345);
	ck_assert_uint_eq(r.size, 0);
	actor_system_free(sys);
}
END_TEST

/* Every payload length from 0 to SIZES_MAX - 1, each with bytes of its own: the copy takes
 * small payloads apart from memcpy (actor.c, copy_payload), with a case for each range of
 * lengths and overlapping stores inside them, so every length and both size classes. */
#define SIZES_MAX 80u
#define SIZES_TYPE 100u /* a message of length n has type SIZES_TYPE + n */

static uint8_t size_byte(unsigned len, unsigned i)
{
	return (uint8_t)(len * 31u + i * 7u + 1u);
}

static void size_fill(uint8_t *buf, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		buf[i] = size_byte(len, i);
}

struct sizes_check {
	unsigned got, bad;
	unsigned seen[SIZES_MAX]; /* messages of each length */
	unsigned expect;          /* messages in all: the checker stops at that */
};

static void sizes_checker(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sizes_check *c = state;
	unsigned len = msg->type - SIZES_TYPE;
	const uint8_t *p = actor_msg_data(msg);
	bool ok = len < SIZES_MAX && msg->size == len;
	for (unsigned i = 0; ok && i < len; i++)
		ok = p[i] == size_byte(len, i);
	c->got++;
	if (!ok)
		c->bad++;
	else
		c->seen[len]++;
	if (c->got == c->expect)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* On any message: sends every length to the checker in its state, from inside a behaviour. */
static void sizes_sender(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	actor_ref_t *checker = state;
	uint8_t buf[SIZES_MAX];
	for (unsigned len = 0; len < SIZES_MAX; len++) {
		size_fill(buf, len);
		ck_assert_int_eq(
		    actor_send(actor_ctx_system(ctx), *checker, SIZES_TYPE + len, buf, len), 0);
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(every_payload_length_arrives_byte_for_byte)
{
	actor_system_t *sys = system_new(2);
	struct sizes_check c = {.expect = 2 * SIZES_MAX};
	actor_ref_t checker = spawn_ok(sys, NULL, sizes_checker, &c);
	actor_ref_t sender = spawn_ok(sys, NULL, sizes_sender, &checker);
	uint8_t buf[SIZES_MAX];
	for (unsigned len = 0; len < SIZES_MAX; len++) { /* from outside the pool */
		size_fill(buf, len);
		send_ok(sys, checker, SIZES_TYPE + len, buf, len);
	}
	send_ok(sys, sender, 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "every payload length");
	ck_assert_uint_eq(c.got, 2 * SIZES_MAX);
	ck_assert_uint_eq(c.bad, 0);
	for (unsigned len = 0; len < SIZES_MAX; len++)
		ck_assert_msg(c.seen[len] == 2, "length %u arrived intact %u times, not twice", len,
		              c.seen[len]);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Zero-copy sends
 */

struct big_msg {
	actor_msg_t hdr;
	uint64_t a, b;
	char text[24];
};

struct zc_state {
	unsigned calls;
	uintptr_t seen; /* address of the message received */
	uint64_t a, b;
	char text[24];
	uint32_t size, type;
	actor_ref_t sender;
	actor_ref_t forward_to; /* forward the message there, if set */
	int forward_rc;
};

static void zero_copy_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct zc_state *z = state;
	struct big_msg *m = (struct big_msg *)msg;
	z->calls++;
	z->seen = (uintptr_t)msg;
	z->size = msg->size;
	z->type = msg->type;
	z->sender = msg->sender;
	z->a = m->a;
	z->b = m->b;
	memcpy(z->text, m->text, sizeof(z->text));
	if (!actor_ref_is_none(z->forward_to))
		z->forward_rc = actor_send_msg(actor_ctx_system(ctx), z->forward_to, msg);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static struct big_msg *big_msg_new(uint32_t type)
{
	actor_msg_t *m = NULL;
	ck_assert_int_eq(actor_msg_alloc(sizeof(struct big_msg), type, &m), 0);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->type, type);
	ck_assert_uint_eq(m->size, sizeof(struct big_msg) - sizeof(actor_msg_t));
	struct big_msg *b = (struct big_msg *)m;
	b->a = 0x1122334455667788ull;
	b->b = 42;
	strcpy(b->text, "zero copy");
	return b;
}

START_TEST(zero_copy_message_arrives_at_the_address_sent)
{
	actor_system_t *sys = system_new(2);
	struct zc_state z = {0};
	actor_ref_t a = spawn_ok(sys, NULL, zero_copy_behavior, &z);
	struct big_msg *m = big_msg_new(9);
	uintptr_t addr = (uintptr_t)m;

	ck_assert_int_eq(actor_send_msg(sys, a, &m->hdr), 0);
	m = NULL; /* ownership moved: the runtime frees it */
	system_run_to_end(sys, TEST_WATCHDOG, "one zero-copy message");

	ck_assert_uint_eq(z.calls, 1);
	ck_assert_msg(z.seen == addr, "the message was copied");
	ck_assert_uint_eq(z.type, 9);
	ck_assert_uint_eq(z.size, sizeof(struct big_msg) - sizeof(actor_msg_t));
	ck_assert_uint_eq(z.a, 0x1122334455667788ull);
	ck_assert_uint_eq(z.b, 42);
	ck_assert_str_eq(z.text, "zero copy");
	ck_assert(actor_ref_is_none(z.sender));
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, 1);
	ck_assert_uint_eq(st.delivered, 1);
	actor_system_free(sys);
}
END_TEST

START_TEST(behaviour_forwards_its_message_without_copying)
{
	actor_system_t *sys = system_new(2);
	struct zc_state first = {0}, second = {0};
	actor_ref_t b = spawn_on(sys, 1, zero_copy_behavior, &second);
	first.forward_to = b;
	actor_ref_t a = spawn_on(sys, 0, zero_copy_behavior, &first);
	struct big_msg *m = big_msg_new(3);
	uintptr_t addr = (uintptr_t)m;

	ck_assert_int_eq(actor_send_msg(sys, a, &m->hdr), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "a forwarded message");

	ck_assert_uint_eq(first.calls, 1);
	ck_assert_int_eq(first.forward_rc, 0);
	ck_assert_uint_eq(second.calls, 1);
	ck_assert_msg(first.seen == addr && second.seen == addr, "the message was copied");
	ck_assert_uint_eq(second.type, 3);
	ck_assert_str_eq(second.text, "zero copy");
	/* The forward is a send by the first actor: it is the sender now. */
	ck_assert(actor_ref_is_none(first.sender));
	ck_assert(actor_ref_eq(second.sender, a));
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, 2);
	ck_assert_uint_eq(st.delivered, 2);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

/* Regression: the runtime read the type of a message after the behaviour had forwarded it,
 * racing with the receiver on another worker freeing it (ThreadSanitizer and AddressSanitizer
 * builds catch a return of that bug here; the counts hold in every build). */
struct relay {
	actor_ref_t to;
	atomic_ulong seen;
	unsigned long expect;
};

static void relay_forwards(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct relay *r = state;
	ck_assert_int_eq(actor_send_msg(actor_ctx_system(ctx), r->to, msg), 0);
	if (atomic_fetch_add(&r->seen, 1) + 1 == r->expect)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void relay_sink(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	struct relay *r = state;
	if (atomic_fetch_add(&r->seen, 1) + 1 == r->expect)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(forwarded_message_is_not_touched_after_the_behaviour_returns)
{
	const unsigned long n = 20000;
	actor_system_t *sys = system_new(2);
	struct relay sink = {.expect = n}, relay = {.expect = n};
	sink.to = ACTOR_REF_NONE;
	relay.to = spawn_on(sys, 1, relay_sink, &sink);
	actor_ref_t a = spawn_on(sys, 0, relay_forwards, &relay);
	for (unsigned long i = 0; i < n; i++)
		send_u64(sys, a, 1, i);
	system_run_to_end(sys, TEST_WATCHDOG, "forwarding across workers");
	ck_assert_uint_eq(atomic_load(&relay.seen), n);
	ck_assert_uint_eq(atomic_load(&sink.seen), n);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, 2 * n);
	ck_assert_uint_eq(st.delivered, 2 * n);
	actor_system_free(sys);
}
END_TEST

START_TEST(failed_zero_copy_send_leaves_the_message_with_the_caller)
{
	actor_system_t *sys = system_new(2);
	struct recorder r = {0};
	actor_ref_t a = spawn_ok(sys, NULL, record_and_exit, &r);
	send_ok(sys, a, 1, NULL, 0);
	wait_stopped(sys, a);

	struct big_msg *m = big_msg_new(5);
	ck_assert_int_eq(actor_send_msg(sys, a, &m->hdr), -ESRCH);
	/* Still ours: intact, writable, and sendable again. */
	ck_assert_uint_eq(m->hdr.type, 5);
	ck_assert_uint_eq(m->a, 0x1122334455667788ull);
	m->b = 7;
	m->hdr.type = ACTOR_MSG_SYSTEM + 0x100; /* the library's control types are never sent */
	ck_assert_int_eq(actor_send_msg(sys, a, &m->hdr), -EINVAL);
	ck_assert_uint_eq(m->b, 7);
	m->hdr.type = ACTOR_MSG_DOWN; /* a library message: a stopped receiver, as any other */
	ck_assert_int_eq(actor_send_msg(sys, a, &m->hdr), -ESRCH);
	ck_assert_uint_eq(m->hdr.type, ACTOR_MSG_DOWN);
	actor_msg_free(&m->hdr);

	system_run_to_end(sys, TEST_WATCHDOG, "an actor that stopped");
	ck_assert_uint_eq(r.calls, 1);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, 1); /* failed sends are not counted */
	ck_assert_uint_eq(st.delivered, 1);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

/* The library's messages can be passed on as the user's can: a DOWN, a timer event and a
 * job's result, forwarded from the actor that got them to one on another worker, arrive as they
 * were; a forwarded one that finds its receiver gone is a dead letter of its own type. */
enum { FWD_GO = 1, FWD_VICTIM = 2 };

struct forwarder {
	actor_ref_t to, victim;
	int rc[3]; /* DOWN, TIMER, JOB_DONE */
	atomic_int forwarded;
};

static int64_t job_seven(void *arg)
{
	(void)arg;
	return 7;
}

static void forwarder_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct forwarder *f = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	if (msg->type == FWD_GO) {
		actor_timer_t t;
		actor_job_t j;
		if (actor_monitor(sys, actor_self(ctx), f->victim) != 0 ||
		    actor_stop(sys, f->victim) != 0 ||
		    actor_timer_start(ctx, actor_self(ctx), 1000000u, 0, 77, &t) != 0 ||
		    actor_job_submit(ctx, &(actor_job_opts_t){.tag = 88}, job_seven, NULL, &j) != 0)
			f->rc[0] = f->rc[1] = f->rc[2] = -999;
		return;
	}
	int k = msg->type == ACTOR_MSG_DOWN ? 0 : msg->type == ACTOR_MSG_TIMER ? 1 : 2;
	f->rc[k] = actor_send_msg(sys, f->to, msg);
	atomic_fetch_add(&f->forwarded, 1);
}

struct fwd_sink {
	actor_ref_t sender;
	actor_ref_t down_actor;
	int down_reason;
	uint64_t timer_tag, job_tag;
	int64_t job_result;
	atomic_int got;
};

static void fwd_sink_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	struct fwd_sink *s = state;
	s->sender = msg->sender;
	if (msg->type == ACTOR_MSG_DOWN) {
		const actor_down_t *d = actor_msg_data(msg);
		s->down_actor = d->actor;
		s->down_reason = d->reason;
	} else if (msg->type == ACTOR_MSG_TIMER) {
		const actor_timer_event_t *e = actor_msg_data(msg);
		s->timer_tag = e->tag;
	} else if (msg->type == ACTOR_MSG_JOB_DONE) {
		const actor_job_done_t *d = actor_msg_data(msg);
		s->job_tag = d->tag;
		s->job_result = d->result;
	} else {
		return;
	}
	atomic_fetch_add(&s->got, 1);
}

static void victim_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

START_TEST(library_messages_can_be_forwarded_and_arrive_as_they_were)
{
	actor_system_t *sys = system_new(2);
	struct fwd_sink sink = {0};
	struct forwarder f = {.to = spawn_on(sys, 1, fwd_sink_fn, &sink),
	                      .victim = spawn_on(sys, 1, victim_fn, NULL)};
	actor_ref_t a = spawn_on(sys, 0, forwarder_fn, &f);
	send_ok(sys, a, FWD_GO, NULL, 0);
	assert_eventually(atomic_load(&sink.got) == 3, TEST_WATCHDOG);
	for (int k = 0; k < 3; k++)
		ck_assert_msg(f.rc[k] == 0, "forward %d: %d", k, f.rc[k]);
	ck_assert(actor_ref_eq(sink.sender, a)); /* the forwarder sent it on */
	ck_assert(actor_ref_eq(sink.down_actor, f.victim));
	ck_assert_int_eq(sink.down_reason, ACTOR_REASON_KILLED);
	ck_assert_uint_eq(sink.timer_tag, 77);
	ck_assert_uint_eq(sink.job_tag, 88);
	ck_assert_int_eq(sink.job_result, 7);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "forwarded library messages");
	actor_system_free(sys);
}
END_TEST

struct dl_seen {
	atomic_uint type;
	atomic_int count;
};

static void record_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	(void)to;
	struct dl_seen *d = arg;
	atomic_store(&d->type, msg->type);
	atomic_fetch_add(&d->count, 1);
}

/* Forwards its one timer event to `to`, which has stopped by then: a dead letter. */
static void timer_forwarder_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct forwarder *f = state;
	if (msg->type == FWD_GO) {
		actor_timer_t t;
		f->rc[0] = actor_timer_start(ctx, actor_self(ctx), 1000u, 0, 5, &t);
		return;
	}
	f->rc[1] = actor_send_msg(actor_ctx_system(ctx), f->to, msg);
	atomic_fetch_add(&f->forwarded, 1);
}

/* A receiver that holds its worker on its first message until the test opens the gate, then
 * stops, leaving what came after that message as dead letters. */
static atomic_int hold_gate;

static void stop_at_once_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	(void)msg;
	gate_wait(&hold_gate);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_forwarded_library_message_left_undelivered_is_a_dead_letter_of_its_type)
{
	struct dl_seen dl = {0};
	actor_config_t cfg = {.workers = 2, .dead_letter = record_dead_letter, .dead_letter_arg = &dl};
	actor_system_t *sys = system_new_cfg(&cfg);
	/* The receiver holds its first message until the forward is queued behind it. */
	struct forwarder f = {.to = spawn_on(sys, 1, stop_at_once_fn, NULL)};
	actor_ref_t a = spawn_on(sys, 0, timer_forwarder_fn, &f);
	send_ok(sys, f.to, 1, NULL, 0);
	send_ok(sys, a, FWD_GO, NULL, 0);
	assert_eventually(atomic_load(&f.forwarded) == 1, TEST_WATCHDOG);
	ck_assert_int_eq(f.rc[0], 0);
	ck_assert_int_eq(f.rc[1], 0); /* queued: the receiver was still there */
	gate_open(&hold_gate);
	wait_stopped(sys, f.to);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "a forward to a stopped actor");
	/* A dead letter of its own type, not with the library's mark on it. */
	ck_assert_int_eq(atomic_load(&dl.count), 1);
	ck_assert_uint_eq(atomic_load(&dl.type), ACTOR_MSG_TIMER);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Keeping a message
 */

#define KEEP_SIZE 64
#define KEEP_CHURN 32 /* same-size messages allocated after the keep, to reuse freed memory */

struct keeper {
	actor_msg_t *kept;
	int keep_rc;
	unsigned churn;
	bool intact;
	uint32_t kept_type, kept_size;
	actor_ref_t kept_sender;
};

static void keeper_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct keeper *k = state;
	if (msg->type == 1) {
		k->keep_rc = actor_msg_keep(ctx);
		k->kept = msg;
		/* Had the runtime freed the kept message anyway, these would likely reuse it. */
		char junk[KEEP_SIZE];
		memset(junk, 0x5a, sizeof(junk));
		for (int i = 0; i < KEEP_CHURN; i++)
			actor_send(actor_ctx_system(ctx), actor_self(ctx), 2, junk, sizeof(junk));
		return;
	}
	if (++k->churn < KEEP_CHURN)
		return;
	const unsigned char *p = actor_msg_data(k->kept);
	k->intact = true;
	for (int i = 0; i < KEEP_SIZE; i++)
		k->intact = k->intact && p[i] == 0xa5;
	k->kept_type = k->kept->type;
	k->kept_size = k->kept->size;
	k->kept_sender = k->kept->sender;
	actor_msg_free(k->kept);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(kept_message_outlives_the_behaviour_call)
{
	actor_system_t *sys = system_new(1);
	struct keeper k = {0};
	actor_ref_t a = spawn_ok(sys, NULL, keeper_behavior, &k);
	char payload[KEEP_SIZE];
	memset(payload, 0xa5, sizeof(payload));
	send_ok(sys, a, 1, payload, sizeof(payload));
	system_run_to_end(sys, TEST_WATCHDOG, "keep");

	ck_assert_int_eq(k.keep_rc, 0);
	ck_assert_uint_eq(k.churn, KEEP_CHURN);
	ck_assert_msg(k.intact, "the kept message was overwritten: freed by the runtime?");
	ck_assert_uint_eq(k.kept_type, 1);
	ck_assert_uint_eq(k.kept_size, KEEP_SIZE);
	ck_assert(actor_ref_is_none(k.kept_sender));
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, 1 + KEEP_CHURN);
	ck_assert_uint_eq(st.delivered, 1 + KEEP_CHURN);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Recycled blocks
 *
 * Message blocks freed on one thread are reused on another (libactor/core/alloc_jemalloc.c, the
 * spare stacks): outside threads feed receivers on the workers, which relay every message to
 * a collector on another worker, so blocks flow one way at both hops and come back through the
 * stacks. A block handed out twice, or reused while a message still lives in it, shows as a
 * payload that does not match its sequence number, or as a lost or repeated message; threads
 * that exit and new ones that start take the exit path of an outside thread's list.
 */
#define RECYCLE_SENDERS 2u  /* outside threads per wave */
#define RECYCLE_WAVES 2u    /* waves of fresh threads */
#define RECYCLE_RECEIVERS 4u
#define RECYCLE_WORDS 4u    /* 32 bytes of payload, 40 relayed: the 64-byte class; odd seqs use 1 (32-byte) */

enum { MSG_RECYCLE_DATA = 1, MSG_RECYCLE_STOP };

/* Word 0: the sender (wave * RECYCLE_SENDERS + thread) << 32 | seq; words 1..: its pattern. */
static uint64_t recycle_word(uint64_t head, unsigned i)
{
	return head * 0x9e3779b97f4a7c15ull + i;
}

static unsigned recycle_words(uint64_t head)
{
	return (head & 1) ? 1 : RECYCLE_WORDS;
}

struct recycle_check {
	uint64_t next[RECYCLE_WAVES * RECYCLE_SENDERS][RECYCLE_RECEIVERS]; /* expected seq */
	uint64_t got, bad, out_of_order;
};

/* Checks one message from (sender, receiver) `r` against its pattern and order. */
static void recycle_check(struct recycle_check *c, unsigned r, actor_msg_t *msg)
{
	uint64_t w[RECYCLE_WORDS];
	if (msg->size != sizeof(uint64_t) && msg->size != sizeof(w)) {
		c->bad++;
		return;
	}
	memcpy(w, actor_msg_data(msg), msg->size);
	unsigned n = msg->size / sizeof(uint64_t);
	uint64_t sender = w[0] >> 32, seq = w[0] & 0xffffffffu;
	if (sender >= RECYCLE_WAVES * RECYCLE_SENDERS || n != recycle_words(w[0])) {
		c->bad++;
		return;
	}
	for (unsigned i = 1; i < n; i++)
		if (w[i] != recycle_word(w[0], i))
			c->bad++;
	if (seq != c->next[sender][r])
		c->out_of_order++;
	c->next[sender][r] = seq + 1;
	c->got++;
}

struct recycle_receiver {
	unsigned index;
	actor_ref_t collector;
	struct recycle_check check;
	int relay_rc;
};

static void recycle_receiver_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct recycle_receiver *r = state;
	/* The relay carries the receiver's index in front of the payload. */
	uint64_t w[1 + RECYCLE_WORDS] = {r->index};
	if (msg->type == MSG_RECYCLE_STOP) {
		int rc = actor_send(actor_ctx_system(ctx), r->collector, MSG_RECYCLE_STOP, w, 8);
		if (rc != 0)
			r->relay_rc = rc;
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	recycle_check(&r->check, 0, msg);
	size_t len = msg->size <= sizeof(w) - 8 ? msg->size : 0;
	memcpy(w + 1, actor_msg_data(msg), len);
	int rc = actor_send(actor_ctx_system(ctx), r->collector, MSG_RECYCLE_DATA, w, 8 + len);
	if (rc != 0)
		r->relay_rc = rc;
}

struct recycle_collector {
	struct recycle_check check;
	unsigned stops;
};

static void recycle_collector_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct recycle_collector *c = state;
	if (msg->type == MSG_RECYCLE_STOP) {
		if (++c->stops == RECYCLE_RECEIVERS)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t r;
	memcpy(&r, actor_msg_data(msg), sizeof(r));
	/* Strip the receiver's index into a message of the original shape. */
	struct {
		actor_msg_t hdr;
		uint64_t w[RECYCLE_WORDS];
	} inner;
	inner.hdr = *msg;
	inner.hdr.size = msg->size - 8;
	memcpy(inner.w, (const char *)actor_msg_data(msg) + 8,
	       inner.hdr.size <= sizeof(inner.w) ? inner.hdr.size : 0);
	if (r >= RECYCLE_RECEIVERS || inner.hdr.size > sizeof(inner.w)) {
		c->check.bad++;
		return;
	}
	recycle_check(&c->check, (unsigned)r, &inner.hdr);
}

struct recycle_run {
	actor_system_t *sys;
	actor_ref_t receivers[RECYCLE_RECEIVERS];
	uint64_t per_sender;
	unsigned sender;
	atomic_int send_errors;
};

struct recycle_sender {
	struct recycle_run *run;
	unsigned id;
};

static void *recycle_sender_main(void *arg)
{
	struct recycle_sender *s = arg;
	struct recycle_run *run = s->run;
	for (uint64_t seq = 0; seq < run->per_sender; seq++) {
		uint64_t w[RECYCLE_WORDS];
		w[0] = (uint64_t)s->id << 32 | seq;
		unsigned n = recycle_words(w[0]);
		for (unsigned i = 1; i < n; i++)
			w[i] = recycle_word(w[0], i);
		/* Every receiver gets the sequence 0, 1, 2, ... from this sender. */
		for (unsigned r = 0; r < RECYCLE_RECEIVERS; r++)
			if (actor_send(run->sys, run->receivers[r], MSG_RECYCLE_DATA, w,
			               n * sizeof(uint64_t)) != 0)
				atomic_fetch_add(&run->send_errors, 1);
	}
	return NULL;
}

static void *recycle_driver_main(void *arg)
{
	struct recycle_run *run = arg;
	for (unsigned wave = 0; wave < RECYCLE_WAVES; wave++) {
		pthread_t t[RECYCLE_SENDERS];
		struct recycle_sender s[RECYCLE_SENDERS];
		for (unsigned i = 0; i < RECYCLE_SENDERS; i++) {
			s[i] = (struct recycle_sender){.run = run, .id = wave * RECYCLE_SENDERS + i};
			if (pthread_create(&t[i], NULL, recycle_sender_main, &s[i]) != 0)
				abort();
		}
		for (unsigned i = 0; i < RECYCLE_SENDERS; i++)
			pthread_join(t[i], NULL); /* each thread's list is emptied as it exits */
	}
	for (unsigned r = 0; r < RECYCLE_RECEIVERS; r++)
		if (actor_send(run->sys, run->receivers[r], MSG_RECYCLE_STOP, NULL, 0) != 0)
			atomic_fetch_add(&run->send_errors, 1);
	return NULL;
}

START_TEST(recycled_message_blocks_keep_every_payload_intact)
{
	struct recycle_run run = {.sys = system_new(2),
	                          .per_sender = test_param(1, "RECYCLE_MESSAGES", 40000)};
	atomic_init(&run.send_errors, 0);
	static struct recycle_receiver recv[RECYCLE_RECEIVERS];
	static struct recycle_collector coll;
	memset(recv, 0, sizeof(recv));
	memset(&coll, 0, sizeof(coll));
	/* The collector on worker 1, the receivers on worker 0: both hops cross threads. */
	actor_spawn_opts_t stay = {.stay = 1};
	actor_ref_t collector = spawn_on(run.sys, 1, recycle_collector_fn, &coll);
	for (unsigned r = 0; r < RECYCLE_RECEIVERS; r++) {
		recv[r].index = r;
		recv[r].collector = collector;
		stay.placement = ACTOR_PLACE_FIXED;
		stay.worker = 0;
		run.receivers[r] = spawn_ok(run.sys, &stay, recycle_receiver_fn, &recv[r]);
	}
	pthread_t driver;
	ck_assert_int_eq(pthread_create(&driver, NULL, recycle_driver_main, &run), 0);
	system_run_to_end(run.sys, TEST_WATCHDOG_STRESS, "recycled blocks");
	pthread_join(driver, NULL);

	uint64_t per_receiver = RECYCLE_WAVES * RECYCLE_SENDERS * run.per_sender;
	assert_atomic_eq(run.send_errors, 0);
	for (unsigned r = 0; r < RECYCLE_RECEIVERS; r++) {
		ck_assert_int_eq(recv[r].relay_rc, 0);
		ck_assert_uint_eq(recv[r].check.bad, 0);
		ck_assert_uint_eq(recv[r].check.out_of_order, 0);
		ck_assert_uint_eq(recv[r].check.got, per_receiver);
	}
	ck_assert_uint_eq(coll.check.bad, 0);
	ck_assert_uint_eq(coll.check.out_of_order, 0);
	ck_assert_uint_eq(coll.check.got, RECYCLE_RECEIVERS * per_receiver);
	actor_stats_t st = stats_of(run.sys);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(run.sys);
}
END_TEST

static Suite *messages_suite(void)
{
	Suite *s = suite_create("messages");
	TCase *tc = tcase_new("copying", TEST_TIMEOUT);
	tcase_add_test(tc, actor_receives_a_copy_of_the_sent_bytes);
	tcase_add_test(tc, empty_message_carries_only_its_type);
	tcase_add_test(tc, every_payload_length_arrives_byte_for_byte);
	suite_add_tcase(s, tc);

	tc = tcase_new("zero copy", TEST_TIMEOUT);
	tcase_add_test(tc, zero_copy_message_arrives_at_the_address_sent);
	tcase_add_test(tc, behaviour_forwards_its_message_without_copying);
	tcase_add_test(tc, forwarded_message_is_not_touched_after_the_behaviour_returns);
	tcase_add_test(tc, failed_zero_copy_send_leaves_the_message_with_the_caller);
	tcase_add_test(tc, library_messages_can_be_forwarded_and_arrive_as_they_were);
	tcase_add_test(tc, a_forwarded_library_message_left_undelivered_is_a_dead_letter_of_its_type);
	tcase_add_test(tc, kept_message_outlives_the_behaviour_call);
	suite_add_tcase(s, tc);

	tc = tcase_new("recycled blocks", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, recycled_message_blocks_keep_every_payload_intact);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(messages_suite)
