/*
 * transport/ssh_config.c: OpenSSH client config resolution.
 *
 * libssh 0.10's own parser ignores `StrictHostKeyChecking accept-new`,
 * turns ProxyJump into an `ssh -J` child process, knows nothing of
 * ServerAliveInterval and keeps one IdentityFile in a form we can't read
 * back, so the keywords constel acts on are resolved here; libssh still
 * reads the file for the ones it applies itself (Ciphers, KexAlgorithms...).
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/internal.h"
#include "transport/transport.h"

#define MAX_INCLUDE_DEPTH 16
#define MAX_LINE	  4096

struct resolver {
	struct ssh_resolved *r;
	const char *name;
	const char *address;
	const char *home;
	bool have_port, have_strict, have_timeout, have_alive, have_ionly;
	bool have_agent, have_count;
	int alive_count;
	char *hostname; /* raw HostName, expanded at the end */
	char *known_hosts;
	char *user;
	char *proxy_jump;
	char *proxy_command;
	struct strvec ids; /* raw IdentityFile values, expanded at the end */
};

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

static const char *local_user(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw && pw->pw_name ? pw->pw_name : "root";
}

/* Splits the next argument off *s: whitespace separated, "quoted" allowed. */
static char *next_arg(char **s)
{
	char *p = *s, *start;

	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p)
		return NULL;
	if (*p == '"') {
		start = ++p;
		while (*p && *p != '"')
			p++;
	} else {
		start = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
	}
	if (*p)
		*p++ = '\0';
	*s = p;
	return start;
}

static bool pattern_list_matches(const char *list, const char *host)
{
	char *copy = xstrdup(list), *s = copy, *pat;
	bool pos = false, neg = false;

	/* lists are comma separated in Match, whitespace separated in Host */
	for (char *c = copy; *c; c++)
		if (*c == ',')
			*c = ' ';
	while ((pat = next_arg(&s))) {
		bool negate = pat[0] == '!';

		if (fnmatch(negate ? pat + 1 : pat, host, FNM_CASEFOLD) == 0) {
			if (negate)
				neg = true;
			else
				pos = true;
		}
	}
	free(copy);
	return pos && !neg;
}

static bool host_matches(struct resolver *rs, const char *list)
{
	if (pattern_list_matches(list, rs->name))
		return true;
	return rs->address && pattern_list_matches(list, rs->address);
}

/* `Match` with criteria `all` and `host`; any other criterion never matches. */
static bool match_matches(struct resolver *rs, char *args)
{
	char *kw, *val;
	bool ok = true;

	while ((kw = next_arg(&args))) {
		if (!strcasecmp(kw, "all"))
			continue;
		val = next_arg(&args);
		if (!val)
			return false;
		if (!strcasecmp(kw, "host") || !strcasecmp(kw, "originalhost"))
			ok = ok && host_matches(rs, val);
		else
			ok = false;
	}
	return ok;
}

static int yes_no(const char *v)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true"))
		return 1;
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false"))
		return 0;
	return -1;
}

static int parse_file(struct resolver *rs, const char *path, int depth);

static int do_include(struct resolver *rs, const char *from, const char *arg, int depth)
{
	char *pattern = NULL, *dir = NULL;
	glob_t g;
	int ret = 0;

	if (depth >= MAX_INCLUDE_DEPTH)
		return error_set("%s: Include nested too deeply", from);
	if (arg[0] == '~' && arg[1] == '/') {
		pattern = xasprintf("%s%s", rs->home, arg + 1);
	} else if (arg[0] == '/') {
		pattern = xstrdup(arg);
	} else {
		/* OpenSSH: relative to ~/.ssh for user files; we use the file's folder */
		const char *slash = strrchr(from, '/');

		dir = slash ? xstrndup(from, (size_t)(slash - from)) : xstrdup(".");
		pattern = xasprintf("%s/%s", dir, arg);
	}
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && !ret; i++)
			ret = parse_file(rs, g.gl_pathv[i], depth + 1);
		globfree(&g);
	}
	free(pattern);
	free(dir);
	return ret;
}

