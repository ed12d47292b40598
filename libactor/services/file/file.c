/* file.c: the files service: open, read, write, sync, stat and close as one-shot operations
 * whose results come back to the calling actor as ACTOR_MSG_FILE (actor.h, "Files").
 *
 * Two paths, one behaviour. Where the worker's reactor takes one-shot operations (io_uring:
 * reactor.h, struct actor__op), an operation is one submission on the worker's own ring and
 * its completion comes back in the reactor's wait. Otherwise (epoll, or a ring that refused a
 * submission) it is a job on the internal pool "files" (pool.h, actor__pool_call), whose thread
 * makes the blocking call and posts the job back to this worker. Either way the caller's buffer
 * is read or written in place.
 *
 * Order (actor.h): every operation on a file passes through the file's queue, which starts it
 * at once unless a rule holds it back: a write waits for a running sync, an append for the
 * append before it, a sync for the writes before it, a close for everything. The queue is
 * first in, first out: what follows a held operation waits with it. Holding a sync in the
 * service until the writes before it have completed costs one completion's latency; linking
 * them in the ring (IOSQE_IO_LINK) would only order a sync after the one write it is linked
 * to, and IOSQE_IO_DRAIN would order it after every operation of the ring, other files'
 * included.
 *
 * Writes on the pool path (but for O_DIRECT) run one at a time per file, on one pool thread: the
 * file's write runner (below). A write takes the file's inode lock (ext4, XFS), so two threads
 * writing one file take turns anyway, each turn a sleep and a wake-up; the runner instead starts
 * the next write on the thread that finished the last, while its completion goes to the worker.
 * io_uring's own worker threads do the same for buffered writes to one file (hashed work).
 *
 * Lifetime: a file's memory is counted (`refs`): the worker's while the file is open, and one
 * per operation accepted on it. Each operation owns its message from the call on, so that
 * completing cannot fail; an operation whose actor has stopped completes all the same and its
 * message is dropped and counted. At the worker's exit, operations still running on a pool
 * thread finish there or in actor_system_free (op_orphan), and the last reference closes the
 * descriptor.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "reactor/reactor.h"
#include "services/net/net.h"
#include "services/pool/pool.h"

#define FILE_POOL "files"
#define RESULT_NONE INT64_MIN /* a pool job's result before it ran */

struct file;

struct file_op {
	union {
		struct actor__job job; /* the pool path */
		struct actor__op rop;  /* the reactor path */
	};
	struct actor_worker *w;
	struct file *file; /* OPEN: the file it makes */
	struct file_op *next;
	struct actor__mpsc_node wnode; /* in the file's write queue (the write runner) */
	actor_msg_t *msg; /* ACTOR_MSG_FILE, made at the call; NULL: the service's own close */
	actor_ref_t owner;
	uint8_t kind; /* enum actor_file_op */
	bool append;
	bool pooled; /* on the pool path */
	int datasync;
	int flags;
	unsigned mode;
	char *path;
	unsigned char *buf;
	size_t len;
	int64_t offset;
	size_t moved; /* the reactor path: bytes read or written so far */
	union {
		struct stat st;   /* the pool path */
		struct statx stx; /* the reactor path */
	};
};

struct file {
	int fd;
	uint64_t handle;
	actor_ref_t owner;
	struct file_op *head, *tail; /* held back (above) */
	unsigned running, writes, syncs;
	bool appending;
	bool readable; /* opened for reading: actor_file_send may read it */
	bool closed;   /* closing: the handle is gone */
	bool direct;   /* opened with O_DIRECT: its writes do not queue for the runner */
	/* The write runner: pooled writes queue in `wq` (the worker pushes, the runner pops), and
	 * the push that finds it empty-marked hands the consumer's part to a new runner, a job of
	 * the "files" pool that pops and runs writes until it finds the queue empty and marks it
	 * so (mpsc.h). `runner` is that job, one at a time: `runner_out` while it is submitted and
	 * not yet posted back; a push that finds the queue empty meanwhile sets `runner_again`,
	 * and the runner is submitted again when it comes back. Both flags are the worker's. The
	 * runner holds a reference to the file. */
	struct actor__mpsc wq;
	struct actor__job runner;
	bool runner_out, runner_again;
	struct file_op *close_op; /* made with the open, so that closing never lacks memory */
	_Atomic unsigned refs;
	struct file *prev, *next; /* the worker's open files */
};

