/* Publish/subscribe over inproc, ipc and tcp: values in every serializer,
 * bytes, prefix filtering, handler routing, threaded and caller-driven
 * dispatch, concurrent publishers and the metrics they leave; a stop or
 * destroy from the subscriber's own handler, and a destroy while other
 * threads wait on it. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <zmq.h>

#include "core/node.h"
#include "lz_seen.h"
#include "lz_test.h"

static const char *const transports[] = {"inproc", "ipc", "tcp"};
#define NTRANSPORTS 3

// A context, a publisher bound on a fresh endpoint of the transport, a
// subscriber connected to it, and what the subscriber's handlers saw.
typedef struct {
    lz_context_t *ctx;
    lz_pub_t *pub;
    lz_sub_t *sub;
    seen_t seen;
} pair_t;

static bool pair_connect(pair_t *p, const char *transport) {
    lz_context_t *ctx = p->ctx;
    char ep[256];
    if (strcmp(transport, "inproc") == 0)
        lz_test_inproc_endpoint(ep, sizeof ep);
    else if (strcmp(transport, "ipc") == 0)
        lz_test_ipc_endpoint(ep, sizeof ep);
    else
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    p->pub = lz_pub_new(ctx, ep);
    LZ_CHECK(p->pub != NULL);
    if (!p->pub) return false;
    const char *bound = lz_node_endpoint(lz_pub_node(p->pub));
    LZ_CHECK(strncmp(bound, transport, strlen(transport)) == 0);
    LZ_CHECK(strchr(bound, '*') == NULL);
    p->sub = lz_sub_new(ctx, bound);
    LZ_CHECK(p->sub != NULL);
    return p->sub != NULL;
}

static void pair_disconnect(pair_t *p) {
    lz_sub_destroy(&p->sub);
    lz_pub_destroy(&p->pub);
}

// pair_open_in: the pair owns ctx from here on, connected or not.
static bool pair_open_in(pair_t *p, lz_context_t *ctx, const char *transport) {
    memset(p, 0, sizeof *p);
    seen_init(&p->seen);
    p->ctx = ctx;
    return ctx && pair_connect(p, transport);
}

// pair_open: in a pattern context with handler_max_concurrency concurrency
// (0: the default).
static bool pair_open(pair_t *p, int concurrency, const char *transport) {
    return pair_open_in(p, lz_test_pattern_context(concurrency), transport);
}

static void pair_close(pair_t *p) {
    pair_disconnect(p);
    lz_context_destroy(&p->ctx);
    seen_fini(&p->seen);
}

// sync_pair beats the slow joiner on "sync" (lz_test_sub_joined). Call
// before the subscriber is started.
static bool sync_pair(pair_t *p) {
    LZ_CHECK_INT(lz_sub_subscribe(p->sub, "sync"), LZ_OK);
    return lz_test_sub_joined(p->pub, p->sub, "sync");
}

static lz_value_t *sample_value(int n) {
    lz_value_t *obj = lz_value_object();
    lz_value_object_set_int(obj, "n", n);
    lz_value_object_set_string(obj, "name", "caf\xc3\xa9");
    lz_value_object_set_double(obj, "ratio", 0.25);
    lz_value_object_set_bool(obj, "ok", true);
    lz_value_object_set(obj, "nothing", lz_value_null());
    lz_value_t *arr = lz_value_array();
    lz_value_array_append(arr, lz_value_int(-1));
    lz_value_array_append(arr, lz_value_string("two"));
    lz_value_object_set(obj, "list", arr);
    return obj;
}

/* ---- values and bytes over every transport ----------------------------- */

static void values_case(const char *transport, const char *serializer) {
    pair_t p;
    if (!pair_open(&p, 0, transport)) goto out;
    if (serializer) {
        LZ_CHECK_INT(lz_node_set_serializer(lz_pub_node(p.pub), serializer), LZ_OK);
        LZ_CHECK_INT(lz_node_set_serializer(lz_sub_node(p.sub), serializer), LZ_OK);
    }
    const char *name = serializer ? serializer : "json";
    LZ_CHECK_STR(lz_node_serializer_name(lz_pub_node(p.pub)), name);
    if (!sync_pair(&p)) goto out;
    LZ_CHECK_INT(lz_sub_subscribe(p.sub, "data."), LZ_OK);
    // Subscriptions travel asynchronously: sync again on the new prefix.
    lz_value_t *probe = lz_value_null();
    bool ready = false;
    for (int64_t deadline = lz_test_now_ms() + 5000; !ready && lz_test_now_ms() < deadline;) {
        lz_pub_publish(p.pub, "data.probe", probe);
        lz_message_t *msg = lz_sub_recv(p.sub, 20);
        ready = msg != NULL;
        lz_message_destroy(&msg);
    }
    lz_value_destroy(&probe);
    for (lz_message_t *msg; (msg = lz_sub_recv(p.sub, 50));) lz_message_destroy(&msg);
    LZ_CHECK(ready);

    lz_metrics_t pub0 = lz_test_metrics(lz_pub_node(p.pub)), sub0 = lz_test_metrics(lz_sub_node(p.sub));
    const int N = 10;
    for (int i = 0; i < N; i++) {
        lz_value_t *v = sample_value(i);
        LZ_CHECK_INT(lz_pub_publish(p.pub, "data.value", v), LZ_OK);
        lz_value_destroy(&v);
    }
    // Scalars and a long topic (past any inline buffer).
    char long_topic[200];
    memset(long_topic, 'x', sizeof long_topic - 1);
    memcpy(long_topic, "data.", 5);
    long_topic[sizeof long_topic - 1] = '\0';
    lz_value_t *s = lz_value_string("just a string");
    LZ_CHECK_INT(lz_pub_publish(p.pub, long_topic, s), LZ_OK);
    lz_value_destroy(&s);

    size_t expect_bytes = 0;
    for (int i = 0; i < N; i++) {
        lz_message_t *msg = lz_sub_recv(p.sub, 5000);
        LZ_CHECK(msg != NULL);
        if (!msg) break;
        LZ_CHECK_STR(lz_message_topic(msg), "data.value");
        lz_value_t *want = sample_value(i);
        LZ_CHECK(lz_value_equal(lz_message_value(msg), want));
        size_t size = 0;
        const char *payload = lz_message_payload(msg, &size);
        LZ_CHECK(payload != NULL && size > 0);
        if (payload && strcmp(name, "json") == 0) {
            // What is on the wire is the JSON of the value itself, no envelope.
            lz_value_t *parsed = lz_value_from_json(payload, size);
            LZ_CHECK(lz_value_equal(parsed, want));
            lz_value_destroy(&parsed);
        } else if (payload) {
            LZ_CHECK(((unsigned char)payload[0] & 0xF0) == 0x80); // a msgpack fixmap
        }
        LZ_CHECK(lz_message_envelope(msg) == NULL);
        expect_bytes += strlen("data.value") + size;
        lz_value_destroy(&want);
        lz_message_destroy(&msg);
    }
    lz_message_t *msg = lz_sub_recv(p.sub, 5000);
    LZ_CHECK(msg != NULL);
    if (msg) {
        LZ_CHECK_STR(lz_message_topic(msg), long_topic);
        LZ_CHECK_STR(lz_value_get_string(lz_message_value(msg), NULL), "just a string");
        size_t size = 0;
        lz_message_payload(msg, &size);
        expect_bytes += strlen(long_topic) + size;
        lz_message_destroy(&msg);
    }

    lz_metrics_t pub1 = lz_test_metrics(lz_pub_node(p.pub)), sub1 = lz_test_metrics(lz_sub_node(p.sub));
    LZ_CHECK_INT(pub1.messages_sent - pub0.messages_sent, N + 1);
    LZ_CHECK_INT(sub1.messages_received - sub0.messages_received, N + 1);
    LZ_CHECK_INT(pub1.bytes_sent - pub0.bytes_sent, expect_bytes);
    LZ_CHECK_INT(sub1.bytes_received - sub0.bytes_received, expect_bytes);
    LZ_CHECK_INT(sub1.inbound_dropped, 0);
    LZ_CHECK_INT(pub1.errors + sub1.errors, 0);
out:
    pair_close(&p);
}

LZ_TEST(pubsub_json_values) {
    for (int t = 0; t < NTRANSPORTS; t++) values_case(transports[t], NULL);
}

LZ_TEST(pubsub_msgpack_values) {
    for (int t = 0; t < NTRANSPORTS; t++) values_case(transports[t], "msgpack");
}

