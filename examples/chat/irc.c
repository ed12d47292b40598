/* irc.c: the IRC wire format: framing, parsing, names, masks and line formatting. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irc.h"

/* Output lines: 510 bytes of content and CR LF, as RFC 1459 section 2.3 allows. */
#define LINE_CONTENT_MAX 510

/* ---------------------------------------------------------------------------------------------
 * Framing
 */

void irc_framer_init(struct irc_framer *f, size_t max_line, size_t max_noeol)
{
	if (max_line < IRC_LINE_MIN)
		max_line = IRC_LINE_MIN;
	if (max_line > IRC_LINE_MAX)
		max_line = IRC_LINE_MAX;
	if (max_noeol < max_line)
		max_noeol = max_line;
	*f = (struct irc_framer){.max_line = max_line, .max_noeol = max_noeol};
}

/* Index of the first CR or LF in buf[0..len), or len. */
static size_t find_eol(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			return i;
	return len;
}

/* Bytes of the terminator at buf[i]: 2 for CR LF, else 1. */
static size_t eol_len(const char *buf, size_t len, size_t i)
{
	return (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') ? 2 : 1;
}

enum irc_frame irc_frame_next(struct irc_framer *f, const char *buf, size_t len, size_t *used,
                              size_t *line_off, size_t *line_len)
{
	size_t content_max = f->max_line - 2; /* the limit counts the CR LF */
	size_t off = 0;

	*line_off = 0;
	*line_len = 0;
	for (;;) {
		size_t rest = len - off;
		const char *p = buf + off;

		if (rest == 0) {
			*used = off;
			return IRC_FRAME_MORE;
		}
		if (f->discarding) {
			size_t i = find_eol(p, rest);
			if (i == rest) {
				f->skipped += rest;
				*used = len;
				return f->skipped >= f->max_noeol ? IRC_FRAME_NOEOL
				                                  : IRC_FRAME_MORE;
			}
			f->discarding = false;
			f->skipped = 0;
			off += i + eol_len(p, rest, i);
			continue;
		}
		/* Look no further than one byte past the longest line allowed. */
		size_t scan = rest < content_max + 1 ? rest : content_max + 1;
		size_t i = find_eol(p, scan);
		if (i == 0) { /* an empty line, or the LF of a CR LF that a read split */
			off++;
			continue;
		}
		if (i < scan) {
			*line_off = off;
			*line_len = i;
			*used = off + i + eol_len(p, rest, i);
			return IRC_FRAME_LINE;
		}
		if (rest > content_max) { /* overlong: drop it up to its end, from the next call */
			f->discarding = true;
			f->skipped = 0;
			*used = off;
			return IRC_FRAME_TOOLONG;
		}
		*used = off; /* incomplete: keep it and read more */
		return IRC_FRAME_MORE;
	}
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 */

static char *skip_spaces(char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Ends the token at p (at the next space or the end); returns what follows it. */
static char *cut_token(char *p)
{
	while (*p != '\0' && *p != ' ')
		p++;
	if (*p == ' ')
		*p++ = '\0';
	return p;
}

int irc_parse(char *line, size_t len, struct irc_msg *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) /* NUL cannot travel in IRC: drop it */
		if (line[i] != '\0')
			line[n++] = line[i];
	line[n] = '\0';
	memset(out, 0, sizeof(*out));

	char *p = skip_spaces(line);
	if (*p == '@') {
		out->tags = p + 1;
		p = skip_spaces(cut_token(p));
	}
	if (*p == ':') {
		out->prefix = p + 1;
		p = skip_spaces(cut_token(p));
	}
	if (*p == '\0')
		return -EINVAL;
	out->cmd = p;
	p = cut_token(p);
	for (char *c = (char *)out->cmd; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 32);

	for (;;) {
		p = skip_spaces(p);
		if (*p == '\0')
			break;
		if (*p == ':' || out->nparams == IRC_MAX_PARAMS - 1) {
			/* The trailing parameter: the rest of the line, spaces and all. */
			out->params[out->nparams++] = *p == ':' ? p + 1 : p;
			break;
		}
		out->params[out->nparams++] = p;
		p = cut_token(p);
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Names
 */

size_t irc_fold(char *dst, size_t cap, const char *src)
{
	size_t n = 0;
	if (cap == 0)
		return 0;
	while (src[n] != '\0' && n + 1 < cap) {
		dst[n] = irc_tolower(src[n]);
		n++;
	}
	dst[n] = '\0';
	return n;
}

int irc_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = irc_tolower(*a), y = irc_tolower(*b);
		if (x != y)
			return (unsigned char)x < (unsigned char)y ? -1 : 1;
		if (x == '\0')
			return 0;
	}
}

uint64_t irc_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *name != '\0'; name++) {
		h ^= (unsigned char)irc_tolower(*name);
		h *= 1099511628211ull;
	}
	return h;
}

static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_special(char c)
{
	return c != '\0' && strchr("[]\\`_^{|}", c) != NULL;
}

