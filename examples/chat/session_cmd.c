/* session_cmd.c: the commands a client sends (the replies and requests that other actors send
 * to its session are in session_reply.c). A command is answered here when the session knows enough
 * (PING, AWAY, user MODE, MOTD, the numerics for bad input); otherwise it becomes a request to the
 * channel or registry that decides, which answers the client's session directly.
 *
 * Channel requests go straight to the channel's actor when we are a member (we learnt its
 * reference when we joined) and through the name's registry otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

void sess_send(struct sess *s, actor_ref_t to, void *msg)
{
	chat_send(s->e, to, msg);
}

struct cm_req *sess_req(struct sess *s, uint16_t op, const char *target, unsigned nargs,
                        const char *const *args)
{
	return chat_req_new(s->e, op, &s->who, target, nargs, args);
}

struct sess_chan *sess_find_chan(struct sess *s, const char *name)
{
	for (unsigned i = 0; i < s->nchans; i++)
		if (irc_casecmp(s->chans[i].name, name) == 0)
			return &s->chans[i];
	return NULL;
}

/* The registry keeps the channels we are in, so that WHO <mask> can show an invisible user
 * to those who share a channel with it. */
static void channels_changed(struct sess *s)
{
	char names[IRC_CHANLIMIT * (IRC_CHANLEN + 1) + 1];
	size_t n = 0;
	names[0] = '\0';
	for (unsigned i = 0; i < s->nchans; i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "",
		                      s->chans[i].name);
	const char *arg = names;
	struct cm_req *q = sess_req(s, OP_USER_UPDATE, s->who.nick, 1, &arg);
	if (q != NULL)
		q->tag = 1;
	sess_send(s, chat_registry_for(s->srv, s->who.nick), q);
}

void sess_add_chan(struct sess *s, const char *name, actor_ref_t ref, bool secret, uint8_t flags)
{
	if (s->nchans == s->capchans) {
		unsigned cap = s->capchans ? s->capchans * 2 : 4;
		struct sess_chan *c = realloc(s->chans, cap * sizeof(*c));
		if (c == NULL)
			return;
		s->chans = c;
		s->capchans = cap;
	}
	struct sess_chan *c = &s->chans[s->nchans++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ref = ref;
	/* Told if the channel's actor fails (channel_down, session_reply.c); cancelled as we
	 * leave it. */
	s->e->ops->monitor(s->e, ref, true);
	c->secret = secret;
	c->flags = flags;
	channels_changed(s);
}

void sess_drop_chan(struct sess *s, struct sess_chan *c)
{
	s->e->ops->monitor(s->e, c->ref, false);
	*c = s->chans[--s->nchans];
	if (s->nchans == 0) {
		free(s->chans);
		s->chans = NULL;
		s->capchans = 0;
	}
	channels_changed(s);
}

/* Sends a channel request, numbered: directly when we are in the channel, else through its
 * registry. */
static void to_channel(struct sess *s, struct cm_req *q)
{
	if (q == NULL)
		return;
	struct sess_chan *c = sess_find_chan(s, q->target);
	if (c != NULL)
		sess_send_req(s, c->ref, q);
	else
		sess_send_req(s, chat_registry_for(s->srv, q->target), q);
}

/* Every channel we are in hears the same request (QUIT, NICK, AWAY). */
void sess_to_all_channels(struct sess *s, uint16_t op, uint64_t dedup, const char *arg)
{
	for (unsigned i = 0; i < s->nchans; i++) {
		struct cm_req *q = sess_req(s, op, s->chans[i].name, arg ? 1 : 0, &arg);
		if (q != NULL)
			q->dedup = dedup;
		sess_send(s, s->chans[i].ref, q);
	}
}

#define NEED_PARAMS(s, m, n)                                                                       \
	do {                                                                                       \
		if ((m)->nparams < (n) || (m)->params[0][0] == '\0') {                             \
			sess_numeric(s, "461", "%s :Not enough parameters", (m)->cmd);             \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* ---------------------------------------------------------------------------------------------
 * Registration
 */

static void cmd_pass(struct sess *s, struct irc_msg *m)
{
	if (s->flags & F_REGISTERED) {
		sess_numeric(s, "462", ":You may not reregister");
		return;
	}
	NEED_PARAMS(s, m, 1);
	free(s->pass);
	s->pass = strndup(m->params[0], 128);
}

static void cmd_nick(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "431", ":No nickname given");
		return;
	}
	const char *nick = m->params[0];
	if (!irc_valid_nick(nick, IRC_NICKLEN)) {
		sess_numeric(s, "432", "%s :Erroneous nickname", nick);
		return;
	}
	if (strcmp(nick, s->who.nick) == 0)
		return;
	struct cm_req *q = sess_req(s, OP_NICK_CLAIM, nick, 0, NULL);
	if (q == NULL)
		return;
	q->tag = (s->flags & F_REGISTERED) != 0;
	if (sess_ask(s, chat_registry_for(s->srv, nick), q, WAIT_NICK) < 0) {
		sess_numeric(s, "437", "%s :Nick/channel is temporarily unavailable", nick);
		return;
	}
	snprintf(s->claim, sizeof(s->claim), "%s", nick);
	s->wait = WAIT_NICK;
}

static void cmd_user(struct sess *s, struct irc_msg *m)
{
	if (s->flags & F_REGISTERED) {
		sess_numeric(s, "462", ":You may not reregister");
		return;
	}
	if (m->nparams < 4 || m->params[0][0] == '\0' || m->params[3][0] == '\0') {
		sess_numeric(s, "461", "USER :Not enough parameters");
		return;
	}
	/* No ident lookup: the user name is the client's word, marked with '~'. Keep only bytes
	 * that cannot confuse a nick!user@host prefix. */
	char user[IRC_USERLEN + 1] = "~";
	size_t n = 1;
	for (const char *p = m->params[0]; *p != '\0' && n < IRC_USERLEN; p++)
		if ((unsigned char)*p > ' ' && *p != '@' && *p != '!' && *p != ':' && *p != ',')
			user[n++] = *p;
	user[n] = '\0';
	if (n == 1)
		snprintf(user, sizeof(user), "~user");
	snprintf(s->who.user, sizeof(s->who.user), "%s", user);
	snprintf(s->who.real, sizeof(s->who.real), "%s", m->params[3]);
	s->flags |= F_USER;
	sess_try_register(s);
}

/* The capabilities in `bits`, space-separated. */
static void cap_list(unsigned bits, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (unsigned i = 0; chat_cap_names[i] != NULL && n < cap; i++)
		if (bits & (1u << i))
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "",
			                      chat_cap_names[i]);
}

