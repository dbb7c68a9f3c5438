/*
 * inventory/values.c: the syntax of the values that reach ssh and nix (host
 * names, addresses, users, attribute paths, builders): pure checks of
 * strings, which inventory/load.c turns into messages at a position.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "inventory/internal.h"

bool inventory__valid_name(const char *s)
{
	if (!*s || *s == '-' || *s == '.' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
			!(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A host name of RFC 1123: labels of letters, digits and '-', 1 to 63
 * characters, not starting or ending with '-', at most 253 in all. The
 * last label is not all digits: that is an IPv4 address, or nothing.
 */
static bool valid_hostname(const char *s, size_t len)
{
	size_t label = 0;
	bool numeric = true;

	if (!len || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			numeric = true;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return false;
		if (c == '-' && !label)
			return false;
		if (++label > 63)
			return false;
		numeric = numeric && is_digit(c);
	}
	return label && s[len - 1] != '-' && !numeric;
}

/* An IPv4 or IPv6 address as inet_pton() reads it (no zone, no brackets). */
static bool valid_ip(const char *s, size_t len, int family)
{
	char text[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];

	if (len >= sizeof(text) || memchr(s, '\0', len))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(family, text, bin) == 1;
}

bool inventory__valid_address(const char *s, size_t len)
{
	return valid_hostname(s, len) || valid_ip(s, len, AF_INET) || valid_ip(s, len, AF_INET6);
}

/* A user name of POSIX's portable set: [A-Za-z_][A-Za-z0-9_.-]*, 32 at most. */
bool inventory__valid_user(const char *s, size_t len)
{
	if (!len || len > 32 || (!is_alpha(*s) && *s != '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

/* A part of a value quoted in a message: cut short when long. Caller frees. */
static char *part_text(const char *s, size_t len)
{
	if (len > 40)
		return xasprintf("%.37s...", s);
	return xstrndup(s, len);
}

/* A Nix identifier: [A-Za-z_][A-Za-z0-9_'-]*. */
bool inventory__valid_identifier(const char *s, size_t len)
{
	if (!len || (!is_alpha(*s) && *s != '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '_' && s[i] != '\'' &&
			s[i] != '-')
			return false;
	return true;
}

static char *empty_segment(const char *attr)
{
	char *t = part_text(attr, strlen(attr)), *msg;

	msg = xasprintf("'%s' has an empty segment; expected names or double-quoted strings "
			"separated by '.'",
		t);
	free(t);
	return msg;
}

/* Why a double-quoted segment (at its '"') is not one, or NULL; *end: after it. */
static char *quoted_problem(const char *seg, const char **end)
{
	const char *p = seg + 1, *what = NULL;
	char *t, *msg;

	for (; *p && *p != '"'; p++) {
		if (*p == '\\')
			what = "'\\'";
		else if (*p == '$' && p[1] == '{')
			what = "'${'";
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			what = "a control character";
		if (what)
			break;
	}
	if (what) {
		t = part_text(seg, (size_t)(strchrnul(p, '"') - seg));
		msg = xasprintf("the quoted name '%s\"' contains %s; quoted names may not contain "
				"'\"', '\\', '${' or control characters",
			t, what);
		free(t);
		return msg;
	}
	if (!*p) {
		t = part_text(seg, (size_t)(p - seg));
		msg = xasprintf("the quoted name '%s' has no closing '\"'", t);
		free(t);
		return msg;
	}
	*end = p + 1;
	if (**end && **end != '.') {
		t = part_text(seg, (size_t)(*end - seg));
		msg = xasprintf("expected '.' after the quoted name '%s'", t);
		free(t);
		return msg;
	}
	return NULL;
}

/*
 * Why `attr` is not an attribute path, or NULL: segments separated by '.',
 * each a Nix identifier ([A-Za-z_][A-Za-z0-9_'-]*) or a double-quoted
 * string without '"', '\', "${" or control characters. Nix never parses it
 * (deploy/build.c hands it over as data), but a name that Nix source could
 * not hold without escapes is a mistake, or worse. Caller frees.
 */
char *inventory__attr_problem(const char *attr)
{
	const char *p = attr;

	for (;;) {
		char *t, *msg;

		if (*p == '"') {
			msg = quoted_problem(p, &p);
			if (msg)
				return msg;
		} else {
			const char *e = p + strcspn(p, ".");

			if (e == p)
				return empty_segment(attr);
			if (!inventory__valid_identifier(p, (size_t)(e - p))) {
				t = part_text(p, (size_t)(e - p));
				msg = xasprintf(
					"'%s' is not a name (letters, digits, '_', ''' and "
					"'-', not starting with a digit, ''' or '-'); write "
					"other names in double quotes",
					t);
				free(t);
				return msg;
			}
			p = e;
		}
		if (!*p)
			return NULL;
		p++; /* the '.' */
		if (!*p)
			return empty_segment(attr);
	}
}

char *inventory__builder_address_problem(const char *spec)
{
	const char *at = strchr(spec, '@'), *host, *colon, *end;
	long port;
	char *t, *msg = NULL;

	if (!at)
		return xstrdup("expected " BUILDER_EXPECTED);
	if (!inventory__valid_user(spec, (size_t)(at - spec))) {
		t = part_text(spec, (size_t)(at - spec));
		msg = xasprintf("the user '%s' is not " USER_EXPECTED, t);
		free(t);
		return msg;
	}
	host = at + 1;
	if (*host == '[') {
		host++;
		end = strchr(host, ']');
		colon = end && end[1] == ':' ? end + 1 : NULL;
		if (!end || (end[1] && !colon) || !valid_ip(host, (size_t)(end - host), AF_INET6)) {
			t = part_text(host - 1, strlen(host - 1));
			msg = xasprintf("the address '%s' is not an IPv6 address in brackets", t);
			free(t);
			return msg;
		}
	} else {
		colon = strchr(host, ':');
		/* two colons or more: an IPv6 address without a port */
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		end = colon ? colon : host + strlen(host);
		if (!inventory__valid_address(host, (size_t)(end - host))) {
			t = part_text(host, (size_t)(end - host));
			msg = xasprintf("the address '%s' is not " ADDRESS_EXPECTED, t);
			free(t);
			return msg;
		}
	}
	if (colon && (!is_digit(colon[1]) || parse_long(colon + 1, 1, 65535, &port) < 0)) {
		t = part_text(colon + 1, strlen(colon + 1));
		msg = xasprintf("the port '%s' is not a whole number from 1 to 65535", t);
		free(t);
	}
	return msg;
}
