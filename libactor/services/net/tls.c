/* tls.c: TLS configurations (OpenSSL SSL_CTX) and sessions over memory BIOs (see tls.h).
 *
 * Threads: a configuration is made and freed from any thread, and shared by the sessions of
 * every worker (OpenSSL 3 makes an SSL_CTX safe to use from several threads once set up; we
 * never change one after actor_tls_create). A session belongs to one connection and is used
 * only on that connection's worker. OpenSSL's error queue is per thread: each call that may
 * fail clears it first, so that a failure on one connection never shows on another.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "services/net/tls.h"

struct actor_tls {
	_Atomic uint32_t refs; /* the creator's, and one per listener */
	bool server;
	SSL_CTX *ctx;
};

struct actor__tls_session {
	SSL *ssl;
	BIO *in, *out; /* encrypted bytes from the peer, and to it (owned by ssl) */
	bool established;
	bool notified; /* close_notify queued */
};

/* ---------------------------------------------------------------------------------------------
 * Configurations
 */

/* Writes "what: OpenSSL's first reason" into why. */
static void say(char *why, size_t why_len, const char *what, const char *file)
{
	if (why == NULL || why_len == 0)
		return;
	char reason[256] = "";
	unsigned long e = ERR_peek_last_error();
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(why, why_len, "%s%s%s%s%s", what, file ? " " : "", file ? file : "",
	         reason[0] ? ": " : "", reason);
	ERR_clear_error();
}

/* -ENOENT or -EACCES (with why) if the file cannot be read; 0 if it can. */
static int readable(const char *file, const char *what, char *why, size_t why_len)
{
	FILE *f = fopen(file, "r");
	if (f != NULL) {
		fclose(f);
		return 0;
	}
	int rc = -errno;
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "cannot read the %s %s: %s", what, file, strerror(errno));
	return rc;
}

static bool version_ok(int v)
{
	return v == 0 || v == ACTOR_TLS_1_2 || v == ACTOR_TLS_1_3;
}

int actor_tls_create(const actor_tls_opts_t *o, actor_tls_t **out, char *why, size_t why_len)
{
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (o == NULL || out == NULL || o->verify < ACTOR_TLS_VERIFY_DEFAULT ||
	    o->verify > ACTOR_TLS_VERIFY_PEER || (o->server && o->verify == ACTOR_TLS_VERIFY_NONE) ||
	    (!o->server && o->verify == ACTOR_TLS_VERIFY_PEER) ||
	    (o->server && (o->cert == NULL || o->key == NULL)) || (o->cert == NULL) != (o->key == NULL) ||
	    (o->server && o->verify == ACTOR_TLS_VERIFY_PEER && o->ca == NULL) ||
	    !version_ok(o->min_version) || !version_ok(o->max_version) ||
	    (o->min_version != 0 && o->max_version != 0 && o->min_version > o->max_version)) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "bad TLS options: %s",
			         o != NULL && o->server && (o->cert == NULL || o->key == NULL)
			             ? "a server needs a certificate and a key"
			             : "see actor_tls_opts_t");
		return -EINVAL;
	}
	int rc;
	if ((o->cert && (rc = readable(o->cert, "certificate", why, why_len)) < 0) ||
	    (o->key && (rc = readable(o->key, "key", why, why_len)) < 0) ||
	    (o->ca && (rc = readable(o->ca, "CA file", why, why_len)) < 0))
		return rc;
	ERR_clear_error();
	struct actor_tls *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->server = o->server != 0;
	t->ctx = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
	if (t->ctx == NULL) {
		free(t);
		say(why, why_len, "cannot make a TLS context", NULL);
		return -ENOMEM;
	}
	SSL_CTX *ctx = t->ctx;
	_Static_assert(ACTOR_TLS_1_2 == TLS1_2_VERSION && ACTOR_TLS_1_3 == TLS1_3_VERSION,
	               "the versions are OpenSSL's");
	SSL_CTX_set_min_proto_version(ctx, o->min_version ? o->min_version : TLS1_2_VERSION);
	if (o->max_version != 0)
		SSL_CTX_set_max_proto_version(ctx, o->max_version);
	/* Buffers of idle connections go back to the allocator: 34 KiB each otherwise. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	const char *fail = NULL, *file = NULL;
	if (o->cert != NULL && SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
		fail = "cannot load the certificate", file = o->cert;
	else if (o->key != NULL && SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1)
		fail = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH
		           ? "the key does not match the certificate"
		           : "cannot load the key",
		file = o->key;
	else if (o->key != NULL && SSL_CTX_check_private_key(ctx) != 1)
		fail = "the key does not match the certificate", file = o->key;
	else if (o->ca != NULL && SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
		fail = "cannot load the CA file", file = o->ca;
	else if (o->ca == NULL && !t->server && o->verify != ACTOR_TLS_VERIFY_NONE &&
	         SSL_CTX_set_default_verify_paths(ctx) != 1)
		fail = "cannot load the system's trusted certificates";
	if (fail != NULL) {
		say(why, why_len, fail, file);
		SSL_CTX_free(ctx);
		free(t);
		return -EINVAL;
	}
	if (t->server)
		SSL_CTX_set_verify(ctx,
		                   o->verify == ACTOR_TLS_VERIFY_PEER
		                       ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
		                       : SSL_VERIFY_NONE,
		                   NULL);
	else
		SSL_CTX_set_verify(
		    ctx, o->verify == ACTOR_TLS_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	atomic_init(&t->refs, 1);
	*out = t;
	return 0;
}

actor_tls_t *actor__tls_ref(actor_tls_t *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void actor_tls_free(actor_tls_t *t)
{
	/* acq_rel: the last holder frees, after every other holder's use. Sessions hold the
	 * SSL_CTX itself (SSL_new takes a reference of its own). */
	if (t != NULL && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
		SSL_CTX_free(t->ctx);
		free(t);
	}
}