static void set_str(char **slot, const char *v)
{
	if (!*slot)
		*slot = xstrdup(v);
}

static int set_int(const char *file, int line, const char *kw, const char *v, bool *have, int *slot,
	long min, long max)
{
	long n;

	if (*have)
		return 0;
	if (parse_long(v, min, max, &n) < 0)
		return error_set("%s:%d: bad %s '%s'", file, line, kw, v);
	*slot = (int)n;
	*have = true;
	return 0;
}

static int apply(
	struct resolver *rs, const char *file, int line, const char *kw, char *args, int depth)
{
	struct ssh_resolved *r = rs->r;
	char *v;

	if (!strcasecmp(kw, "Include")) {
		while ((v = next_arg(&args))) {
			int ret = do_include(rs, file, v, depth);

			if (ret < 0)
				return ret;
		}
		return 0;
	}
	if (!strcasecmp(kw, "ProxyCommand")) {
		/* the whole rest of the line is the command */
		while (*args && isspace((unsigned char)*args))
			args++;
		if (*args)
			set_str(&rs->proxy_command, args);
		return 0;
	}
	v = next_arg(&args);
	if (!v)
		return 0;
	if (!strcasecmp(kw, "HostName")) {
		set_str(&rs->hostname, v);
	} else if (!strcasecmp(kw, "User")) {
		set_str(&rs->user, v);
	} else if (!strcasecmp(kw, "Port")) {
		return set_int(file, line, kw, v, &rs->have_port, &r->port, 1, 65535);
	} else if (!strcasecmp(kw, "IdentityFile")) {
		strvec_push(&rs->ids, v);
	} else if (!strcasecmp(kw, "UserKnownHostsFile")) {
		set_str(&rs->known_hosts, v);
	} else if (!strcasecmp(kw, "ConnectTimeout")) {
		return set_int(file, line, kw, v, &rs->have_timeout, &r->connect_timeout, 1, 86400);
	} else if (!strcasecmp(kw, "ServerAliveInterval")) {
		return set_int(file, line, kw, v, &rs->have_alive, &r->alive_interval, 0, 86400);
	} else if (!strcasecmp(kw, "Ciphers")) {
		r->ciphers_set = true;
	} else if (!strcasecmp(kw, "ServerAliveCountMax")) {
		return set_int(file, line, kw, v, &rs->have_count, &rs->alive_count, 1, 1000);
	} else if (!strcasecmp(kw, "ProxyJump")) {
		set_str(&rs->proxy_jump, v);
	} else if (!strcasecmp(kw, "IdentitiesOnly")) {
		if (!rs->have_ionly) {
			rs->have_ionly = true;
			r->identities_only = yes_no(v) == 1;
		}
	} else if (!strcasecmp(kw, "IdentityAgent")) {
		if (!rs->have_agent) {
			rs->have_agent = true;
			if (strcasecmp(v, "none") && strcmp(v, "SSH_AUTH_SOCK")) {
				free(r->identity_agent);
				r->identity_agent = xstrdup(v);
			}
			if (!strcasecmp(v, "none")) {
				free(r->identity_agent);
				r->identity_agent = NULL;
			}
		}
	} else if (!strcasecmp(kw, "StrictHostKeyChecking")) {
		if (rs->have_strict)
			return 0;
		rs->have_strict = true;
		if (!strcasecmp(v, "accept-new"))
			r->hostkey_policy = SSH_HOSTKEY_ACCEPT_NEW;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "off"))
			r->hostkey_policy = SSH_HOSTKEY_NO;
		else if (!strcasecmp(v, "yes") || !strcasecmp(v, "ask"))
			r->hostkey_policy = SSH_HOSTKEY_STRICT;
		else
			return error_set("%s:%d: bad StrictHostKeyChecking '%s'", file, line, v);
	}
	return 0;
}

