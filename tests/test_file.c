/* test_file.c: the files service through the public API, on every reactor backend (backend.h):
 * each operation and its errors (a missing file, permission, a closed handle, EBADF, short
 * reads at the end of a file), the order rules (appends, a sync after its writes, a close after
 * everything), 32 reads in flight at once, the handle's owner and worker, and an owner that
 * stops or a system that shuts down with operations in flight (everything accounted for).
 * Sending a file on a connection (actor_file_send) has a suite of its own: test_file_send.c.
 *
 * Each case is one actor that drives a script: it starts operations and checks each
 * ACTOR_MSG_FILE as it comes, noting failures for the test thread (backend.h).
 */
#include "common.h"

#include <stdarg.h>

#include "backend.h"
#include "file_common.h"

enum { MSG_GO = 1 };

static uint64_t stat_sum(actor_system_t *sys, size_t offset)
{
	uint64_t sum = 0;
	for (unsigned w = 0; w < actor_system_workers(sys); w++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, w, &st), 0);
		sum += *(const uint64_t *)((const char *)&st + offset);
	}
	return sum;
}
#define files_open(sys) stat_sum(sys, offsetof(actor_worker_stats_t, files))
#define file_ops(sys) stat_sum(sys, offsetof(actor_worker_stats_t, file_ops))
#define file_ops_dropped(sys) stat_sum(sys, offsetof(actor_worker_stats_t, file_ops_dropped))

/* Runs one script actor on a system of `workers` to its end; the script exits by itself. */
static actor_system_t *run_script(unsigned workers, actor_behavior_fn *fn, void *state,
                                  const char *what)
{
	actor_system_t *sys = backend_system(workers);
	actor_ref_t a = spawn_on(sys, 0, fn, state);
	send_ok(sys, a, MSG_GO, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, what);
	return sys;
}

/* ---------------------------------------------------------------------------------------------
 * Every operation once, and a short read at the end of the file
 */

struct round_trip {
	int step;
	actor_file_t f;
	char buf[64];
	int ended;
};

static void round_trip_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct round_trip *s = state;
	if (msg->type == MSG_GO) {
		CALL_OK(
		    actor_file_open(ctx, path_in_dir("rt"), O_CREAT | O_RDWR | O_TRUNC, 0644, 1));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL) {
		actor_exit(ctx, 0);
		return;
	}
	EXPECT(d->tag == (uint64_t)s->step + 1, "step %d: tag %" PRIu64, s->step, d->tag);
	switch (s->step++) {
	case 0:
		EXPECT(d->op == ACTOR_FILE_OPEN && d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		CALL_OK(actor_file_write(ctx, s->f, "hello, files", 12, 0, 2));
		break;
	case 1:
		EXPECT(d->op == ACTOR_FILE_WRITE && d->result == 12, "write: %" PRId64, d->result);
		CALL_OK(actor_file_sync(ctx, s->f, 0, 3));
		break;
	case 2:
		EXPECT(d->op == ACTOR_FILE_SYNC && d->result == 0, "sync: %" PRId64, d->result);
		CALL_OK(actor_file_stat(ctx, s->f, 4));
		break;
	case 3:
		EXPECT(d->op == ACTOR_FILE_STAT && d->result == 0 && d->st.st_size == 12 &&
		           S_ISREG(d->st.st_mode) && (d->st.st_mode & 0777) == 0644,
		       "stat: %" PRId64 " size %lld mode %o", d->result, (long long)d->st.st_size,
		       d->st.st_mode);
		CALL_OK(actor_file_read(ctx, s->f, s->buf, sizeof(s->buf), 7, 5));
		break;
	case 4:
		EXPECT(d->op == ACTOR_FILE_READ && d->result == 5 && d->buf == s->buf &&
		           memcmp(s->buf, "files", 5) == 0,
		       "short read at the end: %" PRId64, d->result);
		CALL_OK(actor_file_read(ctx, s->f, s->buf, sizeof(s->buf), 12, 6));
		break;
	case 5:
		EXPECT(d->result == 0, "read at the end: %" PRId64, d->result);
		CALL_OK(actor_file_sync(ctx, s->f, 1, 7));
		break;
	case 6:
		EXPECT(d->op == ACTOR_FILE_SYNC && d->result == 0, "datasync: %" PRId64, d->result);
		CALL_OK(actor_file_close(ctx, s->f, 8));
		/* The handle is gone at once. */
		EXPECT(actor_file_read(ctx, s->f, s->buf, 1, 0, 0) == -EBADF, "read after close");
		EXPECT(actor_file_close(ctx, s->f, 0) == -EBADF, "close twice");
		break;
	case 7:
		EXPECT(d->op == ACTOR_FILE_CLOSE && d->result == 0, "close: %" PRId64, d->result);
		EXPECT(actor_file_stat(ctx, s->f, 0) == -EBADF, "stat after close");
		s->ended = 1;
		actor_exit(ctx, 0);
		break;
	default:
		NOTE_FAIL("step %d", s->step);
		actor_exit(ctx, 0);
	}
}

