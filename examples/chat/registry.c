/* registry.c: one shard per worker of the server's two name spaces. A nick or channel name
 * belongs to the shard its folded hash picks (chat_registry_for), so two clients racing for
 * one nick meet in one actor, which decides, and no lock or global actor is involved.
 *
 * Nicks: claimed, released, looked up; messages, WHOIS, WHO and INVITE for a nick are
 * forwarded (the same message, zero-copy) to the session owning it.
 *
 * Channels: the shard has a channel's actor started on its first JOIN (by its channel
 * supervisor, through the environment: the answer comes later as CM_CHAN_STARTED, and requests
 * for the channel wait here, in order, until then) and forwards requests from non-members to
 * it. A channel restarted after a failure says so (CM_CHAN_HELLO) and takes its
 * predecessor's place. A channel that empties asks to be forgotten with the number of forwarded
 * requests it has seen; the shard agrees only if that is every request it forwarded, so a JOIN
 * in flight never reaches a stopped channel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "hmap.h"

struct nick_entry {
	char nick[IRC_NICKLEN + 1];
	char user[IRC_USERLEN + 1];
	char host[IRC_HOSTLEN + 1];
	char real[IRC_REALLEN + 1];
	actor_ref_t ref;
	uint8_t away, oper, invisible;
	uint8_t registered;
	/* With --cluster: claimed here, not yet across the cluster (cluster.c asks the key-value
	 * bucket): not findable until OP_NICK_CONFIRM. */
	uint8_t pending;
	char *chans; /* the channels it is in, space-separated, or NULL */
};

/* What others see of a user, from its latest request. */
static void nick_learn(struct nick_entry *n, const struct irc_who *who)
{
	snprintf(n->user, sizeof(n->user), "%s", who->user);
	snprintf(n->host, sizeof(n->host), "%s", who->host);
	snprintf(n->real, sizeof(n->real), "%s", who->real);
	n->away = who->away;
	n->oper = who->oper;
	n->invisible = who->invisible;
}

struct chan_entry {
	char name[IRC_CHANLEN + 1];
	actor_ref_t ref;
	uint64_t forwarded; /* requests sent on to the channel */
	bool starting;      /* asked for, not started yet: requests wait in `waiting` */
	actor_msg_t **waiting;
	unsigned nwaiting, capwaiting;
	uint32_t users;
	uint8_t secret;
	char *topic;
};

struct registry {
	struct chat_srv *srv;
	unsigned index;
	struct hmap nicks; /* irc_hash(nick) -> struct nick_entry */
	struct hmap chans; /* irc_hash(name) -> struct chan_entry */
	struct irc_buf out;
	bool stopping; /* CM_SHUTDOWN: channels that start from now on are stopped */
	const struct chat_env_ops *ops; /* of the env that kept waiting requests */
};

/* Frees the requests waiting for a channel that will not start (or a registry that stops).
 * Both environments free a message without looking at their env argument, so `ops` is what
 * the registry remembered from the env that kept them. */
static void free_waiting(const struct chat_env_ops *ops, struct chan_entry *c)
{
	for (unsigned i = 0; i < c->nwaiting; i++) {
		chat_msg_release(c->waiting[i]);
		ops->free(NULL, c->waiting[i]);
	}
	free(c->waiting);
	c->waiting = NULL;
	c->nwaiting = c->capwaiting = 0;
}

struct registry *registry_new(struct chat_srv *srv, unsigned index)
{
	struct registry *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->srv = srv;
	r->index = index;
	irc_buf_init(&r->out);
	return r;
}

void registry_free(struct registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nicks.cap; i++) {
		struct nick_entry *n = r->nicks.vals[i]; /* empty slots hold NULL */
		if (n != NULL)
			free(n->chans);
		free(n);
	}
	for (size_t i = 0; i < r->chans.cap; i++) {
		struct chan_entry *c = r->chans.vals[i];
		if (c != NULL) {
			free(c->topic);
			if (c->nwaiting > 0)
				free_waiting(r->ops, c);
		}
		free(c);
	}
	hmap_free(&r->nicks);
	hmap_free(&r->chans);
	irc_buf_free(&r->out);
	free(r);
}

