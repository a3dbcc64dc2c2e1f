/* Recycled send buffers (see sendbuf.h for why).
 *
 * A buffer is taken by the sending thread and given back by whichever
 * thread libzmq frees the frame on: the receiver over inproc, an I/O thread
 * over tcp and ipc. So that the two never wait on each other, as they do
 * on a malloc arena's lock, a shelf is a lock-free stack that any thread
 * pushes one buffer onto, and that a sender empties in one atomic exchange
 * into its own hand, from which it then takes buffers without atomics.
 * Only whole-stack removal is done, so the stack has no ABA problem.
 *
 * The shelves outlive any context: libzmq may give a buffer back after the
 * socket that sent it is closed (an lz_message_t received over inproc holds
 * the sender's buffer), so they are process-wide. */
#include "core/sendbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "core/thread_object.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define KEPT_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define KEPT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define KEPT_POISON(p, n) ((void)(p), (void)(n))
#define KEPT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SHELF_MIN_SHIFT 7 // 128 B
#define SHELF_COUNT 14    // 128 B .. 1 MiB
_Static_assert((1u << SHELF_MIN_SHIFT) >= LZ_SENDBUF_MIN && (1u << (SHELF_MIN_SHIFT - 1)) < LZ_SENDBUF_MIN,
               "the first shelf holds LZ_SENDBUF_MIN");
_Static_assert((1u << (SHELF_MIN_SHIFT + SHELF_COUNT - 1)) == LZ_SENDBUF_MAX, "the last shelf holds LZ_SENDBUF_MAX");

// A kept buffer's first bytes link it to the next one on its stack.
typedef struct kept {
    struct kept *next;
} kept_t;

// A shelf: the buffers given back and not yet taken into a sender's hand.
// One cache line each, so threads sending frames of different sizes do not
// bounce each other's line.
typedef struct shelf {
    _Alignas(64) _Atomic(kept_t *) top;
    atomic_size_t count;
} shelf_t;

static shelf_t shelves[SHELF_COUNT];

// A thread's hand: buffers it took off the shelves, its alone. A shelf's
// count covers its buffers in hands too, until the hand has used them all:
// the hand then settles what it took in one subtraction, instead of
// walking each list it grabs (the count errs on the side of letting go).
// Every hand is listed, so that lz__sendbuf_kept, for tests, can take
// what each has used off the count, exactly, whichever thread asks.
typedef struct hand {
    kept_t *top[SHELF_COUNT];
    // Used since the shelf's count was settled: written by the hand's
    // thread only (a plain load and store), read by lz__sendbuf_kept.
    _Atomic size_t taken[SHELF_COUNT];
    struct hand *next, **prev; // in hands, under hands_lock
} hand_t;

static pthread_mutex_t hands_lock = PTHREAD_MUTEX_INITIALIZER;
static hand_t *hands;

static pthread_key_t hand_key;
static pthread_once_t hand_once = PTHREAD_ONCE_INIT;
static _Thread_local hand_t *thread_hand __attribute__((tls_model("initial-exec")));

// shelf_of: the shelf whose buffers hold size bytes (size within
// LZ_SENDBUF_MIN .. LZ_SENDBUF_MAX).
static unsigned shelf_of(size_t size) {
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)size - 1);
    return bits <= SHELF_MIN_SHIFT ? 0 : bits - SHELF_MIN_SHIFT;
}

static size_t shelf_size(unsigned shelf) { return (size_t)1 << (SHELF_MIN_SHIFT + shelf); }

// shelve pushes a buffer already counted onto its shelf.
static void shelve(kept_t *k, unsigned shelf) {
    shelf_t *s = &shelves[shelf];
    KEPT_POISON((char *)k + sizeof *k, shelf_size(shelf) - sizeof *k);
    kept_t *top = atomic_load_explicit(&s->top, memory_order_relaxed);
    do {
        k->next = top;
    } while (!atomic_compare_exchange_weak_explicit(&s->top, &top, k, memory_order_release, memory_order_relaxed));
}

// give_back is libzmq's free function for a frame's buffer (hint: its
// shelf). A full shelf (LZ_SENDBUF_KEEP bytes) lets the buffer go.
static void give_back(void *data, void *hint) {
    unsigned shelf = (unsigned)(uintptr_t)hint;
    shelf_t *s = &shelves[shelf];
    if (atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed) >= LZ_SENDBUF_KEEP / shelf_size(shelf)) {
        atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed);
        free(data);
        return;
    }
    shelve(data, shelf);
}

// settle takes what hand used of shelf off the shelf's count.
static void settle(hand_t *hand, unsigned shelf) {
    size_t taken = atomic_load_explicit(&hand->taken[shelf], memory_order_relaxed);
    if (!taken) return;
    atomic_fetch_sub_explicit(&shelves[shelf].count, taken, memory_order_relaxed);
    atomic_store_explicit(&hand->taken[shelf], 0, memory_order_relaxed);
}

// hand_list adds hand to hands; hand_unlist, hands_lock held, takes it off.
static void hand_list(hand_t *hand) {
    pthread_mutex_lock(&hands_lock);
    hand->next = hands;
    hand->prev = &hands;
    if (hands) hands->prev = &hand->next;
    hands = hand;
    pthread_mutex_unlock(&hands_lock);
}

