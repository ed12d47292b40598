/* actor.h: the public API of libactor, a C11 runtime of stackless actors on a thread-per-core
 * worker pool.
 *
 * An actor is a behaviour function called once per message with a pointer to the actor's
 * private state. Each actor lives on one home worker, chosen at spawn by a placement policy,
 * and its behaviour only ever runs there, one message at a time, so its state needs no locks.
 *
 * Conventions:
 *   - Every function that can fail returns 0 or a negative errno value (-EINVAL, -ESRCH,
 *     -ENOMEM, ...). A call that failed has no later effect: it sends no message.
 *   - A zeroed options or config struct means "defaults"; NULL does too.
 *   - Functions taking an actor_ctx_t * may only be called from inside that actor's behaviour,
 *     with the ctx the behaviour was given.
 */
#ifndef ACTOR_H
#define ACTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h> /* struct sockaddr_storage, in lookup answers */
#include <sys/stat.h>   /* struct stat, in file answers */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(ACTOR_BUILDING)
#define ACTOR_API __attribute__((visibility("default")))
#else
#define ACTOR_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Types
 */

/* The runtime: a pool of workers and the actors living on them. Opaque. */
typedef struct actor_system actor_system_t;

/* The running actor as seen from inside its behaviour. Opaque; valid only during the call. */
typedef struct actor_ctx actor_ctx_t;

/* A reference to an actor: a generation-checked handle. It stays safe to use after the actor
 * has stopped; operations on it then fail with -ESRCH. The zero value names no actor. */
typedef struct actor_ref {
	uint64_t id;
} actor_ref_t;

#define ACTOR_REF_NONE ((actor_ref_t){0})

static inline int actor_ref_is_none(actor_ref_t r)
{
	return r.id == 0;
}
static inline int actor_ref_eq(actor_ref_t a, actor_ref_t b)
{
	return a.id == b.id;
}

/* The message header. A copied message (actor_send) carries its payload right after the
 * header; a zero-copy message (actor_send_msg) is a user struct whose first member is this
 * header, allocated with actor_msg_alloc. The library owns `link_`; the rest is readable. */
typedef struct actor_msg {
	void *link_;        /* mailbox link: library-owned, never touch */
	actor_ref_t sender; /* set at send: the sending actor, or ACTOR_REF_NONE from outside */
	uint32_t type;      /* user tag; values >= ACTOR_MSG_SYSTEM are the library's */
	uint32_t size;      /* bytes after the header */
} actor_msg_t;

/* The payload that follows the header. */
static inline void *actor_msg_data(actor_msg_t *m)
{
	return (void *)(m + 1);
}

/* Largest payload a message may carry (bytes after the header). */
#define ACTOR_MSG_MAX (16u << 20)

/* Message types the library sends. User types must stay below ACTOR_MSG_SYSTEM. */
#define ACTOR_MSG_SYSTEM 0xffff0000u
#define ACTOR_MSG_DOWN 0xffff0001u /* a monitored actor stopped; payload: actor_down_t */
#define ACTOR_MSG_EXIT 0xffff0002u /* a linked actor stopped (trapping exits); actor_exit_t */

typedef struct actor_down {
	actor_ref_t actor; /* the actor that stopped */
	int reason;        /* its stop reason (ACTOR_REASON_*, or the user's own value) */
} actor_down_t;

typedef struct actor_exit {
	actor_ref_t actor; /* the linked actor that stopped */
	int reason;        /* its stop reason (ACTOR_REASON_*, or the user's own value) */
} actor_exit_t;

/* Stop reasons the library gives. Users pass their own (any int) to actor_exit. */
#define ACTOR_REASON_NORMAL 0
#define ACTOR_REASON_KILLED (-1)   /* stopped by actor_stop from another actor or thread */
#define ACTOR_REASON_SHUTDOWN (-2) /* stopped because the system shut down */
#define ACTOR_REASON_NOPROC (-3)   /* monitor of, or link to, an actor already stopped */

/* A behaviour: called once per message on the actor's home worker. The message is freed when
 * the call returns, unless the behaviour passed it on with actor_send_msg or kept it with
 * actor_msg_keep. System messages (ACTOR_MSG_DOWN, ACTOR_MSG_EXIT) arrive through the
 * behaviour too. */
typedef void actor_behavior_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg);

/* ---------------------------------------------------------------------------------------------
 * System
 */

/* Called for each message that could not be delivered because its receiver stopped first or
 * the system shut down. Runs on a worker thread (or in actor_system_free); the message is
 * freed after it returns. `to` is the stopped receiver. */
typedef void actor_dead_letter_fn(void *arg, actor_ref_t to, const actor_msg_t *msg);

/* When a behaviour crashes, or takes too long.
 *
 * A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) on a worker prints one line to
 * stderr before the process dies, naming the actor that was running, its worker and the message
 * it was handling, for instance
 *   libactor: fatal SIGSEGV in a behaviour: actor 0x100000005 "shard-3" on worker 1, handling
 *   message type 7
 * (one line; the reference is its id in hex, the name is the spawn option `name`, shown only if
 * set; "in its start hook" instead of a message type for a start hook; "in the library" if the
 * signal came from outside a behaviour's call). The process then dies as it would have without
 * the report: a handler the program had installed before runs next, and the exit status and
 * core dump are the signal's. The line is written with write(2) from the signal handler, which
 * runs on an alternate stack of the worker's, so a stack overflow is reported too. The handlers
 * are installed when the first system created without `no_crash_report` is, and the previous
 * ones put back when the last such system is freed.
 *
 * The watchdog: a thread per system (unless watchdog_ms is -1) reports each behaviour call (or
 * start hook) that has run longer than watchdog_ms, without stopping it: once the call has run
 * the limit, and again each time its running time doubles. The workers read no clock for it.
 * Report lines go to stderr ("libactor: watchdog: actor 0x100000005 "shard-3" on worker 1 has
 * been in one behaviour call for 1.250 s ..."), or to the hook below if one is set. A call
 * shorter than 1.25 times the limit may go unreported (the thread samples four times a limit).
 */
typedef struct actor_watchdog_report {
	actor_ref_t actor;   /* whose behaviour call has run long */
	const char *name;    /* its spawn name, or NULL */
	unsigned worker;     /* the worker it holds */
	uint64_t running_ns; /* how long the call has run, at least */
} actor_watchdog_report_t;

/* Receives a watchdog report on the watchdog's thread. It may call what any thread may
 * (actor_send, actor_info, actor_system_shutdown, ...) but not actor_system_free, and should
 * return soon: the next samples wait for it. */
typedef void actor_watchdog_fn(void *arg, const actor_watchdog_report_t *report);

#define ACTOR_WATCHDOG_MS_DEFAULT 1000 /* see the watchdog_ms field */
#define ACTOR_WATCHDOG_MS_MAX 3600000  /* an hour */

typedef struct actor_config {
	unsigned workers; /* worker threads; 0 = one per CPU in the affinity mask */
	int no_pin;       /* kept for compatibility: 1 = do not pin (the default now) */
	unsigned batch;   /* messages per actor per turn; 0 = ACTOR_BATCH_DEFAULT */
	int spin_us;      /* idle spin before parking, µs; 0 = default, -1 = never spin */
	actor_dead_letter_fn *dead_letter; /* optional hook; dead letters are counted anyway */
	void *dead_letter_arg;
	/* "epoll", "io_uring" or "auto": io_uring where the kernel and the sandbox allow it, else
	 * epoll. NULL = the ACTOR_REACTOR environment variable, else "auto". The environment
	 * variable ACTOR_IO_URING_FEATURES limits io_uring to what older kernels offer: "5.19",
	 * or "basic" (before 5.19); "all", the default, uses what the kernel has; other values
	 * make actor_system_create fail with -EINVAL. */
	const char *reactor;
	/* At shutdown, once a worker's actors have all stopped, how long (ms) it goes on with
	 * connections closed by actor_tcp_close or by their owners stopping (writing their output
	 * and waiting for the peer to acknowledge it) before it resets those with output still
	 * queued and closes the others: 0 = ACTOR_SHUTDOWN_DRAIN_MS, -1 = not at all (at once); at
	 * most ACTOR_TCP_LINGER_MS, which no close outlasts anyway. */
	int shutdown_drain_ms;
	/* 1 = actors never move: every actor stays on the worker its placement picked, as if
	 * spawned with `stay`. 0 (default): unpinned actors follow their conversations and idle
	 * workers take over queued ones (see actor_spawn_opts_t.stay). */
	int no_move;
	/* 1 = pin each worker to one CPU of the affinity mask. 0 (default): the kernel places the
	 * workers and moves them off a CPU that another process keeps busy (bench/README.md,
	 * "Pinning"). Pin on a machine whose CPUs are the program's alone. -EINVAL with no_pin. */
	int pin;
	/* Threads of the "default" blocking pool (see "Blocking work"): 0 =
	 * ACTOR_POOL_THREADS_DEFAULT; at most ACTOR_POOL_THREADS_MAX, else -EINVAL. Its first
	 * thread starts with the system (-EAGAIN if it cannot). */
	unsigned pool_threads;
	/* 1 = no report of a fatal signal in a behaviour (see "When a behaviour crashes" above):
	 * this system installs no signal handler and gives its workers no alternate signal
	 * stack. 0 (default): reported. Other values: -EINVAL. */
	int no_crash_report;
	/* How long (ms) a behaviour call may run before the watchdog reports it: 0 =
	 * ACTOR_WATCHDOG_MS_DEFAULT (1 s: a behaviour should return in microseconds, and one that
	 * takes a second is blocked or is holding up every actor of its worker as long); -1 = no
	 * watchdog (no thread); at most ACTOR_WATCHDOG_MS_MAX, else -EINVAL. actor_system_create
	 * fails with -EAGAIN if the thread cannot start. */
	int watchdog_ms;
	/* Optional: receives the watchdog's reports instead of stderr (see above). */
	actor_watchdog_fn *watchdog;
	void *watchdog_arg;
	/* 1 = count every actor's mailbox depth for actor_info (see actor_info_t.depth), at the
	 * cost of an atomic increment (a compare-and-swap) on each send, an atomic subtract on each
	 * message handled, and an 80-byte block per actor. 0 (default): only actors spawned with a
	 * capacity are counted. -EINVAL for other values. */
	int count_depth;
} actor_config_t;

#define ACTOR_SHUTDOWN_DRAIN_MS ACTOR_TCP_LINGER_MS

#define ACTOR_WORKERS_MAX 256

/* Creates a system and starts its workers (idle workers park and use no CPU). */
ACTOR_API int actor_system_create(const actor_config_t *cfg, actor_system_t **out);

/* Blocks until every actor has stopped, or until actor_system_shutdown is called. On shutdown
 * every remaining actor is stopped with ACTOR_REASON_SHUTDOWN and its undelivered messages go
 * to the dead-letter hook. Returns 0, or -EINVAL if called twice or from a worker thread. */
ACTOR_API int actor_system_run(actor_system_t *sys);

/* Asks a running system to stop. Safe from any thread and from a signal handler. */
ACTOR_API int actor_system_shutdown(actor_system_t *sys);

/* Joins the workers (shutting down first if needed) and frees everything the system owns. */
ACTOR_API void actor_system_free(actor_system_t *sys);

/* Number of workers. */
ACTOR_API unsigned actor_system_workers(const actor_system_t *sys);

/* The reactor backend in use: "epoll" or "io_uring"; "mixed" if, under "auto", some workers
 * could create an io_uring and others could not (each worker's statistics name its own). */
ACTOR_API const char *actor_system_reactor(const actor_system_t *sys);

/* ---------------------------------------------------------------------------------------------
 * Spawning
 */

typedef enum actor_placement {
	ACTOR_PLACE_ROUND_ROBIN = 0, /* default: rotate over workers (per spawning thread) */
	ACTOR_PLACE_LOCAL,           /* the spawner's worker (round-robin from outside workers) */
	ACTOR_PLACE_LEAST_LOADED,    /* the worker with the fewest resident actors */
	ACTOR_PLACE_HASH,            /* hash of opts->key */
	ACTOR_PLACE_FIXED,           /* opts->worker */
	ACTOR_PLACE_CALLBACK,        /* opts->place(opts->place_arg, &info) */
} actor_placement_t;

/* What a placement callback sees. */
typedef struct actor_place_info {
	unsigned workers;      /* number of workers */
	int spawner_worker;    /* the spawning thread's worker, or -1 outside the pool */
	uint64_t key;          /* opts->key */
	const unsigned *loads; /* resident actors per worker (a snapshot; may be stale) */
} actor_place_info_t;

/* Returns the worker index for the new actor; out of range makes the spawn fail (-EINVAL). */
typedef int actor_place_fn(void *arg, const actor_place_info_t *info);

typedef struct actor_spawn_opts {
	actor_placement_t placement;
	uint64_t key;          /* ACTOR_PLACE_HASH */
	unsigned worker;       /* ACTOR_PLACE_FIXED */
	actor_place_fn *place; /* ACTOR_PLACE_CALLBACK */
	void *place_arg;
	const char *name;             /* shown by actor_info and in reports; not copied, must
	                               * outlive the actor; not a registered name ("Names") */
	void (*destroy)(void *state); /* called with the state on the home worker at stop */
	/* 1 = the actor stays on the worker placement picked, always. 0 (default): placement is a
	 * first guess. Between messages the library may move the actor's home toward the worker
	 * whose actors keep waking it (so a conversation stops crossing cores), or hand it to an
	 * idle worker while it waits to run (so work spreads). It still runs on one worker at a
	 * time, in order (the guarantees in the README hold across moves). Actors placed with
	 * ACTOR_PLACE_FIXED, and actors that own a connection or listener or have set a timer,
	 * never move. actor_info tells where an actor lives now. */
	int stay;
	/* Optional: called once on the actor's home worker before its first message, as a
	 * behaviour is (`ctx` works for every call a behaviour may make: listen, set a timer,
	 * spawn). Messages sent to the actor meanwhile wait behind it. An actor stopped before it
	 * ran never runs it. */
	void (*start)(actor_ctx_t *ctx, void *state);
	/* 1 = link the new actor with the spawning actor (see actor_link), from inside a
	 * behaviour (or a start hook) only. 0 (default): no link. The link exists before the new
	 * actor can run, so even one that fails at once reaches the spawner with its own reason
	 * (actor_link after the spawn could find it stopped: ACTOR_REASON_NOPROC). */
	int link;
	/* An actor that gets one ACTOR_MSG_DOWN when the new actor stops, as with actor_monitor,
	 * but recorded before the new actor can run: the DOWN always carries its real reason
	 * (actor_monitor after the spawn could find it stopped: ACTOR_REASON_NOPROC). The spawner
	 * itself (actor_self) or any other actor. ACTOR_REF_NONE (default): none. */
	actor_ref_t monitor;
	/* A bounded mailbox: at most `capacity` user messages (types below ACTOR_MSG_SYSTEM) sent
	 * to the actor and not yet handed to its behaviour. A send that would exceed it fails with
	 * -EAGAIN and queues nothing, and a refused behaviour is told when there is room again
	 * (ACTOR_MSG_WRITABLE, under "Sending"). Library messages (ACTOR_MSG_DOWN, timers, network
	 * events, job results, ...) are neither counted nor refused. 0 (default): unbounded. At
	 * most ACTOR_CAPACITY_MAX. It holds wherever the actor lives (it may move as above). */
	uint32_t capacity;
} actor_spawn_opts_t;

