/* Proxies: a forwarder passes publications down and subscriptions up; a
 * queue joins clients to several servers (a broker); capture sees the
 * traffic; pause holds it, resume releases it, stop ends the thread. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdatomic.h>
#include <zmq.h>

#include "core/eintr.h"
#include "lz_pester.h"
#include "lz_test.h"
#include "liberzmq/proxy.h"

/* Fault injection: a proxy's thread ends early only on a libzmq failure,
 * which no input brings about on cue. While poll_fails_on names a socket,
 * a zmq_poll over it fails with EFAULT; this definition stands in for
 * libzmq's (the program's own symbol comes first) and passes every other
 * call through to the real one. */
static _Atomic(void *) poll_fails_on;
static int (*next_zmq_poll)(zmq_pollitem_t *items, int nitems, long timeout);

#ifdef LZ_TEST_TSAN
int zmqcheck_poll(zmq_pollitem_t *items, int nitems, long timeout); // zmqcheck.c's check, around libzmq's
static void find_next_zmq_poll(void) { next_zmq_poll = zmqcheck_poll; }
#else
static void find_next_zmq_poll(void) { lz_test_next_function(&next_zmq_poll, "zmq_poll"); }
#endif

/* Staging a race: while staging.frontend names a proxy's frontend socket,
 * that proxy's thread, woken by a command, holds it (hold_the_command)
 * until the asking thread waits in its receive for the answer, signals
 * that thread, and lets the command through only while it is in the
 * handler (wait_for_the_end), whose return then waits for the proxy's
 * thread to be gone. The receive fails with EINTR, and the answer was
 * given meanwhile by a thread that has ended. */
static struct {
    _Atomic(void *) frontend;
    pid_t asker;                 // the thread that sent the command
    _Atomic pid_t proxy_thread;  // set before the signal
    atomic_bool in_handler;
    int64_t end;                 // lz_test_now_ms's time to give up waiting, in either thread
} staging;

// thread_sleeps tells whether thread tid of this process sleeps (waits in a call).
static bool thread_sleeps(pid_t tid) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f) fclose(f);
    stat[n] = '\0';
    const char *name_end = strrchr(stat, ')'); // "tid (name) state ...": the name may hold anything
    return name_end && name_end[1] == ' ' && name_end[2] == 'S';
}

static void hold_the_command(void *frontend) {
    atomic_store(&staging.proxy_thread, (pid_t)syscall(SYS_gettid));
    while (!thread_sleeps(staging.asker) && lz_test_now_ms() < staging.end) usleep(100);
    syscall(SYS_tgkill, getpid(), staging.asker, SIGUSR1);
    while (!atomic_load(&staging.in_handler) && lz_test_now_ms() < staging.end) usleep(100);
    atomic_store(&poll_fails_on, frontend); // the thread answers, and its next zmq_poll fails: it ends
}

// wait_for_the_end, a signal handler, returns once the proxy's thread is
// gone (async-signal-safe calls only).
static void wait_for_the_end(int sig) {
    (void)sig;
    int saved = errno; // the interrupted receive reads it after we return
    atomic_store(&staging.in_handler, true);
    pid_t tid = atomic_load(&staging.proxy_thread);
    struct timespec pause = {0, 100000};
    while (syscall(SYS_tgkill, getpid(), tid, 0) == 0 && lz_test_now_ms() < staging.end) nanosleep(&pause, NULL);
    errno = saved;
}

int zmq_poll(zmq_pollitem_t *items, int nitems, long timeout) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_next_zmq_poll);
    void *failing = atomic_load(&poll_fails_on);
    for (int i = 0; failing && i < nitems; i++) {
        if (items[i].socket == failing) {
            errno = EFAULT;
            return -1;
        }
    }
    int rc = next_zmq_poll(items, nitems, timeout);
    // A proxy's thread polls its frontend, its backend and its control socket, in that order.
    void *staged = nitems == 3 ? items[0].socket : NULL;
    if (staged && rc > 0 && (items[2].revents & ZMQ_POLLIN) &&
        atomic_compare_exchange_strong(&staging.frontend, &staged, NULL))
        hold_the_command(staged);
    return rc;
}

static lz_context_t *new_context(void) {
    lz_config_t *config = lz_config_new();
    lz_config_set_int(config, "zmq.linger", 0);
    if (getenv("LZ_DEBUG")) lz_config_set(config, "logging.level", "DEBUG");
    lz_context_t *ctx = lz_context_new(config);
    lz_config_destroy(&config);
    return ctx;
}

static int whoami(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_string(arg);
    return 0;
}

