/* test_timer.c: per-worker timers through the public API, once per available reactor backend:
 * one-shot and periodic timers, cancel, order of equal deadlines, a hundred thousand pending
 * timers, timers whose target stops, delivery on the target's worker, and an idle system with a
 * far-future timer.
 *
 * One suite per backend ("timer-epoll", "timer-io_uring"), as in test_net.c: a backend the
 * kernel or sandbox refuses prints "SKIP <backend>: <reason>" and adds no cases.
 * TIMER_COUNT sets the size of the many-timers case (100000).
 */
#include "common.h"

#include <stdarg.h>

#define MS 1000000ull
#define TIMER_COUNT_DEFAULT 100000

enum { MSG_GO = 1, MSG_MARK };

#include "backend.h" /* the backend under test; failures seen inside behaviours */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t pending_timers(actor_system_t *sys)
{
	uint64_t sum = 0;
	for (unsigned w = 0; w < actor_system_workers(sys); w++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
		sum += st.timers;
	}
	return sum;
}

/* The timer event of a message, or false (noted) if it is not a well-formed ACTOR_MSG_TIMER. */
static bool timer_event(actor_msg_t *msg, actor_timer_event_t *ev)
{
	if (msg->type != ACTOR_MSG_TIMER) {
		NOTE_FAIL("message %#x where a timer was expected", msg->type);
		return false;
	}
	if (msg->size != sizeof(*ev)) {
		NOTE_FAIL("ACTOR_MSG_TIMER of %u bytes", msg->size);
		return false;
	}
	memcpy(ev, actor_msg_data(msg), sizeof(*ev));
	if (!actor_ref_is_none(msg->sender))
		NOTE_FAIL("a timer message has a sender");
	return true;
}

/* ---------------------------------------------------------------------------------------------
 * One-shot and periodic
 */

struct one_shot {
	uint64_t t_set, t_fired;
	actor_timer_t timer;
	actor_timer_event_t ev;
	uint64_t pending_after_set;
	atomic_int started, fired;
};

static void one_shot_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct one_shot *o = state;
	if (msg->type == MSG_GO) {
		o->t_set = now_ns();
		int rc = actor_timer_start(ctx, actor_self(ctx), 50 * MS, 0, 42, &o->timer);
		if (rc != 0)
			NOTE_FAIL("actor_timer_start: %d", rc);
		actor_worker_stats_t st;
		actor_stats_worker(actor_ctx_system(ctx), actor_ctx_worker(ctx), &st);
		o->pending_after_set = st.timers;
		atomic_store(&o->started, 1);
		return;
	}
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	if (atomic_load(&o->fired) == 0) {
		o->t_fired = now_ns();
		o->ev = ev;
	}
	atomic_fetch_add(&o->fired, 1);
}

START_TEST(one_shot_fires_once_after_at_least_its_delay)
{
	actor_system_t *sys = backend_system(2);
	struct one_shot o = {0};
	actor_ref_t a = spawn_on(sys, 1, one_shot_fn, &o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&o.started), TEST_WATCHDOG));
	ck_assert_msg(WAIT_UNTIL(atomic_load(&o.fired) > 0, TEST_WATCHDOG), "[%s] never fired",
	              reactor);
	sleep_ms(150);
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&o.fired), 1);
	ck_assert_uint_eq(o.pending_after_set, 1);
	uint64_t waited = o.t_fired - o.t_set;
	ck_assert_msg(waited >= 50 * MS, "[%s] fired after %.3f ms of 50", reactor,
	              (double)waited / 1e6);
	ck_assert_uint_eq(o.ev.timer.id, o.timer.id);
	ck_assert_uint_eq(o.ev.tag, 42);
	ck_assert_uint_eq(o.ev.expirations, 1);
	ck_assert_uint_eq(pending_timers(sys), 0);
	fprintf(stderr, "[%s] 50 ms one-shot fired after %.3f ms\n", reactor, (double)waited / 1e6);
	backend_system_end(sys, "one-shot");
}
END_TEST

/* A timer that will never be cancelled needs no handle: out may be NULL. */
static atomic_int no_handle_fired;

