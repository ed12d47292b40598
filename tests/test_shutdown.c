/* test_shutdown.c: how a system ends: shutdown with messages in flight (every message is
 * delivered or dead-lettered, exactly once), run returning by itself, shutdown from a signal
 * handler, destroy callbacks at shutdown, and actor_system_free without run.
 *
 * Stress parameter (environment): SHUTDOWN_MESSAGES, the most each sender may send.
 */
#include "common.h"

#include <sys/time.h>

#include "core/internal.h" /* resident_scans, for the white-box case below */

#define FLIGHT_ACTORS 4  /* sender actors */
#define FLIGHT_THREADS 2 /* sender threads outside the pool */
#define FLIGHT_SENDERS (FLIGHT_ACTORS + FLIGHT_THREADS)
#define FLIGHT_RECEIVERS 4
#define FLIGHT_BURST 16                /* messages per receiver per sender turn */
#define FLIGHT_MESSAGES_DEFAULT 100000 /* cap per sender: bounds memory, never reached */
#define FLIGHT_SHUTDOWN_AFTER 20000    /* deliveries before the shutdown thread strikes */
#define FLIGHT_RECEIVER_WORK 300       /* spins per message, so mailboxes fill up */

enum { MSG_TICK = 1, MSG_DATA };

/* ---------------------------------------------------------------------------------------------
 * Shutdown with messages in flight
 */

struct flight {
	actor_system_t *sys;
	actor_ref_t receivers[FLIGHT_RECEIVERS];
	actor_ref_t senders[FLIGHT_ACTORS];
	uint64_t per_sender;
	/* Per message id: did its send succeed, did a behaviour see it, did the hook. */
	_Atomic uint8_t *sent_ok, *seen_behavior, *seen_hook;
	atomic_ullong ok_sends; /* every successful send: data, ticks, kicks */
	atomic_ullong calls;    /* every behaviour call */
	atomic_ullong received; /* data messages seen by receivers */
	atomic_ullong hook_calls, hook_ticks, hook_bad;
	atomic_int destroyed[FLIGHT_ACTORS + FLIGHT_RECEIVERS];
};

struct flight_actor {
	struct flight *f;
	unsigned index; /* sender index, or FLIGHT_ACTORS + receiver index */
	uint64_t next_seq;
};

static uint64_t flight_ids(const struct flight *f)
{
	return FLIGHT_SENDERS * f->per_sender;
}

/* Sends message `seq` of sender `s` to receiver `r`; records it if the send succeeded. */
static int flight_send(struct flight *f, unsigned s, uint64_t seq, unsigned r)
{
	uint64_t id = s * f->per_sender + seq;
	int rc = actor_send(f->sys, f->receivers[r], MSG_DATA, &id, sizeof(id));
	if (rc == 0) {
		atomic_store(&f->sent_ok[id], 1);
		atomic_fetch_add(&f->ok_sends, 1);
	}
	return rc;
}

/* On each tick: a burst to every receiver, then another tick to itself. */
static void flight_sender(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct flight_actor *a = state;
	struct flight *f = a->f;
	(void)msg;
	atomic_fetch_add(&f->calls, 1);
	for (unsigned b = 0; b < FLIGHT_BURST; b++)
		for (unsigned r = 0; r < FLIGHT_RECEIVERS && a->next_seq < f->per_sender; r++)
			flight_send(f, a->index, a->next_seq++, r);
	if (a->next_seq < f->per_sender &&
	    actor_send(f->sys, actor_self(ctx), MSG_TICK, NULL, 0) == 0)
		atomic_fetch_add(&f->ok_sends, 1);
}

static void flight_receiver(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct flight_actor *a = state;
	struct flight *f = a->f;
	uint64_t id = msg_u64(msg);
	(void)ctx;
	atomic_fetch_add(&f->calls, 1);
	if (msg->type != MSG_DATA || id >= flight_ids(f)) {
		atomic_fetch_add(&f->hook_bad, 1);
		return;
	}
	atomic_fetch_add(&f->seen_behavior[id], 1);
	atomic_fetch_add(&f->received, 1);
	for (volatile unsigned i = 0; i < FLIGHT_RECEIVER_WORK; i++)
		;
}

