/* test_names.c: the name registry: register, look up, unregister; refusals (a taken name, a
 * second name, a stopped actor, bad names); the release of a name when its actor stops, for
 * every reason, before any DOWN of it is sent; and registrations, lookups and stops racing from
 * several threads and behaviours, with exact outcomes.
 *
 * Linked with the library's objects: actor__names_count tells how many entries the registry
 * holds, stale ones included, so that a release is seen to have happened, not only to be hidden.
 * When a system is freed the registry asserts that it is empty (names.c, N1).
 */
#include "common.h"

size_t actor__names_count(actor_system_t *sys); /* names.c */

#define RACE_ACTORS_DEFAULT 1024
#define RACE_OPS_DEFAULT 100000 /* per thread; 2 in 1,000 stop an actor */
#define RACE_THREADS 4
#define RACE_NAMES 16

enum { MSG_EXIT = 1, MSG_REGISTER_SELF, MSG_WHEREIS, MSG_PING };

/* ---------------------------------------------------------------------------------------------
 * A plain actor: exits on MSG_EXIT, answers pings, registers itself on request.
 */

struct plain {
	atomic_int self_rc; /* actor_register's answer to MSG_REGISTER_SELF; 1: not asked */
	char self_name[ACTOR_NAME_MAX + 1];
};

static void plain_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct plain *p = state;
	if (msg->type == MSG_EXIT)
		actor_exit(ctx, (int)msg_u64(msg));
	else if (msg->type == MSG_REGISTER_SELF)
		atomic_store(&p->self_rc,
		             actor_register(actor_ctx_system(ctx), p->self_name, actor_self(ctx)));
}

static actor_ref_t spawn_plain(actor_system_t *sys, unsigned worker, struct plain *p)
{
	atomic_init(&p->self_rc, 1);
	return spawn_on(sys, worker, plain_fn, p);
}

static actor_ref_t whereis_ok(actor_system_t *sys, const char *name)
{
	actor_ref_t ref = ACTOR_REF_NONE;
	int rc = actor_whereis(sys, name, &ref);
	ck_assert_msg(rc == 0, "actor_whereis(\"%s\"): %d", name, rc);
	return ref;
}

static void assert_absent(actor_system_t *sys, const char *name)
{
	actor_ref_t ref = {12345};
	int rc = actor_whereis(sys, name, &ref);
	ck_assert_msg(rc == -ENOENT, "actor_whereis(\"%s\"): %d, expected -ENOENT", name, rc);
	ck_assert(actor_ref_is_none(ref));
}

static void stop_all_and_free(actor_system_t *sys)
{
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	actor_system_free(sys);
}

/* ---------------------------------------------------------------------------------------------
 * The calls one at a time
 */

START_TEST(register_lookup_and_unregister)
{
	actor_system_t *sys = system_new(2);
	struct plain pa, pb;
	actor_ref_t a = spawn_plain(sys, 0, &pa);
	actor_ref_t b = spawn_plain(sys, 1, &pb);

	ck_assert_int_eq(actor_register(sys, "alpha", a), 0);
	ck_assert_int_eq(actor_register(sys, "beta", b), 0);
	ck_assert(actor_ref_eq(whereis_ok(sys, "alpha"), a));
	ck_assert(actor_ref_eq(whereis_ok(sys, "beta"), b));
	assert_absent(sys, "gamma");
	assert_absent(sys, "alph");
	ck_assert_uint_eq(actor__names_count(sys), 2);

	ck_assert_int_eq(actor_unregister(sys, "alpha"), 0);
	assert_absent(sys, "alpha");
	ck_assert_int_eq(actor_unregister(sys, "alpha"), -ENOENT);
	ck_assert_int_eq(actor_unregister(sys, "gamma"), -ENOENT);
	ck_assert(actor_ref_eq(whereis_ok(sys, "beta"), b));
	/* The name is free again, for another actor. */
	ck_assert_int_eq(actor_register(sys, "alpha", b), -EBUSY); /* b holds "beta" */
	ck_assert_int_eq(actor_register(sys, "alpha", a), 0);
	ck_assert(actor_ref_eq(whereis_ok(sys, "alpha"), a));
	ck_assert_uint_eq(actor__names_count(sys), 2);
	stop_all_and_free(sys);
}
END_TEST

