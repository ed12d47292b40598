/* alloc_jemalloc.c: runtime objects and messages from jemalloc, whose thread caches make the
 * cross-thread free of a message cheap; plus a per-worker free list for small messages.
 *
 * mallocx, never malloc: inside a shared libactor, `malloc` binds to whichever allocator comes
 * first in the program's link order (usually the C library's), while sdallocx is jemalloc's
 * alone. jemalloc's own entry points always pair.
 */
#include "config.h"

#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/alloc.h"

void *actor__alloc(size_t size)
{
	return mallocx(size, 0);
}

void *actor__zalloc(size_t size)
{
	return mallocx(size, MALLOCX_ZERO);
}

void actor__free(void *p, size_t size)
{
	if (p != NULL)
		sdallocx(p, size, 0);
}

const char *actor__alloc_name(void)
{
	return "jemalloc";
}

/* Small messages come from a per-thread free list for each of jemalloc's two smallest size
 * classes a message can have (32 and 64 bytes: a header and up to 8 or 40 bytes of payload),
 * so that a ping-pong reuses the same few blocks without entering jemalloc. Each message keeps
 * its exact size class: rounding 32-byte messages up to 64 doubled the cache lines a one-way
 * stream moves between cores and cost bench/counting_1to1 a quarter of its rate.
 *
 * One-way flows (a producer feeding a consumer on another thread; a thread outside the pool
 * feeding actors) fill the consumer's lists and drain the producer's. Freed blocks then travel
 * back through the spare stacks, one per class: a list that overflows hands SPARE_CHAIN blocks
 * to its class's stack in one push, and a thread whose list is empty takes the whole stack in
 * one exchange. Without them every such message was a jemalloc allocation on one thread and a
 * free on another, and both sides refilled and flushed through the arena's bin locks
 * (bench/fork_join_throughput: jemalloc 38% of the profile, its mutexes 7%).
 *
 * A taker keeps up to RESERVE_CHAINS of the chains it took (its `reserve`) and puts the rest
 * back; it allocates from one chain at a time (its `cold` list) once the blocks freed on its
 * own thread (its list) run out, so that the list stays short and its head stays the block
 * freed last, still in this core's cache. Adopting a whole stack into the list, then spilling
 * its freshest blocks when it overflowed, left the cold ones to allocate from (bench/skynet:
 * up to 495 ms against 205-270 ms, once the stacks could hold a quarter of a million blocks).
 *
 * The stacks hold up to SPARE_MAX blocks, enough for the backlog of a consumer that a producer
 * on its own worker runs ahead of (bench/counting_4to1: four senders with 64K messages each in
 * flight; at 4,096 a stack overflowed into jemalloc, and the rate was 19M-24M messages/s
 * against 29M-35M). A worker going to sleep gives back to jemalloc, TRIM_CHAINS chains at a
 * time, what the stacks hold beyond SPARE_KEEP (actor__msg_cache_trim): the blocks of a burst
 * are not held while nothing runs.
 *
 * The stack, a Treiber stack of chains:
 *   - A chain is SPARE_CHAIN blocks linked through their first word (as in a list); its first
 *     block holds, in its next two words, the chain below it and its length (struct chain).
 *   - Push: CAS on the head (release: the chain's links, written by the pusher, are visible to
 *     the taker); a list of chains goes back in one push the same way. Take: exchange with
 *     NULL (acquire). No pop of a single chain exists, so the CAS cannot suffer ABA: a head
 *     that is gone and back is still the head it links to.
 *   - `spare_len` bounds what the stacks hold (SPARE_MAX blocks per class); it is a hint,
 *     read and updated relaxed, and may overshoot by a few chains when pushes race. A chain
 *     leaves it when a taker keeps it or a trim frees it.
 * Bounds, per thread: MSG_CACHE_MAX blocks in its list, SPARE_CHAIN in its cold list and
 * RESERVE_CHAINS chains in its reserve (with 64-byte blocks, 256 KiB, 16 KiB and 256 KiB);
 * SPARE_MAX per stack (16 MiB). Threads outside the pool get a cache on their first message;
 * it is returned to jemalloc, reserve included, when the thread exits. */
#define MSG_CLASSES ACTOR_MSG_CLASSES
#define MSG_CACHE_MAX ACTOR_MSG_LIST_MAX
#define SPARE_CHAIN 256
#define SPARE_MAX 262144
#define SPARE_KEEP 4096
#define RESERVE_CHAINS 16 /* chains a taker keeps; the rest of the stack goes back */
#define TRIM_CHAINS 16 /* chains a trim frees at most: a sleeping worker wakes in time */
_Static_assert(SPARE_CHAIN <= MSG_CACHE_MAX, "a full list holds a chain to spill");

static const size_t class_size[MSG_CLASSES] = {32, 64};

struct chain;

struct msg_cache {
	/* First: actor__msg_list_tls points at it (alloc.h). With `cold`, what is left of the
	 * chain being allocated from. */
	struct actor__msg_list list;
	struct chain *reserve[MSG_CLASSES]; /* chains taken from the spare stack, not yet begun */
};

