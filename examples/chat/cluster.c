/* cluster.c: one host of several (--cluster). Each chat-server process runs one cluster actor,
 * the only part that talks to the broker (NATS with JetStream, through the library's broker
 * service); the other parts reach it with ordinary messages, and only when srv->cluster is set.
 * README.md, "Several hosts", has the picture and what is promised.
 *
 * What lives where on the servers (N is the network name, H a host's server name, hex() the
 * folded name in hexadecimal, so that any nick or channel makes a valid subject or key):
 *   bucket chat_N       n.hex(nick) = H: the nick's claim, created if absent (one winner);
 *                       h.hex(H).INC.hex(nick) = the claim's revision: what a host holds, for
 *                       the survivor that releases a dead host's nicks
 *   stream CHAT_N       chat.N.c.hex(channel): every channel event (JOIN, PART, QUIT, NICK,
 *                       KICK, lines, rosters), replicated; a line is stored once per msg_id
 *   chat.N.u.hex(nick)  requests for a user (PRIVMSG, NOTICE, WHOIS, WHO): its host alone
 *                       subscribes, and answers with the lines its requester is to see
 *   chat.N.hb           heartbeats: "H INC" every CLUSTER_HEARTBEAT_MS from every host
 *
 * A channel's copy on this host (channel.c, chanlink.c) opens its consumer here when its first
 * local member joins (CM_CL_OPEN) and closes it after the last (CM_CL_CLOSE): an ordered
 * consumer (actor_broker_consume_ordered) of the channel's subject, starting with what is stored
 * from then on, whose messages go to the channel as CM_CL_EVENT. The library passes each of the
 * stream's events on once and in stream order, through a lost delivery or a NATS server's
 * death (it makes the consumer again after the last it passed on), so each host sees the
 * channel's events exactly in stream order, and nothing waits for an acknowledgement. (A
 * durable consumer with acknowledgements could do that only with one message unacknowledged at
 * a time: a delivery lost when a server died came again after newer ones, and the channel's
 * throughput was one event per round trip.) Publishes for a channel whose consumer is not yet
 * made wait here, so that a host hears the rosters that answer its first JOIN.
 *
 * Invariants (one actor: every field below is touched on its worker only):
 * - A nick is in `nicks` from the claim the registry passed on until it is released, and its
 *   user subject is subscribed all that time (from before the claim goes out, so that once a
 *   claim is answered requests for the nick reach us). A release that comes while the claim
 *   is in flight is done when the claim's answer comes.
 * - A broker subscription's tag is a pointer to the entry it is for (a nick, a channel, a
 *   reap); the entry is freed only after actor_broker_unsubscribe, after which no message of
 *   it arrives, so a tag never names freed memory.
 * - A request's tag is a struct op, freed when its one ACTOR_MSG_REPLY comes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat.h"
#include "cluster.h"

/* Tunables. */
#define CLUSTER_HEARTBEAT_MS 1000 /* a heartbeat this often: a few bytes per host and second */
/* A host silent this long is dead: three heartbeats missed, so one late heartbeat on a busy
 * machine does not split the network. */
#define CLUSTER_DEAD_MS 3000
#define CONSUMER_MAX_PENDING 256 /* a reaper's keys on their way to it, unacknowledged */
#define REAP_LINGER_MS 30000      /* a reaper's consumer is removed after this long at most */
/* A copy that opens waits this long at most for the other hosts' rosters (one that died
 * meanwhile, or missed the call) before it answers its JOINs: checked each heartbeat tick. */
#define ROSTER_WAIT_MS 2000
#define JS_TIMEOUT_NS (10 * 1000000000ull) /* retries through a leader election (~5 s) */
#define CLUSTER_SETUP_WAIT_S 60 /* at start, how long a host waits for JetStream to answer */

enum kind { K_NICK = 1, K_CHAN, K_REAP, K_OPEN };
enum nick_state { CLAIMING, OWNED };

struct nick {
	enum kind kind; /* K_NICK: first, for the subscription's tag */
	char nick[IRC_NICKLEN + 1];
	char hex[2 * IRC_NICKLEN + 1];
	enum nick_state state;
	bool release_after; /* released while CLAIMING */
	actor_ref_t owner;  /* its session */
	uint64_t rev;       /* OWNED: the claim's revision */
	actor_broker_sub_t sub;
};

struct pub {
	struct pub *next;
	actor_ref_t from;
	uint64_t tag;
	uint32_t len;
	char data[];
};

struct chan {
	enum kind kind; /* K_CHAN */
	char name[IRC_CHANLEN + 1];
	char subject[ACTOR_BROKER_SUBJECT_MAX + 1];
	actor_ref_t ref; /* the channel's actor now */
	actor_broker_sub_t sub;
	bool ready;                  /* the consumer exists: publish at once */
	struct pub *waiting, **tail; /* publishes until then, in order */
	/* Opening: the live hosts whose roster has not come yet, until ROSTER_WAIT_MS. */
	bool rostering;
	uint64_t roster_deadline_ns;
	char (*expect)[64];
	unsigned nexpect;
};

struct reap {
	enum kind kind; /* K_REAP */
	struct reap *next;
	char host[64];
	char durable[24];
	uint64_t skip_inc; /* the live incarnation of `host`, whose entries stay; 0: none */
	uint64_t started_ns;
	actor_broker_sub_t sub;
};

struct host {
	char name[64];
	uint64_t inc;
	uint64_t seen_ns;
};

enum op_kind { OP_CLAIM = 1, OP_ASK, OP_ANSWER, OP_PUB, OP_CONSUME, OP_IGNORE };

struct op {
	enum op_kind kind;
	struct op *prev, *next;
	actor_reply_handle_t h; /* OP_CLAIM, OP_ASK: the session's request, kept */
	char name[IRC_CHANLEN + 1];
	actor_ref_t to;   /* OP_PUB: the channel; OP_CLAIM: the session */
	uint64_t tag;     /* OP_PUB: the channel's tag */
	uint64_t sub_id;  /* OP_CONSUME: the subscription it made */
	char *reply;      /* OP_ANSWER: the requester's reply subject */
	struct cm_req *q; /* OP_ASK: a copy of the request, for the answer when nobody has it */
};

struct cluster {
	struct chat_srv *srv;
	char net[CHAT_NETWORK_MAX + 1];
	char bucket[CHAT_NETWORK_MAX + 8];
	char stream[CHAT_NETWORK_MAX + 8];
	char hexname[2 * 64 + 1];
	uint64_t inc; /* this process's incarnation: random, in heartbeats and msg_ids */
	uint64_t next_id;
	struct hmap nicks; /* irc_hash(nick) -> struct nick */
	struct hmap chans; /* irc_hash(name) -> struct chan */
	struct host *hosts;
	unsigned nhosts;
	struct reap *reaps;
	struct op ops; /* requests in flight, a ring */
	actor_broker_sub_t hb;
	actor_broker_sub_t open; /* chat.N.open: copies opening on other hosts */
	uint64_t started_ns;     /* before a heartbeat round, the live hosts are not all known */
};

