/* fake_reactor.c: the scripted reactor backend of fake_reactor.h. One system at a time (the
 * tests run each case in its own process). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_reactor.h"

#define FAKE_FDS 4096
#define STEP_TIMEOUT_S 20

enum step_kind {
	STEP_ACCEPT,
	STEP_ACCEPT_ERROR,
	STEP_READ,
	STEP_READ_END,
	STEP_WRITE_ERROR,
	STEP_BLOCK,
	STEP_DRAIN,
	STEP_HOLD,
	STEP_RELEASE,
};

struct step {
	enum step_kind kind;
	int fd;
	const void *data;
	size_t len;
	int err;
	int result;
	bool done;
	struct step *next;
};

struct fd_entry {
	struct actor__watcher *wt; /* NULL: not watched (never seen, or let go) */
	int want;                  /* -1: never seen */
	bool listener;
	bool blocked;        /* writes wait for fake_drain */
	bool held;           /* an operation in flight holds the watcher */
	bool close_waiting;  /* closed while held */
	bool let_go;
	unsigned char *sent;
	size_t sent_len;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct step *steps, **steps_tail;
	int evfd;
	struct fd_entry fds[FAKE_FDS];
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

struct fake_reactor {
	struct actor__reactor base;
};

/* ---------------------------------------------------------------------------------------------
 * The worker's side
 */

static struct fd_entry *entry(int fd)
{
	return fd >= 0 && fd < FAKE_FDS ? &F.fds[fd] : NULL;
}

static void note_want(struct actor__watcher *wt)
{
	struct fd_entry *e = entry(wt->fd);
	if (e == NULL)
		return;
	pthread_mutex_lock(&F.mu);
	e->wt = wt;
	e->want = wt->want;
	if (wt->want & WATCH_ACCEPT)
		e->listener = true;
	pthread_cond_broadcast(&F.cv);
	pthread_mutex_unlock(&F.mu);
}

static void record_sent(int fd, const struct iovec *iov, int n, size_t max, size_t *took)
{
	struct fd_entry *e = entry(fd);
	size_t total = 0;
	for (int i = 0; i < n && total < max; i++) {
		size_t k = iov[i].iov_len < max - total ? iov[i].iov_len : max - total;
		pthread_mutex_lock(&F.mu);
		unsigned char *s = realloc(e->sent, e->sent_len + k);
		if (s != NULL) {
			memcpy(s + e->sent_len, iov[i].iov_base, k);
			e->sent = s;
			e->sent_len += k;
		}
		pthread_mutex_unlock(&F.mu);
		total += k;
	}
	*took = total;
}

/* Writes complete at once unless the descriptor is blocked. */
static void write_all(struct actor__watcher *wt)
{
	struct fd_entry *e = entry(wt->fd);
	while ((wt->want & WATCH_WRITE) && !wt->closed && !e->blocked) {
		struct iovec iov[8];
		int n = wt->ops->out_iov(wt, iov, 8);
		if (n <= 0)
			return;
		size_t took;
		record_sent(wt->fd, iov, n, SIZE_MAX, &took);
		wt->ops->on_written(wt, (ssize_t)took);
	}
}

static void let_go(struct actor__reactor *r, struct actor__watcher *wt)
{
	struct fd_entry *e = entry(wt->fd);
	pthread_mutex_lock(&F.mu);
	e->wt = NULL;
	e->let_go = true;
	e->close_waiting = false;
	pthread_cond_broadcast(&F.cv);
	pthread_mutex_unlock(&F.mu);
	actor__reactor_closed(r, wt);
}

static void apply_changes(struct actor__reactor *r)
{
	struct actor__watcher *wt;
	while ((wt = actor__reactor_take_changes(r)) != NULL) {
		while (wt != NULL) {
			struct actor__watcher *next = wt->next_change;
			wt->queued = false;
			if (wt->closed) {
				if (entry(wt->fd)->held)
					entry(wt->fd)->close_waiting = true;
				else
					let_go(r, wt);
			} else {
				note_want(wt);
				write_all(wt);
			}
			wt = next;
		}
	}
}

