/* blocking_roundtrip.c: a job that does nothing, to a blocking pool and back, with 1 and with 64
 * jobs in flight.
 *
 * Usage: bench/blocking_roundtrip [jobs]   (default 200,000 at 64 in flight; a fifth of that
 *                                          at 1)
 *
 * One actor keeps `in_flight` jobs submitted to the default pool (4 threads, as libuv's), each
 * returning its tag, and submits the next as each ACTOR_MSG_JOB_DONE arrives; it checks that
 * every result comes back once, with its own tag. One worker, as the libuv peer
 * (bench/peers/libuv/blocking_roundtrip.c) has one loop thread; ACTOR_BENCH_WORKERS overrides
 * it. Time runs from the first submit to the last result, inside the actor:
 *   RESULT name=blocking_roundtrip_<in_flight> impl=libactor metric=jobs_per_s value=...
 */
#include "bench.h"

#define JOBS_DEFAULT 200000u
#define POOL_THREADS 4

enum { MSG_START = 1 };

struct roundtrip {
	uint64_t jobs, in_flight;
	uint64_t submitted, done;
	uint8_t *seen; /* per tag */
	uint64_t t0, t1;
	int ok;
};

static int64_t noop(void *arg)
{
	return (int64_t)(uintptr_t)arg;
}

static void submit_one(actor_ctx_t *ctx, struct roundtrip *r)
{
	uint64_t tag = r->submitted++;
	actor_job_opts_t opts = {.tag = tag};
	actor_job_t job;
	bench_check(actor_job_submit(ctx, &opts, noop, (void *)(uintptr_t)tag, &job),
	            "actor_job_submit");
}

static void roundtrip_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct roundtrip *r = state;
	if (msg->type == MSG_START) {
		r->t0 = bench_now_ns();
		for (uint64_t i = 0; i < r->in_flight && r->submitted < r->jobs; i++)
			submit_one(ctx, r);
		return;
	}
	if (msg->type != ACTOR_MSG_JOB_DONE)
		return;
	const actor_job_done_t *d = actor_msg_data(msg);
	if (d->tag >= r->jobs || r->seen[d->tag] || d->result != (int64_t)d->tag ||
	    d->arg != (void *)(uintptr_t)d->tag) {
		fprintf(stderr, "blocking_roundtrip: bad result %" PRId64 " for tag %" PRIu64 "\n",
		        d->result, d->tag);
		actor_exit(ctx, 1);
		return;
	}
	r->seen[d->tag] = 1;
	if (++r->done == r->jobs) {
		r->t1 = bench_now_ns();
		r->ok = 1;
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (r->submitted < r->jobs)
		submit_one(ctx, r);
}

static int run(uint64_t jobs, uint64_t in_flight)
{
	char name[64];
	snprintf(name, sizeof(name), "blocking_roundtrip_%" PRIu64, in_flight);
	actor_system_t *sys = bench_system(bench_env_workers() != 0 ? 0 : 1);
	struct roundtrip r = {.jobs = jobs, .in_flight = in_flight, .seen = calloc(jobs, 1)};
	if (r.seen == NULL)
		bench_check(-ENOMEM, "calloc");
	actor_ref_t a;
	bench_check(actor_spawn(sys, NULL, roundtrip_fn, &r, &a), "actor_spawn");
	bench_check(actor_send(sys, a, MSG_START, NULL, 0), "actor_send");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);
	free(r.seen);
	if (!r.ok) {
		fprintf(stderr, "%s: FAILED after %" PRIu64 " of %" PRIu64 " jobs\n", name, r.done,
		        jobs);
		return 1;
	}
	bench_result(name, "jobs_per_s", (double)jobs / bench_secs(r.t0, r.t1), "1/s");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t jobs = bench_arg_u64(argc, argv, 1, JOBS_DEFAULT, UINT64_MAX / 2);
	_Static_assert(POOL_THREADS == ACTOR_POOL_THREADS_DEFAULT, "the default pool's size");
	int rc = run(jobs / 5 > 0 ? jobs / 5 : 1, 1);
	rc |= run(jobs, 64);
	return rc;
}
