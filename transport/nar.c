/*
 * transport/nar.c: a store path serialised as a NAR (Nix ARchive), written
 * straight from the file system, so a copy needs no `nix-store --export`
 * process in between. The format is Nix's: every field a string (64-bit
 * little-endian length, the bytes, zero padding to 8), directories with
 * their entries in byte order, file contents as one length-prefixed blob.
 * The receiving Nix checks the result against the path's registered NAR
 * hash, so a wrong byte can never go unnoticed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/internal.h"

#define NAR_BUF (256 * 1024)
/* Store paths are shallow; this only stops a pathological tree. */
#define NAR_MAX_DEPTH 256

int transport__out_flush(struct transport_out *o)
{
	size_t done = 0;

	while (done < o->len) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return error_set("writing the copy stream: %s", strerror(errno));
		done += (size_t)n;
	}
	o->len = 0;
	return 0;
}

int transport__out_bytes(struct transport_out *o, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		size_t room = NAR_BUF - o->len, n = len < room ? len : room;

		memcpy(o->buf + o->len, p, n);
		o->len += n;
		o->total += n;
		p += n;
		len -= n;
		if (o->len == NAR_BUF && transport__out_flush(o) < 0)
			return -1;
	}
	return 0;
}

int transport__out_u64(struct transport_out *o, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	return transport__out_bytes(o, b, 8);
}

static int out_pad(struct transport_out *o, uint64_t len)
{
	static const char zero[8];

	return len % 8 ? transport__out_bytes(o, zero, 8 - len % 8) : 0;
}

int transport__out_str(struct transport_out *o, const char *s, size_t len)
{
	if (transport__out_u64(o, len) < 0 || transport__out_bytes(o, s, len) < 0)
		return -1;
	return out_pad(o, len);
}

static int out_cstr(struct transport_out *o, const char *s)
{
	return transport__out_str(o, s, strlen(s));
}

void transport__out_init(struct transport_out *o, int fd)
{
	o->fd = fd;
	o->buf = xmalloc(NAR_BUF);
	o->len = 0;
	o->total = 0;
}

void transport__out_release(struct transport_out *o)
{
	free(o->buf);
	o->buf = NULL;
}

static int copy_contents(struct transport_out *o, const char *path, uint64_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t left = size;
	int ret = 0;

	if (fd < 0)
		return error_set("cannot read '%s': %s", path, strerror(errno));
	if (transport__out_u64(o, size) < 0) {
		close(fd);
		return -1;
	}
	while (left) {
		size_t room;
		ssize_t n;

		/* read straight into the output buffer: no copy in between */
		if (o->len == NAR_BUF && transport__out_flush(o) < 0) {
			ret = -1;
			break;
		}
		room = NAR_BUF - o->len;
		n = read(fd, o->buf + o->len, left < room ? (size_t)left : room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = error_set("'%s' changed while being copied", path);
			break;
		}
		o->len += (size_t)n;
		o->total += (uint64_t)n;
		left -= (uint64_t)n;
	}
	close(fd);
	return ret < 0 ? ret : out_pad(o, size);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int dump(struct transport_out *o, const char *path, int depth)
{
	struct stat st;
	int ret = 0;

	if (depth > NAR_MAX_DEPTH)
		return error_set("'%s' is nested too deeply", path);
	if (lstat(path, &st) < 0)
		return error_set("cannot stat '%s': %s", path, strerror(errno));
	if (out_cstr(o, "(") < 0 || out_cstr(o, "type") < 0)
		return -1;
	if (S_ISREG(st.st_mode)) {
		if (out_cstr(o, "regular") < 0 ||
			((st.st_mode & S_IXUSR) &&
				(out_cstr(o, "executable") < 0 || out_cstr(o, "") < 0)) ||
			out_cstr(o, "contents") < 0 ||
			copy_contents(o, path, (uint64_t)st.st_size) < 0)
			return -1;
	} else if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target));

		if (n < 0 || (size_t)n == sizeof(target))
			return error_set("cannot read the link '%s'", path);
		if (out_cstr(o, "symlink") < 0 || out_cstr(o, "target") < 0 ||
			transport__out_str(o, target, (size_t)n) < 0)
			return -1;
	} else if (S_ISDIR(st.st_mode)) {
		struct dirent **names = NULL;
		int n = scandir(path, &names, NULL, by_name);

		if (n < 0)
			return error_set("cannot list '%s': %s", path, strerror(errno));
		ret = out_cstr(o, "directory");
		for (int i = 0; i < n; i++) {
			const char *name = names[i]->d_name;
			char *child;

			if (ret < 0 || !strcmp(name, ".") || !strcmp(name, ".."))
				continue;
			child = xasprintf("%s/%s", path, name);
			if (out_cstr(o, "entry") < 0 || out_cstr(o, "(") < 0 ||
				out_cstr(o, "name") < 0 || out_cstr(o, name) < 0 ||
				out_cstr(o, "node") < 0 || dump(o, child, depth + 1) < 0 ||
				out_cstr(o, ")") < 0)
				ret = -1;
			free(child);
		}
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
		if (ret < 0)
			return ret;
	} else {
		return error_set("'%s' is neither a file, a directory nor a symlink", path);
	}
	return out_cstr(o, ")");
}

int transport__nar_dump(struct transport_out *o, const char *path)
{
	if (out_cstr(o, "nix-archive-1") < 0)
		return -1;
	return dump(o, path, 0);
}
