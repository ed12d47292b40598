/* client.c: a TCP client actor: actor_tcp_connect, one request, and the whole reply.
 *
 * The program brings its own server, so that it needs nothing else running: an actor listening
 * on a free port of 127.0.0.1 that answers a connection with what it reads, in capitals. The
 * client connects, sends a line, half-closes (its way of saying "that is all"), gathers the
 * reply until the server closes in turn, and checks it. TCP carries a stream of bytes, not
 * messages: the reply may come in several ACTOR_MSG_TCP_DATA messages, so the client adds them
 * up until the end of the stream.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <actor.h>

enum { MSG_START = 1, MSG_CONNECT };

static const char request[] = "hello, server\n";
static const char expected[] = "HELLO, SERVER\n";

/* ---------------------------------------------------------------- the client */

struct client {
	char reply[64];
	size_t len;
	int error; /* 0, or why it failed */
};

/* A failure ends the program: shutting the system down stops every actor, the server too. */
static void client_fail(actor_ctx_t *ctx, struct client *c, int error)
{
	c->error = error;
	actor_system_shutdown(actor_ctx_system(ctx));
}

static void client_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct client *c = state;
	switch (msg->type) {
	case MSG_CONNECT: {
		uint16_t port;
		actor_conn_t conn;
		memcpy(&port, actor_msg_data(msg), sizeof(port));
		/* Returns at once; the outcome comes as ACTOR_MSG_TCP_CONNECTED. (A host name is
		 * looked up first, as actor_lookup does, without holding up this worker's other
		 * actors.) */
		int rc = actor_tcp_connect(ctx, "127.0.0.1", port, &conn);
		if (rc < 0)
			client_fail(ctx, c, rc);
		break;
	}
	case ACTOR_MSG_TCP_CONNECTED: {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		int rc = ev->error; /* e.g. -ECONNREFUSED */
		if (rc == 0)
			rc = actor_tcp_write(ctx, ev->conn, request, strlen(request));
		if (rc == 0)
			rc = actor_tcp_shutdown(ctx, ev->conn); /* FIN after the request */
		if (rc < 0)
			client_fail(ctx, c, rc);
		break;
	}
	case ACTOR_MSG_TCP_DATA: {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		if (c->len + d->len > sizeof(c->reply)) {
			client_fail(ctx, c, -EMSGSIZE);
			break;
		}
		memcpy(c->reply + c->len, actor_tcp_data_bytes(msg), d->len);
		c->len += d->len;
		break;
	}
	case ACTOR_MSG_TCP_CLOSED: {
		/* error 0: the server's EOF, the reply is whole; else the connection broke. */
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		if (ev->error < 0) {
			client_fail(ctx, c, ev->error);
			break;
		}
		actor_tcp_close(ctx, ev->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		break;
	}
	}
}

/* ---------------------------------------------------------------- the server it talks to */

struct server {
	actor_ref_t client; /* told the port once we listen */
	int error;
};

static void server_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct server *s = state;
	switch (msg->type) {
	case MSG_START: {
		actor_listen_opts_t o = {.host = "127.0.0.1", .port = 0}; /* any free port */
		actor_listener_t l;
		uint16_t port;
		s->error = actor_tcp_listen(ctx, &o, &l);
		if (s->error == 0)
			s->error = actor_tcp_listener_port(ctx, l, &port);
		if (s->error == 0)
			s->error = actor_send(actor_ctx_system(ctx), s->client, MSG_CONNECT, &port,
			                      sizeof(port));
		if (s->error < 0)
			actor_system_shutdown(actor_ctx_system(ctx));
		break;
	}
	case ACTOR_MSG_TCP_ACCEPTED: {
		/* Without per_worker, connections are accepted on our own worker: we can own them.
		 */
		const actor_tcp_accepted_t *acc = actor_msg_data(msg);
		actor_tcp_handoff(ctx, acc->conn, actor_self(ctx));
		break;
	}
	case ACTOR_MSG_TCP_DATA: {
		/* A few bytes, far below the output queue's high-water mark (examples/echo shows
		 * what to do above it). */
		const actor_tcp_data_t *d = actor_msg_data(msg);
		const unsigned char *in = actor_tcp_data_bytes(msg);
		char out[256];
		for (uint32_t done = 0; done < d->len; done += sizeof(out)) {
			uint32_t n = d->len - done < sizeof(out) ? d->len - done : sizeof(out);
			for (uint32_t i = 0; i < n; i++)
				out[i] = (char)toupper(in[done + i]);
			actor_tcp_write(ctx, d->conn, out, n);
		}
		break;
	}
	case ACTOR_MSG_TCP_CLOSED: {
		/* The client has said all: close after the reply, and stop (one client is all). */
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		actor_tcp_close(ctx, ev->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL); /* closes the listener too */
		break;
	}
	}
}

int main(void)
{
	struct client c = {0};
	struct server s = {0};
	actor_system_t *sys;
	actor_ref_t server_ref;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, NULL, client_fn, &c, &s.client);
	if (rc == 0)
		rc = actor_spawn(sys, NULL, server_fn, &s, &server_ref);
	if (rc == 0)
		rc = actor_send(sys, server_ref, MSG_START, NULL, 0);
	if (rc == 0)
		rc = actor_system_run(sys); /* returns once both have stopped, or at a failure */
	actor_system_free(sys);
	if (rc == 0)
		rc = s.error < 0 ? s.error : c.error;
	if (rc < 0) {
		fprintf(stderr, "client: %s\n", strerror(-rc));
		return 1;
	}
	printf("sent:  %sreply: %.*s", request, (int)c.len, c.reply);
	if (c.len != strlen(expected) || memcmp(c.reply, expected, c.len) != 0) {
		fprintf(stderr, "client: expected the reply %s", expected);
		return 1;
	}
	return 0;
}
