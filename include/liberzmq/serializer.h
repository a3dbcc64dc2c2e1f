/* liberzmq serializers: a registry of named codecs between lz_value_t and
 * bytes. Built in: "raw" (bytes as they are), "json" (read by simdjson,
 * with yajl for the integers past 64 bits simdjson will not read and for
 * the wording of errors; written by liberzmq's own writer) and "msgpack"
 * (msgpack-c). Custom codecs register through the same interface and are
 * then usable by name everywhere a serializer is named (config key
 * serialization.default, lz_node_set_serializer, the lz tool). */
#ifndef LIBERZMQ_SERIALIZER_H
#define LIBERZMQ_SERIALIZER_H

#include <stddef.h>

#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_context lz_context_t;

// A growable byte buffer that encoders write into. Not thread safe.
typedef struct lz_buffer lz_buffer_t;

lz_buffer_t *lz_buffer_new(void);
void lz_buffer_destroy(lz_buffer_t **buffer_p);
// lz_buffer_append copies size bytes to the end; data may lie in the buffer
// itself (lz_buffer_data). LZ_ENOMEM on failure.
int lz_buffer_append(lz_buffer_t *buffer, const void *data, size_t size);
// lz_buffer_reserve makes room for size more bytes and returns where they
// go; after writing n <= size of them call lz_buffer_commit(buffer, n).
void *lz_buffer_reserve(lz_buffer_t *buffer, size_t size);
void lz_buffer_commit(lz_buffer_t *buffer, size_t size);
const void *lz_buffer_data(const lz_buffer_t *buffer);
size_t lz_buffer_size(const lz_buffer_t *buffer);
// lz_buffer_reset empties the buffer and keeps its memory for reuse.
void lz_buffer_reset(lz_buffer_t *buffer);

// Serializer flags.
enum {
    // The codec carries bytes only (no structure): patterns then send the
    // payload as it is instead of wrapping it in a JSON-style envelope.
    LZ_SERIALIZER_OPAQUE = 1u << 0
};

// The interface a codec implements. The registry copies the struct; name
// and content_type must stay valid while the context lives (use literals).
typedef struct lz_serializer_ops {
    const char *name;         // registry key, e.g. "json+zstd"
    const char *content_type; // e.g. "application/json"
    unsigned flags;           // LZ_SERIALIZER_* bits
    // encode appends the encoding of value to out. Returns 0, or a negative
    // lz_error_t (LZ_ESERIALIZATION for a value it cannot encode).
    int (*encode)(void *state, const lz_value_t *value, lz_buffer_t *out);
    // decode parses size bytes and stores a new value (owned by the caller)
    // in *out. Returns 0, or LZ_ESERIALIZATION for bytes it cannot decode
    // (what it left in *out is then freed). For a received message the
    // value is then made read-only (see lz_message_value).
    int (*decode)(void *state, const void *data, size_t size, lz_value_t **out);
    // destroy (may be NULL) frees state when the context is destroyed.
    void (*destroy)(void *state);
} lz_serializer_ops_t;

// A registered serializer; owned by its context.
typedef struct lz_serializer lz_serializer_t;

// lz_serializer_register adds a codec under ops->name. state is passed to
// every call and owned by the registry from now on (ops->destroy frees it,
// also when registration fails). encode and decode must be thread safe for
// concurrent calls. LZ_ESTATE if the name is taken, LZ_EINVAL if ops lacks
// name, encode or decode. Thread safe.
int lz_serializer_register(lz_context_t *ctx, const lz_serializer_ops_t *ops, void *state);

// lz_serializer_find returns the codec registered under name, or NULL with
// LZ_ENOTFOUND. Borrowed: valid while ctx lives. Thread safe.
const lz_serializer_t *lz_serializer_find(lz_context_t *ctx, const char *name);

// lz_serializer_builtin returns a built-in codec ("raw", "json", "msgpack")
// without a context, or NULL with LZ_ENOTFOUND. Static; thread safe.
const lz_serializer_t *lz_serializer_builtin(const char *name);

const char *lz_serializer_name(const lz_serializer_t *serializer);
const char *lz_serializer_content_type(const lz_serializer_t *serializer);
unsigned lz_serializer_flags(const lz_serializer_t *serializer);

// Encode value, appending to out / decode bytes into a new value owned by
// the caller (data is not referred to once the call returns). The raw
// codec encodes bytes and strings only, and decodes into a bytes value (a
// copy). A codec whose encode or decode returns anything but 0 failed:
// negative values pass through, positive ones become LZ_ESERIALIZATION
// (a failed decode's partial value is freed and *out is NULL). msgpack
// refuses (LZ_ESERIALIZATION) strings and keys that are not UTF-8, and
// strings, bytes, arrays and objects with more than 2^32 - 1 bytes or
// entries, which its headers cannot say. json refuses strings and keys
// that are not UTF-8, NaN, infinities and nesting past 127 levels (a bytes
// value, written as the object {"__type__":"bytes","value":HEX}, counts
// as a level), so that whatever it writes it reads back.
// A failed encode leaves out as it was: nothing half-written is appended.
int lz_serializer_encode(const lz_serializer_t *serializer, const lz_value_t *value, lz_buffer_t *out);
int lz_serializer_decode(const lz_serializer_t *serializer, const void *data, size_t size, lz_value_t **out);

#ifdef __cplusplus
}
#endif
#endif
