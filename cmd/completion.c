/*
 * constel completion bash|zsh|fish: a completion script made from the
 * command table and the option tables, so it offers exactly what the
 * parser accepts. Host names and @tags are not in the script: it asks
 * `constel [-i FILE] __complete-hosts` (hidden) when they are wanted, so
 * they follow the inventory of the command line being completed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

static const char *const shells[] = {"bash", "zsh", "fish", NULL};

/* What the value of an option is, by its kind and the name of its value. */
enum value_kind { VALUE_FLAG, VALUE_NONE, VALUE_CHOICE, VALUE_FILE, VALUE_DIR, VALUE_HOSTS };

static enum value_kind value_of(const struct opt *o)
{
	if (o->kind == OPT_FLAG)
		return VALUE_FLAG;
	if (o->kind == OPT_CHOICE)
		return VALUE_CHOICE;
	if (o->kind != OPT_STRING || !o->arg)
		return VALUE_NONE;
	if (!strcmp(o->arg, "FILE"))
		return VALUE_FILE;
	if (!strcmp(o->arg, "DIR"))
		return VALUE_DIR;
	if (!strcmp(o->arg, "LIST"))
		return VALUE_HOSTS;
	return VALUE_NONE;
}

/* Appends the words of a NULL-terminated list, separated by spaces. */
static void add_words(struct buf *b, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		buf_printf(b, "%s%s", i ? " " : "", words[i]);
}

static void add_command_names(struct buf *b)
{
	bool first = true;

	for (size_t i = 0; cmd_table[i]; i++) {
		if (cmd_table[i]->hidden)
			continue;
		buf_printf(b, "%s%s", first ? "" : " ", cmd_table[i]->name);
		first = false;
	}
}

/* "--on --with-deps ..." (and "-i" for those with a short name). */
static void add_option_words(struct buf *b, const struct opt *table)
{
	for (const struct opt *o = table; o->name; o++) {
		buf_printf(b, "%s--%s", o == table ? "" : " ", o->name);
		if (o->short_name)
			buf_printf(b, " -%c", o->short_name);
	}
}

/* ---- bash ---- */

static const char bash_head[] =
	"# bash completion for constel; made by `constel completion bash`.\n"
	"# Load it with: source <(constel completion bash)\n"
	"\n"
	"# the host names and @tags of the inventory this command line names\n"
	"_constel_hosts() {\n"
	"\tlocal i inv=()\n"
	"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	"\t\tcase ${COMP_WORDS[i]} in\n"
	"\t\t-i | --inventory) inv=(-i \"${COMP_WORDS[i + 1]/#\\~/$HOME}\") ;;\n"
	"\t\t--inventory=*) inv=(-i \"${COMP_WORDS[i]#--inventory=}\") ;;\n"
	"\t\t-i?*) inv=(-i \"${COMP_WORDS[i]#-i}\") ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\t\"${COMP_WORDS[0]}\" \"${inv[@]}\" __complete-hosts 2>/dev/null\n"
	"}\n"
	"\n"
	"# completes the last item of a comma list of hosts and @tags\n"
	"_constel_host_list() {\n"
	"\tlocal pre=\n"
	"\t[[ $cur == *,* ]] && pre=${cur%,*},\n"
	"\tCOMPREPLY=($(compgen -P \"$pre\" -W \"$(_constel_hosts)\" -- \"${cur##*,}\"))\n"
	"}\n"
	"\n"
	"_constel() {\n"
	"\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
	"\tlocal cmd= i args= opts\n"
	"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	"\t\tcase ${COMP_WORDS[i]} in\n"
	"\t\t-i | --inventory | --ssh-config) ((i++)) ;;\n"
	"\t\t-*) ;;\n"
	"\t\t*) cmd=${COMP_WORDS[i]}; break ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\t# exec's command, after --: nothing to offer\n"
	"\tlocal j\n"
	"\tfor ((j = i + 1; j < COMP_CWORD; j++)); do\n"
	"\t\t[[ ${COMP_WORDS[j]} == -- ]] && return 0\n"
	"\tdone\n";