LZ_TEST(forwarder_passes_subscriptions_up) {
    lz_context_t *ctx = new_context();
    void *capture = zmq_socket(lz_context_zmq(ctx), ZMQ_SUB);
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_FORWARDER, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                     "tcp://127.0.0.1:*");
    LZ_CHECK(proxy != NULL);
    LZ_CHECK_INT(lz_proxy_start(proxy), 0);
    LZ_CHECK_INT(lz_proxy_start(proxy), LZ_ESTATE);
    zmq_setsockopt(capture, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(capture, lz_node_endpoint(lz_proxy_capture(proxy)));
    char frontend[256];
    snprintf(frontend, sizeof frontend, ">%s", lz_node_endpoint(lz_proxy_frontend(proxy)));
    lz_pub_t *pub = lz_pub_new(ctx, frontend);
    LZ_CHECK(pub != NULL);
    lz_sub_t *sub = lz_sub_new(ctx, lz_node_endpoint(lz_proxy_backend(proxy)));
    lz_sub_subscribe(sub, "news");
    lz_message_t *msg = NULL;
    lz_value_t *v = lz_value_int(1);
    for (int i = 0; i < 200 && !msg; i++) { // until the subscription has reached the publisher
        lz_pub_publish(pub, "weather", v);
        lz_pub_publish(pub, "news", v);
        msg = lz_sub_recv(sub, 10);
    }
    LZ_CHECK(msg != NULL);
    LZ_CHECK_STR(lz_message_topic(msg), "news");
    lz_message_destroy(&msg);
    char buf[64];
    int timeout = 1000;
    zmq_setsockopt(capture, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    LZ_CHECK(zmq_recv(capture, buf, sizeof buf, 0) >= 0);
    lz_value_destroy(&v);
    lz_proxy_stats_t stats = {0};
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), 0);
    LZ_CHECK(stats.frontend_messages_received >= 1 && stats.backend_messages_sent == stats.frontend_messages_received);
    LZ_CHECK(stats.backend_messages_received >= 1); // the subscription, going up
    LZ_CHECK_INT(lz_proxy_stop(proxy), 0);
    LZ_CHECK_INT(lz_proxy_pause(proxy), LZ_ESTATE);
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), LZ_ESTATE);
    zmq_close(capture);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_proxy_destroy(&proxy);
    LZ_CHECK(proxy == NULL);
    lz_context_destroy(&ctx);
}

// check_broker_statistics: once every request is answered, each request
// went in at the frontend and out at the backend, and each reply back.
static void check_broker_statistics(lz_proxy_t *proxy, uint64_t requests) {
    lz_proxy_stats_t s;
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &s), 0);
    LZ_CHECK(s.frontend_messages_received >= requests && s.backend_messages_received >= requests);
    LZ_CHECK(s.frontend_messages_received == s.backend_messages_sent);
    LZ_CHECK(s.backend_messages_received == s.frontend_messages_sent);
    LZ_CHECK(s.frontend_bytes_received == s.backend_bytes_sent && s.frontend_bytes_received > 0);
    LZ_CHECK(s.backend_bytes_received == s.frontend_bytes_sent && s.backend_bytes_received > 0);
    LZ_CHECK_INT(lz_proxy_statistics(proxy, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_proxy_statistics(NULL, &s), LZ_EINVAL);
}

// A broker: clients connect to the queue's frontend, servers connect to
// its backend; requests spread over both servers; pause holds them.
LZ_TEST(queue_is_a_broker) {
    lz_context_t *ctx = new_context();
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL);
    LZ_CHECK(proxy && lz_proxy_capture(proxy) == NULL);
    lz_proxy_start(proxy);
    char backend[256];
    snprintf(backend, sizeof backend, ">%s", lz_node_endpoint(lz_proxy_backend(proxy)));
    lz_server_t *a = lz_server_new(ctx, backend), *b = lz_server_new(ctx, backend);
    lz_server_on(a, "who", whoami, "a");
    lz_server_on(b, "who", whoami, "b");
    lz_server_start(a);
    lz_server_start(b);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_proxy_frontend(proxy)));
    lz_test_sleep_ms(100); // both servers connected, so the queue spreads over both
    int count_a = 0, ok = 0;
    for (int i = 0; i < 20; i++) {
        lz_value_t *reply = NULL;
        ok += lz_client_request(client, "who", NULL, &reply, 2000) == 0;
        count_a += strcmp(lz_value_get_string(reply, NULL) ? lz_value_get_string(reply, NULL) : "", "a") == 0;
        lz_value_destroy(&reply);
    }
    LZ_CHECK_INT(ok, 20);
    LZ_CHECK(count_a > 0 && count_a < 20);
    check_broker_statistics(proxy, 20);
    LZ_CHECK_INT(lz_proxy_pause(proxy), 0);
    lz_proxy_stats_t paused;
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &paused), 0); // a paused proxy still answers
    lz_client_set_retries(client, 0);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "who", NULL, &reply, 200), LZ_ETIMEOUT);
    LZ_CHECK_INT(lz_proxy_resume(proxy), 0);
    LZ_CHECK_INT(lz_client_request(client, "who", NULL, &reply, 2000), 0);
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_proxy_destroy(&proxy); // stops the running proxy
    lz_server_destroy(&a);
    lz_server_destroy(&b);
    LZ_CHECK(lz_proxy_new(ctx, (lz_proxy_kind_t)9, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL) == NULL);
    lz_context_destroy(&ctx);
}

