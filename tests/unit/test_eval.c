/*
 * Unit tests of the evaluation's parts: the evaluation cache
 * (deploy/evalcache.h), and a bound that fails the host that passes it and
 * no other (deploy/eval.h). The memory bound of a child itself is tested
 * with the rest of common/proc.h in test_proc.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "deploy/build.h"
#include "deploy/eval.h"
#include "deploy/evalcache.h"

static void test_util_cache_dir_never_tmp(void **state)
{
	char *home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL, *d;

	(void)state;
	setenv("XDG_CACHE_HOME", "/srv/cache", 1);
	d = cache_dir();
	assert_string_equal(d, "/srv/cache/constel");
	free(d);
	/* relative: not a base directory (the XDG rule), ignored */
	setenv("XDG_CACHE_HOME", "cache", 1);
	setenv("HOME", "/home/x", 1);
	d = cache_dir();
	assert_string_equal(d, "/home/x/.cache/constel");
	free(d);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	d = cache_dir();
	assert_non_null(d);
	assert_null(strstr(d, "/tmp"));
	free(d);
	if (home)
		setenv("HOME", home, 1);
	free(home);
}

static json_t *path_of(const char *attr)
{
	json_t *p = eval__attr_path(attr);

	assert_non_null(p);
	return p;
}

/*
 * The key names everything the result depends on, in one canonical text:
 * any part that differs makes another key.
 */
static void test_evalcache_key_is_canonical_and_whole(void **state)
{
	json_t *a = path_of("nixosConfigurations.\"a.b\".config.system.build.toplevel");
	json_t *b = path_of("nixosConfigurations.a.b.config.system.build.toplevel");
	char *k = evalcache_key("c0ffee", "/srv/fleet", a, "x86_64-linux", "2.8.0"), *o;

	(void)state;
	assert_string_equal(k, "{\"attrPath\":[\"nixosConfigurations\",\"a.b\",\"config\","
			       "\"system\",\"build\",\"toplevel\"],\"commit\":\"c0ffee\","
			       "\"constel\":\"" CONSTEL_VERSION "\",\"flake\":\"/srv/fleet\","
			       "\"nix\":\"2.8.0\",\"system\":\"x86_64-linux\"}");
	o = evalcache_key("c0ffee", "/srv/fleet", b, "x86_64-linux", "2.8.0");
	assert_string_not_equal(k, o);
	free(o);
	o = evalcache_key("c0ffef", "/srv/fleet", a, "x86_64-linux", "2.8.0");
	assert_string_not_equal(k, o);
	free(o);
	o = evalcache_key("c0ffee", "/srv/fleet", a, "aarch64-linux", "2.8.0");
	assert_string_not_equal(k, o);
	free(o);
	o = evalcache_key("c0ffee", "/srv/fleet", a, "x86_64-linux", "2.18.1");
	assert_string_not_equal(k, o);
	free(o);
	free(k);
	json_decref(a);
	json_decref(b);
}

static char *tmp_dir(void)
{
	char tmpl[] = "/tmp/constel-test-eval.XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void rm_rf(char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

/* The one entry file of the cache folder (caller frees), or NULL. */
static char *only_entry(const char *dir)
{
	char *cmd = xasprintf("ls %s/eval/*.json 2>/dev/null", dir), line[4096];
	FILE *p = popen(cmd, "r");
	char *path = NULL;

	assert_non_null(p);
	if (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		path = xstrdup(line);
	}
	assert_null(fgets(line, sizeof(line), p));
	pclose(p);
	free(cmd);
	return path;
}

static void overwrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_evalcache_keeps_results_privately_per_key(void **state)
{
	char *dir = tmp_dir(), *evaldir = xasprintf("%s/eval", dir), *entry, *drv, *out;
	json_t *a = path_of("nixosConfigurations.a.config.system.build.toplevel");
	char *k1 = evalcache_key("c1", "/f", a, "x86_64-linux", "2.8.0");
	char *k2 = evalcache_key("c2", "/f", a, "x86_64-linux", "2.8.0");
	struct evalcache c;
	struct stat st;

	(void)state;
	assert_int_equal(evalcache_open(&c, dir), 0);
	assert_int_equal(stat(evaldir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), CONSTEL_ENOTFOUND);
	assert_null(drv);
	assert_int_equal(evalcache_put(&c, k1, "/nix/store/aaa-s.drv", "/nix/store/aaa-s"), 0);
	entry = only_entry(dir);
	assert_non_null(entry);
	assert_int_equal(stat(entry, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), 0);
	assert_string_equal(drv, "/nix/store/aaa-s.drv");
	assert_string_equal(out, "/nix/store/aaa-s");
	free(drv);
	free(out);
	/* another commit is another key */
	assert_int_equal(evalcache_get(&c, k2, &drv, &out), CONSTEL_ENOTFOUND);
	/* written again: replaced whole, still one entry */
	assert_int_equal(evalcache_put(&c, k1, "/nix/store/bbb-s.drv", "/nix/store/bbb-s"), 0);
	free(entry);
	entry = only_entry(dir);
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), 0);
	assert_string_equal(drv, "/nix/store/bbb-s.drv");
	free(drv);
	free(out);
	/* an entry that holds another key, or no store paths, is no hit */
	overwrite(entry, "{\"key\":{\"commit\":\"c2\"},\"drvPath\":\"/nix/store/x.drv\","
			 "\"outPath\":\"/nix/store/x\"}");
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), CONSTEL_ENOTFOUND);
	{
		char *text = xasprintf("{\"key\":%s,\"drvPath\":\"/nix/store/x y.drv\","
				       "\"outPath\":\"/nix/store/x\"}",
			k1);

		overwrite(entry, text);
		free(text);
	}
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), CONSTEL_ENOTFOUND);
	overwrite(entry, "{ not json");
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), CONSTEL_ENOTFOUND);
	/* not through a symlink planted as an entry */
	unlink(entry);
	assert_int_equal(symlink("/etc/passwd", entry), 0);
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), CONSTEL_ENOTFOUND);
	evalcache_release(&c);
	free(entry);
	free(k1);
	free(k2);
	json_decref(a);
	free(evaldir);
	rm_rf(dir);
}

