/* Received messages decoded from frames: a JSON payload's tree lives in the
 * message's arena (value and envelope read back, long strings and big
 * documents past its first block, repeated keys, "\u0000" in keys), copies
 * outlive the message, the tree is read-only, and messages decoded on one
 * thread may be destroyed on another. Under ASan each arena allocation is
 * its own block, so a use after the message is gone is caught. */
#include <pthread.h>

#include "core/envelope.h"
#include "lz_test.h"
#include "serial/registry.h"

// frame_of makes a frame holding text, as a receive would.
static zmq_msg_t frame_of(const char *text, size_t len) {
    zmq_msg_t frame;
    zmq_msg_init_size(&frame, len);
    memcpy(zmq_msg_data(&frame), text, len);
    return frame;
}

static lz_message_t *task_of(const lz_serializer_t *codec, const char *text, size_t len) {
    zmq_msg_t frame = frame_of(text, len);
    lz_message_t *msg = NULL;
    int rc = lz__envelope_decode_task(codec, &frame, len, &msg);
    zmq_msg_close(&frame);
    return rc == LZ_OK ? msg : NULL;
}

static lz_message_t *json_task(const char *text) {
    return task_of(lz_serializer_builtin("json"), text, strlen(text));
}

static const char task_text[] =
    "{\"type\":\"resize\",\"priority\":3,\"timestamp\":1700000000.25,\"task_id\":\"t-1\","
    "\"traceparent\":\"00-abc-def-01\",\"a_key_longer_than_sixteen\":true,"
    "\"data\":{\"name\":\"img\",\"sizes\":[1,2.5,null,false,\"x\",{\"deep\":[[]]}],\"empty\":{}}}";

LZ_TEST(a_task_reads_back_its_envelope_and_nested_data) {
    lz_message_t *msg = json_task(task_text);
    LZ_CHECK(msg != NULL);
    if (!msg) return;
    LZ_CHECK_STR(lz_message_type(msg), "resize");
    LZ_CHECK_STR(lz_message_id(msg), "t-1");
    LZ_CHECK_INT(lz_message_priority(msg), 3);
    LZ_CHECK(lz_message_timestamp(msg) == 1700000000.25);
    const lz_value_t *env = lz_message_envelope(msg);
    LZ_CHECK_INT(lz_value_size(env), 6); // "data" lifted out
    LZ_CHECK(lz_value_get(env, "data") == NULL);
    LZ_CHECK_STR(lz_value_find_string(env, "traceparent", ""), "00-abc-def-01");
    LZ_CHECK_STR(lz_value_key_at(env, 5), "a_key_longer_than_sixteen");
    LZ_CHECK(lz_value_get_bool(lz_value_get(env, "a_key_longer_than_sixteen")));
    const lz_value_t *data = lz_message_value(msg);
    LZ_CHECK_STR(lz_value_find_string(data, "name", ""), "img");
    const lz_value_t *sizes = lz_value_get(data, "sizes");
    LZ_CHECK_INT(lz_value_size(sizes), 6);
    LZ_CHECK_INT(lz_value_get_int(lz_value_at(sizes, 0)), 1);
    LZ_CHECK(lz_value_get_double(lz_value_at(sizes, 1)) == 2.5);
    LZ_CHECK_INT(lz_value_type(lz_value_at(sizes, 2)), LZ_VALUE_NULL);
    LZ_CHECK_INT(lz_value_type(lz_value_at(sizes, 3)), LZ_VALUE_BOOL);
    LZ_CHECK_STR(lz_value_get_string(lz_value_at(sizes, 4), NULL), "x");
    const lz_value_t *deep = lz_value_get(lz_value_at(sizes, 5), "deep");
    LZ_CHECK_INT(lz_value_size(deep), 1);
    LZ_CHECK_INT(lz_value_type(lz_value_at(deep, 0)), LZ_VALUE_ARRAY);
    LZ_CHECK_INT(lz_value_size(lz_value_get(data, "empty")), 0);
    // The same text decoded for a caller (heap) is an equal tree.
    lz_value_t *owned = lz_value_from_json(task_text, strlen(task_text));
    LZ_CHECK(lz_value_equal(lz_value_get(owned, "data"), data));
    lz_value_destroy(&owned);
    lz_message_destroy(&msg);
    LZ_CHECK(msg == NULL);
}

