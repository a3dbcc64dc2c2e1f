/* A fixed pool of worker threads behind a bounded ring of jobs. Handlers of
 * subscribers, pullers and servers run here, so a slow handler occupies one
 * worker, never the receiver. */
#include "core/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/thread.h"

struct lz_pool {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void **ring;
    size_t capacity, head, count;
    bool stopping;
    lz_job_fn fn;
    void *arg;
    pthread_t *threads;
    int thread_count;
};

static void *worker_main(void *self) {
    lz_pool_t *pool = self;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->not_empty, &pool->lock);
        if (pool->stopping) break; // what is queued is lz__pool_destroy's to drop
        void *job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->capacity;
        pool->count--;
        pthread_cond_signal(&pool->not_full);
        pthread_mutex_unlock(&pool->lock);
        pool->fn(job, pool->arg);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

lz_pool_t *lz__pool_new(int threads, size_t queue_max, lz_job_fn fn, void *arg) {
    if (threads < 1 || queue_max < 1 || !fn)
        return lz__fail_null(LZ_EINVAL, "pool: need at least one thread, one queue slot and a job function");
    lz_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool) return lz__fail_null(LZ_ENOMEM, "pool: out of memory");
    pool->ring = calloc(queue_max, sizeof *pool->ring);
    pool->threads = calloc((size_t)threads, sizeof *pool->threads);
    if (!pool->ring || !pool->threads) {
        free(pool->ring);
        free(pool->threads);
        free(pool);
        return lz__fail_null(LZ_ENOMEM, "pool: out of memory");
    }
    pool->capacity = queue_max;
    pool->fn = fn;
    pool->arg = arg;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->not_empty, NULL);
    pthread_cond_init(&pool->not_full, NULL);
    for (; pool->thread_count < threads; pool->thread_count++) {
        int err = lz__thread_start(&pool->threads[pool->thread_count], worker_main, pool);
        if (err) {
            lz__pool_destroy(&pool, NULL);
            lz__thread_fail(err, "pool: worker");
            return NULL;
        }
    }
    return pool;
}

int lz__pool_submit(lz_pool_t *pool, void *job) {
    pthread_mutex_lock(&pool->lock);
    while (pool->count == pool->capacity && !pool->stopping)
        pthread_cond_wait(&pool->not_full, &pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return lz__fail(LZ_ECLOSED, "pool: stopping");
    }
    pool->ring[(pool->head + pool->count) % pool->capacity] = job;
    pool->count++;
    pthread_cond_signal(&pool->not_empty);
    pthread_mutex_unlock(&pool->lock);
    return LZ_OK;
}

// stop_locked marks the pool stopping and wakes every thread waiting on
// it; the caller holds the lock.
static void stop_locked(lz_pool_t *pool) {
    pool->stopping = true;
    pthread_cond_broadcast(&pool->not_empty);
    pthread_cond_broadcast(&pool->not_full);
}

void lz__pool_close(lz_pool_t *pool) {
    pthread_mutex_lock(&pool->lock);
    stop_locked(pool);
    pthread_mutex_unlock(&pool->lock);
}

// is_worker: whether the calling thread is one of pool's workers.
static bool is_worker(const lz_pool_t *pool) {
    for (int i = 0; i < pool->thread_count; i++)
        if (pthread_equal(pool->threads[i], pthread_self())) return true;
    return false;
}

int lz__pool_destroy(lz_pool_t **pool_p, void (*drop)(void *job, void *arg)) {
    lz_pool_t *pool = pool_p ? *pool_p : NULL;
    if (!pool) return LZ_OK;
    if (is_worker(pool)) return lz__fail(LZ_ESTATE, "pool: destroyed from one of its own workers");
    pthread_mutex_lock(&pool->lock);
    stop_locked(pool);
    // Queued jobs are handed back instead of run: stopping means no new work.
    // The workers see an empty ring; its jobs are ours to drop.
    size_t head = pool->head, queued = pool->count;
    pool->count = 0;
    pthread_mutex_unlock(&pool->lock);
    // Outside the lock: drop may call out (a puller's dead-letter sink) and
    // the workers finishing meanwhile need the lock.
    for (size_t i = 0; drop && i < queued; i++) drop(pool->ring[(head + i) % pool->capacity], pool->arg);
    for (int i = 0; i < pool->thread_count; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->not_empty);
    pthread_cond_destroy(&pool->not_full);
    free(pool->ring);
    free(pool->threads);
    free(pool);
    *pool_p = NULL;
    return LZ_OK;
}
