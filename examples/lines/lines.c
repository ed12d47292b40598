/* lines.c: counts the lines of a file, read through the files API without blocking the worker.
 *
 * Usage: lines [file]   (default /etc/passwd)
 *
 * Each call (open, read, close) starts one operation and returns at once; its result comes
 * back as an ACTOR_MSG_FILE message. The actor reads the file a block at a time, each read
 * starting where the one before ended, until a read returns 0 bytes: the end of the file.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <actor.h>

enum { MSG_START = 1 };

struct counter {
	const char *path;
	actor_file_t file;
	int64_t offset; /* where the next read starts: the bytes read so far */
	uint64_t lines;
	int error;          /* 0, or why it failed */
	char buf[64 << 10]; /* the kernel reads into it: untouched until each read's answer */
};

static void counter_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct counter *c = state;
	int rc = 0;
	if (msg->type == MSG_START) {
		rc = actor_file_open(ctx, c->path, O_RDONLY, 0, 0);
	} else if (msg->type == ACTOR_MSG_FILE) {
		const actor_file_done_t *d = actor_msg_data(msg);
		if (d->result < 0) {
			rc = (int)d->result; /* -ENOENT from the open, -EISDIR from a read, ... */
		} else if (d->op == ACTOR_FILE_OPEN) {
			c->file = d->file;
			rc = actor_file_read(ctx, c->file, c->buf, sizeof(c->buf), 0, 0);
		} else if (d->op == ACTOR_FILE_READ && d->result > 0) {
			for (int64_t i = 0; i < d->result; i++)
				c->lines += c->buf[i] == '\n';
			c->offset += d->result;
			rc = actor_file_read(ctx, c->file, c->buf, sizeof(c->buf), c->offset, 0);
		} else if (d->op == ACTOR_FILE_READ) { /* 0 bytes: the end of the file */
			rc = actor_file_close(ctx, c->file, 0);
		} else { /* closed */
			actor_exit(ctx, ACTOR_REASON_NORMAL);
		}
	}
	if (rc < 0) {
		c->error = rc;
		actor_exit(ctx, ACTOR_REASON_NORMAL); /* stopping closes its files */
	}
}

int main(int argc, char **argv)
{
	static struct counter c; /* outlives the system, as a buffer the kernel reads into must */
	c.path = argc > 1 ? argv[1] : "/etc/passwd";
	actor_system_t *sys;
	actor_ref_t ref;
	int rc = actor_system_create(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, NULL, counter_fn, &c, &ref);
	if (rc == 0)
		rc = actor_send(sys, ref, MSG_START, NULL, 0);
	if (rc == 0)
		actor_system_run(sys); /* until the counter has stopped */
	actor_system_free(sys);
	if (rc == 0)
		rc = c.error;
	if (rc < 0) {
		fprintf(stderr, "lines: %s: %s\n", c.path, strerror(-rc));
		return 1;
	}
	printf("%s: %" PRIu64 " lines, %" PRId64 " bytes\n", c.path, c.lines, c.offset);
	return 0;
}
