/* broker.h: the broker service's halves (actor.h, "Broker: NATS and JetStream"): the
 * connection and everything libnats's threads touch, shared by the system (broker.c), and the
 * JetStream requests, their answers and retries (js.c).
 *
 * Files, each using only those before it: conn.c what all share; js.c the requests and their
 * retry thread; ordered.c ordered consumers; broker.c the service, the connection,
 * subscriptions and publishes. Where a lower file must reach a higher one, it calls through a
 * pointer the higher one set (breq.done, broker.ordered_hook, the delivery callback that
 * broker.c gives ordered.c).
 *
 * Threads and who touches what:
 *   - A behaviour, on its worker: publishes, subscribes, opens requests. The worker's own state
 *     (struct broker_worker: the subscriptions by handle, their owners) is that thread's alone.
 *   - libnats's delivery threads: one callback per message of a subscription (on_msg), and
 *     one for the library's inbox (js.c, on_answer); libnats's connection-event thread:
 *     disconnected, reconnected, closed.
 *   - The retry thread (js.c): republishes JetStream requests and ends those out of time.
 *   - actor_broker_connect, actor_broker_close and actor_system_free: a thread outside the pool.
 * Everything of struct broker below `lock` is under it. `nc` is written once, before `state`
 * leaves BROKER_NONE with a release store; calls read `state` with acquire before using it.
 *
 * Lifetimes. The system may be freed while libnats still has callbacks to run (a subscription's
 * last delivery, the closed event). So struct broker is counted (`refs`): one for the system,
 * one for the connection until its closed event, one for each subscription record alive.
 * sys_fini closes the connection, waits for the count to drop to the system's own, then frees.
 * A callback that starts once `closing` is set does nothing but release what it was given;
 * `active` counts callbacks running so that sys_fini waits for those that started before.
 */
#ifndef ACTOR_BROKER_H
#define ACTOR_BROKER_H

#include <pthread.h>
#include <stdatomic.h>

#include <nats/nats.h>

#include "core/table.h"
#include "services/services.h"

enum broker_state {
	BROKER_NONE = 0, /* never connected */
	BROKER_UP = ACTOR_BROKER_CONNECTED,
	BROKER_DOWN = ACTOR_BROKER_DISCONNECTED,
	BROKER_CLOSED = ACTOR_BROKER_CLOSED,
};

/* A request over the broker waiting for its answer on the inbox (js.c). */
enum breq_kind {
	BREQ_PLAIN,     /* actor_broker_request: the answer is the message itself */
	BREQ_PUBLISH,   /* actor_broker_js_publish: a JetStream publish acknowledgement */
	BREQ_KV_CREATE, /* a publish that expects the key to be absent */
	BREQ_API,       /* a JetStream API call (purge, consumer creation) */
};

struct broker;
struct breq;

/* A libnats subscription that has ended, waiting to be destroyed with the record that held it
 * (conn.c, "Graves"). Part of that record, so that burying never allocates. */
struct bgrave {
	struct bgrave *next;
	natsSubscription *ns;
	void *mem; /* freed with it */
};
/* The library's own request ended: error 0 and the answer's JSON (NUL-terminated), or -ETIMEDOUT
 * (no answer in time) or -ECONNRESET (the connection closed); lock not held. */
typedef void breq_done_fn(struct broker *b, struct breq *r, int error, const char *json);

struct breq {
	struct breq *prev, *next; /* the broker's list of requests (retry thread's scan) */
	uint64_t id;              /* in the broker's table; the last token of its reply subject */
	actor_ref_t requester;
	uint64_t req_id;       /* the request at its requester (actor__request_open) */
	natsMsg *msg;          /* what to publish again; NULL for a plain request */
	uint64_t deadline_ns;  /* UINT64_MAX: none */
	uint64_t retry_ns;     /* when to publish again; UINT64_MAX: not to */
	struct bsub *consumer; /* BREQ_API creating a consumer: its subscription (a reference) */
	breq_done_fn *done;    /* the library's own request: called instead of answering anyone */
	uint32_t gen;          /* for `done`: an ordered consumer's generation */
	uint8_t kind;
	bool dedup; /* it has a Nats-Msg-Id: safe to send again when no answer came */
};

