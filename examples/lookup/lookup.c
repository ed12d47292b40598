/* lookup.c: looks a host name up without holding up the worker, and prints its addresses.
 *
 * Usage: lookup [host]   (default localhost, which /etc/hosts answers)
 *
 * actor_lookup returns at once; the answer comes later as one ACTOR_MSG_LOOKUP message, while
 * the worker goes on running its other actors. Exits 77 in a build without c-ares.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <actor.h>

struct looker {
	const char *host;
	int error; /* 0, or why it failed */
};

static void looker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct looker *l = state;
	if (msg->type != ACTOR_MSG_LOOKUP) { /* the start: ask */
		actor_lookup_t lookup;
		l->error = actor_lookup(ctx, l->host, 80, 0, &lookup);
		if (l->error < 0)
			actor_exit(ctx, ACTOR_REASON_NORMAL); /* no answer will come */
		return;
	}
	const actor_lookup_done_t *d = actor_lookup_answer(msg);
	l->error = d->error; /* e.g. -ENOENT: no such name */
	for (uint32_t i = 0; i < d->count; i++) {
		const struct sockaddr_storage *a = &d->addrs[i];
		const void *ip = a->ss_family == AF_INET6
		                     ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
		                     : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
		char text[INET6_ADDRSTRLEN];
		printf("%s\n", inet_ntop(a->ss_family, ip, text, sizeof(text)));
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

int main(int argc, char **argv)
{
	struct looker l = {.host = argc > 1 ? argv[1] : "localhost"};
	actor_system_t *sys;
	actor_ref_t ref;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, NULL, looker_fn, &l, &ref);
	if (rc == 0)
		rc = actor_send(sys, ref, 1, NULL, 0);
	if (rc == 0)
		rc = actor_system_run(sys); /* until the looker has stopped */
	actor_system_free(sys);
	if (rc == 0)
		rc = l.error;
	if (rc < 0)
		fprintf(stderr, "lookup %s: %s\n", l.host, strerror(-rc));
	return rc == -ENOSYS ? 77 : rc < 0 ? 1 : 0;
}
