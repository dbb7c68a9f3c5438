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
 * parallel hosts never interleaves mid-line.
 *
 * Lifecycle: runner_init() with the options, runner_start(), then
 * runner_wait() until it returns false, then runner_finish() (fleet
 * rollback, if asked), read the results, runner_release().
 */
#ifndef CONSTEL_RUNNER_H
#define CONSTEL_RUNNER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "deploy/build.h"
#include "deploy/record.h"
#include "graph/graph.h"
#include "inventory/inventory.h"

enum runner_op {
	RUNNER_DEPLOY,	 /* activate the built system */
	RUNNER_ROLLBACK, /* switch back to a generation */
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
	long confirm_timeout;	  /* 0: no magic rollback */
	long activation_timeout;
	long health_timeout;	  /* 0: no health gate */
	long connect_timeout;
	bool auto_rollback;
	bool rollback_fleet;
	long rollback_to;	  /* RUNNER_ROLLBACK: generation, 0 for the previous one */
	bool repair;		  /* RUNNER_ROLLBACK: only repair an interrupted run */
	const char *ssh_config;
	const char *log_dir;	  /* where the per-host logs go */
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
	size_t host;
	double at; /* seconds since the run started */
	char *text;
};

struct runner {
	const struct inventory *inv;
	const struct graph *graph;
	const bool *selected;
	struct build_set *builds; /* NULL for rollback */
	struct runner_opts opts;
	struct host_result *results; /* one per inventory host */
	char *runid;
	double t0;

	pthread_mutex_t lock;
	pthread_cond_t wake;   /* workers: a host may be ready */
	pthread_cond_t events_cond;
	struct graph_sched *sched;
	pthread_t *threads;
	size_t nthreads;
	size_t active;	      /* workers still running */
	size_t *local_hosts;  /* ready hosts that run locally, held back till last */
	size_t nlocal;
	bool stopping;	      /* SIGINT: start no new host */
	atomic_bool cancel;   /* SIGINT: abandon commands that only wait or ask */
	struct runner_event *events;
	size_t nevents, alloc_events;
};

/*
 * The selected providers `host` still waits for, as "a, b" appended to out
 * (nothing when it waits for none). Under r->lock, after runner_start().
 */
void runner_waiting_for(const struct runner *r, size_t host, struct buf *out);

void runner_init(struct runner *r, const struct inventory *inv, const struct graph *g,
	const bool *selected, struct build_set *builds, const struct runner_opts *opts);
/* Marks hosts whose build failed as failed (their dependents skipped), starts the workers. */
int runner_start(struct runner *r);
/*
 * Waits up to timeout_ms for events; moves them into *events (caller frees
 * each text and the array) and returns whether the run is still going.
 */
bool runner_wait(struct runner *r, int timeout_ms, struct runner_event **events, size_t *n);
/* Asks the run to start no further host (SIGINT). Thread-safe, signal-unsafe. */
void runner_stop(struct runner *r);
/* Joins the workers; with rollback_fleet and a failure, restores changed hosts. */
void runner_finish(struct runner *r);
/* True when every selected host is deployed or unchanged. */
bool runner_ok(const struct runner *r);
void runner_release(struct runner *r);

const char *host_status_name(enum host_status s);

#endif
