/* pool.c: the blocking-pool service on each worker: submitting and cancelling jobs, the
 * completions the pools' threads post back, and the actors waiting for them (pool.h has a
 * job's life; threads.c the pools).
 *
 * Submits travel in batches, as a behaviour's sends to another worker do (sched.c, Outbox): the
 * first job for a pool in a loop turn of the worker goes to the pool's queue at once, the ones
 * after it wait in the worker's batch for that pool, which goes in one hold of the pool's lock
 * when it holds POOL_BATCH_MAX jobs or the turn ends (`poll`). bench/blocking_roundtrip at 64
 * in flight, 8 runs of each alternating on 2 CPUs (load average 7): medians of 3.3M jobs/s
 * batched, 0.84M with each job taking the lock on its own.
 *
 * Each worker keeps the jobs submitted on it in a table (their handles, for actor_job_cancel)
 * and, per actor, the ACTOR_MSG_JOB_DONE messages still owed to it (`owed`: submitted, not yet
 * received) with its jobs in flight. While anything is owed the actor holds SVC_BIT_POOL, so it
 * stays on this worker, where its jobs' completions arrive; the bit is released as the last of
 * those messages reaches the behaviour (`receive`, inside the actor's turn, the one moment its
 * bits may change).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services/owners.h"
#include "services/pool/pool.h"

/* An actor with jobs: owed JOB_DONE messages and its jobs in flight (queued or running). */
struct actor__job_owner {
	actor_ref_t ref;
	uint64_t owed;
	struct actor__job *jobs;
};
_Static_assert(offsetof(struct actor__job_owner, ref) == 0, "an owners.h record starts with ref");

#define POOL_BATCH_SLOTS 4 /* pools a worker batches for at once; others' jobs go at once */
#define POOL_BATCH_MAX 32  /* jobs a batch holds before it goes */

/* Jobs for one pool waiting for the end of the loop turn, linked through qnext and qprev. A
 * slot with none means a job for that pool went at once this turn. */
struct batch {
	struct actor__pool *pool;
	struct actor__job *head, *tail;
	unsigned n;
};

struct pool_worker {
	struct actor__pools *pools; /* the system's */
	struct actor__table jobs;   /* batched, queued or running, with a live owner */
	struct actor__owners owners; /* struct actor__job_owner records */
	uint64_t orphans; /* running jobs whose owner stopped: the shutdown drain waits for them */
	struct batch batch[POOL_BATCH_SLOTS];
	unsigned nbatch;
};

static struct pool_worker *pool_worker_of(struct actor_worker *w)
{
	return w->svc[SVC_POOL];
}

/* ---------------------------------------------------------------------------------------------
 * Owners (services/owners.h)
 */

static void owner_link(struct actor__job_owner *ow, struct actor__job *j)
{
	j->owner = ow;
	j->oprev = NULL;
	j->onext = ow->jobs;
	if (ow->jobs != NULL)
		ow->jobs->oprev = j;
	ow->jobs = j;
}