START_TEST(a_taken_name_is_refused_with_eexist)
{
	actor_system_t *sys = system_new(2);
	struct plain pa, pb;
	actor_ref_t a = spawn_plain(sys, 0, &pa);
	actor_ref_t b = spawn_plain(sys, 1, &pb);
	ck_assert_int_eq(actor_register(sys, "db", a), 0);
	ck_assert_int_eq(actor_register(sys, "db", b), -EEXIST);
	ck_assert_int_eq(actor_register(sys, "db", a), -EEXIST); /* its own name too */
	ck_assert(actor_ref_eq(whereis_ok(sys, "db"), a));
	ck_assert_uint_eq(actor__names_count(sys), 1);
	stop_all_and_free(sys);
}
END_TEST

START_TEST(an_actor_holds_one_name_at_a_time)
{
	actor_system_t *sys = system_new(1);
	struct plain pa;
	actor_ref_t a = spawn_plain(sys, 0, &pa);
	ck_assert_int_eq(actor_register(sys, "first", a), 0);
	ck_assert_int_eq(actor_register(sys, "second", a), -EBUSY);
	assert_absent(sys, "second");
	ck_assert_int_eq(actor_unregister(sys, "first"), 0);
	ck_assert_int_eq(actor_register(sys, "second", a), 0);
	ck_assert(actor_ref_eq(whereis_ok(sys, "second"), a));
	assert_absent(sys, "first");
	stop_all_and_free(sys);
}
END_TEST

START_TEST(bad_names_and_arguments_are_refused)
{
	actor_system_t *sys = system_new(1);
	struct plain pa;
	actor_ref_t a = spawn_plain(sys, 0, &pa);
	char longest[ACTOR_NAME_MAX + 1], too_long[ACTOR_NAME_MAX + 2];
	memset(longest, 'x', ACTOR_NAME_MAX);
	longest[ACTOR_NAME_MAX] = '\0';
	memset(too_long, 'y', ACTOR_NAME_MAX + 1);
	too_long[ACTOR_NAME_MAX + 1] = '\0';
	actor_ref_t out;

	ck_assert_int_eq(actor_register(NULL, "n", a), -EINVAL);
	ck_assert_int_eq(actor_register(sys, NULL, a), -EINVAL);
	ck_assert_int_eq(actor_register(sys, "", a), -EINVAL);
	ck_assert_int_eq(actor_register(sys, too_long, a), -EINVAL);
	ck_assert_int_eq(actor_register(sys, "n", ACTOR_REF_NONE), -ESRCH);
	ck_assert_int_eq(actor_register(sys, "n", (actor_ref_t){(1ull << 32) | 4000000}), -ESRCH);
	ck_assert_int_eq(actor_register(sys, "n", (actor_ref_t){a.id + (1ull << 32)}), -ESRCH);
	ck_assert_int_eq(actor_unregister(NULL, "n"), -EINVAL);
	ck_assert_int_eq(actor_unregister(sys, NULL), -EINVAL);
	ck_assert_int_eq(actor_unregister(sys, ""), -EINVAL);
	ck_assert_int_eq(actor_unregister(sys, too_long), -EINVAL);
	ck_assert_int_eq(actor_whereis(NULL, "n", &out), -EINVAL);
	ck_assert_int_eq(actor_whereis(sys, NULL, &out), -EINVAL);
	ck_assert_int_eq(actor_whereis(sys, "", &out), -EINVAL);
	ck_assert_int_eq(actor_whereis(sys, too_long, &out), -EINVAL);
	ck_assert_int_eq(actor_whereis(sys, "n", NULL), -EINVAL);
	ck_assert_uint_eq(actor__names_count(sys), 0);

	/* The longest name works, and bytes beyond the first NUL do not count. */
	ck_assert_int_eq(actor_register(sys, longest, a), 0);
	ck_assert(actor_ref_eq(whereis_ok(sys, longest), a));
	longest[ACTOR_NAME_MAX - 1] = '\0';
	assert_absent(sys, longest);
	stop_all_and_free(sys);
}
END_TEST

