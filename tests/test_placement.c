/* test_placement.c: every placement policy's choice of home worker, from outside the pool and
 * from inside a behaviour.
 */
#include "common.h"

#include <limits.h>

#define WORKERS 4 /* more than the CI machines' cores: placement must not care */
#define HASH_KEYS 500

/* An actor that just sits there: placement tests look at where it lives, not what it does. */
static void idle_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

/* Records the worker it runs on in *(atomic_int *)state, stored as worker + 1. */
static void report_worker(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	atomic_store((atomic_int *)state, (int)actor_ctx_worker(ctx) + 1);
}

static unsigned resident_on(actor_system_t *sys, unsigned w)
{
	actor_worker_stats_t st;
	ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
	return (unsigned)st.resident;
}

static actor_ref_t spawn_placed(actor_system_t *sys, actor_placement_t placement)
{
	actor_spawn_opts_t opts = {.placement = placement};
	return spawn_ok(sys, &opts, idle_behavior, NULL);
}

/* Each run of `workers` consecutive choices names every worker exactly once. */
static void assert_rotation(const unsigned *chosen, unsigned n, unsigned workers)
{
	for (unsigned start = 0; start + workers <= n; start += workers) {
		unsigned mask = 0;
		for (unsigned i = start; i < start + workers; i++) {
			ck_assert_uint_lt(chosen[i], workers);
			mask |= 1u << chosen[i];
		}
		ck_assert_msg(mask == (1u << workers) - 1,
		              "spawns %u..%u did not cover every worker (mask %#x)", start,
		              start + workers - 1, mask);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Round-robin and local
 */

START_TEST(round_robin_spreads_spawns_across_workers)
{
	actor_system_t *sys = system_new(WORKERS);
	unsigned chosen[4 * WORKERS];
	for (unsigned i = 0; i < 4 * WORKERS; i++) {
		/* NULL options and zeroed options both mean round-robin. */
		actor_ref_t r = i % 2 ? spawn_placed(sys, ACTOR_PLACE_ROUND_ROBIN)
		                      : spawn_ok(sys, NULL, idle_behavior, NULL);
		chosen[i] = worker_of(sys, r);
	}
	assert_rotation(chosen, 4 * WORKERS, WORKERS);
	for (unsigned w = 0; w < WORKERS; w++)
		ck_assert_uint_eq(resident_on(sys, w), 4);
	actor_system_free(sys);
}
END_TEST

struct spawn_task {
	actor_placement_t placement;
	unsigned n;
	unsigned chosen[4 * WORKERS];
	unsigned ctx_worker;
	int rc;
	actor_ref_t refs[4 * WORKERS];
	atomic_int *reports; /* if set, each child reports its worker here */
};

static void spawn_children(actor_ctx_t *ctx, void *arg)
{
	struct spawn_task *t = arg;
	actor_system_t *sys = actor_ctx_system(ctx);
	t->ctx_worker = actor_ctx_worker(ctx);
	for (unsigned i = 0; i < t->n; i++) {
		actor_spawn_opts_t opts = {.placement = t->placement};
		actor_info_t info = {0};
		void *state = t->reports != NULL ? &t->reports[i] : NULL;
		actor_behavior_fn *fn = t->reports != NULL ? report_worker : idle_behavior;
		int rc = actor_spawn(sys, &opts, fn, state, &t->refs[i]);
		if (rc == 0)
			rc = actor_info(sys, t->refs[i], &info);
		if (rc == 0 && t->reports != NULL)
			rc = actor_send(sys, t->refs[i], 1, NULL, 0);
		if (rc != 0) {
			t->rc = rc;
			return;
		}
		t->chosen[i] = info.worker;
	}
}

START_TEST(round_robin_from_a_behaviour_spreads_too)
{
	actor_system_t *sys = system_new(WORKERS);
	struct spawn_task t = {.placement = ACTOR_PLACE_ROUND_ROBIN, .n = 2 * WORKERS};
	actor_spawn_opts_t on2 = {.placement = ACTOR_PLACE_FIXED, .worker = 2};
	run_in_actor(sys, &on2, spawn_children, &t);
	ck_assert_int_eq(t.rc, 0);
	ck_assert_uint_eq(t.ctx_worker, 2);
	assert_rotation(t.chosen, t.n, WORKERS);
	actor_system_free(sys);
}
END_TEST

START_TEST(local_placement_keeps_children_on_the_spawners_worker)
{
	actor_system_t *sys = system_new(WORKERS);
	for (unsigned w = 0; w < WORKERS; w++) {
		atomic_int reports[3] = {0};
		struct spawn_task t = {.placement = ACTOR_PLACE_LOCAL, .n = 3, .reports = reports};
		actor_spawn_opts_t on_w = {.placement = ACTOR_PLACE_FIXED, .worker = w};
		run_in_actor(sys, &on_w, spawn_children, &t);
		ck_assert_int_eq(t.rc, 0);
		ck_assert_uint_eq(t.ctx_worker, w);
		for (unsigned i = 0; i < 3; i++) {
			ck_assert_uint_eq(t.chosen[i], w);
			/* And the child really runs there. */
			assert_eventually(atomic_load(&reports[i]) != 0, 10);
			assert_atomic_eq(reports[i], (int)w + 1);
			ck_assert_int_eq(actor_stop(sys, t.refs[i]), 0);
			wait_stopped(sys, t.refs[i]);
		}
	}
	actor_system_free(sys);
}
END_TEST

START_TEST(local_placement_from_outside_the_pool_rotates)
{
	actor_system_t *sys = system_new(WORKERS);
	unsigned chosen[2 * WORKERS];
	for (unsigned i = 0; i < 2 * WORKERS; i++)
		chosen[i] = worker_of(sys, spawn_placed(sys, ACTOR_PLACE_LOCAL));
	assert_rotation(chosen, 2 * WORKERS, WORKERS);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Least loaded
 */

START_TEST(least_loaded_picks_the_emptiest_worker)
{
	actor_system_t *sys = system_new(WORKERS);
	static const unsigned preload[WORKERS] = {5, 3, 1, 4};
	actor_ref_t on0[5];
	for (unsigned w = 0; w < WORKERS; w++)
		for (unsigned i = 0; i < preload[w]; i++) {
			actor_ref_t r = spawn_on(sys, w, idle_behavior, NULL);
			if (w == 0)
				on0[i] = r;
		}
	for (unsigned w = 0; w < WORKERS; w++)
		ck_assert_uint_eq(resident_on(sys, w), preload[w]);

	ck_assert_uint_eq(worker_of(sys, spawn_placed(sys, ACTOR_PLACE_LEAST_LOADED)), 2);
	ck_assert_uint_eq(worker_of(sys, spawn_placed(sys, ACTOR_PLACE_LEAST_LOADED)), 2);
	/* Loads now 5, 3, 3, 4: a tie between 1 and 2. */
	unsigned third = worker_of(sys, spawn_placed(sys, ACTOR_PLACE_LEAST_LOADED));
	ck_assert_msg(third == 1 || third == 2, "picked worker %u with loads 5,3,3,4", third);

	/* Emptying worker 0 makes it the choice. */
	for (unsigned i = 0; i < 5; i++)
		ck_assert_int_eq(actor_stop(sys, on0[i]), 0);
	ck_assert_msg(WAIT_UNTIL(resident_on(sys, 0) == 0, 10), "worker 0 still has %u actors",
	              resident_on(sys, 0));
	ck_assert_uint_eq(worker_of(sys, spawn_placed(sys, ACTOR_PLACE_LEAST_LOADED)), 0);
	ck_assert_uint_eq(resident_on(sys, 0), 1);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Hash
 */

static unsigned spawn_hashed(actor_system_t *sys, uint64_t key)
{
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_HASH, .key = key};
	return worker_of(sys, spawn_ok(sys, &opts, idle_behavior, NULL));
}

/* Spawns every key twice, checks both land together, and that the keys spread. */
static void check_hash_keys(actor_system_t *sys, uint64_t stride, unsigned *first_choice)
{
	unsigned per_worker[WORKERS] = {0};
	for (uint64_t k = 0; k < HASH_KEYS; k++) {
		unsigned a = spawn_hashed(sys, k * stride), b = spawn_hashed(sys, k * stride);
		ck_assert_msg(a == b, "key %#" PRIx64 " went to workers %u and %u", k * stride, a,
		              b);
		per_worker[a]++;
		if (first_choice != NULL)
			first_choice[k] = a;
	}
	/* A fair share is HASH_KEYS / WORKERS = 125; any usable hash gives each worker half. */
	for (unsigned w = 0; w < WORKERS; w++)
		ck_assert_msg(per_worker[w] >= HASH_KEYS / WORKERS / 2,
		              "stride %#" PRIx64 ": worker %u got %u of %u keys", stride, w,
		              per_worker[w], HASH_KEYS);
}

START_TEST(hash_placement_is_deterministic_per_key_and_spreads_keys)
{
	actor_system_t *sys = system_new(WORKERS);
	check_hash_keys(sys, 1, NULL);
	actor_system_free(sys);
}
END_TEST

START_TEST(hash_placement_spreads_keys_that_differ_only_in_high_bits)
{
	actor_system_t *sys = system_new(WORKERS);
	check_hash_keys(sys, 1u << 20, NULL); /* aligned pointers, shifted ids */
	check_hash_keys(sys, (uint64_t)WORKERS, NULL);
	actor_system_free(sys);
}
END_TEST

struct hash_task {
	unsigned chosen[HASH_KEYS];
	int rc;
};

static void spawn_hashed_inside(actor_ctx_t *ctx, void *arg)
{
	struct hash_task *t = arg;
	actor_system_t *sys = actor_ctx_system(ctx);
	for (uint64_t k = 0; k < HASH_KEYS && t->rc == 0; k++) {
		actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_HASH, .key = k};
		actor_ref_t r;
		actor_info_t info = {0};
		t->rc = actor_spawn(sys, &opts, idle_behavior, NULL, &r);
		if (t->rc == 0)
			t->rc = actor_info(sys, r, &info);
		t->chosen[k] = info.worker;
	}
}

START_TEST(hash_placement_ignores_who_spawns)
{
	actor_system_t *sys = system_new(WORKERS);
	unsigned outside[HASH_KEYS];
	check_hash_keys(sys, 1, outside);
	static struct hash_task t;
	actor_spawn_opts_t on3 = {.placement = ACTOR_PLACE_FIXED, .worker = 3};
	run_in_actor(sys, &on3, spawn_hashed_inside, &t);
	ck_assert_int_eq(t.rc, 0);
	for (unsigned k = 0; k < HASH_KEYS; k++)
		ck_assert_uint_eq(t.chosen[k], outside[k]);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Fixed
 */

START_TEST(fixed_placement_honours_the_worker)
{
	actor_system_t *sys = system_new(WORKERS);
	atomic_int reports[WORKERS] = {0};
	for (unsigned w = 0; w < WORKERS; w++) {
		actor_ref_t r = spawn_on(sys, w, report_worker, &reports[w]);
		ck_assert_uint_eq(worker_of(sys, r), w);
		send_ok(sys, r, 1, NULL, 0);
	}
	for (unsigned w = 0; w < WORKERS; w++) {
		assert_eventually(atomic_load(&reports[w]) != 0, 10);
		assert_atomic_eq(reports[w], (int)w + 1);
		ck_assert_uint_eq(resident_on(sys, w), 1);
	}
	actor_system_free(sys);
}
END_TEST

START_TEST(fixed_placement_rejects_a_worker_out_of_range)
{
	actor_system_t *sys = system_new(WORKERS);
	static const unsigned bad[] = {WORKERS, WORKERS + 1, ACTOR_WORKERS_MAX, UINT_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .worker = bad[i]};
		actor_ref_t r = ACTOR_REF_NONE;
		ck_assert_int_eq(actor_spawn(sys, &opts, idle_behavior, NULL, &r), -EINVAL);
	}
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, 0);
	for (unsigned w = 0; w < WORKERS; w++)
		ck_assert_uint_eq(resident_on(sys, w), 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Callback
 */

struct placer {
	int answer;
	unsigned calls;
	void *arg_seen;
	unsigned workers;
	int spawner_worker;
	uint64_t key;
	unsigned loads[WORKERS];
};

static int place_by_answer(void *arg, const actor_place_info_t *info)
{
	struct placer *p = arg;
	p->calls++;
	p->arg_seen = arg;
	p->workers = info->workers;
	p->spawner_worker = info->spawner_worker;
	p->key = info->key;
	for (unsigned i = 0; i < WORKERS && i < info->workers; i++)
		p->loads[i] = info->loads[i];
	return p->answer;
}

static int spawn_by_callback(actor_system_t *sys, struct placer *p, uint64_t key, actor_ref_t *out)
{
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_CALLBACK,
	                           .place = place_by_answer,
	                           .place_arg = p,
	                           .key = key};
	return actor_spawn(sys, &opts, idle_behavior, NULL, out);
}

START_TEST(callback_placement_sees_the_spawn_info_and_is_obeyed)
{
	actor_system_t *sys = system_new(WORKERS);
	spawn_on(sys, 1, idle_behavior, NULL);
	spawn_on(sys, 1, idle_behavior, NULL);
	spawn_on(sys, 3, idle_behavior, NULL);
	struct placer p = {.answer = 3};
	actor_ref_t r;

	ck_assert_int_eq(spawn_by_callback(sys, &p, 0xabcdef0123ull, &r), 0);
	ck_assert_uint_eq(p.calls, 1);
	ck_assert_ptr_eq(p.arg_seen, &p);
	ck_assert_uint_eq(p.workers, WORKERS);
	ck_assert_int_eq(p.spawner_worker, -1);
	ck_assert_uint_eq(p.key, 0xabcdef0123ull);
	ck_assert_uint_eq(p.loads[0], 0);
	ck_assert_uint_eq(p.loads[1], 2);
	ck_assert_uint_eq(p.loads[2], 0);
	ck_assert_uint_eq(p.loads[3], 1);
	ck_assert_uint_eq(worker_of(sys, r), 3);

	p.answer = 0;
	ck_assert_int_eq(spawn_by_callback(sys, &p, 7, &r), 0);
	ck_assert_uint_eq(p.calls, 2);
	ck_assert_uint_eq(p.loads[3], 2); /* the previous spawn counts */
	ck_assert_uint_eq(worker_of(sys, r), 0);
	actor_system_free(sys);
}
END_TEST

struct callback_task {
	struct placer p;
	int rc;
	unsigned chosen;
};

static void spawn_by_callback_inside(actor_ctx_t *ctx, void *arg)
{
	struct callback_task *t = arg;
	actor_ref_t r;
	actor_info_t info = {0};
	t->rc = spawn_by_callback(actor_ctx_system(ctx), &t->p, 99, &r);
	if (t->rc == 0)
		t->rc = actor_info(actor_ctx_system(ctx), r, &info);
	t->chosen = info.worker;
}

START_TEST(callback_placement_knows_the_spawning_worker)
{
	actor_system_t *sys = system_new(WORKERS);
	struct callback_task t = {.p = {.answer = 1}};
	actor_spawn_opts_t on2 = {.placement = ACTOR_PLACE_FIXED, .worker = 2};
	run_in_actor(sys, &on2, spawn_by_callback_inside, &t);
	ck_assert_int_eq(t.rc, 0);
	ck_assert_uint_eq(t.p.calls, 1);
	ck_assert_int_eq(t.p.spawner_worker, 2);
	ck_assert_uint_eq(t.p.key, 99);
	ck_assert_uint_eq(t.p.loads[2], 1); /* the spawning actor itself */
	ck_assert_uint_eq(t.chosen, 1);
	actor_system_free(sys);
}
END_TEST

START_TEST(callback_placement_out_of_range_fails_with_einval)
{
	actor_system_t *sys = system_new(WORKERS);
	static const int bad[] = {WORKERS, WORKERS + 1, -1, INT_MIN, INT_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct placer p = {.answer = bad[i]};
		actor_ref_t r;
		ck_assert_int_eq(spawn_by_callback(sys, &p, 0, &r), -EINVAL);
		ck_assert_uint_eq(p.calls, 1);
	}
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, 0);
	actor_system_free(sys);
}
END_TEST

static Suite *placement_suite(void)
{
	Suite *s = suite_create("placement");
	TCase *tc = tcase_new("round-robin and local", TEST_TIMEOUT);
	tcase_add_test(tc, round_robin_spreads_spawns_across_workers);
	tcase_add_test(tc, round_robin_from_a_behaviour_spreads_too);
	tcase_add_test(tc, local_placement_keeps_children_on_the_spawners_worker);
	tcase_add_test(tc, local_placement_from_outside_the_pool_rotates);
	suite_add_tcase(s, tc);

	tc = tcase_new("least loaded and hash", TEST_TIMEOUT);
	tcase_add_test(tc, least_loaded_picks_the_emptiest_worker);
	tcase_add_test(tc, hash_placement_is_deterministic_per_key_and_spreads_keys);
	tcase_add_test(tc, hash_placement_spreads_keys_that_differ_only_in_high_bits);
	tcase_add_test(tc, hash_placement_ignores_who_spawns);
	suite_add_tcase(s, tc);

	tc = tcase_new("fixed and callback", TEST_TIMEOUT);
	tcase_add_test(tc, fixed_placement_honours_the_worker);
	tcase_add_test(tc, fixed_placement_rejects_a_worker_out_of_range);
	tcase_add_test(tc, callback_placement_sees_the_spawn_info_and_is_obeyed);
	tcase_add_test(tc, callback_placement_knows_the_spawning_worker);
	tcase_add_test(tc, callback_placement_out_of_range_fails_with_einval);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(placement_suite)
