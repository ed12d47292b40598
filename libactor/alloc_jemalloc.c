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

/* Small messages (header and payload within MSG_SMALL bytes) are all allocated at that size,
 * so that any of them can serve any other. A worker keeps up to MSG_CACHE_MAX freed ones for
 * its next sends: a ping-pong reuses the same few blocks without entering jemalloc. One-way
 * flows (a sender on one worker, a receiver on another) fill one cache and drain the other;
 * the cap bounds what that strands (MSG_CACHE_MAX * MSG_SMALL = 256 KiB per worker). */
#define MSG_SMALL 64
#define MSG_CACHE_MAX 4096

struct msg_cache {
	void *head; /* blocks linked through their first word */
	unsigned len;
};

static __attribute__((tls_model("initial-exec"))) _Thread_local struct msg_cache *tls_cache;

void actor__msg_cache_attach(struct actor__msg_cache_slot *slot)
{
	struct msg_cache *c = (struct msg_cache *)slot;
	c->head = NULL;
	c->len = 0;
	tls_cache = c;
}

void actor__msg_cache_detach(void)
{
	struct msg_cache *c = tls_cache;
	if (c == NULL)
		return;
	while (c->head != NULL) {
		void *p = c->head;
		c->head = *(void **)p;
		sdallocx(p, MSG_SMALL, 0);
	}
	c->len = 0;
	tls_cache = NULL;
}

void *actor__msg_alloc(size_t size)
{
	if (size > MSG_SMALL)
		return mallocx(size, 0);
	struct msg_cache *c = tls_cache;
	if (c != NULL && c->head != NULL) {
		void *p = c->head;
		c->head = *(void **)p;
		c->len--;
		return p;
	}
	return mallocx(MSG_SMALL, 0);
}

void actor__msg_free(void *p, size_t size)
{
	if (size > MSG_SMALL) {
		sdallocx(p, size, 0);
		return;
	}
	struct msg_cache *c = tls_cache;
	if (c != NULL && c->len < MSG_CACHE_MAX) {
		*(void **)p = c->head;
		c->head = p;
		c->len++;
		return;
	}
	sdallocx(p, MSG_SMALL, 0);
}
