/* kv.c: a sharded key-value store that outlives its shards' failures, built on a supervisor,
 * registered names and request/reply.
 *
 * A one_for_one supervisor starts the shards, each an actor holding a hash map of string keys
 * to string values, and registers each start under "kv-shard-<i>" (register_as). Client actors
 * find a key's shard by name (actor_whereis) for every request, keep several requests in flight
 * matched by their tags, and check every answer against what they themselves stored: each
 * client has keys of its own, and never two requests on one key at once.
 *
 * With --crash-every K, each shard fails (actor_exit with a reason) on the K-th request it
 * gets, and the supervisor starts a new one under the same name. A restarted shard starts
 * EMPTY: what the failed one held is lost, as nothing is persisted (that is out of scope here).
 * The request it failed on, and those queued behind it, are answered with -ESRCH; the client
 * looks the name up again and retries. An answer names the shard instance that gave it (the
 * reply's sender): an instance newer than the one that last answered for a key has never seen
 * the key, so a miss there is expected (counted as lost to a restart); any other mismatch is
 * wrong.
 *
 * Usage: kv [--shards N] [--clients N] [--ops M] [--crash-every K]
 * Exits 1 if an answer was wrong or the counts do not add up, 2 for bad arguments.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <actor.h>

enum { KV_PUT = 1, KV_GET, KV_DEL, KV_ANSWER };

#define KEY_MAX 32              /* bytes of a key */
#define VALUE_MAX 128           /* bytes of a value */
#define SHARD_KEYS_MAX 4096     /* keys a shard holds; a put of one more is refused (-ENOSPC) */
#define BUCKETS 256             /* chains of a shard's hash map */
#define SHARDS_MAX 256          /* --shards */
#define CLIENTS_MAX 64          /* --clients */
#define INFLIGHT 8              /* requests a client keeps in flight */
#define CLIENT_KEYS 64          /* keys of a client, a multiple of INFLIGHT */
#define TIMEOUT ACTOR_SEC(5)    /* of a request; a timed-out one is sent again */
#define RETRY_DELAY ACTOR_MS(1) /* before asking a name that no shard holds yet again */
#define REASON_CRASH 1          /* the stop reason of a shard told to fail */

/* A request (put, get, delete): the lengths, then the key and the value (no NUL). */
struct kv_req {
	uint16_t klen, vlen;
	char bytes[KEY_MAX + VALUE_MAX + 1];
};
/* An answer: 0 or -errno (-ENOENT: no such key; -EINVAL: a bad request; -ENOSPC: the shard
 * is full), then a get's value. */
struct kv_answer {
	int32_t status;
	char value[VALUE_MAX];
};

