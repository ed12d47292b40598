/* session.c: one actor per client connection, living on the worker that accepted it. This
 * file is the connection's life: lines in (flood control, flow control), bytes out
 * (the send queue cap), liveness (PING), registration and the welcome burst, and leaving
 * (QUIT, ERROR, linger). The commands are in session_cmd.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"

struct sess *sess_new(struct chat_srv *srv, const char *host)
{
	struct sess *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->srv = srv;
	/* A host starting with ':' (IPv6 "::1") would read as a trailing parameter. */
	snprintf(s->who.host, sizeof(s->who.host), "%s%s", host[0] == ':' ? "0" : "", host);
	s->tokens = srv->flood_burst;
	return s;
}

static void free_join(struct sess *s)
{
	free(s->join_list);
	free(s->join_keys);
	s->join_list = s->join_keys = s->join_cur = s->key_cur = NULL;
}

void sess_free(struct sess *s)
{
	if (s == NULL)
		return;
	/* Whoever accepted the connection counted it. */
	atomic_fetch_sub_explicit(&s->srv->conns, 1, memory_order_relaxed);
	if (s->flags & F_CLOSING)
		atomic_fetch_sub_explicit(&s->srv->leaving, 1, memory_order_relaxed);
	free_join(s);
	free(s->pass);
	free(s->away);
	free(s->chans);
	free(s->lookup_arg);
	free(s->in);
	irc_buf_free(&s->acc);
	for (unsigned i = 0; i < s->held_len; i++)
		irc_buf_free(&s->held[(s->held_head + i) % s->held_cap].text);
	free(s->held);
	free(s->invited);
	irc_buf_free(&s->label_out);
	free(s);
}

const char *sess_nick(const struct sess *s)
{
	return s->who.nick;
}

const char *sess_target_nick(const struct sess *s)
{
	return s->who.nick[0] != '\0' ? s->who.nick : "*";
}

/* ---------------------------------------------------------------------------------------------
 * Output
 */

/* server-time: each line gets @time=, merged into the tags it may already have. */
static int write_timed(struct sess *s, const char *data, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char tag[48];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t tl = strftime(tag, sizeof(tag), "@time=%Y-%m-%dT%H:%M:%S", &tm);
	tl += (size_t)snprintf(tag + tl, sizeof(tag) - tl, ".%03ldZ", ts.tv_nsec / 1000000);
	struct irc_buf out;
	irc_buf_init(&out);
	for (size_t off = 0; off < len;) {
		const char *end = memchr(data + off, '\n', len - off);
		size_t n = end != NULL ? (size_t)(end - (data + off)) + 1 : len - off;
		irc_buf_put(&out, tag, tl);
		if (data[off] == '@') { /* "@a=b :src CMD" -> "@time=...;a=b :src CMD" */
			irc_buf_put(&out, ";", 1);
			irc_buf_put(&out, data + off + 1, n - 1);
		} else {
			irc_buf_put(&out, " ", 1);
			irc_buf_put(&out, data + off, n);
		}
		off += n;
	}
	int rc = out.oom ? -ENOMEM : s->e->ops->write(s->e, out.data, out.len);
	irc_buf_free(&out);
	return rc;
}

static void write_now(struct sess *s, const char *data, size_t len)
{
	if (s->flags & F_CLOSING || len == 0)
		return;
	int rc = (s->who.caps & CAP_SERVER_TIME) ? write_timed(s, data, len)
	                                         : s->e->ops->write(s->e, data, len);
	if (rc == -ENOBUFS) {
		/* Over the cap: make room for one last line, and say why we hang up. */
		s->e->ops->set_sendq(s->e, s->srv->sendq + 1024, s->srv->sendq / 4);
		sess_quit(s, "Max SendQ exceeded", true);
	} else if (rc < 0 && rc != -EPIPE) { /* -EPIPE: sess_closed follows and says why */
		sess_quit(s, "Write error", false);
	}
}

/* Output in order. A command whose answer comes from another actor sends a numbered request
 * (sess_send_req); from then on, whatever the session would write waits in `held`, behind that
 * request's place, until the reply has come and gone out. Replies to later requests that come
 * first wait in their own places. So a client sees the replies to its commands in the order it
 * sent them, while the session goes on reading. At most SESS_HELD_MAX requests are awaited at
 * once (input waits beyond), and what is held counts against the send queue cap. */

static struct sess_held *held_at(struct sess *s, unsigned i)
{
	return &s->held[(s->held_head + i) % s->held_cap];
}

