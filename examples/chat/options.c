/* options.c: chat-server's settings, one table of them, and the command line that sets them. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	o->motd = v;
	return NULL;
}

static const char *set_password(struct chat_options *o, const char *v)
{
	if (v[0] == '\0' || strpbrk(v, " \r\n") != NULL)
		return expected(v, "a non-empty word without spaces");
	o->password = v;
	return NULL;
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

/* ---------------------------------------------------------------------------------------------
 * The settings
 */

struct setting {
	const char *option;  /* --option */
	const char *implied; /* the value of an option that takes none (--pin: "yes") */
	const char *(*set)(struct chat_options *o, const char *value);
};

static const struct setting settings[] = {
    {"bind", NULL, set_bind},
    {"port", NULL, set_port},
    {"workers", NULL, set_workers},
    {"reactor", NULL, set_reactor},
    {"pin", "yes", set_pin},
    {"no-pin", "no", set_pin},
    {"max-clients", NULL, set_max_clients},
    {"name", NULL, set_name},
    {"password", NULL, set_password},
    {"oper", NULL, set_oper},
    {"max-line", NULL, set_max_line},
    {"sendq", NULL, set_sendq},
    {"flood-burst", NULL, set_flood_burst},
    {"flood-rate", NULL, set_flood_rate},
    {"ping-interval", NULL, set_ping_interval},
    {"ping-timeout", NULL, set_ping_timeout},
    {"motd", NULL, set_motd},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* ---------------------------------------------------------------------------------------------
 * The command line
 */

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: chat-server [options]\n"
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
	        "  --password P         server password clients must send with PASS\n"
	        "  --oper NAME:PASSWORD an IRC operator, for OPER NAME PASSWORD (repeatable)\n"
	        "  --name NAME          server name (default irc.libactor.local)\n"
	        "  --max-line N         longest input line with CR LF, %d..%d (default %d)\n"
	        "  --sendq BYTES        output cap per client (default %u)\n"
	        "  --flood-burst N      lines a client may send at once (default %d)\n"
	        "  --flood-rate N       lines per second after the burst; 0 = no limit "
	        "(default %d)\n"
	        "  --ping-interval S    seconds of silence before PING (default %d)\n"
	        "  --ping-timeout S     seconds to answer PING (default %d)\n"
	        "  --help               this text\n"
	        "Prints PORT <n> on stdout when listening. SIGINT/SIGTERM: ERROR to every client, "
	        "exit 0.\n",
	        CHAT_FD_RESERVE, IRC_LINE_MIN, IRC_LINE_MAX, IRC_LINE_DEFAULT, CHAT_SENDQ_DEFAULT,
	        CHAT_FLOOD_BURST_DEFAULT, CHAT_FLOOD_RATE_DEFAULT, CHAT_PING_INTERVAL_DEFAULT,
	        CHAT_PING_TIMEOUT_DEFAULT);
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

#define OPT_SETTING 0x100 /* getopt's answer for settings[i]: OPT_SETTING + i */

void chat_options_parse(struct chat_options *o, struct chat_srv *srv, int argc, char **argv)
{
	*o = (struct chat_options){
	    .bind = "127.0.0.1", .port = 6667, .reactor = "auto", .max_clients = -1, .srv = srv};
	static struct option longs[NSETTINGS + 2];
	for (size_t i = 0; i < NSETTINGS; i++)
		longs[i] = (struct option){settings[i].option,
		                           settings[i].implied ? no_argument : required_argument,
		                           NULL, OPT_SETTING + (int)i};
	longs[NSETTINGS] = (struct option){"help", no_argument, NULL, 'h'};

	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
		if (c >= OPT_SETTING) {
			const struct setting *s = &settings[c - OPT_SETTING];
			const char *e = s->set(o, s->implied ? s->implied : optarg);
			if (e != NULL)
				fail_usage("--%s: %s", s->option, e);
		} else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == ':') {
			fail_usage("%s needs a value", argv[optind - 1]);
		} else {
			fail_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		fail_usage("unexpected argument '%s'", argv[optind]);
}
