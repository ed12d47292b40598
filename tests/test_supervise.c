/* test_supervise.c: supervisors (actor.h, "Supervisors") through the public API.
 *
 * Ported from Erlang/OTP's supervisor_SUITE, where they apply: the restart behaviour of
 * one_for_one, one_for_all and rest_for_one (one_for_one, one_for_all, rest_for_one); restart
 * intensity exceeded stops the supervisor with the reason its parent sees
 * (one_for_one_escalation, max_intensity); temporary, transient and permanent children, normal
 * and abnormal stops (temporary_normal, temporary_abnormal, transient_normal,
 * transient_abnormal, permanent_normal, permanent_abnormal); dynamic children (child_adm:
 * start_child, terminate_child, restart_child, delete_child, which_children); ordered start
 * and reverse-ordered stop (sup_stop_infinity, with exact order records); a child that does not
 * stop within its shutdown time (sup_stop_timeout: here it is left to stop, not killed); nested
 * supervisors (hanging_restart_loop's shape: a child supervisor over its intensity is
 * restarted by its parent); a failure to start (sup_start_fail). Beyond OTP: backoff (delays
 * grow; lower bounds only), the failed child's queued messages dead-lettered, and 1,000 random
 * failures under one_for_one on 2 workers with exact counts.
 *
 * Order records: a child's make_state logs "+id" (in the supervisor's turn) and its destroy
 * "-id" (on the child's worker, before its exit signal is sent), so a supervisor that waits for
 * each exit makes the log's order exact. The log is a mutex-guarded string.
 *
 * Stress parameter (environment): SUPERVISE_FAILURES (default 1,000).
 */
#include "common.h"

#include <stdarg.h>

#define FAILURES_DEFAULT 1000
#define STRESS_KIDS 8
#define WAIT_NS ACTOR_SEC(20)

enum {
	MSG_FAIL = 1, /* payload: int, the reason to exit with */
	MSG_COUNT,    /* counted in `delivered` */
	MSG_HOLD,     /* wait at the gate */
};

/* ---------------------------------------------------------------------------------------------
 * The order log, and the children that write it
 */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_s[8192];
static atomic_int fails;      /* MSG_FAIL handled */
static atomic_int delivered;  /* MSG_COUNT handled */
static atomic_int made;       /* states made */
static atomic_int refuse;     /* make_state returns NULL for ids starting with '!' if set */
static atomic_int held;       /* a child is at the gate */
static atomic_int gate;       /* opens the gate */
static atomic_int dead;       /* dead letters of MSG_COUNT */
static uint64_t start_ns[16]; /* backoff: when each start happened */
static atomic_int nstarts;

static void log_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_add(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&log_mu);
	size_t n = strlen(log_s);
	if (n > 0 && n + 1 < sizeof(log_s))
		log_s[n++] = ' ';
	vsnprintf(log_s + n, sizeof(log_s) - n, fmt, ap);
	pthread_mutex_unlock(&log_mu);
	va_end(ap);
}

static void log_clear(void)
{
	pthread_mutex_lock(&log_mu);
	log_s[0] = '\0';
	pthread_mutex_unlock(&log_mu);
}

static bool log_is(const char *want)
{
	pthread_mutex_lock(&log_mu);
	bool eq = strcmp(log_s, want) == 0;
	pthread_mutex_unlock(&log_mu);
	return eq;
}

#define assert_log(want)                                                                           \
	do {                                                                                       \
		bool ok_ = WAIT_UNTIL(log_is(want), 10);                                           \
		pthread_mutex_lock(&log_mu);                                                       \
		ck_assert_msg(ok_, "log is \"%s\", expected \"%s\"", log_s, want);                 \
		pthread_mutex_unlock(&log_mu);                                                     \
	} while (0)

struct kid {
	const char *id;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *kid_make(void *arg)
{
	const char *id = arg;
	if (id[0] == '!' && atomic_load(&refuse))
		return NULL;
	struct kid *k = malloc(sizeof(*k));
	k->id = id;
	atomic_fetch_add(&made, 1);
	int i = atomic_fetch_add(&nstarts, 1);
	if (i < 16)
		start_ns[i] = mono_ns();
	log_add("+%s", id);
	return k;
}

static void kid_free(void *state)
{
	struct kid *k = state;
	log_add("-%s", k->id);
	free(k);
}

static void kid_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_FAIL) {
		int reason;
		memcpy(&reason, actor_msg_data(msg), sizeof(reason));
		atomic_fetch_add(&fails, 1);
		actor_exit(ctx, reason);
	} else if (msg->type == MSG_COUNT) {
		atomic_fetch_add(&delivered, 1);
	} else if (msg->type == MSG_HOLD) {
		atomic_store(&held, 1);
		gate_wait(&gate);
	}
}

/* A child that fails in its start hook, at once (backoff). */
static void kid_fail_at_start(actor_ctx_t *ctx, void *state)
{
	(void)state;
	actor_exit(ctx, 1);
}

