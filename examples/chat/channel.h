/* channel.h: a channel's state, shared by channel.c (members, broadcasts, the requests) and
 * chanmode.c (MODE). Private to them.
 */
#ifndef CHAT_CHANNEL_H
#define CHAT_CHANNEL_H

#include "chat.h"
#include "hmap.h"

enum { C_INVITE = 1, C_MODERATED = 2, C_NOEXTERNAL = 4, C_SECRET = 8, C_TOPICLOCK = 16 };
#define MAX_INVITES 16 /* remembered invitations; the oldest is forgotten first */

struct member {
	actor_ref_t ref;
	uint32_t worker;
	uint32_t idx; /* in chan.mem */
	uint8_t flags;
	struct irc_who who;
};

struct ban {
	char *mask;
	char by[IRC_NICKLEN + 1];
	time_t when;
};

struct wlist {
	actor_ref_t *refs;
	uint32_t n, cap;
};

struct chan {
	struct chat_srv *srv;
	char name[IRC_CHANLEN + 1];
	time_t created;
	char *topic;
	char topic_by[IRC_NICKLEN + 1];
	time_t topic_at;
	unsigned modes;
	char key[IRC_KEYLEN + 1];
	unsigned limit;
	struct member **mem;
	uint32_t n, cap;
	struct hmap by_ref;  /* ref.id -> member */
	struct hmap by_nick; /* irc_hash(nick) -> member */
	struct ban bans[IRC_MAXBANS];
	unsigned nbans;
	char invites[MAX_INVITES][IRC_NICKLEN + 1];
	unsigned ninvites;
	struct wlist *wl; /* per worker: the members living there, rebuilt when stale */
	uint32_t ntagged; /* members whose clients enabled message-tags */
	bool wl_stale;
	uint64_t via_seen;     /* requests forwarded to us by the registry */
	uint64_t via_reported; /* via_seen when we last said we were empty */
	bool empty_reported;
	struct irc_buf out; /* replies being gathered for one requester */
	bool handed_off;    /* the request being handled is answered by someone else */
};

/* A numeric for the requester, gathered in c->out. */
#define NUMERIC(c, q, num, fmt, ...)                                                               \
	irc_buf_linef(&(c)->out, ":%s " num " %s " fmt, (c)->srv->name,                            \
	              (q)->who.nick[0] ? (q)->who.nick : "*", __VA_ARGS__)

#define WHO_FMT "%s!%s@%s"
#define WHO_ARGS(w) (w)->nick, (w)->user, (w)->host

/* channel.c */
struct member *chan_member_by_nick(struct chan *c, const char *nick);
/* Sends one line to every member but `exclude`: once per worker with members, to its fan-out. */
void chan_broadcast(struct chan *c, struct chat_env *e, actor_ref_t exclude, uint64_t dedup,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same for a line that the requester of q, a member, sees as well: the others through
 * the fan-outs, the requester in its reply, so that it comes in order with its other replies
 * (chat.h, "Replies in order"). */
void chan_broadcast_req(struct chan *c, struct chat_env *e, const struct cm_req *q, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
/* Tells the registry what LIST shows of the channel. */
void chan_send_info(struct chan *c, struct chat_env *e);

/* chanmode.c */
void chan_mode(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m);

#endif /* CHAT_CHANNEL_H */
