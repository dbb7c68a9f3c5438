/* common/opts.c: argv against tables of options; usage and help from the same tables. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/opts.h"

#include "common/names.h"

/* --help: text wrapped before this column; a longer left column goes on its own line */
#define HELP_WIDTH    80
#define HELP_LEFT_MAX 30

void opts_init(struct opts *o)
{
	memset(o, 0, sizeof(*o));
}

void opts_release(struct opts *o)
{
	free(o->v);
	free(o->args);
	opts_init(o);
}

const struct opt *opts_find(const struct opt *table, const char *name)
{
	for (const struct opt *o = table; o && o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

bool opts_in_table(const struct opt *o, const struct opt *table)
{
	for (const struct opt *t = table; t && t->name; t++)
		if (t == o)
			return true;
	return false;
}

static const struct opt *find_long(const struct opt *const *tables, const char *name, size_t len)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct opt *o = tables[t]; o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				return o;
	return NULL;
}

static const struct opt *find_short(const struct opt *const *tables, char c)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct opt *o = tables[t]; o->name; o++)
			if (o->short_name && o->short_name == c)
				return o;
	return NULL;
}

/* " for 'deploy'", or nothing without a command. */
static void add_for(struct buf *b, const char *command)
{
	if (command)
		buf_printf(b, " for '%s'", command);
}

static int unknown(struct opts *o, const struct opt *const *tables, const char *spelled, size_t len,
	const char *command)
{
	struct buf b = BUF_INIT(0);
	struct name_hint hint;
	char *name = xstrndup(spelled, len);
	int ret;

	/* "did you mean": the hint rule of host and key names (common/names.h) */
	name_hint_init(&hint, name[1] == '-' ? name + 2 : "");
	for (size_t t = 0; name[1] == '-' && tables[t]; t++)
		for (const struct opt *opt = tables[t]; opt->name; opt++)
			name_hint_offer(&hint, opt->name);
	buf_printf(&b, "unknown option '%s'", name);
	add_for(&b, command);
	if (name_hint_best(&hint))
		buf_printf(&b, "; did you mean '--%s'?", name_hint_best(&hint));
	ret = error_setc(CONSTEL_ENOTFOUND, "%s", b.data);
	buf_release(&b);
	free(name);
	o->unknown = spelled;
	return ret;
}

static void choices_text(struct buf *b, const struct opt *opt)
{
	for (size_t i = 0; opt->choices[i]; i++)
		buf_printf(b, "%s%s",
			i == 0		      ? ""
			: opt->choices[i + 1] ? ", "
					      : " or ",
			opt->choices[i]);
}

/* Checks `value` against the kind of `opt` and records it. */
static int add_value(struct opts *o, const struct opt *opt, const char *spelled, const char *value,
	const char *command)
{
	struct opts_value v = {opt, value, 0};
	struct buf b = BUF_INIT(0);
	int ret = -1;

	buf_printf(&b, "option '%s'", spelled);
	add_for(&b, command);
	if (opt->kind == OPT_FLAG && value) {
		error_set("%s takes no value, not '%s'", b.data, value);
		goto out;
	}
	if (opt->kind != OPT_FLAG && !value) {
		error_set("%s needs a value (%s)", b.data, opt->arg ? opt->arg : "one");
		goto out;
	}
	if (opt->kind == OPT_NUMBER) {
		/* strtol would take " 5" and "+5": digits only, a sign at most */
		const char *d = value[0] == '-' ? value + 1 : value;

		if (*d < '0' || *d > '9' || parse_long(value, opt->min, opt->max, &v.num) < 0) {
			error_set("%s takes a number from %ld to %ld, not '%s'", b.data, opt->min,
				opt->max, value);
			goto out;
		}
	}
	if (opt->kind == OPT_CHOICE) {
		size_t i;

		for (i = 0; opt->choices[i]; i++)
			if (!strcmp(opt->choices[i], value))
				break;
		if (!opt->choices[i]) {
			buf_adds(&b, " takes ");
			choices_text(&b, opt);
			error_set("%s, not '%s'", b.data, value);
			goto out;
		}
	}
	xgrow((void **)&o->v, &o->alloc, o->nr + 1, sizeof(*o->v));
	o->v[o->nr++] = v;
	ret = 0;
out:
	buf_release(&b);
	return ret;
}

static void add_arg(struct opts *o, const char *arg)
{
	xgrow((void **)&o->args, &o->alloc_args, o->nargs + 1, sizeof(*o->args));
	o->args[o->nargs++] = arg;
}

/* A long option at argv[*i]: "--name", "--name=value" or "--name value". */
static int parse_long_opt(struct opts *o, const struct opt *const *tables, int argc, char **argv,
	int *i, const char *command)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const struct opt *opt = find_long(tables, a + 2, len - 2);
	const char *value = eq ? eq + 1 : NULL;
	char *spelled;
	int ret;

	if (!opt)
		return unknown(o, tables, a, len, command);
	if (!eq && opt->kind != OPT_FLAG && *i + 1 < argc)
		value = argv[++*i];
	spelled = xstrndup(a, len);
	ret = add_value(o, opt, spelled, value, command);
	free(spelled);
	return ret;
}

