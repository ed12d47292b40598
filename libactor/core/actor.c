/* actor.c: the actor lifecycle: spawn, send, one turn of a behaviour, stop, monitors, links.
 *
 * An actor is scheduled at most once at a time: only the sender whose push finds the mailbox
 * empty-marked schedules it (mpsc.h), and only its home worker runs it, so the behaviour never
 * runs on two threads and its fields need no synchronisation beyond the mailbox's.
 *
 * Stopping, on the home worker:
 *   1. clear the slot (generation bump): new sends fail with -ESRCH;
 *   2. release its registered name, if it has held one (names.c), run the destroy callback,
 *      send DOWN to the monitors, then an exit signal to each linked partner (both with the
 *      stop reason; the records are freed), then drain the mailbox into dead letters (a link
 *      or monitor request found there is answered as if it had been recorded: an exit signal
 *      or a DOWN with the same reason);
 *   3. close the mailbox (mpsc_close): later pushes by senders that looked the actor up before
 *      step 1 never schedule it; if a push got in first the actor stays scheduled and its next
 *      turn retries the drain and the close;
 *   4. retire it; reclamation drains once more and frees it after the grace period (refs.c).
 * The DOWNs and exit signals are pushed by this thread after the actor's last turn flushed its
 * outbox, so each follows, in its receiver's mailbox, every message the actor sent before.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"

#define node_msg(n) ((actor_msg_t *)(n))

_Static_assert(offsetof(actor_msg_t, link_) == 0, "the mailbox link must come first");

/* ---------------------------------------------------------------------------------------------
 * Links and monitors: the records
 *
 * An actor's links and monitors live in its `extra` (internal.h), allocated at the first one:
 * an actor that uses neither costs nothing more, and its stop tests one pointer. The records
 * are the holder's alone. Other actors and threads ask for changes with control messages that
 * the actor handles in its own turn (MSG_MONITOR, MSG_DEMONITOR, MSG_LINK, MSG_UNLINK), so the
 * records move with the actor between workers and need no lock.
 *
 * A link is an entry on each side:
 *   - actor_link adds `other` to the caller's links and sends MSG_LINK, which adds the caller
 *     to other's; actor_unlink removes the entry and sends MSG_UNLINK. Each sends its request
 *     even when the entry was there already (or missing): a link and an unlink that crossed
 *     can leave one side with an entry the other lacks (harmless, see the next point), and
 *     the next call repairs it.
 *   - At its stop an actor sends MSG_EXIT_SIGNAL to every partner in its links. A partner
 *     acts on the signal only if the stopped actor is in its own links, and removes it then:
 *     a signal from a link the partner has removed since (actor_unlink) has no effect, and a
 *     partner hears of a link's end once, even when two signals come (its own repeated
 *     MSG_LINK dead-lettered by the stopped actor, or a NOPROC racing the real one).
 *   - A request that reaches an actor already stopped is dead-lettered, and answered with
 *     the stopped actor's real reason (MSG_LINK with an exit signal, MSG_MONITOR with a DOWN).
 *     A request that finds its slot cleared fails at the send: the requester reports
 *     ACTOR_REASON_NOPROC itself.
 *   - A spawn with `link` or `monitor` writes both sides' records before the new actor is
 *     published: nothing of it can run, or stop, before them.
 * Order: a MSG_LINK from X reaches Y before X's exit signal (one sender's messages keep their
 * order, and X's outbox is flushed before its stop), so Y always knows the link by then.
 */

#define REFS_FIRST 2 /* entries of a first array: most actors link or monitor a few others */

