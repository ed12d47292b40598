/* names.c: the name registry (actor_register, actor_unregister, actor_whereis), and the release
 * of an actor's name when it stops.
 *
 * The table. Open addressing with linear probing over an array of pointers to entries. An entry
 * (name, hash, reference) never changes once published; a slot goes NULL -> entry -> TOMBSTONE,
 * never back. Growth, and the clean-up of tombstones, build a new array from the live pointers,
 * publish it, and retire the old one. Readers (actor_whereis) take no lock: acquire loads of the
 * array and of the slots, and a compare. Writers (register, unregister, a stop's release) hold
 * `lock` for a few probes, or one pass over the table when they rebuild it.
 *
 * Why not Concurrency Kit's ck_ht: in its byte-string mode it keeps a pointer to the key and
 * compares keys with memcmp inside the library, after loads done in inline assembly. Nothing can
 * tell ThreadSanitizer that a reader's memcmp comes after the writer's copy of the key (an
 * annotation before the lookup may come too early, and there is no place for one after the
 * load), so the sanitizer build would report races on every new name. Our own table is small,
 * uses C11 atomics the sanitizer sees, and retires its entries through the library's QSBR.
 *
 * Reclamation: a removed entry and a replaced array are retired with the QSBR of refs.c.
 * Readers are workers between quiescent points (R1) or outside threads inside
 * actor__ext_enter/_leave (R2); a writer unlinks with a seq_cst store, then reads the epoch as
 * the tag (R3), and the writes that follow free what actor__qsbr_passed allows (R4), as
 * actor_system_free frees the rest.
 *
 * Release at stop, and registrations racing stops. The invariants:
 *   N1. An entry for `ref` is inserted only while `ref` is alive (checked under the lock). It is
 *       then removed by exactly one of: actor_unregister; its registrar, if telling the actor
 *       failed (it had stopped); a registration of the same name after `ref` stopped; or
 *       names_release(ref), which runs (a) in the stop, if the actor's ACTOR_NAMED flag is
 *       set, and (b) when a MSG_NAMED to it is dead-lettered.
 *   N2. After the insertion the registrar tells the actor's holder: itself, if it is the
 *       actor's own behaviour (it sets ACTOR_NAMED), else with a MSG_NAMED. That message is
 *       either handled by a turn before the stop (the flag is set: (a) releases), or
 *       dead-lettered by the stop or after it ((b) releases): contract 3. So an entry never
 *       outlives its actor: a registration racing the stop fails with -ESRCH or is released.
 *   N3. Lookups and registrations treat an entry whose actor has stopped (its slot cleared, the
 *       first step of a stop) as absent. The stop clears the slot before it releases names and
 *       before it sends any DOWN, so a lookup that follows a DOWN of that actor fails with
 *       -ENOENT even while the entry waits for (b).
 *   N4. One name per actor. `by_ref` (writers only) maps each reference to its entry, which is
 *       how a stop finds the name of an actor that holds one.
 * Actors that never held a name pay one test of a flag bit when they stop (actor.c).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "core/internal.h"

#define NAMES_MIN 16 /* slots of the smallest table; also by_ref's buckets */

struct name {
	struct name *ref_next; /* writers: the by_ref chain; once removed, the retired list */
	uint64_t retire_epoch; /* writers, once removed */
	/* Immutable once published: */
	uint64_t hash;
	actor_ref_t ref;
	uint32_t len;
	char key[]; /* len bytes and a NUL */
};

struct table {
	struct table *retired_next; /* writers, once replaced */
	uint64_t retire_epoch;      /* writers, once replaced */
	size_t mask;                /* slots - 1 */
	struct name *_Atomic slot[];
};

struct actor__names {
	/* Readers: acquire; writers publish a new table with a seq_cst store. */
	struct table *_Atomic table;
	pthread_mutex_t lock;
	/* Writers only, under the lock. */
	size_t count, tombs;
	struct name **by_ref;
	size_t by_ref_mask;
	struct name *retired_names, *retired_names_last; /* oldest first */
	struct table *retired_tables, *retired_tables_last;
};

/* A removed entry's slot: probes go on past it. Never dereferenced. */
static struct name tombstone;
#define TOMB (&tombstone)

static bool valid_name(const char *name, uint32_t *len)
{
	if (name == NULL)
		return false;
	size_t n = strnlen(name, ACTOR_NAME_MAX + 1);
	if (n == 0 || n > ACTOR_NAME_MAX)
		return false;
	*len = (uint32_t)n;
	return true;
}

static uint64_t hash_name(const char *s, uint32_t len)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (uint32_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3u;
	}
	return h ^ (h >> 29); /* the low bits pick the slot: give them the high ones too */
}

/* True if `ref` names an actor that has not stopped. Reads its slot only, which lives as long
 * as the system: no QSBR section needed. */
