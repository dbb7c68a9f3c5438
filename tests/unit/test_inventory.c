/* Unit tests of inventory/: the model after defaults, relations, and every validation message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <yaml.h>

#include "inventory/inventory.h"

/*
 * Every case of this suite is also checked as a flake output: the YAML is
 * turned into the JSON that `nix eval --json` would give for the same
 * attribute set, loaded as `t#constellation`, and must give the same
 * model or the same messages, each with an attribute path. What JSON
 * cannot say (a syntax error, a key that is no string, a duplicate key:
 * Nix has none) is left out: a case made only of those is not converted.
 */
static size_t json_cases; /* cases checked in both forms */

/* YAML's plain scalars as Nix values: null, true/false, whole numbers; the rest strings. */
static json_t *scalar_json(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	char *end;
	long long v;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, len);
	if (!len || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
		!strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "false"))
		return json_boolean(!strcmp(s, "true"));
	if ((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!*end && !errno && (s[0] != '0' || !s[1]))
			return json_integer(v);
	}
	return json_stringn(s, len);
}

/* The JSON of a node; NULL when JSON cannot say it (of duplicate keys, the first is kept). */
static json_t *yaml_json(yaml_document_t *d, yaml_node_t *n, int depth)
{
	json_t *o;

	if (!n || depth > 32)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		if (memchr(n->data.scalar.value, '\0', n->data.scalar.length))
			return NULL;
		return scalar_json(n);
	case YAML_SEQUENCE_NODE:
		o = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
			i < n->data.sequence.items.top; i++) {
			json_t *v = yaml_json(d, yaml_document_get_node(d, *i), depth + 1);

			if (!v) {
				json_decref(o);
				return NULL;
			}
			json_array_append_new(o, v);
		}
		return o;
	case YAML_MAPPING_NODE:
		o = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
			p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(d, p->key);
			json_t *v;

			if (!k || k->type != YAML_SCALAR_NODE ||
				memchr(k->data.scalar.value, '\0', k->data.scalar.length)) {
				json_decref(o);
				return NULL;
			}
			if (json_object_get(o, (const char *)k->data.scalar.value))
				continue;
			v = yaml_json(d, yaml_document_get_node(d, p->value), depth + 1);
			if (!v) {
				json_decref(o);
				return NULL;
			}
			json_object_set_new(o, (const char *)k->data.scalar.value, v);
		}
		return o;
	default:
		return NULL;
	}
}

/* The flake output a YAML inventory stands for, or NULL. */
static json_t *as_flake_output(const char *yaml)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	json_t *v = NULL;

	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
	if (yaml_parser_load(&parser, &doc)) {
		yaml_node_t *root = yaml_document_get_root_node(&doc);

		v = root ? yaml_json(&doc, root, 0) : NULL;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return v;
}

static int load_flake_output(json_t *v, struct inventory **inv, struct inv_errors *errors)
{
	return inventory_load_json_errors(
		inv, "t#constellation", "constellation", v, NULL, ".", NULL, errors);
}

/* What the YAML message `want` ("t.yaml:L:C: MSG") says from Nix: MSG, without "(line N)". */
static char *flake_message(const char *want)
{
	const char *msg = strstr(want, ": ") + 2;
	const char *line = strstr(msg, " (line ");
	char *out;

	if (!line)
		return strdup(msg);
	out = strndup(msg, (size_t)(line - msg));
	line = strchr(line, ')') + 1;
	out = realloc(out, strlen(out) + strlen(line) + 1);
	strcat(out, line);
	return out;
}

/* Whether a message is about what only YAML can say: duplicate keys, aliases, documents. */
static bool yaml_only(const char *msg)
{
	return strstr(msg, "(first at line ") || strstr(msg, ": invalid YAML: ") ||
	       strstr(msg, "a second YAML document") || strstr(msg, "aliases repeat");
}

/* The flake counterpart of assert_errors(): the same messages, with attribute paths. */
static void assert_flake_errors(const char *yaml, size_t n, const char **wants)
{
	struct inv_errors errors = INV_ERRORS_INIT;
	struct inventory *inv = (struct inventory *)1;
	size_t k = 0, nyaml = 0;
	json_t *v = as_flake_output(yaml);

	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		nyaml += yaml_only(wants[i]);
	assert_int_equal(load_flake_output(v, &inv, &errors), n == nyaml ? 0 : -1);
	for (size_t i = 0; i < n; i++) {
		char *want;

		if (yaml_only(wants[i]))
			continue;
		want = flake_message(wants[i]);
		if (k >= errors.nr || strcmp(errors.v[k].message, want))
			print_error("flake error %zu\n  want: %s\n  got:  %s\n", k, want,
				k < errors.nr ? errors.v[k].message : "(none)");
		assert_true(k < errors.nr);
		assert_string_equal(errors.v[k].message, want);
		assert_string_equal(errors.v[k].file, "t#constellation");
		assert_int_equal(errors.v[k].line, 0);
		assert_non_null(errors.v[k].attr);
		assert_true(!strncmp(errors.v[k].attr, "constellation", 13));
		free(want);
		k++;
	}
	assert_int_equal(errors.nr, k);
	if (!errors.nr)
		inventory_free(inv);
	inv_errors_release(&errors);
	json_decref(v);
	json_cases++;
}

/* The flake counterpart of load_ok(): valid too, with the same hosts. */
static void assert_flake_ok(const char *yaml, const struct inventory *want)
{
	struct inv_errors errors = INV_ERRORS_INIT;
	struct inventory *inv = NULL;
	json_t *v = as_flake_output(yaml);

	if (!v)
		return;
	for (size_t i = 0; load_flake_output(v, &inv, &errors) < 0 && i < errors.nr; i++)
		print_error("unexpected flake error: %s\n", errors.v[i].message);
	assert_int_equal(errors.nr, 0);
	assert_int_equal(inv->nhosts, want->nhosts);
	for (size_t i = 0; i < inv->nhosts; i++) {
		assert_string_equal(inv->hosts[i].name, want->hosts[i].name);
		assert_string_equal(inv->hosts[i].attr, want->hosts[i].attr);
		assert_string_equal(inv->hosts[i].arch, want->hosts[i].arch);
		assert_int_equal(inv->hosts[i].nservices, want->hosts[i].nservices);
		assert_int_equal(inv->hosts[i].nrels, want->hosts[i].nrels);
		assert_int_equal(inv->hosts[i].build, want->hosts[i].build);
		assert_int_equal(inv->hosts[i].port, want->hosts[i].port);
	}
	inventory_free(inv);
	json_decref(v);
	json_cases++;
}

/* Loads `yaml` as "t.yaml" and expects it to be valid. */
static struct inventory *load_ok(const char *yaml)
{
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = NULL;
	int ret = inventory_load_buffer(&inv, "t.yaml", yaml, strlen(yaml), &errors);

	for (size_t i = 0; i < errors.nr; i++)
		print_error("unexpected: %s\n", errors.v[i]);
	assert_int_equal(ret, 0);
	assert_int_equal(errors.nr, 0);
	assert_non_null(inv);
	strvec_release(&errors);
	assert_flake_ok(yaml, inv);
	return inv;
}

/*
 * Loads `yaml` as "t.yaml", expects it to fail with exactly the `n` messages
 * that follow, in order.
 */
static void assert_errors(const char *yaml, size_t n, ...)
{
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = (struct inventory *)1;
	int ret = inventory_load_buffer(&inv, "t.yaml", yaml, strlen(yaml), &errors);
	const char **wants = calloc(n + 1, sizeof(*wants));
	va_list ap;

	assert_int_equal(ret, -1);
	assert_null(inv);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const char *want = va_arg(ap, const char *);

		wants[i] = want;
		if (i >= errors.nr || strcmp(errors.v[i], want))
			print_error("error %zu\n  want: %s\n  got:  %s\n", i, want,
				i < errors.nr ? errors.v[i] : "(none)");
		assert_true(i < errors.nr);
		assert_string_equal(errors.v[i], want);
	}
	va_end(ap);
	for (size_t i = n; i < errors.nr; i++)
		print_error("extra: %s\n", errors.v[i]);
	assert_int_equal(errors.nr, n);
	strvec_release(&errors);
	assert_flake_errors(yaml, n, wants);
	free(wants);
}

static const struct inv_relation *rel(const struct inv_host *h, size_t i)
{
	assert_true(i < h->nrels);
	return &h->rels[i];
}

/* ---- the model ---- */

static void test_inventory_loads_the_example(void **state)
{
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = NULL;

	(void)state;
	assert_int_equal(inventory_load(&inv, "examples/constellation.yaml", &errors), 0);
	assert_int_equal(errors.nr, 0);
	assert_int_equal(inv->nhosts, 5);
	assert_string_equal(inv->hosts[0].name, "galactica");
	assert_string_equal(inv->hosts[4].name, "cylon");
	assert_string_equal(inv->dir, "examples");
	assert_string_equal(inv->path, "examples/constellation.yaml");
	inventory_free(inv);
	strvec_release(&errors);
}

