/* internal.h: the runtime's shared structures and the functions its files share.
 *
 * Ownership at a glance (the rule every field below follows):
 *   - An actor's fields other than its mailbox producer end are touched only by whoever holds
 *     the actor: its home worker while it is queued or running, or, while it is idle (mailbox
 *     empty-marked), the one thread whose push finds the mark and so schedules it (sched.c,
 *     "Moving actors"). `ref`, `side`, `counted` and `pinned` are immutable, set before
 *     publication; `home` is also read by any thread (actor_info, the shutdown scan), hence
 *     atomic.
 *   - A worker's fields are its own thread's, except those marked "any thread".
 *   - Actor memory is reclaimed with quiescent-state-based reclamation (QSBR, refs.c): a worker
 *     is quiescent between loop turns, so the send path pays nothing for safe references.
 */
#ifndef ACTOR_INTERNAL_H
#define ACTOR_INTERNAL_H

#ifndef ACTOR_BUILDING /* set for every file of the library (Makefile.am): ACTOR_API exports */
#define ACTOR_BUILDING 1
#endif

#include <ck_cc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "actor.h"
#include "core/alloc.h"
#include "core/mpsc.h"
#include "core/service.h"
#include "core/table.h"

/* Tunables. */
#define ACTOR_BATCH_DEFAULT 64   /* bench/pingpong + tests/test_sched fairness: see bench/README */
#define ACTOR_SPIN_US_DEFAULT 50 /* bench/pingpong: see bench/README.md "Spin before park" */
#define ACTOR_RUN_PER_TURN 64    /* actors run between two inbox and QSBR checks */
#define SLOT_CHUNK_BITS 16
#define SLOT_CHUNK (1u << SLOT_CHUNK_BITS)
#define SLOT_CHUNKS (1u << 16) /* 2^32 slots at most */
#define SLOT_CACHE_MAX 4096    /* free slots a worker keeps before giving half back */
#define SLOT_GRAB 64           /* fresh slots a worker takes from the system at once */
#define ACTOR_FLOW_SEEN 16     /* refusals a worker remembers (flow.c): a few receivers at once */

/* Internal message types: handled by the runtime, never shown to behaviours. */
#define MSG_MONITOR (ACTOR_MSG_SYSTEM + 0x100) /* payload: the watcher's actor_ref_t */
#define MSG_STOP (ACTOR_MSG_SYSTEM + 0x101)
#define MSG_START (ACTOR_MSG_SYSTEM + 0x102) /* payload: the spawn option's start function */
/* Links and monitors (actor.c, "Links"): requests to an actor's holder, and exit signals. */
#define MSG_LINK (ACTOR_MSG_SYSTEM + 0x103)        /* payload: the requester's actor_ref_t */
#define MSG_UNLINK (ACTOR_MSG_SYSTEM + 0x104)      /* payload: the requester's actor_ref_t */
#define MSG_EXIT_SIGNAL (ACTOR_MSG_SYSTEM + 0x105) /* payload: actor_exit_t (who stopped, why) */
#define MSG_DEMONITOR (ACTOR_MSG_SYSTEM + 0x106)   /* payload: the watcher's actor_ref_t */
/* Block 0x16: the request service's (services/request/). MSG_REQUEST annotates the user's
 * message pushed right behind it (actor__send_pair); MSG_ANSWER is a reply on its way to the
 * requester, which the service turns into ACTOR_MSG_REPLY or drops. */
#define MSG_REQUEST (ACTOR_MSG_SYSTEM + 0x160) /* payload: struct actor__req_ctl (request.c) */
#define MSG_ANSWER (ACTOR_MSG_SYSTEM + 0x161)  /* payload: actor_reply_t, then the bytes */

/* The actor holds a registered name now (names.c): its holder sets ACTOR_NAMED, so that the stop
 * releases the name; dead-lettered, it releases the name itself. No payload. 0x109-0x10b are
 * kept for the registry. */
#define MSG_NAMED (ACTOR_MSG_SYSTEM + 0x108)
/* A refused sender's nudge to a bounded receiver that may have gone idle before it saw the
 * sender's registration (flow.c, W1): the receiver's turn ends with the room check. */
#define MSG_FLOW (ACTOR_MSG_SYSTEM + 0x10c)

enum actor_flags {
	ACTOR_EXITING = 1,     /* actor_exit called in the current turn */
	ACTOR_DEAD = 2,        /* stopped: slot cleared, waiting to close its mailbox and retire */
	ACTOR_BOUND = 4,       /* holds a per-worker resource (a timer it set): never moves */
	ACTOR_NAMED = 8,       /* has held a registered name: the stop releases it (names.c) */
	ACTOR_TRAP_EXITS = 16, /* actor_trap_exits: exit signals arrive as ACTOR_MSG_EXIT */
	ACTOR_TRAP_STOP = 32,  /* actor__trap_stop: actor_stop arrives as MSG_STOP (supervisors) */
	/* The holder's copy of the immutable `counted`, set at spawn and never cleared: a turn
	 * tests it with ACTOR_DEAD in one instruction, so the turns of actors without a count
	 * test nothing more (actor.c, "One turn"). Senders read `counted`, never `flags`. */
	ACTOR_COUNTED = 64,
};

