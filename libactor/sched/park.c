/* park.c: blocking a thread on a 32-bit word and waking it, with Linux futexes. Both calls are
 * single system calls and async-signal-safe, so a signal handler may wake a parked thread. */
#include "config.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

static void futex_wait(_Atomic uint32_t *word, const struct timespec *timeout)
{
	/* Returns at once unless *word is still 0: the waker sets it before waking. Spurious
	 * returns (EINTR, EAGAIN) are fine, callers re-check their condition. */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, 0, timeout, NULL, 0);
}

void actor__park_timed(_Atomic uint32_t *word, const struct timespec *timeout)
{
	if (atomic_load(word) == 0)
		futex_wait(word, timeout);
}

void actor__unpark(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
