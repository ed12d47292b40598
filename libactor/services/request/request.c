/* request.c: the request service: requests between actors, their answers, timeouts and
 * cancellation, on each worker (actor.h, "Requests"; wait.c has the call for threads outside
 * the pool).
 *
 * How a request travels. actor_request pushes two messages onto the receiver's mailbox in one
 * exchange (actor__send_pair): a control message MSG_REQUEST carrying {id, requester}, and
 * right behind it the user's message. Nothing can come between the two: no other push can
 * land inside one exchange, and the pair never joins the sender's outbox chains (which could be
 * pushed in parts). The receiver's run loop gives MSG_REQUEST to this service's `receive`,
 * which records it as the worker's current request (`cur`) and answers SVC_NEXT_NOTE: the core
 * frees it and hands the message behind it to the behaviour, then calls `handled`. So `cur` is
 * set exactly while the behaviour handles the request's message, on the receiver's worker;
 * actor_reply answers it, actor_request_keep moves it into the table as a kept request, and
 * `handled` answers it with -ESRCH or -ENOMSG if the behaviour did neither. Ordinary messages
 * pay nothing: their turn never enters this file.
 *
 * How an answer travels. An answer is a MSG_ANSWER message (actor_reply_t, then the bytes)
 * sent by the replier to the requester, in order with the replier's other messages to it. It
 * reaches the requester's `receive`, on the requester's worker (the requester is bound there
 * while it has requests pending), which looks the request up in its table: a request still
 * pending gets it, as ACTOR_MSG_REPLY with the requester's tag; anything else (timed out,
 * cancelled, or a stale id) is dropped and counted in replies_dropped. A MSG_ANSWER that cannot
 * reach its requester (stopped) is dropped and counted too: at the send (the replier's worker)
 * or as it is dead-lettered. The first answer wins: the request leaves the table with it.
 *
 * Requester side, per worker: a table of entries named by generation-checked handles (the
 * request's id: a reused slot never matches an old id), the deadlines in a min-heap, and per
 * actor an owner record with `count`: its pending requests, the timeout notices on their way to
 * it, and the requests it keeps. While `count` is not zero the actor holds SVC_BIT_REQUEST, so
 * it never moves and its answers and notices reach this worker; the bit is set and released
 * only inside the actor's own turn (a call it makes, or `receive` of its message), the one
 * moment its holder is this thread. A timeout fires outside any turn, so it takes the request
 * out of the table and sends ACTOR_MSG_REPLY (-ETIMEDOUT) but leaves `count` to the notice's
 * arrival.
 *
 * Everything here is the worker's own thread's: no atomics, no locks.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services/owners.h"
#include "services/services.h"

/* MSG_REQUEST's payload. */
struct actor__req_ctl {
	uint64_t id;           /* the request's id at its requester */
	actor_ref_t requester; /* where the answer goes */
};

enum entry_kind {
	ENTRY_PENDING, /* a request made here, waiting for its answer */
	ENTRY_KEPT,    /* a request received here and kept, to be answered with actor_reply_to */
};

struct owner;

struct entry {
	struct entry *oprev, *onext; /* the owner's entries */
	struct owner *owner;
	uint64_t handle;      /* PENDING: the request's id; KEPT: the reply handle */
	uint64_t deadline_ns; /* PENDING with a timeout, else UINT64_MAX */
	uint64_t tag;         /* PENDING: the requester's tag */
	uint64_t req_id;      /* KEPT: the request's id at its requester */
	actor_ref_t peer;     /* KEPT: the requester */
	uint32_t heap_pos;    /* in the deadline heap; HEAP_NONE: not there */
	uint8_t kind;
};

#define HEAP_NONE UINT32_MAX

/* An actor with entries here, or timeout notices on their way to it. */
struct owner {
	actor_ref_t ref;
	uint64_t count;
	struct entry *entries;
};
_Static_assert(offsetof(struct owner, ref) == 0, "an owners.h record starts with ref");

