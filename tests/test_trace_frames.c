/* Trace context in extension frames (src/core/extension.c, docs/protocol.md
 * sections 2 and 5): a publisher's PRODUCER span continued by subscribers, a
 * dealer's CLIENT span by the router's SERVER span, exactly two frames with
 * tracing off or tracing.extension_frames off, plain libzmq publishers'
 * traceparent frames (well formed, malformed, unknown), and the Python
 * LiberZMQ Subscriber and Router reading past the extra frame. */
#include <pthread.h>
#include <zmq.h>

#include "lz_spans.h"
#include "lz_test.h"
#include "liberzmq/dealer.h"

#define OUTSIDE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// last_span copies the last span of kind named name into *out (false: none).
static bool last_span(lz_span_kind_t kind, const char *name, seen_span_t *out) {
    bool found = false;
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < seen_count; i++)
        if (seen[i].kind == kind && strcmp(seen[i].name, name) == 0) *out = seen[i], found = true;
    pthread_mutex_unlock(&seen_lock);
    return found;
}

// span_by_id copies the span whose id is span_id into *out (false: none).
static bool span_by_id(const char *span_id, seen_span_t *out) {
    bool found = false;
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < seen_count && !found; i++)
        if (strcmp(seen[i].span_id, span_id) == 0) *out = seen[i], found = true;
    pthread_mutex_unlock(&seen_lock);
    return found;
}

static int count_kind(lz_span_kind_t kind) {
    int n = 0;
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < seen_count; i++) n += seen[i].kind == kind;
    pthread_mutex_unlock(&seen_lock);
    return n;
}

// traced: a context with tracing on (and extra, a setting or NULL) whose
// spans are collected afresh.
static lz_context_t *traced(const char *extra) {
    forget_spans();
    lz_context_t *ctx = extra ? LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true", extra)
                              : LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true");
    LZ_CHECK_INT(lz_context_on_span(ctx, on_span, NULL), LZ_OK);
    return ctx;
}

/* ---- pub/sub: a trace across a publish ------------------------------------ */

typedef struct relay {
    lz_pub_t *pub;
    atomic_int news, relayed;
    char carried[64]; // lz_message_envelope's traceparent, in the "news" handler
} relay_t;

// on_news, run inside the news message's CONSUMER span, publishes "relay"
// once: that publish is the span's child.
static int on_news(const lz_message_t *msg, void *arg) {
    relay_t *r = arg;
    if (atomic_fetch_add(&r->news, 1) > 0) return 0;
    lz_value_t *envelope = (lz_value_t *)lz_message_envelope(msg);
    snprintf(r->carried, sizeof r->carried, "%s", lz_value_find_string(envelope, "traceparent", ""));
    // Read-only, as every received value: a setter fails, a destroy does nothing.
    LZ_CHECK_INT(lz_value_object_set_string(envelope, "traceparent", "changed"), LZ_EINVAL);
    lz_value_destroy(&envelope);
    LZ_CHECK_STR(lz_value_find_string(lz_message_envelope(msg), "traceparent", ""), r->carried);
    lz_value_t *v = lz_value_int(2);
    LZ_CHECK_INT(lz_pub_publish(r->pub, "relay", v), LZ_OK);
    lz_value_destroy(&v);
    return 0;
}

static int on_relay(const lz_message_t *msg, void *arg) {
    atomic_fetch_add(&((relay_t *)arg)->relayed, 1);
    return 0;
}

