/* test_lifecycle.c: an actor's life through the public API: become, exit, stop, monitors,
 * destroy callbacks, dead letters, self and sender, actor_info, and the per-sender order promise.
 * Sending, forwarding and keeping messages: test_messages.c.
 */
#include "common.h"

#define ORDER_MESSAGES_DEFAULT 20000 /* per sender; 6 senders */

/* ---------------------------------------------------------------------------------------------
 * become, exit, stop, monitors, destroy
 */

struct log_state {
	unsigned n;
	int log[16];
	int become_rc[16];
};

static void second_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg);

static void first_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct log_state *l = state;
	(void)msg;
	l->log[l->n++] = 1;
	if (l->n == 4) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	l->become_rc[l->n - 1] = actor_become(ctx, second_behavior);
}

static void second_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct log_state *l = state;
	(void)msg;
	l->log[l->n++] = 2;
	if (l->n == 3)
		l->become_rc[l->n - 1] = actor_become(ctx, first_behavior);
	else if (l->n > 4)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(become_switches_the_behaviour_from_the_next_message)
{
	actor_system_t *sys = system_new(1);
	struct log_state l = {0};
	actor_ref_t a = spawn_ok(sys, NULL, first_behavior, &l);
	for (int i = 0; i < 4; i++)
		send_ok(sys, a, 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "become");

	ck_assert_uint_eq(l.n, 4);
	ck_assert_int_eq(l.log[0], 1); /* becomes second: the current call stays in first */
	ck_assert_int_eq(l.log[1], 2);
	ck_assert_int_eq(l.log[2], 2); /* becomes first */
	ck_assert_int_eq(l.log[3], 1);
	ck_assert_int_eq(l.become_rc[0], 0);
	ck_assert_int_eq(l.become_rc[2], 0);
	actor_system_free(sys);
}
END_TEST

struct watcher {
	unsigned downs, others;
	actor_down_t down;
	uint32_t down_size;
};

static void watcher_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct watcher *w = state;
	if (msg->type != ACTOR_MSG_DOWN) {
		w->others++;
		return;
	}
	w->downs++;
	w->down_size = msg->size;
	if (msg->size == sizeof(actor_down_t))
		memcpy(&w->down, actor_msg_data(msg), sizeof(actor_down_t));
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Exits with the reason its message carries. */
static void exit_with_reason(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	actor_exit(ctx, (int)(int64_t)msg_u64(msg));
}