/* The request the running behaviour is handling, if any (see the top). */
struct current {
	struct actor *actor; /* NULL: none */
	uint64_t id;
	actor_ref_t requester;
	bool open; /* neither answered nor kept yet */
};

struct req_worker {
	struct actor__table entries;
	struct actor__owners owners; /* struct owner records (services/owners.h) */
	struct entry **heap;
	uint32_t heap_len, heap_cap;
	struct current cur;
};

static struct req_worker *req_worker_of(struct actor_worker *w)
{
	return w->svc[SVC_REQUEST];
}

/* ---------------------------------------------------------------------------------------------
 * Owners
 */

/* Inside the turn of `a`, the owner: one thing less owed to it; with none left, it may move. */
static void owner_done(struct req_worker *rw, struct actor *a, struct owner *ow)
{
	if (--ow->count != 0)
		return;
	actor__owners_del(&rw->owners, ow, sizeof(*ow));
	actor__svc_release(a, SVC_BIT_REQUEST);
}

/* ---------------------------------------------------------------------------------------------
 * Deadlines: a binary min-heap of pending requests with a timeout
 */

static void heap_set(struct req_worker *rw, uint32_t i, struct entry *e)
{
	rw->heap[i] = e;
	e->heap_pos = i;
}

static void sift_up(struct req_worker *rw, uint32_t i)
{
	struct entry *e = rw->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (rw->heap[parent]->deadline_ns <= e->deadline_ns)
			break;
		heap_set(rw, i, rw->heap[parent]);
		i = parent;
	}
	heap_set(rw, i, e);
}

static void sift_down(struct req_worker *rw, uint32_t i)
{
	struct entry *e = rw->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		uint64_t best = e->deadline_ns;
		if (l < rw->heap_len && rw->heap[l]->deadline_ns < best) {
			m = l;
			best = rw->heap[l]->deadline_ns;
		}
		if (r < rw->heap_len && rw->heap[r]->deadline_ns < best)
			m = r;
		if (m == i)
			break;
		heap_set(rw, i, rw->heap[m]);
		i = m;
	}
	heap_set(rw, i, e);
}

static int heap_add(struct req_worker *rw, struct entry *e)
{
	if (rw->heap_len == rw->heap_cap) {
		uint32_t cap = rw->heap_cap ? rw->heap_cap * 2 : 64;
		struct entry **h = realloc(rw->heap, cap * sizeof(*h));
		if (h == NULL)
			return -ENOMEM;
		rw->heap = h;
		rw->heap_cap = cap;
	}
	heap_set(rw, rw->heap_len++, e);
	sift_up(rw, e->heap_pos);
	return 0;
}

static void heap_remove(struct req_worker *rw, struct entry *e)
{
	uint32_t i = e->heap_pos;
	e->heap_pos = HEAP_NONE;
	struct entry *last = rw->heap[--rw->heap_len];
	if (last == e)
		return;
	heap_set(rw, i, last);
	if (i > 0 && last->deadline_ns < rw->heap[(i - 1) / 2]->deadline_ns)
		sift_up(rw, i);
	else
		sift_down(rw, i);
}

/* ---------------------------------------------------------------------------------------------
 * Entries
 */

/* A new entry of `a` (inside its turn), in the table and its owner's list, counted: `a` stays
 * here until it is done. */
static int entry_new(struct actor_worker *w, struct req_worker *rw, struct actor *a,
                     enum entry_kind kind, struct entry **out)
{
	struct owner *ow = actor__owners_get(&rw->owners, a->ref, sizeof(struct owner));
	if (ow == NULL)
		return -ENOMEM;
	struct entry *e = actor__alloc(sizeof(*e));
	int64_t idx = e != NULL ? actor__table_put(&rw->entries, e) : -ENOMEM;
	if (idx < 0) {
		if (e != NULL)
			actor__free(e, sizeof(*e));
		if (ow->count == 0)
			actor__owners_del(&rw->owners, ow, sizeof(*ow));
		return (int)idx;
	}
	*e = (struct entry){.owner = ow,
	                    .handle = actor__table_handle(&rw->entries, w->index, (uint32_t)idx),
	                    .deadline_ns = UINT64_MAX,
	                    .heap_pos = HEAP_NONE,
	                    .kind = (uint8_t)kind};
	e->onext = ow->entries;
	if (ow->entries != NULL)
		ow->entries->oprev = e;
	ow->entries = e;
	ow->count++;
	actor__svc_hold(a, SVC_BIT_REQUEST);
	*out = e;
	return 0;
}

