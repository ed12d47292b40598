/* js.c: requests over the broker and JetStream (actor.h, "Broker: NATS and JetStream"):
 * actor_broker_request, JetStream publishes, key-value claims and consumers, all answered as
 * ACTOR_MSG_REPLY through the request service; and the blocking calls that set JetStream up.
 *
 * How a request travels. The requester opens a pending request on its worker
 * (actor__request_open: its timeout, tag and cancellation are the request service's) and a
 * record here, struct breq, in the broker's table under the lock; the message goes out with the
 * reply subject "<inbox>.<record's id>". The library's one subscription to "<inbox>.*" gets the
 * answer on a libnats delivery thread (on_answer), takes the record out of the table (the first
 * answer wins; later ones find nothing) and sends the requester its answer message.
 *
 * JetStream. A stream answers a publish with a JSON acknowledgement; while the stream has no
 * leader (after a server died) or no stream captures the subject, the servers answer "no
 * responders" (status 503) at once: nobody took the message, so it goes again after
 * ACTOR_BROKER_RETRY_MS. One with no answer within ATTEMPT_MS may have been stored: it goes
 * again only if it carries a Nats-Msg-Id (`dedup`), which the stream stores once. Either way
 * until its deadline, when the requester gets -ETIMEDOUT in the acknowledgement. The retry thread
 * does both: it wakes every TICK_MS and looks at every record (at most js_max_inflight JetStream
 * ones, and the plain requests with a timeout).
 *
 * Key-value claims use the bucket's stream directly: a create is a publish to
 * "$KV.<bucket>.<key>" that expects the subject's last sequence to be 0 (the servers refuse it
 * atomically otherwise, err_code 10071), and a delete purges the key's messages
 * ($JS.API.STREAM.PURGE with a filter), which leaves no marker, so that a create may take the
 * key again.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "services/broker/broker.h"

#define ATTEMPT_MS ACTOR_BROKER_ATTEMPT_MS /* no answer this long: sent again, if deduplicated */
#define TICK_MS 50                         /* the retry thread's period */
#define JS_TIMEOUT_NS (10ull * 1000000000ull)

/* ---------------------------------------------------------------------------------------------
 * JSON: the few fields of JetStream's answers, found by their keys
 */

