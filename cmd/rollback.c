/* constel rollback: switch hosts back to their previous (or Nth) generation. */
#include <stdio.h>

#include "cmd/run.h"
#include "deploy/provenance.h"

/* A rollback is noted on HEAD, the commit the repository is at. */
struct rollback_notes {
	struct provenance prov;
	struct provenance_notes notes;
	bool have_repo, have_notes;
};

static void rollback_prepare(void *data, struct runner_opts *o, const struct inventory *inv)
{
	struct rollback_notes *n = data;

	n->have_repo = provenance_open(&n->prov, inv->dir) == 0;
	if (n->have_repo && n->prov.head) {
		provenance_notes_init(&n->notes, n->prov.repo_path, n->prov.head, false, inv);
		n->have_notes = true;
		o->on_result = provenance_on_result;
		o->data = &n->notes;
	}
}

static void rollback_finish(void *data)
{
	struct rollback_notes *n = data;

	if (n->have_notes && n->notes.error)
		fprintf(stderr, "constel: could not record the rollback in %s: %s\n",
			PROVENANCE_NOTES_REF, n->notes.error);
	if (n->have_notes)
		provenance_notes_release(&n->notes);
	if (n->have_repo)
		provenance_release(&n->prov);
}

static int rollback(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct rollback_notes n = {0};
	struct run_named_hooks hooks = {rollback_prepare, rollback_finish, &n};

	return run_named_hosts(self, opts, g, RUNNER_ROLLBACK, "roll back", &hooks);
}

/*
 * What a rollback honours: it activates and confirms like a deploy, but
 * builds nothing (no --rev, --build-on, --dry-run) and goes host by host
 * (no --with-deps, --rollback-fleet).
 */
static const struct opt rollback_opts[] = {
	CMD_OPTION_ON,
	{.name = "to",
		.kind = OPT_NUMBER,
		.arg = "N",
		.min = 1,
		.max = 1L << 30,
		.id = RUN_TO,
		.help = "switch to generation N (default: the one before the current)"},
	{.name = "repair",
		.kind = OPT_FLAG,
		.id = RUN_REPAIR,
		.help = "only put back what an interrupted run left (its pending record), "
			"nothing else"},
	RUN_OPTION_GOAL,
	RUN_OPTION_PARALLEL,
	RUN_OPTION_CONFIRM_TIMEOUT,
	RUN_OPTION_NO_MAGIC,
	RUN_OPTION_NO_AUTO,
	RUN_OPTION_ACTIVATION_TIMEOUT,
	RUN_OPTION_HEALTH_TIMEOUT,
	RUN_OPTION_ASK_BECOME_PASS,
	RUN_OPTION_LOG_DIR,
	{NULL},
};

const struct cmd cmd_rollback_entry = {
	.name = "rollback",
	.opts = rollback_opts,
	.args = "HOST...",
	.summary = "switch hosts back to their previous (or Nth) generation",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = rollback,
};