/* A small array of references, grown by doubling. */
struct actor__refs {
	actor_ref_t *v;
	uint32_t len, cap;
};

/* What an actor that uses links or monitors keeps beside its struct: allocated at its first
 * link or monitor, freed at its stop. Holder only, like the actor's other fields: written in
 * the actor's own turns (its behaviour's calls, the control messages MSG_MONITOR, MSG_LINK,
 * MSG_UNLINK, MSG_DEMONITOR and MSG_EXIT_SIGNAL), by its stop, and by its spawner before the
 * actor is published. So it moves with the actor and needs no synchronisation. */
struct actor__extra {
	struct actor__refs monitors; /* watchers, one entry per monitor (a watcher may repeat) */
	struct actor__refs links;    /* linked partners, each once */
};

/* Flow control of a bounded mailbox (flow.c has the protocol and its invariants W1-W3). */
struct actor__waiter { /* a refused sender's registration */
	struct actor__waiter *next;
	actor_ref_t sender;
	uint64_t round; /* the receiver's `round` the sender read before pushing this */
};

struct actor__flow {
	/* User messages accepted and not yet handed to the behaviour. Senders (any thread) add
	 * one with a CAS (while it is below the capacity, if there is one); the holder takes one
	 * off per pop. seq_cst: flow.c, W1. */
	_Atomic uint32_t depth;
	/* When `depth` last rose from 0 (a coarse time): the sender whose CAS takes it from 0
	 * stores it just before that CAS (relaxed; the CAS releases it to actor_info's acquire
	 * load of depth: flow.c, Age). Senders only; read by actor_info. */
	_Atomic uint64_t since;
	/* Notification rounds done: the holder adds one after taking `waiters` and before sending
	 * the round's notices; refused senders read it (flow.c, W2). */
	_Atomic uint64_t round;
	/* Registrations of refused senders, a stack: senders push with a CAS, the holder takes it
	 * whole with an exchange (never one node: no ABA). seq_cst: flow.c, W1. */
	struct actor__waiter *_Atomic waiters;
	/* The holder's alone; they travel with the actor as its other fields do. */
	struct actor__waiter *pending; /* taken, to notify once there is room */
	uint64_t *notified;            /* the senders the last round notified, sorted */
	uint32_t notified_len, notified_cap;
};

/* What only some actors need, allocated at spawn when the options ask for a name, a destroy
 * callback or a capacity, or the system counts every mailbox (actor_config_t.count_depth).
 * The fields before `flow` are immutable once the actor is published: any thread holding the
 * actor (QSBR, refs.c) may read them, and the block lives until the actor's memory is
 * reclaimed (actor__free_retired). */
struct actor__side {
	const char *name;
	void (*destroy)(void *state);
	uint32_t capacity;       /* 0: unbounded (counted only) */
	uint32_t low;            /* room again at or below this many (flow.c) */
	struct actor__flow flow; /* only if the actor is `counted`: not allocated otherwise */
};

/* The bytes of a side block: a name or destroy callback alone needs no flow control. */
static inline size_t actor__side_size(bool counted)
{
	return counted ? sizeof(struct actor__side) : offsetof(struct actor__side, flow);
}

struct actor {
	struct actor__mpsc mbox;      /* producer end: any thread; consumer end: home worker */
	struct actor__mpsc_node link; /* run queue, remote inbox, or retired list: one at a time */
	/* Beside the mailbox's producer end, which a waking sender has just written: the fields
	 * that sender reads to decide on a move (sched.c, "Moving actors"). Small, so that an idle
	 * actor stays within 96 bytes (bench/spawn_idle). The holder's, except as noted. */
	uint8_t flags;
	bool pinned; /* immutable: ACTOR_PLACE_FIXED, opts->stay or cfg->no_move */
	/* Services holding something of the actor's (their actor_bits; service.h): they hear of
	 * its stop, and it never moves. */
	uint8_t svc_bits;
	/* Immutable: the mailbox's depth is counted (side->flow.depth): a capacity, or the system
	 * counts them all. In what was padding, beside the fields a sender reads anyway, so that
	 * a send to a plain actor touches no other line of it. The holder tests its copy in
	 * `flags` (ACTOR_COUNTED) instead. */
	bool counted;
	/* The home worker's index. Written only by the actor's holder as it moves the actor
	 * (sched.c); relaxed loads elsewhere: a reader that is not the holder gets a hint
	 * (actor_info; a sender asking whether it lives on the sender's own worker, which only
	 * that worker can make true, but for a shared actor whose chain the outbox then finds)
	 * or re-reads it after claiming the actor (the shutdown scan). */
	_Atomic uint16_t home;
	uint16_t waker;    /* index + 1 of the worker whose sends last woke it remotely; 0: none */
	uint16_t streak;   /* consecutive remote wake-ups from `waker` */
	uint16_t cooldown; /* remote wake-ups to ignore after a move */
	int32_t reason;
	actor_behavior_fn *fn;
	void *state;
	actor_ref_t ref;          /* immutable */
	struct actor__side *side; /* immutable pointer; NULL for a plain actor */
	union {
		struct actor__extra *extra; /* while alive: links and monitors, or NULL */
		uint64_t retire_epoch;      /* once retired */
	};
};

