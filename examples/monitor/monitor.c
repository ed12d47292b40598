/* monitor.c: learning when, and why, another actor stops: actor_monitor and ACTOR_MSG_DOWN.
 *
 * A boss starts three jobs and monitors each. One finishes, one fails (it stops with a reason
 * of its own), and one never ends by itself, so the boss stops it with actor_stop. Each stop
 * reaches the boss as one ACTOR_MSG_DOWN message carrying the job's reason, in whatever order
 * the jobs stop; once it has all three, the boss stops too. The program checks the reasons.
 */
#include <stdio.h>
#include <string.h>

#include <actor.h>

enum { MSG_START = 1, MSG_WORK };

/* A reason of our own. Any int will do; the library's are 0 (normal) and negative. */
#define REASON_FAILED 42

#define JOBS 3

static void finisher(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_WORK)
		actor_exit(ctx, ACTOR_REASON_NORMAL); /* done */
}

static void failer(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_WORK)
		actor_exit(ctx, REASON_FAILED); /* say, its input was bad */
}

static void idler(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg; /* works forever: only actor_stop (or a shutdown) ends it */
}

static actor_behavior_fn *const job_fns[JOBS] = {finisher, failer, idler};
static const char *const job_names[JOBS] = {"finisher", "failer", "idler"};

/* The boss's state. Only its behaviour touches it while the system runs; main reads it once
 * actor_system_run has returned. */
struct boss {
	actor_ref_t jobs[JOBS];
	int reasons[JOBS]; /* each job's stop reason, from its ACTOR_MSG_DOWN */
	int downs;         /* ACTOR_MSG_DOWN messages received */
	int error;
};

static const char *reason_text(int reason)
{
	switch (reason) {
	case ACTOR_REASON_NORMAL:
		return "normal";
	case ACTOR_REASON_KILLED:
		return "killed (actor_stop)";
	case REASON_FAILED:
		return "failed (its own reason)";
	default:
		return "other";
	}
}

static int start_jobs(actor_ctx_t *ctx, struct boss *b)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	int rc = 0;
	for (int i = 0; i < JOBS && rc == 0; i++) {
		rc = actor_spawn(sys, NULL, job_fns[i], NULL, &b->jobs[i]);
		/* Monitor before the job can stop. Monitoring an actor that has already stopped is
		 * no mistake either: the ACTOR_MSG_DOWN comes at once, with ACTOR_REASON_NOPROC. */
		if (rc == 0)
			rc = actor_monitor(sys, actor_self(ctx), b->jobs[i]);
	}
	if (rc == 0)
		rc = actor_send(sys, b->jobs[0], MSG_WORK, NULL, 0);
	if (rc == 0)
		rc = actor_send(sys, b->jobs[1], MSG_WORK, NULL, 0);
	if (rc == 0)
		rc = actor_stop(sys, b->jobs[2]); /* once it has handled what its mailbox holds */
	return rc;
}

static void boss_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct boss *b = state;
	if (msg->type == MSG_START) {
		b->error = start_jobs(ctx, b);
		if (b->error < 0) /* stop every actor, the jobs already started too */
			actor_system_shutdown(actor_ctx_system(ctx));
	} else if (msg->type == ACTOR_MSG_DOWN) {
		const actor_down_t *down = actor_msg_data(msg);
		for (int i = 0; i < JOBS; i++) {
			if (actor_ref_eq(down->actor, b->jobs[i])) {
				b->reasons[i] = down->reason;
				printf("%s stopped: %s\n", job_names[i], reason_text(down->reason));
			}
		}
		if (++b->downs == JOBS)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

int main(void)
{
	static const int expected[JOBS] = {ACTOR_REASON_NORMAL, REASON_FAILED, ACTOR_REASON_KILLED};
	struct boss b = {0};
	actor_system_t *sys;
	actor_ref_t ref;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, NULL, boss_fn, &b, &ref);
	if (rc == 0)
		rc = actor_send(sys, ref, MSG_START, NULL, 0);
	if (rc == 0)
		rc = actor_system_run(sys); /* returns once the boss and its jobs have stopped */
	actor_system_free(sys);
	if (rc == 0)
		rc = b.error;
	if (rc < 0) {
		fprintf(stderr, "monitor: %s\n", strerror(-rc));
		return 1;
	}
	for (int i = 0; i < JOBS; i++) {
		if (b.reasons[i] != expected[i]) {
			fprintf(stderr, "monitor: %s stopped with %d, expected %d\n", job_names[i],
			        b.reasons[i], expected[i]);
			return 1;
		}
	}
	return b.downs == JOBS ? 0 : 1;
}
