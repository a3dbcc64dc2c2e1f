/* Signals during libzmq calls (src/core/eintr.h), made certain.
 *
 * A signal fails the libzmq call it lands in with EINTR, and libzmq's
 * calls that do not wait fail too when the signal lands in the quick look
 * at the socket's command mailbox they make now and then: a poll(2) with
 * no timeout, a few hundred nanoseconds, which a storm of real signals
 * (test_context, test_proxy) rarely hits in a multipart send or receive.
 * Here that look is made to fail: this program defines poll(), which the
 * dynamic linker then binds libzmq's calls to, and on the testing thread
 * every second poll without a timeout returns EINTR (a call restarted
 * after one then gets through), as a signal arriving
 * during it would make it. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "lz_test.h"

// Set on the testing thread only: libzmq's and liberzmq's own threads run
// as usual.
static _Thread_local bool interrupting;
static atomic_long interrupted; // polls failed on purpose, all threads

int poll(struct pollfd *fds, nfds_t count, int timeout) {
    static _Thread_local unsigned calls;
    if (interrupting && timeout == 0 && ++calls % 2 == 0) {
        atomic_fetch_add(&interrupted, 1);
        errno = EINTR;
        return -1;
    }
    static int (*real)(struct pollfd *, nfds_t, int);
    if (!real) lz_test_next_function(&real, "poll");
    return real(fds, count, timeout);
}

// interrupt turns the failures on (from the next call) or off, and returns
// how many there were.
static long interrupt(bool on) {
    interrupting = on;
    return atomic_exchange(&interrupted, 0);
}

// A message's frames go out and come in one libzmq call each. Restarted
// from its first frame after an interrupted later one, a send sent the
// frames before it twice; a receive cut short left the message's tail to
// pass for the next message. Every message (topic, 8-byte sequence) must
// arrive whole and in order.
LZ_TEST(multipart_messages_stay_whole) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error");
    char ep[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_sub_t *sub = pub ? lz_sub_new(ctx, ep) : NULL;
    LZ_CHECK(sub != NULL && lz_sub_subscribe(sub, "") == LZ_OK);
    // inproc subscriptions are in place once the sub has connected: a first
    // message through shows it.
    uint64_t seq = UINT64_MAX, got;
    char topic[8];
    size_t topic_size = sizeof topic, size = sizeof got;
    bool joined = false;
    for (int i = 0; sub && !joined && i < 500; i++) {
        lz_pub_publish_bytes(pub, "join", &seq, sizeof seq);
        joined = lz_sub_recv_bytes(sub, topic, &topic_size, &got, &size, 10) == LZ_OK;
    }
    while (joined && lz_sub_recv_bytes(sub, topic, &topic_size, &got, &size, 50) == LZ_OK) {
        topic_size = sizeof topic; // the joins still on their way
        size = sizeof got;
    }
    LZ_CHECK(joined);
    interrupt(true);
    long n = 0, whole = 0;
    for (; joined && n < 200000; n++) {
        seq = (uint64_t)n;
        got = UINT64_MAX;
        topic_size = sizeof topic;
        size = sizeof got;
        if (lz_pub_publish_bytes(pub, "seq", &seq, sizeof seq) != LZ_OK) break;
        if (lz_sub_recv_bytes(sub, topic, &topic_size, &got, &size, 1000) != LZ_OK) break;
        whole += topic_size == 3 && memcmp(topic, "seq", 3) == 0 && size == sizeof got && got == seq;
    }
    long failed = interrupt(false);
    LZ_CHECK_INT(n, 200000);
    LZ_CHECK_INT(whole, n);
    if (sub) LZ_CHECK_INT(lz_test_metrics(lz_sub_node(sub)).inbound_dropped, 0);
    LZ_CHECK(failed > 100); // the looks did fail, in sends and receives alike
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

// Making a node binds or connects it, sets up libzmq's monitor of it and
// registers it with the context's connection monitor (a request and an
// answer over a pipe); closing it deregisters it. None may fail.
LZ_TEST(nodes_come_and_go) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error");
    interrupt(true);
    int made = 0;
    for (int round = 0; round < 100; round++) {
        char ep[128];
        lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
        lz_push_t *push = pull ? lz_push_new(ctx, ep) : NULL;
        made += push != NULL;
        lz_push_destroy(&push);
        lz_pull_destroy(&pull);
    }
    lz_context_destroy(&ctx); // its stop request to the monitor too
    long failed = interrupt(false);
    LZ_CHECK_INT(made, 100);
    LZ_CHECK(failed > 100);
}

// A reader on its own thread (not interrupted) that takes tasks slowly.
typedef struct slow_reader {
    lz_pull_t *pull;
    atomic_long received;
} slow_reader_t;

static void *read_slowly(void *arg) {
    slow_reader_t *r = arg;
    char buf[8];
    for (;;) {
        size_t size = sizeof buf;
        if (lz_pull_recv_bytes(r->pull, buf, &size, 500) != LZ_OK) return NULL; // the sender is done
        atomic_fetch_add(&r->received, 1);
        if (atomic_load(&r->received) % 16 == 0) lz_test_sleep_ms(1);
    }
}

// A send that finds its peer's queue full looks at the socket's events
// (ZMQ_EVENTS reads the mailbox too) before it waits for room: an
// interrupted look must not end the send.
LZ_TEST(full_queue_send_waits) {
    lz_context_t *ctx =
        LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error", "zmq.send_timeout=5000", "zmq.high_water_mark=1");
    char ep[128];
    slow_reader_t reader = {lz_pull_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep)), 0};
    lz_push_t *push = reader.pull ? lz_push_new(ctx, ep) : NULL;
    LZ_CHECK(push != NULL);
    pthread_t thread;
    bool reading = push && pthread_create(&thread, NULL, read_slowly, &reader) == 0;
    interrupt(true);
    int sent = 0;
    for (int i = 0; reading && i < 2000; i++) sent += lz_push_send_bytes(push, "task", 4) == LZ_OK;
    long failed = interrupt(false);
    if (reading) pthread_join(thread, NULL);
    LZ_CHECK_INT(sent, 2000);
    LZ_CHECK_INT(atomic_load(&reader.received), 2000);
    LZ_CHECK(failed > 10);
    lz_push_destroy(&push);
    lz_pull_destroy(&reader.pull);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(multipart_messages_stay_whole), LZ_CASE(nodes_come_and_go), LZ_CASE(full_queue_send_waits))
