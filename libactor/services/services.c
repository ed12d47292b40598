/* services.c: the list of services every worker hosts, the one place that names them all. */
#include "config.h"

#include "services/services.h"

const struct actor__service_ops *const actor__services[] = {
    [SVC_TIMER] = &actor__timer_service,
    [SVC_NET] = &actor__net_service,
    [SVC_LOOKUP] = &actor__lookup_service,
    [SVC_POOL] = &actor__pool_service,
    [SVC_FILE] = &actor__file_service,
    [SVC_REQUEST] = &actor__request_service,
#ifdef HAVE_NATS
    [SVC_BROKER] = &actor__broker_service,
#endif
    [SVC_COUNT] = NULL,
};
