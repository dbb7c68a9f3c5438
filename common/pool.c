#include "common/pool.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void pool_init(struct pool *p, const struct pool_ops *ops, void *data)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->ops = ops;
	p->data = data;
}

void pool_set_tasks(struct pool *p, size_t n)
{
	p->ntasks = n;
}

static bool next_task(struct pool *p, size_t *task)
{
	if (p->ops->next)
		return p->ops->next(p->data, task);
	if (p->given >= p->ntasks)
		return false;
	*task = p->given++;
	return true;
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		size_t task;

		if (p->stopping)
			break;
		if (next_task(p, &task)) {
			pthread_mutex_unlock(&p->lock);
			p->ops->run(p->data, task);
			pthread_mutex_lock(&p->lock);
			if (p->ops->finished)
				p->ops->finished(p->data, task);
			pthread_cond_broadcast(&p->wake);
			continue;
		}
		if (!p->ops->done || p->ops->done(p->data))
			break;
		pthread_cond_wait(&p->wake, &p->lock);
	}
	p->active--;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void pool_start(struct pool *p, size_t n)
{
	if (!n)
		n = 1;
	p->threads = xcalloc(n, sizeof(*p->threads));
	pthread_mutex_lock(&p->lock);
	p->active = n;
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < n; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p)) {
			fprintf(stderr, "constel: cannot start a worker thread\n");
			abort();
		}
	}
	p->nthreads = n;
}

void pool_wake(struct pool *p)
{
	pthread_cond_broadcast(&p->wake);
}

void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

bool pool_busy(const struct pool *p)
{
	return p->active > 0;
}

void pool_join(struct pool *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

void pool_release(struct pool *p)
{
	free(p->threads);
	p->threads = NULL;
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}

void pool_run(const struct pool_ops *ops, void *data, size_t n)
{
	pool_run_tasks(ops, data, 0, n);
}

void pool_run_tasks(const struct pool_ops *ops, void *data, size_t ntasks, size_t n)
{
	struct pool p;

	pool_init(&p, ops, data);
	pool_set_tasks(&p, ntasks);
	pool_start(&p, ops->next || n < ntasks ? n : ntasks);
	pool_join(&p);
	pool_release(&p);
}