LZ_TEST(pubsub_bytes) {
    for (int t = 0; t < NTRANSPORTS; t++) {
        pair_t p;
        if (pair_open(&p, 0, transports[t]) && sync_pair(&p)) {
            // Bytes to a JSON subscriber: decoded as JSON when they are JSON.
            const char *json = "{\"a\":[1,2,3]}";
            LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, "sync.bytes", json, strlen(json)), LZ_OK);
            lz_message_t *msg = lz_sub_recv(p.sub, 5000);
            LZ_CHECK(msg != NULL);
            if (msg) {
                LZ_CHECK_STR(lz_message_topic(msg), "sync.bytes");
                lz_value_t *want = lz_value_from_json(json, strlen(json));
                LZ_CHECK(lz_value_equal(lz_message_value(msg), want));
                lz_value_destroy(&want);
                size_t size;
                const void *payload = lz_message_payload(msg, &size);
                LZ_CHECK(size == strlen(json) && memcmp(payload, json, size) == 0);
            }
            lz_message_destroy(&msg);
            // Binary bytes (with NULs) to a raw subscriber arrive untouched,
            // whatever the publisher's serializer.
            LZ_CHECK_INT(lz_node_set_serializer(lz_sub_node(p.sub), "raw"), LZ_OK);
            unsigned char bin[300];
            for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 7);
            LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, "sync.bin", bin, sizeof bin), LZ_OK);
            LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, "sync.empty", NULL, 0), LZ_OK);
            msg = lz_sub_recv(p.sub, 5000);
            LZ_CHECK(msg != NULL);
            if (msg) {
                LZ_CHECK_STR(lz_message_topic(msg), "sync.bin");
                LZ_CHECK_INT(lz_value_type(lz_message_value(msg)), LZ_VALUE_BYTES);
                size_t size = 0;
                const void *data = lz_value_get_bytes(lz_message_value(msg), &size);
                LZ_CHECK(size == sizeof bin && data && memcmp(data, bin, size) == 0);
            }
            lz_message_destroy(&msg);
            msg = lz_sub_recv(p.sub, 5000);
            LZ_CHECK(msg != NULL);
            if (msg) {
                LZ_CHECK_STR(lz_message_topic(msg), "sync.empty");
                size_t size = 99;
                lz_value_get_bytes(lz_message_value(msg), &size);
                LZ_CHECK_INT(size, 0);
            }
            lz_message_destroy(&msg);
            // A raw publisher refuses structured values, and sends nothing.
            LZ_CHECK_INT(lz_node_set_serializer(lz_pub_node(p.pub), "raw"), LZ_OK);
            lz_metrics_t before = lz_test_metrics(lz_pub_node(p.pub));
            lz_value_t *obj = sample_value(1);
            LZ_CHECK_INT(lz_pub_publish(p.pub, "sync.obj", obj), LZ_ESERIALIZATION);
            lz_value_destroy(&obj);
            LZ_CHECK_INT(lz_test_metrics(lz_pub_node(p.pub)).messages_sent, before.messages_sent);
            LZ_CHECK_INT(lz_pub_publish_bytes(NULL, "t", "x", 1), LZ_EINVAL);
            LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, NULL, "x", 1), LZ_EINVAL);
            LZ_CHECK_INT(lz_node_set_serializer(lz_pub_node(p.pub), "no-such-codec"), LZ_ENOTFOUND);
            LZ_CHECK_STR(lz_node_serializer_name(lz_pub_node(p.pub)), "raw");
        }
        pair_close(&p);
    }
}

/* ---- filtering ------------------------------------------------------------ */

// sync_on publishes on topic until one arrives (the subscription for it
// has reached the publisher), then drains the extra copies.
static bool sync_on(pair_t *p, const char *topic) {
    lz_value_t *v = lz_value_null();
    bool ok = false;
    for (int64_t deadline = lz_test_now_ms() + 5000; !ok && lz_test_now_ms() < deadline;) {
        lz_pub_publish(p->pub, topic, v);
        lz_message_t *msg = lz_sub_recv(p->sub, 20);
        ok = msg != NULL;
        if (msg) LZ_CHECK_STR(lz_message_topic(msg), topic);
        lz_message_destroy(&msg);
    }
    lz_value_destroy(&v);
    for (lz_message_t *msg; (msg = lz_sub_recv(p->sub, 50));) {
        LZ_CHECK_STR(lz_message_topic(msg), topic);
        lz_message_destroy(&msg);
    }
    LZ_CHECK(ok);
    return ok;
}

static void expect_topics(lz_sub_t *sub, const char *const *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lz_message_t *msg = lz_sub_recv(sub, 5000);
        LZ_CHECK(msg != NULL);
        if (msg) LZ_CHECK_STR(lz_message_topic(msg), want[i]);
        lz_message_destroy(&msg);
    }
    lz_message_t *extra = lz_sub_recv(sub, 100);
    LZ_CHECK(extra == NULL);
    if (extra) fprintf(stderr, "unexpected topic '%s'\n", lz_message_topic(extra));
    lz_message_destroy(&extra);
}

LZ_TEST(pubsub_prefix_filtering) {
    for (int t = 0; t < NTRANSPORTS; t++) {
        pair_t p;
        if (pair_open(&p, 0, transports[t])) {
            // Nothing subscribed: nothing arrives.
            lz_value_t *v = lz_value_int(0);
            LZ_CHECK_INT(lz_pub_publish(p.pub, "weather.paris", v), LZ_OK);
            LZ_CHECK_INT(lz_sub_subscribe(p.sub, "weather."), LZ_OK);
            if (sync_on(&p, "weather.sync")) {
                lz_metrics_t before = lz_test_metrics(lz_sub_node(p.sub));
                const char *topics[] = {"news.x",   "weather.paris", "weatherman", "weather",
                                        "weather.", "WEATHER.x",     "xweather.x", "weather.london"};
                for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
                    LZ_CHECK_INT(lz_pub_publish(p.pub, topics[i], v), LZ_OK);
                const char *want[] = {"weather.paris", "weather.", "weather.london"};
                expect_topics(p.sub, want, 3);
                // Filtering happens before the subscriber: nothing else was received.
                LZ_CHECK_INT(lz_test_metrics(lz_sub_node(p.sub)).messages_received - before.messages_received, 3);

                // Changing subscriptions: drop "weather.", take "news.".
                LZ_CHECK_INT(lz_sub_unsubscribe(p.sub, "weather."), LZ_OK);
                LZ_CHECK_INT(lz_sub_subscribe(p.sub, "news."), LZ_OK);
                if (sync_on(&p, "news.sync")) { // in order: the unsubscribe got there first
                    LZ_CHECK_INT(lz_pub_publish(p.pub, "weather.paris", v), LZ_OK);
                    LZ_CHECK_INT(lz_pub_publish(p.pub, "news.today", v), LZ_OK);
                    const char *want2[] = {"news.today"};
                    expect_topics(p.sub, want2, 1);
                }
                // "" is everything.
                LZ_CHECK_INT(lz_sub_subscribe(p.sub, ""), LZ_OK);
                if (sync_on(&p, "all.sync")) {
                    LZ_CHECK_INT(lz_pub_publish(p.pub, "", v), LZ_OK);
                    LZ_CHECK_INT(lz_pub_publish(p.pub, "zzz", v), LZ_OK);
                    const char *want3[] = {"", "zzz"};
                    expect_topics(p.sub, want3, 2);
                }
            }
            LZ_CHECK_INT(lz_sub_subscribe(p.sub, NULL), LZ_EINVAL);
            lz_value_destroy(&v);
        }
        pair_close(&p);
    }
}

/* ---- handlers -------------------------------------------------------------- */

static int on_a(const lz_message_t *msg, void *arg) { return seen_record(arg, "a", msg); }
static int on_ab(const lz_message_t *msg, void *arg) { return seen_record(arg, "ab", msg); }
static int on_default(const lz_message_t *msg, void *arg) { return seen_record(arg, "default", msg); }

static const char *who_for(seen_t *s, const char *topic) {
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->topic[i], topic) == 0) return s->who[i];
    return "(none)";
}

static void publish_n(lz_pub_t *pub, const char *topic, int n) {
    lz_value_t *v = lz_value_object();
    lz_value_object_set_int(v, "n", n);
    LZ_CHECK_INT(lz_pub_publish(pub, topic, v), LZ_OK);
    lz_value_destroy(&v);
}

