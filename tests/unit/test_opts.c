/* common/opts: argv against tables, and the usage and help made from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/opts.h"

enum { T_ON = 1, T_DRY, T_PARALLEL, T_GOAL, T_LOG, T_INV, T_VERBOSE, T_JSON, T_TO };

static const char *const goals[] = {"switch", "boot", "test", "dry-activate", NULL};

static const struct opt deploy_table[] = {
	{.name = "on", .kind = OPT_STRING, .arg = "LIST", .help = "hosts", .id = T_ON},
	{.name = "dry-run", .kind = OPT_FLAG, .help = "touch no host", .id = T_DRY},
	{.name = "parallel",
		.kind = OPT_NUMBER,
		.arg = "N",
		.help = "at once",
		.id = T_PARALLEL,
		.min = 1,
		.max = 1024},
	{.name = "goal", .kind = OPT_CHOICE, .choices = goals, .help = "goal", .id = T_GOAL},
	{.name = "log-dir", .kind = OPT_STRING, .arg = "DIR", .help = "logs", .id = T_LOG},
	{NULL},
};

static const struct opt rollback_table[] = {
	{.name = "to",
		.kind = OPT_NUMBER,
		.arg = "N",
		.help = "generation",
		.id = T_TO,
		.min = 1,
		.max = 1000},
	{NULL},
};

static const struct opt global_table[] = {
	{.name = "inventory",
		.short_name = 'i',
		.kind = OPT_STRING,
		.arg = "FILE",
		.help = "inventory",
		.id = T_INV},
	{.name = "verbose", .short_name = 'v', .kind = OPT_FLAG, .help = "more", .id = T_VERBOSE},
	{.name = "json", .kind = OPT_FLAG, .help = "json", .id = T_JSON},
	{NULL},
};

static const struct opt *const deploy_tables[] = {deploy_table, global_table, NULL};
static const struct opt *const rollback_tables[] = {rollback_table, global_table, NULL};

/* Parses the words of `line` (split at spaces; argv[0] is the command) into *o. */
static int parse(struct opts *o, const struct opt *const *tables, char *line, char **argv)
{
	int argc = 0;

	for (char *p = line; *p;) {
		argv[argc++] = p;
		while (*p && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
	}
	argv[argc] = NULL;
	opts_init(o);
	return opts_parse(o, tables, argc, argv, 1, 0, argv[0]);
}

static void test_opts_unknown_option_is_refused_naming_option_and_command(void **state)
{
	char line[] = "deploy --frobnicate alpha", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), CONSTEL_ENOTFOUND);
	assert_string_equal(o.unknown, "--frobnicate");
	assert_string_equal(error_last(), "unknown option '--frobnicate' for 'deploy'");
	opts_release(&o);
}

static void test_opts_unknown_short_option_is_refused(void **state)
{
	char line[] = "deploy -x", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "unknown option '-x' for 'deploy'");
	opts_release(&o);
}

static void test_opts_option_of_another_table_is_refused(void **state)
{
	char line[] = "rollback alpha --dry-run", *argv[8];
	char line2[] = "deploy --to 3", *argv2[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, rollback_tables, line, argv), CONSTEL_ENOTFOUND);
	assert_string_equal(o.unknown, "--dry-run");
	assert_string_equal(error_last(), "unknown option '--dry-run' for 'rollback'");
	opts_release(&o);
	assert_int_equal(parse(&o, deploy_tables, line2, argv2), CONSTEL_ENOTFOUND);
	assert_string_equal(o.unknown, "--to");
	opts_release(&o);
}

static void test_opts_suggests_a_close_name(void **state)
{
	char line[] = "deploy --dryrun", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), CONSTEL_ENOTFOUND);
	assert_string_equal(
		error_last(), "unknown option '--dryrun' for 'deploy'; did you mean '--dry-run'?");
	opts_release(&o);
}

