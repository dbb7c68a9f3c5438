/* Driving a run: options, live progress, summary, JSON report, SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/run.h"

enum {
	OPT_ON = 1000,
	OPT_WITH_DEPS,
	OPT_GOAL,
	OPT_PARALLEL,
	OPT_CONFIRM,
	OPT_NO_MAGIC,
	OPT_NO_AUTO,
	OPT_ROLLBACK_FLEET,
	OPT_DRY_RUN,
	OPT_BUILD_ON,
	OPT_TO,
	OPT_LOG_DIR,
	OPT_REV,
	OPT_ALLOW_DIRTY,
	OPT_ACTIVATION_TIMEOUT,
	OPT_HEALTH_TIMEOUT,
};

int run_parse_args(int argc, char **argv, struct run_args *a)
{
	static const struct option longopts[] = {
		{ "on", required_argument, NULL, OPT_ON },
		{ "with-deps", no_argument, NULL, OPT_WITH_DEPS },
		{ "goal", required_argument, NULL, OPT_GOAL },
		{ "parallel", required_argument, NULL, OPT_PARALLEL },
		{ "confirm-timeout", required_argument, NULL, OPT_CONFIRM },
		{ "no-magic-rollback", no_argument, NULL, OPT_NO_MAGIC },
		{ "no-auto-rollback", no_argument, NULL, OPT_NO_AUTO },
		{ "rollback-fleet", no_argument, NULL, OPT_ROLLBACK_FLEET },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "build-on", required_argument, NULL, OPT_BUILD_ON },
		{ "to", required_argument, NULL, OPT_TO },
		{ "log-dir", required_argument, NULL, OPT_LOG_DIR },
		{ "rev", required_argument, NULL, OPT_REV },
		{ "allow-dirty", no_argument, NULL, OPT_ALLOW_DIRTY },
		{ "activation-timeout", required_argument, NULL, OPT_ACTIVATION_TIMEOUT },
		{ "health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	strvec_init(&a->patterns);
	a->parallel = -1;
	a->confirm_timeout = -1;
	a->activation_timeout = -1;
	a->health_timeout = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ON:
			cmd_split_list(&a->patterns, optarg);
			break;
		case OPT_WITH_DEPS:
			a->with_deps = true;
			break;
		case OPT_GOAL:
			if (strcmp(optarg, "switch") && strcmp(optarg, "boot") &&
				strcmp(optarg, "test") && strcmp(optarg, "dry-activate")) {
				fprintf(stderr, "constel: unknown goal '%s'; expected switch, boot, "
						"test or dry-activate\n",
					optarg);
				return -1;
			}
			a->goal = optarg;
			break;
		case OPT_PARALLEL:
			if (parse_long(optarg, 1, 1024, &a->parallel) < 0) {
				fprintf(stderr, "constel: --parallel takes 1 to 1024, not '%s'\n",
					optarg);
				return -1;
			}
			break;
		case OPT_CONFIRM:
			if (parse_long(optarg, 1, 86400, &a->confirm_timeout) < 0) {
				fprintf(stderr, "constel: --confirm-timeout takes seconds, not '%s'\n",
					optarg);
				return -1;
			}
			break;
		case OPT_NO_MAGIC:
			a->no_magic = true;
			break;
		case OPT_NO_AUTO:
			a->no_auto = true;
			break;
		case OPT_ROLLBACK_FLEET:
			a->rollback_fleet = true;
			break;
		case OPT_DRY_RUN:
			a->dry_run = true;
			break;
		case OPT_BUILD_ON:
			if (strcmp(optarg, "local") && strcmp(optarg, "target")) {
				fprintf(stderr, "constel: --build-on takes local or target\n");
				return -1;
			}
			a->build_on = optarg;
			break;
		case OPT_TO:
			if (parse_long(optarg, 1, 1L << 30, &a->rollback_to) < 0) {
				fprintf(stderr, "constel: --to takes a generation number\n");
				return -1;
			}
			break;
		case OPT_LOG_DIR:
			a->log_dir = optarg;
			break;
		case OPT_REV:
			a->rev = optarg;
			break;
		case OPT_ALLOW_DIRTY:
			a->allow_dirty = true;
			break;
		case OPT_ACTIVATION_TIMEOUT:
			if (parse_long(optarg, 1, 86400, &a->activation_timeout) < 0) {
				fprintf(stderr, "constel: --activation-timeout takes seconds\n");
				return -1;
			}
			break;
		case OPT_HEALTH_TIMEOUT:
			if (parse_long(optarg, 0, 86400, &a->health_timeout) < 0) {
				fprintf(stderr, "constel: --health-timeout takes seconds\n");
				return -1;
			}
			break;
		default:
			return -1;
		}
	}
	for (int i = optind; i < argc; i++)
		strvec_push(&a->patterns, argv[i]);
	return 0;
}

void run_args_release(struct run_args *a)
{
	strvec_release(&a->patterns);
}

char *run_log_dir(const char *requested)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char stamp[32];
	time_t t = time(NULL);
	char *base, *dir, *p;

	if (requested)
		dir = xstrdup(requested);
	else {
		base = state && *state ? xasprintf("%s/constel/runs", state)
				       : xasprintf("%s/.local/state/constel/runs",
						 home && *home ? home : "/tmp");
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", localtime(&t));
		dir = xasprintf("%s/%s-%ld", base, stamp, (long)getpid());
		free(base);
	}
	/* mkdir -p */
	for (p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	mkdir(dir, 0755);
	return dir;
}

