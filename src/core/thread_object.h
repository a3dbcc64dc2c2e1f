/* Internal: a per-thread object freed when its thread exits. The message
 * free list and the send buffers' hands each keep one; the hot path reads
 * a _Thread_local pointer, and the pthread key (whose destructor frees the
 * object) is only touched when a thread makes its object. */
#ifndef LZ_CORE_THREAD_OBJECT_H
#define LZ_CORE_THREAD_OBJECT_H

#include <pthread.h>
#include <stdlib.h>

// lz__thread_object_new makes a zeroed object of size bytes for the calling
// thread and registers it under *key, which make_key (run once through
// *once) creates with the object's destructor. NULL when out of memory or
// when the key cannot hold it: the caller then goes without.
static inline void *lz__thread_object_new(pthread_once_t *once, void (*make_key)(void), pthread_key_t *key,
                                          size_t size) {
    pthread_once(once, make_key);
    void *object = calloc(1, size);
    if (object && pthread_setspecific(*key, object) != 0) {
        free(object);
        object = NULL;
    }
    return object;
}

#endif
