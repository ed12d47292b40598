/* test_misuse.c: bad arguments and calls at the wrong time get a clear error code, never a
 * crash, and a call that failed has no later effect (its target sees no message).
 */
#include "common.h"

#include <limits.h>

enum { MSG_COUNT = 1, MSG_EXIT };

/* Counts messages; stops on MSG_EXIT. */
struct sink {
	atomic_int calls;
	uint32_t last_type, last_size;
	bool size_ok;
};

static void sink_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sink *s = state;
	s->last_type = msg->type;
	s->last_size = msg->size;
	atomic_fetch_add(&s->calls, 1);
	if (msg->type == MSG_EXIT)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Ends the system through its sink and checks the sink saw exactly `expected` messages
 * (the MSG_EXIT included) and the counters agree. */
static void finish_with_sink(actor_system_t *sys, actor_ref_t sink, struct sink *s, int expected)
{
	send_ok(sys, sink, MSG_EXIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "misuse");
	assert_atomic_eq(s->calls, expected);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.sent, (uint64_t)expected);
	ck_assert_uint_eq(st.delivered, (uint64_t)expected);
	ck_assert_uint_eq(st.dead_letters, 0);
	actor_system_free(sys);
}

/* A zero-copy message for send_msg tests. */
static actor_msg_t *msg_new(void)
{
	actor_msg_t *m = NULL;
	ck_assert_int_eq(actor_msg_alloc(sizeof(actor_msg_t) + 8, MSG_COUNT, &m), 0);
	memset(actor_msg_data(m), 0x42, 8);
	return m;
}

/* ---------------------------------------------------------------------------------------------
 * Creating systems
 */

START_TEST(system_create_rejects_a_null_out)
{
	actor_config_t cfg = {.workers = 1};
	ck_assert_int_eq(actor_system_create(NULL, NULL), -EINVAL);
	ck_assert_int_eq(actor_system_create(&cfg, NULL), -EINVAL);
}
END_TEST

START_TEST(system_create_defaults_to_one_worker_per_cpu)
{
	actor_system_t *sys = NULL;
	ck_assert_int_eq(actor_system_create(NULL, &sys), 0);
	ck_assert_uint_eq(actor_system_workers(sys), test_cpus());
	actor_system_free(sys);
	actor_config_t zero = {0};
	sys = NULL;
	ck_assert_int_eq(actor_system_create(&zero, &sys), 0);
	ck_assert_uint_eq(actor_system_workers(sys), test_cpus());
	actor_system_free(sys);
}
END_TEST

START_TEST(system_create_rejects_absurd_worker_counts)
{
	static const unsigned bad[] = {ACTOR_WORKERS_MAX + 1, 100000, UINT_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		actor_config_t cfg = {.workers = bad[i]};
		actor_system_t *sys = NULL;
		ck_assert_int_eq(actor_system_create(&cfg, &sys), -EINVAL);
	}
}
END_TEST

START_TEST(system_create_rejects_a_shutdown_drain_out_of_range)
{
	static const int bad[] = {-2, -1000, ACTOR_TCP_LINGER_MS + 1, INT_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		actor_config_t cfg = {.workers = 1, .shutdown_drain_ms = bad[i]};
		actor_system_t *sys = NULL;
		ck_assert_int_eq(actor_system_create(&cfg, &sys), -EINVAL);
		ck_assert_ptr_null(sys);
	}
	static const int good[] = {-1, 1, ACTOR_TCP_LINGER_MS};
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		actor_config_t cfg = {.workers = 1, .shutdown_drain_ms = good[i]};
		actor_system_t *sys = NULL;
		ck_assert_int_eq(actor_system_create(&cfg, &sys), 0);
		actor_system_free(sys);
	}
}
END_TEST

