/*
 * inventory/inventory.h: the fleet model and its loader.
 *
 * inventory_load() reads a constellation.yaml (docs/inventory.md is the
 * reference of the format), validates all of it and resolves every `uses`,
 * `wants` and `depends_on` entry to the host that provides it. It reports
 * every problem it finds, not only the first, each with its position
 * (struct inv_error; as text, one line `FILE:LINE:COLUMN: message`); when
 * there is any, no inventory is returned.
 *
 * The model is plain data: after loading, every string is owned by the
 * inventory and freed by inventory_free() (most point into one copy of the
 * file's scalars, and several fields may share one string: never free or
 * change one). Hosts keep the order of the
 * file, so a host's index is stable for the whole run (the graph and the
 * runner use indices). Values the host does not set are filled from
 * `defaults:` and then from the built-in defaults, so a consumer never
 * has to look at two places.
 */
#ifndef CONSTEL_INVENTORY_H
#define CONSTEL_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/util.h"

/* A position in the inventory file; 1-based, as editors count. */
struct inv_pos {
	int line;
	int col;
};

struct inv_service {
	char *name;
	int port;
	char *address; /* where other hosts reach it (`{ port, address }`); NULL: the host's */
	struct inv_pos pos;
	/* `health: { path, status }`: an HTTP GET made from the host; NULL: none */
	char *health_path;
	int health_status; /* the status it must answer (default 200) */
};

enum inv_rel_kind {
	INV_USES,	/* orders: the provider goes first */
	INV_WANTS,	/* recorded and drawn, does not order */
	INV_DEPENDS_ON, /* plain host-level ordering */
};

/*
 * One resolved relation of a host to a provider host. A `depends_on: [@tag]`
 * entry becomes one relation per host carrying the tag.
 */
struct inv_relation {
	char *text;    /* the entry as written: "auth", "galactica/restic", "@tier1" */
	char *service; /* the service used; NULL for depends_on */
	struct inv_pos pos;
	uint32_t provider; /* index into inventory.hosts (32 bits: 32 bytes a relation) */
	enum inv_rel_kind kind;
};

enum inv_build {
	INV_BUILD_LOCAL,   /* on this machine */
	INV_BUILD_TARGET,  /* on the host itself */
	INV_BUILD_BUILDER, /* on `builder`: the host's `build:`, else its arch's `builders:` */
};

struct inv_host {
	char *name;
	struct inv_pos pos;
	char *address; /* never NULL: defaults to the name */
	char *user;    /* NULL: from ssh config, else root */
	int port;      /* 0: from ssh config, else 22 */
	char *arch;
	struct strvec tags;
	struct inv_service *services;
	size_t nservices;
	struct inv_relation *rels;
	size_t nrels;
	char *attr; /* the attribute path built for the host (docs/inventory.md); never NULL */
	enum inv_build build;
	char *builder; /* INV_BUILD_BUILDER only: an inventory host or user@address[:port] */
	char *flake;   /* exactly one of flake and file is set */
	char *file;
	char *goal;
	bool local; /* constel runs on this host: no SSH (`local:`, else a loopback address) */
	/*
	 * How host commands that need root become root: a command line put
	 * before them ("sudo -n --", "doas -n --", or the inventory's own), or
	 * NULL: as the login user (root). docs/become.md.
	 */
	char *become;
	struct strvec checks;	    /* `check:` commands run on the host; exit 0 passes */
	struct strvec local_checks; /* `local_check:` commands run where constel runs */
	bool substitute; /* copies: the host fetches what it can from its own substituters first */
	long confirm_timeout; /* the host's, else the defaults' */
	long health_timeout;
};

struct inv_defaults {
	char *user;
	char *goal;
	char *flake;
	char *file;
	char *ssh_config;
	char *become;	   /* as written: sudo, doas, none or a command line; NULL: by the user */
	char *signing_key; /* a Nix secret key file: what is copied is signed with it */
	bool substitute;   /* `substitute:` (default true) */
	char *cache;	   /* a binary cache every built closure is pushed to (`nix copy --to`), or NULL */
	long parallel;
	long confirm_timeout;
	long health_timeout;
	long activation_timeout;
	long connect_timeout;
};

