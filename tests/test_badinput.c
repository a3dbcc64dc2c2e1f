/* Bad input from plain libzmq peers: garbage, empty frames, wrong frame
 * counts, oversize messages, invalid JSON, wrong types and invalid UTF-8.
 * After each one the node keeps serving: a good message still arrives, and
 * inbound_dropped counts every message it had to drop. */
#include <stdatomic.h>
#include <stdbool.h>
#include <zmq.h>

#include <pthread.h>

#include "core/envelope.h"
#include "lz_test.h"

#define MAX_MESSAGE 4096


static lz_context_t *make_context(void) {
    // drops are logged at WARNING: keep the test output readable
    return LZ_TEST_CONTEXT("zmq.linger=0", "zmq.max_message_size=" LZ_STR(MAX_MESSAGE), "zmq.reconnect_interval=20",
                           "logging.level=error");
}


// A raw libzmq socket of type, bound on tcp; its endpoint goes to ep.
static void *raw_bound(lz_context_t *ctx, int type, char *ep, size_t size) {
    void *s = lz_test_plain_socket(lz_context_zmq(ctx), type, -1, "@tcp://127.0.0.1:*");
    int timeout = 2000;
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    lz_test_bound_endpoint(s, ep, size);
    return s;
}

// send_frames sends n frames (data[i], size[i]) as one message.
static void send_frames(void *s, const void *const *data, const size_t *size, size_t n) {
    for (size_t i = 0; i < n; i++)
        LZ_CHECK((size_t)zmq_send(s, data[i], size[i], i + 1 < n ? ZMQ_SNDMORE : 0) == size[i]);
}

static void send2(void *s, const void *topic, size_t tsize, const void *payload, size_t psize) {
    const void *data[] = {topic, payload};
    size_t size[] = {tsize, psize};
    send_frames(s, data, size, 2);
}

/* ---- subscriber ----------------------------------------------------------- */

static int good_seq;

static void send_good_pub(void *pub, int n) {
    char payload[64];
    int len = snprintf(payload, sizeof payload, "{\"n\":%d}", n);
    send2(pub, "good", 4, payload, (size_t)len);
}

// expect_good_sub sends a good message and checks it is the next one the
// subscriber returns (whatever bad ones came before were skipped).
static void expect_good_sub(void *pub, lz_sub_t *sub, const char *after, int line) {
    int n = ++good_seq;
    send_good_pub(pub, n);
    lz_message_t *msg = lz_sub_recv(sub, 5000);
    bool ok = msg && strcmp(lz_message_topic(msg), "good") == 0 &&
              lz_value_find_int(lz_message_value(msg), "n", -1) == n;
    lz_test_checks++;
    if (!ok) {
        lz_test_failures++;
        fprintf(stderr, "test_badinput.c:%d: after %s: expected good message %d, got %s (%s)\n", line, after,
                n, msg ? lz_message_topic(msg) : "nothing", lz_last_error());
    }
    lz_message_destroy(&msg);
}

// resync_sub sends good messages until one gets through (after the
// connection was dropped and made again), then drains the extra ones.
static bool resync_sub(void *pub, lz_sub_t *sub) {
    bool ok = false;
    for (int64_t deadline = lz_test_now_ms() + 5000; !ok && lz_test_now_ms() < deadline;) {
        send_good_pub(pub, 0);
        lz_message_t *msg = lz_sub_recv(sub, 20);
        ok = msg != NULL;
        lz_message_destroy(&msg);
    }
    for (lz_message_t *msg; (msg = lz_sub_recv(sub, 50));) lz_message_destroy(&msg);
    LZ_CHECK(ok);
    return ok;
}

#define CHECK_DROPPED(node, before, n)                                                              \
    do {                                                                                            \
        lz_metrics_t m_ = lz_test_metrics(node);                                                         \
        LZ_CHECK_INT(m_.inbound_dropped - (before).inbound_dropped, (n));                           \
        (before) = m_;                                                                              \
    } while (0)

