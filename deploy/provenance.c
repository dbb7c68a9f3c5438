#include "deploy/provenance.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <git2.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often a note append retries when another writer moved the ref. */
#define NOTE_RETRIES 50
/* A note bigger than this is not read by provenance_log() (untrusted size). */
#define NOTE_MAX (8u << 20)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Serialises note appends in this process; other processes are met by the ref's CAS. */
static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_libgit2(void)
{
	git_libgit2_init();
}

void provenance_global_init(void)
{
	pthread_once(&init_once, init_libgit2);
}

/* libgit2's last message, for our own. */
static const char *git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown libgit2 error";
}

static int repo_open(git_repository **repo, const char *path)
{
	int err;

	provenance_global_init();
	err = git_repository_open_ext(repo, path, 0, NULL);
	if (err == GIT_ENOTFOUND)
		return error_setc(CONSTEL_ENOTFOUND, "'%s' is not in a git repository", path);
	if (err < 0)
		return error_set("cannot open the git repository of '%s': %s", path, git_msg());
	if (git_repository_is_bare(*repo)) {
		git_repository_free(*repo);
		*repo = NULL;
		return error_set("the git repository of '%s' is bare", path);
	}
	return 0;
}

static char *deployer_name(void)
{
	char host[256];
	const char *user = getenv("USER");
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name)
		user = pw->pw_name;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return xasprintf("%s@%s", user ? user : "unknown", host);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tracked files that differ from HEAD, in the index or the working tree. */
static int collect_changes(git_repository *repo, struct strvec *changed)
{
	git_status_options opts;
	git_status_list *list = NULL;
	size_t n;

	git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	/* no INCLUDE_UNTRACKED: an untracked file is not part of what Nix builds */
	opts.flags = GIT_STATUS_OPT_SORT_CASE_SENSITIVELY | GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, repo, &opts) < 0)
		return error_set("cannot read the status of '%s': %s", git_repository_workdir(repo),
			git_msg());
	n = git_status_list_entrycount(list);
	for (size_t i = 0; i < n; i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		const git_diff_delta *d = e->head_to_index ? e->head_to_index : e->index_to_workdir;
		const char *path;

		if (!d || !(e->status & ~(unsigned)(GIT_STATUS_WT_NEW | GIT_STATUS_IGNORED)))
			continue;
		path = d->new_file.path ? d->new_file.path : d->old_file.path;
		if (!strvec_contains(changed, path))
			strvec_push(changed, path);
	}
	if (changed->nr > 1)
		qsort(changed->v, changed->nr, sizeof(*changed->v), cmp_str);
	git_status_list_free(list);
	return 0;
}

int provenance_open(struct provenance *p, const char *dir)
{
	git_repository *repo = NULL;
	git_oid oid;
	char sha[GIT_OID_HEXSZ + 1];
	size_t len;
	int ret, err;

	memset(p, 0, sizeof(*p));
	strvec_init(&p->changed);
	p->deployer = deployer_name();
	if ((ret = repo_open(&repo, dir)) < 0)
		goto out;
	p->repo_path = xstrdup(git_repository_workdir(repo));
	len = strlen(p->repo_path);
	if (len > 1 && p->repo_path[len - 1] == '/')
		p->repo_path[len - 1] = '\0';
	err = git_reference_name_to_id(&oid, repo, "HEAD");
	if (err == 0) {
		git_oid_tostr(sha, sizeof(sha), &oid);
		p->head = xstrdup(sha);
	} else if (err != GIT_ENOTFOUND && err != GIT_EUNBORNBRANCH) {
		ret = error_set("cannot read HEAD of '%s': %s", p->repo_path, git_msg());
		goto out;
	}
	if ((ret = collect_changes(repo, &p->changed)) < 0)
		goto out;
	p->dirty = p->changed.nr > 0;
	ret = 0;
out:
	git_repository_free(repo);
	return ret;
}

void provenance_release(struct provenance *p)
{
	free(p->repo_path);
	free(p->head);
	strvec_release(&p->changed);
	free(p->deployer);
	memset(p, 0, sizeof(*p));
}

