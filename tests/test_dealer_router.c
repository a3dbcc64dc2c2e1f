/* Dealer/router: many async requests in flight, identities seen by the
 * router, replies by identity, LZ_EUNREACHABLE for an unknown identity,
 * the Python LiberZMQ's 3-frame dealer answered by our server, traced
 * requests that outlive their router and context, and a destroy from the
 * dealer's own callback. */
#include <pthread.h>
#include <stdatomic.h>
#include <zmq.h>

#include "lz_test.h"
#include "liberzmq/dealer.h"

static lz_context_t *new_context(void) { return LZ_TEST_CONTEXT("zmq.linger=0"); }

typedef struct {
    lz_router_t *router;
    int count;
    char identity[64];
} serve_t;

// Answer count requests with value * 2 (or the identity for "who").
static void *router_serve(void *p) {
    serve_t *s = p;
    for (int i = 0; i < s->count; i++) {
        lz_router_request_t *request = lz_router_recv(s->router, 5000);
        if (!request) break;
        size_t size;
        const void *identity = lz_router_request_identity(request, &size);
        snprintf(s->identity, sizeof s->identity, "%.*s", (int)size, (const char *)identity);
        lz_value_t *reply = lz_value_int(lz_value_get_int(lz_router_request_value(request)) * 2);
        lz_router_reply(s->router, request, reply);
        lz_value_destroy(&reply);
        lz_router_request_destroy(&request);
    }
    return NULL;
}

typedef struct {
    atomic_int done, ok;
} tally_t;

static void check_double(int status, const lz_value_t *reply, void *arg) {
    tally_t *t = arg;
    if (status == 0 && lz_value_get_int(reply) % 2 == 0) atomic_fetch_add(&t->ok, 1);
    atomic_fetch_add(&t->done, 1);
}

LZ_TEST(many_async_requests) {
    lz_context_t *ctx = new_context();
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(router != NULL);
    serve_t s = {router, 1000, ""};
    pthread_t thread;
    pthread_create(&thread, NULL, router_serve, &s);
    lz_dealer_t *dealer = lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), "dealer-7");
    LZ_CHECK(dealer != NULL);
    tally_t tally = {0};
    char id[37] = "";
    for (int i = 0; i < 999; i++) {
        lz_value_t *v = lz_value_int(i);
        LZ_CHECK_INT(lz_dealer_send(dealer, v, 5000, check_double, &tally, id), 0);
        lz_value_destroy(&v);
    }
    LZ_CHECK_INT(strlen(id), 36);
    lz_value_t *v = lz_value_int(21), *reply = NULL;
    LZ_CHECK_INT(lz_dealer_request(dealer, v, &reply, 5000), 0);
    LZ_CHECK_INT(lz_value_get_int(reply), 42);
    lz_value_destroy(&reply);
    lz_value_destroy(&v);
    for (int waited = 0; atomic_load(&tally.done) < 999 && waited < 5000; waited += 5) lz_test_sleep_ms(5);
    LZ_CHECK_INT(atomic_load(&tally.ok), 999);
    pthread_join(thread, NULL);
    LZ_CHECK_STR(s.identity, "dealer-7");
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    LZ_CHECK(router == NULL && dealer == NULL);
    lz_context_destroy(&ctx);
}

// is_default_identity: "dealer-" and 16 lower-case hex digits.
static bool is_default_identity(const char *id) {
    return strncmp(id, "dealer-", 7) == 0 && strlen(id) == 23 && strspn(id + 7, "0123456789abcdef") == 16;
}

// A dealer given no identity gets a text one, as the Python LiberZMQ Dealer
// does: its Router decodes the routing id as UTF-8 and answered nothing to
// libzmq's own (0x00 and four binary bytes). Two such dealers differ.
LZ_TEST(a_dealer_without_identity_gets_a_text_one) {
    lz_context_t *ctx = new_context();
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(router != NULL);
    char seen[2][64];
    for (int i = 0; i < 2; i++) {
        serve_t s = {router, 1, ""};
        pthread_t thread;
        pthread_create(&thread, NULL, router_serve, &s);
        lz_dealer_t *dealer = lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), NULL);
        LZ_CHECK(dealer != NULL);
        lz_value_t *v = lz_value_int(1), *reply = NULL;
        LZ_CHECK_INT(lz_dealer_request(dealer, v, &reply, 5000), 0);
        lz_value_destroy(&reply);
        lz_value_destroy(&v);
        pthread_join(thread, NULL);
        LZ_CHECK(is_default_identity(s.identity));
        snprintf(seen[i], sizeof seen[i], "%s", s.identity);
        lz_dealer_destroy(&dealer);
    }
    LZ_CHECK(strcmp(seen[0], seen[1]) != 0);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

