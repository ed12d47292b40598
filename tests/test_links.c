/* test_links.c: links and exit signals, trapping exits, spawn-and-link, spawn-and-monitor, unlink
 * and demonitor, through the public API: every exit-signal rule (normal or abnormal reason,
 * trapping or not, along a chain), links to stopped actors, links while actors move between
 * workers, and a shutdown among linked actors.
 *
 * Seeing that something did NOT happen needs a message known to come after it. A stopping
 * actor sends its DOWNs, then its exit signals, then hands its queued messages to the
 * dead-letter hook, all from one thread. So an actor that sends itself MSG_LATE(x) just before
 * it exits makes the hook (poke_hook) send MSG_CHECK to x after every signal it sent: when x
 * gets MSG_CHECK, any exit signal or DOWN from that actor is already in x's mailbox, ahead.
 *
 * Stress parameters (environment): LINKS_SPAWNS (spawn-and-monitor race, default 100,000),
 * LINKS_ROUNDS (round trips per pair in the migration test).
 */
#include "common.h"

#define SPAWNS_DEFAULT 100000   /* children of the spawn-and-monitor race, as the issue asks */
#define SPAWN_BATCH 500         /* spawns per turn of the spawner */
#define SPAWN_LINKED 2000       /* children of the spawn-and-link race */
#define MIG_PAIRS 16            /* conversations in the migration test */
#define MIG_ROUNDS_DEFAULT 2000 /* round trips per conversation */
#define MIG_REASON 1000         /* worker i of the migration test exits with MIG_REASON + i */
#define SHUT_ACTORS 2000        /* actors in the shutdown test */

enum {
	MSG_GO = 1, /* run the node's script */
	MSG_CHECK,  /* from poke_hook: everything the stopped actor signalled is ahead of it */
	MSG_LATE,   /* payload: an actor_ref_t; dead-lettered, it makes poke_hook send MSG_CHECK */
	MSG_HOLD,   /* wait at the gate, then unlink */
	MSG_READY,
	MSG_PING,
	MSG_PONG,
	MSG_TICK,
};

/* ---------------------------------------------------------------------------------------------
 * Helpers: the poke hook, a watcher of DOWNs, a scripted node
 */

struct poke {
	actor_system_t *sys;
	atomic_int poked;
};

static void poke_hook(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	struct poke *p = arg;
	actor_ref_t r;
	(void)to;
	if (msg->type != MSG_LATE || msg->size != sizeof(r))
		return;
	memcpy(&r, msg + 1, sizeof(r));
	actor_send(p->sys, r, MSG_CHECK, NULL, 0);
	/* release: pairs with the acquire in poked(); the CHECK is pushed by then. */
	atomic_fetch_add_explicit(&p->poked, 1, memory_order_release);
}

static bool poked(struct poke *p)
{
	return atomic_load_explicit(&p->poked, memory_order_acquire) > 0;
}

static actor_system_t *poke_system(struct poke *p, unsigned workers)
{
	actor_config_t cfg = {.workers = workers, .dead_letter = poke_hook, .dead_letter_arg = p};
	p->sys = system_new_cfg(&cfg);
	atomic_init(&p->poked, 0);
	return p->sys;
}

#define DOWNS_MAX 16

/* Records DOWNs; stops once it has `expect` of them. */
struct downs {
	unsigned expect, n, others;
	actor_down_t d[DOWNS_MAX];
	uint32_t size[DOWNS_MAX];
};

static void downs_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct downs *w = state;
	if (msg->type != ACTOR_MSG_DOWN) {
		w->others++;
		return;
	}
	if (w->n < DOWNS_MAX) {
		w->size[w->n] = msg->size;
		memcpy(&w->d[w->n], msg + 1, sizeof(actor_down_t));
	}
	if (++w->n == w->expect)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* The reason of the one DOWN `w` got for `a`; fails the test unless there was exactly one. */
static int down_reason(const struct downs *w, actor_ref_t a)
{
	int reason = 0;
	unsigned seen = 0;
	for (unsigned i = 0; i < w->n && i < DOWNS_MAX; i++) {
		if (actor_ref_eq(w->d[i].actor, a)) {
			ck_assert_uint_eq(w->size[i], sizeof(actor_down_t));
			reason = w->d[i].reason;
			seen++;
		}
	}
	ck_assert_msg(seen == 1, "%u DOWNs for one actor, expected 1", seen);
	return reason;
}

#define NODE_LINKS 4
#define NODE_EXITS 8
#define NODE_RCS 16

/* An actor that runs a small script on MSG_GO and records what reaches it. */
struct node {
	/* The script, in this order. */
	bool trap;                    /* actor_trap_exits(1) */
	actor_ref_t link[NODE_LINKS]; /* actor_link each */
	bool link_self;               /* actor_link and actor_unlink with itself */
	actor_ref_t stop;             /* actor_stop */
	actor_ref_t go_next;          /* sends it MSG_GO */
	actor_ref_t hold;             /* sends it MSG_HOLD; on MSG_HOLD: */
	atomic_int *gate;             /*   waits at this gate (if any), */
	actor_ref_t unlink;           /*   unlinks this one, */
	bool exit_on_hold;            /*   and exits with hold_reason if asked */
	int hold_reason;              /* */
	actor_ref_t late_to;          /* sends itself MSG_LATE(late_to) */
	bool exit_on_go;              /* exits with go_reason */
	int go_reason;                /* */
	int check_reason;             /* on MSG_CHECK: exits with it */
	unsigned exit_after;          /* after that many ACTOR_MSG_EXIT: exits with exits_reason */
	int exits_reason;             /* */
	/* What happened. */
	unsigned gos, checks, exits, others, exits_at_check;
	bool gate_timed_out;
	actor_exit_t exit[NODE_EXITS];
	actor_ref_t exit_sender[NODE_EXITS];
	uint32_t exit_size[NODE_EXITS];
	int rc[NODE_RCS];
	unsigned nrc;
};

static void note(struct node *n, int rc)
{
	if (n->nrc < NODE_RCS)
		n->rc[n->nrc] = rc;
	n->nrc++;
}

static void assert_calls_ok(const struct node *n)
{
	for (unsigned i = 0; i < n->nrc && i < NODE_RCS; i++)
		ck_assert_msg(n->rc[i] == 0, "call %u of the script returned %d", i, n->rc[i]);
}