LZ_TEST(badinput_subscriber_survives_raw_publisher) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char ep[256];
    void *pub = raw_bound(ctx, ZMQ_PUB, ep, sizeof ep);
    lz_sub_t *sub = lz_sub_new(ctx, ep);
    LZ_CHECK(sub != NULL);
    if (!sub || !pub) goto out;
    LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
    if (!resync_sub(pub, sub)) goto out;
    lz_node_t *node = lz_sub_node(sub);
    lz_metrics_t before = lz_test_metrics(node);

    // Garbage bytes as the payload.
    static const unsigned char garbage[] = {0xff, 0xfe, 0x00, 0x01, 0x80, 0x7f, '{', '[', 0xc3};
    send2(pub, "t", 1, garbage, sizeof garbage);
    expect_good_sub(pub, sub, "garbage payload", __LINE__);
    CHECK_DROPPED(node, before, 1);

    // Empty frames: an empty topic with an empty payload, then an empty payload.
    send2(pub, "", 0, "", 0);
    send2(pub, "t", 1, "", 0);
    expect_good_sub(pub, sub, "empty frames", __LINE__);
    CHECK_DROPPED(node, before, 2);

    // One frame only, empty or not.
    LZ_CHECK_INT(zmq_send(pub, "lonely", 6, 0), 6);
    LZ_CHECK_INT(zmq_send(pub, "", 0, 0), 0);
    expect_good_sub(pub, sub, "1-frame messages", __LINE__);
    CHECK_DROPPED(node, before, 2);

    // 100 frames: [topic, payload, 98 extension frames]. Extension frames
    // are ignored (envelope.h), so it is delivered, and the message after it
    // starts on its own boundary.
    {
        const void *data[100];
        size_t size[100];
        data[0] = "many";
        size[0] = 4;
        data[1] = "{\"n\":-100}";
        size[1] = strlen(data[1]);
        for (int i = 2; i < 100; i++) {
            data[i] = "xx";
            size[i] = 2;
        }
        send_frames(pub, data, size, 100);
        lz_message_t *msg = lz_sub_recv(sub, 5000);
        LZ_CHECK(msg != NULL);
        if (msg) {
            LZ_CHECK_STR(lz_message_topic(msg), "many");
            LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "n", 0), -100);
        }
        lz_message_destroy(&msg);
        // A bad 100-frame message: payload not JSON.
        data[1] = "not json";
        size[1] = 8;
        send_frames(pub, data, size, 100);
        expect_good_sub(pub, sub, "100-frame messages", __LINE__);
        CHECK_DROPPED(node, before, 1);
    }

    // Invalid JSON of several kinds.
    const char *bad_json[] = {"{\"a\":", "{\"a\" 1}", "[1,2", "nul", "{\"a\":1}}", "\"unterminated",
                              "{'single':1}", "01x", "{\"s\":\"\xff\xfe\"}"};
    const size_t nbad = sizeof bad_json / sizeof bad_json[0];
    for (size_t i = 0; i < nbad; i++) send2(pub, "json", 4, bad_json[i], strlen(bad_json[i]));
    expect_good_sub(pub, sub, "invalid JSON", __LINE__);
    CHECK_DROPPED(node, before, nbad);

    // Invalid UTF-8 topics, and a topic with a NUL byte.
    static const char *const bad_topics[] = {"\xff\xfe", "caf\xc3", "\xc0\xaf", "\xed\xa0\x80", "a\0b"};
    static const size_t bad_topic_size[] = {2, 4, 2, 3, 3};
    for (int i = 0; i < 5; i++) send2(pub, bad_topics[i], bad_topic_size[i], "{}", 2);
    expect_good_sub(pub, sub, "invalid UTF-8 topics", __LINE__);
    CHECK_DROPPED(node, before, 5);
    // Valid UTF-8 in a topic is fine.
    send2(pub, "caf\xc3\xa9", 5, "1", 1);
    lz_message_t *msg = lz_sub_recv(sub, 5000);
    LZ_CHECK(msg != NULL);
    if (msg) LZ_CHECK_STR(lz_message_topic(msg), "caf\xc3\xa9");
    lz_message_destroy(&msg);

    // Good messages still count as received and nothing else was dropped.
    LZ_CHECK_INT(lz_test_metrics(node).inbound_dropped, before.inbound_dropped);
    LZ_CHECK_INT(lz_test_metrics(node).errors, 0);
