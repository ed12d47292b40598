/* internal.h: the runtime's shared structures and the functions its files share.
 *
 * Ownership at a glance (the rule every field below follows):
 *   - An actor's fields other than its mailbox producer end are touched only by its home worker,
 *     except `home`, `ref`, `name` and `fn`-independent immutable fields set before publication.
 *   - A worker's fields are its own thread's, except those marked "any thread".
 *   - Actor memory is reclaimed with quiescent-state-based reclamation (QSBR, refs.c): a worker
 *     is quiescent between loop turns, so the send path pays nothing for safe references.
 */
#ifndef ACTOR_INTERNAL_H
#define ACTOR_INTERNAL_H

#define ACTOR_BUILDING 1

#include <ck_cc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "alloc.h"
#include "mpsc.h"

/* Tunables. */
#define ACTOR_BATCH_DEFAULT 64   /* bench/pingpong + tests/test_sched fairness: see bench/README */
#define ACTOR_SPIN_US_DEFAULT 50 /* bench/pingpong: see bench/README.md "Spin before park" */
#define ACTOR_RUN_PER_TURN 64    /* actors run between two inbox and QSBR checks */
#define SLOT_CHUNK_BITS 16
#define SLOT_CHUNK (1u << SLOT_CHUNK_BITS)
#define SLOT_CHUNKS (1u << 16) /* 2^32 slots at most */
#define SLOT_CACHE_MAX 4096    /* free slots a worker keeps before giving half back */
#define SLOT_GRAB 64           /* fresh slots a worker takes from the system at once */

/* Internal message types: handled by the runtime, never shown to behaviours. */
#define MSG_MONITOR (ACTOR_MSG_SYSTEM + 0x100) /* payload: the watcher's actor_ref_t */
#define MSG_STOP (ACTOR_MSG_SYSTEM + 0x101)

enum actor_flags {
	ACTOR_EXITING = 1, /* actor_exit called in the current turn */
	ACTOR_DEAD = 2,    /* stopped: slot cleared, waiting to close its mailbox and retire */
};

struct actor__monitor {
	struct actor__monitor *next;
	actor_ref_t watcher;
};

struct actor {
	struct actor__mpsc mbox;      /* producer end: any thread; consumer end: home worker */
	struct actor__mpsc_node link; /* run queue, remote inbox, or retired list: one at a time */
	actor_behavior_fn *fn;
	void *state;
	actor_ref_t ref;           /* immutable */
	struct actor_worker *home; /* immutable */
	const char *name;          /* immutable */
	void (*destroy)(void *state);
	union {
		struct actor__monitor *monitors; /* while alive */
		uint64_t retire_epoch;           /* once retired */
	};
	uint32_t flags;
	int32_t reason;
};

/* What a behaviour's ctx points at: one per worker, describing the current turn. */
struct actor_ctx {
	struct actor *actor;
	actor_msg_t *msg;
	bool kept; /* the current message's ownership has left the runtime */
	struct actor_worker *worker;
};

/* Counters a worker writes with relaxed stores and anyone reads with relaxed loads. */
struct actor__wstats {
	_Atomic uint64_t processed, parks, wakeups, spawned, stopped, sent, dead_letters, runq;
};

struct actor_worker {
	/* Any thread: the remote inbox of actors made runnable elsewhere. Own cache line, since
	 * every remote wake writes it. */
	CK_CC_CACHELINE struct actor__mpsc inbox;
	/* Any thread: resident actor count (spawners add, the home worker subtracts). */
	CK_CC_CACHELINE _Atomic uint64_t resident;
	/* Any thread: 1 once someone woke the parked worker; the futex word. */
	_Atomic uint32_t wake;
	/* QSBR: the epoch seen at the last quiescent point, UINT64_MAX while offline. Written by
	 * the worker, read by every reclaimer. */
	_Atomic uint64_t qs;

	CK_CC_CACHELINE struct actor_system *sys;
	unsigned index;
	pthread_t thread;
	bool started;
	/* Owner only below. */
	struct actor__mpsc_node *runq_head, *runq_tail; /* local FIFO of runnable actors */
	uint64_t runq_len;
	struct actor__mpsc_node *retired_head, *retired_tail;
	uint64_t ext_clear_epoch; /* epochs below this have no external reader left */
	uint32_t *free_slots;     /* slot indices ready for reuse */
	uint32_t free_len, free_cap;
	unsigned rr_next; /* round-robin cursor for spawns from this worker */
	struct actor_ctx ctx;
	struct actor__wstats st;
};