START_TEST(a_stopped_actor_is_refused_with_esrch)
{
	actor_system_t *sys = system_new(2);
	struct plain pa, pb;
	actor_ref_t a = spawn_plain(sys, 0, &pa);
	actor_ref_t b = spawn_plain(sys, 1, &pb);
	ck_assert_int_eq(actor_stop(sys, a), 0);
	wait_stopped(sys, a);
	ck_assert_int_eq(actor_register(sys, "late", a), -ESRCH);
	assert_absent(sys, "late");
	ck_assert_uint_eq(actor__names_count(sys), 0);
	ck_assert_int_eq(actor_register(sys, "late", b), 0); /* nothing was left behind */
	stop_all_and_free(sys);
}
END_TEST

/* A behaviour finds a registered actor by name and sends to it. */
struct finder {
	atomic_int rc;
	actor_ref_t found;
};

static void finder_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct finder *f = state;
	(void)msg;
	actor_system_t *sys = actor_ctx_system(ctx);
	int rc = actor_whereis(sys, "target", &f->found);
	if (rc == 0)
		rc = actor_send(sys, f->found, MSG_EXIT, &(uint64_t){0}, sizeof(uint64_t));
	atomic_store(&f->rc, rc);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_behaviour_looks_a_name_up_and_sends_to_it)
{
	actor_system_t *sys = system_new(2);
	struct plain pt;
	struct finder f = {.rc = 1};
	actor_ref_t target = spawn_plain(sys, 1, &pt);
	ck_assert_int_eq(actor_register(sys, "target", target), 0);
	send_ok(sys, spawn_on(sys, 0, finder_fn, &f), 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "lookup from a behaviour");
	ck_assert_int_eq(atomic_load(&f.rc), 0);
	ck_assert(actor_ref_eq(f.found, target));
	ck_assert_uint_eq(actor__names_count(sys), 0); /* the target's exit released it */
	actor_system_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Release at stop: a watcher handling the DOWN finds the name gone and registers a successor
 */

enum how { BY_EXIT, BY_STOP };

struct heir {
	const char *name;
	actor_ref_t target;
	struct plain successor_state;
	/* Written by the watcher, read after the run. */
	int downs, whereis_rc, register_rc;
	actor_ref_t successor, found;
};

static void heir_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct heir *h = state;
	if (msg->type != ACTOR_MSG_DOWN)
		return;
	actor_system_t *sys = actor_ctx_system(ctx);
	h->downs++;
	h->whereis_rc = actor_whereis(sys, h->name, &h->found);
	atomic_init(&h->successor_state.self_rc, 1);
	if (actor_spawn(sys, NULL, plain_fn, &h->successor_state, &h->successor) == 0)
		h->register_rc = actor_register(sys, h->name, h->successor);
	actor_send(sys, h->successor, MSG_EXIT, &(uint64_t){0}, sizeof(uint64_t));
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* The target registered from outside (a MSG_NAMED tells it) or by itself (its flag set in its
 * own turn), then stopped by `how`; the watcher lives on `watcher_worker`. */
static void check_release_at_stop(enum how how, bool self, unsigned watcher_worker)
{
	actor_system_t *sys = system_new(2);
	struct plain pt;
	struct heir h = {.name = "service", .whereis_rc = 1, .register_rc = 1};
	strcpy(pt.self_name, h.name);
	actor_ref_t target = spawn_plain(sys, 1, &pt);
	h.target = target;
	actor_ref_t watcher = spawn_on(sys, watcher_worker, heir_fn, &h);
	ck_assert_int_eq(actor_monitor(sys, watcher, target), 0);
	if (self) {
		send_ok(sys, target, MSG_REGISTER_SELF, NULL, 0);
		assert_eventually(atomic_load(&pt.self_rc) != 1, TEST_WATCHDOG);
		ck_assert_int_eq(atomic_load(&pt.self_rc), 0);
	} else {
		ck_assert_int_eq(actor_register(sys, h.name, target), 0);
	}
	ck_assert(actor_ref_eq(whereis_ok(sys, h.name), target));
	if (how == BY_EXIT)
		send_u64(sys, target, MSG_EXIT, 17);
	else
		ck_assert_int_eq(actor_stop(sys, target), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "release at stop");

	ck_assert_int_eq(h.downs, 1);
	ck_assert_msg(h.whereis_rc == -ENOENT, "whereis after the DOWN: %d", h.whereis_rc);
	ck_assert(actor_ref_is_none(h.found));
	ck_assert_int_eq(h.register_rc, 0);
	ck_assert(!actor_ref_eq(h.successor, target));
	ck_assert_uint_eq(actor__names_count(sys), 0); /* released, not only hidden */
	assert_absent(sys, h.name);
	actor_system_free(sys);
}

START_TEST(an_exit_releases_the_name_before_the_down)
{
	check_release_at_stop(BY_EXIT, false, 0);
	check_release_at_stop(BY_EXIT, false, 1);
}
END_TEST

START_TEST(an_exit_releases_a_name_the_actor_took_itself)
{
	check_release_at_stop(BY_EXIT, true, 0);
	check_release_at_stop(BY_EXIT, true, 1);
}
END_TEST

START_TEST(a_kill_releases_the_name_before_the_down)
{
	check_release_at_stop(BY_STOP, false, 0);
	check_release_at_stop(BY_STOP, true, 1);
}
END_TEST

/* Shutdown: each named actor's destroy callback looks its own name up, and finds it gone. */
#define SHUTDOWN_ACTORS 64

struct named {
	char name[16];
	atomic_int register_rc, destroy_rc;
};

static actor_system_t *shutdown_sys;

static void named_destroy_lookup(void *state)
{
	struct named *n = state;
	actor_ref_t ref;
	atomic_store(&n->destroy_rc, actor_whereis(shutdown_sys, n->name, &ref));
}

static void named_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct named *n = state;
	(void)msg;
	atomic_store(&n->register_rc,
	             actor_register(actor_ctx_system(ctx), n->name, actor_self(ctx)));
}