out:
    lz_sub_destroy(&sub);
    if (pub) zmq_close(pub);
    lz_context_destroy(&ctx);
}

// Oversize, subscriber bound: libzmq drops the message and the connection
// at the transport; the node never sees it, the publisher connects again,
// and the node keeps serving.
LZ_TEST(badinput_oversize_to_bound_subscriber) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    lz_sub_t *sub = lz_sub_new(ctx, "@tcp://127.0.0.1:*");
    LZ_CHECK(sub != NULL);
    void *pub = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_PUB, -1, NULL);
    int ivl = 20;
    zmq_setsockopt(pub, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    if (sub && zmq_connect(pub, lz_node_endpoint(lz_sub_node(sub))) == 0) {
        LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
        if (resync_sub(pub, sub)) {
            lz_node_t *node = lz_sub_node(sub);
            lz_metrics_t m0 = lz_test_metrics(node);
            static char big[MAX_MESSAGE * 4];
            memset(big, '1', sizeof big); // digits: JSON, were it delivered and in range
            send2(pub, "big", 3, big, sizeof big);
            LZ_CHECK(resync_sub(pub, sub));
            expect_good_sub(pub, sub, "an oversize message", __LINE__);
            lz_metrics_t m1 = lz_test_metrics(node);
            LZ_CHECK(m1.bytes_received - m0.bytes_received < sizeof big); // it never got in
            LZ_CHECK_INT(m1.inbound_dropped, m0.inbound_dropped);
            LZ_CHECK_INT(m1.errors, 0);
            // Just under the limit is fine: a JSON string of that size.
            static char fits[MAX_MESSAGE - 64];
            memset(fits, '2', sizeof fits);
            fits[0] = fits[sizeof fits - 1] = '"';
            send2(pub, "fits", 4, fits, sizeof fits);
            lz_message_t *msg = lz_sub_recv(sub, 5000);
            LZ_CHECK(msg != NULL);
            if (msg) LZ_CHECK_STR(lz_message_topic(msg), "fits");
            lz_message_destroy(&msg);
        }
    }
    zmq_close(pub);
    lz_sub_destroy(&sub);
    lz_context_destroy(&ctx);
}

// Oversize, subscriber connected to two publishers: the offending link is
// dropped by libzmq; the node keeps serving the other publisher.
LZ_TEST(badinput_oversize_to_connected_subscriber) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char ep1[256], ep2[256];
    void *pub1 = raw_bound(ctx, ZMQ_PUB, ep1, sizeof ep1);
    void *pub2 = raw_bound(ctx, ZMQ_PUB, ep2, sizeof ep2);
    char eps[600];
    snprintf(eps, sizeof eps, "%s,%s", ep1, ep2);
    lz_sub_t *sub = lz_sub_new(ctx, eps);
    LZ_CHECK(sub != NULL);
    if (sub && pub1 && pub2) {
        LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
        if (resync_sub(pub1, sub) && resync_sub(pub2, sub)) {
            static char big[MAX_MESSAGE * 4];
            memset(big, '1', sizeof big);
            send2(pub1, "big", 3, big, sizeof big);
            expect_good_sub(pub2, sub, "an oversize message from the other publisher", __LINE__);
            expect_good_sub(pub2, sub, "an oversize message from the other publisher", __LINE__);
            LZ_CHECK_INT(lz_test_metrics(lz_sub_node(sub)).inbound_dropped, 0);
        }
    }
    lz_sub_destroy(&sub);
    if (pub1) zmq_close(pub1);
    if (pub2) zmq_close(pub2);
    lz_context_destroy(&ctx);
}