static int parse_file(struct resolver *rs, const char *path, int depth)
{
	FILE *f = fopen(path, "r");
	char line[MAX_LINE];
	bool active = true;
	int lineno = 0, ret = 0;

	if (!f)
		return errno == ENOENT ? 0
				       : error_set("cannot read '%s': %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *kw, *end;

		lineno++;
		end = s + strlen(s);
		while (end > s && isspace((unsigned char)end[-1]))
			*--end = '\0';
		while (*s && isspace((unsigned char)*s))
			s++;
		if (!*s || *s == '#')
			continue;
		kw = s;
		while (*s && !isspace((unsigned char)*s) && *s != '=')
			s++;
		if (*s) {
			bool eq = *s == '=';

			*s++ = '\0';
			while (*s && isspace((unsigned char)*s))
				s++;
			if (!eq && *s == '=')
				s++;
		}
		if (!strcasecmp(kw, "Host")) {
			active = host_matches(rs, s);
			continue;
		}
		if (!strcasecmp(kw, "Match")) {
			active = match_matches(rs, s);
			continue;
		}
		if (!active)
			continue;
		ret = apply(rs, path, lineno, kw, s, depth);
		if (ret < 0)
			break;
	}
	fclose(f);
	return ret;
}

/* OpenSSH's percent tokens and a leading ~/. */
static char *expand(struct resolver *rs, const char *s)
{
	struct buf b = BUF_INIT(0);
	struct ssh_resolved *r = rs->r;

	if (s[0] == '~' && (s[1] == '/' || !s[1])) {
		buf_adds(&b, rs->home);
		s++;
	}
	for (; *s; s++) {
		if (*s != '%' || !s[1]) {
			buf_add(&b, s, 1);
			continue;
		}
		switch (*++s) {
		case 'h':
			buf_adds(&b, r->hostname ? r->hostname : rs->name);
			break;
		case 'n':
			buf_adds(&b, rs->name);
			break;
		case 'p':
			buf_printf(&b, "%d", r->port);
			break;
		case 'r':
			buf_adds(&b, r->user ? r->user : "");
			break;
		case 'u':
			buf_adds(&b, local_user());
			break;
		case 'd':
			buf_adds(&b, rs->home);
			break;
		default:
			buf_add(&b, s - 1, 2);
		}
	}
	return buf_detach(&b);
}

void ssh_resolved_release(struct ssh_resolved *r)
{
	free(r->name);
	free(r->hostname);
	free(r->user);
	strvec_release(&r->identities);
	free(r->identity_agent);
	free(r->known_hosts);
	free(r->proxy_jump);
	free(r->proxy_command);
	free(r->config_file);
	memset(r, 0, sizeof(*r));
}

