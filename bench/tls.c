/* tls.c: TLS beside plain TCP, in one process and one run, once per reactor backend.
 *
 * Usage: bench/tls [seconds] [conns] [which]   (defaults 3, 50, all; which: tls_handshake,
 *        tls_echo_64 or tls_echo_16k: that measurement alone)
 *
 * Both ends are libactor actors on the same system (a server listening on 127.0.0.1 and
 * `conns` client actors), so each figure includes both sides' work, and the ratio of TLS to
 * plain is what a run is for:
 * - handshakes: every client connects, and once CONNECTED closes and connects again, for
 *   `seconds`: connections per second, plain TCP against TLS 1.3 (ECDSA P-256 certificate,
 *   verified by the client);
 * - echo: every client sends 64 bytes and waits for them back, over and over: round trips per
 *   second; then the same with 16 KiB messages, in MiB/s each way.
 *   RESULT name=tls_handshake impl=libactor-<reactor>-<plain|tls> metric=conns_per_s ...
 *   RESULT name=tls_echo_64 impl=... metric=roundtrips_per_s ...
 *   RESULT name=tls_echo_16k impl=... metric=mib_per_s ...
 * The certificate is made at the start with OpenSSL, in a temporary directory. A backend this
 * machine refuses is skipped with a note on stderr.
 */
#include "bench.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

enum { MSG_GO = 1 };

static char dir[64], cert_pem[128], key_pem[128];

static void die(const char *what)
{
	fprintf(stderr, "bench/tls: %s failed\n", what);
	exit(1);
}

/* A self-signed certificate for localhost / 127.0.0.1; the client trusts it as its CA. */
static void make_cert(void)
{
	snprintf(dir, sizeof(dir), "/tmp/bench-tls.XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(cert_pem, sizeof(cert_pem), "%s/cert.pem", dir);
	snprintf(key_pem, sizeof(key_pem), "%s/key.pem", dir);
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *c = X509_new();
	if (key == NULL || c == NULL)
		die("key");
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, key);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
	                           -1, 0);
	X509_set_issuer_name(c, name);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
	X509_EXTENSION *ext =
	    X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
	if (ext == NULL)
		die("subjectAltName");
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(c, key, EVP_sha256()) <= 0)
		die("X509_sign");
	FILE *f = fopen(cert_pem, "w"), *g = fopen(key_pem, "w");
	if (f == NULL || g == NULL || PEM_write_X509(f, c) != 1 ||
	    PEM_write_PrivateKey(g, key, NULL, NULL, 0, NULL, NULL) != 1)
		die("writing the PEM files");
	fclose(f);
	fclose(g);
	X509_free(c);
	EVP_PKEY_free(key);
}

/* ---------------------------------------------------------------------------------------------
 * The actors
 */

struct run {
	actor_tls_t *server_tls, *client_tls; /* NULL: plain */
	uint16_t port;
	size_t msg;        /* echo message size; 0: the handshake run */
	atomic_bool stop;  /* set by the main thread at the end */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t errors;
	atomic_int listening;
	atomic_int clients_left;
	actor_listener_t listener;
};

struct sconn {
	actor_conn_t conn;
};

