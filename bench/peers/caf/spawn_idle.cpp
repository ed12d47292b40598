// spawn_idle.cpp: the CAF peer of bench/spawn_idle.c: what an idle actor costs, in memory and
// in spawn time.
//
// Usage: spawn_idle [actors]   (default 1,000,000)
//
// The main thread spawns `actors` event-based actors that never get a message, then reads the
// growth of the resident set size. bytes_per_actor is that growth divided by the count. The
// vector of handles that keeps the actors alive (a CAF actor without references is destroyed)
// is allocated and touched before the first reading, so it is not counted, as spawn_idle.c
// does not count refs. spawns_per_s times the spawns. Then every actor is told to exit.
#include "bench.hpp"

#include <string>
#include <vector>

using namespace caf;

using stop_atom = atom_constant<atom("stop")>;

behavior idle(event_based_actor *)
{
	return {
	    [](stop_atom) {},
	};
}

int main(int argc, char **argv)
{
	uint64_t n = bench_arg_u64(argc, argv, 1, 1000000, 100000000);
	actor_system_config cfg;
	bench_config(cfg);
	actor_system sys{cfg};
	std::vector<actor> actors(n); // every page touched here, before the first reading

	uint64_t rss0 = bench_rss_bytes();
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		actors[i] = sys.spawn(idle);
	uint64_t t1 = bench_now_ns();
	uint64_t rss1 = bench_rss_bytes();

	// Every actor must still be alive: the registry counts running actors.
	size_t running = sys.registry().running();
	int rc = 0;
	if (running < n) {
		std::fprintf(stderr, "spawn_idle: %zu actors running, expected %" PRIu64 "\n",
		             running, n);
		rc = 1;
	}
	uint64_t t2 = bench_now_ns();
	for (auto &a : actors)
		anon_send_exit(a, exit_reason::user_shutdown);
	actors.clear();
	sys.await_all_actors_done();
	std::fprintf(stderr, "spawn_idle: RSS %.1f MB -> %.1f MB; stop %.1f ms\n", rss0 / 1e6,
	             rss1 / 1e6, bench_ms(t2, bench_now_ns()));

	if (rc == 0) {
		std::string name =
		    n == 1000000 ? "spawn_idle_1m" : "spawn_idle_" + std::to_string(n);
		double growth = rss1 > rss0 ? (double)(rss1 - rss0) : 0.0;
		bench_result(name.c_str(), "bytes_per_actor", growth / (double)n, "B");
		bench_result(name.c_str(), "spawns_per_s", (double)n / bench_secs(t0, t1), "1/s");
	}
	return rc;
}