START_TEST(system_create_rejects_pinning_flags_out_of_range_or_at_odds)
{
	static const actor_config_t bad[] = {
	    {.workers = 1, .pin = 2},
	    {.workers = 1, .pin = -1},
	    {.workers = 1, .no_move = 2},
	    {.workers = 1, .no_move = -1},
	    {.workers = 1, .pin = 1, .no_pin = 1},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		actor_system_t *sys = NULL;
		ck_assert_int_eq(actor_system_create(&bad[i], &sys), -EINVAL);
		ck_assert_ptr_null(sys);
	}
	static const actor_config_t good[] = {
	    {.workers = 1, .pin = 1}, {.workers = 1, .no_pin = 1}, {.workers = 1, .no_move = 1}};
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		actor_system_t *sys = NULL;
		ck_assert_int_eq(actor_system_create(&good[i], &sys), 0);
		actor_system_free(sys);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * NULL arguments
 */

START_TEST(null_system_is_rejected_everywhere)
{
	actor_ref_t some = {.id = (1ull << 32) | 1};
	actor_worker_stats_t ws;
	actor_stats_t st;
	actor_info_t info;
	actor_ref_t out;
	actor_msg_t *m = msg_new();

	ck_assert_int_eq(actor_system_run(NULL), -EINVAL);
	ck_assert_int_eq(actor_system_shutdown(NULL), -EINVAL);
	actor_system_free(NULL);
	ck_assert_uint_eq(actor_system_workers(NULL), 0);
	ck_assert_int_eq(actor_spawn(NULL, NULL, sink_behavior, NULL, &out), -EINVAL);
	ck_assert_int_eq(actor_send(NULL, some, MSG_COUNT, "x", 1), -EINVAL);
	ck_assert_int_eq(actor_send_msg(NULL, some, m), -EINVAL);
	ck_assert_int_eq(actor_stop(NULL, some), -EINVAL);
	ck_assert_int_eq(actor_monitor(NULL, some, some), -EINVAL);
	ck_assert_int_eq(actor_stats_worker(NULL, 0, &ws), -EINVAL);
	ck_assert_int_eq(actor_stats_system(NULL, &st), -EINVAL);
	ck_assert_int_eq(actor_stats_print(NULL, stderr), -EINVAL);
	ck_assert_int_eq(actor_info(NULL, some, &info), -EINVAL);
	/* The failed send_msg left the message with us. */
	ck_assert_uint_eq(((unsigned char *)actor_msg_data(m))[7], 0x42);
	actor_msg_free(m);
	actor_msg_free(NULL);
}
END_TEST

START_TEST(null_arguments_are_rejected_with_einval)
{
	actor_system_t *sys = system_new(1);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	actor_ref_t out = ACTOR_REF_NONE;

	ck_assert_int_eq(actor_spawn(sys, NULL, NULL, NULL, &out), -EINVAL);
	ck_assert_int_eq(actor_send(sys, sink, MSG_COUNT, NULL, 5), -EINVAL);
	ck_assert_int_eq(actor_send_msg(sys, sink, NULL), -EINVAL);
	ck_assert_int_eq(actor_msg_alloc(64, MSG_COUNT, NULL), -EINVAL);
	ck_assert_int_eq(actor_stats_worker(sys, 0, NULL), -EINVAL);
	ck_assert_int_eq(actor_stats_system(sys, NULL), -EINVAL);
	ck_assert_int_eq(actor_stats_print(sys, NULL), -EINVAL);
	ck_assert_int_eq(actor_info(sys, sink, NULL), -EINVAL);
	/* Outside a behaviour there is no ctx. */
	ck_assert_int_eq(actor_become(NULL, sink_behavior), -EINVAL);
	ck_assert_int_eq(actor_exit(NULL, 0), -EINVAL);
	ck_assert_int_eq(actor_msg_keep(NULL), -EINVAL);
	ck_assert(actor_ref_is_none(actor_self(NULL)));
	ck_assert(actor_ref_is_none(actor_sender(NULL)));
	ck_assert_ptr_null(actor_ctx_system(NULL));
	finish_with_sink(sys, sink, &s, 1);
}
END_TEST

START_TEST(spawn_without_an_out_ref_does_not_crash)
{
	/* Not documented either way: a fire-and-forget spawn may be allowed or refused. */
	actor_system_t *sys = system_new(1);
	int rc = actor_spawn(sys, NULL, sink_behavior, NULL, NULL);
	ck_assert_msg(rc == 0 || rc == -EINVAL, "actor_spawn with NULL out returned %d", rc);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, rc == 0 ? 1 : 0);
	actor_system_free(sys);
}
END_TEST

