/* keep.c: holding on to a message to handle it later, without copying it: actor_msg_keep.
 *
 * A message is normally freed when the behaviour it was given to returns. A behaviour that
 * calls actor_msg_keep owns it instead: it may keep it as long as it likes, and must free it
 * with actor_msg_free (or pass it on with actor_send_msg).
 *
 * Here a formatter cannot handle requests before it has its configuration (a prefix), but
 * requests may come first. It keeps each early request, and when the configuration arrives it
 * handles the kept ones, in the order they came, then frees them; later requests it handles
 * at once. The program checks that every request was handled once, in order.
 */
#include <stdio.h>
#include <string.h>

#include <actor.h>

enum { MSG_REQUEST = 1, MSG_CONFIG, MSG_STOP };

/* At most this many requests wait for the configuration; more are refused. A bound keeps a
 * configuration that never comes from filling the memory. */
#define KEPT_MAX 16

struct formatter {
	int configured;              /* MSG_CONFIG has come */
	char prefix[32];             /* from MSG_CONFIG */
	actor_msg_t *kept[KEPT_MAX]; /* early requests, ours until freed */
	unsigned nkept;
	unsigned handled;  /* requests handled */
	unsigned was_kept; /* of which kept first */
	unsigned refused, out_of_order;
};

/* Frees what is still kept if the actor stops before its configuration came: kept messages
 * are ours, and the library does not know about them. */
static void formatter_free(void *state)
{
	struct formatter *f = state;
	for (unsigned i = 0; i < f->nkept; i++)
		actor_msg_free(f->kept[i]);
	f->nkept = 0;
}

static void handle(struct formatter *f, actor_msg_t *msg, int kept)
{
	unsigned seq;
	memcpy(&seq, actor_msg_data(msg), sizeof(seq));
	printf("%s: request %u%s\n", f->prefix, seq, kept ? " (kept until now)" : "");
	if (seq != ++f->handled)
		f->out_of_order++;
}

static void formatter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct formatter *f = state;
	switch (msg->type) {
	case MSG_REQUEST:
		if (f->configured) {
			handle(f, msg, 0); /* freed when we return, as usual */
		} else if (f->nkept < KEPT_MAX) {
			actor_msg_keep(ctx); /* ours now: not freed when we return */
			f->kept[f->nkept++] = msg;
		} else {
			f->refused++;
		}
		break;
	case MSG_CONFIG:
		snprintf(f->prefix, sizeof(f->prefix), "%.*s", (int)msg->size,
		         (const char *)actor_msg_data(msg));
		f->configured = 1;
		/* Now the kept requests, oldest first. Their bytes were never copied. */
		for (unsigned i = 0; i < f->nkept; i++) {
			handle(f, f->kept[i], 1);
			actor_msg_free(f->kept[i]);
			f->was_kept++;
		}
		f->nkept = 0;
		break;
	case MSG_STOP:
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	}
}

int main(void)
{
	struct formatter f = {0};
	actor_spawn_opts_t opts = {.destroy = formatter_free};
	actor_system_t *sys;
	actor_ref_t ref;
	const char prefix[] = "formatted";
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, &opts, formatter_fn, &f, &ref);
	/* Messages from one sender arrive in the order sent: three requests come before the
	 * configuration, two after it. */
	for (unsigned seq = 1; seq <= 5 && rc == 0; seq++) {
		if (seq == 4)
			rc = actor_send(sys, ref, MSG_CONFIG, prefix, strlen(prefix));
		if (rc == 0)
			rc = actor_send(sys, ref, MSG_REQUEST, &seq, sizeof(seq));
	}
	if (rc == 0)
		rc = actor_send(sys, ref, MSG_STOP, NULL, 0);
	if (rc == 0)
		rc = actor_system_run(sys); /* returns once the formatter has stopped */
	actor_system_free(sys);
	if (rc < 0) {
		fprintf(stderr, "keep: %s\n", strerror(-rc));
		return 1;
	}
	if (f.handled != 5 || f.was_kept != 3 || f.refused != 0 || f.out_of_order != 0) {
		fprintf(stderr,
		        "keep: %u handled, %u of them kept first, %u refused, %u out of order\n",
		        f.handled, f.was_kept, f.refused, f.out_of_order);
		return 1;
	}
	return 0;
}