static void no_handle_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_GO) {
		int rc = actor_timer_start(ctx, actor_self(ctx), MS, 0, 7, NULL);
		if (rc != 0)
			NOTE_FAIL("actor_timer_start with a NULL out: %d", rc);
	} else if (msg->type == ACTOR_MSG_TIMER) {
		const actor_timer_event_t *ev = actor_msg_data(msg);
		if (ev->tag != 7 || ev->timer.id == 0)
			NOTE_FAIL("tag %" PRIu64 ", timer %" PRIu64, ev->tag, ev->timer.id);
		atomic_fetch_add(&no_handle_fired, 1);
	}
}

START_TEST(a_timer_set_without_a_handle_fires_all_the_same)
{
	actor_system_t *sys = backend_system(1);
	atomic_store(&no_handle_fired, 0);
	send_ok(sys, spawn_on(sys, 0, no_handle_fn, NULL), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&no_handle_fired) == 1, TEST_WATCHDOG));
	backend_system_end(sys, "no handle");
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&no_handle_fired), 1);
}
END_TEST

#define PERIOD (10 * MS)
#define PERIODS 10

struct periodic {
	uint64_t t_set;
	actor_timer_t timer;
	uint64_t messages, expirations;
	int cancel_rc, cancel_again_rc;
	bool cancelled;
	atomic_int marked, late;
};

static void periodic_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct periodic *p = state;
	if (msg->type == MSG_GO) {
		p->t_set = now_ns();
		int rc = actor_timer_start(ctx, actor_self(ctx), PERIOD, PERIOD, 7, &p->timer);
		if (rc != 0)
			NOTE_FAIL("actor_timer_start: %d", rc);
		return;
	}
	if (msg->type == MSG_MARK) {
		atomic_store(&p->marked, 1);
		return;
	}
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	if (atomic_load(&p->marked)) {
		atomic_fetch_add(&p->late, 1); /* fired after cancel returned */
		return;
	}
	if (p->cancelled)
		return; /* fired before the cancel, still queued behind it: allowed */
	if (ev.timer.id != p->timer.id || ev.tag != 7 || ev.expirations == 0)
		NOTE_FAIL("periodic event: timer %#" PRIx64 " tag %" PRIu64 " expirations %" PRIu64,
		          ev.timer.id, ev.tag, ev.expirations);
	p->messages++;
	p->expirations += ev.expirations;
	/* Expiration k is due at t_set + k periods: this many cannot have happened sooner. */
	uint64_t due = p->t_set + p->expirations * PERIOD;
	uint64_t now = now_ns();
	if (now < due)
		NOTE_FAIL("%" PRIu64 " expirations %.3f ms early", p->expirations,
		          (double)(due - now) / 1e6);
	if (p->expirations >= PERIODS) {
		p->cancel_rc = actor_timer_cancel(ctx, p->timer);
		p->cancel_again_rc = actor_timer_cancel(ctx, p->timer);
		p->cancelled = true;
		/* Anything that fired before the cancel is already in the mailbox ahead of this. */
		actor_send(actor_ctx_system(ctx), actor_self(ctx), MSG_MARK, NULL, 0);
	}
}

START_TEST(periodic_timer_fires_repeatedly_until_cancel_stops_it)
{
	actor_system_t *sys = backend_system(2);
	struct periodic p = {0};
	actor_ref_t a = spawn_on(sys, 0, periodic_fn, &p);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&p.marked), TEST_WATCHDOG),
	              "[%s] %d periods never elapsed", reactor, PERIODS);
	sleep_ms(10 * PERIOD / MS); /* ten more periods: nothing may fire */
	assert_no_failures();
	ck_assert_int_eq(p.cancel_rc, 0);
	ck_assert_int_eq(p.cancel_again_rc, -ESRCH);
	ck_assert_int_eq(atomic_load(&p.late), 0);
	ck_assert_uint_ge(p.messages, 2);
	ck_assert_uint_eq(pending_timers(sys), 0);
	fprintf(stderr, "[%s] %d periods in %" PRIu64 " messages\n", reactor, PERIODS, p.messages);
	backend_system_end(sys, "periodic");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Cancel
 */

struct cancels {
	actor_timer_t doomed, probe, fired;
	int cancel_rc, cancel_again_rc, cancel_fired_rc, cancel_none_rc;
	atomic_int doomed_delivered;
	atomic_int done;
};

