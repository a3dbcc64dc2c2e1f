/* The growable byte buffer encoders write into: one contiguous block that
 * doubles when full, so a buffer reused across messages stops allocating
 * once it has seen the largest one. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "liberzmq/serializer.h"
#include "serial/buffer.h"

// Small first block: most messages are tens of bytes, and a buffer reused
// through lz_buffer_reset keeps whatever it grew to.
#define LZ_BUFFER_MIN 256

struct lz_buffer {
    unsigned char *data;
    size_t size;
    size_t capacity;
};

lz_buffer_t *lz_buffer_new(void) {
    lz_buffer_t *buffer = calloc(1, sizeof *buffer);
    if (!buffer) return lz__fail_null(LZ_ENOMEM, "buffer: out of memory");
    return buffer;
}

void lz_buffer_destroy(lz_buffer_t **buffer_p) {
    if (!buffer_p || !*buffer_p) return;
    free((*buffer_p)->data);
    free(*buffer_p);
    *buffer_p = NULL;
}

// grow makes room for size more bytes; the slow path of reserve and append.
static int grow(lz_buffer_t *buffer, size_t size) {
    if (size > SIZE_MAX - buffer->size)
        return lz__fail(LZ_ENOMEM, "buffer: %zu more bytes would overflow", size);
    size_t needed = buffer->size + size;
    size_t capacity = buffer->capacity ? buffer->capacity : LZ_BUFFER_MIN;
    while (capacity < needed) capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
    unsigned char *data = realloc(buffer->data, capacity);
    if (!data) return lz__fail(LZ_ENOMEM, "buffer: cannot grow to %zu bytes", capacity);
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

void *lz_buffer_reserve(lz_buffer_t *buffer, size_t size) {
    if (!buffer) return lz__fail_null(LZ_EINVAL, "buffer: NULL buffer");
    // Even 0 bytes get a real address, so callers can tell it from failure.
    if ((size > buffer->capacity - buffer->size || !buffer->data) && grow(buffer, size) < 0) return NULL;
    return buffer->data + buffer->size;
}

void lz_buffer_commit(lz_buffer_t *buffer, size_t size) {
    // Committing more than was reserved would expose uninitialised memory.
    if (buffer && size <= buffer->capacity - buffer->size) buffer->size += size;
}

// append_growing is lz_buffer_append when the buffer must grow first.
// data may lie in the buffer itself (appending part of it), and growing
// may move the block: data is then found again at its offset. Kept apart
// so the common case stays small enough to inline into its callers.
static __attribute__((noinline)) int append_growing(lz_buffer_t *buffer, const void *data, size_t size) {
    uintptr_t at = (uintptr_t)data, start = (uintptr_t)buffer->data;
    bool inside = buffer->data && at >= start && at - start < buffer->capacity;
    int rc = grow(buffer, size);
    if (rc < 0) return rc;
    return lz_buffer_append(buffer, inside ? buffer->data + (at - start) : data, size); // room now
}

// Encoders call this for every token, so the common case (room left) is
// a bounds check and a copy.
int lz_buffer_append(lz_buffer_t *buffer, const void *data, size_t size) {
    if (!buffer || (size && !data)) return lz__fail(LZ_EINVAL, "buffer: NULL buffer or data");
    if (size > buffer->capacity - buffer->size || !buffer->data) return append_growing(buffer, data, size);
    if (size) memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
    return 0;
}

const void *lz_buffer_data(const lz_buffer_t *buffer) {
    return buffer ? buffer->data : NULL;
}

size_t lz_buffer_size(const lz_buffer_t *buffer) {
    return buffer ? buffer->size : 0;
}

void lz_buffer_reset(lz_buffer_t *buffer) {
    if (buffer) buffer->size = 0;
}

void lz__buffer_truncate(lz_buffer_t *buffer, size_t size) {
    if (buffer && size < buffer->size) buffer->size = size;
}
