/* constel sudoers USER: the sudoers rule for a deploy user (docs/become.md). */
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "deploy/hostpkg.h"

static int sudoers(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	char *line;

	(void)g;
	if (opts->nargs != 1) {
		cmd_error("sudoers needs the deploy user's name");
		return cmd_usage(self);
	}
	if (!(line = hostpkg_sudoers(opts->args[0])))
		return cmd_error("%s", error_last());
	printf("# /etc/sudoers.d/constel: %s may run constel's host commands as root, and "
	       "nothing else\n%s",
		opts->args[0], line);
	free(line);
	return fflush(stdout) == 0 ? CMD_OK : CMD_FAILED;
}

static const struct opt sudoers_opts[] = {
	{NULL},
};

const struct cmd cmd_sudoers_entry = {
	.name = "sudoers",
	.opts = sudoers_opts,
	.args = "USER",
	.summary = "print the sudoers rule that lets USER run constel's host commands as root",
	.fn = sudoers,
};
