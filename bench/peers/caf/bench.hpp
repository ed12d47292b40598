// bench.hpp: what every CAF peer shares, as bench/bench.h does for the libactor benchmarks: the
// one RESULT line format, argument parsing, the clock, the resident set size, and the system
// configuration.
//
// The peers use CAF 0.17's defaults (the work-stealing scheduler with one thread per CPU and
// event-based actors), except for the scheduler's thread count where a benchmark asks for one
// (the _1core variants) or the environment does (ACTOR_BENCH_WORKERS, for scaling runs), as
// bench_system() does for libactor.
#ifndef CAF_PEER_BENCH_HPP
#define CAF_PEER_BENCH_HPP

#include <caf/all.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

// Prints one RESULT line, with the precision bench_result() uses.
inline void bench_result(const char *name, const char *metric, double value, const char *unit)
{
	std::printf("RESULT name=%s impl=caf metric=%s value=%.*f unit=%s\n", name, metric,
	            value >= 10000.0 ? 0 : 3, value, unit);
	std::fflush(stdout);
}

// argv[i] as a whole number in [1, max], or `def` when absent; anything else exits.
inline uint64_t bench_arg_u64(int argc, char **argv, int i, uint64_t def, uint64_t max)
{
	if (i >= argc)
		return def;
	char *end = nullptr;
	errno = 0;
	unsigned long long v = std::strtoull(argv[i], &end, 10);
	if (errno != 0 || end == argv[i] || *end != '\0' || argv[i][0] == '-' || v < 1 || v > max) {
		std::fprintf(stderr,
		             "%s: argument %d: expected a whole number in [1, %" PRIu64
		             "], got '%s'\n",
		             argv[0], i, max, argv[i]);
		std::exit(2);
	}
	return v;
}

// Reports a wrong result and exits non-zero: a benchmark that did not check out reports nothing.
[[noreturn]] inline void bench_fail(const char *what)
{
	std::fprintf(stderr, "%s\n", what);
	std::exit(1);
}

inline uint64_t bench_now_ns()
{
	using namespace std::chrono;
	return (uint64_t)duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

inline double bench_ms(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e6;
}
inline double bench_secs(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e9;
}

// The resident set size in bytes, from /proc/self/statm, or 0 without /proc.
inline uint64_t bench_rss_bytes()
{
	unsigned long long size = 0, resident = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");
	if (f == nullptr)
		return 0;
	if (std::fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	std::fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

// A configuration with `threads` scheduler threads; 0 means CAF's default (one per CPU) unless
// ACTOR_BENCH_WORKERS says otherwise.
inline void bench_config(caf::actor_system_config &cfg, unsigned threads = 0)
{
	if (threads == 0) {
		const char *s = std::getenv("ACTOR_BENCH_WORKERS");
		if (s != nullptr && *s != '\0') {
			long v = std::strtol(s, nullptr, 10);
			if (v < 1 || v > 256) {
				std::fprintf(stderr,
				             "bench: ACTOR_BENCH_WORKERS must be in [1, 256]\n");
				std::exit(2);
			}
			threads = (unsigned)v;
		}
	}
	if (threads != 0)
		cfg.set("scheduler.max-threads", (int64_t)threads);
}

#endif