LZ_TEST(pubsub_handlers_longest_prefix_and_default) {
    for (int t = 0; t < NTRANSPORTS; t++) {
        pair_t p;
        if (pair_open(&p, 1, transports[t])) {
            LZ_CHECK_INT(lz_sub_on(p.sub, "sync.a", on_a, &p.seen), LZ_OK);
            LZ_CHECK_INT(lz_sub_on(p.sub, "sync.a.b", on_ab, &p.seen), LZ_OK);
            LZ_CHECK_INT(lz_sub_on_default(p.sub, on_default, &p.seen), LZ_OK);
            LZ_CHECK_INT(lz_sub_on(p.sub, "sync.a", NULL, &p.seen), LZ_EINVAL);
            if (sync_pair(&p)) { // lz_sub_on subscribed already, so these arrive
                const char *topics[] = {"sync.a.x", "sync.a.b.c", "sync.a.b", "sync.ab", "sync.z", "sync.a"};
                for (int i = 0; i < 6; i++) publish_n(p.pub, topics[i], i);
                int64_t deadline = lz_test_now_ms() + 5000;
                while (seen_count(&p.seen) < 6 && lz_test_now_ms() < deadline) {
                    int n = lz_sub_dispatch(p.sub, 100);
                    LZ_CHECK(n >= 0);
                }
                LZ_CHECK_INT(seen_count(&p.seen), 6);
                LZ_CHECK_STR(who_for(&p.seen, "sync.a.x"), "a");
                LZ_CHECK_STR(who_for(&p.seen, "sync.a.b.c"), "ab");
                LZ_CHECK_STR(who_for(&p.seen, "sync.a.b"), "ab");
                LZ_CHECK_STR(who_for(&p.seen, "sync.ab"), "a"); // a prefix, not a word
                LZ_CHECK_STR(who_for(&p.seen, "sync.z"), "default");
                LZ_CHECK_STR(who_for(&p.seen, "sync.a"), "a");
                // Caller-driven handlers run on the caller's thread, in order.
                for (int i = 0; i < p.seen.count; i++) {
                    LZ_CHECK(pthread_equal(p.seen.thread[i], pthread_self()));
                    LZ_CHECK_INT(p.seen.n[i], i);
                }
                LZ_CHECK_INT(lz_sub_dispatch(p.sub, 0), 0);
            }
        }
        pair_close(&p);
    }
}

LZ_TEST(pubsub_unrouted_and_failing_handlers_are_counted) {
    pair_t p;
    if (pair_open(&p, 1, "inproc")) {
        LZ_CHECK_INT(lz_sub_on(p.sub, "sync.a", on_a, &p.seen), LZ_OK);
        if (sync_pair(&p)) {
            lz_metrics_t before = lz_test_metrics(lz_sub_node(p.sub));
            publish_n(p.pub, "sync.other", 1); // subscribed ("sync") but no handler, no default
            publish_n(p.pub, "sync.a", 2);
            int64_t deadline = lz_test_now_ms() + 5000;
            while (seen_count(&p.seen) < 1 && lz_test_now_ms() < deadline) lz_sub_dispatch(p.sub, 100);
            lz_metrics_t after = lz_test_metrics(lz_sub_node(p.sub));
            LZ_CHECK_INT(seen_count(&p.seen), 1);
            LZ_CHECK_INT(after.messages_received - before.messages_received, 2);
            LZ_CHECK_INT(after.inbound_dropped - before.inbound_dropped, 1);
            // A handler returning non-zero counts as an error.
            p.seen.fail = 1;
            publish_n(p.pub, "sync.a", 3);
            deadline = lz_test_now_ms() + 5000;
            while (seen_count(&p.seen) < 2 && lz_test_now_ms() < deadline) lz_sub_dispatch(p.sub, 100);
            LZ_CHECK_INT(seen_count(&p.seen), 2);
            LZ_CHECK_INT(lz_test_metrics(lz_sub_node(p.sub)).errors - after.errors, 1);
        }
    }
    pair_close(&p);
}

// start_case: a started subscriber with concurrency handler threads.
// A second lz_sub_on for a prefix replaces its handler and does not
// subscribe again, so one lz_sub_unsubscribe drops the prefix; a prefix
// lz_sub_subscribe subscribed twice takes two (libzmq counts them).
LZ_TEST(pubsub_on_twice_subscribes_once) {
    pair_t p;
    if (pair_open(&p, 1, "inproc")) {
        LZ_CHECK_INT(lz_sub_on(p.sub, "t.a", on_a, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_sub_on(p.sub, "t.a", on_ab, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(p.sub, "t.b"), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(p.sub, "t.b"), LZ_OK);
        if (sync_pair(&p)) {
            publish_n(p.pub, "t.a", 0); // the second handler has it
            int64_t deadline = lz_test_now_ms() + 5000;
            while (seen_count(&p.seen) < 1 && lz_test_now_ms() < deadline) lz_sub_dispatch(p.sub, 100);
            LZ_CHECK_STR(who_for(&p.seen, "t.a"), "ab");
            LZ_CHECK_INT(lz_sub_unsubscribe(p.sub, "t.a"), LZ_OK);
            LZ_CHECK_INT(lz_sub_unsubscribe(p.sub, "t.b"), LZ_OK);
            if (sync_on(&p, "sync.1")) { // in order: the unsubscribes got there first
                publish_n(p.pub, "t.a", 1);
                publish_n(p.pub, "t.b", 2);
                const char *want[] = {"t.b"}; // still subscribed once
                expect_topics(p.sub, want, 1);
            }
            LZ_CHECK_INT(lz_sub_unsubscribe(p.sub, "t.b"), LZ_OK);
            if (sync_on(&p, "sync.2")) {
                publish_n(p.pub, "t.b", 3);
                expect_topics(p.sub, NULL, 0);
            }
        }
    }
    pair_close(&p);
}

// A topic that is not UTF-8 text, which every liberzmq subscriber would
// drop (docs/protocol.md section 2), is refused at the publisher: nothing
// goes out.
LZ_TEST(pubsub_publish_refuses_a_topic_that_is_not_text) {
    pair_t p;
    if (pair_open(&p, 1, "inproc")) {
        lz_value_t *v = lz_value_int(1);
        lz_metrics_t before = lz_test_metrics(lz_pub_node(p.pub));
        const char *bad[] = {"\xff", "caf\xc3", "ok.\xc0\xaf", "a long topic, past a word: \xed\xa0\x80"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, bad[i], "x", 1), LZ_EINVAL);
            LZ_CHECK(strstr(lz_last_error(), "topic is not UTF-8 text") != NULL);
            LZ_CHECK_INT(lz_pub_publish(p.pub, bad[i], v), LZ_EINVAL);
        }
        LZ_CHECK_INT(lz_test_metrics(lz_pub_node(p.pub)).messages_sent, before.messages_sent);
        LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, "caf\xc3\xa9", "x", 1), LZ_OK);
        LZ_CHECK_INT(lz_pub_publish(p.pub, "", v), LZ_OK);
        lz_value_destroy(&v);
    }
    pair_close(&p);
}

