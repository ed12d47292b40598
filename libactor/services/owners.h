/* owners.h: a service's per-worker records of the actors it holds something for (the pool's
 * jobs, the request service's requests), found by actor reference. Open addressing with linear
 * probing and deletion by backward shift; the worker's own thread only, no locking.
 *
 * A record is the service's own struct whose first member is the actor's `actor_ref_t`; the
 * table keeps pointers to records and makes and frees them with the record size it is given.
 */
#ifndef ACTOR_SERVICES_OWNERS_H
#define ACTOR_SERVICES_OWNERS_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"

struct actor__owners {
	void **slot;
	uint32_t cap, len; /* cap: 0 or a power of two, at most 3/4 full */
};

/* The record of `ref`, or NULL. */
void *actor__owners_find(const struct actor__owners *o, actor_ref_t ref);
/* The record of `ref`, made (`size` bytes, zeroed but for its ref) if it has none; NULL: out of
 * memory. */
void *actor__owners_get(struct actor__owners *o, actor_ref_t ref, size_t size);
/* Takes `rec` out of the table and frees it. */
void actor__owners_del(struct actor__owners *o, void *rec, size_t size);
/* Frees every record left, and the table. */
void actor__owners_free(struct actor__owners *o, size_t size);

#endif /* ACTOR_SERVICES_OWNERS_H */