START_TEST(every_operation_answers_once_with_its_result)
{
	make_dir();
	struct round_trip s = {0};
	actor_system_t *sys = run_script(1, round_trip_behavior, &s, "round trip");
	ck_assert_int_eq(s.ended, 1);
	ck_assert_uint_eq(files_open(sys), 0);
	ck_assert_uint_eq(file_ops(sys), 0);
	actor_system_free(sys);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Errors at the call and in the message
 */

struct errors {
	int step;
	actor_file_t ro;
	char buf[16];
	int ended;
	bool root;
};

static void errors_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct errors *s = state;
	if (msg->type == MSG_GO) {
		/* At the call: nothing is sent. */
		EXPECT(actor_file_open(NULL, "x", O_RDONLY, 0, 0) == -EINVAL, "NULL ctx");
		EXPECT(actor_file_open(ctx, NULL, O_RDONLY, 0, 0) == -EINVAL, "NULL path");
		EXPECT(actor_file_read(ctx, (actor_file_t){0}, s->buf, 1, 0, 0) == -EBADF,
		       "handle 0");
		EXPECT(actor_file_read(ctx, (actor_file_t){12345}, s->buf, 1, 0, 0) == -EBADF,
		       "unknown handle");
		EXPECT(actor_file_sync(ctx, (actor_file_t){((uint64_t)7 << 56) | 1}, 0, 0) ==
		           -EXDEV,
		       "another worker's handle");
		CALL_OK(actor_file_open(ctx, path_in_dir("missing"), O_RDONLY, 0, 1));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL) {
		actor_exit(ctx, 0);
		return;
	}
	switch (s->step++) {
	case 0:
		EXPECT(d->tag == 1 && d->result == -ENOENT && d->file.id == 0,
		       "missing file: %" PRId64, d->result);
		CALL_OK(actor_file_open(ctx, path_in_dir("secret"), O_RDONLY, 0, 2));
		break;
	case 1:
		if (s->root)
			EXPECT(d->result == 0 || d->result == -EACCES, "root: %" PRId64, d->result);
		else
			EXPECT(d->result == -EACCES, "no permission: %" PRId64, d->result);
		if (d->result == 0) { /* root: close it first, then go on */
			CALL_OK(actor_file_close(ctx, d->file, 0));
			s->step = 10;
			break;
		}
		CALL_OK(actor_file_open(ctx, dir, O_WRONLY, 0, 3));
		break;
	case 10:
		EXPECT(d->op == ACTOR_FILE_CLOSE, "close of the root-opened file");
		CALL_OK(actor_file_open(ctx, dir, O_WRONLY, 0, 3));
		s->step = 2;
		break;
	case 2:
		EXPECT(d->tag == 3 && d->result == -EISDIR, "a directory for writing: %" PRId64,
		       d->result);
		CALL_OK(actor_file_open(ctx, path_in_dir("ro"), O_RDONLY, 0, 4));
		break;
	case 3:
		EXPECT(d->result == 0, "open ro: %" PRId64, d->result);
		s->ro = d->file;
		EXPECT(actor_file_read(ctx, s->ro, s->buf, 1, -5, 0) == -EINVAL, "negative offset");
		EXPECT(actor_file_read(ctx, s->ro, NULL, 1, 0, 0) == -EINVAL, "NULL buffer");
		EXPECT(actor_file_read(ctx, s->ro, s->buf, (size_t)ACTOR_FILE_IO_MAX + 1, 0, 0) ==
		           -EINVAL,
		       "too long");
		EXPECT(actor_file_read(NULL, s->ro, s->buf, 1, 0, 0) == -EINVAL, "NULL ctx");
		/* The kernel's EBADF: writing a file opened read-only. */
		CALL_OK(actor_file_write(ctx, s->ro, "x", 1, 0, 5));
		break;
	case 4:
		EXPECT(d->tag == 5 && d->op == ACTOR_FILE_WRITE && d->result == -EBADF,
		       "write to a read-only file: %" PRId64, d->result);
		CALL_OK(actor_file_read(ctx, s->ro, s->buf, sizeof(s->buf), 1000, 6));
		break;
	case 5:
		EXPECT(d->result == 0, "read past the end: %" PRId64, d->result);
		CALL_OK(actor_file_close(ctx, s->ro, 7));
		break;
	case 6:
		EXPECT(d->tag == 7 && d->result == 0, "close: %" PRId64, d->result);
		s->ended = 1;
		actor_exit(ctx, 0);
		break;
	default:
		NOTE_FAIL("step %d", s->step);
		actor_exit(ctx, 0);
	}
}

