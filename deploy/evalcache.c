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

int evalcache_get(const struct evalcache *c, const char *key, char **drv_path, char **out_path)
{
	char *path = entry_path(c, key), buf[ENTRY_MAX];
	json_t *entry = NULL, *want = NULL;
	json_error_t jerr;
	const char *drv, *out;
	ssize_t n;
	size_t len = 0;
	int fd, ret = CONSTEL_ENOTFOUND;

	*drv_path = *out_path = NULL;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len == sizeof(buf)) {
		close(fd);
		goto out;
	}
	entry = json_loadb(buf, len, 0, &jerr);
	want = json_loads(key, 0, &jerr);
	drv = json_string_value(json_object_get(entry, "drvPath"));
	out = json_string_value(json_object_get(entry, "outPath"));
	if (!want || !json_equal(json_object_get(entry, "key"), want) ||
		!plausible_path(drv, ".drv") || !plausible_path(out, "")) {
		close(fd);
		goto out;
	}
	/* used: not pruned (an entry is never renamed onto while it is read) */
	futimens(fd, NULL);
	close(fd);
	*drv_path = xstrdup(drv);
	*out_path = xstrdup(out);
	ret = 0;
out:
	json_decref(entry);
	json_decref(want);
	free(path);
	return ret;
}

int evalcache_put(
	const struct evalcache *c, const char *key, const char *drv_path, const char *out_path)
{
	char *path = entry_path(c, key), *tmp = xasprintf("%s/.new-XXXXXX", c->dir), *text = NULL;
	json_t *entry = json_object(), *k;
	json_error_t jerr;
	size_t len, done = 0;
	int fd, ret = 0;

	k = json_loads(key, 0, &jerr);
	if (!k) {
		ret = error_set("not an evaluation key: %s", jerr.text);
		goto out;
	}
	json_object_set_new(entry, "key", k);
	json_object_set_new(entry, "drvPath", json_string(drv_path));
	json_object_set_new(entry, "outPath", json_string(out_path));
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
	json_decref(entry);
	free(path);
	free(tmp);
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
