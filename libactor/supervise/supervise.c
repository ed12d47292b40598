/* supervise.c: the supervisor's behaviour (actor.h, "Supervisors"): children started in order,
 * restarted by strategy within an intensity and after a backoff, stopped in reverse order.
 *
 * Who touches what: everything here is one supervisor actor's state, touched only in its own
 * turns (start hook, behaviour, destroy), on its home worker (contract 1), never by its
 * children, which get their own state from make_state. So there is no atomic and no lock; the
 * library's guarantees are the synchronisation: a child's exit reaches the supervisor as an
 * ACTOR_MSG_EXIT in its mailbox (the supervisor traps exits and is linked to each child from
 * before it runs), actor_stop on the supervisor arrives as MSG_STOP (actor__trap_stop), and
 * its own timers (shutdown waits, backoffs) as ACTOR_MSG_TIMER.
 *
 * Stopping children takes time (a child stops when it reaches the request, behind its queued
 * messages), so the supervisor works through one "plan" at a time: a list of children to stop,
 * one after the other in the order given, then one thing to do (restart a group, answer a
 * call, stop itself). While a plan runs, the supervisor is busy: what else arrives (another
 * child's exit, a call, a stop request) waits in a queue of events, handled in arrival order
 * once the plan is done, as OTP's supervisor leaves its mailbox alone while it stops children.
 *
 * Invariants:
 *   - A child with `ref` not NONE is running and linked to the supervisor: its exit will come.
 *   - A child whose exit was queued has `gone` = the ref that stopped; a plan that stops or
 *     restarts it (one_for_all, say) clears `gone`, and the queued exit is then ignored, as OTP
 *     ignores an EXIT from a pid it no longer knows.
 *   - `pending` names the restart group a child waits in; a group starts when its plan is done
 *     (or its backoff timer fires), in start order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "supervise/supervise.h"

#define TAG_WAIT (UINT64_C(1) << 62) /* timer tag: a shutdown wait for child (tag & ~TAG_WAIT) */
#define BACKOFF_MAX_FACTOR 64        /* backoff_max_ms 0: this many times backoff_min_ms */

struct child {
	actor_child_spec_t spec; /* deep copy (spec.c) */
	actor_ref_t ref;         /* the running child, or NONE */
	actor_ref_t gone;        /* its exit waits in the queue; else NONE (above) */
	uint64_t serial;         /* unique in this supervisor: queued events name children by it */
	uint64_t pending;        /* the restart group it waits in; 0: none */
	bool doomed;             /* TEMPORARY, stopped by a strategy or terminate: removed after */
	uint64_t started_ns;     /* its last start (or attempt) */
	unsigned fails;          /* failures in a row, for the backoff */
	uint32_t starts;
	bool owns_arg; /* a dynamic child's spec.free_arg is ours to call (actor.h) */
};

enum ev_kind { EV_EXIT, EV_START_FAILED, EV_STOP, EV_GROUP, EV_CALL };

struct event {
	enum ev_kind kind;
	uint64_t serial;             /* EV_EXIT, EV_START_FAILED: the child; EV_GROUP: the group */
	actor_ref_t ref;             /* EV_EXIT: the ref that stopped */
	int reason;                  /* EV_EXIT, EV_STOP */
	actor_reply_handle_t reply;  /* EV_CALL */
	struct actor__sup_call call; /* EV_CALL */
};

enum then { THEN_RESTART, THEN_REPLY, THEN_EXIT };

struct plan {
	uint64_t *stop; /* serials, in the order to stop them */
	unsigned n, next, cap;
	uint64_t waiting; /* the serial of the child stopping now; 0: none */
	bool timed;       /* `timer` bounds the wait */
	actor_timer_t timer;
	enum then then;
	uint64_t group, delay_ns;   /* THEN_RESTART */
	actor_reply_handle_t reply; /* THEN_REPLY (result 0) */
	int reason;                 /* THEN_EXIT */
};