struct file_worker {
	struct actor__pool *pool;
	struct actor__table files;
	struct file *list;
	uint64_t ops; /* accepted and not yet completed */
};

static struct file_worker *file_worker_of(struct actor_worker *w)
{
	return w->svc[SVC_FILE];
}

static void start_op(struct actor_worker *w, struct file_op *op);
static void runner_done(struct actor_worker *w, struct actor__cmd *cmd);
static void writes_abandon(void *arg);

/* ---------------------------------------------------------------------------------------------
 * Operations and files: memory
 */

static struct file_op *op_new(struct actor_worker *w, actor_ref_t owner, int kind, uint64_t tag)
{
	struct file_op *op = actor__alloc(sizeof(*op));
	if (op == NULL)
		return NULL;
	memset(op, 0, sizeof(*op));
	size_t size = sizeof(actor_msg_t) + sizeof(actor_file_done_t);
	op->msg = actor__msg_alloc(size);
	if (op->msg == NULL) {
		actor__free(op, sizeof(*op));
		return NULL;
	}
	*op->msg = (actor_msg_t){.type = ACTOR_MSG_FILE, .size = sizeof(actor_file_done_t)};
	actor_file_done_t *d = actor_msg_data(op->msg);
	memset(d, 0, sizeof(*d));
	d->tag = tag;
	d->op = kind;
	op->w = w;
	op->owner = owner;
	op->kind = (uint8_t)kind;
	return op;
}

static void op_free(struct file_op *op)
{
	if (op->msg != NULL)
		actor__msg_free(op->msg, actor__msg_bytes(op->msg));
	free(op->path);
	actor__free(op, sizeof(*op));
}

/* Drops one reference; the last closes what is still open and frees the file. Any thread (an
 * orphan's end may run on a pool thread). */
static void file_unref(struct file *f)
{
	/* acq_rel: the last holder sees every other holder's writes to the file. */
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->close_op != NULL)
		op_free(f->close_op);
	actor__free(f, sizeof(*f));
}