/* ---- SIGINT ---- */

static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	if (++interrupts >= 2) {
		static const char msg[] = "\nconstel: interrupted twice: quitting now; hosts "
					  "being activated finish under their watchdogs\n";
		ssize_t n = write(2, msg, sizeof(msg) - 1);

		(void)n;
		_exit(CMD_FAILED);
	}
}

void run_install_sigint(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- progress ---- */

struct view {
	bool live; /* a terminal: redraw one line per host */
	size_t drawn;
	size_t *hosts; /* the selected hosts, in inventory order */
	size_t nhosts;
	int width;
};

static void clock_prefix(char *out, size_t n)
{
	time_t t = time(NULL);

	strftime(out, n, "%H:%M:%S", localtime(&t));
}

static void human_bytes(uint64_t b, char *out, size_t n)
{
	if (b >= (1u << 30))
		snprintf(out, n, "%.1f GiB", (double)b / (1u << 30));
	else if (b >= (1u << 20))
		snprintf(out, n, "%.1f MiB", (double)b / (1u << 20));
	else if (b >= 1024)
		snprintf(out, n, "%.1f KiB", (double)b / 1024);
	else
		snprintf(out, n, "%llu B", (unsigned long long)b);
}

static void view_clear(struct view *v)
{
	if (!v->live || !v->drawn)
		return;
	fprintf(stderr, "\033[%zuA\033[J", v->drawn);
	v->drawn = 0;
}

/*
 * Under the runner's lock. A host's result fields are final once the ready
 * queue says it ended (set under the same lock); before that, only what
 * workers publish under the lock (phase, bytes, start) is read.
 */
static void view_draw(struct view *v, struct runner *r)
{
	size_t counts[6] = { 0 };
	double now = now_seconds();

	if (!v->live)
		return;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < v->nhosts; i++) {
		const struct host_result *res = &r->results[v->hosts[i]];
		enum graph_state st = graph_sched_state(r->sched, v->hosts[i]);
		bool ended = st == GRAPH_DONE || st == GRAPH_FAILED || st == GRAPH_SKIPPED;
		char bytes[32] = "";
		const char *state = ended ? host_status_name(res->status)
				    : res->started > 0 ? "running"
						       : "waiting";

		counts[ended ? res->status : HOST_PENDING]++;
		if (res->bytes)
			human_bytes(res->bytes, bytes, sizeof(bytes));
		fprintf(stderr, "\033[2K  %-*s  %-11s %-9s %10s  %5.0fs\n", v->width,
			r->inv->hosts[v->hosts[i]].name, state, res->phase ? res->phase : "",
			bytes, ended ? res->seconds : res->started > 0 ? now - res->started : 0.0);
	}
	pthread_mutex_unlock(&r->lock);
	fprintf(stderr, "\033[2K  done %zu, unchanged %zu, failed %zu, rolled back %zu, "
			"skipped %zu, in progress or waiting %zu\n",
		counts[HOST_DEPLOYED], counts[HOST_UNCHANGED], counts[HOST_FAILED],
		counts[HOST_ROLLED_BACK], counts[HOST_SKIPPED], counts[HOST_PENDING]);
	v->drawn = v->nhosts + 1;
	fflush(stderr);
}

static void print_events(struct view *v, struct runner *r, struct runner_event *ev, size_t n)
{
	char when[16];

	clock_prefix(when, sizeof(when));
	for (size_t i = 0; i < n; i++) {
		if (ev[i].host == SIZE_MAX)
			fprintf(stderr, "%s constel: %s\n", when, ev[i].text);
		else
			fprintf(stderr, "%s %-*s %s\n", when, v->width,
				r->inv->hosts[ev[i].host].name, ev[i].text);
		free(ev[i].text);
	}
	free(ev);
}