/* Appends a place to the ring; NULL when out of memory. */
static struct sess_held *held_push(struct sess *s, uint32_t seq)
{
	if (s->held_len == s->held_cap) {
		unsigned cap = s->held_cap ? s->held_cap * 2 : 4;
		struct sess_held *h = malloc(cap * sizeof(*h));
		if (h == NULL)
			return NULL;
		for (unsigned i = 0; i < s->held_len; i++)
			h[i] = *held_at(s, i);
		free(s->held);
		s->held = h;
		s->held_cap = cap;
		s->held_head = 0;
	}
	struct sess_held *h = &s->held[(s->held_head + s->held_len++) % s->held_cap];
	h->seq = seq;
	h->kind = HELD_TEXT;
	h->cmd = NULL;
	irc_buf_init(&h->text);
	return h;
}

/* "@tag" merged into the tags of each line in `text`, written to out. */
static void put_tagged(struct irc_buf *out, const char *tag, const char *text, size_t len)
{
	for (size_t off = 0; off < len;) {
		const char *end = memchr(text + off, '\n', len - off);
		size_t n = end != NULL ? (size_t)(end - (text + off)) + 1 : len - off;
		irc_buf_put(out, tag, strlen(tag));
		if (text[off] == '@') {
			irc_buf_put(out, ";", 1);
			irc_buf_put(out, text + off + 1, n - 1);
		} else {
			irc_buf_put(out, " ", 1);
			irc_buf_put(out, text + off, n);
		}
		off += n;
	}
}

/* The labeled command's response, as labeled-response says: ACK for none, the label on a
 * single line, a labeled-response batch for more. */
static void label_write(struct sess *s)
{
	struct irc_buf *r = &s->label_out, out;
	char tag[80];
	snprintf(tag, sizeof(tag), "@label=%s", s->label);
	irc_buf_init(&out);
	size_t lines = 0;
	for (size_t i = 0; i < r->len; i++)
		lines += r->data[i] == '\n';
	if (lines == 0) {
		irc_buf_linef(&out, "%s :%s ACK", tag, s->srv->name);
	} else if (lines == 1) {
		put_tagged(&out, tag, r->data, r->len);
	} else {
		char id[16], btag[24];
		snprintf(id, sizeof(id), "lr%u", ++s->batch_seq);
		snprintf(btag, sizeof(btag), "@batch=%s", id);
		irc_buf_linef(&out, "%s :%s BATCH +%s labeled-response", tag, s->srv->name, id);
		put_tagged(&out, btag, r->data, r->len);
		irc_buf_linef(&out, ":%s BATCH -%s", s->srv->name, id);
	}
	irc_buf_free(r);
	s->labeling = false;
	if (out.oom)
		sess_quit(s, "Out of memory", true);
	else
		write_now(s, out.data, out.len);
	irc_buf_free(&out);
}

/* Output that is part of a labeled response is gathered, not written. */
static void out_text(struct sess *s, const char *data, size_t len)
{
	if (!s->labeling) {
		write_now(s, data, len);
		return;
	}
	irc_buf_put(&s->label_out, data, len);
	if (s->label_out.oom || s->label_out.len > s->srv->sendq)
		sess_quit(s, "Max SendQ exceeded", true);
}

/* Writes the places at the front whose replies are in. */
static void held_flush(struct sess *s)
{
	while (s->held_len > 0 && held_at(s, 0)->seq == 0 && !(s->flags & F_CLOSING)) {
		struct sess_held *h = held_at(s, 0);
		s->held_head = (s->held_head + 1) % s->held_cap;
		s->held_len--;
		s->held_bytes -= h->text.len;
		if (h->kind == HELD_LABEL) {
			s->labeling = true;
			snprintf(s->label, sizeof(s->label), "%.*s", (int)h->text.len,
			         h->text.data ? h->text.data : "");
			irc_buf_init(&s->label_out);
		} else if (h->kind == HELD_LABEL_END) {
			label_write(s);
		} else {
			out_text(s, h->text.data, h->text.len);
		}
		irc_buf_free(&h->text);
	}
	if (s->held_len == 0 && s->held_cap > 8) { /* a small ring stays for the next request */
		free(s->held);
		s->held = NULL;
		s->held_cap = s->held_head = 0;
	}
}

static void held_put(struct sess *s, struct sess_held *h, const char *data, size_t len)
{
	irc_buf_put(&h->text, data, len);
	s->held_bytes += len;
	if (h->text.oom || s->held_bytes > s->srv->sendq)
		sess_quit(s, "Max SendQ exceeded", true);
}

