/* epoll.c: the readiness backend. Level-triggered epoll; the backend does the reads, writes and
 * accepts itself when the kernel says a descriptor is ready (or, for WATCH_READABLE and
 * WATCH_WRITABLE, only says so).
 *
 * A descriptor is in the epoll set only while its watcher wants something the kernel must
 * report (reading, accepting, a connect, or output the socket did not take at once); otherwise
 * it is removed, so that a descriptor nobody reads (a pending accept, a paused connection)
 * cannot make a hang-up or an error report itself over and over. Output is written as soon as
 * the change that wants it is applied, and EPOLLOUT armed only for what the socket refused.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "reactor/reactor.h"

#define EPOLL_BATCH 256      /* events taken per wait */
#define READ_BUF (64u << 10) /* one read's buffer: a read reports at most this */
#define ACCEPTS_PER_EVENT 64 /* accepts per readiness report, so a flood cannot starve I/O */
#define WRITE_IOV 16         /* chunks per sendmsg */

/* be_flags: the events registered, and whether the descriptor is in the set at all. */
#define EP_REGISTERED (1u << 31)
#define EP_EVENTS (~EP_REGISTERED)

struct ep_reactor {
	struct actor__reactor base;
	int epfd;
	bool have_pwait2;
	unsigned calls; /* callbacks run while applying changes (ep_wait: then it does not block) */
	struct epoll_event events[EPOLL_BATCH];
	unsigned char buf[READ_BUF];
};

#define WAKE_TAG 0 /* epoll_event.data.u64 of the wake eventfd; watchers use their address */

static struct ep_reactor *ep(struct actor__reactor *r)
{
	return (struct ep_reactor *)r;
}

static int ep_init(int evfd, int uring_level, struct actor__reactor **out)
{
	(void)uring_level;
	struct ep_reactor *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->base.ops = &actor__reactor_epoll;
	r->base.evfd = evfd; /* the worker's; read only when epoll says it is readable */
	r->have_pwait2 = true;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		goto fail;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, evfd, &ev) < 0)
		goto fail;
	*out = &r->base;
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
	close(ep(r)->epfd);
	free(r);
}

static unsigned ep_caps(const struct actor__reactor *r)
{
	(void)r;
	return 0;
}

/* Brings the registration in line with `events` (0: out of the set). */
static int register_events(struct ep_reactor *r, struct actor__watcher *wt, uint32_t events)
{
	bool registered = wt->be_flags & EP_REGISTERED;
	if (events == (wt->be_flags & EP_EVENTS) && (events != 0) == registered)
		return 0;
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(uintptr_t)wt};
	int rc;
	if (events == 0)
		rc = epoll_ctl(r->epfd, EPOLL_CTL_DEL, wt->fd, NULL);
	else
		rc = epoll_ctl(r->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, wt->fd, &ev);
	if (rc < 0 && events != 0)
		return -errno;
	wt->be_flags = events == 0 ? 0 : (events | EP_REGISTERED);
	return 0;
}

/* What the watcher needs the kernel to report; `blocked`: output the socket refused. */
static uint32_t events_for(const struct actor__watcher *wt, bool blocked)
{
	uint32_t e = 0;
	if (wt->want & (WATCH_READ | WATCH_ACCEPT))
		e |= EPOLLIN | ((wt->want & WATCH_READ) ? EPOLLRDHUP : 0);
	if ((wt->want & WATCH_CONNECT) || ((wt->want & WATCH_WRITE) && blocked))
		e |= EPOLLOUT;
	if (wt->want & WATCH_READABLE)
		e |= EPOLLIN;
	if (wt->want & WATCH_WRITABLE)
		e |= EPOLLOUT;
	return e;
}

/* Writes while the watcher wants to and the socket takes it. True if the socket refused
 * some (EPOLLOUT should report when it takes more); false when done, failed or closed. */