static void print_tail(const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	struct buf b = BUF_INIT(8u << 20);
	char chunk[8192];
	size_t n;

	if (!f)
		return;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	fprintf(stderr, "%s", buf_tail_lines(&b, lines));
	if (b.len && b.data[b.len - 1] != '\n')
		fputc('\n', stderr);
	buf_release(&b);
}

static void print_summary(struct view *v, struct runner *r, const char *what)
{
	fprintf(stderr, "\n%s summary:\n", what);
	for (size_t i = 0; i < v->nhosts; i++) {
		const struct host_result *res = &r->results[v->hosts[i]];
		char gen[32] = "";

		if (res->generation > 0)
			snprintf(gen, sizeof(gen), "gen %ld", res->generation);
		fprintf(stderr, "  %-*s  %-11s %-8s %6.1fs  %s\n", v->width,
			r->inv->hosts[v->hosts[i]].name, host_status_name(res->status), gen,
			res->seconds, res->error ? res->error : res->path ? res->path : "");
	}
	for (size_t i = 0; i < v->nhosts; i++) {
		const struct host_result *res = &r->results[v->hosts[i]];

		if ((res->status != HOST_FAILED && res->status != HOST_ROLLED_BACK) ||
			!res->log_path)
			continue;
		fprintf(stderr, "\n--- %s: last 20 lines of %s ---\n",
			r->inv->hosts[v->hosts[i]].name, res->log_path);
		print_tail(res->log_path, 20);
	}
}

static void print_json(struct runner *r, struct view *v)
{
	json_t *root = json_object(), *hosts = json_array();

	for (size_t i = 0; i < v->nhosts; i++) {
		const struct host_result *res = &r->results[v->hosts[i]];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(r->inv->hosts[v->hosts[i]].name));
		json_object_set_new(o, "status", json_string(host_status_name(res->status)));
		json_object_set_new(o, "phase", json_string(res->phase ? res->phase : ""));
		json_object_set_new(o, "path", res->path ? json_string(res->path) : json_null());
		json_object_set_new(o, "previous",
			res->previous && *res->previous ? json_string(res->previous) : json_null());
		json_object_set_new(o, "generation",
			res->generation > 0 ? json_integer(res->generation) : json_null());
		json_object_set_new(o, "seconds", json_real((double)(long)(res->seconds * 100) / 100));
		json_object_set_new(o, "error", res->error ? json_string(res->error) : json_null());
		json_object_set_new(o, "bytes", json_integer((json_int_t)res->bytes));
		json_object_set_new(o, "sessions", json_integer(res->sessions));
		json_object_set_new(o, "log", res->log_path ? json_string(res->log_path) : json_null());
		json_array_append_new(hosts, o);
	}
	json_object_set_new(root, "result", json_string(runner_ok(r) ? "ok" : "failed"));
	json_object_set_new(root, "hosts", hosts);
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(root);
}

int run_drive(struct runner *r, const struct global_opts *g, const char *what)
{
	struct view v = { 0 };
	const char *no_color = getenv("NO_COLOR");
	bool running = true;
	int ret;

	v.hosts = xcalloc(r->inv->nhosts + 1, sizeof(*v.hosts));
	v.width = 4;
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		if (!r->selected[i])
			continue;
		v.hosts[v.nhosts++] = i;
		if ((int)strlen(r->inv->hosts[i].name) > v.width)
			v.width = (int)strlen(r->inv->hosts[i].name);
	}
	v.live = isatty(2) && !g->json && !(no_color && *no_color) && getenv("TERM") &&
		 strcmp(getenv("TERM"), "dumb");
	if (r->opts.log_dir)
		fprintf(stderr, "constel: logs in %s\n", r->opts.log_dir);
	for (;;) {
		struct runner_event *ev;
		size_t n;

		if (interrupts)
			runner_stop(r);
		running = runner_wait(r, 250, &ev, &n);
		view_clear(&v);
		print_events(&v, r, ev, n);
		if (!running)
			break;
		view_draw(&v, r);
	}
	runner_finish(r);
	print_summary(&v, r, what);
	if (g->json)
		print_json(r, &v);
	ret = runner_ok(r) ? CMD_OK : CMD_FAILED;
	fprintf(stderr, "%s %s\n", what, ret == CMD_OK ? "succeeded" : "failed");
	free(v.hosts);
	return ret;
}
