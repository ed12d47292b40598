/* options.h: chat-server's settings, and the two things that set them: the command line and the
 * configuration file (--config). One table of settings (options.c) checks every value, so each
 * is checked the same way wherever it comes from. */
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
	char **motd_text; /* else the lines themselves ([motd] line = ...), or NULL; malloc'd */
	size_t motd_text_lines;
	const char *password;
	int pin;
	long tls_port;        /* -1: no TLS listener */
	const char *tls_cert; /* PEM files for it */
	const char *tls_key;
	const char *cluster;       /* --cluster: NATS URLs, or NULL: a single host */
	unsigned cluster_replicas; /* --cluster-replicas */
	struct chat_srv *srv;      /* where the rest goes: the name, the limits, the operators */
	size_t file_opers;         /* srv->opers[0, file_opers) came from the file */
	char **kept;               /* the file's values, copied: settings point into them */
	size_t nkept;
};

/* Sets the defaults, then reads the file that --config names, then applies every other
 * command-line option, wherever it stands: the command line wins over the file. Anything
 * wrong prints what and where and exits with status 2; --help prints the usage and exits 0. */
void chat_options_parse(struct chat_options *o, struct chat_srv *srv, int argc, char **argv);
/* Frees what the options own. Strings they set (the password, the bind address) go with it. */
void chat_options_free(struct chat_options *o);

/* ---------------------------------------------------------------------------------------------
 * For the configuration file's reader
 */

enum {
	CHAT_SETTING_LIST = 1, /* may be given again: each adds one (an operator, a MOTD line) */
	CHAT_SETTING_PATH = 2, /* a file: in a configuration file, relative to that file's folder */
};

struct chat_setting {
	const char *option;  /* --option, or NULL: only in the configuration file */
	const char *implied; /* the value of an option that takes none (--pin: "yes") */
	const char *section; /* in the configuration file: [section] key = value; NULL: not there */
	const char *key;
	const char *excludes; /* a key of the same section that may not be given with this one */
	unsigned flags;
	/* NULL, or what was expected and what came ("expected yes or no, got 'maybe'"). */
	const char *(*set)(struct chat_options *o, const char *value);
};

extern const struct chat_setting chat_settings[];
extern const size_t chat_nsettings;

/* A copy of s that lives as long as the options (exits if memory is short). */
const char *chat_options_keep(struct chat_options *o, const char *s);

/* config.c, or config_none.c when configure found no inih: reads the file, applying each
 * setting; anything wrong prints the file, the line and what, and exits with status 2. */
extern const bool chat_config_built;
void chat_config_read(struct chat_options *o, const char *path);

#endif /* CHAT_OPTIONS_H */