START_TEST(msg_alloc_rejects_sizes_below_the_header)
{
	actor_msg_t *m = NULL;
	ck_assert_int_eq(actor_msg_alloc(0, MSG_COUNT, &m), -EINVAL);
	ck_assert_int_eq(actor_msg_alloc(sizeof(actor_msg_t) - 1, MSG_COUNT, &m), -EINVAL);
	ck_assert_int_eq(actor_msg_alloc(sizeof(actor_msg_t), MSG_COUNT, &m), 0);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->size, 0);
	ck_assert_uint_eq(m->type, MSG_COUNT);
	actor_msg_free(m);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Sizes and types
 */

START_TEST(oversize_payload_is_rejected_with_emsgsize)
{
	actor_system_t *sys = system_new(1);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	char *big = malloc((size_t)ACTOR_MSG_MAX + 1);
	ck_assert_ptr_nonnull(big);
	actor_msg_t *m = NULL;

	ck_assert_int_eq(actor_send(sys, sink, MSG_COUNT, big, (size_t)ACTOR_MSG_MAX + 1),
	                 -EMSGSIZE);
	ck_assert_int_eq(actor_send(sys, sink, MSG_COUNT, big, SIZE_MAX), -EMSGSIZE);
	ck_assert_int_eq(actor_send(sys, sink, MSG_COUNT, big, SIZE_MAX / 2), -EMSGSIZE);
	ck_assert_int_eq(actor_msg_alloc(sizeof(actor_msg_t) + ACTOR_MSG_MAX + 1, MSG_COUNT, &m),
	                 -EMSGSIZE);
	ck_assert_int_eq(actor_msg_alloc(SIZE_MAX, MSG_COUNT, &m), -EMSGSIZE);
	ck_assert_int_eq(actor_msg_alloc(SIZE_MAX - sizeof(actor_msg_t) + 1, MSG_COUNT, &m),
	                 -EMSGSIZE);

	/* The largest payload is fine. */
	memset(big, 0x17, ACTOR_MSG_MAX);
	send_ok(sys, sink, MSG_COUNT, big, ACTOR_MSG_MAX);
	assert_eventually(atomic_load(&s.calls) == 1, 10);
	ck_assert_uint_eq(s.last_size, ACTOR_MSG_MAX);
	ck_assert_int_eq(actor_msg_alloc(sizeof(actor_msg_t) + ACTOR_MSG_MAX, MSG_COUNT, &m), 0);
	ck_assert_uint_eq(m->size, ACTOR_MSG_MAX);
	actor_msg_free(m);
	free(big);
	finish_with_sink(sys, sink, &s, 2);
}
END_TEST