static void server_conn_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct sconn *s = state;
	if (msg->type == ACTOR_MSG_TCP_ADOPTED) {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		s->conn = ev->conn;
	} else if (msg->type == ACTOR_MSG_TCP_DATA) {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		if (actor_tcp_write(ctx, s->conn, actor_tcp_data_bytes(msg), d->len) < 0)
			actor_tcp_close(ctx, s->conn), actor_exit(ctx, ACTOR_REASON_NORMAL);
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		actor_tcp_close(ctx, s->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static void acceptor_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct run *r = state;
	if (msg->type == MSG_GO) {
		actor_listen_opts_t o = {.host = "127.0.0.1", .per_worker = 1, .tls = r->server_tls};
		bench_check(actor_tcp_listen(ctx, &o, &r->listener), "actor_tcp_listen");
		bench_check(actor_tcp_listener_port(ctx, r->listener, &r->port), "listener port");
		atomic_store(&r->listening, 1);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_ACCEPTED) {
		const actor_tcp_accepted_t *a = actor_msg_data(msg);
		actor_spawn_opts_t o = {
		    .placement = ACTOR_PLACE_FIXED, .worker = a->worker, .destroy = free};
		struct sconn *s = calloc(1, sizeof(*s));
		actor_ref_t ref;
		if (s == NULL || actor_spawn(actor_ctx_system(ctx), &o, server_conn_fn, s, &ref) < 0 ||
		    actor_tcp_handoff(ctx, a->conn, ref) < 0)
			actor_tcp_abort(ctx, a->conn);
		return;
	}
}

struct client {
	struct run *r;
	actor_conn_t conn;
	unsigned char *buf;
	size_t got;
};

static void client_done(actor_ctx_t *ctx, struct client *c)
{
	atomic_fetch_sub(&c->r->clients_left, 1);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void client_connect(actor_ctx_t *ctx, struct client *c)
{
	actor_connect_opts_t o = {.host = "127.0.0.1",
	                          .port = c->r->port,
	                          .tls = c->r->client_tls,
	                          .server_name = "localhost"};
	if (actor_tcp_connect_opts(ctx, &o, &c->conn) < 0) {
		atomic_fetch_add(&c->r->errors, 1);
		client_done(ctx, c);
	}
}

static void client_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct client *c = state;
	struct run *r = c->r;
	if (msg->type == MSG_GO) {
		client_connect(ctx, c);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CONNECTED) {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		if (ev->error != 0) {
			atomic_fetch_add(&r->errors, 1);
			client_done(ctx, c);
			return;
		}
		if (r->msg == 0) { /* handshake run: count it, close, again */
			atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
			actor_tcp_close(ctx, c->conn);
			if (atomic_load_explicit(&r->stop, memory_order_relaxed))
				client_done(ctx, c);
			else
				client_connect(ctx, c);
			return;
		}
		actor_tcp_write(ctx, c->conn, c->buf, r->msg);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_DATA) {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		c->got += d->len;
		if (c->got < r->msg)
			return;
		c->got = 0;
		atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
		if (atomic_load_explicit(&r->stop, memory_order_relaxed)) {
			actor_tcp_close(ctx, c->conn);
			client_done(ctx, c);
			return;
		}
		actor_tcp_write(ctx, c->conn, c->buf, r->msg);
		return;
	}
	if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		atomic_fetch_add(&r->errors, 1);
		actor_tcp_close(ctx, c->conn);
		client_done(ctx, c);
	}
}

static void client_destroy(void *state)
{
	struct client *c = state;
	free(c->buf);
	free(c);
}

/* ---------------------------------------------------------------------------------------------
 * One measurement
 */

/* Runs clients for `seconds`; returns what they counted per second (negative: skipped). */
static double measure(const char *reactor, struct run *r, unsigned conns, double seconds)
{
	actor_config_t cfg = {.reactor = reactor};
	actor_system_t *sys = NULL;
	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0)
		return rc;
	actor_ref_t acc;
	bench_check(actor_spawn(sys, NULL, acceptor_fn, r, &acc), "spawn");
	bench_check(actor_send(sys, acc, MSG_GO, NULL, 0), "send");
	while (!atomic_load(&r->listening))
		sched_yield();
	atomic_store(&r->clients_left, (int)conns);
	for (unsigned i = 0; i < conns; i++) {
		struct client *c = calloc(1, sizeof(*c));
		c->r = r;
		c->buf = calloc(1, r->msg ? r->msg : 1);
		actor_spawn_opts_t o = {.destroy = client_destroy};
		actor_ref_t ref;
		bench_check(actor_spawn(sys, &o, client_fn, c, &ref), "spawn client");
		bench_check(actor_send(sys, ref, MSG_GO, NULL, 0), "send");
	}
	/* Warm up for a tenth of the time, then count. */
	struct timespec warm = {0, (long)(seconds * 1e8)};
	nanosleep(&warm, NULL);
	uint64_t c0 = atomic_load(&r->count), t0 = bench_now_ns();
	struct timespec span = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	nanosleep(&span, NULL);
	uint64_t c1 = atomic_load(&r->count), t1 = bench_now_ns();
	atomic_store(&r->stop, true);
	while (atomic_load(&r->clients_left) > 0)
		sched_yield();
	actor_system_shutdown(sys);
	actor_system_run(sys);
	actor_system_free(sys);
	if (atomic_load(&r->errors) != 0)
		fprintf(stderr, "bench/tls: %s: %" PRIu64 " connections failed\n", reactor,
		        (uint64_t)atomic_load(&r->errors));
	return (double)(c1 - c0) / bench_secs(t0, t1);
}