static void file_ref(struct file *f)
{
	/* relaxed: the caller holds a reference already. */
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

/* An operation that will never complete to its worker (the service gone, or the pool stopped):
 * what it opened or closed is settled, and its memory freed. `res`: RESULT_NONE if it never
 * ran. */
static void op_orphan(struct file_op *op, int64_t res)
{
	struct file *f = op->file;
	if (op->kind == ACTOR_FILE_OPEN && res >= 0 && res != RESULT_NONE)
		f->fd = (int)res; /* the last reference closes it */
	else if (op->kind == ACTOR_FILE_CLOSE && res != RESULT_NONE)
		f->fd = -1;
	op_free(op);
	if (f != NULL)
		file_unref(f);
}

/* ---------------------------------------------------------------------------------------------
 * The file's queue
 */

static bool may_start(const struct file *f, const struct file_op *op)
{
	switch (op->kind) {
	case ACTOR_FILE_WRITE:
		return f->syncs == 0 && !(op->append && f->appending);
	case ACTOR_FILE_SYNC:
		return f->writes == 0;
	case ACTOR_FILE_CLOSE:
		return f->running == 0;
	default:
		return true;
	}
}

static void run_on_file(struct actor_worker *w, struct file *f, struct file_op *op)
{
	f->running++;
	if (op->kind == ACTOR_FILE_WRITE) {
		f->writes++;
		if (op->append)
			f->appending = true;
	} else if (op->kind == ACTOR_FILE_SYNC) {
		f->syncs++;
	}
	start_op(w, op);
}

/* Starts what the rules allow, from the head. */
static void file_pump(struct actor_worker *w, struct file *f)
{
	while (f->head != NULL && may_start(f, f->head)) {
		struct file_op *op = f->head;
		f->head = op->next;
		if (f->head == NULL)
			f->tail = NULL;
		op->next = NULL;
		run_on_file(w, f, op);
	}
}

/* A new operation on `f`: at once if nothing waits and the rules allow, else queued. */
static void file_submit(struct actor_worker *w, struct file_worker *fw, struct file *f,
                        struct file_op *op)
{
	op->file = f;
	file_ref(f);
	fw->ops++;
	actor__stat_add(&w->st.file_ops, 1);
	if (f->head == NULL && may_start(f, op)) {
		run_on_file(w, f, op);
		return;
	}
	if (f->tail != NULL)
		f->tail->next = op;
	else
		f->head = op;
	f->tail = op;
}

/* An operation on `f` ended (its message sent or dropped). */
static void file_op_ended(struct file *f, const struct file_op *op)
{
	f->running--;
	if (op->kind == ACTOR_FILE_WRITE) {
		f->writes--;
		if (op->append)
			f->appending = false;
	} else if (op->kind == ACTOR_FILE_SYNC) {
		f->syncs--;
	}
}

static void file_unlist(struct actor_worker *w, struct file_worker *fw, struct file *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		fw->list = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	actor__stat_add(&w->st.files, (uint64_t)-1);
}

/* Operations held back that will never run: their messages are dropped and counted. */
static void drop_held(struct actor_worker *w, struct file_worker *fw, struct file *f)
{
	while (f->head != NULL) {
		struct file_op *op = f->head;
		f->head = op->next;
		fw->ops--;
		actor__stat_add(&w->st.file_ops, (uint64_t)-1);
		actor__stat_add(&w->st.file_ops_dropped, 1);
		op_free(op);
		file_unref(f);
	}
	f->tail = NULL;
}

/* Closes `f` from the service's side (its owner stopped, or it opened for an owner gone): what
 * is held is dropped, what runs finishes, then the close runs, with no message. */
static void file_close_quietly(struct actor_worker *w, struct file_worker *fw, struct file *f)
{
	f->closed = true;
	actor__table_del(&fw->files, (uint32_t)f->handle);
	drop_held(w, fw, f);
	struct file_op *op = f->close_op;
	f->close_op = NULL;
	actor__msg_free(op->msg, actor__msg_bytes(op->msg));
	op->msg = NULL;
	file_submit(w, fw, f, op);
}

/* ---------------------------------------------------------------------------------------------
 * Completion
 */

static void stat_from_statx(struct stat *st, const struct statx *x)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x->stx_dev_major, x->stx_dev_minor);
	st->st_ino = x->stx_ino;
	st->st_mode = x->stx_mode;
	st->st_nlink = x->stx_nlink;
	st->st_uid = x->stx_uid;
	st->st_gid = x->stx_gid;
	st->st_rdev = makedev(x->stx_rdev_major, x->stx_rdev_minor);
	st->st_size = (off_t)x->stx_size;
	st->st_blksize = (blksize_t)x->stx_blksize;
	st->st_blocks = (blkcnt_t)x->stx_blocks;
	st->st_atim = (struct timespec){x->stx_atime.tv_sec, x->stx_atime.tv_nsec};
	st->st_mtim = (struct timespec){x->stx_mtime.tv_sec, x->stx_mtime.tv_nsec};
	st->st_ctim = (struct timespec){x->stx_ctime.tv_sec, x->stx_ctime.tv_nsec};
}

/* An open that succeeded: the file gets its handle, or, with no memory for one, is closed. */
static int64_t opened(struct actor_worker *w, struct file_worker *fw, struct file_op *op, int fd)
{
	struct file *f = op->file;
	f->fd = fd;
	int64_t idx = actor__table_put(&fw->files, f);
	if (idx < 0)
		return idx; /* the op's reference, the last, closes it */
	f->handle = actor__table_handle(&fw->files, w->index, (uint32_t)idx);
	f->owner = op->owner;
	f->readable = (op->flags & O_ACCMODE) != O_WRONLY && !(op->flags & O_PATH);
	f->direct = (op->flags & O_DIRECT) != 0;
	file_ref(f); /* the worker's */
	f->next = fw->list;
	if (fw->list != NULL)
		fw->list->prev = f;
	fw->list = f;
	actor__stat_add(&w->st.files, 1);
	((actor_file_done_t *)actor_msg_data(op->msg))->file.id = f->handle;
	return 0;
}