static actor_child_spec_t kid(const char *id, actor_restart_t restart)
{
	return (actor_child_spec_t){.id = id,
	                            .fn = kid_fn,
	                            .make_state = kid_make,
	                            .arg = (void *)id,
	                            .spawn = {.destroy = kid_free},
	                            .restart = restart};
}

static void count_dead(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	(void)arg;
	(void)to;
	if (msg->type == MSG_COUNT)
		atomic_fetch_add(&dead, 1);
}

/* ---------------------------------------------------------------------------------------------
 * A watcher of DOWNs: its DOWN is logged as "D<reason>"
 */

struct watch {
	atomic_int got;
	atomic_int reason;
};

static void watch_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct watch *w = state;
	(void)ctx;
	if (msg->type != ACTOR_MSG_DOWN)
		return;
	actor_down_t d;
	memcpy(&d, actor_msg_data(msg), sizeof(d));
	/* The reason first: a test that has seen "D" in the log reads it next. */
	atomic_store(&w->reason, d.reason);
	log_add("D%d", d.reason);
	atomic_store_explicit(&w->got, 1, memory_order_release);
}

static bool watch_got(struct watch *w)
{
	return atomic_load_explicit(&w->got, memory_order_acquire) != 0;
}

/* ---------------------------------------------------------------------------------------------
 * Calls from the test thread
 */

static actor_system_t *sys_new(unsigned workers)
{
	actor_config_t cfg = {.workers = workers, .dead_letter = count_dead};
	return system_new_cfg(&cfg);
}

/* Spawns a supervisor watched by `w` (its DOWN logged). */
static actor_ref_t sup_new(actor_system_t *sys, const actor_supervisor_opts_t *o, struct watch *w)
{
	actor_spawn_opts_t so = {0};
	if (w != NULL)
		so.monitor = spawn_ok(sys, NULL, watch_fn, w);
	actor_ref_t ref;
	int rc = actor_supervisor_spawn(sys, &so, o, &ref);
	ck_assert_msg(rc == 0, "actor_supervisor_spawn: %d", rc);
	return ref;
}

/* Makes a call; returns the answer's result, and the answer in *out (free *msg). */
static int call(actor_system_t *sys, actor_ref_t sup, actor_supervisor_op_t op, const char *id,
                const actor_child_spec_t *spec, actor_msg_t **msg, actor_supervisor_answer_t **out)
{
	int rc = actor_supervisor_call_wait(sys, sup, op, id, spec, WAIT_NS, msg);
	ck_assert_msg(rc == 0, "actor_supervisor_call_wait: %d", rc);
	ck_assert_int_eq(actor_supervisor_answer_of(*msg, out), 0);
	return (*out)->result;
}

static int call_simple(actor_system_t *sys, actor_ref_t sup, actor_supervisor_op_t op,
                       const char *id, const actor_child_spec_t *spec, actor_ref_t *child)
{
	actor_msg_t *m;
	actor_supervisor_answer_t *a;
	int rc = call(sys, sup, op, id, spec, &m, &a);
	if (child != NULL)
		*child = a->child;
	actor_msg_free(m);
	return rc;
}

/* which_children, reduced: refs[i] and restarts[i] for child i; returns the count. */
struct kids {
	unsigned n;
	char id[16][ACTOR_CHILD_ID_MAX];
	actor_ref_t ref[16];
	uint32_t restarts[16];
	uint64_t total, abandoned;
};

static struct kids which(actor_system_t *sys, actor_ref_t sup)
{
	actor_msg_t *m;
	actor_supervisor_answer_t *a;
	ck_assert_int_eq(call(sys, sup, ACTOR_SUP_WHICH_CHILDREN, NULL, NULL, &m, &a), 0);
	struct kids k = {.n = a->count, .total = a->restarts, .abandoned = a->abandoned};
	actor_child_info_t *v = actor_supervisor_children(a);
	for (unsigned i = 0; i < a->count && i < 16; i++) {
		memcpy(k.id[i], v[i].id, ACTOR_CHILD_ID_MAX);
		k.ref[i] = v[i].ref;
		k.restarts[i] = v[i].restarts;
	}
	actor_msg_free(m);
	return k;
}

static void fail_child(actor_system_t *sys, actor_ref_t child, int reason)
{
	send_ok(sys, child, MSG_FAIL, &reason, sizeof(reason));
}

/* Stops the supervisor and waits for its DOWN. */
static void sup_end(actor_system_t *sys, actor_ref_t sup, struct watch *w)
{
	ck_assert_int_eq(actor_stop(sys, sup), 0);
	assert_eventually(watch_got(w), 10);
}

#define OPTS(strat, specs)                                                                         \
	((actor_supervisor_opts_t){.strategy = (strat),                                            \
	                           .intensity = 100,                                               \
	                           .period_ms = 60000,                                             \
	                           .children = (specs),                                            \
	                           .nchildren = sizeof(specs) / sizeof((specs)[0])})