/* Looks up the commit `rev` names in an open repository. */
static int lookup_commit(git_repository *repo, const char *rev, git_commit **out)
{
	git_object *obj = NULL, *peeled = NULL;
	int err, ret;

	err = git_revparse_single(&obj, repo, rev);
	if (err == GIT_ENOTFOUND) {
		ret = error_setc(CONSTEL_ENOTFOUND, "unknown revision '%s' in '%s'", rev,
			git_repository_workdir(repo));
		goto out;
	}
	if (err < 0) {
		ret = error_set("cannot resolve revision '%s': %s", rev, git_msg());
		goto out;
	}
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		ret = error_setc(CONSTEL_ENOTFOUND, "revision '%s' does not name a commit", rev);
		goto out;
	}
	*out = (git_commit *)peeled;
	peeled = NULL;
	ret = 0;
out:
	git_object_free(obj);
	git_object_free(peeled);
	return ret;
}

int provenance_resolve_rev(const char *repo_path, const char *rev, char **sha_out)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	char sha[GIT_OID_HEXSZ + 1];
	int ret;

	*sha_out = NULL;
	if ((ret = repo_open(&repo, repo_path)) < 0)
		goto out;
	if ((ret = lookup_commit(repo, rev, &commit)) < 0)
		goto out;
	git_oid_tostr(sha, sizeof(sha), git_commit_id(commit));
	*sha_out = xstrdup(sha);
out:
	git_commit_free(commit);
	git_repository_free(repo);
	return ret;
}

/* `path` relative to `root` ("" when equal), or NULL when outside it; both absolute. */
static const char *path_under(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (strncmp(path, root, n))
		return NULL;
	if (path[n] == '\0')
		return path + n;
	if (path[n] == '/')
		return path + n + 1;
	if (n == 1 && root[0] == '/')
		return path + 1;
	return NULL;
}

/* The canonical form of a folder, or NULL with a message. */
static char *real_dir(const char *path)
{
	char *real = realpath(path, NULL);

	if (!real)
		error_set("cannot resolve '%s': %s", path, strerror(errno));
	return real;
}

/* Percent-encodes what a flake URL's path or query value cannot hold as is. */
static void url_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			strchr("/._~-", c))
			buf_add(b, s, 1);
		else
			buf_printf(b, "%%%02X", c);
	}
}

/* Undoes url_escape(); NULL when `s` is not a whole escaped value. Caller frees. */
static char *url_unescape(const char *s, size_t n)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (s[i] != '%') {
			if (s[i] == '&' || s[i] == '=' || s[i] == '?' || s[i] == '#')
				goto bad;
			buf_add(&b, &s[i], 1);
			continue;
		}
		if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
			!isxdigit((unsigned char)s[i + 2]) || sscanf(s + i + 1, "%2x", &v) != 1 ||
			!v)
			goto bad;
		buf_add(&b, (char[]){(char)v}, 1);
		i += 2;
	}
	return buf_detach(&b);
bad:
	buf_release(&b);
	return NULL;
}

int provenance_flake_at(const char *repo_path, const char *ref, const char *sha, char **subdir_out)
{
	char *root = NULL, *abs = NULL;
	git_repository *repo = NULL;
	struct buf want = BUF_INIT(0);
	const char *sub, *rest;
	int ret = CONSTEL_ENOTFOUND;

	*subdir_out = NULL;
	if (!(root = realpath(repo_path, NULL)))
		goto out;
	if (ref[0] == '/') {
		size_t n;

		if (!(abs = realpath(ref, NULL)) || !(sub = path_under(abs, root)))
			goto out;
		/* the nearest repository above the flake is this one, not one inside it */
		if (repo_open(&repo, abs) < 0)
			goto out;
		n = strlen(root);
		if (strncmp(git_repository_workdir(repo), root, n) ||
			strcmp(git_repository_workdir(repo) + n, "/"))
			goto out;
		*subdir_out = xstrdup(sub);
		ret = 0;
		goto out;
	}
	buf_adds(&want, "git+file://");
	url_escape(&want, root);
	buf_printf(&want, "?rev=%s", sha);
	if (strncmp(ref, want.data, want.len))
		goto out;
	rest = ref + want.len;
	if (!*rest) {
		*subdir_out = xstrdup("");
		ret = 0;
	} else if (!strncmp(rest, "&dir=", 5) && rest[5]) {
		*subdir_out = url_unescape(rest + 5, strlen(rest + 5));
		ret = *subdir_out ? 0 : CONSTEL_ENOTFOUND;
	}
out:
	if (ret == CONSTEL_ENOTFOUND)
		error_setc(ret, "'%s' is not the repository '%s' at %.12s", ref, repo_path, sha);
	git_repository_free(repo);
	buf_release(&want);
	free(root);
	free(abs);
	return ret;
}

