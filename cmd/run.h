/*
 * cmd/run.h: what deploy, build and rollback share: their common options,
 * and driving a deploy/runner while one thread prints its progress.
 */
#ifndef CONSTEL_CMD_RUN_H
#define CONSTEL_CMD_RUN_H

#include "cmd/cmd.h"
#include "deploy/runner.h"

struct run_args {
	struct strvec patterns;
	bool with_deps;
	const char *goal;
	long parallel; /* -1: from the inventory */
	long confirm_timeout;
	long activation_timeout; /* -1: from the inventory */
	long health_timeout;	 /* -1: from the inventory */
	bool no_magic;
	bool no_auto;
	bool rollback_fleet;
	bool dry_run;
	const char *build_on;
	long rollback_to;
	bool repair; /* rollback --repair: only what an interrupted run left */
	bool reboot; /* deploy --reboot */
	long reboot_timeout;
	bool require_healthy;
	bool ask_become_pass;
	bool no_substitute;
	bool allow_emulation;
	char *become_pass; /* read by run_runner_opts() with ask_become_pass; wiped on release */
	const char *log_dir;
	const char *rev;
	bool allow_dirty;
	struct cmd_eval_args eval;
};

/*
 * The options of deploy, build and rollback. They share struct run_args,
 * but each lists in its table only the options it honours, so that
 * `build --goal` or `rollback --dry-run` are refused, not ignored.
 */
enum {
	RUN_GOAL = CMD_OPT_OWN,
	RUN_CONFIRM_TIMEOUT,
	RUN_NO_MAGIC,
	RUN_NO_AUTO,
	RUN_ROLLBACK_FLEET,
	RUN_DRY_RUN,
	RUN_BUILD_ON,
	RUN_TO,
	RUN_REPAIR,
	RUN_LOG_DIR,
	RUN_REV,
	RUN_ALLOW_DIRTY,
	RUN_ACTIVATION_TIMEOUT,
	RUN_HEALTH_TIMEOUT,
	RUN_REBOOT,
	RUN_REBOOT_TIMEOUT,
	RUN_REQUIRE_HEALTHY,
	RUN_ASK_BECOME_PASS,
	RUN_NO_SUBSTITUTE,
	RUN_ALLOW_EMULATION,
};

/* Seconds a rebooted host has to come back, without --reboot-timeout. */
#define RUN_REBOOT_TIMEOUT_DEFAULT 300

extern const char *const run_build_places[]; /* local, target */

#define RUN_OPTION_GOAL                                                                            \
	{                                                                                          \
		.name = "goal", .kind = OPT_CHOICE, .choices = inventory_goals, .id = RUN_GOAL,    \
		.help = "what to activate with (default: each host's goal, else switch)"           \
	}
#define RUN_OPTION_PARALLEL                                                                        \
	CMD_OPTION_PARALLEL("hosts worked on at once (default: the inventory's, else 10)")
#define RUN_OPTION_CONFIRM_TIMEOUT                                                                 \
	{                                                                                          \
		.name = "confirm-timeout", .kind = OPT_NUMBER, .arg = "S", .min = 1, .max = 86400, \
		.id = RUN_CONFIRM_TIMEOUT,                                                         \
		.help = "seconds a host waits for the confirmation before restoring itself"        \
	}
#define RUN_OPTION_NO_MAGIC                                                                        \
	{                                                                                          \
		.name = "no-magic-rollback", .kind = OPT_FLAG, .id = RUN_NO_MAGIC,                 \
		.help = "do not wait for a confirmation over a new SSH session"                    \
	}
#define RUN_OPTION_NO_AUTO                                                                         \
	{                                                                                          \
		.name = "no-auto-rollback", .kind = OPT_FLAG, .id = RUN_NO_AUTO,                   \
		.help = "leave a host whose activation or health check failed as it is"            \
	}
#define RUN_OPTION_ACTIVATION_TIMEOUT                                                              \
	{                                                                                          \
		.name = "activation-timeout", .kind = OPT_NUMBER, .arg = "S", .min = 1,            \
		.max = 86400, .id = RUN_ACTIVATION_TIMEOUT,                                        \
		.help = "seconds switch-to-configuration may take (default: the inventory's, "     \
			"else 600)"                                                                \
	}
#define RUN_OPTION_HEALTH_TIMEOUT                                                                  \
	{                                                                                          \
		.name = "health-timeout", .kind = OPT_NUMBER, .arg = "S", .min = 0, .max = 86400,  \
		.id = RUN_HEALTH_TIMEOUT,                                                          \
		.help = "seconds for the health checks to pass; 0 skips them"                      \
	}