// The same through a started subscriber with a worker pool: bad messages
// never reach handlers and the receiver thread keeps running.
static int count_good(const lz_message_t *msg, void *arg) {
    if (lz_value_find_int(lz_message_value(msg), "n", -1) >= 0) atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

LZ_TEST(badinput_started_subscriber_survives) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char ep[256];
    void *pub = raw_bound(ctx, ZMQ_PUB, ep, sizeof ep);
    lz_sub_t *sub = lz_sub_new(ctx, ep);
    atomic_int good;
    atomic_init(&good, 0);
    LZ_CHECK(sub != NULL);
    if (sub && pub) {
        LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
        if (resync_sub(pub, sub)) {
            LZ_CHECK_INT(lz_sub_on(sub, "good", count_good, &good), LZ_OK);
            LZ_CHECK_INT(lz_sub_start(sub), LZ_OK);
            lz_metrics_t before = lz_test_metrics(lz_sub_node(sub));
            for (int i = 0; i < 20; i++) {
                send2(pub, "t", 1, "garbage", 7);
                LZ_CHECK_INT(zmq_send(pub, "one", 3, 0), 3);
                send2(pub, "\xff", 1, "{}", 2);
                send_good_pub(pub, i);
            }
            for (int64_t deadline = lz_test_now_ms() + 5000; atomic_load(&good) < 20 && lz_test_now_ms() < deadline;)
                lz_test_sleep_ms(2);
            LZ_CHECK_INT(atomic_load(&good), 20);
            CHECK_DROPPED(lz_sub_node(sub), before, 60);
            LZ_CHECK_INT(lz_sub_stop(sub), LZ_OK);
        }
    }
    lz_sub_destroy(&sub);
    if (pub) zmq_close(pub);
    lz_context_destroy(&ctx);
}

/* ---- puller ----------------------------------------------------------------- */

typedef struct {
    int good, job;
    int64_t last_n, job_priority;
    double job_timestamp;
    char job_id[64];
} pull_seen_t;

static int on_good(const lz_message_t *msg, void *arg) {
    pull_seen_t *s = arg;
    s->good++;
    s->last_n = lz_value_get_int(lz_message_value(msg));
    return 0;
}

static int on_job(const lz_message_t *msg, void *arg) {
    pull_seen_t *s = arg;
    s->job++;
    s->job_priority = lz_message_priority(msg);
    s->job_timestamp = lz_message_timestamp(msg);
    snprintf(s->job_id, sizeof s->job_id, "%s", lz_message_id(msg));
    return 0;
}

static void send_good_task(void *push, int n) {
    char frame[128];
    int len = snprintf(frame, sizeof frame, "{\"type\":\"good\",\"data\":%d,\"priority\":0}", n);
    LZ_CHECK_INT(zmq_send(push, frame, (size_t)len, 0), len);
}

// expect_good_pull sends a good task and dispatches until it ran.
static void expect_good_pull(void *push, lz_pull_t *pull, pull_seen_t *s, const char *after, int line) {
    int n = ++good_seq, before = s->good;
    send_good_task(push, n);
    for (int64_t deadline = lz_test_now_ms() + 5000; s->good == before && lz_test_now_ms() < deadline;)
        LZ_CHECK(lz_pull_dispatch(pull, 100) >= 0);
    lz_test_checks++;
    if (s->good != before + 1 || s->last_n != n) {
        lz_test_failures++;
        fprintf(stderr, "test_badinput.c:%d: after %s: expected good task %d, got %d tasks, last %lld\n", line,
                after, n, s->good - before, (long long)s->last_n);
    }
}

// A peer sending a malformed task every few milliseconds must not keep a
// receive with a timeout waiting past it: each drop leaves the next
// receive only what is left of the caller's timeout.
typedef struct garbage_feed {
    void *push;
    atomic_bool stop;
} garbage_feed_t;

static void *feed_garbage(void *arg) {
    garbage_feed_t *feed = arg;
    static const char *frames[] = {"a", "b"}; // two frames: never a task
    const size_t sizes[] = {1, 1};
    // Two seconds at most: a receive that garbage could stretch then ends
    // late instead of never.
    for (int i = 0; i < 200 && !atomic_load(&feed->stop); i++) {
        send_frames(feed->push, (const void *const *)frames, sizes, 2);
        lz_test_sleep_ms(10);
    }
    return NULL;
}

