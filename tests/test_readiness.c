/* test_readiness.c: the reactor's readiness interests (WATCH_READABLE, WATCH_WRITABLE), on each
 * backend this machine can create, driven directly: a watcher on one end of a socket pair is
 * told when it is readable or writable, the backend reads and writes nothing, and readiness is
 * level-triggered. The contract a backend implements for a service whose library does its own
 * I/O (the lookup service's c-ares sockets).
 */
#include "common.h"

#include <sys/eventfd.h>
#include <sys/socket.h>

#include "reactor/reactor.h"

struct probe {
	struct actor__watcher wt; /* first: the callbacks cast back */
	int calls;
	int last;
	bool let_go;
};

static void probe_on_ready(struct actor__watcher *wt, int ready)
{
	struct probe *p = (struct probe *)wt;
	p->calls++;
	p->last = ready;
}

static void probe_on_closed(struct actor__watcher *wt)
{
	((struct probe *)wt)->let_go = true;
}

static const struct actor__watch_ops probe_ops = {
    .on_ready = probe_on_ready,
    .on_closed = probe_on_closed,
};

static const struct actor__reactor_ops *backend;
static struct actor__reactor *r;
static int evfd = -1, sv[2] = {-1, -1};
static struct probe p;

static void setup(const struct actor__reactor_ops *ops)
{
	backend = ops;
	evfd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(evfd, 0);
	ck_assert_int_eq(backend->init(evfd, URING_ALL, &r), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	memset(&p, 0, sizeof(p));
	actor__watch_open(r, &p.wt, sv[0], &probe_ops);
}

static void teardown(void)
{
	if (!p.wt.closed)
		actor__watch_close(r, &p.wt);
	actor__reactor_settle(r);
	ck_assert(p.let_go);
	backend->fini(r);
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	close(evfd);
}

/* Waits (in the reactor) until on_ready has been called more than `calls` times, for at most
 * `ms`; the number of calls then. */
static int wait_calls(int calls, unsigned ms)
{
	double end = now_sec() + ms / 1e3;
	while (p.calls <= calls && now_sec() < end)
		r->ops->wait(r, 10000000);
	return p.calls;
}

/* A few waits that may report: the calls made meanwhile. */
static int calls_over_waits(int waits)
{
	int before = p.calls;
	for (int i = 0; i < waits; i++)
		r->ops->wait(r, 1000000);
	return p.calls - before;
}

static void readable_is_reported_without_reading_and_again_while_unread(void)
{
	actor__watch_set(r, &p.wt, WATCH_READABLE);
	ck_assert_int_eq(calls_over_waits(3), 0); /* nothing to read: no report */
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	ck_assert_int_ge(wait_calls(0, 5000), 1);
	ck_assert_int_eq(p.last, WATCH_READABLE);
	int again = p.calls;
	ck_assert_int_gt(wait_calls(again, 5000), again); /* level-triggered: still unread */
	char buf[8];
	ck_assert_int_eq(recv(sv[0], buf, sizeof(buf), 0), 3); /* the backend read none of it */
	ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
	ck_assert_int_eq(calls_over_waits(3), 0); /* drained: no more reports */
}

static void writable_is_reported_and_stops_once_no_longer_wanted(void)
{
	actor__watch_set(r, &p.wt, WATCH_WRITABLE);
	ck_assert_int_ge(wait_calls(0, 5000), 1);
	ck_assert_int_eq(p.last, WATCH_WRITABLE);
	actor__watch_set(r, &p.wt, 0);
	ck_assert_int_eq(calls_over_waits(3), 0);
	char buf[8];
	ck_assert_int_eq(recv(sv[1], buf, sizeof(buf), 0), -1); /* the backend wrote nothing */
	ck_assert_int_eq(errno, EAGAIN);
}

static void both_are_reported_in_one_call_when_both_hold(void)
{
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	actor__watch_set(r, &p.wt, WATCH_READABLE | WATCH_WRITABLE);
	ck_assert_int_ge(wait_calls(0, 5000), 1);
	ck_assert_int_eq(p.last, WATCH_READABLE | WATCH_WRITABLE);
}

static void a_hang_up_is_reported_as_readable(void)
{
	actor__watch_set(r, &p.wt, WATCH_READABLE);
	close(sv[1]);
	sv[1] = -1;
	ck_assert_int_ge(wait_calls(0, 5000), 1);
	ck_assert_int_eq(p.last, WATCH_READABLE);
	char c;
	ck_assert_int_eq(recv(sv[0], &c, 1, 0), 0); /* the service's own read sees the end */
}

static void a_closed_watcher_reports_nothing_more_and_is_let_go(void)
{
	actor__watch_set(r, &p.wt, WATCH_READABLE | WATCH_WRITABLE);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	actor__watch_close(r, &p.wt);
	ck_assert_int_eq(calls_over_waits(3), 0);
	ck_assert(p.let_go);
}

/* Each case on each backend that can be created here. */
#define ON_EACH_BACKEND(name)                                                                      \
	START_TEST(name##_on_epoll)                                                                \
	{                                                                                          \
		setup(&actor__reactor_epoll);                                                      \
		name();                                                                            \
		teardown();                                                                        \
	}                                                                                          \
	END_TEST                                                                                   \
	START_TEST(name##_on_io_uring)                                                             \
	{                                                                                          \
		struct actor__reactor *probe_r;                                                    \
		int fd = eventfd(0, EFD_CLOEXEC);                                                  \
		if (actor__reactor_uring == NULL ||                                                \
		    actor__reactor_uring->init(fd, URING_ALL, &probe_r) < 0) {                     \
			printf("SKIP %s on io_uring: not available here\n", #name);                \
			close(fd);                                                                 \
			return;                                                                    \
		}                                                                                  \
		actor__reactor_uring->fini(probe_r);                                               \
		close(fd);                                                                         \
		setup(actor__reactor_uring);                                                       \
		name();                                                                            \
		teardown();                                                                        \
	}                                                                                          \
	END_TEST

ON_EACH_BACKEND(readable_is_reported_without_reading_and_again_while_unread)
ON_EACH_BACKEND(writable_is_reported_and_stops_once_no_longer_wanted)
ON_EACH_BACKEND(both_are_reported_in_one_call_when_both_hold)
ON_EACH_BACKEND(a_hang_up_is_reported_as_readable)
ON_EACH_BACKEND(a_closed_watcher_reports_nothing_more_and_is_let_go)

#define ADD_BOTH(tc, name)                                                                         \
	do {                                                                                       \
		tcase_add_test(tc, name##_on_epoll);                                               \
		tcase_add_test(tc, name##_on_io_uring);                                            \
	} while (0)

static Suite *make_suite(void)
{
	Suite *s = suite_create("reactor readiness");
	TCase *tc = tcase_new("readiness", TEST_TIMEOUT);
	ADD_BOTH(tc, readable_is_reported_without_reading_and_again_while_unread);
	ADD_BOTH(tc, writable_is_reported_and_stops_once_no_longer_wanted);
	ADD_BOTH(tc, both_are_reported_in_one_call_when_both_hold);
	ADD_BOTH(tc, a_hang_up_is_reported_as_readable);
	ADD_BOTH(tc, a_closed_watcher_reports_nothing_more_and_is_let_go);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(make_suite)