#define ACTOR_CAPACITY_MAX (1u << 30)

/* Spawns an actor running `fn` with `state`. From any thread, including behaviours. -EINVAL for
 * a NULL sys, fn or out, bad placement options, `stay` or `link` other than 0 or 1, `link`
 * outside a behaviour, or a capacity over ACTOR_CAPACITY_MAX; -ESRCH: `monitor` names an actor
 * that has stopped; -ENOMEM;
 * -ESHUTDOWN once shutdown was requested. */
ACTOR_API int actor_spawn(actor_system_t *sys, const actor_spawn_opts_t *opts,
                          actor_behavior_fn *fn, void *state, actor_ref_t *out);

/* ---------------------------------------------------------------------------------------------
 * Sending
 *
 * From any thread. Inside a behaviour the message's sender is the running actor; from outside
 * the pool it is ACTOR_REF_NONE. Messages from one sender to one receiver arrive in order.
 * -ESRCH: the receiver has stopped, or `to` is ACTOR_REF_NONE or names no actor. -EMSGSIZE:
 * over ACTOR_MSG_MAX. -EINVAL: bad arguments (a NULL system, NULL data with len > 0) or a type
 * >= ACTOR_MSG_SYSTEM (but see actor_send_msg). -ESHUTDOWN: the system's workers have been
 * joined (after run returned). -EAGAIN: the receiver has a capacity (actor_spawn_opts_t) and
 * its mailbox holds that many user messages: nothing was sent, and a behaviour refused so will
 * get one ACTOR_MSG_WRITABLE (below). -ENOMEM: out of memory (when the receiver is full: no
 * notice could be registered, and none will come).
 *
 * Bounded mailboxes (contract 9: no send ever waits, and a full mailbox tells its senders when
 * there is room, so backpressure cannot deadlock). A send to a full mailbox is refused at
 * once, with -EAGAIN; the sender keeps what was refused and sends it again once the receiver
 * has room. A behaviour refused gets, from the receiver, one ACTOR_MSG_WRITABLE once the
 * receiver's mailbox holds half its capacity or less (rounded down), checked at the end of each
 * of the receiver's turns: one notice however many of its sends were refused meanwhile; a
 * send refused after the notice arrived starts another such episode. Half, not one below the
 * capacity, so that a notified sender finds room for many messages rather than trading a
 * notice for each, and the receiver still has work queued while its senders resume. Other
 * senders may take the room first: a retry may be refused again (and another notice follows).
 * A thread outside the pool gets -EAGAIN and no notice: it retries later as it sees fit.
 * If the receiver stops, each refused sender still gets its notice (its retry then fails
 * with -ESRCH), and ACTOR_MSG_DOWN if it monitors the receiver. A notice to a sender that has
 * stopped is not sent, or is a dead letter if the sender stopped after it was sent. The
 * notices and the library's messages (ACTOR_MSG_DOWN, timers, network events, ...) are never
 * refused: a full mailbox still gets them.
 */

#define ACTOR_MSG_WRITABLE 0xffff0003u /* room again; payload: actor_writable_t */

typedef struct actor_writable {
	actor_ref_t actor; /* the receiver that has room now (also the message's sender) */
} actor_writable_t;

/* Copies `len` bytes of `data` into a new message of type `type`. */
ACTOR_API int actor_send(actor_system_t *sys, actor_ref_t to, uint32_t type, const void *data,
                         size_t len);

/* Allocates a zero-copy message of `size` bytes in all (header included, so at least
 * sizeof(actor_msg_t)), with `type` set and `size` set to the bytes after the header. */
ACTOR_API int actor_msg_alloc(size_t size, uint32_t type, actor_msg_t **out);

/* Frees a message the caller owns (one from actor_msg_alloc not sent, or one kept). */
ACTOR_API void actor_msg_free(actor_msg_t *msg);

/* Sends a message the caller owns; on success ownership moves to the receiver, on failure the
 * caller still owns it, unchanged (-EAGAIN included). A behaviour may forward the message it was
 * given this way, or one it kept: the library's too (ACTOR_MSG_DOWN, a timer event, TCP data, a
 * job's result...), which the receiver gets as they are, with the forwarder as sender; the library
 * is done with such a message once it has reached its first receiver (the connection counted
 * its bytes as handled when that behaviour returned, say). -EINVAL: a type >= ACTOR_MSG_SYSTEM
 * that is none of the library's messages to behaviours. */
ACTOR_API int actor_send_msg(actor_system_t *sys, actor_ref_t to, actor_msg_t *msg);

/* ---------------------------------------------------------------------------------------------
 * Inside a behaviour
 */

ACTOR_API actor_ref_t actor_self(const actor_ctx_t *ctx);
ACTOR_API actor_ref_t actor_sender(const actor_ctx_t *ctx); /* sender of the current message */
ACTOR_API actor_system_t *actor_ctx_system(const actor_ctx_t *ctx);
ACTOR_API unsigned actor_ctx_worker(const actor_ctx_t *ctx); /* the home worker's index */

/* Replaces the behaviour from the next message on. */
ACTOR_API int actor_become(actor_ctx_t *ctx, actor_behavior_fn *fn);

/* Stops the actor once the current message returns: the destroy callback runs, monitors get
 * ACTOR_MSG_DOWN with `reason`, linked actors an exit signal with it (see "Links and exit
 * signals"), later messages are dead-lettered. */
ACTOR_API int actor_exit(actor_ctx_t *ctx, int reason);

/* Keeps the current message: the caller now owns it and frees it with actor_msg_free. */
ACTOR_API int actor_msg_keep(actor_ctx_t *ctx);

/* ---------------------------------------------------------------------------------------------
 * Lifecycle from anywhere
 */

/* Asks `target` to stop with ACTOR_REASON_KILLED after the messages already in its mailbox (a
 * supervisor stops its children first: see "Supervisors"). */
ACTOR_API int actor_stop(actor_system_t *sys, actor_ref_t target);

/* `watcher` gets one ACTOR_MSG_DOWN when `target` stops (at once, with ACTOR_REASON_NOPROC, if
 * it has already stopped). From any thread; each call is one more DOWN. A target that stops
 * before the request reaches it still reports its own reason; one whose stop has begun when
 * the call looks it up gives ACTOR_REASON_NOPROC: to watch an actor from its first moment,
 * spawn it with actor_spawn_opts_t.monitor. -ESRCH if the watcher itself has stopped. */
ACTOR_API int actor_monitor(actor_system_t *sys, actor_ref_t watcher, actor_ref_t target);

/* Cancels one monitor that `watcher` holds on `target` (actor_monitor, or the spawn option
 * `monitor`); does nothing if it holds none. From any thread. The request travels to the
 * target as a message, behind the requests the same thread (or actor) made before it, so it
 * finds in place a monitor that thread set up; one set up from elsewhere at the same time may
 * come after it and stay. A DOWN the target has already sent still arrives: if the target
 * stopped before the request reached it, or had begun to stop when this call looked it up
 * (-ESRCH), the watcher gets its DOWN anyway, so a watcher that cancels should ignore a DOWN
 * from an actor it no longer watches. -EINVAL: NULL sys; -ESRCH: watcher or target is
 * ACTOR_REF_NONE, or the target has stopped; -ENOMEM. */
ACTOR_API int actor_demonitor(actor_system_t *sys, actor_ref_t watcher, actor_ref_t target);

/* ---------------------------------------------------------------------------------------------
 * Links and exit signals
 *
 * A link ties two actors together, both ways: when either stops, the other gets an exit
 * signal carrying the stopped actor's reference and reason. Where a monitor only informs,
 * a signal stops its receiver, unless that receiver traps exits:
 *   - An actor that does not trap exits (the default) ignores a signal whose reason is
 *     ACTOR_REASON_NORMAL, and is stopped by any other reason, with that same reason (as if
 *     it had called actor_exit with it), so a failure travels along a chain of links and
 *     every actor on it reports the first one's reason. ACTOR_REASON_KILLED (actor_stop),
 *     ACTOR_REASON_NOPROC and ACTOR_REASON_SHUTDOWN are reasons like any other.
 *   - An actor that traps exits (actor_trap_exits) gets an ordinary ACTOR_MSG_EXIT message
 *     instead, whatever the reason, normal included, and goes on. Its sender is the stopped
 *     actor; it may be kept or passed on as any message.
 * Either way the link is gone once its signal has been handled.
 *
 * Order. A signal is handled in mailbox order: after the messages queued before it (as
 * actor_stop is) and after every message the stopped actor sent before it stopped. A
 * stopping actor's destroy callback runs first, then its monitors' DOWNs are sent, then its
 * exit signals, then its queued messages go to the dead-letter hook.
 *
 * Links hold wherever the two actors run: they are kept with each actor and move with it.
 * At shutdown every actor stops with ACTOR_REASON_SHUTDOWN, and its signals travel as any
 * others: a partner still running may get one (a trapping partner an ACTOR_MSG_EXIT with
 * ACTOR_REASON_SHUTDOWN) before it is stopped in turn.
 *
 * Links and monitors report stops, not crashes: a behaviour that faults (a bad pointer, an
 * abort) takes the whole process down, and nobody hears of it.
 */

/* Links the calling actor with `other`, both ways. Linking actors already linked does nothing
 * more (there is one link between two actors), nor does linking an actor to itself. If
 * `other` has already stopped, the caller gets an exit signal all the same, with
 * ACTOR_REASON_NOPROC (with `other`'s own reason if it stops before the request reaches it),
 * so a caller that does not trap exits is then stopped with it, as Erlang's link/1 fails with
 * noproc; to link with an actor you spawn, use actor_spawn_opts_t.link, which cannot miss it.
 * If `other` cannot record the link (out of memory), the caller gets a signal with -ENOMEM.
 * A link and an unlink made at once from the two sides may leave the actors unlinked; link
 * again to be sure. Inside a behaviour only. -EINVAL: a bad ctx, or `other` is
 * ACTOR_REF_NONE; -ENOMEM: nothing was linked. */
ACTOR_API int actor_link(actor_ctx_t *ctx, actor_ref_t other);

/* Removes the link between the calling actor and `other`, both ways; does nothing if there
 * was none. Once it returns, the link has no effect on the caller: an exit signal from
 * `other` already on its way is dropped when it arrives, and no ACTOR_MSG_EXIT for it
 * follows (the message is made only as the signal is handled; Erlang, by contrast, may have
 * queued one already). `other` forgets the link when the request reaches it. Inside a
 * behaviour only. -EINVAL: a bad ctx, or `other` is ACTOR_REF_NONE. */
ACTOR_API int actor_unlink(actor_ctx_t *ctx, actor_ref_t other);

/* on = 1: exit signals reaching the calling actor from now on (those already in its mailbox
 * included) arrive as ACTOR_MSG_EXIT messages and never stop it. on = 0 (the default): they
 * stop it unless their reason is ACTOR_REASON_NORMAL. Inside a behaviour only. -EINVAL: a bad
 * ctx, or `on` other than 0 or 1. */
ACTOR_API int actor_trap_exits(actor_ctx_t *ctx, int on);

/* ---------------------------------------------------------------------------------------------
 * Names
 *
 * A registry per system: an actor registered under a name is found by it, from any thread (a
 * sharded server looks its shards up by name). A name names one actor, and an actor holds at
 * most one name, as in Erlang. A name is 1 to ACTOR_NAME_MAX bytes (compared as bytes, up to
 * its NUL); the registry keeps a copy. The spawn option `name` is something else: a label shown
 * by actor_info and in crash reports, never registered.
 *
 * A name is released when its actor stops, whatever the reason (actor_exit, actor_stop,
 * shutdown): from the first step of the stop on, before its destroy callback runs and before any
 * ACTOR_MSG_DOWN of it is sent, actor_whereis no longer finds the name and actor_register may
 * give it to another actor. So a watcher handling the DOWN gets -ENOENT for the name, and may
 * register a successor under it at once. A registration that races the actor's stop either
 * fails with -ESRCH or is released by the stop.
 *
 * All three calls work from any thread, behaviours included. A lookup takes no lock; a
 * registration or an unregistration takes the registry's lock for a few probes, and so does the
 * stop of an actor that has held a name (actors that never did pay nothing more to stop).
 */

#define ACTOR_NAME_MAX 63 /* bytes of a registered name, at most */

/* Registers `ref` under `name` (copied). -EINVAL: a NULL sys or name, an empty name, or one of
 * more than ACTOR_NAME_MAX bytes; -ESRCH: `ref` has stopped, is ACTOR_REF_NONE or names no
 * actor; -EEXIST: a live actor holds the name (`ref` itself included); -EBUSY: `ref` already
 * holds another name (unregister it first); -ENOMEM. */
ACTOR_API int actor_register(actor_system_t *sys, const char *name, actor_ref_t ref);

/* Removes `name`, whichever actor holds it. -EINVAL: as actor_register; -ENOENT: no live actor
 * holds it. */
ACTOR_API int actor_unregister(actor_system_t *sys, const char *name);

/* Sets *out to the live actor registered under `name`. -EINVAL: a NULL sys or out, or a name
 * actor_register refuses; -ENOENT: no live actor holds it (*out is then ACTOR_REF_NONE). The
 * answer is a snapshot: the actor may stop right after, and a send to it then fails with -ESRCH
 * as to any stopped actor. */
ACTOR_API int actor_whereis(actor_system_t *sys, const char *name, actor_ref_t *out);

