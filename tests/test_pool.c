/* test_pool.c: blocking pools through the public API: results and tags coming back as messages,
 * ten thousand jobs counted exactly, a blocked pool thread that leaves its worker free, pools
 * that cannot starve each other, pool sizes, cancellation, the actor bound to its worker while
 * its jobs are in flight, an owner that stops, shutdown with jobs in flight (every job accounted
 * for, and a job outliving the system), and misuse.
 *
 * Jobs that stand for blocking work sleep or wait at a gate inside the job function; nothing
 * else waits but for a condition. Behaviours note failures (backend.h) for the test thread.
 * POOL_JOBS sets the size of the many-jobs case (10000).
 */
#include "common.h"

#include <dirent.h>

#include <stdarg.h>

#include "backend.h" /* NOTE_FAIL, assert_no_failures (the backend is always epoll here) */

#define POOL_JOBS_DEFAULT 10000
#define MS 1000000ull

enum { MSG_GO = 1, MSG_PING, MSG_PONG, MSG_STOP_NOW };

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The payload of a JOB_DONE, or false (noted) if the message is not a well-formed one. */
static bool job_done(actor_msg_t *msg, actor_job_done_t *d)
{
	if (msg->type != ACTOR_MSG_JOB_DONE) {
		NOTE_FAIL("message %#x where a JOB_DONE was expected", msg->type);
		return false;
	}
	if (msg->size != sizeof(*d) || !actor_ref_is_none(msg->sender)) {
		NOTE_FAIL("JOB_DONE of %u bytes, sender %" PRIx64, msg->size, msg->sender.id);
		return false;
	}
	memcpy(d, actor_msg_data(msg), sizeof(*d));
	return true;
}

static uint64_t workers_stat(actor_system_t *sys, size_t offset)
{
	uint64_t sum = 0;
	for (unsigned w = 0; w < actor_system_workers(sys); w++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
		sum += *(const uint64_t *)((const char *)&st + offset);
	}
	return sum;
}
#define jobs_in_flight(sys) workers_stat(sys, offsetof(actor_worker_stats_t, jobs))
#define jobs_dropped(sys) workers_stat(sys, offsetof(actor_worker_stats_t, jobs_dropped))

/* Runs the system to its end (its actors stop by themselves) and frees it. */
static void end_when_done(actor_system_t *sys, const char *what)
{
	system_run_to_end(sys, TEST_WATCHDOG, what);
	actor_system_free(sys);
}

/* ---------------------------------------------------------------------------------------------
 * Job functions that stand for blocking work
 */

/* A job that waits at `gate` (the test opens it), counting how many such jobs run at once. */
struct gated {
	atomic_int gate;
	atomic_int started, running, max_running, finished;
};

struct gated_arg {
	struct gated *g;
	int64_t result;
};

static int64_t gated_job(void *arg)
{
	struct gated_arg *a = arg;
	struct gated *g = a->g;
	atomic_fetch_add(&g->started, 1);
	int now = atomic_fetch_add(&g->running, 1) + 1;
	int max = atomic_load(&g->max_running);
	while (now > max && !atomic_compare_exchange_weak(&g->max_running, &max, now))
		;
	bool opened = gate_wait(&g->gate);
	atomic_fetch_sub(&g->running, 1);
	atomic_fetch_add(&g->finished, 1);
	return opened ? a->result : -ETIMEDOUT;
}

static int64_t return_arg(void *arg)
{
	return (int64_t)(intptr_t)arg;
}

static pthread_t job_thread; /* the thread that ran answer_job */

static int64_t answer_job(void *arg)
{
	(void)arg;
	job_thread = pthread_self(); /* read once the result is back: ordered by it */
	return 42;
}

/* ---------------------------------------------------------------------------------------------
 * One job: its result, tag, argument and handle come back in one message
 */

struct one {
	const char *pool;
	actor_job_fn *fn;
	void *arg;
	uint64_t tag;
	int submit_rc;
	actor_job_t job;
	actor_job_done_t done;
	pthread_t thread; /* the behaviour's */
	atomic_int got;
};