static void report(const char *name, const char *reactor, const char *kind, const char *metric,
                   double value, const char *unit)
{
	printf("RESULT name=%s impl=libactor-%s-%s metric=%s value=%.*f unit=%s\n", name, reactor,
	       kind, metric, value >= 10000.0 ? 0 : 1, value, unit);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double seconds = (double)bench_arg_u64(argc, argv, 1, 3, 3600);
	unsigned conns = (unsigned)bench_arg_u64(argc, argv, 2, 50, 10000);
	char why[256];
	actor_tls_t *probe = NULL;
	if (actor_tls_create(&(actor_tls_opts_t){0}, &probe, why, sizeof(why)) == -ENOTSUP) {
		fprintf(stderr, "bench/tls: SKIP: %s\n", why);
		return 0;
	}
	actor_tls_free(probe);
	make_cert();
	actor_tls_t *stls = NULL, *ctls = NULL;
	bench_check(actor_tls_create(&(actor_tls_opts_t){.server = 1, .cert = cert_pem,
	                                                 .key = key_pem},
	                             &stls, why, sizeof(why)),
	            why);
	bench_check(actor_tls_create(&(actor_tls_opts_t){.ca = cert_pem}, &ctls, why, sizeof(why)),
	            why);
	const char *reactors[] = {"epoll", "io_uring"};
	const struct {
		const char *name, *metric, *unit;
		size_t msg;
	} kinds[] = {
	    {"tls_handshake", "conns_per_s", "1/s", 0},
	    {"tls_echo_64", "roundtrips_per_s", "1/s", 64},
	    {"tls_echo_16k", "mib_per_s", "MiB/s", 16384},
	};
	const char *which = argc > 3 ? argv[3] : "all";
	for (unsigned b = 0; b < 2; b++) {
		for (unsigned k = 0; k < 3; k++) {
			if (strcmp(which, "all") != 0 && strcmp(which, kinds[k].name) != 0)
				continue;
			double v[2];
			for (int tls = 0; tls < 2; tls++) {
				struct run r = {.msg = kinds[k].msg,
				                .server_tls = tls ? stls : NULL,
				                .client_tls = tls ? ctls : NULL};
				v[tls] = measure(reactors[b], &r, conns, seconds);
				if (v[tls] < 0)
					break;
				if (kinds[k].msg == 16384)
					v[tls] = v[tls] * 16384.0 / (1u << 20);
				report(kinds[k].name, reactors[b], tls ? "tls" : "plain", kinds[k].metric,
				       v[tls], kinds[k].unit);
			}
			if (v[0] < 0) {
				fprintf(stderr, "bench/tls: SKIP %s: %s\n", reactors[b], strerror((int)-v[0]));
				break;
			}
			fprintf(stderr, "bench/tls: %s %s: TLS/plain %.2fx\n", reactors[b], kinds[k].name,
			        v[1] / v[0]);
		}
	}
	actor_tls_free(stls);
	actor_tls_free(ctls);
	unlink(cert_pem);
	unlink(key_pem);
	rmdir(dir);
	return 0;
}