/* ---------------------------------------------------------------------------------------------
 * Strategies
 */

START_TEST(one_for_one_restarts_the_failed_child_alone_with_a_new_ref)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0), kid("c", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a +b +c");
	struct kids k0 = which(sys, sup);
	ck_assert_uint_eq(k0.n, 3);
	fail_child(sys, k0.ref[1], 1);
	assert_log("+a +b +c -b +b");
	struct kids k1 = which(sys, sup);
	ck_assert(actor_ref_eq(k0.ref[0], k1.ref[0]));
	ck_assert(!actor_ref_eq(k0.ref[1], k1.ref[1]) && !actor_ref_is_none(k1.ref[1]));
	ck_assert(actor_ref_eq(k0.ref[2], k1.ref[2]));
	ck_assert_uint_eq(k1.restarts[1], 1);
	ck_assert_uint_eq(k1.total, 1);
	/* The old reference names no actor now: contract 4. */
	ck_assert_int_eq(actor_send(sys, k0.ref[1], MSG_COUNT, NULL, 0), -ESRCH);
	sup_end(sys, sup, &w);
	assert_log("+a +b +c -b +b -c -b -a D-1");
	actor_system_free(sys);
}
END_TEST

START_TEST(one_for_all_stops_the_others_in_reverse_order_then_starts_all_in_order)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0), kid("c", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ALL, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a +b +c");
	struct kids k0 = which(sys, sup);
	fail_child(sys, k0.ref[1], 1);
	assert_log("+a +b +c -b -c -a +a +b +c");
	struct kids k1 = which(sys, sup);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert(!actor_ref_eq(k0.ref[i], k1.ref[i]) && !actor_ref_is_none(k1.ref[i]));
		ck_assert_uint_eq(k1.restarts[i], 1);
	}
	ck_assert_uint_eq(k1.total, 1); /* one failure, one restart */
	sup_end(sys, sup, &w);
	actor_system_free(sys);
}
END_TEST

START_TEST(rest_for_one_restarts_the_failed_child_and_those_started_after_it)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0), kid("c", 0), kid("d", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_REST_FOR_ONE, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a +b +c +d");
	struct kids k0 = which(sys, sup);
	fail_child(sys, k0.ref[1], 1);
	assert_log("+a +b +c +d -b -d -c +b +c +d");
	struct kids k1 = which(sys, sup);
	ck_assert(actor_ref_eq(k0.ref[0], k1.ref[0]));
	for (unsigned i = 1; i < 4; i++)
		ck_assert(!actor_ref_eq(k0.ref[i], k1.ref[i]));
	sup_end(sys, sup, &w);
	assert_log("+a +b +c +d -b -d -c +b +c +d -d -c -b -a D-1");
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Restart types
 */

START_TEST(restart_types_follow_otp_for_normal_and_abnormal_stops)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {
	    kid("pn", ACTOR_RESTART_PERMANENT), kid("pa", ACTOR_RESTART_PERMANENT),
	    kid("tn", ACTOR_RESTART_TRANSIENT), kid("ta", ACTOR_RESTART_TRANSIENT),
	    kid("xn", ACTOR_RESTART_TEMPORARY), kid("xa", ACTOR_RESTART_TEMPORARY)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+pn +pa +tn +ta +xn +xa");
	struct kids k = which(sys, sup);
	fail_child(sys, k.ref[0], ACTOR_REASON_NORMAL);
	assert_log("+pn +pa +tn +ta +xn +xa -pn +pn");
	fail_child(sys, k.ref[1], 3);
	assert_log("+pn +pa +tn +ta +xn +xa -pn +pn -pa +pa");
	fail_child(sys, k.ref[2], ACTOR_REASON_NORMAL);
	fail_child(sys, k.ref[3], 3);
	fail_child(sys, k.ref[4], ACTOR_REASON_NORMAL);
	fail_child(sys, k.ref[5], 3);
	/* Left: the permanent ones and the transient one that failed; the others are removed. */
	ck_assert(WAIT_UNTIL(which(sys, sup).n == 3 && which(sys, sup).total == 3, 10));
	k = which(sys, sup);
	ck_assert_str_eq(k.id[0], "pn");
	ck_assert_str_eq(k.id[1], "pa");
	ck_assert_str_eq(k.id[2], "ta");
	ck_assert_uint_eq(k.restarts[2], 1);
	ck_assert_int_eq(atomic_load(&made), 6 + 3);
	sup_end(sys, sup, &w);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_transient_child_stopping_normally_under_one_for_all_restarts_nobody)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("t", ACTOR_RESTART_TRANSIENT), kid("c", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ALL, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a +t +c");
	struct kids k = which(sys, sup);
	fail_child(sys, k.ref[1], ACTOR_REASON_NORMAL);
	ck_assert(WAIT_UNTIL(which(sys, sup).n == 2, 10));
	k = which(sys, sup);
	ck_assert_uint_eq(k.total, 0);
	assert_log("+a +t +c -t");
	/* A temporary child stopped by one_for_all is removed, not restarted. */
	actor_child_spec_t x = kid("x", ACTOR_RESTART_TEMPORARY);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &x, NULL), 0);
	k = which(sys, sup);
	ck_assert_uint_eq(k.n, 3);
	fail_child(sys, k.ref[0], 2);
	assert_log("+a +t +c -t +x -a -x -c +a +c");
	k = which(sys, sup);
	ck_assert_uint_eq(k.n, 2);
	sup_end(sys, sup, &w);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Intensity, start failures, nesting
 */

