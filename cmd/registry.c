/*
 * constel registry: which host serves which service, where, from any
 * inventory: what constel.lib.registry gives in Nix (nix/lib.nix), so that
 * a YAML inventory can feed a gateway's module too (builtins.fromJSON, or
 * the --nix text imported as it is).
 *
 *   { HOST = { SERVICE = { port; address; }; }; }
 *
 * A service's address is its own (`{ port, address }`), else its host's.
 */
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

enum { REGISTRY_NIX = CMD_OPT_OWN };

static const char *service_address(const struct inv_host *h, const struct inv_service *s)
{
	return s->address ? s->address : h->address;
}

static json_t *registry_json(const struct inventory *inv)
{
	json_t *root = json_object();

	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];
		json_t *host = json_object();

		for (size_t j = 0; j < h->nservices; j++) {
			const struct inv_service *s = &h->services[j];

			json_object_set_new(host, s->name,
				json_pack("{s:i,s:s}", "port", s->port, "address",
					service_address(h, s)));
		}
		json_object_set_new(root, h->name, host);
	}
	return root;
}

/* A name as a Nix attribute: as it is when it is an identifier, else a string. */
static void add_nix_name(struct buf *b, const char *name)
{
	bool plain = (*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
		     *name == '_';

	for (const char *p = name; plain && *p; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '\'';
	if (plain)
		buf_adds(b, name);
	else
		buf_add_json_string(b, name); /* names and addresses have no '$' or '\\' */
}

static void add_nix(struct buf *b, const struct inventory *inv)
{
	buf_adds(b, "{\n");
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];

		buf_adds(b, "  ");
		add_nix_name(b, h->name);
		buf_adds(b, " = {");
		for (size_t j = 0; j < h->nservices; j++) {
			const struct inv_service *s = &h->services[j];

			buf_adds(b, "\n    ");
			add_nix_name(b, s->name);
			buf_printf(b, " = { port = %d; address = ", s->port);
			buf_add_json_string(b, service_address(h, s));
			buf_adds(b, "; };");
		}
		buf_adds(b, h->nservices ? "\n  };\n" : " };\n");
	}
	buf_adds(b, "}\n");
}

static int registry(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct inventory *inv = NULL;
	struct buf b = BUF_INIT(0);
	bool nix = false;
	int ret;

	(void)self;
	for (size_t i = 0; i < opts->nr; i++) {
		switch (opts->v[i].opt->id) {
		case REGISTRY_NIX:
			nix = true;
			break;
		default:
			assert(!"an option of the table without a case");
		}
	}
	if (nix && g->json)
		return cmd_error("registry prints JSON (--json) or Nix (--nix), not both");
	if ((ret = cmd_load_inventory(g, &inv)) != CMD_OK)
		return ret;
	if (g->json) {
		json_t *root = registry_json(inv);

		json_dumpf(root, stdout, CMD_JSON_FLAGS);
		fputc('\n', stdout);
		json_decref(root);
	} else if (nix) {
		add_nix(&b, inv);
		fputs(b.data, stdout);
	} else {
		for (size_t i = 0; i < inv->nhosts; i++) {
			const struct inv_host *h = &inv->hosts[i];

			for (size_t j = 0; j < h->nservices; j++)
				printf("%-12s %-16s %s:%d\n", h->name, h->services[j].name,
					service_address(h, &h->services[j]),
					h->services[j].port);
		}
	}
	ret = fflush(stdout) == 0 ? CMD_OK : CMD_FAILED;
	buf_release(&b);
	inventory_free(inv);
	return ret;
}

static const struct opt registry_opts[] = {
	{.name = "nix",
		.kind = OPT_FLAG,
		.id = REGISTRY_NIX,
		.help = "print a Nix attribute set (`--json` for JSON), as constel.lib.registry gives"},
	{NULL},
};

const struct cmd cmd_registry_entry = {
	.name = "registry",
	.opts = registry_opts,
	.args = "",
	.summary = "print which host serves which service where: { HOST.SERVICE = { port; address; } }",
	.fn = registry,
};