START_TEST(exit_reason_reaches_the_monitor)
{
	actor_system_t *sys = system_new(2);
	struct watcher w = {0};
	actor_ref_t watcher = spawn_on(sys, 0, watcher_behavior, &w);
	actor_ref_t target = spawn_on(sys, 1, exit_with_reason, NULL);

	ck_assert_int_eq(actor_monitor(sys, watcher, target), 0);
	send_u64(sys, target, 1, (uint64_t)(int64_t)4242);
	system_run_to_end(sys, TEST_WATCHDOG, "monitor");

	ck_assert_uint_eq(w.downs, 1);
	ck_assert_uint_eq(w.others, 0);
	ck_assert_uint_eq(w.down_size, sizeof(actor_down_t));
	ck_assert(actor_ref_eq(w.down.actor, target));
	ck_assert_int_eq(w.down.reason, 4242);
	ck_assert_uint_eq(stats_of(sys).dead_letters, 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(negative_user_exit_reason_reaches_the_monitor)
{
	actor_system_t *sys = system_new(2);
	struct watcher w = {0};
	actor_ref_t watcher = spawn_on(sys, 1, watcher_behavior, &w);
	actor_ref_t target = spawn_on(sys, 1, exit_with_reason, NULL);

	ck_assert_int_eq(actor_monitor(sys, watcher, target), 0);
	send_u64(sys, target, 1, (uint64_t)(int64_t)-77);
	system_run_to_end(sys, TEST_WATCHDOG, "monitor");
	ck_assert_uint_eq(w.downs, 1);
	ck_assert(actor_ref_eq(w.down.actor, target));
	ck_assert_int_eq(w.down.reason, -77);
	actor_system_free(sys);
}
END_TEST

START_TEST(monitor_of_a_stopped_actor_reports_noproc_at_once)
{
	actor_system_t *sys = system_new(2);
	struct watcher w = {0};
	actor_ref_t target = spawn_on(sys, 0, exit_with_reason, NULL);
	send_u64(sys, target, 1, 5);
	wait_stopped(sys, target);
	actor_ref_t watcher = spawn_on(sys, 1, watcher_behavior, &w);

	ck_assert_int_eq(actor_monitor(sys, watcher, target), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "monitor of a stopped actor");
	ck_assert_uint_eq(w.downs, 1);
	ck_assert(actor_ref_eq(w.down.actor, target));
	ck_assert_int_eq(w.down.reason, ACTOR_REASON_NOPROC);
	actor_system_free(sys);
}
END_TEST

START_TEST(monitor_by_a_stopped_watcher_fails_with_esrch)
{
	actor_system_t *sys = system_new(2);
	actor_ref_t gone = spawn_ok(sys, NULL, exit_with_reason, NULL);
	actor_ref_t alive = spawn_ok(sys, NULL, exit_with_reason, NULL);
	send_u64(sys, gone, 1, 0);
	wait_stopped(sys, gone);

	ck_assert_int_eq(actor_monitor(sys, gone, alive), -ESRCH);
	send_u64(sys, alive, 1, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "monitor by a stopped watcher");
	/* The failed monitor sent nothing. */
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.dead_letters, 0);
	ck_assert_uint_eq(st.delivered, 2);
	actor_system_free(sys);
}
END_TEST

struct stoppable {
	atomic_int gate;
	unsigned calls;
	bool gate_timed_out;
	atomic_int destroyed;
	void *destroy_arg;
	pthread_t behavior_thread, destroy_thread;
};

/* Holds its worker at the gate on the first message, then counts. */
static void gated_counter(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct stoppable *s = state;
	(void)ctx;
	(void)msg;
	if (s->calls++ == 0 && !gate_wait(&s->gate))
		s->gate_timed_out = true;
	s->behavior_thread = pthread_self();
}

static void stoppable_destroy(void *state)
{
	struct stoppable *s = state;
	s->destroy_arg = state;
	s->destroy_thread = pthread_self();
	atomic_fetch_add(&s->destroyed, 1);
}

START_TEST(stop_takes_effect_after_the_queued_messages)
{
	actor_system_t *sys = system_new(2);
	struct watcher w = {0};
	struct stoppable s = {0};
	actor_spawn_opts_t opts = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 1, .destroy = stoppable_destroy};
	actor_ref_t target = spawn_ok(sys, &opts, gated_counter, &s);
	actor_ref_t watcher = spawn_on(sys, 0, watcher_behavior, &w);
	ck_assert_int_eq(actor_monitor(sys, watcher, target), 0);

	for (int i = 0; i < 4; i++)
		send_ok(sys, target, 1, NULL, 0);
	ck_assert_int_eq(actor_stop(sys, target), 0);
	gate_open(&s.gate);
	system_run_to_end(sys, TEST_WATCHDOG, "actor_stop");

	ck_assert(!s.gate_timed_out);
	ck_assert_uint_eq(s.calls, 4);
	ck_assert_uint_eq(w.downs, 1);
	ck_assert(actor_ref_eq(w.down.actor, target));
	ck_assert_int_eq(w.down.reason, ACTOR_REASON_KILLED);
	assert_atomic_eq(s.destroyed, 1);
	ck_assert_ptr_eq(s.destroy_arg, &s);
	ck_assert_msg(pthread_equal(s.destroy_thread, s.behavior_thread),
	              "destroy ran off the home worker");
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.spawned, 2);
	ck_assert_uint_eq(st.stopped, 2);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(sys);
	assert_atomic_eq(s.destroyed, 1); /* not again at free */
}
END_TEST

