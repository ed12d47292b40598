/* hello.c: the smallest libactor program: one actor, one message.
 *
 * It creates a system, spawns an actor, sends it a greeting, and waits. The actor prints the
 * greeting and stops itself; once no actor is left, actor_system_run returns.
 */
#include <stdio.h>
#include <string.h>

#include <actor.h>

/* Message types are the program's own numbers; anything below ACTOR_MSG_SYSTEM will do. */
enum { MSG_GREET = 1 };

/* A behaviour: called once per message, always on the actor's own worker thread. `state` is
 * the pointer given at spawn (unused here). The message is freed when this returns. */
static void greeter(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_GREET) {
		/* actor_send copied the bytes into the message, right after its header. */
		printf("greeter got: %.*s\n", (int)msg->size, (const char *)actor_msg_data(msg));
		/* Stop after this message. With no actor left, actor_system_run returns. */
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

int main(void)
{
	actor_system_t *sys;
	actor_ref_t greeter_ref;
	const char greeting[] = "hello, actor";
	int rc;

	/* NULL config: one worker thread per CPU, default everything. */
	rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}

	/* NULL options: default placement. The actor has no state. */
	rc = actor_spawn(sys, NULL, greeter, NULL, &greeter_ref);
	if (rc == 0)
		rc = actor_send(sys, greeter_ref, MSG_GREET, greeting, strlen(greeting));
	if (rc == 0)
		rc = actor_system_run(sys); /* blocks until the greeter has stopped */
	if (rc < 0)
		fprintf(stderr, "hello: %s\n", strerror(-rc));

	actor_system_free(sys);
	return rc < 0 ? 1 : 0;
}