START_TEST(errors_come_at_the_call_or_in_the_message)
{
	make_dir();
	make_file("secret", 10);
	chmod(path_in_dir("secret"), 0);
	make_file("ro", 10);
	struct errors s = {.root = geteuid() == 0};
	actor_system_t *sys = run_script(1, errors_behavior, &s, "errors");
	ck_assert_int_eq(s.ended, 1);
	ck_assert_uint_eq(files_open(sys), 0);
	actor_system_free(sys);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Order: appends in submission order, a sync after its writes, a close after everything
 */

#define APPENDS 200

struct order {
	int phase;
	actor_file_t f;
	char lines[APPENDS][8];
	unsigned writes_done, reads_done;
	bool sync_done, late_write_done;
	char back[APPENDS * 4 + 16];
	int ended;
};

static void order_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct order *s = state;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("log"), O_CREAT | O_WRONLY | O_APPEND,
		                        0644, 0));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL) {
		actor_exit(ctx, 0);
		return;
	}
	switch (d->op) {
	case ACTOR_FILE_OPEN:
		if (s->phase == 0) {
			EXPECT(d->result == 0, "open: %" PRId64, d->result);
			s->f = d->file;
			for (int i = 0; i < APPENDS; i++) {
				snprintf(s->lines[i], sizeof(s->lines[i]), "%03d\n", i);
				CALL_OK(actor_file_write(ctx, s->f, s->lines[i], 4,
				                         ACTOR_FILE_APPEND, (uint64_t)i));
			}
			CALL_OK(actor_file_sync(ctx, s->f, 0, 1000));
			CALL_OK(actor_file_write(ctx, s->f, "end\n", 4, ACTOR_FILE_APPEND, 2000));
			CALL_OK(actor_file_close(ctx, s->f, 3000));
			s->phase = 1;
		} else {
			EXPECT(d->result == 0, "open for reading: %" PRId64, d->result);
			s->f = d->file;
			CALL_OK(actor_file_read(ctx, s->f, s->back, sizeof(s->back), 0, 4000));
			for (int i = 0; i < 8; i++)
				CALL_OK(actor_file_stat(ctx, s->f, 5000));
			CALL_OK(actor_file_close(ctx, s->f, 6000));
		}
		break;
	case ACTOR_FILE_WRITE:
		if (d->tag < APPENDS) {
			EXPECT(d->tag == s->writes_done, "append %" PRIu64 " done as number %u",
			       d->tag, s->writes_done);
			EXPECT(!s->sync_done, "an append before the sync completed after it");
			s->writes_done++;
		} else {
			EXPECT(s->sync_done, "the write after the sync completed before it");
			s->late_write_done = true;
		}
		EXPECT(d->result == 4, "append: %" PRId64, d->result);
		break;
	case ACTOR_FILE_SYNC:
		EXPECT(s->writes_done == APPENDS, "the sync completed after %u of its writes",
		       s->writes_done);
		s->sync_done = true;
		break;
	case ACTOR_FILE_READ:
		EXPECT(d->result == APPENDS * 4 + 4, "read back: %" PRId64, d->result);
		for (int i = 0; i < APPENDS; i++)
			EXPECT(memcmp(s->back + i * 4, s->lines[i], 4) == 0, "line %d out of order",
			       i);
		s->reads_done++;
		break;
	case ACTOR_FILE_STAT:
		s->reads_done++;
		break;
	case ACTOR_FILE_CLOSE:
		EXPECT(d->result == 0, "close: %" PRId64, d->result);
		if (s->phase == 1) {
			EXPECT(s->late_write_done, "the close came before the last write");
			CALL_OK(actor_file_open(ctx, path_in_dir("log"), O_RDONLY, 0, 0));
			s->phase = 2;
		} else {
			EXPECT(s->reads_done == 9, "the close came before %u reads",
			       9 - s->reads_done);
			s->ended = 1;
			actor_exit(ctx, 0);
		}
		break;
	}
}