// An adopted parent, its publish, the subscriber's handler span, the
// publish the handler makes and its handler span: one trace, each span the
// child of the one before.
LZ_TEST(a_publish_and_its_handler_share_a_trace) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    relay_t r = {.pub = lz_pub_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint))};
    lz_sub_t *sub = lz_sub_new(ctx, endpoint);
    LZ_CHECK_INT(lz_sub_on(sub, "news", on_news, &r), LZ_OK);
    LZ_CHECK_INT(lz_sub_on(sub, "relay", on_relay, &r), LZ_OK);
    lz_value_t *v = lz_value_int(1);
    LZ_CHECK_INT(lz_trace_adopt(OUTSIDE), LZ_OK);
    for (int i = 0; i < 500 && !atomic_load(&r.news); i++) { // the subscription takes a moment to arrive
        LZ_CHECK_INT(lz_pub_publish(r.pub, "news", v), LZ_OK);
        lz_sub_dispatch(sub, 10);
    }
    LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK);
    for (int i = 0; i < 500 && !atomic_load(&r.relayed); i++) lz_sub_dispatch(sub, 10);
    LZ_CHECK(atomic_load(&r.relayed) == 1);

    seen_span_t news, published, relay_sent, relay_handled;
    LZ_CHECK(last_span(LZ_SPAN_CONSUMER, "news", &news));
    LZ_CHECK(span_by_id(news.parent_id, &published));
    LZ_CHECK(published.kind == LZ_SPAN_PRODUCER && strcmp(published.name, "news") == 0);
    LZ_CHECK_STR(published.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    LZ_CHECK_STR(published.parent_id, "00f067aa0ba902b7");
    LZ_CHECK_STR(r.carried, published.traceparent); // what lz_message_envelope gives, as for a task
    LZ_CHECK(last_span(LZ_SPAN_PRODUCER, "relay", &relay_sent));
    check_child(&relay_sent, &news);
    LZ_CHECK(last_span(LZ_SPAN_CONSUMER, "relay", &relay_handled));
    check_child(&relay_handled, &relay_sent);
    lz_value_destroy(&v);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&r.pub);
    lz_context_destroy(&ctx);
}

// lz_sub_recv's message carries the publisher's traceparent where a pulled
// task carries its own: lz_message_envelope.
LZ_TEST(received_messages_carry_the_traceparent) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_sub_t *sub = lz_sub_new(ctx, endpoint);
    LZ_CHECK_INT(lz_sub_subscribe(sub, "bytes"), LZ_OK);
    lz_message_t *msg = NULL;
    for (int i = 0; i < 500 && !msg; i++) {
        LZ_CHECK_INT(lz_pub_publish_bytes(pub, "bytes", "1", 1), LZ_OK);
        msg = lz_sub_recv(sub, 10);
    }
    LZ_CHECK(msg != NULL);
    // The publish that arrived (an earlier one may have gone before the
    // subscription) is a PRODUCER span of the context's.
    const char *carried = lz_value_find_string(lz_message_envelope(msg), "traceparent", "");
    LZ_CHECK_INT((int)strlen(carried), 55);
    char span_id[17] = "";
    if (strlen(carried) == 55) memcpy(span_id, carried + 36, 16);
    seen_span_t sent;
    LZ_CHECK(span_by_id(span_id, &sent) && sent.kind == LZ_SPAN_PRODUCER);
    LZ_CHECK_STR(sent.traceparent, carried);
    lz_message_destroy(&msg);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

/* ---- what is on the wire ----------------------------------------------- */

// raw_frames reads one message from a plain libzmq socket: its frame count,
// the last frame's text in last (NUL-terminated). -1 on a timeout.
static int raw_frames(void *socket, char *last, size_t size) {
    int count = 0, more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, socket, 0) < 0) {
            zmq_msg_close(&part);
            return -1;
        }
        size_t n = zmq_msg_size(&part) < size - 1 ? zmq_msg_size(&part) : size - 1;
        memcpy(last, zmq_msg_data(&part), n);
        last[n] = '\0';
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        count++;
    }
    return count;
}

static void *raw_socket(lz_context_t *ctx, int type, const char *endpoint, bool bind) {
    void *s = lz_test_plain_socket(lz_context_zmq(ctx), type, 50, NULL);
    if (type == ZMQ_SUB) zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    LZ_CHECK_INT(bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint), 0);
    return s;
}