static void owner_unlink(struct actor__job *j)
{
	struct actor__job_owner *ow = j->owner;
	if (j->oprev != NULL)
		j->oprev->onext = j->onext;
	else
		ow->jobs = j->onext;
	if (j->onext != NULL)
		j->onext->oprev = j->oprev;
	j->oprev = j->onext = NULL;
	j->owner = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Batches
 */

static void batch_go(struct batch *b)
{
	if (b->n == 0)
		return;
	for (struct actor__job *j = b->head; j != NULL; j = j->qnext)
		j->batched = false;
	actor__pool_queue(b->pool, b->head, b->tail, b->n);
	b->head = b->tail = NULL;
	b->n = 0;
}

/* The job goes to its pool: at once if it is the first for that pool this turn, else in the
 * pool's batch. */
static void job_queue(struct pool_worker *pw, struct actor__job *j)
{
	struct batch *b = NULL;
	for (unsigned i = 0; i < pw->nbatch; i++) {
		if (pw->batch[i].pool == j->pool)
			b = &pw->batch[i];
	}
	j->qprev = j->qnext = NULL;
	if (b == NULL) {
		if (pw->nbatch < POOL_BATCH_SLOTS)
			pw->batch[pw->nbatch++] = (struct batch){.pool = j->pool};
		actor__pool_queue(j->pool, j, j, 1);
		return;
	}
	j->batched = true;
	j->qprev = b->tail;
	if (b->tail != NULL)
		b->tail->qnext = j;
	else
		b->head = j;
	b->tail = j;
	if (++b->n == POOL_BATCH_MAX)
		batch_go(b);
}

/* Takes a batched job out of its batch. */
static void batch_remove(struct pool_worker *pw, struct actor__job *j)
{
	struct batch *b = NULL;
	for (unsigned i = 0; i < pw->nbatch && b == NULL; i++) {
		if (pw->batch[i].pool == j->pool)
			b = &pw->batch[i];
	}
	if (j->qprev != NULL)
		j->qprev->qnext = j->qnext;
	else
		b->head = j->qnext;
	if (j->qnext != NULL)
		j->qnext->qprev = j->qprev;
	else
		b->tail = j->qprev;
	j->qprev = j->qnext = NULL;
	j->batched = false;
	b->n--;
}

/* Takes a job that has not started out of its batch or queue: true if it was there. */
static bool job_unqueue(struct pool_worker *pw, struct actor__job *j)
{
	if (j->batched) {
		batch_remove(pw, j);
		return true;
	}
	return actor__pool_unqueue(j);
}

/* The end of the worker's loop turn: every batch goes. */
static unsigned pool_poll(struct actor_worker *w, void *state)
{
	(void)w;
	struct pool_worker *pw = state;
	if (pw->nbatch == 0)
		return 0;
	unsigned n = 0;
	for (unsigned i = 0; i < pw->nbatch; i++) {
		n += pw->batch[i].n;
		batch_go(&pw->batch[i]);
	}
	pw->nbatch = 0;
	return n;
}

/* ---------------------------------------------------------------------------------------------
 * Jobs
 */

static actor_job_done_t *done_of(struct actor__job *j)
{
	return actor_msg_data(j->msg);
}

/* Sends the job's JOB_DONE with `result` to its owner and frees the job, which has left the
 * table and its owner's list. The owner lives (its stop would have made the job an orphan), so
 * the send succeeds; its `owed` drops when the message reaches it. */
static void job_send(struct actor_worker *w, struct actor__job *j, actor_ref_t to, int64_t result)
{
	actor_job_done_t *d = done_of(j);
	d->result = result;
	actor_msg_t *m = j->msg;
	j->msg = NULL;
	if (actor__send_internal_msg(w->sys, to, m) < 0)
		actor__msg_free(m, actor__msg_bytes(m)); /* cannot happen: see above */
	actor__job_free(j);
}

/* The job leaves the table and its owner; the worker's count of jobs follows. */
static void job_detach(struct actor_worker *w, struct pool_worker *pw, struct actor__job *j)
{
	actor__table_del(&pw->jobs, (uint32_t)j->handle);
	owner_unlink(j);
	actor__stat_add(&w->st.jobs, (uint64_t)-1);
}

/* On the worker, posted by the thread that ran the job (threads.c): the result goes to the
 * owner, or is dropped if the owner has stopped (or, the system being freed, the worker's
 * service is gone). */
static void job_done_cmd(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct actor__job *j =
	    (struct actor__job *)((char *)cmd - offsetof(struct actor__job, cmd));
	struct pool_worker *pw = pool_worker_of(w);
	if (pw == NULL) {
		actor__job_abandon(j); /* its owner stopped first: counted then */
		return;
	}
	if (j->owner == NULL) {
		pw->orphans--;
		actor__stat_add(&w->st.jobs, (uint64_t)-1);
		actor__job_abandon(j);
		return;
	}
	actor_ref_t to = j->owner->ref;
	job_detach(w, pw, j);
	job_send(w, j, to, j->result);
}

/* A JOB_DONE made now, sent when the job ends: header and the payload but the result. */
static actor_msg_t *done_msg_new(uint64_t tag, void *arg)
{
	size_t size = sizeof(actor_msg_t) + sizeof(actor_job_done_t);
	actor_msg_t *m = actor__msg_alloc(size);
	if (m == NULL)
		return NULL;
	m->link_ = NULL;
	m->sender = ACTOR_REF_NONE;
	m->type = ACTOR_MSG_JOB_DONE;
	m->size = sizeof(actor_job_done_t);
	*(actor_job_done_t *)actor_msg_data(m) = (actor_job_done_t){.tag = tag, .arg = arg};
	return m;
}

/* A new job of `a` on `w` for pool `p`, in the table and the owner's list; not queued yet. */
static int job_new(struct actor_worker *w, struct pool_worker *pw, struct actor *a,
                   struct actor__pool *p, const actor_job_opts_t *opts, actor_job_fn *fn, void *arg,
                   struct actor__job **out)
{
	struct actor__job *j = actor__alloc(sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	*j = (struct actor__job){.pool = p, .w = w, .fn = fn, .arg = arg, .drop = opts->drop};
	j->cmd.fn = job_done_cmd;
	j->msg = done_msg_new(opts->tag, arg);
	struct actor__job_owner *ow =
	    actor__owners_get(&pw->owners, a->ref, sizeof(struct actor__job_owner));
	int64_t idx = j->msg != NULL && ow != NULL ? actor__table_put(&pw->jobs, j) : -ENOMEM;
	if (idx < 0) {
		if (ow != NULL && ow->owed == 0)
			actor__owners_del(&pw->owners, ow, sizeof(*ow));
		actor__job_free(j);
		return (int)idx;
	}
	j->handle = actor__table_handle(&pw->jobs, w->index, (uint32_t)idx);
	done_of(j)->job.id = j->handle;
	owner_link(ow, j);
	*out = j;
	return 0;
}

int actor_job_submit(actor_ctx_t *ctx, const actor_job_opts_t *opts, actor_job_fn *fn, void *arg,
                     actor_job_t *out)
{
	static const actor_job_opts_t defaults;
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || fn == NULL || out == NULL)
		return -EINVAL;
	if (opts == NULL)
		opts = &defaults;
	/* relaxed: a hint; a submit racing the flag is dropped with its actor, as they stop. */
	if (atomic_load_explicit(&w->sys->shutdown, memory_order_relaxed))
		return -ESHUTDOWN;
	struct pool_worker *pw = pool_worker_of(w);
	struct actor__pool *p =
	    opts->pool == NULL ? pw->pools->dflt : actor__pool_find(pw->pools, opts->pool);
	if (p == NULL)
		return -ENOENT;
	struct actor__job *j;
	int rc = job_new(w, pw, ctx->actor, p, opts, fn, arg, &j);
	if (rc < 0)
		return rc;
	j->owner->owed++;
	actor__svc_hold(ctx->actor, SVC_BIT_POOL);
	actor__stat_add(&w->st.jobs, 1);
	out->id = j->handle;
	/* From here a thread may run the job and post it back at any moment, but only to this
	 * thread, which is busy here: the job stays ours. */
	job_queue(pw, j);
	return 0;
}

void actor__pool_call(struct actor_worker *w, struct actor__pool *p, struct actor__job *j)
{
	j->w = w;
	j->pool = p;
	j->embedded = true;
	job_queue(pool_worker_of(w), j);
}

int actor_job_cancel(actor_ctx_t *ctx, actor_job_t job)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (job.id == 0)
		return -ESRCH;
	if (actor__handle_worker(job.id) != w->index)
		return -EXDEV;
	struct pool_worker *pw = pool_worker_of(w);
	struct actor__job *j = actor__table_get(&pw->jobs, job.id);
	if (j == NULL)
		return -ESRCH;
	if (!job_unqueue(pw, j))
		return -EBUSY;
	actor_ref_t to = j->owner->ref;
	job_detach(w, pw, j);
	job_send(w, j, to, -ECANCELED);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */

static int pool_sys_init(actor_system_t *sys, const actor_config_t *cfg, void **shared)
{
	(void)sys;
	if (cfg->pool_threads > ACTOR_POOL_THREADS_MAX)
		return -EINVAL;
	unsigned n = cfg->pool_threads ? cfg->pool_threads : ACTOR_POOL_THREADS_DEFAULT;
	return actor__pools_create(n, (struct actor__pools **)shared);
}

static void pool_sys_fini(actor_system_t *sys, void *shared)
{
	(void)sys;
	actor__pools_stop(shared);
}

static int pool_init(struct actor_worker *w, void **state)
{
	struct pool_worker *pw = calloc(1, sizeof(*pw));
	if (pw == NULL)
		return -ENOMEM;
	pw->pools = w->sys->svc_shared[SVC_POOL];
	*state = pw;
	return 0;
}

/* The worker is exiting, its actors all stopped (so their queued jobs were cancelled and their
 * running ones made orphans): frees its records. A job still running is its thread's: it comes
 * back as a command that the system's free runs, with this state gone. */
static void pool_fini(struct actor_worker *w, void *state)
{
	struct pool_worker *pw = state;
	for (uint32_t i = 1; i < pw->jobs.cap; i++) {
		struct actor__job *j = pw->jobs.obj[i];
		if (j != NULL && job_unqueue(pw, j)) {
			actor__stat_add(&w->st.jobs_dropped, 1);
			actor__job_abandon(j);
		}
	}
	actor__owners_free(&pw->owners, sizeof(struct actor__job_owner));
	actor__table_free(&pw->jobs);
	free(pw);
}

static bool pool_draining(const struct actor_worker *w, const void *state)
{
	(void)w;
	const struct pool_worker *pw = state;
	return pw->orphans > 0 || pw->jobs.used > 0;
}

/* `a` stopped: its queued jobs will never run and its running ones send nothing (actor.h). */
static void pool_owner_stopped(struct actor_worker *w, void *state, struct actor *a)
{
	struct pool_worker *pw = state;
	struct actor__job_owner *ow = actor__owners_find(&pw->owners, a->ref);
	if (ow == NULL)
		return;
	while (ow->jobs != NULL) {
		struct actor__job *j = ow->jobs;
		bool queued = job_unqueue(pw, j);
		job_detach(w, pw, j);
		actor__stat_add(&w->st.jobs_dropped, 1);
		if (queued) {
			actor__job_abandon(j);
		} else {
			pw->orphans++; /* job_done_cmd drops its result */
			actor__stat_add(&w->st.jobs, 1);
		}
	}
	actor__owners_del(&pw->owners, ow, sizeof(*ow));
}

/* A JOB_DONE reaches `a`'s behaviour: one less owed; with none left, it may move again. */
static enum actor__svc_verdict pool_receive(struct actor_worker *w, void *state, struct actor *a,
                                            actor_msg_t *m, struct actor__svc_note *note)
{
	(void)w;
	(void)note;
	struct pool_worker *pw = state;
	if (m->type != ACTOR_MSG_JOB_DONE)
		return SVC_DELIVER;
	struct actor__job_owner *ow = actor__owners_find(&pw->owners, a->ref);
	if (ow != NULL && --ow->owed == 0) {
		/* Nothing in flight either: owed counts those too. */
		actor__owners_del(&pw->owners, ow, sizeof(*ow));
		actor__svc_release(a, SVC_BIT_POOL);
	}
	return SVC_DELIVER;
}

const struct actor__service_ops actor__pool_service = {
    .name = "pool",
    .id = SVC_POOL,
    .blocks = {0x03},
    .actor_bits = SVC_BIT_POOL,
    .sys_init = pool_sys_init,
    .sys_fini = pool_sys_fini,
    .init = pool_init,
    .fini = pool_fini,
    .poll = pool_poll,
    .draining = pool_draining,
    .owner_stopped = pool_owner_stopped,
    .receive = pool_receive,
};
