/* Allocation failures on demand, for the out-of-memory tests (test_oom_*.c).
 *
 * Including this header defines malloc, calloc, realloc, free and the
 * aligned allocators in the test program, which the dynamic linker then
 * binds every library's calls to (glibc's own strdup included). They pass
 * through to glibc's (__libc_*), except that the thread that armed them
 * sees its nth allocation fail, as a real out-of-memory would: NULL and
 * errno ENOMEM (C++'s operator new then throws std::bad_alloc, or returns
 * NULL in its nothrow form).
 *
 * lz_oom_arm_threads does the same for every other thread together (the
 * library's receivers, workers and loops): their nth allocation fails.
 *
 * lz_oom_sweep runs an operation with its 1st allocation failing, then its
 * 2nd, and so on until a run makes no more allocations than the one that
 * was to fail: every allocation the operation makes has failed once, each
 * in a run of its own, and the operation's answer each time was checked by
 * the caller's function (lz_oom_sweep_t says how: on which threads, which
 * allocations, its leaks). It uses lz_test.h's checks: include that first.
 *
 * Only for programs built without a sanitizer: ASan and TSan replace malloc
 * themselves, and two definitions cannot both win (LZ_OOM_AVAILABLE is 0
 * there, and the sweeps run nothing). Under valgrind, memcheck replaces
 * these as well, so nothing fails there either: the sweeps run in the
 * normal and clang builds. Include it in one file of a program only.
 *
 * LZ_OOM_SITES=1 records where each live block was allocated (its stack),
 * and a sweep that leaks then prints the stacks of the blocks it left. */
#ifndef LZ_OOM_H
#define LZ_OOM_H

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h> // memalign's prototype, for its definition below
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "liberzmq/error.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LZ_OOM_AVAILABLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define LZ_OOM_AVAILABLE 0
#endif
#endif
#ifndef LZ_OOM_AVAILABLE
#define LZ_OOM_AVAILABLE 1
#endif

// The arming thread's state: allocations counted since it armed, and which
// one fails (0: none). Initial-exec TLS of the program itself: reading it
// allocates nothing, so malloc may read it. Volatile: GCC takes a builtin
// such as strdup for one that calls nothing of this program, and would
// otherwise move the stores of lz_oom_arm and lz_oom_stop past a call to it.
static _Thread_local volatile long lz_oom_counted;
static _Thread_local volatile long lz_oom_failing;
static _Thread_local volatile bool lz_oom_failed;
static _Thread_local volatile bool lz_oom_counting;
static _Thread_local const char *const *lz_oom_spared;

// lz_oom_spare names objects (NULL-terminated list of substrings of their
// file names, e.g. "libzmq.so", "libstdc++.so") whose own calls to the
// allocators are neither counted nor failed on this thread: libzmq aborts
// on a failed allocation by design (alloc_assert), so a test of our code
// around it spares it. NULL spares none. The list must outlive its use.
static inline void lz_oom_spare(const char *const *objects) { lz_oom_spared = objects; }

static inline bool lz_oom_caller_in(const void *caller, const char *const *objects) {
    Dl_info info;
    if (!objects || !dladdr(caller, &info) || !info.dli_fname) return false;
    for (const char *const *object = objects; *object; object++)
        if (strstr(info.dli_fname, *object)) return true;
    return false;
}

// The other threads, armed together (lz_oom_arm_threads): the library's
// receivers, workers and loops, whose failures a test sees only through
// what they do next (a count in the metrics, an error reply, a log line).
static atomic_long lz_oom_threads_counted;
static atomic_long lz_oom_threads_failing;
static atomic_bool lz_oom_threads_failed;
static const char *const *_Atomic lz_oom_threads_spared;
static _Thread_local volatile bool lz_oom_exempt;

// lz_oom_arm_threads makes the nth allocation from now by any thread but the
// exempt ones fail (0: none, only counted); the calling thread is exempt
// from now on (lz_oom_exempt_thread says so of others: a test's helper
// threads). spared as lz_oom_spare's, for every thread. Which thread makes
// the nth allocation depends on the scheduler: a sweep over n checks what
// holds whichever it is.
static inline void lz_oom_arm_threads(long n, const char *const *spared) {
    lz_oom_exempt = true;
    atomic_store(&lz_oom_threads_failing, 0);
    atomic_store(&lz_oom_threads_spared, spared);
    atomic_store(&lz_oom_threads_counted, 0);
    atomic_store(&lz_oom_threads_failed, false);
    atomic_store(&lz_oom_threads_failing, n ? n : LONG_MAX);
}

// lz_oom_stop_threads ends the other threads' counting and returns whether
// the armed allocation failed; *counted (if not NULL) gets how many they made.
static inline bool lz_oom_stop_threads(long *counted) {
    atomic_store(&lz_oom_threads_failing, 0);
    if (counted) *counted = atomic_load(&lz_oom_threads_counted);
    return atomic_load(&lz_oom_threads_failed);
}

