/* chat.h: the chat server's parts and the messages between them.
 *
 * Four kinds of actor make the server (README.md has the picture):
 *   session   one per connection, on the worker that accepted it (session.c, session_cmd.c)
 *   channel   one per channel, placed by a hash of its name (channel.c)
 *   registry  one per worker; owns the nicks and channel names that hash to it (registry.c)
 *   fanout    one per worker; hands a channel's broadcast to the sessions living there
 *             (fanout.c)
 *
 * None of them calls the actor runtime directly. They see the world through struct chat_env:
 * sending, spawning a channel, the clock, timers and the running session's connection. The
 * server (server.c) implements it over libactor; the unit tests implement it as a synchronous
 * in-memory bus (tests/chat/bus.c). So every protocol rule is testable without sockets.
 */
#ifndef CHAT_CHAT_H
#define CHAT_CHAT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <actor.h>

#include "hmap.h"
#include "irc.h"

/* ---------------------------------------------------------------------------------------------
 * Configuration and shared counters
 */

/* Defaults, each a tunable with a command-line option in server.c. */
#define CHAT_SENDQ_DEFAULT                                                                         \
	(256u << 10)                    /* output cap per connection: the library's default        \
	                                   high-water mark */
#define CHAT_FLOOD_BURST_DEFAULT 20     /* lines a client may send at once... */
#define CHAT_FLOOD_RATE_DEFAULT 10      /* ...then per second; ngircd and hybrid are stricter */
#define CHAT_PING_INTERVAL_DEFAULT 120  /* seconds of silence before we PING */
#define CHAT_PING_TIMEOUT_DEFAULT 60    /* seconds to answer it */
#define CHAT_LINGER_MS 2000             /* after ERROR, how long we wait for the client to go */
#define CHAT_REQUEST_TIMEOUT_DEFAULT 30 /* seconds a session waits for another part's answer */
/* Input lines waiting to be handled (flood control, a reply awaited), counted with their CR LF:
 * above CHAT_INBUF_PAUSE reading pauses, above CHAT_INBUF_MAX the client is dropped. */
#define CHAT_INBUF_PAUSE (8u << 10)
#define CHAT_INBUF_MAX (64u << 10)
/* Messages that may wait in a session's mailbox (its capacity, --session-queue) before a send
 * to it is refused and it is dropped as a slow client (srv.c, "Slow clients"). A session
 * handles up to a batch (64) of them per turn, writing each to its connection, so one whose
 * client keeps up has a few batches waiting at most; the answers to its own requests are the
 * library's messages and do not count. A mailbox that full holds some 4096 messages of about
 * 64 bytes: 256 KiB, what the default sendq lets its output hold. */
#define CHAT_SESSION_QUEUE_DEFAULT 4096u
#define CHAT_SESSION_QUEUE_MAX (1u << 20)

#define CHAT_NAME_DEFAULT "irc.libactor.local" /* --name */

/* An IRC operator: OPER <name> <password> grants +o. */
#define CHAT_OPER_NAMELEN 64
#define CHAT_OPER_PASSLEN 128
struct chat_oper {
	char name[CHAT_OPER_NAMELEN + 1];
	char password[CHAT_OPER_PASSLEN + 1];
};