static void cancels_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct cancels *c = state;
	actor_ref_t self = actor_self(ctx);
	if (msg->type == MSG_GO) {
		int rc = actor_timer_start(ctx, self, 30 * MS, 0, 1, &c->doomed);
		rc |= actor_timer_start(ctx, self, 1 * MS, 0, 2, &c->fired);
		rc |= actor_timer_start(ctx, self, 100 * MS, 0, 3, &c->probe);
		if (rc != 0)
			NOTE_FAIL("actor_timer_start failed");
		c->cancel_rc = actor_timer_cancel(ctx, c->doomed);
		return;
	}
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	switch (ev.tag) {
	case 1:
		atomic_fetch_add(&c->doomed_delivered, 1);
		return;
	case 2:
		/* A one-shot that has fired is gone. */
		c->cancel_fired_rc = actor_timer_cancel(ctx, ev.timer);
		return;
	case 3: /* well past the cancelled timer's deadline */
		c->cancel_again_rc = actor_timer_cancel(ctx, c->doomed);
		c->cancel_none_rc = actor_timer_cancel(ctx, (actor_timer_t){0});
		atomic_store(&c->done, 1);
		return;
	default:
		NOTE_FAIL("tag %" PRIu64, ev.tag);
	}
}

START_TEST(cancel_before_firing_prevents_delivery_and_cancel_after_returns_esrch)
{
	actor_system_t *sys = backend_system(2);
	struct cancels c = {0};
	actor_ref_t a = spawn_on(sys, 1, cancels_fn, &c);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&c.done), TEST_WATCHDOG), "[%s] probe never fired",
	              reactor);
	sleep_ms(20);
	assert_no_failures();
	ck_assert_int_eq(c.cancel_rc, 0);
	ck_assert_int_eq(atomic_load(&c.doomed_delivered), 0);
	ck_assert_int_eq(c.cancel_again_rc, -ESRCH);
	ck_assert_int_eq(c.cancel_fired_rc, -ESRCH);
	ck_assert_msg(c.cancel_none_rc < 0, "cancel of the zero timer returned %d",
	              c.cancel_none_rc);
	ck_assert_uint_eq(pending_timers(sys), 0);
	backend_system_end(sys, "cancel");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Order
 */

#define ORDER_TIMERS 1000

struct order {
	uint64_t next;
	atomic_uint_fast64_t seen;
	atomic_int wrong;
	uint64_t first_wrong_tag, first_wrong_expected;
};

static void order_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct order *o = state;
	if (msg->type == MSG_GO) {
		actor_timer_t t;
		/* Set in one behaviour call: a runtime that reads its clock once per loop gives
		 * these equal deadlines. Zero delays first, then equal positive delays: every
		 * deadline is no earlier than the one set before it, so the order set is the order
		 * due. */
		for (uint64_t i = 0; i < ORDER_TIMERS; i++)
			if (actor_timer_start(ctx, actor_self(ctx), 0, 0, i, &t) != 0)
				NOTE_FAIL("actor_timer_start %" PRIu64, i);
		for (uint64_t i = ORDER_TIMERS; i < 2 * ORDER_TIMERS; i++)
			if (actor_timer_start(ctx, actor_self(ctx), 20 * MS, 0, i, &t) != 0)
				NOTE_FAIL("actor_timer_start %" PRIu64, i);
		return;
	}
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	if (ev.tag != o->next && atomic_fetch_add(&o->wrong, 1) == 0) {
		o->first_wrong_tag = ev.tag;
		o->first_wrong_expected = o->next;
	}
	o->next = ev.tag + 1;
	atomic_fetch_add(&o->seen, 1);
}

START_TEST(timers_with_equal_deadlines_fire_in_the_order_set)
{
	actor_system_t *sys = backend_system(2);
	struct order o = {0};
	actor_ref_t a = spawn_on(sys, 0, order_fn, &o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&o.seen) == 2 * ORDER_TIMERS, TEST_WATCHDOG),
	              "[%s] %" PRIu64 " of %d fired", reactor, (uint64_t)atomic_load(&o.seen),
	              2 * ORDER_TIMERS);
	assert_no_failures();
	ck_assert_msg(atomic_load(&o.wrong) == 0,
	              "[%s] %d out of order; first: tag %" PRIu64 " where %" PRIu64 " was due",
	              reactor, atomic_load(&o.wrong), o.first_wrong_tag, o.first_wrong_expected);
	backend_system_end(sys, "equal deadlines");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Many timers
 */

#define MANY_MAX_DELAY_MS 300