/* The value after "key": in `s` (a NUL-terminated JSON text), or NULL. */
static const char *json_find(const char *s, const char *key)
{
	char pat[48];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(s, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

static bool json_u64(const char *s, const char *key, uint64_t *out)
{
	const char *p = json_find(s, key);
	if (p == NULL || *p < '0' || *p > '9')
		return false;
	*out = strtoull(p, NULL, 10);
	return true;
}

static void json_str(const char *s, const char *key, char *out, size_t cap)
{
	const char *p = json_find(s, key);
	out[0] = '\0';
	if (p == NULL || *p != '"')
		return;
	p++;
	size_t n = 0;
	while (p[n] != '\0' && p[n] != '"' && n + 1 < cap)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* What an answer to a JetStream publish or API call says. */
static void parse_ack(const char *json, enum breq_kind kind, actor_broker_ack_t *ack)
{
	const char *err = strstr(json, "\"error\":");
	if (err != NULL) {
		uint64_t code = 0, http = 0;
		(void)json_u64(err, "err_code", &code);
		(void)json_u64(err, "code", &http);
		ack->api_code = (uint32_t)code;
		if (kind == BREQ_KV_CREATE && code == 10071)
			ack->error = -EEXIST; /* wrong last sequence: the key exists */
		else if (code == 10059 || code == 10014 || http == 404)
			ack->error = -ENOENT; /* stream or consumer not found */
		else
			ack->error = -EINVAL;
		return;
	}
	json_str(json, "stream", ack->stream, sizeof(ack->stream));
	if (ack->stream[0] == '\0')
		json_str(json, "stream_name", ack->stream, sizeof(ack->stream));
	(void)json_u64(json, "seq", &ack->seq);
	const char *dup = json_find(json, "duplicate");
	ack->duplicate = dup != NULL && strncmp(dup, "true", 4) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Records
 */

static uint64_t now_ns(void)
{
	return actor__broker_now_ns();
}

static bool is_js(const struct breq *r)
{
	return r->kind != BREQ_PLAIN;
}

/* Takes `r` out of the table and the list (lock held). */
static void req_unlink(struct broker *b, struct breq *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		b->req_head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	actor__table_del(&b->reqs, (uint32_t)r->id);
	if (is_js(r) && b->js_inflight-- <= b->js_max_inflight / 2 + 1)
		actor__broker_notify_room(b);
}

static void req_free(struct breq *r)
{
	if (r->msg != NULL)
		natsMsg_Destroy(r->msg);
	if (r->consumer != NULL)
		actor__bsub_unref(r->consumer);
	free(r);
}

void actor__broker_answer(struct broker *b, actor_ref_t to, uint64_t req_id, int error,
                          const actor_broker_ack_t *ack)
{
	actor_msg_t *m;
	size_t len = error == 0 ? sizeof(*ack) : 0;
	if (req_id == 0)
		return; /* the library's own (ordered.c) */
	if (actor__request_answer_new(req_id, error, ACTOR_MSG_BROKER_ACK, len, &m) < 0)
		return; /* out of memory: the request ends at its requester's timeout, if any */
	if (len > 0)
		memcpy(actor_reply_data(actor_msg_data(m)), ack, len);
	if (actor__send_internal_msg(b->sys, to, m) < 0)
		actor_msg_free(m);
}

/* Sends the requester its answer: `ack` for JetStream, or `error` alone. */
static void answer_ack(struct broker *b, struct breq *r, int error, const actor_broker_ack_t *ack)
{
	actor__broker_answer(b, r->requester, r->req_id, error, ack);
}

/* A consumer that could not be created delivers nothing. */
static void consumer_failed(struct breq *r)
{
	if (r->consumer == NULL)
		return;
	atomic_store_explicit(&r->consumer->ended, true, memory_order_release);
	(void)natsSubscription_Unsubscribe(r->consumer->ns);
}

/* ---------------------------------------------------------------------------------------------
 * Answers (a libnats delivery thread)
 */

static void on_answer(natsConnection *nc, natsSubscription *ns, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)ns;
	struct broker *b = closure;
	if (!actor__broker_enter(b)) {
		natsMsg_Destroy(msg);
		return;
	}
	const char *subj = natsMsg_GetSubject(msg), *last = strrchr(subj, '.');
	if (last != NULL && last[1] == 'g') { /* a grave's mark (conn.c, "Graves") */
		actor__broker_mark_seen(b, strtoull(last + 2, NULL, 16));
		goto out;
	}
	uint64_t id = last != NULL ? strtoull(last + 1, NULL, 16) : 0;
	bool no_responders = natsMsg_IsNoResponders(msg);
	pthread_mutex_lock(&b->lock);
	struct breq *r = id != 0 ? actor__table_get(&b->reqs, id) : NULL;
	if (r != NULL && r->id != id)
		r = NULL;
	if (r != NULL && no_responders && is_js(r)) {
		/* No stream leader yet (or no stream): try again soon. */
		r->retry_ns = now_ns() + ACTOR_BROKER_RETRY_MS * 1000000ull;
		r = NULL;
	} else if (r != NULL) {
		req_unlink(b, r);
	}
	pthread_mutex_unlock(&b->lock);
	if (r == NULL)
		goto out;
	if (r->kind == BREQ_PLAIN) {
		actor_msg_t *m = NULL;
		actor_broker_msg_t *bm;
		if (no_responders) {
			if (actor__request_answer_new(r->req_id, -ESRCH, 0, 0, &m) < 0)
				m = NULL;
		} else if (actor__broker_copy_msg(msg, MSG_ANSWER, sizeof(actor_reply_t), &m,
		                                  &bm) == 0) {
			/* An answer as actor__request_answer_new makes one, the message in its
			 * bytes. */
			*(actor_reply_t *)actor_msg_data(m) =
			    (actor_reply_t){.request = {r->req_id},
			                    .type = ACTOR_MSG_BROKER,
			                    .len = (uint32_t)(m->size - sizeof(actor_reply_t))};
		}
		if (m != NULL && actor__send_internal_msg(b->sys, r->requester, m) < 0)
			actor_msg_free(m);
	} else {
		char json[4096];
		int n = natsMsg_GetDataLength(msg);
		if (n > (int)sizeof(json) - 1)
			n = (int)sizeof(json) - 1;
		memcpy(json, natsMsg_GetData(msg), (size_t)n);
		json[n] = '\0';
		actor_broker_ack_t ack = {0};
		parse_ack(json, r->kind, &ack);
		if (r->done != NULL) {
			r->done(b, r, ack.error, json);
		} else {
			if (ack.error != 0)
				consumer_failed(r);
			answer_ack(b, r, 0, &ack);
		}
	}
	req_free(r);
out:
	natsMsg_Destroy(msg);
	actor__broker_leave(b);
}

/* ---------------------------------------------------------------------------------------------
 * Sending a request
 */

int actor__broker_request_send(actor_ctx_t *ctx, struct broker *b, enum breq_kind kind,
                               const actor_broker_pub_t *pub, const actor_request_opts_t *opts,
                               struct bsub *consumer, actor_request_t *out)
{
	static const actor_request_opts_t defaults;
	if (opts == NULL)
		opts = &defaults;
	if (out == NULL || opts->timeout_ns > UINT64_MAX / 4)
		return -EINVAL;
	struct breq *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->kind = (uint8_t)kind;
	r->requester = ctx->actor->ref;
	r->retry_ns = UINT64_MAX;
	/* A JetStream request's deadline is the broker's (its answer says -ETIMEDOUT); a plain
	 * one's is its requester's, kept here only to forget the record. */
	actor_request_opts_t ro = *opts;
	uint64_t timeout = opts->timeout_ns;
	if (kind != BREQ_PLAIN) {
		ro.timeout_ns = 0;
		if (timeout == 0)
			timeout = JS_TIMEOUT_NS;
	}
	r->deadline_ns = timeout != 0 ? now_ns() + timeout : UINT64_MAX;
	actor_request_t req;
	int rc = actor__request_open(ctx, &ro, &req);
	if (rc < 0) {
		req_free(r);
		return rc;
	}
	r->req_id = req.id;
	pthread_mutex_lock(&b->lock);
	if (kind != BREQ_PLAIN && b->js_inflight >= b->js_max_inflight) {
		actor__broker_wait_room(b, r->requester);
		rc = -EAGAIN;
		goto unlock;
	}
	int64_t idx = actor__table_put(&b->reqs, r);
	if (idx < 0) {
		rc = -ENOMEM;
		goto unlock;
	}
	r->id = actor__table_handle(&b->reqs, 0, (uint32_t)idx);
	r->next = b->req_head;
	if (b->req_head != NULL)
		b->req_head->prev = r;
	b->req_head = r;
	if (kind != BREQ_PLAIN)
		b->js_inflight++;
	char reply[96];
	snprintf(reply, sizeof(reply), "%s.%llx", b->inbox, (unsigned long long)r->id);
	/* Published (or refused) under the lock, so that no answer can take the record first. */
	if (kind == BREQ_PLAIN && pub->nheaders == 0) {
		rc = actor__broker_status(natsConnection_PublishRequest(b->nc, pub->subject, reply,
		                                                        pub->data, (int)pub->len));
	} else {
		rc = actor__broker_msg_new(pub, reply, &r->msg);
		/* A create's own id, unique as its reply subject is (see the top). */
		if (rc == 0 && kind == BREQ_KV_CREATE)
			rc = actor__broker_status(natsMsgHeader_Set(r->msg, "Nats-Msg-Id", reply));
		if (rc == 0)
			rc = actor__broker_status(natsConnection_PublishMsg(b->nc, r->msg));
		if (kind == BREQ_PLAIN && r->msg != NULL) {
			natsMsg_Destroy(r->msg);
			r->msg = NULL;
		}
	}
	if (rc == 0) {
		r->dedup = kind == BREQ_KV_CREATE || (kind == BREQ_PUBLISH && pub->msg_id != NULL);
		if (r->dedup)
			r->retry_ns = now_ns() + ATTEMPT_MS * 1000000ull;
		if (consumer != NULL) {
			atomic_fetch_add(&consumer->refs, 1);
			r->consumer = consumer;
		}
	} else {
		req_unlink(b, r);
		if (rc == -EAGAIN)
			actor__broker_wait_room(b, r->requester);
	}
unlock:
	pthread_mutex_unlock(&b->lock);
	if (rc < 0) {
		(void)actor_request_cancel(ctx, req);
		req_free(r);
		return rc;
	}
	*out = req;
	return 0;
}

int actor__broker_api_locked(struct broker *b, const char *subject, const char *body, size_t len,
                             struct bsub *s, uint32_t gen, breq_done_fn *done)
{
	if (b->js_inflight >= b->js_max_inflight)
		return -EAGAIN; /* the caller tries again later */
	struct breq *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->kind = BREQ_API;
	r->requester = ACTOR_REF_NONE;
	r->deadline_ns = now_ns() + ATTEMPT_MS * 1000000ull;
	r->retry_ns = UINT64_MAX;
	r->done = done;
	r->gen = gen;
	int64_t idx = actor__table_put(&b->reqs, r);
	if (idx < 0) {
		free(r);
		return -ENOMEM;
	}
	r->id = actor__table_handle(&b->reqs, 0, (uint32_t)idx);
	char reply[96];
	snprintf(reply, sizeof(reply), "%s.%llx", b->inbox, (unsigned long long)r->id);
	actor_broker_pub_t pub = {.subject = subject, .data = body, .len = len};
	int rc = actor__broker_msg_new(&pub, reply, &r->msg);
	if (rc == 0)
		rc = actor__broker_status(natsConnection_PublishMsg(b->nc, r->msg));
	if (rc < 0) {
		actor__table_del(&b->reqs, (uint32_t)idx);
		if (r->msg != NULL)
			natsMsg_Destroy(r->msg);
		free(r);
		return rc;
	}
	r->next = b->req_head;
	if (b->req_head != NULL)
		b->req_head->prev = r;
	b->req_head = r;
	b->js_inflight++;
	if (s != NULL) {
		atomic_fetch_add(&s->refs, 1);
		r->consumer = s;
	}
	return 0;
}

void actor__broker_api_forget(struct broker *b, const char *subject, const char *body)
{
	/* "<inbox>.0" names no record: the answer is dropped when it comes. */
	char reply[96];
	snprintf(reply, sizeof(reply), "%s.0", b->inbox);
	(void)natsConnection_PublishRequest(b->nc, subject, reply, body, (int)strlen(body));
}

int actor_broker_request(actor_ctx_t *ctx, const actor_broker_pub_t *pub,
                         const actor_request_opts_t *opts, actor_request_t *out)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (pub == NULL || pub->reply != NULL || pub->msg_id != NULL)
		return -EINVAL;
	rc = actor__broker_check_pub(pub);
	if (rc < 0)
		return rc;
	return actor__broker_request_send(ctx, b, BREQ_PLAIN, pub, opts, NULL, out);
}

int actor_broker_js_publish(actor_ctx_t *ctx, const actor_broker_pub_t *pub,
                            const actor_request_opts_t *opts, actor_request_t *out)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (pub == NULL || pub->reply != NULL)
		return -EINVAL;
	rc = actor__broker_check_pub(pub);
	if (rc < 0)
		return rc;
	return actor__broker_request_send(ctx, b, BREQ_PUBLISH, pub, opts, NULL, out);
}

/* ---------------------------------------------------------------------------------------------
 * Key-value claims
 */

int actor__broker_check_name(const char *s, const char *extra, size_t max)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > max)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || (c != '\0' && strchr(extra, c) != NULL);
		if (!ok)
			return -EINVAL;
	}
	return 0;
}

