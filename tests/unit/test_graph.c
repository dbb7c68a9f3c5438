/* Unit tests for graph/graph.h: cycles, waves, order, selection, ready queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "graph/graph.h"

static const char *const ABC[] = {"a", "b", "c", "d", "e", "f", "g", "h"};

/* a graph of the first n of ABC */
static struct graph *abc(size_t n)
{
	assert_true(n <= ARRAY_SIZE(ABC));
	return graph_new(n, ABC);
}

static size_t idx(const struct graph *g, const char *name)
{
	size_t h = SIZE_MAX;

	assert_int_equal(graph_find(g, name, &h), 0);
	return h;
}

/* `consumer` uses `provider`, labelled as the inventory loader would. */
static void dep(struct graph *g, const char *consumer, const char *provider)
{
	char label[128];

	snprintf(label, sizeof(label), "%s uses %s at c.yaml:1:1", consumer, provider);
	graph_add_edge(g, idx(g, consumer), idx(g, provider), label);
}

static void test_graph_accepts_acyclic_diamonds(void **state)
{
	struct graph *g = abc(7);
	char *msg = (char *)"sentinel";

	(void)state;
	/* a -> {b, c} -> d, and d -> {e, f} -> g, plus a shortcut a -> g */
	dep(g, "a", "b");
	dep(g, "a", "c");
	dep(g, "b", "d");
	dep(g, "c", "d");
	dep(g, "d", "e");
	dep(g, "d", "f");
	dep(g, "e", "g");
	dep(g, "f", "g");
	dep(g, "a", "g");
	assert_int_equal(graph_check_cycles(g, &msg), 0);
	assert_null(msg);
	graph_free(g);
}

static void test_graph_reports_two_cycle_path(void **state)
{
	struct graph *g = abc(2);
	char *msg = NULL;

	(void)state;
	graph_add_edge(g, 0, 1, "uses auth at c.yaml:4:9");
	graph_add_edge(g, 1, 0, "uses ntfy at c.yaml:9:9");
	assert_int_equal(graph_check_cycles(g, &msg), -1);
	assert_string_equal(msg, "dependency cycle: a → b → a\n"
				 "  a → b: uses auth at c.yaml:4:9\n"
				 "  b → a: uses ntfy at c.yaml:9:9");
	assert_string_equal(error_last(), "dependency cycle: a → b → a");
	free(msg);
	graph_free(g);
}

static void test_graph_reports_long_cycle_path(void **state)
{
	struct graph *g = abc(6);
	char *msg = NULL;

	(void)state;
	/* a leads into the cycle b -> c -> d -> e -> b; f hangs off d */
	dep(g, "a", "c");
	dep(g, "c", "d");
	dep(g, "d", "f");
	dep(g, "d", "e");
	dep(g, "e", "b");
	dep(g, "b", "c");
	assert_int_equal(graph_check_cycles(g, &msg), -1);
	/* listed from its lowest host, b, though the search entered at c */
	assert_string_equal(msg, "dependency cycle: b → c → d → e → b\n"
				 "  b → c: b uses c at c.yaml:1:1\n"
				 "  c → d: c uses d at c.yaml:1:1\n"
				 "  d → e: d uses e at c.yaml:1:1\n"
				 "  e → b: e uses b at c.yaml:1:1");
	free(msg);
	graph_free(g);
}

static void test_graph_reports_self_loop(void **state)
{
	struct graph *g = abc(3);
	char *msg = NULL;

	(void)state;
	dep(g, "a", "b");
	graph_add_edge(g, 2, 2, "depends_on @tier1 at c.yaml:7:3");
	assert_int_equal(graph_check_cycles(g, &msg), -1);
	assert_string_equal(msg, "dependency cycle: c → c\n"
				 "  c → c: depends_on @tier1 at c.yaml:7:3");
	free(msg);
	graph_free(g);
}