struct chat_srv {
	/* Set before the workers start, read-only afterwards. */
	char name[64];    /* the server name in prefixes and numerics */
	char network[32]; /* NETWORK= */
	char version[32]; /* the version in 002/004/351 */
	char created[64]; /* the start time in 003 */
	time_t started;
	const char *password;    /* NULL: no server password */
	struct chat_oper *opers; /* --oper NAME:PASSWORD and the configuration file; malloc'd */
	size_t nopers;
	char **motd; /* NULL: ERR_NOMOTD */
	size_t motd_lines;
	size_t max_line;      /* longest input line, CR LF included */
	size_t sendq;         /* output cap per connection, bytes */
	unsigned max_clients; /* connections beyond it get ERROR :Server full */
	double flood_burst;   /* token bucket size, lines */
	double flood_rate;    /* tokens per second; 0 turns flood control off */
	uint64_t ping_interval_ns, ping_timeout_ns;
	uint64_t request_timeout_ns; /* how long a session waits for an answer (chat_env.request) */
	/* A session's mailbox capacity, messages (CHAT_SESSION_QUEUE_DEFAULT). */
	uint32_t session_queue;
	unsigned workers;
	/* One per worker: the running registry shard and fan-out. Supervisors restart them as new
	 * actors (server.c), and each new one stores its reference here as it starts, while other
	 * workers read: the slots are atomic. Relaxed is enough both ways: a reference is a
	 * self-contained value (the send checks its generation) and publishes nothing else; a
	 * reader that sees the old one gets -ESRCH from the send, as after any stop. */
	_Atomic(actor_ref_t) *registry;
	_Atomic(actor_ref_t) *fanout;
	/* With --cluster: this host's cluster actor (cluster.c), the one part that talks to the
	 * broker; set before the workers start and never changed. ACTOR_REF_NONE on a single
	 * host, where no part sends it anything (chat_clustered). */
	actor_ref_t cluster;

	/* Counters for LUSERS and the connection cap: statistics, not synchronisation, so every
	 * access is relaxed. */
	atomic_uint conns;   /* connections open, registered or not */
	atomic_uint leaving; /* of those, the ones saying goodbye (not users, not unknown) */
	atomic_uint users;   /* registered clients */
	atomic_uint invisible;
	atomic_uint opers_online; /* users with +o */
	atomic_uint channels;
	atomic_uint max_users; /* the highest `users` seen */
};

/* The longest input line a session takes, without its line end: --max-line less its CR LF,
 * with room for message-tags' tags in front (the session checks each part), within
 * IRC_LINE_MAX. Whoever cuts the input into lines (server.c, the test bus) drops a longer line
 * and reports it in its place (sess_overlong). */
static inline size_t chat_line_max(const struct chat_srv *srv)
{
	size_t n = srv->max_line + IRC_TAGS_MAX;
	n = n < IRC_LINE_MIN ? IRC_LINE_MIN : n > IRC_LINE_MAX ? IRC_LINE_MAX : n;
	return n - 2;
}

/* Whether this server is one host of several (--cluster). */
static inline bool chat_clustered(const struct chat_srv *srv)
{
	return !actor_ref_eq(srv->cluster, ACTOR_REF_NONE);
}

/* Worker w's registry shard and fan-out, as they are now (see chat_srv.registry). */
static inline actor_ref_t chat_registry_at(struct chat_srv *srv, unsigned w)
{
	return atomic_load_explicit(&srv->registry[w], memory_order_relaxed);
}
static inline actor_ref_t chat_fanout_at(struct chat_srv *srv, unsigned w)
{
	return atomic_load_explicit(&srv->fanout[w], memory_order_relaxed);
}

/* The registry shard that owns a nick or channel name. */
static inline actor_ref_t chat_registry_for(struct chat_srv *srv, const char *name)
{
	return chat_registry_at(srv, irc_hash(name) % srv->workers);
}

/* ---------------------------------------------------------------------------------------------
 * The environment
 */

struct chat_env;
struct chat_slow;
struct sess;
struct chan;
struct registry;
struct fanout;

enum chat_close {
	CHAT_CLOSE_GRACEFUL, /* send what is queued, then FIN; reading goes on */
	CHAT_CLOSE_NOW,      /* close, still writing what is queued */
	CHAT_CLOSE_ABORT,    /* drop what is queued and reset */
};

