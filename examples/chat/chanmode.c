/* chanmode.c: MODE on a channel: the query (324, 329), the ban list (367, 368), and changes,
 * which need a channel operator: i m n s t, k and l with their parameters, o and v on members,
 * b masks. The changes made are relayed as one MODE line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"

static void mode_query(struct chan *c, const struct cm_req *q, const struct member *m)
{
	char modes[16] = "+", params[64] = "";
	size_t n = 1;
	static const struct {
		unsigned bit;
		char ch;
	} flags[] = {{C_INVITE, 'i'},
	             {C_MODERATED, 'm'},
	             {C_NOEXTERNAL, 'n'},
	             {C_SECRET, 's'},
	             {C_TOPICLOCK, 't'}};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (c->modes & flags[i].bit)
			modes[n++] = flags[i].ch;
	if (c->key[0] != '\0') {
		modes[n++] = 'k';
		snprintf(params, sizeof(params), " %s", m != NULL ? c->key : "*");
	}
	if (c->limit != 0) {
		modes[n++] = 'l';
		size_t pl = strlen(params);
		snprintf(params + pl, sizeof(params) - pl, " %u", c->limit);
	}
	modes[n] = '\0';
	NUMERIC(c, q, "324", "%s %s%s", c->name, modes, params);
	NUMERIC(c, q, "329", "%s %lld", c->name, (long long)c->created);
}

static void ban_list(struct chan *c, const struct cm_req *q)
{
	for (unsigned i = 0; i < c->nbans; i++)
		NUMERIC(c, q, "367", "%s %s %s %lld", c->name, c->bans[i].mask, c->bans[i].by,
		        (long long)c->bans[i].when);
	NUMERIC(c, q, "368", "%s :End of channel ban list", c->name);
}

/* A ban mask in full nick!user@host form, cut to fit in dst. */
static void normalise_mask(char *dst, size_t cap, const char *mask)
{
	const char *pre = "", *post = "";
	if (strchr(mask, '!') == NULL && strchr(mask, '@') != NULL)
		pre = "*!";
	else if (strchr(mask, '!') == NULL)
		post = "!*@*";
	size_t lp = strlen(pre), lq = strlen(post), lm = strlen(mask);
	if (lp + lq + lm >= cap)
		lm = cap - 1 - lp - lq;
	memcpy(dst, pre, lp);
	memcpy(dst + lp, mask, lm);
	memcpy(dst + lp + lm, post, lq + 1);
}

/* Adds or removes a ban; false when nothing changed. */
static bool change_ban(struct chan *c, const struct cm_req *q, bool add, char *mask, size_t cap)
{
	char full[IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 3];
	normalise_mask(full, sizeof(full), mask);
	snprintf(mask, cap, "%s", full);
	for (unsigned i = 0; i < c->nbans; i++) {
		if (irc_casecmp(c->bans[i].mask, full) != 0)
			continue;
		if (add)
			return false;
		free(c->bans[i].mask);
		c->bans[i] = c->bans[--c->nbans];
		return true;
	}
	if (!add)
		return false;
	if (c->nbans == IRC_MAXBANS) {
		NUMERIC(c, q, "478", "%s %s :Channel ban list is full", c->name, full);
		return false;
	}
	char *copy = strdup(full);
	if (copy == NULL)
		return false;
	struct ban *b = &c->bans[c->nbans++];
	b->mask = copy;
	snprintf(b->by, sizeof(b->by), "%s", q->who.nick);
	b->when = time(NULL);
	return true;
}

/* The changes made, for the MODE line everyone sees. */
struct mode_changes {
	char modes[64];
	size_t n;
	char sign;
	char params[400];
	size_t pl;
};

static void record(struct mode_changes *mc, bool add, char ch, const char *param)
{
	if (mc->n + 3 >= sizeof(mc->modes))
		return;
	char sign = add ? '+' : '-';
	if (mc->sign != sign)
		mc->modes[mc->n++] = mc->sign = sign;
	mc->modes[mc->n++] = ch;
	mc->modes[mc->n] = '\0';
	if (param != NULL && mc->pl < sizeof(mc->params))
		mc->pl += (size_t)snprintf(mc->params + mc->pl, sizeof(mc->params) - mc->pl, " %s",
		                           param);
}

static unsigned flag_bit(char ch)
{
	switch (ch) {
	case 'i':
		return C_INVITE;
	case 'm':
		return C_MODERATED;
	case 'n':
		return C_NOEXTERNAL;
	case 's':
		return C_SECRET;
	case 't':
		return C_TOPICLOCK;
	default:
		return 0;
	}
}