int provenance_flake_ref(const char *repo_path, const char *inventory_dir, const char *flake,
	const char *sha, char **ref_out)
{
	char *joined = NULL, *abs = NULL, *root = NULL;
	struct buf ref = BUF_INIT(0);
	const char *local = flake, *sub;
	int ret = -1;

	*ref_out = NULL;
	if (!strncmp(local, "path:", 5))
		local += 5;
	else if (!strncmp(local, "git+file://", 11))
		local += 11;
	if (strchr(local, ':') || strchr(local, '?')) {
		ret = error_set("--rev builds from the configuration repository, but the flake "
				"'%s' is not a local path in it",
			flake);
		goto out;
	}
	joined = local[0] == '/' ? xstrdup(local) : xasprintf("%s/%s", inventory_dir, local);
	if (!(abs = real_dir(joined)) || !(root = real_dir(repo_path)))
		goto out;
	sub = path_under(abs, root);
	if (!sub) {
		ret = error_set("the flake '%s' is outside the repository '%s'", abs, root);
		goto out;
	}
	buf_adds(&ref, "git+file://");
	url_escape(&ref, root);
	if (sha)
		buf_printf(&ref, "?rev=%s", sha);
	if (*sub) {
		buf_adds(&ref, sha ? "&dir=" : "?dir=");
		url_escape(&ref, sub);
	}
	*ref_out = buf_detach(&ref);
	ret = 0;
out:
	buf_release(&ref);
	free(joined);
	free(abs);
	free(root);
	return ret;
}

int provenance_export(const char *repo_path, const char *sha, char **dir_out)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_checkout_options opts;
	const char *tmp = getenv("TMPDIR");
	char *dir = NULL;
	int ret;

	*dir_out = NULL;
	git_checkout_options_init(&opts, GIT_CHECKOUT_OPTIONS_VERSION);
	if ((ret = repo_open(&repo, repo_path)) < 0)
		goto out;
	if ((ret = lookup_commit(repo, sha, &commit)) < 0)
		goto out;
	if (git_commit_tree(&tree, commit) < 0) {
		ret = error_set("cannot read the tree of '%s': %s", sha, git_msg());
		goto out;
	}
	dir = xasprintf("%s/constel-rev.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		ret = error_set("cannot create a folder '%s': %s", dir, strerror(errno));
		free(dir);
		dir = NULL;
		goto out;
	}
	/* FORCE writes every file into the empty folder; the repository's index is left alone */
	opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	opts.target_directory = dir;
	if (git_checkout_tree(repo, (const git_object *)tree, &opts) < 0) {
		ret = error_set("cannot write the tree of '%s' to '%s': %s", sha, dir, git_msg());
		goto out;
	}
	*dir_out = dir;
	dir = NULL;
	ret = 0;
out:
	provenance_export_remove(dir);
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	return ret;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void provenance_export_remove(char *dir)
{
	const char *base;

	if (!dir)
		return;
	base = strrchr(dir, '/');
	/* only ever a folder provenance_export() made: never a tree the user named */
	if (base && !strncmp(base + 1, "constel-rev.", 12))
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

int provenance_source_init(struct provenance_source *s, const char *repo_path,
	const struct inventory *inv, const bool *selected, const char *sha)
{
	const char *flake = NULL, *flake_host = NULL;
	bool files = false;
	char *root = NULL, *invdir = NULL;
	const char *sub;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	s->sha = xstrdup(sha);
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];

		if (selected && !selected[i])
			continue;
		if (h->file) {
			files = true;
		} else if (!flake) {
			flake = h->flake;
			flake_host = h->name;
		} else if (strcmp(flake, h->flake)) {
			ret = error_set("--rev needs the selected hosts to share one flake; '%s' "
					"uses '%s' and '%s' uses '%s'",
				flake_host, flake, h->name, h->flake);
			goto out;
		}
	}
	if (flake &&
		(ret = provenance_flake_ref(repo_path, inv->dir, flake, sha, &s->flake_ref)) < 0)
		goto out;
	if (files) {
		if (!(root = real_dir(repo_path)) || !(invdir = real_dir(inv->dir))) {
			ret = -1;
			goto out;
		}
		sub = path_under(invdir, root);
		if (!sub) {
			ret = error_set(
				"the inventory's folder '%s' is outside the repository '%s'",
				invdir, root);
			goto out;
		}
		if ((ret = provenance_export(repo_path, sha, &s->export_dir)) < 0)
			goto out;
		s->inventory_dir =
			*sub ? xasprintf("%s/%s", s->export_dir, sub) : xstrdup(s->export_dir);
	}
	ret = 0;
