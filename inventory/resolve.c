/*
 * inventory/resolve.c: what the walk of the file leaves to the end, once
 * every host is known: the defaults applied, the builders checked, and
 * every `uses`, `wants` and `depends_on` entry resolved to its provider.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "common/util.h"
#include "inventory/internal.h"

/*
 * What a host's `become` means: sudo and doas without a prompt (parallel
 * workers cannot answer one), none, or the command line as written; by
 * default sudo when the login user is not root, none otherwise.
 */
static void resolve_become(struct inventory *inv, struct inv_host *h, const struct inv_defaults *d)
{
	const char *b = h->become ? h->become : d->become;

	if (!b)
		b = h->user && strcmp(h->user, "root") && !h->local ? "sudo" : "none";
	if (!strcmp(b, "none"))
		h->become = NULL;
	else if (!strcmp(b, "sudo"))
		h->become = arena_strdup(&inv->pool, "sudo -n --");
	else if (!strcmp(b, "doas"))
		h->become = arena_strdup(&inv->pool, "doas -n --");
	else
		h->become = arena_strdup(&inv->pool, b);
}

/* Whether a starts after b in the file. */
static bool node_after(const struct ynode *a, const struct ynode *b)
{
	return a->line > b->line || (a->line == b->line && a->col > b->col);
}

/* ---- relations ---- */

struct resolver {
	struct name_index svcs; /* every service of the fleet → its providers */
	struct name_index tags; /* every tag of the fleet → the hosts carrying it */
	size_t host;		/* the host whose entries are being resolved */
	enum inv_rel_kind kind;
	/* the relations of every host, host after host; their rels point here at the end */
	struct inv_relation *rels;
	size_t nrels, arels;
};

/*
 * Adds a relation of the host being resolved for the entry `item`. `text`
 * is the entry (the file's scalar), shared by every relation of the entry,
 * and `service` NULL or a suffix of it.
 */
static void add_rel(struct resolver *res, enum inv_rel_kind kind, struct ynode *item, char *text,
	size_t provider, char *service)
{
	struct inv_relation *r;

	xgrow((void **)&res->rels, &res->arels, res->nrels + 1, sizeof(*res->rels));
	r = &res->rels[res->nrels++];
	r->kind = kind;
	r->text = text;
	r->provider = (uint32_t)provider;
	r->service = service;
	r->pos = pos_of(item);
}

static bool host_provides(const struct inv_host *h, const char *service)
{
	for (size_t i = 0; i < h->nservices; i++)
		if (!strcmp(h->services[i].name, service))
			return true;
	return false;
}

/* Indexes the host names for loader_host(); hosts are unique by then. */
static void index_hosts(struct loader *l)
{
	struct inventory *inv = l->inv;

	name_index_init(&l->hosts, inv->nhosts);
	for (size_t i = 0; i < inv->nhosts; i++)
		name_index_add(&l->hosts, inv->hosts[i].name, i);
}

static long loader_host(const struct loader *l, const char *name)
{
	const struct name_key *s = name_index_find(&l->hosts, name);

	return s ? (long)s->first : -1;
}

/* "; did you mean 'X'?" when `name` is a plausible typo of a name of `x`. */
static void suggest(struct buf *hint, const struct name_index *x, const char *name)
{
	const char *best = name_index_suggest(x, name);

	if (best)
		buf_printf(hint, "; did you mean '%s'?", best);
}

/* Providers listed in an "ambiguous service" message before "and N more". */
#define AMBIGUOUS_MAX_LISTED 5