bool irc_tag_value(const char *tags, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	for (const char *p = tags; p != NULL && *p != '\0';) {
		const char *end = strchr(p, ';');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n >= klen && strncmp(p, key, klen) == 0 && (n == klen || p[klen] == '=')) {
			const char *v = n == klen ? "" : p + klen + 1;
			size_t vlen = n == klen ? 0 : n - klen - 1, o = 0;
			for (size_t i = 0; i < vlen; i++) { /* IRCv3 escapes: \: \s \\ \r \n */
				char c = v[i];
				if (c == '\\' && i + 1 < vlen) {
					c = v[++i];
					c = c == ':' ? ';' : c == 's' ? ' ' : c == 'r' ? '\r' : c == 'n' ? '\n' : c;
				}
				if (o + 1 >= cap)
					return false;
				out[o++] = c;
			}
			out[o] = '\0';
			return true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

bool irc_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		unsigned c = *p++;
		if (c < 0x80)
			continue;
		unsigned need, min;
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, min = 0x80, c &= 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, min = 0x800, c &= 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, min = 0x10000, c &= 0x07;
		else
			return false; /* a continuation byte, an overlong lead (c0, c1) or f5..ff */
		if ((size_t)(end - p) < need)
			return false;
		for (unsigned i = 0; i < need; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (p[i] & 0x3f);
		}
		p += need;
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
	}
	return true;
}

bool irc_valid_nick(const char *nick, size_t maxlen)
{
	size_t n = 0;
	if (!is_letter(nick[0]) && !is_special(nick[0]))
		return false;
	for (; nick[n] != '\0'; n++) {
		char c = nick[n];
		if (!is_letter(c) && !is_special(c) && !(c >= '0' && c <= '9') && c != '-')
			return false;
	}
	return n <= maxlen;
}

bool irc_valid_channel(const char *name, size_t maxlen)
{
	size_t n;
	if (name[0] != '#' || name[1] == '\0')
		return false;
	for (n = 1; name[n] != '\0'; n++) {
		unsigned char c = (unsigned char)name[n];
		if (c == 7 || c == '\r' || c == '\n' || c == ' ' || c == ',' || c == ':')
			return false;
	}
	return n <= maxlen;
}

bool irc_match(const char *mask, const char *s)
{
	const char *star = NULL, *resume = NULL;

	/* Greedy glob with one backtrack point: linear in practice, never exponential. */
	while (*s != '\0') {
		if (*mask == '*') {
			star = ++mask;
			resume = s;
		} else if (*mask != '\0' &&
		           (*mask == '?' || irc_tolower(*mask) == irc_tolower(*s))) {
			mask++;
			s++;
		} else if (star != NULL) {
			mask = star;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*mask == '*')
		mask++;
	return *mask == '\0';
}

char *irc_list_next(char **cursor)
{
	char *p = *cursor;
	if (p == NULL)
		return NULL;
	while (*p == ',')
		p++;
	if (*p == '\0') {
		*cursor = NULL;
		return NULL;
	}
	char *item = p;
	while (*p != '\0' && *p != ',')
		p++;
	if (*p == ',')
		*p++ = '\0';
	*cursor = p;
	return item;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 */

void irc_buf_init(struct irc_buf *b)
{
	*b = (struct irc_buf){0};
}

void irc_buf_free(struct irc_buf *b)
{
	free(b->data);
	irc_buf_init(b);
}

void irc_buf_reset(struct irc_buf *b)
{
	b->len = 0;
	b->oom = false;
}

void irc_buf_put(struct irc_buf *b, const void *data, size_t len)
{
	if (len == 0) /* data may be NULL then (an empty buffer's) */
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 512;
		while (cap < b->len + len)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			b->oom = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* Where to cut s, which has more than len bytes, so that no UTF-8 sequence is split: at most
 * len, backing off over continuation bytes. */
static size_t utf8_cut(const char *s, size_t len)
{
	size_t cut = len;
	while (cut > 0 && len - cut < 3 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	return ((unsigned char)s[cut] & 0xc0) == 0x80 ? len : cut; /* not UTF-8 anyway */
}

/* Formats into dst[0..LINE_CONTENT_MAX + 1] (room for LINE_CONTENT_MAX + 2 bytes) and ends the
 * line, cut at a UTF-8 boundary; no CR, LF or NUL survives inside. */
static size_t vformat_line(char *dst, const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, LINE_CONTENT_MAX + 2, fmt, ap); /* one byte more, for utf8_cut */
	size_t len = n < 0 ? 0 : (size_t)n > LINE_CONTENT_MAX ? LINE_CONTENT_MAX : (size_t)n;
	if (n > 0 && (size_t)n > LINE_CONTENT_MAX)
		len = utf8_cut(dst, len);
	for (size_t i = 0; i < len; i++)
		if (dst[i] == '\r' || dst[i] == '\n' || dst[i] == '\0')
			dst[i] = ' ';
	dst[len++] = '\r';
	dst[len++] = '\n';
	return len;
}

void irc_buf_vlinef(struct irc_buf *b, const char *fmt, va_list ap)
{
	char line[LINE_CONTENT_MAX + 3];
	size_t len = vformat_line(line, fmt, ap);
	irc_buf_put(b, line, len);
}

void irc_buf_linef(struct irc_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	irc_buf_vlinef(b, fmt, ap);
	va_end(ap);
}

size_t irc_format_line(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t len = irc_vformat_line(dst, cap, fmt, ap);
	va_end(ap);
	return len;
}

size_t irc_vformat_line(char *dst, size_t cap, const char *fmt, va_list ap)
{
	char line[LINE_CONTENT_MAX + 3];
	size_t len = vformat_line(line, fmt, ap);
	if (len > cap) { /* keep the CR LF */
		len = utf8_cut(line, cap - 2) + 2;
		line[len - 2] = '\r';
		line[len - 1] = '\n';
	}
	memcpy(dst, line, len);
	return len;
}
