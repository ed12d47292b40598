// chameneos.cpp: the CAF peer of bench/chameneos.c: creatures meet in pairs through one broker.
//
// Usage: chameneos [meetings] [creatures]   (defaults 200,000 and 100)
//
// The same protocol as chameneos.c, with event-based actors: (meet, colour, creature) to the
// mall, which holds the first and passes the second on to the holder; the holder takes the
// complement colour and sends (change, colour) to the other; after `meetings` meetings the mall
// answers every meet with exit and each creature replies with its meeting count. The sum must
// be twice `meetings`. Time runs from the first spawn to the mall's receipt of the last count.
#include "bench.hpp"

using namespace caf;

using start_atom = atom_constant<atom("start")>;
using meet_atom = atom_constant<atom("meet")>;
using change_atom = atom_constant<atom("change")>;
using exit_atom = atom_constant<atom("exit")>;
using count_atom = atom_constant<atom("count")>;

enum colour : uint32_t { red, yellow, blue, faded };

static uint32_t complement(uint32_t a, uint32_t b)
{
	return a == b ? a : 3 - a - b;
}

struct result_t {
	unsigned faded = 0;
	uint64_t sum = 0, t1 = 0;
};

struct mall_state {
	uint64_t meetings_left;
	actor waiting; // the creature whose request is held; null if none
};

behavior mall(stateful_actor<mall_state> *self, uint64_t meetings, unsigned creatures, result_t *r)
{
	self->state.meetings_left = meetings;
	return {
	    [=](count_atom, uint64_t n) {
		    r->sum += n;
		    if (++r->faded == creatures) {
			    r->t1 = bench_now_ns();
			    self->quit();
		    }
	    },
	    [=](meet_atom, uint32_t c, actor &who) {
		    auto &st = self->state;
		    if (st.meetings_left == 0) {
			    self->send(who, exit_atom::value);
		    } else if (!st.waiting) {
			    st.waiting = std::move(who);
		    } else {
			    st.meetings_left--;
			    self->send(st.waiting, meet_atom::value, c, std::move(who));
			    st.waiting = nullptr;
		    }
	    },
	};
}

struct chameneo_state {
	uint32_t colour;
	uint64_t meetings = 0;
};

behavior chameneo(stateful_actor<chameneo_state> *self, actor mall, uint32_t colour)
{
	self->state.colour = colour;
	auto ask_mall = [=] {
		self->send(mall, meet_atom::value, self->state.colour, actor{self});
	};
	return {
	    [=](start_atom) { ask_mall(); },
	    [=](meet_atom, uint32_t other, const actor &who) { // the mall paired us with `who`
		    auto &st = self->state;
		    st.colour = complement(st.colour, other);
		    st.meetings++;
		    self->send(who, change_atom::value, st.colour);
		    ask_mall();
	    },
	    [=](change_atom, uint32_t c) {
		    self->state.colour = c;
		    self->state.meetings++;
		    ask_mall();
	    },
	    [=](exit_atom) {
		    self->state.colour = faded;
		    self->send(mall, count_atom::value, self->state.meetings);
		    self->quit();
	    },
	};
}

int main(int argc, char **argv)
{
	uint64_t meetings = bench_arg_u64(argc, argv, 1, 200000, UINT64_MAX / 4);
	unsigned creatures = (unsigned)bench_arg_u64(argc, argv, 2, 100, 1000000);
	if (creatures < 2)
		bench_fail("chameneos: need at least 2 creatures");
	result_t r;
	uint64_t t0;
	{
		actor_system_config cfg;
		bench_config(cfg);
		actor_system sys{cfg};
		t0 = bench_now_ns();
		auto m = sys.spawn(mall, meetings, creatures, &r);
		for (unsigned i = 0; i < creatures; i++)
			anon_send(sys.spawn(chameneo, m, i % 3), start_atom::value);
		sys.await_all_actors_done();
	}
	if (r.faded != creatures || r.sum != 2 * meetings) {
		std::fprintf(stderr,
		             "chameneos: %u of %u creatures reported %" PRIu64
		             " meetings, expected %" PRIu64 "\n",
		             r.faded, creatures, r.sum, 2 * meetings);
		return 1;
	}
	bench_result("chameneos", "time", bench_ms(t0, r.t1), "ms");
	return 0;
}