// started_proxy makes and starts a forwarder on free ports.
static lz_proxy_t *started_proxy(lz_context_t *ctx) {
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_FORWARDER, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL);
    LZ_CHECK(proxy != NULL);
    LZ_CHECK_INT(lz_proxy_start(proxy), 0);
    return proxy;
}

// logged_proxy makes *ctx, whose log goes to log, and starts a forwarder in it.
static lz_proxy_t *logged_proxy(lz_context_t **ctx, lz_test_log_t *log) {
    *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(*ctx), lz_test_log_capture, log), LZ_OK);
    return started_proxy(*ctx);
}

// steer pauses and resumes the proxy until a command is refused.
static void *steer(void *arg) {
    lz_proxy_t *proxy = arg;
    while (lz_proxy_pause(proxy) == LZ_OK && lz_proxy_resume(proxy) == LZ_OK) {}
    return NULL;
}

// Steering from one thread while another stops the proxy: the stop wins,
// the steering thread sees LZ_ESTATE, nothing races.
LZ_TEST(steer_while_stopping) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=ERROR");
    lz_proxy_t *proxy = started_proxy(ctx);
    pthread_t steerer;
    LZ_CHECK_INT(pthread_create(&steerer, NULL, steer, proxy), 0);
    lz_test_sleep_ms(20);
    LZ_CHECK_INT(lz_proxy_stop(proxy), 0);
    pthread_join(steerer, NULL);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

// A proxy whose thread ended on a libzmq failure says so: the frontend
// node counts and logs why, a command gets LZ_ECLOSED instead of waiting
// for good on a reader that is gone, and a stop still joins the thread.
LZ_TEST(a_command_to_an_ended_proxy_is_refused) {
    lz_context_t *ctx;
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    lz_proxy_t *proxy = logged_proxy(&ctx, &log);
    lz_node_t *frontend = lz_proxy_frontend(proxy);
    atomic_store(&poll_fails_on, lz_node_zmq_socket(frontend));
    // The thread waits in a zmq_poll begun before: a command ends that
    // wait, and its next one fails.
    LZ_CHECK_INT(lz_proxy_pause(proxy), LZ_OK);
    LZ_TEST_WAIT_UNTIL(lz_test_metrics(frontend).errors == 1, 5000);
    LZ_CHECK_INT(lz_test_metrics(frontend).errors, 1);
    LZ_CHECK_INT(lz_test_logged(&log, "proxy ended: Bad address"), 1);
    // A command sent as the thread closes its end may still be queued;
    // once the pipe is gone each one is refused, within a slice or two.
    int rc = LZ_OK;
    for (int64_t deadline = lz_test_now_ms() + 5000; rc == LZ_OK && lz_test_now_ms() < deadline;)
        rc = lz_proxy_resume(proxy);
    LZ_CHECK_INT(rc, LZ_ECLOSED);
    LZ_CHECK(strstr(lz_last_error(), "the proxy's thread has ended") != NULL);
    lz_proxy_stats_t stats;
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), LZ_ECLOSED);
    LZ_CHECK_INT(lz_proxy_stop(proxy), LZ_OK);
    LZ_CHECK_INT(lz_proxy_pause(proxy), LZ_ESTATE);
    atomic_store(&poll_fails_on, NULL);
    // And it starts again.
    LZ_CHECK_INT(lz_proxy_start(proxy), LZ_OK);
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), LZ_OK);
    LZ_CHECK_INT(lz_proxy_stop(proxy), LZ_OK);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