static void service_item(struct loader *l, struct ynode *item, void *data)
{
	struct resolver *r = data;
	struct inventory *inv = l->inv;
	struct inv_host *h = &inv->hosts[r->host];
	const char *text = scalar(item);
	const char *kind = inv_rel_kind_name(r->kind);
	const char *slash = strchr(text, '/');
	const struct name_key *slot;
	size_t n, e;
	struct buf b = BUF_INIT(0);

	if (slash) {
		char *hname = xstrndup(text, (size_t)(slash - text));
		long p = loader_host(l, hname);

		if (p < 0) {
			suggest(&b, &l->hosts, hname);
			inventory__report(l, item, "%s '%s' of host '%s': unknown host '%s'%s",
				kind, text, h->name, hname, b.data ? b.data : "");
		} else if (!host_provides(&inv->hosts[p], slash + 1)) {
			suggest(&b, &r->svcs, slash + 1);
			inventory__report(l, item,
				"%s '%s' of host '%s': host '%s' provides no service '%s'%s", kind,
				text, h->name, hname, slash + 1, b.data ? b.data : "");
		} else if ((size_t)p == r->host) {
			inventory__report(l, item, "host '%s' %s its own service '%s'", h->name,
				kind, slash + 1);
		} else {
			add_rel(r, r->kind, item, (char *)text, (size_t)p, (char *)slash + 1);
		}
		free(hname);
		buf_release(&b);
		return;
	}
	slot = name_index_find(&r->svcs, text);
	n = slot ? slot->count : 0;
	if (n == 0) {
		suggest(&b, &r->svcs, text);
		inventory__report(l, item,
			"%s '%s' of host '%s': no host provides a service '%s'%s", kind, text,
			h->name, text, b.data ? b.data : "");
	} else if (n > 1) {
		size_t listed = n > AMBIGUOUS_MAX_LISTED ? AMBIGUOUS_MAX_LISTED : n;

		e = slot->head;
		for (size_t i = 0; i < listed; i++, e = r->svcs.next[e])
			buf_printf(&b, "%s'%s'",
				i == 0	     ? ""
				: i + 1 == n ? " and "
					     : ", ",
				inv->hosts[r->svcs.value[e]].name);
		if (listed < n)
			buf_printf(&b, " and %zu more", n - listed);
		inventory__report(l, item,
			"ambiguous service '%s' in %s of host '%s': provided by %s; write one as "
			"'%s/%s'",
			text, kind, h->name, b.data, inv->hosts[slot->first].name, text);
	} else if (slot->first == r->host) {
		inventory__report(
			l, item, "host '%s' %s its own service '%s'", h->name, kind, text);
	} else {
		add_rel(r, r->kind, item, (char *)text, slot->first, (char *)text);
	}
	buf_release(&b);
}

static void depends_item(struct loader *l, struct ynode *item, void *data)
{
	struct resolver *r = data;
	struct inventory *inv = l->inv;
	struct inv_host *h = &inv->hosts[r->host];
	const char *text = scalar(item);
	struct buf b = BUF_INIT(0);
	long p;

	if (*text == '@') {
		const struct name_key *slot = name_index_find(&r->tags, text + 1);

		if (!slot) {
			inventory__report(l, item,
				"depends_on '%s' of host '%s': no host has the tag '%s'", text,
				h->name, text + 1);
			return;
		}
		/* a host carrying the tag it depends on does not depend on itself */
		for (uint32_t e = slot->head; e != NAME_NO_ENTRY; e = r->tags.next[e])
			if (r->tags.value[e] != r->host)
				add_rel(r, INV_DEPENDS_ON, item, (char *)text, r->tags.value[e],
					NULL);
		return;
	}
	p = loader_host(l, text);
	if (p < 0) {
		suggest(&b, &l->hosts, text);
		inventory__report(l, item, "depends_on '%s' of host '%s': unknown host '%s'%s",
			text, h->name, text, b.data ? b.data : "");
	} else if ((size_t)p == r->host) {
		inventory__report(l, item, "host '%s' depends on itself", h->name);
	} else {
		add_rel(r, INV_DEPENDS_ON, item, (char *)text, (size_t)p, NULL);
	}
	buf_release(&b);
}

static void resolve_relations(struct loader *l, struct host_raw *raws)
{
	struct inventory *inv = l->inv;
	struct resolver r = {0};
	size_t n = 0, ntags = 0;

	for (size_t i = 0; i < inv->nhosts; i++) {
		n += inv->hosts[i].nservices;
		ntags += inv->hosts[i].tags.nr;
	}
	name_index_init(&r.svcs, n);
	name_index_init(&r.tags, ntags);
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];

		for (size_t j = 0; j < h->nservices; j++)
			name_index_add(&r.svcs, h->services[j].name, i);
		for (size_t j = 0; j < h->tags.nr; j++)
			name_index_add(&r.tags, h->tags.v[j], i);
	}

	for (size_t i = 0; i < inv->nhosts; i++) {
		const char *name = inv->hosts[i].name;
		size_t before = r.nrels;

		r.host = i;
		if (raws[i].uses) {
			r.kind = INV_USES;
			inventory__each_item(l, raws[i].uses, subj("uses", name), service_item, &r);
		}
		if (raws[i].wants) {
			r.kind = INV_WANTS;
			inventory__each_item(
				l, raws[i].wants, subj("wants", name), service_item, &r);
		}
		if (raws[i].depends_on)
			inventory__each_item(
				l, raws[i].depends_on, subj("depends_on", name), depends_item, &r);
		inv->hosts[i].nrels = r.nrels - before;
	}
	/* the array has stopped moving: each host's relations are a slice of it */
	inv->rels = r.rels;
	for (size_t i = 0, at = 0; i < inv->nhosts; at += inv->hosts[i++].nrels)
		inv->hosts[i].rels = inv->hosts[i].nrels ? r.rels + at : NULL;
	name_index_release(&r.svcs);
	name_index_release(&r.tags);
}