START_TEST(appends_syncs_and_closes_keep_their_order)
{
	make_dir();
	struct order *s = calloc(1, sizeof(*s));
	actor_system_t *sys = run_script(1, order_behavior, s, "order");
	ck_assert_int_eq(s->ended, 1);
	actor_system_free(sys);
	free(s);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * 32 reads in flight at once
 */

#define DEPTH 32
#define RAND_FILE (1u << 20)
#define RAND_READS 3000

struct depth {
	actor_file_t f;
	unsigned char buf[DEPTH][4096];
	uint64_t rng;
	unsigned started, done, in_flight, max_in_flight;
	int ended;
};

static void depth_read(actor_ctx_t *ctx, struct depth *s, unsigned slot)
{
	s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
	int64_t off = (int64_t)((s->rng >> 33) % (RAND_FILE - 4096));
	CALL_OK(actor_file_read(ctx, s->f, s->buf[slot], 4096, off, ((uint64_t)off << 8) | slot));
	s->started++;
	if (++s->in_flight > s->max_in_flight)
		s->max_in_flight = s->in_flight;
}

static void depth_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct depth *s = state;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("rand"), O_RDONLY, 0, 0));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL) {
		actor_exit(ctx, 0);
		return;
	}
	if (d->op == ACTOR_FILE_OPEN) {
		s->f = d->file;
		for (unsigned i = 0; i < DEPTH; i++)
			depth_read(ctx, s, i);
		return;
	}
	if (d->op == ACTOR_FILE_CLOSE) {
		s->ended = 1;
		actor_exit(ctx, 0);
		return;
	}
	unsigned slot = (unsigned)(d->tag & 0xff);
	size_t off = (size_t)(d->tag >> 8);
	EXPECT(d->result == 4096 && d->buf == s->buf[slot], "read: %" PRId64, d->result);
	for (size_t i = 0; i < 4096; i += 511)
		EXPECT(s->buf[slot][i] == pattern(off + i), "byte %zu of a read at %zu", i, off);
	s->in_flight--;
	s->done++;
	if (s->started < RAND_READS)
		depth_read(ctx, s, slot);
	else if (s->done == RAND_READS)
		CALL_OK(actor_file_close(ctx, s->f, 0));
}

