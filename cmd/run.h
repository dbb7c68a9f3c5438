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
	const char *log_dir;
	const char *rev;
	bool allow_dirty;
};

/* Options taken by deploy, build and rollback (getopt_long values start at 1000). */
int run_parse_args(int argc, char **argv, struct run_args *a);
void run_args_release(struct run_args *a);

/*
 * Runs the runner to its end, printing progress (live on a terminal, plain
 * lines otherwise) to stderr, then the summary, and the JSON report on
 * stdout with --json. Returns the exit status.
 */
int run_drive(struct runner *r, const struct global_opts *g, const char *what);

/* Sets up SIGINT so that the first stops the run and the second exits. */
void run_install_sigint(void);

/* The run's log directory (created); caller frees. */
char *run_log_dir(const char *requested);

#endif