struct actor__slot {
	_Atomic uint32_t gen;        /* bumped when the actor stops; matches ref.id >> 32 */
	uint32_t free_next;          /* global free list link (under slot_lock) */
	struct actor *_Atomic actor; /* NULL once stopped */
};

struct actor_system {
	/* Read-mostly. */
	unsigned nworkers;
	unsigned batch;
	int spin_us;
	bool pin;
	actor_dead_letter_fn *dead_letter;
	void *dead_letter_arg;
	struct actor_worker *workers;

	/* Reference slots: a two-level table that never moves. Chunks are published by CAS. */
	struct actor__slot *_Atomic *chunks;
	_Atomic uint32_t slot_next; /* next never-used index */
	pthread_mutex_t slot_lock;  /* guards the global free list: external spawns and spill */
	uint32_t slot_free_head;    /* 0 = empty */
	uint32_t slot_free_len;

	/* QSBR epoch and the count of sends/lookups in flight from non-worker threads. */
	CK_CC_CACHELINE _Atomic uint64_t epoch;
	CK_CC_CACHELINE _Atomic uint64_t ext_active;
	/* Counters for operations by threads outside the pool. */
	CK_CC_CACHELINE _Atomic uint64_t ext_sent, ext_spawned;
	_Atomic unsigned ext_rr;

	/* Lifecycle. */
	CK_CC_CACHELINE _Atomic int shutdown; /* 1 once shutdown is requested */
	_Atomic uint32_t run_wake;            /* futex word for actor_system_run */
	_Atomic int running;                  /* actor_system_run entered */
	_Atomic int finished;                 /* workers joined */
};

/* The worker running on this thread, or NULL outside every pool. */
extern
    __attribute__((tls_model("initial-exec"))) _Thread_local struct actor_worker *actor__tls_worker;

static inline struct actor_worker *actor__self_worker(const actor_system_t *sys)
{
	struct actor_worker *w = actor__tls_worker;
	return (w != NULL && w->sys == sys) ? w : NULL;
}

static inline void actor__stat_add(_Atomic uint64_t *c, uint64_t n)
{
	/* relaxed: only this worker writes the counter; readers want a recent value, no order. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static inline size_t actor__msg_bytes(const actor_msg_t *m)
{
	return sizeof(*m) + m->size;
}

/* refs.c: slots and QSBR. */
int actor__slots_init(actor_system_t *sys);
void actor__slots_fini(actor_system_t *sys);
int actor__slot_alloc(actor_system_t *sys, struct actor_worker *w, uint32_t *idx);
void actor__slot_release(actor_system_t *sys, struct actor_worker *w, uint32_t idx);
struct actor__slot *actor__slot_at(actor_system_t *sys, uint32_t idx);
struct actor *actor__lookup(actor_system_t *sys, actor_ref_t ref);
void actor__ext_enter(actor_system_t *sys);
void actor__ext_leave(actor_system_t *sys);
void actor__qsbr_quiescent(struct actor_worker *w);
void actor__qsbr_offline(struct actor_worker *w);
void actor__qsbr_online(struct actor_worker *w);
void actor__retire(struct actor_worker *w, struct actor *a);
void actor__reclaim(struct actor_worker *w);

/* actor.c: lifecycle on the home worker. */
void actor__run(struct actor_worker *w, struct actor *a);
void actor__kill_now(struct actor_worker *w, struct actor *a, int reason);
void actor__free_actor(struct actor *a);
void actor__drain_dead(struct actor_worker *w, struct actor *a);
int actor__deliver(actor_system_t *sys, struct actor_worker *w, struct actor *a, actor_msg_t *msg);
int actor__send_internal(actor_system_t *sys, actor_ref_t to, actor_ref_t from, uint32_t type,
                         const void *data, size_t len);

/* sched.c: workers. */
int actor__workers_start(actor_system_t *sys);
void actor__workers_join(actor_system_t *sys);
void actor__schedule(struct actor_worker *self, struct actor *a);
void actor__runq_push_local(struct actor_worker *w, struct actor *a);
void actor__wake_all(actor_system_t *sys);
void actor__note_stopped(struct actor_worker *w);
uint64_t actor__resident_total(const actor_system_t *sys);

/* placement.c */
int actor__place(actor_system_t *sys, const actor_spawn_opts_t *opts, struct actor_worker *self,
                 unsigned *out);

/* park.c: block a worker until woken (futex), and wake it. */
struct timespec;
void actor__park(_Atomic uint32_t *word);
void actor__park_timed(_Atomic uint32_t *word, const struct timespec *timeout);
void actor__unpark(_Atomic uint32_t *word);

#endif /* ACTOR_INTERNAL_H */