static int check_key(const char *key)
{
	if (actor__broker_check_name(key, "-_=./", 255) < 0)
		return -EINVAL;
	size_t n = strlen(key);
	if (key[0] == '.' || key[n - 1] == '.' || strstr(key, "..") != NULL)
		return -EINVAL;
	return 0;
}

int actor_broker_kv_create(actor_ctx_t *ctx, const char *bucket, const char *key, const void *value,
                           size_t len, const actor_request_opts_t *opts, actor_request_t *out)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (actor__broker_check_name(bucket, "-_", 64) < 0 || check_key(key) < 0 ||
	    (value == NULL && len > 0))
		return -EINVAL;
	if (len > INT32_MAX)
		return -EMSGSIZE;
	char subject[ACTOR_BROKER_SUBJECT_MAX + 80];
	snprintf(subject, sizeof(subject), "$KV.%s.%s", bucket, key);
	actor_broker_header_t h = {"Nats-Expected-Last-Subject-Sequence", "0"};
	actor_broker_pub_t pub = {
	    .subject = subject, .headers = &h, .nheaders = 1, .data = value, .len = len};
	return actor__broker_request_send(ctx, b, BREQ_KV_CREATE, &pub, opts, NULL, out);
}

int actor_broker_kv_delete(actor_ctx_t *ctx, const char *bucket, const char *key,
                           const actor_request_opts_t *opts, actor_request_t *out)
{
	int rc;
	struct broker *b = actor__broker_ready(ctx, &rc);
	if (b == NULL)
		return rc;
	if (actor__broker_check_name(bucket, "-_", 64) < 0 || check_key(key) < 0)
		return -EINVAL;
	char subject[160], body[ACTOR_BROKER_SUBJECT_MAX + 100];
	snprintf(subject, sizeof(subject), "$JS.API.STREAM.PURGE.KV_%s", bucket);
	int n = snprintf(body, sizeof(body), "{\"filter\":\"$KV.%s.%s\"}", bucket, key);
	actor_broker_pub_t pub = {.subject = subject, .data = body, .len = (size_t)n};
	return actor__broker_request_send(ctx, b, BREQ_API, &pub, opts, NULL, out);
}

