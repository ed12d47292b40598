/* none.c: stands in for the resolver in builds without c-ares (configure --without-cares, or
 * c-ares not found): actor_lookup says -ENOSYS, and actor_tcp_connect resolves a name with
 * getaddrinfo on the worker, as before (services/net/msg.c). */
#include "config.h"

#include <errno.h>

#include "services/lookup/lookup.h"

const bool actor__dns_available = false;

int actor__dns_create(struct actor_worker *w, struct actor__dns **out)
{
	(void)w;
	(void)out;
	return -ENOSYS;
}

int actor__dns_start(struct actor__dns *d, const char *host, actor__dns_done_fn *done, void *arg)
{
	(void)d;
	(void)host;
	(void)done;
	(void)arg;
	return -ENOSYS;
}

void actor__dns_poll(struct actor__dns *d)
{
	(void)d;
}

uint64_t actor__dns_next_deadline(const struct actor__dns *d)
{
	(void)d;
	return UINT64_MAX;
}

void actor__dns_tick(struct actor__dns *d, uint64_t now)
{
	(void)d;
	(void)now;
}

void actor__dns_free(struct actor__dns *d)
{
	(void)d;
}