static void node_go(actor_ctx_t *ctx, struct node *n)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	actor_ref_t self = actor_self(ctx);
	n->gos++;
	if (n->trap)
		note(n, actor_trap_exits(ctx, 1));
	for (unsigned i = 0; i < NODE_LINKS; i++) {
		if (!actor_ref_is_none(n->link[i]))
			note(n, actor_link(ctx, n->link[i]));
	}
	if (n->link_self) {
		note(n, actor_link(ctx, self));
		note(n, actor_unlink(ctx, self));
		note(n, actor_link(ctx, self));
	}
	if (!actor_ref_is_none(n->stop))
		note(n, actor_stop(sys, n->stop));
	if (!actor_ref_is_none(n->go_next))
		note(n, actor_send(sys, n->go_next, MSG_GO, NULL, 0));
	if (!actor_ref_is_none(n->hold))
		note(n, actor_send(sys, n->hold, MSG_HOLD, NULL, 0));
	if (!actor_ref_is_none(n->late_to))
		note(n, actor_send(sys, self, MSG_LATE, &n->late_to, sizeof(n->late_to)));
	if (n->exit_on_go)
		actor_exit(ctx, n->go_reason);
}

static void node_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct node *n = state;
	switch (msg->type) {
	case MSG_GO:
		node_go(ctx, n);
		break;
	case MSG_HOLD:
		if (n->gate != NULL && !gate_wait(n->gate))
			n->gate_timed_out = true;
		note(n, actor_unlink(ctx, n->unlink));
		if (n->exit_on_hold)
			actor_exit(ctx, n->hold_reason);
		break;
	case MSG_CHECK:
		n->checks++;
		n->exits_at_check = n->exits;
		actor_exit(ctx, n->check_reason);
		break;
	case ACTOR_MSG_EXIT:
		if (n->exits < NODE_EXITS) {
			memcpy(&n->exit[n->exits], msg + 1, sizeof(actor_exit_t));
			n->exit_sender[n->exits] = actor_sender(ctx);
			n->exit_size[n->exits] = msg->size;
		}
		if (++n->exits == n->exit_after)
			actor_exit(ctx, n->exits_reason);
		break;
	default:
		n->others++;
	}
}

/* A node on `worker`, watched from its start by `watcher` (if not NONE). */
static actor_ref_t spawn_node(actor_system_t *sys, unsigned worker, struct node *n,
                              actor_ref_t watcher)
{
	actor_spawn_opts_t o = {
	    .placement = ACTOR_PLACE_FIXED, .worker = worker, .monitor = watcher};
	return spawn_ok(sys, &o, node_fn, n);
}

static actor_ref_t spawn_downs(actor_system_t *sys, unsigned worker, struct downs *w,
                               unsigned expect)
{
	w->expect = expect;
	return spawn_on(sys, worker, downs_fn, w);
}

/* The ACTOR_MSG_EXIT number i that `n` got: from `from`, with `reason`, as an actor_exit_t. */
static void assert_exit(const struct node *n, unsigned i, actor_ref_t from, int reason)
{
	ck_assert_uint_lt(i, n->exits);
	ck_assert_uint_eq(n->exit_size[i], sizeof(actor_exit_t));
	ck_assert_msg(actor_ref_eq(n->exit[i].actor, from), "exit %u names the wrong actor", i);
	ck_assert_msg(actor_ref_eq(n->exit_sender[i], from), "exit %u has the wrong sender", i);
	ck_assert_int_eq(n->exit[i].reason, reason);
}

/* ---------------------------------------------------------------------------------------------
 * The rules of exit signals
 */

/* B stops normally; A, linked to it and not trapping, goes on: it gets the CHECK that follows
 * B's signal and stops with its own reason. */
START_TEST(a_normal_exit_leaves_a_partner_that_does_not_trap_running)
{
	struct poke p;
	actor_system_t *sys = poke_system(&p, 2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 2);
	struct node a = {.check_reason = 77}, b = {.exit_on_go = true};
	actor_ref_t ar = spawn_node(sys, 0, &a, wr);
	actor_ref_t br = spawn_node(sys, 1, &b, wr);
	a.link[0] = br;
	a.go_next = br; /* after the link, so B knows it before it stops */
	b.late_to = ar;
	send_ok(sys, ar, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "normal exit, no trap");

	assert_calls_ok(&a);
	assert_calls_ok(&b);
	ck_assert_uint_eq(a.checks, 1);
	ck_assert_uint_eq(a.exits + a.others, 0);
	ck_assert_int_eq(down_reason(&w, br), ACTOR_REASON_NORMAL);
	ck_assert_int_eq(down_reason(&w, ar), 77);
	actor_system_free(sys);
}
END_TEST

/* B1 exits with 42, B2 is stopped with actor_stop: A1 and A2, linked to them and not trapping,
 * stop with the same reasons, without another message reaching their behaviours. */
START_TEST(an_abnormal_exit_stops_a_partner_that_does_not_trap_with_the_same_reason)
{
	actor_system_t *sys = system_new(2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 4);
	struct node a1 = {0}, b1 = {.exit_on_go = true, .go_reason = 42}, a2 = {0}, b2 = {0};
	actor_ref_t a1r = spawn_node(sys, 0, &a1, wr);
	actor_ref_t b1r = spawn_node(sys, 1, &b1, wr);
	actor_ref_t a2r = spawn_node(sys, 1, &a2, wr);
	actor_ref_t b2r = spawn_node(sys, 0, &b2, wr);
	a1.link[0] = b1r;
	a1.go_next = b1r;
	a2.link[0] = b2r;
	a2.stop = b2r; /* after the link: one sender, in order */
	send_ok(sys, a1r, MSG_GO, NULL, 0);
	send_ok(sys, a2r, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "abnormal exit, no trap");

	assert_calls_ok(&a1);
	assert_calls_ok(&a2);
	ck_assert_int_eq(down_reason(&w, b1r), 42);
	ck_assert_int_eq(down_reason(&w, a1r), 42);
	ck_assert_int_eq(down_reason(&w, b2r), ACTOR_REASON_KILLED);
	ck_assert_int_eq(down_reason(&w, a2r), ACTOR_REASON_KILLED);
	ck_assert_uint_eq(a1.gos + a2.gos, 2);
	ck_assert_uint_eq(a1.exits + a1.others + a1.checks + a2.exits + a2.others + a2.checks, 0);
	ck_assert_uint_eq(b2.gos, 0);
	actor_system_free(sys);
}
END_TEST

