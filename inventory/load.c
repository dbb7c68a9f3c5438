/*
 * inventory/load.c: loading and validation. The schema walk over the YAML
 * tree (inventory/yaml.c): every section, key and value checked, each
 * problem reported at its FILE:LINE:COL, the model filled as it goes; then
 * resolution (inventory/resolve.c) once every host is known.
 */
#include "inventory/inventory.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/names.h"
#include "common/util.h"
#include "inventory/internal.h"

static const char *const known_arches[] = {
	"x86_64-linux",
	"aarch64-linux",
	"i686-linux",
	"armv7l-linux",
	"armv6l-linux",
	"riscv64-linux",
	"powerpc64le-linux",
};

const char *const inventory_goals[] = {"switch", "boot", "test", "dry-activate", NULL};

void inventory__report(struct loader *l, const struct ynode *node, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	assert(node);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (l->doc.where) {
		/* from Nix: the attribute path, and where Nix says it was defined */
		const struct ywhere *w = &l->doc.where[node - l->doc.nodes];
		bool known = w->file != SIZE_MAX;

		inventory__add_error_attr(l->errors, known ? l->doc.strings + w->file : l->path,
			known ? w->line : 0, known ? w->col : 0, l->doc.strings + w->path, msg);
		return;
	}
	inventory__add_error(l->errors, l->path, node->line + 1, node->col + 1, msg);
}

static const char *node_type_name(const struct ynode *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

/* YAML 1.1's null: empty, `~`, `null`, `Null`, `NULL`, unquoted. */
static bool is_null(const struct ynode *node)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE || node->style != YAML_PLAIN_SCALAR_STYLE ||
		node->len > 4)
		return false;
	s = scalar(node);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* A scalar holding a NUL ("a\0b") would be cut short by every C string use. */
static bool has_nul(const struct ynode *node)
{
	return node->nul;
}

/*
 * What a node is, for "..., not X" in messages: the quoted value of a
 * scalar (cut short if long), else its kind. Owned by the caller.
 */
static char *found(const struct ynode *node)
{
	if (node->type != YAML_SCALAR_NODE)
		return xstrdup(node_type_name(node));
	if (is_null(node) || !*scalar(node))
		return xstrdup("an empty value");
	if (strlen(scalar(node)) > 40)
		return xasprintf("'%.37s...'", scalar(node));
	return xasprintf("'%s'", scalar(node));
}

static struct ynode *node_at(struct loader *l, size_t id)
{
	assert(id < l->doc.nnodes);
	return &l->doc.nodes[id];
}

/* The i-th child of a container: an item of a list, or key 2i / value 2i+1 of a mapping. */
static struct ynode *child(struct loader *l, const struct ynode *node, size_t i)
{
	return node_at(l, l->doc.kids[node->first + i]);
}

static char *subject_text(struct subject s)
{
	if (s.key && s.host)
		return xasprintf("%s of host '%s'", s.key, s.host);
	if (s.host)
		return xasprintf("host '%s'", s.host);
	return xstrdup(s.key);
}

static int expect_string(struct loader *l, struct ynode *node, struct subject what, char **out)
{
	if (node->type != YAML_SCALAR_NODE || is_null(node) || !*scalar(node) || has_nul(node)) {
		char *f = has_nul(node) ? xstrdup("a string with a NUL byte") : found(node);
		char *w = subject_text(what);

		inventory__report(l, node, "%s must be a non-empty string, not %s", w, f);
		free(w);
		free(f);
		return -1;
	}
	*out = (char *)scalar(node); /* the inventory keeps the file's scalars */
	return 0;
}

/*
 * Whole numbers as YAML writes them: digits with an optional '-'; no
 * spaces, '+', hex or octal (strtol would take some of those).
 */
static int parse_number(const struct ynode *node, long min, long max, long *out)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE)
		return -1;
	s = scalar(node);
	if (!(*s >= '0' && *s <= '9') && !(*s == '-' && s[1] >= '0' && s[1] <= '9'))
		return -1;
	return parse_long(s, min, max, out);
}