static const enum kind open_kind = K_OPEN; /* the tag of the `open` subscription */

static struct cluster the_cluster;

/* ---------------------------------------------------------------------------------------------
 * Names
 */

static void hex_of(char *out, size_t cap, const char *s, bool fold)
{
	char f[128];
	if (fold)
		irc_fold(f, sizeof(f), s);
	else
		snprintf(f, sizeof(f), "%s", s);
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)f; *p != '\0' && n + 2 < cap; p++)
		n += (size_t)snprintf(out + n, cap - n, "%02x", *p);
	out[n] = '\0';
}

static uint64_t mix(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A msg_id no other publish of any host has: the incarnation and a count. */
static void new_msg_id(struct cluster *cl, char *out, size_t cap)
{
	snprintf(out, cap, "%016" PRIx64 "-%" PRIu64, cl->inc, ++cl->next_id);
}

/* ---------------------------------------------------------------------------------------------
 * Requests in flight
 */

static struct op *op_new(struct cluster *cl, enum op_kind kind)
{
	struct op *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->kind = kind;
	o->next = cl->ops.next;
	o->prev = &cl->ops;
	cl->ops.next->prev = o;
	cl->ops.next = o;
	return o;
}

static void op_free(struct op *o)
{
	o->prev->next = o->next;
	o->next->prev = o->prev;
	free(o->reply);
	free(o->q);
	free(o);
}

static actor_request_opts_t op_opts(struct op *o, uint64_t timeout_ns)
{
	return (actor_request_opts_t){.timeout_ns = timeout_ns, .tag = (uintptr_t)o};
}

/* Answers a kept request with a chat message, whole (as server.c's env_reply does), so that
 * chat_answer_of hands the requester what it expects. */
static void answer_kept(actor_ctx_t *ctx, const actor_reply_handle_t *h, actor_msg_t *m,
                        uint32_t type, size_t len)
{
	m->type = type;
	m->size = (uint32_t)(len - sizeof(*m));
	(void)actor_reply_to(ctx, h, type, m, len);
}

static void answer_text(actor_ctx_t *ctx, const actor_reply_handle_t *h, const char *text,
                        size_t len)
{
	struct cm_reply *r = calloc(1, sizeof(*r) + len);
	if (r == NULL)
		return; /* the requester times out */
	r->len = (uint32_t)len;
	memcpy(r->text, text, len);
	answer_kept(ctx, h, &r->hdr, CM_REPLY, sizeof(*r) + len);
	free(r);
}

/* Deletes a key only if it still holds the revision `rev` (or an older one; 0: any): a late or
 * repeated delete cannot take the key from a later holder. The library's key-value delete
 * purges the key's messages (so that a create finds none); this purges those of its subject
 * below rev + 1, which the servers do atomically, leaving a later claim in place. */
static void kv_delete_if(struct cluster *cl, actor_ctx_t *ctx, const char *subject, uint64_t rev)
{
	char api[CHAT_NETWORK_MAX + 64], body[ACTOR_BROKER_SUBJECT_MAX + 96];
	snprintf(api, sizeof(api), "$JS.API.STREAM.PURGE.KV_%s", cl->bucket);
	int n = rev == 0 /* all of it */
	            ? snprintf(body, sizeof(body), "{\"filter\":\"%s\"}", subject)
	            : snprintf(body, sizeof(body), "{\"filter\":\"%s\",\"seq\":%" PRIu64 "}",
	                       subject, rev + 1);
	actor_broker_pub_t pub = {.subject = api, .data = body, .len = (size_t)n};
	struct op *o = op_new(cl, OP_IGNORE);
	if (o == NULL)
		return;
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, JS_TIMEOUT_NS);
	if (actor_broker_request(ctx, &pub, &opts, &req) < 0)
		op_free(o);
}

/* ---------------------------------------------------------------------------------------------
 * Nicks: claimed in the bucket, subscribed while ours
 */

static bool nick_is(const void *val, const void *arg)
{
	return irc_casecmp(((const struct nick *)val)->nick, arg) == 0;
}

static struct nick *find_nick(struct cluster *cl, const char *nick)
{
	return hmap_find(&cl->nicks, irc_hash(nick), nick_is, nick);
}

static void nick_key(struct cluster *cl, const struct nick *n, char *out, size_t cap, bool host)
{
	if (host)
		snprintf(out, cap, "h.%s.%016" PRIx64 ".%s", cl->hexname, cl->inc, n->hex);
	else
		snprintf(out, cap, "n.%s", n->hex);
}

static void nick_drop(struct cluster *cl, actor_ctx_t *ctx, struct nick *n)
{
	(void)actor_broker_unsubscribe(ctx, n->sub);
	if (n->state == OWNED) {
		char key[256], subject[300];
		nick_key(cl, n, key, sizeof(key), false);
		snprintf(subject, sizeof(subject), "$KV.%s.%s", cl->bucket, key);
		kv_delete_if(cl, ctx, subject, n->rev);
		nick_key(cl, n, key, sizeof(key), true);
		snprintf(subject, sizeof(subject), "$KV.%s.%s", cl->bucket, key);
		kv_delete_if(cl, ctx, subject, 0); /* ours alone: all of it */
	}
	hmap_del(&cl->nicks, irc_hash(n->nick), n);
	free(n);
}

