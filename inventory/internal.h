/*
 * inventory/internal.h: what the files of the inventory module share, and
 * nothing outside it may use (inventory/inventory.h is the API).
 *
 *   inventory.c  the API: reading the file, the error list, the model's lookups
 *   yaml.c       the YAML tree: libyaml's events into the compact node array
 *   values.c     the syntax of values that reach ssh and nix
 *
 * Functions shared between these files carry a double underscore
 * (inventory__x).
 */
#ifndef CONSTEL_INVENTORY_INTERNAL_H
#define CONSTEL_INVENTORY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct ydoc {
	struct ynode *nodes;
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

/* ---- problems (inventory.c) ---- */

/* Appends a problem at line:col (1-based; 0 for none) of `file`; takes `message`. */
void inventory__add_error(
	struct inv_errors *e, const char *file, size_t line, size_t col, char *message);
__attribute__((format(printf, 5, 6))) void inventory__add_errorf(
	struct inv_errors *e, const char *file, size_t line, size_t col, const char *fmt, ...);

#endif