/* A traps exits and is linked to B (normal exit), C (exit 42) and D (actor_stop): it gets three
 * ACTOR_MSG_EXIT messages and goes on, then stops with its own reason. */
START_TEST(a_trapping_partner_gets_every_exit_as_a_message_and_goes_on)
{
	actor_system_t *sys = system_new(2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 4);
	struct node a = {.trap = true, .exit_after = 3, .exits_reason = 5};
	struct node b = {.exit_on_go = true}, c = {.exit_on_go = true, .go_reason = 42}, d = {0};
	actor_ref_t ar = spawn_node(sys, 0, &a, wr);
	actor_ref_t br = spawn_node(sys, 1, &b, wr);
	actor_ref_t cr = spawn_node(sys, 1, &c, wr);
	actor_ref_t dr = spawn_node(sys, 0, &d, wr);
	a.link[0] = br;
	a.link[1] = cr;
	a.link[2] = dr;
	a.stop = dr; /* A stops D, starts B, and B starts C: each after A's links */
	a.go_next = br;
	b.go_next = cr;
	send_ok(sys, ar, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "trapping partner");

	assert_calls_ok(&a);
	ck_assert_uint_eq(a.exits, 3);
	ck_assert_uint_eq(a.others, 0);
	for (unsigned i = 0; i < 3; i++) {
		if (actor_ref_eq(a.exit[i].actor, br))
			assert_exit(&a, i, br, ACTOR_REASON_NORMAL);
		else if (actor_ref_eq(a.exit[i].actor, cr))
			assert_exit(&a, i, cr, 42);
		else
			assert_exit(&a, i, dr, ACTOR_REASON_KILLED);
	}
	ck_assert(!actor_ref_eq(a.exit[0].actor, a.exit[1].actor));
	ck_assert(!actor_ref_eq(a.exit[1].actor, a.exit[2].actor));
	ck_assert(!actor_ref_eq(a.exit[0].actor, a.exit[2].actor));
	ck_assert_int_eq(down_reason(&w, ar), 5);
	ck_assert_int_eq(down_reason(&w, cr), 42);
	/* The EXIT messages count as sent and delivered, like DOWNs. */
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.sent, st.delivered + st.dead_letters);
	actor_system_free(sys);
}
END_TEST

/* A - B - C, linked in a chain, none trapping: C's 42 stops B, and B's stops A, all with 42. */
START_TEST(an_abnormal_exit_travels_along_a_chain_of_three)
{
	actor_system_t *sys = system_new(2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 1, &w, 3);
	struct node a = {0}, b = {0}, c = {.exit_on_go = true, .go_reason = 42};
	actor_ref_t ar = spawn_node(sys, 0, &a, wr);
	actor_ref_t br = spawn_node(sys, 1, &b, wr);
	actor_ref_t cr = spawn_node(sys, 0, &c, wr);
	a.link[0] = br;
	a.go_next = br;
	b.link[0] = cr;
	b.go_next = cr;
	send_ok(sys, ar, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "chain of three");

	assert_calls_ok(&a);
	assert_calls_ok(&b);
	ck_assert_int_eq(down_reason(&w, cr), 42);
	ck_assert_int_eq(down_reason(&w, br), 42);
	ck_assert_int_eq(down_reason(&w, ar), 42);
	ck_assert_uint_eq(a.exits + a.others + b.exits + b.others, 0);
	actor_system_free(sys);
}
END_TEST

/* Linking to an actor that has stopped: a trapping caller gets an ACTOR_MSG_EXIT with
 * ACTOR_REASON_NOPROC; one that does not trap is stopped with it (as in Erlang). */
START_TEST(a_link_to_a_stopped_actor_gives_noproc)
{
	actor_system_t *sys = system_new(2);
	struct node dead = {.exit_on_go = true, .go_reason = 9};
	actor_ref_t dr = spawn_node(sys, 1, &dead, ACTOR_REF_NONE);
	send_ok(sys, dr, MSG_GO, NULL, 0);
	wait_stopped(sys, dr);

	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 2);
	struct node t = {.trap = true, .exit_after = 1, .exits_reason = 5}, n = {0};
	t.link[0] = dr;
	n.link[0] = dr;
	actor_ref_t tr = spawn_node(sys, 0, &t, wr);
	actor_ref_t nr = spawn_node(sys, 1, &n, wr);
	send_ok(sys, tr, MSG_GO, NULL, 0);
	send_ok(sys, nr, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "link to a stopped actor");

	assert_calls_ok(&t); /* actor_link returned 0 */
	assert_calls_ok(&n);
	ck_assert_uint_eq(t.exits, 1);
	assert_exit(&t, 0, dr, ACTOR_REASON_NOPROC);
	ck_assert_int_eq(down_reason(&w, tr), 5);
	ck_assert_int_eq(down_reason(&w, nr), ACTOR_REASON_NOPROC);
	actor_system_free(sys);
}
END_TEST

/* A links B, then B stops with 42 while A is busy; A unlinks B before its signal is handled:
 * the signal has no effect, trapping (no ACTOR_MSG_EXIT) or not (A is not stopped). */
static void unlink_before_the_signal_is_handled(bool trap)
{
	struct poke p;
	actor_system_t *sys = poke_system(&p, 2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 2);
	atomic_int gate = 0;
	struct node a = {.trap = trap, .gate = &gate, .check_reason = 5};
	struct node b = {.exit_on_go = true, .go_reason = 42};
	actor_ref_t ar = spawn_node(sys, 0, &a, wr);
	actor_ref_t br = spawn_node(sys, 1, &b, wr);
	a.link[0] = br;
	a.go_next = br;
	a.unlink = br;
	b.hold = ar; /* B holds A at the gate, then stops: its signal and the CHECK queue behind */
	b.late_to = ar;
	send_ok(sys, ar, MSG_GO, NULL, 0);
	ck_assert_msg(WAIT_UNTIL(poked(&p), TEST_WATCHDOG), "B's stop never poked A");
	gate_open(&gate);
	system_run_to_end(sys, TEST_WATCHDOG, "unlink with a signal on its way");

	ck_assert(!a.gate_timed_out);
	assert_calls_ok(&a);
	ck_assert_uint_eq(a.checks, 1);
	ck_assert_uint_eq(a.exits + a.others, 0);
	ck_assert_int_eq(down_reason(&w, br), 42);
	ck_assert_int_eq(down_reason(&w, ar), 5);
	actor_system_free(sys);
}

