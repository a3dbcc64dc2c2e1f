/* Internal: a fixed pool of worker threads fed through a bounded queue.
 * When the queue is full, submit blocks: the receiver stops reading and
 * libzmq's high water mark pushes back on the senders, so nothing is lost. */
#ifndef LZ_CORE_POOL_H
#define LZ_CORE_POOL_H

#include <stddef.h>

typedef struct lz_pool lz_pool_t;

// A job function runs one job on a worker thread.
typedef void (*lz_job_fn)(void *job, void *arg);

// lz__pool_new starts threads workers running fn(job, arg) for each job
// submitted; the queue holds at most queue_max jobs. NULL on failure.
lz_pool_t *lz__pool_new(int threads, size_t queue_max, lz_job_fn fn, void *arg);

// lz__pool_submit queues a job, blocking while the queue is full. Returns
// LZ_ECLOSED once the pool is stopping (the job is not taken).
int lz__pool_submit(lz_pool_t *pool, void *job);

// lz__pool_close stops the pool without waiting, so a job may call it: no
// queued job starts any more, each worker ends once its running job
// returns, submits fail LZ_ECLOSED. The jobs still queued wait for
// lz__pool_destroy's drop.
void lz__pool_close(lz_pool_t *pool);

// lz__pool_destroy closes the pool, hands every job still queued to drop
// (if not NULL; called without the pool's lock, on this thread, while
// running jobs may still finish), joins the threads and frees the pool.
// From one of the pool's own workers, which cannot wait for itself, it
// does nothing and returns LZ_ESTATE; else LZ_OK.
int lz__pool_destroy(lz_pool_t **pool_p, void (*drop)(void *job, void *arg));

#endif
