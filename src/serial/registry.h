/* Internal: the serializer registry a context owns. */
#ifndef LZ_SERIAL_REGISTRY_H
#define LZ_SERIAL_REGISTRY_H

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

// lz__serializer_decode_in is lz_serializer_decode for a receiver that
// offers slot: the raw codec then builds its borrowed bytes value there
// instead of allocating one (a message keeps the slot beside its frame).
int lz__serializer_decode_in(const lz_serializer_t *serializer, const void *data, size_t size,
                             lz_value_slot_t *slot, lz_value_t **out);

// The built-in codecs' operations, for the registry and for
// lz_value_to_json / lz_value_from_json.
extern const lz_serializer_ops_t lz__raw_ops;
extern const lz_serializer_ops_t lz__json_ops;
extern const lz_serializer_ops_t lz__msgpack_ops;

#endif
