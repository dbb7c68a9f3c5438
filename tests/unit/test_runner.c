/*
 * deploy/runner.c and deploy/steps.c on a fake host backend: the order
 * hosts are worked on, skips, the local host last, restores, the fleet
 * rollback, interrupts. The fake answers each host command by its name
 * (`sh -c SCRIPT constel-NAME ARG...`, deploy/host.h) as the host scripts
 * would, and keeps each host's generations in memory.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deploy/host_io.h"
#include "deploy/runner.h"
#include "graph/graph.h"
#include "inventory/inventory.h"

#define MAXGEN 8

struct fake_host {
	const char *name;
	long gen;		 /* the profile's generation */
	char paths[MAXGEN][96];	 /* the system of each generation */
	char current[96];	 /* what runs */
	bool fail_activation;	 /* switch-to-configuration fails: the host restores itself */
	bool no_service;	 /* its service ports never answer */
	bool unit_fails;	 /* its generations after the first fail a unit (systemctl) */
	bool degraded;		 /* old.service is failed, whatever runs */
	int records;		 /* records written */
	int starts;		 /* watchdogs started */
	int copies;
};

static struct fake_host fakes[8];
static size_t nfakes;
static char events[1024]; /* "start:a restore:b ..." in the order they happened */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

static struct fake_host *fake_of(const struct host_io *io)
{
	for (size_t i = 0; i < nfakes; i++)
		if (!strcmp(fakes[i].name, io->host->name))
			return &fakes[i];
	fail_msg("no fake host '%s'", io->host->name);
	return NULL;
}

static void note_event(const char *what, const char *host)
{
	size_t len = strlen(events);

	snprintf(events + len, sizeof(events) - len, "%s%s:%s", len ? " " : "", what, host);
}

/* The command's name and its arguments, unquoted: `... constel-NAME 'a' 'b'`. */
static size_t parse_cmd(const char *cmd, char *name, size_t nlen, char args[][128], size_t max)
{
	const char *p = strstr(cmd, "' constel-");
	size_t n = 0, len;

	assert_non_null(p);
	p += strlen("' constel-");
	len = strcspn(p, " ");
	snprintf(name, nlen, "%.*s", (int)len, p);
	p += len;
	while (*p == ' ' && n < max) {
		size_t w = 0;

		p++;
		while (*p && *p != ' ') {
			if (!strncmp(p, "'\\''", 4)) {
				args[n][w++] = '\'';
				p += 4;
			} else if (*p == '\'') {
				for (p++; *p && *p != '\''; p++)
					args[n][w++] = *p;
				p++;
			} else {
				args[n][w++] = *p++;
			}
		}
		args[n++][w] = '\0';
	}
	return n;
}

static int fake_connect(struct host_io *io)
{
	io->sessions++;
	return 0;
}

/* What the watchdog answers; it runs without a confirmation (confirm_timeout 0). */
static void fake_start(struct fake_host *f, char args[][128], struct buf *out)
{
	const char *runid = args[0], *mode = args[1];
	long prev = f->gen;

	f->starts++;
	if (!strcmp(mode, "path")) {
		note_event("start", f->name);
		if (f->fail_activation) {
			buf_printf(out, "run=%s\nphase=done\nresult=rolled-back\nreason=switch "
					"failed\ngen=%ld\nprev=%ld\npath=%s\n",
				runid, prev, prev, args[2]);
			return;
		}
		f->gen++;
		snprintf(f->paths[f->gen], sizeof(f->paths[0]), "%s", args[2]);
		snprintf(f->current, sizeof(f->current), "%s", args[2]);
	} else if (!strcmp(mode, "gen")) {
		note_event("switch", f->name);
		f->gen = atol(args[2]);
		snprintf(f->current, sizeof(f->current), "%s", f->paths[f->gen]);
	} else if (!strcmp(mode, "restore")) {
		note_event("restore", f->name);
		f->gen = atol(args[2]);
		snprintf(f->current, sizeof(f->current), "%s", args[8]);
		buf_printf(out, "run=%s\nphase=done\nresult=rolled-back\nreason=restored\ngen=%ld\n"
				"prev=%ld\n",
			runid, f->gen, f->gen);
		return;
	}
	buf_printf(out, "run=%s\nphase=done\nresult=ok\ngen=%ld\nprev=%ld\npath=%s\n", runid,
		f->gen, prev, f->current);
}