LZ_TEST(a_task_without_data_reads_null_and_a_plain_value_is_unknown) {
    lz_message_t *msg = json_task("{\"type\":\"ping\"}");
    LZ_CHECK(msg && lz_value_type(lz_message_value(msg)) == LZ_VALUE_NULL);
    lz_message_destroy(&msg);
    msg = json_task("[1,2,3]");
    LZ_CHECK_STR(lz_message_type(msg), "unknown");
    LZ_CHECK_INT(lz_value_size(lz_message_value(msg)), 3);
    LZ_CHECK(lz_message_envelope(msg) == NULL);
    lz_message_destroy(&msg);
}

LZ_TEST(repeated_keys_keep_the_first_place_and_the_last_value) {
    lz_message_t *msg = json_task("{\"type\":\"t\",\"data\":{\"a\":1,\"b\":2,\"a\":3,\"b\":{\"c\":4},\"a\":\"last\"}}");
    const lz_value_t *data = lz_message_value(msg);
    LZ_CHECK_INT(lz_value_size(data), 2);
    LZ_CHECK_STR(lz_value_key_at(data, 0), "a");
    LZ_CHECK_STR(lz_value_find_string(data, "a", ""), "last");
    LZ_CHECK_INT(lz_value_find_int(lz_value_get(data, "b"), "c", 0), 4);
    lz_message_destroy(&msg);
}

// big_object writes {"k0":0,"k1":1,...} with keys keys, then every key again
// with its number negated (repeats): n keys, 2n members.
static char *big_object(int keys, size_t *len) {
    size_t cap = (size_t)keys * 2 * 24 + 16, at = 0;
    char *text = malloc(cap);
    text[at++] = '{';
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < keys; i++)
            at += (size_t)snprintf(text + at, cap - at, "%s\"k%d\":%d", at > 1 ? "," : "", i, round ? -i : i);
    text[at++] = '}';
    *len = at;
    return text;
}

// A large object finds its repeated keys in time proportional to its size:
// looked for one by one, 400k members would take minutes.
LZ_TEST(a_large_object_with_repeated_keys_decodes_in_linear_time) {
    const int keys = 200000;
    size_t len;
    char *text = big_object(keys, &len);
    int64_t t0 = lz_test_now_ms();
    lz_value_t *heap = lz_value_from_json(text, len); // the heap flavour
    zmq_msg_t topic = frame_of("big", 3), frame = frame_of(text, len); // the arena flavour
    lz_message_t *msg = NULL;
    LZ_CHECK_INT(lz__envelope_decode_pub(lz_serializer_builtin("json"), &topic, 3, false, &frame, len, &msg), LZ_OK);
    int64_t elapsed = lz_test_now_ms() - t0;
    LZ_CHECK(elapsed < 20000);
    for (const lz_value_t *v = heap; v; v = v == heap && msg ? lz_message_value(msg) : NULL) {
        LZ_CHECK_INT(lz_value_size(v), keys);
        LZ_CHECK_STR(lz_value_key_at(v, keys - 1), "k199999");
        LZ_CHECK_INT(lz_value_find_int(v, "k12345", 0), -12345);
    }
    zmq_msg_close(&topic);
    zmq_msg_close(&frame);
    lz_message_destroy(&msg);
    lz_value_destroy(&heap);
    free(text);
}

LZ_TEST(a_key_holding_nul_ends_there) {
    lz_message_t *msg = json_task("{\"type\":\"t\",\"data\":{\"ab\\u0000cd\":1,\"x\\u0000\":2}}");
    const lz_value_t *data = lz_message_value(msg);
    LZ_CHECK_STR(lz_value_key_at(data, 0), "ab");
    LZ_CHECK_STR(lz_value_key_at(data, 1), "x");
    LZ_CHECK_INT(lz_value_find_int(data, "x", 0), 2);
    lz_message_destroy(&msg);
}

// big_task builds a task whose data holds a string of long_len bytes and
// an array of count small objects, past the message's first arena block.
static char *big_task(size_t long_len, size_t count, size_t *len) {
    size_t cap = long_len + count * 64 + 128;
    char *text = malloc(cap);
    size_t at = (size_t)snprintf(text, cap, "{\"type\":\"big\",\"data\":{\"long\":\"");
    memset(text + at, 'q', long_len);
    at += long_len;
    at += (size_t)snprintf(text + at, cap - at, "\",\"items\":[");
    for (size_t i = 0; i < count; i++)
        at += (size_t)snprintf(text + at, cap - at, "%s{\"i\":%zu,\"name\":\"item number %zu\"}", i ? "," : "", i, i);
    at += (size_t)snprintf(text + at, cap - at, "]}}");
    *len = at;
    return text;
}

