/* conn.c: what every part of the broker service shares (broker.h): the system's broker and
 * its lifetimes, errors, notices to refused callers, and subjects, headers and messages
 * checked, built and copied.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "services/broker/broker.h"

struct broker *actor__broker_of(actor_system_t *sys)
{
	return sys->svc_shared[SVC_BROKER];
}

struct broker *actor__broker_ready(actor_ctx_t *ctx, int *err)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL) {
		*err = -EINVAL;
		return NULL;
	}
	struct broker *b = actor__broker_of(w->sys);
	int st = atomic_load_explicit(&b->state, memory_order_acquire);
	if (st == BROKER_NONE || st == BROKER_CLOSED || atomic_load(&b->closing)) {
		*err = -ENOTCONN;
		return NULL;
	}
	return b;
}

int actor__broker_status(natsStatus s)
{
	switch (s) {
	case NATS_OK:
		return 0;
	case NATS_INSUFFICIENT_BUFFER:
		return -EAGAIN;
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED:
		return -ENOTCONN;
	case NATS_MAX_PAYLOAD:
		return -EMSGSIZE;
	case NATS_NO_MEMORY:
		return -ENOMEM;
	case NATS_INVALID_SUBJECT:
	case NATS_INVALID_ARG:
	case NATS_INVALID_QUEUE_NAME:
		return -EINVAL;
	case NATS_TIMEOUT:
		return -ETIMEDOUT;
	case NATS_NO_SERVER:
		return -ECONNREFUSED;
	default:
		return -EPROTO;
	}
}

uint64_t actor__broker_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------
 * Lifetimes (broker.h)
 */

bool actor__broker_enter(struct broker *b)
{
	/* seq_cst both: a callback that misses `closing` is counted in `active` before sys_fini
	 * reads it (sys_fini stores `closing`, then reads `active`). */
	atomic_fetch_add(&b->active, 1);
	if (atomic_load(&b->closing)) {
		atomic_fetch_sub(&b->active, 1);
		return false;
	}
	return true;
}

void actor__broker_leave(struct broker *b)
{
	atomic_fetch_sub_explicit(&b->active, 1, memory_order_release);
}

