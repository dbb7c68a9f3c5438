#include "inventory/inventory.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Inventories are small; a file larger than this is a mistake, not a fleet. */
#define INVENTORY_MAX_BYTES (64u << 20)

static const char *const known_arches[] = {
	"x86_64-linux",
	"aarch64-linux",
	"i686-linux",
	"armv7l-linux",
	"armv6l-linux",
	"riscv64-linux",
	"powerpc64le-linux",
};

static const char *const goals[] = { "switch", "boot", "test", "dry-activate" };

/* The state of one load: the YAML document, where errors go, the result. */
struct loader {
	const char *path;
	yaml_document_t doc;
	struct strvec *errors;
	struct inventory *inv;
	/* positions of host entries as written, for duplicate reports */
	yaml_node_t **host_nodes;
};

__attribute__((format(printf, 3, 4))) static void report(struct loader *l, const yaml_node_t *node,
	const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (node)
		strvec_pushf(l->errors, "%s:%zu:%zu: %s", l->path, node->start_mark.line + 1,
			node->start_mark.column + 1, msg);
	else
		strvec_pushf(l->errors, "%s: %s", l->path, msg);
	free(msg);
}

static struct inv_pos pos_of(const yaml_node_t *node)
{
	struct inv_pos p = { (int)node->start_mark.line + 1, (int)node->start_mark.column + 1 };

	return p;
}

static const char *node_type_name(const yaml_node_t *node)
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

static yaml_node_t *node_at(struct loader *l, int id)
{
	return yaml_document_get_node(&l->doc, id);
}

static const char *scalar(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

static bool is_null(const yaml_node_t *node)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = scalar(node);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null");
}

static int expect_string(struct loader *l, yaml_node_t *node, const char *what, char **out)
{
	if (node->type != YAML_SCALAR_NODE || is_null(node) || !*scalar(node)) {
		report(l, node, "%s must be a non-empty string, not %s", what,
			node->type == YAML_SCALAR_NODE ? "an empty value" : node_type_name(node));
		return -1;
	}
	free(*out);
	*out = xstrdup(scalar(node));
	return 0;
}

static int expect_long(struct loader *l, yaml_node_t *node, const char *what, long min, long max,
	long *out)
{
	if (node->type != YAML_SCALAR_NODE || parse_long(scalar(node), min, max, out) < 0) {
		report(l, node, "%s must be a whole number from %ld to %ld", what, min, max);
		return -1;
	}
	return 0;
}

static int expect_bool(struct loader *l, yaml_node_t *node, const char *what, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "True", "TRUE" };
	static const char *const no[] = { "false", "no", "off", "False", "FALSE" };

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
	report(l, node, "%s must be true or false", what);
	return -1;
}

/* Reports an unknown key, with the nearest known one as a hint. */
static void report_unknown_key(struct loader *l, yaml_node_t *key, const char *where,
	const char *const *known, size_t nknown)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	size_t len = strlen(scalar(key));

	for (size_t i = 0; i < nknown; i++) {
		size_t d = edit_distance(scalar(key), known[i]);

		if (d < best_d) {
			best_d = d;
			best = known[i];
		}
	}
	if (best && best_d <= (len < 6 ? 1 : 2))
		report(l, key, "unknown key '%s' in %s; did you mean '%s'?", scalar(key), where,
			best);
	else
		report(l, key, "unknown key '%s' in %s", scalar(key), where);
}

/*
 * Walks a mapping, calling fn for each pair. Reports non-scalar and
 * duplicate keys itself. Returns -1 if `node` is not a mapping.
 */
typedef void (*pair_fn)(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data);

static int each_pair(struct loader *l, yaml_node_t *node, const char *what, pair_fn fn, void *data)
{
	yaml_node_pair_t *start, *top;

	if (node->type != YAML_MAPPING_NODE) {
		report(l, node, "%s must be a mapping, not %s", what, node_type_name(node));
		return -1;
	}
	start = node->data.mapping.pairs.start;
	top = node->data.mapping.pairs.top;
	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *key = node_at(l, p->key);
		yaml_node_t *value = node_at(l, p->value);
		bool dup = false;

		if (!key || !value)
			continue;
		if (key->type != YAML_SCALAR_NODE) {
			report(l, key, "keys in %s must be plain names, not %s", what,
				node_type_name(key));
			continue;
		}
		for (yaml_node_pair_t *q = start; q < p && !dup; q++) {
			yaml_node_t *prev = node_at(l, q->key);

			if (prev && prev->type == YAML_SCALAR_NODE &&
				!strcmp(scalar(prev), scalar(key))) {
				report(l, key, "duplicate %s '%s' (first at line %zu)",
					strcmp(what, "hosts") ? "key" : "host", scalar(key),
					prev->start_mark.line + 1);
				dup = true;
			}
		}
		if (!dup)
			fn(l, key, value, data);
	}
	return 0;
}

