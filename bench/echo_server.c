/* echo_server.c: the libactor side of the echo benchmark: one actor per connection, living on
 * the worker that accepted it (a per-worker listener).
 *
 * Usage: bench/echo_server [--port N] [--reactor epoll|io_uring|auto] [--workers N]
 *                          [--pin] [--spin-us N]
 *
 * Prints "PORT <n>" on stdout once it listens on 127.0.0.1 (--port 0, the default, takes any
 * free port), then echoes until SIGINT or SIGTERM. Exits 77 when the requested reactor is not
 * available here. Above the output high-water mark a connection keeps the bytes it could not
 * queue and pauses reading until ACTOR_MSG_TCP_DRAINED.
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>

#include "bench.h"

enum { MSG_LISTEN = 1 };

struct echo {
	actor_conn_t conn;
	unsigned char *pending; /* bytes actor_tcp_write refused */
	size_t npending, cap;
	bool paused, eof;
};

static uint16_t listen_port;
static actor_system_t *the_sys;

static void echo_destroy(void *state)
{
	struct echo *e = state;
	free(e->pending);
	free(e);
}

static void keep(struct echo *e, const unsigned char *p, size_t len)
{
	if (e->npending + len > e->cap) {
		e->cap = (e->npending + len) * 2;
		e->pending = realloc(e->pending, e->cap);
		if (e->pending == NULL) {
			fprintf(stderr, "echo_server: out of memory\n");
			exit(1);
		}
	}
	memcpy(e->pending + e->npending, p, len);
	e->npending += len;
}

static void finish(actor_ctx_t *ctx, struct echo *e)
{
	actor_tcp_close(ctx, e->conn);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static void echo_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct echo *e = state;
	switch (msg->type) {
	case ACTOR_MSG_TCP_DATA: {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		const unsigned char *bytes = actor_tcp_data_bytes(msg);
		if (e->npending > 0) {
			keep(e, bytes, d->len);
			return;
		}
		int rc = actor_tcp_write(ctx, e->conn, bytes, d->len);
		if (rc == -ENOBUFS) {
			keep(e, bytes, d->len);
			if (!e->paused)
				actor_tcp_pause(ctx, e->conn);
			e->paused = true;
		} else if (rc < 0) {
			finish(ctx, e);
		}
		return;
	}
	case ACTOR_MSG_TCP_DRAINED:
		if (e->npending == 0)
			return;
		if (actor_tcp_write(ctx, e->conn, e->pending, e->npending) == -ENOBUFS)
			return;
		e->npending = 0;
		if (e->eof) {
			finish(ctx, e);
		} else if (e->paused) {
			actor_tcp_resume(ctx, e->conn);
			e->paused = false;
		}
		return;
	case ACTOR_MSG_TCP_CLOSED: {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		e->eof = true;
		if (ev->error != 0 || e->npending == 0)
			finish(ctx, e);
		return;
	}
	default:
		return;
	}
}

/* Listens on every worker; hands each connection to a new echo actor on its worker. */
static void listener_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)state;
	if (msg->type == MSG_LISTEN) {
		actor_listen_opts_t o = {.host = "127.0.0.1", .port = listen_port, .per_worker = 1};
		actor_listener_t l;
		uint16_t port = 0;
		bench_check(actor_tcp_listen(ctx, &o, &l), "actor_tcp_listen");
		bench_check(actor_tcp_listener_port(ctx, l, &port), "actor_tcp_listener_port");
		printf("PORT %u\n", port);
		fflush(stdout);
		return;
	}
	if (msg->type != ACTOR_MSG_TCP_ACCEPTED)
		return;
	const actor_tcp_accepted_t *a = actor_msg_data(msg);
	struct echo *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return;
	e->conn = a->conn;
	actor_spawn_opts_t o = {
	    .placement = ACTOR_PLACE_FIXED, .worker = a->worker, .destroy = echo_destroy};
	actor_ref_t ref;
	if (actor_spawn(actor_ctx_system(ctx), &o, echo_fn, e, &ref) != 0) {
		free(e);
		return;
	}
	if (actor_tcp_handoff(ctx, a->conn, ref) != 0)
		actor_stop(actor_ctx_system(ctx), ref);
}

static void on_signal(int sig)
{
	(void)sig;
	actor_system_shutdown(the_sys); /* async-signal-safe by contract */
}

static void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--port N] [--reactor epoll|io_uring|auto] [--workers N] [--pin] "
	        "[--spin-us N]\n",
	        prog);
	exit(2);
}

int main(int argc, char **argv)
{
	actor_config_t cfg = {.reactor = "auto"};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-pin") == 0) { /* the default; kept for old scripts */
			cfg.pin = 0;
			continue;
		}
		if (strcmp(argv[i], "--pin") == 0) {
			cfg.pin = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage(argv[0]);
		if (strcmp(argv[i], "--port") == 0)
			listen_port = (uint16_t)atoi(argv[++i]);
		else if (strcmp(argv[i], "--reactor") == 0)
			cfg.reactor = argv[++i];
		else if (strcmp(argv[i], "--workers") == 0)
			cfg.workers = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--spin-us") == 0)
			cfg.spin_us = atoi(argv[++i]);
		else
			usage(argv[0]);
	}
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	int rc = actor_system_create(&cfg, &the_sys);
	if (rc < 0) {
		fprintf(stderr, "echo_server: reactor %s unavailable: %s\n", cfg.reactor,
		        strerror(-rc));
		return 77;
	}
	fprintf(stderr, "echo_server: %u workers, reactor %s\n", actor_system_workers(the_sys),
	        actor_system_reactor(the_sys));
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	actor_ref_t l;
	bench_check(actor_spawn(the_sys, NULL, listener_fn, NULL, &l), "actor_spawn(listener)");
	bench_check(actor_send(the_sys, l, MSG_LISTEN, NULL, 0), "actor_send(listen)");
	bench_check(actor_system_run(the_sys), "actor_system_run");
	actor_system_free(the_sys);
	return 0;
}
