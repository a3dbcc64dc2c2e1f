/* zmqcheck (tests/zmqcheck.c), the ThreadSanitizer build's check that a
 * libzmq socket is used by one thread at a time, catches what it is for:
 * this program runs itself as a child that uses one socket from two
 * threads, with and without a lock between them, and reads the child's
 * ThreadSanitizer report. In other builds there is no check to test. */
#include <fcntl.h>
#include <pthread.h>
#include <zmq.h>

#include "lz_test.h"

#define CHILD_FLAG "--child"

static void *child_socket;
static pthread_mutex_t child_lock = PTHREAD_MUTEX_INITIALIZER;
static bool child_locks;

static void *send_some(void *arg) {
    for (int i = 0; i < 100; i++) {
        if (child_locks) pthread_mutex_lock(&child_lock);
        zmq_send(child_socket, "x", 1, ZMQ_DONTWAIT);
        if (child_locks) pthread_mutex_unlock(&child_lock);
    }
    return arg;
}

// child: two threads send on one PUB socket; mode "locked" orders them.
static int child(const char *mode) {
    child_locks = strcmp(mode, "locked") == 0;
    void *ctx = zmq_ctx_new();
    child_socket = zmq_socket(ctx, ZMQ_PUB);
    pthread_t a, b;
    pthread_create(&a, NULL, send_some, NULL);
    pthread_create(&b, NULL, send_some, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    zmq_close(child_socket);
    zmq_ctx_term(ctx);
    return 0;
}

#ifdef LZ_TEST_TSAN
// run_child runs this program in mode; its exit status, and its standard
// error in err.
static int run_child(const char *mode, char *err, size_t size) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
    char *argv[] = {(char *)"/proc/self/exe", (char *)CHILD_FLAG, (char *)mode, NULL};
    pid_t pid;
    int spawned = posix_spawn(&pid, "/proc/self/exe", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    size_t used = 0;
    for (ssize_t n; spawned == 0 && used + 1 < size && (n = read(pipe_fds[0], err + used, size - 1 - used)) > 0;)
        used += (size_t)n;
    err[used] = '\0';
    close(pipe_fds[0]);
    return spawned == 0 ? lz_test_wait(pid, 60000 * LZ_TEST_SLOWDOWN) : -1;
}

static char err[1 << 16];

LZ_TEST(two_threads_on_one_socket_are_reported) {
    int status = run_child("unordered", err, sizeof err);
    LZ_CHECK(status != 0); // halt_on_error (TSAN_OPTIONS)
    LZ_CHECK(strstr(err, "WARNING: ThreadSanitizer: data race") != NULL);
    LZ_CHECK(strstr(err, "zmqcheck_socket_") != NULL);
    LZ_CHECK(strstr(err, "send_some") != NULL);
}

LZ_TEST(two_threads_taking_turns_under_a_lock_are_not) {
    LZ_CHECK_INT(run_child("locked", err, sizeof err), 0);
    LZ_CHECK(strstr(err, "ThreadSanitizer") == NULL);
}
#endif

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], CHILD_FLAG) == 0) return child(argv[2]);
#ifdef LZ_TEST_TSAN
    static const lz_test_case_t cases[] = {LZ_CASE(two_threads_on_one_socket_are_reported),
                                           LZ_CASE(two_threads_taking_turns_under_a_lock_are_not)};
    return lz_test_run(cases, sizeof cases / sizeof cases[0], 0);
#else
    puts("skipped: zmqcheck is part of the ThreadSanitizer build only (make test-tsan)");
    return 0;
#endif
}
