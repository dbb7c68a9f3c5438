/* common/util.c: the pieces everyone leans on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"

static void test_util_xstrndup_stops_at_the_end_of_the_string(void **state)
{
	/* a 5-byte allocation: reading 32 bytes of it would be an overflow (ASan) */
	char *src = xstrdup("TERM");
	char *a = xstrndup(src, 32), *b = xstrndup("abcdef", 3);

	(void)state;
	assert_string_equal(a, "TERM");
	assert_string_equal(b, "abc");
	free(src);
	free(a);
	free(b);
}

static void test_util_buf_never_grows_past_its_max(void **state)
{
	struct buf b = BUF_INIT(8);

	(void)state;
	buf_adds(&b, "12345");
	assert_false(b.truncated);
	buf_adds(&b, "67890");
	assert_int_equal(b.len, 8);
	assert_true(b.truncated);
	assert_string_equal(b.data, "12345678");
	buf_release(&b);
}

static void test_util_buf_tail_lines(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	assert_string_equal(buf_tail_lines(&b, 3), "");
	buf_adds(&b, "one\ntwo\nthree\n");
	assert_string_equal(buf_tail_lines(&b, 1), "three\n");
	assert_string_equal(buf_tail_lines(&b, 2), "two\nthree\n");
	assert_string_equal(buf_tail_lines(&b, 9), "one\ntwo\nthree\n");
	buf_release(&b);
}

static void test_util_parse_long_is_strict(void **state)
{
	long v = 0;

	(void)state;
	assert_int_equal(parse_long("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_long("101", 0, 100, &v), -1);
	assert_int_equal(parse_long("4x", 0, 100, &v), -1);
	assert_int_equal(parse_long("", 0, 100, &v), -1);
	assert_int_equal(parse_long("99999999999999999999999", 0, 100, &v), -1);
}

static void test_util_shell_quote_survives_quotes(void **state)
{
	char *q = shell_quote("it's; rm -rf /");

	(void)state;
	assert_string_equal(q, "'it'\\''s; rm -rf /'");
	free(q);
}

/* What buf_add_json_string writes, jansson reads back as the same string. */
static void assert_json_round_trip(const char *s)
{
	struct buf b = BUF_INIT(0);
	json_error_t err;
	json_t *v;

	buf_add_json_string(&b, s);
	v = json_loads(b.data, JSON_DECODE_ANY, &err);
	assert_non_null(v);
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), s);
	json_decref(v);
	buf_release(&b);
}

static void test_util_json_string_escapes_what_json_requires(void **state)
{
	char all[128];
	struct buf b = BUF_INIT(0);

	(void)state;
	for (int c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	all[127] = '\0';
	assert_json_round_trip(all);
	assert_json_round_trip("");
	assert_json_round_trip("galactica");
	assert_json_round_trip("caf\xc3\xa9 \xe2\x86\x92 \"quoted\" back\\slash");
	buf_add_json_string(&b, "a\"b\\c\nd\x01");
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\u0001\"");
	buf_release(&b);
}

static void test_util_sanitize_escapes_controls_and_bad_utf8(void **state)
{
	char *s;

	(void)state;
	s = text_sanitize("ok\tline\nnext \xc3\xa9 \xe2\x86\x92");
	assert_string_equal(s, "ok\tline\nnext \xc3\xa9 \xe2\x86\x92");
	free(s);
	s = text_sanitize("\x1b[2J\x1b]0;t\x07 \r\x7f");
	assert_string_equal(s, "\\x1b[2J\\x1b]0;t\\x07 \\x0d\\x7f");
	free(s);
	/* invalid UTF-8: lone continuation, overlong, surrogate, truncated, 0xff */
	s = text_sanitize("\x80 \xc0\xaf \xed\xa0\x80 \xe2\x86 \xff");
	assert_string_equal(s, "\\x80 \\xc0\\xaf \\xed\\xa0\\x80 \\xe2\\x86 \\xff");
	free(s);
	assert_null(text_sanitize(NULL));
}

static void test_util_private_dirs_and_files(void **state)
{
	char tmpl[] = "/tmp/constel-test-util.XXXXXX", *d = mkdtemp(tmpl), *p;
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(d);
	p = xasprintf("%s/a/b/c", d);
	assert_int_equal(dir_make_private(p), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(p);
	/* a group- or world-writable directory of ours is made private */
	p = xasprintf("%s/open", d);
	assert_int_equal(mkdir(p, 0777), 0);
	assert_int_equal(chmod(p, 0777), 0);
	assert_int_equal(dir_make_private(p), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	free(p);
	/* a symlink is refused, and so is a directory of another user */
	p = xasprintf("%s/link", d);
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(dir_make_private(p), -1);
	assert_non_null(strstr(error_last(), "not a directory"));
	free(p);
	p = xasprintf("%s/theirs", d);
	assert_int_equal(mkdir(p, 0755), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(dir_make_private(p), -1);
		assert_non_null(strstr(error_last(), "belongs to uid 65534"));
	}
	free(p);
	/* files: 0600, never through a symlink */
	p = xasprintf("%s/a/log", d);
	f = file_open_private(p, true);
	assert_non_null(f);
	fclose(f);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(p);
	p = xasprintf("%s/a/evil", d);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_null(file_open_private(p, true));
	assert_null(file_open_private(p, false));
	free(p);
	p = xasprintf("rm -rf '%s'", d);
	assert_int_equal(system(p), 0);
	free(p);
}

static void test_util_state_dir_never_tmp(void **state)
{
	char *home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL, *d;

	(void)state;
	setenv("XDG_STATE_HOME", "/srv/state", 1);
	d = state_dir();
	assert_string_equal(d, "/srv/state/constel");
	free(d);
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/x", 1);
	d = state_dir();
	assert_string_equal(d, "/home/x/.local/state/constel");
	free(d);
	/* no HOME (cron, services): the password database, not /tmp */
	unsetenv("HOME");
	d = state_dir();
	assert_non_null(d);
	assert_null(strstr(d, "/tmp"));
	free(d);
	if (home)
		setenv("HOME", home, 1);
	free(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_xstrndup_stops_at_the_end_of_the_string),
		cmocka_unit_test(test_util_buf_never_grows_past_its_max),
		cmocka_unit_test(test_util_buf_tail_lines),
		cmocka_unit_test(test_util_parse_long_is_strict),
		cmocka_unit_test(test_util_shell_quote_survives_quotes),
		cmocka_unit_test(test_util_json_string_escapes_what_json_requires),
		cmocka_unit_test(test_util_sanitize_escapes_controls_and_bad_utf8),
		cmocka_unit_test(test_util_private_dirs_and_files),
		cmocka_unit_test(test_util_state_dir_never_tmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
