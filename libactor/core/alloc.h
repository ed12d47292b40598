/* alloc.h: the allocator seam. jemalloc by default (alloc_jemalloc.c), the C library in builds
 * without it (alloc_libc.c, for sanitizers). Sizes are passed to free so that jemalloc can skip
 * its size lookup. */
#ifndef ACTOR_ALLOC_H
#define ACTOR_ALLOC_H

#include <stddef.h>

void *actor__alloc(size_t size);
void *actor__zalloc(size_t size);
void actor__free(void *p, size_t size);
const char *actor__alloc_name(void);

/* Messages: like actor__alloc/free, through a per-thread cache of small blocks where the
 * allocator has one. A worker attaches its cache at start and detaches (flushes) at exit;
 * other threads get one on first use, flushed when they exit. */
struct actor__msg_cache_slot {
	void *opaque[8];
};
void actor__msg_cache_attach(struct actor__msg_cache_slot *slot);
void actor__msg_cache_detach(void);
void *actor__msg_alloc(size_t size);
/* A worker about to sleep: gives back some of what the caches shared between threads hold
 * beyond what a burst's end needs (bounded work per call). */
void actor__msg_cache_trim(void);
void actor__msg_free(void *p, size_t size);

#endif /* ACTOR_ALLOC_H */
