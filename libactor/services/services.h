/* services.h: the services a worker hosts, by index in actor__services (services.c). A service
 * finds its own state on a worker as w->svc[its id]. */
#ifndef ACTOR_SERVICES_H
#define ACTOR_SERVICES_H

#include "core/internal.h"

enum actor__service_id {
	SVC_TIMER,
	SVC_NET,
	SVC_LOOKUP, /* after SVC_NET: the net service's exit cancels its lookups first */
	SVC_POOL,
	SVC_FILE, /* after SVC_POOL: its sys_init adds the "files" pool */
	SVC_REQUEST,
#ifdef HAVE_NATS
	SVC_BROKER, /* last: only with libnats */
#endif
	SVC_COUNT,
};
_Static_assert(SVC_COUNT <= ACTOR_SERVICES_MAX, "the worker has room for every service");

/* Bits of struct actor's svc_bits (service.h), one set per service that needs them. */
#define SVC_BIT_NET 1u     /* owns connections or listeners on its worker */
#define SVC_BIT_LISTENS 2u /* has owned a listener: its accepted conns may be on other workers */
#define SVC_BIT_POOL 4u    /* has blocking jobs whose results have not all reached it yet */
#define SVC_BIT_LOOKUP 8u  /* has started a name lookup on its worker */
#define SVC_BIT_FILE 16u   /* has used a file call on its worker */
#define SVC_BIT_REQUEST 32u /* has requests pending, or kept ones unanswered, on its worker */
#define SVC_BIT_BROKER 64u  /* has broker subscriptions on its worker */

extern const struct actor__service_ops actor__timer_service;
extern const struct actor__service_ops actor__net_service;
extern const struct actor__service_ops actor__lookup_service;
extern const struct actor__service_ops actor__pool_service;
extern const struct actor__service_ops actor__file_service;
extern const struct actor__service_ops actor__request_service;
extern const struct actor__service_ops actor__broker_service;

/* request.c, for services that answer requests of their own (the broker's, over the network).
 * A pending request of the running actor, as actor_request makes one (its timeout, tag and
 * cancellation; the actor stays on its worker meanwhile), without sending anything: its answer
 * is a message from actor__request_answer_new, sent from any thread with
 * actor__send_internal_msg; the first to arrive ends the request. A request whose sending then
 * fails is ended with actor_request_cancel. -EINVAL: outside a behaviour, a NULL out, a timeout
 * over UINT64_MAX / 4; -ENOMEM. */
int actor__request_open(actor_ctx_t *ctx, const actor_request_opts_t *opts, actor_request_t *out);
/* The answer to request `id` with `error` and, if 0, a reply of `type` whose `len` bytes the
 * caller fills in at actor_reply_data(actor_msg_data(*out)). -EMSGSIZE; -ENOMEM. */
int actor__request_answer_new(uint64_t id, int error, uint32_t type, size_t len, actor_msg_t **out);

#endif /* ACTOR_SERVICES_H */
