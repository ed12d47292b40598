/* bus.h: the chat server's parts wired together without threads or sockets, for unit tests
 * and the fuzz target. Messages go through one FIFO queue (or, shuffled, in any order that
 * keeps each sender's) and are handled one at a time, to completion; time moves only when a
 * test says so. It implements the same struct chat_env as the server, so what passes here is
 * the server's own protocol logic.
 */
#ifndef CHAT_BUS_H
#define CHAT_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat.h"

struct bus;
struct bus_client;

/* A server with `workers` registry/fan-out pairs; its config is adjustable before clients
 * connect. */
struct bus *bus_new(unsigned workers);
struct chat_srv *bus_srv(struct bus *b);
/* Frees everything; returns the number of messages that were dead-lettered. */
unsigned bus_free(struct bus *b);

/* Connects a client whose session lives on `worker`. `full`: refused as over the cap. */
struct bus_client *bus_connect(struct bus *b, unsigned worker, const char *host, bool full);
/* Sends bytes from the client. They are cut into lines as the server's connection cuts them
 * (server.c), with the reference framer of irc.h: each line the bytes end goes to the session
 * (sess_line), an overlong line's place too (sess_overlong), and IRC_NOEOL_MAX bytes without a
 * line end fail the connection (sess_closed with -EMSGSIZE). Then delivers every message that
 * follows. */
void bus_send(struct bus_client *c, const char *data, size_t len);
void bus_sendf(struct bus_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Registers with NICK and USER and drops the welcome burst. */
struct bus_client *bus_client_new(struct bus *b, unsigned worker, const char *nick);

/* What the client received since the last call, NUL-terminated; valid until the next call. */
const char *bus_read(struct bus_client *c);
/* What was received since the last bus_read, without consuming it (for failure messages). */
const char *bus_peek(struct bus_client *c);
/* The first received line containing `needle` since the last bus_read, or NULL. The line is
 * copied to a buffer valid until the next call. */
const char *bus_line_with(struct bus_client *c, const char *needle);
/* Number of received lines, since the last bus_read, containing `needle`. */
unsigned bus_count(struct bus_client *c, const char *needle);

/* The client stops reading: output accumulates against the send queue cap. */
void bus_stop_reading(struct bus_client *c, bool stop);
/* The client hangs up (EOF) or resets. */
void bus_hangup(struct bus_client *c, int error);
/* Did the server close the connection (and how: enum chat_close), did the actor stop? */
bool bus_closed(struct bus_client *c);
bool bus_exited(struct bus_client *c);
bool bus_paused(struct bus_client *c);

/* Advances the clock, firing due timers. */
void bus_advance_ms(struct bus *b, uint64_t ms);
/* Delivers queued messages. */
void bus_run(struct bus *b);
/* hold: bus_run (and so every call above) delivers nothing until released; bus_step delivers
 * one message (false when none is queued). */
void bus_hold(struct bus *b, bool hold);
bool bus_step(struct bus *b);
/* seed != 0: from now on, deliver each sender's messages in order but interleave senders at
 * random (seeded); 0: one FIFO again. */
void bus_shuffle(struct bus *b, uint64_t seed);
/* Sends CM_SHUTDOWN to every fan-out, as the server does on SIGTERM; true when all reported
 * that their sessions are gone. */
bool bus_shutdown(struct bus *b);

/* The actor of channel `name` fails (stops abnormally) and is restarted, as its supervisor
 * does on the server; false when no such channel runs. */
bool bus_fail_channel(struct bus *b, const char *name);

/* stall: messages to `who` wait in the queue, as for an actor that does not get to run (its
 * requesters' timeouts run out); unstalled, they are delivered. */
void bus_stall(struct bus *b, actor_ref_t who, bool stall);
actor_ref_t bus_channel_ref(struct bus *b, const char *name); /* NONE: no such channel runs */
/* Answers that came after their request ended (timed out, requester stopped): dropped. */
unsigned bus_replies_dropped(struct bus *b);

/* Counters for tests: live channel actors, live sessions. */
unsigned bus_channels(struct bus *b);
unsigned bus_sessions(struct bus *b);

/* Sessions have bounded mailboxes of bus_srv()->session_queue messages (set it before the
 * client connects), counted and refused as the library does (flow.c): a full one refuses a
 * user message with -EAGAIN, and a refused sender gets ACTOR_MSG_WRITABLE once the session is
 * down to half, or stops. bus_handed: messages of `type` (a CM_*) handed to the client's
 * session; bus_refusals: sends refused so far, server-wide; bus_slow_clients: the records of
 * slow clients that live actors hold (srv.c). */
unsigned bus_handed(struct bus_client *c, uint32_t type);
unsigned bus_refusals(struct bus *b);
unsigned bus_slow_clients(struct bus *b);

#endif /* CHAT_BUS_H */
