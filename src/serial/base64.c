/* Standard padded base64 for bytes values inside JSON (and, read
 * leniently, protobuf's JSON form of bytes fields). A table-driven
 * three-bytes-to-four-characters loop: small, and fast enough next to the
 * JSON generator that copies the result. */
#include "serial/base64.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t lz__base64_encoded_size(size_t size) { return (size + 2) / 3 * 4; }

void lz__base64_encode(const void *data, size_t size, char *out) {
    const unsigned char *in = data;
    size_t i = 0;
    for (; i + 3 <= size; i += 3, out += 4) {
        uint32_t n = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[0] = alphabet[n >> 18];
        out[1] = alphabet[n >> 12 & 63];
        out[2] = alphabet[n >> 6 & 63];
        out[3] = alphabet[n & 63];
    }
    if (i == size) return;
    uint32_t n = (uint32_t)in[i] << 16 | (i + 1 < size ? (uint32_t)in[i + 1] << 8 : 0);
    out[0] = alphabet[n >> 18];
    out[1] = alphabet[n >> 12 & 63];
    out[2] = i + 1 < size ? alphabet[n >> 6 & 63] : '=';
    out[3] = '=';
}

// sextet: the value of base64 character c, or -1; url_safe also takes
// RFC 4648's URL-safe '-' and '_' for '+' and '/'.
static int sextet(char c, bool url_safe) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || (url_safe && c == '-')) return 62;
    return c == '/' || (url_safe && c == '_') ? 63 : -1;
}

// decode_group writes the bytes of the four characters at group, the last
// pad of them padding, to out and returns how many, or -1.
static int decode_group(const char *group, int pad, bool url_safe, unsigned char *out) {
    uint32_t n = 0;
    for (int k = 0; k < 4; k++) {
        int s = k >= 4 - pad ? 0 : sextet(group[k], url_safe);
        if (s < 0) return -1;
        n = n << 6 | (uint32_t)s;
    }
    out[0] = (unsigned char)(n >> 16);
    if (pad < 2) out[1] = (unsigned char)(n >> 8);
    if (pad < 1) out[2] = (unsigned char)n;
    return 3 - pad;
}

// decode: lenient reads a last group cut short as if padded ("Zg" as
// "Zg==") and takes the URL-safe characters too.
static long decode(const char *text, size_t len, void *out, bool lenient) {
    if (len % 4 && (!lenient || len % 4 == 1)) return -1;
    unsigned char *o = out;
    for (size_t i = 0; i < len; i += 4) {
        const char *group = text + i;
        char padded[4] = {'=', '=', '=', '='};
        if (len - i < 4) group = memcpy(padded, group, len - i);
        bool last = i + 4 >= len;
        int pad = last ? (group[3] == '=') + (group[3] == '=' && group[2] == '=') : 0;
        int n = decode_group(group, pad, lenient, o);
        if (n < 0) return -1;
        o += n;
    }
    return (long)(o - (unsigned char *)out);
}

long lz__base64_decode(const char *text, size_t len, void *out) { return decode(text, len, out, false); }

long lz__base64_decode_lenient(const char *text, size_t len, void *out) { return decode(text, len, out, true); }