LZ_TEST(badinput_garbage_does_not_stretch_a_timeout) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(pull != NULL);
    if (!pull) {
        lz_context_destroy(&ctx);
        return;
    }
    garbage_feed_t feed = {.push = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_PUSH, -1,
                                                        lz_node_endpoint(lz_pull_node(pull)))};
    atomic_init(&feed.stop, false);
    pthread_t thread;
    pthread_create(&thread, NULL, feed_garbage, &feed);
    for (int round = 0; round < 2; round++) {
        int64_t t0 = lz_test_now_ms();
        char buf[16];
        size_t size = sizeof buf;
        lz_message_t *msg = NULL;
        int rc = round == 0 ? lz_pull_recv_bytes(pull, buf, &size, 300)
                            : ((msg = lz_pull_recv(pull, 300)) ? LZ_OK : lz_last_error_code());
        int64_t took = lz_test_now_ms() - t0;
        LZ_CHECK_INT(rc, LZ_ETIMEOUT);
        LZ_CHECK(took >= 290 && took < 800); // stretched, it would run to the feed's 2 s
        lz_message_destroy(&msg);
    }
    atomic_store(&feed.stop, true);
    pthread_join(thread, NULL);
    LZ_CHECK(lz_test_metrics(lz_pull_node(pull)).inbound_dropped >= 20);
    zmq_close(feed.push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

LZ_TEST(badinput_puller_survives_raw_pusher) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(pull != NULL);
    if (!pull) {
        lz_context_destroy(&ctx);
        return;
    }
    void *push = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_PUSH, -1, NULL);
    int timeout = 2000, ivl = 20;
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(push, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    LZ_CHECK_INT(zmq_connect(push, lz_node_endpoint(lz_pull_node(pull))), 0);
    pull_seen_t seen;
    memset(&seen, 0, sizeof seen);
    LZ_CHECK_INT(lz_pull_on(pull, "good", on_good, &seen), LZ_OK);
    LZ_CHECK_INT(lz_pull_on(pull, "job", on_job, &seen), LZ_OK); // no default handler
    lz_node_t *node = lz_pull_node(pull);
    expect_good_pull(push, pull, &seen, "nothing", __LINE__);
    lz_metrics_t before = lz_test_metrics(node);

    // Garbage bytes and an empty frame.
    static const unsigned char garbage[] = {0x00, 0xff, 0x13, 0x37, 0x80};
    LZ_CHECK_INT(zmq_send(push, garbage, sizeof garbage, 0), (int)sizeof garbage);
    LZ_CHECK_INT(zmq_send(push, "", 0, 0), 0);
    expect_good_pull(push, pull, &seen, "garbage and an empty frame", __LINE__);
    CHECK_DROPPED(node, before, 2);

    // A task is one frame: two frames, or 100, are dropped whole, even
    // when the first one is a good task.
    {
        const char *task = "{\"type\":\"good\",\"data\":-1}";
        const void *data[100];
        size_t size[100];
        for (int i = 0; i < 100; i++) {
            data[i] = task;
            size[i] = strlen(task);
        }
        send_frames(push, data, size, 2);
        send_frames(push, data, size, 100);
        expect_good_pull(push, pull, &seen, "multi-frame tasks", __LINE__);
        CHECK_DROPPED(node, before, 2);
        LZ_CHECK(seen.last_n != -1);
    }

    // Invalid JSON.
    const char *bad_json[] = {"{\"type\":\"good\"", "{type:good}", "[", "{\"type\":\"good\",\"data\":tru}",
                              "{\"type\":\"good\",\"data\":1}x"};
    const size_t nbad = sizeof bad_json / sizeof bad_json[0];
    for (size_t i = 0; i < nbad; i++) LZ_CHECK_INT(zmq_send(push, bad_json[i], strlen(bad_json[i]), 0), (int)strlen(bad_json[i]));
    expect_good_pull(push, pull, &seen, "invalid JSON", __LINE__);
    CHECK_DROPPED(node, before, nbad);

    // JSON of the wrong shape or types: not an object, a type that is not a
    // string, no type. With no default handler each is counted and dropped.
    const char *wrong[] = {"[1,2,3]", "5", "\"good\"", "{\"type\":5,\"data\":1}", "{\"type\":null}",
                           "{\"type\":[\"good\"]}", "{\"type\":{\"good\":1}}", "{\"data\":1}",
                           "{\"type\":\"nobody\",\"data\":1}", "{\"type\":\"\\u00ff\\u00fe\"}"};
    const size_t nwrong = sizeof wrong / sizeof wrong[0];
    for (size_t i = 0; i < nwrong; i++) LZ_CHECK_INT(zmq_send(push, wrong[i], strlen(wrong[i]), 0), (int)strlen(wrong[i]));
    expect_good_pull(push, pull, &seen, "JSON of wrong types", __LINE__);
    CHECK_DROPPED(node, before, nwrong);
    LZ_CHECK_INT(seen.job, 0);

    // Invalid UTF-8 inside the type string.
    const char *bad_utf8 = "{\"type\":\"go\xff\xfeod\",\"data\":1}";
    LZ_CHECK_INT(zmq_send(push, bad_utf8, strlen(bad_utf8), 0), (int)strlen(bad_utf8));
    expect_good_pull(push, pull, &seen, "invalid UTF-8 in the type", __LINE__);
    CHECK_DROPPED(node, before, 1);

    // A NUL inside the type: the task is dropped, never run by the handler
    // of the text before the NUL ("good").
    const char *nul_type = "{\"type\":\"good\\u0000x\",\"data\":-3}";
    LZ_CHECK_INT(zmq_send(push, nul_type, strlen(nul_type), 0), (int)strlen(nul_type));
    expect_good_pull(push, pull, &seen, "a NUL in the type", __LINE__);
    CHECK_DROPPED(node, before, 1);

    // Envelope fields of the wrong type read as absent; the task still runs.
    const char *odd = "{\"type\":\"job\",\"data\":{},\"priority\":\"high\",\"timestamp\":\"now\",\"task_id\":42}";
    LZ_CHECK_INT(zmq_send(push, odd, strlen(odd), 0), (int)strlen(odd));
    expect_good_pull(push, pull, &seen, "odd envelope fields", __LINE__);
    CHECK_DROPPED(node, before, 0);
    LZ_CHECK_INT(seen.job, 1);
    LZ_CHECK_INT(seen.job_priority, 0);
    LZ_CHECK(seen.job_timestamp == 0);
    LZ_CHECK_STR(seen.job_id, "");

    // Oversize: libzmq drops it at the transport and the connection with it;
    // the pusher reconnects and the puller keeps serving.
    {
        lz_metrics_t m0 = lz_test_metrics(node);
        static char big[MAX_MESSAGE * 4];
        memset(big, ' ', sizeof big);
        memcpy(big, "{\"type\":\"good\",\"data\":-7}", 25);
        LZ_CHECK_INT(zmq_send(push, big, sizeof big, 0), (int)sizeof big);
        // Good tasks sent while the connection is being dropped may be lost
        // with it: send until one gets through.
        int got = seen.good;
        for (int64_t deadline = lz_test_now_ms() + 5000; seen.good == got && lz_test_now_ms() < deadline;) {
            send_good_task(push, 0);
            lz_pull_dispatch(pull, 20);
        }
        LZ_CHECK(seen.good > got);
        while (lz_pull_dispatch(pull, 50) > 0) {
        }
        expect_good_pull(push, pull, &seen, "an oversize task", __LINE__);
        lz_metrics_t m1 = lz_test_metrics(node);
        LZ_CHECK(m1.bytes_received - m0.bytes_received < sizeof big);
        LZ_CHECK(seen.last_n != -7);
        before = m1;
    }
    LZ_CHECK_INT(lz_test_metrics(node).errors, 0);

    // lz_pull_recv skips what does not decode, too.
    LZ_CHECK_INT(zmq_send(push, "garbage", 7, 0), 7);
    send_good_task(push, 4242);
    lz_message_t *msg = lz_pull_recv(pull, 5000);
    LZ_CHECK(msg != NULL);
    if (msg) LZ_CHECK_INT(lz_value_get_int(lz_message_value(msg)), 4242);
    lz_message_destroy(&msg);
    CHECK_DROPPED(node, before, 1);

    zmq_close(push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

// A msgpack puller fed JSON or garbage drops it the same way.
LZ_TEST(badinput_msgpack_puller) {
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    lz_push_t *good = pull ? lz_push_new(ctx, lz_node_endpoint(lz_pull_node(pull))) : NULL;
    LZ_CHECK(pull && good);
    if (pull && good) {
        LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "msgpack"), LZ_OK);
        LZ_CHECK_INT(lz_node_set_serializer(lz_push_node(good), "msgpack"), LZ_OK);
        static const unsigned char truncated[] = {0x85, 0xa4, 't', 'y'}; // a map of 5, cut short
        static const unsigned char reserved[] = {0xc1};                   // never used in msgpack
        LZ_CHECK_INT(lz_push_send_bytes(good, truncated, sizeof truncated), LZ_OK);
        LZ_CHECK_INT(lz_push_send_bytes(good, reserved, sizeof reserved), LZ_OK);
        LZ_CHECK_INT(lz_push_send_bytes(good, "", 0), LZ_OK);
        lz_value_t *v = lz_value_int(99);
        LZ_CHECK_INT(lz_push_send(good, "ok", v, 0), LZ_OK);
        lz_value_destroy(&v);
        lz_message_t *msg = lz_pull_recv(pull, 5000);
        LZ_CHECK(msg != NULL);
        if (msg) {
            LZ_CHECK_STR(lz_message_type(msg), "ok");
            LZ_CHECK_INT(lz_value_get_int(lz_message_value(msg)), 99);
        }
        lz_message_destroy(&msg);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(pull)).inbound_dropped, 3);
    }
    lz_push_destroy(&good);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

