/* overload.c: producers offering ten times what one consumer can handle, with the consumer's
 * mailbox bounded and without a bound.
 *
 * Usage: bench/overload [seconds] [capacity] [work_ns]   (defaults 2, 1024 and 10,000)
 *
 * The consumer spends `work_ns` of CPU on each message, so it handles at most 1e9 / work_ns
 * messages a second. Two producers, each on a timer every millisecond, offer ten times that
 * between them. Bounded (`capacity`): a producer refused with -EAGAIN sheds what it had left to
 * send and offers nothing more until the consumer's ACTOR_MSG_WRITABLE, so the mailbox never
 * holds more than `capacity` and memory stays flat. Unbounded: every send succeeds and the
 * backlog, and the process's memory, grow for as long as the overload lasts.
 *
 * Each mode runs in a process of its own (the peak resident set is per process) for `seconds`,
 * then the system is shut down (the unbounded backlog becomes dead letters, not counted as
 * handled). Printed per mode (name overload_bounded or overload_unbounded):
 *   handled_per_s   messages the consumer handled, per second of the run;
 *   offered_per_s   messages the producers tried to send (the refused and the shed included);
 *   refusals        sends refused with -EAGAIN (bounded);
 *   notices         ACTOR_MSG_WRITABLE received by the producers (bounded);
 *   depth_max       the consumer's mailbox depth, sampled every 10 ms (actor_info; the system
 *                   counts every mailbox, so the unbounded one's too), the largest seen;
 *   rss_peak        the process's peak resident set (VmHWM);
 *   rss_growth      resident set at the end less at half time: about 0 when memory is flat.
 * The run checks itself: bounded, the depth never passes the capacity and every refusal
 * episode ended with exactly one notice (but the last, if still waiting), else exit 1.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "bench.h"

#define PRODUCERS 2
#define TICK_NS ACTOR_MS(1)
#define OVERLOAD 10 /* offered / what the consumer can handle */
#define SAMPLE_MS 10

enum { MSG_START = 1, MSG_WORK };

struct consumer {
	uint64_t work_ns;
	_Atomic uint64_t handled;
};

struct producer {
	actor_ref_t consumer;
	uint64_t per_tick; /* messages offered per millisecond */
	uint64_t seq;
	bool waiting; /* refused; its notice not yet come */
	_Atomic uint64_t offered, refusals, notices, episodes, unexpected;
};

static void consumer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct consumer *c = state;
	(void)ctx;
	if (msg->type != MSG_WORK)
		return;
	uint64_t t0 = bench_now_ns();
	while (bench_now_ns() - t0 < c->work_ns)
		; /* the consumer's work: CPU time per message */
	atomic_fetch_add_explicit(&c->handled, 1, memory_order_relaxed);
}

static void add(_Atomic uint64_t *c, uint64_t n)
{
	/* relaxed: counters for the main thread's report; one writer. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static void producer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct producer *p = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	uint64_t periods = 1;
	if (msg->type == MSG_START) {
		actor_timer_t t;
		bench_check(actor_timer_start(ctx, actor_self(ctx), TICK_NS, TICK_NS, 0, &t),
		            "actor_timer_start");
		return;
	}
	if (msg->type == ACTOR_MSG_WRITABLE) {
		add(&p->notices, 1);
		if (!p->waiting)
			add(&p->unexpected, 1);
		p->waiting = false;
		return; /* offers again from the next tick */
	}
	if (msg->type != ACTOR_MSG_TIMER)
		return;
	actor_timer_event_t ev;
	memcpy(&ev, actor_msg_data(msg), sizeof(ev));
	periods = ev.expirations;
	uint64_t quota = p->per_tick * periods;
	add(&p->offered, quota);
	if (p->waiting)
		return; /* shed: a refused producer waits for its notice */
	for (uint64_t i = 0; i < quota; i++) {
		int rc = actor_send(sys, p->consumer, MSG_WORK, &p->seq, sizeof(p->seq));
		if (rc == -EAGAIN) {
			add(&p->refusals, 1);
			add(&p->episodes, 1);
			p->waiting = true;
			return; /* shed the rest of this tick */
		}
		bench_check(rc, "actor_send");
		p->seq++;
	}
}

