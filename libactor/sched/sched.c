/* sched.c: the workers: one thread per core (pinned on request), each with a local run queue,
 * a remote inbox, a command queue, timers and a reactor, running actors a batch of messages at
 * a time, and moving actors between them (following, sharing) and batching cross-core sends.
 *
 * Park and wake (no lost wake-ups, no needless ones):
 *   worker: wake = 0; go offline; mpsc_mark_empty(inbox), then (cmdq) (full-barrier CASes); if
 *           both succeeded, block in the reactor's wait until I/O, the next timer, or a wake.
 *   sender: push onto the inbox or cmdq (a full-barrier exchange); only a push that finds the
 *           queue empty-marked exchanges wake to 1 and, if it was 0, signals the reactor.
 * A push before the mark makes the mark fail, so the worker does not sleep; a push after it sees
 * the mark and wakes the worker, whose wait returns at once if it has not started (the eventfd
 * stays readable). Only a worker that is parked, or about to be, is ever woken, so busy workers
 * cost senders no system call.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "reactor/reactor.h"

#define link_actor(n) ((struct actor *)((char *)(n)-offsetof(struct actor, link)))

/* initial-exec: one instruction per access instead of a __tls_get_addr call in the shared
 * library (4-5% of bench/pingpong_1core in a profile). The cost: libactor cannot be loaded
 * with dlopen into a process whose static TLS space is exhausted, which is rare. */
__attribute__((tls_model("initial-exec"))) _Thread_local struct actor_worker *actor__tls_worker;

#define IDLE_PARK_NS 1000000 /* park timeout while retired actors wait for a grace period */
/* An idle spin round (64 polls and a yield) longer than this: the CPU is contended. Alone on
 * its CPU a round takes 1-2 us; a yield to a busy neighbour returns after its time slice. */
#define SPIN_CONTENDED_NS 50000
/* Then no spinning for a while: 5 ms after a first alarm, doubling up to 100 ms while alarms
 * follow each other (a busy neighbour stays; one probe costs one lost slice), back to 5 ms
 * after a quiet spell. A fixed 100 ms made one alarm at start-up (the main thread still
 * spawning and sending beside two workers on two CPUs) cost threadring_503_spread 100 ms of
 * parking per hop: 0.75M hops/s against 5.5M. */
#define NO_SPIN_MIN_NS 5000000
#define NO_SPIN_MAX_NS 100000000
/* Two slow rounds this close together, with the thread switched out in between, are contention;
 * one alone may be the virtual machine pausing the CPU (threadring_503_spread lost two thirds
 * of its rate to such false alarms on a quiet VM). */
#define SUSPECT_WINDOW_NS 20000000

/* ---------------------------------------------------------------------------------------------
 * Run queues
 */

static struct actor *runq_pop_local(struct actor_worker *w)
{
	struct actor__mpsc_node *n = w->runq_head;
	if (n == NULL)
		return NULL;
	w->runq_head = n->next;
	if (w->runq_head == NULL)
		w->runq_tail = NULL;
	w->runq_len--;
	return link_actor(n);
}

/* Any thread, async-signal-safe. */
void actor__worker_wake(struct actor_worker *w)
{
	/* seq_cst: see the protocol above. Only the first waker after a park writes the eventfd. */
	if (atomic_exchange(&w->wake, 1) == 0) {
		uint64_t one = 1;
		/* Async-signal-safe. Blocks only if the counter would overflow, which a flag that
		 * admits one write per park cannot reach. */
		ssize_t n = write(w->evfd, &one, sizeof(one));
		(void)n;
	}
}

#define wake_worker actor__worker_wake

/* Any thread: runs cmd->fn on w's thread soon. */
void actor__worker_post(struct actor_worker *w, struct actor__cmd *cmd)
{
	if (actor__mpsc_push(&w->cmdq, &cmd->link) & MPSC_EMPTY)
		wake_worker(w);
}