static void one_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct one *o = state;
	o->thread = pthread_self();
	if (msg->type == MSG_GO) {
		actor_job_opts_t opts = {.pool = o->pool, .tag = o->tag};
		o->submit_rc = actor_job_submit(ctx, &opts, o->fn, o->arg, &o->job);
		if (o->submit_rc < 0)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (job_done(msg, &o->done))
		atomic_fetch_add(&o->got, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_job_runs_on_a_pool_thread_and_its_result_comes_back_with_its_tag)
{
	actor_system_t *sys = system_new(2);
	static int cookie;
	struct one o = {.fn = answer_job, .arg = &cookie, .tag = 0xfeedu};
	actor_ref_t a = spawn_ok(sys, NULL, one_fn, &o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	end_when_done(sys, "one job");
	assert_no_failures();
	ck_assert_int_eq(o.submit_rc, 0);
	ck_assert_int_eq(atomic_load(&o.got), 1);
	ck_assert_uint_eq(o.done.job.id, o.job.id);
	ck_assert_uint_eq(o.done.tag, 0xfeedu);
	ck_assert_int_eq(o.done.result, 42);
	ck_assert_ptr_eq(o.done.arg, &cookie);
	ck_assert_msg(!pthread_equal(job_thread, o.thread), "the job ran on the actor's worker");
}
END_TEST

START_TEST(a_negative_result_reaches_the_message)
{
	actor_system_t *sys = system_new(1);
	struct one o = {.fn = return_arg, .arg = (void *)(intptr_t)-EIO, .tag = 7};
	actor_ref_t a = spawn_ok(sys, NULL, one_fn, &o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	end_when_done(sys, "negative result");
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&o.got), 1);
	ck_assert_int_eq(o.done.result, -EIO);
	ck_assert_uint_eq(o.done.tag, 7);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Ten thousand jobs
 */

#define MANY_ACTORS 8

static atomic_long many_ran;

static int64_t count_job(void *arg)
{
	atomic_fetch_add(&many_ran, 1);
	return (int64_t)(intptr_t)arg * 3;
}

struct many {
	unsigned jobs; /* this actor's */
	uint8_t *seen; /* per tag */
	unsigned got;
	atomic_int done;
};

static void many_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct many *m = state;
	if (msg->type == MSG_GO) {
		for (unsigned i = 0; i < m->jobs; i++) {
			actor_job_t j;
			actor_job_opts_t opts = {.tag = i};
			int rc = actor_job_submit(ctx, &opts, count_job, (void *)(intptr_t)i, &j);
			if (rc != 0)
				NOTE_FAIL("submit %u: %d", i, rc);
		}
		return;
	}
	actor_job_done_t d;
	if (!job_done(msg, &d))
		return;
	if (d.tag >= m->jobs || m->seen[d.tag]++ != 0 || d.result != (int64_t)d.tag * 3 ||
	    d.arg != (void *)(intptr_t)d.tag)
		NOTE_FAIL("job %" PRIu64 ": result %" PRId64 ", seen before: %d", d.tag, d.result,
		          d.tag < m->jobs ? m->seen[d.tag] - 1 : -1);
	if (++m->got == m->jobs) {
		atomic_store(&m->done, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(ten_thousand_jobs_from_several_actors_on_two_workers_come_back_once_each)
{
	unsigned total = (unsigned)test_param(1, "POOL_JOBS", POOL_JOBS_DEFAULT);
	actor_system_t *sys = system_new(2);
	struct many m[MANY_ACTORS];
	for (unsigned i = 0; i < MANY_ACTORS; i++) {
		m[i] = (struct many){.jobs = total / MANY_ACTORS + (i < total % MANY_ACTORS)};
		m[i].seen = calloc(m[i].jobs + 1, 1);
		ck_assert_ptr_nonnull(m[i].seen);
		atomic_init(&m[i].done, 0);
		actor_ref_t a = spawn_on(sys, i % 2, many_fn, &m[i]);
		send_ok(sys, a, MSG_GO, NULL, 0);
	}
	end_when_done(sys, "ten thousand jobs");
	assert_no_failures();
	unsigned got = 0;
	for (unsigned i = 0; i < MANY_ACTORS; i++) {
		ck_assert_int_eq(atomic_load(&m[i].done), 1);
		got += m[i].got;
		free(m[i].seen);
	}
	ck_assert_uint_eq(got, total);
	ck_assert_int_eq(atomic_load(&many_ran), total);
}
END_TEST

/* The counters, once the system has stopped: nothing in flight, nothing dropped. */
START_TEST(the_worker_statistics_count_jobs_in_flight_and_none_dropped)
{
	actor_system_t *sys = system_new(2);
	struct gated g = {0};
	struct gated_arg ga = {.g = &g, .result = 1};
	struct one o = {.fn = gated_job, .arg = &ga};
	actor_ref_t a = spawn_on(sys, 1, one_fn, &o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&g.started) == 1, TEST_WATCHDOG));
	assert_eventually(jobs_in_flight(sys) == 1, 5);
	gate_open(&g.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&o.got) == 1, TEST_WATCHDOG));
	assert_eventually(jobs_in_flight(sys) == 0, 5);
	end_when_done(sys, "statistics");
	ck_assert_int_eq(o.done.result, 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A blocked pool thread leaves its worker free
 */

/* The job blocks until the test opens its gate, which it does only once the timer set after
 * the submission has fired and five messages sent after it have been handled: if the blocked
 * pool thread held the worker up, none of them would be, and the watchdog would end the test.
 * How late they are is measured, not asserted: the figure belongs to bench/timer_lateness
 * (the *_job_blocking metrics), as the machine may be busy. */
struct blocked {
	actor_timer_t timer;
	uint64_t timer_due, timer_late, ping_late_max;
	unsigned pings;
	atomic_int gate; /* opened by the test: the job ends */
	atomic_int job_started, job_finished, timer_fired, pings_seen, done;
	atomic_int overlapped; /* -1: the timer or a ping came after the job had ended */
	uint64_t job_ns;
};

static int64_t gated_block_job(void *arg)
{
	struct blocked *b = arg;
	atomic_store(&b->job_started, 1);
	bool opened = gate_wait(&b->gate);
	atomic_store(&b->job_finished, 1);
	return opened ? 0 : -ETIMEDOUT;
}

static void blocked_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct blocked *b = state;
	uint64_t now = now_ns();
	if (msg->type == MSG_GO) {
		actor_job_t j;
		b->job_ns = now;
		if (actor_job_submit(ctx, NULL, gated_block_job, b, &j) != 0)
			NOTE_FAIL("submit");
		b->timer_due = now_ns() + 20 * MS;
		if (actor_timer_start(ctx, actor_self(ctx), 20 * MS, 0, 0, &b->timer) != 0)
			NOTE_FAIL("timer");
		return;
	}
	if (msg->type == ACTOR_MSG_TIMER) {
		b->timer_late = now - b->timer_due;
		if (atomic_load(&b->job_finished))
			atomic_store(&b->overlapped, -1);
		atomic_store(&b->timer_fired, 1);
		return;
	}
	if (msg->type == MSG_PING) {
		uint64_t sent = msg_u64(msg);
		if (now - sent > b->ping_late_max)
			b->ping_late_max = now - sent;
		if (atomic_load(&b->job_finished))
			atomic_store(&b->overlapped, -1);
		b->pings++;
		atomic_store(&b->pings_seen, (int)b->pings);
		return;
	}
	actor_job_done_t d;
	if (job_done(msg, &d)) {
		if (d.result != 0)
			NOTE_FAIL("the job ended with %" PRId64, d.result);
		b->job_ns = now - b->job_ns;
		atomic_store(&b->done, 1);
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_blocked_job_delays_no_timer_or_message_on_its_worker)
{
	actor_system_t *sys = system_new(1);
	struct blocked b = {0};
	actor_ref_t a = spawn_ok(sys, NULL, blocked_fn, &b);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&b.job_started), TEST_WATCHDOG));
	bool fired = WAIT_UNTIL(atomic_load(&b.timer_fired), TEST_WATCHDOG);
	int handled = 0;
	for (int i = 1; fired && i <= 5; i++) {
		send_u64(sys, a, MSG_PING, now_ns());
		if (!WAIT_UNTIL(atomic_load(&b.pings_seen) == i, TEST_WATCHDOG))
			break;
		handled = i;
	}
	bool still_blocked = !atomic_load(&b.job_finished);
	gate_open(&b.gate);
	end_when_done(sys, "blocked pool thread");
	assert_no_failures();
	ck_assert_msg(fired, "the timer never fired while the job blocked");
	ck_assert_msg(handled == 5, "%d of 5 messages handled while the job blocked", handled);
	ck_assert_msg(still_blocked, "the job ended before the test let it");
	ck_assert_int_eq(atomic_load(&b.overlapped), 0);
	ck_assert_int_eq(atomic_load(&b.done), 1);
	fprintf(stderr, "timer late by %.3f ms, messages by %.3f ms at most, job %.0f ms\n",
	        (double)b.timer_late / 1e6, (double)b.ping_late_max / 1e6, (double)b.job_ns / 1e6);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Pools
 */