static bool alive(actor_system_t *sys, actor_ref_t ref)
{
	return actor__lookup(sys, ref) != NULL; /* the pointer is not dereferenced */
}

static size_t name_bytes(const struct name *e)
{
	return sizeof(*e) + e->len + 1;
}

static size_t table_bytes(size_t slots)
{
	return sizeof(struct table) + slots * sizeof(struct name *);
}

/* ---------------------------------------------------------------------------------------------
 * The table: readers and writers
 */

/* The entry for the key in `t`, and its slot in *at. Readers in a QSBR section, or writers. */
static struct name *find(struct table *t, const char *key, uint32_t len, uint64_t h, size_t *at)
{
	/* The table is never full (rebuilt at 3/4), so the probe meets a NULL. */
	for (size_t i = h & t->mask, n = 0; n <= t->mask; i = (i + 1) & t->mask, n++) {
		/* acquire: pairs with the release store that published the entry (place). */
		struct name *e = atomic_load_explicit(&t->slot[i], memory_order_acquire);
		if (e == NULL)
			return NULL;
		if (e != TOMB && e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
			*at = i;
			return e;
		}
	}
	return NULL;
}

/* Writers: puts `e` in the first free slot of its probe; true if that slot was never used. */
static bool place(struct table *t, struct name *e)
{
	for (size_t i = e->hash & t->mask;; i = (i + 1) & t->mask) {
		struct name *s = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
		if (s == NULL || s == TOMB) {
			/* release: the entry's fields before its pointer (find's acquire). */
			atomic_store_explicit(&t->slot[i], e, memory_order_release);
			return s == NULL;
		}
	}
}

/* ---------------------------------------------------------------------------------------------
 * Writers (under the lock): the reference index, retiring and reclaiming
 */

static size_t ref_bucket(const struct actor__names *n, actor_ref_t ref)
{
	return (size_t)((ref.id * 0x9e3779b97f4a7c15u) >> 32) & n->by_ref_mask;
}

static struct name *by_ref_find(const struct actor__names *n, actor_ref_t ref)
{
	struct name *e = n->by_ref[ref_bucket(n, ref)];
	while (e != NULL && e->ref.id != ref.id)
		e = e->ref_next;
	return e;
}

static void by_ref_add(struct actor__names *n, struct name *e)
{
	struct name **b = &n->by_ref[ref_bucket(n, e->ref)];
	e->ref_next = *b;
	*b = e;
}

static void by_ref_remove(struct actor__names *n, struct name *e)
{
	struct name **pp = &n->by_ref[ref_bucket(n, e->ref)];
	while (*pp != e)
		pp = &(*pp)->ref_next;
	*pp = e->ref_next;
}

/* Doubles the index when it holds more entries than buckets. */
static int by_ref_grow(struct actor__names *n)
{
	size_t buckets = n->by_ref_mask + 1;
	if (n->count < buckets)
		return 0;
	struct name **old = n->by_ref;
	n->by_ref = actor__zalloc(2 * buckets * sizeof(*old));
	if (n->by_ref == NULL) {
		n->by_ref = old;
		return -ENOMEM;
	}
	n->by_ref_mask = 2 * buckets - 1;
	for (size_t b = 0; b < buckets; b++) {
		for (struct name *e = old[b], *next; e != NULL; e = next) {
			next = e->ref_next;
			by_ref_add(n, e);
		}
	}
	actor__free(old, buckets * sizeof(*old));
	return 0;
}

/* Removes the entry in slot `at` of the current table. */
static void remove_at(actor_system_t *sys, struct actor__names *n, size_t at, struct name *e)
{
	struct table *t = atomic_load_explicit(&n->table, memory_order_relaxed);
	/* seq_cst: the unlink comes before the epoch read that tags the entry (refs.c, R3). */
	atomic_store(&t->slot[at], TOMB);
	n->count--;
	n->tombs++;
	by_ref_remove(n, e);
	e->retire_epoch = atomic_load(&sys->epoch);
	e->ref_next = NULL;
	if (n->retired_names_last != NULL)
		n->retired_names_last->ref_next = e;
	else
		n->retired_names = e;
	n->retired_names_last = e;
}

