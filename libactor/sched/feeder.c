/* feeder.c: a thread outside the pool that keeps sending (a busy sender, or feeder): how it is
 * recognised, and how a worker beside a stranger moves to its CPU. The workers' other answer to
 * it, leaving it a CPU, is the scheduler's (sched.c, feeder_busy).
 *
 * Recognising it. A thread outside the pool that keeps sending needs a CPU of its own, which a
 * worker on every CPU leaves it only in slices (bench/fork_join_throughput: 29.6-30.8 ms with
 * two workers on two CPUs, 20.0-21.1 ms with one; bench/README.md, "The third round"). Every
 * ACTOR_FEEDER_MARK of its sends, such a thread compares its CPU time with the time that passed
 * since the last mark: if the sends came within FEEDER_SPAN_NS and it ran for at least half of
 * that time, it is a busy sender, and it says so in actor__feeder_ns. Over windows of
 * FEEDER_WINDOW_NS or more (several of the kernel's time slices) it also says, in
 * actor__feeder_cpu, which CPU it runs on if it ran there for FEEDER_OWN_SHARE quarters of the
 * time or more, and -1 if not. Process-wide: such a thread takes a CPU whichever system it
 * feeds. A worker sending to another system is not counted: it has its CPU already. The cost:
 * two clock reads, one of them a system call, every ACTOR_FEEDER_MARK sends.
 *
 * Following it. A busy sender and the worker running the actors it feeds are a pipeline.
 * Beside a busy process on one of two CPUs (`make bench-noisy`) the kernel places the three
 * threads in one of two ways, and does not move from one to the other, since both leave two
 * threads on one CPU and one on the other:
 *   - the sender and the worker share a CPU and the stranger has the other: each message is
 *     written and read in one cache, and bench/fork_join_throughput takes 24-27 ms;
 *   - the worker shares the stranger's CPU: it gets half of it, every message crosses cores,
 *     and the run takes 36-82 ms.
 * In 30 runs of the build before, 11 took over 40 ms (median 36.0 ms, Go's 30.0 ms under the
 * same neighbour; bench/README.md, "The sixth round"). On a quiet machine neither happens: the
 * sender and the worker each have a CPU, and nothing here acts.
 *
 * So while a sender is busy, each worker whose loop turns (a parked one sleeps) looks, every
 * FOLLOW_CHECK_NS of its loop or the coarse clock's tick if that is longer, at how long it
 * waited for its CPU: the run delay in /proc/thread-self/schedstat, which the kernel keeps per
 * thread. If it waited for a quarter of the time since the last look or more, and the sender
 * said it has another CPU nearly to itself, the worker narrows its affinity to that CPU: the
 * kernel moves it there at once, and the stranger keeps its own. A sender that shares its CPU
 * is not followed: a worker moving there would take from it. After FOLLOW_HOLD_NS, or as soon
 * as the sender is no longer busy, the worker widens its affinity back to what it was; the
 * kernel has no reason to move it again, and if it does, the next look finds out. Each move
 * counts as `contended` in the worker's statistics.
 *
 * Who touches what: actor__feeder_ns and actor__feeder_cpu are written by busy senders and read
 * by workers, relaxed: hints, never guarantees. struct actor__follow is its worker's alone. A
 * worker pinned by the configuration (`pin`) never moves. Without /proc, or where the kernel
 * keeps no schedstat, no worker moves.
 *
 * The cost to a worker: a compare per loop turn; while a sender is busy, a pread of a small
 * file every FOLLOW_CHECK_NS; two sched_setaffinity calls per move.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

/* ---------------------------------------------------------------------------------------------
 * Recognising a busy sender
 */

#define FEEDER_SPAN_NS 50000000
#define FEEDER_WINDOW_NS 4000000
#define FEEDER_OWN_SHARE 3 /* quarters */

_Atomic uint64_t actor__feeder_ns;
_Atomic int actor__feeder_cpu = -1;
__attribute__((tls_model("initial-exec"))) _Thread_local uint32_t actor__feeder_sends;

static __attribute__((tls_model("initial-exec"))) _Thread_local struct {
	uint64_t wall_ns; /* the last mark; 0: none yet */
	uint64_t cpu_ns;
	uint64_t win_wall_ns, win_cpu_ns; /* the current window's start; 0: none yet */
} me;