static inline void lz_oom_exempt_thread(bool exempt) { lz_oom_exempt = exempt; }

// lz_oom_threads_hit: whether the other threads' armed allocation has failed yet.
static inline bool lz_oom_threads_hit(void) { return atomic_load(&lz_oom_threads_failed); }

static inline bool lz_oom_thread_fails_now(const void *caller) {
    long failing = atomic_load_explicit(&lz_oom_threads_failing, memory_order_relaxed);
    if (!failing || lz_oom_exempt || lz_oom_caller_in(caller, atomic_load(&lz_oom_threads_spared))) return false;
    if (atomic_fetch_add(&lz_oom_threads_counted, 1) + 1 != failing) return false;
    atomic_store(&lz_oom_threads_failed, true);
    errno = ENOMEM;
    return true;
}

// lz_oom_arm makes the calling thread's nth allocation from now fail (0:
// none, only counted). Other threads' allocations never fail.
static inline void lz_oom_arm(long n) {
    lz_oom_counted = 0;
    lz_oom_failed = false;
    lz_oom_failing = n;
    lz_oom_counting = true;
}

// lz_oom_stop ends the thread's counting (so a test's own checks and clean-up
// allocate freely) and returns whether the armed allocation failed: the
// operation just run must then have reported it.
static inline bool lz_oom_stop(void) {
    lz_oom_counting = false;
    return lz_oom_failed;
}

static inline bool lz_oom_fails_now_for(const void *caller) {
    if (!lz_oom_counting) return lz_oom_thread_fails_now(caller);
    if (lz_oom_caller_in(caller, lz_oom_spared)) return false;
    if (++lz_oom_counted != lz_oom_failing) return false;
    lz_oom_failed = true;
    errno = ENOMEM;
    return true;
}

#if LZ_OOM_AVAILABLE
#include <execinfo.h>

/* Where the live blocks were allocated (LZ_OOM_SITES=1): each block's
 * stack, kept in a table of fixed size (allocating nothing), so that a
 * sweep that leaks can say which blocks it left (lz_oom_say_sites). Off,
 * it costs a test of a flag per call. */
#define LZ_OOM_SITE_FRAMES 8
#define LZ_OOM_SITE_SLOTS (1 << 17) // a power of two; 7/8 of it at most in use
#define LZ_OOM_SITES_SAID 24        // blocks a report shows at most

typedef struct lz_oom_site {
    void *block; // NULL: a free slot
    long stamp;  // the order of the allocation (lz_oom_sites_mark)
    int depth;
    void *frames[LZ_OOM_SITE_FRAMES];
} lz_oom_site_t;

static lz_oom_site_t lz_oom_sites[LZ_OOM_SITE_SLOTS];
static long lz_oom_sites_used, lz_oom_sites_stamp, lz_oom_sites_dropped; // under lz_oom_sites_lock
static pthread_mutex_t lz_oom_sites_lock = PTHREAD_MUTEX_INITIALIZER;
static bool lz_oom_sites_on;
static _Thread_local bool lz_oom_in_backtrace; // backtrace's own allocations are not recorded

static inline size_t lz_oom_site_slot(const void *block) {
    return (size_t)(((uintptr_t)block >> 4) * 0x9E3779B97F4A7C15u >> 15) & (LZ_OOM_SITE_SLOTS - 1);
}

static inline void lz_oom_site_add(void *block) {
    if (!lz_oom_sites_on || !block || lz_oom_in_backtrace) return;
    lz_oom_site_t site = {.block = block};
    lz_oom_in_backtrace = true;
    site.depth = backtrace(site.frames, LZ_OOM_SITE_FRAMES); // outside the lock: it may allocate
    lz_oom_in_backtrace = false;
    pthread_mutex_lock(&lz_oom_sites_lock);
    site.stamp = ++lz_oom_sites_stamp;
    if (lz_oom_sites_used >= LZ_OOM_SITE_SLOTS / 8 * 7) {
        lz_oom_sites_dropped++;
    } else {
        size_t i = lz_oom_site_slot(block);
        while (lz_oom_sites[i].block) i = (i + 1) & (LZ_OOM_SITE_SLOTS - 1);
        lz_oom_sites[i] = site;
        lz_oom_sites_used++;
    }
    pthread_mutex_unlock(&lz_oom_sites_lock);
}

