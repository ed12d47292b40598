/* file_seq.c: large sequential file transfers through the page cache: file_seq_write writes a
 * file of `mib` MiB in 1 MiB operations, file_seq_read reads it back the same way, once with a
 * plain C write()/read() loop and once through the files API on each reactor backend, in
 * alternating rounds within one run, so that their ratio is not a comparison across runs.
 *
 * Usage: bench/file_seq [mib] [rounds] [depth]   (defaults: 1024 MiB, 5 rounds, 2 in flight)
 *
 * Two in flight by default: an asynchronous API is used with the next operation queued, which
 * is what lets it match a blocking loop; at 1 in flight each operation also pays the trip to
 * the thread or ring that runs it and back, which the loop does not (bench/README.md, Files).
 * The file lives in $BENCH_FILE_DIR (default /var/tmp) and is removed at the end. Each round
 * writes it anew (unlinked first, so that writing never waits for the write-back of the last
 * round's pages more than the C loop does) and reads it while it is cached. Prints, per backend
 * and for the C loop, the median over the rounds:
 *   RESULT name=file_seq_write impl=c|libactor-epoll|libactor-io_uring metric=throughput
 *          value=<MiB/s> unit=MiB/s
 * and likewise file_seq_read, and for each backend the median over the rounds of its figure
 * divided by the C loop's figure of the same round (metric=ratio_to_c, unit=x): the page cache's
 * write-back and other processes move every figure from one round to the next, and a ratio of
 * two runs seconds apart cancels most of that, where a ratio of the two medians does not. A
 * backend the machine refuses is left out, with a line on stderr.
 */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "bench.h"

#define CHUNK (1u << 20)
#define MAX_DEPTH 16
#define MAX_ROUNDS 64

static char path[512];
static uint64_t mib = 1024, depth = 2;

/* ---------------------------------------------------------------------------------------------
 * The plain C loop
 */

static void fail(const char *what)
{
	perror(what);
	exit(1);
}

static double c_write(unsigned char *buf)
{
	unlink(path);
	uint64_t t0 = bench_now_ns();
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("open");
	for (uint64_t i = 0; i < mib; i++) {
		if (write(fd, buf, CHUNK) != (ssize_t)CHUNK)
			fail("write");
	}
	close(fd);
	return (double)mib / bench_secs(t0, bench_now_ns());
}

static double c_read(unsigned char *buf)
{
	uint64_t t0 = bench_now_ns();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open");
	uint64_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0)
			fail("read");
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	close(fd);
	if (got != mib * CHUNK)
		fail("short file");
	return (double)mib / bench_secs(t0, bench_now_ns());
}

/* ---------------------------------------------------------------------------------------------
 * The files API: one actor keeps `depth` operations in flight
 */

struct seq {
	actor_system_t *sys;
	bool writing;
	actor_file_t f;
	unsigned char *buf[MAX_DEPTH];
	uint64_t next, done;
	uint64_t t0, t1;
	int failed;
};

static void seq_next(actor_ctx_t *ctx, struct seq *s, unsigned slot)
{
	int64_t off = (int64_t)(s->next++ * CHUNK);
	int rc = s->writing ? actor_file_write(ctx, s->f, s->buf[slot], CHUNK, off, slot)
	                    : actor_file_read(ctx, s->f, s->buf[slot], CHUNK, off, slot);
	bench_check(rc, "file operation");
}

static void seq_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct seq *s = state;
	if (msg->type == 1) {
		s->t0 = bench_now_ns();
		int flags = s->writing ? O_CREAT | O_WRONLY | O_TRUNC : O_RDONLY;
		bench_check(actor_file_open(ctx, path, flags, 0644, 0), "actor_file_open");
		return;
	}
	const actor_file_done_t *d = actor_msg_data(msg);
	if (d->result < 0 || (d->op != ACTOR_FILE_OPEN && d->op != ACTOR_FILE_CLOSE &&
	                      d->result != (int64_t)CHUNK)) {
		fprintf(stderr, "file_seq: op %d: %" PRId64 "\n", d->op, d->result);
		s->failed = 1;
		actor_exit(ctx, 0);
		return;
	}
	if (d->op == ACTOR_FILE_OPEN) {
		s->f = d->file;
		for (unsigned i = 0; i < depth && s->next < mib; i++)
			seq_next(ctx, s, i);
	} else if (d->op == ACTOR_FILE_CLOSE) {
		s->t1 = bench_now_ns();
		actor_exit(ctx, 0);
	} else if (++s->done == mib) {
		bench_check(actor_file_close(ctx, s->f, 0), "actor_file_close");
	} else if (s->next < mib) {
		seq_next(ctx, s, (unsigned)d->tag);
	}
}