// An answer the proxy's thread gave just before it ended is taken. The
// wait looked at whether the thread had ended only after a receive that
// failed (a slice's end, or a signal), and gave up at once: an answer that
// came between the two was lost, and a STATISTICS that the thread did
// answer failed with LZ_ECLOSED. Staged with a signal (staging, above).
LZ_TEST(an_answer_given_as_the_thread_ends_is_taken) {
    lz_context_t *ctx;
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    lz_proxy_t *proxy = logged_proxy(&ctx, &log);
    lz_node_t *frontend = lz_proxy_frontend(proxy);
    struct sigaction caught = {.sa_handler = wait_for_the_end}, old; // no SA_RESTART: the receive fails
    sigemptyset(&caught.sa_mask);
    sigaction(SIGUSR1, &caught, &old);
    staging.asker = (pid_t)syscall(SYS_gettid);
    staging.end = lz_test_now_ms() + 5000 * LZ_TEST_SLOWDOWN;
    atomic_store(&staging.in_handler, false);
    atomic_store(&staging.frontend, lz_node_zmq_socket(frontend));
    lz_proxy_stats_t stats;
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), LZ_OK);
    sigaction(SIGUSR1, &old, NULL); // the one signal was handled: the thread waited for that
    LZ_CHECK(atomic_load(&staging.in_handler));
    LZ_CHECK_INT(lz_test_logged(&log, "proxy ended: Bad address"), 1);
    LZ_CHECK_INT(lz_proxy_stop(proxy), LZ_OK);
    atomic_store(&poll_fails_on, NULL);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

enum { RESTART_ROUNDS = 20 };
static atomic_int restarts_ok;
static atomic_bool restarts_done;

// restart_at_once starts and stops the proxy RESTART_ROUNDS times, no
// pause between, asking for its counts on every other round, and leaves
// it running.
static void *restart_at_once(void *arg) {
    lz_proxy_t *proxy = arg;
    lz_proxy_stats_t stats;
    for (int round = 0; round < RESTART_ROUNDS; round++) {
        bool ok = lz_proxy_start(proxy) == LZ_OK && (round % 2 == 0 || lz_proxy_statistics(proxy, &stats) == LZ_OK);
        atomic_fetch_add(&restarts_ok, ok && lz_proxy_stop(proxy) == LZ_OK);
    }
    atomic_fetch_add(&restarts_ok, lz_proxy_start(proxy) == LZ_OK);
    atomic_store(&restarts_done, true);
    return NULL;
}

// A proxy is started again at once after a stop, as often as one likes,
// and goes on moving messages on the sockets it had. Each run's steering
// pipe had the same name: the bound end still held the last run's peer,
// which libzmq lets go only later, so the new thread's READY was lost
// and the start waited for good (after a STATISTICS, a failed wait then
// joined a thread that was running: for good as well).
LZ_TEST(a_proxy_starts_again_at_once) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=ERROR");
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL);
    LZ_CHECK(proxy != NULL);
    char backend[256];
    snprintf(backend, sizeof backend, ">%s", lz_node_endpoint(lz_proxy_backend(proxy)));
    lz_server_t *server = lz_server_new(ctx, backend);
    lz_server_on(server, "who", whoami, "s");
    lz_server_start(server);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_proxy_frontend(proxy)));
    atomic_store(&restarts_ok, 0);
    atomic_store(&restarts_done, false);
    pthread_t restarter;
    LZ_CHECK_INT(pthread_create(&restarter, NULL, restart_at_once, proxy), 0);
    LZ_TEST_WAIT_UNTIL(atomic_load(&restarts_done), 10000 * LZ_TEST_SLOWDOWN);
    if (!atomic_load(&restarts_done)) { // stuck for good: leave it all be, the failure is the news
        LZ_CHECK_INT(atomic_load(&restarts_ok), RESTART_ROUNDS + 1);
        return;
    }
    pthread_join(restarter, NULL);
    LZ_CHECK_INT(atomic_load(&restarts_ok), RESTART_ROUNDS + 1);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "who", NULL, &reply, 5000), LZ_OK);
    LZ_CHECK_STR(lz_value_get_string(reply, NULL) ? lz_value_get_string(reply, NULL) : "", "s");
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_proxy_destroy(&proxy);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// read_message reads one whole message from s into frames (each up to 31
// bytes, NUL-ended): how many frames, or -1 if none came.
static int read_message(void *s, char frames[][32], int max) {
    int n = 0, more = 1;
    size_t size = sizeof more;
    while (more && n < max) {
        int got = zmq_recv(s, frames[n], 31, 0);
        if (got < 0) return -1;
        frames[n++][got < 31 ? got : 31] = '\0';
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &size);
    }
    return n;
}