struct many {
	uint64_t count;
	uint64_t *deadline;  /* per tag: no earlier than this */
	atomic_uchar *fired; /* per tag */
	actor_ref_t counters[2];
	atomic_uint_fast64_t total, early;
	uint64_t pending_after_set[2];
	atomic_int set_done;
};

struct many_setter {
	struct many *m;
	unsigned half; /* sets tags half, half + 2, half + 4, ... */
};

static void many_setter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct many_setter *s = state;
	struct many *m = s->m;
	(void)msg;
	uint64_t rng = 0x243f6a8885a308d3ull ^ s->half;
	uint64_t n = 0;
	for (uint64_t tag = s->half; tag < m->count; tag += 2, n++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		uint64_t delay = rng % (MANY_MAX_DELAY_MS * MS);
		m->deadline[tag] = now_ns() + delay;
		actor_timer_t t;
		/* Alternate targets: half of each worker's timers go to the other worker. */
		int rc = actor_timer_start(ctx, m->counters[(tag / 2) % 2], delay, 0, tag, &t);
		if (rc != 0) {
			NOTE_FAIL("actor_timer_start #%" PRIu64 ": %d", n, rc);
			break;
		}
	}
	actor_worker_stats_t st;
	actor_stats_worker(actor_ctx_system(ctx), actor_ctx_worker(ctx), &st);
	m->pending_after_set[s->half] = st.timers;
	atomic_fetch_add(&m->set_done, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void many_counter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct many *m = state;
	(void)ctx;
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	if (ev.tag >= m->count) {
		NOTE_FAIL("tag %" PRIu64, ev.tag);
		return;
	}
	/* acquire (via set_done's seq_cst) is not needed: the deadline was written before the
	 * timer was started, and starting it happens before it fires. */
	if (now_ns() < m->deadline[ev.tag])
		atomic_fetch_add(&m->early, 1);
	atomic_fetch_add(&m->fired[ev.tag], 1);
	atomic_fetch_add(&m->total, 1);
}

START_TEST(hundred_thousand_pending_timers_each_fire_exactly_once)
{
	actor_system_t *sys = backend_system(2);
	struct many m = {.count = test_param(1, "TIMER_COUNT", TIMER_COUNT_DEFAULT)};
	m.count += m.count % 2;
	m.deadline = calloc(m.count, sizeof(*m.deadline));
	m.fired = calloc(m.count, sizeof(*m.fired));
	m.counters[0] = spawn_on(sys, 0, many_counter_fn, &m);
	m.counters[1] = spawn_on(sys, 1, many_counter_fn, &m);
	struct many_setter s0 = {&m, 0}, s1 = {&m, 1};
	send_ok(sys, spawn_on(sys, 0, many_setter_fn, &s0), MSG_GO, NULL, 0);
	send_ok(sys, spawn_on(sys, 1, many_setter_fn, &s1), MSG_GO, NULL, 0);

	ck_assert(WAIT_UNTIL(atomic_load(&m.set_done) == 2, TEST_WATCHDOG_STRESS));
	ck_assert_msg(WAIT_UNTIL(atomic_load(&m.total) >= m.count, TEST_WATCHDOG_STRESS),
	              "[%s] %" PRIu64 " of %" PRIu64 " fired", reactor,
	              (uint64_t)atomic_load(&m.total), m.count);
	sleep_ms(100);
	assert_no_failures();
	ck_assert_uint_eq(atomic_load(&m.total), m.count);
	uint64_t wrong = 0, first = UINT64_MAX;
	for (uint64_t i = 0; i < m.count; i++)
		if (atomic_load(&m.fired[i]) != 1 && wrong++ == 0)
			first = i;
	ck_assert_msg(wrong == 0,
	              "[%s] %" PRIu64 " timers did not fire exactly once (first: %" PRIu64
	              ", %u times)",
	              reactor, wrong, first, first < m.count ? m.fired[first] : 0);
	ck_assert_msg(atomic_load(&m.early) == 0, "[%s] %" PRIu64 " timers fired early", reactor,
	              (uint64_t)atomic_load(&m.early));
	/* Each setter's worker held its half (none can fire while the setter runs). */
	ck_assert_uint_eq(m.pending_after_set[0], m.count / 2);
	ck_assert_uint_eq(m.pending_after_set[1], m.count / 2);
	ck_assert_uint_eq(pending_timers(sys), 0);
	backend_system_end(sys, "many timers");
	free(m.deadline);
	free(m.fired);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Targets
 */

#define VICTIM_TICKS 3

struct victim {
	atomic_int ticks;
	atomic_int one_shots;
};

static void victim_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct victim *v = state;
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	if (ev.tag == 2 && atomic_fetch_add(&v->ticks, 1) + 1 == VICTIM_TICKS)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	if (ev.tag == 1)
		atomic_fetch_add(&v->one_shots, 1);
}

