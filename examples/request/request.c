/* request.c: a key-value store sharded over four actors, asked by an actor and by main.
 *
 * The client actor sends one request per key to the shard that holds the key, all at once, and
 * matches each ACTOR_MSG_REPLY to its key by the tag it gave: the answers of four shards arrive
 * in any order, and no request needs numbering by hand. main asks a shard itself first, with
 * actor_request_wait, which blocks until the answer. A shard's value for a key is key * key.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <actor.h>

#define SHARDS 4
#define KEYS 16

enum { MSG_GET = 1, MSG_VALUE };

/* A shard: answers each MSG_GET with the key's value. */
static void shard(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	uint64_t key, value;
	memcpy(&key, actor_msg_data(msg), sizeof(key));
	value = key * key;
	actor_reply(ctx, MSG_VALUE, &value, sizeof(value));
}

struct client {
	actor_ref_t shards[SHARDS];
	uint64_t sum;
	unsigned answers, wrong;
};

/* Asks for every key at once, each request tagged with its key. */
static void client_start(actor_ctx_t *ctx, void *state)
{
	struct client *c = state;
	for (uint64_t key = 0; key < KEYS; key++) {
		actor_request_opts_t opts = {.timeout_ns = ACTOR_SEC(5), .tag = key};
		actor_request_t req;
		if (actor_request(ctx, c->shards[key % SHARDS], MSG_GET, &key, sizeof(key), &opts,
		                  &req) < 0)
			c->wrong++;
	}
}

/* Each answer names its key in the tag; after the last, stops the shards and itself. */
static void client(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct client *c = state;
	actor_reply_t *r = actor_msg_data(msg);
	uint64_t value = 0;
	if (r->error == 0)
		memcpy(&value, actor_reply_data(r), sizeof(value));
	if (r->error != 0 || value != r->tag * r->tag)
		c->wrong++;
	c->sum += value;
	if (++c->answers + c->wrong < KEYS)
		return;
	for (int i = 0; i < SHARDS; i++)
		actor_stop(actor_ctx_system(ctx), c->shards[i]);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

int main(void)
{
	actor_system_t *sys;
	struct client c = {0};
	actor_ref_t ref;
	if (actor_system_create(NULL, &sys) < 0)
		return 1;
	for (int i = 0; i < SHARDS; i++)
		actor_spawn(sys, NULL, shard, NULL, &c.shards[i]);

	uint64_t key = 7;
	actor_msg_t *reply;
	int rc = actor_request_wait(sys, c.shards[key % SHARDS], MSG_GET, &key, sizeof(key),
	                            ACTOR_SEC(5), &reply);
	if (rc == 0) {
		uint64_t value;
		memcpy(&value, actor_reply_data(actor_msg_data(reply)), sizeof(value));
		printf("main: key %" PRIu64 " has value %" PRIu64 "\n", key, value);
		actor_msg_free(reply);
	}

	actor_spawn(sys, &(actor_spawn_opts_t){.start = client_start}, client, &c, &ref);
	actor_system_run(sys);
	actor_system_free(sys);
	printf("client: %u answers, sum of values %" PRIu64 "\n", c.answers, c.sum);
	return rc == 0 && c.answers == KEYS && c.wrong == 0 ? 0 : 1;
}