/* The peak resident set (VmHWM), bytes; 0 if /proc cannot tell. */
static uint64_t rss_peak_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long kb = 0;
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			break;
	}
	fclose(f);
	return (uint64_t)kb * 1024u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int run(const char *name, uint64_t seconds, uint32_t capacity, uint64_t work_ns)
{
	/* bench_system's settings from the environment, and every mailbox counted. */
	actor_config_t cfg = {.workers = bench_env_workers(), .count_depth = 1};
	const char *env = getenv("ACTOR_BENCH_NO_MOVE");
	cfg.no_move = env != NULL && strcmp(env, "1") == 0;
	env = getenv("ACTOR_BENCH_PIN");
	cfg.pin = env != NULL && strcmp(env, "1") == 0;
	env = getenv("ACTOR_BENCH_SPIN_US");
	if (env != NULL && *env != '\0')
		cfg.spin_us = atoi(env);
	actor_system_t *sys = NULL;
	bench_check(actor_system_create(&cfg, &sys), "actor_system_create");

	struct consumer c = {.work_ns = work_ns};
	actor_spawn_opts_t co = {.capacity = capacity};
	actor_ref_t consumer;
	bench_check(actor_spawn(sys, &co, consumer_fn, &c, &consumer), "actor_spawn(consumer)");
	uint64_t offered_per_s = OVERLOAD * (1000000000u / work_ns);
	struct producer p[PRODUCERS];
	memset(p, 0, sizeof(p));
	for (unsigned i = 0; i < PRODUCERS; i++) {
		actor_ref_t r;
		p[i].consumer = consumer;
		p[i].per_tick = offered_per_s / PRODUCERS / (1000000000u / TICK_NS);
		bench_check(actor_spawn(sys, NULL, producer_fn, &p[i], &r),
		            "actor_spawn(producer)");
		bench_check(actor_send(sys, r, MSG_START, NULL, 0), "actor_send(start)");
	}

	uint64_t t0 = bench_now_ns(), end = t0 + seconds * 1000000000u, half = t0 + (end - t0) / 2;
	uint64_t depth_max = 0, rss_half = 0;
	for (uint64_t now = t0; now < end; now = bench_now_ns()) {
		sleep_ms(SAMPLE_MS);
		actor_info_t info;
		if (actor_info(sys, consumer, &info) == 0 && info.depth > depth_max)
			depth_max = info.depth;
		if (rss_half == 0 && now >= half)
			rss_half = bench_rss_bytes();
	}
	uint64_t t1 = bench_now_ns();
	uint64_t handled = atomic_load(&c.handled);
	uint64_t rss_end = bench_rss_bytes(), peak = rss_peak_bytes();
	bench_check(actor_system_shutdown(sys), "actor_system_shutdown");
	bench_check(actor_system_run(sys), "actor_system_run");
	actor_system_free(sys);

	uint64_t offered = 0, refusals = 0, notices = 0, episodes = 0, unexpected = 0;
	int waiting = 0;
	for (unsigned i = 0; i < PRODUCERS; i++) {
		offered += atomic_load(&p[i].offered);
		refusals += atomic_load(&p[i].refusals);
		notices += atomic_load(&p[i].notices);
		episodes += atomic_load(&p[i].episodes);
		unexpected += atomic_load(&p[i].unexpected);
		waiting += p[i].waiting;
	}
	double secs = bench_secs(t0, t1);
	fprintf(stderr,
	        "%s: %.2f s, capacity %u, %" PRIu64 " ns per message: handled %" PRIu64
	        ", offered %" PRIu64 ", refusals %" PRIu64 ", notices %" PRIu64
	        ", depth max %" PRIu64 ", RSS half %.1f MB end %.1f MB peak %.1f MB\n",
	        name, secs, capacity, work_ns, handled, offered, refusals, notices, depth_max,
	        (double)rss_half / 1e6, (double)rss_end / 1e6, (double)peak / 1e6);
	if (capacity != 0 &&
	    (depth_max > capacity || unexpected != 0 || notices + (uint64_t)waiting != episodes)) {
		fprintf(stderr,
		        "%s: FAILED: depth %" PRIu64 " over %u, or %" PRIu64 " notices for %" PRIu64
		        " episodes (%d still waiting, %" PRIu64 " unexpected)\n",
		        name, depth_max, capacity, notices, episodes, waiting, unexpected);
		return 1;
	}
	bench_result(name, "handled_per_s", (double)handled / secs, "1/s");
	bench_result(name, "offered_per_s", (double)offered / secs, "1/s");
	if (capacity != 0) {
		bench_result(name, "refusals", (double)refusals, "msgs");
		bench_result(name, "notices", (double)notices, "msgs");
	}
	bench_result(name, "depth_max", (double)depth_max, "msgs");
	bench_result(name, "rss_peak", (double)peak / 1e6, "MB");
	bench_result(name, "rss_growth", ((double)rss_end - (double)rss_half) / 1e6, "MB");
	return 0;
}

/* Runs one mode in a child process, so that each has its own peak resident set. */
static int run_apart(const char *name, uint64_t seconds, uint32_t capacity, uint64_t work_ns)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0)
		_exit(run(name, seconds, capacity, work_ns));
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	uint64_t seconds = bench_arg_u64(argc, argv, 1, 2, 3600);
	uint64_t capacity = bench_arg_u64(argc, argv, 2, 1024, ACTOR_CAPACITY_MAX);
	uint64_t work_ns = bench_arg_u64(argc, argv, 3, 10000, 1000000);
	int rc = 0;
	rc |= run_apart("overload_bounded", seconds, (uint32_t)capacity, work_ns);
	rc |= run_apart("overload_unbounded", seconds, 0, work_ns);
	return rc;
}
