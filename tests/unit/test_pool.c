/* common/pool.c: the one pool. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "common/pool.h"

struct job {
	size_t n, next, ran, finished, max_running, running;
	bool blocked_everything; /* every task saw all signals blocked */
	size_t released;	 /* tasks made ready over time (0: all at once) */
};

static bool job_next(void *data, size_t *task)
{
	struct job *j = data;
	size_t ready = j->released ? j->released : j->n;

	if (j->next >= ready)
		return false;
	*task = j->next++;
	j->running++;
	if (j->running > j->max_running)
		j->max_running = j->running;
	return true;
}

static void job_run(void *data, size_t task)
{
	struct job *j = data;
	sigset_t now;

	(void)task;
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	if (!sigismember(&now, SIGINT) || !sigismember(&now, SIGTERM))
		j->blocked_everything = false;
	__atomic_fetch_add(&j->ran, 1, __ATOMIC_SEQ_CST);
}

static void job_finished(void *data, size_t task)
{
	struct job *j = data;

	(void)task;
	j->finished++;
	j->running--;
	/* each finished task makes the next one ready: a chain, like providers */
	if (j->released && j->released < j->n)
		j->released++;
}

static bool job_done(void *data)
{
	struct job *j = data;

	return j->finished == j->n;
}

static void test_pool_runs_every_task_once(void **state)
{
	struct pool_ops ops = {.next = job_next, .run = job_run, .finished = job_finished};
	struct job j = {.n = 100, .blocked_everything = true};

	(void)state;
	pool_run(&ops, &j, 4);
	assert_int_equal(j.ran, 100);
	assert_int_equal(j.finished, 100);
	assert_true(j.max_running <= 4);
	assert_true(j.blocked_everything);
}

static void test_pool_waits_for_tasks_that_become_ready(void **state)
{
	struct pool_ops ops = {
		.next = job_next, .run = job_run, .finished = job_finished, .done = job_done};
	struct job j = {.n = 20, .released = 1, .blocked_everything = true};

	(void)state;
	/* one task ready at a time: the other workers wait instead of leaving */
	pool_run(&ops, &j, 4);
	assert_int_equal(j.ran, 20);
	assert_int_equal(j.max_running, 1);
}

static void test_pool_stop_hands_out_nothing_more(void **state)
{
	struct pool_ops ops = {
		.next = job_next, .run = job_run, .finished = job_finished, .done = job_done};
	struct job j = {.n = 10, .released = 0, .blocked_everything = true};
	struct pool p;

	(void)state;
	j.released = 0;
	j.n = 10;
	/* nothing ready and done() false: workers wait until stopped */
	ops.next = job_next;
	j.next = 10; /* as if all were handed out, none finished */
	pool_init(&p, &ops, &j);
	pool_start(&p, 3);
	pool_stop(&p);
	pool_join(&p);
	pool_release(&p);
	assert_int_equal(j.ran, 0);
}

struct counted {
	pthread_mutex_t lock;
	int seen[16];
	size_t running, max_running;
};

static void counted_run(void *data, size_t task)
{
	struct counted *c = data;

	pthread_mutex_lock(&c->lock);
	c->seen[task]++;
	if (++c->running > c->max_running)
		c->max_running = c->running;
	pthread_mutex_unlock(&c->lock);
	usleep(2000);
	pthread_mutex_lock(&c->lock);
	c->running--;
	pthread_mutex_unlock(&c->lock);
}

static void test_pool_counts_tasks_without_next(void **state)
{
	static const struct pool_ops ops = {.run = counted_run};
	struct counted c = {.lock = PTHREAD_MUTEX_INITIALIZER};

	(void)state;
	pool_run_tasks(&ops, &c, 10, 3);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(c.seen[i], i < 10 ? 1 : 0);
	assert_true(c.max_running <= 3);
	memset(c.seen, 0, sizeof(c.seen));
	pool_run_tasks(&ops, &c, 0, 3); /* nothing to do: returns */
	assert_int_equal(c.seen[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_runs_every_task_once),
		cmocka_unit_test(test_pool_waits_for_tasks_that_become_ready),
		cmocka_unit_test(test_pool_stop_hands_out_nothing_more),
		cmocka_unit_test(test_pool_counts_tasks_without_next),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