void sess_write(struct sess *s, const char *data, size_t len)
{
	if (s->flags & F_CLOSING || len == 0)
		return;
	if (s->held_len == 0) {
		out_text(s, data, len);
		return;
	}
	struct sess_held *tail = held_at(s, s->held_len - 1);
	if (tail->seq != 0 || tail->kind != HELD_TEXT)
		tail = held_push(s, 0);
	if (tail == NULL)
		sess_quit(s, "Out of memory", true);
	else
		held_put(s, tail, data, len);
}

void sess_label_begin(struct sess *s, const char *label)
{
	struct sess_held *h = held_push(s, 0);
	if (h == NULL)
		return;
	h->kind = HELD_LABEL;
	irc_buf_put(&h->text, label, strlen(label));
	s->label_open = true;
}

void sess_label_end(struct sess *s)
{
	if (!s->label_open)
		return;
	s->label_open = false;
	struct sess_held *h = held_push(s, 0);
	if (h != NULL)
		h->kind = HELD_LABEL_END;
	held_flush(s);
}

/* The command a request answers, for the 400 a timeout gets; NULL for NOTICE, which never
 * gets an automatic reply. */
static const char *req_cmd(const struct cm_req *q)
{
	switch (q->op) {
	case OP_MSG:
	case OP_MSG_NICK:
		return q->tag == MSG_NOTICE ? NULL : chat_msg_cmd(q->tag);
	case OP_WHOIS:
		return "WHOIS";
	case OP_WHO:
	case OP_WHO_NICK:
		return "WHO";
	case OP_PART:
		return "PART";
	case OP_TOPIC:
		return "TOPIC";
	case OP_NAMES:
		return "NAMES";
	case OP_MODE:
		return "MODE";
	case OP_KICK:
		return "KICK";
	case OP_INVITE:
		return "INVITE";
	case OP_KILL:
		return "KILL";
	case OP_RESET:
		return "RESETCHAN";
	default:
		return NULL;
	}
}

/* Sends q as a request tagged `tag`; frees it if it could not go. */
static int ask(struct sess *s, actor_ref_t to, struct cm_req *q, uint64_t tag)
{
	if (q == NULL)
		return -ENOMEM;
	int rc = s->e->ops->request(s->e, to, &q->hdr, s->srv->request_timeout_ns, tag);
	if (rc < 0) {
		chat_msg_release(&q->hdr);
		s->e->ops->free(s->e, &q->hdr);
	}
	return rc;
}

int sess_ask(struct sess *s, actor_ref_t to, struct cm_req *q, enum sess_wait w)
{
	return ask(s, to, q, SESS_TAG_WAIT | (uint64_t)w);
}

void sess_send_req(struct sess *s, actor_ref_t to, struct cm_req *q)
{
	if (q == NULL)
		return;
	if (++s->req_seq == 0)
		s->req_seq = 1;
	struct sess_held *h = held_push(s, s->req_seq);
	if (h == NULL) {
		s->e->ops->free(s->e, &q->hdr);
		return;
	}
	h->cmd = req_cmd(q);
	if (ask(s, to, q, s->req_seq) < 0) /* nobody will answer: its place is empty */
		sess_req_done(s, s->req_seq, NULL, 0);
}

void sess_req_failed(struct sess *s, uint32_t seq, int error)
{
	for (unsigned i = 0; i < s->held_len; i++) {
		struct sess_held *h = held_at(s, i);
		if (h->seq != seq)
			continue;
		if (error == -ETIMEDOUT && h->cmd != NULL) {
			char line[128];
			size_t n = (size_t)snprintf(line, sizeof(line),
			                            ":%s 400 %s %s :Timed out; try again later\r\n",
			                            s->srv->name, sess_target_nick(s), h->cmd);
			sess_req_done(s, seq, line, n < sizeof(line) ? n : sizeof(line) - 1);
		} else { /* its receiver stopped (a channel failed, a user left): nothing */
			sess_req_done(s, seq, NULL, 0);
		}
		return;
	}
}

void sess_req_done(struct sess *s, uint32_t seq, const char *text, size_t len)
{
	for (unsigned i = 0; i < s->held_len; i++) {
		struct sess_held *h = held_at(s, i);
		if (h->seq != seq)
			continue;
		h->seq = 0;
		if (len > 0)
			held_put(s, h, text, len);
		if (!(s->flags & F_CLOSING))
			held_flush(s);
		return;
	}
}

