/* Damaged input: the JSON and MessagePack codecs and the task and request
 * envelope readers get valid documents with random damage (tests/
 * lz_mutate.h, a fixed seed, so a failure repeats). Whatever they accept
 * must re-encode to a fixed point; whatever they refuse must come back as
 * the documented error with a detail; nothing may crash or leak (the
 * sanitizer build runs this too). Then over sockets: a server answers
 * every damaged request; a puller, a subscriber and a router deliver or
 * count every damaged message. */
#include <inttypes.h>
#include <stdint.h>
#include <zmq.h>

#include "core/envelope.h"
#include "lz_mutate.h"
#include "lz_test.h"

#define MUTATIONS_PER_SEED 10000

// Valid documents in the shapes peers send: the Python LiberZMQ's task and
// request objects, an error reply, and the corners of the JSON grammar.
static const char *const json_seeds[] = {
    "{\"type\":\"order\",\"data\":{\"symbol\":\"BTC\",\"price\":43210.5,\"seq\":7},\"priority\":1,"
    "\"timestamp\":1763726400.123456,\"task_id\":\"2b7e1516-28ae-4d2a-a6ab-f7158809cf4f\"}",
    "{\"type\":\"add\",\"timestamp\":1763726400.5,\"request_id\":\"c1\",\"data\":{\"a\":1,\"b\":[2,3.5,-4e-3,true,"
    "false,null]}}",
    "{\"status\":\"error\",\"message\":\"division by zero\",\"request_type\":\"divide\",\"code\":\"LZ_EINVAL\"}",
    "[\"h\\u00e9llo\",\"\\ud83d\\ude00\",\"esc \\\" \\\\ \\/ \\b\\f\\n\\r\\t\",\"\xe4\xb8\xad\xe6\x96\x87\","
    "\"\xf0\x9f\x98\x80\"]",
    "[0,-0,1e308,-1.7976931348623157e308,5e-324,9223372036854775807,-9223372036854775808,"
    "18446744073709551616,123456789012345678901234567890,0.1e-2]",
    "[[[[{\"a\":[{}],\"b\":[[],{}]}]]],{\"\":{\"\":\"\"}}]",
    "{\"k\":1,\"k\":2,\"x\":{\"y\":{\"z\":[1,2,3]}},\"k\":{\"again\":true}}",
    "\"a lone string\"",
};
#define SEED_COUNT (sizeof json_seeds / sizeof *json_seeds)

typedef struct tally {
    long accepted, refused;
} tally_t;

static lz_buffer_t *encoded(const lz_serializer_t *codec, const lz_value_t *value) {
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK(buf != NULL);
    int rc = lz_serializer_encode(codec, value, buf);
    if (rc != LZ_OK) fprintf(stderr, "re-encoding failed: %s\n", lz_last_error());
    LZ_CHECK_INT(rc, LZ_OK);
    return buf;
}

// check_accepted: a value the codec accepted encodes, and decoding that
// encodes to the same bytes again (a fixed point after one round). A JSON
// value also survives MessagePack unchanged.
static void check_accepted(const lz_serializer_t *codec, const lz_value_t *value) {
    lz_buffer_t *once = encoded(codec, value);
    lz_value_t *back = NULL;
    LZ_CHECK_INT(lz_serializer_decode(codec, lz_buffer_data(once), lz_buffer_size(once), &back), LZ_OK);
    lz_buffer_t *twice = encoded(codec, back);
    LZ_CHECK(lz_buffer_size(once) == lz_buffer_size(twice) &&
             memcmp(lz_buffer_data(once), lz_buffer_data(twice), lz_buffer_size(once)) == 0);
    if (strcmp(lz_serializer_name(codec), "json") == 0) {
        const lz_serializer_t *msgpack = lz_serializer_builtin("msgpack");
        lz_buffer_t *packed = encoded(msgpack, back);
        lz_value_t *unpacked = NULL;
        LZ_CHECK_INT(lz_serializer_decode(msgpack, lz_buffer_data(packed), lz_buffer_size(packed), &unpacked), LZ_OK);
        LZ_CHECK(lz_value_equal(back, unpacked));
        lz_value_destroy(&unpacked);
        lz_buffer_destroy(&packed);
    }
    lz_value_destroy(&back);
    lz_buffer_destroy(&once);
    lz_buffer_destroy(&twice);
}