/* Takes `e` out of the table, its owner's list and the heap, and frees it. The owner's count is
 * the caller's to settle. */
static void entry_free(struct req_worker *rw, struct entry *e)
{
	struct owner *ow = e->owner;
	if (e->oprev != NULL)
		e->oprev->onext = e->onext;
	else
		ow->entries = e->onext;
	if (e->onext != NULL)
		e->onext->oprev = e->oprev;
	if (e->heap_pos != HEAP_NONE)
		heap_remove(rw, e);
	actor__table_del(&rw->entries, (uint32_t)e->handle);
	actor__free(e, sizeof(*e));
}

/* The entry `id` names on this worker, of `kind`, or NULL. */
static struct entry *entry_find(struct actor_worker *w, struct req_worker *rw, uint64_t id,
                                enum entry_kind kind)
{
	if (id == 0 || actor__handle_worker(id) != w->index)
		return NULL;
	struct entry *e = actor__table_get(&rw->entries, id);
	return e != NULL && e->kind == kind ? e : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Answers
 */

/* An answer to request `id` (MSG_ANSWER), its `len` bytes (checked by the caller) to be filled
 * in. */
static inline int answer_new(uint64_t id, int error, uint32_t type, size_t len, actor_msg_t **out)
{
	int rc =
	    actor_msg_alloc(sizeof(actor_msg_t) + sizeof(actor_reply_t) + len, MSG_ANSWER, out);
	if (rc < 0)
		return rc;
	actor_reply_t *r = actor_msg_data(*out);
	*r = (actor_reply_t){.request = {id}, .error = error, .type = type, .len = (uint32_t)len};
	return 0;
}

/* Sends an answer to request `id` of `to`, from `from`. 0 also when `to` has stopped (the
 * answer is dropped and counted here); -ENOMEM: nothing was sent. */
static int answer_send(struct actor_worker *w, actor_ref_t to, actor_ref_t from, uint64_t id,
                       int error, uint32_t type, const void *data, size_t len)
{
	actor_msg_t *m;
	int rc = answer_new(id, error, type, len, &m);
	if (rc < 0)
		return rc;
	if (len > 0)
		memcpy(actor_reply_data(actor_msg_data(m)), data, len);
	rc = actor__send_internal_from(w->sys, to, from, m);
	if (rc < 0) {
		actor_msg_free(m);
		actor__stat_add(&w->st.replies_dropped, 1);
	}
	return 0;
}

static int check_reply_args(uint32_t type, const void *data, size_t len)
{
	if ((data == NULL && len > 0) || type >= ACTOR_MSG_SYSTEM)
		return -EINVAL;
	if (len > ACTOR_MSG_MAX - sizeof(actor_reply_t))
		return -EMSGSIZE;
	return 0;
}

/* The worker's current request, if it is the running behaviour's and still open. */
static struct current *open_request(const actor_ctx_t *ctx, struct actor_worker **wp)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || ctx->msg == NULL)
		return NULL;
	struct current *cur = &req_worker_of(w)->cur;
	if (cur->actor != ctx->actor || !cur->open)
		return NULL;
	*wp = w;
	return cur;
}

/* ---------------------------------------------------------------------------------------------
 * The calls
 */