static void test_evalcache_prunes_what_nobody_used(void **state)
{
	char *dir = tmp_dir(), *entry;
	json_t *a = path_of("a");
	char *k1 = evalcache_key("c1", "/f", a, "x86_64-linux", "2.8.0");
	char *k2 = evalcache_key("c2", "/f", a, "x86_64-linux", "2.8.0");
	struct evalcache c;
	struct timeval old[2] = {{0, 0}, {0, 0}};
	char *drv, *out;

	(void)state;
	assert_int_equal(evalcache_open(&c, dir), 0);
	assert_int_equal(evalcache_put(&c, k1, "/nix/store/a.drv", "/nix/store/a"), 0);
	entry = only_entry(dir);
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 40 * 86400;
	assert_int_equal(utimes(entry, old), 0);
	assert_int_equal(evalcache_put(&c, k2, "/nix/store/b.drv", "/nix/store/b"), 0);
	assert_int_equal(evalcache_prune(&c, 30), 1);
	assert_int_equal(evalcache_get(&c, k1, &drv, &out), CONSTEL_ENOTFOUND);
	assert_int_equal(evalcache_get(&c, k2, &drv, &out), 0);
	free(drv);
	free(out);
	/* a read marks an entry used */
	free(entry);
	entry = only_entry(dir);
	assert_int_equal(utimes(entry, old), 0);
	assert_int_equal(evalcache_get(&c, k2, &drv, &out), 0);
	free(drv);
	free(out);
	assert_int_equal(evalcache_prune(&c, 30), 0);
	evalcache_release(&c);
	free(entry);
	free(k1);
	free(k2);
	json_decref(a);
	rm_rf(dir);
}

/* A fleet of plain derivations; `big` keeps about 250 MB of values before it gives its own. */
static const char bounded_fleet[] =
	"let d = name: derivation { inherit name; system = builtins.currentSystem;\n"
	"      builder = \"/bin/sh\"; args = [ \"-c\" \": > $out\" ]; };\n"
	"    kept = builtins.genList (i: i) 3500000;\n"
	"in {\n"
	"  small = d \"small\";\n"
	"  big = builtins.seq (builtins.length kept) (d \"big\") // { inherit kept; };\n"
	"  other = d \"other\";\n"
	"}\n";

/*
 * A host whose evaluator passes --eval-max-memory fails with that reason;
 * the hosts evaluated beside it, and after it by the same worker, do not.
 */
static void test_eval_bound_fails_the_host_that_passes_it_alone(void **state)
{
	char *dir = tmp_dir(), *fleet = xasprintf("%s/fleet.nix", dir);
	char *inv_path = xasprintf("%s/t.yaml", dir);
	const char *yaml = "defaults: { file: ./fleet.nix }\n"
			   "hosts:\n  small: { attr: small }\n  big: { attr: big }\n"
			   "  other: { attr: other }\n";
	struct inventory *inv = NULL;
	struct strvec errors = STRVEC_INIT;
	struct build_set set;
	struct buf log = BUF_INIT(1 << 20);
	bool sel[3] = {true, true, true};
	size_t seen = 0;

	(void)state;
	overwrite(fleet, bounded_fleet);
	assert_int_equal(inventory_load_buffer(&inv, inv_path, yaml, strlen(yaml), &errors), 0);
	setenv("NIX_CONFIG", "substituters =\nflake-registry = /dev/null\n", 1);
	assert_int_equal(build_plan(&set, inv, sel, "local", NULL, 0), 0);
	set.eval.jobs = 1;
	set.eval.max_memory_mb = 120;
	assert_int_equal(build_eval(&set, &log), 1);
	for (size_t i = 0; i < set.nitems; i++) {
		struct build_item *it = &set.items[i];

		if (!strcmp(inv->hosts[it->host].name, "big")) {
			assert_non_null(it->error);
			assert_non_null(strstr(it->error, "more than the bound of 120 MB"));
			assert_true(it->eval_peak_mb > 120);
			assert_null(it->drv_path);
		} else {
			if (it->error)
				print_error("%s: %s\n%s", it->installable, it->error, log.data);
			assert_null(it->error);
			assert_non_null(it->drv_path);
			assert_true(it->eval_peak_mb < 120);
		}
		seen++;
	}
	assert_int_equal(seen, 3);
	build_set_release(&set);
	inventory_free(inv);
	strvec_release(&errors);
	buf_release(&log);
	free(fleet);
	free(inv_path);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_cache_dir_never_tmp),
		cmocka_unit_test(test_evalcache_key_is_canonical_and_whole),
		cmocka_unit_test(test_evalcache_keeps_results_privately_per_key),
		cmocka_unit_test(test_evalcache_prunes_what_nobody_used),
		cmocka_unit_test(test_eval_bound_fails_the_host_that_passes_it_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