/* register_as: each start registers the child, so its users find the new reference by name. */
static bool named_other_than(actor_system_t *sys, const char *name, actor_ref_t old)
{
	actor_ref_t r;
	return actor_whereis(sys, name, &r) == 0 && !actor_ref_eq(r, old);
}

START_TEST(a_registered_child_is_found_by_name_after_each_restart)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0)};
	specs[0].register_as = "the-a";
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a");
	for (int i = 0; i < 3; i++) {
		struct kids k = which(sys, sup);
		actor_ref_t named;
		ck_assert(WAIT_UNTIL(
		    actor_whereis(sys, "the-a", &named) == 0 && actor_ref_eq(named, k.ref[0]), 10));
		fail_child(sys, named, 1);
		ck_assert(WAIT_UNTIL(named_other_than(sys, "the-a", named), 10));
	}
	sup_end(sys, sup, &w);
	actor_ref_t r;
	ck_assert_int_eq(actor_whereis(sys, "the-a", &r), -ENOENT);
	actor_system_free(sys);
}
END_TEST

/* A name held by an actor outside the tree fails every start of the child that wants it: the
 * restarts run out and the supervisor stops with ACTOR_REASON_RESTARTS. */
START_TEST(a_child_whose_name_is_taken_fails_its_starts_until_the_intensity_runs_out)
{
	actor_system_t *sys = sys_new(2);
	actor_ref_t squatter = spawn_ok(sys, NULL, kid_fn, NULL);
	ck_assert_int_eq(actor_register(sys, "taken", squatter), 0);
	actor_child_spec_t specs[] = {kid("a", 0)};
	specs[0].register_as = "taken";
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	o.intensity = 2;
	struct watch w = {0};
	(void)sup_new(sys, &o, &w);
	ck_assert(WAIT_UNTIL(watch_got(&w), 10));
	ck_assert_int_eq(atomic_load(&w.reason), ACTOR_REASON_RESTARTS);
	actor_ref_t r;
	ck_assert_int_eq(actor_whereis(sys, "taken", &r), 0);
	ck_assert(actor_ref_eq(r, squatter));
	actor_system_free(sys);
}
END_TEST

START_TEST(more_restarts_than_the_intensity_stop_the_supervisor_with_restarts)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	o.intensity = 2;
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a +b");
	fail_child(sys, which(sys, sup).ref[1], 1);
	assert_log("+a +b -b +b");
	fail_child(sys, which(sys, sup).ref[1], 1);
	assert_log("+a +b -b +b -b +b");
	fail_child(sys, which(sys, sup).ref[1], 1); /* the third within the period: over 2 */
	assert_log("+a +b -b +b -b +b -b -a D-4");
	ck_assert_int_eq(atomic_load(&w.reason), ACTOR_REASON_RESTARTS);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_child_that_cannot_start_makes_the_supervisor_fail_to_start)
{
	actor_system_t *sys = sys_new(2);
	atomic_store(&refuse, 1);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0), kid("!c", 0), kid("d", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	sup_new(sys, &o, &w);
	assert_log("+a +b -b -a D-5");
	ck_assert_int_eq(atomic_load(&made), 2);
	actor_system_free(sys);
}
END_TEST

START_TEST(a_restart_that_cannot_start_counts_toward_the_intensity)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("!b", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	o.intensity = 3;
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a +!b");
	atomic_store(&refuse, 1);
	fail_child(sys, which(sys, sup).ref[1], 1);
	/* One failure and three failed starts: the fourth restart is over 3. */
	assert_log("+a +!b -!b -a D-4");
	actor_system_free(sys);
}
END_TEST

static actor_supervisor_opts_t inner_opts;
static actor_child_spec_t inner_specs[1];