static void start_case(const char *transport, int concurrency) {
    pair_t p;
    if (!pair_open(&p, concurrency, transport)) goto out;
    LZ_CHECK_INT(lz_sub_on(p.sub, "sync.job", on_a, &p.seen), LZ_OK);
    if (!sync_pair(&p)) goto out;
    // First: ordering, with quick handlers.
    LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
    LZ_CHECK_INT(lz_sub_start(p.sub), LZ_ESTATE);
    LZ_CHECK(lz_sub_recv(p.sub, 0) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    LZ_CHECK_INT(lz_sub_dispatch(p.sub, 0), LZ_ESTATE);
    LZ_CHECK_INT(lz_sub_on(p.sub, "sync.late", on_a, &p.seen), LZ_ESTATE);
    const int N = 50;
    for (int i = 0; i < N; i++) publish_n(p.pub, "sync.job", i);
    LZ_CHECK(seen_wait(&p.seen, N, 5000));
    pthread_mutex_lock(&p.seen.lock);
    int distinct_threads = 0;
    for (int i = 0; i < p.seen.count; i++) {
        LZ_CHECK(!pthread_equal(p.seen.thread[i], pthread_self()));
        bool fresh = true;
        for (int j = 0; j < i; j++)
            if (pthread_equal(p.seen.thread[i], p.seen.thread[j])) fresh = false;
        distinct_threads += fresh;
        if (concurrency == 1) LZ_CHECK_INT(p.seen.n[i], i); // one thread: arrival order
    }
    pthread_mutex_unlock(&p.seen.lock);
    LZ_CHECK(distinct_threads >= 1 && distinct_threads <= concurrency);
    if (concurrency == 1) LZ_CHECK_INT(distinct_threads, 1);
    if (concurrency == 1) LZ_CHECK_INT(atomic_load(&p.seen.max_running), 1);

    // Then: slow handlers run concurrently up to the limit, never past it.
    seen_reset(&p.seen);
    p.seen.sleep_ms = 100;
    atomic_store(&p.seen.max_running, 0);
    int64_t t0 = lz_test_now_ms();
    const int SLOW = 8;
    for (int i = 0; i < SLOW; i++) publish_n(p.pub, "sync.job", i);
    LZ_CHECK(seen_wait(&p.seen, SLOW, 5000));
    int64_t elapsed = lz_test_now_ms() - t0;
    int max_running = atomic_load(&p.seen.max_running);
    LZ_CHECK(max_running <= concurrency);
    if (concurrency == 1) {
        LZ_CHECK_INT(max_running, 1);
        LZ_CHECK(elapsed >= SLOW * 100 - 20);
    } else {
        LZ_CHECK(max_running >= 2);
        LZ_CHECK(elapsed < SLOW * 100 / 2); // 4 at a time: about 200 ms, not 800
    }

    // Stop: waits for running handlers, joins, and is idempotent.
    t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_sub_stop(p.sub), LZ_OK);
    LZ_CHECK(lz_test_now_ms() - t0 < 1000);
    LZ_CHECK_INT(atomic_load(&p.seen.running), 0);
    LZ_CHECK_INT(lz_sub_stop(p.sub), LZ_OK);
    // Stopped, the subscriber can be driven by the caller again.
    p.seen.sleep_ms = 0;
    publish_n(p.pub, "sync.job", 1000);
    lz_message_t *msg = lz_sub_recv(p.sub, 5000);
    LZ_CHECK(msg != NULL);
    if (msg) LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", -1), 1000);
    lz_message_destroy(&msg);
    // And started again; destroying a started subscriber stops it.
    LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
    int before = seen_count(&p.seen);
    publish_n(p.pub, "sync.job", 2000);
    LZ_CHECK(seen_wait(&p.seen, before + 1, 5000));
out:
    pair_close(&p);
}

LZ_TEST(pubsub_start_concurrency_1) {
    for (int t = 0; t < NTRANSPORTS; t++) start_case(transports[t], 1);
}

LZ_TEST(pubsub_start_concurrency_4) {
    for (int t = 0; t < NTRANSPORTS; t++) start_case(transports[t], 4);
}

LZ_TEST(pubsub_stop_is_quick_and_clean) {
    pair_t p;
    if (pair_open(&p, 4, "tcp")) {
        LZ_CHECK_INT(lz_sub_stop(p.sub), LZ_OK); // never started: fine
        LZ_CHECK_INT(lz_sub_on(p.sub, "x", on_a, &p.seen), LZ_OK);
        for (int i = 0; i < 3; i++) {
            LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
            lz_test_sleep_ms(20); // its receiver is waiting now
            // Subscribing does not wait for the waiting receiver: when it
            // held the socket in 50 ms slices, these ten took 200-250 ms.
            int64_t subscribing = 0;
            for (int n = 0; n < 10; n++) {
                lz_test_sleep_ms(5);
                int64_t t0 = lz_test_now_ms();
                LZ_CHECK_INT(lz_sub_subscribe(p.sub, "y"), LZ_OK);
                subscribing += lz_test_now_ms() - t0;
            }
            LZ_CHECK(subscribing < 50 * LZ_TEST_SLOWDOWN);
            int64_t t0 = lz_test_now_ms();
            LZ_CHECK_INT(lz_sub_stop(p.sub), LZ_OK);
            LZ_CHECK(lz_test_now_ms() - t0 < 500); // a stop wakes the receiver
        }
        // Stopped, the caller drives it again with the usual timeouts: a
        // timed receive or dispatch waits its whole timeout, then LZ_ETIMEOUT.
        int64_t t0 = lz_test_now_ms();
        lz_message_t *msg = lz_sub_recv(p.sub, 300);
        int64_t waited = lz_test_now_ms() - t0;
        LZ_CHECK(msg == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
        LZ_CHECK(waited >= 280);
        lz_message_destroy(&msg);
        t0 = lz_test_now_ms();
        LZ_CHECK_INT(lz_sub_dispatch(p.sub, 300), 0);
        LZ_CHECK(lz_test_now_ms() - t0 >= 280);
        LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
    }
    int64_t t0 = lz_test_now_ms();
    pair_disconnect(&p); // destroy while started
    LZ_CHECK(lz_test_now_ms() - t0 < 1500);
    pair_close(&p);
}

// Stopping with handlers busy and messages queued: stop waits only for the
// running handlers; every message received is either handled or counted
// as dropped, none lost without a trace.
LZ_TEST(pubsub_stop_accounts_for_queued_messages) {
    pair_t p;
    if (pair_open(&p, 2, "ipc")) {
        p.seen.sleep_ms = 100;
        LZ_CHECK_INT(lz_sub_on(p.sub, "sync.slow", on_a, &p.seen), LZ_OK);
        if (sync_pair(&p)) {
            lz_metrics_t before = lz_test_metrics(lz_sub_node(p.sub));
            LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
            for (int i = 0; i < 20; i++) publish_n(p.pub, "sync.slow", i);
            // Wait until the first handlers are running and more are queued.
            for (int64_t deadline = lz_test_now_ms() + 5000;
                 atomic_load(&p.seen.running) < 2 && lz_test_now_ms() < deadline;)
                lz_test_sleep_ms(1);
            for (int64_t deadline = lz_test_now_ms() + 5000;; lz_test_sleep_ms(1)) {
                lz_metrics_t m = lz_test_metrics(lz_sub_node(p.sub));
                if (m.messages_received - before.messages_received >= 10 || lz_test_now_ms() >= deadline) break;
            }
            int64_t t0 = lz_test_now_ms();
            LZ_CHECK_INT(lz_sub_stop(p.sub), LZ_OK);
            int64_t took = lz_test_now_ms() - t0;
            LZ_CHECK(took < 600); // the two running handlers, not all twenty
            LZ_CHECK_INT(atomic_load(&p.seen.running), 0);
            lz_metrics_t after = lz_test_metrics(lz_sub_node(p.sub));
            uint64_t received = after.messages_received - before.messages_received;
            uint64_t dropped = after.inbound_dropped - before.inbound_dropped;
            LZ_CHECK((uint64_t)seen_count(&p.seen) + dropped == received);
            LZ_CHECK(seen_count(&p.seen) < 20);
            LZ_CHECK(dropped > 0);
            // Handlers do not run after stop returned.
            int handled = seen_count(&p.seen);
            lz_test_sleep_ms(150);
            LZ_CHECK_INT(seen_count(&p.seen), handled);
        }
    }
    pair_close(&p);
}

// A subscriber that does not read: once the queues are full the publisher
// reports it (LZ_EAGAIN after zmq.send_timeout, counted) instead of
// dropping in silence, and recovers when the subscriber reads again.
LZ_TEST(pubsub_backpressure_reported) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.high_water_mark=10", "zmq.send_timeout=100", "zmq.linger=0");
    pair_t p;
    if (pair_open_in(&p, ctx, "inproc") && sync_pair(&p)) {
        lz_metrics_t before = lz_test_metrics(lz_pub_node(p.pub));
        int sent = 0, rc = LZ_OK;
        int64_t t0 = 0;
        for (int i = 0; i < 1000 && rc == LZ_OK; i++) {
            t0 = lz_test_now_ms();
            rc = lz_pub_publish_bytes(p.pub, "sync.bp", "1", 1);
            if (rc == LZ_OK) sent++;
        }
        int64_t blocked = lz_test_now_ms() - t0;
        LZ_CHECK_INT(rc, LZ_EAGAIN);
        LZ_CHECK(sent >= 10 && sent < 1000);
        LZ_CHECK(blocked >= 80 && blocked < 1000); // waited about send_timeout
        lz_metrics_t after = lz_test_metrics(lz_pub_node(p.pub));
        LZ_CHECK_INT(after.messages_sent - before.messages_sent, sent);
        LZ_CHECK_INT(after.backpressure_events - before.backpressure_events, 1);
        LZ_CHECK_INT(after.outbound_dropped - before.outbound_dropped, 1);
        // Everything accepted arrives; then there is room again.
        int got = 0;
        for (lz_message_t *msg; (msg = lz_sub_recv(p.sub, 200)); got++) lz_message_destroy(&msg);
        LZ_CHECK_INT(got, sent);
        LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, "sync.bp", "2", 1), LZ_OK);
        lz_message_t *msg = lz_sub_recv(p.sub, 5000);
        LZ_CHECK(msg != NULL);
        lz_message_destroy(&msg);
    }
    pair_close(&p);
}

