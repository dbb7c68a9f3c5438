/*
 * cmd/cmd.h: what the subcommands share.
 *
 * Each command is one entry, `struct cmd`, exported by its own file
 * (tmux's cmd-*.c): its name, its table of options, its positional
 * arguments, a summary and its function. main.c parses the global options
 * (accepted before or after the command name) and the command's own
 * against the two tables, so a command only ever sees options it takes;
 * usage, --help, the man page test and the shell completions come from the
 * same tables.
 *
 * A command returns the process exit status: CMD_OK when every selected
 * host is done, CMD_FAILED when any host failed, was rolled back or
 * skipped, CMD_USAGE for bad usage or an invalid inventory (nothing built,
 * no host contacted). Whatever returns CMD_USAGE says why through
 * cmd_error() or the loaders below, so that with --json main.c prints the
 * one document exit status 2 promises.
 */
#ifndef CONSTEL_CMD_H
#define CONSTEL_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "common/opts.h"
#include "common/util.h"
#include "graph/graph.h"
#include "inventory/inventory.h"

enum { CMD_OK = 0, CMD_FAILED = 1, CMD_USAGE = 2 };

struct global_opts {
	const char *inventory;	/* -i FILE or FLAKE#ATTR; NULL: cmd_inventory_name() */
	const char *ssh_config; /* --ssh-config FILE */
	bool json;		/* one JSON document on stdout */
	int verbose;		/* -v, repeatable */
};

/* What a command's positional arguments are, for the shell completions. */
enum cmd_complete {
	CMD_COMPLETE_NOTHING,
	CMD_COMPLETE_HOSTS,    /* host names and @tags of the inventory */
	CMD_COMPLETE_COMMANDS, /* command names */
	CMD_COMPLETE_SHELLS,   /* bash, zsh, fish */
};

struct cmd {
	const char *name;
	const struct opt *opts; /* its own options (the global ones are added); never NULL */
	const char *args;	/* its positional arguments as usage shows them: "[HOST...]" */
	const char *summary;	/* one line for `constel --help` */
	enum cmd_complete complete;
	bool hidden; /* left out of --help and the completions (used by the completions) */
	/* `o` holds the command's own options in order, and the positional arguments */
	int (*fn)(const struct cmd *self, const struct opts *o, const struct global_opts *g);
};

/*
 * Option ids: those several commands share, then each command's own (from
 * CMD_OPT_OWN), then the global ones (from CMD_OPT_GLOBAL).
 */
enum {
	CMD_OPT_ON = 1,
	CMD_OPT_WITH_DEPS,
	CMD_OPT_PARALLEL,
	CMD_OPT_EVAL_JOBS,
	CMD_OPT_EVAL_MAX_MEMORY,
	CMD_OPT_NO_EVAL_CACHE,
	CMD_OPT_OWN = 100,
	CMD_OPT_GLOBAL = 1000,
	CMD_OPT_INVENTORY = CMD_OPT_GLOBAL,
	CMD_OPT_SSH_CONFIG,
	CMD_OPT_JSON,
	CMD_OPT_VERBOSE,
	CMD_OPT_HELP,
	CMD_OPT_VERSION,
};

/* Table entries of the options several commands share. */
#define CMD_OPTION_ON                                                                              \
	{                                                                                          \
		.name = "on", .kind = OPT_STRING, .arg = "LIST", .id = CMD_OPT_ON,                 \
		.help = "select hosts: a comma list of names, globs (r*) and @tags"                \
	}
#define CMD_OPTION_WITH_DEPS                                                                       \
	{                                                                                          \
		.name = "with-deps", .kind = OPT_FLAG, .id = CMD_OPT_WITH_DEPS,                    \
		.help = "add the providers of the selected hosts, transitively"                    \
	}
#define CMD_OPTION_PARALLEL(text)                                                                  \
	{                                                                                          \
		.name = "parallel", .kind = OPT_NUMBER, .arg = "N", .min = 1, .max = 1024,         \
		.id = CMD_OPT_PARALLEL, .help = text                                               \
	}

