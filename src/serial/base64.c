/* Standard padded base64 for bytes values inside JSON. A table-driven
 * three-bytes-to-four-characters loop: small, and fast enough next to the
 * JSON generator that copies the result. */
#include "serial/base64.h"

#include <stdbool.h>
#include <stdint.h>

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

static int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    return c == '/' ? 63 : -1;
}

long lz__base64_decode(const char *text, size_t len, void *out) {
    if (len % 4) return -1;
    unsigned char *o = out;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int pad = last ? (text[i + 3] == '=') + (text[i + 3] == '=' && text[i + 2] == '=') : 0;
        int s[4];
        for (int k = 0; k < 4; k++) {
            s[k] = k >= 4 - pad ? 0 : sextet(text[i + k]);
            if (s[k] < 0) return -1;
        }
        uint32_t n = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
        *o++ = (unsigned char)(n >> 16);
        if (pad < 2) *o++ = (unsigned char)(n >> 8);
        if (pad < 1) *o++ = (unsigned char)n;
    }
    return (long)(o - (unsigned char *)out);
}