/* ---- logging of drops ------------------------------------------------------ */

typedef struct {
    pthread_mutex_t lock;
    int warnings;
    bool summary_seen;  // a record said how many drops were not logged
    uint64_t accounted; // drops logged plus drops a summary said were not
} drop_log_t;

// unlogged_count reads N from a summary "... N more drop(s) not logged".
static uint64_t unlogged_count(const char *message) {
    const char *end = strstr(message, " more drop(s) not logged");
    if (!end) return 0;
    const char *digits = end;
    while (digits > message && digits[-1] >= '0' && digits[-1] <= '9') digits--;
    return strtoull(digits, NULL, 10);
}

static void on_log(lz_log_level_t level, const char *component, const char *message, void *arg) {
    drop_log_t *log = arg;
    if (level != LZ_LOG_WARNING || strcmp(component, "pull") != 0) return;
    uint64_t unlogged = unlogged_count(message);
    pthread_mutex_lock(&log->lock);
    log->warnings++;
    if (unlogged) log->summary_seen = true;
    log->accounted += unlogged + (strncmp(message, "dropped", 7) == 0); // a close summary drops nothing itself
    pthread_mutex_unlock(&log->lock);
}

static bool wait_dropped(lz_pull_t *pull, uint64_t want) {
    for (int64_t deadline = lz_test_now_ms() + 5000; lz_test_now_ms() < deadline; lz_test_sleep_ms(2)) {
        lz_message_t *msg = lz_pull_recv(pull, 10); // drives the receive; garbage never returns
        lz_message_destroy(&msg);
        if (lz_test_metrics(lz_pull_node(pull)).inbound_dropped >= want) return true;
    }
    return false;
}

