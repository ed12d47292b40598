/* threads.c: the pools of the blocking-pool service: named queues of jobs under a mutex, each
 * with up to its size of threads that run them and post each finished job back to the worker it
 * came from. Shared by every worker; nothing here runs on an actor's path but a submit's or a
 * cancel's short hold of the pool's mutex (and a worker's batch of submits takes it once).
 *
 * A pool starts one thread as it is created, and more, up to its size, as jobs wait with no
 * thread asleep or spinning to take them (more_hands); they run with every signal blocked, and
 * never exit before the pool stops, which joins them. A thread that finds the queue empty looks for
 * work a while (spin_for_work), then sleeps until a submit or another thread wakes it. At system
 * free the pools stop: a thread running a job finishes it and frees it (it is never posted to the
 * system's workers any more), then exits. The pool's memory lives until both the registry and its
 * last thread have let go of it (`refs`), so actor_system_free need not wait for a job that
 * outlasts ACTOR_POOL_STOP_MS: the threads still running one then are detached.
 */
#include "config.h"

#include <ck_pr.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "services/pool/pool.h"

/* A thread that finds the queue empty looks for work a while before it sleeps, as a worker
 * spins before it parks, so that a steady stream of jobs needs no wake-up (a futex wake on the
 * submitting worker, and the sleeper's way back to a CPU). Two threads per pool at most, so
 * that an idle pool costs two CPUs' polling for POOL_SPIN_NS after its last job, and each
 * spinner yields its CPU every POOL_SPIN_POLLS polls to any other thread that wants it.
 * bench/blocking_roundtrip at 64 in flight, 8 runs of each alternating on 2 CPUs: medians of
 * 2.5M jobs/s with one spinner, 3.4M with two, 3.5M with three (load average 3.5); in another
 * such run 4.1M with one, 6.7M with two. */
#define POOL_SPINNERS 2
#define POOL_SPIN_NS 50000 /* as a worker's default spin_us */
#define POOL_SPIN_POLLS 64

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void actor__job_free(struct actor__job *j)
{
	if (j->msg != NULL)
		actor__msg_free(j->msg, actor__msg_bytes(j->msg));
	actor__free(j, sizeof(*j));
}

void actor__job_abandon(struct actor__job *j)
{
	bool embedded = j->embedded; /* `drop` may free an embedded job */
	if (j->drop != NULL)
		j->drop(j->arg);
	if (!embedded)
		actor__job_free(j);
}