static void test_inventory_reports_a_missing_file(void **state)
{
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = NULL;

	(void)state;
	assert_int_equal(inventory_load(&inv, "/nonexistent/c.yaml", &errors), -1);
	assert_null(inv);
	assert_int_equal(errors.nr, 1);
	assert_string_equal(errors.v[0],
		"/nonexistent/c.yaml: cannot open the inventory: No such file or directory");
	strvec_release(&errors);
}

/* A pipe (`-i /dev/stdin`) can not be mapped: it is read, to the same result. */
static void test_inventory_reads_a_fifo_as_it_maps_a_file(void **state)
{
	static const char text[] = "hosts:\n  galactica:\n    services: { auth: 443 }\n"
				   "  pegasus:\n    uses: [auth]\n";
	char dir[] = "/tmp/constel-inv-XXXXXX", fifo[64], file[64];
	struct strvec errors = STRVEC_INIT;
	struct inventory *a = NULL, *b = NULL;
	FILE *f;
	pid_t pid;
	int status;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", dir);
	snprintf(file, sizeof(file), "%s/file.yaml", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		f = fopen(fifo, "w");
		_exit(f && fputs(text, f) >= 0 && fclose(f) == 0 ? 0 : 1);
	}
	assert_int_equal(inventory_load(&b, fifo, &errors), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(inventory_load(&a, file, &errors), 0);
	assert_int_equal(errors.nr, 0);
	assert_int_equal(a->nhosts, 2);
	assert_int_equal(b->nhosts, 2);
	assert_int_equal(b->hosts[1].nrels, 1);
	assert_string_equal(b->hosts[1].rels[0].text, a->hosts[1].rels[0].text);
	assert_int_equal(b->hosts[1].rels[0].pos.line, a->hosts[1].rels[0].pos.line);
	inventory_free(a);
	inventory_free(b);
	unlink(fifo);
	unlink(file);
	rmdir(dir);
	strvec_release(&errors);
}

/* An empty file is an empty inventory; one past the limit is refused unread. */
static void test_inventory_checks_the_size_of_a_file(void **state)
{
	char dir[] = "/tmp/constel-inv-XXXXXX", path[64], msg[160];
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(inventory_load(&inv, path, &errors), -1);
	snprintf(msg, sizeof(msg),
		"%s:1:1: the inventory is empty; expected a mapping with 'hosts'", path);
	assert_string_equal(errors.v[0], msg);
	assert_int_equal(truncate(path, (65 << 20)), 0); /* sparse: nothing is written */
	assert_int_equal(inventory_load(&inv, path, &errors), -1);
	assert_null(inv);
	snprintf(msg, sizeof(msg), "%s: the inventory is larger than 64 MiB", path);
	assert_string_equal(errors.v[1], msg);
	unlink(path);
	rmdir(dir);
	strvec_release(&errors);
}

static void test_inventory_applies_builtin_defaults(void **state)
{
	struct inventory *inv = load_ok("hosts:\n  galactica:\n");
	const struct inv_host *h = &inv->hosts[0];

	(void)state;
	assert_int_equal(inv->nhosts, 1);
	assert_string_equal(h->name, "galactica");
	assert_int_equal(h->pos.line, 2);
	assert_int_equal(h->pos.col, 3);
	assert_string_equal(h->address, "galactica");
	assert_null(h->user);
	assert_int_equal(h->port, 0);
	assert_string_equal(h->arch, "x86_64-linux");
	assert_string_equal(h->attr, "nixosConfigurations.galactica.config.system.build.toplevel");
	assert_string_equal(h->flake, ".");
	assert_null(h->file);
	assert_string_equal(h->goal, "switch");
	assert_int_equal(h->build, INV_BUILD_LOCAL);
	assert_null(h->builder);
	assert_false(h->local);
	assert_int_equal(h->tags.nr, 0);
	assert_int_equal(h->nservices, 0);
	assert_int_equal(h->nrels, 0);
	assert_string_equal(inv->defaults.goal, "switch");
	assert_int_equal(inv->defaults.parallel, 10);
	assert_int_equal(inv->defaults.confirm_timeout, 30);
	assert_int_equal(inv->defaults.health_timeout, 30);
	assert_int_equal(inv->defaults.activation_timeout, 600);
	assert_int_equal(inv->defaults.connect_timeout, 10);
	inventory_free(inv);
}

static void test_inventory_applies_the_defaults_section(void **state)
{
	struct inventory *inv = load_ok("defaults:\n"
					"  user: deploy\n"
					"  goal: boot\n"
					"  file: ./fleet.nix\n"
					"  ssh_config: ./ssh_config\n"
					"  parallel: 4\n"
					"  confirm_timeout: 60\n"
					"  health_timeout: 0\n"
					"  activation_timeout: 900\n"
					"  connect_timeout: 5\n"
					"hosts:\n"
					"  a:\n"
					"  b:\n"
					"    user: admin\n"
					"    goal: test\n"
					"    flake: github:me/fleet\n"
					"    attr: packages.x86_64-linux.b\n"
					"    address: b.example.org\n"
					"    port: 2222\n");
	const struct inv_host *a = &inv->hosts[0], *b = &inv->hosts[1];

	(void)state;
	assert_string_equal(a->user, "deploy");
	assert_string_equal(a->goal, "boot");
	assert_string_equal(a->file, "./fleet.nix");
	assert_null(a->flake);
	assert_string_equal(b->user, "admin");
	assert_string_equal(b->goal, "test");
	assert_string_equal(b->flake, "github:me/fleet");
	assert_null(b->file);
	assert_string_equal(b->attr, "packages.x86_64-linux.b");
	assert_string_equal(b->address, "b.example.org");
	assert_int_equal(b->port, 2222);
	assert_string_equal(inv->defaults.ssh_config, "./ssh_config");
	assert_int_equal(inv->defaults.parallel, 4);
	assert_int_equal(inv->defaults.confirm_timeout, 60);
	assert_int_equal(inv->defaults.health_timeout, 0);
	assert_int_equal(inv->defaults.activation_timeout, 900);
	assert_int_equal(inv->defaults.connect_timeout, 5);
	inventory_free(inv);
}

static void test_inventory_host_timeouts_fall_back_to_the_defaults(void **state)
{
	struct inventory *inv = load_ok("defaults: { confirm_timeout: 40, health_timeout: 7 }\n"
					"hosts:\n"
					"  a:\n"
					"  b: { confirm_timeout: 90, health_timeout: 0 }\n");

	(void)state;
	assert_int_equal(inv->hosts[0].confirm_timeout, 40);
	assert_int_equal(inv->hosts[0].health_timeout, 7);
	assert_int_equal(inv->hosts[1].confirm_timeout, 90);
	assert_int_equal(inv->hosts[1].health_timeout, 0);
	inventory_free(inv);
}

static void test_inventory_become_follows_the_user(void **state)
{
	struct inventory *inv = load_ok("defaults:\n"
					"  signing_key: keys/fleet.sec\n"
					"hosts:\n"
					"  a:\n"
					"  r: { user: root }\n"
					"  d: { user: deploy }\n"
					"  o: { user: deploy, become: doas }\n"
					"  n: { user: deploy, become: none }\n"
					"  t: { user: deploy, become: run0 --no-ask-password }\n"
					"  s: { become: sudo }\n");

	(void)state;
	assert_null(inv->hosts[0].become); /* the login user is root */
	assert_null(inv->hosts[1].become);
	assert_string_equal(inv->hosts[2].become, "sudo -n --");
	assert_string_equal(inv->hosts[3].become, "doas -n --");
	assert_null(inv->hosts[4].become);
	assert_string_equal(inv->hosts[5].become, "run0 --no-ask-password");
	assert_string_equal(inv->hosts[6].become, "sudo -n --");
	assert_string_equal(inv->defaults.signing_key, "keys/fleet.sec");
	inventory_free(inv);
}

static void test_inventory_builders_set_each_hosts_build_mode(void **state)
{
	struct inventory *inv = load_ok("builders:\n"
					"  aarch64-linux: basestar\n"
					"  armv7l-linux: nix@builder.lan\n"
					"  i686-linux: target\n"
					"hosts:\n"
					"  basestar: { arch: aarch64-linux }\n"
					"  raider: { arch: aarch64-linux }\n"
					"  board: { arch: armv7l-linux }\n"
					"  old: { arch: i686-linux }\n"
					"  viper: { arch: aarch64-linux, build: local }\n"
					"  galactica: {}\n"
					"  pegasus: { build: target }\n"
					"  cylon: { build: galactica }\n"
					"  raptor: { build: root@10.0.0.9 }\n");

	(void)state;
	assert_int_equal(inventory_host(inv, "basestar")->build, INV_BUILD_TARGET);
	assert_int_equal(inventory_host(inv, "raider")->build, INV_BUILD_BUILDER);
	assert_string_equal(inventory_host(inv, "raider")->builder, "basestar");
	assert_int_equal(inventory_host(inv, "board")->build, INV_BUILD_BUILDER);
	assert_string_equal(inventory_host(inv, "board")->builder, "nix@builder.lan");
	assert_int_equal(inventory_host(inv, "old")->build, INV_BUILD_TARGET);
	assert_int_equal(inventory_host(inv, "viper")->build, INV_BUILD_LOCAL);
	assert_null(inventory_host(inv, "viper")->builder);
	assert_int_equal(inventory_host(inv, "galactica")->build, INV_BUILD_LOCAL);
	assert_int_equal(inventory_host(inv, "pegasus")->build, INV_BUILD_TARGET);
	assert_int_equal(inventory_host(inv, "cylon")->build, INV_BUILD_BUILDER);
	assert_string_equal(inventory_host(inv, "cylon")->builder, "galactica");
	assert_int_equal(inventory_host(inv, "raptor")->build, INV_BUILD_BUILDER);
	assert_string_equal(inventory_host(inv, "raptor")->builder, "root@10.0.0.9");
	assert_string_equal(inventory_builder(inv, "aarch64-linux"), "basestar");
	assert_null(inventory_builder(inv, "x86_64-linux"));
	inventory_free(inv);
}

static void test_inventory_loopback_address_means_local(void **state)
{
	struct inventory *inv = load_ok("hosts:\n"
					"  localhost:\n"
					"  here: { address: 127.0.0.1 }\n"
					"  six: { address: '::1' }\n"
					"  forced: { local: yes }\n"
					"  remote: { address: localhost, local: false }\n"
					"  far: { address: far.example.org }\n");

	(void)state;
	assert_true(inv->hosts[0].local);
	assert_true(inv->hosts[1].local);
	assert_true(inv->hosts[2].local);
	assert_true(inv->hosts[3].local);
	assert_false(inv->hosts[4].local);
	assert_false(inv->hosts[5].local);
	inventory_free(inv);
}

static void test_inventory_keeps_tags_and_services_in_file_order(void **state)
{
	struct inventory *inv = load_ok("hosts:\n"
					"  g:\n"
					"    tags: [tier1, '@storage', tier1]\n"
					"    services: { auth: 9091, ntfy: 2586 }\n"
					"  p:\n"
					"    tags: solo\n");
	const struct inv_host *g = &inv->hosts[0];

	(void)state;
	assert_int_equal(g->tags.nr, 2);
	assert_string_equal(g->tags.v[0], "tier1");
	assert_string_equal(g->tags.v[1], "storage");
	assert_int_equal(g->nservices, 2);
	assert_string_equal(g->services[0].name, "auth");
	assert_int_equal(g->services[0].port, 9091);
	assert_int_equal(g->services[0].pos.line, 4);
	assert_int_equal(g->services[0].pos.col, 17);
	assert_string_equal(g->services[1].name, "ntfy");
	assert_int_equal(g->services[1].port, 2586);
	assert_int_equal(inv->hosts[1].tags.nr, 1);
	assert_string_equal(inv->hosts[1].tags.v[0], "solo");
	inventory_free(inv);
}

static void test_inventory_reads_health_checks_and_commands(void **state)
{
	struct inventory *inv = load_ok("hosts:\n"
					"  g:\n"
					"    services:\n"
					"      web: { port: 8080, health: { path: /healthz } }\n"
					"      api: { port: 8081, health: { path: /ok, status: 204 } }\n"
					"      db: 5432\n"
					"    check: systemctl is-active web.service\n"
					"    local_check: [ 'curl -sf http://$2:8080/', 'true' ]\n");
	const struct inv_host *g = &inv->hosts[0];

	(void)state;
	assert_int_equal(g->nservices, 3);
	assert_int_equal(g->services[0].port, 8080);
	assert_string_equal(g->services[0].health_path, "/healthz");
	assert_int_equal(g->services[0].health_status, 200);
	assert_string_equal(g->services[1].health_path, "/ok");
	assert_int_equal(g->services[1].health_status, 204);
	assert_null(g->services[2].health_path);
	assert_int_equal(g->checks.nr, 1);
	assert_string_equal(g->checks.v[0], "systemctl is-active web.service");
	assert_int_equal(g->local_checks.nr, 2);
	assert_string_equal(g->local_checks.v[1], "true");
	inventory_free(inv);
}

static void test_inventory_reports_bad_health_checks(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  g:\n"
		      "    services:\n"
		      "      a: { port: 1, health: { path: 'no slash' } }\n"
		      "      b: { health: { path: /x } }\n"
		      "      c: { port: 3, health: { status: 99 } }\n"
		      "      d: { port: 4, probe: 1 }\n",
		5,
		"t.yaml:4:37: health.path of service 'a' of host 'g' must be a URL path starting "
		"with '/', without spaces or quotes, not 'no slash'",
		"t.yaml:5:10: service 'b' of host 'g' has no port; expected { port: PORT, address: "
		"ADDRESS, health: { path: PATH } }",
		"t.yaml:6:39: health.status of service 'c' of host 'g' must be a whole number from "
		"100 to 599, not '99'",
		"t.yaml:6:29: health of service 'c' of host 'g' needs a path",
		"t.yaml:7:21: unknown key 'probe' in service 'd' of host 'g'");
}

