/* A custom codec ("json+zstd" from examples/zstd_json.h) through a
 * context's registry: registration, lookup by name, duplicate names, state
 * ownership, encode/decode round trips and garbage input. */
#include "lz_test.h"
#include "../examples/zstd_json.h"

static int destroyed;
static void counting_destroy(void *state) {
    destroyed++;
    zstd_json_destroy(state);
}

LZ_TEST(registered_codec_round_trips_by_name) {
    lz_context_t *ctx = lz_context_new(NULL);
    LZ_CHECK_INT(lz_serializer_register(ctx, &zstd_json_ops, zstd_json_new(3)), 0);
    const lz_serializer_t *s = lz_serializer_find(ctx, "json+zstd");
    LZ_CHECK_STR(lz_serializer_name(s), "json+zstd");
    LZ_CHECK_STR(lz_serializer_content_type(s), "application/json+zstd");
    LZ_CHECK(lz_serializer_find(ctx, "json") == lz_serializer_builtin("json"));

    lz_value_t *v = lz_value_object();
    lz_value_object_set_string(v, "text", "a fairly repetitive text, a fairly repetitive text, a fairly repetitive text");
    lz_value_object_set_int(v, "seq", 42);
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz_serializer_encode(s, v, buf), 0);
    LZ_CHECK(lz_buffer_size(buf) >= 4 && memcmp(lz_buffer_data(buf), "\x28\xb5\x2f\xfd", 4) == 0); // zstd magic
    char *json = lz_value_to_json(v);
    LZ_CHECK(json && lz_buffer_size(buf) < strlen(json)); // it did compress
    free(json);
    lz_value_t *back = NULL;
    LZ_CHECK_INT(lz_serializer_decode(s, lz_buffer_data(buf), lz_buffer_size(buf), &back), 0);
    LZ_CHECK(lz_value_equal(v, back));
    lz_value_destroy(&back);
    lz_value_destroy(&v);
    lz_buffer_destroy(&buf);
    lz_context_destroy(&ctx);
}

LZ_TEST(duplicate_names_are_refused_and_states_always_freed) {
    destroyed = 0;
    lz_serializer_ops_t ops = zstd_json_ops;
    ops.destroy = counting_destroy;
    lz_context_t *ctx = lz_context_new(NULL);
    LZ_CHECK_INT(lz_serializer_register(ctx, &ops, zstd_json_new(1)), 0);
    LZ_CHECK_INT(lz_serializer_register(ctx, &ops, zstd_json_new(1)), LZ_ESTATE);
    LZ_CHECK_INT(destroyed, 1); // the refused state
    ops.name = "msgpack";
    LZ_CHECK_INT(lz_serializer_register(ctx, &ops, zstd_json_new(1)), LZ_ESTATE);
    LZ_CHECK_INT(lz_serializer_register(NULL, &ops, zstd_json_new(1)), LZ_EINVAL);
    LZ_CHECK_INT(destroyed, 3);
    LZ_CHECK(lz_serializer_find(ctx, "zstd") == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ENOTFOUND);
    LZ_CHECK(strstr(lz_last_error(), "json+zstd") != NULL); // the detail lists it
    lz_context_destroy(&ctx);
    LZ_CHECK_INT(destroyed, 4); // the context freed the registered one

    // Registries are per context: a fresh one does not know the codec.
    ctx = lz_context_new(NULL);
    LZ_CHECK(lz_serializer_find(ctx, "json+zstd") == NULL);
    lz_context_destroy(&ctx);
}

LZ_TEST(garbage_and_corrupt_frames_are_serialization_errors) {
    lz_context_t *ctx = lz_context_new(NULL);
    lz_serializer_register(ctx, &zstd_json_ops, zstd_json_new(3));
    const lz_serializer_t *s = lz_serializer_find(ctx, "json+zstd");
    lz_value_t *out = NULL;
    LZ_CHECK_INT(lz_serializer_decode(s, "not zstd at all", 15, &out), LZ_ESERIALIZATION);
    LZ_CHECK_INT(lz_serializer_decode(s, "", 0, &out), LZ_ESERIALIZATION);
    LZ_CHECK(out == NULL);

    // A valid zstd frame around text that is not JSON.
    char frame[64];
    size_t n = ZSTD_compress(frame, sizeof frame, "{oops", 5, 1);
    LZ_CHECK(!ZSTD_isError(n));
    LZ_CHECK_INT(lz_serializer_decode(s, frame, n, &out), LZ_ESERIALIZATION);
    // A real encoding cut short.
    lz_value_t *v = lz_value_string("hello");
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz_serializer_encode(s, v, buf), 0);
    LZ_CHECK_INT(lz_serializer_decode(s, lz_buffer_data(buf), lz_buffer_size(buf) - 1, &out), LZ_ESERIALIZATION);
    LZ_CHECK(out == NULL);
    lz_value_t *nan = lz_value_double(0.0 / 0.0);
    lz_buffer_reset(buf);
    LZ_CHECK_INT(lz_serializer_encode(s, nan, buf), LZ_ESERIALIZATION); // JSON's rule carries over
    lz_value_destroy(&nan);
    lz_value_destroy(&v);
    lz_buffer_destroy(&buf);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(registered_codec_round_trips_by_name),
             LZ_CASE(duplicate_names_are_refused_and_states_always_freed),
             LZ_CASE(garbage_and_corrupt_frames_are_serialization_errors))
