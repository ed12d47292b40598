/* chanlink.c: a channel's side of the cluster (--cluster; cluster.c talks to the broker). Each
 * host has its own copy of a channel while local users are in it; the copies meet in the
 * channel's subject of the replicated stream, through which every event passes:
 *
 *   J  a local member joined: its JOIN lines; `first` when this host's copy just opened, to
 *      which every other copy answers with its roster (R), so the newcomer learns who is there
 *   P, K, Q, N  a local member parted, was kicked, quit, changed nick: the line to show
 *   M  a local member's PRIVMSG or NOTICE
 *   R  a host's local members, as its copy knows them then
 *
 * A copy ignores its own host's events (it applied them already) and events it has handled
 * (their stream sequence is not above the last it saw: a redelivery). What it knows of the
 * members of other hosts is what their events said, in stream order, so every copy sees them
 * the same way.
 *
 * Lines. A local member's line is published first and delivered here (echo included) only
 * once the stream has stored it, so that a line anyone sees is one every live host will see.
 * A member has at most one line on its way per channel: the next waits for the ack, so a
 * retried publish cannot overtake its successor, and the stream holds each member's lines in
 * the order said, which is the order every host delivers them in. Other hosts' lines arrive in
 * stream order; their own members' lines are theirs to deliver.
 *
 * Event text: "<kind> <origin host> <dedup, hex> <nick> <user> <host> <arg>\n<line>[\n<line>]"
 * (arg: J 1 or 0 for first; N the new nick; else "-"); R: the header, then one member a line,
 * "<nick> <user> <host> <realname>".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

#define SPLIT_REASON "*.net *.split" /* what a dead host's users quit with */

static void publish(struct chan *c, struct chat_env *e, uint64_t tag, const char *data, size_t len)
{
	struct cm_cl_pub *p = chat_msg_new(e, sizeof(*p) + len, CM_CL_PUB);
	if (p == NULL)
		return;
	p->tag = tag;
	snprintf(p->name, sizeof(p->name), "%s", c->name);
	p->len = (uint32_t)len;
	memcpy(p->data, data, len);
	chat_send(e, c->srv->cluster, p);
}

static void event(struct chan *c, struct chat_env *e, char kind, const struct irc_who *who,
                  uint64_t dedup, const char *arg, const char *line, size_t len, const char *line2,
                  size_t len2)
{
	struct irc_buf b;
	irc_buf_init(&b);
	irc_buf_linef(&b, "%c %s %" PRIx64 " %s %s %s %s", kind, c->srv->name, dedup, who->nick,
	              who->user, who->host, arg);
	irc_buf_put(&b, line, len);
	if (line2 != NULL)
		irc_buf_put(&b, line2, len2);
	publish(c, e, 0, b.data, b.len);
	irc_buf_free(&b);
}

static void roster(struct chan *c, struct chat_env *e)
{
	struct irc_buf b;
	irc_buf_init(&b);
	irc_buf_linef(&b, "R %s 0 - - - -", c->srv->name);
	for (uint32_t i = 0; i < c->n; i++) {
		const struct irc_who *w = &c->mem[i]->who;
		irc_buf_linef(&b, "%s %s %s %s", w->nick, w->user, w->host, w->real);
	}
	publish(c, e, 0, b.data, b.len);
	irc_buf_free(&b);
}

/* Opens this host's copy: the cluster actor makes its consumer, asks every live host for its
 * roster, and says CM_CL_READY once they are in. */
static bool cl_open(struct chan *c, struct chat_env *e)
{
	struct cm_cl_chan *o = chat_msg_new(e, sizeof(*o), CM_CL_OPEN);
	if (o == NULL)
		return false;
	snprintf(o->name, sizeof(o->name), "%s", c->name);
	if (chat_send(e, c->srv->cluster, o) < 0)
		return false;
	c->cl_open = true;
	c->cl_ready = false;
	c->cl_announced = false;
	c->cl_ops = e->ops;
	return true;
}