struct chat_env_ops {
	actor_msg_t *(*alloc)(struct chat_env *e, size_t size, uint32_t type); /* NULL: ENOMEM */
	void (*free)(struct chat_env *e, actor_msg_t *m);
	/* 0: the message is on its way and no longer ours; <0: not sent, still ours. Sending the
	 * message being handled forwards it (it is then not freed after the handler). -EAGAIN:
	 * `to` is a session whose mailbox is full; a notice follows (chat_slow_writable). The
	 * parts send through chat_send and chat_forward, which apply the slow-client rule. */
	int (*send)(struct chat_env *e, actor_ref_t to, actor_msg_t *m);
	/* Asks for a channel actor named `name` (a registry's, for its own names): 0, and a
	 * CM_CHAN_STARTED comes back to the caller later, with the new actor or the failure; <0:
	 * nothing was asked, nothing comes. The channel runs under the shard's channel supervisor
	 * (server.c): restarted after an abnormal stop, as a new actor that says CM_CHAN_HELLO. */
	int (*spawn_channel)(struct chat_env *e, const char *name);
	/* Requests (actor.h, "Requests"). request: the running actor asks `to` with m, and exactly
	 * one ACTOR_MSG_REPLY (actor_reply_t) comes back to it later with `tag`: error 0 and the
	 * answer (chat_answer_of), or -ETIMEDOUT after timeout_ns (0: none), or -ESRCH (`to`
	 * stopped before answering, the request included) or -ENOMSG (it did not answer). 0: m is
	 * on its way; <0: nothing was sent, m is still ours (-ESRCH, -EAGAIN, -ENOMEM). */
	int (*request)(struct chat_env *e, actor_ref_t to, actor_msg_t *m, uint64_t timeout_ns,
	               uint64_t tag);
	/* Answers a request with the message `answer` (whole: its type, header and bytes), taken
	 * on 0. `kept` names it: 0 for the message being handled, else what keep returned.
	 * -EINVAL: that message is not a request (kept == CHAT_PLAIN, say) or was answered. */
	int (*reply)(struct chat_env *e, uint64_t kept, actor_msg_t *answer);
	/* Passes a request (named as for reply) on to `to` with m, which then answers it to the
	 * requester directly; a plain message (not a request) is sent as by `send`. 0: m is on
	 * its way; <0: m and the request are still ours. */
	int (*forward)(struct chat_env *e, uint64_t kept, actor_ref_t to, actor_msg_t *m);
	/* The message being handled is kept: the caller frees or sends it later. Returns the
	 * handle that names its request for reply and forward, or CHAT_PLAIN: not a request. */
	uint64_t (*keep)(struct chat_env *e);
	/* on: the running actor gets one CM_DOWN when `target` stops (at once, with
	 * ACTOR_REASON_NOPROC, if it has); off: cancels one such watch (a CM_DOWN already on its
	 * way may still come). */
	int (*monitor)(struct chat_env *e, actor_ref_t target, bool on);
	/* The running actor stops after this message, with `reason` (ACTOR_REASON_NORMAL, or a
	 * failure: a channel is then restarted by its supervisor, as after a crash). */
	void (*exit)(struct chat_env *e, int reason);
	uint64_t (*now_ns)(struct chat_env *e);
	int (*timer)(struct chat_env *e, uint64_t delay_ns, uint64_t tag); /* one-shot, to self */
	/* The running session's connection. */
	/* -ENOBUFS over sendq; -EPIPE once the connection is gone: it failed (sess_closed follows
	 * and says why) or we closed it. */
	int (*write)(struct chat_env *e, const void *data, size_t len);
	int (*set_sendq)(struct chat_env *e, size_t high, size_t low);
	int (*pause)(struct chat_env *e, bool pause);
	void (*close)(struct chat_env *e, enum chat_close how);
	void (*shutdown_done)(struct chat_env *e); /* a fan-out has no more sessions to stop */
};

struct chat_env {
	const struct chat_env_ops *ops;
	actor_ref_t self;
	unsigned worker;
	void *impl;
	struct chat_slow *slow; /* the running actor's slow clients (srv.c), kept in its state */
};

/* A kept message that is not a request (chat_env_ops.keep). */
#define CHAT_PLAIN UINT64_MAX

/* ---------------------------------------------------------------------------------------------
 * Messages
 */

