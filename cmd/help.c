/* constel help [COMMAND]: the same as `constel --help` and `constel COMMAND --help`. */
#include <stdio.h>

#include "cmd/cmd.h"

static int help(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	const struct cmd *c;

	(void)g;
	if (!opts->nargs) {
		cmd_print_overview(stdout);
		return CMD_OK;
	}
	if (opts->nargs > 1) {
		cmd_error("help takes one command");
		return cmd_usage(self);
	}
	c = cmd_find(opts->args[0]);
	if (!c)
		return cmd_error("unknown command '%s'; see 'constel --help'", opts->args[0]);
	cmd_print_help(c, stdout);
	return CMD_OK;
}

static const struct opt help_opts[] = {
	{NULL},
};

const struct cmd cmd_help_entry = {
	.name = "help",
	.opts = help_opts,
	.args = "[COMMAND]",
	.summary = "the commands, or every option of one command",
	.complete = CMD_COMPLETE_COMMANDS,
	.fn = help,
};
