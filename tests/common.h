/* common.h: helpers shared by the Check suites: stress parameters from argv or the environment,
 * time limits that scale with CK_TIMEOUT_MULTIPLIER, a watchdog that turns a hang into a test
 * failure, systems with N workers, running a function inside an actor, and the suite main.
 *
 * Include this file first: it asks for the GNU extensions (CPU_COUNT, pthread_kill) before any
 * system header is read.
 */
#ifndef TESTS_COMMON_H
#define TESTS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"

/* Time limits for test cases, in seconds before CK_TIMEOUT_MULTIPLIER. Stress cases get the
 * long one: sanitizer builds run them 5-20 times slower. */
#define TEST_TIMEOUT 30
#define TEST_TIMEOUT_STRESS 60

/* The watchdog fires this long before Check would kill the test, so that a hang is reported
 * with what was stuck and the system is shut down, rather than killed without a word. */
#define TEST_WATCHDOG (TEST_TIMEOUT - 10)
#define TEST_WATCHDOG_STRESS (TEST_TIMEOUT_STRESS - 15)

static int test_argc;
static char **test_argv;

/* ---------------------------------------------------------------------------------------------
 * Parameters and time
 */

/* The factor Check applies to every test case's timeout; our own time limits follow it. */
static inline double test_scale(void)
{
	const char *s = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = s != NULL ? strtod(s, NULL) : 1.0;
	return f > 0 ? f : 1.0;
}

/* A stress parameter: positional argument `pos` (1-based) of the test program, else the
 * environment variable `env`, else `dflt`. `./tests/test_mailbox 8 100000` or
 * `MAILBOX_PRODUCERS=8 make check`. */
static inline unsigned long test_param(int pos, const char *env, unsigned long dflt)
{
	const char *s = NULL;
	if (pos > 0 && pos < test_argc)
		s = test_argv[pos];
	else if (env != NULL)
		s = getenv(env);
	if (s == NULL || *s == '\0')
		return dflt;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return (*end == '\0' && v > 0) ? v : dflt;
}

static inline double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double cpu_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* CPUs this process may run on: the default worker count. */
static inline unsigned test_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

/* Polls `cond` every 200 µs until it holds or the clock (now_sec) reaches `deadline`; yields
 * its last value. */
#define WAIT_UNTIL_DEADLINE(cond, deadline)                                                        \
	({                                                                                         \
		double wait_end_ = (deadline);                                                     \
		bool wait_ok_;                                                                     \
		while (!(wait_ok_ = (cond)) && now_sec() < wait_end_)                              \
			usleep(200);                                                               \
		wait_ok_;                                                                          \
	})

/* The same for `seconds` from now, scaled by CK_TIMEOUT_MULTIPLIER. */
#define WAIT_UNTIL(cond, seconds) WAIT_UNTIL_DEADLINE(cond, now_sec() + (seconds)*test_scale())

/* A gate: a behaviour waits at it, holding its worker, until the test thread opens it. Lets
 * a test fill mailboxes while the receiver is known to be busy. False if it never opened. */
static inline bool gate_wait(atomic_int *gate)
{
	return WAIT_UNTIL(atomic_load_explicit(gate, memory_order_acquire), TEST_WATCHDOG);
}

static inline void gate_open(atomic_int *gate)
{
	atomic_store_explicit(gate, 1, memory_order_release);
}