static void flight_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	struct flight *f = arg;
	atomic_fetch_add(&f->hook_calls, 1);
	if (msg->type == MSG_TICK) {
		bool to_sender = false;
		for (unsigned s = 0; s < FLIGHT_ACTORS; s++)
			to_sender = to_sender || actor_ref_eq(to, f->senders[s]);
		if (!to_sender)
			atomic_fetch_add(&f->hook_bad, 1);
		atomic_fetch_add(&f->hook_ticks, 1);
		return;
	}
	uint64_t id = UINT64_MAX;
	if (msg->size == sizeof(id))
		memcpy(&id, msg + 1, sizeof(id));
	bool to_receiver = false;
	for (unsigned r = 0; r < FLIGHT_RECEIVERS; r++)
		to_receiver = to_receiver || actor_ref_eq(to, f->receivers[r]);
	if (msg->type != MSG_DATA || id >= flight_ids(f) || !to_receiver) {
		atomic_fetch_add(&f->hook_bad, 1);
		return;
	}
	atomic_fetch_add(&f->seen_hook[id], 1);
}

static void flight_destroy(void *state)
{
	struct flight_actor *a = state;
	atomic_fetch_add(&a->f->destroyed[a->index], 1);
}

struct flight_thread {
	struct flight *f;
	unsigned index;
	int last_rc;
};

/* Sends until its quota is spent or a send fails, which only shutdown can cause. */
static void *flight_thread_main(void *arg)
{
	struct flight_thread *t = arg;
	for (uint64_t seq = 0; seq < t->f->per_sender; seq++) {
		t->last_rc = flight_send(t->f, t->index, seq, (unsigned)(seq % FLIGHT_RECEIVERS));
		if (t->last_rc != 0)
			break;
	}
	return NULL;
}

struct striker {
	struct flight *f;
	int rc;
	uint64_t received_at_shutdown;
};

static void *striker_main(void *arg)
{
	struct striker *s = arg;
	WAIT_UNTIL(atomic_load(&s->f->received) >= FLIGHT_SHUTDOWN_AFTER, 10);
	s->received_at_shutdown = atomic_load(&s->f->received);
	s->rc = actor_system_shutdown(s->f->sys);
	return NULL;
}