LZ_TEST(unknown_identity_is_an_error) {
    lz_context_t *ctx = new_context();
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    lz_value_t *v = lz_value_string("hello");
    LZ_CHECK_INT(lz_router_send(router, "nobody", 6, "r1", v), LZ_EUNREACHABLE);
    LZ_CHECK_INT(lz_router_send(router, "", 0, "r1", v), LZ_EINVAL);
    // A known identity gets an unsolicited message: [request_id, payload].
    lz_dealer_t *dealer = lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), "known");
    lz_value_t *reply = NULL;
    lz_value_t *ping = lz_value_int(1);
    serve_t s = {router, 1, ""};
    pthread_t thread;
    pthread_create(&thread, NULL, router_serve, &s);
    LZ_CHECK_INT(lz_dealer_request(dealer, ping, &reply, 3000), 0); // the router now knows "known"
    pthread_join(thread, NULL);
    LZ_CHECK_INT(lz_router_send(router, "known", 5, "push-1", v), 0);
    lz_value_destroy(&reply);
    lz_value_destroy(&ping);
    LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_dealer_node(dealer)).late_replies == 1, 5000);
    LZ_CHECK_INT(lz_test_metrics(lz_dealer_node(dealer)).late_replies, 1); // not a request of ours: counted
    lz_value_destroy(&v);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

LZ_TEST(dealer_timeout_and_garbage) {
    lz_context_t *ctx = new_context();
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    lz_dealer_t *dealer = lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), NULL);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_dealer_request(dealer, NULL, &reply, 100), LZ_ETIMEOUT);
    LZ_CHECK(reply == NULL);
    // The router skips malformed messages and still returns the good one.
    void *raw = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_DEALER, -1, lz_node_endpoint(lz_router_node(router)));
    zmq_send(raw, "only-one-frame", 14, 0);
    zmq_send(raw, "id", 2, ZMQ_SNDMORE);
    zmq_send(raw, "{not json", 9, 0);
    zmq_send(raw, "id2", 3, ZMQ_SNDMORE);
    zmq_send(raw, "5", 1, 0);
    // First the dealer's timed-out request, still queued: [identity, id, null].
    lz_router_request_t *request = lz_router_recv(router, 500);
    LZ_CHECK_INT(strlen(lz_router_request_id(request)), 36);
    LZ_CHECK_INT(lz_value_type(lz_router_request_value(request)), LZ_VALUE_NULL);
    lz_router_request_destroy(&request);
    request = lz_router_recv(router, 500);
    LZ_CHECK(request != NULL);
    LZ_CHECK_STR(lz_router_request_id(request), "id2");
    LZ_CHECK_INT(lz_value_get_int(lz_router_request_value(request)), 5);
    lz_router_request_destroy(&request);
    LZ_CHECK(lz_router_recv(router, 50) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
    lz_metrics_t m;
    lz_node_metrics(lz_router_node(router), &m);
    LZ_CHECK_INT(m.inbound_dropped, 2);
    zmq_close(raw);
    LZ_CHECK(lz_dealer_new(ctx, NULL, "") == NULL);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

// Python LiberZMQ Dealer framing [request_id, payload] (no delimiter)
// against our action server: the reply comes back [request_id, reply].
LZ_TEST(server_answers_three_frame_dealers) {
    lz_context_t *ctx = new_context();
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_server_start(server);
    void *raw = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_DEALER, 3000, lz_node_endpoint(lz_server_node(server)));
    const char *ping = "{\"type\":\"ping\",\"data\":null}";
    zmq_send(raw, "req-1", 5, ZMQ_SNDMORE);
    zmq_send(raw, ping, strlen(ping), 0);
    char id[16] = "", body[256] = "";
    int n = zmq_recv(raw, id, sizeof id - 1, 0);
    int more = 0;
    size_t size = sizeof more;
    zmq_getsockopt(raw, ZMQ_RCVMORE, &more, &size);
    LZ_CHECK_INT(n, 5);
    LZ_CHECK(more);
    n = zmq_recv(raw, body, sizeof body - 1, 0);
    LZ_CHECK(n > 0 && strstr(body, "\"pong\":true") != NULL);
    zmq_close(raw);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// The SERVER spans a context reported: how many, and their statuses.
typedef struct {
    atomic_int count;
    int status[4];
} server_spans_t;

static void count_server_span(const lz_span_t *span, void *arg) {
    server_spans_t *seen = arg;
    if (lz_span_kind(span) != LZ_SPAN_SERVER) return;
    int n = atomic_fetch_add(&seen->count, 1);
    if (n < 4) seen->status[n] = lz_span_status(span);
}

// A request is its caller's: destroying it after its router and context
// is allowed, so the router's destroy ends the spans still open, which
// report to the context, while it lives.
LZ_TEST(traced_requests_outlive_their_router_and_context) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true");
    server_spans_t seen = {0};
    LZ_CHECK_INT(lz_context_on_span(ctx, count_server_span, &seen), LZ_OK);
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    lz_dealer_t *dealer = lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), NULL);
    lz_router_request_t *requests[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        lz_value_t *v = lz_value_int(i);
        LZ_CHECK_INT(lz_dealer_send(dealer, v, 5000, NULL, NULL, NULL), LZ_OK);
        lz_value_destroy(&v);
        requests[i] = lz_router_recv(router, 5000);
        LZ_CHECK(requests[i] != NULL);
    }
    LZ_CHECK_INT(lz_router_reply(router, requests[0], NULL), LZ_OK);
    LZ_CHECK_INT(atomic_load(&seen.count), 1);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router); // requests[1] can no longer be answered
    LZ_CHECK_INT(atomic_load(&seen.count), 2);
    LZ_CHECK_INT(seen.status[0], LZ_OK);
    LZ_CHECK_INT(seen.status[1], LZ_ECLOSED);
    lz_context_destroy(&ctx); // no node left: freed here
    LZ_CHECK(requests[1] && lz_value_get_int(lz_router_request_value(requests[1])) == 1);
    LZ_CHECK(requests[1] && lz_router_request_traceparent(requests[1]) != NULL);
    for (int i = 0; i < 2; i++) lz_router_request_destroy(&requests[i]);
    LZ_CHECK_INT(atomic_load(&seen.count), 2);
}