// lz_oom_site_remove frees the block's slot, moving back the ones after it
// that could not take their own slot (linear probing without tombstones).
static inline void lz_oom_site_remove(const void *block) {
    if (!lz_oom_sites_on || !block) return;
    const size_t mask = LZ_OOM_SITE_SLOTS - 1;
    pthread_mutex_lock(&lz_oom_sites_lock);
    size_t i = lz_oom_site_slot(block);
    while (lz_oom_sites[i].block && lz_oom_sites[i].block != block) i = (i + 1) & mask;
    if (lz_oom_sites[i].block) {
        for (size_t j = (i + 1) & mask; lz_oom_sites[j].block; j = (j + 1) & mask) {
            size_t home = lz_oom_site_slot(lz_oom_sites[j].block);
            if (((j - home) & mask) < ((j - i) & mask)) continue; // its home lies between i and j
            lz_oom_sites[i] = lz_oom_sites[j];
            i = j;
        }
        lz_oom_sites[i].block = NULL;
        lz_oom_sites_used--;
    }
    pthread_mutex_unlock(&lz_oom_sites_lock);
}

// lz_oom_sites_mark: the stamp of the latest allocation (0 when not recording).
static inline long lz_oom_sites_mark(void) {
    pthread_mutex_lock(&lz_oom_sites_lock);
    long mark = lz_oom_sites_stamp;
    pthread_mutex_unlock(&lz_oom_sites_lock);
    return mark;
}

// lz_oom_say_frame prints a return address as object+offset (what
// addr2line -fie <object> <offset> reads) and the symbol, if exported.
static inline void lz_oom_say_frame(const void *address) {
    Dl_info info;
    if (!dladdr(address, &info) || !info.dli_fname) {
        fprintf(stderr, "    %p\n", address);
        return;
    }
    const char *object = strrchr(info.dli_fname, '/');
    fprintf(stderr, "    %s +%#lx %s\n", object ? object + 1 : info.dli_fname,
            (unsigned long)((uintptr_t)address - (uintptr_t)info.dli_fbase), info.dli_sname ? info.dli_sname : "");
}

// lz_oom_say_sites prints the stacks of the blocks allocated after mark and
// still live (LZ_OOM_SITES=1), the oldest first.
static inline void lz_oom_say_sites(const char *label, long mark) {
    if (!lz_oom_sites_on) return;
    static lz_oom_site_t said[LZ_OOM_SITES_SAID];
    int count = 0;
    long live = 0;
    pthread_mutex_lock(&lz_oom_sites_lock);
    for (size_t i = 0; i < LZ_OOM_SITE_SLOTS; i++) {
        const lz_oom_site_t *site = &lz_oom_sites[i];
        if (!site->block || site->stamp <= mark) continue;
        if (live++ < LZ_OOM_SITES_SAID) {
            said[count++] = *site;
            continue;
        }
        int newest = 0; // said keeps the oldest
        for (int k = 1; k < count; k++)
            if (said[k].stamp > said[newest].stamp) newest = k;
        if (site->stamp < said[newest].stamp) said[newest] = *site;
    }
    long dropped = lz_oom_sites_dropped;
    pthread_mutex_unlock(&lz_oom_sites_lock);
    fprintf(stderr, "  %s: %ld block(s) allocated since and live (%ld not recorded), of which:\n", label, live,
            dropped);
    for (int k = 1; k < count; k++) // oldest first
        for (int j = k; j > 0 && said[j].stamp < said[j - 1].stamp; j--) {
            lz_oom_site_t swap = said[j];
            said[j] = said[j - 1], said[j - 1] = swap;
        }
    for (int k = 0; k < count; k++) {
        fprintf(stderr, "   block %p, allocation %ld since:\n", said[k].block, said[k].stamp - mark);
        for (int f = 1; f < said[k].depth; f++) lz_oom_say_frame(said[k].frames[f]); // 0: the allocator
    }
}

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *ptr);

// Blocks allocated and not yet freed, by every thread: a test that frees
// all it got finds the count back where it was (lz_oom_live), which is how
// a leak on a failure's path shows without valgrind or ASan.
static atomic_long lz_oom_blocks;

static inline void *lz_oom_counted_block(void *block) {
    if (block) atomic_fetch_add_explicit(&lz_oom_blocks, 1, memory_order_relaxed);
    lz_oom_site_add(block);
    return block;
}