static void test_inventory_resolves_bare_and_qualified_uses(void **state)
{
	struct inventory *inv = load_ok("hosts:\n"
					"  galactica:\n"
					"    services: { auth: 9091, restic: 8000 }\n"
					"  pegasus:\n"
					"    services: { restic: 8000 }\n"
					"  basestar:\n"
					"    uses: [auth, pegasus/restic]\n");
	const struct inv_host *b = &inv->hosts[2];

	(void)state;
	assert_int_equal(b->nrels, 2);
	assert_int_equal(rel(b, 0)->kind, INV_USES);
	assert_string_equal(rel(b, 0)->text, "auth");
	assert_string_equal(rel(b, 0)->service, "auth");
	assert_int_equal(rel(b, 0)->provider, 0);
	assert_int_equal(rel(b, 0)->pos.line, 7);
	assert_int_equal(rel(b, 0)->pos.col, 12);
	assert_int_equal(rel(b, 1)->kind, INV_USES);
	assert_string_equal(rel(b, 1)->text, "pegasus/restic");
	assert_string_equal(rel(b, 1)->service, "restic");
	assert_int_equal(rel(b, 1)->provider, 1);
	assert_int_equal(rel(b, 1)->pos.line, 7);
	assert_int_equal(rel(b, 1)->pos.col, 18);
	inventory_free(inv);
}

static void test_inventory_records_wants_as_their_own_kind(void **state)
{
	/* mutual wants are fine: they record, they do not order */
	struct inventory *inv = load_ok("hosts:\n"
					"  galactica:\n"
					"    services: { restic: 8000 }\n"
					"    wants: pegasus/restic\n"
					"  pegasus:\n"
					"    services: { restic: 8001 }\n"
					"    wants: [galactica/restic]\n");
	const struct inv_host *g = &inv->hosts[0], *p = &inv->hosts[1];

	(void)state;
	assert_int_equal(g->nrels, 1);
	assert_int_equal(rel(g, 0)->kind, INV_WANTS);
	assert_int_equal(rel(g, 0)->provider, 1);
	assert_string_equal(rel(g, 0)->service, "restic");
	assert_int_equal(rel(g, 0)->pos.line, 4);
	assert_int_equal(rel(g, 0)->pos.col, 12);
	assert_int_equal(p->nrels, 1);
	assert_int_equal(rel(p, 0)->kind, INV_WANTS);
	assert_int_equal(rel(p, 0)->provider, 0);
	assert_string_equal(inv_rel_kind_name(INV_WANTS), "wants");
	inventory_free(inv);
}

static void test_inventory_depends_on_names_and_tags_but_never_self(void **state)
{
	struct inventory *inv = load_ok("hosts:\n"
					"  a: { tags: [core] }\n"
					"  b: { tags: [core] }\n"
					"  c:\n"
					"    tags: [core]\n"
					"    depends_on: ['@core', a]\n");
	const struct inv_host *c = &inv->hosts[2];

	(void)state;
	assert_int_equal(c->nrels, 3);
	assert_int_equal(rel(c, 0)->kind, INV_DEPENDS_ON);
	assert_string_equal(rel(c, 0)->text, "@core");
	assert_int_equal(rel(c, 0)->provider, 0);
	assert_null(rel(c, 0)->service);
	assert_int_equal(rel(c, 0)->pos.line, 6);
	assert_int_equal(rel(c, 0)->pos.col, 18);
	assert_string_equal(rel(c, 1)->text, "@core");
	assert_int_equal(rel(c, 1)->provider, 1);
	assert_string_equal(rel(c, 2)->text, "a");
	assert_int_equal(rel(c, 2)->provider, 0);
	assert_int_equal(rel(c, 2)->pos.col, 27);
	inventory_free(inv);
}

