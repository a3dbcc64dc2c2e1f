/* Shared pieces of the fuzz targets (see fuzz_common.h). */
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_require_at(bool ok, const char *property, const char *file, int line) {
    if (ok) return;
    fprintf(stderr, "%s:%d: fuzz property broken: %s (last error: %s)\n", file, line, property, lz_last_error());
    abort();
}

/* ---- multipart input -------------------------------------------------- */

const lz_serializer_t *fuzz_codec_pick(uint8_t selector) {
    static const char *const names[] = {"json", "msgpack", "raw"};
    const lz_serializer_t *codec = lz_serializer_builtin(names[selector % 3]);
    fuzz_require(codec != NULL, "the built-in codecs exist");
    return codec;
}

static void frame_set_bytes(zmq_msg_t *frame, const void *data, size_t size) {
    fuzz_require(zmq_msg_init_size(frame, size) == 0, "a frame can be allocated");
    if (size) memcpy(zmq_msg_data(frame), data, size);
}

void fuzz_frame_set(zmq_msg_t *frame, const lz_buffer_t *buffer) {
    zmq_msg_close(frame);
    frame_set_bytes(frame, lz_buffer_data(buffer), lz_buffer_size(buffer));
}

bool fuzz_message_split(const uint8_t *data, size_t size, fuzz_message_t *msg) {
    if (size < 2) return false;
    msg->codec = fuzz_codec_pick(data[0]);
    lz_frames_t *f = &msg->frames;
    memset(f, 0, sizeof *f);
    f->count = f->total = data[1] % (LZ_MAX_FRAMES + 1);
    size_t at = 2;
    for (size_t i = 0; i < f->count; i++) {
        size_t declared = at + 2 <= size ? (size_t)data[at] << 8 | data[at + 1] : 0;
        at = at + 2 <= size ? at + 2 : size;
        size_t length = declared < size - at ? declared : size - at;
        frame_set_bytes(&f->part[i], data + at, length);
        f->size[i] = length;
        f->bytes += length;
        at += length;
    }
    return true;
}

void fuzz_message_close(fuzz_message_t *msg) { lz__frames_close(&msg->frames); }

/* ---- properties ------------------------------------------------------- */

// encode_or_abort returns a new buffer holding value encoded with codec.
static lz_buffer_t *encode_or_abort(const lz_serializer_t *codec, const lz_value_t *value) {
    lz_buffer_t *buffer = lz_buffer_new();
    fuzz_require(buffer != NULL, "a buffer can be allocated");
    fuzz_require(lz_serializer_encode(codec, value, buffer) == LZ_OK, "a decoded value encodes again");
    return buffer;
}

static bool same_bytes(const lz_buffer_t *a, const lz_buffer_t *b) {
    size_t size = lz_buffer_size(a);
    return size == lz_buffer_size(b) && (size == 0 || memcmp(lz_buffer_data(a), lz_buffer_data(b), size) == 0);
}

lz_value_t *fuzz_error_reply(const lz_serializer_t *codec, int code, const char *message, const char *request_type) {
    lz_buffer_t *buffer = lz_buffer_new();
    fuzz_require(buffer != NULL, "a buffer can be allocated");
    fuzz_require(lz__envelope_encode_error(codec, code, message, request_type, buffer) == LZ_OK,
                 "an error reply encodes");
    lz_value_t *decoded = NULL;
    fuzz_require(lz_serializer_decode(codec, lz_buffer_data(buffer), lz_buffer_size(buffer), &decoded) == LZ_OK &&
                     lz__envelope_is_error(decoded),
                 "the client reads the error reply as one");
    lz_buffer_destroy(&buffer);
    return decoded;
}

// encode_decode returns the value (the caller's) that value encoded with
// codec decodes to, keeping the encoding at *encoded (the caller's too).
static lz_value_t *encode_decode(const lz_serializer_t *codec, const lz_value_t *value, lz_buffer_t **encoded) {
    *encoded = encode_or_abort(codec, value);
    lz_value_t *again = NULL;
    fuzz_require(lz_serializer_decode(codec, lz_buffer_data(*encoded), lz_buffer_size(*encoded), &again) == LZ_OK,
                 "what the encoder writes decodes");
    return again;
}

