// pingpong.cpp: the CAF peer of bench/pingpong.c: round trips between two event-based actors.
//
// Usage: pingpong [roundtrips]   (default 2,000,000)
//
// A ping actor serves a counter to a pong actor, which returns it one higher; ping checks every
// return. `pingpong` runs on a system with CAF's default scheduler (one thread per CPU, work
// stealing: CAF, not the program, decides where the actors run); `pingpong_1core` on one with
// scheduler.max-threads = 1. Time runs from the first serve to the last return, inside ping.
#include "bench.hpp"

using namespace caf;

using start_atom = atom_constant<atom("start")>;
using ball_atom = atom_constant<atom("ball")>;

struct game {
	uint64_t roundtrips, returned = 0;
	uint64_t t0 = 0, t1 = 0;
	bool ok = false;
};

behavior pong(event_based_actor *)
{
	return {
	    [](ball_atom, uint64_t n) { return make_message(ball_atom::value, n + 1); },
	};
}

behavior ping(event_based_actor *self, actor pong, game *g)
{
	return {
	    [=](start_atom) {
		    g->t0 = bench_now_ns();
		    self->send(pong, ball_atom::value, g->returned);
	    },
	    [=](ball_atom, uint64_t n) {
		    if (n != g->returned + 1) {
			    std::fprintf(stderr,
			                 "pingpong: ball %" PRIu64 " came back as %" PRIu64 "\n",
			                 g->returned + 1, n);
			    self->send_exit(pong, exit_reason::user_shutdown);
			    self->quit();
			    return;
		    }
		    g->returned = n;
		    if (n == g->roundtrips) {
			    g->t1 = bench_now_ns();
			    g->ok = true;
			    self->send_exit(pong, exit_reason::user_shutdown);
			    self->quit();
			    return;
		    }
		    self->send(pong, ball_atom::value, n);
	    },
	};
}

static int play(const char *name, unsigned threads, uint64_t roundtrips)
{
	game g;
	g.roundtrips = roundtrips;
	{
		actor_system_config cfg;
		bench_config(cfg, threads);
		actor_system sys{cfg};
		auto p = sys.spawn(ping, sys.spawn(pong), &g);
		anon_send(p, start_atom::value);
		sys.await_all_actors_done();
	}
	if (!g.ok) {
		std::fprintf(stderr, "%s: FAILED after %" PRIu64 " of %" PRIu64 " round trips\n",
		             name, g.returned, roundtrips);
		return 1;
	}
	bench_result(name, "roundtrips_per_s", (double)roundtrips / bench_secs(g.t0, g.t1), "1/s");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t roundtrips = bench_arg_u64(argc, argv, 1, 2000000, UINT64_MAX / 2);
	int rc = 0;
	rc |= play("pingpong", 0, roundtrips);
	rc |= play("pingpong_1core", 1, roundtrips);
	return rc;
}
