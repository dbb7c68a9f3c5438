/*
 * Unit tests for deploy/provenance.h, on temporary repositories made with
 * libgit2: HEAD and the dirty check, rev resolution, ahead/behind, flake
 * references and exported trees for --rev, and notes appended by many
 * threads and processes at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "deploy/provenance.h"
#include "inventory/inventory.h"

struct fixture {
	char *dir; /* the repository's working tree (canonical path) */
	git_repository *repo;
};

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *slash = strrchr(path, '/');
	FILE *f;

	*slash = '\0';
	mkdir(path, 0755);
	*slash = '/';
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(buf);
}

/* Stages every file named (NULL-terminated) and commits; returns the commit's id. */
static char *commit(struct fixture *fx, const char *msg, const char *const *files)
{
	git_index *index = NULL;
	git_oid tree_id, commit_id, parent_id;
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	char sha[GIT_OID_HEXSZ + 1];

	assert_int_equal(git_repository_index(&index, fx->repo), 0);
	for (size_t i = 0; files[i]; i++)
		assert_int_equal(git_index_add_bypath(index, files[i]), 0);
	assert_int_equal(git_index_write(index), 0);
	assert_int_equal(git_index_write_tree(&tree_id, index), 0);
	assert_int_equal(git_tree_lookup(&tree, fx->repo, &tree_id), 0);
	assert_int_equal(git_signature_now(&sig, "test", "test@localhost"), 0);
	if (git_reference_name_to_id(&parent_id, fx->repo, "HEAD") == 0)
		assert_int_equal(git_commit_lookup(&parent, fx->repo, &parent_id), 0);
	assert_int_equal(git_commit_create_v(&commit_id, fx->repo, "HEAD", sig, sig, NULL, msg,
				 tree, parent ? 1 : 0, parent),
		0);
	git_oid_tostr(sha, sizeof(sha), &commit_id);
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(index);
	return xstrdup(sha);
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char tmpl[] = "/tmp/constel-test-prov.XXXXXX";

	provenance_global_init();
	assert_non_null(mkdtemp(tmpl));
	fx->dir = realpath(tmpl, NULL);
	assert_non_null(fx->dir);
	assert_int_equal(git_repository_init(&fx->repo, fx->dir, 0), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd = xasprintf("rm -rf '%s'", fx->dir);

	git_repository_free(fx->repo);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(fx->dir);
	free(fx);
	return 0;
}

static const char *const FLAKE_FILES[] = {"flake.nix", "lib/system.nix", NULL};

static char *commit_flake(struct fixture *fx, const char *gen)
{
	char *text = xasprintf("{ gen = %s; }\n", gen);
	char *sha;

	write_file(fx->dir, "flake.nix", "{ outputs = { self }: { }; }\n");
	write_file(fx->dir, "lib/system.nix", text);
	sha = commit(fx, gen, FLAKE_FILES);
	free(text);
	return sha;
}

static void test_provenance_open_reports_head_of_clean_tree(void **state)
{
	struct fixture *fx = *state;
	struct provenance p;
	char *sha = commit_flake(fx, "1");
	char *sub = xasprintf("%s/lib", fx->dir);

	/* found from a subfolder, as git finds it */
	assert_int_equal(provenance_open(&p, sub), 0);
	assert_string_equal(p.repo_path, fx->dir);
	assert_string_equal(p.head, sha);
	assert_false(p.dirty);
	assert_int_equal(p.changed.nr, 0);
	assert_non_null(strchr(p.deployer, '@'));
	provenance_release(&p);
	free(sub);
	free(sha);
}

static void test_provenance_untracked_file_is_not_dirty(void **state)
{
	struct fixture *fx = *state;
	struct provenance p;
	char *sha = commit_flake(fx, "1");

	write_file(fx->dir, "notes.txt", "scratch\n");
	write_file(fx->dir, "lib/new.nix", "{ }\n");
	assert_int_equal(provenance_open(&p, fx->dir), 0);
	assert_false(p.dirty);
	assert_int_equal(p.changed.nr, 0);
	provenance_release(&p);
	free(sha);
}

static void test_provenance_tracked_changes_are_dirty_and_listed(void **state)
{
	struct fixture *fx = *state;
	struct provenance p;
	char *sha = commit_flake(fx, "1");
	git_index *index = NULL;

	write_file(fx->dir, "lib/system.nix", "{ gen = 2; }\n");
	write_file(fx->dir, "untracked.nix", "{ }\n");
	assert_int_equal(provenance_open(&p, fx->dir), 0);
	assert_true(p.dirty);
	assert_int_equal(p.changed.nr, 1);
	assert_string_equal(p.changed.v[0], "lib/system.nix");
	provenance_release(&p);

	/* a staged change counts too, even once the working tree matches the index */
	write_file(fx->dir, "flake.nix", "{ outputs = { self }: { x = 1; }; }\n");
	assert_int_equal(git_repository_index(&index, fx->repo), 0);
	assert_int_equal(git_index_add_bypath(index, "flake.nix"), 0);
	assert_int_equal(git_index_write(index), 0);
	git_index_free(index);
	assert_int_equal(provenance_open(&p, fx->dir), 0);
	assert_true(p.dirty);
	assert_int_equal(p.changed.nr, 2);
	assert_string_equal(p.changed.v[0], "flake.nix");
	assert_string_equal(p.changed.v[1], "lib/system.nix");
	provenance_release(&p);
	free(sha);
}

static void test_provenance_deleted_tracked_file_is_dirty(void **state)
{
	struct fixture *fx = *state;
	struct provenance p;
	char *sha = commit_flake(fx, "1");
	char *path = xasprintf("%s/lib/system.nix", fx->dir);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(provenance_open(&p, fx->dir), 0);
	assert_true(p.dirty);
	assert_int_equal(p.changed.nr, 1);
	assert_string_equal(p.changed.v[0], "lib/system.nix");
	provenance_release(&p);
	free(path);
	free(sha);
}

static void test_provenance_open_outside_git_is_enotfound(void **state)
{
	struct provenance p;
	char tmpl[] = "/tmp/constel-test-nogit.XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	assert_int_equal(provenance_open(&p, tmpl), CONSTEL_ENOTFOUND);
	assert_non_null(strstr(error_last(), "not in a git repository"));
	assert_null(p.head);
	assert_non_null(p.deployer);
	provenance_release(&p);
	rmdir(tmpl);
}

static void test_provenance_open_on_unborn_branch_has_no_head(void **state)
{
	struct fixture *fx = *state;
	struct provenance p;

	assert_int_equal(provenance_open(&p, fx->dir), 0);
	assert_null(p.head);
	assert_false(p.dirty);
	provenance_release(&p);
}

static void test_provenance_resolves_branch_tag_and_short_sha(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1"), *b = commit_flake(fx, "2");
	git_object *obj = NULL;
	git_reference *branch = NULL;
	git_commit *ca = NULL;
	git_signature *sig = NULL;
	git_oid oid, tag_oid;
	char short_a[9], *sha = NULL;

	assert_int_equal(git_oid_fromstr(&oid, a), 0);
	assert_int_equal(git_commit_lookup(&ca, fx->repo, &oid), 0);
	assert_int_equal(git_branch_create(&branch, fx->repo, "old", ca, 0), 0);
	assert_int_equal(git_revparse_single(&obj, fx->repo, a), 0);
	assert_int_equal(git_signature_now(&sig, "test", "test@localhost"), 0);
	assert_int_equal(git_tag_create(&tag_oid, fx->repo, "v1", obj, sig, "release 1", 0), 0);
	assert_int_equal(git_tag_create_lightweight(&tag_oid, fx->repo, "light", obj, 0), 0);

	assert_int_equal(provenance_resolve_rev(fx->dir, "old", &sha), 0);
	assert_string_equal(sha, a);
	free(sha);
	/* an annotated tag is peeled to its commit */
	assert_int_equal(provenance_resolve_rev(fx->dir, "v1", &sha), 0);
	assert_string_equal(sha, a);
	free(sha);
	assert_int_equal(provenance_resolve_rev(fx->dir, "light", &sha), 0);
	assert_string_equal(sha, a);
	free(sha);
	memcpy(short_a, a, 8);
	short_a[8] = '\0';
	assert_int_equal(provenance_resolve_rev(fx->dir, short_a, &sha), 0);
	assert_string_equal(sha, a);
	free(sha);
	assert_int_equal(provenance_resolve_rev(fx->dir, "HEAD", &sha), 0);
	assert_string_equal(sha, b);
	free(sha);
	assert_int_equal(provenance_resolve_rev(fx->dir, "HEAD~1", &sha), 0);
	assert_string_equal(sha, a);
	free(sha);
	assert_int_equal(
		provenance_resolve_rev(fx->dir, "no-such-branch", &sha), CONSTEL_ENOTFOUND);
	assert_null(sha);
	assert_non_null(strstr(error_last(), "'no-such-branch'"));

	git_signature_free(sig);
	git_object_free(obj);
	git_commit_free(ca);
	git_reference_free(branch);
	free(a);
	free(b);
}

static void test_provenance_counts_commits_behind_head(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1"), *b = commit_flake(fx, "2"), *c = commit_flake(fx, "3");
	size_t n = 99;

	assert_int_equal(provenance_behind(fx->dir, c, a, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(provenance_behind(fx->dir, c, b, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(provenance_behind(fx->dir, c, c, &n), 0);
	assert_int_equal(n, 0);
	/* a host ahead of HEAD is not behind it */
	assert_int_equal(provenance_behind(fx->dir, a, c, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
		provenance_behind(fx->dir, c, "0123456789abcdef0123456789abcdef01234567", &n),
		CONSTEL_ENOTFOUND);
	free(a);
	free(b);
	free(c);
}

static void test_provenance_flake_ref_names_commit_and_subfolder(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1");
	char *sub = xasprintf("%s/lib", fx->dir), *ref = NULL, *want;

	assert_int_equal(provenance_flake_ref(fx->dir, fx->dir, ".", a, &ref), 0);
	want = xasprintf("git+file://%s?rev=%s", fx->dir, a);
	assert_string_equal(ref, want);
	free(want);
	free(ref);
	/* the inventory in lib/, the flake one folder up: still the repository's root */
	assert_int_equal(provenance_flake_ref(fx->dir, sub, "..", a, &ref), 0);
	want = xasprintf("git+file://%s?rev=%s", fx->dir, a);
	assert_string_equal(ref, want);
	free(want);
	free(ref);
	assert_int_equal(provenance_flake_ref(fx->dir, fx->dir, "./lib", a, &ref), 0);
	want = xasprintf("git+file://%s?rev=%s&dir=lib", fx->dir, a);
	assert_string_equal(ref, want);
	free(want);
	free(ref);
	assert_int_equal(provenance_flake_ref(fx->dir, fx->dir, "github:o/r", a, &ref), -1);
	assert_null(ref);
	assert_int_equal(provenance_flake_ref(fx->dir, fx->dir, "/tmp", a, &ref), -1);
	assert_non_null(strstr(error_last(), "outside the repository"));
	free(sub);
	free(a);
}

/*
 * What the evaluation cache may key by a commit: a path in the working tree
 * (of this repository, not of one nested in it), or the git+file reference
 * pinned to exactly that commit; anything else reads something a commit
 * does not fix.
 */
static void test_provenance_flake_at_accepts_only_this_commit(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1"), *b = commit_flake(fx, "2");
	char *ref = NULL, *sub = NULL, *path, *nested;
	git_repository *inner = NULL;

	assert_int_equal(provenance_flake_at(fx->dir, fx->dir, b, &sub), 0);
	assert_string_equal(sub, "");
	free(sub);
	path = xasprintf("%s/lib", fx->dir);
	assert_int_equal(provenance_flake_at(fx->dir, path, b, &sub), 0);
	assert_string_equal(sub, "lib");
	free(sub);
	assert_int_equal(provenance_flake_ref(fx->dir, fx->dir, "./lib", a, &ref), 0);
	assert_int_equal(provenance_flake_at(fx->dir, ref, a, &sub), 0);
	assert_string_equal(sub, "lib");
	free(sub);
	/* pinned to another commit */
	assert_int_equal(provenance_flake_at(fx->dir, ref, b, &sub), CONSTEL_ENOTFOUND);
	assert_null(sub);
	free(ref);
	ref = xasprintf("path:%s", fx->dir);
	assert_int_equal(provenance_flake_at(fx->dir, ref, b, &sub), CONSTEL_ENOTFOUND);
	free(ref);
	ref = xasprintf("git+file://%s", fx->dir);
	assert_int_equal(provenance_flake_at(fx->dir, ref, b, &sub), CONSTEL_ENOTFOUND);
	free(ref);
	ref = xasprintf("git+file://%s?rev=%s&dir=lib&ref=x", fx->dir, b);
	assert_int_equal(provenance_flake_at(fx->dir, ref, b, &sub), CONSTEL_ENOTFOUND);
	free(ref);
	assert_int_equal(provenance_flake_at(fx->dir, "/tmp", b, &sub), CONSTEL_ENOTFOUND);
	assert_int_equal(provenance_flake_at(fx->dir, "github:o/r", b, &sub), CONSTEL_ENOTFOUND);
	/* a repository inside the working tree is not this repository's commit */
	nested = xasprintf("%s/vendor", fx->dir);
	assert_int_equal(git_repository_init(&inner, nested, 0), 0);
	git_repository_free(inner);
	assert_int_equal(provenance_flake_at(fx->dir, nested, b, &sub), CONSTEL_ENOTFOUND);
	assert_null(sub);
	free(nested);
	free(path);
	free(a);
	free(b);
}

static void test_provenance_export_holds_commit_not_working_tree(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1"), *b = commit_flake(fx, "2");
	char *dir = NULL, *path, *text;
	struct stat st;

	write_file(fx->dir, "lib/system.nix", "{ gen = 3; }\n"); /* dirty, uncommitted */
	assert_int_equal(provenance_export(fx->dir, a, &dir), 0);
	path = xasprintf("%s/lib/system.nix", dir);
	text = read_file(path);
	assert_non_null(text);
	assert_string_equal(text, "{ gen = 1; }\n");
	free(text);
	free(path);
	path = xasprintf("%s/flake.nix", dir);
	assert_int_equal(stat(path, &st), 0);
	free(path);
	/* the repository itself is untouched */
	path = xasprintf("%s/lib/system.nix", fx->dir);
	text = read_file(path);
	assert_string_equal(text, "{ gen = 3; }\n");
	free(text);
	free(path);
	path = xstrdup(dir);
	provenance_export_remove(dir);
	assert_int_not_equal(stat(path, &st), 0);
	free(path);
	free(a);
	free(b);
}

static void test_provenance_source_for_file_inventory_in_subfolder(void **state)
{
	struct fixture *fx = *state;
	const char *const files[] = {"ops/constellation.yaml", "ops/fleet.nix", NULL};
	struct provenance_source s;
	struct inventory *inv = NULL;
	struct strvec errors = STRVEC_INIT;
	char *inv_path = xasprintf("%s/ops/constellation.yaml", fx->dir), *sha, *path, *text;

	write_file(fx->dir, "ops/constellation.yaml",
		"defaults:\n  file: ./fleet.nix\nhosts:\n  alpha: {}\n  beta: {}\n");
	write_file(fx->dir, "ops/fleet.nix", "{ rev = 1; }\n");
	sha = commit(fx, "file inventory", files);
	write_file(fx->dir, "ops/fleet.nix", "{ rev = 2; }\n");
	assert_int_equal(inventory_load(&inv, inv_path, &errors), 0);

	assert_int_equal(provenance_source_init(&s, fx->dir, inv, NULL, sha), 0);
	assert_null(s.flake_ref);
	assert_non_null(s.export_dir);
	assert_non_null(s.inventory_dir);
	path = xasprintf("%s/ops", s.export_dir);
	assert_string_equal(s.inventory_dir, path);
	free(path);
	path = xasprintf("%s/fleet.nix", s.inventory_dir);
	text = read_file(path);
	assert_string_equal(text, "{ rev = 1; }\n");
	free(text);
	free(path);
	provenance_source_release(&s);

	inventory_free(inv);
	strvec_release(&errors);
	free(inv_path);
	free(sha);
}

static void test_provenance_source_for_flake_inventory(void **state)
{
	struct fixture *fx = *state;
	const char *const files[] = {"constellation.yaml", NULL};
	struct provenance_source s;
	struct inventory *inv = NULL;
	struct strvec errors = STRVEC_INIT;
	char *inv_path = xasprintf("%s/constellation.yaml", fx->dir), *sha, *want;

	free(commit_flake(fx, "1"));
	write_file(fx->dir, "constellation.yaml", "defaults:\n  flake: .\nhosts:\n  alpha: {}\n");
	sha = commit(fx, "inventory", files);
	assert_int_equal(inventory_load(&inv, inv_path, &errors), 0);
	assert_int_equal(provenance_source_init(&s, fx->dir, inv, NULL, sha), 0);
	want = xasprintf("git+file://%s?rev=%s", fx->dir, sha);
	assert_string_equal(s.flake_ref, want);
	assert_null(s.export_dir);
	assert_null(s.inventory_dir);
	provenance_source_release(&s);
	free(want);
	inventory_free(inv);
	strvec_release(&errors);
	free(inv_path);
	free(sha);
}

#define THREADS		 8
#define LINES_PER_THREAD 6

struct appender {
	const char *repo;
	const char *sha;
	int id;
	int failures;
};

static void *append_lines(void *data)
{
	struct appender *a = data;

	for (int i = 0; i < LINES_PER_THREAD; i++) {
		char line[128];

		snprintf(line, sizeof(line),
			"2026-11-29T10:00:%02dZ host%d deployed gen=%d "
			"/nix/store/aaaa-system-%d",
			i, a->id, i + 1, a->id);
		if (provenance_note_append(a->repo, a->sha, line) < 0)
			a->failures++;
	}
	return NULL;
}

/* Every (host, gen) of the appenders appears exactly once in the log. */
static void assert_all_lines(const char *repo, const char *sha, int nhosts, int from)
{
	struct provenance_event *ev = NULL;
	size_t n = 0;
	int seen[THREADS * 2][LINES_PER_THREAD] = {{0}};

	assert_int_equal(provenance_log(repo, NULL, &ev, &n), 0);
	assert_int_equal(n, (size_t)(nhosts * LINES_PER_THREAD));
	for (size_t i = 0; i < n; i++) {
		int h;

		assert_string_equal(ev[i].revision, sha);
		assert_string_equal(ev[i].result, "deployed");
		assert_int_equal(sscanf(ev[i].host, "host%d", &h), 1);
		assert_true(h >= from && h < from + nhosts);
		assert_true(ev[i].generation >= 1 && ev[i].generation <= LINES_PER_THREAD);
		seen[h][ev[i].generation - 1]++;
	}
	for (int h = from; h < from + nhosts; h++)
		for (int g = 0; g < LINES_PER_THREAD; g++)
			assert_int_equal(seen[h][g], 1);
	provenance_events_free(ev, n);
}

static void test_provenance_notes_from_8_threads_all_kept(void **state)
{
	struct fixture *fx = *state;
	char *sha = commit_flake(fx, "1");
	pthread_t t[THREADS];
	struct appender a[THREADS];

	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct appender){fx->dir, sha, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, append_lines, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].failures, 0);
	}
	assert_all_lines(fx->dir, sha, THREADS, 0);
	free(sha);
}

/* Separate processes do not share the mutex: the ref's compare-and-swap keeps them apart. */
static void test_provenance_notes_from_processes_all_kept(void **state)
{
	struct fixture *fx = *state;
	char *sha = commit_flake(fx, "1");
	pid_t pids[4];

	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct appender a = {fx->dir, sha, i, 0};

			append_lines(&a);
			_exit(a.failures ? 1 : 0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_all_lines(fx->dir, sha, 4, 0);
	free(sha);
}

static void test_provenance_log_is_newest_first_and_filters_host(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1"), *b = commit_flake(fx, "2");
	struct provenance_event *ev = NULL;
	size_t n = 0;
	git_note *note = NULL;
	git_oid oid;

	assert_int_equal(provenance_note_append(fx->dir, a,
				 "2026-11-28T09:00:00Z alpha deployed gen=1 /nix/store/a-system"),
		0);
	assert_int_equal(provenance_note_append(fx->dir, a, "2026-11-28T09:00:00Z beta failed"), 0);
	assert_int_equal(provenance_note_append(fx->dir, b,
				 "2026-11-29T10:00:00Z alpha deployed gen=2 /nix/store/b-system "
				 "dirty"),
		0);
	assert_int_equal(provenance_note_append(fx->dir, b, "garbage"), 0);
	assert_int_equal(provenance_note_append(fx->dir, a, "bad\nline"), -1);

	assert_int_equal(provenance_log(fx->dir, NULL, &ev, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(ev[0].revision, b);
	assert_string_equal(ev[0].time, "2026-11-29T10:00:00Z");
	assert_int_equal(ev[0].generation, 2);
	assert_string_equal(ev[0].path, "/nix/store/b-system");
	assert_true(ev[0].dirty);
	/* same second: the line written later comes first */
	assert_string_equal(ev[1].host, "beta");
	assert_string_equal(ev[1].result, "failed");
	assert_int_equal(ev[1].generation, -1);
	assert_null(ev[1].path);
	assert_string_equal(ev[2].host, "alpha");
	assert_string_equal(ev[2].revision, a);
	assert_false(ev[2].dirty);
	provenance_events_free(ev, n);

	assert_int_equal(provenance_log(fx->dir, "alpha", &ev, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ev[0].revision, b);
	assert_string_equal(ev[1].revision, a);
	provenance_events_free(ev, n);

	/* the note is an ordinary git note, one line per event */
	assert_int_equal(git_oid_fromstr(&oid, a), 0);
	assert_int_equal(git_note_read(&note, fx->repo, PROVENANCE_NOTES_REF, &oid), 0);
	assert_string_equal(git_note_message(note),
		"2026-11-28T09:00:00Z alpha deployed gen=1 /nix/store/a-system\n"
		"2026-11-28T09:00:00Z beta failed\n");
	git_note_free(note);
	free(a);
	free(b);
}

static void test_provenance_log_orders_same_second_by_append(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1"), *b = commit_flake(fx, "2"), *c = commit_flake(fx, "3");
	const char *order[][2] = {
		{"x1", NULL}, {"x2", NULL}, {"x3", NULL}, {"x4", NULL}, {"x5", NULL}};
	struct provenance_event *ev = NULL;
	size_t n = 0;

	/* all in one second, spread over three notes whose ids sort in no useful order */
	order[0][1] = b;
	order[1][1] = a;
	order[2][1] = c;
	order[3][1] = a;
	order[4][1] = b;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		char line[96];

		snprintf(line, sizeof(line), "2026-11-29T10:00:00Z %s deployed", order[i][0]);
		assert_int_equal(provenance_note_append(fx->dir, order[i][1], line), 0);
	}
	assert_int_equal(provenance_log(fx->dir, NULL, &ev, &n), 0);
	assert_int_equal(n, ARRAY_SIZE(order));
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(ev[i].host, order[n - 1 - i][0]);
		assert_string_equal(ev[i].revision, order[n - 1 - i][1]);
	}
	provenance_events_free(ev, n);
	free(a);
	free(b);
	free(c);
}

static void test_provenance_log_without_notes_is_empty(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1");
	struct provenance_event *ev = NULL;
	size_t n = 7;

	assert_int_equal(provenance_log(fx->dir, NULL, &ev, &n), 0);
	assert_int_equal(n, 0);
	assert_null(ev);
	free(a);
}

static void test_provenance_note_line_format(void **state)
{
	char *line = provenance_note_line("galactica", "deployed", 5, "/nix/store/x-system", true);
	json_t *o = json_loads(line, 0, NULL);
	struct tm tm;

	(void)state;
	assert_non_null(o);
	assert_null(strchr(line, '\n'));
	assert_non_null(
		strptime(json_string_value(json_object_get(o, "time")), "%Y-%m-%dT%H:%M:%SZ", &tm));
	assert_string_equal(json_string_value(json_object_get(o, "host")), "galactica");
	assert_string_equal(json_string_value(json_object_get(o, "result")), "deployed");
	assert_int_equal(json_integer_value(json_object_get(o, "generation")), 5);
	assert_string_equal(json_string_value(json_object_get(o, "path")), "/nix/store/x-system");
	assert_true(json_is_true(json_object_get(o, "dirty")));
	json_decref(o);
	free(line);
	/* unknown values are null; a path a host sent with invalid UTF-8 stays a string */
	line = provenance_note_line("pegasus", "failed", -1, "/nix/store/\xff\x1b", false);
	o = json_loads(line, 0, NULL);
	assert_non_null(o);
	assert_true(json_is_null(json_object_get(o, "generation")));
	assert_string_equal(json_string_value(json_object_get(o, "path")), "/nix/store/\\xff\\x1b");
	json_decref(o);
	free(line);
}

static void test_provenance_note_append_on_unknown_commit_fails(void **state)
{
	struct fixture *fx = *state;
	char *a = commit_flake(fx, "1");

	assert_int_equal(provenance_note_append(fx->dir, "0123456789abcdef0123456789abcdef01234567",
				 "2026-11-29T10:00:00Z alpha deployed"),
		CONSTEL_ENOTFOUND);
	free(a);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_provenance_open_reports_head_of_clean_tree),
		T(test_provenance_untracked_file_is_not_dirty),
		T(test_provenance_tracked_changes_are_dirty_and_listed),
		T(test_provenance_deleted_tracked_file_is_dirty),
		cmocka_unit_test(test_provenance_open_outside_git_is_enotfound),
		T(test_provenance_open_on_unborn_branch_has_no_head),
		T(test_provenance_resolves_branch_tag_and_short_sha),
		T(test_provenance_counts_commits_behind_head),
		T(test_provenance_flake_ref_names_commit_and_subfolder),
		T(test_provenance_flake_at_accepts_only_this_commit),
		T(test_provenance_export_holds_commit_not_working_tree),
		T(test_provenance_source_for_file_inventory_in_subfolder),
		T(test_provenance_source_for_flake_inventory),
		T(test_provenance_notes_from_8_threads_all_kept),
		T(test_provenance_notes_from_processes_all_kept),
		T(test_provenance_log_is_newest_first_and_filters_host),
		T(test_provenance_log_orders_same_second_by_append),
		T(test_provenance_log_without_notes_is_empty),
		cmocka_unit_test(test_provenance_note_line_format),
		T(test_provenance_note_append_on_unknown_commit_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
