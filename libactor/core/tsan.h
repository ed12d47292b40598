/* tsan.h: happens-before annotations for ThreadSanitizer.
 *
 * Concurrency Kit's atomics are inline assembly, which ThreadSanitizer does not see. Without
 * help it would report every message payload written by a sender and read by the receiver as a
 * race. The queue code marks each hand-off instead: a release on the node before it is
 * published, an acquire on it after it is taken. In other builds the macros are empty.
 */
#ifndef ACTOR_TSAN_H
#define ACTOR_TSAN_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ACTOR_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ACTOR_TSAN 1
#endif

#ifdef ACTOR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define ACTOR_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define ACTOR_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define ACTOR_TSAN_ACQUIRE(p) ((void)0)
#define ACTOR_TSAN_RELEASE(p) ((void)0)
#endif

#endif /* ACTOR_TSAN_H */
