/* test_crash.c: crash evidence. A fatal signal in a behaviour (a NULL dereference, abort, a
 * stack overflow, a crash in a start hook) prints one line naming the actor, its worker and its
 * message, and the process still dies of that signal; a handler the program had installed runs
 * after the line; a system created with no_crash_report prints nothing. The watchdog reports a
 * behaviour call stuck on a gate (through its hook, and on stderr), never reports when turned
 * off, and its sampling rule is checked sample by sample.
 *
 * A crashing program is a child: this program run again (/proc/self/exe) as "--child MODE", its
 * stderr a pipe the test reads. The sanitizers are asked to leave the fatal signals alone in the
 * child (handle_segv=0, ...), so that it dies of the signal as it would without them.
 *
 * Linked with the library's objects: the watchdog's rule (actor__watch_sample) is driven
 * directly.
 */
#include "common.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core/internal.h"

#define WATCHDOG_MS 50 /* short, so that the tests are quick; the rule holds at any limit */

/* ---------------------------------------------------------------------------------------------
 * The child: one crash, on purpose
 */

static volatile intptr_t zero; /* a NULL the compiler cannot see, so it emits a real load */

enum { MSG_CRASH = 7, MSG_ABORT = 9, MSG_RECURSE = 11, MSG_WAIT = 13 };

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
	else if (msg->type == MSG_WAIT) {
		char c;
		ssize_t n =
		    read(STDIN_FILENO, &c, 1); /* blocks its worker until the parent writes */
		(void)n;
		actor_exit(ctx, ACTOR_REASON_NORMAL);
	}
}

/* Set once child_spawn has told the parent the reference: the start hook runs as soon as the
 * spawn returns, on another worker, and must not crash the process before that line is out. */
static atomic_int announced;

static void crashing_start(actor_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	while (!atomic_load(&announced))
		sched_yield();
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
	atomic_store(&announced, 1);
	if (type != 0 && actor_send(sys, ref, type, NULL, 0) != 0)
		_exit(4);
}

static int child_main(const char *mode)
{
	actor_config_t cfg = {.workers = 2, .watchdog_ms = -1};
	if (strcmp(mode, "quiet") == 0)
		cfg.no_crash_report = 1;
	if (strcmp(mode, "watchdog") == 0)
		cfg.watchdog_ms = WATCHDOG_MS;
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
	else if (strcmp(mode, "watchdog") == 0)
		child_spawn(sys, "sleeper", 1, MSG_WAIT, NULL);
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

/* The default watchdog line: the behaviour blocks its worker in read(2) until the parent has
 * seen the line. */
START_TEST(the_watchdog_prints_a_line_for_a_blocked_behaviour)
{
	struct child c;
	child_start(&c, "watchdog");
	bool seen = child_read_until(&c, "libactor: watchdog:", TEST_WATCHDOG);
	ck_assert_int_eq(write(c.in, "x", 1), 1);
	child_finish(&c);
	ck_assert_msg(seen, "no watchdog line; the child said:\n%s", c.out);
	ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0, "status 0x%x:\n%s",
	              (unsigned)c.status, c.out);
	char ref[32], line[128];
	snprintf(line, sizeof(line),
	         "libactor: watchdog: actor %s \"sleeper\" on worker 1 has been",
	         child_ref(&c, ref, sizeof(ref)));
	ck_assert_msg(strstr(c.out, line) != NULL, "expected\n%s\nin\n%s", line, c.out);
	ck_assert(strstr(c.out, "libactor: fatal") == NULL);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The watchdog in this process, through its hook
 */

#define REPORTS_KEPT 16

struct reports {
	pthread_mutex_t lock;
	unsigned n;
	actor_watchdog_report_t r[REPORTS_KEPT];
	char names[REPORTS_KEPT][32];
	atomic_int *gate; /* opened at the first report */
};

static void record_report(void *arg, const actor_watchdog_report_t *r)
{
	struct reports *rs = arg;
	pthread_mutex_lock(&rs->lock);
	if (rs->n < REPORTS_KEPT) {
		rs->r[rs->n] = *r;
		snprintf(rs->names[rs->n], sizeof(rs->names[0]), "%s",
		         r->name ? r->name : "(null)");
	}
	rs->n++;
	pthread_mutex_unlock(&rs->lock);
	if (rs->gate != NULL)
		gate_open(rs->gate);
}

struct stuck {
	atomic_int *gate;
	atomic_int in; /* its call has begun */
};

static void stuck_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct stuck *st = state;
	(void)msg;
	atomic_store(&st->in, 1);
	gate_wait(st->gate);
	actor_exit(ctx, ACTOR_REASON_NORMAL);
}

static actor_system_t *watched_system(int watchdog_ms, struct reports *rs)
{
	pthread_mutex_init(&rs->lock, NULL);
	actor_config_t cfg = {.workers = 2,
	                      .watchdog_ms = watchdog_ms,
	                      .watchdog = record_report,
	                      .watchdog_arg = rs};
	return system_new_cfg(&cfg);
}

/* Two systems, each with an actor stuck on the same gate: one with the watchdog, one without.
 * The unwatched call begins first and the first report opens the gate, so both calls last the
 * limit at least, and only the watched one is reported: at least once, named right, each report
 * at the next doubling. */
