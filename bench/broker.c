/* broker.c: the broker service against libnats used directly, on one nats-server (JetStream,
 * loopback) that the program starts: what delivering into actors and answering as messages
 * costs over the bare client.
 *
 * Usage: bench/broker [messages]   (default 200,000 for pubsub; the other rows a fiftieth)
 *
 * Rows, each for impl=libactor (publishes batched by libnats's flusher, the default),
 * impl=libactor-at-once (actor_broker_opts_t.write_at_once) and impl=libnats:
 *   name=broker_pubsub       one publisher, one subscriber, 64-byte messages:
 *                            metric=msgs_per_s (published and received, all of them)
 *   name=broker_request      requests one at a time to a responder on the same server:
 *                            metric=p50_us and metric=p99_us round trip
 *   name=broker_js_ack       JetStream publishes one at a time to an R1 stream on disk:
 *                            metric=p50_us and metric=p99_us to the acknowledgement
 *   name=broker_js_window    JetStream publishes with 256 in flight: metric=acks_per_s
 * libactor: the actors on a 2-worker system, the publisher and subscriber on different workers.
 * libnats: a thread publishing, an async subscription's callback (libnats's own delivery
 * thread), natsConnection_Request, js_Publish, js_PublishAsync with MaxPending 256.
 * Every message is checked (count, and the sequence of the last acknowledgement); a wrong one
 * fails the run. The server is nats-server from PATH or /usr/sbin (NATS_SERVER overrides).
 */
#define _GNU_SOURCE 1

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <nats/nats.h>

#include "bench.h"

#define WINDOW 256

static char url[64];

/* ---------------------------------------------------------------------------------------------
 * The server
 */

static pid_t server_start(char *dir)
{
	const char *bin = getenv("NATS_SERVER");
	static const char *const where[] = {"/usr/bin/nats-server", "/usr/sbin/nats-server",
	                                    "/usr/local/bin/nats-server"};
	for (size_t i = 0; (bin == NULL || access(bin, X_OK) != 0) && i < 3; i++)
		bin = where[i];
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "bench/broker: skipped: nats-server not found (apt-get install "
		                "nats-server)\n");
		exit(0);
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char log[96];
		snprintf(log, sizeof(log), "%s/log", dir);
		execl(bin, bin, "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", dir,
		      "--ports_file_dir", dir, "-l", log, (char *)NULL);
		_exit(127);
	}
	char path[160];
	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", dir, (int)pid);
	for (int i = 0; i < 2000 && url[0] == '\0'; i++) {
		char buf[256] = "";
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			buf[n > 0 ? n : 0] = '\0';
			const char *p = strstr(buf, "nats://127.0.0.1:");
			if (p != NULL)
				snprintf(url, sizeof(url), "nats://127.0.0.1:%d", atoi(p + 17));
		}
		if (url[0] == '\0')
			usleep(5000);
	}
	if (url[0] == '\0') {
		fprintf(stderr, "bench/broker: nats-server did not start (see %s/log)\n", dir);
		exit(1);
	}
	return pid;
}