START_TEST(thirty_two_reads_run_at_once_and_each_gets_its_bytes)
{
	make_dir();
	make_file("rand", RAND_FILE);
	struct depth *s = calloc(1, sizeof(*s));
	s->rng = 42;
	actor_system_t *sys = run_script(1, depth_behavior, s, "depth");
	ck_assert_int_eq(s->ended, 1);
	ck_assert_uint_eq(s->max_in_flight, DEPTH);
	ck_assert_uint_eq(s->done, RAND_READS);
	actor_system_free(sys);
	free(s);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Many writes in flight to one file (on the pool path, the file's write runner runs them)
 */

#define WRITES 64
#define SHUT_ACTORS 16 /* actors with operations in flight at a shutdown */
#define WRITE_LEN 8192

struct writes {
	actor_file_t f;
	unsigned char buf[WRITES][WRITE_LEN];
	unsigned char back[WRITES * WRITE_LEN];
	unsigned answered[WRITES];
	unsigned done;
	int ended;
};

static void writes_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct writes *s = state;
	if (msg->type == MSG_GO) {
		CALL_OK(
		    actor_file_open(ctx, path_in_dir("w"), O_CREAT | O_RDWR | O_TRUNC, 0644, 0));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL) {
		actor_exit(ctx, 0);
		return;
	}
	switch (d->op) {
	case ACTOR_FILE_OPEN:
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		s->f = d->file;
		/* Every write at once, in an order that is not the file's, then a sync and a read
		 * of the whole file, which the order rules hold behind them. */
		for (unsigned i = 0; i < WRITES; i++) {
			unsigned k = (i * 37) % WRITES;
			for (size_t j = 0; j < WRITE_LEN; j++)
				s->buf[k][j] = pattern(k * WRITE_LEN + j);
			CALL_OK(actor_file_write(ctx, s->f, s->buf[k], WRITE_LEN,
			                         (int64_t)k * WRITE_LEN, k));
		}
		CALL_OK(actor_file_sync(ctx, s->f, 0, WRITES));
		break;
	case ACTOR_FILE_WRITE:
		EXPECT(d->result == WRITE_LEN && d->tag < WRITES && d->buf == s->buf[d->tag],
		       "write %" PRIu64 ": %" PRId64, d->tag, d->result);
		if (d->tag < WRITES)
			s->answered[d->tag]++;
		s->done++;
		break;
	case ACTOR_FILE_SYNC:
		EXPECT(d->result == 0 && s->done == WRITES, "sync after %u writes: %" PRId64,
		       s->done, d->result);
		CALL_OK(actor_file_read(ctx, s->f, s->back, sizeof(s->back), 0, 0));
		break;
	case ACTOR_FILE_READ:
		EXPECT(d->result == (int64_t)sizeof(s->back), "read back: %" PRId64, d->result);
		for (size_t i = 0; i < sizeof(s->back); i++) {
			if (s->back[i] != pattern(i)) {
				NOTE_FAIL("byte %zu: %u, not %u", i, s->back[i], pattern(i));
				break;
			}
		}
		CALL_OK(actor_file_close(ctx, s->f, 0));
		break;
	case ACTOR_FILE_CLOSE:
		s->ended = 1;
		actor_exit(ctx, 0);
		break;
	default:
		NOTE_FAIL("op %d", d->op);
	}
}

START_TEST(sixty_four_writes_in_flight_to_one_file_each_land_once)
{
	make_dir();
	struct writes *s = calloc(1, sizeof(*s));
	actor_system_t *sys = run_script(1, writes_behavior, s, "writes");
	ck_assert_int_eq(s->ended, 1);
	for (unsigned i = 0; i < WRITES; i++)
		ck_assert_uint_eq(s->answered[i], 1);
	ck_assert_uint_eq(file_ops(sys), 0);
	actor_system_free(sys);
	free(s);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* Writers that keep 32 writes in flight each, on two workers, until the system stops them
 * (shutdown), or until it is freed at once without a drain: every write is accounted for,
 * nothing leaks (AddressSanitizer). */
static unsigned char (*writer_bufs)[DEPTH][4096]; /* outlive the actors (above) */
static atomic_int writers_writing;

static void writer_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	unsigned idx = (unsigned)(uintptr_t)state;
	if (msg->type == MSG_GO) {
		char name[32];
		snprintf(name, sizeof(name), "wr%u", idx);
		CALL_OK(
		    actor_file_open(ctx, path_in_dir(name), O_CREAT | O_WRONLY | O_TRUNC, 0644, 0));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	if (d->op == ACTOR_FILE_OPEN) {
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		for (unsigned i = 0; i < DEPTH; i++)
			CALL_OK(actor_file_write(ctx, d->file, writer_bufs[idx][i], 4096, i * 4096,
			                         d->file.id));
		atomic_fetch_add(&writers_writing, 1);
		return;
	}
	EXPECT(d->op == ACTOR_FILE_WRITE && d->result == 4096, "write: %" PRId64, d->result);
	actor_file_t f = {d->tag};
	CALL_OK(actor_file_write(ctx, f, d->buf, 4096, 0, d->tag));
}

static actor_system_t *writers_start(actor_config_t cfg)
{
	writer_bufs = calloc(SHUT_ACTORS, sizeof(*writer_bufs));
	atomic_store(&writers_writing, 0);
	cfg.workers = 2;
	actor_system_t *sys = backend_system_cfg(cfg);
	for (unsigned i = 0; i < SHUT_ACTORS; i++) {
		actor_ref_t a = spawn_on(sys, i % 2, writer_behavior, (void *)(uintptr_t)i);
		send_ok(sys, a, MSG_GO, NULL, 0);
	}
	ck_assert(WAIT_UNTIL(atomic_load(&writers_writing) == SHUT_ACTORS, TEST_WATCHDOG));
	return sys;
}

START_TEST(shutdown_with_writes_in_flight_frees_everything)
{
	make_dir();
	actor_system_t *sys = writers_start((actor_config_t){0});
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	ck_assert_uint_eq(files_open(sys), 0);
	ck_assert_uint_eq(file_ops(sys), 0);
	actor_system_free(sys);
	free(writer_bufs);
	assert_no_failures();
	remove_dir();
}
END_TEST

START_TEST(a_system_freed_with_writes_in_flight_leaks_nothing)
{
	make_dir();
	/* No drain: the writes still queued or running when the workers leave end as orphans. */
	actor_system_t *sys = writers_start((actor_config_t){.shutdown_drain_ms = -1});
	actor_system_free(sys);
	free(writer_bufs);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Owners: another actor's handle; an owner that stops with operations in flight
 */

struct owner {
	actor_file_t f;
	_Atomic uint64_t handle;
	unsigned char *buf; /* outlives the actor: operations may still run after it stops */
	int ended;
};

static void other_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct owner *s = state;
	(void)msg;
	actor_file_t f = {atomic_load(&s->handle)};
	EXPECT(actor_file_read(ctx, f, s->buf, 1, 0, 0) == -EPERM, "another actor's handle");
	EXPECT(actor_file_close(ctx, f, 0) == -EPERM, "close of another actor's handle");
	CALL_OK(actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_GO + 1, NULL, 0));
	actor_exit(ctx, 0);
}

static void stopper_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct owner *s = state;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("rand"), O_RDWR, 0, 0));
		return;
	}
	if (msg->type == MSG_GO + 1)
		goto checked;
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL || d->op != ACTOR_FILE_OPEN) {
		NOTE_FAIL("a message after the open");
		return;
	}
	s->f = d->file;
	atomic_store(&s->handle, d->file.id);
	actor_ref_t other = ACTOR_REF_NONE;
	actor_spawn_opts_t here = {.placement = ACTOR_PLACE_LOCAL, .stay = 1};
	CALL_OK(actor_spawn(actor_ctx_system(ctx), &here, other_behavior, s, &other));
	CALL_OK(actor_send(actor_ctx_system(ctx), other, MSG_GO, NULL, 0));
	return;
