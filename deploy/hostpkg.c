#include "deploy/hostpkg.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "deploy/host_sh.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *made;

static int put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t len = strlen(text);
	int ret = 0;

	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) < 0)
		ret = error_set("cannot write %s", path);
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

/* The tree in a private temporary folder, added to the store: its path. */
static char *make(void)
{
	char tmpl[] = "/tmp/constel-host.XXXXXX", *dir, *bin, *path = NULL;
	struct buf out = BUF_INIT(4096), err = BUF_INIT(65536);
	static const struct {
		const char *name, *text;
	} files[] = {
		{"start.sh", host_sh_start},
		{"watchdog.sh", host_sh_watchdog},
		{"wait.sh", host_sh_wait},
		{"record.sh", host_sh_record},
		{"reboot.sh", host_sh_reboot},
	};
	int ret = 0;

	if (!mkdtemp(tmpl)) {
		error_set("cannot make a temporary folder: %s", tmpl);
		return NULL;
	}
	dir = xasprintf("%s/constel-host-%s", tmpl, CONSTEL_VERSION);
	bin = xasprintf("%s/bin", dir);
	if (mkdir(dir, 0755) < 0 || mkdir(bin, 0755) < 0)
		ret = error_set("cannot make %s", bin);
	for (size_t i = 0; ret == 0 && i < sizeof(files) / sizeof(files[0]); i++)
		ret = put(dir, files[i].name, files[i].text, 0444);
	if (ret == 0)
		ret = put(bin, "constel-host", host_sh_dispatch, 0555);
	if (ret == 0) {
		const char *argv[] = {
			"nix-store", "--add-fixed", "--recursive", "sha256", dir, NULL};

		if (proc_run(argv, &out, &err) < 0)
			error_set("cannot add constel's host commands to the store: %s",
				err.len ? buf_tail_lines(&err, 1) : error_last());
		else if (out.data && out.len > 1 && out.data[out.len - 1] == '\n')
			path = xstrndup(out.data, out.len - 1);
	}
	{
		const char *argv[] = {"rm", "-rf", tmpl, NULL};

		proc_run(argv, NULL, NULL);
	}
	free(dir);
	free(bin);
	buf_release(&out);
	buf_release(&err);
	return path;
}

const char *hostpkg_path(void)
{
	const char *path;

	pthread_mutex_lock(&lock);
	if (!made)
		made = make();
	path = made;
	pthread_mutex_unlock(&lock);
	return path;
}

char *hostpkg_sudoers(const char *user)
{
	const char *pkg = hostpkg_path();
	char *file, *line = NULL;
	struct buf out = BUF_INIT(4096);

	if (!pkg)
		return NULL;
	file = xasprintf("%s/bin/constel-host", pkg);
	{
		const char *argv[] = {"sha256sum", file, NULL};

		if (proc_run(argv, &out, NULL) == 0 && out.len > 64)
			/*
			 * sudo checks the digest of what it runs: these bytes, and no
			 * others; run by its path (not a descriptor) it finds the
			 * scripts beside it
			 */
			line = xasprintf("Defaults!%s fdexec=never\n"
					 "%s ALL=(root) NOPASSWD: sha256:%.64s %s\n",
				file, user, out.data, file);
		else
			error_set("cannot compute the digest of %s", file);
	}
	free(file);
	buf_release(&out);
	return line;
}
