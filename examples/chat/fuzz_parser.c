/* fuzz_parser.c: a libFuzzer target for the chat server's input path. Built and run by
 * tests/chat/fuzz.sh (clang -fsanitize=fuzzer,address,undefined).
 *
 * The first byte picks what the rest feeds:
 *   even: the framer and parser alone, with invariants checked on every line, plus the name
 *         rules, case mapping and mask matching on pieces of the input;
 *   odd:  whole sessions on the in-memory bus of tests/chat/bus.c: the bytes arrive from a
 *         client (registered or not, per bit 1) in a channel with a second client, in chunks
 *         cut where the input says, with the clock moving, so every command handler, the
 *         channel and registry actors and the fan-out see hostile input.
 * Nothing may crash, leak, hang or write a line longer than 512 bytes.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "chat.h"
#include "irc.h"

static void check_parse(const char *line, size_t len)
{
	char buf[IRC_LINE_MAX + 1];
	struct irc_msg m;
	if (len > IRC_LINE_MAX)
		len = IRC_LINE_MAX;
	memcpy(buf, line, len);
	if (irc_parse(buf, len, &m) < 0)
		return;
	assert(m.cmd != NULL && m.cmd[0] != '\0' && m.cmd[0] != ' ');
	assert(m.nparams >= 0 && m.nparams <= IRC_MAX_PARAMS);
	for (int i = 0; i < m.nparams; i++) {
		assert(m.params[i] >= buf && m.params[i] <= buf + len);
		assert(strlen(m.params[i]) <= len);
	}
	/* Names and masks on what the parser produced. */
	for (int i = 0; i < m.nparams; i++) {
		char fold[64];
		irc_valid_nick(m.params[i], IRC_NICKLEN);
		irc_valid_channel(m.params[i], IRC_CHANLEN);
		irc_fold(fold, sizeof(fold), m.params[i]);
		if (irc_casecmp(fold, m.params[i]) != 0 && strlen(m.params[i]) < sizeof(fold))
			abort(); /* folding must not change what a name compares equal to */
		if (i > 0)
			irc_match(m.params[i - 1], m.params[i]);
		char copy[600];
		snprintf(copy, sizeof(copy), "%s", m.params[i]);
		char *cur = copy;
		while (irc_list_next(&cur) != NULL)
			;
	}
	char out[512];
	size_t n = irc_format_line(out, sizeof(out), ":s %s %s", m.cmd,
	                           m.nparams > 0 ? m.params[m.nparams - 1] : "");
	assert(n >= 2 && n <= 512 && out[n - 2] == '\r' && out[n - 1] == '\n');
	assert(memchr(out, '\n', n - 1) == NULL);
}

static void fuzz_parser(const uint8_t *data, size_t size)
{
	struct irc_framer f;
	irc_framer_init(&f, size > 0 && (data[0] & 2) ? 100 : IRC_LINE_DEFAULT, IRC_NOEOL_MAX);
	size_t off = 0;
	while (off < size) {
		size_t used, lo, ll;
		enum irc_frame r =
		    irc_frame_next(&f, (const char *)data + off, size - off, &used, &lo, &ll);
		assert(used <= size - off);
		if (r == IRC_FRAME_LINE) {
			assert(lo + ll <= size - off && ll > 0 && ll <= f.max_line - 2);
			assert(memchr(data + off + lo, '\n', ll) == NULL);
			assert(memchr(data + off + lo, '\r', ll) == NULL);
			check_parse((const char *)data + off + lo, ll);
		}
		if (r == IRC_FRAME_MORE || r == IRC_FRAME_NOEOL) {
			if (used == 0)
				break;
		}
		off += used;
	}
}

/* Every line a client received is at most 512 bytes and ends with CR LF. */
static void check_output(struct bus_client *c)
{
	const char *p = bus_read(c);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		assert(nl != NULL && nl > p && nl[-1] == '\r' && nl - p + 1 <= 512);
		p = nl + 1;
	}
}

static void fuzz_sessions(const uint8_t *data, size_t size)
{
	struct bus *b = bus_new(3);
	bus_srv(b)->flood_rate = (data[0] & 4) ? 5 : 0;
	bus_srv(b)->flood_burst = 4;
	bus_srv(b)->sendq = (data[0] & 8) ? 2048 : 1u << 20;
	struct bus_client *peer = bus_client_new(b, 1, "peer");
	bus_sendf(peer, "JOIN #chan,#other\r\nTOPIC #chan :t\r\n");
	struct bus_client *c;
	if (data[0] & 2) {
		c = bus_client_new(b, 0, "fuzz");
		bus_sendf(c, "JOIN #chan\r\n");
	} else {
		c = bus_connect(b, 2, "10.0.0.1", false);
	}
	check_output(peer);
	check_output(c);
	/* Chunks: a byte below 8 ends a chunk (and is sent), the clock moves between chunks. */
	size_t start = 1;
	for (size_t i = 1; i < size; i++) {
		if (data[i] < 8 || i + 1 == size) {
			bus_send(c, (const char *)data + start, i + 1 - start);
			bus_advance_ms(b, (uint64_t)data[i] * 300);
			start = i + 1;
			check_output(c);
			check_output(peer);
		}
	}
	bus_sendf(peer, "PRIVMSG #chan :bye\r\nNAMES #chan\r\nLIST\r\n");
	bus_hangup(c, 0);
	check_output(peer);
	bus_shutdown(b);
	bus_advance_ms(b, CHAT_LINGER_MS + 1);
	bus_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_sessions(data, size);
	else
		fuzz_parser(data, size);
	return 0;
}