START_TEST(a_shutdown_releases_every_name_before_destroy)
{
	static struct named n[SHUTDOWN_ACTORS];
	actor_system_t *sys = shutdown_sys = system_new(2);
	for (unsigned i = 0; i < SHUTDOWN_ACTORS; i++) {
		snprintf(n[i].name, sizeof(n[i].name), "worker-%u", i);
		atomic_init(&n[i].destroy_rc, 1);
		atomic_init(&n[i].register_rc, 1);
		actor_spawn_opts_t o = {.destroy = named_destroy_lookup};
		actor_ref_t r = spawn_ok(sys, &o, named_fn, &n[i]);
		if (i % 2 == 0)
			send_ok(sys, r, 1, NULL, 0); /* registers itself */
		else
			atomic_store(&n[i].register_rc, actor_register(sys, n[i].name, r));
	}
	for (unsigned i = 0; i < SHUTDOWN_ACTORS; i++) {
		assert_eventually(atomic_load(&n[i].register_rc) != 1, TEST_WATCHDOG);
		ck_assert_int_eq(atomic_load(&n[i].register_rc), 0);
	}
	ck_assert_uint_eq(actor__names_count(sys), SHUTDOWN_ACTORS);
	stop_all_and_free(sys);
	for (unsigned i = 0; i < SHUTDOWN_ACTORS; i++)
		ck_assert_msg(atomic_load(&n[i].destroy_rc) == -ENOENT,
		              "%s: whereis in its destroy: %d", n[i].name,
		              atomic_load(&n[i].destroy_rc));
}
END_TEST

/* A registration whose MSG_NAMED reaches the actor after its stop: the dead letter releases. */
static void gated_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)msg;
	gate_wait(state);
}

START_TEST(a_registration_queued_behind_the_stop_is_released_by_its_dead_letter)
{
	actor_system_t *sys = system_new(1);
	static atomic_int gate;
	actor_ref_t a = spawn_ok(sys, NULL, gated_fn, &gate);
	send_ok(sys, a, 1, NULL, 0);                           /* holds the worker at the gate */
	ck_assert_int_eq(actor_stop(sys, a), 0);               /* queued first */
	ck_assert_int_eq(actor_register(sys, "doomed", a), 0); /* its MSG_NAMED behind the stop */
	ck_assert(actor_ref_eq(whereis_ok(sys, "doomed"), a));
	ck_assert_uint_eq(actor__names_count(sys), 1);
	gate_open(&gate);
	system_run_to_end(sys, TEST_WATCHDOG, "a registration behind the stop");
	assert_absent(sys, "doomed");
	ck_assert_uint_eq(actor__names_count(sys), 0);
	actor_system_free(sys);
}
END_TEST

/* Between the stop's first step and the dead letter of its MSG_NAMED, the entry is still there
 * but hidden (N3), and the name may be given to another actor; the late release leaves that one
 * alone. The destroy callback runs in that window. */
