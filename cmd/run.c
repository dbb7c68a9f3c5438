/* Driving a run: options, live progress, summary, JSON report, SIGINT. */
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cmd/run.h"

const char *const run_build_places[] = {"local", "target", NULL};

void run_args_init(struct run_args *a, const struct opts *o)
{
	memset(a, 0, sizeof(*a));
	strvec_init(&a->patterns);
	a->parallel = -1;
	a->confirm_timeout = -1;
	a->activation_timeout = -1;
	a->health_timeout = -1;
	for (size_t i = 0; i < o->nr; i++) {
		const struct opts_value *v = &o->v[i];

		if (cmd_eval_arg(&a->eval, v))
			continue;
		switch (v->opt->id) {
		case CMD_OPT_ON:
			cmd_split_list(&a->patterns, v->arg);
			break;
		case CMD_OPT_WITH_DEPS:
			a->with_deps = true;
			break;
		case CMD_OPT_PARALLEL:
			a->parallel = v->num;
			break;
		case RUN_GOAL:
			a->goal = v->arg;
			break;
		case RUN_CONFIRM_TIMEOUT:
			a->confirm_timeout = v->num;
			break;
		case RUN_NO_MAGIC:
			a->no_magic = true;
			break;
		case RUN_NO_AUTO:
			a->no_auto = true;
			break;
		case RUN_ROLLBACK_FLEET:
			a->rollback_fleet = true;
			break;
		case RUN_DRY_RUN:
			a->dry_run = true;
			break;
		case RUN_BUILD_ON:
			a->build_on = v->arg;
			break;
		case RUN_TO:
			a->rollback_to = v->num;
			break;
		case RUN_REPAIR:
			a->repair = true;
			break;
		case RUN_LOG_DIR:
			a->log_dir = v->arg;
			break;
		case RUN_REV:
			a->rev = v->arg;
			break;
		case RUN_ALLOW_DIRTY:
			a->allow_dirty = true;
			break;
		case RUN_ACTIVATION_TIMEOUT:
			a->activation_timeout = v->num;
			break;
		case RUN_HEALTH_TIMEOUT:
			a->health_timeout = v->num;
			break;
		case RUN_REBOOT:
			a->reboot = true;
			break;
		case RUN_REBOOT_TIMEOUT:
			a->reboot_timeout = v->num;
			break;
		case RUN_REQUIRE_HEALTHY:
			a->require_healthy = true;
			break;
		case RUN_ASK_BECOME_PASS:
			a->ask_become_pass = true;
			break;
		case RUN_NO_SUBSTITUTE:
			a->no_substitute = true;
			break;
		case RUN_ALLOW_EMULATION:
			a->allow_emulation = true;
			break;
		default:
			assert(!"an option of the table without a case");
		}
	}
	for (size_t i = 0; i < o->nargs; i++)
		strvec_push(&a->patterns, o->args[i]);
}

void run_args_release(struct run_args *a)
{
	strvec_release(&a->patterns);
	if (a->become_pass) {
		explicit_bzero(a->become_pass, strlen(a->become_pass));
		free(a->become_pass);
		a->become_pass = NULL;
	}
}

/*
 * One line, the become password: from the terminal without echo, else
 * (a script) from standard input. Never logged, sent only on the standard
 * input of `sudo -S` on the hosts that ask for it (docs/become.md).
 */
