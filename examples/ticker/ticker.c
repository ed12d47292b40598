/* ticker.c: a periodic timer: an actor asks for a tick every 20 ms, counts five, and cancels.
 *
 * A timer is neither a thread nor a sleep. The worker the actor lives on keeps it, and when it
 * is due sends ACTOR_MSG_TIMER to its target, which handles it like any other message, between
 * the others. The program checks that it got five ticks and none came early.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <actor.h>

#define PERIOD_NS 20000000u /* 20 ms */
#define TICKS 5

enum { MSG_START = 1 };

/* The ticker's state. Only its behaviour touches it while the system runs; main reads it once
 * actor_system_run has returned. */
struct ticker {
	actor_timer_t timer;
	uint64_t start_ns;   /* when the timer was set */
	uint64_t ticks;      /* periods elapsed */
	uint64_t elapsed_ns; /* from start_ns to the last tick's arrival */
	int error;           /* of actor_timer_start or actor_timer_cancel */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void ticker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct ticker *t = state;
	if (msg->type == MSG_START) {
		/* The first tick after one period, then one every period. The target may be any
		 * actor; here it is ourselves. The tag (0) comes back in each tick, to tell timers
		 * apart. */
		t->start_ns = now_ns();
		t->error =
		    actor_timer_start(ctx, actor_self(ctx), PERIOD_NS, PERIOD_NS, 0, &t->timer);
		if (t->error < 0)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type != ACTOR_MSG_TIMER)
		return;

	const actor_timer_event_t *ev = actor_msg_data(msg);
	/* On a busy worker a tick can come late. Then it counts every period that passed since the
	 * last one (expirations > 1): no period is lost, and late ticks do not pile up. */
	t->ticks += ev->expirations;
	t->elapsed_ns = now_ns() - t->start_ns;
	printf("tick %" PRIu64 " at %.1f ms\n", t->ticks, (double)t->elapsed_ns / 1e6);
	if (t->ticks >= TICKS) {
		/* No more ticks from now on. (Stopping would also do: a timer whose target has
		 * stopped is dropped.) */
		t->error = actor_timer_cancel(ctx, t->timer);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

int main(void)
{
	struct ticker t = {0};
	actor_system_t *sys;
	actor_ref_t ref;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, NULL, ticker_fn, &t, &ref);
	if (rc == 0)
		rc = actor_send(sys, ref, MSG_START, NULL, 0);
	if (rc == 0)
		rc = actor_system_run(sys); /* returns once the ticker has stopped */
	actor_system_free(sys);
	if (rc == 0)
		rc = t.error;
	if (rc < 0) {
		fprintf(stderr, "ticker: %s\n", strerror(-rc));
		return 1;
	}
	/* A periodic timer's n-th period ends n periods after it was set, never before. */
	if (t.ticks < TICKS || t.elapsed_ns < t.ticks * PERIOD_NS) {
		fprintf(stderr, "ticker: %" PRIu64 " ticks in %.1f ms\n", t.ticks,
		        (double)t.elapsed_ns / 1e6);
		return 1;
	}
	return 0;
}