/* Replaces the table by one sized for `want` entries at most 3/8 full, without tombstones. */
static int rebuild(actor_system_t *sys, struct actor__names *n, size_t want)
{
	size_t slots = NAMES_MIN;
	while (slots * 3 < want * 8)
		slots <<= 1;
	struct table *t = actor__zalloc(table_bytes(slots));
	if (t == NULL)
		return -ENOMEM;
	t->mask = slots - 1;
	struct table *old = atomic_load_explicit(&n->table, memory_order_relaxed);
	for (size_t i = 0; i <= old->mask; i++) {
		struct name *e = atomic_load_explicit(&old->slot[i], memory_order_relaxed);
		if (e != NULL && e != TOMB)
			place(t, e);
	}
	/* seq_cst: publishes the new table (readers' acquire load) and, as an unlink of the old
	 * one, comes before the epoch read that tags it (R3). */
	atomic_store(&n->table, t);
	n->tombs = 0;
	old->retire_epoch = atomic_load(&sys->epoch);
	old->retired_next = NULL;
	if (n->retired_tables_last != NULL)
		n->retired_tables_last->retired_next = old;
	else
		n->retired_tables = old;
	n->retired_tables_last = old;
	return 0;
}

/* Frees what no reader can reach any more. The retired lists are in epoch order. */
static void reclaim(actor_system_t *sys, struct actor__names *n)
{
	uint64_t passed = 0; /* an epoch known to be passed: everything tagged up to it goes */
	while (n->retired_names != NULL) {
		struct name *e = n->retired_names;
		if (e->retire_epoch > passed) {
			if (!actor__qsbr_passed(sys, e->retire_epoch))
				break;
			passed = e->retire_epoch;
		}
		n->retired_names = e->ref_next;
		if (n->retired_names == NULL)
			n->retired_names_last = NULL;
		actor__free(e, name_bytes(e));
	}
	while (n->retired_tables != NULL) {
		struct table *t = n->retired_tables;
		if (t->retire_epoch > passed) {
			if (!actor__qsbr_passed(sys, t->retire_epoch))
				break;
			passed = t->retire_epoch;
		}
		n->retired_tables = t->retired_next;
		if (n->retired_tables == NULL)
			n->retired_tables_last = NULL;
		actor__free(t, table_bytes(t->mask + 1));
	}
}

/* Inserts `e` (N1: its actor alive, its name free or held by a stopped actor, no name of its
 * own yet). */
static int insert(actor_system_t *sys, struct actor__names *n, struct name *e)
{
	if (!alive(sys, e->ref))
		return -ESRCH;
	struct table *t = atomic_load_explicit(&n->table, memory_order_relaxed);
	size_t at;
	struct name *old = find(t, e->key, e->len, e->hash, &at);
	if (old != NULL) {
		if (alive(sys, old->ref))
			return -EEXIST;
		remove_at(sys, n, at,
		          old); /* N3: its actor stopped; its release will find nothing */
	}
	if (by_ref_find(n, e->ref) != NULL)
		return -EBUSY; /* N4: it is alive, so that entry is current */
	if ((n->count + n->tombs + 1) * 4 > (t->mask + 1) * 3) {
		int rc = rebuild(sys, n, n->count + 1);
		if (rc < 0)
			return rc;
		t = atomic_load_explicit(&n->table, memory_order_relaxed);
	}
	n->count++;
	if (by_ref_grow(n) < 0) {
		n->count--;
		return -ENOMEM;
	}
	if (!place(t, e))
		n->tombs--;
	by_ref_add(n, e);
	return 0;
}

/* N2: tells the holder of `ref` that it holds a name. */
static int tell_holder(actor_system_t *sys, actor_ref_t ref)
{
	struct actor_worker *w = actor__self_worker(sys);
	if (w != NULL && w->ctx.actor != NULL && w->ctx.actor->ref.id == ref.id) {
		w->ctx.actor->flags |= ACTOR_NAMED; /* its own behaviour: the caller holds it */
		return 0;
	}
	return actor__send_internal(sys, ref, ACTOR_REF_NONE, MSG_NAMED, NULL, 0);
}

/* Removes the entry of `ref`, if any: N1 (a) and (b). Any thread (actor.c calls it on the home
 * worker, or in actor_system_free for what reclamation drains there). */
static void names_release(actor_system_t *sys, actor_ref_t ref)
{
	struct actor__names *n = sys->names;
	pthread_mutex_lock(&n->lock);
	struct name *e = by_ref_find(n, ref);
	if (e != NULL) {
		size_t at;
		struct table *t = atomic_load_explicit(&n->table, memory_order_relaxed);
		struct name *found = find(t, e->key, e->len, e->hash, &at);
		(void)found;
		assert(found == e);
		remove_at(sys, n, at, e);
	}
	reclaim(sys, n);
	pthread_mutex_unlock(&n->lock);
}

/* ---------------------------------------------------------------------------------------------
 * The API
 */