START_TEST(unlink_drops_a_signal_already_on_its_way_to_a_trapping_actor)
{
	unlink_before_the_signal_is_handled(true);
}
END_TEST

START_TEST(unlink_drops_a_signal_already_on_its_way_to_an_actor_not_trapping)
{
	unlink_before_the_signal_is_handled(false);
}
END_TEST

/* A links B, then unlinks it and stops with 43: B, which had the link too, is not stopped, and
 * stops later with its own reason. */
START_TEST(unlink_removes_the_link_on_both_sides)
{
	struct poke p;
	actor_system_t *sys = poke_system(&p, 2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 2);
	struct node a = {.exit_on_hold = true, .hold_reason = 43};
	struct node b = {.check_reason = 6};
	actor_ref_t ar = spawn_node(sys, 0, &a, wr);
	actor_ref_t br = spawn_node(sys, 1, &b, wr);
	a.link[0] = br;
	a.hold = ar;
	a.unlink = br;  /* in the HOLD turn, which then stops A */
	a.late_to = br; /* queued behind HOLD: A's stop pokes B after any signal of A's */
	send_ok(sys, ar, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "unlink both sides");

	assert_calls_ok(&a);
	ck_assert_uint_eq(b.checks, 1);
	ck_assert_uint_eq(b.exits + b.others, 0);
	ck_assert_int_eq(down_reason(&w, ar), 43);
	ck_assert_int_eq(down_reason(&w, br), 6);
	actor_system_free(sys);
}
END_TEST

/* A links B twice, and B links A: one link, so B's stop gives A one ACTOR_MSG_EXIT. */
START_TEST(linking_twice_and_from_both_sides_is_one_link)
{
	struct poke p;
	actor_system_t *sys = poke_system(&p, 2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 2);
	struct node a = {.trap = true, .check_reason = 5};
	struct node b = {.exit_on_go = true, .go_reason = 42};
	actor_ref_t ar = spawn_node(sys, 0, &a, wr);
	actor_ref_t br = spawn_node(sys, 1, &b, wr);
	a.link[0] = br;
	a.link[1] = br;
	a.go_next = br;
	b.link[0] = ar;
	b.link[1] = ar;
	b.late_to = ar;
	send_ok(sys, ar, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "link twice");

	assert_calls_ok(&a);
	assert_calls_ok(&b);
	ck_assert_uint_eq(a.checks, 1);
	ck_assert_uint_eq(a.exits_at_check, 1);
	ck_assert_uint_eq(a.exits, 1);
	assert_exit(&a, 0, br, 42);
	ck_assert_int_eq(down_reason(&w, ar), 5);
	actor_system_free(sys);
}
END_TEST

/* Linking an actor to itself does nothing: no signal reaches it, trapping or not. */
START_TEST(linking_to_itself_does_nothing)
{
	struct poke p;
	actor_system_t *sys = poke_system(&p, 1);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 0, &w, 2);
	struct node t = {.trap = true, .link_self = true, .check_reason = 5};
	struct node n = {.link_self = true, .exit_on_go = true, .go_reason = 42};
	actor_ref_t tr = spawn_node(sys, 0, &t, wr);
	actor_ref_t nr = spawn_node(sys, 0, &n, wr);
	n.late_to = tr; /* N's stop pokes T: a self-link of T's would not show anyway */
	send_ok(sys, tr, MSG_GO, NULL, 0);
	send_ok(sys, nr, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "self link");

	assert_calls_ok(&t);
	assert_calls_ok(&n);
	ck_assert_uint_eq(t.checks, 1);
	ck_assert_uint_eq(t.exits + t.others, 0);
	ck_assert_int_eq(down_reason(&w, tr), 5);
	ck_assert_int_eq(down_reason(&w, nr), 42);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bad arguments
 */

struct bad_calls {
	int link_none, link_null, unlink_none, trap_2, trap_neg, trap_null, unlink_null;
	int spawn_link_2, demonitor_null, demonitor_none_watcher;
};

static void bad_calls_inside(actor_ctx_t *ctx, void *arg)
{
	struct bad_calls *b = arg;
	b->link_none = actor_link(ctx, ACTOR_REF_NONE);
	b->unlink_none = actor_unlink(ctx, ACTOR_REF_NONE);
	b->trap_2 = actor_trap_exits(ctx, 2);
	b->trap_neg = actor_trap_exits(ctx, -1);
	actor_ref_t r;
	actor_spawn_opts_t o = {.link = 2};
	b->spawn_link_2 = actor_spawn(actor_ctx_system(ctx), &o, node_fn, NULL, &r);
}