/* Calls fn for each scalar of a list; a single scalar counts as a list of one. */
typedef void (*item_fn)(struct loader *l, yaml_node_t *item, void *data);

static void each_item(struct loader *l, yaml_node_t *node, const char *what, item_fn fn, void *data)
{
	if (is_null(node))
		return;
	if (node->type == YAML_SCALAR_NODE) {
		fn(l, node, data);
		return;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		report(l, node, "%s must be a list, not %s", what, node_type_name(node));
		return;
	}
	for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top;
		i++) {
		yaml_node_t *item = node_at(l, *i);

		if (!item)
			continue;
		if (item->type != YAML_SCALAR_NODE || !*scalar(item)) {
			report(l, item, "items of %s must be non-empty strings, not %s", what,
				item->type == YAML_SCALAR_NODE ? "an empty value"
							       : node_type_name(item));
			continue;
		}
		fn(l, item, data);
	}
}

static bool valid_name(const char *s)
{
	if (!*s || *s == '-' || *s == '.' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
			!(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

bool inventory_arch_known(const char *arch)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_arches); i++)
		if (!strcmp(arch, known_arches[i]))
			return true;
	return false;
}

static void check_arch(struct loader *l, yaml_node_t *node)
{
	struct buf b = BUF_INIT(0);

	if (inventory_arch_known(scalar(node)))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(known_arches); i++)
		buf_printf(&b, "%s%s", i ? ", " : "", known_arches[i]);
	report(l, node, "unknown architecture '%s'; known: %s", scalar(node), b.data);
	buf_release(&b);
}

static void check_goal(struct loader *l, yaml_node_t *node)
{
	for (size_t i = 0; i < ARRAY_SIZE(goals); i++)
		if (!strcmp(scalar(node), goals[i]))
			return;
	report(l, node, "unknown goal '%s'; expected switch, boot, test or dry-activate",
		scalar(node));
}

/* ---- defaults ---- */

