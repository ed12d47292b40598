/* stream_out.c: how fast one actor streams to a socket in small writes, once per reactor backend.
 *
 * Usage: bench/stream_out [megabytes]   (default 512)
 *
 * An actor connects over loopback to a plain reader thread and writes `megabytes` MiB in pieces
 * of 256, 4,096 and 65,536 bytes, each as its own actor_tcp_write, stopping at -ENOBUFS and going
 * on at ACTOR_MSG_TCP_DRAINED; the reader counts what arrives. The rate is the bytes over the
 * time from the connection to the reader's EOF:
 *   RESULT name=stream_out_<piece> impl=libactor-<reactor> metric=mb_per_s value=... unit=MB/s
 * A backend this machine refuses is skipped with a note on stderr.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "bench.h"

#define MB_DEFAULT 512u
#define MSG_GO 1u

struct writer {
	uint16_t port;
	size_t piece;
	uint64_t total, sent;
	actor_conn_t conn;
	unsigned char buf[65536];
};

static void write_some(actor_ctx_t *ctx, struct writer *w)
{
	while (w->sent < w->total) {
		size_t n = w->total - w->sent < w->piece ? (size_t)(w->total - w->sent) : w->piece;
		int rc = actor_tcp_write(ctx, w->conn, w->buf, n);
		if (rc == -ENOBUFS)
			return; /* DRAINED follows */
		bench_check(rc, "actor_tcp_write");
		w->sent += n;
	}
	/* FIN after the queue; the reader's EOF (CLOSED) ends the actor. Not a close and an exit:
	 * the system stops with its last actor, and a close still writing then ends in a reset. */
	bench_check(actor_tcp_shutdown(ctx, w->conn), "actor_tcp_shutdown");
}

static void writer_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct writer *w = state;
	switch (msg->type) {
	case MSG_GO:
		bench_check(actor_tcp_connect(ctx, "127.0.0.1", w->port, &w->conn),
		            "actor_tcp_connect");
		return;
	case ACTOR_MSG_TCP_CONNECTED: {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		bench_check(ev.error, "connect");
		write_some(ctx, w);
		return;
	}
	case ACTOR_MSG_TCP_DRAINED:
		write_some(ctx, w);
		return;
	case ACTOR_MSG_TCP_CLOSED: {
		actor_tcp_event_t ev;
		memcpy(&ev, actor_msg_data(msg), sizeof(ev));
		bench_check(ev.error, "the stream");
		if (w->sent < w->total)
			bench_check(-EPIPE, "the reader closed early");
		actor_tcp_close(ctx, w->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	default:
		return;
	}
}

struct reader {
	int lfd;
	uint64_t got, t0, t1;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static unsigned char buf[1 << 18];
	int fd = accept(r->lfd, NULL, NULL);
	if (fd < 0)
		bench_check(-errno, "accept");
	r->t0 = bench_now_ns();
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		r->got += (uint64_t)n;
	if (n < 0)
		bench_check(-errno, "read");
	r->t1 = bench_now_ns();
	close(fd);
	return NULL;
}

static int listener(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		bench_check(-errno, "listener");
	*port = ntohs(sa.sin_port);
	return fd;
}

static void measure(const char *reactor, size_t piece, uint64_t total)
{
	actor_config_t cfg = {.workers = 1, .no_pin = 1, .reactor = reactor};
	actor_system_t *sys = NULL;
	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0) {
		fprintf(stderr, "stream_out: SKIP %s: %s\n", reactor, strerror(-rc));
		return;
	}
	struct reader r = {0};
	uint16_t port;
	r.lfd = listener(&port);
	pthread_t th;
	bench_check(-pthread_create(&th, NULL, reader_main, &r), "pthread_create");
	struct writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		bench_check(-ENOMEM, "calloc");
	w->port = port;
	w->piece = piece;
	w->total = total;
	memset(w->buf, 'x', sizeof(w->buf));
	actor_ref_t a;
	bench_check(actor_spawn(sys, NULL, writer_fn, w, &a), "actor_spawn");
	bench_check(actor_send(sys, a, MSG_GO, NULL, 0), "actor_send");
	bench_check(actor_system_run(sys), "actor_system_run");
	pthread_join(th, NULL);
	close(r.lfd);
	actor_system_free(sys);
	free(w);
	if (r.got != total) {
		fprintf(stderr,
		        "stream_out: %s, %zu-byte writes: %" PRIu64 " of %" PRIu64 " bytes\n",
		        reactor, piece, r.got, total);
		exit(1);
	}
	char name[64], impl[64];
	snprintf(name, sizeof(name), "stream_out_%zu", piece);
	snprintf(impl, sizeof(impl), "libactor-%s", reactor);
	printf("RESULT name=%s impl=%s metric=mb_per_s value=%.0f unit=MB/s\n", name, impl,
	       (double)total / 1e6 / bench_secs(r.t0, r.t1));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t mb = bench_arg_u64(argc, argv, 1, MB_DEFAULT, 1u << 20);
	static const size_t pieces[] = {256, 4096, 65536};
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		measure("epoll", pieces[i], mb << 20);
		measure("io_uring", pieces[i], mb << 20);
	}
	return 0;
}
