/* fcopy.c: copies a file through the files API, with a few blocks in flight.
 *
 * Usage: fcopy SRC DST
 *
 * Every open, read, write, sync and close starts an operation and returns at once; its answer
 * comes back to the actor as an ACTOR_MSG_FILE message, so the worker never waits on the disk.
 * DEPTH buffers of BLOCK bytes go round: each reads the next block, writes it to the same
 * offset of DST, then reads the next one, until a read comes back short (the end of SRC). DST
 * is created with SRC's permission bits (less the umask) or truncated, then synced and closed.
 * SRC and DST must not be the same file (truncating DST would empty SRC).
 *
 * Exit status: 0 once DST is on disk; 1 with a message naming the file and the error; 2 for
 * bad arguments. A copy that fails part-way leaves DST as far as it got, as cp does.
 */
#define _GNU_SOURCE 1 /* O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <actor.h>

/* 1 MiB blocks, 4 in flight: at depth 2 to 4 bench/file_seq reads as fast as a plain read()
 * loop on both backends (bench/README.md, "Files"), and 4 MiB of buffers is little. */
#define BLOCK (1u << 20)
#define DEPTH 4

enum { MSG_START = 1 };

/* Tags of the steps before and after the copy; a block's reads and writes carry its slot
 * (0 to DEPTH - 1). */
enum {
	OPEN_SRC = DEPTH,
	STAT_SRC,
	PROBE_DST,  /* is DST there already, and is it SRC? */
	STAT_PROBE, /* ... its device and inode */
	CLOSE_PROBE,
	OPEN_DST,
	SYNC_DST,
	CLOSE_DST,
	CLOSE_SRC,
};

struct copy {
	const char *src, *dst;
	actor_file_t in, out, probe;
	dev_t dev; /* SRC's device and inode, to tell whether DST is SRC */
	ino_t ino;
	unsigned mode;
	unsigned char *buf[DEPTH]; /* main's: they outlive the actor (see actor_file_read) */
	int64_t at[DEPTH];         /* the offset of the block in each buffer */
	int64_t len[DEPTH];        /* and its length, once read */
	int64_t next;              /* the offset of the next block to read */
	unsigned busy;             /* buffers with a read or a write in flight */
	bool eof;                  /* a read came back short: nothing more to read */
	/* The failure: what was being done, to which file, and why. */
	const char *what, *path;
	int error;
};

static void fail(actor_ctx_t *ctx, struct copy *c, const char *what, const char *path, int error)
{
	c->what = what;
	c->path = path;
	c->error = error;
	/* Stopping closes the files; operations still in flight finish and their answers are
	 * dropped (the buffers are main's, so they stay valid). */
	actor_exit(ctx, 1);
}

/* Starts the read of the next block into buffer `slot`. */
static int read_next(actor_ctx_t *ctx, struct copy *c, unsigned slot)
{
	c->at[slot] = c->next;
	c->next += BLOCK;
	return actor_file_read(ctx, c->in, c->buf[slot], BLOCK, c->at[slot], slot);
}

static void start_copy(actor_ctx_t *ctx, struct copy *c)
{
	for (unsigned slot = 0; slot < DEPTH; slot++) {
		int rc = read_next(ctx, c, slot);
		if (rc < 0) {
			fail(ctx, c, "cannot read", c->src, rc);
			return;
		}
		c->busy++;
	}
}

/* A block's read or write has come back. */
static void on_block(actor_ctx_t *ctx, struct copy *c, const actor_file_done_t *d)
{
	unsigned slot = (unsigned)d->tag;
	int rc = 0;
	if (d->op == ACTOR_FILE_READ) {
		if (d->result < 0) {
			fail(ctx, c, "cannot read", c->src, (int)d->result);
			return;
		}
		if (d->result < (int64_t)BLOCK)
			c->eof = true; /* the reads beyond this one come back empty */
		if (d->result > 0) {
			c->len[slot] = d->result;
			rc = actor_file_write(ctx, c->out, c->buf[slot], (size_t)d->result,
			                      c->at[slot], slot);
			if (rc < 0)
				fail(ctx, c, "cannot write", c->dst, rc);
			return;
		}
	} else {
		/* A write is whole unless the disk filled up. */
		if (d->result != c->len[slot]) {
			fail(ctx, c, "cannot write", c->dst,
			     d->result < 0 ? (int)d->result : -ENOSPC);
			return;
		}
		if (!c->eof) {
			rc = read_next(ctx, c, slot);
			if (rc < 0)
				fail(ctx, c, "cannot read", c->src, rc);
			return;
		}
	}
	if (--c->busy == 0) { /* everything is written: make it durable */
		rc = actor_file_sync(ctx, c->out, 0, SYNC_DST);
		if (rc < 0)
			fail(ctx, c, "cannot sync", c->dst, rc);
	}
}

