/* Unit tests of deploy/: the host-side protocol's commands and answers, records, build plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/proc.h"
#include "deploy/build.h"
#include "deploy/host.h"
#include "deploy/record.h"

static void test_host_get_reads_last_value_of_key(void **state)
{
	const char *answer = "phase=activating\ngen=4\nphase=done\nreason=switch failed: exit 1\n"
			     "prev=3";
	char *v;

	(void)state;
	v = host_get(answer, "phase");
	assert_string_equal(v, "done");
	free(v);
	v = host_get(answer, "reason");
	assert_string_equal(v, "switch failed: exit 1");
	free(v);
	assert_null(host_get(answer, "gen4"));
	assert_null(host_get(answer, "ph"));
	assert_int_equal(host_get_long(answer, "gen", -1), 4);
	assert_int_equal(host_get_long(answer, "prev", -1), 3);
	assert_int_equal(host_get_long(answer, "missing", -7), -7);
	assert_int_equal(host_get_long("gen=\n", "gen", -7), -7);
	assert_int_equal(host_get_long("gen=12x\n", "gen", -7), -7);
}

/* Runs a host command line through sh, as sshd would; its stdout (caller frees). */
static char *run_sh(const char *cmd)
{
	const char *argv[] = {"sh", "-c", cmd, NULL};
	struct buf out = BUF_INIT(1 << 20);

	assert_int_equal(proc_run(argv, &out, NULL), 0);
	return buf_detach(&out);
}

static void test_host_script_passes_arguments_as_data(void **state)
{
	const char *args[] = {"run'1", "/nix/store/abc; rm -rf /", "$(echo no)", "", "a\nb"};
	char *cmd = host_script("printf '[%s]\\n' \"$0\" \"$@\"", "t", args, 5);
	char *out = run_sh(cmd);

	(void)state;
	assert_string_equal(out, "[constel-t]\n[run'1]\n[/nix/store/abc; rm -rf /]\n[$(echo no)]\n"
				 "[]\n[a\nb]\n");
	free(out);
	free(cmd);
}

static void test_host_start_passes_the_watchdog_its_arguments(void **state)
{
	struct host_activation a = {0};
	char *cmd;

	(void)state;
	a.runid = "r";
	a.mode = HOST_ACTIVATE_PATH;
	a.path = "/nix/store/abc-sys";
	a.goal = "switch";
	a.confirm_timeout = 30;
	a.activation_timeout = 600;
	a.auto_rollback = true;
	a.delete_failed = true;
	cmd = host_cmd_start(&a);
	assert_non_null(strstr(cmd, " constel-start 'r' 'path' '/nix/store/abc-sys' 'switch' '30' "
				    "'600' '1' '1' ''"));
	free(cmd);
	/* a boot activation changes nothing that runs: nothing to confirm */
	a.mode = HOST_ACTIVATE_RESTORE;
	a.generation = 7;
	a.running = "/nix/store/old-sys";
	a.goal = "boot";
	a.auto_rollback = a.delete_failed = false;
	cmd = host_cmd_start(&a);
	assert_non_null(strstr(cmd, " 'r' 'restore' '7' 'boot' '0' '600' '0' '0' "
				    "'/nix/store/old-sys'"));
	free(cmd);
}

static void test_host_answer_stops_at_the_output(void **state)
{
	const char *answer = "run=r\nphase=done\n" HOST_OUTPUT_MARK "\nphase=forged\nresult=ok\n";

	char *v = host_get(answer, "phase");

	(void)state;
	assert_string_equal(v, "done");
	free(v);
	assert_null(host_get(answer, "result"));
	assert_string_equal(host_answer_output(answer), "phase=forged\nresult=ok\n");
	assert_null(host_answer_output("run=r\nx=--- output ---\n"));
}