static int expect_long(
	struct loader *l, struct ynode *node, struct subject what, long min, long max, long *out)
{
	if (parse_number(node, min, max, out) < 0) {
		char *f = found(node), *w = subject_text(what);

		inventory__report(l, node, "%s must be a whole number from %ld to %ld, not %s", w,
			min, max, f);
		free(w);
		free(f);
		return -1;
	}
	return 0;
}

static int expect_bool(struct loader *l, struct ynode *node, struct subject what, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "True", "TRUE"};
	static const char *const no[] = {"false", "no", "off", "False", "FALSE"};
	char *f, *w;

	if (node->type == YAML_SCALAR_NODE) {
		for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
			if (!strcmp(scalar(node), yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcmp(scalar(node), no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	f = found(node);
	w = subject_text(what);
	inventory__report(l, node, "%s must be true or false, not %s", w, f);
	free(w);
	free(f);
	return -1;
}

static const char *const top_keys[] = {"defaults", "builders", "hosts"};

static const char *const default_keys[] = {
	"user",
	"become",
	"signing_key",
	"substitute",
	"cache",
	"goal",
	"flake",
	"file",
	"ssh_config",
	"parallel",
	"confirm_timeout",
	"health_timeout",
	"activation_timeout",
	"connect_timeout",
};

static const char *const host_keys[] = {
	"address",
	"user",
	"become",
	"port",
	"arch",
	"tags",
	"services",
	"uses",
	"wants",
	"depends_on",
	"attr",
	"build",
	"flake",
	"file",
	"goal",
	"local",
	"check",
	"local_check",
	"substitute",
	"confirm_timeout",
	"health_timeout",
};

static bool in_list(const char *s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, v[i]))
			return true;
	return false;
}

/* Where a key misplaced in `where` does belong, or NULL. */
static const char *key_home(const char *key, const char *where)
{
	bool in_host = !strncmp(where, "host '", 6);

	if (!in_host && in_list(key, host_keys, ARRAY_SIZE(host_keys)))
		return "a host";
	if (strcmp(where, "defaults") && in_list(key, default_keys, ARRAY_SIZE(default_keys)))
		return "'defaults'";
	if (strcmp(where, "the inventory") && in_list(key, top_keys, ARRAY_SIZE(top_keys)))
		return "the top level";
	return NULL;
}

/*
 * Reports an unknown key: with the nearest known one as a hint when it is
 * a plausible typo (common/names.h), else with the section it belongs in
 * when it is known elsewhere.
 */
static void report_unknown_key(struct loader *l, struct ynode *key, const char *where,
	const char *const *known, size_t nknown)
{
	const char *best = name_suggest(scalar(key), known, nknown), *home;

	home = key_home(scalar(key), where);
	if (best)
		inventory__report(l, key, "unknown key '%s' in %s; did you mean '%s'?", scalar(key),
			where, best);
	else if (home)
		inventory__report(l, key, "unknown key '%s' in %s; it belongs in %s", scalar(key),
			where, home);
	else
		inventory__report(l, key, "unknown key '%s' in %s", scalar(key), where);
}

/*
 * Walks a mapping, calling fn for each pair in the order of the file.
 * Reports non-scalar and duplicate keys itself (the first of duplicates is
 * the one used). Returns -1 if `node` is not a mapping.
 */
typedef void (*pair_fn)(struct loader *l, struct ynode *key, struct ynode *value, void *data);

/* Mappings this small find their duplicate keys by comparing every pair. */
#define SMALL_MAPPING 16

/*
 * Sets first[i] to the index of the first pair with the same key as pair
 * i, or SIZE_MAX when pair i is the first (or its key is not a scalar).
 */
static void find_duplicate_keys(struct loader *l, const struct ynode *map, size_t *first)
{
	struct name_index keys;
	size_t n = map->len;

	for (size_t i = 0; i < n; i++)
		first[i] = SIZE_MAX;
	if (n <= SMALL_MAPPING) {
		for (size_t i = 1; i < n; i++) {
			struct ynode *key = child(l, map, 2 * i);

			if (!key || key->type != YAML_SCALAR_NODE)
				continue;
			for (size_t j = 0; j < i; j++) {
				struct ynode *prev = child(l, map, 2 * j);

				if (prev && prev->type == YAML_SCALAR_NODE &&
					!strcmp(scalar(prev), scalar(key))) {
					first[i] = j;
					break;
				}
			}
		}
		return;
	}
	/* hashing, not comparing each key with all before it: `hosts` may hold 100,000 */
	name_index_init(&keys, n);
	for (size_t i = 0; i < n; i++) {
		struct ynode *key = child(l, map, 2 * i);
		const struct name_key *slot;

		if (!key || key->type != YAML_SCALAR_NODE)
			continue;
		slot = name_index_add(&keys, scalar(key), i);
		if (slot->count > 1)
			first[i] = slot->first;
	}
	name_index_release(&keys);
}

/*
 * Whether to walk a container. One reached again through an alias costs its
 * children from a budget proportional to the document, so a small file of
 * aliases to aliases can not make the loader do (or allocate) without bound.
 */
static bool walk_container(struct loader *l, struct ynode *node)
{
	if (!node->walked) {
		node->walked = true;
		return true;
	}
	if (node->len <= l->alias_budget) {
		l->alias_budget -= node->len;
		return true;
	}
	if (!l->alias_reported)
		inventory__report(l, node,
			"aliases repeat this node too often: they may expand the inventory at "
			"most fourfold");
	l->alias_reported = true;
	return false;
}

static int each_pair(
	struct loader *l, struct ynode *node, struct subject what, pair_fn fn, void *data)
{
	size_t n;
	size_t small[SMALL_MAPPING];
	size_t *first = small; /* see find_duplicate_keys() */
	char *w;

	if (node->type != YAML_MAPPING_NODE) {
		w = subject_text(what);
		inventory__report(l, node, "%s must be a mapping, not %s", w, node_type_name(node));
		free(w);
		return -1;
	}
	if (!walk_container(l, node))
		return 0;
	n = node->len;
	if (n > SMALL_MAPPING)
		first = xmalloc(n * sizeof(*first));
	find_duplicate_keys(l, node, first);
	for (size_t i = 0; i < n; i++) {
		struct ynode *key = child(l, node, 2 * i);
		struct ynode *value = child(l, node, 2 * i + 1);

		if (key->type != YAML_SCALAR_NODE || has_nul(key)) {
			w = subject_text(what);
			inventory__report(l, key, "keys in %s must be plain names, not %s", w,
				has_nul(key) ? "a string with a NUL byte" : node_type_name(key));
			free(w);
			continue;
		}
		if (first[i] != SIZE_MAX) {
			struct ynode *prev = child(l, node, 2 * first[i]);

			w = subject_text(what);
			if (!strcmp(w, "hosts"))
				inventory__report(l, key, "duplicate host '%s' (first at line %u)",
					scalar(key), prev->line + 1);
			else
				inventory__report(l, key,
					"duplicate key '%s' in %s (first at line %u)", scalar(key),
					w, prev->line + 1);
			free(w);
			continue;
		}
		fn(l, key, value, data);
	}
	if (first != small)
		free(first);
	return 0;
}

static void one_item(
	struct loader *l, struct ynode *item, struct subject what, item_fn fn, void *data)
{
	if (item->type != YAML_SCALAR_NODE || is_null(item) || !*scalar(item) || has_nul(item)) {
		char *f = has_nul(item) ? xstrdup("a string with a NUL byte") : found(item);
		char *w = subject_text(what);

		inventory__report(l, item, "%s must list non-empty strings, not %s", w, f);
		free(w);
		free(f);
		return;
	}
	fn(l, item, data);
}

void inventory__each_item(
	struct loader *l, struct ynode *node, struct subject what, item_fn fn, void *data)
{
	if (is_null(node))
		return;
	if (node->type == YAML_SCALAR_NODE) {
		one_item(l, node, what, fn, data);
		return;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		char *w = subject_text(what);

		inventory__report(l, node, "%s must be a list, not %s", w, node_type_name(node));
		free(w);
		return;
	}
	if (!walk_container(l, node))
		return;
	for (size_t i = 0; i < node->len; i++)
		one_item(l, child(l, node, i), what, fn, data);
}

/* ---- values that reach ssh and nix (inventory/values.c) ---- */

/* Reports `node` unless valid(): SUBJECT must be EXPECTED, not FOUND. */
static void check_value(struct loader *l, struct ynode *node, struct subject what,
	bool (*valid)(const char *, size_t), const char *expected)
{
	char *f, *w;

	if (valid(scalar(node), node->len))
		return;
	f = found(node);
	w = subject_text(what);
	inventory__report(l, node, "%s must be %s, not %s", w, expected, f);
	free(w);
	free(f);
}

static void check_address(struct loader *l, struct ynode *node, struct subject what)
{
	check_value(l, node, what, inventory__valid_address, ADDRESS_EXPECTED);
}

static void check_user(struct loader *l, struct ynode *node, struct subject what)
{
	check_value(l, node, what, inventory__valid_user, USER_EXPECTED);
}

/* become: sudo, doas, none, or a command line of printable characters. */
static void check_become(struct loader *l, struct ynode *node)
{
	const char *v = scalar(node);
	bool ok = *v && *v != '-';

	for (const char *p = v; *p && ok; p++)
		ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (!ok)
		inventory__report(l, node,
			"become must be sudo, doas, none or a command line such as 'run0 "
			"--no-ask-password', not '%s'",
			v);
}

static void check_attr(struct loader *l, struct ynode *node, const char *host)
{
	char *why = inventory__attr_problem(scalar(node));

	if (!why)
		return;
	inventory__report(l, node, "attr of host '%s' is not a Nix attribute path: %s", host, why);
	free(why);
}

bool inventory_arch_known(const char *arch)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_arches); i++)
		if (!strcmp(arch, known_arches[i]))
			return true;
	return false;
}