out:
	free(root);
	free(invdir);
	if (ret < 0)
		provenance_source_release(s);
	return ret;
}

void provenance_source_release(struct provenance_source *s)
{
	free(s->sha);
	free(s->flake_ref);
	provenance_export_remove(s->export_dir);
	free(s->inventory_dir);
	memset(s, 0, sizeof(*s));
}

char *provenance_note_line(
	const char *host, const char *result, long generation, const char *path, bool dirty)
{
	json_t *o = json_object();
	char when[32], *safe = text_sanitize(path), *line;
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "result", json_string(result));
	json_object_set_new(
		o, "generation", generation >= 0 ? json_integer(generation) : json_null());
	json_object_set_new(o, "path", safe ? json_string(safe) : json_null());
	json_object_set_new(o, "dirty", json_boolean(dirty));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	free(safe);
	return line;
}

static int note_signature(git_repository *repo, git_signature **sig)
{
	if (git_signature_default(sig, repo) == 0)
		return 0;
	if (git_signature_now(sig, "constel", "constel@localhost") == 0)
		return 0;
	return error_set("cannot make a git signature: %s", git_msg());
}

static bool note_conflict(int err)
{
	return err == GIT_EMODIFIED || err == GIT_EEXISTS || err == GIT_ELOCKED;
}

/*
 * One attempt: read the notes ref's tip, write a notes commit on top of it
 * holding the note plus `line`, and move the ref only if it still points at
 * that tip. 1 when another writer won the race (try again), 0 done, < 0 error.
 */
static int note_try(
	git_repository *repo, const git_oid *target, const char *line, const git_signature *sig)
{
	git_oid tip, commit_id, blob_id;
	git_commit *parent = NULL;
	git_note *note = NULL;
	git_reference *ref = NULL;
	struct buf text = BUF_INIT(0);
	bool have_tip;
	int err, ret;

	err = git_reference_name_to_id(&tip, repo, PROVENANCE_NOTES_REF);
	if (err < 0 && err != GIT_ENOTFOUND) {
		ret = error_set("cannot read %s: %s", PROVENANCE_NOTES_REF, git_msg());
		goto out;
	}
	have_tip = err == 0;
	if (have_tip && git_commit_lookup(&parent, repo, &tip) < 0) {
		ret = error_set(
			"cannot read the commit of %s: %s", PROVENANCE_NOTES_REF, git_msg());
		goto out;
	}
	if (parent) {
		err = git_note_commit_read(&note, repo, parent, target);
		if (err < 0 && err != GIT_ENOTFOUND) {
			ret = error_set("cannot read the note: %s", git_msg());
			goto out;
		}
	}
	if (note) {
		const char *old = git_note_message(note);
		size_t n = strlen(old);

		buf_add(&text, old, n);
		if (n && old[n - 1] != '\n')
			buf_adds(&text, "\n");
	}
	buf_printf(&text, "%s\n", line);
	if (git_note_commit_create(
		    &commit_id, &blob_id, repo, parent, sig, sig, target, text.data, 1) < 0) {
		ret = error_set("cannot write the note: %s", git_msg());
		goto out;
	}
	if (have_tip)
		err = git_reference_create_matching(
			&ref, repo, PROVENANCE_NOTES_REF, &commit_id, 1, &tip, "constel: note");
	else
		err = git_reference_create(
			&ref, repo, PROVENANCE_NOTES_REF, &commit_id, 0, "constel: note");
	if (note_conflict(err)) {
		ret = 1;
		goto out;
	}
	if (err < 0) {
		ret = error_set("cannot update %s: %s", PROVENANCE_NOTES_REF, git_msg());
		goto out;
	}
	ret = 0;
out:
	buf_release(&text);
	git_reference_free(ref);
	git_note_free(note);
	git_commit_free(parent);
	return ret;
}