/* ---------------------------------------------------------------------------------------------
 * The retry thread
 */

static void *retry_main(void *arg)
{
	struct broker *b = arg;
	pthread_mutex_lock(&b->lock);
	while (!atomic_load(&b->closing)) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&b->cond, &b->lock, &until);
		uint64_t now = now_ns();
		struct breq *expired = NULL;
		for (struct breq *r = b->req_head, *next; r != NULL; r = next) {
			next = r->next;
			if (now >= r->deadline_ns) {
				req_unlink(b, r);
				r->next = expired;
				expired = r;
			} else if (now >= r->retry_ns && r->msg != NULL) {
				r->retry_ns = r->dedup ? now + ATTEMPT_MS * 1000000ull : UINT64_MAX;
				(void)natsConnection_PublishMsg(b->nc, r->msg);
			}
		}
		void (*hook)(struct broker *, uint64_t, bool) = b->ordered_hook;
		pthread_mutex_unlock(&b->lock);
		if (hook != NULL)
			hook(b, now, false);
		actor__broker_dig(b, false);
		while (expired != NULL) {
			struct breq *r = expired;
			expired = r->next;
			if (r->done != NULL) {
				r->done(b, r, -ETIMEDOUT, NULL);
			} else if (is_js(r)) {
				actor_broker_ack_t ack = {.error = -ETIMEDOUT};
				consumer_failed(r);
				answer_ack(b, r, 0, &ack);
			}
			/* A plain request's requester has timed it out already. */
			req_free(r);
		}
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void on_inbox_complete(void *closure)
{
	actor__broker_unref(closure);
}

