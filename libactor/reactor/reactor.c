/* reactor.c: choosing a reactor backend at run time from an ordered list. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reactor/reactor.h"

const struct actor__reactor_ops *actor__reactor_override;

void actor__reactor_settle(struct actor__reactor *r)
{
	for (int i = 0; i < 100 && (r->closing > 0 || r->changes != NULL || r->oneshots > 0); i++)
		r->ops->wait(r, r->changes != NULL ? 0 : 10000000);
}

int actor__reactor_choose(const char *want, const struct actor__reactor_ops **out, bool *fallback,
                          enum actor__uring_level *uring_level)
{
	*fallback = false;
	if (actor__reactor_override != NULL) {
		*out = actor__reactor_override;
		*uring_level = URING_ALL;
		return 0;
	}
	/* The io_uring fallbacks for older kernels, on demand: the test suite runs them this way
	 * on a kernel that would never take them. Checked whichever backend is asked for. */
	const char *features = getenv("ACTOR_IO_URING_FEATURES");
	if (features == NULL || *features == '\0' || strcmp(features, "all") == 0)
		*uring_level = URING_ALL;
	else if (strcmp(features, "5.19") == 0)
		*uring_level = URING_5_19;
	else if (strcmp(features, "basic") == 0)
		*uring_level = URING_BASIC;
	else
		return -EINVAL;
	if (want == NULL || *want == '\0')
		want = getenv("ACTOR_REACTOR");
	if (want == NULL || *want == '\0' || strcmp(want, "auto") == 0) {
		/* io_uring where it can be created, decided by each worker when it creates its ring
		 * (sched.c, reactor_start): that is the probe, on the thread the ring belongs to,
		 * and it catches every refusal (-ENOSYS on old kernels, -EPERM from seccomp or the
		 * io_uring_disabled sysctl, -ENOMEM from the locked-memory limit). */
		*out = actor__reactor_uring != NULL ? actor__reactor_uring : &actor__reactor_epoll;
		*fallback = actor__reactor_uring != NULL;
		return 0;
	}
	if (strcmp(want, "epoll") == 0) {
		*out = &actor__reactor_epoll;
		return 0;
	}
	if (strcmp(want, "io_uring") == 0) {
		if (actor__reactor_uring == NULL)
			return -ENOSYS; /* built without liburing */
		*out = actor__reactor_uring;
		return 0;
	}
	return -EINVAL;
}
