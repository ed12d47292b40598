/* file_rand.c: libuv's peer of bench/file_rand.c: 4 KiB random reads of the same cached 256 MiB
 * file with uv_fs_read on libuv's thread pool (4 threads, its default, set explicitly), at 1 and
 * at 32 in flight. Run bench/file_rand first: it makes the file.
 *
 * Usage: bench/peers/libuv/file_rand [reads] [rounds]   (as bench/file_rand)
 *   RESULT name=file_rand_read_4k_<depth> impl=libuv metric=reads_per_s value=... unit=1/s
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#define FILE_BYTES (256ull << 20)
#define BLOCK 4096u
#define MAX_DEPTH 32

struct slot {
	uv_fs_t req;
	uv_buf_t buf;
	char data[BLOCK];
};

static uv_file file;
static uint64_t reads, next, done, rng = 7, t1;
static struct slot slots[MAX_DEPTH];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_read(uv_fs_t *req);

static void read_next(struct slot *s)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	int64_t off = (int64_t)(((rng >> 20) % (FILE_BYTES / BLOCK)) * BLOCK);
	next++;
	s->buf = uv_buf_init(s->data, BLOCK);
	if (uv_fs_read(uv_default_loop(), &s->req, file, &s->buf, 1, off, on_read) < 0)
		exit(1);
}

static void on_read(uv_fs_t *req)
{
	struct slot *s = (struct slot *)req;
	if (req->result != BLOCK) {
		fprintf(stderr, "file_rand: read %zd\n", (ssize_t)req->result);
		exit(1);
	}
	uv_fs_req_cleanup(req);
	if (++done == reads)
		t1 = now_ns();
	else if (next < reads)
		read_next(s);
}

static double run(unsigned depth, uint64_t n)
{
	reads = n;
	next = done = 0;
	rng = 7;
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < depth; i++)
		read_next(&slots[i]);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
	unsigned rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
	if (n == 0 || rounds == 0 || rounds > 32)
		return 2;
	setenv("UV_THREADPOOL_SIZE", "4", 1);
	const char *dir = getenv("BENCH_FILE_DIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/file_rand.dat", dir && *dir ? dir : "/var/tmp");
	uv_fs_t open_req;
	file = uv_fs_open(NULL, &open_req, path, O_RDONLY, 0, NULL);
	uv_fs_req_cleanup(&open_req);
	if (file < 0) {
		fprintf(stderr, "file_rand: %s: %s (run bench/file_rand first)\n", path,
		        uv_strerror(file));
		return 1;
	}
	const unsigned depths[2] = {1, 32};
	for (unsigned di = 0; di < 2; di++) {
		double v[32];
		for (unsigned k = 0; k < rounds; k++)
			v[k] = run(depths[di], depths[di] == 1 ? n / 10 : n);
		qsort(v, rounds, sizeof(double), cmp_double);
		printf("RESULT name=file_rand_read_4k_%u impl=libuv metric=reads_per_s value=%.0f "
		       "unit=1/s\n",
		       depths[di], v[rounds / 2]);
		fflush(stdout);
	}
	return 0;
}
