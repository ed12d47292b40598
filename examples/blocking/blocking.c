/* blocking.c: blocking calls on a pool's threads; each result comes back as a message.
 *
 * A name lookup or a file operation blocks, and an actor must not block its worker. So the
 * actor submits each call as a job: it runs on a thread of a pool, and its result arrives in the
 * actor's mailbox as ACTOR_MSG_JOB_DONE, with the tag the actor gave it. Lookups get a pool of
 * their own, so that slow ones never hold up the file operations in the default pool. The
 * program checks that "localhost" has an address and that a missing file says ENOENT.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <actor.h>

enum { MSG_START = 1 };
enum { TAG_LOOKUP = 1, TAG_SIZE };

/* On a pool thread: how many addresses the host name `arg` has, or a negative errno value. */
static int64_t lookup(void *arg)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(arg, NULL, &hints, &ai);
	if (rc != 0)
		return rc == EAI_NONAME ? -ENOENT : -EIO;
	int64_t n = 0;
	for (struct addrinfo *p = ai; p != NULL; p = p->ai_next)
		n++;
	freeaddrinfo(ai);
	return n;
}

/* On a pool thread: the size of the file `arg`, or a negative errno value. */
static int64_t file_size(void *arg)
{
	struct stat st;
	return stat(arg, &st) == 0 ? (int64_t)st.st_size : -errno;
}

struct asker {
	int pending;       /* jobs whose results have not come back yet */
	int64_t result[3]; /* by tag */
};

static void asker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct asker *a = state;
	if (msg->type == MSG_START) {
		actor_job_opts_t dns = {.pool = "dns", .tag = TAG_LOOKUP};
		actor_job_opts_t file = {.tag = TAG_SIZE}; /* the default pool */
		actor_job_t job;
		if (actor_job_submit(ctx, &dns, lookup, "localhost", &job) == 0)
			a->pending++;
		if (actor_job_submit(ctx, &file, file_size, "/no/such/file", &job) == 0)
			a->pending++;
		if (a->pending < 2)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		return; /* the worker runs other actors meanwhile */
	}
	if (msg->type != ACTOR_MSG_JOB_DONE)
		return;
	const actor_job_done_t *done = actor_msg_data(msg);
	a->result[done->tag] = done->result;
	if (done->result < 0)
		printf("%s: %s\n", (const char *)done->arg, strerror((int)-done->result));
	else
		printf("%s: %" PRId64 "\n", (const char *)done->arg, done->result);
	if (--a->pending == 0)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

int main(void)
{
	struct asker a = {0};
	actor_system_t *sys;
	actor_ref_t ref;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_pool_create(sys, "dns", 2); /* two lookups at a time, at most */
	if (rc == 0)
		rc = actor_spawn(sys, NULL, asker_fn, &a, &ref);
	if (rc == 0)
		rc = actor_send(sys, ref, MSG_START, NULL, 0);
	if (rc == 0)
		actor_system_run(sys); /* returns once the asker has stopped */
	actor_system_free(sys);
	if (rc < 0) {
		fprintf(stderr, "blocking: %s\n", strerror(-rc));
		return 1;
	}
	return a.result[TAG_LOOKUP] > 0 && a.result[TAG_SIZE] == -ENOENT ? 0 : 1;
}
