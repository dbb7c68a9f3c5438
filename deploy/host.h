/*
 * deploy/host.h: the host-side protocol, as POSIX sh run over SSH.
 *
 * Nothing is installed on a target. Each step is one command line (and, for
 * the activation, a script sent on stdin) run on a channel of the host's
 * session; the answers are `key=value` lines that host_parse() reads.
 *
 * All state lives under /run/constel on the host:
 *   lock/         one deploy at a time: mkdir is atomic; lock/pid names the
 *                 watchdog, so a lock whose watchdog died is taken over
 *   watchdog.sh   the activation script of the current run
 *   state         one line: `phase=... result=... gen=N prev=N path=... reason=...`
 *   canary.RUNID  magic rollback: removed by constel over a new session
 *   activation.log  what switch-to-configuration printed
 *
 * The watchdog runs in its own session (setsid, SIGHUP ignored), so the SSH
 * channel that started it can drop at any moment: the watchdog still
 * reaches a consistent end, either the new generation confirmed or the
 * previous one restored by its number.
 */
#ifndef CONSTEL_HOST_H
#define CONSTEL_HOST_H

#include <stdbool.h>

#include "common/util.h"
#include "inventory/inventory.h"
#include "transport/transport.h"

struct host_activation {
	const char *runid;	/* unique per run and host; names the canary */
	const char *path;	/* the system to activate, or NULL with generation */
	long generation;	/* with path NULL: switch back to this generation */
	const char *goal;	/* switch | boot | test | dry-activate */
	long confirm_timeout;	/* seconds; 0 disables magic rollback */
	long activation_timeout; /* seconds switch-to-configuration may take */
	bool auto_rollback;	/* restore when switch-to-configuration fails */
	bool delete_failed;	/* delete the generation that failed */
};

/* The watchdog script, sent on stdin of host_cmd_start() (static string). */
const char *host_watchdog_script(void);

/*
 * Command lines; the caller frees them. host_cmd_start() takes the lock,
 * starts the watchdog and returns at its first milestone (awaiting-confirm
 * or done) with the state; host_cmd_wait() is for a later session.
 */
char *host_cmd_start(const struct host_activation *a);
/* Waits until the state's phase is not `phase` (or `seconds` pass), prints the state. */
char *host_cmd_wait(const char *phase, long seconds);
/* Removes the canary of `runid`, then waits up to `seconds` for the end. */
char *host_cmd_confirm(const char *runid, long seconds);
/* What runs now: `current=PATH profile=PATH gen=N locked=0|1 booted=...` */
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
 * A parsed answer: the value of `key` in `key=value` lines (the last one
 * wins), or NULL (borrowed from `text`, copied into *out by the caller).
 */
char *host_get(const char *text, const char *key);
long host_get_long(const char *text, const char *key, long dflt);

#endif
