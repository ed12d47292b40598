/* load.h: what the load generators (echo_client.c, fileserve_load.c) share: the clock, sleeping
 * to a moment, a process's CPU time from /proc, the descriptor limit, and the measuring window:
 * their threads run from t0, count only what completes between t_measure and t_end, and the
 * main thread reads the client's and the server's CPU time at both ends of that window. Plain
 * C with threads; no libactor. */
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void sleep_until(uint64_t t)
{
	struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The process's user + system CPU time in seconds, or -1. */
static inline double proc_cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name, which is in parentheses and may hold spaces. */
	const char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* As many descriptors as the hard limit allows: one per connection. */
static inline void raise_nofile(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* The CPU seconds the client (this process) and the server (`server_pid`, if > 0) spent
 * between t_measure and t_end, sleeping until each; -1 for one that could not be read. */
static inline void measure_cpu(uint64_t t_measure, uint64_t t_end, int server_pid, double *client,
                               double *server)
{
	double srv0 = -1, srv1 = -1;
	sleep_until(t_measure);
	double cli0 = proc_cpu_s(getpid());
	if (server_pid > 0)
		srv0 = proc_cpu_s(server_pid);
	sleep_until(t_end);
	double cli1 = proc_cpu_s(getpid());
	if (server_pid > 0)
		srv1 = proc_cpu_s(server_pid);
	*client = cli0 >= 0 && cli1 >= 0 ? cli1 - cli0 : -1;
	*server = srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1;
}

#endif /* BENCH_LOAD_H */