/* Makes room for one more entry. 0 or -ENOMEM. */
static int refs_reserve(struct actor__refs *r)
{
	if (r->len < r->cap)
		return 0;
	uint32_t cap = r->cap != 0 ? 2 * r->cap : REFS_FIRST;
	actor_ref_t *v = actor__alloc(cap * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	if (r->len != 0)
		memcpy(v, r->v, r->len * sizeof(*v));
	if (r->v != NULL)
		actor__free(r->v, r->cap * sizeof(*v));
	r->v = v;
	r->cap = cap;
	return 0;
}

static int refs_add(struct actor__refs *r, actor_ref_t ref)
{
	int rc = refs_reserve(r);
	if (rc == 0)
		r->v[r->len++] = ref;
	return rc;
}

static bool refs_has(const struct actor__refs *r, actor_ref_t ref)
{
	for (uint32_t i = 0; i < r->len; i++) {
		if (actor_ref_eq(r->v[i], ref))
			return true;
	}
	return false;
}

/* Removes one entry equal to `ref`; false if there was none. */
static bool refs_remove(struct actor__refs *r, actor_ref_t ref)
{
	for (uint32_t i = 0; i < r->len; i++) {
		if (actor_ref_eq(r->v[i], ref)) {
			r->v[i] = r->v[--r->len];
			return true;
		}
	}
	return false;
}

static void extra_free(struct actor__extra *x)
{
	if (x == NULL)
		return;
	if (x->monitors.v != NULL)
		actor__free(x->monitors.v, x->monitors.cap * sizeof(actor_ref_t));
	if (x->links.v != NULL)
		actor__free(x->links.v, x->links.cap * sizeof(actor_ref_t));
	actor__free(x, sizeof(*x));
}

/* The holder of `a`: its records, allocated on first use; NULL if out of memory. */
static struct actor__extra *extra_of(struct actor *a)
{
	if (a->extra == NULL)
		a->extra = actor__zalloc(sizeof(*a->extra));
	return a->extra;
}

/* A new actor's records, before it exists (actor_spawn): the spawner (in its turn) as its
 * link, with room reserved in the spawner's links for the new actor; opts->monitor as its
 * watcher, which must be alive (-ESRCH). */
static int spawn_records(actor_system_t *sys, const actor_spawn_opts_t *opts, struct actor *parent,
                         struct actor__extra **out)
{
	if (!actor_ref_is_none(opts->monitor)) {
		actor_info_t info;
		if (actor_info(sys, opts->monitor, &info) < 0)
			return -ESRCH;
	}
	struct actor__extra *x = actor__zalloc(sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	int rc = 0;
	if (!actor_ref_is_none(opts->monitor))
		rc = refs_add(&x->monitors, opts->monitor);
	if (rc == 0 && parent != NULL)
		rc = refs_add(&x->links, parent->ref);
	if (rc == 0 && parent != NULL)
		rc = extra_of(parent) != NULL ? refs_reserve(&parent->extra->links) : -ENOMEM;
	if (rc < 0) {
		extra_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Spawning
 */

/* The side block (internal.h), if the options or the system ask for one. */
static int side_new(actor_system_t *sys, const actor_spawn_opts_t *opts, struct actor *a)
{
	a->counted = opts->capacity != 0 || sys->count_depth;
	a->side = NULL;
	if (!a->counted && opts->name == NULL && opts->destroy == NULL)
		return 0;
	struct actor__side *s = actor__zalloc(actor__side_size(a->counted));
	if (s == NULL)
		return -ENOMEM;
	s->name = opts->name;
	s->destroy = opts->destroy;
	s->capacity = opts->capacity;
	s->low = opts->capacity / 2; /* flow.c, "Room" */
	a->side = s;
	return 0;
}

int actor_spawn(actor_system_t *sys, const actor_spawn_opts_t *opts, actor_behavior_fn *fn,
                void *state, actor_ref_t *out)
{
	static const actor_spawn_opts_t defaults;
	if (sys == NULL || fn == NULL || out == NULL)
		return -EINVAL;
	if (opts == NULL)
		opts = &defaults;
	if (opts->stay < 0 || opts->stay > 1 || opts->link < 0 || opts->link > 1 ||
	    opts->capacity > ACTOR_CAPACITY_MAX)
		return -EINVAL;
	if (atomic_load_explicit(&sys->shutdown, memory_order_acquire))
		return -ESHUTDOWN;

	struct actor_worker *self = actor__self_worker(sys);
	/* `link`: the spawner is the actor whose turn this thread is running. */
	struct actor *parent = opts->link && self != NULL ? self->ctx.actor : NULL;
	if (opts->link && parent == NULL)
		return -EINVAL;
	unsigned home;
	int rc = actor__place(sys, opts, self, &home);
	if (rc < 0)
		return rc;

	struct actor *a = actor__alloc(sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	struct actor__extra *x = NULL;
	if (parent != NULL || !actor_ref_is_none(opts->monitor)) {
		rc = spawn_records(sys, opts, parent, &x);
		if (rc < 0) {
			actor__free(a, sizeof(*a));
			return rc;
		}
	}
	rc = side_new(sys, opts, a);
	uint32_t idx;
	if (rc == 0)
		rc = actor__slot_alloc(sys, self, &idx);
	if (rc < 0) {
		extra_free(x);
		if (a->side != NULL)
			actor__free(a->side, actor__side_size(a->counted));
		actor__free(a, sizeof(*a));
		return rc;
	}
	struct actor__slot *slot = actor__slot_at(sys, idx);
	uint32_t gen = atomic_load_explicit(&slot->gen, memory_order_relaxed);

	actor__mpsc_init(&a->mbox);
	a->link.next = NULL;
	a->fn = fn;
	a->state = state;
	a->ref.id = ((uint64_t)gen << 32) | idx;
	atomic_init(&a->home, (uint16_t)home);
	a->extra = x;
	a->flags = a->counted ? ACTOR_COUNTED : 0;
	a->svc_bits = 0;
	a->reason = 0;
	a->waker = 0;
	a->streak = 0;
	a->cooldown = 0;
	a->pinned = sys->no_move || opts->stay || opts->placement == ACTOR_PLACE_FIXED;

	/* Read before it is visible: from then on its home worker may stop and free it (a
	 * shutdown racing this spawn, say) while this thread is still here. */
	*out = a->ref;
	/* The spawner's side of the link, in its own turn; the room was reserved above. */
	if (parent != NULL)
		parent->extra->links.v[parent->extra->links.len++] = a->ref;
	/* seq_cst: counted before it is visible, so the "all stopped" check in
	 * actor__note_stopped never sees zero while this actor lives. */
	atomic_fetch_add(&sys->workers[home].resident, 1);
	/* release: pairs with the acquire in actor__lookup; publishes the fields above. */
	atomic_store_explicit(&slot->actor, a, memory_order_release);
	ACTOR_TSAN_RELEASE(a);

	if (self != NULL)
		actor__stat_add(&self->st.spawned, 1);
	else
		atomic_fetch_add_explicit(&actor__ext_of(sys)->spawned, 1, memory_order_relaxed);
	/* The start hook travels as the actor's first message: nobody but this caller knows the
	 * reference yet, and one sender's messages arrive in order. Not sent (a shutdown, or the
	 * actor already stopped): it never runs, as documented. */
	if (opts->start != NULL)
		(void)actor__send_internal(sys, *out, ACTOR_REF_NONE, MSG_START, &opts->start,
		                           sizeof(opts->start));
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Sending
 */

/* Owner only, inside the turn of `from` or not (`from` NULL): pushes `msg` to `a`, which lives
 * on `self` and has no chain waiting in the outbox, and schedules it if the push found it
 * idle. True if it was scheduled here (or needed no scheduling); false: the caller schedules
 * it with actor__schedule, its home having changed meanwhile. */
static inline __attribute__((always_inline)) bool
push_here(struct actor_worker *self, struct actor *from, struct actor *a, actor_msg_t *msg)
{
	if (from != NULL)
		actor__talk_note(self, from, a);
	uintptr_t was = actor__mpsc_push(&a->mbox, (struct actor__mpsc_node *)msg);
	if (was != MPSC_EMPTY)
		return true;
	/* This push made us the holder; the home read before it was a hint, this one is exact. */
	if (actor__home_index(a) != self->index)
		return false;
	actor__schedule_here(self, a);
	return true;
}

/* Any thread, with `a` protected by QSBR. Pushes and schedules if this push found the mailbox
 * idle. Inline in send_to: a send between two actors of one worker is the common case, and it
 * should cost a push and a run-queue append, not three calls. */
static inline __attribute__((always_inline)) void
deliver(actor_system_t *sys, struct actor_worker *self, struct actor *a, actor_msg_t *msg)
{
	if (self != NULL) {
		bool here = actor__home_index(a) == self->index;
		/* A behaviour's message to an actor elsewhere travels with its others (sched.c,
		 * Outbox); so does one to an actor that has just moved here while a chain for it
		 * is waiting. */
		if ((!here || self->outbox_len != 0) && self->ctx.actor != NULL &&
		    actor__outbox_add(self, a, msg, here))
			return;
		if (here) {
			if (!push_here(self, self->ctx.actor, a, msg))
				actor__schedule(sys, self, a);
			return;
		}
		if (actor__mpsc_push(&a->mbox, (struct actor__mpsc_node *)msg) == MPSC_EMPTY)
			actor__schedule(sys, self, a);
		return;
	}
	if (actor__mpsc_push(&a->mbox, (struct actor__mpsc_node *)msg) == MPSC_EMPTY)
		actor__schedule(sys, NULL, a);
	/* MPSC_CLOSED: the actor is stopping; reclamation hands the message to the dead-letter
	 * hook. The send still succeeded: it raced the stop and lost, as the contract allows. */
}

/* A send to counted `a` (flow.c): counts a user message in, or refuses it. Apart, so that
 * send_to stays small for the others. */
static __attribute__((noinline)) int flow_check(actor_system_t *sys, struct actor_worker *self,
                                                struct actor *a, actor_msg_t *msg, actor_ref_t from)
{
	if (msg->type >= ACTOR_MSG_SYSTEM)
		return 0; /* the library's: never counted nor refused */
	bool nudge = false;
	int rc = actor__flow_reserve(self, a, from, &nudge);
	if (nudge) /* flow.c, W1: a control message, never refused */
		(void)actor__send_internal(sys, a->ref, from, MSG_FLOW, NULL, 0);
	return rc;
}

/* Counts a send from a thread outside every pool (feeder.c: such a thread that keeps sending is
 * a busy sender, and the workers make room for it). */
static inline void feeder_note(void)
{
	if (++actor__feeder_sends >= ACTOR_FEEDER_MARK)
		actor__feeder_mark();
}

/* A send from a thread outside the pool (`count`: as in send_to). Inline in send_outside, apart
 * from a worker's send so that the worker's keeps to the registers it needs, and in
 * send_outside_copy, actor_send's from outside. */
static inline __attribute__((always_inline)) int
send_outside_in(actor_system_t *sys, actor_ref_t to, actor_msg_t *msg, actor_ref_t from, bool count)
{
	if (atomic_load_explicit(&sys->finished, memory_order_acquire))
		return -ESHUTDOWN;
	struct actor__ext *x = actor__ext_enter(sys);
	struct actor *a = actor__lookup(sys, to);
	if (a == NULL) {
		actor__ext_leave(x);
		return -ESRCH;
	}
	if (__builtin_expect(a->counted, 0)) {
		int rc = flow_check(sys, NULL, a, msg, from);
		if (rc < 0) {
			actor__ext_leave(x);
			return rc; /* nothing queued; the message is as it was */
		}
	}
	msg->sender = from;
	deliver(sys, NULL, a, msg);
	if (count) {
		actor__ext_leave_sent(x);
		if (actor__tls_worker == NULL) /* not a worker of another system */
			feeder_note();
	} else {
		actor__ext_leave(x);
	}
	return 0;
}

static __attribute__((noinline)) int send_outside(actor_system_t *sys, actor_ref_t to,
                                                  actor_msg_t *msg, actor_ref_t from, bool count)
{
	return send_outside_in(sys, to, msg, from, count);
}

/* Sends `msg` to `to` as `from`; `count`: a message that counts as sent (stats). `self`:
 * actor__self_worker(sys), which the caller has read already. Inline, as are msg_new, send_copy
 * and deliver: a worker's actor_send is one function that calls nothing but the allocator's slow
 * path, and reads the thread's worker once (bench/README.md, "The fifth round"). */
static inline __attribute__((always_inline)) int send_to(actor_system_t *sys,
                                                         struct actor_worker *self, actor_ref_t to,
                                                         actor_msg_t *msg, actor_ref_t from,
                                                         bool count)
{
	if (self == NULL)
		return send_outside(sys, to, msg, from, count);
	struct actor *a = actor__lookup(sys, to);
	if (a == NULL)
		return -ESRCH;
	/* A bounded or counted mailbox: one well-predicted branch for the others. */
	if (__builtin_expect(a->counted, 0)) {
		int rc = flow_check(sys, self, a, msg, from);
		if (rc < 0)
			return rc; /* nothing queued; the message is as it was */
	}
	msg->sender = from;
	deliver(sys, self, a, msg);
	if (count)
		actor__stat_add(&self->st.sent, 1);
	return 0;
}

/* The actor whose behaviour `w` (actor__self_worker) is running, or none. */
static actor_ref_t sender_of(const struct actor_worker *w)
{
	return (w != NULL && w->ctx.actor != NULL) ? w->ctx.actor->ref : ACTOR_REF_NONE;
}

static actor_ref_t current_sender(actor_system_t *sys)
{
	return sender_of(actor__self_worker(sys));
}

static inline void msg_init(actor_msg_t *m, size_t total, uint32_t type)
{
	m->link_ = NULL;
	m->sender = ACTOR_REF_NONE;
	m->type = type;
	m->size = (uint32_t)(total - sizeof(*m));
}

static inline __attribute__((always_inline)) int msg_new(size_t total, uint32_t type,
                                                         actor_msg_t **out)
{
	actor_msg_t *m = actor__msg_alloc(total);
	if (m == NULL)
		return -ENOMEM;
	msg_init(m, total, type);
	*out = m;
	return 0;
}

int actor_msg_alloc(size_t size, uint32_t type, actor_msg_t **out)
{
	if (out == NULL || size < sizeof(actor_msg_t))
		return -EINVAL;
	if (size - sizeof(actor_msg_t) > ACTOR_MSG_MAX)
		return -EMSGSIZE;
	return msg_new(size, type, out);
}

void actor_msg_free(actor_msg_t *msg)
{
	if (msg != NULL)
		actor__msg_free(msg, actor__msg_bytes(msg));
}

/* Copies `len` bytes to `dst`. A payload of up to 16 bytes (a number, a pointer, a ref: the
 * common case) takes two loads and two stores, which may overlap, instead of a call. */
static inline void copy_payload(void *dst, const void *src, size_t len)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (len > 16) {
		memcpy(d, s, len);
	} else if (len >= 8) {
		uint64_t first, last;
		memcpy(&first, s, 8);
		memcpy(&last, s + len - 8, 8);
		memcpy(d, &first, 8);
		memcpy(d + len - 8, &last, 8);
	} else if (len >= 4) {
		uint32_t first, last;
		memcpy(&first, s, 4);
		memcpy(&last, s + len - 4, 4);
		memcpy(d, &first, 4);
		memcpy(d + len - 4, &last, 4);
	} else if (len > 0) {
		d[0] = s[0];
		d[len / 2] = s[len / 2];
		d[len - 1] = s[len - 1];
	}
}

/* Copies `len` bytes into a new message and sends it; frees it if the send fails. */
static inline __attribute__((always_inline)) int
send_copy(actor_system_t *sys, struct actor_worker *self, actor_ref_t to, actor_ref_t from,
          uint32_t type, const void *data, size_t len, bool count)
{
	actor_msg_t *m;
	int rc = msg_new(sizeof(*m) + len, type, &m);
	if (rc < 0)
		return rc;
	copy_payload(m + 1, data, len);
	rc = send_to(sys, self, to, m, from, count);
	if (rc < 0)
		actor_msg_free(m);
	return rc;
}

int actor__send_internal(actor_system_t *sys, actor_ref_t to, actor_ref_t from, uint32_t type,
                         const void *data, size_t len)
{
	/* Library messages that reach behaviours (DOWN, timers, network events) count as sent,
	 * like the user's; control messages do not. */
	return send_copy(sys, actor__self_worker(sys), to, from, type, data, len,
	                 type < MSG_CONTROL);
}

/* One ACTOR_MSG_WRITABLE from `a`, which has room (or stopped), to a sender it refused (flow.c).
 * -ESRCH, a sender that has stopped: skipped. */
static void send_writable(struct actor_worker *w, struct actor *a, actor_ref_t sender)
{
	actor_writable_t wr = {.actor = a->ref};
	(void)actor__send_internal(w->sys, sender, a->ref, ACTOR_MSG_WRITABLE, &wr, sizeof(wr));
}

int actor__send_internal_msg(actor_system_t *sys, actor_ref_t to, actor_msg_t *m)
{
	return send_to(sys, actor__self_worker(sys), to, m, ACTOR_REF_NONE, true);
}

int actor__send_internal_from(actor_system_t *sys, actor_ref_t to, actor_ref_t from, actor_msg_t *m)
{
	return send_to(sys, actor__self_worker(sys), to, m, from, true);
}

int actor__send_pair(actor_system_t *sys, actor_ref_t to, actor_ref_t from, actor_msg_t *first,
                     actor_msg_t *second)
{
	struct actor_worker *self = actor__self_worker(sys);
	if (self == NULL)
		return -EINVAL;
	struct actor *a = actor__lookup(sys, to);
	if (a == NULL)
		return -ESRCH;
	/* The user's message counts in a bounded mailbox as a plain send would (flow.c); the
	 * control message in front of it, the library's, does not. */
	if (__builtin_expect(a->counted, 0)) {
		int rc = flow_check(sys, self, a, second, from);
		if (rc < 0)
			return rc; /* nothing queued */
	}
	first->sender = second->sender = from;
	/* A chain waiting for `a` holds this sender's earlier messages: they go first. The pair
	 * itself never joins a chain, which could be pushed in two parts. */
	actor__outbox_flush_any(self);
	actor__mpsc_chain_link((struct actor__mpsc_node *)first, (struct actor__mpsc_node *)second);
	uintptr_t was = actor__mpsc_push_chain(&a->mbox, (struct actor__mpsc_node *)first,
	                                       (struct actor__mpsc_node *)second);
	if (was == MPSC_EMPTY) {
		if (actor__home_index(a) == self->index)
			actor__schedule_here(self, a);
		else
			actor__schedule(sys, self, a);
	}
	/* MPSC_CLOSED: as in deliver, reclamation dead-letters both. */
	actor__stat_add(&self->st.sent, 1);
	return 0;
}

/* actor_send's checks of its arguments: 0, or the error it returns. */
static inline int send_args(actor_system_t *sys, actor_ref_t to, uint32_t type, const void *data,
                            size_t len)
{
	if (sys == NULL || (data == NULL && len > 0) || type >= ACTOR_MSG_SYSTEM)
		return -EINVAL;
	if (len > ACTOR_MSG_MAX)
		return -EMSGSIZE;
	if (actor_ref_is_none(to))
		return -ESRCH;
	return 0;
}

/* actor_send, every case. */
static __attribute__((noinline)) int send_any(actor_system_t *sys, actor_ref_t to, uint32_t type,
                                              const void *data, size_t len)
{
	int rc = send_args(sys, to, type, data, len);
	if (rc < 0)
		return rc;
	struct actor_worker *w = actor__self_worker(sys);
	return send_copy(sys, w, to, sender_of(w), type, data, len, true);
}

/* actor_send from a thread outside every pool: send_any's steps for that case in one function,
 * the section markers and the allocation's common case inline, so that a thread feeding actors
 * (bench/fork_join_throughput) pays no calls (bench/README.md, "The sixth round"). */
static __attribute__((noinline)) int send_outside_copy(actor_system_t *sys, actor_ref_t to,
                                                       uint32_t type, const void *data, size_t len)
{
	int rc = send_args(sys, to, type, data, len);
	if (rc < 0)
		return rc;
	actor_msg_t *m;
	rc = msg_new(sizeof(*m) + len, type, &m);
	if (rc < 0)
		return rc;
	copy_payload(m + 1, data, len);
	rc = send_outside_in(sys, to, m, ACTOR_REF_NONE, true);
	if (rc < 0)
		actor_msg_free(m);
	return rc;
}

/* The end of a fast send whose receiver moved away while the message was pushed (push_here). */
static __attribute__((noinline)) int send_fast_moved(struct actor_worker *w, struct actor *a)
{
	actor__schedule(w->sys, w, a);
	actor__stat_add(&w->st.sent, 1);
	return 0;
}

/* The rest of a fast send (actor_send), in block `m` of `total` bytes. */
static inline __attribute__((always_inline)) int send_fast_in(struct actor_worker *w,
                                                              struct actor *a, actor_msg_t *m,
                                                              size_t total, uint32_t type,
                                                              const void *data, size_t len)
{
	msg_init(m, total, type);
	copy_payload(m + 1, data, len);
	struct actor *from = w->ctx.actor;
	m->sender = from->ref;
	if (!push_here(w, from, a, m))
		return send_fast_moved(w, a);
	actor__stat_add(&w->st.sent, 1);
	return 0;
}

/* A fast send whose thread's list is empty (a sender that outruns its receivers' frees). */
static __attribute__((noinline)) int send_fast_alloc(struct actor_worker *w, struct actor *a,
                                                     uint32_t type, const void *data, size_t len)
{
	size_t total = sizeof(actor_msg_t) + len;
	actor_msg_t *m = actor__msg_alloc_slow(total);
	if (m == NULL)
		return -ENOMEM;
	return send_fast_in(w, a, m, total, type, data, len);
}

/* The common case apart: a behaviour sends a small payload to a plain actor of its own worker
 * with no chain waiting, a block on the worker's list. Every step of it is the general path's
 * (send_copy, send_to, deliver), in the same order; any other case goes there before anything
 * is changed. Nothing here calls out, so that the compiler saves no registers for it: a local
 * message cost 362 instructions, 20 of them the general path's register saves and restores
 * (bench/README.md, "The fifth round"). */
int actor_send(actor_system_t *sys, actor_ref_t to, uint32_t type, const void *data, size_t len)
{
	struct actor_worker *w = actor__tls_worker;
	if (w == NULL)
		return send_outside_copy(sys, to, type, data, len);
	if (w->sys != sys || w->ctx.actor == NULL || w->outbox_len != 0 ||
	    type >= ACTOR_MSG_SYSTEM || len > 16 || (data == NULL && len > 0))
		return send_any(sys, to, type, data, len);
	struct actor *a = actor__lookup(sys, to); /* NULL for ACTOR_REF_NONE too */
	if (a == NULL || a->counted || actor__home_index(a) != w->index)
		return send_any(sys, to, type, data, len);
	size_t total = sizeof(actor_msg_t) + len;
	actor_msg_t *m = actor__msg_take(total);
	if (m == NULL)
		return send_fast_alloc(w, a, type, data, len);
	return send_fast_in(w, a, m, total, type, data, len);
}

int actor_send_msg(actor_system_t *sys, actor_ref_t to, actor_msg_t *msg)
{
	/* The library's messages that behaviours get (DOWN, timers, network events, ...) may be
	 * passed on; its control types may not. */
	if (sys == NULL || msg == NULL || msg->type >= MSG_CONTROL)
		return -EINVAL;
	if (msg->size > ACTOR_MSG_MAX)
		return -EMSGSIZE;
	if (actor_ref_is_none(to))
		return -ESRCH;
	struct actor_worker *w = actor__self_worker(sys);
	bool forwarding = w != NULL && w->ctx.msg == msg;
	uint32_t type = msg->type;
	if (type >= ACTOR_MSG_SYSTEM)
		msg->type = type | MSG_FORWARDED;
	int rc = send_to(sys, w, to, msg, sender_of(w), true);
	if (rc < 0)
		msg->type = type; /* still the caller's, as it was */
	else if (forwarding)
		w->ctx.kept = true; /* the receiver owns it now; the turn must not free it */
	return rc;
}

int actor_stop(actor_system_t *sys, actor_ref_t target)
{
	if (sys == NULL)
		return -EINVAL;
	if (actor_ref_is_none(target))
		return -ESRCH;
	return actor__send_internal(sys, target, current_sender(sys), MSG_STOP, NULL, 0);
}

int actor_monitor(actor_system_t *sys, actor_ref_t watcher, actor_ref_t target)
{
	if (sys == NULL)
		return -EINVAL;
	if (actor_ref_is_none(watcher))
		return -ESRCH;
	/* Checks that the watcher lives without holding it: a watcher that stops later simply
	 * makes the DOWN send fail, which is harmless. */
	actor_info_t info;
	int rc = actor_info(sys, watcher, &info);
	if (rc < 0)
		return rc;
	rc = actor__send_internal(sys, target, watcher, MSG_MONITOR, &watcher, sizeof(watcher));
	if (rc == -ESRCH) {
		actor_down_t d = {.actor = target, .reason = ACTOR_REASON_NOPROC};
		return actor__send_internal(sys, watcher, target, ACTOR_MSG_DOWN, &d, sizeof(d));
	}
	return rc;
}

int actor_demonitor(actor_system_t *sys, actor_ref_t watcher, actor_ref_t target)
{
	if (sys == NULL)
		return -EINVAL;
	if (actor_ref_is_none(watcher) || actor_ref_is_none(target))
		return -ESRCH;
	/* From the same thread as the actor_monitor it cancels, so it arrives after it. */
	return actor__send_internal(sys, target, current_sender(sys), MSG_DEMONITOR, &watcher,
	                            sizeof(watcher));
}

int actor_info(actor_system_t *sys, actor_ref_t ref, actor_info_t *out)
{
	if (sys == NULL || out == NULL)
		return -EINVAL;
	struct actor__ext *x = actor__self_worker(sys) == NULL ? actor__ext_enter(sys) : NULL;
	struct actor *a = actor__lookup(sys, ref);
	if (a != NULL) {
		out->name = a->side != NULL ? a->side->name : NULL;
		out->worker = actor__home_index(a);
		out->capacity = a->side != NULL ? a->side->capacity : 0;
		actor__flow_info(a, out);
	}
	if (x != NULL)
		actor__ext_leave(x);
	return a != NULL ? 0 : -ESRCH;
}

/* ---------------------------------------------------------------------------------------------
 * Inside a behaviour
 */

actor_ref_t actor_self(const actor_ctx_t *ctx)
{
	return (ctx != NULL && ctx->actor != NULL) ? ctx->actor->ref : ACTOR_REF_NONE;
}

actor_ref_t actor_sender(const actor_ctx_t *ctx)
{
	return (ctx != NULL && ctx->msg != NULL) ? ctx->msg->sender : ACTOR_REF_NONE;
}

actor_system_t *actor_ctx_system(const actor_ctx_t *ctx)
{
	return ctx != NULL && ctx->worker != NULL ? ctx->worker->sys : NULL;
}

unsigned actor_ctx_worker(const actor_ctx_t *ctx)
{
	return ctx != NULL && ctx->worker != NULL ? ctx->worker->index : 0;
}

static bool ctx_valid(const actor_ctx_t *ctx)
{
	return actor__ctx_worker(ctx) != NULL;
}

int actor_become(actor_ctx_t *ctx, actor_behavior_fn *fn)
{
	if (!ctx_valid(ctx) || fn == NULL)
		return -EINVAL;
	ctx->actor->fn = fn;
	return 0;
}

int actor_exit(actor_ctx_t *ctx, int reason)
{
	if (!ctx_valid(ctx))
		return -EINVAL;
	if (!(ctx->actor->flags & ACTOR_EXITING)) {
		ctx->actor->flags |= ACTOR_EXITING;
		ctx->actor->reason = reason;
	}
	return 0;
}

int actor_msg_keep(actor_ctx_t *ctx)
{
	if (!ctx_valid(ctx) || ctx->msg == NULL)
		return -EINVAL;
	ctx->kept = true;
	return 0;
}

/* Tells `to` that `from` stopped with `reason` (an exit signal; see "the records"). */
static int send_exit(actor_system_t *sys, actor_ref_t from, int reason, actor_ref_t to)
{
	actor_exit_t e = {.actor = from, .reason = reason};
	return actor__send_internal(sys, to, from, MSG_EXIT_SIGNAL, &e, sizeof(e));
}

int actor_link(actor_ctx_t *ctx, actor_ref_t other)
{
	if (!ctx_valid(ctx) || actor_ref_is_none(other))
		return -EINVAL;
	struct actor *a = ctx->actor;
	if (actor_ref_eq(other, a->ref))
		return 0;
	struct actor__extra *x = extra_of(a);
	if (x == NULL)
		return -ENOMEM;
	bool added = !refs_has(&x->links, other);
	if (added && refs_add(&x->links, other) < 0)
		return -ENOMEM;
	actor_system_t *sys = ctx->worker->sys;
	int rc = actor__send_internal(sys, other, a->ref, MSG_LINK, &a->ref, sizeof(a->ref));
	if (rc == -ESRCH) {
		/* Gone already: the caller hears of it as of any partner's stop, in mailbox order,
		 * and acts on it only while the entry above is still there. */
		rc = send_exit(sys, other, ACTOR_REASON_NOPROC, a->ref);
	}
	if (rc < 0 && added)
		refs_remove(&x->links, other); /* failed: as if never called */
	return rc;
}

int actor_unlink(actor_ctx_t *ctx, actor_ref_t other)
{
	if (!ctx_valid(ctx) || actor_ref_is_none(other))
		return -EINVAL;
	struct actor *a = ctx->actor;
	if (actor_ref_eq(other, a->ref))
		return 0;
	if (a->extra != NULL)
		refs_remove(&a->extra->links, other);
	/* What the caller relies on is done: its entry is gone, so no signal from `other` acts on
	 * it any more. If the request cannot be sent (`other` stopped, or no memory), `other`
	 * keeps a stale entry at worst, whose signal this actor will ignore. */
	(void)actor__send_internal(ctx->worker->sys, other, a->ref, MSG_UNLINK, &a->ref,
	                           sizeof(a->ref));
	return 0;
}

int actor_trap_exits(actor_ctx_t *ctx, int on)
{
	if (!ctx_valid(ctx) || on < 0 || on > 1)
		return -EINVAL;
	if (on)
		ctx->actor->flags |= ACTOR_TRAP_EXITS;
	else
		ctx->actor->flags &= (uint8_t)~ACTOR_TRAP_EXITS;
	return 0;
}

int actor__trap_stop(actor_ctx_t *ctx)
{
	if (!ctx_valid(ctx))
		return -EINVAL;
	ctx->actor->flags |= ACTOR_TRAP_STOP;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Stopping (home worker only)
 */

/* The actor_ref_t a control message carries (MSG_MONITOR, MSG_LINK, ...). */
static actor_ref_t msg_ref(const actor_msg_t *m)
{
	actor_ref_t r;
	memcpy(&r, m + 1, sizeof(r));
	return r;
}

static void send_down(actor_system_t *sys, struct actor *a, actor_ref_t watcher, int reason)
{
	actor_down_t d = {.actor = a->ref, .reason = reason};
	actor__send_internal(sys, watcher, a->ref, ACTOR_MSG_DOWN, &d, sizeof(d));
}

/* The holder of `a`, in its turn: records a monitor or a link asked for by another actor. One
 * that cannot be recorded is answered now rather than never: a DOWN or an exit signal with
 * -ENOMEM, as if `a` had stopped (so the link's other side drops its entry). */
static void add_monitor(actor_system_t *sys, struct actor *a, actor_ref_t watcher)
{
	struct actor__extra *x = extra_of(a);
	if (x == NULL || refs_add(&x->monitors, watcher) < 0)
		send_down(sys, a, watcher, -ENOMEM);
}

static void add_link(actor_system_t *sys, struct actor *a, actor_ref_t other)
{
	struct actor__extra *x = extra_of(a);
	if (x == NULL || (!refs_has(&x->links, other) && refs_add(&x->links, other) < 0))
		send_exit(sys, a->ref, -ENOMEM, other);
}

/* Step 2's messages: DOWN to each monitor, then an exit signal to each linked partner; frees
 * the records. */
static void notify_partners(actor_system_t *sys, struct actor *a)
{
	struct actor__extra *x = a->extra;
	a->extra = NULL;
	for (uint32_t i = 0; i < x->monitors.len; i++)
		send_down(sys, a, x->monitors.v[i], a->reason);
	for (uint32_t i = 0; i < x->links.len; i++)
		send_exit(sys, a->ref, a->reason, x->links.v[i]);
	extra_free(x);
}

static void dead_letter(struct actor_worker *w, struct actor *a, actor_msg_t *m)
{
	if (actor__msg_forwarded(m->type))
		m->type &= ~MSG_FORWARDED; /* its service saw it at its first delivery */
	else if (m->type >= ACTOR_MSG_SYSTEM) {
		/* A service's message: it releases what the message carries (a connection, say). */
		const struct actor__service_ops *s = actor__svc_of(w->sys, m->type);
		if (s != NULL && s->dead_letter != NULL && w->svc[s->id] != NULL)
			s->dead_letter(w, w->svc[s->id], a->ref, m);
	}
	/* A monitor or a link asked for before the stop: answered as if it had been recorded. */
	if (m->type == MSG_MONITOR)
		send_down(w->sys, a, msg_ref(m), a->reason);
	else if (m->type == MSG_LINK)
		send_exit(w->sys, a->ref, a->reason, msg_ref(m));
	else if (m->type == MSG_NAMED)
		w->sys->names_release(w->sys, a->ref); /* the stop came first: names.c, N2 */
	else if (m->type < MSG_CONTROL) {
		actor_system_t *sys = w->sys;
		if (sys->dead_letter != NULL)
			sys->dead_letter(sys->dead_letter_arg, a->ref, m);
		actor__stat_add(&w->st.dead_letters, 1);
	}
	actor_msg_free(m);
}

/* Pops everything poppable into dead letters. */
static void drain_dead(struct actor_worker *w, struct actor *a)
{
	struct actor__mpsc_node *n;
	while ((n = actor__mpsc_pop(&a->mbox)) != NULL)
		dead_letter(w, a, node_msg(n));
}

void actor__free_retired(struct actor_worker *w, struct actor *a)
{
	drain_dead(w, a); /* messages pushed by senders that raced the stop */
	actor__flow_free(w, a, send_writable);
	actor__free(a, sizeof(*a));
}

/* The services holding something of `a`'s hear that it stopped. */
static void owner_stopped(struct actor_worker *w, struct actor *a)
{
	for (unsigned i = 0; w->sys->svcs[i] != NULL; i++) {
		const struct actor__service_ops *s = w->sys->svcs[i];
		if ((s->actor_bits & a->svc_bits) && s->owner_stopped != NULL && w->svc[i] != NULL)
			s->owner_stopped(w, w->svc[i], a);
	}
}

/* Steps 1 and 2 of the stop. The actor may be running, queued or idle. */
void actor__kill_now(struct actor_worker *w, struct actor *a, int reason)
{
	assert(actor__home(w->sys, a) == w);
	if (a->flags & ACTOR_DEAD)
		return;
	a->flags = (a->flags & ~ACTOR_EXITING) | ACTOR_DEAD;
	a->reason = reason;

	struct actor__slot *s = actor__slot_at(w->sys, (uint32_t)a->ref.id);
	uint32_t gen = (uint32_t)(a->ref.id >> 32) + 1;
	/* seq_cst: the clear precedes the retire epoch read (refs.c R3) and pairs with the acquire
	 * in actor__lookup. Generation 0 is skipped so that no reference id is ever 0. */
	atomic_store(&s->actor, NULL);
	atomic_store(&s->gen, gen == 0 ? 1 : gen);
	if (a->flags & ACTOR_NAMED) /* before any DOWN: names.c, N1 and N3 */
		w->sys->names_release(w->sys, a->ref);

	if (a->side != NULL && a->side->destroy != NULL)
		a->side->destroy(a->state);
	actor__flow_stopped(w, a, send_writable); /* before the DOWNs (flow.c, W3) */
	if (a->extra != NULL)
		notify_partners(w->sys, a);
	if (a->svc_bits != 0)
		owner_stopped(w, a);
	actor__stat_add(&w->st.stopped, 1);
	actor__note_stopped(w);
}

/* Step 3 from a turn: drain and close; retire, or stay scheduled to retry. */
static void finish_dead_turn(struct actor_worker *w, struct actor *a)
{
	drain_dead(w, a);
	if (actor__mpsc_close(&a->mbox, false))
		actor__retire(w, a);
	else
		actor__runq_push_local(w, a); /* a push is in progress: try again next turn */
}

/* ---------------------------------------------------------------------------------------------
 * One turn (home worker only)
 */

/* Stops `a` after this message with `reason`, unless it is stopping already. */
static void exit_after(struct actor *a, int reason)
{
	if (!(a->flags & ACTOR_EXITING)) {
		a->flags |= ACTOR_EXITING;
		a->reason = reason;
	}
}

/* An exit signal reached `a` (actor.h, "Links and exit signals"): true if `m` is now the
 * ACTOR_MSG_EXIT for a behaviour that traps exits; false if it was acted on or ignored. */
static bool exit_signal(struct actor_worker *w, struct actor *a, actor_msg_t *m)
{
	actor_exit_t e;
	memcpy(&e, m + 1, sizeof(e));
	/* Only a link this actor still has counts, and only once. */
	if (a->extra == NULL || !refs_remove(&a->extra->links, e.actor))
		return false;
	if (a->flags & ACTOR_TRAP_EXITS) {
		/* The payload is already an actor_exit_t. A library message for the behaviour
		 * counts as sent, as a DOWN does: here, where it became one. */
		m->type = ACTOR_MSG_EXIT;
		actor__stat_add(&w->st.sent, 1);
		return true;
	}
	if (e.reason != ACTOR_REASON_NORMAL)
		exit_after(a, e.reason);
	return false;
}

/* The core's control messages: true if `m` became a message for the behaviour, else it is
 * freed here. */
static bool handle_control(struct actor_worker *w, struct actor *a, actor_msg_t *m)
{
	actor_system_t *sys = w->sys;
	switch (m->type) {
	case MSG_START:
		if (!(a->flags & ACTOR_EXITING)) {
			void (*start)(actor_ctx_t *, void *);
			memcpy(&start, m + 1, sizeof(start));
			/* A behaviour's call without a message: actor_msg_keep says so. */
			w->ctx.msg = NULL;
			w->ctx.kept = false;
			actor__call_begin(w, a);
			start(&w->ctx, a->state);
			actor__call_end(w);
		}
		break;
	case MSG_NAMED:
		a->flags |= ACTOR_NAMED; /* its stop releases the name (names.c, N2) */
		break;
	case MSG_MONITOR:
		add_monitor(sys, a, msg_ref(m));
		break;
	case MSG_DEMONITOR:
		if (a->extra != NULL)
			refs_remove(&a->extra->monitors, msg_ref(m));
		break;
	case MSG_LINK:
		add_link(sys, a, msg_ref(m));
		break;
	case MSG_UNLINK:
		if (a->extra != NULL)
			refs_remove(&a->extra->links, msg_ref(m));
		break;
	case MSG_EXIT_SIGNAL:
		if (exit_signal(w, a, m))
			return true;
		break;
	case MSG_STOP:
		if (a->flags & ACTOR_TRAP_STOP)
			return true; /* the behaviour stops in its own time (actor__trap_stop) */
		exit_after(a, ACTOR_REASON_KILLED);
		break;
	}
	actor_msg_free(m);
	return false;
}

/* The message pushed in one exchange with the one just popped (actor__send_pair). It is in the
 * mailbox already; a pop fails only while a later push is still linking itself behind it
 * (mpsc.h, "in progress"), which its producer finishes within a few instructions unless it was
 * preempted there: yield to it. */
static actor_msg_t *pop_paired(struct actor *a)
{
	struct actor__mpsc_node *n;
	while ((n = actor__mpsc_pop(&a->mbox)) == NULL)
		sched_yield();
	return node_msg(n);
}

/* A system message is about to reach `a`'s behaviour: its service (if any) sees it first. False
 * if it is not for the behaviour (consumed and freed here). *after: the service to call
 * `handled` on once the behaviour has returned, or NULL. A message that annotates the one
 * behind it (SVC_NEXT_NOTE) is replaced in *mp by that one. */
static bool system_message(struct actor_worker *w, struct actor *a, actor_msg_t **mp,
                           struct actor__svc_note *note, const struct actor__service_ops **after)
{
	actor_msg_t *m = *mp;
	if (actor__msg_forwarded(m->type)) {
		m->type &= ~MSG_FORWARDED; /* its service saw it at its first delivery */
		*after = NULL;
		return true;
	}
	const struct actor__service_ops *s = actor__svc_of(w->sys, m->type);
	enum actor__svc_verdict v = SVC_DELIVER;
	if (s != NULL && s->receive != NULL && w->svc[s->id] != NULL)
		v = s->receive(w, w->svc[s->id], a, m, note);
	*after = v == SVC_DELIVER_NOTE || v == SVC_NEXT_NOTE ? s : NULL;
	if (v == SVC_NEXT_NOTE) {
		actor_msg_free(m);
		*mp = pop_paired(a);
		if (__builtin_expect(a->counted, 0) && (*mp)->type < ACTOR_MSG_SYSTEM)
			actor__flow_popped(a->side); /* counted in by actor__send_pair */
		return true;
	}
	if (v == SVC_CONSUMED) {
		actor_msg_free(m);
		return false;
	}
	if (s == NULL && m->type >= MSG_CONTROL)
		return handle_control(w, a, m); /* the core's own: start, stop, monitors, links */
	return true;
}

/* One turn of `a`, which is alive: up to `batch` messages handed to its behaviour. With
 * `counted` (a constant in each caller, so that each gets a copy of its own) it also takes each
 * user message off the mailbox's count as it pops it, and ends with the room check for refused
 * senders (flow.c). */
static inline __attribute__((always_inline)) void turn(struct actor_worker *w, struct actor *a,
                                                       bool counted)
{
	struct actor_ctx *ctx = &w->ctx;
	unsigned n = 0, popped = 0; /* behaviour calls; all messages, control ones included */
	ctx->actor = a;
	while (popped < w->sys->batch) {
		struct actor__mpsc_node *node = actor__mpsc_pop(&a->mbox);
		if (node == NULL)
			break;
		/* The next message (the stub when none is linked yet), most likely written on
		 * another core: its line comes while this one's behaviour runs, not when the pop
		 * after it reads its link (bench/fork_join_throughput, bench/README.md "The
		 * fourth round"). tail is the consumer's own field. A read: asked for with
		 * write intent (prefetchw, under -mprfchw), the line was taken from the sender,
		 * whose next push writes that node's link (22.0 ms against 19.3 ms). */
		__builtin_prefetch(a->mbox.tail, 0);
		actor_msg_t *m = node_msg(node);
		popped++;
		if (counted && m->type < ACTOR_MSG_SYSTEM)
			actor__flow_popped(a->side); /* handed to the behaviour now (flow.c) */
		const struct actor__service_ops *svc = NULL;
		struct actor__svc_note note;
		if (m->type >= ACTOR_MSG_SYSTEM) {
			/* Through copies: `m` and `svc` themselves never have their address taken,
			 * so the user messages' path keeps them in registers even when
			 * system_message is not inlined (it is not, into the two turns). */
			actor_msg_t *sm = m;
			const struct actor__service_ops *ssvc;
			if (!system_message(w, a, &sm, &note, &ssvc)) {
				if (a->flags & ACTOR_EXITING)
					break;
				continue;
			}
			m = sm;
			svc = ssvc;
		}
		/* Control messages a service turned into one for the behaviour (a hand-off became
		 * ADOPTED) were never counted as sent, so they do not count as processed. */
		if (m->type < MSG_CONTROL)
			n++;
		ctx->msg = m;
		ctx->kept = false;
		actor__call_begin(w, a); /* plain stores: watchdog and crash reports (internal.h) */
		a->fn(ctx, a->state, m);
		actor__call_end(w);
		/* `m` may belong to someone else now (forwarded with actor_send_msg, and maybe
		 * freed on another worker already): the service's note says what it needs. */
		if (svc != NULL)
			svc->handled(w, w->svc[svc->id], &note);
		if (!ctx->kept)
			actor__msg_free(m, actor__msg_bytes(m));
		if (a->flags & ACTOR_EXITING)
			break;
	}
	ctx->actor = NULL;
	ctx->msg = NULL;
	actor__outbox_flush_any(w);
	actor__stat_add(&w->st.processed, n);

	if (a->flags & ACTOR_EXITING) {
		actor__kill_now(w, a, a->reason);
		finish_dead_turn(w, a);
		return;
	}
	if (counted && a->side->capacity != 0)
		actor__flow_turn_end(w, a, send_writable); /* room for refused senders? */
	if (popped >= w->sys->batch || !actor__mpsc_mark_empty(&a->mbox))
		actor__runq_push_local(w, a); /* more to do, or a push is in progress */
}

/* The turn of an actor with a counted mailbox: a copy apart, so that the others' stays as it
 * was before bounded mailboxes. */
static __attribute__((noinline)) void turn_counted(struct actor_worker *w, struct actor *a)
{
	turn(w, a, true);
}

void actor__run(struct actor_worker *w, struct actor *a)
{
	if (w->stopping && !(a->flags & ACTOR_DEAD))
		actor__kill_now(w, a, ACTOR_REASON_SHUTDOWN); /* queued or running at shutdown */
	/* Both rare cases in one test of the byte the turn reads anyway: a stopped actor, and a
	 * counted mailbox (ACTOR_COUNTED, the holder's copy of `counted`). */
	if (__builtin_expect(a->flags & (ACTOR_DEAD | ACTOR_COUNTED), 0)) {
		if (a->flags & ACTOR_DEAD)
			finish_dead_turn(w, a);
		else
			turn_counted(w, a);
		return;
	}
	turn(w, a, false);
}
