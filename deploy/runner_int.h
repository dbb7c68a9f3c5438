/*
 * deploy/runner_int.h: what the runner's scheduling (runner.c) and its
 * per-host steps (steps.c, activate.c) share. Not for cmd/.
 *
 * Locking: the pool's lock guards the published results, the schedule and
 * the event queue. A worker works on its host's own `work` result, which
 * nobody else touches; the pool's finished() publishes it under the lock.
 * While a host runs, only its phase, bytes and start are published
 * (runner_publish_*), for the progress view.
 */
#ifndef CONSTEL_RUNNER_INT_H
#define CONSTEL_RUNNER_INT_H

#include <stdatomic.h>
#include <stdio.h>

#include "common/pool.h"
#include "deploy/host.h"
#include "deploy/host_io.h"
#include "deploy/runner.h"

/* Remote answers are small; anything bigger is cut (and says so). */
#define ANSWER_MAX     (256u << 10)
#define SSH_OP_TIMEOUT 20
/* Wall-clock limit of the short remote commands (seconds). */
#define QUERY_TIMEOUT 30

/* Where a host's system is, when the run evaluates and builds as it goes (deploy/stream.c). */
enum stream_state {
	STREAM_EVALUATING, /* not evaluated yet */
	STREAM_QUEUED,	   /* evaluated, waiting for its group's builder */
	STREAM_BUILDING,
	STREAM_READY,	   /* built (or to be built on the host): it may start */
	STREAM_FAILED,	   /* its evaluation or build failed: the host failed */
};

struct stream_builder {
	struct runner *r;
	size_t group; /* the index of its group's first item */
	pthread_t thread;
};

enum runner_phase {
	PHASE_HOSTS,	/* hosts are handed out as they become ready */
	PHASE_ROLLBACK, /* --rollback-fleet: changed hosts restored, one at a time */
	PHASE_DONE,
};

struct runner {
	const struct inventory *inv;
	const struct graph *graph;
	const bool *selected;
	struct build_set *builds; /* NULL for rollback */
	struct runner_opts opts;
	char *runid;
	double t0;
	struct pool pool;

	/* under the pool's lock */
	struct host_result *results; /* published, one per inventory host */
	struct graph_sched *sched;
	enum runner_phase phase;
	size_t *held;		     /* ready local hosts, held back till last */
	size_t nheld;
	size_t *rb_order;	     /* PHASE_ROLLBACK: hosts to restore, consumers first */
	size_t rb_n, rb_next;
	bool rb_running;
	bool stopping;		     /* SIGINT: start no new host */
	struct runner_event *events;
	size_t nevents, alloc_events;

	/* streaming (opts.stream): evaluation and builds go on while hosts deploy */
	struct eval *eval;
	enum stream_state *stream;   /* per inventory host, under the lock */
	size_t *parked;		     /* ready hosts whose system is not built yet */
	size_t nparked;
	struct stream_builder *builders; /* one per build group */
	size_t nbuilders;
	bool stream_over;	     /* the hosts are done: builders stop */

	const char *hostpkg;	     /* constel-host (deploy/hostpkg.h), when a host becomes root */

	struct host_result *work;    /* each host's, owned by the worker running it */
	atomic_bool cancel;	     /* SIGINT: abandon commands that only wait or ask */
};

/* Takes the lock: host h is at `phase` (static), and `text` (taken) is an event. */
void runner_publish_step(struct runner *r, size_t h, const char *phase, char *text);
/* Takes the lock: the copy's progress. */
void runner_publish_copy(struct runner *r, size_t h, uint64_t bytes, size_t paths);

/* Under the lock: host h ended (results[h] final): its dependents are readied or skipped. */
void runner_host_ended(struct runner *r, size_t h);
/* Under the lock: an event (text taken). */
void runner_event(struct runner *r, size_t h, char *text);
/* Under the lock: whether host h's state is final in the schedule. */
bool runner_host_is_over(const struct runner *r, size_t h);

/* ---- stream.c: evaluation and builds during the run ---- */

