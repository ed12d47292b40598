// fork_join_throughput.cpp: the CAF peer of bench/fork_join_throughput.c: one outside thread
// feeding many event-based actors.
//
// Usage: fork_join_throughput [messages] [actors]   (defaults 10,000 and 60)
//
// The main thread sends `messages` rounds of one message to each of `actors` actors. Each
// message costs its actor Savina's small computation (the square of a sine); an actor stops
// after its last message. Each actor checks it got exactly `messages` messages and that every
// computation was positive. Time runs from the first spawn until every actor is done.
#include "bench.hpp"

#include <cmath>
#include <vector>

using namespace caf;

using work_atom = atom_constant<atom("work")>;

static constexpr double theta = 37.2; // Savina's argument to performComputation

struct report {
	double theta; // read from memory, so the sine cannot be folded at compile time
	uint64_t expected, processed = 0, bad = 0;
};

behavior worker(event_based_actor *self, report *r)
{
	return {
	    [=](work_atom) {
		    double s = std::sin(r->theta);
		    if (s * s <= 0)
			    r->bad++;
		    if (++r->processed == r->expected)
			    self->quit();
	    },
	};
}

int main(int argc, char **argv)
{
	uint64_t messages = bench_arg_u64(argc, argv, 1, 10000, UINT64_MAX / 2);
	unsigned n = (unsigned)bench_arg_u64(argc, argv, 2, 60, 1000000);
	std::vector<report> reports(n);
	uint64_t t0, t1;
	{
		actor_system_config cfg;
		bench_config(cfg);
		actor_system sys{cfg};
		std::vector<actor> actors;
		t0 = bench_now_ns();
		for (auto &r : reports) {
			r.theta = theta;
			r.expected = messages;
			actors.push_back(sys.spawn(worker, &r));
		}
		for (uint64_t m = 0; m < messages; m++)
			for (auto &a : actors)
				anon_send(a, work_atom::value);
		actors.clear();
		sys.await_all_actors_done();
		t1 = bench_now_ns();
	}
	for (unsigned i = 0; i < n; i++) {
		if (reports[i].processed != messages || reports[i].bad != 0) {
			std::fprintf(stderr,
			             "fork_join_throughput: actor %u processed %" PRIu64
			             " of %" PRIu64 " messages, %" PRIu64 " bad results\n",
			             i, reports[i].processed, messages, reports[i].bad);
			return 1;
		}
	}
	bench_result("fork_join_throughput", "time", bench_ms(t0, t1), "ms");
	return 0;
}