struct broker {
	actor_system_t *sys;
	_Atomic int state;       /* enum broker_state */
	_Atomic bool closing;    /* sys_fini or actor_broker_close has begun */
	_Atomic unsigned active; /* callbacks running (see Lifetimes) */
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *inbox_sub; /* "<inbox>.*": answers to the library's requests (js.c) */
	/* Ended subscriptions (conn.c, "Graves"): buried, not yet taken; then the retry thread's:
	 * taken, waiting for mark grave_wait or a later one, sent last at grave_mark_ns; marks
	 * sent (written by the retry thread only), the latest back on the inbox, and subscriptions
	 * destroyed so far (for tests). */
	_Atomic(struct bgrave *) graves;
	struct bgrave *graves_taken;
	uint64_t grave_wait, grave_mark_ns;
	unsigned grave_resends;
	bool grave_warned;
	_Atomic uint64_t grave_marks_sent, grave_mark_seen, graves_dug;
	uint32_t js_max_inflight;
	char inbox[64]; /* "_INBOX.xxx": the library's replies come to inbox.<id> */

	pthread_mutex_t lock;
	pthread_cond_t cond;      /* refs dropped; the retry thread's wake-up */
	unsigned refs;            /* see Lifetimes */
	bool ever;                /* a connection was attempted: threads may hold libnats memory */
	struct actor__table reqs; /* struct breq by id */
	struct breq *req_head;
	uint32_t js_inflight;  /* JetStream requests in the table */
	actor_ref_t *watchers; /* actor_broker_watch */
	uint32_t nwatchers, capwatchers;
	actor_ref_t *waiters; /* refused publishers owed an ACTOR_MSG_BROKER_WRITABLE */
	uint32_t nwaiters, capwaiters;
	pthread_t retry_thread;
	bool retry_running;
	struct bsub *ordered; /* ordered consumers, each holding a reference (ordered.c) */
	/* Set by ordered.c (under the lock) once it has one: run by the retry thread each tick,
	 * and by js_stop once that thread has ended (stopping: drop everything); lock not held. */
	void (*ordered_hook)(struct broker *b, uint64_t now, bool stopping);
};

/* A subscription (or consumer). Counted: one reference for its owner's record on the worker
 * (until unsubscribed or the owner stops), one for libnats's subscription (until its on-complete
 * callback), one per message on its way to the owner (until the service's receive or
 * dead_letter). `pending` pairs the delivery callback's increment with receive's decrement;
 * `ended` is set by the worker (or js.c when a consumer cannot be created) and read by both. */
struct bsub {
	_Atomic uint32_t refs;
	_Atomic uint32_t pending;
	_Atomic uint64_t dropped;
	_Atomic bool ended;
	uint32_t max_pending;
	uint8_t consumer;
	actor_ref_t owner;
	uint64_t handle; /* its public id, in its worker's table */
	uint64_t tag;
	struct broker *b;
	natsSubscription *ns;
	struct bord *ord; /* an ordered consumer's state (ordered.c); NULL for the others */
	struct bgrave grave; /* `ns` and this record, once the last reference has gone */
	/* The worker's alone: */
	struct bsub *oprev, *onext;
	struct sub_owner *ow;
};

/* conn.c */
struct broker *actor__broker_of(actor_system_t *sys);
uint64_t actor__broker_now_ns(void); /* CLOCK_MONOTONIC */
/* The broker of a behaviour's system if it is connected (or reconnecting), else NULL with *err
 * -ENOTCONN (or -EINVAL outside a behaviour). */
struct broker *actor__broker_ready(actor_ctx_t *ctx, int *err);
int actor__broker_status(natsStatus s);
bool actor__broker_enter(struct broker *b);
void actor__broker_leave(struct broker *b);
void actor__broker_unref(struct broker *b);
void actor__bsub_unref(struct bsub *s);
/* `ns` has ended and libnats has called its on-complete callback: it is destroyed, and `mem`
 * freed, once libnats's read loop cannot be using it any more (any thread; `g` is in `mem`). */
void actor__broker_bury(struct broker *b, struct bgrave *g, natsSubscription *ns, void *mem);
/* Destroys what the read loop is past: the graves taken before the last mark, once it is back;
 * then takes those buried since and sends a mark for them. With `closed` (sys_fini, every
 * reference gone): everything. The retry thread, or sys_fini after it has ended. */
void actor__broker_dig(struct broker *b, bool closed);
/* The inbox's delivery thread got mark `mark` (js.c, on_answer). */
void actor__broker_mark_seen(struct broker *b, uint64_t mark);
/* A refused caller gets one ACTOR_MSG_BROKER_WRITABLE later (lock held). */
void actor__broker_wait_room(struct broker *b, actor_ref_t who);
/* Every refused caller gets its notice now (lock held). */
void actor__broker_notify_room(struct broker *b);
/* Adds `r` to a set of references (once), or takes it out. */
int actor__broker_ref_add(actor_ref_t **v, uint32_t *n, uint32_t *cap, actor_ref_t r);
void actor__broker_ref_del(actor_ref_t *v, uint32_t *n, actor_ref_t r);
/* For the calls made outside the pool: *out, the system's broker if it is connected (or
 * reconnecting). -EINVAL: NULL sys; -EDEADLK: on a worker; -ENOTCONN. */