// A request the queue had taken in when it was stopped, while no server
// was there to take it, goes out whole once it runs again and a server
// comes. The loop held its first frame (the client's routing id) and left
// the rest queued: the stop dropped that frame, and the next run sent the
// rest as a request of its own, with the delimiter for a routing id.
LZ_TEST(a_message_held_at_a_stop_goes_out_whole) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=ERROR");
    lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL);
    LZ_CHECK_INT(lz_proxy_start(proxy), LZ_OK);
    void *zmq_ctx = lz_context_zmq(ctx);
    void *client = lz_test_plain_socket(zmq_ctx, ZMQ_DEALER, 5000, lz_node_endpoint(lz_proxy_frontend(proxy)));
    zmq_send(client, "", 0, ZMQ_SNDMORE);
    zmq_send(client, "one", 3, 0);
    lz_test_sleep_ms(200); // for the queue to take it in and find no server
    LZ_CHECK_INT(lz_proxy_stop(proxy), LZ_OK);
    LZ_CHECK_INT(lz_proxy_start(proxy), LZ_OK);
    void *server = lz_test_plain_socket(zmq_ctx, ZMQ_ROUTER, 5000, lz_node_endpoint(lz_proxy_backend(proxy)));
    char frames[6][32];
    // The queue's routing id, the client's, the delimiter, the body.
    LZ_CHECK_INT(read_message(server, frames, 6), 4);
    LZ_CHECK_STR(frames[2], "");
    LZ_CHECK_STR(frames[3], "one");
    zmq_send(server, frames[0], 5, ZMQ_SNDMORE); // ROUTER routing ids are five bytes
    zmq_send(server, frames[1], 5, ZMQ_SNDMORE);
    zmq_send(server, "", 0, ZMQ_SNDMORE);
    zmq_send(server, "reply", 5, 0);
    LZ_CHECK_INT(read_message(client, frames, 6), 2);
    LZ_CHECK_STR(frames[1], "reply");
    zmq_close(server);
    zmq_close(client);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

static pthread_barrier_t both;
static atomic_int stopped, refused, other;

// stop_it stops the proxy when both stoppers are ready, and tallies the result.
static void *stop_it(void *arg) {
    pthread_barrier_wait(&both);
    int rc = lz_proxy_stop(arg);
    atomic_fetch_add(rc == LZ_OK ? &stopped : rc == LZ_ESTATE ? &refused : &other, 1);
    return NULL;
}

// Two threads stop the proxy at once: exactly one stops it (and joins its
// thread), the other is told LZ_ESTATE.
LZ_TEST(two_stops_at_once) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=ERROR");
    for (int round = 0; round < 5; round++) {
        lz_proxy_t *proxy = started_proxy(ctx);
        atomic_store(&stopped, 0);
        atomic_store(&refused, 0);
        atomic_store(&other, 0);
        pthread_barrier_init(&both, NULL, 2);
        pthread_t a, b;
        pthread_create(&a, NULL, stop_it, proxy);
        pthread_create(&b, NULL, stop_it, proxy);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        pthread_barrier_destroy(&both);
        LZ_CHECK_INT(atomic_load(&stopped), 1);
        LZ_CHECK_INT(atomic_load(&refused), 1);
        lz_proxy_destroy(&proxy);
    }
    lz_context_destroy(&ctx);
}

// A proxy is started, steered and asked for its counts over a pipe to its
// thread. A signal on the caller's thread made those calls fail with EINTR:
// lz_proxy_start, interrupted while waiting for the thread to be ready,
// failed and then joined a thread that never ends (the test hung), and a
// command or a STATISTICS answer was lost to an error. Under a signal
// every 20 us, every call of 50 rounds must work.
LZ_TEST(proxy_control_survives_signals) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error");
    lz_pester_t p;
    lz_pester_start(&p, 200000, 20);
    int ok = 0;
    for (int round = 0; round < 50; round++) {
        char front[128], back[128]; // fresh names: a closed socket gives its name up only once reaped
        lz_proxy_t *proxy = lz_proxy_new(ctx, LZ_PROXY_QUEUE, lz_test_inproc_endpoint(front, sizeof front),
                                         lz_test_inproc_endpoint(back, sizeof back), NULL);
        lz_proxy_stats_t stats;
        ok += proxy && lz_proxy_start(proxy) == LZ_OK && lz_proxy_pause(proxy) == LZ_OK &&
              lz_proxy_resume(proxy) == LZ_OK && lz_proxy_statistics(proxy, &stats) == LZ_OK &&
              lz_proxy_stop(proxy) == LZ_OK;
        lz_proxy_destroy(&proxy);
    }
    int sent = lz_pester_stop(&p);
    lz_context_destroy(&ctx);
    LZ_CHECK_INT(ok, 50);
    LZ_CHECK(sent > 0); // the storm did blow meanwhile
}