static bool write_some(struct ep_reactor *r, struct actor__watcher *wt)
{
	while ((wt->want & WATCH_WRITE) && !wt->closed) {
		struct iovec iov[WRITE_IOV];
		int n = wt->ops->out_iov(wt, iov, WRITE_IOV);
		if (n == 0 && wt->ops->out_direct != NULL) {
			ssize_t d = wt->ops->out_direct(wt);
			r->calls++;
			if (d > 0)
				continue;
			if (d == -EAGAIN)
				return true;
			if (d < 0 && (wt->want & WATCH_WRITE) && !wt->closed) {
				wt->want &= (uint8_t)~WATCH_WRITE;
				wt->ops->on_written(wt, d);
			}
			return false;
		}
		if (n <= 0)
			return false;
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		/* MSG_NOSIGNAL: a closed peer is an EPIPE error here, never a SIGPIPE. */
		ssize_t w = sendmsg(wt->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		r->calls++;
		if (w < 0) {
			wt->want &= (uint8_t)~WATCH_WRITE;
			wt->ops->on_written(wt, -errno);
			return false;
		}
		wt->ops->on_written(wt, w);
	}
	return false;
}

/* Applies one watcher's change: writes what it wants written, then registers what remains. */
static void apply(struct ep_reactor *r, struct actor__watcher *wt)
{
	if (wt->closed) {
		register_events(r, wt, 0);
		r->calls++;
		actor__reactor_closed(&r->base, wt);
		return;
	}
	bool blocked = (wt->be_flags & EPOLLOUT) && !(wt->want & WATCH_CONNECT);
	if ((wt->want & WATCH_WRITE) && !(wt->want & WATCH_CONNECT) && !blocked)
		blocked = write_some(r, wt);
	if (wt->closed) {
		actor__watch_queue(&r->base, wt); /* a callback closed it: the next pass lets go */
		return;
	}
	int rc = register_events(r, wt, events_for(wt, blocked));
	if (rc < 0)
		r->calls++;
	if (rc < 0 && (wt->want & WATCH_READ)) {
		wt->want &= (uint8_t)~WATCH_READ;
		wt->ops->on_read(wt, NULL, rc);
	} else if (rc < 0 && (wt->want & WATCH_WRITE)) {
		wt->want &= (uint8_t)~WATCH_WRITE;
		wt->ops->on_written(wt, rc);
	} else if (rc < 0 && (wt->want & WATCH_CONNECT)) {
		wt->want &= (uint8_t)~WATCH_CONNECT;
		wt->ops->on_connect(wt, rc);
	} else if (rc < 0 && (wt->want & WATCH_ACCEPT)) {
		wt->ops->on_accept(wt, rc, NULL, 0);
	} else if (rc < 0 && (wt->want & (WATCH_READABLE | WATCH_WRITABLE))) {
		wt->want &= (uint8_t) ~(WATCH_READABLE | WATCH_WRITABLE);
		wt->ops->on_ready(wt, rc);
	}
}

/* Applies every recorded change, those that callbacks record meanwhile included. */
static void apply_changes(struct ep_reactor *r)
{
	struct actor__watcher *wt;
	while ((wt = actor__reactor_take_changes(&r->base)) != NULL) {
		while (wt != NULL) {
			struct actor__watcher *next = wt->next_change;
			wt->queued = false;
			apply(r, wt);
			wt = next;
		}
	}
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 */

static void on_accept_ready(struct actor__watcher *wt)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT && (wt->want & WATCH_ACCEPT) && !wt->closed; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(wt->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			wt->ops->on_accept(wt, fd, (struct sockaddr *)&ss, sl);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR)
			continue;
		int err = errno;
		wt->ops->on_accept(wt, -err, NULL, 0);
		if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
			return; /* the service backs off; trying again now would fail the same way */
	}
}

static void on_connect_ready(struct ep_reactor *r, struct actor__watcher *wt)
{
	int err = 0;
	socklen_t sl = sizeof(err);
	if (getsockopt(wt->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	wt->want &= (uint8_t)~WATCH_CONNECT;
	register_events(r, wt, events_for(wt, false)); /* EPOLLOUT off until output waits */
	wt->ops->on_connect(wt, -err);
}

/* WATCH_READABLE, WATCH_WRITABLE: readiness only, level-triggered; the service does the I/O. */
static void on_readiness(struct actor__watcher *wt, uint32_t events)
{
	int ready = 0;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ready |= wt->want & WATCH_READABLE;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		ready |= wt->want & WATCH_WRITABLE;
	if (ready != 0)
		wt->ops->on_ready(wt, ready);
}

static void on_ready(struct ep_reactor *r, struct actor__watcher *wt, uint32_t events)
{
	if (wt->closed)
		return; /* closed by a callback earlier in this batch: let go at the next apply */
	if (wt->want & (WATCH_READABLE | WATCH_WRITABLE)) {
		on_readiness(wt, events);
		return;
	}
	if (wt->want & WATCH_ACCEPT) {
		on_accept_ready(wt);
		return;
	}
	if (wt->want & WATCH_CONNECT) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connect_ready(r, wt);
		return;
	}
	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && (wt->be_flags & EPOLLOUT)) {
		bool blocked = write_some(r, wt);
		if (wt->closed)
			return;
		if (!blocked)
			register_events(r, wt, events_for(wt, false));
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && (wt->want & WATCH_READ)) {
		/* One read per report: level-triggered epoll reports again if more is waiting,
		 * which keeps one busy connection from starving the others. */
		ssize_t n = recv(wt->fd, r->buf, sizeof(r->buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			n = n < 0 ? -errno : 0;
			wt->want &= (uint8_t)~WATCH_READ;
			register_events(r, wt, events_for(wt, wt->be_flags & EPOLLOUT));
		}
		wt->ops->on_read(wt, r->buf, n);
	}
}

static int ep_wait(struct actor__reactor *base, int64_t timeout_ns)
{
	struct ep_reactor *r = ep(base);
	/* Callbacks run while applying (writes done, closes let go) may have made actors runnable
	 * or queued more changes: the wait that follows does not block then. */
	r->calls = 0;
	apply_changes(r);
	if (r->calls > 0)
		timeout_ns = 0;
	int n;
	if (r->have_pwait2) {
		struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
		n = epoll_pwait2(r->epfd, r->events, EPOLL_BATCH, timeout_ns < 0 ? NULL : &ts,
		                 NULL);
		if (n < 0 && errno == ENOSYS) {
			r->have_pwait2 = false; /* kernels before 5.11 */
			return ep_wait(base, timeout_ns);
		}
	} else {
		/* Millisecond resolution: round up, so a timer is never woken for too early. */
		int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
		n = epoll_wait(r->epfd, r->events, EPOLL_BATCH, ms);
	}
	if (n < 0)
		return errno == EINTR ? (int)r->calls : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t d = r->events[i].data.u64;
		if (d == WAKE_TAG) {
			uint64_t v;
			ssize_t rd = read(base->evfd, &v, sizeof(v));
			(void)rd;
			continue;
		}
		on_ready(r, (struct actor__watcher *)(uintptr_t)d, r->events[i].events);
	}
	return n + (int)r->calls;
}

const struct actor__reactor_ops actor__reactor_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .caps = ep_caps,
    .wait = ep_wait,
};