START_TEST(bad_arguments_get_clear_errors_and_send_nothing)
{
	actor_system_t *sys = system_new(2);
	struct bad_calls b;
	memset(&b, 0xff, sizeof(b));
	run_in_actor(sys, NULL, bad_calls_inside, &b);
	ck_assert_int_eq(b.link_none, -EINVAL);
	ck_assert_int_eq(b.unlink_none, -EINVAL);
	ck_assert_int_eq(b.trap_2, -EINVAL);
	ck_assert_int_eq(b.trap_neg, -EINVAL);
	ck_assert_int_eq(b.spawn_link_2, -EINVAL);

	/* Outside a behaviour. */
	struct node n = {0};
	actor_ref_t nr = spawn_node(sys, 0, &n, ACTOR_REF_NONE);
	ck_assert_int_eq(actor_link(NULL, nr), -EINVAL);
	ck_assert_int_eq(actor_unlink(NULL, nr), -EINVAL);
	ck_assert_int_eq(actor_trap_exits(NULL, 1), -EINVAL);
	actor_ref_t r = ACTOR_REF_NONE;
	actor_spawn_opts_t linked = {.link = 1};
	ck_assert_int_eq(actor_spawn(sys, &linked, node_fn, NULL, &r), -EINVAL);
	ck_assert(actor_ref_is_none(r));

	/* A watcher that has stopped. */
	struct node gone = {.exit_on_go = true};
	actor_ref_t gr = spawn_node(sys, 1, &gone, ACTOR_REF_NONE);
	send_ok(sys, gr, MSG_GO, NULL, 0);
	wait_stopped(sys, gr);
	actor_spawn_opts_t watched = {.monitor = gr};
	ck_assert_int_eq(actor_spawn(sys, &watched, node_fn, NULL, &r), -ESRCH);

	ck_assert_int_eq(actor_demonitor(NULL, nr, nr), -EINVAL);
	ck_assert_int_eq(actor_demonitor(sys, ACTOR_REF_NONE, nr), -ESRCH);
	ck_assert_int_eq(actor_demonitor(sys, nr, ACTOR_REF_NONE), -ESRCH);
	ck_assert_int_eq(actor_demonitor(sys, nr, gr), -ESRCH);

	send_ok(sys, nr, MSG_CHECK, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "bad arguments");
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.spawned, 3); /* the task, N and the stopped one */
	ck_assert_uint_eq(st.dead_letters, 0);
	ck_assert_uint_eq(st.sent, st.delivered);
	ck_assert_uint_eq(n.others + n.exits, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Spawn-and-link, spawn-and-monitor
 */

/* Exits at once, in its start hook, with the reason its state encodes. */
static void fail_at_start(actor_ctx_t *ctx, void *state)
{
	actor_exit(ctx, (int)(intptr_t)state);
}

static void never_runs(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
}

struct spawner {
	unsigned total, next, child_worker;
	bool link;      /* spawn with link = 1 (else with monitor = watcher) */
	bool two_calls; /* spawn, then actor_monitor: the old way */
	actor_ref_t watcher;
	actor_ref_t *children;
	unsigned failures;
	/* Its own EXITs (link = 1: it traps them). */
	unsigned exits, noproc, wrong;
	uint8_t *seen;
};

static void spawn_batch(actor_ctx_t *ctx, struct spawner *s)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	for (unsigned k = 0; k < SPAWN_BATCH && s->next < s->total; k++, s->next++) {
		actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED,
		                        .worker = s->child_worker,
		                        .start = fail_at_start,
		                        .link = s->link};
		if (!s->link && !s->two_calls)
			o.monitor = s->watcher;
		void *reason = (void *)(intptr_t)(s->next + 1);
		if (actor_spawn(sys, &o, never_runs, reason, &s->children[s->next]) != 0)
			s->failures++;
		else if (s->two_calls && actor_monitor(sys, s->watcher, s->children[s->next]) != 0)
			s->failures++;
	}
	if (s->next < s->total)
		actor_send(sys, actor_self(ctx), MSG_GO, NULL, 0);
	else if (!s->link)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* The spawner: spawns a batch per turn; with `link` it traps its children's exits and counts
 * them, and stops once all have come. */
static void spawner_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct spawner *s = state;
	if (msg->type == MSG_GO) {
		if (s->next == 0 && s->link)
			actor_trap_exits(ctx, 1);
		spawn_batch(ctx, s);
		return;
	}
	if (msg->type != ACTOR_MSG_EXIT)
		return;
	actor_exit_t e;
	memcpy(&e, msg + 1, sizeof(e));
	if (e.reason == ACTOR_REASON_NOPROC)
		s->noproc++;
	else if (e.reason < 1 || (unsigned)e.reason > s->total || s->seen[e.reason - 1]++ != 0)
		s->wrong++;
	if (++s->exits == s->total)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Counts DOWNs by reason. */
struct tally {
	unsigned total, downs, noproc, wrong;
	uint8_t *seen;
	actor_ref_t *from; /* by reason */
};

static void tally_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct tally *t = state;
	if (msg->type != ACTOR_MSG_DOWN)
		return;
	actor_down_t d;
	memcpy(&d, msg + 1, sizeof(d));
	if (d.reason == ACTOR_REASON_NOPROC)
		t->noproc++;
	else if (d.reason < 1 || (unsigned)d.reason > t->total || t->seen[d.reason - 1]++ != 0)
		t->wrong++;
	else
		t->from[d.reason - 1] = d.actor;
	if (++t->downs == t->total)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Spawns `total` children on worker 1 that fail at once, from a spawner on worker 0, watched by
 * a tally on worker 0: with the spawn option, or the old way (`two_calls`). */
static struct tally spawn_and_watch(unsigned total, bool two_calls, actor_ref_t **children)
{
	actor_system_t *sys = system_new(2);
	struct tally t = {.total = total};
	t.seen = calloc(total, 1);
	t.from = calloc(total, sizeof(*t.from));
	struct spawner s = {.total = total, .child_worker = 1, .two_calls = two_calls};
	s.children = calloc(total, sizeof(*s.children));
	ck_assert(t.seen != NULL && t.from != NULL && s.children != NULL);
	s.watcher = spawn_on(sys, 0, tally_fn, &t);
	actor_ref_t sr = spawn_on(sys, 0, spawner_fn, &s);
	send_ok(sys, sr, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG_STRESS, "spawn and monitor");
	ck_assert_uint_eq(s.failures, 0);
	ck_assert_uint_eq(s.next, total);
	ck_assert_uint_eq(t.downs, total);
	actor_stats_t st = stats_of(sys);
	ck_assert_uint_eq(st.spawned, total + 2);
	ck_assert_uint_eq(st.stopped, total + 2);
	actor_system_free(sys);
	free(t.seen);
	*children = s.children;
	return t;
}

START_TEST(spawn_monitor_reports_the_real_reason_of_children_that_fail_at_once)
{
	unsigned total = (unsigned)test_param(0, "LINKS_SPAWNS", SPAWNS_DEFAULT);
	actor_ref_t *children;
	struct tally t = spawn_and_watch(total, false, &children);
	ck_assert_msg(t.noproc == 0, "%u of %u DOWNs said NOPROC", t.noproc, total);
	ck_assert_uint_eq(t.wrong, 0);
	for (unsigned i = 0; i < total; i++)
		ck_assert_msg(actor_ref_eq(t.from[i], children[i]), "DOWN %u names another actor",
		              i);
	free(children);
	free(t.from);

	/* The old way, spawn then actor_monitor, for comparison: a child that fails before the
	 * monitor's lookup is reported as NOPROC. How often depends on the machine. */
	struct tally old = spawn_and_watch(total, true, &children);
	fprintf(stderr,
	        "spawn-and-monitor: 0 of %u reasons lost; spawn then actor_monitor: %u of %u "
	        "reported as NOPROC\n",
	        total, old.noproc, total);
	ck_assert_uint_eq(old.wrong, 0);
	free(children);
	free(old.from);
}
END_TEST

