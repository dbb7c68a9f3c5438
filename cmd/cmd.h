/*
 * cmd/cmd.h: what the subcommands share.
 *
 * main.c parses the global options (accepted before or after the command
 * name), then calls the command's function with the remaining arguments;
 * argv[0] is the command's name. A command returns the process exit status:
 * CMD_OK when every selected host is done, CMD_FAILED when any host failed,
 * was rolled back or skipped, CMD_USAGE for bad usage or an invalid
 * inventory (nothing built, no host contacted).
 */
#ifndef CONSTEL_CMD_H
#define CONSTEL_CMD_H

#include <stdbool.h>

#include "common/util.h"
#include "graph/graph.h"
#include "inventory/inventory.h"

enum { CMD_OK = 0, CMD_FAILED = 1, CMD_USAGE = 2 };

struct global_opts {
	const char *inventory;	/* -i FILE; default ./constellation.yaml */
	const char *ssh_config; /* --ssh-config FILE */
	bool json;		/* one JSON document on stdout */
	int verbose;		/* -v, repeatable */
};

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv, const struct global_opts *g);
	const char *usage;   /* the options after `constel NAME` */
	const char *summary; /* one line for `constel --help` */
};

int cmd_plan(int argc, char **argv, const struct global_opts *g);
int cmd_build(int argc, char **argv, const struct global_opts *g);
int cmd_deploy(int argc, char **argv, const struct global_opts *g);
int cmd_rollback(int argc, char **argv, const struct global_opts *g);
int cmd_status(int argc, char **argv, const struct global_opts *g);
int cmd_log(int argc, char **argv, const struct global_opts *g);
int cmd_exec(int argc, char **argv, const struct global_opts *g);

/* The table main.c dispatches on; NULL-terminated. */
extern const struct cmd cmd_table[];

/* Prints the usage of `c` to stderr and returns CMD_USAGE. */
int cmd_usage(const struct cmd *c);

/* The table entry of the command named `name`, or NULL. */
const struct cmd *cmd_find(const char *name);

/*
 * Loads the inventory named by the global options. On failure prints every
 * problem to stderr and returns CMD_USAGE; the caller returns that.
 */
int cmd_load_inventory(const struct global_opts *g, struct inventory **out);

/*
 * The host graph of an inventory: `uses` and `depends_on` relations are
 * edges, `wants` are not. On a cycle prints it and returns CMD_USAGE.
 */
int cmd_build_graph(const struct inventory *inv, struct graph **out);

/*
 * The three steps every command starts with: load the inventory, build the
 * graph, select from positional names and --on lists (names, globs and
 * @tags; none selects the whole fleet; with_deps adds providers). On
 * failure prints why and returns CMD_USAGE; whatever was made is handed out
 * anyway (NULL otherwise) and the caller frees it.
 */
int cmd_load_selection(const struct global_opts *g, const struct strvec *patterns, bool with_deps,
	struct inventory **inv, struct graph **graph, bool **selected);

/* Splits a comma list into `patterns`. */
void cmd_split_list(struct strvec *patterns, const char *list);

#endif