static const char *const default_keys[] = {
	"user",
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

static void defaults_pair(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data)
{
	struct inv_defaults *d = data;
	const char *k = scalar(key);

	(void)data;
	if (!strcmp(k, "user"))
		expect_string(l, value, "defaults.user", &d->user);
	else if (!strcmp(k, "goal")) {
		if (!expect_string(l, value, "defaults.goal", &d->goal))
			check_goal(l, value);
	} else if (!strcmp(k, "flake"))
		expect_string(l, value, "defaults.flake", &d->flake);
	else if (!strcmp(k, "file"))
		expect_string(l, value, "defaults.file", &d->file);
	else if (!strcmp(k, "ssh_config"))
		expect_string(l, value, "defaults.ssh_config", &d->ssh_config);
	else if (!strcmp(k, "parallel"))
		expect_long(l, value, "defaults.parallel", 1, 1024, &d->parallel);
	else if (!strcmp(k, "confirm_timeout"))
		expect_long(l, value, "defaults.confirm_timeout", 1, 86400, &d->confirm_timeout);
	else if (!strcmp(k, "health_timeout"))
		expect_long(l, value, "defaults.health_timeout", 0, 86400, &d->health_timeout);
	else if (!strcmp(k, "activation_timeout"))
		expect_long(l, value, "defaults.activation_timeout", 1, 86400,
			&d->activation_timeout);
	else if (!strcmp(k, "connect_timeout"))
		expect_long(l, value, "defaults.connect_timeout", 1, 3600, &d->connect_timeout);
	else
		report_unknown_key(l, key, "defaults", default_keys, ARRAY_SIZE(default_keys));
}

/* ---- builders ---- */

static void builders_pair(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data)
{
	struct inventory *inv = l->inv;
	struct inv_builder *b;
	char *spec = NULL;

	(void)data;
	if (!inventory_arch_known(scalar(key))) {
		check_arch(l, key);
		return;
	}
	if (expect_string(l, value, "a builder", &spec) < 0)
		return;
	inv->builders = xrealloc(inv->builders, (inv->nbuilders + 1) * sizeof(*inv->builders));
	b = &inv->builders[inv->nbuilders++];
	b->arch = xstrdup(scalar(key));
	b->spec = spec;
}

/* ---- hosts ---- */

static const char *const host_keys[] = {
	"address",
	"user",
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
};

/* What a host's entries are, before relations are resolved. */
struct host_raw {
	yaml_node_t *uses, *wants, *depends_on, *build;
};

struct host_ctx {
	struct inv_host *host;
	struct host_raw *raw;
};

static void tag_item(struct loader *l, yaml_node_t *item, void *data)
{
	struct inv_host *h = data;
	const char *tag = scalar(item);

	if (*tag == '@')
		tag++;
	if (!valid_name(tag)) {
		report(l, item, "invalid tag '%s': use letters, digits, '-', '_' and '.'",
			scalar(item));
		return;
	}
	if (!strvec_contains(&h->tags, tag))
		strvec_push(&h->tags, tag);
}

static void service_pair(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data)
{
	struct inv_host *h = data;
	struct inv_service *s;
	long port;

	if (!valid_name(scalar(key)) || strchr(scalar(key), '/')) {
		report(l, key, "invalid service name '%s'", scalar(key));
		return;
	}
	if (value->type != YAML_SCALAR_NODE || parse_long(scalar(value), 1, 65535, &port) < 0) {
		report(l, value, "port of service '%s' must be a whole number from 1 to 65535",
			scalar(key));
		return;
	}
	for (size_t i = 0; i < h->nservices; i++) {
		if (h->services[i].port == port) {
			report(l, value,
				"duplicate port %ld on host '%s': services '%s' (line %d) and '%s'",
				port, h->name, h->services[i].name, h->services[i].pos.line,
				scalar(key));
			return;
		}
	}
	h->services = xrealloc(h->services, (h->nservices + 1) * sizeof(*h->services));
	s = &h->services[h->nservices++];
	s->name = xstrdup(scalar(key));
	s->port = (int)port;
	s->pos = pos_of(key);
}

static void host_pair(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data)
{
	struct host_ctx *c = data;
	struct inv_host *h = c->host;
	const char *k = scalar(key);
	long n;
	bool b;

	if (!strcmp(k, "address")) {
		expect_string(l, value, "address", &h->address);
	} else if (!strcmp(k, "user")) {
		expect_string(l, value, "user", &h->user);
	} else if (!strcmp(k, "port")) {
		if (!expect_long(l, value, "port", 1, 65535, &n))
			h->port = (int)n;
	} else if (!strcmp(k, "arch")) {
		if (!expect_string(l, value, "arch", &h->arch))
			check_arch(l, value);
	} else if (!strcmp(k, "tags")) {
		each_item(l, value, "tags", tag_item, h);
	} else if (!strcmp(k, "services")) {
		if (!is_null(value))
			each_pair(l, value, "services", service_pair, h);
	} else if (!strcmp(k, "uses")) {
		c->raw->uses = value;
	} else if (!strcmp(k, "wants")) {
		c->raw->wants = value;
	} else if (!strcmp(k, "depends_on")) {
		c->raw->depends_on = value;
	} else if (!strcmp(k, "attr")) {
		expect_string(l, value, "attr", &h->attr);
	} else if (!strcmp(k, "build")) {
		if (value->type != YAML_SCALAR_NODE || !*scalar(value))
			report(l, value, "build must be local, target or a builder");
		else
			c->raw->build = value;
	} else if (!strcmp(k, "flake")) {
		expect_string(l, value, "flake", &h->flake);
	} else if (!strcmp(k, "file")) {
		expect_string(l, value, "file", &h->file);
	} else if (!strcmp(k, "goal")) {
		if (!expect_string(l, value, "goal", &h->goal))
			check_goal(l, value);
	} else if (!strcmp(k, "local")) {
		if (!expect_bool(l, value, "local", &b))
			h->local = b;
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

static void hosts_pair(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data)
{
	struct hosts_ctx *hc = data;
	struct inventory *inv = l->inv;
	struct inv_host *h;
	struct host_ctx c;

	if (!valid_name(scalar(key))) {
		report(l, key,
			"invalid host name '%s': use letters, digits, '-', '_' and '.', "
			"not starting with '-' or '.'",
			scalar(key));
		return;
	}
	xgrow((void **)&inv->hosts, &hc->alloc, inv->nhosts + 1, sizeof(*inv->hosts));
	hc->raws = xrealloc(hc->raws, hc->alloc * sizeof(*hc->raws));
	l->host_nodes = xrealloc(l->host_nodes, hc->alloc * sizeof(*l->host_nodes));
	h = &inv->hosts[inv->nhosts];
	memset(h, 0, sizeof(*h));
	memset(&hc->raws[inv->nhosts], 0, sizeof(*hc->raws));
	l->host_nodes[inv->nhosts] = key;
	h->name = xstrdup(scalar(key));
	h->pos = pos_of(key);
	strvec_init(&h->tags);
	c.host = h;
	c.raw = &hc->raws[inv->nhosts];
	inv->nhosts++;
	if (!is_null(value)) {
		char *what = xasprintf("host '%s'", h->name);

		each_pair(l, value, what, host_pair, &c);
		free(what);
	}
}

/* ---- relations ---- */

static void add_rel(struct inv_host *h, enum inv_rel_kind kind, yaml_node_t *item, size_t provider,
	const char *service)
{
	struct inv_relation *r;

	h->rels = xrealloc(h->rels, (h->nrels + 1) * sizeof(*h->rels));
	r = &h->rels[h->nrels++];
	r->kind = kind;
	r->text = xstrdup((const char *)item->data.scalar.value);
	r->provider = provider;
	r->service = service ? xstrdup(service) : NULL;
	r->pos = pos_of(item);
}

static bool host_provides(const struct inv_host *h, const char *service)
{
	for (size_t i = 0; i < h->nservices; i++)
		if (!strcmp(h->services[i].name, service))
			return true;
	return false;
}

/* A service index: name → providers, so resolving is linear in the fleet. */
struct svc_entry {
	const char *name;
	size_t host;
};

static int svc_cmp(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->host < y->host ? -1 : x->host > y->host;
}

struct resolver {
	struct svc_entry *svcs;
	size_t nsvcs;
	struct name_entry *names;
	size_t nnames;
	size_t host; /* the host whose entries are being resolved */
	enum inv_rel_kind kind;
};

struct name_entry {
	const char *name;
	size_t host;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_entry *)a)->name, ((const struct name_entry *)b)->name);
}

