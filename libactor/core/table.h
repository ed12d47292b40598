/* table.h: a per-worker table of objects named by generation-checked handles.
 *
 * Connections, listeners and timers live on one worker and only that worker's thread touches
 * them, so the table needs no atomics. A handle is (worker << 56 | generation << 32 | index):
 * the worker tells a caller on the wrong thread to go away without touching the table, and the
 * generation (24 bits, bumped on every free) makes a stale handle fail instead of naming the
 * next object put in its place. Index 0 is never used, so no handle is 0.
 */
#ifndef ACTOR_TABLE_H
#define ACTOR_TABLE_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct actor__table {
	void **obj;
	uint32_t *gen;
	uint32_t *next_free;
	uint32_t cap, free_head, used;
};

#define TABLE_GEN_MASK 0xffffffu

static inline unsigned actor__handle_worker(uint64_t h)
{
	return (unsigned)(h >> 56);
}

static inline uint64_t actor__table_handle(const struct actor__table *t, unsigned worker,
                                           uint32_t idx)
{
	return ((uint64_t)worker << 56) | ((uint64_t)(t->gen[idx] & TABLE_GEN_MASK) << 32) | idx;
}

static inline int actor__table_grow(struct actor__table *t)
{
	uint32_t cap = t->cap ? t->cap * 2 : 64;
	void **obj = realloc(t->obj, cap * sizeof(*obj));
	if (obj == NULL)
		return -ENOMEM;
	t->obj = obj;
	uint32_t *gen = realloc(t->gen, cap * sizeof(*gen));
	if (gen == NULL)
		return -ENOMEM;
	t->gen = gen;
	uint32_t *nf = realloc(t->next_free, cap * sizeof(*nf));
	if (nf == NULL)
		return -ENOMEM;
	t->next_free = nf;
	/* Index 0 stays out of the free list; new slots are chained in index order. */
	for (uint32_t i = cap; i-- > (t->cap ? t->cap : 1);) {
		t->obj[i] = NULL;
		t->gen[i] = 1;
		t->next_free[i] = t->free_head;
		t->free_head = i;
	}
	if (t->cap == 0) {
		t->obj[0] = NULL;
		t->gen[0] = 0;
	}
	t->cap = cap;
	return 0;
}

/* Stores `o`; returns its index or a negative errno. */
static inline int64_t actor__table_put(struct actor__table *t, void *o)
{
	if (t->free_head == 0 && actor__table_grow(t) < 0)
		return -ENOMEM;
	uint32_t i = t->free_head;
	t->free_head = t->next_free[i];
	t->obj[i] = o;
	t->used++;
	return i;
}

/* The object a handle names, or NULL if it was freed (or never existed). */
static inline void *actor__table_get(const struct actor__table *t, uint64_t h)
{
	uint32_t i = (uint32_t)h;
	if (i == 0 || i >= t->cap || t->obj[i] == NULL)
		return NULL;
	if ((t->gen[i] & TABLE_GEN_MASK) != ((h >> 32) & TABLE_GEN_MASK))
		return NULL;
	return t->obj[i];
}

static inline void actor__table_del(struct actor__table *t, uint32_t i)
{
	t->obj[i] = NULL;
	t->gen[i] = (t->gen[i] + 1) & TABLE_GEN_MASK;
	if (t->gen[i] == 0)
		t->gen[i] = 1;
	t->next_free[i] = t->free_head;
	t->free_head = i;
	t->used--;
}

static inline void actor__table_free(struct actor__table *t)
{
	free(t->obj);
	free(t->gen);
	free(t->next_free);
	t->obj = NULL;
	t->gen = t->next_free = NULL;
	t->cap = t->free_head = t->used = 0;
}

#endif /* ACTOR_TABLE_H */
