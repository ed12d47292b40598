/* config.c: chat-server's configuration file (--config), read with inih: `[section]` headers
 * and `key = value` lines, each key one of the settings in options.c, checked by the same
 * setter as its command-line option. README.md has the format.
 *
 * inih tells a handler the section, key and value but not the line; our reader hands it the
 * file one line at a time, so the reader's count is the line the handler is on.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

const bool chat_config_built = true;

struct reading {
	struct chat_options *o;
	const char *path;
	FILE *f;
	int read_errno;   /* the file could be opened but not read (a folder, say) */
	int line;         /* the line the reader gave inih last, counting from 1 */
	bool indented;    /* it starts with a blank: inih takes it for the previous value's next */
	int section_line; /* where the current [section] began */
	int *set_on;      /* per setting: the line that set it, 0 if none */
	int error_line;   /* the first error we found, 0 if none */
	char error[512];
};

/* Keeps the earliest error: that is the one to report. Returns 0, inih's "failed". */
static int fail(struct reading *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct reading *r, int line, const char *fmt, ...)
{
	if (r->error_line != 0 && r->error_line <= line)
		return 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->error_line = line;
	return 0;
}

/* inih's reader, fgets-like: one whole line per call, or an error for a line too long. */
static char *read_line(char *buf, int size, void *stream)
{
	struct reading *r = stream;
	if (fgets(buf, size, r->f) == NULL) {
		if (ferror(r->f))
			r->read_errno = errno;
		return NULL;
	}
	r->line++;
	size_t n = strlen(buf);
	if (n == (size_t)size - 1 && buf[n - 1] != '\n' && !feof(r->f)) {
		int c;
		while ((c = fgetc(r->f)) != EOF && c != '\n')
			;
		fail(r, r->line, "the line is longer than %d characters", size - 2);
		snprintf(buf, (size_t)size, "\n"); /* inih sees a blank line */
	}
	r->indented = buf[0] == ' ' || buf[0] == '\t';
	const char *p = buf + strspn(buf, " \t");
	if (*p == '[')
		r->section_line = r->line;
	return buf;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < chat_nsettings; i++)
		if (chat_settings[i].section != NULL &&
		    strcmp(chat_settings[i].section, section) == 0)
			return true;
	return false;
}

static const struct chat_setting *find(const char *section, const char *key)
{
	for (size_t i = 0; i < chat_nsettings; i++) {
		const struct chat_setting *s = &chat_settings[i];
		if (s->section != NULL && strcmp(s->section, section) == 0 &&
		    strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

/* "bind, port, ...": the keys of a section, for the message about an unknown one. */
static void keys_of(const char *section, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < chat_nsettings && len < cap; i++) {
		const struct chat_setting *s = &chat_settings[i];
		if (s->section != NULL && strcmp(s->section, section) == 0)
			len +=
			    (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", s->key);
	}
}

/* A path in the file is relative to the file's folder. */
static const char *resolve(struct reading *r, const char *value)
{
	const char *slash = strrchr(r->path, '/');
	if (value[0] == '/' || slash == NULL)
		return chat_options_keep(r->o, value);
	char *p = NULL;
	if (asprintf(&p, "%.*s/%s", (int)(slash - r->path), r->path, value) < 0) {
		fprintf(stderr, "chat-server: out of memory\n");
		exit(1);
	}
	const char *kept = chat_options_keep(r->o, p);
	free(p);
	return kept;
}

static int on_value(void *user, const char *section, const char *key, const char *value)
{
	struct reading *r = user;
	if (section[0] == '\0')
		return fail(r, r->line, "'%s' stands before any [section]", key);
	if (!section_known(section))
		return fail(r, r->section_line,
		            "unknown section [%s] (there are [server], [limits], [motd] and [tls])",
		            section);
	const struct chat_setting *s = find(section, key);
	if (s == NULL) {
		char keys[256];
		keys_of(section, keys, sizeof(keys));
		return fail(r, r->line, "unknown key '%s' in [%s] (it has %s)", key, section, keys);
	}
	size_t i = (size_t)(s - chat_settings);
	if (r->indented && !(s->flags & CHAT_SETTING_LIST))
		return fail(r, r->line,
		            "an indented line continues the value of '%s', which takes one value",
		            key);
	if (r->set_on[i] != 0 && !(s->flags & CHAT_SETTING_LIST))
		return fail(r, r->line, "[%s] %s is set twice (first on line %d)", section, key,
		            r->set_on[i]);
	const struct chat_setting *other = s->excludes ? find(section, s->excludes) : NULL;
	if (other != NULL && r->set_on[other - chat_settings] != 0)
		return fail(r, r->line, "[%s] takes %s or %s, not both (%s is on line %d)", section,
		            other->key, key, other->key, r->set_on[other - chat_settings]);
	r->set_on[i] = r->line;

	const char *v = chat_options_keep(r->o, value);
	if ((s->flags & CHAT_SETTING_PATH) && value[0] != '\0') {
		v = resolve(r, value);
		if (access(v, R_OK) != 0)
			return fail(r, r->line, "[%s] %s: cannot read %s: %s", section, key, v,
			            strerror(errno));
	}
	const char *e = s->set(r->o, v);
	if (e != NULL)
		return fail(r, r->line, "[%s] %s: %s", section, key, e);
	return 1;
}

void chat_config_read(struct chat_options *o, const char *path)
{
	struct reading r = {.o = o, .path = path};
	r.f = fopen(path, "r");
	if (r.f == NULL) {
		fprintf(stderr, "chat-server: --config %s: %s\n", path, strerror(errno));
		exit(2);
	}
	r.set_on = calloc(chat_nsettings, sizeof(*r.set_on));
	if (r.set_on == NULL) {
		fprintf(stderr, "chat-server: out of memory\n");
		exit(1);
	}
	int rc = ini_parse_stream(read_line, &r, on_value, &r);
	fclose(r.f);
	free(r.set_on);
	if (r.read_errno != 0) {
		fprintf(stderr, "chat-server: --config %s: %s\n", path, strerror(r.read_errno));
		exit(2);
	}
	if (rc < 0) { /* -2: inih could not allocate its line */
		fprintf(stderr, "chat-server: --config %s: out of memory\n", path);
		exit(1);
	}
	/* inih's own errors (a line that is neither a header nor key = value) are known to us
	 * only by the number it returns: the first line that it or a handler call found wrong. */
	if (rc > 0 && (r.error_line == 0 || rc < r.error_line))
		fail(&r, rc, "expected [section] or key = value");
	if (r.error_line != 0) {
		fprintf(stderr, "chat-server: %s:%d: %s\n", path, r.error_line, r.error);
		exit(2);
	}
}
