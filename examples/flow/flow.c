/* flow.c: a fast producer and a slower consumer with a bounded mailbox: -EAGAIN and
 * ACTOR_MSG_WRITABLE.
 *
 * The consumer's mailbox holds at most CAPACITY items. The producer sends its items as fast as
 * it can; a send to the full mailbox fails with -EAGAIN and queues nothing, so the producer
 * keeps that item and stops. Once the consumer has worked its mailbox down to half, the
 * producer gets one ACTOR_MSG_WRITABLE and goes on from the item it kept. No call waits, memory
 * stays bounded, and the consumer checks that every item arrives once, in order.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <actor.h>

#define ITEMS 100000
#define CAPACITY 64

enum { MSG_GO = 1, MSG_ITEM };

struct producer {
	actor_ref_t consumer;
	int next;     /* the item to send next: a refused one is sent again */
	int refusals; /* sends refused with -EAGAIN */
	int notices;  /* ACTOR_MSG_WRITABLE received */
	int error;
};

static void producer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct producer *p = state;
	if (msg->type == ACTOR_MSG_WRITABLE)
		p->notices++; /* the consumer has room again */
	while (p->next < ITEMS) {
		int rc = actor_send(actor_ctx_system(ctx), p->consumer, MSG_ITEM, &p->next,
		                    sizeof(p->next));
		if (rc == -EAGAIN) { /* full: wait for the notice, nothing else to do */
			p->refusals++;
			return;
		}
		if (rc < 0) {
			p->error = rc;
			actor_exit(ctx, rc);
			return;
		}
		p->next++;
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL); /* all sent */
}

struct consumer {
	int expected; /* the next item due */
	int wrong;    /* items out of order */
};

static void consumer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct consumer *c = state;
	int item;
	if (msg->type != MSG_ITEM)
		return;
	memcpy(&item, actor_msg_data(msg), sizeof(item));
	if (item != c->expected)
		c->wrong++;
	c->expected = item + 1;
	if (c->expected == ITEMS)
		actor_exit(ctx, ACTOR_REASON_NORMAL);
}

int main(void)
{
	struct producer p = {0};
	struct consumer c = {0};
	actor_system_t *sys;
	actor_ref_t producer;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, &(actor_spawn_opts_t){.capacity = CAPACITY}, consumer_fn, &c,
	                 &p.consumer);
	if (rc == 0)
		rc = actor_spawn(sys, NULL, producer_fn, &p, &producer);
	if (rc == 0)
		rc = actor_send(sys, producer, MSG_GO, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "start: %s\n", strerror(-rc));
		actor_system_free(sys);
		return 1;
	}
	actor_system_run(sys);
	actor_system_free(sys);

	printf("consumer: %d items, %d out of order; producer: %d refusals, %d notices\n",
	       c.expected, c.wrong, p.refusals, p.notices);
	/* One notice per refusal: the producer sent nothing more until its notice came. */
	return c.expected == ITEMS && c.wrong == 0 && p.error == 0 && p.refusals == p.notices ? 0
	                                                                                      : 1;
}
