/* nats_server.h: a real nats-server for a test, with JetStream, on a free port of 127.0.0.1,
 * its store in a temporary directory; stopped (SIGKILL when asked, to play a crash) and started
 * again on the same port. The binary is the one configure found (NATS_SERVER), else the first
 * `nats-server` on PATH or in /usr/sbin; a suite without one skips (exit status 77).
 */
#ifndef TESTS_NATS_SERVER_H
#define TESTS_NATS_SERVER_H

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common.h"

struct nats_srv {
	pid_t pid;
	int port; /* 0 until it has started once */
	char dir[64];
	char url[64];
	char conf[96]; /* a cluster node's configuration file (nats_cluster_start), or "" */
};

static inline const char *nats_server_path(void)
{
	static char found[256];
	const char *env = getenv("NATS_SERVER");
	if (env != NULL && *env != '\0' && access(env, X_OK) == 0)
		return env;
#ifdef NATS_SERVER_PATH
	if (access(NATS_SERVER_PATH, X_OK) == 0)
		return NATS_SERVER_PATH;
#endif
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s:/usr/sbin:/usr/local/sbin", path ? path : "/usr/bin");
	for (char *save, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(found, sizeof(found), "%s/nats-server", d);
		if (access(found, X_OK) == 0)
			return found;
	}
	return NULL;
}

/* The port the server wrote into its ports file (nats-server_<pid>.ports), or 0. */
static inline int nats_read_port(const struct nats_srv *s)
{
	char path[160], buf[512];
	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", s->dir, (int)s->pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "nats://127.0.0.1:");
	return p != NULL ? atoi(p + strlen("nats://127.0.0.1:")) : 0;
}

/* Starts the server (on s->port if it has one already, else a free port); fails the test if it
 * does not come up within 10 s (scaled). */
static inline void nats_start(struct nats_srv *s)
{
	const char *bin = nats_server_path();
	ck_assert_msg(bin != NULL, "nats-server not found");
	if (s->dir[0] == '\0') {
		snprintf(s->dir, sizeof(s->dir), "/tmp/libactor-nats-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(s->dir));
	}
	char port[16], log[96];
	snprintf(port, sizeof(port), "%d", s->port != 0 ? s->port : -1);
	snprintf(log, sizeof(log), "%s/log", s->dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The server goes with the test process that started it, however that ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (s->conf[0] != '\0')
			execl(bin, bin, "-c", s->conf, "--ports_file_dir", s->dir, "-l", log,
			      (char *)NULL);
		else
			execl(bin, bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", s->dir,
			      "--ports_file_dir", s->dir, "-l", log, (char *)NULL);
		_exit(127);
	}
	s->pid = pid;
	/* The server writes its ports file once it listens: wait for that (a child process has no
	 * other way to say so), under a time limit. */
	double end = now_sec() + 10 * test_scale();
	int p = 0;
	while ((p = nats_read_port(s)) == 0 && now_sec() < end) {
		int st;
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0,
		              "nats-server exited at start (see %s)", log);
		sleep_ms(5);
	}
	ck_assert_msg(p != 0, "nats-server did not start within 10 s (see %s)", log);
	s->port = p;
	snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", p);
}

/* Stops the server: SIGKILL (a crash) or SIGTERM, and waits for it. */
static inline void nats_stop(struct nats_srv *s, bool crash)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, crash ? SIGKILL : SIGTERM);
	int st;
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

/* Stops it and removes its directory. */
static inline void nats_free(struct nats_srv *s)
{
	nats_stop(s, true);
	if (s->dir[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", s->dir);
	}
	s->dir[0] = '\0';
}

/* A free TCP port of 127.0.0.1 (the kernel's pick; free when asked, as good as that gets). */
static inline int nats_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Three servers with JetStream, clustered on 127.0.0.1; `urls` lists their client URLs. */
struct nats_cluster {
	struct nats_srv node[3];
	char urls[200];
};

static inline void nats_cluster_start(struct nats_cluster *c)
{
	int port[3], route[3];
	for (int i = 0; i < 3; i++) {
		port[i] = nats_free_port();
		route[i] = nats_free_port();
	}
	c->urls[0] = '\0';
	for (int i = 0; i < 3; i++) {
		struct nats_srv *s = &c->node[i];
		snprintf(s->dir, sizeof(s->dir), "/tmp/libactor-nats-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(s->dir));
		snprintf(s->conf, sizeof(s->conf), "%s/n.conf", s->dir);
		FILE *f = fopen(s->conf, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(
		    f,
		    "server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: \"%s/js\" }\n"
		    "cluster {\n  name: c1\n  listen: 127.0.0.1:%d\n  routes: [\n",
		    i + 1, port[i], s->dir, route[i]);
		for (int j = 0; j < 3; j++)
			fprintf(f, "    nats-route://127.0.0.1:%d\n", route[j]);
		fprintf(f, "  ]\n}\n");
		fclose(f);
		s->port = port[i];
		nats_start(s);
		snprintf(c->urls + strlen(c->urls), sizeof(c->urls) - strlen(c->urls), "%s%s",
		         i ? "," : "", s->url);
	}
}

static inline void nats_cluster_free(struct nats_cluster *c)
{
	for (int i = 0; i < 3; i++)
		nats_free(&c->node[i]);
}

#endif /* TESTS_NATS_SERVER_H */
