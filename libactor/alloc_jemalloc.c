/* alloc_jemalloc.c: runtime objects and messages from jemalloc, whose thread caches make the
 * cross-thread free of a message cheap; plus a per-worker free list for small messages.
 *
 * mallocx, never malloc: inside a shared libactor, `malloc` binds to whichever allocator comes
 * first in the program's link order (usually the C library's), while sdallocx is jemalloc's
 * alone. jemalloc's own entry points always pair.
 */
#include "config.h"

#include <jemalloc/jemalloc.h>
#include <stddef.h>

#include "alloc.h"

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

/* Small messages come from a per-worker free list for each of jemalloc's two smallest size
 * classes a message can have (32 and 64 bytes: a header and up to 8 or 40 bytes of payload),
 * so that a ping-pong reuses the same few blocks without entering jemalloc. Each message keeps
 * its exact size class: rounding 32-byte messages up to 64 doubled the cache lines a one-way
 * stream moves between cores and cost bench/counting_1to1 a quarter of its rate. One-way flows
 * fill one worker's lists and drain the other's; the cap bounds what that strands
 * (MSG_CACHE_MAX blocks per class per worker: 384 KiB). */
#define MSG_CLASSES 2
#define MSG_CACHE_MAX 4096

static const size_t class_size[MSG_CLASSES] = {32, 64};

struct msg_cache {
	void *head[MSG_CLASSES]; /* blocks linked through their first word */
	unsigned len[MSG_CLASSES];
};

_Static_assert(sizeof(struct msg_cache) <= sizeof(struct actor__msg_cache_slot),
               "the worker reserves room for the cache");

static __attribute__((tls_model("initial-exec"))) _Thread_local struct msg_cache *tls_cache;

static int class_of(size_t size)
{
	return size <= 32 ? 0 : size <= 64 ? 1 : -1;
}

void actor__msg_cache_attach(struct actor__msg_cache_slot *slot)
{
	struct msg_cache *c = (struct msg_cache *)slot;
	for (int k = 0; k < MSG_CLASSES; k++) {
		c->head[k] = NULL;
		c->len[k] = 0;
	}
	tls_cache = c;
}

void actor__msg_cache_detach(void)
{
	struct msg_cache *c = tls_cache;
	if (c == NULL)
		return;
	for (int k = 0; k < MSG_CLASSES; k++) {
		while (c->head[k] != NULL) {
			void *p = c->head[k];
			c->head[k] = *(void **)p;
			sdallocx(p, class_size[k], 0);
		}
		c->len[k] = 0;
	}
	tls_cache = NULL;
}

void *actor__msg_alloc(size_t size)
{
	int k = class_of(size);
	if (k < 0)
		return mallocx(size, 0);
	struct msg_cache *c = tls_cache;
	if (c != NULL && c->head[k] != NULL) {
		void *p = c->head[k];
		c->head[k] = *(void **)p;
		c->len[k]--;
		return p;
	}
	return mallocx(class_size[k], 0);
}

void actor__msg_free(void *p, size_t size)
{
	int k = class_of(size);
	if (k < 0) {
		sdallocx(p, size, 0);
		return;
	}
	struct msg_cache *c = tls_cache;
	if (c != NULL && c->len[k] < MSG_CACHE_MAX) {
		*(void **)p = c->head[k];
		c->head[k] = p;
		c->len[k]++;
		return;
	}
	sdallocx(p, class_size[k], 0);
}
