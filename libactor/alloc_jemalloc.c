/* alloc_jemalloc.c: runtime objects and messages from jemalloc, whose thread caches make the
 * cross-thread free of a message cheap. */
#include "config.h"

#include <jemalloc/jemalloc.h>

#include "alloc.h"

/* mallocx, never malloc: inside a shared libactor, `malloc` binds to whichever allocator comes
 * first in the program's link order (usually the C library's), while sdallocx is jemalloc's
 * alone. jemalloc's own entry points always pair. */
void *actor__alloc(size_t size)
{
	return mallocx(size, 0);
}

void *actor__zalloc(size_t size)
{
	return mallocx(size, MALLOCX_ZERO);
}

void actor__free(void *p, size_t size)
{
	if (p != NULL)
		sdallocx(p, size, 0);
}

const char *actor__alloc_name(void)
{
	return "jemalloc";
}