void sess_printf(struct sess *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	size_t len = irc_vformat_line(line, sizeof(line), fmt, ap);
	va_end(ap);
	sess_write(s, line, len);
}

void sess_numeric(struct sess *s, const char *num, const char *fmt, ...)
{
	char rest[512], line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	size_t len = irc_format_line(line, sizeof(line), ":%s %s %s %s", s->srv->name, num,
	                             sess_target_nick(s), rest);
	sess_write(s, line, len);
}

/* ---------------------------------------------------------------------------------------------
 * Input
 *
 * Lines arrive one at a time (sess_line, sess_overlong). A line is handled at once when nothing
 * holds input back; otherwise it waits in `in`, behind the lines already waiting, until the
 * reply awaited comes (s->wait, or SESS_HELD_MAX places held) or flood control has a token for
 * it. Each waits as two bytes of length, then the line: as many bytes as it took on the wire
 * with its CR LF, so CHAT_INBUF_PAUSE and CHAT_INBUF_MAX count what the client sent. The length
 * IN_OVERLONG marks the place of a line that was too long: it is answered with 417 in its turn.
 */

#define IN_OVERLONG 0xffffu /* above any line's length: chat_line_max() <= IRC_LINE_MAX */

/* Appends a line (or IN_OVERLONG) to the input waiting; false when the client sent more than
 * we hold. */
static bool queue_line(struct sess *s, const char *line, size_t len)
{
	size_t bytes = 2 + (len == IN_OVERLONG ? 0 : len);
	if (s->inlen + bytes > CHAT_INBUF_MAX)
		return false;
	if (s->inlen + bytes > s->incap) {
		size_t cap = s->incap ? s->incap : 1024;
		while (cap < s->inlen + bytes)
			cap *= 2;
		char *in = realloc(s->in, cap);
		if (in == NULL)
			return false;
		s->in = in;
		s->incap = cap;
	}
	uint16_t n = (uint16_t)len;
	memcpy(s->in + s->inlen, &n, 2);
	if (bytes > 2)
		memcpy(s->in + s->inlen + 2, line, bytes - 2);
	s->inlen += bytes;
	return true;
}

/* Refills the token bucket; true when a line may be handled now. */
static bool flood_allows(struct sess *s)
{
	if (s->srv->flood_rate <= 0)
		return true;
	uint64_t now = s->e->ops->now_ns(s->e);
	s->tokens += (double)(now - s->refill_ns) / 1e9 * s->srv->flood_rate;
	if (s->tokens > s->srv->flood_burst)
		s->tokens = s->srv->flood_burst;
	s->refill_ns = now;
	if (s->tokens >= 1)
		return true;
	if (!(s->flags & F_FLOOD_TIMER)) { /* come back when one token has dripped in */
		uint64_t wait = (uint64_t)((1 - s->tokens) / s->srv->flood_rate * 1e9) + 1;
		if (s->e->ops->timer(s->e, wait, TAG_FLOOD) == 0)
			s->flags |= F_FLOOD_TIMER;
	}
	return false;
}

/* Whether the next line may be handled now. */
static bool input_ready(struct sess *s)
{
	return !(s->flags & F_CLOSING) && s->wait == WAIT_NONE && s->held_len < SESS_HELD_MAX &&
	       flood_allows(s);
}

static void too_long(struct sess *s)
{
	if (s->srv->flood_rate > 0)
		s->tokens -= 1;
	sess_numeric(s, "417", ":Input line was too long");
}

/* Handles a line; `line` has room for len + 1 bytes (irc_parse ends it with a NUL). */
static void handle_line(struct sess *s, char *line, size_t len)
{
	struct irc_msg m;
	/* At most IRC_TAGS_MAX bytes of tags ('@' to the space after them), then max_line. */
	size_t tags = 0;
	if (len > 0 && line[0] == '@') {
		const char *sp = memchr(line, ' ', len);
		tags = sp != NULL ? (size_t)(sp - line) + 1 : len;
	}
	if (tags > IRC_TAGS_MAX || len - tags + 2 > s->srv->max_line) {
		too_long(s);
		return;
	}
	bool utf8 = irc_valid_utf8(line, len);
	if (irc_parse(line, len, &m) < 0)
		return;
	if (s->srv->flood_rate > 0)
		s->tokens -= 1;
	char label[65];
	bool labeled = (s->who.caps & CAP_LABELED_RESPONSE) &&
	               irc_tag_value(m.tags, "label", label, sizeof(label));
	if (labeled)
		sess_label_begin(s, label);
	if (!utf8) /* UTF8ONLY: nothing that is not UTF-8 gets to anyone */
		sess_printf(s,
		            ":%s FAIL %.32s INVALID_UTF8 :Message rejected, your message contained "
		            "invalid UTF-8",
		            s->srv->name, m.cmd);
	else
		sess_command(s, &m);
	if (labeled && s->wait == WAIT_NONE) /* else when the wait ends (sess_handle) */
		sess_label_end(s);
}

