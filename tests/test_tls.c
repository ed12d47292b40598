/* test_tls.c: TLS on listeners and outgoing connections, once per available reactor backend:
 * an echo over TLS against OpenSSL's own blocking client (every byte back in order, then
 * close_notify both ways), an end without close_notify, plain bytes to a TLS listener, a
 * libactor client that verifies the server (and refuses a server it cannot verify), a
 * greeting written before the handshake ended, a slow owner held to its read limit, and the
 * errors of actor_tls_create and of mismatched configurations.
 *
 * The certificates are made at the start of the run, with OpenSSL, in a directory of their
 * own: a CA, a server certificate it signs for "localhost" and 127.0.0.1, and a stranger CA.
 */
#include "common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net_common.h"

/* ---------------------------------------------------------------------------------------------
 * Certificates
 */

static char cert_dir[64];
/* Before Check runs tests (no ck_assert there): a failure ends the run as a hard error. */
#define MUST(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "test_tls: making certificates: %s failed\n", #cond);      \
			ERR_print_errors_fp(stderr);                                               \
			exit(99);                                                                  \
		}                                                                                  \
	} while (0)

static char ca_pem[128], stranger_pem[128], server_pem[128], server_key[128], other_key[128];

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	MUST(k != NULL);
	return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	MUST(ext != NULL);
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
}