/* CAP REQ: all the changes asked for, or none (IRCv3 capability negotiation). */
static void cap_req(struct sess *s, const char *list)
{
	const char *nick = sess_target_nick(s);
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	unsigned on = 0, off = 0;
	bool ok = true;
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t != NULL;
	     t = strtok_r(NULL, " ", &save)) {
		bool remove = t[0] == '-';
		unsigned bit = chat_cap_bit(t + remove);
		if (bit == 0)
			ok = false;
		else if (remove)
			off |= bit;
		else
			on |= bit;
	}
	if (!ok || (on & off) != 0) {
		sess_printf(s, ":%s CAP %s NAK :%s", s->srv->name, nick, list);
		return;
	}
	unsigned caps = (s->who.caps | on) & ~off;
	sess_printf(s, ":%s CAP %s ACK :%s", s->srv->name, nick, list);
	if (caps == s->who.caps)
		return;
	s->who.caps = (uint16_t)caps;
	if (s->flags & F_REGISTERED)
		sess_who_changed(s, WHO_SILENT); /* NAMES and WHO answer by what it enabled */
}

static void cmd_cap(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	const char *sub = m->params[0];
	const char *nick = sess_target_nick(s);
	char caps[256];
	if (strcasecmp(sub, "LS") == 0) {
		if (!(s->flags & F_REGISTERED))
			s->flags |= F_CAP; /* registration waits for CAP END */
		if (m->nparams > 1 && atoi(m->params[1]) >= 302)
			s->who.caps |= CAP_CAP_NOTIFY; /* implied by version 302 */
		cap_list(~0u, caps, sizeof(caps));
		sess_printf(s, ":%s CAP %s LS :%s", s->srv->name, nick, caps);
	} else if (strcasecmp(sub, "LIST") == 0) {
		cap_list(s->who.caps, caps, sizeof(caps));
		sess_printf(s, ":%s CAP %s LIST :%s", s->srv->name, nick, caps);
	} else if (strcasecmp(sub, "REQ") == 0) {
		if (!(s->flags & F_REGISTERED))
			s->flags |= F_CAP;
		cap_req(s, m->nparams > 1 ? m->params[1] : "");
	} else if (strcasecmp(sub, "END") == 0) {
		s->flags &= ~F_CAP;
		sess_try_register(s);
	} else {
		sess_numeric(s, "410", "%s :Invalid CAP command", sub);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Connection
 */

static void cmd_ping(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "409", ":No origin specified");
		return;
	}
	sess_printf(s, ":%s PONG %s :%s", s->srv->name, s->srv->name, m->params[0]);
}

static void cmd_pong(struct sess *s, struct irc_msg *m)
{
	(void)m;
	s->flags &= ~F_PING;
}

static void cmd_quit(struct sess *s, struct irc_msg *m)
{
	char reason[IRC_KICKLEN + 8];
	if (m->nparams > 0 && m->params[0][0] != '\0')
		snprintf(reason, sizeof(reason), "Quit: %s", m->params[0]);
	else
		snprintf(reason, sizeof(reason), "Client Quit");
	sess_quit(s, reason, true);
}

static void cmd_motd(struct sess *s, struct irc_msg *m)
{
	(void)m;
	sess_motd(s);
}

static void cmd_lusers(struct sess *s, struct irc_msg *m)
{
	(void)m;
	sess_lusers(s);
}

static void cmd_version(struct sess *s, struct irc_msg *m)
{
	(void)m;
	sess_numeric(s, "351", "%s. %s :libactor IRC example", s->srv->version, s->srv->name);
}

