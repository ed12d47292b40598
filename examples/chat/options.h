/* options.h: chat-server's settings and the command line that sets them. One table of settings
 * (options.c) checks every value, so each is checked the same way wherever it comes from. */
#ifndef CHAT_OPTIONS_H
#define CHAT_OPTIONS_H

#include "chat.h"

#define CHAT_FD_RESERVE 32 /* descriptors kept free of clients: listeners, reactors, the MOTD */

/* What the settings decide that struct chat_srv does not hold. */
struct chat_options {
	const char *bind;
	unsigned port;
	unsigned workers;
	const char *reactor;
	long max_clients; /* -1: as many as the descriptor limit allows */
	const char *motd; /* a file, or NULL */
	const char *password;
	int pin;
	struct chat_srv *srv; /* where the rest goes: the name, the limits, the operators */
};

/* Sets the defaults, then applies the command line. A bad option prints what was wrong and
 * exits with status 2; --help prints the usage and exits 0. */
void chat_options_parse(struct chat_options *o, struct chat_srv *srv, int argc, char **argv);

#endif /* CHAT_OPTIONS_H */