/* `case $prev in` arms, at `indent`, for the options of `table` that take a value. */
static void bash_values(struct buf *b, const struct opt *table, const char *indent)
{
	for (const struct opt *o = table; o->name; o++) {
		if (o->kind == OPT_FLAG)
			continue;
		buf_adds(b, indent);
		if (o->short_name)
			buf_printf(b, "-%c | ", o->short_name);
		buf_printf(b, "--%s)\n%s\t", o->name, indent);
		switch (value_of(o)) {
		case VALUE_CHOICE:
			buf_adds(b, "COMPREPLY=($(compgen -W \"");
			add_words(b, o->choices);
			buf_adds(b, "\" -- \"$cur\"))\n");
			break;
		case VALUE_FILE:
			buf_adds(b, "COMPREPLY=($(compgen -f -- \"$cur\"))\n");
			break;
		case VALUE_DIR:
			buf_adds(b, "COMPREPLY=($(compgen -d -- \"$cur\"))\n");
			break;
		case VALUE_HOSTS:
			buf_adds(b, "_constel_host_list\n");
			break;
		case VALUE_NONE:
		case VALUE_FLAG:
			buf_adds(b, "COMPREPLY=()\n");
			break;
		}
		buf_printf(b, "%s\treturn 0\n%s\t;;\n", indent, indent);
	}
}

static const char *complete_name(enum cmd_complete c)
{
	switch (c) {
	case CMD_COMPLETE_HOSTS:
		return "hosts";
	case CMD_COMPLETE_COMMANDS:
		return "commands";
	case CMD_COMPLETE_SHELLS:
		return "shells";
	case CMD_COMPLETE_NOTHING:
		break;
	}
	return "";
}

static void bash_script(struct buf *b)
{
	buf_adds(b, bash_head);
	buf_adds(b, "\tlocal globals=\"");
	add_option_words(b, cmd_global_opts);
	buf_adds(b, "\"\n\tcase $prev in\n");
	bash_values(b, cmd_global_opts, "\t");
	buf_adds(b, "\tesac\n\tcase $cmd in\n\t'')\n\t\tif [[ $cur == -* ]]; then\n"
		    "\t\t\tCOMPREPLY=($(compgen -W \"$globals\" -- \"$cur\"))\n\t\telse\n"
		    "\t\t\tCOMPREPLY=($(compgen -W \"");
	add_command_names(b);
	buf_adds(b, "\" -- \"$cur\"))\n\t\tfi\n\t\treturn 0\n\t\t;;\n");
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd *c = cmd_table[i];

		if (c->hidden)
			continue;
		buf_printf(b, "\t%s)\n\t\tcase $prev in\n", c->name);
		bash_values(b, c->opts, "\t\t");
		buf_adds(b, "\t\tesac\n\t\topts=\"");
		add_option_words(b, c->opts);
		buf_printf(b, "\"\n\t\targs=%s\n\t\t;;\n", complete_name(c->complete));
	}
	buf_adds(b, "\t*) return 0 ;;\n\tesac\n");
	buf_adds(b, "\tif [[ $cur == -* ]]; then\n"
		    "\t\tCOMPREPLY=($(compgen -W \"$opts $globals\" -- \"$cur\"))\n"
		    "\t\treturn 0\n\tfi\n"
		    "\tcase $args in\n"
		    "\thosts) COMPREPLY=($(compgen -W \"$(_constel_hosts)\" -- \"$cur\")) ;;\n"
		    "\tcommands) COMPREPLY=($(compgen -W \"");
	add_command_names(b);
	buf_adds(b, "\" -- \"$cur\")) ;;\n\tshells) COMPREPLY=($(compgen -W \"");
	add_words(b, shells);
	buf_adds(b, "\" -- \"$cur\")) ;;\n\tesac\n\treturn 0\n}\n\n"
		    "complete -F _constel constel\n");
}

/* ---- zsh ---- */

/* `s` inside a single-quoted zsh word and, with `desc`, inside _arguments' [...]. */
static void zsh_text(struct buf *b, const char *s, bool desc)
{
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(b, "'\\''");
		else if (desc && (*s == '[' || *s == ']' || *s == ':' || *s == '\\'))
			buf_printf(b, "\\%c", *s);
		else
			buf_add(b, s, 1);
	}
}

