/* tls_none.c: TLS in a build without OpenSSL: no configuration can be made, so no listener or
 * connection ever has a session, and conn.c never calls the session functions. */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "services/net/tls.h"

int actor_tls_create(const actor_tls_opts_t *opts, actor_tls_t **out, char *why, size_t why_len)
{
	(void)opts;
	(void)out;
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "libactor was built without OpenSSL (libssl-dev)");
	return -ENOTSUP;
}

void actor_tls_free(actor_tls_t *tls)
{
	(void)tls;
}

actor_tls_t *actor__tls_ref(actor_tls_t *cfg)
{
	return cfg;
}

bool actor__tls_is_server(const actor_tls_t *cfg)
{
	(void)cfg;
	return false;
}

int actor__tls_session_new(actor_tls_t *cfg, const char *server_name,
                           struct actor__tls_session **out)
{
	(void)cfg;
	(void)server_name;
	(void)out;
	return -ENOTSUP;
}

void actor__tls_session_free(struct actor__tls_session *s)
{
	(void)s;
}

int actor__tls_feed(struct actor__tls_session *s, const void *data, size_t len)
{
	(void)s;
	(void)data;
	(void)len;
	return -ENOTSUP;
}

int actor__tls_handshake(struct actor__tls_session *s)
{
	(void)s;
	return -ENOTSUP;
}

bool actor__tls_established(const struct actor__tls_session *s)
{
	(void)s;
	return false;
}

int actor__tls_read(struct actor__tls_session *s, void *buf, size_t cap, size_t *got)
{
	(void)s;
	(void)buf;
	(void)cap;
	(void)got;
	return -ENOTSUP;
}

bool actor__tls_input_left(const struct actor__tls_session *s)
{
	(void)s;
	return false;
}

int actor__tls_write(struct actor__tls_session *s, const void *data, size_t len)
{
	(void)s;
	(void)data;
	(void)len;
	return -ENOTSUP;
}

void actor__tls_close_notify(struct actor__tls_session *s)
{
	(void)s;
}

size_t actor__tls_output(struct actor__tls_session *s, const void **bytes)
{
	(void)s;
	*bytes = NULL;
	return 0;
}

void actor__tls_output_taken(struct actor__tls_session *s)
{
	(void)s;
}
