/* The Protocol Buffers codec (src/serial/protobuf.c) on arbitrary bytes:
 * its pass over the wire, protobuf-c's unpack, the conversion to values
 * and, with the JSON fallback, the JSON codec and base64 bytes. Byte 0
 * picks the message type and the codec's flags; the rest is the payload.
 * Besides fuzz_decode_value's properties (both decodes agree, only
 * LZ_ESERIALIZATION), a value read as a message encodes back to a message
 * that reads as the same value; one read through the JSON fallback may be
 * normalised once (fuzz_codec_normalises); and what protobuf-c unpacks is
 * refused only for a reason the codec names (check_refusal). */
#include <math.h>
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "legacy.pb-c.h"
#include "liberzmq/protobuf.h"
#include "sensor.pb-c.h"

// The test types (tests/proto): every proto3 field kind, proto2 required
// fields and declared defaults, and a recursive type.
static const ProtobufCMessageDescriptor *const types[] = {
    &demo__reading__descriptor,
    &legacy__config__descriptor,
    &legacy__node__descriptor,
};
#define TYPES (sizeof types / sizeof types[0])
#define FLAG_SETS 4 // every combination of the two LZ_PROTOBUF_* flags

// One codec per type and flag set, registered once in a context the
// process keeps (libFuzzer calls the target millions of times).
static const lz_serializer_t *codecs[TYPES * FLAG_SETS];

static void register_codecs(void) {
    lz_context_t *ctx = lz_context_new(NULL);
    fuzz_require(ctx != NULL, "a context can be made");
    for (unsigned i = 0; i < TYPES * FLAG_SETS; i++) {
        char name[16];
        snprintf(name, sizeof name, "pb%u", i);
        fuzz_require(lz_protobuf_register(ctx, name, types[i % TYPES], i / TYPES) == LZ_OK, "the codec registers");
        codecs[i] = lz_serializer_find(ctx, name);
    }
}

// read_as_message: whether data was read as a message of codec's type
// (not through the JSON fallback). Asked only of input the codec accepted,
// which its pass over the wire let through to protobuf-c.
static bool read_as_message(const ProtobufCMessageDescriptor *type, bool fallback, const uint8_t *data, size_t size) {
    if (fallback && size > 0 && data[0] == 0xFF) return false;
    ProtobufCMessage *message = protobuf_c_message_unpack(type, NULL, size, data);
    protobuf_c_message_free_unpacked(message, NULL);
    return message != NULL;
}

// holds_negative_zero: whether value holds -0.0 anywhere. protobuf-c does
// not send a float or double field without presence that holds -0.0 (it
// tests == 0, where protobuf's own libraries test the bits), so such a
// field reads back absent (docs/protobuf.md).
static bool holds_negative_zero(const lz_value_t *value) {
    if (lz_value_type(value) == LZ_VALUE_DOUBLE) {
        double d = lz_value_get_double(value);
        return d == 0 && signbit(d);
    }
    for (size_t i = 0; i < lz_value_size(value); i++)
        if (holds_negative_zero(lz_value_at(value, i))) return true;
    return false;
}

// check_value picks the exact or the normalising round trip for a value
// codec accepted from data.
static void check_value(const lz_serializer_t *codec, const lz_value_t *value, const uint8_t *data, size_t size) {
    unsigned i = 0;
    while (codecs[i] != codec) i++;
    if (!holds_negative_zero(value) &&
        read_as_message(types[i % TYPES], (i / TYPES) & LZ_PROTOBUF_JSON_FALLBACK, data, size))
        fuzz_codec_round_trip(codec, value);
    else
        fuzz_codec_normalises(codec, value);
}

// check_refusal: what protobuf-c unpacks, the codec reads, or refuses for
// a reason of its own that it names (the nesting limit, a NUL or bytes that
// are not UTF-8 in a string), never as bytes that are not a message: its
// own pass over the wire must not be stricter than protobuf-c. Called when
// the codec refused data, with its reason still the last error. Inputs stay
// far too short to overflow the stack in protobuf-c's recursion.
static void check_refusal(const ProtobufCMessageDescriptor *type, const uint8_t *data, size_t size) {
    const char *why = lz_last_error();
    ProtobufCMessage *message = protobuf_c_message_unpack(type, NULL, size, data);
    bool unpacked = message != NULL;
    protobuf_c_message_free_unpacked(message, NULL);
    fuzz_require(!unpacked || strstr(why, "nesting deeper than") || strstr(why, "cannot hold a NUL") ||
                     strstr(why, "not UTF-8"),
                 "what protobuf-c unpacks is read, or refused for a reason named");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (!codecs[0]) register_codecs();
    unsigned pick = data[0] % (TYPES * FLAG_SETS);
    if (fuzz_decode_value_then(codecs[pick], data + 1, size - 1, check_value) != LZ_OK)
        check_refusal(types[pick % TYPES], data + 1, size - 1);
    return 0;
}