static void check_arch(struct loader *l, struct ynode *node)
{
	struct buf b = BUF_INIT(0);

	if (inventory_arch_known(scalar(node)))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(known_arches); i++)
		buf_printf(&b, "%s%s", i ? ", " : "", known_arches[i]);
	inventory__report(l, node, "unknown architecture '%s'; known: %s", scalar(node), b.data);
	buf_release(&b);
}

static void check_goal(struct loader *l, struct ynode *node)
{
	for (size_t i = 0; inventory_goals[i]; i++)
		if (!strcmp(scalar(node), inventory_goals[i]))
			return;
	inventory__report(l, node, "unknown goal '%s'; expected switch, boot, test or dry-activate",
		scalar(node));
}

/* ---- defaults ---- */

static void defaults_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct inv_defaults *d = data;
	const char *k = scalar(key);

	if (!strcmp(k, "user")) {
		if (!expect_string(l, value, subj("defaults.user", NULL), &d->user))
			check_user(l, value, subj("defaults.user", NULL));
	} else if (!strcmp(k, "become")) {
		if (!expect_string(l, value, subj("defaults.become", NULL), &d->become))
			check_become(l, value);
	} else if (!strcmp(k, "signing_key")) {
		expect_string(l, value, subj("defaults.signing_key", NULL), &d->signing_key);
	} else if (!strcmp(k, "substitute")) {
		expect_bool(l, value, subj("defaults.substitute", NULL), &d->substitute);
	} else if (!strcmp(k, "cache")) {
		expect_string(l, value, subj("defaults.cache", NULL), &d->cache);
	} else if (!strcmp(k, "goal")) {
		if (!expect_string(l, value, subj("defaults.goal", NULL), &d->goal))
			check_goal(l, value);
	} else if (!strcmp(k, "flake")) {
		if (!expect_string(l, value, subj("defaults.flake", NULL), &d->flake))
			l->defaults_flake = key;
	} else if (!strcmp(k, "file")) {
		if (!expect_string(l, value, subj("defaults.file", NULL), &d->file))
			l->defaults_file = key;
	} else if (!strcmp(k, "ssh_config")) {
		expect_string(l, value, subj("defaults.ssh_config", NULL), &d->ssh_config);
	} else if (!strcmp(k, "parallel")) {
		expect_long(l, value, subj("defaults.parallel", NULL), 1, 1024, &d->parallel);
	} else if (!strcmp(k, "confirm_timeout")) {
		expect_long(l, value, subj("defaults.confirm_timeout", NULL), 1, 86400,
			&d->confirm_timeout);
	} else if (!strcmp(k, "health_timeout")) {
		expect_long(l, value, subj("defaults.health_timeout", NULL), 0, 86400,
			&d->health_timeout);
	} else if (!strcmp(k, "activation_timeout")) {
		expect_long(l, value, subj("defaults.activation_timeout", NULL), 1, 86400,
			&d->activation_timeout);
	} else if (!strcmp(k, "connect_timeout")) {
		expect_long(l, value, subj("defaults.connect_timeout", NULL), 1, 3600,
			&d->connect_timeout);
	} else {
		report_unknown_key(l, key, "defaults", default_keys, ARRAY_SIZE(default_keys));
	}
}