static int fake_exec(
	struct host_io *io, const char *cmd, const struct host_exec *o, struct ssh_exec_result *res)
{
	struct fake_host *f = fake_of(io);
	char name[32], args[9][128];

	(void)o;
	parse_cmd(cmd, name, sizeof(name), args, 9);
	pthread_mutex_lock(&fake_lock);
	res->exit_status = 0;
	if (!strcmp(name, "query")) {
		bool bad = f->unit_fails && strcmp(f->current, f->paths[1]);

		buf_printf(&res->out, "gen=%ld\nprofile=%s\ncurrent=%s\n", f->gen,
			f->gen ? f->paths[f->gen] : "", f->current);
		buf_printf(&res->out, "system_state=%s\nfailed_units=%s%s\n",
			bad || f->degraded ? "degraded" : "running", f->degraded ? "old.service " : "",
			bad ? "new.service" : "");
	} else if (!strcmp(name, "generations")) {
		for (long g = 1; g <= f->gen; g++)
			buf_printf(&res->out, "gen=%ld path=%s\n", g, f->paths[g]);
	} else if (!strcmp(name, "start")) {
		fake_start(f, args, &res->out);
	} else if (!strcmp(name, "record")) {
		f->records++;
	} else {
		res->exit_status = 127;
	}
	pthread_mutex_unlock(&fake_lock);
	return 0;
}

static int fake_probe(struct host_io *io, int port, int timeout_ms)
{
	(void)port;
	(void)timeout_ms;
	return fake_of(io)->no_service ? error_setc(CONSTEL_ENOTFOUND, "refused") : 0;
}

static int fake_copy(struct host_io *io, const char *path, struct ssh_copy_stats *st,
	ssh_copy_progress_fn progress, void *data)
{
	(void)path;
	pthread_mutex_lock(&fake_lock);
	fake_of(io)->copies++;
	pthread_mutex_unlock(&fake_lock);
	memset(st, 0, sizeof(*st));
	st->paths_total = st->paths_missing = 3;
	if (progress)
		progress(data, st);
	return 0;
}

static void fake_disconnect(struct host_io *io)
{
	(void)io;
}

static const struct host_io_ops fake_ops = {
	.kind = "fake",
	.connect = fake_connect,
	.exec = fake_exec,
	.probe = fake_probe,
	.copy = fake_copy,
	.disconnect = fake_disconnect,
};

/* ---- a fleet ---- */

struct fleet {
	struct inventory *inv;
	struct graph *graph;
	bool selected[8];
	struct build_set builds;
	struct runner_opts opts;
	size_t results[8]; /* on_result calls per host */
};

static void count_result(void *data, size_t host, const struct host_result *res)
{
	struct fleet *fl = data;

	(void)res;
	pthread_mutex_lock(&fake_lock);
	fl->results[host]++;
	pthread_mutex_unlock(&fake_lock);
}

/* Every host at generation 1 running ...-NAME-1; the build makes ...-NAME-2. */
static void fleet_init(struct fleet *fl, const char *yaml)
{
	struct strvec errors = STRVEC_INIT;
	const char **names;

	memset(fl, 0, sizeof(*fl));
	memset(fakes, 0, sizeof(fakes));
	events[0] = '\0';
	assert_int_equal(inventory_load_buffer(&fl->inv, "t.yaml", yaml, strlen(yaml), &errors), 0);
	strvec_release(&errors);
	nfakes = fl->inv->nhosts;
	names = calloc(nfakes, sizeof(*names));
	fl->builds.items = calloc(nfakes, sizeof(*fl->builds.items));
	fl->builds.nitems = nfakes;
	for (size_t i = 0; i < nfakes; i++) {
		struct fake_host *f = &fakes[i];

		names[i] = fl->inv->hosts[i].name;
		f->name = fl->inv->hosts[i].name;
		f->gen = 1;
		snprintf(f->paths[1], sizeof(f->paths[1]), "/nix/store/aaa-%s-1", f->name);
		snprintf(f->current, sizeof(f->current), "%s", f->paths[1]);
		fl->selected[i] = true;
		fl->builds.items[i].host = i;
		fl->builds.items[i].where = BUILD_LOCAL;
		fl->builds.items[i].out_path = xasprintf("/nix/store/bbb-%s-2", f->name);
	}
	fl->graph = graph_new(nfakes, names);
	free(names);
	fl->opts.op = RUNNER_DEPLOY;
	fl->opts.goal = "switch";
	fl->opts.parallel = 4;
	fl->opts.activation_timeout = 10;
	fl->opts.health_timeout = 0;
	fl->opts.auto_rollback = true;
	fl->opts.io_ops = &fake_ops;
	fl->opts.on_result = count_result;
	fl->opts.data = fl;
}