static bool nick_is(const void *val, const void *arg)
{
	return irc_casecmp(((const struct nick_entry *)val)->nick, arg) == 0;
}

static bool chan_is(const void *val, const void *arg)
{
	return irc_casecmp(((const struct chan_entry *)val)->name, arg) == 0;
}

static struct nick_entry *find_nick(struct registry *r, const char *nick)
{
	return hmap_find(&r->nicks, irc_hash(nick), nick_is, nick);
}

static struct chan_entry *find_chan(struct registry *r, const char *name)
{
	return hmap_find(&r->chans, irc_hash(name), chan_is, name);
}

static void drop_nick(struct registry *r, struct nick_entry *n)
{
	hmap_del(&r->nicks, irc_hash(n->nick), n);
	free(n->chans);
	free(n);
}

static void drop_chan(struct registry *r, struct chan_entry *c)
{
	if (c->nwaiting > 0)
		free_waiting(r->ops, c);
	hmap_del(&r->chans, irc_hash(c->name), c);
	atomic_fetch_sub_explicit(&r->srv->channels, 1, memory_order_relaxed);
	free(c->topic);
	free(c);
}

/* Answers request q with the lines gathered in r->out. */
static void reply(struct registry *r, struct chat_env *e, const struct cm_req *q)
{
	chat_reply(e, q, r->out.data, r->out.len);
	irc_buf_reset(&r->out);
}

/* Answers request q with the records gathered in r->out, one per line, and empties it. */
static void send_records(struct registry *r, struct chat_env *e, struct cm_req *q, uint32_t type)
{
	struct irc_buf *b = &r->out;
	struct cm_records *rep = chat_msg_new(e, sizeof(*rep) + b->len, type);
	if (rep != NULL) {
		rep->tag = q->tag;
		rep->len = (uint32_t)b->len;
		if (b->len > 0)
			memcpy(rep->text, b->data, b->len);
		chat_answer(e, q, rep);
	}
	irc_buf_reset(b);
}

#define NUMERIC(r, req, num, fmt, ...)                                                             \
	irc_buf_linef(&(r)->out, ":%s " num " %s " fmt, (r)->srv->name,                            \
	              (req)->who.nick[0] ? (req)->who.nick : "*", __VA_ARGS__)

/* ---------------------------------------------------------------------------------------------
 * Nicks
 */

static void nick_claim(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	struct nick_entry *n = find_nick(r, q->target);
	bool ok = false;

	bool fresh = false;

	if (n == NULL) {
		n = calloc(1, sizeof(*n));
		if (n != NULL && hmap_put(&r->nicks, irc_hash(q->target), n) == 0) {
			n->ref = q->from;
			ok = fresh = true;
		} else {
			free(n);
			n = NULL;
		}
	} else if (actor_ref_eq(n->ref, q->from)) {
		ok = true; /* the owner changing the case of its nick */
	}
	if (ok) {
		if (q->tag) /* a registered client changing nick stays findable */
			n->registered = 1;
		snprintf(n->nick, sizeof(n->nick), "%.*s", IRC_NICKLEN, q->target);
		nick_learn(n, &q->who);
	}
	if (fresh && chat_clustered(r->srv)) {
		/* Free here; the cluster actor asks the other hosts (the key-value bucket) and
		 * answers the session itself, then confirms (OP_NICK_CONFIRM) or releases. */
		n->pending = 1;
		if (chat_forward(e, q, r->srv->cluster, q) == 0)
			return;
		drop_nick(r, n);
		ok = false;
	}
	struct cm_nick_result *res = chat_msg_new(e, sizeof(*res), CM_NICK_RESULT);
	if (res == NULL)
		return;
	res->ok = ok;
	snprintf(res->nick, sizeof(res->nick), "%.*s", IRC_NICKLEN, q->target);
	chat_answer(e, q, res);
}