/* How deploy, build and status evaluate the hosts' systems (deploy/eval.h). */
#define CMD_OPTION_EVAL_JOBS                                                                       \
	{                                                                                          \
		.name = "eval-jobs", .kind = OPT_NUMBER, .arg = "N", .min = 1, .max = 1024,        \
		.id = CMD_OPT_EVAL_JOBS,                                                           \
		.help = "hosts evaluated at once, each by its own nix (default: the CPUs)"         \
	}
#define CMD_OPTION_EVAL_MAX_MEMORY                                                                 \
	{                                                                                          \
		.name = "eval-max-memory", .kind = OPT_NUMBER, .arg = "MB", .min = 16,             \
		.max = 1048576, .id = CMD_OPT_EVAL_MAX_MEMORY,                                     \
		.help = "fail a host whose evaluator passes MB of memory (default 4096)"           \
	}
#define CMD_OPTION_NO_EVAL_CACHE                                                                   \
	{                                                                                          \
		.name = "no-eval-cache", .kind = OPT_FLAG, .id = CMD_OPT_NO_EVAL_CACHE,            \
		.help = "evaluate even an unchanged commit again; record nothing"                  \
	}

/* The values of those three options; zero is the defaults. */
struct cmd_eval_args {
	long jobs;
	long max_memory_mb;
	bool no_cache;
};

/* Takes `v` into `a` when it is one of the three; whether it was. */
bool cmd_eval_arg(struct cmd_eval_args *a, const struct opts_value *v);

extern const struct cmd cmd_plan_entry;
extern const struct cmd cmd_build_entry;
extern const struct cmd cmd_deploy_entry;
extern const struct cmd cmd_rollback_entry;
extern const struct cmd cmd_reboot_entry;
extern const struct cmd cmd_status_entry;
extern const struct cmd cmd_registry_entry;
extern const struct cmd cmd_sudoers_entry;
extern const struct cmd cmd_log_entry;
extern const struct cmd cmd_exec_entry;
extern const struct cmd cmd_help_entry;
extern const struct cmd cmd_completion_entry;
extern const struct cmd cmd_complete_hosts_entry;

/* The commands main.c dispatches on; NULL-terminated. */
extern const struct cmd *const cmd_table[];

/* The global options, accepted before or after the command. */
extern const struct opt cmd_global_opts[];

/* The entry of the command named `name`, or NULL. */
const struct cmd *cmd_find(const char *name);

/* `constel --help`: the commands and the global options. */
void cmd_print_overview(FILE *f);

/* `constel NAME --help`: usage, summary, every option of the command and the global ones. */
void cmd_print_help(const struct cmd *c, FILE *f);

/* Prints the usage line of `c` to stderr and returns CMD_USAGE. */
int cmd_usage(const struct cmd *c);

/*
 * Bad usage: prints "constel: MESSAGE" to stderr, keeps MESSAGE for the
 * exit-2 JSON document, returns CMD_USAGE.
 */
int cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * With --json, the one document of an exit status 2, on stdout:
 * {"result":"invalid","errors":[{"file","line","column","message"}]} when
 * the inventory was found invalid, else {"result":"usage","errors":[{"message"}]}.
 * main.c calls it when a command returns CMD_USAGE.
 */
void cmd_print_problems(void);

/*
 * The inventory the global options name: -i's, else ./constellation.yaml,
 * else `.#constellation` when ./flake.nix exists (borrowed).
 */
const char *cmd_inventory_name(const struct global_opts *g);

/*
 * Loads that inventory, a YAML file or a flake output (FLAKE#ATTR,
 * evaluated by deploy/eval.h eval_flake_json()); every problem to `errors`.
 * 0 or -1. Quiet: for callers that must not print (the completions).
 */
int cmd_inventory_load(
	const struct global_opts *g, struct inventory **out, struct inv_errors *errors);

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

/* Seconds for a JSON report, rounded to the millisecond. */
json_t *cmd_json_seconds(double seconds);
/*
 * A JSON string of text from outside (hosts, notes, nix), sanitized
 * (common/util.h text_sanitize) so it is always valid UTF-8 and never
 * dropped; NULL gives null. The _n form takes a length.
 */
json_t *cmd_json_text(const char *s);
json_t *cmd_json_textn(const char *s, size_t n);

/* How every JSON document is written: indented, keys in order, 0.58 not 0.57999999999999996. */
#define CMD_JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

#endif
