/* channel.c: one actor per channel. It alone owns the member list, topic, modes, bans and
 * invitations, so every rule about who may join, speak, set the topic or kick is decided in
 * one place, one request at a time, without locks. MODE is in chanmode.c.
 *
 * A broadcast is formatted once into a shared, reference-counted line and sent as one message
 * per worker that has members, to that worker's fan-out (fanout.c), with the list of members
 * living there; members on the channel's own worker get it straight from the channel. Replies meant
 * for one client (numerics, NAMES, WHO) go straight to its session.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

struct chan *chan_new(struct chat_srv *srv, const char *name)
{
	struct chan *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->wl = calloc(srv->workers, sizeof(*c->wl));
	if (c->wl == NULL) {
		free(c);
		return NULL;
	}
	c->srv = srv;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->created = time(NULL);
	c->modes = C_NOEXTERNAL | C_TOPICLOCK;
	irc_buf_init(&c->out);
	return c;
}

void chan_free(struct chan *c)
{
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < c->n; i++)
		free(c->mem[i]);
	free(c->mem);
	hmap_free(&c->by_ref);
	hmap_free(&c->by_nick);
	for (unsigned i = 0; i < c->nbans; i++)
		free(c->bans[i].mask);
	for (unsigned w = 0; w < c->srv->workers; w++)
		free(c->wl[w].refs);
	free(c->wl);
	free(c->topic);
	irc_buf_free(&c->out);
	chan_cl_free(c);
	free(c);
}

/* ---------------------------------------------------------------------------------------------
 * Members
 */

static bool ref_is(const void *val, const void *arg)
{
	return actor_ref_eq(((const struct member *)val)->ref, *(const actor_ref_t *)arg);
}

static bool nick_is(const void *val, const void *arg)
{
	return irc_casecmp(((const struct member *)val)->who.nick, arg) == 0;
}

static struct member *by_ref(struct chan *c, actor_ref_t ref)
{
	return hmap_find(&c->by_ref, ref.id, ref_is, &ref);
}

struct member *chan_member_by_nick(struct chan *c, const char *nick)
{
	return hmap_find(&c->by_nick, irc_hash(nick), nick_is, nick);
}

static struct member *add_member(struct chan *c, const struct cm_req *q)
{
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 4;
		struct member **mem = realloc(c->mem, cap * sizeof(*mem));
		if (mem == NULL)
			return NULL;
		c->mem = mem;
		c->cap = cap;
	}
	struct member *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->ref = q->from;
	m->worker = q->worker < c->srv->workers ? q->worker : 0;
	m->who = q->who;
	if (hmap_put(&c->by_ref, m->ref.id, m) < 0) {
		free(m);
		return NULL;
	}
	if (hmap_put(&c->by_nick, irc_hash(m->who.nick), m) < 0) {
		hmap_del(&c->by_ref, m->ref.id, m);
		free(m);
		return NULL;
	}
	m->idx = c->n;
	c->mem[c->n++] = m;
	c->wl_stale = true;
	c->ntagged += (m->who.caps & CAP_MESSAGE_TAGS) != 0;
	return m;
}

static void del_member(struct chan *c, struct member *m)
{
	c->ntagged -= (m->who.caps & CAP_MESSAGE_TAGS) != 0;
	hmap_del(&c->by_ref, m->ref.id, m);
	hmap_del(&c->by_nick, irc_hash(m->who.nick), m);
	c->mem[m->idx] = c->mem[--c->n];
	c->mem[m->idx]->idx = m->idx;
	c->wl_stale = true;
	free(m);
}

static void rename_member(struct chan *c, struct member *m, const char *nick)
{
	hmap_del(&c->by_nick, irc_hash(m->who.nick), m);
	snprintf(m->who.nick, sizeof(m->who.nick), "%s", nick);
	hmap_put(&c->by_nick, irc_hash(m->who.nick), m);
}