/* ---- caller-driven loop ---------------------------------------------------- */

typedef struct {
    lz_pub_t *pub;
    int count, delay_ms;
} publisher_arg_t;

static void *delayed_publisher(void *self) {
    publisher_arg_t *a = self;
    lz_test_sleep_ms(a->delay_ms);
    for (int i = 0; i < a->count; i++) publish_n(a->pub, "sync.fd", i);
    return NULL;
}

LZ_TEST(pubsub_caller_loop_with_fd_and_poll) {
    for (int t = 0; t < NTRANSPORTS; t++) {
        pair_t p;
        if (pair_open(&p, 0, transports[t])) {
            LZ_CHECK_INT(lz_sub_on(p.sub, "sync.fd", on_a, &p.seen), LZ_OK);
            int fd = -1;
            LZ_CHECK_INT(lz_sub_fd(p.sub, &fd), LZ_OK);
            LZ_CHECK(fd >= 0);
            LZ_CHECK_INT(lz_sub_fd(p.sub, NULL), LZ_EINVAL);
            if (sync_pair(&p)) {
                while (lz_sub_dispatch(p.sub, 0) > 0) {
                }
                const int N = 200;
                publisher_arg_t arg = {p.pub, N, 50};
                pthread_t thread;
                pthread_create(&thread, NULL, delayed_publisher, &arg);
                int polls_ready = 0, dispatched = 0;
                for (int64_t deadline = lz_test_now_ms() + 5000; dispatched < N && lz_test_now_ms() < deadline;) {
                    struct pollfd pfd = {fd, POLLIN, 0};
                    int ready = poll(&pfd, 1, 1000);
                    LZ_CHECK(ready >= 0);
                    if (ready > 0) polls_ready++;
                    // Edge-triggered: dispatch until nothing is left.
                    for (int n; (n = lz_sub_dispatch(p.sub, 0)) > 0;) dispatched += n;
                }
                pthread_join(thread, NULL);
                LZ_CHECK_INT(dispatched, N);
                LZ_CHECK_INT(seen_count(&p.seen), N);
                LZ_CHECK(polls_ready > 0);
                for (int i = 0; i < p.seen.count; i++) LZ_CHECK_INT(p.seen.n[i], i);
                // With nothing waiting, a timed dispatch waits and returns 0.
                int64_t t0 = lz_test_now_ms();
                LZ_CHECK_INT(lz_sub_dispatch(p.sub, 100), 0);
                int64_t waited = lz_test_now_ms() - t0;
                LZ_CHECK(waited >= 80 && waited < 1000);
            }
        }
        pair_close(&p);
    }
}

LZ_TEST(pubsub_recv_times_out) {
    pair_t p;
    if (pair_open(&p, 0, "ipc")) {
        LZ_CHECK_INT(lz_sub_subscribe(p.sub, ""), LZ_OK);
        int64_t t0 = lz_test_now_ms();
        lz_message_t *msg = lz_sub_recv(p.sub, 150);
        int64_t waited = lz_test_now_ms() - t0;
        LZ_CHECK(msg == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
        LZ_CHECK(waited >= 130 && waited < 1000);
        t0 = lz_test_now_ms();
        msg = lz_sub_recv(p.sub, 0);
        LZ_CHECK(msg == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
        LZ_CHECK(lz_test_now_ms() - t0 < 100);
        LZ_CHECK(lz_sub_recv(NULL, 0) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    }
    pair_close(&p);
}

/* ---- bytes into the caller's buffers ----------------------------------------- */

// recv_bytes_sizes: whole, large and cut-short topics and payloads, with
// the full lengths reported each time.
static void recv_bytes_sizes(pair_t *p) {
    unsigned char big[3000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 5);
    LZ_CHECK_INT(lz_pub_publish_bytes(p->pub, "sync.a", "hello", 5), LZ_OK);
    LZ_CHECK_INT(lz_pub_publish_bytes(p->pub, "sync.big", big, sizeof big), LZ_OK);
    LZ_CHECK_INT(lz_pub_publish_bytes(p->pub, "sync.a-long-topic", "x", 1), LZ_OK);
    char topic[64];
    unsigned char buf[4096];
    size_t topic_size = sizeof topic, size = sizeof buf;
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &topic_size, buf, &size, 5000), LZ_OK);
    LZ_CHECK_STR(topic, "sync.a");
    LZ_CHECK_INT(topic_size, 6);
    LZ_CHECK(size == 5 && memcmp(buf, "hello", 5) == 0);
    topic_size = sizeof topic, size = sizeof buf;
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &topic_size, buf, &size, 5000), LZ_OK);
    LZ_CHECK_STR(topic, "sync.big");
    LZ_CHECK(size == sizeof big && memcmp(buf, big, sizeof big) == 0);
    topic_size = 5, size = sizeof buf; // room for "sync" and the NUL
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &topic_size, buf, &size, 5000), LZ_OK);
    LZ_CHECK_STR(topic, "sync");
    LZ_CHECK_INT(topic_size, 17); // strlen("sync.a-long-topic"): cut short
    LZ_CHECK(size == 1 && buf[0] == 'x');
    topic_size = sizeof topic, size = sizeof buf;
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &topic_size, buf, &size, 50), LZ_ETIMEOUT);
    LZ_CHECK(topic_size == sizeof topic && size == sizeof buf); // untouched on failure
    size_t zero = 0;
    LZ_CHECK_INT(lz_sub_recv_bytes(NULL, topic, &topic_size, buf, &size, 0), LZ_EINVAL);
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, NULL, &topic_size, buf, &size, 0), LZ_EINVAL);
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &zero, buf, &size, 0), LZ_EINVAL);
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &topic_size, buf, NULL, 0), LZ_EINVAL);
    LZ_CHECK_INT(lz_sub_recv_bytes(p->sub, topic, &topic_size, NULL, &size, 0), LZ_EINVAL);
}

// raw_pub_joined binds a plain PUB socket and a subscriber to everything
// to it, and returns once the subscriber receives (its earlier join
// messages taken); the subscriber in *sub_p, NULL on failure.
static void *raw_pub_joined(lz_context_t *ctx, lz_sub_t **sub_p) {
    char at_ep[256], topic[16], buf[16];
    const char *ep = lz_test_ipc_endpoint(at_ep + 1, sizeof at_ep - 1);
    at_ep[0] = '@';
    void *raw = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_PUB, -1, at_ep);
    lz_sub_t *sub = lz_sub_new(ctx, ep);
    LZ_CHECK(sub != NULL && lz_sub_subscribe(sub, "") == LZ_OK);
    bool joined = false;
    for (int64_t deadline = lz_test_now_ms() + 5000; sub && !joined && lz_test_now_ms() < deadline;) {
        zmq_send(raw, "join", 4, ZMQ_SNDMORE);
        zmq_send(raw, "", 0, 0);
        size_t topic_size = sizeof topic, size = sizeof buf;
        joined = lz_sub_recv_bytes(sub, topic, &topic_size, buf, &size, 20) == LZ_OK;
    }
    LZ_CHECK(joined);
    for (size_t topic_size = sizeof topic, size = sizeof buf;
         joined && lz_sub_recv_bytes(sub, topic, &topic_size, buf, &size, 50) == LZ_OK;) { // the other joins
        topic_size = sizeof topic;
        size = sizeof buf;
    }
    if (!joined) lz_sub_destroy(&sub);
    *sub_p = sub;
    return raw;
}

// send_refused_forms sends from a plain PUB socket the two messages a
// subscriber refuses by default (lz_sub_accept 0): one frame, and a topic
// that is not UTF-8.
static void send_refused_forms(void *raw) {
    zmq_send(raw, "lonely", 6, 0);
    zmq_send(raw, "\xff\xfe", 2, ZMQ_SNDMORE);
    zmq_send(raw, "payload", 7, 0);
}