struct sup {
	actor_system_t *sys;
	actor_strategy_t strategy;
	uint64_t period_ns, bmin_ns, bmax_ns, breset_ns;
	struct child **kids; /* in start order */
	unsigned n, cap;
	uint64_t next_serial, next_group;
	uint64_t *hist; /* the last restarts' times, a ring of intensity + 1 */
	unsigned hist_cap, hist_len, hist_head;
	uint64_t restarts, abandoned;
	bool busy;     /* a plan runs */
	bool stopping; /* actor_exit called: nothing more is done */
	struct plan plan;
	struct event *q; /* a ring: events waiting for the plan to end */
	unsigned qhead, qlen, qcap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------
 * Children
 */

static void child_free(struct child *c)
{
	if (c->owns_arg && c->spec.free_arg != NULL)
		c->spec.free_arg(c->spec.arg);
	free((char *)c->spec.id);
	free((char *)c->spec.register_as);
	actor__sup_opts_free((actor_supervisor_opts_t *)c->spec.supervisor);
	free(c);
}

/* Appends a child made from a checked spec (last in start order). */
static struct child *child_add(struct sup *s, const actor_child_spec_t *spec)
{
	if (s->n == s->cap) {
		unsigned cap = s->cap ? 2 * s->cap : 8;
		struct child **v = realloc(s->kids, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		s->kids = v;
		s->cap = cap;
	}
	struct child *c = calloc(1, sizeof(*c));
	if (c == NULL || actor__sup_spec_copy(&c->spec, spec) < 0) {
		free(c);
		return NULL;
	}
	c->serial = ++s->next_serial;
	s->kids[s->n++] = c;
	return c;
}

static unsigned child_index(const struct sup *s, const struct child *c)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->kids[i] == c)
			return i;
	return s->n;
}

static void child_remove(struct sup *s, struct child *c)
{
	unsigned i = child_index(s, c);
	memmove(&s->kids[i], &s->kids[i + 1], (s->n - i - 1) * sizeof(s->kids[0]));
	s->n--;
	child_free(c);
}

static struct child *child_by_serial(const struct sup *s, uint64_t serial)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->kids[i]->serial == serial)
			return s->kids[i];
	return NULL;
}

static struct child *child_by_ref(const struct sup *s, actor_ref_t ref)
{
	for (unsigned i = 0; i < s->n; i++)
		if (actor_ref_eq(s->kids[i]->ref, ref))
			return s->kids[i];
	return NULL;
}

static struct child *child_by_id(const struct sup *s, const char *id)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->kids[i]->spec.id, id) == 0)
			return s->kids[i];
	return NULL;
}

static bool running(const struct child *c)
{
	return !actor_ref_is_none(c->ref);
}

/* Starts `c` (make_state in this turn, then the spawn, linked): 0, or -ECANCELED if make_state
 * returned NULL, or the spawn's error. */
