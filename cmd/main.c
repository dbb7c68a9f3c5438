/* constel: deploys a fleet of NixOS hosts. main() only parses the global
 * options and dispatches to the command table. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/trace.h"

static int print_help(FILE *f)
{
	fprintf(f, "usage: constel [-i FILE] [--ssh-config FILE] [--json] [-v] COMMAND "
		   "[options] [HOST...]\n\ncommands:\n");
	for (const struct cmd *c = cmd_table; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->summary);
	fprintf(f, "\nglobal options (before or after the command):\n"
		   "  -i, --inventory FILE  the inventory (default ./constellation.yaml)\n"
		   "  --ssh-config FILE     OpenSSH client configuration (default ~/.ssh/config)\n"
		   "  --json                one JSON document on stdout; human text on stderr\n"
		   "  -v, --verbose         more detail\n"
		   "  -h, --help            this help; `constel COMMAND --help` for a command\n"
		   "  --version             the version\n"
		   "\nexit status: 0 every selected host done, 1 a host failed, was rolled back "
		   "or skipped,\n2 bad usage or invalid inventory (nothing built, no host "
		   "contacted).\n");
	return f == stdout ? CMD_OK : CMD_USAGE;
}

/*
 * Takes the global options out of argv wherever they stand before a `--`,
 * leaving the command and its own arguments in order.
 */
static int parse_globals(int *argcp, char **argv, struct global_opts *g, bool *help,
	bool *version)
{
	int argc = *argcp, out = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(a, "-i") || !strcmp(a, "--inventory") || !strcmp(a, "--ssh-config")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "constel: option '%s' needs a file\n", a);
				return -1;
			}
			val = argv[++i];
			if (!strcmp(a, "--ssh-config"))
				g->ssh_config = val;
			else
				g->inventory = val;
		} else if (!strncmp(a, "--inventory=", 12)) {
			g->inventory = a + 12;
		} else if (!strncmp(a, "--ssh-config=", 13)) {
			g->ssh_config = a + 13;
		} else if (!strncmp(a, "-i", 2) && a[2]) {
			g->inventory = a + 2;
		} else if (!strcmp(a, "--json")) {
			g->json = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			g->verbose++;
		} else if (!strcmp(a, "-vv")) {
			g->verbose += 2;
		} else if (!strcmp(a, "--version")) {
			*version = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*help = true;
		} else {
			argv[out++] = argv[i];
		}
	}
	argv[out] = NULL;
	*argcp = out;
	return 0;
}

int main(int argc, char **argv)
{
	struct global_opts g = { "constellation.yaml", NULL, false, 0 };
	const struct cmd *c;
	bool help = false, version = false;

	/* libgit2 starts on first use (deploy/provenance.c): `plan` never pays for it */
	/* a closed connection is an error to report, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	if (parse_globals(&argc, argv, &g, &help, &version) < 0)
		return CMD_USAGE;
	trace_set_level(g.verbose);
	if (version) {
		printf("constel %s\n", CONSTEL_VERSION);
		return CMD_OK;
	}
	if (argc < 2)
		return print_help(help ? stdout : stderr);
	c = cmd_find(argv[1]);
	if (!c) {
		fprintf(stderr, "constel: unknown command '%s'; see 'constel --help'\n", argv[1]);
		return CMD_USAGE;
	}
	if (help) {
		printf("usage: constel %s %s\n%s\n", c->name, c->usage, c->summary);
		return CMD_OK;
	}
	return c->fn(argc - 1, argv + 1, &g);
}