// recv_bytes_skips_malformed: from a plain PUB socket, a one-frame message
// and a topic that is not UTF-8 are counted and skipped, as lz_sub_recv
// skips them, and the good message after them arrives.
static void recv_bytes_skips_malformed(lz_context_t *ctx) {
    lz_sub_t *sub = NULL;
    void *raw = raw_pub_joined(ctx, &sub);
    if (sub) {
        char topic[16], buf[16];
        size_t topic_size = sizeof topic, size = sizeof buf;
        uint64_t dropped = lz_test_metrics(lz_sub_node(sub)).inbound_dropped;
        send_refused_forms(raw);
        zmq_send(raw, "ok", 2, ZMQ_SNDMORE);
        zmq_send(raw, "payload", 7, 0);
        LZ_CHECK_INT(lz_sub_recv_bytes(sub, topic, &topic_size, buf, &size, 5000), LZ_OK);
        LZ_CHECK_STR(topic, "ok");
        LZ_CHECK(size == 7 && memcmp(buf, "payload", 7) == 0);
        LZ_CHECK_INT(lz_test_metrics(lz_sub_node(sub)).inbound_dropped, dropped + 2);
    }
    lz_sub_destroy(&sub);
    zmq_close(raw);
}

// A raw subscriber's lz_sub_recv keeps a large payload as libzmq received it:
// the value borrows the frame, nothing is copied (pubsub.h says so).
LZ_TEST(pubsub_raw_recv_keeps_the_frame) {
    pair_t p;
    if (pair_open(&p, 0, "ipc") && sync_pair(&p)) {
        static unsigned char big[65536];
        for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 13);
        LZ_CHECK_INT(lz_node_set_serializer(lz_sub_node(p.sub), "raw"), LZ_OK);
        LZ_CHECK_INT(lz_pub_publish_bytes(p.pub, "sync", big, sizeof big), LZ_OK);
        lz_message_t *msg = lz_sub_recv(p.sub, 5000);
        lz_test_check_borrowed(&msg, big, sizeof big);
    }
    pair_close(&p);
}