static void check_decode(const lz_serializer_t *codec, const uint8_t *data, size_t size, tally_t *tally) {
    lz_value_t *value = (lz_value_t *)1;
    int rc = lz_serializer_decode(codec, data, size, &value);
    if (rc != LZ_OK) {
        LZ_CHECK_INT(rc, LZ_ESERIALIZATION);
        LZ_CHECK(value == NULL);
        LZ_CHECK(lz_last_error()[0] != '\0');
        tally->refused++;
        return;
    }
    tally->accepted++;
    check_accepted(codec, value);
    lz_value_destroy(&value);
}

typedef int (*envelope_decode_fn)(const lz_serializer_t *, zmq_msg_t *, size_t, lz_message_t **);

// check_envelope: a frame the reader accepts gives a message with a type;
// one it refuses gives a protocol or serialization error and no message.
// Either way the frame can be closed afterwards (moved or not).
static void check_envelope(envelope_decode_fn decode, const lz_serializer_t *codec, const uint8_t *data,
                           size_t size, tally_t *tally) {
    zmq_msg_t frame;
    LZ_CHECK_INT(zmq_msg_init_size(&frame, size), 0);
    if (size) memcpy(zmq_msg_data(&frame), data, size);
    lz_message_t *msg = NULL;
    int rc = decode(codec, &frame, size, &msg);
    if (rc == LZ_OK) {
        LZ_CHECK(msg != NULL && lz_message_type(msg) != NULL);
        tally->accepted++;
    } else {
        LZ_CHECK(rc == LZ_ESERIALIZATION || rc == LZ_EPROTOCOL);
        LZ_CHECK(msg == NULL);
        LZ_CHECK(lz_last_error()[0] != '\0');
        tally->refused++;
    }
    lz_message_destroy(&msg);
    zmq_msg_close(&frame);
}

// seed_bytes gives the seed document i in codec's encoding.
static size_t seed_bytes(const lz_serializer_t *codec, size_t i, uint8_t *out) {
    lz_value_t *value = NULL;
    LZ_CHECK_INT(lz_serializer_decode(lz_serializer_builtin("json"), json_seeds[i], strlen(json_seeds[i]), &value),
                 LZ_OK);
    lz_buffer_t *buf = encoded(codec, value);
    size_t size = lz_buffer_size(buf);
    LZ_CHECK(size <= LZ_MUTATE_MAX);
    memcpy(out, lz_buffer_data(buf), size);
    lz_buffer_destroy(&buf);
    lz_value_destroy(&value);
    return size;
}

// fuzz runs MUTATIONS_PER_SEED damaged copies of every seed through check.
static void fuzz(const char *codec_name, void (*check)(const lz_serializer_t *, const uint8_t *, size_t, tally_t *),
                 tally_t *tally) {
    const lz_serializer_t *codec = lz_serializer_builtin(codec_name);
    LZ_CHECK(codec != NULL);
    static uint8_t seed[LZ_MUTATE_MAX], input[LZ_MUTATE_MAX];
    for (size_t i = 0; i < SEED_COUNT; i++) {
        size_t seed_size = seed_bytes(codec, i, seed);
        check(codec, seed, seed_size, tally); // the undamaged seed is accepted
        for (int m = 0; m < MUTATIONS_PER_SEED; m++) {
            check(codec, input, lz_mutated_copy(input, seed, seed_size), tally);
        }
    }
    printf("  %s: %ld accepted, %ld refused\n", codec_name, tally->accepted, tally->refused);
    // Both paths ran: damage that keeps a document valid and damage that
    // breaks it are both common.
    LZ_CHECK(tally->accepted > (long)SEED_COUNT);
    LZ_CHECK(tally->refused > 0);
}