/* ---------------------------------------------------------------------------------------------
 * Networking: TCP over each worker's reactor (epoll or io_uring)
 *
 * A connection lives on one worker and is owned by one actor living on that same worker; its
 * events arrive in the owner's mailbox as messages, and only the owner may operate on it, from
 * inside its behaviour. A listener likewise belongs to the actor that opened it.
 *
 * Accepting: each accepted connection arrives at the listener's owner as ACTOR_MSG_TCP_ACCEPTED.
 * Nothing is read from it until the owner hands it to an actor living on the connection's
 * worker (`accepted->worker`; typically one spawned there with ACTOR_PLACE_FIXED), or to itself
 * if it lives there, with actor_tcp_handoff. The new owner then gets ACTOR_MSG_TCP_ADOPTED and
 * the data: reading starts only once ADOPTED has reached it (likewise CONNECTED for
 * actor_tcp_connect), so what it sets while handling that message (framing, a read limit)
 * applies from the first byte it gets. With `per_worker` the listener accepts on every worker
 * (SO_REUSEPORT), so connections spread over the cores and each stays on the worker that accepted
 * it.
 *
 * When the owner stops, its connections and listeners are closed.
 * No SIGPIPE is ever raised; resets and broken pipes arrive as ACTOR_MSG_TCP_CLOSED.
 */

typedef struct actor_conn {
	uint64_t id;
} actor_conn_t;

typedef struct actor_listener {
	uint64_t id;
} actor_listener_t;

#define ACTOR_MSG_TCP_ACCEPTED 0xffff0010u  /* payload: actor_tcp_accepted_t */
#define ACTOR_MSG_TCP_ADOPTED 0xffff0011u   /* payload: actor_tcp_event_t; you own the conn */
#define ACTOR_MSG_TCP_CONNECTED 0xffff0012u /* payload: actor_tcp_event_t; error 0 or -errno */
#define ACTOR_MSG_TCP_DATA 0xffff0013u      /* payload: actor_tcp_data_t, then the bytes */
#define ACTOR_MSG_TCP_CLOSED 0xffff0014u    /* payload: actor_tcp_event_t; see below */
#define ACTOR_MSG_TCP_DRAINED 0xffff0015u   /* payload: actor_tcp_event_t; below low water */
#define ACTOR_MSG_TCP_OVERLONG 0xffff0016u  /* payload: actor_tcp_event_t; see framing */
#define ACTOR_MSG_TIMER 0xffff0020u         /* payload: actor_timer_event_t */

typedef struct actor_tcp_event {
	actor_conn_t conn;
	int error;       /* CLOSED: 0 = the peer closed its side (EOF): nothing more will be
	                    read, but the connection stays open for writing until you close it;
	                    else -errno (-ECONNRESET, -EPIPE, ...): it is gone, close it or not;
	                    but -EMSGSIZE (framing: an overlong frame) is like 0: nothing more
	                    will be read, and you may still write before you close.
	                    CONNECTED: 0 or -errno */
	unsigned worker; /* the connection's worker */
} actor_tcp_event_t;

typedef struct actor_tcp_accepted {
	actor_conn_t conn;
	actor_listener_t listener;
	unsigned worker;         /* the worker the connection lives on */
	uint32_t peer_len;       /* bytes of `peer` used */
	unsigned char peer[128]; /* the peer's address: a struct sockaddr_in or sockaddr_in6 */
} actor_tcp_accepted_t;

typedef struct actor_tcp_data {
	actor_conn_t conn;
	uint32_t len;       /* bytes that follow this struct */
	uint32_t reserved_; /* the library's (input flow control) */
} actor_tcp_data_t;

/* The bytes of an ACTOR_MSG_TCP_DATA message. */
static inline const unsigned char *actor_tcp_data_bytes(const actor_msg_t *m)
{
	return (const unsigned char *)actor_msg_data((actor_msg_t *)m) + sizeof(actor_tcp_data_t);
}

typedef struct actor_listen_opts {
	const char
	    *host;      /* numeric IPv4 or IPv6 address or a name; NULL = every IPv6+IPv4 address */
	uint16_t port;  /* 0 = any free port (see actor_tcp_listener_port) */
	int backlog;    /* 0 = SOMAXCONN */
	int per_worker; /* 1 = one SO_REUSEPORT socket per worker */
	/* TLS on every accepted connection, with this server configuration (actor_tls_create,
	 * `server` set; the listener keeps its own reference); NULL = plain TCP. */
	struct actor_tls *tls;
} actor_listen_opts_t;

/* Listens; accepted connections arrive at the calling actor. -EADDRINUSE if the port is
 * taken, -EADDRNOTAVAIL or -EINVAL for a bad address. */
ACTOR_API int actor_tcp_listen(actor_ctx_t *ctx, const actor_listen_opts_t *opts,
                               actor_listener_t *out);
/* The port the listener is bound to. */
ACTOR_API int actor_tcp_listener_port(actor_ctx_t *ctx, actor_listener_t l, uint16_t *port);
/* Stops listening and closes the socket(s): the one on the caller's worker before it returns,
 * so its port can be listened on again at once; with per_worker, the other workers' sockets
 * on those workers' next turn. */
ACTOR_API int actor_tcp_listener_close(actor_ctx_t *ctx, actor_listener_t l);

/* Connects to host:port. ACTOR_MSG_TCP_CONNECTED arrives with the result; on success the caller
 * owns the connection and data follows. A numeric IPv4 or IPv6 address is used as it is. A name
 * is looked up off the worker's way (actor_lookup): the handle comes back at once, and once the
 * answer is in, its addresses are tried in the order given (each connect that fails moves on to
 * the next); CONNECTED reports the first that connects, or the last one's error, or, if the
 * name has no address, -EADDRNOTAVAIL (other lookup errors as actor_lookup gives them:
 * -ETIMEDOUT, -EAGAIN, ...). Until CONNECTED the connection is as one still connecting:
 * writes say -EPIPE, and actor_tcp_close or actor_tcp_abort (or the owner stopping) end it,
 * lookup included, with no message. Built without c-ares (actor_lookup says -ENOSYS), a name
 * is resolved with getaddrinfo on the calling worker, which waits for it, and an unknown name
 * is -EADDRNOTAVAIL at the call. */
ACTOR_API int actor_tcp_connect(actor_ctx_t *ctx, const char *host, uint16_t port,
                                actor_conn_t *out);

typedef struct actor_connect_opts {
	const char *host; /* as actor_tcp_connect */
	uint16_t port;
	/* TLS with this client configuration (actor_tls_create, `server` not set); NULL = plain
	 * TCP. CONNECTED then comes once the TLS handshake is done, or carries its failure
	 * (see "TLS"). */
	struct actor_tls *tls;
	/* The name sent in the handshake (SNI) and checked against the server's certificate;
	 * NULL = `host`. A numeric address is checked as an IP address and not sent. */
	const char *server_name;
} actor_connect_opts_t;

/* actor_tcp_connect with options: -EINVAL also for a `tls` made for servers. */
ACTOR_API int actor_tcp_connect_opts(actor_ctx_t *ctx, const actor_connect_opts_t *opts,
                                     actor_conn_t *out);

/* ---------------------------------------------------------------------------------------------
 * TLS
 *
 * A listener or an outgoing connection given a TLS configuration speaks TLS (1.2 or 1.3, with
 * OpenSSL) to its peer; its owner sees the same messages, the same flow control and the same
 * calls as over plain TCP, with plaintext in ACTOR_MSG_TCP_DATA and actor_tcp_write. The
 * encryption runs on the connection's worker, between the reactor (which moves the encrypted
 * bytes, on either backend) and the connection's framing. Differences:
 * - An accepted connection's handshake runs once the new owner has its ADOPTED message; what
 *   the owner writes before it ends waits, and counts, in the output queue, and still goes out
 *   if the owner closes meanwhile (a refusal, say: the handshake goes on in the close, within
 *   its linger). An outgoing one's CONNECTED comes once the handshake is done.
 * - A handshake that fails ends the connection as a connect or a read error would: CONNECTED
 *   (outgoing) or CLOSED (accepted) with -EKEYREJECTED (the peer's certificate failed
 *   verification) or -EPROTO (any other TLS failure: not TLS, no shared version or cipher,
 *   a bad record).
 * - CLOSED with error 0 means the peer ended its side with TLS's close_notify; an end of the
 *   TCP stream without it is CLOSED with -ECONNABORTED (the data may have been cut short).
 * - actor_tcp_shutdown and actor_tcp_close send close_notify after the queued output.
 * - actor_tcp_queued counts encrypted bytes (about 22 more per 16 KiB record), and plaintext
 *   written before the handshake ended.
 * - actor_file_send is -EOPNOTSUPP on a TLS connection.
 */

typedef struct actor_tls actor_tls_t;

enum actor_tls_verify {
	/* Clients verify the server's certificate against `ca` (or the system's store) and its
	 * name; servers ask for no certificate. */
	ACTOR_TLS_VERIFY_DEFAULT = 0,
	ACTOR_TLS_VERIFY_NONE = 1, /* clients accept any server certificate (testing only) */
	ACTOR_TLS_VERIFY_PEER = 2, /* servers require a client certificate signed by `ca` */
};

typedef struct actor_tls_opts {
	int server;       /* 1 = for listeners: `cert` and `key` are required */
	const char *cert; /* PEM file: the certificate, then its chain */
	const char *key;  /* PEM file: its private key (unencrypted) */
	const char *ca;   /* PEM file of trusted certificates; NULL = the system's (clients) */
	int verify;       /* enum actor_tls_verify */
	/* The protocol versions allowed: ACTOR_TLS_1_2 or ACTOR_TLS_1_3; 0 = 1.2 and 1.3. */
	int min_version, max_version;
} actor_tls_opts_t;

#define ACTOR_TLS_1_2 0x0303
#define ACTOR_TLS_1_3 0x0304

/* Makes a TLS configuration: certificates and keys are read now. From any thread. On failure
 * `why` (if not NULL) gets a line saying what was wrong, with OpenSSL's reason. -ENOENT or
 * -EACCES: a file cannot be read; -EINVAL: bad options, or a file that is not what it should
 * be (not PEM, a key that does not match the certificate); -ENOTSUP: built without OpenSSL. */
ACTOR_API int actor_tls_create(const actor_tls_opts_t *opts, actor_tls_t **out, char *why,
                               size_t why_len);

/* Drops the caller's reference: listeners and connections made with it keep theirs. */
ACTOR_API void actor_tls_free(actor_tls_t *tls);

/* Makes `target` the owner. The caller must own the connection (or be the listener owner of a
 * connection not yet handed off); `target` must live on the connection's worker and stay
 * there (spawned with ACTOR_PLACE_FIXED or `stay`: an actor that may move could leave it), or
 * be the caller itself; -EXDEV otherwise. */
ACTOR_API int actor_tcp_handoff(actor_ctx_t *ctx, actor_conn_t conn, actor_ref_t target);

/* Queues `len` bytes for writing, in order. -ENOBUFS, with nothing queued, while the output
 * queue is above its high-water mark; ACTOR_MSG_TCP_DRAINED follows once it falls below the
 * low-water mark. -EPIPE once the connection is closing. */
ACTOR_API int actor_tcp_write(actor_ctx_t *ctx, actor_conn_t conn, const void *data, size_t len);

/* Bytes waiting in the output queue. */
ACTOR_API int actor_tcp_queued(actor_ctx_t *ctx, actor_conn_t conn, size_t *bytes);

/* Output queue marks, bytes. Defaults: ACTOR_TCP_HIGH_WATER and ACTOR_TCP_LOW_WATER. */
ACTOR_API int actor_tcp_set_watermarks(actor_ctx_t *ctx, actor_conn_t conn, size_t high,
                                       size_t low);
#define ACTOR_TCP_HIGH_WATER (256u << 10)
#define ACTOR_TCP_LOW_WATER (64u << 10)

/* Stops and restarts reading (flow control toward the peer). */
ACTOR_API int actor_tcp_pause(actor_ctx_t *ctx, actor_conn_t conn);
ACTOR_API int actor_tcp_resume(actor_ctx_t *ctx, actor_conn_t conn);

/* Input kept in step with the owner: once more than `bytes` of this connection's data messages
 * are waiting for the owner (sent to it, their behaviour calls not yet returned), reading
 * stops until the owner has handled them down to half of that, so a peer that sends faster
 * than the owner handles meets TCP's flow control instead of filling the owner's mailbox (on
 * io_uring, what the kernel had already received when reading stopped, up to a loop turn's
 * worth, is held by the reactor until reading resumes). A message counts as handled when the
 * behaviour call it was delivered to returns (even if the behaviour kept it) or when it
 * becomes a dead letter. Independent of actor_tcp_pause: reading goes on only when neither
 * holds it. 0 = no limit. Default ACTOR_TCP_READ_LIMIT. */
ACTOR_API int actor_tcp_set_read_limit(actor_ctx_t *ctx, actor_conn_t conn, size_t bytes);
#define ACTOR_TCP_READ_LIMIT (1u << 20)

/* Bytes of this connection's data messages waiting for the owner, counted as above (the
 * message being handled included). */
ACTOR_API int actor_tcp_backlog(actor_ctx_t *ctx, actor_conn_t conn, size_t *bytes);

/* Framing. Without it (the default) a data message carries what one read took, at most
 * ACTOR_TCP_DATA_MAX bytes, cut wherever the reads fell. With framing, each data message
 * carries exactly one frame, however the bytes arrived, without its delimiter or length prefix:
 *   ACTOR_FRAME_LINE: a frame ends at LF; a CR just before the LF goes with it. With
 *     ACTOR_FRAME_CR_ENDS a lone CR ends a frame too (CR, LF and CR LF each end one line, as
 *     IRC wants: a LF right after such a CR is part of the same end).
 *   ACTOR_FRAME_DELIM: a frame ends at `delim` (1 to 8 bytes).
 *   ACTOR_FRAME_LENGTH: each frame is preceded by its length, big-endian, in `length_bytes`
 *     (1, 2 or 4) bytes.
 * A frame longer than `max` bytes ends the input: ACTOR_MSG_TCP_CLOSED with -EMSGSIZE, after
 * which nothing more is read or delivered, but the connection stays open for writing (an error
 * reply, say) until you close it, as after the peer's end.
 * With ACTOR_FRAME_SKIP_OVERLONG it is dropped instead, up to its end, and reported in its
 * place by one ACTOR_MSG_TCP_OVERLONG (error -EMSGSIZE); `skip_max` (0: no limit) bounds the
 * bytes dropped without reaching a frame's end before the input ends anyway (as above). Empty
 * frames are delivered unless ACTOR_FRAME_SKIP_EMPTY. The bytes of an unfinished frame when the
 * peer's end arrives are dropped. Framing applies to every byte not yet delivered, those
 * already read included; setting ACTOR_FRAME_NONE delivers an unfinished frame's bytes at once.
 * -EINVAL for a bad option. */
