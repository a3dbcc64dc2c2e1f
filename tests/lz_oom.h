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
 * the caller's function.
 *
 * Only for programs built without a sanitizer: ASan and TSan replace malloc
 * themselves, and two definitions cannot both win (LZ_OOM_AVAILABLE is 0
 * there, and the sweeps run nothing). Under valgrind, memcheck replaces
 * these as well, so nothing fails there either: the sweeps run in the
 * normal and clang builds. Include it in one file of a program only. */
#ifndef LZ_OOM_H
#define LZ_OOM_H

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h> // memalign's prototype, for its definition below
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
    return lz_oom_fails_now_for(caller) ? NULL : __libc_realloc(ptr, size);
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

// lz_oom_sweep calls run(arg) with its 1st allocation failing, then its 2nd,
// and so on, then once more with none failing, and returns how many runs
// had a failure (0 where nothing can fail: lz_oom_active). run does the
// operation, then calls lz_oom_stop to learn whether an allocation failed
// in it and checks the answer: had none failed, success; had one failed,
// LZ_ENOMEM, or success with the right result where the operation could do
// without what it failed to get (a cache, say). Then it frees what it got. The sweep stops at limit
// runs, so an operation with unbounded allocations cannot hang a test.
static inline long lz_oom_sweep(void (*run)(void *arg), void *arg, long limit) {
    long runs = 0;
    for (long n = 1; lz_oom_active() && n <= limit; n++) {
        lz_oom_arm(n);
        run(arg);
        lz_oom_stop();
        if (!lz_oom_failed && lz_oom_counted < n) break; // every allocation has failed once
        runs++;
    }
    lz_oom_arm(0); // counts, fails none
    run(arg);
    lz_oom_stop();
    return runs;
}

#endif
