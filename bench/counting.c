/* counting.c: message throughput into one actor, from one sender and from four.
 *
 * Usage: bench/counting [messages] [window]   (defaults 10,000,000 and 65536; window 0 = none)
 *
 * Sender actors send their share of `messages` to one counting actor in chunks of CHUNK, then
 * send themselves a CONTINUE for the next chunk. A turn handles the CONTINUE too, up to the
 * system's batch (64 messages), so a sender yields the worker every 64 chunks, and the window
 * (below) is what bounds the counter's backlog. The counter checks that
 * every message arrives exactly once and in order per sender (contract 2), and stops everyone
 * when the total is reached.
 *
 * `window` bounds the messages a sender may have in flight (credit-based flow control: the
 * counter returns window/2 credits after each window/2 messages from a sender). 0 sends flat
 * out, with no bound on the counter's mailbox; see WINDOW_DEFAULT for why the default bounds it.
 */
#include "bench.h"

#define MESSAGES_DEFAULT 10000000u
#define CHUNK 1000u /* messages per sender turn: long enough to amortise the CONTINUE */
/* Flat out, the sender outruns the counter and nearly every message waits in the counter's
 * mailbox: peak RSS ~330 MB for 10M messages, rates 7-14M/s and noisy (page faults). A window
 * of 64K keeps RSS at ~14 MB and measured 17M/s (1to1) and 22M/s (4to1), steadily; 16K stalls
 * the single sender now and then; 256K is no faster. (2-core EPYC VM, jemalloc.) */
#define WINDOW_DEFAULT 65536u
#define SENDERS_MAX 64u

enum { MSG_START = 1, MSG_CONTINUE, MSG_COUNT, MSG_CREDIT, MSG_STOP };

/* A MSG_COUNT payload: the sender's index in the top byte, its sequence number below. */
#define SEQ_BITS 56
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

struct counter {
	uint64_t expected, count;
	unsigned nsenders;
	actor_ref_t senders[SENDERS_MAX];
	uint64_t next_seq[SENDERS_MAX]; /* per sender: the sequence number due next */
	uint64_t grant;                 /* credits returned per grant; 0 = no flow control */
	uint64_t t1;
	int ok; /* 1: total reached with every message in order; -1: a check failed */
};

struct sender {
	actor_ref_t counter;
	unsigned index;
	uint64_t remaining, seq;
	uint64_t credit; /* messages it may still send; UINT64_MAX without flow control */
	uint64_t grant;  /* credits one MSG_CREDIT returns */
	int stalled;     /* 1 while waiting for credit, with no CONTINUE in its mailbox */
};

static void counter_stop_all(actor_ctx_t *ctx, struct counter *c, int ok)
{
	actor_system_t *sys = actor_ctx_system(ctx);

	c->t1 = bench_now_ns();
	c->ok = ok;
	for (unsigned i = 0; i < c->nsenders; i++)
		actor_send(sys, c->senders[i], MSG_STOP, NULL, 0);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void counter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct counter *c = state;
	uint64_t v;

	if (msg->type != MSG_COUNT || msg->size != sizeof(v))
		return;
	memcpy(&v, actor_msg_data(msg), sizeof(v));
	unsigned idx = (unsigned)(v >> SEQ_BITS);
	uint64_t seq = v & SEQ_MASK;
	if (idx >= c->nsenders || seq != c->next_seq[idx]) {
		fprintf(stderr,
		        "counting: sender %u: got message %" PRIu64 ", expected %" PRIu64 "\n", idx,
		        seq, idx < c->nsenders ? c->next_seq[idx] : 0);
		counter_stop_all(ctx, c, -1);
		return;
	}
	c->next_seq[idx] = seq + 1;
	if (c->grant != 0 && (seq + 1) % c->grant == 0)
		actor_send(actor_ctx_system(ctx), c->senders[idx], MSG_CREDIT, NULL, 0);
	if (++c->count == c->expected)
		counter_stop_all(ctx, c, 1);
}