static void cmd_time(struct sess *s, struct irc_msg *m)
{
	(void)m;
	char buf[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(buf, sizeof(buf), "%A %B %d %Y -- %H:%M:%S UTC", &tm);
	sess_numeric(s, "391", "%s :%s", s->srv->name, buf);
}

static void cmd_away(struct sess *s, struct irc_msg *m)
{
	bool away = m->nparams > 0 && m->params[0][0] != '\0';
	free(s->away);
	s->away = away ? strndup(m->params[0], IRC_AWAYLEN) : NULL;
	if (away)
		sess_numeric(s, "306", ":You have been marked as being away");
	else
		sess_numeric(s, "305", ":You are no longer marked as being away");
	if (!s->who.away && !away)
		return;
	s->who.away = away;
	sess_who_changed(s, WHO_AWAY);
}

/* ---------------------------------------------------------------------------------------------
 * Lookups: ISON, USERHOST, and MODE on another nick (401 or 502?)
 */

/* Asks each registry shard about the nicks it owns. */
static void lookup(struct sess *s, uint64_t tag, const char *const *nicks, unsigned n)
{
	unsigned asked = 0;
	for (unsigned w = 0; w < s->srv->workers; w++) {
		const char *mine[16];
		unsigned k = 0;
		for (unsigned i = 0; i < n && k < 16; i++)
			if (irc_hash(nicks[i]) % s->srv->workers == w)
				mine[k++] = nicks[i];
		if (k == 0)
			continue;
		struct cm_req *q = sess_req(s, OP_LOOKUP, "", k, mine);
		if (q == NULL)
			continue;
		q->tag = tag;
		if (sess_ask(s, chat_registry_at(s->srv, w), q, WAIT_LOOKUP) == 0)
			asked++;
	}
	irc_buf_reset(&s->acc);
	s->lookup_tag = tag;
	s->pending = asked;
	s->wait = asked > 0 ? WAIT_LOOKUP : WAIT_NONE;
	if (asked == 0 && tag == LOOKUP_ISON)
		sess_numeric(s, "303", ":");
	else if (asked == 0 && tag == LOOKUP_USERHOST)
		sess_numeric(s, "302", ":");
}

static void cmd_ison(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	const char *nicks[16];
	unsigned n = 0;
	char buf[512];
	size_t off = 0;
	for (int i = 0; i < m->nparams; i++) { /* "ISON a b" and "ISON :a b" */
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s ", m->params[i]);
		if (off >= sizeof(buf))
			off = sizeof(buf) - 1;
	}
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t != NULL && n < 16;
	     t = strtok_r(NULL, " ", &save))
		nicks[n++] = t;
	lookup(s, LOOKUP_ISON, nicks, n);
}

static void cmd_userhost(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	const char *nicks[5];
	unsigned n = 0;
	for (int i = 0; i < m->nparams && n < 5; i++)
		nicks[n++] = m->params[i];
	lookup(s, LOOKUP_USERHOST, nicks, n);
}

/* ---------------------------------------------------------------------------------------------
 * Modes
 */

static void user_mode(struct sess *s, struct irc_msg *m)
{
	const char *target = m->params[0];
	if (irc_casecmp(target, s->who.nick) != 0) {
		free(s->lookup_arg);
		s->lookup_arg = strdup(target);
		lookup(s, LOOKUP_MODE, &target, 1);
		return;
	}
	if (m->nparams < 2) {
		sess_numeric(s, "221", "+%s%s%s", s->who.invisible ? "i" : "",
		             s->who.oper ? "o" : "", (s->flags & F_WALLOPS) ? "w" : "");
		return;
	}
	char changes[32];
	size_t n = 0;
	char sign = 0;
	bool add = true, unknown = false;
	for (const char *p = m->params[1]; *p != '\0' && n + 3 < sizeof(changes); p++) {
		bool now, was;
		if (*p == '+' || *p == '-') {
			add = *p == '+';
			continue;
		}
		if (*p == 'i') {
			was = s->who.invisible;
			s->who.invisible = add;
			now = add;
			atomic_fetch_add_explicit(&s->srv->invisible,
			                          (unsigned)((int)now - (int)was),
			                          memory_order_relaxed);
		} else if (*p == 'w') {
			was = (s->flags & F_WALLOPS) != 0;
			s->flags = add ? s->flags | F_WALLOPS : s->flags & ~F_WALLOPS;
			now = add;
		} else if (*p == 'o') {
			if (add || !s->who.oper)
				continue; /* only OPER makes an operator */
			was = true;
			now = false;
			s->who.oper = 0;
			atomic_fetch_sub_explicit(&s->srv->opers_online, 1, memory_order_relaxed);
		} else {
			unknown = true;
			continue;
		}
		if (now == was)
			continue;
		if (sign != (add ? '+' : '-'))
			changes[n++] = sign = add ? '+' : '-';
		changes[n++] = *p;
	}
	changes[n] = '\0';
	if (unknown)
		sess_numeric(s, "501", ":Unknown MODE flag");
	if (n > 0) {
		sess_printf(s, ":%s!%s@%s MODE %s :%s", s->who.nick, s->who.user, s->who.host,
		            s->who.nick, changes);
		sess_who_changed(s, WHO_SILENT); /* +i: what NAMES shows of us; -o: WHO */
	}
}

static void cmd_mode(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	const char *target = m->params[0];
	if (!irc_is_channel(target)) {
		user_mode(s, m);
		return;
	}
	if (!irc_valid_channel(target, IRC_CHANLEN)) {
		sess_numeric(s, "403", "%s :No such channel", target);
		return;
	}
	to_channel(s, sess_req(s, OP_MODE, target, (unsigned)m->nparams - 1, m->params + 1));
}

