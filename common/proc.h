/*
 * common/proc.h: the one way constel runs a local program (nix, nix-store,
 * `sh` for the local host), as git's `struct child_process`.
 *
 * A caller describes the command in a struct proc_cmd (zeroed, then the
 * fields it needs: `struct proc_cmd cmd = {.argv = argv, .timeout = 30}`)
 * and runs it with proc_cmd_run(). argv[0] is looked up in constel's PATH
 * (not in `env`) and run without a shell. The child:
 *
 * - starts with an empty signal mask and every signal at its default
 *   disposition, whatever the calling thread blocks (workers block every
 *   signal) or the process ignores (SIGPIPE): nix, or a local watchdog,
 *   must get its SIGTERM;
 * - gets constel's environment with `env` applied to it, or only `env`
 *   with `clear_env`;
 * - runs in `dir` when it is set (posix_spawn_file_actions_addchdir_np);
 *   a relative argv[0] with a slash is then relative to `dir`;
 * - reads `in` on its standard input, /dev/null when `in` is NULL;
 * - writes its standard output and error into the caller's buffers, which
 *   keep what fits under their maximum (see struct buf) while the rest is
 *   read and dropped; a NULL buffer discards that stream.
 *
 * Nothing is ever printed, except the one `-v` line per command
 * (common/trace.h): callers decide where output goes. Every pointer in the
 * struct is borrowed for the duration of the call. The struct may be run
 * again; proc_cmd_run() resets its results first.
 */
#ifndef CONSTEL_PROC_H
#define CONSTEL_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/util.h"

/*
 * How often a child's resident memory (/proc/PID/statm) is sampled while
 * it runs under a `max_rss_kb` bound.
 */
#define PROC_SAMPLE_MS 20

struct proc_cmd {
	/* what to run */
	const char *const *argv; /* NULL-terminated, argv[0] the program */
	/*
	 * NULL-terminated: "K=V" sets K, "K" alone unsets it; a later entry
	 * for the same K wins. NULL: constel's environment as it is.
	 */
	const char *const *env;
	bool clear_env;	 /* start from an empty environment, not constel's */
	const char *dir; /* the child's working directory; NULL: constel's */
	const void *in;	 /* `inlen` bytes fed on standard input; NULL: /dev/null */
	size_t inlen;
	struct buf *out;   /* standard output; NULL: discarded */
	struct buf *err;   /* standard error; NULL: discarded */
	int timeout;	   /* seconds; 0: none. Past it: killed, CONSTEL_ETIMEOUT */
	size_t max_rss_kb; /* resident memory bound in KiB; 0: none (see below) */
	bool any_status;   /* a non-zero exit is no error: only exit_status tells it */

	/* results, set by proc_cmd_run() */
	int exit_status;    /* how it exited; -1: it did not run, was killed or timed out */
	size_t peak_rss_kb; /* the largest resident memory it had, in KiB */
};

/*
 * Runs `cmd` to its end. Returns 0 when the program ran and exited 0 (with
 * `any_status`: exited at all, whatever its status). Otherwise, with a
 * one-line message naming the program and how it ended:
 * - CONSTEL_ETIMEOUT: still running after `timeout` seconds, so killed;
 * - CONSTEL_ELIMIT: its resident memory passed `max_rss_kb`, saying how
 *   much it used. It is sampled every PROC_SAMPLE_MS while the child runs
 *   and the child killed as soon as a sample sees it past the bound; its
 *   exact peak is read from wait4 when it has ended, and a child that
 *   passed the bound between two samples fails the same way, so the
 *   verdict does not depend on when the samples fell;
 * - -1: it could not be started (no such program, no such `dir`), exited
 *   non-zero (unless `any_status`) or was killed by a signal.
 */
int proc_cmd_run(struct proc_cmd *cmd);

/*
 * proc_cmd_run() of argv alone: stdin from /dev/null, no deadline, output
 * into `out` and `err` (either may be NULL), a non-zero exit an error.
 */
int proc_run(const char *const *argv, struct buf *out, struct buf *err);

/*
 * The start of every `nix` command constel runs: the program and the
 * experimental features constel relies on, so that no nix.conf has to be
 * edited (what colmena and deploy-rs pass too). PROC_NIX is for argv
 * arrays, proc_push_nix() for a strvec.
 */
#define PROC_NIX "nix", "--extra-experimental-features", "nix-command flakes"
void proc_push_nix(struct strvec *argv);

/* The resident memory of process `pid` in KiB: 0, or -1 when it cannot be read (gone). */
int proc_rss_kb(pid_t pid, size_t *kb);

/* The argv as one line, for logs: `nix build --json ...` (caller frees). */
char *proc_describe(const char *const *argv);

#endif
