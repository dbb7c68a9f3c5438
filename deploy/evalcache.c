/*
 * deploy/evalcache.c: the evaluation cache. See deploy/evalcache.h.
 */
#include "deploy/evalcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "deploy/provenance.h"

/* An entry is a few hundred bytes; anything much larger is not one. */
#define ENTRY_MAX 65536

int evalcache_open(struct evalcache *c, const char *base)
{
	char *root = base ? xstrdup(base) : cache_dir();

	c->dir = NULL;
	if (!root)
		return -1;
	c->dir = xasprintf("%s/eval", root);
	free(root);
	if (dir_make_private(c->dir) < 0) {
		free(c->dir);
		c->dir = NULL;
		return -1;
	}
	return 0;
}

void evalcache_release(struct evalcache *c)
{
	free(c->dir);
	c->dir = NULL;
}

char *evalcache_key(const char *commit, const char *flake, json_t *attr_path, const char *system,
	const char *nix_version)
{
	json_t *key = json_object();
	char *text;

	json_object_set_new(key, "attrPath", json_deep_copy(attr_path));
	json_object_set_new(key, "commit", json_string(commit));
	json_object_set_new(key, "constel", json_string(CONSTEL_VERSION));
	json_object_set_new(key, "flake", json_string(flake));
	json_object_set_new(key, "nix", json_string(nix_version));
	json_object_set_new(key, "system", json_string(system));
	text = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(key);
	if (!text) {
		fprintf(stderr, "constel: cannot write an evaluation key\n");
		abort();
	}
	return text;
}

/* DIR/SHA1.json, the file of `key` (caller frees). */
static char *entry_path(const struct evalcache *c, const char *key)
{
	git_oid oid;
	char hex[GIT_OID_HEXSZ + 1];

	provenance_global_init();
	if (git_odb_hash(&oid, key, strlen(key), GIT_OBJECT_BLOB) < 0) {
		fprintf(stderr, "constel: cannot hash an evaluation key\n");
		abort();
	}
	git_oid_tostr(hex, sizeof(hex), &oid);
	return xasprintf("%s/%s.json", c->dir, hex);
}

/* A store path as constel writes one: absolute, one line, nothing odd in it. */
static bool plausible_path(const char *p, const char *suffix)
{
	size_t n, m = strlen(suffix);

	if (!p || p[0] != '/' || strstr(p, "/../") || strstr(p, "/./"))
		return false;
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	n = strlen(p);
	return n > m && !strcmp(p + n - m, suffix);
}

/*
 * The entry of `key` as JSON (at most `max` bytes), checked to be for that
 * key, and marked used; CONSTEL_ENOTFOUND when there is none.
 */
static int entry_read(const struct evalcache *c, const char *key, size_t max, json_t **entry)
{
	char *path = entry_path(c, key), chunk[65536];
	struct buf b = BUF_INIT(max + 1);
	json_t *want = NULL;
	json_error_t jerr;
	ssize_t n;
	int fd, ret = CONSTEL_ENOTFOUND;

	*entry = NULL;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while (b.len <= max && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		buf_add(&b, chunk, (size_t)n);
	}
	if (b.len > max || !(*entry = json_loadb(b.data ? b.data : "", b.len, 0, &jerr)) ||
		!(want = json_loads(key, 0, &jerr)) ||
		!json_equal(json_object_get(*entry, "key"), want)) {
		close(fd);
		json_decref(*entry);
		*entry = NULL;
		goto out;
	}
	/* used: not pruned (an entry is never renamed onto while it is read) */
	futimens(fd, NULL);
	close(fd);
	ret = 0;
out:
	buf_release(&b);
	json_decref(want);
	free(path);
	return ret;
}

/* Writes `entry` (its "key" added here) as the entry of `key`, atomically. */
static int entry_write(const struct evalcache *c, const char *key, json_t *entry)
{
	char *path = entry_path(c, key), *tmp = xasprintf("%s/.new-XXXXXX", c->dir), *text = NULL;
	json_t *k;
	json_error_t jerr;
	size_t len, done = 0;
	int fd, ret = 0;

	k = json_loads(key, 0, &jerr);
	if (!k) {
		ret = error_set("not an evaluation key: %s", jerr.text);
		goto out;
	}
	json_object_set_new(entry, "key", k);
	text = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS);
	len = text ? strlen(text) : 0;
	/* mkstemp: a new file, 0600, O_EXCL: nothing planted is written through */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = error_set("cannot create a file in '%s': %s", c->dir, strerror(errno));
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = error_set(
				"cannot write '%s': %s", tmp, n < 0 ? strerror(errno) : "no space");
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 && !ret)
		ret = error_set("cannot write '%s': %s", tmp, strerror(errno));
	if (!ret && rename(tmp, path) < 0)
		ret = error_set("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
	if (ret)
		unlink(tmp);
out:
	free(text);
	free(path);
	free(tmp);
	return ret;
}

int evalcache_get(const struct evalcache *c, const char *key, char **drv_path, char **out_path)
{
	json_t *entry;
	const char *drv, *out;
	int ret;

	*drv_path = *out_path = NULL;
	if ((ret = entry_read(c, key, ENTRY_MAX, &entry)) < 0)
		return ret;
	drv = json_string_value(json_object_get(entry, "drvPath"));
	out = json_string_value(json_object_get(entry, "outPath"));
	if (!plausible_path(drv, ".drv") || !plausible_path(out, "")) {
		json_decref(entry);
		return CONSTEL_ENOTFOUND;
	}
	*drv_path = xstrdup(drv);
	*out_path = xstrdup(out);
	json_decref(entry);
	return 0;
}

int evalcache_put(
	const struct evalcache *c, const char *key, const char *drv_path, const char *out_path)
{
	json_t *entry = json_object();
	int ret;

	json_object_set_new(entry, "drvPath", json_string(drv_path));
	json_object_set_new(entry, "outPath", json_string(out_path));
	ret = entry_write(c, key, entry);
	json_decref(entry);
	return ret;
}

int evalcache_get_value(const struct evalcache *c, const char *key, json_t **value)
{
	json_t *entry;
	int ret;

	*value = NULL;
	if ((ret = entry_read(c, key, EVALCACHE_VALUE_MAX, &entry)) < 0)
		return ret;
	*value = json_incref(json_object_get(entry, "value"));
	json_decref(entry);
	return *value ? 0 : CONSTEL_ENOTFOUND;
}

int evalcache_put_value(const struct evalcache *c, const char *key, json_t *value)
{
	json_t *entry = json_object();
	int ret;

	json_object_set(entry, "value", value);
	ret = entry_write(c, key, entry);
	json_decref(entry);
	return ret;
}

size_t evalcache_prune(const struct evalcache *c, int days)
{
	DIR *d = opendir(c->dir);
	struct dirent *de;
	time_t cutoff = time(NULL) - (time_t)days * 86400;
	size_t removed = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		size_t n = strlen(de->d_name);

		/* entries, and the temporary files of writers that died */
		if (de->d_name[0] == '.' && strncmp(de->d_name, ".new-", 5))
			continue;
		if (de->d_name[0] != '.' && (n < 6 || strcmp(de->d_name + n - 5, ".json")))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			!S_ISREG(st.st_mode) || st.st_mtime >= cutoff)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