static char *read_become_pass(void)
{
	FILE *tty = fopen("/dev/tty", "r+");
	FILE *in = tty ? tty : stdin;
	struct termios old, quiet;
	bool echo_off = false;
	char line[1024] = "";
	size_t len;

	if (tty) {
		fputs("constel: become password: ", tty);
		fflush(tty);
		if (tcgetattr(fileno(tty), &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			echo_off = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
		}
	}
	if (!fgets(line, sizeof(line), in))
		line[0] = '\0';
	if (echo_off)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	if (tty) {
		fputc('\n', tty);
		fclose(tty);
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	{
		char *pass = xstrdup(line);

		explicit_bzero(line, sizeof(line));
		return pass;
	}
}

void run_runner_opts(struct runner_opts *o, const struct inventory *inv, struct run_args *a,
	const struct global_opts *g, const char *log_dir)
{
	memset(o, 0, sizeof(*o));
	if (a->ask_become_pass && !a->become_pass)
		a->become_pass = read_become_pass();
	o->become_pass = a->become_pass;
	o->no_substitute = a->no_substitute;
	o->op = RUNNER_DEPLOY;
	o->goal = a->goal;
	o->parallel = a->parallel > 0 ? a->parallel : inv->defaults.parallel;
	/* -1: each host's own (its confirm_timeout:, else the defaults') */
	o->confirm_timeout = a->no_magic ? 0 : a->confirm_timeout > 0 ? a->confirm_timeout : -1;
	o->activation_timeout = a->activation_timeout > 0 ? a->activation_timeout
							  : inv->defaults.activation_timeout;
	o->health_timeout = a->health_timeout >= 0 ? a->health_timeout : -1;
	o->connect_timeout = inv->defaults.connect_timeout;
	o->auto_rollback = !a->no_auto;
	o->rollback_fleet = a->rollback_fleet;
	o->rollback_to = a->rollback_to;
	o->repair = a->repair;
	o->reboot = a->reboot;
	o->reboot_timeout = a->reboot_timeout > 0 ? a->reboot_timeout : RUN_REBOOT_TIMEOUT_DEFAULT;
	o->require_healthy = a->require_healthy;
	o->ssh_config = g->ssh_config ? g->ssh_config : inv->defaults.ssh_config;
	o->log_dir = log_dir;
}

int run_named_hosts(const struct cmd *self, const struct opts *opts, const struct global_opts *g,
	enum runner_op op, const char *verb, const struct run_named_hooks *hooks)
{
	struct run_args a;
	struct runner_opts o;
	struct runner *r;
	struct inventory *inv = NULL;
	struct graph *graph = NULL;
	bool *selected = NULL;
	char *log_dir = NULL;
	int ret;

	run_args_init(&a, opts);
	if (!a.patterns.nr) {
		cmd_error("%s needs the hosts to %s (names, globs or @tags)", self->name, verb);
		ret = cmd_usage(self);
		goto out;
	}
	if ((ret = cmd_load_selection(g, &a.patterns, false, &inv, &graph, &selected)) != CMD_OK)
		goto out;
	if (!(log_dir = run_log_dir(a.log_dir))) {
		ret = cmd_error("%s", error_last());
		goto out;
	}
	run_runner_opts(&o, inv, &a, g, log_dir);
	o.op = op;
	if (hooks && hooks->prepare)
		hooks->prepare(hooks->data, &o, inv);
	r = runner_new(inv, graph, selected, NULL, &o);
	run_install_sigint();
	if (runner_start(r) < 0)
		ret = cmd_error("%s", error_last());
	else
		ret = run_drive(r, inv, selected, log_dir, g, self->name);
	runner_free(r);
	if (hooks && hooks->finish)
		hooks->finish(hooks->data);
out:
	free(selected);
	free(log_dir);
	graph_free(graph);
	inventory_free(inv);
	run_args_release(&a);
	return ret;
}

char *run_log_dir(const char *requested)
{
	char stamp[32], *base = NULL, *dir;
	time_t t = time(NULL);

	if (requested) {
		dir = xstrdup(requested);
	} else {
		if (!(base = state_dir()))
			return NULL;
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", localtime(&t));
		dir = xasprintf("%s/runs/%s-%ld", base, stamp, (long)getpid());
		free(base);
	}
	if (dir_make_private(dir) < 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

/* ---- SIGINT ---- */

static volatile sig_atomic_t interrupts;

/*
 * One request to stop can arrive as two signals from one sender: timeout(1)
 * signals its child and then its own process group, and a supervisor may
 * signal the main process and then the whole group. A repeat of the first
 * signal by the same process within 250 ms is that request again, not a
 * second one (a person or a script that means two is slower than that). A
 * terminal's ^C comes from the kernel (no sender), so two are always two.
 */
static bool same_request(int sig, const siginfo_t *si)
{
	/* The handler blocks both signals, so these are never raced. */
	static int first_sig;
	static pid_t first_sender;
	static struct timespec first_at;
	struct timespec now;
	long ms;

	if (si->si_code != SI_USER || si->si_pid <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (interrupts == 0) {
		first_sig = sig;
		first_sender = si->si_pid;
		first_at = now;
		return false;
	}
	ms = (now.tv_sec - first_at.tv_sec) * 1000 + (now.tv_nsec - first_at.tv_nsec) / 1000000;
	return sig == first_sig && si->si_pid == first_sender && ms < 250;
}

static void on_sigint(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (same_request(sig, si))
		return;
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
	sa.sa_sigaction = on_sigint;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- progress ---- */

struct view {
	bool live; /* a terminal: redraw one line per host */
	size_t drawn;
	const struct inventory *inv;
	size_t *hosts; /* the selected hosts, in inventory order */
	size_t nhosts;
	struct runner_host_view *now; /* one per inventory host */
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

static void view_draw(struct view *v, struct runner *r)
{
	size_t counts[HOST_NSTATUS] = {0}, evaluated, to_evaluate;

	if (!v->live)
		return;
	runner_snapshot(r, v->now);
	for (size_t i = 0; i < v->nhosts; i++) {
		const struct runner_host_view *h = &v->now[v->hosts[i]];
		char bytes[32] = "";
		const char *state = h->state == RUNNER_ENDED	 ? host_status_name(h->status)
				    : h->state == RUNNER_RUNNING ? "running"
								 : "waiting";

		counts[h->status]++;
		if (h->bytes)
			human_bytes(h->bytes, bytes, sizeof(bytes));
		fprintf(stderr, "\033[2K  %-*s  %-11s %-9s %10s  %5.0fs%s%s\n", v->width,
			v->inv->hosts[v->hosts[i]].name, state, h->phase ? h->phase : "", bytes,
			h->seconds, h->waiting_for ? "  for " : "",
			h->waiting_for ? h->waiting_for : "");
	}
	runner_views_release(v->now, v->inv->nhosts);
	if (runner_eval_progress(r, &evaluated, &to_evaluate))
		fprintf(stderr, "\033[2K  evaluated %zu/%zu\n", evaluated, to_evaluate);
	fprintf(stderr,
		"\033[2K  done %zu, unchanged %zu, failed %zu, rolled back %zu, "
		"skipped %zu, in progress or waiting %zu\n",
		counts[HOST_DEPLOYED], counts[HOST_UNCHANGED],
		counts[HOST_FAILED] + counts[HOST_RESTORE_FAILED], counts[HOST_ROLLED_BACK],
		counts[HOST_SKIPPED], counts[HOST_PENDING]);
	v->drawn = v->nhosts + 1 + (to_evaluate > 0);
	fflush(stderr);
}

static void print_events(struct view *v, struct runner_event *ev, size_t n)
{
	char when[16];

	clock_prefix(when, sizeof(when));
	for (size_t i = 0; i < n; i++) {
		if (ev[i].host == SIZE_MAX)
			fprintf(stderr, "%s constel: %s\n", when, ev[i].text);
		else
			fprintf(stderr, "%s %-*s %s\n", when, v->width,
				v->inv->hosts[ev[i].host].name, ev[i].text);
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
		const struct host_result *res = runner_result(r, v->hosts[i]);
		char gen[32] = "";

		if (res->generation > 0)
			snprintf(gen, sizeof(gen), "gen %ld", res->generation);
		fprintf(stderr, "  %-*s  %-11s %-8s %6.1fs  %s\n", v->width,
			v->inv->hosts[v->hosts[i]].name, host_status_name(res->status), gen,
			res->seconds,
			res->error  ? res->error
			: res->path ? res->path
				    : "");
	}
	for (size_t i = 0; i < v->nhosts; i++) {
		const struct host_result *res = runner_result(r, v->hosts[i]);
		const char *goal = runner_goal(r, v->hosts[i]);
		/* dry-activate's whole point is what it says it would do */
		bool dry = res->status == HOST_DEPLOYED && goal && !strcmp(goal, "dry-activate");

		if ((res->status != HOST_FAILED && res->status != HOST_ROLLED_BACK &&
			    res->status != HOST_RESTORE_FAILED && !dry) ||
			!res->log_path)
			continue;
		fprintf(stderr, "\n--- %s: last 20 lines of %s ---\n",
			v->inv->hosts[v->hosts[i]].name, res->log_path);
		print_tail(res->log_path, 20);
	}
}

static void print_json(struct runner *r, struct view *v)
{
	json_t *root = json_object(), *hosts = json_array();

	for (size_t i = 0; i < v->nhosts; i++) {
		const struct host_result *res = runner_result(r, v->hosts[i]);
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(v->inv->hosts[v->hosts[i]].name));
		json_object_set_new(o, "status", json_string(host_status_name(res->status)));
		json_object_set_new(o, "phase", json_string(res->phase ? res->phase : ""));
		json_object_set_new(o, "path", cmd_json_text(res->path));
		json_object_set_new(o, "previous",
			res->previous && *res->previous ? cmd_json_text(res->previous)
							: json_null());
		json_object_set_new(o, "generation",
			res->generation > 0 ? json_integer(res->generation) : json_null());
		json_object_set_new(o, "seconds", cmd_json_seconds(res->seconds));
		json_object_set_new(o, "error", cmd_json_text(res->error));
		json_object_set_new(o, "bytes", json_integer((json_int_t)res->bytes));
		json_object_set_new(o, "sessions", json_integer(res->sessions));
		json_object_set_new(
			o, "log", res->log_path ? json_string(res->log_path) : json_null());
		json_array_append_new(hosts, o);
	}
	json_object_set_new(root, "result", json_string(runner_ok(r) ? "ok" : "failed"));
	json_object_set_new(root, "hosts", hosts);
	json_dumpf(root, stdout, CMD_JSON_FLAGS);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(root);
}

int run_drive(struct runner *r, const struct inventory *inv, const bool *selected,
	const char *log_dir, const struct global_opts *g, const char *what)
{
	struct view v = {0};
	const char *no_color = getenv("NO_COLOR");
	bool running = true;
	int ret;

	v.inv = inv;
	v.hosts = xcalloc(inv->nhosts + 1, sizeof(*v.hosts));
	v.now = xcalloc(inv->nhosts + 1, sizeof(*v.now));
	v.width = 4;
	for (size_t i = 0; i < inv->nhosts; i++) {
		if (!selected[i])
			continue;
		v.hosts[v.nhosts++] = i;
		if ((int)strlen(inv->hosts[i].name) > v.width)
			v.width = (int)strlen(inv->hosts[i].name);
	}
	v.live = isatty(2) && !g->json && !(no_color && *no_color) && getenv("TERM") &&
		 strcmp(getenv("TERM"), "dumb");
	if (log_dir)
		fprintf(stderr, "constel: logs in %s\n", log_dir);
	for (;;) {
		struct runner_event *ev;
		size_t n;

		if (interrupts)
			runner_stop(r);
		running = runner_wait(r, 250, &ev, &n);
		view_clear(&v);
		print_events(&v, ev, n);
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
	free(v.now);
	return ret;
}
