/* Internal: strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF, the rule yajl and simdjson apply to JSON strings),
 * one sequence at a time for the envelope's topic check and the JSON
 * writer's escaping (which validate as they walk), or a whole buffer (its
 * ASCII runs a word at a time) for the decoders' strings, MessagePack's
 * encoder and the lz tool; and where text cut to a byte count may end. */
#ifndef LZ_SERIAL_UTF8_H
#define LZ_SERIAL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

// lz__ascii_span returns how many of the avail bytes at p are ASCII before
// the first that is not (all avail when none is), reading a word at a
// time: the last word overlaps the one before, and under 8 bytes the first
// four and the last four (or the first, middle and last byte) make the one
// word. Keys and most strings are ASCII, which this proves in a few
// instructions where the walk a sequence at a time takes a few a byte.
static inline size_t lz__ascii_span(const unsigned char *p, size_t avail) {
    const uint64_t highs = UINT64_C(0x8080808080808080);
    uint64_t w;
    if (avail < 8) {
        if (avail >= 4) {
            uint32_t first, last;
            memcpy(&first, p, 4);
            memcpy(&last, p + avail - 4, 4);
            w = first | last;
        } else {
            if (avail == 0) return 0;
            w = p[0] | p[avail / 2] | p[avail - 1];
        }
        if (!(w & highs)) return avail;
        size_t at = 0;
        while (p[at] < 0x80) at++; // stops before avail: some byte is not ASCII
        return at;
    }
    const unsigned char *at = p, *last = p + avail - 8;
    for (; at < last; at += 8) {
        memcpy(&w, at, 8);
        if (w & highs) goto high;
    }
    at = last;
    memcpy(&w, at, 8);
    if (!(w & highs)) return avail;
high: // w's bytes before its first high byte, in memory order, are ASCII
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (size_t)(at - p) + (size_t)__builtin_clzll(w & highs) / 8;
#else
    return (size_t)(at - p) + (size_t)__builtin_ctzll(w & highs) / 8;
#endif
}

// lz__utf8_valid_from is lz__utf8_valid from byte i on, which is not
// ASCII: out of line, as most texts never get there, and the walk's
// registers would cost every call that ends at the first look.
static __attribute__((noinline, unused)) bool lz__utf8_valid_from(const unsigned char *p, size_t size, size_t i) {
    while (i < size) {
        size_t n = p[i] < 0x80 ? lz__ascii_span(p + i, size - i) : lz__utf8_sequence(p + i, size - i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

// lz__utf8_valid tells whether the size bytes at data are UTF-8: ASCII
// runs a word at a time (all of most texts at the first look), the rest a
// sequence at a time.
static inline bool lz__utf8_valid(const void *data, size_t size) {
    size_t ascii = lz__ascii_span(data, size);
    return ascii == size || lz__utf8_valid_from(data, size, ascii);
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
