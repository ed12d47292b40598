/* big.c: the Savina "big" benchmark: many actors each pinging random others, one at a time.
 *
 * Usage: bench/big [pings] [actors]   (defaults 20,000 and 120)
 *
 * Every actor knows every other (itself included). It sends a PING to one chosen by Savina's
 * pseudo-random generator, waits for the PONG, checks that it came from the actor it pinged, and
 * repeats `pings` times; then it tells the sink it is DONE. Every actor answers the pings it gets
 * meanwhile. Once all are done the sink sends EXIT to each; each replies with a TALLY of the pings
 * it answered and of the pongs that came from the wrong actor, and stops. The answered pings
 * must add up to actors * pings, with no wrong pong.
 *
 * Each actor has one ping outstanding, so up to `actors` messages are in flight between random
 * pairs: the all-to-all traffic of a busy system. Actors are placed by the default policy.
 * Time runs from the first spawn to the sink's receipt of the last tally (Savina's metric).
 */
#include "bench.h"

#define PINGS_DEFAULT 20000u
#define ACTORS_DEFAULT 120u
#define NOBODY UINT32_MAX /* the sender of the PONG that starts an actor */

enum { MSG_PING = 1, MSG_PONG, MSG_DONE, MSG_EXIT, MSG_TALLY };

struct tally {
	uint64_t answered; /* pings this actor answered */
	uint64_t wrong;    /* pongs that did not come from the actor it had pinged */
};

struct sink {
	unsigned nactors, done, tallied;
	const actor_ref_t *actors;
	struct tally total;
	uint64_t t1;
};

struct big {
	uint32_t id;
	uint32_t expected; /* the actor pinged last, whose PONG is due */
	uint64_t pings_left;
	uint64_t rand; /* Savina's PseudoRandom, seeded with the id */
	unsigned nactors;
	const actor_ref_t *actors; /* everyone, by id; filled in before the first message */
	actor_ref_t sink;
	struct tally tally;
};

/* Savina's PseudoRandom.nextInt(max): a 16-bit linear congruential generator. */
static uint32_t next_rand(uint64_t *v, uint32_t max)
{
	*v = (*v * 1309 + 13849) & 65535;
	return (uint32_t)*v % max;
}

static void sink_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sink *s = state;
	actor_system_t *sys = actor_ctx_system(ctx);

	if (msg->type == MSG_DONE) {
		if (++s->done == s->nactors) {
			for (unsigned i = 0; i < s->nactors; i++)
				bench_check(actor_send(sys, s->actors[i], MSG_EXIT, NULL, 0),
				            "actor_send(exit)");
		}
		return;
	}
	struct tally t;
	memcpy(&t, actor_msg_data(msg), sizeof(t));
	s->total.answered += t.answered;
	s->total.wrong += t.wrong;
	if (++s->tallied == s->nactors) {
		s->t1 = bench_now_ns();
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static void big_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct big *b = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	uint32_t from;

	switch (msg->type) {
	case MSG_PING:
		memcpy(&from, actor_msg_data(msg), sizeof(from));
		b->tally.answered++;
		bench_check(actor_send(sys, b->actors[from], MSG_PONG, &b->id, sizeof(b->id)),
		            "actor_send(pong)");
		break;
	case MSG_PONG:
		memcpy(&from, actor_msg_data(msg), sizeof(from));
		if (from != b->expected)
			b->tally.wrong++;
		if (b->pings_left == 0) {
			bench_check(actor_send(sys, b->sink, MSG_DONE, NULL, 0),
			            "actor_send(done)");
			break;
		}
		b->pings_left--;
		b->expected = next_rand(&b->rand, b->nactors);
		bench_check(
		    actor_send(sys, b->actors[b->expected], MSG_PING, &b->id, sizeof(b->id)),
		    "actor_send(ping)");
		break;
	case MSG_EXIT:
		bench_check(actor_send(sys, b->sink, MSG_TALLY, &b->tally, sizeof(b->tally)),
		            "actor_send(tally)");
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	}
}

int main(int argc, char **argv)
{
	uint64_t pings = bench_arg_u64(argc, argv, 1, PINGS_DEFAULT, UINT64_MAX / 1000000);
	unsigned nactors = (unsigned)bench_arg_u64(argc, argv, 2, ACTORS_DEFAULT, 1000000u);
	struct big *bigs = calloc(nactors, sizeof(*bigs));
	actor_ref_t *refs = calloc(nactors, sizeof(*refs));
	struct sink sink = {.nactors = nactors, .actors = refs};
	actor_system_t *sys = bench_system(0);
	actor_ref_t sref;

	if (bigs == NULL || refs == NULL)
		bench_check(-ENOMEM, "calloc");

	uint64_t t0 = bench_now_ns();
	bench_check(actor_spawn(sys, NULL, sink_fn, &sink, &sref), "actor_spawn(sink)");
	for (unsigned i = 0; i < nactors; i++) {
		bigs[i] = (struct big){.id = i,
		                       .expected = NOBODY,
		                       .pings_left = pings,
		                       .rand = i,
		                       .nactors = nactors,
		                       .actors = refs,
		                       .sink = sref};
		bench_check(actor_spawn(sys, NULL, big_fn, &bigs[i], &refs[i]), "actor_spawn(big)");
	}
	/* The refs array is complete before the first message, whose send publishes it. */
	uint32_t nobody = NOBODY;
	for (unsigned i = 0; i < nactors; i++)
		bench_check(actor_send(sys, refs[i], MSG_PONG, &nobody, sizeof(nobody)),
		            "actor_send(start)");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);

	int rc = 0;
	if (sink.tallied != nactors || sink.total.answered != nactors * pings ||
	    sink.total.wrong != 0) {
		fprintf(stderr,
		        "big: %u of %u tallies, %" PRIu64 " pings answered (expected %" PRIu64
		        "), %" PRIu64 " pongs from the wrong actor\n",
		        sink.tallied, nactors, sink.total.answered, nactors * pings,
		        sink.total.wrong);
		rc = 1;
	} else {
		bench_result("big", "time", bench_ms(t0, sink.t1), "ms");
	}
	free(refs);
	free(bigs);
	return rc;
}
