/* liberzmq Protocol Buffers: a serializer for one message type, on
 * protobuf-c (https://github.com/protobuf-c/protobuf-c).
 *
 * You compile your .proto with protoc-c as usual and register the message
 * type's descriptor under a name of your choice:
 *
 *     lz_protobuf_register(ctx, "reading", &demo__reading__descriptor, 0);
 *     lz_node_set_serializer(node, "reading");   // or serialization.default
 *
 * Values then travel as that message's binary encoding, which any protobuf
 * peer reads (pyzmq with the generated Python class, C++, Go...). Values map
 * to messages as the proto3 JSON mapping has it: an object per message keyed
 * by field name, arrays for repeated fields, objects for map fields, enum
 * values by name. docs/protobuf.md has the whole table.
 *
 * The header declares the protobuf-c types it takes without including
 * protobuf-c: include <protobuf-c/protobuf-c.h> (or your generated .pb-c.h)
 * to call it. */
#ifndef LIBERZMQ_PROTOBUF_H
#define LIBERZMQ_PROTOBUF_H

#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_context lz_context_t;
struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;

// Flags for lz_protobuf_register and lz_protobuf_to_value.
enum {
    // Encoding: a value that does not fit the message type (the
    // task/request envelopes of push/pull and request/reply, for one) goes
    // out as the byte 0xFF followed by its JSON encoding, and decoding
    // reads such payloads (and, failing protobuf, plain JSON) back. This is
    // the Python LiberZMQ ProtobufSerializer's use_json_fallback, on by
    // default there: set it to exchange messages with Python services.
    // 0xFF never starts a protobuf message (its wire type would be 7).
    LZ_PROTOBUF_JSON_FALLBACK = 1u << 0,
    // Decoding: also give fields that hold their default value (zero, "",
    // an empty list), which protobuf does not send and otherwise do not
    // appear (Python's including_default_value_fields). Fields of a oneof
    // and singular message fields still appear only when set.
    LZ_PROTOBUF_DEFAULTS = 1u << 1
};

// lz_protobuf_register registers a codec named name that encodes values as
// messages of type descriptor (a protoc-c generated descriptor, which must
// outlive ctx; generated ones are static). name is copied. flags:
// LZ_PROTOBUF_* bits. The codec's content type is "application/x-protobuf".
// Errors: LZ_EINVAL (NULL argument, an empty name, unknown flags, or a
// descriptor without protobuf-c's magic number), LZ_ESTATE (name taken),
// LZ_ENOMEM. Thread safe.
int lz_protobuf_register(lz_context_t *ctx, const char *name,
                         const struct ProtobufCMessageDescriptor *descriptor, unsigned flags);

// lz_protobuf_from_value builds a message of type descriptor from value (an
// object, mapped as above) and stores it in *out. Field names are the
// .proto names or their lowerCamelCase JSON names; null members are left
// unset; 64-bit and other integers may also be given as decimal strings,
// bytes fields as base64 strings. The caller owns *out and frees it with
// protobuf_c_message_free_unpacked(*out, NULL). Errors (*out NULL):
// LZ_EINVAL (NULL argument), LZ_ESERIALIZATION (a value that does not fit,
// with a detail naming the field: unknown field, wrong type, out of range,
// a string that is not UTF-8, missing required field, two members of one
// oneof), LZ_ENOMEM. Thread safe.
int lz_protobuf_from_value(const struct ProtobufCMessageDescriptor *descriptor, const lz_value_t *value,
                           struct ProtobufCMessage **out);

// lz_protobuf_to_value stores in *out a new object (owned by the caller)
// holding message's fields, keyed by their .proto names. uint64 values above
// INT64_MAX become decimal strings; float fields the shortest double that
// reads back as the same float. flags: 0 or LZ_PROTOBUF_DEFAULTS. Errors
// (*out NULL): LZ_EINVAL (NULL argument, unknown flags), LZ_ESERIALIZATION
// (a string field that is not UTF-8), LZ_ENOMEM. Thread safe.
int lz_protobuf_to_value(const struct ProtobufCMessage *message, unsigned flags, lz_value_t **out);

#ifdef __cplusplus
}
#endif
#endif
