/* timer_lateness.c: how late timers fire, once per reactor backend.
 *
 * Usage: bench/timer_lateness [timers]   (default 10,000)
 *
 * One actor sets `timers` one-shot timers to itself at random delays up to 100 ms, all in one
 * behaviour call, and records for each how long after its deadline it arrived (the deadline is
 * taken as the clock just before actor_timer_start plus the delay, so the figure includes the
 * call itself). Prints the median and the 99th percentile in microseconds:
 *   RESULT name=timer_lateness impl=libactor-<reactor> metric=p50_us value=... unit=us
 * Then again on one worker whose actor first hands the default pool a job that blocks for
 * longer than all the timers take (a sleep of 2 s): metrics p50_us_job_blocking,
 * p99_us_job_blocking and max_us_job_blocking. A blocked pool thread must not hold the worker
 * up, so these should match the first ones.
 * A backend this machine refuses is skipped with a note on stderr.
 */
#include "bench.h"

#include <stdbool.h>

#define TIMERS_DEFAULT 10000u
#define MAX_DELAY_NS (100u * 1000000u)

#define BLOCK_MS 2000u

struct lateness {
	uint64_t n, got;
	bool block;      /* a job blocks the pool while the timers run */
	bool job_done;   /* its ACTOR_MSG_JOB_DONE arrived */
	uint64_t *deadline; /* per tag */
	uint64_t *late;     /* per arrival, ns */
	uint64_t early;     /* arrivals before their deadline: should be none */
	uint64_t set_ns;    /* how long setting them all took */
};

static int64_t block_job(void *arg)
{
	(void)arg;
	struct timespec ts = {BLOCK_MS / 1000, 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 0;
}

static void timers_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct lateness *l = state;
	if (msg->type == ACTOR_MSG_JOB_DONE) {
		l->job_done = true;
		if (l->got == l->n)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type != ACTOR_MSG_TIMER) {
		if (l->block) {
			actor_job_t j;
			bench_check(actor_job_submit(ctx, NULL, block_job, NULL, &j), "actor_job_submit");
		}
		uint64_t x = 0x9e3779b97f4a7c15ull, t0 = bench_now_ns();
		for (uint64_t i = 0; i < l->n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			uint64_t delay = x % MAX_DELAY_NS;
			actor_timer_t t;
			l->deadline[i] = bench_now_ns() + delay;
			bench_check(actor_timer_start(ctx, actor_self(ctx), delay, 0, i, &t),
			            "actor_timer_start");
		}
		l->set_ns = bench_now_ns() - t0;
		return;
	}
	uint64_t now = bench_now_ns();
	const actor_timer_event_t *ev = actor_msg_data(msg);
	uint64_t due = l->deadline[ev->tag];
	if (now < due)
		l->early++;
	l->late[l->got++] = now > due ? now - due : 0;
	if (l->got == l->n && (!l->block || l->job_done))
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_result(const char *impl, const char *metric, double value)
{
	printf("RESULT name=timer_lateness impl=%s metric=%s value=%.*f unit=us\n", impl, metric,
	       value >= 10000.0 ? 0 : 3, value);
	fflush(stdout);
}

static int measure(const char *reactor, uint64_t n, bool block)
{
	/* Blocking: one worker, so that the timers share it with the actor that submitted. */
	actor_config_t cfg = {.reactor = reactor, .workers = block ? 1 : 0};
	actor_system_t *sys = NULL;
	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0) {
		fprintf(stderr, "timer_lateness: SKIP %s: %s\n", reactor, strerror(-rc));
		return 0;
	}
	struct lateness l = {.n = n, .block = block};
	l.deadline = calloc(n, sizeof(*l.deadline));
	l.late = calloc(n, sizeof(*l.late));
	if (l.deadline == NULL || l.late == NULL)
		bench_check(-ENOMEM, "calloc");
	actor_ref_t a;
	bench_check(actor_spawn(sys, NULL, timers_fn, &l, &a), "actor_spawn");
	bench_check(actor_send(sys, a, 1, NULL, 0), "actor_send");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);

	if (l.got != n) {
		fprintf(stderr, "timer_lateness: %s: %" PRIu64 " of %" PRIu64 " timers fired\n",
		        reactor, l.got, n);
		return 1;
	}
	qsort(l.late, n, sizeof(*l.late), cmp_u64);
	char impl[64];
	snprintf(impl, sizeof(impl), "libactor-%s", reactor);
	fprintf(stderr,
	        "timer_lateness: %s%s: %" PRIu64 " timers set in %.2f ms, max %.1f us late, %" PRIu64
	        " early\n",
	        reactor, block ? " (a job blocking)" : "", n, (double)l.set_ns / 1e6,
	        (double)l.late[n - 1] / 1e3, l.early);
	const char *sfx = block ? "_job_blocking" : "";
	char metric[48];
	snprintf(metric, sizeof(metric), "p50_us%s", sfx);
	print_result(impl, metric, (double)l.late[n / 2] / 1e3);
	snprintf(metric, sizeof(metric), "p99_us%s", sfx);
	print_result(impl, metric, (double)l.late[(n * 99) / 100] / 1e3);
	if (block) {
		snprintf(metric, sizeof(metric), "max_us%s", sfx);
		print_result(impl, metric, (double)l.late[n - 1] / 1e3);
	}
	free(l.deadline);
	free(l.late);
	return l.early != 0;
}

int main(int argc, char **argv)
{
	uint64_t n = bench_arg_u64(argc, argv, 1, TIMERS_DEFAULT, 10000000);
	int rc = 0;
	rc |= measure("epoll", n, false);
	rc |= measure("io_uring", n, false);
	rc |= measure("epoll", n, true);
	rc |= measure("io_uring", n, true);
	return rc;
}