/* Sends the operation's message, or drops it (the owner stopped): false then. */
static bool op_send(struct actor_worker *w, struct file_op *op, int64_t res)
{
	if (op->msg == NULL)
		return true;
	actor_file_done_t *d = actor_msg_data(op->msg);
	d->result = res;
	if (op->kind != ACTOR_FILE_OPEN && op->file != NULL)
		d->file.id = op->file->handle;
	if (op->kind == ACTOR_FILE_READ || op->kind == ACTOR_FILE_WRITE)
		d->buf = op->buf;
	if (op->kind == ACTOR_FILE_STAT && res == 0) {
		if (op->pooled)
			d->st = op->st;
		else
			stat_from_statx(&d->st, &op->stx);
	}
	actor_msg_t *m = op->msg;
	op->msg = NULL;
	if (actor__send_internal_msg(w->sys, op->owner, m) == 0)
		return true;
	actor__msg_free(m, actor__msg_bytes(m));
	actor__stat_add(&w->st.file_ops_dropped, 1);
	return false;
}

/* On the worker, with the service's state: the operation ended with `res`. */
static void op_complete(struct actor_worker *w, struct file_worker *fw, struct file_op *op,
                        int64_t res)
{
	struct file *f = op->file;
	fw->ops--;
	actor__stat_add(&w->st.file_ops, (uint64_t)-1);
	if (op->kind == ACTOR_FILE_OPEN) {
		if (res >= 0)
			res = opened(w, fw, op, (int)res);
		if (!op_send(w, op, res) && res == 0)
			file_close_quietly(w, fw, f); /* nobody to own it */
		op_free(op);
		file_unref(f);
		return;
	}
	if (op->kind == ACTOR_FILE_CLOSE)
		f->fd = -1; /* closed, whatever close said */
	op_send(w, op, res);
	file_op_ended(f, op);
	if (op->kind == ACTOR_FILE_CLOSE) {
		file_unlist(w, fw, f);
		file_unref(f); /* the worker's */
	} else {
		file_pump(w, f);
	}
	op_free(op);
	file_unref(f);
}

/* ---------------------------------------------------------------------------------------------
 * The pool path
 */

static int64_t neg_errno(void)
{
	return -(int64_t)errno;
}

