/* test_mailbox.c: the lock-free MPSC queue behind every mailbox (libactor/core/mpsc.h), tested
 * directly: order, the was-empty and closed transitions, and two stress tests with more
 * producer threads than cores.
 *
 * Stress parameters: `test_mailbox [producers] [messages per producer]`, or the environment
 * variables MAILBOX_PRODUCERS and MAILBOX_MESSAGES.
 */
#include "common.h"

#include "core/mpsc.h"

#define PRODUCERS_DEFAULT 4          /* more threads than the 2 cores of the CI machines */
#define MESSAGES_DEFAULT 250000      /* 1M messages: about a second unsanitized */
#define WAKE_MESSAGES_DEFAULT 100000 /* per producer; every empty push costs a condvar signal */

/* A queued test message: the node first, as the runtime embeds it in its messages. */
struct item {
	struct actor__mpsc_node node;
	unsigned producer;
	uint64_t seq;
};

static struct item *item_of(struct actor__mpsc_node *n)
{
	return (struct item *)n;
}

static unsigned stress_producers(void)
{
	return test_param(1, "MAILBOX_PRODUCERS", PRODUCERS_DEFAULT);
}

static uint64_t stress_messages(uint64_t dflt)
{
	return test_param(2, "MAILBOX_MESSAGES", dflt);
}

/* ---------------------------------------------------------------------------------------------
 * Single-threaded transitions
 */

START_TEST(mailbox_keeps_fifo_order_for_one_producer)
{
	enum { N = 1000 };
	static struct item items[N];
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	for (unsigned i = 0; i < N; i++) {
		items[i].seq = i;
		actor__mpsc_push(&q, &items[i].node);
	}
	for (unsigned i = 0; i < N; i++) {
		struct actor__mpsc_node *n = actor__mpsc_pop(&q);
		ck_assert_ptr_nonnull(n);
		ck_assert_ptr_eq(n, &items[i].node);
		ck_assert_uint_eq(item_of(n)->seq, i);
	}
	ck_assert_ptr_null(actor__mpsc_pop(&q));
	ck_assert(actor__mpsc_is_empty(&q));
}
END_TEST

START_TEST(mailbox_interleaves_pushes_and_pops_in_order)
{
	enum { N = 300 };
	static struct item items[N];
	struct actor__mpsc q;
	actor__mpsc_init(&q);
	unsigned pushed = 0, popped = 0;

	/* Push one, two, three... at a time and pop a little less, so the stub node is passed
	 * around at every position. */
	for (unsigned burst = 1; pushed < N; burst++) {
		for (unsigned i = 0; i < burst && pushed < N; i++, pushed++) {
			items[pushed].seq = pushed;
			actor__mpsc_push(&q, &items[pushed].node);
		}
		for (unsigned i = 0; i + 1 < burst && popped < pushed; i++, popped++) {
			struct actor__mpsc_node *n = actor__mpsc_pop(&q);
			ck_assert_ptr_eq(n, &items[popped].node);
		}
	}
	while (popped < N) {
		struct actor__mpsc_node *n = actor__mpsc_pop(&q);
		ck_assert_ptr_eq(n, &items[popped].node);
		popped++;
	}
	ck_assert_ptr_null(actor__mpsc_pop(&q));
}
END_TEST

START_TEST(mailbox_reports_empty_to_the_first_push_only)
{
	struct item a, b, c;
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	ck_assert_uint_eq(actor__mpsc_push(&q, &a.node), MPSC_EMPTY);
	ck_assert_uint_eq(actor__mpsc_push(&q, &b.node), 0);
	ck_assert_uint_eq(actor__mpsc_push(&q, &c.node), 0);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &b.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &c.node);
	ck_assert_ptr_null(actor__mpsc_pop(&q));
}
END_TEST

START_TEST(mailbox_reports_empty_again_after_mark_empty)
{
	struct item a, b, c, d;
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	ck_assert_uint_eq(actor__mpsc_push(&q, &a.node), MPSC_EMPTY);
	ck_assert_uint_eq(actor__mpsc_push(&q, &b.node), 0);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &b.node);
	ck_assert_ptr_null(actor__mpsc_pop(&q));
	/* Drained but not marked: a push now must not ask for scheduling. */
	ck_assert_uint_eq(actor__mpsc_push(&q, &c.node), 0);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &c.node);
	ck_assert(actor__mpsc_mark_empty(&q));
	ck_assert_uint_eq(actor__mpsc_push(&q, &d.node), MPSC_EMPTY);
	ck_assert_uint_eq(actor__mpsc_push(&q, &a.node), 0);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &d.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert_ptr_null(actor__mpsc_pop(&q));
}
END_TEST