/* ---------------------------------------------------------------------------------------------
 * Channels
 */

void sess_join_next(struct sess *s)
{
	char *name;
	s->wait = WAIT_NONE;
	while ((name = irc_list_next(&s->join_cur)) != NULL) {
		char *key = irc_list_next(&s->key_cur);
		if (!irc_valid_channel(name, IRC_CHANLEN)) {
			sess_numeric(s, "403", "%s :No such channel", name);
			continue;
		}
		if (sess_find_chan(s, name) != NULL)
			continue;
		if (s->nchans >= IRC_CHANLIMIT) {
			sess_numeric(s, "405", "%s :You have joined too many channels", name);
			continue;
		}
		const char *args[] = {key != NULL ? key : "", s->away != NULL ? s->away : ""};
		struct cm_req *q = sess_req(s, OP_JOIN, name, s->away != NULL ? 2 : 1, args);
		if (q == NULL)
			continue;
		if (sess_ask(s, chat_registry_for(s->srv, name), q, WAIT_JOIN) < 0) {
			sess_numeric(s, "437", "%s :Nick/channel is temporarily unavailable", name);
			continue;
		}
		snprintf(s->joining, sizeof(s->joining), "%s", name);
		s->wait = WAIT_JOIN;
		return;
	}
	free(s->join_list);
	free(s->join_keys);
	s->join_list = s->join_keys = s->join_cur = s->key_cur = NULL;
}

static void part_all(struct sess *s)
{
	while (s->nchans > 0) {
		struct sess_chan *c = &s->chans[s->nchans - 1];
		sess_send_req(s, c->ref, sess_req(s, OP_PART, c->name, 0, NULL));
		sess_drop_chan(s, c);
	}
}

static void cmd_join(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	if (strcmp(m->params[0], "0") == 0) {
		part_all(s);
		return;
	}
	free(s->join_list);
	free(s->join_keys);
	s->join_list = strdup(m->params[0]);
	s->join_keys = m->nparams > 1 ? strdup(m->params[1]) : NULL;
	s->join_cur = s->join_list;
	s->key_cur = s->join_keys;
	sess_join_next(s);
}

static void cmd_part(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	const char *reason = m->nparams > 1 ? m->params[1] : NULL;
	char *cur = (char *)m->params[0], *name;
	while ((name = irc_list_next(&cur)) != NULL) {
		if (!irc_valid_channel(name, IRC_CHANLEN)) {
			sess_numeric(s, "403", "%s :No such channel", name);
			continue;
		}
		struct cm_req *q = sess_req(s, OP_PART, name, reason ? 1 : 0, &reason);
		struct sess_chan *c = sess_find_chan(s, name);
		if (c != NULL) { /* we are out as of now: later requests go through the registry */
			sess_send_req(s, c->ref, q);
			sess_drop_chan(s, c);
		} else {
			to_channel(s, q);
		}
	}
}

/* A request about one channel with the parameters after its name: TOPIC, KICK, INVITE. */
static void chan_request(struct sess *s, uint16_t op, const char *chan, unsigned nargs,
                         const char *const *args)
{
	if (!irc_valid_channel(chan, IRC_CHANLEN)) {
		sess_numeric(s, "403", "%s :No such channel", chan);
		return;
	}
	to_channel(s, sess_req(s, op, chan, nargs, args));
}

static void cmd_topic(struct sess *s, struct irc_msg *m)
{
	NEED_PARAMS(s, m, 1);
	chan_request(s, OP_TOPIC, m->params[0], m->nparams > 1 ? 1 : 0, m->params + 1);
}

static void cmd_kick(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 2 || m->params[1][0] == '\0') {
		sess_numeric(s, "461", "KICK :Not enough parameters");
		return;
	}
	char *cur = (char *)m->params[0];
	const char *chan = irc_list_next(&cur);
	const char *args[] = {m->params[1], m->nparams > 2 ? m->params[2] : ""};
	chan_request(s, OP_KICK, chan != NULL ? chan : "", 2, args);
}

static void cmd_invite(struct sess *s, struct irc_msg *m)
{
	if (m->nparams == 0) { /* the invitations we hold */
		for (unsigned i = 0; i < s->ninvited; i++)
			sess_numeric(s, "336", "%s", s->invited[i]);
		sess_numeric(s, "337", ":End of /INVITE list");
		return;
	}
	if (m->nparams < 2 || m->params[0][0] == '\0') {
		sess_numeric(s, "461", "INVITE :Not enough parameters");
		return;
	}
	chan_request(s, OP_INVITE, m->params[1], 1, m->params);
}

/* NAMES of one channel is answered by the channel, 366 included; of several (or of every
 * channel we are in, without arguments), each gives its 353 lines and one 366 ends them, in
 * order behind the replies (sess_send_req). */
static void names_of(struct sess *s, const char *name, bool end)
{
	struct cm_req *q = sess_req(s, OP_NAMES, name, 0, NULL);
	if (q != NULL)
		q->tag = !end;
	to_channel(s, q);
}

