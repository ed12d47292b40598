/* srv.c: what every part of the chat server shares: message helpers, shared lines, the
 * server's defaults, its MOTD and its ISUPPORT tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

/* ---------------------------------------------------------------------------------------------
 * Messages
 */

void *chat_msg_new(struct chat_env *e, size_t size, uint32_t type)
{
	return e->ops->alloc(e, size, type);
}

int chat_send(struct chat_env *e, actor_ref_t to, void *msg)
{
	if (msg == NULL)
		return -ENOMEM;
	int rc = chat_send_msg(e, to, msg);
	if (rc < 0) {
		chat_msg_release(msg);
		e->ops->free(e, msg);
	}
	return rc;
}

int chat_reply(struct chat_env *e, const struct cm_req *q, const char *data, size_t len)
{
	struct cm_reply *r = chat_msg_new(e, sizeof(*r) + len, CM_REPLY);
	if (r == NULL)
		return -ENOMEM;
	r->seq = 0;
	r->len = (uint32_t)len;
	if (len > 0)
		memcpy(r->text, data, len);
	int rc = e->ops->reply(e, q->kept, &r->hdr);
	if (rc == 0)
		return 0;
	if (rc != -EINVAL || len == 0) { /* a request we failed to answer, or nothing to say */
		e->ops->free(e, &r->hdr);
		return rc == -EINVAL ? 0 : rc;
	}
	return chat_send(e, q->from, r);
}

int chat_answer(struct chat_env *e, const struct cm_req *q, void *answer)
{
	if (answer == NULL)
		return -ENOMEM;
	int rc = e->ops->reply(e, q->kept, answer);
	if (rc == 0)
		return 0;
	if (rc == -EINVAL) /* not a request: the requester takes it as a message */
		return chat_send(e, q->from, answer);
	chat_msg_release(answer);
	e->ops->free(e, answer);
	return rc;
}

static bool slow_shunned(struct chat_env *e, actor_ref_t to);
static int slow_result(struct chat_env *e, actor_ref_t to, int rc);

int chat_forward(struct chat_env *e, const struct cm_req *q, actor_ref_t to, void *m)
{
	if (m == NULL)
		return -ENOMEM;
	uint64_t kept = q->kept;
	if (((actor_msg_t *)m)->type == CM_REQ) /* q itself, or a new request */
		((struct cm_req *)m)->kept = 0; /* the receiver's own field */
	int rc =
	    slow_shunned(e, to) ? -EAGAIN : slow_result(e, to, e->ops->forward(e, kept, to, m));
	if (rc < 0) {
		((struct cm_req *)q)->kept = kept; /* q may be m: still ours, as it was */
		if (m != q) {
			chat_msg_release(m);
			e->ops->free(e, m);
		}
	}
	return rc;
}

actor_msg_t *chat_answer_of(actor_msg_t *m, int *error, uint64_t *tag)
{
	*tag = 0;
	if (m->type != ACTOR_MSG_REPLY || m->size < sizeof(actor_reply_t)) {
		*error = -EBADMSG;
		return NULL;
	}
	actor_reply_t *r = actor_msg_data(m);
	*tag = r->tag;
	*error = r->error;
	if (r->error != 0)
		return NULL;
	if (r->len < sizeof(actor_msg_t) || r->len > m->size - sizeof(*r)) {
		*error = -EBADMSG;
		return NULL;
	}
	actor_msg_t *in = actor_reply_data(r);
	in->type = r->type;
	in->size = r->len - (uint32_t)sizeof(actor_msg_t);
	in->sender = m->sender;
	return in;
}

struct cm_req *chat_req_new(struct chat_env *e, uint16_t op, const struct irc_who *who,
                            const char *target, unsigned nargs, const char *const *args)
{
	size_t argslen = 0;
	if (nargs > 255)
		nargs = 255;
	for (unsigned i = 0; i < nargs; i++)
		argslen += strlen(args[i]) + 1;
	struct cm_req *r = chat_msg_new(e, sizeof(*r) + argslen, CM_REQ);
	if (r == NULL)
		return NULL;
	r->op = op;
	r->via = 0;
	r->nargs = (uint8_t)nargs;
	r->worker = e->worker;
	r->unused_ = 0;
	r->kept = 0;
	r->from = e->self;
	r->dedup = 0;
	r->tag = 0;
	if (who != NULL)
		r->who = *who;
	else
		memset(&r->who, 0, sizeof(r->who));
	snprintf(r->target, sizeof(r->target), "%s", target != NULL ? target : "");
	char *p = r->args;
	for (unsigned i = 0; i < nargs; i++) {
		size_t n = strlen(args[i]) + 1;
		memcpy(p, args[i], n);
		p += n;
	}
	return r;
}

