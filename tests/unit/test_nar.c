/* transport/nar.c against Nix itself: the NAR of a tree must be byte for byte `nix-store --dump`'s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"
#include "transport/internal.h"

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Our NAR of `path`, through a temporary file. */
static struct buf our_nar(const char *path)
{
	char name[] = "/tmp/constel-nar-XXXXXX";
	int fd = mkstemp(name);
	struct transport_out o;
	struct buf b = BUF_INIT(0);
	char chunk[65536];
	ssize_t n;

	assert_true(fd >= 0);
	transport__out_init(&o, fd);
	assert_int_equal(transport__nar_dump(&o, path), 0);
	assert_int_equal(transport__out_flush(&o), 0);
	transport__out_release(&o);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	close(fd);
	unlink(name);
	return b;
}

static void test_nar_matches_nix_store_dump(void **state)
{
	char dir[] = "/tmp/constel-nar-tree-XXXXXX";
	struct buf ours, theirs = BUF_INIT(0);
	char big[70000];
	char *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	/* every kind of node, odd sizes (padding), names whose byte order matters */
	p = xasprintf("%s/bin", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	p = xasprintf("%s/bin/run", dir);
	write_file(p, "#!/bin/sh\necho hi\n", 18, 0555);
	free(p);
	p = xasprintf("%s/Zeta", dir);
	write_file(p, "z", 1, 0444);
	free(p);
	p = xasprintf("%s/alpha", dir);
	write_file(p, big, sizeof(big), 0444);
	free(p);
	p = xasprintf("%s/empty", dir);
	write_file(p, "", 0, 0444);
	free(p);
	p = xasprintf("%s/bin/link", dir);
	assert_int_equal(symlink("../alpha", p), 0);
	free(p);
	p = xasprintf("%s/dir-empty", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);

	{
		const char *argv[] = { "nix-store", "--dump", dir, NULL };

		assert_int_equal(proc_run(argv, &theirs, NULL), 0);
	}
	ours = our_nar(dir);
	assert_int_equal(ours.len, theirs.len);
	assert_memory_equal(ours.data, theirs.data, theirs.len);
	buf_release(&ours);
	buf_release(&theirs);
	p = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
	free(p);
}

static void test_nar_of_a_single_file_and_a_missing_path(void **state)
{
	char name[] = "/tmp/constel-nar-file-XXXXXX";
	int fd = mkstemp(name);
	struct buf ours, theirs = BUF_INIT(0);
	const char *argv[] = { "nix-store", "--dump", name, NULL };
	struct transport_out o;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "12345", 5), 5);
	close(fd);
	assert_int_equal(proc_run(argv, &theirs, NULL), 0);
	ours = our_nar(name);
	assert_int_equal(ours.len, theirs.len);
	assert_memory_equal(ours.data, theirs.data, theirs.len);
	unlink(name);
	transport__out_init(&o, -1);
	assert_int_equal(transport__nar_dump(&o, "/nonexistent/constel"), -1);
	assert_non_null(strstr(error_last(), "cannot stat '/nonexistent/constel'"));
	transport__out_release(&o);
	buf_release(&ours);
	buf_release(&theirs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nar_matches_nix_store_dump),
		cmocka_unit_test(test_nar_of_a_single_file_and_a_missing_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