enum chat_msg_type {
	CM_REPLY = 1,    /* -> session: struct cm_reply, the answer to a request */
	CM_LINE,         /* fan-out -> session: struct cm_line */
	CM_FANOUT,       /* channel -> fan-out: struct cm_fanout */
	CM_REQ,          /* a request, struct cm_req; its `op` says which */
	CM_NICK_RESULT,  /* registry -> session: struct cm_nick_result */
	CM_JOINED,       /* channel -> session: struct cm_joined, the end of a JOIN */
	CM_PARTED,       /* channel -> session: struct cm_chan_note, you were kicked */
	CM_CHAN_SECRET,  /* channel -> members: struct cm_chan_note, +s was set or unset */
	CM_CHAN_INFO,    /* channel -> registry: struct cm_chan_info, for LIST */
	CM_CHAN_EMPTY,   /* channel -> registry: struct cm_chan_empty */
	CM_CHAN_STOP,    /* registry -> channel: you are forgotten, stop */
	CM_LIST_REPLY,   /* registry -> session: struct cm_records */
	CM_LOOKUP_REPLY, /* registry -> session: struct cm_records */
	CM_SESS_HELLO,   /* session -> its fan-out: I live on your worker */
	CM_SESS_GONE,    /* session -> its fan-out: I stopped */
	CM_SHUTDOWN,     /* server -> fan-outs -> sessions: say goodbye and go */
	CM_WALLOPS,      /* session -> fan-outs -> sessions: struct cm_line, for users with +w */
	CM_MEMBER_MODE,  /* channel -> member: struct cm_chan_note, its prefix there changed */
	CM_CHAN_STARTED, /* environment -> registry: struct cm_chan_started, spawn_channel's answer
	                  */
	CM_CHAN_HELLO,   /* restarted channel -> registry: struct cm_chan_hello */
	CM_DOWN,         /* environment -> watcher: struct cm_down, a monitored actor stopped */
	CM_SLOW,         /* -> session: you refused my messages; quit as a slow client (srv.c) */
	/* Between a channel and its host's cluster actor (cluster.c), with --cluster only. */
	CM_CL_OPEN,  /* channel -> cluster: struct cm_cl_chan, my first local member joined */
	CM_CL_CLOSE, /* channel -> cluster: struct cm_cl_chan, my last local member left */
	CM_CL_PUB,   /* channel -> cluster: struct cm_cl_pub, publish this to my stream subject */
	CM_CL_ACKED, /* cluster -> channel: struct cm_cl_acked, a CM_CL_PUB with a tag is stored */
	CM_CL_EVENT, /* cluster -> channel: struct cm_cl_event, from the stream, another host's */
	CM_CL_HOST_DOWN, /* cluster -> channel: struct cm_cl_chan (name: the host), it died */
	/* cluster -> channel: struct cm_cl_chan, every live host's roster has come (or its time
	 * ran out): the JOINs held meanwhile may be answered, with NAMES that list them */
	CM_CL_READY,
	CM_CL_ROSTER, /* cluster -> channel: struct cm_cl_chan, a new host's copy opened */
};

/* What a cm_req asks. The first group goes to a registry; the second goes through a registry
 * to the session owning the target nick; the third to a channel, directly from its members
 * and through the name's registry from anyone else. */
enum chat_op {
	OP_NICK_CLAIM = 1, /* target: the nick */
	OP_NICK_RELEASE,   /* target: the nick */
	OP_USER_UPDATE,    /* what others see of the requester changed: who; tag 1: args[0] its
	                      channels */
	OP_LOOKUP,         /* args: nicks; tag: what for (USERHOST, ISON, MODE) */
	OP_LIST,           /* all the shard's channels */

	OP_TO_NICK_FIRST,
	OP_MSG_NICK = OP_TO_NICK_FIRST, /* PRIVMSG/NOTICE/TAGMSG to a nick: as OP_MSG */
	OP_WHOIS,
	OP_WHO_NICK,
	OP_INVITE_DELIVER, /* from a channel: args[0] the channel */
	OP_KILL,           /* from an operator: args[0] the reason */

