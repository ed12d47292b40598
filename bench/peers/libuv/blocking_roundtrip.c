/* blocking_roundtrip.c: libuv's peer of bench/blocking_roundtrip.c: a job that does nothing, to
 * libuv's thread pool (uv_queue_work) and back, with 1 and with 64 jobs in flight.
 *
 * Usage: bench/peers/libuv/blocking_roundtrip [jobs]   (default 200,000 at 64 in flight; a
 *                                                      fifth of that at 1)
 *
 * The same work as the libactor program: the loop keeps `in_flight` requests queued on a pool of
 * 4 threads (UV_THREADPOOL_SIZE, libuv's default, set explicitly), each work callback returns
 * its tag, and each after-work callback checks it and queues the next. Time runs from the first
 * queue_work to the last after-work callback, on the loop's thread:
 *   RESULT name=blocking_roundtrip_<in_flight> impl=libuv metric=jobs_per_s value=... unit=1/s
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#define JOBS_DEFAULT 200000u

struct job {
	uv_work_t req;
	uint64_t tag;
	int64_t result;
};

struct roundtrip {
	uint64_t jobs, submitted, done;
	uint8_t *seen;
	int failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void work(uv_work_t *req)
{
	struct job *j = req->data;
	j->result = (int64_t)j->tag;
}

static void after_work(uv_work_t *req, int status);

static void submit(uv_loop_t *loop, struct roundtrip *r, struct job *j)
{
	j->tag = r->submitted++;
	j->req.data = j;
	int rc = uv_queue_work(loop, &j->req, work, after_work);
	if (rc != 0) {
		fprintf(stderr, "uv_queue_work: %s\n", uv_strerror(rc));
		exit(1);
	}
}

static void after_work(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct roundtrip *r = req->loop->data;
	if (status != 0 || j->tag >= r->jobs || r->seen[j->tag] || j->result != (int64_t)j->tag) {
		r->failed = 1;
		return;
	}
	r->seen[j->tag] = 1;
	r->done++;
	if (r->submitted < r->jobs)
		submit(req->loop, r, j);
}

static int run(uint64_t jobs, uint64_t in_flight)
{
	uv_loop_t loop;
	struct roundtrip r = {.jobs = jobs, .seen = calloc(jobs, 1)};
	struct job *slots = calloc(in_flight, sizeof(*slots));
	if (r.seen == NULL || slots == NULL || uv_loop_init(&loop) != 0) {
		fprintf(stderr, "blocking_roundtrip: out of memory\n");
		return 1;
	}
	loop.data = &r;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < in_flight && r.submitted < jobs; i++)
		submit(&loop, &r, &slots[i]);
	uv_run(&loop, UV_RUN_DEFAULT);
	uint64_t t1 = now_ns();
	uv_loop_close(&loop);
	free(slots);
	free(r.seen);
	if (r.failed || r.done != jobs) {
		fprintf(stderr,
		        "blocking_roundtrip_%" PRIu64 ": FAILED after %" PRIu64 " of %" PRIu64
		        " jobs\n",
		        in_flight, r.done, jobs);
		return 1;
	}
	double rate = (double)jobs / ((double)(t1 - t0) / 1e9);
	printf("RESULT name=blocking_roundtrip_%" PRIu64 " impl=libuv metric=jobs_per_s value=%.*f "
	       "unit=1/s\n",
	       in_flight, rate >= 10000.0 ? 0 : 3, rate);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t jobs = JOBS_DEFAULT;
	if (argc > 1) {
		char *end;
		unsigned long long v = strtoull(argv[1], &end, 10);
		if (*end != '\0' || v < 1 || argv[1][0] == '-') {
			fprintf(stderr, "%s: expected a whole number of jobs, got '%s'\n", argv[0],
			        argv[1]);
			return 2;
		}
		jobs = v;
	}
	setenv("UV_THREADPOOL_SIZE", "4", 1); /* libuv's default, read at its first queue_work */
	int rc = run(jobs / 5 > 0 ? jobs / 5 : 1, 1);
	rc |= run(jobs, 64);
	return rc;
}