/* Handles a line or an overlong line's place (len IN_OVERLONG), copied where the parser may
 * write. */
static void handle_input(struct sess *s, const char *line, size_t len)
{
	char buf[IRC_LINE_MAX + 1];
	if (len == IN_OVERLONG) {
		too_long(s);
		return;
	}
	memcpy(buf, line, len);
	handle_line(s, buf, len);
}

/* Pauses reading while too much input waits, so a client that floods or waits on a JOIN holds
 * a bounded amount of our memory; TCP pushes back on it. */
static void flow_control(struct sess *s)
{
	if (!(s->flags & F_PAUSED) && s->inlen > CHAT_INBUF_PAUSE) {
		if (s->e->ops->pause(s->e, true) == 0)
			s->flags |= F_PAUSED;
	} else if ((s->flags & F_PAUSED) && s->inlen <= CHAT_INBUF_PAUSE / 2) {
		if (s->e->ops->pause(s->e, false) == 0)
			s->flags &= ~F_PAUSED;
	}
}

/* Handles the lines waiting, as far as waits and flood control allow. */
static void process(struct sess *s)
{
	size_t off = 0;
	while (off < s->inlen && input_ready(s)) {
		uint16_t len;
		memcpy(&len, s->in + off, 2);
		off += 2;
		handle_input(s, s->in + off, len);
		off += len == IN_OVERLONG ? 0 : len;
	}
	if (s->flags & F_CLOSING) {
		s->inlen = 0;
	} else if (off > 0) {
		memmove(s->in, s->in + off, s->inlen - off);
		s->inlen -= off;
	}
	if (s->inlen == 0 && s->incap > 0) { /* an idle client keeps no input buffer */
		free(s->in);
		s->in = NULL;
		s->incap = 0;
	}
	if (!(s->flags & F_CLOSING))
		flow_control(s);
}

/* A line (or IN_OVERLONG): handled now if nothing waits before it and nothing holds it back,
 * else queued. */
static void input(struct sess *s, struct chat_env *e, const char *line, size_t len)
{
	s->e = e;
	if (s->flags & F_CLOSING)
		return;
	s->last_rx_ns = e->ops->now_ns(e);
	s->flags &= ~F_PING; /* anything from the client shows it is alive */
	if (s->inlen == 0 && input_ready(s)) {
		handle_input(s, line, len);
		return;
	}
	if (!queue_line(s, line, len)) {
		sess_quit(s, "Excess Flood", true);
		return;
	}
	process(s);
}

void sess_line(struct sess *s, struct chat_env *e, const char *line, size_t len)
{
	input(s, e, line, len > chat_line_max(s->srv) ? IN_OVERLONG : len);
}

void sess_overlong(struct sess *s, struct chat_env *e)
{
	input(s, e, NULL, IN_OVERLONG);
}

/* ---------------------------------------------------------------------------------------------
 * Life
 */

static uint64_t tick_ns(const struct chat_srv *srv)
{
	uint64_t t = srv->ping_interval_ns < srv->ping_timeout_ns ? srv->ping_interval_ns
	                                                          : srv->ping_timeout_ns;
	return t / 2 > 0 ? t / 2 : 1;
}

/* From here the connection only says goodbye: LUSERS counts it neither as a user nor as an
 * unknown connection, though it stays open (and counted in `conns`) until the session ends. */
static void mark_closing(struct sess *s)
{
	s->flags |= F_CLOSING;
	atomic_fetch_add_explicit(&s->srv->leaving, 1, memory_order_relaxed);
}

void sess_start(struct sess *s, struct chat_env *e, bool full)
{
	s->e = e;
	s->self = e->self;
	s->worker = e->worker;
	s->flags |= F_STARTED;
	s->connected_ns = s->last_rx_ns = s->idle_ns = s->refill_ns = e->ops->now_ns(e);
	s->signon = time(NULL);
	if (full) {
		static const char bye[] = "ERROR :Server full\r\n";
		e->ops->write(e, bye, sizeof(bye) - 1);
		mark_closing(s);
		e->ops->close(e, CHAT_CLOSE_GRACEFUL);
		e->ops->timer(e, CHAT_LINGER_MS * 1000000ull, TAG_LINGER);
		return;
	}
	e->ops->set_sendq(e, s->srv->sendq, s->srv->sendq / 4);
	actor_msg_t *hello = chat_msg_new(e, sizeof(*hello), CM_SESS_HELLO);
	chat_send(e, chat_fanout_at(s->srv, s->worker), hello);
	e->ops->timer(e, tick_ns(s->srv), TAG_TICK);
}