/* ---- builders ---- */

static void builders_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct inventory *inv = l->inv;
	struct inv_builder *b;
	char *spec = NULL, *what;
	int ret;

	(void)data;
	if (!inventory_arch_known(scalar(key))) {
		check_arch(l, key);
		return;
	}
	what = xasprintf("builder of '%s'", scalar(key));
	ret = expect_string(l, value, subj(what, NULL), &spec);
	free(what);
	if (ret < 0)
		return;
	inv->builders = xrealloc(inv->builders, (inv->nbuilders + 1) * sizeof(*inv->builders));
	l->builder_nodes =
		xrealloc(l->builder_nodes, (inv->nbuilders + 1) * sizeof(*l->builder_nodes));
	l->builder_nodes[inv->nbuilders] = value;
	b = &inv->builders[inv->nbuilders++];
	b->arch = (char *)scalar(key);
	b->spec = spec;
}

/* ---- hosts ---- */

struct host_ctx {
	struct inv_host *host;
	struct host_raw *raw;
};

static void tag_item(struct loader *l, struct ynode *item, void *data)
{
	struct inv_host *h = data;
	const char *tag = scalar(item);

	if (*tag == '@')
		tag++;
	if (!inventory__valid_name(tag)) {
		inventory__report(l, item,
			"invalid tag '%s' on host '%s': use letters, digits, '-', '_' and '.', "
			"not starting with '-' or '.'",
			scalar(item), h->name);
		return;
	}
	if (!strvec_contains(&h->tags, tag))
		strvec_push_nodup(&h->tags, (char *)tag);
}