struct inv_builder {
	char *arch;
	char *spec; /* a host of the inventory or user@address[:port] */
};

struct inventory {
	char *path; /* as given */
	char *dir;  /* directory of the file: relative flake/file paths start here */
	struct inv_defaults defaults;
	struct inv_builder *builders;
	size_t nbuilders;
	struct inv_host *hosts;
	size_t nhosts;
	char *text;		   /* private: the file's scalars, which most strings point into */
	struct inv_relation *rels; /* private: all hosts' relations, one array */
	struct arena pool;	   /* private: the strings made while loading */
};

/*
 * One problem of an inventory: the file, the 1-based line and column (both
 * 0 when the problem has no position, e.g. a file that cannot be opened),
 * and the message (one line, without the position). For an inventory from
 * Nix, `file` is the Nix file (when Nix knows where the value was defined,
 * else the flake reference and attribute given) and `attr` the attribute
 * path of the value (`constellation.hosts.basestar.uses[1]`).
 */
struct inv_error {
	char *file;
	int line;
	int col;
	char *attr; /* an inventory from Nix: the attribute path at fault; else NULL */
	char *message;
};

/* A list of problems; owns its strings. */
struct inv_errors {
	struct inv_error *v;
	size_t nr, alloc;
};

#define INV_ERRORS_INIT                                                                            \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void inv_errors_release(struct inv_errors *e);

/*
 * Appends a problem of `file` without a position (e.g. it cannot be
 * evaluated), about the attribute path `attr` (NULL: none).
 */
__attribute__((format(printf, 4, 5))) void inv_errors_add(
	struct inv_errors *e, const char *file, const char *attr, const char *fmt, ...);

/*
 * The problem as one line, "FILE:LINE:COL: message" (or "FILE: message";
 * with an attribute path, "FILE:LINE:COL: ATTR: message"); caller frees.
 */
char *inv_error_format(const struct inv_error *e);

/*
 * Loads and validates `path`. On success returns 0 and hands a new inventory
 * to *out. On failure returns -1 and appends every problem to `errors`;
 * *out is left NULL.
 */
int inventory_load_errors(struct inventory **out, const char *path, struct inv_errors *errors);

/* Like inventory_load_errors, from a buffer; `path` is only used in messages. */
int inventory_load_buffer_errors(struct inventory **out, const char *path, const char *data,
	size_t len, struct inv_errors *errors);

/*
 * Validates an inventory evaluated from Nix (`nix eval --json` of a flake
 * output such as `.#constellation`): the same schema, the same checks and
 * messages as the YAML file. `name` is what was given (`.#constellation`),
 * `root` the attribute path in it (`constellation`), the start of every
 * error's attribute path; `pos` the positions Nix knows, or NULL (see
 * inventory__jdoc_build() in internal.h for their shape). `dir` is where
 * relative `flake` and `file` paths start; `flake` what hosts build from
 * when the inventory says nothing (the flake itself). Both borrowed.
 */
int inventory_load_json_errors(struct inventory **out, const char *name, const char *root,
	json_t *value, json_t *pos, const char *dir, const char *flake,
	struct inv_errors *errors);

/* The same, with each problem appended to `errors` as a line (inv_error_format). */
int inventory_load(struct inventory **out, const char *path, struct strvec *errors);
int inventory_load_buffer(struct inventory **out, const char *path, const char *data, size_t len,
	struct strvec *errors);

void inventory_free(struct inventory *inv);

/* The host named `name`, or NULL. */
struct inv_host *inventory_host(const struct inventory *inv, const char *name);

/* Index of the host named `name`, or -1. */
long inventory_host_index(const struct inventory *inv, const char *name);

/* The builder spec for an architecture, or NULL for "build locally". */
const char *inventory_builder(const struct inventory *inv, const char *arch);

/* Whether constel knows the architecture. */
bool inventory_arch_known(const char *arch);

/*
 * The activation goals, NULL-terminated: switch, boot, test, dry-activate.
 * The one list both the inventory's `goal:` and the command line check.
 */
extern const char *const inventory_goals[];

const char *inv_rel_kind_name(enum inv_rel_kind kind);

#endif
