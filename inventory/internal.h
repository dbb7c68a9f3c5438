/*
 * inventory/internal.h: what the files of the inventory module share, and
 * nothing outside it may use (inventory/inventory.h is the API).
 *
 *   inventory.c  the API: reading the file, the error list, the model's lookups
 *   yaml.c       the YAML tree: libyaml's events into the compact node array
 *   json.c       the same tree from a flake output evaluated to JSON, each node
 *                with its attribute path and, where Nix knows it, its position
 *   load.c       loading and validation: the schema walk, every error at its position
 *   values.c     the syntax of values that reach ssh and nix
 *   resolve.c    resolution: defaults, builders, and `uses`, `wants` and
 *                `depends_on` to the hosts that provide them
 *
 * Functions shared between these files carry a double underscore
 * (inventory__x); the few static inline accessors of the tree below have no
 * linkage and keep their short names.
 */
#ifndef CONSTEL_INVENTORY_INTERNAL_H
#define CONSTEL_INVENTORY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/names.h"
#include "inventory/inventory.h"

/* Inventories are small; a file larger than this is a mistake, not a fleet. */
#define INVENTORY_MAX_BYTES (64u << 20)

/* ---- the YAML tree (yaml.c) ---- */

/*
 * The document as a compact tree, built from libyaml's events. libyaml's own
 * document model (yaml_parser_load) costs about 150 bytes and three
 * allocations per node, which made loading a large fleet several times
 * slower than parsing it. Here a node is one array element, scalars live in
 * one string arena and containers list their children in one index array.
 */
struct ynode {
	unsigned char type;  /* yaml_node_type_t */
	unsigned char style; /* yaml_scalar_style_t of a scalar: plain ones can be null */
	bool walked;	     /* a container already walked: this visit is through an alias */
	bool nul;	     /* a scalar holding a NUL byte */
	unsigned line, col;  /* 0-based, as libyaml counts */
	uint32_t len;	     /* bytes of a scalar, items of a list, pairs of a mapping */
	union {
		const char *value; /* a scalar's text, NUL-terminated */
		size_t first;	   /* a container's first child in ydoc.kids; while
				      loading, a scalar's offset in ydoc.strings */
	};
};

/*
 * Where a node of a tree built from JSON (json.c) is: its attribute path
 * (`constellation.hosts.basestar.uses[1]`) and the Nix file, line and
 * column of its definition (file SIZE_MAX: Nix does not know it), offsets
 * into ydoc.strings. Its ynode's line and col are then UINT_MAX, so that
 * pos_of() gives no position of the inventory file.
 */
struct ywhere {
	size_t path, file;
	unsigned line, col; /* 1-based, as Nix counts */
};

struct ydoc {
	struct ynode *nodes;
	struct ywhere *where; /* NULL for YAML; else parallel to nodes */
	size_t nnodes, anodes;
	uint32_t *kids; /* children of containers; a mapping's are key, value, key, ... */
	size_t nkids, akids;
	char *strings;
	size_t nstrings, astrings;
	size_t root; /* SIZE_MAX: the document is empty */
};

/*
 * Parses the first document of data[0..len-1] into *doc. One inventory is
 * one document: a second one is an error, and so is a syntax error in any.
 * On failure returns -1 with every problem appended to `errors` (`path`
 * names the file in them) and leaves *doc empty.
 */
int inventory__ydoc_parse(struct ydoc *doc, const char *path, const char *data, size_t len,
	struct inv_errors *errors);
void inventory__ydoc_release(struct ydoc *doc);

/*
 * Builds *doc from `value`, a flake output evaluated to JSON, named `root`
 * (the attribute path given, e.g. `constellation`) in messages. `pos` is
 * NULL or the positions Nix gave with it, a tree beside the value: for an
 * attribute set {"p":{NAME:{"file","line","column"}|null},"c":{NAME:TREE|null}},
 * for a list {"l":[TREE|null,..]}. Strings become quoted scalars (never
 * null), numbers and booleans plain ones, null YAML's null, so that the
 * schema walk (load.c) treats both trees alike.
 */
void inventory__jdoc_build(struct ydoc *doc, const char *root, json_t *value, json_t *pos);

/* ---- the syntax of values (values.c) ---- */

/* What `address:` (and a builder's address) may be, for messages. */
#define ADDRESS_EXPECTED                                                                           \
	"a host name (labels of letters, digits and '-', not starting or ending with '-'), an "    \
	"IPv4 or an IPv6 address"

/* What a builder may be, for messages. */
#define BUILDER_EXPECTED "local, target, a host of the inventory or user@address[:port]"

