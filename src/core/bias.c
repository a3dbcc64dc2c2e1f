/* The biased lock's slow paths: the mutex, revoking, and granting a bias
 * (see bias.h for why and how). */
#include "core/bias.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Thread_local char lz__bias_token __attribute__((tls_model("initial-exec")));

static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static atomic_bool biasing; // membarrier is registered and biasing is allowed

static void register_membarrier(void) {
    long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (commands < 0 || !(commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return;
    atomic_store(&biasing, true);
}

static bool biasing_allowed(void) {
    pthread_once(&membarrier_once, register_membarrier);
    return atomic_load_explicit(&biasing, memory_order_relaxed);
}

void lz__bias_disable(void) {
    pthread_once(&membarrier_once, register_membarrier);
    atomic_store(&biasing, false);
}

// fence_every_thread runs a full memory barrier on every CPU that runs a
// thread of this process. Once registered (which a bias implies, and which
// fork keeps) the expedited command has no failure to report; the global
// one, much slower but needing no registration, stands behind it all the
// same, since a wrong answer here would be two holders at once.
static void fence_every_thread(void) {
    while (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) return;
        // No barrier at all is possible: wait for the owner's mark to
        // reach memory the slow way (a store buffer drains in microseconds).
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        return;
    }
}

void lz__bias_init(lz_bias_t *b) {
    atomic_init(&b->owner, NULL);
    b->fast = NULL;
    pthread_mutex_init(&b->mutex, NULL);
    b->revoked = NULL;
    b->streak_thread = NULL;
    b->streak = 0;
    b->slot_count = 0;
    b->revocations = 0;
    for (unsigned i = 0; i < LZ_BIAS_SLOTS; i++) {
        b->slots[i].thread = NULL;
        atomic_init(&b->slots[i].inside, false);
    }
}

void lz__bias_fini(lz_bias_t *b) { pthread_mutex_destroy(&b->mutex); }

// wait_a_little backs off while a revoked owner finishes: spin briefly (it
// is usually a send away from done), then yield, then sleep, since its
// section may be a receive that waits (a server's, a client's).
static void wait_a_little(unsigned round) {
    if (round < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else if (round < 128) {
        sched_yield();
    } else {
        struct timespec pause = {0, 100 * 1000};
        nanosleep(&pause, NULL);
    }
}

// take_over runs under the mutex: it revokes the bias, if any, and then
// waits (or, with wait false, gives up) until the revoked owner is out.
// True once nobody else can be inside.
static bool take_over(lz_bias_t *b, bool wait) {
    lz_bias_slot_t *owner = atomic_load_explicit(&b->owner, memory_order_relaxed);
    if (owner) {
        atomic_store_explicit(&b->owner, NULL, memory_order_relaxed);
        // After this the owner either shows inside, or its check sees NULL.
        fence_every_thread();
        b->revoked = owner;
        b->revocations++;
    }
    if (b->revoked) {
        for (unsigned round = 0; atomic_load_explicit(&b->revoked->inside, memory_order_acquire); round++) {
            if (!wait) return false;
            wait_a_little(round);
        }
        b->revoked = NULL;
    }
    return true;
}

// held_by_mutex finishes a take of the mutex: counts the caller's streak.
static void held_by_mutex(lz_bias_t *b) {
    b->fast = NULL;
    const void *self = lz__bias_self();
    if (b->streak_thread == self) {
        b->streak++;
    } else {
        b->streak_thread = self;
        b->streak = 1;
    }
}

void lz__bias_lock_slow(lz_bias_t *b) {
    pthread_mutex_lock(&b->mutex);
    take_over(b, true);
    held_by_mutex(b);
}

bool lz__bias_trylock_slow(lz_bias_t *b) {
    if (pthread_mutex_trylock(&b->mutex) != 0) return false;
    if (!take_over(b, false)) {
        pthread_mutex_unlock(&b->mutex);
        return false;
    }
    held_by_mutex(b);
    return true;
}

// slot_of finds the caller's slot, giving it a free one if it has none;
// NULL when every slot belongs to another thread.
static lz_bias_slot_t *slot_of(lz_bias_t *b, const void *self) {
    for (unsigned i = 0; i < b->slot_count; i++)
        if (b->slots[i].thread == self) return &b->slots[i];
    if (b->slot_count == LZ_BIAS_SLOTS) return NULL;
    lz_bias_slot_t *slot = &b->slots[b->slot_count++];
    slot->thread = self;
    return slot;
}

void lz__bias_unlock_slow(lz_bias_t *b) {
    if (b->streak >= LZ_BIAS_STREAK && biasing_allowed()) {
        lz_bias_slot_t *slot = slot_of(b, lz__bias_self());
        // Published with release: the slot's thread field is set first.
        if (slot) atomic_store_explicit(&b->owner, slot, memory_order_release);
        b->streak = 0;
    }
    pthread_mutex_unlock(&b->mutex);
}

bool lz__bias_owned(lz_bias_t *b) {
    lz_bias_slot_t *owner = atomic_load_explicit(&b->owner, memory_order_acquire);
    return owner && owner->thread == lz__bias_self();
}