bool chan_cl_hold_join(struct chan *c, struct chat_env *e, struct cm_req *q)
{
	if (!chat_clustered(c->srv) || (c->cl_open && c->cl_ready))
		return false;
	if (!c->cl_open && !cl_open(c, e))
		return false; /* answered at once, with what this host knows */
	if (c->cl_njoins == c->cl_capjoins) {
		uint32_t cap = c->cl_capjoins ? c->cl_capjoins * 2 : 4;
		struct cm_req **j = realloc(c->cl_joins, cap * sizeof(*j));
		if (j == NULL)
			return false;
		c->cl_joins = j;
		c->cl_capjoins = cap;
	}
	q->kept = e->ops->keep(e);
	c->cl_joins[c->cl_njoins++] = q;
	return true;
}

void chan_cl_drop_join(struct chan *c, struct chat_env *e, actor_ref_t from)
{
	for (uint32_t i = 0; i < c->cl_njoins; i++) {
		struct cm_req *q = c->cl_joins[i];
		if (!actor_ref_eq(q->from, from))
			continue;
		memmove(&c->cl_joins[i], &c->cl_joins[i + 1],
		        (c->cl_njoins - i - 1) * sizeof(c->cl_joins[0]));
		c->cl_njoins--;
		chan_join_held(c, e, q, true);
		return;
	}
}

/* The rosters are in: the JOINs held answer now, in the order they came. */
static void cl_ready(struct chan *c, struct chat_env *e)
{
	if (!c->cl_open || c->cl_ready)
		return;
	c->cl_ready = true;
	struct cm_req **joins = c->cl_joins;
	uint32_t n = c->cl_njoins;
	c->cl_joins = NULL;
	c->cl_njoins = c->cl_capjoins = 0;
	for (uint32_t i = 0; i < n; i++)
		chan_join_held(c, e, joins[i], false);
	free(joins);
}

void chan_cl_joined(struct chan *c, struct chat_env *e, const struct irc_who *who,
                    const char *plain, size_t plen, const char *ext, size_t elen)
{
	if (!chat_clustered(c->srv) || !c->cl_open)
		return;
	bool first = !c->cl_announced;
	c->cl_announced = true;
	event(c, e, 'J', who, 0, first ? "1" : "0", plain, plen, ext, elen);
}

