/* crash.c: a fatal signal in a behaviour says which actor was running.
 *
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT on a worker thread prints one line to stderr: the
 * signal, the running actor (its reference, its spawn name), the worker, and the type of the
 * message being handled. Then the process dies as it would have: the previous disposition is put
 * back and the signal comes again (a fault runs its instruction again; a signal that was sent, as
 * abort's, is raised again), so core dumps, the exit status and a handler the program installed
 * before (which then runs) are what they were without us.
 *
 * Async-signal-safe: the handler reads the worker of its own thread (actor__tls_worker) and
 * fields that only this thread writes (its ctx and its call count), formats the line by hand in
 * a buffer on its stack, and calls write(2), sigaction(2) and raise(3): no stdio, no allocation,
 * no lock. It runs on the worker's alternate signal stack (sched.c), so that a behaviour that
 * overflowed the stack is reported too.
 *
 * The handlers are the process's: installed when the first system that wants reports is
 * created, the previous ones put back when the last such system is freed (unless the program
 * has installed others meanwhile).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NFATAL (sizeof(fatal) / sizeof(fatal[0]))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned users; /* systems that want reports; under lock */
/* The dispositions ours replaced: written under lock before ours is installed, read by the
 * handler. */
static struct sigaction previous[NFATAL];
/* 1 once a crash is being reported: a second one (another thread, or a fault in the report)
 * dies without a line of its own, which would only garble the first. */
static atomic_int reporting;

/* ---------------------------------------------------------------------------------------------
 * The line, formatted by hand
 */

#define LINE_MAX_BYTES 320
#define NAME_SHOWN 64 /* bytes of a spawn name shown at most */

struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	while (*s != '\0' && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void put_dec(struct line *l, uint64_t v)
{
	char d[20];
	size_t n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0 && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = d[--n];
}

static void put_hex(struct line *l, uint64_t v)
{
	char d[16];
	size_t n = 0;
	do {
		d[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v != 0);
	put(l, "0x");
	while (n > 0 && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = d[--n];
}

/* The spawn name in quotes, on one line whatever it holds. */
static void put_name(struct line *l, const char *name)
{
	put(l, " \"");
	for (size_t i = 0; name[i] != '\0' && i < NAME_SHOWN && l->len < sizeof(l->buf) - 1; i++) {
		unsigned char c = (unsigned char)name[i];
		l->buf[l->len++] = (c < 0x20 || c == 0x7f || c == '"') ? '?' : (char)c;
	}
	put(l, "\"");
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGFPE:
		return "SIGFPE";
	case SIGILL:
		return "SIGILL";
	case SIGABRT:
		return "SIGABRT";
	}
	return "signal";
}

/* "actor 0x100000005 "name" on worker 1" */
static void put_actor(struct line *l, const struct actor *a, unsigned worker)
{
	put(l, "actor ");
	put_hex(l, a->ref.id);
	const char *name = actor__name(a);
	if (name != NULL)
		put_name(l, name);
	put(l, " on worker ");
	put_dec(l, worker);
}

/* The report of signal `sig` on this thread, if it is a worker of a system that wants one. */
static void report(int sig)
{
	struct actor_worker *w = actor__tls_worker;
	if (w == NULL || !w->sys->crash_report)
		return;
	struct line l = {.len = 0};
	put(&l, "libactor: fatal ");
	put(&l, signal_name(sig));
	const struct actor *a = w->ctx.actor;
	/* Relaxed: this thread's own count; odd inside a behaviour's call (internal.h). */
	bool in_call = atomic_load_explicit(&w->calls, memory_order_relaxed) & 1;
	if (a != NULL && in_call) {
		put(&l, " in a behaviour: ");
		put_actor(&l, a, w->index);
		if (w->ctx.msg == NULL) {
			put(&l, ", in its start hook");
		} else if (w->ctx.kept) {
			put(&l, ", handling a message it has kept or passed on");
		} else {
			uint32_t type = w->ctx.msg->type;
			put(&l, ", handling message type ");
			if (type >= ACTOR_MSG_SYSTEM)
				put_hex(&l, type);
			else
				put_dec(&l, type);
		}
	} else if (a != NULL) {
		put(&l, " in the library, in a turn of ");
		put_actor(&l, a, w->index);
	} else {
		put(&l, " in the library on worker ");
		put_dec(&l, w->index);
		put(&l, ", between actors' turns");
	}
	put(&l, "\n");
	for (size_t off = 0; off < l.len;) {
		ssize_t n = write(STDERR_FILENO, l.buf + off, l.len - off);
		if (n <= 0 && errno != EINTR)
			break;
		off += n > 0 ? (size_t)n : 0;
	}
}

static void on_fatal(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	int saved = errno;
	if (!atomic_exchange(&reporting, 1))
		report(sig);
	for (size_t i = 0; i < NFATAL; i++) {
		if (fatal[i] == sig)
			sigaction(sig, &previous[i], NULL);
	}
	/* A fault (si_code > 0: the kernel's) happens again as the handler returns, under the
	 * previous disposition. A signal that was sent (abort, kill) is sent again: blocked while
	 * its handler runs, it arrives as it returns. */
	if (info == NULL || info->si_code <= 0)
		raise(sig);
	errno = saved;
}

/* ---------------------------------------------------------------------------------------------
 * Installing and uninstalling
 */

int actor__crash_install(void)
{
	int rc = 0;
	pthread_mutex_lock(&lock);
	if (users == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_fatal;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		/* All of them blocked in the handler: a fault inside it kills the process at once
		 * (the kernel's default for a blocked fault) instead of recursing. */
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < NFATAL; i++)
			sigaddset(&sa.sa_mask, fatal[i]);
		for (size_t i = 0; i < NFATAL && rc == 0; i++) {
			if (sigaction(fatal[i], &sa, &previous[i]) != 0) {
				rc = -errno;
				while (i-- > 0)
					sigaction(fatal[i], &previous[i], NULL);
			}
		}
		atomic_store(&reporting, 0);
	}
	if (rc == 0)
		users++;
	pthread_mutex_unlock(&lock);
	return rc;
}

void actor__crash_uninstall(void)
{
	pthread_mutex_lock(&lock);
	if (users > 0 && --users == 0) {
		for (size_t i = 0; i < NFATAL; i++) {
			struct sigaction cur;
			/* Only ours is taken back: a handler the program installed since stays. */
			if (sigaction(fatal[i], NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
			    cur.sa_sigaction == on_fatal)
				sigaction(fatal[i], &previous[i], NULL);
		}
	}
	pthread_mutex_unlock(&lock);
}
