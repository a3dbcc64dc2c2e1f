/* The puller's decoder, lz__envelope_decode_task, on received one-frame
 * tasks (docs/protocol.md section 3) in any of the built-in codecs: a
 * LiberZMQ task envelope, a plain peer's value, or raw bytes. The input is
 * a multipart message (fuzz_common.h). */
#include <string.h>

#include "fuzz_common.h"

static int encode_task(const lz_serializer_t *codec, const lz_message_t *msg, lz_buffer_t *out) {
    int64_t priority = lz_message_priority(msg); // the sender takes an int
    int clamped = priority > INT32_MAX ? INT32_MAX : priority < INT32_MIN ? INT32_MIN : (int)priority;
    return lz__envelope_encode_task(codec, lz_message_type(msg), lz_message_value(msg), clamped, NULL, out);
}

static const fuzz_envelope_kind_t task_kind = {"task_id", lz__envelope_decode_task, encode_task, false};

// check_raw_task: with an opaque codec the frame is the data, for the
// default handler.
static void check_raw_task(const lz_message_t *msg) {
    size_t size, value_size;
    const void *payload = lz_message_payload(msg, &size);
    const void *bytes = lz_value_get_bytes(lz_message_value(msg), &value_size);
    fuzz_require(strcmp(lz_message_type(msg), "") == 0, "a raw task has type \"\"");
    fuzz_require(value_size == size && (size == 0 || memcmp(bytes, payload, size) == 0),
                 "a raw task's value is its frame");
}

// check_task: a structured task's type, data and envelope follow the rules,
// and it can be sent on.
static void check_task(const lz_serializer_t *codec, const lz_message_t *msg) {
    lz_value_t *whole = fuzz_payload_decode(codec, msg);
    size_t size = 0;
    const char *type = lz_value_get_string(lz_value_get(whole, "type"), &size);
    fuzz_require(type ? fuzz_type_is(msg, type, size) : fuzz_type_is(msg, "unknown", 7),
                 "the type is the \"type\" string, \"unknown\" for a plain peer's value");
    fuzz_check_envelope(&task_kind, whole, msg, type != NULL);
    fuzz_envelope_round_trip(&task_kind, codec, msg);
    fuzz_codec_round_trip(codec, lz_message_value(msg));
    lz_value_destroy(&whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_message_t in;
    if (!fuzz_message_split(data, size, &in)) return 0;
    lz_frames_t *f = &in.frames;
    if (f->count == 1) { // the puller drops other messages before decoding
        lz_message_t *msg = NULL;
        int rc = lz__envelope_decode_task(in.codec, &f->part[0], f->size[0], &msg);
        // LZ_EPROTOCOL: a "type" that cannot be a topic (not UTF-8, or a NUL in it).
        fuzz_require(rc == LZ_OK || rc == LZ_ESERIALIZATION || rc == LZ_EPROTOCOL,
                     "a bad task is LZ_ESERIALIZATION or LZ_EPROTOCOL");
        fuzz_require((rc == LZ_OK) == (msg != NULL), "a message comes back exactly on success");
        if (rc == LZ_OK && (lz_serializer_flags(in.codec) & LZ_SERIALIZER_OPAQUE))
            check_raw_task(msg);
        else if (rc == LZ_OK)
            check_task(in.codec, msg);
        lz_message_destroy(&msg);
    }
    fuzz_message_close(&in);
    return 0;
}