void fuzz_codec_round_trip(const lz_serializer_t *codec, const lz_value_t *value) {
    lz_buffer_t *first;
    lz_value_t *again = encode_decode(codec, value, &first);
    fuzz_require(lz_value_equal(value, again), "decode(encode(v)) equals v");
    lz_buffer_t *second = encode_or_abort(codec, again);
    fuzz_require(same_bytes(first, second), "encode(decode(encode(v))) is encode(v), byte for byte");
    lz_value_destroy(&again);
    lz_buffer_destroy(&first);
    lz_buffer_destroy(&second);
}

void fuzz_codec_normalises(const lz_serializer_t *codec, const lz_value_t *value) {
    lz_buffer_t *encoded;
    lz_value_t *normal = encode_decode(codec, value, &encoded);
    fuzz_codec_round_trip(codec, normal);
    lz_value_destroy(&normal);
    lz_buffer_destroy(&encoded);
}

void fuzz_same_decode(const lz_serializer_t *codec, const void *data, size_t size, const lz_value_t *decoded) {
    lz_value_t *owned = NULL;
    fuzz_require(lz_serializer_decode(codec, data, size, &owned) == LZ_OK,
                 "bytes the receive path decodes also decode with lz_serializer_decode");
    fuzz_require(lz_value_equal(owned, decoded), "the owned and the in-message decode give equal values");
    lz_value_destroy(&owned);
}

static void round_trips(const lz_serializer_t *codec, const lz_value_t *value, const uint8_t *data, size_t size) {
    (void)data, (void)size;
    fuzz_codec_round_trip(codec, value);
}

void fuzz_decode_value(const lz_serializer_t *codec, const uint8_t *data, size_t size) {
    fuzz_decode_value_then(codec, data, size, round_trips);
}

int fuzz_decode_value_then(const lz_serializer_t *codec, const uint8_t *data, size_t size,
                           fuzz_value_check_fn *check) {
    lz_value_t *owned = NULL;
    int rc = lz_serializer_decode(codec, data, size, &owned);
    fuzz_require(rc == LZ_OK || rc == LZ_ESERIALIZATION, "a decoder fails with LZ_ESERIALIZATION only");

    lz_value_slot_t slot;
    lz_arena_t arena;
    _Alignas(8) unsigned char first_block[LZ_MESSAGE_ARENA]; // as a message holds one
    lz__arena_init(&arena, first_block, sizeof first_block);
    lz_value_t *in_arena = NULL;
    int rc_in_arena = lz__serializer_decode_in(codec, data, size, &slot, &arena, &in_arena);
    fuzz_require(rc_in_arena == rc, "the owned and the in-message decode accept the same input");

    if (rc == LZ_OK) {
        fuzz_require(lz_value_equal(owned, in_arena), "the owned and the in-message decode give equal values");
        check(codec, owned, data, size);
    }
    lz_value_destroy(&in_arena); // frees only what is not the arena's
    lz__arena_release(&arena);
    lz_value_destroy(&owned);
    return rc;
}

/* ---- task and request envelopes ---------------------------------------- */

