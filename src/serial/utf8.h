/* Internal: strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF, the rule yajl and simdjson apply to JSON strings),
 * one sequence at a time for the envelope's topic check and the JSON
 * writer's escaping (which validate as they walk), or a whole buffer for
 * MessagePack strings and the lz tool; and where text cut to a byte count
 * may end. */
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

// lz__utf8_prefix returns the length of the longest prefix of the n bytes
// at text that does not end inside a multibyte sequence: n, or up to 3
// less when the last character was cut short. Text cut to fit a buffer is
// cut there, because it may end up in JSON (an error reply, a log line),
// whose writer refuses half a character. Reads only those n bytes; bytes
// that are not UTF-8 anyway are left as they are.
static inline size_t lz__utf8_prefix(const char *text, size_t n) {
    const unsigned char *p = (const unsigned char *)text;
    size_t lead = n; // p[lead - 1] ends as the last character's first byte
    while (lead > 0 && n - lead < 3 && (p[lead - 1] & 0xC0) == 0x80) lead--;
    if (lead == 0 || p[lead - 1] < 0xC0) return n; // ends with ASCII, or is no UTF-8
    unsigned c = p[lead - 1];
    size_t whole = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    return n - (lead - 1) < whole ? lead - 1 : n;
}

#endif