/* The actor's end: the connection is closed and the runtime stops us after this message. */
static void finish(struct sess *s, enum chat_close how)
{
	if (s->flags & F_EXITED)
		return;
	s->flags |= F_EXITED;
	s->e->ops->close(s->e, how);
	for (unsigned i = 0; i < s->nchans; i++) /* else the channels keep our watches */
		s->e->ops->monitor(s->e, s->chans[i].ref, false);
	/* The fan-out waits for this at shutdown: only now is the client told all we had to say. */
	actor_msg_t *gone = chat_msg_new(s->e, sizeof(*gone), CM_SESS_GONE);
	chat_send(s->e, chat_fanout_at(s->srv, s->worker), gone);
	s->e->ops->exit(s->e, ACTOR_REASON_NORMAL);
}

void sess_quit(struct sess *s, const char *reason, bool error)
{
	struct chat_env *e = s->e;
	if (s->flags & F_CLOSING)
		return;
	held_flush(s); /* the replies that are in go out first; the rest are dropped */
	if (s->flags & F_CLOSING)
		return; /* that write hit the cap, and said goodbye */
	if (error) {
		char line[512];
		size_t len = irc_format_line(line, sizeof(line), "ERROR :Closing Link: %s (%s)",
		                             s->who.host, reason);
		e->ops->write(e, line, len);
	}
	mark_closing(s);

	/* Everyone who shares a channel hears why we left: each channel relays it once, and their
	 * sessions drop the copies from other channels by the dedup key. */
	const char *args[] = {reason};
	for (unsigned i = 0; i < s->nchans; i++) {
		struct cm_req *q = sess_req(s, OP_QUIT, s->chans[i].name, 1, args);
		if (q != NULL)
			q->dedup = sess_dedup_key(s, UINT64_MAX);
		sess_send(s, s->chans[i].ref, q);
	}
	if (s->wait == WAIT_JOIN) /* the JOIN on its way: leave that channel too, after it */
		sess_send(s, chat_registry_for(s->srv, s->joining),
		          sess_req(s, OP_QUIT, s->joining, 1, args));
	if (s->wait == WAIT_NICK) /* a claim on its way: let go of it once it is made */
		sess_send(s, chat_registry_for(s->srv, s->claim),
		          sess_req(s, OP_NICK_RELEASE, s->claim, 0, NULL));
	if (s->flags & F_NICK)
		sess_send(s, chat_registry_for(s->srv, s->who.nick),
		          sess_req(s, OP_NICK_RELEASE, s->who.nick, 0, NULL));
	if (s->flags & F_REGISTERED) {
		atomic_fetch_sub_explicit(&s->srv->users, 1, memory_order_relaxed);
		if (s->who.invisible)
			atomic_fetch_sub_explicit(&s->srv->invisible, 1, memory_order_relaxed);
	}
	if (s->who.oper)
		atomic_fetch_sub_explicit(&s->srv->opers_online, 1, memory_order_relaxed);
	s->nchans = 0;
	s->wait = WAIT_NONE;
	free_join(s);

	if (error) { /* let the client read ERROR and hang up first; the linger timer ends it */
		e->ops->close(e, CHAT_CLOSE_GRACEFUL);
		if (e->ops->timer(e, CHAT_LINGER_MS * 1000000ull, TAG_LINGER) < 0)
			finish(s, CHAT_CLOSE_NOW);
	} else {
		finish(s, CHAT_CLOSE_NOW);
	}
}

void sess_closed(struct sess *s, struct chat_env *e, int error)
{
	s->e = e;
	if (error == -EMSGSIZE && !(s->flags & F_CLOSING)) {
		/* IRC_NOEOL_MAX bytes without a line end (server.c): the connection reads no more
		 * but can still be written to, so the client hears why, as for any error. */
		sess_quit(s, "Input line too long", true);
		return;
	}
	if (!(s->flags & F_CLOSING)) {
		char reason[96];
		if (error == 0)
			snprintf(reason, sizeof(reason), "Remote host closed the connection");
		else if (error == -EMSGSIZE) /* IRC_NOEOL_MAX bytes without a line end (server.c) */
			snprintf(reason, sizeof(reason), "Input line too long");
		else
			snprintf(reason, sizeof(reason), "%s", strerror(-error));
		sess_quit(s, reason, false);
	}
	finish(s, CHAT_CLOSE_NOW);
}

