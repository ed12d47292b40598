/* irc.h: the IRC wire format, with no sockets and no actors: cutting a byte stream into lines,
 * parsing a line into a message, the rfc1459 case mapping, nick and channel name rules, mask
 * matching, and an output buffer that formats lines no longer than the protocol allows.
 *
 * Everything here is pure and allocation-free except struct irc_buf, so the fuzz target and
 * the unit tests can drive it directly.
 */
#ifndef CHAT_IRC_H
#define CHAT_IRC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol limits the server announces in RPL_ISUPPORT (005). */
#define IRC_NICKLEN 30
#define IRC_USERLEN 12
#define IRC_HOSTLEN 63
#define IRC_REALLEN 64
#define IRC_CHANLEN 50
#define IRC_TOPICLEN 390
#define IRC_KICKLEN 390
#define IRC_AWAYLEN 200
#define IRC_KEYLEN 23
#define IRC_CHANLIMIT 50  /* channels one client may be in */
#define IRC_MAXTARGETS 4  /* PRIVMSG/NOTICE targets per command */
#define IRC_MAXMODES 4    /* modes with a parameter per MODE command */
#define IRC_MAXBANS 50    /* entries in a channel's ban list */
#define IRC_MAX_PARAMS 15 /* RFC 2812: a command has at most 15 parameters */

/* A line is at most 512 bytes including its CR LF (RFC 1459 section 2.3); configurable. */
#define IRC_LINE_DEFAULT 512
#define IRC_LINE_MIN 64
#define IRC_LINE_MAX 8192 /* --max-line's ceiling; a line is copied on the stack */
/* A client that sends this much of one line without its end is disconnected. */
#define IRC_NOEOL_MAX (16u << 10)
#define IRC_TAGS_MAX 4096 /* a line's tags, '@' and the space after them included (message-tags) */

/* ---------------------------------------------------------------------------------------------
 * Framing: bytes to lines
 *
 * The server does not use this: its connections cut their input into lines themselves, by the
 * same rules (server.c, frame_lines). It is the reference those rules are written against, and
 * what the test bus (tests/chat/bus.c), the fuzz target and test_chat_irc cut input with.
 */

struct irc_framer {
	size_t max_line;  /* longest line, CR LF included */
	size_t max_noeol; /* bytes without a line end before we give up on the client */
	size_t skipped;   /* bytes of an overlong line dropped so far */
	bool discarding;  /* inside an overlong line: drop bytes up to the next line end */
};

enum irc_frame {
	IRC_FRAME_MORE,    /* no complete line: keep the rest of the buffer and read more */
	IRC_FRAME_LINE,    /* a line (without its terminator) at buf[0 .. *line_len) */
	IRC_FRAME_TOOLONG, /* an overlong line began: answer ERR_INPUTTOOLONG, its bytes are dropped
	                    */
	IRC_FRAME_NOEOL,   /* max_noeol bytes without a line end: disconnect */
};

void irc_framer_init(struct irc_framer *f, size_t max_line, size_t max_noeol);

/* Looks for the next line in buf[0..len). Sets *used to the bytes consumed (the caller drops
 * them, whatever the result) and, for IRC_FRAME_LINE, the line's place: buf[*line_off ..
 * *line_off + *line_len), without its terminator. CR, LF and CR LF all end a line (a lone CR
 * must not reach other clients, where it could end a line early); empty lines are skipped. */
enum irc_frame irc_frame_next(struct irc_framer *f, const char *buf, size_t len, size_t *used,
                              size_t *line_off, size_t *line_len);

/* ---------------------------------------------------------------------------------------------
 * Parsing a line
 */

struct irc_msg {
	const char *tags;   /* IRCv3 tags without the '@', or NULL */
	const char *prefix; /* the source without the ':', or NULL */
	const char *cmd;    /* the command, upper-cased */
	int nparams;
	const char *params[IRC_MAX_PARAMS];
};

/* Parses `line` (len bytes, modified in place and NUL-terminated; the buffer must have room for
 * len + 1 bytes). NUL bytes in the line are removed first. Returns 0, or -EINVAL for a line
 * with no command (empty, only a prefix, or a malformed command). */
int irc_parse(char *line, size_t len, struct irc_msg *out);

/* ---------------------------------------------------------------------------------------------
 * Names
 */

/* The rfc1459 case mapping: A-Z [ \ ] ~ fold to a-z { | } ^. */
static inline char irc_tolower(char c)
{
	if (c >= 'A' && c <= ']')
		return (char)(c + 32);
	return c == '~' ? '^' : c;
}

/* Writes the folded `src` to dst (at most cap-1 bytes and a NUL); returns the length. */
size_t irc_fold(char *dst, size_t cap, const char *src);
/* 0 when equal under the case mapping. */
int irc_casecmp(const char *a, const char *b);
/* A hash of the folded name: equal under the case mapping means equal hash. */
uint64_t irc_hash(const char *name);

/* Nick rules (RFC 2812 2.3.1, with '-' allowed after the first character): 1..maxlen
 * characters, the first a letter or one of []\`_^{|}. */
bool irc_valid_nick(const char *nick, size_t maxlen);
/* The value of tag `key` in a message's tags (irc_msg.tags), unescaped, into out (cap bytes);
 * false when absent or too long. */
bool irc_tag_value(const char *tags, const char *key, char *out, size_t cap);
/* Whether the len bytes at s are well-formed UTF-8 (no overlong forms, no surrogates, nothing
 * past U+10FFFF). */
bool irc_valid_utf8(const char *s, size_t len);
/* Channel names: '#' then 1..maxlen-1 bytes, none of NUL BEL CR LF space comma colon. */
bool irc_valid_channel(const char *name, size_t maxlen);
static inline bool irc_is_channel(const char *s)
{
	return s[0] == '#';
}

/* Glob match of `mask` (with * and ?) against `s`, under the case mapping. */
bool irc_match(const char *mask, const char *s);

/* Cuts `list` (modified in place) at commas: returns the next item or NULL. *cursor starts as
 * list. Empty items are skipped. */
char *irc_list_next(char **cursor);

/* ---------------------------------------------------------------------------------------------
 * Output
 */

/* A growable buffer of whole lines, each at most 512 bytes with its CR LF. */
struct irc_buf {
	char *data;
	size_t len, cap;
	bool oom; /* an allocation failed: some lines were dropped */
};

void irc_buf_init(struct irc_buf *b);
void irc_buf_free(struct irc_buf *b);
void irc_buf_reset(struct irc_buf *b);
/* Appends one formatted line, truncated to 510 bytes, with CR LF. */
void irc_buf_linef(struct irc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void irc_buf_vlinef(struct irc_buf *b, const char *fmt, va_list ap);
/* Appends raw bytes. */
void irc_buf_put(struct irc_buf *b, const void *data, size_t len);

size_t irc_vformat_line(char *dst, size_t cap, const char *fmt, va_list ap);
/* Formats one line into dst (cap >= 3): truncated to 510 bytes plus CR LF; returns the
 * length including CR LF. */
size_t irc_format_line(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CHAT_IRC_H */