static void test_inventory_follows_aliases(void **state)
{
	struct inventory *inv = load_ok("hosts:\n"
					"  a: &board { arch: aarch64-linux, tags: [board] }\n"
					"  b: *board\n");

	(void)state;
	assert_string_equal(inv->hosts[1].arch, "aarch64-linux");
	assert_string_equal(inv->hosts[1].tags.v[0], "board");
	inventory_free(inv);
}

static void test_inventory_limits_what_aliases_expand_to(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	/* 1000 hosts each using the same 1000-entry list: a million relations from 12 KB */
	buf_adds(&b, "hosts:\n  p: { services: { s: 1 } }\n  h0: { uses: &l [");
	for (int i = 0; i < 1000; i++)
		buf_adds(&b, i ? ", p/s" : "p/s");
	buf_adds(&b, "] }\n");
	for (int i = 1; i < 1000; i++)
		buf_printf(&b, "  h%d: { uses: *l }\n", i);
	assert_errors(b.data, 1,
		"t.yaml:3:15: aliases repeat this node too often: they may expand the inventory "
		"at most fourfold");
	buf_release(&b);
}

static void test_inventory_host_lookup(void **state)
{
	struct inventory *inv = load_ok("hosts: { a: , b: , c: }\n");

	(void)state;
	assert_int_equal(inventory_host_index(inv, "c"), 2);
	assert_int_equal(inventory_host_index(inv, "d"), -1);
	assert_ptr_equal(inventory_host(inv, "b"), &inv->hosts[1]);
	assert_null(inventory_host(inv, "x"));
	assert_true(inventory_arch_known("x86_64-linux"));
	assert_true(inventory_arch_known("aarch64-linux"));
	assert_true(inventory_arch_known("i686-linux"));
	assert_true(inventory_arch_known("armv7l-linux"));
	assert_false(inventory_arch_known("x86_64-darwin"));
	inventory_free(inv);
}

/* ---- errors: the document ---- */

static void test_inventory_reports_yaml_syntax_error_at_its_position(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n    tags: [x, y\n  b:\n", 1,
		"t.yaml:4:4: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
		"sequence at line 3)");
	assert_errors("hosts:\n  a: {\n", 1,
		"t.yaml:3:1: invalid YAML: did not find expected node content (while parsing a "
		"flow node at line 3)");
}

static void test_inventory_reports_invalid_utf8_at_its_line(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n  b\xff:\n", 1,
		"t.yaml:3:4: invalid YAML: invalid leading UTF-8 octet");
}

static void test_inventory_reports_undefined_alias(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a: *nothing\n", 1,
		"t.yaml:2:6: invalid YAML: found undefined alias 'nothing'");
	/* an anchor is defined once its node is complete: no node contains itself */
	assert_errors(
		"hosts: &h\n  a: *h\n", 1, "t.yaml:2:6: invalid YAML: found undefined alias 'h'");
}

static void test_inventory_reports_a_second_document(void **state)
{
	(void)state;
	assert_errors("hosts: { a: }\n---\nhosts: { b: }\n", 1,
		"t.yaml:2:1: a second YAML document; the inventory must be one document");
	assert_errors("hosts: { a: }\n---\n[\n", 1,
		"t.yaml:4:1: invalid YAML: did not find expected node content (while parsing a "
		"flow node at line 4)");
}

static void test_inventory_reports_an_empty_file(void **state)
{
	(void)state;
	assert_errors("", 1, "t.yaml:1:1: the inventory is empty; expected a mapping with 'hosts'");
	assert_errors("# nothing yet\n", 1,
		"t.yaml:1:1: the inventory is empty; expected a mapping with 'hosts'");
	assert_errors(
		"~\n", 1, "t.yaml:1:1: the inventory is empty; expected a mapping with 'hosts'");
}

static void test_inventory_reports_missing_or_empty_hosts(void **state)
{
	(void)state;
	assert_errors("defaults: { user: root }\n", 1, "t.yaml:1:1: the inventory has no 'hosts'");
	assert_errors("hosts:\n", 1,
		"t.yaml:1:7: 'hosts' is empty; the inventory needs at least one host");
	assert_errors("hosts: {}\n", 1,
		"t.yaml:1:8: 'hosts' is empty; the inventory needs at least one host");
	assert_errors("hosts: [a, b]\n", 1, "t.yaml:1:8: hosts must be a mapping, not a list");
	assert_errors("- hosts\n", 1, "t.yaml:1:1: the inventory must be a mapping, not a list");
}

/* ---- errors: keys and types ---- */

static void test_inventory_reports_unknown_key_with_did_you_mean(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a:\n"
		      "    adress: a.lan\n"
		      "    servics: { x: 1 }\n"
		      "    depends-on: []\n",
		3, "t.yaml:3:5: unknown key 'adress' in host 'a'; did you mean 'address'?",
		"t.yaml:4:5: unknown key 'servics' in host 'a'; did you mean 'services'?",
		"t.yaml:5:5: unknown key 'depends-on' in host 'a'; did you mean 'depends_on'?");
	assert_errors("defaults:\n  paralel: 3\nhost:\n  a:\n", 3,
		"t.yaml:2:3: unknown key 'paralel' in defaults; did you mean 'parallel'?",
		"t.yaml:3:1: unknown key 'host' in the inventory; did you mean 'hosts'?",
		"t.yaml:1:1: the inventory has no 'hosts'");
}

static void test_inventory_reports_unknown_key_without_a_far_fetched_hint(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n    x: 1\n    colour: blue\n", 2,
		"t.yaml:3:5: unknown key 'x' in host 'a'",
		"t.yaml:4:5: unknown key 'colour' in host 'a'");
}

static void test_inventory_reports_key_that_belongs_in_another_section(void **state)
{
	(void)state;
	assert_errors("defaults:\n  arch: aarch64-linux\nhosts:\n  a:\n    parallel: 3\n"
		      "    hosts: {}\n",
		3, "t.yaml:2:3: unknown key 'arch' in defaults; it belongs in a host",
		"t.yaml:5:5: unknown key 'parallel' in host 'a'; it belongs in 'defaults'",
		"t.yaml:6:5: unknown key 'hosts' in host 'a'; it belongs in the top level");
}

static void test_inventory_reports_duplicate_host(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n  b:\n  a:\n    arch: nope\n  a:\n", 2,
		"t.yaml:4:3: duplicate host 'a' (first at line 2)",
		"t.yaml:6:3: duplicate host 'a' (first at line 2)");
}

static void test_inventory_reports_duplicate_key(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n    arch: x86_64-linux\n    arch: aarch64-linux\n", 1,
		"t.yaml:4:5: duplicate key 'arch' in host 'a' (first at line 3)");
}

static void test_inventory_reports_non_scalar_key(void **state)
{
	(void)state;
	assert_errors("hosts:\n  [a, b]: {}\n  c:\n", 1,
		"t.yaml:2:3: keys in hosts must be plain names, not a list");
	assert_errors("hosts:\n  ? {a: 1}\n  : {}\n  c:\n", 1,
		"t.yaml:2:5: keys in hosts must be plain names, not a mapping");
}

static void test_inventory_reports_wrong_types(void **state)
{
	(void)state;
	assert_errors("defaults: [user]\n"
		      "hosts:\n"
		      "  a:\n"
		      "    address: [a, b]\n"
		      "    tags: { x: 1 }\n"
		      "    uses: { x: 1 }\n"
		      "    local: maybe\n"
		      "    build: [target]\n"
		      "  b: [x]\n",
		7, "t.yaml:1:11: defaults must be a mapping, not a list",
		"t.yaml:4:14: address of host 'a' must be a non-empty string, not a list",
		"t.yaml:5:11: tags of host 'a' must be a list, not a mapping",
		"t.yaml:7:12: local of host 'a' must be true or false, not 'maybe'",
		"t.yaml:8:12: build of host 'a' must be local, target, a host of the inventory or "
		"user@address[:port], not a list",
		"t.yaml:9:6: host 'b' must be a mapping, not a list",
		"t.yaml:6:11: uses of host 'a' must be a list, not a mapping");
}