START_TEST(a_child_supervisor_over_its_intensity_is_restarted_by_its_parent)
{
	actor_system_t *sys = sys_new(2);
	inner_specs[0] = kid("x", 0);
	inner_opts = (actor_supervisor_opts_t){
	    .intensity = 1, .period_ms = 60000, .children = inner_specs, .nchildren = 1};
	actor_child_spec_t specs[] = {
	    kid("a", 0), {.id = "inner", .supervisor = &inner_opts}, kid("c", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	/* The inner supervisor starts x in its own start hook, on its worker: x may come before
	 * or after c (actor.h: ordered start covers make_state and the spawn). */
	ck_assert(WAIT_UNTIL(log_is("+a +x +c") || log_is("+a +c +x"), 10));
	log_clear();
	struct kids top = which(sys, sup);
	actor_ref_t inner = top.ref[1];
	fail_child(sys, which(sys, inner).ref[0], 1);
	assert_log("-x +x");
	fail_child(sys, which(sys, inner).ref[0], 1); /* over 1: inner stops, the top restarts it */
	assert_log("-x +x -x +x");
	struct kids top2 = which(sys, sup);
	ck_assert(!actor_ref_eq(top2.ref[1], inner));
	ck_assert_uint_eq(top2.restarts[1], 1);
	ck_assert_uint_eq(top2.total, 1);
	ck_assert(actor_ref_eq(top2.ref[0], top.ref[0]));
	ck_assert_uint_eq(which(sys, top2.ref[1]).total, 0); /* a fresh supervisor */
	/* The top's stop goes down the tree in reverse order, the inner one included. */
	sup_end(sys, sup, &w);
	assert_log("-x +x -x +x -c -x -a D-1");
	actor_system_free(sys);
}
END_TEST

/* A parent that spawns a linked supervisor in its start hook, then exits with 7 on MSG_FAIL. */
static actor_supervisor_opts_t parent_sup;
static actor_ref_t parent_child;

static void parent_start(actor_ctx_t *ctx, void *state)
{
	(void)state;
	/* Logged before the spawn: the supervisor starts its children on another worker as soon
	 * as the spawn returns, so a log entry after it could come after theirs. */
	log_add("P");
	actor_spawn_opts_t so = {.link = 1};
	ck_assert_int_eq(
	    actor_supervisor_spawn(actor_ctx_system(ctx), &so, &parent_sup, &parent_child), 0);
}

static void parent_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_FAIL)
		actor_exit(ctx, 7);
}

START_TEST(a_supervisor_whose_parent_fails_stops_its_children_in_reverse_order_first)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0), kid("c", 0)};
	parent_sup = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_spawn_opts_t po = {.start = parent_start};
	actor_ref_t parent = spawn_ok(sys, &po, parent_fn, NULL);
	assert_log("P +a +b +c");
	ck_assert_int_eq(actor_monitor(sys, spawn_ok(sys, NULL, watch_fn, &w), parent_child), 0);
	fail_child(sys, parent, 0);
	assert_log("P +a +b +c -c -b -a D7");
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Dynamic children
 */

START_TEST(dynamic_children_start_terminate_restart_delete_and_which)
{
	actor_system_t *sys = sys_new(2);
	actor_supervisor_opts_t o = {.intensity = 10};
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	ck_assert_uint_eq(which(sys, sup).n, 0);
	actor_child_spec_t a = kid("a", 0), b = kid("b", 0);
	actor_ref_t ra, rb, r;
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &a, &ra), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &b, &rb), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &a, &r), -EEXIST);
	ck_assert(actor_ref_is_none(r));
	struct kids k = which(sys, sup);
	ck_assert_uint_eq(k.n, 2);
	ck_assert(actor_ref_eq(k.ref[0], ra) && actor_ref_eq(k.ref[1], rb));
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_DELETE_CHILD, "a", NULL, NULL), -EBUSY);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_RESTART_CHILD, "a", NULL, NULL),
	                 -EALREADY);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_TERMINATE_CHILD, "a", NULL, NULL), 0);
	assert_log("+a +b -a"); /* answered once it has stopped */
	k = which(sys, sup);
	ck_assert(actor_ref_is_none(k.ref[0]));
	ck_assert_uint_eq(k.total, 0); /* a terminate is no restart */
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_RESTART_CHILD, "a", NULL, &r), 0);
	ck_assert(!actor_ref_is_none(r) && !actor_ref_eq(r, ra));
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_TERMINATE_CHILD, "a", NULL, NULL), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_DELETE_CHILD, "a", NULL, NULL), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_DELETE_CHILD, "a", NULL, NULL), -ENOENT);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_TERMINATE_CHILD, "zz", NULL, NULL),
	                 -ENOENT);
	atomic_store(&refuse, 1);
	actor_child_spec_t bad = kid("!c", 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &bad, NULL),
	                 -ECANCELED);
	k = which(sys, sup);
	ck_assert_uint_eq(k.n, 1);
	ck_assert_str_eq(k.id[0], "b");
	sup_end(sys, sup, &w);
	assert_log("+a +b -a +a -a -b D-1");
	actor_system_free(sys);
}
END_TEST

/* A behaviour that calls its supervisor and checks the answer as an ACTOR_MSG_REPLY. */
struct caller {
	actor_ref_t sup;
	atomic_int result;
	atomic_int done;
};