static void hand_unlist(hand_t *hand) { // under hands_lock
    *hand->prev = hand->next;
    if (hand->next) hand->next->prev = hand->prev;
}

// drop_hand runs when a thread exits: what it still holds goes back on the
// shelves for other threads (still counted). It leaves hands settled, so
// lz__sendbuf_kept never sees it half gone.
static void drop_hand(void *arg) {
    hand_t *hand = arg;
    if (thread_hand == hand) thread_hand = NULL;
    pthread_mutex_lock(&hands_lock);
    for (unsigned i = 0; i < SHELF_COUNT; i++) settle(hand, i);
    hand_unlist(hand);
    pthread_mutex_unlock(&hands_lock);
    for (unsigned i = 0; i < SHELF_COUNT; i++) {
        for (kept_t *k = hand->top[i], *next; k; k = next) {
            next = k->next;
            shelve(k, i);
        }
    }
    free(hand);
}

static void hand_key_init(void) { (void)pthread_key_create(&hand_key, drop_hand); }

// make_hand makes the calling thread's hand on first use; NULL (every take
// a malloc) when that fails.
static hand_t *make_hand(void) {
    thread_hand = lz__thread_object_new(&hand_once, hand_key_init, &hand_key, sizeof(hand_t));
    if (thread_hand) hand_list(thread_hand);
    return thread_hand;
}

// take gives a buffer for shelf: from the hand, else from the shelf
// emptied into the hand, else from malloc.
static void *take(unsigned shelf) {
    hand_t *hand = thread_hand ? thread_hand : make_hand();
    if (!hand) return malloc(shelf_size(shelf));
    kept_t *k = hand->top[shelf];
    if (!k) {
        settle(hand, shelf);
        if (atomic_load_explicit(&shelves[shelf].top, memory_order_relaxed))
            k = atomic_exchange_explicit(&shelves[shelf].top, NULL, memory_order_acquire);
        if (!k) return malloc(shelf_size(shelf));
    }
    hand->top[shelf] = k->next;
    if (k->next) __builtin_prefetch(k->next, 1); // the next take reads its link: fetch it meanwhile
    atomic_store_explicit(&hand->taken[shelf], atomic_load_explicit(&hand->taken[shelf], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    KEPT_UNPOISON(k, shelf_size(shelf));
    return k;
}

// build_kept makes *msg a copy of data in a recycled buffer (size within
// LZ_SENDBUF_MIN .. LZ_SENDBUF_MAX): 0, or -1 with errno (nothing to close).
static int build_kept(zmq_msg_t *msg, const void *data, size_t size) {
    unsigned shelf = shelf_of(size);
    void *buffer = take(shelf);
    if (!buffer) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(buffer, data, size);
    if (zmq_msg_init_data(msg, buffer, size, give_back, (void *)(uintptr_t)shelf) == 0) return 0;
    int err = errno;
    give_back(buffer, (void *)(uintptr_t)shelf);
    errno = err;
    return -1;
}

int lz__sendbuf_build(zmq_msg_t *msg, const void *data, size_t size) {
    if (size >= LZ_SENDBUF_MIN && size <= LZ_SENDBUF_MAX) return build_kept(msg, data, size);
    if (zmq_msg_init_size(msg, size) != 0) return -1;
    if (size) memcpy(zmq_msg_data(msg), data, size);
    return 0;
}

int lz__sendbuf_send(void *socket, const void *data, size_t size, int flags) {
    if (size < LZ_SENDBUF_MIN || size > LZ_SENDBUF_MAX) return zmq_send(socket, data, size, flags);
    zmq_msg_t msg;
    if (build_kept(&msg, data, size) != 0) return -1;
    if (zmq_msg_send(&msg, socket, flags) >= 0) return (int)size;
    int err = zmq_errno();
    zmq_msg_close(&msg); // not sent: still ours, and closing it gives the buffer back
    errno = err;
    return -1;
}

size_t lz__sendbuf_kept(size_t frame_size) {
    if (frame_size < LZ_SENDBUF_MIN || frame_size > LZ_SENDBUF_MAX) return 0;
    unsigned shelf = shelf_of(frame_size);
    pthread_mutex_lock(&hands_lock);
    size_t kept = atomic_load(&shelves[shelf].count);
    for (const hand_t *hand = hands; hand; hand = hand->next) kept -= atomic_load(&hand->taken[shelf]);
    pthread_mutex_unlock(&hands_lock);
    return kept;
}

// At exit the kept buffers go back to malloc, so leak checkers see none
// still held: this thread's hand goes back on the shelves as at any thread's
// exit (the key's destructor does not run for the main thread), then the
// shelves are emptied. A frame sent after this, by a thread still running,
// is kept again, which is harmless.
__attribute__((destructor)) static void free_kept(void) {
    if (thread_hand) {
        (void)pthread_setspecific(hand_key, NULL);
        drop_hand(thread_hand);
    }
    for (unsigned i = 0; i < SHELF_COUNT; i++) {
        size_t freed = 0;
        for (kept_t *k = atomic_exchange(&shelves[i].top, NULL), *next; k; k = next, freed++) {
            next = k->next;
            KEPT_UNPOISON(k, shelf_size(i));
            free(k);
        }
        atomic_fetch_sub(&shelves[i].count, freed);
    }
}
