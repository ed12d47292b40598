/* session_reply.c: what other actors send to a session: the answers to its requests (a nick
 * claim, a JOIN, LIST, lookups), text to pass on, and requests about its own user: a private
 * message, WHOIS, WHO or INVITE naming it. The answers go back to the requester's session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* The registry's answer to our claim. */
static void nick_result(struct sess *s, struct cm_nick_result *r)
{
	if (s->wait != WAIT_NICK)
		return;
	s->wait = WAIT_NONE;
	if (r->ok == CHAT_NICK_UNSURE) { /* the cluster could not say */
		sess_numeric(s, "437", "%s :Nick/channel is temporarily unavailable", r->nick);
		return;
	}
	if (!r->ok) {
		sess_numeric(s, "433", "%s :Nickname is already in use", r->nick);
		return;
	}
	bool had = (s->flags & F_NICK) != 0;
	if (had && irc_casecmp(s->who.nick, r->nick) != 0)
		sess_send(s, chat_registry_for(s->srv, s->who.nick),
		          sess_req(s, OP_NICK_RELEASE, s->who.nick, 0, NULL));
	if (s->flags & F_REGISTERED) {
		sess_printf(s, ":%s!%s@%s NICK :%s", s->who.nick, s->who.user, s->who.host,
		            r->nick);
		sess_to_all_channels(s, OP_NICK, sess_dedup_key(s, ++s->nick_seq), r->nick);
	}
	snprintf(s->who.nick, sizeof(s->who.nick), "%.*s", IRC_NICKLEN, r->nick);
	s->flags |= F_NICK;
	sess_try_register(s);
}

/* One shard's users for WHO <mask>, as 352 lines; the last shard's answer ends the list. */
static void who_mask_reply(struct sess *s, struct cm_records *r)
{
	char *text = strndup(r->text, r->len);
	for (char *save = NULL, *rec = text ? strtok_r(text, "\r\n", &save) : NULL; rec != NULL;
	     rec = strtok_r(NULL, "\r\n", &save)) {
		char nick[IRC_NICKLEN + 1], user[IRC_USERLEN + 1], host[IRC_HOSTLEN + 1], flags[4];
		int off = 0;
		if (sscanf(rec, "%30s %12s %63s %3s %n", nick, user, host, flags, &off) < 4)
			continue;
		struct irc_buf b;
		irc_buf_init(&b);
		chat_who_line(&b, s->srv, s->who.nick, s->whox, "*", nick, user, host, flags, 0,
		              off > 0 ? rec + off : "");
		sess_write(s, b.data, b.len);
		irc_buf_free(&b);
	}
	free(text);
	if (--s->pending > 0)
		return;
	s->wait = WAIT_NONE;
	sess_numeric(s, "315", "%s :End of /WHO list", s->lookup_arg ? s->lookup_arg : "*");
	free(s->lookup_arg);
	s->lookup_arg = NULL;
}

static void lookup_reply(struct sess *s, struct cm_records *r)
{
	if (s->wait != WAIT_LOOKUP || r->tag != s->lookup_tag)
		return;
	if (r->tag == LOOKUP_WHO) {
		who_mask_reply(s, r);
		return;
	}
	char *text = strndup(r->text, r->len);
	for (char *save = NULL, *rec = text ? strtok_r(text, "\n", &save) : NULL; rec != NULL;
	     rec = strtok_r(NULL, "\n", &save)) {
		char nick[IRC_NICKLEN + 1], user[IRC_USERLEN + 1], host[IRC_HOSTLEN + 1], away;
		if (sscanf(rec, "%30s %12s %63s %c", nick, user, host, &away) != 4)
			continue;
		char item[128];
		int len = s->lookup_tag == LOOKUP_USERHOST
		              ? snprintf(item, sizeof(item), "%s%s=%c%s@%s", s->acc.len ? " " : "",
		                         nick, away == 'A' ? '-' : '+', user, host)
		              : snprintf(item, sizeof(item), "%s%s", s->acc.len ? " " : "", nick);
		irc_buf_put(&s->acc, item, (size_t)len);
	}
	free(text);
	if (--s->pending > 0)
		return;
	s->wait = WAIT_NONE;
	int n = (int)s->acc.len;
	switch (s->lookup_tag) {
	case LOOKUP_ISON:
		sess_numeric(s, "303", ":%.*s", n, s->acc.data ? s->acc.data : "");
		break;
	case LOOKUP_USERHOST:
		sess_numeric(s, "302", ":%.*s", n, s->acc.data ? s->acc.data : "");
		break;
	case LOOKUP_MODE:
		if (n > 0)
			sess_numeric(s, "502", ":Can't change mode for other users");
		else
			sess_numeric(s, "401", "%s :No such nick/channel", s->lookup_arg);
		break;
	}
	irc_buf_free(&s->acc);
	free(s->lookup_arg);
	s->lookup_arg = NULL;
}