/* A pending request of `a` (inside its turn on `w`) with opts' timeout and tag: its id. */
static inline int request_open(struct actor_worker *w, struct req_worker *rw, struct actor *a,
                               const actor_request_opts_t *opts, uint64_t *id)
{
	struct entry *e;
	int rc = entry_new(w, rw, a, ENTRY_PENDING, &e);
	if (rc < 0)
		return rc;
	if (opts->timeout_ns != 0) {
		e->deadline_ns = actor__now_ns() + opts->timeout_ns;
		rc = heap_add(rw, e);
		if (rc < 0) {
			struct owner *ow = e->owner;
			entry_free(rw, e);
			owner_done(rw, a, ow);
			return rc;
		}
	}
	e->tag = opts->tag;
	*id = e->handle;
	return 0;
}

int actor__request_open(actor_ctx_t *ctx, const actor_request_opts_t *opts, actor_request_t *out)
{
	static const actor_request_opts_t defaults;
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (opts == NULL)
		opts = &defaults;
	if (w == NULL || out == NULL || opts->timeout_ns > UINT64_MAX / 4)
		return -EINVAL;
	return request_open(w, req_worker_of(w), ctx->actor, opts, &out->id);
}

int actor__request_answer_new(uint64_t id, int error, uint32_t type, size_t len, actor_msg_t **out)
{
	if (len > ACTOR_MSG_MAX - sizeof(actor_reply_t))
		return -EMSGSIZE;
	return answer_new(id, error, type, len, out);
}

int actor_request(actor_ctx_t *ctx, actor_ref_t to, uint32_t type, const void *data, size_t len,
                  const actor_request_opts_t *opts, actor_request_t *out)
{
	static const actor_request_opts_t defaults;
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (opts == NULL)
		opts = &defaults;
	if (w == NULL || out == NULL || (data == NULL && len > 0) || type >= ACTOR_MSG_SYSTEM ||
	    opts->timeout_ns > UINT64_MAX / 4)
		return -EINVAL;
	if (len > ACTOR_MSG_MAX)
		return -EMSGSIZE;
	if (actor_ref_is_none(to))
		return -ESRCH;
	actor_msg_t *ctl, *m;
	int rc = actor_msg_alloc(sizeof(*ctl) + sizeof(struct actor__req_ctl), MSG_REQUEST, &ctl);
	if (rc < 0)
		return rc;
	rc = actor_msg_alloc(sizeof(*m) + len, type, &m);
	if (rc < 0) {
		actor_msg_free(ctl);
		return rc;
	}
	if (len > 0)
		memcpy(actor_msg_data(m), data, len);
	actor_request_t req;
	rc = request_open(w, req_worker_of(w), ctx->actor, opts, &req.id);
	if (rc < 0) {
		actor_msg_free(ctl);
		actor_msg_free(m);
		return rc;
	}
	*(struct actor__req_ctl *)actor_msg_data(ctl) =
	    (struct actor__req_ctl){.id = req.id, .requester = ctx->actor->ref};
	/* The entry exists before the request leaves: its answer cannot come before it, and comes
	 * to this actor's later turn anyway. */
	rc = actor__send_pair(w->sys, to, ctx->actor->ref, ctl, m);
	if (rc < 0) {
		(void)actor_request_cancel(ctx, req);
		actor_msg_free(ctl);
		actor_msg_free(m);
		return rc;
	}
	*out = req;
	return 0;
}

int actor_request_cancel(actor_ctx_t *ctx, actor_request_t req)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (req.id == 0)
		return -ESRCH;
	if (actor__handle_worker(req.id) != w->index)
		return -EXDEV;
	struct req_worker *rw = req_worker_of(w);
	struct entry *e = entry_find(w, rw, req.id, ENTRY_PENDING);
	if (e == NULL)
		return -ESRCH;
	struct owner *ow = e->owner;
	if (ow->ref.id != ctx->actor->ref.id)
		return -EPERM;
	entry_free(rw, e);
	owner_done(rw, ctx->actor, ow);
	return 0;
}