// published_frames publishes to a raw SUB until one arrives: its frame
// count, and its last frame in last.
static int published_frames(lz_context_t *ctx, char *last, size_t size) {
    char endpoint[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    void *sub = raw_socket(ctx, ZMQ_SUB, endpoint, false);
    int count = -1;
    for (int i = 0; i < 200 && count < 0; i++) {
        LZ_CHECK_INT(lz_pub_publish_bytes(pub, "wire", "16 bytes payload", 16), LZ_OK);
        count = raw_frames(sub, last, size);
    }
    zmq_close(sub);
    lz_pub_destroy(&pub);
    return count;
}

// dealer_frames sends one dealer request to a raw ROUTER: the frame count
// the router saw (identity included), and the last frame in last.
static int dealer_frames(lz_context_t *ctx, char *last, size_t size) {
    char endpoint[128];
    void *router = raw_socket(ctx, ZMQ_ROUTER, lz_test_inproc_endpoint(endpoint, sizeof endpoint), true);
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, NULL);
    lz_value_t *v = lz_value_int(5);
    LZ_CHECK_INT(lz_dealer_send(dealer, v, 100, NULL, NULL, NULL), LZ_OK);
    int count = -1;
    for (int i = 0; i < 100 && count < 0; i++) count = raw_frames(router, last, size);
    lz_value_destroy(&v);
    lz_dealer_destroy(&dealer);
    zmq_close(router);
    return count;
}

// Tracing off: [topic, payload] and [request_id, payload] exactly, no span.
// Tracing on: one traceparent frame more, the sender's span's. A reload to
// tracing.extension_frames=false: two frames again while spans still record.
LZ_TEST(extension_frames_only_when_traced_and_wanted) {
    char last[128], want[128];
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_on_span(ctx, on_span, NULL), LZ_OK);
    forget_spans();
    LZ_CHECK_INT(published_frames(ctx, last, sizeof last), 2);
    LZ_CHECK_STR(last, "16 bytes payload");
    LZ_CHECK_INT(dealer_frames(ctx, last, sizeof last), 3);
    LZ_CHECK_STR(last, "5");
    LZ_CHECK_INT(span_count(), 0);
    lz_context_destroy(&ctx);

    ctx = traced(NULL);
    seen_span_t span;
    LZ_CHECK_INT(published_frames(ctx, last, sizeof last), 3);
    LZ_CHECK(last_span(LZ_SPAN_PRODUCER, "wire", &span));
    snprintf(want, sizeof want, "traceparent=%s", span.traceparent);
    LZ_CHECK_STR(last, want);
    LZ_CHECK_INT(dealer_frames(ctx, last, sizeof last), 4);
    LZ_TEST_WAIT_UNTIL(count_kind(LZ_SPAN_CLIENT) == 1, 2000); // the request times out
    LZ_CHECK(last_span(LZ_SPAN_CLIENT, "", &span));
    snprintf(want, sizeof want, "traceparent=%s", span.traceparent);
    LZ_CHECK_STR(last, want);

    lz_config_t *config = LZ_TEST_CONFIG("zmq.linger=0", "tracing.enabled=true", "tracing.extension_frames=false");
    LZ_CHECK_INT(lz_context_reload(ctx, config), LZ_OK);
    lz_config_destroy(&config);
    forget_spans();
    LZ_CHECK_INT(published_frames(ctx, last, sizeof last), 2);
    LZ_CHECK_STR(last, "16 bytes payload");
    LZ_CHECK_INT(dealer_frames(ctx, last, sizeof last), 3);
    LZ_TEST_WAIT_UNTIL(count_kind(LZ_SPAN_CLIENT) == 1, 2000);
    LZ_CHECK(count_kind(LZ_SPAN_PRODUCER) >= 1 && count_kind(LZ_SPAN_CLIENT) == 1);
    lz_context_destroy(&ctx);

    ctx = traced("tracing.extension_frames=false"); // set from the start, too
    LZ_CHECK_INT(published_frames(ctx, last, sizeof last), 2);
    LZ_CHECK(count_kind(LZ_SPAN_PRODUCER) >= 1);
    lz_context_destroy(&ctx);
}

/* ---- a plain libzmq publisher's frames ------------------------------------ */

typedef struct noted {
    atomic_int count;
    char topic[32], carried[64]; // the last message's
} noted_t;

static int note(const lz_message_t *msg, void *arg) {
    noted_t *n = arg;
    snprintf(n->topic, sizeof n->topic, "%s", lz_message_topic(msg));
    snprintf(n->carried, sizeof n->carried, "%s",
             lz_value_find_string(lz_message_envelope(msg), "traceparent", "(none)"));
    atomic_fetch_add(&n->count, 1);
    return 0;
}