/* One _arguments spec per option, each on its own line, ending with `eol`. */
static void zsh_specs(struct buf *b, const struct opt *table, const char *indent, const char *eol)
{
	for (const struct opt *o = table; o->name; o++) {
		bool value = o->kind != OPT_FLAG;

		buf_adds(b, indent);
		if (o->id == CMD_OPT_VERBOSE)
			buf_adds(b, "'*'");
		else if (o->short_name)
			buf_printf(b, "'(-%c --%s)'", o->short_name, o->name);
		if (o->short_name)
			buf_printf(b, "{-%c%s,--%s%s}", o->short_name, value ? "+" : "", o->name,
				value ? "=" : "");
		else
			buf_printf(b, "'--%s%s'", o->name, value ? "=" : "");
		buf_adds(b, "'[");
		zsh_text(b, o->help, true);
		buf_adds(b, "]");
		if (value) {
			buf_adds(b, ":");
			zsh_text(b, o->arg ? o->arg : o->name, true);
			buf_adds(b, ":");
			switch (value_of(o)) {
			case VALUE_CHOICE:
				buf_adds(b, "(");
				add_words(b, o->choices);
				buf_adds(b, ")");
				break;
			case VALUE_FILE:
				buf_adds(b, "_files");
				break;
			case VALUE_DIR:
				buf_adds(b, "_files -/");
				break;
			case VALUE_HOSTS:
				buf_adds(b, "_sequence _constel_hosts");
				break;
			case VALUE_NONE:
			case VALUE_FLAG:
				buf_adds(b, " ");
				break;
			}
		}
		buf_printf(b, "'%s", eol);
	}
}

static const char zsh_head[] =
	"#compdef constel\n"
	"# zsh completion for constel; made by `constel completion zsh`.\n"
	"# Load it with: source <(constel completion zsh), or save it as _constel in $fpath.\n"
	"\n"
	"# the host names and @tags of the inventory this command line names\n"
	"_constel_hosts() {\n"
	"\tlocal -a inv hosts\n"
	"\tlocal i\n"
	"\tfor ((i = 2; i <= $#_constel_words; i++)); do\n"
	"\t\tcase $_constel_words[i] in\n"
	"\t\t-i|--inventory) inv=(-i ${~_constel_words[i+1]}) ;;\n"
	"\t\t--inventory=*) inv=(-i ${~_constel_words[i]#--inventory=}) ;;\n"
	"\t\t-i?*) inv=(-i ${~_constel_words[i]#-i}) ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\thosts=(${(f)\"$($_constel_words[1] $inv __complete-hosts 2>/dev/null)\"})\n"
	"\tcompadd -a hosts\n"
	"}\n"
	"\n"
	"_constel() {\n"
	"\tlocal curcontext=$curcontext state line ret=1\n"
	"\ttypeset -ga _constel_words\n"
	"\t_constel_words=($words)\n"
	"\tlocal -a globals commands\n"
	"\tglobals=(\n";

static void zsh_script(struct buf *b)
{
	buf_adds(b, zsh_head);
	zsh_specs(b, cmd_global_opts, "\t\t", "\n");
	buf_adds(b, "\t)\n\tcommands=(\n");
	for (size_t i = 0; cmd_table[i]; i++) {
		if (cmd_table[i]->hidden)
			continue;
		buf_printf(b, "\t\t'%s:", cmd_table[i]->name);
		zsh_text(b, cmd_table[i]->summary, false);
		buf_adds(b, "'\n");
	}
	buf_adds(b, "\t)\n"
		    "\t_arguments -C $globals ': :->command' '*:: :->args' && ret=0\n"
		    "\tcase $state in\n"
		    "\tcommand)\n"
		    "\t\t_describe -t commands 'constel command' commands && ret=0\n"
		    "\t\t;;\n"
		    "\targs)\n"
		    "\t\tcase $words[1] in\n");
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd *c = cmd_table[i];

		if (c->hidden)
			continue;
		buf_printf(b, "\t\t%s)\n\t\t\t_arguments $globals \\\n", c->name);
		zsh_specs(b, c->opts, "\t\t\t\t", " \\\n");
		buf_adds(b, "\t\t\t\t");
		switch (c->complete) {
		case CMD_COMPLETE_HOSTS:
			buf_adds(b, "'*:host:_constel_hosts'");
			break;
		case CMD_COMPLETE_COMMANDS:
			buf_adds(b, "'1:command:(");
			add_command_names(b);
			buf_adds(b, ")'");
			break;
		case CMD_COMPLETE_SHELLS:
			buf_adds(b, "'1:shell:(");
			add_words(b, shells);
			buf_adds(b, ")'");
			break;
		case CMD_COMPLETE_NOTHING:
			buf_adds(b, "'*: :'");
			break;
		}
		buf_adds(b, " && ret=0\n\t\t\t;;\n");
	}
	buf_adds(b, "\t\tesac\n\t\t;;\n\tesac\n\treturn ret\n}\n\n"
		    "if [ \"$funcstack[1]\" = \"_constel\" ]; then\n"
		    "\t_constel \"$@\"\n"
		    "else\n"
		    "\tcompdef _constel constel\n"
		    "fi\n");
}

