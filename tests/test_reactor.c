/* test_reactor.c: choosing the reactor backend: what "auto" picks where io_uring can be created,
 * its fallback to epoll where a seccomp profile refuses io_uring (as container runtimes' default
 * profiles do), the environment variable, and bad names.
 *
 * The refusal is real: a thread installs a seccomp filter that fails io_uring_setup with EPERM
 * and creates the system from there, so its workers (created by that thread) inherit the filter
 * while the rest of the test process keeps io_uring.
 */
#include "common.h"

#include <arpa/inet.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425 /* the same number on every architecture */
#endif

static int create_with(const char *reactor, unsigned workers, actor_system_t **out)
{
	actor_config_t cfg = {.workers = workers, .reactor = reactor};
	*out = NULL;
	return actor_system_create(&cfg, out);
}

/* Every worker's statistics name `want`. */
static void assert_workers_use(actor_system_t *sys, const char *want)
{
	for (unsigned i = 0; i < actor_system_workers(sys); i++) {
		actor_worker_stats_t st;
		ck_assert_int_eq(actor_stats_worker(sys, i, &st), 0);
		ck_assert_msg(strcmp(st.reactor, want) == 0, "worker %u uses %s, not %s", i,
		              st.reactor, want);
	}
}

START_TEST(auto_uses_io_uring_wherever_it_can_be_created)
{
	actor_system_t *sys;
	int uring = create_with("io_uring", 2, &sys);
	if (uring == 0)
		actor_system_free(sys);
	else
		ck_assert_msg(uring == -ENOSYS || uring == -EPERM || uring == -ENOMEM ||
		                  uring == -EOPNOTSUPP,
		              "io_uring refused with an unexpected error %d", uring);
	const char *want = uring == 0 ? "io_uring" : "epoll";

	ck_assert_int_eq(create_with("auto", 2, &sys), 0);
	ck_assert_str_eq(actor_system_reactor(sys), want);
	assert_workers_use(sys, want);
	actor_system_free(sys);
}
END_TEST

START_TEST(environment_variable_chooses_when_the_config_does_not)
{
	actor_system_t *sys;
	ck_assert_int_eq(setenv("ACTOR_REACTOR", "epoll", 1), 0);
	ck_assert_int_eq(create_with(NULL, 1, &sys), 0);
	ck_assert_str_eq(actor_system_reactor(sys), "epoll");
	actor_system_free(sys);

	/* The config wins over the environment. */
	ck_assert_int_eq(setenv("ACTOR_REACTOR", "no-such-backend", 1), 0);
	ck_assert_int_eq(create_with("epoll", 1, &sys), 0);
	ck_assert_str_eq(actor_system_reactor(sys), "epoll");
	actor_system_free(sys);

	/* A bad name from the environment is an error, not a silent default. */
	ck_assert_int_eq(create_with(NULL, 1, &sys), -EINVAL);
	ck_assert_ptr_null(sys);
	ck_assert_int_eq(unsetenv("ACTOR_REACTOR"), 0);
}
END_TEST

START_TEST(unknown_backend_names_are_rejected_with_einval)
{
	static const char *bad[] = {"EPOLL", "uring", "io-uring", "epoll ", "select"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		actor_system_t *sys;
		ck_assert_msg(create_with(bad[i], 1, &sys) == -EINVAL, "\"%s\" accepted", bad[i]);
		ck_assert_ptr_null(sys);
	}
}
END_TEST

