/* chameneos.c: the Savina chameneos benchmark: creatures meet in pairs through one broker.
 *
 * Usage: bench/chameneos [meetings] [creatures]   (defaults 200,000 and 100)
 *
 * A mall (the broker) and `creatures` chameneos coloured red, yellow, blue in turn. Each
 * chameneo asks the mall for a meeting with a MEET carrying its colour and its reference. The
 * mall holds the first request and forwards the second one, as it is, to the holder, who takes
 * the complement of the two colours, tells the other creature with a CHANGE, and both ask again.
 * After `meetings` meetings the mall answers every request with EXIT; each chameneo replies with
 * the number of meetings it took part in and stops. The sum must be twice `meetings`.
 *
 * Every message goes through the one mall, so this measures how fast a single hot actor is fed
 * by many others. Actors are placed by the default policy. Time runs from the first spawn to the
 * mall's receipt of the last count (Savina's metric: execution time).
 */
#include "bench.h"

#define MEETINGS_DEFAULT 200000u
#define CREATURES_DEFAULT 100u

enum { MSG_START = 1, MSG_MEET, MSG_CHANGE, MSG_EXIT, MSG_COUNT };

enum colour { RED, YELLOW, BLUE, FADED };

struct meet {
	actor_ref_t who; /* the creature asking: a forwarded MEET keeps it, unlike the sender */
	uint32_t colour;
};

struct mall {
	uint64_t meetings_left;
	unsigned creatures, faded;
	actor_ref_t waiting; /* the creature whose request is held; ACTOR_REF_NONE if none */
	uint64_t sum;        /* meetings the faded creatures reported */
	uint64_t t1;
};

struct chameneo {
	actor_ref_t mall;
	uint32_t colour;
	uint64_t meetings;
};

/* The colour two creatures both take when they meet. */
static uint32_t complement(uint32_t a, uint32_t b)
{
	if (a == b)
		return a;
	return 3 - a - b; /* the third of RED, YELLOW, BLUE */
}

static void mall_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct mall *m = state;
	actor_system_t *sys = actor_ctx_system(ctx);

	if (msg->type == MSG_COUNT) {
		uint64_t n;
		memcpy(&n, actor_msg_data(msg), sizeof(n));
		m->sum += n;
		if (++m->faded == m->creatures) {
			m->t1 = bench_now_ns();
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}

	struct meet mt;
	memcpy(&mt, actor_msg_data(msg), sizeof(mt));
	if (m->meetings_left == 0) {
		bench_check(actor_send(sys, mt.who, MSG_EXIT, NULL, 0), "actor_send(exit)");
	} else if (actor_ref_is_none(m->waiting)) {
		m->waiting = mt.who;
	} else {
		m->meetings_left--;
		bench_check(actor_send_msg(sys, m->waiting, msg), "actor_send_msg(meet)");
		m->waiting = ACTOR_REF_NONE;
	}
}

static void ask_mall(actor_ctx_t *ctx, struct chameneo *c)
{
	struct meet mt = {.who = actor_self(ctx), .colour = c->colour};

	bench_check(actor_send(actor_ctx_system(ctx), c->mall, MSG_MEET, &mt, sizeof(mt)),
	            "actor_send(meet)");
}

static void chameneo_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct chameneo *c = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	struct meet mt;

	switch (msg->type) {
	case MSG_START:
		ask_mall(ctx, c);
		break;
	case MSG_MEET: /* the mall paired us with mt.who */
		memcpy(&mt, actor_msg_data(msg), sizeof(mt));
		c->colour = complement(c->colour, mt.colour);
		c->meetings++;
		bench_check(actor_send(sys, mt.who, MSG_CHANGE, &c->colour, sizeof(c->colour)),
		            "actor_send(change)");
		ask_mall(ctx, c);
		break;
	case MSG_CHANGE:
		memcpy(&c->colour, actor_msg_data(msg), sizeof(c->colour));
		c->meetings++;
		ask_mall(ctx, c);
		break;
	case MSG_EXIT:
		c->colour = FADED;
		bench_check(actor_send(sys, actor_sender(ctx), MSG_COUNT, &c->meetings,
		                       sizeof(c->meetings)),
		            "actor_send(count)");
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	}
}

int main(int argc, char **argv)
{
	uint64_t meetings = bench_arg_u64(argc, argv, 1, MEETINGS_DEFAULT, UINT64_MAX / 4);
	unsigned creatures = (unsigned)bench_arg_u64(argc, argv, 2, CREATURES_DEFAULT, 1000000u);
	if (creatures < 2) {
		fprintf(stderr, "%s: need at least 2 creatures\n", argv[0]);
		return 2;
	}
	struct mall mall = {.meetings_left = meetings, .creatures = creatures};
	struct chameneo *cs = calloc(creatures, sizeof(*cs));
	actor_ref_t *refs = calloc(creatures, sizeof(*refs));
	actor_system_t *sys = bench_system(0);
	actor_ref_t mref;

	if (cs == NULL || refs == NULL)
		bench_check(-ENOMEM, "calloc");

	uint64_t t0 = bench_now_ns();
	bench_check(actor_spawn(sys, NULL, mall_fn, &mall, &mref), "actor_spawn(mall)");
	for (unsigned i = 0; i < creatures; i++) {
		cs[i].mall = mref;
		cs[i].colour = i % 3;
		bench_check(actor_spawn(sys, NULL, chameneo_fn, &cs[i], &refs[i]),
		            "actor_spawn(chameneo)");
	}
	for (unsigned i = 0; i < creatures; i++)
		bench_check(actor_send(sys, refs[i], MSG_START, NULL, 0), "actor_send(start)");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);

	int rc = 0;
	if (mall.faded != creatures || mall.sum != 2 * meetings) {
		fprintf(stderr,
		        "chameneos: %u of %u creatures reported %" PRIu64
		        " meetings, expected %" PRIu64 "\n",
		        mall.faded, creatures, mall.sum, 2 * meetings);
		rc = 1;
	} else {
		bench_result("chameneos", "time", bench_ms(t0, mall.t1), "ms");
	}
	free(refs);
	free(cs);
	return rc;
}