struct stale {
	actor_system_t *sys;
	atomic_int gate, tail_dead;
	actor_ref_t successor;
	size_t count_before, count_after;
	int whereis_rc, register_rc;
};

static void exit_at_gate_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct stale *st = state;
	(void)msg;
	actor_exit(ctx, ACTOR_REASON_NORMAL);
	gate_wait(&st->gate);
}

static void stale_destroy(void *state)
{
	struct stale *st = state;
	actor_ref_t ref;
	st->count_before = actor__names_count(st->sys);
	st->whereis_rc = actor_whereis(st->sys, "spot", &ref);
	st->register_rc = actor_register(st->sys, "spot", st->successor);
	st->count_after = actor__names_count(st->sys);
}

static void stale_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	struct stale *st = arg;
	(void)to;
	if (msg->type == MSG_PING)
		atomic_store(&st->tail_dead, 1);
}

START_TEST(a_stopped_actors_name_may_be_taken_before_its_release)
{
	static struct stale st = {.whereis_rc = 1, .register_rc = 1};
	actor_config_t cfg = {
	    .workers = 2, .dead_letter = stale_dead_letter, .dead_letter_arg = &st};
	actor_system_t *sys = st.sys = system_new_cfg(&cfg);
	struct plain pb;
	st.successor = spawn_plain(sys, 0, &pb);
	actor_spawn_opts_t o = {
	    .placement = ACTOR_PLACE_FIXED, .worker = 1, .destroy = stale_destroy};
	actor_ref_t a = spawn_ok(sys, &o, exit_at_gate_fn, &st);
	send_ok(sys, a, 1, NULL, 0);                         /* exits, held at the gate */
	ck_assert_int_eq(actor_register(sys, "spot", a), 0); /* its MSG_NAMED waits behind */
	send_ok(sys, a, MSG_PING, NULL, 0);                  /* dead-lettered after it */
	gate_open(&st.gate);
	assert_eventually(atomic_load(&st.tail_dead), TEST_WATCHDOG);

	ck_assert_uint_eq(st.count_before, 1);    /* there, */
	ck_assert_int_eq(st.whereis_rc, -ENOENT); /* hidden, */
	ck_assert_int_eq(st.register_rc, 0);      /* and replaced */
	ck_assert_uint_eq(st.count_after, 1);
	ck_assert(actor_ref_eq(whereis_ok(sys, "spot"), st.successor)); /* the release left it */
	ck_assert_uint_eq(actor__names_count(sys), 1);
	stop_all_and_free(sys);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Races: outside threads register, unregister, look up and stop; behaviours register
 * themselves and look up. Every registration is noted before it is tried, so that a lookup can
 * be checked against what was ever tried under its name.
 */

struct race;

struct racer {
	struct race *r;
	unsigned index;
	atomic_int self_rc;
};

struct race {
	actor_system_t *sys;
	unsigned actors;
	unsigned long ops;
	actor_ref_t *refs;
	struct racer *racers;
	atomic_uchar *tried; /* [name][actor]: a registration of the actor under the name tried */
	atomic_ulong bad_lookups, lookups_found, registered, refused_esrch, refused_eexist,
	    refused_ebusy, other_errors, pings_answered, pings_dead;
	atomic_ullong progress;
};

static struct race race;

static void race_name(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "shard-%u", i);
}

/* The actor whose reference is `ref`, or -1. */
static int race_index(actor_ref_t ref)
{
	for (unsigned j = 0; j < race.actors; j++)
		if (actor_ref_eq(race.refs[j], ref))
			return (int)j;
	return -1;
}

static void race_check_lookup(unsigned name, int rc, actor_ref_t ref)
{
	if (rc == -ENOENT && actor_ref_is_none(ref))
		return;
	int j = rc == 0 ? race_index(ref) : -1;
	if (j < 0 || !atomic_load(&race.tried[name * race.actors + (unsigned)j]))
		atomic_fetch_add(&race.bad_lookups, 1);
	else
		atomic_fetch_add(&race.lookups_found, 1);
}

static void race_count(int rc)
{
	switch (rc) {
	case 0:
		atomic_fetch_add(&race.registered, 1);
		break;
	case -ESRCH:
		atomic_fetch_add(&race.refused_esrch, 1);
		break;
	case -EEXIST:
		atomic_fetch_add(&race.refused_eexist, 1);
		break;
	case -EBUSY:
		atomic_fetch_add(&race.refused_ebusy, 1);
		break;
	default:
		atomic_fetch_add(&race.other_errors, 1);
	}
}