/* A trapping spawner links its children at the spawn; each fails at once on another worker and
 * its EXIT carries its own reason, never NOPROC. */
START_TEST(spawn_link_from_a_behaviour_reports_the_real_reason_of_children_that_fail_at_once)
{
	actor_system_t *sys = system_new(2);
	struct spawner s = {.total = SPAWN_LINKED, .child_worker = 1, .link = true};
	s.children = calloc(SPAWN_LINKED, sizeof(*s.children));
	s.seen = calloc(SPAWN_LINKED, 1);
	ck_assert(s.children != NULL && s.seen != NULL);
	actor_ref_t sr = spawn_on(sys, 0, spawner_fn, &s);
	send_ok(sys, sr, MSG_GO, NULL, 0);

	system_run_to_end(sys, TEST_WATCHDOG_STRESS, "spawn and link");

	ck_assert_uint_eq(s.failures, 0);
	ck_assert_uint_eq(s.exits, SPAWN_LINKED);
	ck_assert_msg(s.noproc == 0, "%u of %u EXITs said NOPROC", s.noproc, SPAWN_LINKED);
	ck_assert_uint_eq(s.wrong, 0);
	actor_system_free(sys);
	free(s.children);
	free(s.seen);
}
END_TEST

/* A parent that does not trap spawns a linked child that fails with 42 in its start hook: the
 * parent stops with 42. */
static void linked_parent_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	int *rc = state;
	(void)msg;
	actor_spawn_opts_t o = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 1, .start = fail_at_start, .link = 1};
	actor_ref_t child;
	*rc = actor_spawn(actor_ctx_system(ctx), &o, never_runs, (void *)(intptr_t)42, &child);
}

START_TEST(spawn_link_stops_a_parent_that_does_not_trap_with_its_child_s_reason)
{
	actor_system_t *sys = system_new(2);
	struct downs w = {0};
	actor_ref_t wr = spawn_downs(sys, 1, &w, 1);
	int rc = 1;
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED, .worker = 0, .monitor = wr};
	actor_ref_t pr = spawn_ok(sys, &o, linked_parent_fn, &rc);
	send_ok(sys, pr, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "spawn-link, no trap");
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(down_reason(&w, pr), 42);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Demonitor
 */

/* W monitors T twice (actor_monitor) and cancels one: T's stop sends one DOWN. W2 watches T2
 * from its spawn and cancels it: none. The CHECK after each stop shows nothing else comes. */
START_TEST(demonitor_cancels_one_monitor)
{
	struct poke p;
	actor_system_t *sys = poke_system(&p, 2);
	struct node w = {.check_reason = 1}, w2 = {.check_reason = 2};
	struct node t = {.exit_on_go = true, .go_reason = 42};
	struct node t2 = {.exit_on_go = true, .go_reason = 43};
	actor_ref_t wr = spawn_node(sys, 0, &w, ACTOR_REF_NONE);
	actor_ref_t w2r = spawn_node(sys, 0, &w2, ACTOR_REF_NONE);
	actor_ref_t tr = spawn_node(sys, 1, &t, ACTOR_REF_NONE);
	actor_ref_t t2r = spawn_node(sys, 1, &t2, w2r);
	t.late_to = wr;
	t2.late_to = w2r;
	ck_assert_int_eq(actor_demonitor(sys, wr, tr), 0); /* none yet: nothing happens */
	ck_assert_int_eq(actor_monitor(sys, wr, tr), 0);
	ck_assert_int_eq(actor_monitor(sys, wr, tr), 0);
	ck_assert_int_eq(actor_demonitor(sys, wr, tr), 0);
	ck_assert_int_eq(actor_demonitor(sys, w2r, t2r), 0);
	send_ok(sys, tr, MSG_GO, NULL, 0); /* after the requests: same sender, in order */
	send_ok(sys, t2r, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "demonitor");

	ck_assert_uint_eq(w.checks, 1);
	ck_assert_uint_eq(w.others, 1); /* one DOWN */
	ck_assert_uint_eq(w2.checks, 1);
	ck_assert_uint_eq(w2.others, 0);
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Links across migration
 *
 * MIG_PAIRS conversations: watcher v[i] plays ping-pong with worker w[i], starting on different
 * workers and free to move, so they follow each other and are shared with idle workers. w[i]
 * spawned a dependent d[i] at its start, linked (spawn option), which its traffic drags along
 * too. v[i] traps exits and links w[i] and w[i+1] (another conversation); d[i] is watched by
 * v[i] from its spawn. When w[i] ends its game it exits with MIG_REASON + i: v[i] and v[i-1]
 * each get exactly one EXIT for it, d[i] is stopped with that reason and v[i] gets its DOWN.
 */

struct mig;

struct mig_worker {
	struct mig *t;
	unsigned i;
	actor_ref_t watcher, dependent;
	uint64_t pings;
	atomic_int inside, overlaps;
};

struct mig_watcher {
	struct mig *t;
	unsigned i;
	actor_ref_t own, next; /* w[i], w[i+1] */
	unsigned exits, downs, others, link_errors;
	actor_exit_t exit[4];
	actor_down_t down;
	bool workers_seen[2];
};

struct mig_dependent {
	uint64_t ticks;
	unsigned others;
};

struct mig {
	actor_system_t *sys;
	uint64_t rounds;
	unsigned ready;
	actor_ref_t watchers[MIG_PAIRS], workers[MIG_PAIRS];
	struct mig_worker w[MIG_PAIRS];
	struct mig_watcher v[MIG_PAIRS];
	struct mig_dependent d[MIG_PAIRS];
	atomic_ullong progress;
};

static void mig_dependent_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct mig_dependent *d = state;
	(void)ctx;
	if (msg->type == MSG_TICK)
		d->ticks++;
	else
		d->others++;
}

static void mig_worker_start(actor_ctx_t *ctx, void *state)
{
	struct mig_worker *w = state;
	actor_spawn_opts_t o = {.link = 1, .monitor = w->watcher};
	if (actor_spawn(actor_ctx_system(ctx), &o, mig_dependent_fn, &w->t->d[w->i],
	                &w->dependent) != 0)
		actor_exit(ctx, -ENOMEM); /* shows as a wrong reason below */
}