/* The steps around the copy, each started by the answer to the one before. */
static int on_step(actor_ctx_t *ctx, struct copy *c, const actor_file_done_t *d)
{
	switch (d->tag) {
	case OPEN_SRC:
		c->in = d->file;
		return actor_file_stat(ctx, c->in, STAT_SRC);
	case STAT_SRC:
		if (S_ISDIR(d->st.st_mode))
			return -EISDIR;
		c->dev = d->st.st_dev;
		c->ino = d->st.st_ino;
		c->mode = d->st.st_mode & 0777;
		/* O_PATH opens without reading or writing: enough to ask fstat who DST is. */
		return actor_file_open(ctx, c->dst, O_PATH, 0, PROBE_DST);
	case PROBE_DST:
		c->probe = d->file;
		return actor_file_stat(ctx, c->probe, STAT_PROBE);
	case STAT_PROBE:
		if (d->st.st_dev == c->dev && d->st.st_ino == c->ino)
			return -EEXIST; /* reported as "the same file" */
		return actor_file_close(ctx, c->probe, CLOSE_PROBE);
	case CLOSE_PROBE:
		return actor_file_open(ctx, c->dst, O_WRONLY | O_CREAT | O_TRUNC, c->mode,
		                       OPEN_DST);
	case OPEN_DST:
		c->out = d->file;
		start_copy(ctx, c);
		return 0;
	case SYNC_DST:
		return actor_file_close(ctx, c->out, CLOSE_DST);
	case CLOSE_DST:
		return actor_file_close(ctx, c->in, CLOSE_SRC);
	default: /* CLOSE_SRC: done */
		actor_exit(ctx, 0);
		return 0;
	}
}

/* A step failed: says what it was doing, and to which file. */
static void fail_step(actor_ctx_t *ctx, struct copy *c, uint64_t step, int error)
{
	switch (step) {
	case OPEN_SRC:
		fail(ctx, c, "cannot open", c->src, error);
		break;
	case STAT_SRC:
		fail(ctx, c, "cannot read", c->src, error);
		break;
	case CLOSE_SRC:
		fail(ctx, c, "cannot close", c->src, error);
		break;
	case STAT_PROBE:
		if (error == -EEXIST)
			fail(ctx, c, "is the same file as", c->src, 0);
		else
			fail(ctx, c, "cannot create", c->dst, error);
		break;
	case SYNC_DST:
		fail(ctx, c, "cannot sync", c->dst, error);
		break;
	case CLOSE_DST:
		fail(ctx, c, "cannot close", c->dst, error);
		break;
	default: /* PROBE_DST, CLOSE_PROBE, OPEN_DST */
		fail(ctx, c, "cannot create", c->dst, error);
	}
}

static void copy_fn(actor_ctx_t *ctx, void *state, actor_msg_t *msg)
{
	struct copy *c = state;
	if (msg->type == MSG_START) {
		int rc = actor_file_open(ctx, c->src, O_RDONLY, 0, OPEN_SRC);
		if (rc < 0)
			fail(ctx, c, "cannot open", c->src, rc);
		return;
	}
	if (msg->type != ACTOR_MSG_FILE)
		return;
	const actor_file_done_t *d = actor_msg_data(msg);
	if (d->tag < DEPTH) {
		on_block(ctx, c, d);
		return;
	}
	int rc = (int)d->result;
	if (d->tag == PROBE_DST && rc == -ENOENT) /* no DST yet: nothing to compare */
		rc = actor_file_open(ctx, c->dst, O_WRONLY | O_CREAT | O_TRUNC, c->mode, OPEN_DST);
	else if (rc == 0)
		rc = on_step(ctx, c, d);
	if (rc < 0)
		fail_step(ctx, c, d->tag, rc);
}

int main(int argc, char **argv)
{
	if (argc != 3 || argv[1][0] == '\0' || argv[2][0] == '\0') {
		fprintf(stderr, "usage: fcopy SRC DST\n");
		return 2;
	}
	struct copy c = {.src = argv[1], .dst = argv[2]};
	for (unsigned i = 0; i < DEPTH; i++) {
		c.buf[i] = malloc(BLOCK);
		if (c.buf[i] == NULL) {
			fprintf(stderr, "fcopy: %s\n", strerror(ENOMEM));
			return 1;
		}
	}
	actor_config_t cfg = {.workers = 1}; /* one actor: one worker is plenty */
	actor_system_t *sys;
	actor_ref_t ref;
	int rc = actor_system_create(&cfg, &sys);
	if (rc < 0) {
		fprintf(stderr, "fcopy: actor_system_create: %s\n", strerror(-rc));
		return 1;
	}
	rc = actor_spawn(sys, NULL, copy_fn, &c, &ref);
	if (rc == 0)
		rc = actor_send(sys, ref, MSG_START, NULL, 0);
	if (rc == 0)
		actor_system_run(sys); /* until the copy has stopped, done or failed */
	actor_system_free(sys);
	for (unsigned i = 0; i < DEPTH; i++)
		free(c.buf[i]);
	if (rc < 0) {
		fprintf(stderr, "fcopy: %s\n", strerror(-rc));
		return 1;
	}
	if (c.what != NULL) {
		if (c.error == 0)
			fprintf(stderr, "fcopy: '%s' %s '%s'\n", c.dst, c.what, c.path);
		else
			fprintf(stderr, "fcopy: %s '%s': %s\n", c.what, c.path, strerror(-c.error));
		return 1;
	}
	return 0;
}