static int run_step(struct actor__reactor *r, struct step *s)
{
	struct fd_entry *e = entry(s->fd);
	if (e == NULL)
		return -EBADF;
	struct actor__watcher *wt = e->wt;
	if (s->kind == STEP_BLOCK || s->kind == STEP_HOLD) {
		bool *flag = s->kind == STEP_BLOCK ? &e->blocked : &e->held;
		*flag = true;
		return 0;
	}
	if (s->kind == STEP_RELEASE) {
		e->held = false;
		if (e->close_waiting && wt != NULL)
			let_go(r, wt);
		return 0;
	}
	if (wt == NULL || wt->closed)
		return -ENOENT;
	switch (s->kind) {
	case STEP_ACCEPT: {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct fd_entry *ne = entry(fd);
		if (ne == NULL)
			return fd < 0 ? -errno : -EMFILE;
		pthread_mutex_lock(&F.mu);
		free(ne->sent);
		*ne = (struct fd_entry){.want = -1};
		pthread_mutex_unlock(&F.mu);
		wt->ops->on_accept(wt, fd, NULL, 0);
		return fd;
	}
	case STEP_ACCEPT_ERROR:
		wt->ops->on_accept(wt, s->err, NULL, 0);
		return 0;
	case STEP_READ:
		wt->ops->on_read(wt, s->data, (ssize_t)s->len);
		return 0;
	case STEP_READ_END:
		wt->want &= (uint8_t)~WATCH_READ;
		wt->ops->on_read(wt, NULL, s->err);
		return 0;
	case STEP_WRITE_ERROR:
		wt->want &= (uint8_t)~WATCH_WRITE;
		wt->ops->on_written(wt, s->err);
		return 0;
	case STEP_DRAIN: {
		struct iovec iov[8];
		int n = (wt->want & WATCH_WRITE) ? wt->ops->out_iov(wt, iov, 8) : 0;
		size_t took = 0;
		if (n > 0)
			record_sent(wt->fd, iov, n, s->len, &took);
		if (took > 0)
			wt->ops->on_written(wt, (ssize_t)took);
		return (int)took;
	}
	default:
		return -EINVAL;
	}
}

/* Runs the steps queued so far; how many. */
static int run_steps(struct actor__reactor *r)
{
	pthread_mutex_lock(&F.mu);
	struct step *list = F.steps;
	F.steps = NULL;
	F.steps_tail = &F.steps;
	pthread_mutex_unlock(&F.mu);
	int n = 0;
	while (list != NULL) {
		struct step *next = list->next;
		int rc = run_step(r, list);
		apply_changes(r); /* what the step changed, before the test looks */
		pthread_mutex_lock(&F.mu);
		list->result = rc;
		list->done = true;
		pthread_cond_broadcast(&F.cv);
		pthread_mutex_unlock(&F.mu);
		list = next;
		n++;
	}
	return n;
}

static int fake_init(int evfd, int uring_level, struct actor__reactor **out)
{
	(void)uring_level;
	struct fake_reactor *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->base.ops = &fake_reactor_ops;
	r->base.evfd = evfd;
	pthread_mutex_lock(&F.mu);
	F.evfd = evfd;
	pthread_mutex_unlock(&F.mu);
	*out = &r->base;
	return 0;
}

static void fake_fini(struct actor__reactor *r)
{
	free(r);
}

static unsigned fake_caps(const struct actor__reactor *r)
{
	(void)r;
	return 0;
}

static int fake_wait(struct actor__reactor *r, int64_t timeout_ns)
{
	apply_changes(r);
	int n = run_steps(r);
	if (n > 0 || timeout_ns == 0)
		return n;
	struct pollfd p = {.fd = r->evfd, .events = POLLIN};
	int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
	if (poll(&p, 1, ms) > 0) {
		uint64_t v;
		ssize_t rd = read(r->evfd, &v, sizeof(v));
		(void)rd;
	}
	return run_steps(r);
}

const struct actor__reactor_ops fake_reactor_ops = {
    .name = "fake",
    .init = fake_init,
    .fini = fake_fini,
    .caps = fake_caps,
    .wait = fake_wait,
};

void fake_install(void)
{
	for (int i = 0; i < FAKE_FDS; i++)
		F.fds[i].want = -1;
	F.steps_tail = &F.steps;
	actor__reactor_override = &fake_reactor_ops;
}

/* ---------------------------------------------------------------------------------------------
 * The test's side
 */