struct dropper {
	actor_ref_t victim, gone;
	actor_timer_t periodic;
	int start_rc[3];
	int cancel_rc;
	atomic_int done;
};

/* The one-shot to the victim is due long after the victim's three 5 ms ticks: if it is still
 * alive then, one_shots counts it and the test fails. */
#define ONE_SHOT_MS 1000

static void dropper_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct dropper *d = state;
	actor_timer_t t;
	if (msg->type == MSG_GO) {
		d->start_rc[0] = actor_timer_start(ctx, d->victim, ONE_SHOT_MS * MS, 0, 1, &t);
		d->start_rc[1] = actor_timer_start(ctx, d->victim, 5 * MS, 5 * MS, 2, &d->periodic);
		/* To an actor that has already stopped: refused or dropped, never delivered. */
		d->start_rc[2] = actor_timer_start(ctx, d->gone, 1 * MS, 0, 3, &t);
	} else if (msg->type == MSG_MARK) { /* every timer is gone: the periodic one too */
		d->cancel_rc = actor_timer_cancel(ctx, d->periodic);
		atomic_store(&d->done, 1);
	}
}

START_TEST(timer_to_a_stopped_target_is_dropped_without_error)
{
	actor_system_t *sys = backend_system(2);
	struct victim v = {0}, g = {0};
	struct dropper d = {0};
	d.victim = spawn_on(sys, 1, victim_fn, &v);
	d.gone = spawn_on(sys, 1, victim_fn, &g);
	ck_assert_int_eq(actor_stop(sys, d.gone), 0);
	wait_stopped(sys, d.gone);
	actor_ref_t a = spawn_on(sys, 0, dropper_fn, &d);
	send_ok(sys, a, MSG_GO, NULL, 0);

	wait_stopped(sys, d.victim); /* after its third tick */
	/* The periodic timer goes with its target rather than firing into the void forever, and
	 * the one-shot is dropped when it comes due. */
	ck_assert_msg(WAIT_UNTIL(pending_timers(sys) == 0, TEST_WATCHDOG),
	              "[%s] %" PRIu64 " timers still pending after their target stopped", reactor,
	              pending_timers(sys));
	send_ok(sys, a, MSG_MARK, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&d.done), TEST_WATCHDOG), "[%s] the dropper never ran",
	              reactor);
	assert_no_failures();
	ck_assert_int_eq(d.start_rc[0], 0);
	ck_assert_int_eq(d.start_rc[1], 0);
	ck_assert_msg(d.start_rc[2] == 0 || d.start_rc[2] == -ESRCH,
	              "a timer to a stopped actor: %d", d.start_rc[2]);
	ck_assert_int_eq(atomic_load(&v.ticks), VICTIM_TICKS);
	ck_assert_int_eq(atomic_load(&v.one_shots), 0);
	ck_assert_int_eq(atomic_load(&g.ticks) + atomic_load(&g.one_shots), 0);
	ck_assert_int_eq(d.cancel_rc, -ESRCH);
	backend_system_end(sys, "timers to stopped targets");
}
END_TEST

/* A timer may be cancelled by any actor living on the worker that set it, and from another
 * worker the call says -EXDEV. The setter publishes the handle; two cancellers try it. */
struct cancel_share {
	actor_timer_t timer;
	atomic_int set;
	int far_rc, near_rc, again_rc;
	atomic_int tried;
};

static void share_setter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct cancel_share *c = state;
	if (msg->type != MSG_GO)
		return;
	if (actor_timer_start(ctx, actor_self(ctx), ACTOR_SEC(60), 0, 0, &c->timer) != 0)
		NOTE_FAIL("actor_timer_start");
	atomic_store(&c->set, 1);
}

static void share_far_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	struct cancel_share *c = state;
	c->far_rc = actor_timer_cancel(ctx, c->timer);
	atomic_fetch_add(&c->tried, 1);
}

