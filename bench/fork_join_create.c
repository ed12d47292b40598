/* fork_join_create.c: the Savina fork-join (actor creation) benchmark: many short-lived actors,
 * one message each.
 *
 * Usage: bench/fork_join_create [actors]   (default 40,000)
 *
 * The main thread, outside the worker pool, spawns `actors` actors one after another and sends
 * each one message. An actor does Savina's small computation (the square of a sine), counts
 * itself done and stops. The count must reach `actors`, with every computation positive (which
 * also keeps the compiler from dropping it). Actors are placed by the default policy, so they
 * run while the main thread is still spawning.
 *
 * Time runs from the first spawn until the system's run returns, once the last actor has stopped
 * (Savina's metric: execution time).
 */
#include <math.h>
#include <stdatomic.h>

#include "bench.h"

#define ACTORS_DEFAULT 40000u
#define THETA 37.2 /* Savina's argument to performComputation */

enum { MSG_WORK = 1 };

/* Shared by every actor: the only record a stopped actor leaves. */
struct tally {
	double theta; /* read from memory, so the sine cannot be folded at compile time */
	_Atomic uint64_t done, bad;
};

/* Savina's performComputation: sin(theta) squared. */
static double compute(double theta)
{
	double s = sin(theta);
	return s * s;
}

static void worker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct tally *t = state;

	(void)msg;
	/* relaxed: the counts are read after actor_system_run, which joins the workers. */
	if (compute(t->theta) <= 0)
		atomic_fetch_add_explicit(&t->bad, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->done, 1, memory_order_relaxed);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

int main(int argc, char **argv)
{
	uint64_t nactors = bench_arg_u64(argc, argv, 1, ACTORS_DEFAULT, UINT64_C(100000000));
	struct tally t = {.theta = THETA};
	actor_system_t *sys = bench_system(0);

	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < nactors; i++) {
		actor_ref_t ref;
		bench_check(actor_spawn(sys, NULL, worker_fn, &t, &ref), "actor_spawn");
		bench_check(actor_send(sys, ref, MSG_WORK, NULL, 0), "actor_send");
	}
	bench_check(actor_system_run(sys), "actor_system_run");
	uint64_t t1 = bench_now_ns();
	bench_dead_letters(sys);
	actor_system_free(sys);

	uint64_t done = atomic_load(&t.done), bad = atomic_load(&t.bad);
	if (done != nactors || bad != 0) {
		fprintf(stderr,
		        "fork_join_create: %" PRIu64 " of %" PRIu64 " actors done, %" PRIu64
		        " bad results\n",
		        done, nactors, bad);
		return 1;
	}
	bench_result("fork_join_create", "time", bench_ms(t0, t1), "ms");
	return 0;
}
