/* Recycled send buffers for large frames (see sendbuf.h for why). The
 * buffers outlive any context: libzmq may hand one back after the socket
 * that sent it is closed (an lz_message_t received over inproc holds the
 * sender's buffer), so the shelves are process-wide and never torn down. */
#include "core/sendbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define KEPT_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define KEPT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define KEPT_POISON(p, n) ((void)(p), (void)(n))
#define KEPT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SHELF_MIN_SHIFT 12 // 4 KiB
#define SHELF_COUNT 9      // 4 KiB .. 1 MiB
_Static_assert((1u << SHELF_MIN_SHIFT) == LZ_SENDBUF_MIN, "the first shelf holds LZ_SENDBUF_MIN");
_Static_assert((1u << (SHELF_MIN_SHIFT + SHELF_COUNT - 1)) == LZ_SENDBUF_MAX, "the last shelf holds LZ_SENDBUF_MAX");

// A kept buffer's first bytes link it to the next one on its shelf.
typedef struct kept {
    struct kept *next;
} kept_t;

typedef struct shelf {
    pthread_mutex_t lock;
    kept_t *top;
    size_t count;
} shelf_t;

#define SHELF {.lock = PTHREAD_MUTEX_INITIALIZER}
static shelf_t shelves[SHELF_COUNT] = {SHELF, SHELF, SHELF, SHELF, SHELF, SHELF, SHELF, SHELF, SHELF};

// shelf_of: the shelf whose buffers hold size bytes (size within
// LZ_SENDBUF_MIN .. LZ_SENDBUF_MAX).
static unsigned shelf_of(size_t size) {
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)size - 1);
    return bits <= SHELF_MIN_SHIFT ? 0 : bits - SHELF_MIN_SHIFT;
}

static size_t shelf_size(unsigned shelf) { return (size_t)1 << (SHELF_MIN_SHIFT + shelf); }

static void *take(unsigned shelf) {
    shelf_t *s = &shelves[shelf];
    pthread_mutex_lock(&s->lock);
    kept_t *k = s->top;
    if (k) {
        KEPT_UNPOISON(k, shelf_size(shelf));
        s->top = k->next;
        s->count--;
    }
    pthread_mutex_unlock(&s->lock);
    return k ? (void *)k : malloc(shelf_size(shelf));
}

// give_back is libzmq's free function for a frame's buffer (hint: its shelf).
static void give_back(void *data, void *hint) {
    unsigned shelf = (unsigned)(uintptr_t)hint;
    shelf_t *s = &shelves[shelf];
    kept_t *k = data;
    pthread_mutex_lock(&s->lock);
    if (s->count < LZ_SENDBUF_KEEP / shelf_size(shelf)) {
        k->next = s->top;
        s->top = k;
        s->count++;
        KEPT_POISON((char *)k + sizeof *k, shelf_size(shelf) - sizeof *k);
        k = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free(k);
}

int lz__sendbuf_send(void *socket, const void *data, size_t size, int flags) {
    if (size < LZ_SENDBUF_MIN || size > LZ_SENDBUF_MAX) return zmq_send(socket, data, size, flags);
    unsigned shelf = shelf_of(size);
    void *buffer = take(shelf);
    if (!buffer) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(buffer, data, size);
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, buffer, size, give_back, (void *)(uintptr_t)shelf) != 0) {
        give_back(buffer, (void *)(uintptr_t)shelf);
        return -1;
    }
    if (zmq_msg_send(&msg, socket, flags) >= 0) return (int)size;
    int err = zmq_errno();
    zmq_msg_close(&msg); // not sent: still ours, and closing it gives the buffer back
    errno = err;
    return -1;
}

size_t lz__sendbuf_kept(size_t frame_size) {
    if (frame_size < LZ_SENDBUF_MIN || frame_size > LZ_SENDBUF_MAX) return 0;
    shelf_t *s = &shelves[shelf_of(frame_size)];
    pthread_mutex_lock(&s->lock);
    size_t count = s->count;
    pthread_mutex_unlock(&s->lock);
    return count;
}

// At exit the kept buffers go back to malloc, so leak checkers see none
// still held. A frame sent after this (by a thread still running) is kept
// again, which is harmless: the shelves never go away.
__attribute__((destructor)) static void free_kept(void) {
    for (unsigned i = 0; i < SHELF_COUNT; i++) {
        pthread_mutex_lock(&shelves[i].lock);
        kept_t *k = shelves[i].top;
        shelves[i].top = NULL;
        shelves[i].count = 0;
        pthread_mutex_unlock(&shelves[i].lock);
        while (k) {
            KEPT_UNPOISON(k, shelf_size(i));
            kept_t *next = k->next;
            free(k);
            k = next;
        }
    }
}
