/* bench.h: helpers every benchmark shares: a monotonic clock, the resident set size, argument
 * parsing, and the one RESULT line format that scripts read.
 *
 * Each benchmark prints one line per result, exactly:
 *   RESULT name=<bench> impl=libactor metric=<metric> value=<number> unit=<unit>
 * Anything else a benchmark wants to say goes to stderr, so stdout stays machine-readable.
 */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"

/* Nanoseconds on the monotonic clock: immune to wall-clock steps, comparable across threads. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench_secs(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e9;
}

static inline double bench_ms(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e6;
}

/* Resident set size in bytes, from the second field of /proc/self/statm (pages). Returns 0
 * when /proc is unavailable, which makes a memory result visibly wrong rather than crash. */
static inline uint64_t bench_rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Prints one RESULT line. Large values are printed as integers; small ones (milliseconds,
 * bytes per actor) keep three decimals. Flushed at once so a later crash cannot swallow it. */
static inline void bench_result(const char *name, const char *metric, double value,
                                const char *unit)
{
	printf("RESULT name=%s impl=libactor metric=%s value=%.*f unit=%s\n", name, metric,
	       value >= 10000.0 ? 0 : 3, value, unit);
	fflush(stdout);
}

/* argv[i] as a positive count, or `def` when absent. Exits with a usage message on anything
 * that is not a whole number in [1, max]: a benchmark run with a typo should not report. */
static inline uint64_t bench_arg_u64(int argc, char **argv, int i, uint64_t def, uint64_t max)
{
	if (i >= argc)
		return def;

	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(argv[i], &end, 10);
	if (errno != 0 || end == argv[i] || *end != '\0' || argv[i][0] == '-' || v < 1 || v > max) {
		fprintf(stderr,
		        "%s: argument %d: expected a whole number in [1, %" PRIu64 "], got '%s'\n",
		        argv[0], i, max, argv[i]);
		exit(2);
	}
	return (uint64_t)v;
}

/* Exits with a message when a setup call failed: a benchmark cannot report anything useful
 * after its system or its actors failed to start. */
static inline void bench_check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "bench: %s failed: %s\n", what, strerror(-rc));
		exit(1);
	}
}

/* The worker count the environment asks for: ACTOR_BENCH_WORKERS, or 0 (one per CPU) when it is
 * unset or empty. Exits on anything else that is not a whole number in [1, ACTOR_WORKERS_MAX],
 * like a bad argument: a scaling run with a typo must not report the default's figures. */
static inline unsigned bench_env_workers(void)
{
	const char *s = getenv("ACTOR_BENCH_WORKERS");

	if (s == NULL || *s == '\0')
		return 0;

	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] == '-' || v < 1 || v > ACTOR_WORKERS_MAX) {
		fprintf(stderr, "bench: ACTOR_BENCH_WORKERS must be in [1, %u], not '%s'\n",
		        ACTOR_WORKERS_MAX, s);
		exit(2);
	}
	return (unsigned)v;
}

/* Creates a system with `workers` threads and default everything else. 0 means the default:
 * ACTOR_BENCH_WORKERS when set (bench/compare.sh's scaling runs), else one per CPU. An explicit
 * count (pingpong_1core's 1) is kept whatever the environment says. */
static inline actor_system_t *bench_system(unsigned workers)
{
	actor_system_t *sys = NULL;
	actor_config_t cfg = {.workers = workers != 0 ? workers : bench_env_workers()};
	const char *no_move = getenv("ACTOR_BENCH_NO_MOVE"); /* 1: placement at spawn is final */
	cfg.no_move = no_move != NULL && strcmp(no_move, "1") == 0;
	const char *pin = getenv("ACTOR_BENCH_PIN"); /* 1: workers pinned to CPUs */
	cfg.pin = pin != NULL && strcmp(pin, "1") == 0;
	const char *spin = getenv("ACTOR_BENCH_SPIN_US"); /* the idle spin (config spin_us) */
	if (spin != NULL && *spin != '\0')
		cfg.spin_us = atoi(spin);

	bench_check(actor_system_create(&cfg, &sys), "actor_system_create");
	return sys;
}

/* Warns on stderr when the runtime dropped messages: a benchmark is only honest if every
 * message it counted was delivered. Returns the dead-letter count. */
static inline uint64_t bench_dead_letters(const actor_system_t *sys)
{
	actor_stats_t st;

	if (actor_stats_system(sys, &st) < 0)
		return 0;
	if (getenv("ACTOR_BENCH_STATS") != NULL) /* the system's counters, on stderr */
		actor_stats_print(sys, stderr);
	if (st.dead_letters != 0)
		fprintf(stderr, "bench: %" PRIu64 " dead letters\n", st.dead_letters);
	return st.dead_letters;
}

#endif /* BENCH_H */