#define ACTOR_TCP_DATA_MAX (64u << 10)
enum actor_frame_kind {
	ACTOR_FRAME_NONE,
	ACTOR_FRAME_LINE,
	ACTOR_FRAME_DELIM,
	ACTOR_FRAME_LENGTH,
};
#define ACTOR_FRAME_CR_ENDS 1u
#define ACTOR_FRAME_SKIP_EMPTY 2u
#define ACTOR_FRAME_SKIP_OVERLONG 4u
typedef struct actor_tcp_framing {
	int kind;             /* enum actor_frame_kind */
	unsigned flags;       /* ACTOR_FRAME_* */
	uint32_t max;         /* the longest frame; 0 = ACTOR_TCP_DATA_MAX; at most ACTOR_MSG_MAX
	                         less sizeof(actor_tcp_data_t) */
	uint32_t skip_max;    /* with ACTOR_FRAME_SKIP_OVERLONG; 0 = no limit */
	uint8_t length_bytes; /* ACTOR_FRAME_LENGTH */
	uint8_t delim_len;    /* ACTOR_FRAME_DELIM */
	char delim[8];
} actor_tcp_framing_t;
ACTOR_API int actor_tcp_set_framing(actor_ctx_t *ctx, actor_conn_t conn,
                                    const actor_tcp_framing_t *framing);

/* Half-closes: sends FIN once the queued output is written; reading goes on. */
ACTOR_API int actor_tcp_shutdown(actor_ctx_t *ctx, actor_conn_t conn);

/* Closes: queued output is still written, with the FIN after it, and the socket is closed once
 * the peer's kernel has acknowledged all of it, for at most ACTOR_TCP_LINGER_MS; meanwhile what
 * the peer sends is read and discarded. The handle is invalid at once and no further message
 * about it arrives. A system that shuts down (actor_system_shutdown, or its last actor
 * stopping) goes on writing for at most its shutdown_drain_ms (actor_config_t) before it
 * resets what is left. A close that runs out of time with output still queued resets the
 * connection, drops the rest of the output and counts in the worker's closes_reset; one that
 * runs out waiting for the acknowledgement closes the socket and leaves the rest to the kernel.
 * Bytes the peer sends after the socket is closed are answered with a reset, which drops what
 * the peer had not received yet (a peer on Linux still reads what it had; other systems may
 * drop that too): to know the peer has everything, half-close with actor_tcp_shutdown and
 * close when the peer's EOF arrives. */
ACTOR_API int actor_tcp_close(actor_ctx_t *ctx, actor_conn_t conn);
#define ACTOR_TCP_LINGER_MS 5000

/* Closes at once, discarding queued output, and resets the connection (RST). */
ACTOR_API int actor_tcp_abort(actor_ctx_t *ctx, actor_conn_t conn);

/* The peer's address (a struct sockaddr_in or sockaddr_in6) into buf; *len in/out. */
ACTOR_API int actor_tcp_peer(actor_ctx_t *ctx, actor_conn_t conn, void *buf, uint32_t *len);

/* ---------------------------------------------------------------------------------------------
 * Timers
 *
 * A timer lives on the calling actor's worker and sends ACTOR_MSG_TIMER to `target` (any actor)
 * after `delay_ns`, then every `period_ns` if it is not 0, until cancelled or the target stops.
 * Timers with equal deadlines fire in the order they were set. ACTOR_MS(250), ACTOR_SEC(2) and
 * ACTOR_US(500) give the nanoseconds.
 */

#define ACTOR_US(n) ((uint64_t)(n)*1000u)
#define ACTOR_MS(n) ((uint64_t)(n)*1000000u)
#define ACTOR_SEC(n) ((uint64_t)(n)*1000000000u)

typedef struct actor_timer {
	uint64_t id;
} actor_timer_t;

typedef struct actor_timer_event {
	actor_timer_t timer;
	uint64_t tag;         /* the caller's tag */
	uint64_t expirations; /* periodic timers: periods elapsed since the last message (>= 1) */
} actor_timer_event_t;

/* `out` may be NULL for a timer that will never be cancelled. -EINVAL outside a behaviour or
 * for a delay or period over UINT64_MAX / 4; -ESRCH for ACTOR_REF_NONE; -ENOMEM. */
ACTOR_API int actor_timer_start(actor_ctx_t *ctx, actor_ref_t target, uint64_t delay_ns,
                                uint64_t period_ns, uint64_t tag, actor_timer_t *out);
/* Cancels the timer: no ACTOR_MSG_TIMER is sent for it from now on (one already sent may still
 * be in the target's mailbox). Any actor living on the worker that set the timer may cancel it,
 * inside its behaviour: the timer's worker is its own (actor_info's `worker` says which, and an
 * actor that has set a timer never moves). -EXDEV from another worker: send the setter a
 * message and let it cancel. -ESRCH if the timer already fired (one-shot) or was cancelled;
 * -EINVAL outside a behaviour. */
ACTOR_API int actor_timer_cancel(actor_ctx_t *ctx, actor_timer_t timer);

/* ---------------------------------------------------------------------------------------------
 * Name lookups
 *
 * actor_lookup finds the addresses of a host name without blocking the worker: the lookup runs
 * on the calling actor's worker (c-ares, driven by the worker's reactor), and its answer
 * arrives as one ACTOR_MSG_LOOKUP message to the caller. /etc/hosts is read first, then DNS
 * as /etc/resolv.conf and /etc/nsswitch.conf say (c-ares's own reading of them: resolv.conf's
 * nameservers, search domains and timeout/attempts options). A numeric IPv4 or IPv6 address is
 * answered at once, as a message all the same. An actor that has started a lookup stays on its
 * worker from then on (as with a timer). For tests only: the environment variable
 * ACTOR_DNS_SERVERS, read when the system is created, replaces resolv.conf's nameservers with
 * its comma-separated list ("127.0.0.1:5353,[::1]:53").
 */

typedef struct actor_lookup {
	uint64_t id;
} actor_lookup_t;

#define ACTOR_MSG_LOOKUP 0xffff0050u /* payload: actor_lookup_done_t, then the addresses */

/* The most addresses one answer carries; a name with more gives the first this many. */
#define ACTOR_LOOKUP_MAX 16

/* An ACTOR_MSG_LOOKUP payload: the header, then `count` addresses. */
typedef struct actor_lookup_done {
	actor_lookup_t lookup; /* the handle actor_lookup gave */
	uint64_t tag;          /* the caller's tag */
	/* 0, or: -ENOENT the name does not exist or has no IPv4 or IPv6 address; -ETIMEDOUT no
	 * server answered in time; -ECONNREFUSED no server could be reached; -EAGAIN a server
	 * failed to answer (SERVFAIL, REFUSED): try later; -EIO an answer that could not be read;
	 * -ENOMEM. */
	int error;
	uint32_t count; /* addresses that follow: 1 to ACTOR_LOOKUP_MAX if error is 0, else 0 */
	/* Each a struct sockaddr_in or sockaddr_in6 (by ss_family) with the port asked for, in
	 * the order to try them (RFC 6724, as getaddrinfo sorts). connect() takes
	 * sizeof(struct sockaddr_storage) as the length of either. */
	struct sockaddr_storage addrs[];
} actor_lookup_done_t;

/* The header of an ACTOR_MSG_LOOKUP message; its addresses are ->addrs[0 .. count). */
static inline const actor_lookup_done_t *actor_lookup_answer(const actor_msg_t *m)
{
	return (const actor_lookup_done_t *)actor_msg_data((actor_msg_t *)m);
}

/* Looks `host` up; exactly one ACTOR_MSG_LOOKUP follows, with `tag`, unless cancelled. `port`
 * is set in every address (0 is fine). -EINVAL: no ctx or out, a NULL or empty host, or one
 * longer than a DNS name (253 bytes); -ENOSYS: built without c-ares (configure --with-cares);
 * -ENOMEM. An error at the call sends nothing. */
ACTOR_API int actor_lookup(actor_ctx_t *ctx, const char *host, uint16_t port, uint64_t tag,
                           actor_lookup_t *out);

/* Cancels a lookup of the caller's: 0, and no message about it arrives. -ESRCH: its answer
 * was sent already (it may still be waiting in the mailbox) or it was cancelled before; -EXDEV
 * from another worker; -EPERM for another actor's. The DNS query itself runs on and its
 * answer is dropped. An actor that stops cancels its lookups likewise. */
ACTOR_API int actor_lookup_cancel(actor_ctx_t *ctx, actor_lookup_t lookup);

/* ---------------------------------------------------------------------------------------------
 * Blocking work
 *
 * A call that blocks (a name lookup, a file operation, a database client's request, a long
 * computation) must not run in a behaviour: it would stall every actor on the worker. Submit it
 * to a pool instead. It runs on one of the pool's threads, and its result comes back to the
 * submitting actor as one ACTOR_MSG_JOB_DONE message, which carries the tag given at submission.
 *
 * Pools have names and sizes of their own, so that one kind of work cannot starve another:
 * lookups, a database client and CPU work each in a pool of its own. The "default" pool has
 * actor_config_t.pool_threads threads; actor_pool_create adds others. A pool starts one thread
 * as it is created and more as its queue needs them, up to its size, and keeps them until the
 * system is freed; an idle thread sleeps. The jobs submitted on one worker wait for a thread in
 * the order they were submitted. (A worker hands a pool the first job its actors submit to it in
 * a turn of the worker's loop at once, and the others of that turn together at its end.)
 *
 * Exactly one ACTOR_MSG_JOB_DONE follows each successful actor_job_submit, unless the actor
 * stops first. An actor with jobs in flight stays on its worker (it never moves, as with a
 * timer) until the last of those messages has reached its behaviour.
 *
 * When the submitting actor stops, its jobs not started yet are cancelled and its running jobs
 * finish: neither sends a message (the actor is gone); both count in the worker's jobs_dropped,
 * and `drop` (actor_job_opts_t), if given, is called with their `arg`. A JOB_DONE already sent
 * to an actor that then stops is a dead letter like any other message.
 *
 * Shutdown: once a worker's actors have all stopped, the worker waits for its jobs still
 * running, for at most shutdown_drain_ms (actor_config_t), as it does for closing connections.
 * actor_system_free then tells every pool thread to stop, drops the jobs still queued, and waits
 * up to ACTOR_POOL_STOP_MS for the threads still running a job. It returns after that even if
 * some still are: such a thread finishes its job, calls its `drop`, and exits, touching nothing
 * of the freed system. Its function and `arg` must stay valid until then (the process exiting
 * ends it too).
 */

#define ACTOR_MSG_JOB_DONE 0xffff0030u /* payload: actor_job_done_t */

/* Runs on a pool thread, with the `arg` given to actor_job_submit: a result, >= 0, or a
 * negative errno value. It may block. It must not use the actor's ctx or state (it runs beside
 * the actor's behaviour); it may send messages with actor_send, as any thread outside the
 * workers may, until the system is freed. */
typedef int64_t actor_job_fn(void *arg);

typedef struct actor_job {
	uint64_t id;
} actor_job_t;

typedef struct actor_job_opts {
	const char *pool; /* the pool's name; NULL = "default" */
	uint64_t tag;     /* returned in the ACTOR_MSG_JOB_DONE */
	/* Optional: called with `arg` when the job's result will never be sent, because its actor
	 * stopped first or the system was freed: on the worker, or on the pool thread that ran
	 * it, never while the job runs. Frees what `arg` holds, for instance. */
	void (*drop)(void *arg);
} actor_job_opts_t;

typedef struct actor_job_done {
	actor_job_t job; /* as actor_job_submit returned it */
	uint64_t tag;    /* opts->tag */
	int64_t result;  /* what the function returned, or -ECANCELED (actor_job_cancel) */
	void *arg;       /* the function's argument */
} actor_job_done_t;

#define ACTOR_POOL_THREADS_DEFAULT 4 /* as libuv's thread pool */
#define ACTOR_POOL_THREADS_MAX 1024
#define ACTOR_POOL_NAME_MAX 63  /* bytes of a pool's name, at most */
#define ACTOR_POOL_STOP_MS 1000 /* actor_system_free's wait for running jobs (above) */

/* Runs fn(arg) on a thread of pool opts->pool (NULL opts: the default pool, tag 0). Inside a
 * behaviour only. *out names the job for actor_job_cancel and in its ACTOR_MSG_JOB_DONE.
 * -EINVAL: a NULL ctx, fn or out, or not called from inside the ctx's behaviour; -ENOENT: no
 * pool of that name; -ENOMEM; -ESHUTDOWN: the system is shutting down. */
ACTOR_API int actor_job_submit(actor_ctx_t *ctx, const actor_job_opts_t *opts, actor_job_fn *fn,
                               void *arg, actor_job_t *out);

/* Cancels a job that has not started: 0, and its ACTOR_MSG_JOB_DONE is sent at once, with result
 * -ECANCELED; its function never runs. -EBUSY: it is running (or has just finished), and its
 * ACTOR_MSG_JOB_DONE comes as usual. -ESRCH: its ACTOR_MSG_JOB_DONE was already sent, or the job
 * is unknown. Inside a behaviour of an actor on the worker that submitted it (any actor there):
 * -EXDEV from another worker; -EINVAL outside a behaviour. */
ACTOR_API int actor_job_cancel(actor_ctx_t *ctx, actor_job_t job);

/* Adds a pool named `name` (copied; 1 to ACTOR_POOL_NAME_MAX bytes) of at most `threads`
 * threads (1 to ACTOR_POOL_THREADS_MAX), and starts its first thread. From any thread, before or
 * while the system runs. -EEXIST: a pool of that name exists ("default" always does); -EINVAL:
 * bad arguments; -ENOMEM; -EAGAIN: no thread could be started. */
ACTOR_API int actor_pool_create(actor_system_t *sys, const char *name, unsigned threads);