static void joined(struct sess *s, struct cm_joined *j)
{
	if (s->wait != WAIT_JOIN || irc_casecmp(j->chan, s->joining) != 0)
		return;
	if (j->ok) {
		sess_add_chan(s, j->chan, j->hdr.sender, j->secret, j->flags);
		sess_invited(s, j->chan, false);
	}
	if (!j->ok && j->len == 0) /* answered for nobody: the channel failed, or took too long */
		sess_numeric(s, "437", "%s :Channel is temporarily unavailable", j->chan);
	sess_write(s, j->text, j->len);
	if (!(s->flags & F_CLOSING))
		sess_join_next(s);
}

/* A channel we are in stopped. A channel stops normally only once it is empty, so we left it
 * before: a stop with any other reason is a failure, and its state (members, topic, modes) is
 * gone with it. We do what a server does when it removes a user from a channel: a KICK from
 * the server, with the reason, and we forget the channel. Its supervisor has restarted it,
 * empty; a client that rejoins after a kick (most do) finds it there. */
static void channel_down(struct sess *s, struct cm_down *d)
{
	struct sess_chan *c = NULL;
	for (unsigned i = 0; i < s->nchans; i++)
		if (actor_ref_eq(s->chans[i].ref, d->who))
			c = &s->chans[i];
	if (c == NULL || d->reason == ACTOR_REASON_NORMAL)
		return;
	sess_printf(s, ":%s KICK %s %s :Channel reset", s->srv->name, c->name, s->who.nick);
	sess_drop_chan(s, c);
}

/* Whether LIST's filter takes this channel. The filter is a comma list of names and masks (the
 * channel must match one, if there are any), "!mask" (it must match none: ELIST N) and ">n",
 * "<n" (more or fewer users than n: ELIST U); or none at all. */
static bool list_wants(const char *filter, const char *name, unsigned users)
{
	if (filter == NULL)
		return true;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", filter);
	char *cur = buf, *item;
	bool named = false, match = false;
	while ((item = irc_list_next(&cur)) != NULL) {
		char *end;
		if (item[0] == '>' || item[0] == '<') {
			unsigned long n = strtoul(item + 1, &end, 10);
			if (*end == '\0' && (item[0] == '>' ? users <= n : users >= n))
				return false;
		} else if (item[0] == '!') {
			if (irc_match(item + 1, name))
				return false;
		} else {
			named = true;
			match = match || irc_match(item, name); /* a plain name matches itself */
		}
	}
	return !named || match;
}

static void list_reply(struct sess *s, struct cm_records *r)
{
	if (s->wait != WAIT_LIST)
		return;
	char *text = strndup(r->text, r->len);
	for (char *save = NULL, *rec = text ? strtok_r(text, "\n", &save) : NULL; rec != NULL;
	     rec = strtok_r(NULL, "\n", &save)) {
		char flag, name[IRC_CHANLEN + 1];
		unsigned users;
		int off = 0;
		if (sscanf(rec, "%c %u %50s %n", &flag, &users, name, &off) < 3)
			continue;
		if ((flag == 'S' && sess_find_chan(s, name) == NULL) ||
		    !list_wants(s->lookup_arg, name, users))
			continue;
		sess_numeric(s, "322", "%s %u :%s", name, users, off > 0 ? rec + off : "");
	}
	free(text);
	if (--s->pending > 0)
		return;
	s->wait = WAIT_NONE;
	free(s->lookup_arg);
	s->lookup_arg = NULL;
	sess_numeric(s, "323", ":End of /LIST");
}

/* ---------------------------------------------------------------------------------------------
 * What other actors ask of this session: its user is the target of a message, WHOIS, WHO or
 * INVITE. The answers go back to the requester's session as text.
 */

/* Answers request q with the lines in b, and empties b. */
static void reply_to(struct sess *s, const struct cm_req *q, struct irc_buf *b)
{
	chat_reply(s->e, q, b->data, b->len);
	irc_buf_free(b);
}