int actor_register(actor_system_t *sys, const char *name, actor_ref_t ref)
{
	uint32_t len;
	if (sys == NULL || !valid_name(name, &len))
		return -EINVAL;
	if (actor_ref_is_none(ref))
		return -ESRCH;
	struct name *e = actor__alloc(sizeof(*e) + len + 1);
	if (e == NULL)
		return -ENOMEM;
	e->hash = hash_name(name, len);
	e->ref = ref;
	e->len = len;
	memcpy(e->key, name, len);
	e->key[len] = '\0';

	struct actor__names *n = sys->names;
	pthread_mutex_lock(&n->lock);
	int rc = insert(sys, n, e);
	if (rc < 0) {
		actor__free(e, name_bytes(e));
	} else {
		rc = tell_holder(sys, ref);
		if (rc < 0) { /* N1: it stopped meanwhile (or no memory): undo */
			size_t at;
			struct name *found =
			    find(atomic_load_explicit(&n->table, memory_order_relaxed), e->key,
			         e->len, e->hash, &at);
			(void)found;
			assert(found == e);
			remove_at(sys, n, at, e);
		}
	}
	reclaim(sys, n);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int actor_unregister(actor_system_t *sys, const char *name)
{
	uint32_t len;
	if (sys == NULL || !valid_name(name, &len))
		return -EINVAL;
	struct actor__names *n = sys->names;
	pthread_mutex_lock(&n->lock);
	size_t at;
	struct name *e = find(atomic_load_explicit(&n->table, memory_order_relaxed), name, len,
	                      hash_name(name, len), &at);
	int rc = -ENOENT;
	if (e != NULL) {
		rc = alive(sys, e->ref) ? 0 : -ENOENT; /* N3: a stopped actor's entry is absent */
		remove_at(sys, n, at, e);
	}
	reclaim(sys, n);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int actor_whereis(actor_system_t *sys, const char *name, actor_ref_t *out)
{
	uint32_t len;
	if (sys == NULL || out == NULL || !valid_name(name, &len))
		return -EINVAL;
	uint64_t h = hash_name(name, len);
	/* R1 on a worker of this system; R2 elsewhere. */
	struct actor__ext *x = actor__self_worker(sys) == NULL ? actor__ext_enter(sys) : NULL;
	/* acquire: pairs with the seq_cst store that published it (rebuild). */
	struct table *t = atomic_load_explicit(&sys->names->table, memory_order_acquire);
	size_t at;
	struct name *e = find(t, name, len, h, &at);
	actor_ref_t ref = e != NULL ? e->ref : ACTOR_REF_NONE;
	if (x != NULL)
		actor__ext_leave(x);
	if (actor_ref_is_none(ref) || !alive(sys, ref)) { /* N3 */
		*out = ACTOR_REF_NONE;
		return -ENOENT;
	}
	*out = ref;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The system's registry
 */

int actor__names_init(actor_system_t *sys)
{
	struct actor__names *n = actor__zalloc(sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	struct table *t = actor__zalloc(table_bytes(NAMES_MIN));
	n->by_ref = actor__zalloc(NAMES_MIN * sizeof(*n->by_ref));
	if (t == NULL || n->by_ref == NULL || pthread_mutex_init(&n->lock, NULL) != 0) {
		if (t != NULL)
			actor__free(t, table_bytes(NAMES_MIN));
		if (n->by_ref != NULL)
			actor__free(n->by_ref, NAMES_MIN * sizeof(*n->by_ref));
		actor__free(n, sizeof(*n));
		return -ENOMEM;
	}
	t->mask = NAMES_MIN - 1;
	atomic_init(&n->table, t);
	n->by_ref_mask = NAMES_MIN - 1;
	sys->names = n;
	sys->names_release = names_release;
	return 0;
}

/* The system is being freed: no reader, no writer is left. */
void actor__names_fini(actor_system_t *sys)
{
	struct actor__names *n = sys->names;
	if (n == NULL)
		return;
	/* N1: every actor has stopped and every message has been drained, so every entry has
	 * been released. */
	assert(n->count == 0);
	struct table *t = atomic_load_explicit(&n->table, memory_order_relaxed);
	for (size_t i = 0; i <= t->mask; i++) {
		struct name *e = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
		if (e != NULL && e != TOMB)
			actor__free(e, name_bytes(e));
	}
	actor__free(t, table_bytes(t->mask + 1));
	while (n->retired_names != NULL) {
		struct name *e = n->retired_names;
		n->retired_names = e->ref_next;
		actor__free(e, name_bytes(e));
	}
	while (n->retired_tables != NULL) {
		struct table *old = n->retired_tables;
		n->retired_tables = old->retired_next;
		actor__free(old, table_bytes(old->mask + 1));
	}
	actor__free(n->by_ref, (n->by_ref_mask + 1) * sizeof(*n->by_ref));
	pthread_mutex_destroy(&n->lock);
	actor__free(n, sizeof(*n));
	sys->names = NULL;
}

size_t actor__names_count(actor_system_t *sys)
{
	struct actor__names *n = sys->names;
	pthread_mutex_lock(&n->lock);
	size_t count = n->count;
	pthread_mutex_unlock(&n->lock);
	return count;
}
