/* flow.c: bounded mailboxes (contract 9): the capacity check on the send path, the count of
 * what a mailbox holds, the ACTOR_MSG_WRITABLE notice to refused senders, and the mailbox
 * figures actor_info gives (depth, age).
 *
 * What a mailbox holds: the user messages (types below ACTOR_MSG_SYSTEM) whose send returned 0
 * and that have not been handed to the behaviour yet. The send that accepts one counts it,
 * before its push (so also while it waits in the sender's outbox chain, sched.c); the run loop
 * takes it off as it pops it, before the behaviour call. Library messages (DOWN, timers,
 * network events, job results, notices, control messages, forwarded library messages) are
 * neither counted nor ever refused, so a full mailbox delays none of them.
 *
 * Room: a refused sender is told once the count has fallen to `low`, half the capacity
 * (rounded down), at the end of one of the receiver's turns. Half, not "below the capacity":
 * a notified sender then finds room for many messages, not one, so a producer refused again
 * at once does not trade one notice for every message (the hysteresis of actor_tcp_write's
 * high and low water marks); and the receiver still has half a mailbox of work queued while
 * its producers wake up, so it does not run dry.
 *
 * Fields (struct actor__flow, in the side block, internal.h) and who touches them:
 *   depth      senders on any thread add one with a CAS while it is below the capacity; the
 *              holder (the thread running or scheduling the actor: sched.c, "Moving actors")
 *              takes one off per popped user message.
 *   waiters    a stack of registrations of refused senders: they push a node with a CAS (from
 *              a worker thread, inside their behaviour); the holder takes the whole stack with
 *              an exchange, never one node, so the CAS cannot suffer ABA (a pusher never reads
 *              through the head it links to).
 *   round      the notification rounds done: the holder adds one after taking the stack and
 *              before sending the round's notices; refused senders read it.
 *   pending, notified
 *              the holder's alone. They travel with the actor when it moves between workers, as
 *              its other fields do: every hand-over of the actor orders them (mpsc.h).
 *
 * W1: no registration waits forever. A registration in `waiters` or `pending` is notified by
 *   the first turn end of the receiver that sees depth <= low, or when the receiver stops.
 *   Sender: pushes its node, then loads depth (both seq_cst). Holder: each pop's fetch_sub,
 *   then at the turn's end a load of `waiters` (seq_cst). In their single total order either
 *   that load sees the node, or the sender's load of depth follows the holder's last fetch_sub
 *   of the turn. Then, if the sender reads depth <= low, it sends the receiver MSG_FLOW (a
 *   control message: never refused), whose turn ends with the check; if it reads more, user
 *   messages not yet popped exist, and the turn that pops them ends with the check, after
 *   the push. A registration that a turn end takes while depth > low waits in `pending`: depth
 *   > low >= 0 means messages are coming, and each of their turn ends looks again.
 * W2: one notice per refusal episode. An episode starts with a refusal that finds no notice
 *   coming for that sender and receiver, and ends with the notice, which follows every refusal
 *   of the episode (it reaches the sender after them). Two mechanisms:
 *   - Each worker remembers, per (sender, receiver), the receiver's round the sender read just
 *     before pushing its last node (flow_seen, a small cache). A sender refused again while
 *     the receiver is still at that round pushes nothing: its node has not been notified yet.
 *     Why: the round that notifies a node is added after the stack take that found it, hence
 *     after the push, hence after the sender's read; had the sender handled that round's
 *     notice, the notice's delivery would order the add before this read, which would see it.
 *     Moving to another worker, or an evicted entry, costs a node, never a notice.
 *   - The holder dedupes. A sender with two nodes waiting gets one notice. A node whose round
 *     is below the current one, from a sender the last round notified, is dropped: that
 *     sender read the round before the last add, so its refusal came before that round's
 *     notice, which it has not handled (as above): the notice covers it. (A sender whose
 *     thread stalled between reading the round and pushing while the receiver finished two
 *     rounds could get one notice more; a notice too many is harmless, one too few would not
 *     be.)
 * W3: stop. A receiver that stops notifies every registration it holds, room or not, and
 *   those that raced the stop when its memory is reclaimed: a sender that does not monitor it
 *   would otherwise wait forever; its retry then fails with -ESRCH. A notice to a sender that
 *   has stopped fails (-ESRCH) and is skipped; one already sent to a sender that then stops
 *   is a dead letter like any other message.
 *
 * Age (actor_info's oldest_age_ns), for counted mailboxes only. Stamping each message would cost
 * a clock read per send, and stamping each actor as it is queued from idle would cost every
 * actor, counted or not, a store at each wake-up and at each turn end. Instead the count
 * carries it: the sender whose CAS takes `depth` from 0 to 1 stores, just before that CAS, a
 * coarse time in `since`: its worker's `turn_ns` (read once per loop turn), or, outside the
 * pool, the coarse monotonic clock (no system call). So the age is how long the mailbox has
 * held user messages without a break: the age of the oldest while that one waits, an upper
 * bound on it once the first has been handed over and others have followed without the count
 * falling to 0.
 * A1: no stamp of an earlier run. actor_info loads depth (acquire), then `since`. A depth
 *   above 0 was written by the CAS that took it from 0 or by a read-modify-write after it (a
 *   later add, the holder's subtract: the release sequence goes on), and that CAS's sender
 *   stored `since` before it: the load sees that store or a later one. A later one is the
 *   stamp of a sender that read depth 0 and lost its CAS to this run's (the same time, give or
 *   take), or of a later run. Only a sender preempted between its read of 0 and its store can
 *   leave a stamp off by that delay: a figure, as actor.h says.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"

/* ---------------------------------------------------------------------------------------------
 * The sender's side
 */