	OP_TO_CHAN_FIRST,
	OP_JOIN = OP_TO_CHAN_FIRST, /* args[0]: the key; args[1]: the away text, if away */
	OP_PART,                    /* args[0]: the reason, if any */
	OP_MSG, /* PRIVMSG, NOTICE, TAGMSG (tag MSG_*): args[0] text, args[1] a STATUSMSG prefix (@
	         * or +), args[2] the tags for message-tags clients (msgid, the client's + tags) */
	OP_TOPIC, /* args[0], if any: the new topic */
	OP_NAMES, /* tag 1: the 353 lines only; the session ends a NAMES of several channels */
	OP_WHO,
	OP_MODE,   /* args: the mode string and its parameters */
	OP_KICK,   /* args[0]: nicks, args[1]: reason */
	OP_INVITE, /* args[0]: the invited nick */
	OP_QUIT,   /* args[0]: the reason; dedup */
	OP_NICK,   /* args[0]: the new nick; dedup */
	OP_AWAY,   /* the requester's who changed; tag: WHO_* to tell members; args[0] the away text
	            */
	OP_INVITE_CANCEL, /* from a registry: args[0], invited, has no session after all */
	OP_RESET,         /* RESETCHAN from an operator: the channel fails on purpose */
	OP_NICK_CONFIRM, /* cluster -> registry: the claim of target by `from` holds cluster-wide */
};

/* cm_req.via: 1, forwarded by a registry; CHAT_VIA_CLUSTER, sent by the cluster actor for
 * another host (a registry does not send it back to the cluster: it answers from what it
 * knows). */
#define CHAT_VIA_CLUSTER 2

/* The reason a channel reset by RESETCHAN stops with: a failure, as a crash's would be. */
#define CHAT_REASON_RESET 86

/* cm_req.tag of OP_MSG and OP_MSG_NICK. */
enum { MSG_PRIVMSG = 0, MSG_NOTICE = 1, MSG_TAGMSG = 2 };
static inline const char *chat_msg_cmd(uint64_t tag)
{
	return tag == MSG_NOTICE ? "NOTICE" : tag == MSG_TAGMSG ? "TAGMSG" : "PRIVMSG";
}

/* A line with IRCv3 tags in front (no '@' in `tags`; none when empty), into a new buffer. */
void chat_tagged_line(struct irc_buf *out, const char *tags, const char *line, size_t len);

/* What OP_AWAY tells the members who asked to hear it (away-notify, setname). */
enum { WHO_SILENT = 0, WHO_AWAY, WHO_SETNAME };

/* A member's prefix flags in a channel. */
enum { M_OP = 1, M_VOICE = 2 };

/* IRCv3 capabilities a client can enable (CAP REQ); irc_who.caps. */
enum {
	CAP_CAP_NOTIFY = 1 << 0,
	CAP_MULTI_PREFIX = 1 << 1,
	CAP_USERHOST_IN_NAMES = 1 << 2,
	CAP_ECHO_MESSAGE = 1 << 3,
	CAP_SERVER_TIME = 1 << 4,
	CAP_AWAY_NOTIFY = 1 << 5,
	CAP_SETNAME = 1 << 6,
	CAP_BATCH = 1 << 7,
	CAP_LABELED_RESPONSE = 1 << 8,
	CAP_MESSAGE_TAGS = 1 << 9,
	CAP_EXTENDED_JOIN = 1 << 10,
};
/* Their names, in bit order; chat_cap_bit("name") is the bit or 0. */
extern const char *const chat_cap_names[];
unsigned chat_cap_bit(const char *name);

/* The prefix of a member with these flags as `who` sees it: "@+" with multi-prefix. */
const char *chat_prefix(uint8_t flags, unsigned caps);

/* Who sent a request, as others see them. */
struct irc_who {
	char nick[IRC_NICKLEN + 1];
	char user[IRC_USERLEN + 1];
	char host[IRC_HOSTLEN + 1];
	char real[IRC_REALLEN + 1];
	uint8_t away;
	uint8_t invisible;
	uint8_t oper;  /* user mode +o, from OPER */
	uint16_t caps; /* CAP_*: the capabilities its client enabled */
};

/* Replies in order. A command whose answer comes from other actors is sent as a library
 * request (chat_env_ops.request), which gets exactly one answer from whichever actor handles
 * it last (a channel, a registry, the session owning a nick: each passes it on with
 * chat_forward): a CM_REPLY that holds everything the command makes its client see, its own
 * copy of a broadcast included, or for a wait (JOIN, NICK, LIST, lookups) the message the wait
 * is for. A request whose receiver stopped is answered -ESRCH by the library, and one that
 * takes too long times out on the session's worker. So the session can put each command's
 * replies before those of the commands after it, whichever actors answer first (session.c,
 * "Output in order"), and never waits for ever. */