// Each allocator passes its caller's return address on, which tells which
// object called (lz_oom_spare).
static inline void *lz_oom_malloc(size_t size, const void *caller) {
    return lz_oom_fails_now_for(caller) ? NULL : lz_oom_counted_block(__libc_malloc(size));
}
static inline void *lz_oom_memalign(size_t alignment, size_t size, const void *caller) {
    return lz_oom_fails_now_for(caller) ? NULL : lz_oom_counted_block(__libc_memalign(alignment, size));
}
void *malloc(size_t size) { return lz_oom_malloc(size, __builtin_return_address(0)); }
void *calloc(size_t count, size_t size) {
    const void *caller = __builtin_return_address(0);
    return lz_oom_fails_now_for(caller) ? NULL : lz_oom_counted_block(__libc_calloc(count, size));
}
void free(void *ptr) {
    if (ptr) atomic_fetch_sub_explicit(&lz_oom_blocks, 1, memory_order_relaxed);
    lz_oom_site_remove(ptr);
    __libc_free(ptr);
}
// realloc(NULL, n) allocates and realloc(p, 0) frees, as glibc's do.
void *realloc(void *ptr, size_t size) {
    const void *caller = __builtin_return_address(0);
    if (!ptr) return lz_oom_malloc(size, caller);
    if (!size) {
        free(ptr);
        return NULL;
    }
    if (lz_oom_fails_now_for(caller)) return NULL;
    void *moved = __libc_realloc(ptr, size);
    if (moved && moved != ptr) lz_oom_site_remove(ptr), lz_oom_site_add(moved);
    return moved;
}
void *memalign(size_t alignment, size_t size) { return lz_oom_memalign(alignment, size, __builtin_return_address(0)); }
void *aligned_alloc(size_t alignment, size_t size) {
    return lz_oom_memalign(alignment, size, __builtin_return_address(0));
}
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    void *block = lz_oom_memalign(alignment, size, __builtin_return_address(0));
    if (!block) return ENOMEM;
    *out = block;
    return 0;
}
#else
static inline long lz_oom_sites_mark(void) { return 0; }
static inline void lz_oom_say_sites(const char *label, long mark) { (void)label, (void)mark; }
#endif

// Whether this program's allocators are the ones in use, found before
// main. Under valgrind they are not (memcheck replaces malloc, but our free
// is still called, on its blocks): nothing fails and nothing is counted there.
static bool lz_oom_is_active;

#if LZ_OOM_AVAILABLE
__attribute__((constructor)) static void lz_oom_probe(void) {
    void *(*volatile allocate)(size_t) = malloc; // called, not optimised away
    lz_oom_arm(1);
    void *block = allocate(1);
    lz_oom_is_active = lz_oom_stop();
    free(block);
    if (!lz_oom_is_active || !getenv("LZ_OOM_SITES") || strcmp(getenv("LZ_OOM_SITES"), "1") != 0) return;
    void *frames[1];
    backtrace(frames, 1); // its first call loads the unwinder (allocating), before any is recorded
    lz_oom_sites_on = true;
}
#endif

// lz_oom_active: whether allocations can fail here (see lz_oom_is_active).
static inline bool lz_oom_active(void) { return lz_oom_is_active; }

// lz_oom_live: the blocks allocated and not freed, program-wide (0 where
// the allocators are not this program's: lz_oom_active).
static inline long lz_oom_live(void) {
#if LZ_OOM_AVAILABLE
    return lz_oom_is_active ? atomic_load(&lz_oom_blocks) : 0;
#else
    return 0;
#endif
}

// Checks made inside an armed run allocate as they need: lz_oom_pause
// stops the thread's counting, lz_oom_resume goes on where it stopped.
static inline void lz_oom_pause(void) { lz_oom_counting = false; }
static inline void lz_oom_resume(void) { lz_oom_counting = true; }

/* ---- sweeps --------------------------------------------------------------
 * One engine for every sweep (it uses lz_test.h's checks: include that
 * first). A sweep runs an operation with its 1st allocation failing, then
 * its 2nd, and so on until a run has none left to fail (that last run
 * fails none), or, sampled, the allocations counted in a run with none
 * failing in a spread order while a time budget lasts. Each run goes:
 * prepare on the sweep's thread; then on the run's thread (the sweep's, or
 * a fresh one): setup, run armed, show, judge, teardown; then finish on
 * the sweep's thread. Only run is armed: the others allocate freely. */

#define LZ_OOM_LIMIT 2000      // runs of a sweep at most, unless it says
#define LZ_OOM_WRONG_MAX 5     // wrong runs a sweep reports before it stops
#define LZ_OOM_DETAIL_MAX 512  // lz_last_error's longest detail
#define LZ_OOM_SHOWN_MAX 200   // of a line of show's text, in a report

typedef struct lz_oom_sweep lz_oom_sweep_t;

// One run of a sweep: the allocation that was to fail and what came of it.
typedef struct lz_oom_run {
    const lz_oom_sweep_t *sweep;
    long n;                         // the allocation made to fail (0: none)
    long counted;                   // the allocations the armed thread(s) made
    bool failed;                    // whether the nth failed
    int rc;                         // run's answer
    int code;                       // the error its thread held after it
    char detail[LZ_OOM_DETAIL_MAX]; // and its detail
    char *shown;                    // what show made of what it left
} lz_oom_run_t;