static unsigned run_cmds(struct actor_worker *w)
{
	unsigned n = 0;
	struct actor__mpsc_node *node;
	while ((node = actor__mpsc_pop(&w->cmdq)) != NULL) {
		struct actor__cmd *cmd = (struct actor__cmd *)node;
		cmd->fn(w, cmd);
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------------------------------------
 * Moving actors
 *
 * Placement at spawn is a first guess. An actor that may move (actor_movable: not pinned, no
 * connection, listener or timer of its own) changes home in two ways, each at a moment when
 * one thread holds it alone:
 *
 *   Following. The push that finds a mailbox empty-marked makes its caller the actor's only
 *   holder (mpsc.h): nobody runs the actor, nobody else will queue it. If that caller is a
 *   worker other than the home, and the same worker has woken the actor FOLLOW_STREAK times
 *   in a row (it is in a conversation with actors there), the caller makes itself the home
 *   and queues the actor locally, so the conversation stops crossing cores. A wake-up from
 *   the home resets the streak, so two actors in conversation never both move: the first to
 *   reach the streak moves, and from then on the other's wake-ups are local.
 *
 *   Sharing. A worker with actors waiting in its run queue hands some to an idle worker (one
 *   that found nothing to do and raised its `idle` flag; the giver lowers it, so two givers
 *   do not pile onto one). Queued actors are their worker's alone: it sets their home and
 *   pushes them onto the idle worker's inbox. While fewer than SHARE_TOGETHER actors wait,
 *   it keeps the actors of its latest conversations (worker `talk`: both ends of the latest
 *   sends between two of its actors): a producer and its consumer take turns in the queue,
 *   and handing one away put each of their messages across cores and its memory with it
 *   (bench/counting_1to1: 23M messages/s split against 39M together, bench/README.md).
 *   Actors that only keep themselves busy are handed over as before, and a longer queue is
 *   shared whatever talks in it: a worker never keeps a pile of work to itself.
 *
 *   Yielding a contended CPU. A worker whose idle spin finds another thread wanting its CPU
 *   (spin, cpu_contended) raises `yielding` for its hold-off. A thread whose push wakes an
 *   actor living there (so holding it, as above) moves it to a worker that is not yielding,
 *   its own if it can, reserved as sharing reserves (reserve); the yielding worker runs what
 *   it holds and givers pass it over (claim_idle), so sharing does not hand the actors back. A
 *   thread outside the pool feeding actors on every worker, with as many workers as CPUs,
 *   then leaves one CPU to that thread (bench/fork_join_throughput). Such a thread says it
 *   is busy before any spin finds the contention (feeder.c), and the workers
 *   beyond the CPUs left then yield at once (feeder_busy).
 *
 *   Following a busy sender's CPU. The workers move too, not only actors: a worker running
 *   actors beside a stranger on its CPU, while such a sender has another CPU nearly to
 *   itself, moves to the sender's CPU for a while (feeder.c).
 *
 * After any move an actor ignores MOVE_COOLDOWN remote wake-ups (hysteresis), so that
 * following and sharing cannot toss it back and forth at message rate; but a wake-up from
 * outside the pool still moves it off a yielding worker.
 *
 * Why the contract holds: one thread holds an actor at a time, and every hand-over is
 * ordered. The old home's last turn ends with a release fence and the empty-mark CAS that
 * the new holder's exchange reads, followed by its acquire fence (mpsc.h); a shared actor
 * travels through an MPSC inbox (release on push, acquire on pop). So the behaviour never runs on
 * two threads at once, and its state, its mailbox's consumer end and the fields here go with it.
 * Per-sender order holds because a mailbox is one FIFO wherever its consumer runs. References stay
 * safe: a move changes no slot, and reclamation (refs.c) waits for every worker, not only the home.
 * Shutdown stops queued actors on the worker that runs them and claims idle ones (kill_residents).
 *
 * Resident counts (termination, LEAST_LOADED) move too, inside a bracket that the termination
 * check honours (actor__none_resident).
 */
#define FOLLOW_STREAK 4  /* bench/pingpong: a pair settles within a few round trips */
#define MOVE_COOLDOWN 64 /* bench/counting: sharing and following meet at most this often */
#define SHARE_MAX 32     /* actors handed over at once: a batch, not the whole queue */
#define SHARE_SCAN 64    /* queued actors looked at per hand-over */
#define SHARE_EVERY 8    /* actor turns between two looks for an idle worker */
#define SHARE_TOGETHER 8 /* fewer actors waiting than this: conversations stay together */

static bool actor_movable(const struct actor *a)
{
	/* `pinned` first: it is immutable, while a pinned actor's flags may be written by its
	 * home worker outside its turns (a connection handed to it). */
	return !a->pinned && a->svc_bits == 0 && !(a->flags & (ACTOR_BOUND | ACTOR_DEAD));
}

void actor__move(struct actor *a, struct actor_worker *to)
{
	actor_system_t *sys = to->sys;
	struct actor_worker *from = actor__home(sys, a);
	/* seq_cst throughout: the bracket is what actor__none_resident checks. */
	atomic_fetch_add(&sys->moves_begun, 1);
	atomic_fetch_add(&to->resident, 1);
	/* relaxed: the holder's own field; the next holder is ordered by the hand-over. */
	atomic_store_explicit(&a->home, (uint16_t)to->index, memory_order_relaxed);
	atomic_fetch_sub(&from->resident, 1);
	atomic_fetch_add(&sys->moves_done, 1);
	a->cooldown = MOVE_COOLDOWN;
	a->waker = 0;
	a->streak = 0;
}

/* Reserves `to` before handing it an actor: a worker leaves its loop at shutdown only with no
 * resident, after raising `gone` (worker_main). seq_cst increment then load, against its
 * seq_cst store then load: one of the two sees the other. False if it has left; true with one
 * resident counted, which the caller takes back once the actor counts there. */
static bool reserve(struct actor_worker *to)
{
	atomic_fetch_add(&to->resident, 1);
	if (atomic_load(&to->gone)) {
		atomic_fetch_sub(&to->resident, 1);
		return false;
	}
	return true;
}

static bool yielding(struct actor_worker *w)
{
	/* relaxed: a hint (internal.h); a stale answer costs one move or one wake-up. */
	return atomic_load_explicit(&w->yielding, memory_order_relaxed) != 0;
}

/* The holder of idle `a`, on worker `self`, which is not its home: true if `a` should follow
 * its conversation here. */
static bool follows(struct actor_worker *self, struct actor *a)
{
	/* A yielding `self` still qualifies: the conversation runs there anyway, through the
	 * waker, and crossing cores would cost it every message. */
	if (!actor_movable(a))
		return false;
	if (a->cooldown > 0) {
		a->cooldown--;
		return false;
	}
	uint16_t me = (uint16_t)(self->index + 1);
	if (a->waker != me) {
		a->waker = me;
		a->streak = 1;
		return false;
	}
	return ++a->streak >= FOLLOW_STREAK;
}

/* A worker other than `home` whose CPU is not contended: `self` if it qualifies, else the
 * first after `home`; NULL if every one is contended. */
static struct actor_worker *uncontended(actor_system_t *sys, struct actor_worker *self,
                                        struct actor_worker *home)
{
	if (self != NULL && !yielding(self))
		return self;
	for (unsigned k = 1; k < sys->nworkers; k++) {
		struct actor_worker *o = &sys->workers[(home->index + k) % sys->nworkers];
		if (!yielding(o))
			return o;
	}
	return NULL;
}

/* Any thread, holding `a` (its push found the mailbox empty-marked), with `a` protected by
 * QSBR: makes `a` runnable on its home worker, or moves it here (above), or away from a home
 * whose CPU is contended (Yielding a contended CPU). */
void actor__schedule(actor_system_t *sys, struct actor_worker *self, struct actor *a)
{
	struct actor_worker *home = actor__home(sys, a);
	if (home == self) {
		actor__schedule_here(self, a);
		return;
	}
	bool cool = a->cooldown == 0; /* before follows counts this wake-up off it */
	/* A wake-up from outside leaves a yielding home even within the cooldown: nothing would
	 * toss the actor back (a yielding worker takes none), and staying costs that worker a
	 * wake-up per send (bench/fork_join_throughput: 150-370 of them a run, paid by the
	 * sending thread). */
	bool may_leave = cool || self == NULL;
	if (self != NULL && follows(self, a)) {
		actor__move(a, self);
		actor__stat_add(&self->st.migrations, 1);
	} else if (may_leave && yielding(home) && actor_movable(a) &&
	           !atomic_load_explicit(&sys->shutdown, memory_order_relaxed)) {
		struct actor_worker *to = uncontended(sys, self, home);
		if (to != NULL && reserve(to)) {
			actor__move(a, to);
			atomic_fetch_sub(&to->resident, 1); /* the reservation; `a` counts now */
			/* relaxed: a counter; several wakers may add at once. */
			atomic_fetch_add_explicit(&home->st.yielded, 1, memory_order_relaxed);
		}
	} else if (self == NULL && !cool) {
		a->cooldown--; /* a wake-up from outside counts off the cooldown as any other */
	}
	actor__schedule_home(sys, self, a);
}

/* The holder of `a` queues it on its home, wherever that is, without moving it. */
void actor__schedule_home(actor_system_t *sys, struct actor_worker *self, struct actor *a)
{
	struct actor_worker *home = actor__home(sys, a);
	if (home == self)
		actor__runq_push_local(self, a);
	else if (actor__mpsc_push(&home->inbox, &a->link) & MPSC_EMPTY)
		wake_worker(home);
}

/* ---------------------------------------------------------------------------------------------
 * Outbox
 *
 * A message to an actor on another worker costs a cache-line transfer for the exchange on its
 * mailbox and, if the receiver was idle, more for scheduling it there. A behaviour that sends
 * many messages to one remote actor in a turn (a producer feeding a consumer) pays it per
 * message unless they travel together: its worker sends the first at once, chains the ones
 * after it per receiver, and pushes each chain with one exchange when it holds
 * ACTOR_OUTBOX_CHAIN messages or the turn ends, so the receiver is scheduled at most once per
 * chain. The first goes at once because most turns send one message per receiver (a parent
 * starting its children, a reply), and holding it to the end of the turn only delays the
 * receiver: bench/skynet took 186 ms against 160 ms when every message waited. Per-sender order
 * holds: within a turn every later message from the running actor to that receiver goes
 * through the one chain, even if the receiver moves here meanwhile (another worker shares it
 * with this one), and the chains are pushed before the turn ends (so before the sender's next
 * message). The chains hold actor
 * pointers only within the turn, between two quiescent points (QSBR, R1).
 */

static void outbox_push(struct actor_worker *w, unsigned i)
{
	struct actor__outbox *o = &w->outbox[i];
	struct actor *a = o->to;
	struct actor__mpsc_node *first = o->first, *last = o->last;
	*o = w->outbox[--w->outbox_len];
	if (first == NULL)
		return; /* only the direct first message went to this receiver */
	uintptr_t was = actor__mpsc_push_chain(&a->mbox, first, last);
	if (was == MPSC_EMPTY)
		actor__schedule(w->sys, w, a);
	/* MPSC_CLOSED: as in deliver (actor.c), reclamation dead-letters the chain. */
}

bool actor__outbox_add(struct actor_worker *w, struct actor *a, actor_msg_t *m, bool here)
{
	struct actor__mpsc_node *n = (struct actor__mpsc_node *)m;
	for (unsigned i = 0; i < w->outbox_len; i++) {
		struct actor__outbox *o = &w->outbox[i];
		if (o->to != a)
			continue;
		if (o->first == NULL) {
			if (here)
				return false; /* nothing waits: the direct push keeps the order */
			o->first = n;
		} else {
			actor__mpsc_chain_link(o->last, n);
		}
		o->last = n;
		if (++o->len == ACTOR_OUTBOX_CHAIN)
			outbox_push(w, i);
		return true;
	}
	if (here)
		return false;
	if (w->outbox_len == ACTOR_OUTBOX_SLOTS)
		outbox_push(w, 0); /* the oldest receiver's chain makes room */
	/* A receiver's first message in a turn goes at once (a parent starting its children, a
	 * reply, must not wait for the end of the turn); the ones after it are chained. */
	w->outbox[w->outbox_len++] = (struct actor__outbox){.to = a};
	return false;
}

void actor__outbox_flush(struct actor_worker *w)
{
	while (w->outbox_len > 0)
		outbox_push(w, w->outbox_len - 1);
}

/* An idle worker other than `w`, claimed (its flag lowered), or NULL. */
static struct actor_worker *claim_idle(struct actor_worker *w)
{
	actor_system_t *sys = w->sys;
	for (unsigned k = 1; k < sys->nworkers; k++) {
		struct actor_worker *o = &sys->workers[(w->index + k) % sys->nworkers];
		/* relaxed: a hint; a stale flag costs one hand-over to a worker that found work. A
		 * yielding worker is passed over whatever its flag says: sharing would undo the
		 * yield. */
		if (atomic_load_explicit(&o->idle, memory_order_relaxed) && !yielding(o) &&
		    atomic_exchange_explicit(&o->idle, 0, memory_order_relaxed))
			return o;
	}
	return NULL;
}

/* True if `a` is one end of a recent conversation on `w` (Sharing). */
static bool talks_here(const struct actor_worker *w, const struct actor *a)
{
	for (unsigned i = 0; i < ACTOR_TALK_SLOTS; i++) {
		if (w->talk[i] == a)
			return true;
	}
	return false;
}

/* Sharing (above): hands some of the actors queued behind the next one to an idle worker. */
static void share(struct actor_worker *w)
{
	/* relaxed: a stale "not stopping" is caught by the reservation below. */
	if (w->runq_len < 2 || atomic_load_explicit(&w->sys->shutdown, memory_order_relaxed))
		return;
	struct actor_worker *to = claim_idle(w);
	if (to == NULL)
		return;
	if (!reserve(to))
		return;
	bool together = w->runq_len < SHARE_TOGETHER;
	uint64_t give = w->runq_len / 2 < SHARE_MAX ? w->runq_len / 2 : SHARE_MAX;
	unsigned given = 0, seen = 0;
	bool wake = false;
	struct actor__mpsc_node **pp = &w->runq_head, *prev = NULL;
	/* Every other actor, the head excepted: both workers get a mix of the queue. */
	while (*pp != NULL && given < give && seen < SHARE_SCAN) {
		struct actor__mpsc_node *n = *pp;
		struct actor *a = link_actor(n);
		if (seen++ % 2 == 0 || !actor_movable(a) || (together && talks_here(w, a))) {
			prev = n;
			pp = &n->next;
			continue;
		}
		*pp = n->next;
		if (w->runq_tail == n)
			w->runq_tail = prev;
		w->runq_len--;
		actor__move(a, to);
		if (actor__mpsc_push(&to->inbox, &a->link) & MPSC_EMPTY)
			wake = true;
		given++;
	}
	atomic_fetch_sub(&to->resident, 1); /* the reservation; its actors count now */
	if (wake)
		wake_worker(to);
	else if (given == 0)
		atomic_store_explicit(&to->idle, 1, memory_order_relaxed); /* unclaim: still idle */
	actor__stat_add(&w->st.shared, given);
}

void actor__wake_all(actor_system_t *sys)
{
	for (unsigned i = 0; i < sys->nworkers; i++)
		wake_worker(&sys->workers[i]);
}

/* Raises or lowers this worker's idle flag (Sharing), writing only on a change. */
static void set_idle(struct actor_worker *w, bool idle)
{
	/* relaxed: a hint for givers; the inbox push and wake carry the actors themselves. */
	if (atomic_load_explicit(&w->idle, memory_order_relaxed) != (uint32_t)idle)
		atomic_store_explicit(&w->idle, (uint32_t)idle, memory_order_relaxed);
}

/* Moves every actor made runnable elsewhere to the local run queue. */
static void take_inbox(struct actor_worker *w)
{
	struct actor__mpsc_node *n;
	while ((n = actor__mpsc_pop(&w->inbox)) != NULL)
		actor__runq_push_local(w, link_actor(n));
	if (w->runq_head != NULL)
		set_idle(w, false); /* no more hand-overs until this is done */
}

/* ---------------------------------------------------------------------------------------------
 * Termination
 */

/* True once no actor lives anywhere. The per-worker counts are read one at a time, and a move
 * takes an actor from one count to another: a scan that a move overlaps could miss the actor
 * in both. So moves are bracketed (moves_begun ... moves_done, actor__move), and a scan that
 * saw a move in flight or one begin meanwhile answers false: a moving actor is alive, and its
 * own stop will scan again. */
bool actor__none_resident(actor_system_t *sys)
{
	/* seq_cst, done before begun: begun == done means no move was in flight then. */
	uint64_t done = atomic_load(&sys->moves_done);
	uint64_t begun = atomic_load(&sys->moves_begun);
	if (begun != done)
		return false;
	for (unsigned i = 0; i < sys->nworkers; i++) {
		if (atomic_load(&sys->workers[i].resident) != 0)
			return false;
	}
	return atomic_load(&sys->moves_begun) == begun;
}

/* Home worker, once per stopped actor. */
void actor__note_stopped(struct actor_worker *w)
{
	/* seq_cst: pairs with the seq_cst increment in actor_spawn. A spawner is itself a live
	 * actor (or the thread calling run), so the total cannot pass through zero early. */
	if (atomic_fetch_sub(&w->resident, 1) != 1)
		return;
	actor_system_t *sys = w->sys;
	if (actor__none_resident(sys)) {
		atomic_store(&sys->run_wake, 1);
		actor__unpark(&sys->run_wake);
	}
}

/* On shutdown: wakes every idle actor living here, and every turn of an actor then stops it
 * (actor__run: queued and running ones stop the same way). Spawns that raced the shutdown flag,
 * and actors that moved here after the scan read their home, are caught by a later call (the
 * worker calls this while its resident count is not zero). */
static void kill_residents(struct actor_worker *w)
{
	actor_system_t *sys = w->sys;
	actor__stat_add(&w->st.resident_scans, 1);
	uint32_t end = atomic_load_explicit(&sys->slot_next, memory_order_acquire);
	for (uint32_t i = 1; i < end; i++) {
		struct actor__slot *s = actor__slot_at(sys, i);
		if (s == NULL) {
			i |= SLOT_CHUNK - 1; /* skip an unpublished chunk */
			continue;
		}
		/* acquire: pairs with the release publication in actor_spawn. QSBR keeps `a`
		 * allocated: this worker is online and between quiescent points. */
		struct actor *a = atomic_load_explicit(&s->actor, memory_order_acquire);
		if (a == NULL || actor__home_index(a) != w->index)
			continue;
		/* Claim it as a waking sender would (its mark cleared, nothing pushed) and schedule
		 * it on its home, read again now that the claim has ordered us after its last
		 * holder: an actor that moved away meanwhile stops there, where what it owns
		 * lives. A busy actor refuses the claim and stops on its next turn anyway. */
		if (actor__mpsc_claim_idle(&a->mbox))
			actor__schedule_home(sys, w, a);
	}
}

/* ---------------------------------------------------------------------------------------------
 * The loop
 */

static unsigned run_ready(struct actor_worker *w)
{
	unsigned ran = 0;
	struct actor *a;
	while (ran < ACTOR_RUN_PER_TURN && (a = runq_pop_local(w)) != NULL) {
		actor__run(w, a);
		/* A turn of many long-running actors can take a while: look for idle workers
		 * within it too (a few relaxed loads). */
		if (++ran % SHARE_EVERY == 0)
			share(w);
	}
	atomic_store_explicit(&w->st.runq, w->runq_len, memory_order_relaxed);
	return ran;
}

#define now_ns actor__now_ns

/* ---------------------------------------------------------------------------------------------
 * Services (service.h): the loop calls them through the table and names none.
 */

/* Polls the reactor (if anything is watched) and the services: how much that did. */
static unsigned poll_io(struct actor_worker *w)
{
	unsigned n = 0;
	if (actor__reactor_busy(w->reactor)) {
		int rc = w->reactor->ops->wait(w->reactor, 0);
		n += rc > 0 ? (unsigned)rc : 0;
	}
	for (unsigned k = 0; k < w->sys->npolled; k++) {
		unsigned i = w->sys->svc_polled[k];
		n += w->sys->svcs[i]->poll(w, w->svc[i]);
	}
	return n;
}

/* Polls as above: true if that made work (whatever was reported). */
static bool io_work(struct actor_worker *w)
{
	return poll_io(w) > 0 || w->runq_head != NULL;
}

static uint64_t svc_next_deadline(const struct actor_worker *w)
{
	uint64_t d = UINT64_MAX;
	for (unsigned k = 0; k < w->sys->ntimed; k++) {
		unsigned i = w->sys->svc_timed[k];
		const struct actor__service_ops *s = w->sys->svcs[i];
		if (s->next_deadline != NULL) {
			uint64_t t = s->next_deadline(w, w->svc[i]);
			d = t < d ? t : d;
		}
	}
	return d;
}

static unsigned svc_tick(struct actor_worker *w, uint64_t now)
{
	unsigned n = 0;
	for (unsigned k = 0; k < w->sys->ntimed; k++) {
		unsigned i = w->sys->svc_timed[k];
		if (w->sys->svcs[i]->tick != NULL)
			n += w->sys->svcs[i]->tick(w, w->svc[i], now);
	}
	return n;
}

void actor__services_fini(struct actor_worker *w)
{
	for (unsigned i = 0; w->sys->svcs[i] != NULL; i++) {
		if (w->svc[i] != NULL && w->sys->svcs[i]->fini != NULL)
			w->sys->svcs[i]->fini(w, w->svc[i]);
		w->svc[i] = NULL;
	}
}

static bool svc_draining(const struct actor_worker *w)
{
	for (unsigned i = 0; w->sys->svcs[i] != NULL; i++) {
		const struct actor__service_ops *s = w->sys->svcs[i];
		if (s->draining != NULL && s->draining(w, w->svc[i]))
			return true;
	}
	return false;
}

/* A spin round was slow (at `now`): true if this one and the one before, within
 * SUSPECT_WINDOW_NS, bracket an involuntary switch of this thread, which a yield counts only
 * when another thread was runnable on this CPU (a VM's pause of the CPU does not count). One
 * system call, on a slow round only. */
static bool cpu_contended(struct actor_worker *w, uint64_t now)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return true; /* cannot tell: assume the worst, as before this test */
	uint64_t switches = (uint64_t)ru.ru_nivcsw;
	bool again = w->suspect_ns != 0 && now - w->suspect_ns < SUSPECT_WINDOW_NS &&
	             switches > w->suspect_switches;
	w->suspect_ns = now;
	w->suspect_switches = switches;
	return again;
}

/* Polls the inbox, the command queue and (every 64 pauses) the reactor for a while: waking a
 * parked thread costs tens of microseconds here. Every 64 pauses it also yields the CPU: alone
 * on its CPU the worker gets it straight back (sched_yield, a fraction of a microsecond), but a
 * thread that shares the CPU with it (a load generator, another process) gets the time the
 * spin would burn: the chat broadcast, its load generator on the same two CPUs, went from
 * 4.0M-4.2M to 4.7M-5.5M deliveries/s (the same build with and without the yield), and the
 * messaging benchmarks did not change (bench/README.md, "Spin before park"). */
static bool spin(struct actor_worker *w)
{
	if (w->sys->spin_us <= 0)
		return false;
	uint64_t now = now_ns();
	if (now < w->no_spin_until)
		return false;
	uint64_t until = now + (uint64_t)w->sys->spin_us * 1000u;
	do {
		for (int i = 0; i < 64; i++) {
			if (!actor__mpsc_is_empty(&w->inbox) || !actor__mpsc_is_empty(&w->cmdq))
				return true;
			ck_pr_stall();
		}
		if (atomic_load_explicit(&w->sys->shutdown, memory_order_relaxed))
			return true;
		/* Sockets too: input arriving while we spin should not wait for the park. */
		if (io_work(w))
			return true;
		sched_yield();
		/* A round takes about a microsecond. Much longer, twice, with this thread switched
		 * out, means another thread wants this CPU: spinning would take its time slices and
		 * lose ours (a woken thread gets the CPU at once, a runnable spinner waits out the
		 * other's slice), so park straight away for a while, then try again. Unless the
		 * other thread brought work through a socket: a load generator or a peer process on
		 * the same CPUs runs while we yield and sends us what we wait for, and parking then
		 * only adds a wake-up to every request (bench/echo.sh at 50 connections: 115k-141k
		 * requests/s with such rounds counted, 160k-176k without). Work from another worker
		 * does not count: it says nothing of who else wants this CPU (threadring_503_spread
		 * beside a busy loop: 208k-250k hops/s when it counted, 300k-418k before). */
		uint64_t t = now_ns();
		if (t - now > SPIN_CONTENDED_NS) {
			if (io_work(w))
				return true;
			if (cpu_contended(w, t)) {
				/* Again within one hold-off's length of the last one's end: a
				 * neighbour. */
				bool again =
				    w->no_spin_until != 0 && t - w->no_spin_until < w->no_spin_ns;
				w->no_spin_ns = !again ? NO_SPIN_MIN_NS
				                : w->no_spin_ns * 2 < NO_SPIN_MAX_NS
				                    ? w->no_spin_ns * 2
				                    : NO_SPIN_MAX_NS;
				w->no_spin_until = t + w->no_spin_ns;
				actor__stat_add(&w->st.contended, 1);
				/* relaxed: a hint for wakers and givers (Yielding a contended CPU).
				 */
				atomic_store_explicit(&w->yielding, 1, memory_order_relaxed);
				return false;
			}
		}
		now = t;
	} while (now < until);
	return false;
}

/* A thread outside the pool is sending while busy on its CPU (feeder.c), and this
 * worker is one of those beyond the first ncpus - 1, which leave the sender a CPU: it yields,
 * as to a contended CPU, until the sender's last sign is ACTOR_FEEDER_FRESH_NS old (the time it
 * returns in *until), and looks again then. Worker 0 never does, so that something always
 * runs the actors; nor does any where the CPUs are unknown. */
static bool feeder_busy(struct actor_worker *w, uint64_t *until)
{
	actor_system_t *sys = w->sys;
	if (w->index == 0 || sys->ncpus == 0 || w->index + 1 < sys->ncpus)
		return false;
	return actor__feeder_fresh(actor__now_ns(), until);
}

/* When a yielding worker may take actors again: both hold-offs over. */
static uint64_t yield_until(const struct actor_worker *w)
{
	return w->no_spin_until > w->feeder_until ? w->no_spin_until : w->feeder_until;
}

/* Blocks in the reactor until I/O, `deadline_ns` (UINT64_MAX: none) or a wake-up. Once the
 * system is stopping it does not block, so that the worker keeps stopping actors (spawns that
 * raced the flag included), except to `drain`: every actor here has stopped then, and what it
 * waits for is I/O, the deadline, or messages and commands posted to it, which wake it as
 * always. A spawn that raced the flag does not wake it: that actor is stopped when the wait
 * ends, by the drain deadline at the latest. */
static void park(struct actor_worker *w, uint64_t deadline_ns, bool draining)
{
	if (w->runq_head != NULL)
		return; /* never sleep on runnable actors */
	atomic_store(&w->wake, 0);
	actor__qsbr_offline(w);
	if (actor__mpsc_mark_empty(&w->inbox) && actor__mpsc_mark_empty(&w->cmdq) &&
	    (draining || !atomic_load(&w->sys->shutdown))) {
		int64_t timeout = -1;
		if (deadline_ns != UINT64_MAX) {
			uint64_t now = actor__now_ns();
			timeout = deadline_ns > now ? (int64_t)(deadline_ns - now) : 0;
		}
		actor__stat_add(&w->st.parks, 1);
		actor__msg_cache_trim(); /* a burst's blocks are not kept while nothing runs */
		w->reactor->ops->wait(w->reactor, timeout);
		if (atomic_load(&w->wake))
			actor__stat_add(&w->st.wakeups, 1);
	}
	actor__qsbr_online(w);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The earliest moment the worker must look again even if nothing wakes it. */
static uint64_t next_deadline(struct actor_worker *w)
{
	uint64_t d = svc_next_deadline(w);
	if (w->retired_head != NULL)
		d = min_u64(d, actor__now_ns() + IDLE_PARK_NS);
	return d;
}

/* The services' work that is due (timers, accept back-off, close linger, ...). */
static unsigned tick(struct actor_worker *w)
{
	uint64_t next = svc_next_deadline(w);
	if (next == UINT64_MAX)
		return 0;
	uint64_t now = actor__now_ns();
	if (now < next)
		return 0;
	return svc_tick(w, now) + 1;
}

static bool done_shutting_down(struct actor_worker *w)
{
	return atomic_load(&w->resident) == 0 && w->runq_head == NULL && w->retired_head == NULL &&
	       actor__mpsc_is_empty(&w->inbox);
}

/* Shutting down with nothing left here: leaves for good unless a worker sharing its queue has
 * reserved this one meanwhile (share: seq_cst store then load, against its increment then
 * load). */
static bool leave(struct actor_worker *w)
{
	atomic_store(&w->gone, 1);
	if (done_shutting_down(w))
		return true;
	atomic_store(&w->gone, 0);
	return false;
}

/* Shutting down, every actor here stopped: what the services still finish (closes writing
 * their output, say) goes on until it is done or the system's shutdown_drain_ms has passed
 * since this worker got here; then the services' fini ends what is left. True while there is
 * something to wait for (after blocking for it a while). */
static bool drain(struct actor_worker *w)
{
	if (w->sys->shutdown_drain_ms < 0 || !svc_draining(w))
		return false;
	uint64_t now = actor__now_ns();
	if (w->drain_deadline_ns == 0)
		w->drain_deadline_ns = now + (uint64_t)w->sys->shutdown_drain_ms * 1000000u;
	if (now >= w->drain_deadline_ns)
		return false;
	park(w, min_u64(w->drain_deadline_ns, next_deadline(w)), true);
	return true;
}

/* Creates the worker's reactor on its own thread (io_uring ties work to the creating thread)
 * and reports the outcome to actor__workers_start. */
static int reactor_start(struct actor_worker *w)
{
	int rc = w->rops->init(w->evfd, w->sys->uring_level, &w->reactor);
	if (rc < 0 && w->sys->reactor_fallback) {
		w->rops = &actor__reactor_epoll;
		rc = w->rops->init(w->evfd, w->sys->uring_level, &w->reactor);
	}
	if (rc < 0)
		w->reactor = NULL;
	/* seq_cst: publishes w->rops and w->reactor to the thread waiting in workers_start. */
	atomic_store(&w->ready, rc < 0 ? rc : 1);
	actor__unpark((_Atomic uint32_t *)&w->ready);
	return rc;
}

/* Crash reports (crash.c) run on an alternate signal stack, so that a behaviour that overflowed
 * the worker's stack is reported too. The report needs well under a kilobyte; the rest is for a
 * handler it chains to (the program's own, or a sanitizer's). */
#define ALTSTACK_BYTES (64u << 10)

/* This thread's alternate signal stack, the one it had before kept in *old; NULL if none. */
static void *altstack_on(stack_t *old)
{
	stack_t ss = {.ss_sp = malloc(ALTSTACK_BYTES), .ss_size = ALTSTACK_BYTES};
	if (ss.ss_sp == NULL || sigaltstack(&ss, old) != 0) {
		free(ss.ss_sp);
		return NULL;
	}
	return ss.ss_sp;
}

/* Puts the thread's previous alternate stack back (a sanitizer frees its own at thread exit). */
static void altstack_off(void *sp, const stack_t *old)
{
	if (sp == NULL)
		return;
	stack_t prev = *old;
	if (prev.ss_flags & SS_DISABLE)
		prev = (stack_t){.ss_flags = SS_DISABLE};
	else
		prev.ss_flags = 0;
	sigaltstack(&prev, NULL);
	free(sp);
}

static void *worker_main(void *arg)
{
	struct actor_worker *w = arg;
	actor_system_t *sys = w->sys;
	if (reactor_start(w) < 0)
		return NULL;
	stack_t old_altstack;
	void *altstack = sys->crash_report ? altstack_on(&old_altstack) : NULL;
	actor__tls_worker = w;
	actor__msg_cache_attach(&w->msg_cache);
	actor__follow_init(w);
	actor__qsbr_online(w);
	w->ctx.worker = w;

	for (;;) {
		actor__qsbr_quiescent(w);
		w->turn_ns = actor__coarse_ns(); /* counted mailboxes' stamp (flow.c) */
		if (w->turn_ns >= w->follow.next)
			actor__follow_check(w, w->turn_ns);
		take_inbox(w);
		unsigned busy = run_cmds(w);
		/* Checked every turn, not only when idle: a busy system must stop too. */
		bool stopping = atomic_load_explicit(&sys->shutdown, memory_order_acquire);
		w->stopping = stopping;
		/* A scan claims every idle resident and queues it; the next scan waits until those
		 * have run (and stopped), so that a million idle actors cost one scan, not one per
		 * turn of 64 (bench/spawn_idle's shutdown took minutes). */
		if (stopping && w->runq_head == NULL && atomic_load(&w->resident) > 0)
			kill_residents(w);
		busy += run_ready(w);
		busy += poll_io(w);
		busy += tick(w);
		actor__reclaim(w);
		/* The hold-off over, the CPU is this worker's again until the spin says otherwise:
		 * it takes actors again, unless a feeder still needs the CPU (lowering the flag for
		 * a turn would have it handed actors at once). A clock read per turn only while
		 * yielding. */
		if (yielding(w) && actor__now_ns() >= yield_until(w)) {
			uint64_t until;
			if (feeder_busy(w, &until))
				w->feeder_until = until;
			else
				atomic_store_explicit(&w->yielding, 0, memory_order_relaxed);
		}
		set_idle(w, !stopping && busy == 0 && w->runq_head == NULL);
		if (busy > 0)
			continue;
		if (stopping) {
			if (!done_shutting_down(w))
				park(w, actor__now_ns() + IDLE_PARK_NS, false);
			else if (!drain(w) && leave(w))
				break;
			continue;
		}
		uint64_t until;
		if (feeder_busy(w, &until)) {
			if (!yielding(w))
				actor__stat_add(&w->st.contended, 1);
			/* Its own field: spin's back-off reads no_spin_until. */
			w->feeder_until = until;
			/* relaxed: a hint for wakers and givers, as in spin. */
			atomic_store_explicit(&w->yielding, 1, memory_order_relaxed);
		} else if (spin(w)) {
			continue;
		}
		/* A yielding worker wakes when its hold-off ends, to take work again: nothing else
		 * would wake it, since wakers move its actors away and givers pass it over. */
		uint64_t deadline = next_deadline(w);
		if (yielding(w))
			deadline = min_u64(deadline, yield_until(w));
		park(w, deadline, false);
	}
	actor__follow_fini(w);
	actor__services_fini(w);
	actor__msg_cache_detach();
	w->reactor->ops->fini(w->reactor); /* on the thread that created it */
	w->reactor = NULL;
	actor__qsbr_offline(w);
	actor__tls_worker = NULL;
	altstack_off(altstack, &old_altstack);
	return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Start and join
 */

static int cpu_of(unsigned i, const cpu_set_t *mask)
{
	int n = CPU_COUNT(mask);
	if (n <= 0)
		return -1;
	int want = (int)(i % (unsigned)n);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, mask) && want-- == 0)
			return c;
	}
	return -1;
}

