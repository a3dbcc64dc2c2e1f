/* Internal: starting the library's own threads. */
#ifndef LZ_CORE_THREAD_H
#define LZ_CORE_THREAD_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

// lz__thread_start is pthread_create for every thread liberzmq starts
// (receivers, worker pools, the connection monitor, client, server and
// proxy loops): the new thread begins with every asynchronous signal
// blocked, as libzmq's own threads do, so the process's handlers (Ctrl-C)
// run on the application's threads, never in the middle of ours. Faults
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS) stay
// unblocked, so a crash on our thread is still reported where it happens,
// and so does SIGPROF, so a sampling profiler sees our threads (a proxy's
// thread blocks it itself: see proxy.c). Signals on the caller's threads
// are handled where the libzmq calls are made: see eintr.h.
// The caller's own mask is left as it was. Returns pthread_create's
// error number (0 on success).
int lz__thread_start(pthread_t *thread, void *(*main)(void *), void *arg);

// lz__thread_fail reports that lz__thread_start could not start the thread
// what needs (err: its error number): LZ_ENOMEM for EAGAIN, which is how
// pthread_create says the memory for a thread's stack or TLS ran out (or a
// thread limit was reached), else LZ_EIO; the detail names what. Returns
// the code.
int lz__thread_fail(int err, const char *what);

// lz__thread_signals_block blocks on the calling thread what our threads
// block, saving its mask in *caller for lz__thread_signals_restore: for
// threads another library starts (libmicrohttpd's), which inherit it.
void lz__thread_signals_block(sigset_t *caller);
void lz__thread_signals_restore(const sigset_t *caller);

// lz__cond_init_monotonic initialises cond so that its timed waits run on
// lz__now_ms's clock: a change of the wall clock moves no deadline.
// Returns pthread's error number (0 on success).
int lz__cond_init_monotonic(pthread_cond_t *cond);

// lz__cond_wait_until waits on cond (mutex held) until it is signalled or
// the lz__now_ms time due_ms comes, whichever is first.
void lz__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, int64_t due_ms);

// Callbacks running on this thread, innermost first, each marked with the
// object (a dispatcher, a server, a client, a watcher) whose callback it
// is. A stop or destroy called from inside one of its object's callbacks
// must not wait for the thread it runs on (pthread_join would fail with
// EDEADLK, and what follows would free what the callback still uses):
// lz__thread_inside tells it so. Enter and leave pair up on one thread;
// here lives on the caller's stack meanwhile. A thread that runs only one
// object's callbacks may enter once for its whole life.
typedef struct lz_thread_running {
    const void *owner;
    struct lz_thread_running *outer;
} lz_thread_running_t;

void lz__thread_enter(lz_thread_running_t *here, const void *owner);
void lz__thread_leave(lz_thread_running_t *here);

// lz__thread_inside: whether the calling thread is inside a callback of
// owner (at any depth).
bool lz__thread_inside(const void *owner);

#endif