/* A session's claim, passed on by its registry shard, which holds the nick here meanwhile. */
static void nick_claim(struct cluster *cl, actor_ctx_t *ctx, const struct cm_req *q)
{
	struct nick_result_msg {
		struct cm_nick_result r;
	} res = {0};
	snprintf(res.r.nick, sizeof(res.r.nick), "%.*s", IRC_NICKLEN, q->target);
	struct nick *n = find_nick(cl, q->target);
	struct op *o = op_new(cl, OP_CLAIM);
	if (n != NULL || o == NULL || actor_request_keep(ctx, &o->h) < 0) {
		/* A claim of ours in flight (its release has not come back yet): not now. */
		res.r.ok = CHAT_NICK_UNSURE;
		res.r.hdr.type = CM_NICK_RESULT;
		res.r.hdr.size = sizeof(res.r) - sizeof(res.r.hdr);
		(void)actor_reply(ctx, CM_NICK_RESULT, &res.r, sizeof(res.r));
		if (o != NULL)
			op_free(o);
		return;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL || hmap_put(&cl->nicks, irc_hash(q->target), n) < 0) {
		free(n);
		res.r.ok = CHAT_NICK_UNSURE;
		answer_kept(ctx, &o->h, &res.r.hdr, CM_NICK_RESULT, sizeof(res.r));
		op_free(o);
		return;
	}
	n->kind = K_NICK;
	snprintf(n->nick, sizeof(n->nick), "%.*s", IRC_NICKLEN, q->target);
	hex_of(n->hex, sizeof(n->hex), q->target, true);
	n->state = CLAIMING;
	n->owner = q->from;
	/* Subscribed before the claim goes out: the servers take a connection's messages in
	 * order, so once the claim is answered, requests for the nick find us. */
	char subject[ACTOR_BROKER_SUBJECT_MAX + 1];
	snprintf(subject, sizeof(subject), "chat.%s.u.%s", cl->net, n->hex);
	actor_broker_sub_opts_t so = {.tag = (uintptr_t)n};
	if (actor_broker_subscribe(ctx, subject, &so, &n->sub) < 0)
		fprintf(stderr, "chat-server: cluster: cannot subscribe for %s\n", n->nick);
	o->to = q->from;
	snprintf(o->name, sizeof(o->name), "%s", q->target);
	char key[256];
	nick_key(cl, n, key, sizeof(key), false);
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, JS_TIMEOUT_NS);
	int rc = actor_broker_kv_create(ctx, cl->bucket, key, cl->srv->name, strlen(cl->srv->name),
	                                &opts, &req);
	if (rc < 0) {
		(void)actor_broker_unsubscribe(ctx, n->sub);
		hmap_del(&cl->nicks, irc_hash(n->nick), n);
		free(n);
		res.r.ok = CHAT_NICK_UNSURE;
		answer_kept(ctx, &o->h, &res.r.hdr, CM_NICK_RESULT, sizeof(res.r));
		op_free(o);
	}
}

/* Tells the registry shard what became of a claim it passed on: confirmed, or released (the
 * nick is another host's, or could not be had). */
static void tell_registry(struct cluster *cl, actor_ctx_t *ctx, const char *nick, actor_ref_t owner,
                          uint16_t op)
{
	size_t len = sizeof(struct cm_req);
	struct cm_req *q = calloc(1, len);
	if (q == NULL)
		return;
	q->op = op;
	q->via = CHAT_VIA_CLUSTER;
	q->from = owner;
	snprintf(q->target, sizeof(q->target), "%s", nick);
	(void)actor_send(actor_ctx_system(ctx), chat_registry_for(cl->srv, nick), CM_REQ,
	                 (char *)q + sizeof(actor_msg_t), len - sizeof(actor_msg_t));
	free(q);
}

static void claimed(struct cluster *cl, actor_ctx_t *ctx, struct op *o, int error,
                    const actor_broker_ack_t *ack)
{
	struct cm_nick_result r = {0};
	snprintf(r.nick, sizeof(r.nick), "%.*s", IRC_NICKLEN, o->name);
	struct nick *n = find_nick(cl, o->name);
	if (error == 0 && ack != NULL && ack->error == 0 && n != NULL) {
		n->state = OWNED;
		n->rev = ack->seq;
		char subject[512], key[256], rev[24], id[48];
		/* What this host holds, for whoever releases it if this host dies. */
		nick_key(cl, n, key, sizeof(key), true);
		snprintf(subject, sizeof(subject), "$KV.%s.%s", cl->bucket, key);
		snprintf(rev, sizeof(rev), "%" PRIu64, n->rev);
		new_msg_id(cl, id, sizeof(id));
		actor_broker_pub_t pub = {
		    .subject = subject, .data = rev, .len = strlen(rev), .msg_id = id};
		struct op *p = op_new(cl, OP_IGNORE);
		actor_request_t req;
		actor_request_opts_t opts = op_opts(p, JS_TIMEOUT_NS);
		if (p != NULL && actor_broker_js_publish(ctx, &pub, &opts, &req) < 0)
			op_free(p);
		/* The registry first: what the session sends it once answered comes after. */
		tell_registry(cl, ctx, n->nick, n->owner, OP_NICK_CONFIRM);
		r.ok = 1;
		answer_kept(ctx, &o->h, &r.hdr, CM_NICK_RESULT, sizeof(r));
		if (n->release_after)
			nick_drop(cl, ctx, n);
		return;
	}
	tell_registry(cl, ctx, o->name, o->to, OP_NICK_RELEASE);
	r.ok = error == 0 && ack != NULL && ack->error == -EEXIST ? 0 : CHAT_NICK_UNSURE;
	answer_kept(ctx, &o->h, &r.hdr, CM_NICK_RESULT, sizeof(r));
	if (n != NULL && n->state == CLAIMING) {
		(void)actor_broker_unsubscribe(ctx, n->sub);
		hmap_del(&cl->nicks, irc_hash(n->nick), n);
		free(n);
	}
}

static void nick_release(struct cluster *cl, actor_ctx_t *ctx, const struct cm_req *q)
{
	struct nick *n = find_nick(cl, q->target);
	if (n == NULL || !actor_ref_eq(n->owner, q->from))
		return;
	if (n->state == CLAIMING)
		n->release_after = true;
	else
		nick_drop(cl, ctx, n);
}

/* ---------------------------------------------------------------------------------------------
 * Requests for users of other hosts, and for ours from other hosts
 */

/* A registry found no local user for q: ask the host that has it. */
static void ask_remote(struct cluster *cl, actor_ctx_t *ctx, actor_msg_t *m)
{
	const struct cm_req *q = (const struct cm_req *)m;
	struct op *o = op_new(cl, OP_ASK);
	if (o == NULL)
		return; /* the requester hears -ENOMSG */
	o->q = malloc(sizeof(*m) + m->size);
	if (o->q == NULL || actor_request_keep(ctx, &o->h) < 0) {
		op_free(o);
		return;
	}
	memcpy(o->q, m, sizeof(*m) + m->size);
	char subject[ACTOR_BROKER_SUBJECT_MAX + 1], hex[2 * IRC_NICKLEN + 1];
	hex_of(hex, sizeof(hex), q->target, true);
	snprintf(subject, sizeof(subject), "chat.%s.u.%s", cl->net, hex);
	actor_broker_pub_t pub = {.subject = subject, .data = actor_msg_data(m), .len = m->size};
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, cl->srv->request_timeout_ns / 2);
	if (actor_broker_request(ctx, &pub, &opts, &req) < 0) {
		struct irc_buf b;
		irc_buf_init(&b);
		chat_no_such_nick(&b, cl->srv, o->q);
		answer_text(ctx, &o->h, b.data, b.len);
		irc_buf_free(&b);
		op_free(o);
	}
}

static void asked(struct cluster *cl, actor_ctx_t *ctx, struct op *o, actor_msg_t *m, int error)
{
	(void)cl;
	if (error == 0) {
		actor_reply_t *rep = actor_msg_data(m);
		actor_broker_msg_t *bm = actor_reply_data(rep);
		if (rep->type == ACTOR_MSG_BROKER && rep->len >= sizeof(*bm)) {
			answer_text(ctx, &o->h, actor_broker_data(bm), bm->data_len);
			return;
		}
	}
	struct irc_buf b;
	irc_buf_init(&b);
	if (error == -ESRCH) /* no host subscribes to that nick: nobody has it */
		chat_no_such_nick(&b, cl->srv, o->q);
	answer_text(ctx, &o->h, b.data, b.len);
	irc_buf_free(&b);
}

