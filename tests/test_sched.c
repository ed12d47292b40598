/* test_sched.c: the workers: fairness between actors on one worker, a million cross-worker
 * round trips without a lost wake-up, parking when idle and waking on a message, and exact
 * delivery with more workers than cores.
 *
 * Stress parameters (environment): PINGPONG_ROUNDS, PINGPONG_PARKED_ROUNDS, CROWD_MESSAGES.
 */
#include "common.h"

#define PINGPONG_ROUNDS_DEFAULT 1000000      /* about 2-5 s on a 2-core VM */
#define PINGPONG_PARKED_ROUNDS_DEFAULT 20000 /* every hop parks and wakes: ~50 µs each */
#define CROWD_MESSAGES_DEFAULT 5000          /* per sender per receiver */
#define FLOOD_PREFILL 10000
#define NEIGHBOUR_MESSAGES 100
#define TEST_TIMEOUT_ROUND_TRIPS 600 /* see sched_suite */

enum { MSG_GO = 1, MSG_PING, MSG_PONG, MSG_STOP_PLAYING, MSG_DATA };

static uint64_t worker_stat(actor_system_t *sys, unsigned w, size_t field)
{
	actor_worker_stats_t st;
	ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
	return *(uint64_t *)((char *)&st + field);
}

#define WSTAT(sys, w, name) worker_stat(sys, w, offsetof(actor_worker_stats_t, name))

/* ---------------------------------------------------------------------------------------------
 * Fairness: a flooding actor and a neighbour on one worker
 */

struct flood {
	actor_system_t *sys;
	atomic_ullong processed;
	atomic_int stop;
	unsigned send_failures;
};

/* Sends itself a message for each one it gets, so its mailbox never runs dry. */
static void flooder(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct flood *f = state;
	(void)msg;
	atomic_fetch_add_explicit(&f->processed, 1, memory_order_relaxed);
	if (atomic_load_explicit(&f->stop, memory_order_relaxed)) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (actor_send(f->sys, actor_self(ctx), MSG_DATA, NULL, 0) != 0)
		f->send_failures++;
}

struct neighbour {
	atomic_uint count;
	unsigned expected;
};

static void neighbour_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct neighbour *n = state;
	(void)msg;
	if (atomic_fetch_add(&n->count, 1) + 1 == n->expected)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(flooding_actor_does_not_starve_its_neighbour)
{
	actor_system_t *sys = system_new(1);
	struct flood f = {.sys = sys};
	struct neighbour n = {.expected = NEIGHBOUR_MESSAGES};
	actor_ref_t flood = spawn_on(sys, 0, flooder, &f);
	actor_ref_t neigh = spawn_on(sys, 0, neighbour_behavior, &n);

	for (int i = 0; i < FLOOD_PREFILL; i++)
		send_ok(sys, flood, MSG_DATA, NULL, 0);
	assert_eventually(atomic_load(&f.processed) > FLOOD_PREFILL, 10);
	uint64_t flood_before = atomic_load(&f.processed);
	/* One message at a time, each answered while the flood goes on. A fair worker serves
	 * each within a batch of the flood's messages, so all of them take milliseconds. */
	double deadline = now_sec() + 10 * test_scale();
	for (unsigned i = 0; i < NEIGHBOUR_MESSAGES; i++) {
		send_ok(sys, neigh, MSG_DATA, NULL, 0);
		bool served = WAIT_UNTIL_DEADLINE(atomic_load(&n.count) == i + 1, deadline);
		ck_assert_msg(served, "neighbour starved: %u of %u messages processed in 10 s", i,
		              NEIGHBOUR_MESSAGES);
	}
	uint64_t flood_after = atomic_load(&f.processed);
	actor_info_t info;
	ck_assert_int_eq(actor_info(sys, flood, &info), 0); /* still flooding */
	ck_assert_msg(flood_after > flood_before, "the flood stopped while the neighbour ran");

	atomic_store(&f.stop, 1);
	system_run_to_end(sys, TEST_WATCHDOG, "flood");
	assert_atomic_eq(n.count, NEIGHBOUR_MESSAGES);
	ck_assert_uint_eq(f.send_failures, 0);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.sent, st.delivered + st.dead_letters);
	ck_assert_uint_eq(st.delivered, atomic_load(&f.processed) + NEIGHBOUR_MESSAGES);
	actor_system_free(sys);
}
END_TEST

/* Two actors with full mailboxes share one worker whose batch is 4: neither may run more
 * than 4 messages in a row while the other has messages waiting. */
#define BATCH 4
#define BATCH_MESSAGES 40