static void test_inventory_reports_null_values(void **state)
{
	(void)state;
	assert_errors("defaults:\n  user:\nhosts:\n  a:\n    address: ~\n    port: null\n"
		      "    uses: [ '' ]\n",
		4, "t.yaml:2:8: defaults.user must be a non-empty string, not an empty value",
		"t.yaml:5:14: address of host 'a' must be a non-empty string, not an empty value",
		"t.yaml:6:11: port of host 'a' must be a whole number from 1 to 65535, not an "
		"empty value",
		"t.yaml:7:13: uses of host 'a' must list non-empty strings, not an empty value");
}

static void test_inventory_takes_services_with_their_own_address(void **state)
{
	struct inventory *inv;

	(void)state;
	inv = load_ok("hosts:\n  a:\n    address: a.lan\n"
		      "    services: { x: { port: 80, address: 10.0.0.1 }, y: 81 }\n");
	assert_int_equal(inv->hosts[0].nservices, 2);
	assert_string_equal(inv->hosts[0].services[0].name, "x");
	assert_int_equal(inv->hosts[0].services[0].port, 80);
	assert_string_equal(inv->hosts[0].services[0].address, "10.0.0.1");
	assert_null(inv->hosts[0].services[1].address);
	inventory_free(inv);
	assert_errors("hosts:\n  a:\n    services:\n      x: { adress: 1 }\n"
		      "      y: { port: 70000 }\n      z: { port: 81, address: 'a b' }\n"
		      "      w: { port: 82, address: [] }\n",
		5, "t.yaml:4:12: unknown key 'adress' in service 'x' of host 'a'; did you mean 'address'?",
		"t.yaml:4:10: service 'x' of host 'a' has no port; expected { port: PORT, address: "
		"ADDRESS, health: { path: PATH } }",
		"t.yaml:5:18: port of service 'y' on host 'a' must be a whole number from 1 to 65535, "
		"not '70000'",
		"t.yaml:6:31: address of service 'z' of host 'a' must be a host name (labels of "
		"letters, digits and '-', not starting or ending with '-'), an IPv4 or an IPv6 "
		"address, not 'a b'",
		"t.yaml:7:31: address of service 'w' of host 'a' must be a non-empty string, not a "
		"list");
}

static void test_inventory_reports_services_given_as_a_list(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n    services: [auth, ntfy]\n  b:\n    services: auth\n", 2,
		"t.yaml:3:15: services of host 'a' must be a mapping of names to ports "
		"({ name: port }), not a list",
		"t.yaml:5:15: services of host 'b' must be a mapping of names to ports "
		"({ name: port }), not a scalar");
}

static void test_inventory_reports_port_out_of_range(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a:\n"
		      "    port: 0\n"
		      "    services: { web: 70000, ssh: 99999999999999999999999, x: -1, y: 0x50, "
		      "z: ' 22', w: 8.0 }\n",
		7, "t.yaml:3:11: port of host 'a' must be a whole number from 1 to 65535, not '0'",
		"t.yaml:4:22: port of service 'web' on host 'a' must be a whole number from 1 to "
		"65535, not '70000'",
		"t.yaml:4:34: port of service 'ssh' on host 'a' must be a whole number from 1 to "
		"65535, not '99999999999999999999999'",
		"t.yaml:4:62: port of service 'x' on host 'a' must be a whole number from 1 to "
		"65535, not '-1'",
		"t.yaml:4:69: port of service 'y' on host 'a' must be a whole number from 1 to "
		"65535, not '0x50'",
		"t.yaml:4:78: port of service 'z' on host 'a' must be a whole number from 1 to "
		"65535, not ' 22'",
		"t.yaml:4:88: port of service 'w' on host 'a' must be a whole number from 1 to "
		"65535, not '8.0'");
	assert_errors("defaults: { parallel: 0, confirm_timeout: 1e9 }\nhosts: { a: }\n", 2,
		"t.yaml:1:23: defaults.parallel must be a whole number from 1 to 1024, not '0'",
		"t.yaml:1:43: defaults.confirm_timeout must be a whole number from 1 to 86400, not "
		"'1e9'");
}

static void test_inventory_reports_duplicate_port_on_one_host(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a:\n"
		      "    services:\n"
		      "      restic: 8000\n"
		      "      minio: 8000\n"
		      "  b:\n"
		      "    services: { restic: 8000 }\n",
		1,
		"t.yaml:5:14: duplicate port 8000 on host 'a': services 'restic' (line 4) and "
		"'minio'");
}

static void test_inventory_reports_unknown_architecture(void **state)
{
	(void)state;
	assert_errors("builders:\n  sparc-linux: b\nhosts:\n  a:\n    arch: x86_64-darwin\n", 2,
		"t.yaml:2:3: unknown architecture 'sparc-linux'; known: x86_64-linux, "
		"aarch64-linux, i686-linux, armv7l-linux, armv6l-linux, riscv64-linux, "
		"powerpc64le-linux",
		"t.yaml:5:11: unknown architecture 'x86_64-darwin'; known: x86_64-linux, "
		"aarch64-linux, i686-linux, armv7l-linux, armv6l-linux, riscv64-linux, "
		"powerpc64le-linux");
}

static void test_inventory_reports_unknown_goal(void **state)
{
	(void)state;
	assert_errors("defaults: { goal: swtich }\nhosts:\n  a: { goal: reboot }\n", 2,
		"t.yaml:1:19: unknown goal 'swtich'; expected switch, boot, test or dry-activate",
		"t.yaml:3:14: unknown goal 'reboot'; expected switch, boot, test or dry-activate");
}

static void test_inventory_reports_invalid_names(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  -bad:\n"
		      "  'a b':\n"
		      "  c:\n"
		      "    tags: [ok, 'no way']\n"
		      "    services: { 'x/y': 1 }\n",
		4,
		"t.yaml:2:3: invalid host name '-bad': use letters, digits, '-', '_' and '.', "
		"not starting with '-' or '.'",
		"t.yaml:3:3: invalid host name 'a b': use letters, digits, '-', '_' and '.', not "
		"starting with '-' or '.'",
		"t.yaml:5:16: invalid tag 'no way' on host 'c': use letters, digits, '-', '_' and "
		"'.', not starting with '-' or '.'",
		"t.yaml:6:17: invalid service name 'x/y' on host 'c': use letters, digits, '-', "
		"'_' and '.', not starting with '-' or '.'");
}

static void test_inventory_reports_flake_and_file_together(void **state)
{
	(void)state;
	assert_errors("defaults: { flake: ., file: f.nix }\nhosts:\n"
		      "  a: { file: a.nix, flake: . }\n",
		2, "t.yaml:1:23: defaults set both 'flake' and 'file'; choose one",
		"t.yaml:3:21: host 'a' sets both 'flake' and 'file'; choose one");
}

static void test_inventory_reports_bad_builders(void **state)
{
	(void)state;
	assert_errors("builders:\n  aarch64-linux: basestr\n  i686-linux: [x]\n"
		      "hosts:\n  basestar:\n  a: { build: nowhere }\n",
		3, "t.yaml:3:15: builder of 'i686-linux' must be a non-empty string, not a list",
		"t.yaml:2:18: builder 'basestr' of 'aarch64-linux': expected local, target, a host "
		"of the inventory or user@address[:port]",
		"t.yaml:6:15: build 'nowhere' of host 'a': expected local, target, a host of the "
		"inventory or user@address[:port]");
}

/* ---- values that reach ssh and nix ---- */

static void test_inventory_accepts_addresses_users_builders_and_attrs(void **state)
{
	struct inventory *inv = load_ok(
		"defaults: { user: deploy }\n"
		"builders:\n"
		"  aarch64-linux: 'nix_2@[fd00::9]:2222'\n"
		"  armv7l-linux: root@fd00::9\n"
		"  i686-linux: 'b.user@10.0.0.9:22'\n"
		"hosts:\n"
		"  a: { address: galactica.bat-boa.ts.net, user: _svc-1.x }\n"
		"  b: { address: 10.0.0.9, attr: packages.x86_64-linux.b }\n"
		"  c: { address: 'fd00::1', attr: 'nixosConfigurations.\"c.example\".config' }\n"
		"  d: { address: 3com.example, build: 'me@d-1.example:22', attr: \"a'b.c-d._e\" }\n"
		"  web.example: { attr: '\"with space, $ and #\".x' }\n"
		"  1st: {}\n"
		"  e: { arch: aarch64-linux }\n");
	const struct inv_host *h;

	(void)state;
	assert_string_equal(inv->hosts[0].user, "_svc-1.x");
	assert_string_equal(inv->hosts[1].user, "deploy");
	assert_string_equal(inv->hosts[2].address, "fd00::1");
	assert_string_equal(inv->hosts[3].builder, "me@d-1.example:22");
	assert_string_equal(inventory_host(inv, "e")->builder, "nix_2@[fd00::9]:2222");
	assert_string_equal(inventory_host(inv, "web.example")->attr, "\"with space, $ and #\".x");
	/* a host whose name is not a Nix identifier builds its own one attribute */
	h = inventory_host(inv, "1st");
	assert_string_equal(h->attr, "nixosConfigurations.\"1st\".config.system.build.toplevel");
	h = inventory_host(inv, "a");
	assert_string_equal(h->attr, "nixosConfigurations.a.config.system.build.toplevel");
	inventory_free(inv);
	inv = load_ok("hosts:\n  web.example: {}\n");
	assert_string_equal(inv->hosts[0].attr,
		"nixosConfigurations.\"web.example\".config.system.build.toplevel");
	inventory_free(inv);
}

