/* An LD_PRELOAD shim that makes one allocation of a whole program fail, for
 * out-of-memory tests of programs run as processes (test_oom_cli.py runs
 * lz under it). tests/lz_oom.h does the same inside a test program; this
 * is its approach for another process: malloc & co pass through to glibc's
 * (__libc_*), except the Nth counted allocation, which returns NULL with
 * errno ENOMEM as a real out-of-memory would.
 *
 * Environment, read once at start (then removed, with LD_PRELOAD, so the
 * commands the program starts run untouched):
 *   LZ_OOM_FAIL_AT=N      fail the Nth counted allocation (0 or unset: count only)
 *   LZ_OOM_THREADS=1      count every thread's allocations (default: the main thread's)
 *   LZ_OOM_COUNT_FILE=F   at exit, write "COUNTED FAILED\n" to F: how many
 *                         allocations were counted, and 1 if the Nth failed
 *   LZ_OOM_TRACE=1        print the stack of the failing allocation on stderr
 * Allocations made directly by libzmq, libstdc++ and libpgm are neither
 * counted nor failed: they abort on a failed allocation by design. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static const char *const spared[] = {"libzmq.so", "libstdc++.so", "libpgm", NULL};

static bool armed;        // set once the environment is read
static bool every_thread; // LZ_OOM_THREADS
static bool trace;        // LZ_OOM_TRACE
static long failing;      // LZ_OOM_FAIL_AT
static atomic_long counted;
static atomic_bool failed;
static char count_file[4096];

// Whether this thread is the main one: 0 not known yet, 1 yes, 2 no.
// Initial-exec TLS: reading it allocates nothing.
static __thread __attribute__((tls_model("initial-exec"))) int thread_kind;
// Set while this thread is inside the shim's own calls (dladdr).
static __thread __attribute__((tls_model("initial-exec"))) bool inside;

static bool counts_this_thread(void) {
    if (every_thread) return true;
    if (!thread_kind) thread_kind = syscall(SYS_gettid) == getpid() ? 1 : 2;
    return thread_kind == 1;
}

static bool in_spared(const void *address) {
    Dl_info info;
    if (!dladdr(address, &info) || !info.dli_fname) return false;
    for (const char *const *object = spared; *object; object++)
        if (strstr(info.dli_fname, *object)) return true;
    return false;
}

// caller_spared: whether a spared object made the allocation, itself or
// through the C library (libzmq's thread starts, whose TLS the loader
// allocates; libpgm's protocol lookup in glibc's NSS, which crashes when
// memory runs out): any frame of the stack in a spared object.
static bool caller_spared(const void *caller) {
    enum { DEPTH = 64 };
    void *frames[DEPTH];
    inside = true; // the shim's own allocations (the unwinder's) pass through
    bool found = in_spared(caller);
    for (int i = 0, n = found ? 0 : backtrace(frames, DEPTH); i < n && !found; i++) found = in_spared(frames[i]);
    inside = false;
    return found;
}

static bool fails_now(const void *caller) {
    if (!armed || inside || !counts_this_thread() || caller_spared(caller)) return false;
    if (atomic_fetch_add(&counted, 1) + 1 != failing) return false;
    atomic_store(&failed, true);
    if (trace) {
        void *frames[64];
        inside = true;
        backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO); // allocates nothing
        inside = false;
    }
    errno = ENOMEM;
    return true;
}

void *malloc(size_t size) {
    return fails_now(__builtin_return_address(0)) ? NULL : __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    return fails_now(__builtin_return_address(0)) ? NULL : __libc_calloc(count, size);
}

// realloc(p, 0) frees, as glibc's does: nothing to fail.
void *realloc(void *ptr, size_t size) {
    if (ptr && !size) return __libc_realloc(ptr, size);
    return fails_now(__builtin_return_address(0)) ? NULL : __libc_realloc(ptr, size);
}

void *memalign(size_t alignment, size_t size) {
    return fails_now(__builtin_return_address(0)) ? NULL : __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    return fails_now(__builtin_return_address(0)) ? NULL : __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    if (fails_now(__builtin_return_address(0))) return ENOMEM;
    void *block = __libc_memalign(alignment, size);
    if (!block) return ENOMEM;
    *out = block;
    return 0;
}

__attribute__((constructor)) static void oom_start(void) {
    const char *at = getenv("LZ_OOM_FAIL_AT"), *threads = getenv("LZ_OOM_THREADS"), *file = getenv("LZ_OOM_COUNT_FILE");
    failing = at ? strtol(at, NULL, 10) : 0;
    every_thread = threads && strcmp(threads, "1") == 0;
    trace = getenv("LZ_OOM_TRACE") && strcmp(getenv("LZ_OOM_TRACE"), "1") == 0;
    snprintf(count_file, sizeof count_file, "%s", file ? file : "");
    unsetenv("LZ_OOM_FAIL_AT");
    unsetenv("LZ_OOM_THREADS");
    unsetenv("LZ_OOM_COUNT_FILE");
    unsetenv("LZ_OOM_TRACE");
    unsetenv("LD_PRELOAD");
    void *frame;
    backtrace(&frame, 1); // loads the unwinder (libgcc_s) now, not inside an allocation
    armed = true;
}

// oom_report writes the count with plain system calls: stdio would allocate.
__attribute__((destructor)) static void oom_report(void) {
    armed = false;
    if (!count_file[0]) return;
    char line[64];
    int len = snprintf(line, sizeof line, "%ld %d\n", atomic_load(&counted), atomic_load(&failed) ? 1 : 0);
    int fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    if (write(fd, line, (size_t)len) != len) unlink(count_file);
    close(fd);
}