static void race_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct racer *me = state;
	actor_system_t *sys = actor_ctx_system(ctx);
	char name[16];
	unsigned k = (unsigned)msg_u64(msg) % RACE_NAMES;
	race_name(k, name, sizeof(name));
	if (msg->type == MSG_REGISTER_SELF) {
		atomic_store(&race.tried[k * race.actors + me->index], 1);
		race_count(actor_register(sys, name, actor_self(ctx)));
	} else if (msg->type == MSG_WHEREIS) {
		actor_ref_t ref = ACTOR_REF_NONE;
		race_check_lookup(k, actor_whereis(sys, name, &ref), ref);
	} else if (msg->type == MSG_PING) {
		atomic_fetch_add(&race.pings_answered, 1);
	}
}

static void race_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	(void)arg;
	(void)to;
	if (msg->type == MSG_PING)
		atomic_fetch_add(&race.pings_dead, 1);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *race_thread(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15u * ((uintptr_t)arg + 1);
	char name[16];
	for (unsigned long op = 0; op < race.ops; op++) {
		uint64_t x = xorshift(&seed);
		unsigned k = (unsigned)(x >> 8) % RACE_NAMES;
		unsigned j = (unsigned)(x >> 24) % race.actors;
		actor_ref_t ref = race.refs[j];
		race_name(k, name, sizeof(name));
		switch (x % 1000) { /* per mille */
		case 0 ... 349:
			atomic_store(&race.tried[k * race.actors + j], 1);
			race_count(actor_register(race.sys, name, ref));
			break;
		case 350 ... 649: {
			actor_ref_t found = ACTOR_REF_NONE;
			race_check_lookup(k, actor_whereis(race.sys, name, &found), found);
			break;
		}
		case 650 ... 749:
			(void)actor_unregister(race.sys, name);
			break;
		case 750 ... 849:
			(void)actor_send(race.sys, ref, MSG_REGISTER_SELF, &(uint64_t){k},
			                 sizeof(uint64_t));
			break;
		case 850 ... 997:
			(void)actor_send(race.sys, ref, MSG_WHEREIS, &(uint64_t){k},
			                 sizeof(uint64_t));
			break;
		default:
			(void)actor_stop(race.sys, ref);
		}
		atomic_fetch_add_explicit(&race.progress, 1, memory_order_relaxed);
	}
	return NULL;
}

