/* deploy/health.c: the verdicts of the health gate on a host's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/health.h"

static void test_health_new_failures_are_those_not_failed_before(void **state)
{
	char *n;

	(void)state;
	n = health_new_failures("a.service b.service", "b.service  c.service a.service d.mount");
	assert_string_equal(n, "c.service d.mount");
	free(n);
	assert_null(health_new_failures("a.service", "a.service"));
	assert_null(health_new_failures(NULL, NULL));
	assert_null(health_new_failures("x.service", ""));
	/* a prefix is not the unit */
	n = health_new_failures("web.service", "web.service2");
	assert_string_equal(n, "web.service2");
	free(n);
	/* what a host says is made safe to print */
	n = health_new_failures(NULL, "evil\x1b[2J.service");
	assert_null(strchr(n, '\x1b'));
	free(n);
}

static void test_health_units_fail_on_a_unit_failed_since_the_switch(void **state)
{
	char *why = NULL;

	(void)state;
	assert_int_equal(health_units_verdict("system_state=running\nfailed_units=\n",
				 "system_state=degraded\nfailed_units=fleet-sidecar.service \n",
				 &why),
		1);
	assert_non_null(strstr(why, "fleet-sidecar.service"));
	assert_non_null(strstr(why, "degraded"));
	free(why);
}

static void test_health_units_a_host_degraded_before_passes_unless_worse(void **state)
{
	const char *before = "system_state=degraded\nfailed_units=old.service\n";
	char *why = NULL;

	(void)state;
	assert_int_equal(health_units_verdict(before,
				 "system_state=degraded\nfailed_units=old.service\n", &why),
		0);
	assert_null(why);
	assert_int_equal(health_units_verdict(before,
				 "system_state=degraded\nfailed_units=old.service new.service\n",
				 &why),
		1);
	assert_non_null(strstr(why, "new.service"));
	assert_null(strstr(why, "old.service"));
	free(why);
}

static void test_health_units_degraded_without_a_listed_unit_fails(void **state)
{
	char *why = NULL;

	(void)state;
	assert_int_equal(health_units_verdict("system_state=running\n",
				 "system_state=degraded\nfailed_units=\n", &why),
		1);
	assert_non_null(strstr(why, "degraded"));
	free(why);
	/* still starting: not healthy yet (the gate asks again) */
	assert_int_equal(health_units_verdict(NULL, "system_state=starting\n", &why), 1);
	free(why);
	assert_int_equal(health_units_verdict(NULL, "system_state=running\nfailed_units=\n", &why),
		0);
}

static void test_health_units_a_host_without_systemctl_passes(void **state)
{
	char *why = NULL;

	(void)state;
	assert_int_equal(health_units_verdict("gen=1\n", "gen=2\ncurrent=/nix/store/x\n", &why), 0);
	assert_null(why);
	/* the key=value part only: output after the mark cannot forge it */
	assert_int_equal(health_units_verdict(NULL,
				 "gen=2\n--- output ---\nsystem_state=degraded\n", &why),
		0);
}

static void test_health_degraded_query_lists_its_failed_units(void **state)
{
	char *failed = NULL;

	(void)state;
	assert_true(health_is_degraded(
		"system_state=degraded\nfailed_units=a.service b.service \n", &failed));
	assert_string_equal(failed, "a.service b.service");
	free(failed);
	assert_false(health_is_degraded("system_state=running\nfailed_units=\n", &failed));
	assert_null(failed);
	assert_false(health_is_degraded(NULL, &failed));
	assert_false(health_is_degraded("system_state=offline\n", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_new_failures_are_those_not_failed_before),
		cmocka_unit_test(test_health_units_fail_on_a_unit_failed_since_the_switch),
		cmocka_unit_test(test_health_units_a_host_degraded_before_passes_unless_worse),
		cmocka_unit_test(test_health_units_degraded_without_a_listed_unit_fails),
		cmocka_unit_test(test_health_units_a_host_without_systemctl_passes),
		cmocka_unit_test(test_health_degraded_query_lists_its_failed_units),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