START_TEST(a_saturated_pool_does_not_delay_the_jobs_of_another_pool)
{
	actor_system_t *sys = system_new(2);
	ck_assert_int_eq(actor_pool_create(sys, "slow", 2), 0);
	ck_assert_int_eq(actor_pool_create(sys, "fast", 1), 0);
	struct gated g = {0};
	struct gated_arg ga = {.g = &g, .result = 5};
	struct one slow[6];
	for (int i = 0; i < 6; i++) {
		slow[i] = (struct one){.pool = "slow", .fn = gated_job, .arg = &ga};
		send_ok(sys, spawn_ok(sys, NULL, one_fn, &slow[i]), MSG_GO, NULL, 0);
	}
	ck_assert(WAIT_UNTIL(atomic_load(&g.started) == 2, TEST_WATCHDOG));
	/* "slow" is busy with two and has four waiting; "fast" and "default" are not held up. */
	struct one fast = {.pool = "fast", .fn = return_arg, .arg = (void *)1};
	struct one dflt = {.fn = return_arg, .arg = (void *)2};
	double t0 = now_sec();
	send_ok(sys, spawn_ok(sys, NULL, one_fn, &fast), MSG_GO, NULL, 0);
	send_ok(sys, spawn_ok(sys, NULL, one_fn, &dflt), MSG_GO, NULL, 0);
	ck_assert(
	    WAIT_UNTIL(atomic_load(&fast.got) == 1 && atomic_load(&dflt.got) == 1, TEST_WATCHDOG));
	double waited = now_sec() - t0;
	/* Still saturated when both came back: they did not wait for a "slow" thread. */
	ck_assert_int_eq(atomic_load(&g.finished), 0);
	ck_assert_int_eq(atomic_load(&g.max_running), 2);
	gate_open(&g.gate);
	end_when_done(sys, "starvation");
	assert_no_failures();
	fprintf(stderr, "other pools' jobs back in %.3f ms beside a saturated pool\n",
	        waited * 1e3);
	ck_assert_int_eq(fast.done.result, 1);
	ck_assert_int_eq(dflt.done.result, 2);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(slow[i].done.result, 5);
	ck_assert_int_eq(atomic_load(&g.max_running), 2);
}
END_TEST

