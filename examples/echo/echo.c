/* echo.c: a TCP echo server; one actor per connection, which stops reading from a peer that
 * is slow to read what it sends back.
 *
 * Usage: echo [port]   (default 7777; 0 takes any free port)
 *
 * Prints the address it listens on, then echoes until Ctrl-C (SIGINT) or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <actor.h>

enum { MSG_LISTEN = 1 };

/* A connection actor's state: the echo it owes the peer but could not queue yet. */
struct conn {
	unsigned char *pending;
	size_t npending;
	int eof; /* the peer has sent everything: close once `pending` is written */
};

static void conn_free(void *state)
{
	struct conn *c = state;
	free(c->pending);
	free(c);
}

static void finish(actor_ctx_t *ctx, actor_conn_t conn)
{
	actor_tcp_close(ctx, conn); /* writes what is queued first */
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

/* Writes `len` bytes back, or keeps them while the connection's output queue is full. */
static int echo(actor_ctx_t *ctx, struct conn *c, actor_conn_t conn, const unsigned char *p,
                size_t len)
{
	if (c->npending == 0) {
		int rc = actor_tcp_write(ctx, conn, p, len);
		if (rc != -ENOBUFS)
			return rc; /* 0, or -EPIPE: the connection is closing */
		/* Above its high-water mark the queue refuses: the peer reads slower than it sends.
		 * Stop reading from it (TCP then slows it down) until ACTOR_MSG_TCP_DRAINED. */
		actor_tcp_pause(ctx, conn);
	}
	/* Data read before the pause still arrives: it waits behind the rest, in order. */
	unsigned char *more = realloc(c->pending, c->npending + len);
	if (more == NULL)
		return -ENOMEM;
	memcpy(more + c->npending, p, len);
	c->pending = more;
	c->npending += len;
	return 0;
}

static void conn_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct conn *c = state;
	if (msg->type == ACTOR_MSG_TCP_DATA) {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		if (echo(ctx, c, d->conn, actor_tcp_data_bytes(msg), d->len) < 0)
			finish(ctx, d->conn);
	} else if (msg->type == ACTOR_MSG_TCP_DRAINED) {
		/* The queue is below its low-water mark, so this write is accepted whole. */
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		int rc = actor_tcp_write(ctx, ev->conn, c->pending, c->npending);
		c->npending = 0;
		if (rc < 0 || c->eof)
			finish(ctx, ev->conn);
		else
			actor_tcp_resume(ctx, ev->conn);
	} else if (msg->type == ACTOR_MSG_TCP_CLOSED) {
		/* error 0: the peer's EOF, and its echo may still be waiting; else a broken
		 * connection. */
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		c->eof = 1;
		if (ev->error != 0 || c->npending == 0)
			finish(ctx, ev->conn);
	}
}

/* The listener's state, main's: the port to listen on, and why listening failed. */
struct listener {
	unsigned port;
	int error;
};

static void listener_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct listener *ls = state;
	if (msg->type == MSG_LISTEN) {
		actor_listen_opts_t o = {.host = "127.0.0.1", .port = ls->port, .per_worker = 1};
		actor_listener_t l;
		uint16_t port;
		int rc = actor_tcp_listen(ctx, &o, &l);
		if (rc == 0)
			rc = actor_tcp_listener_port(ctx, l, &port);
		if (rc < 0) {
			ls->error = rc;
			actor_exit(ctx, ACTOR_REASON_NORMAL); /* the last actor: the program ends */
			return;
		}
		printf("listening on 127.0.0.1:%u\n", port);
		fflush(stdout);
	} else if (msg->type == ACTOR_MSG_TCP_ACCEPTED) {
		/* Each connection gets an actor on the worker that accepted it (per_worker: every
		 * worker accepts). If the spawn fails, it stays ours and closes when we stop. */
		const actor_tcp_accepted_t *acc = actor_msg_data(msg);
		actor_spawn_opts_t so = {
		    .placement = ACTOR_PLACE_FIXED, .worker = acc->worker, .destroy = conn_free};
		struct conn *c = calloc(1, sizeof(*c));
		actor_ref_t ref;
		if (c == NULL || actor_spawn(actor_ctx_system(ctx), &so, conn_fn, c, &ref) < 0)
			free(c);
		else
			actor_tcp_handoff(ctx, acc->conn, ref);
	}
}

static actor_system_t *sys; /* for the signal handler */

static void on_signal(int sig)
{
	(void)sig;
	actor_system_shutdown(sys); /* safe in a signal handler */
}

int main(int argc, char **argv)
{
	struct listener ls = {.port = argc > 1 ? (unsigned)atoi(argv[1]) : 7777};
	actor_ref_t l;
	if (ls.port > 65535 || actor_system_create(NULL, &sys) < 0)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* ls.error is the listener's to write, maybe before actor_send returns: main's own calls
	 * answer in rc. */
	int rc = actor_spawn(sys, NULL, listener_fn, &ls, &l);
	if (rc == 0)
		rc = actor_send(sys, l, MSG_LISTEN, NULL, 0);
	if (rc == 0)
		actor_system_run(sys); /* until a signal, or the listener's failure */
	actor_system_free(sys);
	if (rc == 0)
		rc = ls.error;
	if (rc < 0) {
		fprintf(stderr, "echo: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