LZ_TEST(pubsub_recv_bytes) {
    pair_t p;
    if (pair_open(&p, 0, "ipc") && sync_pair(&p)) {
        recv_bytes_sizes(&p);
        recv_bytes_skips_malformed(p.ctx);
        LZ_CHECK_INT(lz_sub_on_default(p.sub, on_default, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
        char topic[8], buf[8];
        size_t topic_size = sizeof topic, size = sizeof buf;
        LZ_CHECK_INT(lz_sub_recv_bytes(p.sub, topic, &topic_size, buf, &size, 0), LZ_ESTATE);
    }
    pair_close(&p);
}

/* ---- one-frame messages from classic publishers -------------------------------- */

static int on_everything(const lz_message_t *msg, void *arg) {
    LZ_CHECK(!lz_message_has_topic(msg));
    return seen_record(arg, "everything", msg);
}

// recv_single_frame: taken whole, with no topic, by lz_sub_recv, the
// handlers and lz_sub_recv_bytes; an empty topic frame still has a topic.
static void recv_single_frame(lz_sub_t *sub, void *raw) {
    zmq_send(raw, "{\"n\":1}", 7, 0);
    zmq_send(raw, "", 0, ZMQ_SNDMORE);
    zmq_send(raw, "{\"n\":2}", 7, 0);
    lz_message_t *msg = lz_sub_recv(sub, 5000);
    LZ_CHECK(msg != NULL && !lz_message_has_topic(msg));
    LZ_CHECK_STR(lz_message_topic(msg), "");
    LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", -1), 1);
    size_t size = 0;
    LZ_CHECK(memcmp(lz_message_payload(msg, &size), "{\"n\":1}", 7) == 0 && size == 7);
    lz_message_destroy(&msg);
    msg = lz_sub_recv(sub, 5000);
    LZ_CHECK(msg != NULL && lz_message_has_topic(msg));
    LZ_CHECK_STR(lz_message_topic(msg), "");
    lz_message_destroy(&msg);

    zmq_send(raw, "10001 23 45", 11, 0);
    char topic[16] = "x", buf[16];
    size_t topic_size = sizeof topic;
    size = sizeof buf;
    LZ_CHECK_INT(lz_sub_recv_bytes(sub, topic, &topic_size, buf, &size, 5000), LZ_OK);
    LZ_CHECK(topic[0] == '\0' && topic_size == 0);
    LZ_CHECK(size == 11 && memcmp(buf, "10001 23 45", 11) == 0);

    seen_t seen;
    seen_init(&seen);
    LZ_CHECK_INT(lz_sub_on(sub, "", on_everything, &seen), LZ_OK);
    zmq_send(raw, "{\"n\":3}", 7, 0);
    for (int64_t deadline = lz_test_now_ms() + 5000; seen_count(&seen) < 1 && lz_test_now_ms() < deadline;)
        LZ_CHECK(lz_sub_dispatch(sub, 100) >= 0);
    LZ_CHECK_INT(seen_count(&seen), 1);
    LZ_CHECK_INT(seen.n[0], 3);
    seen_fini(&seen);
}

// recv_binary_topic: a topic of any bytes, NUL too, is taken whole.
static void recv_binary_topic(lz_sub_t *sub, void *raw) {
    for (int i = 0; i < 2; i++) {
        zmq_send(raw, "\xff\0id", 4, ZMQ_SNDMORE);
        zmq_send(raw, "{\"n\":6}", 7, 0);
    }
    lz_message_t *msg = lz_sub_recv(sub, 5000);
    size_t size = 0;
    LZ_CHECK(msg != NULL && lz_message_has_topic(msg));
    const char *topic = lz_message_topic_bytes(msg, &size);
    LZ_CHECK(size == 4 && memcmp(topic, "\xff\0id", 5) == 0); // and the NUL after it
    LZ_CHECK_STR(lz_message_topic(msg), "\xff"); // as a C string reads it
    LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", -1), 6);
    lz_message_destroy(&msg);
    char buf[16], topic_copy[8];
    size_t topic_size = sizeof topic_copy;
    size = sizeof buf;
    LZ_CHECK_INT(lz_sub_recv_bytes(sub, topic_copy, &topic_size, buf, &size, 5000), LZ_OK);
    LZ_CHECK(topic_size == 4 && memcmp(topic_copy, "\xff\0id", 5) == 0 && size == 7);
}

// A plain PUB's one-frame messages ("10001 23 45", the topic at the start
// of the frame) and binary topics are malformed by default; lz_sub_accept
// takes them, and turning that off drops them again.
LZ_TEST(pubsub_plain_publishers_forms) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error");
    lz_sub_t *sub = NULL;
    void *raw = ctx ? raw_pub_joined(ctx, &sub) : NULL;
    if (sub) {
        LZ_CHECK_INT(lz_sub_accept(sub, LZ_SUB_SINGLE_FRAME), LZ_OK);
        recv_single_frame(sub, raw);
        LZ_CHECK_INT(lz_sub_accept(sub, LZ_SUB_BINARY_TOPIC), LZ_OK);
        recv_binary_topic(sub, raw);
        LZ_CHECK_INT(lz_sub_accept(sub, 1u << 5), LZ_EINVAL);
        LZ_CHECK_INT(lz_sub_accept(sub, 0), LZ_OK);
        uint64_t dropped = lz_test_metrics(lz_sub_node(sub)).inbound_dropped;
        send_refused_forms(raw);
        zmq_send(raw, "after", 5, ZMQ_SNDMORE);
        zmq_send(raw, "{\"n\":5}", 7, 0);
        lz_message_t *msg = lz_sub_recv(sub, 5000);
        LZ_CHECK(msg != NULL && lz_message_has_topic(msg));
        LZ_CHECK_STR(lz_message_topic(msg), "after");
        lz_message_destroy(&msg);
        LZ_CHECK_INT(lz_test_metrics(lz_sub_node(sub)).inbound_dropped, dropped + 2);
    }
    LZ_CHECK_INT(lz_sub_accept(NULL, LZ_SUB_SINGLE_FRAME), LZ_EINVAL);
    LZ_CHECK(!lz_message_has_topic(NULL));
    lz_sub_destroy(&sub);
    if (raw) zmq_close(raw);
    lz_context_destroy(&ctx);
}

/* ---- several publishing threads ----------------------------------------------- */

#define MT_THREADS 4
#define MT_PER_THREAD 250

typedef struct {
    lz_pub_t *pub;
    int id;
    int failures;
} mt_arg_t;

static void *mt_publisher(void *self) {
    mt_arg_t *a = self;
    char topic[32];
    snprintf(topic, sizeof topic, "sync.mt.%d", a->id);
    for (int i = 0; i < MT_PER_THREAD; i++) {
        lz_value_t *v = lz_value_object();
        lz_value_object_set_int(v, "t", a->id);
        lz_value_object_set_int(v, "n", i);
        if (lz_pub_publish(a->pub, topic, v) != LZ_OK) a->failures++;
        lz_value_destroy(&v);
    }
    return NULL;
}

LZ_TEST(pubsub_publish_from_many_threads) {
    for (int t = 0; t < NTRANSPORTS; t++) {
        pair_t p;
        if (pair_open(&p, 0, transports[t]) && sync_pair(&p)) {
            lz_metrics_t pub0 = lz_test_metrics(lz_pub_node(p.pub)), sub0 = lz_test_metrics(lz_sub_node(p.sub));
            pthread_t threads[MT_THREADS];
            mt_arg_t args[MT_THREADS];
            for (int i = 0; i < MT_THREADS; i++) {
                args[i] = (mt_arg_t){p.pub, i, 0};
                pthread_create(&threads[i], NULL, mt_publisher, &args[i]);
            }
            int next[MT_THREADS] = {0}, received = 0, out_of_order = 0, bad = 0;
            for (int64_t deadline = lz_test_now_ms() + 10000;
                 received < MT_THREADS * MT_PER_THREAD && lz_test_now_ms() < deadline;) {
                lz_message_t *msg = lz_sub_recv(p.sub, 200);
                if (!msg) continue;
                int64_t tid = lz_value_find_int(lz_message_value(msg), "t", -1);
                int64_t n = lz_value_find_int(lz_message_value(msg), "n", -1);
                char topic[32];
                snprintf(topic, sizeof topic, "sync.mt.%d", (int)tid);
                if (tid < 0 || tid >= MT_THREADS || strcmp(topic, lz_message_topic(msg)) != 0)
                    bad++;
                else if (n != next[tid]++)
                    out_of_order++;
                received++;
                lz_message_destroy(&msg);
            }
            for (int i = 0; i < MT_THREADS; i++) {
                pthread_join(threads[i], NULL);
                LZ_CHECK_INT(args[i].failures, 0);
                LZ_CHECK_INT(next[i], MT_PER_THREAD);
            }
            LZ_CHECK_INT(received, MT_THREADS * MT_PER_THREAD);
            LZ_CHECK_INT(bad, 0);
            LZ_CHECK_INT(out_of_order, 0); // each thread's messages keep their order
            lz_metrics_t pub1 = lz_test_metrics(lz_pub_node(p.pub)), sub1 = lz_test_metrics(lz_sub_node(p.sub));
            LZ_CHECK_INT(pub1.messages_sent - pub0.messages_sent, MT_THREADS * MT_PER_THREAD);
            LZ_CHECK_INT(sub1.messages_received - sub0.messages_received, MT_THREADS * MT_PER_THREAD);
            LZ_CHECK_INT(sub1.bytes_received - sub0.bytes_received, pub1.bytes_sent - pub0.bytes_sent);
            LZ_CHECK_INT(pub1.outbound_dropped, 0);
        }
        pair_close(&p);
    }
}

// Many subscribers on one publisher each get every message.
LZ_TEST(pubsub_fan_out) {
    pair_t p;
    if (pair_open(&p, 0, "tcp") && sync_pair(&p)) {
        lz_sub_t *sub2 = lz_sub_new(p.ctx, lz_node_endpoint(lz_pub_node(p.pub)));
        LZ_CHECK(sub2 != NULL);
        pair_t p2 = {.ctx = p.ctx, .pub = p.pub, .sub = sub2};
        if (sub2 && sync_pair(&p2)) {
            for (lz_message_t *m; (m = lz_sub_recv(p.sub, 50));) lz_message_destroy(&m);
            for (int i = 0; i < 5; i++) publish_n(p.pub, "sync.fan", i);
            for (int i = 0; i < 5; i++) {
                lz_message_t *a = lz_sub_recv(p.sub, 5000), *b = lz_sub_recv(sub2, 5000);
                LZ_CHECK(a && b);
                if (a) LZ_CHECK_INT(lz_value_find_int(lz_message_value(a), "n", -1), i);
                if (b) LZ_CHECK_INT(lz_value_find_int(lz_message_value(b), "n", -1), i);
                lz_message_destroy(&a);
                lz_message_destroy(&b);
            }
        }
        lz_sub_destroy(&sub2);
    }
    pair_close(&p);
}

/* ---- stop and destroy from the subscriber's own handler ---------------------- */

// A handler that stops its own subscriber on its first message, then holds
// that message until released.
typedef struct {
    lz_sub_t *sub;
    atomic_int calls;
    atomic_int stop_rc; // what the first call's lz_sub_stop returned; 1 until it did
    atomic_bool release;
} self_stop_t;

static int stop_own_sub(const lz_message_t *msg, void *arg) {
    (void)msg;
    self_stop_t *st = arg;
    if (atomic_fetch_add(&st->calls, 1) > 0) return 0;
    atomic_store(&st->stop_rc, lz_sub_stop(st->sub));
    LZ_TEST_WAIT_UNTIL(atomic_load(&st->release), 10000);
    return 0;
}

// A start from another thread, and when it returned.
typedef struct {
    lz_sub_t *sub;
    int rc;
    atomic_bool returned;
} starter_t;

static void *start_and_tell(void *arg) {
    starter_t *starter = arg;
    starter->rc = lz_sub_start(starter->sub);
    atomic_store(&starter->returned, true);
    return NULL;
}

// stop_from_handler_case: a handler stops its own subscriber (concurrency
// 1: on the receiver thread; 4: on a worker). Joining there would wait for
// the handler's own thread, so the stop only asks: it returns LZ_OK at
// once, nothing more is handled, and a start from another thread first
// waits for the handler to return and joins the threads it leaves. Before,
// the stop returned having stopped nothing (1), or freed the pool under
// the worker it ran on (4).
static void stop_from_handler_case(int concurrency) {
    pair_t p;
    self_stop_t st = {.stop_rc = 1};
    if (pair_open(&p, concurrency, "inproc") && sync_pair(&p)) {
        st.sub = p.sub;
        LZ_CHECK_INT(lz_sub_on(p.sub, "sync.stop", stop_own_sub, &st), LZ_OK);
        LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
        publish_n(p.pub, "sync.stop", 0);
        LZ_TEST_WAIT_UNTIL(atomic_load(&st.stop_rc) != 1, 5000);
        LZ_CHECK_INT(atomic_load(&st.stop_rc), LZ_OK); // its handler still runs
        for (int i = 1; i <= 3; i++) publish_n(p.pub, "sync.stop", i);
        starter_t starter = {p.sub, 1, false};
        pthread_t thread;
        LZ_CHECK_INT(pthread_create(&thread, NULL, start_and_tell, &starter), 0);
        lz_test_sleep_ms(100 * LZ_TEST_SLOWDOWN);
        LZ_CHECK(!atomic_load(&starter.returned)); // waiting for the handler's thread
        LZ_CHECK_INT(atomic_load(&st.calls), 1);   // stopped: the later messages were not handled
        atomic_store(&st.release, true);
        pthread_join(thread, NULL);
        LZ_CHECK_INT(starter.rc, LZ_OK);
        publish_n(p.pub, "sync.stop", 4);
        LZ_TEST_WAIT_UNTIL(atomic_load(&st.calls) >= 2, 5000);
        LZ_CHECK(atomic_load(&st.calls) >= 2); // running again
    }
    atomic_store(&st.release, true);
    pair_close(&p); // destroyed while started
}

LZ_TEST(pubsub_stop_from_own_handler_on_the_receiver) { stop_from_handler_case(1); }
LZ_TEST(pubsub_stop_from_own_handler_on_a_worker) { stop_from_handler_case(4); }

// A handler that tries to destroy its own subscriber on its first
// message, and records whether that was refused as it should be.
typedef struct {
    lz_sub_t **sub_p;
    atomic_int calls, ended; // ended: calls that have returned
    atomic_bool refused;
} self_destroy_t;

static int destroy_own_sub(const lz_message_t *msg, void *arg) {
    (void)msg;
    self_destroy_t *sd = arg;
    if (atomic_fetch_add(&sd->calls, 1) == 0) {
        lz_sub_destroy(sd->sub_p);
        atomic_store(&sd->refused,
                     *sd->sub_p && lz_last_error_code() == LZ_ESTATE && strstr(lz_last_error(), "lz_sub_destroy"));
    }
    atomic_fetch_add(&sd->ended, 1);
    return 0;
}

// destroy_from_handler_case: a destroy from the subscriber's own handler
// would free what the handler's thread still uses: it is refused (logged,
// the pointer kept) and the subscriber keeps working. Before, it freed the
// subscriber under its running receiver or worker.
static void destroy_from_handler_case(int concurrency) {
    lz_context_t *ctx = lz_test_pattern_context(concurrency);
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), lz_test_log_capture, &log), LZ_OK);
    pair_t p;
    self_destroy_t sd = {.sub_p = &p.sub};
    if (pair_open_in(&p, ctx, "inproc") && sync_pair(&p)) {
        LZ_CHECK_INT(lz_sub_on(p.sub, "sync.destroy", destroy_own_sub, &sd), LZ_OK);
        LZ_CHECK_INT(lz_sub_start(p.sub), LZ_OK);
        publish_n(p.pub, "sync.destroy", 0);
        LZ_TEST_WAIT_UNTIL(atomic_load(&sd.calls) == 1, 5000);
        publish_n(p.pub, "sync.destroy", 1);
        // With a pool the second call may run while the first still
        // destroys: wait for both to have returned before reading refused.
        LZ_TEST_WAIT_UNTIL(atomic_load(&sd.ended) == 2, 5000);
        LZ_CHECK_INT(atomic_load(&sd.ended), 2); // still handling
        LZ_CHECK(atomic_load(&sd.refused));
        LZ_CHECK_INT(lz_test_logged(&log, "ERROR sub: lz_sub_destroy: called from its own handler"), 1);
    }
    pair_close(&p);
    LZ_CHECK(p.sub == NULL);
}

