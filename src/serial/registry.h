/* Internal: the serializer registry a context owns. */
#ifndef LZ_SERIAL_REGISTRY_H
#define LZ_SERIAL_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "liberzmq/serializer.h"
#include "serial/value.h"

typedef struct lz_registry lz_registry_t;

// lz__registry_new returns a registry holding the built-ins (raw, json,
// msgpack), or NULL when out of memory.
lz_registry_t *lz__registry_new(void);
// lz__registry_destroy calls every custom codec's destroy(state).
void lz__registry_destroy(lz_registry_t **registry_p);
int lz__registry_add(lz_registry_t *registry, const lz_serializer_ops_t *ops, void *state);
// lz__registry_find: NULL with LZ_ENOTFOUND (detail lists the known names).
const lz_serializer_t *lz__registry_find(lz_registry_t *registry, const char *name);

// lz__serializer_decode_in is lz_serializer_decode for a received message,
// which offers slot and arena and frees them itself: the raw codec builds
// in slot a bytes value borrowing data (which must outlive it), the json
// codec its tree in arena (neither allocates per node then); others
// allocate as usual. *out is then unowned or the caller's;
// lz_value_destroy is right for both.
int lz__serializer_decode_in(const lz_serializer_t *serializer, const void *data, size_t size,
                             lz_value_slot_t *slot, lz_arena_t *arena, lz_value_t **out);

// lz__serializer_decode_held is lz__serializer_decode_in for a message that
// holds the value from now on: a tree a decoder built on the heap (msgpack,
// a custom codec, JSON the yajl fallback reads) is frozen
// (lz__value_freeze), read-only to callers as an arena's is and not theirs
// to free. *out is then held (slot, arena) or frozen: the message frees it
// with lz__value_release, which leaves a held one alone.
int lz__serializer_decode_held(const lz_serializer_t *serializer, const void *data, size_t size,
                               lz_value_slot_t *slot, lz_arena_t *arena, lz_value_t **out);

// lz__json_decode_in is the json codec's decode with its nodes in arena
// (what the yajl fallback reads is built on the heap all the same);
// lz__json_decode_held freezes such a heap tree, for a message.
LZ_HIDDEN int lz__json_decode_in(lz_arena_t *arena, const void *data, size_t size, lz_value_t **out);
LZ_HIDDEN int lz__json_decode_held(lz_arena_t *arena, const void *data, size_t size, lz_value_t **out);

// The fixed fields of a task or request envelope (core/envelope.c), for a
// codec that writes them as text around the data instead of walking an
// envelope value: {"type", ["priority",] "timestamp", id_key,
// ["traceparent",] "data"}, in that order (the Python LiberZMQ's, and the
// W3C trace context an extension key).
typedef struct lz_envelope_text {
    const char *type;
    bool has_priority;
    int64_t priority;
    double timestamp;
    const char *id_key; // "task_id" or "request_id": plain text, no escapes
    size_t id_key_len;  // the lengths, which the envelope knows: no strlen
    const char *id;
    size_t id_len;
    const char *traceparent; // NULL: none; else a "traceparent" key before "data"
    const lz_value_t *data; // NULL: null
} lz_envelope_text_t;

// lz__serializer_encode_envelope appends envelope to out when serializer
// writes envelopes as text (the built-in json codec), exactly the bytes
// lz_serializer_encode writes for the envelope's value tree; returns 1,
// writing nothing, for any other codec.
LZ_HIDDEN int lz__serializer_encode_envelope(const lz_serializer_t *serializer, const lz_envelope_text_t *envelope,
                                             lz_buffer_t *out);

// lz__json_encode_envelope is that writer, for lz__serializer_encode_envelope.
LZ_HIDDEN int lz__json_encode_envelope(const lz_envelope_text_t *envelope, lz_buffer_t *out);

// The built-in codecs' operations, for the registry and for
// lz_value_to_json / lz_value_from_json.
extern const lz_serializer_ops_t lz__raw_ops;
extern const lz_serializer_ops_t lz__json_ops;
extern const lz_serializer_ops_t lz__msgpack_ops;

#endif