bool actor__tls_is_server(const actor_tls_t *t)
{
	return t->server;
}

/* ---------------------------------------------------------------------------------------------
 * Sessions
 */

int actor__tls_session_new(actor_tls_t *t, const char *server_name,
                           struct actor__tls_session **out)
{
	ERR_clear_error();
	struct actor__tls_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->ssl = SSL_new(t->ctx);
	s->in = BIO_new(BIO_s_mem());
	s->out = BIO_new(BIO_s_mem());
	if (s->ssl == NULL || s->in == NULL || s->out == NULL) {
		BIO_free(s->in);
		BIO_free(s->out);
		SSL_free(s->ssl);
		free(s);
		ERR_clear_error();
		return -ENOMEM;
	}
	/* An empty input BIO says "retry", not EOF: the end of the stream is conn.c's to see. */
	BIO_set_mem_eof_return(s->in, -1);
	SSL_set_bio(s->ssl, s->in, s->out);
	if (t->server) {
		SSL_set_accept_state(s->ssl);
	} else {
		SSL_set_connect_state(s->ssl);
		if (server_name != NULL) {
			unsigned char ip[16];
			bool numeric = inet_pton(AF_INET, server_name, ip) == 1 ||
			               inet_pton(AF_INET6, server_name, ip) == 1;
			int ok = 1;
			if (!numeric)
				ok = SSL_set_tlsext_host_name(s->ssl, server_name) == 1 &&
				     SSL_set1_host(s->ssl, server_name) == 1;
			else
				ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), server_name);
			if (!ok) {
				actor__tls_session_free(s);
				ERR_clear_error();
				return -ENOMEM;
			}
		}
	}
	*out = s;
	return 0;
}

void actor__tls_session_free(struct actor__tls_session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl); /* and its BIOs */
	free(s);
}

int actor__tls_feed(struct actor__tls_session *s, const void *data, size_t len)
{
	size_t put = 0;
	return BIO_write_ex(s->in, data, len, &put) == 1 && put == len ? 0 : -ENOMEM;
}

/* The error behind a failed call that returned r. */
static int failure(struct actor__tls_session *s, int r)
{
	int e = SSL_get_error(s->ssl, r);
	int rc = -EPROTO;
	if (e == SSL_ERROR_SSL && SSL_get_verify_result(s->ssl) != X509_V_OK)
		rc = -EKEYREJECTED;
	ERR_clear_error();
	return rc;
}

int actor__tls_handshake(struct actor__tls_session *s)
{
	if (s->established)
		return TLS_OK;
	ERR_clear_error();
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->established = true;
		return TLS_OK;
	}
	if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
		return TLS_WANT;
	return failure(s, r);
}

bool actor__tls_established(const struct actor__tls_session *s)
{
	return s->established;
}

int actor__tls_read(struct actor__tls_session *s, void *buf, size_t cap, size_t *got)
{
	ERR_clear_error();
	int r = SSL_read_ex(s->ssl, buf, cap, got);
	if (r == 1)
		return TLS_OK;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_CLOSED;
	default:
		return failure(s, r);
	}
}

bool actor__tls_input_left(const struct actor__tls_session *s)
{
	return BIO_ctrl_pending(s->in) > 0 || SSL_pending(s->ssl) > 0;
}

int actor__tls_write(struct actor__tls_session *s, const void *data, size_t len)
{
	ERR_clear_error();
	size_t done = 0;
	/* Into a memory BIO a write never waits: it is whole or it failed. */
	if (SSL_write_ex(s->ssl, data, len, &done) == 1 && done == len)
		return 0;
	int e = SSL_get_error(s->ssl, 0);
	ERR_clear_error();
	return e == SSL_ERROR_SYSCALL ? -ENOMEM : -EPROTO;
}

void actor__tls_close_notify(struct actor__tls_session *s)
{
	if (!s->established || s->notified)
		return;
	s->notified = true;
	ERR_clear_error();
	SSL_shutdown(s->ssl); /* 0: sent ours, the peer's not yet seen; we do not wait for it */
	ERR_clear_error();
}

size_t actor__tls_output(struct actor__tls_session *s, const void **bytes)
{
	char *p = NULL;
	long n = BIO_get_mem_data(s->out, &p);
	*bytes = p;
	return n > 0 ? (size_t)n : 0;
}

void actor__tls_output_taken(struct actor__tls_session *s)
{
	(void)BIO_reset(s->out);
}