static void cmd_names(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		for (unsigned i = 0; i < s->nchans; i++)
			names_of(s, s->chans[i].name, false);
		sess_numeric(s, "366", "* :End of /NAMES list");
		return;
	}
	bool several = strchr(m->params[0], ',') != NULL;
	char *cur = (char *)m->params[0], *name;
	char all[512];
	snprintf(all, sizeof(all), "%s", m->params[0]);
	while ((name = irc_list_next(&cur)) != NULL) {
		if (irc_valid_channel(name, IRC_CHANLEN))
			names_of(s, name, !several);
		else if (!several)
			sess_numeric(s, "366", "%s :End of /NAMES list", name);
	}
	if (several)
		sess_numeric(s, "366", "%s :End of /NAMES list", all);
}

static void cmd_list(struct sess *s, struct irc_msg *m)
{
	free(s->lookup_arg);
	s->lookup_arg = m->nparams > 0 && m->params[0][0] != '\0' ? strdup(m->params[0]) : NULL;
	sess_numeric(s, "321", "Channel :Users  Name");
	s->pending = 0;
	for (unsigned w = 0; w < s->srv->workers; w++)
		if (sess_ask(s, chat_registry_at(s->srv, w), sess_req(s, OP_LIST, "", 0, NULL),
		             WAIT_LIST) == 0)
			s->pending++;
	s->wait = s->pending > 0 ? WAIT_LIST : WAIT_NONE;
	if (s->pending == 0)
		sess_numeric(s, "323", ":End of /LIST");
}

/* ---------------------------------------------------------------------------------------------
 * Messages and queries about users
 */

/* The tags a message carries to message-tags clients: a msgid of our own, then the sender's
 * client-only tags ("+name[=value]", as received), if its client enabled message-tags. */
static void message_tags(struct sess *s, const struct irc_msg *m, char *out, size_t cap)
{
	size_t n =
	    (size_t)snprintf(out, cap, "msgid=%" PRIx64 "-%" PRIx64, s->self.id, ++s->msg_seq);
	if (!(s->who.caps & CAP_MESSAGE_TAGS) || m->tags == NULL)
		return;
	for (const char *p = m->tags; *p != '\0' && n < cap;) {
		size_t len = strcspn(p, ";");
		if (p[0] == '+' && len > 1 && n + len + 1 < cap) {
			out[n++] = ';';
			memcpy(out + n, p, len);
			n += len;
			out[n] = '\0';
		}
		p += len + (p[len] == ';');
	}
}

static void cmd_msg(struct sess *s, struct irc_msg *m)
{
	unsigned kind = strcmp(m->cmd, "NOTICE") == 0   ? MSG_NOTICE
	                : strcmp(m->cmd, "TAGMSG") == 0 ? MSG_TAGMSG
	                                                : MSG_PRIVMSG;
	bool quiet = kind != MSG_PRIVMSG; /* NOTICE and TAGMSG get no error replies */
	if (kind == MSG_TAGMSG && !(s->who.caps & CAP_MESSAGE_TAGS))
		return; /* TAGMSG is for clients that enabled message-tags */
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		if (!quiet)
			sess_numeric(s, "411", ":No recipient given (%s)", m->cmd);
		return;
	}
	if (kind != MSG_TAGMSG && (m->nparams < 2 || m->params[1][0] == '\0')) {
		if (!quiet)
			sess_numeric(s, "412", ":No text to send");
		return;
	}
	s->idle_ns = s->e->ops->now_ns(s->e);
	char *cur = (char *)m->params[0], *target;
	const char *text = kind == MSG_TAGMSG ? "" : m->params[1];
	char tags[IRC_TAGS_MAX + 64];
	for (unsigned n = 0; (target = irc_list_next(&cur)) != NULL; n++) {
		if (n >= IRC_MAXTARGETS) {
			if (!quiet)
				sess_numeric(s, "407", "%s :Too many recipients", target);
			continue;
		}
		char status[2] = ""; /* STATUSMSG: @#chan or +#chan */
		if ((target[0] == '@' || target[0] == '+') && irc_is_channel(target + 1)) {
			status[0] = target[0];
			target++;
		}
		bool chan = irc_is_channel(target);
		if (chan ? !irc_valid_channel(target, IRC_CHANLEN)
		         : !irc_valid_nick(target, IRC_NICKLEN)) {
			if (!quiet)
				sess_numeric(s, "401", "%s%s :No such nick/channel", status,
				             target);
			continue;
		}
		message_tags(s, m, tags, sizeof(tags));
		const char *args[] = {text, status, tags};
		struct cm_req *q = sess_req(s, chan ? OP_MSG : OP_MSG_NICK, target, 3, args);
		if (q == NULL)
			continue;
		q->tag = kind;
		if (chan) {
			to_channel(s, q);
			continue;
		}
		if (s->who.caps & CAP_ECHO_MESSAGE) {
			char line[512];
			size_t len =
			    kind == MSG_TAGMSG
			        ? irc_format_line(line, sizeof(line), ":%s!%s@%s TAGMSG %s",
			                          s->who.nick, s->who.user, s->who.host, target)
			        : irc_format_line(line, sizeof(line), ":%s!%s@%s %s %s :%s",
			                          s->who.nick, s->who.user, s->who.host, m->cmd,
			                          target, text);
			struct irc_buf b;
			chat_tagged_line(&b, (s->who.caps & CAP_MESSAGE_TAGS) ? tags : "", line,
			                 len);
			sess_write(s, b.data, b.len);
			irc_buf_free(&b);
		}
		sess_send_req(s, chat_registry_for(s->srv, target), q);
	}
}