static void nick_release(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	struct nick_entry *n = find_nick(r, q->target);
	if (n == NULL || !actor_ref_eq(n->ref, q->from))
		return;
	drop_nick(r, n);
	/* Its owner let go of it (not the cluster, which knows already): the other hosts may
	 * have it. The cluster actor gets the release after the claim it passed on, from us. */
	if (chat_clustered(r->srv) && q->via != CHAT_VIA_CLUSTER) {
		struct cm_req *rel = chat_req_new(e, OP_NICK_RELEASE, &q->who, q->target, 0, NULL);
		if (rel != NULL) {
			rel->from = q->from;
			chat_send(e, r->srv->cluster, rel);
		}
	}
}

static void nick_confirm(struct registry *r, struct cm_req *q)
{
	struct nick_entry *n = find_nick(r, q->target);
	if (n != NULL && actor_ref_eq(n->ref, q->from))
		n->pending = 0;
}

static void user_update(struct registry *r, struct cm_req *q)
{
	struct nick_entry *n = find_nick(r, q->who.nick);
	if (n == NULL || !actor_ref_eq(n->ref, q->from))
		return;
	nick_learn(n, &q->who);
	n->registered = 1;
	if (q->tag == 1) { /* its channels */
		free(n->chans);
		n->chans = cm_req_arg(q, 0)[0] != '\0' ? strdup(cm_req_arg(q, 0)) : NULL;
	}
}

/* Whether the space-separated channel lists a and b share a name. */
static bool share_channel(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return false;
	for (const char *p = a; *p != '\0';) {
		size_t len = strcspn(p, " ");
		for (const char *t = b; *t != '\0';) {
			size_t tl = strcspn(t, " ");
			char x[IRC_CHANLEN + 1], y[IRC_CHANLEN + 1];
			snprintf(x, sizeof(x), "%.*s", (int)len, p);
			snprintf(y, sizeof(y), "%.*s", (int)tl, t);
			if (irc_casecmp(x, y) == 0)
				return true;
			t += tl + (t[tl] == ' ');
		}
		p += len + (p[len] == ' ');
	}
	return false;
}

/* WHO with a mask: the registered users whose nick, nick!user@host or realname it matches.
 * Invisible users show only to themselves and to those who share a channel with them (args[1]:
 * the asker's channels; each user's own come with its OP_USER_UPDATE). */
static void who_mask(struct registry *r, struct cm_req *q)
{
	const char *mask = cm_req_arg(q, 0);
	bool all = strcmp(mask, "*") == 0 || strcmp(mask, "0") == 0;
	for (size_t i = 0; i < r->nicks.cap; i++) {
		struct nick_entry *n = r->nicks.vals[i];
		if (n == NULL || !n->registered)
			continue;
		if (n->invisible && !actor_ref_eq(n->ref, q->from) &&
		    !share_channel(n->chans, cm_req_arg(q, 1)))
			continue;
		char full[IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 3];
		snprintf(full, sizeof(full), "%s!%s@%s", n->nick, n->user, n->host);
		if (!all && !irc_match(mask, n->nick) && !irc_match(mask, full) &&
		    !irc_match(mask, n->host) && !irc_match(mask, n->real))
			continue;
		irc_buf_linef(&r->out, "%s %s %s %c%s %s", n->nick, n->user, n->host,
		              n->away ? 'G' : 'H', n->oper ? "*" : "", n->real);
	}
}

/* USERHOST, ISON and the MODE check: the registered nicks among the arguments. */
static void lookup(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	struct irc_buf *b = &r->out;
	if (q->tag == LOOKUP_WHO) {
		who_mask(r, q);
		send_records(r, e, q, CM_LOOKUP_REPLY);
		return;
	}
	for (unsigned i = 0; i < q->nargs; i++) {
		struct nick_entry *n = find_nick(r, cm_req_arg(q, i));
		if (n == NULL || !n->registered)
			continue;
		char rec[IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 8];
		int len = snprintf(rec, sizeof(rec), "%s %s %s %c\n", n->nick, n->user, n->host,
		                   n->away ? 'A' : 'H');
		irc_buf_put(b, rec, (size_t)len);
	}
	send_records(r, e, q, CM_LOOKUP_REPLY);
}