_Static_assert(sizeof(struct actor) <= 96, "an idle actor fits jemalloc's 96-byte class");
_Static_assert(ACTOR_WORKERS_MAX < UINT16_MAX, "a worker index fits `home` and `waker`");

/* The spawn option `name` (immutable; NULL if none). Every reader outside actor_spawn goes
 * through here, so that where the name lives can change in one place. */
static inline const char *actor__name(const struct actor *a)
{
	return a->side != NULL ? a->side->name : NULL;
}

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
	_Atomic uint64_t conns, accepts, accept_backoffs, read_throttles, timers, closes_reset;
	_Atomic uint64_t migrations, shared, contended;
	_Atomic uint64_t yielded; /* any thread: atomic_fetch_add (sched.c, actor__schedule) */
	_Atomic uint64_t jobs, jobs_dropped;
	_Atomic uint64_t files, file_ops, file_ops_dropped;
	_Atomic uint64_t closes_unacked;
	_Atomic uint64_t resident_scans; /* shutdown's scans for idle residents (sched.c); tests */
	_Atomic uint64_t replies_dropped;
};

/* A job for a worker's own thread, posted from any thread (actor__worker_post). */
struct actor__cmd {
	struct actor__mpsc_node link;
	void (*fn)(struct actor_worker *w, struct actor__cmd *cmd);
};

/* Messages a behaviour sent to an actor living on another worker, not yet pushed: one chain
 * per receiver, pushed with one exchange (sched.c, "Outbox"). */
#define ACTOR_OUTBOX_SLOTS 8  /* receivers at once */
#define ACTOR_OUTBOX_CHAIN 16 /* messages per push, as Seastar batches its cross-core queues */
#define ACTOR_TALK_SLOTS 8    /* actors remembered in conversation on a worker (sched.c, Sharing) */
struct actor__outbox {
	struct actor *to;
	struct actor__mpsc_node *first, *last;
	unsigned len;
};

struct actor__reactor;
struct actor__reactor_ops;

struct actor_worker {
	/* Any thread: the remote inbox of actors made runnable elsewhere. Own cache line, since
	 * every remote wake writes it. */
	CK_CC_CACHELINE struct actor__mpsc inbox;
	/* Any thread: jobs for this worker's thread (listeners, I/O cleanup). */
	struct actor__mpsc cmdq;
	/* Any thread: resident actor count (spawners add, the home worker subtracts, a move takes
	 * one from the old home to the new, a worker sharing with this one reserves it with one
	 * while it does). */
	CK_CC_CACHELINE _Atomic uint64_t resident;
	/* Any thread: 1 once someone woke the parked worker; the futex word. */
	_Atomic uint32_t wake;
	/* Written by the worker as it runs out of work (1) or finds some (0); busy workers read
	 * it to hand actors over (sched.c, "Sharing"). Relaxed: a hint, never a guarantee. */
	_Atomic uint32_t idle;
	/* Set by the worker while its CPU is contended (sched.c, spin: another thread wants it):
	 * an actor woken elsewhere moves off it (sched.c, "Yielding a contended CPU"). Read
	 * relaxed by wakers: a hint. */
	_Atomic uint32_t yielding;
	/* Set by the worker as it leaves its loop at shutdown (sched.c, leave and share). */
	_Atomic uint32_t gone;
	/* Any thread: writing it wakes the worker's reactor wait (see sched.c). */
	int evfd;
	/* Start-up: 0 while the worker creates its reactor, then 1 or a negative errno. */
	_Atomic int ready;
	/* QSBR: the epoch seen at the last quiescent point, UINT64_MAX while offline. Written by
	 * the worker, read by every reclaimer. */
	_Atomic uint64_t qs;

