/* refs.c: generation-checked actor references, and the quiescent-state-based reclamation that
 * keeps them safe without costing the send path anything.
 *
 * A reference is (generation << 32 | slot index). A slot holds the live actor and the current
 * generation; stopping an actor bumps the generation and clears the pointer, so a stale
 * reference fails its check with -ESRCH. The actor's memory is not freed at once, because a
 * sender may have looked it up just before the stop and still be pushing into its mailbox.
 *
 * QSBR, the rules:
 *   R1. A worker thread holds actor pointers only between two quiescent points of its loop
 *       (actor__qsbr_quiescent), never across one, and never while offline (parked).
 *   R2. A thread outside the pool holds them only between actor__ext_enter and _leave, which
 *       count it in and out of its stripe's `active` (internal.h, struct actor__ext).
 *   R3. Stopping clears the slot (seq_cst) before actor__retire reads the epoch to tag the
 *       actor; the epoch is bumped after that. So a worker whose quiescent point saw an epoch
 *       greater than the tag has finished every access that could have found the actor, and
 *       cannot find it again.
 *   R4. An actor tagged t is freed once every online worker's `qs` is > t and, after the bump,
 *       every stripe's in-flight count was seen at zero (ext_clear_epoch > t). Stripes are
 *       read one at a time, which is enough: a thread keeps to one stripe, so each of its
 *       sections either ended before that stripe was read or began after, and then after the
 *       bump, when the slot was already clear.
 * The seq_cst accesses on `epoch`, `qs` (when coming online) and `active` give the total order
 * these arguments rely on.
 *
 * Outside threads: their in-flight count and counters are striped (ACTOR_EXT_STRIPES lines
 * per system), each thread taking a stripe of its own on first use, so that a send from
 * outside costs a full barrier on a line nobody else writes, not on one every sender shares.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "core/internal.h"

/* ---------------------------------------------------------------------------------------------
 * Slots
 */

int actor__slots_init(actor_system_t *sys)
{
	sys->chunks = calloc(SLOT_CHUNKS, sizeof(*sys->chunks));
	if (sys->chunks == NULL)
		return -ENOMEM;
	atomic_init(&sys->slot_next, 1); /* index 0 is never used: id 0 is ACTOR_REF_NONE */
	sys->slot_free_head = 0;
	sys->slot_free_len = 0;
	if (pthread_mutex_init(&sys->slot_lock, NULL) != 0) {
		free(sys->chunks);
		return -ENOMEM;
	}
	return 0;
}

void actor__slots_fini(actor_system_t *sys)
{
	if (sys->chunks == NULL)
		return;
	for (unsigned i = 0; i < SLOT_CHUNKS; i++)
		free(atomic_load_explicit(&sys->chunks[i], memory_order_relaxed));
	free(sys->chunks);
	pthread_mutex_destroy(&sys->slot_lock);
}

static int ensure_chunk(actor_system_t *sys, uint32_t idx)
{
	struct actor__slot *_Atomic *cp = &sys->chunks[idx >> SLOT_CHUNK_BITS];
	if (atomic_load_explicit(cp, memory_order_acquire) != NULL)
		return 0;
	struct actor__slot *fresh = calloc(SLOT_CHUNK, sizeof(*fresh));
	if (fresh == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < SLOT_CHUNK; i++)
		atomic_init(&fresh[i].gen, 1);
	struct actor__slot *expected = NULL;
	/* release: pairs with the acquire in actor__slot_at(). */
	if (!atomic_compare_exchange_strong_explicit(cp, &expected, fresh, memory_order_release,
	                                             memory_order_acquire))
		free(fresh); /* another thread published this chunk first */
	return 0;
}

/* Takes `n` never-used indices; returns the first. */
static int take_fresh(actor_system_t *sys, uint32_t n, uint32_t *first)
{
	/* relaxed: the counter only hands out distinct ranges; chunk publication orders memory. */
	uint32_t start = atomic_fetch_add_explicit(&sys->slot_next, n, memory_order_relaxed);
	if (start > UINT32_MAX - n) {
		atomic_fetch_sub_explicit(&sys->slot_next, n, memory_order_relaxed);
		return -ENOMEM;
	}
	for (uint32_t i = start; i < start + n; i++) {
		if ((i & (SLOT_CHUNK - 1)) == 0 || i == start) {
			int rc = ensure_chunk(sys, i);
			if (rc < 0)
				return rc; /* the range is lost; the table is at its limit anyway */
		}
	}
	*first = start;
	return 0;
}

