/* service.h: what a worker hosts besides actors (timers, the network, files, blocking pools),
 * through one small interface. The worker loop and actor.c call services only through this
 * table; a service's code lives in libactor/services/ and the list of services in
 * services/services.c, the one place that names them all.
 *
 * Every hook runs on the worker's own thread, with that worker's state for the service. Each
 * hook may be NULL.
 *
 * Messages: a service owns blocks of system message types, a block being the 16 types that
 * share (type >> 4) & 0xff: 0xffff0010-0xffff001f is block 0x01, the control types
 * 0xffff0110-0xffff011f block 0x11. Before a behaviour gets a message of a service's block,
 * `receive` sees it; after the behaviour has returned, `handled` gets the note `receive`
 * filled in (the message itself may have been forwarded or freed by then); a message that
 * cannot be delivered goes to `dead_letter`, which releases whatever it carries.
 */
#ifndef ACTOR_SERVICE_H
#define ACTOR_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "actor.h"

struct actor;
struct actor_worker;

#define ACTOR_SERVICES_MAX 8

/* What `receive` decided. */
enum actor__svc_verdict {
	SVC_DELIVER,      /* hand it to the behaviour */
	SVC_DELIVER_NOTE, /* hand it to the behaviour, then call `handled` with the note */
	SVC_CONSUMED,     /* not for the behaviour: the core frees it */
	/* A control message that annotates the message pushed right behind it, in the same
	 * exchange (actor__send_pair): the core frees it, hands that next message to the
	 * behaviour, then calls `handled` with the note. Nothing can come between the two. */
	SVC_NEXT_NOTE,
};

/* What `handled` needs once the message may be gone. */
struct actor__svc_note {
	uint64_t id;
	int64_t value;
};

struct actor__service_ops {
	const char *name;
	unsigned id;           /* its index in actor__services (services.c) */
	uint8_t blocks[4];     /* message type blocks it owns; 0 ends the list */
	uint8_t actor_bits;    /* bits of struct actor's svc_bits it sets on actors it serves */
	/* Creates the service's state for the whole system (a registry of thread pools, say),
	 * with the configuration the system was created with (defaults: zeroed), before any
	 * worker's `init`; the service finds it as sys->svc_shared[id]. Runs on the thread
	 * calling actor_system_create. */
	int (*sys_init)(actor_system_t *sys, const actor_config_t *cfg, void **shared);
	/* The system is being freed: every worker has left its loop and run `fini`; commands
	 * still posted to the workers run after this, each seeing its service's worker state
	 * gone (NULL). Frees the shared state (or leaves it to threads of its own still
	 * running, which must then no longer touch the system). */
	void (*sys_fini)(actor_system_t *sys, void *shared);
	/* Creates the worker's state (system creation, before the worker runs). */
	int (*init)(struct actor_worker *w, void **state);
	/* The worker is exiting, every actor stopped (or the system is freed without having run):
	 * closes and frees everything at once. */
	void (*fini)(struct actor_worker *w, void *state);
	/* Work that does not wait (each loop turn, and while spinning): how much it did. */
	unsigned (*poll)(struct actor_worker *w, void *state);
	/* The earliest moment `tick` has something to do; UINT64_MAX: none. */
	uint64_t (*next_deadline)(const struct actor_worker *w, const void *state);
	/* Does what is due at `now`; how much it did. */
	unsigned (*tick)(struct actor_worker *w, void *state, uint64_t now);
	/* Shutting down, every actor here stopped: true while work remains that the system's drain
	 * time lets finish (closes still writing, jobs running). */
	bool (*draining)(const struct actor_worker *w, const void *state);
	/* `a` (with some of actor_bits set) stopped: closes or cancels what it held. */
	void (*owner_stopped)(struct actor_worker *w, void *state, struct actor *a);
	enum actor__svc_verdict (*receive)(struct actor_worker *w, void *state, struct actor *a,
	                                   actor_msg_t *m, struct actor__svc_note *note);
	void (*handled)(struct actor_worker *w, void *state, const struct actor__svc_note *note);
	/* `m` (for `to`) cannot be delivered; the core frees it afterwards. */
	void (*dead_letter)(struct actor_worker *w, void *state, actor_ref_t to, actor_msg_t *m);
};

/* services.c: every service, in the order they are polled; NULL-terminated. */
extern const struct actor__service_ops *const actor__services[];

/* The message type block of `type` (see above). */
static inline unsigned actor__msg_block(uint32_t type)
{
	return (type >> 4) & 0xffu;
}

#endif /* ACTOR_SERVICE_H */
