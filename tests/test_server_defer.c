/* Deferred server replies (lz_server_defer): a handler parks its request
 * and another thread answers later, with a value or an error; many parked
 * requests hold no worker; the inline server sends them at once too; a
 * stop answers the parked ones LZ_ECLOSED and their handles still finish;
 * a reply to a client gone, or to one whose queue is full, is counted and
 * reported to its sender; misuse is refused. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <zmq.h>

#include "lz_test.h"

#define LOT_MAX 64

// A parking lot: the handles the "park" handler deferred, in arrival
// order, with the number each request carried.
typedef struct {
    pthread_mutex_t mutex;
    lz_server_reply_t *handle[LOT_MAX];
    int64_t number[LOT_MAX];
    int count;
} lot_t;

static int park(const lz_message_t *request, lz_value_t **reply, void *arg) {
    lot_t *lot = arg;
    int64_t number = lz_value_get_int(lz_message_value(request)); // now: request goes with the reply
    lz_server_reply_t *handle = lz_server_defer(request);
    LZ_CHECK(handle != NULL);
    pthread_mutex_lock(&lot->mutex);
    LZ_CHECK(lot->count < LOT_MAX);
    lot->number[lot->count] = number;
    lot->handle[lot->count++] = handle;
    pthread_mutex_unlock(&lot->mutex);
    return LZ_SERVER_DEFERRED;
}

static int parked(lot_t *lot) {
    pthread_mutex_lock(&lot->mutex);
    int n = lot->count;
    pthread_mutex_unlock(&lot->mutex);
    return n;
}

// new_parking: a server parking "park" requests in lot, not started yet.
static lz_server_t *new_parking(lz_context_t *ctx, lot_t *lot, const char *endpoint) {
    pthread_mutex_init(&lot->mutex, NULL);
    lot->count = 0;
    lz_server_t *server = lz_server_new(ctx, endpoint);
    LZ_CHECK(server != NULL);
    LZ_CHECK_INT(lz_server_on(server, "park", park, lot), LZ_OK);
    return server;
}

static lz_server_t *start_parking_at(lz_context_t *ctx, lot_t *lot, const char *endpoint) {
    lz_server_t *server = new_parking(ctx, lot, endpoint);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    return server;
}

static lz_server_t *start_parking(lz_context_t *ctx, lot_t *lot) {
    return start_parking_at(ctx, lot, "tcp://127.0.0.1:*");
}

static lz_client_t *new_client(lz_context_t *ctx, lz_server_t *server) {
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    LZ_CHECK(client != NULL);
    return client;
}

/* One request parked, answered from another thread after a while. */
typedef struct {
    lot_t *lot;
    int delay_ms;
    int64_t sent_at;
} answerer_t;

static void *answer_later(void *arg) {
    answerer_t *a = arg;
    LZ_TEST_WAIT_UNTIL(parked(a->lot) == 1, 5000 * LZ_TEST_SLOWDOWN);
    lz_test_sleep_ms(a->delay_ms);
    lz_value_t *value = lz_value_string("later");
    a->sent_at = lz_test_now_ms();
    LZ_CHECK_INT(lz_server_reply_send(&a->lot->handle[0], value), LZ_OK);
    LZ_CHECK(a->lot->handle[0] == NULL);
    lz_value_destroy(&value);
    return NULL;
}