void actor__feeder_mark(void)
{
	actor__feeder_sends = 0;
	struct timespec ts;
	uint64_t wall = actor__now_ns(), cpu = 0;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		cpu = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	uint64_t span = wall - me.wall_ns;
	bool busy =
	    me.wall_ns != 0 && cpu != 0 && span < FEEDER_SPAN_NS && (cpu - me.cpu_ns) * 2 >= span;
	me.wall_ns = wall;
	me.cpu_ns = cpu;
	if (!busy) {
		me.win_wall_ns = 0;
		return;
	}
	/* relaxed: hints (internal.h). */
	if (me.win_wall_ns == 0) {
		me.win_wall_ns = wall;
		me.win_cpu_ns = cpu;
	} else if (wall - me.win_wall_ns >= FEEDER_WINDOW_NS) {
		uint64_t ran = cpu - me.win_cpu_ns, window = wall - me.win_wall_ns;
		int at = ran * 4 >= window * FEEDER_OWN_SHARE ? sched_getcpu() : -1;
		atomic_store_explicit(&actor__feeder_cpu, at, memory_order_relaxed);
		me.win_wall_ns = wall;
		me.win_cpu_ns = cpu;
	}
	atomic_store_explicit(&actor__feeder_ns, wall, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Following it
 */

#define FOLLOW_CHECK_NS 2000000  /* a check per 2 ms of the worker's loop */
#define FOLLOW_HOLD_NS 100000000 /* then on the feeder's CPU for 100 ms at most */
#define FOLLOW_WAIT_SHARE 4      /* contended: waited for 1/4 of the time or more */

/* This thread's run delay so far (ns), or -1: no schedstat to read. */
static int64_t run_delay(struct actor__follow *f)
{
	if (f->fd == -1)
		f->fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		f->fd = -2; /* none: do not try again */
		return -1;
	}
	char buf[96];
	ssize_t n = pread(f->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	uint64_t run, wait;
	if (sscanf(buf, "%" SCNu64 " %" SCNu64, &run, &wait) != 2)
		return -1;
	return (int64_t)wait;
}

static void unfollow(struct actor_worker *w)
{
	struct actor__follow *f = &w->follow;
	(void)sched_setaffinity(0, sizeof(f->mask), &f->mask); /* what it was before the move */
	f->until = 0;
	f->at = 0; /* a fresh baseline: the wait so far was on the feeder's CPU */
}

void actor__follow_check(struct actor_worker *w, uint64_t coarse_now)
{
	struct actor__follow *f = &w->follow;
	f->next = coarse_now + FOLLOW_CHECK_NS;
	if (w->sys->pin)
		return;
	uint64_t now = actor__now_ns(), fresh_until;
	if (!actor__feeder_fresh(now, &fresh_until)) {
		if (f->until != 0)
			unfollow(w);
		f->at = 0;
		return;
	}
	if (f->until != 0) {
		if (now >= f->until)
			unfollow(w);
		return;
	}
	int64_t wait = run_delay(f);
	if (wait < 0)
		return;
	bool contended = f->at != 0 && now > f->at &&
	                 (uint64_t)(wait - f->wait) * FOLLOW_WAIT_SHARE >= now - f->at;
	f->at = now;
	f->wait = wait;
	if (!contended)
		return;
	int to = atomic_load_explicit(&actor__feeder_cpu, memory_order_relaxed); /* a hint */
	int here = sched_getcpu();
	if (to < 0 || here < 0 || to == here || to >= CPU_SETSIZE)
		return;
	if (sched_getaffinity(0, sizeof(f->mask), &f->mask) != 0 || !CPU_ISSET(to, &f->mask))
		return; /* not a CPU this worker may use */
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(to, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		return;
	f->until = now + FOLLOW_HOLD_NS;
	actor__stat_add(&w->st.contended, 1);
}

void actor__follow_init(struct actor_worker *w)
{
	w->follow.fd = -1;
	w->follow.next = 0;
	w->follow.until = 0;
	w->follow.at = 0;
}

void actor__follow_fini(struct actor_worker *w)
{
	if (w->follow.until != 0)
		unfollow(w);
	if (w->follow.fd >= 0)
		close(w->follow.fd);
	w->follow.fd = -1;
}