/* ---- defaults applied ---- */

/* Whether the address means this machine: such a host is deployed without SSH. */
static bool address_is_local(const char *address)
{
	return !strcmp(address, "localhost") || !strcmp(address, "127.0.0.1") ||
	       !strcmp(address, "::1");
}

/*
 * Why `spec` is not a builder, or NULL: `local`, `target`, a host of the
 * inventory, or user@address[:port] (inventory__builder_address_problem).
 * A name without '@' must be a host of the inventory, so that a typo of
 * one is not taken for a machine outside it. Caller frees.
 */
static char *builder_problem(struct loader *l, const char *spec)
{
	if (!strcmp(spec, "local") || !strcmp(spec, "target") || loader_host(l, spec) >= 0)
		return NULL;
	return inventory__builder_address_problem(spec);
}

static void apply_build(struct loader *l, struct inv_host *h, struct ynode *build)
{
	const char *spec = build ? scalar(build) : inventory_builder(l->inv, h->arch);
	char *why;

	h->build = INV_BUILD_LOCAL;
	if (!spec || !strcmp(spec, "local"))
		return;
	why = builder_problem(l, spec);
	if (why) {
		/* a bad `builders:` entry is reported once, at the entry */
		if (build)
			inventory__report(
				l, build, "build '%s' of host '%s': %s", spec, h->name, why);
		free(why);
		return;
	}
	if (!strcmp(spec, "target") || !strcmp(spec, h->name)) {
		h->build = INV_BUILD_TARGET;
	} else {
		h->build = INV_BUILD_BUILDER;
		h->builder = (char *)spec;
	}
}

/* The attribute a host builds unless it sets `attr`. */
#define ATTR_PREFIX "nixosConfigurations."
#define ATTR_SUFFIX ".config.system.build.toplevel"

static void apply_defaults(struct loader *l, struct host_raw *raws)
{
	struct inventory *inv = l->inv;
	struct inv_defaults *d = &inv->defaults;
	char *arch, *flake;

	if (d->flake && d->file) {
		struct ynode *later = node_after(l->defaults_flake, l->defaults_file)
					      ? l->defaults_flake
					      : l->defaults_file;

		inventory__report(l, later, "defaults set both 'flake' and 'file'; choose one");
	}
	for (size_t i = 0; i < inv->nbuilders; i++) {
		const char *spec = inv->builders[i].spec;
		char *why = builder_problem(l, spec);

		if (why)
			inventory__report(l, l->builder_nodes[i], "builder '%s' of '%s': %s", spec,
				inv->builders[i].arch, why);
		free(why);
	}
	if (!d->goal)
		d->goal = arena_strdup(&inv->pool, "switch");
	flake = d->flake ? d->flake
			 : arena_strdup(&inv->pool, l->default_flake ? l->default_flake : ".");
	arch = arena_strdup(&inv->pool, "x86_64-linux");
	for (size_t i = 0; i < inv->nhosts; i++) {
		struct inv_host *h = &inv->hosts[i];

		if (!h->address)
			h->address = h->name;
		if (!h->user)
			h->user = d->user;
		resolve_become(inv, h, d);
		if (!h->arch)
			h->arch = arch;
		if (!h->attr) {
			/* a name such as web.example or 1st is one segment: quoted */
			bool quote = !inventory__valid_identifier(h->name, strlen(h->name));
			size_t n = strlen(h->name) + sizeof(ATTR_PREFIX ATTR_SUFFIX) + 2;

			h->attr = arena_alloc(&inv->pool, n);
			snprintf(h->attr, n, ATTR_PREFIX "%s%s%s" ATTR_SUFFIX, quote ? "\"" : "",
				h->name, quote ? "\"" : "");
		}
		if (h->flake && h->file) {
			struct ynode *later = node_after(raws[i].flake, raws[i].file)
						      ? raws[i].flake
						      : raws[i].file;

			inventory__report(l, later,
				"host '%s' sets both 'flake' and 'file'; choose one", h->name);
		}
		if (!h->flake && !h->file) {
			if (d->file)
				h->file = d->file;
			else
				h->flake = flake;
		}
		if (!h->goal)
			h->goal = d->goal;
		if (!raws[i].local_set && address_is_local(h->address))
			h->local = true;
		if (!raws[i].substitute_set)
			h->substitute = d->substitute;
		if (!raws[i].confirm_set)
			h->confirm_timeout = d->confirm_timeout;
		if (!raws[i].health_set)
			h->health_timeout = d->health_timeout;
		apply_build(l, h, raws[i].build);
	}
}

void inventory__resolve(struct loader *l, struct host_raw *raws)
{
	index_hosts(l);
	apply_defaults(l, raws);
	resolve_relations(l, raws);
}
