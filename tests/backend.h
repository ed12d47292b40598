/* backend.h: what the network and timer suites share: the reactor backend under test, failures
 * seen inside behaviours (which run on worker threads and must not call ck_assert: they note the
 * first failure, and the test thread asserts on it), and the main that runs the cases once per
 * backend this kernel and sandbox allow. */
#ifndef TESTS_BACKEND_H
#define TESTS_BACKEND_H

static const char *reactor = "epoll";
static atomic_int fail_count;
static atomic_int fail_ready;
static char fail_msg[512];

static inline void reset_failures(void)
{
	atomic_store(&fail_count, 0);
	atomic_store(&fail_ready, 0);
	fail_msg[0] = '\0';
}

/* Selects the backend for one test: the reactor, and the io_uring feature level (NULL: all
 * the kernel has). The fixtures run in the test's own process (Check forks one per test), so
 * the environment they set is that test's alone. */
static inline void use_backend(const char *name, const char *uring_features)
{
	reactor = name;
	if (uring_features != NULL)
		setenv("ACTOR_IO_URING_FEATURES", uring_features, 1);
	else
		unsetenv("ACTOR_IO_URING_FEATURES");
	reset_failures();
}

static inline void use_epoll(void)
{
	use_backend("epoll", NULL);
}

static inline void use_io_uring(void)
{
	use_backend("io_uring", NULL);
}

/* io_uring as older kernels offer it: the fallbacks this machine's kernel would otherwise
 * never take. 5.19: COOP_TASKRUN instead of DEFER_TASKRUN, the kernel refusing the first
 * multishot receive and single receives into provided buffers from then on. Before 5.19 ("basic"):
 * no ring flags, no provided buffers, no multishot accept either. */
static inline void use_io_uring_5_19(void)
{
	use_backend("io_uring", "5.19");
}

static inline void use_io_uring_basic(void)
{
	use_backend("io_uring", "basic");
}

__attribute__((format(printf, 2, 3))) static inline void note_fail(int line, const char *fmt, ...)
{
	if (atomic_fetch_add(&fail_count, 1) != 0)
		return;
	int n = snprintf(fail_msg, sizeof(fail_msg), "line %d: ", line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fail_msg + n, sizeof(fail_msg) - (size_t)n, fmt, ap);
	va_end(ap);
	/* release: pairs with the acquire in assert_no_failures */
	atomic_store_explicit(&fail_ready, 1, memory_order_release);
}
#define NOTE_FAIL(...) note_fail(__LINE__, __VA_ARGS__)

#define assert_no_failures()                                                                       \
	ck_assert_msg(atomic_load(&fail_count) == 0,                                               \
	              "[%s] %d failure(s) inside actors; first: %s", reactor,                      \
	              atomic_load(&fail_count),                                                    \
	              atomic_load_explicit(&fail_ready, memory_order_acquire) ? fail_msg : "?")

/* A system on this suite's backend with the rest of `cfg`. */
static inline actor_system_t *backend_system_cfg(actor_config_t cfg)
{
	cfg.reactor = reactor;
	actor_system_t *sys = system_new_cfg(&cfg);
	ck_assert_str_eq(actor_system_reactor(sys), reactor);
	return sys;
}

static inline actor_system_t *backend_system(unsigned workers)
{
	return backend_system_cfg((actor_config_t){.workers = workers});
}

/* Shuts the system down and frees it; fails if that hangs. */
static inline void backend_system_end(actor_system_t *sys, const char *what)
{
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, what);
	actor_system_free(sys);
}

/* ---------------------------------------------------------------------------------------------
 * Suites: one per backend that this kernel and sandbox allow
 */

/* Adds the cases to suite s for backend b (0 = epoll, 1 = io_uring, 2 and 3 = io_uring as on
 * older kernels), each test case with the fixture that selects the backend. */
typedef void backend_cases_fn(Suite *s, unsigned b, void (*fixture)(void));

enum { BACKENDS = 4 };
static const char *const backend_labels[BACKENDS] = {"epoll", "io_uring", "io_uring-5.19",
                                                     "io_uring-basic"};

/* Check keeps the name pointers: they live here. */
static char backend_names[BACKENDS][16][64];
static char backend_suite_names[BACKENDS][48];

/* The k-th test case of backend b, named "<backend>: <label>". */
static inline TCase *backend_tcase(Suite *s, unsigned b, unsigned k, const char *label,
                                   double timeout, void (*fixture)(void))
{
	if (k >= 16) { /* not a test failure: Check is not running tests yet */
		fprintf(stderr, "backend_tcase: more than 16 test cases; enlarge backend_names\n");
		exit(2);
	}
	snprintf(backend_names[b][k], sizeof(backend_names[b][k]), "%s: %s", backend_labels[b],
	         label);
	TCase *tc = tcase_new(backend_names[b][k], timeout);
	tcase_add_checked_fixture(tc, fixture, NULL);
	suite_add_tcase(s, tc);
	return tc;
}

/* 0 if a system with this backend can be created, else the negative errno. */
static inline int backend_probe(const char *backend)
{
	actor_config_t cfg = {.workers = 1, .reactor = backend};
	actor_system_t *sys = NULL;
	int rc = actor_system_create(&cfg, &sys);
	if (rc == 0)
		actor_system_free(sys);
	return rc;
}

/* The main of a per-backend program: suites "<name>-epoll" and, where io_uring can be created,
 * "<name>-io_uring", "<name>-io_uring-5.19" and "<name>-io_uring-basic" (else "SKIP io_uring:
 * <reason>" and no cases). */
static inline int backend_main(int argc, char **argv, const char *name, backend_cases_fn *add)
{
	static void (*const fixtures[BACKENDS])(void) = {use_epoll, use_io_uring, use_io_uring_5_19,
	                                                 use_io_uring_basic};
	test_argc = argc;
	test_argv = argv;
	signal(SIGPIPE, SIG_DFL);            /* a SIGPIPE anywhere kills the test and fails it */
	unsetenv("ACTOR_IO_URING_FEATURES"); /* each fixture sets what its backend needs */
	for (unsigned b = 0; b < BACKENDS; b++)
		snprintf(backend_suite_names[b], sizeof(backend_suite_names[b]), "%s-%s", name,
		         backend_labels[b]);
	Suite *epoll = suite_create(backend_suite_names[0]);
	add(epoll, 0, use_epoll);
	SRunner *sr = srunner_create(epoll);
	int rc = backend_probe("io_uring");
	if (rc == 0) {
		for (unsigned b = 1; b < BACKENDS; b++) {
			Suite *uring = suite_create(backend_suite_names[b]);
			add(uring, b, fixtures[b]);
			srunner_add_suite(sr, uring);
		}
	} else {
		printf("SKIP io_uring: actor_system_create says %d (%s)\n", rc, strerror(-rc));
	}
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* TESTS_BACKEND_H */
