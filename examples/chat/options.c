/* options.c: chat-server's settings, one table of them, and the command line that sets them
 * (config.c reads the configuration file through the same table). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "options.h"

/* ---------------------------------------------------------------------------------------------
 * Setting values: each setter answers NULL, or what it expected and what it got
 */

static char why[512]; /* the setters' answer; they run before any thread starts */

static const char *expected(const char *value, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *expected(const char *value, const char *fmt, ...)
{
	char want[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	snprintf(why, sizeof(why), "expected %s, got '%s'", want, value);
	return why;
}

/* A whole number in [min, max] into *out. */
static const char *number(const char *value, unsigned long min, unsigned long max,
                          unsigned long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < min || v > max)
		return expected(value, "a whole number in %lu..%lu", min, max);
	*out = v;
	return NULL;
}

static const char *set_bind(struct chat_options *o, const char *v)
{
	if (v[0] == '\0')
		return expected(v, "an address");
	o->bind = v;
	return NULL;
}

static const char *set_port(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 0, 65535, &n);
	o->port = (unsigned)n;
	return e;
}

static const char *set_workers(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 0, ACTOR_WORKERS_MAX, &n);
	o->workers = (unsigned)n;
	return e;
}

static const char *set_reactor(struct chat_options *o, const char *v)
{
	if (strcmp(v, "auto") && strcmp(v, "epoll") && strcmp(v, "io_uring"))
		return expected(v, "auto, epoll or io_uring");
	o->reactor = v;
	return NULL;
}

static const char *set_pin(struct chat_options *o, const char *v)
{
	static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false",
	                                                                            "off", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
			o->pin = strcmp(v, yes[i]) == 0;
			return NULL;
		}
	}
	return expected(v, "yes or no");
}

static const char *set_max_clients(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, 10000000, &n);
	o->max_clients = (long)n;
	return e;
}

static const char *set_motd(struct chat_options *o, const char *v)
{
	if (v[0] == '\0')
		return expected(v, "a file");
	o->motd = v;
	return NULL;
}

/* [motd] line = TEXT: one line of the message of the day. */
static const char *set_motd_line(struct chat_options *o, const char *v)
{
	char **m = realloc(o->motd_text, (o->motd_text_lines + 1) * sizeof(*m));
	char *copy = strdup(v);
	if (m == NULL || copy == NULL) {
		fprintf(stderr, "chat-server: out of memory\n");
		exit(1);
	}
	o->motd_text = m;
	m[o->motd_text_lines++] = copy;
	return NULL;
}

static const char *set_password(struct chat_options *o, const char *v)
{
	if (v[0] == '\0' || strpbrk(v, " \r\n") != NULL)
		return expected(v, "a non-empty word without spaces");
	o->password = v;
	return NULL;
}

/* Forgets the configuration file's operator `name`, if it has one: --oper replaces it. */
static void drop_file_oper(struct chat_options *o, const char *name)
{
	struct chat_srv *srv = o->srv;
	for (size_t i = 0; i < o->file_opers; i++) {
		if (strcmp(srv->opers[i].name, name) == 0) {
			memmove(&srv->opers[i], &srv->opers[i + 1],
			        (srv->nopers - i - 1) * sizeof(srv->opers[0]));
			srv->nopers--;
			o->file_opers--;
			return;
		}
	}
}

/* NAME:PASSWORD; the password is everything after the first colon. */
static const char *set_oper(struct chat_options *o, const char *v)
{
	static const char want[] = "NAME:PASSWORD (a name of 1 to 64 and a password of 1 to 128 "
	                           "characters, without spaces)";
	const char *colon = strchr(v, ':');
	size_t n = colon != NULL ? (size_t)(colon - v) : 0;
	if (n == 0 || n > CHAT_OPER_NAMELEN)
		return expected(v, "%s", want);
	char name[CHAT_OPER_NAMELEN + 1];
	memcpy(name, v, n);
	name[n] = '\0';
	drop_file_oper(o, name);
	int rc = chat_srv_add_oper(o->srv, name, colon + 1);
	if (rc == -EEXIST)
		return expected(v, "an operator name not given before");
	if (rc == -ENOMEM) {
		fprintf(stderr, "chat-server: out of memory\n");
		exit(1);
	}
	return rc < 0 ? expected(v, "%s", want) : NULL;
}