void chat_no_such_nick(struct irc_buf *b, const struct chat_srv *srv, const struct cm_req *q)
{
	const char *to = q->who.nick[0] ? q->who.nick : "*";
	switch (q->op) {
	case OP_MSG_NICK:
		if (q->tag == MSG_PRIVMSG) /* NOTICE and TAGMSG never get an automatic reply */
			irc_buf_linef(b, ":%s 401 %s %s :No such nick/channel", srv->name, to,
			              q->target);
		break;
	case OP_WHOIS:
		irc_buf_linef(b, ":%s 401 %s %s :No such nick/channel", srv->name, to, q->target);
		irc_buf_linef(b, ":%s 318 %s %s :End of /WHOIS list", srv->name, to, q->target);
		break;
	case OP_WHO_NICK:
		irc_buf_linef(b, ":%s 315 %s %s :End of /WHO list", srv->name, to, q->target);
		break;
	default:
		break;
	}
}

/* A request for the session owning q->target: forward it, or answer for the missing nick.
 * Returns true when the message was forwarded (it is no longer ours). */
static bool to_nick(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	struct nick_entry *n = find_nick(r, q->target);
	if (n == NULL && chat_clustered(r->srv) && q->via != CHAT_VIA_CLUSTER &&
	    (q->op == OP_MSG_NICK || q->op == OP_WHOIS || q->op == OP_WHO_NICK)) {
		/* Not a user of this host: the cluster actor asks the host that has it, which
		 * answers the requester (or says nobody has it: 401). */
		if (chat_forward(e, q, r->srv->cluster, q) == 0)
			return true;
	}
	if (n != NULL && n->registered && !n->pending) {
		/* The request goes on to the session, which answers the requester itself. */
		int rc = chat_forward(e, q, n->ref, q);
		if (rc == 0)
			return true;
		if (rc != -ESRCH) { /* it lives but cannot take it (out of memory): no answer */
			reply(r, e, q);
			return false;
		}
		drop_nick(r, n); /* its session is gone */
	}
	switch (q->op) {
	case OP_MSG_NICK:
	case OP_WHOIS:
	case OP_WHO_NICK:
		chat_no_such_nick(&r->out, r->srv, q);
		break;
	case OP_INVITE_DELIVER: {
		NUMERIC(r, q, "401", "%s :No such nick/channel", q->target);
		/* The channel took the invitation before anyone knew the nick was free: take it
		 * back, so that whoever takes the nick later is not let in by it. */
		const char *nick = q->target;
		struct cm_req *cancel =
		    chat_req_new(e, OP_INVITE_CANCEL, &q->who, cm_req_arg(q, 0), 1, &nick);
		if (cancel != NULL)
			chat_send(e, chat_registry_for(r->srv, cm_req_arg(q, 0)), cancel);
		break;
	}
	case OP_KILL:
		NUMERIC(r, q, "401", "%s :No such nick/channel", q->target);
		break;
	}
	reply(r, e, q);
	return false;
}

/* ---------------------------------------------------------------------------------------------
 * Channels
 */

static struct chan_entry *create_chan(struct registry *r, struct chat_env *e, const char *name)
{
	struct chan_entry *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->starting = true;
	if (hmap_put(&r->chans, irc_hash(name), c) < 0) {
		free(c);
		return NULL;
	}
	if (e->ops->spawn_channel(e, name) < 0) {
		hmap_del(&r->chans, irc_hash(name), c);
		free(c);
		return NULL;
	}
	atomic_fetch_add_explicit(&r->srv->channels, 1, memory_order_relaxed);
	return c;
}

/* Keeps request q until the channel has started: it goes on then, in order. */
static bool wait_for_start(struct registry *r, struct chat_env *e, struct chan_entry *c,
                           struct cm_req *q)
{
	if (c->nwaiting == c->capwaiting) {
		unsigned cap = c->capwaiting ? c->capwaiting * 2 : 4;
		actor_msg_t **w = realloc(c->waiting, cap * sizeof(*w));
		if (w == NULL)
			return false;
		c->waiting = w;
		c->capwaiting = cap;
	}
	q->kept = e->ops->keep(e); /* its request, if any, is answered or passed on later */
	r->ops = e->ops;
	c->waiting[c->nwaiting++] = &q->hdr;
	return true;
}