// A puller whose context logs to a drop_log_t, and a plain PUSH socket
// connected to it that sends it garbage.
typedef struct {
    lz_context_t *ctx;
    lz_pull_t *pull;
    void *push;
    drop_log_t log;
} drop_rig_t;

static bool drop_rig_open(drop_rig_t *rig, const char *endpoint) {
    memset(rig, 0, sizeof *rig);
    pthread_mutex_init(&rig->log.lock, NULL);
    rig->ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=warning");
    char bind[64];
    snprintf(bind, sizeof bind, "@%s", endpoint);
    rig->pull = rig->ctx ? lz_pull_new(rig->ctx, bind) : NULL;
    rig->push = rig->ctx ? zmq_socket(lz_context_zmq(rig->ctx), ZMQ_PUSH) : NULL;
    return rig->pull && rig->push && lz_logger_to_callback(lz_context_logger(rig->ctx), on_log, &rig->log) == LZ_OK &&
           zmq_connect(rig->push, endpoint) == 0;
}

static void drop_rig_send_garbage(drop_rig_t *rig, int count) {
    for (int i = 0; i < count; i++) LZ_CHECK_INT(zmq_send(rig->push, "{bad", 4, 0), 4);
}

static void drop_rig_close(drop_rig_t *rig) {
    if (rig->push) zmq_close(rig->push);
    lz_pull_destroy(&rig->pull);
    lz_context_destroy(&rig->ctx);
    pthread_mutex_destroy(&rig->log.lock);
}

