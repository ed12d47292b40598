/* lookup.c: the lookup service: name lookups started by actors (actor_lookup) and by other
 * services (a connection by name), resolved by the worker's resolver (cares.c) and answered
 * from the worker loop, as ACTOR_MSG_LOOKUP to the actor or as a call to the service.
 *
 * A lookup's life: started (in the table, its handle valid), answered by the resolver (built
 * into its message, put on the done list), delivered by the next poll or tick (out of the
 * table, sent or called, freed). A cancel takes it out of the table and marks it; the resolver
 * still answers it once, and the done list frees it without a word. So every lookup is freed
 * exactly once, from the done list, whether answered, cancelled or ended at the worker's exit.
 * Numeric addresses skip the resolver: they go on the done list at once.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "services/lookup/lookup.h"

#define HOST_MAX 253 /* the longest DNS name (RFC 1035), without the final dot */
/* Lookups a worker hands the resolver at once; the rest wait their turn. Each is two UDP
 * queries (A and AAAA) whose answers may all arrive before the worker reads one: 128 small
 * datagrams fit a socket's default 208 KiB receive buffer. tests/test_lookup's thousand
 * lookups at once, without the cap, lost about half their answers there and waited out
 * c-ares's 5 s retry (15 s in all); with it, they take milliseconds. */
#define IN_FLIGHT_MAX 64

struct lookup {
	uint32_t idx;         /* in the table; 0 once answered or cancelled */
	bool cancelled;       /* nobody wants the answer */
	actor_ref_t owner;    /* actor_lookup's caller, or ACTOR_REF_NONE for a service's */
	actor__lookup_fn *fn; /* a service's lookup: its answer */
	uint64_t handle, tag;
	uint16_t port;
	int error;           /* the answer's, if it could not be built into `answer` */
	actor_msg_t *answer; /* ACTOR_MSG_LOOKUP, built when the resolver answered */
	char *host;          /* while waiting its turn */
	struct lookup *next; /* on the waiting list or the done list */
	struct lookups *ls;
};

struct lookup_list {
	struct lookup *head, *tail;
};

/* The service's state on one worker. */
struct lookups {
	struct actor_worker *w;
	struct actor__dns *dns; /* NULL: no resolver (see dns_err) */
	int dns_err;            /* why there is none: -ENOSYS without c-ares, or its creation's */
	struct actor__table table;
	struct lookup_list waiting; /* not yet handed to the resolver (IN_FLIGHT_MAX) */
	struct lookup_list done;    /* answered or cancelled, to deliver and free */
	unsigned in_flight;         /* handed to the resolver and not answered */
};

static struct lookups *lookups_of(struct actor_worker *w)
{
	return w->svc[SVC_LOOKUP];
}

bool actor__lookup_numeric(const char *host, uint16_t port, struct sockaddr_storage *out)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *ai;
	/* A numeric host is parsed, never looked up: nothing here waits. */
	if (host == NULL || getaddrinfo(host, NULL, &hints, &ai) != 0)
		return false;
	bool ok = ai->ai_addrlen <= sizeof(*out);
	if (ok) {
		memset(out, 0, sizeof(*out));
		memcpy(out, ai->ai_addr, ai->ai_addrlen);
		if (out->ss_family == AF_INET6)
			((struct sockaddr_in6 *)out)->sin6_port = htons(port);
		else
			((struct sockaddr_in *)out)->sin_port = htons(port);
	}
	freeaddrinfo(ai);
	return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Answers
 */

/* The ACTOR_MSG_LOOKUP message for `l`: `n` addresses (port 0) given the lookup's port. */
static actor_msg_t *answer_build(struct lookup *l, int err, const struct sockaddr *const *addrs,
                                 unsigned n)
{
	size_t len = sizeof(actor_lookup_done_t) + n * sizeof(struct sockaddr_storage);
	actor_msg_t *m;
	if (actor_msg_alloc(sizeof(*m) + len, ACTOR_MSG_LOOKUP, &m) < 0)
		return NULL;
	actor_lookup_done_t *d = actor_msg_data(m);
	memset(d, 0, len);
	d->lookup.id = l->handle;
	d->tag = l->tag;
	d->error = err;
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_storage *ss = &d->addrs[d->count];
		if (addrs[i]->sa_family == AF_INET6) {
			memcpy(ss, addrs[i], sizeof(struct sockaddr_in6));
			((struct sockaddr_in6 *)ss)->sin6_port = htons(l->port);
		} else if (addrs[i]->sa_family == AF_INET) {
			memcpy(ss, addrs[i], sizeof(struct sockaddr_in));
			((struct sockaddr_in *)ss)->sin_port = htons(l->port);
		} else {
			continue; /* no other family is asked for */
		}
		d->count++;
	}
	return m;
}

static void list_push(struct lookup_list *q, struct lookup *l)
{
	l->next = NULL;
	if (q->tail != NULL)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
}