/* Fails the test unless `cond` holds within `seconds` (scaled). */
#define assert_eventually(cond, seconds)                                                           \
	ck_assert_msg(WAIT_UNTIL(cond, seconds), "not true within %g s: %s", (double)(seconds),    \
	              #cond)

/* Asserts an atomic counter's value, naming the counter rather than the expansion of
 * atomic_load in the failure message. */
#define assert_atomic_eq(var, expected)                                                            \
	do {                                                                                       \
		long long got_ = (long long)atomic_load(&(var));                                   \
		long long want_ = (long long)(expected);                                           \
		ck_assert_msg(got_ == want_, "%s is %lld, expected %lld", #var, got_, want_);      \
	} while (0)

/* ---------------------------------------------------------------------------------------------
 * Watchdog: a thread that, unless stopped in time, reports what hung, shuts the system down
 * so that actor_system_run returns and the test can fail with a message, and aborts the
 * process if even that does not help (for CK_FORK=no runs, where Check has no timeout).
 */

struct watchdog {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	atomic_bool fired;
	double seconds;
	actor_system_t *sys;
	const char *what;
	void (*on_fire)(void *arg); /* optional: called first when the watchdog fires */
	void *on_fire_arg;
	/* Optional: a counter the test advances as it goes. Then the watchdog fires only when it
	 * stands still for `seconds`: it bounds a hang, not the speed of a busy machine. */
	const atomic_ullong *progress;
};

static inline bool watchdog_wait(struct watchdog *wd, double seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
	ts.tv_sec = (time_t)end;
	ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
	pthread_mutex_lock(&wd->lock);
	while (!wd->stop && pthread_cond_timedwait(&wd->cond, &wd->lock, &ts) != ETIMEDOUT)
		;
	bool stopped = wd->stop;
	pthread_mutex_unlock(&wd->lock);
	return stopped;
}

static inline void *watchdog_main(void *arg)
{
	struct watchdog *wd = arg;
	unsigned long long seen = wd->progress != NULL ? atomic_load(wd->progress) : 0;
	for (;;) {
		if (watchdog_wait(wd, wd->seconds))
			return NULL;
		if (wd->progress == NULL)
			break;
		unsigned long long now = atomic_load(wd->progress);
		if (now == seen)
			break;
		seen = now;
	}
	atomic_store(&wd->fired, true);
	fprintf(stderr, "watchdog: %s %s %.0f s; shutting the system down\n", wd->what,
	        wd->progress != NULL ? "made no progress for" : "did not finish within",
	        wd->seconds);
	if (wd->on_fire != NULL)
		wd->on_fire(wd->on_fire_arg);
	if (wd->sys != NULL)
		actor_system_shutdown(wd->sys);
	if (watchdog_wait(wd, 10 * test_scale()))
		return NULL;
	fprintf(stderr, "watchdog: %s still stuck after shutdown; aborting\n", wd->what);
	abort();
}

/* Starts a watchdog of `seconds` (scaled by CK_TIMEOUT_MULTIPLIER). `sys` may be NULL. When it
 * fires it first calls on_fire(arg), if given: for tests whose actors must be told to stop
 * before the system can end. */
static inline void watchdog_launch(struct watchdog *wd, actor_system_t *sys, double seconds,
                                   const char *what, void (*on_fire)(void *), void *arg,
                                   const atomic_ullong *progress)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&wd->lock, NULL);
	wd->stop = false;
	atomic_init(&wd->fired, false);
	wd->seconds = seconds * test_scale();
	wd->sys = sys;
	wd->what = what;
	wd->on_fire = on_fire;
	wd->on_fire_arg = arg;
	wd->progress = progress;
	ck_assert_int_eq(pthread_create(&wd->thread, NULL, watchdog_main, wd), 0);
}

static inline void watchdog_start_cb(struct watchdog *wd, actor_system_t *sys, double seconds,
                                     const char *what, void (*on_fire)(void *), void *arg)
{
	watchdog_launch(wd, sys, seconds, what, on_fire, arg, NULL);
}

/* A watchdog that fires once `progress` has stood still for `seconds` (scaled). */
static inline void watchdog_start_progress(struct watchdog *wd, actor_system_t *sys, double seconds,
                                           const char *what, const atomic_ullong *progress)
{
	watchdog_launch(wd, sys, seconds, what, NULL, NULL, progress);
}

static inline void watchdog_start(struct watchdog *wd, actor_system_t *sys, double seconds,
                                  const char *what)
{
	watchdog_start_cb(wd, sys, seconds, what, NULL, NULL);
}

/* Stops the watchdog; true if it had fired. */
static inline bool watchdog_stop(struct watchdog *wd)
{
	pthread_mutex_lock(&wd->lock);
	wd->stop = true;
	pthread_cond_signal(&wd->cond);
	pthread_mutex_unlock(&wd->lock);
	pthread_join(wd->thread, NULL);
	pthread_cond_destroy(&wd->cond);
	pthread_mutex_destroy(&wd->lock);
	return atomic_load(&wd->fired);
}

/* ---------------------------------------------------------------------------------------------
 * Systems and actors
 */

static inline actor_system_t *system_new_cfg(const actor_config_t *cfg)
{
	actor_system_t *sys = NULL;
	int rc = actor_system_create(cfg, &sys);
	ck_assert_msg(rc == 0, "actor_system_create: %s", strerror(-rc));
	ck_assert_ptr_nonnull(sys);
	if (cfg != NULL && cfg->workers != 0)
		ck_assert_uint_eq(actor_system_workers(sys), cfg->workers);
	return sys;
}

/* A system with `workers` workers (0: one per CPU) and otherwise default settings. */
static inline actor_system_t *system_new(unsigned workers)
{
	actor_config_t cfg = {.workers = workers};
	return system_new_cfg(&cfg);
}

/* Runs the system until every actor has stopped, under a watchdog of `seconds`; fails the test
 * if actor_system_run needed the watchdog to return or returned an error. */
static inline void system_run_to_end(actor_system_t *sys, double seconds, const char *what)
{
	struct watchdog wd;
	watchdog_start(&wd, sys, seconds, what);
	int rc = actor_system_run(sys);
	bool fired = watchdog_stop(&wd);
	ck_assert_msg(!fired, "%s: actor_system_run did not return in time (lost wake-up?)", what);
	ck_assert_msg(rc == 0, "%s: actor_system_run returned %d", what, rc);
}

