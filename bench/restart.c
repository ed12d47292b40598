/* restart.c: how long a one_for_one supervisor takes to replace a failed child.
 *
 * Usage: bench/restart [restarts]   (default 10,000)
 *
 * A driver tells the supervised child to fail; the child notes the time and stops with an
 * abnormal reason; the supervisor hears of it (an exit signal), makes the new state, spawns the
 * replacement, and the replacement's start hook (its first turn) notes the time and tells the
 * driver, which fails it again. Latency is from the old child's stop to its replacement's first
 * turn; median and p99 over all restarts, on two workers.
 */
#include <stdlib.h>

#include "bench.h"

#define RESTARTS_DEFAULT 10000u

enum { MSG_READY = 1, MSG_FAIL };

static uint64_t *lat;
static uint64_t nlat, want;
static uint64_t stop_ns; /* written by the failing child before it stops, read by its successor:
                          * ordered by the exit signal and the spawn between them */
static actor_ref_t driver;

static void child_start(actor_ctx_t *ctx, void *state)
{
	(void)state;
	if (stop_ns != 0 && nlat < want)
		lat[nlat++] = bench_now_ns() - stop_ns;
	actor_send(actor_ctx_system(ctx), driver, MSG_READY, NULL, 0);
}

static void child_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_FAIL) {
		stop_ns = bench_now_ns();
		actor_exit(ctx, 1);
	}
}

static void driver_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	actor_ref_t *sup = state;
	if (msg->type != MSG_READY)
		return;
	if (nlat >= want) {
		actor_stop(actor_ctx_system(ctx), *sup);
		actor_exit(ctx, 0);
		return;
	}
	actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_FAIL, NULL, 0);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	want = bench_arg_u64(argc, argv, 1, RESTARTS_DEFAULT, 100000000u);
	lat = calloc(want, sizeof(*lat));
	actor_system_t *sys = bench_system(2);
	static actor_ref_t sup;
	driver = ACTOR_REF_NONE;
	bench_check(actor_spawn(sys, NULL, driver_fn, &sup, &driver), "actor_spawn(driver)");
	actor_child_spec_t spec = {.id = "child", .fn = child_fn, .spawn = {.start = child_start}};
	actor_supervisor_opts_t opts = {.intensity = ACTOR_SUPERVISOR_INTENSITY_MAX,
	                                .period_ms = 1,
	                                .children = &spec,
	                                .nchildren = 1};
	uint64_t t0 = bench_now_ns();
	bench_check(actor_supervisor_spawn(sys, NULL, &opts, &sup), "actor_supervisor_spawn");
	actor_system_run(sys);
	uint64_t t1 = bench_now_ns();
	actor_system_free(sys);
	if (nlat != want) {
		fprintf(stderr, "restart: %" PRIu64 " restarts measured of %" PRIu64 "\n", nlat,
		        want);
		return 1;
	}
	qsort(lat, nlat, sizeof(*lat), cmp);
	bench_result("restart", "median_us", (double)lat[nlat / 2] / 1e3, "us");
	bench_result("restart", "p99_us", (double)lat[nlat * 99 / 100] / 1e3, "us");
	bench_result("restart", "restarts_per_s", (double)nlat / bench_secs(t0, t1), "1/s");
	free(lat);
	return 0;
}