static void caller_start(actor_ctx_t *ctx, void *state)
{
	struct caller *c = state;
	actor_request_t req;
	ck_assert_int_eq(actor_supervisor_which_children(ctx, c->sup, NULL, &req), 0);
}

static void caller_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct caller *c = state;
	actor_supervisor_answer_t *a;
	if (msg->type != ACTOR_MSG_REPLY)
		return;
	int rc = actor_supervisor_answer_of(msg, &a);
	atomic_store(&c->result, rc == 0 ? (int)a->count : rc);
	atomic_store_explicit(&c->done, 1, memory_order_release);
	actor_exit(ctx, 0);
}

/* free_arg: a dynamic child's arg is the supervisor's once it started, freed exactly once when
 * the supervisor forgets the child; a start that failed leaves it the caller's. */
static atomic_int args_freed;

static void count_free_arg(void *arg)
{
	(void)arg;
	atomic_fetch_add(&args_freed, 1);
}

START_TEST(a_dynamic_child_s_arg_is_freed_once_when_the_supervisor_forgets_it)
{
	actor_system_t *sys = sys_new(2);
	atomic_store(&args_freed, 0);
	actor_supervisor_opts_t o = {.intensity = 10};
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	actor_child_spec_t a = kid("a", 0), b = kid("b", 0), t = kid("t", ACTOR_RESTART_TEMPORARY);
	a.free_arg = b.free_arg = t.free_arg = count_free_arg;
	actor_ref_t rt;
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &a, NULL), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &b, NULL), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &t, &rt), 0);
	/* A start that fails: not the supervisor's to free. */
	atomic_store(&refuse, 1);
	actor_child_spec_t bad = kid("!c", 0);
	bad.free_arg = count_free_arg;
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_START_CHILD, NULL, &bad, NULL),
	                 -ECANCELED);
	atomic_store(&refuse, 0);
	ck_assert_int_eq(atomic_load(&args_freed), 0);
	/* A restart keeps it; a temporary child that ends, and a delete, free it. */
	fail_child(sys, which(sys, sup).ref[0], 1);
	assert_log("+a +b +t -a +a");
	fail_child(sys, rt, 1);
	assert_log("+a +b +t -a +a -t");
	ck_assert(WAIT_UNTIL(atomic_load(&args_freed) == 1, 10));
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_TERMINATE_CHILD, "a", NULL, NULL), 0);
	ck_assert_int_eq(call_simple(sys, sup, ACTOR_SUP_DELETE_CHILD, "a", NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&args_freed), 2);
	/* The supervisor's stop: the one left. */
	sup_end(sys, sup, &w);
	ck_assert_int_eq(atomic_load(&args_freed), 3);
	actor_system_free(sys);
	ck_assert_int_eq(atomic_load(&args_freed), 3);
}
END_TEST

START_TEST(a_behaviour_calls_its_supervisor_and_gets_the_answer_as_a_reply)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("b", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	struct caller c = {.sup = sup_new(sys, &o, &w)};
	actor_spawn_opts_t so = {.start = caller_start};
	spawn_ok(sys, &so, caller_fn, &c);
	assert_eventually(atomic_load_explicit(&c.done, memory_order_acquire), 10);
	ck_assert_int_eq(atomic_load(&c.result), 2);
	sup_end(sys, c.sup, &w);
	actor_system_free(sys);
}
END_TEST

START_TEST(bad_arguments_get_clear_errors)
{
	actor_system_t *sys = sys_new(1);
	actor_ref_t r = ACTOR_REF_NONE;
	actor_supervisor_opts_t o = {0};
	ck_assert_int_eq(actor_supervisor_spawn(NULL, NULL, &o, &r), -EINVAL);
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, NULL, &r), -EINVAL);
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, NULL), -EINVAL);
	actor_spawn_opts_t so = {.destroy = kid_free};
	ck_assert_int_eq(actor_supervisor_spawn(sys, &so, &o, &r), -EINVAL);
	so = (actor_spawn_opts_t){.link = 1}; /* outside a behaviour */
	ck_assert_int_eq(actor_supervisor_spawn(sys, &so, &o, &r), -EINVAL);
	o.strategy = 7;
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	o = (actor_supervisor_opts_t){.intensity = -2};
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	o = (actor_supervisor_opts_t){.backoff_min_ms = 10, .backoff_max_ms = 5};
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	o = (actor_supervisor_opts_t){.nchildren = 1};
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	char longid[ACTOR_CHILD_ID_MAX + 1];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[ACTOR_CHILD_ID_MAX] = '\0';
	actor_child_spec_t bad[] = {kid("a", 0), kid("a", 0)}; /* one id twice */
	o = (actor_supervisor_opts_t){.children = bad, .nchildren = 2};
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	bad[1] = kid(longid, 0);
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	bad[1] = kid("", 0);
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	bad[1] = kid("b", 5);
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	bad[1] = kid("b", 0);
	bad[1].spawn.link = 1;
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	bad[1] = kid("b", 0);
	bad[1].fn = NULL;
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	bad[1] = kid("b", 0);
	bad[1].shutdown_ms = -2;
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	actor_supervisor_opts_t inner = {0};
	bad[1] = (actor_child_spec_t){.id = "s", .fn = kid_fn, .supervisor = &inner};
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), -EINVAL);
	/* Calls: a bad op, a bad id; a call to a stopped supervisor. */
	actor_msg_t *m = NULL;
	ck_assert_int_eq(actor_supervisor_call_wait(sys, r, 99, NULL, NULL, 0, &m), -EINVAL);
	ck_assert_int_eq(
	    actor_supervisor_call_wait(sys, r, ACTOR_SUP_DELETE_CHILD, NULL, NULL, 0, &m), -EINVAL);
	ck_assert_int_eq(
	    actor_supervisor_call_wait(sys, r, ACTOR_SUP_START_CHILD, NULL, NULL, 0, &m), -EINVAL);
	o = (actor_supervisor_opts_t){0};
	ck_assert_int_eq(actor_supervisor_spawn(sys, NULL, &o, &r), 0);
	ck_assert_int_eq(actor_stop(sys, r), 0);
	ck_assert(WAIT_UNTIL(actor_info(sys, r, &(actor_info_t){0}) == -ESRCH, 10));
	ck_assert_int_eq(
	    actor_supervisor_call_wait(sys, r, ACTOR_SUP_WHICH_CHILDREN, NULL, NULL, 0, &m),
	    -ESRCH);
	ck_assert_int_eq(actor_supervisor_answer_of(NULL, NULL), -EINVAL);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Stopping
 */