int actor__workers_start(actor_system_t *sys)
{
	cpu_set_t mask;
	bool have_mask = sched_getaffinity(0, sizeof(mask), &mask) == 0;
	for (unsigned i = 0; i < sys->nworkers; i++) {
		struct actor_worker *w = &sys->workers[i];
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		int cpu = have_mask ? cpu_of(i, &mask) : -1;
		if (sys->pin && cpu >= 0) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		}
		int rc = pthread_create(&w->thread, &attr, worker_main, w);
		pthread_attr_destroy(&attr);
		if (rc != 0)
			return -rc;
		w->started = true;
	}
	/* Wait until every worker has its reactor, so that creation reports a failure. */
	int result = 0;
	for (unsigned i = 0; i < sys->nworkers; i++) {
		_Atomic int *ready = &sys->workers[i].ready;
		int v;
		while ((v = atomic_load(ready)) == 0)
			actor__park_timed((_Atomic uint32_t *)ready,
			                  &(struct timespec){0, 10000000});
		if (v < 0 && result == 0)
			result = v;
	}
	return result;
}

void actor__workers_join(actor_system_t *sys)
{
	for (unsigned i = 0; i < sys->nworkers; i++) {
		struct actor_worker *w = &sys->workers[i];
		if (w->started) {
			pthread_join(w->thread, NULL);
			w->started = false;
		}
	}
}