_Static_assert(sizeof(struct msg_cache) <= sizeof(struct actor__msg_cache_slot),
               "the worker reserves room for the cache");

/* A chain's first block. Every block of a chain, this one included, holds in its fourth word
 * (`ahead`) the block AHEAD places further down the chain, or NULL: a taker allocating block i
 * prefetches block i + AHEAD, so that the line of each block it takes, last written on another
 * core, is on its way well before it is needed. Following the links alone, one block ahead,
 * the taker stalled on nearly every link (bench/fork_join_throughput, the sending thread: 40%
 * of its time in the allocation, two thirds of that on the one load of the link). Four places
 * ahead were too few once a transfer between cores took longer than four sends (the fourth
 * round in bench/README.md). */
struct chain {
	void *next_block;   /* the list link every cached block has */
	struct chain *next; /* the chain below this one on the stack */
	size_t len;         /* blocks in this chain, this one included */
	void *ahead;        /* the block AHEAD places on; the same word in every block */
};
_Static_assert(sizeof(struct chain) <= 32, "a chain's header fits the smallest block");
#define AHEAD ACTOR_MSG_AHEAD
#define AHEAD_WORD ACTOR_MSG_AHEAD_WORD
_Static_assert(offsetof(struct chain, ahead) == AHEAD_WORD * sizeof(void *),
               "alloc.h reads a chain block's `ahead`");

static _Atomic(struct chain *) spare[MSG_CLASSES];
static _Atomic size_t spare_len[MSG_CLASSES];

__attribute__((
    tls_model("initial-exec"))) _Thread_local struct actor__msg_list *actor__msg_list_tls;

/* This thread's cache, whose list actor__msg_list_tls points at; NULL: none yet. */
static struct msg_cache *tls_cache(void)
{
	return (struct msg_cache *)actor__msg_list_tls; /* the list is the cache's start */
}

static void tls_cache_set(struct msg_cache *c)
{
	actor__msg_list_tls = c != NULL ? &c->list : NULL;
}
/* The list of a thread outside the pool, and the key whose destructor empties it. */
static __attribute__((tls_model("initial-exec"))) _Thread_local struct msg_cache tls_own;
static pthread_key_t own_key;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;
static bool own_key_ok;

/* Frees the `next_block`-linked blocks from `p` on. */
static void free_blocks(void *p, int k)
{
	while (p != NULL) {
		void *next = *(void **)p;
		sdallocx(p, class_size[k], 0);
		p = next;
	}
}

/* Frees the chains from `ch` down. */
static void free_chains(struct chain *ch, int k)
{
	while (ch != NULL) {
		struct chain *below = ch->next;
		free_blocks(ch, k);
		ch = below;
	}
}

static void cache_empty(struct msg_cache *c)
{
	for (int k = 0; k < MSG_CLASSES; k++) {
		free_blocks(c->list.head[k], k);
		c->list.head[k] = NULL;
		c->list.len[k] = 0;
		free_blocks(c->list.cold[k], k);
		c->list.cold[k] = NULL;
		free_chains(c->reserve[k], k);
		c->reserve[k] = NULL;
	}
}

static void own_destroy(void *arg)
{
	cache_empty(arg);
	tls_cache_set(NULL);
}

static void own_key_create(void)
{
	own_key_ok = pthread_key_create(&own_key, own_destroy) == 0;
}

/* This thread's list: the worker's, or one of its own for a thread outside the pool (NULL if
 * it cannot be emptied at the thread's exit, which never happens in practice). */
static struct msg_cache *my_cache(void)
{
	struct msg_cache *c = tls_cache();
	if (c != NULL)
		return c;
	pthread_once(&own_once, own_key_create);
	if (!own_key_ok || pthread_setspecific(own_key, &tls_own) != 0)
		return NULL;
	tls_cache_set(&tls_own);
	return &tls_own;
}

void actor__msg_cache_attach(struct actor__msg_cache_slot *slot)
{
	struct msg_cache *c = (struct msg_cache *)slot;
	for (int k = 0; k < MSG_CLASSES; k++) {
		c->list.head[k] = NULL;
		c->list.len[k] = 0;
		c->list.cold[k] = NULL;
		c->reserve[k] = NULL;
	}
	tls_cache_set(c);
}

void actor__msg_cache_detach(void)
{
	struct msg_cache *c = tls_cache();
	if (c == NULL)
		return;
	cache_empty(c);
	tls_cache_set(NULL);
}

/* Moves SPARE_CHAIN blocks of `c`'s full list `k` to the spare stack, or frees one block if
 * the stack is full. */