/* ---------------------------------------------------------------------------------------------
 * Files
 *
 * Regular files without blocking the worker: each call starts one operation and returns at
 * once; its result arrives later as one ACTOR_MSG_FILE message to the calling actor, with the
 * tag given to the call. On io_uring the worker's own ring does the work (the kernel reads into
 * and writes from the caller's buffer); under epoll, or where io_uring was refused, a thread
 * of the internal pool "files" (ACTOR_FILE_THREADS threads; not shared with lookups or
 * actor_job_submit's jobs) makes the same system calls, with the same messages.
 *
 * Exactly one ACTOR_MSG_FILE follows each call that returned 0; a call that failed (a negative
 * errno at the call) sends nothing. Errors of the operation itself (-ENOENT, -EACCES, -EISDIR,
 * -ENOSPC, ...) arrive as the message's `result`.
 *
 * A file belongs to the actor that opened it, on that actor's worker: only that actor may use
 * the handle (-EPERM for another actor, -EXDEV from another worker, -EBADF for a handle that was
 * closed or never opened). An actor that has called any file function stays on its worker from
 * then on (as with a timer). When it stops, its files are closed: operations not started yet
 * never run, those running finish and their results are dropped (counted in the worker's
 * file_ops_dropped).
 *
 * Buffers are the caller's: nothing is copied. The buffer given to actor_file_read or
 * actor_file_write must stay valid and untouched until the operation's ACTOR_MSG_FILE arrives,
 * or, if the actor stops first, until the system is freed (an operation already running cannot
 * be called back; keep such buffers out of the state the destroy callback frees, or stop the
 * actor only once its operations have answered).
 *
 * Order: operations on one file run concurrently (a queue depth of 32 reads is 32 reads in the
 * kernel at once), except that
 *   - a sync starts once every write submitted before it on that file has completed, and the
 *     operations submitted after it wait for it;
 *   - appends (ACTOR_FILE_APPEND) to one file run one at a time, in the order submitted;
 *   - a close starts once everything submitted before it on that file has completed;
 *   - on the pool path, writes to one file (unless it was opened with O_DIRECT) run one at a
 *     time, in the order submitted, on one thread: a file's writes take its inode lock anyway,
 *     and one thread going from one to the next beats two threads taking turns (io_uring's
 *     own threads do the same with buffered writes).
 * Messages arrive in the order the operations complete.
 */

typedef struct actor_file {
	uint64_t id;
} actor_file_t;

#define ACTOR_MSG_FILE 0xffff0040u /* payload: actor_file_done_t */

enum actor_file_op {
	ACTOR_FILE_OPEN = 1,
	ACTOR_FILE_READ,
	ACTOR_FILE_WRITE,
	ACTOR_FILE_SYNC,
	ACTOR_FILE_STAT,
	ACTOR_FILE_CLOSE,
	ACTOR_FILE_SEND,
};

/* actor_file_write's offset: write at the file's position, which then advances, as write(2)
 * does; for a file opened with O_APPEND, at its end. */
#define ACTOR_FILE_APPEND (-1)

/* The most bytes one read or write moves (Linux's own limit for one call). */
#define ACTOR_FILE_IO_MAX 0x7ffff000u

#define ACTOR_FILE_THREADS 4 /* threads of the "files" pool, as libuv's thread pool */

typedef struct actor_file_done {
	actor_file_t file; /* the file (ACTOR_FILE_OPEN: the new handle, if result is 0) */
	uint64_t tag;      /* the call's tag */
	int op;            /* enum actor_file_op */
	/* OPEN, SYNC, STAT, CLOSE: 0 or a negative errno. READ: bytes read, 0 at the end of the
	 * file, fewer than asked only at the end of the file (or on an error after some bytes).
	 * WRITE: bytes written (all of them unless the disk filled up), or a negative errno. */
	int64_t result;
	void *buf;      /* READ, WRITE: the caller's buffer */
	struct stat st; /* STAT: what fstat(2) says */
} actor_file_done_t;

/* Opens `path` (copied) with open(2)'s `flags` (O_CLOEXEC is added) and `mode`. The handle
 * arrives in the ACTOR_MSG_FILE. -EINVAL: a NULL ctx or path, or outside a behaviour; -ENOMEM;
 * -ESHUTDOWN: the system is shutting down. */
ACTOR_API int actor_file_open(actor_ctx_t *ctx, const char *path, int flags, unsigned mode,
                              uint64_t tag);

/* Reads up to `len` bytes at `offset` (>= 0) into `buf`. -EINVAL also for a NULL buf with len
 * > 0, len > ACTOR_FILE_IO_MAX, a negative offset; -EBADF, -EPERM, -EXDEV (above). */
ACTOR_API int actor_file_read(actor_ctx_t *ctx, actor_file_t file, void *buf, size_t len,
                              int64_t offset, uint64_t tag);

/* Writes `len` bytes of `buf` at `offset` (>= 0), or with ACTOR_FILE_APPEND (above). Errors as
 * actor_file_read. */
ACTOR_API int actor_file_write(actor_ctx_t *ctx, actor_file_t file, const void *buf, size_t len,
                               int64_t offset, uint64_t tag);

/* fsync(2), or fdatasync(2) if `datasync`, once the writes submitted before it are done. */
ACTOR_API int actor_file_sync(actor_ctx_t *ctx, actor_file_t file, int datasync, uint64_t tag);

/* fstat(2): the answer is in the message's `st`. */
ACTOR_API int actor_file_stat(actor_ctx_t *ctx, actor_file_t file, uint64_t tag);

/* Closes the file once what was submitted before is done. The handle is invalid at once (later
 * calls: -EBADF); the ACTOR_MSG_FILE of the close comes after those of the earlier operations.
 * Its result is close(2)'s: the descriptor is closed whatever it says. */
ACTOR_API int actor_file_close(actor_ctx_t *ctx, actor_file_t file, uint64_t tag);

/* Sends `len` bytes of the file from `offset` on the connection `conn`, both the caller's, with
 * sendfile(2) from the connection's worker: nothing is copied through user space. The bytes go
 * out in order with what the caller writes to the connection before and after the call (they
 * hold no memory, so they count neither in actor_tcp_queued nor against the high-water
 * mark; the file is read as it is when each part goes out).
 * One ACTOR_MSG_FILE (op ACTOR_FILE_SEND) follows, once every byte is in the kernel: result
 * `len`, or -EPIPE if the connection ended first (a reset or other socket error, an abort, a
 * close that ran out of time), or the file's read error (-ENODATA: the file ended before `len`
 * bytes). An error mid-send also fails the connection, as the peer would otherwise read what
 * follows in the file's place: ACTOR_MSG_TCP_CLOSED with the file's error, or the socket's own
 * (-ECONNRESET, ...). An empty range (len 0) is checked as any other, the connection included,
 * and answered at once with 0. A close of the file waits for its sends, and its message comes
 * after theirs. When the owner stops, its connection's close still sends what was queued, the
 * file's bytes included (their answer is dropped), and the file is closed once they are out.
 * -EINVAL: a negative offset, len > ACTOR_FILE_IO_MAX, offset + len past INT64_MAX; -EBADF also
 * for a file not opened for reading; -EOPNOTSUPP: a TLS connection (sendfile would put the
 * file's bytes on the wire unencrypted); -EPIPE: the connection is not open (it failed, or is
 * still connecting) or was shut down for writing; the errors of actor_file_read for the file
 * and of actor_tcp_write for the connection (-ESRCH once it was closed). An error at the call
 * sends nothing and leaves the connection as it was. */
ACTOR_API int actor_file_send(actor_ctx_t *ctx, actor_file_t file, int64_t offset, size_t len,
                              actor_conn_t conn, uint64_t tag);

/* ---------------------------------------------------------------------------------------------
 * Requests
 *
 * A request is a message that expects one answer. The receiver gets it as an ordinary message
 * of the requester's type with the requester's payload (one behaviour serves requests and plain
 * sends alike); actor_request_of tells it that the message is a request, and actor_reply
 * answers it. The requester gets exactly one ACTOR_MSG_REPLY per request it made, unless it
 * cancels the request or stops first: the payload (actor_reply_t) names the request (the id
 * actor_request returned) and carries the requester's own tag, so replies arriving in any order
 * from many receivers are matched without numbering them by hand. Its `error` says how the
 * request ended:
 *   0           answered: the reply's type, length and bytes follow (actor_reply_data);
 *   -ETIMEDOUT  its timeout (actor_request_opts_t) ran out first;
 *   -ESRCH      the receiver stopped before answering: the request was dead-lettered, or the
 *               receiver stopped in the turn that got it, or while it kept it
 *               (actor_request_keep); told at once, not at the timeout;
 *   -ENOMSG     the receiver's behaviour returned from the request without answering,
 *               keeping or forwarding it (passing the message on with actor_send_msg passes the
 *               payload on, not the request: actor_request_forward passes the request on).
 * An answer's sender is the actor that answered (for -ESRCH and -ENOMSG, the receiver); a
 * timeout's is ACTOR_REF_NONE. The timeout runs on the requester's worker. An answer that comes
 * after the request ended (timed out, cancelled, or its requester stopped) is dropped, never
 * delivered (to no other actor either: references are generation-checked), and counted in the
 * requester's worker's replies_dropped (the replier's worker's, if the requester had stopped
 * by then); such a reply is not a dead letter. The answering call still returns 0: the replier
 * cannot know.
 *
 * An actor with requests pending (or the notice of a timeout on its way to it), or with kept
 * requests it has not answered, stays on its worker (it never moves, as with a timer) until
 * they are done. When it stops, its pending requests are cancelled (their answers dropped and
 * counted) and its kept ones are answered with -ESRCH.
 *
 * Order: a request travels as one message among the sender's others: requests and plain sends
 * from one sender to one receiver arrive in the order sent. Replies are messages from the
 * replier to the requester, in order with that replier's other messages to it.
 */

#define ACTOR_MSG_REPLY 0xffff0060u /* payload: actor_reply_t, then the reply's bytes */

/* A request, as its requester knows it. */
typedef struct actor_request {
	uint64_t id;
} actor_request_t;

typedef struct actor_request_opts {
	uint64_t timeout_ns; /* 0 = none: the request waits for its answer or its receiver's stop */
	uint64_t tag;        /* returned in the ACTOR_MSG_REPLY */
} actor_request_opts_t;

typedef struct actor_reply {
	actor_request_t request; /* as actor_request returned it */
	uint64_t tag;            /* opts->tag */
	int32_t error;           /* 0, -ETIMEDOUT, -ESRCH or -ENOMSG (above) */
	uint32_t type;           /* error 0: the type the replier gave */
	uint32_t len;            /* error 0: the reply's bytes, right after this header */
	uint32_t reserved_;
} actor_reply_t;

/* The reply's bytes. */
static inline void *actor_reply_data(actor_reply_t *r)
{
	return (void *)(r + 1);
}

/* A request the receiver kept to answer later (actor_request_keep). */
typedef struct actor_reply_handle {
	uint64_t id;
} actor_reply_handle_t;

/* Sends `len` bytes of `data` to `to` as a message of type `type`, as a request; *out names it
 * in its ACTOR_MSG_REPLY and for actor_request_cancel. Inside a behaviour only. -EINVAL: a NULL
 * ctx or out, NULL data with len > 0, a type >= ACTOR_MSG_SYSTEM, a timeout over UINT64_MAX / 4,
 * or not called from inside the ctx's behaviour; -EMSGSIZE: len over ACTOR_MSG_MAX; -ESRCH: the
 * receiver has stopped, or `to` names no actor; -EAGAIN: the receiver's bounded mailbox is full
 * (as for actor_send: one ACTOR_MSG_WRITABLE follows when it has room); -ENOMEM. A request that
 * failed sends nothing and gets no ACTOR_MSG_REPLY. */
ACTOR_API int actor_request(actor_ctx_t *ctx, actor_ref_t to, uint32_t type, const void *data,
                            size_t len, const actor_request_opts_t *opts, actor_request_t *out);

/* Cancels a pending request of the calling actor: 0, and no ACTOR_MSG_REPLY comes for it (an
 * answer already on its way is dropped and counted). -ESRCH: it has ended (its ACTOR_MSG_REPLY,
 * or the notice of its timeout, is sent), or it is unknown; -EPERM: another actor's request;
 * -EXDEV: made on another worker; -EINVAL: outside a behaviour. */
ACTOR_API int actor_request_cancel(actor_ctx_t *ctx, actor_request_t req);

/* Inside a behaviour: 1 if the current message is a request still to be answered (*out, if not
 * NULL, gets the id its requester knows it by; the requester is actor_sender), 0 if it is not
 * a request or was answered or kept already; -EINVAL outside a behaviour. */
ACTOR_API int actor_request_of(const actor_ctx_t *ctx, actor_request_t *out);

/* Answers the current message's request with `len` bytes of `data` and the user's `type`: the
 * requester gets them in an ACTOR_MSG_REPLY with error 0, sent by the calling actor. One answer
 * per request: -EINVAL if the current message is not a request, or it was answered or kept
 * already; also for a NULL ctx, NULL data with len > 0, a type >= ACTOR_MSG_SYSTEM, or outside
 * the ctx's behaviour. -EMSGSIZE: len over ACTOR_MSG_MAX - sizeof(actor_reply_t); -ENOMEM (the
 * request is still to be answered). 0 also if the request has ended meanwhile or its requester
 * stopped: the answer is then dropped and counted (above). */
ACTOR_API int actor_reply(actor_ctx_t *ctx, uint32_t type, const void *data, size_t len);

/* Keeps the current message's request, to be answered in a later turn with actor_reply_to
 * (after asking another actor, say). The keeping actor stays on its worker until it has
 * answered each request it keeps; if it stops first, their requesters get -ESRCH. -EINVAL: as
 * actor_reply (not a request, answered or kept already, outside a behaviour, NULL out); -ENOMEM.
 */
ACTOR_API int actor_request_keep(actor_ctx_t *ctx, actor_reply_handle_t *out);

/* Answers a kept request, as actor_reply does. From the behaviour of the actor that kept it,
 * in any later turn (or the same one). -EINVAL: a NULL ctx or h, a request answered already (or
 * never kept), the arguments actor_reply refuses, or outside a behaviour; -EPERM: another actor
 * kept it; -EXDEV: it was kept on another worker; -EMSGSIZE; -ENOMEM (still to be answered). */
ACTOR_API int actor_reply_to(actor_ctx_t *ctx, const actor_reply_handle_t *h, uint32_t type,
                             const void *data, size_t len);