/*
 * A service written as a mapping: { port, address, health: { path, status } }
 * (docs/inventory.md), its parts before they are checked.
 */
struct service_raw {
	struct inv_host *host;
	const char *name;
	struct ynode *port, *address;
	char *path;
	long status;
};

/* A service's `health: { path, status }`. */
static void health_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct service_raw *sr = data;
	const char *k = scalar(key);
	char *what = xasprintf("health.%s of service '%s'", k, sr->name);
	struct subject subject = subj(what, sr->host->name);

	if (!strcmp(k, "path")) {
		if (!expect_string(l, value, subject, &sr->path) &&
			(sr->path[0] != '/' || strlen(sr->path) > 1024 ||
				strpbrk(sr->path, " \t\r\n\"'\\<>`"))) {
			inventory__report(l, value,
				"%s of host '%s' must be a URL path starting with '/', without "
				"spaces or quotes, not '%s'",
				what, sr->host->name, sr->path);
			sr->path = ""; /* reported: not "needs a path" too */
		}
	} else if (!strcmp(k, "status")) {
		expect_long(l, value, subject, 100, 599, &sr->status);
	} else {
		static const char *const keys[] = {"path", "status"};
		char *where = xasprintf("health of service '%s' on host '%s'", sr->name,
			sr->host->name);

		report_unknown_key(l, key, where, keys, ARRAY_SIZE(keys));
		free(where);
	}
	free(what);
}

static void service_key(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct service_raw *sr = data;
	const char *k = scalar(key);

	if (!strcmp(k, "port")) {
		sr->port = value;
	} else if (!strcmp(k, "address")) {
		sr->address = value;
	} else if (!strcmp(k, "health")) {
		char *what = xasprintf("health of service '%s'", sr->name);

		if (!each_pair(l, value, subj(what, sr->host->name), health_pair, sr) &&
			!sr->path)
			inventory__report(l, value, "%s of host '%s' needs a path", what,
				sr->host->name);
		free(what);
	} else {
		static const char *const keys[] = {"port", "address", "health"};
		char *where = xasprintf("service '%s' of host '%s'", sr->name, sr->host->name);

		report_unknown_key(l, key, where, keys, ARRAY_SIZE(keys));
		free(where);
	}
}