static void rebuild_worker_lists(struct chan *c)
{
	for (unsigned w = 0; w < c->srv->workers; w++)
		c->wl[w].n = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		struct wlist *l = &c->wl[c->mem[i]->worker];
		if (l->n == l->cap) {
			uint32_t cap = l->cap ? l->cap * 2 : 8;
			actor_ref_t *refs = realloc(l->refs, cap * sizeof(*refs));
			if (refs == NULL)
				continue; /* out of memory: this member misses broadcasts until next
				             time */
			l->refs = refs;
			l->cap = cap;
		}
		l->refs[l->n++] = c->mem[i]->ref;
	}
	c->wl_stale = false;
}

static bool is_invited(struct chan *c, const char *nick)
{
	for (unsigned i = 0; i < c->ninvites; i++)
		if (irc_casecmp(c->invites[i], nick) == 0)
			return true;
	return false;
}

static void forget_invite(struct chan *c, const char *nick)
{
	for (unsigned i = 0; i < c->ninvites; i++)
		if (irc_casecmp(c->invites[i], nick) == 0) {
			memmove(c->invites[i], c->invites[i + 1],
			        (c->ninvites - i - 1) * sizeof(c->invites[0]));
			c->ninvites--;
			return;
		}
}

static void add_invite(struct chan *c, const char *nick)
{
	forget_invite(c, nick);
	if (c->ninvites == MAX_INVITES)
		forget_invite(c, c->invites[0]);
	snprintf(c->invites[c->ninvites++], sizeof(c->invites[0]), "%s", nick);
}

static bool is_banned(struct chan *c, const struct irc_who *who)
{
	char full[IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 3];
	snprintf(full, sizeof(full), "%s!%s@%s", who->nick, who->user, who->host);
	for (unsigned i = 0; i < c->nbans; i++)
		if (irc_match(c->bans[i].mask, full))
			return true;
	return false;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 */

/* Answers the request being handled with the replies gathered for it. */
static void reply(struct chan *c, struct chat_env *e, const struct cm_req *q)
{
	chat_reply(e, q, c->out.data, c->out.len);
	irc_buf_reset(&c->out);
}

static void broadcast_line(struct chan *c, struct chat_env *e, actor_ref_t exclude, uint64_t dedup,
                           const char *text, size_t len)
{
	if (c->wl_stale)
		rebuild_worker_lists(c);
	unsigned sends = 0;
	for (unsigned w = 0; w < c->srv->workers; w++) {
		struct wlist *l = &c->wl[w];
		if (l->n > 1 || (l->n == 1 && !actor_ref_eq(l->refs[0], exclude)))
			sends++;
	}
	if (sends == 0)
		return;
	struct chat_line *line = chat_line_new(text, len, sends);
	if (line == NULL)
		return;
	for (unsigned w = 0; w < c->srv->workers; w++) {
		struct wlist *l = &c->wl[w];
		if (!(l->n > 1 || (l->n == 1 && !actor_ref_eq(l->refs[0], exclude))))
			continue;
		if (w == e->worker) { /* our own worker's members: no need for its fan-out */
			chat_deliver_local(e, line, l->refs, l->n, exclude, dedup);
			chat_line_unref(line);
			continue;
		}
		struct cm_fanout *f =
		    chat_msg_new(e, sizeof(*f) + l->n * sizeof(actor_ref_t), CM_FANOUT);
		if (f == NULL) {
			chat_line_unref(line);
			continue;
		}
		f->line = line;
		f->exclude = exclude;
		f->dedup = dedup;
		f->n = l->n;
		memcpy(f->to, l->refs, l->n * sizeof(actor_ref_t));
		chat_send(e, chat_fanout_at(c->srv, w),
		          f); /* on failure chat_send releases the line */
	}
}

void chan_broadcast_text(struct chan *c, struct chat_env *e, actor_ref_t exclude, uint64_t dedup,
                         const char *text, size_t len)
{
	broadcast_line(c, e, exclude, dedup, text, len);
}

void chan_broadcast(struct chan *c, struct chat_env *e, actor_ref_t exclude, uint64_t dedup,
                    const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	size_t len = irc_vformat_line(text, sizeof(text), fmt, ap);
	va_end(ap);
	broadcast_line(c, e, exclude, dedup, text, len);
}

void chan_broadcast_req(struct chan *c, struct chat_env *e, const struct cm_req *q, const char *fmt,
                        ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	size_t len = irc_vformat_line(text, sizeof(text), fmt, ap);
	va_end(ap);
	broadcast_line(c, e, q->from, 0, text, len);
	irc_buf_put(&c->out, text, len);
}

/* A line for some members (but `exclude`): those whose clients enabled every capability in
 * `cap_on` and none in `cap_off`, and that hold one of the prefix `flags` (any if 0). One
 * message each: these go to few, or the channel has clients of several kinds. */
static void broadcast_some(struct chan *c, struct chat_env *e, actor_ref_t exclude, unsigned cap_on,
                           unsigned cap_off, unsigned flags, const char *text, size_t len)
{
	actor_ref_t *to = malloc(c->n * sizeof(*to) + 1);
	uint32_t n = 0;
	if (to == NULL)
		return;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct member *m = c->mem[i];
		if ((m->who.caps & cap_on) == cap_on && (m->who.caps & cap_off) == 0 &&
		    (flags == 0 || (m->flags & flags)) && !actor_ref_eq(m->ref, exclude))
			to[n++] = m->ref;
	}
	struct chat_line *line = n > 0 ? chat_line_new(text, len, 1) : NULL;
	if (line != NULL) {
		chat_deliver_local(e, line, to, n, ACTOR_REF_NONE, 0);
		chat_line_unref(line);
	}
	free(to);
}

