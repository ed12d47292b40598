/* tls.h: TLS sessions over memory, for conn.c. A session never touches a socket: the
 * connection feeds it the encrypted bytes its reactor read (actor__tls_feed), takes back the
 * encrypted bytes to write (actor__tls_output), and moves plaintext in and out. So TLS works the
 * same over both reactor backends, and a session is touched only by its connection's worker.
 * Built without OpenSSL (tls_none.c), actor_tls_create says -ENOTSUP and no session exists.
 */
#ifndef ACTOR_TLS_H
#define ACTOR_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "actor.h"

struct actor__tls_session;

/* What actor__tls_handshake and actor__tls_read return besides an error (< 0). */
enum {
	TLS_OK = 0,     /* done (handshake), or bytes read */
	TLS_WANT = 1,   /* needs more input from the peer */
	TLS_CLOSED = 2, /* the peer sent close_notify: no more input */
};

/* A reference for a listener (actor_tls_free drops it). */
actor_tls_t *actor__tls_ref(actor_tls_t *cfg);
bool actor__tls_is_server(const actor_tls_t *cfg);

/* A session with `cfg`, as a server or (server_name: SNI and the name to verify, maybe NULL) a
 * client. -ENOMEM. */
int actor__tls_session_new(actor_tls_t *cfg, const char *server_name,
                           struct actor__tls_session **out);
void actor__tls_session_free(struct actor__tls_session *s);

/* Encrypted bytes from the peer. -ENOMEM. */
int actor__tls_feed(struct actor__tls_session *s, const void *data, size_t len);
/* Moves the handshake on: TLS_OK once it is done, TLS_WANT, or -EKEYREJECTED / -EPROTO. */
int actor__tls_handshake(struct actor__tls_session *s);
bool actor__tls_established(const struct actor__tls_session *s);
/* Plaintext, after the handshake: TLS_OK with *got > 0, TLS_WANT, TLS_CLOSED, or -EPROTO. */
int actor__tls_read(struct actor__tls_session *s, void *buf, size_t cap, size_t *got);
/* Whether input fed is not all read yet (encrypted, or decrypted and buffered). */
bool actor__tls_input_left(const struct actor__tls_session *s);
/* Encrypts `len` bytes, after the handshake: 0, or -ENOMEM / -EPROTO. */
int actor__tls_write(struct actor__tls_session *s, const void *data, size_t len);
/* Queues close_notify (after the handshake; once). */
void actor__tls_close_notify(struct actor__tls_session *s);
/* The encrypted bytes waiting to be sent, then their removal once the caller has queued them. */
size_t actor__tls_output(struct actor__tls_session *s, const void **bytes);
void actor__tls_output_taken(struct actor__tls_session *s);

#endif /* ACTOR_TLS_H */
