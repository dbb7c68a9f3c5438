/*
 * deploy/provenance.h: which git commit each host runs, through libgit2.
 *
 * The configuration repository is the git repository holding the inventory
 * (found from the inventory's folder upwards, as git itself finds it).
 * Before a deploy, provenance_open() tells its HEAD commit and whether the
 * working tree has changes to tracked files (untracked files do not count:
 * Nix does not see them in a git flake either). A deploy of a dirty tree is
 * refused unless the user allows it; the records then say "dirty".
 *
 * `--rev REF` builds one commit exactly, whatever the working tree holds:
 * provenance_source_init() gives the flake reference of that commit
 * (`git+file:///REPO?rev=SHA[&dir=SUB]`) and, for hosts built from a plain
 * Nix `file:`, a folder holding the commit's tree, where the inventory's
 * relative `file:` paths are to be resolved instead of the working tree.
 *
 * After each host's result, one line is appended to the git note of the
 * deployed commit under refs/notes/constel (PROVENANCE_NOTES_REF):
 *
 *   2026-11-29T10:00:00Z galactica deployed gen=5 /nix/store/...-system
 *
 * optionally followed by ` dirty`. A note is one blob per commit, so an
 * append is a read-modify-write of the notes ref: it is serialised by a
 * process-wide mutex, and made safe against other processes by updating the
 * ref only if it still points where it did when read (compare-and-swap),
 * retrying otherwise. provenance_log() reads every line of every note back.
 *
 * Threads: libgit2 is initialised once (provenance_global_init(), which
 * every function here also calls; git_libgit2_shutdown is left to exit).
 * No git_repository object is shared: every function taking `repo_path`
 * opens its own and closes it before returning, so any of them may be
 * called from any thread, at the same time.
 *
 * Errors: 0 or a negative code with a message in the error slot
 * (common/util.h); CONSTEL_ENOTFOUND where a function says so.
 */
#ifndef CONSTEL_PROVENANCE_H
#define CONSTEL_PROVENANCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "deploy/runner.h"
#include "inventory/inventory.h"

#define PROVENANCE_NOTES_REF "refs/notes/constel"

/* Initialises libgit2 once for the process; idempotent and thread-safe. */
void provenance_global_init(void);

struct provenance {
	char *repo_path;       /* the working tree's top folder, absolute, no final '/' */
	char *head;	       /* HEAD's full commit id; NULL on a branch without commits */
	bool dirty;	       /* tracked files differ from HEAD (index or working tree) */
	struct strvec changed; /* those files, relative to repo_path, sorted */
	char *deployer;	       /* user@machine, for the records */
};

/*
 * Finds the repository containing `dir` (searching upwards) and fills *p,
 * which the caller releases. CONSTEL_ENOTFOUND (with a message) when `dir`
 * is not inside a git working tree; then *p holds only the deployer.
 */
int provenance_open(struct provenance *p, const char *dir);
void provenance_release(struct provenance *p);

/*
 * The full commit id of `rev` in the repository at `repo_path`: anything
 * git accepts (branch, tag, full or short id, `HEAD~2`). A tag is peeled to
 * its commit. CONSTEL_ENOTFOUND when no commit is named so. *sha_out is
 * the caller's.
 */
int provenance_resolve_rev(const char *repo_path, const char *rev, char **sha_out);

/*
 * The flake reference of `flake` (as the inventory writes it, relative to
 * `inventory_dir`) at commit `sha`: `git+file:///REPO?rev=SHA`, with
 * `&dir=SUB` when the flake is in a subfolder of the repository. With
 * `sha` NULL, the working tree as Nix reads it (its tracked files):
 * `git+file:///REPO[?dir=SUB]`. -1 when the flake is not a local path
 * inside the repository (`github:...`).
 */
int provenance_flake_ref(const char *repo_path, const char *inventory_dir, const char *flake,
	const char *sha, char **ref_out);

/*
 * Whether the flake reference `ref`, as deploy/build.c gives it to Nix,
 * reads the repository at `repo_path` at commit `sha`: either a local path
 * inside its working tree (whose top is that repository's, not a nested
 * one's; the caller knows the tree to be clean at `sha`), or the git+file
 * reference provenance_flake_ref() makes for `sha`. 0 with the flake's
 * folder relative to the repository in *subdir_out ("" at its top; the
 * caller's); CONSTEL_ENOTFOUND when it reads anything else.
 */
