/* A custom serializer, "json+zstd": JSON compressed with zstd. It is built
 * only from the public API (the built-in "json" codec does the JSON part),
 * so it shows everything a codec of your own needs. Shared by
 * examples/custom_serializer.c and tests/test_custom_serializer.c. */
#ifndef LZ_EXAMPLE_ZSTD_JSON_H
#define LZ_EXAMPLE_ZSTD_JSON_H

#include <stdlib.h>
#include <zstd.h>

#include "liberzmq.h"

// Decompressing a hostile frame could claim any size: refuse big claims.
#define ZSTD_JSON_MAX_SIZE ((unsigned long long)64 << 20)

// The codec's state: registered with it, passed to every call and freed by
// the registry through zstd_json_destroy when the context goes away.
typedef struct zstd_json {
    int level; // zstd compression level, read-only once registered
} zstd_json_t;

static inline zstd_json_t *zstd_json_new(int level) {
    zstd_json_t *state = malloc(sizeof *state);
    if (state) state->level = level;
    return state;
}

static inline void zstd_json_destroy(void *state) { free(state); }

// encode: JSON into a scratch buffer, then compress straight into out.
// Calls may come from several threads at once, so nothing here is shared
// except the read-only state.
static inline int zstd_json_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    const zstd_json_t *codec = state;
    lz_buffer_t *json = lz_buffer_new();
    if (!json) return LZ_ENOMEM;
    int rc = lz_serializer_encode(lz_serializer_builtin("json"), value, json);
    if (rc == 0) {
        size_t bound = ZSTD_compressBound(lz_buffer_size(json));
        void *dst = lz_buffer_reserve(out, bound);
        size_t n = dst ? ZSTD_compress(dst, bound, lz_buffer_data(json), lz_buffer_size(json), codec->level)
                       : 0;
        if (!dst) rc = LZ_ENOMEM;
        else if (ZSTD_isError(n)) rc = LZ_ESERIALIZATION;
        else lz_buffer_commit(out, n);
    }
    lz_buffer_destroy(&json);
    return rc;
}

// decode: check the frame header's content size, decompress, parse JSON.
static inline int zstd_json_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    unsigned long long len = ZSTD_getFrameContentSize(data, size);
    if (len == ZSTD_CONTENTSIZE_ERROR || len == ZSTD_CONTENTSIZE_UNKNOWN || len > ZSTD_JSON_MAX_SIZE)
        return LZ_ESERIALIZATION;
    char *json = malloc(len ? (size_t)len : 1);
    if (!json) return LZ_ENOMEM;
    size_t n = ZSTD_decompress(json, (size_t)len, data, size);
    int rc = ZSTD_isError(n) || n != len
                 ? LZ_ESERIALIZATION
                 : lz_serializer_decode(lz_serializer_builtin("json"), json, n, out);
    free(json);
    return rc;
}

// The registry copies this struct; the strings must outlive the context.
static const lz_serializer_ops_t zstd_json_ops = {
    .name = "json+zstd",
    .content_type = "application/json+zstd",
    .flags = 0,
    .encode = zstd_json_encode,
    .decode = zstd_json_decode,
    .destroy = zstd_json_destroy,
};

#endif