/* The threads of this process (/proc/self/task). */
static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

START_TEST(the_default_pool_runs_as_many_jobs_at_once_as_the_configured_threads)
{
	/* The threads there are without a system: a sanitizer's own start with the first system
	 * (ThreadSanitizer's background thread, say), so one is made and freed first. */
	actor_system_free(system_new(1));
	int base = count_threads();
	actor_system_t *sys = system_new_cfg(&(actor_config_t){.workers = 2, .pool_threads = 3});
	struct gated g = {0};
	struct gated_arg ga = {.g = &g, .result = 0};
	struct one o[8];
	for (int i = 0; i < 8; i++) {
		o[i] = (struct one){.fn = gated_job, .arg = &ga};
		send_ok(sys, spawn_ok(sys, NULL, one_fn, &o[i]), MSG_GO, NULL, 0);
	}
	ck_assert(WAIT_UNTIL(atomic_load(&g.started) == 3, TEST_WATCHDOG));
	gate_open(&g.gate);
	end_when_done(sys, "pool size");
	assert_no_failures();
	ck_assert_int_eq(atomic_load(&g.finished), 8);
	ck_assert_int_eq(atomic_load(&g.max_running), 3);
	/* Regression: the pool's threads were detached and could still be exiting when the
	 * system's free returned, and a fork then (Check forks each test) was a fork of a
	 * multi-threaded process, which ThreadSanitizer refuses. Now they are joined. */
	ck_assert_int_eq(count_threads(), base);
}
END_TEST

START_TEST(pools_are_made_once_with_valid_names_and_sizes)
{
	char name[ACTOR_POOL_NAME_MAX + 2];
	memset(name, 'p', sizeof(name));
	name[ACTOR_POOL_NAME_MAX + 1] = '\0';
	actor_system_t *bad = NULL;
	actor_config_t too_many = {.workers = 1, .pool_threads = ACTOR_POOL_THREADS_MAX + 1};
	ck_assert_int_eq(actor_system_create(&too_many, &bad), -EINVAL);
	ck_assert_ptr_null(bad);

	actor_system_t *sys = system_new(1);
	ck_assert_int_eq(actor_pool_create(NULL, "x", 1), -EINVAL);
	ck_assert_int_eq(actor_pool_create(sys, NULL, 1), -EINVAL);
	ck_assert_int_eq(actor_pool_create(sys, "", 1), -EINVAL);
	ck_assert_int_eq(actor_pool_create(sys, name, 1), -EINVAL); /* one byte too long */
	ck_assert_int_eq(actor_pool_create(sys, "x", 0), -EINVAL);
	ck_assert_int_eq(actor_pool_create(sys, "x", ACTOR_POOL_THREADS_MAX + 1), -EINVAL);
	ck_assert_int_eq(actor_pool_create(sys, "default", 2), -EEXIST);
	name[ACTOR_POOL_NAME_MAX] = '\0';
	ck_assert_int_eq(actor_pool_create(sys, name, 1), 0); /* the longest name */
	ck_assert_int_eq(actor_pool_create(sys, name, 1), -EEXIST);
	ck_assert_int_eq(actor_pool_create(sys, "db", 2), 0);
	struct one o = {.pool = name, .fn = return_arg, .arg = (void *)3};
	send_ok(sys, spawn_ok(sys, NULL, one_fn, &o), MSG_GO, NULL, 0);
	end_when_done(sys, "pool names");
	assert_no_failures();
	ck_assert_int_eq(o.done.result, 3);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Cancel
 */

struct cancels {
	struct gated g;
	struct gated_arg running_arg, queued_arg;
	actor_job_t running, queued, last;
	int rc_queued, rc_queued_again, rc_running, rc_none, rc_last, rc_finished;
	int rc_cancel_null;
	int64_t result[3]; /* by tag */
	unsigned order[3], got;
	atomic_int submitted, cancelled, finished;
};

static void cancels_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct cancels *c = state;
	actor_job_opts_t one = {.pool = "one"};
	if (msg->type == MSG_GO) {
		one.tag = 0;
		actor_job_submit(ctx, &one, gated_job, &c->running_arg, &c->running);
		one.tag = 1;
		actor_job_submit(ctx, &one, gated_job, &c->queued_arg, &c->queued);
		one.tag = 2;
		actor_job_submit(ctx, &one, gated_job, &c->queued_arg, &c->last);
		atomic_store(&c->submitted, 1);
		return;
	}
	if (msg->type == MSG_PING) { /* the first job is running, the others wait behind it */
		c->rc_queued = actor_job_cancel(ctx, c->queued);
		c->rc_queued_again = actor_job_cancel(ctx, c->queued);
		c->rc_running = actor_job_cancel(ctx, c->running);
		c->rc_none = actor_job_cancel(ctx, (actor_job_t){0});
		c->rc_cancel_null = actor_job_cancel(NULL, c->last);
		atomic_store(&c->cancelled, 1);
		return;
	}
	actor_job_done_t d;
	if (!job_done(msg, &d) || d.tag > 2)
		return;
	c->result[d.tag] = d.result;
	c->order[c->got++] = (unsigned)d.tag;
	if (c->got == 3) {
		c->rc_finished = actor_job_cancel(ctx, c->running);
		c->rc_last = actor_job_cancel(ctx, c->last);
		atomic_store(&c->finished, 1);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(cancel_stops_a_waiting_job_but_not_a_running_or_finished_one)
{
	actor_system_t *sys = system_new(2);
	ck_assert_int_eq(actor_pool_create(sys, "one", 1), 0);
	struct cancels c = {.running_arg = {.g = &c.g, .result = 10},
	                    .queued_arg = {.g = &c.g, .result = 11}};
	actor_ref_t a = spawn_ok(sys, NULL, cancels_fn, &c);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.g.started) == 1, TEST_WATCHDOG));
	send_ok(sys, a, MSG_PING, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&c.cancelled), TEST_WATCHDOG));
	gate_open(&c.g.gate);
	end_when_done(sys, "cancel");
	assert_no_failures();
	ck_assert_int_eq(c.rc_queued, 0);
	ck_assert_int_eq(c.rc_queued_again, -ESRCH);
	ck_assert_int_eq(c.rc_running, -EBUSY);
	ck_assert_int_eq(c.rc_none, -ESRCH);
	ck_assert_int_eq(c.rc_cancel_null, -EINVAL);
	ck_assert_int_eq(c.rc_finished, -ESRCH);
	ck_assert_int_eq(c.rc_last, -ESRCH);
	ck_assert_int_eq(c.got, 3);
	ck_assert_uint_eq(c.order[0], 1); /* the cancel's message is sent at once */
	ck_assert_int_eq(c.result[1], -ECANCELED);
	ck_assert_int_eq(c.result[0], 10);
	ck_assert_int_eq(c.result[2], 11);
	ck_assert_int_eq(atomic_load(&c.g.started), 2); /* the cancelled job never ran */
}
END_TEST

