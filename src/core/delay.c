/* A delay queue: a list kept in due order behind one lock, and a condition
 * on the monotonic clock for the one thread that waits for the head.
 * Retries are the exception, not the traffic, so an ordered list (insertion
 * walks it) is simpler than a heap and as fast at the sizes it holds. */
#include "core/delay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/node.h"
#include "core/thread.h"

typedef struct held {
    struct held *next;
    void *job;
    int64_t due_ms;
} held_t;

struct lz_delay {
    pthread_mutex_t lock;
    pthread_cond_t changed; // the head changed, or the queue closed
    held_t *head;
    size_t count;
    bool closed;
};

lz_delay_t *lz__delay_new(void) {
    lz_delay_t *delay = calloc(1, sizeof *delay);
    if (!delay) return lz__fail_null(LZ_ENOMEM, "delay queue: out of memory");
    int err = lz__cond_init_monotonic(&delay->changed);
    if (err) {
        free(delay);
        return lz__fail_null(LZ_EIO, "delay queue: cannot make its condition variable (error %d)", err);
    }
    pthread_mutex_init(&delay->lock, NULL);
    return delay;
}

int lz__delay_put(lz_delay_t *delay, void *job, int64_t due_ms) {
    held_t *held = malloc(sizeof *held);
    if (!held) return lz__fail(LZ_ENOMEM, "delay queue: out of memory");
    held->job = job;
    held->due_ms = due_ms;
    pthread_mutex_lock(&delay->lock);
    held_t **at = &delay->head;
    while (*at && (*at)->due_ms <= due_ms) at = &(*at)->next;
    held->next = *at;
    *at = held;
    delay->count++;
    if (at == &delay->head) pthread_cond_signal(&delay->changed);
    pthread_mutex_unlock(&delay->lock);
    return LZ_OK;
}

// pop_due unlinks the head if it is due by now; under the lock.
static void *pop_due(lz_delay_t *delay, int64_t now) {
    held_t *held = delay->head;
    if (!held || held->due_ms > now) return NULL;
    delay->head = held->next;
    delay->count--;
    void *job = held->job;
    free(held);
    return job;
}

// ms_until: how long from now until due, as an int wait (0 when past).
static int ms_until(int64_t due, int64_t now) {
    int64_t left = due - now;
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

void *lz__delay_take(lz_delay_t *delay, int *wait_ms) {
    int64_t now = lz__now_ms();
    pthread_mutex_lock(&delay->lock);
    void *job = pop_due(delay, now);
    if (wait_ms) *wait_ms = delay->head ? ms_until(delay->head->due_ms, now) : -1;
    pthread_mutex_unlock(&delay->lock);
    return job;
}

void *lz__delay_wait(lz_delay_t *delay) {
    void *job = NULL;
    pthread_mutex_lock(&delay->lock);
    while (!delay->closed && !(job = pop_due(delay, lz__now_ms()))) {
        if (!delay->head) {
            pthread_cond_wait(&delay->changed, &delay->lock);
            continue;
        }
        lz__cond_wait_until(&delay->changed, &delay->lock, delay->head->due_ms);
    }
    pthread_mutex_unlock(&delay->lock);
    return job;
}

void lz__delay_close(lz_delay_t *delay) {
    pthread_mutex_lock(&delay->lock);
    delay->closed = true;
    pthread_cond_broadcast(&delay->changed);
    pthread_mutex_unlock(&delay->lock);
}

size_t lz__delay_count(lz_delay_t *delay) {
    pthread_mutex_lock(&delay->lock);
    size_t count = delay->count;
    pthread_mutex_unlock(&delay->lock);
    return count;
}

void lz__delay_drain(lz_delay_t *delay, void (*fn)(void *job, void *arg), void *arg) {
    pthread_mutex_lock(&delay->lock);
    held_t *list = delay->head;
    delay->head = NULL;
    delay->count = 0;
    delay->closed = false;
    pthread_mutex_unlock(&delay->lock);
    // Outside the lock: fn may put jobs back (a retry that fails again).
    while (list) {
        held_t *next = list->next;
        if (fn) fn(list->job, arg);
        free(list);
        list = next;
    }
}

void lz__delay_destroy(lz_delay_t **delay_p, void (*drop)(void *job, void *arg), void *arg) {
    lz_delay_t *delay = delay_p ? *delay_p : NULL;
    if (!delay) return;
    lz__delay_drain(delay, drop, arg);
    pthread_mutex_destroy(&delay->lock);
    pthread_cond_destroy(&delay->changed);
    free(delay);
    *delay_p = NULL;
}

int64_t lz__backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, uint64_t random) {
    int64_t delay = base_ms;
    for (int i = 1; i < attempts && delay < max_ms; i++) delay *= 2;
    if (delay > max_ms) delay = max_ms;
    return delay / 2 + (int64_t)(random % (uint64_t)(delay / 2 + 1));
}
