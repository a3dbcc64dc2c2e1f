/* The library's threads and the process's signals: a handler for Ctrl-C
 * must run on an application thread, never in the middle of a receiver,
 * a worker, a server loop or the connection monitor. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "core/thread.h"
#include "liberzmq/pushpull.h"
#include "liberzmq/reqrep.h"
#include "lz_test.h"

static pthread_t main_thread;
static atomic_int handled, handled_elsewhere;

static void on_usr1(int signo) {
    (void)signo;
    atomic_fetch_add(&handled, 1);
    if (!pthread_equal(pthread_self(), main_thread)) atomic_fetch_add(&handled_elsewhere, 1);
}

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_copy(lz_message_value(request));
    return *reply ? 0 : LZ_ENOMEM;
}

// Every kind of thread the library starts is running (a started puller's
// receiver and workers, a started server's loop and pool, the context's
// monitor) when a process-directed SIGUSR1 arrives while only the main
// thread could take it, and does not: it waits, pending, until the main
// thread unblocks it. Before, any of those threads would have run the
// handler, as they inherited the main thread's mask of the moment.
LZ_TEST(thread_signals_wait_for_the_application) {
    main_thread = pthread_self();
    struct sigaction action = {.sa_handler = on_usr1};
    sigemptyset(&action.sa_mask);
    LZ_CHECK_INT(sigaction(SIGUSR1, &action, NULL), 0);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_pull_t *pull = ctx ? lz_pull_new(ctx, "@inproc://thread-pull") : NULL;
    lz_server_t *server = ctx ? lz_server_new(ctx, "@inproc://thread-server") : NULL;
    LZ_CHECK(pull && server);
    if (pull && server) {
        LZ_CHECK_INT(lz_pull_start(pull, 3), 0);
        LZ_CHECK_INT(lz_server_on(server, "echo", echo, NULL), 0);
        LZ_CHECK_INT(lz_server_start(server), 0);
        sigset_t usr1;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        for (int i = 0; i < 20; i++) {
            kill(getpid(), SIGUSR1); // to the process: any thread with it unblocked may take it
            lz_test_sleep_ms(5);
        }
        LZ_CHECK_INT(atomic_load(&handled), 0);
        sigset_t pending;
        sigpending(&pending);
        LZ_CHECK(sigismember(&pending, SIGUSR1));
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL); // delivered to this thread now
        // (ThreadSanitizer may hold it until its next interceptor: wait a little.)
        for (int waited = 0; atomic_load(&handled) == 0 && waited < 1000; waited += 5) lz_test_sleep_ms(5);
        LZ_CHECK_INT(atomic_load(&handled), 1); // standard signals do not queue
        LZ_CHECK_INT(atomic_load(&handled_elsewhere), 0);
    }
    lz_server_destroy(&server);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
    signal(SIGUSR1, SIG_DFL);
}

static void *report_mask(void *arg) {
    pthread_sigmask(SIG_BLOCK, NULL, arg);
    return NULL;
}

// Faults stay unblocked on our threads, so a crash there is still caught
// where it happens (by a sanitizer, a debugger, a core dump), and so does
// a profiler's SIGPROF; the creator's own mask is left as it was.
LZ_TEST(thread_faults_stay_unblocked) {
    sigset_t before, after, seen;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    pthread_t thread;
    LZ_CHECK_INT(lz__thread_start(&thread, report_mask, &seen), 0);
    pthread_join(thread, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    static const int blocked[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE, SIGCHLD, SIGALRM};
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS, SIGPROF};
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) LZ_CHECK(sigismember(&seen, blocked[i]));
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) LZ_CHECK(!sigismember(&seen, faults[i]));
    for (int signo = 1; signo < SIGRTMIN; signo++) LZ_CHECK(sigismember(&before, signo) == sigismember(&after, signo));
}

LZ_TEST_MAIN(LZ_CASE(thread_signals_wait_for_the_application), LZ_CASE(thread_faults_stay_unblocked))