checked:
	/* 32 reads and writes in flight, a sync held behind them, then the owner stops. */
	for (unsigned i = 0; i < 16; i++) {
		CALL_OK(actor_file_read(ctx, s->f, s->buf + i * 4096, 4096, i * 4096, i));
		CALL_OK(actor_file_write(ctx, s->f, s->buf + (16 + i) * 4096, 4096, (16 + i) * 4096,
		                         i));
	}
	CALL_OK(actor_file_sync(ctx, s->f, 0, 0));
	s->ended = 1;
	actor_exit(ctx, 0);
}

START_TEST(an_owner_that_stops_closes_its_files_and_drops_their_answers)
{
	make_dir();
	make_file("rand", RAND_FILE);
	struct owner s = {.buf = calloc(32, 4096)};
	actor_system_t *sys = run_script(1, stopper_behavior, &s, "owner stops");
	ck_assert_int_eq(s.ended, 1);
	ck_assert_uint_eq(files_open(sys), 0);
	ck_assert_uint_eq(file_ops(sys), 0);
	ck_assert_uint_eq(file_ops_dropped(sys), 33);
	actor_system_free(sys);
	free(s.buf);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shutdown with operations in flight on every worker
 */

struct shut {
	unsigned char buf[DEPTH][4096];
	actor_file_t f;
	unsigned reads;
};

static unsigned char (*shut_bufs)[DEPTH][4096]; /* outlive the actors (above) */
static atomic_int shut_reading;

static void shut_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	unsigned idx = (unsigned)(uintptr_t)state;
	struct shut *s = NULL;
	(void)s;
	if (msg->type == MSG_GO) {
		CALL_OK(actor_file_open(ctx, path_in_dir("rand"), O_RDONLY, 0, 0));
		return;
	}
	const actor_file_done_t *d = file_done(msg);
	if (d == NULL)
		return;
	if (d->op == ACTOR_FILE_OPEN) {
		EXPECT(d->result == 0, "open: %" PRId64, d->result);
		atomic_fetch_add(&shut_reading, 1);
		for (unsigned i = 0; i < DEPTH; i++)
			CALL_OK(actor_file_read(ctx, d->file, shut_bufs[idx][i], 4096, i * 4096,
			                        d->file.id));
		return;
	}
	/* Keep reading until the shutdown stops us. */
	actor_file_t f = {d->tag};
	CALL_OK(actor_file_read(ctx, f, d->buf, 4096, 0, d->tag));
}