static inline actor_ref_t spawn_ok(actor_system_t *sys, const actor_spawn_opts_t *opts,
                                   actor_behavior_fn *fn, void *state)
{
	actor_ref_t ref = ACTOR_REF_NONE;
	int rc = actor_spawn(sys, opts, fn, state, &ref);
	ck_assert_msg(rc == 0, "actor_spawn: %d (%s)", rc, strerror(-rc));
	ck_assert_msg(!actor_ref_is_none(ref), "actor_spawn succeeded with ACTOR_REF_NONE");
	return ref;
}

/* Spawns on worker `worker` (ACTOR_PLACE_FIXED). */
static inline actor_ref_t spawn_on(actor_system_t *sys, unsigned worker, actor_behavior_fn *fn,
                                   void *state)
{
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .worker = worker};
	return spawn_ok(sys, &opts, fn, state);
}

static inline void send_ok(actor_system_t *sys, actor_ref_t to, uint32_t type, const void *data,
                           size_t len)
{
	int rc = actor_send(sys, to, type, data, len);
	ck_assert_msg(rc == 0, "actor_send: %d (%s)", rc, strerror(-rc));
}

static inline void send_u64(actor_system_t *sys, actor_ref_t to, uint32_t type, uint64_t v)
{
	send_ok(sys, to, type, &v, sizeof(v));
}

/* The uint64_t payload of a message sent with send_u64 (UINT64_MAX if the size is wrong). */
static inline uint64_t msg_u64(actor_msg_t *msg)
{
	uint64_t v;
	if (msg->size != sizeof(v))
		return UINT64_MAX;
	memcpy(&v, actor_msg_data(msg), sizeof(v));
	return v;
}

/* The home worker of a live actor, as actor_info reports it. */
static inline unsigned worker_of(actor_system_t *sys, actor_ref_t ref)
{
	actor_info_t info;
	int rc = actor_info(sys, ref, &info);
	ck_assert_msg(rc == 0, "actor_info: %d", rc);
	return info.worker;
}

/* Waits until `ref` has stopped (actor_info says -ESRCH); fails the test if it does not. */
static inline void wait_stopped(actor_system_t *sys, actor_ref_t ref)
{
	actor_info_t info;
	bool stopped = WAIT_UNTIL(actor_info(sys, ref, &info) == -ESRCH, TEST_WATCHDOG);
	ck_assert_msg(stopped, "actor did not stop in time");
}

/* Running a function inside a behaviour: spawns an actor placed by `opts`, sends it one
 * message, and waits until it has called fn(ctx, arg) and stopped itself. */
typedef void test_task_fn(actor_ctx_t *ctx, void *arg);

struct test_task {
	test_task_fn *fn;
	void *arg;
	atomic_int done;
};

static inline void test_task_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct test_task *t = state;
	(void)msg;
	t->fn(ctx, t->arg);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
	/* release: pairs with the acquire in run_in_actor; nothing touches `t` after this. */
	atomic_store_explicit(&t->done, 1, memory_order_release);
}

static inline void run_in_actor(actor_system_t *sys, const actor_spawn_opts_t *opts,
                                test_task_fn *fn, void *arg)
{
	struct test_task t = {.fn = fn, .arg = arg};
	atomic_init(&t.done, 0);
	actor_ref_t ref = spawn_ok(sys, opts, test_task_behavior, &t);
	send_ok(sys, ref, 1, NULL, 0);
	bool done = WAIT_UNTIL(atomic_load_explicit(&t.done, memory_order_acquire), TEST_WATCHDOG);
	ck_assert_msg(done, "run_in_actor: the actor never ran its task");
	wait_stopped(sys, ref);
}

/* ---------------------------------------------------------------------------------------------
 * A system's counters; an actor that records the one message it gets and stops
 */

static inline actor_stats_t stats_of(actor_system_t *sys)
{
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	return st;
}

struct recorder {
	unsigned calls;
	char data[64];
	uint32_t size, type;
	actor_ref_t self, msg_sender, ctx_sender;
	actor_system_t *sys;
	pthread_t thread;
};

/* Records the message and stops. */
static inline void record_and_exit(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct recorder *r = state;
	r->calls++;
	r->size = msg->size;
	r->type = msg->type;
	memcpy(r->data, actor_msg_data(msg), msg->size < sizeof(r->data) ? msg->size : 0);
	r->self = actor_self(ctx);
	r->msg_sender = msg->sender;
	r->ctx_sender = actor_sender(ctx);
	r->sys = actor_ctx_system(ctx);
	r->thread = pthread_self();
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* ---------------------------------------------------------------------------------------------
 * Suites
 */

static inline TCase *tcase_new(const char *name, double timeout)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, timeout);
	return tc;
}

/* The main of every test program: runs the suite in CK_NORMAL mode and fails if any test did. */
#define TEST_MAIN(make_suite)                                                                      \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		test_argc = argc;                                                                  \
		test_argv = argv;                                                                  \
		SRunner *sr = srunner_create(make_suite());                                        \
		srunner_run_all(sr, CK_NORMAL);                                                    \
		int failed = srunner_ntests_failed(sr);                                            \
		srunner_free(sr);                                                                  \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                  \
	}

#endif /* TESTS_COMMON_H */
