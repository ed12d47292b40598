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

#endif /* ACTOR_ALLOC_H */