// A subscriber that reads nothing fills its queue (the backend's XPUB
// waits for room rather than drop): the proxy holds that message, yet it
// still answers its commands, still passes subscriptions up, and moves on
// once the subscriber reads. libzmq's own proxy sat in its send: the
// STATISTICS answer never came and a stop waited for the reader.
LZ_TEST(a_full_subscriber_holds_up_only_its_way) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.high_water_mark=10", "logging.level=ERROR");
    lz_proxy_t *proxy = started_proxy(ctx);
    void *slow = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_SUB, -1, NULL);
    int hwm = 10;
    zmq_setsockopt(slow, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(slow, ZMQ_SUBSCRIBE, "", 0);
    LZ_CHECK_INT(zmq_connect(slow, lz_node_endpoint(lz_proxy_backend(proxy))), 0);
    void *pub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_PUB, -1, lz_node_endpoint(lz_proxy_frontend(proxy)));
    lz_proxy_stats_t stats = {0};
    // Until the subscription is up and then far more than the queues and
    // the kernel's socket buffers between them hold.
    static char block[64 * 1024];
    LZ_TEST_WAIT_UNTIL(zmq_send(pub, block, sizeof block, ZMQ_DONTWAIT) >= 0 &&
                           lz_proxy_statistics(proxy, &stats) == LZ_OK && stats.backend_messages_sent > 0,
                       5000);
    for (int i = 0; i < 1000; i++) zmq_send(pub, block, sizeof block, ZMQ_DONTWAIT);
    uint64_t moved;
    do {
        moved = stats.backend_messages_sent;
        lz_test_sleep_ms(100);
        LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), LZ_OK); // answered while held
    } while (stats.backend_messages_sent != moved);
    LZ_CHECK(moved < 1000); // held up: the reader's side is full

    // The other way still moves: a second subscriber's subscription goes up.
    uint64_t up = stats.backend_messages_received;
    void *late = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_SUB, -1, lz_node_endpoint(lz_proxy_backend(proxy)));
    zmq_setsockopt(late, ZMQ_SUBSCRIBE, "late", 4);
    LZ_TEST_WAIT_UNTIL(lz_proxy_statistics(proxy, &stats) == LZ_OK && stats.backend_messages_received > up, 5000);
    LZ_CHECK(stats.backend_messages_received > up);

    // Reading lets it go on.
    for (int i = 0; i < 50; i++) zmq_recv(slow, block, sizeof block, 0);
    LZ_TEST_WAIT_UNTIL(lz_proxy_statistics(proxy, &stats) == LZ_OK && stats.backend_messages_sent > moved, 5000);
    LZ_CHECK(stats.backend_messages_sent > moved);

    // A stop does not wait for the reader either.
    for (int i = 0; i < 1000; i++) zmq_send(pub, block, sizeof block, ZMQ_DONTWAIT);
    int64_t start = lz_test_now_ms();
    LZ_CHECK_INT(lz_proxy_stop(proxy), LZ_OK);
    LZ_CHECK(lz_test_now_ms() - start < 1000);
    zmq_close(late);
    zmq_close(slow);
    zmq_close(pub);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

// notice_within: the next subscription notice the upstream XPUB reads
// within timeout_ms, as "+topic" or "-topic"; "" if none came.
static const char *notice_within(void *xpub, int timeout_ms, char *buf, size_t size) {
    zmq_setsockopt(xpub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    char frame[64];
    int got = zmq_recv(xpub, frame, sizeof frame, 0);
    if (got < 1 || got > (int)sizeof frame) return "";
    snprintf(buf, size, "%c%.*s", frame[0] == 1 ? '+' : '-', got - 1, frame + 1);
    return buf;
}

// got_one: sub reads a publication of topic "t" sent within 300 ms.
static bool got_one(void *pub, void *sub) {
    int timeout_ms = 10;
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    char frame[8];
    for (int i = 0; i < 30; i++) {
        zmq_send(pub, "t", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(pub, "1", 1, ZMQ_DONTWAIT);
        if (zmq_recv(sub, frame, sizeof frame, 0) >= 0) return true;
    }
    return false;
}

// The forwarder reads every subscribe (so it learns every subscriber): a
// topic stays subscribed upstream while any of its subscribers is left,
// and goes with the last one.
LZ_TEST(a_topic_goes_upstream_with_its_last_subscriber) {
    lz_context_t *ctx = new_context();
    lz_proxy_t *proxy = started_proxy(ctx);
    void *pub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_XPUB, -1, lz_node_endpoint(lz_proxy_frontend(proxy)));
    void *subs[2];
    for (int i = 0; i < 2; i++) {
        subs[i] = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_SUB, -1, lz_node_endpoint(lz_proxy_backend(proxy)));
        zmq_setsockopt(subs[i], ZMQ_SUBSCRIBE, "t", 1);
    }
    char notice[64];
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "+t");
    LZ_CHECK(got_one(pub, subs[0]) && got_one(pub, subs[1]));

    zmq_close(subs[0]);
    lz_test_sleep_ms(200); // for its unsubscribe to pass the proxy, were it to go up
    LZ_CHECK(got_one(pub, subs[1]));
    const char *seen;
    while (*(seen = notice_within(pub, 0, notice, sizeof notice))) LZ_CHECK_STR(seen, "+t");

    zmq_close(subs[1]);
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "-t");
    zmq_close(pub);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

