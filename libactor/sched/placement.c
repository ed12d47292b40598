/* placement.c: the policies that choose an actor's home worker at spawn. */
#include "config.h"

#include <errno.h>

#include "core/internal.h"

/* splitmix64's finaliser: spreads consecutive keys over all workers. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* Round-robin per spawning thread: a worker keeps its own cursor (no shared write on the spawn
 * path); threads outside the pool one per stripe (refs.c). */
static unsigned round_robin(actor_system_t *sys, struct actor_worker *self)
{
	if (self != NULL) {
		unsigned i = (self->index + ++self->rr_next) % sys->nworkers;
		return i;
	}
	/* relaxed: only distinctness of successive values matters. */
	return atomic_fetch_add_explicit(&actor__ext_of(sys)->rr, 1, memory_order_relaxed) %
	       sys->nworkers;
}

static unsigned least_loaded(actor_system_t *sys)
{
	unsigned best = 0;
	uint64_t best_load = UINT64_MAX;
	for (unsigned i = 0; i < sys->nworkers; i++) {
		/* relaxed: a snapshot is all placement needs. */
		uint64_t l = atomic_load_explicit(&sys->workers[i].resident, memory_order_relaxed);
		if (l < best_load) {
			best_load = l;
			best = i;
		}
	}
	return best;
}

static int by_callback(actor_system_t *sys, const actor_spawn_opts_t *opts,
                       struct actor_worker *self, unsigned *out)
{
	if (opts->place == NULL)
		return -EINVAL;
	unsigned loads[ACTOR_WORKERS_MAX];
	for (unsigned i = 0; i < sys->nworkers; i++)
		loads[i] =
		    (unsigned)atomic_load_explicit(&sys->workers[i].resident, memory_order_relaxed);
	actor_place_info_t info = {
	    .workers = sys->nworkers,
	    .spawner_worker = self != NULL ? (int)self->index : -1,
	    .key = opts->key,
	    .loads = loads,
	};
	int i = opts->place(opts->place_arg, &info);
	if (i < 0 || (unsigned)i >= sys->nworkers)
		return -EINVAL;
	*out = (unsigned)i;
	return 0;
}

int actor__place(actor_system_t *sys, const actor_spawn_opts_t *opts, struct actor_worker *self,
                 unsigned *out)
{
	switch (opts->placement) {
	case ACTOR_PLACE_ROUND_ROBIN:
		*out = round_robin(sys, self);
		return 0;
	case ACTOR_PLACE_LOCAL:
		*out = self != NULL ? self->index : round_robin(sys, NULL);
		return 0;
	case ACTOR_PLACE_LEAST_LOADED:
		*out = least_loaded(sys);
		return 0;
	case ACTOR_PLACE_HASH:
		*out = (unsigned)(mix64(opts->key) % sys->nworkers);
		return 0;
	case ACTOR_PLACE_FIXED:
		if (opts->worker >= sys->nworkers)
			return -EINVAL;
		*out = opts->worker;
		return 0;
	case ACTOR_PLACE_CALLBACK:
		return by_callback(sys, opts, self, out);
	}
	return -EINVAL;
}
