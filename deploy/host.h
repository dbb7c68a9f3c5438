/*
 * deploy/host.h: the host-side protocol, as POSIX sh run over SSH.
 *
 * Nothing is installed on a target. Each step is one of the scripts of
 * deploy/sh (embedded at build time, deploy/host_sh.h) run as one command
 * line, `sh -c SCRIPT NAME ARG...`, on a channel of the host's session;
 * the watchdog itself is sent on stdin of the start command. Answers are
 * `key=value` lines that host_get() reads, then, after a line
 * HOST_OUTPUT_MARK, the activation's output (untrusted text).
 *
 * On the host (docs/architecture.md, "The host protocol"):
 *   /run/constel/lock       flock held by the watchdog for its whole life
 *   /run/constel/holder     pid, run and start time of the lock's holder
 *   /run/constel/state      the run's state: run, phase, result, gen, ...
 *   /run/constel/canary.RUNID  magic rollback: removed over a new session
 *   /var/lib/constel/pending   written before the profile is touched,
 *                           removed once the host is whole again
 *
 * The watchdog runs in its own session (setsid, SIGHUP ignored), so the SSH
 * channel that started it can drop at any moment: the watchdog still
 * reaches a consistent end, the new system confirmed or the host restored
 * as it was before the run.
 */
#ifndef CONSTEL_HOST_H
#define CONSTEL_HOST_H

#include <stdbool.h>

#include "common/util.h"
#include "inventory/inventory.h"
#include "transport/transport.h"

/* The line after which an answer holds the activation's output. */
#define HOST_OUTPUT_MARK "--- output ---"

enum host_activate_mode {
	HOST_ACTIVATE_PATH,	  /* activate `path` */
	HOST_ACTIVATE_GENERATION, /* switch to generation `generation` */
	HOST_ACTIVATE_RESTORE,	  /* back to `generation` in the profile, `running` running */
	HOST_ACTIVATE_REPAIR,	  /* only repair what an interrupted run left */
};

struct host_activation {
	const char *runid;	/* unique per run and host; names the canary */
	enum host_activate_mode mode;
	const char *path;	/* HOST_ACTIVATE_PATH: the system to activate */
	long generation;	/* GENERATION, RESTORE: the profile's generation */
	const char *running;	/* RESTORE: the system that ran before (or NULL) */
	const char *goal;	/* switch | boot | test | dry-activate */
	long confirm_timeout;	/* seconds; 0 disables magic rollback */
	long activation_timeout; /* seconds switch-to-configuration may take */
	bool auto_rollback;	/* restore when switch-to-configuration fails */
	bool delete_failed;	/* delete the new generation once restored */
	const char *pkg;	/* the host's constel-host package, or NULL (host_cmd_root) */
};

/* `sh -c SCRIPT constel-NAME ARG...`, every part quoted (caller frees). */
char *host_script(const char *script, const char *name, const char *const *args, size_t nargs);

/*
 * A command that needs root: `sh -c SCRIPT constel-NAME ARG...` as
 * host_script(), or with the host's constel-host package `pkg`
 * (deploy/hostpkg.h) `PKG/bin/constel-host NAME ARG...` (caller frees).
 */
char *host_cmd_root(const char *pkg, const char *script, const char *name,
	const char *const *args, size_t nargs);

/* The watchdog script, sent on stdin of host_cmd_start() without a package (static string). */
const char *host_watchdog_script(void);

/*
 * Command lines; the caller frees those it gets as char *.
 * host_cmd_start() takes the lock, starts the watchdog and answers at its
 * first milestone with `milestone=` and the state (exit 75: locked, with
 * holder_* lines; 70: a write failed on the host, `error=` says which).
 */
char *host_cmd_start(const struct host_activation *a);
/*
 * Follows run `runid` from a later session: up to `seconds` until it is
 * done, then its state. With `confirm`, first removes its canary. Exit 3:
 * the host's state belongs to another run.
 */
char *host_cmd_wait(const char *pkg, const char *runid, long seconds, bool confirm);
/* Realises `drv` on the host: `out=PATH`, or its exit status and Nix's last lines. */
char *host_cmd_build(const char *drv);
/* What runs now: gen, profile, current, switched, locked/holder_*, interrupted*. */
const char *host_cmd_query(void);
/* The generations of the system profile: `gen=N path=PATH` lines. */
const char *host_cmd_generations(void);

/*
 * How to reach an inventory host over SSH: its name is the ssh config
 * `Host` looked up, its address/user/port override the config. Strings are
 * borrowed from `h` and `ssh_config`.
 */
void host_ssh_target(struct ssh_target *t, const struct inv_host *h, const char *ssh_config,
	long connect_timeout, int op_timeout);

/*
 * A parsed answer: the value of `key` in `key=value` lines before
 * HOST_OUTPUT_MARK (the last one wins), or NULL; the caller frees it.
 */
char *host_get(const char *text, const char *key);
long host_get_long(const char *text, const char *key, long dflt);

/*
 * Whether a host's answer names a store path or a path inside one:
 * /nix/store/ then components of the characters Nix allows in store path
 * names ([A-Za-z0-9+._?=-]), separated by single '/', none "." or "..".
 */
bool host_is_store_path(const char *s);

/* The activation output part of an answer (borrowed), or NULL. */
const char *host_answer_output(const char *text);

/* Whether a state answer is at `phase`; whether it belongs to run `runid` (not an earlier one). */
bool host_state_is(const char *state, const char *phase);
bool host_state_of_run(const char *state, const char *runid);

/*
 * Of host_cmd_generations()'s answer: the newest generation before
 * `current` (0: none), whether `gen` is one, and the system of `gen` when
 * it looks like a store path (caller frees; NULL otherwise).
 */
long host_gens_previous(const char *gens, long current);
bool host_gens_has(const char *gens, long gen);
char *host_gens_path(const char *gens, long gen);

#endif