/* Moves up to `max` indices from the shared free list into `dst` under one lock. */
static uint32_t pop_global_free(actor_system_t *sys, uint32_t *dst, uint32_t max)
{
	uint32_t n = 0;
	pthread_mutex_lock(&sys->slot_lock);
	while (n < max && sys->slot_free_head != 0) {
		uint32_t head = sys->slot_free_head;
		sys->slot_free_head = actor__slot_at(sys, head)->free_next;
		sys->slot_free_len--;
		dst[n++] = head;
	}
	pthread_mutex_unlock(&sys->slot_lock);
	return n;
}

static int grow_local(struct actor_worker *w)
{
	if (w->free_len < w->free_cap)
		return 0;
	uint32_t cap = w->free_cap ? w->free_cap * 2 : 256;
	uint32_t *p = realloc(w->free_slots, cap * sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	w->free_slots = p;
	w->free_cap = cap;
	return 0;
}

/* A worker takes from its own cache (no atomics), refilling from the shared free list or with a
 * fresh range; other threads take from the shared free list or one fresh index. */
int actor__slot_alloc(actor_system_t *sys, struct actor_worker *w, uint32_t *idx)
{
	if (w == NULL) {
		if (pop_global_free(sys, idx, 1) == 1)
			return 0;
		return take_fresh(sys, 1, idx);
	}
	if (w->free_len == 0) {
		if (w->free_cap < SLOT_GRAB) {
			uint32_t *p = realloc(w->free_slots, SLOT_GRAB * 4 * sizeof(*p));
			if (p == NULL)
				return -ENOMEM;
			w->free_slots = p;
			w->free_cap = SLOT_GRAB * 4;
		}
		w->free_len = pop_global_free(sys, w->free_slots, SLOT_GRAB);
		if (w->free_len == 0) {
			uint32_t first;
			int rc = take_fresh(sys, SLOT_GRAB, &first);
			if (rc < 0)
				return rc;
			for (uint32_t i = SLOT_GRAB; i-- > 0;)
				w->free_slots[w->free_len++] = first + i;
		}
	}
	*idx = w->free_slots[--w->free_len];
	return 0;
}

/* Moves `n` indices to the shared free list under one lock. */
static void push_global_free(actor_system_t *sys, const uint32_t *src, uint32_t n)
{
	pthread_mutex_lock(&sys->slot_lock);
	for (uint32_t i = 0; i < n; i++) {
		actor__slot_at(sys, src[i])->free_next = sys->slot_free_head;
		sys->slot_free_head = src[i];
	}
	sys->slot_free_len += n;
	pthread_mutex_unlock(&sys->slot_lock);
}

/* Called once the slot's actor is reclaimed: no reader can reach the slot's old actor. */
void actor__slot_release(actor_system_t *sys, struct actor_worker *w, uint32_t idx)
{
	if (w == NULL || grow_local(w) < 0) {
		push_global_free(sys, &idx, 1);
		return;
	}
	w->free_slots[w->free_len++] = idx;
	if (w->free_len >= SLOT_CACHE_MAX) {
		/* Give half back so that spawns elsewhere reuse slots instead of growing the table.
		 */
		uint32_t keep = SLOT_CACHE_MAX / 2;
		push_global_free(sys, w->free_slots + keep, w->free_len - keep);
		w->free_len = keep;
	}
}

/* ---------------------------------------------------------------------------------------------
 * QSBR
 */

__attribute__((tls_model("initial-exec"))) _Thread_local unsigned actor__ext_stripe_tls;

/* This thread's first use: its stripe from a process-wide counter. */
unsigned actor__ext_stripe_first(void)
{
	static _Atomic unsigned next;
	actor__ext_stripe_tls =
	    atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % ACTOR_EXT_STRIPES +
	    1; /* relaxed: only distinctness matters */
	return actor__ext_stripe_tls - 1;
}

/* R4: true if no outside thread is in a section (each stripe's in-flight bits seen at zero,
 * seq_cst). */
static bool ext_idle(actor_system_t *sys)
{
	for (unsigned i = 0; i < ACTOR_EXT_STRIPES; i++) {
		if ((atomic_load(&sys->ext[i].active) & ACTOR_EXT_INFLIGHT) != 0)
			return false;
	}
	return true;
}

void actor__qsbr_quiescent(struct actor_worker *w)
{
	uint64_t e = atomic_load_explicit(&w->sys->epoch, memory_order_acquire);
	/* release: the accesses before this quiescent point happen before a reclaimer's acquire
	 * load of `qs` that sees the new value. Relaxed read of our own field. */
	if (atomic_load_explicit(&w->qs, memory_order_relaxed) != e)
		atomic_store_explicit(&w->qs, e, memory_order_release);
}

void actor__qsbr_offline(struct actor_worker *w)
{
	/* release: as in actor__qsbr_quiescent; offline counts as quiescent forever. */
	atomic_store_explicit(&w->qs, UINT64_MAX, memory_order_release);
}

void actor__qsbr_online(struct actor_worker *w)
{
	/* seq_cst store then seq_cst load: a reclaimer that saw us offline either finished before
	 * this store (and its frees are ordered before our lookups) or sees our epoch. */
	atomic_store(&w->qs, atomic_load(&w->sys->epoch));
	atomic_thread_fence(memory_order_seq_cst);
	actor__qsbr_quiescent(w);
}

/* Home worker. The actor's slot is already cleared (R3). */
void actor__retire(struct actor_worker *w, struct actor *a)
{
	a->retire_epoch = atomic_load(&w->sys->epoch);
	a->link.next = NULL;
	if (w->retired_tail != NULL)
		w->retired_tail->next = &a->link;
	else
		w->retired_head = &a->link;
	w->retired_tail = &a->link;
}

static uint64_t min_online_qs(actor_system_t *sys)
{
	uint64_t m = UINT64_MAX;
	for (unsigned i = 0; i < sys->nworkers; i++) {
		/* acquire: pairs with the release stores in quiescent/offline. */
		uint64_t q = atomic_load_explicit(&sys->workers[i].qs, memory_order_acquire);
		if (q < m)
			m = q;
	}
	return m;
}

#define link_actor(n) ((struct actor *)((char *)(n)-offsetof(struct actor, link)))

/* Home worker: frees the retired actors no reader can still reach. */
void actor__reclaim(struct actor_worker *w)
{
	actor_system_t *sys = w->sys;
	if (w->retired_head == NULL)
		return;
	uint64_t newest = link_actor(w->retired_tail)->retire_epoch;
	uint64_t e = atomic_load(&sys->epoch);
	if (e == newest) {
		/* Bump once for the whole batch retired at this epoch; losing the race to another
		 * worker's bump is as good. */
		atomic_compare_exchange_strong(&sys->epoch, &e, e + 1);
		e = atomic_load(&sys->epoch);
	}
	/* R4: seq_cst load of the external count after reading epoch `e`. */
	if (ext_idle(sys))
		w->ext_clear_epoch = e;
	uint64_t safe = min_online_qs(sys);
	if (w->ext_clear_epoch < safe)
		safe = w->ext_clear_epoch;

	while (w->retired_head != NULL) {
		struct actor *a = link_actor(w->retired_head);
		if (a->retire_epoch >= safe)
			break;
		w->retired_head = a->link.next;
		if (w->retired_head == NULL)
			w->retired_tail = NULL;
		actor__slot_release(sys, w, (uint32_t)a->ref.id);
		/* Drains what senders that raced the stop pushed, and frees it (actor.c). */
		sys->free_retired(w, a);
	}
}

/* Any thread. What a reclaimer other than the workers' (names.c) unlinked with a seq_cst store
 * before reading the epoch as `tag` (R3) may be freed once the epoch has moved past `tag`,
 * every online worker has been quiescent since (its `qs` is greater), and every stripe was
 * then seen with no outside section in flight (R4: a section begun later cannot find it). */
bool actor__qsbr_passed(actor_system_t *sys, uint64_t tag)
{
	uint64_t e = atomic_load(&sys->epoch);
	if (e == tag) {
		/* No worker can have seen a later epoch yet: move it on for the next try. Losing
		 * the race to another bump is as good. */
		atomic_compare_exchange_strong(&sys->epoch, &e, e + 1);
		return false;
	}
	/* seq_cst loads after the epoch read, as in actor__reclaim. */
	return ext_idle(sys) && min_online_qs(sys) > tag;
}