START_TEST(a_child_that_does_not_stop_in_time_is_left_and_the_supervisor_goes_on)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0), kid("slow", 0), kid("c", 0)};
	specs[0].spawn.placement = specs[2].spawn.placement = ACTOR_PLACE_FIXED;
	specs[0].spawn.worker = specs[2].spawn.worker = 1;
	specs[1].spawn.placement = ACTOR_PLACE_FIXED; /* worker 0, alone */
	specs[1].shutdown_ms = 50;
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_spawn_opts_t so = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 1, .monitor = spawn_on(sys, 1, watch_fn, &w)};
	actor_ref_t sup;
	ck_assert_int_eq(actor_supervisor_spawn(sys, &so, &o, &sup), 0);
	assert_log("+a +slow +c");
	send_ok(sys, which(sys, sup).ref[1], MSG_HOLD, NULL, 0);
	assert_eventually(atomic_load(&held), 10);
	double t0 = now_sec();
	ck_assert_int_eq(actor_stop(sys, sup), 0);
	/* c stops, slow does not within 50 ms and is left, a stops, then the supervisor. */
	assert_log("+a +slow +c -c -a D-1");
	ck_assert_msg(now_sec() - t0 >= 0.050, "the supervisor waited %.3f s", now_sec() - t0);
	gate_open(&gate);
	assert_log("+a +slow +c -c -a D-1 -slow"); /* it stops once it reaches the request */
	actor_system_free(sys);
}
END_TEST