// A sweep: the operation, its judge, where it runs, which allocations fail
// and how its leaks are counted. All but name and run may be left out.
struct lz_oom_sweep {
    const char *name;
    void (*prepare)(void *arg);                         // the sweep's thread: what must not warm a fresh one
    int (*run)(void *arg);                              // the operation, armed: its answer
    void (*judge)(void *arg, const lz_oom_run_t *run);  // checks the answer (LZ_CHECK and such)
    void *arg;                                          // every function's
    bool fresh;                                         // each run on a thread of its own: cold caches
    const char *const *spared;                          // as lz_oom_spare's (the library's threads' too)
    void (*setup)(void *arg);                           // the run's thread, before it is armed
    char *(*show)(void *arg);                           // what the run left, as text (malloc), judged as below
    void (*teardown)(void *arg);                        // the run's thread, last: frees what the run made
    void (*finish)(void *arg, const lz_oom_run_t *run); // the sweep's thread, after the run's ended
    bool threads;    // the library's threads' nth allocation fails (lz_oom_arm_threads), not the run's thread's
    bool own_thread; // the sweep on a thread of its own, gone (caches and all) when the blocks are counted
    // With show, a run where nothing failed answers as a reference run (on
    // a thread of its own) did, expect_rc, with its detail; one where an
    // allocation failed answers LZ_ENOMEM with a detail, leaving what setup
    // showed, or as the reference (terse_errors: an error's detail may differ).
    int expect_rc;
    bool terse_errors;
    long limit;      // runs at most (0: LZ_OOM_LIMIT)
    int warm_runs;   // runs failing none first (caches and free lists fill): the last one's count samples
    int steady_runs; // warm runs end sooner once this many in a row kept the blocks live as they were
    // Sampled (budget_ms): each allocation of the count up to repeats times
    // while the budget lasts, in an order that spreads them (a step coprime
    // with the count, from a varying start), so that each time covers a
    // different part; LZ_OOM_FULL=1: each once, whatever the time.
    int budget_ms, repeats;
    // Leaks: the blocks live (lz_oom_live, or live) after the warm runs may
    // grow by kept at most (what a documented cache keeps) by the end of
    // the sweep, or of each run (leak_per_run), once other threads have
    // freed what they free late (settle_ms). A sweep that ended above is
    // run again, up to resweeps times, from where it ended: libzmq's queues
    // keep a spare chunk by turns, a leak leaks again. leaks_elsewhere: the
    // caller counts them (the sweep's objects outlive it).
    long (*live)(void);
    long kept;
    int settle_ms, resweeps;
    bool leak_per_run, leaks_elsewhere;
    // What it found.
    long failures; // runs in which the armed allocation failed (a sweep again not counted)
    long runs;     // runs armed
    long counted;  // the last warm run's allocations
    long wrong;    // runs judged wrong or leaking
    char label[160]; // name, and " on fresh threads"
    lz_oom_run_t reference;
    char *before; // what setup shows
};

// lz_oom_answered: the run answered as every operation must: LZ_OK; or,
// its allocation having failed, LZ_ENOMEM with a detail.
static inline bool lz_oom_answered(const lz_oom_run_t *run) {
    return run->rc == LZ_OK || (run->failed && run->rc == LZ_ENOMEM && run->code == LZ_ENOMEM && run->detail[0]);
}

#ifdef LZ_SENDBUF_MAX
// lz_oom_live_unkept: lz_oom_live but for the recycled send buffers kept
// (core/sendbuf.h, included before: a cache, bounded), for a sweep's live.
static inline long lz_oom_live_unkept(void) {
    long kept = 0;
    for (size_t size = LZ_SENDBUF_MIN; size <= LZ_SENDBUF_MAX; size *= 2) kept += (long)lz__sendbuf_kept(size);
    return lz_oom_live() - kept;
}
#endif

static inline long lz_oom_sweep_blocks(const lz_oom_sweep_t *sw) { return sw->live ? sw->live() : lz_oom_live(); }

// lz_oom_sweep_settled: the blocks live once they are down to limit, or settle_ms passed.
static inline long lz_oom_sweep_settled(const lz_oom_sweep_t *sw, long limit) {
    LZ_TEST_WAIT_UNTIL(lz_oom_sweep_blocks(sw) <= limit, sw->settle_ms);
    return lz_oom_sweep_blocks(sw);
}

static inline void lz_oom_on_thread(void *(*fn)(void *), void *arg) {
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, fn, arg), 0);
    pthread_join(thread, NULL);
}

