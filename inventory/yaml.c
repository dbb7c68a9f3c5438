/* inventory/yaml.c: the YAML tree builder, libyaml's events into struct ydoc. */
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/util.h"
#include "inventory/internal.h"

/* Reports libyaml's error with its position (a reader error only has an offset). */
static void report_yaml_error(const char *path, struct inv_errors *errors,
	const yaml_parser_t *parser, const char *data, size_t len)
{
	size_t line = parser->problem_mark.line + 1, col = parser->problem_mark.column + 1;
	const char *problem = parser->problem ? parser->problem : "cannot parse";

	if (parser->error == YAML_READER_ERROR) {
		line = 1;
		col = 1;
		for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
			if (data[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)data[i] & 0xc0) != 0x80) {
				col++;
			}
		}
	}
	if (parser->context)
		inventory__add_errorf(errors, path, line, col, "invalid YAML: %s (%s at line %zu)",
			problem, parser->context, parser->context_mark.line + 1);
	else
		inventory__add_errorf(errors, path, line, col, "invalid YAML: %s", problem);
}

void inventory__ydoc_release(struct ydoc *d)
{
	free(d->nodes);
	free(d->where);
	free(d->kids);
	free(d->strings);
}

/* The state of building a ydoc from events. */
struct ybuilder {
	struct ydoc *doc;
	const char *path; /* for messages */
	struct inv_errors *errors;
	uint32_t *pending; /* children of the open containers, innermost last */
	size_t npending, apending;
	struct yframe {
		size_t node;
		size_t start; /* its first child in pending */
		char *anchor;
	} * open;
	size_t nopen, aopen;
	struct yanchor {
		char *name;
		size_t node;
	} * anchors;
	size_t nanchors, aanchors;
};

static size_t ydoc_add(struct ydoc *d, yaml_node_type_t type, yaml_mark_t mark)
{
	struct ynode *n;

	/* node ids fit 32 bits: an inventory is at most INVENTORY_MAX_BYTES */
	assert(d->nnodes < UINT32_MAX);
	xgrow((void **)&d->nodes, &d->anodes, d->nnodes + 1, sizeof(*d->nodes));
	n = &d->nodes[d->nnodes];
	memset(n, 0, sizeof(*n));
	n->type = (unsigned char)type;
	n->line = mark.line > UINT_MAX ? UINT_MAX : (unsigned)mark.line;
	n->col = mark.column > UINT_MAX ? UINT_MAX : (unsigned)mark.column;
	return d->nnodes++;
}

/* Makes `node` the next child of the innermost open container, or the root. */
static void ybuilder_attach(struct ybuilder *b, size_t node)
{
	if (!b->nopen) {
		b->doc->root = node;
		return;
	}
	xgrow((void **)&b->pending, &b->apending, b->npending + 1, sizeof(*b->pending));
	b->pending[b->npending++] = (uint32_t)node;
}

static void ybuilder_anchor(struct ybuilder *b, char *name, size_t node)
{
	xgrow((void **)&b->anchors, &b->aanchors, b->nanchors + 1, sizeof(*b->anchors));
	b->anchors[b->nanchors].name = name;
	b->anchors[b->nanchors++].node = node;
}

static long ybuilder_find_anchor(const struct ybuilder *b, const char *name)
{
	/* the latest definition wins, as YAML says */
	for (size_t i = b->nanchors; i-- > 0;)
		if (!strcmp(b->anchors[i].name, name))
			return (long)b->anchors[i].node;
	return -1;
}

static void ybuilder_release(struct ybuilder *b)
{
	free(b->pending);
	for (size_t i = 0; i < b->nopen; i++)
		free(b->open[i].anchor);
	free(b->open);
	for (size_t i = 0; i < b->nanchors; i++)
		free(b->anchors[i].name);
	free(b->anchors);
}

/*
 * Adds one event of the first document to the tree. An anchor is defined
 * when its node is complete, so a node can never contain itself (libyaml's
 * loader allows `&a [*a]`). Returns -1 and reports an undefined alias.
 */