/* Passes the current message's request on to `to`, with `msg` as its message: the current
 * message itself (as actor_send_msg forwards it) or another the caller owns, of a user type.
 * `to` then holds the request as if the requester had sent it there: it answers, keeps,
 * forwards again or fails it by the rules above, and the answer goes straight to the requester
 * (a router or a registry steps out of the way, as gen_server's reply to a passed-on From
 * does). The requester's timeout still runs on its own worker. Inside `to`'s behaviour
 * actor_sender is the actor that forwarded it; the requester is told only through the answer.
 * 0: the request is no longer the caller's (actor_request_of says 0, and nothing answers it
 * when the behaviour returns) and `msg` is `to`'s. On failure both stay the caller's, as they
 * were: -EINVAL: the current message is not a request, or was answered, kept or forwarded
 * already, NULL msg, a type >= ACTOR_MSG_SYSTEM, or outside the ctx's behaviour; -EMSGSIZE;
 * -ESRCH: `to` has stopped or names no actor; -EAGAIN: `to`'s bounded mailbox is full (one
 * ACTOR_MSG_WRITABLE follows); -ENOMEM. Order: as a request, among the caller's messages to
 * `to`. */
ACTOR_API int actor_request_forward(actor_ctx_t *ctx, actor_ref_t to, actor_msg_t *msg);

/* Passes a kept request (actor_request_keep) on to `to` with `msg`, as actor_request_forward
 * does the current one: from the keeper's behaviour, in any later turn. 0: the handle is spent
 * and `msg` is `to`'s. -EINVAL: a NULL ctx, h or msg, a handle answered or forwarded already (or
 * never kept), a type >= ACTOR_MSG_SYSTEM, or outside a behaviour; -EPERM: another actor kept
 * it; -EXDEV: kept on another worker; -EMSGSIZE; -ESRCH; -EAGAIN; -ENOMEM: on failure the
 * request is still kept and `msg` still the caller's. */
ACTOR_API int actor_request_forward_kept(actor_ctx_t *ctx, const actor_reply_handle_t *h,
                                         actor_ref_t to, actor_msg_t *msg);

/* From a thread outside the pool (main, a test, a thread of the program's own): sends a request
 * to `to` and blocks the calling thread until its answer, for at most `timeout_ns` (0: no
 * limit). 0: answered; *reply is then the ACTOR_MSG_REPLY (actor_reply_t, error 0, then the
 * bytes), the caller's to free with actor_msg_free. Otherwise *reply is NULL and the result
 * says why: -ETIMEDOUT; -ESRCH: `to` had stopped, names no actor, or stopped before answering;
 * -ENOMSG: the receiver did not answer (above); -ESHUTDOWN: the system is shutting down (at the
 * call, or while waiting); -EDEADLK: called on a worker thread, which must never block (send a
 * request with actor_request there); -EINVAL: a NULL sys or reply, NULL data with len > 0, a
 * type >= ACTOR_MSG_SYSTEM, a timeout over UINT64_MAX / 4; -EMSGSIZE; -ENOMEM. The request is sent by a hidden actor that the
 * call spawns and that stops once the request has ended; nothing is left behind when the call
 * times out before the answer comes, or returns -ESHUTDOWN. */
ACTOR_API int actor_request_wait(actor_system_t *sys, actor_ref_t to, uint32_t type,
                                 const void *data, size_t len, uint64_t timeout_ns,
                                 actor_msg_t **reply);

/* ---------------------------------------------------------------------------------------------
 * Broker: NATS and JetStream
 *
 * A system may connect to a NATS cluster (configure --with-nats, libnats; -ENOSYS without it),
 * so that its actors reach actors of other processes and hosts through subjects: subscriptions
 * deliver ordinary messages, publishes go out from behaviours, requests over NATS end as
 * ACTOR_MSG_REPLY as local requests do, and JetStream (the servers' replicated streams) adds
 * publishes acknowledged once stored, durable consumers and key-value claims.
 *
 * Threads. libnats runs threads of its own (reading the socket, flushing, reconnecting,
 * delivering, timers). None of them runs a behaviour: each callback of theirs only copies what
 * arrived into a message and sends it to the actor it is for, as any thread outside the pool
 * may, so behaviours still run only on their workers, one message at a time. A publish from a
 * behaviour writes into the connection's buffer, which libnats's flusher thread writes out;
 * it waits only for the connection's lock, or, when the socket's buffer is full (a server that
 * stopped reading), for the socket, at most the write deadline (then the connection is
 * dropped and made again). Calls that would wait for an answer (JetStream publishes, key-value
 * calls, creating a consumer) are sent as requests and answered by messages: no behaviour
 * waits for the network. The calls that set things up and do wait (actor_broker_connect,
 * actor_broker_stream_add, actor_broker_kv_add) are for a thread outside the pool (main, before
 * or while the system runs); on a worker they return -EDEADLK.
 *
 * Subjects are NATS subjects ("chat.line.x"; "*" and ">" as wildcards in subscriptions):
 * 1 to ACTOR_BROKER_SUBJECT_MAX bytes, no spaces or control characters, no empty token;
 * -EINVAL otherwise.
 *
 * One connection per system; it reconnects by itself to any server of the list (and those the
 * cluster announces) after a loss. While it is down, publishes are buffered (up to
 * pending_max bytes, then refused with -EAGAIN), subscriptions are made again on reconnection,
 * and messages published by others meanwhile are lost to core subscriptions (NATS core is at
 * most once) but not to JetStream consumers, which resume where they were.
 */

#define ACTOR_MSG_BROKER 0xffff0070u          /* a subscription's message: actor_broker_msg_t */
#define ACTOR_MSG_BROKER_ACK 0xffff0071u      /* a reply's type (below): actor_broker_ack_t */
#define ACTOR_MSG_BROKER_STATUS 0xffff0072u   /* the connection's state: actor_broker_status_t */
#define ACTOR_MSG_BROKER_WRITABLE 0xffff0073u /* a refused publish may be tried again; no payload */

#define ACTOR_BROKER_SUBJECT_MAX 255 /* bytes of a subject, at most */

typedef struct actor_broker_opts {
	/* The servers, comma-separated: "nats://10.0.0.1:4222,nats://10.0.0.2:4222" (a URL may
	 * carry "user:password@"). Required. */
	const char *servers;
	const char *name; /* the connection's name in the servers' monitoring; NULL: "libactor" */
	uint32_t connect_timeout_ms; /* per server tried; 0: 2000 */
	uint32_t reconnect_wait_ms;  /* before trying a server again; 0: 500 */
	/* Attempts per server after a loss before giving up (the connection is then closed for
	 * good: ACTOR_BROKER_CLOSED); 0: never give up. */
	uint32_t max_reconnect;
	uint32_t write_deadline_ms;  /* see Threads above; 0: 2000 */
	size_t pending_max;          /* bytes of publishes buffered while disconnected; 0: 8 MiB */
	/* JetStream publishes and key-value calls in flight at once, system-wide; more are refused
	 * with -EAGAIN (one ACTOR_MSG_BROKER_WRITABLE follows). 0: 4096. */
	uint32_t js_max_inflight;
	/* 0 (default): publishes gather in the connection's buffer, which libnats's flusher
	 * writes out up to 1 ms after the first: throughput, at up to 1 ms more per hop. 1: each
	 * publish is written at once, a system call each: latency. bench/broker on 2 CPUs: 4x the
	 * messages per second batched, a fifth of the round trip at once (bench/README.md). */
	int write_at_once;
} actor_broker_opts_t;

/* Connects the system to the servers, trying each in turn, and returns once connected (or
 * failing). From a thread outside the pool. -EINVAL: NULL sys, opts or servers, or a malformed
 * list; -EALREADY: connected already (or closed: a system connects once); -EDEADLK: on a
 * worker; -ENOSYS: built without libnats; -ECONNREFUSED: no server could be reached;
 * -ENOMEM; -EPROTO: another failure of libnats (its text goes to stderr). */
ACTOR_API int actor_broker_connect(actor_system_t *sys, const actor_broker_opts_t *opts);

/* Flushes what was published (for at most `timeout_ms`) and closes the connection: its
 * subscriptions end, requests in flight end with -ECONNRESET, later calls get -ENOTCONN.
 * From a thread outside the pool; actor_system_free closes it too, without flushing.
 * -EINVAL, -EDEADLK, -ENOTCONN (never connected, or closed already). */
ACTOR_API int actor_broker_close(actor_system_t *sys, uint32_t timeout_ms);

enum actor_broker_state {
	ACTOR_BROKER_CONNECTED = 1,    /* connected (again, after ACTOR_BROKER_DISCONNECTED) */
	ACTOR_BROKER_DISCONNECTED = 2, /* lost; reconnecting */
	ACTOR_BROKER_CLOSED = 3,       /* for good: closed, or reconnection gave up */
};

typedef struct actor_broker_status {
	int32_t state;     /* enum actor_broker_state */
	uint32_t reserved_;
	char server[128];  /* CONNECTED: the server's URL, NUL-terminated (cut if longer) */
} actor_broker_status_t;

/* on = 1: the calling actor gets an ACTOR_MSG_BROKER_STATUS at each change of the connection's
 * state from now on, and one at once with the state it is in. on = 0: no more of them. Inside a
 * behaviour. -EINVAL: bad arguments; -ENOTCONN: never connected; -ENOMEM. An actor that stops
 * stops watching. */
ACTOR_API int actor_broker_watch(actor_ctx_t *ctx, int on);

typedef struct actor_broker_sub {
	uint64_t id;
} actor_broker_sub_t;

/* An ACTOR_MSG_BROKER payload: this header, then the subject, the reply subject (empty if
 * none), the headers and the data (accessors below). */
typedef struct actor_broker_msg {
	actor_broker_sub_t sub; /* the subscription or consumer it came through */
	uint64_t tag;           /* the tag given at subscription */
	/* Messages of this subscription dropped, since the previous one that arrived, because
	 * max_pending of them were waiting for the actor (NATS core drops the same way). */
	uint64_t dropped;
	uint64_t stream_seq; /* from a consumer: its sequence in the stream; else 0 */
	uint32_t delivered;  /* from a consumer: 1 the first time, more on redeliveries; else 0 */
	uint32_t subject_len, reply_len; /* bytes, without the NUL each is followed by */
	uint32_t headers_len;            /* bytes of the headers: "name\0value\0" pairs */
	uint32_t data_len;
	uint32_t reserved_;
	uint64_t internal_; /* the library's */
	char bytes[];
} actor_broker_msg_t;

static inline const char *actor_broker_subject(const actor_broker_msg_t *m)
{
	return m->bytes;
}
/* The reply subject: "" if none. */
static inline const char *actor_broker_reply_subject(const actor_broker_msg_t *m)
{
	return m->bytes + m->subject_len + 1;
}
static inline const void *actor_broker_data(const actor_broker_msg_t *m)
{
	return m->bytes + m->subject_len + 1 + m->reply_len + 1 + m->headers_len;
}
/* The payload of an ACTOR_MSG_BROKER message (or of a reply of that type: actor_reply_data). */
static inline actor_broker_msg_t *actor_broker_msg(actor_msg_t *m)
{
	return (actor_broker_msg_t *)actor_msg_data(m);
}

/* The first value of header `name` (compared without case), NUL-terminated, or NULL. */
ACTOR_API const char *actor_broker_header(const actor_broker_msg_t *m, const char *name);

typedef struct actor_broker_sub_opts {
	const char *queue;    /* a queue group: each message goes to one member; NULL: none */
	uint64_t tag;         /* in each message */
	uint32_t max_pending; /* messages waiting for the actor before more are dropped; 0: 65536 */
} actor_broker_sub_opts_t;

/* Subscribes the calling actor to `subject` (wildcards allowed): each message published on it
 * from then on arrives as one ACTOR_MSG_BROKER, in the order the server sent them. Messages
 * waiting for the actor count against opts->max_pending, not against its mailbox's capacity
 * (the library's messages are never refused); past it they are dropped and counted in the next
 * message's `dropped`. An actor with subscriptions stays on its worker, as with a timer; when
 * it stops they end. Inside a behaviour. -EINVAL: bad arguments or subject; -ENOTCONN: never
 * connected, or closed; -ENOMEM; -EPROTO (libnats). */
ACTOR_API int actor_broker_subscribe(actor_ctx_t *ctx, const char *subject,
                                     const actor_broker_sub_opts_t *opts, actor_broker_sub_t *out);

/* Ends a subscription (or consumer) of the calling actor: no message of it arrives after the
 * call returns, not even one already in the mailbox. -ESRCH: unknown or ended; -EPERM: another
 * actor's; -EXDEV: another worker's (an actor with subscriptions stays on its worker, so one on
 * another worker is another actor's); -EINVAL: outside a behaviour. A durable consumer stays on the server (its position
 * with it); only this process stops taking its messages. */
ACTOR_API int actor_broker_unsubscribe(actor_ctx_t *ctx, actor_broker_sub_t sub);

typedef struct actor_broker_header {
	const char *name;  /* a header name: printable ASCII without ':' or spaces */
	const char *value; /* no CR or LF */
} actor_broker_header_t;

/* A message to publish. */
typedef struct actor_broker_pub {
	const char *subject;                  /* no wildcards */
	const char *reply;                    /* a reply subject, or NULL */
	const actor_broker_header_t *headers; /* nheaders of them, or NULL */
	size_t nheaders;
	const void *data;
	size_t len; /* up to the servers' max_payload (1 MiB by default; -EMSGSIZE past it) */
	/* actor_broker_js_publish only: the Nats-Msg-Id the stream deduplicates on (a publish
	 * sent again with the same id is stored once); NULL: none (see the retries below). */
	const char *msg_id;
} actor_broker_pub_t;

/* Publishes `pub` (NATS core: at most once). Inside a behaviour. 0: queued for the server, in
 * order with the caller's other publishes. -EAGAIN: the connection is down and its buffer
 * holds pending_max bytes: nothing was published, and one ACTOR_MSG_BROKER_WRITABLE follows
 * once it is up again. -EINVAL: bad arguments (subject, header, NULL data with len > 0);
 * -EMSGSIZE; -ENOTCONN: never connected, or closed; -ENOMEM; -EPROTO. */
ACTOR_API int actor_broker_publish(actor_ctx_t *ctx, const actor_broker_pub_t *pub);

/* Sends `pub` as a NATS request: its reply subject is the library's, and the first message
 * published on it ends the request. The calling actor then gets one ACTOR_MSG_REPLY (see
 * "Requests", whose rules hold: opts->timeout_ns, opts->tag, actor_request_cancel, the actor
 * stays on its worker meanwhile) with error 0 and a reply of type ACTOR_MSG_BROKER whose bytes
 * are an actor_broker_msg_t (sub 0, tag 0); or -ETIMEDOUT; or -ESRCH: no subscriber to the
 * subject (the servers said so at once); or -ECONNRESET: the connection was closed. pub->reply
 * must be NULL. Errors at the call: those of actor_broker_publish, and of actor_request. A
 * request without a timeout whose answer never comes keeps a small record until the connection
 * closes, cancelled or not: give requests over the network a timeout. */
