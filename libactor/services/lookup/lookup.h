/* lookup.h: the lookup service (lookup.c) as other services use it, and the resolver behind it:
 * cares.c (c-ares, driven by the worker's reactor) or, in a build without c-ares, none.c.
 *
 * A lookup lives on one worker and only that worker's thread touches it. Its answer goes to an
 * actor as ACTOR_MSG_LOOKUP (actor_lookup), or to a function of another service (a connection
 * by name, conn.c), always from the worker loop, never from inside the call that started it.
 */
#ifndef ACTOR_LOOKUP_H
#define ACTOR_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "services/services.h"

/* An internal caller's answer: on the lookup's worker, from the worker loop. `res` and its
 * addresses are valid during the call. */
typedef void actor__lookup_fn(struct actor_worker *w, const actor_lookup_done_t *res);

/* Starts a lookup of `host` whose answer goes to fn(w, res) with res->tag == tag, exactly once,
 * unless cancelled first. *handle: for actor__lookup_cancel. -ENOSYS without c-ares. */
int actor__lookup_start(struct actor_worker *w, const char *host, uint16_t port, uint64_t tag,
                        actor__lookup_fn *fn, uint64_t *handle);
/* fn will not be called for it. */
void actor__lookup_cancel(struct actor_worker *w, uint64_t handle);
/* Whether `host` is a numeric IPv4 or IPv6 address; if so, *out is it, with `port`. */
bool actor__lookup_numeric(const char *host, uint16_t port, struct sockaddr_storage *out);

/* ---------------------------------------------------------------------------------------------
 * The resolver (cares.c or none.c). Worker thread only, but for create.
 */

struct actor__dns;

/* One lookup's end: 0 and `n` addresses (port 0), or a negative errno and none. */
typedef void actor__dns_done_fn(void *arg, int err, const struct sockaddr *const *addrs,
                                unsigned n);

/* False in a build without a resolver: every lookup of a name is -ENOSYS. */
extern const bool actor__dns_available;
/* A worker's resolver, before the worker runs (on the thread creating the system). */
int actor__dns_create(struct actor_worker *w, struct actor__dns **out);
/* Starts a lookup; done(arg, ...) follows exactly once, perhaps before this returns. */
int actor__dns_start(struct actor__dns *d, const char *host, actor__dns_done_fn *done, void *arg);
/* Every loop turn: takes note of what the resolver did since (its next timeout). */
void actor__dns_poll(struct actor__dns *d);
/* When timeouts are due next (UINT64_MAX: nothing in flight; 0: poll first), and handling
 * them. */
uint64_t actor__dns_next_deadline(const struct actor__dns *d);
void actor__dns_tick(struct actor__dns *d, uint64_t now);
/* Ends every lookup in flight (done with -ECANCELED), lets go of its sockets and frees it. */
void actor__dns_free(struct actor__dns *d);

#endif /* ACTOR_LOOKUP_H */