START_TEST(shutdown_mid_flight_accounts_for_every_message)
{
	static struct flight f;
	memset(&f, 0, sizeof(f));
	f.per_sender = test_param(0, "SHUTDOWN_MESSAGES", FLIGHT_MESSAGES_DEFAULT);
	f.sent_ok = calloc(flight_ids(&f), 1);
	f.seen_behavior = calloc(flight_ids(&f), 1);
	f.seen_hook = calloc(flight_ids(&f), 1);
	ck_assert(f.sent_ok != NULL && f.seen_behavior != NULL && f.seen_hook != NULL);
	actor_config_t cfg = {
	    .workers = 2, .dead_letter = flight_dead_letter, .dead_letter_arg = &f};
	actor_system_t *sys = f.sys = system_new_cfg(&cfg);

	/* Senders on worker 0, receivers on worker 1: the receivers cannot keep up. */
	struct flight_actor actors[FLIGHT_ACTORS + FLIGHT_RECEIVERS];
	for (unsigned i = 0; i < FLIGHT_ACTORS + FLIGHT_RECEIVERS; i++) {
		bool sender = i < FLIGHT_ACTORS;
		actors[i] = (struct flight_actor){.f = &f, .index = i};
		actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED,
		                           .worker = sender ? 0 : 1,
		                           .destroy = flight_destroy};
		actor_ref_t r =
		    spawn_ok(sys, &opts, sender ? flight_sender : flight_receiver, &actors[i]);
		if (sender)
			f.senders[i] = r;
		else
			f.receivers[i - FLIGHT_ACTORS] = r;
	}
	for (unsigned s = 0; s < FLIGHT_ACTORS; s++) {
		send_ok(sys, f.senders[s], MSG_TICK, NULL, 0);
		atomic_fetch_add(&f.ok_sends, 1);
	}
	pthread_t threads[FLIGHT_THREADS], striker_thread;
	struct flight_thread targs[FLIGHT_THREADS];
	for (unsigned i = 0; i < FLIGHT_THREADS; i++) {
		targs[i] = (struct flight_thread){.f = &f, .index = FLIGHT_ACTORS + i};
		ck_assert_int_eq(pthread_create(&threads[i], NULL, flight_thread_main, &targs[i]),
		                 0);
	}
	struct striker striker = {.f = &f, .rc = 1};
	ck_assert_int_eq(pthread_create(&striker_thread, NULL, striker_main, &striker), 0);

	system_run_to_end(sys, TEST_WATCHDOG_STRESS, "shutdown in flight");
	pthread_join(striker_thread, NULL);
	for (unsigned i = 0; i < FLIGHT_THREADS; i++)
		pthread_join(threads[i], NULL);

	ck_assert_int_eq(striker.rc, 0);
	ck_assert_msg(striker.received_at_shutdown >= FLIGHT_SHUTDOWN_AFTER,
	              "only %" PRIu64 " messages delivered in 10 s", striker.received_at_shutdown);
	/* An outside sender stops at its quota (0) or at its first failure, after shutdown. */
	for (unsigned i = 0; i < FLIGHT_THREADS; i++)
		ck_assert_msg(targs[i].last_rc == 0 || targs[i].last_rc == -ESHUTDOWN ||
		                  targs[i].last_rc == -ESRCH,
		              "outside sender %u: last send returned %d", i, targs[i].last_rc);

	/* The counters, exact now that the system has stopped. */
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	fprintf(stderr,
	        "shutdown in flight: sent %" PRIu64 ", delivered %" PRIu64 ", dead letters %" PRIu64
	        "\n",
	        st.sent, st.delivered, st.dead_letters);
	ck_assert_uint_eq(st.sent, atomic_load(&f.ok_sends));
	ck_assert_uint_eq(st.delivered, atomic_load(&f.calls));
	ck_assert_msg(st.delivered + st.dead_letters == st.sent,
	              "delivered %" PRIu64 " + dead letters %" PRIu64 " != sent %" PRIu64,
	              st.delivered, st.dead_letters, st.sent);
	/* Shutdown stops the actors: it does not wait for their mailboxes to drain. */
	ck_assert_msg(st.dead_letters > 0,
	              "no dead letters: all %" PRIu64 " messages delivered although shutdown came "
	              "after %" PRIu64 " deliveries",
	              (uint64_t)atomic_load(&f.received), striker.received_at_shutdown);
	ck_assert_uint_eq(st.spawned, FLIGHT_ACTORS + FLIGHT_RECEIVERS);
	ck_assert_uint_eq(st.stopped, FLIGHT_ACTORS + FLIGHT_RECEIVERS);
	for (unsigned i = 0; i < FLIGHT_ACTORS + FLIGHT_RECEIVERS; i++)
		assert_atomic_eq(f.destroyed[i], 1);

	/* The hook may run until actor_system_free returns. */
	actor_system_free(sys);
	assert_atomic_eq(f.hook_bad, 0);
	assert_atomic_eq(f.hook_calls, st.dead_letters);
	uint64_t lost = 0, twice = 0, phantom = 0, hooked = 0;
	for (uint64_t id = 0; id < flight_ids(&f); id++) {
		unsigned b = atomic_load(&f.seen_behavior[id]), h = atomic_load(&f.seen_hook[id]);
		unsigned ok = atomic_load(&f.sent_ok[id]);
		hooked += h;
		if (b + h > 1)
			twice++;
		else if (ok && b + h == 0)
			lost++;
		else if (!ok && b + h != 0)
			phantom++;
	}
	ck_assert_msg(twice == 0, "%" PRIu64 " messages seen twice", twice);
	ck_assert_msg(lost == 0, "%" PRIu64 " messages lost silently", lost);
	ck_assert_msg(phantom == 0, "%" PRIu64 " failed sends were delivered", phantom);
	ck_assert_uint_eq(hooked + atomic_load(&f.hook_ticks), st.dead_letters);
	for (unsigned i = 0; i < FLIGHT_ACTORS + FLIGHT_RECEIVERS; i++)
		assert_atomic_eq(f.destroyed[i], 1);
	free(f.sent_ok);
	free(f.seen_behavior);
	free(f.seen_hook);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown of a system that is never idle
 */

