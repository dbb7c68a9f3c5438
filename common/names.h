/*
 * common/names.h: names looked up in bulk, and the "did you mean" hint for
 * a name that is not there.
 *
 * struct name_index maps names (host names, services, tags, keys of a
 * mapping) to the values added with them: a hash table of the distinct
 * names, each with the chain of its entries in the order they were added,
 * so "which hosts provide 'restic'" is one lookup and a walk. Slots are 8
 * bytes (32 bits of the name's FNV-1a hash and a key number), so the table
 * of a fleet of 100,000 hosts stays small. The index borrows the names: they
 * must outlive it and not change. Values are 32 bits (a host or a position).
 *
 * The hint rule, the one every "did you mean 'X'?" of constel follows: the
 * candidate nearest to the unknown name by edit_distance() (common/util.h),
 * if it is at most a quarter of the name's length away (at least 1) and not
 * as far as the name is long, so that a one-letter name gets no hint; on a
 * tie, the candidate that came first (for an index, the name added first:
 * the first defined). A name or candidate longer than edit_distance()
 * compares (64 bytes) never gets or gives a hint.
 */
#ifndef CONSTEL_NAMES_H
#define CONSTEL_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* The end of an entry chain (name_index.next), and never a valid entry. */
#define NAME_NO_ENTRY UINT32_MAX

/* One distinct name of an index. */
struct name_key {
	const char *name;    /* borrowed */
	uint32_t first;	     /* the value of its first entry */
	uint32_t count;	     /* its number of entries */
	uint32_t head, tail; /* its first and last entry */
};

/*
 * Readable by callers: keys[0..nkeys-1] are the distinct names in the order
 * they were first added; an entry e (from a key's head, then next[e] until
 * NAME_NO_ENTRY) holds value[e].
 */
struct name_index {
	uint64_t *slots; /* hash >> 32 << 32 | key + 1; 0 is empty */
	size_t cap;	 /* a power of two, at least twice the entries */
	struct name_key *keys;
	size_t nkeys;
	uint32_t *next;	 /* per entry: the next entry of the same name, or NAME_NO_ENTRY */
	uint32_t *value; /* per entry: what was added */
	size_t n, max;
};

/*
 * An empty index with room for `max` entries (fewer than NAME_NO_ENTRY). A
 * zeroed struct is an index that finds nothing and may be released.
 */
void name_index_init(struct name_index *x, size_t max);
/* Frees what the index holds (not the names), leaving a zeroed index. */
void name_index_release(struct name_index *x);

/*
 * Adds the entry (name, value); returns the name's key (borrowed, valid
 * until release). Adding more than init's `max` entries is a programmer
 * error. A value must fit 32 bits.
 */
const struct name_key *name_index_add(struct name_index *x, const char *name, size_t value);

/* The key of `name`, or NULL when no entry has it (also in a released index). */
const struct name_key *name_index_find(const struct name_index *x, const char *name);

/*
 * The hint rule as an iterator, for candidates that are not in an array:
 * name_hint_init(), name_hint_offer() each candidate in order, then
 * name_hint_best() is the hint or NULL. The name and the candidates are
 * borrowed; the hint is one of the candidates.
 */
struct name_hint {
	const char *name;
	size_t len, limit;
	const char *best;
	size_t best_d;
};

void name_hint_init(struct name_hint *h, const char *name);
void name_hint_offer(struct name_hint *h, const char *candidate);
const char *name_hint_best(const struct name_hint *h);

/* The hint for `name` among candidates[0..n-1], or NULL (borrowed: a candidate). */
const char *name_suggest(const char *name, const char *const *candidates, size_t n);

/* The hint for `name` among the names of an index, or NULL (borrowed: a key's name). */
const char *name_index_suggest(const struct name_index *x, const char *name);

#endif
