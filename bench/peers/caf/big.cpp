// big.cpp: the CAF peer of bench/big.c: many event-based actors each pinging random others, one
// at a time.
//
// Usage: big [pings] [actors]   (defaults 20,000 and 120)
//
// The same protocol as big.c: each actor learns every actor (itself included), pings one picked
// by Savina's pseudo-random generator, waits for its pong (checking who sent it), `pings` times,
// then tells the sink done, answering every ping meanwhile. Once all are done the sink sends
// exit to each, and each replies with a tally of pings answered and wrong pongs. The answered
// pings must add up to actors * pings with no wrong pong. Time runs from the first spawn to the
// sink's last tally.
#include "bench.hpp"

#include <vector>

using namespace caf;

using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using done_atom = atom_constant<atom("done")>;
using exit_atom = atom_constant<atom("exit")>;
using tally_atom = atom_constant<atom("tally")>;

static constexpr uint32_t nobody = UINT32_MAX; // the sender of the pong that starts an actor

struct total {
	unsigned tallied = 0;
	uint64_t answered = 0, wrong = 0, t1 = 0;
};

struct sink_state {
	std::vector<actor> actors;
	unsigned done = 0;
};

behavior sink(stateful_actor<sink_state> *self, total *t)
{
	return {
	    [=](std::vector<actor> &all) { self->state.actors = std::move(all); },
	    [=](done_atom) {
		    auto &st = self->state;
		    if (++st.done == st.actors.size())
			    for (auto &a : st.actors)
				    self->send(a, exit_atom::value);
	    },
	    [=](tally_atom, uint64_t answered, uint64_t wrong) {
		    t->answered += answered;
		    t->wrong += wrong;
		    if (++t->tallied == self->state.actors.size()) {
			    t->t1 = bench_now_ns();
			    self->state.actors.clear();
			    self->quit();
		    }
	    },
	};
}

struct big_state {
	std::vector<actor> actors; // everyone, by id
	uint32_t expected = nobody;
	uint64_t rand, answered = 0, wrong = 0;
};

behavior big(stateful_actor<big_state> *self, uint32_t id, actor sink, uint64_t pings)
{
	self->state.rand = id; // Savina's PseudoRandom, seeded with the id
	return {
	    [=](std::vector<actor> &all) { self->state.actors = std::move(all); },
	    [=](ping_atom, uint32_t from) {
		    self->state.answered++;
		    self->send(self->state.actors[from], pong_atom::value, id);
	    },
	    [=](pong_atom, uint32_t from) mutable {
		    auto &st = self->state;
		    if (from != st.expected)
			    st.wrong++;
		    if (pings == 0) {
			    self->send(sink, done_atom::value);
			    return;
		    }
		    pings--;
		    st.rand = (st.rand * 1309 + 13849) & 65535;
		    st.expected = (uint32_t)(st.rand % st.actors.size());
		    self->send(st.actors[st.expected], ping_atom::value, id);
	    },
	    [=](exit_atom) {
		    self->send(sink, tally_atom::value, self->state.answered, self->state.wrong);
		    self->state.actors.clear(); // drop the references that keep the others alive
		    self->quit();
	    },
	};
}

int main(int argc, char **argv)
{
	uint64_t pings = bench_arg_u64(argc, argv, 1, 20000, UINT64_MAX / 1000000);
	unsigned n = (unsigned)bench_arg_u64(argc, argv, 2, 120, 1000000);
	total t;
	uint64_t t0;
	{
		actor_system_config cfg;
		bench_config(cfg);
		actor_system sys{cfg};
		t0 = bench_now_ns();
		auto s = sys.spawn(sink, &t);
		std::vector<actor> all;
		for (uint32_t i = 0; i < n; i++)
			all.push_back(sys.spawn(big, i, s, pings));
		anon_send(s, all);
		for (auto &a : all)
			anon_send(a, all);
		for (auto &a : all)
			anon_send(a, pong_atom::value, nobody);
		all.clear();
		sys.await_all_actors_done();
	}
	if (t.tallied != n || t.answered != n * pings || t.wrong != 0) {
		std::fprintf(stderr,
		             "big: %u of %u tallies, %" PRIu64 " pings answered (expected %" PRIu64
		             "), %" PRIu64 " pongs from the wrong actor\n",
		             t.tallied, n, t.answered, n * pings, t.wrong);
		return 1;
	}
	bench_result("big", "time", bench_ms(t0, t.t1), "ms");
	return 0;
}