/* Makes what arrived from another host a request we can trust: every string ends inside it. */
static struct cm_req *req_from_wire(const void *data, size_t len)
{
	size_t head = sizeof(struct cm_req) - sizeof(actor_msg_t);
	if (len < head || len > 64 * 1024)
		return NULL;
	struct cm_req *q = calloc(1, sizeof(actor_msg_t) + len + 1);
	if (q == NULL)
		return NULL;
	memcpy((char *)q + sizeof(actor_msg_t), data, len);
	q->hdr.size = (uint32_t)len;
	q->target[sizeof(q->target) - 1] = '\0';
	q->who.nick[sizeof(q->who.nick) - 1] = '\0';
	q->who.user[sizeof(q->who.user) - 1] = '\0';
	q->who.host[sizeof(q->who.host) - 1] = '\0';
	q->who.real[sizeof(q->who.real) - 1] = '\0';
	size_t argbytes = len - head, nul = 0;
	for (size_t i = 0; i < argbytes; i++)
		nul += q->args[i] == '\0';
	if (nul < q->nargs || (argbytes > 0 && q->args[argbytes - 1] != '\0') ||
	    !(q->op == OP_MSG_NICK || q->op == OP_WHOIS || q->op == OP_WHO_NICK)) {
		free(q);
		return NULL;
	}
	return q;
}

/* Another host asks about one of our users: the registry finds its session, which answers
 * us; we pass the answer on to the asker's reply subject. */
static void answer_remote(struct cluster *cl, actor_ctx_t *ctx, actor_broker_msg_t *bm)
{
	const char *reply = actor_broker_reply_subject(bm);
	if (reply[0] == '\0')
		return;
	struct cm_req *q = req_from_wire(actor_broker_data(bm), bm->data_len);
	struct op *o = q != NULL ? op_new(cl, OP_ANSWER) : NULL;
	if (o == NULL || (o->reply = strdup(reply)) == NULL) {
		if (o != NULL)
			op_free(o);
		free(q);
		return;
	}
	q->from = actor_self(ctx);
	q->via = CHAT_VIA_CLUSTER;
	q->kept = 0;
	q->worker = actor_ctx_worker(ctx);
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, cl->srv->request_timeout_ns / 2);
	if (actor_request(ctx, chat_registry_for(cl->srv, q->target), CM_REQ,
	                  (char *)q + sizeof(actor_msg_t), q->hdr.size, &opts, &req) < 0)
		op_free(o);
	free(q);
}

static void answered_local(struct cluster *cl, actor_ctx_t *ctx, struct op *o, actor_msg_t *m)
{
	(void)cl;
	int error;
	uint64_t tag;
	actor_msg_t *in = chat_answer_of(m, &error, &tag);
	const struct cm_reply *r = (const struct cm_reply *)in;
	const char *text = "";
	size_t len = 0;
	if (in != NULL && in->type == CM_REPLY && in->size >= sizeof(*r) - sizeof(r->hdr) &&
	    r->len <= in->size - (sizeof(*r) - sizeof(r->hdr))) {
		text = r->text;
		len = r->len;
	}
	actor_broker_pub_t pub = {.subject = o->reply, .data = text, .len = len};
	(void)actor_broker_publish(ctx, &pub);
}

/* ---------------------------------------------------------------------------------------------
 * Channels: a consumer per channel with local members, and their publishes
 */

static bool chan_is(const void *val, const void *arg)
{
	return irc_casecmp(((const struct chan *)val)->name, arg) == 0;
}

static struct chan *find_chan(struct cluster *cl, const char *name)
{
	return hmap_find(&cl->chans, irc_hash(name), chan_is, name);
}

static void publish_subject(struct cluster *cl, actor_ctx_t *ctx, const char *subject,
                            actor_ref_t from, uint64_t tag, const char *data, size_t len)
{
	char id[48];
	new_msg_id(cl, id, sizeof(id));
	actor_broker_pub_t pub = {.subject = subject, .data = data, .len = len, .msg_id = id};
	struct op *o = op_new(cl, OP_PUB);
	int rc = -ENOMEM;
	if (o != NULL) {
		o->to = from;
		o->tag = tag;
		actor_request_t req;
		actor_request_opts_t opts = op_opts(o, JS_TIMEOUT_NS);
		rc = actor_broker_js_publish(ctx, &pub, &opts, &req);
		if (rc < 0)
			op_free(o);
	}
	if (rc < 0 && tag != 0) {
		struct cm_cl_acked a = {.tag = tag, .error = rc};
		(void)actor_send(actor_ctx_system(ctx), from, CM_CL_ACKED,
		                 (char *)&a + sizeof(actor_msg_t), sizeof(a) - sizeof(actor_msg_t));
	}
}

static void publish(struct cluster *cl, actor_ctx_t *ctx, struct chan *c, actor_ref_t from,
                    uint64_t tag, const char *data, size_t len)
{
	publish_subject(cl, ctx, c->subject, from, tag, data, len);
}

static void publish_to(struct cluster *cl, actor_ctx_t *ctx, const char *subject, const char *data,
                       size_t len)
{
	publish_subject(cl, ctx, subject, ACTOR_REF_NONE, 0, data, len);
}

static void flush_waiting(struct cluster *cl, actor_ctx_t *ctx, struct chan *c)
{
	while (c->waiting != NULL) {
		struct pub *p = c->waiting;
		c->waiting = p->next;
		publish(cl, ctx, c, p->from, p->tag, p->data, p->len);
		free(p);
	}
	c->tail = &c->waiting;
}

/* The channel's copy hears that the rosters are in. */
static void roster_done(struct cluster *cl, actor_ctx_t *ctx, struct chan *c)
{
	(void)cl;
	c->rostering = false;
	free(c->expect);
	c->expect = NULL;
	c->nexpect = 0;
	struct cm_cl_chan m = {0};
	snprintf(m.name, sizeof(m.name), "%s", c->name);
	(void)actor_send(actor_ctx_system(ctx), c->ref, CM_CL_READY,
	                 (char *)&m + sizeof(actor_msg_t), sizeof(m) - sizeof(actor_msg_t));
}

/* `host`'s roster came (or it died): one less to wait for. */
static void roster_from(struct cluster *cl, actor_ctx_t *ctx, struct chan *c, const char *host)
{
	if (!c->rostering)
		return;
	for (unsigned i = 0; i < c->nexpect; i++)
		if (strcmp(c->expect[i], host) == 0) {
			memcpy(c->expect[i], c->expect[--c->nexpect], sizeof(c->expect[0]));
			break;
		}
	/* Before the first heartbeat round some hosts may be unknown: wait out the deadline. */
	if (c->nexpect == 0 && now_ns() >= cl->started_ns + CLUSTER_DEAD_MS * 1000000ull)
		roster_done(cl, ctx, c);
}

