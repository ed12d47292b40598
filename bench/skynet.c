/* skynet.c: spawn a tree of 1,111,111 actors and sum their numbers back up to the root.
 *
 * Usage: bench/skynet [leaves]   (default 1,000,000; a power of ten, at least 10)
 *
 * The skynet benchmark: the root spawns 10 children, each spawns 10, down to `leaves` leaves
 * numbered 0 .. leaves-1. Each leaf replies with its number; each inner actor adds its
 * children's replies and replies with the sum. Every actor stops itself once it has replied,
 * so the system's run returns when the root has the total, which must be leaves*(leaves-1)/2.
 * Inner actors keep a small state; leaves have none (their number arrives in the message).
 *
 * Each run uses a fresh system and is timed from the root's spawn to the root's total.
 * first_run_time is the first of RUNS runs, best_time the fastest of all of them.
 */
#include "bench.h"

#define LEAVES_DEFAULT 1000000u
#define FANOUT 10u
#define RUNS 3

enum { MSG_START = 1, MSG_SUM };

struct start {
	uint64_t num;  /* the first leaf number below this actor */
	uint64_t size; /* leaves below this actor */
};

struct inner {
	actor_ref_t parent; /* ACTOR_REF_NONE for the root */
	uint64_t sum;
	unsigned pending;
	uint64_t t1; /* root only: when the total arrived */
};

static void leaf_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct start st;

	(void)state;
	memcpy(&st, actor_msg_data(msg), sizeof(st));
	bench_check(
	    actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_SUM, &st.num, sizeof(st.num)),
	    "actor_send(leaf sum)");
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void inner_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg);

/* Spawns this actor's children and sends each its part of the number range. */
static void inner_start(actor_ctx_t *ctx, struct inner *in, const struct start *st)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	uint64_t child = st->size / FANOUT;

	in->parent = actor_sender(ctx);
	in->pending = FANOUT;
	for (unsigned i = 0; i < FANOUT; i++) {
		struct start cst = {.num = st->num + i * child, .size = child};
		actor_ref_t ref;

		if (child == 1) {
			bench_check(actor_spawn(sys, NULL, leaf_fn, NULL, &ref),
			            "actor_spawn(leaf)");
		} else {
			struct inner *cin = calloc(1, sizeof(*cin));
			if (cin == NULL)
				bench_check(-ENOMEM, "calloc");
			bench_check(actor_spawn(sys, &(actor_spawn_opts_t){.destroy = free},
			                        inner_fn, cin, &ref),
			            "actor_spawn(inner)");
		}
		bench_check(actor_send(sys, ref, MSG_START, &cst, sizeof(cst)),
		            "actor_send(start)");
	}
}

static void inner_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct inner *in = state;

	if (msg->type == MSG_START) {
		struct start st;
		memcpy(&st, actor_msg_data(msg), sizeof(st));
		inner_start(ctx, in, &st);
		return;
	}

	uint64_t v;
	memcpy(&v, actor_msg_data(msg), sizeof(v));
	in->sum += v;
	if (--in->pending > 0)
		return;
	if (actor_ref_is_none(in->parent))
		in->t1 = bench_now_ns();
	else
		bench_check(actor_send(actor_ctx_system(ctx), in->parent, MSG_SUM, &in->sum,
		                       sizeof(in->sum)),
		            "actor_send(sum)");
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* One run on a fresh system; returns its time in ms, or a negative value if the sum is wrong. */
static double run_once(uint64_t leaves)
{
	actor_system_t *sys = bench_system(0);
	struct inner root = {0};
	struct start st = {.num = 0, .size = leaves};
	actor_ref_t ref;
	uint64_t want = leaves * (leaves - 1) / 2;

	uint64_t t0 = bench_now_ns();
	bench_check(actor_spawn(sys, NULL, inner_fn, &root, &ref), "actor_spawn(root)");
	bench_check(actor_send(sys, ref, MSG_START, &st, sizeof(st)), "actor_send(root)");
	bench_check(actor_system_run(sys), "actor_system_run");
	uint64_t t_run = bench_now_ns();
	bench_dead_letters(sys);
	actor_system_free(sys);
	uint64_t t_free = bench_now_ns();

	if (root.t1 == 0 || root.sum != want) {
		fprintf(stderr, "skynet: sum %" PRIu64 ", expected %" PRIu64 "\n", root.sum, want);
		return -1.0;
	}
	fprintf(stderr,
	        "skynet: sum %" PRIu64 " in %.1f ms (run returned after %.1f ms, free %.1f ms)\n",
	        root.sum, bench_ms(t0, root.t1), bench_ms(t0, t_run), bench_ms(t_run, t_free));
	return bench_ms(t0, root.t1);
}

int main(int argc, char **argv)
{
	uint64_t leaves = bench_arg_u64(argc, argv, 1, LEAVES_DEFAULT, UINT64_C(100000000));
	uint64_t p = 1;

	while (p < leaves)
		p *= FANOUT;
	if (p != leaves || leaves < FANOUT) {
		fprintf(stderr, "%s: leaves must be a power of %u, at least %u\n", argv[0], FANOUT,
		        FANOUT);
		return 2;
	}

	char name[64];
	if (leaves == LEAVES_DEFAULT)
		snprintf(name, sizeof(name), "skynet_1m");
	else
		snprintf(name, sizeof(name), "skynet_%" PRIu64, leaves);

	double first = 0, best = 0;
	for (int r = 0; r < RUNS; r++) {
		double ms = run_once(leaves);
		if (ms < 0)
			return 1;
		if (r == 0)
			first = best = ms;
		else if (ms < best)
			best = ms;
	}
	bench_result(name, "first_run_time", first, "ms");
	bench_result(name, "best_time", best, "ms");
	return 0;
}