static size_t host(const struct fleet *fl, const char *name)
{
	size_t h;

	assert_int_equal(graph_find(fl->graph, name, &h), 0);
	return h;
}

/* `consumer` uses `provider`. */
static void edge(struct fleet *fl, const char *consumer, const char *provider)
{
	graph_add_edge(fl->graph, host(fl, consumer), host(fl, provider), "uses");
}

static struct runner *run(struct fleet *fl, bool stop_first)
{
	struct runner *r = runner_new(fl->inv, fl->graph, fl->selected,
		fl->opts.op == RUNNER_DEPLOY ? &fl->builds : NULL, &fl->opts);
	struct runner_event *ev;
	size_t n;

	if (stop_first)
		runner_stop(r);
	assert_int_equal(runner_start(r), 0);
	while (runner_wait(r, 100, &ev, &n)) {
		for (size_t i = 0; i < n; i++)
			free(ev[i].text);
		free(ev);
	}
	for (size_t i = 0; i < n; i++)
		free(ev[i].text);
	free(ev);
	runner_finish(r);
	return r;
}

static enum host_status status(struct runner *r, const struct fleet *fl, const char *name)
{
	return runner_result(r, host(fl, name))->status;
}

static void fleet_release(struct fleet *fl, struct runner *r)
{
	runner_free(r);
	graph_free(fl->graph);
	build_set_release(&fl->builds);
	inventory_free(fl->inv);
}

static const char *three = "hosts:\n  a: {arch: x86_64-linux}\n  b: {arch: x86_64-linux}\n"
			   "  c: {arch: x86_64-linux}\n";

static void test_runner_orders_providers_first(void **state)
{
	struct fleet fl;
	struct runner *r;

	(void)state;
	fleet_init(&fl, three);
	edge(&fl, "a", "b"); /* a uses b, b uses c */
	edge(&fl, "b", "c");
	r = run(&fl, false);
	assert_string_equal(events, "start:c start:b start:a");
	assert_true(runner_ok(r));
	assert_int_equal(status(r, &fl, "a"), HOST_DEPLOYED);
	assert_int_equal(runner_result(r, host(&fl, "a"))->generation, 2);
	assert_true(runner_result(r, host(&fl, "a"))->changed);
	assert_int_equal(fakes[host(&fl, "a")].records, 1);
	assert_int_equal(fakes[host(&fl, "a")].copies, 1);
	assert_int_equal(fl.results[host(&fl, "a")], 1);
	fleet_release(&fl, r);
}

static void test_runner_skips_dependents_of_a_failed_host(void **state)
{
	struct fleet fl;
	struct runner *r;

	(void)state;
	fleet_init(&fl, three);
	edge(&fl, "a", "b");
	fakes[host(&fl, "b")].fail_activation = true;
	r = run(&fl, false);
	assert_false(runner_ok(r));
	assert_int_equal(status(r, &fl, "b"), HOST_ROLLED_BACK);
	assert_int_equal(status(r, &fl, "a"), HOST_SKIPPED);
	assert_non_null(strstr(runner_result(r, host(&fl, "a"))->error, "'b' was rolled back"));
	assert_int_equal(status(r, &fl, "c"), HOST_DEPLOYED); /* unrelated: goes on */
	assert_int_equal(fakes[host(&fl, "a")].starts, 0);
	assert_int_equal(fl.results[host(&fl, "a")], 0); /* never run: no note */
	fleet_release(&fl, r);
}

