// threadring.cpp: the CAF peer of bench/threadring.c: a token passed around a ring of
// event-based actors.
//
// Usage: threadring [hops] [actors]   (defaults 10,000,000 and 503)
//
// The benchmarks-game shape: actor 1 gets the token holding `hops`; each passes it on to the
// next, one lower, and the actor that receives 0 holds it at the end, which must be actor
// (hops mod actors) + 1. The holder reports to the main thread, which then stops the ring.
#include "bench.hpp"

#include <string>
#include <vector>

using namespace caf;

using next_atom = atom_constant<atom("next")>;
using holder_atom = atom_constant<atom("holder")>;

struct node_state {
	actor next;
};

behavior node(stateful_actor<node_state> *self, unsigned id, actor main_thread)
{
	return {
	    [=](next_atom, actor &next) { self->state.next = std::move(next); },
	    [=](uint64_t v) {
		    if (v == 0)
			    self->send(main_thread, holder_atom::value, id, bench_now_ns());
		    else
			    self->send(self->state.next, v - 1);
	    },
	};
}

int main(int argc, char **argv)
{
	uint64_t hops = bench_arg_u64(argc, argv, 1, 10000000, UINT64_MAX / 2);
	unsigned n = (unsigned)bench_arg_u64(argc, argv, 2, 503, 10000000);
	unsigned holder = 0;
	uint64_t t0 = 0, t1 = 0;
	{
		actor_system_config cfg;
		bench_config(cfg);
		actor_system sys{cfg};
		scoped_actor main_thread{sys};
		std::vector<actor> ring;
		for (unsigned i = 0; i < n; i++)
			ring.push_back(sys.spawn(node, i + 1, actor{main_thread}));
		for (unsigned i = 0; i < n; i++)
			anon_send(ring[i], next_atom::value, ring[(i + 1) % n]);

		t0 = bench_now_ns();
		anon_send(ring[0], hops);
		main_thread->receive([&](holder_atom, unsigned id, uint64_t t) {
			holder = id;
			t1 = t;
		});
		for (auto &a : ring)
			anon_send_exit(a, exit_reason::user_shutdown);
	}
	unsigned want = (unsigned)(hops % n) + 1;
	if (holder != want) {
		std::fprintf(stderr, "threadring: token ended at actor %u, expected %u\n", holder,
		             want);
		return 1;
	}
	bench_result(("threadring_" + std::to_string(n)).c_str(), "hops_per_s",
	             (double)hops / bench_secs(t0, t1), "1/s");
	return 0;
}