int actor_request_of(const actor_ctx_t *ctx, actor_request_t *out)
{
	if (actor__ctx_worker(ctx) == NULL)
		return -EINVAL;
	struct actor_worker *w;
	const struct current *cur = open_request(ctx, &w);
	if (cur == NULL)
		return 0;
	if (out != NULL)
		out->id = cur->id;
	return 1;
}

int actor_reply(actor_ctx_t *ctx, uint32_t type, const void *data, size_t len)
{
	struct actor_worker *w;
	struct current *cur = open_request(ctx, &w);
	if (cur == NULL)
		return -EINVAL;
	int rc = check_reply_args(type, data, len);
	if (rc == 0)
		rc = answer_send(w, cur->requester, ctx->actor->ref, cur->id, 0, type, data, len);
	if (rc == 0)
		cur->open = false;
	return rc;
}

int actor_request_keep(actor_ctx_t *ctx, actor_reply_handle_t *out)
{
	struct actor_worker *w;
	struct current *cur = open_request(ctx, &w);
	if (cur == NULL || out == NULL)
		return -EINVAL;
	struct entry *e;
	int rc = entry_new(w, req_worker_of(w), ctx->actor, ENTRY_KEPT, &e);
	if (rc < 0)
		return rc;
	e->req_id = cur->id;
	e->peer = cur->requester;
	cur->open = false;
	out->id = e->handle;
	return 0;
}

/* The kept request `h` names, if the running behaviour's actor kept it on this worker:
 * 0 and *wp, *ep; -EINVAL (no such kept request, or outside a behaviour), -EXDEV or -EPERM. */
static int kept_request(actor_ctx_t *ctx, const actor_reply_handle_t *h, struct actor_worker **wp,
                        struct entry **ep)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || h == NULL || h->id == 0)
		return -EINVAL;
	if (actor__handle_worker(h->id) != w->index)
		return -EXDEV;
	struct entry *e = entry_find(w, req_worker_of(w), h->id, ENTRY_KEPT);
	if (e == NULL)
		return -EINVAL;
	if (e->owner->ref.id != ctx->actor->ref.id)
		return -EPERM;
	*wp = w;
	*ep = e;
	return 0;
}

/* A kept request has ended here (answered or passed on): the keeper may move once it has no
 * other. */
static void kept_done(actor_ctx_t *ctx, struct actor_worker *w, struct entry *e)
{
	struct req_worker *rw = req_worker_of(w);
	struct owner *ow = e->owner;
	entry_free(rw, e);
	owner_done(rw, ctx->actor, ow);
}

int actor_reply_to(actor_ctx_t *ctx, const actor_reply_handle_t *h, uint32_t type, const void *data,
                   size_t len)
{
	struct actor_worker *w;
	struct entry *e;
	int rc = kept_request(ctx, h, &w, &e);
	if (rc == 0)
		rc = check_reply_args(type, data, len);
	if (rc == 0)
		rc = answer_send(w, e->peer, ctx->actor->ref, e->req_id, 0, type, data, len);
	if (rc < 0)
		return rc;
	kept_done(ctx, w, e);
	return 0;
}

/* Sends `msg` to `to` behind a MSG_REQUEST naming request `id` of `requester`: the same pair
 * actor_request sends, so `to` holds that request as if it had been sent there. The requester's
 * table sees no change. On failure nothing is sent and msg is still the caller's. */
static int pass_on(actor_ctx_t *ctx, struct actor_worker *w, actor_ref_t to, actor_msg_t *msg,
                   uint64_t id, actor_ref_t requester)
{
	if (msg == NULL || msg->type >= ACTOR_MSG_SYSTEM)
		return -EINVAL;
	if (msg->size > ACTOR_MSG_MAX)
		return -EMSGSIZE;
	if (actor_ref_is_none(to))
		return -ESRCH;
	actor_msg_t *ctl;
	int rc = actor_msg_alloc(sizeof(*ctl) + sizeof(struct actor__req_ctl), MSG_REQUEST, &ctl);
	if (rc < 0)
		return rc;
	*(struct actor__req_ctl *)actor_msg_data(ctl) =
	    (struct actor__req_ctl){.id = id, .requester = requester};
	rc = actor__send_pair(w->sys, to, ctx->actor->ref, ctl, msg);
	if (rc < 0) {
		actor_msg_free(ctl);
		return rc;
	}
	if (w->ctx.msg == msg)
		w->ctx.kept = true; /* the receiver owns it now; the turn must not free it */
	return 0;
}

