/* deploy/status.c: the drift rules of `constel status` (docs/provenance.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/status.h"

static const char *drift(const struct status_row *r, const char *head)
{
	return status_drift_name(status_drift_of(r, head));
}

static void test_status_drift_rules(void **state)
{
	struct status_row r = {0};
	char cur[] = "/nix/store/aaa-system", other[] = "/nix/store/bbb-system";
	char head[] = "1111", old[] = "0000";

	(void)state;
	assert_string_equal(drift(&r, head), "unreachable");
	r.reachable = true;
	assert_string_equal(drift(&r, head), "unknown"); /* nothing runs */
	r.current = cur;
	assert_string_equal(drift(&r, head), "unknown"); /* never deployed */
	r.expected = cur;
	assert_string_equal(drift(&r, head), "in-sync"); /* runs what HEAD builds */
	r.expected = other;
	r.nrecords = 3;
	assert_string_equal(drift(&r, head), "changed-by-hand"); /* no record names it */
	r.matched = true;
	r.revision = old;
	assert_string_equal(drift(&r, head), "behind");
	r.revision = head;
	assert_string_equal(drift(&r, head), "in-sync");
	/* a dirty build of HEAD is not what HEAD builds once the changes are gone */
	r.dirty = true;
	assert_string_equal(drift(&r, head), "dirty");
	r.expected = NULL; /* --no-eval: HEAD's build unknown, the record says dirty */
	assert_string_equal(drift(&r, head), "dirty");
	r.dirty = false;
	assert_string_equal(drift(&r, head), "in-sync");
	assert_string_equal(drift(&r, NULL), "behind"); /* no repository at hand */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_drift_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