void sess_drained(struct sess *s, struct chat_env *e)
{
	s->e = e; /* nothing waits on it: we never queue past the cap, we hang up */
}

void sess_timer(struct sess *s, struct chat_env *e, uint64_t tag)
{
	s->e = e;
	if (tag == TAG_LINGER) {
		finish(s, CHAT_CLOSE_ABORT);
		return;
	}
	if (s->flags & F_CLOSING)
		return;
	if (tag == TAG_FLOOD) {
		s->flags &= ~F_FLOOD_TIMER;
		process(s);
		return;
	}
	uint64_t now = e->ops->now_ns(e);
	const struct chat_srv *srv = s->srv;
	if (!(s->flags & F_REGISTERED) &&
	    now - s->connected_ns >= srv->ping_interval_ns + srv->ping_timeout_ns) {
		sess_quit(s, "Registration timed out", true);
		return;
	}
	if ((s->flags & F_PING) && now - s->ping_ns >= srv->ping_timeout_ns) {
		char reason[64];
		snprintf(reason, sizeof(reason), "Ping timeout: %llu seconds",
		         (unsigned long long)((now - s->last_rx_ns) / 1000000000ull));
		sess_quit(s, reason, true);
		return;
	}
	if (!(s->flags & F_PING) && now - s->last_rx_ns >= srv->ping_interval_ns) {
		sess_printf(s, "PING :%s", srv->name);
		s->flags |= F_PING;
		s->ping_ns = now;
	}
	e->ops->timer(e, tick_ns(srv), TAG_TICK);
}

void sess_handle(struct sess *s, struct chat_env *e, actor_msg_t *m)
{
	s->e = e;
	if (m->type == CM_SHUTDOWN) {
		sess_quit(s, "Server shutting down", true);
		return;
	}
	if (m->type == CM_SLOW) { /* we could not keep up with its sender (srv.c, "Slow clients") */
		sess_quit(s, "Max SendQ exceeded", true);
		return;
	}
	if (m->type == CM_LINE || m->type == CM_WALLOPS) {
		struct cm_line *l = (struct cm_line *)m;
		if (m->type == CM_WALLOPS ? (s->flags & F_WALLOPS) != 0
		                          : l->dedup == 0 || !sess_dedup_seen(s, l->dedup))
			sess_write(s, l->line->data, l->line->len);
		chat_line_unref(l->line);
		l->line = NULL;
		return;
	}
	if (s->flags & F_CLOSING)
		return;
	sess_reply(s, m);
	if (s->wait == WAIT_NONE && s->label_open)
		sess_label_end(s);
	if (s->wait == WAIT_NONE && s->held_len < SESS_HELD_MAX && s->inlen > 0)
		process(s);
}

/* ---------------------------------------------------------------------------------------------
 * Registration
 */

void sess_lusers(struct sess *s)
{
	struct chat_srv *srv = s->srv;
	unsigned users = atomic_load_explicit(&srv->users, memory_order_relaxed);
	unsigned inv = atomic_load_explicit(&srv->invisible, memory_order_relaxed);
	unsigned conns = atomic_load_explicit(&srv->conns, memory_order_relaxed);
	unsigned chans = atomic_load_explicit(&srv->channels, memory_order_relaxed);
	unsigned max = atomic_load_explicit(&srv->max_users, memory_order_relaxed);
	unsigned opers = atomic_load_explicit(&srv->opers_online, memory_order_relaxed);
	unsigned leaving = atomic_load_explicit(&srv->leaving, memory_order_relaxed);
	unsigned unknown = conns > users + leaving ? conns - users - leaving : 0;
	inv = inv < users ? inv : users;

	sess_numeric(s, "251", ":There are %u users and %u invisible on 1 servers", users - inv,
	             inv);
	if (opers > 0)
		sess_numeric(s, "252", "%u :operator(s) online", opers);
	if (unknown > 0)
		sess_numeric(s, "253", "%u :unknown connection(s)", unknown);
	sess_numeric(s, "254", "%u :channels formed", chans);
	sess_numeric(s, "255", ":I have %u clients and 0 servers", users);
	sess_numeric(s, "265", "%u %u :Current local users %u, max %u", users, max, users, max);
	sess_numeric(s, "266", "%u %u :Current global users %u, max %u", users, max, users, max);
}

