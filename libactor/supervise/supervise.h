/* supervise.h: what the files of the supervisor (actor.h, "Supervisors") share. */
#ifndef ACTOR_SUPERVISE_H
#define ACTOR_SUPERVISE_H

#include "core/internal.h"

/* The message type of the calls (call.c): a supervisor owns its whole type space, since its
 * behaviour is the library's and it ignores what it does not know. */
#define SUP_CALL 0x53555001u

/* A call's payload. The spec is a shallow copy (actor.h: what it points to lives until the
 * answer); the id is copied here. */
struct actor__sup_call {
	uint32_t op; /* actor_supervisor_op_t */
	uint32_t reserved_;
	char id[ACTOR_CHILD_ID_MAX];
	actor_child_spec_t spec;
};

/* spec.c */
int actor__sup_id_check(const char *id);
int actor__sup_spec_check(const actor_child_spec_t *c, unsigned depth);
int actor__sup_opts_check(const actor_supervisor_opts_t *o);
int actor__sup_spec_copy(actor_child_spec_t *dst, const actor_child_spec_t *src);
actor_supervisor_opts_t *actor__sup_opts_copy(const actor_supervisor_opts_t *src);
void actor__sup_opts_free(actor_supervisor_opts_t *o);

#endif /* ACTOR_SUPERVISE_H */