static const char *set_name(struct chat_options *o, const char *v)
{
	if (v[0] == '\0' || strpbrk(v, " :!@\r\n") != NULL || strlen(v) >= sizeof(o->srv->name))
		return expected(v, "a host name");
	snprintf(o->srv->name, sizeof(o->srv->name), "%s", v);
	return NULL;
}

static const char *set_network(struct chat_options *o, const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > CHAT_NETWORK_MAX ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
		return expected(v, "a network name of 1 to %d letters, digits, '-' or '_'",
		                CHAT_NETWORK_MAX);
	snprintf(o->srv->network, sizeof(o->srv->network), "%s", v);
	return NULL;
}

/* nats://host:port[,nats://host:port...] (tls:// too; a URL may carry user:password@). */
static const char *set_cluster(struct chat_options *o, const char *v)
{
	const char *p = v;
	do {
		size_t len = strcspn(p, ",");
		size_t scheme = strncmp(p, "nats://", 7) == 0  ? 7
		                : strncmp(p, "tls://", 6) == 0 ? 6
		                                               : 0;
		if (scheme == 0 || len <= scheme || memchr(p, ' ', len) != NULL)
			return expected(v,
			                "NATS server URLs, comma-separated (nats://host:4222,...)");
		p += len;
	} while (*p++ == ',');
	o->cluster = v;
	return NULL;
}

static const char *set_cluster_replicas(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, 5, &n);
	o->cluster_replicas = (unsigned)n;
	return e;
}

static const char *set_max_line(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, IRC_LINE_MIN, IRC_LINE_MAX, &n);
	if (e == NULL)
		o->srv->max_line = n;
	return e;
}

static const char *set_sendq(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1024, 1ul << 30, &n);
	if (e == NULL)
		o->srv->sendq = n;
	return e;
}

static const char *set_session_queue(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, CHAT_SESSION_QUEUE_MAX, &n);
	if (e == NULL)
		o->srv->session_queue = (uint32_t)n;
	return e;
}

static const char *set_flood_burst(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, 1000000, &n);
	if (e == NULL)
		o->srv->flood_burst = (double)n;
	return e;
}

static const char *set_flood_rate(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 0, 1000000, &n);
	if (e == NULL)
		o->srv->flood_rate = (double)n;
	return e;
}

static const char *set_ping_interval(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, 86400, &n);
	if (e == NULL)
		o->srv->ping_interval_ns = n * 1000000000ull;
	return e;
}

static const char *set_ping_timeout(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, 86400, &n);
	if (e == NULL)
		o->srv->ping_timeout_ns = n * 1000000000ull;
	return e;
}

static const char *set_request_timeout(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 1, 3600, &n);
	if (e == NULL)
		o->srv->request_timeout_ns = n * 1000000000ull;
	return e;
}

static const char *set_tls_port(struct chat_options *o, const char *v)
{
	unsigned long n;
	const char *e = number(v, 0, 65535, &n);
	o->tls_port = (long)n;
	return e;
}

static const char *set_tls_cert(struct chat_options *o, const char *v)
{
	if (v[0] == '\0')
		return expected(v, "a file");
	o->tls_cert = v;
	return NULL;
}

