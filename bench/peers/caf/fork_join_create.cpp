// fork_join_create.cpp: the CAF peer of bench/fork_join_create.c: many short-lived event-based
// actors, one message each.
//
// Usage: fork_join_create [actors]   (default 40,000)
//
// The main thread spawns `actors` actors one after another and sends each one message. An actor
// does Savina's small computation (the square of a sine), counts itself done and stops. The
// count must reach `actors`, with every computation positive. Time runs from the first spawn
// until every actor is done.
#include "bench.hpp"

#include <atomic>
#include <cmath>

using namespace caf;

using work_atom = atom_constant<atom("work")>;

static constexpr double theta = 37.2; // Savina's argument to performComputation

// Shared by every actor: the only record a stopped actor leaves.
struct tally {
	double theta; // read from memory, so the sine cannot be folded at compile time
	std::atomic<uint64_t> done{0}, bad{0};
};

behavior worker(event_based_actor *self, tally *t)
{
	return {
	    [=](work_atom) {
		    double s = std::sin(t->theta);
		    if (s * s <= 0)
			    t->bad.fetch_add(1, std::memory_order_relaxed);
		    t->done.fetch_add(1, std::memory_order_relaxed);
		    self->quit();
	    },
	};
}

int main(int argc, char **argv)
{
	uint64_t n = bench_arg_u64(argc, argv, 1, 40000, 100000000);
	tally t;
	t.theta = theta;
	uint64_t t0, t1;
	{
		actor_system_config cfg;
		bench_config(cfg);
		actor_system sys{cfg};
		t0 = bench_now_ns();
		for (uint64_t i = 0; i < n; i++)
			anon_send(sys.spawn(worker, &t), work_atom::value);
		sys.await_all_actors_done();
		t1 = bench_now_ns();
	}
	if (t.done.load() != n || t.bad.load() != 0) {
		std::fprintf(stderr,
		             "fork_join_create: %" PRIu64 " of %" PRIu64 " actors done, %" PRIu64
		             " bad results\n",
		             t.done.load(), n, t.bad.load());
		return 1;
	}
	bench_result("fork_join_create", "time", bench_ms(t0, t1), "ms");
	return 0;
}
