/* Server: dispatch by action, the default handler, built-in ping, error
 * replies for unknown actions, failing handlers and malformed requests,
 * concurrency of handlers, and a server that keeps serving after garbage. */
#include <pthread.h>
#include <zmq.h>

#include "lz_test.h"

static lz_context_t *new_context(void) { return LZ_TEST_CONTEXT("zmq.linger=0", "zmq.handler_max_concurrency=4"); }

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_copy(lz_message_value(request));
    return 0;
}

static int fail(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_string("no luck");
    return LZ_EVALIDATION;
}

static int fallback(const lz_message_t *request, lz_value_t **reply, void *arg) {
    *reply = lz_value_object();
    lz_value_object_set_string(*reply, "fallback", lz_message_type(request));
    return 0;
}

static int slow(const lz_message_t *request, lz_value_t **reply, void *arg) {
    lz_test_sleep_ms((int)lz_value_get_int(lz_message_value(request)));
    *reply = lz_value_string("slow done");
    return 0;
}

static lz_server_t *start_server(lz_context_t *ctx, bool with_default) {
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(server != NULL);
    LZ_CHECK_INT(lz_server_on(server, "echo", echo, NULL), 0);
    LZ_CHECK_INT(lz_server_on(server, "fail", fail, NULL), 0);
    LZ_CHECK_INT(lz_server_on(server, "slow", slow, NULL), 0);
    if (with_default) LZ_CHECK_INT(lz_server_on_default(server, fallback, NULL), 0);
    LZ_CHECK_INT(lz_server_start(server), 0);
    return server;
}

// A plain REQ socket, like the Python LiberZMQ Client: one JSON frame out,
// one frame back.
static char *req_roundtrip(lz_context_t *ctx, const char *endpoint, const char *request) {
    void *req = zmq_socket(lz_context_zmq(ctx), ZMQ_REQ);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(req, endpoint);
    zmq_send(req, request, strlen(request), 0);
    char buf[1024];
    int n = zmq_recv(req, buf, sizeof buf - 1, 0);
    zmq_close(req);
    if (n < 0) return NULL;
    buf[n < (int)sizeof buf - 1 ? n : (int)sizeof buf - 1] = '\0';
    return strdup(buf);
}

LZ_TEST(dispatches_by_action) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = start_server(ctx, false);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_value_t *data = lz_value_object(), *reply = NULL;
    lz_value_object_set_int(data, "x", 42);
    LZ_CHECK_INT(lz_client_request(client, "echo", data, &reply, 3000), 0);
    LZ_CHECK(lz_value_equal(reply, data));
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    LZ_CHECK(server == NULL);
    lz_context_destroy(&ctx);
}

LZ_TEST(error_replies) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = start_server(ctx, false);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "nope", NULL, &reply, 3000), LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(reply, "status", ""), "error");
    LZ_CHECK_STR(lz_value_find_string(reply, "code", ""), "LZ_ENOTFOUND");
    LZ_CHECK_STR(lz_value_find_string(reply, "request_type", ""), "nope");
    lz_value_destroy(&reply);
    LZ_CHECK_INT(lz_client_request(client, "fail", NULL, &reply, 3000), LZ_EREMOTE);
    LZ_CHECK_STR(lz_value_find_string(reply, "message", ""), "no luck");
    LZ_CHECK_STR(lz_value_find_string(reply, "code", ""), "LZ_EVALIDATION");
    lz_value_destroy(&reply);
    lz_metrics_t m;
    lz_node_metrics(lz_server_node(server), &m);
    LZ_CHECK(m.errors >= 2);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(default_handler_and_ping) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = start_server(ctx, true);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "whatever", NULL, &reply, 3000), 0);
    LZ_CHECK_STR(lz_value_find_string(reply, "fallback", ""), "whatever");
    lz_value_destroy(&reply);
    LZ_CHECK_INT(lz_client_request(client, "ping", NULL, &reply, 3000), 0);
    LZ_CHECK_STR(lz_value_find_string(reply, "status", ""), "ok");
    LZ_CHECK(lz_value_get_bool(lz_value_get(reply, "pong")));
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(answers_req_sockets) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = start_server(ctx, false);
    const char *endpoint = lz_node_endpoint(lz_server_node(server));
    char *reply = req_roundtrip(ctx, endpoint,
                                "{\"type\":\"echo\",\"data\":[1,2],\"timestamp\":1.5,\"request_id\":\"r1\"}");
    LZ_CHECK_STR(reply, "[1,2]");
    free(reply);
    reply = req_roundtrip(ctx, endpoint, "{\"action\":\"echo\",\"data\":\"a\"}");
    LZ_CHECK_STR(reply, "\"a\"");
    free(reply);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// Garbage of every shape gets an error reply or is dropped, and the server
