/* A handler-side recorder shared by the pattern tests: what each handler
 * saw, on which thread, and how many handlers ran at once. */
#ifndef LZ_SEEN_H
#define LZ_SEEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "lz_test.h"

#define MAX_SEEN 256

typedef struct {
    pthread_mutex_t lock;
    int count;
    char who[MAX_SEEN][16];    // which handler
    char topic[MAX_SEEN][64];  // topic or task type
    lz_value_t *data[MAX_SEEN]; // a copy of the message value
    int64_t priority[MAX_SEEN];
    int64_t n[MAX_SEEN];       // the value's "n" member, -1 if none
    pthread_t thread[MAX_SEEN];
    atomic_int running, max_running;
    int sleep_ms; // each handler sleeps this long: makes concurrency visible
    int fail;     // what handlers return
} seen_t;

static inline void seen_init(seen_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->running, 0);
    atomic_init(&s->max_running, 0);
}

static inline void seen_fini(seen_t *s) {
    for (int i = 0; i < s->count; i++) lz_value_destroy(&s->data[i]);
    pthread_mutex_destroy(&s->lock);
}

// seen_reset forgets what was recorded (keeping sleep_ms and fail).
static inline void seen_reset(seen_t *s) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->count; i++) lz_value_destroy(&s->data[i]);
    s->count = 0;
    pthread_mutex_unlock(&s->lock);
}

static inline int seen_count(seen_t *s) {
    pthread_mutex_lock(&s->lock);
    int n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static inline bool seen_wait(seen_t *s, int want, int timeout_ms) {
    for (int64_t deadline = lz_test_now_ms() + timeout_ms; seen_count(s) < want;) {
        if (lz_test_now_ms() >= deadline) return false;
        lz_test_sleep_ms(1);
    }
    return true;
}

static inline int seen_record(seen_t *s, const char *who, const lz_message_t *msg) {
    int now = atomic_fetch_add(&s->running, 1) + 1;
    for (int m = atomic_load(&s->max_running); now > m && !atomic_compare_exchange_weak(&s->max_running, &m, now);) {
    }
    if (s->sleep_ms) lz_test_sleep_ms(s->sleep_ms);
    pthread_mutex_lock(&s->lock);
    if (s->count < MAX_SEEN) {
        int i = s->count++;
        snprintf(s->who[i], sizeof s->who[0], "%s", who);
        snprintf(s->topic[i], sizeof s->topic[0], "%s", lz_message_topic(msg));
        s->data[i] = lz_value_copy(lz_message_value(msg));
        s->priority[i] = lz_message_priority(msg);
        s->n[i] = lz_value_find_int(lz_message_value(msg), "n", -1);
        s->thread[i] = pthread_self();
    }
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_sub(&s->running, 1);
    return s->fail;
}

#endif