static void test_runner_leaves_an_unchanged_host_alone(void **state)
{
	struct fleet fl;
	struct runner *r;
	size_t b;

	(void)state;
	fleet_init(&fl, three);
	b = host(&fl, "b");
	free(fl.builds.items[b].out_path);
	fl.builds.items[b].out_path = xstrdup(fakes[b].paths[1]);
	r = run(&fl, false);
	assert_int_equal(status(r, &fl, "b"), HOST_UNCHANGED);
	assert_int_equal(fakes[b].starts, 0);
	assert_int_equal(fakes[b].copies, 0);
	assert_false(runner_result(r, b)->changed);
	assert_true(runner_ok(r));
	fleet_release(&fl, r);
}

static void test_runner_takes_the_local_host_last(void **state)
{
	struct fleet fl;
	struct runner *r;

	(void)state;
	/* the local host comes first and is ready at once; it still goes last */
	fleet_init(&fl, "hosts:\n  l: {arch: x86_64-linux, local: true}\n"
			"  a: {arch: x86_64-linux}\n  b: {arch: x86_64-linux}\n");
	edge(&fl, "b", "a");
	fl.opts.parallel = 3;
	r = run(&fl, false);
	assert_string_equal(events, "start:a start:b start:l");
	assert_true(runner_ok(r));
	fleet_release(&fl, r);
}

static void test_runner_restores_a_host_whose_health_gate_fails(void **state)
{
	struct fleet fl;
	struct runner *r;
	size_t a;

	(void)state;
	fleet_init(&fl, "hosts:\n  a: {arch: x86_64-linux, services: {web: 80}}\n");
	a = host(&fl, "a");
	fakes[a].no_service = true;
	fl.opts.health_timeout = 1;
	r = run(&fl, false);
	assert_string_equal(events, "start:a restore:a");
	assert_int_equal(status(r, &fl, "a"), HOST_ROLLED_BACK);
	assert_non_null(strstr(runner_result(r, a)->error, "health gate"));
	assert_int_equal(fakes[a].gen, 1);
	assert_string_equal(fakes[a].current, "/nix/store/aaa-a-1");
	fleet_release(&fl, r);
}

static void test_runner_restores_a_host_whose_new_system_fails_a_unit(void **state)
{
	struct fleet fl;
	struct runner *r;
	size_t a;

	(void)state;
	fleet_init(&fl, "hosts:\n  a: {arch: x86_64-linux}\n");
	a = host(&fl, "a");
	fakes[a].unit_fails = true;
	fakes[a].degraded = true; /* failed before the run: does not count */
	fl.opts.health_timeout = 1;
	r = run(&fl, false);
	assert_string_equal(events, "start:a restore:a");
	assert_int_equal(status(r, &fl, "a"), HOST_ROLLED_BACK);
	assert_non_null(strstr(runner_result(r, a)->error, "new.service"));
	assert_null(strstr(runner_result(r, a)->error, "old.service"));
	assert_string_equal(fakes[a].current, "/nix/store/aaa-a-1");
	fleet_release(&fl, r);
}

static void test_runner_skips_a_degraded_host_with_require_healthy(void **state)
{
	struct fleet fl;
	struct runner *r;
	size_t a;

	(void)state;
	fleet_init(&fl, "hosts:\n  a: {arch: x86_64-linux}\n  b: {arch: x86_64-linux}\n");
	a = host(&fl, "a");
	fakes[a].degraded = true;
	fl.opts.health_timeout = 1;
	fl.opts.require_healthy = true;
	r = run(&fl, false);
	assert_string_equal(events, "start:b");
	assert_int_equal(status(r, &fl, "a"), HOST_SKIPPED);
	assert_non_null(strstr(runner_result(r, a)->error, "degraded before the deploy"));
	assert_int_equal(status(r, &fl, "b"), HOST_DEPLOYED);
	fleet_release(&fl, r);
}