int actor_request_forward(actor_ctx_t *ctx, actor_ref_t to, actor_msg_t *msg)
{
	struct actor_worker *w;
	struct current *cur = open_request(ctx, &w);
	if (cur == NULL)
		return -EINVAL;
	int rc = pass_on(ctx, w, to, msg, cur->id, cur->requester);
	if (rc == 0)
		cur->open = false; /* `handled` answers nothing for it here */
	return rc;
}

int actor_request_forward_kept(actor_ctx_t *ctx, const actor_reply_handle_t *h, actor_ref_t to,
                               actor_msg_t *msg)
{
	struct actor_worker *w;
	struct entry *e;
	int rc = kept_request(ctx, h, &w, &e);
	if (rc == 0)
		rc = pass_on(ctx, w, to, msg, e->req_id, e->peer);
	if (rc == 0)
		kept_done(ctx, w, e);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */

static int req_init(struct actor_worker *w, void **state)
{
	(void)w;
	*state = calloc(1, sizeof(struct req_worker));
	return *state != NULL ? 0 : -ENOMEM;
}

static void req_fini(struct actor_worker *w, void *state)
{
	(void)w;
	struct req_worker *rw = state;
	for (uint32_t i = 1; i < rw->entries.cap; i++) {
		if (rw->entries.obj[i] != NULL)
			actor__free(rw->entries.obj[i], sizeof(struct entry));
	}
	actor__owners_free(&rw->owners, sizeof(struct owner));
	free(rw->heap);
	actor__table_free(&rw->entries);
	free(rw);
}

static uint64_t req_next_deadline(const struct actor_worker *w, const void *state)
{
	(void)w;
	const struct req_worker *rw = state;
	return rw->heap_len ? rw->heap[0]->deadline_ns : UINT64_MAX;
}

/* Times out every request due at `now`: each leaves the table (a later answer is dropped) and
 * its requester gets ACTOR_MSG_REPLY with -ETIMEDOUT, which settles its count as it arrives. */
static unsigned req_tick(struct actor_worker *w, void *state, uint64_t now)
{
	struct req_worker *rw = state;
	unsigned n = 0;
	while (rw->heap_len > 0 && rw->heap[0]->deadline_ns <= now) {
		struct entry *e = rw->heap[0];
		struct owner *ow = e->owner;
		actor_reply_t r = {.request = {e->handle}, .tag = e->tag, .error = -ETIMEDOUT};
		entry_free(rw, e);
		/* The owner lives: its stop would have taken its entries out (owner_stopped). */
		int rc = actor__send_internal(w->sys, ow->ref, ACTOR_REF_NONE, ACTOR_MSG_REPLY, &r,
		                              sizeof(r));
		/* Out of memory: the notice is lost, so is its place in the count. The bit stays
		 * (only the owner's turn may clear it): the actor stays here, which is harmless. */
		if (rc < 0 && --ow->count == 0)
			actor__owners_del(&rw->owners, ow, sizeof(*ow));
		n++;
	}
	return n;
}

/* `a` stopped: its pending requests are cancelled (their answers will find nothing), its kept
 * ones answered with -ESRCH. */
static void req_owner_stopped(struct actor_worker *w, void *state, struct actor *a)
{
	struct req_worker *rw = state;
	struct owner *ow = actor__owners_find(&rw->owners, a->ref);
	if (ow == NULL)
		return;
	while (ow->entries != NULL) {
		struct entry *e = ow->entries;
		if (e->kind == ENTRY_KEPT)
			(void)answer_send(w, e->peer, a->ref, e->req_id, -ESRCH, 0, NULL, 0);
		entry_free(rw, e);
	}
	actor__owners_del(&rw->owners, ow, sizeof(*ow));
}

/* An answer reaches `a`, the requester: for the behaviour if its request is still pending. */
static enum actor__svc_verdict answer_received(struct actor_worker *w, struct req_worker *rw,
                                               struct actor *a, actor_msg_t *m)
{
	actor_reply_t *r = actor_msg_data(m);
	struct entry *e =
	    m->size >= sizeof(*r) ? entry_find(w, rw, r->request.id, ENTRY_PENDING) : NULL;
	if (e == NULL || e->owner->ref.id != a->ref.id) {
		actor__stat_add(&w->st.replies_dropped, 1);
		return SVC_CONSUMED;
	}
	struct owner *ow = e->owner;
	r->tag = e->tag;
	entry_free(rw, e);
	owner_done(rw, a, ow);
	m->type = ACTOR_MSG_REPLY;
	return SVC_DELIVER;
}

static enum actor__svc_verdict req_receive(struct actor_worker *w, void *state, struct actor *a,
                                           actor_msg_t *m, struct actor__svc_note *note)
{
	(void)note;
	struct req_worker *rw = state;
	if (m->type == MSG_REQUEST) {
		struct actor__req_ctl ctl;
		memcpy(&ctl, actor_msg_data(m), sizeof(ctl));
		rw->cur = (struct current){
		    .actor = a, .id = ctl.id, .requester = ctl.requester, .open = true};
		return SVC_NEXT_NOTE;
	}
	if (m->type == MSG_ANSWER)
		return answer_received(w, rw, a, m);
	if (m->type == ACTOR_MSG_REPLY) {
		/* Only this service sends it unforwarded: a timeout notice, owed since the tick. */
		struct owner *ow = actor__owners_find(&rw->owners, a->ref);
		if (ow != NULL)
			owner_done(rw, a, ow);
	}
	return SVC_DELIVER;
}

/* The behaviour has returned from a request's message: one it neither answered nor kept is
 * answered now, -ESRCH if the actor is stopping, else -ENOMSG. */
static void req_handled(struct actor_worker *w, void *state, const struct actor__svc_note *note)
{
	(void)note;
	struct req_worker *rw = state;
	struct current cur = rw->cur;
	rw->cur = (struct current){0};
	if (!cur.open)
		return;
	int error = (cur.actor->flags & ACTOR_EXITING) ? -ESRCH : -ENOMSG;
	(void)answer_send(w, cur.requester, cur.actor->ref, cur.id, error, 0, NULL, 0);
}

/* A request's control message is dead-lettered (its receiver stopped): its requester hears of
 * it now. An answer dead-lettered is a dropped reply. */
static void req_dead_letter(struct actor_worker *w, void *state, actor_ref_t to, actor_msg_t *m)
{
	(void)state;
	if (m->type == MSG_REQUEST) {
		struct actor__req_ctl ctl;
		memcpy(&ctl, actor_msg_data(m), sizeof(ctl));
		(void)answer_send(w, ctl.requester, to, ctl.id, -ESRCH, 0, NULL, 0);
	} else if (m->type == MSG_ANSWER) {
		actor__stat_add(&w->st.replies_dropped, 1);
	}
}

const struct actor__service_ops actor__request_service = {
    .name = "request",
    .id = SVC_REQUEST,
    .blocks = {0x06, 0x16},
    .actor_bits = SVC_BIT_REQUEST,
    .init = req_init,
    .fini = req_fini,
    .next_deadline = req_next_deadline,
    .tick = req_tick,
    .owner_stopped = req_owner_stopped,
    .receive = req_receive,
    .handled = req_handled,
    .dead_letter = req_dead_letter,
};