static void whois_me(struct sess *s, const struct cm_req *q)
{
	struct irc_buf b;
	irc_buf_init(&b);
	const char *srv = s->srv->name, *rq = q->who.nick, *me = s->who.nick;
	irc_buf_linef(&b, ":%s 311 %s %s %s %s * :%s", srv, rq, me, s->who.user, s->who.host,
	              s->who.real);
	char chans[400];
	size_t n = 0;
	bool self = actor_ref_eq(q->from, s->self);
	for (unsigned i = 0; i < s->nchans && n + IRC_CHANLEN + 3 < sizeof(chans); i++) {
		const struct sess_chan *c = &s->chans[i];
		if (!c->secret || self)
			n += (size_t)snprintf(chans + n, sizeof(chans) - n, "%s%s%s", n ? " " : "",
			                      (c->flags & M_OP)      ? "@"
			                      : (c->flags & M_VOICE) ? "+"
			                                             : "",
			                      c->name);
	}
	if (n > 0)
		irc_buf_linef(&b, ":%s 319 %s %s :%s", srv, rq, me, chans);
	irc_buf_linef(&b, ":%s 312 %s %s %s :libactor chat server", srv, rq, me, srv);
	if (s->who.oper)
		irc_buf_linef(&b, ":%s 313 %s %s :is an IRC operator", srv, rq, me);
	if (s->away != NULL)
		irc_buf_linef(&b, ":%s 301 %s %s :%s", srv, rq, me, s->away);
	uint64_t idle = (s->e->ops->now_ns(s->e) - s->idle_ns) / 1000000000ull;
	irc_buf_linef(&b, ":%s 317 %s %s %llu %lld :seconds idle, signon time", srv, rq, me,
	              (unsigned long long)idle, (long long)s->signon);
	irc_buf_linef(&b, ":%s 318 %s %s :End of /WHOIS list", srv, rq, me);
	reply_to(s, q, &b);
}

static void request_for_me(struct sess *s, struct cm_req *q)
{
	struct irc_buf b;
	irc_buf_init(&b);
	const char *srv = s->srv->name, *me = s->who.nick;
	switch (q->op) {
	case OP_MSG_NICK: {
		bool tagged = (s->who.caps & CAP_MESSAGE_TAGS) != 0;
		if (q->tag != MSG_TAGMSG || tagged) {
			char line[512];
			size_t len =
			    q->tag == MSG_TAGMSG
			        ? irc_format_line(line, sizeof(line), ":%s!%s@%s TAGMSG %s",
			                          q->who.nick, q->who.user, q->who.host, me)
			        : irc_format_line(line, sizeof(line), ":%s!%s@%s %s %s :%s",
			                          q->who.nick, q->who.user, q->who.host,
			                          chat_msg_cmd(q->tag), me, cm_req_arg(q, 0));
			struct irc_buf t;
			chat_tagged_line(&t, tagged ? cm_req_arg(q, 2) : "", line, len);
			sess_write(s, t.data, t.len);
			irc_buf_free(&t);
		}
		if (q->tag == MSG_PRIVMSG && s->away != NULL)
			irc_buf_linef(&b, ":%s 301 %s %s :%s", srv, q->who.nick, me, s->away);
		reply_to(s, q, &b);
		break;
	}
	case OP_WHOIS:
		whois_me(s, q);
		break;
	case OP_WHO_NICK: {
		char flags[4];
		snprintf(flags, sizeof(flags), "%c%s", s->away ? 'G' : 'H', s->who.oper ? "*" : "");
		uint64_t idle = (s->e->ops->now_ns(s->e) - s->idle_ns) / 1000000000ull;
		chat_who_line(&b, s->srv, q->who.nick, cm_req_arg(q, 0), "*", me, s->who.user,
		              s->who.host, flags, (unsigned)idle, s->who.real);
	}
		irc_buf_linef(&b, ":%s 315 %s %s :End of /WHO list", srv, q->who.nick, q->target);
		reply_to(s, q, &b);
		break;
	case OP_KILL: {
		char reason[IRC_KICKLEN + IRC_NICKLEN + 16];
		snprintf(reason, sizeof(reason), "Killed (%s (%s))", q->who.nick, cm_req_arg(q, 0));
		sess_printf(s, ":%s!%s@%s KILL %s :%s", q->who.nick, q->who.user, q->who.host, me,
		            cm_req_arg(q, 0));
		reply_to(s, q, &b); /* nothing for the killer but the end of its wait */
		sess_quit(s, reason, true);
		return;
	}
	case OP_INVITE_DELIVER:
		sess_printf(s, ":%s!%s@%s INVITE %s :%s", q->who.nick, q->who.user, q->who.host, me,
		            cm_req_arg(q, 0));
		sess_invited(s, cm_req_arg(q, 0), true);
		irc_buf_linef(&b, ":%s 341 %s %s %s", srv, q->who.nick, me, cm_req_arg(q, 0));
		if (s->away != NULL)
			irc_buf_linef(&b, ":%s 301 %s %s :%s", srv, q->who.nick, me, s->away);
		reply_to(s, q, &b);
		break;
	}
	irc_buf_free(&b);
}

/* A request of ours ended. Answered: a numbered request's text goes to its place, a wait's
 * answer to its handler above. Not answered (a timeout; a receiver that stopped, such as a
 * channel that failed under a JOIN): the place gets what sess_req_failed says, the wait ends
 * as a failure the client is told of. */