static struct lookup *list_pop(struct lookup_list *q)
{
	struct lookup *l = q->head;
	if (l != NULL) {
		q->head = l->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return l;
}

/* The resolver's answer (actor__dns_done_fn): kept for the loop to deliver. */
static void answered(void *arg, int err, const struct sockaddr *const *addrs, unsigned n)
{
	struct lookup *l = arg;
	if (err == 0 && n == 0)
		err = -ENOENT;
	if (err != 0)
		n = 0;
	if (n > ACTOR_LOOKUP_MAX)
		n = ACTOR_LOOKUP_MAX;
	if (!l->cancelled) {
		l->answer = answer_build(l, err, addrs, n);
		l->error = l->answer != NULL ? err : -ENOMEM;
	}
	list_push(&l->ls->done, l);
}

/* The resolver's answer to a lookup it was handed. */
static void resolved(void *arg, int err, const struct sockaddr *const *addrs, unsigned n)
{
	struct lookup *l = arg;
	l->ls->in_flight--;
	answered(l, err, addrs, n);
}

/* Takes `l` out of the table: its handle is stale from now on. */
static void forget(struct lookups *ls, struct lookup *l)
{
	if (l->idx != 0) {
		actor__table_del(&ls->table, l->idx);
		l->idx = 0;
	}
}

static void lookup_free(struct lookup *l)
{
	if (l->answer != NULL)
		actor_msg_free(l->answer);
	free(l->host);
	free(l);
}

static void deliver(struct lookups *ls, struct lookup *l)
{
	actor_system_t *sys = ls->w->sys;
	if (l->answer == NULL) { /* it could not be built: say so, without the addresses */
		actor_lookup_done_t d = {.lookup = {l->handle}, .tag = l->tag, .error = l->error};
		if (l->fn != NULL)
			l->fn(ls->w, &d);
		else
			actor__send_internal(sys, l->owner, ACTOR_REF_NONE, ACTOR_MSG_LOOKUP, &d,
			                     sizeof(d));
		return;
	}
	if (l->fn != NULL)
		l->fn(ls->w, actor_msg_data(l->answer));
	else if (actor__send_internal_msg(sys, l->owner, l->answer) == 0)
		l->answer = NULL; /* the owner's now; if it has stopped, the answer is dropped */
}

/* Delivers and frees what the done list holds; how many were delivered. A delivery may start
 * or cancel lookups (a connection by name): the list is taken one at a time. */
static unsigned deliver_done(struct lookups *ls)
{
	unsigned n = 0;
	struct lookup *l;
	while ((l = list_pop(&ls->done)) != NULL) {
		if (!l->cancelled) {
			forget(ls, l);
			deliver(ls, l);
			n++;
		}
		lookup_free(l);
	}
	return n;
}

/* ---------------------------------------------------------------------------------------------
 * Starting and cancelling
 */

static int start(struct actor_worker *w, const char *host, uint16_t port, uint64_t tag,
                 actor_ref_t owner, actor__lookup_fn *fn, uint64_t *handle)
{
	size_t len = host != NULL ? strnlen(host, HOST_MAX + 2) : 0;
	if (len == 0 || len > HOST_MAX + 1 || (len == HOST_MAX + 1 && host[HOST_MAX] != '.'))
		return -EINVAL; /* no name, or longer than a DNS name can be */
	struct lookups *ls = lookups_of(w);
	if (ls == NULL)
		return -ESHUTDOWN;
	if (ls->dns == NULL)
		return ls->dns_err;
	struct lookup *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	int64_t idx = actor__table_put(&ls->table, l);
	if (idx < 0) {
		free(l);
		return (int)idx;
	}
	l->idx = (uint32_t)idx;
	l->handle = actor__table_handle(&ls->table, w->index, l->idx);
	l->owner = owner;
	l->fn = fn;
	l->tag = tag;
	l->port = port;
	l->ls = ls;
	struct sockaddr_storage ss;
	int rc = 0;
	if (actor__lookup_numeric(host, 0, &ss)) {
		const struct sockaddr *sa = (const struct sockaddr *)&ss;
		answered(l, 0, &sa, 1); /* no resolver: delivered from the loop all the same */
	} else if (ls->in_flight < IN_FLIGHT_MAX && ls->waiting.head == NULL) {
		rc = actor__dns_start(ls->dns, host, resolved, l);
		ls->in_flight += rc == 0;
	} else if ((l->host = strdup(host)) != NULL) {
		list_push(&ls->waiting, l); /* its turn comes as others are answered */
	} else {
		rc = -ENOMEM;
	}
	if (rc < 0) {
		forget(ls, l);
		free(l);
		return rc;
	}
	*handle = l->handle;
	return 0;
}

/* Hands waiting lookups to the resolver while there is room. One it cannot take is answered
 * with the error, as if the resolver had. */
static void start_waiting(struct lookups *ls)
{
	while (ls->in_flight < IN_FLIGHT_MAX && ls->waiting.head != NULL) {
		struct lookup *l = list_pop(&ls->waiting);
		int rc =
		    l->cancelled ? -ECANCELED : actor__dns_start(ls->dns, l->host, resolved, l);
		if (rc == 0)
			ls->in_flight++;
		else
			answered(l, rc, NULL, 0);
	}
}

int actor__lookup_start(struct actor_worker *w, const char *host, uint16_t port, uint64_t tag,
                        actor__lookup_fn *fn, uint64_t *handle)
{
	return start(w, host, port, tag, ACTOR_REF_NONE, fn, handle);
}

static void cancel(struct lookups *ls, struct lookup *l)
{
	forget(ls, l);
	l->cancelled = true; /* the resolver's answer, when it comes, frees it (deliver_done) */
}

void actor__lookup_cancel(struct actor_worker *w, uint64_t handle)
{
	struct lookups *ls = lookups_of(w);
	struct lookup *l = ls != NULL ? actor__table_get(&ls->table, handle) : NULL;
	if (l != NULL)
		cancel(ls, l);
}

int actor_lookup(actor_ctx_t *ctx, const char *host, uint16_t port, uint64_t tag,
                 actor_lookup_t *out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || out == NULL)
		return -EINVAL;
	uint64_t h;
	int rc = start(w, host, port, tag, ctx->actor->ref, NULL, &h);
	if (rc < 0)
		return rc;
	/* Only this worker can cancel it, and it cancels it when the actor stops: the actor
	 * stays here. */
	actor__svc_hold(ctx->actor, SVC_BIT_LOOKUP);
	out->id = h;
	return 0;
}