struct cm_req {
	actor_msg_t hdr;
	uint16_t op;
	uint8_t via;     /* 1: forwarded by a registry */
	uint8_t nargs;   /* NUL-terminated strings packed in args[] */
	uint32_t worker; /* the requester's worker */
	uint32_t unused_;
	uint64_t kept; /* the receiver's own: 0 while it is the message being handled; once kept,
	                  what chat_env_ops.keep returned (set by whoever keeps it) */
	actor_ref_t from;
	uint64_t dedup; /* OP_QUIT, OP_NICK: a key the receivers use to drop copies */
	uint64_t tag;
	struct irc_who who;
	char target[IRC_CHANLEN + 1]; /* a channel or nick as typed */
	char args[];
};

/* The i-th packed argument, or "" past the end. */
const char *cm_req_arg(const struct cm_req *r, unsigned i);

struct cm_reply {
	actor_msg_t hdr;
	uint32_t seq; /* the session's place for it (session.c), from the answer's tag; 0: text
	                 sent as a plain message, for no request */
	uint32_t len;
	char text[]; /* whole IRC lines */
};

/* A line shared by every receiver of one broadcast; freed by the last. */
struct chat_line {
	atomic_uint refs;
	uint32_t len;
	char data[];
};

struct chat_line *chat_line_new(const char *data, size_t len, unsigned refs);
void chat_line_ref(struct chat_line *l, unsigned n);
void chat_line_unref(struct chat_line *l);

struct cm_line {
	actor_msg_t hdr;
	struct chat_line *line; /* one reference, ours */
	uint64_t dedup;         /* 0, or a key for dropping copies (QUIT, NICK) */
};

struct cm_fanout {
	actor_msg_t hdr;
	struct chat_line *line; /* one reference, ours */
	actor_ref_t exclude;    /* a member that does not get it (the speaker) */
	uint64_t dedup;
	uint32_t n;
	actor_ref_t to[]; /* the members on the fan-out's worker */
};

struct cm_nick_result {
	actor_msg_t hdr;
	uint8_t ok; /* 1: yours; 0: taken (433); CHAT_NICK_UNSURE: could not tell (437) */
	char nick[IRC_NICKLEN + 1];
};

#define CHAT_NICK_UNSURE 2

/* Cluster messages (cluster.c has the protocol between hosts). */
struct cm_cl_chan {
	actor_msg_t hdr;
	char name[IRC_CHANLEN + 1];
};

struct cm_cl_pub {
	actor_msg_t hdr;
	uint64_t tag; /* 0: nothing comes back; else one CM_CL_ACKED with it */
	char name[IRC_CHANLEN + 1];
	uint32_t len;
	char data[]; /* an event as cluster.c encodes it */
};

struct cm_cl_acked {
	actor_msg_t hdr;
	uint64_t tag;
	int32_t error; /* 0: stored in the stream; else -errno, not stored (or not known) */
};

struct cm_cl_event {
	actor_msg_t hdr;
	uint64_t seq; /* its sequence in the stream */
	uint32_t len;
	char data[];
};

struct cm_joined {
	actor_msg_t hdr;
	uint8_t ok;     /* 1: joined; the channel is the sender */
	uint8_t secret; /* the channel is +s */
	uint8_t flags;  /* the joiner's prefix flags there */
	char chan[IRC_CHANLEN + 1];
	uint32_t len; /* lines for the joiner: the JOIN, topic and names, or the error */
	char text[];
};

struct cm_chan_note {
	actor_msg_t hdr;
	uint8_t secret;
	uint8_t flags; /* CM_MEMBER_MODE: the member's prefix flags (channel.h, M_OP, M_VOICE) */
	char chan[IRC_CHANLEN + 1];
};

struct cm_chan_info {
	actor_msg_t hdr;
	uint32_t users;
	uint8_t secret;
	char name[IRC_CHANLEN + 1];
	char topic[]; /* NUL-terminated */
};