static void test_runner_takes_each_hosts_health_timeout(void **state)
{
	struct fleet fl;
	struct runner *r;

	(void)state;
	/* no --health-timeout: a's gate runs (1 s), b's is off (0) */
	fleet_init(&fl, "hosts:\n  a: {services: {web: 80}, health_timeout: 1}\n"
			"  b: {services: {web: 80}, health_timeout: 0}\n");
	fakes[host(&fl, "a")].no_service = true;
	fakes[host(&fl, "b")].no_service = true;
	fl.opts.health_timeout = -1;
	r = run(&fl, false);
	assert_int_equal(status(r, &fl, "a"), HOST_ROLLED_BACK);
	assert_int_equal(status(r, &fl, "b"), HOST_DEPLOYED);
	fleet_release(&fl, r);
}

static void test_runner_rolls_the_fleet_back_consumers_first(void **state)
{
	struct fleet fl;
	struct runner *r;
	size_t a, b;

	(void)state;
	fleet_init(&fl, three);
	edge(&fl, "a", "b"); /* a uses b; c fails after both */
	edge(&fl, "c", "a");
	fakes[host(&fl, "c")].fail_activation = true;
	fl.opts.rollback_fleet = true;
	r = run(&fl, false);
	a = host(&fl, "a");
	b = host(&fl, "b");
	assert_string_equal(events, "start:b start:a start:c restore:a restore:b");
	assert_int_equal(status(r, &fl, "a"), HOST_ROLLED_BACK);
	assert_int_equal(status(r, &fl, "b"), HOST_ROLLED_BACK);
	assert_non_null(strstr(runner_result(r, a)->error, "fleet rollback"));
	assert_int_equal(runner_result(r, a)->generation, 1);
	assert_false(runner_result(r, a)->changed);
	assert_int_equal(fakes[a].gen, 1);
	assert_int_equal(fl.results[a], 2); /* deployed, then rolled back: two notes */
	assert_int_equal(fakes[b].records, 2);
	assert_false(runner_ok(r));
	fleet_release(&fl, r);
}

static void test_runner_rolls_back_to_the_previous_generation(void **state)
{
	struct fleet fl;
	struct runner *r;
	size_t a;

	(void)state;
	fleet_init(&fl, "hosts:\n  a: {arch: x86_64-linux}\n");
	a = host(&fl, "a");
	fakes[a].gen = 2;
	snprintf(fakes[a].paths[2], sizeof(fakes[a].paths[2]), "/nix/store/ccc-a-2");
	snprintf(fakes[a].current, sizeof(fakes[a].current), "/nix/store/ccc-a-2");
	fl.opts.op = RUNNER_ROLLBACK;
	r = run(&fl, false);
	assert_string_equal(events, "switch:a");
	assert_int_equal(status(r, &fl, "a"), HOST_DEPLOYED);
	assert_string_equal(runner_result(r, a)->path, "/nix/store/aaa-a-1");
	assert_int_equal(runner_result(r, a)->generation, 1);
	assert_string_equal(fakes[a].current, "/nix/store/aaa-a-1");
	fleet_release(&fl, r);
}

static void test_runner_stopped_starts_nothing(void **state)
{
	struct fleet fl;
	struct runner *r;

	(void)state;
	fleet_init(&fl, three);
	r = run(&fl, true);
	assert_string_equal(events, "");
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(runner_result(r, i)->status, HOST_SKIPPED);
		assert_string_equal(runner_result(r, i)->error, "not started: interrupted");
	}
	assert_false(runner_ok(r));
	fleet_release(&fl, r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runner_orders_providers_first),
		cmocka_unit_test(test_runner_skips_dependents_of_a_failed_host),
		cmocka_unit_test(test_runner_leaves_an_unchanged_host_alone),
		cmocka_unit_test(test_runner_takes_the_local_host_last),
		cmocka_unit_test(test_runner_restores_a_host_whose_health_gate_fails),
		cmocka_unit_test(test_runner_restores_a_host_whose_new_system_fails_a_unit),
		cmocka_unit_test(test_runner_skips_a_degraded_host_with_require_healthy),
		cmocka_unit_test(test_runner_takes_each_hosts_health_timeout),
		cmocka_unit_test(test_runner_rolls_the_fleet_back_consumers_first),
		cmocka_unit_test(test_runner_rolls_back_to_the_previous_generation),
		cmocka_unit_test(test_runner_stopped_starts_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
