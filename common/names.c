/* common/names.c: the name index and the hint rule (common/names.h). */
#include "common/names.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* FNV-1a: names only need to spread, not to resist anyone. */
static uint64_t name_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void name_index_init(struct name_index *x, size_t max)
{
	assert(max < NAME_NO_ENTRY);
	x->cap = 16;
	while (x->cap < 2 * max)
		x->cap *= 2;
	x->slots = xcalloc(x->cap, sizeof(*x->slots));
	x->keys = xmalloc((max + 1) * sizeof(*x->keys));
	x->next = xmalloc((max + 1) * sizeof(*x->next));
	x->value = xmalloc((max + 1) * sizeof(*x->value));
	x->nkeys = x->n = 0;
	x->max = max;
}

void name_index_release(struct name_index *x)
{
	free(x->slots);
	free(x->keys);
	free(x->next);
	free(x->value);
	memset(x, 0, sizeof(*x));
}

/* The slot of `name`, or the empty slot where it would go. */
static uint64_t *index_slot(const struct name_index *x, const char *name, uint64_t h)
{
	uint64_t tag = h >> 32 << 32;
	size_t i = (size_t)h & (x->cap - 1);

	for (;; i = (i + 1) & (x->cap - 1)) {
		uint64_t s = x->slots[i];

		if (!s || ((s >> 32 << 32) == tag && !strcmp(x->keys[(uint32_t)s - 1].name, name)))
			return &x->slots[i];
	}
}

const struct name_key *name_index_add(struct name_index *x, const char *name, size_t value)
{
	uint64_t h = name_hash(name), *slot;
	struct name_key *k;
	uint32_t e;

	assert(x->slots && x->n < x->max && value <= UINT32_MAX);
	slot = index_slot(x, name, h);
	e = (uint32_t)x->n++;
	if (!*slot) {
		k = &x->keys[x->nkeys++];
		*slot = h >> 32 << 32 | x->nkeys;
		k->name = name;
		k->first = (uint32_t)value;
		k->count = 0;
		k->head = e;
	} else {
		k = &x->keys[(uint32_t)*slot - 1];
		x->next[k->tail] = e;
	}
	k->tail = e;
	k->count++;
	x->next[e] = NAME_NO_ENTRY;
	x->value[e] = (uint32_t)value;
	return k;
}

const struct name_key *name_index_find(const struct name_index *x, const char *name)
{
	uint64_t s;

	if (!x->slots)
		return NULL;
	s = *index_slot(x, name, name_hash(name));
	return s ? &x->keys[(uint32_t)s - 1] : NULL;
}

/* What edit_distance() compares; longer strings are SIZE_MAX apart. */
#define HINT_MAX_LEN 64

void name_hint_init(struct name_hint *h, const char *name)
{
	h->name = name;
	h->len = strlen(name);
	h->limit = h->len / 4 ? h->len / 4 : 1;
	h->best = NULL;
	h->best_d = SIZE_MAX;
}

void name_hint_offer(struct name_hint *h, const char *candidate)
{
	size_t len = strlen(candidate), d;

	/*
	 * Two names further apart in length than the limit are further apart
	 * than the limit: no need to compare them (a fleet may offer 100,000).
	 */
	if (h->len > HINT_MAX_LEN || len > HINT_MAX_LEN ||
		(len > h->len ? len - h->len : h->len - len) > h->limit)
		return;
	d = edit_distance(h->name, candidate);
	/* strictly nearer: a tie keeps the candidate offered first */
	if (d < h->best_d) {
		h->best_d = d;
		h->best = candidate;
	}
}

const char *name_hint_best(const struct name_hint *h)
{
	return h->best && h->best_d <= h->limit && h->best_d < h->len ? h->best : NULL;
}

const char *name_suggest(const char *name, const char *const *candidates, size_t n)
{
	struct name_hint h;

	name_hint_init(&h, name);
	for (size_t i = 0; i < n; i++)
		name_hint_offer(&h, candidates[i]);
	return name_hint_best(&h);
}

const char *name_index_suggest(const struct name_index *x, const char *name)
{
	struct name_hint h;

	name_hint_init(&h, name);
	for (size_t i = 0; i < x->nkeys; i++)
		name_hint_offer(&h, x->keys[i].name);
	return name_hint_best(&h);
}