// lz_oom_run_here is a run's part on its thread.
static inline void *lz_oom_run_here(void *self) {
    lz_oom_run_t *run = self;
    const lz_oom_sweep_t *sw = run->sweep;
    if (sw->setup) sw->setup(sw->arg);
    lz_oom_spare(sw->spared);
    lz_set_error(LZ_OK, "%s", "");
    if (sw->threads) lz_oom_arm_threads(run->n, sw->spared);
    else lz_oom_arm(run->n);
    run->rc = sw->run(sw->arg);
    run->failed = sw->threads ? lz_oom_stop_threads(&run->counted) : lz_oom_stop();
    if (!sw->threads) run->counted = lz_oom_counted;
    lz_oom_spare(NULL);
    run->code = lz_last_error_code();
    snprintf(run->detail, sizeof run->detail, "%s", lz_last_error());
    run->shown = sw->show ? sw->show(sw->arg) : NULL;
    if (sw->judge) sw->judge(sw->arg, run);
    if (sw->teardown) sw->teardown(sw->arg);
    return NULL;
}

// lz_oom_first_difference: the line of shown where it departs from expected.
static inline const char *lz_oom_first_difference(const char *shown, const char *expected, int *length) {
    const char *line = shown;
    for (size_t i = 0; shown[i] && shown[i] == expected[i]; i++)
        if (shown[i] == '\n') line = shown + i + 1;
    *length = (int)strcspn(line, "\n");
    if (*length > LZ_OOM_SHOWN_MAX) *length = LZ_OOM_SHOWN_MAX;
    return line;
}

// lz_oom_judge_shown judges a run against the reference (see show).
static inline void lz_oom_judge_shown(const lz_oom_sweep_t *sw, const lz_oom_run_t *run) {
    const lz_oom_run_t *ref = &sw->reference;
    bool nomem = run->failed && run->rc == LZ_ENOMEM, ok;
    if (nomem) ok = run->code == LZ_ENOMEM && run->detail[0] && strcmp(run->shown, sw->before) == 0;
    else
        ok = run->rc == ref->rc && strcmp(run->shown, ref->shown) == 0 &&
             (run->rc == LZ_OK || (run->failed && sw->terse_errors) || strcmp(run->detail, ref->detail) == 0);
    if (ok) return;
    const char *expected = nomem ? sw->before : ref->shown;
    int length = 0, expected_length = 0;
    const char *line = lz_oom_first_difference(run->shown, expected, &length);
    const char *expected_line = lz_oom_first_difference(expected, run->shown, &expected_length);
    fprintf(stderr, "  %s: %s (%s) left \"%.*s\"; expected %s (%s)%s%s: \"%.*s\"\n", sw->label,
            lz_error_name(run->rc), run->detail, length, line, lz_error_name(ref->rc), ref->detail,
            run->failed ? " or LZ_ENOMEM" : "", nomem ? " leaving what setup left" : "", expected_length,
            expected_line);
    LZ_CHECK(ok);
}

static inline void lz_oom_say_run(const lz_oom_sweep_t *sw, const lz_oom_run_t *run, const char *what) {
    fprintf(stderr, "  %s, allocation %ld%s %s (%ld made): answer %s (%s)%s\n", sw->label, run->n,
            sw->threads ? " of the library's threads" : "", run->failed ? "failed" : "(none failed)", run->counted,
            lz_error_name(run->rc), run->detail, what);
}

// lz_oom_sweep_once runs the operation once with its nth allocation
// failing (0: none), judges it, and says which run it was when it was wrong.
static inline void lz_oom_sweep_once(lz_oom_sweep_t *sw, long n, lz_oom_run_t *run) {
    int failures = lz_test_failures;
    *run = (lz_oom_run_t){.sweep = sw, .n = n};
    if (sw->prepare) sw->prepare(sw->arg);
    if (sw->fresh) lz_oom_on_thread(lz_oom_run_here, run);
    else lz_oom_run_here(run);
    if (sw->finish) sw->finish(sw->arg, run);
    if (sw->show) lz_oom_judge_shown(sw, run);
    free(run->shown);
    run->shown = NULL;
    if (lz_test_failures > failures && sw->wrong++ < LZ_OOM_WRONG_MAX) lz_oom_say_run(sw, run, ": wrong");
    if (getenv("LZ_OOM_VERBOSE")) lz_oom_say_run(sw, run, "");
}

// lz_oom_sweep_armed is a run of the sweep proper, its leaks checked when
// each run's are; returns whether its allocation failed.
static inline bool lz_oom_sweep_armed(lz_oom_sweep_t *sw, long n, long *failures) {
    lz_oom_run_t run;
    long live = lz_oom_sweep_blocks(sw), mark = lz_oom_sites_mark();
    lz_oom_sweep_once(sw, n, &run);
    sw->runs++;
    *failures += run.failed;
    if (!sw->leak_per_run) return run.failed;
    long leaked = lz_oom_sweep_settled(sw, live + sw->kept) - live;
    char said[64];
    snprintf(said, sizeof said, ": %ld block(s) leaked", leaked);
    if (leaked > sw->kept && sw->wrong++ < LZ_OOM_WRONG_MAX) {
        lz_oom_say_run(sw, &run, said);
        lz_oom_say_sites(sw->label, mark);
    }
    LZ_CHECK(leaked <= sw->kept);
    return run.failed;
}

