/* test_crash.c: crash evidence. A fatal signal in a behaviour (a NULL dereference, abort, a
 * stack overflow, a crash in a start hook) prints one line naming the actor, its worker and its
 * message, and the process still dies of that signal; a handler the program had installed runs
 * after the line; a system created with no_crash_report prints nothing.
 *
 * A crashing program is a child: this program run again (/proc/self/exe) as "--child MODE", its
 * stderr a pipe the test reads. The sanitizers are asked to leave the fatal signals alone in the
 * child (handle_segv=0, ...), so that it dies of the signal as it would without them.
 */
#include "common.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------------------------------------
 * The child: one crash, on purpose
 */

static volatile intptr_t zero; /* a NULL the compiler cannot see, so it emits a real load */

enum { MSG_CRASH = 7, MSG_ABORT = 9, MSG_RECURSE = 11 };

static volatile unsigned depth_max = UINT32_MAX; /* far beyond any stack */

static int recurse(volatile char *up, unsigned depth)
{
	volatile char frame[512];
	frame[0] = (char)depth;
	frame[1] = up != NULL ? up[0] : 0;
	if (depth >= depth_max)
		return frame[1];
	return recurse(frame, depth + 1) + frame[1]; /* not a tail call: every frame stays */
}

static void crashing_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	(void)ctx;
	(void)state;
	if (msg->type == MSG_CRASH)
		*(volatile int *)zero = 1;
	else if (msg->type == MSG_ABORT)
		abort();
	else if (msg->type == MSG_RECURSE)
		(void)recurse(NULL, 0);
}

static void crashing_start(actor_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	*(volatile int *)zero = 1;
}

static void programs_handler(int sig)
{
	static const char line[] = "the program's handler ran\n";
	(void)sig;
	ssize_t n = write(STDERR_FILENO, line, sizeof(line) - 1);
	(void)n;
	_exit(42);
}

/* Spawns the actor named `name` on worker `worker`, tells the parent its reference, and sends
 * it `type` (0: nothing). */
static void child_spawn(actor_system_t *sys, const char *name, unsigned worker, uint32_t type,
                        void (*start)(actor_ctx_t *, void *))
{
	actor_spawn_opts_t o = {
	    .name = name, .placement = ACTOR_PLACE_FIXED, .worker = worker, .start = start};
	actor_ref_t ref;
	if (actor_spawn(sys, &o, crashing_fn, NULL, &ref) != 0)
		_exit(3);
	fprintf(stderr, "child: ref 0x%" PRIx64 "\n", ref.id);
	fflush(stderr);
	if (type != 0 && actor_send(sys, ref, type, NULL, 0) != 0)
		_exit(4);
}

static int child_main(const char *mode)
{
	actor_config_t cfg = {.workers = 2};
	if (strcmp(mode, "quiet") == 0)
		cfg.no_crash_report = 1;
	if (strcmp(mode, "chain") == 0)
		signal(SIGSEGV, programs_handler);
	actor_system_t *sys;
	if (actor_system_create(&cfg, &sys) != 0)
		return 2;
	if (strcmp(mode, "segv") == 0 || strcmp(mode, "quiet") == 0 || strcmp(mode, "chain") == 0)
		child_spawn(sys, "crasher", 1, MSG_CRASH, NULL);
	else if (strcmp(mode, "abort") == 0)
		child_spawn(sys, "aborter", 0, MSG_ABORT, NULL);
	else if (strcmp(mode, "overflow") == 0)
		child_spawn(sys, "deep", 1, MSG_RECURSE, NULL);
	else if (strcmp(mode, "start") == 0)
		child_spawn(sys, "starter", 1, 0, crashing_start);
	else
		return 5;
	actor_system_run(sys);
	actor_system_free(sys);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The parent: runs a child and reads what it says
 */

struct child {
	pid_t pid;
	int err; /* the child's stderr */
	int in;  /* the child's stdin */
	char out[16384];
	size_t len;
	int status;
};

/* The sanitizers' fatal-signal handling off, in `var`'s options. */
static void sanitizer_signals_off(const char *var)
{
	static const char off[] = "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:"
	                          "handle_abort=0:allow_user_segv_handler=1";
	const char *was = getenv(var);
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s%s%s", was != NULL ? was : "", was != NULL ? ":" : "", off);
	setenv(var, buf, 1);
}

static void child_start(struct child *c, const char *mode)
{
	int err[2], in[2];
	ck_assert_int_eq(pipe(err), 0);
	ck_assert_int_eq(pipe(in), 0);
	memset(c, 0, sizeof(*c));
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		dup2(err[1], STDERR_FILENO);
		dup2(in[0], STDIN_FILENO);
		close(err[0]);
		close(err[1]);
		close(in[0]);
		close(in[1]);
		setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}); /* no core file from the crash */
		sanitizer_signals_off("ASAN_OPTIONS");
		sanitizer_signals_off("TSAN_OPTIONS");
		sanitizer_signals_off("UBSAN_OPTIONS");
		execl("/proc/self/exe", "test_crash", "--child", mode, (char *)NULL);
		_exit(127);
	}
	close(err[1]);
	close(in[0]);
	c->err = err[0];
	c->in = in[1];
}

