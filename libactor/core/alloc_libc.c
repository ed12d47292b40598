/* alloc_libc.c: the C library's allocator, for builds without jemalloc (sanitizers). */
#include "config.h"

#include <stdlib.h>

#include "core/alloc.h"

void *actor__alloc(size_t size)
{
	return malloc(size);
}

void *actor__zalloc(size_t size)
{
	return calloc(1, size);
}

void actor__free(void *p, size_t size)
{
	(void)size;
	free(p);
}

const char *actor__alloc_name(void)
{
	return "libc";
}

/* No message cache here: sanitizer builds want every free to be a real one. */
void actor__msg_cache_attach(struct actor__msg_cache_slot *slot)
{
	(void)slot;
}

void actor__msg_cache_detach(void) {}

void actor__msg_cache_trim(void) {}

/* Never set: every message goes to the slow path, a real malloc and free. */
__attribute__((
    tls_model("initial-exec"))) _Thread_local struct actor__msg_list *actor__msg_list_tls;

void *actor__msg_alloc_slow(size_t size)
{
	return malloc(size);
}

void actor__msg_free_slow(void *p, size_t size)
{
	(void)size;
	free(p);
}