static inline long lz_oom_gcd(long a, long b) { return b ? lz_oom_gcd(b, a % b) : a; }

// lz_oom_sweep_pass sweeps once (see lz_oom_sweep_t) and returns how many
// runs had their allocation fail. LZ_OOM_N=n runs the nth alone.
static inline long lz_oom_sweep_pass(lz_oom_sweep_t *sw) {
    long failures = 0, limit = sw->limit ? sw->limit : LZ_OOM_LIMIT;
    if (getenv("LZ_OOM_N")) {
        lz_oom_sweep_armed(sw, atol(getenv("LZ_OOM_N")), &failures);
    } else if (sw->budget_ms) {
        bool full = getenv("LZ_OOM_FULL") != NULL;
        long count = sw->counted, total = full ? count : count * sw->repeats;
        long step = count * 618 / 1000 + 1, offset = count ? (long)(lz_test_now_ms() % count) : 0;
        while (count && lz_oom_gcd(step, count) != 1) step++;
        int64_t end = full ? INT64_MAX : lz_test_now_ms() + sw->budget_ms;
        for (long i = 0; i < total && lz_test_now_ms() < end && sw->wrong < LZ_OOM_WRONG_MAX; i++)
            lz_oom_sweep_armed(sw, 1 + (offset + i * step) % count, &failures);
    } else {
        bool failed = true; // until a run had none left to fail
        for (long n = 1; failed && n <= limit && sw->wrong < LZ_OOM_WRONG_MAX; n++)
            failed = lz_oom_sweep_armed(sw, n, &failures);
        if (failures == limit) fprintf(stderr, "  %s: more than %ld allocations\n", sw->label, limit);
        LZ_CHECK(failures < limit);
    }
    return failures;
}

// glibc keeps the stacks of ended threads (up to 40 MiB of them), each with
// its TLS vector, a block from malloc: how many depends on how many threads
// were alive at once, so a sweep on fresh threads (two alive at a time, or
// more with the library's) could grow it and read as a leak.
// lz_oom_fill_stack_cache fills it (more threads at once than it keeps), so
// that it is full both when the blocks live are counted and after a sweep.
#define LZ_OOM_CACHED_THREADS 12
static inline void *lz_oom_wait_for_all(void *barrier) {
    pthread_barrier_wait(barrier);
    return NULL;
}
static inline void lz_oom_fill_stack_cache(void) {
    pthread_t threads[LZ_OOM_CACHED_THREADS];
    pthread_barrier_t all;
    pthread_barrier_init(&all, NULL, LZ_OOM_CACHED_THREADS + 1);
    for (int i = 0; i < LZ_OOM_CACHED_THREADS; i++)
        LZ_CHECK_INT(pthread_create(&threads[i], NULL, lz_oom_wait_for_all, &all), 0);
    pthread_barrier_wait(&all);
    for (int i = 0; i < LZ_OOM_CACHED_THREADS; i++) pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&all);
}

// lz_oom_sweep_passes warms up, sweeps, and checks the blocks live (but
// for those of an own_thread sweep, counted when its thread has ended).
static inline void *lz_oom_sweep_passes(void *self) {
    lz_oom_sweep_t *sw = self;
    lz_oom_run_t run;
    long before = lz_oom_sweep_blocks(sw);
    for (int i = 0, steady = 0; i < sw->warm_runs && (!sw->steady_runs || steady < sw->steady_runs); i++) {
        lz_oom_sweep_once(sw, 0, &run);
        sw->counted = run.counted;
        steady = lz_oom_sweep_blocks(sw) == before ? steady + 1 : 0;
        before = lz_oom_sweep_blocks(sw);
    }
    long mark = lz_oom_sites_mark();
    sw->failures = lz_oom_sweep_pass(sw);
    if (sw->own_thread || sw->leak_per_run || sw->leaks_elsewhere) return NULL;
    long after = lz_oom_sweep_settled(sw, before + sw->kept);
    for (int i = 0; i < sw->resweeps && after - before > sw->kept; i++) {
        before = after;
        mark = lz_oom_sites_mark();
        lz_oom_sweep_pass(sw);
        after = lz_oom_sweep_settled(sw, before + sw->kept);
    }
    if (after - before > sw->kept) {
        fprintf(stderr, "  %s: %ld block(s) leaked\n", sw->label, after - before);
        lz_oom_say_sites(sw->label, mark);
    }
    LZ_CHECK(after - before <= sw->kept);
    return NULL;
}

// lz_oom_sweep_reference runs the operation plainly on a thread that has
// a thread of its own running at the time, as a sweep on fresh threads
// has: glibc keeps both threads' stacks (with blocks of their TLS) for
// later threads. Then setup alone, for what it shows.
static inline void *lz_oom_sweep_reference(void *self) {
    lz_oom_sweep_t *sw = self;
    lz_oom_on_thread(lz_oom_run_here, &sw->reference);
    return NULL;
}