START_TEST(io_uring_feature_setting_accepts_only_all_5_19_and_basic)
{
	static const char *good[] = {"all", "5.19", "basic", ""};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		actor_system_t *sys;
		ck_assert_int_eq(setenv("ACTOR_IO_URING_FEATURES", good[i], 1), 0);
		ck_assert_msg(create_with("epoll", 1, &sys) == 0, "\"%s\" refused", good[i]);
		actor_system_free(sys);
	}
	/* Checked whichever backend is asked for: a typo must not pass unnoticed on epoll today
	 * and fail on io_uring tomorrow. */
	static const char *bad[] = {"BASIC", "none", "basic ", "6.0", "5.19.0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		actor_system_t *sys;
		ck_assert_int_eq(setenv("ACTOR_IO_URING_FEATURES", bad[i], 1), 0);
		ck_assert_msg(create_with("epoll", 1, &sys) == -EINVAL, "\"%s\" accepted", bad[i]);
		ck_assert_ptr_null(sys);
		ck_assert_msg(create_with("auto", 1, &sys) == -EINVAL, "\"%s\" accepted", bad[i]);
		ck_assert_ptr_null(sys);
	}
	ck_assert_int_eq(unsetenv("ACTOR_IO_URING_FEATURES"), 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Under a seccomp profile that refuses io_uring
 */

#ifdef NATIVE_AUDIT_ARCH

/* An echo actor: listens on 127.0.0.1, adopts what it accepts (the listener and its connections
 * live on its worker) and writes back what it reads. */
struct echo {
	actor_listener_t l;
	actor_conn_t conn;
	atomic_int port; /* 0 until listening; -errno if listening failed */
	atomic_int failures;
};

static void echo_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct echo *e = state;
	switch (msg->type) {
	case 1: {
		actor_listen_opts_t o = {.host = "127.0.0.1"};
		uint16_t port = 0;
		int rc = actor_tcp_listen(ctx, &o, &e->l);
		if (rc == 0)
			rc = actor_tcp_listener_port(ctx, e->l, &port);
		atomic_store(&e->port, rc < 0 ? rc : port);
		return;
	}
	case ACTOR_MSG_TCP_ACCEPTED: {
		const actor_tcp_accepted_t *a = actor_msg_data(msg);
		e->conn = a->conn;
		if (actor_tcp_handoff(ctx, a->conn, actor_self(ctx)) < 0)
			atomic_fetch_add(&e->failures, 1);
		return;
	}
	case ACTOR_MSG_TCP_DATA: {
		const actor_tcp_data_t *d = actor_msg_data(msg);
		if (actor_tcp_write(ctx, d->conn, actor_tcp_data_bytes(msg), d->len) < 0)
			atomic_fetch_add(&e->failures, 1);
		return;
	}
	case ACTOR_MSG_TCP_CLOSED: {
		const actor_tcp_event_t *ev = actor_msg_data(msg);
		actor_tcp_close(ctx, ev->conn);
		actor_exit(ctx, ACTOR_REASON_NORMAL);
		return;
	}
	default:
		return;
	}
}

/* What the filtered thread saw; asserted on the test's own thread. */
struct filtered {
	int filter_rc;    /* installing the filter: 0 or -errno */
	int setup_errno;  /* a raw io_uring_setup under the filter */
	int uring_rc;     /* actor_system_create with "io_uring" */
	int auto_rc;      /* with "auto" */
	char reactor[16]; /* actor_system_reactor of the "auto" system */
	char worker_reactor[2][16];
	int echo_rc; /* the round trip: 0 or a description's line number */
	int echo_errno;
	int echo_failures;
};