int ssh_target_resolve(struct ssh_resolved *r, const struct ssh_target *t)
{
	struct resolver rs = {0};
	const char *agent = getenv("SSH_AUTH_SOCK");
	int ret = 0;

	if (!t || !t->name || !*t->name)
		return error_set("ssh target without a name");
	memset(r, 0, sizeof(*r));
	strvec_init(&r->identities);
	strvec_init(&rs.ids);
	rs.r = r;
	rs.name = t->name;
	rs.address = t->address;
	rs.home = home_dir();
	r->name = xstrdup(t->name);
	r->port = 22;
	r->connect_timeout = 10;
	r->identity_agent = agent && *agent ? xstrdup(agent) : NULL;
	r->hostkey_policy = SSH_HOSTKEY_STRICT;

	if (t->ssh_config) {
		r->config_file = xstrdup(t->ssh_config);
		if (access(t->ssh_config, R_OK) < 0) {
			ret = error_set(
				"cannot read ssh config '%s': %s", t->ssh_config, strerror(errno));
			goto out;
		}
		ret = parse_file(&rs, t->ssh_config, 0);
	} else {
		char *user_file = xasprintf("%s/.ssh/config", rs.home);

		if (access(user_file, R_OK) == 0)
			r->config_file = xstrdup(user_file);
		ret = parse_file(&rs, user_file, 0);
		free(user_file);
		if (!ret)
			ret = parse_file(&rs, "/etc/ssh/ssh_config", 0);
	}
	if (ret < 0)
		goto out;

	/* explicit values beat the config */
	if (t->port > 0)
		r->port = t->port;
	if (t->connect_timeout > 0)
		r->connect_timeout = t->connect_timeout;
	/* like OpenSSH, give up after ServerAliveCountMax unanswered keepalives */
	if (t->op_timeout > 0)
		r->op_timeout = t->op_timeout;
	else if (rs.have_alive && r->alive_interval > 0)
		r->op_timeout = r->alive_interval * (rs.have_count ? rs.alive_count : 3);
	else
		r->op_timeout = 60;
	if (!rs.have_alive || r->alive_interval <= 0)
		r->alive_interval = r->op_timeout / 3 > 0 ? r->op_timeout / 3 : 1;
	r->user = xstrdup(t->user ? t->user : rs.user ? rs.user : "root");
	if (t->address)
		r->hostname = xstrdup(t->address);
	else if (rs.hostname)
		r->hostname = expand(&rs, rs.hostname);
	else
		r->hostname = xstrdup(t->name);

	for (size_t i = 0; i < rs.ids.nr; i++)
		strvec_push_nodup(&r->identities, expand(&rs, rs.ids.v[i]));
	if (!rs.ids.nr) {
		static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};

		for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
			strvec_pushf(&r->identities, "%s/.ssh/%s", rs.home, defaults[i]);
	}
	if (rs.known_hosts) {
		char *first = rs.known_hosts, *s = first;

		first = next_arg(&s);
		if (first && !strcasecmp(first, "none"))
			r->known_hosts = xstrdup("/dev/null");
		else if (first)
			r->known_hosts = expand(&rs, first);
	}
	if (!r->known_hosts)
		r->known_hosts = xasprintf("%s/.ssh/known_hosts", rs.home);
	if (r->identity_agent && r->identity_agent[0] == '~') {
		char *a = expand(&rs, r->identity_agent);

		free(r->identity_agent);
		r->identity_agent = a;
	}
	if (rs.proxy_jump && strcasecmp(rs.proxy_jump, "none")) {
		/* only the first hop: a,b means "reach b through a" */
		char *comma = strchr(rs.proxy_jump, ',');

		r->proxy_jump = comma ? xstrndup(rs.proxy_jump, (size_t)(comma - rs.proxy_jump))
				      : xstrdup(rs.proxy_jump);
	}
	if (rs.proxy_command && strcasecmp(rs.proxy_command, "none"))
		r->proxy_command = expand(&rs, rs.proxy_command);
out:
	free(rs.hostname);
	free(rs.known_hosts);
	free(rs.user);
	free(rs.proxy_jump);
	free(rs.proxy_command);
	strvec_release(&rs.ids);
	if (ret < 0)
		ssh_resolved_release(r);
	return ret;
}

int transport__parse_jump(const char *spec, char **user, char **host, int *port)
{
	const char *at, *h, *colon;
	long p = 0;
	char *hs;

	*user = NULL;
	*host = NULL;
	*port = 0;
	if (!strncmp(spec, "ssh://", 6))
		spec += 6;
	at = strrchr(spec, '@');
	h = at ? at + 1 : spec;
	if (at)
		*user = xstrndup(spec, (size_t)(at - spec));
	colon = strrchr(h, ':');
	if (colon && !strchr(colon, ']')) {
		hs = xstrndup(h, (size_t)(colon - h));
		if (parse_long(colon + 1, 1, 65535, &p) < 0) {
			free(hs);
			free(*user);
			*user = NULL;
			return error_set("bad ProxyJump '%s': bad port", spec);
		}
	} else {
		hs = xstrdup(h);
	}
	if (hs[0] == '[') {
		size_t l = strlen(hs);

		memmove(hs, hs + 1, l);
		if (l > 1 && hs[l - 2] == ']')
			hs[l - 2] = '\0';
	}
	if (!*hs) {
		free(hs);
		free(*user);
		*user = NULL;
		return error_set("bad ProxyJump '%s': no host", spec);
	}
	*host = hs;
	*port = (int)p;
	return 0;
}
