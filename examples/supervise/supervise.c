/* supervise.c: a supervised pool of workers that fail at random. A one_for_one supervisor
 * restarts each worker that stops; main sends jobs to whichever workers are running (asking the
 * supervisor for their current references, since a restart gives a new one) and, at the end,
 * accounts for every job: done, failed on (the job a worker stopped on), or dead-lettered
 * (queued for a worker that stopped first). Exits non-zero if a count does not add up.
 *
 * Usage: supervise [jobs]   (default 20000)
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <actor.h>

enum { MSG_JOB = 1 };
#define WORKERS 4
#define FAIL_ONE_IN 50 /* a worker fails on about one job in this many */

static atomic_ulong done, failed, dead;

struct worker {
	unsigned seed;
};

static void *worker_new(void *arg)
{
	static atomic_uint starts;
	struct worker *w = malloc(sizeof(*w));
	if (w != NULL)
		w->seed = (unsigned)(uintptr_t)arg * 7919u + atomic_fetch_add(&starts, 1);
	return w;
}

static void worker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct worker *w = state;
	if (msg->type != MSG_JOB)
		return;
	if (rand_r(&w->seed) % FAIL_ONE_IN == 0) {
		atomic_fetch_add(&failed, 1);
		actor_exit(ctx, 1); /* an abnormal stop: the supervisor restarts it */
		return;
	}
	atomic_fetch_add(&done, 1);
}

static void on_dead_letter(void *arg, actor_ref_t to, const actor_msg_t *msg)
{
	(void)arg;
	(void)to;
	if (msg->type == MSG_JOB)
		atomic_fetch_add(&dead, 1);
}

/* The running workers' references, from the supervisor; returns its restart count. */
static unsigned long refresh(actor_system_t *sys, actor_ref_t sup, actor_ref_t *refs)
{
	actor_msg_t *reply;
	actor_supervisor_answer_t *a;
	if (actor_supervisor_call_wait(sys, sup, ACTOR_SUP_WHICH_CHILDREN, NULL, NULL, 0, &reply) <
	    0)
		return 0;
	if (actor_supervisor_answer_of(reply, &a) == 0) {
		actor_child_info_t *v = actor_supervisor_children(a);
		for (unsigned i = 0; i < a->count && i < WORKERS; i++)
			refs[i] = v[i].ref;
	}
	unsigned long restarts = a->restarts;
	actor_msg_free(reply);
	return restarts;
}

int main(int argc, char **argv)
{
	unsigned long jobs = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	actor_system_t *sys;
	actor_config_t cfg = {.workers = 2, .dead_letter = on_dead_letter};
	if (actor_system_create(&cfg, &sys) < 0)
		return 1;

	static const char *ids[WORKERS] = {"w0", "w1", "w2", "w3"};
	actor_child_spec_t specs[WORKERS];
	for (unsigned i = 0; i < WORKERS; i++)
		specs[i] = (actor_child_spec_t){.id = ids[i],
		                                .fn = worker_fn,
		                                .make_state = worker_new,
		                                .arg = (void *)(uintptr_t)(i + 1),
		                                .spawn = {.destroy = free}};
	actor_supervisor_opts_t opts = {.strategy = ACTOR_ONE_FOR_ONE,
	                                .intensity = 1000000, /* failing is this pool's job */
	                                .period_ms = 1000,
	                                .children = specs,
	                                .nchildren = WORKERS};
	actor_ref_t sup, refs[WORKERS];
	if (actor_supervisor_spawn(sys, NULL, &opts, &sup) < 0)
		return 1;
	refresh(sys, sup, refs);

	unsigned long sent = 0;
	for (unsigned long i = 0; i < jobs; i++) {
		unsigned k = (unsigned)(i % WORKERS);
		int rc;
		/* -ESRCH: that worker has stopped; ask for its successor (not running yet: ask
		 * again). */
		while ((rc = actor_send(sys, refs[k], MSG_JOB, NULL, 0)) == -ESRCH)
			refresh(sys, sup, refs);
		if (rc < 0)
			return 1;
		sent++;
	}
	/* Every job ends one of three ways; wait until all have. */
	while (atomic_load(&done) + atomic_load(&failed) + atomic_load(&dead) < sent)
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	/* The supervisor hears of the last failures just after the jobs were counted. */
	unsigned long restarts;
	for (int tries = 0;
	     (restarts = refresh(sys, sup, refs)) < atomic_load(&failed) && tries < 10000; tries++)
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	printf("jobs sent %lu: done %lu, failed on %lu, dead-lettered %lu; restarts %lu\n", sent,
	       atomic_load(&done), atomic_load(&failed), atomic_load(&dead), restarts);
	int ok = atomic_load(&done) + atomic_load(&failed) + atomic_load(&dead) == sent &&
	         restarts == atomic_load(&failed);
	actor_stop(sys, sup);
	actor_system_run(sys);
	actor_system_free(sys);
	if (!ok)
		fprintf(stderr, "supervise: the counts do not add up\n");
	return ok ? 0 : 1;
}