static void broadcast_cap(struct chan *c, struct chat_env *e, actor_ref_t exclude, unsigned cap,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void broadcast_cap(struct chan *c, struct chat_env *e, actor_ref_t exclude, unsigned cap,
                          const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	size_t len = irc_vformat_line(text, sizeof(text), fmt, ap);
	va_end(ap);
	broadcast_some(c, e, exclude, cap, 0, 0, text, len);
}

/* What OP_AWAY tells (chat.h, WHO_*): AWAY to away-notify members, SETNAME to setname ones. */
static void tell_who_change(struct chan *c, struct chat_env *e, const struct cm_req *q)
{
	if (q->tag == WHO_AWAY && q->who.away)
		broadcast_cap(c, e, q->from, CAP_AWAY_NOTIFY, ":" WHO_FMT " AWAY :%s",
		              WHO_ARGS(&q->who), cm_req_arg(q, 0));
	else if (q->tag == WHO_AWAY)
		broadcast_cap(c, e, q->from, CAP_AWAY_NOTIFY, ":" WHO_FMT " AWAY",
		              WHO_ARGS(&q->who));
	else if (q->tag == WHO_SETNAME)
		broadcast_cap(c, e, q->from, CAP_SETNAME, ":" WHO_FMT " SETNAME :%s",
		              WHO_ARGS(&q->who), q->who.real);
}

void chan_send_info(struct chan *c, struct chat_env *e)
{
	size_t tlen = c->topic != NULL ? strlen(c->topic) : 0;
	struct cm_chan_info *m = chat_msg_new(e, sizeof(*m) + tlen + 1, CM_CHAN_INFO);
	if (m == NULL)
		return;
	m->users = c->n;
	m->secret = (c->modes & C_SECRET) != 0;
	snprintf(m->name, sizeof(m->name), "%s", c->name);
	memcpy(m->topic, c->topic != NULL ? c->topic : "", tlen + 1);
	chat_send(e, chat_registry_for(c->srv, c->name), m);
}

void chan_names_add(struct chan *c, const struct cm_req *q, const char *head, size_t hl, char *line,
                    size_t *len, const char *pfx, const struct irc_who *who)
{
	char name[IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 3];
	if (q->who.caps & CAP_USERHOST_IN_NAMES)
		snprintf(name, sizeof(name), WHO_FMT, WHO_ARGS(who));
	else
		snprintf(name, sizeof(name), "%s", who->nick);
	size_t need = strlen(pfx) + strlen(name) + 1;
	if (*len > 0 && hl + *len + need > 510) {
		irc_buf_linef(&c->out, "%s%.*s", head, (int)*len, line);
		*len = 0;
	}
	*len += (size_t)snprintf(line + *len, 512 - *len, "%s%s%s", *len ? " " : "", pfx, name);
}

static void names_reply(struct chan *c, const struct cm_req *q, bool member)
{
	bool end = !(q->op == OP_NAMES && q->tag == 1);
	if ((c->modes & C_SECRET) && !member) {
		if (end)
			NUMERIC(c, q, "366", "%s :End of /NAMES list", c->name);
		return;
	}
	char head[128];
	int hl = snprintf(head, sizeof(head), ":%s 353 %s %c %s :", c->srv->name,
	                  q->who.nick[0] ? q->who.nick : "*", (c->modes & C_SECRET) ? '@' : '=',
	                  c->name);
	char line[512];
	size_t len = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct member *m = c->mem[i];
		if (m->who.invisible && !member)
			continue;
		chan_names_add(c, q, head, (size_t)hl, line, &len,
		               chat_prefix(m->flags, q->who.caps), &m->who);
	}
	chan_cl_names(c, q, head, (size_t)hl, line, &len);
	if (len > 0)
		irc_buf_linef(&c->out, "%s%.*s", head, (int)len, line);
	if (end)
		NUMERIC(c, q, "366", "%s :End of /NAMES list", c->name);
}

