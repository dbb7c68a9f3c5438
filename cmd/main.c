/*
 * constel: deploys a fleet of NixOS hosts. main() parses the command line
 * against the global table and the command's, and dispatches.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/trace.h"

/*
 * Whether --json stands before a `--`: known before anything is parsed, so
 * that a command line too broken to parse still gets its JSON document.
 */
static bool json_requested(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json"))
			return true;
	return false;
}

/* Takes the global options out of `o` (keeping the command's own, in order) into `g`. */
static void take_globals(struct opts *o, struct global_opts *g, bool *help, bool *version)
{
	size_t kept = 0;

	for (size_t i = 0; i < o->nr; i++) {
		const struct opts_value *v = &o->v[i];

		switch (v->opt->id) {
		case CMD_OPT_INVENTORY:
			g->inventory = v->arg;
			break;
		case CMD_OPT_SSH_CONFIG:
			g->ssh_config = v->arg;
			break;
		case CMD_OPT_JSON:
			g->json = true;
			break;
		case CMD_OPT_VERBOSE:
			g->verbose++;
			break;
		case CMD_OPT_HELP:
			*help = true;
			break;
		case CMD_OPT_VERSION:
			*version = true;
			break;
		default:
			o->v[kept++] = *v;
		}
	}
	o->nr = kept;
}

/*
 * The message of an unknown option (error_last()), and which commands do
 * take it: "unknown option '--goal' for 'build' (it is an option of
 * 'deploy' and 'rollback')". Returns CMD_USAGE.
 */
static int unknown_option(const char *unknown)
{
	const char *eq = strchr(unknown, '=');
	size_t len = eq ? (size_t)(eq - unknown) : strlen(unknown);
	struct buf b = BUF_INIT(0), owners = BUF_INIT(0);
	size_t n = 0;

	for (size_t i = 0; cmd_table[i] && len > 2 && unknown[1] == '-'; i++) {
		const struct cmd *other = cmd_table[i];

		for (const struct opt *opt = other->opts; opt->name; opt++)
			if (strlen(opt->name) == len - 2 &&
				!strncmp(opt->name, unknown + 2, len - 2))
				buf_printf(&owners, "%s'%s'", n++ ? " and " : "", other->name);
	}
	buf_adds(&b, error_last());
	if (n)
		buf_printf(&b, " (it is an option of %s)", owners.data);
	cmd_error("%s", b.data);
	buf_release(&b);
	buf_release(&owners);
	return CMD_USAGE;
}

static int run(int argc, char **argv, struct global_opts *g)
{
	const struct opt *const globals[] = {cmd_global_opts, NULL};
	const struct opt *tables[] = {NULL, cmd_global_opts, NULL};
	struct opts o = OPTS_INIT;
	const struct cmd *c;
	bool help = false, version = false;
	int err, first, ret;

	/* the global options before the command */
	err = opts_parse(&o, globals, argc, argv, 1, OPTS_STOP_AT_ARG, NULL);
	if (err == CONSTEL_ENOTFOUND) {
		/* a command's option before the command: say whose it is */
		ret = unknown_option(o.unknown);
		goto out;
	}
	if (err < 0) {
		ret = cmd_error("%s; see 'constel --help'", error_last());
		goto out;
	}
	take_globals(&o, g, &help, &version);
	first = o.end;
	opts_release(&o);
	if (version) {
		printf("constel %s\n", CONSTEL_VERSION);
		ret = CMD_OK;
		goto out;
	}
	if (first >= argc) {
		ret = help ? CMD_OK : cmd_error("no command given");
		cmd_print_overview(help ? stdout : stderr);
		goto out;
	}
	if (!(c = cmd_find(argv[first]))) {
		ret = cmd_error("unknown command '%s'; see 'constel --help'", argv[first]);
		goto out;
	}

	/* the command's own options and the global ones, in any order */
	tables[0] = c->opts;
	err = opts_parse(&o, tables, argc, argv, first + 1, 0, c->name);
	if (err == CONSTEL_ENOTFOUND) {
		unknown_option(o.unknown);
		ret = cmd_usage(c);
		goto out;
	}
	if (err < 0) {
		cmd_error("%s", error_last());
		ret = cmd_usage(c);
		goto out;
	}
	take_globals(&o, g, &help, &version);
	if (version) {
		printf("constel %s\n", CONSTEL_VERSION);
		ret = CMD_OK;
	} else if (help) {
		cmd_print_help(c, stdout);
		ret = CMD_OK;
	} else {
		trace_set_level(g->verbose);
		ret = c->fn(c, &o, g);
	}
out:
	opts_release(&o);
	return ret;
}

int main(int argc, char **argv)
{
	struct global_opts g = {NULL, NULL, false, 0};
	int ret;

	/* libgit2 starts on first use (deploy/provenance.c): `plan` never pays for it */
	/* a closed connection is an error to report, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	g.json = json_requested(argc, argv);
	ret = run(argc, argv, &g);
	if (ret == CMD_USAGE && g.json)
		cmd_print_problems();
	return ret;
}
