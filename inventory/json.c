/*
 * inventory/json.c: the tree of inventory/yaml.c built from a flake output
 * evaluated to JSON, so that one schema walk (load.c) validates both. Each
 * node also gets its attribute path and, where Nix knows it, the position
 * of its definition (struct ywhere).
 */
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/util.h"
#include "inventory/internal.h"

struct jbuilder {
	struct ydoc *doc;
	size_t anodes_where; /* allocated entries of doc->where */
	struct buf path;     /* the attribute path of the node being built */
};

/* Copies s[0..len-1] into the string arena; its offset. */
static size_t jdoc_string(struct ydoc *d, const char *s, size_t len)
{
	size_t at = d->nstrings;

	xgrow((void **)&d->strings, &d->astrings, d->nstrings + len + 1, 1);
	if (len)
		memcpy(d->strings + at, s, len);
	d->strings[at + len] = '\0';
	d->nstrings += len + 1;
	return at;
}

/* A position of Nix ({"file","line","column"}) as a ywhere's; false if it is none. */
static bool nix_pos(struct ydoc *d, json_t *pos, struct ywhere *w)
{
	const char *file = json_string_value(json_object_get(pos, "file"));
	json_int_t line = json_integer_value(json_object_get(pos, "line"));
	json_int_t col = json_integer_value(json_object_get(pos, "column"));

	if (!file || line <= 0 || line > INT_MAX || col <= 0 || col > INT_MAX)
		return false;
	w->file = jdoc_string(d, file, strlen(file));
	w->line = (unsigned)line;
	w->col = (unsigned)col;
	return true;
}

static size_t jdoc_add(struct jbuilder *b, yaml_node_type_t type, const struct ywhere *at)
{
	struct ydoc *d = b->doc;
	struct ynode *n;

	assert(d->nnodes < UINT32_MAX);
	xgrow((void **)&d->nodes, &d->anodes, d->nnodes + 1, sizeof(*d->nodes));
	xgrow((void **)&d->where, &b->anodes_where, d->nnodes + 1, sizeof(*d->where));
	n = &d->nodes[d->nnodes];
	memset(n, 0, sizeof(*n));
	n->type = (unsigned char)type;
	/* no position in an inventory file: pos_of() gives 0:0 */
	n->line = UINT_MAX;
	n->col = UINT_MAX;
	d->where[d->nnodes] = *at;
	d->where[d->nnodes].path = jdoc_string(d, b->path.data, b->path.len);
	return d->nnodes++;
}

static size_t jdoc_scalar(struct jbuilder *b, const struct ywhere *at, const char *s, size_t len,
	yaml_scalar_style_t style)
{
	size_t id = jdoc_add(b, YAML_SCALAR_NODE, at);
	struct ynode *n = &b->doc->nodes[id];

	n->style = (unsigned char)style;
	n->nul = len && memchr(s, '\0', len);
	n->len = (uint32_t)len;
	n->first = jdoc_string(b->doc, s, len);
	return id;
}

/* Reserves `n` consecutive children for the container `id`; the first's index in kids. */
static size_t jdoc_kids(struct ydoc *d, size_t id, size_t n, uint32_t len)
{
	size_t first = d->nkids;

	xgrow((void **)&d->kids, &d->akids, d->nkids + n + 1, sizeof(*d->kids));
	d->nkids += n;
	d->nodes[id].first = first;
	d->nodes[id].len = len;
	return first;
}

/* Appends `.NAME` to the path, quoted when NAME is not a Nix identifier. */
static void path_push_name(struct buf *path, const char *name)
{
	if (inventory__valid_identifier(name, strlen(name)))
		buf_printf(path, "%s%s", path->len ? "." : "", name);
	else
		buf_printf(path, "%s\"%s\"", path->len ? "." : "", name);
}

static size_t jdoc_value(struct jbuilder *b, json_t *v, json_t *pos, const struct ywhere *at)
{
	struct ydoc *d = b->doc;
	char text[32];
	size_t id, first, keep = b->path.len;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return jdoc_scalar(b, at, json_string_value(v), json_string_length(v),
			YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	case JSON_INTEGER:
		snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return jdoc_scalar(b, at, text, strlen(text), YAML_PLAIN_SCALAR_STYLE);
	case JSON_REAL:
		/* never a whole number of the schema: "8.0" is refused as in YAML */
		snprintf(text, sizeof(text), "%.17g", json_real_value(v));
		if (!strpbrk(text, ".eEn"))
			strcat(text, ".0");
		return jdoc_scalar(b, at, text, strlen(text), YAML_PLAIN_SCALAR_STYLE);
	case JSON_TRUE:
	case JSON_FALSE:
		return jdoc_scalar(b, at, json_is_true(v) ? "true" : "false",
			json_is_true(v) ? 4 : 5, YAML_PLAIN_SCALAR_STYLE);
	case JSON_NULL:
		return jdoc_scalar(b, at, "", 0, YAML_PLAIN_SCALAR_STYLE);
	case JSON_ARRAY: {
		json_t *items = json_object_get(pos, "l");

		id = jdoc_add(b, YAML_SEQUENCE_NODE, at);
		first = jdoc_kids(d, id, json_array_size(v), (uint32_t)json_array_size(v));
		for (size_t i = 0; i < json_array_size(v); i++) {
			size_t kid;

			buf_printf(&b->path, "[%zu]", i);
			/* an item has no position of its own: that of the list's definition */
			kid = jdoc_value(b, json_array_get(v, i), json_array_get(items, i), at);
			d->kids[first + i] = (uint32_t)kid;
			b->path.len = keep;
			b->path.data[keep] = '\0';
		}
		return id;
	}
	case JSON_OBJECT: {
		json_t *ps = json_object_get(pos, "p"), *cs = json_object_get(pos, "c");
		const char *name;
		json_t *value;
		size_t i = 0;

		id = jdoc_add(b, YAML_MAPPING_NODE, at);
		first = jdoc_kids(d, id, 2 * json_object_size(v), (uint32_t)json_object_size(v));
		json_object_foreach(v, name, value)
		{
			struct ywhere here = {0, SIZE_MAX, 0, 0};
			size_t key, kid;

			nix_pos(d, json_object_get(ps, name), &here);
			path_push_name(&b->path, name);
			key = jdoc_scalar(b, &here, name, strlen(name),
				YAML_DOUBLE_QUOTED_SCALAR_STYLE);
			kid = jdoc_value(b, value, json_object_get(cs, name), &here);
			d->kids[first + 2 * i] = (uint32_t)key;
			d->kids[first + 2 * i + 1] = (uint32_t)kid;
			b->path.len = keep;
			b->path.data[keep] = '\0';
			i++;
		}
		return id;
	}
	}
	/* jansson has no other type */
	abort();
}

void inventory__jdoc_build(struct ydoc *doc, const char *root, json_t *value, json_t *pos)
{
	struct jbuilder b = {doc, 0, BUF_INIT(0)};
	struct ywhere none = {0, SIZE_MAX, 0, 0};

	memset(doc, 0, sizeof(*doc));
	buf_adds(&b.path, root);
	doc->root = jdoc_value(&b, value, pos, &none);
	for (size_t i = 0; i < doc->nnodes; i++)
		if (doc->nodes[i].type == YAML_SCALAR_NODE)
			doc->nodes[i].value = doc->strings + doc->nodes[i].first;
	buf_release(&b.path);
}
