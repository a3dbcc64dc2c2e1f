/* Internal: strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF, the rule yajl and simdjson apply to JSON strings),
 * one sequence at a time for the envelope's topic check and the JSON
 * writer's escaping (which validate as they walk), or a whole buffer for
 * MessagePack strings and the lz tool. */
#ifndef LZ_SERIAL_UTF8_H
#define LZ_SERIAL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// lz__utf8_sequence returns the length (2 to 4) of the well-formed multibyte
// sequence at p, which starts with a byte >= 0x80, reading at most avail
// bytes; 0 when it is not UTF-8 (a stray continuation byte, a truncated
// sequence, an overlong form, a surrogate or a value past U+10FFFF).
static inline size_t lz__utf8_sequence(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    size_t n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 && c < 0xF0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : 0;
    if (n == 0 || avail - 1 < n) return 0;
    unsigned cp = c & (0x3F >> n);
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n + 1;
}

// lz__utf8_valid tells whether the size bytes at data are UTF-8.
static inline bool lz__utf8_valid(const void *data, size_t size) {
    const unsigned char *p = data;
    for (size_t i = 0; i < size;) {
        size_t n = p[i] < 0x80 ? 1 : lz__utf8_sequence(p + i, size - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

#endif