/* Short options at argv[*i]: "-v", "-vv", "-iFILE", "-i FILE". */
static int parse_short_opts(struct opts *o, const struct opt *const *tables, int argc, char **argv,
	int *i, const char *command)
{
	const char *a = argv[*i];

	for (const char *p = a + 1; *p; p++) {
		const struct opt *opt = find_short(tables, *p);
		char spelled[3] = {'-', *p, '\0'};
		const char *value = NULL;

		if (!opt)
			return unknown(o, tables, spelled, 2, command);
		if (opt->kind == OPT_FLAG) {
			if (add_value(o, opt, spelled, NULL, command) < 0)
				return -1;
			continue;
		}
		if (p[1])
			value = p + 1;
		else if (*i + 1 < argc)
			value = argv[++*i];
		return add_value(o, opt, spelled, value, command);
	}
	return 0;
}

int opts_parse(struct opts *o, const struct opt *const *tables, int argc, char **argv, int first,
	int flags, const char *command)
{
	int i, ret = 0;

	o->unknown = NULL;
	o->ndash = SIZE_MAX;
	for (i = first; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			o->ndash = o->nargs;
			if (flags & OPTS_STOP_AT_ARG) {
				i++;
				break;
			}
			while (++i < argc)
				add_arg(o, argv[i]);
			break;
		}
		if (a[0] != '-' || !a[1]) { /* "-" is an argument: stdin, by custom */
			if (flags & OPTS_STOP_AT_ARG)
				break;
			add_arg(o, a);
			continue;
		}
		if (a[1] == '-')
			ret = parse_long_opt(o, tables, argc, argv, &i, command);
		else
			ret = parse_short_opts(o, tables, argc, argv, &i, command);
		if (ret < 0)
			break;
	}
	if (o->ndash == SIZE_MAX)
		o->ndash = o->nargs;
	o->end = i < argc ? i : argc;
	return ret;
}

void opts_add_arg(struct buf *b, const struct opt *o)
{
	if (o->kind == OPT_CHOICE && !o->arg) {
		for (size_t i = 0; o->choices[i]; i++)
			buf_printf(b, "%s%s", i ? "|" : "", o->choices[i]);
		return;
	}
	if (o->arg)
		buf_adds(b, o->arg);
}

void opts_add_synopsis(struct buf *b, const struct opt *table, int at, int indent, int width)
{
	size_t col = (size_t)at;

	for (const struct opt *o = table; o && o->name; o++) {
		struct buf one = BUF_INIT(0);

		buf_printf(&one, "[--%s", o->name);
		if (o->kind != OPT_FLAG) {
			buf_adds(&one, " ");
			opts_add_arg(&one, o);
		}
		buf_adds(&one, "]");
		if (col > (size_t)indent && col + 1 + one.len >= (size_t)width) {
			buf_printf(b, "\n%*s", indent, "");
			col = (size_t)indent;
		} else if (o != table) {
			buf_adds(b, " ");
			col++;
		}
		buf_add(b, one.data, one.len);
		col += one.len;
		buf_release(&one);
	}
}

/* "-i, --inventory FILE", or "    --json" when others of the table have a short name */
static void left_column(struct buf *b, const struct opt *o, bool shorts)
{
	if (o->short_name)
		buf_printf(b, "-%c, --%s", o->short_name, o->name);
	else
		buf_printf(b, "%s--%s", shorts ? "    " : "", o->name);
	if (o->kind != OPT_FLAG) {
		buf_adds(b, " ");
		opts_add_arg(b, o);
	}
}

/* Appends `text` from column `at`, wrapped before HELP_WIDTH, continuing at `at`. */
static void add_wrapped(struct buf *b, const char *text, size_t at)
{
	size_t col = at;

	while (*text) {
		size_t n = strcspn(text, " ");

		if (col > at && col + 1 + n >= HELP_WIDTH) {
			buf_printf(b, "\n%*s", (int)at, "");
			col = at;
		} else if (col > at) {
			buf_adds(b, " ");
			col++;
		}
		buf_add(b, text, n);
		col += n;
		text += n;
		while (*text == ' ')
			text++;
	}
	buf_adds(b, "\n");
}

void opts_add_help(struct buf *b, const struct opt *table)
{
	size_t width = 0;
	bool shorts = false;

	for (const struct opt *o = table; o && o->name; o++)
		shorts |= o->short_name != 0;
	for (const struct opt *o = table; o && o->name; o++) {
		struct buf l = BUF_INIT(0);

		left_column(&l, o, shorts);
		if (l.len > width && l.len <= HELP_LEFT_MAX)
			width = l.len;
		buf_release(&l);
	}
	for (const struct opt *o = table; o && o->name; o++) {
		struct buf l = BUF_INIT(0);

		left_column(&l, o, shorts);
		/* a very long left column goes on a line of its own */
		if (l.len > width)
			buf_printf(b, "  %s\n  %*s  ", l.data, (int)width, "");
		else
			buf_printf(b, "  %-*s  ", (int)width, l.data);
		add_wrapped(b, o->help, width + 4);
		buf_release(&l);
	}
}