const char *cm_req_arg(const struct cm_req *r, unsigned i)
{
	if (i >= r->nargs)
		return "";
	const char *p = r->args;
	while (i-- > 0)
		p += strlen(p) + 1;
	return p;
}

struct chat_line *chat_line_new(const char *data, size_t len, unsigned refs)
{
	struct chat_line *l = malloc(sizeof(*l) + len);
	if (l == NULL)
		return NULL;
	atomic_init(&l->refs, refs);
	l->len = (uint32_t)len;
	memcpy(l->data, data, len);
	return l;
}

void chat_line_ref(struct chat_line *l, unsigned n)
{
	/* relaxed: taking references needs no ordering, only the last release does. */
	atomic_fetch_add_explicit(&l->refs, n, memory_order_relaxed);
}

void chat_line_unref(struct chat_line *l)
{
	/* acq_rel: the release orders our reads of the line before the free; the acquire in the
	 * thread that drops the last reference pairs with every other thread's release. */
	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

void chat_msg_release(actor_msg_t *m)
{
	switch (m->type) {
	case CM_LINE:
	case CM_WALLOPS:
		if (((struct cm_line *)m)->line != NULL)
			chat_line_unref(((struct cm_line *)m)->line);
		break;
	case CM_FANOUT:
		chat_line_unref(((struct cm_fanout *)m)->line);
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Slow clients
 *
 * A session's mailbox is bounded (--session-queue; server.c spawns it so). A message sent to a
 * full one is refused (-EAGAIN, nothing queued), and the library later tells the refused
 * actor, once, that the session has room (ACTOR_MSG_WRITABLE). A session that fell so far
 * behind is a slow client: it is dropped, as an IRC server drops a client over its sendq, and
 * nobody queues for it without bound. The rule, the same for every actor that sends to
 * sessions (channels, registries, fan-outs, and sessions answering each other), lives here
 * and in the environment's handling of the two library messages (server.c, bus.c):
 *   R1 Refused: the session becomes one of the sender's slow clients, and the sender watches
 *      it (a monitor), so that it hears when the session is gone.
 *   R2 From then on the sender sends it nothing (chat_forward and chat_send answer -EAGAIN at
 *      once), until it is gone. So what it is shown of this sender ends at the refusal: no
 *      message of ours after a gap. Different senders are different streams: a channel's
 *      broadcasts reach a session through one of them, the channel itself or the fan-out of
 *      the session's worker; but what a channel sends to some members only (broadcast_some:
 *      away-notify, STATUSMSG, message-tags copies) goes straight from the channel, so a
 *      member behind a fan-out that refused it may still get one of those before CM_SLOW, as
 *      such a line could already overtake a broadcast waiting in the fan-out.
 *   R3 At the notice, the sender sends CM_SLOW, and the session quits with "Max SendQ
 *      exceeded", which those sharing a channel with it see as its QUIT; a closing session
 *      shows nothing more. CM_SLOW refused in turn (others took the room): the next notice
 *      tries again. A notice with nothing to do (one too many, or for a send made around the
 *      rule) is dropped.
 *   R4 The session's DOWN ends its record. Without a monitor (it could not be set up), the
 *      record ends once CM_SLOW has gone, or could not go for good.
 * Only sessions are bounded: channels, registries and fan-outs take every message, so a
 * session's own sends (its requests, its QUIT) are never refused and the rule only ever meets
 * sessions. A set belongs to its actor's state and is touched only by that actor's behaviour,
 * one call at a time: it needs no lock. An actor that has no slow client pays one test of
 * `n` per send.
 *
 * What the rule cannot do: a refused sender that stops before its notice never gets it, so
 * that refusal goes untold and the session lost one line, untold. Answers to a session's
 * requests are the library's messages (ACTOR_MSG_REPLY), never refused: what it waits for
 * always arrives, or times out.
 */

struct slow_client {
	actor_ref_t session;
	bool told;    /* CM_SLOW went, or cannot go (the session stopped) */
	bool watched; /* its DOWN will come (R4) */
};

static bool same_session(const void *val, const void *arg)
{
	return ((const struct slow_client *)val)->session.id == *(const uint64_t *)arg;
}

static struct slow_client *slow_find(struct chat_slow *slow, actor_ref_t session)
{
	if (slow == NULL || slow->map.n == 0)
		return NULL;
	return hmap_find(&slow->map, session.id, same_session, &session.id);
}

static void slow_forget(struct chat_slow *slow, struct slow_client *c)
{
	hmap_del(&slow->map, c->session.id, c);
	free(c);
}

/* R1. Out of memory, the session goes unrecorded: our next message may reach it after the
 * gap, and its notice finds nothing to do. */
static void slow_refused(struct chat_env *e, actor_ref_t session)
{
	if (e->slow == NULL || slow_find(e->slow, session) != NULL)
		return;
	struct slow_client *c = malloc(sizeof(*c));
	if (c == NULL || hmap_put(&e->slow->map, session.id, c) < 0) {
		free(c);
		return;
	}
	c->session = session;
	c->told = false;
	c->watched = e->ops->monitor(e, session, true) == 0;
}

/* R2 before a send to `to`; R1 after it, by its result. */
static bool slow_shunned(struct chat_env *e, actor_ref_t to)
{
	return __builtin_expect(e->slow != NULL && e->slow->map.n != 0, 0) &&
	       slow_find(e->slow, to) != NULL;
}

static int slow_result(struct chat_env *e, actor_ref_t to, int rc)
{
	if (rc == -EAGAIN)
		slow_refused(e, to);
	return rc;
}

int chat_send_msg(struct chat_env *e, actor_ref_t to, actor_msg_t *m)
{
	if (slow_shunned(e, to))
		return -EAGAIN;
	return slow_result(e, to, e->ops->send(e, to, m));
}

void chat_slow_writable(struct chat_env *e, actor_ref_t session)
{
	struct slow_client *c = slow_find(e->slow, session);
	if (c == NULL || c->told)
		return;
	actor_msg_t *m = chat_msg_new(e, sizeof(*m), CM_SLOW);
	if (m == NULL)
		return; /* out of memory: untold, as in the limits above */
	int rc = e->ops->send(e, session, m);
	if (rc < 0)
		e->ops->free(e, m);
	if (rc == -EAGAIN)
		return; /* R3: refused again, so another notice comes */
	c->told = true;
	if (!c->watched)
		slow_forget(e->slow, c);
}

bool chat_slow_down(struct chat_env *e, actor_ref_t who)
{
	struct slow_client *c = slow_find(e->slow, who);
	if (c == NULL || !c->watched)
		return false;
	slow_forget(e->slow, c);
	return true;
}

void chat_slow_free(struct chat_slow *slow)
{
	for (size_t i = 0; i < slow->map.cap; i++)
		if (slow->map.keys[i] != 0)
			free(slow->map.vals[i]);
	hmap_free(&slow->map);
}

const char *const chat_cap_names[] = {"cap-notify",   "multi-prefix",  "userhost-in-names",
                                      "echo-message", "server-time",   "away-notify",
                                      "setname",      "batch",         "labeled-response",
                                      "message-tags", "extended-join", NULL};

unsigned chat_cap_bit(const char *name)
{
	for (unsigned i = 0; chat_cap_names[i] != NULL; i++)
		if (strcmp(chat_cap_names[i], name) == 0)
			return 1u << i;
	return 0;
}

void chat_tagged_line(struct irc_buf *out, const char *tags, const char *line, size_t len)
{
	irc_buf_init(out);
	if (tags[0] != '\0') {
		irc_buf_put(out, "@", 1);
		irc_buf_put(out, tags, strlen(tags));
		irc_buf_put(out, " ", 1);
	}
	irc_buf_put(out, line, len);
}

const char *chat_prefix(uint8_t flags, unsigned caps)
{
	if ((caps & CAP_MULTI_PREFIX) && (flags & M_OP) && (flags & M_VOICE))
		return "@+";
	return (flags & M_OP) ? "@" : (flags & M_VOICE) ? "+" : "";
}

/* ---------------------------------------------------------------------------------------------
 * The server
 */

void chat_srv_init(struct chat_srv *srv, unsigned workers)
{
	memset(srv, 0, sizeof(*srv));
	snprintf(srv->name, sizeof(srv->name), "%s", CHAT_NAME_DEFAULT);
	snprintf(srv->network, sizeof(srv->network), "libactor");
	snprintf(srv->version, sizeof(srv->version), "libactor-chat"); /* server.c adds more */
	srv->started = time(NULL);
	struct tm tm;
	gmtime_r(&srv->started, &tm);
	strftime(srv->created, sizeof(srv->created), "%a %b %d %Y at %H:%M:%S UTC", &tm);
	srv->max_line = IRC_LINE_DEFAULT;
	srv->sendq = CHAT_SENDQ_DEFAULT;
	srv->session_queue = CHAT_SESSION_QUEUE_DEFAULT;
	srv->max_clients = 1000;
	srv->flood_burst = CHAT_FLOOD_BURST_DEFAULT;
	srv->flood_rate = CHAT_FLOOD_RATE_DEFAULT;
	srv->ping_interval_ns = CHAT_PING_INTERVAL_DEFAULT * 1000000000ull;
	srv->ping_timeout_ns = CHAT_PING_TIMEOUT_DEFAULT * 1000000000ull;
	srv->request_timeout_ns = CHAT_REQUEST_TIMEOUT_DEFAULT * 1000000000ull;
	srv->workers = workers;
	srv->registry = calloc(workers, sizeof(*srv->registry));
	srv->fanout = calloc(workers, sizeof(*srv->fanout));
	atomic_init(&srv->conns, 0);
	atomic_init(&srv->leaving, 0);
	atomic_init(&srv->users, 0);
	atomic_init(&srv->invisible, 0);
	atomic_init(&srv->channels, 0);
	atomic_init(&srv->max_users, 0);
}

static void free_motd(struct chat_srv *srv)
{
	for (size_t i = 0; i < srv->motd_lines; i++)
		free(srv->motd[i]);
	free(srv->motd);
	srv->motd = NULL;
	srv->motd_lines = 0;
}

int chat_srv_load_motd(struct chat_srv *srv, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	free_motd(srv);
	char line[400];
	int rc = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");
		if (line[n] == '\0' && !feof(f)) { /* longer than a line may be: skip the rest */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
		line[n] = '\0';
		char **m = realloc(srv->motd, (srv->motd_lines + 1) * sizeof(*m));
		char *copy = strdup(line);
		if (m == NULL || copy == NULL) {
			free(copy);
			if (m != NULL)
				srv->motd = m;
			rc = -ENOMEM;
			break;
		}
		srv->motd = m;
		srv->motd[srv->motd_lines++] = copy;
	}
	fclose(f);
	if (rc == 0 && srv->motd == NULL) /* an empty file still means "there is a MOTD" */
		rc = -ENODATA;
	return rc;
}

static bool oper_word_ok(const char *w, size_t max)
{
	size_t n = strlen(w);
	return n > 0 && n <= max && strpbrk(w, " \t\r\n") == NULL;
}

int chat_srv_add_oper(struct chat_srv *srv, const char *name, const char *password)
{
	if (!oper_word_ok(name, CHAT_OPER_NAMELEN) || !oper_word_ok(password, CHAT_OPER_PASSLEN))
		return -EINVAL;
	for (size_t i = 0; i < srv->nopers; i++) {
		if (strcmp(srv->opers[i].name, name) == 0)
			return -EEXIST;
	}
	struct chat_oper *o = realloc(srv->opers, (srv->nopers + 1) * sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	srv->opers = o;
	o = &srv->opers[srv->nopers++];
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->password, sizeof(o->password), "%s", password);
	return 0;
}

void chat_srv_fini(struct chat_srv *srv)
{
	free_motd(srv);
	free(srv->opers);
	srv->opers = NULL;
	srv->nopers = 0;
	free(srv->registry);
	free(srv->fanout);
	srv->registry = srv->fanout = NULL;
}

void chat_who_line(struct irc_buf *b, const struct chat_srv *srv, const char *to, const char *whox,
                   const char *chan, const char *nick, const char *user, const char *host,
                   const char *flags, unsigned idle, const char *real)
{
	if (!chat_is_whox(whox)) {
		irc_buf_linef(b, ":%s 352 %s %s %s %s %s %s %s :0 %s", srv->name, to, chan, user,
		              host, srv->name, nick, flags, real);
		return;
	}
	char fields[16], token[8] = "";
	size_t n = strcspn(whox + 1, ",");
	snprintf(fields, sizeof(fields), "%.*s", (int)(n < sizeof(fields) ? n : 0), whox + 1);
	if (whox[1 + n] == ',') /* the token: up to three digits */
		snprintf(token, sizeof(token), "%.3s", whox + 2 + n);
	char line[512];
	size_t len = (size_t)snprintf(line, sizeof(line), ":%s 354 %s", srv->name, to);
	char idle_s[16];
	snprintf(idle_s, sizeof(idle_s), "%u", idle);
	/* The specification's order, whatever the order asked. */
	static const char order[] = "tcuihsnfdlaor";
	for (const char *f = order; *f != '\0' && len < sizeof(line); f++) {
		if (strchr(fields, *f) == NULL)
			continue;
		const char *v = NULL;
		switch (*f) {
		case 't':
			v = token[0] ? token : "0";
			break;
		case 'c':
			v = chan;
			break;
		case 'u':
			v = user;
			break;
		case 'i':
			v = host;
			break; /* no name lookups: the host is the address */
		case 'h':
			v = host;
			break;
		case 's':
			v = srv->name;
			break;
		case 'n':
			v = nick;
			break;
		case 'f':
			v = flags;
			break;
		case 'd':
			v = "0";
			break; /* hops: one server */
		case 'l':
			v = idle_s;
			break;
		case 'a':
			v = "0";
			break; /* no accounts */
		case 'o':
			v = "n/a";
			break;
		case 'r':
			v = NULL;
			break;
		}
		if (*f == 'r')
			len += (size_t)snprintf(line + len, sizeof(line) - len, " :%s", real);
		else
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", v);
	}
	irc_buf_linef(b, "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), line);
}

unsigned chat_isupport(const struct chat_srv *srv, char lines[][400], unsigned max)
{
	char tokens[32][64];
	unsigned n = 0;
#define TOK(...) snprintf(tokens[n++], sizeof(tokens[0]), __VA_ARGS__)
	TOK("AWAYLEN=%d", IRC_AWAYLEN);
	TOK("CASEMAPPING=rfc1459");
	TOK("CHANLIMIT=#:%d", IRC_CHANLIMIT);
	TOK("CHANMODES=b,k,l,imnst");
	TOK("CHANNELLEN=%d", IRC_CHANLEN);
	TOK("CHANTYPES=#");
	TOK("ELIST=MNU");
	TOK("KICKLEN=%d", IRC_KICKLEN);
	TOK("MAXLIST=b:%d", IRC_MAXBANS);
	TOK("MAXTARGETS=%d", IRC_MAXTARGETS);
	TOK("MODES=%d", IRC_MAXMODES);
	TOK("NETWORK=%s", srv->network);
	TOK("NICKLEN=%d", IRC_NICKLEN);
	TOK("PREFIX=(ov)@+");
	TOK("STATUSMSG=@+");
	TOK("TARGMAX=JOIN:,KICK:4,NAMES:,NOTICE:%d,PART:,PRIVMSG:%d,WHOIS:1", IRC_MAXTARGETS,
	    IRC_MAXTARGETS);
	TOK("TOPICLEN=%d", IRC_TOPICLEN);
	TOK("USERLEN=%d", IRC_USERLEN);
	TOK("UTF8ONLY");
	TOK("WHOX");
#undef TOK
	unsigned nl = 0;
	for (unsigned i = 0; i < n && nl < max; nl++) { /* at most 13 tokens per line */
		lines[nl][0] = '\0';
		size_t len = 0;
		for (unsigned k = 0; k < 13 && i < n; k++, i++)
			len += (size_t)snprintf(lines[nl] + len, 400 - len, "%s%s", k ? " " : "",
			                        tokens[i]);
	}
	return nl;
}
