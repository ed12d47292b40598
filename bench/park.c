/* park.c: how the idle spin before parking trades CPU for wake-up latency.
 *
 * A thread outside the pool sends a timestamped message every `gap` microseconds to an actor
 * on another worker; the actor records how long the message took from send to behaviour.
 * For each spin setting and gap it prints the median and 99th percentile latency and the CPU
 * the whole process burned per second of wall time (2.0 = both cores busy).
 *
 * Usage: bench/park [messages-per-point]
 */
#include <actor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct probe {
	uint64_t *lat_ns;
	size_t n, cap;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void recorder(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct probe *p = state;
	uint64_t sent;
	memcpy(&sent, actor_msg_data(msg), sizeof(sent));
	if (p->n < p->cap)
		p->lat_ns[p->n++] = mono_ns() - sent;
	if (p->n == p->cap)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int point(int spin_us, unsigned gap_us, size_t count)
{
	actor_config_t cfg = {.workers = 2, .spin_us = spin_us};
	actor_system_t *sys;
	if (actor_system_create(&cfg, &sys) < 0)
		return -1;
	struct probe p = {.lat_ns = calloc(count, sizeof(uint64_t)), .cap = count};
	actor_ref_t ref;
	actor_spawn_opts_t opts = {.placement = ACTOR_PLACE_FIXED, .worker = 1};
	if (p.lat_ns == NULL || actor_spawn(sys, &opts, recorder, &p, &ref) < 0)
		return -1;

	uint64_t wall0 = mono_ns(), cpu0 = cpu_ns();
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (size_t i = 0; i < count; i++) {
		uint64_t now = mono_ns();
		if (actor_send(sys, ref, 1, &now, sizeof(now)) < 0)
			return -1;
		/* The sender sleeps between sends, so the CPU figure is the workers' own. */
		next.tv_nsec += (long)gap_us * 1000;
		while (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	actor_system_run(sys);
	uint64_t wall = mono_ns() - wall0, cpu = cpu_ns() - cpu0;
	actor_system_free(sys);

	qsort(p.lat_ns, p.n, sizeof(uint64_t), cmp_u64);
	char name[64];
	snprintf(name, sizeof(name), "park_spin%d_gap%u", spin_us, gap_us);
	bench_result(name, "p50_us", p.lat_ns[p.n / 2] / 1000.0, "us");
	bench_result(name, "p99_us", p.lat_ns[p.n * 99 / 100] / 1000.0, "us");
	bench_result(name, "cpu_per_wall", (double)cpu / (double)wall, "cores");
	free(p.lat_ns);
	return 0;
}

int main(int argc, char **argv)
{
	size_t count = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	if (count == 0)
		return 2;
	prctl(PR_SET_TIMERSLACK, 1UL); /* sleep to the microsecond, not the default 50 µs */
	static const int spins[] = {-1, 10, 50, 200};
	static const unsigned gaps[] = {20, 100, 1000};
	for (size_t s = 0; s < sizeof(spins) / sizeof(spins[0]); s++)
		for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++)
			if (point(spins[s], gaps[g], count) < 0)
				return 1;
	return 0;
}
