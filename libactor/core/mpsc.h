/* mpsc.h: intrusive lock-free multi-producer single-consumer queue on Concurrency Kit atomics.
 *
 * Used for every actor's mailbox (nodes are messages) and every worker's remote inbox (nodes
 * are actors). It is Vyukov's intrusive MPSC queue with an embedded stub node, plus two flag
 * bits on the producer end, after the Pony runtime's message queue:
 *
 *   bit 0, EMPTY:  set by the consumer (mpsc_mark_empty) when it found the queue empty and goes
 *                  idle. The next push clears it (the exchange stores a bare pointer) and is
 *                  told "was empty": exactly that one producer must wake or schedule the
 *                  consumer. Every other push sees the bit clear and does nothing more.
 *   bit 1, CLOSED: set with EMPTY by the consumer (mpsc_close) when the owner is gone. A push
 *                  that sees it must not schedule anything; its node stays queued and the
 *                  owner's reclamation drains it.
 *
 * Invariants (who touches what):
 *   - `head` is written only by ck_pr_fas_ptr (producers, any thread) and ck_pr_cas_ptr (the
 *     consumer, to set flags). Every producer links its predecessor's `next` after the
 *     exchange; until it does, the queue looks empty from the consumer side ("in progress").
 *   - `tail` and the stub's position are the consumer's alone.
 *   - A node is returned by mpsc_pop only once its `next` is set, so no producer writes to a
 *     node after the consumer has it: the consumer may free it or reuse its link at once.
 *
 * Memory order: a push's fence_store before linking pairs with the fence_load after the
 * consumer reads `next`, so everything the producer wrote before pushing is visible to the
 * consumer once it pops the node. Both fences are no-ops on x86-64 (TSO), real on weaker CPUs.
 */
#ifndef ACTOR_MPSC_H
#define ACTOR_MPSC_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/tsan.h"

struct actor__mpsc_node {
	struct actor__mpsc_node *next;
};

struct actor__mpsc {
	struct actor__mpsc_node *head; /* producer end, with flag bits; any thread */
	struct actor__mpsc_node *tail; /* consumer end; consumer only */
	struct actor__mpsc_node stub;
};

#define MPSC_EMPTY ((uintptr_t)1)
#define MPSC_CLOSED ((uintptr_t)2)
#define MPSC_FLAGS (MPSC_EMPTY | MPSC_CLOSED)

/* Starts empty-marked: the first push reports "was empty". Not thread-safe (initialisation). */
static inline void actor__mpsc_init(struct actor__mpsc *q)
{
	q->stub.next = NULL;
	q->tail = &q->stub;
	q->head = (struct actor__mpsc_node *)((uintptr_t)&q->stub | MPSC_EMPTY);
}

/* Any thread. Pushes the chain first..last, linked through `next` by the caller (each node
 * released for TSan as it was linked, mpsc_chain_link), in one exchange: the consumer sees the
 * nodes in order. Returns the flag bits the push found: MPSC_EMPTY means this caller must
 * schedule the consumer; MPSC_EMPTY|MPSC_CLOSED means the consumer is gone and must not be
 * scheduled. */
static inline uintptr_t actor__mpsc_push_chain(struct actor__mpsc *q,
                                               struct actor__mpsc_node *first,
                                               struct actor__mpsc_node *last)
{
	ck_pr_store_ptr(&last->next, NULL);
	ACTOR_TSAN_RELEASE(last); /* the happens-before edge TSan cannot see through ck_pr asm */
	/* The exchange is a full barrier on x86; fence_store_atomic orders `last->next = NULL`,
	 * the chain's links and the caller's writes to the nodes before it on weaker CPUs. */
	ck_pr_fence_store_atomic();
	struct actor__mpsc_node *prev = ck_pr_fas_ptr(&q->head, last);
	uintptr_t flags = (uintptr_t)prev & MPSC_FLAGS;
	prev = (struct actor__mpsc_node *)((uintptr_t)prev & ~MPSC_FLAGS);
	/* The exchange read the consumer's empty-mark: this caller now holds the consumer (an
	 * actor may change workers, sched.c); its last turn happens before what we do next.
	 * Concurrency Kit's exchange is not an acquire on every CPU (a plain swap on arm64):
	 * fence_atomic_load pairs with the fence before the CAS in mpsc_mark_empty. */
	if (flags & MPSC_EMPTY) {
		ck_pr_fence_atomic_load();
		ACTOR_TSAN_ACQUIRE(q); /* pairs with the release in mpsc_mark_empty */
	}
	/* release: pairs with the fence_load after the consumer's load of `next` in mpsc_pop. */
	ck_pr_fence_store();
	ck_pr_store_ptr(&prev->next, first);
	return flags;
}

/* Any thread: pushes one node (see mpsc_push_chain). */
static inline uintptr_t actor__mpsc_push(struct actor__mpsc *q, struct actor__mpsc_node *n)
{
	return actor__mpsc_push_chain(q, n, n);
}

