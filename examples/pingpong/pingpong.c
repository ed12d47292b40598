/* pingpong.c: two actors bounce a counter back and forth.
 *
 * Usage: pingpong [roundtrips]   (default 100000)
 *
 * `ping` sends the counter to `pong`; `pong` adds one and sends it back to whoever sent it.
 * After the last round trip ping tells pong to stop and stops itself, and actor_system_run
 * returns. The program checks the final count and prints the rate.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <actor.h>

enum { MSG_START = 1, MSG_BALL, MSG_STOP };

/* Ping's private state. Only ping's behaviour touches it while the system runs, so it needs no
 * lock; main reads it once actor_system_run has returned. */
struct ping_state {
	actor_ref_t pong;
	uint64_t roundtrips; /* how many to play */
	uint64_t count;      /* the counter as it last came back */
};

static void ping(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct ping_state *p = state;
	actor_system_t *sys = actor_ctx_system(ctx);

	if (msg->type == MSG_BALL)
		memcpy(&p->count, actor_msg_data(msg), sizeof(p->count));

	if (p->count == p->roundtrips) {
		/* Done: stop pong, then ourselves (after this message returns). */
		actor_send(sys, p->pong, MSG_STOP, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	/* MSG_START, or a ball that came back: serve (again). */
	actor_send(sys, p->pong, MSG_BALL, &p->count, sizeof(p->count));
}

/* Pong has no state: it needs only the message and its sender. */
static void pong(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_STOP) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t n;
	memcpy(&n, actor_msg_data(msg), sizeof(n));
	n++;
	/* The sender of a message is filled in by the runtime: reply without knowing who. */
	actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_BALL, &n, sizeof(n));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct ping_state p = {.roundtrips = 100000};
	actor_system_t *sys;
	actor_ref_t ping_ref;
	int rc;

	if (argc > 1) {
		char *end;
		errno = 0;
		p.roundtrips = strtoull(argv[1], &end, 10);
		if (errno != 0 || *end != '\0' || argv[1][0] == '-' || p.roundtrips == 0) {
			fprintf(stderr, "usage: %s [roundtrips]\n", argv[0]);
			return 2;
		}
	}

	rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	/* Spawn pong first so that ping's state can name it. The state pointer is ours: it must
	 * outlive the actor, which it does, since main waits in actor_system_run. */
	rc = actor_spawn(sys, NULL, pong, NULL, &p.pong);
	if (rc == 0)
		rc = actor_spawn(sys, NULL, ping, &p, &ping_ref);

	double t0 = now_s();
	if (rc == 0)
		rc = actor_send(sys, ping_ref, MSG_START, NULL, 0); /* from outside: no sender */
	if (rc == 0)
		rc = actor_system_run(sys); /* returns once ping and pong have both stopped */
	double t1 = now_s();
	actor_system_free(sys);

	if (rc < 0) {
		fprintf(stderr, "pingpong: %s\n", strerror(-rc));
		return 1;
	}
	if (p.count != p.roundtrips) {
		fprintf(stderr, "pingpong: counter is %" PRIu64 ", expected %" PRIu64 "\n", p.count,
		        p.roundtrips);
		return 1;
	}
	printf("%" PRIu64 " round trips in %.3f s: %.0f round trips/s\n", p.count, t1 - t0,
	       (double)p.count / (t1 - t0));
	return 0;
}