START_TEST(mailbox_refuses_mark_empty_while_nodes_are_queued)
{
	struct item a, b;
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	actor__mpsc_push(&q, &a.node);
	ck_assert(!actor__mpsc_mark_empty(&q));
	ck_assert(!actor__mpsc_is_empty(&q));
	actor__mpsc_push(&q, &b.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert(!actor__mpsc_mark_empty(&q));
	/* A refused mark leaves the queue running: the next push is not told "was empty". */
	struct item c;
	ck_assert_uint_eq(actor__mpsc_push(&q, &c.node), 0);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &b.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &c.node);
	ck_assert(actor__mpsc_is_empty(&q));
	ck_assert(actor__mpsc_mark_empty(&q));
	/* Marking a marked queue is idempotent. */
	ck_assert(actor__mpsc_mark_empty(&q));
	ck_assert_uint_eq(actor__mpsc_push(&q, &a.node), MPSC_EMPTY);
}
END_TEST

START_TEST(mailbox_reports_closed_after_close_from_running)
{
	struct item a, b, c;
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	actor__mpsc_push(&q, &a.node);
	ck_assert(!actor__mpsc_close(&q, false)); /* not empty yet */
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert(!actor__mpsc_close(&q, true)); /* running, not marked: wrong expected state */
	ck_assert(actor__mpsc_close(&q, false));
	ck_assert_uint_eq(actor__mpsc_push(&q, &b.node), MPSC_EMPTY | MPSC_CLOSED);
	/* Only the first push after the close sees the flags; the others must do nothing. */
	ck_assert_uint_eq(actor__mpsc_push(&q, &c.node), 0);
	/* Nodes pushed after the close stay queued for the owner's reclamation to drain. */
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &b.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &c.node);
	ck_assert_ptr_null(actor__mpsc_pop(&q));
}
END_TEST

START_TEST(mailbox_reports_closed_after_close_from_marked)
{
	struct item a, b;
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	ck_assert(actor__mpsc_mark_empty(&q));
	ck_assert(!actor__mpsc_close(&q, false)); /* marked: wrong expected state */
	ck_assert(actor__mpsc_close(&q, true));
	ck_assert_uint_eq(actor__mpsc_push(&q, &a.node), MPSC_EMPTY | MPSC_CLOSED);
	ck_assert_uint_eq(actor__mpsc_push(&q, &b.node), 0);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &b.node);
	ck_assert_ptr_null(actor__mpsc_pop(&q));
}
END_TEST

START_TEST(mailbox_close_loses_to_a_push_that_got_there_first)
{
	struct item a;
	struct actor__mpsc q;
	actor__mpsc_init(&q);

	ck_assert(actor__mpsc_mark_empty(&q));
	ck_assert_uint_eq(actor__mpsc_push(&q, &a.node), MPSC_EMPTY);
	ck_assert(!actor__mpsc_close(&q, true));
	ck_assert_ptr_eq(actor__mpsc_pop(&q), &a.node);
	ck_assert(actor__mpsc_close(&q, false));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Stress: many producers, one consumer
 */

struct stress {
	struct actor__mpsc q;
	unsigned producers;
	uint64_t messages;  /* per producer */
	struct item *items; /* producers * messages, producer-major */
	pthread_barrier_t start;

	/* Wake-up accounting for the "exactly one producer sees EMPTY" test. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t signals;         /* pushes that saw MPSC_EMPTY (under lock) */
	_Atomic uint64_t empties; /* pushes that saw MPSC_EMPTY */
	_Atomic uint64_t closed;  /* pushes that saw MPSC_CLOSED: must stay 0 */
	_Atomic uint64_t bad_flags;
	bool signal_consumer;
};

struct producer_arg {
	struct stress *s;
	unsigned id;
};

static uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void pause_spins(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ck_pr_stall();
}

static void *producer_main(void *arg)
{
	struct producer_arg *pa = arg;
	struct stress *s = pa->s;
	struct item *mine = s->items + (size_t)pa->id * s->messages;

	uint64_t rng = 0x9e3779b97f4a7c15ull * (pa->id + 1);
	pthread_barrier_wait(&s->start);
	for (uint64_t i = 0; i < s->messages; i++) {
		/* In the wake-up test, pause a random while now and then so that the queue runs
		 * dry often and pushes race with the consumer's mark_empty. */
		if (s->signal_consumer && (rng = xorshift(rng)) % 4 == 0)
			pause_spins((rng >> 8) % 2048);
		mine[i].producer = pa->id;
		mine[i].seq = i;
		uintptr_t flags = actor__mpsc_push(&s->q, &mine[i].node);
		if (flags & MPSC_EMPTY)
			atomic_fetch_add(&s->empties, 1);
		if (flags & MPSC_CLOSED)
			atomic_fetch_add(&s->closed, 1);
		if (flags & ~MPSC_EMPTY)
			atomic_fetch_add(&s->bad_flags, 1);
		if ((flags & MPSC_EMPTY) && s->signal_consumer) {
			pthread_mutex_lock(&s->lock);
			s->signals++;
			pthread_cond_signal(&s->cond);
			pthread_mutex_unlock(&s->lock);
		}
	}
	return NULL;
}

static void stress_init(struct stress *s, unsigned producers, uint64_t messages, bool signal)
{
	memset(s, 0, sizeof(*s));
	actor__mpsc_init(&s->q);
	s->producers = producers;
	s->messages = messages;
	s->items = calloc((size_t)producers * messages, sizeof(struct item));
	ck_assert_ptr_nonnull(s->items);
	pthread_barrier_init(&s->start, NULL, producers + 1);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->lock, NULL);
	s->signal_consumer = signal;
}

