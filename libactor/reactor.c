/* reactor.c: choosing a reactor backend at run time from an ordered list. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "reactor.h"

/* Probes io_uring the way the workers will use it: a ring that the kernel and the sandbox
 * (seccomp profiles often refuse io_uring_setup with EPERM) actually allow. */
static int probe(const struct actor__reactor_ops *ops)
{
	struct actor__reactor *r;
	int rc = ops->init(NULL, &r);
	if (rc == 0)
		ops->fini(r);
	return rc;
}

int actor__reactor_choose(const char *want, const struct actor__reactor_ops **out)
{
	if (want == NULL || *want == '\0')
		want = getenv("ACTOR_REACTOR");
	if (want == NULL || *want == '\0' || strcmp(want, "auto") == 0) {
		if (actor__reactor_uring != NULL && probe(actor__reactor_uring) == 0) {
			*out = actor__reactor_uring;
			return 0;
		}
		*out = &actor__reactor_epoll;
		return 0;
	}
	if (strcmp(want, "epoll") == 0) {
		*out = &actor__reactor_epoll;
		return 0;
	}
	if (strcmp(want, "io_uring") == 0) {
		if (actor__reactor_uring == NULL)
			return -ENOSYS; /* built without liburing */
		int rc = probe(actor__reactor_uring);
		if (rc < 0)
			return rc;
		*out = actor__reactor_uring;
		return 0;
	}
	return -EINVAL;
}