static void test_opts_suggests_nothing_far(void **state)
{
	char line[] = "deploy --zz", line2[] = "deploy --dry-runs", *argv[8];
	struct opts o;

	(void)state;
	/* the names' rule (common/names.h): within a quarter of the length */
	assert_int_equal(parse(&o, deploy_tables, line, argv), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "unknown option '--zz' for 'deploy'");
	opts_release(&o);
	assert_int_equal(parse(&o, deploy_tables, line2, argv), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(),
		"unknown option '--dry-runs' for 'deploy'; did you mean '--dry-run'?");
	opts_release(&o);
}

static void test_opts_long_names_are_not_abbreviated(void **state)
{
	char line[] = "deploy --dry", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), CONSTEL_ENOTFOUND);
	opts_release(&o);
}

static void test_opts_value_after_equals_or_in_the_next_word(void **state)
{
	char line[] = "deploy --log-dir=/tmp/a=b --on alpha,@tier1 --parallel=4 --goal boot",
	     *argv[12];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), 0);
	assert_int_equal(o.nr, 4);
	assert_int_equal(o.v[0].opt->id, T_LOG);
	assert_string_equal(o.v[0].arg, "/tmp/a=b");
	assert_int_equal(o.v[1].opt->id, T_ON);
	assert_string_equal(o.v[1].arg, "alpha,@tier1");
	assert_int_equal(o.v[2].opt->id, T_PARALLEL);
	assert_int_equal(o.v[2].num, 4);
	assert_int_equal(o.v[3].opt->id, T_GOAL);
	assert_string_equal(o.v[3].arg, "boot");
	assert_int_equal(o.nargs, 0);
	opts_release(&o);
}

static void test_opts_an_empty_value_after_equals_is_a_value(void **state)
{
	char line[] = "deploy --on=", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), 0);
	assert_int_equal(o.nr, 1);
	assert_string_equal(o.v[0].arg, "");
	opts_release(&o);
}

static void test_opts_missing_value_is_refused(void **state)
{
	char line[] = "deploy alpha --parallel", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), -1);
	assert_string_equal(error_last(), "option '--parallel' for 'deploy' needs a value (N)");
	opts_release(&o);
}

static void test_opts_flag_with_a_value_is_refused(void **state)
{
	char line[] = "deploy --dry-run=yes", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), -1);
	assert_string_equal(
		error_last(), "option '--dry-run' for 'deploy' takes no value, not 'yes'");
	opts_release(&o);
}

static void test_opts_bad_number_is_refused(void **state)
{
	const char *bad[] = {"4x", "", " 4", "+4", "0", "1025", "0x10", "99999999999999999999"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"deploy", "--parallel", (char *)bad[i], NULL};
		struct opts o;

		opts_init(&o);
		assert_int_equal(opts_parse(&o, deploy_tables, 3, argv, 1, 0, "deploy"), -1);
		assert_non_null(strstr(error_last(), "takes a number from 1 to 1024"));
		opts_release(&o);
	}
}

static void test_opts_choice_outside_its_list_is_refused(void **state)
{
	char line[] = "deploy --goal reboot", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), -1);
	assert_string_equal(error_last(), "option '--goal' for 'deploy' takes switch, boot, test "
					  "or dry-activate, not 'reboot'");
	opts_release(&o);
}

static void test_opts_dashdash_ends_the_options(void **state)
{
	char line[] = "exec alpha --json -- ls --json -i x", *argv[12];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), 0);
	assert_int_equal(o.nr, 1);
	assert_int_equal(o.v[0].opt->id, T_JSON);
	assert_int_equal(o.nargs, 5);
	assert_int_equal(o.ndash, 1);
	assert_string_equal(o.args[0], "alpha");
	assert_string_equal(o.args[1], "ls");
	assert_string_equal(o.args[2], "--json");
	assert_string_equal(o.args[4], "x");
	opts_release(&o);
}

static void test_opts_without_dashdash_every_argument_is_before_it(void **state)
{
	char line[] = "plan a b", *argv[8];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), 0);
	assert_int_equal(o.ndash, 2);
	assert_int_equal(o.nargs, 2);
	opts_release(&o);
}

