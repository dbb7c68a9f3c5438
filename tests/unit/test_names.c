/* common/names.c: the name index and the hint rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/names.h"
#include "common/util.h"

/* The values of a name's entries, in the order of its chain, as "1,3". */
static char *chain(const struct name_index *x, const struct name_key *k)
{
	struct buf b = BUF_INIT(0);

	for (uint32_t e = k->head; e != NAME_NO_ENTRY; e = x->next[e])
		buf_printf(&b, "%s%u", e == k->head ? "" : ",", x->value[e]);
	return buf_detach(&b);
}

static void test_names_index_keeps_each_names_entries_in_order(void **state)
{
	struct name_index x;
	const struct name_key *k;
	char *c;

	(void)state;
	name_index_init(&x, 5);
	k = name_index_add(&x, "restic", 1);
	assert_int_equal(k->count, 1);
	name_index_add(&x, "auth", 2);
	name_index_add(&x, "restic", 3);
	k = name_index_add(&x, "restic", 4);
	assert_int_equal(k->count, 3);
	name_index_add(&x, "ntfy", 5);

	k = name_index_find(&x, "restic");
	assert_non_null(k);
	assert_string_equal(k->name, "restic");
	assert_int_equal(k->first, 1);
	assert_int_equal(k->count, 3);
	c = chain(&x, k);
	assert_string_equal(c, "1,3,4");
	free(c);
	k = name_index_find(&x, "auth");
	assert_non_null(k);
	assert_int_equal(k->first, 2);
	assert_int_equal(k->count, 1);
	assert_null(name_index_find(&x, "Restic"));
	assert_null(name_index_find(&x, ""));
	/* the distinct names, in the order they came */
	assert_int_equal(x.nkeys, 3);
	assert_string_equal(x.keys[0].name, "restic");
	assert_string_equal(x.keys[1].name, "auth");
	assert_string_equal(x.keys[2].name, "ntfy");
	name_index_release(&x);
	/* a released (or never initialised) index finds nothing */
	assert_null(name_index_find(&x, "restic"));
}

static void test_names_index_finds_every_name_of_a_large_fleet(void **state)
{
	enum { N = 20000 };
	struct name_index x;
	char(*names)[16] = xmalloc(N * sizeof(*names));
	char other[16];

	(void)state;
	name_index_init(&x, N);
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "h%06zu", i);
		assert_int_equal(name_index_add(&x, names[i], i)->count, 1);
	}
	assert_int_equal(x.nkeys, N);
	assert_true(x.cap >= 2 * N);
	for (size_t i = 0; i < N; i++) {
		const struct name_key *k;

		/* a copy: names are compared, not their pointers */
		snprintf(other, sizeof(other), "h%06zu", i);
		k = name_index_find(&x, other);
		assert_non_null(k);
		assert_int_equal(k->first, i);
		snprintf(other, sizeof(other), "h%06zu", i + N);
		assert_null(name_index_find(&x, other));
	}
	name_index_release(&x);
	free(names);
}

static void test_names_hint_allows_a_quarter_of_the_length(void **state)
{
	const char *const hosts[] = {"galactica", "pegasus", "basestar", "viper"};
	const char *const keys[] = {"address", "services", "depends_on", "restic"};
	const char *const long_names[] = {"observability-collector"};

	(void)state;
	/* 8 letters: 2 edits */
	assert_string_equal(name_suggest("galactca", hosts, 4), "galactica");
	assert_string_equal(name_suggest("gallactca", hosts, 4), "galactica");
	assert_null(name_suggest("galxctxx", hosts, 4));
	/* 4 to 7 letters: 1 edit */
	assert_string_equal(name_suggest("vipr", hosts, 4), "viper");
	assert_string_equal(name_suggest("restc", keys, 4), "restic");
	assert_null(name_suggest("vpr", hosts, 4));
	assert_null(name_suggest("pgasu", hosts, 4));
	/* 2 or 3 letters: 1 edit; 1 letter: none, every name is one edit from another */
	assert_string_equal(name_suggest("ab", (const char *const[]){"ax"}, 1), "ax");
	assert_null(name_suggest("a", (const char *const[]){"b"}, 1));
	assert_null(name_suggest("", (const char *const[]){"b"}, 1));
	/* longer names, more edits: 23 letters, 5 */
	assert_string_equal(
		name_suggest("observability-colector", long_names, 1), "observability-collector");
	assert_string_equal(
		name_suggest("ebservebilyty-cellectar", long_names, 1), "observability-collector");
	assert_null(name_suggest("ebservebilyty-cellyctyr", long_names, 1));
	/* deletions make the name shorter, and so the limit smaller: 20 letters, 3 */
	assert_string_equal(
		name_suggest("obsrvability-colectr", long_names, 1), "observability-collector");
	assert_null(name_suggest("obsrvbilty-colctr", long_names, 1));
	assert_string_equal(name_suggest("adress", keys, 4), "address");
	assert_string_equal(name_suggest("depends-on", keys, 4), "depends_on");
	assert_null(name_suggest("colour", keys, 4));
	assert_null(name_suggest("x", keys, 0));
}

static void test_names_hint_ties_go_to_the_first_candidate(void **state)
{
	const char *const a[] = {"raptor1", "raptor2"};
	const char *const b[] = {"raptor2", "raptor1"};
	struct name_index x;

	(void)state;
	assert_string_equal(name_suggest("raptor", a, 2), "raptor1");
	assert_string_equal(name_suggest("raptor", b, 2), "raptor2");
	/* a nearer candidate after the first still wins */
	assert_string_equal(
		name_suggest("raptor2x", (const char *const[]){"raptor1x", "raptor2x"}, 2),
		"raptor2x");
	/* an index: the name added first */
	name_index_init(&x, 3);
	name_index_add(&x, "raptor2", 0);
	name_index_add(&x, "raptor1", 1);
	name_index_add(&x, "raptor2", 2);
	assert_string_equal(name_index_suggest(&x, "raptor"), "raptor2");
	assert_null(name_index_suggest(&x, "cylon"));
	name_index_release(&x);
}

static void test_names_hint_ignores_names_too_long_to_compare(void **state)
{
	char name[80], cand[80];

	(void)state;
	memset(name, 'a', 70);
	name[70] = '\0';
	memcpy(cand, name, sizeof(name));
	cand[69] = 'b';
	assert_null(name_suggest(name, (const char *const[]){cand}, 1));
	assert_null(name_suggest("aaaa", (const char *const[]){cand}, 1));
}

static void test_names_hint_iterator_matches_the_array_form(void **state)
{
	const char *const c[] = {"ntfy", "auth", "gatus", "restic", "resti"};
	struct name_hint h;

	(void)state;
	name_hint_init(&h, "restik");
	assert_null(name_hint_best(&h));
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		name_hint_offer(&h, c[i]);
	assert_string_equal(name_hint_best(&h), "restic");
	assert_string_equal(name_suggest("restik", c, ARRAY_SIZE(c)), "restic");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_index_keeps_each_names_entries_in_order),
		cmocka_unit_test(test_names_index_finds_every_name_of_a_large_fleet),
		cmocka_unit_test(test_names_hint_allows_a_quarter_of_the_length),
		cmocka_unit_test(test_names_hint_ties_go_to_the_first_candidate),
		cmocka_unit_test(test_names_hint_ignores_names_too_long_to_compare),
		cmocka_unit_test(test_names_hint_iterator_matches_the_array_form),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