static void share_near_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	struct cancel_share *c = state;
	c->near_rc = actor_timer_cancel(ctx, c->timer);
	c->again_rc = actor_timer_cancel(ctx, c->timer);
	atomic_fetch_add(&c->tried, 1);
}

START_TEST(any_actor_on_the_timer_s_worker_may_cancel_it_and_another_worker_gets_exdev)
{
	ck_assert_uint_eq(ACTOR_US(7), 7000u);
	ck_assert_uint_eq(ACTOR_MS(250), 250000000u);
	ck_assert_uint_eq(ACTOR_SEC(5), 5000000000u); /* beyond 32 bits */
	actor_system_t *sys = backend_system(2);
	struct cancel_share c = {0};
	send_ok(sys, spawn_on(sys, 0, share_setter_fn, &c), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.set), TEST_WATCHDOG));
	ck_assert_uint_eq(pending_timers(sys), 1);
	send_ok(sys, spawn_on(sys, 1, share_far_fn, &c), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.tried) == 1, TEST_WATCHDOG));
	send_ok(sys, spawn_on(sys, 0, share_near_fn, &c), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.tried) == 2, TEST_WATCHDOG));
	ck_assert_int_eq(c.far_rc, -EXDEV);
	ck_assert_int_eq(c.near_rc, 0);
	ck_assert_int_eq(c.again_rc, -ESRCH);
	ck_assert_uint_eq(pending_timers(sys), 0);
	assert_no_failures();
	backend_system_end(sys, "cancel from another actor");
}
END_TEST

#define WHERE_TIMERS 100

struct where_target {
	unsigned home;
	atomic_int count, wrong;
	_Atomic pthread_t thread; /* the first thread it ran on */
	atomic_int thread_changed;
	atomic_int first;
};

struct where_setter {
	actor_ref_t targets[2];
};

static void where_setter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct where_setter *s = state;
	(void)msg;
	for (unsigned i = 0; i < 2 * WHERE_TIMERS; i++) {
		actor_timer_t t;
		if (actor_timer_start(ctx, s->targets[i % 2], (i % 20) * MS, 0, i, &t) != 0)
			NOTE_FAIL("actor_timer_start %u", i);
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void where_target_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct where_target *t = state;
	actor_timer_event_t ev;
	if (!timer_event(msg, &ev))
		return;
	if (actor_ctx_worker(ctx) != t->home)
		atomic_fetch_add(&t->wrong, 1);
	if (atomic_exchange(&t->first, 1) == 0)
		atomic_store(&t->thread, pthread_self());
	else if (!pthread_equal(atomic_load(&t->thread), pthread_self()))
		atomic_fetch_add(&t->thread_changed, 1);
	atomic_fetch_add(&t->count, 1);
}

START_TEST(timers_are_delivered_on_the_targets_worker)
{
	actor_system_t *sys = backend_system(2);
	struct where_target tg[2] = {{.home = 0}, {.home = 1}};
	struct where_setter s = {0};
	for (unsigned w = 0; w < 2; w++) {
		s.targets[w] = spawn_on(sys, w, where_target_fn, &tg[w]);
		ck_assert_uint_eq(worker_of(sys, s.targets[w]), w);
	}
	/* A setter on each worker: half of its timers cross to the other worker. */
	send_ok(sys, spawn_on(sys, 0, where_setter_fn, &s), MSG_GO, NULL, 0);
	send_ok(sys, spawn_on(sys, 1, where_setter_fn, &s), MSG_GO, NULL, 0);
	for (unsigned w = 0; w < 2; w++)
		ck_assert_msg(
		    WAIT_UNTIL(atomic_load(&tg[w].count) == 2 * WHERE_TIMERS, TEST_WATCHDOG),
		    "[%s] target on worker %u got %d of %d", reactor, w, atomic_load(&tg[w].count),
		    2 * WHERE_TIMERS);
	assert_no_failures();
	for (unsigned w = 0; w < 2; w++) {
		ck_assert_msg(atomic_load(&tg[w].wrong) == 0, "[%s] %d timers ran off worker %u",
		              reactor, atomic_load(&tg[w].wrong), w);
		ck_assert_int_eq(atomic_load(&tg[w].thread_changed), 0);
	}
	ck_assert(!pthread_equal(atomic_load(&tg[0].thread), atomic_load(&tg[1].thread)));
	backend_system_end(sys, "timer delivery worker");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Idle
 */

#define IDLE_WINDOW_MS 500

/* Sets a one-hour timer to itself on MSG_GO, cancels it on MSG_MARK. */
struct keeper {
	actor_timer_t timer;
	int start_rc, cancel_rc;
	atomic_int set, cancelled;
};

static void keeper_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct keeper *k = state;
	if (msg->type == MSG_GO) {
		k->start_rc =
		    actor_timer_start(ctx, actor_self(ctx), 3600ull * 1000 * MS, 0, 0, &k->timer);
		atomic_store(&k->set, 1);
	} else if (msg->type == MSG_MARK) {
		k->cancel_rc = actor_timer_cancel(ctx, k->timer);
		atomic_store(&k->cancelled, 1);
	} else {
		NOTE_FAIL("keeper got message %#x", msg->type);
	}
}