// reply_later: with concurrency workers, a parked request gets the reply
// another thread sends delay_ms later, and it goes out at once (within
// bound_ms of the send).
static void reply_later(int concurrency, int bound_ms) {
    lz_context_t *ctx = lz_test_pattern_context(concurrency);
    lot_t lot;
    lz_server_t *server = start_parking(ctx, &lot);
    lz_client_t *client = new_client(ctx, server);
    answerer_t a = {&lot, 200, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, answer_later, &a);
    lz_value_t *data = lz_value_int(7), *reply = NULL;
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_client_request(client, "park", data, &reply, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    int64_t now = lz_test_now_ms();
    LZ_CHECK_STR(lz_value_get_string(reply, NULL), "later");
    LZ_CHECK(now - t0 >= 200);
    pthread_join(thread, NULL);
    if (now - a.sent_at >= bound_ms) fprintf(stderr, "reply took %lld ms after its send\n", (long long)(now - a.sent_at));
    LZ_CHECK(now - a.sent_at < bound_ms);
    lz_metrics_t m = lz_test_metrics(lz_server_node(server));
    LZ_CHECK_INT(m.messages_sent, 1);
    LZ_CHECK_INT(m.errors, 0);
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(pooled_server_replies_later) { reply_later(4, 100 * LZ_TEST_SLOWDOWN); }

// The inline server's I/O thread would hold the socket for 50 ms slices:
// once a reply is deferred it waits outside the lock, so a reply from
// another thread does not wait for a slice to end.
LZ_TEST(inline_server_replies_later) { reply_later(1, 40 * LZ_TEST_SLOWDOWN); }

/* Requests sent without waiting, each with its outcome. */
typedef lz_test_outcome_t outcome_t;

// ask_parked sends "park" with number, its outcome in *o.
static void ask_parked(lz_client_t *client, outcome_t *o, int64_t number, int timeout_ms) {
    lz_value_t *data = lz_value_int(number);
    *o = (outcome_t){.status = 1};
    LZ_CHECK_INT(lz_client_request_async(client, "park", data, timeout_ms, lz_test_on_reply, o), LZ_OK);
    lz_value_destroy(&data);
}

static int done_count(outcome_t *o, int n) {
    int done = 0;
    for (int i = 0; i < n; i++) done += atomic_load(&o[i].done);
    return done;
}

static void outcome_free(outcome_t *o) { lz_value_destroy(&o->reply); }

LZ_TEST(error_reply_later) {
    lz_context_t *ctx = lz_test_pattern_context(2);
    lot_t lot;
    lz_server_t *server = start_parking(ctx, &lot);
    lz_client_t *client = new_client(ctx, server);
    outcome_t o;
    ask_parked(client, &o, 1, 5000 * LZ_TEST_SLOWDOWN);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == 1, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(lz_server_reply_error(&lot.handle[0], LZ_EVALIDATION, "not today"), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&o.done), 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(o.status, LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(o.reply, "message", NULL), "not today");
    LZ_CHECK_STR(lz_value_find_string(o.reply, "code", NULL), "LZ_EVALIDATION");
    LZ_CHECK_STR(lz_value_find_string(o.reply, "request_type", NULL), "park");
    LZ_CHECK_INT(lz_test_metrics(lz_server_node(server)).errors, 1); // as a failing handler counts
    outcome_free(&o);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

/* A codec that refuses some error replies: json, but for an object whose
 * "message" is "unsayable", or whose "request_type" is "unanswerable"
 * (whatever its message). As a custom codec may refuse any text, or as
 * msgpack and json refused a message that is not UTF-8. */
static bool unsayable(const lz_value_t *value) {
    const char *message = lz_value_find_string(value, "message", "");
    const char *action = lz_value_find_string(value, "request_type", "");
    return strcmp(message, "unsayable") == 0 || strcmp(action, "unanswerable") == 0;
}

static int picky_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    if (unsayable(value)) return LZ_ESERIALIZATION;
    return lz_serializer_encode(state, value, out);
}

static int picky_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    return lz_serializer_decode(state, data, size, out);
}

static const lz_serializer_ops_t picky_ops = {"picky", "application/json", 0, picky_encode, picky_decode, NULL};

// An error reply whose message the serializer refuses goes with the code's
// own words, and lz_server_reply_error says 0; one that does not encode at
// all goes as an empty frame, and lz_server_reply_error says so. (Before,
// the first went empty too, the client read LZ_ESERIALIZATION instead of
// the code, and both returned 0.)
LZ_TEST(error_reply_the_serializer_refuses) {
    lz_context_t *ctx = lz_test_pattern_context(2);
    LZ_CHECK_INT(lz_serializer_register(ctx, &picky_ops, (void *)lz_serializer_builtin("json")), LZ_OK);
    lot_t lot;
    lz_server_t *server = new_parking(ctx, &lot, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "unanswerable", park, &lot), LZ_OK);
    LZ_CHECK_INT(lz_node_set_serializer(lz_server_node(server), "picky"), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = new_client(ctx, server);
    LZ_CHECK_INT(lz_node_set_serializer(lz_client_node(client), "picky"), LZ_OK);
    outcome_t o;
    ask_parked(client, &o, 1, 5000 * LZ_TEST_SLOWDOWN);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == 1, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(lz_server_reply_error(&lot.handle[0], LZ_EVALIDATION, "unsayable"), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&o.done), 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(o.status, LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(o.reply, "message", NULL), lz_strerror(LZ_EVALIDATION));
    LZ_CHECK_STR(lz_value_find_string(o.reply, "code", NULL), "LZ_EVALIDATION");
    outcome_free(&o);

    o = (outcome_t){.status = 1};
    LZ_CHECK_INT(lz_client_request_async(client, "unanswerable", NULL, 5000 * LZ_TEST_SLOWDOWN, lz_test_on_reply, &o),
                 LZ_OK);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == 2, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(lz_server_reply_error(&lot.handle[1], LZ_EVALIDATION, "why"), LZ_ESERIALIZATION);
    LZ_CHECK(lot.handle[1] == NULL); // finished all the same
    LZ_TEST_WAIT_UNTIL(atomic_load(&o.done), 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(o.status, LZ_ESERIALIZATION); // the empty frame: an answer, not a timeout
    outcome_free(&o);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_copy(lz_message_value(request));
    return 0;
}

// 50 requests parked on a server of 2 workers: none holds a worker (an
// ordinary request is answered meanwhile), and each gets its own answer
// whatever the order they are answered in.
LZ_TEST(many_parked_answered_in_any_order) {
    enum { N = 50 };
    lz_context_t *ctx = lz_test_pattern_context(2);
    lot_t lot;
    pthread_mutex_init(&lot.mutex, NULL);
    lot.count = 0;
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "park", park, &lot), LZ_OK);
    LZ_CHECK_INT(lz_server_on(server, "echo", echo, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = new_client(ctx, server);
    static outcome_t o[N];
    for (int i = 0; i < N; i++) ask_parked(client, &o[i], i, 10000 * LZ_TEST_SLOWDOWN);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == N, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(parked(&lot), N);
    lz_value_t *data = lz_value_int(99), *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "echo", data, &reply, 2000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK(lz_value_equal(reply, data));
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    LZ_CHECK_INT(done_count(o, N), 0);
    for (int step = 0; step < N; step++) { // 0, 7, 14, ... : 7 and 50 share no factor, so each once
        int i = step * 7 % N;
        lz_value_t *value = lz_value_int(lot.number[i] * 10);
        LZ_CHECK_INT(lz_server_reply_send(&lot.handle[i], value), LZ_OK);
        lz_value_destroy(&value);
    }
    LZ_TEST_WAIT_UNTIL(done_count(o, N) == N, 5000 * LZ_TEST_SLOWDOWN);
    for (int i = 0; i < N; i++) {
        LZ_CHECK_INT(o[i].status, LZ_OK);
        LZ_CHECK_INT(lz_value_get_int(o[i].reply), i * 10);
        outcome_free(&o[i]);
    }
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// A stop answers every parked request LZ_ECLOSED at once; the handles
// stay the holder's, and finishing them then sends nothing.
static void stop_with_parked(int concurrency) {
    enum { N = 5 };
    lz_context_t *ctx = lz_test_pattern_context(concurrency);
    lot_t lot;
    lz_server_t *server = start_parking(ctx, &lot);
    lz_client_t *client = new_client(ctx, server);
    outcome_t o[N];
    for (int i = 0; i < N; i++) ask_parked(client, &o[i], i, 10000 * LZ_TEST_SLOWDOWN);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == N, 5000 * LZ_TEST_SLOWDOWN);
    int64_t answered = lot.number[0]; // the workers may have parked them in any order
    LZ_CHECK_INT(lz_server_reply_send(&lot.handle[0], NULL), LZ_OK); // one answered before: not again
    int64_t t0 = lz_test_now_ms();
    lz_server_destroy(&server);
    LZ_TEST_WAIT_UNTIL(done_count(o, N) == N, 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(lz_test_now_ms() - t0 < 1000 * LZ_TEST_SLOWDOWN);
    for (int i = 0; i < N; i++) {
        LZ_CHECK_INT(o[i].status, i == answered ? LZ_OK : LZ_EREMOTE);
        if (i == answered) continue;
        LZ_CHECK_STR(lz_value_find_string(o[i].reply, "code", NULL), "LZ_ECLOSED");
        LZ_CHECK_STR(lz_value_find_string(o[i].reply, "message", NULL), "server stopping");
    }
    for (int i = 1; i < N; i++) {
        lz_value_t *value = lz_value_int(1);
        LZ_CHECK_INT(lz_server_reply_send(&lot.handle[i], value), LZ_ECLOSED); // after destroy: only freed
        LZ_CHECK(lot.handle[i] == NULL);
        lz_value_destroy(&value);
    }
    for (int i = 0; i < N; i++) outcome_free(&o[i]);
    lz_client_destroy(&client);
    lz_context_destroy(&ctx);
}

LZ_TEST(stop_answers_parked_requests) {
    stop_with_parked(4);
    stop_with_parked(1);
}

/* Answers racing the stop: each is sent or answered by the stop, once. */
typedef struct {
    lot_t *lot;
    atomic_int sent, closed;
} racer_t;

static void *answer_all(void *arg) {
    racer_t *r = arg;
    for (int i = 0; i < r->lot->count; i++) {
        int rc = lz_server_reply_error(&r->lot->handle[i], LZ_EBUSY, NULL);
        atomic_fetch_add(rc == LZ_OK ? &r->sent : &r->closed, 1);
    }
    return NULL;
}

LZ_TEST(answers_race_the_stop) {
    enum { N = 40 };
    lz_context_t *ctx = lz_test_pattern_context(2);
    lot_t lot;
    lz_server_t *server = start_parking(ctx, &lot);
    lz_client_t *client = new_client(ctx, server);
    static outcome_t o[N];
    for (int i = 0; i < N; i++) ask_parked(client, &o[i], i, 10000 * LZ_TEST_SLOWDOWN);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == N, 5000 * LZ_TEST_SLOWDOWN);
    racer_t r = {&lot, 0, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, answer_all, &r);
    lz_server_stop(server);
    pthread_join(thread, NULL);
    LZ_CHECK_INT(atomic_load(&r.sent) + atomic_load(&r.closed), N);
    LZ_TEST_WAIT_UNTIL(done_count(o, N) == N, 2000 * LZ_TEST_SLOWDOWN);
    for (int i = 0; i < N; i++) {
        LZ_CHECK_INT(o[i].status, LZ_EREMOTE);
        const char *code = lz_value_find_string(o[i].reply, "code", "");
        LZ_CHECK(strcmp(code, "LZ_EBUSY") == 0 || strcmp(code, "LZ_ECLOSED") == 0);
        outcome_free(&o[i]);
    }
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// A reply to a client that gave up and went away is dropped, counted, and
// reported to the caller (LZ_EUNREACHABLE). The client is a plain REQ
// socket (an lz_client whose request times out pings the server: that
// answer could be a drop too), on an ipc endpoint of the test's own (on a
// reused tcp port another test's client, reconnecting to a server it had
// there, could be a connection and a drop more; CI once saw both).
LZ_TEST(reply_after_the_client_left) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lot_t lot;
    char endpoint[256];
    lz_server_t *server = start_parking_at(ctx, &lot, lz_test_ipc_endpoint(endpoint, sizeof endpoint));
    void *req = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_REQ, -1, lz_node_endpoint(lz_server_node(server)));
    const char *request = "{\"action\":\"park\",\"data\":3}";
    LZ_CHECK_INT(zmq_send(req, request, strlen(request), 0), (int)strlen(request));
    LZ_TEST_WAIT_UNTIL(parked(&lot) == 1, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(parked(&lot), 1);
    LZ_CHECK_INT(lz_test_metrics(lz_server_node(server)).active_connections, 1);
    zmq_close(req);
    // The server sees its peer go (its monitor, too, a little later).
    LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_server_node(server)).active_connections == 0, 2000 * LZ_TEST_SLOWDOWN);
    lz_test_sleep_ms(20);
    LZ_CHECK_INT(lz_server_reply_send(&lot.handle[0], NULL), LZ_EUNREACHABLE); // the caller may take back what it gave
    LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_server_node(server)).outbound_dropped == 1, 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(lz_test_metrics(lz_server_node(server)).outbound_dropped, 1);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// A reply to a client that reads none finds its queue full: it waits