static int64_t run_rw(struct file_op *op)
{
	int fd = op->file->fd;
	size_t done = 0;
	while (done < op->len) {
		ssize_t n;
		if (op->kind == ACTOR_FILE_READ)
			n = pread(fd, op->buf + done, op->len - done, op->offset + (off_t)done);
		else if (op->append)
			n = write(fd, op->buf + done, op->len - done);
		else
			n = pwrite(fd, op->buf + done, op->len - done, op->offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done > 0 ? (int64_t)done : neg_errno();
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int64_t)done;
}

/* On a thread of the "files" pool: the blocking call. */
static int64_t run_blocking(void *arg)
{
	struct file_op *op = arg;
	int rc;
	switch (op->kind) {
	case ACTOR_FILE_OPEN:
		rc = open(op->path, op->flags | O_CLOEXEC, op->mode);
		return rc >= 0 ? rc : neg_errno();
	case ACTOR_FILE_READ:
	case ACTOR_FILE_WRITE:
		return run_rw(op);
	case ACTOR_FILE_SYNC:
		rc = op->datasync ? fdatasync(op->file->fd) : fsync(op->file->fd);
		return rc == 0 ? 0 : neg_errno();
	case ACTOR_FILE_STAT:
		return fstat(op->file->fd, &op->st) == 0 ? 0 : neg_errno();
	case ACTOR_FILE_CLOSE:
		/* Linux closes the descriptor even when close says EINTR. */
		return close(op->file->fd) == 0 || errno == EINTR ? 0 : neg_errno();
	default:
		return -EINVAL;
	}
}

/* Posted back by the pool thread (pool.h). */
static void pool_done(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct file_op *op = (struct file_op *)((char *)cmd - offsetof(struct file_op, job.cmd));
	struct file_worker *fw = file_worker_of(w);
	if (fw == NULL)
		op_orphan(op, op->job.result); /* the worker has exited */
	else
		op_complete(w, fw, op, op->job.result);
}

/* The pool stopped before it could post the job back. */
static void pool_drop(void *arg)
{
	struct file_op *op = arg;
	op_orphan(op, op->job.result);
}

/* ---------------------------------------------------------------------------------------------
 * The write runner (see the top of the file and struct file)
 */

static struct file_op *op_of_wnode(struct actor__mpsc_node *n)
{
	return (struct file_op *)((char *)n - offsetof(struct file_op, wnode));
}

/* The queue's consumer, with no producer left (the workers have exited): its writes will never
 * run, and end as orphans. */
static void writes_orphan(struct file *f)
{
	struct actor__mpsc_node *n;
	while ((n = actor__mpsc_pop(&f->wq)) != NULL)
		op_orphan(op_of_wnode(n), RESULT_NONE);
}

/* On a pool thread, as the queue's consumer: runs the queued writes in order, posting each
 * back as it ends, until the queue is empty and marked so. */
static int64_t run_writes(void *arg)
{
	struct file *f = arg;
	for (;;) {
		struct actor__mpsc_node *n = actor__mpsc_pop(&f->wq);
		if (n == NULL) {
			if (actor__mpsc_mark_empty(&f->wq))
				return 0; /* the next push hands the queue on */
			sched_yield();    /* a push is in progress: let its thread finish it */
			continue;
		}
		struct file_op *op = op_of_wnode(n);
		op->job.result = run_rw(op);
		if (!actor__pool_post(f->runner.pool, op->w, &op->job.cmd)) {
			op_orphan(op, op->job.result); /* the system is being freed */
			writes_orphan(f);
			return 0;
		}
	}
}

static void runner_start(struct actor_worker *w, struct file *f)
{
	f->runner_out = true;
	memset(&f->runner, 0, sizeof(f->runner));
	f->runner.fn = run_writes;
	f->runner.arg = f;
	f->runner.drop = writes_abandon;
	f->runner.cmd.fn = runner_done;
	actor__pool_call(w, file_worker_of(w)->pool, &f->runner);
}

/* Posted back once the runner has marked the queue empty (or orphaned what it held). */
static void runner_done(struct actor_worker *w, struct actor__cmd *cmd)
{
	struct file *f = (struct file *)((char *)cmd - offsetof(struct file, runner.cmd));
	f->runner_out = false;
	if (f->runner_again) {
		f->runner_again = false;
		if (file_worker_of(w) != NULL) {
			runner_start(w, f); /* it keeps the reference */
			return;
		}
		writes_orphan(f); /* the worker has exited: nobody pushes any more */
	}
	file_unref(f);
}

/* The runner will not be posted back: the pool stopped (before it ran, or after it orphaned
 * its writes). The workers have exited, so nothing else pushes. */
static void writes_abandon(void *arg)
{
	struct file *f = arg;
	writes_orphan(f);
	file_unref(f);
}

/* On the worker: queues a pooled write for the file's runner, starting one if the queue was
 * idle. */
static void writes_push(struct actor_worker *w, struct file *f, struct file_op *op)
{
	if (actor__mpsc_push(&f->wq, &op->wnode) != MPSC_EMPTY)
		return; /* the runner will pop it */
	if (f->runner_out) {
		f->runner_again = true; /* the last runner is on its way back */
		return;
	}
	file_ref(f); /* the runner's */
	runner_start(w, f);
}

static void start_pooled(struct actor_worker *w, struct file_op *op)
{
	op->pooled = true;
	memset(&op->job, 0, sizeof(op->job));
	op->job.fn = run_blocking;
	op->job.arg = op;
	op->job.drop = pool_drop;
	op->job.result = RESULT_NONE;
	op->job.cmd.fn = pool_done;
	if (op->kind == ACTOR_FILE_WRITE && !op->file->direct) {
		op->job.w = w;
		writes_push(w, op->file, op);
		return;
	}
	actor__pool_call(w, file_worker_of(w)->pool, &op->job);
}

/* ---------------------------------------------------------------------------------------------
 * The reactor path
 */

static struct file_op *op_of_rop(struct actor__op *rop)
{
	return (struct file_op *)((char *)rop - offsetof(struct file_op, rop));
}

static void fill_rop(struct file_op *op)
{
	struct actor__op *r = &op->rop;
	*r = (struct actor__op){.fd = op->file != NULL ? op->file->fd : -1};
	switch (op->kind) {
	case ACTOR_FILE_OPEN:
		r->kind = REACTOR_OP_OPEN;
		r->path = op->path;
		r->flags = op->flags | O_CLOEXEC;
		r->mode = op->mode;
		break;
	case ACTOR_FILE_READ:
	case ACTOR_FILE_WRITE:
		r->kind = op->kind == ACTOR_FILE_READ ? REACTOR_OP_READ : REACTOR_OP_WRITE;
		r->buf = op->buf + op->moved;
		r->len = (uint32_t)(op->len - op->moved);
		r->offset = op->append ? REACTOR_OP_AT_POSITION : (uint64_t)op->offset + op->moved;
		break;
	case ACTOR_FILE_SYNC:
		r->kind = REACTOR_OP_FSYNC;
		r->flags = op->datasync ? REACTOR_OP_DATASYNC : 0;
		break;
	case ACTOR_FILE_STAT:
		r->kind = REACTOR_OP_STATX;
		r->buf = &op->stx;
		break;
	case ACTOR_FILE_CLOSE:
		r->kind = REACTOR_OP_CLOSE;
		break;
	}
}

static void reactor_done(struct actor__op *rop, int64_t res);

static int submit_rop(struct actor_worker *w, struct file_op *op)
{
	fill_rop(op);
	op->rop.done = reactor_done;
	return w->reactor->ops->submit(w->reactor, &op->rop);
}

/* From the reactor's wait. A read or write that moved fewer bytes than asked goes on from
 * there, so that a short count means the end of the file (or a full disk). */
static void reactor_done(struct actor__op *rop, int64_t res)
{
	struct file_op *op = op_of_rop(rop);
	struct actor_worker *w = op->w;
	bool rw = op->kind == ACTOR_FILE_READ || op->kind == ACTOR_FILE_WRITE;
	if (rw && res > 0) {
		op->moved += (size_t)res;
		if (op->moved < op->len && submit_rop(w, op) == 0)
			return;
	}
	if (rw && (res >= 0 || op->moved > 0))
		res = (int64_t)op->moved;
	op_complete(w, file_worker_of(w), op, res);
}

static void start_op(struct actor_worker *w, struct file_op *op)
{
	if (w->reactor != NULL && w->reactor->ops->submit != NULL && submit_rop(w, op) == 0)
		return;
	start_pooled(w, op);
}

/* ---------------------------------------------------------------------------------------------
 * The calls
 */

/* The caller's worker and its file named by `file`, owned by the caller. */
static int file_of(actor_ctx_t *ctx, actor_file_t file, struct actor_worker **wp, struct file **fp)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (file.id == 0)
		return -EBADF;
	if (actor__handle_worker(file.id) != w->index)
		return -EXDEV;
	struct file *f = actor__table_get(&file_worker_of(w)->files, file.id);
	if (f == NULL)
		return -EBADF;
	if (!actor_ref_eq(f->owner, ctx->actor->ref))
		return -EPERM;
	*wp = w;
	*fp = f;
	return 0;
}

