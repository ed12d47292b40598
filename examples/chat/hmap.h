/* hmap.h: a small open-addressing hash table from 64-bit hashes to pointers, for the chat
 * server's nick, channel and member indexes. Several values may share a hash: lookups take a
 * predicate that recognises the wanted one. Linear probing with backward-shift deletion, so
 * there are no tombstones and a table that shrinks stays fast.
 *
 * Owned by one actor at a time, like everything else in its state: no locking.
 */
#ifndef CHAT_HMAP_H
#define CHAT_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct hmap {
	uint64_t *keys; /* 0 marks an empty slot; hashes are never stored as 0 */
	void **vals;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

typedef bool hmap_eq_fn(const void *val, const void *arg);

static inline uint64_t hmap_key(uint64_t h)
{
	/* Mix, then keep 0 free as the empty mark. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h != 0 ? h : 1;
}

static inline void hmap_free(struct hmap *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct hmap){0};
}

static inline int hmap_grow(struct hmap *m)
{
	size_t cap = m->cap != 0 ? m->cap * 2 : 8;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	void **vals = calloc(cap, sizeof(*vals));
	if (keys == NULL || vals == NULL) {
		free(keys);
		free(vals);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] == 0)
			continue;
		size_t j = m->keys[i] & (cap - 1);
		while (keys[j] != 0)
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	return 0;
}

/* Adds `val` under `hash`. Returns 0, or -1 when out of memory. */
static inline int hmap_put(struct hmap *m, uint64_t hash, void *val)
{
	if ((m->n + 1) * 4 > m->cap * 3 && hmap_grow(m) < 0)
		return -1;
	uint64_t k = hmap_key(hash);
	size_t j = k & (m->cap - 1);
	while (m->keys[j] != 0)
		j = (j + 1) & (m->cap - 1);
	m->keys[j] = k;
	m->vals[j] = val;
	m->n++;
	return 0;
}

/* The value under `hash` that eq(val, arg) accepts (any, when eq is NULL), or NULL. */
static inline void *hmap_find(const struct hmap *m, uint64_t hash, hmap_eq_fn *eq, const void *arg)
{
	if (m->cap == 0)
		return NULL;
	uint64_t k = hmap_key(hash);
	for (size_t j = k & (m->cap - 1); m->keys[j] != 0; j = (j + 1) & (m->cap - 1))
		if (m->keys[j] == k && (eq == NULL || eq(m->vals[j], arg)))
			return m->vals[j];
	return NULL;
}

/* Removes the entry holding exactly `val` under `hash`. Returns whether it was there. */
static inline bool hmap_del(struct hmap *m, uint64_t hash, const void *val)
{
	if (m->cap == 0)
		return false;
	uint64_t k = hmap_key(hash);
	size_t mask = m->cap - 1, j = k & mask;
	for (; m->keys[j] != 0; j = (j + 1) & mask)
		if (m->keys[j] == k && m->vals[j] == val)
			break;
	if (m->keys[j] == 0)
		return false;
	/* Backward shift: pull later entries of the probe run into the hole. */
	size_t hole = j;
	for (size_t i = (j + 1) & mask; m->keys[i] != 0; i = (i + 1) & mask) {
		size_t home = m->keys[i] & mask;
		/* Move entry i into the hole unless its home lies cyclically in (hole, i]. */
		bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
		if (!stays) {
			m->keys[hole] = m->keys[i];
			m->vals[hole] = m->vals[i];
			hole = i;
		}
	}
	m->keys[hole] = 0;
	m->vals[hole] = NULL;
	m->n--;
	return true;
}

/* Iteration: slots 0 .. cap-1; a used slot has keys[i] != 0, an empty one vals[i] == NULL. */

#endif /* CHAT_HMAP_H */
