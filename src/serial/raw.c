/* The "raw" codec: payload bytes as they are. Its decode copies, as
 * lz_serializer_decode promises a value the caller owns; a received
 * message's payload is decoded without a copy instead, by
 * lz__serializer_decode_in, into a value borrowing the frame the message
 * keeps for as long as it (and so the value) lives. */
#include "core/error.h"
#include "serial/registry.h"
#include "serial/value.h"

static int raw_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    lz_value_type_t type = lz_value_type(value);
    if (type != LZ_VALUE_BYTES && type != LZ_VALUE_STRING)
        return lz__fail(LZ_ESERIALIZATION, "raw: cannot encode a value of type %s (only bytes or a string)",
                        lz_value_type_name(type));
    size_t size;
    const void *data = lz_value_get_bytes(value, &size);
    return lz_buffer_append(out, data, size);
}

static int raw_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    *out = lz_value_bytes(data, size);
    return *out ? 0 : lz_last_error_code();
}

const lz_serializer_ops_t lz__raw_ops = {
    .name = "raw",
    .content_type = "application/octet-stream",
    .flags = LZ_SERIALIZER_OPAQUE,
    .encode = raw_encode,
    .decode = raw_decode,
    .destroy = NULL,
};