/* The answer for a channel that does not exist. */
static void no_such_channel(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	switch (q->op) {
	case OP_JOIN: { /* could not create it: the session must not wait for ever */
		NUMERIC(r, q, "403", "%s :No such channel", q->target);
		struct cm_joined *j = chat_msg_new(e, sizeof(*j) + r->out.len, CM_JOINED);
		if (j != NULL) {
			j->ok = 0;
			j->len = (uint32_t)r->out.len;
			if (r->out.len > 0)
				memcpy(j->text, r->out.data, r->out.len);
			snprintf(j->chan, sizeof(j->chan), "%s", q->target);
			chat_answer(e, q, j);
		}
		irc_buf_reset(&r->out);
		return;
	}
	case OP_MSG:
		if (q->tag == MSG_PRIVMSG)
			NUMERIC(r, q, "401", "%s :No such nick/channel", q->target);
		break;
	case OP_PART:
	case OP_TOPIC:
	case OP_MODE:
	case OP_KICK:
	case OP_INVITE:
	case OP_RESET:
		NUMERIC(r, q, "403", "%s :No such channel", q->target);
		break;
	case OP_NAMES:
		if (q->tag == 0) /* else the session ends the list */
			NUMERIC(r, q, "366", "%s :End of /NAMES list", q->target);
		break;
	case OP_WHO:
		NUMERIC(r, q, "315", "%s :End of /WHO list", q->target);
		break;
	default: /* QUIT after a JOIN that never happened, and the like: nothing to say */
		break;
	}
	reply(r, e, q);
}

/* A request for the channel q->target. Returns true when the message was forwarded or kept. */
static bool to_chan(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	struct chan_entry *c = find_chan(r, q->target);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (c == NULL && q->op == OP_JOIN)
			c = create_chan(r, e, q->target);
		if (c == NULL)
			break;
		if (c->starting) {
			if (wait_for_start(r, e, c, q))
				return true;
			break;
		}
		q->via = 1;
		c->forwarded++;
		if (chat_forward(e, q, c->ref, q) == 0)
			return true;
		drop_chan(r, c); /* its actor is gone: forget it, and for a JOIN start afresh */
		c = NULL;
	}
	no_such_channel(r, e, q);
	return false;
}

static void stop_channel(struct chat_env *e, actor_ref_t ref)
{
	actor_msg_t *stop = chat_msg_new(e, sizeof(*stop), CM_CHAN_STOP);
	chat_send(e, ref, stop);
}

/* The channel's actor started, or could not: the requests that waited for it go on, or are
 * answered as for a channel that does not exist. */
static void chan_started(struct registry *r, struct chat_env *e, struct cm_chan_started *m)
{
	struct chan_entry *c = find_chan(r, m->name);
	if (c == NULL || !c->starting) {
		if (m->result == 0) /* forgotten meanwhile (shutdown) */
			stop_channel(e, m->ref);
		return;
	}
	actor_msg_t **w = c->waiting;
	unsigned n = c->nwaiting;
	c->waiting = NULL;
	c->nwaiting = c->capwaiting = 0;
	c->starting = false;
	c->ref = m->ref;
	bool ok = m->result == 0;
	if (!ok)
		drop_chan(r, c);
	else if (r->stopping)
		stop_channel(e, m->ref);
	for (unsigned i = 0; i < n; i++) {
		struct cm_req *q = (struct cm_req *)w[i];
		if (ok) {
			q->via = 1;
			c->forwarded++;
			if (chat_forward(e, q, c->ref, q) == 0)
				continue;
		}
		no_such_channel(r, e, q);
		e->ops->free(e, &q->hdr);
	}
	free(w);
}

/* A channel restarted after its predecessor failed: it takes the predecessor's place. Any
 * other channel of that name (the registry started a new one when a send to the failed one
 * said it had stopped) is the one members find: the restarted one is stopped. */
