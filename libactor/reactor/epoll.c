/* reactor_epoll.c: the readiness backend. Level-triggered epoll; the reactor does the reads,
 * writes and accepts itself when the kernel says a socket is ready.
 *
 * A connection is in the epoll set only while it wants something (reading and not paused, or
 * output waiting); otherwise it is removed, so that a connection nobody reads (a pending accept,
 * a paused one) cannot make a hang-up or an error report itself over and over.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "reactor/reactor.h"

#define EPOLL_BATCH 256      /* events taken per wait */
#define READ_BUF (64u << 10) /* one read's buffer: a DATA message carries at most this */
#define ACCEPTS_PER_EVENT 64 /* accepts per readiness report, so a flood cannot starve I/O */

/* epoll_event.data.u64: the object's address with its kind in the low two bits. */
enum { TAG_CONN = 0, TAG_LSOCK = 1, TAG_WAKE = 2, TAG_MASK = 3 };

struct actor__reactor {
	int epfd;
	int evfd;
	bool have_pwait2;
	struct epoll_event events[EPOLL_BATCH];
	unsigned char buf[READ_BUF];
};

static int ep_init(struct actor_worker *w, struct actor__reactor **out)
{
	struct actor__reactor *r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->have_pwait2 = true;
	r->evfd = w->evfd; /* the worker's; read only when epoll says it is readable */
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		goto fail;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) < 0)
		goto fail;
	*out = r;
	return 0;
fail:;
	int err = -errno;
	if (r->epfd >= 0)
		close(r->epfd);
	free(r);
	return err;
}

static void ep_fini(struct actor__reactor *r)
{
	close(r->epfd);
	free(r);
}

static unsigned ep_caps(const struct actor__reactor *r)
{
	(void)r;
	return 0;
}

/* Brings the fd's registration in line with what the connection wants. */
static int update(struct actor__reactor *r, struct actor__conn *c)
{
	uint32_t want = 0;
	if (c->reading)
		want |= EPOLLIN | EPOLLRDHUP;
	if (c->writing || c->state == CONN_CONNECTING)
		want |= EPOLLOUT;
	if (want == c->ep_events && (want != 0) == c->registered)
		return 0;
	struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)(uintptr_t)c | TAG_CONN};
	int rc;
	if (want == 0) {
		rc = epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->registered = false;
	} else if (!c->registered) {
		rc = epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev);
		c->registered = rc == 0;
	} else {
		rc = epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
	if (rc < 0)
		return -errno;
	c->ep_events = want;
	return 0;
}

static int ep_conn_read(struct actor__reactor *r, struct actor__conn *c)
{
	if (c->reading)
		return 0; /* already registered for input */
	c->reading = true;
	int rc = update(r, c);
	if (rc < 0)
		c->reading = false;
	return rc;
}

static void ep_conn_pause(struct actor__reactor *r, struct actor__conn *c)
{
	c->reading = false;
	update(r, c);
}

/* Writes what the socket takes now and arms EPOLLOUT for the rest. Returns 0, 1 if the
 * connection was released (a close that is done: `c` is gone), or a negative errno. */
static int write_some(struct actor__reactor *r, struct actor__conn *c)
{
	while (c->out_head != NULL) {
		ssize_t n = actor__net_write_fd(c);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			break;
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		c->writing = true; /* on_sent clears it when the queue empties */
		if (actor__net_on_sent(c, (size_t)n, 0))
			return 1;
	}
	c->writing = c->out_head != NULL;
	return update(r, c);
}

static int ep_conn_write(struct actor__reactor *r, struct actor__conn *c)
{
	int rc = write_some(r, c);
	return rc > 0 ? 0 : rc;
}

static int ep_conn_connect(struct actor__reactor *r, struct actor__conn *c)
{
	return update(r, c); /* CONNECTING wants EPOLLOUT */
}

static void ep_conn_release(struct actor__reactor *r, struct actor__conn *c)
{
	if (c->registered)
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->registered = false;
	actor__net_conn_released(c);
}

static int ep_listen_start(struct actor__reactor *r, struct actor__lsock *ls)
{
	struct epoll_event ev = {.events = EPOLLIN,
	                         .data.u64 = (uint64_t)(uintptr_t)ls | TAG_LSOCK};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, ls->fd, &ev) < 0)
		return errno == EEXIST ? 0 : -errno;
	return 0;
}

static void ep_listen_pause(struct actor__reactor *r, struct actor__lsock *ls)
{
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, ls->fd, NULL);
}

static void ep_listen_release(struct actor__reactor *r, struct actor__lsock *ls)
{
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, ls->fd, NULL);
	actor__net_lsock_released(ls);
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 */

static void on_listen_ready(struct actor__lsock *ls)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT && ls->armed; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			actor__net_on_accept(ls, fd, (struct sockaddr *)&ss, sl);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR)
			continue;
		actor__net_on_accept_error(ls, -errno);
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			return;
	}
}

static void on_conn_ready(struct actor__reactor *r, struct actor__conn *c, uint32_t events)
{
	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t sl = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		if (err != 0) {
			actor__net_on_connected(c, -err); /* releases `c` */
			return;
		}
		c->state = CONN_OPEN; /* drop EPOLLOUT before on_connected arms what it needs */
		update(r, c);
		c->state = CONN_CONNECTING;
		actor__net_on_connected(c, 0);
		return;
	}
	if ((events & EPOLLOUT) && c->writing) {
		int rc = write_some(r, c);
		if (rc != 0) {
			if (rc < 0)
				actor__net_on_sent(c, 0, rc); /* releases `c` */
			return;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && c->reading) {
		/* One read per report: level-triggered epoll reports again if more is waiting,
		 * which keeps one busy connection from starving the others. */
		ssize_t n = actor__net_read_fd(c, r->buf, sizeof(r->buf));
		if (n > 0) {
			actor__net_on_data(c, r->buf, (size_t)n);
		} else if (n == 0 || (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR)) {
			c->reading = false;
			update(r, c);
			actor__net_on_read_end(c, (int)n);
		}
	}
}

static int ep_wait(struct actor__reactor *r, int64_t timeout_ns)
{
	int n;
	if (r->have_pwait2) {
		struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
		n = epoll_pwait2(r->epfd, r->events, EPOLL_BATCH, timeout_ns < 0 ? NULL : &ts,
		                 NULL);
		if (n < 0 && errno == ENOSYS) {
			r->have_pwait2 = false; /* kernels before 5.11 */
			return ep_wait(r, timeout_ns);
		}
	} else {
		/* Millisecond resolution: round up, so a timer is never woken for too early. */
		int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
		n = epoll_wait(r->epfd, r->events, EPOLL_BATCH, ms);
	}
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t d = r->events[i].data.u64;
		void *obj = (void *)(uintptr_t)(d & ~(uint64_t)TAG_MASK);
		switch (d & TAG_MASK) {
		case TAG_WAKE: {
			uint64_t v;
			ssize_t rd = read(r->evfd, &v, sizeof(v));
			(void)rd;
			break;
		}
		case TAG_LSOCK:
			on_listen_ready(obj);
			break;
		default:
			on_conn_ready(r, obj, r->events[i].events);
			break;
		}
	}
	return n;
}

const struct actor__reactor_ops actor__reactor_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .caps = ep_caps,
    .wait = ep_wait,
    .listen_start = ep_listen_start,
    .listen_pause = ep_listen_pause,
    .listen_release = ep_listen_release,
    .conn_read = ep_conn_read,
    .conn_pause = ep_conn_pause,
    .conn_write = ep_conn_write,
    .conn_connect = ep_conn_connect,
    .conn_release = ep_conn_release,
};