// zmq.send_timeout for room, is dropped and counted, and the caller learns
// it (LZ_EAGAIN), as it learns of a client gone, so it can take back what
// it gave. inproc makes the queue exact: the server's high water mark plus
// the client's, 2 replies here.
LZ_TEST(reply_to_a_full_queue_is_refused) {
    enum { N = 5 };
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.handler_max_concurrency=2", "zmq.high_water_mark=1",
                                        "zmq.send_timeout=50");
    lot_t lot;
    char endpoint[128];
    lz_server_t *server = start_parking_at(ctx, &lot, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    void *reader = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_DEALER, -1, NULL); // never reads
    int one = 1;
    zmq_setsockopt(reader, ZMQ_RCVHWM, &one, sizeof one);
    LZ_CHECK_INT(zmq_connect(reader, endpoint), 0);
    for (int i = 0; i < N; i++) {
        char request[64];
        int len = snprintf(request, sizeof request, "{\"type\":\"park\",\"data\":%d}", i);
        LZ_CHECK_INT(zmq_send(reader, request, (size_t)len, 0), len);
    }
    LZ_TEST_WAIT_UNTIL(parked(&lot) == N, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(parked(&lot), N);
    int sent = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        int rc = lz_server_reply_send(&lot.handle[i], NULL);
        LZ_CHECK(lot.handle[i] == NULL);
        if (rc == LZ_OK) LZ_CHECK_INT(refused, 0); // once full, the queue stays full
        else LZ_CHECK_INT(rc, LZ_EAGAIN);
        sent += rc == LZ_OK;
        refused += rc == LZ_EAGAIN;
    }
    LZ_CHECK(sent >= 1);
    LZ_CHECK(refused >= 1);
    LZ_CHECK_INT(sent + refused, N);
    lz_metrics_t m = lz_test_metrics(lz_server_node(server));
    LZ_CHECK_INT(m.messages_sent, sent);
    LZ_CHECK_INT(m.outbound_dropped, refused);
    zmq_close(reader);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