START_TEST(stopped_actor_refuses_sends_stops_and_info)
{
	actor_system_t *sys = system_new(2);
	struct stoppable s = {0};
	gate_open(&s.gate);
	actor_spawn_opts_t opts = {.destroy = stoppable_destroy};
	actor_ref_t a = spawn_ok(sys, &opts, gated_counter, &s);
	ck_assert_int_eq(actor_stop(sys, a), 0);
	wait_stopped(sys, a);

	actor_info_t info;
	ck_assert_int_eq(actor_send(sys, a, 1, "x", 1), -ESRCH);
	ck_assert_int_eq(actor_stop(sys, a), -ESRCH);
	ck_assert_int_eq(actor_info(sys, a, &info), -ESRCH);
	system_run_to_end(sys, TEST_WATCHDOG, "a stopped actor");
	ck_assert_uint_eq(s.calls, 0);
	assert_atomic_eq(s.destroyed, 1);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, st.delivered + st.dead_letters);
	ck_assert_uint_eq(st.dead_letters, 0);
	ck_assert_uint_eq(st.stopped, 1);
	actor_system_free(sys);
	assert_atomic_eq(s.destroyed, 1);
}
END_TEST

static void count_then_exit(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	gated_counter(ctx, state, msg);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(destroy_runs_once_on_the_home_worker_after_exit)
{
	actor_system_t *sys = system_new(2);
	struct stoppable s = {0};
	gate_open(&s.gate);
	actor_spawn_opts_t opts = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 1, .destroy = stoppable_destroy};
	actor_ref_t a = spawn_ok(sys, &opts, count_then_exit, &s);
	send_ok(sys, a, 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "exit with destroy");

	ck_assert_uint_eq(s.calls, 1);
	assert_atomic_eq(s.destroyed, 1);
	ck_assert_ptr_eq(s.destroy_arg, &s);
	ck_assert(pthread_equal(s.destroy_thread, s.behavior_thread));
	actor_system_free(sys);
	assert_atomic_eq(s.destroyed, 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Dead letters after exit
 */

struct dead_log {
	atomic_uint count;
	uint64_t ids[16];
	actor_ref_t to[16];
	uint32_t types[16];
};

static void log_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	struct dead_log *d = arg;
	unsigned i = atomic_fetch_add(&d->count, 1);
	if (i < 16) {
		d->to[i] = to;
		d->types[i] = msg->type;
		d->ids[i] = UINT64_MAX;
		if (msg->size == sizeof(uint64_t))
			memcpy(&d->ids[i], msg + 1, sizeof(uint64_t));
	}
}

START_TEST(exit_dead_letters_the_messages_still_queued)
{
	struct dead_log d = {0};
	actor_config_t cfg = {.workers = 2, .dead_letter = log_dead_letter, .dead_letter_arg = &d};
	actor_system_t *sys = system_new_cfg(&cfg);
	struct stoppable s = {0};
	actor_ref_t a = spawn_ok(sys, NULL, count_then_exit, &s);
	for (uint64_t id = 0; id < 5; id++)
		send_u64(sys, a, 100 + (uint32_t)id, id);
	gate_open(&s.gate); /* exits on message 0, with 1..4 queued */
	system_run_to_end(sys, TEST_WATCHDOG, "exit with queued messages");

	ck_assert(!s.gate_timed_out);
	ck_assert_uint_eq(s.calls, 1);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, 5);
	ck_assert_uint_eq(st.delivered, 1);
	ck_assert_uint_eq(st.dead_letters, 4);
	actor_system_free(sys);
	assert_atomic_eq(d.count, 4);
	unsigned seen = 0;
	for (unsigned i = 0; i < 4; i++) {
		ck_assert(actor_ref_eq(d.to[i], a));
		ck_assert_msg(d.ids[i] >= 1 && d.ids[i] <= 4, "dead letter %" PRIu64, d.ids[i]);
		ck_assert_uint_eq(d.types[i], 100 + d.ids[i]);
		seen |= 1u << d.ids[i];
	}
	ck_assert_uint_eq(seen, 0x1e); /* messages 1 to 4, each once */
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Identity: self, sender, spawning from a behaviour
 */

struct pair_state {
	actor_ref_t peer;
	actor_ref_t self_seen, first_sender, first_ctx_sender, reply_sender, reply_ctx_sender;
	uint64_t reply;
	int send_rc;
	unsigned calls;
};

/* A: on "go" asks B; on B's answer records who answered and stops. */
static void asker(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pair_state *p = state;
	p->calls++;
	if (msg->type == 1) {
		p->self_seen = actor_self(ctx);
		p->first_sender = msg->sender;
		p->first_ctx_sender = actor_sender(ctx);
		p->send_rc = actor_send(actor_ctx_system(ctx), p->peer, 2, NULL, 0);
		return;
	}
	p->reply_sender = msg->sender;
	p->reply_ctx_sender = actor_sender(ctx);
	p->reply = msg_u64(msg);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* B: answers the sender of its message with 99 and stops. */
static void answerer(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pair_state *p = state;
	uint64_t v = 99;
	p->calls++;
	p->self_seen = actor_self(ctx);
	p->first_sender = msg->sender;
	p->first_ctx_sender = actor_sender(ctx);
	p->send_rc = actor_send(actor_ctx_system(ctx), actor_sender(ctx), 3, &v, sizeof(v));
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(self_and_sender_name_the_right_actors)
{
	actor_system_t *sys = system_new(2);
	struct pair_state pa = {0}, pb = {0};
	actor_ref_t b = spawn_on(sys, 1, answerer, &pb);
	pa.peer = b;
	actor_ref_t a = spawn_on(sys, 0, asker, &pa);
	ck_assert(!actor_ref_eq(a, b));
	send_ok(sys, a, 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "ask and answer");

	ck_assert_uint_eq(pa.calls, 2);
	ck_assert_uint_eq(pb.calls, 1);
	ck_assert(actor_ref_eq(pa.self_seen, a));
	ck_assert(actor_ref_eq(pb.self_seen, b));
	ck_assert(actor_ref_is_none(pa.first_sender));
	ck_assert(actor_ref_is_none(pa.first_ctx_sender));
	ck_assert(actor_ref_eq(pb.first_sender, a));
	ck_assert(actor_ref_eq(pb.first_ctx_sender, a));
	ck_assert(actor_ref_eq(pa.reply_sender, b));
	ck_assert(actor_ref_eq(pa.reply_ctx_sender, b));
	ck_assert_uint_eq(pa.reply, 99);
	ck_assert_int_eq(pa.send_rc, 0);
	ck_assert_int_eq(pb.send_rc, 0);
	actor_system_free(sys);
}
END_TEST

struct child_state {
	unsigned calls;
	uint64_t value;
	actor_ref_t self, sender;
	actor_system_t *sys;
};

struct parent_state {
	struct child_state *child_state;
	actor_ref_t child;
	int spawn_rc, send_rc;
	actor_ref_t self;
};

static void child_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct child_state *c = state;
	c->calls++;
	c->value = msg_u64(msg);
	c->self = actor_self(ctx);
	c->sender = actor_sender(ctx);
	c->sys = actor_ctx_system(ctx);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void parent_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct parent_state *p = state;
	uint64_t v = 77;
	(void)msg;
	p->self = actor_self(ctx);
	p->spawn_rc =
	    actor_spawn(actor_ctx_system(ctx), NULL, child_behavior, p->child_state, &p->child);
	if (p->spawn_rc == 0)
		p->send_rc = actor_send(actor_ctx_system(ctx), p->child, 1, &v, sizeof(v));
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(behaviour_spawns_a_child_that_runs)
{
	actor_system_t *sys = system_new(2);
	struct child_state c = {0};
	struct parent_state p = {.child_state = &c};
	actor_ref_t parent = spawn_ok(sys, NULL, parent_behavior, &p);
	send_ok(sys, parent, 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "parent and child");

	ck_assert_int_eq(p.spawn_rc, 0);
	ck_assert_int_eq(p.send_rc, 0);
	ck_assert(!actor_ref_is_none(p.child));
	ck_assert(!actor_ref_eq(p.child, parent));
	ck_assert_uint_eq(c.calls, 1);
	ck_assert_uint_eq(c.value, 77);
	ck_assert(actor_ref_eq(c.self, p.child));
	ck_assert(actor_ref_eq(c.sender, parent));
	ck_assert_ptr_eq(c.sys, sys);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.spawned, 2);
	ck_assert_uint_eq(st.stopped, 2);
	ck_assert_uint_eq(st.sent, 2);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * actor_info
 */

struct where {
	unsigned ctx_worker;
	unsigned calls;
};

static void where_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct where *w = state;
	(void)msg;
	w->calls++;
	w->ctx_worker = actor_ctx_worker(ctx);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(info_reports_name_and_worker_until_stop)
{
	static const char name[] = "alice";
	actor_system_t *sys = system_new(2);
	struct where w = {0};
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .worker = 1, .name = name};
	actor_ref_t a = spawn_ok(sys, &opts, where_behavior, &w);
	actor_ref_t anon = spawn_on(sys, 0, exit_with_reason, NULL);
	actor_info_t info = {0};

	ck_assert_int_eq(actor_info(sys, a, &info), 0);
	ck_assert_ptr_eq(info.name, name); /* not copied */
	ck_assert_uint_eq(info.worker, 1);
	ck_assert_int_eq(actor_info(sys, anon, &info), 0);
	ck_assert_ptr_null(info.name);
	ck_assert_uint_eq(info.worker, 0);

	send_ok(sys, a, 1, NULL, 0);
	send_u64(sys, anon, 1, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "info");
	ck_assert_uint_eq(w.calls, 1);
	ck_assert_uint_eq(w.ctx_worker, 1);
	ck_assert_int_eq(actor_info(sys, a, &info), -ESRCH);
	ck_assert_int_eq(actor_info(sys, anon, &info), -ESRCH);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Per-sender order: four sender actors and two outside threads send numbered messages to one
 * receiver, which checks every sender's sequence.
 */

#define ORDER_ACTORS 4
#define ORDER_THREADS 2
#define ORDER_SENDERS (ORDER_ACTORS + ORDER_THREADS)

struct seq_msg {
	uint32_t from;
	uint32_t pad;
	uint64_t seq;
};

struct order {
	actor_system_t *sys;
	actor_ref_t receiver;
	actor_ref_t senders[ORDER_ACTORS];
	uint64_t per_sender;
	/* Receiver's. */
	uint64_t next[ORDER_SENDERS];
	uint64_t total, out_of_order, wrong_sender, malformed;
	/* Senders'. */
	atomic_ulong send_failures;
};

static void order_receiver(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct order *o = state;
	struct seq_msg m;
	if (msg->size != sizeof(m)) {
		o->malformed++;
		return;
	}
	memcpy(&m, actor_msg_data(msg), sizeof(m));
	if (m.from >= ORDER_SENDERS) {
		o->malformed++;
		return;
	}
	actor_ref_t expect = m.from < ORDER_ACTORS ? o->senders[m.from] : ACTOR_REF_NONE;
	if (!actor_ref_eq(msg->sender, expect))
		o->wrong_sender++;
	if (m.seq != o->next[m.from])
		o->out_of_order++;
	o->next[m.from] = m.seq + 1;
	if (++o->total == (uint64_t)ORDER_SENDERS * o->per_sender)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void order_send_all(struct order *o, uint32_t from)
{
	for (uint64_t i = 0; i < o->per_sender; i++) {
		struct seq_msg m = {.from = from, .seq = i};
		if (actor_send(o->sys, o->receiver, 1, &m, sizeof(m)) != 0)
			atomic_fetch_add(&o->send_failures, 1);
	}
}

static void order_sender(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	order_send_all(state, (uint32_t)msg_u64(msg));
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

struct order_thread {
	struct order *o;
	uint32_t from;
};

static void *order_thread_main(void *arg)
{
	struct order_thread *t = arg;
	order_send_all(t->o, t->from);
	return NULL;
}

START_TEST(messages_from_each_sender_arrive_in_order)
{
	actor_system_t *sys = system_new(2);
	struct order o = {.sys = sys,
	                  .per_sender = test_param(0, "ORDER_MESSAGES", ORDER_MESSAGES_DEFAULT)};
	atomic_init(&o.send_failures, 0);
	o.receiver = spawn_on(sys, 0, order_receiver, &o);
	for (int i = 0; i < ORDER_ACTORS; i++)
		o.senders[i] = spawn_ok(sys, NULL, order_sender, &o);
	for (uint64_t i = 0; i < ORDER_ACTORS; i++)
		send_u64(sys, o.senders[i], 1, i);
	pthread_t threads[ORDER_THREADS];
	struct order_thread args[ORDER_THREADS];
	for (int i = 0; i < ORDER_THREADS; i++) {
		args[i] = (struct order_thread){.o = &o, .from = ORDER_ACTORS + i};
		ck_assert_int_eq(pthread_create(&threads[i], NULL, order_thread_main, &args[i]), 0);
	}
	system_run_to_end(sys, TEST_WATCHDOG, "per-sender order");
	for (int i = 0; i < ORDER_THREADS; i++)
		pthread_join(threads[i], NULL);

	assert_atomic_eq(o.send_failures, 0);
	ck_assert_uint_eq(o.malformed, 0);
	ck_assert_msg(o.out_of_order == 0, "%" PRIu64 " messages out of order", o.out_of_order);
	ck_assert_msg(o.wrong_sender == 0, "%" PRIu64 " messages with the wrong sender",
	              o.wrong_sender);
	ck_assert_uint_eq(o.total, ORDER_SENDERS * o.per_sender);
	for (int i = 0; i < ORDER_SENDERS; i++)
		ck_assert_uint_eq(o.next[i], o.per_sender);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.delivered, ORDER_SENDERS * o.per_sender + ORDER_ACTORS);
	ck_assert_uint_eq(st.sent, st.delivered);
	actor_system_free(sys);
}
END_TEST

/* The start hook runs first, on the home worker, as a behaviour: it sets a timer (which only a
 * behaviour may), spawns a child, and sends itself a message; messages sent right after the
 * spawn come after it. 1,000 actors, from outside and from a behaviour. */
#define STARTERS 1000

struct starter {
	_Atomic unsigned started_on; /* 1 + the worker its start ran on */
	atomic_int order_ok;         /* the first message came after the start */
	atomic_int timer_rc;
	atomic_int timer_fired, self_msg, child_ran, spawner_msg;
	unsigned home;
	bool started;
	actor_ref_t self;
};

static void child_note_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	struct starter *st = state;
	actor_send(actor_ctx_system(ctx), st->self, 4, NULL, 0); /* tells its parent it ran */
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void starter_start(actor_ctx_t *ctx, void *state)
{
	struct starter *st = state;
	st->started = true;
	st->self = actor_self(ctx);
	atomic_store(&st->started_on, actor_ctx_worker(ctx) + 1);
	actor_timer_t t;
	atomic_store(&st->timer_rc, actor_timer_start(ctx, actor_self(ctx), 1000u, 0, 0, &t));
	actor_ref_t child;
	actor_system_t *sys = actor_ctx_system(ctx);
	if (actor_spawn(sys, NULL, child_note_fn, st, &child) == 0)
		actor_send(sys, child, 1, NULL, 0);
	actor_send(sys, actor_self(ctx), 2, NULL, 0);
	/* Not inside a message's call: nothing to keep or to answer. */
	if (actor_msg_keep(ctx) != -EINVAL || !actor_ref_is_none(actor_sender(ctx)))
		atomic_store(&st->order_ok, -1);
}

static void starter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct starter *st = state;
	if (!st->started)
		atomic_store(&st->order_ok, -1);
	else if (atomic_load(&st->order_ok) == 0)
		atomic_store(&st->order_ok, 1);
	if (msg->type == ACTOR_MSG_TIMER)
		atomic_store(&st->timer_fired, 1);
	else if (msg->type == 2)
		atomic_store(&st->self_msg, 1);
	else if (msg->type == 3)
		atomic_store(&st->spawner_msg, 1);
	else if (msg->type == 4)
		atomic_store(&st->child_ran, 1);
	if (atomic_load(&st->timer_fired) && atomic_load(&st->self_msg) &&
	    atomic_load(&st->child_ran) && atomic_load(&st->spawner_msg))
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static struct starter starters[STARTERS];
static atomic_int spawn_failures;

/* Spawns starter i and sends it a message at once, which must wait behind its start. */
static void spawn_starter(actor_system_t *sys, unsigned i)
{
	actor_spawn_opts_t o = {.start = starter_start, .placement = ACTOR_PLACE_FIXED,
	                        .worker = i % actor_system_workers(sys)};
	starters[i].home = o.worker;
	actor_ref_t r;
	if (actor_spawn(sys, &o, starter_fn, &starters[i], &r) != 0 ||
	    actor_send(sys, r, 3, NULL, 0) != 0)
		atomic_fetch_add(&spawn_failures, 1);
}

static void spawner_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	(void)msg;
	for (unsigned i = STARTERS / 2; i < STARTERS; i++)
		spawn_starter(actor_ctx_system(ctx), i);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_start_hook_runs_first_on_the_home_worker_as_a_behaviour)
{
	memset(starters, 0, sizeof(starters));
	actor_system_t *sys = system_new(2);
	for (unsigned i = 0; i < STARTERS / 2; i++)
		spawn_starter(sys, i);
	send_ok(sys, spawn_ok(sys, NULL, spawner_fn, NULL), 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "start hooks");
	actor_system_free(sys);
	ck_assert_int_eq(atomic_load(&spawn_failures), 0);
	for (unsigned i = 0; i < STARTERS; i++) {
		struct starter *st = &starters[i];
		ck_assert_msg(atomic_load(&st->started_on) == st->home + 1,
		              "actor %u: start ran on %u, home %u", i, atomic_load(&st->started_on),
		              st->home + 1);
		ck_assert_msg(atomic_load(&st->order_ok) == 1, "actor %u: a message before the start",
		              i);
		ck_assert_int_eq(atomic_load(&st->timer_rc), 0);
		ck_assert(atomic_load(&st->timer_fired) && atomic_load(&st->self_msg) &&
		          atomic_load(&st->child_ran));
	}
}
END_TEST

/* An actor stopped before its start hook ran never runs it, and nothing leaks. */
static atomic_int never_started;

static void never_start(actor_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	atomic_fetch_add(&never_started, 1);
}

static atomic_int holder_running;

static void blocked_first_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)msg;
	atomic_store(&holder_running, 1);
	gate_wait(state);
}

START_TEST(an_actor_killed_before_its_start_never_runs_it)
{
	actor_system_t *sys = system_new(1);
	static atomic_int gate;
	/* The worker is held by a first actor while the second is spawned and shut down. The
	 * second is spawned only once the first runs: had both reached the worker in one loop turn
	 * begun before the shutdown, that turn would run the second's start after the first. */
	actor_ref_t holder = spawn_ok(sys, NULL, blocked_first_fn, &gate);
	send_ok(sys, holder, 1, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&holder_running), TEST_WATCHDOG));
	actor_spawn_opts_t o = {.start = never_start};
	actor_ref_t r;
	ck_assert_int_eq(actor_spawn(sys, &o, starter_fn, &starters[0], &r), 0);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	gate_open(&gate);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown before a start");
	actor_system_free(sys);
	ck_assert_int_eq(atomic_load(&never_started), 0);
}
END_TEST