/* An actor on worker 1 cancels, with the handle it was sent, a job submitted on worker 0. */
struct far_cancel {
	actor_job_t job;
	int rc;
	atomic_int done;
};

static void far_cancel_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct far_cancel *f = state;
	(void)msg;
	f->rc = actor_job_cancel(ctx, f->job);
	atomic_store(&f->done, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(cancel_from_another_worker_is_exdev)
{
	actor_system_t *sys = system_new(2);
	ck_assert_int_eq(actor_pool_create(sys, "one", 1), 0);
	struct gated g = {0};
	struct gated_arg ga = {.g = &g, .result = 4};
	struct one o = {.pool = "one", .fn = gated_job, .arg = &ga};
	actor_ref_t a = spawn_on(sys, 0, one_fn, &o);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&g.started) == 1, TEST_WATCHDOG));
	struct far_cancel f = {.job = o.job}; /* written before the job started: ordered */
	send_ok(sys, spawn_on(sys, 1, far_cancel_fn, &f), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&f.done), TEST_WATCHDOG));
	gate_open(&g.gate);
	end_when_done(sys, "far cancel");
	assert_no_failures();
	ck_assert_int_eq(f.rc, -EXDEV);
	ck_assert_int_eq(o.done.result, 4);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Misuse
 */

struct misuse {
	int rc_null_ctx, rc_null_fn, rc_null_out, rc_unknown, rc_cancel_null;
	atomic_int done;
};

static void misuse_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct misuse *m = state;
	actor_job_t j;
	(void)msg;
	m->rc_null_ctx = actor_job_submit(NULL, NULL, return_arg, NULL, &j);
	m->rc_null_fn = actor_job_submit(ctx, NULL, NULL, NULL, &j);
	m->rc_null_out = actor_job_submit(ctx, NULL, return_arg, NULL, NULL);
	m->rc_unknown =
	    actor_job_submit(ctx, &(actor_job_opts_t){.pool = "nope"}, return_arg, NULL, &j);
	m->rc_cancel_null = actor_job_cancel(NULL, (actor_job_t){1});
	atomic_store(&m->done, 1);
	/* Nothing was submitted: a JOB_DONE here would be a failure (one_fn would note it). */
}