// A subscriber's repeated subscribes go up once: libzmq's XSUB counts the
// subscribes it is sent, and the subscriber's one unsubscribe (when it
// drops the topic as often as it subscribed, or leaves) must bring the
// count back to 0. Forwarded each, the topic stayed upstream for good.
// What went up outlives a restart of the proxy, as the XSUB's count does.
LZ_TEST(a_topic_subscribed_twice_leaves_upstream_with_its_subscriber) {
    lz_context_t *ctx = new_context();
    lz_proxy_t *proxy = started_proxy(ctx);
    void *pub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_XPUB, -1, lz_node_endpoint(lz_proxy_frontend(proxy)));
    void *sub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_SUB, -1, lz_node_endpoint(lz_proxy_backend(proxy)));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "t", 1);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "t", 1);
    char notice[64];
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "+t");
    LZ_CHECK(got_one(pub, sub));
    LZ_CHECK_INT(lz_proxy_stop(proxy), LZ_OK);
    LZ_CHECK_INT(lz_proxy_start(proxy), LZ_OK);

    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "u", 1);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "u", 1);
    zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, "u", 1);
    zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, "u", 1); // the subscriber's one unsubscribe goes now
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "+u");
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "-u");
    zmq_close(sub);
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "-t");

    // Gone from the forwarder's count too: a new subscriber's goes up again.
    sub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_SUB, -1, lz_node_endpoint(lz_proxy_backend(proxy)));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "t", 1);
    LZ_CHECK_STR(notice_within(pub, 5000, notice, sizeof notice), "+t");
    zmq_close(sub);
    zmq_close(pub);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

static void ignore_signal(int sig) { (void)sig; }

static atomic_bool storm_over;
static atomic_int storm_sent;

// profiler_storm sends SIGPROF to every other thread of the process, over
// and over, as a sampling profiler's timer does to whichever runs.
static void *profiler_storm(void *arg) {
    (void)arg;
    pid_t self = (pid_t)syscall(SYS_gettid);
    while (!atomic_load(&storm_over)) {
        DIR *tasks = opendir("/proc/self/task");
        for (struct dirent *task; tasks && (task = readdir(tasks));) {
            pid_t tid = (pid_t)atoi(task->d_name);
            if (tid > 0 && tid != self && syscall(SYS_tgkill, getpid(), tid, SIGPROF) == 0)
                atomic_fetch_add(&storm_sent, 1);
        }
        if (tasks) closedir(tasks);
        usleep(20);
    }
    return NULL;
}