/* Before the workers: starts the evaluation (providers first) and a builder per group. */
void stream_start(struct runner *r);
/* Under the lock: whether host h's system is ready to deploy. */
bool stream_ready(const struct runner *r, size_t h);
/* Under the lock: the run is stopping; no further evaluation or build starts. */
void stream_stop(struct runner *r);
/* After the workers: waits for the builders and the evaluation; the logs go to opts.build_log. */
void stream_finish(struct runner *r);

/* ---- steps.c: one host, on one worker ---- */

struct hostctx {
	struct runner *r;
	size_t h;
	const struct inv_host *host;
	struct host_result *res; /* r->work[h] */
	FILE *log;
	struct host_io io;	 /* the host: over SSH, or the machine constel runs on */
	const char *goal;
	const char *pkg;	 /* its constel-host package when it becomes root, else NULL */
	bool pass;		 /* its sudo asks a password: opts.become_pass is fed */
	char *runid;
	bool copy_told;		 /* the copy's first progress said how many paths go */
	const char *query;	 /* what the host answered before the run (borrowed), or NULL */
};

/* Opens the host's log; `suffix` makes the run id of this host's work unique. */
void hostctx_begin(struct hostctx *c, struct runner *r, size_t h, const char *suffix);
void hostctx_end(struct hostctx *c);
/* The run's --confirm-timeout and --health-timeout, else the host's own. */
long host_confirm_timeout(const struct hostctx *c);
long host_health_timeout(const struct hostctx *c);
/* The deploy or rollback of one host, to its end (c->res says how). */
void steps_run_host(struct hostctx *c);
/* --rollback-fleet: the host back as it was before the run. */
void steps_fleet_restore(struct hostctx *c);

__attribute__((format(printf, 2, 3))) void hlog(struct hostctx *c, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) void step(
	struct hostctx *c, const char *phase, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int fail(
	struct hostctx *c, enum host_status status, const char *fmt, ...);
void log_output(struct hostctx *c, const struct buf *b, const char *what);
void log_answer(struct hostctx *c, const char *what, const char *answer);
void log_answer_output(struct hostctx *c, const char *answer);
/* A value of a host's answer made safe to print (caller frees; NULL stays NULL). */
char *answer_text(const char *answer, const char *key);
/* A NEW session to the host in *io (a local host needs none: always there). */
int open_session(struct hostctx *c, struct host_io *io);
/* Closes *to's session and takes over `from`'s (the newer proof of access). */
void take_session(struct host_io *to, struct host_io *from);
/*
 * Runs a command on the host; *answer gets its stdout. Returns the exit
 * status (>= 0), or a negative code when the host could not be asked: lost
 * connection, `timeout` seconds passed (0: none), an answer past
 * ANSWER_MAX, or (with HEXEC_CANCEL) the run was interrupted. With
 * HEXEC_ROOT it runs as root, through the host's `become` (docs/become.md);
 * everything else runs as the login user.
 */
enum { HEXEC_CANCEL = 1, HEXEC_ROOT = 2 };
int hexec(struct hostctx *c, struct host_io *io, const char *cmd, const char *input,
	char **answer, long timeout, unsigned flags);
/* The answer of a refused start (exit 75: locked; 70: a write failed). */
void start_refused(struct hostctx *c, int rc, const char *answer);

/* ---- activate.c ---- */

/*
 * Starts the host's watchdog and follows it to its end: activation, then
 * the confirmation over a NEW session. 0 when the host is deployed.
 */
int activate(struct hostctx *c, const struct host_activation *a, bool rollback_op);
/* After a failed check: the host back as it was before the run; always -1. */
int restore_host(struct hostctx *c, const char *why);

/* ---- health.c: the health gate (deploy/health.h) ---- */

/*
 * Every check of the host, each retried within health_timeout; `before` is
 * the host's query answer before the run (units failed then do not count).
 * 0 healthy; -1 with *why (caller frees) naming the failed check.
 */
int health_run(struct hostctx *c, const char *before, char **why);

/* ---- reboot.c ---- */

/*
 * Reboots the host and waits (reboot_timeout) for it to come back with a
 * new boot id, running `expect` (NULL: what its profile points at). 0 when
 * it does; else the host failed with what is known (-1).
 */
int reboot_and_wait(struct hostctx *c, const char *expect);
/* `constel reboot`: the host rebooted, waited for and health-checked. */
void steps_reboot_host(struct hostctx *c);

#endif
