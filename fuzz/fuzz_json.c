/* The JSON codec's decoder (simdjson, with yajl for rejected input and
 * integers past 64 bits) on arbitrary bytes, and its writer on whatever the
 * decoder accepts: see fuzz_decode_value for the properties. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_decode_value(lz_serializer_builtin("json"), data, size);
    return 0;
}