int provenance_note_append(const char *repo_path, const char *sha, const char *line)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_signature *sig = NULL;
	unsigned seed = (unsigned)(uintptr_t)&repo ^ (unsigned)time(NULL);
	int ret;

	if (strchr(line, '\n'))
		return error_set("a note line holds no newline: '%s'", line);
	pthread_mutex_lock(&note_lock);
	if ((ret = repo_open(&repo, repo_path)) < 0)
		goto out;
	if ((ret = lookup_commit(repo, sha, &commit)) < 0)
		goto out;
	if ((ret = note_signature(repo, &sig)) < 0)
		goto out;
	for (int i = 0; i < NOTE_RETRIES; i++) {
		ret = note_try(repo, git_commit_id(commit), line, sig);
		if (ret <= 0)
			goto out;
		/* another process moved the ref: back off a little, randomly, and redo */
		usleep(2000 + rand_r(&seed) % 20000);
	}
	ret = error_set("cannot update %s in '%s': %d writers in a row got there first",
		PROVENANCE_NOTES_REF, repo_path, NOTE_RETRIES);
out:
	git_signature_free(sig);
	git_commit_free(commit);
	git_repository_free(repo);
	pthread_mutex_unlock(&note_lock);
	return ret;
}

static void event_release(struct provenance_event *e)
{
	free(e->revision);
	free(e->time);
	free(e->host);
	free(e->result);
	free(e->path);
}

void provenance_events_free(struct provenance_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		event_release(&ev[i]);
	free(ev);
}

/* A JSON note line (what constel writes now); false if it is not a whole one. */
static bool parse_json_line(const char *line, size_t len, struct provenance_event *e)
{
	json_t *o = json_loadb(line, len, 0, NULL);
	const char *time = json_string_value(json_object_get(o, "time"));
	const char *host = json_string_value(json_object_get(o, "host"));
	const char *result = json_string_value(json_object_get(o, "result"));
	const char *path = json_string_value(json_object_get(o, "path"));
	json_t *gen = json_object_get(o, "generation");
	bool ok = time && host && result;

	if (ok) {
		e->time = xstrdup(time);
		e->host = xstrdup(host);
		e->result = xstrdup(result);
		e->path = path ? xstrdup(path) : NULL;
		e->generation = json_is_integer(gen) && json_integer_value(gen) >= 0
					? (long)json_integer_value(gen)
					: -1;
		e->dirty = json_is_true(json_object_get(o, "dirty"));
	}
	json_decref(o);
	return ok;
}

/*
 * One line of a note: a JSON object, or (notes of earlier versions)
 * `TIME HOST RESULT [gen=N] [PATH] [dirty]`; false if it is neither.
 */
static bool parse_line(const char *line, size_t len, struct provenance_event *e)
{
	const char *p = line, *end = line + len;
	int field = 0;

	memset(e, 0, sizeof(*e));
	e->generation = -1;
	if (len && line[0] == '{')
		return parse_json_line(line, len, e);
	e->generation = -1;
	while (p < end) {
		const char *t;
		char *tok;
		long gen;

		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		t = p;
		while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		if (p == t)
			break;
		tok = xstrndup(t, (size_t)(p - t));
		if (field == 0) {
			e->time = tok;
			tok = NULL;
		} else if (field == 1) {
			e->host = tok;
			tok = NULL;
		} else if (field == 2) {
			e->result = tok;
			tok = NULL;
		} else if (!strncmp(tok, "gen=", 4)) {
			if (parse_long(tok + 4, 0, LONG_MAX, &gen) == 0)
				e->generation = gen;
		} else if (tok[0] == '/' && !e->path) {
			e->path = tok;
			tok = NULL;
		} else if (!strcmp(tok, "dirty")) {
			e->dirty = true;
		}
		free(tok);
		field++;
	}
	if (field >= 3)
		return true;
	event_release(e);
	return false;
}

/*
 * When each line of each note was appended: every append is one notes
 * commit changing one note, so walking the notes ref's first-parent history
 * from its tip numbers the appends newest first. The k-th newest change of
 * a note is its k-th line from the end. That orders events within one
 * second, where times alone cannot.
 */
struct note_appends {
	git_oid annotated;
	size_t *rank; /* newest first: rank[k] for the k-th line from the end */
	size_t n, alloc;
};

struct log_walk {
	git_repository *repo;
	const char *host;
	struct provenance_event *ev;
	size_t *line;  /* per event: its line's index in the note, counting every line */
	size_t *lines; /* per event: the number of lines of its note */
	size_t n, alloc, line_alloc, lines_alloc;
	struct note_appends *notes;
	size_t nnotes, notes_alloc;
	int error;
};