LZ_TEST(pubsub_destroy_from_own_handler_on_the_receiver) { destroy_from_handler_case(1); }
LZ_TEST(pubsub_destroy_from_own_handler_on_a_worker) { destroy_from_handler_case(4); }

// What a handler run by lz_sub_dispatch got back from its own subscriber.
typedef struct {
    lz_sub_t *sub;
    atomic_int calls;
    int destroy_rc, start_rc, stop_rc;
} in_loop_t;

static int stop_own_loop(const lz_message_t *msg, void *arg) {
    (void)msg;
    in_loop_t *l = arg;
    if (atomic_fetch_add(&l->calls, 1) > 0) return 0;
    lz_sub_t *sub = l->sub;
    lz_sub_destroy(&sub);
    l->destroy_rc = sub ? lz_last_error_code() : LZ_OK;
    l->start_rc = lz_sub_start(l->sub);
    l->stop_rc = lz_sub_stop(l->sub);
    return 0;
}

// In a handler lz_sub_dispatch runs on the caller's thread, a destroy is
// refused as in a threaded one (before: a use-after-free in the loop), a
// start too (its threads would dispatch beside the loop), and a stop ends
// that lz_sub_dispatch after the handler, leaving the other messages
// waiting for the next call (before: it did nothing).
LZ_TEST(pubsub_stop_and_destroy_from_a_caller_loop_handler) {
    pair_t p;
    in_loop_t l = {0};
    if (pair_open(&p, 1, "inproc") && sync_pair(&p)) {
        l.sub = p.sub;
        LZ_CHECK_INT(lz_sub_on(p.sub, "sync.loop", stop_own_loop, &l), LZ_OK);
        for (int i = 0; i < 3; i++) publish_n(p.pub, "sync.loop", i); // inproc: all waiting now
        LZ_CHECK_INT(lz_sub_dispatch(p.sub, 1000), 1);
        LZ_CHECK_INT(l.destroy_rc, LZ_ESTATE);
        LZ_CHECK_INT(l.start_rc, LZ_ESTATE);
        LZ_CHECK_INT(l.stop_rc, LZ_OK);
        LZ_CHECK_INT(lz_sub_dispatch(p.sub, 1000), 2);
        LZ_CHECK_INT(atomic_load(&l.calls), 3);
    }
    pair_close(&p);
}

/* ---- destroy while other threads wait ------------------------------------------ */

// recv_waiters: how many threads wait for the node's socket to receive.
static int recv_waiters(lz_node_t *node) {
    lz__node_lock(node);
    int n = node->waiting[LZ_WAIT_RECV];
    lz__node_unlock(node);
    return n;
}

// A thread waiting with no time limit, in lz_sub_recv or lz_sub_dispatch.
typedef struct {
    lz_sub_t *sub;
    bool dispatch;
    int rc;
    atomic_bool returned;
} forever_t;

static void *wait_forever(void *arg) {
    forever_t *f = arg;
    if (f->dispatch) {
        f->rc = lz_sub_dispatch(f->sub, -1);
    } else {
        lz_message_t *msg = lz_sub_recv(f->sub, -1);
        f->rc = msg ? LZ_OK : lz_last_error_code();
        lz_message_destroy(&msg);
    }
    atomic_store(&f->returned, true);
    return NULL;
}

// A subscriber destroyed while other threads wait in lz_sub_recv(-1) and
// lz_sub_dispatch(-1) ends their waits (LZ_ECLOSED) and frees it once they
// have left. Before, it freed the subscriber under them.
LZ_TEST(pubsub_destroy_while_other_threads_wait) {
    pair_t p;
    if (pair_open(&p, 1, "inproc")) {
        LZ_CHECK_INT(lz_sub_on(p.sub, "sync.none", on_a, &p.seen), LZ_OK);
        forever_t f[2] = {{p.sub, false, 1, false}, {p.sub, true, 1, false}};
        pthread_t thread[2];
        for (int i = 0; i < 2; i++) LZ_CHECK_INT(pthread_create(&thread[i], NULL, wait_forever, &f[i]), 0);
        LZ_TEST_WAIT_UNTIL(recv_waiters(lz_sub_node(p.sub)) == 2, 5000);
        LZ_CHECK_INT(recv_waiters(lz_sub_node(p.sub)), 2);
        lz_sub_destroy(&p.sub);
        LZ_TEST_WAIT_UNTIL(atomic_load(&f[0].returned) && atomic_load(&f[1].returned), 5000);
        for (int i = 0; i < 2; i++) {
            LZ_CHECK(atomic_load(&f[i].returned));
            if (!atomic_load(&f[i].returned)) continue; // left behind: the test failed
            pthread_join(thread[i], NULL);
            LZ_CHECK_INT(f[i].rc, LZ_ECLOSED);
        }
    }
    pair_close(&p);
}

LZ_TEST_MAIN(LZ_CASE(pubsub_json_values), LZ_CASE(pubsub_msgpack_values), LZ_CASE(pubsub_bytes),
             LZ_CASE(pubsub_prefix_filtering), LZ_CASE(pubsub_handlers_longest_prefix_and_default),
             LZ_CASE(pubsub_unrouted_and_failing_handlers_are_counted), LZ_CASE(pubsub_on_twice_subscribes_once),
             LZ_CASE(pubsub_publish_refuses_a_topic_that_is_not_text), LZ_CASE(pubsub_start_concurrency_1),
             LZ_CASE(pubsub_start_concurrency_4), LZ_CASE(pubsub_stop_is_quick_and_clean),
             LZ_CASE(pubsub_stop_accounts_for_queued_messages), LZ_CASE(pubsub_backpressure_reported),
             LZ_CASE(pubsub_caller_loop_with_fd_and_poll), LZ_CASE(pubsub_recv_times_out), LZ_CASE(pubsub_recv_bytes), LZ_CASE(pubsub_plain_publishers_forms),
             LZ_CASE(pubsub_raw_recv_keeps_the_frame),
             LZ_CASE(pubsub_publish_from_many_threads), LZ_CASE(pubsub_fan_out),
             LZ_CASE(pubsub_stop_from_own_handler_on_the_receiver), LZ_CASE(pubsub_stop_from_own_handler_on_a_worker),
             LZ_CASE(pubsub_destroy_from_own_handler_on_the_receiver),
             LZ_CASE(pubsub_destroy_from_own_handler_on_a_worker),
             LZ_CASE(pubsub_stop_and_destroy_from_a_caller_loop_handler),
             LZ_CASE(pubsub_destroy_while_other_threads_wait))