static void stress_start(struct stress *s, pthread_t *threads, struct producer_arg *args)
{
	for (unsigned p = 0; p < s->producers; p++) {
		args[p] = (struct producer_arg){.s = s, .id = p};
		ck_assert_int_eq(pthread_create(&threads[p], NULL, producer_main, &args[p]), 0);
	}
	pthread_barrier_wait(&s->start);
}

static void stress_fini(struct stress *s)
{
	pthread_barrier_destroy(&s->start);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->items);
}

/* What the consumer checks of every node it pops. */
struct tally {
	uint64_t *next_seq; /* per producer */
	uint8_t *seen;      /* per item */
	uint64_t count;
	uint64_t out_of_order, duplicates, foreign;
};

static void tally_init(struct tally *t, const struct stress *s)
{
	memset(t, 0, sizeof(*t));
	t->next_seq = calloc(s->producers, sizeof(uint64_t));
	t->seen = calloc((size_t)s->producers * s->messages, 1);
	ck_assert(t->next_seq != NULL && t->seen != NULL);
}

static void tally_node(struct tally *t, const struct stress *s, struct actor__mpsc_node *n)
{
	struct item *it = item_of(n);
	size_t idx = (size_t)(it - s->items);
	t->count++;
	if (it < s->items || idx >= (size_t)s->producers * s->messages) {
		t->foreign++;
		return;
	}
	if (t->seen[idx]++)
		t->duplicates++;
	if (it->seq != t->next_seq[it->producer])
		t->out_of_order++;
	t->next_seq[it->producer] = it->seq + 1;
}

static void tally_check(struct tally *t, const struct stress *s)
{
	uint64_t total = (uint64_t)s->producers * s->messages;
	ck_assert_msg(t->foreign == 0, "%" PRIu64 " popped nodes were never pushed", t->foreign);
	ck_assert_msg(t->duplicates == 0, "%" PRIu64 " nodes popped twice", t->duplicates);
	ck_assert_msg(t->out_of_order == 0, "%" PRIu64 " nodes out of per-producer order",
	              t->out_of_order);
	ck_assert_uint_eq(t->count, total);
	for (unsigned p = 0; p < s->producers; p++)
		ck_assert_uint_eq(t->next_seq[p], s->messages);
	free(t->next_seq);
	free(t->seen);
}

START_TEST(mailbox_delivers_every_message_once_in_order_per_producer)
{
	struct stress s;
	unsigned producers = stress_producers();
	stress_init(&s, producers, stress_messages(MESSAGES_DEFAULT), false);
	pthread_t threads[producers];
	struct producer_arg args[producers];
	struct tally t;
	tally_init(&t, &s);
	uint64_t total = (uint64_t)producers * s.messages;
	double deadline = now_sec() + TEST_WATCHDOG_STRESS * test_scale();

	stress_start(&s, threads, args);
	/* This thread is the consumer. A pop may return NULL while a push is in progress, so an
	 * empty pop only means "look again". */
	while (t.count < total && now_sec() < deadline) {
		struct actor__mpsc_node *n = actor__mpsc_pop(&s.q);
		if (n == NULL) {
			sched_yield();
			continue;
		}
		tally_node(&t, &s, n);
	}
	for (unsigned p = 0; p < producers; p++)
		pthread_join(threads[p], NULL);
	ck_assert_msg(t.count == total, "consumer got %" PRIu64 " of %" PRIu64 " messages in time",
	              t.count, total);
	ck_assert_ptr_null(actor__mpsc_pop(&s.q));
	ck_assert(actor__mpsc_is_empty(&s.q));
	tally_check(&t, &s);
	/* The queue started marked: exactly one push (the first) saw EMPTY; none saw CLOSED. */
	assert_atomic_eq(s.empties, 1);
	assert_atomic_eq(s.closed, 0);
	assert_atomic_eq(s.bad_flags, 0);
	stress_fini(&s);
}
END_TEST

