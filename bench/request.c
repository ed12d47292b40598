/* request.c: request/reply round trips against the same conversation made of two plain sends.
 *
 * Usage: bench/request [roundtrips]   (default 1,000,000)
 *
 * A client asks a server for one 8-byte counter at a time and waits for the answer before the
 * next. `request_plain` does it with two actor_send calls (a ping and a pong, as
 * bench/pingpong); `request_reply` with actor_request and actor_reply, each answer checked
 * against its request's id and tag. Each runs on one worker (`_1w`), on two workers with default
 * placement (`_2w`: the server follows the client to its worker), and on two workers with the
 * two actors fixed on different workers (`_2w_cross`: every message crosses cores). Time runs
 * from the client's first request to its last answer, measured inside the client.
 */
#include <stdbool.h>

#include "bench.h"

#define ROUNDTRIPS_DEFAULT 1000000u

enum { MSG_START = 1, MSG_ASK, MSG_ANSWER, MSG_STOP };

struct client {
	actor_ref_t server;
	bool requests; /* actor_request, or plain sends */
	uint64_t roundtrips, done;
	actor_request_t pending;
	uint64_t t0, t1;
	int ok;
};

static void client_ask(actor_ctx_t *ctx, struct client *c)
{
	actor_system_t *sys = actor_ctx_system(ctx);
	if (c->done == c->roundtrips) {
		c->t1 = bench_now_ns();
		c->ok = 1;
		actor_send(sys, c->server, MSG_STOP, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (c->requests) {
		actor_request_opts_t opts = {.tag = c->done};
		bench_check(actor_request(ctx, c->server, MSG_ASK, &c->done, sizeof(c->done), &opts,
		                          &c->pending),
		            "actor_request");
	} else {
		bench_check(actor_send(sys, c->server, MSG_ASK, &c->done, sizeof(c->done)),
		            "actor_send(ask)");
	}
}

static void client_fail(actor_ctx_t *ctx, struct client *c, const char *why)
{
	fprintf(stderr, "request: round trip %" PRIu64 ": %s\n", c->done, why);
	actor_send(actor_ctx_system(ctx), c->server, MSG_STOP, NULL, 0);
	actor_exit(ctx, 1);
}

static void client_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct client *c = state;
	uint64_t n;
	if (msg->type == MSG_START) {
		c->t0 = bench_now_ns();
	} else if (msg->type == ACTOR_MSG_REPLY) {
		actor_reply_t *r = actor_msg_data(msg);
		if (r->error != 0 || r->request.id != c->pending.id || r->tag != c->done ||
		    r->len != sizeof(n))
			return client_fail(ctx, c, "a reply that does not match its request");
		memcpy(&n, actor_reply_data(r), sizeof(n));
		if (n != c->done + 1)
			return client_fail(ctx, c, "a wrong answer");
		c->done = n;
	} else if (msg->type == MSG_ANSWER) {
		memcpy(&n, actor_msg_data(msg), sizeof(n));
		if (n != c->done + 1)
			return client_fail(ctx, c, "a wrong answer");
		c->done = n;
	}
	client_ask(ctx, c);
}

/* Answers each question with its counter plus one, as a reply or as a plain message. */
static void server_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_STOP) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	uint64_t n;
	memcpy(&n, actor_msg_data(msg), sizeof(n));
	n++;
	if (actor_request_of(ctx, NULL) == 1)
		bench_check(actor_reply(ctx, MSG_ANSWER, &n, sizeof(n)), "actor_reply");
	else
		bench_check(
		    actor_send(actor_ctx_system(ctx), actor_sender(ctx), MSG_ANSWER, &n, sizeof(n)),
		    "actor_send(answer)");
}

/* One run on a fresh system of `workers` workers; `cross`: the two actors fixed on workers 0
 * and 1. Returns 0 if every round trip checked out. */
static int run(const char *name, bool requests, unsigned workers, bool cross, uint64_t roundtrips)
{
	actor_system_t *sys = bench_system(workers);
	struct client c = {.requests = requests, .roundtrips = roundtrips};
	actor_spawn_opts_t on0 = {.placement = ACTOR_PLACE_FIXED, .worker = 0};
	actor_spawn_opts_t on1 = {.placement = ACTOR_PLACE_FIXED, .worker = 1};
	actor_ref_t client;
	bench_check(actor_spawn(sys, cross ? &on1 : NULL, server_fn, NULL, &c.server),
	            "actor_spawn(server)");
	bench_check(actor_spawn(sys, cross ? &on0 : NULL, client_fn, &c, &client),
	            "actor_spawn(client)");
	bench_check(actor_send(sys, client, MSG_START, NULL, 0), "actor_send(start)");
	bench_check(actor_system_run(sys), "actor_system_run");
	bench_dead_letters(sys);
	actor_system_free(sys);
	if (!c.ok) {
		fprintf(stderr, "%s: FAILED after %" PRIu64 " of %" PRIu64 " round trips\n", name,
		        c.done, roundtrips);
		return 1;
	}
	bench_result(name, "roundtrips_per_s", (double)roundtrips / bench_secs(c.t0, c.t1), "1/s");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t roundtrips = bench_arg_u64(argc, argv, 1, ROUNDTRIPS_DEFAULT, UINT64_MAX / 2);
	int rc = 0;
	rc |= run("request_plain_1w", false, 1, false, roundtrips);
	rc |= run("request_reply_1w", true, 1, false, roundtrips);
	rc |= run("request_plain_2w", false, 2, false, roundtrips);
	rc |= run("request_reply_2w", true, 2, false, roundtrips);
	rc |= run("request_plain_2w_cross", false, 2, true, roundtrips);
	rc |= run("request_reply_2w_cross", true, 2, true, roundtrips);
	return rc;
}
