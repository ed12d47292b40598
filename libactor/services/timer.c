/* timer.c: the timer service: per-worker timers in a binary min-heap ordered by (deadline,
 * sequence number), so timers with equal deadlines fire in the order they were set. Only the
 * worker's own thread touches its timers; a timer sends ACTOR_MSG_TIMER to its target like any
 * other sender. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "services/services.h"

struct actor__timers {
	struct actor__timer **heap;
	uint32_t len, cap;
	uint64_t seq;
	struct actor__table table;
};

struct actor__timer {
	uint64_t deadline_ns;
	uint64_t seq;
	uint64_t period_ns;
	uint64_t tag;
	uint64_t handle;
	actor_ref_t target;
	uint32_t heap_pos;
};

static struct actor__timers *timers_of(struct actor_worker *w)
{
	return w->svc[SVC_TIMER];
}

static bool earlier(const struct actor__timer *a, const struct actor__timer *b)
{
	return a->deadline_ns < b->deadline_ns ||
	       (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static void heap_set(struct actor__timers *ts, uint32_t i, struct actor__timer *t)
{
	ts->heap[i] = t;
	t->heap_pos = i;
}

static void sift_up(struct actor__timers *ts, uint32_t i)
{
	struct actor__timer *t = ts->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!earlier(t, ts->heap[parent]))
			break;
		heap_set(ts, i, ts->heap[parent]);
		i = parent;
	}
	heap_set(ts, i, t);
}

static void sift_down(struct actor__timers *ts, uint32_t i)
{
	struct actor__timer *t = ts->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		const struct actor__timer *best = t;
		if (l < ts->len && earlier(ts->heap[l], best)) {
			m = l;
			best = ts->heap[l];
		}
		if (r < ts->len && earlier(ts->heap[r], best))
			m = r;
		if (m == i)
			break;
		heap_set(ts, i, ts->heap[m]);
		i = m;
	}
	heap_set(ts, i, t);
}

static void heap_remove(struct actor__timers *ts, struct actor__timer *t)
{
	uint32_t i = t->heap_pos;
	struct actor__timer *last = ts->heap[--ts->len];
	if (last == t)
		return;
	heap_set(ts, i, last);
	if (i > 0 && earlier(last, ts->heap[(i - 1) / 2]))
		sift_up(ts, i);
	else
		sift_down(ts, i);
}

static void timer_free(struct actor_worker *w, struct actor__timers *ts, struct actor__timer *t)
{
	actor__table_del(&ts->table, (uint32_t)t->handle);
	actor__free(t, sizeof(*t));
	actor__stat_add(&w->st.timers, (uint64_t)-1);
}

static uint64_t timers_next(const struct actor_worker *w, const void *state)
{
	(void)w;
	const struct actor__timers *ts = state;
	return ts->len ? ts->heap[0]->deadline_ns : UINT64_MAX;
}

/* Fires every timer due at `now`; returns how many fired. */
static unsigned timers_fire(struct actor_worker *w, void *state, uint64_t now)
{
	struct actor__timers *ts = state;
	unsigned fired = 0;
	while (ts->len > 0 && ts->heap[0]->deadline_ns <= now) {
		struct actor__timer *t = ts->heap[0];
		actor_timer_event_t ev = {.timer = {t->handle}, .tag = t->tag, .expirations = 1};
		if (t->period_ns != 0)
			ev.expirations += (now - t->deadline_ns) / t->period_ns;
		int rc = actor__send_internal(w->sys, t->target, ACTOR_REF_NONE, ACTOR_MSG_TIMER,
		                              &ev, sizeof(ev));
		fired++;
		if (rc < 0 || t->period_ns == 0) {
			heap_remove(ts, t);
			timer_free(w, ts, t); /* one-shot done, or the target is gone */
			continue;
		}
		t->deadline_ns += ev.expirations * t->period_ns;
		t->seq = ts->seq++;
		sift_down(ts, 0);
	}
	return fired;
}

static int timers_init(struct actor_worker *w, void **state)
{
	(void)w;
	*state = calloc(1, sizeof(struct actor__timers));
	return *state != NULL ? 0 : -ENOMEM;
}

static void timers_fini(struct actor_worker *w, void *state)
{
	(void)w;
	struct actor__timers *ts = state;
	for (uint32_t i = 0; i < ts->len; i++)
		actor__free(ts->heap[i], sizeof(struct actor__timer));
	free(ts->heap);
	actor__table_free(&ts->table);
	free(ts);
}

const struct actor__service_ops actor__timer_service = {
    .name = "timer",
    .id = SVC_TIMER,
    .blocks = {0x02},
    .init = timers_init,
    .fini = timers_fini,
    .next_deadline = timers_next,
    .tick = timers_fire,
};

int actor_timer_start(actor_ctx_t *ctx, actor_ref_t target, uint64_t delay_ns, uint64_t period_ns,
                      uint64_t tag, actor_timer_t *out)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL || delay_ns > UINT64_MAX / 4 || period_ns > UINT64_MAX / 4)
		return -EINVAL;
	if (actor_ref_is_none(target))
		return -ESRCH;
	struct actor__timers *ts = timers_of(w);
	if (ts->len == ts->cap) {
		uint32_t cap = ts->cap ? ts->cap * 2 : 64;
		struct actor__timer **h = realloc(ts->heap, cap * sizeof(*h));
		if (h == NULL)
			return -ENOMEM;
		ts->heap = h;
		ts->cap = cap;
	}
	struct actor__timer *t = actor__alloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	int64_t idx = actor__table_put(&ts->table, t);
	if (idx < 0) {
		actor__free(t, sizeof(*t));
		return (int)idx;
	}
	t->deadline_ns = actor__now_ns() + delay_ns;
	t->seq = ts->seq++;
	t->period_ns = period_ns;
	t->tag = tag;
	t->target = target;
	t->handle = actor__table_handle(&ts->table, w->index, (uint32_t)idx);
	ts->heap[ts->len] = t;
	t->heap_pos = ts->len++;
	sift_up(ts, t->heap_pos);
	actor__stat_add(&w->st.timers, 1);
	/* Only this worker can cancel it, so the actor that set it stays here. */
	ctx->actor->flags |= ACTOR_BOUND;
	if (out != NULL)
		out->id = t->handle;
	return 0;
}

int actor_timer_cancel(actor_ctx_t *ctx, actor_timer_t timer)
{
	struct actor_worker *w = actor__ctx_worker(ctx);
	if (w == NULL)
		return -EINVAL;
	if (actor__handle_worker(timer.id) != w->index)
		return -EXDEV;
	struct actor__timers *ts = timers_of(w);
	struct actor__timer *t = actor__table_get(&ts->table, timer.id);
	if (t == NULL)
		return -ESRCH;
	heap_remove(ts, t);
	timer_free(w, ts, t);
	return 0;
}