#define BUSY_ACTORS 4

struct busy {
	atomic_int give_up; /* set by the watchdog, so that a stuck test can still end */
	atomic_ullong calls;
	atomic_int destroyed;
};

/* Sends itself a message for each one it gets: its worker never runs out of work. */
static void busy_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct busy *b = state;
	(void)msg;
	atomic_fetch_add_explicit(&b->calls, 1, memory_order_relaxed);
	if (atomic_load_explicit(&b->give_up, memory_order_relaxed)) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	actor_send(actor_ctx_system(ctx), actor_self(ctx), MSG_TICK, NULL, 0);
}

static void busy_destroy(void *state)
{
	struct busy *b = state;
	atomic_fetch_add(&b->destroyed, 1);
}

static void busy_give_up(void *arg)
{
	struct busy *b = arg;
	for (int i = 0; i < BUSY_ACTORS; i++)
		atomic_store(&b[i].give_up, 1);
}

static void *shutdown_later(void *arg)
{
	sleep_ms(100);
	actor_system_shutdown(arg);
	return NULL;
}

START_TEST(shutdown_stops_a_system_that_is_never_idle)
{
	actor_system_t *sys = system_new(2);
	struct busy b[BUSY_ACTORS];
	memset(b, 0, sizeof(b));
	actor_spawn_opts_t opts = {.destroy = busy_destroy};
	for (int i = 0; i < BUSY_ACTORS; i++)
		send_ok(sys, spawn_ok(sys, &opts, busy_behavior, &b[i]), MSG_TICK, NULL, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, shutdown_later, sys), 0);

	struct watchdog wd;
	watchdog_start_cb(&wd, sys, 10, "shutdown of a busy system", busy_give_up, b);
	int rc = actor_system_run(sys);
	bool fired = watchdog_stop(&wd);
	pthread_join(t, NULL);
	ck_assert_msg(!fired, "run did not return within 10 s of shutdown while actors were busy");
	ck_assert_int_eq(rc, 0);
	for (int i = 0; i < BUSY_ACTORS; i++)
		assert_atomic_eq(b[i].destroyed, 1);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.delivered + st.dead_letters, st.sent);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * run returning by itself
 */

struct relay {
	actor_ref_t next;
	unsigned delay_ms;
	atomic_int calls, destroyed;
	double stopped_at;
};

static void relay_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct relay *r = state;
	(void)msg;
	atomic_fetch_add(&r->calls, 1);
	if (r->delay_ms)
		sleep_ms(r->delay_ms);
	if (!actor_ref_is_none(r->next))
		actor_send(actor_ctx_system(ctx), r->next, MSG_DATA, NULL, 0);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void relay_destroy(void *state)
{
	struct relay *r = state;
	r->stopped_at = now_sec();
	atomic_fetch_add(&r->destroyed, 1);
}

START_TEST(run_returns_by_itself_when_every_actor_has_stopped)
{
	actor_system_t *sys = system_new(2);
	struct relay r[3] = {{.delay_ms = 0}, {.delay_ms = 0}, {.delay_ms = 150}};
	actor_ref_t refs[3];
	actor_spawn_opts_t opts = {.destroy = relay_destroy};
	for (int i = 2; i >= 0; i--) {
		r[i].next = i < 2 ? refs[i + 1] : ACTOR_REF_NONE;
		refs[i] = spawn_ok(sys, &opts, relay_behavior, &r[i]);
	}
	send_ok(sys, refs[0], MSG_DATA, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "a relay of three");
	double returned = now_sec();

	for (int i = 0; i < 3; i++) {
		assert_atomic_eq(r[i].calls, 1);
		assert_atomic_eq(r[i].destroyed, 1);
	}
	/* run waited for the slow last actor to stop. */
	ck_assert(r[2].stopped_at > 0 && r[2].stopped_at <= returned);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, 3);
	ck_assert_uint_eq(st.stopped, 3);
	ck_assert_uint_eq(st.sent, 3);
	ck_assert_uint_eq(st.delivered, 3);
	actor_system_free(sys);
	for (int i = 0; i < 3; i++)
		assert_atomic_eq(r[i].destroyed, 1);
}
END_TEST