/* The consumer behaves like a worker: it touches the queue only after a wake-up, drains it,
 * marks it empty and sleeps. A producer that is told MPSC_EMPTY wakes it. Every wake must
 * find work (no spurious wake), no wake may arrive while the consumer is draining (no double
 * scheduling), and every message must be consumed (no lost wake-up). */
START_TEST(mailbox_wakes_the_consumer_exactly_once_per_empty_push)
{
	struct stress s;
	unsigned producers = stress_producers();
	stress_init(&s, producers, stress_messages(WAKE_MESSAGES_DEFAULT), true);
	pthread_t threads[producers];
	struct producer_arg args[producers];
	struct tally t;
	tally_init(&t, &s);
	uint64_t total = (uint64_t)producers * s.messages;
	uint64_t wakes = 0, empty_turns = 0, double_wakes = 0, mark_retries = 0;
	bool lost = false;
	double limit = TEST_WATCHDOG_STRESS * test_scale();
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)limit;

	stress_start(&s, threads, args);
	while (t.count < total) {
		pthread_mutex_lock(&s.lock);
		while (s.signals == wakes) {
			if (pthread_cond_timedwait(&s.cond, &s.lock, &deadline) == ETIMEDOUT &&
			    s.signals == wakes) {
				lost = true;
				break;
			}
		}
		if (!lost) {
			wakes++;
			/* Only the producer that un-marked the queue may have signalled. */
			if (s.signals != wakes)
				double_wakes++;
		}
		pthread_mutex_unlock(&s.lock);
		if (lost)
			break;

		uint64_t before = t.count;
		for (;;) {
			struct actor__mpsc_node *n;
			while ((n = actor__mpsc_pop(&s.q)) != NULL)
				tally_node(&t, &s, n);
			if (actor__mpsc_mark_empty(&s.q))
				break;
			mark_retries++; /* a push in progress or a new node: drain again */
			sched_yield();
		}
		if (t.count == before)
			empty_turns++;
	}
	ck_assert_msg(!lost,
	              "lost wake-up: %" PRIu64 " of %" PRIu64 " messages consumed, %" PRIu64
	              " wakes, no signal for %.0f s",
	              t.count, total, wakes, limit);
	for (unsigned p = 0; p < producers; p++)
		pthread_join(threads[p], NULL);
	tally_check(&t, &s);
	ck_assert_msg(double_wakes == 0, "%" PRIu64 " wakes arrived while the consumer ran",
	              double_wakes);
	ck_assert_msg(empty_turns == 0, "%" PRIu64 " wakes found nothing to do", empty_turns);
	/* Every EMPTY push was answered by exactly one turn of the consumer. */
	ck_assert_uint_eq(s.signals, wakes);
	assert_atomic_eq(s.empties, wakes);
	assert_atomic_eq(s.closed, 0);
	assert_atomic_eq(s.bad_flags, 0);
	/* The consumer's last act was marking the queue empty: it must still be marked. */
	struct item last;
	ck_assert_uint_eq(actor__mpsc_push(&s.q, &last.node), MPSC_EMPTY);
	ck_assert_ptr_eq(actor__mpsc_pop(&s.q), &last.node);
	fprintf(stderr,
	        "mailbox wake stress: %u producers x %" PRIu64 " messages, %" PRIu64
	        " wakes, %" PRIu64 " mark retries\n",
	        producers, s.messages, wakes, mark_retries);
	stress_fini(&s);
}
END_TEST

static Suite *mailbox_suite(void)
{
	Suite *s = suite_create("mailbox");
	TCase *tc = tcase_new("transitions", TEST_TIMEOUT);
	tcase_add_test(tc, mailbox_keeps_fifo_order_for_one_producer);
	tcase_add_test(tc, mailbox_interleaves_pushes_and_pops_in_order);
	tcase_add_test(tc, mailbox_reports_empty_to_the_first_push_only);
	tcase_add_test(tc, mailbox_reports_empty_again_after_mark_empty);
	tcase_add_test(tc, mailbox_refuses_mark_empty_while_nodes_are_queued);
	tcase_add_test(tc, mailbox_reports_closed_after_close_from_running);
	tcase_add_test(tc, mailbox_reports_closed_after_close_from_marked);
	tcase_add_test(tc, mailbox_close_loses_to_a_push_that_got_there_first);
	suite_add_tcase(s, tc);

	tc = tcase_new("stress", TEST_TIMEOUT_STRESS);
	tcase_add_test(tc, mailbox_delivers_every_message_once_in_order_per_producer);
	tcase_add_test(tc, mailbox_wakes_the_consumer_exactly_once_per_empty_push);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(mailbox_suite)