// keeps answering afterwards.
LZ_TEST(survives_garbage) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = start_server(ctx, false);
    const char *endpoint = lz_node_endpoint(lz_server_node(server));
    const char *bad[] = {"", "not json", "{\"data\":1}", "[1,2,3]", "{\"type\":17}", "\xff\xfe{", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *reply = req_roundtrip(ctx, endpoint, bad[i]);
        LZ_CHECK(reply != NULL);
        LZ_CHECK(reply && strstr(reply, "\"status\":\"error\"") != NULL);
        free(reply);
    }
    // Raw DEALER traffic with odd framing: many frames, empty messages.
    void *dealer = zmq_socket(lz_context_zmq(ctx), ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(dealer, endpoint);
    for (int i = 0; i < 12; i++) zmq_send(dealer, "x", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "x", 1, 0);
    zmq_send(dealer, "", 0, 0);
    zmq_close(dealer);
    lz_client_t *client = lz_client_new(ctx, endpoint);
    lz_value_t *data = lz_value_int(7), *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "echo", data, &reply, 3000), 0);
    LZ_CHECK_INT(lz_value_get_int(reply), 7);
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    lz_metrics_t m;
    lz_node_metrics(lz_server_node(server), &m);
    LZ_CHECK(m.inbound_dropped >= 6);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

typedef struct {
    lz_client_t *client;
    int rc;
    int64_t ms;
} slow_call_t;

static void *call_slow(void *p) {
    slow_call_t *call = p;
    lz_value_t *data = lz_value_int(400), *reply = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    call->rc = lz_client_request(call->client, "slow", data, &reply, 3000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    call->ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    return NULL;
}

// Four slow handlers run at once (handler_max_concurrency 4), and ping
// still answers at once while they run.
LZ_TEST(handlers_run_concurrently) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = start_server(ctx, false);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_client_set_retries(client, 0);
    pthread_t threads[4];
    slow_call_t calls[4];
    for (int i = 0; i < 4; i++) {
        calls[i] = (slow_call_t){client, -1, 0};
        pthread_create(&threads[i], NULL, call_slow, &calls[i]);
    }
    lz_test_sleep_ms(100);
    lz_value_t *reply = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LZ_CHECK_INT(lz_client_request(client, "ping", NULL, &reply, 3000), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LZ_CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 200);
    lz_value_destroy(&reply);
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        LZ_CHECK_INT(calls[i].rc, 0);
        LZ_CHECK(calls[i].ms < 1000); // in parallel: ~400 ms, not 1600
    }
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(lifecycle_errors) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(server, NULL, echo, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_server_start(server), 0);
    LZ_CHECK_INT(lz_server_start(server), LZ_ESTATE);
    LZ_CHECK_INT(lz_server_on(server, "late", echo, NULL), LZ_ESTATE);
    LZ_CHECK_INT(lz_server_stop(server), 0);
    LZ_CHECK_INT(lz_server_stop(server), 0);
    LZ_CHECK_INT(lz_server_start(server), 0); // again after a stop
    lz_server_destroy(&server);
    lz_server_destroy(&server); // NULL: no-op
    LZ_CHECK(lz_server_new(NULL, NULL) == NULL);
    LZ_CHECK(lz_server_new(ctx, "bogus://x") == NULL);
    lz_context_destroy(&ctx);
}

// With a concurrency of 1 the I/O thread runs handlers and waits in a
// blocking receive: every kind of reply still goes out, and a stop is seen
// within a slice of that wait, idle or not.
LZ_TEST(inline_handlers) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.handler_max_concurrency=1");
    lz_server_t *server = start_server(ctx, false);
    const char *endpoint = lz_node_endpoint(lz_server_node(server));
    lz_client_t *client = lz_client_new(ctx, endpoint);
    for (int round = 0; round < 2; round++) { // again after a stop and a start
        lz_value_t *data = lz_value_int(round), *reply = NULL;
        LZ_CHECK_INT(lz_client_request(client, "echo", data, &reply, 3000), 0);
        LZ_CHECK_INT(lz_value_get_int(reply), round);
        lz_value_destroy(&reply);
        lz_value_destroy(&data);
        LZ_CHECK_INT(lz_client_request(client, "ping", NULL, &reply, 3000), 0);
        LZ_CHECK(lz_value_get_bool(lz_value_get(reply, "pong")));
        lz_value_destroy(&reply);
        LZ_CHECK_INT(lz_client_request(client, "fail", NULL, &reply, 3000), LZ_EREMOTE);
        lz_value_destroy(&reply);
        char *text = req_roundtrip(ctx, endpoint, "not json");
        LZ_CHECK(text && strstr(text, "\"status\":\"error\"") != NULL);
        free(text);
        lz_test_sleep_ms(30); // the I/O thread is waiting again
        int64_t t0 = lz_test_now_ms();
        LZ_CHECK_INT(lz_server_stop(server), 0);
        LZ_CHECK(lz_test_now_ms() - t0 < 300);
        LZ_CHECK_INT(lz_server_start(server), 0);
    }
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(dispatches_by_action), LZ_CASE(error_replies), LZ_CASE(default_handler_and_ping),
             LZ_CASE(answers_req_sockets), LZ_CASE(survives_garbage), LZ_CASE(handlers_run_concurrently),
             LZ_CASE(lifecycle_errors), LZ_CASE(inline_handlers))