static void test_graph_finds_cycle_unreachable_from_first_host(void **state)
{
	struct graph *g = abc(5);
	char *msg = NULL;

	(void)state;
	dep(g, "a", "b");
	dep(g, "d", "e");
	dep(g, "e", "c");
	dep(g, "c", "d");
	assert_int_equal(graph_check_cycles(g, &msg), -1);
	assert_non_null(msg);
	assert_non_null(strstr(msg, "dependency cycle: c → d → e → c\n"));
	free(msg);
	/* msg_out is optional; the summary still reaches the error slot */
	error_clear();
	assert_int_equal(graph_check_cycles(g, NULL), -1);
	assert_string_equal(error_last(), "dependency cycle: c → d → e → c");
	graph_free(g);
}

/* Duplicates are found however the edges of different consumers interleave. */
static void test_graph_drops_duplicate_edges_added_out_of_turn(void **state)
{
	struct graph *g = abc(4);
	size_t n;

	(void)state;
	graph_add_edge(g, 0, 1, NULL);
	graph_add_edge(g, 0, 2, NULL);
	graph_add_edge(g, 3, 1, NULL);
	graph_add_edge(g, 3, 2, NULL);
	graph_add_edge(g, 0, 1, NULL); /* back to consumer 0: its marks were overwritten */
	graph_add_edge(g, 0, 2, NULL);
	graph_add_edge(g, 3, 2, NULL);
	graph_add_edge(g, 0, 3, NULL);
	graph_providers(g, 0, &n);
	assert_int_equal(n, 3);
	graph_providers(g, 3, &n);
	assert_int_equal(n, 2);
	graph_consumers(g, 1, &n);
	assert_int_equal(n, 2);
	graph_consumers(g, 2, &n);
	assert_int_equal(n, 2);
	graph_free(g);
}

static void test_graph_keeps_first_label_of_duplicate_edge(void **state)
{
	struct graph *g = abc(2);
	const struct graph_dep *d;
	size_t n;
	char *msg = NULL;

	(void)state;
	graph_add_edge(g, 0, 1, "first");
	graph_add_edge(g, 0, 1, "second");
	graph_add_edge(g, 1, 0, "back");
	d = graph_providers(g, 0, &n);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].host, 1);
	assert_string_equal(d[0].label, "first");
	d = graph_consumers(g, 1, &n);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].host, 0);
	assert_string_equal(d[0].label, "first");
	assert_int_equal(graph_check_cycles(g, &msg), -1);
	assert_string_equal(msg, "dependency cycle: a → b → a\n"
				 "  a → b: first\n"
				 "  b → a: back");
	free(msg);
	graph_free(g);
}

static void test_graph_copies_names_and_lists_dependencies(void **state)
{
	char name[] = "web";
	const char *names[] = {name, "db"};
	struct graph *g = graph_new(2, names);
	const struct graph_dep *d;
	char label[] = "uses postgres";
	size_t n, h;

	(void)state;
	graph_add_edge(g, 0, 1, label);
	name[0] = 'X';
	label[0] = 'X';
	assert_string_equal(graph_name(g, 0), "web");
	assert_int_equal(graph_find(g, "web", &h), 0);
	assert_int_equal(h, 0);
	assert_int_equal(graph_find(g, "Xeb", &h), CONSTEL_ENOTFOUND);
	d = graph_providers(g, 0, &n);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].label, "uses postgres");
	assert_null(graph_providers(g, 1, &n));
	assert_int_equal(n, 0);
	assert_null(graph_consumers(g, 0, &n));
	assert_int_equal(n, 0);
	graph_free(g);
	graph_free(NULL);
}

static void test_graph_waves_diamond(void **state)
{
	struct graph *g = abc(4);
	int wave[4];
	size_t nwaves = 0;

	(void)state;
	dep(g, "a", "b");
	dep(g, "a", "c");
	dep(g, "b", "d");
	dep(g, "c", "d");
	assert_int_equal(graph_waves(g, wave, &nwaves), 0);
	assert_int_equal(nwaves, 3);
	assert_int_equal(wave[idx(g, "d")], 0);
	assert_int_equal(wave[idx(g, "b")], 1);
	assert_int_equal(wave[idx(g, "c")], 1);
	assert_int_equal(wave[idx(g, "a")], 2);
	graph_free(g);
}