static inline void lz_oom_sweep_references(lz_oom_sweep_t *sw) {
    sw->reference = (lz_oom_run_t){.sweep = sw};
    lz_oom_on_thread(lz_oom_sweep_reference, sw);
    if (sw->reference.rc != sw->expect_rc) fprintf(stderr, "  %s: %s\n", sw->label, sw->reference.detail);
    LZ_CHECK_INT(sw->reference.rc, sw->expect_rc);
    if (sw->setup) sw->setup(sw->arg);
    sw->before = sw->show(sw->arg);
    if (sw->teardown) sw->teardown(sw->arg);
}

// lz_oom_sweep sweeps as sw says (where allocations cannot fail, it runs
// the operation once, failing none), says what it did, and returns how
// many runs had their allocation fail.
static inline long lz_oom_sweep(lz_oom_sweep_t *sw) {
    snprintf(sw->label, sizeof sw->label, "%s%s", sw->name, sw->fresh && !sw->threads ? " on fresh threads" : "");
    if (sw->fresh && lz_oom_active()) lz_oom_fill_stack_cache(); // before anything is counted
    if (sw->show) lz_oom_sweep_references(sw);
    int64_t start = lz_test_now_ms();
    if (!lz_oom_active()) {
        lz_oom_sweep_once(sw, 0, &(lz_oom_run_t){0});
        printf("  %s: allocations cannot fail in this build or under valgrind: run once\n", sw->label);
    } else if (sw->own_thread) {
        long before = lz_oom_sweep_blocks(sw), mark = lz_oom_sites_mark();
        lz_oom_on_thread(lz_oom_sweep_passes, sw);
        long leaked = lz_oom_sweep_blocks(sw) - before;
        if (leaked > sw->kept) {
            fprintf(stderr, "  %s: %ld block(s) more than before the sweep\n", sw->label, leaked);
            lz_oom_say_sites(sw->label, mark);
        }
        LZ_CHECK(leaked <= sw->kept);
    } else {
        lz_oom_sweep_passes(sw);
    }
    if (lz_oom_active() && sw->budget_ms)
        printf("  %s: %ld allocations%s, %ld runs, %lld ms\n", sw->label, sw->counted,
               sw->threads ? " on other threads" : "", sw->runs, (long long)(lz_test_now_ms() - start));
    else if (lz_oom_active())
        printf("  %s: %ld allocations failed in turn\n", sw->label, sw->failures);
    free(sw->reference.shown);
    free(sw->before);
    return sw->failures;
}


// LZ_OOM_TABLE(op_type, state_type) serves a table of operations of
// op_type, whose name, setup (may be NULL), run, show and expect_rc take
// (const op_type *op, state_type *s): lz_oom_swept_t is one of them as its
// sweep runs it, with a state of its own for each run (zeroed before
// setup; the how's teardown gets the lz_oom_swept_t), and
// lz_oom_sweep_op(op, how) sweeps it as how says, on a warm thread, then
// with each run on a fresh one.
#define LZ_OOM_TABLE(op_type, state_type)                                                                      \
    typedef struct lz_oom_swept {                                                                              \
        const op_type *op;                                                                                     \
        state_type s;                                                                                          \
    } lz_oom_swept_t;                                                                                          \
    static void lz_oom_swept_setup(void *arg) {                                                                \
        lz_oom_swept_t *w = arg;                                                                               \
        w->s = (state_type){0};                                                                                \
        if (w->op->setup) w->op->setup(w->op, &w->s);                                                          \
    }                                                                                                          \
    static int lz_oom_swept_run(void *arg) {                                                                   \
        lz_oom_swept_t *w = arg;                                                                               \
        return w->op->run(w->op, &w->s);                                                                       \
    }                                                                                                          \
    static char *lz_oom_swept_show(void *arg) {                                                                \
        lz_oom_swept_t *w = arg;                                                                               \
        return w->op->show(w->op, &w->s);                                                                      \
    }                                                                                                          \
    static void lz_oom_sweep_op(const op_type *op, lz_oom_sweep_t how) {                                       \
        for (int fresh = 0; fresh <= 1; fresh++) {                                                             \
            lz_oom_swept_t swept = {.op = op};                                                                 \
            lz_oom_sweep_t sw = how;                                                                           \
            sw.name = op->name, sw.arg = &swept, sw.expect_rc = op->expect_rc, sw.fresh = fresh;               \
            sw.setup = lz_oom_swept_setup, sw.run = lz_oom_swept_run, sw.show = lz_oom_swept_show;             \
            lz_oom_sweep(&sw);                                                                                 \
        }                                                                                                      \
    }

#endif
