/* file_common.h: what the file suites (test_file.c, test_file_send.c) share: a scratch folder,
 * files of a known pattern, and checks made inside behaviours (noted for the test thread, as
 * backend.h does). Include after common.h and backend.h.
 */
#ifndef TESTS_FILE_COMMON_H
#define TESTS_FILE_COMMON_H

#include <fcntl.h>
#include <sys/stat.h>

static char dir[256];

static inline void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_file.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void remove_dir(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static inline const char *path_in_dir(const char *name)
{
	static _Thread_local char p[300];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* A file of `len` bytes, byte i being (i * 7 + i / 4096) & 0xff. */
static inline unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7 + i / 4096) & 0xff);
}

static inline void make_file(const char *name, size_t len)
{
	int fd = open(path_in_dir(name), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	unsigned char *b = malloc(len + 1);
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++)
		b[i] = pattern(i);
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, b + done, len - done);
		ck_assert_int_gt(n, 0);
		done += (size_t)n;
	}
	free(b);
	close(fd);
}

static inline const actor_file_done_t *file_done(const actor_msg_t *m)
{
	if (m->type != ACTOR_MSG_FILE || m->size != sizeof(actor_file_done_t)) {
		NOTE_FAIL("message %#x of %u bytes where ACTOR_MSG_FILE was expected", m->type,
		          m->size);
		return NULL;
	}
	return actor_msg_data((actor_msg_t *)m);
}

#define EXPECT(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			NOTE_FAIL(__VA_ARGS__);                                                    \
	} while (0)

#define CALL_OK(call)                                                                              \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		EXPECT(rc_ == 0, "%s: %d (%s)", #call, rc_, strerror(-rc_));                       \
	} while (0)

/* A call that must fail with `err` (and so send nothing). */
#define CALL_FAILS(call, err)                                                                      \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		EXPECT(rc_ == (err), "%s: %d (%s), expected %s", #call, rc_, strerror(-rc_),       \
		       #err);                                                                      \
	} while (0)

#endif /* TESTS_FILE_COMMON_H */
