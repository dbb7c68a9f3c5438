#include "deploy/gcroots.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Unlinks the oldest roots of `dir` past GCROOTS_KEEP (names sort by time). */
static void prune(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct strvec names = STRVEC_INIT;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "system-", 7))
			strvec_push(&names, e->d_name);
	closedir(d);
	qsort(names.v, names.nr, sizeof(*names.v), by_name);
	for (size_t i = 0; i + GCROOTS_KEEP < names.nr; i++) {
		char *p = xasprintf("%s/%s", dir, names.v[i]);

		unlink(p);
		free(p);
	}
	strvec_release(&names);
}

int gcroots_keep(const char *host, const char *path)
{
	char *state = state_dir(), *dir = NULL, *link = NULL;
	struct buf err = BUF_INIT(65536);
	struct timespec now;
	int ret = -1;

	if (!state)
		return -1;
	dir = xasprintf("%s/gcroots/%s", state, host);
	if (dir_make_private(dir) < 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &now);
	/* zero-padded time first: the names sort as the roots were made */
	link = xasprintf("%s/system-%012lld.%09ld", dir, (long long)now.tv_sec, now.tv_nsec);
	{
		/* realising a valid path builds nothing: it only adds the root */
		const char *argv[] = {"nix-store", "--realise", path, "--add-root", link,
			"--indirect", NULL};

		ret = proc_run(argv, NULL, &err);
	}
	if (ret < 0)
		error_set("cannot keep %s alive: %s", path,
			err.len ? buf_tail_lines(&err, 1) : error_last());
	else
		prune(dir);
out:
	buf_release(&err);
	free(state);
	free(dir);
	free(link);
	return ret;
}