/* What `user:` (and a builder's user) may be, for messages. */
#define USER_EXPECTED                                                                              \
	"a user name (letters, digits, '_', '.' and '-', starting with a letter or '_', at most "  \
	"32 characters)"

/* A host, service or tag name: letters, digits, '-', '_', '.'; not starting with '-', '.'. */
bool inventory__valid_name(const char *s);
/* A host name of RFC 1123, an IPv4 or an IPv6 address: ADDRESS_EXPECTED. */
bool inventory__valid_address(const char *s, size_t len);
/* A user name of POSIX's portable set: USER_EXPECTED. */
bool inventory__valid_user(const char *s, size_t len);
/* A Nix identifier: [A-Za-z_][A-Za-z0-9_'-]*. */
bool inventory__valid_identifier(const char *s, size_t len);
/*
 * Why `attr` is not an attribute path, or NULL: segments separated by '.',
 * each a Nix identifier or a double-quoted string without '"', '\', "${"
 * or control characters. Caller frees.
 */
char *inventory__attr_problem(const char *attr);
/*
 * Why `spec` is not user@address[:port], or NULL (an IPv6 address with a
 * port in brackets: root@[fd00::1]:22). Caller frees.
 */
char *inventory__builder_address_problem(const char *spec);

/* ---- one load (load.c) ---- */

/* The state of one load: the YAML document, where errors go, the result. */
struct loader {
	const char *path;
	const char *default_flake; /* what hosts build from when nothing says: "." */
	struct ydoc doc;
	struct inv_errors *errors;
	struct inventory *inv;
	/* the value of each builders: entry, parallel to inv->builders */
	struct ynode **builder_nodes;
	/* the keys of defaults.flake and defaults.file, when set */
	struct ynode *defaults_flake, *defaults_file;
	struct name_index hosts; /* every host by name (resolve.c) */
	/* children that walks through aliases may still visit; see walk_container() */
	size_t alias_budget;
	bool alias_reported;
};

/* What a host's entries are, before relations are resolved. */
struct host_raw {
	struct ynode *uses, *wants, *depends_on, *build;
	struct ynode *flake, *file; /* the keys, for "sets both" */
	bool local_set;		    /* `local:` given: the address does not decide */
	bool substitute_set;	    /* `substitute:` given: the defaults do not decide */
	bool confirm_set, health_set; /* confirm_timeout:, health_timeout: given */
};

/* Inline: every value of the file goes through these. */

/* A scalar's text (NUL-terminated; see has_nul() in the loader). */
static inline const char *scalar(const struct ynode *node)
{
	return node->value;
}

/* The node's position, 1-based. */
static inline struct inv_pos pos_of(const struct ynode *node)
{
	struct inv_pos p = {(int)node->line + 1, (int)node->col + 1};

	return p;
}

/*
 * What a message is about: "KEY", "KEY of host 'H'" or "host 'H'". Kept as
 * parts and only formatted for a message, since a large inventory has
 * hundreds of thousands of values and almost never an error.
 */
struct subject {
	const char *key;
	const char *host;
};

static inline struct subject subj(const char *key, const char *host)
{
	struct subject s = {key, host};

	return s;
}

/* Appends a problem at the position of `node`. */
__attribute__((format(printf, 3, 4))) void inventory__report(
	struct loader *l, const struct ynode *node, const char *fmt, ...);

/* What inventory__each_item() calls for each item. */
typedef void (*item_fn)(struct loader *l, struct ynode *item, void *data);

/*
 * Calls fn for each scalar of the list `node` (what: the subject of its
 * messages); a single scalar counts as a list of one, null as none. Reports
 * every other item and a node that is no list.
 */
void inventory__each_item(
	struct loader *l, struct ynode *node, struct subject what, item_fn fn, void *data);

/* ---- resolution (resolve.c) ---- */

/*
 * After the walk: indexes the hosts, fills every value a host does not set
 * from `defaults:` and the built-in defaults, checks the builders, and
 * resolves each host's `uses`, `wants` and `depends_on` (raws: parallel to
 * inv->hosts) to the hosts that provide them, reporting what does not.
 */
void inventory__resolve(struct loader *l, struct host_raw *raws);

/* ---- problems (inventory.c) ---- */

/* Appends a problem at line:col (1-based; 0 for none) of `file`; takes `message`. */
void inventory__add_error(
	struct inv_errors *e, const char *file, size_t line, size_t col, char *message);
/* The same, about the attribute path `attr` (NULL: none). */
void inventory__add_error_attr(struct inv_errors *e, const char *file, size_t line, size_t col,
	const char *attr, char *message);
__attribute__((format(printf, 5, 6))) void inventory__add_errorf(
	struct inv_errors *e, const char *file, size_t line, size_t col, const char *fmt, ...);

#endif
