/* Pair: a thread-to-thread pipe over inproc, values both ways, raw bytes,
 * timeouts and undecodable payloads. */
#include <pthread.h>
#include <stdatomic.h>

#include "lz_test.h"
#include "liberzmq/pair.h"

static lz_context_t *new_context(void) { return LZ_TEST_CONTEXT("zmq.linger=0"); }

// The worker end doubles every integer it gets and stops on null.
static void *doubler(void *p) {
    lz_pair_t *end = p;
    for (;;) {
        lz_message_t *msg = lz_pair_recv(end, 5000);
        if (!msg) break;
        const lz_value_t *v = lz_message_value(msg);
        bool stop = lz_value_type(v) == LZ_VALUE_NULL;
        if (!stop) {
            lz_value_t *out = lz_value_int(lz_value_get_int(v) * 2);
            lz_pair_send(end, out);
            lz_value_destroy(&out);
        }
        lz_message_destroy(&msg);
        if (stop) break;
    }
    return NULL;
}

LZ_TEST(pipe_between_threads) {
    lz_context_t *ctx = new_context();
    lz_pair_t *a = NULL, *b = NULL;
    LZ_CHECK_INT(lz_pair_pipe(ctx, &a, &b), 0);
    pthread_t thread;
    pthread_create(&thread, NULL, doubler, b);
    for (int i = 0; i < 1000; i++) {
        lz_value_t *v = lz_value_int(i);
        LZ_CHECK_INT(lz_pair_send(a, v), 0);
        lz_value_destroy(&v);
        lz_message_t *msg = lz_pair_recv(a, 2000);
        LZ_CHECK(msg != NULL);
        LZ_CHECK_INT(lz_value_get_int(lz_message_value(msg)), 2 * i);
        lz_message_destroy(&msg);
    }
    LZ_CHECK_INT(lz_pair_send(a, NULL), 0); // null: stop
    pthread_join(thread, NULL);
    lz_metrics_t m;
    lz_node_metrics(lz_pair_node(a), &m);
    LZ_CHECK_INT(m.messages_sent, 1001);
    LZ_CHECK_INT(m.messages_received, 1000);
    lz_pair_destroy(&a);
    lz_pair_destroy(&b);
    LZ_CHECK(a == NULL && b == NULL);
    lz_context_destroy(&ctx);
}

LZ_TEST(bytes_timeouts_and_garbage) {
    lz_context_t *ctx = new_context();
    char url[128], peer[130];
    lz_test_inproc_endpoint(url, sizeof url);
    snprintf(peer, sizeof peer, ">%s", url);
    lz_pair_t *a = lz_pair_new(ctx, url);
    lz_pair_t *b = lz_pair_new(ctx, peer);
    LZ_CHECK(a && b);
    LZ_CHECK(lz_pair_recv(a, 20) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
    LZ_CHECK_INT(lz_pair_send_bytes(b, "{oops", 5), 0); // not JSON: dropped
    LZ_CHECK_INT(lz_pair_send_bytes(b, "[1]", 3), 0);
    lz_message_t *msg = lz_pair_recv(a, 1000);
    LZ_CHECK(msg && lz_value_size(lz_message_value(msg)) == 1);
    size_t size = 0;
    LZ_CHECK(msg && lz_message_payload(msg, &size) && size == 3);
    lz_message_destroy(&msg);
    lz_metrics_t m;
    lz_node_metrics(lz_pair_node(a), &m);
    LZ_CHECK_INT(m.inbound_dropped, 1);
    // The raw codec hands bytes through untouched.
    LZ_CHECK_INT(lz_node_set_serializer(lz_pair_node(a), "raw"), 0);
    LZ_CHECK_INT(lz_pair_send_bytes(b, "\x00\x01", 2), 0);
    msg = lz_pair_recv(a, 1000);
    LZ_CHECK(msg && lz_value_type(lz_message_value(msg)) == LZ_VALUE_BYTES);
    lz_message_destroy(&msg);
    LZ_CHECK_INT(lz_pair_send_bytes(NULL, "x", 1), LZ_EINVAL);
    LZ_CHECK(lz_pair_recv(NULL, 0) == NULL);
    lz_pair_destroy(&b);
    lz_pair_destroy(&a);
    lz_context_destroy(&ctx);
}

// A peer sending undecodable messages faster than the timeout: each is
// dropped, and the receive still ends when its timeout is up.
typedef struct garbage_flood {
    lz_pair_t *end;
    atomic_bool stop;
    int sent;
} garbage_flood_t;

static void *flood_garbage(void *p) {
    garbage_flood_t *flood = p;
    while (!atomic_load(&flood->stop) && flood->sent < 200) { // 4 s at most
        lz_pair_send_bytes(flood->end, "{oops", 5);
        flood->sent++;
        lz_test_sleep_ms(20);
    }
    return NULL;
}

LZ_TEST(garbage_does_not_extend_the_timeout) {
    lz_context_t *ctx = new_context();
    lz_pair_t *a = NULL, *b = NULL;
    LZ_CHECK_INT(lz_pair_pipe(ctx, &a, &b), 0);
    garbage_flood_t flood = {.end = b};
    atomic_init(&flood.stop, false);
    pthread_t thread;
    pthread_create(&thread, NULL, flood_garbage, &flood);
    int64_t start = lz_test_now_ms();
    LZ_CHECK(lz_pair_recv(a, 300) == NULL);
    int64_t elapsed = lz_test_now_ms() - start;
    LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
    atomic_store(&flood.stop, true);
    pthread_join(thread, NULL);
    LZ_CHECK(elapsed >= 290 && elapsed < 2000); // before the fix: until the flood ended, 4 s
    lz_metrics_t m;
    lz_node_metrics(lz_pair_node(a), &m);
    LZ_CHECK(m.inbound_dropped >= 5); // a message every 20 ms for 300 ms, all counted
    lz_pair_destroy(&a);
    lz_pair_destroy(&b);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(pipe_between_threads), LZ_CASE(bytes_timeouts_and_garbage),
             LZ_CASE(garbage_does_not_extend_the_timeout))