static double actor_run(const char *backend, bool writing, unsigned char **bufs)
{
	if (writing)
		unlink(path);
	actor_config_t cfg = {.workers = 1, .reactor = backend};
	actor_system_t *sys = NULL;
	bench_check(actor_system_create(&cfg, &sys), "actor_system_create");
	struct seq s = {.sys = sys, .writing = writing};
	memcpy(s.buf, bufs, sizeof(s.buf));
	actor_ref_t a;
	bench_check(actor_spawn(sys, NULL, seq_behavior, &s, &a), "actor_spawn");
	bench_check(actor_send(sys, a, 1, NULL, 0), "actor_send");
	actor_system_run(sys);
	actor_system_free(sys);
	if (s.failed)
		exit(1);
	return (double)mib / bench_secs(s.t0, s.t1);
}

/* ---------------------------------------------------------------------------------------------
 * Rounds and medians
 */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *name, const char *impl, double v)
{
	printf("RESULT name=%s impl=%s metric=throughput value=%.0f unit=MiB/s\n", name, impl, v);
	fflush(stdout);
}

/* The C loop's median, then each backend's median and its median ratio to the C loop's round. */
static void report_all(const char *name, double v[3][MAX_ROUNDS], const bool ok[2],
                       const char *const backends[2], unsigned rounds)
{
	double c[MAX_ROUNDS];
	memcpy(c, v[2], sizeof(c));
	report(name, "c", median(c, rounds));
	for (unsigned i = 0; i < 2; i++) {
		if (!ok[i])
			continue;
		char impl[32];
		snprintf(impl, sizeof(impl), "libactor-%s", backends[i]);
		double ratio[MAX_ROUNDS], own[MAX_ROUNDS];
		for (unsigned k = 0; k < rounds; k++)
			ratio[k] = v[i][k] / v[2][k];
		memcpy(own, v[i], sizeof(own));
		report(name, impl, median(own, rounds));
		double x = median(ratio, rounds);
		printf("RESULT name=%s impl=%s metric=ratio_to_c value=%.2f unit=x\n", name, impl, x);
		fflush(stdout);
		fprintf(stderr, "%s %s: %.2fx the C loop (median of the rounds' ratios)\n", name, impl,
		        x);
	}
}

static bool backend_ok(const char *backend)
{
	actor_config_t cfg = {.workers = 1, .reactor = backend};
	actor_system_t *sys = NULL;
	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0) {
		fprintf(stderr, "file_seq: no %s here (%s)\n", backend, strerror(-rc));
		return false;
	}
	actor_system_free(sys);
	return true;
}

int main(int argc, char **argv)
{
	mib = bench_arg_u64(argc, argv, 1, 1024, 1u << 20);
	unsigned rounds = (unsigned)bench_arg_u64(argc, argv, 2, 5, MAX_ROUNDS);
	depth = bench_arg_u64(argc, argv, 3, 2, MAX_DEPTH);
	const char *dir = getenv("BENCH_FILE_DIR");
	snprintf(path, sizeof(path), "%s/file_seq.%d", dir && *dir ? dir : "/var/tmp", getpid());
	unsigned char *bufs[MAX_DEPTH];
	for (unsigned i = 0; i < MAX_DEPTH; i++) {
		bufs[i] = aligned_alloc(4096, CHUNK);
		memset(bufs[i], (int)i + 1, CHUNK);
	}
	const char *const backends[2] = {"epoll", "io_uring"};
	bool ok[2] = {backend_ok("epoll"), backend_ok("io_uring")};
	double w[3][MAX_ROUNDS], r[3][MAX_ROUNDS];
	for (unsigned k = 0; k < rounds; k++) {
		/* Alternate which goes first, so that neither always follows the other's pages. */
		for (unsigned j = 0; j < 3; j++) {
			unsigned i = (j + k) % 3;
			if (i == 2) {
				w[2][k] = c_write(bufs[0]);
				r[2][k] = c_read(bufs[0]);
			} else if (ok[i]) {
				w[i][k] = actor_run(backends[i], true, bufs);
				r[i][k] = actor_run(backends[i], false, bufs);
			}
		}
	}
	unlink(path);
	report_all("file_seq_write", w, ok, backends, rounds);
	report_all("file_seq_read", r, ok, backends, rounds);
	return 0;
}
