/* call.c: the calls on a running supervisor (actor.h, "Supervisors"): requests of type SUP_CALL
 * that its behaviour (supervise.c) answers with an actor_supervisor_answer_t. */
#include <errno.h>
#include <string.h>

#include "supervise/supervise.h"

/* Fills `k` for `op`; -EINVAL for what the supervisor would refuse anyway. */
static int call_make(struct actor__sup_call *k, actor_supervisor_op_t op, const char *id,
                     const actor_child_spec_t *spec)
{
	memset(k, 0, sizeof(*k));
	k->op = (uint32_t)op;
	switch (op) {
	case ACTOR_SUP_START_CHILD:
		if (actor__sup_spec_check(spec, 0) < 0)
			return -EINVAL;
		k->spec = *spec;
		id = spec->id;
		break;
	case ACTOR_SUP_TERMINATE_CHILD:
	case ACTOR_SUP_RESTART_CHILD:
	case ACTOR_SUP_DELETE_CHILD:
		if (actor__sup_id_check(id) < 0)
			return -EINVAL;
		break;
	case ACTOR_SUP_WHICH_CHILDREN:
		return 0;
	default:
		return -EINVAL;
	}
	strcpy(k->id, id); /* checked: shorter than ACTOR_CHILD_ID_MAX */
	k->spec.id = NULL; /* the supervisor points it at k->id */
	return 0;
}

static int call_send(actor_ctx_t *ctx, actor_ref_t sup, actor_supervisor_op_t op, const char *id,
                     const actor_child_spec_t *spec, const actor_request_opts_t *opts,
                     actor_request_t *out)
{
	struct actor__sup_call k;
	int rc = call_make(&k, op, id, spec);
	if (rc < 0)
		return rc;
	return actor_request(ctx, sup, SUP_CALL, &k, sizeof(k), opts, out);
}

int actor_supervisor_start_child(actor_ctx_t *ctx, actor_ref_t sup, const actor_child_spec_t *spec,
                                 const actor_request_opts_t *opts, actor_request_t *out)
{
	return call_send(ctx, sup, ACTOR_SUP_START_CHILD, NULL, spec, opts, out);
}

int actor_supervisor_terminate_child(actor_ctx_t *ctx, actor_ref_t sup, const char *id,
                                     const actor_request_opts_t *opts, actor_request_t *out)
{
	return call_send(ctx, sup, ACTOR_SUP_TERMINATE_CHILD, id, NULL, opts, out);
}

int actor_supervisor_restart_child(actor_ctx_t *ctx, actor_ref_t sup, const char *id,
                                   const actor_request_opts_t *opts, actor_request_t *out)
{
	return call_send(ctx, sup, ACTOR_SUP_RESTART_CHILD, id, NULL, opts, out);
}

int actor_supervisor_delete_child(actor_ctx_t *ctx, actor_ref_t sup, const char *id,
                                  const actor_request_opts_t *opts, actor_request_t *out)
{
	return call_send(ctx, sup, ACTOR_SUP_DELETE_CHILD, id, NULL, opts, out);
}

int actor_supervisor_which_children(actor_ctx_t *ctx, actor_ref_t sup,
                                    const actor_request_opts_t *opts, actor_request_t *out)
{
	return call_send(ctx, sup, ACTOR_SUP_WHICH_CHILDREN, NULL, NULL, opts, out);
}

int actor_supervisor_call_wait(actor_system_t *sys, actor_ref_t sup, actor_supervisor_op_t op,
                               const char *id, const actor_child_spec_t *spec, uint64_t timeout_ns,
                               actor_msg_t **reply)
{
	struct actor__sup_call k;
	int rc = call_make(&k, op, id, spec);
	if (rc < 0)
		return rc;
	return actor_request_wait(sys, sup, SUP_CALL, &k, sizeof(k), timeout_ns, reply);
}

int actor_supervisor_answer_of(actor_msg_t *reply, actor_supervisor_answer_t **out)
{
	if (reply == NULL || out == NULL || reply->type != ACTOR_MSG_REPLY ||
	    reply->size < sizeof(actor_reply_t))
		return -EINVAL;
	actor_reply_t *r = actor_msg_data(reply);
	if (r->error != 0)
		return r->error;
	if (r->type != ACTOR_SUPERVISOR_ANSWER || r->len < sizeof(actor_supervisor_answer_t))
		return -EINVAL;
	actor_supervisor_answer_t *a = actor_reply_data(r);
	if (r->len < sizeof(*a) + (size_t)a->count * sizeof(actor_child_info_t))
		return -EINVAL;
	*out = a;
	return 0;
}