static int child_start(struct sup *s, struct child *c)
{
	actor_spawn_opts_t opts = c->spec.spawn;
	opts.link = 1;
	c->started_ns = now_ns();
	actor_ref_t ref;
	int rc;
	if (c->spec.supervisor != NULL) {
		rc = actor_supervisor_spawn(s->sys, &opts, c->spec.supervisor, &ref);
	} else {
		void *state = c->spec.arg;
		if (c->spec.make_state != NULL && (state = c->spec.make_state(c->spec.arg)) == NULL)
			return -ECANCELED;
		rc = actor_spawn(s->sys, &opts, c->spec.fn, state, &ref);
		if (rc < 0 && c->spec.make_state != NULL && opts.destroy != NULL)
			opts.destroy(state);
	}
	if (rc < 0)
		return rc;
	c->ref = ref;
	c->starts++;
	/* -ESRCH: it has stopped already, and its exit signal is on its way. Any other failure
	 * (the name is another actor's) fails this start the way a stop would. */
	if (c->spec.register_as != NULL) {
		rc = actor_register(s->sys, c->spec.register_as, ref);
		if (rc < 0 && rc != -ESRCH)
			(void)actor_stop(s->sys, ref);
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The queue of events
 */

static int q_push(struct sup *s, const struct event *e, bool front)
{
	if (s->qlen == s->qcap) {
		unsigned cap = s->qcap ? 2 * s->qcap : 16;
		struct event *v = malloc(cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		for (unsigned i = 0; i < s->qlen; i++)
			v[i] = s->q[(s->qhead + i) % s->qcap];
		free(s->q);
		s->q = v;
		s->qcap = cap;
		s->qhead = 0;
	}
	if (front) {
		s->qhead = (s->qhead + s->qcap - 1) % s->qcap;
		s->q[s->qhead] = *e;
	} else {
		s->q[(s->qhead + s->qlen) % s->qcap] = *e;
	}
	s->qlen++;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Answers
 */

static void answer(actor_ctx_t *ctx, struct sup *s, const actor_reply_handle_t *h, int result,
                   actor_ref_t child, bool list)
{
	size_t size =
	    sizeof(actor_supervisor_answer_t) + (list ? s->n : 0) * sizeof(actor_child_info_t);
	actor_supervisor_answer_t *a = calloc(1, size);
	if (a == NULL)
		return; /* the request is answered -ESRCH or dropped with the keeper's stop */
	a->result = result;
	a->child = child;
	a->restarts = s->restarts;
	a->abandoned = s->abandoned;
	if (list) {
		actor_child_info_t *v = actor_supervisor_children(a);
		a->count = s->n;
		for (unsigned i = 0; i < s->n; i++) {
			const struct child *c = s->kids[i];
			strcpy(v[i].id, c->spec.id);
			v[i].ref = c->ref;
			v[i].restarts = c->starts > 0 ? c->starts - 1 : 0;
			v[i].restart = (uint8_t)c->spec.restart;
			v[i].supervisor = c->spec.supervisor != NULL;
		}
	}
	(void)actor_reply_to(ctx, h, ACTOR_SUPERVISOR_ANSWER, a, size);
	free(a);
}

/* ---------------------------------------------------------------------------------------------
 * Plans: stop children one by one, then do one thing
 */

static void plan_begin(struct sup *s, enum then then)
{
	s->busy = true;
	s->plan.n = s->plan.next = 0;
	s->plan.waiting = 0;
	s->plan.timed = false;
	s->plan.then = then;
}

static void plan_add(struct sup *s, struct child *c)
{
	struct plan *p = &s->plan;
	if (p->n == p->cap) {
		unsigned cap = p->cap ? 2 * p->cap : 8;
		uint64_t *v = realloc(p->stop, cap * sizeof(*v));
		if (v == NULL) {
			/* Cannot wait for it: stop it anyway and leave it, as after a timeout. */
			actor_stop(s->sys, c->ref);
			c->ref = ACTOR_REF_NONE;
			s->abandoned++;
			return;
		}
		p->stop = v;
		p->cap = cap;
	}
	p->stop[p->n++] = c->serial;
}

static bool planned(const struct sup *s, const struct child *c)
{
	for (unsigned i = s->plan.next; i < s->plan.n; i++)
		if (s->plan.stop[i] == c->serial)
			return true;
	return false;
}

static void restart_group(actor_ctx_t *ctx, struct sup *s, uint64_t group);

static void plan_done(actor_ctx_t *ctx, struct sup *s)
{
	struct plan *p = &s->plan;
	s->busy = false;
	for (unsigned i = s->n; i-- > 0;) {
		struct child *c = s->kids[i];
		if (c->doomed && !running(c))
			child_remove(s, c);
	}
	switch (p->then) {
	case THEN_RESTART:
		if (p->delay_ns == 0)
			restart_group(ctx, s, p->group);
		else if (actor_timer_start(ctx, actor_self(ctx), p->delay_ns, 0, p->group,
		                           &p->timer) < 0)
			restart_group(ctx, s, p->group); /* no timer: better early than never */
		break;
	case THEN_REPLY:
		answer(ctx, s, &p->reply, 0, ACTOR_REF_NONE, false);
		break;
	case THEN_EXIT:
		s->stopping = true;
		actor_exit(ctx, p->reason);
		break;
	}
}

/* How long the supervisor waits for `c` to stop, in ms; -1: as long as it takes. */
static int shutdown_ms(const struct child *c)
{
	if (c->spec.shutdown_ms != 0)
		return c->spec.shutdown_ms;
	return c->spec.supervisor != NULL ? ACTOR_SHUTDOWN_INFINITY : ACTOR_CHILD_SHUTDOWN_MS;
}

/* Stops the next child of the plan and returns, or finishes the plan. */
static void plan_run(actor_ctx_t *ctx, struct sup *s)
{
	struct plan *p = &s->plan;
	for (; p->next < p->n; p->next++) {
		struct child *c = child_by_serial(s, p->stop[p->next]);
		if (c == NULL || !running(c))
			continue;
		/* -ESRCH: it has stopped already; its exit is on its way, as it is linked. */
		(void)actor_stop(s->sys, c->ref);
		p->waiting = c->serial;
		int ms = shutdown_ms(c);
		p->timed = ms >= 0 && actor_timer_start(ctx, actor_self(ctx), ACTOR_MS(ms), 0,
		                                        TAG_WAIT | c->serial, &p->timer) == 0;
		return;
	}
	plan_done(ctx, s);
}

/* The child the plan waits for has stopped, or was given up on. */
static void plan_child_gone(actor_ctx_t *ctx, struct sup *s, struct child *c)
{
	c->ref = ACTOR_REF_NONE;
	if (s->plan.timed)
		(void)actor_timer_cancel(ctx, s->plan.timer);
	s->plan.waiting = 0;
	s->plan.next++;
	plan_run(ctx, s);
}

/* Stops every running child in reverse start order, then the supervisor with `reason`. */
static void stop_all(actor_ctx_t *ctx, struct sup *s, int reason)
{
	plan_begin(s, THEN_EXIT);
	s->plan.reason = reason;
	for (unsigned i = s->n; i-- > 0;) {
		struct child *c = s->kids[i];
		c->pending = 0;
		if (running(c))
			plan_add(s, c);
	}
	plan_run(ctx, s);
}

/* ---------------------------------------------------------------------------------------------
 * Restarts
 */

/* Records a restart now; true if that makes more than the intensity within the period. */
static bool over_intensity(struct sup *s)
{
	uint64_t now = now_ns();
	if (s->hist_len < s->hist_cap) {
		s->hist[(s->hist_head + s->hist_len++) % s->hist_cap] = now;
	} else {
		s->hist[s->hist_head] = now;
		s->hist_head = (s->hist_head + 1) % s->hist_cap;
	}
	return s->hist_len == s->hist_cap && now - s->hist[s->hist_head] < s->period_ns;
}

static uint64_t backoff_ns(struct sup *s, struct child *c)
{
	if (now_ns() - c->started_ns >= s->breset_ns)
		c->fails = 0;
	c->fails++;
	uint64_t d = s->bmin_ns;
	for (unsigned i = 1; i < c->fails && d < s->bmax_ns; i++)
		d *= 2;
	return d < s->bmax_ns ? d : s->bmax_ns;
}

/* A sibling of a failed child under one_for_all or rest_for_one: stopped if running, then
 * restarted with the group, or removed if TEMPORARY. One stopped by a terminate stays so. */
static void mark(struct sup *s, struct child *k, uint64_t group)
{
	bool was = running(k) || k->pending != 0 || !actor_ref_is_none(k->gone);
	k->gone = ACTOR_REF_NONE; /* its queued exit, if any, is taken care of here */
	if (!was)
		return;
	if (k->spec.restart == ACTOR_RESTART_TEMPORARY) {
		k->doomed = true;
		k->pending = 0;
	} else {
		k->pending = group;
	}
	if (running(k))
		plan_add(s, k);
}

/* Child `c` has stopped (or could not start) with `reason`; `c->ref` is NONE. */
static void child_failed(actor_ctx_t *ctx, struct sup *s, struct child *c, int reason)
{
	bool normal = reason == ACTOR_REASON_NORMAL || reason == ACTOR_REASON_SHUTDOWN;
	c->gone = ACTOR_REF_NONE;
	if (c->spec.restart == ACTOR_RESTART_TEMPORARY ||
	    (c->spec.restart == ACTOR_RESTART_TRANSIENT && normal)) {
		child_remove(s, c);
		return;
	}
	if (over_intensity(s)) {
		stop_all(ctx, s, ACTOR_REASON_RESTARTS);
		return;
	}
	s->restarts++;
	uint64_t group = ++s->next_group;
	plan_begin(s, THEN_RESTART);
	s->plan.group = group;
	s->plan.delay_ns = backoff_ns(s, c);
	c->pending = group;
	c->doomed = false;
	unsigned from = s->n; /* one_for_one: none of the others */
	if (s->strategy == ACTOR_ONE_FOR_ALL)
		from = 0;
	else if (s->strategy == ACTOR_REST_FOR_ONE)
		from = child_index(s, c) + 1;
	for (unsigned i = s->n; i-- > from;)
		if (s->kids[i] != c)
			mark(s, s->kids[i], group);
	plan_run(ctx, s);
}

/* Starts the children waiting in `group`, in start order. One that cannot start is a failure
 * of its own, handled next (it may restart the ones started here, as its strategy says). */
static void restart_group(actor_ctx_t *ctx, struct sup *s, uint64_t group)
{
	(void)ctx;
	for (unsigned i = 0; i < s->n; i++) {
		struct child *c = s->kids[i];
		if (c->pending != group)
			continue;
		c->pending = 0;
		if (child_start(s, c) < 0) {
			struct event e = {.kind = EV_START_FAILED, .serial = c->serial};
			if (q_push(s, &e, true) < 0)
				c->pending = group; /* no memory: it waits, as terminated */
			return;
		}
	}
}

/* ---------------------------------------------------------------------------------------------
 * Calls
 */

static void call(actor_ctx_t *ctx, struct sup *s, struct event *e)
{
	struct actor__sup_call *k = &e->call;
	struct child *c = NULL;
	int rc = 0;
	if (k->op != ACTOR_SUP_START_CHILD && k->op != ACTOR_SUP_WHICH_CHILDREN) {
		k->id[ACTOR_CHILD_ID_MAX - 1] = '\0';
		if ((c = child_by_id(s, k->id)) == NULL)
			rc = -ENOENT;
	}
	if (rc == 0) {
		switch (k->op) {
		case ACTOR_SUP_START_CHILD:
			k->spec.id = k->id;
			if (actor__sup_spec_check(&k->spec, 0) < 0)
				rc = -EINVAL;
			else if (child_by_id(s, k->id) != NULL)
				rc = -EEXIST;
			else if ((c = child_add(s, &k->spec)) == NULL)
				rc = -ENOMEM;
			else if ((rc = child_start(s, c)) < 0)
				child_remove(s, c); /* arg stays the caller's */
			else
				c->owns_arg = true;
			break;
		case ACTOR_SUP_TERMINATE_CHILD:
			c->pending = 0;
			c->doomed = c->spec.restart == ACTOR_RESTART_TEMPORARY;
			if (running(c)) {
				plan_begin(s, THEN_REPLY);
				s->plan.reply = e->reply;
				plan_add(s, c);
				plan_run(ctx, s);
				return;
			}
			if (c->doomed)
				child_remove(s, c);
			c = NULL;
			break;
		case ACTOR_SUP_RESTART_CHILD:
			if (running(c))
				rc = -EALREADY;
			else if (c->pending != 0)
				rc = -EBUSY;
			else
				rc = child_start(s, c);
			break;
		case ACTOR_SUP_DELETE_CHILD:
			if (running(c) || c->pending != 0)
				rc = -EBUSY;
			else
				child_remove(s, c);
			c = NULL;
			break;
		case ACTOR_SUP_WHICH_CHILDREN:
			break;
		default:
			rc = -EINVAL;
		}
	}
	answer(ctx, s, &e->reply, rc, rc == 0 && c != NULL ? c->ref : ACTOR_REF_NONE,
	       rc == 0 && k->op == ACTOR_SUP_WHICH_CHILDREN);
}

/* ---------------------------------------------------------------------------------------------
 * The behaviour
 */

/* Handles queued events until a plan makes the supervisor busy, or it stops. */
static void pump(actor_ctx_t *ctx, struct sup *s)
{
	while (!s->busy && !s->stopping && s->qlen > 0) {
		struct event e = s->q[s->qhead];
		s->qhead = (s->qhead + 1) % s->qcap;
		s->qlen--;
		struct child *c = child_by_serial(s, e.serial);
		switch (e.kind) {
		case EV_EXIT:
			if (c != NULL && actor_ref_eq(c->gone, e.ref))
				child_failed(ctx, s, c, e.reason);
			break;
		case EV_START_FAILED:
			if (c != NULL && !running(c) && c->pending == 0)
				child_failed(ctx, s, c, ACTOR_REASON_START_FAILED);
			break;
		case EV_STOP:
			stop_all(ctx, s, e.reason);
			break;
		case EV_GROUP:
			restart_group(ctx, s, e.serial);
			break;
		case EV_CALL:
			call(ctx, s, &e);
			break;
		}
	}
}

static void queue(actor_ctx_t *ctx, struct sup *s, const struct event *e)
{
	if (q_push(s, e, false) == 0 || e->kind != EV_STOP)
		return;
	s->stopping = true; /* no memory even to wait: stop now, unordered */
	actor_exit(ctx, e->reason);
}

static void on_exit_msg(actor_ctx_t *ctx, struct sup *s, const actor_exit_t *x)
{
	struct child *c = child_by_ref(s, x->actor);
	if (c == NULL) {
		/* Not a child: the parent, or another linked actor. Its normal stop is ignored, as
		 * by an actor that does not trap exits; another stops the supervisor, in order. */
		if (x->reason != ACTOR_REASON_NORMAL)
			queue(ctx, s, &(struct event){.kind = EV_STOP, .reason = x->reason});
		return;
	}
	if (s->busy && s->plan.waiting == c->serial) {
		plan_child_gone(ctx, s, c);
	} else if (s->busy && planned(s, c)) {
		c->ref = ACTOR_REF_NONE; /* the plan skips it */
	} else {
		c->gone = c->ref;
		c->ref = ACTOR_REF_NONE;
		queue(
		    ctx, s,
		    &(struct event){
		        .kind = EV_EXIT, .serial = c->serial, .ref = c->gone, .reason = x->reason});
	}
}

static void on_timer(actor_ctx_t *ctx, struct sup *s, const actor_timer_event_t *t)
{
	if (t->tag & TAG_WAIT) {
		uint64_t serial = t->tag & ~TAG_WAIT;
		struct child *c = child_by_serial(s, serial);
		if (!s->busy || s->plan.waiting != serial || c == NULL)
			return; /* it stopped in time; the timer had fired already */
		/* Given up on: it stops when it reaches the request, unheard of. */
		(void)actor_unlink(ctx, c->ref);
		s->abandoned++;
		s->plan.timed = false;
		plan_child_gone(ctx, s, c);
		return;
	}
	queue(ctx, s, &(struct event){.kind = EV_GROUP, .serial = t->tag});
}

static void on_call(actor_ctx_t *ctx, struct sup *s, actor_msg_t *msg)
{
	struct event e = {.kind = EV_CALL};
	if (actor_request_of(ctx, NULL) != 1 || actor_request_keep(ctx, &e.reply) < 0)
		return; /* a plain send is ignored; an unkept request gets -ENOMSG */
	if (msg->size != sizeof(e.call)) {
		answer(ctx, s, &e.reply, -EINVAL, ACTOR_REF_NONE, false);
		return;
	}
	memcpy(&e.call, actor_msg_data(msg), sizeof(e.call));
	if (q_push(s, &e, false) < 0)
		answer(ctx, s, &e.reply, -ENOMEM, ACTOR_REF_NONE, false);
}

static void sup_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sup *s = state;
	if (s->stopping)
		return;
	if (msg->type == ACTOR_MSG_EXIT && msg->size >= sizeof(actor_exit_t))
		on_exit_msg(ctx, s, actor_msg_data(msg));
	else if (msg->type == MSG_STOP)
		queue(ctx, s, &(struct event){.kind = EV_STOP, .reason = ACTOR_REASON_KILLED});
	else if (msg->type == ACTOR_MSG_TIMER && msg->size >= sizeof(actor_timer_event_t))
		on_timer(ctx, s, actor_msg_data(msg));
	else if (msg->type == SUP_CALL)
		on_call(ctx, s, msg);
	pump(ctx, s);
}

/* The start hook: trap, then start the children in order. */
static void sup_start(actor_ctx_t *ctx, void *state)
{
	struct sup *s = state;
	actor_trap_exits(ctx, 1);
	actor__trap_stop(ctx);
	for (unsigned i = 0; i < s->n; i++) {
		if (child_start(s, s->kids[i]) < 0) {
			stop_all(ctx, s, ACTOR_REASON_START_FAILED);
			return;
		}
	}
}

static void sup_free(void *state)
{
	struct sup *s = state;
	for (unsigned i = 0; i < s->n; i++)
		child_free(s->kids[i]);
	free(s->kids);
	free(s->hist);
	free(s->plan.stop);
	free(s->q);
	free(s);
}

static struct sup *sup_new(actor_system_t *sys, const actor_supervisor_opts_t *o)
{
	struct sup *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->sys = sys;
	s->strategy = o->strategy;
	int intensity = o->intensity == 0 ? ACTOR_SUPERVISOR_INTENSITY : o->intensity;
	s->hist_cap = intensity < 0 ? 1 : (unsigned)intensity + 1;
	s->period_ns = ACTOR_MS(o->period_ms != 0 ? o->period_ms : ACTOR_SUPERVISOR_PERIOD_MS);
	s->bmin_ns = ACTOR_MS(o->backoff_min_ms);
	s->bmax_ns =
	    o->backoff_max_ms != 0 ? ACTOR_MS(o->backoff_max_ms) : BACKOFF_MAX_FACTOR * s->bmin_ns;
	s->breset_ns = o->backoff_reset_ms != 0 ? ACTOR_MS(o->backoff_reset_ms) : s->period_ns;
	s->hist = calloc(s->hist_cap, sizeof(*s->hist));
	bool ok = s->hist != NULL;
	for (unsigned i = 0; ok && i < o->nchildren; i++)
		ok = child_add(s, &o->children[i]) != NULL;
	if (!ok) {
		sup_free(s);
		return NULL;
	}
	return s;
}

int actor_supervisor_spawn(actor_system_t *sys, const actor_spawn_opts_t *opts,
                           const actor_supervisor_opts_t *sup, actor_ref_t *out)
{
	if (sys == NULL || sup == NULL || out == NULL)
		return -EINVAL;
	actor_spawn_opts_t o = {0};
	if (opts != NULL)
		o = *opts;
	if (o.start != NULL || o.destroy != NULL || actor__sup_opts_check(sup) < 0)
		return -EINVAL;
	struct sup *s = sup_new(sys, sup);
	if (s == NULL)
		return -ENOMEM;
	o.start = sup_start;
	o.destroy = sup_free;
	int rc = actor_spawn(sys, &o, sup_fn, s, out);
	if (rc < 0)
		sup_free(s);
	return rc;
}