struct cm_chan_empty {
	actor_msg_t hdr;
	uint64_t via_seen; /* requests the channel got through the registry, all told */
	char name[IRC_CHANLEN + 1];
};

struct cm_chan_started {
	actor_msg_t hdr;
	int32_t result; /* 0: `ref` runs the channel; else -errno, nothing runs */
	actor_ref_t ref;
	char name[IRC_CHANLEN + 1];
};

/* A channel restarted after an abnormal stop: empty, a new actor, `prev` the one that failed. */
struct cm_chan_hello {
	actor_msg_t hdr;
	actor_ref_t prev;
	char name[IRC_CHANLEN + 1];
};

struct cm_down {
	actor_msg_t hdr;
	actor_ref_t who;
	int32_t reason; /* as ACTOR_MSG_DOWN's: ACTOR_REASON_NORMAL for a stop that was asked for */
};

/* Records, one per line: LIST "S|P <users> <name> <topic>", LOOKUP "<nick> <user> <host> <A|H>". */
struct cm_records {
	actor_msg_t hdr;
	uint64_t tag;
	uint32_t len;
	char text[];
};

/* Lookup purposes (cm_req.tag for OP_LOOKUP). */
enum { LOOKUP_USERHOST = 1, LOOKUP_ISON, LOOKUP_MODE, LOOKUP_WHO };
/* LOOKUP_WHO: args[0] is a mask; the records are the users matching it, as
 * "<nick> <user> <host> <H|G>[*] <realname>". */

/* Helpers over the environment: allocate-and-send that frees what could not be sent. */
void *chat_msg_new(struct chat_env *e, size_t size, uint32_t type);
int chat_send(struct chat_env *e, actor_ref_t to, void *msg);
/* Answers q (the message being handled, or one kept with q->kept set) with `len` bytes of
 * lines, maybe none: one CM_REPLY when q is a request, else a plain CM_REPLY to q->from when
 * there is text, nothing otherwise. */
int chat_reply(struct chat_env *e, const struct cm_req *q, const char *data, size_t len);
/* Answers q with the message `answer` (taken in every case): its reply when q is a request,
 * else sent to q->from as a plain message. */
int chat_answer(struct chat_env *e, const struct cm_req *q, void *answer);
/* Passes q's request on to `to` with m (q itself, or a new one; taken in every case): 0, or
 * <0 when nothing was sent (m is freed, and the request, still ours, is to be answered). */
int chat_forward(struct chat_env *e, const struct cm_req *q, actor_ref_t to, void *m);
/* An ACTOR_MSG_REPLY's answer as the message it was given to chat_answer (its type, size and
 * sender set), inside m; NULL when the request failed (its error in *error) or m is malformed
 * (-EBADMSG). *tag: the request's tag. */
actor_msg_t *chat_answer_of(actor_msg_t *m, int *error, uint64_t *tag);
struct cm_req *chat_req_new(struct chat_env *e, uint16_t op, const struct irc_who *who,
                            const char *target, unsigned nargs, const char *const *args);

/* Releases what a message of ours carries (a shared line) before it is freed unread: for the
 * dead-letter hook and for tests. */
void chat_msg_release(actor_msg_t *m);

/* Slow clients (srv.c has the rule). Each actor that sends to sessions keeps one of these in
 * its state, for its environment's `slow`; zeroed is empty. */
struct chat_slow {
	struct hmap map; /* session ref.id -> its record */
};
/* Sends a message the caller owns (the one being handled, too: it is then forwarded), as
 * e->ops->send does, under the rule: -EAGAIN at once for a session that has refused us. On
 * failure the message is still the caller's. chat_send is this, then frees what failed;
 * chat_forward applies the same rule to a request passed on. */
int chat_send_msg(struct chat_env *e, actor_ref_t to, actor_msg_t *m);
/* The running actor's ACTOR_MSG_WRITABLE from `session`, and ACTOR_MSG_DOWN of `who` (true
 * when it was one of our slow clients: the message is then handled). */
void chat_slow_writable(struct chat_env *e, actor_ref_t session);
bool chat_slow_down(struct chat_env *e, actor_ref_t who);
/* Frees a set when its actor stops. */
void chat_slow_free(struct chat_slow *slow);