/* ---- fish ---- */

/* `s` as a single-quoted fish word. */
static void fish_word(struct buf *b, const char *s)
{
	buf_adds(b, "'");
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			buf_add(b, "\\", 1);
		buf_add(b, s, 1);
	}
	buf_adds(b, "'");
}

static const char fish_head[] =
	"# fish completion for constel; made by `constel completion fish`.\n"
	"# Load it with: constel completion fish | source, or save it as\n"
	"# ~/.config/fish/completions/constel.fish\n"
	"\n"
	"# the command of the command line, after the global options\n"
	"function __constel_command\n"
	"\tset -l tokens (commandline -opc)\n"
	"\tset -l skip 0\n"
	"\tfor i in (seq 2 (count $tokens))\n"
	"\t\tif test $skip = 1\n"
	"\t\t\tset skip 0\n"
	"\t\t\tcontinue\n"
	"\t\tend\n"
	"\t\tswitch $tokens[$i]\n"
	"\t\t\tcase -i --inventory --ssh-config\n"
	"\t\t\t\tset skip 1\n"
	"\t\t\tcase '-*'\n"
	"\t\t\tcase '*'\n"
	"\t\t\t\techo $tokens[$i]\n"
	"\t\t\t\treturn 0\n"
	"\t\tend\n"
	"\tend\n"
	"\treturn 1\n"
	"end\n"
	"\n"
	"function __constel_using\n"
	"\tset -l c (__constel_command); or return 1\n"
	"\tcontains -- $c $argv\n"
	"end\n"
	"\n"
	"# the host names and @tags of the inventory this command line names\n"
	"function __constel_hosts\n"
	"\tset -l tokens (commandline -opc)\n"
	"\tset -l inv\n"
	"\tfor i in (seq 2 (count $tokens))\n"
	"\t\tswitch $tokens[$i]\n"
	"\t\t\tcase -i --inventory\n"
	"\t\t\t\tset -l j (math $i + 1)\n"
	"\t\t\t\ttest $j -le (count $tokens); and set inv -i $tokens[$j]\n"
	"\t\t\tcase '--inventory=*'\n"
	"\t\t\t\tset inv -i (string replace -- --inventory= '' $tokens[$i])\n"
	"\t\t\tcase '-i?*'\n"
	"\t\t\t\tset inv -i (string sub -s 3 -- $tokens[$i])\n"
	"\t\tend\n"
	"\tend\n"
	"\t$tokens[1] $inv __complete-hosts 2>/dev/null\n"
	"end\n"
	"\n"
	"# the last item of a comma list of hosts and @tags\n"
	"function __constel_host_list\n"
	"\tset -l cur (commandline -ct)\n"
	"\tset -l pre (string match -r '^.*,' -- $cur)\n"
	"\tfor h in (__constel_hosts)\n"
	"\t\techo $pre$h\n"
	"\tend\n"
	"end\n"
	"\n"
	"complete -c constel -f\n";

/* One `complete` line per option; `cond` is the -n condition, or NULL. */
static void fish_options(struct buf *b, const struct opt *table, const char *cond)
{
	for (const struct opt *o = table; o->name; o++) {
		buf_adds(b, "complete -c constel");
		if (cond)
			buf_printf(b, " -n '%s'", cond);
		if (o->short_name)
			buf_printf(b, " -s %c", o->short_name);
		buf_printf(b, " -l %s", o->name);
		switch (value_of(o)) {
		case VALUE_CHOICE: {
			struct buf w = BUF_INIT(0);

			add_words(&w, o->choices);
			buf_adds(b, " -x -a ");
			fish_word(b, w.data);
			buf_release(&w);
			break;
		}
		case VALUE_FILE:
			buf_adds(b, " -r -F");
			break;
		case VALUE_DIR:
			buf_adds(b, " -x -a '(__fish_complete_directories)'");
			break;
		case VALUE_HOSTS:
			buf_adds(b, " -x -a '(__constel_host_list)'");
			break;
		case VALUE_NONE:
			buf_adds(b, " -x");
			break;
		case VALUE_FLAG:
			break;
		}
		buf_adds(b, " -d ");
		fish_word(b, o->help);
		buf_adds(b, "\n");
	}
}

