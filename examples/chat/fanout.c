/* fanout.c: one per worker. A channel sends each broadcast once per worker that has members,
 * here, with the list of members living on this worker; the fan-out hands the shared line to
 * each of them with a small local message. So a line said in a channel of N members crosses
 * between cores at most once per worker, not once per member.
 *
 * The fan-out also knows every session on its worker, to tell them all goodbye at shutdown.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "hmap.h"

struct fanout {
	struct chat_srv *srv;
	unsigned index;
	struct hmap sessions; /* ref.id -> (void *)ref.id: the sessions living here */
	bool shutting_down;
	bool done_reported;
};

struct fanout *fanout_new(struct chat_srv *srv, unsigned index)
{
	struct fanout *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->srv = srv;
	f->index = index;
	return f;
}

void fanout_free(struct fanout *f)
{
	if (f == NULL)
		return;
	hmap_free(&f->sessions);
	free(f);
}

static bool same_id(const void *val, const void *arg)
{
	return (uintptr_t)val == *(const uint64_t *)arg;
}

void chat_deliver_local(struct chat_env *e, struct chat_line *line, const actor_ref_t *to,
                        uint32_t n, actor_ref_t exclude, uint64_t dedup)
{
	for (uint32_t i = 0; i < n; i++) {
		if (actor_ref_eq(to[i], exclude))
			continue;
		struct cm_line *lm = chat_msg_new(e, sizeof(*lm), CM_LINE);
		if (lm == NULL)
			continue; /* out of memory: this member misses the line */
		chat_line_ref(line, 1);
		lm->line = line;
		lm->dedup = dedup;
		/* A session that just left, or a slow client (srv.c): released there. */
		chat_send(e, to[i], lm);
	}
}

static void deliver(struct chat_env *e, struct cm_fanout *fm)
{
	chat_deliver_local(e, fm->line, fm->to, fm->n, fm->exclude, fm->dedup);
	chat_line_unref(fm->line); /* the channel's reference */
	fm->line = NULL;
}

static void report_done(struct fanout *f, struct chat_env *e)
{
	if (f->shutting_down && f->sessions.n == 0 && !f->done_reported) {
		f->done_reported = true;
		e->ops->shutdown_done(e);
	}
}

void fanout_handle(struct fanout *f, struct chat_env *e, actor_msg_t *m)
{
	uint64_t id = m->sender.id;

	switch (m->type) {
	case CM_FANOUT:
		deliver(e, (struct cm_fanout *)m);
		break;
	case CM_WALLOPS: { /* every session here; each shows it if its user has +w */
		struct cm_line *w = (struct cm_line *)m;
		for (size_t i = 0; i < f->sessions.cap; i++) {
			if (f->sessions.keys[i] == 0)
				continue;
			struct cm_line *lm = chat_msg_new(e, sizeof(*lm), CM_WALLOPS);
			if (lm == NULL)
				break;
			chat_line_ref(w->line, 1);
			lm->line = w->line;
			lm->dedup = 0;
			chat_send(e, (actor_ref_t){.id = (uint64_t)(uintptr_t)f->sessions.vals[i]},
			          lm);
		}
		chat_line_unref(w->line);
		w->line = NULL;
		break;
	}
	case CM_SESS_HELLO:
		if (hmap_find(&f->sessions, id, same_id, &id) == NULL)
			hmap_put(&f->sessions, id, (void *)(uintptr_t)id);
		if (f->shutting_down) { /* accepted just before the listeners closed */
			actor_msg_t *bye = chat_msg_new(e, sizeof(*bye), CM_SHUTDOWN);
			chat_send(e, m->sender, bye);
		}
		break;
	case CM_SESS_GONE:
		hmap_del(&f->sessions, id, (void *)(uintptr_t)id);
		report_done(f, e);
		break;
	case CM_SHUTDOWN:
		f->shutting_down = true;
		for (size_t i = 0; i < f->sessions.cap; i++) {
			if (f->sessions.keys[i] == 0)
				continue;
			actor_msg_t *bye = chat_msg_new(e, sizeof(*bye), CM_SHUTDOWN);
			chat_send(e, (actor_ref_t){.id = (uint64_t)(uintptr_t)f->sessions.vals[i]},
			          bye);
		}
		report_done(f, e);
		break;
	default:
		break;
	}
}
