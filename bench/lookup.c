/* lookup.c: name lookups per second, libactor's (c-ares on a worker, driven by its reactor)
 * against glibc's getaddrinfo on threads (one blocking call per thread), asking the same DNS
 * server, with 1 and 64 lookups in flight.
 *
 * Usage: bench/lookup [lookups]   (default 20,000 per row)
 *
 * The DNS server is tests/dns_responder.h, a thread of this program answering every A query
 * with 127.0.0.1 (and AAAA with no record); every lookup asks for both, as getaddrinfo does
 * with AF_UNSPEC. getaddrinfo takes its server from /etc/resolv.conf, on port 53 only, so the
 * program first moves into network and mount namespaces of its own (unshare: root), brings up
 * their loopback, serves on 127.0.0.1:53 there and mounts a resolv.conf naming it over
 * /etc/resolv.conf; both sides then find the server through the system's configuration, and
 * no packet can leave the namespace. Where that is refused, the DNS rows are skipped (with a
 * note on stderr) and only the /etc/hosts rows remain.
 *
 * Rows, each for impl=libactor-cares and impl=getaddrinfo-threads:
 *   name=lookup_dns_<n>    names the server answers, <n> in flight: metric=lookups_per_s, and
 *                          metric=cpu_us_per_lookup (this process's CPU time, the server's
 *                          thread left out, per lookup)
 *   name=lookup_dns_rtt10ms_64  the server answers after 10 ms (a resolver a few hops away),
 *                          64 in flight, a quarter of the lookups: both metrics
 *   name=lookup_hosts_<n>  "localhost", from /etc/hosts (no DNS): metric=lookups_per_s
 * Every answer is checked (no error, 127.0.0.1 first); a wrong one fails the run.
 */
#define _GNU_SOURCE 1

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include "../tests/dns_responder.h"
#include "bench.h"

#define LOOKUPS_DEFAULT 20000u
#define SLOW_MS 10 /* the server's delay for the rtt rows: a resolver a few hops away */

static struct dns_responder dns;
static bool have_dns;

static void print_row(const char *name, const char *impl, const char *metric, double value,
                      const char *unit)
{
	printf("RESULT name=%s impl=%s metric=%s value=%.*f unit=%s\n", name, impl, metric,
	       value >= 10000.0 ? 0 : 3, value, unit);
	fflush(stdout);
}