static uint32_t hash(const char *s, size_t n) /* FNV-1a */
{
	uint32_t h = 2166136261u;
	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* ---------------------------------------------------------------------------------------------
 * A shard
 */

static unsigned crash_every;         /* set by main before the system starts, read-only after */
static atomic_ulong starts, crashes; /* of shards: starts (restarts included), failures */

struct entry {
	struct entry *next;
	uint16_t klen, vlen;
	char bytes[]; /* the key, then the value */
};

struct shard {
	unsigned requests; /* requests this instance has got (counted with --crash-every only) */
	unsigned keys;
	struct entry *bucket[BUCKETS];
};

static void *shard_new(void *arg) /* the supervisor calls it at each start: an empty map */
{
	(void)arg;
	atomic_fetch_add(&starts, 1);
	return calloc(1, sizeof(struct shard));
}

static void shard_free(void *state)
{
	struct shard *s = state;
	for (unsigned i = 0; i < BUCKETS; i++)
		for (struct entry *e = s->bucket[i], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(s);
}

/* A known op, a key of 1 to KEY_MAX bytes, a value of at most VALUE_MAX only for a put. */
static int well_formed(const actor_msg_t *msg, const struct kv_req *r)
{
	size_t head = offsetof(struct kv_req, bytes);
	return msg->type >= KV_PUT && msg->type <= KV_DEL && msg->size >= head &&
	       msg->size == head + r->klen + r->vlen && r->klen >= 1 && r->klen <= KEY_MAX &&
	       r->vlen <= (msg->type == KV_PUT ? VALUE_MAX : 0);
}

/* Does a well-formed request; a get's entry goes to *found. */
static int shard_do(struct shard *s, uint32_t op, const struct kv_req *r,
                    const struct entry **found)
{
	struct entry **p = &s->bucket[hash(r->bytes, r->klen) % BUCKETS], *e, *n;
	while ((e = *p) != NULL && (e->klen != r->klen || memcmp(e->bytes, r->bytes, r->klen) != 0))
		p = &e->next;
	if (op != KV_PUT && e == NULL)
		return -ENOENT;
	if (op == KV_GET) {
		*found = e;
		return 0;
	}
	if (op == KV_PUT) {
		if (e == NULL && s->keys == SHARD_KEYS_MAX)
			return -ENOSPC;
		if ((n = malloc(sizeof(*n) + r->klen + r->vlen)) == NULL)
			return -ENOMEM;
		*n = (struct entry){
		    .next = e != NULL ? e->next : NULL, .klen = r->klen, .vlen = r->vlen};
		memcpy(n->bytes, r->bytes, r->klen + r->vlen);
		s->keys += e == NULL;
	} else {
		n = e->next;
		s->keys--;
	}
	*p = n;
	free(e);
	return 0;
}

static void shard_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct shard *s = state;
	if (actor_request_of(ctx, NULL) != 1)
		return; /* a plain message: nobody to answer */
	if (crash_every != 0 && ++s->requests == crash_every) {
		/* Fail without answering: this requester gets -ESRCH, and so do those whose
		 * requests are queued behind it. The supervisor starts a new shard, empty, under
		 * the name. */
		atomic_fetch_add(&crashes, 1);
		actor_exit(ctx, REASON_CRASH);
		return;
	}
	struct kv_answer a;
	const struct kv_req *r = actor_msg_data(msg);
	const struct entry *e = NULL;
	a.status = well_formed(msg, r) ? shard_do(s, msg->type, r, &e) : -EINVAL;
	size_t vlen = e != NULL ? e->vlen : 0;
	if (vlen > 0)
		memcpy(a.value, e->bytes + e->klen, vlen);
	actor_reply(ctx, KV_ANSWER, &a, offsetof(struct kv_answer, value) + vlen);
}

/* ---------------------------------------------------------------------------------------------
 * A client: INFLIGHT slots, each a chain of requests on keys of its own (key k belongs to slot
 * k % INFLIGHT), so no key ever has two requests in flight and every answer can be checked.
 */

/* What a client counts. */
enum { OPS, PUTS, GETS, DELS, ANSWERS, HITS, MISSES, LOST, WRONG, NOPROC, LATE, NONAME, RETRY, N };

struct key {
	unsigned puts;      /* versions put so far */
	unsigned version;   /* the version `holder` holds, if `stored` */
	int stored;         /* 0: `holder` holds no value for the key */
	actor_ref_t holder; /* the shard instance that last answered for the key; NONE: none yet */
};

struct slot {
	uint64_t rng;
	unsigned left, tries, waiting; /* ops still to start; sends of this one; for the timer */
	unsigned key, version, op;
};

struct client {
	unsigned id, nshards, busy, timer_set;
	struct slot slot[INFLIGHT];
	struct key key[CLIENT_KEYS];
	unsigned long n[N];
};

static atomic_uint clients_running;
static actor_ref_t supervisor; /* set by main before the clients start */

static size_t value_text(const struct client *c, unsigned k, unsigned version, char *out)
{
	return (size_t)snprintf(out, VALUE_MAX + 1, "value %u of c%u-k%u", version, c->id, k);
}

/* The client has done its part (or cannot go on); the last one stops the supervisor, which
 * stops the shards first, and the system's run then ends. */
static void client_end(actor_ctx_t *ctx, int reason)
{
	if (atomic_fetch_sub(&clients_running, 1) == 1)
		actor_stop(actor_ctx_system(ctx), supervisor);
	actor_exit(ctx, reason);
}

/* Sends slot s's op to the shard of its key, found by name: after a restart, the new one. */
static void send_op(actor_ctx_t *ctx, struct client *c, unsigned s)
{
	struct slot *sl = &c->slot[s];
	struct kv_req r;
	r.klen = (uint16_t)snprintf(r.bytes, KEY_MAX + 1, "c%u-k%u", c->id, sl->key);
	r.vlen = 0;
	if (sl->op == KV_PUT)
		r.vlen = (uint16_t)value_text(c, sl->key, sl->version, r.bytes + r.klen);
	char name[ACTOR_NAME_MAX + 1];
	snprintf(name, sizeof(name), "kv-shard-%u", hash(r.bytes, r.klen) % c->nshards);
	c->n[RETRY] += sl->tries++ > 0;
	actor_ref_t shard;
	actor_request_t req;
	actor_request_opts_t opts = {.timeout_ns = TIMEOUT, .tag = s};
	int rc = actor_whereis(actor_ctx_system(ctx), name, &shard);
	if (rc == 0)
		rc = actor_request(ctx, shard, sl->op, &r,
		                   offsetof(struct kv_req, bytes) + r.klen + r.vlen, &opts, &req);
	if (rc == 0)
		return;
	/* -ENOENT: the shard failed and its successor is not registered yet; -ESRCH: it stopped
	 * since the lookup. Either way, ask the name again in a moment. */
	c->n[rc == -ENOENT ? NONAME : NOPROC]++;
	sl->waiting = 1;
	actor_timer_t t;
	if (!c->timer_set && actor_timer_start(ctx, actor_self(ctx), RETRY_DELAY, 0, 0, &t) < 0)
		client_end(ctx, -ENOMEM); /* its ops stay unanswered: main reports it */
	c->timer_set = 1;
}

/* Starts slot s's next op (half puts, 40% gets, 10% deletes, on a random key of the slot), or
 * ends the slot; the client ends with its last slot. */
static void next_op(actor_ctx_t *ctx, struct client *c, unsigned s)
{
	struct slot *sl = &c->slot[s];
	if (sl->left == 0) {
		if (--c->busy == 0)
			client_end(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	sl->left--;
	sl->rng ^= sl->rng << 13; /* xorshift64 */
	sl->rng ^= sl->rng >> 7;
	sl->rng ^= sl->rng << 17;
	unsigned pick = (unsigned)(sl->rng >> 32) % 10;
	sl->key = s + INFLIGHT * (unsigned)(sl->rng % (CLIENT_KEYS / INFLIGHT));
	sl->op = pick < 5 ? KV_PUT : pick < 9 ? KV_GET : KV_DEL;
	if (sl->op == KV_PUT)
		sl->version = ++c->key[sl->key].puts;
	sl->tries = 0;
	c->n[OPS]++;
	c->n[sl->op == KV_PUT ? PUTS : sl->op == KV_GET ? GETS : DELS]++;
	send_op(ctx, c, s);
}

/* Checks an answer from `shard` against what this client stored; 0 if it is wrong. */
static int check(struct client *c, struct slot *sl, actor_ref_t shard, int status,
                 const char *value, size_t vlen)
{
	struct key *k = &c->key[sl->key];
	char want[VALUE_MAX + 1];
	int lost = 0;
	if (!actor_ref_eq(shard, k->holder)) {
		/* A newer instance than the one that last answered for this key: it started empty,
		 * and the value the earlier one held is lost. */
		lost = k->stored;
		k->stored = 0;
		k->holder = shard;
	}
	int stored = k->stored;
	if (sl->op == KV_PUT) {
		k->stored = status == 0;
		k->version = sl->version;
		return status == 0;
	}
	if (sl->op == KV_DEL) {
		k->stored = 0;
		c->n[LOST] += lost && status == -ENOENT;
		return status == (stored ? 0 : -ENOENT);
	}
	if (!stored) {
		c->n[lost ? LOST : MISSES] += status == -ENOENT;
		return status == -ENOENT;
	}
	c->n[HITS] += status == 0;
	return status == 0 && vlen == value_text(c, sl->key, k->version, want) &&
	       memcmp(value, want, vlen) == 0;
}

static void client_start(actor_ctx_t *ctx, void *state)
{
	struct client *c = state;
	c->busy = INFLIGHT;
	for (unsigned s = 0; s < INFLIGHT; s++)
		next_op(ctx, c, s);
}

static void client_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct client *c = state;
	if (msg->type == ACTOR_MSG_TIMER) {
		c->timer_set = 0;
		for (unsigned s = 0; s < INFLIGHT; s++)
			if (c->slot[s].waiting) {
				c->slot[s].waiting = 0;
				send_op(ctx, c, s);
			}
		return;
	}
	if (msg->type != ACTOR_MSG_REPLY)
		return;
	actor_reply_t *r = actor_msg_data(msg);
	unsigned s = (unsigned)r->tag;
	if (r->error != 0) {
		/* No answer: the shard stopped first (-ESRCH: it failed on this request or on one
		 * queued before it), or took too long. Ask again, of the shard found by name now.
		 */
		c->n[r->error == -ESRCH ? NOPROC : LATE]++;
		send_op(ctx, c, s);
		return;
	}
	struct kv_answer *a = actor_reply_data(r);
	size_t head = offsetof(struct kv_answer, value);
	c->n[ANSWERS]++;
	if (r->type != KV_ANSWER || r->len < head ||
	    !check(c, &c->slot[s], msg->sender, a->status, a->value, r->len - head)) {
		c->n[WRONG]++;
		fprintf(stderr, "kv: client %u: a wrong answer for c%u-k%u\n", c->id, c->id,
		        c->slot[s].key);
	}
	next_op(ctx, c, s);
}

/* ---------------------------------------------------------------------------------------------
 * main
 */

/* A bad request (a get with an empty key) is answered with an error; the shard goes on. */
static int bad_request(actor_system_t *sys)
{
	struct kv_req r = {.klen = 0};
	actor_ref_t shard;
	actor_msg_t *reply;
	if (actor_whereis(sys, "kv-shard-0", &shard) < 0 ||
	    actor_request_wait(sys, shard, KV_GET, &r, offsetof(struct kv_req, bytes), TIMEOUT,
	                       &reply) < 0)
		return 0;
	actor_reply_t *rp = actor_msg_data(reply);
	int status = rp->len >= sizeof(int32_t) ? *(int32_t *)actor_reply_data(rp) : 0;
	actor_msg_free(reply);
	printf("main: a get with an empty key is answered %d (%s)\n", status, strerror(-status));
	return status == -EINVAL;
}

static void print_counts(const char *who, const unsigned long *n)
{
	printf(
	    "%s: %lu ops (%lu puts, %lu gets, %lu deletes), %lu answers (%lu hits, %lu misses, "
	    "%lu lost to restarts, %lu wrong); errors: %lu ESRCH, %lu ETIMEDOUT, %lu no shard by "
	    "name; %lu retries",
	    who, n[OPS], n[PUTS], n[GETS], n[DELS], n[ANSWERS], n[HITS], n[MISSES], n[LOST],
	    n[WRONG], n[NOPROC], n[LATE], n[NONAME], n[RETRY]);
}

/* "--NAME VALUE" pairs. --crash-every 1 would let no request through: refused. */
static int parse_args(int argc, char **argv, unsigned *v)
{
	static const char *names[] = {"--shards", "--clients", "--ops", "--crash-every"};
	static const unsigned long min[] = {1, 1, 0, 0},
	                           max[] = {SHARDS_MAX, CLIENTS_MAX, 1 << 24, 1 << 24};
	for (int i = 1; i < argc; i += 2) {
		unsigned j = 0;
		char *end = NULL;
		while (j < 4 && strcmp(argv[i], names[j]) != 0)
			j++;
		unsigned long x = j < 4 && i + 1 < argc ? strtoul(argv[i + 1], &end, 10) : 0;
		if (end == NULL || end == argv[i + 1] || *end != '\0' || x < min[j] || x > max[j])
			return -EINVAL;
		v[j] = (unsigned)x;
	}
	return v[3] == 1 ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	static actor_child_spec_t specs[SHARDS_MAX];
	static char names[SHARDS_MAX][16];
	static struct client clients[CLIENTS_MAX];
	unsigned v[4] = {8, 4, 2000, 0}, nshards, nclients, ops;
	if (parse_args(argc, argv, v) < 0) {
		fprintf(stderr,
		        "usage: kv [--shards N] [--clients N] [--ops M] [--crash-every K]\n");
		return 2;
	}
	nshards = v[0], nclients = v[1], ops = v[2], crash_every = v[3];
	printf("kv: %u shards, %u clients of %u ops, %u in flight each; ", nshards, nclients, ops,
	       INFLIGHT);
	if (crash_every != 0)
		printf("a shard fails on its request number %u, and its successor starts empty "
		       "(nothing is persisted)\n",
		       crash_every);
	else
		printf("shards never fail\n");

	actor_system_t *sys;
	if (actor_system_create(NULL, &sys) < 0)
		return 1;
	for (unsigned i = 0; i < nshards; i++) {
		snprintf(names[i], sizeof(names[i]), "kv-shard-%u", i);
		specs[i] =
		    (actor_child_spec_t){.id = names[i],
		                         .fn = shard_fn,
		                         .make_state = shard_new,
		                         .spawn = {.name = "kv-shard", .destroy = shard_free},
		                         .register_as = names[i]};
	}
	/* Failing is these shards' job here, so restarts are not limited. A real store would keep
	 * an intensity that makes the supervisor give up on shards that keep failing. */
	actor_supervisor_opts_t sup = {.strategy = ACTOR_ONE_FOR_ONE,
	                               .intensity = ACTOR_SUPERVISOR_INTENSITY_MAX,
	                               .period_ms = 1000,
	                               .children = specs,
	                               .nchildren = nshards};
	actor_msg_t *reply;
	if (actor_supervisor_spawn(sys, NULL, &sup, &supervisor) < 0)
		return 1;
	/* Answered once the supervisor has started, and named, every shard. */
	if (actor_supervisor_call_wait(sys, supervisor, ACTOR_SUP_WHICH_CHILDREN, NULL, NULL,
	                               TIMEOUT, &reply) < 0)
		return 1;
	actor_msg_free(reply);
	int ok = bad_request(sys);

	atomic_store(&clients_running, nclients);
	for (unsigned i = 0; i < nclients; i++) {
		actor_ref_t ref;
		clients[i] = (struct client){.id = i, .nshards = nshards};
		for (unsigned s = 0; s < INFLIGHT; s++) {
			clients[i].slot[s].rng = 0x9e3779b97f4a7c15u * (i * INFLIGHT + s + 1);
			clients[i].slot[s].left = ops / INFLIGHT + (s < ops % INFLIGHT);
		}
		if (actor_spawn(sys, &(actor_spawn_opts_t){.start = client_start}, client_fn,
		                &clients[i], &ref) < 0)
			return 1;
	}
	actor_system_run(sys);
	actor_system_free(sys);

	unsigned long total[N] = {0}, restarts = atomic_load(&starts) - nshards;
	char who[32];
	for (unsigned i = 0; i < nclients; i++) {
		snprintf(who, sizeof(who), "client %u", i);
		print_counts(who, clients[i].n);
		printf("\n");
		for (int j = 0; j < N; j++)
			total[j] += clients[i].n[j];
	}
	print_counts("total", total);
	printf("; %lu restarts, %lu shard failures\n", restarts, atomic_load(&crashes));
	/* A failure's request is retried until a successor answers it, so once the clients are
	 * done every failure has led to a restart. */
	ok = ok && total[OPS] == (unsigned long)nclients * ops && total[ANSWERS] == total[OPS] &&
	     total[WRONG] == 0 && restarts == atomic_load(&crashes);
	if (!ok)
		fprintf(stderr, "kv: wrong answers, or the counts do not add up\n");
	return ok ? 0 : 1;
}
