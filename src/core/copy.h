/* Internal: copies of a few bytes without a call to memcpy. Keys, topics,
 * short strings and small frames are most of what the receive paths copy,
 * and a libc call with its size dispatch costs more than such a copy. */
#ifndef LZ_CORE_COPY_H
#define LZ_CORE_COPY_H

#include <stddef.h>
#include <string.h>

// The most lz__copy_short takes: two overlapping moves of 8 bytes.
#define LZ_COPY_SHORT_MAX 16

// lz__copy_short copies n bytes, at most LZ_COPY_SHORT_MAX, between
// buffers that do not overlap.
static inline void lz__copy_short(char *dst, const char *src, size_t n) {
    if (n >= 8) {
        memcpy(dst, src, 8); // constant sizes: plain moves, overlapping
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else if (n) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

// lz__copy copies n bytes between buffers that do not overlap: a short
// copy inline, a longer one through memcpy.
static inline void lz__copy(void *dst, const void *src, size_t n) {
    if (n <= LZ_COPY_SHORT_MAX) {
        lz__copy_short((char *)dst, (const char *)src, n);
    } else {
        memcpy(dst, src, n);
    }
}

#endif