LZ_TEST(json_decoder_survives_damaged_documents) {
    tally_t tally = {0};
    fuzz("json", check_decode, &tally);
}

LZ_TEST(msgpack_decoder_survives_damaged_documents) {
    tally_t tally = {0};
    fuzz("msgpack", check_decode, &tally);
}

static void check_task(const lz_serializer_t *codec, const uint8_t *data, size_t size, tally_t *tally) {
    check_envelope(lz__envelope_decode_task, codec, data, size, tally);
}

static void check_request(const lz_serializer_t *codec, const uint8_t *data, size_t size, tally_t *tally) {
    check_envelope(lz__envelope_decode_request, codec, data, size, tally);
}

LZ_TEST(task_and_request_readers_survive_damaged_frames) {
    const char *codecs[] = {"json", "msgpack"};
    for (int i = 0; i < 2; i++) {
        tally_t tasks = {0}, requests = {0};
        fuzz(codecs[i], check_task, &tasks);
        fuzz(codecs[i], check_request, &requests);
    }
}

// The default action answers with the request's data.
static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_copy(lz_message_value(request));
    return *reply ? LZ_OK : LZ_ENOMEM;
}

// ask sends payload as a request from a plain DEALER, [id, "", payload],
// and tells whether exactly one reply came back with that id and the empty
// delimiter, and whether it was an error reply.
static bool ask(void *dealer, unsigned id, const uint8_t *payload, size_t size, bool *error_reply) {
    char tag[16];
    int tag_len = snprintf(tag, sizeof tag, "r%u", id);
    if (zmq_send(dealer, tag, (size_t)tag_len, ZMQ_SNDMORE) < 0 || zmq_send(dealer, "", 0, ZMQ_SNDMORE) < 0 ||
        zmq_send(dealer, payload, size, 0) < 0)
        return false;
    zmq_msg_t frames[3];
    int n = 0, more = 1;
    for (; more && n < 3; n++) {
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], dealer, 0) < 0) {
            zmq_msg_close(&frames[n]);
            break;
        }
        more = zmq_msg_more(&frames[n]);
    }
    bool ok = n == 3 && !more && zmq_msg_size(&frames[0]) == (size_t)tag_len &&
              memcmp(zmq_msg_data(&frames[0]), tag, (size_t)tag_len) == 0 && zmq_msg_size(&frames[1]) == 0;
    lz_value_t *reply = NULL;
    ok = ok && lz_serializer_decode(lz_serializer_builtin("json"), zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]),
                                    &reply) == LZ_OK;
    *error_reply = ok && lz_value_type(reply) == LZ_VALUE_OBJECT &&
                   strcmp(lz_value_find_string(reply, "status", ""), "error") == 0;
    lz_value_destroy(&reply);
    for (int i = 0; i < n; i++) zmq_msg_close(&frames[i]);
    return ok;
}

