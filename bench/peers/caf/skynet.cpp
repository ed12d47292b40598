// skynet.cpp: the CAF peer of bench/skynet.c: a tree of 1,111,111 event-based actors summing
// their numbers back up to the root.
//
// Usage: skynet [leaves]   (default 1,000,000; a power of ten, at least 10)
//
// Each actor spawns 10 children, each with its part of the number range, and sends its parent
// the sum of their replies; a leaf sends its number and stops at once. The root's total, sent to
// the main thread, must be leaves*(leaves-1)/2. Each run uses a fresh system and is timed from
// the root's spawn to its total; first_run_time is the first of three runs, best_time the
// fastest.
#include "bench.hpp"

#include <string>

using namespace caf;

static constexpr uint64_t fanout = 10;
static constexpr int runs = 3;

struct inner_state {
	uint64_t sum = 0;
	unsigned pending = fanout;
};

behavior skynet(stateful_actor<inner_state> *self, actor parent, uint64_t num, uint64_t size)
{
	if (size == 1) {
		self->send(parent, num);
		self->quit();
		return {};
	}
	uint64_t child = size / fanout;
	for (uint64_t i = 0; i < fanout; i++)
		self->spawn(skynet, actor{self}, num + i * child, child);
	return {
	    [=](uint64_t v) {
		    self->state.sum += v;
		    if (--self->state.pending == 0) {
			    self->send(parent, self->state.sum);
			    self->quit();
		    }
	    },
	};
}

static double run_once(uint64_t leaves)
{
	actor_system_config cfg;
	bench_config(cfg);
	actor_system sys{cfg};
	scoped_actor main_thread{sys};
	uint64_t sum = 0;

	uint64_t t0 = bench_now_ns();
	sys.spawn(skynet, actor{main_thread}, uint64_t{0}, leaves);
	main_thread->receive([&](uint64_t v) { sum = v; });
	uint64_t t1 = bench_now_ns();
	if (sum != leaves * (leaves - 1) / 2) {
		std::fprintf(stderr, "skynet: sum %" PRIu64 ", expected %" PRIu64 "\n", sum,
		             leaves * (leaves - 1) / 2);
		return -1.0;
	}
	std::fprintf(stderr, "skynet: sum %" PRIu64 " in %.1f ms\n", sum, bench_ms(t0, t1));
	return bench_ms(t0, t1);
}

int main(int argc, char **argv)
{
	uint64_t leaves = bench_arg_u64(argc, argv, 1, 1000000, 100000000);
	uint64_t p = 1;
	while (p < leaves)
		p *= fanout;
	if (p != leaves || leaves < fanout) {
		std::fprintf(stderr, "%s: leaves must be a power of 10, at least 10\n", argv[0]);
		return 2;
	}
	std::string name = leaves == 1000000 ? "skynet_1m" : "skynet_" + std::to_string(leaves);

	double first = 0, best = 0;
	for (int r = 0; r < runs; r++) {
		double ms = run_once(leaves);
		if (ms < 0)
			return 1;
		if (r == 0 || ms < best)
			best = ms;
		if (r == 0)
			first = ms;
	}
	bench_result(name.c_str(), "first_run_time", first, "ms");
	bench_result(name.c_str(), "best_time", best, "ms");
	return 0;
}
