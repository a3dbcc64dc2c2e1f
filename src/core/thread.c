/* Starting the library's threads with asynchronous signals blocked. */
#include "core/thread.h"

#include <signal.h>

int lz__thread_start(pthread_t *thread, void *(*main)(void *), void *arg) {
    // Faults are raised by the thread itself; SIGPROF samples whichever
    // thread is running, so a profiler must see ours too.
    static const int kept[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS, SIGPROF};
    sigset_t blocked, caller;
    sigfillset(&blocked);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) sigdelset(&blocked, kept[i]);
    // A new thread inherits its creator's mask: block, create, restore.
    pthread_sigmask(SIG_BLOCK, &blocked, &caller);
    int err = pthread_create(thread, NULL, main, arg);
    pthread_sigmask(SIG_SETMASK, &caller, NULL);
    return err;
}