START_TEST(system_message_types_are_rejected_with_einval)
{
	actor_system_t *sys = system_new(1);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	static const uint32_t bad[] = {ACTOR_MSG_SYSTEM, ACTOR_MSG_DOWN, ACTOR_MSG_SYSTEM + 0x100,
	                               ACTOR_MSG_SYSTEM + 0x101, UINT32_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(actor_send(sys, sink, bad[i], "x", 1), -EINVAL);
		if (bad[i] < ACTOR_MSG_SYSTEM + 0x100)
			continue; /* the library's messages to behaviours may be passed on */
		actor_msg_t *m = msg_new();
		m->type = bad[i];
		ck_assert_int_eq(actor_send_msg(sys, sink, m), -EINVAL);
		ck_assert_uint_eq(m->type, bad[i]); /* still ours */
		actor_msg_free(m);
	}
	/* The largest user type is fine. */
	send_ok(sys, sink, ACTOR_MSG_SYSTEM - 1, NULL, 0);
	assert_eventually(atomic_load(&s.calls) == 1, 10);
	ck_assert_uint_eq(s.last_type, ACTOR_MSG_SYSTEM - 1);
	finish_with_sink(sys, sink, &s, 2);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bad references
 */

START_TEST(none_ref_is_rejected_the_same_way_everywhere)
{
	/* The header only says the zero ref "names no actor": -EINVAL (bad argument) and -ESRCH
	 * (no such actor) are both faithful to it, as long as every call gives the same answer.
	 * Success or a crash is not. */
	actor_system_t *sys = system_new(1);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	actor_info_t info;
	actor_msg_t *m = msg_new();
	int rc = actor_send(sys, ACTOR_REF_NONE, MSG_COUNT, "x", 1);
	ck_assert_msg(rc == -EINVAL || rc == -ESRCH, "send to ACTOR_REF_NONE returned %d", rc);

	ck_assert_int_eq(actor_send_msg(sys, ACTOR_REF_NONE, m), rc);
	actor_msg_free(m);
	ck_assert_int_eq(actor_stop(sys, ACTOR_REF_NONE), rc);
	ck_assert_int_eq(actor_info(sys, ACTOR_REF_NONE, &info), rc);
	ck_assert_int_eq(actor_monitor(sys, ACTOR_REF_NONE, sink), rc);
	finish_with_sink(sys, sink, &s, 1);
}
END_TEST

START_TEST(forged_refs_are_rejected_with_esrch)
{
	actor_system_t *sys = system_new(2);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	const actor_ref_t forged[] = {
	    {sink.id ^ (1ull << 32)},            /* right slot, wrong generation */
	    {sink.id + (1ull << 32)},            /* a generation still to come */
	    {(sink.id & ~0xffffffffull) | 1000}, /* a slot never used */
	    {(1ull << 32) | 0xfffffff0u},        /* a slot in a chunk never allocated */
	    {0xdeadbeefcafef00dull},
	    {UINT64_MAX},
	};
	for (unsigned i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		actor_ref_t f = forged[i];
		actor_info_t info;
		ck_assert(!actor_ref_eq(f, sink));
		ck_assert_int_eq(actor_send(sys, f, MSG_COUNT, "x", 1), -ESRCH);
		actor_msg_t *m = msg_new();
		ck_assert_int_eq(actor_send_msg(sys, f, m), -ESRCH);
		actor_msg_free(m);
		ck_assert_int_eq(actor_stop(sys, f), -ESRCH);
		ck_assert_int_eq(actor_info(sys, f, &info), -ESRCH);
		ck_assert_int_eq(actor_monitor(sys, f, sink), -ESRCH);
	}
	finish_with_sink(sys, sink, &s, 1);
}
END_TEST

START_TEST(stats_of_a_worker_out_of_range_are_rejected)
{
	actor_system_t *sys = system_new(2);
	actor_worker_stats_t ws;
	ck_assert_int_eq(actor_stats_worker(sys, 1, &ws), 0);
	ck_assert_int_eq(actor_stats_worker(sys, 2, &ws), -EINVAL);
	ck_assert_int_eq(actor_stats_worker(sys, UINT_MAX, &ws), -EINVAL);
	actor_system_free(sys);
}
END_TEST

START_TEST(unknown_placement_is_rejected)
{
	actor_system_t *sys = system_new(2);
	actor_ref_t out;
	actor_spawn_opts_t bad_policy = {.placement = (actor_placement_t)99};
	actor_spawn_opts_t no_callback = {.placement = ACTOR_PLACE_CALLBACK};
	ck_assert_int_eq(actor_spawn(sys, &bad_policy, sink_behavior, NULL, &out), -EINVAL);
	ck_assert_int_eq(actor_spawn(sys, &no_callback, sink_behavior, NULL, &out), -EINVAL);
	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Calls at the wrong time
 */

START_TEST(calls_after_run_returned_fail)
{
	actor_system_t *sys = system_new(2);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	send_ok(sys, sink, MSG_EXIT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "a system about to be misused");

	actor_ref_t out;
	actor_info_t info;
	ck_assert_int_eq(actor_spawn(sys, NULL, sink_behavior, &s, &out), -ESHUTDOWN);
	int rc = actor_send(sys, sink, MSG_COUNT, "x", 1);
	ck_assert_msg(rc == -ESHUTDOWN || rc == -ESRCH, "send after run returned %d", rc);
	ck_assert_int_eq(actor_info(sys, sink, &info), -ESRCH);
	ck_assert_int_eq(actor_system_run(sys), -EINVAL); /* twice */
	ck_assert_int_eq(actor_system_shutdown(sys), 0);  /* harmless now */

	actor_stats_t st;
	ck_assert_int_eq(actor_stats_system(sys, &st), 0);
	ck_assert_uint_eq(st.spawned, 1);
	ck_assert_uint_eq(st.sent, 1);
	assert_atomic_eq(s.calls, 1);
	actor_system_free(sys);
}
END_TEST

START_TEST(calls_after_shutdown_fail)
{
	actor_system_t *sys = system_new(2);
	struct sink s = {0};
	actor_ref_t sink = spawn_ok(sys, NULL, sink_behavior, &s);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "run after shutdown");

	actor_ref_t out;
	ck_assert_int_eq(actor_spawn(sys, NULL, sink_behavior, &s, &out), -ESHUTDOWN);
	int rc = actor_send(sys, sink, MSG_COUNT, "x", 1);
	ck_assert_msg(rc == -ESHUTDOWN || rc == -ESRCH, "send after shutdown returned %d", rc);
	actor_msg_t *m = msg_new();
	rc = actor_send_msg(sys, sink, m);
	ck_assert_msg(rc == -ESHUTDOWN || rc == -ESRCH, "send_msg after shutdown returned %d", rc);
	actor_msg_free(m);
	assert_atomic_eq(s.calls, 0);
	actor_system_free(sys);
}
END_TEST

static void *run_in_thread(void *arg)
{
	return (void *)(intptr_t)actor_system_run(arg);
}

START_TEST(second_concurrent_run_is_rejected)
{
	actor_system_t *sys = system_new(2);
	struct sink s = {0};
	spawn_ok(sys, NULL, sink_behavior, &s); /* keeps the first run waiting */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, run_in_thread, sys), 0);
	sleep_ms(50);
	ck_assert_int_eq(actor_system_run(sys), -EINVAL);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	void *rc;
	pthread_join(t, &rc);
	ck_assert_int_eq((int)(intptr_t)rc, 0);
	actor_system_free(sys);
}
END_TEST