static void deadline_in(struct timespec *ts, int s)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += s;
}

static int run(enum step_kind kind, int fd, const void *data, size_t len, int err)
{
	struct step s = {.kind = kind, .fd = fd, .data = data, .len = len, .err = err};
	struct timespec until;
	deadline_in(&until, STEP_TIMEOUT_S);
	pthread_mutex_lock(&F.mu);
	*F.steps_tail = &s;
	F.steps_tail = &s.next;
	int evfd = F.evfd;
	pthread_mutex_unlock(&F.mu);
	uint64_t one = 1;
	ssize_t wr = write(evfd, &one, sizeof(one)); /* wakes the worker, as any waker does */
	(void)wr;
	pthread_mutex_lock(&F.mu);
	int rc = 0;
	while (!s.done && rc == 0)
		rc = pthread_cond_timedwait(&F.cv, &F.mu, &until);
	bool done = s.done;
	pthread_mutex_unlock(&F.mu);
	if (!done)
		abort(); /* the step is still queued and points into this frame: fail loudly */
	return s.result;
}

int fake_accept(int listen_fd)
{
	return run(STEP_ACCEPT, listen_fd, NULL, 0, 0);
}
int fake_accept_error(int listen_fd, int err)
{
	return run(STEP_ACCEPT_ERROR, listen_fd, NULL, 0, err);
}
int fake_read(int fd, const void *data, size_t len)
{
	return run(STEP_READ, fd, data, len, 0);
}
int fake_read_end(int fd, int err)
{
	return run(STEP_READ_END, fd, NULL, 0, err);
}
int fake_write_error(int fd, int err)
{
	return run(STEP_WRITE_ERROR, fd, NULL, 0, err);
}
int fake_block(int fd)
{
	return run(STEP_BLOCK, fd, NULL, 0, 0);
}
int fake_drain(int fd, size_t max)
{
	return run(STEP_DRAIN, fd, NULL, max, 0);
}
int fake_hold(int fd)
{
	return run(STEP_HOLD, fd, NULL, 0, 0);
}
int fake_release(int fd)
{
	return run(STEP_RELEASE, fd, NULL, 0, 0);
}

int fake_want(int fd)
{
	pthread_mutex_lock(&F.mu);
	int w = entry(fd) != NULL ? entry(fd)->want : -1;
	pthread_mutex_unlock(&F.mu);
	return w;
}

static bool wait_until(bool (*cond)(int fd, int arg), int fd, int arg)
{
	struct timespec until;
	deadline_in(&until, STEP_TIMEOUT_S);
	pthread_mutex_lock(&F.mu);
	int rc = 0;
	bool ok;
	while (!(ok = cond(fd, arg)) && rc == 0)
		rc = pthread_cond_timedwait(&F.cv, &F.mu, &until);
	pthread_mutex_unlock(&F.mu);
	return ok;
}

static bool want_is(int fd, int want)
{
	return entry(fd) != NULL && entry(fd)->want == want;
}

bool fake_wait_want(int fd, int want)
{
	return wait_until(want_is, fd, want);
}

static bool is_let_go(int fd, int unused)
{
	(void)unused;
	return entry(fd) != NULL && entry(fd)->let_go;
}

bool fake_let_go(int fd)
{
	pthread_mutex_lock(&F.mu);
	bool r = is_let_go(fd, 0);
	pthread_mutex_unlock(&F.mu);
	return r;
}

bool fake_wait_let_go(int fd)
{
	return wait_until(is_let_go, fd, 0);
}

size_t fake_sent(int fd, void *buf, size_t cap)
{
	pthread_mutex_lock(&F.mu);
	struct fd_entry *e = entry(fd);
	size_t n = e != NULL ? e->sent_len : 0;
	if (e != NULL && buf != NULL)
		memcpy(buf, e->sent, n < cap ? n : cap);
	pthread_mutex_unlock(&F.mu);
	return n;
}

int fake_listener(void)
{
	pthread_mutex_lock(&F.mu);
	int fd = -1;
	for (int i = 0; i < FAKE_FDS && fd < 0; i++) {
		if (F.fds[i].listener && F.fds[i].wt != NULL)
			fd = i;
	}
	pthread_mutex_unlock(&F.mu);
	return fd;
}