static long resolver_host(const struct resolver *r, const char *name)
{
	struct name_entry key = { name, 0 }, *e;

	e = bsearch(&key, r->names, r->nnames, sizeof(key), name_cmp);
	return e ? (long)e->host : -1;
}

/* The range of svcs providing `name`. */
static size_t resolver_providers(const struct resolver *r, const char *name, size_t *first)
{
	size_t lo = 0, hi = r->nsvcs, n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(r->svcs[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (lo + n < r->nsvcs && !strcmp(r->svcs[lo + n].name, name))
		n++;
	return n;
}

static void suggest_service(struct loader *l, const struct resolver *r, struct buf *hint,
	const char *name)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	(void)l;
	for (size_t i = 0; i < r->nsvcs; i++) {
		size_t d = edit_distance(name, r->svcs[i].name);

		if (d < best_d) {
			best_d = d;
			best = r->svcs[i].name;
		}
	}
	if (best && best_d <= (strlen(name) < 6 ? 1 : 2))
		buf_printf(hint, "; did you mean '%s'?", best);
}

static void service_item(struct loader *l, yaml_node_t *item, void *data)
{
	struct resolver *r = data;
	struct inventory *inv = l->inv;
	struct inv_host *h = &inv->hosts[r->host];
	const char *text = scalar(item);
	const char *kind = inv_rel_kind_name(r->kind);
	const char *slash = strchr(text, '/');
	size_t first, n;
	struct buf b = BUF_INIT(0);

	if (slash) {
		char *hname = xstrndup(text, (size_t)(slash - text));
		long p = resolver_host(r, hname);

		if (p < 0) {
			report(l, item, "%s '%s': unknown host '%s'", kind, text, hname);
		} else if (!host_provides(&inv->hosts[p], slash + 1)) {
			suggest_service(l, r, &b, slash + 1);
			report(l, item, "%s '%s': host '%s' provides no service '%s'%s", kind, text,
				hname, slash + 1, b.data ? b.data : "");
		} else if ((size_t)p == r->host) {
			report(l, item, "host '%s' %s its own service '%s'", h->name, kind,
				slash + 1);
		} else {
			add_rel(h, r->kind, item, (size_t)p, slash + 1);
		}
		free(hname);
		buf_release(&b);
		return;
	}
	n = resolver_providers(r, text, &first);
	if (n == 0) {
		suggest_service(l, r, &b, text);
		report(l, item, "%s '%s': no host provides a service '%s'%s", kind, text, text,
			b.data ? b.data : "");
	} else if (n > 1) {
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, "%s'%s'", i == 0 ? "" : i + 1 == n ? " and " : ", ",
				inv->hosts[r->svcs[first + i].host].name);
		report(l, item, "ambiguous service '%s': provided by %s; write one as '%s/%s'", text,
			b.data, inv->hosts[r->svcs[first].host].name, text);
	} else if (r->svcs[first].host == r->host) {
		report(l, item, "host '%s' %s its own service '%s'", h->name, kind, text);
	} else {
		add_rel(h, r->kind, item, r->svcs[first].host, text);
	}
	buf_release(&b);
}