START_TEST(shutdown_with_operations_in_flight_frees_everything)
{
	make_dir();
	make_file("rand", RAND_FILE);
	shut_bufs = calloc(SHUT_ACTORS, sizeof(*shut_bufs));
	atomic_store(&shut_reading, 0);
	actor_system_t *sys = backend_system(2);
	for (unsigned i = 0; i < SHUT_ACTORS; i++) {
		actor_ref_t a = spawn_on(sys, i % 2, shut_behavior, (void *)(uintptr_t)i);
		send_ok(sys, a, MSG_GO, NULL, 0);
	}
	ck_assert(WAIT_UNTIL(atomic_load(&shut_reading) == SHUT_ACTORS, TEST_WATCHDOG));
	sleep_ms(20);
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, "shutdown");
	ck_assert_uint_eq(files_open(sys), 0);
	ck_assert_uint_eq(file_ops(sys), 0);
	actor_system_free(sys);
	free(shut_bufs);
	assert_no_failures();
	remove_dir();
}
END_TEST

/* A system freed at once, with opens just submitted. */
static atomic_int quick_started;

static void quick_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_GO) {
		for (int i = 0; i < 8; i++)
			CALL_OK(actor_file_open(ctx, path_in_dir("rand"), O_RDONLY, 0, 0));
		atomic_fetch_add(&quick_started, 1);
	}
}

START_TEST(a_system_freed_with_opens_in_flight_leaks_nothing)
{
	make_dir();
	make_file("rand", 4096);
	actor_system_t *sys = backend_system(2);
	atomic_store(&quick_started, 0);
	for (unsigned i = 0; i < 4; i++) {
		actor_ref_t a = spawn_on(sys, i % 2, quick_behavior, NULL);
		send_ok(sys, a, MSG_GO, NULL, 0);
	}
	ck_assert(WAIT_UNTIL(atomic_load(&quick_started) == 4, TEST_WATCHDOG));
	backend_system_end(sys, "free at once");
	assert_no_failures();
	remove_dir();
}
END_TEST

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	TCase *tc = backend_tcase(s, b, 0, "operations", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, every_operation_answers_once_with_its_result);
	tcase_add_test(tc, errors_come_at_the_call_or_in_the_message);
	tc = backend_tcase(s, b, 1, "order", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, appends_syncs_and_closes_keep_their_order);
	tcase_add_test(tc, thirty_two_reads_run_at_once_and_each_gets_its_bytes);
	tcase_add_test(tc, sixty_four_writes_in_flight_to_one_file_each_land_once);
	tc = backend_tcase(s, b, 2, "owners and shutdown", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, an_owner_that_stops_closes_its_files_and_drops_their_answers);
	tcase_add_test(tc, shutdown_with_operations_in_flight_frees_everything);
	tcase_add_test(tc, a_system_freed_with_opens_in_flight_leaks_nothing);
	tcase_add_test(tc, shutdown_with_writes_in_flight_frees_everything);
	tcase_add_test(tc, a_system_freed_with_writes_in_flight_leaks_nothing);
}

int main(int argc, char **argv)
{
	return backend_main(argc, argv, "file", add_cases);
}
