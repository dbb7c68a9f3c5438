/*
 * deploy/evalcache.h: the results of evaluations constel need not make twice.
 *
 * Evaluating a NixOS system costs seconds of CPU and hundreds of MB; what
 * it gives, a derivation and an output path, is a function of the sources
 * evaluated. When those are one commit of a git repository (a clean
 * working tree or an exact --rev) and the flake locks every input (or has
 * none), deploy/eval.c keeps each host's result here and uses it the next
 * time the same commit is evaluated.
 *
 * The key is a JSON object, written canonically (compact, keys sorted):
 *
 *   {"attrPath":[..],"commit":SHA,"constel":VERSION,"flake":REF,
 *    "nix":NIX_VERSION,"system":SYSTEM}
 *
 * (evalcache_key(); an inventory evaluated from Nix has the system
 * "inventory"). An entry is one file, `DIR/eval/SHA1.json`, named by
 * the SHA-1 of the key text and holding the key itself (checked on every
 * read, so two keys never share an entry) and the two store paths:
 * `{"key":{..},"drvPath":..,"outPath":..}`. DIR is cache_dir()
 * (common/util.h), its `eval` folder private (0700, ours, not a symlink);
 * an entry is written to a temporary file of that folder and renamed over
 * the old one, so a reader sees a whole entry or none. Entries nobody read
 * for EVALCACHE_MAX_AGE_DAYS are removed by evalcache_prune().
 *
 * A hit is only a claim: the caller checks that the derivation is still in
 * the store (deploy/eval.c asks nix-store), and evaluates again if not.
 *
 * Threads: after evalcache_open(), evalcache_get() and evalcache_put() may
 * be called from any thread at once (each touches its own files).
 */
#ifndef CONSTEL_EVALCACHE_H
#define CONSTEL_EVALCACHE_H

#include <stdbool.h>

#include <jansson.h>

#define EVALCACHE_MAX_AGE_DAYS 30

struct evalcache {
	char *dir; /* the private `eval` folder */
};

/*
 * Opens (creating it) the cache under `base`, or under cache_dir() when
 * `base` is NULL. 0, or -1 with the error set (then there is no cache).
 */
int evalcache_open(struct evalcache *c, const char *base);
void evalcache_release(struct evalcache *c);

/*
 * The key of one host's evaluation, as canonical JSON text (caller frees).
 * `attr_path` is the attribute path as a JSON array of its segments
 * (borrowed); `flake` the flake reference Nix is given.
 */
char *evalcache_key(const char *commit, const char *flake, json_t *attr_path, const char *system,
	const char *nix_version);

/*
 * The entry of `key`: 0 with *drv_path and *out_path (the caller's);
 * CONSTEL_ENOTFOUND when there is none, it is for another key, or it does
 * not hold two store paths. Reading an entry marks it used (its mtime).
 */
int evalcache_get(const struct evalcache *c, const char *key, char **drv_path, char **out_path);

/* Records the result of `key`, atomically. 0, or -1 with the error set. */
int evalcache_put(
	const struct evalcache *c, const char *key, const char *drv_path, const char *out_path);

/*
 * A value of JSON as the result of `key` (an inventory evaluated from
 * Nix: deploy/eval.h eval_flake_json()), `{"key":{..},"value":..}`, at
 * most EVALCACHE_VALUE_MAX bytes. get: 0 with *value (the caller's), or
 * CONSTEL_ENOTFOUND. put: 0, or -1 with the error set.
 */
#define EVALCACHE_VALUE_MAX (64u << 20)
int evalcache_get_value(const struct evalcache *c, const char *key, json_t **value);
int evalcache_put_value(const struct evalcache *c, const char *key, json_t *value);

/* Removes the entries not read or written for `days` days; how many. */
size_t evalcache_prune(const struct evalcache *c, int days);

#endif