static const char *set_tls_key(struct chat_options *o, const char *v)
{
	if (v[0] == '\0')
		return expected(v, "a file");
	o->tls_key = v;
	return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The settings
 */

#define LIST CHAT_SETTING_LIST
#define PATH CHAT_SETTING_PATH

const struct chat_setting chat_settings[] = {
    /* --option      implied  [section]  key              excludes flags  setter */
    {"bind", NULL, "server", "bind", NULL, 0, set_bind},
    {"port", NULL, "server", "port", NULL, 0, set_port},
    {"workers", NULL, "server", "workers", NULL, 0, set_workers},
    {"reactor", NULL, "server", "reactor", NULL, 0, set_reactor},
    {"pin", "yes", "server", "pin", NULL, 0, set_pin},
    {"no-pin", "no", NULL, NULL, NULL, 0, set_pin},
    {"max-clients", NULL, "server", "max-clients", NULL, 0, set_max_clients},
    {"name", NULL, "server", "name", NULL, 0, set_name},
    {"network", NULL, "server", "network", NULL, 0, set_network},
    {"password", NULL, "server", "password", NULL, 0, set_password},
    {"oper", NULL, "server", "oper", NULL, LIST, set_oper},
    {"max-line", NULL, "limits", "max-line", NULL, 0, set_max_line},
    {"sendq", NULL, "limits", "sendq", NULL, 0, set_sendq},
    {"session-queue", NULL, "limits", "session-queue", NULL, 0, set_session_queue},
    {"flood-burst", NULL, "limits", "flood-burst", NULL, 0, set_flood_burst},
    {"flood-rate", NULL, "limits", "flood-rate", NULL, 0, set_flood_rate},
    {"ping-interval", NULL, "limits", "ping-interval", NULL, 0, set_ping_interval},
    {"ping-timeout", NULL, "limits", "ping-timeout", NULL, 0, set_ping_timeout},
    {"request-timeout", NULL, "limits", "request-timeout", NULL, 0, set_request_timeout},
    {"motd", NULL, "motd", "file", "line", PATH, set_motd},
    {NULL, NULL, "motd", "line", "file", LIST, set_motd_line},
    {"tls-port", NULL, "tls", "port", NULL, 0, set_tls_port},
    {"cert", NULL, "tls", "cert", NULL, PATH, set_tls_cert},
    {"key", NULL, "tls", "key", NULL, PATH, set_tls_key},
    {"cluster", NULL, "cluster", "servers", NULL, 0, set_cluster},
    {"cluster-replicas", NULL, "cluster", "replicas", NULL, 0, set_cluster_replicas},
};
#define NSETTINGS (sizeof(chat_settings) / sizeof(chat_settings[0]))
const size_t chat_nsettings = NSETTINGS;

#undef LIST
#undef PATH

const char *chat_options_keep(struct chat_options *o, const char *s)
{
	char **k = realloc(o->kept, (o->nkept + 1) * sizeof(*k));
	char *copy = strdup(s);
	if (k == NULL || copy == NULL) {
		fprintf(stderr, "chat-server: out of memory\n");
		exit(1);
	}
	o->kept = k;
	k[o->nkept++] = copy;
	return copy;
}

void chat_options_free(struct chat_options *o)
{
	for (size_t i = 0; i < o->motd_text_lines; i++)
		free(o->motd_text[i]);
	free(o->motd_text);
	for (size_t i = 0; i < o->nkept; i++)
		free(o->kept[i]);
	free(o->kept);
	*o = (struct chat_options){0};
}

/* ---------------------------------------------------------------------------------------------
 * The command line
 */

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: chat-server [options]\n"
	        "  --config FILE        settings from FILE; the other options win over it%s\n"
	        "  --bind ADDR          address to listen on (default 127.0.0.1; :: for all)\n"
	        "  --port N             TCP port (default 6667; 0 = any free port)\n"
	        "  --workers N          worker threads (default 0: one per CPU)\n"
	        "  --reactor NAME       auto, epoll or io_uring (default auto)\n"
	        "  --pin                pin each worker to one CPU (for a machine whose CPUs\n"
	        "                       are the server's alone; --no-pin, the default, is\n"
	        "                       accepted too)\n"
	        "  --max-clients N      connections beyond N get ERROR :Server full\n"
	        "                       (default: the descriptor limit less %d)\n"
	        "  --motd FILE          message of the day (default: none, ERR_NOMOTD)\n"
	        "  --tls-port N         also listen for TLS on port N (6697 is usual; 0 = any\n"
	        "                       free port), with the PEM files below\n"
	        "  --cert FILE          the TLS certificate, then its chain\n"
	        "  --key FILE           its private key\n"
	        "  --password P         server password clients must send with PASS\n"
	        "  --oper NAME:PASSWORD an IRC operator, for OPER NAME PASSWORD (repeatable)\n"
	        "  --name NAME          server name (default irc.libactor.local); with --cluster\n"
	        "                       each host's own, and required\n"
	        "  --network NAME       the network's name (default libactor): NETWORK=, and\n"
	        "                       with --cluster the same on every host\n"
	        "  --cluster URLS       one host of several: NATS JetStream servers,\n"
	        "                       nats://h1:4222,nats://h2:4222,... (README: Several hosts)\n"
	        "  --cluster-replicas N copies of the stream and nick bucket, 1..5 (default %d;\n"
	        "                       1 for a single NATS server)\n"
	        "  --max-line N         longest input line with CR LF, %d..%d (default %d)\n"
	        "  --sendq BYTES        output cap per client (default %u)\n"
	        "  --session-queue N    messages a client's session may have waiting, 1..%u;\n"
	        "                       one more and it is dropped as too slow (default %u)\n"
	        "  --flood-burst N      lines a client may send at once (default %d)\n"
	        "  --flood-rate N       lines per second after the burst; 0 = no limit "
	        "(default %d)\n"
	        "  --ping-interval S    seconds of silence before PING (default %d)\n"
	        "  --ping-timeout S     seconds to answer PING (default %d)\n"
	        "  --request-timeout S  seconds a client's command waits for the channel or user\n"
	        "                       it is for before it fails (default %d)\n"
	        "  --help               this text\n"
	        "Prints PORT <n> (then TLS_PORT <n>) on stdout when listening. SIGINT/SIGTERM: "
	        "ERROR to every client, "
	        "exit 0.\n",
	        chat_config_built ? "" : "\n                       (not in this build: no inih)",
	        CHAT_FD_RESERVE, CHAT_CLUSTER_REPLICAS_DEFAULT, IRC_LINE_MIN, IRC_LINE_MAX,
	        IRC_LINE_DEFAULT, CHAT_SENDQ_DEFAULT, CHAT_SESSION_QUEUE_MAX,
	        CHAT_SESSION_QUEUE_DEFAULT, CHAT_FLOOD_BURST_DEFAULT, CHAT_FLOOD_RATE_DEFAULT,
	        CHAT_PING_INTERVAL_DEFAULT, CHAT_PING_TIMEOUT_DEFAULT,
	        CHAT_REQUEST_TIMEOUT_DEFAULT);
}

