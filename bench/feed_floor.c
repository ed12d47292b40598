/* feed_floor.c: the floor under bench/fork_join_throughput on this machine: its message traffic
 * with nothing of a runtime around it.
 *
 * Usage: bench/feed_floor [messages] [queues]   (defaults 10,000 and 60)
 *
 * The main thread, pinned to CPU 0, pushes `messages` rounds of one 64-byte node to each of
 * `queues` intrusive MPSC queues (the exchange-then-link queue of libactor's mailboxes). One
 * consumer thread, pinned to CPU 1, spins over the queues, pops each node and does Savina's
 * computation (the square of a sine of 37.2) for it, as fork_join_throughput's actors do. The
 * nodes are allocated and touched before the clock starts: no allocator, no scheduling, no
 * wake-ups, no freeing. What is left is what any runtime with a message object per send pays:
 * each node written on one CPU and read on the other, one after another.
 *
 * Time runs from the consumer's start until it has popped every node. With fewer than two CPUs
 * to pin to it says so and reports nothing.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bench.h"

#define MESSAGES_DEFAULT 10000u
#define QUEUES_DEFAULT 60u
#define THETA 37.2

struct node {
	_Atomic(struct node *) next;
	uint64_t pad[7]; /* a cache line, as a small message with its header takes */
};

/* Producer side (tail) and consumer side (head, counts) on lines of their own. */
struct queue {
	_Alignas(64) _Atomic(struct node *) tail;
	_Alignas(64) struct node *head;
	uint64_t got, bad;
	double theta; /* read from memory, so that the sine is not folded */
	struct node stub;
};

static struct queue *queues;
static unsigned nqueues;
static uint64_t messages;

static void push(struct queue *q, struct node *n)
{
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	struct node *prev = atomic_exchange_explicit(&q->tail, n, memory_order_acq_rel);
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

static struct node *pop(struct queue *q)
{
	struct node *next = atomic_load_explicit(&q->head->next, memory_order_acquire);
	if (next != NULL)
		q->head = next;
	return next;
}

static bool pin(unsigned cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static void *consumer(void *arg)
{
	(void)arg;
	if (!pin(1))
		fprintf(stderr, "feed_floor: cannot pin the consumer to CPU 1\n");
	for (unsigned left = nqueues; left > 0;)
		for (unsigned i = 0; i < nqueues; i++) {
			struct queue *q = &queues[i];
			if (q->got == messages)
				continue;
			while (pop(q) != NULL) {
				double s = sin(q->theta);
				q->bad += s * s <= 0;
				if (++q->got == messages) {
					left--;
					break;
				}
			}
		}
	return NULL;
}

int main(int argc, char **argv)
{
	messages = bench_arg_u64(argc, argv, 1, MESSAGES_DEFAULT, UINT64_MAX / 1024);
	nqueues = (unsigned)bench_arg_u64(argc, argv, 2, QUEUES_DEFAULT, 100000u);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || !pin(0)) {
		fprintf(stderr, "feed_floor: needs two CPUs to pin to\n");
		return 1;
	}
	uint64_t total = messages * nqueues;
	queues = aligned_alloc(64, sizeof(*queues) * nqueues);
	struct node *nodes = aligned_alloc(64, sizeof(*nodes) * total);
	if (queues == NULL || nodes == NULL) {
		fprintf(stderr, "feed_floor: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < nqueues; i++) {
		struct queue *q = &queues[i];
		atomic_init(&q->stub.next, NULL);
		atomic_init(&q->tail, &q->stub);
		q->head = &q->stub;
		q->got = q->bad = 0;
		q->theta = THETA;
	}
	for (uint64_t k = 0; k < total; k++) /* faulted in before the clock starts */
		nodes[k].pad[0] = k;

	uint64_t t0 = bench_now_ns();
	pthread_t t;
	if (pthread_create(&t, NULL, consumer, NULL) != 0) {
		fprintf(stderr, "feed_floor: pthread_create failed\n");
		return 1;
	}
	uint64_t k = 0;
	for (uint64_t m = 0; m < messages; m++)
		for (unsigned i = 0; i < nqueues; i++)
			push(&queues[i], &nodes[k++]);
	pthread_join(t, NULL);
	uint64_t t1 = bench_now_ns();

	int rc = 0;
	for (unsigned i = 0; i < nqueues; i++)
		if (queues[i].got != messages || queues[i].bad != 0) {
			fprintf(stderr,
			        "feed_floor: queue %u: %" PRIu64 " of %" PRIu64 ", %" PRIu64
			        " bad\n",
			        i, queues[i].got, messages, queues[i].bad);
			rc = 1;
		}
	if (rc == 0)
		printf(
		    "RESULT name=fork_join_throughput impl=floor metric=time value=%.3f unit=ms\n",
		    bench_ms(t0, t1));
	free(nodes);
	free(queues);
	return rc;
}
