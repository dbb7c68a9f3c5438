/* constel reboot: reboot hosts, wait for each to come back, check its health. */
#include "cmd/run.h"

static int reboot(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	return run_named_hosts(self, opts, g, RUNNER_REBOOT, "reboot", NULL);
}

/*
 * A reboot changes no generation: it waits for each host to come back with
 * a new boot id, running what its profile points at, then runs the health
 * gate (units failed since before the reboot, HTTP and command checks).
 */
static const struct opt reboot_opts[] = {
	CMD_OPTION_ON,
	RUN_OPTION_PARALLEL,
	RUN_OPTION_REBOOT_TIMEOUT,
	RUN_OPTION_HEALTH_TIMEOUT,
	RUN_OPTION_ASK_BECOME_PASS,
	RUN_OPTION_LOG_DIR,
	{NULL},
};

const struct cmd cmd_reboot_entry = {
	.name = "reboot",
	.opts = reboot_opts,
	.args = "HOST...",
	.summary = "reboot hosts, wait for each to come back and check its health",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = reboot,
};