	/* Behaviour calls (actor__call_begin/_end): `calls` is odd while a behaviour (or a start
	 * hook) runs, `call_ref` the id of the actor whose call it is. Written by the worker only,
	 * twice a call, with plain stores (release, no read-modify-write); read by the system's
	 * watchdog thread a few times per limit (watchdog.c) and by a crash report on this
	 * thread (crash.c). A line of their own, so that the watchdog's reads disturb nothing
	 * else. */
	CK_CC_CACHELINE _Atomic uint64_t calls;
	_Atomic uint64_t call_ref;

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
	unsigned rr_next;       /* round-robin cursor for spawns from this worker */
	bool stopping;          /* the system is shutting down (as of this loop turn) */
	uint64_t no_spin_until; /* the CPU is contended: park without spinning until then */
	uint64_t no_spin_ns;    /* the length of that hold-off (sched.c, spin) */
	uint64_t suspect_ns, suspect_switches; /* the last slow spin round (sched.c, spin) */
	struct actor_ctx ctx;
	struct actor__outbox outbox[ACTOR_OUTBOX_SLOTS];
	unsigned outbox_len;
	/* Conversations here (sched.c, "Sharing"): the actors at both ends of the latest sends
	 * between two actors of this worker, newest last. Compared, never dereferenced, so a
	 * stale entry costs nothing but one misjudged hand-over. */
	struct actor *talk[ACTOR_TALK_SLOTS];
	struct actor *talk_from, *talk_to; /* the latest such send's ends */
	unsigned talk_next;
	struct actor__msg_cache_slot msg_cache;
	/* I/O and services, owner only (the reactor's wake excepted). */
	const struct actor__reactor_ops *rops; /* the backend to create; then reactor->ops */
	struct actor__reactor *reactor;
	void *svc[ACTOR_SERVICES_MAX]; /* each service's state (service.h) */
	uint64_t drain_deadline_ns; /* shutting down: when the services' draining ends; 0: unset */
	/* The coarse monotonic clock at the top of this loop turn: a send from this worker that
	 * finds a counted mailbox without user messages stamps it with this (flow.c, Age). One
	 * cheap read per turn, none per message. */
	uint64_t turn_ns;
	/* Refused sends of actors running here: which receiver each sender last registered with,
	 * at which round (flow.c, W2). A cache: a miss costs a registration, never a notice. */
	struct actor__flow_seen {
		uint64_t sender, receiver, round;
	} flow_seen[ACTOR_FLOW_SEEN];
	struct actor__wstats st;
	/* A busy sender outside the pool needs the CPU until then (sched.c, feeder_busy). Last,
	 * so that the fields the loop reads every turn keep their cache lines. */
	uint64_t feeder_until;
	/* Moving to a busy sender's CPU (feeder.c, "Following it"). */
	struct actor__follow {
		uint64_t next;  /* the loop's next check, on the coarse clock */
		uint64_t until; /* on the feeder's CPU until then; 0: not moved */
		uint64_t at;    /* the last check that read the run delay; 0: none */
		int64_t wait;   /* the run delay it read */
		int fd;         /* /proc/thread-self/schedstat; -1 not open yet, -2 none */
		cpu_set_t mask; /* the affinity before the move */
	} follow;
};

/* One stripe of the state of threads outside the pool (refs.c, "Outside threads"). Each such
 * thread keeps to one stripe, and threads are spread over the stripes, so an outside sender
 * writes a cache line no other sender writes (until there are more senders than stripes). */
#define ACTOR_EXT_STRIPES 64
struct actor__ext {
	/* Its threads' lookups in flight (the low ACTOR_EXT_INFLIGHT_BITS), and above them the
	 * messages they sent: a send's leave takes its section out and counts the message in with
	 * one read-modify-write (refs.c, actor__ext_leave_sent). */
	CK_CC_CACHELINE _Atomic uint64_t active;
	_Atomic uint64_t spawned; /* a counter; relaxed */
	_Atomic unsigned rr;      /* round-robin cursor for spawns */
};
/* Sections in flight on one stripe at once: each thread in a section holds one, and stripes
 * are handed out to threads in turn, so 65,535 at once on one stripe is out of reach; the
 * count above wraps after 2^48 messages (over three months at 30 million a second from one
 * stripe). */
#define ACTOR_EXT_INFLIGHT_BITS 16
#define ACTOR_EXT_INFLIGHT ((UINT64_C(1) << ACTOR_EXT_INFLIGHT_BITS) - 1)

struct actor__slot {
	_Atomic uint32_t gen;        /* bumped when the actor stops; matches ref.id >> 32 */
	uint32_t free_next;          /* global free list link (under slot_lock) */
	struct actor *_Atomic actor; /* NULL once stopped */
};