int actor_file_open(actor_ctx_t *ctx, const char *path, int flags, unsigned mode, uint64_t tag)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || path == NULL)
		return -EINVAL;
	/* relaxed: a hint, as in actor_job_submit. */
	if (atomic_load_explicit(&w->sys->shutdown, memory_order_relaxed))
		return -ESHUTDOWN;
	struct file_worker *fw = file_worker_of(w);
	struct file_op *op = op_new(w, ctx->actor->ref, ACTOR_FILE_OPEN, tag);
	struct file *f = actor__alloc(sizeof(*f));
	struct file_op *close_op = op_new(w, ctx->actor->ref, ACTOR_FILE_CLOSE, 0);
	char *copy = strdup(path);
	if (op == NULL || f == NULL || close_op == NULL || copy == NULL) {
		if (op != NULL)
			op_free(op);
		if (close_op != NULL)
			op_free(close_op);
		if (f != NULL)
			actor__free(f, sizeof(*f));
		free(copy);
		return -ENOMEM;
	}
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	actor__mpsc_init(&f->wq);
	f->close_op = close_op;
	atomic_init(&f->refs, 1); /* the open's */
	op->file = f;
	op->path = copy;
	op->flags = flags;
	op->mode = mode;
	actor__svc_hold(ctx->actor, SVC_BIT_FILE);
	fw->ops++;
	actor__stat_add(&w->st.file_ops, 1);
	start_op(w, op);
	return 0;
}