static void row(const char *name, const char *impl, const char *metric, double v, const char *unit)
{
	printf("RESULT name=%s impl=%s metric=%s value=%.*f unit=%s\n", name, impl, metric,
	       v >= 10000.0 ? 0 : 1, v, unit);
	fflush(stdout);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void latency_rows(const char *name, const char *impl, uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	row(name, impl, "p50_us", (double)ns[n / 2] / 1e3, "us");
	row(name, impl, "p99_us", (double)ns[n * 99 / 100] / 1e3, "us");
}

static void fail(const char *what)
{
	fprintf(stderr, "bench/broker: %s\n", what);
	exit(1);
}

/* ---------------------------------------------------------------------------------------------
 * libactor
 */

#define T_GO 1
#define T_READY 2

struct bench {
	uint64_t n;
	actor_ref_t peer;
	uint64_t got, t0, t1, sent;
	uint64_t *lat;
	uint64_t first_seq, last_seq; /* JetStream: the lowest and highest sequences acknowledged */
	int rc;
};

static void pub_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct bench *b = state;
	if (msg->type != T_READY)
		return;
	char data[64] = {0};
	b->t0 = bench_now_ns();
	for (uint64_t i = 0; i < b->n; i++) {
		actor_broker_pub_t pub = {.subject = "bench.ps", .data = data, .len = sizeof(data)};
		if (actor_broker_publish(ctx, &pub) != 0)
			b->rc = -1;
	}
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void sub_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct bench *b = state;
	if (msg->type == T_GO) {
		actor_broker_sub_opts_t o = {.max_pending = 1u << 30};
		actor_broker_sub_t sub;
		b->rc = actor_broker_subscribe(ctx, "bench.ps", &o, &sub);
		actor_send(actor_ctx_system(ctx), b->peer, T_READY, NULL, 0);
		return;
	}
	if (actor_broker_msg(msg)->dropped != 0)
		b->rc = -2;
	if (++b->got == b->n) {
		b->t1 = bench_now_ns();
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

static void responder_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct bench *b = state;
	if (msg->type == T_GO) {
		actor_broker_sub_t sub;
		b->rc = actor_broker_subscribe(ctx, "bench.rq", NULL, &sub);
		actor_send(actor_ctx_system(ctx), b->peer, T_GO, NULL, 0);
		return;
	}
	if (msg->type == T_READY) {
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	actor_broker_msg_t *m = actor_broker_msg(msg);
	actor_broker_pub_t pub = {.subject = actor_broker_reply_subject(m), .data = "ok", .len = 2};
	if (actor_broker_publish(ctx, &pub) != 0)
		b->rc = -3;
}

/* Requests (mode 0), JetStream publishes one at a time (1), or WINDOW in flight (2). */
struct asker {
	struct bench *b;
	int mode;
	uint64_t t;
};

static void ask(actor_ctx_t *ctx, struct asker *a)
{
	actor_request_t req;
	actor_request_opts_t o = {.timeout_ns = 10000000000ull};
	char data[64] = {0};
	actor_broker_pub_t pub = {
	    .subject = a->mode == 0 ? "bench.rq" : "bjs.x", .data = data, .len = sizeof(data)};
	a->t = bench_now_ns();
	int rc = a->mode == 0 ? actor_broker_request(ctx, &pub, &o, &req)
	                      : actor_broker_js_publish(ctx, &pub, &o, &req);
	if (rc != 0)
		a->b->rc = rc;
	a->b->sent++;
}

static void asker_behavior(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct asker *a = state;
	struct bench *b = a->b;
	if (msg->type == T_GO) {
		b->t0 = bench_now_ns();
		for (int i = 0; i < (a->mode == 2 ? WINDOW : 1); i++)
			ask(ctx, a);
		return;
	}
	const actor_reply_t *r = actor_msg_data(msg);
	if (msg->type != ACTOR_MSG_REPLY || r->error != 0)
		b->rc = -4;
	if (a->mode != 0) {
		actor_broker_ack_t ack;
		memcpy(&ack, actor_reply_data((actor_reply_t *)r), sizeof(ack));
		if (ack.error != 0)
			b->rc = -5;
		b->last_seq = ack.seq > b->last_seq ? ack.seq : b->last_seq;
		if (b->first_seq == 0 || ack.seq < b->first_seq)
			b->first_seq = ack.seq;
	}
	if (a->mode != 2)
		b->lat[b->got] = bench_now_ns() - a->t;
	if (++b->got == b->n) {
		b->t1 = bench_now_ns();
		if (!actor_ref_is_none(b->peer))
			actor_send(actor_ctx_system(ctx), b->peer, T_READY, NULL, 0);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (b->sent < b->n)
		ask(ctx, a);
}

static actor_ref_t spawn_at(actor_system_t *sys, unsigned w, actor_behavior_fn *fn, void *st)
{
	actor_spawn_opts_t o = {.placement = ACTOR_PLACE_FIXED, .worker = w};
	actor_ref_t r;
	bench_check(actor_spawn(sys, &o, fn, st, &r), "actor_spawn");
	return r;
}

static int at_once; /* actor_broker_opts_t.write_at_once for this pass */

static actor_system_t *connected(void)
{
	actor_config_t cfg = {.workers = 2};
	actor_system_t *sys;
	bench_check(actor_system_create(&cfg, &sys), "actor_system_create");
	actor_broker_opts_t o = {.servers = url, .write_at_once = at_once};
	bench_check(actor_broker_connect(sys, &o), "actor_broker_connect");
	return sys;
}

static void libactor_rows(uint64_t n)
{
	const char *impl = at_once ? "libactor-at-once" : "libactor";
	actor_system_t *sys = connected();
	struct bench b = {.n = n};
	b.peer = spawn_at(sys, 1, pub_behavior, &b);
	actor_ref_t s = spawn_at(sys, 0, sub_behavior, &b);
	bench_check(actor_send(sys, s, T_GO, NULL, 0), "send");
	bench_check(actor_system_run(sys), "run");
	if (b.rc != 0 || b.got != n)
		fail("pubsub: lost or refused messages");
	row("broker_pubsub", impl, "msgs_per_s", (double)n / bench_secs(b.t0, b.t1), "msg/s");
	actor_system_free(sys);

	uint64_t m = n / 50;
	for (int mode = 0; mode < 3; mode++) {
		sys = connected();
		if (mode != 0)
			bench_check(actor_broker_stream_add(sys, "BJS", "bjs.>", 1, 0, 0),
			            "stream_add");
		struct bench q = {.n = m, .lat = calloc(m, sizeof(uint64_t))};
		struct asker a = {.b = &q, .mode = mode};
		actor_ref_t asker = spawn_at(sys, 0, asker_behavior, &a);
		if (mode == 0) {
			struct bench rb = {.peer = asker};
			q.peer = spawn_at(sys, 1, responder_behavior, &rb);
			bench_check(actor_send(sys, q.peer, T_GO, NULL, 0), "send");
		} else {
			q.peer = ACTOR_REF_NONE;
			bench_check(actor_send(sys, asker, T_GO, NULL, 0), "send");
		}
		bench_check(actor_system_run(sys), "run");
		if (q.rc != 0 || q.got != m || (mode != 0 && q.last_seq - q.first_seq + 1 != m))
			fail("libactor requests: a wrong answer");
		if (mode == 0)
			latency_rows("broker_request", impl, q.lat, m);
		else if (mode == 1)
			latency_rows("broker_js_ack", impl, q.lat, m);
		else
			row("broker_js_window", impl, "acks_per_s",
			    (double)m / bench_secs(q.t0, q.t1), "ack/s");
		free(q.lat);
		actor_system_free(sys);
	}
}

/* ---------------------------------------------------------------------------------------------
 * libnats directly
 */

static atomic_uint_fast64_t raw_got;
static pthread_mutex_t raw_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t raw_cond = PTHREAD_COND_INITIALIZER;

static void raw_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	(void)nc, (void)sub;
	uint64_t n = *(uint64_t *)arg;
	natsMsg_Destroy(msg);
	if (atomic_fetch_add(&raw_got, 1) + 1 == n) {
		pthread_mutex_lock(&raw_lock);
		pthread_cond_signal(&raw_cond);
		pthread_mutex_unlock(&raw_lock);
	}
}

static void raw_respond(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	(void)sub, (void)arg;
	natsConnection_Publish(nc, natsMsg_GetReply(msg), "ok", 2);
	natsMsg_Destroy(msg);
}

static void check(natsStatus s, const char *what)
{
	if (s != NATS_OK) {
		fprintf(stderr, "bench/broker: %s: %s\n", what, natsStatus_GetText(s));
		exit(1);
	}
}

static void raw_rows(uint64_t n)
{
	natsConnection *nc, *nc2;
	natsOptions *opts;
	check(natsOptions_Create(&opts), "options");
	check(natsOptions_SetURL(opts, url), "url");
	check(natsConnection_Connect(&nc, opts), "connect");
	check(natsConnection_Connect(&nc2, opts), "connect");
	natsSubscription *sub;
	check(natsConnection_Subscribe(&sub, nc2, "raw.ps", raw_on_msg, &n), "subscribe");
	check(natsSubscription_SetPendingLimits(sub, -1, -1), "limits");
	check(natsConnection_Flush(nc2), "flush");
	char data[64] = {0};
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		check(natsConnection_Publish(nc, "raw.ps", data, sizeof(data)), "publish");
	pthread_mutex_lock(&raw_lock);
	while (atomic_load(&raw_got) < n)
		pthread_cond_wait(&raw_cond, &raw_lock);
	pthread_mutex_unlock(&raw_lock);
	uint64_t t1 = bench_now_ns();
	row("broker_pubsub", "libnats", "msgs_per_s", (double)n / bench_secs(t0, t1), "msg/s");
	natsSubscription_Destroy(sub);

	uint64_t m = n / 50;
	uint64_t *lat = calloc(m, sizeof(uint64_t));
	check(natsConnection_Subscribe(&sub, nc2, "raw.rq", raw_respond, NULL), "subscribe");
	check(natsConnection_Flush(nc2), "flush");
	for (uint64_t i = 0; i < m; i++) {
		natsMsg *reply;
		uint64_t t = bench_now_ns();
		check(natsConnection_Request(&reply, nc, "raw.rq", data, sizeof(data), 10000),
		      "request");
		lat[i] = bench_now_ns() - t;
		natsMsg_Destroy(reply);
	}
	latency_rows("broker_request", "libnats", lat, m);
	natsSubscription_Destroy(sub);

	jsCtx *js;
	check(natsConnection_JetStream(&js, nc, NULL), "jetstream");
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	const char *subj[] = {"rjs.>"};
	cfg.Name = "RJS";
	cfg.Subjects = subj;
	cfg.SubjectsLen = 1;
	check(js_AddStream(NULL, js, &cfg, NULL, NULL), "add stream");
	for (uint64_t i = 0; i < m; i++) {
		jsPubAck *pa;
		uint64_t t = bench_now_ns();
		check(js_Publish(&pa, js, "rjs.x", data, sizeof(data), NULL, NULL), "js publish");
		lat[i] = bench_now_ns() - t;
		jsPubAck_Destroy(pa);
	}
	latency_rows("broker_js_ack", "libnats", lat, m);
	jsCtx_Destroy(js);

	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = WINDOW;
	jo.PublishAsync.StallWait = 10000;
	check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < m; i++)
		check(js_PublishAsync(js, "rjs.x", data, sizeof(data), NULL), "js publish async");
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 30000;
	check(js_PublishAsyncComplete(js, &po), "complete");
	t1 = bench_now_ns();
	row("broker_js_window", "libnats", "acks_per_s", (double)m / bench_secs(t0, t1), "ack/s");
	jsCtx_Destroy(js);
	free(lat);
	natsConnection_Destroy(nc);
	natsConnection_Destroy(nc2);
	natsOptions_Destroy(opts);
}

int main(int argc, char **argv)
{
	uint64_t n = bench_arg_u64(argc, argv, 1, 200000, 100000000);
	char dir[] = "/tmp/bench-broker-XXXXXX";
	pid_t srv = server_start(dir);
	/* libactor first: the library's own threads start with its first connection. */
	libactor_rows(n);
	at_once = 1;
	libactor_rows(n);
	raw_rows(n);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
