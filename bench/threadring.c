/* threadring.c: a token passed around a ring of actors, one hop at a time.
 *
 * Usage: bench/threadring [hops] [actors]   (defaults 10,000,000 and 503)
 *
 * The benchmarks-game shape: actor 1 gets the token holding `hops`; each actor passes it on,
 * one lower, and the actor that receives 0 holds it at the end. That must be actor
 * (hops mod actors) + 1, which the program checks. Only one message is ever in flight, so this
 * measures the cost of one send plus one wake-up of the receiver.
 *
 * Placement: one token means no parallelism to win, and a cross-core hand-off on every hop to
 * lose, so the ring lives on one worker (ACTOR_PLACE_FIXED), where an expert would put it:
 * `threadring_<n>`. The program then runs the ring again spread by the round-robin policy and
 * kept there (`stay`: the library would otherwise gather the ring onto one worker, following
 * the token), so that neighbours sit on different workers, and reports that as
 * `threadring_<n>_spread`: the price of placing a sequential chain across cores.
 *
 * To stop, the final holder sends an EXIT around the ring and stops; each actor forwards it
 * and stops, except the one whose neighbour is the holder, which just stops. No message is
 * ever sent to a stopped actor.
 */
#include <stdbool.h>

#include "bench.h"

#define HOPS_DEFAULT 10000000u
#define ACTORS_DEFAULT 503u

enum { MSG_TOKEN = 1, MSG_EXIT };

struct ring {
	unsigned nactors;
	uint64_t t1;
	unsigned holder; /* 1-based id of the final holder; 0 until then */
};

struct node {
	actor_ref_t next;
	unsigned id; /* 1-based, as in the benchmarks game */
	struct ring *ring;
};

static void node_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct node *n = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	unsigned next_id = n->id % n->ring->nactors + 1;
	uint64_t v;

	memcpy(&v, actor_msg_data(msg), sizeof(v));
	if (msg->type == MSG_TOKEN && v > 0) {
		v--;
		bench_check(actor_send(sys, n->next, MSG_TOKEN, &v, sizeof(v)),
		            "actor_send(token)");
		return;
	}
	if (msg->type == MSG_TOKEN) {
		/* This actor holds the token at the end: start the exit wave, carrying its id. */
		n->ring->t1 = bench_now_ns();
		n->ring->holder = n->id;
		v = n->id;
	}
	if (next_id != v)
		bench_check(actor_send(sys, n->next, MSG_EXIT, &v, sizeof(v)), "actor_send(exit)");
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* One run; returns 0 if the token ended where it must. */
static int run_ring(uint64_t hops, unsigned nactors, bool spread)
{
	struct ring ring = {.nactors = nactors};
	struct node *nodes = calloc(nactors, sizeof(*nodes));
	actor_ref_t *refs = calloc(nactors, sizeof(*refs));
	actor_system_t *sys = bench_system(0);
	actor_spawn_opts_t one_worker = {.placement = ACTOR_PLACE_FIXED, .worker = 0};
	actor_spawn_opts_t spread_out = {.stay = 1}; /* round-robin, and no following */

	if (nodes == NULL || refs == NULL)
		bench_check(-ENOMEM, "calloc");
	for (unsigned i = 0; i < nactors; i++) {
		nodes[i].id = i + 1;
		nodes[i].ring = &ring;
		bench_check(
		    actor_spawn(sys, spread ? &spread_out : &one_worker, node_fn, &nodes[i], &refs[i]),
		    "actor_spawn");
	}
	/* Links are filled in before the first message, whose send publishes them. */
	for (unsigned i = 0; i < nactors; i++)
		nodes[i].next = refs[(i + 1) % nactors];

	uint64_t t0 = bench_now_ns();
	bench_check(actor_send(sys, refs[0], MSG_TOKEN, &hops, sizeof(hops)), "actor_send(token)");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);

	unsigned want = (unsigned)(hops % nactors) + 1;
	int rc = 0;
	if (ring.holder != want) {
		fprintf(stderr, "threadring: token ended at actor %u, expected %u\n", ring.holder,
		        want);
		rc = 1;
	} else {
		char name[64];
		snprintf(name, sizeof(name), "threadring_%u%s", nactors, spread ? "_spread" : "");
		bench_result(name, "hops_per_s", (double)hops / bench_secs(t0, ring.t1), "1/s");
	}
	free(refs);
	free(nodes);
	return rc;
}

int main(int argc, char **argv)
{
	uint64_t hops = bench_arg_u64(argc, argv, 1, HOPS_DEFAULT, UINT64_MAX / 2);
	unsigned nactors = (unsigned)bench_arg_u64(argc, argv, 2, ACTORS_DEFAULT, 10000000u);
	int rc = run_ring(hops, nactors, false);
	/* The spread ring is slower by an order of magnitude: a tenth of the hops is plenty. */
	rc |= run_ring(hops / 10 > 0 ? hops / 10 : hops, nactors, true);
	return rc;
}