static void test_host_store_path_check(void **state)
{
	(void)state;
	assert_true(host_is_store_path("/nix/store/abc-nixos-system-x"));
	assert_false(host_is_store_path("/nix/store/"));
	assert_false(host_is_store_path("/etc/passwd"));
	assert_false(host_is_store_path("/nix/store/../../etc"));
	assert_false(host_is_store_path("/nix/store/a b"));
	assert_false(host_is_store_path("/nix/store/a\x1b[2J"));
	assert_true(host_is_store_path("/nix/store/0abc-x+y_z.1?=-/bin/switch-to-configuration"));
	assert_false(host_is_store_path("/nix/store"));
	assert_false(host_is_store_path("/nix/store/abc-x/../../../etc"));
	assert_false(host_is_store_path("/nix/store/abc-x/.."));
	assert_false(host_is_store_path("/nix/store/.."));
	assert_false(host_is_store_path("/nix/store/./abc"));
	assert_false(host_is_store_path("/nix/store/abc//bin"));
	assert_false(host_is_store_path("/nix/store/abc/"));
	assert_false(host_is_store_path("/nix/store/abc-x$(reboot)"));
	assert_false(host_is_store_path("/nix/store/abc-x;rm"));
	assert_false(host_is_store_path("/nix/store/abc-\xc3\xa9"));
	assert_false(host_is_store_path("/nix/store/abc-x\n/nix/store/y"));
	assert_false(host_is_store_path("/nix/store/abc'x"));
	assert_false(host_is_store_path("/nix/store/abc\\x"));
	assert_false(host_is_store_path("/nix/store/abc:x"));
}

static void test_record_json_has_every_field(void **state)
{
	struct record_info info = {"0123abcd", true, "me@here"};
	char *text = record_json(&info, "galactica", "/nix/store/x-sys", 5, "switch", "rollback");
	json_error_t err;
	json_t *o = json_loads(text, 0, &err);

	(void)state;
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "host")), "galactica");
	assert_string_equal(json_string_value(json_object_get(o, "path")), "/nix/store/x-sys");
	assert_int_equal(json_integer_value(json_object_get(o, "generation")), 5);
	assert_string_equal(json_string_value(json_object_get(o, "revision")), "0123abcd");
	assert_true(json_is_true(json_object_get(o, "dirty")));
	assert_string_equal(json_string_value(json_object_get(o, "deployer")), "me@here");
	assert_non_null(json_object_get(o, "time"));
	assert_string_equal(json_string_value(json_object_get(o, "result")), "rollback");
	/* one line: history.jsonl holds one record per line */
	assert_null(strchr(text, '\n'));
	json_decref(o);
	free(text);
}

static struct inventory *load(const char *yaml)
{
	struct inventory *inv = NULL;
	struct strvec errors = STRVEC_INIT;

	assert_int_equal(inventory_load_buffer(&inv, "t.yaml", yaml, strlen(yaml), &errors), 0);
	strvec_release(&errors);
	return inv;
}

static void test_build_plan_refuses_arch_nothing_builds(void **state)
{
	struct inventory *inv = load("hosts:\n  a: {}\n  r:\n    arch: riscv64-linux\n");
	bool sel[2] = {true, true};
	struct build_set set;

	(void)state;
	setenv("NIX_CONFIG",
		"substituters =\nflake-registry = /dev/null\n"
		"experimental-features = nix-command flakes\nextra-platforms =",
		1);
	assert_int_equal(build_plan(&set, inv, sel, NULL, NULL, 0), -1);
	assert_non_null(strstr(error_last(), "host 'r' is riscv64-linux"));
	build_set_release(&set);
	/* the same host built on its target is fine, and only selected hosts count */
	assert_int_equal(build_plan(&set, inv, sel, "target", NULL, 0), 0);
	assert_int_equal(set.nitems, 2);
	assert_int_equal(set.items[1].where, BUILD_TARGET);
	build_set_release(&set);
	sel[1] = false;
	assert_int_equal(build_plan(&set, inv, sel, NULL, NULL, 0), 0);
	assert_int_equal(set.nitems, 1);
	assert_string_equal(strchr(set.items[0].installable, '#'),
		"#nixosConfigurations.a.config.system.build.toplevel");
	build_set_release(&set);
	inventory_free(inv);
}

static void test_build_plan_uses_builders_and_file(void **state)
{
	struct inventory *inv =
		load("defaults: { file: ./fleet.nix }\n"
		     "builders: { aarch64-linux: b }\n"
		     "hosts:\n  a: { arch: aarch64-linux }\n  b: { arch: aarch64-linux }\n");
	bool sel[2] = {true, true};
	struct build_set set;

	(void)state;
	assert_int_equal(build_plan(&set, inv, sel, NULL, NULL, 0), 0);
	assert_int_equal(set.items[0].where, BUILD_BUILDER);
	assert_string_equal(set.items[0].builder, "b");
	/* the builder builds for itself on itself */
	assert_int_equal(set.items[1].where, BUILD_TARGET);
	assert_non_null(set.items[0].file);
	assert_string_equal(
		set.items[0].installable, "nixosConfigurations.a.config.system.build.toplevel");
	build_set_release(&set);
	inventory_free(inv);
}