static double cpu_now(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's CPU time less the server thread's, in seconds. */
static double client_cpu(void)
{
	double all = cpu_now(CLOCK_PROCESS_CPUTIME_ID);
	if (!have_dns)
		return all;
	clockid_t c;
	return pthread_getcpuclockid(dns.thread, &c) == 0 ? all - cpu_now(c) : all;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return sa->sa_family == AF_INET &&
	       ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

/* ---------------------------------------------------------------------------------------------
 * The namespace: a loopback of our own, the server on port 53, resolv.conf naming it
 */

static int enter_namespace(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0)
		return -errno;
	/* Our mounts stay ours: nothing propagates back to the machine's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -errno;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	int rc = ioctl(fd, SIOCSIFFLAGS, &ifr) != 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	char path[] = "/tmp/bench-lookup-resolv.XXXXXX";
	int f = mkstemp(path);
	if (f < 0)
		return -errno;
	static const char conf[] = "nameserver 127.0.0.1\n";
	rc = write(f, conf, sizeof(conf) - 1) == (ssize_t)sizeof(conf) - 1 ? 0 : -EIO;
	close(f);
	if (rc == 0 && mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0)
		rc = -errno;
	unlink(path); /* the mount keeps the file */
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * libactor: one actor keeps `inflight` lookups going
 */

struct looker {
	const char *host;   /* NULL: a name of its own per lookup, */
	const char *prefix; /* beginning with this */
	unsigned inflight;
	uint64_t total, started, answered, bad;
	uint64_t t0, t1;
};

static void start_one(actor_ctx_t *ctx, struct looker *l)
{
	char name[64];
	const char *host = l->host;
	if (host == NULL) {
		snprintf(name, sizeof(name), "%s%" PRIu64 ".bench.test", l->prefix, l->started);
		host = name;
	}
	actor_lookup_t h;
	bench_check(actor_lookup(ctx, host, 80, l->started, &h), "actor_lookup");
	l->started++;
}

static void looker_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct looker *l = state;
	if (msg->type != ACTOR_MSG_LOOKUP) {
		l->t0 = bench_now_ns();
		while (l->started < l->total && l->started < l->inflight)
			start_one(ctx, l);
		return;
	}
	const actor_lookup_done_t *d = actor_lookup_answer(msg);
	if (d->error != 0 || d->count == 0 || !is_loopback((const struct sockaddr *)&d->addrs[0]))
		l->bad++;
	if (++l->answered == l->total) {
		l->t1 = bench_now_ns();
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	if (l->started < l->total)
		start_one(ctx, l);
}

static int run_libactor(const char *row, const char *host, const char *prefix, unsigned inflight,
                        uint64_t n)
{
	actor_system_t *sys = bench_system(0);
	struct looker l = {.host = host, .prefix = prefix, .inflight = inflight, .total = n};
	actor_ref_t a;
	double c0 = client_cpu();
	bench_check(actor_spawn(sys, NULL, looker_fn, &l, &a), "actor_spawn");
	bench_check(actor_send(sys, a, 1, NULL, 0), "actor_send");
	bench_check(actor_system_run(sys), "actor_system_run");
	double cpu = client_cpu() - c0;
	bench_dead_letters(sys);
	actor_system_free(sys);
	if (l.answered != n || l.bad != 0) {
		fprintf(stderr,
		        "lookup: libactor %s: %" PRIu64 " answers of %" PRIu64 ", %" PRIu64
		        " wrong\n",
		        row, l.answered, n, l.bad);
		return 1;
	}
	print_row(row, "libactor-cares", "lookups_per_s", (double)n / bench_secs(l.t0, l.t1),
	          "1/s");
	if (host == NULL)
		print_row(row, "libactor-cares", "cpu_us_per_lookup", cpu * 1e6 / (double)n, "us");
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * getaddrinfo: `inflight` threads, one blocking lookup each at a time
 */

struct gai_run {
	const char *host, *prefix;
	uint64_t total;
	atomic_uint_fast64_t next, bad;
};

static void *gai_thread(void *arg)
{
	struct gai_run *g = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	for (;;) {
		uint64_t i = atomic_fetch_add(&g->next, 1);
		if (i >= g->total)
			return NULL;
		char name[64];
		const char *host = g->host;
		if (host == NULL) {
			snprintf(name, sizeof(name), "%s%" PRIu64 ".bench.test", g->prefix, i);
			host = name;
		}
		struct addrinfo *res;
		int rc = getaddrinfo(host, "80", &hints, &res);
		if (rc != 0 || !is_loopback(res->ai_addr))
			atomic_fetch_add(&g->bad, 1);
		if (rc == 0)
			freeaddrinfo(res);
	}
}

static int run_getaddrinfo(const char *row, const char *host, const char *prefix, unsigned inflight,
                           uint64_t n)
{
	struct gai_run g = {.host = host, .prefix = prefix, .total = n};
	pthread_t *t = calloc(inflight, sizeof(*t));
	if (t == NULL)
		bench_check(-ENOMEM, "calloc");
	double c0 = client_cpu();
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < inflight; i++)
		if (pthread_create(&t[i], NULL, gai_thread, &g) != 0)
			bench_check(-EAGAIN, "pthread_create");
	for (unsigned i = 0; i < inflight; i++)
		pthread_join(t[i], NULL);
	uint64_t t1 = bench_now_ns();
	double cpu = client_cpu() - c0;
	free(t);
	if (atomic_load(&g.bad) != 0) {
		fprintf(stderr, "lookup: getaddrinfo %s: %" PRIu64 " of %" PRIu64 " failed\n", row,
		        (uint64_t)atomic_load(&g.bad), n);
		return 1;
	}
	print_row(row, "getaddrinfo-threads", "lookups_per_s", (double)n / bench_secs(t0, t1),
	          "1/s");
	if (host == NULL)
		print_row(row, "getaddrinfo-threads", "cpu_us_per_lookup", cpu * 1e6 / (double)n,
		          "us");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t n = bench_arg_u64(argc, argv, 1, LOOKUPS_DEFAULT, 100000000);
	static const unsigned inflight[] = {1, 64};
	int rc = enter_namespace();
	if (rc == 0)
		rc = dns_responder_start(&dns, 53, SLOW_MS, 0);
	if (rc == 0) {
		have_dns = true;
		unsetenv("ACTOR_DNS_SERVERS"); /* the system's configuration, as getaddrinfo's */
	} else {
		fprintf(stderr,
		        "lookup: SKIP the DNS rows: no namespace of our own with a server "
		        "on 127.0.0.1:53 here (%s; needs root)\n",
		        strerror(-rc));
		/* "localhost" never asks DNS; should anything else, it asks nobody. */
		setenv("ACTOR_DNS_SERVERS", "127.0.0.1:9", 1);
	}
	int failed = 0;
	char row[64];
	for (unsigned k = 0; k < 2 && have_dns; k++) {
		snprintf(row, sizeof(row), "lookup_dns_%u", inflight[k]);
		failed |= run_libactor(row, NULL, "h", inflight[k], n);
		failed |= run_getaddrinfo(row, NULL, "h", inflight[k], n);
	}
	if (have_dns) { /* a server that takes SLOW_MS: the rate is the concurrency's */
		snprintf(row, sizeof(row), "lookup_dns_rtt%ums_64", SLOW_MS);
		failed |= run_libactor(row, NULL, "slow", 64, n / 4);
		failed |= run_getaddrinfo(row, NULL, "slow", 64, n / 4);
		fprintf(stderr, "lookup: the server got %lu queries\n", atomic_load(&dns.queries));
	}
	for (unsigned k = 0; k < 2; k++) {
		snprintf(row, sizeof(row), "lookup_hosts_%u", inflight[k]);
		failed |= run_libactor(row, "localhost", NULL, inflight[k], n);
		failed |= run_getaddrinfo(row, "localhost", NULL, inflight[k], n);
	}
	if (have_dns)
		dns_responder_stop(&dns);
	return failed;
}