START_TEST(submit_and_cancel_refuse_bad_arguments_and_then_send_nothing)
{
	actor_system_t *sys = system_new(1);
	struct misuse m = {0};
	actor_ref_t a = spawn_ok(sys, NULL, misuse_fn, &m);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&m.done), TEST_WATCHDOG));
	actor_job_t j = {0};
	ck_assert_int_eq(actor_job_submit(NULL, NULL, return_arg, NULL, &j), -EINVAL);
	ck_assert_int_eq(actor_job_cancel(NULL, j), -EINVAL);
	ck_assert_int_eq(m.rc_null_ctx, -EINVAL);
	ck_assert_int_eq(m.rc_null_fn, -EINVAL);
	ck_assert_int_eq(m.rc_null_out, -EINVAL);
	ck_assert_int_eq(m.rc_unknown, -ENOENT);
	ck_assert_int_eq(m.rc_cancel_null, -EINVAL);
	ck_assert_uint_eq(jobs_in_flight(sys), 0);
	actor_stats_t before = stats_of(sys);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "misuse");
	actor_stats_t after = stats_of(sys);
	actor_system_free(sys);
	ck_assert_uint_eq(after.delivered, before.delivered); /* no JOB_DONE came */
	ck_assert_uint_eq(after.dead_letters, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bound while jobs are in flight
 */

struct mover {
	struct gated g;
	struct gated_arg ga;
	int phase;          /* 1: job in flight, 2: result back */
	unsigned away[3];   /* pings handled off worker 0, per phase */
	atomic_int got_job; /* JOB_DONE handled */
	atomic_int moved;   /* a ping handled off worker 0 in phase 2 */
};

static void mover_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct mover *m = state;
	if (msg->type == MSG_GO) {
		actor_job_t j;
		if (actor_job_submit(ctx, NULL, gated_job, &m->ga, &j) != 0)
			NOTE_FAIL("submit");
		m->phase = 1;
		return;
	}
	if (msg->type == MSG_PING) {
		if (actor_ctx_worker(ctx) != 0 && m->away[m->phase]++ == 0 && m->phase == 2)
			atomic_store(&m->moved, 1);
		actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_PONG, NULL, 0);
		return;
	}
	if (msg->type == MSG_STOP_NOW) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	actor_job_done_t d;
	if (job_done(msg, &d)) {
		m->phase = 2;
		atomic_store(&m->got_job, 1);
	}
}

/* On worker 1: plays ping-pong with the mover (each ping wakes it from worker 1), `n` rounds,
 * or until `until` is set (n = 0). */
struct pinger {
	actor_ref_t mover;
	unsigned left;
	atomic_int *until;
	atomic_int rounds_done;
};

static void pinger_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct pinger *p = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	if (msg->type == MSG_GO) {
		p->left = (unsigned)msg_u64(msg);
	} else if (msg->type == MSG_PONG) {
		bool done = p->left == 0 ? atomic_load(p->until) : --p->left == 0;
		if (done) {
			atomic_fetch_add(&p->rounds_done, 1);
			return;
		}
	} else if (msg->type == MSG_STOP_NOW) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	actor_send(sys, p->mover, MSG_PING, NULL, 0);
}

static int place_on_0(void *arg, const actor_place_info_t *info)
{
	(void)arg;
	(void)info;
	return 0;
}

START_TEST(an_actor_stays_on_its_worker_while_its_jobs_are_in_flight_and_may_move_after)
{
	actor_system_t *sys = system_new(2);
	struct mover m = {.ga = {.g = &m.g, .result = 0}};
	actor_spawn_opts_t movable = {.placement = ACTOR_PLACE_CALLBACK, .place = place_on_0};
	actor_ref_t a = spawn_ok(sys, &movable, mover_fn, &m);
	struct pinger p = {.mover = a, .until = &m.moved};
	actor_ref_t b = spawn_on(sys, 1, pinger_fn, &p);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&m.g.started) == 1, TEST_WATCHDOG));
	send_u64(sys, b, MSG_GO, 256); /* worker 1 keeps waking it: it would follow, but is bound */
	ck_assert(WAIT_UNTIL(atomic_load(&p.rounds_done) == 1, TEST_WATCHDOG));
	ck_assert_uint_eq(worker_of(sys, a), 0);
	gate_open(&m.g.gate);
	ck_assert(WAIT_UNTIL(atomic_load(&m.got_job), TEST_WATCHDOG));
	/* The same conversation, now free to follow it (after a cooldown, if it was ever moved
	 * before): until it does. */
	send_u64(sys, b, MSG_GO, 0);
	ck_assert_msg(WAIT_UNTIL(atomic_load(&p.rounds_done) == 2, TEST_WATCHDOG),
	              "never moved once its result was back");
	send_ok(sys, a, MSG_STOP_NOW, NULL, 0);
	send_ok(sys, b, MSG_STOP_NOW, NULL, 0);
	end_when_done(sys, "bound while in flight");
	assert_no_failures();
	ck_assert_uint_eq(m.away[1], 0);
	ck_assert_msg(m.away[2] > 0, "never moved once its result was back");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * An owner that stops; shutdown with jobs in flight
 */

static atomic_int drops;

static void count_drop(void *arg)
{
	(void)arg;
	atomic_fetch_add(&drops, 1);
}

struct quitter {
	struct gated g;
	struct gated_arg ga;
	atomic_int submitted, delivered;
};

static void quitter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct quitter *q = state;
	if (msg->type == MSG_GO) {
		actor_job_opts_t opts = {.pool = "one", .drop = count_drop};
		for (int i = 0; i < 3; i++) {
			actor_job_t j;
			if (actor_job_submit(ctx, &opts, gated_job, &q->ga, &j) == 0)
				atomic_fetch_add(&q->submitted, 1);
		}
		return;
	}
	if (msg->type == MSG_STOP_NOW) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	atomic_fetch_add(&q->delivered, 1);
}

