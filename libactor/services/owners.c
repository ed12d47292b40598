/* owners.c: per-worker records of the actors a service holds something for (owners.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "services/owners.h"

static uint64_t ref_of(const void *rec)
{
	return ((const actor_ref_t *)rec)->id;
}

static uint32_t slot_of(uint64_t id, uint32_t cap)
{
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1); /* Fibonacci hashing */
}

void *actor__owners_find(const struct actor__owners *o, actor_ref_t ref)
{
	if (o->cap == 0)
		return NULL;
	for (uint32_t i = slot_of(ref.id, o->cap);; i = (i + 1) & (o->cap - 1)) {
		void *rec = o->slot[i];
		if (rec == NULL || ref_of(rec) == ref.id)
			return rec;
	}
}

static void place(struct actor__owners *o, void *rec)
{
	uint32_t i = slot_of(ref_of(rec), o->cap);
	while (o->slot[i] != NULL)
		i = (i + 1) & (o->cap - 1);
	o->slot[i] = rec;
}

static int grow(struct actor__owners *o)
{
	uint32_t cap = o->cap ? o->cap * 2 : 16;
	void **slot = calloc(cap, sizeof(*slot));
	if (slot == NULL)
		return -ENOMEM;
	struct actor__owners old = *o;
	o->slot = slot;
	o->cap = cap;
	for (uint32_t i = 0; i < old.cap; i++) {
		if (old.slot[i] != NULL)
			place(o, old.slot[i]);
	}
	free(old.slot);
	return 0;
}

void *actor__owners_get(struct actor__owners *o, actor_ref_t ref, size_t size)
{
	void *rec = actor__owners_find(o, ref);
	if (rec != NULL)
		return rec;
	if ((o->len + 1) * 4 > o->cap * 3 && grow(o) < 0)
		return NULL;
	rec = actor__alloc(size);
	if (rec == NULL)
		return NULL;
	memset(rec, 0, size);
	*(actor_ref_t *)rec = ref;
	place(o, rec);
	o->len++;
	return rec;
}

void actor__owners_del(struct actor__owners *o, void *rec, size_t size)
{
	uint32_t mask = o->cap - 1, i = slot_of(ref_of(rec), o->cap);
	while (o->slot[i] != rec)
		i = (i + 1) & mask;
	/* Backward shift: pull each later entry of the run into the hole if its home allows. */
	for (uint32_t j = (i + 1) & mask; o->slot[j] != NULL; j = (j + 1) & mask) {
		uint32_t home = slot_of(ref_of(o->slot[j]), o->cap);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			o->slot[i] = o->slot[j];
			i = j;
		}
	}
	o->slot[i] = NULL;
	o->len--;
	actor__free(rec, size);
}

void actor__owners_free(struct actor__owners *o, size_t size)
{
	for (uint32_t i = 0; i < o->cap; i++) {
		if (o->slot[i] != NULL)
			actor__free(o->slot[i], size);
	}
	free(o->slot);
	*o = (struct actor__owners){0};
}