static void topic_reply(struct chan *c, const struct cm_req *q)
{
	if (c->topic == NULL) {
		NUMERIC(c, q, "331", "%s :No topic is set", c->name);
		return;
	}
	NUMERIC(c, q, "332", "%s :%s", c->name, c->topic);
	NUMERIC(c, q, "333", "%s %s %lld", c->name, c->topic_by, (long long)c->topic_at);
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 */

static void joined(struct chan *c, struct chat_env *e, const struct cm_req *q, bool ok)
{
	struct cm_joined *j = chat_msg_new(e, sizeof(*j) + c->out.len, CM_JOINED);
	if (j != NULL) {
		struct member *m = ok ? by_ref(c, q->from) : NULL;
		j->ok = ok;
		j->flags = m != NULL ? m->flags : 0;
		j->secret = (c->modes & C_SECRET) != 0;
		snprintf(j->chan, sizeof(j->chan), "%s", c->name);
		j->len = (uint32_t)c->out.len;
		if (c->out.len > 0)
			memcpy(j->text, c->out.data, c->out.len);
		/* The answer to its JOIN request. A session that stops meanwhile has sent a QUIT
		 * after its JOIN (session.c, sess_quit), which takes it out again. */
		chat_answer(e, q, j);
	}
	irc_buf_reset(&c->out);
}

void chan_broadcast_join(struct chan *c, struct chat_env *e, actor_ref_t exclude, const char *plain,
                         size_t plen, const char *ext, size_t elen)
{
	bool mixed = false;
	for (uint32_t i = 0; i < c->n && !mixed; i++)
		mixed = (c->mem[i]->who.caps & CAP_EXTENDED_JOIN) != 0;
	if (!mixed) {
		broadcast_line(c, e, exclude, 0, plain, plen);
	} else {
		broadcast_some(c, e, exclude, 0, CAP_EXTENDED_JOIN, 0, plain, plen);
		broadcast_some(c, e, exclude, CAP_EXTENDED_JOIN, 0, 0, ext, elen);
	}
}

static void op_join(struct chan *c, struct chat_env *e, struct cm_req *q)
{
	if (chan_cl_hold_join(c, e, q))
		return; /* answered once the other hosts' rosters are in (chanlink.c) */
	const char *key = cm_req_arg(q, 0);
	bool invited = is_invited(c, q->who.nick);

	if (by_ref(c, q->from) != NULL) {
		joined(c, e, q, false); /* already there: nothing to say */
		return;
	}
	const char *why = NULL, *num = NULL;
	if (!invited && is_banned(c, &q->who))
		num = "474", why = "+b";
	else if (!invited && (c->modes & C_INVITE))
		num = "473", why = "+i";
	else if (c->key[0] != '\0' && strcmp(c->key, key) != 0)
		num = "475", why = "+k";
	else if (c->limit != 0 && c->n >= c->limit)
		num = "471", why = "+l";
	if (num != NULL) {
		irc_buf_linef(&c->out, ":%s %s %s %s :Cannot join channel (%s)", c->srv->name, num,
		              q->who.nick, c->name, why);
		joined(c, e, q, false);
		return;
	}
	struct member *m = add_member(c, q);
	if (m == NULL) {
		joined(c, e, q, false);
		return;
	}
	if (c->n == 1)
		m->flags |= M_OP; /* whoever makes a channel runs it */
	forget_invite(c, q->who.nick);
	/* extended-join: "JOIN #chan <account> :<realname>"; no accounts here, so "*". */
	char plain[512], ext[512];
	size_t plen = irc_format_line(plain, sizeof(plain), ":" WHO_FMT " JOIN %s",
	                              WHO_ARGS(&q->who), c->name);
	size_t elen = irc_format_line(ext, sizeof(ext), ":" WHO_FMT " JOIN %s * :%s",
	                              WHO_ARGS(&q->who), c->name, q->who.real);
	chan_broadcast_join(c, e, q->from, plain, plen, ext, elen);
	chan_cl_joined(c, e, &q->who, plain, plen, ext, elen);
	if (q->who.away &&
	    q->nargs > 1) /* away-notify: they learn at once that the joiner is away */
		broadcast_cap(c, e, q->from, CAP_AWAY_NOTIFY, ":" WHO_FMT " AWAY :%s",
		              WHO_ARGS(&q->who), cm_req_arg(q, 1));
	if (q->who.caps & CAP_EXTENDED_JOIN)
		irc_buf_put(&c->out, ext, elen);
	else
		irc_buf_put(&c->out, plain, plen);
	if (c->topic != NULL)
		topic_reply(c, q);
	names_reply(c, q, true);
	joined(c, e, q, true);
	chan_send_info(c, e);
}

static void op_part(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	if (m == NULL) {
		NUMERIC(c, q, "442", "%s :You're not on that channel", c->name);
		return;
	}
	size_t at = c->out.len;
	if (q->nargs > 0 && cm_req_arg(q, 0)[0] != '\0')
		chan_broadcast_req(c, e, q, ":" WHO_FMT " PART %s :%s", WHO_ARGS(&m->who), c->name,
		                   cm_req_arg(q, 0));
	else
		chan_broadcast_req(c, e, q, ":" WHO_FMT " PART %s", WHO_ARGS(&m->who), c->name);
	chan_cl_left(c, e, 'P', &m->who, 0, "-", c->out.data + at, c->out.len - at);
	del_member(c, m);
	chan_send_info(c, e);
}

static void op_quit(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	if (m == NULL) {
		chan_cl_drop_join(c, e, q->from); /* it quit while its JOIN waited */
		return;
	}
	char text[512];
	size_t len = irc_format_line(text, sizeof(text), ":" WHO_FMT " QUIT :%s", WHO_ARGS(&m->who),
	                             cm_req_arg(q, 0));
	broadcast_line(c, e, m->ref, q->dedup, text, len);
	chan_cl_left(c, e, 'Q', &m->who, q->dedup, "-", text, len);
	del_member(c, m);
	chan_send_info(c, e);
}

static void op_nick(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	if (m == NULL)
		return;
	char text[512];
	size_t len = irc_format_line(text, sizeof(text), ":" WHO_FMT " NICK :%s", WHO_ARGS(&m->who),
	                             cm_req_arg(q, 0));
	broadcast_line(c, e, m->ref, q->dedup, text, len);
	chan_cl_left(c, e, 'N', &m->who, q->dedup, cm_req_arg(q, 0), text, len);
	rename_member(c, m, cm_req_arg(q, 0));
}

static void op_msg(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	unsigned kind = (unsigned)q->tag;
	bool voiced = m != NULL && (m->flags & (M_OP | M_VOICE));
	if ((m == NULL && (c->modes & C_NOEXTERNAL)) || (!voiced && (c->modes & C_MODERATED)) ||
	    (!voiced && is_banned(c, &q->who))) {
		if (kind == MSG_PRIVMSG) /* NOTICE and TAGMSG get no error replies */
			NUMERIC(c, q, "404", "%s :Cannot send to channel", c->name);
		return;
	}
	/* Across hosts, a line is stored in the stream before anyone sees it (chanlink.c);
	 * TAGMSG and STATUSMSG stay on this host. */
	if (chat_clustered(c->srv) && kind != MSG_TAGMSG &&
	    (q->nargs < 2 || cm_req_arg(q, 1)[0] == '\0') &&
	    chan_cl_msg(c, e, (struct cm_req *)q)) {
		c->handed_off = true;
		return;
	}
	chan_msg_deliver(c, e, q);
}

void chan_msg_deliver(struct chan *c, struct chat_env *e, const struct cm_req *q)
{
	unsigned kind = (unsigned)q->tag;
	/* STATUSMSG: "@#chan" reaches the operators, "+#chan" the voiced and the operators. */
	const char *status = q->nargs > 1 ? cm_req_arg(q, 1) : "";
	unsigned flags = status[0] == '@' ? M_OP : status[0] == '+' ? M_OP | M_VOICE : 0;
	char text[512];
	size_t len =
	    kind == MSG_TAGMSG
	        ? irc_format_line(text, sizeof(text), ":" WHO_FMT " TAGMSG %s%s", WHO_ARGS(&q->who),
	                          status, c->name)
	        : irc_format_line(text, sizeof(text), ":" WHO_FMT " %s %s%s :%s", WHO_ARGS(&q->who),
	                          chat_msg_cmd(kind), status, c->name, cm_req_arg(q, 0));
	/* message-tags clients get the msgid and the sender's client tags; TAGMSG is theirs only.
	 * The tagged copy is made only when someone gets it: most channels have no such client. */
	bool echo = (q->who.caps & CAP_ECHO_MESSAGE) != 0;
	bool echo_tagged = echo && (q->who.caps & CAP_MESSAGE_TAGS);
	struct irc_buf tagged;
	irc_buf_init(&tagged);
	if (kind == MSG_TAGMSG || c->ntagged > 0 || echo_tagged)
		chat_tagged_line(&tagged, q->nargs > 2 ? cm_req_arg(q, 2) : "", text, len);
	if (kind == MSG_TAGMSG) {
		broadcast_some(c, e, q->from, CAP_MESSAGE_TAGS, 0, flags, tagged.data, tagged.len);
	} else if (c->ntagged == 0) {
		if (flags == 0)
			broadcast_line(c, e, q->from, 0, text,
			               len); /* one per worker, to its fan-out */
		else
			broadcast_some(c, e, q->from, 0, 0, flags, text, len);
	} else {
		broadcast_some(c, e, q->from, 0, CAP_MESSAGE_TAGS, flags, text, len);
		broadcast_some(c, e, q->from, CAP_MESSAGE_TAGS, 0, flags, tagged.data, tagged.len);
	}
	if (echo_tagged) /* the speaker's copy comes in its reply */
		irc_buf_put(&c->out, tagged.data, tagged.len);
	else if (echo && kind != MSG_TAGMSG)
		irc_buf_put(&c->out, text, len);
	irc_buf_free(&tagged);
}

static void op_topic(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	if (q->nargs == 0) {
		if (m == NULL && (c->modes & C_SECRET))
			NUMERIC(c, q, "442", "%s :You're not on that channel", c->name);
		else
			topic_reply(c, q);
		return;
	}
	if (m == NULL) {
		NUMERIC(c, q, "442", "%s :You're not on that channel", c->name);
		return;
	}
	if ((c->modes & C_TOPICLOCK) && !(m->flags & M_OP)) {
		NUMERIC(c, q, "482", "%s :You're not channel operator", c->name);
		return;
	}
	char topic[IRC_TOPICLEN + 1];
	snprintf(topic, sizeof(topic), "%s", cm_req_arg(q, 0));
	free(c->topic);
	c->topic = topic[0] != '\0' ? strdup(topic) : NULL;
	snprintf(c->topic_by, sizeof(c->topic_by), "%s", m->who.nick);
	c->topic_at = time(NULL);
	chan_broadcast_req(c, e, q, ":" WHO_FMT " TOPIC %s :%s", WHO_ARGS(&m->who), c->name, topic);
	chan_send_info(c, e);
}

static void op_who(struct chan *c, const struct cm_req *q, struct member *me)
{
	const char *to = q->who.nick[0] ? q->who.nick : "*";
	if (!(c->modes & C_SECRET) || me != NULL) {
		for (uint32_t i = 0; i < c->n; i++) {
			const struct member *m = c->mem[i];
			if (m->who.invisible && me == NULL)
				continue;
			char flags[8];
			snprintf(flags, sizeof(flags), "%c%s%s", m->who.away ? 'G' : 'H',
			         m->who.oper ? "*" : "", chat_prefix(m->flags, q->who.caps));
			chat_who_line(&c->out, c->srv, to, cm_req_arg(q, 0), c->name, m->who.nick,
			              m->who.user, m->who.host, flags, 0, m->who.real);
		}
	}
	NUMERIC(c, q, "315", "%s :End of /WHO list", c->name);
}

static void op_kick(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	if (m == NULL) {
		NUMERIC(c, q, "442", "%s :You're not on that channel", c->name);
		return;
	}
	if (!(m->flags & M_OP)) {
		NUMERIC(c, q, "482", "%s :You're not channel operator", c->name);
		return;
	}
	char nicks[512];
	snprintf(nicks, sizeof(nicks), "%s", cm_req_arg(q, 0));
	const char *reason = q->nargs > 1 && cm_req_arg(q, 1)[0] ? cm_req_arg(q, 1) : m->who.nick;
	char *cur = nicks, *nick;
	for (unsigned k = 0; (nick = irc_list_next(&cur)) != NULL && k < IRC_MAXTARGETS; k++) {
		struct member *t = chan_member_by_nick(c, nick);
		if (t == NULL) {
			NUMERIC(c, q, "441", "%s %s :They aren't on that channel", nick, c->name);
			continue;
		}
		size_t at = c->out.len;
		chan_broadcast_req(c, e, q, ":" WHO_FMT " KICK %s %s :%.*s", WHO_ARGS(&m->who),
		                   c->name, t->who.nick, IRC_KICKLEN, reason);
		chan_cl_left(c, e, 'K', &t->who, 0, "-", c->out.data + at, c->out.len - at);
		struct cm_chan_note *p = chat_msg_new(e, sizeof(*p), CM_PARTED);
		if (p != NULL) {
			snprintf(p->chan, sizeof(p->chan), "%s", c->name);
			chat_send(e, t->ref, p);
		}
		bool self = t == m;
		del_member(c, t);
		if (self)
			break; /* the kicker kicked themselves: they may do no more here */
	}
	chan_send_info(c, e);
}

static void op_invite(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	const char *nick = cm_req_arg(q, 0);
	if (m == NULL) {
		NUMERIC(c, q, "442", "%s :You're not on that channel", c->name);
		return;
	}
	if ((c->modes & C_INVITE) && !(m->flags & M_OP)) {
		NUMERIC(c, q, "482", "%s :You're not channel operator", c->name);
		return;
	}
	if (chan_member_by_nick(c, nick) != NULL) {
		NUMERIC(c, q, "443", "%s %s :is already on channel", nick, c->name);
		return;
	}
	add_invite(c, nick);
	/* The registry finds the invitee; its session tells both sides (341 to the inviter). */
	const char *args[] = {c->name};
	struct cm_req *d = chat_req_new(e, OP_INVITE_DELIVER, &q->who, nick, 1, args);
	if (d != NULL) {
		d->from = q->from;
		d->worker = q->worker;
		/* The request goes on: the invitee's session (or registry) answers the inviter. */
		if (chat_forward(e, q, chat_registry_for(c->srv, nick), d) == 0)
			c->handed_off = true;
	}
}

static void handle_req(struct chan *c, struct chat_env *e, struct cm_req *q)
{
	struct member *m = by_ref(c, q->from);

	if (q->via)
		c->via_seen++;
	c->handed_off = false;
	switch (q->op) {
	case OP_JOIN:
		op_join(c, e, q);
		return; /* op_join answers through CM_JOINED */
	case OP_PART:
		op_part(c, e, q, m);
		break;
	case OP_QUIT:
		op_quit(c, e, q, m);
		break;
	case OP_NICK:
		op_nick(c, e, q, m);
		break;
	case OP_AWAY: /* away, invisible or operator changed */
		if (m != NULL) {
			m->who.away = q->who.away;
			m->who.invisible = q->who.invisible;
			m->who.oper = q->who.oper;
			c->ntagged += ((q->who.caps & CAP_MESSAGE_TAGS) != 0) -
			              ((m->who.caps & CAP_MESSAGE_TAGS) != 0);
			m->who.caps = q->who.caps;
			memcpy(m->who.real, q->who.real, sizeof(m->who.real));
			tell_who_change(c, e, q);
		}
		break;
	case OP_MSG:
		op_msg(c, e, q, m);
		break;
	case OP_TOPIC:
		op_topic(c, e, q, m);
		break;
	case OP_NAMES:
		names_reply(c, q, m != NULL);
		break;
	case OP_INVITE_CANCEL:
		forget_invite(c, cm_req_arg(q, 0));
		break;
	case OP_WHO:
		op_who(c, q, m);
		break;
	case OP_MODE:
		chan_mode(c, e, q, m);
		break;
	case OP_KICK:
		op_kick(c, e, q, m);
		break;
	case OP_INVITE:
		op_invite(c, e, q, m);
		break;
	case OP_RESET: /* the operator hears it first; the members, from their KICKs */
		irc_buf_linef(&c->out, ":%s NOTICE %s :Resetting %s: its members are kicked",
		              c->srv->name, q->who.nick, c->name);
		e->ops->exit(e, CHAT_REASON_RESET);
		break;
	default:
		break;
	}
	if (!c->handed_off)
		reply(c, e, q);
	irc_buf_reset(&c->out);
}

/* An empty channel asks its registry to forget it; it asks again if a forwarded request came
 * since, because the registry only agrees when it has none in flight. */
static void check_empty(struct chan *c, struct chat_env *e)
{
	if (c->n > 0 || (chat_clustered(c->srv) && !chan_cl_idle(c, e))) {
		c->empty_reported = false;
		return;
	}
	if (c->empty_reported && c->via_reported == c->via_seen)
		return;
	struct cm_chan_empty *m = chat_msg_new(e, sizeof(*m), CM_CHAN_EMPTY);
	if (m == NULL)
		return;
	m->via_seen = c->via_seen;
	snprintf(m->name, sizeof(m->name), "%s", c->name);
	if (chat_send(e, chat_registry_for(c->srv, c->name), m) == 0) {
		c->empty_reported = true;
		c->via_reported = c->via_seen;
	}
}

void chan_handle(struct chan *c, struct chat_env *e, actor_msg_t *msg)
{
	switch (msg->type) {
	case CM_REQ:
		if (msg->size >= sizeof(struct cm_req) - sizeof(actor_msg_t))
			handle_req(c, e, (struct cm_req *)msg);
		check_empty(c, e);
		break;
	case CM_CHAN_STOP:
		e->ops->exit(e, ACTOR_REASON_NORMAL);
		break;
	case CM_CL_ACKED:
	case CM_CL_EVENT:
	case CM_CL_HOST_DOWN:
	case CM_CL_READY:
	case CM_CL_ROSTER:
		chan_cl_handle(c, e, msg);
		check_empty(c, e);
		break;
	default:
		break;
	}
}

void chan_join_held(struct chan *c, struct chat_env *e, struct cm_req *q, bool refuse)
{
	irc_buf_reset(&c->out);
	if (refuse)
		joined(c, e, q, false);
	else
		op_join(c, e, q);
	irc_buf_reset(&c->out);
	chat_msg_release(&q->hdr);
	e->ops->free(e, &q->hdr);
}

void chan_restarted(struct chan *c, struct chat_env *e, actor_ref_t prev)
{
	struct cm_chan_hello *h = chat_msg_new(e, sizeof(*h), CM_CHAN_HELLO);
	if (h != NULL) {
		h->prev = prev;
		snprintf(h->name, sizeof(h->name), "%s", c->name);
		chat_send(e, chat_registry_for(c->srv, c->name), h);
	}
	check_empty(c, e); /* behind the hello: the registry knows us by then */
}

const char *chan_name(const struct chan *c)
{
	return c->name;
}