void actor__broker_unref(struct broker *b)
{
	pthread_mutex_lock(&b->lock);
	b->refs--;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void actor__bsub_unref(struct bsub *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct broker *b = s->b;
	free(s->ord); /* ordered.c's, plain memory by now */
	if (s->ns != NULL)
		actor__broker_bury(b, &s->grave, s->ns, s); /* before the unref: sys_fini digs */
	else
		free(s);
	actor__broker_unref(b);
}

/* ---------------------------------------------------------------------------------------------
 * Graves
 *
 * libnats 3.4 (Debian 12's) has a race in its read loop (nats.c issue 637, fixed in 3.6.1):
 * natsConn_processMsg looks a message's subscription up under the connection's table lock, lets
 * go of the lock, and only then copies the message and locks the subscription, holding no
 * reference to it. A subscription ended meanwhile on another thread (an unsubscribe, or an
 * ordered consumer's generation dropped) is taken out of the table, its delivery thread ends and
 * calls the on-complete callback, and the owner's destroy frees it: the read loop then locks
 * freed memory, and libnats aborts ("an ordered consumer ... through a pause and a crash" hit it
 * about one run in fifteen). So a subscription is not destroyed at its on-complete callback but
 * buried, and dug up once the read loop must be past any lookup that could have found it:
 *   - Marks. The retry thread takes the graves buried so far, then publishes a mark, an empty
 *     message to "<inbox>.g<n>" (the library's own inbox, so it comes back to this connection).
 *     Those graves left libnats's table before the mark was sent, and the read loop handles the
 *     mark's message after any it was handling then; a reconnect joins the old read loop before
 *     a new one starts. So once the inbox's delivery thread has seen mark n or a later one
 *     (js.c, on_answer), the graves taken before n was sent are destroyed. A mark not back
 *     after GRAVE_RESEND_NS is sent again (any mark after the take will do, so a slow trip
 *     still counts); a mark above the last sent is not ours and is ignored; marks are sent only
 *     while connected. (The reconnect thread's resending of subscriptions also walks them
 *     without references, but under the connection's lock, which an unsubscribe takes too.)
 *     A flush would have said as much, but it blocks the retry thread for a round trip.
 *   - At the end: sys_fini digs everything once every reference is gone, which includes the
 *     connection's, dropped at its closed event; libnats posts that after joining its read loop.
 * The graves are a stack: push by CAS (any thread), take all by exchange (the retry thread, or
 * sys_fini), so no ABA. Release on the push pairs with acquire on the take: the digger sees the
 * grave's fields. The taken graves and the marks sent are the retry thread's alone (then
 * sys_fini's, after it has joined that thread); the mark seen is stored by the inbox's delivery
 * thread, release, and loaded by the retry thread, acquire.
 */

#define GRAVE_RESEND_NS 1000000000ull /* a mark not back by then is sent again */
#define GRAVE_WARN_AFTER 10           /* resends of one wait before saying so, once */

static void graves_push(struct broker *b, struct bgrave *first, struct bgrave *last)
{
	struct bgrave *top = atomic_load_explicit(&b->graves, memory_order_relaxed);
	do
		last->next = top;
	while (!atomic_compare_exchange_weak_explicit(&b->graves, &top, first, memory_order_release,
	                                              memory_order_relaxed));
}

void actor__broker_bury(struct broker *b, struct bgrave *g, natsSubscription *ns, void *mem)
{
	g->ns = ns;
	g->mem = mem;
	graves_push(b, g, g);
}

static uint64_t graves_free(struct bgrave *g)
{
	uint64_t n = 0;
	for (; g != NULL; n++) {
		struct bgrave *next = g->next;
		natsSubscription_Destroy(g->ns);
		free(g->mem);
		g = next;
	}
	return n;
}

/* Publishes the next mark; returns its number. */
static uint64_t mark_send(struct broker *b, uint64_t now)
{
	/* Only this thread adds; relaxed: the mark's own trip through libnats orders it before
	 * actor__broker_mark_seen reads it. */
	uint64_t n = atomic_load_explicit(&b->grave_marks_sent, memory_order_relaxed) + 1;
	atomic_store_explicit(&b->grave_marks_sent, n, memory_order_relaxed);
	char subject[96];
	snprintf(subject, sizeof(subject), "%s.g%" PRIx64, b->inbox, n);
	b->grave_mark_ns = now;
	(void)natsConnection_PublishString(b->nc, subject, ""); /* if lost: sent again */
	return n;
}

void actor__broker_mark_seen(struct broker *b, uint64_t mark)
{
	/* Above the last sent: not ours (anyone allowed to publish to the inbox could send it),
	 * and it must not let graves go early. */
	if (mark > atomic_load_explicit(&b->grave_marks_sent, memory_order_relaxed))
		return;
	/* One delivery thread, and marks come back in the order sent: a plain store would do,
	 * but a resent mark may pass one still on its way after a reconnect. */
	uint64_t seen = atomic_load_explicit(&b->grave_mark_seen, memory_order_relaxed);
	while (mark > seen &&
	       !atomic_compare_exchange_weak_explicit(&b->grave_mark_seen, &seen, mark,
	                                              memory_order_release, memory_order_relaxed))
		;
}

void actor__broker_dig(struct broker *b, bool closed)
{
	uint64_t n;
	if (closed) {
		n = graves_free(b->graves_taken);
		b->graves_taken = NULL;
		n += graves_free(atomic_exchange_explicit(&b->graves, NULL, memory_order_acquire));
		atomic_fetch_add_explicit(&b->graves_dug, n, memory_order_relaxed);
		return;
	}
	/* Down: a mark would wait in libnats's reconnect buffer, beside the callers' publishes. */
	if (atomic_load_explicit(&b->state, memory_order_acquire) != BROKER_UP)
		return;
	uint64_t now = actor__broker_now_ns();
	if (b->graves_taken != NULL) {
		/* Any mark sent after the take will do: a resend does not move the bar. */
		if (atomic_load_explicit(&b->grave_mark_seen, memory_order_acquire) <
		    b->grave_wait) {
			if (now - b->grave_mark_ns < GRAVE_RESEND_NS)
				return;
			(void)mark_send(b, now);
			if (++b->grave_resends == GRAVE_WARN_AFTER && !b->grave_warned) {
				b->grave_warned = true;
				fprintf(stderr,
				        "libactor: broker: the library's marks to %s.* do not come "
				        "back "
				        "(may it publish there?): ended subscriptions are kept "
				        "until the "
				        "system ends\n",
				        b->inbox);
			}
			return;
		}
		n = graves_free(b->graves_taken);
		atomic_fetch_add_explicit(&b->graves_dug, n, memory_order_relaxed);
		b->graves_taken = NULL;
		b->grave_resends = 0;
	}
	b->graves_taken = atomic_exchange_explicit(&b->graves, NULL, memory_order_acquire);
	if (b->graves_taken != NULL)
		b->grave_wait = mark_send(b, now);
}

/* ---------------------------------------------------------------------------------------------
 * Notices
 */

int actor__broker_ref_add(actor_ref_t **v, uint32_t *n, uint32_t *cap, actor_ref_t r)
{
	for (uint32_t i = 0; i < *n; i++)
		if ((*v)[i].id == r.id)
			return 0;
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 8;
		actor_ref_t *nv = realloc(*v, c * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = r;
	return 0;
}

void actor__broker_ref_del(actor_ref_t *v, uint32_t *n, actor_ref_t r)
{
	for (uint32_t i = 0; i < *n; i++)
		if (v[i].id == r.id) {
			v[i] = v[--*n];
			return;
		}
}

void actor__broker_wait_room(struct broker *b, actor_ref_t who)
{
	(void)actor__broker_ref_add(&b->waiters, &b->nwaiters, &b->capwaiters, who);
}

void actor__broker_notify_room(struct broker *b)
{
	for (uint32_t i = 0; i < b->nwaiters; i++)
		(void)actor__send_internal(b->sys, b->waiters[i], ACTOR_REF_NONE,
		                           ACTOR_MSG_BROKER_WRITABLE, NULL, 0);
	b->nwaiters = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Checks and messages
 */

int actor__broker_check_subject(const char *s, bool wild)
{
	if (s == NULL)
		return -EINVAL;
	size_t n = strnlen(s, ACTOR_BROKER_SUBJECT_MAX + 1);
	if (n == 0 || n > ACTOR_BROKER_SUBJECT_MAX)
		return -EINVAL;
	size_t tok = 0; /* bytes of the current token */
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' || c == '\0') {
			if (tok == 0)
				return -EINVAL; /* an empty token */
			tok = 0;
			continue;
		}
		if (c <= ' ' || c == 0x7f)
			return -EINVAL;
		if (c == '*' || c == '>') {
			/* A wildcard is a whole token; ">" only the last one. */
			bool whole = tok == 0 && (s[i + 1] == '.' || s[i + 1] == '\0');
			if (!wild || !whole || (c == '>' && s[i + 1] != '\0'))
				return -EINVAL;
		}
		tok++;
	}
	return 0;
}

static int check_header(const actor_broker_header_t *h)
{
	if (h->name == NULL || h->value == NULL || h->name[0] == '\0')
		return -EINVAL;
	for (const char *p = h->name; *p; p++)
		if (*p <= ' ' || *p == ':' || *p == 0x7f)
			return -EINVAL;
	for (const char *p = h->value; *p; p++)
		if (*p == '\r' || *p == '\n')
			return -EINVAL;
	return 0;
}

int actor__broker_check_pub(const actor_broker_pub_t *pub)
{
	if (pub == NULL || (pub->data == NULL && pub->len > 0) ||
	    (pub->headers == NULL && pub->nheaders > 0))
		return -EINVAL;
	int rc = actor__broker_check_subject(pub->subject, false);
	if (rc == 0 && pub->reply != NULL)
		rc = actor__broker_check_subject(pub->reply, false);
	for (size_t i = 0; rc == 0 && i < pub->nheaders; i++)
		rc = check_header(&pub->headers[i]);
	if (rc == 0 && pub->msg_id != NULL) {
		actor_broker_header_t h = {"Nats-Msg-Id", pub->msg_id};
		rc = pub->msg_id[0] == '\0' ? -EINVAL : check_header(&h);
	}
	if (rc == 0 && pub->len > INT32_MAX)
		rc = -EMSGSIZE;
	return rc;
}

int actor__broker_msg_new(const actor_broker_pub_t *pub, const char *reply, natsMsg **out)
{
	natsMsg *m;
	natsStatus s = natsMsg_Create(&m, pub->subject, reply, pub->data, (int)pub->len);
	for (size_t i = 0; s == NATS_OK && i < pub->nheaders; i++)
		s = natsMsgHeader_Add(m, pub->headers[i].name, pub->headers[i].value);
	if (s == NATS_OK && pub->msg_id != NULL)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", pub->msg_id);
	if (s != NATS_OK) {
		if (s != NATS_NO_MEMORY)
			natsMsg_Destroy(m);
		return actor__broker_status(s);
	}
	*out = m;
	return 0;
}

int actor__broker_copy_msg(natsMsg *msg, uint32_t type, size_t before, actor_msg_t **out,
                           actor_broker_msg_t **bm)
{
	const char *subj = natsMsg_GetSubject(msg), *reply = natsMsg_GetReply(msg);
	size_t sl = subj ? strlen(subj) : 0, rl = reply ? strlen(reply) : 0;
	size_t dl = (size_t)natsMsg_GetDataLength(msg);
	const char **keys = NULL;
	int nkeys = 0;
	size_t hl = 0;
	if (natsMsgHeader_Keys(msg, &keys, &nkeys) != NATS_OK)
		nkeys = 0, keys = NULL;
	for (int i = 0; i < nkeys; i++) {
		const char **vals;
		int nv;
		if (natsMsgHeader_Values(msg, keys[i], &vals, &nv) != NATS_OK)
			continue;
		for (int j = 0; j < nv; j++)
			hl += strlen(keys[i]) + 1 + strlen(vals[j]) + 1;
		free((void *)vals);
	}
	size_t size =
	    sizeof(actor_msg_t) + before + sizeof(actor_broker_msg_t) + sl + 1 + rl + 1 + hl + dl;
	if (size > ACTOR_MSG_MAX + sizeof(actor_msg_t)) {
		free((void *)keys);
		return -EMSGSIZE;
	}
	int rc = actor_msg_alloc(size, type, out);
	if (rc < 0) {
		free((void *)keys);
		return rc;
	}
	actor_broker_msg_t *m = (actor_broker_msg_t *)((char *)actor_msg_data(*out) + before);
	*m = (actor_broker_msg_t){.subject_len = (uint32_t)sl,
	                          .reply_len = (uint32_t)rl,
	                          .headers_len = (uint32_t)hl,
	                          .data_len = (uint32_t)dl};
	char *p = m->bytes;
	memcpy(p, subj ? subj : "", sl + 1);
	p += sl + 1;
	memcpy(p, reply ? reply : "", rl + 1);
	p += rl + 1;
	char *hend = p + hl;
	for (int i = 0; i < nkeys; i++) {
		const char **vals;
		int nv;
		if (natsMsgHeader_Values(msg, keys[i], &vals, &nv) != NATS_OK)
			continue;
		for (int j = 0; j < nv && p < hend; j++) {
			size_t kl = strlen(keys[i]) + 1, vl = strlen(vals[j]) + 1;
			memcpy(p, keys[i], kl);
			memcpy(p + kl, vals[j], vl);
			p += kl + vl;
		}
		free((void *)vals);
	}
	free((void *)keys);
	if (dl > 0)
		memcpy(hend, natsMsg_GetData(msg), dl);
	*bm = m;
	return 0;
}

const char *actor_broker_header(const actor_broker_msg_t *m, const char *name)
{
	if (m == NULL || name == NULL)
		return NULL;
	const char *p = m->bytes + m->subject_len + 1 + m->reply_len + 1, *end = p + m->headers_len;
	while (p < end) {
		const char *v = p + strlen(p) + 1;
		if (strcasecmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

int actor__broker_split(const char *list, char **copy, char ***out, int *n)
{
	char *c = strdup(list);
	if (c == NULL)
		return -ENOMEM;
	int cap = 1;
	for (const char *p = list; *p; p++)
		cap += *p == ',';
	char **v = calloc((size_t)cap, sizeof(*v));
	if (v == NULL) {
		free(c);
		return -ENOMEM;
	}
	int k = 0;
	for (char *save, *tok = strtok_r(c, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		size_t l = strlen(tok);
		while (l > 0 && tok[l - 1] == ' ')
			tok[--l] = '\0';
		if (l == 0 || strchr(tok, ' ') != NULL) {
			k = 0;
			break;
		}
		v[k++] = tok;
	}
	if (k == 0) {
		free(c);
		free(v);
		return -EINVAL;
	}
	*copy = c;
	*out = v;
	*n = k;
	return 0;
}

int actor__broker_outside(actor_system_t *sys, struct broker **out)
{
	if (sys == NULL)
		return -EINVAL;
	if (actor__self_worker(sys) != NULL)
		return -EDEADLK;
	struct broker *b = actor__broker_of(sys);
	int st = atomic_load_explicit(&b->state, memory_order_acquire);
	if (st == BROKER_NONE || st == BROKER_CLOSED)
		return -ENOTCONN;
	*out = b;
	return 0;
}