// same_double: equal, or both NaN (a msgpack timestamp can be NaN).
static bool same_double(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

// check_envelope_object: the message's envelope is whole without "data".
static void check_envelope_object(const lz_value_t *whole, const lz_value_t *envelope) {
    bool has_data = lz_value_get(whole, "data") != NULL;
    fuzz_require(lz_value_type(envelope) == LZ_VALUE_OBJECT, "an enveloped message keeps its envelope object");
    fuzz_require(lz_value_size(envelope) + has_data == lz_value_size(whole), "the envelope lost only \"data\"");
    fuzz_require(lz_value_get(envelope, "data") == NULL, "the envelope no longer holds \"data\"");
    for (size_t i = 0; i < lz_value_size(whole); i++) {
        const char *key = lz_value_key_at(whole, i);
        if (strcmp(key, "data") != 0)
            fuzz_require(lz_value_equal(lz_value_get(envelope, key), lz_value_at(whole, i)),
                         "every other member stays in the envelope as it was");
    }
}

void fuzz_check_envelope(const fuzz_envelope_kind_t *kind, const lz_value_t *whole, const lz_message_t *msg,
                         bool enveloped) {
    const lz_value_t *value = lz_message_value(msg);
    fuzz_require(value != NULL && lz_message_id(msg) != NULL, "a decoded message has a value and an id");
    if (!enveloped) {
        fuzz_require(lz_value_equal(value, whole), "a plain peer's task is its whole payload");
        fuzz_require(lz_message_envelope(msg) == NULL && strcmp(lz_message_id(msg), "") == 0,
                     "a plain peer's task has no envelope and no id");
        return;
    }
    const lz_value_t *data = lz_value_get(whole, "data");
    fuzz_require(data ? lz_value_equal(value, data) : lz_value_type(value) == LZ_VALUE_NULL,
                 "the value is the envelope's \"data\", null when absent");
    check_envelope_object(whole, lz_message_envelope(msg));
    const char *id = lz_value_get_string(lz_value_get(whole, kind->id_key), NULL);
    fuzz_require(strcmp(lz_message_id(msg), id ? id : "") == 0, "the id is the id key's string, \"\" otherwise");
    fuzz_require(lz_message_priority(msg) == lz_value_get_int(lz_value_get(whole, "priority")),
                 "the priority is the \"priority\" integer, 0 otherwise");
    fuzz_require(same_double(lz_message_timestamp(msg), lz_value_get_double(lz_value_get(whole, "timestamp"))),
                 "the timestamp is the \"timestamp\" number, 0 otherwise");
}

void fuzz_envelope_round_trip(const fuzz_envelope_kind_t *kind, const lz_serializer_t *codec, const lz_message_t *msg) {
    lz_buffer_t *buffer = lz_buffer_new();
    fuzz_require(buffer != NULL, "a buffer can be allocated");
    int rc = kind->encode(codec, msg, buffer);
    bool may_refuse = lz_message_envelope(msg) == NULL;
    fuzz_require(rc == LZ_OK || (may_refuse && rc == LZ_ESERIALIZATION), "a received message can be sent again");
    if (rc == LZ_OK) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        fuzz_frame_set(&frame, buffer);
        lz_message_t *again = NULL;
        fuzz_require(kind->decode(codec, &frame, lz_buffer_size(buffer), &again) == LZ_OK,
                     "an envelope we encode decodes");
        size_t type_size = 0;
        const char *type = lz_message_topic_bytes(msg, &type_size);
        fuzz_require(fuzz_type_is(again, type, type_size), "the type arrives as sent");
        fuzz_require(lz_value_equal(lz_message_value(again), lz_message_value(msg)), "the data arrives as sent");
        fuzz_require(!kind->id_carried || strcmp(lz_message_id(again), lz_message_id(msg)) == 0,
                     "the id arrives as sent");
        lz_message_destroy(&again);
        zmq_msg_close(&frame);
    }
    lz_buffer_destroy(&buffer);
}

lz_value_t *fuzz_payload_decode(const lz_serializer_t *codec, const lz_message_t *msg) {
    size_t size;
    const void *payload = lz_message_payload(msg, &size);
    lz_value_t *whole = NULL;
    fuzz_require(lz_serializer_decode(codec, payload, size, &whole) == LZ_OK,
                 "a payload the receive path decoded decodes on its own");
    return whole;
}

// utf8_sequence_length is the length of the well-formed UTF-8 sequence at
// p (avail bytes left), or 0: written from RFC 3629 table 3.7 by code point
// ranges, independently of src/serial/utf8.h, which it checks.
static size_t utf8_sequence_length(const unsigned char *p, size_t avail) {
    size_t n;
    uint32_t cp, smallest;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xE0) == 0xC0) {
        n = 2;
        cp = p[0] & 0x1Fu;
        smallest = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3;
        cp = p[0] & 0x0Fu;
        smallest = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4;
        cp = p[0] & 0x07u;
        smallest = 0x10000;
    } else {
        return 0; // a continuation byte, or 0xF8 and up
    }
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    return cp < smallest || cp > 0x10FFFF || surrogate ? 0 : n;
}

bool fuzz_is_topic_text(const void *data, size_t size) {
    const unsigned char *p = data;
    for (size_t i = 0; i < size;) {
        size_t n = p[i] ? utf8_sequence_length(p + i, size - i) : 0;
        if (n == 0) return false;
        i += n;
    }
    return true;
}

bool fuzz_type_is(const lz_message_t *msg, const char *text, size_t size) {
    size_t type_size = 0;
    const char *type = lz_message_topic_bytes(msg, &type_size);
    return type && type_size == size && memcmp(type, text, size) == 0;
}
