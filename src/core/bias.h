/* Internal: a lock that leans towards the thread that keeps taking it.
 *
 * Every socket of ours is guarded by a lock, because libzmq sockets are not
 * thread safe and our calls are. Nearly always one thread uses a socket (a
 * sender's loop, a receiver's loop), and a pthread mutex still costs that
 * thread two lock-prefixed instructions per message: at 16 bytes over tcp,
 * about 5% of all the CPU time of a push/pull stream (perf, per thread).
 *
 * A biased lock lets one thread, its owner, take and drop it with plain
 * stores: it marks itself inside its own slot and checks it is still the
 * owner. Any other thread takes the mutex, revokes the bias and waits until
 * the owner is out. The owner's mark-then-check needs a store-load fence;
 * instead of paying it on every lock, the revoker has the kernel run one on
 * every CPU of the process (membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED),
 * so after it the owner either shows inside or sees it lost the bias. This
 * is the asymmetric Dekker pattern of biased locking and userspace RCU.
 *
 * A thread gets the bias after LZ_BIAS_STREAK takes of the mutex in a row
 * with no other thread between, so a revocation (a few microseconds) is paid
 * at most once per that many locks, however threads interleave. Without
 * membarrier (kernels before 4.14, valgrind, a seccomp filter) the lock is
 * a plain mutex. Not recursive, like the default mutex. */
#ifndef LZ_CORE_BIAS_H
#define LZ_CORE_BIAS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define LZ_BIAS_STREAK 256
// Threads that may ever own one lock. A slot is never handed to another
// thread (a thread that lost the bias may still write its own slot's mark
// once), so the slots bound how many threads a lock can lean to in turn.
#define LZ_BIAS_SLOTS 4

typedef struct lz_bias_slot {
    const void *thread; // whose slot (see lz__bias_self); set once, under the mutex
    atomic_bool inside; // that thread holds the lock through the bias
} lz_bias_slot_t;

typedef struct lz_bias {
    _Atomic(lz_bias_slot_t *) owner; // the thread the lock leans to, or NULL
    lz_bias_slot_t *fast;            // the holder's slot if it holds through the bias; the holder's alone
    pthread_mutex_t mutex;           // everyone else; the fields below are under it
    lz_bias_slot_t *revoked;         // an owner that lost the bias and may still be inside
    const void *streak_thread;       // who took the mutex last, streak times in a row
    unsigned streak;
    unsigned slot_count;
    unsigned long revocations; // biases taken back (for tests)
    lz_bias_slot_t slots[LZ_BIAS_SLOTS];
} lz_bias_t;

void lz__bias_init(lz_bias_t *b);
// lz__bias_fini releases the mutex; the lock must not be held.
void lz__bias_fini(lz_bias_t *b);

// The calling thread's identity: an address unique among live threads.
extern _Thread_local char lz__bias_token __attribute__((tls_model("initial-exec")));
static inline const void *lz__bias_self(void) { return &lz__bias_token; }

void lz__bias_lock_slow(lz_bias_t *b);
bool lz__bias_trylock_slow(lz_bias_t *b);
void lz__bias_unlock_slow(lz_bias_t *b);

// lz__bias_enter takes the lock through the bias, if the caller owns it:
// no lock-prefixed instruction, only the revoker's membarrier orders the
// mark against the check (the signal fence keeps the compiler from
// reordering them).
static inline bool lz__bias_enter(lz_bias_t *b) {
    lz_bias_slot_t *slot = atomic_load_explicit(&b->owner, memory_order_acquire);
    if (!slot || slot->thread != lz__bias_self()) return false;
    atomic_store_explicit(&slot->inside, true, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&b->owner, memory_order_acquire) != slot) {
        atomic_store_explicit(&slot->inside, false, memory_order_release); // revoked meanwhile
        return false;
    }
    b->fast = slot;
    return true;
}

// lz__bias_lock takes the lock, waiting as long as it takes.
static inline void lz__bias_lock(lz_bias_t *b) {
    if (!lz__bias_enter(b)) lz__bias_lock_slow(b);
}

// lz__bias_trylock takes the lock if nobody holds it: false at once
// otherwise, even when that means revoking an owner that is inside.
static inline bool lz__bias_trylock(lz_bias_t *b) { return lz__bias_enter(b) || lz__bias_trylock_slow(b); }

static inline void lz__bias_unlock(lz_bias_t *b) {
    lz_bias_slot_t *slot = b->fast;
    if (slot)
        atomic_store_explicit(&slot->inside, false, memory_order_release);
    else
        lz__bias_unlock_slow(b);
}

// lz__bias_owned: whether the lock leans to the calling thread now. For tests.
bool lz__bias_owned(lz_bias_t *b);

// lz__bias_disable stops every lock from granting a bias from now on (an
// owner keeps its bias until revoked). For tests and comparisons.
void lz__bias_disable(void);

#endif