/* Reads the child's stderr until `needle` shows (NULL: until its end) or the time is up. */
static bool child_read_until(struct child *c, const char *needle, double seconds)
{
	double end = now_sec() + seconds * test_scale();
	for (;;) {
		c->out[c->len] = '\0';
		if (needle != NULL && strstr(c->out, needle) != NULL)
			return true;
		double left = end - now_sec();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = c->err, .events = POLLIN};
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		ssize_t n = read(c->err, c->out + c->len, sizeof(c->out) - 1 - c->len);
		if (n <= 0)
			return needle == NULL; /* its end */
		c->len += (size_t)n;
	}
}

/* Reads the rest and reaps the child (killing it if it outstays the time). */
static void child_finish(struct child *c)
{
	bool ended = child_read_until(c, NULL, TEST_WATCHDOG);
	if (!ended)
		kill(c->pid, SIGKILL);
	ck_assert_int_eq(waitpid(c->pid, &c->status, 0), c->pid);
	close(c->err);
	close(c->in);
	ck_assert_msg(ended, "the child did not end; it said:\n%s", c->out);
}

/* The reference the child announced, as the report prints it ("0x..."). */
static const char *child_ref(const struct child *c, char *buf, size_t len)
{
	const char *p = strstr(c->out, "child: ref ");
	ck_assert_msg(p != NULL, "the child did not say its actor's reference:\n%s", c->out);
	p += strlen("child: ref ");
	size_t n = strcspn(p, "\n");
	ck_assert(n < len);
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void assert_killed_by(const struct child *c, int sig)
{
	ck_assert_msg(WIFSIGNALED(c->status) && WTERMSIG(c->status) == sig,
	              "the child did not die of signal %d (status 0x%x); it said:\n%s", sig,
	              (unsigned)c->status, c->out);
}

/* Runs child `mode`, expects it to die of `sig` with the one report line `fmt` (%s: the ref). */
static void check_report(const char *mode, int sig, const char *fmt)
{
	struct child c;
	child_start(&c, mode);
	child_finish(&c);
	assert_killed_by(&c, sig);
	char ref[32], line[256];
	snprintf(line, sizeof(line), fmt, child_ref(&c, ref, sizeof(ref)));
	ck_assert_msg(strstr(c.out, line) != NULL,
	              "expected the line\n%sin what the child said:\n%s", line, c.out);
	ck_assert_uint_eq(count_of(c.out, "libactor: fatal"), 1);
}

START_TEST(a_null_dereference_names_the_actor_its_worker_and_its_message)
{
	check_report("segv", SIGSEGV,
	             "libactor: fatal SIGSEGV in a behaviour: actor %s \"crasher\" on worker 1, "
	             "handling message type 7\n");
}
END_TEST

START_TEST(an_abort_is_reported_and_still_aborts)
{
	check_report("abort", SIGABRT,
	             "libactor: fatal SIGABRT in a behaviour: actor %s \"aborter\" on worker 0, "
	             "handling message type 9\n");
}
END_TEST

START_TEST(a_stack_overflow_is_reported_from_the_alternate_stack)
{
	check_report("overflow", SIGSEGV,
	             "libactor: fatal SIGSEGV in a behaviour: actor %s \"deep\" on worker 1, "
	             "handling message type 11\n");
}
END_TEST

START_TEST(a_crash_in_a_start_hook_says_so)
{
	check_report("start", SIGSEGV,
	             "libactor: fatal SIGSEGV in a behaviour: actor %s \"starter\" on worker 1, in "
	             "its start hook\n");
}
END_TEST

START_TEST(the_programs_own_handler_runs_after_the_report)
{
	struct child c;
	child_start(&c, "chain");
	child_finish(&c);
	ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 42,
	              "status 0x%x; the child said:\n%s", (unsigned)c.status, c.out);
	const char *report = strstr(c.out, "libactor: fatal SIGSEGV in a behaviour: actor ");
	const char *program = strstr(c.out, "the program's handler ran\n");
	ck_assert_msg(report != NULL && program != NULL && report < program,
	              "the report, then the program's handler; the child said:\n%s", c.out);
}
END_TEST

START_TEST(no_crash_report_prints_nothing_and_the_signal_still_kills)
{
	struct child c;
	child_start(&c, "quiet");
	child_finish(&c);
	assert_killed_by(&c, SIGSEGV);
	ck_assert_msg(strstr(c.out, "libactor:") == NULL, "the child said:\n%s", c.out);
}
END_TEST

START_TEST(bad_crash_settings_are_refused)
{
	actor_system_t *sys = NULL;
	ck_assert_int_eq(actor_system_create(&(actor_config_t){.no_crash_report = 2}, &sys),
	                 -EINVAL);
	ck_assert_int_eq(actor_system_create(&(actor_config_t){.no_crash_report = -1}, &sys),
	                 -EINVAL);
	ck_assert_ptr_null(sys);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_new("fatal signals", TEST_TIMEOUT);
	tcase_add_test(tc, a_null_dereference_names_the_actor_its_worker_and_its_message);
	tcase_add_test(tc, an_abort_is_reported_and_still_aborts);
	tcase_add_test(tc, a_stack_overflow_is_reported_from_the_alternate_stack);
	tcase_add_test(tc, a_crash_in_a_start_hook_says_so);
	tcase_add_test(tc, the_programs_own_handler_runs_after_the_report);
	tcase_add_test(tc, no_crash_report_prints_nothing_and_the_signal_still_kills);
	tcase_add_test(tc, bad_crash_settings_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2]);
	test_argc = argc;
	test_argv = argv;
	SRunner *sr = srunner_create(crash_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