ACTOR_API int actor_broker_request(actor_ctx_t *ctx, const actor_broker_pub_t *pub,
                                   const actor_request_opts_t *opts, actor_request_t *out);

/* What JetStream said: the bytes of a reply of type ACTOR_MSG_BROKER_ACK. */
typedef struct actor_broker_ack {
	/* 0: stored (a publish), created (a consumer, a key), deleted (a key). Otherwise:
	 * -EEXIST: a key-value create found the key; -ENOENT: no such stream or bucket (a key-value
	 * delete, a consumer); -EINVAL: the servers refused the request (api_code says why);
	 * -ETIMEDOUT: no answer within the request's time, retries included (a publish to a subject
	 * that no stream captures ends so: the servers answer it as they do while a stream has no
	 * leader). */
	int32_t error;
	uint32_t api_code; /* JetStream's err_code when error is -EINVAL or -EEXIST, else 0 */
	uint64_t seq;      /* a publish or key-value create: the message's sequence in the stream */
	uint32_t duplicate; /* a publish: 1 if the stream had it already (same msg_id) */
	uint32_t reserved_;
	char stream[64]; /* the stream's name, NUL-terminated */
} actor_broker_ack_t;

/* Publishes `pub` to the JetStream stream that captures its subject, and asks for the stream's
 * acknowledgement: the calling actor gets one ACTOR_MSG_REPLY whose error is 0 and whose reply
 * (type ACTOR_MSG_BROKER_ACK, bytes actor_broker_ack_t) says stored (with its sequence; a
 * stored message survives the loss of a minority of a replicated stream's servers), or why
 * not. Retries, until opts->timeout_ns (0: 10 s) has passed, when the ack's error is
 * -ETIMEDOUT (the message may still have been stored): while the stream has no leader (a
 * server died and another is being elected: about 5 s), the servers refuse the message at
 * once, unstored, and the library publishes it again every ACTOR_BROKER_RETRY_MS; a message
 * with a msg_id is also sent again when no answer came within ACTOR_BROKER_ATTEMPT_MS (the
 * stream stores it once), one without is not (it might be stored twice). Rules otherwise as
 * actor_broker_request; -EAGAIN also when js_max_inflight publishes are in flight (one
 * ACTOR_MSG_BROKER_WRITABLE follows). */
ACTOR_API int actor_broker_js_publish(actor_ctx_t *ctx, const actor_broker_pub_t *pub,
                                      const actor_request_opts_t *opts, actor_request_t *out);

#define ACTOR_BROKER_RETRY_MS 250
#define ACTOR_BROKER_ATTEMPT_MS 2000

/* Blocking calls that set JetStream up, from a thread outside the pool. They are idempotent:
 * a stream or bucket that exists with the same configuration is fine (0). -EEXIST: it exists
 * with another; -EINVAL: bad arguments, or the servers refused (their text goes to stderr:
 * three replicas on a single server, say); -ENOTCONN; -EDEADLK; -ETIMEDOUT. */

/* A stream named `name` capturing `subjects` (comma-separated, wildcards allowed), kept on
 * `replicas` servers (1 to 5), deduplicating msg_ids within `dedup_window_ms` (0: 2 minutes),
 * keeping messages `max_age_ms` (0: forever). */
ACTOR_API int actor_broker_stream_add(actor_system_t *sys, const char *name, const char *subjects,
                                      unsigned replicas, uint32_t dedup_window_ms,
                                      uint64_t max_age_ms);

/* A key-value bucket `bucket` on `replicas` servers, one value per key. */
ACTOR_API int actor_broker_kv_add(actor_system_t *sys, const char *bucket, unsigned replicas);

/* Key-value claims, answered as actor_broker_js_publish is (an ACTOR_MSG_REPLY carrying an
 * actor_broker_ack_t), with its retries and timeout. Keys: 1 to 255 bytes of letters, digits and
 * "-_=./", not starting or ending with "."; -EINVAL otherwise. */

/* Creates `key` with `len` bytes of `value` if it does not exist (or was deleted): atomically
 * across the cluster, so of many creates of one key exactly one gets error 0 (seq: its
 * revision) and the others -EEXIST, while the key stays. Each create carries a msg_id of its
 * own, so that one sent again (above) cannot take the key a second time. */
ACTOR_API int actor_broker_kv_create(actor_ctx_t *ctx, const char *bucket, const char *key,
                                     const void *value, size_t len, const actor_request_opts_t *opts,
                                     actor_request_t *out);

/* Deletes `key` (0 also if it did not exist); a create may then take it again. A delete is
 * sent again only when the servers refused it unseen (no leader), never for want of an answer:
 * a late copy could delete the next holder's key. */
ACTOR_API int actor_broker_kv_delete(actor_ctx_t *ctx, const char *bucket, const char *key,
                                     const actor_request_opts_t *opts, actor_request_t *out);

typedef struct actor_broker_consumer_opts {
	const char *stream;  /* required */
	const char *durable; /* the consumer's name on the servers: letters, digits, "-_"; required */
	const char *filter;  /* only the stream's messages on this subject; NULL: all */
	int deliver_new;     /* 1: start with messages stored from now on; 0: from the first kept */
	uint32_t ack_wait_ms; /* unacknowledged for this long: delivered again; 0: 30000 */
	/* Delivered and not yet acknowledged, at most (the servers wait for acks past it); also the
	 * subscription's max_pending. 0: 1024. */
	uint32_t max_ack_pending;
	uint64_t tag; /* in each message */
} actor_broker_consumer_opts_t;

/* Creates (or takes up again) a durable push consumer on a stream and subscribes the calling
 * actor to it: its messages arrive as ACTOR_MSG_BROKER (stream_seq, delivered set), each to be
 * acknowledged with actor_broker_ack; one not acknowledged within ack_wait_ms (or dropped for
 * want of room) comes again. *sub names it at once; the outcome of the creation arrives as one
 * ACTOR_MSG_REPLY carrying an actor_broker_ack_t (request rules as above, opts->timeout_ns 0:
 * 10 s); on failure the subscription has ended. One actor per durable consumer in a process.
 * Errors at the call: those of actor_broker_subscribe and actor_request. */
ACTOR_API int actor_broker_consume(actor_ctx_t *ctx, const actor_broker_consumer_opts_t *copts,
                                   const actor_request_opts_t *opts, actor_broker_sub_t *sub,
                                   actor_request_t *out);

enum actor_broker_ack_kind {
	ACTOR_BROKER_ACK = 0,  /* done with it */
	ACTOR_BROKER_NAK = 1,  /* deliver it again, now */
	ACTOR_BROKER_TERM = 2, /* never deliver it again */
};

/* Acknowledges a consumer's message (its ACTOR_MSG_BROKER payload, current or kept): a publish
 * to its reply subject, with actor_broker_publish's errors; -EINVAL also for a message not
 * from a consumer, or a bad kind. */
ACTOR_API int actor_broker_ack(actor_ctx_t *ctx, const actor_broker_msg_t *m, int kind);

typedef struct actor_broker_ordered_opts {
	const char *stream; /* required */
	const char *filter; /* only the stream's messages on this subject; NULL: all */
	int deliver_new;    /* 1: start with messages stored from now on; 0: from start_seq */
	uint64_t start_seq; /* deliver_new 0: the first sequence wanted; 0: the first kept */
	uint32_t heartbeat_ms; /* the servers' heartbeat while nothing is sent; 0: 1000 */
	/* Messages waiting for the actor, at most: past it the consumer pauses (it is made again
	 * where it stopped once the actor has taken half of them). 0: 65536. */
	uint32_t max_pending;
	uint64_t tag; /* in each message */
} actor_broker_ordered_opts_t;

/* Subscribes the calling actor to a stream's messages (on `filter`) in stream order, each
 * exactly once, with nothing to acknowledge, through servers dying and the connection being
 * lost and made again, as long as the stream keeps them: what NATS calls an ordered consumer.
 * The library makes a consumer on the servers (in memory, on one server) and checks every
 * delivery and heartbeat against the last it passed on; when one was lost (a gap in the
 * consumer's count), the consumer fell silent for three heartbeats (its server died), or the
 * actor fell max_pending behind, it deletes that consumer and makes another that starts right
 * after the last message passed on. Messages arrive as ACTOR_MSG_BROKER with stream_seq set
 * (and delivered 1); actor_broker_ack is not needed. One too big for an actor message
 * (ACTOR_MSG_MAX) is skipped and counted in the next message's `dropped`. *sub names it at once;
 * the first creation's outcome arrives as one ACTOR_MSG_REPLY carrying an actor_broker_ack_t
 * (its seq: the stream's last sequence when the consumer was made; error -ECANCELED if the
 * subscription ended first, -ETIMEDOUT if no creation succeeded within opts->timeout_ns, 0:
 * 10 s); if it fails, the subscription has ended. Later creations are retried until one
 * succeeds, every ACTOR_BROKER_RETRY_MS while the stream has no leader. actor_broker_unsubscribe
 * (or the actor's stop) deletes the consumer; one left by a process that died goes after 5 s.
 * Errors at the call: those of actor_broker_consume (-EAGAIN when js_max_inflight requests are
 * in flight, with one ACTOR_MSG_BROKER_WRITABLE to follow). */
ACTOR_API int actor_broker_consume_ordered(actor_ctx_t *ctx, const actor_broker_ordered_opts_t *copts,
                                           const actor_request_opts_t *opts,
                                           actor_broker_sub_t *sub, actor_request_t *out);

/* ---------------------------------------------------------------------------------------------
 * Supervisors
 *
 * A supervisor is an actor that starts children from specifications, is linked to each and
 * traps their exits, and restarts them when they stop, within limits, as Erlang/OTP's
 * supervisor does. Its behaviour is the library's; it answers only the calls below and ignores
 * any other message.
 *
 * Restart types (actor_child_spec_t.restart): a PERMANENT child is restarted whenever it
 * stops; a TRANSIENT one only after an abnormal stop (a reason other than ACTOR_REASON_NORMAL
 * and ACTOR_REASON_SHUTDOWN); a TEMPORARY one never. A child that stops and is not restarted
 * (TEMPORARY, or TRANSIENT stopping normally) is removed from the supervisor, and its stop does
 * not touch its siblings.
 *
 * Strategies (actor_supervisor_opts_t.strategy), when a child must be restarted:
 *   ACTOR_ONE_FOR_ONE   restarts that child alone;
 *   ACTOR_ONE_FOR_ALL   stops every other running child, in reverse start order, then starts
 *                       them all again in start order;
 *   ACTOR_REST_FOR_ONE  stops the running children started after it, in reverse order, then
 *                       starts it and them again in order.
 * A TEMPORARY child stopped that way is removed, not restarted.
 *
 * A restart is a new actor with a new reference: references are generation-checked, so the
 * failed child's reference fails with -ESRCH from then on and never reaches its successor.
 * Holders find the new one by asking the supervisor (actor_supervisor_which_children). The
 * messages still queued for the failed child, like the one it failed on, are dead-lettered
 * (counted, given to the dead-letter hook), not redelivered: they may be what made it fail, and
 * handing them to its successor could make it fail again, and again.
 *
 * Intensity: a supervisor that must restart more than `intensity` times within `period_ms`
 * gives up: it stops its children in reverse start order, then stops with
 * ACTOR_REASON_RESTARTS, which its parent sees through its link or monitor (a supervisor of
 * supervisors restarts it as any child). Each failure that leads to a restart counts once,
 * whatever the strategy restarts.
 *
 * Backoff: with backoff_min_ms set, a restart waits backoff_min_ms after a child's first
 * failure, twice that after its second in a row, and so on up to backoff_max_ms; a child that
 * ran for backoff_reset_ms before it failed starts again from backoff_min_ms. The supervisor
 * goes on with its other work meanwhile. Without it (0, the default) a restart is immediate.
 *
 * Start: children are started in order, each before the next: its make_state runs in the
 * supervisor's turn and its actor is spawned, linked to the supervisor, before the next one's
 * make_state is called (each child's own start hook then runs on its worker, in no particular
 * order with the other children's; a child that is a supervisor starts its own children in its
 * start hook, so they may start after its later siblings, where OTP would wait for them). If a
 * child cannot start when the supervisor starts (its make_state returns NULL, or the spawn
 * fails), the supervisor stops the ones started, in reverse order, and stops with
 * ACTOR_REASON_START_FAILED. A restart that cannot start counts
 * as another failure of that child (and so toward the intensity).
 *
 * Stop: a supervisor stops on actor_stop (ACTOR_REASON_KILLED), or when a linked actor that is
 * not one of its children (its parent) stops with a reason other than ACTOR_REASON_NORMAL (with
 * that reason). It first stops its children in reverse start order, one at a time, each with
 * actor_stop, waiting for its exit up to its shutdown_ms. C cannot interrupt a running
 * behaviour: a child that has not stopped in time is unlinked and left to stop when it reaches
 * the request (behind the messages queued before it), and counted in the supervisor's
 * `abandoned`. Then the supervisor stops itself. Calls made meanwhile are not answered (their
 * requesters get -ESRCH when it stops). At a system shutdown every actor stops at once with
 * ACTOR_REASON_SHUTDOWN, supervisors included, in no order.
 *
 * A supervisor never moves between workers (it sets timers). Children are ordinary actors:
 * what they may do, and how they fail, is told under "Links and exit signals"; a supervisor
 * restarts actors that stop, and a fault in C (a bad pointer, an abort) still takes the whole
 * process down.
 */

#define ACTOR_REASON_RESTARTS (-4)     /* a supervisor gave up: over its restart intensity */
#define ACTOR_REASON_START_FAILED (-5) /* a supervisor could not start its children */

typedef enum actor_restart {
	ACTOR_RESTART_PERMANENT = 0, /* default: always restarted */
	ACTOR_RESTART_TRANSIENT,     /* restarted only after an abnormal stop */
	ACTOR_RESTART_TEMPORARY,     /* never restarted */
} actor_restart_t;

typedef enum actor_strategy {
	ACTOR_ONE_FOR_ONE = 0, /* default */
	ACTOR_ONE_FOR_ALL,
	ACTOR_REST_FOR_ONE,
} actor_strategy_t;