struct actor_system {
	/* Read-mostly. */
	unsigned nworkers;
	unsigned ncpus; /* CPUs the creating thread may run on (sched_getaffinity); 0: unknown */
	unsigned batch;
	int spin_us;
	int shutdown_drain_ms; /* -1: none */
	bool pin;
	bool no_move;     /* every actor is pinned */
	bool count_depth; /* every actor's mailbox depth is counted */
	actor_dead_letter_fn *dead_letter;
	void *dead_letter_arg;
	struct actor_worker *workers;
	const struct actor__reactor_ops *rops;
	bool reactor_fallback; /* "auto": a worker whose io_uring fails uses epoll */
	int uring_level;       /* enum actor__uring_level: ACTOR_IO_URING_FEATURES (reactor.c) */
	/* The services every worker hosts (services.c, through system.c), NULL-terminated, and
	 * which of them owns each system message block: its index + 1, or 0 (service.h). */
	const struct actor__service_ops *const *svcs;
	uint8_t svc_of_block[256];
	/* The indices of the services with a `poll`, and with a `next_deadline` (and `tick`): the
	 * worker's loop visits only those each turn, so a service without them costs no turn
	 * anything. */
	uint8_t svc_polled[ACTOR_SERVICES_MAX], npolled;
	uint8_t svc_timed[ACTOR_SERVICES_MAX], ntimed;
	void *svc_shared[ACTOR_SERVICES_MAX]; /* each service's system-wide state (service.h) */
	/* Reclamation's end for a retired actor (refs.c calls it; actor.c's): drain, free. */
	void (*free_retired)(struct actor_worker *w, struct actor *a);
	/* The name registry (names.c), and its release of a stopped actor's name, which actor.c
	 * calls through here (names.c itself sends through actor.c). */
	struct actor__names *names;
	void (*names_release)(actor_system_t *sys, actor_ref_t ref);
	/* Crash evidence: fatal signals on this system's workers are reported (crash.c), and the
	 * watchdog thread, if any, reports long behaviour calls (watchdog.c). */
	bool crash_report;
	struct actor__watchdog *watchdog;

	/* Reference slots: a two-level table that never moves. Chunks are published by CAS. */
	struct actor__slot *_Atomic *chunks;
	_Atomic uint32_t slot_next; /* next never-used index */
	pthread_mutex_t slot_lock;  /* guards the global free list: external spawns and spill */
	uint32_t slot_free_head;    /* 0 = empty */
	uint32_t slot_free_len;

	/* QSBR epoch. */
	CK_CC_CACHELINE _Atomic uint64_t epoch;
	/* Moves of actors between workers begun and done (actor__none_resident). */
	CK_CC_CACHELINE _Atomic uint64_t moves_begun, moves_done;
	/* Threads outside the pool: sections in flight and counters, striped (refs.c). */
	struct actor__ext ext[ACTOR_EXT_STRIPES];

	/* Lifecycle. */
	CK_CC_CACHELINE _Atomic int shutdown; /* 1 once shutdown is requested */
	_Atomic uint32_t run_wake;            /* futex word for actor_system_run */
	_Atomic int running;                  /* actor_system_run entered */
	_Atomic int finished;                 /* workers joined */
};

/* Internal message types at or above MSG_CONTROL never reach behaviours as they are. */
#define MSG_CONTROL MSG_MONITOR

/* Set in the type of a library message (below MSG_CONTROL) that a behaviour passed on with
 * actor_send_msg: its service has seen it already, at its first delivery (a connection's
 * input counted, a job's result accounted for), so the next delivery, or dead letter, skips
 * the service and clears the bit first. No block or control type has it (service.h). */
#define MSG_FORWARDED 0x8000u

static inline bool actor__msg_forwarded(uint32_t type)
{
	return type >= ACTOR_MSG_SYSTEM && (type & MSG_FORWARDED) != 0;
}

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

/* The worker of a behaviour's ctx, if the caller is that behaviour's thread; else NULL. */
static inline struct actor_worker *actor__ctx_worker(const actor_ctx_t *ctx)
{
	if (ctx == NULL || ctx->actor == NULL || actor__tls_worker != ctx->worker)
		return NULL;
	return ctx->worker;
}

/* Owner only: a behaviour (or start hook) of `a` is about to run on `w`. Two plain stores: no
 * clock, no read-modify-write (the watchdog samples them from its thread). */
static inline void actor__call_begin(struct actor_worker *w, const struct actor *a)
{
	/* release: the previous call's end is visible before this ref, for the watchdog's
	 * acquire load of it (watchdog.c, report). */
	atomic_store_explicit(&w->call_ref, a->ref.id, memory_order_release);
	/* release: pairs with the watchdog's acquire load of `calls`: an odd count it reads
	 * comes with this call's ref. Relaxed read of our own counter. */
	atomic_store_explicit(&w->calls, atomic_load_explicit(&w->calls, memory_order_relaxed) + 1,
	                      memory_order_release);
}

