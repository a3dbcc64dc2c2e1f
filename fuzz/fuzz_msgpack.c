/* The MessagePack codec's decoder (the declared-size walk, then msgpack-c)
 * on arbitrary bytes, and its encoder on whatever the decoder accepts: see
 * fuzz_decode_value for the properties. A container that declares more
 * values than the input holds must be refused before msgpack-c allocates
 * for it; libFuzzer's -malloc_limit_mb (its -rss_limit_mb by default) turns
 * such an allocation into a reported failure. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_decode_value(lz_serializer_builtin("msgpack"), data, size);
    return 0;
}