int actor__broker_js_start(struct broker *b)
{
	natsInbox *inbox;
	natsStatus s = natsInbox_Create(&inbox);
	if (s != NATS_OK)
		return actor__broker_status(s);
	snprintf(b->inbox, sizeof(b->inbox), "%s", (const char *)inbox);
	natsInbox_Destroy(inbox);
	char subject[80];
	snprintf(subject, sizeof(subject), "%s.*", b->inbox);
	s = natsConnection_Subscribe(&b->inbox_sub, b->nc, subject, on_answer, b);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(b->inbox_sub, -1, -1);
	if (s == NATS_OK) {
		/* Its last callback may come after the system began to go: counted (broker.h). */
		pthread_mutex_lock(&b->lock);
		b->refs++;
		pthread_mutex_unlock(&b->lock);
		s = natsSubscription_SetOnCompleteCB(b->inbox_sub, on_inbox_complete, b);
		if (s != NATS_OK)
			actor__broker_unref(b);
	}
	if (s != NATS_OK)
		return actor__broker_status(s);
	s = natsConnection_JetStream(&b->js, b->nc, NULL);
	if (s != NATS_OK)
		return actor__broker_status(s);
	if (pthread_create(&b->retry_thread, NULL, retry_main, b) != 0)
		return -EAGAIN;
	b->retry_running = true;
	return 0;
}

