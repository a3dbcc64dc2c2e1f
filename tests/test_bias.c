/* The biased lock (src/core/bias.c): it leans to a thread that keeps
 * taking it, never lets two threads in at once however the bias moves
 * (each holder checks it is alone inside, and a plain counter updated
 * under the lock loses no update), moves to each thread that takes a long
 * turn (one revocation per turn), makes a taker wait for an owner that is
 * inside, lets trylock give up at once instead, and stays a plain mutex
 * once biasing is off. */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/bias.h"
#include "lz_test.h"

// Whether this kernel (and whatever runs us: valgrind has no membarrier)
// lets a lock lean at all.
static bool membarrier_works(void) {
    long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

static void take_many(lz_bias_t *b, int times) {
    for (int i = 0; i < times; i++) {
        lz__bias_lock(b);
        lz__bias_unlock(b);
    }
}

LZ_TEST(bias_leans_to_the_thread_that_keeps_taking_it) {
    lz_bias_t b;
    lz__bias_init(&b);
    take_many(&b, LZ_BIAS_STREAK - 1);
    LZ_CHECK(!lz__bias_owned(&b)); // not before the streak
    take_many(&b, 2);
    LZ_CHECK(lz__bias_owned(&b) == membarrier_works());
    lz__bias_lock(&b);
    LZ_CHECK(b.fast != NULL || !membarrier_works()); // held through the bias
    lz__bias_unlock(&b);
    lz__bias_fini(&b);
}

/* ---- mutual exclusion under a moving bias -------------------------------- */

#define CONTENDERS 4
#define ROUNDS 40
// Long enough to earn the bias, so it keeps moving between threads.
#define STREAK (LZ_BIAS_STREAK + 50)

typedef struct shared {
    lz_bias_t lock;
    atomic_int inside;   // holders right now: must never pass 1
    atomic_int overlaps; // times it did
    long counter;        // plain: updated only under the lock
    pthread_barrier_t start;
} shared_t;

static void critical_section(shared_t *s) {
    if (atomic_fetch_add(&s->inside, 1) != 0) atomic_fetch_add(&s->overlaps, 1);
    long seen = s->counter;
    for (volatile int spin = 0; spin < 200; spin++) {
    } // widen the window a second holder would need
    s->counter = seen + 1;
    atomic_fetch_sub(&s->inside, 1);
}

static void *contender(void *arg) {
    shared_t *s = arg;
    pthread_barrier_wait(&s->start);
    for (int round = 0; round < ROUNDS; round++) {
        // A streak long enough for a bias, then a pause for the others to
        // revoke it; every fourth round by trylock, which may give up.
        for (int i = 0; i < STREAK; i++) {
            if (round % 4 == 3) {
                while (!lz__bias_trylock(&s->lock)) sched_yield();
            } else {
                lz__bias_lock(&s->lock);
            }
            critical_section(s);
            lz__bias_unlock(&s->lock);
        }
        sched_yield();
    }
    return NULL;
}

// run_contenders runs n contenders on one lock, checks that none ever
// overlapped and no update was lost, and returns how often the bias moved.
static unsigned long run_contenders(int n) {
    shared_t s = {.counter = 0};
    lz__bias_init(&s.lock);
    atomic_init(&s.inside, 0);
    atomic_init(&s.overlaps, 0);
    pthread_barrier_init(&s.start, NULL, (unsigned)n);
    pthread_t threads[CONTENDERS];
    for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, contender, &s);
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
    LZ_CHECK_INT(atomic_load(&s.overlaps), 0);
    LZ_CHECK_INT(s.counter, (long)n * ROUNDS * STREAK);
    unsigned long revocations = s.lock.revocations;
    pthread_barrier_destroy(&s.start);
    lz__bias_fini(&s.lock);
    return revocations;
}

LZ_TEST(bias_never_lets_two_threads_in) {
    // How often the bias moved depends on the scheduler (the next test
    // moves it on purpose).
    printf("  %lu revocations\n", run_contenders(CONTENDERS));
}

/* ---- the bias moves from thread to thread --------------------------------- */

#define TURN_THREADS 3
#define TURNS 8

typedef struct baton {
    lz_bias_t lock;
    atomic_int turn;      // whose turn: turn % TURN_THREADS
    atomic_int not_owned; // streaks after which the taker did not own the bias
    long counter;
} baton_t;

typedef struct turn_taker {
    baton_t *baton;
    int index;
} turn_taker_t;