START_TEST(a_stopped_actor_s_waiting_jobs_are_cancelled_and_its_running_one_dropped)
{
	actor_system_t *sys = system_new(2);
	ck_assert_int_eq(actor_pool_create(sys, "one", 1), 0);
	struct quitter q = {.ga = {.g = &q.g, .result = 0}};
	actor_ref_t a = spawn_ok(sys, NULL, quitter_fn, &q);
	send_ok(sys, a, MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&q.g.started) == 1, TEST_WATCHDOG));
	send_ok(sys, a, MSG_STOP_NOW, NULL, 0);
	wait_stopped(sys, a);
	assert_eventually(atomic_load(&drops) == 2, 5); /* the two waiting, as it stops */
	assert_eventually(jobs_dropped(sys) == 3, 5);
	ck_assert_int_eq(atomic_load(&drops), 2); /* not the running one: it runs on */
	gate_open(&q.g.gate);
	assert_eventually(atomic_load(&drops) == 3, 5); /* the running one, once it ends */
	assert_eventually(jobs_in_flight(sys) == 0, 5);
	actor_stats_t st = stats_of(sys);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	end_when_done(sys, "owner stopped");
	ck_assert_int_eq(atomic_load(&q.submitted), 3);
	ck_assert_int_eq(atomic_load(&q.delivered), 0);
	ck_assert_int_eq(atomic_load(&q.g.started), 1);
	ck_assert_uint_eq(st.dead_letters, 0);
}
END_TEST

/* Every job submitted is delivered, dead-lettered or dropped, and its heap argument freed exactly
 * once by whichever of those happened (AddressSanitizer tells a leak or a double free). */
#define BUSY_ACTORS 4
#define BUSY_JOBS 300

static atomic_long busy_submitted, busy_delivered, busy_dead, busy_dropped;

static int64_t short_sleep_job(void *arg)
{
	unsigned *us = arg;
	usleep(*us);
	return (int64_t)*us;
}

static void busy_drop(void *arg)
{
	atomic_fetch_add(&busy_dropped, 1);
	free(arg);
}

static void busy_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	(void)arg;
	(void)to;
	if (msg->type != ACTOR_MSG_JOB_DONE)
		return;
	actor_job_done_t d;
	memcpy(&d, actor_msg_data((actor_msg_t *)msg), sizeof(d));
	free(d.arg);
	atomic_fetch_add(&busy_dead, 1);
}

static void busy_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_GO) {
		for (unsigned i = 0; i < BUSY_JOBS; i++) {
			unsigned *us = malloc(sizeof(*us));
			if (us == NULL)
				continue;
			*us = i % 3 == 0 ? 2000 : i % 17;
			actor_job_opts_t opts = {.pool = i % 5 == 0 ? "slow" : NULL,
			                         .drop = busy_drop};
			actor_job_t j;
			if (actor_job_submit(ctx, &opts, short_sleep_job, us, &j) == 0)
				atomic_fetch_add(&busy_submitted, 1);
			else
				free(us);
		}
		return;
	}
	actor_job_done_t d;
	if (job_done(msg, &d)) {
		free(d.arg);
		atomic_fetch_add(&busy_delivered, 1);
	}
}

START_TEST(shutdown_with_jobs_in_flight_accounts_for_every_job)
{
	actor_config_t cfg = {.workers = 2, .dead_letter = busy_dead_letter};
	actor_system_t *sys = system_new_cfg(&cfg);
	ck_assert_int_eq(actor_pool_create(sys, "slow", 1), 0);
	for (int i = 0; i < BUSY_ACTORS; i++)
		send_ok(sys, spawn_ok(sys, NULL, busy_fn, NULL), MSG_GO, NULL, 0);
	ck_assert(
	    WAIT_UNTIL(atomic_load(&busy_submitted) == BUSY_ACTORS * BUSY_JOBS, TEST_WATCHDOG));
	/* Some results back, many jobs still waiting or running. */
	ck_assert(
	    WAIT_UNTIL(atomic_load(&busy_delivered) >= BUSY_ACTORS * BUSY_JOBS / 4, TEST_WATCHDOG));
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown in flight");
	uint64_t dropped = jobs_dropped(sys);
	uint64_t in_flight = jobs_in_flight(sys);
	actor_system_free(sys);
	long sub = atomic_load(&busy_submitted), del = atomic_load(&busy_delivered),
	     dead = atomic_load(&busy_dead), drp = atomic_load(&busy_dropped);
	fprintf(stderr, "%ld submitted: %ld delivered, %ld dead letters, %ld dropped\n", sub, del,
	        dead, drp);
	assert_no_failures();
	ck_assert_uint_eq(in_flight, 0);
	ck_assert_int_eq(drp, (long)dropped);
	ck_assert_int_eq(del + dead + drp, sub);
	ck_assert_int_gt(drp, 0); /* the shutdown did catch jobs in flight */
}
END_TEST

/* At shutdown a worker waits (within its drain) for the jobs still running. */
static atomic_int long_job_started, long_job_done;