void actor__broker_js_closed(struct broker *b)
{
	pthread_mutex_lock(&b->lock);
	struct breq *all = b->req_head;
	b->req_head = NULL;
	for (struct breq *r = all; r != NULL; r = r->next) {
		actor__table_del(&b->reqs, (uint32_t)r->id);
		if (is_js(r))
			b->js_inflight--;
	}
	pthread_mutex_unlock(&b->lock);
	while (all != NULL) {
		struct breq *r = all;
		all = r->next;
		if (r->done != NULL) {
			r->done(b, r, -ECONNRESET, NULL);
		} else {
			consumer_failed(r);
			answer_ack(b, r, -ECONNRESET, NULL);
		}
		req_free(r);
	}
}

void actor__broker_js_stop(struct broker *b)
{
	if (b->retry_running) {
		pthread_mutex_lock(&b->lock);
		pthread_cond_broadcast(&b->cond);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->retry_thread, NULL);
		b->retry_running = false;
	}
	actor__broker_js_closed(b);
	pthread_mutex_lock(&b->lock);
	void (*hook)(struct broker *, uint64_t, bool) = b->ordered_hook;
	pthread_mutex_unlock(&b->lock);
	if (hook != NULL)
		hook(b, now_ns(), true);
	actor__table_free(&b->reqs);
	if (b->inbox_sub != NULL)
		natsSubscription_Destroy(b->inbox_sub);
	b->inbox_sub = NULL;
	if (b->js != NULL)
		jsCtx_Destroy(b->js);
	b->js = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Setting JetStream up (blocking, outside the pool)
 */

static int js_error(natsStatus s, jsErrCode code, const char *what, const char *name)
{
	if (s == NATS_OK)
		return 0;
	if (code == 10058) /* a stream of that name exists with another configuration */
		return -EEXIST;
	if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS)
		return -ETIMEDOUT;
	if (s == NATS_CONNECTION_CLOSED)
		return -ENOTCONN;
	if (s == NATS_NO_MEMORY)
		return -ENOMEM;
	fprintf(stderr, "libactor: broker: %s %s: %s (%d)\n", what, name,
	        nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s),
	        (int)code);
	return -EINVAL;
}

int actor_broker_stream_add(actor_system_t *sys, const char *name, const char *subjects,
                            unsigned replicas, uint32_t dedup_window_ms, uint64_t max_age_ms)
{
	struct broker *b;
	int rc = actor__broker_outside(sys, &b);
	if (rc < 0)
		return rc;
	if (actor__broker_check_name(name, "-_", 64) < 0 || subjects == NULL || replicas < 1 ||
	    replicas > 5 || max_age_ms > INT64_MAX / 1000000)
		return -EINVAL;
	char *copy, **subj;
	int nsubj;
	rc = actor__broker_split(subjects, &copy, &subj, &nsubj);
	if (rc < 0)
		return rc;
	for (int i = 0; i < nsubj; i++)
		if (actor__broker_check_subject(subj[i], true) < 0) {
			free(copy);
			free(subj);
			return -EINVAL;
		}
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = (const char **)subj;
	cfg.SubjectsLen = nsubj;
	cfg.Replicas = (int64_t)replicas;
	cfg.Storage = js_FileStorage;
	if (dedup_window_ms != 0)
		cfg.Duplicates = (int64_t)dedup_window_ms * 1000000;
	if (max_age_ms != 0)
		cfg.MaxAge = (int64_t)max_age_ms * 1000000;
	jsStreamInfo *si = NULL;
	jsErrCode code = 0;
	natsStatus s = js_AddStream(&si, b->js, &cfg, NULL, &code);
	if (si != NULL)
		jsStreamInfo_Destroy(si);
	free(copy);
	free(subj);
	return js_error(s, code, "stream", name);
}

int actor_broker_kv_add(actor_system_t *sys, const char *bucket, unsigned replicas)
{
	struct broker *b;
	int rc = actor__broker_outside(sys, &b);
	if (rc < 0)
		return rc;
	if (actor__broker_check_name(bucket, "-_", 64) < 0 || replicas < 1 || replicas > 5)
		return -EINVAL;
	kvConfig cfg;
	kvConfig_Init(&cfg);
	cfg.Bucket = bucket;
	cfg.Replicas = (int)replicas;
	cfg.History = 1;
	kvStore *kv = NULL;
	natsStatus s = js_CreateKeyValue(&kv, b->js, &cfg);
	if (kv != NULL)
		kvStore_Destroy(kv);
	return js_error(s, 0, "key-value bucket", bucket);
}