static int rw_call(actor_ctx_t *ctx, actor_file_t file, int kind, void *buf, size_t len,
                   int64_t offset, uint64_t tag)
{
	if ((buf == NULL && len > 0) || len > ACTOR_FILE_IO_MAX)
		return -EINVAL;
	bool append = kind == ACTOR_FILE_WRITE && offset == ACTOR_FILE_APPEND;
	if (offset < 0 && !append)
		return -EINVAL;
	struct actor_worker *w;
	struct file *f;
	int rc = file_of(ctx, file, &w, &f);
	if (rc < 0)
		return rc;
	struct file_op *op = op_new(w, ctx->actor->ref, kind, tag);
	if (op == NULL)
		return -ENOMEM;
	op->buf = buf;
	op->len = len;
	op->offset = offset;
	op->append = append;
	file_submit(w, file_worker_of(w), f, op);
	return 0;
}

int actor_file_read(actor_ctx_t *ctx, actor_file_t file, void *buf, size_t len, int64_t offset,
                    uint64_t tag)
{
	return rw_call(ctx, file, ACTOR_FILE_READ, buf, len, offset, tag);
}

int actor_file_write(actor_ctx_t *ctx, actor_file_t file, const void *buf, size_t len,
                     int64_t offset, uint64_t tag)
{
	return rw_call(ctx, file, ACTOR_FILE_WRITE, (void *)buf, len, offset, tag);
}

/* A send's segment left the connection's queue (net.h, struct actor__outseg). */
static void send_done(void *arg, int64_t res)
{
	struct file_op *op = arg;
	op_complete(op->w, file_worker_of(op->w), op, res);
}

/* A send bypasses the file's queue (it reads; no rule holds it back) but counts as running,
 * so that a close waits for it and the descriptor stays open under the connection's queue. An
 * empty one is checked as any other, connection included, and answered at once. */
int actor_file_send(actor_ctx_t *ctx, actor_file_t file, int64_t offset, size_t len,
                    actor_conn_t conn, uint64_t tag)
{
	if (offset < 0 || len > ACTOR_FILE_IO_MAX || offset > INT64_MAX - (int64_t)len)
		return -EINVAL;
	struct actor_worker *w;
	struct file *f;
	int rc = file_of(ctx, file, &w, &f);
	if (rc < 0)
		return rc;
	if (!f->readable)
		return -EBADF; /* what reading it would say, but before the connection is touched */
	struct file_worker *fw = file_worker_of(w);
	struct file_op *op = op_new(w, ctx->actor->ref, ACTOR_FILE_SEND, tag);
	if (op == NULL)
		return -ENOMEM;
	op->file = f;
	op->offset = offset;
	op->len = len;
	struct actor__outseg seg = {.fd = f->fd, .offset = offset, .done = send_done, .arg = op};
	rc = actor__tcp_queue_seg(ctx, conn, &seg, (uint32_t)len);
	if (rc < 0) {
		op_free(op);
		return rc;
	}
	file_ref(f);
	fw->ops++;
	actor__stat_add(&w->st.file_ops, 1);
	f->running++;
	if (len == 0)
		op_complete(w, fw, op, 0);
	return 0;
}