static void depends_item(struct loader *l, yaml_node_t *item, void *data)
{
	struct resolver *r = data;
	struct inventory *inv = l->inv;
	struct inv_host *h = &inv->hosts[r->host];
	const char *text = scalar(item);

	if (*text == '@') {
		bool any = false;

		for (size_t i = 0; i < inv->nhosts; i++) {
			if (!strvec_contains(&inv->hosts[i].tags, text + 1))
				continue;
			any = true;
			/* a host carrying the tag it depends on does not depend on itself */
			if (i != r->host)
				add_rel(h, INV_DEPENDS_ON, item, i, NULL);
		}
		if (!any)
			report(l, item, "depends_on '%s': no host has the tag '%s'", text, text + 1);
		return;
	}
	long p = resolver_host(r, text);

	if (p < 0)
		report(l, item, "depends_on '%s': unknown host", text);
	else if ((size_t)p == r->host)
		report(l, item, "host '%s' depends on itself", h->name);
	else
		add_rel(h, INV_DEPENDS_ON, item, (size_t)p, NULL);
}

static void resolve_relations(struct loader *l, struct host_raw *raws)
{
	struct inventory *inv = l->inv;
	struct resolver r = { 0 };
	size_t n = 0;

	for (size_t i = 0; i < inv->nhosts; i++)
		n += inv->hosts[i].nservices;
	r.svcs = xmalloc((n + 1) * sizeof(*r.svcs));
	for (size_t i = 0; i < inv->nhosts; i++)
		for (size_t j = 0; j < inv->hosts[i].nservices; j++) {
			r.svcs[r.nsvcs].name = inv->hosts[i].services[j].name;
			r.svcs[r.nsvcs++].host = i;
		}
	qsort(r.svcs, r.nsvcs, sizeof(*r.svcs), svc_cmp);
	r.names = xmalloc((inv->nhosts + 1) * sizeof(*r.names));
	for (size_t i = 0; i < inv->nhosts; i++) {
		r.names[i].name = inv->hosts[i].name;
		r.names[i].host = i;
	}
	r.nnames = inv->nhosts;
	qsort(r.names, r.nnames, sizeof(*r.names), name_cmp);

	for (size_t i = 0; i < inv->nhosts; i++) {
		r.host = i;
		if (raws[i].uses) {
			r.kind = INV_USES;
			each_item(l, raws[i].uses, "uses", service_item, &r);
		}
		if (raws[i].wants) {
			r.kind = INV_WANTS;
			each_item(l, raws[i].wants, "wants", service_item, &r);
		}
		if (raws[i].depends_on)
			each_item(l, raws[i].depends_on, "depends_on", depends_item, &r);
	}
	free(r.svcs);
	free(r.names);
}

/* ---- defaults applied ---- */