/* A mapping's parts: 0 with sr->port (and *address) set, -1 reported. */
static int service_mapping(struct loader *l, struct ynode *value, struct service_raw *sr,
	char **address)
{
	char *what = xasprintf("address of service '%s'", sr->name);
	int bad = 0;

	sr->port = NULL;
	if (each_pair(l, value, subj(sr->name, sr->host->name), service_key, sr) < 0)
		bad = -1;
	if (!bad && sr->address) {
		bad = expect_string(l, sr->address, subj(what, sr->host->name), address);
		if (!bad && !inventory__valid_address(*address, sr->address->len)) {
			check_address(l, sr->address, subj(what, sr->host->name));
			bad = -1;
		}
	}
	free(what);
	if (!bad && !sr->port) {
		inventory__report(l, value,
			"service '%s' of host '%s' has no port; expected { port: PORT, "
			"address: ADDRESS, health: { path: PATH } }",
			sr->name, sr->host->name);
		bad = -1;
	}
	return bad;
}

static void service_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct inv_host *h = data;
	struct inv_service *s;
	struct service_raw sr = {.host = h, .name = scalar(key), .port = value, .status = 200};
	char *address = NULL;
	long port;

	if (!inventory__valid_name(scalar(key))) {
		inventory__report(l, key,
			"invalid service name '%s' on host '%s': use letters, digits, '-', '_' "
			"and '.', not starting with '-' or '.'",
			scalar(key), h->name);
		return;
	}
	if (value->type == YAML_MAPPING_NODE) {
		if (service_mapping(l, value, &sr, &address) < 0)
			return;
		value = sr.port;
	}
	if (parse_number(value, 1, 65535, &port) < 0) {
		char *f = found(value);

		inventory__report(l, value,
			"port of service '%s' on host '%s' must be a whole number from 1 to "
			"65535, not %s",
			scalar(key), h->name, f);
		free(f);
		return;
	}
	for (size_t i = 0; i < h->nservices; i++) {
		if (h->services[i].port == port && h->services[i].pos.line) {
			inventory__report(l, value,
				"duplicate port %ld on host '%s': services '%s' (line %d) and '%s'",
				port, h->name, h->services[i].name, h->services[i].pos.line,
				scalar(key));
			return;
		}
		if (h->services[i].port == port) {
			inventory__report(l, value,
				"duplicate port %ld on host '%s': services '%s' and '%s'", port,
				h->name, h->services[i].name, scalar(key));
			return;
		}
	}
	h->services = xrealloc(h->services, (h->nservices + 1) * sizeof(*h->services));
	s = &h->services[h->nservices++];
	s->name = (char *)scalar(key);
	s->port = (int)port;
	s->address = address;
	s->pos = pos_of(key);
	s->health_path = sr.path && *sr.path ? sr.path : NULL;
	s->health_status = (int)sr.status;
}

static void check_item(struct loader *l, struct ynode *item, void *data)
{
	(void)l;
	strvec_push_nodup(data, (char *)scalar(item));
}