/* ---------------------------------------------------------------------------------------------
 * The parts
 */

/* session.c */
struct sess *sess_new(struct chat_srv *srv, const char *host);
void sess_free(struct sess *s);
/* The connection is ours: start (or refuse with ERROR :Server full when `full`). */
void sess_start(struct sess *s, struct chat_env *e, bool full);
/* Input, cut into lines by whoever owns the bytes: one line without its line end (at most
 * chat_line_max bytes; a longer one counts as overlong), or the place of an overlong line,
 * dropped. CR, LF and CR LF each end a line, and empty lines are dropped, before this. */
void sess_line(struct sess *s, struct chat_env *e, const char *line, size_t len);
void sess_overlong(struct sess *s, struct chat_env *e);
void sess_closed(struct sess *s, struct chat_env *e, int error); /* 0 = EOF, else -errno */
void sess_drained(struct sess *s, struct chat_env *e);
void sess_timer(struct sess *s, struct chat_env *e, uint64_t tag);
void sess_handle(struct sess *s, struct chat_env *e, actor_msg_t *m);
const char *sess_nick(const struct sess *s);

/* channel.c */
struct chan *chan_new(struct chat_srv *srv, const char *name);
void chan_free(struct chan *c);
void chan_handle(struct chan *c, struct chat_env *e, actor_msg_t *m);
/* A channel restarted after its predecessor `prev` failed: tells the registry (CM_CHAN_HELLO),
 * then that it is empty, so that the registry forgets it unless a JOIN is on its way. */
void chan_restarted(struct chan *c, struct chat_env *e, actor_ref_t prev);
const char *chan_name(const struct chan *c);

/* The answer for a request to a nick nobody holds (401 and the like), appended to b; nothing for
 * a NOTICE or TAGMSG. */
void chat_no_such_nick(struct irc_buf *b, const struct chat_srv *srv, const struct cm_req *q);

/* registry.c */
struct registry *registry_new(struct chat_srv *srv, unsigned index);
void registry_free(struct registry *r);
void registry_handle(struct registry *r, struct chat_env *e, actor_msg_t *m);

/* fanout.c */
struct fanout *fanout_new(struct chat_srv *srv, unsigned index);
void fanout_free(struct fanout *f);
void fanout_handle(struct fanout *f, struct chat_env *e, actor_msg_t *m);
/* Hands `line` to each of the n sessions in `to` but `exclude`, taking one reference per
 * delivery (the caller keeps its own). The sessions must live on the calling worker's. */
void chat_deliver_local(struct chat_env *e, struct chat_line *line, const actor_ref_t *to,
                        uint32_t n, actor_ref_t exclude, uint64_t dedup);

/* WHO's answer for one user: RPL_WHOREPLY (352), or with WHOX (`whox` is the "%fields[,token]"
 * argument, or "") RPL_WHOSPCRPL (354) with the fields asked for, in the specification's
 * order. `flags` is H or G, then * for an operator, then the channel prefix. Appends one line. */
void chat_who_line(struct irc_buf *b, const struct chat_srv *srv, const char *to, const char *whox,
                   const char *chan, const char *nick, const char *user, const char *host,
                   const char *flags, unsigned idle, const char *real);
/* Whether a WHO argument is a WHOX field list. */
static inline bool chat_is_whox(const char *arg)
{
	return arg != NULL && arg[0] == '%';
}

/* srv.c: defaults, the MOTD, the welcome burst's pieces. */
void chat_srv_init(struct chat_srv *srv, unsigned workers);
int chat_srv_load_motd(struct chat_srv *srv, const char *path); /* 0 or -errno */
/* Adds an operator: 0, -EINVAL (a name or password empty, too long or with spaces), -EEXIST
 * (the name is taken) or -ENOMEM. */
int chat_srv_add_oper(struct chat_srv *srv, const char *name, const char *password);
void chat_srv_fini(struct chat_srv *srv);
/* The ISUPPORT tokens, one 005 line's worth at a time: returns the number of lines. */
unsigned chat_isupport(const struct chat_srv *srv, char lines[][400], unsigned max);

#endif /* CHAT_CHAT_H */
