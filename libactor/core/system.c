/* system.c: creating, running, shutting down and freeing an actor system. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "reactor/reactor.h"

#define RUN_RECHECK_NS 100000000 /* run() re-checks its condition at least this often */

/* The CPUs this thread may run on; 0 if it cannot tell. */
static unsigned cpus_available(void)
{
	cpu_set_t mask;
	if (sched_getaffinity(0, sizeof(mask), &mask) == 0 && CPU_COUNT(&mask) > 0)
		return (unsigned)CPU_COUNT(&mask);
	return 0;
}

static int worker_init(actor_system_t *sys, struct actor_worker *w, unsigned i)
{
	actor__mpsc_init(&w->inbox);
	actor__mpsc_init(&w->cmdq);
	atomic_init(&w->resident, 0);
	atomic_init(&w->wake, 0);
	atomic_init(&w->qs, UINT64_MAX);
	w->sys = sys;
	w->index = i;
	w->rops = sys->rops; /* the worker creates its reactor itself (sched.c) */
	/* Blocking, so an io_uring read on it waits; see actor__worker_wake for the write side. */
	w->evfd = eventfd(0, EFD_CLOEXEC);
	if (w->evfd < 0)
		return -errno;
	for (unsigned s = 0; actor__services[s] != NULL; s++) {
		if (actor__services[s]->init != NULL) {
			int rc = actor__services[s]->init(w, &w->svc[s]);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Each service's message blocks (service.h), so that the core finds a message's service by its
 * type. -EINVAL if two services claim one block: the table in services.c is wrong. */
static int map_blocks(actor_system_t *sys)
{
	sys->svcs = actor__services;
	sys->free_retired = actor__free_retired;
	for (unsigned s = 0; actor__services[s] != NULL; s++) {
		assert(s < ACTOR_SERVICES_MAX && actor__services[s]->id == s);
		if (actor__services[s]->poll != NULL)
			sys->svc_polled[sys->npolled++] = (uint8_t)s;
		if (actor__services[s]->next_deadline != NULL || actor__services[s]->tick != NULL)
			sys->svc_timed[sys->ntimed++] = (uint8_t)s;
		for (unsigned b = 0; b < 4 && actor__services[s]->blocks[b] != 0; b++) {
			uint8_t block = actor__services[s]->blocks[b];
			if (sys->svc_of_block[block] != 0)
				return -EINVAL;
			sys->svc_of_block[block] = (uint8_t)(s + 1);
		}
	}
	return 0;
}

/* Runs what was posted to workers that had already exited: each command sees its service's
 * state gone (NULL) and only frees what it carries. */
static void drain_cmds(struct actor_worker *w)
{
	struct actor__mpsc_node *n;
	while ((n = actor__mpsc_pop(&w->cmdq)) != NULL) {
		struct actor__cmd *cmd = (struct actor__cmd *)n;
		cmd->fn(w, cmd);
	}
}

/* Each service's system-wide state, created before the workers' (service.h). */
static int services_sys_init(actor_system_t *sys, const actor_config_t *cfg)
{
	for (unsigned s = 0; actor__services[s] != NULL; s++) {
		if (actor__services[s]->sys_init != NULL) {
			int rc = actor__services[s]->sys_init(sys, cfg, &sys->svc_shared[s]);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* After every worker's services: their system-wide state, before the commands still posted to
 * the workers run (service.h). */
static void services_sys_fini(actor_system_t *sys)
{
	for (unsigned s = 0; sys->svcs != NULL && sys->svcs[s] != NULL; s++) {
		if (sys->svc_shared[s] != NULL && sys->svcs[s]->sys_fini != NULL)
			sys->svcs[s]->sys_fini(sys, sys->svc_shared[s]);
		sys->svc_shared[s] = NULL;
	}
}

static void free_system(actor_system_t *sys)
{
	actor__watchdog_stop(sys); /* it reads the workers' counts */
	if (sys->workers != NULL) {
		for (unsigned i = 0; i < sys->nworkers; i++)
			actor__services_fini(&sys->workers[i]); /* a no-op if the worker ran it */
	}
	services_sys_fini(sys);
	if (sys->workers != NULL) {
		for (unsigned i = 0; i < sys->nworkers; i++) {
			struct actor_worker *w = &sys->workers[i];
			drain_cmds(w);
			if (w->reactor != NULL)
				w->reactor->ops->fini(w->reactor);
			if (w->evfd > 0)
				close(w->evfd);
			free(w->free_slots);
		}
		free(sys->workers);
	}
	actor__names_fini(sys); /* after the last dead letter, which may release a name */
	actor__slots_fini(sys);
	if (sys->crash_report)
		actor__crash_uninstall();
	free(sys);
}

int actor_system_create(const actor_config_t *cfg, actor_system_t **out)
{
	static const actor_config_t defaults;
	if (out == NULL)
		return -EINVAL;
	if (cfg == NULL)
		cfg = &defaults;
	if (cfg->workers > ACTOR_WORKERS_MAX || cfg->spin_us < -1 || cfg->spin_us > 1000000 ||
	    cfg->shutdown_drain_ms < -1 || cfg->shutdown_drain_ms > ACTOR_TCP_LINGER_MS ||
	    cfg->no_move < 0 || cfg->no_move > 1 || cfg->pin < 0 || cfg->pin > 1 ||
	    (cfg->pin && cfg->no_pin) || cfg->no_crash_report < 0 || cfg->no_crash_report > 1 ||
	    cfg->watchdog_ms < -1 || cfg->watchdog_ms > ACTOR_WATCHDOG_MS_MAX ||
	    cfg->count_depth < 0 || cfg->count_depth > 1)
		return -EINVAL;

	/* Aligned, so that the cache-line padding in the struct matches the real lines. */
	size_t size =
	    (sizeof(actor_system_t) + CK_MD_CACHELINE - 1) / CK_MD_CACHELINE * CK_MD_CACHELINE;
	actor_system_t *sys = aligned_alloc(CK_MD_CACHELINE, size);
	if (sys == NULL)
		return -ENOMEM;
	memset(sys, 0, size);
	sys->ncpus = cpus_available();
	sys->nworkers = cfg->workers ? cfg->workers : sys->ncpus ? sys->ncpus : 1;
	if (sys->nworkers > ACTOR_WORKERS_MAX)
		sys->nworkers = ACTOR_WORKERS_MAX;
	sys->batch = cfg->batch ? cfg->batch : ACTOR_BATCH_DEFAULT;
	sys->spin_us = cfg->spin_us ? cfg->spin_us : ACTOR_SPIN_US_DEFAULT;
	sys->shutdown_drain_ms =
	    cfg->shutdown_drain_ms ? cfg->shutdown_drain_ms : ACTOR_SHUTDOWN_DRAIN_MS;
	sys->pin = cfg->pin == 1;
	sys->no_move = cfg->no_move == 1;
	sys->count_depth = cfg->count_depth == 1;
	sys->dead_letter = cfg->dead_letter;
	sys->dead_letter_arg = cfg->dead_letter_arg;
	atomic_init(&sys->epoch, 1);

	enum actor__uring_level level;
	int rc = actor__reactor_choose(cfg->reactor, &sys->rops, &sys->reactor_fallback, &level);
	if (rc < 0) {
		free(sys);
		return rc;
	}
	sys->uring_level = (int)level;
	if (map_blocks(sys) < 0) {
		free(sys);
		return -EINVAL;
	}
	rc = actor__slots_init(sys);
	if (rc < 0) {
		free(sys);
		return rc;
	}
	rc = actor__names_init(sys);
	if (rc < 0) {
		free_system(sys);
		return rc;
	}
	if (!cfg->no_crash_report) {
		rc = actor__crash_install();
		if (rc < 0) {
			free_system(sys);
			return rc;
		}
		sys->crash_report = true; /* before the workers start: they read it */
	}
	rc = services_sys_init(sys, cfg);
	if (rc < 0) {
		free_system(sys);
		return rc;
	}
	sys->workers = aligned_alloc(CK_MD_CACHELINE, sizeof(*sys->workers) * sys->nworkers);
	if (sys->workers == NULL) {
		free_system(sys);
		return -ENOMEM;
	}
	memset(sys->workers, 0, sizeof(*sys->workers) * sys->nworkers);
	for (unsigned i = 0; i < sys->nworkers; i++) {
		rc = worker_init(sys, &sys->workers[i], i);
		if (rc < 0) {
			free_system(sys);
			return rc;
		}
	}

	rc = actor__workers_start(sys);
	if (rc < 0) {
		atomic_store(&sys->shutdown, 1);
		actor__wake_all(sys);
		actor__workers_join(sys);
		free_system(sys);
		return rc;
	}
	rc = actor__watchdog_start(sys, cfg);
	if (rc < 0) {
		atomic_store(&sys->shutdown, 1);
		actor__wake_all(sys);
		actor__workers_join(sys);
		free_system(sys);
		return rc;
	}
	*out = sys;
	return 0;
}

int actor_system_shutdown(actor_system_t *sys)
{
	if (sys == NULL)
		return -EINVAL;
	/* Async-signal-safe: atomic stores and futex wakes only. */
	atomic_store(&sys->shutdown, 1);
	atomic_store(&sys->run_wake, 1);
	actor__unpark(&sys->run_wake);
	actor__wake_all(sys);
	return 0;
}

static void stop_and_join(actor_system_t *sys)
{
	if (atomic_exchange(&sys->finished, 1))
		return;
	atomic_store(&sys->shutdown, 1);
	actor__wake_all(sys);
	actor__workers_join(sys);
}

int actor_system_run(actor_system_t *sys)
{
	if (sys == NULL || actor__self_worker(sys) != NULL)
		return -EINVAL;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&sys->running, &expected, 1))
		return -EINVAL;
	while (!atomic_load(&sys->shutdown) && !actor__none_resident(sys)) {
		/* seq_cst store then re-check: pairs with the store-then-wake in
		 * actor__note_stopped, so a stop between check and wait is not missed. */
		atomic_store(&sys->run_wake, 0);
		if (atomic_load(&sys->shutdown) || actor__none_resident(sys))
			break;
		struct timespec ts = {0, RUN_RECHECK_NS};
		actor__park_timed(&sys->run_wake, &ts);
	}
	stop_and_join(sys);
	return 0;
}

/* After the join: frees the actors whose grace period had not ended. */
static void reclaim_remaining(actor_system_t *sys)
{
	for (unsigned i = 0; i < sys->nworkers; i++) {
		struct actor_worker *w = &sys->workers[i];
		while (w->retired_head != NULL) {
			struct actor *a = (struct actor *)((char *)w->retired_head -
			                                   offsetof(struct actor, link));
			w->retired_head = a->link.next;
			actor__free_retired(w, a);
		}
		w->retired_tail = NULL;
	}
}

void actor_system_free(actor_system_t *sys)
{
	if (sys == NULL)
		return;
	stop_and_join(sys);
	reclaim_remaining(sys);
	free_system(sys);
}

unsigned actor_system_workers(const actor_system_t *sys)
{
	return sys != NULL ? sys->nworkers : 0;
}

const char *actor_system_reactor(const actor_system_t *sys)
{
	if (sys == NULL)
		return NULL;
	/* Under "auto" a worker refused io_uring (say, by the locked-memory limit) uses epoll. */
	for (unsigned i = 1; i < sys->nworkers; i++) {
		if (sys->workers[i].rops != sys->workers[0].rops)
			return "mixed";
	}
	return sys->workers[0].rops->name;
}

const char *actor_version(void)
{
	return PACKAGE_VERSION;
}