/* The annotated object of a notes tree path ("ab/cdef..." when fanned out), or -1. */
static int note_path_oid(const char *path, git_oid *out)
{
	char hex[GIT_OID_HEXSZ + 1];
	size_t n = 0;

	for (; *path && n < GIT_OID_HEXSZ; path++)
		if (*path != '/')
			hex[n++] = *path;
	hex[n] = '\0';
	if (n != GIT_OID_HEXSZ || *path)
		return -1;
	return git_oid_fromstr(out, hex);
}

static struct note_appends *note_appends_of(struct log_walk *w, const git_oid *oid, bool add)
{
	for (size_t i = 0; i < w->nnotes; i++)
		if (git_oid_equal(&w->notes[i].annotated, oid))
			return &w->notes[i];
	if (!add)
		return NULL;
	xgrow((void **)&w->notes, &w->notes_alloc, w->nnotes + 1, sizeof(*w->notes));
	memset(&w->notes[w->nnotes], 0, sizeof(*w->notes));
	git_oid_cpy(&w->notes[w->nnotes].annotated, oid);
	return &w->notes[w->nnotes++];
}

/* Numbers the appends of the notes ref's history; on any error the order is by time only. */
static void rank_appends(struct log_walk *w, const git_oid *tip)
{
	git_commit *c = NULL, *parent = NULL;
	size_t rank = 0;

	if (git_commit_lookup(&c, w->repo, tip) < 0)
		return;
	while (c) {
		git_tree *tree = NULL, *ptree = NULL;
		git_diff *diff = NULL;

		parent = NULL;
		if (git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) < 0)
			break;
		if (git_commit_tree(&tree, c) == 0 &&
			(!parent || git_commit_tree(&ptree, parent) == 0) &&
			git_diff_tree_to_tree(&diff, w->repo, ptree, tree, NULL) == 0) {
			for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
				const git_diff_delta *d = git_diff_get_delta(diff, i);
				struct note_appends *a;
				git_oid oid;

				if (note_path_oid(d->new_file.path, &oid) < 0)
					continue;
				a = note_appends_of(w, &oid, true);
				xgrow((void **)&a->rank, &a->alloc, a->n + 1, sizeof(*a->rank));
				a->rank[a->n++] = rank;
			}
		}
		rank++;
		git_diff_free(diff);
		git_tree_free(ptree);
		git_tree_free(tree);
		git_commit_free(c);
		c = parent;
	}
	git_commit_free(c);
}

static int log_note(const git_oid *blob_id, const git_oid *annotated, void *data)
{
	struct log_walk *w = data;
	git_blob *blob = NULL;
	char sha[GIT_OID_HEXSZ + 1];
	const char *p, *end;
	size_t line = 0, first = w->n;

	if (git_blob_lookup(&blob, w->repo, blob_id) < 0) {
		w->error =
			error_set("cannot read a note of %s: %s", PROVENANCE_NOTES_REF, git_msg());
		return -1;
	}
	git_oid_tostr(sha, sizeof(sha), annotated);
	p = git_blob_rawcontent(blob);
	end = git_blob_rawsize(blob) <= NOTE_MAX ? p + git_blob_rawsize(blob) : p;
	for (; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct provenance_event e;

		if (parse_line(p, len, &e)) {
			if (w->host && strcmp(e.host, w->host)) {
				event_release(&e);
			} else {
				e.revision = xstrdup(sha);
				xgrow((void **)&w->ev, &w->alloc, w->n + 1, sizeof(*w->ev));
				xgrow((void **)&w->line, &w->line_alloc, w->n + 1,
					sizeof(*w->line));
				xgrow((void **)&w->lines, &w->lines_alloc, w->n + 1,
					sizeof(*w->lines));
				w->line[w->n] = line;
				w->ev[w->n++] = e;
			}
		}
		p = nl ? nl + 1 : end;
	}
	for (size_t i = first; i < w->n; i++)
		w->lines[i] = line;
	git_blob_free(blob);
	return 0;
}

struct sorted_event {
	struct provenance_event e;
	size_t rank; /* of its append, newest first; SIZE_MAX when unknown */
	size_t seq;  /* order of reading */
};