static void test_opts_positional_arguments_keep_their_order_around_options(void **state)
{
	char line[] = "deploy gamma --dry-run alpha -v - beta", *argv[12];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), 0);
	assert_int_equal(o.nargs, 4);
	assert_string_equal(o.args[0], "gamma");
	assert_string_equal(o.args[1], "alpha");
	assert_string_equal(o.args[2], "-");
	assert_string_equal(o.args[3], "beta");
	assert_int_equal(o.nr, 2);
	assert_int_equal(o.v[0].opt->id, T_DRY);
	assert_int_equal(o.v[1].opt->id, T_VERBOSE);
	opts_release(&o);
}

static void test_opts_short_options_bundle_and_take_values(void **state)
{
	char line[] = "deploy -vv -ifile.yaml -i other.yaml -vi third", *argv[12];
	struct opts o;

	(void)state;
	assert_int_equal(parse(&o, deploy_tables, line, argv), 0);
	assert_int_equal(o.nr, 6);
	assert_int_equal(o.v[0].opt->id, T_VERBOSE);
	assert_int_equal(o.v[1].opt->id, T_VERBOSE);
	assert_string_equal(o.v[2].arg, "file.yaml");
	assert_string_equal(o.v[3].arg, "other.yaml");
	assert_int_equal(o.v[4].opt->id, T_VERBOSE);
	assert_string_equal(o.v[5].arg, "third");
	assert_int_equal(o.nargs, 0);
	opts_release(&o);
}

static void test_opts_stops_at_the_first_argument_when_asked(void **state)
{
	char *argv[] = {"constel", "-i", "plan", "--json", "plan", "--dot", NULL};
	const struct opt *const globals[] = {global_table, NULL};
	struct opts o;

	(void)state;
	opts_init(&o);
	/* -i takes "plan" as its value: the command is the second "plan" */
	assert_int_equal(opts_parse(&o, globals, 6, argv, 1, OPTS_STOP_AT_ARG, NULL), 0);
	assert_int_equal(o.end, 4);
	assert_int_equal(o.nr, 2);
	assert_string_equal(o.v[0].arg, "plan");
	assert_int_equal(o.nargs, 0);
	opts_release(&o);
}

static void test_opts_synopsis_and_help_come_from_the_table(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	opts_add_synopsis(&b, deploy_table, 0, 4, 100);
	assert_string_equal(b.data, "[--on LIST] [--dry-run] [--parallel N] "
				    "[--goal switch|boot|test|dry-activate] [--log-dir DIR]");
	buf_reset(&b);
	opts_add_synopsis(&b, deploy_table, 0, 4, 40);
	assert_string_equal(b.data, "[--on LIST] [--dry-run] [--parallel N]\n"
				    "    [--goal switch|boot|test|dry-activate]\n"
				    "    [--log-dir DIR]");
	buf_reset(&b);
	opts_add_help(&b, global_table);
	assert_string_equal(b.data, "  -i, --inventory FILE  inventory\n"
				    "  -v, --verbose         more\n"
				    "      --json            json\n");
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_unknown_option_is_refused_naming_option_and_command),
		cmocka_unit_test(test_opts_unknown_short_option_is_refused),
		cmocka_unit_test(test_opts_option_of_another_table_is_refused),
		cmocka_unit_test(test_opts_suggests_a_close_name),
		cmocka_unit_test(test_opts_suggests_nothing_far),
		cmocka_unit_test(test_opts_long_names_are_not_abbreviated),
		cmocka_unit_test(test_opts_value_after_equals_or_in_the_next_word),
		cmocka_unit_test(test_opts_an_empty_value_after_equals_is_a_value),
		cmocka_unit_test(test_opts_missing_value_is_refused),
		cmocka_unit_test(test_opts_flag_with_a_value_is_refused),
		cmocka_unit_test(test_opts_bad_number_is_refused),
		cmocka_unit_test(test_opts_choice_outside_its_list_is_refused),
		cmocka_unit_test(test_opts_dashdash_ends_the_options),
		cmocka_unit_test(test_opts_without_dashdash_every_argument_is_before_it),
		cmocka_unit_test(test_opts_positional_arguments_keep_their_order_around_options),
		cmocka_unit_test(test_opts_short_options_bundle_and_take_values),
		cmocka_unit_test(test_opts_stops_at_the_first_argument_when_asked),
		cmocka_unit_test(test_opts_synopsis_and_help_come_from_the_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
