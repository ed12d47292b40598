/* spawn_idle.c: what an idle actor costs, in memory and in spawn time.
 *
 * Usage: bench/spawn_idle [actors]   (default 1,000,000)
 *
 * The main thread spawns `actors` actors with no state that never get a message, then reads
 * the growth of the resident set size. bytes_per_actor is that growth divided by the count: it
 * covers everything an actor costs the runtime (actor struct, mailbox, reference slot, its
 * share of the allocator's overhead), not just sizeof. spawns_per_s times spawns from outside
 * the worker pool, the path a program takes to build its initial actors. Then the system is
 * shut down, which stops every actor, and freed.
 */
#include "bench.h"

#define ACTORS_DEFAULT 1000000u

static void idle_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

int main(int argc, char **argv)
{
	uint64_t n = bench_arg_u64(argc, argv, 1, ACTORS_DEFAULT, UINT64_C(100000000));
	actor_system_t *sys = bench_system(0);
	actor_ref_t first = ACTOR_REF_NONE, last = ACTOR_REF_NONE;

	uint64_t rss0 = bench_rss_bytes();
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		bench_check(actor_spawn(sys, NULL, idle_fn, NULL, &last), "actor_spawn");
		if (i == 0)
			first = last;
	}
	uint64_t t1 = bench_now_ns();
	uint64_t rss1 = bench_rss_bytes();

	/* Every actor must still be alive: idle actors are not collected. */
	actor_info_t info;
	int rc = 0;
	if (actor_info(sys, first, &info) != 0 || actor_info(sys, last, &info) != 0) {
		fprintf(stderr, "spawn_idle: spawned actors are not alive\n");
		rc = 1;
	}
	actor_stats_t st;
	if (actor_stats_system(sys, &st) == 0 && st.spawned != n) {
		fprintf(stderr,
		        "spawn_idle: stats count %" PRIu64 " spawns, expected %" PRIu64 "\n",
		        st.spawned, n);
		rc = 1;
	}

	uint64_t t2 = bench_now_ns();
	bench_check(actor_system_shutdown(sys), "actor_system_shutdown");
	bench_check(actor_system_run(sys), "actor_system_run");
	uint64_t t3 = bench_now_ns();
	if (actor_stats_system(sys, &st) == 0 && st.stopped != n)
		fprintf(stderr,
		        "spawn_idle: warning: %" PRIu64 " actors counted stopped after run, "
		        "expected %" PRIu64 "\n",
		        st.stopped, n);
	actor_system_free(sys);
	uint64_t t4 = bench_now_ns();
	fprintf(stderr, "spawn_idle: RSS %.1f MB -> %.1f MB; shutdown+run %.1f ms, free %.1f ms\n",
	        rss0 / 1e6, rss1 / 1e6, bench_ms(t2, t3), bench_ms(t3, t4));

	if (rc == 0) {
		char name[64];
		if (n == ACTORS_DEFAULT)
			snprintf(name, sizeof(name), "spawn_idle_1m");
		else
			snprintf(name, sizeof(name), "spawn_idle_%" PRIu64, n);
		double growth = rss1 > rss0 ? (double)(rss1 - rss0) : 0.0;
		bench_result(name, "bytes_per_actor", growth / (double)n, "B");
		bench_result(name, "spawns_per_s", (double)n / bench_secs(t0, t1), "1/s");
		bench_result(name, "shutdown_ms", bench_ms(t2, t3), "ms");
	}
	return rc;
}
