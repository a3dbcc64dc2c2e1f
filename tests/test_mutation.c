/* Decoders under damaged input: the JSON and MessagePack codecs and the task
 * and request envelope readers get valid documents with random damage
 * (flipped bits, replaced, inserted and deleted bytes, truncation, spliced
 * copies) from a fixed seed, so a failure repeats. Whatever they accept must
 * re-encode to a fixed point; whatever they refuse must come back as the
 * documented error with a detail; nothing may crash or leak (the sanitizer
 * build runs this too). */
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
            memcpy(input, seed, seed_size);
            check(codec, input, lz_mutate(input, seed_size), tally);
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

LZ_TEST_MAIN(LZ_CASE(json_decoder_survives_damaged_documents), LZ_CASE(msgpack_decoder_survives_damaged_documents),
             LZ_CASE(task_and_request_readers_survive_damaged_frames))