static int64_t sleep_300ms_job(void *arg)
{
	(void)arg;
	atomic_store(&long_job_started, 1);
	sleep_ms(300);
	atomic_store(&long_job_done, 1);
	return 0;
}

struct starter {
	actor_job_fn *fn;
};

static void starter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct starter *s = state;
	actor_job_t j;
	actor_job_opts_t opts = {.drop = count_drop};
	if (msg->type == MSG_GO && actor_job_submit(ctx, &opts, s->fn, NULL, &j) != 0)
		NOTE_FAIL("submit");
}

START_TEST(shutdown_waits_for_a_running_job_within_the_drain_time)
{
	actor_system_t *sys = system_new(1);
	struct starter s = {.fn = sleep_300ms_job};
	send_ok(sys, spawn_ok(sys, NULL, starter_fn, &s), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&long_job_started), TEST_WATCHDOG)); /* running */
	double t0 = now_sec();
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "drain");
	double ran = now_sec() - t0;
	ck_assert_int_eq(atomic_load(&long_job_done), 1);
	ck_assert_int_eq(atomic_load(&drops), 1); /* its result dropped on the worker, in time */
	ck_assert_uint_eq(jobs_dropped(sys), 1);
	actor_system_free(sys);
	ck_assert_msg(ran < 5.0, "run took %.3f s", ran);
}
END_TEST

/* A job that outlasts the drain and the bounded wait at free: actor_system_free returns, and
 * the job's thread frees the job when it ends. Nothing here is on the freed system. */
static atomic_int outliving_started, outliving_done, outliving_gate;

static int64_t outliving_job(void *arg) /* runs until the test has freed the system */
{
	(void)arg;
	atomic_store(&outliving_started, 1);
	gate_wait(&outliving_gate);
	atomic_store(&outliving_done, 1);
	return 0;
}

START_TEST(a_job_outliving_its_system_is_freed_by_its_thread)
{
	actor_system_t *sys =
	    system_new_cfg(&(actor_config_t){.workers = 1, .shutdown_drain_ms = -1});
	struct starter s = {.fn = outliving_job};
	send_ok(sys, spawn_ok(sys, NULL, starter_fn, &s), MSG_GO, NULL, 0);
	ck_assert(WAIT_UNTIL(atomic_load(&outliving_started), TEST_WATCHDOG)); /* running */
	double t0 = now_sec();
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "no drain");
	actor_system_free(sys);
	double freed = now_sec() - t0;
	ck_assert_int_eq(atomic_load(&outliving_done), 0);
	fprintf(stderr, "actor_system_free returned after %.3f s\n", freed);
	ck_assert_msg(freed >= ACTOR_POOL_STOP_MS / 1000.0 * 0.9, "%.3f s", freed);
	gate_open(&outliving_gate);
	ck_assert(WAIT_UNTIL(atomic_load(&drops) == 1, TEST_WATCHDOG));
	ck_assert_int_eq(atomic_load(&outliving_done), 1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Suite
 */

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	struct {
		const char *name;
		const TTest *test;
		double timeout;
	} cases[] = {
	    {"one job", a_job_runs_on_a_pool_thread_and_its_result_comes_back_with_its_tag,
	     TEST_TIMEOUT},
	    {"negative result", a_negative_result_reaches_the_message, TEST_TIMEOUT},
	    {"many", ten_thousand_jobs_from_several_actors_on_two_workers_come_back_once_each,
	     TEST_TIMEOUT_STRESS},
	    {"statistics", the_worker_statistics_count_jobs_in_flight_and_none_dropped,
	     TEST_TIMEOUT},
	    {"blocked thread",
	     a_blocked_job_delays_no_timer_or_message_on_its_worker, TEST_TIMEOUT},
	    {"starvation", a_saturated_pool_does_not_delay_the_jobs_of_another_pool, TEST_TIMEOUT},
	    {"pool size", the_default_pool_runs_as_many_jobs_at_once_as_the_configured_threads,
	     TEST_TIMEOUT},
	    {"pool names", pools_are_made_once_with_valid_names_and_sizes, TEST_TIMEOUT},
	    {"cancel", cancel_stops_a_waiting_job_but_not_a_running_or_finished_one, TEST_TIMEOUT},
	    {"far cancel", cancel_from_another_worker_is_exdev, TEST_TIMEOUT},
	    {"misuse", submit_and_cancel_refuse_bad_arguments_and_then_send_nothing, TEST_TIMEOUT},
	    {"bound", an_actor_stays_on_its_worker_while_its_jobs_are_in_flight_and_may_move_after,
	     TEST_TIMEOUT},
	    {"owner stopped",
	     a_stopped_actor_s_waiting_jobs_are_cancelled_and_its_running_one_dropped,
	     TEST_TIMEOUT},
	    {"shutdown", shutdown_with_jobs_in_flight_accounts_for_every_job, TEST_TIMEOUT_STRESS},
	    {"drain", shutdown_waits_for_a_running_job_within_the_drain_time, TEST_TIMEOUT},
	    {"outliving", a_job_outliving_its_system_is_freed_by_its_thread, TEST_TIMEOUT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_new(cases[i].name, cases[i].timeout);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

TEST_MAIN(pool_suite)