void sess_motd(struct sess *s)
{
	struct chat_srv *srv = s->srv;
	if (srv->motd == NULL) {
		sess_numeric(s, "422", ":MOTD File is missing");
		return;
	}
	sess_numeric(s, "375", ":- %s Message of the day - ", srv->name);
	for (size_t i = 0; i < srv->motd_lines; i++)
		sess_numeric(s, "372", ":- %s", srv->motd[i]);
	sess_numeric(s, "376", ":End of /MOTD command.");
}

void sess_invited(struct sess *s, const char *chan, bool add)
{
	for (unsigned i = 0; i < s->ninvited; i++)
		if (irc_casecmp(s->invited[i], chan) == 0) {
			memmove(s->invited[i], s->invited[i + 1],
			        (s->ninvited - i - 1) * sizeof(s->invited[0]));
			s->ninvited--;
			break;
		}
	if (!add)
		return;
	if (s->invited == NULL &&
	    (s->invited = calloc(SESS_INVITED, sizeof(s->invited[0]))) == NULL)
		return;
	if (s->ninvited == SESS_INVITED)
		sess_invited(s, s->invited[0], false);
	snprintf(s->invited[s->ninvited++], sizeof(s->invited[0]), "%s", chan);
}

void sess_who_changed(struct sess *s, unsigned what)
{
	for (unsigned i = 0; i < s->nchans; i++) {
		const char *away = s->away;
		struct cm_req *q = sess_req(s, OP_AWAY, s->chans[i].name, away ? 1 : 0, &away);
		if (q != NULL)
			q->tag = what;
		sess_send(s, s->chans[i].ref, q);
	}
	sess_send(s, chat_registry_for(s->srv, s->who.nick),
	          sess_req(s, OP_USER_UPDATE, s->who.nick, 0, NULL));
}

static void welcome(struct sess *s)
{
	struct chat_srv *srv = s->srv;
	sess_numeric(s, "001", ":Welcome to the %s Internet Relay Chat Network %s!%s@%s",
	             srv->network, s->who.nick, s->who.user, s->who.host);
	sess_numeric(s, "002", ":Your host is %s, running version %s", srv->name, srv->version);
	sess_numeric(s, "003", ":This server was created %s", srv->created);
	sess_numeric(s, "004", "%s %s iow biklmnostv bklov", srv->name, srv->version);
	char lines[4][400];
	unsigned n = chat_isupport(srv, lines, 4);
	for (unsigned i = 0; i < n; i++)
		sess_numeric(s, "005", "%s :are supported by this server", lines[i]);
	sess_lusers(s);
	sess_motd(s);
}

void sess_try_register(struct sess *s)
{
	unsigned need = F_NICK | F_USER;
	if ((s->flags & (need | F_CAP | F_REGISTERED)) != need)
		return;
	const char *pw = s->srv->password;
	if (pw != NULL && (s->pass == NULL || strcmp(s->pass, pw) != 0)) {
		sess_numeric(s, "464", ":Password incorrect");
		sess_quit(s, "Bad Password", true);
		return;
	}
	s->flags |= F_REGISTERED;
	unsigned users = atomic_fetch_add_explicit(&s->srv->users, 1, memory_order_relaxed) + 1;
	unsigned max = atomic_load_explicit(&s->srv->max_users, memory_order_relaxed);
	while (users > max &&
	       !atomic_compare_exchange_weak_explicit(&s->srv->max_users, &max, users,
	                                              memory_order_relaxed, memory_order_relaxed))
		;
	/* Others may now find us: the registry learns who we are. */
	sess_send(s, chat_registry_for(s->srv, s->who.nick),
	          sess_req(s, OP_USER_UPDATE, s->who.nick, 0, NULL));
	welcome(s);
}

/* ---------------------------------------------------------------------------------------------
 * Dropping the copies of one event that several channels relay
 */

uint64_t sess_dedup_key(const struct sess *s, uint64_t seq)
{
	uint64_t k = s->self.id * 0x9e3779b97f4a7c15ull ^ (seq * 0xc2b2ae3d27d4eb4full);
	return k != 0 ? k : 1;
}

bool sess_dedup_seen(struct sess *s, uint64_t key)
{
	for (unsigned i = 0; i < SESS_DEDUP; i++)
		if (s->dedup[i] == key)
			return true;
	s->dedup[s->dedup_pos] = key;
	s->dedup_pos = (s->dedup_pos + 1) % SESS_DEDUP;
	return false;
}
