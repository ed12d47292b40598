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
/* A worker about to sleep: gives back some of what the caches shared between threads hold
 * beyond what a burst's end needs (bounded work per call). */
void actor__msg_cache_trim(void);

/* The part of a thread's message cache that every send and every turn use: a free list per
 * size class, the block freed last at its head. Inline, so that a message taken from the list
 * and one given back to it cost a few instructions and no call (bench/README.md, "The fifth
 * round"); everything else is the allocator's (the _slow functions). This thread's list, or
 * NULL: none yet (a thread outside the pool before its first message), or none at all (the
 * C library's allocator). */
#define ACTOR_MSG_CLASSES 2     /* 32 and 64 bytes: a header and up to 8 or 40 bytes of data */
#define ACTOR_MSG_LIST_MAX 4096 /* blocks per class in a list */
struct actor__msg_list {
	void *head[ACTOR_MSG_CLASSES]; /* blocks freed here, linked through their first word */
	unsigned len[ACTOR_MSG_CLASSES];
	/* What is left of the chain of blocks freed elsewhere that this thread allocates from
	 * once `head` is empty (alloc_jemalloc.c, "spare stacks"): linked the same way, and each
	 * block's word ACTOR_MSG_AHEAD_WORD names the block ACTOR_MSG_AHEAD places further on,
	 * or NULL. */
	void *cold[ACTOR_MSG_CLASSES];
};
#define ACTOR_MSG_AHEAD 16
#define ACTOR_MSG_AHEAD_WORD 3
extern __attribute__((
    tls_model("initial-exec"))) _Thread_local struct actor__msg_list *actor__msg_list_tls;
void *actor__msg_alloc_slow(size_t size);
void actor__msg_free_slow(void *p, size_t size);

static inline int actor__msg_class(size_t size)
{
	return size <= 32 ? 0 : size <= 64 ? 1 : -1;
}

/* A block from this thread's list, or NULL (none there: actor__msg_alloc_slow has one). */
static inline void *actor__msg_take(size_t size)
{
	struct actor__msg_list *l = actor__msg_list_tls;
	int k = actor__msg_class(size);
	if (__builtin_expect(l != NULL && k >= 0, 1)) {
		void *p = l->head[k];
		if (p != NULL) { /* freed here: most likely still in this core's cache */
			l->head[k] = *(void **)p;
			l->len[k]--;
			return p;
		}
	}
	return NULL;
}

/* The next block of `l`'s cold chain of class `k`, or NULL (none left). Prefetches the block
 * ACTOR_MSG_AHEAD places on: each was last written on another core, and a transfer between
 * cores can take longer than several sends. */
static inline void *actor__msg_cold_pop(struct actor__msg_list *l, int k)
{
	void *p = l->cold[k];
	if (p != NULL) {
		l->cold[k] = *(void **)p;
		void *ahead = ((void **)p)[ACTOR_MSG_AHEAD_WORD];
		if (ahead != NULL)
			__builtin_prefetch(ahead, 1);
	}
	return p;
}

/* A block from this thread's cold chain, or NULL (none left, or no list). For a sender whose
 * list stays empty, as a thread outside the pool that feeds actors. */
static inline void *actor__msg_take_cold(size_t size)
{
	struct actor__msg_list *l = actor__msg_list_tls;
	int k = actor__msg_class(size);
	if (__builtin_expect(l != NULL && k >= 0, 1))
		return actor__msg_cold_pop(l, k);
	return NULL;
}

static inline void *actor__msg_alloc(size_t size)
{
	void *p = actor__msg_take(size);
	if (p == NULL)
		p = actor__msg_take_cold(size);
	return p != NULL ? p : actor__msg_alloc_slow(size);
}

static inline void actor__msg_free(void *p, size_t size)
{
	struct actor__msg_list *l = actor__msg_list_tls;
	int k = actor__msg_class(size);
	if (__builtin_expect(l != NULL && k >= 0, 1) && l->len[k] < ACTOR_MSG_LIST_MAX) {
		*(void **)p = l->head[k];
		l->head[k] = p;
		l->len[k]++;
		return;
	}
	actor__msg_free_slow(p, size);
}

#endif /* ACTOR_ALLOC_H */