/* Sends up to one chunk, then either yields (CONTINUE to itself) or waits for credit. */
static void sender_send_chunk(actor_ctx_t *ctx, struct sender *s)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	uint64_t n = s->remaining < CHUNK ? s->remaining : CHUNK;

	if (n > s->credit)
		n = s->credit;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = ((uint64_t)s->index << SEQ_BITS) | s->seq++;
		bench_check(actor_send(sys, s->counter, MSG_COUNT, &v, sizeof(v)),
		            "actor_send(count)");
	}
	s->remaining -= n;
	if (s->credit != UINT64_MAX)
		s->credit -= n;
	if (s->remaining == 0)
		return; /* done; stays alive until the counter says STOP */
	if (s->credit == 0) {
		s->stalled = 1;
		return;
	}
	bench_check(actor_send(sys, actor_self(ctx), MSG_CONTINUE, NULL, 0),
	            "actor_send(continue)");
}

static void sender_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sender *s = state;

	switch (msg->type) {
	case MSG_START:
	case MSG_CONTINUE:
		sender_send_chunk(ctx, s);
		break;
	case MSG_CREDIT:
		s->credit += s->grant;
		if (s->stalled) {
			s->stalled = 0;
			sender_send_chunk(ctx, s);
		}
		break;
	case MSG_STOP:
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	}
}

/* Runs one round: `nsenders` senders share `messages`; returns 0 if every message arrived. */
static int count(const char *name, unsigned nsenders, uint64_t messages, uint64_t window)
{
	actor_system_t *sys = bench_system(0);
	struct counter *c = calloc(1, sizeof(*c));
	struct sender *s = calloc(nsenders, sizeof(*s));
	actor_ref_t counter;

	if (c == NULL || s == NULL)
		bench_check(-ENOMEM, "calloc");
	c->expected = messages;
	c->nsenders = nsenders;
	c->grant = window / 2;
	bench_check(actor_spawn(sys, NULL, counter_fn, c, &counter), "actor_spawn(counter)");
	for (unsigned i = 0; i < nsenders; i++) {
		s[i].counter = counter;
		s[i].index = i;
		s[i].remaining = messages / nsenders + (i < messages % nsenders ? 1 : 0);
		s[i].grant = c->grant;
		s[i].credit = c->grant != 0 ? 2 * c->grant : UINT64_MAX;
		bench_check(actor_spawn(sys, NULL, sender_fn, &s[i], &c->senders[i]),
		            "actor_spawn(sender)");
	}

	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < nsenders; i++)
		bench_check(actor_send(sys, c->senders[i], MSG_START, NULL, 0),
		            "actor_send(start)");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);

	int rc = 0;
	if (c->ok != 1) {
		fprintf(stderr, "%s: FAILED: %" PRIu64 " of %" PRIu64 " messages counted\n", name,
		        c->count, messages);
		rc = 1;
	} else {
		bench_result(name, "msgs_per_s", (double)messages / bench_secs(t0, c->t1), "1/s");
	}
	free(s);
	free(c);
	return rc;
}

int main(int argc, char **argv)
{
	uint64_t messages = bench_arg_u64(argc, argv, 1, MESSAGES_DEFAULT, SEQ_MASK);
	uint64_t window = WINDOW_DEFAULT;
	int rc = 0;

	if (argc > 2)
		window =
		    strcmp(argv[2], "0") == 0 ? 0 : bench_arg_u64(argc, argv, 2, 0, UINT32_MAX);
	if (window == 1) {
		fprintf(stderr, "%s: window must be 0 (flat out) or at least 2\n", argv[0]);
		return 2;
	}
	if (messages < 4) {
		fprintf(stderr, "%s: need at least 4 messages\n", argv[0]);
		return 2;
	}
	rc |= count("counting_1to1", 1, messages, window);
	rc |= count("counting_4to1", 4, messages, window);
	return rc;
}
