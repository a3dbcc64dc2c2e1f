/* The "raw" codec: payload bytes as they are. Decoding is zero copy: the
 * bytes value borrows the received frame, which the node keeps alive for
 * as long as the message (and so the value) lives; a caller decoding its
 * own memory must keep that memory alive until the value is destroyed. */
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
    *out = lz__value_bytes_borrowed(data, size);
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