/* Misuse: a deferral outside a handler or of another request, twice, or
 * LZ_SERVER_DEFERRED returned without one. */
static int defer_twice(const lz_message_t *request, lz_value_t **reply, void *arg) {
    lz_server_reply_t *handle = lz_server_defer(request);
    LZ_CHECK(handle != NULL);
    LZ_CHECK(lz_server_defer(request) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    LZ_CHECK(lz_server_defer(arg) == NULL); // not this handler's request
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    *reply = lz_value_string("ignored: the handle answers");
    lz_value_t *value = lz_value_string("from the handle");
    LZ_CHECK_INT(lz_server_reply_send(&handle, value), LZ_OK); // before returning, on the handler's thread
    lz_value_destroy(&value);
    return 0;
}

static int claim_deferred(const lz_message_t *request, lz_value_t **reply, void *arg) { return LZ_SERVER_DEFERRED; }

LZ_TEST(misuse_is_refused) {
    lz_context_t *ctx = lz_test_pattern_context(2);
    // Only compared, never read: no message is made outside a receiver.
    const lz_message_t *other = (const lz_message_t *)"not a message";
    LZ_CHECK(lz_server_defer(other) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    LZ_CHECK(lz_server_defer(NULL) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    lz_server_reply_t *none = NULL;
    LZ_CHECK_INT(lz_server_reply_send(NULL, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_server_reply_error(&none, LZ_EIO, NULL), LZ_EINVAL);
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "twice", defer_twice, (void *)other), LZ_OK);
    LZ_CHECK_INT(lz_server_on(server, "claim", claim_deferred, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = new_client(ctx, server);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "twice", NULL, &reply, 3000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK_STR(lz_value_get_string(reply, NULL), "from the handle");
    lz_value_destroy(&reply);
    LZ_CHECK_INT(lz_client_request(client, "claim", NULL, &reply, 3000 * LZ_TEST_SLOWDOWN), LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(reply, "code", NULL), "LZ_ESTATE");
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

/* A traced handler that sends its own deferred reply, and one parked
 * before it (so its job is freed, not just kept as the spare), before it
 * returns: it is still inside its request's trace, and deferring again is
 * refused. Both read the freed job before (ASan: heap-use-after-free). */
static int answer_both_then_look(const lz_message_t *request, lz_value_t **reply, void *arg) {
    lot_t *lot = arg;
    const char *current = lz_trace_current();
    char before[64] = "";
    if (current) snprintf(before, sizeof before, "%s", current);
    LZ_CHECK(before[0] != '\0');
    lz_server_reply_t *own = lz_server_defer(request);
    LZ_CHECK_INT(lz_server_reply_send(&own, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_reply_send(&lot->handle[0], NULL), LZ_OK);
    LZ_CHECK_STR(lz_trace_current(), before);
    LZ_CHECK(lz_server_defer(request) == NULL); // only compared: request went with the reply
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    return LZ_SERVER_DEFERRED;
}

static void answer_inside_the_handler(int concurrency) {
    char workers[64];
    snprintf(workers, sizeof workers, "zmq.handler_max_concurrency=%d", concurrency);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=200", "tracing.enabled=true", workers);
    lot_t lot;
    lz_server_t *server = new_parking(ctx, &lot, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, "both", answer_both_then_look, &lot), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = new_client(ctx, server);
    outcome_t parked_one;
    ask_parked(client, &parked_one, 1, 5000 * LZ_TEST_SLOWDOWN);
    LZ_TEST_WAIT_UNTIL(parked(&lot) == 1, 5000 * LZ_TEST_SLOWDOWN);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "both", NULL, &reply, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_TEST_WAIT_UNTIL(atomic_load(&parked_one.done), 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(parked_one.status, LZ_OK);
    outcome_free(&parked_one);
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(answered_inside_its_handler) {
    answer_inside_the_handler(1);
    answer_inside_the_handler(2);
}

LZ_TEST_MAIN(LZ_CASE(pooled_server_replies_later), LZ_CASE(inline_server_replies_later), LZ_CASE(error_reply_later),
             LZ_CASE(error_reply_the_serializer_refuses),
             LZ_CASE(many_parked_answered_in_any_order), LZ_CASE(stop_answers_parked_requests),
             LZ_CASE(answers_race_the_stop), LZ_CASE(reply_after_the_client_left),
             LZ_CASE(reply_to_a_full_queue_is_refused), LZ_CASE(misuse_is_refused),
             LZ_CASE(answered_inside_its_handler))