/* Links `n` behind `last` in a chain that is not yet pushed (the caller's alone). */
static inline void actor__mpsc_chain_link(struct actor__mpsc_node *last, struct actor__mpsc_node *n)
{
	last->next = n;
	ACTOR_TSAN_RELEASE(last); /* pairs with the acquire in mpsc_pop, as for a pushed node */
}

/* Consumer only. Reads the successor of `n` with acquire semantics. */
static inline struct actor__mpsc_node *mpsc_load_next(struct actor__mpsc_node *n)
{
	struct actor__mpsc_node *next = ck_pr_load_ptr(&n->next);
	ck_pr_fence_load(); /* acquire: pairs with the fence_store in mpsc_push */
	return next;
}

/* Consumer only. Returns the oldest node, or NULL when the queue is empty or a push is in
 * progress (the caller cannot tell which; mpsc_mark_empty can). */
static inline struct actor__mpsc_node *actor__mpsc_pop(struct actor__mpsc *q)
{
	struct actor__mpsc_node *tail = q->tail;
	struct actor__mpsc_node *next = mpsc_load_next(tail);

	if (tail == &q->stub) {
		if (next == NULL)
			return NULL;
		q->tail = next;
		tail = next;
		next = mpsc_load_next(next);
	}
	if (next != NULL) {
		q->tail = next;
		ACTOR_TSAN_ACQUIRE(tail);
		return tail;
	}
	/* `tail` is the last linked node. If it is also the producer end, re-queue the stub behind
	 * it so that `tail` can be handed out; otherwise a push is in progress. */
	struct actor__mpsc_node *head =
	    (struct actor__mpsc_node *)((uintptr_t)ck_pr_load_ptr(&q->head) & ~MPSC_FLAGS);
	if (tail != head)
		return NULL;
	actor__mpsc_push(q, &q->stub);
	next = mpsc_load_next(tail);
	if (next != NULL) {
		q->tail = next;
		ACTOR_TSAN_ACQUIRE(tail);
		return tail;
	}
	return NULL;
}

/* Consumer only. True when the queue holds nothing, not even a push in progress. */
static inline bool actor__mpsc_is_empty(struct actor__mpsc *q)
{
	if (q->tail != &q->stub || mpsc_load_next(&q->stub) != NULL)
		return false;
	uintptr_t head = (uintptr_t)ck_pr_load_ptr(&q->head) & ~MPSC_FLAGS;
	return head == (uintptr_t)&q->stub;
}

/* Consumer only. Marks the queue empty if it is; then the next push reports MPSC_EMPTY and the
 * consumer must not touch the queue until it is scheduled again. False if anything is queued
 * or a push is in progress: the consumer must come back later. */
static inline bool actor__mpsc_mark_empty(struct actor__mpsc *q)
{
	if (q->tail != &q->stub || mpsc_load_next(&q->stub) != NULL)
		return false;
	void *marked = (void *)((uintptr_t)&q->stub | MPSC_EMPTY);
	if (ck_pr_load_ptr(&q->head) == marked)
		return true;
	/* The consumer's work so far happens before the turn of whoever the next push hands it
	 * to: release, pairing with the fence_atomic_load after the exchange in mpsc_push and
	 * after the CAS in mpsc_claim_idle (a no-op on x86, whose CAS is a full barrier; not on
	 * arm64, where Concurrency Kit's CAS has no ordering of its own). */
	ck_pr_fence_store_atomic();
	ACTOR_TSAN_RELEASE(q);
	/* A later push's exchange either precedes this (we fail) or sees the bit. */
	return ck_pr_cas_ptr(&q->head, &q->stub, marked);
}

/* Consumer only. Closes an empty queue, from either the running state (`was_marked` false) or
 * the empty-marked state (true). False if a push got there first: the consumer has been (or is
 * being) scheduled and must close it on that turn. */
static inline bool actor__mpsc_close(struct actor__mpsc *q, bool was_marked)
{
	if (q->tail != &q->stub || mpsc_load_next(&q->stub) != NULL)
		return false;
	void *from = (void *)((uintptr_t)&q->stub | (was_marked ? MPSC_EMPTY : 0));
	void *to = (void *)((uintptr_t)&q->stub | MPSC_EMPTY | MPSC_CLOSED);
	return ck_pr_cas_ptr(&q->head, from, to);
}

/* Any thread. Takes an idle consumer as the producer told "was empty" would, without pushing:
 * clears the empty-mark of an empty-marked queue, so that the caller holds the consumer alone
 * and must schedule it. False if the queue is not idle (or is closed). Touches only `head`,
 * never the consumer's fields: an empty-marked queue has its stub at the tail. */
static inline bool actor__mpsc_claim_idle(struct actor__mpsc *q)
{
	void *from = (void *)((uintptr_t)&q->stub | MPSC_EMPTY);
	if (!ck_pr_cas_ptr(&q->head, from, &q->stub))
		return false;
	ck_pr_fence_atomic_load(); /* acquire: pairs with the fence in mpsc_mark_empty */
	ACTOR_TSAN_ACQUIRE(q);     /* pairs with the release in mpsc_mark_empty */
	return true;
}

#endif /* ACTOR_MPSC_H */