#define RUN_OPTION_REBOOT_TIMEOUT                                                                  \
	{                                                                                          \
		.name = "reboot-timeout", .kind = OPT_NUMBER, .arg = "S", .min = 1, .max = 86400,  \
		.id = RUN_REBOOT_TIMEOUT,                                                          \
		.help = "seconds a rebooted host has to come back (default 300)"                   \
	}
#define RUN_OPTION_REQUIRE_HEALTHY                                                                 \
	{                                                                                          \
		.name = "require-healthy", .kind = OPT_FLAG, .id = RUN_REQUIRE_HEALTHY,            \
		.help = "skip a host whose system is degraded before the run"                      \
	}
#define RUN_OPTION_BUILD_ON                                                                        \
	{                                                                                          \
		.name = "build-on", .kind = OPT_CHOICE, .choices = run_build_places,               \
		.id = RUN_BUILD_ON, .help = "where to build, overriding the inventory's build:"    \
	}
#define RUN_OPTION_ASK_BECOME_PASS                                                                 \
	{                                                                                          \
		.name = "ask-become-pass", .kind = OPT_FLAG, .id = RUN_ASK_BECOME_PASS,            \
		.help = "ask once for the password sudo wants on hosts that ask one"               \
	}
#define RUN_OPTION_NO_SUBSTITUTE                                                                   \
	{                                                                                          \
		.name = "no-substitute", .kind = OPT_FLAG, .id = RUN_NO_SUBSTITUTE,                \
		.help = "push every path a host lacks; do not let it fetch from its substituters"  \
	}
#define RUN_OPTION_ALLOW_EMULATION                                                                 \
	{                                                                                          \
		.name = "allow-emulation", .kind = OPT_FLAG, .id = RUN_ALLOW_EMULATION,            \
		.help = "build here under emulation even where builders: names a native builder"   \
	}
#define RUN_OPTION_LOG_DIR                                                                         \
	{                                                                                          \
		.name = "log-dir", .kind = OPT_STRING, .arg = "DIR", .id = RUN_LOG_DIR,            \
		.help = "where the logs go (default ~/.local/state/constel/runs/TIME-PID)"         \
	}
#define RUN_OPTION_REV                                                                             \
	{                                                                                          \
		.name = "rev", .kind = OPT_STRING, .arg = "REF", .id = RUN_REV,                    \
		.help = "build this commit of the inventory's git repository, not the working "    \
			"tree"                                                                     \
	}
#define RUN_OPTION_ALLOW_DIRTY                                                                     \
	{                                                                                          \
		.name = "allow-dirty", .kind = OPT_FLAG, .id = RUN_ALLOW_DIRTY,                    \
		.help = "deploy a working tree with uncommitted changes"                           \
	}

/* Fills `a` from parsed options of deploy, build or rollback; run_args_release() frees. */
void run_args_init(struct run_args *a, const struct opts *o);
void run_args_release(struct run_args *a);

/* The runner's options from the command line, the inventory's defaults and the globals. */
/* With --ask-become-pass, first reads the password (a->become_pass). */
void run_runner_opts(struct runner_opts *o, const struct inventory *inv, struct run_args *a,
	const struct global_opts *g, const char *log_dir);

/*
 * Runs the runner to its end, printing progress (live on a terminal, plain
 * lines otherwise) to stderr, then the summary, and the JSON report on
 * stdout with --json. Returns the exit status.
 */
int run_drive(struct runner *r, const struct inventory *inv, const bool *selected,
	const char *log_dir, const struct global_opts *g, const char *what);

/*
 * rollback and reboot: a run of `op` on the named hosts (at least one;
 * `verb` says what is done to them, for the usage error). When set,
 * prepare() gets the runner's options once the inventory is loaded, and
 * finish() is called after the run.
 */
struct run_named_hooks {
	void (*prepare)(void *data, struct runner_opts *o, const struct inventory *inv);
	void (*finish)(void *data);
	void *data;
};
int run_named_hosts(const struct cmd *self, const struct opts *opts, const struct global_opts *g,
	enum runner_op op, const char *verb, const struct run_named_hooks *hooks);

/* Sets up SIGINT so that the first stops the run and the second exits. */
void run_install_sigint(void);

/*
 * The run's log directory, created private (0700, ours, not a symlink):
 * `requested`, else a new one under state_dir()/runs; caller frees. NULL
 * with the error set when it cannot be made.
 */
char *run_log_dir(const char *requested);

#endif