#define ACTOR_CHILD_ID_MAX 64           /* bytes of a child id, its NUL included */
#define ACTOR_SHUTDOWN_INFINITY (-1)    /* shutdown_ms: wait for the child as long as it takes */
#define ACTOR_CHILD_SHUTDOWN_MS 5000    /* shutdown_ms 0 for a worker child (OTP's default) */
#define ACTOR_SUPERVISOR_INTENSITY 1    /* intensity 0 (OTP's default) */
#define ACTOR_SUPERVISOR_PERIOD_MS 5000 /* period_ms 0 (OTP's default) */
#define ACTOR_SUPERVISOR_INTENSITY_MAX (1 << 20)
#define ACTOR_SUPERVISOR_DEPTH_MAX 16 /* supervisors nested in one actor_supervisor_opts_t */

typedef struct actor_supervisor_opts actor_supervisor_opts_t;

/* How a supervisor starts, and restarts, one child. Copied by the supervisor (the id too). */
typedef struct actor_child_spec {
	const char *id;        /* 1 to ACTOR_CHILD_ID_MAX - 1 bytes, unique among the children */
	actor_behavior_fn *fn; /* the child's behaviour */
	/* Called in the supervisor's turn at each start, with `arg`: the new child's state; NULL
	 * means the start failed. NULL make_state: the state is `arg` itself, at every start. */
	void *(*make_state)(void *arg);
	void *arg;
	/* Spawn options for each start (placement, name, destroy, stay, start, monitor). `link`
	 * must be 0: the supervisor links itself to the child. `destroy` gets the state that
	 * make_state made, also when the spawn fails. */
	actor_spawn_opts_t spawn;
	actor_restart_t restart;
	/* How long the supervisor waits for the child to stop when it stops it (ms): 0 = the
	 * default (ACTOR_CHILD_SHUTDOWN_MS for a worker, ACTOR_SHUTDOWN_INFINITY for a
	 * supervisor), ACTOR_SHUTDOWN_INFINITY = as long as it takes. */
	int shutdown_ms;
	/* Not NULL: the child is a supervisor with these options (copied, deeply, at the copy of
	 * the spec); fn, make_state and arg are then unused and must be NULL. */
	const actor_supervisor_opts_t *supervisor;
	/* Not NULL: at each start the child is registered under this name (actor_register; 1 to
	 * ACTOR_NAME_MAX bytes, copied), so that its users find each new reference by name; the
	 * registry releases the name as the child stops, before the supervisor hears of it. A name
	 * held by another actor makes that start fail: the child is stopped (ACTOR_REASON_KILLED)
	 * and restarted as after any failure, within the intensity. */
	const char *register_as;
	/* Optional, for a child added with actor_supervisor_start_child: once its answer says 0,
	 * `arg` is the supervisor's, and free_arg(arg) is called when the supervisor forgets the
	 * child (a temporary or transient child that ended, delete_child, the supervisor's stop),
	 * after the child's last stop, or when it gives up waiting for it (shutdown_ms): a child
	 * left running then must not use `arg` from its state. Ignored for the children of
	 * actor_supervisor_opts_t, whose `arg` stays the caller's (a nested supervisor restarted
	 * makes its children from it again). */
	void (*free_arg)(void *arg);
} actor_child_spec_t;

struct actor_supervisor_opts {
	actor_strategy_t strategy;
	/* Restarts allowed within period_ms: 0 = ACTOR_SUPERVISOR_INTENSITY, -1 = none (the first
	 * failure that would restart stops the supervisor), at most ACTOR_SUPERVISOR_INTENSITY_MAX.
	 */
	int intensity;
	unsigned period_ms;                 /* 0 = ACTOR_SUPERVISOR_PERIOD_MS */
	unsigned backoff_min_ms;            /* delay before a restart; 0 = none (restart at once) */
	unsigned backoff_max_ms;            /* 0 = 64 * backoff_min_ms; at least backoff_min_ms */
	unsigned backoff_reset_ms;          /* 0 = period_ms (after substitution) */
	const actor_child_spec_t *children; /* started in this order; copied */
	unsigned nchildren;
};

/* Spawns a supervisor and starts its children (in its start hook, on its worker). From any
 * thread. With opts->link (inside a behaviour), it is linked to the caller, which makes it the
 * caller's supervised child: a supervisor of supervisors does this through
 * actor_child_spec_t.supervisor. opts->monitor watches it. opts->start and opts->destroy must be
 * NULL (the supervisor's own are used). -EINVAL: a NULL sys, sup or out, bad spawn options (as
 * actor_spawn), a bad strategy or intensity, backoff_max_ms below backoff_min_ms, children NULL
 * with nchildren > 0, a bad child spec (a NULL, empty or overlong id, two children with one
 * id, a NULL fn, a restart type out of range, spawn.link set, shutdown_ms below -1, fn or
 * make_state set for a supervisor child, an empty or overlong register_as), supervisors nested
 * deeper than ACTOR_SUPERVISOR_DEPTH_MAX; -ENOMEM; the errors of actor_spawn. */
ACTOR_API int actor_supervisor_spawn(actor_system_t *sys, const actor_spawn_opts_t *opts,
                                     const actor_supervisor_opts_t *sup, actor_ref_t *out);

/* Calls on a running supervisor. Each is a request (see "Requests"): the ctx versions send it
 * from a behaviour and the answer comes as an ACTOR_MSG_REPLY (opts and *out as for
 * actor_request); actor_supervisor_call_wait sends it from a thread outside the pool and blocks
 * for the answer (as actor_request_wait). The answer's bytes are an actor_supervisor_answer_t
 * (actor_supervisor_answer_of reads it); its `result` is 0 or:
 *   -EEXIST   start_child: a child has that id already;
 *   -ENOENT   no child has that id;
 *   -ECANCELED start_child, restart_child: the child's make_state returned NULL;
 *   -EALREADY restart_child: the child is running;
 *   -EBUSY    restart_child, delete_child: the child is running or waiting for a restart
 *             (terminate it first);
 *   or the spawn's error (start_child, restart_child).
 * A supervisor busy stopping children (a restart under one_for_all, a terminate) answers once it
 * is done. What a start_child spec points to (the nested supervisor's options, the name) must
 * stay valid until the answer comes; its id is copied at the call. The calls return what
 * actor_request (or actor_request_wait) returns, and -EINVAL for a bad spec (as
 * actor_supervisor_spawn) or a NULL, empty or overlong id. */
typedef enum actor_supervisor_op {
	ACTOR_SUP_START_CHILD = 1,
	ACTOR_SUP_TERMINATE_CHILD,
	ACTOR_SUP_RESTART_CHILD,
	ACTOR_SUP_DELETE_CHILD,
	ACTOR_SUP_WHICH_CHILDREN,
} actor_supervisor_op_t;

#define ACTOR_SUPERVISOR_ANSWER 0x53555000u /* the answer's type in actor_reply_t.type */

typedef struct actor_supervisor_answer {
	int32_t result;     /* 0 or -errno (above) */
	uint32_t count;     /* which_children: the actor_child_info_t that follow */
	actor_ref_t child;  /* start_child, restart_child: the child's new reference */
	uint64_t restarts;  /* restarts so far (each failure that led to one counts once) */
	uint64_t abandoned; /* children not stopped within their shutdown_ms (above) */
} actor_supervisor_answer_t;

typedef struct actor_child_info {
	char id[ACTOR_CHILD_ID_MAX];
	actor_ref_t ref;    /* the running child, or ACTOR_REF_NONE (terminated, or waiting for a
	                     * restart) */
	uint32_t restarts;  /* times this child was started again after its first start */
	uint8_t restart;    /* its actor_restart_t */
	uint8_t supervisor; /* 1: it is a supervisor */
	uint8_t reserved_[2];
} actor_child_info_t;

/* Starts a new child with `spec`, after the others (last in start order). */
ACTOR_API int actor_supervisor_start_child(actor_ctx_t *ctx, actor_ref_t sup,
                                           const actor_child_spec_t *spec,
                                           const actor_request_opts_t *opts, actor_request_t *out);
/* Stops the child `id` (as at the supervisor's stop: actor_stop, then up to its shutdown_ms) and
 * keeps its spec, not running, for restart_child; a TEMPORARY child is removed. Answered once it
 * has stopped (or was abandoned). */
ACTOR_API int actor_supervisor_terminate_child(actor_ctx_t *ctx, actor_ref_t sup, const char *id,
                                               const actor_request_opts_t *opts,
                                               actor_request_t *out);
/* Starts a terminated child again from its spec. */
ACTOR_API int actor_supervisor_restart_child(actor_ctx_t *ctx, actor_ref_t sup, const char *id,
                                             const actor_request_opts_t *opts,
                                             actor_request_t *out);
/* Removes a terminated child's spec. */
ACTOR_API int actor_supervisor_delete_child(actor_ctx_t *ctx, actor_ref_t sup, const char *id,
                                            const actor_request_opts_t *opts, actor_request_t *out);
/* Lists the children in start order, with their current references. */
ACTOR_API int actor_supervisor_which_children(actor_ctx_t *ctx, actor_ref_t sup,
                                              const actor_request_opts_t *opts,
                                              actor_request_t *out);

/* The same calls from a thread outside the pool: `op` says which; `id` for terminate, restart
 * and delete, `spec` for start_child (the other is ignored). 0: *reply is the ACTOR_MSG_REPLY,
 * the caller's to free with actor_msg_free. -EINVAL also for an op out of range; then the errors
 * of actor_request_wait (-EDEADLK on a worker thread, -ESRCH, -ETIMEDOUT, ...). */
ACTOR_API int actor_supervisor_call_wait(actor_system_t *sys, actor_ref_t sup,
                                         actor_supervisor_op_t op, const char *id,
                                         const actor_child_spec_t *spec, uint64_t timeout_ns,
                                         actor_msg_t **reply);

/* The supervisor's answer in an ACTOR_MSG_REPLY (or a reply from actor_supervisor_call_wait):
 * 0 and *out; the reply's own error (-ETIMEDOUT, -ESRCH, -ENOMSG) if the request got no answer;
 * -EINVAL for a NULL argument or a message that is no supervisor's answer. */
ACTOR_API int actor_supervisor_answer_of(actor_msg_t *reply, actor_supervisor_answer_t **out);

/* which_children: the entries after the answer. */
static inline actor_child_info_t *actor_supervisor_children(actor_supervisor_answer_t *a)
{
	return (actor_child_info_t *)(void *)(a + 1);
}

/* ---------------------------------------------------------------------------------------------
 * Statistics
 */

typedef struct actor_worker_stats {
	uint64_t processed;        /* messages handed to behaviours */
	uint64_t resident;         /* actors living on this worker */
	uint64_t runq;             /* actors ready to run (local queue) */
	uint64_t parks;            /* times the worker blocked */
	uint64_t wakeups;          /* times another thread woke it */
	uint64_t conns;            /* open connections */
	uint64_t accepts;          /* connections accepted */
	uint64_t accept_backoffs;  /* accepts paused by EMFILE/ENFILE/ENOBUFS/ENOMEM */
	uint64_t read_throttles;   /* reads stopped: an owner was behind by its read limit */
	uint64_t timers;           /* pending timers */
	uint64_t closes_reset;     /* closes out of linger or shutdown drain: output dropped */
	const char *reactor;       /* "epoll" or "io_uring" */
	uint64_t migrations;       /* actors that moved here to follow a conversation */
	uint64_t shared;           /* queued actors this worker handed to an idle worker */
	uint64_t contended;        /* spins cut short or skipped: another thread wanted the CPU;
	                            * and moves to a busy sender's CPU away from one */
	uint64_t jobs;             /* blocking jobs submitted here, queued or running */
	uint64_t jobs_dropped;     /* jobs whose actor stopped before their result was sent */
	uint64_t files;            /* files open (actor_file_open done, close not yet done) */
	uint64_t file_ops;         /* file operations accepted here and not yet completed */
	uint64_t file_ops_dropped; /* file operations whose actor stopped before their result */
	uint64_t closes_unacked;   /* closes that ran out (linger, shutdown drain) with all their
	                            * output in the kernel, not yet acknowledged by the peer */
	uint64_t replies_dropped;  /* answers to requests that had ended (see "Requests") */
	uint64_t yielded;          /* actors woken elsewhere that moved off this worker while
	                            * another thread wanted its CPU */
} actor_worker_stats_t;

typedef struct actor_stats {
	uint64_t spawned, stopped, sent, delivered, dead_letters;
} actor_stats_t;

/* Counters are read without stopping the workers: each is exact for itself, a snapshot of
 * several may be mutually inconsistent while the system runs, and exact once it has stopped. */
ACTOR_API int actor_stats_worker(const actor_system_t *sys, unsigned worker,
                                 actor_worker_stats_t *out);
ACTOR_API int actor_stats_system(const actor_system_t *sys, actor_stats_t *out);

/* Writes a human-readable summary of the system and per-worker counters. */
ACTOR_API int actor_stats_print(const actor_system_t *sys, FILE *out);

typedef struct actor_info {
	const char *name;  /* the spawn name, or NULL */
	unsigned worker;   /* home worker now (an actor that may move can live elsewhere later) */
	uint32_t capacity; /* the spawn option; 0 = unbounded */
	/* User messages sent to the actor and not yet handed to its behaviour (library messages
	 * are not counted). Exact for an actor with a capacity, and for every actor in a system
	 * with count_depth (actor_config_t). Otherwise, counting would cost every send: 0 if the
	 * mailbox is idle (empty, the actor neither queued nor running), else
	 * ACTOR_DEPTH_UNKNOWN. */
	uint64_t depth;
	/* Counted mailboxes only (as `depth` is exact): 0 if no user message waits. Otherwise how
	 * long the mailbox has held user messages without a break, that is since a send found it
	 * without any: the age of its oldest message while that one waits, and once a backlog has
	 * built up, an upper bound on it (how long the actor has been behind). Resolution: that
	 * send stamps the mailbox with the coarse clock (CLOCK_MONOTONIC_COARSE: a kernel tick, 1
	 * to 4 ms on common kernels) that its worker reads once per turn of its loop (read then,
	 * from a thread outside the pool); the figure may be high by up to a tick and a loop
	 * turn. Always 0 for an actor without a count: no send or turn of such an actor pays for
	 * an age. */
	uint64_t oldest_age_ns;
} actor_info_t;

#define ACTOR_DEPTH_UNKNOWN UINT64_MAX

/* -ESRCH once the actor has stopped. Safe from any thread. The mailbox figures are a snapshot
 * that may be stale by the time the call returns. */
ACTOR_API int actor_info(actor_system_t *sys, actor_ref_t ref, actor_info_t *out);

/* The library's version string, "MAJOR.MINOR.PATCH". */
ACTOR_API const char *actor_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ACTOR_H */
