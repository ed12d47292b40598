/* backend.h: what the network and timer suites share: the reactor backend under test, and
 * failures seen inside behaviours (which run on worker threads and must not call ck_assert:
 * they note the first failure, and the test thread asserts on it). */
#ifndef TESTS_BACKEND_H
#define TESTS_BACKEND_H

static const char *reactor = "epoll";
static atomic_int fail_count;
static atomic_int fail_ready;
static char fail_msg[512];

static void reset_failures(void)
{
	atomic_store(&fail_count, 0);
	atomic_store(&fail_ready, 0);
	fail_msg[0] = '\0';
}

static void use_epoll(void)
{
	reactor = "epoll";
	reset_failures();
}

static void use_io_uring(void)
{
	reactor = "io_uring";
	reset_failures();
}

__attribute__((format(printf, 2, 3))) static void note_fail(int line, const char *fmt, ...)
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

static actor_system_t *backend_system(unsigned workers)
{
	actor_config_t cfg = {.workers = workers, .reactor = reactor};
	actor_system_t *sys = system_new_cfg(&cfg);
	ck_assert_str_eq(actor_system_reactor(sys), reactor);
	return sys;
}

/* Shuts the system down and frees it; fails if that hangs. */
static void backend_system_end(actor_system_t *sys, const char *what)
{
	ck_assert_int_eq(actor_system_shutdown(sys), 0);
	system_run_to_end(sys, TEST_WATCHDOG, what);
	actor_system_free(sys);
}

#endif /* TESTS_BACKEND_H */