static int simple_call(actor_ctx_t *ctx, actor_file_t file, int kind, int datasync, uint64_t tag)
{
	struct actor_worker *w;
	struct file *f;
	int rc = file_of(ctx, file, &w, &f);
	if (rc < 0)
		return rc;
	struct file_op *op = op_new(w, ctx->actor->ref, kind, tag);
	if (op == NULL)
		return -ENOMEM;
	op->datasync = datasync;
	file_submit(w, file_worker_of(w), f, op);
	return 0;
}

int actor_file_sync(actor_ctx_t *ctx, actor_file_t file, int datasync, uint64_t tag)
{
	return simple_call(ctx, file, ACTOR_FILE_SYNC, datasync != 0, tag);
}

int actor_file_stat(actor_ctx_t *ctx, actor_file_t file, uint64_t tag)
{
	return simple_call(ctx, file, ACTOR_FILE_STAT, 0, tag);
}

int actor_file_close(actor_ctx_t *ctx, actor_file_t file, uint64_t tag)
{
	struct actor_worker *w;
	struct file *f;
	int rc = file_of(ctx, file, &w, &f);
	if (rc < 0)
		return rc;
	struct file_worker *fw = file_worker_of(w);
	struct file_op *op = f->close_op;
	f->close_op = NULL;
	f->closed = true;
	((actor_file_done_t *)actor_msg_data(op->msg))->tag = tag;
	actor__table_del(&fw->files, (uint32_t)f->handle);
	file_submit(w, fw, f, op);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */

static int file_sys_init(actor_system_t *sys, const actor_config_t *cfg, void **shared)
{
	(void)cfg;
	*shared = NULL;
	return actor_pool_create(sys, FILE_POOL, ACTOR_FILE_THREADS);
}

static int file_init(struct actor_worker *w, void **state)
{
	struct file_worker *fw = calloc(1, sizeof(*fw));
	if (fw == NULL)
		return -ENOMEM;
	fw->pool = actor__pool_find(w->sys->svc_shared[SVC_POOL], FILE_POOL);
	*state = fw;
	return 0;
}

/* The worker is exiting, its actors all stopped (their files closing). Operations on its ring
 * are waited for (the kernel may still use their memory); those on pool threads end as
 * orphans (op_orphan), and the last reference to each file closes it. */
static void file_fini(struct actor_worker *w, void *state)
{
	struct file_worker *fw = state;
	if (w->reactor != NULL && fw->ops > 0)
		actor__reactor_settle(w->reactor);
	while (fw->list != NULL) {
		struct file *f = fw->list;
		drop_held(w, fw, f);
		file_unlist(w, fw, f);
		file_unref(f); /* the worker's */
	}
	actor__table_free(&fw->files);
	free(fw);
}

static bool file_draining(const struct actor_worker *w, const void *state)
{
	(void)w;
	const struct file_worker *fw = state;
	return fw->ops > 0;
}

/* `a` stopped: its files close (above). */
static void file_owner_stopped(struct actor_worker *w, void *state, struct actor *a)
{
	struct file_worker *fw = state;
	struct file *next;
	for (struct file *f = fw->list; f != NULL; f = next) {
		next = f->next;
		if (!f->closed && actor_ref_eq(f->owner, a->ref))
			file_close_quietly(w, fw, f);
	}
}

const struct actor__service_ops actor__file_service = {
    .name = "file",
    .id = SVC_FILE,
    .blocks = {0x04},
    .actor_bits = SVC_BIT_FILE,
    .sys_init = file_sys_init,
    .init = file_init,
    .fini = file_fini,
    .draining = file_draining,
    .owner_stopped = file_owner_stopped,
};
