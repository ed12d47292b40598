/* reactor.c: choosing a reactor backend at run time from an ordered list. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "reactor.h"

int actor__reactor_choose(const char *want, const struct actor__reactor_ops **out)
{
	if (want == NULL || *want == '\0')
		want = getenv("ACTOR_REACTOR");
	if (want == NULL || *want == '\0' || strcmp(want, "auto") == 0) {
		/* epoll for now: io_uring is no faster here (bench/README.md, Echo), and its
		 * backend's last two fixes are recent. "io_uring" asks for it explicitly. */
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
		*out = actor__reactor_uring;
		return 0;
	}
	return -EINVAL;
}