LZ_TEST(long_strings_and_big_documents_overflow_the_first_block) {
    size_t sizes[][2] = {{LZ_MESSAGE_ARENA, 0}, {LZ_MESSAGE_ARENA * 3, 5}, {10, 2000}, {100000, 300}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t len;
        char *text = big_task(sizes[k][0], sizes[k][1], &len);
        lz_message_t *msg = task_of(lz_serializer_builtin("json"), text, len);
        LZ_CHECK(msg != NULL);
        const lz_value_t *data = lz_message_value(msg);
        size_t long_len = 0;
        const char *s = lz_value_get_string(lz_value_get(data, "long"), &long_len);
        LZ_CHECK_INT(long_len, sizes[k][0]);
        LZ_CHECK(s && s[0] == 'q' && s[long_len - 1] == 'q' && s[long_len] == '\0');
        const lz_value_t *items = lz_value_get(data, "items");
        LZ_CHECK_INT(lz_value_size(items), sizes[k][1]);
        if (sizes[k][1]) {
            const lz_value_t *last = lz_value_at(items, sizes[k][1] - 1);
            LZ_CHECK_INT(lz_value_find_int(last, "i", -1), (long long)sizes[k][1] - 1);
            char want[64];
            snprintf(want, sizeof want, "item number %zu", sizes[k][1] - 1);
            LZ_CHECK_STR(lz_value_find_string(last, "name", ""), want);
        }
        lz_message_destroy(&msg);
        free(text);
    }
}

LZ_TEST(a_copy_of_a_message_value_outlives_the_message) {
    lz_message_t *msg = json_task(task_text);
    lz_value_t *copy = lz_value_copy(lz_message_value(msg));
    lz_value_t *envelope = lz_value_copy(lz_message_envelope(msg));
    lz_message_destroy(&msg);
    // A copy is the caller's: it reads after the message is gone (ASan
    // would report a use after free) and can change like any value.
    LZ_CHECK_STR(lz_value_find_string(copy, "name", ""), "img");
    LZ_CHECK_STR(lz_value_find_string(envelope, "task_id", ""), "t-1");
    LZ_CHECK_INT(lz_value_object_set_int(copy, "name", 7), LZ_OK);
    LZ_CHECK_INT(lz_value_array_append(lz_value_get(copy, "sizes"), lz_value_int(9)), LZ_OK);
    LZ_CHECK_INT(lz_value_size(lz_value_get(copy, "sizes")), 7);
    lz_value_destroy(&copy);
    lz_value_destroy(&envelope);
}

LZ_TEST(a_message_value_is_read_only_and_destroying_it_is_harmless) {
    lz_message_t *msg = json_task(task_text);
    lz_value_t *data = (lz_value_t *)lz_message_value(msg); // what a careless caller might do
    LZ_CHECK_INT(lz_value_object_set_int(data, "x", 1), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_array_append(lz_value_get(data, "sizes"), lz_value_int(1)), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_size(data), 3);
    lz_value_destroy(&data); // the message owns it: nothing happens
    LZ_CHECK_STR(lz_value_find_string(lz_message_value(msg), "name", ""), "img");
    lz_message_destroy(&msg);
}

// expect_read_only checks that msg's value (task_text's data) and envelope
// refuse every change and that destroying them, or a value inside them,
// leaves them to the message, which then frees them (ASan: no use after
// free, no leak).
static void expect_read_only(lz_message_t *msg, const char *codec) {
    LZ_CHECK(msg != NULL);
    if (!msg) fprintf(stderr, "  %s: no message: %s\n", codec, lz_last_error());
    if (!msg) return;
    lz_value_t *data = (lz_value_t *)lz_message_value(msg), *env = (lz_value_t *)lz_message_envelope(msg);
    lz_value_t *sizes = lz_value_get(data, "sizes"), *deep = lz_value_get(lz_value_at(sizes, 5), "deep");
    LZ_CHECK_INT(lz_value_object_set_int(data, "x", 1), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_array_append(sizes, lz_value_int(1)), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_array_append(lz_value_at(deep, 0), lz_value_int(1)), LZ_EINVAL);
    if (env) LZ_CHECK_INT(lz_value_object_set_int(env, "x", 1), LZ_EINVAL);
    lz_value_destroy(&deep);
    lz_value_destroy(&data);
    lz_value_destroy(&env);
    LZ_CHECK(!data && !deep && !env);
    data = (lz_value_t *)lz_message_value(msg);
    LZ_CHECK_INT(lz_value_size(data), 3);
    LZ_CHECK_INT(lz_value_size(lz_value_get(data, "sizes")), 6);
    LZ_CHECK_INT(lz_value_size(lz_value_get(lz_value_at(lz_value_get(data, "sizes"), 5), "deep")), 1);
    lz_message_destroy(&msg);
}

