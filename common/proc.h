/*
 * common/proc.h: running local programs (nix, nix-store) without a shell.
 *
 * proc_run() runs argv[0] from PATH with the given arguments, stdin from
 * /dev/null, and collects its standard output and standard error into the
 * caller's bounded buffers (either may be NULL to discard that stream).
 * It returns 0 when the program ran and exited 0; otherwise -1 with a
 * message naming the program and how it ended. Nothing is ever printed:
 * callers decide where output goes.
 */
#ifndef CONSTEL_PROC_H
#define CONSTEL_PROC_H

#include <sys/types.h>

#include "common/util.h"

int proc_run(const char *const *argv, struct buf *out, struct buf *err);

/* Like proc_run, with a deadline in seconds (0: none); CONSTEL_ETIMEOUT on expiry. */
int proc_run_timeout(const char *const *argv, struct buf *out, struct buf *err, int timeout);

/* Like proc_run_timeout, feeding `in` (borrowed, may be NULL) on standard input. */
int proc_run_input(const char *const *argv, const void *in, size_t inlen, struct buf *out,
	struct buf *err, int timeout);

/*
 * The start of every `nix` command constel runs: the program and the
 * experimental features constel relies on, so that no nix.conf has to be
 * edited (what colmena and deploy-rs pass too). PROC_NIX is for argv
 * arrays, proc_push_nix() for a strvec.
 */
#define PROC_NIX "nix", "--extra-experimental-features", "nix-command flakes"
void proc_push_nix(struct strvec *argv);

/*
 * Like proc_run_input, but a program that ran to its exit is success
 * whatever its status, which goes to *exit_status; -1 (and *exit_status
 * -1) when it could not run, was killed by a signal or timed out.
 */
int proc_run_status(const char *const *argv, const void *in, size_t inlen, struct buf *out,
	struct buf *err, int timeout, int *exit_status);

/*
 * What a child may use while it runs, for proc_run_limited(). The child's
 * resident memory (/proc/PID/statm) is sampled every PROC_SAMPLE_MS while it
 * runs, and read exactly (its peak, from wait4) when it has ended: a child
 * that passed `max_rss_kb` at any time is killed as soon as a sample sees
 * it, and either way the call fails with CONSTEL_ELIMIT, so the verdict
 * does not depend on when the samples fell.
 */
#define PROC_SAMPLE_MS 20
struct proc_limits {
	int timeout;	    /* seconds; 0: none */
	size_t max_rss_kb;  /* 0: no bound */
	size_t peak_rss_kb; /* out: the largest resident memory of the child, in KiB */
};

/*
 * Like proc_run_timeout, within `lim` (read and filled in). CONSTEL_ELIMIT
 * with a message saying how much it used when it passed max_rss_kb.
 */
int proc_run_limited(
	const char *const *argv, struct buf *out, struct buf *err, struct proc_limits *lim);

/* The resident memory of process `pid` in KiB: 0, or -1 when it cannot be read (gone). */
int proc_rss_kb(pid_t pid, size_t *kb);

/* The argv as one line, for logs: `nix build --json ...` (caller frees). */
char *proc_describe(const char *const *argv);

#endif
