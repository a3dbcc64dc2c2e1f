/* Starting the library's threads with asynchronous signals blocked. */
#include "core/thread.h"

#include <signal.h>

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
