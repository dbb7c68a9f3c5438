/*
 * common/pool.h: the one parallel pool of constel (git's
 * run_processes_parallel shape), for every command that works on many
 * hosts: deploy (the next task is the next ready host), status and exec.
 *
 * N worker threads ask for the next task, run it, and say it finished. The
 * caller's scheduling state is guarded by the pool's lock: next() and
 * finished() are called with it held, run() without it. A worker for which
 * next() has nothing waits until pool_wake() or a finished task, unless
 * done() says nothing will ever come again (NULL: nothing after next()
 * first says no). Workers block every signal: the main thread handles
 * them, and calls pool_stop() to hand out no further task.
 *
 * Workers never print; a task keeps its output in its own bounded buffers
 * and the caller prints it, whole, from one thread.
 */
#ifndef CONSTEL_POOL_H
#define CONSTEL_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct pool_ops {
	/* under the lock; NULL: the tasks are 0 .. pool_set_tasks()'s n - 1, in order */
	bool (*next)(void *data, size_t *task);
	void (*run)(void *data, size_t task);	   /* without it */
	void (*finished)(void *data, size_t task); /* under the lock; may be NULL */
	bool (*done)(void *data);		   /* under the lock; may be NULL */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	const struct pool_ops *ops;
	void *data;
	pthread_t *threads;
	size_t nthreads;
	size_t active; /* workers not yet returned */
	size_t ntasks, given; /* without ops->next */
	bool stopping;
};

void pool_init(struct pool *p, const struct pool_ops *ops, void *data);
/* Without ops->next: there are `n` tasks, 0 to n - 1. Before pool_start(). */
void pool_set_tasks(struct pool *p, size_t n);
/* Starts `n` workers (at least one). */
void pool_start(struct pool *p, size_t n);
/* Under the lock: tasks may have become ready. */
void pool_wake(struct pool *p);
/* Hands out no further task (tasks running go on). Takes the lock. */
void pool_stop(struct pool *p);
/* Under the lock: whether a worker is still running or waiting. */
bool pool_busy(const struct pool *p);
/* Waits for every worker to return. */
void pool_join(struct pool *p);
void pool_release(struct pool *p);

/* pool_init, pool_start, pool_join, pool_release: every task, then return. */
void pool_run(const struct pool_ops *ops, void *data, size_t n);
/* The same for tasks 0 .. ntasks - 1 (ops->next NULL), at most `n` at once (and ntasks). */
void pool_run_tasks(const struct pool_ops *ops, void *data, size_t ntasks, size_t n);

#endif
