/* Starting the library's threads with asynchronous signals blocked. */
#include "core/thread.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

void lz__thread_signals_block(sigset_t *caller) {
    // Faults are raised by the thread itself; SIGPROF samples whichever
    // thread is running, so a profiler must see ours too.
    static const int kept[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS, SIGPROF};
    sigset_t blocked;
    sigfillset(&blocked);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) sigdelset(&blocked, kept[i]);
    pthread_sigmask(SIG_BLOCK, &blocked, caller);
}

void lz__thread_signals_restore(const sigset_t *caller) { pthread_sigmask(SIG_SETMASK, caller, NULL); }

int lz__thread_start(pthread_t *thread, void *(*main)(void *), void *arg) {
    // A new thread inherits its creator's mask: block, create, restore.
    sigset_t caller;
    lz__thread_signals_block(&caller);
    int err = pthread_create(thread, NULL, main, arg);
    lz__thread_signals_restore(&caller);
    return err;
}

int lz__thread_fail(int err, const char *what) {
    return lz__fail(err == EAGAIN ? LZ_ENOMEM : LZ_EIO, "%s: cannot start a thread: %s", what, strerror(err));
}

int lz__cond_init_monotonic(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err) return err;
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!err) err = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return err;
}

void lz__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, int64_t due_ms) {
    struct timespec at = {.tv_sec = (time_t)(due_ms / 1000), .tv_nsec = (long)(due_ms % 1000) * 1000000L};
    pthread_cond_timedwait(cond, mutex, &at);
}

static _Thread_local lz_thread_running_t *running_here __attribute__((tls_model("initial-exec")));

void lz__thread_enter(lz_thread_running_t *here, const void *owner) {
    here->owner = owner;
    here->outer = running_here;
    running_here = here;
}

void lz__thread_leave(lz_thread_running_t *here) { running_here = here->outer; }

bool lz__thread_inside(const void *owner) {
    for (const lz_thread_running_t *r = running_here; r; r = r->outer)
        if (r->owner == owner) return true;
    return false;
}
