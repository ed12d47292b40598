/* watchdog.c: one thread per system that reports behaviour calls running longer than a limit
 * (actor_config_t.watchdog_ms), without stopping them.
 *
 * The workers read no clock for it. Each behaviour call makes its worker's `calls` count odd as
 * it starts and even as it returns, with two plain stores (actor__call_begin/_end, internal.h).
 * This thread samples every worker's count each limit/4. A count that is odd and has not changed
 * since the sample that first saw it, `limit` or more ago, is one call that has run at least that
 * long: it is reported, and again each time that time doubles (at limit, 2 limit, 4 limit, ...),
 * so a call stuck for good is recalled now and then without flooding the log. The time counts
 * from the first sample that saw the call, so no report comes early; a call shorter than
 * limit + limit/4 may go unreported.
 *
 * Which actor: the worker stores the actor's reference beside the count as the call starts; the
 * report reads it between two reads of the count (a sequence lock: a count that changed meanwhile
 * means the call ended, and nothing is reported), then looks the actor up for its spawn name.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"

struct actor__watchdog {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* under lock */
	actor_system_t *sys;
	uint64_t limit_ns, period_ns;
	actor_watchdog_fn *hook;
	void *hook_arg;
	struct actor__watch watch[]; /* one per worker; this thread's */
};

bool actor__watch_sample(struct actor__watch *s, uint64_t calls, uint64_t now, uint64_t limit,
                         uint64_t *running)
{
	if (calls != s->calls) { /* a call began or ended since the last sample */
		s->calls = calls;
		s->since = now;
		s->next = limit;
		return false;
	}
	if ((calls & 1) == 0 || now - s->since < s->next)
		return false; /* between calls, or not long enough yet */
	*running = now - s->since;
	while (s->next <= *running) /* the next report at the next doubling not yet passed */
		s->next = s->next > UINT64_MAX / 2 ? UINT64_MAX : s->next * 2;
	return true;
}

/* Reports the call numbered `calls` on `w`, running for `running` ns, unless it has ended. */
static void report(struct actor__watchdog *d, struct actor_worker *w, uint64_t calls,
                   uint64_t running)
{
	/* acquire: pairs with the release store of the ref in actor__call_begin, which follows the
	 * store that ended the call before: a ref of a later call comes with a later count. */
	actor_ref_t ref = {atomic_load_explicit(&w->call_ref, memory_order_acquire)};
	if (atomic_load_explicit(&w->calls, memory_order_relaxed) != calls)
		return; /* the call ended meanwhile: the ref may be the next one's */
	struct actor__ext *x = actor__ext_enter(d->sys);
	struct actor *a = actor__lookup(d->sys, ref);
	const char *name = a != NULL ? actor__name(a) : NULL; /* immutable, the user's string */
	actor__ext_leave(x);

	actor_watchdog_report_t r = {
	    .actor = ref, .name = name, .worker = w->index, .running_ns = running};
	if (d->hook != NULL) {
		d->hook(d->hook_arg, &r);
		return;
	}
	fprintf(stderr,
	        "libactor: watchdog: actor 0x%" PRIx64 "%s%s%s on worker %u has been in one "
	        "behaviour call for %.3f s (limit %.3f s); it is still running\n",
	        ref.id, name != NULL ? " \"" : "", name != NULL ? name : "",
	        name != NULL ? "\"" : "", w->index, (double)running / 1e9,
	        (double)d->limit_ns / 1e9);
}

/* Waits one period; true once asked to stop. */
static bool wait_period(struct actor__watchdog *d)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + d->period_ns;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&d->lock);
	while (!d->stop && pthread_cond_timedwait(&d->cond, &d->lock, &ts) != ETIMEDOUT)
		;
	bool stop = d->stop;
	pthread_mutex_unlock(&d->lock);
	return stop;
}

static void *watchdog_main(void *arg)
{
	struct actor__watchdog *d = arg;
	actor_system_t *sys = d->sys;
	while (!wait_period(d)) {
		uint64_t now = actor__now_ns();
		for (unsigned i = 0; i < sys->nworkers; i++) {
			struct actor_worker *w = &sys->workers[i];
			/* acquire: pairs with the release stores of actor__call_begin/_end. */
			uint64_t calls = atomic_load_explicit(&w->calls, memory_order_acquire);
			uint64_t running;
			if (actor__watch_sample(&d->watch[i], calls, now, d->limit_ns, &running))
				report(d, w, calls, running);
		}
	}
	return NULL;
}

static void watchdog_free(struct actor__watchdog *d)
{
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* After the workers have started. 0 without a watchdog (watchdog_ms -1). */
int actor__watchdog_start(actor_system_t *sys, const actor_config_t *cfg)
{
	if (cfg->watchdog_ms < 0)
		return 0;
	uint64_t ms =
	    cfg->watchdog_ms != 0 ? (uint64_t)cfg->watchdog_ms : ACTOR_WATCHDOG_MS_DEFAULT;
	struct actor__watchdog *d =
	    calloc(1, sizeof(*d) + sys->nworkers * sizeof(struct actor__watch));
	if (d == NULL)
		return -ENOMEM;
	d->sys = sys;
	d->limit_ns = ms * 1000000u;
	d->period_ns = d->limit_ns / 4;
	d->hook = cfg->watchdog;
	d->hook_arg = cfg->watchdog_arg;
	for (unsigned i = 0; i < sys->nworkers; i++)
		d->watch[i].next = d->limit_ns; /* count 0, even: no call seen yet */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0) {
		free(d);
		return -rc;
	}
	pthread_mutex_init(&d->lock, NULL);
	if (pthread_create(&d->thread, NULL, watchdog_main, d) != 0) {
		watchdog_free(d);
		return -EAGAIN;
	}
	sys->watchdog = d;
	return 0;
}

/* Stops and joins the thread (actor_system_free, before the workers' memory goes). */
void actor__watchdog_stop(actor_system_t *sys)
{
	struct actor__watchdog *d = sys->watchdog;
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	watchdog_free(d);
	sys->watchdog = NULL;
}