int provenance_flake_at(const char *repo_path, const char *ref, const char *sha, char **subdir_out);

/*
 * Writes the tree of commit `sha` into a new temporary folder (*dir_out,
 * the caller's; remove it with provenance_export_remove()).
 */
int provenance_export(const char *repo_path, const char *sha, char **dir_out);
/* Removes an exported tree and frees `dir`; accepts NULL. */
void provenance_export_remove(char *dir);

/*
 * What to build from, for an exact commit of the inventory's repository.
 * For deploy/build.h's build_plan(): pass `flake_ref` as flake_override
 * (NULL when no selected host uses a flake), and when `inventory_dir` is
 * not NULL (some selected host uses `file:`), let the inventory's dir be it
 * while build_plan() runs, so `file:` paths resolve inside the exported
 * commit. The exported folder lives until provenance_source_release().
 */
struct provenance_source {
	char *sha;
	char *flake_ref;     /* flake override, or NULL */
	char *export_dir;    /* the exported tree, or NULL */
	char *inventory_dir; /* the inventory's folder inside export_dir, or NULL */
};

/*
 * Fills *s for commit `sha` of `repo_path` and the hosts of `selected`
 * (one bool per inventory host, or NULL for all). Selected flake hosts
 * must share one flake (the override replaces each host's flake). -1 with
 * a message otherwise; *s is then released.
 */
int provenance_source_init(struct provenance_source *s, const char *repo_path,
	const struct inventory *inv, const bool *selected, const char *sha);
void provenance_source_release(struct provenance_source *s);

/*
 * A note line for one host's result at the current time (caller frees):
 * one JSON object `{"time","host","result","generation","path","dirty"}`
 * (generation and path null when unknown). Readers also take the text
 * lines of earlier versions, `TIME HOST RESULT [gen=N] [PATH] [dirty]`.
 */
char *provenance_note_line(
	const char *host, const char *result, long generation, const char *path, bool dirty);

/*
 * Appends `line` (one line, no '\n') to the note of commit `sha` under
 * PROVENANCE_NOTES_REF, creating the note or the ref as needed. Safe from
 * any number of threads and processes at once: none of their lines is lost.
 */
int provenance_note_append(const char *repo_path, const char *sha, const char *line);

/* One line of a note, parsed. */
struct provenance_event {
	char *revision; /* the annotated commit, full id */
	char *time;	/* as written: 2026-11-29T10:00:00Z */
	char *host;
	char *result;	 /* deployed, unchanged, failed, rolled-back, skipped */
	long generation; /* -1 when not written */
	char *path;	 /* NULL when not written */
	bool dirty;
};

/*
 * Every line of every note under PROVENANCE_NOTES_REF, newest first (by
 * time, then later lines first), only those of `host` unless it is NULL.
 * *out (an array of *n events) is the caller's, for
 * provenance_events_free(). No notes at all is success with *n = 0.
 * Lines that do not parse are skipped.
 */
int provenance_log(
	const char *repo_path, const char *host, struct provenance_event **out, size_t *n);
void provenance_events_free(struct provenance_event *ev, size_t n);

/*
 * How many commits reachable from `head` are not reachable from `rev`:
 * how far behind HEAD a host running `rev` is. CONSTEL_ENOTFOUND when
 * either commit is not in the repository.
 */
int provenance_behind(const char *repo_path, const char *head, const char *rev, size_t *behind);

/*
 * A runner_opts.on_result callback appending each host's result to the
 * notes: set opts.on_result = provenance_on_result and opts.data to a
 * struct provenance_notes that outlives the run. Hosts whose status is
 * still pending or skipped (never contacted) are not noted. The first
 * failure to append is kept in `error` (read it after runner_finish()).
 */
struct provenance_notes {
	const char *repo_path; /* borrowed */
	const char *sha;       /* the commit deployed, borrowed */
	bool dirty;
	const struct inventory *inv; /* for host names, borrowed */
	pthread_mutex_t lock;	     /* guards error */
	char *error;		     /* the first failure, or NULL */
};

void provenance_notes_init(struct provenance_notes *n, const char *repo_path, const char *sha,
	bool dirty, const struct inventory *inv);
void provenance_notes_release(struct provenance_notes *n);
void provenance_on_result(void *data, size_t host, const struct host_result *res);

#endif