#define ADDRESS_MSG                                                                                \
	"must be a host name (labels of letters, digits and '-', not starting or ending with "     \
	"'-'), an IPv4 or an IPv6 address, not "
#define USER_MSG                                                                                   \
	"must be a user name (letters, digits, '_', '.' and '-', starting with a letter or '_', "  \
	"at most 32 characters), not "

/* What ssh would read as an option or a second word, or resolve to nothing. */
static void test_inventory_refuses_addresses_that_are_not_hosts(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a: { address: 'a b' }\n"
		      "  b: { address: -oProxyCommand=x }\n"
		      "  c: { address: 'x;reboot' }\n"
		      "  d: { address: bad-.example }\n"
		      "  e: { address: x..y }\n"
		      "  f: { address: 1.2.3.300 }\n"
		      "  g: { address: 'fe80::1%eth0' }\n"
		      "  h: { address: under_score.example }\n"
		      "  i: { address: "
		      "a234567890123456789012345678901234567890123456789012345678901234.x }\n"
		      "  j: { address: 'example.org.' }\n",
		10, "t.yaml:2:17: address of host 'a' " ADDRESS_MSG "'a b'",
		"t.yaml:3:17: address of host 'b' " ADDRESS_MSG "'-oProxyCommand=x'",
		"t.yaml:4:17: address of host 'c' " ADDRESS_MSG "'x;reboot'",
		"t.yaml:5:17: address of host 'd' " ADDRESS_MSG "'bad-.example'",
		"t.yaml:6:17: address of host 'e' " ADDRESS_MSG "'x..y'",
		"t.yaml:7:17: address of host 'f' " ADDRESS_MSG "'1.2.3.300'",
		"t.yaml:8:17: address of host 'g' " ADDRESS_MSG "'fe80::1%eth0'",
		"t.yaml:9:17: address of host 'h' " ADDRESS_MSG "'under_score.example'",
		"t.yaml:10:17: address of host 'i' " ADDRESS_MSG
		"'a234567890123456789012345678901234567...'",
		"t.yaml:11:17: address of host 'j' " ADDRESS_MSG "'example.org.'");
}

static void test_inventory_refuses_users_that_are_not_user_names(void **state)
{
	(void)state;
	assert_errors("defaults: { user: 'root; reboot' }\n"
		      "hosts:\n"
		      "  a: { user: -oProxyCommand=x }\n"
		      "  b: { user: 'de ploy' }\n"
		      "  c: { user: 1root }\n"
		      "  d: { user: a23456789012345678901234567890123 }\n"
		      "  e: { user: '$(id)' }\n"
		      "  f: { user: a23456789012345678901234567890_2 }\n",
		6, "t.yaml:1:19: defaults.user " USER_MSG "'root; reboot'",
		"t.yaml:3:14: user of host 'a' " USER_MSG "'-oProxyCommand=x'",
		"t.yaml:4:14: user of host 'b' " USER_MSG "'de ploy'",
		"t.yaml:5:14: user of host 'c' " USER_MSG "'1root'",
		"t.yaml:6:14: user of host 'd' " USER_MSG "'a23456789012345678901234567890123'",
		"t.yaml:7:14: user of host 'e' " USER_MSG "'$(id)'");
}

static void test_inventory_refuses_builders_that_ssh_would_misread(void **state)
{
	(void)state;
	assert_errors("builders:\n"
		      "  aarch64-linux: '-oProxyCommand=x@h'\n"
		      "  armv7l-linux: 'root@a b'\n"
		      "hosts:\n"
		      "  a: { build: 'r@h:0' }\n"
		      "  b: { build: 'r@h:99999' }\n"
		      "  c: { build: 'r@h:22x' }\n"
		      "  d: { build: 'r@[fd00::1' }\n"
		      "  e: { build: 'r@[example.org]:22' }\n"
		      "  f: { build: 'r@h@i' }\n"
		      "  g: { build: '@h' }\n"
		      "  h: { build: 'r@-h' }\n"
		      "  i: { build: 'r@h:' }\n",
		11,
		"t.yaml:2:18: builder '-oProxyCommand=x@h' of 'aarch64-linux': the user "
		"'-oProxyCommand=x' is not a user name (letters, digits, '_', '.' and '-', "
		"starting with a letter or '_', at most 32 characters)",
		"t.yaml:3:17: builder 'root@a b' of 'armv7l-linux': the address 'a b' is not a "
		"host "
		"name (labels of letters, digits and '-', not starting or ending with '-'), an "
		"IPv4 "
		"or an IPv6 address",
		"t.yaml:5:15: build 'r@h:0' of host 'a': the port '0' is not a whole number from 1 "
		"to 65535",
		"t.yaml:6:15: build 'r@h:99999' of host 'b': the port '99999' is not a whole "
		"number "
		"from 1 to 65535",
		"t.yaml:7:15: build 'r@h:22x' of host 'c': the port '22x' is not a whole number "
		"from "
		"1 to 65535",
		"t.yaml:8:15: build 'r@[fd00::1' of host 'd': the address '[fd00::1' is not an "
		"IPv6 "
		"address in brackets",
		"t.yaml:9:15: build 'r@[example.org]:22' of host 'e': the address "
		"'[example.org]:22' is not an IPv6 address in brackets",
		"t.yaml:10:15: build 'r@h@i' of host 'f': the address 'h@i' is not a host name "
		"(labels of letters, digits and '-', not starting or ending with '-'), an IPv4 or "
		"an "
		"IPv6 address",
		"t.yaml:11:15: build '@h' of host 'g': the user '' is not a user name (letters, "
		"digits, '_', '.' and '-', starting with a letter or '_', at most 32 characters)",
		"t.yaml:12:15: build 'r@-h' of host 'h': the address '-h' is not a host name "
		"(labels "
		"of letters, digits and '-', not starting or ending with '-'), an IPv4 or an IPv6 "
		"address",
		"t.yaml:13:15: build 'r@h:' of host 'i': the port '' is not a whole number from 1 "
		"to "
		"65535");
}

#define ATTR_MSG "is not a Nix attribute path: "
#define NOT_A_NAME                                                                                 \
	"' is not a name (letters, digits, '_', ''' and '-', not starting with a digit, ''' or "   \
	"'-'); write other names in double quotes"

/* An attribute path is names: nothing in it is Nix code, not even quoted. */
static void test_inventory_refuses_attrs_that_are_not_attribute_paths(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a: { attr: 'x.${builtins.abort \"x\"}' }\n"
		      "  b: { attr: 'x.\"${builtins.abort \"x\"}\"' }\n"
		      "  c: { attr: 'x.\"b\\c\".d' }\n"
		      "  d: { attr: 'x.\"open' }\n"
		      "  e: { attr: 'x..y' }\n"
		      "  f: { attr: .x }\n"
		      "  g: { attr: 'x.' }\n"
		      "  h: { attr: 'x;y' }\n"
		      "  i: { attr: -x }\n"
		      "  j: { attr: 'x.\"q\"y' }\n"
		      "  k: { attr: 'x y' }\n"
		      "  l: { attr: \"x.\\\"a\\tb\\\"\" }\n"
		      "  m: { attr: 9lives }\n",
		13, "t.yaml:2:14: attr of host 'a' " ATTR_MSG "'${builtins" NOT_A_NAME,
		"t.yaml:3:14: attr of host 'b' " ATTR_MSG "the quoted name '\"${builtins.abort \"' "
		"contains '${'; quoted names may not contain '\"', '\\', '${' or control "
		"characters",
		"t.yaml:4:14: attr of host 'c' " ATTR_MSG
		"the quoted name '\"b\\c\"' contains '\\'; "
		"quoted names may not contain '\"', '\\', '${' or control characters",
		"t.yaml:5:14: attr of host 'd' " ATTR_MSG "the quoted name '\"open' has no closing "
		"'\"'",
		"t.yaml:6:14: attr of host 'e' " ATTR_MSG "'x..y' has an empty segment; expected "
		"names or double-quoted strings separated by '.'",
		"t.yaml:7:14: attr of host 'f' " ATTR_MSG
		"'.x' has an empty segment; expected names "
		"or double-quoted strings separated by '.'",
		"t.yaml:8:14: attr of host 'g' " ATTR_MSG
		"'x.' has an empty segment; expected names "
		"or double-quoted strings separated by '.'",
		"t.yaml:9:14: attr of host 'h' " ATTR_MSG "'x;y" NOT_A_NAME,
		"t.yaml:10:14: attr of host 'i' " ATTR_MSG "'-x" NOT_A_NAME,
		"t.yaml:11:14: attr of host 'j' " ATTR_MSG "expected '.' after the quoted name "
		"'\"q\"'",
		"t.yaml:12:14: attr of host 'k' " ATTR_MSG "'x y" NOT_A_NAME,
		"t.yaml:13:14: attr of host 'l' " ATTR_MSG "the quoted name '\"a\tb\"' contains a "
		"control character; quoted names may not contain '\"', '\\', '${' or control "
		"characters",
		"t.yaml:14:14: attr of host 'm' " ATTR_MSG "'9lives" NOT_A_NAME);
}