static int ybuilder_event(struct ybuilder *b, yaml_event_t *e)
{
	struct ydoc *d = b->doc;
	size_t id;
	long target;

	switch (e->type) {
	case YAML_SCALAR_EVENT: {
		size_t len = e->data.scalar.length;

		id = ydoc_add(d, YAML_SCALAR_NODE, e->start_mark);
		xgrow((void **)&d->strings, &d->astrings, d->nstrings + len + 1, 1);
		if (len)
			memcpy(d->strings + d->nstrings, e->data.scalar.value, len);
		d->strings[d->nstrings + len] = '\0';
		d->nodes[id].style = (unsigned char)e->data.scalar.style;
		d->nodes[id].nul = len && memchr(e->data.scalar.value, '\0', len);
		d->nodes[id].len = (uint32_t)len;
		d->nodes[id].first = d->nstrings;
		d->nstrings += len + 1;
		ybuilder_attach(b, id);
		if (e->data.scalar.anchor)
			ybuilder_anchor(b, xstrdup((const char *)e->data.scalar.anchor), id);
		return 0;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		const yaml_char_t *anchor = e->type == YAML_SEQUENCE_START_EVENT
						    ? e->data.sequence_start.anchor
						    : e->data.mapping_start.anchor;

		id = ydoc_add(d,
			e->type == YAML_SEQUENCE_START_EVENT ? YAML_SEQUENCE_NODE
							     : YAML_MAPPING_NODE,
			e->start_mark);
		ybuilder_attach(b, id);
		xgrow((void **)&b->open, &b->aopen, b->nopen + 1, sizeof(*b->open));
		b->open[b->nopen].node = id;
		b->open[b->nopen].start = b->npending;
		b->open[b->nopen++].anchor = anchor ? xstrdup((const char *)anchor) : NULL;
		return 0;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		struct yframe f = b->open[--b->nopen];
		size_t n = b->npending - f.start;
		struct ynode *node = &d->nodes[f.node];

		xgrow((void **)&d->kids, &d->akids, d->nkids + n + 1, sizeof(*d->kids));
		if (n)
			memcpy(d->kids + d->nkids, b->pending + f.start, n * sizeof(*d->kids));
		node->first = d->nkids;
		node->len = (uint32_t)(node->type == YAML_MAPPING_NODE ? n / 2 : n);
		d->nkids += n;
		b->npending = f.start;
		if (f.anchor)
			ybuilder_anchor(b, f.anchor, f.node);
		return 0;
	}
	case YAML_ALIAS_EVENT:
		target = ybuilder_find_anchor(b, (const char *)e->data.alias.anchor);
		if (target < 0) {
			inventory__add_errorf(b->errors, b->path, e->start_mark.line + 1,
				e->start_mark.column + 1,
				"invalid YAML: found undefined alias '%s'",
				(const char *)e->data.alias.anchor);
			return -1;
		}
		ybuilder_attach(b, (size_t)target);
		return 0;
	default:
		return 0;
	}
}

int inventory__ydoc_parse(
	struct ydoc *doc, const char *path, const char *data, size_t len, struct inv_errors *errors)
{
	yaml_parser_t parser;
	yaml_event_t e;
	struct ybuilder b = {0};
	int ndocs = 0;
	yaml_mark_t second = {0, 0, 0};
	bool done = false;
	int ret = -1;

	memset(doc, 0, sizeof(*doc));
	doc->root = SIZE_MAX;
	b.doc = doc;
	b.path = path;
	b.errors = errors;
	/*
	 * Room for what a typical file makes (a node per 6 bytes, scalars
	 * about as long as the file), so that the arrays are not copied as
	 * they grow; only the pages written are ever touched.
	 */
	xgrow((void **)&doc->nodes, &doc->anodes, len / 6 + 16, sizeof(*doc->nodes));
	xgrow((void **)&doc->kids, &doc->akids, len / 6 + 16, sizeof(*doc->kids));
	xgrow((void **)&doc->strings, &doc->astrings, len + 16, 1);
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &e)) {
			report_yaml_error(path, errors, &parser, data, len);
			goto out;
		}
		done = e.type == YAML_STREAM_END_EVENT;
		if (e.type == YAML_DOCUMENT_START_EVENT && ++ndocs == 2)
			second = e.start_mark;
		/* later documents are parsed for syntax errors only */
		if (ndocs == 1 && ybuilder_event(&b, &e) < 0) {
			yaml_event_delete(&e);
			goto out;
		}
		yaml_event_delete(&e);
	}
	if (ndocs > 1) {
		inventory__add_errorf(errors, path, second.line + 1, second.column + 1,
			"a second YAML document; the inventory must be one document");
		goto out;
	}
	for (size_t i = 0; i < doc->nnodes; i++)
		if (doc->nodes[i].type == YAML_SCALAR_NODE)
			doc->nodes[i].value = doc->strings + doc->nodes[i].first;
	ret = 0;
out:
	if (ret < 0) {
		inventory__ydoc_release(doc);
		memset(doc, 0, sizeof(*doc));
	}
	ybuilder_release(&b);
	yaml_parser_delete(&parser);
	return ret;
}