// A profiler's SIGPROF reaches the proxy's thread too (our threads block
// the asynchronous signals, not that one) and makes the libzmq call it
// lands in fail with EINTR: the loop restarts it, so every message still
// crosses, once and in order, and the proxy still answers.
LZ_TEST(proxy_moves_everything_under_a_profiler) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=ERROR");
    lz_proxy_t *proxy = started_proxy(ctx);
    void *pub = zmq_socket(lz_context_zmq(ctx), ZMQ_PUB), *sub = zmq_socket(lz_context_zmq(ctx), ZMQ_SUB);
    int none = 0, wait_ms = 5000 * LZ_TEST_SLOWDOWN;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &none, sizeof none); // nothing dropped at the sender
    zmq_setsockopt(sub, ZMQ_RCVHWM, &none, sizeof none);
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(sub, lz_node_endpoint(lz_proxy_backend(proxy)));
    zmq_connect(pub, lz_node_endpoint(lz_proxy_frontend(proxy)));
    lz_proxy_stats_t stats = {0};
    LZ_TEST_WAIT_UNTIL(zmq_send(pub, "x", 1, 0) == 1 && lz_proxy_statistics(proxy, &stats) == LZ_OK &&
                           stats.backend_messages_sent > 0, 5000);
    uint64_t before = stats.backend_messages_sent;
    // This thread catches it too (no SA_RESTART): its own calls restart below.
    struct sigaction caught = {.sa_handler = ignore_signal};
    sigaction(SIGPROF, &caught, NULL);
    atomic_store(&storm_over, false);
    atomic_store(&storm_sent, 0);
    pthread_t storm;
    pthread_create(&storm, NULL, profiler_storm, NULL);
    // Sent in rounds, each once the storm has blown again since the last:
    // a loaded machine may leave the storm's thread unscheduled while all
    // of a quick transfer crosses (a CI run under load saw under 100 sent).
    enum { COUNT = 20000, ROUNDS = 20 };
    int got = 0, next = 0, in_order = 1, value, rc;
    for (int i = 0, seen = 0; i < COUNT; i++) {
        if (i % (COUNT / ROUNDS) == 0) {
            LZ_TEST_WAIT_UNTIL(atomic_load(&storm_sent) > seen, 5000);
            seen = atomic_load(&storm_sent);
        }
        LZ_EINTR_RESTART(rc, zmq_send(pub, &i, sizeof i, 0));
    }
    for (int64_t end = lz_test_now_ms() + wait_ms; got < COUNT && lz_test_now_ms() < end;) {
        rc = zmq_recv(sub, &value, sizeof value, 0);
        if (rc < 0 && zmq_errno() != EINTR) break; // nothing for 5 s
        if (rc != sizeof value) continue;          // an "x", or a receive the signal cut short
        in_order &= value == next++;
        got++;
    }
    LZ_CHECK_INT(lz_proxy_statistics(proxy, &stats), LZ_OK); // still in the storm
    atomic_store(&storm_over, true);
    pthread_join(storm, NULL);
    // Ignored, not back to the default action (which ends the process): a
    // SIGPROF sent to a thread that has not run since may still be pending
    // (under ThreadSanitizer, held until the thread's next call), and
    // SIG_IGN discards it. A CI run under TSan ended of one.
    signal(SIGPROF, SIG_IGN);
    LZ_CHECK_INT(got, COUNT);
    LZ_CHECK(in_order);
    LZ_CHECK(stats.backend_messages_sent >= before + COUNT);
    LZ_CHECK(atomic_load(&storm_sent) >= ROUNDS); // the storm did blow meanwhile
    zmq_close(sub);
    zmq_close(pub);
    lz_proxy_destroy(&proxy);
    lz_context_destroy(&ctx);
}

// A proxy whose first node cannot start (no such serializer) leaves the
// context as it was. The node had named its context before the lookup
// failed, so the proxy's clean-up closed it and dropped a reference it never
// took: the caller's context was freed (ASan: use after free below).
LZ_TEST(a_proxy_that_cannot_start_leaves_its_context_whole) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=CRITICAL", "serialization.default=nosuch");
    char front[64], back[64];
    lz_test_inproc_endpoint(front, sizeof front);
    lz_test_inproc_endpoint(back, sizeof back);
    LZ_CHECK(lz_proxy_new(ctx, LZ_PROXY_QUEUE, front, back, NULL) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "serialization.default") != NULL);
    LZ_CHECK(lz_router_new(ctx, front) == NULL); // the context is still there to refuse again
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    lz_context_destroy(&ctx);
    LZ_CHECK(ctx == NULL);
}

LZ_TEST_MAIN(LZ_CASE(forwarder_passes_subscriptions_up), LZ_CASE(queue_is_a_broker), LZ_CASE(steer_while_stopping),
             LZ_CASE(a_command_to_an_ended_proxy_is_refused),
             LZ_CASE(an_answer_given_as_the_thread_ends_is_taken), LZ_CASE(a_proxy_starts_again_at_once),
             LZ_CASE(a_message_held_at_a_stop_goes_out_whole),
             LZ_CASE(two_stops_at_once), LZ_CASE(proxy_control_survives_signals),
             LZ_CASE(a_full_subscriber_holds_up_only_its_way), LZ_CASE(a_topic_goes_upstream_with_its_last_subscriber),
             LZ_CASE(a_topic_subscribed_twice_leaves_upstream_with_its_subscriber),
             LZ_CASE(proxy_moves_everything_under_a_profiler),
             LZ_CASE(a_proxy_that_cannot_start_leaves_its_context_whole))