static void test_graph_waves_chain_and_longest_path(void **state)
{
	struct graph *g = abc(5);
	int wave[5];
	size_t nwaves = 0;

	(void)state;
	/* a -> b -> c -> d, and a shortcut a -> d that must not lower a */
	dep(g, "a", "d");
	dep(g, "a", "b");
	dep(g, "b", "c");
	dep(g, "c", "d");
	assert_int_equal(graph_waves(g, wave, &nwaves), 0);
	assert_int_equal(nwaves, 4);
	assert_int_equal(wave[idx(g, "d")], 0);
	assert_int_equal(wave[idx(g, "c")], 1);
	assert_int_equal(wave[idx(g, "b")], 2);
	assert_int_equal(wave[idx(g, "a")], 3);
	assert_int_equal(wave[idx(g, "e")], 0);
	graph_free(g);
}

static void test_graph_waves_independent_hosts(void **state)
{
	struct graph *g = abc(3);
	struct graph *empty = graph_new(0, NULL);
	int wave[3] = {7, 7, 7};
	size_t nwaves = 0;

	(void)state;
	assert_int_equal(graph_waves(g, wave, &nwaves), 0);
	assert_int_equal(nwaves, 1);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(wave[i], 0);
	nwaves = 9;
	assert_int_equal(graph_waves(empty, wave, &nwaves), 0);
	assert_int_equal(nwaves, 0);
	assert_int_equal(graph_check_cycles(empty, NULL), 0);
	graph_free(g);
	graph_free(empty);
}

static void test_graph_waves_fail_on_cycle(void **state)
{
	struct graph *g = abc(3);
	int wave[3];
	size_t nwaves = 0;

	(void)state;
	dep(g, "a", "b");
	dep(g, "b", "c");
	dep(g, "c", "b");
	assert_int_equal(graph_waves(g, wave, &nwaves), -1);
	assert_string_equal(error_last(), "dependency cycle: b → c → b");
	graph_free(g);
}

