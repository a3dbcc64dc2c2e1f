/* Starting the library's threads with asynchronous signals blocked. */
#include "core/thread.h"

#include <signal.h>

int lz__thread_start(pthread_t *thread, void *(*main)(void *), void *arg) {
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    sigset_t blocked, caller;
    sigfillset(&blocked);
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&blocked, faults[i]);
    // A new thread inherits its creator's mask: block, create, restore.
    pthread_sigmask(SIG_BLOCK, &blocked, &caller);
    int err = pthread_create(thread, NULL, main, arg);
    pthread_sigmask(SIG_SETMASK, &caller, NULL);
    return err;
}