START_TEST(run_returns_at_once_without_actors)
{
	actor_system_t *sys = system_new(2);
	double t0 = now_sec();
	system_run_to_end(sys, TEST_WATCHDOG, "an empty system");
	ck_assert_msg(now_sec() - t0 < 2.0 * test_scale(), "run took %.2f s", now_sec() - t0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown from a signal handler
 */

static actor_system_t *signal_sys;
static volatile sig_atomic_t signal_calls, signal_rc = 1;

static void shutdown_on_signal(int sig)
{
	(void)sig;
	signal_rc = actor_system_shutdown(signal_sys);
	signal_calls++;
}

static void install_handler(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = shutdown_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupted waits must cope with EINTR */
	ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
}

struct counted {
	atomic_int calls, destroyed;
};

static void count_calls(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct counted *c = state;
	(void)ctx;
	(void)msg;
	atomic_fetch_add(&c->calls, 1);
}

static void count_destroy(void *state)
{
	struct counted *c = state;
	atomic_fetch_add(&c->destroyed, 1);
}

struct kicker {
	pthread_t target;
	int sig;
};

static void *kick_main(void *arg)
{
	struct kicker *k = arg;
	sleep_ms(100);
	pthread_kill(k->target, k->sig);
	return NULL;
}

START_TEST(shutdown_from_a_signal_handler_in_the_running_thread)
{
	signal_calls = 0;
	signal_rc = 1;
	actor_system_t *sys = signal_sys = system_new(2);
	struct counted c = {0};
	actor_spawn_opts_t opts = {.destroy = count_destroy};
	spawn_ok(sys, &opts, count_calls, &c); /* idle forever: only shutdown ends run */
	install_handler(SIGUSR1);
	struct kicker k = {.target = pthread_self(), .sig = SIGUSR1};
	pthread_t kick;
	ck_assert_int_eq(pthread_create(&kick, NULL, kick_main, &k), 0);

	system_run_to_end(sys, TEST_WATCHDOG, "run with a signal on the way");
	pthread_join(kick, NULL);
	ck_assert_int_eq(signal_calls, 1);
	ck_assert_int_eq(signal_rc, 0);
	assert_atomic_eq(c.destroyed, 1);
	actor_system_free(sys);
	assert_atomic_eq(c.destroyed, 1);
}
END_TEST

START_TEST(shutdown_from_an_alarm_on_any_thread)
{
	signal_calls = 0;
	signal_rc = 1;
	actor_system_t *sys = signal_sys = system_new(2);
	struct counted c = {0};
	actor_spawn_opts_t opts = {.destroy = count_destroy};
	spawn_ok(sys, &opts, count_calls, &c);
	install_handler(SIGALRM);
	/* The process-wide alarm may land on a worker thread as well as this one. */
	struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 150000}};
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);

	system_run_to_end(sys, TEST_WATCHDOG, "run with an alarm set");
	ck_assert_int_eq(signal_calls, 1);
	ck_assert_int_eq(signal_rc, 0);
	assert_atomic_eq(c.destroyed, 1);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Destroy callbacks and freeing
 */

#define LIVE_ACTORS 8