// heap_decode, a custom codec's: JSON read into a tree of the caller's.
static int heap_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    (void)state;
    *out = lz_value_from_json(data, size);
    return *out ? LZ_OK : LZ_ESERIALIZATION;
}

static int heap_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    (void)state;
    char *text = lz_value_to_json(value);
    int rc = text ? lz_buffer_append(out, text, strlen(text)) : LZ_ESERIALIZATION;
    free(text);
    return rc;
}

// message.h: a received value is read-only whatever the codec. msgpack, a
// custom codec and the JSON the yajl fallback reads (an integer past 64
// bits) build it on the heap: it could be changed, and destroying it freed
// it, then lz_message_destroy used it after that.
LZ_TEST(a_message_value_is_read_only_whatever_the_codec) {
    const lz_serializer_t *msgpack = lz_serializer_builtin("msgpack");
    lz_value_t *tree = lz_value_from_json(task_text, strlen(task_text));
    lz_value_t *data = lz_value_get(tree, "data");
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz__envelope_encode_task(msgpack, "resize", data, 0, NULL, buf), LZ_OK);
    expect_read_only(task_of(msgpack, lz_buffer_data(buf), lz_buffer_size(buf)), "msgpack task");
    lz_buffer_reset(buf);
    LZ_CHECK_INT(lz_serializer_encode(msgpack, data, buf), LZ_OK);
    zmq_msg_t topic = frame_of("t", 1), payload = frame_of(lz_buffer_data(buf), lz_buffer_size(buf));
    lz_message_t *msg = NULL;
    LZ_CHECK_INT(lz__envelope_decode_pub(msgpack, &topic, 1, false, &payload, lz_buffer_size(buf), &msg), LZ_OK);
    expect_read_only(msg, "msgpack pub");
    zmq_msg_close(&topic);
    zmq_msg_close(&payload);
    // Past 64 bits simdjson declines the number: yajl reads the document.
    char big[sizeof task_text + 64];
    snprintf(big, sizeof big, "{\"huge\":18446744073709551616,%s", task_text + 1);
    expect_read_only(json_task(big), "json by yajl");
    lz_registry_t *reg = lz__registry_new();
    lz_serializer_ops_t ops = {.name = "heap", .content_type = "x/heap", .encode = heap_encode, .decode = heap_decode};
    LZ_CHECK_INT(lz__registry_add(reg, &ops, NULL), LZ_OK);
    const lz_serializer_t *heap = lz__registry_find(reg, "heap");
    expect_read_only(task_of(heap, task_text, strlen(task_text)), "custom");
    // Nested past the freeze's first stack (32 levels), down to the last.
    char deep[2 * 100 + 1] = "";
    for (int i = 0; i < 100; i++) deep[i] = '[', deep[100 + i] = ']';
    zmq_msg_t frame = frame_of(deep, 200);
    msg = lz__message_decode(heap, &frame, 200);
    lz_value_t *inner = (lz_value_t *)lz_message_value(msg);
    for (int i = 1; i < 100; i++) inner = lz_value_at(inner, 0);
    LZ_CHECK(inner && lz_value_size(inner) == 0);
    LZ_CHECK_INT(lz_value_array_append(inner, lz_value_null()), LZ_EINVAL);
    lz_message_destroy(&msg);
    zmq_msg_close(&frame);
    lz__registry_destroy(&reg);
    lz_buffer_destroy(&buf);
    lz_value_destroy(&tree);
}

