/*
 * common/opts.h: command-line options parsed against tables.
 *
 * A command describes its options once, in a table of `struct opt` ended by
 * an entry whose name is NULL. The same table checks the command line, and
 * makes the usage line, the --help text and the shell completions, so what
 * a command accepts and what it says it accepts cannot drift apart.
 *
 * opts_parse() reads argv against a list of tables (a command's own and the
 * global options, say) and hands back the options in command-line order and
 * the positional arguments in theirs. It accepts
 *
 *   --name, --name=VALUE, --name VALUE, -x, -xVALUE, -x VALUE, -vv
 *
 * and stops taking options at `--` (the words after it are positional, and
 * `ndash` says where they start) or, when asked, at the first positional
 * argument. Anything not in the tables is refused, so is a flag given a
 * value, an option missing its value, a number that is not all digits or
 * out of range, and a choice not in its list: one line in the error slot
 * naming the option and the command. Long names are never abbreviated, so
 * that adding an option never changes what an existing command line means.
 *
 * The tables are static data; the parsed values borrow from them and from
 * argv, which must outlive the `struct opts`.
 */
#ifndef CONSTEL_OPTS_H
#define CONSTEL_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

enum opt_kind {
	OPT_FLAG,   /* no value */
	OPT_STRING, /* any value */
	OPT_NUMBER, /* a base-10 integer from min to max */
	OPT_CHOICE, /* one of choices[] */
};

struct opt {
	const char *name; /* long name, without the dashes; NULL ends a table */
	char short_name;  /* 'i' for -i, or 0 */
	enum opt_kind kind;
	const char *arg;  /* the value's name in help ("N", "FILE"); NULL for a flag */
	const char *help; /* one line for --help, lowercase, no final period */
	int id;		  /* what the caller switches on: unique over the tables parsed together */
	long min, max;	  /* OPT_NUMBER */
	const char *const *choices; /* OPT_CHOICE: NULL-terminated */
};

/* One option as given. */
struct opts_value {
	const struct opt *opt; /* its table entry */
	const char *arg;       /* its value (borrowed from argv); NULL for a flag */
	long num;	       /* OPT_NUMBER: the value as a number */
};

struct opts {
	struct opts_value *v; /* the options, in command-line order */
	size_t nr, alloc;
	const char **args; /* the positional arguments, in order (borrowed from argv) */
	size_t nargs, alloc_args;
	size_t ndash;	     /* how many of args stood before `--`; nargs when there was none */
	int end;	     /* the index in argv where parsing stopped (argc when it did not) */
	const char *unknown; /* after CONSTEL_ENOTFOUND: the option as written, e.g. "--goal" */
};

#define OPTS_INIT                                                                                  \
	{                                                                                          \
		NULL, 0, 0, NULL, 0, 0, 0, 0, NULL                                                 \
	}

/* opts_parse() flags */
enum {
	/* stop at the first positional argument (global options before a command name) */
	OPTS_STOP_AT_ARG = 1 << 0,
};

void opts_init(struct opts *o);
void opts_release(struct opts *o);

/*
 * Parses argv[first..argc-1] against `tables` (NULL-terminated) into `o`,
 * which opts_init() set up (values are appended). `command` names the
 * command in messages; NULL for none. Returns 0; CONSTEL_ENOTFOUND for an
 * option no table knows (o->unknown is set, and the message suggests a
 * close name when there is one); -1 for any other mistake. The message is
 * in error_last(); on failure `o` holds what was parsed before the mistake.
 */
int opts_parse(struct opts *o, const struct opt *const *tables, int argc, char **argv, int first,
	int flags, const char *command);

/* The entry of `table` named `name` (a long name), or NULL. */
const struct opt *opts_find(const struct opt *table, const char *name);

/* Whether `o` is an entry of `table`. */
bool opts_in_table(const struct opt *o, const struct opt *table);

/*
 * The value of an option as help shows it: `arg`, or for a choice its
 * choices joined by '|' ("local|target"). Appended to `b`.
 */
void opts_add_arg(struct buf *b, const struct opt *o);

/*
 * A synopsis of the table, "[--on LIST] [--with-deps] ...", appended to `b`
 * and wrapped before `width` columns; continuation lines start with
 * `indent` spaces, and the first line is taken to start at column `at`.
 */
void opts_add_synopsis(struct buf *b, const struct opt *table, int at, int indent, int width);

/* One line per option, "  -i, --inventory FILE  help", aligned; appended to `b`. */
void opts_add_help(struct buf *b, const struct opt *table);

#endif