static struct actor__pool *pool_new(const char *name, unsigned size)
{
	struct actor__pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->tids = calloc(size, sizeof(*p->tids));
	if (p->tids == NULL) {
		free(p);
		return NULL;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* for the bounded wait at stop */
	pthread_cond_init(&p->exited, &ca);
	pthread_condattr_destroy(&ca);
	/* Adaptive: a hold is a few pointer writes, so a thread that finds it taken spins a
	 * little before it sleeps in the kernel. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&p->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	atomic_init(&p->pending, 0);
	atomic_init(&p->stop, false);
	atomic_init(&p->posting, 0);
	p->size = size;
	p->refs = 1; /* the registry's */
	strcpy(p->name, name);
	return p;
}

static void pool_free(struct actor__pool *p)
{
	pthread_cond_destroy(&p->exited);
	pthread_mutex_destroy(&p->lock);
	free(p->tids);
	free(p);
}

/* ---------------------------------------------------------------------------------------------
 * The queue (under the pool's lock)
 */

static void set_queued(struct actor__pool *p, unsigned queued)
{
	p->queued = queued;
	/* relaxed: a hint for the spinner, which takes the lock before it believes it. */
	atomic_store_explicit(&p->pending, queued, memory_order_relaxed);
}

static struct actor__job *queue_pop(struct actor__pool *p)
{
	struct actor__job *j = p->head;
	p->head = j->qnext;
	if (p->head != NULL)
		p->head->qprev = NULL;
	else
		p->tail = NULL;
	j->qnext = NULL;
	set_queued(p, p->queued - 1);
	return j;
}

static void queue_remove(struct actor__pool *p, struct actor__job *j)
{
	if (j->qprev != NULL)
		j->qprev->qnext = j->qnext;
	else
		p->head = j->qnext;
	if (j->qnext != NULL)
		j->qnext->qprev = j->qprev;
	else
		p->tail = j->qprev;
	j->qprev = j->qnext = NULL;
	set_queued(p, p->queued - 1);
}

bool actor__pool_unqueue(struct actor__job *j)
{
	struct actor__pool *p = j->pool;
	pthread_mutex_lock(&p->lock);
	bool queued = j->state == JOB_QUEUED;
	if (queued)
		queue_remove(p, j);
	pthread_mutex_unlock(&p->lock);
	return queued;
}

/* ---------------------------------------------------------------------------------------------
 * Threads
 */

static int threads_start(struct actor__pool *p, unsigned n);

/* Under the lock: takes the latest sleeper off the list and marks it woken; the caller wakes it
 * with wake_sleeper, after unlocking if it can. Its own futex word rather than a condition
 * variable: glibc's pthread_cond_signal can block its caller (it did, here, under this lock, in
 * 3% of a profile of bench/blocking_roundtrip). The sleeper may see the mark and leave before
 * the wake-up call: a wake on a word nobody waits on any more does nothing. */
static struct actor__pool_sleeper *take_sleeper(struct actor__pool *p)
{
	struct actor__pool_sleeper *s = p->sleepers;
	p->sleepers = s->next;
	p->idle--;
	atomic_store(&s->wake, 1); /* seq_cst: pairs with the load in actor__park_timed */
	return s;
}

static void wake_sleeper(struct actor__pool_sleeper *s)
{
	actor__unpark(&s->wake);
}

/* Under the lock: sleeps until take_sleeper takes this thread off the list. */
static void sleep_until_woken(struct actor__pool *p)
{
	struct actor__pool_sleeper s = {.next = p->sleepers};
	atomic_init(&s.wake, 0);
	p->sleepers = &s;
	p->idle++;
	pthread_mutex_unlock(&p->lock);
	while (!atomic_load(&s.wake))
		actor__park_timed(&s.wake, NULL);
	pthread_mutex_lock(&p->lock);
}

/* What to do, once the lock is released, to get one more thread on the queue. */
struct hands {
	struct actor__pool_sleeper *wake; /* wake this sleeper */
	bool start;                       /* start a thread (counted already) */
};

/* Under the lock, with jobs queued: one more thread if the spinners (if any) have more to take
 * than themselves: a sleeper, or a new thread if the pool has room and none is spinning. Threads
 * join one at a time: each one that takes a job and leaves more behind asks again, so a burst of
 * jobs reaches every thread, one wake-up each, from threads already running rather than all from
 * the submitting worker. A pool that cannot start more threads goes on with those it has: it always
 * has one (add_pool starts it). */
static struct hands more_hands(struct actor__pool *p)
{
	struct hands h = {0};
	if (p->queued <= p->spinning)
		return h;
	if (p->idle > 0) {
		h.wake = take_sleeper(p);
	} else if (p->spinning == 0 && p->threads < p->size) {
		p->threads++;
		p->refs++;
		h.start = true;
	}
	return h;
}

static void hands_apply(struct actor__pool *p, struct hands h)
{
	if (h.wake != NULL)
		wake_sleeper(h.wake);
	if (h.start)
		threads_start(p, 1);
}

/* Without the lock: posts `cmd` to worker `w` unless the system is being freed (false then).
 * `posting` brackets the look at `stop` and the post: seq_cst increment then load here, against
 * the stop's seq_cst store then load of `posting` (actor__pools_stop); one of the two sees the
 * other, so either this post happens before the system's free goes on (it waits for `posting`
 * to fall to zero) or this thread sees the stop. */
bool actor__pool_post(struct actor__pool *p, struct actor_worker *w, struct actor__cmd *cmd)
{
	atomic_fetch_add(&p->posting, 1);
	if (!atomic_load(&p->stop)) {
		actor__worker_post(w, cmd); /* `cmd` is the worker's from here */
		atomic_fetch_sub(&p->posting, 1);
		return true;
	}
	atomic_fetch_sub(&p->posting, 1);
	return false;
}

/* Without the lock, holding `j`, which has just run: posts it back to its worker, or frees it
 * if the system is being freed. */
static void job_finished(struct actor__pool *p, struct actor__job *j)
{
	if (!actor__pool_post(p, j->w, &j->cmd))
		actor__job_abandon(j);
}

/* Without the lock: polls the queue's length for a while (above). */
static void spin_for_work(struct actor__pool *p)
{
	uint64_t start = now_ns();
	do {
		for (int i = 0; i < POOL_SPIN_POLLS; i++) {
			/* relaxed: see set_queued. */
			if (atomic_load_explicit(&p->pending, memory_order_relaxed) != 0)
				return;
			ck_pr_stall();
		}
		sched_yield();
	} while (now_ns() - start < POOL_SPIN_NS);
}

/* Under the lock: the next job to run, once there is one; NULL once the pool stops. */
static struct actor__job *take_job(struct actor__pool *p)
{
	if (p->head == NULL && !atomic_load(&p->stop) && p->spinning < POOL_SPINNERS) {
		p->spinning++;
		pthread_mutex_unlock(&p->lock);
		spin_for_work(p);
		pthread_mutex_lock(&p->lock);
		p->spinning--;
	}
	while (p->head == NULL && !atomic_load(&p->stop))
		sleep_until_woken(p);
	if (atomic_load(&p->stop))
		return NULL; /* what is queued is the stop's to drop */
	struct actor__job *j = queue_pop(p);
	j->state = JOB_RUNNING;
	return j;
}

static void *pool_thread(void *arg)
{
	struct actor__pool *p = arg;
	pthread_mutex_lock(&p->lock);
	struct actor__job *j;
	while ((j = take_job(p)) != NULL) {
		struct hands h = p->queued > 0 ? more_hands(p) : (struct hands){0};
		pthread_mutex_unlock(&p->lock);
		hands_apply(p, h);
		j->result = j->fn(j->arg);
		job_finished(p, j);
		pthread_mutex_lock(&p->lock);
	}
	p->threads--;
	pthread_cond_broadcast(&p->exited);
	bool last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		pool_free(p);
	return NULL;
}

/* Starts one thread, counted already (threads, refs) by the caller. Every signal is blocked in
 * it, so that signals meant for the program reach the program's own threads and a job's system
 * calls are not interrupted. */
static int thread_start(struct actor__pool *p)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int rc = pthread_create(&t, NULL, pool_thread, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	pthread_mutex_lock(&p->lock);
	if (p->detach_all)
		pthread_detach(t); /* the pool has stopped: nobody will join it */
	else
		p->tids[p->ntids++] = t;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* Starts `n` threads, counted already; uncounts those that failed. Returns the first error. */
static int threads_start(struct actor__pool *p, unsigned n)
{
	unsigned failed = 0;
	int err = 0;
	for (unsigned i = 0; i < n; i++) {
		int rc = thread_start(p);
		if (rc < 0) {
			failed++;
			err = err != 0 ? err : rc;
		}
	}
	if (failed > 0) {
		pthread_mutex_lock(&p->lock);
		p->threads -= failed;
		p->refs -= failed; /* the registry still holds one */
		pthread_mutex_unlock(&p->lock);
	}
	return err;
}

void actor__pool_queue(struct actor__pool *p, struct actor__job *first, struct actor__job *last,
                       unsigned n)
{
	pthread_mutex_lock(&p->lock);
	for (struct actor__job *j = first; j != NULL; j = j->qnext)
		j->state = JOB_QUEUED;
	first->qprev = p->tail;
	if (p->tail != NULL)
		p->tail->qnext = first;
	else
		p->head = first;
	p->tail = last;
	set_queued(p, p->queued + n);
	struct hands h = more_hands(p);
	pthread_mutex_unlock(&p->lock);
	hands_apply(p, h);
}

/* ---------------------------------------------------------------------------------------------
 * The registry
 */

struct actor__pool *actor__pool_find(struct actor__pools *ps, const char *name)
{
	/* acquire: pairs with the release in add_pool; a pool is complete once it is linked. */
	for (struct actor__pool *p = atomic_load_explicit(&ps->head, memory_order_acquire);
	     p != NULL; p = p->next) {
		if (strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

/* A new pool with its first thread, published. */
static int add_pool(struct actor__pools *ps, const char *name, unsigned threads,
                    struct actor__pool **out)
{
	pthread_mutex_lock(&ps->lock);
	struct actor__pool *p = NULL;
	int rc = 0;
	if (actor__pool_find(ps, name) != NULL)
		rc = -EEXIST;
	else if ((p = pool_new(name, threads)) == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		p->threads = 1;
		p->refs++;
		rc = threads_start(p, 1);
		if (rc < 0)
			pool_free(p); /* no thread: it was never seen */
	}
	if (rc == 0) {
		p->next = atomic_load_explicit(&ps->head, memory_order_relaxed); /* ours: locked */
		/* release: pairs with the acquire in actor__pool_find. */
		atomic_store_explicit(&ps->head, p, memory_order_release);
		if (out != NULL)
			*out = p;
	}
	pthread_mutex_unlock(&ps->lock);
	return rc;
}

int actor__pools_create(unsigned default_threads, struct actor__pools **out)
{
	struct actor__pools *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return -ENOMEM;
	pthread_mutex_init(&ps->lock, NULL);
	atomic_init(&ps->head, NULL);
	int rc = add_pool(ps, "default", default_threads, &ps->dflt);
	if (rc < 0) {
		pthread_mutex_destroy(&ps->lock);
		free(ps);
		return rc;
	}
	*out = ps;
	return 0;
}

int actor_pool_create(actor_system_t *sys, const char *name, unsigned threads)
{
	if (sys == NULL || name == NULL || threads == 0 || threads > ACTOR_POOL_THREADS_MAX)
		return -EINVAL;
	size_t len = strnlen(name, ACTOR_POOL_NAME_MAX + 1);
	if (len == 0 || len > ACTOR_POOL_NAME_MAX)
		return -EINVAL;
	struct actor__pools *ps = sys->svc_shared[SVC_POOL];
	if (ps == NULL)
		return -EINVAL;
	return add_pool(ps, name, threads, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Stopping
 */

/* Under the lock: frees what waits in the queue (the workers' fini took their jobs out first,
 * so normally nothing). */
static void drop_queued(struct actor__pool *p)
{
	while (p->head != NULL) {
		struct actor__job *j = queue_pop(p);
		pthread_mutex_unlock(&p->lock);
		actor__job_abandon(j);
		pthread_mutex_lock(&p->lock);
	}
}

/* Under the lock: waits until the pool's threads have exited or `deadline` has passed. */
static void wait_threads(struct actor__pool *p, const struct timespec *deadline)
{
	while (p->threads > 0) {
		if (pthread_cond_timedwait(&p->exited, &p->lock, deadline) == ETIMEDOUT)
			break;
	}
}

static void pool_stop(struct actor__pool *p, const struct timespec *deadline)
{
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->stop, true); /* seq_cst: see job_finished */
	while (atomic_load(&p->posting) != 0)
		sched_yield(); /* a post is a few instructions away (or one write to an eventfd) */
	while (p->idle > 0)
		wake_sleeper(take_sleeper(p));
	drop_queued(p);
	wait_threads(p, deadline);
	/* All gone: join them, so that none is still on its way out when the system's free
	 * returns. Some still running a job: detach them all, that one and any started later. */
	bool all_gone = p->threads == 0;
	p->detach_all = !all_gone;
	unsigned n = p->ntids;
	p->ntids = 0;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < n; i++) {
		if (all_gone)
			pthread_join(p->tids[i], NULL);
		else
			pthread_detach(p->tids[i]);
	}
	pthread_mutex_lock(&p->lock);
	bool last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		pool_free(p);
}

void actor__pools_stop(struct actor__pools *ps)
{
	/* One deadline for all the pools. */
	uint64_t end = now_ns() + (uint64_t)ACTOR_POOL_STOP_MS * 1000000u;
	struct timespec deadline = {.tv_sec = (time_t)(end / 1000000000u),
	                            .tv_nsec = (long)(end % 1000000000u)};
	struct actor__pool *p = atomic_load_explicit(&ps->head, memory_order_acquire);
	while (p != NULL) {
		struct actor__pool *next = p->next;
		pool_stop(p, &deadline);
		p = next;
	}
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}