static void mig_worker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct mig_worker *w = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	if (atomic_exchange(&w->inside, 1) != 0)
		atomic_fetch_add(&w->overlaps, 1);
	if (msg->type == MSG_PING) {
		uint64_t k = msg_u64(msg);
		w->pings++;
		actor_send(sys, w->dependent, MSG_TICK, NULL, 0);
		atomic_fetch_add_explicit(&w->t->progress, 1, memory_order_relaxed);
		if (k == w->t->rounds)
			actor_exit(ctx, MIG_REASON + (int)w->i);
		else
			actor_send(sys, actor_sender(ctx), MSG_PONG, &k, sizeof(k));
	}
	atomic_store(&w->inside, 0);
}

static void mig_watcher_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct mig_watcher *v = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	unsigned wk = actor_ctx_worker(ctx);
	if (wk < 2)
		v->workers_seen[wk] = true;
	switch (msg->type) {
	case MSG_GO: /* from the test: link, then report */
		v->link_errors += actor_trap_exits(ctx, 1) != 0;
		v->link_errors += actor_link(ctx, v->own) != 0;
		v->link_errors += actor_link(ctx, v->next) != 0;
		actor_send(sys, v->t->watchers[0], MSG_READY, NULL, 0);
		break;
	case MSG_READY: /* watcher 0 only: the coordinator; all linked, start the games */
		if (++v->t->ready == MIG_PAIRS) {
			for (unsigned i = 0; i < MIG_PAIRS; i++)
				actor_send(sys, v->t->watchers[i], MSG_PONG,
				           &(uint64_t){UINT64_MAX}, sizeof(uint64_t));
		}
		break;
	case MSG_PONG: {
		uint64_t k = msg_u64(msg) + 1; /* UINT64_MAX + 1: the first ping, 0 */
		actor_send(sys, v->own, MSG_PING, &k, sizeof(k));
		break;
	}
	case ACTOR_MSG_EXIT:
		if (v->exits < 4)
			memcpy(&v->exit[v->exits], msg + 1, sizeof(actor_exit_t));
		v->exits++;
		break;
	case ACTOR_MSG_DOWN:
		memcpy(&v->down, msg + 1, sizeof(actor_down_t));
		v->downs++;
		break;
	default:
		v->others++;
	}
	if (v->exits == 2 && v->downs == 1)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static int place_at(void *arg, const actor_place_info_t *info)
{
	(void)info;
	return (int)(uintptr_t)arg;
}

/* Every way an actor changes workers: following a conversation, being shared, and leaving a
 * worker that yields its CPU. On a busy machine (make -j2 check, distcheck) the workers' spin
 * finds its CPU contended and the pairs may settle through the last alone: counting only the
 * first two, a CI run once failed with "moves == 0". */
static uint64_t moves_of(actor_system_t *sys)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < actor_system_workers(sys); i++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, i, &st), 0);
		sum += st.migrations + st.shared + st.yielded;
	}
	return sum;
}

START_TEST(links_hold_while_actors_move_between_workers)
{
	struct mig *t = calloc(1, sizeof(*t));
	ck_assert_ptr_nonnull(t);
	t->sys = system_new(2);
	t->rounds = test_param(0, "LINKS_ROUNDS", MIG_ROUNDS_DEFAULT);
	for (unsigned i = 0; i < MIG_PAIRS; i++) {
		actor_spawn_opts_t o = {.placement = ACTOR_PLACE_CALLBACK,
		                        .place = place_at,
		                        .place_arg = (void *)(uintptr_t)(i % 2)};
		t->v[i] = (struct mig_watcher){.t = t, .i = i};
		t->watchers[i] = spawn_ok(t->sys, &o, mig_watcher_fn, &t->v[i]);
	}
	for (unsigned i = 0; i < MIG_PAIRS; i++) {
		actor_spawn_opts_t o = {.placement = ACTOR_PLACE_CALLBACK,
		                        .place = place_at,
		                        .place_arg = (void *)(uintptr_t)((i + 1) % 2),
		                        .start = mig_worker_start};
		t->w[i].t = t;
		t->w[i].i = i;
		t->w[i].watcher = t->watchers[i];
		t->workers[i] = spawn_ok(t->sys, &o, mig_worker_fn, &t->w[i]);
	}
	for (unsigned i = 0; i < MIG_PAIRS; i++) {
		t->v[i].own = t->workers[i];
		t->v[i].next = t->workers[(i + 1) % MIG_PAIRS];
	}
	for (unsigned i = 0; i < MIG_PAIRS; i++)
		send_ok(t->sys, t->watchers[i], MSG_GO, NULL, 0);
	struct watchdog wd;
	watchdog_start_progress(&wd, t->sys, TEST_WATCHDOG, "links while moving", &t->progress);
	int rc = actor_system_run(t->sys);
	bool fired = watchdog_stop(&wd);
	ck_assert_msg(!fired, "links while moving: stuck after %llu pings",
	              (unsigned long long)atomic_load(&t->progress));
	ck_assert_int_eq(rc, 0);

	for (unsigned i = 0; i < MIG_PAIRS; i++) {
		struct mig_watcher *v = &t->v[i];
		unsigned next = (i + 1) % MIG_PAIRS;
		ck_assert_uint_eq(v->link_errors, 0);
		ck_assert_uint_eq(v->others, 0);
		ck_assert_msg(v->exits == 2, "watcher %u got %u EXITs", i, v->exits);
		ck_assert_uint_eq(v->downs, 1);
		for (unsigned k = 0; k < 2; k++) {
			bool own = actor_ref_eq(v->exit[k].actor, t->workers[i]);
			ck_assert(own || actor_ref_eq(v->exit[k].actor, t->workers[next]));
			ck_assert_int_eq(v->exit[k].reason, MIG_REASON + (int)(own ? i : next));
		}
		ck_assert(!actor_ref_eq(v->exit[0].actor, v->exit[1].actor));
		ck_assert(actor_ref_eq(v->down.actor, t->w[i].dependent));
		ck_assert_int_eq(v->down.reason, MIG_REASON + (int)i);
		ck_assert_uint_eq(t->w[i].pings, t->rounds + 1);
		ck_assert_int_eq(atomic_load(&t->w[i].overlaps), 0);
		ck_assert_uint_eq(t->d[i].ticks, t->rounds + 1);
		ck_assert_uint_eq(t->d[i].others, 0);
	}
	/* The test means something only if actors did move while linked. */
	uint64_t moves = moves_of(t->sys);
	fprintf(stderr, "links while moving: %" PRIu64 " moves\n", moves);
	ck_assert_uint_gt(moves, 0);
	actor_stats_t st = stats_of(t->sys);
	ck_assert_uint_eq(st.spawned, 3 * MIG_PAIRS);
	ck_assert_uint_eq(st.stopped, 3 * MIG_PAIRS);
	actor_system_free(t->sys);
	free(t);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown among linked actors
 *
 * SHUT_ACTORS actors in a ring pass tokens around, each linked to the next, every other one
 * trapping exits, each watched by the one before from its spawn; the trapping ones also link
 * and unlink others as they go, and a few stop abnormally (taking their non-trapping
 * neighbours along). One of them shuts the system down once enough tokens have passed. Every
 * actor stops exactly once (its destroy callback counts), and ASan sees nothing freed twice
 * or leaked.
 */

struct shut;

struct shut_node {
	struct shut *t;
	unsigned i;
	unsigned msgs;
	atomic_int destroyed;
};

struct shut {
	actor_system_t *sys;
	actor_ref_t refs[SHUT_ACTORS];
	struct shut_node n[SHUT_ACTORS];
	atomic_ullong progress;
	atomic_int shutdown_called;
	unsigned long threshold;
};

static void shut_destroy(void *state)
{
	struct shut_node *n = state;
	atomic_fetch_add(&n->destroyed, 1);
}

static void shut_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct shut_node *n = state;
	struct shut *t = n->t;
	actor_system_t *sys = actor_ctx_system(ctx);
	actor_ref_t next = t->refs[(n->i + 1) % SHUT_ACTORS];
	bool trap = n->i % 2 == 1;
	if (msg->type == MSG_GO) {
		if (trap)
			actor_trap_exits(ctx, 1);
		actor_link(ctx, next);
	}
	n->msgs++;
	if (trap && n->msgs % 8 == 0) {
		actor_ref_t other = t->refs[(n->i * 7 + n->msgs) % SHUT_ACTORS];
		if (n->msgs % 16 == 0)
			actor_unlink(ctx, other);
		else
			actor_link(ctx, other);
	}
	if (n->i % 97 == 0 && n->msgs == 20) {
		actor_exit(ctx, 13);
		return;
	}
	if (atomic_fetch_add(&t->progress, 1) + 1 == t->threshold &&
	    atomic_exchange(&t->shutdown_called, 1) == 0)
		actor_system_shutdown(sys);
	if (msg->type == MSG_GO || msg->type == MSG_PING) {
		/* Pass the token on; a stopped neighbour: keep it here. */
		if (actor_send(sys, next, MSG_PING, NULL, 0) != 0)
			actor_send(sys, actor_self(ctx), MSG_PING, NULL, 0);
	}
}