START_TEST(the_watchdog_reports_a_stuck_call_and_is_silent_when_off)
{
	static atomic_int gate;
	static struct reports on = {.gate = &gate}, off;
	static struct stuck sa = {.gate = &gate}, sb = {.gate = &gate};
	actor_system_t *sys = watched_system(WATCHDOG_MS, &on);
	actor_system_t *quiet = watched_system(-1, &off);
	actor_spawn_opts_t o = {.name = "stuck", .placement = ACTOR_PLACE_FIXED, .worker = 1};
	actor_ref_t a = spawn_ok(sys, &o, stuck_fn, &sa);
	actor_ref_t b = spawn_ok(quiet, &o, stuck_fn, &sb);
	send_ok(quiet, b, 1, NULL, 0);
	assert_eventually(atomic_load(&sb.in), TEST_WATCHDOG);
	send_ok(sys, a, 1, NULL, 0);
	system_run_to_end(sys, TEST_WATCHDOG, "a stuck call, watched");
	system_run_to_end(quiet, TEST_WATCHDOG, "a stuck call, not watched");
	actor_system_free(sys);
	actor_system_free(quiet);

	ck_assert_uint_eq(off.n, 0);
	ck_assert_uint_ge(on.n, 1);
	for (unsigned k = 0; k < on.n && k < REPORTS_KEPT; k++) {
		ck_assert(actor_ref_eq(on.r[k].actor, a));
		ck_assert_str_eq(on.names[k], "stuck");
		ck_assert_uint_eq(on.r[k].worker, 1);
		uint64_t at_least = (uint64_t)WATCHDOG_MS * 1000000u << k;
		ck_assert_msg(on.r[k].running_ns >= at_least,
		              "report %u: %" PRIu64 " ns < %" PRIu64, k, on.r[k].running_ns,
		              at_least);
	}
}
END_TEST

/* The rule, sample by sample: limit 100, times in ns. */
START_TEST(the_watchdog_reports_once_per_doubling_of_one_call)
{
	struct actor__watch s = {.next = 100};
	uint64_t ran = 0;
	ck_assert(!actor__watch_sample(&s, 0, 10, 100, &ran)); /* between calls */
	ck_assert(!actor__watch_sample(&s, 0, 500, 100, &ran));
	ck_assert(!actor__watch_sample(&s, 1, 520, 100, &ran)); /* a call, first seen */
	ck_assert(!actor__watch_sample(&s, 1, 610, 100, &ran)); /* 90: not yet */
	ck_assert(actor__watch_sample(&s, 1, 620, 100, &ran));  /* 100: reported */
	ck_assert_uint_eq(ran, 100);
	ck_assert(!actor__watch_sample(&s, 1, 700, 100, &ran)); /* once */
	ck_assert(actor__watch_sample(&s, 1, 730, 100, &ran));  /* 210: the first doubling */
	ck_assert_uint_eq(ran, 210);
	ck_assert(actor__watch_sample(&s, 1, 1500, 100, &ran)); /* 980: once for 400 and 800 */
	ck_assert_uint_eq(ran, 980);
	ck_assert(!actor__watch_sample(&s, 1, 2100, 100, &ran)); /* 1580 < 1600 */
	ck_assert(!actor__watch_sample(&s, 2, 2200, 100, &ran)); /* it returned */
	ck_assert(!actor__watch_sample(&s, 2, 9000, 100, &ran)); /* idle worker: nothing */
	ck_assert(!actor__watch_sample(&s, 5, 9100, 100, &ran)); /* two calls later: counted anew */
	ck_assert(!actor__watch_sample(&s, 5, 9199, 100, &ran));
	ck_assert(actor__watch_sample(&s, 5, 9200, 100, &ran));
	ck_assert_uint_eq(ran, 100);
	/* Many short calls between samples: never reported, however long the worker is busy. */
	for (uint64_t i = 0, t = 10000; i < 100; i++, t += 1000)
		ck_assert(!actor__watch_sample(&s, 7 + 2 * i, t, 100, &ran));
}
END_TEST

START_TEST(bad_crash_and_watchdog_settings_are_refused)
{
	actor_system_t *sys = NULL;
	ck_assert_int_eq(actor_system_create(&(actor_config_t){.no_crash_report = 2}, &sys),
	                 -EINVAL);
	ck_assert_int_eq(actor_system_create(&(actor_config_t){.no_crash_report = -1}, &sys),
	                 -EINVAL);
	ck_assert_int_eq(actor_system_create(&(actor_config_t){.watchdog_ms = -2}, &sys), -EINVAL);
	ck_assert_int_eq(
	    actor_system_create(&(actor_config_t){.watchdog_ms = ACTOR_WATCHDOG_MS_MAX + 1}, &sys),
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
	suite_add_tcase(s, tc);

	tc = tcase_new("watchdog", TEST_TIMEOUT);
	tcase_add_test(tc, the_watchdog_prints_a_line_for_a_blocked_behaviour);
	tcase_add_test(tc, the_watchdog_reports_a_stuck_call_and_is_silent_when_off);
	tcase_add_test(tc, the_watchdog_reports_once_per_doubling_of_one_call);
	tcase_add_test(tc, bad_crash_and_watchdog_settings_are_refused);
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
