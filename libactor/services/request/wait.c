/* wait.c: actor_request_wait, a request from a thread outside the pool that blocks for its
 * answer. A hidden proxy actor makes the request (its start hook calls actor_request) and
 * hands the outcome to the waiting thread; all the request machinery is request.c's.
 *
 * The waiter record is shared by the waiting thread and the proxy, under its mutex; each holds
 * one reference and the last to let go frees it. The outcome is decided once (`done`): by the
 * proxy (an answer, an error notice, the request failing at the call, or the proxy stopping at
 * shutdown: its destroy callback) or by the waiting thread running out of time. The one that
 * comes second finds `done` and only releases what it holds (a reply nobody waits for any
 * more is freed), so nothing is left behind whichever comes first.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "services/services.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when `done` is set by the proxy */
	unsigned refs;       /* the waiting thread's and the proxy's */
	bool done;           /* the outcome below is decided */
	int rc;
	actor_msg_t *reply;
	/* The request, written before the proxy is spawned, read by its start hook. */
	actor_ref_t to;
	uint32_t type;
	uint64_t timeout_ns;
	size_t len;
	unsigned char data[];
};

static void waiter_unref(struct waiter *wt)
{
	pthread_mutex_lock(&wt->lock);
	bool last = --wt->refs == 0;
	pthread_mutex_unlock(&wt->lock);
	if (!last)
		return;
	if (wt->reply != NULL)
		actor_msg_free(wt->reply);
	pthread_cond_destroy(&wt->cond);
	pthread_mutex_destroy(&wt->lock);
	actor__free(wt, sizeof(*wt) + wt->len);
}

/* The proxy decides the outcome, unless the waiting thread gave up already. Takes `reply`. */
static void waiter_finish(struct waiter *wt, int rc, actor_msg_t *reply)
{
	pthread_mutex_lock(&wt->lock);
	if (!wt->done) {
		wt->done = true;
		wt->rc = rc;
		wt->reply = reply;
		reply = NULL;
		pthread_cond_signal(&wt->cond);
	}
	pthread_mutex_unlock(&wt->lock);
	if (reply != NULL)
		actor_msg_free(reply);
}

static void proxy_start(actor_ctx_t *ctx, void *state)
{
	struct waiter *wt = state;
	actor_request_opts_t opts = {.timeout_ns = wt->timeout_ns};
	actor_request_t req;
	int rc = actor_request(ctx, wt->to, wt->type, wt->data, wt->len, &opts, &req);
	if (rc < 0) {
		waiter_finish(wt, rc, NULL);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

/* Only the request's ACTOR_MSG_REPLY matters; anything else (a replier's own message to its
 * requester) is ignored. */
static void proxy_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct waiter *wt = state;
	if (msg->type != ACTOR_MSG_REPLY || msg->size < sizeof(actor_reply_t))
		return;
	const actor_reply_t *r = actor_msg_data(msg);
	if (r->error == 0) {
		actor_msg_keep(ctx);
		waiter_finish(wt, 0, msg);
	} else {
		waiter_finish(wt, r->error, NULL);
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* The proxy stops: after its outcome, or at shutdown before it (then the waiting thread gets
 * -ESHUTDOWN). */
static void proxy_destroy(void *state)
{
	struct waiter *wt = state;
	waiter_finish(wt, -ESHUTDOWN, NULL);
	waiter_unref(wt);
}

/* Waits for the proxy's outcome until `deadline` (CLOCK_MONOTONIC; NULL: none); decides
 * -ETIMEDOUT if it does not come. */
static int waiter_wait(struct waiter *wt, const struct timespec *deadline, actor_msg_t **reply)
{
	pthread_mutex_lock(&wt->lock);
	while (!wt->done) {
		int rc = deadline != NULL ? pthread_cond_timedwait(&wt->cond, &wt->lock, deadline)
		                          : pthread_cond_wait(&wt->cond, &wt->lock);
		if (rc == ETIMEDOUT && !wt->done) {
			wt->done = true;
			wt->rc = -ETIMEDOUT;
		}
	}
	int rc = wt->rc;
	*reply = wt->reply;
	wt->reply = NULL;
	pthread_mutex_unlock(&wt->lock);
	return rc;
}

static int waiter_init(struct waiter *wt)
{
	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr) != 0)
		return -ENOMEM;
	int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&wt->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		return -rc;
	if (pthread_mutex_init(&wt->lock, NULL) != 0) {
		pthread_cond_destroy(&wt->cond);
		return -ENOMEM;
	}
	return 0;
}

int actor_request_wait(actor_system_t *sys, actor_ref_t to, uint32_t type, const void *data,
                       size_t len, uint64_t timeout_ns, actor_msg_t **reply)
{
	if (sys == NULL || reply == NULL || (data == NULL && len > 0) || type >= ACTOR_MSG_SYSTEM ||
	    timeout_ns > UINT64_MAX / 4)
		return -EINVAL;
	*reply = NULL;
	/* A worker of any system: blocking it could stall the very actor that would answer. */
	if (actor__tls_worker != NULL)
		return -EDEADLK;
	if (len > ACTOR_MSG_MAX)
		return -EMSGSIZE;
	if (actor_ref_is_none(to))
		return -ESRCH;

	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	uint64_t end = (uint64_t)deadline.tv_nsec + timeout_ns;
	deadline.tv_sec += (time_t)(end / 1000000000u);
	deadline.tv_nsec = (long)(end % 1000000000u);

	struct waiter *wt = actor__alloc(sizeof(*wt) + len);
	if (wt == NULL)
		return -ENOMEM;
	*wt = (struct waiter){
	    .refs = 2, .to = to, .type = type, .timeout_ns = timeout_ns, .len = len};
	if (len > 0)
		memcpy(wt->data, data, len);
	int rc = waiter_init(wt);
	if (rc < 0) {
		actor__free(wt, sizeof(*wt) + len);
		return rc;
	}
	actor_spawn_opts_t opts = {
	    .name = "request_wait", .start = proxy_start, .destroy = proxy_destroy};
	actor_ref_t proxy;
	rc = actor_spawn(sys, &opts, proxy_behavior, wt, &proxy);
	if (rc < 0) {
		wt->refs = 1; /* no proxy: this thread's alone */
		waiter_unref(wt);
		return rc;
	}
	rc = waiter_wait(wt, timeout_ns != 0 ? &deadline : NULL, reply);
	waiter_unref(wt);
	return rc;
}