LZ_TEST(pub_and_request_messages_decode_into_the_arena) {
    zmq_msg_t topic = frame_of("prices", 6), payload = frame_of("{\"symbol\":\"ABC\",\"seq\":5}", 24);
    lz_message_t *msg = NULL;
    LZ_CHECK_INT(lz__envelope_decode_pub(lz_serializer_builtin("json"), &topic, 6, false, &payload, 24, &msg), LZ_OK);
    LZ_CHECK_STR(lz_message_topic(msg), "prices");
    LZ_CHECK_INT(lz_value_find_int(lz_message_value(msg), "seq", 0), 5);
    lz_message_destroy(&msg);
    zmq_msg_close(&topic);
    zmq_msg_close(&payload);
    const char *req = "{\"type\":\"add\",\"timestamp\":1.5,\"request_id\":\"r-9\",\"data\":[1,2]}";
    zmq_msg_t frame = frame_of(req, strlen(req));
    LZ_CHECK_INT(lz__envelope_decode_request(lz_serializer_builtin("json"), &frame, strlen(req), &msg), LZ_OK);
    LZ_CHECK_STR(lz_message_type(msg), "add");
    LZ_CHECK_STR(lz_message_id(msg), "r-9");
    LZ_CHECK_INT(lz_value_size(lz_message_value(msg)), 2);
    lz_message_destroy(&msg);
    zmq_msg_close(&frame);
}

LZ_TEST(bad_json_and_other_codecs_still_decode_as_before) {
    LZ_CHECK(json_task("{\"type\":\"t\",\"data\":[1,}") == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESERIALIZATION);
    // Past simdjson's number range: read by yajl, into owned nodes.
    lz_message_t *msg = json_task("{\"type\":\"t\",\"data\":[123456789012345678901234567890]}");
    LZ_CHECK(msg && lz_value_get_double(lz_value_at(lz_message_value(msg), 0)) > 1e29);
    lz_message_destroy(&msg);
    // msgpack builds owned nodes; the message frees them.
    const lz_serializer_t *msgpack = lz_serializer_builtin("msgpack");
    lz_value_t *data = lz_value_from_json("{\"k\":[1,\"two\"]}", 15);
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz__envelope_encode_task(msgpack, "mp", data, 1, NULL, buf), LZ_OK);
    msg = task_of(msgpack, lz_buffer_data(buf), lz_buffer_size(buf));
    LZ_CHECK_STR(lz_message_type(msg), "mp");
    LZ_CHECK(lz_value_equal(lz_message_value(msg), data));
    lz_message_destroy(&msg);
    lz_buffer_destroy(&buf);
    lz_value_destroy(&data);
}

#define BATCH 64

static void *destroy_batch(void *arg) {
    lz_message_t **batch = arg;
    for (int i = 0; i < BATCH; i++) {
        LZ_CHECK_INT(lz_value_find_int(lz_message_value(batch[i]), "seq", -1), i);
        lz_message_destroy(&batch[i]);
    }
    return NULL;
}

static void decode_batch(lz_message_t **batch, size_t long_len) {
    char *text = malloc(long_len + 128);
    for (int i = 0; i < BATCH; i++) {
        int n = snprintf(text, long_len + 128, "{\"type\":\"t\",\"data\":{\"seq\":%d,\"pad\":\"%*s\"}}", i,
                         (int)(i % 2 ? long_len : 1), "p");
        batch[i] = task_of(lz_serializer_builtin("json"), text, (size_t)n);
    }
    free(text);
}

LZ_TEST(messages_decoded_on_one_thread_are_destroyed_on_another) {
    lz_message_t *batch[BATCH];
    for (int round = 0; round < 20; round++) {
        decode_batch(batch, round % 2 ? 3000 : 10); // odd ones chain a block
        pthread_t t;
        LZ_CHECK_INT(pthread_create(&t, NULL, destroy_batch, batch), 0);
        pthread_join(t, NULL);
        decode_batch(batch, 10); // recycled messages, on this thread
        destroy_batch(batch);
    }
}

LZ_TEST_MAIN(LZ_CASE(a_task_reads_back_its_envelope_and_nested_data),
             LZ_CASE(a_task_without_data_reads_null_and_a_plain_value_is_unknown),
             LZ_CASE(repeated_keys_keep_the_first_place_and_the_last_value),
             LZ_CASE(a_large_object_with_repeated_keys_decodes_in_linear_time),
             LZ_CASE(a_key_holding_nul_ends_there),
             LZ_CASE(long_strings_and_big_documents_overflow_the_first_block),
             LZ_CASE(a_copy_of_a_message_value_outlives_the_message),
             LZ_CASE(a_message_value_is_read_only_and_destroying_it_is_harmless),
             LZ_CASE(a_message_value_is_read_only_whatever_the_codec),
             LZ_CASE(pub_and_request_messages_decode_into_the_arena),
             LZ_CASE(bad_json_and_other_codecs_still_decode_as_before),
             LZ_CASE(messages_decoded_on_one_thread_are_destroyed_on_another))