static void fish_script(struct buf *b)
{
	struct buf cond = BUF_INIT(0), hosts = BUF_INIT(0);

	buf_adds(b, fish_head);
	for (size_t i = 0; cmd_table[i]; i++) {
		if (cmd_table[i]->hidden)
			continue;
		buf_printf(b, "complete -c constel -n 'not __constel_command' -a %s -d ",
			cmd_table[i]->name);
		fish_word(b, cmd_table[i]->summary);
		buf_adds(b, "\n");
	}
	fish_options(b, cmd_global_opts, NULL);
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd *c = cmd_table[i];

		if (c->hidden)
			continue;
		buf_reset(&cond);
		buf_printf(&cond, "__constel_using %s", c->name);
		fish_options(b, c->opts, cond.data);
		switch (c->complete) {
		case CMD_COMPLETE_HOSTS:
			buf_printf(&hosts, " %s", c->name);
			break;
		case CMD_COMPLETE_COMMANDS:
			buf_printf(b, "complete -c constel -n '%s' -a '", cond.data);
			add_command_names(b);
			buf_adds(b, "'\n");
			break;
		case CMD_COMPLETE_SHELLS:
			buf_printf(b, "complete -c constel -n '%s' -a '", cond.data);
			add_words(b, shells);
			buf_adds(b, "'\n");
			break;
		case CMD_COMPLETE_NOTHING:
			break;
		}
	}
	buf_printf(b, "complete -c constel -n '__constel_using%s' -a '(__constel_hosts)'\n",
		hosts.data);
	buf_release(&cond);
	buf_release(&hosts);
}

static int completion(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct buf b = BUF_INIT(0);
	const char *shell = opts->nargs == 1 ? opts->args[0] : "";

	(void)g;
	if (!strcmp(shell, "bash"))
		bash_script(&b);
	else if (!strcmp(shell, "zsh"))
		zsh_script(&b);
	else if (!strcmp(shell, "fish"))
		fish_script(&b);
	else {
		cmd_error("completion takes one shell: bash, zsh or fish");
		return cmd_usage(self);
	}
	fputs(b.data, stdout);
	buf_release(&b);
	return fflush(stdout) == 0 ? CMD_OK : CMD_FAILED;
}

static const struct opt no_opts[] = {
	{NULL},
};

const struct cmd cmd_completion_entry = {
	.name = "completion",
	.opts = no_opts,
	.args = "bash|zsh|fish",
	.summary = "print a shell completion script (commands, options, hosts and @tags)",
	.complete = CMD_COMPLETE_SHELLS,
	.fn = completion,
};

/*
 * The host names, then the @tags, of the inventory, one a line. Nothing,
 * and success, when there is no inventory or it cannot be loaded: a
 * completion must never print an error into the user's command line.
 */
static int complete_hosts(
	const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct inv_errors errors = INV_ERRORS_INIT;
	struct inventory *inv = NULL;
	struct strvec tags = STRVEC_INIT;

	(void)self;
	(void)opts;
	if (cmd_inventory_load(g, &inv, &errors) < 0) {
		inv_errors_release(&errors);
		return CMD_OK;
	}
	for (size_t i = 0; i < inv->nhosts; i++) {
		printf("%s\n", inv->hosts[i].name);
		for (size_t j = 0; j < inv->hosts[i].tags.nr; j++)
			if (!strvec_contains(&tags, inv->hosts[i].tags.v[j]))
				strvec_push(&tags, inv->hosts[i].tags.v[j]);
	}
	for (size_t i = 0; i < tags.nr; i++)
		printf("@%s\n", tags.v[i]);
	strvec_release(&tags);
	inventory_free(inv);
	return CMD_OK;
}

const struct cmd cmd_complete_hosts_entry = {
	.name = "__complete-hosts",
	.opts = no_opts,
	.args = "",
	.summary = "host names and @tags of the inventory, for the completions",
	.hidden = true,
	.fn = complete_hosts,
};