/* ---- errors: relations ---- */

static void test_inventory_reports_unknown_service_with_a_hint(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a:\n"
		      "    services: { prometheus: 9090 }\n"
		      "  b:\n"
		      "    uses: [promethеus, prometeus, zzz]\n",
		3,
		"t.yaml:5:12: uses 'promethеus' of host 'b': no host provides a service "
		"'promethеus'; did you mean 'prometheus'?",
		"t.yaml:5:24: uses 'prometeus' of host 'b': no host provides a service "
		"'prometeus'; "
		"did you mean 'prometheus'?",
		"t.yaml:5:35: uses 'zzz' of host 'b': no host provides a service 'zzz'");
}

/* A name too long to compare (found by fuzz_inventory): no hint, and no crash. */
static void test_inventory_reports_a_long_unknown_service(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a:\n"
		      "    services: { x: 1 }\n"
		      "  b:\n"
		      "    wants: "
		      "[a-service-name-that-is-far-too-long-to-be-a-typo-of-anything-at-all-x]\n",
		1,
		"t.yaml:5:13: wants "
		"'a-service-name-that-is-far-too-long-to-be-a-typo-of-anything-at-"
		"all-x' of host 'b': no host provides a service "
		"'a-service-name-that-is-far-too-long-"
		"to-be-a-typo-of-anything-at-all-x'");
}

static void test_inventory_reports_ambiguous_service_with_candidates(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  galactica: { services: { restic: 8000 } }\n"
		      "  pegasus: { services: { restic: 8000 } }\n"
		      "  raptor: { services: { restic: 8000 } }\n"
		      "  basestar:\n"
		      "    uses: [restic]\n"
		      "    wants: restic\n",
		2,
		"t.yaml:6:12: ambiguous service 'restic' in uses of host 'basestar': provided by "
		"'galactica', 'pegasus' and 'raptor'; write one as 'galactica/restic'",
		"t.yaml:7:12: ambiguous service 'restic' in wants of host 'basestar': provided by "
		"'galactica', 'pegasus' and 'raptor'; write one as 'galactica/restic'");
}

static void test_inventory_caps_the_candidates_of_an_ambiguous_service(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  a: { services: { x: 1 } }\n"
		      "  b: { services: { x: 1 } }\n"
		      "  c: { services: { x: 1 } }\n"
		      "  d: { services: { x: 1 } }\n"
		      "  e: { services: { x: 1 } }\n"
		      "  f: { services: { x: 1 } }\n"
		      "  g: { services: { x: 1 } }\n"
		      "  h: { uses: x }\n",
		1,
		"t.yaml:9:14: ambiguous service 'x' in uses of host 'h': provided by 'a', 'b', "
		"'c', "
		"'d', 'e' and 2 more; write one as 'a/x'");
}

static void test_inventory_reports_qualified_use_of_unknown_host_or_service(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  galactica: { services: { restic: 8000 } }\n"
		      "  b:\n"
		      "    uses: [galactca/restic, galactica/restc, galactica/nope, /x]\n",
		4,
		"t.yaml:4:12: uses 'galactca/restic' of host 'b': unknown host 'galactca'; did you "
		"mean 'galactica'?",
		"t.yaml:4:29: uses 'galactica/restc' of host 'b': host 'galactica' provides no "
		"service 'restc'; did you mean 'restic'?",
		"t.yaml:4:46: uses 'galactica/nope' of host 'b': host 'galactica' provides no "
		"service 'nope'",
		"t.yaml:4:62: uses '/x' of host 'b': unknown host ''");
}

static void test_inventory_reports_use_of_own_service(void **state)
{
	(void)state;
	assert_errors("hosts:\n  a:\n    services: { x: 1 }\n    uses: [x]\n    wants: [a/x]\n", 2,
		"t.yaml:4:12: host 'a' uses its own service 'x'",
		"t.yaml:5:13: host 'a' wants its own service 'x'");
}

static void test_inventory_reports_unknown_depends_on_host_or_tag(void **state)
{
	(void)state;
	assert_errors("hosts:\n"
		      "  galactica: { tags: [tier1] }\n"
		      "  b:\n"
		      "    depends_on: [galactic, '@tier2', nobody]\n",
		3,
		"t.yaml:4:18: depends_on 'galactic' of host 'b': unknown host 'galactic'; did you "
		"mean 'galactica'?",
		"t.yaml:4:28: depends_on '@tier2' of host 'b': no host has the tag 'tier2'",
		"t.yaml:4:38: depends_on 'nobody' of host 'b': unknown host 'nobody'");
}

static void test_inventory_reports_host_depending_on_itself(void **state)
{
	(void)state;
	assert_errors(
		"hosts:\n  a:\n    depends_on: a\n", 1, "t.yaml:3:17: host 'a' depends on itself");
}

static void test_inventory_reports_every_error_in_a_file(void **state)
{
	(void)state;
	assert_errors("defaults:\n"
		      "  goal: switch\n"
		      "  usr: root\n"
		      "hosts:\n"
		      "  galactica:\n"
		      "    arch: x86_64\n"
		      "    services: { auth: 9091, ntfy: 9091 }\n"
		      "  pegasus:\n"
		      "    port: 70000\n"
		      "    uses: [nfty]\n"
		      "  galactica:\n"
		      "  viper:\n"
		      "    depends_on: [raptor]\n",
		7, "t.yaml:3:3: unknown key 'usr' in defaults; did you mean 'user'?",
		"t.yaml:6:11: unknown architecture 'x86_64'; known: x86_64-linux, aarch64-linux, "
		"i686-linux, armv7l-linux, armv6l-linux, riscv64-linux, powerpc64le-linux",
		"t.yaml:7:35: duplicate port 9091 on host 'galactica': services 'auth' (line 7) "
		"and "
		"'ntfy'",
		"t.yaml:9:11: port of host 'pegasus' must be a whole number from 1 to 65535, not "
		"'70000'",
		"t.yaml:11:3: duplicate host 'galactica' (first at line 5)",
		"t.yaml:10:12: uses 'nfty' of host 'pegasus': no host provides a service 'nfty'",
		"t.yaml:13:18: depends_on 'raptor' of host 'viper': unknown host 'raptor'");
}

static void test_inventory_appends_to_the_callers_errors(void **state)
{
	struct strvec errors = STRVEC_INIT;
	struct inventory *inv = NULL;
	const char *yaml = "hosts: { a: { arch: z } }\n";

	(void)state;
	strvec_push(&errors, "earlier");
	assert_int_equal(inventory_load_buffer(&inv, "t.yaml", yaml, strlen(yaml), &errors), -1);
	assert_int_equal(errors.nr, 2);
	assert_string_equal(errors.v[0], "earlier");
	strvec_release(&errors);
}

static void test_inventory_errors_carry_file_line_column_and_message(void **state)
{
	struct inv_errors errors = INV_ERRORS_INIT;
	struct inventory *inv = NULL;
	const char *yaml = "hosts:\n  a:\n    adress: x\n    services: { p: 70000 }\n";
	char *line;

	(void)state;
	assert_int_equal(
		inventory_load_buffer_errors(&inv, "t.yaml", yaml, strlen(yaml), &errors), -1);
	assert_null(inv);
	assert_int_equal(errors.nr, 2);
	assert_string_equal(errors.v[0].file, "t.yaml");
	assert_int_equal(errors.v[0].line, 3);
	assert_int_equal(errors.v[0].col, 5);
	assert_string_equal(errors.v[0].message, "unknown key 'adress' in host 'a'; did you mean "
						 "'address'?");
	assert_int_equal(errors.v[1].line, 4);
	assert_int_equal(errors.v[1].col, 20);
	/* the text form is the one the strvec loader gives */
	line = inv_error_format(&errors.v[0]);
	assert_string_equal(
		line, "t.yaml:3:5: unknown key 'adress' in host 'a'; did you mean 'address'?");
	free(line);
	inv_errors_release(&errors);

	/* a problem without a position */
	assert_int_equal(inventory_load_errors(&inv, "/nonexistent/c.yaml", &errors), -1);
	assert_int_equal(errors.nr, 1);
	assert_int_equal(errors.v[0].line, 0);
	assert_int_equal(errors.v[0].col, 0);
	line = inv_error_format(&errors.v[0]);
	assert_string_equal(
		line, "/nonexistent/c.yaml: cannot open the inventory: No such file or directory");
	free(line);
	inv_errors_release(&errors);
}