static void fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "chat-server: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'chat-server --help'.\n");
	va_end(ap);
	exit(2);
}

#define OPT_SETTING 0x100 /* getopt's answer for chat_settings[i]: OPT_SETTING + i */

static struct option longs[NSETTINGS + 3];

/* The first pass: --help, --config, and whether every option is known and has its value. */
static const char *find_config(int argc, char **argv)
{
	const char *config = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == 'C') {
			if (config != NULL)
				fail_usage("--config given twice");
			config = optarg;
		} else if (c == ':') {
			fail_usage("%s needs a value", argv[optind - 1]);
		} else if (c < OPT_SETTING) {
			fail_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		fail_usage("unexpected argument '%s'", argv[optind]);
	return config;
}

void chat_options_parse(struct chat_options *o, struct chat_srv *srv, int argc, char **argv)
{
	*o = (struct chat_options){.bind = "127.0.0.1",
	                           .port = 6667,
	                           .reactor = "auto",
	                           .max_clients = -1,
	                           .tls_port = -1,
	                           .cluster_replicas = CHAT_CLUSTER_REPLICAS_DEFAULT,
	                           .srv = srv};
	size_t n = 0;
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct chat_setting *s = &chat_settings[i];
		if (s->option != NULL)
			longs[n++] =
			    (struct option){s->option, s->implied ? no_argument : required_argument,
			                    NULL, OPT_SETTING + (int)i};
	}
	longs[n++] = (struct option){"config", required_argument, NULL, 'C'};
	longs[n++] = (struct option){"help", no_argument, NULL, 'h'};

	opterr = 0;
	const char *config = find_config(argc, argv);
	if (config != NULL)
		chat_config_read(o, config);
	o->file_opers = srv->nopers;

	/* The second pass applies the command line over the file. */
	optind = 0; /* 0, not 1: glibc's getopt starts over */
	int c;
	while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
		if (c < OPT_SETTING)
			continue;
		const struct chat_setting *s = &chat_settings[c - OPT_SETTING];
		const char *e = s->set(o, s->implied ? s->implied : optarg);
		if (e != NULL)
			fail_usage("--%s: %s", s->option, e);
	}
	if (o->tls_port >= 0 && (o->tls_cert == NULL || o->tls_key == NULL))
		fail_usage("--tls-port needs --cert and --key (or [tls] cert and key)");
	if (o->tls_port < 0 && (o->tls_cert != NULL || o->tls_key != NULL))
		fail_usage("--cert and --key are for --tls-port (or [tls] port): give it too");
	/* Hosts tell each other apart, and release a dead one's nicks, by their server names:
	 * the default would make every host the same. */
	if (o->cluster != NULL && strcmp(srv->name, CHAT_NAME_DEFAULT) == 0)
		fail_usage("--cluster needs --name (or [server] name): a server name of this "
		           "host's own");
}