START_TEST(shutdown_runs_destroy_for_live_actors)
{
	actor_system_t *sys = system_new(2);
	struct counted c[LIVE_ACTORS] = {0};
	actor_spawn_opts_t opts = {.destroy = count_destroy};
	actor_ref_t refs[LIVE_ACTORS];
	for (int i = 0; i < LIVE_ACTORS; i++)
		refs[i] = spawn_ok(sys, &opts, count_calls, &c[i]);
	for (int i = 0; i < LIVE_ACTORS; i++)
		send_ok(sys, refs[i], MSG_DATA, NULL, 0);
	for (int i = 0; i < LIVE_ACTORS; i++)
		assert_eventually(atomic_load(&c[i].calls) == 1, 10);

	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	ck_assert_int_eq(actor_system_shutdown(sys), 0); /* idempotent */
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown before run");
	for (int i = 0; i < LIVE_ACTORS; i++) {
		assert_atomic_eq(c[i].destroyed, 1);
		assert_atomic_eq(c[i].calls, 1);
		actor_info_t info;
		ck_assert_int_eq(actor_info(sys, refs[i], &info), -ESRCH);
	}
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, LIVE_ACTORS);
	ck_assert_uint_eq(st.stopped, LIVE_ACTORS);
	actor_system_free(sys);
	for (int i = 0; i < LIVE_ACTORS; i++)
		assert_atomic_eq(c[i].destroyed, 1);
}
END_TEST

struct monitored {
	atomic_int downs, reason;
};

static void record_down(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct monitored *m = state;
	(void)ctx;
	if (msg->type == ACTOR_MSG_DOWN && msg->size == sizeof(actor_down_t)) {
		actor_down_t d;
		memcpy(&d, actor_msg_data(msg), sizeof(d));
		atomic_store(&m->reason, d.reason);
		atomic_fetch_add(&m->downs, 1);
	}
}

START_TEST(shutdown_gives_each_monitor_at_most_one_down)
{
	/* Watcher and target both stop at shutdown. The watcher may or may not see the DOWN,
	 * but never twice, and only with the shutdown reason. */
	actor_config_t cfg = {.workers = 2};
	actor_system_t *sys = system_new_cfg(&cfg);
	struct monitored m = {0};
	actor_ref_t watcher = spawn_on(sys, 0, record_down, &m);
	actor_ref_t target = spawn_on(sys, 1, count_calls, &(struct counted){0});
	ck_assert_int_eq(actor_monitor(sys, watcher, target), 0);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown with a monitor");
	ck_assert_int_le(atomic_load(&m.downs), 1);
	if (atomic_load(&m.downs) == 1)
		assert_atomic_eq(m.reason, ACTOR_REASON_SHUTDOWN);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.delivered + st.dead_letters, st.sent);
	actor_system_free(sys);
}
END_TEST

#define FREEING_MESSAGES 1024

struct freeing {
	_Atomic uint8_t seen_behavior[FREEING_MESSAGES], seen_hook[FREEING_MESSAGES];
	atomic_int hook_bad;
	atomic_int gate, at_gate;
};

static void freeing_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	struct freeing *fr = arg;
	uint64_t id = UINT64_MAX;
	(void)to;
	if (msg->size == sizeof(id))
		memcpy(&id, msg + 1, sizeof(id));
	if (id < FREEING_MESSAGES)
		atomic_fetch_add(&fr->seen_hook[id], 1);
	else
		atomic_fetch_add(&fr->hook_bad, 1);
}

struct freeing_actor {
	struct freeing *fr;
	atomic_int destroyed;
};

static void freeing_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct freeing_actor *a = state;
	uint64_t id = msg_u64(msg);
	(void)ctx;
	if (id < FREEING_MESSAGES)
		atomic_fetch_add(&a->fr->seen_behavior[id], 1);
}

static void freeing_destroy(void *state)
{
	struct freeing_actor *a = state;
	atomic_fetch_add(&a->destroyed, 1);
}

/* Holds its worker until the gate opens. */
static void freeing_gatekeeper(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct freeing *fr = state;
	(void)ctx;
	(void)msg;
	atomic_fetch_add(&fr->at_gate, 1);
	gate_wait(&fr->gate);
}

static void *open_gate_later(void *arg)
{
	struct freeing *fr = arg;
	sleep_ms(50); /* by then actor_system_free has asked the workers to stop */
	gate_open(&fr->gate);
	return NULL;
}