struct turns {
	atomic_int gate, at_gate;
	char log[2 * BATCH_MESSAGES];
	unsigned len;
};

struct turn_actor {
	struct turns *t;
	char id;
	unsigned count;
};

static void gatekeeper(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct turns *t = state;
	(void)msg;
	atomic_store(&t->at_gate, 1);
	gate_wait(&t->gate);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void turn_logger(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct turn_actor *a = state;
	(void)msg;
	if (a->t->len < sizeof(a->t->log))
		a->t->log[a->t->len++] = a->id;
	if (++a->count == BATCH_MESSAGES)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(worker_runs_an_actor_for_at_most_a_batch_per_turn)
{
	actor_config_t cfg = {.workers = 1, .batch = BATCH};
	actor_system_t *sys = system_new_cfg(&cfg);
	struct turns t = {0};
	struct turn_actor a = {.t = &t, .id = 'a'}, b = {.t = &t, .id = 'b'};
	actor_ref_t gate = spawn_on(sys, 0, gatekeeper, &t);
	actor_ref_t ra = spawn_on(sys, 0, turn_logger, &a);
	actor_ref_t rb = spawn_on(sys, 0, turn_logger, &b);

	/* Hold the only worker while both mailboxes fill. */
	send_ok(sys, gate, MSG_GO, NULL, 0);
	assert_eventually(atomic_load(&t.at_gate), 10);
	for (int i = 0; i < BATCH_MESSAGES; i++) {
		send_ok(sys, ra, MSG_DATA, NULL, 0);
		send_ok(sys, rb, MSG_DATA, NULL, 0);
	}
	gate_open(&t.gate);
	system_run_to_end(sys, TEST_WATCHDOG, "batch");

	ck_assert_uint_eq(t.len, 2 * BATCH_MESSAGES);
	unsigned seen_a = 0, seen_b = 0, run = 0, longest = 0;
	for (unsigned i = 0; i < t.len && seen_a < BATCH_MESSAGES && seen_b < BATCH_MESSAGES; i++) {
		run = (i > 0 && t.log[i] == t.log[i - 1]) ? run + 1 : 1;
		longest = run > longest ? run : longest;
		if (t.log[i] == 'a')
			seen_a++;
		else
			seen_b++;
	}
	ck_assert_msg(longest <= BATCH, "an actor ran %u messages in a row with batch %u: %.*s",
	              longest, BATCH, (int)t.len, t.log);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Ping-pong across workers
 */

struct player {
	actor_system_t *sys;
	actor_ref_t peer;
	uint64_t target, rounds;
	uint64_t errors, send_failures;
	unsigned worker;
	bool wrong_worker;
	atomic_ullong progress; /* for the watchdog's report */
};

static void play(actor_ctx_t *ctx, struct player *p, uint32_t type, uint64_t v)
{
	if (actor_send(p->sys, p->peer, type, &v, sizeof(v)) != 0)
		p->send_failures++;
	(void)ctx;
}

static void pinger(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct player *p = state;
	if (actor_ctx_worker(ctx) != p->worker)
		p->wrong_worker = true;
	if (msg->type == MSG_PONG) {
		if (msg_u64(msg) != p->rounds || !actor_ref_eq(msg->sender, p->peer))
			p->errors++;
		p->rounds++;
		atomic_store_explicit(&p->progress, p->rounds, memory_order_relaxed);
		if (p->rounds == p->target) {
			play(ctx, p, MSG_STOP_PLAYING, 0);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
			return;
		}
	}
	play(ctx, p, MSG_PING, p->rounds);
}

static void ponger(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct player *p = state;
	if (actor_ctx_worker(ctx) != p->worker)
		p->wrong_worker = true;
	if (msg->type == MSG_STOP_PLAYING) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg_u64(msg) != p->rounds || !actor_ref_eq(msg->sender, p->peer))
		p->errors++;
	p->rounds++;
	play(ctx, p, MSG_PONG, msg_u64(msg));
}

static void ping_pong(const actor_config_t *cfg, uint64_t rounds)
{
	actor_system_t *sys = system_new_cfg(cfg);
	struct player a = {.sys = sys, .target = rounds, .worker = 0};
	struct player b = {.sys = sys, .worker = 1};
	actor_ref_t rb = spawn_on(sys, 1, ponger, &b);
	actor_ref_t ra = spawn_on(sys, 0, pinger, &a);
	a.peer = rb;
	b.peer = ra;
	char what[96];
	snprintf(what, sizeof(what), "%" PRIu64 " ping-pong round trips", rounds);

	double t0 = now_sec();
	send_ok(sys, ra, MSG_GO, NULL, 0);
	struct watchdog wd;
	/* A lost wake-up stops the game; a busy machine only slows it. */
	watchdog_start_progress(&wd, sys, TEST_WATCHDOG, what, &a.progress);
	int rc = actor_system_run(sys);
	bool fired = watchdog_stop(&wd);
	double elapsed = now_sec() - t0;
	ck_assert_msg(!fired, "lost wake-up? %" PRIu64 " of %" PRIu64 " round trips done",
	              (uint64_t)atomic_load(&a.progress), rounds);
	ck_assert_int_eq(rc, 0);
	fprintf(stderr, "%s: %.2f s, %.2f us per round trip\n", what, elapsed,
	        elapsed * 1e6 / (double)rounds);

	ck_assert_uint_eq(a.rounds, rounds);
	ck_assert_uint_eq(b.rounds, rounds);
	ck_assert_uint_eq(a.errors, 0);
	ck_assert_uint_eq(b.errors, 0);
	ck_assert_uint_eq(a.send_failures + b.send_failures, 0);
	ck_assert(!a.wrong_worker && !b.wrong_worker);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.sent, 2 * rounds + 2); /* go, pings, pongs, stop */
	ck_assert_uint_eq(st.delivered, st.sent);
	ck_assert_uint_eq(WSTAT(sys, 0, processed), rounds + 1);
	ck_assert_uint_eq(WSTAT(sys, 1, processed), rounds + 1);
	actor_system_free(sys);
}

START_TEST(ping_pong_survives_a_million_round_trips_across_workers)
{
	actor_config_t cfg = {.workers = 2};
	ping_pong(&cfg, test_param(0, "PINGPONG_ROUNDS", PINGPONG_ROUNDS_DEFAULT));
}
END_TEST

START_TEST(ping_pong_never_loses_a_wakeup_when_workers_park_every_hop)
{
	actor_config_t cfg = {.workers = 2, .spin_us = -1};
	ping_pong(&cfg, test_param(0, "PINGPONG_PARKED_ROUNDS", PINGPONG_PARKED_ROUNDS_DEFAULT));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Parking
 */

struct waker {
	atomic_int calls;
	unsigned worker;
};

static void note_and_exit(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct waker *w = state;
	(void)msg;
	w->worker = actor_ctx_worker(ctx);
	atomic_fetch_add(&w->calls, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(idle_workers_park_and_a_message_wakes_them)
{
	actor_system_t *sys = system_new(2);
	struct waker w = {0};
	actor_ref_t a = spawn_on(sys, 1, note_and_exit, &w);

	bool parked = WAIT_UNTIL(WSTAT(sys, 0, parks) > 0 && WSTAT(sys, 1, parks) > 0, 5);
	ck_assert_msg(parked, "idle workers never parked");
	sleep_ms(20);
	double wall0 = now_sec(), cpu0 = cpu_sec();
	sleep_ms(200);
	double wall = now_sec() - wall0, cpu = cpu_sec() - cpu0;
	ck_assert_msg(cpu < 0.5 * wall, "idle system used %.0f ms of CPU in %.0f ms", cpu * 1e3,
	              wall * 1e3);

	uint64_t wakeups = WSTAT(sys, 1, wakeups), processed = WSTAT(sys, 1, processed);
	send_ok(sys, a, MSG_DATA, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&w.calls) == 1, 10), "the message did not wake it");
	ck_assert_uint_eq(w.worker, 1);
	ck_assert_uint_gt(WSTAT(sys, 1, wakeups), wakeups);
	ck_assert_uint_eq(WSTAT(sys, 1, processed), processed + 1);
	system_run_to_end(sys, TEST_WATCHDOG, "park and wake");
	assert_atomic_eq(w.calls, 1);
	actor_system_free(sys);
}
END_TEST

START_TEST(parked_system_stays_idle_until_spoken_to)
{
	actor_system_t *sys = system_new(2);
	struct waker w = {0};
	spawn_on(sys, 0, note_and_exit, &w);
	assert_eventually(WSTAT(sys, 0, parks) > 0 && WSTAT(sys, 1, parks) > 0, 5);
	sleep_ms(20);
	uint64_t parks0 = WSTAT(sys, 0, parks), parks1 = WSTAT(sys, 1, parks);
	sleep_ms(100);
	/* Nothing to do: a parked worker stays parked rather than waking up to poll. A few
	 * spurious returns are tolerated; a busy loop of park/unpark is not. */
	ck_assert_uint_le(WSTAT(sys, 0, parks) - parks0, 20);
	ck_assert_uint_le(WSTAT(sys, 1, parks) - parks1, 20);
	assert_atomic_eq(w.calls, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * More workers than cores
 */

struct crowd {
	actor_system_t *sys;
	unsigned senders, receivers;
	uint64_t per_pair;
	actor_ref_t *recv_refs;
	atomic_ullong send_failures;
};

struct crowd_receiver {
	struct crowd *c;
	uint64_t count;
};

static void crowd_sender(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct crowd *c = state;
	(void)msg;
	/* Interleave receivers so every mailbox sees several producers at once. */
	for (uint64_t i = 0; i < c->per_pair; i++)
		for (unsigned r = 0; r < c->receivers; r++)
			if (actor_send(c->sys, c->recv_refs[r], MSG_DATA, &i, sizeof(i)) != 0)
				atomic_fetch_add(&c->send_failures, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void crowd_receiver(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct crowd_receiver *r = state;
	(void)msg;
	if (++r->count == r->c->per_pair * r->c->senders)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(more_workers_than_cores_deliver_exact_counts)
{
	unsigned workers = 2 * test_cpus();
	if (workers < 4)
		workers = 4;
	actor_system_t *sys = system_new(workers);
	struct crowd c = {.sys = sys,
	                  .senders = workers,
	                  .receivers = 2 * workers,
	                  .per_pair = test_param(0, "CROWD_MESSAGES", CROWD_MESSAGES_DEFAULT)};
	atomic_init(&c.send_failures, 0);
	c.recv_refs = calloc(c.receivers, sizeof(actor_ref_t));
	struct crowd_receiver *rs = calloc(c.receivers, sizeof(*rs));
	actor_ref_t *senders = calloc(c.senders, sizeof(actor_ref_t));
	for (unsigned r = 0; r < c.receivers; r++) {
		rs[r].c = &c;
		c.recv_refs[r] = spawn_ok(sys, NULL, crowd_receiver, &rs[r]);
	}
	for (unsigned s = 0; s < c.senders; s++)
		senders[s] = spawn_ok(sys, NULL, crowd_sender, &c);
	for (unsigned s = 0; s < c.senders; s++)
		send_ok(sys, senders[s], MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG_STRESS, "more workers than cores");

	uint64_t per_receiver = c.per_pair * c.senders;
	uint64_t total = per_receiver * c.receivers + c.senders;
	assert_atomic_eq(c.send_failures, 0);
	for (unsigned r = 0; r < c.receivers; r++)
		ck_assert_uint_eq(rs[r].count, per_receiver);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, c.senders + c.receivers);
	ck_assert_uint_eq(st.stopped, c.senders + c.receivers);
	ck_assert_uint_eq(st.sent, total);
	ck_assert_uint_eq(st.delivered, total);
	ck_assert_uint_eq(st.dead_letters, 0);
	uint64_t processed = 0;
	for (unsigned w = 0; w < workers; w++) {
		processed += WSTAT(sys, w, processed);
		ck_assert_uint_eq(WSTAT(sys, w, resident), 0);
		ck_assert_uint_eq(WSTAT(sys, w, runq), 0);
	}
	ck_assert_uint_eq(processed, total);
	actor_system_free(sys);
	free(c.recv_refs);
	free(rs);
	free(senders);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_new("fairness", TEST_TIMEOUT);
	tcase_add_test(tc, flooding_actor_does_not_starve_its_neighbour);
	tcase_add_test(tc, worker_runs_an_actor_for_at_most_a_batch_per_turn);
	suite_add_tcase(s, tc);

	tc = tcase_new("parking", TEST_TIMEOUT);
	tcase_add_test(tc, idle_workers_park_and_a_message_wakes_them);
	tcase_add_test(tc, parked_system_stays_idle_until_spoken_to);
	suite_add_tcase(s, tc);

	/* Round trips across workers take 1-2 us each on a quiet machine and up to ~100 us when
	 * other processes keep every CPU busy (each hop parks and wakes a worker): the progress
	 * watchdog catches a lost wake-up, and Check's limit is set for the busy case. */
	tc = tcase_new("round trips", TEST_TIMEOUT_ROUND_TRIPS);
	tcase_add_test(tc, ping_pong_survives_a_million_round_trips_across_workers);
	tcase_add_test(tc, ping_pong_never_loses_a_wakeup_when_workers_park_every_hop);
	suite_add_tcase(s, tc);

	tc = tcase_new("stress", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, more_workers_than_cores_deliver_exact_counts);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(sched_suite)
