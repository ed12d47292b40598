/* pool.h: the blocking-pool service's two halves: the pools of threads and their queues, shared
 * by every worker (threads.c), and each worker's jobs and the actors waiting for them (pool.c).
 *
 * A job's life: made by actor_job_submit on a worker, it waits in that worker's batch for its
 * pool (pool.c) until the end of the worker's loop turn, or goes to the pool's queue at once;
 * QUEUED there, RUNNING on one of the pool's threads, then posted back to its worker (the job
 * embeds the command), where ACTOR_MSG_JOB_DONE is sent and the job freed. A cancel takes a job
 * out of its batch or queue and sends its JOB_DONE at once; the owner's stop takes out its
 * waiting jobs and turns its running ones into orphans, whose results the worker drops when
 * they come back. Once the system is being freed (the pool stopped), a thread that finishes a
 * job frees it instead of posting it.
 *
 * Who touches what: `state` and the queue links of a queued job are the pool's, under its
 * mutex; the rest of a job is written by its worker before it is queued and read by the thread
 * after (the mutex orders them), except `result`, written by the thread before it posts the job
 * (the command queue orders it), and the owner links and `batched`, the worker's alone.
 */
#ifndef ACTOR_POOL_H
#define ACTOR_POOL_H

#include <pthread.h>

#include "services/services.h"

enum actor__job_state {
	JOB_QUEUED,
	JOB_RUNNING, /* or run: taken by a thread */
};

struct actor__pool;
struct actor__job_owner;

struct actor__job {
	struct actor__cmd cmd;            /* the completion, posted to `w` */
	struct actor__job *qprev, *qnext; /* the worker's batch, then the pool's queue */
	struct actor__job *oprev, *onext; /* the owner's jobs in flight (worker) */
	struct actor__job_owner *owner;   /* NULL: an orphan, its result dropped (worker) */
	struct actor__pool *pool;
	struct actor_worker *w;
	actor_msg_t *msg; /* its JOB_DONE, made at submit so that sending it cannot fail */
	actor_job_fn *fn;
	void *arg;
	void (*drop)(void *arg);
	uint64_t handle;
	int64_t result;              /* written by the thread that ran it */
	enum actor__job_state state; /* pool lock */
	bool batched;                /* in the worker's batch, not yet in the pool's queue */
	bool embedded;               /* actor__pool_call's: the caller's memory, never freed here */
};

/* A thread of a pool asleep, waiting for work: on its stack, in the pool's list of sleepers. */
struct actor__pool_sleeper {
	struct actor__pool_sleeper *next;
	_Atomic uint32_t wake; /* the futex word: 1 once it has been taken off the list */
};

/* A pool: a queue under a mutex and up to `size` threads. Shared by every worker. */
struct actor__pool {
	pthread_mutex_t lock;
	pthread_cond_t exited; /* a thread exited (actor_system_free waits for them) */
	struct actor__pool_sleeper *sleepers; /* the last to fall asleep first */
	struct actor__job *head, *tail;
	unsigned queued; /* jobs in the queue */
	/* `queued`, for the spinner: written under the lock, read without. */
	_Atomic unsigned pending;
	unsigned size;     /* threads at most; immutable */
	unsigned threads;  /* threads alive or being started */
	unsigned idle;     /* threads asleep: in `sleepers` */
	unsigned spinning; /* threads awake, looking for work without the lock (threads.c) */
	unsigned refs;     /* the registry's, and one per thread alive */
	/* The system is being freed: run nothing more, post nothing more. Written under the lock;
	 * read without it by threads about to post (threads.c, job_finished). */
	_Atomic bool stop;
	_Atomic unsigned posting; /* threads between their look at `stop` and their post */
	/* Its threads, to be joined when the pool stops (those still running a job then are
	 * detached instead, and detach_all set, for any started after): a thread that only exits
	 * around actor_system_free's return would make the program's next fork a fork of a
	 * multi-threaded process. Under the lock; `size` entries, as no thread is ever replaced. */
	pthread_t *tids;
	unsigned ntids;
	bool detach_all;
	struct actor__pool *next; /* the registry's list; immutable once published */
	char name[ACTOR_POOL_NAME_MAX + 1];
};

/* Every pool of a system: the service's system-wide state (sys->svc_shared[SVC_POOL]). */
struct actor__pools {
	pthread_mutex_t lock;             /* creations only */
	struct actor__pool *_Atomic head; /* a list that only grows: read without the lock */
	struct actor__pool *dflt;         /* "default"; immutable */
};

/* pool.c: for other services. Runs j->fn(j->arg) on a thread of `p`, then j->cmd.fn on `w`,
 * the calling worker (its own thread only), which then owns `j` again. `j` is the caller's,
 * zeroed but for fn, arg, cmd.fn and drop: no message, no handle, no owner; it travels in the
 * worker's batches as any job. If the system is freed first, the pool calls `drop` (see
 * actor__job_abandon) instead of posting, from a pool thread or actor_system_free. */
void actor__pool_call(struct actor_worker *w, struct actor__pool *p, struct actor__job *j);

/* threads.c */
/* From a pool thread, for a job that ran more than one piece of work (file.c's write runner):
 * posts `cmd` to `w` as a finished job is posted, or, if the system is being freed, posts
 * nothing and returns false (the caller then settles what `cmd` stood for itself). */
bool actor__pool_post(struct actor__pool *p, struct actor_worker *w, struct actor__cmd *cmd);
int actor__pools_create(unsigned default_threads, struct actor__pools **out);
/* The system is being freed: stops every pool (see actor.h, "Blocking work"). */
void actor__pools_stop(struct actor__pools *ps);
struct actor__pool *actor__pool_find(struct actor__pools *ps, const char *name);
/* Queues the `n` jobs first..last, linked through qnext and qprev, in that order. A worker
 * calls it while its system runs, so before the pool can have stopped. */
void actor__pool_queue(struct actor__pool *p, struct actor__job *first, struct actor__job *last,
                       unsigned n);
/* Takes queued `j` out of its pool's queue: true if it was still there (it will never run). */
bool actor__pool_unqueue(struct actor__job *j);
/* Frees a job and the JOB_DONE it still holds. */
void actor__job_free(struct actor__job *j);
/* What becomes of a job that will send nothing: its `drop`, then it is freed (an embedded one
 * is its caller's: `drop` alone, which may free it). */
void actor__job_abandon(struct actor__job *j);

#endif /* ACTOR_POOL_H */