int actor__broker_outside(actor_system_t *sys, struct broker **out);
/* Splits a comma-separated list (spaces around items dropped; an empty item or one with a space
 * inside: -EINVAL): *out[0 .. *n) point into *copy; the caller frees both. -ENOMEM. */
int actor__broker_split(const char *list, char **copy, char ***out, int *n);
/* 0 if `s` is a subject (wildcards only if `wild`), else -EINVAL. */
int actor__broker_check_subject(const char *s, bool wild);
/* 0 if `pub` may be published (subject, reply, headers, msg_id, sizes), else -EINVAL or
 * -EMSGSIZE. */
int actor__broker_check_pub(const actor_broker_pub_t *pub);
/* A natsMsg for `pub`, with `reply` instead of pub->reply, and a Nats-Msg-Id if msg_id. */
int actor__broker_msg_new(const actor_broker_pub_t *pub, const char *reply, natsMsg **out);
/* The ACTOR_MSG_BROKER payload for a libnats message, in a new message of `type`. */
int actor__broker_copy_msg(natsMsg *msg, uint32_t type, size_t before, actor_msg_t **out,
                           actor_broker_msg_t **bm);

/* ordered.c: ordered consumers (broker.c calls it; it calls js.c and conn.c) */
/* Its state, first generation to make; base: a prefix unique to the process; on_msg: broker.c's
 * delivery callback, which calls actor__bord_deliver for it; pass: broker.c's copy and send to
 * the owner (0, -ENOMEM or -EMSGSIZE). */
struct bord *actor__bord_new(const actor_broker_ordered_opts_t *o, const char *base,
                             uint64_t handle, natsMsgHandler on_msg,
                             int (*pass)(struct bsub *s, natsMsg *msg));
/* Takes `s` into the broker's list of ordered consumers and makes its first generation (a
 * reference more each); the first creation's outcome goes to the request `req_id` of `to`, by
 * `deadline_ns` at the latest. -ENOMEM or a libnats error if not even that could be sent. */
int actor__bord_start(struct broker *b, struct bsub *s, actor_ref_t to, uint64_t req_id,
                      uint64_t deadline_ns);
/* A message on `s`'s subscription `ns` (on_msg, on the delivery thread): checked, and passed on
 * to the owner (under the lock, so that the owner gets them in the order they were checked)
 * or not. */
void actor__bord_deliver(struct broker *b, struct bsub *s, natsSubscription *ns, natsMsg *msg);

/* js.c (ordered.c and broker.c call it; it calls conn.c) */
/* Opens a request of ctx's actor (actor__request_open) and publishes `pub` (checked) with the
 * reply subject of a new record; a JetStream one is kept for its retries. `consumer`: the
 * subscription of a consumer being created, which ends if the creation fails. */
int actor__broker_request_send(actor_ctx_t *ctx, struct broker *b, enum breq_kind kind,
                               const actor_broker_pub_t *pub, const actor_request_opts_t *opts,
                               struct bsub *consumer, actor_request_t *out);
/* 0 if `s` is 1 to `max` letters, digits and characters of `extra`, else -EINVAL. */
int actor__broker_check_name(const char *s, const char *extra, size_t max);
int actor__broker_js_start(struct broker *b);
/* Sends an API request on behalf of the library (lock held), one attempt of
 * ACTOR_BROKER_ATTEMPT_MS ("no responders" tried again meanwhile): its end goes to `done`, with
 * r->consumer = s (a reference, if not NULL) and r->gen = gen. */
int actor__broker_api_locked(struct broker *b, const char *subject, const char *body, size_t len,
                             struct bsub *s, uint32_t gen, breq_done_fn *done);
/* Sends `to` the answer to its request req_id (nothing if 0): an ACTOR_MSG_BROKER_ACK, or
 * error alone. */
void actor__broker_answer(struct broker *b, actor_ref_t to, uint64_t req_id, int error,
                          const actor_broker_ack_t *ack);
/* Publishes an API request whose answer nobody wants (lock held or not). */
void actor__broker_api_forget(struct broker *b, const char *subject, const char *body);
/* The connection has closed (for good): every request in flight ends (lock not held). */
void actor__broker_js_closed(struct broker *b);
/* sys_fini: stops the retry thread and frees what is left (lock not held). */
void actor__broker_js_stop(struct broker *b);

#endif /* ACTOR_BROKER_H */