// send_raw sends topic, payload "1" and the extension frames (NULL-ended).
static void send_raw(void *pub, const char *topic, const char *const *extensions) {
    zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE);
    zmq_send(pub, "1", 1, extensions[0] ? ZMQ_SNDMORE : 0);
    for (size_t i = 0; extensions[i]; i++)
        zmq_send(pub, extensions[i], strlen(extensions[i]), extensions[i + 1] ? ZMQ_SNDMORE : 0);
}

// handled sends one message from the plain publisher and returns the
// subscriber's CONSUMER span for it.
static seen_span_t handled(void *pub, lz_sub_t *sub, noted_t *n, const char *topic, const char *const *extensions) {
    int before = atomic_load(&n->count);
    seen_span_t span;
    memset(&span, 0, sizeof span);
    send_raw(pub, topic, extensions);
    for (int i = 0; i < 200 && atomic_load(&n->count) == before; i++) lz_sub_dispatch(sub, 10);
    LZ_CHECK_STR(n->topic, topic);
    LZ_CHECK(last_span(LZ_SPAN_CONSUMER, topic, &span));
    return span;
}

LZ_TEST(plain_publishers_traceparent_frames) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    void *pub = raw_socket(ctx, ZMQ_PUB, lz_test_inproc_endpoint(endpoint, sizeof endpoint), true);
    lz_sub_t *sub = lz_sub_new(ctx, endpoint);
    noted_t n = {0};
    LZ_CHECK_INT(lz_sub_on_default(sub, note, &n), LZ_OK);
    LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
    for (int i = 0; i < 500 && !atomic_load(&n.count); i++) { // until the subscription is in
        send_raw(pub, "hello", (const char *const[]){NULL});
        lz_sub_dispatch(sub, 10);
    }
    LZ_CHECK(atomic_load(&n.count) > 0);

    seen_span_t s = handled(pub, sub, &n, "valid", (const char *const[]){"traceparent=" OUTSIDE, NULL});
    LZ_CHECK_STR(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    LZ_CHECK_STR(s.parent_id, "00f067aa0ba902b7");
    LZ_CHECK_STR(n.carried, OUTSIDE);

    // Malformed (upper case, as trace.c's validator refuses in envelopes):
    // ignored, a trace of its own.
    s = handled(pub, sub, &n, "malformed",
                (const char *const[]){"traceparent=00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", NULL});
    LZ_CHECK_STR(s.parent_id, "");
    LZ_CHECK(strcmp(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") != 0);
    LZ_CHECK_STR(n.carried, "(none)");
    s = handled(pub, sub, &n, "short", (const char *const[]){"traceparent=00-4bf9", NULL});
    LZ_CHECK_STR(s.parent_id, "");

    // Unknown and unparsable frames are skipped; a traceparent after them counts.
    s = handled(pub, sub, &n, "unknown", (const char *const[]){"content-type=application/json", "garbage", NULL});
    LZ_CHECK_STR(s.parent_id, "");
    LZ_CHECK_STR(n.carried, "(none)");
    s = handled(pub, sub, &n, "after",
                (const char *const[]){"content-type=application/json", "traceparent=" OUTSIDE, NULL});
    LZ_CHECK_STR(s.parent_id, "00f067aa0ba902b7");
    LZ_CHECK_STR(n.carried, OUTSIDE);
    zmq_close(pub);
    lz_sub_destroy(&sub);
    lz_context_destroy(&ctx);
}

/* ---- dealer/router ------------------------------------------------------- */

// The dealer's CLIENT span continues as the router's SERVER span, which the
// reply ends; a request destroyed unanswered ends its span too.
LZ_TEST(a_dealers_request_continues_at_the_router) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    lz_router_t *router = lz_router_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, "traced-dealer");
    lz_value_t *v = lz_value_int(21);
    lz_test_outcome_t outcome = {0};
    char id[37] = "";
    LZ_CHECK_INT(lz_trace_adopt(OUTSIDE), LZ_OK);
    LZ_CHECK_INT(lz_dealer_send(dealer, v, 5000, lz_test_on_reply, &outcome, id), LZ_OK);
    LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK);
    lz_router_request_t *request = lz_router_recv(router, 5000);
    LZ_CHECK(request != NULL);
    LZ_CHECK_INT(count_kind(LZ_SPAN_SERVER), 0); // open until the reply
    LZ_CHECK_INT(lz_router_reply(router, request, v), LZ_OK);
    LZ_CHECK_INT(lz_router_reply(router, request, v), LZ_OK); // a second reply ends nothing more
    LZ_CHECK_INT(count_kind(LZ_SPAN_SERVER), 1);
    lz_router_request_destroy(&request);
    LZ_TEST_WAIT_UNTIL(atomic_load(&outcome.done), 5000);
    LZ_CHECK_INT(outcome.status, LZ_OK);
    lz_value_destroy(&outcome.reply);
    LZ_TEST_WAIT_UNTIL(count_kind(LZ_SPAN_CLIENT) == 1, 2000);
    seen_span_t client, server;
    LZ_CHECK(last_span(LZ_SPAN_CLIENT, "", &client));
    LZ_CHECK(last_span(LZ_SPAN_SERVER, "", &server));
    LZ_CHECK_STR(client.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    check_child(&server, &client);
    LZ_CHECK_STR(server.id, id);
    LZ_CHECK_INT(count_kind(LZ_SPAN_SERVER), 1);

    LZ_CHECK_INT(lz_dealer_send(dealer, v, 200, NULL, NULL, NULL), LZ_OK); // never answered
    request = lz_router_recv(router, 5000);
    LZ_CHECK(request != NULL);
    lz_router_request_destroy(&request);
    LZ_CHECK_INT(count_kind(LZ_SPAN_SERVER), 2);
    lz_value_destroy(&v);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

// A router has no handler: the request's traceparent, adopted, makes
// what the thread sends while answering a child of the request's span.
LZ_TEST(a_router_request_traceparent_carries_the_trace_on) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128], next[128];
    lz_router_t *router = lz_router_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, "traced-dealer");
    lz_router_t *downstream = lz_router_new(ctx, lz_test_inproc_endpoint(next, sizeof next));
    lz_dealer_t *onward = lz_dealer_new(ctx, next, "onward-dealer");
    lz_value_t *v = lz_value_int(21);
    LZ_CHECK_INT(lz_trace_adopt(OUTSIDE), LZ_OK);
    LZ_CHECK_INT(lz_dealer_send(dealer, v, 5000, NULL, NULL, NULL), LZ_OK);
    LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK);
    lz_router_request_t *request = lz_router_recv(router, 5000);
    LZ_CHECK(request != NULL);
    const char *traceparent = lz_router_request_traceparent(request);
    LZ_CHECK(traceparent && strncmp(traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    LZ_CHECK_INT(lz_trace_adopt(traceparent), LZ_OK);
    LZ_CHECK_INT(lz_dealer_send(onward, v, 5000, NULL, NULL, NULL), LZ_OK); // while answering
    LZ_CHECK_INT(lz_trace_adopt(NULL), LZ_OK);
    lz_router_request_t *forwarded = lz_router_recv(downstream, 5000);
    LZ_CHECK(forwarded != NULL);
    LZ_CHECK_INT(lz_router_reply(router, request, v), LZ_OK);
    LZ_CHECK_STR(lz_router_request_traceparent(request), traceparent); // the same after the reply
    seen_span_t server;
    LZ_CHECK(last_span(LZ_SPAN_SERVER, "", &server));
    LZ_CHECK_STR(server.traceparent, traceparent);
    lz_router_request_destroy(&forwarded); // ends the downstream SERVER span
    lz_router_request_destroy(&request);
    lz_value_destroy(&v);
    lz_dealer_destroy(&onward); // ends its unanswered CLIENT span
    seen_span_t onward_server, onward_client;
    LZ_CHECK(last_span(LZ_SPAN_SERVER, "", &onward_server));
    LZ_CHECK(span_by_id(onward_server.parent_id, &onward_client));
    LZ_CHECK_INT(onward_client.kind, LZ_SPAN_CLIENT);
    LZ_CHECK_STR(onward_client.parent_id, server.span_id); // the request's span, adopted
    LZ_CHECK_STR(onward_server.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    lz_router_destroy(&downstream);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);

    ctx = LZ_TEST_CONTEXT("zmq.linger=0"); // tracing off: none
    router = lz_router_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    dealer = lz_dealer_new(ctx, endpoint, "plain-dealer");
    v = lz_value_int(1);
    LZ_CHECK_INT(lz_dealer_send(dealer, v, 5000, NULL, NULL, NULL), LZ_OK);
    request = lz_router_recv(router, 5000);
    LZ_CHECK(request != NULL && lz_router_request_traceparent(request) == NULL);
    LZ_CHECK(lz_router_request_traceparent(NULL) == NULL);
    lz_router_request_destroy(&request);
    lz_value_destroy(&v);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

typedef struct replier {
    lz_router_t *router;
    lz_router_request_t *request;
} replier_t;

static void *reply_once(void *arg) {
    replier_t *r = arg;
    lz_value_t *v = lz_value_int(1);
    LZ_CHECK_INT(lz_router_reply(r->router, r->request, v), LZ_OK);
    lz_value_destroy(&v);
    return NULL;
}

// lz_router_reply is thread safe: replies racing on one request end its
// span once.
LZ_TEST(racing_replies_end_the_span_once) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    lz_router_t *router = lz_router_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, NULL);
    lz_value_t *v = lz_value_int(3);
    for (int round = 1; round <= 20; round++) {
        LZ_CHECK_INT(lz_dealer_send(dealer, v, 1000, NULL, NULL, NULL), LZ_OK);
        replier_t r = {router, lz_router_recv(router, 5000)};
        LZ_CHECK(r.request != NULL);
        if (!r.request) break;
        pthread_t threads[2];
        for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, reply_once, &r);
        for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
        lz_router_request_destroy(&r.request);
        LZ_CHECK_INT(count_kind(LZ_SPAN_SERVER), round);
    }
    lz_value_destroy(&v);
    lz_dealer_destroy(&dealer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

/* ---- the Python LiberZMQ's peers ---------------------------------------- */

static void publish_seq(void *pub, int seq) {
    lz_value_t *v = lz_value_object();
    lz_value_object_set_int(v, "seq", seq);
    LZ_CHECK_INT(lz_pub_publish(pub, "trace.c", v), LZ_OK);
    lz_value_destroy(&v);
}

LZ_TEST(python_subscriber_reads_past_the_frame) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_ipc_endpoint(endpoint, sizeof endpoint));
    pid_t pid = lz_test_spawn_python("trace_frames_peer.py", "subscriber", endpoint);
    LZ_CHECK(pid > 0);
    LZ_CHECK_INT(lz_test_feed(pid, 1500, publish_seq, pub), 0); // until it has its three (slow joiner), 15 s at most
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST(python_router_reads_past_the_frame) {
    lz_context_t *ctx = traced(NULL);
    char endpoint[128];
    lz_test_ipc_endpoint(endpoint, sizeof endpoint);
    pid_t pid = lz_test_spawn_python("trace_frames_peer.py", "router", endpoint);
    LZ_CHECK(pid > 0);
    lz_dealer_t *dealer = lz_dealer_new(ctx, endpoint, NULL);
    for (int i = 1; i <= 3; i++) {
        lz_value_t *v = lz_value_int(i), *reply = NULL;
        LZ_CHECK_INT(lz_dealer_request(dealer, v, &reply, 15000), 0); // Python may start slowly
        LZ_CHECK_INT(lz_value_get_int(reply), 2 * i);
        lz_value_destroy(&reply);
        lz_value_destroy(&v);
    }
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
    lz_dealer_destroy(&dealer);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(a_publish_and_its_handler_share_a_trace), LZ_CASE(received_messages_carry_the_traceparent),
             LZ_CASE(extension_frames_only_when_traced_and_wanted), LZ_CASE(plain_publishers_traceparent_frames),
             LZ_CASE(a_dealers_request_continues_at_the_router),
             LZ_CASE(a_router_request_traceparent_carries_the_trace_on), LZ_CASE(racing_replies_end_the_span_once), LZ_CASE(python_subscriber_reads_past_the_frame),
             LZ_CASE(python_router_reads_past_the_frame))