static void test_inventory_from_nix_names_attribute_paths_and_nix_positions(void **state)
{
	const char *value = "{\"hosts\":{\"basestar\":{\"uses\":[\"auth\",\"nfty\"],"
			    "\"services\":{\"gatus\":8090}},\"web.example\":{\"services\":"
			    "{\"auth\":9091},\"adress\":1}}}";
	/* Nix knows where basestar's uses are; web.example's keys it does not */
	const char *pos = "{\"p\":{\"hosts\":null},\"c\":{\"hosts\":{\"p\":{},\"c\":{"
			  "\"basestar\":{\"p\":{\"uses\":{\"file\":\"/f/hosts/basestar.nix\","
			  "\"line\":4,\"column\":3}},\"c\":{\"uses\":{\"l\":[null,null]}}}}}}}";
	struct inv_errors errors = INV_ERRORS_INIT;
	struct inventory *inv = NULL;
	json_t *v = json_loads(value, 0, NULL), *p = json_loads(pos, 0, NULL);
	char *line;

	(void)state;
	assert_non_null(v);
	assert_non_null(p);
	assert_int_equal(inventory_load_json_errors(&inv, ".#constellation", "constellation", v, p,
				 "/f", NULL, &errors),
		-1);
	assert_int_equal(errors.nr, 2);
	line = inv_error_format(&errors.v[0]);
	assert_string_equal(line, ".#constellation: constellation.hosts.\"web.example\".adress: "
				  "unknown key 'adress' in host 'web.example'; did you mean 'address'?");
	free(line);
	line = inv_error_format(&errors.v[1]);
	assert_string_equal(line, "/f/hosts/basestar.nix:4:3: constellation.hosts.basestar.uses[1]: "
				  "uses 'nfty' of host 'basestar': no host provides a service 'nfty'");
	free(line);
	inv_errors_release(&errors);

	/* valid: hosts build from the flake given, relative paths start at its folder */
	json_object_del(json_object_get(json_object_get(v, "hosts"), "web.example"), "adress");
	json_array_remove(json_object_get(json_object_get(json_object_get(v, "hosts"), "basestar"),
				  "uses"),
		1);
	assert_int_equal(inventory_load_json_errors(&inv, "github:o/r#constellation",
				 "constellation", v, p, "/f", "github:o/r", &errors),
		0);
	assert_string_equal(inv->hosts[0].flake, "github:o/r");
	assert_string_equal(inv->dir, "/f");
	assert_int_equal(inv->hosts[0].rels[0].provider, 1);
	inventory_free(inv);
	json_decref(v);
	json_decref(p);
}

/* Every case above was checked as a flake output too, but for what only YAML can say. */
static void test_inventory_cases_have_flake_counterparts(void **state)
{
	(void)state;
	print_message("%zu cases checked as flake outputs too\n", json_cases);
	assert_true(json_cases >= 50);
}

static void test_inventory_loads_a_large_fleet_in_file_order(void **state)
{
	struct buf b = BUF_INIT(0);
	struct inventory *inv;

	(void)state;
	buf_adds(&b, "hosts:\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&b, "  h%d: { services: { s%d: 80 }, uses: [%s] }\n", i, i,
			i ? "h0/s0" : "");
	inv = load_ok(b.data);
	assert_int_equal(inv->nhosts, 20000);
	assert_string_equal(inv->hosts[19999].name, "h19999");
	assert_int_equal(inv->hosts[19999].rels[0].provider, 0);
	assert_int_equal(inventory_host_index(inv, "h12345"), 12345);
	inventory_free(inv);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inventory_loads_the_example),
		cmocka_unit_test(test_inventory_reports_a_missing_file),
		cmocka_unit_test(test_inventory_reads_a_fifo_as_it_maps_a_file),
		cmocka_unit_test(test_inventory_checks_the_size_of_a_file),
		cmocka_unit_test(test_inventory_applies_builtin_defaults),
		cmocka_unit_test(test_inventory_applies_the_defaults_section),
		cmocka_unit_test(test_inventory_host_timeouts_fall_back_to_the_defaults),
		cmocka_unit_test(test_inventory_become_follows_the_user),
		cmocka_unit_test(test_inventory_builders_set_each_hosts_build_mode),
		cmocka_unit_test(test_inventory_loopback_address_means_local),
		cmocka_unit_test(test_inventory_keeps_tags_and_services_in_file_order),
		cmocka_unit_test(test_inventory_reads_health_checks_and_commands),
		cmocka_unit_test(test_inventory_reports_bad_health_checks),
		cmocka_unit_test(test_inventory_resolves_bare_and_qualified_uses),
		cmocka_unit_test(test_inventory_records_wants_as_their_own_kind),
		cmocka_unit_test(test_inventory_depends_on_names_and_tags_but_never_self),
		cmocka_unit_test(test_inventory_follows_aliases),
		cmocka_unit_test(test_inventory_limits_what_aliases_expand_to),
		cmocka_unit_test(test_inventory_host_lookup),
		cmocka_unit_test(test_inventory_reports_yaml_syntax_error_at_its_position),
		cmocka_unit_test(test_inventory_reports_invalid_utf8_at_its_line),
		cmocka_unit_test(test_inventory_reports_undefined_alias),
		cmocka_unit_test(test_inventory_reports_a_second_document),
		cmocka_unit_test(test_inventory_reports_an_empty_file),
		cmocka_unit_test(test_inventory_reports_missing_or_empty_hosts),
		cmocka_unit_test(test_inventory_reports_unknown_key_with_did_you_mean),
		cmocka_unit_test(test_inventory_reports_unknown_key_without_a_far_fetched_hint),
		cmocka_unit_test(test_inventory_reports_key_that_belongs_in_another_section),
		cmocka_unit_test(test_inventory_reports_duplicate_host),
		cmocka_unit_test(test_inventory_reports_duplicate_key),
		cmocka_unit_test(test_inventory_reports_non_scalar_key),
		cmocka_unit_test(test_inventory_reports_wrong_types),
		cmocka_unit_test(test_inventory_reports_null_values),
		cmocka_unit_test(test_inventory_takes_services_with_their_own_address),
		cmocka_unit_test(test_inventory_reports_services_given_as_a_list),
		cmocka_unit_test(test_inventory_reports_port_out_of_range),
		cmocka_unit_test(test_inventory_reports_duplicate_port_on_one_host),
		cmocka_unit_test(test_inventory_reports_unknown_architecture),
		cmocka_unit_test(test_inventory_reports_unknown_goal),
		cmocka_unit_test(test_inventory_reports_invalid_names),
		cmocka_unit_test(test_inventory_reports_flake_and_file_together),
		cmocka_unit_test(test_inventory_reports_bad_builders),
		cmocka_unit_test(test_inventory_accepts_addresses_users_builders_and_attrs),
		cmocka_unit_test(test_inventory_refuses_addresses_that_are_not_hosts),
		cmocka_unit_test(test_inventory_refuses_users_that_are_not_user_names),
		cmocka_unit_test(test_inventory_refuses_builders_that_ssh_would_misread),
		cmocka_unit_test(test_inventory_refuses_attrs_that_are_not_attribute_paths),
		cmocka_unit_test(test_inventory_reports_unknown_service_with_a_hint),
		cmocka_unit_test(test_inventory_reports_a_long_unknown_service),
		cmocka_unit_test(test_inventory_reports_ambiguous_service_with_candidates),
		cmocka_unit_test(test_inventory_caps_the_candidates_of_an_ambiguous_service),
		cmocka_unit_test(test_inventory_reports_qualified_use_of_unknown_host_or_service),
		cmocka_unit_test(test_inventory_reports_use_of_own_service),
		cmocka_unit_test(test_inventory_reports_unknown_depends_on_host_or_tag),
		cmocka_unit_test(test_inventory_reports_host_depending_on_itself),
		cmocka_unit_test(test_inventory_reports_every_error_in_a_file),
		cmocka_unit_test(test_inventory_appends_to_the_callers_errors),
		cmocka_unit_test(test_inventory_errors_carry_file_line_column_and_message),
		cmocka_unit_test(test_inventory_loads_a_large_fleet_in_file_order),
		cmocka_unit_test(test_inventory_from_nix_names_attribute_paths_and_nix_positions),
		cmocka_unit_test(test_inventory_cases_have_flake_counterparts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
