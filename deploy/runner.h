/*
 * deploy/runner.h: the parallel, dependency-ordered runner.
 *
 * A run takes the selected hosts of an inventory and, with a pool of
 * `parallel` worker threads, carries each one through its steps: connect
 * (one SSH session), copy the closure, activate under the host's watchdog,
 * confirm over a new session, health gate, record. A host starts as soon
 * as every selected host it depends on is done (graph_sched), not wave by
 * wave; the dependents of a failed host are skipped, unrelated hosts go on.
 * A host marked `local` is activated without SSH, after every other host.
 *
 * Workers never print. Each host's output goes to its own log file under
 * the run's directory and, as short event lines, to a queue the caller's
 * thread drains with runner_wait(): that one thread prints, so output of
 * parallel hosts never interleaves mid-line. While the run goes on, the
 * caller sees the hosts only through runner_snapshot(); a host's result
 * (runner_result()) is final once runner_finish() returned, and the
 * on_result callback gets each one as soon as it is.
 *
 * With rollback_fleet, once every host has ended and one failed, the same
 * pool restores every host this run changed, one at a time, consumers
 * first; each restored host's result replaces its earlier one (and goes
 * through on_result again).
 *
 * Lifecycle: runner_new() with the options, runner_start(), then
 * runner_wait() until it returns false, then runner_finish(), read the
 * results, runner_free(). The code: deploy/runner.c schedules (the pool's
 * next, run and finished), deploy/steps.c carries one host through its
 * steps, deploy/activate.c follows one activation on the host.
 */
#ifndef CONSTEL_RUNNER_H
#define CONSTEL_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "deploy/build.h"
#include "deploy/record.h"
#include "graph/graph.h"
#include "inventory/inventory.h"

struct host_io_ops;

enum runner_op {
	RUNNER_DEPLOY,	 /* activate the built system */
	RUNNER_ROLLBACK, /* switch back to a generation */
	RUNNER_REBOOT,	 /* reboot, wait for the host, health gate */
};

enum host_status {
	HOST_PENDING,
	HOST_DEPLOYED,
	HOST_UNCHANGED,
	HOST_FAILED,
	HOST_ROLLED_BACK,
	HOST_SKIPPED,
	HOST_RESTORE_FAILED, /* failed, and restoring the previous system failed too */
	HOST_NSTATUS,
};

struct host_result;

struct runner_opts {
	enum runner_op op;
	const char *goal;	  /* NULL: each host's own */
	long parallel;
	long confirm_timeout;	  /* 0: no magic rollback; -1: each host's */
	long activation_timeout;
	long health_timeout;	  /* 0: no health gate; -1: each host's */
	long connect_timeout;
	bool reboot;		  /* deploy (goal boot): reboot into the new system */
	long reboot_timeout;	  /* seconds a rebooted host has to come back */
	bool require_healthy;	  /* skip a host already degraded before the deploy */
	bool auto_rollback;
	bool rollback_fleet;
	long rollback_to;	  /* RUNNER_ROLLBACK: generation, 0 for the previous one */
	bool repair;		  /* RUNNER_ROLLBACK: only repair an interrupted run */
	const char *ssh_config;
	const char *log_dir;	  /* where the per-host logs go */
	/*
	 * deploy: evaluate and build during the run (deploy/stream.c): a host
	 * starts once its system is built and its providers are done, while
	 * others still evaluate. Without it, `builds` must be built already.
	 */
	bool stream;
	bool no_substitute; /* --no-substitute: push every missing path, whatever `substitute:` says */
	/* --ask-become-pass: fed to `sudo -S` on hosts whose sudo asks for it (borrowed) */
	const char *become_pass;
	struct buf *build_log; /* stream: what the evaluation and the builds said */
	/* how hosts are reached; NULL: each its own (deploy/host_io.h). Tests pass a fake. */
	const struct host_io_ops *io_ops;
	struct record_info record; /* what is written on each deployed host */
	/*
	 * Called by a worker, without any lock held, when a host's result is
	 * final (e.g. to append a git note); may run on several threads at once.
	 */
	void (*on_result)(void *data, size_t host, const struct host_result *res);
	void *data;
};

struct host_result {
	enum host_status status;
	const char *phase;   /* the step reached: static string */
	char *path;	     /* the system deployed (or switched back to) */
	char *previous;	     /* what ran before */
	long generation;     /* the profile generation now, -1 unknown */
	long prev_generation;
	bool changed;	     /* this run activated something new on the host */
	const char *did;     /* what its record says: deployed, rolled-back, rollback; or NULL */
	double seconds;
	double started;
	char *error;
	char *log_path;
	uint64_t bytes;	     /* copied */
	size_t paths_copied;
	unsigned sessions;   /* SSH sessions opened for this host */
};

struct runner_event {
	size_t host; /* SIZE_MAX: the run itself */
	double at;   /* seconds since the run started */
	char *text;
};

/* What the progress view shows of one host while the run goes on. */
enum runner_host_state { RUNNER_WAITING, RUNNER_RUNNING, RUNNER_ENDED };
struct runner_host_view {
	enum runner_host_state state;
	enum host_status status; /* RUNNER_ENDED only */
	const char *phase;	 /* static string */
	uint64_t bytes;
	double seconds;	  /* so far, or in all once ended */
	char *waiting_for; /* RUNNER_WAITING: "a, b", the providers it waits for; or NULL */
};

struct runner;

/*
 * `inv`, `g`, `selected` and `builds` (NULL for rollback) are borrowed
 * until runner_free().
 */
struct runner *runner_new(const struct inventory *inv, const struct graph *g,
	const bool *selected, struct build_set *builds, const struct runner_opts *opts);
/* Marks hosts whose build failed as failed (their dependents skipped), starts the workers. */
int runner_start(struct runner *r);
/*
 * Waits up to timeout_ms for events; moves them into *events (caller frees
 * each text and the array) and returns whether the run is still going.
 */
bool runner_wait(struct runner *r, int timeout_ms, struct runner_event **events, size_t *n);
/* One consistent view of every inventory host into out[inv->nhosts]; free with runner_views_release. */
void runner_snapshot(struct runner *r, struct runner_host_view *out);
void runner_views_release(struct runner_host_view *v, size_t n);
/* stream: how many hosts are evaluated, of how many; false when nothing is evaluated now. */
bool runner_eval_progress(struct runner *r, size_t *done, size_t *total);
/* Asks the run to start no further host (SIGINT). Thread-safe, signal-unsafe. */
void runner_stop(struct runner *r);
/* Waits for the end; hosts never started become skipped. */
void runner_finish(struct runner *r);
/* After runner_finish(): host `h`'s result. */
const struct host_result *runner_result(const struct runner *r, size_t h);
/* The goal host `h` is activated with. */
const char *runner_goal(const struct runner *r, size_t h);
/* True when every selected host is deployed or unchanged. */
bool runner_ok(const struct runner *r);
void runner_free(struct runner *r);

const char *host_status_name(enum host_status s);

#endif