/* The copy's consumer exists: asks every host for its roster of the channel, through
 * chat.N.open (a host without a copy answers with an empty one), and waits for the live
 * ones. Each answer comes through the stream, after the consumer's start, so it is in order
 * with that host's events. */
static void roster_start(struct cluster *cl, actor_ctx_t *ctx, struct chan *c)
{
	free(c->expect);
	c->expect = cl->nhosts > 0 ? calloc(cl->nhosts, sizeof(c->expect[0])) : NULL;
	c->nexpect = 0;
	for (unsigned i = 0; c->expect != NULL && i < cl->nhosts; i++)
		snprintf(c->expect[c->nexpect++], sizeof(c->expect[0]), "%s", cl->hosts[i].name);
	c->rostering = true;
	c->roster_deadline_ns = now_ns() + ROSTER_WAIT_MS * 1000000ull;
	char subject[64], body[64 + IRC_CHANLEN + 2];
	snprintf(subject, sizeof(subject), "chat.%s.open", cl->net);
	int n = snprintf(body, sizeof(body), "%s %s", cl->srv->name, c->name);
	(void)actor_broker_publish(
	    ctx, &(actor_broker_pub_t){.subject = subject, .data = body, .len = (size_t)n});
	roster_from(cl, ctx, c, ""); /* done at once if no other host is known */
}

static void publish_to(struct cluster *cl, actor_ctx_t *ctx, const char *subject, const char *data,
                       size_t len);

/* Another host's copy of a channel opened: our copy answers with its roster, or, without a
 * copy, we answer for it with an empty one. */
static void open_in(struct cluster *cl, actor_ctx_t *ctx, actor_broker_msg_t *bm)
{
	char text[64 + IRC_CHANLEN + 2] = "", host[64], name[IRC_CHANLEN + 1];
	size_t len = bm->data_len < sizeof(text) - 1 ? bm->data_len : sizeof(text) - 1;
	memcpy(text, actor_broker_data(bm), len);
	if (sscanf(text, "%63s %50s", host, name) != 2 || strcmp(host, cl->srv->name) == 0)
		return;
	struct chan *c = find_chan(cl, name);
	if (c != NULL) {
		struct cm_cl_chan m = {0};
		snprintf(m.name, sizeof(m.name), "%s", c->name);
		(void)actor_send(actor_ctx_system(ctx), c->ref, CM_CL_ROSTER,
		                 (char *)&m + sizeof(actor_msg_t), sizeof(m) - sizeof(actor_msg_t));
		return;
	}
	char hex[2 * IRC_CHANLEN + 1], subject[ACTOR_BROKER_SUBJECT_MAX + 1], body[128];
	hex_of(hex, sizeof(hex), name, true);
	snprintf(subject, sizeof(subject), "chat.%s.c.%s", cl->net, hex);
	int n = snprintf(body, sizeof(body), "R %s 0 - - - -\n", cl->srv->name);
	publish_to(cl, ctx, subject, body, (size_t)n);
}

static void chan_open(struct cluster *cl, actor_ctx_t *ctx, const struct cm_cl_chan *m)
{
	struct chan *c = find_chan(cl, m->name);
	if (c != NULL) { /* a restarted channel's actor, or one reopened at once */
		c->ref = m->hdr.sender;
		if (c->ready)
			roster_start(cl, ctx, c); /* it knows nobody yet */
		return;
	}
	c = calloc(1, sizeof(*c));
	struct op *o = op_new(cl, OP_CONSUME);
	if (c == NULL || o == NULL || hmap_put(&cl->chans, irc_hash(m->name), c) < 0) {
		free(c);
		if (o != NULL)
			op_free(o);
		return;
	}
	c->kind = K_CHAN;
	c->ref = m->hdr.sender;
	c->tail = &c->waiting;
	snprintf(c->name, sizeof(c->name), "%s", m->name);
	char hex[2 * IRC_CHANLEN + 1];
	hex_of(hex, sizeof(hex), m->name, true);
	snprintf(c->subject, sizeof(c->subject), "chat.%s.c.%s", cl->net, hex);
	snprintf(o->name, sizeof(o->name), "%s", m->name);
	actor_broker_ordered_opts_t co = {
	    .stream = cl->stream, .filter = c->subject, .deliver_new = 1, .tag = (uintptr_t)c};
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, JS_TIMEOUT_NS);
	int rc = actor_broker_consume_ordered(ctx, &co, &opts, &c->sub, &req);
	if (rc < 0) {
		fprintf(stderr, "chat-server: cluster: no consumer for %s: %s\n", c->name,
		        strerror(-rc));
		op_free(o);
		c->ready = true; /* its lines still go out; it hears no other host */
		roster_done(cl, ctx, c);
	}
	o->sub_id = c->sub.id;
}

static void delete_consumer(struct cluster *cl, actor_ctx_t *ctx, const char *stream,
                            const char *durable)
{
	char subject[200];
	snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.DELETE.%s.%s", stream, durable);
	struct op *o = op_new(cl, OP_IGNORE);
	actor_broker_pub_t pub = {.subject = subject, .data = "", .len = 0};
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, JS_TIMEOUT_NS);
	if (o != NULL && actor_broker_request(ctx, &pub, &opts, &req) < 0)
		op_free(o);
}

static void chan_close(struct cluster *cl, actor_ctx_t *ctx, const struct cm_cl_chan *m)
{
	struct chan *c = find_chan(cl, m->name);
	if (c == NULL || !actor_ref_eq(c->ref, m->hdr.sender))
		return;
	flush_waiting(cl, ctx, c); /* what it said before it emptied still goes out */
	(void)actor_broker_unsubscribe(ctx, c->sub); /* its consumer goes with it */
	hmap_del(&cl->chans, irc_hash(c->name), c);
	free(c->expect);
	free(c);
}

static void consumed(struct cluster *cl, actor_ctx_t *ctx, struct op *o, int error,
                     const actor_broker_ack_t *ack)
{
	(void)ctx;
	struct chan *c = find_chan(cl, o->name);
	if (c == NULL || c->sub.id != o->sub_id)
		return;
	if (error != 0 || ack == NULL || ack->error != 0)
		fprintf(stderr, "chat-server: cluster: no consumer for %s (%d)\n", c->name,
		        error != 0    ? error
		        : ack != NULL ? ack->error
		                      : -EBADMSG);
	c->ready = true;
	flush_waiting(cl, ctx, c);
	if (error != 0 || ack == NULL || ack->error != 0)
		roster_done(cl, ctx, c); /* it hears no other host: nothing to wait for */
	else
		roster_start(cl, ctx, c);
}