/* WHO with a mask: every registry shard looks through its users. */
static void who_mask(struct sess *s, const char *mask, const char *whox)
{
	free(s->lookup_arg);
	s->lookup_arg = strdup(mask);
	snprintf(s->whox, sizeof(s->whox), "%s", whox);
	irc_buf_reset(&s->acc);
	s->lookup_tag = LOOKUP_WHO;
	s->pending = 0;
	char names[IRC_CHANLIMIT * (IRC_CHANLEN + 1) + 1]; /* ours: invisible users in them show */
	size_t n = 0;
	names[0] = '\0';
	for (unsigned i = 0; i < s->nchans; i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "",
		                      s->chans[i].name);
	const char *args[] = {mask, names};
	for (unsigned w = 0; w < s->srv->workers; w++) {
		struct cm_req *q = sess_req(s, OP_LOOKUP, "", 2, args);
		if (q == NULL)
			continue;
		q->tag = LOOKUP_WHO;
		if (sess_ask(s, chat_registry_at(s->srv, w), q, WAIT_LOOKUP) == 0)
			s->pending++;
	}
	s->wait = s->pending > 0 ? WAIT_LOOKUP : WAIT_NONE;
	if (s->pending == 0)
		sess_numeric(s, "315", "%s :End of /WHO list", mask);
}

static void cmd_who(struct sess *s, struct irc_msg *m)
{
	const char *mask = m->nparams > 0 && m->params[0][0] != '\0' ? m->params[0] : "*";
	const char *whox = m->nparams > 1 && chat_is_whox(m->params[1]) ? m->params[1] : "";
	if (strlen(whox) >= sizeof(s->whox))
		whox = "";
	if (irc_is_channel(mask) && irc_valid_channel(mask, IRC_CHANLEN))
		to_channel(s, sess_req(s, OP_WHO, mask, 1, &whox));
	else if (irc_valid_nick(mask, IRC_NICKLEN))
		sess_send_req(s, chat_registry_for(s->srv, mask),
		              sess_req(s, OP_WHO_NICK, mask, 1, &whox));
	else if (strlen(mask) <= IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 2)
		who_mask(s, mask, whox);
	else
		sess_numeric(s, "315", "%.*s :End of /WHO list", IRC_CHANLEN, mask);
}

static void cmd_whois(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "431", ":No nickname given");
		return;
	}
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", m->params[m->nparams > 1 ? 1 : 0]); /* [server] nick */
	char *cur = buf;
	const char *nick = irc_list_next(&cur);
	if (nick == NULL || !irc_valid_nick(nick, IRC_NICKLEN)) {
		sess_numeric(s, "401", "%s :No such nick/channel", nick ? nick : buf);
		sess_numeric(s, "318", "%s :End of /WHOIS list", nick ? nick : buf);
		return;
	}
	sess_send_req(s, chat_registry_for(s->srv, nick), sess_req(s, OP_WHOIS, nick, 0, NULL));
}

static void cmd_whowas(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "431", ":No nickname given");
		return;
	}
	sess_numeric(s, "406", "%s :There was no such nickname", m->params[0]);
	sess_numeric(s, "369", "%s :End of WHOWAS", m->params[0]);
}

/* Compares without stopping at the first difference, so that the time taken tells nothing of
 * how much of a password was right. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;
	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
	return diff == 0;
}

static void cmd_oper(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 2 || m->params[0][0] == '\0') {
		sess_numeric(s, "461", "OPER :Not enough parameters");
		return;
	}
	const struct chat_srv *srv = s->srv;
	if (srv->nopers == 0) {
		sess_numeric(s, "491", ":No O-lines for your host");
		return;
	}
	bool ok = false;
	for (size_t i = 0; i < srv->nopers; i++)
		if (strcmp(srv->opers[i].name, m->params[0]) == 0)
			ok = same_secret(srv->opers[i].password, m->params[1]);
	if (!ok) {
		sess_numeric(s, "464", ":Password incorrect");
		return;
	}
	sess_numeric(s, "381", ":You are now an IRC operator");
	if (s->who.oper)
		return;
	s->who.oper = 1;
	atomic_fetch_add_explicit(&s->srv->opers_online, 1, memory_order_relaxed);
	sess_printf(s, ":%s!%s@%s MODE %s :+o", s->who.nick, s->who.user, s->who.host, s->who.nick);
	sess_who_changed(s, WHO_SILENT);
}

static bool need_oper(struct sess *s)
{
	if (s->who.oper)
		return true;
	sess_numeric(s, "481", ":Permission Denied- You're not an IRC operator");
	return false;
}

static void cmd_kill(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "461", "KILL :Not enough parameters");
		return;
	}
	if (!need_oper(s))
		return;
	const char *nick = m->params[0];
	if (!irc_valid_nick(nick, IRC_NICKLEN)) {
		sess_numeric(s, "401", "%s :No such nick/channel", nick);
		return;
	}
	const char *reason = m->nparams > 1 && m->params[1][0] != '\0' ? m->params[1] : s->who.nick;
	sess_send_req(s, chat_registry_for(s->srv, nick), sess_req(s, OP_KILL, nick, 1, &reason));
}

/* RESETCHAN: the channel's actor fails on purpose, and the server does what it does for any
 * failed channel (README.md, "Failures"): every member is kicked with "Channel reset", and the
 * channel starts again, empty. For an operator facing a channel in a bad state; it counts
 * toward the restart limit of the channel's supervisor like any failure. */