static void spill(struct msg_cache *c, int k)
{
	if (atomic_load_explicit(&spare_len[k], memory_order_relaxed) >= SPARE_MAX) {
		void *p = c->list.head[k];
		c->list.head[k] = *(void **)p;
		c->list.len[k]--;
		sdallocx(p, class_size[k], 0);
		return;
	}
	struct chain *ch = c->list.head[k];
	/* The walk writes each block's `ahead` (the blocks are this core's: freed here lately). */
	void *behind[AHEAD] = {NULL};
	void *last = ch;
	for (size_t i = 0;; i++) {
		if (i >= AHEAD)
			((void **)behind[i % AHEAD])[AHEAD_WORD] = last;
		behind[i % AHEAD] = last;
		if (i + 1 == SPARE_CHAIN)
			break;
		last = *(void **)last;
	}
	for (size_t i = 0; i < AHEAD; i++)
		((void **)behind[i])[AHEAD_WORD] = NULL;
	c->list.head[k] = *(void **)last;
	c->list.len[k] -= SPARE_CHAIN;
	*(void **)last = NULL;
	ch->len = SPARE_CHAIN;
	atomic_fetch_add_explicit(&spare_len[k], SPARE_CHAIN, memory_order_relaxed);
	struct chain *top = atomic_load_explicit(&spare[k], memory_order_relaxed);
	do
		ch->next = top;
	while (!atomic_compare_exchange_weak_explicit(&spare[k], &top, ch, memory_order_release,
	                                              memory_order_relaxed));
}

/* Takes the whole spare stack of class `k`, or NULL; the caller subtracts what it keeps or
 * frees from spare_len. */
static struct chain *spare_take(int k)
{
	/* relaxed load first: an empty stack costs no exclusive access to its line. */
	if (atomic_load_explicit(&spare[k], memory_order_relaxed) == NULL)
		return NULL;
	return atomic_exchange_explicit(&spare[k], NULL, memory_order_acquire);
}

/* Puts the list of chains from `first` (linked through `next`, NULL-terminated) back on the
 * stack of class `k` in one push: from NULL when the stack is empty, which needs no tail,
 * otherwise below the current top, after a walk to the list's last chain. */
static void spare_put_back(int k, struct chain *first)
{
	struct chain *top = NULL;
	if (atomic_compare_exchange_strong_explicit(&spare[k], &top, first, memory_order_release,
	                                            memory_order_relaxed))
		return;
	struct chain *last = first;
	while (last->next != NULL)
		last = last->next;
	do
		last->next = top;
	while (!atomic_compare_exchange_weak_explicit(&spare[k], &top, first, memory_order_release,
	                                              memory_order_relaxed));
}

/* Begins the next chain of `c`'s reserve for class `k`, refilling the reserve from the spare
 * stack first if it is empty; false if both were empty. */
static bool refill(struct msg_cache *c, int k)
{
	struct chain *ch = c->reserve[k];
	if (ch == NULL) {
		ch = spare_take(k);
		if (ch == NULL)
			return false;
		struct chain *last = ch;
		size_t n = ch->len;
		for (unsigned m = 1; m < RESERVE_CHAINS && last->next != NULL; m++) {
			last = last->next;
			n += last->len;
		}
		struct chain *rest = last->next;
		last->next = NULL;
		atomic_fetch_sub_explicit(&spare_len[k], n, memory_order_relaxed);
		if (rest != NULL)
			spare_put_back(k, rest);
	}
	c->reserve[k] = ch->next;
	c->list.cold[k] = ch; /* its first word links the chain's blocks already */
	__builtin_prefetch(ch->next_block, 1);
	return true;
}

void actor__msg_cache_trim(void)
{
	for (int k = 0; k < MSG_CLASSES; k++) {
		size_t held = atomic_load_explicit(&spare_len[k], memory_order_relaxed);
		if (held <= SPARE_KEEP)
			continue;
		struct chain *ch = spare_take(k);
		size_t freed = 0;
		/* The top chains, TRIM_CHAINS at most: the work stays bounded, and what is left
		 * goes back in one push (from NULL, most likely: no walk). */
		for (unsigned m = 0; ch != NULL && m < TRIM_CHAINS && freed + SPARE_KEEP < held;
		     m++) {
			struct chain *below = ch->next;
			freed += ch->len;
			free_blocks(ch, k);
			ch = below;
		}
		atomic_fetch_sub_explicit(&spare_len[k], freed, memory_order_relaxed);
		if (ch != NULL)
			spare_put_back(k, ch);
	}
}

/* The list of `size`'s class is empty, or there is no list yet, or `size` has no class. */
void *actor__msg_alloc_slow(size_t size)
{
	int k = actor__msg_class(size);
	if (k < 0)
		return mallocx(size, 0);
	struct msg_cache *c = my_cache();
	if (c == NULL)
		return mallocx(class_size[k], 0);
	/* The list is empty: a list set up just now has nothing in it yet, and a thread calls
	 * here only once actor__msg_take has found nothing. */
	if (c->list.cold[k] == NULL && !refill(c, k))
		return mallocx(class_size[k], 0);
	return actor__msg_cold_pop(&c->list, k);
}

/* The list of `size`'s class is full, or there is no list yet, or `size` has no class. */
void actor__msg_free_slow(void *p, size_t size)
{
	int k = actor__msg_class(size);
	if (k < 0) {
		sdallocx(p, size, 0);
		return;
	}
	struct msg_cache *c = my_cache();
	if (c == NULL) {
		sdallocx(p, class_size[k], 0);
		return;
	}
	if (c->list.len[k] >= MSG_CACHE_MAX)
		spill(c, k);
	*(void **)p = c->list.head[k];
	c->list.head[k] = p;
	c->list.len[k]++;
}