static void chan_pub(struct cluster *cl, actor_ctx_t *ctx, const struct cm_cl_pub *m)
{
	if (m->hdr.size < sizeof(*m) - sizeof(m->hdr) ||
	    m->len > m->hdr.size - (sizeof(*m) - sizeof(m->hdr)))
		return;
	struct chan *c = find_chan(cl, m->name);
	if (c == NULL) { /* not open (it failed to): nowhere to publish */
		if (m->tag != 0) {
			struct cm_cl_acked a = {.tag = m->tag, .error = -ENOTCONN};
			(void)actor_send(actor_ctx_system(ctx), m->hdr.sender, CM_CL_ACKED,
			                 (char *)&a + sizeof(actor_msg_t),
			                 sizeof(a) - sizeof(actor_msg_t));
		}
		return;
	}
	if (c->ready) {
		publish(cl, ctx, c, m->hdr.sender, m->tag, m->data, m->len);
		return;
	}
	struct pub *p = malloc(sizeof(*p) + m->len);
	if (p == NULL)
		return;
	p->next = NULL;
	p->from = m->hdr.sender;
	p->tag = m->tag;
	p->len = m->len;
	memcpy(p->data, m->data, m->len);
	*c->tail = p;
	c->tail = &p->next;
}

static void published(struct cluster *cl, actor_ctx_t *ctx, struct op *o, int error,
                      const actor_broker_ack_t *ack)
{
	(void)cl;
	if (o->tag == 0)
		return;
	struct cm_cl_acked a = {.tag = o->tag,
	                        .error = error != 0    ? error
	                                 : ack != NULL ? ack->error
	                                               : -EBADMSG};
	(void)actor_send(actor_ctx_system(ctx), o->to, CM_CL_ACKED,
	                 (char *)&a + sizeof(actor_msg_t), sizeof(a) - sizeof(actor_msg_t));
}