static void cmd_resetchan(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "461", "RESETCHAN :Not enough parameters");
		return;
	}
	if (!need_oper(s))
		return;
	const char *name = m->params[0];
	if (!irc_valid_channel(name, IRC_CHANLEN)) {
		sess_numeric(s, "403", "%s :No such channel", name);
		return;
	}
	to_channel(s, sess_req(s, OP_RESET, name, 0, NULL));
}

static void cmd_wallops(struct sess *s, struct irc_msg *m)
{
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "461", "WALLOPS :Not enough parameters");
		return;
	}
	if (!need_oper(s))
		return;
	char text[512];
	size_t len = irc_format_line(text, sizeof(text), ":%s!%s@%s WALLOPS :%s", s->who.nick,
	                             s->who.user, s->who.host, m->params[0]);
	unsigned n = s->srv->workers;
	struct chat_line *line = chat_line_new(text, len, n);
	if (line == NULL)
		return;
	for (unsigned w = 0; w < n; w++) { /* each fan-out hands it to the sessions it has */
		struct cm_line *lm = chat_msg_new(s->e, sizeof(*lm), CM_WALLOPS);
		if (lm == NULL) {
			chat_line_unref(line);
			continue;
		}
		lm->line = line;
		lm->dedup = 0;
		chat_send(s->e, chat_fanout_at(s->srv, w),
		          lm); /* on failure chat_send releases it */
	}
}

/* SETNAME (IRCv3 setname): a new realname, for clients that enabled the capability. */
static void cmd_setname(struct sess *s, struct irc_msg *m)
{
	if (!(s->who.caps & CAP_SETNAME)) {
		sess_printf(s,
		            ":%s FAIL SETNAME CANNOT_CHANGE_REALNAME :Enable the setname "
		            "capability first",
		            s->srv->name);
		return;
	}
	if (m->nparams < 1 || m->params[0][0] == '\0') {
		sess_numeric(s, "461", "SETNAME :Not enough parameters");
		return;
	}
	if (strlen(m->params[0]) > IRC_REALLEN) {
		sess_printf(s, ":%s FAIL SETNAME INVALID_REALNAME :Realname is too long",
		            s->srv->name);
		return;
	}
	snprintf(s->who.real, sizeof(s->who.real), "%s", m->params[0]);
	sess_printf(s, ":%s!%s@%s SETNAME :%s", s->who.nick, s->who.user, s->who.host, s->who.real);
	sess_who_changed(s, WHO_SETNAME);
}

static void cmd_info(struct sess *s, struct irc_msg *m)
{
	(void)m;
	static const char *const info[] = {
	    "chat-server, an IRC server built on libactor,",
	    "a C actor runtime: one actor per connection and per channel,",
	    "registry shards and fan-outs per worker, no locks.",
	};
	sess_numeric(s, "371", ":%s version %s", s->srv->name, s->srv->version);
	for (size_t i = 0; i < sizeof(info) / sizeof(info[0]); i++)
		sess_numeric(s, "371", ":%s", info[i]);
	sess_numeric(s, "371", ":On-line since %s", s->srv->created);
	sess_numeric(s, "374", ":End of INFO list");
}