/* A certificate for `cn` with `key`, signed by issuer/issuer_key (NULL: self-signed, a CA). */
static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                      long serial)
{
	X509 *c = X509_new();
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400L * 365);
	X509_set_pubkey(c, key);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name);
	if (issuer == NULL) {
		add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(c, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
		add_ext(c, issuer, NID_ext_key_usage, "serverAuth");
	}
	MUST(X509_sign(c, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	return c;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");
	MUST(f != NULL);
	if (cert != NULL)
		MUST(PEM_write_X509(f, cert) == 1);
	if (key != NULL)
		MUST(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
}

static void make_certs(void)
{
	snprintf(cert_dir, sizeof(cert_dir), "/tmp/test_tls.XXXXXX");
	MUST(mkdtemp(cert_dir) != NULL);
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", cert_dir);
	snprintf(stranger_pem, sizeof(stranger_pem), "%s/stranger.pem", cert_dir);
	snprintf(server_pem, sizeof(server_pem), "%s/server.pem", cert_dir);
	snprintf(server_key, sizeof(server_key), "%s/server.key", cert_dir);
	snprintf(other_key, sizeof(other_key), "%s/other.key", cert_dir);
	EVP_PKEY *ca_key = new_key(), *stranger_key = new_key(), *key = new_key(),
	         *other = new_key();
	X509 *ca = new_cert("libactor test CA", ca_key, NULL, NULL, 1);
	X509 *stranger = new_cert("libactor stranger CA", stranger_key, NULL, NULL, 2);
	X509 *server = new_cert("localhost", key, ca, ca_key, 3);
	write_pem(ca_pem, ca, NULL);
	write_pem(stranger_pem, stranger, NULL);
	write_pem(server_pem, server, NULL);
	write_pem(server_key, NULL, key);
	write_pem(other_key, NULL, other);
	X509_free(ca);
	X509_free(stranger);
	X509_free(server);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(stranger_key);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void remove_certs(void)
{
	const char *files[] = {ca_pem, stranger_pem, server_pem, server_key, other_key};
	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(cert_dir);
}

static actor_tls_t *server_tls_max(int max_version)
{
	char why[256];
	actor_tls_t *t = NULL;
	int rc = actor_tls_create(&(actor_tls_opts_t){.server = 1,
	                                              .cert = server_pem,
	                                              .key = server_key,
	                                              .max_version = max_version},
	                          &t, why, sizeof(why));
	ck_assert_msg(rc == 0, "actor_tls_create (server): %d: %s", rc, why);
	return t;
}

static actor_tls_t *server_tls(void)
{
	return server_tls_max(0);
}

static actor_tls_t *client_tls(const char *ca, int verify)
{
	char why[256];
	actor_tls_t *t = NULL;
	int rc = actor_tls_create(&(actor_tls_opts_t){.ca = ca, .verify = verify}, &t, why,
	                          sizeof(why));
	ck_assert_msg(rc == 0, "actor_tls_create (client): %d: %s", rc, why);
	return t;
}

/* ---------------------------------------------------------------------------------------------
 * OpenSSL's own blocking client, in the test thread
 */

struct sclient {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

/* Connects and completes the handshake, trusting the test CA. */
static void sclient_open(struct sclient *s, uint16_t port)
{
	s->fd = tcp_client_ok(port);
	s->ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(s->ctx);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(s->ctx, ca_pem, NULL), 1);
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	s->ssl = SSL_new(s->ctx);
	SSL_set_fd(s->ssl, s->fd);
	SSL_set1_host(s->ssl, "localhost");
	int r = SSL_connect(s->ssl);
	ck_assert_msg(r == 1, "[%s] SSL_connect: %d, error %d, %s", reactor, r,
	              SSL_get_error(s->ssl, r), ERR_reason_error_string(ERR_peek_last_error()));
}

static void sclient_close(struct sclient *s)
{
	SSL_free(s->ssl);
	SSL_CTX_free(s->ctx);
	close(s->fd);
}

static void sclient_write(struct sclient *s, const void *buf, size_t len)
{
	size_t done = 0;
	ck_assert_msg(SSL_write_ex(s->ssl, buf, len, &done) == 1 && done == len,
	              "[%s] SSL_write of %zu bytes failed", reactor, len);
}

/* Reads exactly len bytes; false on an end or error before. */
static bool sclient_read(struct sclient *s, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		size_t n = 0;
		if (SSL_read_ex(s->ssl, (char *)buf + got, len - got, &n) != 1)
			return false;
		got += n;
	}
	return true;
}

/* What the next read says: 0 for close_notify, else SSL_get_error's code (bytes: -1). */
static int sclient_end(struct sclient *s)
{
	char c;
	size_t n = 0;
	int r = SSL_read_ex(s->ssl, &c, 1, &n);
	if (r == 1)
		return -1;
	int e = SSL_get_error(s->ssl, r);
	return e == SSL_ERROR_ZERO_RETURN ? 0 : e;
}

/* ---------------------------------------------------------------------------------------------
 * Echo over TLS
 */

#define ECHO_BYTES (4u << 20)
#define ECHO_STEP (16u << 10)

START_TEST(echo_over_tls_returns_every_byte_in_order_and_ends_with_close_notify)
{
	actor_system_t *sys = backend_system(2);
	struct server srv = {0};
	echo_server_init(&srv);
	srv.opts.tls = server_tls();
	uint16_t port = server_start(sys, &srv);
	actor_tls_free(srv.opts.tls); /* the listener keeps its reference */

	struct sclient s;
	sclient_open(&s, port);
	struct stream tx = {7, 0}, rx = {7, 0};
	static unsigned char out[ECHO_STEP], in[ECHO_STEP];
	for (size_t done = 0; done < ECHO_BYTES; done += ECHO_STEP) {
		stream_fill(&tx, out, sizeof(out));
		sclient_write(&s, out, sizeof(out));
		ck_assert_msg(sclient_read(&s, in, sizeof(in)), "[%s] the echo ended after %zu bytes",
		              reactor, done);
		size_t bad = stream_check(&rx, in, sizeof(in));
		ck_assert_msg(bad == sizeof(in), "[%s] byte %zu of the echo differs", reactor,
		              done + bad);
	}
	/* Our close_notify: the echo actor sees CLOSED 0 and closes, which sends its own. */
	ck_assert_int_eq(SSL_shutdown(s.ssl), 0);
	ck_assert_msg(sclient_end(&s) == 0, "[%s] the server's end was no close_notify", reactor);
	sclient_close(&s);
	assert_eventually(atomic_load(&srv.finished) == 1, TEST_WATCHDOG);
	assert_no_failures(); /* the echo actor fails on a CLOSED with an error */
	backend_system_end(sys, "tls echo");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * How input ends
 */

struct ends {
	atomic_int adopted, closed, error, done;
	atomic_uint_fast64_t bytes;
	char first[64];
};

static void ends_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct conn_base *b = state;
	struct ends *e = b->srv->user;
	actor_tcp_event_t ev;
	actor_tcp_data_t d = {0};
	if (!conn_message(ctx, b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		atomic_store(&e->adopted, 1);
	} else if (msg->type == ACTOR_MSG_TCP_DATA) {
		uint64_t had = atomic_load(&e->bytes);
		if (had < sizeof(e->first) - 1) {
			size_t n = d.len < sizeof(e->first) - 1 - had ? d.len : sizeof(e->first) - 1 - had;
			memcpy(e->first + had, actor_tcp_data_bytes(msg), n);
		}
		atomic_fetch_add(&e->bytes, d.len);
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		atomic_store(&e->error, ev.error);
		atomic_fetch_add(&e->closed, 1);
		actor_tcp_close(ctx, b->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static actor_system_t *ends_server(struct server *srv, struct ends *e, uint16_t *port)
{
	actor_system_t *sys = backend_system(2);
	*srv = (struct server){.conn_fn = ends_fn, .conn_size = sizeof(struct conn_base), .user = e};
	srv->opts.tls = server_tls();
	*port = server_start(sys, srv);
	actor_tls_free(srv->opts.tls);
	return sys;
}

START_TEST(an_end_without_close_notify_is_closed_with_econnaborted_after_the_data)
{
	for (int notify = 0; notify < 2; notify++) {
		struct server srv;
		struct ends e = {0};
		uint16_t port;
		actor_system_t *sys = ends_server(&srv, &e, &port);
		struct sclient s;
		sclient_open(&s, port);
		sclient_write(&s, "hello", 5);
		if (notify)
			SSL_shutdown(s.ssl);
		ck_assert_int_eq(shutdown(s.fd, SHUT_WR), 0);
		assert_eventually(atomic_load(&e.closed) == 1, TEST_WATCHDOG);
		int want = notify ? 0 : -ECONNABORTED;
		ck_assert_msg(atomic_load(&e.error) == want,
		              "[%s] %s: CLOSED with %d (%s), expected %d", reactor,
		              notify ? "close_notify" : "a bare FIN", atomic_load(&e.error),
		              strerror(-atomic_load(&e.error)), want);
		ck_assert_uint_eq(atomic_load(&e.bytes), 5);
		ck_assert_str_eq(e.first, "hello");
		sclient_close(&s);
		assert_no_failures();
		backend_system_end(sys, "tls ends");
	}
}
END_TEST

START_TEST(plain_bytes_to_a_tls_listener_end_with_eproto)
{
	struct server srv;
	struct ends e = {0};
	uint16_t port;
	actor_system_t *sys = ends_server(&srv, &e, &port);
	int fd = tcp_client_ok(port);
	const char line[] = "NICK plain\r\nUSER plain 0 * :Plain\r\n";
	ck_assert(send_all(fd, line, sizeof(line) - 1));
	assert_eventually(atomic_load(&e.closed) == 1, TEST_WATCHDOG);
	ck_assert_int_eq(atomic_load(&e.error), -EPROTO);
	ck_assert_uint_eq(atomic_load(&e.bytes), 0); /* nothing reached the owner as data */
	char buf[256];
	ssize_t n;
	while ((n = recv_some(fd, buf, sizeof(buf))) > 0) /* an alert, maybe, then the end */
		;
	ck_assert_msg(n == 0 || errno == ECONNRESET, "[%s] recv: %s", reactor, strerror(errno));
	close(fd);
	assert_no_failures();
	backend_system_end(sys, "plain to tls");
}
END_TEST

/* A server connection that refuses at once: writes a line and closes on ADOPTED, before the
 * handshake can have begun (chat-server's "Server full"). The handshake goes on in the close,
 * and the client reads the line, then close_notify. */
#define REFUSAL "ERROR :Server full\r\n"

static atomic_int refused;
static bool refuse_by_shutdown; /* half-close, and close once the client has hung up */

static void refuser_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct conn_base *b = state;
	actor_tcp_event_t ev;
	actor_tcp_data_t d = {0};
	if (!conn_message(ctx, b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		int rc = actor_tcp_write(ctx, b->conn, REFUSAL, sizeof(REFUSAL) - 1);
		if (rc == 0)
			rc = refuse_by_shutdown ? actor_tcp_shutdown(ctx, b->conn)
			                        : actor_tcp_close(ctx, b->conn);
		if (rc != 0)
			NOTE_FAIL("refusal: %d", rc);
		atomic_fetch_add(&refused, 1);
		if (!refuse_by_shutdown)
			actor_exit(ctx, ACTOR_REASON_NORMAL);
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		actor_tcp_close(ctx, b->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(a_refusal_written_and_closed_before_the_handshake_reaches_the_client)
{
	refuse_by_shutdown = _i == 1;
	actor_system_t *sys = backend_system(2);
	struct server srv = {.conn_fn = refuser_fn, .conn_size = sizeof(struct conn_base)};
	srv.opts.tls = server_tls();
	uint16_t port = server_start(sys, &srv);
	actor_tls_free(srv.opts.tls);
	for (int i = 0; i < 3; i++) {
		struct sclient s;
		sclient_open(&s, port);
		char got[sizeof(REFUSAL)] = {0};
		ck_assert_msg(sclient_read(&s, got, sizeof(REFUSAL) - 1),
		              "[%s] client %d: the refusal never came", reactor, i);
		ck_assert_str_eq(got, REFUSAL);
		ck_assert_msg(sclient_end(&s) == 0, "[%s] client %d: no close_notify after it",
		              reactor, i);
		sclient_close(&s);
	}
	ck_assert_int_eq(atomic_load(&refused), 3);
	/* (After a shutdown the connection actor closes at the client's end.) */
	assert_eventually(STAT_SUM(sys, conns) == 0, TEST_WATCHDOG);
	ck_assert_uint_eq(STAT_SUM(sys, closes_reset), 0);
	assert_no_failures();
	backend_system_end(sys, "tls refusal");
}
END_TEST

/* A TLS 1.2 client that asks to renegotiate is refused (each renegotiation would cost the
 * server a handshake, at the client's asking): its handshake fails with OpenSSL's "no
 * renegotiation". OpenSSL 3 refuses by default; this pins it. */
START_TEST(a_renegotiation_is_refused)
{
	struct server srv = {0};
	echo_server_init(&srv);
	srv.opts.tls = server_tls();
	actor_system_t *sys = backend_system(2);
	uint16_t port = server_start(sys, &srv);
	actor_tls_free(srv.opts.tls);
	struct sclient s;
	s.fd = tcp_client_ok(port);
	s.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(s.ctx, TLS1_2_VERSION);
	SSL_CTX_load_verify_locations(s.ctx, ca_pem, NULL);
	s.ssl = SSL_new(s.ctx);
	SSL_set_fd(s.ssl, s.fd);
	ck_assert_int_eq(SSL_connect(s.ssl), 1);
	sclient_write(&s, "ping", 4);
	char back[4];
	ck_assert(sclient_read(&s, back, 4));
	ck_assert_int_eq(SSL_renegotiate(s.ssl), 1);
	int r = SSL_do_handshake(s.ssl);
	char c;
	size_t n = 0;
	if (r == 1) /* the request went out: the answer comes with the next read */
		r = SSL_read_ex(s.ssl, &c, 1, &n);
	unsigned long e = ERR_peek_last_error();
	ck_assert_msg(r != 1 && ERR_GET_REASON(e) == SSL_R_NO_RENEGOTIATION,
	              "[%s] renegotiation: %d, %s", reactor, r, ERR_reason_error_string(e));
	ERR_clear_error();
	sclient_close(&s);
	backend_system_end(sys, "tls renegotiation");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A libactor client
 */

#define GREETING "hello from the server\r\n"

/* A server connection that writes a greeting as soon as it has its connection, before the
 * handshake can have ended, then echoes. */
static void greeter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		size_t q = 0;
		int rc = actor_tcp_write(ctx, ev.conn, GREETING, sizeof(GREETING) - 1);
		if (rc == 0)
			rc = actor_tcp_queued(ctx, ev.conn, &q);
		if (rc != 0 || q < sizeof(GREETING) - 1)
			NOTE_FAIL("greeting: %d, %zu queued", rc, q);
	}
	echo_fn(ctx, state, msg);
}

struct client {
	actor_tls_t *tls;
	const char *server_name;
	uint16_t port;
	size_t send; /* bytes to send once connected (seeded stream 9), expecting them back */
	actor_conn_t conn;
	struct stream tx, rx;
	size_t sent, got;
	bool greeted;
	int connect_rc;
	atomic_int connected; /* 1 + the error */
	atomic_int closed, done;
	atomic_int close_error;
	atomic_size_t bad_at;
	char greeting[sizeof(GREETING)];
};

/* Sends the rest of the stream, up to the high-water mark (DRAINED: more). */
static void client_send(actor_ctx_t *ctx, struct client *c)
{
	static _Thread_local unsigned char buf[CHUNK];
	while (c->sent < c->send) {
		size_t n = c->send - c->sent < sizeof(buf) ? c->send - c->sent : sizeof(buf);
		struct stream at = c->tx;
		stream_fill(&c->tx, buf, n);
		int rc = actor_tcp_write(ctx, c->conn, buf, n);
		if (rc == -ENOBUFS) {
			c->tx = at; /* these bytes again after DRAINED */
			return;
		}
		if (rc != 0) {
			NOTE_FAIL("client write: %d", rc);
			return;
		}
		c->sent += n;
	}
}

static void client_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct client *c = state;
	if (msg->type == MSG_GO) {
		c->connect_rc = actor_tcp_connect_opts(
		    ctx,
		    &(actor_connect_opts_t){.host = "127.0.0.1",
		                            .port = c->port,
		                            .tls = c->tls,
		                            .server_name = c->server_name},
		    &c->conn);
		if (c->connect_rc != 0) {
			atomic_store(&c->connected, 1 + c->connect_rc);
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		atomic_store(&c->connected, 1 + ev.error);
		if (ev.error != 0) {
			actor_exit(ctx, ACTOR_REASON_NORMAL);
			return;
		}
		c->tx = (struct stream){9, 0};
		c->rx = (struct stream){9, 0};
		client_send(ctx, c);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_DRAINED) {
		client_send(ctx, c);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_DATA) {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		const unsigned char *p = actor_tcp_data_bytes(msg);
		size_t len = d->len;
		while (!c->greeted && len > 0) { /* the greeting comes first, maybe in parts */
			size_t have = strlen(c->greeting);
			c->greeting[have] = (char)*p++;
			len--;
			c->greeted = have + 1 == sizeof(GREETING) - 1;
		}
		size_t bad = stream_check(&c->rx, p, len);
		if (bad != len && atomic_load(&c->bad_at) == SIZE_MAX)
			atomic_store(&c->bad_at, c->got + bad);
		c->got += len;
		if (c->got == c->send && c->greeted)
			actor_tcp_close(ctx, c->conn), atomic_store(&c->done, 1),
			    actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		atomic_store(&c->close_error, ev.error);
		atomic_store(&c->closed, 1);
		actor_tcp_close(ctx, c->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static actor_system_t *greeter_server(struct server *srv, uint16_t *port, int max_version)
{
	actor_system_t *sys = backend_system(2);
	*srv = (struct server){0};
	echo_server_init(srv);
	srv->conn_fn = greeter_fn;
	srv->opts.tls = server_tls_max(max_version);
	*port = server_start(sys, srv);
	actor_tls_free(srv->opts.tls);
	return sys;
}

static void client_run(actor_system_t *sys, struct client *c, uint16_t port)
{
	c->port = port;
	atomic_store(&c->bad_at, SIZE_MAX);
	actor_ref_t ref = spawn_on(sys, 1, client_fn, c);
	send_ok(sys, ref, MSG_GO, NULL, 0);
	wait_stopped(sys, ref);
}

START_TEST(a_client_that_verifies_the_server_gets_the_greeting_then_its_echo)
{
	struct server srv;
	uint16_t port;
	actor_system_t *sys = greeter_server(&srv, &port, 0);
	struct client c = {.tls = client_tls(ca_pem, 0), .server_name = "localhost",
	                   .send = 1u << 20};
	client_run(sys, &c, port);
	actor_tls_free(c.tls);
	ck_assert_msg(atomic_load(&c.connected) == 1, "[%s] CONNECTED with %d", reactor,
	              atomic_load(&c.connected) - 1);
	ck_assert_msg(atomic_load(&c.done) == 1, "[%s] got %zu of %zu bytes (closed: %d, %d)",
	              reactor, c.got, c.send, atomic_load(&c.closed),
	              atomic_load(&c.close_error));
	ck_assert_str_eq(c.greeting, GREETING);
	ck_assert_uint_eq(atomic_load(&c.bad_at), SIZE_MAX);
	assert_eventually(atomic_load(&srv.finished) == 1, TEST_WATCHDOG);
	assert_no_failures();
	backend_system_end(sys, "tls client");
}
END_TEST

/* The greeting alone, the client sending nothing. Over TLS 1.2 the server's Finished is the
 * handshake's last message, and the greeting follows it in the same flight: the client's
 * session holds it by the time the client has CONNECTED, with no more input to come and wake
 * the connection. Over 1.3 it comes after the client's Finished. */
START_TEST(a_greeting_written_before_the_handshake_reaches_a_silent_client)
{
	const int versions[] = {ACTOR_TLS_1_2, ACTOR_TLS_1_3};
	for (unsigned i = 0; i < 2; i++) {
		struct server srv;
		uint16_t port;
		actor_system_t *sys = greeter_server(&srv, &port, versions[i]);
		struct client c = {.tls = client_tls(ca_pem, 0), .server_name = "localhost"};
		client_run(sys, &c, port);
		actor_tls_free(c.tls);
		ck_assert_int_eq(atomic_load(&c.connected), 1);
		ck_assert_msg(atomic_load(&c.done) == 1, "[%s] TLS %#x: greeting \"%s\"", reactor,
		              versions[i], c.greeting);
		assert_no_failures();
		backend_system_end(sys, "tls greeting");
	}
}
END_TEST

START_TEST(a_server_that_fails_verification_is_connected_with_ekeyrejected)
{
	struct server srv;
	uint16_t port;
	actor_system_t *sys = greeter_server(&srv, &port, 0);
	struct {
		const char *ca, *name;
		int verify, want;
	} cases[] = {
	    {stranger_pem, "localhost", 0, -EKEYREJECTED}, /* signed by a CA we do not trust */
	    {ca_pem, "other.example", 0, -EKEYREJECTED},   /* not its name */
	    {stranger_pem, "localhost", ACTOR_TLS_VERIFY_NONE, 0},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client c = {.tls = client_tls(cases[i].ca, cases[i].verify),
		                   .server_name = cases[i].name};
		client_run(sys, &c, port);
		actor_tls_free(c.tls);
		int got = atomic_load(&c.connected) - 1;
		ck_assert_msg(got == cases[i].want, "[%s] case %u: CONNECTED with %d (%s), expected %d",
		              reactor, i, got, strerror(-got), cases[i].want);
	}
	/* The server heard the client's alerts as handshake failures. */
	assert_eventually(atomic_load(&srv.finished) == 3, TEST_WATCHDOG);
	backend_system_end(sys, "tls verification");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Flow control
 */

#define FLOOD_BYTES (32u << 20)

struct tflood {
	struct conn_base b;
	struct stream tx;
	size_t sent;
};

static atomic_int tflood_enobufs, tflood_drained, tflood_done;

static void tflood_write(actor_ctx_t *ctx, struct tflood *f)
{
	static _Thread_local unsigned char buf[CHUNK];
	while (f->sent < FLOOD_BYTES) {
		struct stream at = f->tx;
		stream_fill(&f->tx, buf, sizeof(buf));
		int rc = actor_tcp_write(ctx, f->b.conn, buf, sizeof(buf));
		if (rc == -ENOBUFS) {
			f->tx = at;
			atomic_fetch_add(&tflood_enobufs, 1);
			return;
		}
		if (rc != 0) {
			NOTE_FAIL("flood write: %d", rc);
			return;
		}
		f->sent += sizeof(buf);
	}
	actor_tcp_close(ctx, f->b.conn);
	atomic_store(&tflood_done, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void tflood_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct tflood *f = state;
	actor_tcp_event_t ev;
	actor_tcp_data_t d = {0};
	if (!conn_message(ctx, &f->b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		f->tx = (struct stream){5, 0};
		tflood_write(ctx, f);
	} else if (msg->type == ACTOR_MSG_TCP_DRAINED) {
		atomic_fetch_add(&tflood_drained, 1);
		tflood_write(ctx, f);
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		NOTE_FAIL("flood: CLOSED with %d", ev.error);
		actor_tcp_close(ctx, f->b.conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

/* The client reads nothing until the server has run into its high-water mark: the stream then
 * goes on at DRAINED, and arrives whole, in order, then close_notify. */
START_TEST(a_reader_slower_than_its_tls_writer_gets_everything_through_drained)
{
	actor_system_t *sys = backend_system(2);
	struct server srv = {.conn_fn = tflood_fn, .conn_size = sizeof(struct tflood)};
	srv.opts.tls = server_tls();
	uint16_t port = server_start(sys, &srv);
	actor_tls_free(srv.opts.tls);
	struct sclient s;
	sclient_open(&s, port);
	assert_eventually(atomic_load(&tflood_enobufs) > 0, TEST_WATCHDOG);
	struct stream rx = {5, 0};
	static unsigned char in[CHUNK];
	for (size_t got = 0; got < FLOOD_BYTES; got += sizeof(in)) {
		ck_assert_msg(sclient_read(&s, in, sizeof(in)), "[%s] ended after %zu bytes", reactor,
		              got);
		size_t bad = stream_check(&rx, in, sizeof(in));
		ck_assert_msg(bad == sizeof(in), "[%s] byte %zu differs", reactor, got + bad);
	}
	ck_assert_int_eq(sclient_end(&s), 0);
	ck_assert_int_eq(atomic_load(&tflood_done), 1);
	ck_assert_int_gt(atomic_load(&tflood_drained), 0);
	sclient_close(&s);
	assert_no_failures();
	backend_system_end(sys, "tls flood");
}
END_TEST

/* A server connection that pauses after every eighth DATA message and resumes a millisecond
 * later, on a timer: what the session holds waits, nothing is lost or reordered, and the end
 * (close_notify) comes after all of it. */
#define PAUSED_BYTES (4u << 20)

struct tpauser {
	struct conn_base b;
	struct stream rx;
	uint64_t got;
	unsigned msgs;
};

static atomic_uint_fast64_t tpause_got;
static atomic_int tpause_end, tpause_pauses;

static void tpauser_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct tpauser *p = state;
	actor_tcp_event_t ev;
	actor_tcp_data_t d = {0};
	if (msg->type == ACTOR_MSG_TIMER) {
		int rc = actor_tcp_resume(ctx, p->b.conn);
		if (rc != 0)
			NOTE_FAIL("resume: %d", rc);
		return;
	}
	if (!conn_message(ctx, &p->b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		p->rx = (struct stream){11, 0};
	} else if (msg->type == ACTOR_MSG_TCP_DATA) {
		size_t bad = stream_check(&p->rx, actor_tcp_data_bytes(msg), d.len);
		if (bad != d.len)
			NOTE_FAIL("byte %" PRIu64 " differs", p->got + bad);
		p->got += d.len;
		atomic_store(&tpause_got, p->got);
		if (++p->msgs % 8 == 0) {
			actor_timer_t t;
			int rc = actor_tcp_pause(ctx, p->b.conn);
			if (rc == 0)
				rc = actor_timer_start(ctx, actor_self(ctx), 1000000u, 0, 0, &t);
			if (rc != 0)
				NOTE_FAIL("pause: %d", rc);
			atomic_fetch_add(&tpause_pauses, 1);
		}
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		if (ev.error != 0 || p->got != PAUSED_BYTES)
			NOTE_FAIL("CLOSED %d after %" PRIu64 " bytes", ev.error, p->got);
		atomic_store(&tpause_end, 1);
		actor_tcp_close(ctx, p->b.conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(pauses_over_tls_lose_and_reorder_nothing_and_the_end_comes_last)
{
	actor_system_t *sys = backend_system(2);
	struct server srv = {.conn_fn = tpauser_fn, .conn_size = sizeof(struct tpauser)};
	srv.opts.tls = server_tls();
	uint16_t port = server_start(sys, &srv);
	actor_tls_free(srv.opts.tls);
	struct sclient s;
	sclient_open(&s, port);
	struct stream tx = {11, 0};
	static unsigned char out[CHUNK];
	for (size_t done = 0; done < PAUSED_BYTES; done += sizeof(out)) {
		stream_fill(&tx, out, sizeof(out));
		sclient_write(&s, out, sizeof(out));
	}
	ck_assert_int_eq(SSL_shutdown(s.ssl), 0);
	assert_eventually(atomic_load(&tpause_end) == 1, TEST_WATCHDOG);
	assert_no_failures();
	ck_assert_uint_eq(atomic_load(&tpause_got), PAUSED_BYTES);
	ck_assert_int_gt(atomic_load(&tpause_pauses), 0);
	sclient_close(&s);
	backend_system_end(sys, "tls pauses");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A file sent on a TLS connection
 */

/* Once the handshake is done (the first DATA), the server opens a file and tries to send it on
 * the connection: sendfile would put it on the wire unencrypted, so it is -EOPNOTSUPP, and the
 * connection goes on (the answer is written back over TLS). */
struct fsend {
	struct conn_base b;
	actor_file_t file;
};

static atomic_int fsend_rc = 1;

static void fsend_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct fsend *f = state;
	actor_tcp_event_t ev;
	actor_tcp_data_t d = {0};
	if (msg->type == ACTOR_MSG_FILE) {
		const actor_file_done_t *fd = actor_msg_data(msg);
		if (fd->op == ACTOR_FILE_OPEN && fd->result == 0) {
			f->file = fd->file;
			int rc = actor_file_send(ctx, f->file, 0, 5, f->b.conn, 0);
			atomic_store(&fsend_rc, rc);
			char line[32];
			int n = snprintf(line, sizeof(line), "send: %d\n", rc);
			if (actor_tcp_write(ctx, f->b.conn, line, (size_t)n) != 0)
				NOTE_FAIL("write after the refused send");
			actor_file_close(ctx, f->file, 0);
		} else if (fd->op == ACTOR_FILE_OPEN) {
			NOTE_FAIL("open: %" PRId64, fd->result);
		}
		return;
	}
	if (!conn_message(ctx, &f->b, msg, &ev, &d))
		return;
	if (msg->type == ACTOR_MSG_TCP_DATA) {
		if (actor_file_open(ctx, server_pem, O_RDONLY, 0, 0) != 0)
			NOTE_FAIL("actor_file_open");
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		actor_tcp_close(ctx, f->b.conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

START_TEST(a_file_send_on_a_tls_connection_is_eopnotsupp_and_the_connection_goes_on)
{
	actor_system_t *sys = backend_system(2);
	struct server srv = {.conn_fn = fsend_fn, .conn_size = sizeof(struct fsend)};
	srv.opts.tls = server_tls();
	uint16_t port = server_start(sys, &srv);
	actor_tls_free(srv.opts.tls);
	struct sclient s;
	sclient_open(&s, port);
	sclient_write(&s, "go\n", 3);
	char want[32], got[32] = {0};
	int n = snprintf(want, sizeof(want), "send: %d\n", -EOPNOTSUPP);
	ck_assert_msg(sclient_read(&s, got, (size_t)n), "[%s] no answer over TLS", reactor);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(atomic_load(&fsend_rc), -EOPNOTSUPP);
	SSL_shutdown(s.ssl);
	sclient_close(&s);
	assert_no_failures();
	backend_system_end(sys, "tls file send");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Configuration errors
 */

START_TEST(bad_tls_configurations_are_refused_with_a_reason)
{
	char why[256];
	actor_tls_t *t = NULL;
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing.pem", cert_dir);
	ck_assert_int_eq(actor_tls_create(&(actor_tls_opts_t){.server = 1, .cert = missing,
	                                                     .key = server_key},
	                                  &t, why, sizeof(why)),
	                 -ENOENT);
	ck_assert_msg(strstr(why, missing) != NULL, "why: %s", why);
	ck_assert_int_eq(actor_tls_create(&(actor_tls_opts_t){.server = 1, .cert = server_pem,
	                                                     .key = other_key},
	                                  &t, why, sizeof(why)),
	                 -EINVAL);
	ck_assert_msg(strstr(why, "does not match") != NULL, "why: %s", why);
	ck_assert_int_eq(actor_tls_create(&(actor_tls_opts_t){.server = 1, .cert = server_key,
	                                                     .key = server_key},
	                                  &t, why, sizeof(why)),
	                 -EINVAL); /* a key where the certificate should be */
	ck_assert_int_eq(
	    actor_tls_create(&(actor_tls_opts_t){.server = 1, .cert = server_pem}, &t, why, 0),
	    -EINVAL);
	ck_assert_int_eq(actor_tls_create(&(actor_tls_opts_t){.verify = 7}, &t, NULL, 0), -EINVAL);
	ck_assert_int_eq(actor_tls_create(NULL, &t, NULL, 0), -EINVAL);
	ck_assert_ptr_null(t);
}
END_TEST

struct misuse {
	actor_tls_t *server, *client;
	int listen_rc, connect_rc;
	atomic_int done;
};

static void misuse_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)msg;
	struct misuse *m = state;
	actor_listener_t l;
	actor_conn_t c;
	m->listen_rc = actor_tcp_listen(
	    ctx, &(actor_listen_opts_t){.host = "127.0.0.1", .tls = m->client}, &l);
	m->connect_rc = actor_tcp_connect_opts(
	    ctx, &(actor_connect_opts_t){.host = "127.0.0.1", .port = 9, .tls = m->server}, &c);
	atomic_store(&m->done, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

START_TEST(a_configuration_for_the_other_side_is_einval)
{
	actor_system_t *sys = backend_system(1);
	struct misuse m = {.server = server_tls(), .client = client_tls(ca_pem, 0)};
	send_ok(sys, spawn_on(sys, 0, misuse_fn, &m), MSG_GO, NULL, 0);
	assert_eventually(atomic_load(&m.done) == 1, TEST_WATCHDOG);
	ck_assert_int_eq(m.listen_rc, -EINVAL);
	ck_assert_int_eq(m.connect_rc, -EINVAL);
	actor_tls_free(m.server);
	actor_tls_free(m.client);
	backend_system_end(sys, "tls misuse");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Suites
 */

static void add_cases(Suite *s, unsigned b, void (*fixture)(void))
{
	TCase *tc = backend_tcase(s, b, 0, "tls", TEST_TIMEOUT, fixture);
	tcase_add_test(tc, echo_over_tls_returns_every_byte_in_order_and_ends_with_close_notify);
	tcase_add_test(tc, an_end_without_close_notify_is_closed_with_econnaborted_after_the_data);
	tcase_add_test(tc, plain_bytes_to_a_tls_listener_end_with_eproto);
	tcase_add_test(tc, a_renegotiation_is_refused);
	/* 0: closed at once; 1: shut down for writing, closed at the client's end. */
	tcase_add_loop_test(tc, a_refusal_written_and_closed_before_the_handshake_reaches_the_client,
	                    0, 2);
	tcase_add_test(tc, a_client_that_verifies_the_server_gets_the_greeting_then_its_echo);
	tcase_add_test(tc, a_greeting_written_before_the_handshake_reaches_a_silent_client);
	tcase_add_test(tc, a_server_that_fails_verification_is_connected_with_ekeyrejected);
	tcase_add_test(tc, a_reader_slower_than_its_tls_writer_gets_everything_through_drained);
	tcase_add_test(tc, pauses_over_tls_lose_and_reorder_nothing_and_the_end_comes_last);
	tcase_add_test(tc, a_file_send_on_a_tls_connection_is_eopnotsupp_and_the_connection_goes_on);
	if (b == 0) {
		tcase_add_test(tc, bad_tls_configurations_are_refused_with_a_reason);
		tcase_add_test(tc, a_configuration_for_the_other_side_is_einval);
	}
}

int main(int argc, char **argv)
{
	char why[128];
	actor_tls_t *probe = NULL;
	if (actor_tls_create(&(actor_tls_opts_t){0}, &probe, why, sizeof(why)) == -ENOTSUP) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	actor_tls_free(probe);
	make_certs();
	int rc = backend_main(argc, argv, "tls", add_cases);
	remove_certs();
	return rc;
}