static void answered(struct sess *s, actor_msg_t *m)
{
	int error;
	uint64_t tag;
	actor_msg_t *in = chat_answer_of(m, &error, &tag);
	if (error == -EBADMSG)
		return;
	if (tag < SESS_TAG_WAIT) {
		struct cm_reply *r = (struct cm_reply *)in;
		if (in != NULL && in->type == CM_REPLY && in->size >= sizeof(*r) - sizeof(r->hdr) &&
		    r->len <= in->size - (sizeof(*r) - sizeof(r->hdr)))
			sess_req_done(s, (uint32_t)tag, r->text, r->len);
		else
			sess_req_failed(s, (uint32_t)tag, in != NULL ? -EBADMSG : error);
		return;
	}
	if (in != NULL) {
		if (in->type < ACTOR_MSG_SYSTEM && in->type != CM_REPLY)
			sess_reply(s, in);
		return;
	}
	switch ((enum sess_wait)(tag & ~SESS_TAG_WAIT)) {
	case WAIT_NICK:
		if (s->wait != WAIT_NICK)
			break;
		s->wait = WAIT_NONE;
		/* Timed out, the claim may still be made: let go of it after, unless it is ours. */
		if (error == -ETIMEDOUT &&
		    (!(s->flags & F_NICK) || irc_casecmp(s->claim, s->who.nick) != 0))
			sess_send(s, chat_registry_for(s->srv, s->claim),
			          sess_req(s, OP_NICK_RELEASE, s->claim, 0, NULL));
		sess_numeric(s, "437", "%s :Nick/channel is temporarily unavailable", s->claim);
		break;
	case WAIT_JOIN: {
		if (s->wait != WAIT_JOIN)
			break;
		/* Timed out, the JOIN may still reach the channel: leave it after, as at a QUIT. */
		if (error == -ETIMEDOUT)
			sess_send(s, chat_registry_for(s->srv, s->joining),
			          sess_req(s, OP_PART, s->joining, 0, NULL));
		struct cm_joined j = {
		    .hdr = {.type = CM_JOINED, .size = sizeof(j) - sizeof(j.hdr)}};
		snprintf(j.chan, sizeof(j.chan), "%s", s->joining);
		joined(s, &j); /* not ok, no text: 437 */
		break;
	}
	case WAIT_LIST: {
		struct cm_records r = {.hdr = {.type = CM_LIST_REPLY}};
		list_reply(s, &r);
		break;
	}
	case WAIT_LOOKUP: {
		struct cm_records r = {.hdr = {.type = CM_LOOKUP_REPLY}, .tag = s->lookup_tag};
		lookup_reply(s, &r);
		break;
	}
	default:
		break;
	}
}

void sess_reply(struct sess *s, actor_msg_t *m)
{
	switch (m->type) {
	case ACTOR_MSG_REPLY:
		answered(s, m);
		break;
	case CM_REPLY: {
		struct cm_reply *r = (struct cm_reply *)m;
		if (m->size < sizeof(*r) - sizeof(r->hdr) ||
		    r->len > m->size - (sizeof(*r) - sizeof(r->hdr)))
			break;
		if (r->seq == 0)
			sess_write(s, r->text, r->len);
		else
			sess_req_done(s, r->seq, r->text, r->len);
		break;
	}
	case CM_REQ:
		request_for_me(s, (struct cm_req *)m);
		break;
	case CM_NICK_RESULT:
		nick_result(s, (struct cm_nick_result *)m);
		break;
	case CM_JOINED:
		joined(s, (struct cm_joined *)m);
		break;
	case CM_PARTED: {
		struct sess_chan *c = sess_find_chan(s, ((struct cm_chan_note *)m)->chan);
		if (c != NULL)
			sess_drop_chan(s, c);
		break;
	}
	case CM_MEMBER_MODE: {
		struct sess_chan *c = sess_find_chan(s, ((struct cm_chan_note *)m)->chan);
		if (c != NULL)
			c->flags = ((struct cm_chan_note *)m)->flags;
		break;
	}
	case CM_CHAN_SECRET: {
		struct sess_chan *c = sess_find_chan(s, ((struct cm_chan_note *)m)->chan);
		if (c != NULL)
			c->secret = ((struct cm_chan_note *)m)->secret;
		break;
	}
	case CM_DOWN:
		channel_down(s, (struct cm_down *)m);
		break;
	case CM_LIST_REPLY:
		list_reply(s, (struct cm_records *)m);
		break;
	case CM_LOOKUP_REPLY:
		lookup_reply(s, (struct cm_records *)m);
		break;
	default:
		break;
	}
}