// A peer sending garbage must not flood the log: every drop is counted, but
// at most one is logged per second, and the next record says how many were
// not.
LZ_TEST(badinput_drop_logging_is_rate_limited) {
    drop_rig_t rig;
    if (drop_rig_open(&rig, "inproc://drop-log")) {
        int64_t t0 = lz_test_now_ms();
        drop_rig_send_garbage(&rig, 200);
        LZ_CHECK(wait_dropped(rig.pull, 200));
        int64_t seconds = (lz_test_now_ms() - t0) / 1000 + 2; // second boundaries crossed, at most
        pthread_mutex_lock(&rig.log.lock);
        LZ_CHECK(rig.log.warnings >= 1);
        LZ_CHECK(rig.log.warnings <= seconds);
        pthread_mutex_unlock(&rig.log.lock);
        lz_test_sleep_ms(1100);
        drop_rig_send_garbage(&rig, 1);
        LZ_CHECK(wait_dropped(rig.pull, 201));
        pthread_mutex_lock(&rig.log.lock);
        LZ_CHECK(rig.log.summary_seen);
        pthread_mutex_unlock(&rig.log.lock);
    }
    drop_rig_close(&rig);
}

// The drops after the last logged one are not lost from the log either:
// destroying the node says how many there were, so the log accounts for
// every drop.
LZ_TEST(badinput_unlogged_drops_are_reported_at_close) {
    drop_rig_t rig;
    if (drop_rig_open(&rig, "inproc://drop-close")) {
        drop_rig_send_garbage(&rig, 50);
        LZ_CHECK(wait_dropped(rig.pull, 50));
        lz_pull_destroy(&rig.pull);
        pthread_mutex_lock(&rig.log.lock);
        LZ_CHECK(rig.log.summary_seen);
        LZ_CHECK_INT(rig.log.accounted, 50);
        pthread_mutex_unlock(&rig.log.lock);
    }
    drop_rig_close(&rig);
}

// The topic check reads plain ASCII a word at a time: whatever the length
// and wherever a NUL, a stray byte or a UTF-8 character falls (inside a
// word, across two, in the overlapping last one), it agrees with the rule
// itself, UTF-8 without NUL.
LZ_TEST(badinput_topic_check_agrees_at_every_position) {
    static const struct {
        const char *bytes;
        size_t size;
    } inserts[] = {{"\0", 1}, {"\x80", 1}, {"\xff", 1}, {"\xc3\xa9", 2}, {"\xc3", 1}, {"\xe2\x82\xac", 3}, {"\x7f", 1}};
    unsigned char topic[48];
    int checked = 0;
    for (size_t size = 0; size <= 40; size++) {
        memset(topic, 'a', sizeof topic);
        LZ_CHECK(lz__topic_text(topic, size));
        for (size_t k = 0; k < sizeof inserts / sizeof inserts[0]; k++) {
            for (size_t at = 0; at + inserts[k].size <= size; at++) {
                memset(topic, 'a', sizeof topic);
                memcpy(topic + at, inserts[k].bytes, inserts[k].size);
                bool expected = !memchr(topic, 0, size) && lz__utf8_valid(topic, size);
                if (lz__topic_text(topic, size) != expected) {
                    printf("  size %zu, insert %zu at %zu: got %d\n", size, k, at, !expected);
                    LZ_CHECK(false);
                }
                checked++;
            }
        }
    }
    LZ_CHECK(checked > 3000);
}

LZ_TEST_MAIN(LZ_CASE(badinput_topic_check_agrees_at_every_position), LZ_CASE(badinput_unlogged_drops_are_reported_at_close),
             LZ_CASE(badinput_subscriber_survives_raw_publisher), LZ_CASE(badinput_oversize_to_bound_subscriber),
             LZ_CASE(badinput_oversize_to_connected_subscriber), LZ_CASE(badinput_started_subscriber_survives),
             LZ_CASE(badinput_puller_survives_raw_pusher), LZ_CASE(badinput_garbage_does_not_stretch_a_timeout), LZ_CASE(badinput_msgpack_puller),
             LZ_CASE(badinput_drop_logging_is_rate_limited))