START_TEST(free_without_run_stops_everything)
{
	static struct freeing fr;
	memset(&fr, 0, sizeof(fr));
	actor_config_t cfg = {
	    .workers = 2, .dead_letter = freeing_dead_letter, .dead_letter_arg = &fr};
	actor_system_t *sys = system_new_cfg(&cfg);
	struct freeing_actor actors[4];
	actor_ref_t refs[4];
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .destroy = freeing_destroy};
	for (int i = 0; i < 4; i++) {
		actors[i].fr = &fr;
		atomic_init(&actors[i].destroyed, 0);
		opts.worker = (unsigned)i % 2;
		refs[i] = spawn_ok(sys, &opts, freeing_behavior, &actors[i]);
	}
	/* Both workers wait at a gate while the mailboxes fill; the gate opens only once free
	 * has begun, so whatever is still queued then must become dead letters. */
	for (unsigned w = 0; w < 2; w++)
		send_ok(sys, spawn_on(sys, w, freeing_gatekeeper, &fr), MSG_DATA, NULL, 0);
	assert_eventually(atomic_load(&fr.at_gate) == 2, 10);
	for (uint64_t id = 0; id < FREEING_MESSAGES; id++)
		send_u64(sys, refs[id % 4], MSG_DATA, id);
	pthread_t opener;
	ck_assert_int_eq(pthread_create(&opener, NULL, open_gate_later, &fr), 0);
	actor_system_free(sys);
	pthread_join(opener, NULL);

	for (int i = 0; i < 4; i++)
		assert_atomic_eq(actors[i].destroyed, 1);
	assert_atomic_eq(fr.hook_bad, 0);
	unsigned hooked = 0;
	for (int id = 0; id < FREEING_MESSAGES; id++) {
		unsigned b = atomic_load(&fr.seen_behavior[id]), h = atomic_load(&fr.seen_hook[id]);
		ck_assert_msg(b + h == 1, "message %d: %u deliveries, %u dead letters", id, b, h);
		hooked += h;
	}
	ck_assert_msg(hooked > 0, "free delivered all %d queued messages instead of stopping",
	              FREEING_MESSAGES);
}
END_TEST

/* Regression: a shutting-down worker scanned every reference slot for idle residents on each
 * loop turn, while a turn runs (and stops) at most 64 of them, so stopping a million idle actors
 * took over a minute (bench/spawn_idle: 66 s). A scan now waits until what the last one queued
 * has run. White box: the worker's count of scans. */
#define IDLE_ACTORS 20000

static void idle_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

START_TEST(stopping_many_idle_actors_scans_for_them_a_few_times_not_once_per_turn)
{
	actor_system_t *sys = system_new(1);
	for (unsigned i = 0; i < IDLE_ACTORS; i++)
		spawn_ok(sys, NULL, idle_fn, NULL);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown of idle actors");
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.stopped, IDLE_ACTORS);
	uint64_t scans = atomic_load(&sys->workers[0].st.resident_scans);
	ck_assert_msg(scans >= 1 && scans <= 4, "%" PRIu64 " scans for %u idle actors", scans,
	              IDLE_ACTORS);
	actor_system_free(sys);
}
END_TEST

START_TEST(free_right_after_create_is_clean)
{
	actor_system_t *sys = system_new(0);
	actor_system_free(sys);
	sys = system_new(3);
	actor_system_free(sys);
}
END_TEST

static Suite *shutdown_suite(void)
{
	Suite *s = suite_create("shutdown");
	TCase *tc = tcase_new("in flight", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, shutdown_mid_flight_accounts_for_every_message);
	tcase_add_test(tc, shutdown_stops_a_system_that_is_never_idle);
	suite_add_tcase(s, tc);

	tc = tcase_new("ending", TEST_TIMEOUT);
	tcase_add_test(tc, run_returns_by_itself_when_every_actor_has_stopped);
	tcase_add_test(tc, run_returns_at_once_without_actors);
	tcase_add_test(tc, shutdown_from_a_signal_handler_in_the_running_thread);
	tcase_add_test(tc, shutdown_from_an_alarm_on_any_thread);
	tcase_add_test(tc, shutdown_runs_destroy_for_live_actors);
	tcase_add_test(tc, shutdown_gives_each_monitor_at_most_one_down);
	tcase_add_test(tc, free_without_run_stops_everything);
	tcase_add_test(tc, free_right_after_create_is_clean);
	tcase_add_test(tc, stopping_many_idle_actors_scans_for_them_a_few_times_not_once_per_turn);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(shutdown_suite)
