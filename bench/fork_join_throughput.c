/* fork_join_throughput.c: the Savina fork-join (throughput) benchmark: one outside thread
 * feeding many actors.
 *
 * Usage: bench/fork_join_throughput [messages] [actors]   (defaults 10,000 and 60)
 *
 * The main thread, outside the worker pool, sends `messages` rounds of one message to each of
 * `actors` actors. Each message costs its actor Savina's small computation (the square of a
 * sine); an actor stops after its last message. Each actor checks it got exactly `messages`
 * messages and that every computation gave a positive result (which also keeps the compiler from
 * dropping it). Actors are placed by the default policy.
 *
 * Time runs from the first spawn until the system's run returns, once the last actor has stopped
 * (Savina's metric: execution time).
 */
#include <math.h>

#include "bench.h"

#define MESSAGES_DEFAULT 10000u
#define ACTORS_DEFAULT 60u
#define THETA 37.2 /* Savina's argument to performComputation */

enum { MSG_WORK = 1 };

struct worker {
	double theta; /* read from memory, so the sine cannot be folded at compile time */
	uint64_t expected, processed;
	uint64_t bad; /* computations that gave a non-positive result */
};

/* Savina's performComputation: sin(theta) squared. */
static double compute(double theta)
{
	double s = sin(theta);
	return s * s;
}

static void worker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct worker *w = state;

	(void)msg;
	if (compute(w->theta) <= 0)
		w->bad++;
	if (++w->processed == w->expected)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

int main(int argc, char **argv)
{
	uint64_t messages = bench_arg_u64(argc, argv, 1, MESSAGES_DEFAULT, UINT64_MAX / 2);
	unsigned nactors = (unsigned)bench_arg_u64(argc, argv, 2, ACTORS_DEFAULT, 1000000u);
	struct worker *ws = calloc(nactors, sizeof(*ws));
	actor_ref_t *refs = calloc(nactors, sizeof(*refs));
	actor_system_t *sys = bench_system(0);

	if (ws == NULL || refs == NULL)
		bench_check(-ENOMEM, "calloc");

	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < nactors; i++) {
		ws[i].theta = THETA;
		ws[i].expected = messages;
		bench_check(actor_spawn(sys, NULL, worker_fn, &ws[i], &refs[i]), "actor_spawn");
	}
	for (uint64_t m = 0; m < messages; m++)
		for (unsigned i = 0; i < nactors; i++)
			bench_check(actor_send(sys, refs[i], MSG_WORK, NULL, 0), "actor_send");
	bench_check(actor_system_run(sys), "actor_system_run");
	uint64_t t1 = bench_now_ns();
	bench_dead_letters(sys);
	actor_system_free(sys);

	int rc = 0;
	for (unsigned i = 0; i < nactors; i++) {
		if (ws[i].processed != messages || ws[i].bad != 0) {
			fprintf(stderr,
			        "fork_join_throughput: actor %u processed %" PRIu64 " of %" PRIu64
			        " messages, %" PRIu64 " bad results\n",
			        i, ws[i].processed, messages, ws[i].bad);
			rc = 1;
		}
	}
	if (rc == 0)
		bench_result("fork_join_throughput", "time", bench_ms(t0, t1), "ms");
	free(refs);
	free(ws);
	return rc;
}
