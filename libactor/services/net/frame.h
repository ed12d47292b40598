/* frame.h: a framer: bytes in, frames out (frame.c). It knows nothing of connections; the one
 * that feeds it says where frames go through a sink. */
#ifndef ACTOR_FRAME_H
#define ACTOR_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "actor.h"

struct actor__framer;

struct actor__frame_sink {
	void (*frame)(void *ctx, const void *bytes, size_t len); /* one whole frame */
	void (*overlong)(void *ctx);      /* an overlong frame, skipped, stood here */
	void (*end)(void *ctx, int err);  /* no more input will be framed: -EMSGSIZE */
	void (*fail)(void *ctx, int err); /* the input cannot be framed: -ENOMEM */
	bool (*live)(void *ctx);          /* false once the input is no longer wanted */
};

/* -EINVAL for bad options (ACTOR_FRAME_NONE included: no framer then), -ENOMEM. */
int actor__framer_new(const actor_tcp_framing_t *f, struct actor__framer **out);
void actor__framer_free(struct actor__framer *fr);
/* Frames bytes[0..len), the bytes kept from earlier calls first. */
void actor__framer_input(struct actor__framer *fr, const unsigned char *bytes, size_t len,
                         const struct actor__frame_sink *sink, void *ctx);
/* The bytes of the unfinished frame (none while an overlong one is being skipped). */
size_t actor__framer_pending(const struct actor__framer *fr, const unsigned char **bytes);

#endif /* ACTOR_FRAME_H */
