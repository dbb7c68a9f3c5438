/*
 * inventory/inventory.c: the API of inventory/inventory.h around the loader
 * (inventory/load.c): reading the file, the list of problems, the model's
 * lookups and its release.
 */
#include "inventory/inventory.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/util.h"
#include "inventory/internal.h"

void inventory__add_error(
	struct inv_errors *e, const char *file, size_t line, size_t col, char *message)
{
	inventory__add_error_attr(e, file, line, col, NULL, message);
}

void inventory__add_error_attr(struct inv_errors *e, const char *file, size_t line, size_t col,
	const char *attr, char *message)
{
	struct inv_error *err;

	xgrow((void **)&e->v, &e->alloc, e->nr + 1, sizeof(*e->v));
	err = &e->v[e->nr++];
	err->file = xstrdup(file);
	/* an inventory is at most INVENTORY_MAX_BYTES: its positions fit an int */
	err->line = (int)line;
	err->col = (int)col;
	err->attr = attr ? xstrdup(attr) : NULL;
	err->message = message;
}

void inventory__add_errorf(
	struct inv_errors *e, const char *file, size_t line, size_t col, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	inventory__add_error(e, file, line, col, msg);
}

void inv_errors_add(struct inv_errors *e, const char *file, const char *attr, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	inventory__add_error_attr(e, file, 0, 0, attr, msg);
}

/* A file that is not a regular one (a pipe, /dev/stdin) is read, not mapped. */
static int read_stream(FILE *f, const char *path, struct buf *b, struct inv_errors *errors)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(b, chunk, n);
	if (ferror(f)) {
		inventory__add_errorf(
			errors, path, 0, 0, "cannot read the inventory: %s", strerror(errno));
		return -1;
	}
	if (b->truncated) {
		inventory__add_errorf(errors, path, 0, 0, "the inventory is larger than %u MiB",
			INVENTORY_MAX_BYTES >> 20);
		return -1;
	}
	return 0;
}

int inventory_load_errors(struct inventory **out, const char *path, struct inv_errors *errors)
{
	FILE *f = NULL;
	struct buf b = BUF_INIT(INVENTORY_MAX_BYTES);
	struct stat st;
	void *map = MAP_FAILED;
	int ret = -1;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		inventory__add_errorf(
			errors, path, 0, 0, "cannot open the inventory: %s", strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_size > (off_t)INVENTORY_MAX_BYTES) {
			inventory__add_errorf(errors, path, 0, 0,
				"the inventory is larger than %u MiB", INVENTORY_MAX_BYTES >> 20);
			goto out;
		}
		/* mapped, not copied: the parser reads it once, front to back */
		if (st.st_size > 0)
			map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
	}
	if (map != MAP_FAILED) {
		madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
		ret = inventory_load_buffer_errors(out, path, map, (size_t)st.st_size, errors);
		munmap(map, (size_t)st.st_size);
	} else if (read_stream(f, path, &b, errors) == 0) {
		ret = inventory_load_buffer_errors(out, path, b.data ? b.data : "", b.len, errors);
	}
out:
	if (f)
		fclose(f);
	buf_release(&b);
	return ret;
}

char *inv_error_format(const struct inv_error *e)
{
	const char *attr = e->attr ? e->attr : "", *sep = e->attr ? ": " : "";

	if (e->line > 0)
		return xasprintf("%s:%d:%d: %s%s%s", e->file, e->line, e->col, attr, sep,
			e->message);
	return xasprintf("%s: %s%s%s", e->file, attr, sep, e->message);
}

void inv_errors_release(struct inv_errors *e)
{
	for (size_t i = 0; i < e->nr; i++) {
		free(e->v[i].file);
		free(e->v[i].attr);
		free(e->v[i].message);
	}
	free(e->v);
	e->v = NULL;
	e->nr = e->alloc = 0;
}

/* The problems of `e` as lines of `errors`. */
static void errors_to_strvec(const struct inv_errors *e, struct strvec *errors)
{
	for (size_t i = 0; i < e->nr; i++)
		strvec_push_nodup(errors, inv_error_format(&e->v[i]));
}

int inventory_load(struct inventory **out, const char *path, struct strvec *errors)
{
	struct inv_errors e = INV_ERRORS_INIT;
	int ret = inventory_load_errors(out, path, &e);

	errors_to_strvec(&e, errors);
	inv_errors_release(&e);
	return ret;
}

int inventory_load_buffer(struct inventory **out, const char *path, const char *data, size_t len,
	struct strvec *errors)
{
	struct inv_errors e = INV_ERRORS_INIT;
	int ret = inventory_load_buffer_errors(out, path, data, len, &e);

	errors_to_strvec(&e, errors);
	inv_errors_release(&e);
	return ret;
}

void inventory_free(struct inventory *inv)
{
	if (!inv)
		return;
	/* the strings are in inv->text and inv->pool */
	for (size_t i = 0; i < inv->nhosts; i++) {
		free(inv->hosts[i].tags.v);
		free(inv->hosts[i].checks.v);
		free(inv->hosts[i].local_checks.v);
		free(inv->hosts[i].services);
	}
	free(inv->hosts);
	free(inv->rels);
	free(inv->builders);
	arena_release(&inv->pool);
	free(inv->text);
	free(inv->path);
	free(inv->dir);
	free(inv);
}

long inventory_host_index(const struct inventory *inv, const char *name)
{
	for (size_t i = 0; i < inv->nhosts; i++)
		if (!strcmp(inv->hosts[i].name, name))
			return (long)i;
	return -1;
}

struct inv_host *inventory_host(const struct inventory *inv, const char *name)
{
	long i = inventory_host_index(inv, name);

	return i < 0 ? NULL : &inv->hosts[i];
}

const char *inventory_builder(const struct inventory *inv, const char *arch)
{
	for (size_t i = 0; i < inv->nbuilders; i++)
		if (!strcmp(inv->builders[i].arch, arch))
			return inv->builders[i].spec;
	return NULL;
}

const char *inv_rel_kind_name(enum inv_rel_kind kind)
{
	switch (kind) {
	case INV_USES:
		return "uses";
	case INV_WANTS:
		return "wants";
	case INV_DEPENDS_ON:
		return "depends_on";
	}
	return "?";
}