START_TEST(a_shutdown_among_linked_actors_stops_each_once)
{
	struct shut *t = calloc(1, sizeof(*t));
	ck_assert_ptr_nonnull(t);
	t->sys = system_new(2);
	t->threshold = 40UL * SHUT_ACTORS;
	for (unsigned i = 0; i < SHUT_ACTORS; i++) {
		t->n[i].t = t;
		t->n[i].i = i;
		actor_spawn_opts_t o = {.destroy = shut_destroy,
		                        .monitor = i > 0 ? t->refs[i - 1] : ACTOR_REF_NONE};
		t->refs[i] = spawn_ok(t->sys, &o, shut_fn, &t->n[i]);
	}
	/* An actor may stop before its GO: a failure that spread from a linked neighbour, or the
	 * shutdown itself, can reach it first. */
	for (unsigned i = 0; i < SHUT_ACTORS; i++) {
		int rc = actor_send(t->sys, t->refs[i], MSG_GO, NULL, 0);
		ck_assert_msg(rc == 0 || rc == -ESRCH, "actor_send: %d", rc);
	}
	system_run_to_end(t->sys, TEST_WATCHDOG, "shutdown among links");
	ck_assert_int_eq(atomic_load(&t->shutdown_called), 1);
	actor_stats_t st = stats_of(t->sys);
	ck_assert_uint_eq(st.spawned, SHUT_ACTORS);
	ck_assert_uint_eq(st.stopped, SHUT_ACTORS);
	actor_system_free(t->sys);
	for (unsigned i = 0; i < SHUT_ACTORS; i++)
		ck_assert_msg(atomic_load(&t->n[i].destroyed) == 1, "actor %u destroyed %d times",
		              i, atomic_load(&t->n[i].destroyed));
	free(t);
}
END_TEST

static Suite *links_suite(void)
{
	Suite *s = suite_create("links");
	TCase *tc = tcase_new("exit signals", TEST_TIMEOUT);
	tcase_add_test(tc, a_normal_exit_leaves_a_partner_that_does_not_trap_running);
	tcase_add_test(tc,
	               an_abnormal_exit_stops_a_partner_that_does_not_trap_with_the_same_reason);
	tcase_add_test(tc, a_trapping_partner_gets_every_exit_as_a_message_and_goes_on);
	tcase_add_test(tc, an_abnormal_exit_travels_along_a_chain_of_three);
	tcase_add_test(tc, a_link_to_a_stopped_actor_gives_noproc);
	tcase_add_test(tc, unlink_drops_a_signal_already_on_its_way_to_a_trapping_actor);
	tcase_add_test(tc, unlink_drops_a_signal_already_on_its_way_to_an_actor_not_trapping);
	tcase_add_test(tc, unlink_removes_the_link_on_both_sides);
	tcase_add_test(tc, linking_twice_and_from_both_sides_is_one_link);
	tcase_add_test(tc, linking_to_itself_does_nothing);
	tcase_add_test(tc, bad_arguments_get_clear_errors_and_send_nothing);
	tcase_add_test(tc, spawn_link_stops_a_parent_that_does_not_trap_with_its_child_s_reason);
	tcase_add_test(tc, demonitor_cancels_one_monitor);
	suite_add_tcase(s, tc);

	tc = tcase_new("races", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, spawn_monitor_reports_the_real_reason_of_children_that_fail_at_once);
	tcase_add_test(
	    tc, spawn_link_from_a_behaviour_reports_the_real_reason_of_children_that_fail_at_once);
	tcase_add_test(tc, links_hold_while_actors_move_between_workers);
	tcase_add_test(tc, a_shutdown_among_linked_actors_stops_each_once);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(links_suite)
