/* Interop with plain pyzmq peers (the scripts in tests/interop, run with the Python
 * that has pyzmq): the wire formats of pub/sub and push/pull are the
 * Python LiberZMQ's, frame for frame. Every script times out by itself. */
#include <stdbool.h>

#include "lz_test.h"


static lz_context_t *make_context(void) { return LZ_TEST_CONTEXT("zmq.linger=500"); }

static bool python_ready(void) {
    if (access(LZ_PYTHON, X_OK) != 0) {
        fprintf(stderr, "%s not found: interop tests need it\n", LZ_PYTHON);
        lz_test_failures++;
        return false;
    }
    return true;
}

// (a) A plain pyzmq PUB's [topic, json] is received and decoded by lz_sub,
// then taken as bytes by lz_sub_recv_bytes.
LZ_TEST(interop_pyzmq_pub_to_lz_sub) {
    if (!python_ready()) return;
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char pub_ep[128], ctl_ep[128];
    lz_test_ipc_endpoint(pub_ep, sizeof pub_ep);
    lz_test_ipc_endpoint(ctl_ep, sizeof ctl_ep);
    pid_t pid = lz_test_spawn_python("pubsub_pub.py", pub_ep, ctl_ep);
    LZ_CHECK(pid > 0);
    lz_sub_t *sub = lz_sub_new(ctx, pub_ep); // connect before the bind is fine for ipc
    lz_push_t *ctl = lz_push_new(ctx, ctl_ep);
    LZ_CHECK(sub && ctl);
    if (pid > 0 && sub && ctl) {
        LZ_CHECK_INT(lz_sub_subscribe(sub, "interop."), LZ_OK);
        int got = 0;
        int64_t last_seq = -1;
        for (int64_t deadline = lz_test_now_ms() + 8000; got < 3 && lz_test_now_ms() < deadline;) {
            lz_message_t *msg = lz_sub_recv(sub, 200);
            if (!msg) continue;
            got++;
            const lz_value_t *v = lz_message_value(msg);
            LZ_CHECK_STR(lz_message_topic(msg), "interop.py");
            LZ_CHECK_INT(lz_value_type(v), LZ_VALUE_OBJECT);
            int64_t seq = lz_value_find_int(v, "seq", -1);
            LZ_CHECK(seq > last_seq);
            last_seq = seq;
            LZ_CHECK_STR(lz_value_find_string(v, "text", NULL), "h\xc3\xa9llo \xe2\x98\x83");
            LZ_CHECK_INT(lz_value_find_int(v, "big", 0), INT64_C(9007199254740992));
            LZ_CHECK_INT(lz_value_find_int(v, "neg", 0), -17);
            const lz_value_t *list = lz_value_get(v, "list");
            LZ_CHECK_INT(lz_value_size(list), 6);
            LZ_CHECK_INT(lz_value_get_int(lz_value_at(list, 0)), 1);
            LZ_CHECK_INT(lz_value_type(lz_value_at(list, 1)), LZ_VALUE_DOUBLE);
            LZ_CHECK(lz_value_get_double(lz_value_at(list, 1)) == 2.5);
            LZ_CHECK_INT(lz_value_type(lz_value_at(list, 2)), LZ_VALUE_NULL);
            LZ_CHECK_INT(lz_value_type(lz_value_at(list, 3)), LZ_VALUE_BOOL);
            LZ_CHECK(lz_value_get_bool(lz_value_at(list, 3)) && !lz_value_get_bool(lz_value_at(list, 4)));
            LZ_CHECK_STR(lz_value_get_string(lz_value_at(list, 5), NULL), "x");
            const lz_value_t *nested = lz_value_get(lz_value_get(v, "nested"), "a");
            LZ_CHECK_INT(lz_value_type(lz_value_at(lz_value_get(nested, "b"), 0)), LZ_VALUE_OBJECT);
            lz_message_destroy(&msg);
        }
        LZ_CHECK_INT(got, 3);
        // The same frames through lz_sub_recv_bytes: the topic as sent and
        // pyzmq's JSON text untouched (json.dumps escapes non-ASCII).
        char topic[32], payload[512];
        size_t topic_size = sizeof topic, size = sizeof payload - 1;
        LZ_CHECK_INT(lz_sub_recv_bytes(sub, topic, &topic_size, payload, &size, 5000), LZ_OK);
        LZ_CHECK_STR(topic, "interop.py");
        LZ_CHECK_INT(topic_size, 10);
        LZ_CHECK(size < sizeof payload - 1);
        payload[size < sizeof payload - 1 ? size : 0] = '\0';
        LZ_CHECK(strstr(payload, "\"text\": \"h\\u00e9llo \\u2603\"") != NULL);
        lz_value_t *v = lz_value_from_json(payload, size < sizeof payload - 1 ? size : 0);
        LZ_CHECK(lz_value_find_int(v, "seq", -1) > last_seq);
        lz_value_destroy(&v);
        lz_metrics_t m;
        lz_node_metrics(lz_sub_node(sub), &m);
        LZ_CHECK_INT(m.inbound_dropped, 0);
        LZ_CHECK_INT(lz_push_send_bytes(ctl, "stop", 4), LZ_OK);
    }
    if (pid > 0) LZ_CHECK_INT(lz_test_wait(pid, 12000), 0);
    lz_push_destroy(&ctl);
    lz_sub_destroy(&sub);
    lz_context_destroy(&ctx);
}

