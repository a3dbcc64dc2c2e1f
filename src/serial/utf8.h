/* Internal: strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF, the rule yajl and simdjson apply to JSON strings),
 * one sequence at a time for the JSON writer's escaping (which validates
 * as it walks), or a whole buffer (its ASCII runs a word at a time) for the
 * decoders' strings, MessagePack's encoder, the lz tool and the envelope's
 * topics (which refuse NUL too); and where text cut to a byte count may
 * end. */
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

// lz__text_flags marks the bytes of w that end a text span: those past
// 0x7F, and NUL too when nul_stops. A NUL borrows into its own top bit when
// 1 is taken from it, and only a NUL borrows, so the lowest marked byte is
// exactly the first that ends the span (bytes above it may be marked for
// nothing).
static inline uint64_t lz__text_flags(uint64_t w, bool nul_stops) {
    return (nul_stops ? (w - UINT64_C(0x0101010101010101)) | w : w) & UINT64_C(0x8080808080808080);
}

// lz__text_word loads the 8 bytes at p with the first in memory lowest, so
// that counting trailing zeros finds the first marked byte.
static inline uint64_t lz__text_word(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

// lz__text_span returns how many of the avail bytes at p are ASCII (and not
// NUL, when nul_stops) before the first that is not (all avail when none
// is), reading a word at a time: the last word overlaps the one before, and
// under 8 bytes the first four and the last four (or the first, middle and
// last byte) make the one word: ORed, or side by side when NUL stops, as a
// NUL ORed into another byte would hide. Keys, topics and most strings are
// ASCII, which this proves in a few instructions where the walk a sequence
// at a time takes a few a byte. Inline for nul_stops to be a constant.
static inline __attribute__((always_inline)) size_t lz__text_span(const unsigned char *p, size_t avail,
                                                                   bool nul_stops) {
    uint64_t w;
    if (avail < 8) {
        if (avail >= 4) {
            uint32_t first, last;
            memcpy(&first, p, 4);
            memcpy(&last, p + avail - 4, 4);
            w = nul_stops ? first | (uint64_t)last << 32 : first | last;
        } else {
            if (avail == 0) return 0;
            unsigned a = p[0], b = p[avail / 2], c = p[avail - 1];
            // side by side, the five bytes above unmarked
            w = nul_stops ? a | b << 8 | c << 16 | UINT64_C(0x0101010101000000) : a | b | c;
        }
        if (!lz__text_flags(w, nul_stops)) return avail;
        size_t at = 0; // stops before avail: some byte is marked
        while (p[at] < 0x80 && (!nul_stops || p[at] != 0)) at++;
        return at;
    }
    const unsigned char *at = p, *last = p + avail - 8;
    for (; at < last; at += 8)
        if (lz__text_flags(w = lz__text_word(at), nul_stops)) goto marked;
    at = last;
    if (!lz__text_flags(w = lz__text_word(at), nul_stops)) return avail;
marked:
    return (size_t)(at - p) + (size_t)__builtin_ctzll(lz__text_flags(w, nul_stops)) / 8;
}

// lz__utf8_walk tells whether the size bytes at p are UTF-8 (without NUL
// when nul_stops) from byte i on, which starts a character: ASCII runs a
// word at a time, the rest a sequence at a time.
static inline __attribute__((always_inline)) bool lz__utf8_walk(const unsigned char *p, size_t size, size_t i,
                                                                bool nul_stops) {
    while (i < size) {
        size_t n = p[i] < 0x80 ? lz__text_span(p + i, size - i, nul_stops) : lz__utf8_sequence(p + i, size - i);
        if (n == 0) return false; // a sequence that is not UTF-8, or a NUL that stops
        i += n;
    }
    return true;
}

// lz__utf8_valid_from is lz__utf8_valid from byte i on, which is not
// ASCII: out of line, as most texts never get there, and the walk's
// registers would cost every call that ends at the first look.
static __attribute__((noinline, unused)) bool lz__utf8_valid_from(const unsigned char *p, size_t size, size_t i) {
    return lz__utf8_walk(p, size, i, false);
}

// lz__utf8_valid tells whether the size bytes at data are UTF-8: ASCII
// runs a word at a time (all of most texts at the first look), the rest a
// sequence at a time.
static inline bool lz__utf8_valid(const void *data, size_t size) {
    size_t ascii = lz__text_span(data, size, false);
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