static void chan_hello(struct registry *r, struct chat_env *e, struct cm_chan_hello *m)
{
	struct chan_entry *c = find_chan(r, m->name);
	if (c == NULL || c->starting || !actor_ref_eq(c->ref, m->prev)) {
		stop_channel(e, m->hdr.sender);
		return;
	}
	c->ref = m->hdr.sender;
	c->forwarded = 0; /* what the new actor will count */
	c->users = 0;
	free(c->topic);
	c->topic = NULL;
}

static void chan_info(struct registry *r, struct cm_chan_info *m)
{
	struct chan_entry *c = find_chan(r, m->name);
	if (c == NULL || !actor_ref_eq(c->ref, m->hdr.sender))
		return;
	c->users = m->users;
	c->secret = m->secret;
	free(c->topic);
	c->topic = m->topic[0] != '\0' ? strdup(m->topic) : NULL;
}

static void chan_empty(struct registry *r, struct chat_env *e, struct cm_chan_empty *m)
{
	struct chan_entry *c = find_chan(r, m->name);
	if (c == NULL || !actor_ref_eq(c->ref, m->hdr.sender) || c->forwarded != m->via_seen)
		return; /* a request is on its way to it: it will not stay empty, or will ask again
		         */
	actor_ref_t ref = c->ref;
	drop_chan(r, c);
	stop_channel(e, ref);
}

static void list(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	struct irc_buf *b = &r->out;
	for (size_t i = 0; i < r->chans.cap; i++) {
		struct chan_entry *c = r->chans.vals[i];
		if (c == NULL)
			continue;
		char rec[600];
		int len = snprintf(rec, sizeof(rec), "%c %u %s %s\n", c->secret ? 'S' : 'P',
		                   c->users, c->name, c->topic != NULL ? c->topic : "");
		if (len > 0)
			irc_buf_put(b, rec,
			            (size_t)len < sizeof(rec) ? (size_t)len : sizeof(rec) - 1);
	}
	send_records(r, e, q, CM_LIST_REPLY);
}

static void stop_all_channels(struct registry *r, struct chat_env *e)
{
	r->stopping = true;
	for (size_t i = 0; i < r->chans.cap; i++) {
		struct chan_entry *c = r->chans.vals[i];
		if (c != NULL && !c->starting) /* a starting one is stopped as it starts */
			stop_channel(e, c->ref);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 */

static void handle_req(struct registry *r, struct chat_env *e, struct cm_req *q)
{
	switch (q->op) {
	case OP_NICK_CLAIM:
		nick_claim(r, e, q);
		return;
	case OP_NICK_RELEASE:
		nick_release(r, e, q);
		return;
	case OP_NICK_CONFIRM:
		nick_confirm(r, q);
		return;
	case OP_USER_UPDATE:
		user_update(r, q);
		return;
	case OP_LOOKUP:
		lookup(r, e, q);
		return;
	case OP_LIST:
		list(r, e, q);
		return;
	default:
		break;
	}
	if (q->op >= OP_TO_CHAN_FIRST && irc_is_channel(q->target))
		to_chan(r, e, q);
	else if (q->op >= OP_TO_NICK_FIRST && q->op < OP_TO_CHAN_FIRST)
		to_nick(r, e, q);
}

void registry_handle(struct registry *r, struct chat_env *e, actor_msg_t *m)
{
	switch (m->type) {
	case CM_REQ:
		if (m->size >= sizeof(struct cm_req) - sizeof(actor_msg_t))
			handle_req(r, e, (struct cm_req *)m);
		break;
	case CM_CHAN_INFO:
		chan_info(r, (struct cm_chan_info *)m);
		break;
	case CM_CHAN_EMPTY:
		chan_empty(r, e, (struct cm_chan_empty *)m);
		break;
	case CM_CHAN_STARTED:
		chan_started(r, e, (struct cm_chan_started *)m);
		break;
	case CM_CHAN_HELLO:
		chan_hello(r, e, (struct cm_chan_hello *)m);
		break;
	case CM_SHUTDOWN:
		stop_all_channels(r, e);
		break;
	default:
		break;
	}
}
