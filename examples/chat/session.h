/* session.h: a client connection's state, shared by session.c (the connection: input, flood
 * control, liveness, registration, leaving) and session_cmd.c (the commands). Private to them.
 */
#ifndef CHAT_SESSION_H
#define CHAT_SESSION_H

#include "chat.h"

enum {
	F_NICK = 1 << 0,        /* a nick is ours in the registry */
	F_USER = 1 << 1,        /* USER was given */
	F_REGISTERED = 1 << 2,  /* welcomed */
	F_CAP = 1 << 3,         /* CAP negotiation holds registration back */
	F_CLOSING = 1 << 4,     /* quit: waiting for the client to go after ERROR */
	F_PAUSED = 1 << 5,      /* reading paused: too much input waiting */
	F_FLOOD_TIMER = 1 << 6, /* a timer will resume input when tokens are back */
	F_PING = 1 << 7,        /* we sent PING and wait for an answer */
	F_WALLOPS = 1 << 8,     /* user mode +w */
	F_STARTED = 1 << 9,
	F_EXITED = 1 << 10, /* the actor stops after this message */
};

/* What input waits for: a reply that must come before the next line is handled, so that what a
 * client does happens in the order it said it. */
enum sess_wait { WAIT_NONE, WAIT_NICK, WAIT_JOIN, WAIT_LIST, WAIT_LOOKUP };

enum { TAG_TICK = 1, TAG_FLOOD, TAG_LINGER };

#define SESS_DEDUP 16 /* recent QUIT/NICK keys: one per channel copy of the same event */
#define SESS_HELD_MAX 1024 /* replies awaited at once; input waits beyond */

/* Output in order (session.c): a reply awaited (seq != 0), or output that waits behind one, or
 * the start or end of a labeled command's response (labeled-response). */
enum { HELD_TEXT, HELD_LABEL, HELD_LABEL_END };
struct sess_held {
	uint32_t seq;
	uint8_t kind;
	const char *cmd;     /* awaited: its command, for a timeout's 400; NULL: none (NOTICE) */
	struct irc_buf text; /* HELD_LABEL: the label */
};

struct sess_chan {
	char name[IRC_CHANLEN + 1];
	actor_ref_t ref;
	uint8_t secret;
	uint8_t flags; /* our prefix there: M_OP, M_VOICE */
};

struct sess {
	struct chat_srv *srv;
	struct chat_env *e; /* the environment of the call being handled */
	actor_ref_t self;
	unsigned worker;
	unsigned flags;
	struct irc_who who; /* nick "" until NICK succeeds, user "" until USER */
	char *pass;
	char *away;

	struct sess_chan *chans;
	unsigned nchans, capchans;

	enum sess_wait wait;
	char claim[IRC_NICKLEN + 1];   /* WAIT_NICK: the nick asked for */
	char joining[IRC_CHANLEN + 1]; /* WAIT_JOIN: the channel asked for */
	char *join_list, *join_keys;   /* the rest of a JOIN, cut by irc_list_next */
	char *join_cur, *key_cur;
	unsigned pending; /* WAIT_LIST, WAIT_LOOKUP: replies to come */
	uint64_t lookup_tag;
	char *lookup_arg;   /* LIST's filter, MODE's nick, WHO's mask */
	char whox[32];      /* WHO <mask>'s WHOX fields, or "" */
	struct irc_buf acc; /* ISON/USERHOST results */

	char *in; /* input lines waiting to be handled (session.c, "Input") */
	size_t inlen, incap;

	double tokens; /* flood control */
	uint64_t refill_ns;
	uint64_t connected_ns, last_rx_ns, ping_ns, idle_ns;
	time_t signon;

	struct sess_held *held; /* a ring: the oldest at held_head */
	unsigned held_head, held_len, held_cap;
	size_t held_bytes;
	uint32_t req_seq; /* the last request numbered */
	bool label_open;          /* a labeled command is being handled: its end is not queued */
	bool labeling;            /* its start has been written out: output goes to label_out */
	char label[65];           /* labeling: the label */
	struct irc_buf label_out; /* labeling: the response so far */
	unsigned batch_seq;

	char (*invited)[IRC_CHANLEN + 1]; /* channels we were invited to (INVITE alone lists them) */
	unsigned ninvited;

	uint64_t nick_seq;
	uint64_t msg_seq; /* for msgid */
	uint64_t dedup[SESS_DEDUP];
	unsigned dedup_pos;
};

/* session.c */
void sess_write(struct sess *s, const char *data, size_t len);
void sess_printf(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ":server NNN nick " then the rest. */
void sess_numeric(struct sess *s, const char *num, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sess_quit(struct sess *s, const char *reason, bool error);
void sess_try_register(struct sess *s);
void sess_lusers(struct sess *s);
void sess_motd(struct sess *s);
/* Tells the channels and the registry that what others see of us changed (away, invisible,
 * operator, capabilities, realname); `what` (WHO_*) is what members are told of it. */
void sess_who_changed(struct sess *s, unsigned what);
uint64_t sess_dedup_key(const struct sess *s, uint64_t seq);
bool sess_dedup_seen(struct sess *s, uint64_t key);
const char *sess_target_nick(const struct sess *s); /* the nick, or "*" */

/* labeled-response: the output from now until sess_label_end answers the labeled command. */
void sess_label_begin(struct sess *s, const char *label);
void sess_label_end(struct sess *s);

/* Numbers request q, sends it and holds later output until its reply (session.c). */
void sess_send_req(struct sess *s, actor_ref_t to, struct cm_req *q);
/* Sends q as a request for the wait `w` (WAIT_*), whose one answer comes back to sess_reply as
 * ACTOR_MSG_REPLY tagged SESS_TAG_WAIT | w, within the request timeout. 0, or <0: not sent (q
 * is freed) and no answer comes. */
int sess_ask(struct sess *s, actor_ref_t to, struct cm_req *q, enum sess_wait w);
/* Answers' tags: a held place's seq (below 2^32), or a wait. */
#define SESS_TAG_WAIT (1ull << 32)
/* A reply to a numbered request: its text goes out once every earlier reply has. */
void sess_req_done(struct sess *s, uint32_t seq, const char *text, size_t len);
/* A numbered request that ended without an answer (error as actor_reply_t's): a timeout is
 * told as ERR_UNKNOWNERROR (400) naming the command; a receiver that stopped, with nothing. */
void sess_req_failed(struct sess *s, uint32_t seq, int error);

/* Invitations we hold, newest last; at most SESS_INVITED (the oldest goes first). */
#define SESS_INVITED 16
void sess_invited(struct sess *s, const char *chan, bool add);

/* session_cmd.c */
void sess_command(struct sess *s, struct irc_msg *m);
struct sess_chan *sess_find_chan(struct sess *s, const char *name);
void sess_add_chan(struct sess *s, const char *name, actor_ref_t ref, bool secret,
                   uint8_t flags);
void sess_drop_chan(struct sess *s, struct sess_chan *c);
/* Every channel we are in hears the same request (QUIT, NICK, AWAY). */
void sess_to_all_channels(struct sess *s, uint16_t op, uint64_t dedup, const char *arg);

/* session_reply.c */
void sess_reply(struct sess *s, actor_msg_t *m); /* replies and requests from other actors */
void sess_join_next(struct sess *s);
void sess_send(struct sess *s, actor_ref_t to, void *msg);
struct cm_req *sess_req(struct sess *s, uint16_t op, const char *target, unsigned nargs,
                        const char *const *args);

#endif /* CHAT_SESSION_H */