static lz_value_t *expected_value(int seq) {
    const char *json = "{\"name\":\"liberzmq\",\"pi\":3.5,\"ok\":true,\"none\":null,"
                       "\"list\":[1,\"two\",{\"k\":\"v\"}],\"text\":\"h\\u00e9llo \\u2603\","
                       "\"doubles\":[43210.5,1e-05,1e+16,2.0,0.1,-1324845932296262.2,1.2345678901234568e+20]}";
    lz_value_t *v = lz_value_from_json(json, strlen(json));
    LZ_CHECK(v != NULL);
    lz_value_object_set_int(v, "seq", seq);
    return v;
}

// (b) lz_pub's messages reach a plain pyzmq SUB as [topic, json payload].
// publish_seq publishes message seq on a topic the script skips and on its own.
static void publish_seq(void *pub, int seq) {
    lz_value_t *v = expected_value(seq);
    LZ_CHECK_INT(lz_pub_publish(pub, "zzz.not.subscribed", v), LZ_OK);
    LZ_CHECK_INT(lz_pub_publish(pub, "interop.c", v), LZ_OK);
    lz_value_destroy(&v);
}

LZ_TEST(interop_lz_pub_to_pyzmq_sub) {
    if (!python_ready()) return;
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char ep[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_ipc_endpoint(ep, sizeof ep));
    LZ_CHECK(pub != NULL);
    pid_t pid = pub ? lz_test_spawn_python("pubsub_sub.py", ep, NULL) : -1;
    LZ_CHECK(pid > 0);
    // Publish until the script has its three messages and exits (the slow
    // joiner loses the first ones); about 10 s at most.
    if (pid > 0) LZ_CHECK_INT(lz_test_feed(pid, 1000, publish_seq, pub), 0);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

// The Python LiberZMQ 1.0.0 names a task "<type>_<microseconds>_<count>".
static const char *const TASK_ID = "resize_1764806400123456_0";

typedef struct {
    int resize, stop, other;
    int64_t width, height, priority;
    double timestamp;
    char id[64], path[64];
} tasks_t;

static int on_resize(const lz_message_t *msg, void *arg) {
    tasks_t *t = arg;
    t->resize++;
    const lz_value_t *data = lz_message_value(msg);
    t->width = lz_value_find_int(data, "width", -1);
    t->height = lz_value_find_int(data, "height", -1);
    snprintf(t->path, sizeof t->path, "%s", lz_value_find_string(data, "path", ""));
    t->priority = lz_message_priority(msg);
    t->timestamp = lz_message_timestamp(msg);
    snprintf(t->id, sizeof t->id, "%s", lz_message_id(msg));
    return 0;
}

static int on_stop(const lz_message_t *msg, void *arg) {
    ((tasks_t *)arg)->stop++;
    return 0;
}

static int on_other(const lz_message_t *msg, void *arg) {
    ((tasks_t *)arg)->other++;
    return 0;
}

// (c) A pyzmq PUSH writing the Python LiberZMQ task frame by hand is
// dispatched on "type" by lz_pull.
LZ_TEST(interop_pyzmq_push_to_lz_pull) {
    if (!python_ready()) return;
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char ep[128];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_ipc_endpoint(ep, sizeof ep));
    LZ_CHECK(pull != NULL);
    tasks_t t;
    memset(&t, 0, sizeof t);
    pid_t pid = -1;
    if (pull) {
        LZ_CHECK_INT(lz_pull_on(pull, "resize", on_resize, &t), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(pull, "stop", on_stop, &t), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(pull, on_other, &t), LZ_OK);
        pid = lz_test_spawn_python("pushpull_push.py", ep, TASK_ID);
        LZ_CHECK(pid > 0);
    }
    if (pid > 0) {
        double now = (double)time(NULL);
        for (int64_t deadline = lz_test_now_ms() + 8000; t.stop == 0 && lz_test_now_ms() < deadline;)
            LZ_CHECK(lz_pull_dispatch(pull, 100) >= 0);
        LZ_CHECK_INT(t.resize, 1);
        LZ_CHECK_INT(t.stop, 1);
        LZ_CHECK_INT(t.other, 0);
        LZ_CHECK_INT(t.width, 640);
        LZ_CHECK_INT(t.height, 480);
        LZ_CHECK_STR(t.path, "/img/\xc3\xa9t\xc3\xa9.png");
        LZ_CHECK_INT(t.priority, 1);
        LZ_CHECK_STR(t.id, TASK_ID);
        LZ_CHECK(t.timestamp > now - 30 && t.timestamp < now + 30);
        LZ_CHECK_INT(lz_test_wait(pid, 8000), 0);
        lz_metrics_t m;
        lz_node_metrics(lz_pull_node(pull), &m);
        LZ_CHECK_INT(m.messages_received, 2);
        LZ_CHECK_INT(m.inbound_dropped, 0);
    }
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

// (d) lz_push's frames reach a pyzmq PULL as one JSON object with exactly
// the keys type, data, priority, timestamp, task_id.
LZ_TEST(interop_lz_push_to_pyzmq_pull) {
    if (!python_ready()) return;
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    pid_t pid = lz_test_spawn_python("pushpull_pull.py", ep, NULL);
    LZ_CHECK(pid > 0);
    lz_push_t *push = lz_push_new(ctx, ep); // queued until the script binds
    LZ_CHECK(push != NULL);
    if (push && pid > 0) {
        const char *json = "{\"width\":640,\"tags\":[\"a\",\"b\"],\"ratio\":0.5,\"none\":null}";
        lz_value_t *data = lz_value_from_json(json, strlen(json));
        LZ_CHECK_INT(lz_push_send(push, "resize", data, 3), LZ_OK);
        LZ_CHECK_INT(lz_push_send(push, NULL, NULL, 0), LZ_OK);
        lz_value_destroy(&data);
    }
    if (pid > 0) LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
    lz_push_destroy(&push);
    lz_context_destroy(&ctx);
}

static int declined(const lz_message_t *task, void *arg) {
    (void)task;
    (void)arg;
    return lz_set_error(LZ_EVALIDATION, "card declined");
}

// (e) A Python service's task fails in our puller, once and on its retry,
// and the Python side reads the dead letter we publish: original_task is
// its task key for key (host_info and its own task_id form included).
LZ_TEST(interop_dead_letter_to_pyzmq_sub) {
    if (!python_ready()) return;
    lz_context_t *ctx = make_context();
    if (!ctx) return;
    char pull_ep[128], pub_ep[128];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_ipc_endpoint(pull_ep, sizeof pull_ep));
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_ipc_endpoint(pub_ep, sizeof pub_ep));
    LZ_CHECK(pull != NULL && pub != NULL);
    if (pull && pub) {
        LZ_CHECK_INT(lz_pull_set_retry(pull, 1, 10), LZ_OK);
        LZ_CHECK_INT(lz_pull_set_dead_letter(pull, pub, NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(pull, "charge", declined, NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(pull, 1), LZ_OK);
        pid_t pid = lz_test_spawn_python("dead_letter_peer.py", pull_ep, pub_ep);
        LZ_CHECK(pid > 0);
        if (pid > 0) LZ_CHECK_INT(lz_test_wait(pid, 20000), 0);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(pull)).dead_letters, 1);
    }
    lz_pull_destroy(&pull); // before the publisher it borrows
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(interop_pyzmq_pub_to_lz_sub), LZ_CASE(interop_lz_pub_to_pyzmq_sub),
             LZ_CASE(interop_pyzmq_push_to_lz_pull), LZ_CASE(interop_lz_push_to_pyzmq_pull),
             LZ_CASE(interop_dead_letter_to_pyzmq_sub))