static void apply_defaults(struct loader *l, struct host_raw *raws)
{
	struct inventory *inv = l->inv;
	struct inv_defaults *d = &inv->defaults;

	if (d->flake && d->file) {
		report(l, NULL, "defaults set both 'flake' and 'file'; choose one");
	}
	for (size_t i = 0; i < inv->nhosts; i++) {
		struct inv_host *h = &inv->hosts[i];
		yaml_node_t *build = raws[i].build;

		if (!h->address)
			h->address = xstrdup(h->name);
		if (!h->user && d->user)
			h->user = xstrdup(d->user);
		if (!h->arch)
			h->arch = xstrdup("x86_64-linux");
		if (!h->attr)
			h->attr = xasprintf("nixosConfigurations.%s.config.system.build.toplevel",
				h->name);
		if (h->flake && h->file) {
			struct yaml_node_s *key = l->host_nodes[i];

			report(l, key, "host '%s' sets both 'flake' and 'file'; choose one",
				h->name);
		}
		if (!h->flake && !h->file) {
			if (d->file)
				h->file = xstrdup(d->file);
			else
				h->flake = xstrdup(d->flake ? d->flake : ".");
		}
		if (!h->goal)
			h->goal = xstrdup(d->goal ? d->goal : "switch");
		if (!strcmp(h->address, "localhost") || !strcmp(h->address, "127.0.0.1"))
			h->local = true;

		h->build = INV_BUILD_LOCAL;
		if (build && !strcmp(scalar(build), "target")) {
			h->build = INV_BUILD_TARGET;
		} else if (build && strcmp(scalar(build), "local")) {
			const char *spec = scalar(build);

			if (!strchr(spec, '@') && !inventory_host(inv, spec))
				report(l, build,
					"build '%s': expected local, target, a host of the "
					"inventory or user@address",
					spec);
			else if (!strcmp(spec, h->name))
				h->build = INV_BUILD_TARGET;
			else {
				h->build = INV_BUILD_BUILDER;
				h->builder = xstrdup(spec);
			}
		} else if (inventory_builder(inv, h->arch)) {
			const char *spec = inventory_builder(inv, h->arch);

			if (!strcmp(spec, "local")) {
				h->build = INV_BUILD_LOCAL;
			} else if (strcmp(spec, h->name) && strcmp(spec, "target")) {
				h->build = INV_BUILD_BUILDER;
				h->builder = xstrdup(spec);
			} else {
				h->build = INV_BUILD_TARGET;
			}
		}
	}
	for (size_t i = 0; i < inv->nbuilders; i++) {
		const char *spec = inv->builders[i].spec;

		if (strcmp(spec, "local") && strcmp(spec, "target") && !strchr(spec, '@') &&
			!inventory_host(inv, spec))
			report(l, NULL,
				"builders.%s: '%s' is neither local, target, a host of the "
				"inventory nor user@address",
				inv->builders[i].arch, spec);
	}
	if (!d->goal)
		d->goal = xstrdup("switch");
}

