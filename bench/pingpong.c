/* pingpong.c: round-trip latency between two actors, across workers and on one worker.
 *
 * Usage: bench/pingpong [roundtrips]   (default 2,000,000)
 *
 * Two actors bounce an 8-byte counter. `pingpong` runs on the default system, where default
 * placement (round-robin) puts the two actors on different workers at first and the library
 * then moves one to the other's worker (it follows the conversation) within a few round trips;
 * `pingpong_1core` runs on a one-worker system, where every send is a local enqueue.
 * Time runs from the first serve to the last return, both measured inside the ping actor.
 */
#include "bench.h"

#define ROUNDTRIPS_DEFAULT 2000000u

enum { MSG_START = 1, MSG_BALL, MSG_STOP };

struct ping {
	actor_ref_t pong;
	uint64_t roundtrips; /* how many to play */
	uint64_t returned;   /* balls back so far */
	uint64_t t0, t1;
	int ok; /* 1 once every ball came back with the right count */
};

/* Serves the ball, counts its returns, and ends the game after the last one. */
static void ping_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct ping *p = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	uint64_t n = 0;

	if (msg->type == MSG_BALL) {
		memcpy(&n, actor_msg_data(msg), sizeof(n));
		if (n != p->returned + 1) {
			fprintf(stderr, "pingpong: ball %" PRIu64 " came back as %" PRIu64 "\n",
			        p->returned + 1, n);
			actor_send(sys, p->pong, MSG_STOP, NULL, 0);
			actor_exit(ctx, 1);
			return;
		}
		p->returned = n;
	} else if (msg->type == MSG_START) {
		p->t0 = bench_now_ns();
	}
	if (p->returned == p->roundtrips) {
		p->t1 = bench_now_ns();
		p->ok = 1;
		actor_send(sys, p->pong, MSG_STOP, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	bench_check(actor_send(sys, p->pong, MSG_BALL, &p->returned, sizeof(p->returned)),
	            "actor_send(ball)");
}

/* Returns every ball to whoever sent it, one higher. */
static void pong_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_STOP) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t n;
	memcpy(&n, actor_msg_data(msg), sizeof(n));
	n++;
	bench_check(actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_BALL, &n, sizeof(n)),
	            "actor_send(return)");
}

/* Plays one game on a fresh system with `workers` threads (0 = default); returns 0 if it
 * completed and checked out. */
static int play(const char *name, unsigned workers, uint64_t roundtrips)
{
	actor_system_t *sys = bench_system(workers);
	struct ping p = {.roundtrips = roundtrips};
	actor_ref_t ping;
	actor_info_t pi, qi;

	bench_check(actor_spawn(sys, NULL, pong_fn, NULL, &p.pong), "actor_spawn(pong)");
	bench_check(actor_spawn(sys, NULL, ping_fn, &p, &ping), "actor_spawn(ping)");
	if (actor_info(sys, ping, &pi) == 0 && actor_info(sys, p.pong, &qi) == 0)
		fprintf(stderr, "%s: %u workers, ping on worker %u, pong on worker %u\n", name,
		        actor_system_workers(sys), pi.worker, qi.worker);
	bench_check(actor_send(sys, ping, MSG_START, NULL, 0), "actor_send(start)");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);

	if (!p.ok) {
		fprintf(stderr, "%s: FAILED after %" PRIu64 " of %" PRIu64 " round trips\n", name,
		        p.returned, roundtrips);
		return 1;
	}
	bench_result(name, "roundtrips_per_s", (double)roundtrips / bench_secs(p.t0, p.t1), "1/s");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t roundtrips = bench_arg_u64(argc, argv, 1, ROUNDTRIPS_DEFAULT, UINT64_MAX / 2);
	int rc = 0;

	rc |= play("pingpong", 0, roundtrips);
	rc |= play("pingpong_1core", 1, roundtrips);
	return rc;
}
