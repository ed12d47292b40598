/* test_chat_irc.c: the IRC wire format of the chat example: framing bytes into lines, parsing
 * lines into messages, the rfc1459 case mapping, nick and channel rules, masks, and output
 * lines that never exceed 512 bytes.
 */
#include "../common.h"

#include "irc.h"

/* Parses a copy of `text` into m; the copy lives in buf. */
static int parse(char *buf, size_t cap, const char *text, struct irc_msg *m)
{
	size_t len = strlen(text);
	ck_assert_uint_lt(len, cap);
	memcpy(buf, text, len + 1);
	return irc_parse(buf, len, m);
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 */

START_TEST(parse_splits_prefix_command_and_params)
{
	char buf[512];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), ":nick!u@h PRIVMSG #chan :hello there", &m), 0);
	ck_assert_str_eq(m.prefix, "nick!u@h");
	ck_assert_str_eq(m.cmd, "PRIVMSG");
	ck_assert_int_eq(m.nparams, 2);
	ck_assert_str_eq(m.params[0], "#chan");
	ck_assert_str_eq(m.params[1], "hello there");
}
END_TEST

START_TEST(parse_uppercases_the_command_and_skips_tags)
{
	char buf[512];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), "@time=x;a=b :p privmsg a b", &m), 0);
	ck_assert_str_eq(m.tags, "time=x;a=b");
	ck_assert_str_eq(m.cmd, "PRIVMSG");
	ck_assert_int_eq(m.nparams, 2);
	ck_assert_str_eq(m.params[1], "b");
}
END_TEST

START_TEST(parse_keeps_an_empty_trailing_parameter)
{
	char buf[512];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), "TOPIC #a :", &m), 0);
	ck_assert_int_eq(m.nparams, 2);
	ck_assert_str_eq(m.params[1], "");
}
END_TEST

START_TEST(parse_tolerates_repeated_and_trailing_spaces)
{
	char buf[512];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), "  NICK    bob   ", &m), 0);
	ck_assert_str_eq(m.cmd, "NICK");
	ck_assert_int_eq(m.nparams, 1);
	ck_assert_str_eq(m.params[0], "bob");
}
END_TEST

START_TEST(parse_rejects_lines_without_a_command)
{
	char buf[512];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), "", &m), -EINVAL);
	ck_assert_int_eq(parse(buf, sizeof(buf), "   ", &m), -EINVAL);
	ck_assert_int_eq(parse(buf, sizeof(buf), ":prefix.only", &m), -EINVAL);
	ck_assert_int_eq(parse(buf, sizeof(buf), "@tags :prefix ", &m), -EINVAL);
}
END_TEST

START_TEST(parse_gives_the_fifteenth_parameter_the_rest_of_the_line)
{
	char buf[512];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", &m),
	                 0);
	ck_assert_int_eq(m.nparams, IRC_MAX_PARAMS);
	ck_assert_str_eq(m.params[13], "14");
	ck_assert_str_eq(m.params[14], "15 16 17");
}
END_TEST

START_TEST(parse_drops_nul_bytes)
{
	char buf[64] = "PRI\0VMSG #a :h\0i";
	struct irc_msg m;
	ck_assert_int_eq(irc_parse(buf, 16, &m), 0);
	ck_assert_str_eq(m.cmd, "PRIVMSG");
	ck_assert_str_eq(m.params[1], "hi");
}
END_TEST