static void top_pair(struct loader *l, yaml_node_t *key, yaml_node_t *value, void *data)
{
	static const char *const top_keys[] = { "defaults", "builders", "hosts" };
	yaml_node_t **hosts = data;
	const char *k = scalar(key);

	if (!strcmp(k, "defaults")) {
		if (!is_null(value))
			each_pair(l, value, "defaults", defaults_pair, &l->inv->defaults);
	} else if (!strcmp(k, "builders")) {
		if (!is_null(value))
			each_pair(l, value, "builders", builders_pair, NULL);
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

int inventory_load_buffer(struct inventory **out, const char *path, const char *data, size_t len,
	struct strvec *errors)
{
	struct loader l = { 0 };
	yaml_parser_t parser;
	yaml_node_t *root, *hosts = NULL;
	struct hosts_ctx hc = { 0 };
	size_t nerrors = errors->nr;
	int ret = -1;

	*out = NULL;
	l.path = path;
	l.errors = errors;
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &l.doc)) {
		strvec_pushf(errors, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1,
			parser.problem_mark.column + 1, parser.problem ? parser.problem : "invalid YAML",
			parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	yaml_parser_delete(&parser);

	l.inv = xcalloc(1, sizeof(*l.inv));
	l.inv->path = xstrdup(path);
	l.inv->dir = dir_of(path);
	l.inv->defaults.parallel = 10;
	l.inv->defaults.confirm_timeout = 30;
	l.inv->defaults.health_timeout = 30;
	l.inv->defaults.activation_timeout = 600;
	l.inv->defaults.connect_timeout = 10;

	root = yaml_document_get_root_node(&l.doc);
	if (!root) {
		report(&l, NULL, "the inventory is empty; expected a mapping with 'hosts'");
		goto out;
	}
	if (each_pair(&l, root, "the inventory", top_pair, &hosts) < 0)
		goto out;
	if (!hosts || is_null(hosts)) {
		report(&l, hosts ? hosts : root, "the inventory has no hosts; expected 'hosts:'");
		goto out;
	}
	if (each_pair(&l, hosts, "hosts", hosts_pair, &hc) < 0)
		goto out;
	apply_defaults(&l, hc.raws);
	resolve_relations(&l, hc.raws);
	if (errors->nr == nerrors) {
		*out = l.inv;
		l.inv = NULL;
		ret = 0;
	}
out:
	if (errors->nr == nerrors && ret < 0)
		strvec_pushf(errors, "%s: invalid inventory", path);
	free(hc.raws);
	free(l.host_nodes);
	inventory_free(l.inv);
	yaml_document_delete(&l.doc);
	return ret;
}

int inventory_load(struct inventory **out, const char *path, struct strvec *errors)
{
	FILE *f = NULL;
	struct buf b = BUF_INIT(INVENTORY_MAX_BYTES);
	char chunk[65536];
	size_t n;
	int ret = -1;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		strvec_pushf(errors, "%s: cannot open the inventory: %s", path, strerror(errno));
		goto out;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(f)) {
		strvec_pushf(errors, "%s: cannot read the inventory: %s", path, strerror(errno));
		goto out;
	}
	if (b.truncated) {
		strvec_pushf(errors, "%s: the inventory is larger than %u MiB", path,
			INVENTORY_MAX_BYTES >> 20);
		goto out;
	}
	ret = inventory_load_buffer(out, path, b.data ? b.data : "", b.len, errors);
out:
	if (f)
		fclose(f);
	buf_release(&b);
	return ret;
}

static void host_release(struct inv_host *h)
{
	free(h->name);
	free(h->address);
	free(h->user);
	free(h->arch);
	strvec_release(&h->tags);
	for (size_t i = 0; i < h->nservices; i++)
		free(h->services[i].name);
	free(h->services);
	for (size_t i = 0; i < h->nrels; i++) {
		free(h->rels[i].text);
		free(h->rels[i].service);
	}
	free(h->rels);
	free(h->attr);
	free(h->builder);
	free(h->flake);
	free(h->file);
	free(h->goal);
}

void inventory_free(struct inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->nhosts; i++)
		host_release(&inv->hosts[i]);
	free(inv->hosts);
	for (size_t i = 0; i < inv->nbuilders; i++) {
		free(inv->builders[i].arch);
		free(inv->builders[i].spec);
	}
	free(inv->builders);
	free(inv->defaults.user);
	free(inv->defaults.goal);
	free(inv->defaults.flake);
	free(inv->defaults.file);
	free(inv->defaults.ssh_config);
	free(inv->path);
	free(inv->dir);
	free(inv);
}

long inventory_host_index(const struct inventory *inv, const char *name)
{
	for (size_t i = 0; i < inv->nhosts; i++)
		if (!strcmp(inv->hosts[i].name, name))
			return (long)i;
	return -1;
}

struct inv_host *inventory_host(const struct inventory *inv, const char *name)
{
	long i = inventory_host_index(inv, name);

	return i < 0 ? NULL : &inv->hosts[i];
}

const char *inventory_builder(const struct inventory *inv, const char *arch)
{
	for (size_t i = 0; i < inv->nbuilders; i++)
		if (!strcmp(inv->builders[i].arch, arch))
			return inv->builders[i].spec;
	return NULL;
}

const char *inv_rel_kind_name(enum inv_rel_kind kind)
{
	switch (kind) {
	case INV_USES:
		return "uses";
	case INV_WANTS:
		return "wants";
	case INV_DEPENDS_ON:
		return "depends_on";
	}
	return "?";
}