static void host_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct host_ctx *c = data;
	struct inv_host *h = c->host;
	const char *k = scalar(key);
	struct subject what = subj(k, h->name);
	long n;
	bool b;

	if (!strcmp(k, "address")) {
		if (!expect_string(l, value, what, &h->address))
			check_address(l, value, what);
	} else if (!strcmp(k, "user")) {
		if (!expect_string(l, value, what, &h->user))
			check_user(l, value, what);
	} else if (!strcmp(k, "become")) {
		if (!expect_string(l, value, what, &h->become))
			check_become(l, value);
	} else if (!strcmp(k, "port")) {
		if (!expect_long(l, value, what, 1, 65535, &n))
			h->port = (int)n;
	} else if (!strcmp(k, "arch")) {
		if (!expect_string(l, value, what, &h->arch))
			check_arch(l, value);
	} else if (!strcmp(k, "tags")) {
		inventory__each_item(l, value, what, tag_item, h);
	} else if (!strcmp(k, "services")) {
		if (value->type == YAML_SEQUENCE_NODE || value->type == YAML_SCALAR_NODE) {
			if (!is_null(value))
				inventory__report(l, value,
					"services of host '%s' must be a mapping of names to ports "
					"({ name: port }), not %s",
					h->name, node_type_name(value));
		} else {
			each_pair(l, value, what, service_pair, h);
		}
	} else if (!strcmp(k, "uses")) {
		c->raw->uses = value;
	} else if (!strcmp(k, "wants")) {
		c->raw->wants = value;
	} else if (!strcmp(k, "depends_on")) {
		c->raw->depends_on = value;
	} else if (!strcmp(k, "attr")) {
		if (!expect_string(l, value, what, &h->attr))
			check_attr(l, value, h->name);
	} else if (!strcmp(k, "build")) {
		if (value->type != YAML_SCALAR_NODE || is_null(value) || !*scalar(value) ||
			has_nul(value)) {
			char *f = found(value);

			inventory__report(l, value,
				"build of host '%s' must be " BUILDER_EXPECTED ", not %s", h->name,
				f);
			free(f);
		} else {
			c->raw->build = value;
		}
	} else if (!strcmp(k, "flake")) {
		if (!expect_string(l, value, what, &h->flake))
			c->raw->flake = key;
	} else if (!strcmp(k, "file")) {
		if (!expect_string(l, value, what, &h->file))
			c->raw->file = key;
	} else if (!strcmp(k, "goal")) {
		if (!expect_string(l, value, what, &h->goal))
			check_goal(l, value);
	} else if (!strcmp(k, "check")) {
		inventory__each_item(l, value, what, check_item, &h->checks);
	} else if (!strcmp(k, "local_check")) {
		inventory__each_item(l, value, what, check_item, &h->local_checks);
	} else if (!strcmp(k, "local")) {
		if (!expect_bool(l, value, what, &b)) {
			h->local = b;
			c->raw->local_set = true;
		}
	} else if (!strcmp(k, "substitute")) {
		if (!expect_bool(l, value, what, &h->substitute))
			c->raw->substitute_set = true;
	} else if (!strcmp(k, "confirm_timeout")) {
		if (!expect_long(l, value, what, 1, 86400, &h->confirm_timeout))
			c->raw->confirm_set = true;
	} else if (!strcmp(k, "health_timeout")) {
		if (!expect_long(l, value, what, 0, 86400, &h->health_timeout))
			c->raw->health_set = true;
	} else {
		char *where = xasprintf("host '%s'", h->name);

		report_unknown_key(l, key, where, host_keys, ARRAY_SIZE(host_keys));
		free(where);
	}
}

struct hosts_ctx {
	struct host_raw *raws;
	size_t alloc;
};

static void hosts_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct hosts_ctx *hc = data;
	struct inventory *inv = l->inv;
	struct inv_host *h;
	struct host_ctx c;

	if (!inventory__valid_name(scalar(key))) {
		inventory__report(l, key,
			"invalid host name '%s': use letters, digits, '-', '_' and '.', "
			"not starting with '-' or '.'",
			scalar(key));
		return;
	}
	xgrow((void **)&inv->hosts, &hc->alloc, inv->nhosts + 1, sizeof(*inv->hosts));
	hc->raws = xrealloc(hc->raws, hc->alloc * sizeof(*hc->raws));
	h = &inv->hosts[inv->nhosts];
	memset(h, 0, sizeof(*h));
	memset(&hc->raws[inv->nhosts], 0, sizeof(*hc->raws));
	h->name = (char *)scalar(key);
	h->pos = pos_of(key);
	strvec_init(&h->tags);
	strvec_init(&h->checks);
	strvec_init(&h->local_checks);
	c.host = h;
	c.raw = &hc->raws[inv->nhosts];
	inv->nhosts++;
	if (!is_null(value)) {
		each_pair(l, value, subj(NULL, h->name), host_pair, &c);
	}
}