static int install_filter(void)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	/* Both apply to this thread only, and to the threads it creates. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		return -errno;
	return 0;
}

/* One request/response through the system's reactor: returns 0, or the line that failed. */
static int echo_round_trip(actor_system_t *sys, struct filtered *f)
{
	struct echo e = {0};
	atomic_init(&e.port, 0);
	atomic_init(&e.failures, 0);
	actor_ref_t ref;
	if (actor_spawn(sys, NULL, echo_fn, &e, &ref) < 0)
		return __LINE__;
	if (actor_send(sys, ref, 1, NULL, 0) < 0)
		return __LINE__;
	double deadline = now_sec() + TEST_WATCHDOG * test_scale();
	while (atomic_load(&e.port) == 0 && now_sec() < deadline)
		sleep_ms(1);
	int port = atomic_load(&e.port);
	if (port <= 0) {
		f->echo_errno = -port;
		return __LINE__;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = (time_t)(TEST_WATCHDOG * test_scale())};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int line = 0;
	static const char req[] = "through the fallback reactor\n";
	char got[sizeof(req)] = {0};
	size_t n = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
		line = __LINE__;
	while (line == 0 && n < sizeof(req) - 1) {
		ssize_t r = recv(fd, got + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			line = __LINE__;
		else
			n += (size_t)r;
	}
	if (line == 0 && memcmp(got, req, sizeof(req) - 1) != 0)
		line = __LINE__;
	if (line != 0)
		f->echo_errno = errno;
	close(fd); /* the actor sees CLOSED and stops */
	actor_info_t info;
	while (actor_info(sys, ref, &info) == 0 && now_sec() < deadline)
		sleep_ms(1);
	f->echo_failures = atomic_load(&e.failures);
	return line;
}

static void *filtered_thread(void *arg)
{
	struct filtered *f = arg;
	f->filter_rc = install_filter();
	if (f->filter_rc < 0)
		return NULL;
	f->setup_errno = syscall(__NR_io_uring_setup, 8, NULL) < 0 ? errno : 0;

	actor_system_t *sys;
	f->uring_rc = create_with("io_uring", 2, &sys);
	if (f->uring_rc == 0)
		actor_system_free(sys);

	f->auto_rc = create_with("auto", 2, &sys);
	if (f->auto_rc < 0)
		return NULL;
	snprintf(f->reactor, sizeof(f->reactor), "%s", actor_system_reactor(sys));
	for (unsigned i = 0; i < 2; i++) {
		actor_worker_stats_t st = {0};
		actor_stats_worker(sys, i, &st);
		snprintf(f->worker_reactor[i], sizeof(f->worker_reactor[i]), "%s",
		         st.reactor != NULL ? st.reactor : "(none)");
	}
	f->echo_rc = echo_round_trip(sys, f);
	actor_system_shutdown(sys);
	actor_system_run(sys);
	actor_system_free(sys);
	return NULL;
}

START_TEST(auto_falls_back_to_epoll_where_seccomp_refuses_io_uring)
{
	struct filtered f = {0};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, filtered_thread, &f), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);

	ck_assert_msg(f.filter_rc == 0, "installing the seccomp filter: %s",
	              strerror(-f.filter_rc));
	ck_assert_msg(f.setup_errno == EPERM, "the filter did not refuse io_uring_setup (errno %d)",
	              f.setup_errno);
	/* Asked for by name, io_uring is an error (-EPERM; -ENOSYS in a build without liburing). */
	ck_assert_msg(f.uring_rc == -EPERM || f.uring_rc == -ENOSYS,
	              "\"io_uring\" under the filter: %d", f.uring_rc);
	/* "auto" still gives a working system, on epoll, on every worker. */
	ck_assert_msg(f.auto_rc == 0, "\"auto\" under the filter: %s", strerror(-f.auto_rc));
	ck_assert_str_eq(f.reactor, "epoll");
	ck_assert_str_eq(f.worker_reactor[0], "epoll");
	ck_assert_str_eq(f.worker_reactor[1], "epoll");
	ck_assert_msg(f.echo_rc == 0, "echo through the fallback failed at line %d (errno %d)",
	              f.echo_rc, f.echo_errno);
	ck_assert_int_eq(f.echo_failures, 0);

	/* The filter stayed on that thread: this one may still create an io_uring system. */
	actor_system_t *sys;
	int rc = create_with("io_uring", 1, &sys);
	if (rc == 0)
		actor_system_free(sys);
	ck_assert_msg(rc != -EPERM, "the filter leaked to the test thread");
}
END_TEST

#endif /* NATIVE_AUDIT_ARCH */

static Suite *reactor_suite(void)
{
	Suite *s = suite_create("reactor");
	TCase *tc = tcase_new("choice", TEST_TIMEOUT);
	tcase_add_test(tc, auto_uses_io_uring_wherever_it_can_be_created);
	tcase_add_test(tc, environment_variable_chooses_when_the_config_does_not);
	tcase_add_test(tc, unknown_backend_names_are_rejected_with_einval);
	tcase_add_test(tc, io_uring_feature_setting_accepts_only_all_5_19_and_basic);
#ifdef NATIVE_AUDIT_ARCH
	tcase_add_test(tc, auto_falls_back_to_epoll_where_seccomp_refuses_io_uring);
#else
	printf("SKIP seccomp fallback: no seccomp architecture constant for this CPU\n");
#endif
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(reactor_suite)