START_TEST(the_failed_child_s_queued_messages_are_dead_letters_not_redelivered)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("a", 0)};
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	assert_log("+a");
	actor_ref_t a = which(sys, sup).ref[0];
	send_ok(sys, a, MSG_HOLD, NULL, 0);
	assert_eventually(atomic_load(&held), 10);
	fail_child(sys, a, 1);
	for (int i = 0; i < 5; i++)
		send_ok(sys, a, MSG_COUNT, NULL, 0);
	gate_open(&gate);
	assert_log("+a -a +a");
	assert_eventually(atomic_load(&dead) == 5, 10);
	ck_assert_int_eq(atomic_load(&delivered), 0);
	sup_end(sys, sup, &w);
	ck_assert_int_eq(atomic_load(&delivered), 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Backoff
 */

START_TEST(backoff_doubles_the_delay_per_failure_in_a_row_up_to_its_maximum)
{
	actor_system_t *sys = sys_new(2);
	actor_child_spec_t specs[] = {kid("f", 0)};
	specs[0].spawn.start = kid_fail_at_start;
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	o.backoff_min_ms = 20;
	o.backoff_max_ms = 80;
	o.intensity = 5; /* the 6th restart stops it */
	struct watch w = {0};
	sup_new(sys, &o, &w);
	assert_eventually(watch_got(&w), 20);
	ck_assert_int_eq(atomic_load(&w.reason), ACTOR_REASON_RESTARTS);
	ck_assert_int_eq(atomic_load(&nstarts), 6); /* the first start and 5 restarts */
	static const unsigned want_ms[] = {20, 40, 80, 80, 80};
	for (unsigned i = 0; i < 5; i++) {
		double gap = (double)(start_ns[i + 1] - start_ns[i]) / 1e6;
		ck_assert_msg(gap >= want_ms[i], "restart %u came after %.1f ms, before %u ms",
		              i + 1, gap, want_ms[i]);
	}
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Stress
 */

START_TEST(random_failures_under_one_for_one_on_two_workers_are_each_restarted_once)
{
	unsigned long n = test_param(0, "SUPERVISE_FAILURES", FAILURES_DEFAULT);
	actor_system_t *sys = sys_new(2);
	static const char *ids[STRESS_KIDS] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};
	actor_child_spec_t specs[STRESS_KIDS];
	for (unsigned i = 0; i < STRESS_KIDS; i++)
		specs[i] = kid(ids[i], 0);
	actor_supervisor_opts_t o = OPTS(ACTOR_ONE_FOR_ONE, specs);
	o.intensity = ACTOR_SUPERVISOR_INTENSITY_MAX;
	struct watch w = {0};
	actor_ref_t sup = sup_new(sys, &o, &w);
	static atomic_ullong progress;
	struct watchdog wd;
	watchdog_start_progress(&wd, sys, TEST_WATCHDOG_STRESS, "random failures", &progress);
	unsigned seed = 12345;
	struct kids k = which(sys, sup);
	for (unsigned long i = 0; i < n; i++) {
		unsigned j = (unsigned)rand_r(&seed) % STRESS_KIDS;
		actor_ref_t old = k.ref[j];
		ck_assert(!actor_ref_is_none(old));
		fail_child(sys, old, 1 + (int)(i % 3));
		/* Wait for its successor: a new ref in the same place. */
		do {
			k = which(sys, sup);
		} while (actor_ref_eq(k.ref[j], old) || actor_ref_is_none(k.ref[j]));
		atomic_fetch_add(&progress, 1);
	}
	ck_assert(!watchdog_stop(&wd));
	k = which(sys, sup);
	ck_assert_uint_eq(k.n, STRESS_KIDS);
	ck_assert_uint_eq(k.total, n);
	uint64_t sum = 0;
	for (unsigned i = 0; i < STRESS_KIDS; i++)
		sum += k.restarts[i];
	ck_assert_uint_eq(sum, n);
	ck_assert_int_eq(atomic_load(&fails), (int)n);
	ck_assert_int_eq(atomic_load(&made), (int)(n + STRESS_KIDS));
	sup_end(sys, sup, &w);
	actor_system_free(sys);
}
END_TEST

static Suite *supervise_suite(void)
{
	Suite *s = suite_create("supervise");
	TCase *tc = tcase_new("strategies", TEST_TIMEOUT);
	tcase_add_test(tc, one_for_one_restarts_the_failed_child_alone_with_a_new_ref);
	tcase_add_test(tc, one_for_all_stops_the_others_in_reverse_order_then_starts_all_in_order);
	tcase_add_test(tc, rest_for_one_restarts_the_failed_child_and_those_started_after_it);
	tcase_add_test(tc, restart_types_follow_otp_for_normal_and_abnormal_stops);
	tcase_add_test(tc, a_transient_child_stopping_normally_under_one_for_all_restarts_nobody);
	suite_add_tcase(s, tc);

	tc = tcase_new("limits", TEST_TIMEOUT);
	tcase_add_test(tc, more_restarts_than_the_intensity_stop_the_supervisor_with_restarts);
	tcase_add_test(tc, a_registered_child_is_found_by_name_after_each_restart);
	tcase_add_test(tc,
	               a_child_whose_name_is_taken_fails_its_starts_until_the_intensity_runs_out);
	tcase_add_test(tc, a_child_that_cannot_start_makes_the_supervisor_fail_to_start);
	tcase_add_test(tc, a_restart_that_cannot_start_counts_toward_the_intensity);
	tcase_add_test(tc, a_child_supervisor_over_its_intensity_is_restarted_by_its_parent);
	tcase_add_test(tc,
	               a_supervisor_whose_parent_fails_stops_its_children_in_reverse_order_first);
	tcase_add_test(tc, backoff_doubles_the_delay_per_failure_in_a_row_up_to_its_maximum);
	suite_add_tcase(s, tc);

	tc = tcase_new("calls and stops", TEST_TIMEOUT);
	tcase_add_test(tc, dynamic_children_start_terminate_restart_delete_and_which);
	tcase_add_test(tc, a_dynamic_child_s_arg_is_freed_once_when_the_supervisor_forgets_it);
	tcase_add_test(tc, a_behaviour_calls_its_supervisor_and_gets_the_answer_as_a_reply);
	tcase_add_test(tc, bad_arguments_get_clear_errors);
	tcase_add_test(tc, a_child_that_does_not_stop_in_time_is_left_and_the_supervisor_goes_on);
	tcase_add_test(tc, the_failed_child_s_queued_messages_are_dead_letters_not_redelivered);
	suite_add_tcase(s, tc);

	tc = tcase_new("stress", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc,
	               random_failures_under_one_for_one_on_two_workers_are_each_restarted_once);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(supervise_suite)