static void top_pair(struct loader *l, struct ynode *key, struct ynode *value, void *data)
{
	struct ynode **hosts = data;
	const char *k = scalar(key);

	if (!strcmp(k, "defaults")) {
		if (!is_null(value))
			each_pair(
				l, value, subj("defaults", NULL), defaults_pair, &l->inv->defaults);
	} else if (!strcmp(k, "builders")) {
		if (!is_null(value))
			each_pair(l, value, subj("builders", NULL), builders_pair, NULL);
	} else if (!strcmp(k, "hosts")) {
		*hosts = value;
	} else {
		report_unknown_key(l, key, "the inventory", top_keys, ARRAY_SIZE(top_keys));
	}
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* A new inventory with the built-in defaults. */
static struct inventory *inventory_new(const char *path, char *dir)
{
	struct inventory *inv = xcalloc(1, sizeof(*inv));

	inv->path = xstrdup(path);
	inv->dir = dir;
	inv->defaults.parallel = 10;
	inv->defaults.confirm_timeout = 30;
	inv->defaults.health_timeout = 30;
	inv->defaults.activation_timeout = 600;
	inv->defaults.connect_timeout = 10;
	inv->defaults.substitute = true;
	return inv;
}

/*
 * The schema walk and resolution of l->doc, whichever tree it is (YAML or
 * JSON); `empty` says what an empty document is. On success hands the
 * inventory to *out.
 */
static int load_tree(struct loader *l, struct inventory **out)
{
	struct inv_errors *errors = l->errors;
	struct ynode *root, *hosts = NULL;
	struct hosts_ctx hc = {0};
	size_t nerrors = errors->nr;
	int ret = -1;

	l->alias_budget = 4 * l->doc.nnodes + 4096;
	root = l->doc.root == SIZE_MAX ? NULL : node_at(l, l->doc.root);
	if (!root || is_null(root)) {
		if (root && l->doc.where)
			inventory__report(l, root,
				"the inventory is empty; expected a mapping with 'hosts'");
		else
			inventory__add_errorf(errors, l->path, 1, 1,
				"the inventory is empty; expected a mapping with 'hosts'");
		goto out;
	}
	if (each_pair(l, root, subj("the inventory", NULL), top_pair, &hosts) < 0)
		goto out;
	if (!hosts) {
		inventory__report(l, root, "the inventory has no 'hosts'");
		goto out;
	}
	if (is_null(hosts) || (hosts->type == YAML_MAPPING_NODE && hosts->len == 0)) {
		inventory__report(
			l, hosts, "'hosts' is empty; the inventory needs at least one host");
		goto out;
	}
	if (each_pair(l, hosts, subj("hosts", NULL), hosts_pair, &hc) < 0)
		goto out;
	inventory__resolve(l, hc.raws);
	if (errors->nr == nerrors) {
		/* the inventory's strings point into the scalars of the document */
		l->inv->text = l->doc.strings;
		l->doc.strings = NULL;
		*out = l->inv;
		l->inv = NULL;
		ret = 0;
	}
out:
	assert(ret == 0 || errors->nr > nerrors);
	free(hc.raws);
	free(l->builder_nodes);
	name_index_release(&l->hosts);
	inventory_free(l->inv);
	inventory__ydoc_release(&l->doc);
	return ret;
}

int inventory_load_buffer_errors(struct inventory **out, const char *path, const char *data,
	size_t len, struct inv_errors *errors)
{
	struct loader l = {0};

	*out = NULL;
	l.path = path;
	l.errors = errors;
	if (inventory__ydoc_parse(&l.doc, path, data, len, errors) < 0)
		return -1;
	l.inv = inventory_new(path, dir_of(path));
	return load_tree(&l, out);
}

int inventory_load_json_errors(struct inventory **out, const char *name, const char *root,
	json_t *value, json_t *pos, const char *dir, const char *flake,
	struct inv_errors *errors)
{
	struct loader l = {0};

	*out = NULL;
	l.path = name;
	l.errors = errors;
	l.default_flake = flake;
	inventory__jdoc_build(&l.doc, root, value, pos);
	l.inv = inventory_new(name, xstrdup(dir));
	return load_tree(&l, out);
}