static struct actor__flow_seen *seen_slot(struct actor_worker *w, uint64_t sender,
                                          uint64_t receiver)
{
	uint64_t h = (sender ^ (receiver << 1)) * UINT64_C(0x9e3779b97f4a7c15);
	return &w->flow_seen[(h >> 32) % ACTOR_FLOW_SEEN];
}

/* `from`, running on `self`, was refused by `a`: registers it for one notice (W1, W2). */
static int refused(struct actor_worker *self, struct actor *a, actor_ref_t from, bool *nudge)
{
	/* From outside the pool, or outside a behaviour: nobody to tell later. */
	if (self == NULL || self->ctx.actor == NULL || actor_ref_is_none(from))
		return -EAGAIN;
	struct actor__flow *f = &a->side->flow;
	struct actor__flow_seen *seen = seen_slot(self, from.id, a->ref.id);
	/* seq_cst, as every access of `round`; W2. */
	if (seen->sender == from.id && seen->receiver == a->ref.id &&
	    seen->round == atomic_load(&f->round))
		return -EAGAIN; /* registered, not notified yet */
	struct actor__waiter *n = actor__alloc(sizeof(*n));
	if (n == NULL)
		return -ENOMEM; /* no notice can follow: say so */
	/* W2: read just before the push. */
	uint64_t round = atomic_load(&f->round);
	n->sender = from;
	n->round = round;
	struct actor__waiter *head = atomic_load_explicit(&f->waiters, memory_order_relaxed);
	do
		n->next = head;
	/* seq_cst: publishes the node to the holder's exchange, and comes before the load of
	 * depth below (W1). From here on the node is the holder's: it may be freed already. */
	while (!atomic_compare_exchange_weak(&f->waiters, &head, n));
	*seen = (struct actor__flow_seen){.sender = from.id, .receiver = a->ref.id, .round = round};
	*nudge = atomic_load(&f->depth) <= a->side->low; /* W1: the caller sends MSG_FLOW */
	return -EAGAIN;
}

/* The coarse time a sender stamps a mailbox with (Age). Read here rather than through
 * actor__coarse_ns, which is the scheduler's (tests/layers.sh: no cycle through sched.c). */