void chan_cl_left(struct chan *c, struct chat_env *e, char kind, const struct irc_who *who,
                  uint64_t dedup, const char *arg, const char *line, size_t len)
{
	if (chat_clustered(c->srv) && c->cl_open)
		event(c, e, kind, who, dedup, arg, line, len, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Local members' lines
 */

static void publish_line(struct chan *c, struct chat_env *e, struct cl_line *l)
{
	char text[512];
	const struct cm_req *q = l->q;
	size_t len =
	    irc_format_line(text, sizeof(text), ":" WHO_FMT " %s %s :%s", WHO_ARGS(&q->who),
	                    chat_msg_cmd(q->tag), c->name, cm_req_arg(q, 0));
	struct irc_buf b;
	irc_buf_init(&b);
	irc_buf_linef(&b, "M %s 0 %s %s %s -", c->srv->name, q->who.nick, q->who.user, q->who.host);
	irc_buf_put(&b, text, len);
	l->inflight = true;
	publish(c, e, l->tag, b.data, b.len);
	irc_buf_free(&b);
}

static bool sender_busy(struct chan *c, actor_ref_t from)
{
	for (uint32_t i = 0; i < c->ncl; i++)
		if (c->cl_lines[i].inflight && actor_ref_eq(c->cl_lines[i].q->from, from))
			return true;
	return false;
}

bool chan_cl_msg(struct chan *c, struct chat_env *e, struct cm_req *q)
{
	if (!chat_clustered(c->srv) || !c->cl_open)
		return false;
	if (c->ncl == c->capcl) {
		uint32_t cap = c->capcl ? c->capcl * 2 : 8;
		struct cl_line *l = realloc(c->cl_lines, cap * sizeof(*l));
		if (l == NULL)
			return false; /* delivered here only */
		c->cl_lines = l;
		c->capcl = cap;
	}
	bool busy = sender_busy(c, q->from);
	q->kept = e->ops->keep(e);
	c->cl_ops = e->ops;
	struct cl_line *l = &c->cl_lines[c->ncl++];
	*l = (struct cl_line){.q = q, .tag = ++c->cl_next_tag};
	if (!busy)
		publish_line(c, e, l);
	return true;
}

/* The stream stored a line (or could not): deliver it here and answer its speaker, then send
 * that speaker's next line. */
static void line_acked(struct chan *c, struct chat_env *e, const struct cm_cl_acked *a)
{
	uint32_t i = 0;
	while (i < c->ncl && c->cl_lines[i].tag != a->tag)
		i++;
	if (i == c->ncl)
		return;
	struct cm_req *q = c->cl_lines[i].q;
	irc_buf_reset(&c->out);
	if (a->error == 0)
		chan_msg_deliver(c, e, q);
	else if (q->tag == MSG_PRIVMSG)
		NUMERIC(c, q, "404", "%s :Cannot send to channel (not stored: try again)", c->name);
	chat_reply(e, q, c->out.data, c->out.len);
	irc_buf_reset(&c->out);
	memmove(&c->cl_lines[i], &c->cl_lines[i + 1], (c->ncl - i - 1) * sizeof(c->cl_lines[0]));
	c->ncl--;
	for (uint32_t j = 0; j < c->ncl; j++) {
		if (actor_ref_eq(c->cl_lines[j].q->from, q->from)) {
			publish_line(c, e, &c->cl_lines[j]);
			break;
		}
	}
	e->ops->free(e, &q->hdr);
}

/* ---------------------------------------------------------------------------------------------
 * Other hosts' members
 */

static struct rmember *find_remote(struct chan *c, const char *nick)
{
	for (uint32_t i = 0; i < c->nr; i++)
		if (irc_casecmp(c->rmem[i]->who.nick, nick) == 0)
			return c->rmem[i];
	return NULL;
}

static struct rmember *add_remote(struct chan *c, const char *origin, const char *nick,
                                  const char *user, const char *host, const char *real)
{
	if (c->nr == c->capr) {
		uint32_t cap = c->capr ? c->capr * 2 : 8;
		struct rmember **r = realloc(c->rmem, cap * sizeof(*r));
		if (r == NULL)
			return NULL;
		c->rmem = r;
		c->capr = cap;
	}
	struct rmember *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	snprintf(m->origin, sizeof(m->origin), "%s", origin);
	snprintf(m->who.nick, sizeof(m->who.nick), "%s", nick);
	snprintf(m->who.user, sizeof(m->who.user), "%s", user);
	snprintf(m->who.host, sizeof(m->who.host), "%s", host);
	snprintf(m->who.real, sizeof(m->who.real), "%s", real);
	c->rmem[c->nr++] = m;
	return m;
}

static void del_remote(struct chan *c, struct rmember *m)
{
	for (uint32_t i = 0; i < c->nr; i++)
		if (c->rmem[i] == m) {
			c->rmem[i] = c->rmem[--c->nr];
			break;
		}
	free(m);
}

static void remote_join(struct chan *c, struct chat_env *e, const char *origin, const char *nick,
                        const char *user, const char *host, const char *real)
{
	if (find_remote(c, nick) != NULL || chan_member_by_nick(c, nick) != NULL)
		return;
	struct rmember *m = add_remote(c, origin, nick, user, host, real);
	if (m == NULL)
		return;
	char plain[512], ext[512];
	size_t plen = irc_format_line(plain, sizeof(plain), ":" WHO_FMT " JOIN %s",
	                              WHO_ARGS(&m->who), c->name);
	size_t elen = irc_format_line(ext, sizeof(ext), ":" WHO_FMT " JOIN %s * :%s",
	                              WHO_ARGS(&m->who), c->name, m->who.real);
	chan_broadcast_join(c, e, ACTOR_REF_NONE, plain, plen, ext, elen);
}

static void apply_roster(struct chan *c, struct chat_env *e, const char *origin, char *rest)
{
	for (char *save = NULL, *rec = strtok_r(rest, "\r\n", &save); rec != NULL;
	     rec = strtok_r(NULL, "\r\n", &save)) {
		char nick[IRC_NICKLEN + 1], user[IRC_USERLEN + 1], host[IRC_HOSTLEN + 1];
		int off = 0;
		if (sscanf(rec, "%30s %12s %63s %n", nick, user, host, &off) < 3)
			continue;
		remote_join(c, e, origin, nick, user, host, off > 0 ? rec + off : "");
	}
}

/* The text after the header: the first line (what members see), with its CR LF. */
static size_t first_line(const char *s, size_t len)
{
	const char *nl = memchr(s, '\n', len);
	return nl != NULL ? (size_t)(nl - s) + 1 : len;
}

static void remote_event(struct chan *c, struct chat_env *e, const struct cm_cl_event *ev)
{
	if (ev->hdr.size < sizeof(*ev) - sizeof(ev->hdr) ||
	    ev->len > ev->hdr.size - (sizeof(*ev) - sizeof(ev->hdr)) || ev->len > 16384)
		return;
	if (ev->seq <= c->cl_seq)
		return; /* seen: a redelivery */
	c->cl_seq = ev->seq;
	char *text = malloc(ev->len + 1);
	if (text == NULL)
		return;
	memcpy(text, ev->data, ev->len);
	text[ev->len] = '\0';
	char kind, origin[64], nick[IRC_NICKLEN + 1], user[IRC_USERLEN + 1], host[IRC_HOSTLEN + 1],
	    arg[IRC_NICKLEN + 1];
	uint64_t dedup;
	int off = 0;
	if (sscanf(text, "%c %63s %" SCNx64 " %30s %12s %63s %30s%n", &kind, origin, &dedup, nick,
	           user, host, arg, &off) < 7 ||
	    strcmp(origin, c->srv->name) == 0) {
		free(text);
		return;
	}
	char *body = text + off;
	body += strspn(body, "\r\n");
	size_t blen = strlen(body), l1 = first_line(body, blen);
	struct rmember *m = find_remote(c, nick);
	switch (kind) {
	case 'M':
		chan_broadcast_text(c, e, ACTOR_REF_NONE, 0, body, l1);
		break;
	case 'J': {
		const char *ext = body + l1;
		char real[IRC_REALLEN + 1] = "";
		const char *colon = strstr(ext, " * :");
		if (colon != NULL)
			snprintf(real, sizeof(real), "%.*s", (int)strcspn(colon + 4, "\r\n"),
			         colon + 4);
		if (m == NULL && chan_member_by_nick(c, nick) == NULL &&
		    (m = add_remote(c, origin, nick, user, host, real)) != NULL)
			chan_broadcast_join(c, e, ACTOR_REF_NONE, body, l1, ext, strlen(ext));
		if (strcmp(arg, "1") == 0 && c->n > 0)
			roster(c, e); /* a new host's copy: tell it who is here */
		break;
	}
	case 'P':
	case 'K':
	case 'Q':
		if (m == NULL)
			break;
		chan_broadcast_text(c, e, ACTOR_REF_NONE, kind == 'Q' ? dedup : 0, body, l1);
		del_remote(c, m);
		break;
	case 'N':
		if (m == NULL)
			break;
		chan_broadcast_text(c, e, ACTOR_REF_NONE, dedup, body, l1);
		snprintf(m->who.nick, sizeof(m->who.nick), "%s", arg);
		break;
	case 'R':
		apply_roster(c, e, origin, body);
		break;
	default:
		break;
	}
	free(text);
}

/* A host died: its members quit, as in a netsplit. One key per user and host, so a member
 * sharing several channels with it sees each QUIT once. */
static void host_down(struct chan *c, struct chat_env *e, const char *origin)
{
	for (uint32_t i = 0; i < c->nr;) {
		struct rmember *m = c->rmem[i];
		if (strcmp(m->origin, origin) != 0) {
			i++;
			continue;
		}
		uint64_t dedup = irc_hash(m->who.nick) * 0x9e3779b97f4a7c15ull ^ irc_hash(origin);
		char text[512];
		size_t len = irc_format_line(text, sizeof(text), ":" WHO_FMT " QUIT :%s",
		                             WHO_ARGS(&m->who), SPLIT_REASON);
		chan_broadcast_text(c, e, ACTOR_REF_NONE, dedup ? dedup : 1, text, len);
		del_remote(c, m);
	}
}

void chan_cl_handle(struct chan *c, struct chat_env *e, actor_msg_t *m)
{
	switch (m->type) {
	case CM_CL_ACKED:
		if (m->size >= sizeof(struct cm_cl_acked) - sizeof(actor_msg_t))
			line_acked(c, e, (struct cm_cl_acked *)m);
		break;
	case CM_CL_EVENT:
		if (c->cl_open)
			remote_event(c, e, (struct cm_cl_event *)m);
		break;
	case CM_CL_READY:
		cl_ready(c, e);
		break;
	case CM_CL_ROSTER:
		if (c->cl_open)
			roster(c, e); /* a new host's copy: tell it who is here */
		break;
	case CM_CL_HOST_DOWN: {
		struct cm_cl_chan *d = (struct cm_cl_chan *)m;
		if (m->size >= sizeof(*d) - sizeof(*m)) {
			d->name[sizeof(d->name) - 1] = '\0';
			host_down(c, e, d->name);
		}
		break;
	}
	default:
		break;
	}
}

void chan_cl_names(struct chan *c, const struct cm_req *q, const char *head, size_t hl, char *line,
                   size_t *len)
{
	for (uint32_t i = 0; i < c->nr; i++)
		chan_names_add(c, q, head, hl, line, len, "", &c->rmem[i]->who);
}

static void forget_remote(struct chan *c)
{
	for (uint32_t i = 0; i < c->nr; i++)
		free(c->rmem[i]);
	c->nr = 0;
}

bool chan_cl_idle(struct chan *c, struct chat_env *e)
{
	if (c->ncl > 0 || c->cl_njoins > 0 || (c->cl_open && !c->cl_ready))
		return false;
	if (c->cl_open && c->n == 0) {
		struct cm_cl_chan *o = chat_msg_new(e, sizeof(*o), CM_CL_CLOSE);
		if (o != NULL) {
			snprintf(o->name, sizeof(o->name), "%s", c->name);
			chat_send(e, c->srv->cluster, o);
		}
		c->cl_open = false; /* it hears no more of the others: it forgets them */
		forget_remote(c);
	}
	return true;
}

void chan_cl_free(struct chan *c)
{
	forget_remote(c);
	free(c->rmem);
	for (uint32_t i = 0; i < c->ncl; i++) {
		chat_msg_release(&c->cl_lines[i].q->hdr);
		c->cl_ops->free(NULL, &c->cl_lines[i].q->hdr);
	}
	free(c->cl_lines);
	for (uint32_t i = 0; i < c->cl_njoins; i++) {
		chat_msg_release(&c->cl_joins[i]->hdr);
		c->cl_ops->free(NULL, &c->cl_joins[i]->hdr);
	}
	free(c->cl_joins);
}