struct inside {
	int run_rc, become_rc;
	unsigned calls;
};

static void misuse_inside(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct inside *in = state;
	(void)msg;
	in->calls++;
	if (in->calls == 1) {
		in->run_rc = actor_system_run(actor_ctx_system(ctx));
		in->become_rc = actor_become(ctx, NULL);
		return;
	}
	/* Still this behaviour: become(NULL) changed nothing. */
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(run_from_a_behaviour_and_become_null_are_rejected)
{
	actor_system_t *sys = system_new(2);
	struct inside in = {0};
	actor_ref_t a = spawn_ok(sys, NULL, misuse_inside, &in);
	send_ok(sys, a, MSG_COUNT, NULL, 0);
	send_ok(sys, a, MSG_COUNT, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "misuse inside a behaviour");
	ck_assert_int_eq(in.run_rc, -EINVAL);
	ck_assert_int_eq(in.become_rc, -EINVAL);
	ck_assert_uint_eq(in.calls, 2);
	actor_system_free(sys);
}
END_TEST

static Suite *misuse_suite(void)
{
	Suite *s = suite_create("misuse");
	TCase *tc = tcase_new("arguments", TEST_TIMEOUT);
	tcase_add_test(tc, system_create_rejects_a_null_out);
	tcase_add_test(tc, system_create_defaults_to_one_worker_per_cpu);
	tcase_add_test(tc, system_create_rejects_absurd_worker_counts);
	tcase_add_test(tc, system_create_rejects_a_shutdown_drain_out_of_range);
	tcase_add_test(tc, system_create_rejects_pinning_flags_out_of_range_or_at_odds);
	tcase_add_test(tc, null_system_is_rejected_everywhere);
	tcase_add_test(tc, null_arguments_are_rejected_with_einval);
	tcase_add_test(tc, spawn_without_an_out_ref_does_not_crash);
	tcase_add_test(tc, msg_alloc_rejects_sizes_below_the_header);
	tcase_add_test(tc, oversize_payload_is_rejected_with_emsgsize);
	tcase_add_test(tc, system_message_types_are_rejected_with_einval);
	tcase_add_test(tc, none_ref_is_rejected_the_same_way_everywhere);
	tcase_add_test(tc, forged_refs_are_rejected_with_esrch);
	tcase_add_test(tc, stats_of_a_worker_out_of_range_are_rejected);
	tcase_add_test(tc, unknown_placement_is_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_new("timing", TEST_TIMEOUT);
	tcase_add_test(tc, calls_after_run_returned_fail);
	tcase_add_test(tc, calls_after_shutdown_fail);
	tcase_add_test(tc, second_concurrent_run_is_rejected);
	tcase_add_test(tc, run_from_a_behaviour_and_become_null_are_rejected);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(misuse_suite)