// A server answers every request whose routing frames are intact, however
// damaged its payload: with the handler's reply or an error reply, never
// with silence (a client would wait out its timeout and retry).
LZ_TEST(server_answers_every_damaged_request) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.handler_max_concurrency=1");
    char endpoint[128];
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    lz_server_t *server = lz_server_new(ctx, endpoint);
    LZ_CHECK(server != NULL);
    LZ_CHECK_INT(lz_server_on_default(server, echo, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    void *dealer = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_DEALER, 5000, endpoint);
    static uint8_t input[LZ_MUTATE_MAX];
    int answered = 0, errors = 0, asked = 0;
    for (unsigned i = 0; i < 2000 && asked == answered; i++) {
        const char *seed = json_seeds[1 - (i & 1)]; // the request and the task
        size_t size = lz_mutated_copy(input, seed, strlen(seed));
        bool error_reply = false;
        asked++;
        if (ask(dealer, i, input, size, &error_reply)) answered++;
        errors += error_reply;
    }
    printf("  %d requests, %d answered, %d with an error reply\n", asked, answered, errors);
    LZ_CHECK_INT(answered, asked);
    LZ_CHECK(errors > 0 && errors < answered);
    zmq_close(dealer);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

// What a receive gave: nothing (within the timeout), a message, or the
// message "last" that ends a run.
typedef enum { TOOK_NOTHING, TOOK_ONE, TOOK_LAST } took_t;

// A receiver under test: a plain libzmq sender and the node's receive.
typedef struct receiver_rig {
    void *peer; // PUSH, XPUB or DEALER
    lz_node_t *node;
    took_t (*take)(void *receiver, int timeout_ms);
    void *receiver;
    bool with_topic; // a frame before the payload: the topic, or a request id
} receiver_rig_t;

static took_t took_message(lz_message_t *msg) {
    took_t took = !msg ? TOOK_NOTHING : strcmp(lz_message_topic(msg), "last") == 0 ? TOOK_LAST : TOOK_ONE;
    lz_message_destroy(&msg);
    return took;
}

static took_t pull_take(void *pull, int timeout_ms) { return took_message(lz_pull_recv(pull, timeout_ms)); }
static took_t sub_take(void *sub, int timeout_ms) { return took_message(lz_sub_recv(sub, timeout_ms)); }

static took_t router_take(void *router, int timeout_ms) {
    lz_router_request_t *request = lz_router_recv(router, timeout_ms);
    took_t took = !request ? TOOK_NOTHING : strcmp(lz_router_request_id(request), "last") == 0 ? TOOK_LAST : TOOK_ONE;
    lz_router_request_destroy(&request);
    return took;
}

// send_damaged sends message i: a damaged copy of the task seed (with a
// topic frame, damaged every third time, for a subscriber), or for i ==
// sent the undamaged message "last".
static void send_damaged(const receiver_rig_t *rig, int i, int sent) {
    static uint8_t topic[LZ_MUTATE_MAX], payload[LZ_MUTATE_MAX];
    size_t topic_size = (size_t)snprintf((char *)topic, sizeof topic, "%s", i < sent ? "topic/\xc3\xa9" : "last");
    size_t size = strlen(json_seeds[0]);
    memcpy(payload, json_seeds[0], size);
    if (i < sent) {
        size = lz_mutate(payload, size);
        if (rig->with_topic && i % 3 == 0) topic_size = lz_mutate(topic, topic_size);
    } else {
        size = (size_t)snprintf((char *)payload, sizeof payload, "{\"type\":\"last\",\"data\":null}");
    }
    if (rig->with_topic) LZ_CHECK_INT(zmq_send(rig->peer, topic, topic_size, ZMQ_SNDMORE), (int)topic_size);
    LZ_CHECK_INT(zmq_send(rig->peer, payload, size, 0), (int)size);
}

// The first record a node logs, to check how a drop reads.
typedef struct first_record {
    char component[64], message[256];
} first_record_t;

static void keep_first(lz_log_level_t level, const char *component, const char *message, void *arg) {
    first_record_t *first = arg;
    (void)level;
    if (first->message[0]) return;
    snprintf(first->component, sizeof first->component, "%s", component);
    snprintf(first->message, sizeof first->message, "%s", message);
}

// check_nothing_lost sends 2000 damaged messages and the last one; each
// damaged one must be handed to the caller or counted in inbound_dropped.
static void check_nothing_lost(const receiver_rig_t *rig) {
    const int sent = 2000;
    int delivered = 0;
    bool last_seen = false;
    for (int i = 0; i <= sent && !last_seen; i++) {
        send_damaged(rig, i, sent);
        // Receive as we go: the queue between the two stays short.
        for (took_t took; !last_seen && (took = rig->take(rig->receiver, i < sent ? 0 : 5000)) != TOOK_NOTHING;) {
            last_seen = took == TOOK_LAST;
            delivered += !last_seen;
        }
    }
    lz_metrics_t m = lz_test_metrics(rig->node);
    printf("  %d damaged messages: %d delivered, %llu dropped\n", sent, delivered,
           (unsigned long long)m.inbound_dropped);
    LZ_CHECK(last_seen);
    LZ_CHECK_INT(m.messages_received, (uint64_t)sent + 1);
    LZ_CHECK_INT((uint64_t)delivered + m.inbound_dropped, (uint64_t)sent);
    LZ_CHECK(delivered > 0 && m.inbound_dropped > 0);
}

// check_drop_record: the first drop logged names the node once, as the
// record's component, and says what happened.
static void check_drop_record(const first_record_t *first, const char *node_name) {
    LZ_CHECK_STR(first->component, node_name);
    const char *want = "dropped a malformed message: ";
    if (strncmp(first->message, want, strlen(want)) != 0) LZ_CHECK_STR(first->message, want);
}

static void *plain_socket(lz_context_t *ctx, int type, const char *endpoint) {
    void *socket = lz_test_plain_socket(lz_context_zmq(ctx), type, -1, NULL);
    int nodrop = 1;
    if (type == ZMQ_XPUB) zmq_setsockopt(socket, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    LZ_CHECK_INT(zmq_connect(socket, endpoint), 0);
    return socket;
}

// A puller, a subscriber and a router lose nothing silently: of damaged
// messages from a plain PUSH, XPUB or DEALER, each is handed to the caller or
// counted as dropped.
LZ_TEST(receivers_deliver_or_count_every_damaged_message) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    first_record_t first = {{0}, {0}};
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), keep_first, &first), LZ_OK);
    char endpoint[128];
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    lz_pull_t *pull = lz_pull_new(ctx, endpoint);
    LZ_CHECK(pull != NULL);
    receiver_rig_t pulling = {plain_socket(ctx, ZMQ_PUSH, endpoint), lz_pull_node(pull), pull_take, pull, false};
    check_nothing_lost(&pulling);
    check_drop_record(&first, lz_node_name(lz_pull_node(pull)));
    zmq_close(pulling.peer);
    lz_pull_destroy(&pull);

    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    char bound[160]; // the subscriber binds, the plain publisher connects
    snprintf(bound, sizeof bound, "@%s", endpoint);
    lz_sub_t *sub = lz_sub_new(ctx, bound);
    LZ_CHECK(sub != NULL);
    LZ_CHECK_INT(lz_sub_subscribe(sub, ""), LZ_OK);
    receiver_rig_t subscribing = {plain_socket(ctx, ZMQ_XPUB, endpoint), lz_sub_node(sub), sub_take, sub, true};
    // Wait for the subscription to reach the publisher (from then on nothing
    // is dropped for joining late). An inproc subscriber that binds sends
    // it once its socket runs, so keep it receiving meanwhile.
    char notice[16];
    int64_t deadline = lz_test_now_ms() + 5000;
    while (zmq_recv(subscribing.peer, notice, sizeof notice, ZMQ_DONTWAIT) < 0 && lz_test_now_ms() < deadline)
        LZ_CHECK(lz_sub_recv(sub, 10) == NULL);
    check_nothing_lost(&subscribing);
    zmq_close(subscribing.peer);
    lz_sub_destroy(&sub);

    // A router: [request_id, payload] from a plain DEALER, ids damaged too.
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    lz_router_t *router = lz_router_new(ctx, endpoint);
    LZ_CHECK(router != NULL);
    receiver_rig_t routing = {plain_socket(ctx, ZMQ_DEALER, endpoint), lz_router_node(router), router_take, router,
                              true};
    check_nothing_lost(&routing);
    zmq_close(routing.peer);
    lz_router_destroy(&router);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(json_decoder_survives_damaged_documents), LZ_CASE(msgpack_decoder_survives_damaged_documents),
             LZ_CASE(task_and_request_readers_survive_damaged_frames), LZ_CASE(server_answers_every_damaged_request),
             LZ_CASE(receivers_deliver_or_count_every_damaged_message))
