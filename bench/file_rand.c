/* file_rand.c: 4 KiB random reads of a cached 256 MiB file through the files API, at 1 and at
 * 32 reads in flight, on each reactor backend; bench/peers/libuv/file_rand.c is libuv's
 * uv_fs_read doing the same.
 *
 * Usage: bench/file_rand [reads] [rounds]   (defaults: 200,000 reads at depth 32, a tenth of
 * that at depth 1; 3 rounds, alternating the backends, medians reported)
 * The file is $BENCH_FILE_DIR/file_rand.dat (default /var/tmp), made and read once to cache
 * it if it is missing or of another size, and kept for the libuv peer.
 *   RESULT name=file_rand_read_4k_<depth> impl=libactor-<backend> metric=reads_per_s value=...
 */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "bench.h"

#define FILE_BYTES (256ull << 20)
#define BLOCK 4096u
#define MAX_DEPTH 32
#define MAX_ROUNDS 32

static char path[512];

static void make_cached_file(void)
{
	struct stat st;
	int fd;
	if (stat(path, &st) != 0 || (uint64_t)st.st_size != FILE_BYTES) {
		fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		static unsigned char b[1 << 20];
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)i;
		for (uint64_t i = 0; i < FILE_BYTES / sizeof(b); i++)
			if (fd < 0 || write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
				exit(1);
		close(fd);
	}
	static unsigned char b[1 << 20];
	fd = open(path, O_RDONLY);
	while (fd >= 0 && read(fd, b, sizeof(b)) > 0)
		;
	close(fd);
}

struct rnd {
	actor_file_t f;
	unsigned depth;
	uint64_t reads, next, done, rng;
	uint64_t t0, t1;
	unsigned char buf[MAX_DEPTH][BLOCK];
};

static void rnd_next(actor_ctx_t *ctx, struct rnd *s, unsigned slot)
{
	s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
	int64_t off = (int64_t)(((s->rng >> 20) % (FILE_BYTES / BLOCK)) * BLOCK);
	s->next++;
	bench_check(actor_file_read(ctx, s->f, s->buf[slot], BLOCK, off, slot), "read");
}

static void rnd_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct rnd *s = state;
	if (msg->type == 1) {
		bench_check(actor_file_open(ctx, path, O_RDONLY, 0, 0), "open");
		return;
	}
	const actor_file_done_t *d = actor_msg_data(msg);
	if (d->op == ACTOR_FILE_OPEN) {
		bench_check((int)d->result, "open");
		s->f = d->file;
		s->t0 = bench_now_ns();
		for (unsigned i = 0; i < s->depth; i++)
			rnd_next(ctx, s, i);
		return;
	}
	if (d->op == ACTOR_FILE_CLOSE) {
		actor_exit(ctx, 0);
		return;
	}
	if (d->result != BLOCK) {
		fprintf(stderr, "file_rand: read %" PRId64 "\n", d->result);
		exit(1);
	}
	if (++s->done == s->reads) {
		s->t1 = bench_now_ns();
		bench_check(actor_file_close(ctx, s->f, 0), "close");
	} else if (s->next < s->reads) {
		rnd_next(ctx, s, (unsigned)d->tag);
	}
}

static double run(const char *backend, unsigned depth, uint64_t reads)
{
	actor_config_t cfg = {.workers = 1, .reactor = backend};
	actor_system_t *sys = NULL;
	if (actor_system_create(&cfg, &sys) < 0)
		return -1;
	struct rnd *s = calloc(1, sizeof(*s));
	s->depth = depth;
	s->reads = reads;
	s->rng = 7;
	actor_ref_t a;
	bench_check(actor_spawn(sys, NULL, rnd_behavior, s, &a), "spawn");
	bench_check(actor_send(sys, a, 1, NULL, 0), "send");
	actor_system_run(sys);
	actor_system_free(sys);
	double v = (double)reads / bench_secs(s->t0, s->t1);
	free(s);
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	uint64_t reads = bench_arg_u64(argc, argv, 1, 200000, 100000000);
	unsigned rounds = (unsigned)bench_arg_u64(argc, argv, 2, 3, MAX_ROUNDS);
	const char *dir = getenv("BENCH_FILE_DIR");
	snprintf(path, sizeof(path), "%s/file_rand.dat", dir && *dir ? dir : "/var/tmp");
	make_cached_file();
	const char *backends[2] = {"epoll", "io_uring"};
	const unsigned depths[2] = {1, 32};
	for (unsigned di = 0; di < 2; di++) {
		uint64_t n = depths[di] == 1 ? reads / 10 : reads;
		double v[2][MAX_ROUNDS];
		for (unsigned k = 0; k < rounds; k++)
			for (unsigned j = 0; j < 2; j++) {
				unsigned b = (j + k) % 2;
				v[b][k] = run(backends[b], depths[di], n);
			}
		for (unsigned b = 0; b < 2; b++) {
			qsort(v[b], rounds, sizeof(double), cmp_double);
			if (v[b][0] < 0) {
				fprintf(stderr, "file_rand: no %s here\n", backends[b]);
				continue;
			}
			printf(
			    "RESULT name=file_rand_read_4k_%u impl=libactor-%s metric=reads_per_s "
			    "value=%.0f unit=1/s\n",
			    depths[di], backends[b], v[b][rounds / 2]);
			fflush(stdout);
		}
	}
	return 0;
}