static void chan_event(struct cluster *cl, actor_ctx_t *ctx, struct chan *c, actor_broker_msg_t *bm)
{
	struct cm_cl_event *ev = malloc(sizeof(*ev) + bm->data_len);
	if (ev != NULL) {
		ev->seq = bm->stream_seq;
		ev->len = bm->data_len;
		memcpy(ev->data, actor_broker_data(bm), bm->data_len);
		(void)actor_send(actor_ctx_system(ctx), c->ref, CM_CL_EVENT,
		                 (char *)ev + sizeof(actor_msg_t),
		                 sizeof(*ev) + bm->data_len - sizeof(actor_msg_t));
		free(ev);
	}
	/* A roster ("R <host> ..."), forwarded above, before the READY it may complete. */
	if (c->rostering && bm->data_len > 2 && memcmp(actor_broker_data(bm), "R ", 2) == 0) {
		char host[64] = "";
		const char *d = (const char *)actor_broker_data(bm) + 2;
		size_t n = 0;
		while (n + 2 < bm->data_len && n < sizeof(host) - 1 && d[n] != ' ' && d[n] != '\n')
			n++;
		memcpy(host, d, n);
		host[n] = '\0';
		roster_from(cl, ctx, c, host);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Hosts: heartbeats, deaths, and releasing a dead host's nicks
 */

static void reap_end(struct cluster *cl, actor_ctx_t *ctx, struct reap *r)
{
	(void)actor_broker_unsubscribe(ctx, r->sub);
	char kvstream[CHAT_NETWORK_MAX + 16];
	snprintf(kvstream, sizeof(kvstream), "KV_%s", cl->bucket);
	delete_consumer(cl, ctx, kvstream, r->durable);
	for (struct reap **p = &cl->reaps; *p != NULL; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	free(r);
}

/* Releases the nicks `host` holds (but those of its incarnation skip_inc, alive): reads its
 * h.* keys through a consumer and deletes each nick's key if it still holds that claim. */
static void reap(struct cluster *cl, actor_ctx_t *ctx, const char *host, uint64_t skip_inc)
{
	struct reap *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return;
	r->kind = K_REAP;
	snprintf(r->host, sizeof(r->host), "%s", host);
	r->skip_inc = skip_inc;
	r->started_ns = now_ns();
	snprintf(r->durable, sizeof(r->durable), "r%016" PRIx64,
	         mix(mix(0xcbf29ce484222325ull ^ cl->inc ^ r->started_ns, cl->srv->name), host));
	char hex[2 * 64 + 1], filter[ACTOR_BROKER_SUBJECT_MAX + 1], kvstream[CHAT_NETWORK_MAX + 16];
	hex_of(hex, sizeof(hex), host, false);
	snprintf(filter, sizeof(filter), "$KV.%s.h.%s.>", cl->bucket, hex);
	snprintf(kvstream, sizeof(kvstream), "KV_%s", cl->bucket);
	actor_broker_consumer_opts_t co = {.stream = kvstream,
	                                   .durable = r->durable,
	                                   .filter = filter,
	                                   .deliver_new = 0,
	                                   .max_ack_pending = CONSUMER_MAX_PENDING,
	                                   .tag = (uintptr_t)r};
	struct op *o = op_new(cl, OP_IGNORE);
	actor_request_t req;
	actor_request_opts_t opts = op_opts(o, JS_TIMEOUT_NS);
	int rc = o != NULL ? actor_broker_consume(ctx, &co, &opts, &r->sub, &req) : -ENOMEM;
	if (rc < 0) {
		if (o != NULL)
			op_free(o);
		free(r);
		return;
	}
	r->next = cl->reaps;
	cl->reaps = r;
}

/* One h.HOST.INC.NICK entry: its value is the nick's claim revision. */
static void reap_one(struct cluster *cl, actor_ctx_t *ctx, struct reap *r, actor_broker_msg_t *bm)
{
	const char *op = actor_broker_header(bm, "KV-Operation"); /* a marker, not a claim */
	const char *subject = actor_broker_subject(bm);
	char inc_hex[17] = "", nick_hex[2 * IRC_NICKLEN + 1] = "";
	const char *p = strstr(subject, ".h.");
	if (op == NULL && p != NULL) {
		p = strchr(p + 3, '.'); /* past the host */
		if (p != NULL && sscanf(p, ".%16[0-9a-f].%60[0-9a-f]", inc_hex, nick_hex) == 2 &&
		    strtoull(inc_hex, NULL, 16) != r->skip_inc) {
			char rev[24] = "", nsubject[300];
			size_t len =
			    bm->data_len < sizeof(rev) - 1 ? bm->data_len : sizeof(rev) - 1;
			memcpy(rev, actor_broker_data(bm), len);
			uint64_t seq = strtoull(rev, NULL, 10);
			snprintf(nsubject, sizeof(nsubject), "$KV.%s.n.%s", cl->bucket, nick_hex);
			if (seq != 0)
				kv_delete_if(cl, ctx, nsubject, seq);
			kv_delete_if(cl, ctx, subject, bm->stream_seq);
		}
	}
	(void)actor_broker_ack(ctx, bm, ACTOR_BROKER_ACK);
	/* The ack subject ends with the number of messages still to come. */
	const char *reply = actor_broker_reply_subject(bm);
	const char *last = strrchr(reply, '.');
	if (last != NULL && strcmp(last, ".0") == 0)
		reap_end(cl, ctx, r);
}

static struct host *find_host(struct cluster *cl, const char *name)
{
	for (unsigned i = 0; i < cl->nhosts; i++)
		if (strcmp(cl->hosts[i].name, name) == 0)
			return &cl->hosts[i];
	return NULL;
}

/* Whether this host is the one that releases the nicks of the dead: the first live name. */
static bool reaper_is_me(struct cluster *cl)
{
	for (unsigned i = 0; i < cl->nhosts; i++)
		if (strcmp(cl->hosts[i].name, cl->srv->name) < 0)
			return false;
	return true;
}

static void host_down(struct cluster *cl, actor_ctx_t *ctx, const char *name, uint64_t inc,
                      bool restarted)
{
	fprintf(stderr, "chat-server: cluster: host %s %s\n", name,
	        restarted ? "restarted" : "is gone");
	struct cm_cl_chan m = {0};
	snprintf(m.name, sizeof(m.name), "%.*s", (int)sizeof(m.name) - 1, name);
	for (size_t i = 0; i < cl->chans.cap; i++) {
		struct chan *c = cl->chans.vals[i];
		if (c == NULL)
			continue;
		(void)actor_send(actor_ctx_system(ctx), c->ref, CM_CL_HOST_DOWN,
		                 (char *)&m + sizeof(actor_msg_t), sizeof(m) - sizeof(actor_msg_t));
		if (!restarted)
			roster_from(cl, ctx, c, name);
	}
	if (reaper_is_me(cl))
		reap(cl, ctx, name, restarted ? inc : 0);
}

static void heartbeat_out(struct cluster *cl, actor_ctx_t *ctx)
{
	char beat[96], subject[64];
	snprintf(beat, sizeof(beat), "%s %016" PRIx64, cl->srv->name, cl->inc);
	snprintf(subject, sizeof(subject), "chat.%s.hb", cl->net);
	(void)actor_broker_publish(
	    ctx, &(actor_broker_pub_t){.subject = subject, .data = beat, .len = strlen(beat)});
}

static void heartbeat_in(struct cluster *cl, actor_ctx_t *ctx, actor_broker_msg_t *bm)
{
	char text[128] = "", name[64];
	uint64_t inc;
	size_t len = bm->data_len < sizeof(text) - 1 ? bm->data_len : sizeof(text) - 1;
	memcpy(text, actor_broker_data(bm), len);
	if (sscanf(text, "%63s %" SCNx64, name, &inc) != 2)
		return;
	if (strcmp(name, cl->srv->name) == 0) {
		if (inc != cl->inc)
			fprintf(stderr, "chat-server: cluster: another host is named %s\n", name);
		return;
	}
	struct host *h = find_host(cl, name);
	if (h == NULL) {
		struct host *hs = realloc(cl->hosts, (cl->nhosts + 1) * sizeof(*hs));
		if (hs == NULL)
			return;
		cl->hosts = hs;
		h = &hs[cl->nhosts++];
		snprintf(h->name, sizeof(h->name), "%s", name);
		h->inc = inc;
		fprintf(stderr, "chat-server: cluster: host %s is up\n", name);
		/* It learns of us at once rather than at our next beat (roster_start). */
		heartbeat_out(cl, ctx);
	} else if (h->inc != inc) { /* it died and came back before we noticed */
		h->inc = inc;
		host_down(cl, ctx, name, inc, true);
	}
	h->seen_ns = now_ns();
}

static void tick(struct cluster *cl, actor_ctx_t *ctx)
{
	heartbeat_out(cl, ctx);
	uint64_t now = now_ns();
	for (size_t i = 0; i < cl->chans.cap; i++) {
		struct chan *c = cl->chans.vals[i];
		if (c != NULL && c->rostering &&
		    (now >= c->roster_deadline_ns ||
		     (c->nexpect == 0 && now >= cl->started_ns + CLUSTER_DEAD_MS * 1000000ull)))
			roster_done(cl, ctx, c);
	}
	for (unsigned i = 0; i < cl->nhosts;) {
		struct host h = cl->hosts[i];
		if (now - h.seen_ns < CLUSTER_DEAD_MS * 1000000ull) {
			i++;
			continue;
		}
		cl->hosts[i] = cl->hosts[--cl->nhosts];
		host_down(cl, ctx, h.name, 0, false);
	}
	for (struct reap *r = cl->reaps, *next; r != NULL; r = next) {
		next = r->next;
		/* (A reap started in this tick began after `now`.) */
		if (r->started_ns + REAP_LINGER_MS * 1000000ull < now)
			reap_end(cl, ctx, r);
	}
	actor_timer_t t;
	(void)actor_timer_start(ctx, actor_self(ctx), CLUSTER_HEARTBEAT_MS * 1000000ull, 0, 0, &t);
}

/* ---------------------------------------------------------------------------------------------
 * The actor
 */

static void on_reply(struct cluster *cl, actor_ctx_t *ctx, actor_msg_t *m)
{
	actor_reply_t *rep = actor_msg_data(m);
	struct op *o = (struct op *)(uintptr_t)rep->tag;
	const actor_broker_ack_t *ack = NULL;
	if (rep->error == 0 && rep->type == ACTOR_MSG_BROKER_ACK && rep->len >= sizeof(*ack))
		ack = actor_reply_data(rep);
	switch (o->kind) {
	case OP_CLAIM:
		claimed(cl, ctx, o, rep->error, ack);
		break;
	case OP_ASK:
		asked(cl, ctx, o, m, rep->error);
		break;
	case OP_ANSWER:
		answered_local(cl, ctx, o, m);
		break;
	case OP_PUB:
		published(cl, ctx, o, rep->error, ack);
		break;
	case OP_CONSUME:
		consumed(cl, ctx, o, rep->error, ack);
		break;
	case OP_IGNORE:
		break;
	}
	op_free(o);
}

static void on_broker(struct cluster *cl, actor_ctx_t *ctx, actor_msg_t *m)
{
	actor_broker_msg_t *bm = actor_broker_msg(m);
	if (bm->sub.id == cl->hb.id) {
		heartbeat_in(cl, ctx, bm);
		return;
	}
	enum kind *k = (enum kind *)(uintptr_t)bm->tag;
	if (k == NULL)
		return;
	switch (*k) {
	case K_NICK:
		answer_remote(cl, ctx, bm);
		break;
	case K_CHAN:
		chan_event(cl, ctx, (struct chan *)k, bm);
		break;
	case K_REAP:
		reap_one(cl, ctx, (struct reap *)k, bm);
		break;
	case K_OPEN:
		open_in(cl, ctx, bm);
		break;
	}
}

static void on_req(struct cluster *cl, actor_ctx_t *ctx, actor_msg_t *m)
{
	if (m->size < sizeof(struct cm_req) - sizeof(actor_msg_t))
		return;
	struct cm_req *q = (struct cm_req *)m;
	switch (q->op) {
	case OP_NICK_CLAIM:
		nick_claim(cl, ctx, q);
		break;
	case OP_NICK_RELEASE:
		nick_release(cl, ctx, q);
		break;
	case OP_MSG_NICK:
	case OP_WHOIS:
	case OP_WHO_NICK:
		ask_remote(cl, ctx, m);
		break;
	default:
		break;
	}
}

static void cluster_fn(actor_ctx_t *ctx, void *state, actor_msg_t *m)
{
	struct cluster *cl = state;
	switch (m->type) {
	case CM_REQ:
		on_req(cl, ctx, m);
		break;
	case CM_CL_OPEN:
		if (m->size >= sizeof(struct cm_cl_chan) - sizeof(actor_msg_t))
			chan_open(cl, ctx, (struct cm_cl_chan *)m);
		break;
	case CM_CL_CLOSE:
		if (m->size >= sizeof(struct cm_cl_chan) - sizeof(actor_msg_t))
			chan_close(cl, ctx, (struct cm_cl_chan *)m);
		break;
	case CM_CL_PUB:
		chan_pub(cl, ctx, (struct cm_cl_pub *)m);
		break;
	case ACTOR_MSG_REPLY:
		on_reply(cl, ctx, m);
		break;
	case ACTOR_MSG_BROKER:
		on_broker(cl, ctx, m);
		break;
	case ACTOR_MSG_TIMER:
		tick(cl, ctx);
		break;
	default:
		break;
	}
}

static void cluster_start(actor_ctx_t *ctx, void *state)
{
	struct cluster *cl = state;
	char subject[64];
	snprintf(subject, sizeof(subject), "chat.%s.hb", cl->net);
	if (actor_broker_subscribe(ctx, subject, NULL, &cl->hb) < 0)
		fprintf(stderr, "chat-server: cluster: cannot subscribe to heartbeats\n");
	snprintf(subject, sizeof(subject), "chat.%s.open", cl->net);
	actor_broker_sub_opts_t oo = {.tag = (uintptr_t)&open_kind};
	if (actor_broker_subscribe(ctx, subject, &oo, &cl->open) < 0)
		fprintf(stderr, "chat-server: cluster: cannot subscribe to %s\n", subject);
	cl->started_ns = now_ns();
	/* Claims a previous run of this host left behind (it crashed and came back before the
	 * others released them). */
	reap(cl, ctx, cl->srv->name, cl->inc);
	tick(cl, ctx);
}

static void cluster_destroy(void *state)
{
	struct cluster *cl = state;
	while (cl->ops.next != &cl->ops)
		op_free(cl->ops.next);
	for (size_t i = 0; i < cl->nicks.cap; i++)
		free(cl->nicks.vals[i]);
	for (size_t i = 0; i < cl->chans.cap; i++) {
		struct chan *c = cl->chans.vals[i];
		if (c == NULL)
			continue;
		while (c->waiting != NULL) {
			struct pub *p = c->waiting;
			c->waiting = p->next;
			free(p);
		}
		free(c->expect);
		free(c);
	}
	hmap_free(&cl->nicks);
	hmap_free(&cl->chans);
	while (cl->reaps != NULL) {
		struct reap *r = cl->reaps;
		cl->reaps = r->next;
		free(r);
	}
	free(cl->hosts);
}

/* ---------------------------------------------------------------------------------------------
 * Start-up
 */

int chat_cluster_start(actor_system_t *sys, struct chat_srv *srv, const struct chat_cluster_opts *o)
{
	struct cluster *cl = &the_cluster;
	cl->srv = srv;
	snprintf(cl->net, sizeof(cl->net), "%s", o->network);
	snprintf(cl->bucket, sizeof(cl->bucket), "chat_%s", o->network);
	snprintf(cl->stream, sizeof(cl->stream), "CHAT_%s", o->network);
	hex_of(cl->hexname, sizeof(cl->hexname), srv->name, false);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	cl->inc = mix((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, srv->name) |
	          1; /* never 0: 0 means "none" to a reaper */
	cl->ops.next = cl->ops.prev = &cl->ops;

	char conn_name[128];
	snprintf(conn_name, sizeof(conn_name), "chat-server %s", srv->name);
	int rc = actor_broker_connect(
	    sys, &(actor_broker_opts_t){.servers = o->servers, .name = conn_name});
	if (rc < 0) {
		fprintf(stderr, "chat-server: --cluster %s: %s\n", o->servers,
		        rc == -ECONNREFUSED ? "no NATS server could be reached"
		        : rc == -EINVAL     ? "not a list of NATS URLs (nats://host:port,...)"
		        : rc == -ENOSYS     ? "this chat-server was built without libnats"
		                            : strerror(-rc));
		return rc;
	}
	char subjects[64];
	snprintf(subjects, sizeof(subjects), "chat.%s.c.>", o->network);
	/* A NATS cluster that has just started (or is busy) may not have elected its JetStream
	 * leader yet: the calls time out until it has. Hosts may start before or with their NATS
	 * servers, so they wait for it, up to CLUSTER_SETUP_WAIT_S; any other error is final. */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (bool told = false;;) {
		rc = actor_broker_stream_add(sys, cl->stream, subjects, o->replicas, 0, 0);
		if (rc == 0)
			rc = actor_broker_kv_add(sys, cl->bucket, o->replicas);
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((rc != -ETIMEDOUT && rc != -ENOTCONN) ||
		    t.tv_sec - t0.tv_sec >= CLUSTER_SETUP_WAIT_S)
			break;
		if (!told)
			fprintf(stderr,
			        "chat-server: --cluster: waiting for JetStream (up to %d s)\n",
			        CLUSTER_SETUP_WAIT_S);
		told = true;
		nanosleep(&(struct timespec){.tv_nsec = 500000000}, NULL);
	}
	if (rc < 0) {
		fprintf(stderr,
		        "chat-server: --cluster: cannot set up the stream %s and bucket %s with %u "
		        "replicas: %s%s\n",
		        cl->stream, cl->bucket, o->replicas, strerror(-rc),
		        rc == -EINVAL && o->replicas > 1
		            ? " (a single NATS server needs --cluster-replicas 1)"
		            : "");
		return rc;
	}
	actor_spawn_opts_t so = {.placement = ACTOR_PLACE_FIXED,
	                         .worker = 0,
	                         .name = "cluster",
	                         .start = cluster_start,
	                         .destroy = cluster_destroy};
	return actor_spawn(sys, &so, cluster_fn, cl, &srv->cluster);
}