int actor_lookup_cancel(actor_ctx_t *ctx, actor_lookup_t lookup)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (actor__handle_worker(lookup.id) != w->index)
		return -EXDEV;
	struct lookups *ls = lookups_of(w);
	struct lookup *l = actor__table_get(&ls->table, lookup.id);
	if (l == NULL)
		return -ESRCH;
	if (!actor_ref_eq(l->owner, ctx->actor->ref))
		return -EPERM;
	cancel(ls, l);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */

static int lookups_init(struct actor_worker *w, void **state)
{
	struct lookups *ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return -ENOMEM;
	ls->w = w;
	/* Here, on the thread creating the system: the resolver reads its configuration files
	 * now, not on the worker. A resolver that cannot be made fails the lookups, not the
	 * system. */
	ls->dns_err = actor__dns_available ? actor__dns_create(w, &ls->dns) : -ENOSYS;
	*state = ls;
	return 0;
}

/* The worker is exiting, every actor stopped (their lookups cancelled, and the services' too):
 * ends what is in flight and frees everything. */
static void lookups_fini(struct actor_worker *w, void *state)
{
	(void)w;
	struct lookups *ls = state;
	if (ls->dns != NULL)
		actor__dns_free(ls->dns); /* answers every lookup in flight: onto the done list */
	struct lookup *l;
	while ((l = list_pop(&ls->waiting)) != NULL || (l = list_pop(&ls->done)) != NULL)
		lookup_free(l); /* nobody is left to tell */
	actor__table_free(&ls->table);
	free(ls);
}

static unsigned lookups_poll(struct actor_worker *w, void *state)
{
	(void)w;
	struct lookups *ls = state;
	if (ls->dns == NULL)
		return 0;
	actor__dns_poll(ls->dns);
	if (ls->done.head == NULL)
		return 0;
	unsigned n = deliver_done(ls);
	start_waiting(ls);
	return n;
}

static uint64_t lookups_next_deadline(const struct actor_worker *w, const void *state)
{
	(void)w;
	const struct lookups *ls = state;
	if (ls->done.head != NULL)
		return 0; /* answers waiting: now */
	return ls->dns != NULL ? actor__dns_next_deadline(ls->dns) : UINT64_MAX;
}

static unsigned lookups_tick(struct actor_worker *w, void *state, uint64_t now)
{
	(void)w;
	struct lookups *ls = state;
	if (ls->dns == NULL)
		return 0;
	actor__dns_tick(ls->dns, now); /* queries that timed out: retried or answered */
	unsigned n = deliver_done(ls);
	start_waiting(ls);
	return n;
}

/* `a` stopped: its lookups are cancelled. */
static void lookups_owner_stopped(struct actor_worker *w, void *state, struct actor *a)
{
	(void)w;
	struct lookups *ls = state;
	struct actor__table *t = &ls->table;
	for (uint32_t i = 1; i < t->cap; i++) {
		struct lookup *l = t->obj[i];
		if (l != NULL && actor_ref_eq(l->owner, a->ref))
			cancel(ls, l);
	}
}

const struct actor__service_ops actor__lookup_service = {
    .name = "lookup",
    .id = SVC_LOOKUP,
    .blocks = {0x05},
    .actor_bits = SVC_BIT_LOOKUP,
    .init = lookups_init,
    .fini = lookups_fini,
    .poll = lookups_poll,
    .next_deadline = lookups_next_deadline,
    .tick = lookups_tick,
    .owner_stopped = lookups_owner_stopped,
};