/* One mode letter that needs operator rights; arg is its parameter or NULL. */
static void apply_mode(struct chan *c, struct chat_env *e, const struct cm_req *q,
                       struct mode_changes *mc, bool add,
                       char ch, const char *arg)
{
	unsigned bit = flag_bit(ch);
	if (bit != 0) {
		if (((c->modes & bit) != 0) != add) {
			c->modes ^= bit;
			record(mc, add, ch, NULL);
		}
		return;
	}
	switch (ch) {
	case 'o':
	case 'v': {
		struct member *t = chan_member_by_nick(c, arg);
		uint8_t f = ch == 'o' ? M_OP : M_VOICE;
		if (t == NULL) {
			NUMERIC(c, q, "441", "%s %s :They aren't on that channel", arg, c->name);
		} else if (((t->flags & f) != 0) != add) {
			t->flags ^= f;
			record(mc, add, ch, t->who.nick);
			/* its session shows the prefix in WHOIS */
			struct cm_chan_note *note = chat_msg_new(e, sizeof(*note), CM_MEMBER_MODE);
			if (note != NULL) {
				note->flags = t->flags;
				snprintf(note->chan, sizeof(note->chan), "%s", c->name);
				chat_send(e, t->ref, note);
			}
		}
		break;
	}
	case 'b': {
		char mask[IRC_NICKLEN + IRC_USERLEN + IRC_HOSTLEN + 3];
		snprintf(mask, sizeof(mask), "%s", arg);
		if (change_ban(c, q, add, mask, sizeof(mask)))
			record(mc, add, ch, mask);
		break;
	}
	case 'k':
		if (add) {
			char key[IRC_KEYLEN + 1];
			snprintf(key, sizeof(key), "%s", arg);
			key[strcspn(key, ", ")] = '\0';
			if (key[0] == '\0' || strcmp(key, c->key) == 0)
				break;
			snprintf(c->key, sizeof(c->key), "%s", key);
			record(mc, true, 'k', key);
		} else if (c->key[0] != '\0') {
			c->key[0] = '\0';
			record(mc, false, 'k', "*");
		}
		break;
	case 'l':
		if (add) {
			char *end;
			long v = strtol(arg, &end, 10);
			if (*end != '\0' || v <= 0 || v > 1000000 || (unsigned)v == c->limit)
				break;
			c->limit = (unsigned)v;
			char num[16];
			snprintf(num, sizeof(num), "%u", c->limit);
			record(mc, true, 'l', num);
		} else if (c->limit != 0) {
			c->limit = 0;
			record(mc, false, 'l', NULL);
		}
		break;
	}
}

void chan_mode(struct chan *c, struct chat_env *e, const struct cm_req *q, struct member *m)
{
	if (q->nargs == 0) {
		mode_query(c, q, m);
		return;
	}
	struct mode_changes mc = {.n = 0};
	unsigned secret = c->modes & C_SECRET;
	const char *p = cm_req_arg(q, 0);
	unsigned argi = 1, with_param = 0;
	bool add = true, refused = false;

	for (; *p != '\0'; p++) {
		char ch = *p;
		if (ch == '+' || ch == '-') {
			add = ch == '+';
			continue;
		}
		if (strchr("imnstovbkl", ch) == NULL) {
			NUMERIC(c, q, "472", "%c :is unknown mode char to me", ch);
			continue;
		}
		bool needs = ch == 'o' || ch == 'v' || ch == 'b' || ch == 'k' || (ch == 'l' && add);
		const char *arg = NULL;
		if (needs && argi < q->nargs && with_param < IRC_MAXMODES) {
			arg = cm_req_arg(q, argi++);
			with_param++;
		}
		if (ch == 'b' && arg == NULL) {
			ban_list(c, q); /* anyone may look */
			continue;
		}
		if (needs && arg == NULL && !(ch == 'k' && !add))
			continue; /* a parameter is missing: skip the letter */
		if (m == NULL || !(m->flags & M_OP)) {
			if (!refused && m == NULL)
				NUMERIC(c, q, "442", "%s :You're not on that channel", c->name);
			else if (!refused)
				NUMERIC(c, q, "482", "%s :You're not channel operator", c->name);
			refused = true;
			continue;
		}
		apply_mode(c, e, q, &mc, add, ch, arg);
	}
	if (mc.n == 0)
		return;
	chan_broadcast_req(c, e, q, ":" WHO_FMT " MODE %s %s%s", WHO_ARGS(&m->who), c->name,
	                   mc.modes, mc.params);
	chan_send_info(c, e);
	if ((c->modes & C_SECRET) != secret) /* members hide it in WHOIS from now on, or not */
		for (uint32_t i = 0; i < c->n; i++) {
			struct cm_chan_note *note = chat_msg_new(e, sizeof(*note), CM_CHAN_SECRET);
			if (note == NULL)
				break;
			note->secret = (c->modes & C_SECRET) != 0;
			snprintf(note->chan, sizeof(note->chan), "%s", c->name);
			chat_send(e, c->mem[i]->ref, note);
		}
}