static uint64_t stamp_ns(const struct actor_worker *self)
{
	if (self != NULL)
		return self->turn_ns;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int actor__flow_reserve(struct actor_worker *self, struct actor *a, actor_ref_t from, bool *nudge)
{
	struct actor__side *s = a->side;
	struct actor__flow *f = &s->flow;
	uint32_t d = atomic_load_explicit(&f->depth, memory_order_relaxed);
	for (;;) {
		if (s->capacity != 0 && d >= s->capacity) /* none: counted only (count_depth) */
			return refused(self, a, from, nudge);
		/* relaxed: released by the CAS below (A1). */
		if (d == 0)
			atomic_store_explicit(&f->since, stamp_ns(self), memory_order_relaxed);
		/* seq_cst: a failed CAS reloads `d`; the refusal above reads it as the count. */
		if (atomic_compare_exchange_weak(&f->depth, &d, d + 1))
			return 0;
	}
}

/* ---------------------------------------------------------------------------------------------
 * The receiver's side (its holder)
 */

static bool was_notified(const struct actor__flow *f, uint64_t sender)
{
	uint32_t lo = 0, hi = f->notified_len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (f->notified[mid] == sender)
			return true;
		if (f->notified[mid] < sender)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Moves the registrations pushed since the last take to `pending`, but those the last round's
 * notice covers (W2). */
static void take(struct actor__flow *f)
{
	/* seq_cst: pairs with the senders' CAS (W1). */
	struct actor__waiter *n = atomic_exchange(&f->waiters, NULL);
	uint64_t round = atomic_load_explicit(&f->round, memory_order_relaxed); /* ours */
	while (n != NULL) {
		struct actor__waiter *next = n->next;
		if (n->round < round && was_notified(f, n->sender.id)) {
			actor__free(n, sizeof(*n));
		} else {
			n->next = f->pending;
			f->pending = n;
		}
		n = next;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* One round: a notice to each sender in `pending`, once. */
static void notify(struct actor_worker *w, struct actor *a, actor__notice_fn *notice)
{
	struct actor__flow *f = &a->side->flow;
	/* seq_cst: after the take that found the nodes, before the notices (W2). */
	atomic_store(&f->round, atomic_load_explicit(&f->round, memory_order_relaxed) + 1);
	uint32_t n = 0;
	for (struct actor__waiter *p = f->pending; p != NULL; p = p->next)
		n++;
	uint64_t *ids = actor__alloc((size_t)n * sizeof(*ids));
	uint32_t len = 0;
	struct actor__waiter *p = f->pending;
	f->pending = NULL;
	while (p != NULL) {
		struct actor__waiter *next = p->next;
		if (ids != NULL)
			ids[len++] = p->sender.id;
		else
			notice(w, a, p->sender); /* no memory to dedupe: one each */
		actor__free(p, sizeof(*p));
		p = next;
	}
	if (ids != NULL) {
		qsort(ids, len, sizeof(*ids), cmp_u64);
		uint32_t u = 0;
		for (uint32_t i = 0; i < len; i++) {
			if (u == 0 || ids[u - 1] != ids[i])
				ids[u++] = ids[i];
		}
		for (uint32_t i = 0; i < u; i++)
			notice(w, a, (actor_ref_t){ids[i]});
		len = u;
	}
	actor__free(f->notified, (size_t)f->notified_cap * sizeof(*f->notified));
	f->notified = ids;
	f->notified_len = ids != NULL ? len : 0;
	f->notified_cap = ids != NULL ? n : 0;
}

void actor__flow_turn_end(struct actor_worker *w, struct actor *a, actor__notice_fn *notice)
{
	struct actor__side *s = a->side;
	struct actor__flow *f = &s->flow;
	/* seq_cst: after this turn's pops (W1). */
	if (atomic_load(&f->waiters) != NULL)
		take(f);
	if (f->pending != NULL && atomic_load(&f->depth) <= s->low)
		notify(w, a, notice);
}

void actor__flow_stopped(struct actor_worker *w, struct actor *a, actor__notice_fn *notice)
{
	if (!a->counted || a->side->capacity == 0)
		return;
	take(&a->side->flow);
	if (a->side->flow.pending != NULL)
		notify(w, a, notice); /* W3 */
}

void actor__flow_free(struct actor_worker *w, struct actor *a, actor__notice_fn *notice)
{
	struct actor__side *s = a->side;
	if (s == NULL)
		return;
	if (a->counted && s->capacity != 0)
		actor__flow_stopped(w, a, notice); /* registrations that raced the stop (W3) */
	if (a->counted)
		actor__free(s->flow.notified,
		            (size_t)s->flow.notified_cap * sizeof(*s->flow.notified));
	actor__free(s, actor__side_size(a->counted));
	a->side = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * actor_info's figures
 */

void actor__flow_info(struct actor *a, actor_info_t *out)
{
	out->oldest_age_ns = 0;
	if (!a->counted) {
		/* No count, no age: whether the mailbox is idle (empty-marked) is all there is. */
		uintptr_t head = (uintptr_t)ck_pr_load_ptr(&a->mbox.head);
		out->depth = (head & MPSC_EMPTY) != 0 ? 0 : ACTOR_DEPTH_UNKNOWN;
		return;
	}
	struct actor__flow *f = &a->side->flow;
	/* acquire: pairs with the release of the CAS that took depth from 0 (A1). */
	out->depth = atomic_load_explicit(&f->depth, memory_order_acquire);
	if (out->depth == 0)
		return;
	uint64_t since = atomic_load_explicit(&f->since, memory_order_relaxed);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	out->oldest_age_ns = now > since ? now - since : 0;
}
