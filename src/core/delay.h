/* Internal: retry timing. A delay queue, where jobs wait until their time
 * comes, then go to whoever takes them (a puller's failed task until its
 * retry), and the backoff every retry loop waits by. */
#ifndef LZ_CORE_DELAY_H
#define LZ_CORE_DELAY_H

#include <stddef.h>
#include <stdint.h>

typedef struct lz_delay lz_delay_t;

// lz__backoff_ms: how long to wait before the next try after attempts
// failed ones: base_ms doubled per failure past the first, up to max_ms,
// then a random half of it dropped (random: any bits), so that many
// clients failing together do not all come back at the same moment.
int64_t lz__backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, uint64_t random);

// lz__delay_new makes an empty queue; NULL (and the thread's error) on failure.
lz_delay_t *lz__delay_new(void);

// lz__delay_put holds job until due_ms (lz__now_ms's clock); jobs due at the
// same time leave in the order they came. Thread safe; wakes a waiting
// lz__delay_wait when job is now the first due. LZ_ENOMEM on failure (the
// job is not taken).
int lz__delay_put(lz_delay_t *delay, void *job, int64_t due_ms);

// lz__delay_take returns the first job due by now, or NULL; *wait_ms (if
// not NULL) is then how long until the next one is due (-1: none held).
// Thread safe.
void *lz__delay_take(lz_delay_t *delay, int *wait_ms);

// lz__delay_wait blocks until a job is due and returns it, or returns NULL
// once lz__delay_close was called (jobs still held stay held).
void *lz__delay_wait(lz_delay_t *delay);

// lz__delay_close ends every lz__delay_wait, now and later; puts are still
// accepted, for lz__delay_drain.
void lz__delay_close(lz_delay_t *delay);

// lz__delay_count: how many jobs are held.
size_t lz__delay_count(lz_delay_t *delay);

// lz__delay_drain hands every held job, due or not, to fn in due order and
// reopens the queue.
void lz__delay_drain(lz_delay_t *delay, void (*fn)(void *job, void *arg), void *arg);

// lz__delay_destroy drains into drop (NULL: the jobs are forgotten) and frees.
void lz__delay_destroy(lz_delay_t **delay_p, void (*drop)(void *job, void *arg), void *arg);

#endif
