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

/* A member on another host (chanlink.c): known from the channel's stream. */
struct rmember {
	struct irc_who who;
	char origin[64]; /* its host's server name */
};

/* A line of a local member on its way to the stream: delivered here once stored. */
struct cl_line {
	struct cm_req *q; /* kept: its request is answered once stored */
	uint64_t tag;
	bool inflight;
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

	/* With --cluster (chanlink.c). The channel's copy on this host is open (its cluster
	 * actor has a consumer for it) while it has local members. */
	bool cl_open;
	uint64_t cl_seq;       /* the last stream sequence handled: older ones are copies */
	struct rmember **rmem; /* members on other hosts */
	uint32_t nr, capr;
	struct cl_line *cl_lines; /* local members' lines waiting for the stream, in order */
	uint32_t ncl, capcl;
	uint64_t cl_next_tag;
	const struct chat_env_ops *cl_ops; /* frees the kept lines if the channel is freed */
	/* A copy that opens hears the other hosts' rosters before it answers a JOIN, so that a
	 * joiner's NAMES lists every member: until CM_CL_READY the JOINs wait here, kept. */
	bool cl_ready;
	bool cl_announced;        /* its first JOIN went out marked "first" */
	struct cm_req **cl_joins; /* held */
	uint32_t cl_njoins, cl_capjoins;
};

/* A numeric for the requester, gathered in c->out. */
#define NUMERIC(c, q, num, fmt, ...)                                                               \
	irc_buf_linef(&(c)->out, ":%s " num " %s " fmt, (c)->srv->name,                            \
	              (q)->who.nick[0] ? (q)->who.nick : "*", __VA_ARGS__)

#define WHO_FMT "%s!%s@%s"
#define WHO_ARGS(w) (w)->nick, (w)->user, (w)->host

/* channel.c */
/* Answers a JOIN that waited for the rosters (chanlink.c), or refuses it (`refuse`: its
 * session quit meanwhile); then frees it. */
void chan_join_held(struct chan *c, struct chat_env *e, struct cm_req *q, bool refuse);
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

/* channel.c, for chanlink.c */
void chan_broadcast_text(struct chan *c, struct chat_env *e, actor_ref_t exclude, uint64_t dedup,
                         const char *text, size_t len);
/* JOIN as each member's client wants it: plain, or extended-join's. */
void chan_broadcast_join(struct chan *c, struct chat_env *e, actor_ref_t exclude, const char *plain,
                         size_t plen, const char *ext, size_t elen);
/* A PRIVMSG or NOTICE that may be delivered: to the members, and the speaker's echo in c->out. */
void chan_msg_deliver(struct chan *c, struct chat_env *e, const struct cm_req *q);
/* One name in a NAMES reply being built (see names_reply). */
void chan_names_add(struct chan *c, const struct cm_req *q, const char *head, size_t hl, char *line,
                    size_t *len, const char *pfx, const struct irc_who *who);

/* chanlink.c: a channel's side of the cluster (cluster.c). Each does nothing without it. */
/* A local member joined (after its JOIN went to the members here). */
void chan_cl_joined(struct chan *c, struct chat_env *e, const struct irc_who *who,
                    const char *plain, size_t plen, const char *ext, size_t elen);
/* A local member left or changed nick: kind 'P' (PART), 'K' (KICK: who is the kicked one),
 * 'Q' (QUIT), 'N' (NICK: arg the new nick); `line` what the members here saw. */
void chan_cl_left(struct chan *c, struct chat_env *e, char kind, const struct irc_who *who,
                  uint64_t dedup, const char *arg, const char *line, size_t len);
/* A line to publish before it is delivered: true when it was taken (kept, answered later). */
bool chan_cl_msg(struct chan *c, struct chat_env *e, struct cm_req *q);
/* CM_CL_ACKED, CM_CL_EVENT, CM_CL_HOST_DOWN. */
void chan_cl_handle(struct chan *c, struct chat_env *e, actor_msg_t *m);
/* The remote members' names, for NAMES. */
void chan_cl_names(struct chan *c, const struct cm_req *q, const char *head, size_t hl, char *line,
                   size_t *len);
/* Whether the channel may be forgotten: no local member and no line on its way. Closes it
 * toward the cluster when so. */
bool chan_cl_idle(struct chan *c, struct chat_env *e);
/* With --cluster, a JOIN that must wait for the rosters of a copy opening: true if it was
 * kept to wait (opening the copy if need be). */
bool chan_cl_hold_join(struct chan *c, struct chat_env *e, struct cm_req *q);
/* A session that quits or parts while its JOIN waits: the JOIN is dropped. */
void chan_cl_drop_join(struct chan *c, struct chat_env *e, actor_ref_t from);
void chan_cl_free(struct chan *c);

/* chanmode.c */
void chan_mode(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m);

#endif /* CHAT_CHANNEL_H */