START_TEST(parse_survives_bytes_that_are_not_utf8)
{
	char buf[64];
	struct irc_msg m;
	ck_assert_int_eq(parse(buf, sizeof(buf), "PRIVMSG #a :\xff\xfe\xc3(", &m), 0);
	ck_assert_str_eq(m.params[1], "\xff\xfe\xc3(");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Framing
 */

/* Frames all of `in` and joins the lines with '|', TOOLONG as '!', NOEOL as '#'. */
static void frame_all(struct irc_framer *f, const char *in, size_t len, char *out, size_t cap)
{
	size_t off = 0, n = 0;
	out[0] = '\0';
	while (off < len) {
		size_t used, lo, ll;
		enum irc_frame r = irc_frame_next(f, in + off, len - off, &used, &lo, &ll);
		if (r == IRC_FRAME_LINE)
			n += (size_t)snprintf(out + n, cap - n, "%.*s|", (int)ll, in + off + lo);
		else if (r == IRC_FRAME_TOOLONG)
			n += (size_t)snprintf(out + n, cap - n, "!");
		else if (r == IRC_FRAME_NOEOL)
			n += (size_t)snprintf(out + n, cap - n, "#");
		off += used;
		if (r == IRC_FRAME_MORE || r == IRC_FRAME_NOEOL)
			break;
	}
}

START_TEST(frame_ends_lines_at_crlf_lf_and_lone_cr)
{
	struct irc_framer f;
	char out[256];
	irc_framer_init(&f, 512, IRC_NOEOL_MAX);
	const char in[] = "A\r\nB\nC\rD\r\n\r\n\nE\n";
	frame_all(&f, in, sizeof(in) - 1, out, sizeof(out));
	ck_assert_str_eq(out, "A|B|C|D|E|");
}
END_TEST

START_TEST(frame_keeps_an_incomplete_line_for_later)
{
	struct irc_framer f;
	irc_framer_init(&f, 512, IRC_NOEOL_MAX);
	size_t used, lo, ll;
	ck_assert_int_eq(irc_frame_next(&f, "NICK a\r\nUSER", 12, &used, &lo, &ll), IRC_FRAME_LINE);
	ck_assert_uint_eq(used, 8);
	ck_assert_int_eq(irc_frame_next(&f, "USER", 4, &used, &lo, &ll), IRC_FRAME_MORE);
	ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(frame_takes_a_cr_lf_split_across_reads_as_one_end)
{
	struct irc_framer f;
	irc_framer_init(&f, 512, IRC_NOEOL_MAX);
	size_t used, lo, ll;
	ck_assert_int_eq(irc_frame_next(&f, "A\r", 2, &used, &lo, &ll), IRC_FRAME_LINE);
	ck_assert_uint_eq(used, 2);
	ck_assert_int_eq(irc_frame_next(&f, "\nB\n", 3, &used, &lo, &ll), IRC_FRAME_LINE);
	ck_assert_uint_eq(lo, 1);
	ck_assert_uint_eq(ll, 1);
}
END_TEST

START_TEST(frame_accepts_512_bytes_with_crlf_and_rejects_513)
{
	struct irc_framer f;
	char in[600], out[1400];
	irc_framer_init(&f, 512, IRC_NOEOL_MAX);
	memset(in, 'x', 510);
	memcpy(in + 510, "\r\n", 2);
	frame_all(&f, in, 512, out, sizeof(out));
	ck_assert_uint_eq(strlen(out), 511); /* 510 x and '|' */

	memset(in, 'x', 511);
	memcpy(in + 511, "\r\nOK\r\n", 6);
	frame_all(&f, in, 517, out, sizeof(out));
	ck_assert_str_eq(out, "!OK|");
}
END_TEST

START_TEST(frame_drops_an_overlong_line_that_arrives_in_pieces)
{
	struct irc_framer f;
	char big[2000];
	size_t used, lo, ll;
	irc_framer_init(&f, 512, IRC_NOEOL_MAX);
	memset(big, 'y', sizeof(big));
	ck_assert_int_eq(irc_frame_next(&f, big, 600, &used, &lo, &ll), IRC_FRAME_TOOLONG);
	ck_assert_int_eq(irc_frame_next(&f, big, 600, &used, &lo, &ll), IRC_FRAME_MORE);
	ck_assert_uint_eq(used, 600);
	ck_assert_int_eq(irc_frame_next(&f, big, 1000, &used, &lo, &ll), IRC_FRAME_MORE);
	ck_assert_int_eq(irc_frame_next(&f, "yy\nPING x\n", 10, &used, &lo, &ll), IRC_FRAME_LINE);
	ck_assert_uint_eq(lo, 3);
	ck_assert_uint_eq(ll, 6);
}
END_TEST

START_TEST(frame_gives_up_after_16k_without_a_line_end)
{
	struct irc_framer f;
	static char big[4096];
	size_t used, lo, ll, total = 0;
	enum irc_frame r = IRC_FRAME_MORE;
	irc_framer_init(&f, 512, IRC_NOEOL_MAX);
	memset(big, 'z', sizeof(big));
	while (total < 20000) {
		r = irc_frame_next(&f, big, sizeof(big), &used, &lo, &ll);
		if (r == IRC_FRAME_NOEOL)
			break;
		total += used;
	}
	ck_assert_int_eq(r, IRC_FRAME_NOEOL);
	ck_assert_uint_le(total, IRC_NOEOL_MAX);
}
END_TEST

START_TEST(frame_honours_a_configured_line_length)
{
	struct irc_framer f;
	char in[300], out[600];
	irc_framer_init(&f, 100, IRC_NOEOL_MAX);
	memset(in, 'q', 99);
	in[99] = '\n';
	frame_all(&f, in, 100, out, sizeof(out));
	ck_assert_str_eq(out, "!");
	memset(in, 'q', 98);
	in[98] = '\n';
	frame_all(&f, in, 99, out, sizeof(out));
	ck_assert_uint_eq(strlen(out), 99);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Names and masks
 */

START_TEST(case_mapping_is_rfc1459)
{
	char buf[32];
	irc_fold(buf, sizeof(buf), "ABC[]\\~xyz^{}|");
	ck_assert_str_eq(buf, "abc{}|^xyz^{}|");
	ck_assert_int_eq(irc_casecmp("Nick[1]", "nick{1}"), 0);
	ck_assert_int_eq(irc_casecmp("a~", "A^"), 0);
	ck_assert_int_ne(irc_casecmp("nick", "nick2"), 0);
	ck_assert_uint_eq(irc_hash("#Chan[x]"), irc_hash("#chan{X}"));
}
END_TEST

START_TEST(nick_rules_follow_rfc2812)
{
	ck_assert(irc_valid_nick("alice", IRC_NICKLEN));
	ck_assert(irc_valid_nick("[bot]-7", IRC_NICKLEN));
	ck_assert(irc_valid_nick("a`b^c_{d}|", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("9lives", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("-dash", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("has space", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("#chan", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("a:b", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("\xc3\xa9t\xc3\xa9", IRC_NICKLEN));
	ck_assert(irc_valid_nick("abcdefghijklmnopqrstuvwxyz1234", IRC_NICKLEN));
	ck_assert(!irc_valid_nick("abcdefghijklmnopqrstuvwxyz12345", IRC_NICKLEN));
}
END_TEST

START_TEST(channel_rules_follow_rfc2812)
{
	ck_assert(irc_valid_channel("#a", IRC_CHANLEN));
	ck_assert(irc_valid_channel("#caf\xc3\xa9-\xff", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("#", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("a", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("&local", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("#a,b", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("#a b", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("#a:b", IRC_CHANLEN));
	ck_assert(!irc_valid_channel("#a\ab", IRC_CHANLEN));
	char name[60];
	memset(name, 'c', sizeof(name));
	name[0] = '#';
	name[IRC_CHANLEN] = '\0';
	ck_assert(irc_valid_channel(name, IRC_CHANLEN));
	name[IRC_CHANLEN] = 'c';
	name[IRC_CHANLEN + 1] = '\0';
	ck_assert(!irc_valid_channel(name, IRC_CHANLEN));
}
END_TEST

START_TEST(masks_match_with_stars_and_question_marks_under_the_case_mapping)
{
	ck_assert(irc_match("*!*@*", "nick!~u@127.0.0.1"));
	ck_assert(irc_match("Nick[x]!*@*", "nick{X}!~u@h"));
	ck_assert(irc_match("n?ck!*", "nick!u@h"));
	ck_assert(irc_match("*@10.0.*", "a!b@10.0.0.1"));
	ck_assert(!irc_match("*@10.0.*", "a!b@10.1.0.1"));
	ck_assert(!irc_match("abc", "abcd"));
	ck_assert(irc_match("a*b*c*d*e*f*g", "aXbXcXdXeXfXg"));
	ck_assert(!irc_match("a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}
END_TEST

START_TEST(comma_lists_skip_empty_items)
{
	char buf[] = ",#a,,#b,";
	char *cur = buf;
	ck_assert_str_eq(irc_list_next(&cur), "#a");
	ck_assert_str_eq(irc_list_next(&cur), "#b");
	ck_assert_ptr_null(irc_list_next(&cur));
	ck_assert_ptr_null(irc_list_next(&cur));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Output
 */

START_TEST(output_lines_are_cut_to_512_bytes_with_crlf)
{
	struct irc_buf b;
	char big[1000];
	irc_buf_init(&b);
	memset(big, 'w', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	irc_buf_linef(&b, ":srv PRIVMSG #a :%s", big);
	ck_assert_uint_eq(b.len, 512);
	ck_assert_int_eq(b.data[510], '\r');
	ck_assert_int_eq(b.data[511], '\n');
	irc_buf_free(&b);
}
END_TEST

/* A cut at 510 bytes never splits a UTF-8 sequence: every offset of a 4-byte emoji. */
START_TEST(output_lines_are_cut_between_utf8_sequences)
{
	for (int pad = 0; pad < 4; pad++) {
		char big[1000];
		size_t n = 0;
		memset(big, 'p', (size_t)pad);
		n = (size_t)pad;
		while (n + 4 < sizeof(big)) {
			memcpy(big + n, "\xf0\x9f\x98\x83", 4);
			n += 4;
		}
		big[n] = '\0';
		char line[512];
		size_t len = irc_format_line(line, sizeof(line), ":srv PRIVMSG #a :%s", big);
		ck_assert_uint_le(len, 512);
		ck_assert_uint_ge(len, 509);
		ck_assert(irc_valid_utf8(line, len));
		ck_assert_int_eq(line[len - 2], '\r');
		struct irc_buf b;
		irc_buf_init(&b);
		irc_buf_linef(&b, ":srv PRIVMSG #a :%s", big);
		ck_assert_uint_eq(b.len, len);
		ck_assert(irc_valid_utf8(b.data, b.len));
		irc_buf_free(&b);
		len = irc_format_line(line, 100, ":srv PRIVMSG #a :%s", big); /* a smaller cap */
		ck_assert(len <= 100 && len >= 97 && irc_valid_utf8(line, len));
	}
}
END_TEST

START_TEST(output_lines_never_carry_a_line_end_inside)
{
	char line[64];
	size_t n = irc_format_line(line, sizeof(line), "a%sb", "\r\nQUIT :x\n");
	ck_assert_uint_eq(n, 14);
	ck_assert_ptr_null(memchr(line, '\n', n - 1));
	ck_assert_ptr_null(memchr(line, '\r', n - 2));
	n = irc_format_line(line, 8, "%s", "abcdefghijkl");
	ck_assert_uint_eq(n, 8);
	ck_assert_int_eq(memcmp(line, "abcdef\r\n", 8), 0);
}
END_TEST

static Suite *irc_suite(void)
{
	Suite *s = suite_create("chat_irc");
	TCase *tc = tcase_new("parse", TEST_TIMEOUT);
	tcase_add_test(tc, parse_splits_prefix_command_and_params);
	tcase_add_test(tc, parse_uppercases_the_command_and_skips_tags);
	tcase_add_test(tc, parse_keeps_an_empty_trailing_parameter);
	tcase_add_test(tc, parse_tolerates_repeated_and_trailing_spaces);
	tcase_add_test(tc, parse_rejects_lines_without_a_command);
	tcase_add_test(tc, parse_gives_the_fifteenth_parameter_the_rest_of_the_line);
	tcase_add_test(tc, parse_drops_nul_bytes);
	tcase_add_test(tc, parse_survives_bytes_that_are_not_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_new("frame", TEST_TIMEOUT);
	tcase_add_test(tc, frame_ends_lines_at_crlf_lf_and_lone_cr);
	tcase_add_test(tc, frame_keeps_an_incomplete_line_for_later);
	tcase_add_test(tc, frame_takes_a_cr_lf_split_across_reads_as_one_end);
	tcase_add_test(tc, frame_accepts_512_bytes_with_crlf_and_rejects_513);
	tcase_add_test(tc, frame_drops_an_overlong_line_that_arrives_in_pieces);
	tcase_add_test(tc, frame_gives_up_after_16k_without_a_line_end);
	tcase_add_test(tc, frame_honours_a_configured_line_length);
	suite_add_tcase(s, tc);

	tc = tcase_new("names", TEST_TIMEOUT);
	tcase_add_test(tc, case_mapping_is_rfc1459);
	tcase_add_test(tc, nick_rules_follow_rfc2812);
	tcase_add_test(tc, channel_rules_follow_rfc2812);
	tcase_add_test(tc, masks_match_with_stars_and_question_marks_under_the_case_mapping);
	tcase_add_test(tc, comma_lists_skip_empty_items);
	suite_add_tcase(s, tc);

	tc = tcase_new("output", TEST_TIMEOUT);
	tcase_add_test(tc, output_lines_are_cut_to_512_bytes_with_crlf);
	tcase_add_test(tc, output_lines_are_cut_between_utf8_sequences);
	tcase_add_test(tc, output_lines_never_carry_a_line_end_inside);
	suite_add_tcase(s, tc);
	return s;
}

TEST_MAIN(irc_suite)