static Suite *lifecycle_suite(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_new("life and death", TEST_TIMEOUT);
	tcase_add_test(tc, become_switches_the_behaviour_from_the_next_message);
	tcase_add_test(tc, exit_reason_reaches_the_monitor);
	tcase_add_test(tc, negative_user_exit_reason_reaches_the_monitor);
	tcase_add_test(tc, monitor_of_a_stopped_actor_reports_noproc_at_once);
	tcase_add_test(tc, monitor_by_a_stopped_watcher_fails_with_esrch);
	tcase_add_test(tc, stop_takes_effect_after_the_queued_messages);
	tcase_add_test(tc, stopped_actor_refuses_sends_stops_and_info);
	tcase_add_test(tc, destroy_runs_once_on_the_home_worker_after_exit);
	tcase_add_test(tc, exit_dead_letters_the_messages_still_queued);
	suite_add_tcase(s, tc);

	tc = tcase_new("identity", TEST_TIMEOUT);
	tcase_add_test(tc, self_and_sender_name_the_right_actors);
	tcase_add_test(tc, behaviour_spawns_a_child_that_runs);
	tcase_add_test(tc, info_reports_name_and_worker_until_stop);
	tcase_add_test(tc, a_start_hook_runs_first_on_the_home_worker_as_a_behaviour);
	tcase_add_test(tc, an_actor_killed_before_its_start_never_runs_it);
	suite_add_tcase(s, tc);

	tc = tcase_new("order", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, messages_from_each_sender_arrive_in_order);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(lifecycle_suite)