/* The Nix file of test_build_eval_looks_up_attributes_as_data: names no Nix source could splice. */
static const char literal_fleet[] =
	"let d = name: derivation { inherit name; system = builtins.currentSystem;\n"
	"      builder = \"/bin/sh\"; args = [ \"-c\" \": > $out\" ]; };\n"
	"in {\n"
	"  \"\\${abort \\\"x\\\"}\" = d \"dollar\";\n"
	"  \"q\\\"uote\" = d \"quote\";\n"
	"  hosts.\"c.example\".system = d \"dotted\";\n"
	"}\n";

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * An attribute path reaches Nix as data: a segment `${abort "x"}` is the
 * name of an attribute, not code that aborts the evaluation (the inventory
 * refuses such a segment; here it is set behind its back), a '"' in a name
 * is a character, a quoted segment may hold a '.'. Results keep the order
 * of the hosts, a host that does not evaluate fails alone, and the files
 * given to Nix are gone afterwards.
 */
static void test_build_eval_looks_up_attributes_as_data(void **state)
{
	char dir[] = "/tmp/constel-eval-test.XXXXXX", tmp[64], path[64];
	struct build_set set;
	struct buf log = BUF_INIT(1 << 20);
	struct inventory *inv = NULL;
	struct strvec errors = STRVEC_INIT;
	bool sel[4] = {true, true, true, true};
	size_t failed;
	const char *yaml = "defaults: { file: ./fleet.nix }\n"
			   "hosts:\n  a: {}\n  b: {}\n  c: { attr: 'hosts.\"c.example\".system' }\n"
			   "  d: { attr: hosts.missing }\n";
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fleet.nix", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(literal_fleet, f);
	assert_int_equal(fclose(f), 0);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	snprintf(path, sizeof(path), "%s/t.yaml", dir);
	assert_int_equal(inventory_load_buffer(&inv, path, yaml, strlen(yaml), &errors), 0);
	inv->hosts[0].attr = "${abort \"x\"}";
	inv->hosts[1].attr = "q\"uote";
	setenv("NIX_CONFIG", "substituters =\nflake-registry = /dev/null\n", 1);
	setenv("TMPDIR", tmp, 1);
	assert_int_equal(build_plan(&set, inv, sel, "local", NULL, 0), 0);
	failed = build_eval(&set, &log);
	unsetenv("TMPDIR");
	/* say why before asserting, so that a failure here explains itself */
	for (size_t i = 0; i < 3; i++)
		if (set.items[i].error)
			print_error("%s: %s\n", inv->hosts[i].name, set.items[i].error);
	if (failed != 1)
		print_error("the evaluation's log:\n%s\n", log.data ? log.data : "");
	assert_int_equal(failed, 1);
	assert_null(set.items[0].error);
	assert_true(ends_with(set.items[0].out_path, "-dollar"));
	assert_true(ends_with(set.items[0].drv_path, "-dollar.drv"));
	assert_null(set.items[1].error);
	assert_true(ends_with(set.items[1].out_path, "-quote"));
	assert_null(set.items[2].error);
	assert_true(ends_with(set.items[2].out_path, "-dotted"));
	assert_non_null(set.items[3].error);
	assert_null(set.items[3].out_path);
	assert_non_null(strstr(set.items[3].error, "evaluation failed: "));
	assert_non_null(strstr(set.items[3].error, "'missing'"));
	/* what the attribute name would have run never ran */
	assert_null(strstr(log.data, "aborted"));
	/* the evaluation's folder and files are removed, each time */
	assert_int_equal(rmdir(tmp), 0);
	build_set_release(&set);
	inventory_free(inv);
	strvec_release(&errors);
	buf_release(&log);
	snprintf(path, sizeof(path), "%s/fleet.nix", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_get_reads_last_value_of_key),
		cmocka_unit_test(test_host_script_passes_arguments_as_data),
		cmocka_unit_test(test_host_start_passes_the_watchdog_its_arguments),
		cmocka_unit_test(test_host_answer_stops_at_the_output),
		cmocka_unit_test(test_host_store_path_check),
		cmocka_unit_test(test_record_json_has_every_field),
		cmocka_unit_test(test_build_plan_refuses_arch_nothing_builds),
		cmocka_unit_test(test_build_plan_uses_builders_and_file),
		cmocka_unit_test(test_build_eval_looks_up_attributes_as_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