static void *take_turns(void *arg) {
    turn_taker_t *me = arg;
    baton_t *b = me->baton;
    for (int turn = me->index; turn < TURN_THREADS * TURNS; turn += TURN_THREADS) {
        while (atomic_load(&b->turn) != turn) sched_yield();
        for (int i = 0; i < LZ_BIAS_STREAK + 1; i++) {
            lz__bias_lock(&b->lock);
            b->counter++;
            lz__bias_unlock(&b->lock);
        }
        if (!lz__bias_owned(&b->lock)) atomic_fetch_add(&b->not_owned, 1);
        atomic_store(&b->turn, turn + 1);
    }
    return NULL;
}

// Threads take turns, each long enough to earn the bias: each turn's first
// take revokes the previous thread's bias, every time.
LZ_TEST(bias_moves_to_each_thread_in_turn) {
    baton_t b = {.counter = 0};
    lz__bias_init(&b.lock);
    atomic_init(&b.turn, 0);
    atomic_init(&b.not_owned, 0);
    pthread_t threads[TURN_THREADS];
    turn_taker_t takers[TURN_THREADS];
    for (int i = 0; i < TURN_THREADS; i++) {
        takers[i] = (turn_taker_t){&b, i};
        pthread_create(&threads[i], NULL, take_turns, &takers[i]);
    }
    for (int i = 0; i < TURN_THREADS; i++) pthread_join(threads[i], NULL);
    LZ_CHECK_INT(b.counter, (long)TURN_THREADS * TURNS * (LZ_BIAS_STREAK + 1));
    if (membarrier_works()) {
        LZ_CHECK_INT(atomic_load(&b.not_owned), 0);
        LZ_CHECK_INT(b.lock.revocations, TURN_THREADS * TURNS - 1);
    }
    lz__bias_fini(&b.lock);
}

/* ---- an owner inside holds everyone else off ----------------------------- */

typedef struct handoff {
    lz_bias_t lock;
    atomic_int stage; // 1: owner inside; 2: taker started; 3: owner out
    atomic_bool owner_out_first;
    atomic_bool trylock_refused;
} handoff_t;

static void wait_stage(handoff_t *h, int stage) {
    while (atomic_load(&h->stage) < stage) sched_yield();
}

static void *taker(void *arg) {
    handoff_t *h = arg;
    wait_stage(h, 1);
    atomic_store(&h->trylock_refused, !lz__bias_trylock(&h->lock));
    atomic_store(&h->stage, 2);
    lz__bias_lock(&h->lock); // must wait for the owner
    atomic_store(&h->owner_out_first, atomic_load(&h->stage) == 3);
    lz__bias_unlock(&h->lock);
    return NULL;
}

LZ_TEST(bias_owner_inside_makes_others_wait) {
    handoff_t h;
    lz__bias_init(&h.lock);
    atomic_init(&h.stage, 0);
    atomic_init(&h.owner_out_first, false);
    atomic_init(&h.trylock_refused, false);
    take_many(&h.lock, LZ_BIAS_STREAK + 1); // this thread owns it, where biasing works
    pthread_t thread;
    pthread_create(&thread, NULL, taker, &h);
    lz__bias_lock(&h.lock);
    atomic_store(&h.stage, 1);
    wait_stage(&h, 2);
    lz_test_sleep_ms(50); // the taker is now waiting in lz__bias_lock
    atomic_store(&h.stage, 3);
    lz__bias_unlock(&h.lock);
    pthread_join(thread, NULL);
    LZ_CHECK(atomic_load(&h.trylock_refused));
    LZ_CHECK(atomic_load(&h.owner_out_first));
    LZ_CHECK(!lz__bias_owned(&h.lock)); // the taker revoked the bias
    take_many(&h.lock, LZ_BIAS_STREAK + 1);
    LZ_CHECK(lz__bias_owned(&h.lock) == membarrier_works()); // and it comes back
    lz__bias_fini(&h.lock);
}

// Last: biasing stays off for the rest of the process.
LZ_TEST(bias_off_is_a_plain_mutex) {
    lz__bias_disable();
    lz_bias_t b;
    lz__bias_init(&b);
    take_many(&b, 4 * LZ_BIAS_STREAK);
    LZ_CHECK(!lz__bias_owned(&b));
    lz__bias_fini(&b);
    LZ_CHECK_INT(run_contenders(2), 0);
}

LZ_TEST_MAIN(LZ_CASE(bias_leans_to_the_thread_that_keeps_taking_it), LZ_CASE(bias_never_lets_two_threads_in),
             LZ_CASE(bias_moves_to_each_thread_in_turn), LZ_CASE(bias_owner_inside_makes_others_wait),
             LZ_CASE(bias_off_is_a_plain_mutex))