START_TEST(registrations_lookups_and_stops_race_with_exact_outcomes)
{
	memset(&race, 0, sizeof(race));
	race.actors = (unsigned)test_param(1, "NAMES_ACTORS", RACE_ACTORS_DEFAULT);
	race.ops = test_param(2, "NAMES_OPS", RACE_OPS_DEFAULT);
	actor_config_t cfg = {.workers = 2, .dead_letter = race_dead_letter};
	actor_system_t *sys = race.sys = system_new_cfg(&cfg);
	race.refs = calloc(race.actors, sizeof(*race.refs));
	race.racers = calloc(race.actors, sizeof(*race.racers));
	race.tried = calloc((size_t)RACE_NAMES * race.actors, sizeof(*race.tried));
	ck_assert(race.refs != NULL && race.racers != NULL && race.tried != NULL);
	for (unsigned j = 0; j < race.actors; j++) {
		race.racers[j].index = j;
		race.refs[j] = spawn_ok(sys, NULL, race_fn, &race.racers[j]);
	}

	struct watchdog wd;
	watchdog_start_progress(&wd, sys, TEST_WATCHDOG_STRESS, "name races", &race.progress);
	pthread_t threads[RACE_THREADS];
	for (uintptr_t t = 0; t < RACE_THREADS; t++)
		ck_assert_int_eq(pthread_create(&threads[t], NULL, race_thread, (void *)t), 0);
	for (unsigned t = 0; t < RACE_THREADS; t++)
		pthread_join(threads[t], NULL);

	/* Settle: a ping behind everything the threads sent to each actor. Once each is answered
	 * or dead-lettered, every stop and registration sent before it has been handled. */
	unsigned long pings = 0;
	for (unsigned j = 0; j < race.actors; j++)
		if (actor_send(sys, race.refs[j], MSG_PING, &(uint64_t){0}, sizeof(uint64_t)) == 0)
			pings++;
	bool settled =
	    WAIT_UNTIL(atomic_load(&race.pings_answered) + atomic_load(&race.pings_dead) == pings,
	               TEST_WATCHDOG_STRESS);
	ck_assert_msg(settled, "pings: %lu sent, %lu answered, %lu dead", pings,
	              atomic_load(&race.pings_answered), atomic_load(&race.pings_dead));
	ck_assert_msg(!watchdog_stop(&wd), "the races hung");

	ck_assert_uint_eq(atomic_load(&race.bad_lookups), 0);
	ck_assert_uint_eq(atomic_load(&race.other_errors), 0);
	ck_assert_msg(atomic_load(&race.registered) > 0 && atomic_load(&race.lookups_found) > 0,
	              "the test raced nothing: %lu registered, %lu found",
	              atomic_load(&race.registered), atomic_load(&race.lookups_found));

	/* Each name: a live actor that was tried under it, or nobody; no actor under two names. */
	int *owner = calloc(race.actors, sizeof(*owner));
	unsigned held = 0;
	for (unsigned k = 0; k < RACE_NAMES; k++) {
		char name[16];
		race_name(k, name, sizeof(name));
		actor_ref_t ref = ACTOR_REF_NONE;
		int rc = actor_whereis(sys, name, &ref);
		if (rc == -ENOENT)
			continue;
		ck_assert_int_eq(rc, 0);
		int j = race_index(ref);
		ck_assert_msg(j >= 0, "%s names an actor of no race", name);
		ck_assert_msg(atomic_load(&race.tried[k * race.actors + (unsigned)j]),
		              "%s names an actor never registered under it", name);
		actor_info_t info;
		ck_assert_int_eq(actor_info(sys, ref, &info), 0);
		ck_assert_msg(owner[j] == 0, "actor %d holds two names", j);
		owner[j] = (int)k + 1;
		held++;
	}
	/* Each live actor: a second name is refused exactly when it holds one. */
	for (unsigned j = 0; j < race.actors; j++) {
		actor_info_t info;
		if (actor_info(sys, race.refs[j], &info) != 0)
			continue;
		char probe[24];
		snprintf(probe, sizeof(probe), "probe-%u", j);
		int rc = actor_register(sys, probe, race.refs[j]);
		ck_assert_msg(rc == (owner[j] != 0 ? -EBUSY : 0), "actor %u: %d (owner %d)", j, rc,
		              owner[j]);
		if (rc == 0)
			ck_assert_int_eq(actor_unregister(sys, probe), 0);
	}
	ck_assert_msg(actor__names_count(sys) >= held, "%zu entries for %u names",
	              actor__names_count(sys), held);
	free(owner);
	/* The stop of every actor releases the rest: actor_system_free asserts none is left. */
	stop_all_and_free(sys);
	free(race.refs);
	free(race.racers);
	free(race.tried);
}
END_TEST

static Suite *names_suite(void)
{
	Suite *s = suite_create("names");
	TCase *tc = tcase_new("calls", TEST_TIMEOUT);
	tcase_add_test(tc, register_lookup_and_unregister);
	tcase_add_test(tc, a_taken_name_is_refused_with_eexist);
	tcase_add_test(tc, an_actor_holds_one_name_at_a_time);
	tcase_add_test(tc, bad_names_and_arguments_are_refused);
	tcase_add_test(tc, a_stopped_actor_is_refused_with_esrch);
	tcase_add_test(tc, a_behaviour_looks_a_name_up_and_sends_to_it);
	suite_add_tcase(s, tc);

	tc = tcase_new("release at stop", TEST_TIMEOUT);
	tcase_add_test(tc, an_exit_releases_the_name_before_the_down);
	tcase_add_test(tc, an_exit_releases_a_name_the_actor_took_itself);
	tcase_add_test(tc, a_kill_releases_the_name_before_the_down);
	tcase_add_test(tc, a_shutdown_releases_every_name_before_destroy);
	tcase_add_test(tc, a_registration_queued_behind_the_stop_is_released_by_its_dead_letter);
	tcase_add_test(tc, a_stopped_actors_name_may_be_taken_before_its_release);
	suite_add_tcase(s, tc);

	tc = tcase_new("races", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, registrations_lookups_and_stops_race_with_exact_outcomes);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(names_suite)