// A dealer destroyed from its own completion callback: the test's slot.
typedef struct {
    lz_dealer_t *dealer;
    atomic_bool called;
    bool refused; // the destroy left the dealer, with LZ_ESTATE
} self_destroy_t;

static void destroy_own_dealer(int status, const lz_value_t *reply, void *arg) {
    self_destroy_t *sd = arg;
    lz_dealer_destroy(&sd->dealer);
    sd->refused = sd->dealer && lz_last_error_code() == LZ_ESTATE && strstr(lz_last_error(), "lz_dealer_destroy");
    atomic_store(&sd->called, true);
}

// A destroy from the dealer's own callback would join the thread it runs
// on and free what the callback's caller still uses: it is refused and
// the dealer keeps working.
LZ_TEST(dealer_destroy_from_own_callback_is_refused) {
    lz_context_t *ctx = new_context();
    lz_router_t *router = lz_router_new(ctx, "tcp://127.0.0.1:*");
    self_destroy_t sd = {.dealer = lz_dealer_new(ctx, lz_node_endpoint(lz_router_node(router)), NULL)};
    lz_value_t *v = lz_value_int(1);
    LZ_CHECK_INT(lz_dealer_send(sd.dealer, v, 3000, destroy_own_dealer, &sd, NULL), LZ_OK);
    lz_router_request_t *request = lz_router_recv(router, 3000);
    LZ_CHECK(request != NULL);
    LZ_CHECK_INT(lz_router_reply(router, request, v), LZ_OK);
    lz_router_request_destroy(&request);
    LZ_TEST_WAIT_UNTIL(atomic_load(&sd.called), 3000);
    LZ_CHECK(sd.refused);
    serve_t s = {router, 1, ""};
    pthread_t thread;
    pthread_create(&thread, NULL, router_serve, &s);
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_dealer_request(sd.dealer, v, &reply, 3000), LZ_OK);
    LZ_CHECK_INT(lz_value_get_int(reply), 2);
    pthread_join(thread, NULL);
    lz_value_destroy(&reply);
    lz_value_destroy(&v);
    lz_dealer_destroy(&sd.dealer);
    LZ_CHECK(sd.dealer == NULL);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(many_async_requests), LZ_CASE(a_dealer_without_identity_gets_a_text_one),
             LZ_CASE(unknown_identity_is_an_error),
             LZ_CASE(dealer_timeout_and_garbage), LZ_CASE(server_answers_three_frame_dealers),
             LZ_CASE(traced_requests_outlive_their_router_and_context),
             LZ_CASE(dealer_destroy_from_own_callback_is_refused))