static void test_graph_order_puts_consumers_first_through_left_out_hosts(void **state)
{
	struct graph *g = abc(5);
	bool set[5] = {true, false, true, true, false};
	size_t out[5], n = 0;

	(void)state;
	/* a -> b -> c, d stands alone, e -> a */
	dep(g, "a", "b");
	dep(g, "b", "c");
	dep(g, "e", "a");
	assert_int_equal(graph_order(g, set, true, out, &n), 0);
	assert_int_equal(n, 3);
	/* waves: c,d 0; b 1; a 2; e 3. a before c although b is left out */
	assert_int_equal(out[0], idx(g, "a"));
	assert_int_equal(out[1], idx(g, "c"));
	assert_int_equal(out[2], idx(g, "d"));
	assert_int_equal(graph_order(g, NULL, false, out, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(out[0], idx(g, "c"));
	assert_int_equal(out[1], idx(g, "d"));
	assert_int_equal(out[2], idx(g, "b"));
	assert_int_equal(out[3], idx(g, "a"));
	assert_int_equal(out[4], idx(g, "e"));
	dep(g, "c", "e");
	assert_int_equal(graph_order(g, NULL, false, out, &n), -1);
	graph_free(g);
}

/* galactica, pegasus, basestar, raptor1, raptor2, viper */
static struct graph *fleet(void)
{
	static const char *const names[] = {
		"galactica", "pegasus", "basestar", "raptor1", "raptor2", "viper"};
	static const char *const tier1[] = {"tier1", "storage"};
	static const char *const edge[] = {"edge"};
	struct graph *g = graph_new(ARRAY_SIZE(names), names);

	graph_set_tags(g, 0, tier1, 2);
	graph_set_tags(g, 2, tier1, 1);
	graph_set_tags(g, 3, edge, 1);
	graph_set_tags(g, 4, edge, 1);
	/* raptor1 -> basestar -> galactica; viper -> raptor2 */
	dep(g, "raptor1", "basestar");
	dep(g, "basestar", "galactica");
	dep(g, "viper", "raptor2");
	return g;
}

static void assert_selected(const bool *sel, const char *want)
{
	for (size_t i = 0; i < strlen(want); i++) {
		if (sel[i] != (want[i] == '1'))
			fail_msg("host %zu: selected %d, want mask %s", i, sel[i], want);
	}
}

static void test_graph_selects_by_name_glob_and_tag(void **state)
{
	struct graph *g = fleet();
	bool sel[6];
	const char *by_name[] = {"pegasus", "viper"};
	const char *by_glob[] = {"r*"};
	const char *by_class[] = {"?ega[s]us"};
	const char *by_tag[] = {"@tier1"};
	const char *mixed[] = {"@storage", "raptor2"};

	(void)state;
	assert_int_equal(graph_select(g, by_name, 2, false, sel), 0);
	assert_selected(sel, "010001");
	assert_int_equal(graph_select(g, by_glob, 1, false, sel), 0);
	assert_selected(sel, "000110");
	assert_int_equal(graph_select(g, by_class, 1, false, sel), 0);
	assert_selected(sel, "010000");
	assert_int_equal(graph_select(g, by_tag, 1, false, sel), 0);
	assert_selected(sel, "101000");
	assert_int_equal(graph_select(g, mixed, 2, false, sel), 0);
	assert_selected(sel, "100010");
	graph_free(g);
}

static void test_graph_select_rejects_patterns_matching_nothing(void **state)
{
	struct graph *g = fleet();
	bool sel[6];
	const char *typo[] = {"pegasus", "galactca"};
	const char *unknown[] = {"cylon"};
	const char *tag[] = {"@tier3"};
	const char *glob[] = {"z*"};
	const char *empty[] = {""};
	const char *empty_tag[] = {"@"};

	(void)state;
	assert_int_equal(graph_select(g, typo, 2, false, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "unknown host 'galactca'; did you mean 'galactica'?");
	assert_int_equal(graph_select(g, unknown, 1, false, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "unknown host 'cylon'");
	assert_int_equal(graph_select(g, tag, 1, true, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "no host has tag 'tier3'");
	assert_int_equal(graph_select(g, glob, 1, false, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "no host matches 'z*'");
	assert_int_equal(graph_select(g, empty, 1, false, sel), -1);
	assert_int_equal(graph_select(g, empty_tag, 1, false, sel), -1);
	graph_free(g);
}

/* The hint rule of common/names.h: a quarter of the name's length, at least 1. */
static void test_graph_select_hints_by_the_shared_rule(void **state)
{
	static const char *const names[] = {"viper", "observability"};
	struct graph *g = graph_new(ARRAY_SIZE(names), names);
	bool sel[2];
	const char *short_typo[] = {"vpr"};
	const char *near[] = {"vipr"};
	const char *long_typo[] = {"ebservebilitx"};

	(void)state;
	/* 3 letters, 2 edits: too far */
	assert_int_equal(graph_select(g, short_typo, 1, false, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "unknown host 'vpr'");
	assert_int_equal(graph_select(g, near, 1, false, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(error_last(), "unknown host 'vipr'; did you mean 'viper'?");
	/* 13 letters, 3 edits: close enough */
	assert_int_equal(graph_select(g, long_typo, 1, false, sel), CONSTEL_ENOTFOUND);
	assert_string_equal(
		error_last(), "unknown host 'ebservebilitx'; did you mean 'observability'?");
	graph_free(g);
}

static void test_graph_select_with_deps_is_transitive(void **state)
{
	struct graph *g = fleet();
	bool sel[6];
	const char *pat[] = {"raptor1"};

	(void)state;
	assert_int_equal(graph_select(g, pat, 1, false, sel), 0);
	assert_selected(sel, "000100");
	assert_int_equal(graph_select(g, pat, 1, true, sel), 0);
	/* basestar directly, galactica through it; nothing of viper's side */
	assert_selected(sel, "101100");
	graph_free(g);
}

static void test_graph_select_empty_means_all(void **state)
{
	struct graph *g = fleet();
	bool sel[6] = {false};

	(void)state;
	assert_int_equal(graph_select(g, NULL, 0, false, sel), 0);
	assert_selected(sel, "111111");
	memset(sel, 0, sizeof(sel));
	assert_int_equal(graph_select(g, NULL, 0, true, sel), 0);
	assert_selected(sel, "111111");
	graph_free(g);
}

static struct graph_sched *sched_all(const struct graph *g, const bool *sel)
{
	struct graph_sched *s = NULL;

	assert_int_equal(graph_sched_new(g, sel, &s), 0);
	assert_non_null(s);
	return s;
}

static void test_graph_sched_ready_order_respects_edges(void **state)
{
	struct graph *g = abc(7);
	bool sel[7] = {true, true, true, true, true, true, true};
	struct graph_sched *s;
	size_t out[7], pos[7], n, k = 0;

	(void)state;
	dep(g, "a", "b");
	dep(g, "a", "c");
	dep(g, "b", "d");
	dep(g, "c", "d");
	dep(g, "e", "a");
	dep(g, "f", "g");
	s = sched_all(g, sel);
	/* one host at a time, to get a full order */
	while ((n = graph_sched_next(s, out, 1)) > 0) {
		assert_int_equal(n, 1);
		assert_int_equal(graph_sched_state(s, out[0]), GRAPH_RUNNING);
		pos[out[0]] = k++;
		graph_sched_done(s, out[0]);
		assert_int_equal(graph_sched_state(s, out[0]), GRAPH_DONE);
	}
	assert_int_equal(k, 7);
	assert_true(graph_sched_finished(s));
	for (size_t c = 0; c < 7; c++) {
		const struct graph_dep *d;

		d = graph_providers(g, c, &n);
		for (size_t j = 0; j < n; j++)
			assert_true(pos[d[j].host] < pos[c]);
	}
	/* hosts without providers come first, by index */
	assert_int_equal(pos[idx(g, "d")], 0);
	assert_int_equal(pos[idx(g, "g")], 1);
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_waits_for_all_providers(void **state)
{
	struct graph *g = abc(3);
	bool sel[3] = {true, true, true};
	struct graph_sched *s;
	size_t out[3];

	(void)state;
	dep(g, "a", "b");
	dep(g, "a", "c");
	s = sched_all(g, sel);
	assert_int_equal(graph_sched_state(s, 0), GRAPH_WAITING);
	assert_int_equal(graph_sched_state(s, 1), GRAPH_READY);
	assert_int_equal(graph_sched_count(s, GRAPH_READY), 2);
	assert_int_equal(graph_sched_next(s, out, 3), 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 2);
	assert_int_equal(graph_sched_next(s, out, 3), 0);
	graph_sched_done(s, 1);
	assert_int_equal(graph_sched_state(s, 0), GRAPH_WAITING);
	assert_int_equal(graph_sched_next(s, out, 3), 0);
	assert_false(graph_sched_finished(s));
	graph_sched_done(s, 2);
	assert_int_equal(graph_sched_state(s, 0), GRAPH_READY);
	assert_int_equal(graph_sched_next(s, out, 3), 1);
	assert_int_equal(out[0], 0);
	assert_false(graph_sched_finished(s));
	graph_sched_done(s, 0);
	assert_true(graph_sched_finished(s));
	assert_int_equal(graph_sched_count(s, GRAPH_DONE), 3);
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_next_hands_out_at_most_max(void **state)
{
	struct graph *g = abc(5);
	bool sel[5] = {true, true, true, true, true};
	struct graph_sched *s = sched_all(g, sel);
	size_t out[5];

	(void)state;
	assert_int_equal(graph_sched_next(s, out, 2), 2);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	assert_int_equal(graph_sched_next(s, out, 0), 0);
	assert_int_equal(graph_sched_count(s, GRAPH_RUNNING), 2);
	assert_int_equal(graph_sched_next(s, out, 5), 3);
	assert_int_equal(out[0], 2);
	assert_int_equal(graph_sched_next(s, out, 5), 0);
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_failure_skips_transitive_dependents_only(void **state)
{
	struct graph *g = abc(6);
	bool sel[6] = {true, true, true, true, true, true};
	struct graph_sched *s;
	size_t out[6], skipped[6], n;

	(void)state;
	/* a -> b -> c, d -> c, e -> a; f unrelated */
	dep(g, "a", "b");
	dep(g, "b", "c");
	dep(g, "d", "c");
	dep(g, "e", "a");
	dep(g, "e", "d");
	s = sched_all(g, sel);
	assert_int_equal(graph_sched_next(s, out, 6), 2); /* c, f */
	assert_int_equal(out[0], idx(g, "c"));
	assert_int_equal(out[1], idx(g, "f"));
	graph_sched_done(s, idx(g, "c"));
	assert_int_equal(graph_sched_next(s, out, 6), 2); /* b, d */
	graph_sched_done(s, idx(g, "d"));
	n = graph_sched_failed(s, idx(g, "b"), skipped, 6);
	assert_int_equal(n, 2);
	assert_int_equal(graph_sched_state(s, idx(g, "b")), GRAPH_FAILED);
	assert_int_equal(graph_sched_state(s, idx(g, "a")), GRAPH_SKIPPED);
	assert_int_equal(graph_sched_state(s, idx(g, "e")), GRAPH_SKIPPED);
	assert_true((skipped[0] == idx(g, "a") && skipped[1] == idx(g, "e")) ||
		    (skipped[0] == idx(g, "e") && skipped[1] == idx(g, "a")));
	/* the unrelated host still runs and finishes */
	assert_int_equal(graph_sched_state(s, idx(g, "f")), GRAPH_RUNNING);
	assert_int_equal(graph_sched_state(s, idx(g, "d")), GRAPH_DONE);
	assert_false(graph_sched_finished(s));
	assert_int_equal(graph_sched_next(s, out, 6), 0);
	graph_sched_done(s, idx(g, "f"));
	assert_true(graph_sched_finished(s));
	assert_int_equal(graph_sched_count(s, GRAPH_SKIPPED), 2);
	assert_int_equal(graph_sched_count(s, GRAPH_DONE), 3);
	assert_int_equal(graph_sched_count(s, GRAPH_FAILED), 1);
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_reports_skips_beyond_max_and_once(void **state)
{
	struct graph *g = abc(5);
	bool sel[5] = {true, true, true, true, true};
	struct graph_sched *s;
	size_t out[5], skipped[1] = {SIZE_MAX};

	(void)state;
	/* c uses a and b, d uses c, e uses b */
	dep(g, "c", "a");
	dep(g, "c", "b");
	dep(g, "d", "c");
	dep(g, "e", "b");
	s = sched_all(g, sel);
	assert_int_equal(graph_sched_next(s, out, 5), 2);
	/* three skipped, room to report one */
	assert_int_equal(graph_sched_failed(s, idx(g, "b"), skipped, 1), 3);
	assert_true(skipped[0] == idx(g, "c") || skipped[0] == idx(g, "e"));
	/* c and d were skipped already: a's failure skips nothing new */
	assert_int_equal(graph_sched_failed(s, idx(g, "a"), NULL, 0), 0);
	assert_int_equal(graph_sched_state(s, idx(g, "d")), GRAPH_SKIPPED);
	assert_int_equal(graph_sched_count(s, GRAPH_SKIPPED), 3);
	assert_int_equal(graph_sched_count(s, GRAPH_FAILED), 2);
	assert_true(graph_sched_finished(s));
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_fails_host_before_it_starts(void **state)
{
	struct graph *g = abc(3);
	bool sel[3] = {true, true, true};
	struct graph_sched *s;
	size_t out[3], skipped[3];

	(void)state;
	dep(g, "a", "b");
	s = sched_all(g, sel);
	/* b's build failed: it is never handed out, a is skipped */
	assert_int_equal(graph_sched_state(s, 1), GRAPH_READY);
	assert_int_equal(graph_sched_failed(s, 1, skipped, 3), 1);
	assert_int_equal(skipped[0], 0);
	assert_int_equal(graph_sched_next(s, out, 3), 1);
	assert_int_equal(out[0], 2);
	graph_sched_done(s, 2);
	assert_true(graph_sched_finished(s));
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_ignores_unselected_providers(void **state)
{
	struct graph *g = abc(4);
	bool sel[4] = {true, false, true, false};
	struct graph_sched *s;
	size_t out[4], skipped[4];

	(void)state;
	/* a -> b (unselected) -> c; a -> c; d -> a, d unselected */
	dep(g, "a", "b");
	dep(g, "b", "c");
	dep(g, "a", "c");
	dep(g, "d", "a");
	s = sched_all(g, sel);
	assert_int_equal(graph_sched_state(s, idx(g, "b")), GRAPH_UNSELECTED);
	assert_int_equal(graph_sched_state(s, idx(g, "d")), GRAPH_UNSELECTED);
	assert_int_equal(graph_sched_count(s, GRAPH_UNSELECTED), 2);
	assert_int_equal(graph_sched_state(s, idx(g, "a")), GRAPH_WAITING);
	assert_int_equal(graph_sched_next(s, out, 4), 1);
	assert_int_equal(out[0], idx(g, "c"));
	graph_sched_done(s, idx(g, "c"));
	/* b is taken as deployed already */
	assert_int_equal(graph_sched_next(s, out, 4), 1);
	assert_int_equal(out[0], idx(g, "a"));
	/* a's failure skips nothing: its only consumer is unselected */
	assert_int_equal(graph_sched_failed(s, idx(g, "a"), skipped, 4), 0);
	assert_int_equal(graph_sched_state(s, idx(g, "d")), GRAPH_UNSELECTED);
	assert_true(graph_sched_finished(s));
	graph_sched_free(s);
	graph_free(g);
}

static void test_graph_sched_rejects_cycle_among_selected(void **state)
{
	struct graph *g = abc(3);
	bool all[3] = {true, true, true};
	bool no_c[3] = {true, true, false};
	struct graph_sched *s = NULL;

	(void)state;
	dep(g, "a", "b");
	dep(g, "b", "c");
	dep(g, "c", "b");
	assert_int_equal(graph_sched_new(g, all, &s), -1);
	assert_null(s);
	assert_string_equal(error_last(), "dependency cycle: b → c → b");
	/* without c the selected hosts can be ordered */
	assert_int_equal(graph_sched_new(g, no_c, &s), 0);
	assert_non_null(s);
	assert_string_equal(graph_state_name(graph_sched_state(s, 2)), "unselected");
	graph_sched_free(s);
	graph_sched_free(NULL);
	graph_free(g);
}

#define BIG 20000

static char **big_names(void)
{
	char **names = malloc(BIG * sizeof(*names));

	assert_non_null(names);
	for (size_t i = 0; i < BIG; i++)
		names[i] = xasprintf("host%05zu", i);
	return names;
}

static void free_names(char **names)
{
	for (size_t i = 0; i < BIG; i++)
		free(names[i]);
	free(names);
}

/*
 * host i uses host i + 1: the search goes 20,000 deep from host 0. Four
 * more edges per host to later hosts make it ~100,000 edges, still acyclic.
 */
static struct graph *big_chain(char **names)
{
	struct graph *g = graph_new(BIG, (const char *const *)names);
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i + 1 < BIG; i++)
		graph_add_edge(g, i, i + 1, "chain");
	for (size_t i = 0; i + 2 < BIG; i++) {
		for (int k = 0; k < 4; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			graph_add_edge(g, i, i + 1 + x % (BIG - i - 1), "extra");
		}
	}
	return g;
}

static void test_graph_handles_20000_host_chain(void **state)
{
	char **names = big_names();
	struct graph *g = big_chain(names);
	int *wave = malloc(BIG * sizeof(*wave));
	bool *sel = malloc(BIG * sizeof(*sel));
	const char *pat[] = {"host00000"};
	size_t nwaves = 0, nsel = 0;
	char *msg = NULL;
	const char *prefix;
	double t0, t_cycles, t_waves, t_select;

	(void)state;
	assert_non_null(wave);
	assert_non_null(sel);
	t0 = now_seconds();
	assert_int_equal(graph_check_cycles(g, &msg), 0);
	t_cycles = now_seconds() - t0;
	assert_null(msg);

	t0 = now_seconds();
	assert_int_equal(graph_waves(g, wave, &nwaves), 0);
	t_waves = now_seconds() - t0;
	assert_int_equal(nwaves, BIG);
	assert_int_equal(wave[0], BIG - 1);
	assert_int_equal(wave[BIG - 1], 0);

	t0 = now_seconds();
	assert_int_equal(graph_select(g, pat, 1, true, sel), 0);
	t_select = now_seconds() - t0;
	for (size_t i = 0; i < BIG; i++)
		nsel += sel[i];
	assert_int_equal(nsel, BIG);

	print_message("20000 hosts: cycles %.2f ms, waves %.2f ms, select %.2f ms\n",
		t_cycles * 1e3, t_waves * 1e3, t_select * 1e3);
	/* a few ms unoptimised; the bound leaves room for sanitizers and slow CI */
	assert_true(t_cycles < 0.5);
	assert_true(t_waves < 0.5);
	assert_true(t_select < 0.5);

	/* closing the chain makes a 20,000-host cycle, found without recursion */
	graph_add_edge(g, BIG - 1, 0, "closing");
	assert_int_equal(graph_check_cycles(g, &msg), -1);
	assert_non_null(msg);
	prefix = "dependency cycle: host00000 → host00001 → ";
	assert_true(strncmp(msg, prefix, strlen(prefix)) == 0);
	assert_non_null(strstr(msg, "\n  host19999 → host00000: closing"));
	free(msg);

	free(wave);
	free(sel);
	graph_free(g);
	free_names(names);
}

static void test_graph_sched_runs_20000_host_chain(void **state)
{
	char **names = big_names();
	struct graph *g = big_chain(names);
	bool *sel = malloc(BIG * sizeof(*sel));
	struct graph_sched *s;
	size_t out[8], n, k = 0, expect = BIG - 1;

	(void)state;
	assert_non_null(sel);
	memset(sel, 1, BIG * sizeof(*sel));
	s = sched_all(g, sel);
	/* a chain runs one host at a time, from its end */
	while ((n = graph_sched_next(s, out, 8)) > 0) {
		assert_int_equal(n, 1);
		assert_int_equal(out[0], expect--);
		graph_sched_done(s, out[0]);
		k++;
	}
	assert_int_equal(k, BIG);
	assert_true(graph_sched_finished(s));
	graph_sched_free(s);

	/* the last host failing skips all the others */
	s = sched_all(g, sel);
	assert_int_equal(graph_sched_next(s, out, 8), 1);
	assert_int_equal(graph_sched_failed(s, out[0], NULL, 0), BIG - 1);
	assert_true(graph_sched_finished(s));
	graph_sched_free(s);

	free(sel);
	graph_free(g);
	free_names(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_graph_accepts_acyclic_diamonds),
		cmocka_unit_test(test_graph_reports_two_cycle_path),
		cmocka_unit_test(test_graph_reports_long_cycle_path),
		cmocka_unit_test(test_graph_reports_self_loop),
		cmocka_unit_test(test_graph_finds_cycle_unreachable_from_first_host),
		cmocka_unit_test(test_graph_keeps_first_label_of_duplicate_edge),
		cmocka_unit_test(test_graph_drops_duplicate_edges_added_out_of_turn),
		cmocka_unit_test(test_graph_copies_names_and_lists_dependencies),
		cmocka_unit_test(test_graph_waves_diamond),
		cmocka_unit_test(test_graph_waves_chain_and_longest_path),
		cmocka_unit_test(test_graph_waves_independent_hosts),
		cmocka_unit_test(test_graph_waves_fail_on_cycle),
		cmocka_unit_test(test_graph_order_puts_consumers_first_through_left_out_hosts),
		cmocka_unit_test(test_graph_selects_by_name_glob_and_tag),
		cmocka_unit_test(test_graph_select_rejects_patterns_matching_nothing),
		cmocka_unit_test(test_graph_select_hints_by_the_shared_rule),
		cmocka_unit_test(test_graph_select_with_deps_is_transitive),
		cmocka_unit_test(test_graph_select_empty_means_all),
		cmocka_unit_test(test_graph_sched_ready_order_respects_edges),
		cmocka_unit_test(test_graph_sched_waits_for_all_providers),
		cmocka_unit_test(test_graph_sched_next_hands_out_at_most_max),
		cmocka_unit_test(test_graph_sched_failure_skips_transitive_dependents_only),
		cmocka_unit_test(test_graph_sched_reports_skips_beyond_max_and_once),
		cmocka_unit_test(test_graph_sched_fails_host_before_it_starts),
		cmocka_unit_test(test_graph_sched_ignores_unselected_providers),
		cmocka_unit_test(test_graph_sched_rejects_cycle_among_selected),
		cmocka_unit_test(test_graph_handles_20000_host_chain),
		cmocka_unit_test(test_graph_sched_runs_20000_host_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