static int cmp_newest_first(const void *a, const void *b)
{
	const struct sorted_event *x = a, *y = b;
	int c = strcmp(y->e.time, x->e.time);

	if (c)
		return c;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static size_t event_rank(struct log_walk *w, size_t i)
{
	git_oid oid;
	struct note_appends *a;
	size_t from_end = w->lines[i] - 1 - w->line[i];

	if (git_oid_fromstr(&oid, w->ev[i].revision) < 0)
		return SIZE_MAX;
	a = note_appends_of(w, &oid, false);
	return a && from_end < a->n ? a->rank[from_end] : SIZE_MAX;
}

int provenance_log(
	const char *repo_path, const char *host, struct provenance_event **out, size_t *n)
{
	struct log_walk w = {0};
	struct sorted_event *s = NULL;
	git_oid tip;
	int ret, err;

	*out = NULL;
	*n = 0;
	if ((ret = repo_open(&w.repo, repo_path)) < 0)
		goto out;
	w.host = host;
	err = git_reference_name_to_id(&tip, w.repo, PROVENANCE_NOTES_REF);
	if (err == GIT_ENOTFOUND) {
		ret = 0;
		goto out;
	}
	if (err == 0)
		err = git_note_foreach(w.repo, PROVENANCE_NOTES_REF, log_note, &w);
	if (err < 0) {
		ret = w.error ? w.error
			      : error_set("cannot read %s: %s", PROVENANCE_NOTES_REF, git_msg());
		goto out;
	}
	rank_appends(&w, &tip);
	s = xcalloc(w.n + 1, sizeof(*s));
	for (size_t i = 0; i < w.n; i++) {
		s[i].e = w.ev[i];
		s[i].rank = event_rank(&w, i);
		s[i].seq = i;
	}
	qsort(s, w.n, sizeof(*s), cmp_newest_first);
	for (size_t i = 0; i < w.n; i++)
		w.ev[i] = s[i].e;
	*out = w.ev;
	*n = w.n;
	w.ev = NULL;
	w.n = 0;
	ret = 0;
out:
	free(s);
	provenance_events_free(w.ev, w.n);
	free(w.line);
	free(w.lines);
	for (size_t i = 0; i < w.nnotes; i++)
		free(w.notes[i].rank);
	free(w.notes);
	git_repository_free(w.repo);
	return ret;
}

int provenance_behind(const char *repo_path, const char *head, const char *rev, size_t *behind)
{
	git_repository *repo = NULL;
	git_commit *a = NULL, *b = NULL;
	size_t ahead = 0, back = 0;
	int ret;

	*behind = 0;
	if ((ret = repo_open(&repo, repo_path)) < 0)
		goto out;
	if ((ret = lookup_commit(repo, head, &a)) < 0 || (ret = lookup_commit(repo, rev, &b)) < 0)
		goto out;
	if (git_graph_ahead_behind(&ahead, &back, repo, git_commit_id(a), git_commit_id(b)) < 0) {
		ret = error_set("cannot compare '%s' with '%s': %s", head, rev, git_msg());
		goto out;
	}
	*behind = ahead;
	ret = 0;
out:
	git_commit_free(a);
	git_commit_free(b);
	git_repository_free(repo);
	return ret;
}

void provenance_notes_init(struct provenance_notes *n, const char *repo_path, const char *sha,
	bool dirty, const struct inventory *inv)
{
	memset(n, 0, sizeof(*n));
	n->repo_path = repo_path;
	n->sha = sha;
	n->dirty = dirty;
	n->inv = inv;
	pthread_mutex_init(&n->lock, NULL);
}

void provenance_notes_release(struct provenance_notes *n)
{
	pthread_mutex_destroy(&n->lock);
	free(n->error);
	n->error = NULL;
}

void provenance_on_result(void *data, size_t host, const struct host_result *res)
{
	struct provenance_notes *n = data;
	char *line;

	if (!n->repo_path || !n->sha || res->status == HOST_PENDING || res->status == HOST_SKIPPED)
		return;
	/* "deployed" with nothing recorded: dry-activate, which changes nothing */
	if (res->status == HOST_DEPLOYED && !res->did)
		return;
	line = provenance_note_line(n->inv->hosts[host].name,
		res->did ? res->did : host_status_name(res->status), res->generation, res->path,
		n->dirty);
	if (provenance_note_append(n->repo_path, n->sha, line) < 0) {
		pthread_mutex_lock(&n->lock);
		if (!n->error)
			n->error = xasprintf("%s: %s", n->inv->hosts[host].name, error_last());
		pthread_mutex_unlock(&n->lock);
	}
	free(line);
}