/* Owner only: the call begun last has returned. */
static inline void actor__call_end(struct actor_worker *w)
{
	/* release: as in actor__call_begin. */
	atomic_store_explicit(&w->calls, atomic_load_explicit(&w->calls, memory_order_relaxed) + 1,
	                      memory_order_release);
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
/* The slot of index `idx`, or NULL if its chunk is not published yet. Inline, as is
 * actor__lookup: every send looks its receiver up (bench/pingpong_1core: 13.7M against 12.6M
 * round trips/s, counting_1to1 37.7M against 32.3M messages/s, with the send path in one
 * function; bench/README.md, "The fifth round"). */
static inline struct actor__slot *actor__slot_at(actor_system_t *sys, uint32_t idx)
{
	/* acquire: pairs with the release CAS that published the chunk (refs.c, ensure_chunk). */
	struct actor__slot *chunk =
	    atomic_load_explicit(&sys->chunks[idx >> SLOT_CHUNK_BITS], memory_order_acquire);
	return chunk == NULL ? NULL : &chunk[idx & (SLOT_CHUNK - 1)];
}

/* The live actor `ref` names, or NULL (never spawned, or stopped). Any thread; the caller keeps
 * the result allocated by QSBR (R1/R2, refs.c): a worker between quiescent points, or a thread
 * outside the pool inside actor__ext_enter/leave. */
static inline struct actor *actor__lookup(actor_system_t *sys, actor_ref_t ref)
{
	uint32_t idx = (uint32_t)ref.id;
	uint32_t gen = (uint32_t)(ref.id >> 32);
	if (idx == 0 || idx >= atomic_load_explicit(&sys->slot_next, memory_order_relaxed))
		return NULL;
	struct actor__slot *s = actor__slot_at(sys, idx);
	if (s == NULL)
		return NULL;
	/* acquire: pairs with the seq_cst generation bump in stop; a match means not yet stopped
	 * when read, and R1/R2 keep the actor allocated until this caller is done. */
	if (atomic_load_explicit(&s->gen, memory_order_acquire) != gen)
		return NULL;
	/* acquire: pairs with the release store that published the actor in actor_spawn. */
	return atomic_load_explicit(&s->actor, memory_order_acquire);
}

/* This thread's stripe + 1 (refs.c, "Outside threads"); 0 before its first use, which
 * actor__ext_stripe_first handles. initial-exec, as actor__tls_worker: every send and spawn
 * from outside reads it. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local unsigned actor__ext_stripe_tls;
unsigned actor__ext_stripe_first(void);

/* This thread's stripe. */
static inline struct actor__ext *actor__ext_of(actor_system_t *sys)
{
	unsigned mine = actor__ext_stripe_tls;
	return &sys->ext[__builtin_expect(mine != 0, 1) ? mine - 1 : actor__ext_stripe_first()];
}

/* A section of a thread outside the pool (R2, refs.c). Inline, with the leave: a send from
 * outside is one function (actor.c, send_outside_copy). */
static inline struct actor__ext *actor__ext_enter(actor_system_t *sys)
{
	struct actor__ext *x = actor__ext_of(sys);
	/* seq_cst: ordered before this thread's lookups; pairs with the load in reclaim (R4). */
	atomic_fetch_add(&x->active, 1);
	return x;
}

static inline void actor__ext_leave(struct actor__ext *x)
{
	/* seq_cst: every access of the section happens before a reclaimer that sees the drop. */
	atomic_fetch_sub(&x->active, 1);
}

/* The same, counting one message sent: one section out of the low bits, one message into the
 * count above them, in the one locked instruction that the leave alone needed (a second one
 * for the count was a sixth of the sending thread's time in bench/fork_join_throughput). */
static inline void actor__ext_leave_sent(struct actor__ext *x)
{
	atomic_fetch_add(&x->active, ACTOR_EXT_INFLIGHT); /* seq_cst, as above */
}
/* feeder.c: a thread outside the pool that keeps sending (a busy sender, or feeder). */
/* When such a thread was last seen sending while busy on its CPU, process-wide; 0: never. */
extern _Atomic uint64_t actor__feeder_ns;
/* The CPU it ran on then, if it had that CPU nearly to itself; -1: no such CPU. */
extern _Atomic int actor__feeder_cpu;
/* How long its sign counts (sched.c, feeder_busy; feeder.c). */
#define ACTOR_FEEDER_FRESH_NS 20000000
/* Whether such a thread has said it is busy within ACTOR_FEEDER_FRESH_NS of `now`; if so, its
 * sign stops counting at *until. Relaxed: a hint. A stamp from a clock read after `now` is
 * fresh too. */
static inline bool actor__feeder_fresh(uint64_t now, uint64_t *until)
{
	uint64_t f = atomic_load_explicit(&actor__feeder_ns, memory_order_relaxed);
	if (f == 0 || (int64_t)(now - f) >= ACTOR_FEEDER_FRESH_NS)
		return false;
	*until = f + ACTOR_FEEDER_FRESH_NS;
	return true;
}
/* Sends from outside every pool, counted by this thread; at ACTOR_FEEDER_MARK it calls
 * actor__feeder_mark, which looks at how busy it was. */
#define ACTOR_FEEDER_MARK 4096
extern __attribute__((tls_model("initial-exec"))) _Thread_local uint32_t actor__feeder_sends;
void actor__feeder_mark(void);
/* A worker beside a stranger moves to a busy sender's CPU: checked at the top of each loop
 * turn, when the coarse clock has reached w->follow.next. */
void actor__follow_init(struct actor_worker *w);
void actor__follow_check(struct actor_worker *w, uint64_t coarse_now);
void actor__follow_fini(struct actor_worker *w);
void actor__qsbr_quiescent(struct actor_worker *w);
void actor__qsbr_offline(struct actor_worker *w);
void actor__qsbr_online(struct actor_worker *w);
void actor__retire(struct actor_worker *w, struct actor *a);
void actor__reclaim(struct actor_worker *w);
/* For reclaimers of their own (names.c): true once nothing unlinked before the epoch read as
 * `tag` can still be reached by a reader (R3, R4); moves the epoch past `tag` if needed. */
bool actor__qsbr_passed(actor_system_t *sys, uint64_t tag);

/* actor.c: lifecycle on the home worker. */
/* Inside a behaviour: from now on, actor_stop does not stop the calling actor; its request
 * reaches the behaviour as a message of type MSG_STOP (no payload; the sender is who asked), and
 * the behaviour stops when it is ready. For supervisors (supervise/), which stop their children
 * in order first. Costs nothing on the send or turn paths: MSG_STOP is a control message. */
int actor__trap_stop(actor_ctx_t *ctx);
void actor__run(struct actor_worker *w, struct actor *a);
void actor__kill_now(struct actor_worker *w, struct actor *a, int reason);
void actor__free_retired(struct actor_worker *w, struct actor *a); /* drains, then frees */
int actor__send_internal(actor_system_t *sys, actor_ref_t to, actor_ref_t from, uint32_t type,
                         const void *data, size_t len);
/* Sends a message built by the library (sender NONE); counted as sent. */
int actor__send_internal_msg(actor_system_t *sys, actor_ref_t to, actor_msg_t *m);
/* The same with `from` as its sender. */
int actor__send_internal_from(actor_system_t *sys, actor_ref_t to, actor_ref_t from,
                              actor_msg_t *m);
/* Worker threads only (-EINVAL elsewhere): pushes `first` and `second` onto `to`'s mailbox in
 * one exchange, after every message the running turn has chained for anyone (sched.c,
 * Outbox), so the receiver pops them one right after the other and after the sender's earlier
 * messages; counted as one message sent. -ESRCH: `to` has stopped. */
int actor__send_pair(actor_system_t *sys, actor_ref_t to, actor_ref_t from, actor_msg_t *first,
                     actor_msg_t *second);

/* names.c: the name registry. */
int actor__names_init(actor_system_t *sys);
void actor__names_fini(actor_system_t *sys);
size_t actor__names_count(actor_system_t *sys); /* entries held, stale ones included (tests) */

/* crash.c: fatal-signal reports, process-wide; each install is undone by one uninstall. */
int actor__crash_install(void);
void actor__crash_uninstall(void);

/* watchdog.c: one thread per system reporting long behaviour calls. */
int actor__watchdog_start(actor_system_t *sys, const actor_config_t *cfg);
void actor__watchdog_stop(actor_system_t *sys);
/* What the watchdog keeps per worker, and its decision for one sample (tests drive it). */
struct actor__watch {
	uint64_t calls; /* the count last seen */
	uint64_t since; /* when it was first seen */
	uint64_t next;  /* how long a call must have run for its next report */
};
bool actor__watch_sample(struct actor__watch *s, uint64_t calls, uint64_t now, uint64_t limit,
                         uint64_t *running);

/* flow.c: bounded mailboxes (the protocol and its invariants are there). It names nothing of
 * actor.c: the sends it asks for are made by its caller (the nudge) or through `notice`. */
typedef void actor__notice_fn(struct actor_worker *w, struct actor *a, actor_ref_t sender);
/* Any thread, `a` counted: 0, or -EAGAIN (full; *nudge: send `a` MSG_FLOW), or -ENOMEM. */
int actor__flow_reserve(struct actor_worker *self, struct actor *a, actor_ref_t from, bool *nudge);
static inline void actor__flow_popped(struct actor__side *s)
{
	/* seq_cst: before the turn end's load of `waiters` (flow.c, W1). */
	atomic_fetch_sub(&s->flow.depth, 1);
}
/* The holder of `a`, which has a capacity: at the end of a turn, at the stop, at the free
 * (with the side block). `notice` sends one ACTOR_MSG_WRITABLE. */
void actor__flow_turn_end(struct actor_worker *w, struct actor *a, actor__notice_fn *notice);
void actor__flow_stopped(struct actor_worker *w, struct actor *a, actor__notice_fn *notice);
void actor__flow_free(struct actor_worker *w, struct actor *a, actor__notice_fn *notice);
void actor__flow_info(struct actor *a, actor_info_t *out); /* depth and age, any thread */

/* sched.c: workers. */
int actor__workers_start(actor_system_t *sys);
void actor__workers_join(actor_system_t *sys);
void actor__schedule(actor_system_t *sys, struct actor_worker *self, struct actor *a);
/* The actor's home worker, as a hint for any thread (exact for its holder). */
static inline unsigned actor__home_index(const struct actor *a)
{
	/* relaxed: see the field; the holder's own store or the hand-off ordered it. */
	return atomic_load_explicit(&((struct actor *)a)->home, memory_order_relaxed);
}
static inline struct actor_worker *actor__home(actor_system_t *sys, const struct actor *a)
{
	return &sys->workers[actor__home_index(a)];
}
/* The holder of an idle or queued actor makes it live on `to` (resident counts follow). */
void actor__move(struct actor *a, struct actor_worker *to);
/* Owner only: queues runnable `a` at the tail of `w`'s run queue. Inline: every local send
 * that wakes its receiver ends here. */
static inline void actor__runq_push_local(struct actor_worker *w, struct actor *a)
{
	a->link.next = NULL;
	if (w->runq_tail != NULL)
		w->runq_tail->next = &a->link;
	else
		w->runq_head = &a->link;
	w->runq_tail = &a->link;
	w->runq_len++;
}
/* The holder of `a`, which lives on `w` (its own worker): queues it there. A wake-up from the
 * home ends a following streak (sched.c, Following). Inline for the local send. */
static inline void actor__schedule_here(struct actor_worker *w, struct actor *a)
{
	if (a->streak != 0)
		a->streak = 0;
	actor__runq_push_local(w, a);
}
/* Owner only, inside the turn of `from`: `from` sends to `a`, another actor living here. The
 * pair is in conversation on this worker, and sharing leaves it together while few actors
 * wait (sched.c, Sharing). Inline on the local send: a few compares, and four stores when the
 * pair differs from the last one. The ring is a set (talks_here), so the last pair in either
 * direction is in it already: a reply, the common case, writes nothing. */
static inline void actor__talk_note(struct actor_worker *w, struct actor *from, struct actor *a)
{
	if (a == from || (a == w->talk_to && from == w->talk_from) ||
	    (a == w->talk_from && from == w->talk_to))
		return;
	w->talk_from = from;
	w->talk_to = a;
	w->talk[w->talk_next++ % ACTOR_TALK_SLOTS] = a;
	w->talk[w->talk_next++ % ACTOR_TALK_SLOTS] = from;
}
/* Owner only, inside a behaviour's turn: queues `m` for `a`, which lives elsewhere, or lives
 * here (`here`) and has a chain waiting; false if it lives here and has none (push it). */
bool actor__outbox_add(struct actor_worker *w, struct actor *a, actor_msg_t *m, bool here);
/* Owner only: pushes every chain queued by the turn that is ending. */
void actor__outbox_flush(struct actor_worker *w);
static inline void actor__outbox_flush_any(struct actor_worker *w)
{
	if (w->outbox_len != 0)
		actor__outbox_flush(w);
}
void actor__wake_all(actor_system_t *sys);
void actor__note_stopped(struct actor_worker *w);
bool actor__none_resident(actor_system_t *sys);
void actor__schedule_home(actor_system_t *sys, struct actor_worker *self, struct actor *a);

void actor__worker_post(struct actor_worker *w, struct actor__cmd *cmd);
void actor__worker_wake(struct actor_worker *w);

/* CLOCK_MONOTONIC. Inline: the feeder's mark (feeder.c) and the scheduler both read it. */
static inline uint64_t actor__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE: no system call, a tick's resolution. */
static inline uint64_t actor__coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The service that owns system message type `type` (service.h), or NULL. */
static inline const struct actor__service_ops *actor__svc_of(const actor_system_t *sys,
                                                             uint32_t type)
{
	unsigned i = sys->svc_of_block[actor__msg_block(type)];
	return i != 0 ? sys->svcs[i - 1] : NULL;
}

/* Owner only, inside a behaviour's turn of `a`: service `bits` holds something of the actor's
 * now (it will hear of its stop; the actor stays on this worker). */
static inline void actor__svc_hold(struct actor *a, uint8_t bits)
{
	a->svc_bits |= bits;
}

/* Owner only, inside a behaviour's turn of `a` (a service's `receive` hook is): service `bits`
 * holds nothing of the actor's any more. With no bit left it may move again. */
static inline void actor__svc_release(struct actor *a, uint8_t bits)
{
	a->svc_bits &= (uint8_t)~bits;
}

/* sched.c: every service's fini on worker `w` (once; later calls do nothing). */
void actor__services_fini(struct actor_worker *w);

/* placement.c */
int actor__place(actor_system_t *sys, const actor_spawn_opts_t *opts, struct actor_worker *self,
                 unsigned *out);

/* park.c: block a worker until woken (futex), and wake it. */
struct timespec;
void actor__park_timed(_Atomic uint32_t *word, const struct timespec *timeout);
void actor__unpark(_Atomic uint32_t *word);

#endif /* ACTOR_INTERNAL_H */
