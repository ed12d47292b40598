/* spec.c: checking and copying supervisor options and child specs (actor.h, "Supervisors").
 *
 * A supervisor keeps deep copies: the ids, and the options of supervisor children with their
 * own children, so that nothing the caller passed has to outlive the call (but what the spawn
 * options point to, as for actor_spawn).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "supervise/supervise.h"

int actor__sup_id_check(const char *id)
{
	if (id == NULL || id[0] == '\0')
		return -EINVAL;
	if (strnlen(id, ACTOR_CHILD_ID_MAX) >= ACTOR_CHILD_ID_MAX)
		return -EINVAL;
	return 0;
}

static int opts_check(const actor_supervisor_opts_t *o, unsigned depth);

int actor__sup_spec_check(const actor_child_spec_t *c, unsigned depth)
{
	if (c == NULL || actor__sup_id_check(c->id) < 0)
		return -EINVAL;
	if (c->register_as != NULL &&
	    (c->register_as[0] == '\0' ||
	     strnlen(c->register_as, ACTOR_NAME_MAX + 1) > ACTOR_NAME_MAX))
		return -EINVAL;
	if ((unsigned)c->restart > ACTOR_RESTART_TEMPORARY || c->spawn.link != 0 ||
	    c->shutdown_ms < ACTOR_SHUTDOWN_INFINITY)
		return -EINVAL;
	if (c->supervisor != NULL) {
		if (c->fn != NULL || c->make_state != NULL || c->spawn.start != NULL ||
		    c->spawn.destroy != NULL)
			return -EINVAL;
		return opts_check(c->supervisor, depth + 1);
	}
	return c->fn != NULL ? 0 : -EINVAL;
}

static int opts_check(const actor_supervisor_opts_t *o, unsigned depth)
{
	if (o == NULL || depth > ACTOR_SUPERVISOR_DEPTH_MAX)
		return -EINVAL;
	if ((unsigned)o->strategy > ACTOR_REST_FOR_ONE || o->intensity < -1 ||
	    o->intensity > ACTOR_SUPERVISOR_INTENSITY_MAX)
		return -EINVAL;
	if (o->backoff_max_ms != 0 && o->backoff_max_ms < o->backoff_min_ms)
		return -EINVAL;
	if (o->nchildren > 0 && o->children == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < o->nchildren; i++) {
		int rc = actor__sup_spec_check(&o->children[i], depth);
		if (rc < 0)
			return rc;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(o->children[i].id, o->children[j].id) == 0)
				return -EINVAL;
	}
	return 0;
}

int actor__sup_opts_check(const actor_supervisor_opts_t *o)
{
	return opts_check(o, 0);
}

void actor__sup_opts_free(actor_supervisor_opts_t *o)
{
	if (o == NULL)
		return;
	actor_child_spec_t *v = (actor_child_spec_t *)o->children;
	for (unsigned i = 0; i < o->nchildren; i++) {
		free((char *)v[i].id);
		free((char *)v[i].register_as);
		actor__sup_opts_free((actor_supervisor_opts_t *)v[i].supervisor);
	}
	free(v);
	free(o);
}

/* A deep copy of a checked child spec into *dst: its id, and its supervisor options. */
int actor__sup_spec_copy(actor_child_spec_t *dst, const actor_child_spec_t *src)
{
	*dst = *src;
	dst->supervisor = NULL;
	dst->register_as = NULL;
	dst->id = strdup(src->id);
	if (dst->id == NULL)
		return -ENOMEM;
	if (src->register_as != NULL && (dst->register_as = strdup(src->register_as)) == NULL) {
		free((char *)dst->id);
		dst->id = NULL;
		return -ENOMEM;
	}
	if (src->supervisor != NULL) {
		dst->supervisor = actor__sup_opts_copy(src->supervisor);
		if (dst->supervisor == NULL) {
			free((char *)dst->id);
			free((char *)dst->register_as);
			dst->id = NULL;
			dst->register_as = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

actor_supervisor_opts_t *actor__sup_opts_copy(const actor_supervisor_opts_t *src)
{
	actor_supervisor_opts_t *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	*o = *src;
	o->children = NULL;
	o->nchildren = 0;
	if (src->nchildren == 0)
		return o;
	actor_child_spec_t *v = calloc(src->nchildren, sizeof(*v));
	if (v == NULL) {
		free(o);
		return NULL;
	}
	o->children = v;
	for (unsigned i = 0; i < src->nchildren; i++) {
		if (actor__sup_spec_copy(&v[i], &src->children[i]) < 0) {
			actor__sup_opts_free(o);
			return NULL;
		}
		o->nchildren = i + 1;
	}
	return o;
}
