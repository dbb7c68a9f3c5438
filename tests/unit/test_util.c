/* common/util.c: the pieces everyone leans on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_xstrndup_stops_at_the_end_of_the_string),
		cmocka_unit_test(test_util_buf_never_grows_past_its_max),
		cmocka_unit_test(test_util_buf_tail_lines),
		cmocka_unit_test(test_util_parse_long_is_strict),
		cmocka_unit_test(test_util_shell_quote_survives_quotes),
		cmocka_unit_test(test_util_json_string_escapes_what_json_requires),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
