/*
 * constel log: the deployment history kept in the configuration
 * repository's git notes (refs/notes/constel), newest first.
 *
 * The repository is the one holding the inventory; the inventory itself is
 * not loaded, so the history stays readable while the inventory is broken.
 */
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "deploy/provenance.h"

static void print_events(const struct provenance_event *ev, size_t n)
{
	size_t w = 4;

	for (size_t i = 0; i < n; i++)
		if (strlen(ev[i].host) > w)
			w = strlen(ev[i].host);
	printf("%-20s  %-*s  %-12s  %4s  %-14s  %s\n", "TIME", (int)w, "HOST", "RESULT", "GEN",
		"REVISION", "PATH");
	for (size_t i = 0; i < n; i++) {
		char gen[24], rev[24];
		/* notes are anyone's text who can push to the repository */
		char *time = text_sanitize(ev[i].time), *host = text_sanitize(ev[i].host);
		char *result = text_sanitize(ev[i].result), *path = text_sanitize(ev[i].path);
		char *revision = text_sanitize(ev[i].revision);

		snprintf(gen, sizeof(gen), "%ld", ev[i].generation);
		snprintf(rev, sizeof(rev), "%.8s%s", revision, ev[i].dirty ? "+dirty" : "");
		printf("%-20s  %-*s  %-12s  %4s  %-14s  %s\n", time, (int)w, host, result,
			ev[i].generation >= 0 ? gen : "-", rev, path ? path : "-");
		free(time);
		free(host);
		free(result);
		free(path);
		free(revision);
	}
}

static void print_json(const struct provenance_event *ev, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "time", cmd_json_text(ev[i].time));
		json_object_set_new(o, "host", cmd_json_text(ev[i].host));
		json_object_set_new(o, "result", cmd_json_text(ev[i].result));
		json_object_set_new(o, "generation",
			ev[i].generation >= 0 ? json_integer(ev[i].generation) : json_null());
		json_object_set_new(o, "revision", cmd_json_text(ev[i].revision));
		json_object_set_new(o, "path", cmd_json_text(ev[i].path));
		json_object_set_new(o, "dirty", json_boolean(ev[i].dirty));
		json_array_append_new(arr, o);
	}
	json_dumpf(arr, stdout, CMD_JSON_FLAGS);
	fputc('\n', stdout);
	json_decref(arr);
}

static int log_cmd(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct provenance prov;
	struct provenance_event *ev = NULL;
	size_t n = 0;
	const char *host = NULL;
	char *inv_copy = xstrdup(cmd_inventory_name(g));
	int ret;

	memset(&prov, 0, sizeof(prov));
	if (opts->nargs > 1) {
		cmd_error("log takes at most one host, not %zu", opts->nargs);
		ret = cmd_usage(self);
		goto out;
	}
	if (opts->nargs)
		host = opts->args[0];
	if (provenance_open(&prov, dirname(inv_copy)) < 0) {
		ret = cmd_error("%s", error_last());
		goto out;
	}
	if (provenance_log(prov.repo_path, host, &ev, &n) < 0) {
		fprintf(stderr, "constel: %s\n", error_last());
		ret = CMD_FAILED;
		goto out;
	}
	if (g->json)
		print_json(ev, n);
	else if (n)
		print_events(ev, n);
	else
		fprintf(stderr, "constel: no deployment recorded in %s%s%s\n", PROVENANCE_NOTES_REF,
			host ? " for " : "", host ? host : "");
	ret = CMD_OK;
out:
	provenance_events_free(ev, n);
	provenance_release(&prov);
	free(inv_copy);
	return ret;
}

static const struct opt log_opts[] = {
	{NULL},
};

const struct cmd cmd_log_entry = {
	.name = "log",
	.opts = log_opts,
	.args = "[HOST]",
	.summary = "the deployment history recorded in git notes",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = log_cmd,
};
