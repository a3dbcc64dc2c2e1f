/* The per-thread encoding buffer behind every send. A pthread key (rather
 * than a bare _Thread_local pointer) frees it when its thread exits. */
#include "core/scratch.h"

#include <pthread.h>

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void free_buffer(void *buffer) {
    lz_buffer_t *b = buffer;
    lz_buffer_destroy(&b);
}

static void make_key(void) { pthread_key_create(&key, free_buffer); }

lz_buffer_t *lz__scratch_buffer(void) {
    pthread_once(&key_once, make_key);
    lz_buffer_t *buffer = pthread_getspecific(key);
    if (!buffer) {
        buffer = lz_buffer_new();
        if (!buffer || pthread_setspecific(key, buffer) != 0) {
            lz_buffer_destroy(&buffer);
            return NULL;
        }
    }
    lz_buffer_reset(buffer);
    return buffer;
}