static uint64_t parks(actor_system_t *sys)
{
	uint64_t sum = 0;
	for (unsigned w = 0; w < actor_system_workers(sys); w++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
		sum += st.parks;
	}
	return sum;
}

START_TEST(idle_system_with_a_far_future_timer_uses_no_cpu)
{
	actor_system_t *sys = backend_system(2);
	struct keeper k[2] = {0};
	actor_ref_t ref[2];
	for (unsigned w = 0; w < 2; w++) {
		ref[w] = spawn_on(sys, w, keeper_fn, &k[w]);
		send_ok(sys, ref[w], MSG_GO, NULL, 0);
		ck_assert(WAIT_UNTIL(atomic_load(&k[w].set), TEST_WATCHDOG));
		ck_assert_int_eq(k[w].start_rc, 0);
	}
	ck_assert_uint_eq(pending_timers(sys), 2);
	sleep_ms(200); /* past any idle spinning */

	uint64_t p0 = parks(sys);
	double c0 = cpu_sec(), w0 = now_sec();
	sleep_ms(IDLE_WINDOW_MS);
	double cpu = cpu_sec() - c0, wall = now_sec() - w0;
	uint64_t p1 = parks(sys);
	/* A worker that wakes to poll shows up as CPU time or as parks. */
	ck_assert_msg(cpu < 0.05 * wall, "[%s] idle system used %.1f ms of CPU in %.0f ms", reactor,
	              cpu * 1e3, wall * 1e3);
	ck_assert_msg(p1 - p0 <= 10, "[%s] idle workers parked %" PRIu64 " times in %.0f ms",
	              reactor, p1 - p0, wall * 1e3);
	fprintf(stderr, "[%s] idle: %.2f ms CPU, %" PRIu64 " parks in %.0f ms\n", reactor,
	        cpu * 1e3, p1 - p0, wall * 1e3);

	/* One cancelled, one left pending for the shutdown to free. */
	send_ok(sys, ref[0], MSG_MARK, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&k[0].cancelled), TEST_WATCHDOG));
	ck_assert_int_eq(k[0].cancel_rc, 0);
	ck_assert_uint_eq(pending_timers(sys), 1);
	assert_no_failures();
	backend_system_end(sys, "idle with a far-future timer");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Suites
 */

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	TCase *tc = backend_tcase(s, b, 0, "timers", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, one_shot_fires_once_after_at_least_its_delay);
	tcase_add_test(tc, a_timer_set_without_a_handle_fires_all_the_same);
	tcase_add_test(tc, periodic_timer_fires_repeatedly_until_cancel_stops_it);
	tcase_add_test(tc, cancel_before_firing_prevents_delivery_and_cancel_after_returns_esrch);
	tcase_add_test(tc, timers_with_equal_deadlines_fire_in_the_order_set);
	tcase_add_test(tc, timer_to_a_stopped_target_is_dropped_without_error);
	tcase_add_test(tc,
	               any_actor_on_the_timer_s_worker_may_cancel_it_and_another_worker_gets_exdev);
	tcase_add_test(tc, timers_are_delivered_on_the_targets_worker);
	tcase_add_test(tc, idle_system_with_a_far_future_timer_uses_no_cpu);

	tc = backend_tcase(s, b, 1, "many timers", TEST_TIMEOUT_STRESS, fixture);
	tcase_add_test(tc, hundred_thousand_pending_timers_each_fire_exactly_once);
}

int main(int argc, char **argv)
{
	return backend_main(argc, argv, "timer", add_cases);
}