static void cmd_privileged(struct sess *s, struct irc_msg *m)
{
	(void)m;
	if (need_oper(s)) /* an operator may not do this here either */
		sess_numeric(s, "481", ":Permission Denied- not available on this server");
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 */

struct command {
	const char *name;
	void (*fn)(struct sess *s, struct irc_msg *m);
	bool before_registration; /* allowed before the welcome */
	const char *help;         /* HELP <name> */
};

static void cmd_help(struct sess *s, struct irc_msg *m);

static const struct command commands[] = {
    {"AWAY", cmd_away, false,
     "AWAY [:<message>]: mark yourself away with a message, or back without one"},
    {"CAP", cmd_cap, true, "CAP LS [302] | REQ :<caps> | LIST | END: negotiate IRCv3 capabilities"},
    {"DIE", cmd_privileged, false, "DIE: stop the server (not available here)"},
    {"HELP", cmd_help, false, "HELP [<subject>]: help on a command"},
    {"HELPOP", cmd_help, false, "HELPOP [<subject>]: the same as HELP"},
    {"INFO", cmd_info, false, "INFO: about this server"},
    {"INVITE", cmd_invite, false,
     "INVITE <nick> <channel>: invite someone to a channel; INVITE alone lists your invitations"},
    {"ISON", cmd_ison, false, "ISON <nick>...: which of these nicks are online"},
    {"JOIN", cmd_join, false,
     "JOIN <channel>[,<channel>...] [<key>[,<key>...]], or JOIN 0 to leave every channel"},
    {"KICK", cmd_kick, false,
     "KICK <channel> <nick>[,<nick>...] [:<reason>]: remove someone from a channel (channel "
     "operators)"},
    {"KILL", cmd_kill, false, "KILL <nick> [:<reason>]: disconnect a user (IRC operators)"},
    {"LIST", cmd_list, false,
     "LIST [<channel>[,<channel>...]]: channels with their user counts and topics"},
    {"LUSERS", cmd_lusers, false, "LUSERS: how many users, operators and channels there are"},
    {"MODE", cmd_mode, false,
     "MODE <channel> [<modes> [<arguments>]] or MODE <nick> [<modes>]: show or change modes"},
    {"MOTD", cmd_motd, false, "MOTD: the message of the day"},
    {"NAMES", cmd_names, false, "NAMES [<channel>[,<channel>...]]: who is in a channel"},
    {"NICK", cmd_nick, true, "NICK <nick>: choose or change your nick"},
    {"NOTICE", cmd_msg, false,
     "NOTICE <target>[,<target>...] :<text>: a message that is never answered automatically"},
    {"OPER", cmd_oper, false, "OPER <name> <password>: become an IRC operator"},
    {"PART", cmd_part, false, "PART <channel>[,<channel>...] [:<reason>]: leave channels"},
    {"PASS", cmd_pass, true, "PASS <password>: the server password, before NICK and USER"},
    {"PING", cmd_ping, true, "PING <token>: the server answers PONG <token>"},
    {"PONG", cmd_pong, true, "PONG <token>: the answer to the server's PING"},
    {"PRIVMSG", cmd_msg, false,
     "PRIVMSG <target>[,<target>...] :<text>: send a message to a channel or a nick"},
    {"QUIT", cmd_quit, true, "QUIT [:<reason>]: leave the server"},
    {"REHASH", cmd_privileged, false, "REHASH: reload the configuration (not available here)"},
    {"RESETCHAN", cmd_resetchan, false,
     "RESETCHAN <channel>: make a channel fail and start afresh, its members kicked (IRC "
     "operators)"},
    {"RESTART", cmd_privileged, false, "RESTART: restart the server (not available here)"},
    {"SETNAME", cmd_setname, false,
     "SETNAME :<real name>: change your real name (with the setname capability)"},
    {"TAGMSG", cmd_msg, false,
     "TAGMSG <target>: a message of tags only (with the message-tags capability)"},
    {"TIME", cmd_time, false, "TIME: the server's time"},
    {"TOPIC", cmd_topic, false, "TOPIC <channel> [:<topic>]: show or set a channel's topic"},
    {"USER", cmd_user, true, "USER <user> 0 * :<real name>: register, with NICK"},
    {"USERHOST", cmd_userhost, false, "USERHOST <nick>...: the user and host of up to five nicks"},
    {"VERSION", cmd_version, false, "VERSION: the server's version"},
    {"WALLOPS", cmd_wallops, false,
     "WALLOPS :<text>: a message to every user with mode +w (IRC operators)"},
    {"WHO", cmd_who, false,
     "WHO <channel>|<mask> [%<fields>[,<token>]]: users in a channel or matching a mask (WHOX "
     "fields)"},
    {"WHOIS", cmd_whois, false, "WHOIS <nick>: about a user"},
    {"WHOWAS", cmd_whowas, false, "WHOWAS <nick>: about a user who left (not kept here)"},
};

static int command_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct command *)elem)->name);
}

static const struct command *find_command(const char *name)
{
	return bsearch(name, commands, sizeof(commands) / sizeof(commands[0]), sizeof(commands[0]),
	               command_cmp);
}

/* HELP and HELPOP (Modern IRC): 704, 705..., 706; 524 for an unknown subject. */
static void cmd_help(struct sess *s, struct irc_msg *m)
{
	char subject[32];
	snprintf(subject, sizeof(subject), "%s",
	         m->nparams > 0 && m->params[0][0] ? m->params[0] : "*");
	for (char *p = subject; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	if (strcmp(subject, "*") == 0) {
		sess_numeric(s, "704", "* :Commands (HELP <command> for more):");
		char line[400];
		size_t n = 0;
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (n + strlen(commands[i].name) + 2 > 60) {
				sess_numeric(s, "705", "* :%.*s", (int)n, line);
				n = 0;
			}
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", n ? " " : "",
			                      commands[i].name);
		}
		if (n > 0)
			sess_numeric(s, "705", "* :%.*s", (int)n, line);
		sess_numeric(s, "706", "* :End of /HELP");
		return;
	}
	const struct command *c = find_command(subject);
	if (c == NULL) {
		sess_numeric(s, "524", "%s :No help available on this topic", subject);
		return;
	}
	sess_numeric(s, "704", "%s :%s", subject, c->help);
	sess_numeric(s, "706", "%s :End of /HELP", subject);
}

void sess_command(struct sess *s, struct irc_msg *m)
{
	const struct command *c = find_command(m->cmd);
	if (c != NULL && !c->before_registration && !(s->flags & F_REGISTERED)) {
		sess_numeric(s, "451", ":You have not registered");
		return;
	}
	if (c == NULL) {
		if (s->flags & F_REGISTERED)
			sess_numeric(s, "421", "%.32s :Unknown command", m->cmd);
		else
			sess_numeric(s, "451", ":You have not registered");
		return;
	}
	c->fn(s, m);
}
