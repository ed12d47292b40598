/* stats.c: reading the counters the workers keep. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>

#include "core/internal.h"
#include "reactor/reactor.h"

static uint64_t rd(const _Atomic uint64_t *c)
{
	/* relaxed: a counter's own value is all a reader gets; see actor.h on consistency. */
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

int actor_stats_worker(const actor_system_t *sys, unsigned worker, actor_worker_stats_t *out)
{
	if (sys == NULL || out == NULL || worker >= sys->nworkers)
		return -EINVAL;
	const struct actor_worker *w = &sys->workers[worker];
	out->processed = rd(&w->st.processed);
	out->resident = rd(&w->resident);
	out->runq = rd(&w->st.runq);
	out->parks = rd(&w->st.parks);
	out->wakeups = rd(&w->st.wakeups);
	out->conns = rd(&w->st.conns);
	out->accepts = rd(&w->st.accepts);
	out->accept_backoffs = rd(&w->st.accept_backoffs);
	out->read_throttles = rd(&w->st.read_throttles);
	out->timers = rd(&w->st.timers);
	out->closes_reset = rd(&w->st.closes_reset);
	out->reactor = w->rops->name;
	out->migrations = rd(&w->st.migrations);
	out->shared = rd(&w->st.shared);
	out->contended = rd(&w->st.contended);
	out->jobs = rd(&w->st.jobs);
	out->jobs_dropped = rd(&w->st.jobs_dropped);
	out->files = rd(&w->st.files);
	out->file_ops = rd(&w->st.file_ops);
	out->file_ops_dropped = rd(&w->st.file_ops_dropped);
	out->closes_unacked = rd(&w->st.closes_unacked);
	out->replies_dropped = rd(&w->st.replies_dropped);
	out->yielded = rd(&w->st.yielded);
	return 0;
}

int actor_stats_system(const actor_system_t *sys, actor_stats_t *out)
{
	if (sys == NULL || out == NULL)
		return -EINVAL;
	actor_stats_t s = {0};
	for (unsigned i = 0; i < ACTOR_EXT_STRIPES; i++) {
		s.spawned += rd(&sys->ext[i].spawned);
		s.sent += rd(&sys->ext[i].active) >> ACTOR_EXT_INFLIGHT_BITS;
	}
	for (unsigned i = 0; i < sys->nworkers; i++) {
		const struct actor_worker *w = &sys->workers[i];
		s.spawned += rd(&w->st.spawned);
		s.stopped += rd(&w->st.stopped);
		s.sent += rd(&w->st.sent);
		s.delivered += rd(&w->st.processed);
		s.dead_letters += rd(&w->st.dead_letters);
	}
	*out = s;
	return 0;
}

int actor_stats_print(const actor_system_t *sys, FILE *out)
{
	actor_stats_t s;
	if (out == NULL || actor_stats_system(sys, &s) < 0)
		return -EINVAL;
	fprintf(out,
	        "libactor: %u workers, reactor %s, allocator %s\n"
	        "  spawned %" PRIu64 " stopped %" PRIu64 " sent %" PRIu64 " delivered %" PRIu64
	        " dead-lettered %" PRIu64 "\n",
	        sys->nworkers, actor_system_reactor(sys), actor__alloc_name(), s.spawned, s.stopped,
	        s.sent, s.delivered, s.dead_letters);
	for (unsigned i = 0; i < sys->nworkers; i++) {
		actor_worker_stats_t w;
		actor_stats_worker(sys, i, &w);
		fprintf(out,
		        "  worker %u: processed %" PRIu64 " resident %" PRIu64 " runq %" PRIu64
		        " parks %" PRIu64 " wakeups %" PRIu64 " conns %" PRIu64 " accepts %" PRIu64
		        " backoffs %" PRIu64 " throttles %" PRIu64 " timers %" PRIu64
		        " closes-reset %" PRIu64 " closes-unacked %" PRIu64 " migrations %" PRIu64
		        " shared %" PRIu64 " contended %" PRIu64 " yielded %" PRIu64
		        " jobs %" PRIu64 " jobs-dropped %" PRIu64 " replies-dropped %" PRIu64
		        " %s\n",
		        i, w.processed, w.resident, w.runq, w.parks, w.wakeups, w.conns, w.accepts,
		        w.accept_backoffs, w.read_throttles, w.timers, w.closes_reset,
		        w.closes_unacked, w.migrations, w.shared, w.contended, w.yielded, w.jobs,
		        w.jobs_dropped, w.replies_dropped, w.reactor);
	}
	return 0;
}
